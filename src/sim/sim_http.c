/*
 * The libwebsockets server of hark-llm-sim (see sim_http.h). A request is
 * read whole (body capped at 32 MiB), handled once on arrival (parse,
 * tokens, rate limit, directives, faults, reply, latency draw) and its
 * response then starts when its simulated latency has passed: an lws_sul
 * timer fires, the log line is written and the response goes out through
 * writable callbacks (a non-streaming body in 64 KiB writes; an SSE stream
 * as chunked transfer-encoding whose deltas are written when due). While a
 * request waits, input on its connection is switched off: lws 4.1 reads
 * nothing during an open HTTP/1 transaction yet keeps polling the socket,
 * so a client's EOF would otherwise make the service loop spin; it goes
 * back on whenever we want to write (lws also skips writable callbacks of a
 * flow-controlled connection).
 */
#include "sim/sim_http.h"
#include "util/portfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "hark/hark.h"
#include "llm/tokens.h"
#include "sim/sim_embed.h"
#include "sim/sim_limits.h"
#include "sim/sim_log.h"
#include "sim/sim_reply.h"
#include "sim/sim_text.h"
#include "util/errbuf.h"

#define MAX_BODY ((size_t)32 << 20)        /* larger bodies get 413 */
#define MAX_BODY_READ ((size_t)256 << 20)  /* larger Content-Length: connection closed */
#define WBUF 65536                         /* bytes per write */
#define STREAM_MIN_GAP_US 20000            /* SSE deltas due within this are batched */
#define PIECE_MAX_BYTES 48
#define PIECE_WORDS 3
#define TICK_US 100000
#define MAX_HDRS 12
#define UNLIMITED 1000000000L /* x-ratelimit value of a dimension without a limit */

enum rstate {
	R_READ = 0, /* headers in, body arriving */
	R_WAIT,     /* handled; the response starts when its latency has passed */
	R_HOLD,     /* "timeout" fault: held, then dropped */
	R_SEND,     /* non-streaming response being written */
	R_STREAM,   /* SSE response being written */
	R_CLOSING,  /* close once what was written has left */
};

enum method { M_GET = 0, M_POST = 1, M_OTHER = 2 };

struct hdr {
	char name[40]; /* with the trailing colon */
	char val[48];
};

struct srv;

struct req {
	struct srv *s;
	struct lws *wsi;
	lws_sorted_usec_list_t sul;
	struct req *prev, *next; /* live list */
	int state;
	int method;
	char path[256];
	char *body;
	size_t blen, bcap, bseen;
	int rx_off;
	int api;             /* an API request (logged, in flight) */
	int counted;         /* in_flight was incremented */
	/* what the log line says */
	struct hark_sim_logrec rec;
	int logged;
	char model[HARK_SIM_MODEL_NAME_MAX];
	char fault[16];
	char identity[65];
	long model_index;
	struct hark_sim_chat *chat; /* kept until the log line names its chunks */
	/* the response */
	double t_due;        /* sim time the response starts */
	int status;
	const char *ctype;
	struct hdr hdrs[MAX_HDRS];
	int n_hdrs;
	int limit_headers;   /* add x-ratelimit-* at the response start */
	char *resp;
	size_t resp_len, resp_off, resp_end; /* resp_end < resp_len: truncated */
	int hdr_sent;
	int close_conn;
	/* streaming */
	char *content;
	size_t content_len, content_off, stream_stop; /* stream_stop: truncate here */
	double t_stream0;
	long pieces_sent;
	int stream_malformed;
	int include_usage;
	int finish_length;
	long completion_tokens;
	char id[48];
	long created;
	char *model_json;    /* the model name as a JSON string */
};

struct pss {
	struct req *r;
};

struct srv {
	struct lws_context *ctx;
	const struct hark_sim_params *p;
	struct hark_sim_config *cfg;
	struct hark_sim_window **win;  /* per model */
	int *down;                     /* per model: forced status, 0 = up */
	double *down_retry;
	int down_all;
	double down_all_retry;
	struct hark_sim_counters *counters;
	struct hark_sim_log *log;
	uint64_t rng;
	double scale;
	double t0;
	long seq;
	unsigned char *wbuf;
	char *scratch;
	volatile sig_atomic_t *stop;
	int stopping;
	lws_sorted_usec_list_t tick;
	struct req *live;
};

/* ---- time and randomness --------------------------------------------------------- */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double sim_now(const struct srv *s)
{
	return (mono_now() - s->t0) * s->scale;
}

static uint64_t rng_next(struct srv *s)
{
	s->rng += 0x9E3779B97F4A7C15ULL;
	return hark_sim_mix(s->rng);
}

static double rng_uniform(struct srv *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double draw_latency(struct srv *s)
{
	const struct hark_sim_latency *l = &s->cfg->latency;
	double u1 = rng_uniform(s), u2 = rng_uniform(s);

	switch (l->dist) {
	case HARK_SIM_LAT_UNIFORM:
		return l->min_s + (l->max_s - l->min_s) * u1;
	case HARK_SIM_LAT_LOGNORMAL: {
		double z = sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
		return l->median_s * exp(l->sigma * z);
	}
	default:
		return l->s;
	}
}

/* ---- requests ----------------------------------------------------------------------- */

static struct req *req_new(struct srv *s, struct lws *wsi)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->s = s;
	r->wsi = wsi;
	r->model_index = -1;
	r->rec.max_tokens = -1;
	r->rec.model_index = -1;
	snprintf(r->fault, sizeof(r->fault), "none");
	r->next = s->live;
	if (s->live)
		s->live->prev = r;
	s->live = r;
	return r;
}

static void req_free(struct req *r)
{
	struct srv *s = r->s;

	lws_sul_cancel(&r->sul);
	if (r->counted)
		hark_sim_log_in_flight(s->log, -1);
	if (r->prev)
		r->prev->next = r->next;
	else
		s->live = r->next;
	if (r->next)
		r->next->prev = r->prev;
	hark_sim_chat_free(r->chat);
	free(r->body);
	free(r->resp);
	free(r->content);
	free(r->model_json);
	free(r);
}

static void rx_off(struct req *r)
{
	if (r->wsi && !r->rx_off) {
		lws_rx_flow_control(r->wsi, 0);
		r->rx_off = 1;
	}
}

static void want_write(struct req *r)
{
	if (!r->wsi)
		return;
	if (r->rx_off) {
		lws_rx_flow_control(r->wsi, 1);
		r->rx_off = 0;
	}
	lws_callback_on_writable(r->wsi);
}

/* Schedules the request's timer at sim time t (now when already due). */
static void sul_at(struct req *r, double t, sul_cb_t cb, long min_us)
{
	double real = (t - sim_now(r->s)) / r->s->scale;
	lws_usec_t us = real > 0 ? (lws_usec_t)(real * 1e6) : 0;

	if (us < min_us)
		us = min_us;
	if (us <= 0) {
		cb(&r->sul);
		return;
	}
	lws_sul_schedule(r->s->ctx, 0, &r->sul, cb, us);
}

static void add_hdr(struct req *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_hdr(struct req *r, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (r->n_hdrs >= MAX_HDRS)
		return;
	snprintf(r->hdrs[r->n_hdrs].name, sizeof(r->hdrs[0].name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(r->hdrs[r->n_hdrs].val, sizeof(r->hdrs[0].val), fmt, ap);
	va_end(ap);
	r->n_hdrs++;
}

/* ---- the log line and the start of a response ------------------------------------- */

static int delivers_usage(const struct req *r)
{
	return r->status == 200 && (!strcmp(r->fault, "none") || !strcmp(r->fault, "bad_json") ||
				    !strcmp(r->fault, "wrong_schema"));
}

static void write_log(struct req *r, int status)
{
	struct srv *s = r->s;

	if (r->logged || !r->api)
		return;
	r->logged = 1;
	r->rec.t_end = sim_now(s);
	r->rec.latency_s = r->rec.t_end - r->rec.t;
	r->rec.status = status;
	r->rec.fault = r->fault;
	r->rec.model = r->model[0] ? r->model : NULL;
	r->rec.identity = r->identity[0] ? r->identity : NULL;
	r->rec.path = r->path;
	r->rec.model_index = r->model_index;
	r->rec.usage_delivered = status == r->status && delivers_usage(r);
	if (r->chat) {
		r->rec.chunks = r->chat->chunks;
		r->rec.n_chunks = r->chat->n_chunks;
	}
	hark_sim_log_record(s->log, &r->rec);
	r->rec.chunks = NULL;
	r->rec.n_chunks = 0;
}

/* x-ratelimit-* of the request's model, as of now. */
static void limit_headers(struct req *r)
{
	struct srv *s = r->s;
	const struct hark_sim_model *m;
	struct hark_sim_window_state st;
	char d[32];

	if (r->model_index < 0)
		return;
	m = &s->cfg->models[r->model_index];
	if (m->rpm <= 0 && m->tpm <= 0)
		return;
	hark_sim_window_state(s->win[r->model_index], sim_now(s), s->cfg->window_s, m->rpm, &st);
	/* a dimension without a limit reports UNLIMITED remaining, reset 0 */
	add_hdr(r, "x-ratelimit-limit-requests:", "%ld", m->rpm > 0 ? m->rpm : UNLIMITED);
	add_hdr(r, "x-ratelimit-limit-tokens:", "%ld", m->tpm > 0 ? m->tpm : UNLIMITED);
	add_hdr(r, "x-ratelimit-remaining-requests:", "%ld",
		m->rpm <= 0 ? UNLIMITED : m->rpm > st.requests ? m->rpm - st.requests : 0);
	add_hdr(r, "x-ratelimit-remaining-tokens:", "%ld",
		m->tpm <= 0 ? UNLIMITED : m->tpm > st.tokens ? m->tpm - st.tokens : 0);
	hark_sim_format_duration(m->rpm > 0 ? st.reset_requests_s : 0, d, sizeof(d));
	add_hdr(r, "x-ratelimit-reset-requests:", "%s", d);
	hark_sim_format_duration(m->tpm > 0 ? st.reset_tokens_s : 0, d, sizeof(d));
	add_hdr(r, "x-ratelimit-reset-tokens:", "%s", d);
}

/* The response begins: log it, then write it. */
static void start_response(struct req *r)
{
	write_log(r, r->status);
	if (r->limit_headers)
		limit_headers(r);
	if (r->state != R_STREAM)
		r->state = R_SEND;
	r->t_stream0 = sim_now(r->s);
	want_write(r);
}

static void on_due(lws_sorted_usec_list_t *sul)
{
	struct req *r = lws_container_of(sul, struct req, sul);

	if (r->state == R_WAIT || r->state == R_STREAM) {
		if (!r->hdr_sent)
			start_response(r);
		else
			want_write(r);
	}
}

static void on_hold_end(lws_sorted_usec_list_t *sul)
{
	struct req *r = lws_container_of(sul, struct req, sul);

	write_log(r, 0);
	r->state = R_CLOSING;
	if (r->wsi)
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- building responses ------------------------------------------------------------ */

static void set_body(struct req *r, int status, const char *ctype, char *body, size_t len)
{
	free(r->resp);
	r->status = status;
	r->ctype = ctype;
	r->resp = body;
	r->resp_len = body ? len : 0;
	r->resp_end = r->resp_len;
	r->resp_off = 0;
}

static void set_json(struct req *r, int status, json_t *v)
{
	char *b = v ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	if (!b) {
		b = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
			   "\"param\":null,\"code\":\"server_error\"}}");
		status = 500;
	}
	set_body(r, status, "application/json", b, b ? strlen(b) : 0);
}

static void set_error(struct req *r, int status, const char *type, const char *code,
		      const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_error(struct req *r, int status, const char *type, const char *code,
		      const char *param, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_json(r, status,
		 json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", msg, "type", type,
			   "param", param, "code", code));
}

/* An injected error response of any status. */
static void set_injected(struct req *r, int status, double retry_after)
{
	const char *type = status == 429 ? "requests" : status >= 500 ? "server_error"
						    : "invalid_request_error";
	const char *code = status == 429 ? "rate_limit_exceeded" : status >= 500 ? "server_error"
						    : "injected_error";

	set_error(r, status, type, code, NULL, "simulated failure (HTTP %d)", status);
	if (retry_after >= 0) {
		add_hdr(r, "retry-after:", "%.0f", ceil(retry_after));
		add_hdr(r, "retry-after-ms:", "%.0f", ceil(retry_after * 1000.0));
	}
}

/* Answers now (errors, admin endpoints, model list). */
static void respond_now(struct req *r)
{
	start_response(r);
}

/* ---- writing ------------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static int put_hdr(struct lws *wsi, const char *name, const char *val, unsigned char **p,
		   unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)val, (int)strlen(val), p, end);
}

/* Status line and headers into [*p, end). */
static int write_headers(struct req *r, unsigned char **p, unsigned char *end, int chunked)
{
	struct lws *wsi = r->wsi;
	char line[96], rid[32];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s", r->status, reason(r->status));

	if (lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line, n, p, end) ||
	    put_hdr(wsi, "content-type:", r->ctype ? r->ctype : "application/json", p, end))
		return -1;
	if (chunked) {
		if (put_hdr(wsi, "transfer-encoding:", "chunked", p, end) ||
		    put_hdr(wsi, "cache-control:", "no-cache", p, end))
			return -1;
	} else if (lws_add_http_header_content_length(wsi, r->resp_len, p, end)) {
		return -1;
	}
	if (r->api) {
		snprintf(rid, sizeof(rid), "req_%ld", r->rec.seq);
		if (put_hdr(wsi, "x-request-id:", rid, p, end))
			return -1;
	}
	for (int i = 0; i < r->n_hdrs; i++)
		if (put_hdr(wsi, r->hdrs[i].name, r->hdrs[i].val, p, end))
			return -1;
	if (r->close_conn && put_hdr(wsi, "connection:", "close", p, end))
		return -1;
	return lws_finalize_http_header(wsi, p, end) ? -1 : 0;
}

/* The transaction is over: free the request, keep the connection. */
static int finish(struct req *r)
{
	struct lws *wsi = r->wsi;
	struct pss *pss = lws_wsi_user(wsi);
	int close = r->close_conn;

	if (pss && pss->r == r)
		pss->r = NULL;
	req_free(r);
	if (close)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int write_plain(struct req *r)
{
	struct srv *s = r->s;
	unsigned char *start = s->wbuf + LWS_PRE, *p = start, *end = start + WBUF;
	size_t n;

	if (!r->hdr_sent) {
		if (write_headers(r, &p, end, 0))
			return -1;
		r->hdr_sent = 1;
	}
	n = r->resp_end - r->resp_off;
	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	memcpy(p, r->resp + r->resp_off, n);
	p += n;
	r->resp_off += n;
	if (p > start && lws_write(r->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < 0)
		return -1;
	if (r->resp_off < r->resp_end) {
		lws_callback_on_writable(r->wsi);
		return 0;
	}
	if (r->resp_end < r->resp_len) {
		/* truncated: close once the cut body has left */
		r->state = R_CLOSING;
		lws_callback_on_writable(r->wsi);
		return 0;
	}
	return finish(r);
}

/* JSON-escapes s[0..n) (a string body, no quotes) into out; returns bytes. */
static size_t esc(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			out[o++] = '\\';
			out[o++] = 'u';
			out[o++] = '0';
			out[o++] = '0';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

/* End of the delta that starts at off: up to PIECE_WORDS words or
 * PIECE_MAX_BYTES bytes (never inside a UTF-8 sequence). */
static size_t piece_end(const char *c, size_t len, size_t off)
{
	size_t i = off, words = 0;

	while (i < len && words < PIECE_WORDS && i - off < PIECE_MAX_BYTES) {
		if (c[i] == ' ' || c[i] == '\n' || c[i] == '\t' || c[i] == '\r') {
			while (i < len && (c[i] == ' ' || c[i] == '\n' || c[i] == '\t' || c[i] == '\r'))
				i++;
			continue;
		}
		while (i < len && !(c[i] == ' ' || c[i] == '\n' || c[i] == '\t' || c[i] == '\r') &&
		       i - off < PIECE_MAX_BYTES)
			i++;
		words++;
	}
	while (i < len && i > off && ((unsigned char)c[i] & 0xC0) == 0x80)
		i--;
	if (i == off && off < len) { /* a long multi-byte run: take one code point */
		i++;
		while (i < len && ((unsigned char)c[i] & 0xC0) == 0x80)
			i++;
	}
	return i;
}

/* Appends one SSE event "data: <chunk>\n\n" for the delta / finish / usage
 * to buf; returns its length. kind: 0 role, 1 content piece, 2 finish,
 * 3 usage. */
static size_t sse_event(struct req *r, char *buf, int kind, const char *piece, size_t n)
{
	size_t o = 0;

	o += (size_t)sprintf(buf + o,
			     "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%ld,"
			     "\"model\":%s,\"choices\":",
			     r->id, r->created, r->model_json);
	switch (kind) {
	case 0:
		o += (size_t)sprintf(buf + o, "[{\"index\":0,\"delta\":{\"role\":\"assistant\"},"
					      "\"finish_reason\":null}]");
		break;
	case 1:
		o += (size_t)sprintf(buf + o, "[{\"index\":0,\"delta\":{\"content\":\"");
		o += esc(buf + o, piece, n);
		o += (size_t)sprintf(buf + o, "\"},\"finish_reason\":null}]");
		break;
	case 2:
		o += (size_t)sprintf(buf + o, "[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]",
				     r->finish_length ? "length" : "stop");
		break;
	default:
		o += (size_t)sprintf(buf + o,
				     "[],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
				     "\"total_tokens\":%ld}",
				     r->rec.prompt_tokens, r->completion_tokens,
				     r->rec.prompt_tokens + r->completion_tokens);
		break;
	}
	o += (size_t)sprintf(buf + o, "}\n\n");
	return o;
}

/* Room an event needs at most (piece up to PIECE_MAX_BYTES, escaped). */
static size_t event_room(const struct req *r)
{
	return 400 + strlen(r->model_json) + PIECE_MAX_BYTES * 6;
}

static int write_stream(struct req *r)
{
	struct srv *s = r->s;
	unsigned char *start = s->wbuf + LWS_PRE, *p = start, *end = start + WBUF;
	char *pay = s->scratch;
	size_t plen = 0, pcap = WBUF - 4096;
	double now = sim_now(s), chunk_s = s->cfg->stream_chunk_s;
	int done = 0, cut = 0;

	if (!r->hdr_sent) {
		if (write_headers(r, &p, end, 1))
			return -1;
		r->hdr_sent = 1;
		plen += sse_event(r, pay + plen, 0, NULL, 0);
		if (r->stream_malformed) {
			plen += (size_t)sprintf(pay + plen,
						"data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk"
						"\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\n\n"
						"data: [DONE]\n\n",
						r->id);
			r->content_off = r->content_len;
			done = 1;
		}
	}
	while (!done && r->content_off < r->content_len && plen + event_room(r) < pcap) {
		size_t e;

		if (r->content_off >= r->stream_stop) {
			cut = 1;
			break;
		}
		if (r->t_stream0 + (double)(r->pieces_sent + 1) * chunk_s > now + 1e-9)
			break;
		e = piece_end(r->content, r->content_len, r->content_off);
		plen += sse_event(r, pay + plen, 1, r->content + r->content_off, e - r->content_off);
		r->content_off = e;
		r->pieces_sent++;
	}
	if (!done && !cut && r->content_off >= r->content_len && r->content_off < r->stream_stop &&
	    plen + 3 * event_room(r) < pcap) {
		plen += sse_event(r, pay + plen, 2, NULL, 0);
		if (r->include_usage)
			plen += sse_event(r, pay + plen, 3, NULL, 0);
		plen += (size_t)sprintf(pay + plen, "data: [DONE]\n\n");
		done = 1;
	}
	if (r->content_off >= r->stream_stop && r->stream_stop < r->content_len + 1 && !done)
		cut = 1;
	if (plen) {
		p += sprintf((char *)p, "%zx\r\n", plen);
		memcpy(p, pay, plen);
		p += plen;
		*p++ = '\r';
		*p++ = '\n';
	}
	if (done) {
		memcpy(p, "0\r\n\r\n", 5);
		p += 5;
	}
	if (p > start && lws_write(r->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < 0)
		return -1;
	if (done)
		return finish(r);
	if (cut) {
		r->state = R_CLOSING;
		lws_callback_on_writable(r->wsi);
		return 0;
	}
	if (r->content_off < r->content_len &&
	    r->t_stream0 + (double)(r->pieces_sent + 1) * chunk_s > sim_now(s)) {
		/* the next delta is not due yet */
		rx_off(r);
		sul_at(r, r->t_stream0 + (double)(r->pieces_sent + 1) * chunk_s, on_due,
		       STREAM_MIN_GAP_US);
		return 0;
	}
	lws_callback_on_writable(r->wsi);
	return 0;
}

/* ---- admin endpoints ---------------------------------------------------------------- */

static void admin(struct req *r, const char *path)
{
	struct srv *s = r->s;
	char err[512];

	if (strcmp(path, "/_sim/stats") == 0 && r->method == M_GET) {
		set_json(r, 200, hark_sim_log_stats(s->log, s->cfg));
	} else if (strcmp(path, "/_sim/config") == 0 && r->method == M_POST) {
		if (hark_sim_config_update(s->cfg, r->body ? r->body : "{}", r->body ? r->blen : 2,
					   err, sizeof(err)))
			set_error(r, 400, "invalid_request_error", "invalid_config", NULL, "%s", err);
		else
			set_json(r, 200, json_pack("{s:b}", "ok", 1));
	} else if (strcmp(path, "/_sim/fail") == 0 && r->method == M_POST) {
		json_t *b = json_loadb(r->body ? r->body : "{}", r->body ? r->blen : 2, 0, NULL);
		const json_t *st = json_object_get(b, "status"), *m = json_object_get(b, "model"),
			     *ra = json_object_get(b, "retry_after");
		long idx = -1;
		int status = json_is_integer(st) ? (int)json_integer_value(st) : 503;
		const char *key;
		json_t *v;
		int bad = !json_is_object(b) || (st && !json_is_integer(st)) || status < 100 ||
			  status > 599 || (m && !json_is_string(m)) || (ra && !json_is_number(ra));

		json_object_foreach(b, key, v)
			if (strcmp(key, "status") && strcmp(key, "model") && strcmp(key, "retry_after"))
				bad = 1;
		if (!bad && m && (idx = hark_sim_config_find(s->cfg, json_string_value(m))) < 0) {
			set_error(r, 404, "invalid_request_error", "model_not_found", "model",
				  "no model %s", json_string_value(m));
		} else if (bad) {
			set_error(r, 400, "invalid_request_error", "invalid_request_error", NULL,
				  "expected {\"status\": 100-599, \"model\"?: name, \"retry_after\"?: "
				  "seconds}");
		} else {
			double retry = ra ? json_number_value(ra) : -1;
			if (idx >= 0) {
				s->down[idx] = status;
				s->down_retry[idx] = retry;
			} else {
				s->down_all = status;
				s->down_all_retry = retry;
			}
			set_json(r, 200, json_pack("{s:b}", "ok", 1));
		}
		json_decref(b);
	} else if (strcmp(path, "/_sim/recover") == 0 && r->method == M_POST) {
		json_t *b = r->body && r->blen ? json_loadb(r->body, r->blen, 0, NULL) : NULL;
		const char *m = json_string_value(json_object_get(b, "model"));
		long idx = m ? hark_sim_config_find(s->cfg, m) : -1;

		if (m && idx < 0) {
			set_error(r, 404, "invalid_request_error", "model_not_found", "model",
				  "no model %s", m);
		} else {
			for (size_t i = 0; i < s->cfg->n_models; i++)
				if (idx < 0 || (size_t)idx == i)
					s->down[i] = 0;
			if (idx < 0)
				s->down_all = 0;
			set_json(r, 200, json_pack("{s:b}", "ok", 1));
		}
		json_decref(b);
	} else if (strcmp(path, "/_sim/reset") == 0 && r->method == M_POST) {
		hark_sim_log_reset(s->log);
		set_json(r, 200, json_pack("{s:b}", "ok", 1));
	} else {
		set_error(r, 404, "invalid_request_error", "not_found", NULL, "no route %s %s",
			  r->method == M_GET ? "GET" : r->method == M_POST ? "POST" : "(method)", path);
	}
	respond_now(r);
}

/* ---- API endpoints ------------------------------------------------------------------ */

static int down_status(struct srv *s, long idx, double *retry)
{
	if (idx >= 0 && s->down[idx]) {
		*retry = s->down_retry[idx];
		return s->down[idx];
	}
	if (s->down_all) {
		*retry = s->down_all_retry;
		return s->down_all;
	}
	return 0;
}

/* Rate-limit check; on rejection the 429 is set up and 1 returned. */
static int limit_check(struct req *r, long idx, long tokens)
{
	struct srv *s = r->s;
	const struct hark_sim_model *m = &s->cfg->models[idx];
	double retry = 0;
	int rc = hark_sim_window_admit(s->win[idx], r->rec.t, s->cfg->window_s, m->rpm, m->tpm,
				       tokens, &retry);

	r->rec.counted_tokens = tokens;
	if (rc == HARK_SIM_ADMITTED) {
		r->rec.admitted = 1;
		return 0;
	}
	snprintf(r->fault, sizeof(r->fault), "rate_limited");
	if (rc == HARK_SIM_TOO_LARGE)
		set_error(r, 429, "tokens", "rate_limit_exceeded", NULL,
			  "Request too large for %s: limit %ld tokens per %g s, requested %ld. "
			  "Reduce the input or max_tokens.",
			  m->name, m->tpm, s->cfg->window_s, tokens);
	else {
		struct hark_sim_window_state st;
		int rpm_over;

		hark_sim_window_state(s->win[idx], r->rec.t, s->cfg->window_s, m->rpm, &st);
		rpm_over = m->rpm > 0 && st.requests + 1 > m->rpm;
		set_error(r, 429, rpm_over ? "requests" : "tokens", "rate_limit_exceeded", NULL,
			  "Rate limit reached for %s on %s per %g s: limit %ld, used %ld, requested "
			  "%ld. Please try again in %.3fs.",
			  m->name, rpm_over ? "requests" : "tokens", s->cfg->window_s,
			  rpm_over ? m->rpm : m->tpm, rpm_over ? st.requests : st.tokens,
			  rpm_over ? 1L : tokens, retry);
	}
	add_hdr(r, "retry-after:", "%.0f", ceil(retry));
	add_hdr(r, "retry-after-ms:", "%.0f", ceil(retry * 1000.0));
	r->limit_headers = 1;
	return 1;
}

/* The acting directive (first applicable, in text order) and the delay
 * override. fault_dir: NULL when none acts. */
static void apply_directives(struct srv *s, const char *identity,
			     const struct hark_sim_directive *dirs, size_t n,
			     const struct hark_sim_directive **fault_dir, double *delay)
{
	int delay_seen = 0;

	*fault_dir = NULL;
	*delay = -1;
	for (size_t i = 0; i < n; i++) {
		const struct hark_sim_directive *d = &dirs[i];
		int is_delay = strcmp(d->name, "delay") == 0;
		long *cnt;

		if (d->bad || (is_delay && delay_seen) || (!is_delay && *fault_dir))
			continue;
		cnt = hark_sim_counters_slot(s->counters, identity, d->name);
		if (cnt && d->times >= 0 && *cnt >= d->times)
			continue;
		if (cnt)
			(*cnt)++;
		if (is_delay) {
			*delay = d->s;
			delay_seen = 1;
		} else {
			*fault_dir = d;
		}
	}
}

/* Fault from the random draw u: "none", "500", ... */
static const char *random_fault(const struct hark_sim_faults *f, double u)
{
	double acc = 0;

	if (u < (acc += f->p_500))
		return "500";
	if (u < (acc += f->p_503))
		return "503";
	if (u < (acc += f->p_timeout))
		return "timeout";
	if (u < (acc += f->p_truncated))
		return "truncated";
	if (u < (acc += f->p_malformed_body))
		return "malformed_body";
	if (u < (acc += f->p_bad_json))
		return "bad_json";
	return "none";
}

/* Common tail of chat and embeddings after admission: decides the fault
 * and the latency. Returns 1 when the request was answered or held (an
 * injected error or a timeout), else 0 with *lat the latency to use. */
static int fault_and_latency(struct req *r, const struct hark_sim_directive *dirs, size_t n_dirs,
			     const char *identity, double *lat)
{
	struct srv *s = r->s;
	const struct hark_sim_directive *fd;
	double delay, u;
	const char *rf;

	apply_directives(s, identity, dirs, n_dirs, &fd, &delay);
	u = rng_uniform(s);
	*lat = draw_latency(s);
	if (delay >= 0)
		*lat = delay;
	if (fd) {
		static const struct {
			const char *dir, *fault;
		} map[] = {{"bad_json", "bad_json"},       {"wrong_schema", "wrong_schema"},
			   {"truncate", "truncated"},       {"malformed_body", "malformed_body"},
			   {"timeout", "timeout"},          {NULL, NULL}};
		if (strcmp(fd->name, "fail") == 0) {
			snprintf(r->fault, sizeof(r->fault), "%d", fd->status);
			set_injected(r, fd->status, fd->status == 429 ? fd->retry_after_s : -1);
			r->limit_headers = 1;
			respond_now(r);
			return 1;
		}
		for (size_t i = 0; map[i].dir; i++)
			if (strcmp(fd->name, map[i].dir) == 0)
				snprintf(r->fault, sizeof(r->fault), "%s", map[i].fault);
	} else {
		rf = random_fault(&s->cfg->faults, u);
		snprintf(r->fault, sizeof(r->fault), "%s", rf);
		if (!strcmp(rf, "500") || !strcmp(rf, "503")) {
			set_injected(r, atoi(rf), -1);
			r->limit_headers = 1;
			respond_now(r);
			return 1;
		}
	}
	if (strcmp(r->fault, "timeout") == 0) {
		r->state = R_HOLD;
		rx_off(r);
		sul_at(r, r->rec.t + s->cfg->timeout_hold_s, on_hold_end, 0);
		return 1;
	}
	if (*lat < 0)
		*lat = 0;
	return 0;
}

/* Schedules the start of a prepared response after lat sim seconds. */
static void schedule(struct req *r, double lat)
{
	r->t_due = r->rec.t + lat;
	r->limit_headers = 1;
	if (r->state != R_STREAM)
		r->state = R_WAIT;
	if (lat <= 0) {
		start_response(r);
		return;
	}
	rx_off(r);
	sul_at(r, r->t_due, on_due, 0);
}

static void malformed_body(struct req *r)
{
	static const char html[] = "<html><head><title>502 Bad Gateway</title></head><body>"
				   "upstream returned an invalid response</body></html>\n";
	char *b = strdup(html);

	set_body(r, 200, "application/json", b, b ? strlen(b) : 0);
}

static void chat(struct req *r)
{
	struct srv *s = r->s;
	struct hark_sim_chat *c = NULL;
	const struct hark_sim_model *m;
	const char *param = NULL;
	char err[512], *content = NULL;
	size_t clen = 0, cut;
	long idx, cap, counted, down;
	double lat, retry = -1;
	int variant, rc;

	rc = hark_sim_chat_parse(r->body ? r->body : "", r->blen, &c, &param, err, sizeof(err));
	free(r->body);
	r->body = NULL;
	if (rc) {
		set_error(r, rc == HARK_ERR_NOMEM ? 500 : 400,
			  rc == HARK_ERR_NOMEM ? "server_error" : "invalid_request_error",
			  rc == HARK_ERR_NOMEM ? "server_error" : "invalid_request_error", param, "%s",
			  err);
		respond_now(r);
		return;
	}
	r->chat = c;
	snprintf(r->model, sizeof(r->model), "%s", c->model);
	snprintf(r->identity, sizeof(r->identity), "%s", c->identity);
	r->rec.stream = c->stream;
	r->rec.prompt_tokens = c->prompt_tokens;
	r->rec.max_tokens = c->max_tokens;
	r->rec.n_inputs = (long)c->n_msgs;
	idx = hark_sim_config_find(s->cfg, c->model);
	if (idx < 0) {
		set_error(r, 404, "invalid_request_error", "model_not_found", "model",
			  "The model `%s` does not exist or you do not have access to it.", c->model);
		respond_now(r);
		return;
	}
	r->model_index = idx;
	m = &s->cfg->models[idx];
	if (m->embedding) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", "model",
			  "%s is an embeddings model, not a chat model", m->name);
		respond_now(r);
		return;
	}
	if (c->max_tokens > m->max_output_tokens) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", "max_tokens",
			  "max_tokens is too large: %ld. This model supports at most %ld completion "
			  "tokens.",
			  c->max_tokens, m->max_output_tokens);
		respond_now(r);
		return;
	}
	if (c->prompt_tokens + (c->max_tokens > 0 ? c->max_tokens : 0) > m->context_window ||
	    c->prompt_tokens >= m->context_window) {
		set_error(r, 400, "invalid_request_error", "context_length_exceeded", "messages",
			  "This model's maximum context length is %ld tokens. However, you requested "
			  "%ld tokens (%ld in the messages, %ld in the completion).",
			  m->context_window, c->prompt_tokens + (c->max_tokens > 0 ? c->max_tokens : 0),
			  c->prompt_tokens, c->max_tokens > 0 ? c->max_tokens : 0);
		respond_now(r);
		return;
	}
	if ((down = down_status(s, idx, &retry))) {
		snprintf(r->fault, sizeof(r->fault), "down");
		set_injected(r, (int)down, (int)down == 429 ? retry : -1);
		respond_now(r);
		return;
	}
	cap = c->max_tokens > 0 ? c->max_tokens : m->max_output_tokens;
	if (cap > m->context_window - c->prompt_tokens)
		cap = m->context_window - c->prompt_tokens;
	if (c->max_tokens > 0) {
		counted = c->prompt_tokens + c->max_tokens;
	} else {
		if (hark_sim_chat_content(c, HARK_SIM_REPLY_NORMAL, &content, &clen)) {
			set_error(r, 500, "server_error", "server_error", NULL, "out of memory");
			respond_now(r);
			return;
		}
		cut = hark_sim_cut_tokens(content, clen, (size_t)cap);
		counted = c->prompt_tokens + (long)hark_llm_tokens_count(content, cut);
	}
	if (limit_check(r, idx, counted)) {
		free(content);
		respond_now(r);
		return;
	}
	if (fault_and_latency(r, c->dirs, c->n_dirs, c->identity, &lat)) {
		free(content);
		return;
	}
	variant = !strcmp(r->fault, "bad_json")       ? HARK_SIM_REPLY_BAD_JSON
		  : !strcmp(r->fault, "wrong_schema") ? HARK_SIM_REPLY_WRONG_SCHEMA
						      : HARK_SIM_REPLY_NORMAL;
	if (variant != HARK_SIM_REPLY_NORMAL || !content) {
		free(content);
		content = NULL;
		if (hark_sim_chat_content(c, variant, &content, &clen)) {
			set_error(r, 500, "server_error", "server_error", NULL, "out of memory");
			respond_now(r);
			return;
		}
	}
	cut = hark_sim_cut_tokens(content, clen, (size_t)cap);
	r->finish_length = cut < clen;
	content[cut] = '\0';
	clen = cut;
	r->completion_tokens = (long)hark_llm_tokens_count(content, clen);
	r->rec.completion_tokens = r->completion_tokens;
	snprintf(r->id, sizeof(r->id), "chatcmpl-%.12s%012lx", c->hash_hex,
		 (unsigned long)r->rec.seq);
	r->created = (long)time(NULL);
	r->status = 200;
	if (c->stream) {
		json_t *mj = json_string(c->model);
		r->model_json = mj ? json_dumps(mj, JSON_ENCODE_ANY) : NULL;
		json_decref(mj);
		if (!r->model_json) {
			free(content);
			set_error(r, 500, "server_error", "server_error", NULL, "out of memory");
			respond_now(r);
			return;
		}
		r->state = R_STREAM;
		r->ctype = "text/event-stream";
		r->content = content;
		r->content_len = clen;
		r->stream_stop = (size_t)-1;
		r->include_usage = c->include_usage;
		if (!strcmp(r->fault, "truncated"))
			r->stream_stop = clen / 2;
		if (!strcmp(r->fault, "malformed_body"))
			r->stream_malformed = 1;
	} else if (!strcmp(r->fault, "malformed_body")) {
		free(content);
		malformed_body(r);
	} else {
		json_t *v = json_pack(
			"{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s%},s:s}],s:{s:I,s:I,s:I}}", "id", r->id,
			"object", "chat.completion", "created", (json_int_t)r->created, "model", c->model,
			"choices", "index", 0, "message", "role", "assistant", "content", content, clen,
			"finish_reason", r->finish_length ? "length" : "stop", "usage", "prompt_tokens",
			(json_int_t)c->prompt_tokens, "completion_tokens",
			(json_int_t)r->completion_tokens, "total_tokens",
			(json_int_t)(c->prompt_tokens + r->completion_tokens));
		free(content);
		set_json(r, 200, v);
		if (!strcmp(r->fault, "truncated"))
			r->resp_end = r->resp_len / 2;
	}
	schedule(r, lat);
}

static void embeddings(struct req *r)
{
	struct srv *s = r->s;
	struct hark_sim_embed_req *e = NULL;
	const struct hark_sim_model *m;
	const char *param = NULL;
	char err[512];
	long idx, down, dims;
	double lat, retry = -1;
	int rc;
	size_t len = 0;
	char *body;

	rc = hark_sim_embed_parse(r->body ? r->body : "", r->blen, &e, &param, err, sizeof(err));
	free(r->body);
	r->body = NULL;
	if (rc) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", param, "%s", err);
		respond_now(r);
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", e->model);
	snprintf(r->identity, sizeof(r->identity), "%s", e->identity);
	r->rec.prompt_tokens = e->prompt_tokens;
	r->rec.n_inputs = (long)e->n;
	idx = hark_sim_config_find(s->cfg, e->model);
	if (idx < 0) {
		set_error(r, 404, "invalid_request_error", "model_not_found", "model",
			  "The model `%s` does not exist or you do not have access to it.", e->model);
		goto answer;
	}
	r->model_index = idx;
	m = &s->cfg->models[idx];
	if (!m->embedding) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", "model",
			  "%s does not support embeddings", m->name);
		goto answer;
	}
	dims = e->dimensions > 0 ? e->dimensions : m->dimensions;
	if (dims > m->dimensions) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", "dimensions",
			  "dimensions %ld is above the model's %d", dims, m->dimensions);
		goto answer;
	}
	if ((double)dims * (double)e->n > 16.0 * 1024 * 1024) {
		set_error(r, 400, "invalid_request_error", "invalid_request_error", "input",
			  "too many values requested (%zu inputs x %ld dimensions)", e->n, dims);
		goto answer;
	}
	if (e->prompt_tokens > m->context_window * (long)e->n) {
		set_error(r, 400, "invalid_request_error", "context_length_exceeded", "input",
			  "the input is longer than %ld tokens per item", m->context_window);
		goto answer;
	}
	if ((down = down_status(s, idx, &retry))) {
		snprintf(r->fault, sizeof(r->fault), "down");
		set_injected(r, (int)down, (int)down == 429 ? retry : -1);
		goto answer;
	}
	if (limit_check(r, idx, e->prompt_tokens))
		goto answer;
	if (fault_and_latency(r, e->dirs, e->n_dirs, e->identity, &lat))
		goto out;
	if (!strcmp(r->fault, "bad_json") || !strcmp(r->fault, "wrong_schema"))
		snprintf(r->fault, sizeof(r->fault), "none"); /* no content to spoil */
	if (!strcmp(r->fault, "malformed_body")) {
		malformed_body(r);
	} else {
		body = hark_sim_embed_reply(e, e->model, (int)dims, &len);
		if (!body) {
			set_error(r, 500, "server_error", "server_error", NULL, "out of memory");
			goto answer;
		}
		set_body(r, 200, "application/json", body, len);
		if (!strcmp(r->fault, "truncated"))
			r->resp_end = r->resp_len / 2;
	}
	schedule(r, lat);
	goto out;
answer:
	respond_now(r);
out:
	hark_sim_embed_req_free(e);
}

static void models(struct req *r)
{
	json_t *data = json_array();

	for (size_t i = 0; data && i < r->s->cfg->n_models; i++)
		json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id",
						      r->s->cfg->models[i].name, "object", "model",
						      "created", 0, "owned_by", "hark-llm-sim"));
	set_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
	respond_now(r);
}

/* Authorization: Bearer <key>. */
static int authorized(struct req *r)
{
	char buf[1024];
	const char *key = r->s->p->api_key;
	int n;

	if (!key || !*key)
		return 1;
	n = lws_hdr_copy(r->wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n <= 7 || strncasecmp(buf, "Bearer ", 7) != 0)
		return 0;
	return strcmp(buf + 7, key) == 0;
}

/* The request is complete: route it. */
static void dispatch(struct req *r)
{
	struct srv *s = r->s;
	const char *path = r->path;

	r->state = R_WAIT;
	if (strncmp(path, "/v1/_sim/", 9) == 0)
		path += 3;
	if (strncmp(path, "/_sim/", 6) == 0) {
		admin(r, path);
		return;
	}
	r->api = 1;
	r->counted = 1;
	hark_sim_log_in_flight(s->log, +1);
	r->rec.seq = ++s->seq;
	r->rec.t = sim_now(s);
	r->rec.real = wall_now();
	if (strncmp(path, "/v1/", 4) == 0)
		path += 3;
	if (r->blen > MAX_BODY) {
		r->close_conn = 1;
		set_error(r, 413, "invalid_request_error", "request_too_large", NULL,
			  "the request body is larger than %zu bytes", MAX_BODY);
		respond_now(r);
		return;
	}
	if (!authorized(r)) {
		set_error(r, 401, "invalid_request_error", "invalid_api_key", NULL,
			  "Incorrect API key provided.");
		respond_now(r);
		return;
	}
	if (strcmp(path, "/chat/completions") == 0 || strcmp(path, "/embeddings") == 0 ||
	    strcmp(path, "/models") == 0) {
		int want = strcmp(path, "/models") == 0 ? M_GET : M_POST;
		if (r->method != want) {
			set_error(r, 405, "invalid_request_error", "method_not_allowed", NULL,
				  "use %s for %s", want == M_GET ? "GET" : "POST", r->path);
			respond_now(r);
		} else if (path[1] == 'c') {
			chat(r);
		} else if (path[1] == 'e') {
			embeddings(r);
		} else {
			models(r);
		}
		return;
	}
	set_error(r, 404, "invalid_request_error", "not_found", NULL, "no route %s", r->path);
	respond_now(r);
}

/* ---- the lws callback ------------------------------------------------------------------ */

/* The connection goes away (or its transaction was dropped). */
static void detach(struct req *r)
{
	r->wsi = NULL;
	if (!r->logged && r->api)
		write_log(r, r->s->stopping ? 0 : 499);
	req_free(r);
}

static void send_continue(struct lws *wsi)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
	int fd = (int)lws_get_socket_fd(wsi);

	if (fd >= 0 && send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the client goes on after its expect timeout */
	}
}

static int on_http(struct srv *s, struct lws *wsi, struct pss *pss, const char *uri)
{
	struct req *r;
	char buf[64];
	long long cl = 0;

	if (pss->r) {
		detach(pss->r);
		pss->r = NULL;
	}
	r = req_new(s, wsi);
	if (!r)
		return -1;
	pss->r = r;
	snprintf(r->path, sizeof(r->path), "%s", uri && *uri ? uri : "/");
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		r->method = M_GET;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		r->method = M_POST;
	else
		r->method = M_OTHER;
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (r->method == M_POST) {
		if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
			r->close_conn = 1;
			r->state = R_WAIT;
			set_error(r, 411, "invalid_request_error", "length_required", NULL,
				  "chunked request bodies are not supported: send Content-Length");
			respond_now(r);
			return 0;
		}
		if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
			cl = atoll(buf);
		if (cl < 0 || (unsigned long long)cl > MAX_BODY_READ)
			return -1;
		if (cl > 0) {
			if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_EXPECT) > 0 &&
			    strncasecmp(buf, "100-continue", 12) == 0)
				send_continue(wsi);
			if ((size_t)cl <= MAX_BODY) {
				r->body = malloc((size_t)cl + 1);
				if (!r->body)
					return -1;
				r->bcap = (size_t)cl;
			}
			r->state = R_READ;
			return 0;
		}
	}
	dispatch(r);
	return 0;
}

static int on_body(struct req *r, const void *in, size_t len)
{
	r->bseen += len;
	if (r->body && r->blen + len <= r->bcap) {
		memcpy(r->body + r->blen, in, len);
		r->blen += len;
	} else {
		/* more than announced or over the cap: keep counting, drop it */
		free(r->body);
		r->body = NULL;
		r->blen = r->bseen;
	}
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct srv *s = wsi ? lws_context_user(lws_get_context(wsi)) : NULL;
	struct pss *pss = user;
	struct req *r = pss ? pss->r : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (!s || !pss)
			return -1;
		return on_http(s, wsi, pss, in);

	case LWS_CALLBACK_HTTP_BODY:
		if (!r || r->state != R_READ)
			return 0;
		return on_body(r, in, len);

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!r || r->state != R_READ)
			return 0;
		if (r->body)
			r->body[r->blen] = '\0';
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		dispatch(r);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!r)
			return 0;
		switch (r->state) {
		case R_SEND:
			return write_plain(r);
		case R_STREAM:
			if (!r->hdr_sent && !r->logged)
				return 0; /* not started yet */
			return write_stream(r);
		case R_CLOSING:
			return -1;
		default:
			return 0;
		}

	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r) {
			pss->r = NULL;
			detach(r);
		}
		return 0;

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{"hark-llm-sim", callback, sizeof(struct pss), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start-up ------------------------------------------------------------------------- */

static void tick(lws_sorted_usec_list_t *sul)
{
	struct srv *s = lws_container_of(sul, struct srv, tick);

	if (*s->stop)
		return; /* the loop sees it */
	lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_US);
}


static void lws_log_emit(int level, const char *line)
{
	(void)level;
	fprintf(stderr, "hark-llm-sim: lws: %s", line);
}


int hark_sim_run(const struct hark_sim_params *p, struct hark_sim_config *cfg,
		 volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct lws_context_creation_info info;
	const char *host = p->host && *p->host ? p->host : "127.0.0.1";
	struct lws_vhost *vh;
	int rc = HARK_OK, port;

	if (!s)
		return HARK_ERR_NOMEM;
	s->p = p;
	s->cfg = cfg;
	s->stop = stop;
	s->scale = p->time_scale > 0 ? p->time_scale : 1;
	s->rng = p->seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
	s->win = calloc(cfg->n_models, sizeof(*s->win));
	s->down = calloc(cfg->n_models, sizeof(*s->down));
	s->down_retry = calloc(cfg->n_models, sizeof(*s->down_retry));
	s->counters = hark_sim_counters_new();
	s->wbuf = malloc(LWS_PRE + WBUF + 64);
	s->scratch = malloc(WBUF);
	if (!s->win || !s->down || !s->down_retry || !s->counters || !s->wbuf || !s->scratch) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_models; i++)
		if (!(s->win[i] = hark_sim_window_new())) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	s->log = hark_sim_log_open(p->log_path, cfg->n_models, err, errlen);
	if (!s->log) {
		rc = HARK_ERR_IO;
		goto out;
	}

	hark_portfile_raise_nofile(65536);
	lws_set_log_level(LLL_ERR, lws_log_emit);
	memset(&info, 0, sizeof(info));
	info.port = p->port > 0 ? p->port : 0;
	info.protocols = protocols;
	info.vhost_name = "hark-llm-sim";
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0) {
		info.iface = NULL;
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	} else if (strcmp(host, "::") == 0) {
		info.iface = NULL;
	} else {
		info.iface = host;
		if (!strchr(host, ':'))
			info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	}
	info.max_http_header_data = 8192;
	info.keepalive_timeout = 300;
	info.timeout_secs = 600;
	info.timeout_secs_ah_idle = 60;
	info.pt_serv_buf_size = 256 * 1024;
	info.count_threads = 1;
	info.user = s;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		hark_errbuf_set(err, errlen, "cannot listen on %s:%d (address in use or invalid)", host,
				p->port);
		rc = HARK_ERR_IO;
		goto out;
	}
	vh = lws_get_vhost_by_name(s->ctx, "hark-llm-sim");
	port = vh ? lws_get_vhost_listen_port(vh) : -1;
	if (port <= 0) {
		hark_errbuf_set(err, errlen, "cannot listen on %s:%d", host, p->port);
		rc = HARK_ERR_IO;
		goto out;
	}
	s->t0 = mono_now();
	if (p->port_file && *p->port_file && hark_portfile_write(p->port_file, port) != 0) {
		hark_errbuf_set(err, errlen, "%s: cannot write the port file: %s", p->port_file,
				strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	printf("hark-llm-sim listening on %s:%d\n", host, port);
	fflush(stdout);
	lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_US);
	while (!*stop) {
		if (lws_service(s->ctx, 0) < 0)
			break;
	}
out:
	s->stopping = 1;
	for (struct req *r = s->live; r; r = r->next)
		lws_sul_cancel(&r->sul);
	if (s->ctx) {
		lws_sul_cancel(&s->tick);
		lws_context_destroy(s->ctx);
		s->ctx = NULL;
	}
	while (s->live) { /* not reached through a close callback */
		s->live->wsi = NULL;
		detach(s->live);
	}
	hark_sim_log_close(s->log);
	for (size_t i = 0; s->win && i < cfg->n_models; i++)
		hark_sim_window_free(s->win[i]);
	free(s->win);
	free(s->down);
	free(s->down_retry);
	hark_sim_counters_free(s->counters);
	free(s->wbuf);
	free(s->scratch);
	free(s);
	return rc;
}
