/*
 * HTTP transfers to OpenAI-compatible providers (see http.h). Builds one
 * libcurl easy handle per request (JSON POST, bearer auth, HTTP/2 over TLS
 * where offered, TCP keepalive, connection/DNS/TLS-session reuse through an
 * optional share handle, connect and total timeouts in milliseconds), and
 * interprets what the caller's multi loop made of it. Three callbacks do the
 * work while the transfer runs: the header callback records Retry-After /
 * retry-after-ms and the x-ratelimit-* headers of the final response; the
 * write callback keeps the body under max_response bytes or, for a 2xx
 * event-stream reply, feeds an incremental SSE decoder that tolerates any
 * split of the byte stream (CR, LF or CRLF line ends, comments, multi-line
 * data, unknown fields) and accumulates choices[0].delta.content, id, model,
 * finish_reason and usage; the XFERINFO callback aborts on the cancel flag
 * and when no byte has moved for idle_timeout_s. hark_llm_xfer_finish maps
 * the CURLcode and the abort reason to an outcome and, for streams,
 * assembles the non-streaming reply shape (a stream that stops before
 * [DONE] and before any finish_reason is reported truncated).
 *
 * The idle check runs whenever libcurl calls XFERINFO, i.e. on each
 * curl_multi_perform/socket_action pass over the handle: a multi loop
 * should wake at least every idle_timeout_s / 4 or so for it to be precise.
 */
#include "llm/http.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "hark/hark.h"

enum { ABORT_NONE = 0, ABORT_CANCEL, ABORT_TOO_LARGE, ABORT_IDLE, ABORT_NOMEM };
enum { MODE_UNKNOWN = 0, MODE_RAW, MODE_SSE };

/* A growable NUL-terminated byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

/* Incremental SSE decoder state. */
struct sse {
	struct buf line;    /* the current, unterminated line */
	struct buf data;    /* data lines of the current event, joined by \n */
	struct buf content; /* concatenated delta contents */
	int has_data;       /* the current event has a data field */
	int prev_cr;        /* the last byte seen was CR (a following LF is part of it) */
	int done;           /* [DONE] seen */
	int bad_events;     /* data that was neither [DONE] nor a JSON object */
	char bad_snippet[160];
	char *id, *model, *finish_reason;
	json_t *created;
	json_t *usage;      /* last non-null usage object */
	json_t *error;      /* first event carrying an "error" member */
};

struct hark_llm_xfer {
	CURL *easy;
	struct curl_slist *headers;
	char *req_body;
	size_t req_len;
	const volatile int *cancel;
	void *user;
	int stream;
	size_t max_response;
	double idle_timeout_s;
	int started;
	double last_activity;
	curl_off_t last_dl, last_ul;
	int abort_reason;
	int mode;
	struct buf body;
	struct sse sse;
	/* headers of the latest response (reset on each status line) */
	double h_retry_after, h_retry_after_ms;
	double h_rem_req, h_rem_tok, h_reset_req, h_reset_tok;
	int ctype_seen, ctype_sse;
	char errbuf[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------------ helpers -- */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Appends n bytes, keeping the buffer NUL-terminated and within max bytes.
 * Returns 0, ABORT_TOO_LARGE or ABORT_NOMEM. */
static int buf_append(struct buf *b, const char *s, size_t n, size_t max)
{
	if (n > max || b->len > max - n)
		return ABORT_TOO_LARGE;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		p = realloc(b->p, cap);
		if (!p)
			return ABORT_NOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Parses [0-9]+(.[0-9]*)? or .[0-9]+ at *pp; advances *pp. -1 if none. */
static double parse_decimal(const char **pp)
{
	const char *p = *pp;
	double v = 0, scale = 0.1;
	int digits = 0;

	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			v += (*p - '0') * scale;
			scale /= 10;
			p++;
			digits++;
		}
	}
	if (!digits)
		return -1;
	*pp = p;
	return v;
}

/* Copies s without leading/trailing whitespace into out (cap outlen). */
static void trim_copy(const char *s, size_t n, char *out, size_t outlen)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

double hark_llm_http_parse_duration(const char *s)
{
	char tmp[128];
	const char *p;
	double total = 0;
	int parts = 0;

	if (!s)
		return -1;
	trim_copy(s, strlen(s), tmp, sizeof(tmp));
	p = tmp;
	if (!*p)
		return -1;
	while (*p) {
		double v = parse_decimal(&p), unit;

		if (v < 0)
			return -1;
		if (p[0] == 'h') {
			unit = 3600;
			p += 1;
		} else if (p[0] == 'm' && p[1] == 's') {
			unit = 1e-3;
			p += 2;
		} else if (p[0] == 'm') {
			unit = 60;
			p += 1;
		} else if (p[0] == 's') {
			unit = 1;
			p += 1;
		} else if (p[0] == 'u' && p[1] == 's') {
			unit = 1e-6;
			p += 2;
		} else if ((unsigned char)p[0] == 0xc2 && (unsigned char)p[1] == 0xb5 && p[2] == 's') {
			unit = 1e-6; /* µs (micro sign) */
			p += 3;
		} else if ((unsigned char)p[0] == 0xce && (unsigned char)p[1] == 0xbc && p[2] == 's') {
			unit = 1e-6; /* μs (Greek mu) */
			p += 3;
		} else if (p[0] == 'n' && p[1] == 's') {
			unit = 1e-9;
			p += 2;
		} else if (!*p && parts == 0) {
			return v; /* a bare number of seconds */
		} else {
			return -1;
		}
		total += v * unit;
		parts++;
	}
	return total;
}

static int match_month(const char *p)
{
	static const char *const months[12] = {"jan", "feb", "mar", "apr", "may", "jun",
					       "jul", "aug", "sep", "oct", "nov", "dec"};

	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			return i;
	return -1;
}

static int match_wkday(const char *p, size_t n)
{
	static const char *const days[7] = {"monday", "tuesday", "wednesday", "thursday",
					    "friday", "saturday", "sunday"};

	for (int i = 0; i < 7; i++)
		if ((n == 3 && strncasecmp(p, days[i], 3) == 0) ||
		    (n == strlen(days[i]) && strncasecmp(p, days[i], n) == 0))
			return i;
	return -1;
}

/* Reads exactly 1..maxd digits into *v. */
static int read_int(const char **pp, int mind, int maxd, int *v)
{
	const char *p = *pp;
	int n = 0, x = 0;

	while (*p >= '0' && *p <= '9' && n < maxd) {
		x = x * 10 + (*p - '0');
		p++;
		n++;
	}
	if (n < mind || (*p >= '0' && *p <= '9'))
		return -1;
	*v = x;
	*pp = p;
	return 0;
}

static int read_hms(const char **pp, int *h, int *m, int *s)
{
	const char *p = *pp;

	if (read_int(&p, 2, 2, h) || *p++ != ':' || read_int(&p, 2, 2, m) || *p++ != ':' ||
	    read_int(&p, 2, 2, s))
		return -1;
	*pp = p;
	return 0;
}

/* IMF-fixdate, RFC 850 or asctime; Unix seconds or -1. */
static double parse_http_date(const char *s)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s, *w = s;
	int day, mon, year, hh, mm, ss;
	struct tm tm;
	time_t t;

	while (isalpha((unsigned char)*p))
		p++;
	if (match_wkday(w, (size_t)(p - w)) < 0)
		return -1;
	if (*p == ',') {
		char sep;

		p++;
		if (*p++ != ' ')
			return -1;
		if (read_int(&p, 1, 2, &day))
			return -1;
		sep = *p;
		if (sep != ' ' && sep != '-')
			return -1;
		p++;
		if ((mon = match_month(p)) < 0)
			return -1;
		p += 3;
		if (*p++ != sep)
			return -1;
		if (read_int(&p, 2, 4, &year))
			return -1;
		if (year < 100)
			year += year < 70 ? 2000 : 1900;
		else if (year < 1000)
			return -1;
		if (*p++ != ' ' || read_hms(&p, &hh, &mm, &ss))
			return -1;
		if (strncmp(p, " GMT", 4) != 0)
			return -1;
		p += 4;
	} else if (*p == ' ') {
		p++;
		if ((mon = match_month(p)) < 0)
			return -1;
		p += 3;
		if (*p++ != ' ')
			return -1;
		if (*p == ' ')
			p++;
		if (read_int(&p, 1, 2, &day) || *p++ != ' ' || read_hms(&p, &hh, &mm, &ss) ||
		    *p++ != ' ' || read_int(&p, 4, 4, &year))
			return -1;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	if (day < 1 || day > mdays[mon] || hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (mon == 1 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return (double)t;
}

double hark_llm_http_parse_retry_after(const char *s, double now_unix)
{
	char tmp[128];
	const char *p;

	if (!s)
		return -1;
	trim_copy(s, strlen(s), tmp, sizeof(tmp));
	p = tmp;
	if ((*p >= '0' && *p <= '9') || *p == '.') {
		double v = parse_decimal(&p);

		return (v >= 0 && !*p) ? v : -1;
	}
	{
		double t = parse_http_date(tmp);

		if (t < 0)
			return -1;
		return t > now_unix ? t - now_unix : 0;
	}
}

/* A non-negative decimal header value, or -1. */
static double parse_count(const char *s)
{
	const char *p = s;
	double v = parse_decimal(&p);

	return (v >= 0 && !*p) ? v : -1;
}

/* -------------------------------------------------------- global init -- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void do_global_init(void)
{
	g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int hark_llm_http_global_init(void)
{
	pthread_once(&g_once, do_global_init);
	return g_init_rc == CURLE_OK ? HARK_OK : HARK_ERR_NETWORK;
}

/* One mutex per kind of shared data, for every share handle made here. */
static pthread_mutex_t g_share_mu[CURL_LOCK_DATA_LAST];
static pthread_once_t g_share_once = PTHREAD_ONCE_INIT;

static void share_mu_init(void)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&g_share_mu[i], NULL);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
	(void)h;
	(void)access;
	(void)u;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&g_share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
	(void)h;
	(void)u;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&g_share_mu[data]);
}

int hark_llm_http_share_new(CURLSH **out)
{
	CURLSH *sh;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	rc = hark_llm_http_global_init();
	if (rc != HARK_OK)
		return rc;
	pthread_once(&g_share_once, share_mu_init);
	sh = curl_share_init();
	if (!sh)
		return HARK_ERR_NOMEM;
	if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		curl_share_cleanup(sh);
		return HARK_ERR_NETWORK;
	}
	*out = sh;
	return HARK_OK;
}

void hark_llm_http_share_free(CURLSH *sh)
{
	if (sh)
		curl_share_cleanup(sh);
}

/* ---------------------------------------------------------------- SSE -- */

static void sse_free(struct sse *s)
{
	buf_free(&s->line);
	buf_free(&s->data);
	buf_free(&s->content);
	free(s->id);
	free(s->model);
	free(s->finish_reason);
	json_decref(s->created);
	json_decref(s->usage);
	json_decref(s->error);
	memset(s, 0, sizeof(*s));
}

static void set_str(char **dst, json_t *v)
{
	char *c;

	if (!json_is_string(v))
		return;
	c = strdup(json_string_value(v));
	if (c) {
		free(*dst);
		*dst = c;
	}
}

/* Picks choices[] element with index 0 (or the first one). */
static json_t *first_choice(json_t *chunk)
{
	json_t *choices = json_object_get(chunk, "choices"), *c;
	size_t i;

	if (!json_is_array(choices) || json_array_size(choices) == 0)
		return NULL;
	json_array_foreach(choices, i, c) {
		json_t *idx = json_object_get(c, "index");

		if (json_is_integer(idx) && json_integer_value(idx) == 0)
			return c;
	}
	return json_array_get(choices, 0);
}

/* Handles one complete event's data. Returns 0 or an ABORT_* reason. */
static int sse_dispatch(struct sse *s, size_t max)
{
	const char *d;
	size_t n;
	json_t *j = NULL, *choice, *v;
	json_error_t je;
	int rc = 0;

	if (!s->has_data)
		return 0;
	s->has_data = 0;
	d = s->data.p ? s->data.p : "";
	n = s->data.len;
	if (s->done)
		goto out;
	if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
		s->done = 1;
		goto out;
	}
	j = json_loadb(d, n, 0, &je);
	if (!json_is_object(j)) {
		if (s->bad_events++ == 0)
			snprintf(s->bad_snippet, sizeof(s->bad_snippet), "%.*s",
				 (int)(n > 120 ? 120 : n), d);
		goto out;
	}
	v = json_object_get(j, "error");
	if (v && !json_is_null(v)) {
		if (!s->error)
			s->error = json_incref(j);
		goto out;
	}
	if (!s->id)
		set_str(&s->id, json_object_get(j, "id"));
	if (!s->model)
		set_str(&s->model, json_object_get(j, "model"));
	v = json_object_get(j, "created");
	if (!s->created && json_is_integer(v))
		s->created = json_incref(v);
	choice = first_choice(j);
	if (choice) {
		json_t *delta = json_object_get(choice, "delta");

		v = json_object_get(delta, "content");
		if (json_is_string(v)) {
			rc = buf_append(&s->content, json_string_value(v), json_string_length(v),
					max);
			if (rc)
				goto out;
		}
		v = json_object_get(choice, "finish_reason");
		if (json_is_string(v))
			set_str(&s->finish_reason, v);
	}
	v = json_object_get(j, "usage");
	if (json_is_object(v)) {
		json_decref(s->usage);
		s->usage = json_incref(v);
	}
out:
	json_decref(j);
	buf_reset(&s->data);
	return rc;
}

/* Handles the completed line in s->line. */
static int sse_line(struct sse *s, size_t max)
{
	const char *l = s->line.p ? s->line.p : "";
	size_t n = s->line.len;
	int rc = 0;

	if (n == 0) {
		rc = sse_dispatch(s, max);
	} else if (l[0] != ':') {
		const char *colon = memchr(l, ':', n);
		size_t namelen = colon ? (size_t)(colon - l) : n;
		const char *v = colon ? colon + 1 : l + n;
		size_t vlen = (size_t)(l + n - v);

		if (vlen && *v == ' ') {
			v++;
			vlen--;
		}
		if (namelen == 4 && memcmp(l, "data", 4) == 0 && !s->done) {
			if (s->has_data)
				rc = buf_append(&s->data, "\n", 1, max);
			if (!rc)
				rc = buf_append(&s->data, v, vlen, max);
			s->has_data = 1;
		}
		/* event:, id:, retry: and unknown fields carry nothing we use */
	}
	buf_reset(&s->line);
	return rc;
}

/* Feeds n raw bytes of the stream. Returns 0 or an ABORT_* reason. */
static int sse_feed(struct sse *s, const char *p, size_t n, size_t max)
{
	size_t i = 0;
	int rc;

	while (i < n) {
		size_t j = i;

		if (s->prev_cr) {
			s->prev_cr = 0;
			if (p[i] == '\n') {
				i++;
				continue;
			}
		}
		while (j < n && p[j] != '\r' && p[j] != '\n')
			j++;
		if (j > i) {
			rc = buf_append(&s->line, p + i, j - i, max);
			if (rc)
				return rc;
		}
		if (j == n)
			break;
		if (p[j] == '\r')
			s->prev_cr = 1;
		rc = sse_line(s, max);
		if (rc)
			return rc;
		i = j + 1;
	}
	return 0;
}

/* The assembled non-streaming reply (heap), or NULL on allocation failure. */
static char *sse_assemble(const struct sse *s)
{
	json_t *root = json_object(), *msg = json_object(), *choice = json_object();
	json_t *choices = json_array();
	char *out = NULL;

	if (!root || !msg || !choice || !choices)
		goto out;
	if (s->id)
		json_object_set_new(root, "id", json_string(s->id));
	json_object_set_new(root, "object", json_string("chat.completion"));
	if (s->created)
		json_object_set(root, "created", s->created);
	if (s->model)
		json_object_set_new(root, "model", json_string(s->model));
	json_object_set_new(msg, "role", json_string("assistant"));
	json_object_set_new(msg, "content",
			    json_stringn(s->content.p ? s->content.p : "", s->content.len));
	json_object_set_new(choice, "index", json_integer(0));
	json_object_set(choice, "message", msg);
	json_object_set_new(choice, "finish_reason",
			    s->finish_reason ? json_string(s->finish_reason) : json_null());
	json_array_append(choices, choice);
	json_object_set(root, "choices", choices);
	if (s->usage)
		json_object_set(root, "usage", s->usage);
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(choices);
	json_decref(choice);
	json_decref(msg);
	json_decref(root);
	return out;
}

/* ---------------------------------------------------------- callbacks -- */

static void touch(struct hark_llm_xfer *x)
{
	x->started = 1;
	x->last_activity = mono_now();
}

static void reset_headers(struct hark_llm_xfer *x)
{
	x->h_retry_after = -1;
	x->h_retry_after_ms = -1;
	x->h_rem_req = -1;
	x->h_rem_tok = -1;
	x->h_reset_req = -1;
	x->h_reset_tok = -1;
	x->ctype_seen = 0;
	x->ctype_sse = 0;
}

static size_t header_cb(char *b, size_t size, size_t nitems, void *ud)
{
	struct hark_llm_xfer *x = ud;
	size_t len = size * nitems;
	const char *colon;
	char name[64], value[256];
	size_t namelen;

	touch(x);
	if (len >= 5 && memcmp(b, "HTTP/", 5) == 0) {
		reset_headers(x); /* a new response (after 1xx, ...) */
		return len;
	}
	colon = memchr(b, ':', len);
	if (!colon)
		return len;
	namelen = (size_t)(colon - b);
	if (namelen == 0 || namelen >= sizeof(name))
		return len;
	trim_copy(b, namelen, name, sizeof(name));
	trim_copy(colon + 1, len - namelen - 1, value, sizeof(value));
	if (strcasecmp(name, "retry-after") == 0)
		x->h_retry_after = hark_llm_http_parse_retry_after(value, (double)time(NULL));
	else if (strcasecmp(name, "retry-after-ms") == 0) {
		double v = parse_count(value);

		x->h_retry_after_ms = v >= 0 ? v / 1000.0 : -1;
	} else if (strcasecmp(name, "x-ratelimit-remaining-requests") == 0)
		x->h_rem_req = parse_count(value);
	else if (strcasecmp(name, "x-ratelimit-remaining-tokens") == 0)
		x->h_rem_tok = parse_count(value);
	else if (strcasecmp(name, "x-ratelimit-reset-requests") == 0)
		x->h_reset_req = hark_llm_http_parse_duration(value);
	else if (strcasecmp(name, "x-ratelimit-reset-tokens") == 0)
		x->h_reset_tok = hark_llm_http_parse_duration(value);
	else if (strcasecmp(name, "content-type") == 0) {
		x->ctype_seen = 1;
		x->ctype_sse = strcasestr(value, "text/event-stream") != NULL;
	}
	return len;
}

static int pick_mode(struct hark_llm_xfer *x)
{
	long status = 0;

	if (!x->stream)
		return MODE_RAW;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && (!x->ctype_seen || x->ctype_sse))
		return MODE_SSE;
	return MODE_RAW;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct hark_llm_xfer *x = ud;
	size_t len = size * nmemb;
	int rc;

	touch(x);
	if (x->cancel && *x->cancel) {
		x->abort_reason = ABORT_CANCEL;
		return 0;
	}
	if (x->mode == MODE_UNKNOWN)
		x->mode = pick_mode(x);
	if (x->mode == MODE_SSE)
		rc = sse_feed(&x->sse, p, len, x->max_response);
	else
		rc = buf_append(&x->body, p, len, x->max_response);
	if (rc) {
		x->abort_reason = rc;
		return 0;
	}
	return len;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct hark_llm_xfer *x = ud;
	double now;

	(void)dltotal;
	(void)ultotal;
	if (x->cancel && *x->cancel) {
		x->abort_reason = ABORT_CANCEL;
		return 1;
	}
	now = mono_now();
	if (!x->started || dlnow != x->last_dl || ulnow != x->last_ul) {
		x->started = 1;
		x->last_dl = dlnow;
		x->last_ul = ulnow;
		x->last_activity = now;
	}
	if (x->idle_timeout_s > 0 && now - x->last_activity >= x->idle_timeout_s) {
		x->abort_reason = ABORT_IDLE;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------- public -- */

static long secs_to_ms(double s)
{
	double ms = ceil(s * 1000.0);

	if (ms < 1)
		ms = 1;
	if (ms > 1e9)
		ms = 1e9;
	return (long)ms;
}

static int has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

int hark_llm_xfer_new(const struct hark_llm_xfer_req *req, CURLSH *share,
		      struct hark_llm_xfer **out)
{
	struct hark_llm_xfer *x = NULL;
	char *auth = NULL;
	CURL *e;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!req || !req->url || !req->url[0] || req->max_response == 0 ||
	    (!req->body && req->body_len) || has_crlf(req->url) || has_crlf(req->api_key) ||
	    isnan(req->connect_timeout_s) || isnan(req->timeout_s) || isnan(req->idle_timeout_s))
		return HARK_ERR_INVALID_ARG;
	rc = hark_llm_http_global_init();
	if (rc != HARK_OK)
		return rc;
	rc = HARK_ERR_NOMEM;
	x = calloc(1, sizeof(*x));
	if (!x)
		goto out;
	reset_headers(x);
	x->cancel = req->cancel;
	x->user = req->user;
	x->stream = req->stream ? 1 : 0;
	/* keeps max + 1 and doubling in buf_append clear of overflow */
	x->max_response = req->max_response < SIZE_MAX / 4 ? req->max_response : SIZE_MAX / 4;
	x->idle_timeout_s = req->idle_timeout_s > 0 ? req->idle_timeout_s : 0;
	x->req_len = req->body_len;
	x->req_body = malloc(req->body_len + 1);
	if (!x->req_body)
		goto out;
	if (req->body_len)
		memcpy(x->req_body, req->body, req->body_len);
	x->req_body[req->body_len] = '\0';

	{
		struct curl_slist *h = NULL, *n;
		const char *lines[4] = {
			"Content-Type: application/json",
			x->stream ? "Accept: text/event-stream" : "Accept: application/json",
			"Expect:", /* no 100-continue round trip for large bodies */
			NULL,
		};

		if (req->api_key && req->api_key[0]) {
			size_t alen = strlen(req->api_key) + sizeof("Authorization: Bearer ");

			auth = malloc(alen);
			if (!auth)
				goto out;
			snprintf(auth, alen, "Authorization: Bearer %s", req->api_key);
			lines[3] = auth;
		}
		for (int i = 0; i < 4; i++) {
			if (!lines[i])
				continue;
			n = curl_slist_append(h, lines[i]);
			if (!n) {
				curl_slist_free_all(h);
				goto out;
			}
			h = n;
		}
		x->headers = h;
	}

	e = x->easy = curl_easy_init();
	if (!e)
		goto out;
	rc = HARK_ERR_NETWORK;
	if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req_len) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xferinfo_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK)
		goto out;
	/* best effort: options a libcurl build may lack */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Waiting for a connection that may multiplex only pays on TLS, where
	 * ALPN can offer HTTP/2. Over plain http a new request would wait for
	 * the first reply on the pending connection (the whole completion). */
	if (req->url && strncasecmp(req->url, "https://", 8) == 0)
		curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "hark/" HARK_VERSION_STRING);
	if (!x->stream) {
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response);
	}
	if (req->connect_timeout_s > 0 &&
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, secs_to_ms(req->connect_timeout_s)) !=
		    CURLE_OK)
		goto out;
	if (req->timeout_s > 0 &&
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, secs_to_ms(req->timeout_s)) != CURLE_OK)
		goto out;
	if (share && curl_easy_setopt(e, CURLOPT_SHARE, share) != CURLE_OK)
		goto out;
	rc = HARK_OK;
out:
	free(auth);
	if (rc != HARK_OK) {
		hark_llm_xfer_free(x);
		return rc;
	}
	*out = x;
	return HARK_OK;
}

CURL *hark_llm_xfer_easy(struct hark_llm_xfer *x)
{
	return x ? x->easy : NULL;
}

void *hark_llm_xfer_user(const struct hark_llm_xfer *x)
{
	return x ? x->user : NULL;
}

struct hark_llm_xfer *hark_llm_xfer_from_easy(CURL *easy)
{
	char *p = NULL;

	if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK)
		return NULL;
	return (struct hark_llm_xfer *)(void *)p;
}

/* Maps the transfer's end to an outcome; err gets the reason. */
static int classify(struct hark_llm_xfer *x, CURLcode code, char *err, size_t errlen)
{
	const char *msg;

	if (code != CURLE_OK) {
		switch (x->abort_reason) {
		case ABORT_CANCEL:
			snprintf(err, errlen, "canceled");
			return HARK_LLM_XFER_CANCELED;
		case ABORT_TOO_LARGE:
			snprintf(err, errlen, "response larger than %zu bytes", x->max_response);
			return HARK_LLM_XFER_TOO_LARGE;
		case ABORT_IDLE:
			snprintf(err, errlen, "no data received for %.3f s", x->idle_timeout_s);
			return HARK_LLM_XFER_TIMEOUT;
		case ABORT_NOMEM:
			snprintf(err, errlen, "out of memory receiving the response");
			return HARK_LLM_XFER_ERROR;
		default:
			break;
		}
	}
	if (code == CURLE_OK)
		return HARK_LLM_XFER_OK;
	msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
	snprintf(err, errlen, "%.200s (curl %d)", msg, (int)code);
	switch (code) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_PROXY:
		return HARK_LLM_XFER_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return HARK_LLM_XFER_TIMEOUT;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2_STREAM:
		return HARK_LLM_XFER_TRUNCATED;
	case CURLE_FILESIZE_EXCEEDED:
		snprintf(err, errlen, "response larger than %zu bytes", x->max_response);
		return HARK_LLM_XFER_TOO_LARGE;
	default:
		return HARK_LLM_XFER_ERROR;
	}
}

static void result_init(struct hark_llm_xfer_result *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = HARK_LLM_XFER_ERROR;
	r->retry_after_s = -1;
	r->remaining_requests = -1;
	r->remaining_tokens = -1;
	r->reset_requests_s = -1;
	r->reset_tokens_s = -1;
}

/* Verdict on a decoded stream and its assembled body. */
static void finish_stream(struct hark_llm_xfer *x, CURLcode code,
			  struct hark_llm_xfer_result *out)
{
	struct sse *s = &x->sse;
	int complete, rc = 0;
	char *body = NULL;

	if (code == CURLE_OK && x->abort_reason == ABORT_NONE) {
		/* the server ended the body cleanly: take a last unterminated
		 * line and event as complete */
		if (s->line.len)
			rc = sse_line(s, x->max_response);
		if (!rc)
			rc = sse_dispatch(s, x->max_response);
		if (rc == ABORT_TOO_LARGE) {
			out->outcome = HARK_LLM_XFER_TOO_LARGE;
			snprintf(out->error, sizeof(out->error), "response larger than %zu bytes",
				 x->max_response);
		} else if (rc) {
			out->outcome = HARK_LLM_XFER_ERROR;
			snprintf(out->error, sizeof(out->error), "out of memory");
		}
	}
	complete = s->done || s->finish_reason;
	/* a whole reply (or a provider error) outranks a connection that
	 * died or hung after it */
	if (out->outcome == HARK_LLM_XFER_OK ||
	    ((complete || s->error) && (out->outcome == HARK_LLM_XFER_TRUNCATED ||
					out->outcome == HARK_LLM_XFER_TIMEOUT))) {
		if (s->error) {
			json_t *m = json_object_get(json_object_get(s->error, "error"), "message");

			out->outcome = HARK_LLM_XFER_ERROR;
			snprintf(out->error, sizeof(out->error), "provider error in stream: %.200s",
				 json_is_string(m) ? json_string_value(m) : "(no message)");
		} else if (!complete) {
			out->outcome = HARK_LLM_XFER_TRUNCATED;
			snprintf(out->error, sizeof(out->error),
				 "stream ended before [DONE] and finish_reason");
		} else {
			out->outcome = HARK_LLM_XFER_OK;
			if (s->bad_events)
				snprintf(out->error, sizeof(out->error),
					 "malformed SSE event: %s", s->bad_snippet);
		}
	}
	if (s->error) {
		body = json_dumps(s->error, JSON_COMPACT);
	} else if (s->bad_events) {
		/* not JSON on purpose: the reply must not look whole */
		size_t n = strlen(s->bad_snippet) + 64;

		body = malloc(n);
		if (body)
			snprintf(body, n, "malformed SSE event: %s", s->bad_snippet);
	} else {
		body = sse_assemble(s);
	}
	if (!body) {
		body = strdup("");
		out->outcome = HARK_LLM_XFER_ERROR;
		snprintf(out->error, sizeof(out->error), "out of memory");
	}
	out->body = body;
	out->body_len = body ? strlen(body) : 0;
}

void hark_llm_xfer_finish(struct hark_llm_xfer *x, CURLcode code,
			  struct hark_llm_xfer_result *out)
{
	curl_off_t total_us = 0;
	long status = 0;

	if (!out)
		return;
	result_init(out);
	if (!x || !x->easy) {
		snprintf(out->error, sizeof(out->error), "no transfer");
		out->body = strdup("");
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
		out->elapsed_s = (double)total_us / 1e6;
	out->status = status;
	out->retry_after_s = x->h_retry_after_ms >= 0 ? x->h_retry_after_ms : x->h_retry_after;
	out->remaining_requests = x->h_rem_req;
	out->remaining_tokens = x->h_rem_tok;
	out->reset_requests_s = x->h_reset_req;
	out->reset_tokens_s = x->h_reset_tok;
	out->outcome = classify(x, code, out->error, sizeof(out->error));

	if (x->mode == MODE_UNKNOWN && x->stream && status >= 200 && status < 300 &&
	    (!x->ctype_seen || x->ctype_sse))
		x->mode = MODE_SSE; /* a 2xx stream that sent no body at all */
	if (x->mode == MODE_SSE) {
		finish_stream(x, code, out);
		return;
	}
	if (x->body.p) {
		out->body = x->body.p;
		out->body_len = x->body.len;
		x->body.p = NULL;
		x->body.len = x->body.cap = 0;
	} else {
		out->body = strdup("");
		out->body_len = 0;
		if (!out->body) {
			out->outcome = HARK_LLM_XFER_ERROR;
			snprintf(out->error, sizeof(out->error), "out of memory");
		}
	}
}

void hark_llm_xfer_free(struct hark_llm_xfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->req_body);
	buf_free(&x->body);
	sse_free(&x->sse);
	free(x);
}

void hark_llm_xfer_result_clear(struct hark_llm_xfer_result *r)
{
	if (!r)
		return;
	free(r->body);
	result_init(r);
	r->outcome = HARK_LLM_XFER_OK;
}
