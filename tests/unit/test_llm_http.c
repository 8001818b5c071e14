/*
 * Unit tests for the LLM HTTP transfers (src/llm/http). The header parsers
 * are checked on OpenAI duration strings, Retry-After delta seconds and all
 * three HTTP-date forms, and junk. Then real transfers run over loopback
 * against a small raw-socket HTTP/1.1 server thread inside this test, each
 * driven by a curl multi loop like the client's: a JSON 200 with rate-limit
 * headers (and the request's method, headers and body as the server saw
 * them), 429s with Retry-After / retry-after-ms / an HTTP-date, SSE streams
 * with include_usage delivered in awkward byte splits (single bytes, CR LF
 * split across reads, CR-only and LF-only line ends, comments, multi-line
 * data, extra fields) both close-delimited and chunked, streams cut before
 * [DONE] (clean close and mid-chunk), an error event inside a stream, an
 * event whose joined data lines are not JSON, a
 * non-2xx reply to a stream request, a JSON reply to a stream request,
 * bodies over the cap (announced and chunked), a body cut short, a server
 * that accepts and never answers (idle and total timeouts measured within
 * bounds), a stall after the headers, a closed port, the cancel flag set
 * mid-transfer (silent server and flowing stream), and connection reuse
 * through the share handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hark/hark.h"
#include "llm/http.h"

#define EPS 1e-9

/* ----------------------------------------------------------- parsers -- */

static void test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		double v;
	} ok[] = {
		{"6m0s", 360},	 {"1m30.5s", 90.5}, {"20ms", 0.02}, {"1s", 1},
		{"2h", 7200},	 {"0.5", 0.5},	    {"7", 7},	    {"1h2m3s", 3723},
		{"250ms", 0.25}, {"  1s ", 1},	    {"0s", 0},	    {"1.5us", 1.5e-6},
		{"3ns", 3e-9},	 {"2m", 120},	    {"1.25h", 4500}, {".5s", 0.5},
		{"59m59.999s", 3599.999},
	};
	static const char *const bad[] = {"", " ", "abc", "1x", "s", "-1s", "1s2", "1m-3s",
					  "ms", "1e3", "inf", "nan", "1 s", ".", "1.2.3s",
					  "+1s", "0x10", "1S", "s1"};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		double v = hark_llm_http_parse_duration(ok[i].s);

		if (fabs(v - ok[i].v) > 1e-9 * (1 + ok[i].v))
			fail_msg("duration \"%s\" -> %.12g, want %.12g", ok[i].s, v, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v = hark_llm_http_parse_duration(bad[i]);

		if (v != -1)
			fail_msg("duration \"%s\" -> %g, want -1", bad[i], v);
	}
	assert_true(hark_llm_http_parse_duration(NULL) == -1);
}

static void test_parse_retry_after(void **state)
{
	/* RFC 9110's example instant: Sun, 06 Nov 1994 08:49:37 GMT */
	struct tm tm = {.tm_year = 94, .tm_mon = 10, .tm_mday = 6,
			.tm_hour = 8, .tm_min = 49, .tm_sec = 37};
	const double t = (double)timegm(&tm);
	static const char *const dates[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate */
		"Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
		"Sun Nov  6 08:49:37 1994",	  /* asctime */
		"  Sun, 06 Nov 1994 08:49:37 GMT ",
	};
	static const char *const bad[] = {
		"", "soon", "-5", "5s", "1e3", "Sun, 06 Nov 1994 08:49:37",
		"Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 25:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
		"Wed, 29 Feb 1995 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT",
		"Sun Nov  6 08:49:37 94", "Sun, 06 Nov 1994 08:49:37 GMT trailing",
		"7 seconds",
	};

	(void)state;
	assert_true(t == 784111777.0);
	assert_true(hark_llm_http_parse_retry_after("7", 0) == 7);
	assert_true(hark_llm_http_parse_retry_after("0", 0) == 0);
	assert_true(hark_llm_http_parse_retry_after(" 120 ", 0) == 120);
	assert_true(fabs(hark_llm_http_parse_retry_after("1.5", 0) - 1.5) < EPS);
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		double v = hark_llm_http_parse_retry_after(dates[i], t - 37);

		if (fabs(v - 37) > EPS)
			fail_msg("retry-after \"%s\" -> %g, want 37", dates[i], v);
	}
	/* a leap day, and a date in the past is "now" */
	tm = (struct tm){.tm_year = 124, .tm_mon = 1, .tm_mday = 29, .tm_hour = 23,
			 .tm_min = 59, .tm_sec = 59};
	assert_true(hark_llm_http_parse_retry_after("Thu, 29 Feb 2024 23:59:59 GMT",
						    (double)timegm(&tm) - 90.5) == 90.5);
	assert_true(hark_llm_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t + 100) ==
		    0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v = hark_llm_http_parse_retry_after(bad[i], t);

		if (v != -1)
			fail_msg("retry-after \"%s\" -> %g, want -1", bad[i], v);
	}
	assert_true(hark_llm_http_parse_retry_after(NULL, 0) == -1);
}

/* ------------------------------------------------------ test server -- */

enum scenario {
	SC_JSON,
	SC_429,
	SC_429_MS,
	SC_429_DATE,
	SC_SSE_CLOSE,     /* close-delimited, random small splits */
	SC_SSE_CHUNKED,   /* chunked, one chunk per random piece */
	SC_SSE_CUT,       /* close-delimited, ends before finish/[DONE] */
	SC_SSE_CUT_CHUNK, /* chunked, connection drops mid-chunk */
	SC_SSE_ERROR_EVT, /* data: {"error":..} */
	SC_SSE_MALFORMED, /* one event's data is not JSON */
	SC_SSE_FINISH_CUT, /* finish_reason arrives, then the connection drops */
	SC_ERR_500,       /* 500 JSON error (to a stream request) */
	SC_BIG_CL,
	SC_BIG_CHUNKED,
	SC_PARTIAL,
	SC_SILENT,
	SC_STALL,         /* headers + some body, then silence */
	SC_SSE_SLOW,      /* an event every 30 ms for a long time */
};

struct srv {
	int lfd;
	int port;
	pthread_t th;
	volatile int stop;
	volatile int scenario;
	size_t max_split; /* SSE pieces: 1 .. max_split bytes */
	uint64_t seed;
	pthread_mutex_t mu;
	int accepts;
	int active;      /* connection threads running */
	char req[16384]; /* the last request as received */
	size_t req_len;
	char sse[8192];  /* the SSE stream served */
	size_t sse_len;
	char expect_content[1024];
};

static struct srv g_srv;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* Waits for the peer to close (or stop); 1 if it closed. */
static int wait_close(struct srv *s, int fd, double max_s)
{
	double t0 = mono();
	char b[512];

	while (!s->stop && mono() - t0 < max_s) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 20) > 0) {
			ssize_t r = recv(fd, b, sizeof(b), 0);

			if (r <= 0)
				return 1;
		}
	}
	return 0;
}

/* Reads one request; 0 ok, -1 closed/stop. */
static int read_request(struct srv *s, int fd)
{
	char buf[sizeof(s->req)];
	size_t len = 0, need = 0;
	char *hdr_end = NULL;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (s->stop)
			return -1;
		if (hdr_end && len >= need)
			break;
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (len >= sizeof(buf) - 1)
			return -1;
		r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");
			size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;

			need = (size_t)(hdr_end + 4 - buf) + body;
		}
	}
	pthread_mutex_lock(&s->mu);
	memcpy(s->req, buf, len + 1);
	s->req_len = len;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static const char *const g_deltas[] = {
	"Hel", "lo, ", "w\xc3\xb6rld", " \"quoted\"", " back\\slash", "\nnew line", " tab\t",
	" and a longer piece of text that spans more bytes than most splits", ".",
};

static void add_event(char *out, size_t cap, size_t *len, const char *json, const char *eol,
		      int multiline, int extras)
{
	const char *p = json;

	if (extras)
		*len += (size_t)snprintf(out + *len, cap - *len, "event: message%sid: %zu%s", eol,
					 *len, eol);
	if (multiline) {
		/* split the JSON after its first member into two data lines */
		const char *comma = strchr(json, ',');
		int head = (int)(comma - json + 1);

		*len += (size_t)snprintf(out + *len, cap - *len, "data: %.*s%sdata:%s%s%s", head,
					 json, eol, comma + 1, eol, eol);
		return;
	}
	*len += (size_t)snprintf(out + *len, cap - *len, "data: %s%s%s", p, eol, eol);
}

static char *chunk_json(const char *content, const char *finish, int role)
{
	json_t *delta = json_object(), *choice, *root;
	char *s;

	if (role)
		json_object_set_new(delta, "role", json_string("assistant"));
	if (content)
		json_object_set_new(delta, "content", json_string(content));
	choice = json_pack("{s:i, s:o, s:o}", "index", 0, "delta", delta, "finish_reason",
			   finish ? json_string(finish) : json_null());
	root = json_pack("{s:s, s:s, s:i, s:s, s:[o]}", "id", "chatcmpl-abc123", "object",
			 "chat.completion.chunk", "created", 1700000000, "model", "sim-small",
			 "choices", choice);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/*
 * The SSE stream: a comment, the role chunk, content deltas with mixed line
 * ends (CRLF, LF, CR), a multi-line data event, extra fields, a finish
 * chunk, a usage chunk and [DONE]. cut: stop after half of the deltas.
 */
static void build_sse(struct srv *s, int cut, int error_event, int malformed)
{
	static const char *const eols[] = {"\r\n", "\n", "\r"};
	size_t n = 0, nd = sizeof(g_deltas) / sizeof(g_deltas[0]);
	char *j;

	s->expect_content[0] = '\0';
	n += (size_t)snprintf(s->sse + n, sizeof(s->sse) - n, ": keep-alive comment\r\n\r\n");
	j = chunk_json("", NULL, 1);
	add_event(s->sse, sizeof(s->sse), &n, j, "\n", 0, 0);
	free(j);
	for (size_t i = 0; i < (cut ? nd / 2 : nd); i++) {
		j = chunk_json(g_deltas[i], NULL, 0);
		add_event(s->sse, sizeof(s->sse), &n, j, eols[i % 3], i == 2 || i == 6, i == 4);
		free(j);
		strcat(s->expect_content, g_deltas[i]);
		if (i == 3)
			n += (size_t)snprintf(s->sse + n, sizeof(s->sse) - n, ":ping\n");
		if (malformed && i == 1) /* the data lines join with \n: "12\n34" */
			n += (size_t)snprintf(s->sse + n, sizeof(s->sse) - n,
					      "data: {\"choices\":[],\"n\":12\ndata:34}\n\n");
		if (error_event && i == 3) {
			add_event(s->sse, sizeof(s->sse), &n,
				  "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}",
				  "\n", 0, 0);
			break;
		}
	}
	if (!cut && !error_event) {
		j = chunk_json(NULL, "stop", 0);
		add_event(s->sse, sizeof(s->sse), &n, j, "\r\n", 0, 0);
		free(j);
		add_event(s->sse, sizeof(s->sse), &n,
			  "{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\","
			  "\"model\":\"sim-small\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
			  "\"completion_tokens\":7,\"total_tokens\":18}}",
			  "\r\n", 0, 0);
		n += (size_t)snprintf(s->sse + n, sizeof(s->sse) - n, "data: [DONE]\r\n\r\n");
	}
	assert_true(n < sizeof(s->sse) - 1);
	s->sse_len = n;
}

static void serve_pieces(struct srv *s, int fd, const char *p, size_t n, int chunked)
{
	uint64_t r = s->seed;

	while (n) {
		size_t k = 1 + (size_t)(rng_next(&r) % s->max_split);
		char hdr[32];

		if (k > n)
			k = n;
		if (chunked) {
			snprintf(hdr, sizeof(hdr), "%zx\r\n", k);
			if (send_str(fd, hdr))
				return;
		}
		if (send_all(fd, p, k) || (chunked && send_str(fd, "\r\n")))
			return;
		p += k;
		n -= k;
		usleep(200);
	}
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" \
		 "x-ratelimit-remaining-requests: 4\r\nx-ratelimit-reset-tokens: 1m30.5s\r\n"

static const char *const g_json_body =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"sim-small\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
	"\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
	"\"total_tokens\":4}}";

/* Serves one request; returns 1 to keep the connection, 0 to close it. */
static int respond(struct srv *s, int fd)
{
	char hdr[1024];
	int sc = s->scenario;

	switch (sc) {
	case SC_JSON:
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nx-ratelimit-limit-requests: 60\r\n"
			 "x-ratelimit-remaining-requests: 59\r\n"
			 "X-RateLimit-Remaining-Tokens: 149000\r\n"
			 "x-ratelimit-reset-requests: 1s\r\nx-ratelimit-reset-tokens:6m0s\r\n\r\n",
			 strlen(g_json_body));
		return send_str(fd, hdr) == 0 && send_str(fd, g_json_body) == 0;
	case SC_429:
	case SC_429_MS:
	case SC_429_DATE: {
		const char *body = "{\"error\":{\"message\":\"Rate limit reached\","
				   "\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}";
		char extra[128] = "";

		if (sc == SC_429)
			snprintf(extra, sizeof(extra), "Retry-After: 7\r\n");
		else if (sc == SC_429_MS)
			snprintf(extra, sizeof(extra),
				 "Retry-After: 2\r\nretry-after-ms: 1500\r\n");
		else {
			time_t t = time(NULL) + 30;
			struct tm tm;

			gmtime_r(&t, &tm);
			strftime(extra, sizeof(extra), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
				 &tm);
		}
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n%sx-ratelimit-remaining-requests: 0\r\n"
			 "x-ratelimit-reset-requests: 20ms\r\n\r\n",
			 strlen(body), extra);
		return send_str(fd, hdr) == 0 && send_str(fd, body) == 0;
	}
	case SC_SSE_CLOSE:
	case SC_SSE_CUT:
	case SC_SSE_ERROR_EVT:
	case SC_SSE_MALFORMED:
		build_sse(s, sc == SC_SSE_CUT, sc == SC_SSE_ERROR_EVT, sc == SC_SSE_MALFORMED);
		if (send_str(fd, SSE_HEAD "Connection: close\r\n\r\n"))
			return 0;
		serve_pieces(s, fd, s->sse, s->sse_len, 0);
		return 0;
	case SC_SSE_CHUNKED:
	case SC_SSE_CUT_CHUNK:
	case SC_SSE_FINISH_CUT:
		build_sse(s, 0, 0, 0);
		if (send_str(fd, SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"))
			return 0;
		if (sc == SC_SSE_CHUNKED) {
			serve_pieces(s, fd, s->sse, s->sse_len, 1);
			return send_str(fd, "0\r\n\r\n") == 0;
		}
		if (sc == SC_SSE_FINISH_CUT) {
			/* everything up to the usage chunk, then a dead connection */
			const char *u = strstr(s->sse, "\"choices\":[]");

			while (u > s->sse && u[-1] != '\n')
				u--;
			serve_pieces(s, fd, s->sse, (size_t)(u - s->sse), 1);
			return 0;
		}
		/* a chunk announced longer than what comes */
		snprintf(hdr, sizeof(hdr), "%zx\r\n", s->sse_len);
		send_str(fd, hdr);
		send_all(fd, s->sse, s->sse_len / 3);
		strcpy(s->expect_content, "");
		return 0;
	case SC_ERR_500: {
		const char *body = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}";

		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 strlen(body));
		return send_str(fd, hdr) == 0 && send_str(fd, body) == 0;
	}
	case SC_BIG_CL:
	case SC_BIG_CHUNKED: {
		char blk[1000];

		memset(blk, 'x', sizeof(blk));
		if (sc == SC_BIG_CL)
			send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 100000\r\n\r\n");
		else
			send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Transfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < 100; i++) {
			if (sc == SC_BIG_CHUNKED && send_str(fd, "3e8\r\n"))
				break;
			if (send_all(fd, blk, sizeof(blk)))
				break;
			if (sc == SC_BIG_CHUNKED && send_str(fd, "\r\n"))
				break;
		}
		if (sc == SC_BIG_CHUNKED)
			send_str(fd, "0\r\n\r\n");
		return 0;
	}
	case SC_PARTIAL:
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "Content-Length: 1000\r\n\r\n{\"id\":\"chatcmpl-1\",\"choi");
		return 0;
	case SC_SILENT:
		wait_close(s, fd, 30);
		return 0;
	case SC_STALL:
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "Content-Length: 100\r\n\r\n{\"id\":");
		wait_close(s, fd, 30);
		return 0;
	case SC_SSE_SLOW: {
		char *j = chunk_json("tick ", NULL, 0);
		double t0 = mono();

		if (send_str(fd, SSE_HEAD "Connection: close\r\n\r\n") == 0) {
			while (!s->stop && mono() - t0 < 10) {
				if (send_str(fd, "data: ") || send_str(fd, j) || send_str(fd, "\n\n"))
					break;
				usleep(30000);
			}
		}
		free(j);
		return 0;
	}
	default:
		return 0;
	}
}

struct conn {
	struct srv *s;
	int fd;
};

/* One connection: requests until the peer closes or a reply ends it. */
static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->s;

	while (!s->stop && read_request(s, c->fd) == 0 && respond(s, c->fd))
		;
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	while (!s->stop) {
		struct pollfd p = {.fd = s->lfd, .events = POLLIN};
		struct conn *c;
		pthread_t th;
		int fd, one = 1;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->mu);
		s->accepts++;
		s->active++;
		pthread_mutex_unlock(&s->mu);
		if (pthread_create(&th, NULL, conn_main, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->mu);
			s->active--;
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		pthread_detach(th);
	}
	close(s->lfd);
	return NULL;
}

/* Binds 127.0.0.1:0; returns the listening fd and the port. */
static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int srv_setup(void **state)
{
	(void)state;
	memset(&g_srv, 0, sizeof(g_srv));
	pthread_mutex_init(&g_srv.mu, NULL);
	g_srv.lfd = listen_any(&g_srv.port);
	g_srv.max_split = 7;
	g_srv.seed = 42;
	if (hark_llm_http_global_init() != HARK_OK)
		return -1;
	return pthread_create(&g_srv.th, NULL, srv_main, &g_srv) == 0 ? 0 : -1;
}

static int srv_teardown(void **state)
{
	(void)state;
	g_srv.stop = 1;
	pthread_join(g_srv.th, NULL);
	for (;;) { /* connection threads notice stop within 20 ms */
		int active;

		pthread_mutex_lock(&g_srv.mu);
		active = g_srv.active;
		pthread_mutex_unlock(&g_srv.mu);
		if (!active)
			break;
		usleep(5000);
	}
	pthread_mutex_destroy(&g_srv.mu);
	return 0;
}

/* ---------------------------------------------------- transfer driver -- */

static const char *const g_req_body =
	"{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static struct hark_llm_xfer_req base_req(char *url, size_t urllen, int stream)
{
	struct hark_llm_xfer_req r;

	snprintf(url, urllen, "http://127.0.0.1:%d/v1/chat/completions", g_srv.port);
	memset(&r, 0, sizeof(r));
	r.url = url;
	r.api_key = "sk-test-123";
	r.body = g_req_body;
	r.body_len = strlen(g_req_body);
	r.connect_timeout_s = 2;
	r.timeout_s = 10;
	r.idle_timeout_s = 5;
	r.max_response = 1 << 20;
	r.stream = stream;
	return r;
}

/*
 * Runs x to its end in a multi loop that wakes at least every 10 ms (as
 * the client's loop must for idle timeouts); sets *cancel after cancel_at
 * seconds when cancel_at > 0. Returns the CURLcode; *wall = seconds.
 */
static CURLcode drive(struct hark_llm_xfer *x, volatile int *cancel, double cancel_at,
		      double *wall)
{
	CURLM *m = curl_multi_init();
	CURL *e = hark_llm_xfer_easy(x);
	CURLcode code = CURLE_FAILED_INIT;
	double t0 = mono();
	int running = 1, q;
	CURLMsg *msg;

	assert_non_null(m);
	assert_ptr_equal(hark_llm_xfer_from_easy(e), x);
	assert_int_equal(curl_multi_add_handle(m, e), CURLM_OK);
	while (running) {
		assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
		if (!running)
			break;
		curl_multi_poll(m, NULL, 0, 10, NULL);
		if (cancel && cancel_at > 0 && mono() - t0 >= cancel_at)
			*cancel = 1;
		if (mono() - t0 > 30)
			fail_msg("transfer did not end in 30 s");
	}
	*wall = mono() - t0;
	while ((msg = curl_multi_info_read(m, &q)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
			code = msg->data.result;
	curl_multi_remove_handle(m, e);
	curl_multi_cleanup(m);
	return code;
}

/* One transfer of scenario sc; fills *res (clear it after). */
static double run_one(int sc, struct hark_llm_xfer_req *r, CURLSH *share,
		      struct hark_llm_xfer_result *res, volatile int *cancel, double cancel_at)
{
	struct hark_llm_xfer *x = NULL;
	double wall;
	CURLcode code;

	g_srv.scenario = sc;
	assert_int_equal(hark_llm_xfer_new(r, share, &x), HARK_OK);
	assert_ptr_equal(hark_llm_xfer_user(x), r->user);
	code = drive(x, cancel, cancel_at, &wall);
	hark_llm_xfer_finish(x, code, res);
	hark_llm_xfer_free(x);
	assert_non_null(res->body);
	assert_int_equal(strlen(res->body), res->body_len);
	/* the reported elapsed time is the transfer's own */
	assert_true(res->elapsed_s >= 0 && res->elapsed_s <= wall + 0.05);
	return wall;
}

static void test_json_200_and_headers(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128], req[sizeof(g_srv.req)];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);
	int tag = 5;

	(void)state;
	r.user = &tag;
	run_one(SC_JSON, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, g_json_body);
	assert_string_equal(res.error, "");
	assert_true(res.remaining_requests == 59);
	assert_true(res.remaining_tokens == 149000);
	assert_true(fabs(res.reset_requests_s - 1) < EPS);
	assert_true(fabs(res.reset_tokens_s - 360) < EPS);
	assert_true(res.retry_after_s == -1);
	hark_llm_xfer_result_clear(&res);
	assert_null(res.body);

	/* what the server received */
	pthread_mutex_lock(&g_srv.mu);
	memcpy(req, g_srv.req, g_srv.req_len + 1);
	pthread_mutex_unlock(&g_srv.mu);
	assert_true(strncmp(req, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
	assert_non_null(strcasestr(req, "\r\nAuthorization: Bearer sk-test-123\r\n"));
	assert_non_null(strcasestr(req, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strcasestr(req, "\r\nAccept: application/json\r\n"));
	assert_null(strcasestr(req, "\r\nExpect:"));
	assert_non_null(strstr(req, "\r\n\r\n"));
	assert_string_equal(strstr(req, "\r\n\r\n") + 4, g_req_body);

	/* no key: no Authorization header; stream: Accept event-stream */
	r.api_key = NULL;
	r.stream = 1;
	run_one(SC_JSON, &r, NULL, &res, NULL, 0);
	/* a JSON reply to a stream request is kept as it came */
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_string_equal(res.body, g_json_body);
	hark_llm_xfer_result_clear(&res);
	pthread_mutex_lock(&g_srv.mu);
	memcpy(req, g_srv.req, g_srv.req_len + 1);
	pthread_mutex_unlock(&g_srv.mu);
	assert_null(strcasestr(req, "Authorization:"));
	assert_non_null(strcasestr(req, "\r\nAccept: text/event-stream\r\n"));
}

static void test_429_retry_after(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);
	json_t *j;

	(void)state;
	run_one(SC_429, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.status, 429);
	assert_true(res.retry_after_s == 7);
	assert_true(res.remaining_requests == 0);
	assert_true(fabs(res.reset_requests_s - 0.02) < EPS);
	assert_true(res.remaining_tokens == -1 && res.reset_tokens_s == -1);
	j = json_loads(res.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
			    "rate_limit_exceeded");
	json_decref(j);
	hark_llm_xfer_result_clear(&res);

	/* retry-after-ms wins over Retry-After */
	run_one(SC_429_MS, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.status, 429);
	assert_true(fabs(res.retry_after_s - 1.5) < EPS);
	hark_llm_xfer_result_clear(&res);

	/* an HTTP-date 30 s ahead */
	run_one(SC_429_DATE, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.status, 429);
	assert_true(res.retry_after_s >= 27 && res.retry_after_s <= 31);
	hark_llm_xfer_result_clear(&res);

	/* and the same on a stream request: non-2xx keeps its raw body */
	r.stream = 1;
	run_one(SC_429, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.status, 429);
	assert_true(res.retry_after_s == 7);
	assert_non_null(strstr(res.body, "rate_limit_exceeded"));
	hark_llm_xfer_result_clear(&res);
	run_one(SC_ERR_500, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.status, 500);
	assert_non_null(strstr(res.body, "\"boom\""));
	hark_llm_xfer_result_clear(&res);
}

/* Checks an assembled stream reply against what the server sent. */
static void check_assembled(const struct hark_llm_xfer_result *res, int with_usage)
{
	json_error_t je;
	json_t *j = json_loads(res->body, 0, &je), *c, *u;

	if (!j)
		fail_msg("assembled body is not JSON (%s): %s", je.text, res->body);
	assert_string_equal(json_string_value(json_object_get(j, "id")), "chatcmpl-abc123");
	assert_string_equal(json_string_value(json_object_get(j, "model")), "sim-small");
	c = json_array_get(json_object_get(j, "choices"), 0);
	assert_non_null(c);
	assert_int_equal(json_array_size(json_object_get(j, "choices")), 1);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(c, "message"), "role")),
		"assistant");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(c, "message"), "content")),
		g_srv.expect_content);
	assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
	u = json_object_get(j, "usage");
	if (with_usage) {
		assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 11);
		assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 7);
		assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 18);
	} else {
		assert_null(u);
	}
	json_decref(j);
}

static void test_sse_awkward_splits(void **state)
{
	static const size_t splits[] = {1, 2, 3, 7, 40, 4096};
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 1);

	(void)state;
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		for (int chunked = 0; chunked < 2; chunked++) {
			g_srv.max_split = splits[i];
			g_srv.seed = 1000 + i * 2 + (uint64_t)chunked;
			run_one(chunked ? SC_SSE_CHUNKED : SC_SSE_CLOSE, &r, NULL, &res, NULL, 0);
			if (res.outcome != HARK_LLM_XFER_OK)
				fail_msg("split %zu chunked %d: outcome %d (%s)", splits[i], chunked,
					 res.outcome, res.error);
			assert_int_equal(res.status, 200);
			check_assembled(&res, 1);
			/* headers of a streamed reply are captured too */
			assert_true(res.remaining_requests == 4);
			assert_true(fabs(res.reset_tokens_s - 90.5) < EPS);
			hark_llm_xfer_result_clear(&res);
		}
	}
	g_srv.max_split = 7;
}

static void test_sse_cut(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 1);
	json_t *j;

	(void)state;
	/* clean close after half of the deltas: curl is happy, the stream is not */
	run_one(SC_SSE_CUT, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TRUNCATED);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.error, "[DONE]"));
	/* the partial content is there, finish_reason null */
	j = json_loads(res.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(json_object_get(j, "choices"), 0),
						    "message"),
				    "content")),
			    g_srv.expect_content);
	assert_true(json_is_null(
		json_object_get(json_array_get(json_object_get(j, "choices"), 0), "finish_reason")));
	json_decref(j);
	hark_llm_xfer_result_clear(&res);

	/* connection drops in the middle of a chunk */
	run_one(SC_SSE_CUT_CHUNK, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TRUNCATED);
	hark_llm_xfer_result_clear(&res);

	/* finish_reason arrived, then the connection died before usage and
	 * [DONE]: the content is whole, usage missing */
	run_one(SC_SSE_FINISH_CUT, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	check_assembled(&res, 0);
	hark_llm_xfer_result_clear(&res);

	/* an error event inside a 200 stream: the provider's error, its body */
	run_one(SC_SSE_ERROR_EVT, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_ERROR);
	assert_non_null(strstr(res.error, "overloaded"));
	j = json_loads(res.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
			    "server_error");
	json_decref(j);
	hark_llm_xfer_result_clear(&res);

	/* an event whose data is not JSON: a whole stream, but the body must
	 * not pass for a reply */
	run_one(SC_SSE_MALFORMED, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.error, "malformed SSE event"));
	assert_null(json_loads(res.body, 0, NULL));
	assert_non_null(strstr(res.body, "12\n34"));
	hark_llm_xfer_result_clear(&res);
}

static void test_too_large_and_partial(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);

	(void)state;
	r.max_response = 1000;
	run_one(SC_BIG_CL, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TOO_LARGE);
	assert_true(res.body_len <= 1000);
	hark_llm_xfer_result_clear(&res);
	run_one(SC_BIG_CHUNKED, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TOO_LARGE);
	assert_true(res.body_len <= 1000);
	hark_llm_xfer_result_clear(&res);
	/* a stream whose content outgrows the cap */
	r.stream = 1;
	r.max_response = 40;
	run_one(SC_SSE_CLOSE, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TOO_LARGE);
	hark_llm_xfer_result_clear(&res);
	/* the same body under a roomy cap is fine */
	r.stream = 0;
	r.max_response = 200000;
	run_one(SC_BIG_CHUNKED, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
	assert_int_equal(res.body_len, 100000);
	hark_llm_xfer_result_clear(&res);
	/* Content-Length 1000, a few bytes, close */
	run_one(SC_PARTIAL, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TRUNCATED);
	assert_int_equal(res.status, 200);
	assert_true(res.error[0] != '\0');
	hark_llm_xfer_result_clear(&res);
}

static void test_timeouts(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);
	double wall;

	(void)state;
	/* idle: nothing ever comes back */
	r.timeout_s = 10;
	r.idle_timeout_s = 0.3;
	wall = run_one(SC_SILENT, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TIMEOUT);
	assert_int_equal(res.status, 0);
	if (wall < 0.29 || wall > 2.0)
		fail_msg("idle timeout 0.3 s took %.3f s", wall);
	hark_llm_xfer_result_clear(&res);

	/* total: a fractional timeout, idle off */
	r.timeout_s = 0.25;
	r.idle_timeout_s = 0;
	wall = run_one(SC_SILENT, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TIMEOUT);
	if (wall < 0.24 || wall > 2.0)
		fail_msg("total timeout 0.25 s took %.3f s", wall);
	hark_llm_xfer_result_clear(&res);

	/* idle after the headers and a few body bytes */
	r.timeout_s = 10;
	r.idle_timeout_s = 0.2;
	wall = run_one(SC_STALL, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TIMEOUT);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.error, "no data"));
	if (wall < 0.19 || wall > 2.0)
		fail_msg("idle timeout 0.2 s after headers took %.3f s", wall);
	hark_llm_xfer_result_clear(&res);

	/* a slow but steady stream is not idle */
	r.stream = 1;
	r.idle_timeout_s = 0.15;
	r.timeout_s = 0.5;
	wall = run_one(SC_SSE_SLOW, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_TIMEOUT);
	assert_null(strstr(res.error, "no data"));
	if (wall < 0.49 || wall > 2.5)
		fail_msg("total timeout 0.5 s on a steady stream took %.3f s", wall);
	hark_llm_xfer_result_clear(&res);
}

static void test_closed_port(void **state)
{
	struct hark_llm_xfer_result res;
	struct hark_llm_xfer *x = NULL;
	struct hark_llm_xfer_req r;
	char url[128];
	int port, fd = listen_any(&port);
	double wall;

	(void)state;
	close(fd);
	r = base_req(url, sizeof(url), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
	assert_int_equal(hark_llm_xfer_new(&r, NULL, &x), HARK_OK);
	hark_llm_xfer_finish(x, drive(x, NULL, 0, &wall), &res);
	hark_llm_xfer_free(x);
	assert_int_equal(res.outcome, HARK_LLM_XFER_CONNECT);
	assert_int_equal(res.status, 0);
	assert_true(res.error[0] != '\0');
	assert_true(wall < 2.0);
	hark_llm_xfer_result_clear(&res);
}

static void test_cancel(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);
	volatile int cancel = 0;
	double wall;

	(void)state;
	r.cancel = &cancel;
	wall = run_one(SC_SILENT, &r, NULL, &res, &cancel, 0.2);
	assert_int_equal(res.outcome, HARK_LLM_XFER_CANCELED);
	if (wall < 0.19 || wall > 1.5)
		fail_msg("cancel at 0.2 s ended at %.3f s", wall);
	hark_llm_xfer_result_clear(&res);

	/* while a stream is flowing */
	cancel = 0;
	r.stream = 1;
	wall = run_one(SC_SSE_SLOW, &r, NULL, &res, &cancel, 0.2);
	assert_int_equal(res.outcome, HARK_LLM_XFER_CANCELED);
	if (wall < 0.19 || wall > 1.5)
		fail_msg("cancel at 0.2 s of a stream ended at %.3f s", wall);
	hark_llm_xfer_result_clear(&res);

	/* set before the start: nothing is transferred */
	cancel = 1;
	r.stream = 0;
	wall = run_one(SC_JSON, &r, NULL, &res, NULL, 0);
	assert_int_equal(res.outcome, HARK_LLM_XFER_CANCELED);
	hark_llm_xfer_result_clear(&res);
}

static void test_share_reuses_connection(void **state)
{
	struct hark_llm_xfer_result res;
	char url[128];
	struct hark_llm_xfer_req r = base_req(url, sizeof(url), 0);
	CURLSH *sh = NULL;
	int before, after;

	(void)state;
	assert_int_equal(hark_llm_http_share_new(&sh), HARK_OK);
	pthread_mutex_lock(&g_srv.mu);
	before = g_srv.accepts;
	pthread_mutex_unlock(&g_srv.mu);
	for (int i = 0; i < 3; i++) {
		run_one(SC_JSON, &r, sh, &res, NULL, 0);
		assert_int_equal(res.outcome, HARK_LLM_XFER_OK);
		assert_int_equal(res.status, 200);
		hark_llm_xfer_result_clear(&res);
	}
	pthread_mutex_lock(&g_srv.mu);
	after = g_srv.accepts;
	pthread_mutex_unlock(&g_srv.mu);
	assert_int_equal(after - before, 1);
	hark_llm_http_share_free(sh);
	/* without the share every transfer connects anew */
	for (int i = 0; i < 2; i++) {
		run_one(SC_JSON, &r, NULL, &res, NULL, 0);
		hark_llm_xfer_result_clear(&res);
	}
	pthread_mutex_lock(&g_srv.mu);
	assert_int_equal(g_srv.accepts - after, 2);
	pthread_mutex_unlock(&g_srv.mu);
}

static void test_bad_args(void **state)
{
	struct hark_llm_xfer *x = (void *)1;
	struct hark_llm_xfer_req r;
	struct hark_llm_xfer_result res;
	char url[128];

	(void)state;
	r = base_req(url, sizeof(url), 0);
	r.max_response = 0;
	assert_int_equal(hark_llm_xfer_new(&r, NULL, &x), HARK_ERR_INVALID_ARG);
	assert_null(x);
	r = base_req(url, sizeof(url), 0);
	r.api_key = "sk\r\nX-Injected: 1";
	assert_int_equal(hark_llm_xfer_new(&r, NULL, &x), HARK_ERR_INVALID_ARG);
	r = base_req(url, sizeof(url), 0);
	r.url = NULL;
	assert_int_equal(hark_llm_xfer_new(&r, NULL, &x), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_llm_xfer_new(NULL, NULL, &x), HARK_ERR_INVALID_ARG);
	hark_llm_xfer_finish(NULL, CURLE_OK, &res);
	assert_int_equal(res.outcome, HARK_LLM_XFER_ERROR);
	hark_llm_xfer_result_clear(&res);
	hark_llm_xfer_free(NULL);
	assert_null(hark_llm_xfer_from_easy(NULL));
}

int main(void)
{
	const struct CMUnitTest parsers[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_retry_after),
	};
	const struct CMUnitTest transfers[] = {
		cmocka_unit_test(test_json_200_and_headers),
		cmocka_unit_test(test_429_retry_after),
		cmocka_unit_test(test_sse_awkward_splits),
		cmocka_unit_test(test_sse_cut),
		cmocka_unit_test(test_too_large_and_partial),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_share_reuses_connection),
		cmocka_unit_test(test_bad_args),
	};
	int rc = cmocka_run_group_tests_name("parsers", parsers, NULL, NULL);

	rc |= cmocka_run_group_tests_name("transfers", transfers, srv_setup, srv_teardown);
	return rc;
}
