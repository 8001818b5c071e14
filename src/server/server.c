/*
 * The libwebsockets side of `hark serve`: one context, one vhost and one
 * protocol that handles plain HTTP, Server-Sent Events and WebSocket on the
 * single service thread. This file owns the request objects and their
 * lifetime (a request outlives its connection while a task still works for
 * it), response and stream writing, the completion list through which work
 * queue tasks and upload writers report back (drained on
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED), the periodic tick (pings, slow-client
 * deadlines, key refresh), logging, start-up (lock file, store, worker pool,
 * listener) and the SIGTERM/SIGINT drain. Route logic lives in api.c.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm.h"
#include "server/api.h"
#include "server/keyring.h"
#include "server/metrics.h"
#include "server/multipart.h"
#include "server/ratelimit.h"
#include "util/errbuf.h"
#include "util/portfile.h"
#include "util/workq.h"

#define UP_HIGH_WATER (4u << 20)  /* pause reading the socket above this */
#define UP_LOW_WATER (1u << 20)   /* resume below this */
#define UP_HARD_CAP (32u << 20)   /* never queue more than this */
#define UP_CHUNK (256u << 10)
#define WRITER_BUDGET (1u << 20)  /* bytes per writer task run before yielding */
#define STREAM_QUEUE_CAP 512      /* live events buffered per stream */
#define PING_INTERVAL_S 15.0
#define LINGER_S 5.0
#define TICK_US 250000

struct pss {
	struct hark_req *req;
};

/* The one server of this process (signals, logging hooks). */
static struct hark_srv *g_srv;
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *wake_ctx; /* guarded by wake_mu */
static lws_sorted_usec_list_t tick_sul;

/* ---- time, ids, logging ------------------------------------------------- */

double hark_server_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double hark_server_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void rfc3339(double t, char *out, size_t outlen)
{
	time_t s = (time_t)t;
	struct tm tm;
	int ms = (int)((t - (double)s) * 1000.0);

	if (ms < 0)
		ms = 0;
	if (ms > 999)
		ms = 999;
	gmtime_r(&s, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
		 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, ms % 1000);
}

/* Appends s JSON-escaped (without quotes) to buf at *pos (cap bytes). */
static void json_esc(char *buf, size_t cap, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; s && *s && *pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = (char)c;
		} else if (c < 0x20) {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = 'u';
			buf[(*pos)++] = '0';
			buf[(*pos)++] = '0';
			buf[(*pos)++] = hex[c >> 4];
			buf[(*pos)++] = hex[c & 15];
		} else {
			buf[(*pos)++] = (char)c;
		}
	}
}

static void vlog_line(const char *level, const char *msg, va_list ap)
{
	char line[4096], ts[64];
	size_t pos = 0;
	const char *k;

	rfc3339(hark_server_wall(), ts, sizeof(ts));
	pos += (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
				level);
	json_esc(line, sizeof(line), &pos, msg);
	if (pos < sizeof(line))
		line[pos++] = '"';
	/* pairs: a key starting with '#' carries a raw (numeric) value */
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		int raw = k[0] == '#';
		if (pos + 8 >= sizeof(line))
			break;
		line[pos++] = ',';
		line[pos++] = '"';
		json_esc(line, sizeof(line), &pos, raw ? k + 1 : k);
		line[pos++] = '"';
		line[pos++] = ':';
		if (raw) {
			json_esc(line, sizeof(line), &pos, v && *v ? v : "null");
		} else if (!v) {
			json_esc(line, sizeof(line), &pos, "null");
		} else {
			line[pos++] = '"';
			json_esc(line, sizeof(line), &pos, v);
			if (pos < sizeof(line))
				line[pos++] = '"';
		}
	}
	if (pos + 2 >= sizeof(line))
		pos = sizeof(line) - 3;
	line[pos++] = '}';
	line[pos++] = '\n';
	fwrite(line, 1, pos, stderr);
}

void hark_server_log(const char *level, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vlog_line(level, msg, ap);
	va_end(ap);
}

static void lws_log_emit(int level, const char *line)
{
	char msg[512];
	size_t n = strlen(line);

	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, line, n);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	msg[n] = '\0';
	hark_server_log(level == LLL_ERR ? "error" : "warn", "lws", "detail", msg, NULL);
}

static uint64_t rng_next(struct hark_srv *srv)
{
	/* xorshift64* seeded from the system RNG; ids only need uniqueness */
	uint64_t x = srv->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	srv->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void hark_server_wake(struct hark_srv *srv)
{
	(void)srv;
	pthread_mutex_lock(&wake_mu);
	if (wake_ctx)
		lws_cancel_service(wake_ctx);
	pthread_mutex_unlock(&wake_mu);
}

void hark_server_publish(struct hark_srv *srv, const struct hark_event *ev)
{
	if (!ev || ev->seq <= 0 || !ev->job_id[0])
		return;
	if (srv->jobs) {
		hark_jobs_publish(srv->jobs, ev); /* goes through on_event */
		return;
	}
	if (hark_hub_post(srv->hub, ev) == HARK_OK)
		hark_server_wake(srv);
}

/* Worker-pool callback (worker threads). */
static void on_job_event(const struct hark_event *ev, void *user)
{
	struct hark_srv *srv = user;

	if (hark_hub_post(srv->hub, ev) == HARK_OK)
		hark_server_wake(srv);
}

/* ---- completion list ---------------------------------------------------- */

/* Queues d unless already queued; returns 1 if it was newly queued. */
static int done_post(struct hark_srv *srv, struct hark_done *d)
{
	int added = 0;

	pthread_mutex_lock(&srv->done_mu);
	if (!d->queued) {
		d->queued = 1;
		d->next = NULL;
		if (srv->done_tail)
			srv->done_tail->next = d;
		else
			srv->done_head = d;
		srv->done_tail = d;
		added = 1;
	}
	pthread_mutex_unlock(&srv->done_mu);
	hark_server_wake(srv);
	return added;
}

static struct hark_done *done_take(struct hark_srv *srv)
{
	struct hark_done *d;

	pthread_mutex_lock(&srv->done_mu);
	d = srv->done_head;
	if (d) {
		srv->done_head = d->next;
		if (!srv->done_head)
			srv->done_tail = NULL;
		d->next = NULL;
		d->queued = 0;
	}
	pthread_mutex_unlock(&srv->done_mu);
	return d;
}

/* ---- uploads ------------------------------------------------------------ */

static void upload_unref(struct hark_upload *up)
{
	struct hark_up_chunk *c, *nx;

	if (!up || atomic_fetch_sub(&up->refs, 1) != 1)
		return;
	for (c = up->head; c; c = nx) {
		nx = c->next;
		free(c);
	}
	hark_blob_writer_free(up->w);
	pthread_mutex_destroy(&up->mu);
	free(up);
}

static void writer_report(struct hark_upload *up)
{
	atomic_fetch_add(&up->refs, 1);
	if (!done_post(up->srv, &up->d))
		upload_unref(up);
}

static void writer_task(void *arg)
{
	struct hark_upload *up = arg;
	struct hark_srv *srv = up->srv;
	size_t done_bytes = 0;

	for (;;) {
		struct hark_up_chunk *c;
		int abort_now;

		pthread_mutex_lock(&up->mu);
		abort_now = up->abort;
		c = up->head;
		if (c) {
			up->head = c->next;
			if (!up->head)
				up->tail = NULL;
		} else {
			up->running = 0;
		}
		pthread_mutex_unlock(&up->mu);
		if (!c)
			break;
		if (!abort_now && !up->werr) {
			int rc = HARK_OK;
			char err[256] = "";
			if (!up->w)
				rc = hark_blob_writer_new(srv->p->data_dir, srv->p->max_body_bytes,
							  &up->w, err, sizeof(err));
			if (rc == HARK_OK) {
				rc = hark_blob_writer_write(up->w, c->data, c->len);
				if (rc)
					snprintf(err, sizeof(err), "%s",
						 *hark_blob_writer_errmsg(up->w)
							 ? hark_blob_writer_errmsg(up->w)
						 : rc == HARK_ERR_LIMIT ? "upload exceeds the size cap"
									: "writing the upload failed");
			}
			pthread_mutex_lock(&up->mu);
			if (rc) {
				up->werr = rc;
				snprintf(up->errmsg, sizeof(up->errmsg), "%s", err);
			} else {
				up->written += (int64_t)c->len;
			}
			pthread_mutex_unlock(&up->mu);
		}
		pthread_mutex_lock(&up->mu);
		up->queued -= c->len;
		pthread_mutex_unlock(&up->mu);
		done_bytes += c->len;
		free(c);
		if (done_bytes >= WRITER_BUDGET) {
			/* yield the thread to other tasks; keep our reference */
			if (hark_workq_submit(srv->wq, writer_task, up) == HARK_OK) {
				writer_report(up);
				return;
			}
			done_bytes = 0;
		}
	}
	writer_report(up);
	upload_unref(up); /* the task's reference */
}

static struct hark_upload *upload_get(struct hark_req *r)
{
	struct hark_upload *up = r->up;

	if (up)
		return up;
	up = calloc(1, sizeof(*up));
	if (!up)
		return NULL;
	if (pthread_mutex_init(&up->mu, NULL) != 0) {
		free(up);
		return NULL;
	}
	atomic_init(&up->refs, 1);
	up->srv = r->srv;
	up->req = r;
	up->d.kind = HARK_DONE_UPLOAD;
	up->d.obj = up;
	r->up = up;
	return up;
}

/* Starts the writer if it is idle; called with up->mu NOT held. */
static int writer_kick(struct hark_upload *up)
{
	int start = 0;

	pthread_mutex_lock(&up->mu);
	if (!up->running) {
		up->running = 1;
		start = 1;
	}
	pthread_mutex_unlock(&up->mu);
	if (!start)
		return HARK_OK;
	atomic_fetch_add(&up->refs, 1);
	if (hark_workq_submit(up->srv->wq, writer_task, up) != HARK_OK) {
		pthread_mutex_lock(&up->mu);
		up->running = 0;
		pthread_mutex_unlock(&up->mu);
		upload_unref(up);
		return HARK_ERR_LIMIT;
	}
	return HARK_OK;
}

int hark_server_upload_append(struct hark_req *r, const void *p, size_t n)
{
	struct hark_upload *up = upload_get(r);
	struct hark_up_chunk *c;
	size_t queued;
	int rc = HARK_OK;

	if (!up)
		return HARK_ERR_NOMEM;
	if (!n)
		return HARK_OK;
	pthread_mutex_lock(&up->mu);
	if (up->queued + n > UP_HARD_CAP) {
		pthread_mutex_unlock(&up->mu);
		return HARK_ERR_LIMIT;
	}
	c = up->tail;
	if (c && c->cap - c->len >= n) {
		memcpy(c->data + c->len, p, n);
		c->len += n;
	} else {
		size_t cap = n > UP_CHUNK ? n : UP_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c) {
			pthread_mutex_unlock(&up->mu);
			return HARK_ERR_NOMEM;
		}
		c->next = NULL;
		c->cap = cap;
		c->len = n;
		memcpy(c->data, p, n);
		if (up->tail)
			up->tail->next = c;
		else
			up->head = c;
		up->tail = c;
	}
	up->queued += n;
	queued = up->queued;
	pthread_mutex_unlock(&up->mu);
	rc = writer_kick(up);
	if (rc == HARK_OK && queued > UP_HIGH_WATER && !up->paused && r->wsi) {
		lws_rx_flow_control(r->wsi, 0);
		up->paused = 1;
	}
	return rc;
}

void hark_server_upload_finish(struct hark_req *r)
{
	if (upload_get(r))
		writer_kick(r->up);
}

void hark_server_upload_abort(struct hark_req *r)
{
	if (!r->up)
		return;
	pthread_mutex_lock(&r->up->mu);
	r->up->abort = 1;
	pthread_mutex_unlock(&r->up->mu);
	writer_kick(r->up);
}

int hark_server_upload_busy(struct hark_upload *up)
{
	int busy;

	pthread_mutex_lock(&up->mu);
	busy = up->running || up->head != NULL;
	pthread_mutex_unlock(&up->mu);
	return busy;
}

static void upload_report_drained(struct hark_upload *up)
{
	struct hark_req *r = up->req;
	size_t queued;

	if (!r || !r->wsi)
		return;
	pthread_mutex_lock(&up->mu);
	queued = up->queued;
	pthread_mutex_unlock(&up->mu);
	if (up->paused && queued < UP_LOW_WATER) {
		up->paused = 0;
		r->last_rx = hark_server_now(); /* the pause was ours, not the client's */
		lws_rx_flow_control(r->wsi, 1);
	}
	hark_api_upload_report(r);
}

/* ---- bytes per request -------------------------------------------------- */

/*
 * lws keeps no count of the header bytes of a request, and unknown headers
 * cannot be listed through its API; the kernel's per-connection received
 * byte count can: the bytes received since the previous request ended,
 * minus the body, bound the header block from below (exactly for requests
 * without a body). Marks are per socket, reset when a connection closes.
 */
static uint64_t *rx_marks;
static size_t n_rx_marks;

static int tcp_received(struct lws *wsi, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int fd = wsi ? (int)lws_get_socket_fd(wsi) : -1;

	if (fd < 0)
		return -1;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return -1;
	*out = ti.tcpi_bytes_received;
	return 0;
}

static void rx_mark_reset(struct lws *wsi)
{
	int fd = (int)lws_get_socket_fd(wsi);

	if (fd >= 0 && (size_t)fd < n_rx_marks)
		rx_marks[fd] = 0;
}

/* The request on wsi ended: later bytes belong to the next one. */
static void rx_mark_end(struct lws *wsi)
{
	int fd = (int)lws_get_socket_fd(wsi);
	uint64_t now;

	if (fd >= 0 && (size_t)fd < n_rx_marks && tcp_received(wsi, &now) == 0)
		rx_marks[fd] = now;
}

int64_t hark_server_request_bytes(struct hark_req *r)
{
	int fd = r->wsi ? (int)lws_get_socket_fd(r->wsi) : -1;
	uint64_t now, mark;

	if (fd < 0 || (size_t)fd >= n_rx_marks || tcp_received(r->wsi, &now) != 0)
		return -1;
	mark = rx_marks[fd];
	if (now < mark) { /* a new connection on a reused descriptor */
		rx_marks[fd] = 0;
		mark = 0;
	}
	return (int64_t)(now - mark);
}

/* ---- requests ----------------------------------------------------------- */

static void stream_free(struct hark_stream *s)
{
	if (!s)
		return;
	hark_event_array_free(s->hist, s->n_hist);
	for (size_t i = 0; i < s->q_len; i++)
		hark_hub_event_unref(s->q[(s->q_head + i) % s->q_cap]);
	free(s->q);
	free(s);
}

static void req_free(struct hark_req *r)
{
	if (r->up) {
		r->up->req = NULL;
		pthread_mutex_lock(&r->up->mu);
		r->up->abort = 1;
		pthread_mutex_unlock(&r->up->mu);
		upload_unref(r->up);
	}
	stream_free(r->stream);
	hark_multipart_free(r->mp);
	hark_job_options_clear(&r->opts);
	free(r->json);
	free(r->field);
	free(r->options_text);
	free(r->filename);
	free(r->oa_prompt);
	free(r->head);
	free(r->body);
	free(r);
}

static void req_release(struct hark_req *r)
{
	if (--r->refs <= 0)
		req_free(r);
}

static void valid_req_id(const char *in, char *out, size_t outlen, struct hark_srv *srv)
{
	size_t n = strlen(in);
	int ok = n > 0 && n <= 64;

	for (size_t i = 0; ok && i < n; i++) {
		char c = in[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_' || c == '.' || c == ':';
	}
	if (ok && n < outlen) {
		memcpy(out, in, n + 1);
		return;
	}
	snprintf(out, outlen, "req_%016llx", (unsigned long long)rng_next(srv));
}

static struct hark_req *req_new(struct hark_srv *srv, struct lws *wsi)
{
	struct hark_req *r = calloc(1, sizeof(*r));
	char rid[80] = "";

	if (!r)
		return NULL;
	r->srv = srv;
	r->wsi = wsi;
	r->refs = 1;
	r->d_task.kind = HARK_DONE_TASK;
	r->d_task.obj = r;
	r->content_length = -1;
	r->t0 = hark_server_now();
	r->t_wall = hark_server_wall();
	r->last_rx = r->t0;
	r->q_limit = 50;
	r->method_name = "GET";
	r->route_label = "other";
	r->opts = hark_job_options_default();
	lws_get_peer_simple(wsi, r->ip, sizeof(r->ip));
	if (lws_hdr_custom_length(wsi, "x-request-id:", 13) > 0 &&
	    lws_hdr_custom_copy(wsi, rid, sizeof(rid), "x-request-id:", 13) > 0)
		rid[sizeof(rid) - 1] = '\0';
	else
		rid[0] = '\0';
	valid_req_id(rid, r->req_id, sizeof(r->req_id), srv);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
	    lws_hdr_copy(wsi, r->origin, sizeof(r->origin), WSI_TOKEN_ORIGIN) > 0) {
		for (size_t i = 0; i < srv->p->n_cors; i++)
			if (strcmp(srv->p->cors[i], "*") == 0 ||
			    strcmp(srv->p->cors[i], r->origin) == 0)
				r->cors_ok = 1;
	} else {
		r->origin[0] = '\0';
	}
	r->lnext = srv->live;
	if (srv->live)
		srv->live->lprev = r;
	srv->live = r;
	return r;
}

static void log_request(struct hark_req *r, int status)
{
	struct hark_srv *srv = r->srv;
	char st[16], ms[32], labels[160];
	double dt = hark_server_now() - r->t0;

	if (r->logged)
		return;
	r->logged = 1;
	snprintf(st, sizeof(st), "%d", status);
	snprintf(ms, sizeof(ms), "%.3f", dt * 1000.0);
	hark_server_log(status >= 500 ? "error" : "info", "request", "req_id", r->req_id, "method",
			r->method_name, "route", r->route_label, "#status", st, "#ms", ms, "ip", r->ip,
			"key", r->key_id[0] ? r->key_id : NULL, NULL);
	snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", r->route_label,
		 r->method_name, status);
	hark_metrics_add(srv->metrics, "hark_http_requests_total", labels, 1);
	snprintf(labels, sizeof(labels), "route=\"%s\"", r->route_label);
	hark_metrics_observe(srv->metrics, "hark_http_request_duration_seconds", labels, dt);
}

/* The connection is gone (or the transaction is over): unhook from lws. */
static void req_detach(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;

	if (!r->wsi)
		return;
	if (!r->resp_done && !(r->stream && r->stream->hdr_sent) && !atomic_load(&srv->stop))
		hark_api_closed(r);
	if (!r->logged)
		log_request(r, r->stream && r->stream->hdr_sent ? (r->is_ws ? 101 : 200)
				: r->resp_done ? r->status : 499);
	if (r->stream) {
		hark_hub_unsubscribe(srv->hub, &r->stream->sub);
		if (r->stream->kind == HARK_STREAM_SSE && r->stream->hdr_sent)
			srv->n_sse--;
		if (r->stream->kind == HARK_STREAM_WS && r->stream->hdr_sent)
			srv->n_ws--;
	}
	if (r->up) {
		pthread_mutex_lock(&r->up->mu);
		if (!r->resp_done || r->status >= 300)
			r->up->abort = 1;
		pthread_mutex_unlock(&r->up->mu);
	}
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		srv->live = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	r->lprev = r->lnext = NULL;
	r->wsi = NULL;
	req_release(r);
}

/* ---- responses ---------------------------------------------------------- */

void hark_server_set_response(struct hark_req *r, int status, const char *ctype, char *body,
			      size_t len)
{
	free(r->body);
	r->status = status;
	r->ctype = ctype ? ctype : "application/json";
	r->body = body;
	r->body_len = body ? len : 0;
	r->body_off = 0;
}

void hark_server_set_error(struct hark_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	char *out;
	va_list ap;
	size_t pos = 0, cap = 1024;
	const char *type = status >= 500 ? "server_error"
			   : status == 401 || status == 403 ? "authentication_error"
			   : status == 429 ? "rate_limit_error" : "invalid_request_error";

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out = malloc(cap);
	if (out) {
		pos += (size_t)snprintf(out, cap, "{\"error\":{\"code\":\"");
		json_esc(out, cap, &pos, code);
		pos += (size_t)snprintf(out + pos, cap - pos, "\",\"message\":\"");
		json_esc(out, cap, &pos, msg);
		pos += (size_t)snprintf(out + pos, cap - pos, "\",\"type\":\"%s\"}}\n", type);
		if (pos >= cap)
			pos = cap - 1;
	}
	hark_server_set_response(r, status, "application/json", out, out ? pos : 0);
	if (status == 500)
		hark_server_log("error", "internal error", "req_id", r->req_id, "detail", msg, NULL);
}

/*
 * lws 4.1 reads nothing from an HTTP/1 connection while a transaction is
 * open (LRS_DOING_TRANSACTION), yet keeps polling it for input: a client
 * that goes away mid-transaction (an SSE stream, a request waiting for a
 * task) would make the service loop spin on its EOF. So bodyless requests
 * keep input off while they wait (a reset peer still shows as POLLHUP and
 * is closed at once; a quiet close is found by the next write). lws also
 * skips writable callbacks of a flow-controlled HTTP connection, so input
 * goes back on whenever we want to write.
 */
static void rx_off(struct hark_req *r)
{
	if (r->wsi && !r->rx_off && !r->is_ws) {
		lws_rx_flow_control(r->wsi, 0);
		r->rx_off = 1;
	}
}

static void want_write(struct hark_req *r)
{
	if (!r->wsi)
		return;
	if (r->rx_off) {
		lws_rx_flow_control(r->wsi, 1);
		r->rx_off = 0;
	}
	lws_callback_on_writable(r->wsi);
}

void hark_server_respond(struct hark_req *r)
{
	if (!r->wsi || r->resp_ready)
		return;
	r->resp_ready = 1;
	want_write(r);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return NULL;
	}
}

/* The status line. lws 4.1 knows no reason phrase for 202, 204, 429 and
 * 431, and says HTTP/1.0 while refusing a WebSocket upgrade; on HTTP/1 we
 * write those lines ourselves (h2 streams have no phrases). */
static int add_status(struct lws *wsi, int status, int own, unsigned char **p,
		      unsigned char *end)
{
	const char *phrase = reason_phrase(status);
	char line[64];
	int n;

	if (!own)
		own = status == 202 || status == 204 || status == 429 || status == 431;
	if (!own || !phrase || lws_get_network_wsi(wsi) != wsi)
		return lws_add_http_header_status(wsi, (unsigned)status, p, end);
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s", status, phrase);
	return lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line, n, p, end);
}

static int add_hdr(struct lws *wsi, const char *name, const char *val, unsigned char **p,
		   unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)val, (int)strlen(val), p, end);
}

/* Headers every response carries: request id and CORS. */
static int add_common_headers(struct hark_req *r, unsigned char **p, unsigned char *end)
{
	struct lws *wsi = r->wsi;

	if (add_hdr(wsi, "x-request-id:", r->req_id, p, end))
		return -1;
	if (r->cors_ok) {
		if (add_hdr(wsi, "access-control-allow-origin:", r->origin, p, end) ||
		    add_hdr(wsi, "vary:", "Origin", p, end) ||
		    add_hdr(wsi, "access-control-expose-headers:",
			    "X-Request-Id, Location, Retry-After", p, end))
			return -1;
	}
	return 0;
}

/* The response is written: finish the transaction. Returns the callback's
 * return value (-1 closes). */
static int finish_http(struct hark_req *r)
{
	struct lws *wsi = r->wsi;
	struct pss *pss = lws_wsi_user(wsi);

	r->resp_done = 1;
	log_request(r, r->status);
	if ((r->content_length > 0 || r->chunked) && !r->body_done) {
		/* answered before the body ended: keep reading (and dropping)
		 * it so the client sees the answer, then close; the tick closes
		 * the connection after LINGER_S if the body keeps coming */
		r->close_after = 1;
		r->linger_until = hark_server_now() + LINGER_S;
		return 0;
	}
	if (r->close_after || r->chunked)
		return -1;
	rx_mark_end(wsi);
	if (pss && pss->req == r) {
		pss->req = NULL;
		req_detach(r);
	}
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int write_http(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	struct lws *wsi = r->wsi;
	unsigned char *start = srv->wbuf + LWS_PRE, *p = start, *end = start + HARK_WBUF;
	size_t n;

	if (!r->hdr_sent) {
		char num[32];
		if (add_status(wsi, r->status, 0, &p, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
						 (const unsigned char *)r->ctype, (int)strlen(r->ctype),
						 &p, end) ||
		    lws_add_http_header_content_length(wsi, r->body_len, &p, end) ||
		    add_common_headers(r, &p, end) ||
		    add_hdr(wsi, "cache-control:", "no-store", &p, end))
			return -1;
		if (r->location[0] && add_hdr(wsi, "location:", r->location, &p, end))
			return -1;
		if (r->retry_after > 0) {
			snprintf(num, sizeof(num), "%d", r->retry_after);
			if (add_hdr(wsi, "retry-after:", num, &p, end))
				return -1;
		}
		if (r->allow && add_hdr(wsi, "allow:", r->allow, &p, end))
			return -1;
		if (r->status == 204 && r->cors_ok &&
		    (add_hdr(wsi, "access-control-allow-methods:", "GET, POST, DELETE, OPTIONS", &p,
			     end) ||
		     add_hdr(wsi, "access-control-allow-headers:",
			     "Authorization, Content-Type, X-Request-Id, Last-Event-ID", &p, end) ||
		     add_hdr(wsi, "access-control-max-age:", "600", &p, end)))
			return -1;
		if ((r->close_after || r->chunked) &&
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						 (const unsigned char *)"close", 5, &p, end))
			return -1;
		if (lws_finalize_http_header(wsi, &p, end))
			return -1;
		r->hdr_sent = 1;
		if (r->head_only)
			r->body_off = r->body_len;
	}
	n = r->body_len - r->body_off;
	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	if (n) {
		memcpy(p, r->body + r->body_off, n);
		p += n;
		r->body_off += n;
	}
	if (p > start && lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < 0)
		return -1;
	if (r->body_off < r->body_len) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	return finish_http(r);
}

/* A refused WebSocket handshake: the HTTP error goes out at once (the
 * connection closes right after). */
static void write_reject(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	unsigned char *start = srv->wbuf + LWS_PRE, *p = start, *end = start + HARK_WBUF;
	char num[16];

	r->close_after = 1;
	if (add_status(r->wsi, r->status, 1, &p, end) ||
	    lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)r->ctype, (int)strlen(r->ctype), &p,
					 end) ||
	    lws_add_http_header_content_length(r->wsi, r->body_len, &p, end) ||
	    add_common_headers(r, &p, end))
		goto logit;
	if (r->retry_after > 0) {
		snprintf(num, sizeof(num), "%d", r->retry_after);
		if (add_hdr(r->wsi, "retry-after:", num, &p, end))
			goto logit;
	}
	if (lws_add_http_header_by_token(r->wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p, end) ||
	    lws_finalize_http_header(r->wsi, &p, end))
		goto logit;
	if (r->body_len <= (size_t)(end - p)) {
		memcpy(p, r->body, r->body_len);
		p += r->body_len;
	}
	if (lws_write(r->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < 0)
		goto logit;
logit:
	r->resp_done = 1;
	log_request(r, r->status);
}

/* ---- streams ------------------------------------------------------------ */

/* Asks for a writable callback on a stream's connection (SSE or WS). */
static void stream_wake(struct hark_req *r)
{
	if (!r->wsi)
		return;
	if (r->is_ws)
		lws_callback_on_writable(r->wsi);
	else
		want_write(r);
}

static void stream_on_event(struct hark_hub_sub *sub, struct hark_hub_event *ev)
{
	struct hark_stream *s = (struct hark_stream *)sub;
	struct hark_req *r = s->req;

	if (s->kind == HARK_STREAM_WAIT) {
		if (ev->final && r->wsi) {
			/* api.c picks the job status from the event type */
			r->job_status = strcmp(ev->type, "done") == 0     ? HARK_JOB_DONE
					: strcmp(ev->type, "failed") == 0 ? HARK_JOB_FAILED
									  : HARK_JOB_CANCELED;
			hark_hub_unsubscribe(r->srv->hub, sub);
			hark_api_wait_ended(r);
		}
		return;
	}
	if (ev->seq <= s->last_seq || s->overflow || s->final_sent)
		return;
	if (s->q_len == s->q_cap) {
		size_t ncap = s->q_cap ? s->q_cap * 2 : 4;
		struct hark_hub_event **nq;
		if (ncap > STREAM_QUEUE_CAP) {
			s->overflow = 1;
			stream_wake(r);
			return;
		}
		nq = malloc(ncap * sizeof(*nq));
		if (!nq) {
			s->overflow = 1;
			stream_wake(r);
			return;
		}
		for (size_t i = 0; i < s->q_len; i++)
			nq[i] = s->q[(s->q_head + i) % s->q_cap];
		free(s->q);
		s->q = nq;
		s->q_cap = ncap;
		s->q_head = 0;
	}
	s->q[(s->q_head + s->q_len) % s->q_cap] = hark_hub_event_ref(ev);
	s->q_len++;
	if (s->ready)
		stream_wake(r);
}

struct hark_stream *hark_server_stream_new(struct hark_req *r, int kind, int64_t after_seq)
{
	struct hark_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->req = r;
	s->kind = kind;
	s->last_seq = after_seq;
	s->sub.fn = stream_on_event;
	s->last_write = hark_server_now();
	r->stream = s;
	return s;
}

void hark_server_hold(struct hark_req *r)
{
	if (r && r->wsi)
		lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
}

void hark_server_stream_ready(struct hark_req *r)
{
	if (!r->stream || !r->wsi)
		return;
	r->stream->ready = 1;
	stream_wake(r);
}

/* Next event to send (seq > last_seq): from the history, then the live
 * queue. *hev gets the hub event to unref after use (or NULL). */
struct next_ev {
	int64_t seq;
	const char *type;
	const char *data;
	size_t len;
	int final;
	struct hark_hub_event *hev;
};

static int stream_next(struct hark_stream *s, struct next_ev *o)
{
	while (s->hist_i < s->n_hist) {
		struct hark_event *e = &s->hist[s->hist_i++];
		if (e->seq <= s->last_seq)
			continue;
		o->seq = e->seq;
		o->type = e->type;
		o->data = e->data ? e->data : "{}";
		o->len = strlen(o->data);
		o->final = hark_hub_type_is_final(e->type);
		o->hev = NULL;
		return 1;
	}
	while (s->q_len) {
		struct hark_hub_event *ev = s->q[s->q_head];
		s->q_head = (s->q_head + 1) % s->q_cap;
		s->q_len--;
		if (ev->seq <= s->last_seq) {
			hark_hub_event_unref(ev);
			continue;
		}
		o->seq = ev->seq;
		o->type = ev->type;
		o->data = ev->data;
		o->len = ev->len;
		o->final = ev->final;
		o->hev = ev;
		return 1;
	}
	return 0;
}

static int stream_pending(struct hark_stream *s)
{
	if (s->hist && s->hist_i >= s->n_hist) {
		/* replayed: drop the history now, not when the stream ends */
		hark_event_array_free(s->hist, s->n_hist);
		s->hist = NULL;
		s->n_hist = s->hist_i = 0;
	}
	return s->hist_i < s->n_hist || s->q_len > 0;
}

static int write_sse(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	struct hark_stream *s = r->stream;
	struct lws *wsi = r->wsi;
	unsigned char *start = srv->wbuf + LWS_PRE, *p = start, *end = start + HARK_WBUF;
	struct next_ev ev;

	if (!s->hdr_sent) {
		if (lws_add_http_header_status(wsi, 200, &p, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
						 (const unsigned char *)"text/event-stream", 17, &p,
						 end) ||
		    add_hdr(wsi, "cache-control:", "no-cache", &p, end) ||
		    add_hdr(wsi, "x-accel-buffering:", "no", &p, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						 (const unsigned char *)"close", 5, &p, end) ||
		    add_common_headers(r, &p, end) || lws_finalize_http_header(wsi, &p, end))
			return -1;
		s->hdr_sent = 1;
		r->status = 200;
		srv->n_sse++;
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		/* the header table is not needed any more: free it so that
		 * thousands of idle streams stay small */
		lws_http_headers_detach(wsi);
	}
	if (s->overflow)
		return -1;
	while (!s->final_sent && stream_pending(s)) {
		size_t need;
		if (!stream_next(s, &ev))
			break;
		need = ev.len + 64 + strlen(ev.type);
		if (need > (size_t)(end - p)) {
			if (p == start) {
				/* an event larger than the buffer: skip it */
				s->last_seq = ev.seq;
				hark_hub_event_unref(ev.hev);
				continue;
			}
			/* put it back for the next round */
			if (ev.hev) {
				s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
				s->q[s->q_head] = ev.hev;
				s->q_len++;
			} else {
				s->hist_i--;
			}
			break;
		}
		p += snprintf((char *)p, (size_t)(end - p), "id: %lld\nevent: %s\ndata: ",
			      (long long)ev.seq, ev.type);
		memcpy(p, ev.data, ev.len);
		p += ev.len;
		*p++ = '\n';
		*p++ = '\n';
		s->last_seq = ev.seq;
		if (ev.final)
			s->final_sent = 1;
		hark_hub_event_unref(ev.hev);
	}
	if (s->ping_due && p == start) {
		memcpy(p, ": ping\n\n", 8);
		p += 8;
	}
	s->ping_due = 0;
	if (p > start) {
		if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < 0)
			return -1;
		s->last_write = hark_server_now();
	}
	if (s->final_sent || (s->job_final && !stream_pending(s)))
		return -1; /* lws flushes what is buffered, then closes */
	if (stream_pending(s))
		lws_callback_on_writable(wsi);
	else
		rx_off(r); /* idle until the next event or ping */
	return 0;
}

static int write_ws(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	struct hark_stream *s = r->stream;
	struct lws *wsi = r->wsi;
	unsigned char *start = srv->wbuf + LWS_PRE;
	size_t cap = HARK_WBUF;
	struct next_ev ev;
	int n;

	if (s->overflow) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"too slow", 8);
		return -1;
	}
	if (s->close_code) {
		const char *why = s->close_code == 1000 ? "" : s->close_code == 4404 ? "not_found"
							  : "error";
		lws_close_reason(wsi, (enum lws_close_status)s->close_code, (unsigned char *)why,
				 strlen(why));
		return -1;
	}
	if (!s->ready)
		return 0;
	if (!s->hdr_sent) {
		s->hdr_sent = 1;
		srv->n_ws++;
	}
	if (s->ping_due) {
		s->ping_due = 0;
		if (lws_write(wsi, start, 0, LWS_WRITE_PING) < 0)
			return -1;
		s->last_write = hark_server_now();
		if (stream_pending(s) || s->job_final)
			lws_callback_on_writable(wsi);
		return 0;
	}
	while (stream_next(s, &ev)) {
		size_t need = ev.len + 64 + strlen(ev.type);
		if (need > cap) {
			s->last_seq = ev.seq;
			hark_hub_event_unref(ev.hev);
			continue;
		}
		n = snprintf((char *)start, cap, "{\"id\":%lld,\"event\":\"%s\",\"data\":",
			     (long long)ev.seq, ev.type);
		memcpy(start + n, ev.data, ev.len);
		n += (int)ev.len;
		start[n++] = '}';
		s->last_seq = ev.seq;
		if (ev.final)
			s->final_sent = 1;
		hark_hub_event_unref(ev.hev);
		if (lws_write(wsi, start, (size_t)n, LWS_WRITE_TEXT) < 0)
			return -1;
		s->last_write = hark_server_now();
		if (s->final_sent || (s->job_final && !stream_pending(s)))
			s->close_code = 1000;
		if (s->close_code || stream_pending(s))
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->job_final) {
		s->close_code = 1000;
		lws_callback_on_writable(wsi);
	}
	return 0;
}

/* ---- the tick: pings, deadlines, key refresh ------------------------------ */

static atomic_int keyring_busy;

static void keyring_task(void *arg)
{
	struct hark_srv *srv = arg;

	hark_keyring_refresh(srv->keys, srv->st);
	atomic_store(&keyring_busy, 0);
}

static void tick(lws_sorted_usec_list_t *sul)
{
	struct hark_srv *srv = g_srv;
	double now = hark_server_now();
	struct hark_req *r, *nx;

	(void)sul;
	if (!srv || atomic_load(&srv->stop))
		return;
	for (r = srv->live; r; r = nx) {
		nx = r->lnext;
		if (!r->wsi)
			continue;
		if (r->stream && r->stream->hdr_sent && r->stream->kind != HARK_STREAM_WAIT &&
		    now - r->stream->last_write >= PING_INTERVAL_S) {
			r->stream->ping_due = 1;
			r->stream->last_write = now;
			stream_wake(r);
		}
		if (r->linger_until > 0 && now > r->linger_until) {
			r->linger_until = 0;
			lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			continue;
		}
		if ((r->content_length > 0 || r->chunked) && r->body_started && !r->body_done &&
		    !r->body_error && !r->resp_ready && !(r->up && r->up->paused) &&
		    now - r->last_rx > srv->p->client_timeout_s) {
			r->body_error = 1;
			r->close_after = 1;
			hark_metrics_add(srv->metrics, "hark_uploads_rejected_total",
					 "reason=\"timeout\"", 1);
			hark_server_upload_abort(r);
			hark_server_set_error(r, 408, "request_timeout",
					      "the request body did not arrive within %.0f s",
					      srv->p->client_timeout_s);
			hark_server_respond(r);
		}
	}
	if (now - srv->last_tick >= 1.0 && !atomic_exchange(&keyring_busy, 1)) {
		srv->last_tick = now;
		if (hark_workq_submit(srv->wq, keyring_task, srv) != HARK_OK)
			atomic_store(&keyring_busy, 0);
	}
	lws_sul_schedule(srv->ctx, 0, &tick_sul, tick, TICK_US);
}

/* ---- tasks -------------------------------------------------------------- */

static void task_trampoline(void *arg)
{
	struct hark_req *r = arg;

	r->task_run(r);
	done_post(r->srv, &r->d_task);
}

int hark_server_submit(struct hark_req *r, void (*run)(struct hark_req *),
		       void (*done)(struct hark_req *))
{
	if (r->task_busy)
		return HARK_ERR_INTERNAL;
	r->task_run = run;
	r->task_done = done;
	r->refs++;
	r->task_busy = 1;
	if (hark_workq_submit(r->srv->wq, task_trampoline, r) != HARK_OK) {
		r->refs--;
		r->task_busy = 0;
		return HARK_ERR_LIMIT;
	}
	return HARK_OK;
}

static void drain_completions(struct hark_srv *srv)
{
	struct hark_done *d;

	while ((d = done_take(srv)) != NULL) {
		if (d->kind == HARK_DONE_TASK) {
			struct hark_req *r = d->obj;
			r->task_busy = 0;
			if (r->wsi && !atomic_load(&srv->stop)) {
				if (r->task_done)
					r->task_done(r);
				else
					hark_server_respond(r);
			} else if (!r->wsi && !atomic_load(&srv->stop)) {
				hark_api_orphan_done(r);
			}
			req_release(r);
		} else {
			struct hark_upload *up = d->obj;
			if (!atomic_load(&srv->stop))
				upload_report_drained(up);
			upload_unref(up);
		}
	}
}

/* ---- purges deferred until a job stops ------------------------------------ */

struct purge_task {
	struct hark_srv *srv;
	char job_id[HARK_ID_LEN];
};

static void purge_run(void *arg)
{
	struct purge_task *t = arg;
	char orphan[HARK_SHA_HEX_LEN] = "";

	if (hark_store_job_purge(t->srv->st, t->job_id, orphan) == HARK_OK && orphan[0])
		hark_blob_remove(t->srv->p->data_dir, orphan);
	free(t);
}

static void purge_on_event(struct hark_hub_sub *sub, struct hark_hub_event *ev)
{
	struct hark_srv *srv = g_srv;
	struct purge_task *t;

	if (!ev->final || !srv)
		return;
	hark_hub_unsubscribe(srv->hub, sub);
	for (size_t i = 0; i < srv->n_purges; i++) {
		if (srv->purges[i] == sub) {
			srv->purges[i] = srv->purges[--srv->n_purges];
			break;
		}
	}
	t = calloc(1, sizeof(*t));
	if (t) {
		t->srv = srv;
		snprintf(t->job_id, sizeof(t->job_id), "%s", sub->job_id);
		if (hark_workq_submit(srv->wq, purge_run, t) != HARK_OK)
			free(t);
	}
	free(sub);
}

void hark_server_purge_later(struct hark_srv *srv, const char *job_id)
{
	struct hark_hub_sub *sub, **np;

	if (srv->n_purges >= 4096)
		return;
	np = realloc(srv->purges, (srv->n_purges + 1) * sizeof(*np));
	if (!np)
		return;
	srv->purges = np;
	sub = calloc(1, sizeof(*sub));
	if (!sub)
		return;
	sub->fn = purge_on_event;
	hark_hub_subscribe(srv->hub, sub, job_id);
	srv->purges[srv->n_purges++] = sub;
	{
		/* in case it stopped before we subscribed (a running job refuses
		 * the purge, harmlessly) */
		struct purge_task *t = calloc(1, sizeof(*t));
		if (t) {
			t->srv = srv;
			snprintf(t->job_id, sizeof(t->job_id), "%s", job_id);
			if (hark_workq_submit(srv->wq, purge_run, t) != HARK_OK)
				free(t);
		}
	}
}

/* ---- the lws callback ----------------------------------------------------- */


/* The whole body is in. An early answer already went out: close now (the
 * client has sent everything, so the close is clean). */
static int body_complete(struct hark_req *r)
{
	if (r->body_done)
		return 0;
	if (r->resp_done)
		return -1;
	if (r->body_error || r->resp_ready) {
		r->body_done = 1; /* the answer finishes the transaction normally */
		return 0;
	}
	r->last_rx = hark_server_now();
	return hark_api_body_done(r);
}

/* Decodes a chunked request body; payload goes to hark_api_body. Returns 0,
 * 1 when the last chunk ended, -1 on malformed framing. */
static int dechunk(struct hark_req *r, const unsigned char *p, size_t n)
{
	enum { SZ, EXT, SZ_LF, DATA, D_CR, D_LF, TRAIL, TRAIL_LF, TRAIL_LINE, DONE };
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		switch (r->dc_state) {
		case SZ:
			if (c >= '0' && c <= '9')
				r->dc_left = r->dc_left * 16 + (c - '0');
			else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
				r->dc_left = r->dc_left * 16 + ((c | 0x20) - 'a' + 10);
			else if (c == ';' || c == ' ' || c == '\t')
				r->dc_state = EXT;
			else if (c == '\r')
				r->dc_state = SZ_LF;
			else
				return -1;
			if (r->dc_left > ((uint64_t)1 << 40))
				return -1;
			i++;
			break;
		case EXT:
			if (c == '\r')
				r->dc_state = SZ_LF;
			i++;
			break;
		case SZ_LF:
			if (c != '\n')
				return -1;
			r->dc_state = r->dc_left ? DATA : TRAIL;
			i++;
			break;
		case DATA: {
			size_t take = n - i;
			if (take > r->dc_left)
				take = (size_t)r->dc_left;
			if (!r->body_error && !r->resp_ready && hark_api_body(r, p + i, take))
				return -2;
			r->dc_left -= take;
			i += take;
			if (!r->dc_left)
				r->dc_state = D_CR;
			break;
		}
		case D_CR:
			if (c != '\r')
				return -1;
			r->dc_state = D_LF;
			i++;
			break;
		case D_LF:
			if (c != '\n')
				return -1;
			r->dc_state = SZ;
			r->dc_left = 0;
			i++;
			break;
		case TRAIL: /* start of a trailer line or the final CRLF */
			r->dc_state = c == '\r' ? TRAIL_LF : TRAIL_LINE;
			i++;
			break;
		case TRAIL_LINE:
			if (c == '\n')
				r->dc_state = TRAIL;
			i++;
			break;
		case TRAIL_LF:
			if (c != '\n')
				return -1;
			r->dc_state = DONE;
			return 1;
		case DONE:
		default:
			return 1;
		}
	}
	return 0;
}

static int on_body(struct hark_req *r, const unsigned char *in, size_t len)
{
	int rc;

	if (r->body_done)
		return r->resp_done ? -1 : 0;
	r->last_rx = hark_server_now();
	if (!r->chunked) {
		if (r->body_error || r->resp_ready)
			return 0; /* answered already: the rest is dropped */
		return hark_api_body(r, in, len) ? -1 : 0;
	}
	rc = dechunk(r, in, len);
	if (rc == -2)
		return -1;
	if (rc == -1) {
		if (r->resp_ready)
			return -1;
		r->body_error = 1;
		r->close_after = 1;
		hark_server_upload_abort(r);
		hark_server_set_error(r, 400, "bad_request", "malformed chunked request body");
		hark_server_respond(r);
		return 0;
	}
	if (rc == 1)
		return body_complete(r);
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct hark_srv *srv = g_srv;
	struct pss *pss = user;
	struct hark_req *r = pss ? pss->req : NULL;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (!srv)
			return 0;
		drain_completions(srv);
		if (!atomic_load(&srv->stop))
			hark_hub_dispatch(srv->hub);
		return 0;

	case LWS_CALLBACK_HTTP:
		if (!pss || !srv)
			return -1;
		if (r) { /* a previous transaction left its request behind */
			pss->req = NULL;
			req_detach(r);
		}
		r = req_new(srv, wsi);
		if (!r)
			return -1;
		pss->req = r;
		if (hark_api_http(r, in ? (const char *)in : "/"))
			return -1;
		if (!r->resp_ready && r->content_length <= 0 && !r->chunked)
			rx_off(r); /* waits for a task or a stream: see rx_off */
		return 0;

	case LWS_CALLBACK_HTTP_BODY:
		if (!r)
			return -1;
		return on_body(r, in, len);

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!r)
			return -1;
		if (r->chunked)
			return 0;
		return body_complete(r);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!r || !r->wsi)
			return 0;
		if (r->stream && r->stream->kind == HARK_STREAM_SSE && !r->resp_ready)
			return r->stream->ready ? write_sse(r) : 0;
		if (!r->resp_ready || r->resp_done)
			return 0;
		return write_http(r);

	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (reason == LWS_CALLBACK_CLOSED_HTTP)
			rx_mark_reset(wsi);
		/* fall through */
	case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED:
		if (reason == LWS_CALLBACK_CLOSED)
			rx_mark_reset(wsi);
		if (r) {
			pss->req = NULL;
			req_detach(r);
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		char uri[512];
		if (!pss || !srv)
			return 1;
		r = req_new(srv, wsi);
		if (!r)
			return 1;
		r->is_ws = 1;
		pss->req = r;
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
			snprintf(uri, sizeof(uri), "/");
		if (hark_api_ws_filter(r, uri)) {
			write_reject(r);
			pss->req = NULL;
			req_detach(r);
			return 1;
		}
		return 0;
	}

	case LWS_CALLBACK_ESTABLISHED:
		if (!r)
			return -1;
		hark_api_ws_established(r);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!r || !r->stream)
			return 0;
		return write_ws(r);

	case LWS_CALLBACK_RECEIVE:
		return 0; /* client messages are ignored */

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{"hark", callback, sizeof(struct pss), 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start-up and shutdown ------------------------------------------------- */

struct hark_server_params hark_server_default_params(void)
{
	struct hark_server_params p;

	memset(&p, 0, sizeof(p));
	p.host = "127.0.0.1";
	p.port = 8080;
	p.data_dir = "./hark-data";
	p.workers = 0;
	p.threads = 1;
	p.engine = "auto";
	p.model = "";
	p.auth = 1;
	p.max_body_bytes = (int64_t)100 << 20;
	p.max_json_bytes = (size_t)1 << 20;
	p.max_header_bytes = 8192;
	p.max_url_bytes = 2048;
	p.client_timeout_s = 30;
	p.ttl_s = 7 * 86400.0;
	p.drain_timeout_s = 30;
	p.min_free_disk_bytes = (int64_t)512 << 20;
	p.max_unfinished_per_key = 1000;
	p.anon_rps = 20;
	p.anon_burst = 40;
	p.key_rps = 10;
	p.key_burst = 20;
	p.key_daily_quota_s = 0;
	p.key_max_concurrent = 4;
	p.lease_s = 30;
	p.max_attempts = 3;
	p.webhook_secret_env = "HARK_WEBHOOK_SECRET";
	p.port_file = NULL;
	p.workq_threads = 8;
	p.workq_max_pending = 8192;
	return p;
}

static int mkdir_p(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, dir, n + 1);
	for (char *q = buf + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*q = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}



/*
 * Signals: libraries may have started threads before us (OpenBLAS does, at
 * load time), so blocking signals and sigwait() cannot catch them reliably.
 * Instead a handler (any thread) writes the signal number to a self-pipe and
 * the signal thread reads it; a 0 byte asks that thread to quit.
 */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	if (sig_pipe[1] >= 0 && write(sig_pipe[1], &b, 1) < 0) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

static void *signal_main(void *arg)
{
	struct hark_srv *srv = arg;
	unsigned char b = 0;

	for (;;) {
		ssize_t n = read(sig_pipe[0], &b, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || b == 0 || atomic_load(&srv->stop))
			break;
		if (atomic_exchange(&srv->draining, 1))
			continue;
		{
			char s[16], t[32];
			snprintf(s, sizeof(s), "%d", (int)b);
			snprintf(t, sizeof(t), "%.1f", srv->p->drain_timeout_s);
			hark_server_log("info", "draining", "#signal", s, "#timeout_s", t, NULL);
		}
		hark_server_wake(srv);
		size_t n_req = srv->jobs ? hark_jobs_drain(srv->jobs, srv->p->drain_timeout_s) : 0;
		{
			char s[32];
			snprintf(s, sizeof(s), "%zu", n_req);
			hark_server_log("info", "drained", "#requeued", s, NULL);
		}
		atomic_store(&srv->stop, 1);
		hark_server_wake(srv);
		break;
	}
	return NULL;
}

static int lock_dir(const char *dir, int *fd_out, char *err, size_t errlen)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/hark.lock", dir) >= (int)sizeof(path)) {
		hark_errbuf_set(err, errlen, "data directory path too long");
		return HARK_ERR_LIMIT;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK) {
			hark_errbuf_set(err, errlen,
					"%s is in use by another hark serve (lock %s is held)", dir,
					path);
			return HARK_ERR_PERMISSION;
		}
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(e));
		return HARK_ERR_IO;
	}
	if (ftruncate(fd, 0) == 0) {
		char pid[32];
		int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (write(fd, pid, (size_t)n) < 0) {
			/* informational only */
		}
	}
	*fd_out = fd;
	return HARK_OK;
}

/* The webhook secret: from the environment, else kept in the store. */
static int webhook_secret(struct hark_srv *srv, char **out, char *err, size_t errlen)
{
	const char *env = srv->p->webhook_secret_env && *srv->p->webhook_secret_env
			  ? getenv(srv->p->webhook_secret_env) : NULL;
	int rc;

	if (env && *env) {
		*out = strdup(env);
		return *out ? HARK_OK : HARK_ERR_NOMEM;
	}
	rc = hark_store_webhook_secret(srv->st, out);
	if (rc) {
		hark_errbuf_set(err, errlen, "webhook secret: %s", hark_store_errmsg(srv->st));
		return rc;
	}
	srv->secret_in_store = 1; /* logged after the "listening" line */
	return HARK_OK;
}

static int create_context(struct hark_srv *srv, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	const struct hark_server_params *p = srv->p;
	const char *host = p->host && *p->host ? p->host : "127.0.0.1";
	size_t ah;
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.port = p->port;
	info.protocols = protocols;
	info.vhost_name = "hark";
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
	/* the header table holds the URL and the headers; hark_api_http
	 * answers 431/414 within it, lws drops what does not fit at all */
	ah = 4 * (p->max_header_bytes + p->max_url_bytes);
	if (ah < 16384)
		ah = 16384;
	if (ah > 65535)
		ah = 65535;
	info.max_http_header_data = (unsigned short)ah;
	info.timeout_secs = (unsigned)ceil(p->client_timeout_s) + 5;
	info.timeout_secs_ah_idle = (unsigned)ceil(p->client_timeout_s);
	info.keepalive_timeout = (int)ceil(p->client_timeout_s);
	/* lws sizes its descriptor tables from the (raised) RLIMIT_NOFILE.
	 * fd_limit_per_thread stays 0: a value below the limit switches lws
	 * 4.1 to a linear descriptor lookup that misses closed peers (the
	 * service loop then spins on their POLLHUP). */
	n_rx_marks = (size_t)hark_portfile_raise_nofile(262144) + 64;
	rx_marks = calloc(n_rx_marks, sizeof(*rx_marks));
	if (!rx_marks)
		n_rx_marks = 0;
	info.pt_serv_buf_size = 64 * 1024;
	info.count_threads = 1;
	info.user = srv;
	srv->ctx = lws_create_context(&info);
	if (!srv->ctx) {
		hark_errbuf_set(err, errlen, "cannot listen on %s:%d (address in use or invalid)",
				host, p->port);
		return HARK_ERR_IO;
	}
	vh = lws_get_vhost_by_name(srv->ctx, "hark");
	srv->port = vh ? lws_get_vhost_listen_port(vh) : p->port;
	if (srv->port <= 0) {
		hark_errbuf_set(err, errlen, "cannot listen on %s:%d", host, p->port);
		return HARK_ERR_IO;
	}
	return HARK_OK;
}

int hark_server_run(const struct hark_server_params *p, char *err, size_t errlen)
{
	struct hark_srv *srv = NULL;
	struct hark_jobs_params jp;
	struct sigaction sa, old_term, old_int, old_pipe;
	pthread_t sig_thread;
	int sig_started = 0, lock_fd = -1, handlers_set = 0, rc = HARK_OK;
	char *secret = NULL;
	char msg[512];

	if (!p || !p->data_dir || !*p->data_dir) {
		hark_errbuf_set(err, errlen, "no data directory");
		return HARK_ERR_INVALID_ARG;
	}
	if (g_srv) {
		hark_errbuf_set(err, errlen, "a server already runs in this process");
		return HARK_ERR_INVALID_ARG;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return HARK_ERR_NOMEM;
	srv->p = p;
	pthread_mutex_init(&srv->done_mu, NULL);
	if (getrandom(&srv->rng, sizeof(srv->rng), 0) != (ssize_t)sizeof(srv->rng) || !srv->rng)
		srv->rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL + (uint64_t)getpid();
	snprintf(srv->instance_id, sizeof(srv->instance_id), "srv-%d-%08llx", (int)getpid(),
		 (unsigned long long)(rng_next(srv) & 0xffffffffULL));

	if (mkdir_p(p->data_dir) != 0) {
		hark_errbuf_set(err, errlen, "%s: cannot create: %s", p->data_dir, strerror(errno));
		rc = errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
		goto out;
	}
	if ((rc = lock_dir(p->data_dir, &lock_fd, err, errlen)))
		goto out;

	/* signals: SIGTERM/SIGINT reach the signal thread through a pipe */
	if (pipe2(sig_pipe, O_CLOEXEC) != 0) {
		hark_errbuf_set(err, errlen, "pipe: %s", strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	handlers_set = 1;

	{
		struct hark_store_params sp = hark_store_default_params();
		if ((rc = hark_store_open(p->data_dir, &sp, &srv->st, msg, sizeof(msg)))) {
			hark_errbuf_set(err, errlen, "store: %s", msg);
			goto out;
		}
	}
	hark_blob_clean_tmp(p->data_dir);
	if ((rc = webhook_secret(srv, &secret, err, errlen)))
		goto out;

	srv->metrics = hark_metrics_new(4096);
	srv->hub = hark_hub_new(200000);
	srv->keys = hark_keyring_new();
	srv->rl = hark_ratelimit_new(100000);
	srv->wbuf = malloc(LWS_PRE + HARK_WBUF + 16);
	if (!srv->metrics || !srv->hub || !srv->keys || !srv->rl || !srv->wbuf) {
		hark_errbuf_set(err, errlen, "out of memory");
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	hark_api_declare_metrics(srv->metrics);
	if ((rc = hark_keyring_refresh(srv->keys, srv->st))) {
		hark_errbuf_set(err, errlen, "loading API keys: %s", hark_store_errmsg(srv->st));
		goto out;
	}
	if (p->auth && hark_keyring_count(srv->keys) == 0)
		hark_server_log("warn", "no API keys: create one with hark keys create, or run with --no-auth",
				NULL);

	jp = hark_jobs_default_params();
	jp.data_dir = p->data_dir;
	jp.n_workers = p->workers;
	jp.threads_per_job = p->threads;
	jp.instance_id = srv->instance_id;
	jp.lease_s = p->lease_s;
	jp.max_attempts = p->max_attempts;
	jp.ttl_s = p->ttl_s;
	jp.engine = p->engine && *p->engine ? p->engine : NULL;
	jp.model = p->model && *p->model ? p->model : NULL;
	jp.webhook_secret = secret;
	jp.on_event = on_job_event;
	jp.user_data = srv;
	/* the LLM client starts a thread: it is made after the pool (see
	 * below), and analysis jobs wait for it */
	jp.llm_later = 1;
	g_srv = srv;
	if ((rc = hark_jobs_start(srv->st, &jp, &srv->jobs, msg, sizeof(msg)))) {
		hark_errbuf_set(err, errlen, "worker pool: %s", msg);
		goto out;
	}
	/* after the pool: its start may fork (the PocketSphinx model check),
	 * and a fork while our own threads are still starting up can leave
	 * the child stuck on an allocator lock under ASan */
	srv->wq = hark_workq_new(p->workq_threads > 0 ? p->workq_threads : 8,
				 p->workq_max_pending ? p->workq_max_pending : 8192);
	if (!srv->wq) {
		hark_errbuf_set(err, errlen, "cannot start the work queue");
		rc = HARK_ERR_NOMEM;
		goto out;
	}

	if (p->llm_config && p->llm_config->n_providers > 0) {
		struct hark_llm_params lp = hark_llm_default_params();

		lp.config = p->llm_config;
		lp.store = srv->st;
		lp.metrics = srv->metrics;
		lp.shared_limiter = 1; /* one budget for every process on this store */
		if ((rc = hark_llm_init(&lp, &srv->llm, msg, sizeof(msg)))) {
			hark_errbuf_set(err, errlen, "LLM providers: %s", msg);
			goto out;
		}
		for (size_t i = 0; i < p->llm_config->n_routes; i++)
			if (p->llm_config->routes[i].task &&
			    strcmp(p->llm_config->routes[i].task, "embed") == 0)
				srv->embed = 1;
	}
	hark_jobs_set_llm(srv->jobs, srv->llm, srv->embed);

	lws_set_log_level(LLL_ERR, lws_log_emit);
	if ((rc = create_context(srv, err, errlen)))
		goto out;
	pthread_mutex_lock(&wake_mu);
	wake_ctx = srv->ctx;
	pthread_mutex_unlock(&wake_mu);

	if (p->port_file && *p->port_file && hark_portfile_write(p->port_file, srv->port) != 0) {
		hark_errbuf_set(err, errlen, "%s: cannot write the port file: %s", p->port_file,
				strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	{
		char port[16], workers[16];
		struct hark_jobs_stats js;
		hark_jobs_get_stats(srv->jobs, &js);
		snprintf(port, sizeof(port), "%d", srv->port);
		snprintf(workers, sizeof(workers), "%d", js.workers_total);
		hark_server_log("info", "listening", "host", p->host, "#port", port, "data",
				p->data_dir, "#workers", workers, "#auth", p->auth ? "true" : "false",
				"version", hark_version(), NULL);
		if (srv->secret_in_store)
			hark_server_log("info", "webhook secret kept in the store", "read_with",
					"hark keys webhook-secret --data DIR", "env",
					p->webhook_secret_env, NULL);
	}

	if (pthread_create(&sig_thread, NULL, signal_main, srv) != 0) {
		hark_errbuf_set(err, errlen, "cannot start the signal thread");
		rc = HARK_ERR_INTERNAL;
		goto out;
	}
	sig_started = 1;
	srv->last_tick = hark_server_now();
	lws_sul_schedule(srv->ctx, 0, &tick_sul, tick, TICK_US);

	while (!atomic_load(&srv->stop)) {
		if (lws_service(srv->ctx, 0) < 0)
			break;
	}
	hark_server_log("info", "stopping", NULL);

out:
	if (srv) {
		atomic_store(&srv->stop, 1);
		if (sig_started) {
			unsigned char zero = 0;
			if (write(sig_pipe[1], &zero, 1) < 0) {
				/* the thread also stops on stop=1 with the next signal */
			}
			pthread_join(sig_thread, NULL);
		}
		if (srv->ctx) {
			lws_sul_cancel(&tick_sul);
			pthread_mutex_lock(&wake_mu);
			wake_ctx = NULL;
			pthread_mutex_unlock(&wake_mu);
			lws_context_destroy(srv->ctx);
			srv->ctx = NULL;
		}
		if (srv->jobs)
			hark_jobs_drain(srv->jobs, 0);
		if (srv->wq)
			hark_workq_free(srv->wq); /* runs what is queued */
		srv->wq = NULL;
		drain_completions(srv);
		if (srv->jobs)
			hark_jobs_free(srv->jobs);
		srv->jobs = NULL;
		while (srv->n_purges) {
			struct hark_hub_sub *sub = srv->purges[--srv->n_purges];
			hark_hub_unsubscribe(srv->hub, sub);
			free(sub);
		}
		free(srv->purges);
		hark_llm_free(srv->llm);
		hark_hub_free(srv->hub);
		hark_keyring_free(srv->keys);
		hark_ratelimit_free(srv->rl);
		hark_metrics_free(srv->metrics);
		if (srv->st)
			hark_store_close(srv->st);
		free(srv->wbuf);
		free(rx_marks);
		rx_marks = NULL;
		n_rx_marks = 0;
		pthread_mutex_destroy(&srv->done_mu);
		g_srv = NULL;
		free(srv);
	}
	free(secret);
	if (handlers_set) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGPIPE, &old_pipe, NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
		sig_pipe[i] = -1;
	}
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
