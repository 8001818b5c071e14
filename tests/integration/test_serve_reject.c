/*
 * Every rejection in the error table of docs/SERVER.md, against the real
 * `hark serve` on 127.0.0.1 (started with --max-body-mb 1 and a 2-second
 * client deadline): 413 over the body cap (Content-Length and chunked, sent
 * over a raw socket so the server may answer before the body ends), 415 for
 * text or PNG bytes named .wav with an audio Content-Type (the type is
 * sniffed, never taken from the name), 414 long URL, 431 huge header,
 * 408/close for clients that stall in the headers or in the body, 400 for
 * invalid JSON, unknown or bad options, a missing file part and malformed
 * multipart, 404 unknown route/job/format, 405 wrong method, 409 result of an
 * unfinished job and of a failed job; corrupt uploads that sniff as media
 * (undecodable MP3, WAV with an unknown codec) are accepted but fail at once
 * with a clear error code after one attempt while the server keeps serving;
 * hostile file names never create files outside the data directory. Every
 * error body is {"error":{"code","message"}}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv_harness.h"

static struct srv_server S;
static int up;
static char scratch[512];

static struct srv_server *server(void)
{
	const char *args[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine",
			      "pocketsphinx", "--max-body-mb", "1", NULL};
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	if (!up) {
		assert_int_equal(srv_init(&S), 0);
		assert_int_equal(srv_start(&S, "{\"client_timeout_s\":2}", args), 0);
		up = 1;
	}
	return &S;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvreject-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(scratch) ? 0 : -1;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (up) {
		/* after every rejection the server still runs */
		if (!srv_alive(&S))
			fprintf(stderr, "server died (status %d)\n", S.last_exit);
		rc = srv_destroy(&S);
	}
	srv_rmtree(scratch);
	return rc;
}

static double rejected_total(struct srv_server *s)
{
	struct srv_resp r;
	double v = -1;
	if (srv_get(s, "/metrics", &r) == 0 && r.status == 200)
		v = srv_metric(r.body, "hark_uploads_rejected_total", NULL, NULL);
	srv_resp_free(&r);
	return v;
}

static void expect_error(struct srv_server *s, const struct srv_resp *r, long status, const char *code)
{
	if (r->status != status)
		fprintf(stderr, "status %ld, want %ld (body %.300s)\n", r->status, status, r->body ? r->body : "");
	SRV_ASSERT(s, r->status == status);
	SRV_ASSERT(s, srv_is_error(r, code));
}

/* ---- 413 ------------------------------------------------------------------------- */

static char *multipart_head(size_t *n)
{
	char *h = malloc(512);
	*n = (size_t)snprintf(h, 512,
			      "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
			      "Content-Type: audio/wav\r\n\r\n");
	return h;
}

static void test_413_content_length(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	size_t body_n = 2u << 20, hn;
	char *mh = multipart_head(&hn);
	const char *tail = "\r\n--XbOuNdArY--\r\n";
	char head[512];

	(void)state;
	double rej0 = rejected_total(s);
	size_t total = hn + body_n + strlen(tail);
	int k = snprintf(head, sizeof(head),
			 "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Content-Type: multipart/form-data; boundary=XbOuNdArY\r\nContent-Length: %zu\r\n\r\n",
			 total);
	char *req = malloc((size_t)k + total);
	memcpy(req, head, (size_t)k);
	memcpy(req + k, mh, hn);
	/* a WAV-looking start, then silence */
	memset(req + k + hn, 0, body_n);
	memcpy(req + k + hn, "RIFF\xff\xff\x1f\x00WAVEfmt ", 16);
	memcpy(req + k + hn + body_n, tail, strlen(tail));
	srv_raw_exchange(s->port, req, (size_t)k + total, 20 * srv_time_scale(), &r, NULL);
	fprintf(stderr, "413 (Content-Length) after %.2f s\n", r.seconds);
	expect_error(s, &r, 413, "payload_too_large");
	srv_resp_free(&r);

	/* the same over a JSON body */
	k = snprintf(head, sizeof(head),
		     "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n", body_n);
	memcpy(req, head, (size_t)k);
	memset(req + k, ' ', body_n);
	req[k] = '{';
	srv_raw_exchange(s->port, req, (size_t)k + body_n, 20 * srv_time_scale(), &r, NULL);
	expect_error(s, &r, 413, "payload_too_large");
	srv_resp_free(&r);
	free(req);
	free(mh);
	double rej1 = rejected_total(s);
	fprintf(stderr, "hark_uploads_rejected_total %.0f -> %.0f\n", rej0, rej1);
	SRV_ASSERT(s, rej1 > rej0);
}

static void test_413_chunked(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	size_t hn;
	char *mh = multipart_head(&hn);
	size_t cap = (3u << 20) + 4096, n = 0;
	char *req = malloc(cap);

	(void)state;
	n += (size_t)snprintf(req, cap,
			      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			      "Content-Type: multipart/form-data; boundary=XbOuNdArY\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n");
	n += (size_t)snprintf(req + n, cap - n, "%zx\r\n", hn);
	memcpy(req + n, mh, hn);
	n += hn;
	memcpy(req + n, "\r\n", 2);
	n += 2;
	for (int i = 0; i < 32; i++) { /* 32 x 64 KiB = 2 MiB */
		n += (size_t)snprintf(req + n, cap - n, "%x\r\n", 65536);
		memset(req + n, 0, 65536);
		if (i == 0) /* a WAV-looking start, so only the size is wrong */
			memcpy(req + n, "RIFF\xff\xff\x1f\x00WAVEfmt ", 16);
		n += 65536;
		memcpy(req + n, "\r\n", 2);
		n += 2;
	}
	n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
	srv_raw_exchange(s->port, req, n, 20 * srv_time_scale(), &r, NULL);
	fprintf(stderr, "413 (chunked) after %.2f s\n", r.seconds);
	expect_error(s, &r, 413, "payload_too_large");
	srv_resp_free(&r);
	free(req);
	free(mh);
}

/* ---- 415 ------------------------------------------------------------------------- */

static void test_415_sniffed(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char txt[1024], png[1024];
	static const unsigned char png_bytes[] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
		0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 10,
		'I', 'D', 'A', 'T', 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d,
		0xb4, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 'B', 0x60, 0x82};

	(void)state;
	double rej0 = rejected_total(s);
	snprintf(txt, sizeof(txt), "%s/notes.wav", scratch);
	const char *text = "Meeting notes: this is a plain text file, not audio at all.\n";
	SRV_ASSERT(s, srv_write_file(txt, text, strlen(text)) == 0);
	srv_upload(s, "/v1/jobs", txt, "notes.wav", "audio/wav", NULL, NULL, NULL, &r);
	expect_error(s, &r, 415, "unsupported_media_type");
	srv_resp_free(&r);

	snprintf(png, sizeof(png), "%s/picture.wav", scratch);
	SRV_ASSERT(s, srv_write_file(png, png_bytes, sizeof(png_bytes)) == 0);
	srv_upload(s, "/v1/jobs", png, "picture.wav", "audio/wav", NULL, NULL, NULL, &r);
	expect_error(s, &r, 415, "unsupported_media_type");
	srv_resp_free(&r);

	/* an empty file */
	char empty[1024];
	snprintf(empty, sizeof(empty), "%s/empty.wav", scratch);
	SRV_ASSERT(s, srv_write_file(empty, "", 0) == 0);
	srv_upload(s, "/v1/jobs", empty, NULL, "audio/wav", NULL, NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 400 || r.status == 415);
	SRV_ASSERT(s, srv_is_error(&r, NULL));
	srv_resp_free(&r);

	double rej1 = rejected_total(s);
	SRV_ASSERT(s, rej1 >= rej0 + 2);
}

/* ---- 414, 431 ---------------------------------------------------------------------- */

static void test_414_431(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char *path = malloc(6000), *hdr = malloc(12000);

	(void)state;
	strcpy(path, "/v1/jobs/job_");
	memset(path + 13, 'a', 5000);
	path[5013] = 0;
	srv_get(s, path, &r);
	expect_error(s, &r, 414, "uri_too_long");
	srv_resp_free(&r);

	strcpy(hdr, "X-Filler: ");
	memset(hdr + 10, 'b', 10000);
	hdr[10010] = 0;
	const char *h[] = {hdr, NULL};
	srv_request(s, "GET", "/v1/jobs", NULL, NULL, 0, h, &r);
	expect_error(s, &r, 431, "header_too_large");
	srv_resp_free(&r);

	/* many headers that are small one by one but large together */
	char *big = malloc(20000);
	size_t n = (size_t)snprintf(big, 20000, "GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(big + n, 20000 - n, "X-Many-%03d: %060d\r\n", i, i);
	n += (size_t)snprintf(big + n, 20000 - n, "\r\n");
	srv_raw_exchange(s->port, big, n, 10 * srv_time_scale(), &r, NULL);
	expect_error(s, &r, 431, "header_too_large");
	srv_resp_free(&r);
	free(big);
	free(path);
	free(hdr);

	srv_get(s, "/healthz", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
}

/* ---- 408 ------------------------------------------------------------------------- */

static void stall(struct srv_server *s, const char *req, const char *what)
{
	struct srv_resp r;
	int closed = 0;

	srv_raw_exchange(s->port, req, strlen(req), 15 * srv_time_scale(), &r, &closed);
	fprintf(stderr, "slow client (%s): status %ld, closed %d after %.2f s\n", what, r.status, closed,
		r.seconds);
	/* answered 408 (or at least dropped) within the 2 s deadline plus slack */
	SRV_ASSERT(s, r.status == 408 || (r.status == 0 && closed));
	if (r.status == 408)
		SRV_ASSERT(s, srv_is_error(&r, "request_timeout"));
	SRV_ASSERT(s, r.seconds >= 1.0 && r.seconds < 8.0 * srv_time_scale());
	srv_resp_free(&r);
}

static void test_408_slow_client(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;

	(void)state;
	stall(s, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
		 "Content-Length: 100\r\n\r\n{\"type\":",
	      "stalled body");
	stall(s, "GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", "stalled headers");
	srv_get(s, "/healthz", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
}

/* ---- 400 ------------------------------------------------------------------------- */

static void test_400(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char clip[1024], jfk[1024];

	(void)state;
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	snprintf(clip, sizeof(clip), "%s/short.wav", scratch);
	SRV_ASSERT(s, srv_cut_audio(jfk, 0, 1.5, clip) == 0);

	srv_post_json(s, "/v1/jobs", "{\"type\": \"noop\",", &r);
	expect_error(s, &r, 400, "invalid_json");
	srv_resp_free(&r);

	srv_post_json(s, "/v1/jobs", "{\"type\":\"noop\",\"options\":{\"bogus\":1}}", &r);
	expect_error(s, &r, 400, "invalid_option");
	srv_resp_free(&r);

	srv_upload(s, "/v1/jobs", clip, NULL, NULL, "{\"bogus\":true}", NULL, NULL, &r);
	expect_error(s, &r, 400, "invalid_option");
	srv_resp_free(&r);

	static const char *const bad_opts[] = {
		"{\"priority\":\"urgent\"}", "{\"formats\":[\"docx\"]}", "{\"engine\":\"kaldi\"}",
		"{\"model\":\"../../etc/passwd\"}", "{\"webhook\":\"file:///etc/passwd\"}",
		"{\"temperature\":\"hot\"}", "[1,2,3]"};
	for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		srv_upload(s, "/v1/jobs", clip, NULL, NULL, bad_opts[i], NULL, NULL, &r);
		if (r.status != 400)
			fprintf(stderr, "options %s: status %ld\n", bad_opts[i], r.status);
		SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
		srv_resp_free(&r);
	}
	srv_upload(s, "/v1/jobs", clip, NULL, NULL, "{not json", NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);

	/* options but no file part */
	srv_upload(s, "/v1/jobs", NULL, NULL, NULL, "{\"language\":\"en\"}", NULL, NULL, &r);
	expect_error(s, &r, 400, "missing_file");
	srv_resp_free(&r);

	/* malformed multipart: no boundary parameter; a body without the boundary */
	const char *mp = "--zzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
	srv_request(s, "POST", "/v1/jobs", "multipart/form-data", mp, strlen(mp), NULL, &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	fprintf(stderr, "multipart without boundary: %s\n", srv_jstr(r.json, "error.code"));
	srv_resp_free(&r);
	srv_request(s, "POST", "/v1/jobs", "multipart/form-data; boundary=QQQQ", mp, strlen(mp), NULL, &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	fprintf(stderr, "multipart with a foreign boundary: %s\n", srv_jstr(r.json, "error.code"));
	srv_resp_free(&r);
	/* truncated multipart: the closing boundary never comes */
	srv_request(s, "POST", "/v1/jobs", "multipart/form-data; boundary=zzz", mp, strlen(mp), NULL, &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);

	/* JSON that is neither a transcript nor a noop */
	srv_post_json(s, "/v1/jobs", "{\"foo\":1}", &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	srv_post_json(s, "/v1/jobs", "{\"type\":\"reboot\"}", &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	srv_post_json(s, "/v1/jobs", "{\"transcript\":\"\\u0000\\u0001 not subtitles\",\"options\":{\"priority\":1}}", &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	/* an unsupported body type */
	srv_request(s, "POST", "/v1/jobs", "text/plain", "hello", 5, NULL, &r);
	SRV_ASSERT(s, (r.status == 400 || r.status == 415) && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	/* list parameters */
	srv_get(s, "/v1/jobs?status=sleeping", &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	srv_get(s, "/v1/jobs?limit=abc", &r);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
}

/* ---- 404, 405 ---------------------------------------------------------------------- */

static void test_404_405(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;

	(void)state;
	static const char *const nf[] = {"/v1/nope", "/nope", "/v1/jobs/job_00000000000000000000000000",
					 "/v1/jobs/job_00000000000000000000000000/result",
					 "/v1/jobs/job_00000000000000000000000000/progress",
					 "/v1/jobs/job_00000000000000000000000000/events",
					 "/v1/jobs/../../etc/passwd"};
	for (size_t i = 0; i < sizeof(nf) / sizeof(nf[0]); i++) {
		srv_get(s, nf[i], &r);
		if (r.status != 404)
			fprintf(stderr, "GET %s: %ld\n", nf[i], r.status);
		expect_error(s, &r, 404, "not_found");
		srv_resp_free(&r);
	}
	srv_delete(s, "/v1/jobs/job_00000000000000000000000000", &r);
	expect_error(s, &r, 404, "not_found");
	srv_resp_free(&r);

	srv_request(s, "PUT", "/v1/jobs", "application/json", "{}", 2, NULL, &r);
	expect_error(s, &r, 405, "method_not_allowed");
	srv_resp_free(&r);
	srv_request(s, "POST", "/healthz", "application/json", "{}", 2, NULL, &r);
	expect_error(s, &r, 405, "method_not_allowed");
	srv_resp_free(&r);
	char id[64], path[256];
	SRV_ASSERT(s, srv_submit_noop(s, NULL, id, sizeof(id)) == 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	srv_request(s, "PATCH", path, "application/json", "{}", 2, NULL, &r);
	expect_error(s, &r, 405, "method_not_allowed");
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
	srv_request(s, "POST", path, "application/json", "{}", 2, NULL, &r);
	expect_error(s, &r, 405, "method_not_allowed");
	srv_resp_free(&r);
	json_t *j = srv_wait_status(s, id, "done|failed|canceled", 30);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
}

/* ---- 409 and corrupt uploads --------------------------------------------------------- */

static void test_409_not_ready(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char longf[1024], lid[64], qid[64], path[256];

	(void)state;
	/* 60 s of speech as Opus stays under the 1 MB cap */
	SRV_ASSERT(s, srv_make_audio(scratch, "long60.ogg", 60, longf, sizeof(longf)) == 0);
	SRV_ASSERT(s, srv_submit_file(s, longf, NULL, lid, sizeof(lid)) == 202);
	json_t *j = srv_wait_running(s, lid, -1, 60);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
	SRV_ASSERT(s, srv_submit_noop(s, NULL, qid, sizeof(qid)) == 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", lid);
	srv_get(s, path, &r);
	expect_error(s, &r, 409, "not_ready");
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=srt", qid);
	srv_get(s, path, &r);
	expect_error(s, &r, 409, "not_ready");
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s", lid);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 202 || r.status == 200);
	srv_resp_free(&r);
	j = srv_wait_status(s, lid, "canceled|done|failed", 15);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "canceled"));
	json_decref(j);
	/* result of a canceled job is not ready either (or not found): never 200 */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", lid);
	srv_get(s, path, &r);
	SRV_ASSERT(s, (r.status == 409 || r.status == 404) && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	j = srv_wait_status(s, qid, "done", 15);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
}

static void corrupt_case(struct srv_server *s, const char *file, const char *name)
{
	struct srv_resp r;
	char id[64], path[256];

	srv_upload(s, "/v1/jobs", file, name, NULL, NULL, NULL, NULL, &r);
	fprintf(stderr, "corrupt %s: submit %ld\n", name, r.status);
	SRV_ASSERT(s, r.status == 202 && r.json);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);
	json_t *j = srv_wait_status(s, id, "done|failed|canceled", 30);
	SRV_ASSERT(s, j != NULL);
	const char *code = srv_jstr(j, "error.code");
	const char *msg = srv_jstr(j, "error.message");
	fprintf(stderr, "corrupt %s: status %s, error %s: %s, attempts %.0f\n", name,
		srv_jstr(j, "status"), code ? code : "-", msg ? msg : "-", srv_jnum(j, "attempts", -1));
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "status"), "failed"));
	SRV_ASSERT(s, code && (!strcmp(code, "corrupt_media") || !strcmp(code, "unsupported_format") ||
			       !strcmp(code, "no_audio_stream") || !strcmp(code, "not_media")));
	SRV_ASSERT(s, msg && *msg);
	SRV_ASSERT(s, srv_jnum(j, "attempts", -1) == 1);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
	srv_get(s, path, &r);
	expect_error(s, &r, 409, "job_failed");
	srv_resp_free(&r);
}

static void test_corrupt_uploads(void **state)
{
	struct srv_server *s = server();
	char jfk[1024], p[1024];
	size_t n;

	(void)state;
	/* an ID3 tag followed by bytes that never contain an MP3 frame sync */
	unsigned char *g = malloc(100010);
	memcpy(g, "ID3\x03\x00\x00\x00\x00\x00\x00", 10);
	uint32_t x = 12345;
	for (int i = 0; i < 100000; i++) {
		x = x * 1103515245u + 12345u;
		g[10 + i] = (unsigned char)((x >> 16) & 0x7f);
	}
	snprintf(p, sizeof(p), "%s/garbage.mp3", scratch);
	SRV_ASSERT(s, srv_write_file(p, g, 100010) == 0);
	free(g);
	corrupt_case(s, p, "garbage.mp3");

	/* a WAV whose format tag names no codec */
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	unsigned char *w = (unsigned char *)srv_slurp(jfk, &n);
	SRV_ASSERT(s, w && n > 44 && !memcmp(w, "RIFF", 4) && !memcmp(w + 12, "fmt ", 4));
	w[20] = 0x34;
	w[21] = 0x12;
	snprintf(p, sizeof(p), "%s/badcodec.wav", scratch);
	SRV_ASSERT(s, srv_write_file(p, w, n) == 0);
	free(w);
	corrupt_case(s, p, "badcodec.wav");

	/* the server keeps serving: a real job still works */
	char clip[1024], id[64];
	snprintf(clip, sizeof(clip), "%s/after.wav", scratch);
	SRV_ASSERT(s, srv_cut_audio(jfk, 1.0, 2.0, clip) == 0);
	SRV_ASSERT(s, srv_submit_file(s, clip, NULL, id, sizeof(id)) == 202);
	json_t *j = srv_wait_status(s, id, "done|failed|canceled", 60);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
}

/* ---- hostile file names ---------------------------------------------------------------- */

static void test_hostile_filenames(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char clip[1024], jfk[1024], escape[256], escape_name[300];
	struct stat st0, st1;

	(void)state;
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	snprintf(clip, sizeof(clip), "%s/name.wav", scratch);
	SRV_ASSERT(s, srv_cut_audio(jfk, 2.0, 1.5, clip) == 0);
	SRV_ASSERT(s, stat("/etc/passwd", &st0) == 0);
	snprintf(escape, sizeof(escape), "/tmp/hark-srvtest-escape-%d", (int)getpid());
	unlink(escape);
	snprintf(escape_name, sizeof(escape_name), "../../../../../../..%s", escape);
	const char *names[] = {"../../etc/passwd", escape_name, "..\\..\\evil.wav", "/etc/passwd",
			       "a/../../b.wav", "name\r\nX-Injected: 1.wav"};
	char ids[6][64];
	for (int i = 0; i < 6; i++) {
		/* each upload differs (options) so none is a dedup hit */
		char opt[64];
		snprintf(opt, sizeof(opt), "{\"formats\":[\"txt\"],\"language\":\"%s\"}", i % 2 ? "en" : "auto");
		srv_upload(s, "/v1/jobs", clip, names[i], "audio/wav", i < 2 ? opt : NULL, NULL, NULL, &r);
		SRV_ASSERT(s, r.status == 202 || r.status == 200 || r.status == 400);
		snprintf(ids[i], sizeof(ids[i]), "%s", r.json && srv_jstr(r.json, "id") ? srv_jstr(r.json, "id") : "");
		if (r.status == 400)
			SRV_ASSERT(s, srv_is_error(&r, NULL));
		srv_resp_free(&r);
	}
	for (int i = 0; i < 6; i++) {
		if (!ids[i][0])
			continue;
		json_t *j = srv_wait_status(s, ids[i], "done|failed|canceled", 60);
		SRV_ASSERT(s, j != NULL);
		const char *fn = srv_jstr(j, "filename");
		fprintf(stderr, "uploaded as \"%s\": job %s, displayed filename \"%s\"\n", names[i],
			srv_jstr(j, "status"), fn ? fn : "(null)");
		json_decref(j);
	}
	/* nothing was written under the given names, inside or outside the data dir */
	SRV_ASSERT(s, !srv_find_file(s->root, "passwd"));
	SRV_ASSERT(s, !srv_find_file(s->root, "evil.wav"));
	SRV_ASSERT(s, !srv_find_file(s->root, "b.wav"));
	SRV_ASSERT(s, access(escape, F_OK) != 0);
	SRV_ASSERT(s, stat("/etc/passwd", &st1) == 0);
	SRV_ASSERT(s, st0.st_mtime == st1.st_mtime && st0.st_size == st1.st_size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_413_content_length),
		cmocka_unit_test(test_413_chunked),
		cmocka_unit_test(test_415_sniffed),
		cmocka_unit_test(test_414_431),
		cmocka_unit_test(test_408_slow_client),
		cmocka_unit_test(test_400),
		cmocka_unit_test(test_404_405),
		cmocka_unit_test(test_409_not_ready),
		cmocka_unit_test(test_corrupt_uploads),
		cmocka_unit_test(test_hostile_filenames),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
