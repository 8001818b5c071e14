/*
 * Live job events of `hark serve` over Server-Sent Events and WebSocket,
 * against the real binary on 127.0.0.1 with real speech (PocketSphinx):
 * a stream opened right after submit delivers queued/running/stage/progress
 * events while the job runs (not all at the end), with strictly increasing
 * ids and JSON job summaries, ends with `done` and is closed by the server;
 * Last-Event-ID (header or ?last_event_id=) replays only later events; a
 * finished job replays its whole history and closes. The WebSocket side uses
 * a minimal RFC 6455 client written here over a raw socket: the handshake
 * accept key is checked, server frames must be unmasked text messages
 * {"id","event","data"}, and the server closes with status 1000. An idle
 * stream receives a ": ping" comment within 15 s and is counted by the
 * hark_streams{kind="sse"} gauge while open.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "srv_harness.h"

static struct srv_server S;
static int up;
static char scratch[512];
static char job1[64];          /* the job followed live over SSE */
static struct srv_events live; /* its events as first seen */

static struct srv_server *server(void)
{
	const char *args[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine",
			      "pocketsphinx", NULL};
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	if (!up) {
		assert_int_equal(srv_init(&S), 0);
		assert_int_equal(srv_start(&S, NULL, args), 0);
		up = 1;
	}
	return &S;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvstream-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(scratch) ? 0 : -1;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (up)
		rc = srv_destroy(&S);
	srv_events_free(&live);
	srv_rmtree(scratch);
	return rc;
}

/* A unique clip of the conversation recording (so dedup never answers). */
static void make_clip(const char *name, double start, double dur, char *out, size_t n)
{
	char src[1024];
	srv_clip("conversation/pyannote_sample.wav", src, sizeof(src));
	snprintf(out, n, "%s/%s", scratch, name);
	assert_int_equal(srv_cut_audio(src, start, dur, out), 0);
}

/* Checks one event stream of a job that ended with done. */
static void check_done_stream(struct srv_server *s, const struct srv_events *e, const char *id)
{
	SRV_ASSERT(s, e->n >= 3);
	for (size_t i = 0; i < e->n; i++) {
		const struct srv_event *v = &e->ev[i];
		SRV_ASSERT(s, v->id >= 0);
		if (i)
			SRV_ASSERT(s, v->id > e->ev[i - 1].id);
		SRV_ASSERT(s, v->json != NULL);
		SRV_ASSERT(s, !strcmp(srv_jstr(v->json, "id"), id));
		static const char *const types[] = {"queued", "running", "stage", "progress",
						    "requeued", "done"};
		int known = 0;
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			known |= !strcmp(v->type, types[k]);
		if (!known)
			fprintf(stderr, "unexpected event type \"%s\"\n", v->type);
		SRV_ASSERT(s, known);
	}
	SRV_ASSERT(s, srv_events_count(e, "running") >= 1);
	SRV_ASSERT(s, srv_events_count(e, "progress") + srv_events_count(e, "stage") >= 1);
	SRV_ASSERT(s, srv_events_count(e, "done") == 1);
	SRV_ASSERT(s, !strcmp(e->ev[e->n - 1].type, "done"));
	SRV_ASSERT(s, !strcmp(srv_jstr(e->ev[e->n - 1].json, "status"), "done"));
}

static void test_sse_live(void **state)
{
	struct srv_server *s = server();
	char clip[1024], path[256];

	(void)state;
	make_clip("sse.wav", 2.0, 9.0, clip, sizeof(clip));
	assert_int_equal(srv_submit_file(s, clip, NULL, job1, sizeof(job1)), 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", job1);
	double t0 = srv_now();
	srv_sse_collect(s, path, NULL, 60, &live);
	double dt = srv_now() - t0;
	fprintf(stderr, "SSE: %zu events in %.2f s:", live.n, dt);
	for (size_t i = 0; i < live.n; i++)
		fprintf(stderr, " %lld:%s@%.2f", live.ev[i].id, live.ev[i].type, live.ev[i].at - t0);
	fprintf(stderr, "\n");
	SRV_ASSERT(s, live.status == 200);
	SRV_ASSERT(s, live.ctype && !strncmp(live.ctype, "text/event-stream", 17));
	SRV_ASSERT(s, live.closed); /* the server ended the stream after done */
	check_done_stream(s, &live, job1);
	/* delivered live: the running event came well before done */
	size_t ir = 0;
	while (ir < live.n && strcmp(live.ev[ir].type, "running"))
		ir++;
	SRV_ASSERT(s, live.ev[live.n - 1].at - live.ev[ir].at > 0.3);
	/* the stream closed promptly after the final event */
	SRV_ASSERT(s, t0 + dt - live.ev[live.n - 1].at < 2.0 * srv_time_scale());
}

static void test_sse_resume(void **state)
{
	struct srv_server *s = server();
	struct srv_events e;
	char path[256], last[32];

	(void)state;
	if (!job1[0] || live.n < 3)
		skip();
	/* header form */
	size_t k = live.n / 2;
	snprintf(last, sizeof(last), "%lld", live.ev[k].id);
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", job1);
	srv_sse_collect(s, path, last, 15, &e);
	SRV_ASSERT(s, e.status == 200 && e.closed);
	SRV_ASSERT(s, e.n == live.n - k - 1);
	for (size_t i = 0; i < e.n; i++) {
		SRV_ASSERT(s, e.ev[i].id == live.ev[k + 1 + i].id);
		SRV_ASSERT(s, !strcmp(e.ev[i].type, live.ev[k + 1 + i].type));
	}
	srv_events_free(&e);

	/* query form */
	k = 0;
	snprintf(path, sizeof(path), "/v1/jobs/%s/events?last_event_id=%lld", job1, live.ev[k].id);
	srv_sse_collect(s, path, NULL, 15, &e);
	SRV_ASSERT(s, e.status == 200 && e.closed && e.n == live.n - 1);
	SRV_ASSERT(s, e.ev[0].id == live.ev[1].id);
	srv_events_free(&e);

	/* after the last event: nothing is replayed, the stream still closes */
	snprintf(last, sizeof(last), "%lld", live.ev[live.n - 1].id);
	srv_sse_collect(s, path, last, 15, &e);
	SRV_ASSERT(s, e.status == 200 && e.closed);
	srv_events_free(&e);
}

static void test_sse_finished_replay(void **state)
{
	struct srv_server *s = server();
	struct srv_events e;
	char path[256];

	(void)state;
	if (!job1[0] || live.n < 3)
		skip();
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", job1);
	double t0 = srv_now();
	srv_sse_collect(s, path, NULL, 15, &e);
	SRV_ASSERT(s, e.status == 200 && e.closed);
	SRV_ASSERT(s, srv_now() - t0 < 3 * srv_time_scale());
	check_done_stream(s, &e, job1);
	/* the live stream saw the whole history too (replay on connect) */
	SRV_ASSERT(s, e.n == live.n);
	for (size_t i = 0; i < e.n; i++)
		SRV_ASSERT(s, e.ev[i].id == live.ev[i].id && !strcmp(e.ev[i].type, live.ev[i].type));
	srv_events_free(&e);

	/* unknown job */
	srv_sse_collect(s, "/v1/jobs/job_00000000000000000000000000/events", NULL, 10, &e);
	SRV_ASSERT(s, e.status == 404);
	srv_events_free(&e);
}

/* ---- minimal WebSocket client ---------------------------------------------------- */

struct ws_msg {
	int opcode;
	unsigned char *p;
	size_t n;
};

/* Reads exactly n bytes before the deadline. 0 ok, -1 closed/timeout. */
static int read_exact(int fd, void *buf, size_t n, double deadline)
{
	unsigned char *b = buf;
	while (n > 0) {
		int ms = (int)((deadline - srv_now()) * 1000);
		if (ms <= 0)
			return -1;
		struct pollfd p = {fd, POLLIN, 0};
		int k = poll(&p, 1, ms);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		ssize_t got = recv(fd, b, n, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return -1;
		b += got;
		n -= (size_t)got;
	}
	return 0;
}

/* Sends one masked client frame. */
static int ws_send(int fd, int opcode, const void *payload, size_t n)
{
	unsigned char h[14], mask[4];
	size_t hl = 0;
	unsigned char *m = malloc(n + 1);

	if (!m || n > 65535)
		return -1;
	RAND_bytes(mask, 4);
	h[hl++] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[hl++] = (unsigned char)(0x80 | n);
	} else {
		h[hl++] = 0x80 | 126;
		h[hl++] = (unsigned char)(n >> 8);
		h[hl++] = (unsigned char)n;
	}
	memcpy(h + hl, mask, 4);
	hl += 4;
	for (size_t i = 0; i < n; i++)
		m[i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
	int rc = srv_send_all(fd, h, hl) || srv_send_all(fd, m, n) ? -1 : 0;
	free(m);
	return rc;
}

/*
 * Reads one complete message (continuations joined; pings answered).
 * *masked is set when a server frame carried a mask (forbidden).
 */
static int ws_read(int fd, struct ws_msg *msg, double deadline, int *masked)
{
	unsigned char *acc = NULL;
	size_t accn = 0;
	int opcode = -1;

	for (;;) {
		unsigned char h[2], ext[8], mk[4];
		if (read_exact(fd, h, 2, deadline))
			goto fail;
		int fin = h[0] & 0x80, op = h[0] & 0x0f;
		uint64_t len = h[1] & 0x7f;
		if (h[1] & 0x80)
			*masked = 1;
		if (len == 126) {
			if (read_exact(fd, ext, 2, deadline))
				goto fail;
			len = (uint64_t)ext[0] << 8 | ext[1];
		} else if (len == 127) {
			if (read_exact(fd, ext, 8, deadline))
				goto fail;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | ext[i];
		}
		if (len > (16u << 20))
			goto fail;
		if ((h[1] & 0x80) && read_exact(fd, mk, 4, deadline))
			goto fail;
		unsigned char *p = malloc(len + 1);
		if (!p || (len && read_exact(fd, p, (size_t)len, deadline))) {
			free(p);
			goto fail;
		}
		if (h[1] & 0x80)
			for (uint64_t i = 0; i < len; i++)
				p[i] ^= mk[i % 4];
		p[len] = 0;
		if (op == 9) { /* ping: answer, keep reading */
			ws_send(fd, 10, p, (size_t)len);
			free(p);
			continue;
		}
		if (op == 10) {
			free(p);
			continue;
		}
		if (op >= 8) { /* control: close */
			free(acc);
			msg->opcode = op;
			msg->p = p;
			msg->n = (size_t)len;
			return 0;
		}
		if (op != 0)
			opcode = op;
		unsigned char *na = realloc(acc, accn + len + 1);
		if (!na) {
			free(p);
			goto fail;
		}
		acc = na;
		memcpy(acc + accn, p, len);
		accn += len;
		acc[accn] = 0;
		free(p);
		if (fin) {
			msg->opcode = opcode;
			msg->p = acc;
			msg->n = accn;
			return 0;
		}
	}
fail:
	free(acc);
	return -1;
}

struct ws_result {
	int handshake_ok;
	int accept_ok;
	int masked;
	int close_code;          /* -1 when no close frame came */
	int tcp_closed;          /* the server closed the connection after the close */
	struct srv_events ev;    /* messages parsed as {"id","event","data"} */
	int bad_messages;
};

static void b64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void ws_collect(struct srv_server *s, const char *path, double timeout_s, struct ws_result *res)
{
	unsigned char key_raw[16], sha[20];
	char key[32], want_accept[64], req[1024];
	double deadline = srv_now() + timeout_s * srv_time_scale();
	int fd = srv_connect(s->port);

	memset(res, 0, sizeof(*res));
	res->close_code = -1;
	if (fd < 0)
		return;
	RAND_bytes(key_raw, sizeof(key_raw));
	b64(key_raw, sizeof(key_raw), key);
	char cat[128];
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	unsigned int sl = 0;
	EVP_Digest(cat, strlen(cat), sha, &sl, EVP_sha1(), NULL);
	b64(sha, 20, want_accept);
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
			 path, s->port, key, s->token[0] ? "Authorization: Bearer " : "", s->token,
			 s->token[0] ? "\r\n" : "");
	if (srv_send_all(fd, req, (size_t)n))
		goto out;
	/* response head, byte by byte up to the blank line */
	char head[4096];
	size_t hn = 0;
	while (hn < sizeof(head) - 1) {
		if (read_exact(fd, head + hn, 1, deadline))
			goto out;
		hn++;
		head[hn] = 0;
		if (hn >= 4 && !memcmp(head + hn - 4, "\r\n\r\n", 4))
			break;
	}
	res->handshake_ok = !strncmp(head, "HTTP/1.1 101", 12);
	if (!res->handshake_ok) {
		fprintf(stderr, "ws handshake answer: %s\n", head);
		goto out;
	}
	struct srv_resp tmp = {0};
	tmp.headers = head;
	char *acc = srv_header(&tmp, "Sec-WebSocket-Accept");
	res->accept_ok = acc && !strcmp(acc, want_accept);
	free(acc);
	for (;;) {
		struct ws_msg m = {0};
		if (ws_read(fd, &m, deadline, &res->masked))
			break;
		if (m.opcode == 8) {
			res->close_code = m.n >= 2 ? (m.p[0] << 8 | m.p[1]) : 0;
			unsigned char code[2] = {0x03, 0xe8};
			ws_send(fd, 8, code, 2);
			free(m.p);
			/* the server closes the TCP connection next */
			char c;
			res->tcp_closed = read_exact(fd, &c, 1, srv_now() + 3 * srv_time_scale()) != 0;
			break;
		}
		if (m.opcode != 1) {
			res->bad_messages++;
			free(m.p);
			continue;
		}
		json_error_t je;
		json_t *j = json_loads((const char *)m.p, 0, &je);
		if (!j || !json_is_integer(json_object_get(j, "id")) ||
		    !json_is_string(json_object_get(j, "event")) ||
		    !json_is_object(json_object_get(j, "data"))) {
			res->bad_messages++;
			fprintf(stderr, "bad ws message: %s\n", (const char *)m.p);
			json_decref(j);
			free(m.p);
			continue;
		}
		struct srv_events *e = &res->ev;
		if (e->n == e->cap) {
			e->cap = e->cap ? 2 * e->cap : 32;
			e->ev = realloc(e->ev, e->cap * sizeof(*e->ev));
		}
		struct srv_event *v = &e->ev[e->n++];
		v->id = (long long)json_integer_value(json_object_get(j, "id"));
		snprintf(v->type, sizeof(v->type), "%s", json_string_value(json_object_get(j, "event")));
		v->json = json_incref(json_object_get(j, "data"));
		v->data = (char *)m.p;
		v->at = srv_now();
		json_decref(j);
	}
out:
	close(fd);
}

static void test_ws_live(void **state)
{
	struct srv_server *s = server();
	struct ws_result res;
	char clip[1024], path[256], id[64];

	(void)state;
	make_clip("ws.wav", 12.0, 8.0, clip, sizeof(clip));
	assert_int_equal(srv_submit_file(s, clip, NULL, id, sizeof(id)), 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s/ws", id);
	double t0 = srv_now();
	ws_collect(s, path, 60, &res);
	fprintf(stderr, "WS: %zu messages in %.2f s, close %d:", res.ev.n, srv_now() - t0, res.close_code);
	for (size_t i = 0; i < res.ev.n; i++)
		fprintf(stderr, " %lld:%s@%.2f", res.ev.ev[i].id, res.ev.ev[i].type, res.ev.ev[i].at - t0);
	fprintf(stderr, "\n");
	SRV_ASSERT(s, res.handshake_ok && res.accept_ok);
	SRV_ASSERT(s, !res.masked && res.bad_messages == 0);
	check_done_stream(s, &res.ev, id);
	size_t ir = 0;
	while (ir < res.ev.n && strcmp(res.ev.ev[ir].type, "running"))
		ir++;
	SRV_ASSERT(s, res.ev.ev[res.ev.n - 1].at - res.ev.ev[ir].at > 0.3);
	SRV_ASSERT(s, res.close_code == 1000);
	SRV_ASSERT(s, res.tcp_closed);

	/* the same history over SSE */
	struct srv_events e;
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
	srv_sse_collect(s, path, NULL, 15, &e);
	SRV_ASSERT(s, e.n == res.ev.n);
	for (size_t i = 0; i < e.n && i < res.ev.n; i++)
		SRV_ASSERT(s, e.ev[i].id == res.ev.ev[i].id && !strcmp(e.ev[i].type, res.ev.ev[i].type));
	srv_events_free(&e);

	/* resume on a finished job with ?last_event_id= */
	long long after = res.ev.ev[1].id;
	size_t total = res.ev.n;
	long long last_id = res.ev.ev[total - 1].id;
	srv_events_free(&res.ev);
	snprintf(path, sizeof(path), "/v1/jobs/%s/ws?last_event_id=%lld", id, after);
	ws_collect(s, path, 15, &res);
	SRV_ASSERT(s, res.handshake_ok && res.close_code == 1000);
	SRV_ASSERT(s, res.ev.n == total - 2);
	SRV_ASSERT(s, res.ev.n > 0 && res.ev.ev[0].id > after && res.ev.ev[res.ev.n - 1].id == last_id);
	srv_events_free(&res.ev);
}

/* ---- keep-alive pings and the stream gauge ------------------------------------------- */

struct sse_thread_arg {
	struct srv_server *s;
	char path[256];
	double timeout_s;
	struct srv_events ev;
};

static void *sse_thread(void *p)
{
	struct sse_thread_arg *a = p;
	srv_sse_collect(a->s, a->path, NULL, a->timeout_s, &a->ev);
	return NULL;
}

/*
 * An idle stream (a job queued behind a long transcription on the only
 * worker) gets a ": ping" comment within 15 s (plus slack), and
 * hark_streams{kind="sse"} counts it while it is open.
 */
static void test_sse_ping_and_gauge(void **state)
{
	struct srv_server *s = server();
	struct sse_thread_arg a;
	struct srv_resp r;
	char longf[1024], lid[64], qid[64], path[256];
	pthread_t th;

	(void)state;
	assert_int_equal(srv_make_audio(scratch, "long90.wav", 90, longf, sizeof(longf)), 0);
	assert_int_equal(srv_submit_file(s, longf, NULL, lid, sizeof(lid)), 202);
	json_t *j = srv_wait_running(s, lid, -1, 30);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
	assert_int_equal(srv_submit_noop(s, NULL, qid, sizeof(qid)), 202);

	memset(&a, 0, sizeof(a));
	a.s = s;
	a.timeout_s = 17.5 / srv_time_scale(); /* srv_sse_collect scales it back */
	snprintf(a.path, sizeof(a.path), "/v1/jobs/%s/events", qid);
	SRV_ASSERT(s, pthread_create(&th, NULL, sse_thread, &a) == 0);
	srv_sleep_ms(1500);
	srv_get(s, "/metrics", &r);
	double n_sse = srv_metric(r.body ? r.body : "", "hark_streams", "kind=\"sse\"", NULL);
	srv_resp_free(&r);
	pthread_join(th, NULL);
	fprintf(stderr, "idle stream: %zu events, %d ping comments in 17.5 s; hark_streams{kind=\"sse\"} = %.0f\n",
		a.ev.n, a.ev.pings, n_sse);
	SRV_ASSERT(s, a.ev.status == 200 && !a.ev.closed);
	SRV_ASSERT(s, a.ev.n >= 1 && !strcmp(a.ev.ev[0].type, "queued"));
	SRV_ASSERT(s, a.ev.pings >= 1);
	SRV_ASSERT(s, n_sse >= 1);
	srv_events_free(&a.ev);

	/* the client hung up: the stream leaves the gauge */
	double t0 = srv_now();
	do {
		srv_sleep_ms(100);
		srv_get(s, "/metrics", &r);
		n_sse = srv_metric(r.body ? r.body : "", "hark_streams", "kind=\"sse\"", NULL);
		srv_resp_free(&r);
	} while (n_sse > 0 && srv_now() - t0 < 17 * srv_time_scale());
	fprintf(stderr, "closed stream left the gauge after %.1f s\n", srv_now() - t0);
	/* at the latest when the next ping finds the connection gone */
	SRV_ASSERT(s, n_sse == 0);

	/* free the worker */
	snprintf(path, sizeof(path), "/v1/jobs/%s", lid);
	srv_delete(s, path, &r);
	srv_resp_free(&r);
	j = srv_wait_status(s, qid, "done", 30);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sse_live),
		cmocka_unit_test(test_sse_resume),
		cmocka_unit_test(test_sse_finished_replay),
		cmocka_unit_test(test_ws_live),
		cmocka_unit_test(test_sse_ping_and_gauge),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
