/*
 * `hark serve` job API end to end over 127.0.0.1 with the real binary, the
 * PocketSphinx engine and real speech (docs/SERVER.md is the contract):
 * multipart submit (202, Location, links), job summary and progress, results
 * in json/txt/srt/vtt with their content types (the JSON text must contain
 * words of the JFK reference in REFERENCES.tsv), list pagination and status
 * filter, dedup (200 cached with the inline result, dedup metric), transcript
 * and noop jobs, cancel of a queued and of a running job (canceled event),
 * purge (results 404, blob file removed only when unreferenced), weighted
 * priorities (realtime overtakes batch, batch still finishes), signed
 * webhooks received by a loopback listener, /healthz, /readyz, /metrics and
 * X-Request-Id.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "srv_harness.h"

#define WEBHOOK_SECRET "srvtest-webhook-secret-0123456789"

/* Server A: two workers, shared by most tests. Server B: one worker, for the
 * tests that need the only worker occupied. */
static struct srv_server A, B;
static int a_up, b_up;
static char scratch[512]; /* audio built for this run */
static char jfk[1024];
static char jfk_job[64];  /* the first JFK job (done), used by several tests */

static void need_server(void)
{
	if (!srv_serve_available())
		skip();
	if (!srv_have_audio())
		skip();
}

static struct srv_server *server_a(void)
{
	const char *args[] = {"--no-auth", "--workers", "2", "--threads", "1", "--engine",
			      "pocketsphinx", "--cors", "https://app.example", NULL};
	need_server();
	if (!a_up) {
		assert_int_equal(srv_init(&A), 0);
		srv_setenv(&A, "HARK_WEBHOOK_SECRET", WEBHOOK_SECRET);
		assert_int_equal(srv_start(&A, NULL, args), 0);
		a_up = 1;
	}
	return &A;
}

static struct srv_server *server_b(void)
{
	const char *args[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine",
			      "pocketsphinx", NULL};
	need_server();
	if (!b_up) {
		assert_int_equal(srv_init(&B), 0);
		assert_int_equal(srv_start(&B, NULL, args), 0);
		b_up = 1;
	}
	return &B;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvapi-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(scratch))
		return -1;
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	return 0;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (a_up)
		rc |= srv_destroy(&A);
	if (b_up)
		rc |= srv_destroy(&B);
	srv_rmtree(scratch);
	return rc;
}

static void sha256_file(const char *path, char hex[65])
{
	size_t n;
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *b = srv_slurp(path, &n);

	hex[0] = 0;
	if (!b)
		return;
	EVP_Digest(b, n, md, &mdlen, EVP_sha256(), NULL);
	free(b);
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void blob_path(struct srv_server *s, const char *sha, char *out, size_t n)
{
	snprintf(out, n, "%s/blobs/%.2s/%s", s->data, sha, sha);
}

/* The JFK reference words (REFERENCES.tsv column 5), heap. */
static char *jfk_reference_words(void)
{
	char path[1024];
	char *tsv, *line, *save = NULL, *words = NULL;

	snprintf(path, sizeof(path), "%s/audio/REFERENCES.tsv", srv_shared());
	tsv = srv_slurp(path, NULL);
	if (!tsv)
		return NULL;
	for (line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "jfk/jfk.wav\t", 12) != 0)
			continue;
		char *f = line;
		for (int col = 0; col < 4 && f; col++) {
			f = strchr(f, '\t');
			if (f)
				f++;
		}
		if (f) {
			char *end = strchr(f, '\t');
			if (end)
				*end = 0;
			words = srv_words(f);
		}
		break;
	}
	free(tsv);
	return words;
}

/* Fraction of the distinct reference words that occur in hyp. */
static double word_recall(const char *ref_words, const char *hyp_text)
{
	char *hyp = srv_words(hyp_text);
	char *ref = strdup(ref_words);
	char *save = NULL;
	int total = 0, hit = 0;
	char padded[8192];

	snprintf(padded, sizeof(padded), " %s ", hyp ? hyp : "");
	for (char *w = strtok_r(ref, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char pat[128];
		snprintf(pat, sizeof(pat), " %s ", w);
		total++;
		if (strstr(padded, pat))
			hit++;
	}
	free(hyp);
	free(ref);
	return total ? (double)hit / total : 0;
}

static char *metrics_text(struct srv_server *s)
{
	struct srv_resp r;
	char *t = NULL;
	if (srv_get(s, "/metrics", &r) == 0 && r.status == 200) {
		t = r.body;
		r.body = NULL;
	}
	srv_resp_free(&r);
	return t;
}

static int starts_with(const char *s, const char *p)
{
	return s && !strncmp(s, p, strlen(p));
}

/* Checks the documented summary shape. */
static void check_summary(struct srv_server *s, json_t *j, const char *id)
{
	static const char *keys[] = {"id", "type", "status", "priority", "cached", "filename",
				     "media_type", "created_at", "started_at", "finished_at",
				     "attempts", "audio_s", "progress", "timings", "error", "links"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!json_object_get(j, keys[i]))
			fprintf(stderr, "summary lacks \"%s\"\n", keys[i]);
		SRV_ASSERT(s, json_object_get(j, keys[i]) != NULL);
	}
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "id"), id));
	SRV_ASSERT(s, json_is_object(srv_jget(j, "progress")));
	SRV_ASSERT(s, srv_jget(j, "progress.stage") && srv_jget(j, "progress.percent") &&
			      srv_jget(j, "progress.eta_s"));
	const char *created = srv_jstr(j, "created_at");
	SRV_ASSERT(s, created && strlen(created) >= 20 && created[4] == '-' && created[10] == 'T' &&
			      created[strlen(created) - 1] == 'Z');
}

/* ---- submit, read, results ---------------------------------------------------- */

static void test_submit_and_results(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char path[256], *loc;
	const char *id;

	(void)state;
	srv_upload(s, "/v1/jobs", jfk, NULL, "audio/wav", NULL, NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 202);
	SRV_ASSERT(s, r.json != NULL);
	id = srv_jstr(r.json, "id");
	SRV_ASSERT(s, id && starts_with(id, "job_"));
	snprintf(jfk_job, sizeof(jfk_job), "%s", id);
	SRV_ASSERT(s, !strcmp(srv_jstr(r.json, "status"), "queued"));
	SRV_ASSERT(s, json_is_false(srv_jget(r.json, "cached")));
	static const char *const links[][2] = {{"self", ""}, {"progress", "/progress"},
					       {"events", "/events"}, {"ws", "/ws"},
					       {"result", "/result"}};
	for (size_t i = 0; i < 5; i++) {
		char want[256], key[32];
		snprintf(key, sizeof(key), "links.%s", links[i][0]);
		snprintf(want, sizeof(want), "/v1/jobs/%s%s", jfk_job, links[i][1]);
		const char *got = srv_jstr(r.json, key);
		if (!got || strcmp(got, want))
			fprintf(stderr, "%s = %s, want %s\n", key, got ? got : "(none)", want);
		SRV_ASSERT(s, got && !strcmp(got, want));
	}
	loc = srv_header(&r, "Location");
	snprintf(path, sizeof(path), "/v1/jobs/%s", jfk_job);
	SRV_ASSERT(s, loc && (!strcmp(loc, path) || (strstr(loc, path) && !strcmp(strstr(loc, path), path))));
	free(loc);
	srv_resp_free(&r);

	/* progress endpoint while it is queued or running */
	snprintf(path, sizeof(path), "/v1/jobs/%s/progress", jfk_job);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	SRV_ASSERT(s, !strcmp(srv_jstr(r.json, "id"), jfk_job));
	SRV_ASSERT(s, srv_jstr(r.json, "status") && srv_jget(r.json, "stage") &&
			      json_is_number(srv_jget(r.json, "percent")) && srv_jget(r.json, "eta_s"));
	srv_resp_free(&r);

	json_t *j = srv_wait_status(s, jfk_job, "done|failed|canceled", 60);
	SRV_ASSERT(s, j != NULL);
	check_summary(s, j, jfk_job);
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "status"), "done"));
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "type"), "transcribe"));
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "priority"), "normal"));
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "filename"), "jfk.wav"));
	SRV_ASSERT(s, starts_with(srv_jstr(j, "media_type"), "audio/"));
	SRV_ASSERT(s, srv_jnum(j, "attempts", 0) == 1);
	SRV_ASSERT(s, srv_jnum(j, "audio_s", 0) > 10.5 && srv_jnum(j, "audio_s", 0) < 11.5);
	SRV_ASSERT(s, json_is_null(srv_jget(j, "error")));
	SRV_ASSERT(s, srv_jnum(j, "progress.percent", 0) == 100);
	SRV_ASSERT(s, srv_jstr(j, "started_at") && srv_jstr(j, "finished_at"));
	SRV_ASSERT(s, strcmp(srv_jstr(j, "finished_at"), srv_jstr(j, "started_at")) >= 0);
	SRV_ASSERT(s, json_is_object(srv_jget(j, "timings")));
	json_decref(j);

	/* json: text and segments; the reference words are there */
	char *ref = jfk_reference_words();
	SRV_ASSERT(s, ref && strlen(ref) > 20);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", jfk_job);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	char *ct = srv_header(&r, "Content-Type");
	SRV_ASSERT(s, starts_with(ct, "application/json"));
	free(ct);
	const char *text = srv_jstr(r.json, "text");
	json_t *segs = srv_jget(r.json, "segments");
	SRV_ASSERT(s, text && json_is_array(segs) && json_array_size(segs) > 0);
	for (size_t i = 0; i < json_array_size(segs); i++) {
		json_t *g = json_array_get(segs, i);
		SRV_ASSERT(s, srv_jnum(g, "end", -1) >= srv_jnum(g, "start", 0));
		SRV_ASSERT(s, srv_jnum(g, "end", -1) <= 11.5);
	}
	double rec = word_recall(ref, text);
	fprintf(stderr, "json text: \"%s\" (recall of reference words %.2f)\n", text, rec);
	SRV_ASSERT(s, rec >= 0.6);
	char *json_words = srv_words(text);
	char *json_text = strdup(text ? text : "");
	srv_resp_free(&r);

	/* json explicitly, txt, srt, vtt */
	static const char *const fmts[][2] = {{"json", "application/json"},
					      {"txt", "text/plain; charset=utf-8"},
					      {"srt", "application/x-subrip"},
					      {"vtt", "text/vtt"}};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=%s", jfk_job, fmts[i][0]);
		srv_get(s, path, &r);
		SRV_ASSERT(s, r.status == 200 && r.len > 0);
		ct = srv_header(&r, "Content-Type");
		if (!starts_with(ct, fmts[i][1]))
			fprintf(stderr, "format %s: Content-Type %s, want %s\n", fmts[i][0], ct ? ct : "(none)", fmts[i][1]);
		SRV_ASSERT(s, starts_with(ct, fmts[i][1]));
		free(ct);
		if (!strcmp(fmts[i][0], "txt")) {
			char *w = srv_words(r.body);
			SRV_ASSERT(s, w && !strcmp(w, json_words));
			free(w);
		} else if (!strcmp(fmts[i][0], "srt")) {
			SRV_ASSERT(s, starts_with(r.body, "1\n00:00:") || starts_with(r.body, "1\r\n00:00:"));
			SRV_ASSERT(s, strstr(r.body, " --> ") != NULL);
			SRV_ASSERT(s, word_recall(ref, r.body) >= 0.6);
		} else if (!strcmp(fmts[i][0], "vtt")) {
			SRV_ASSERT(s, starts_with(r.body, "WEBVTT"));
			SRV_ASSERT(s, strstr(r.body, " --> ") != NULL);
		} else {
			SRV_ASSERT(s, r.json && !strcmp(srv_jstr(r.json, "text"), json_text));
		}
		srv_resp_free(&r);
	}
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=docx", jfk_job);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);
	free(json_words);
	free(json_text);
	free(ref);
}

/* ---- dedup --------------------------------------------------------------------- */

static void test_dedup(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r, r0;
	char path[256], id2[64], id3[64];

	(void)state;
	if (!jfk_job[0])
		skip();
	char *m0 = metrics_text(s);
	SRV_ASSERT(s, m0 != NULL);
	double hits0 = srv_metric(m0, "hark_dedup_total", "result=\"hit\"", NULL);
	double audio0 = srv_metric(m0, "hark_audio_seconds_total", NULL, NULL);
	free(m0);

	snprintf(path, sizeof(path), "/v1/jobs/%s/result", jfk_job);
	srv_get(s, path, &r0);
	SRV_ASSERT(s, r0.status == 200 && r0.json);

	double t0 = srv_now();
	srv_upload(s, "/v1/jobs", jfk, "again.wav", NULL, NULL, NULL, NULL, &r);
	double dt = srv_now() - t0;
	SRV_ASSERT(s, r.status == 200 && r.json);
	SRV_ASSERT(s, !strcmp(srv_jstr(r.json, "status"), "done"));
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "cached")));
	SRV_ASSERT(s, json_is_object(srv_jget(r.json, "result")));
	SRV_ASSERT(s, !strcmp(srv_jstr(r.json, "result.text"), srv_jstr(r0.json, "text")));
	snprintf(id2, sizeof(id2), "%s", srv_jstr(r.json, "id") ? srv_jstr(r.json, "id") : "");
	SRV_ASSERT(s, id2[0] && strcmp(id2, jfk_job) != 0);
	fprintf(stderr, "dedup answer in %.3f s\n", dt);
	srv_resp_free(&r);

	json_t *j = srv_job_get(s, id2);
	SRV_ASSERT(s, j && json_is_true(srv_jget(j, "cached")) && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=txt", id2);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && r.len > 0);
	srv_resp_free(&r);

	char *m1 = metrics_text(s);
	SRV_ASSERT(s, m1 != NULL);
	double hits1 = srv_metric(m1, "hark_dedup_total", "result=\"hit\"", NULL);
	double audio1 = srv_metric(m1, "hark_audio_seconds_total", NULL, NULL);
	free(m1);
	fprintf(stderr, "dedup hits %.0f -> %.0f, audio seconds %.1f -> %.1f\n", hits0, hits1, audio0, audio1);
	SRV_ASSERT(s, hits1 == hits0 + 1);
	SRV_ASSERT(s, audio1 == audio0); /* no work was done */

	/* formats and priority do not affect the result: still a hit */
	srv_upload(s, "/v1/jobs", jfk, NULL, NULL, "{\"formats\":[\"txt\"],\"priority\":\"high\"}", NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 200 && json_is_true(srv_jget(r.json, "cached")));
	srv_resp_free(&r);

	/* a different language is a different result: new work */
	srv_upload(s, "/v1/jobs", jfk, NULL, NULL, "{\"language\":\"fr\"}", NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 202 && r.json);
	SRV_ASSERT(s, json_is_false(srv_jget(r.json, "cached")));
	snprintf(id3, sizeof(id3), "%s", srv_jstr(r.json, "id"));
	SRV_ASSERT(s, strcmp(id3, jfk_job) && strcmp(id3, id2));
	srv_resp_free(&r);
	j = srv_wait_status(s, id3, "done|failed|canceled", 60);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);

	/* purge the French job: the JFK blob stays, other jobs still use it */
	char sha[65], bp[4096];
	sha256_file(jfk, sha);
	blob_path(s, sha, bp, sizeof(bp));
	SRV_ASSERT(s, access(bp, F_OK) == 0);
	snprintf(path, sizeof(path), "/v1/jobs/%s?purge=1", id3);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 200 || r.status == 202);
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id3);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);
	SRV_ASSERT(s, access(bp, F_OK) == 0);
	srv_resp_free(&r0);
}

/* ---- purge removes results and the blob ------------------------------------------- */

static void test_purge(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char clip[1024], path[256], id[64], sha[65], bp[4096];

	(void)state;
	snprintf(clip, sizeof(clip), "%s/purge.wav", scratch);
	SRV_ASSERT(s, srv_cut_audio(jfk, 0.5, 2.6, clip) == 0);
	SRV_ASSERT(s, srv_submit_file(s, clip, NULL, id, sizeof(id)) == 202);
	json_t *j = srv_wait_status(s, id, "done|failed|canceled", 60);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	sha256_file(clip, sha);
	blob_path(s, sha, bp, sizeof(bp));
	SRV_ASSERT(s, access(bp, F_OK) == 0);

	snprintf(path, sizeof(path), "/v1/jobs/%s?purge=1", id);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
	static const char *const fmts[] = {"json", "txt", "srt", "vtt"};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=%s", id, fmts[i]);
		srv_get(s, path, &r);
		SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
		srv_resp_free(&r);
	}
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 404);
	srv_resp_free(&r);
	SRV_ASSERT(s, access(bp, F_OK) != 0);

	/* the same content again is new work (the purged result is gone) */
	SRV_ASSERT(s, srv_submit_file(s, clip, NULL, id, sizeof(id)) == 202);
	j = srv_wait_status(s, id, "done|failed|canceled", 60);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
}

/* ---- transcript and noop jobs --------------------------------------------------- */

static void test_transcript_jobs(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char path[256], id[64];
	json_t *j;

	(void)state;
	/* an SRT string */
	const char *srt_body =
		"{\"transcript\":\"1\\n00:00:01,000 --> 00:00:02,500\\nHello there friends\\n\\n"
		"2\\n00:00:03,000 --> 00:00:04,200\\nThe budget meeting starts now\\n\","
		"\"options\":{\"formats\":[\"json\",\"txt\",\"srt\",\"vtt\"]}}";
	srv_post_json(s, "/v1/jobs", srt_body, &r);
	SRV_ASSERT(s, r.status == 202 && r.json);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);
	j = srv_wait_status(s, id, "done|failed|canceled", 30);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	SRV_ASSERT(s, !strcmp(srv_jstr(j, "type"), "transcript"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	char *w = srv_words(srv_jstr(r.json, "text"));
	SRV_ASSERT(s, w && strstr(w, "hello there friends") && strstr(w, "the budget meeting starts now"));
	free(w);
	json_t *segs = srv_jget(r.json, "segments");
	SRV_ASSERT(s, json_is_array(segs) && json_array_size(segs) == 2);
	SRV_ASSERT(s, srv_jnum(json_array_get(segs, 1), "start", 0) > 2.9 &&
			      srv_jnum(json_array_get(segs, 1), "start", 0) < 3.1);
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=vtt", id);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && starts_with(r.body, "WEBVTT") &&
			      strstr(r.body, "00:00:03.000 --> 00:00:04.200"));
	srv_resp_free(&r);

	/* a hark JSON object */
	const char *obj_body =
		"{\"transcript\":{\"text\":\"Ask not what your country can do\",\"segments\":["
		"{\"id\":0,\"start\":0.5,\"end\":2.0,\"text\":\"Ask not\"},"
		"{\"id\":1,\"start\":2.0,\"end\":4.0,\"text\":\"what your country can do\"}]}}";
	srv_post_json(s, "/v1/jobs", obj_body, &r);
	SRV_ASSERT(s, r.status == 202 && r.json);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);
	j = srv_wait_status(s, id, "done|failed|canceled", 30);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=srt", id);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && (starts_with(r.body, "1\n00:00:00,500 --> 00:00:02,000") ||
					  starts_with(r.body, "1\r\n00:00:00,500 --> 00:00:02,000")));
	SRV_ASSERT(s, strstr(r.body, "what your country can do") != NULL);
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=txt", id);
	srv_get(s, path, &r);
	w = srv_words(r.body);
	SRV_ASSERT(s, r.status == 200 && w && !strcmp(w, "ask not what your country can do"));
	free(w);
	srv_resp_free(&r);

	/* noop */
	SRV_ASSERT(s, srv_submit_noop(s, NULL, id, sizeof(id)) == 202);
	j = srv_wait_status(s, id, "done|failed|canceled", 30);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done") && !strcmp(srv_jstr(j, "type"), "noop"));
	json_decref(j);
}

/* ---- list ----------------------------------------------------------------------- */

static void test_list_pagination(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char ids[7][64], cursor[64] = "", path[256];
	char seen[256][64];
	int n_seen = 0, pages = 0;

	(void)state;
	for (int i = 0; i < 7; i++)
		SRV_ASSERT(s, srv_submit_noop(s, NULL, ids[i], sizeof(ids[i])) == 202);
	for (int i = 0; i < 7; i++) {
		json_t *j = srv_wait_status(s, ids[i], "done", 30);
		SRV_ASSERT(s, j != NULL);
		json_decref(j);
	}
	/* walk every page with limit 3 */
	for (;;) {
		if (cursor[0])
			snprintf(path, sizeof(path), "/v1/jobs?limit=3&cursor=%s", cursor);
		else
			snprintf(path, sizeof(path), "/v1/jobs?limit=3");
		srv_get(s, path, &r);
		SRV_ASSERT(s, r.status == 200 && r.json);
		json_t *data = srv_jget(r.json, "data");
		json_t *more = srv_jget(r.json, "has_more");
		SRV_ASSERT(s, json_is_array(data) && json_is_boolean(more));
		SRV_ASSERT(s, json_array_size(data) <= 3);
		for (size_t i = 0; i < json_array_size(data); i++) {
			const char *id = srv_jstr(json_array_get(data, i), "id");
			SRV_ASSERT(s, id && n_seen < 256);
			for (int k = 0; k < n_seen; k++)
				SRV_ASSERT(s, strcmp(seen[k], id) != 0);  /* no duplicates */
			if (n_seen > 0)
				SRV_ASSERT(s, strcmp(seen[n_seen - 1], id) > 0); /* newest first */
			snprintf(seen[n_seen++], 64, "%s", id);
		}
		pages++;
		if (json_is_false(more)) {
			SRV_ASSERT(s, json_is_null(srv_jget(r.json, "next_cursor")));
			srv_resp_free(&r);
			break;
		}
		SRV_ASSERT(s, json_array_size(data) == 3);
		const char *nc = srv_jstr(r.json, "next_cursor");
		SRV_ASSERT(s, nc && starts_with(nc, "job_"));
		snprintf(cursor, sizeof(cursor), "%s", nc);
		srv_resp_free(&r);
		SRV_ASSERT(s, pages < 100);
	}
	SRV_ASSERT(s, pages >= 3);
	/* the seven jobs are the newest, in reverse order of submission */
	SRV_ASSERT(s, n_seen >= 7);
	for (int i = 0; i < 7; i++)
		SRV_ASSERT(s, !strcmp(seen[i], ids[6 - i]));

	/* status filter */
	srv_get(s, "/v1/jobs?status=done&limit=1000", &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	json_t *data = srv_jget(r.json, "data");
	int found = 0;
	for (size_t i = 0; i < json_array_size(data); i++) {
		json_t *e = json_array_get(data, i);
		SRV_ASSERT(s, !strcmp(srv_jstr(e, "status"), "done"));
		for (int k = 0; k < 7; k++)
			found += !strcmp(srv_jstr(e, "id"), ids[k]);
	}
	SRV_ASSERT(s, found == 7);
	srv_resp_free(&r);
	srv_get(s, "/v1/jobs?status=queued", &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	data = srv_jget(r.json, "data");
	for (size_t i = 0; i < json_array_size(data); i++)
		SRV_ASSERT(s, !strcmp(srv_jstr(json_array_get(data, i), "status"), "queued"));
	srv_resp_free(&r);
	srv_get(s, "/v1/jobs?limit=1", &r);
	SRV_ASSERT(s, r.status == 200 && json_array_size(srv_jget(r.json, "data")) == 1);
	SRV_ASSERT(s, !strcmp(srv_jstr(json_array_get(srv_jget(r.json, "data"), 0), "id"), ids[6]));
	srv_resp_free(&r);
}

/* ---- cancel, priorities (one worker) ------------------------------------------------ */

static int cmp_time(const char *a, const char *b) { return strcmp(a, b); }

static void test_cancel_and_priorities(void **state)
{
	struct srv_server *s = server_b();
	struct srv_resp r;
	char longf[1024], lid[64], qid[64], path[256];
	char batch[5][64], rt[5][64];

	(void)state;
	SRV_ASSERT(s, srv_make_audio(scratch, "long60.wav", 60, longf, sizeof(longf)) == 0);
	SRV_ASSERT(s, srv_submit_file(s, longf, NULL, lid, sizeof(lid)) == 202);
	json_t *j = srv_wait_running(s, lid, 0, 60);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);

	/* result of an unfinished job */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", lid);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 409 && srv_is_error(&r, "not_ready"));
	srv_resp_free(&r);

	/* cancel a queued job: 200, canceled at once */
	SRV_ASSERT(s, srv_submit_noop(s, NULL, qid, sizeof(qid)) == 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s", qid);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 200 && r.json && !strcmp(srv_jstr(r.json, "status"), "canceled"));
	srv_resp_free(&r);
	j = srv_job_get(s, qid);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "canceled"));
	json_decref(j);

	/* batch first, then realtime, all behind the long job */
	for (int i = 0; i < 5; i++)
		SRV_ASSERT(s, srv_submit_noop(s, "batch", batch[i], sizeof(batch[i])) == 202);
	for (int i = 0; i < 5; i++)
		SRV_ASSERT(s, srv_submit_noop(s, "realtime", rt[i], sizeof(rt[i])) == 202);
	j = srv_job_get(s, rt[0]);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "priority"), "realtime") && !strcmp(srv_jstr(j, "status"), "queued"));
	json_decref(j);

	/* cancel the running job: 202 canceling, canceled within about a second */
	j = srv_job_get(s, lid);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "running"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s", lid);
	double t0 = srv_now();
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 202 && r.json && !strcmp(srv_jstr(r.json, "status"), "canceling"));
	srv_resp_free(&r);
	j = srv_wait_status(s, lid, "canceled|done|failed", 10);
	double dt = srv_now() - t0;
	fprintf(stderr, "running job canceled after %.2f s\n", dt);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "canceled"));
	json_decref(j);
	SRV_ASSERT(s, dt < 1.5 * srv_time_scale());

	/* its event history ends with a canceled event and the stream closes */
	struct srv_events ev;
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", lid);
	srv_sse_collect(s, path, NULL, 10, &ev);
	SRV_ASSERT(s, ev.status == 200 && ev.closed && ev.n >= 2);
	SRV_ASSERT(s, !strcmp(ev.ev[ev.n - 1].type, "canceled"));
	SRV_ASSERT(s, srv_events_count(&ev, "running") >= 1 && srv_events_count(&ev, "done") == 0);
	srv_events_free(&ev);

	/* every noop finishes; realtime mostly overtakes batch */
	char rt_t[5][40], b_t[5][40];
	for (int i = 0; i < 5; i++) {
		j = srv_wait_status(s, rt[i], "done|failed|canceled", 30);
		SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done") && srv_jstr(j, "finished_at"));
		snprintf(rt_t[i], sizeof(rt_t[i]), "%s", srv_jstr(j, "finished_at"));
		json_decref(j);
		j = srv_wait_status(s, batch[i], "done|failed|canceled", 30);
		SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done") && srv_jstr(j, "finished_at"));
		snprintf(b_t[i], sizeof(b_t[i]), "%s", srv_jstr(j, "finished_at"));
		json_decref(j);
	}
	double before = 0;
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 5; k++) {
			int c = cmp_time(rt_t[i], b_t[k]);
			before += c < 0 ? 1 : c == 0 ? 0.5 : 0;
		}
	fprintf(stderr, "realtime finished before batch in %.1f of 25 pairs\n", before);
	SRV_ASSERT(s, before >= 18);

	/* purge the canceled long job: its (unshared) blob goes too */
	char sha[65], bp[4096];
	sha256_file(longf, sha);
	blob_path(s, sha, bp, sizeof(bp));
	SRV_ASSERT(s, access(bp, F_OK) == 0);
	snprintf(path, sizeof(path), "/v1/jobs/%s?purge=1", lid);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s", lid);
	srv_get(s, path, &r);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);
	SRV_ASSERT(s, access(bp, F_OK) != 0);

	/* purge of a running job: 202 canceling, purged (and its blob removed)
	 * as soon as it has stopped */
	SRV_ASSERT(s, srv_submit_file(s, longf, NULL, lid, sizeof(lid)) == 202);
	j = srv_wait_running(s, lid, 0, 60);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);
	SRV_ASSERT(s, access(bp, F_OK) == 0);
	snprintf(path, sizeof(path), "/v1/jobs/%s?purge=1", lid);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 202 && r.json && !strcmp(srv_jstr(r.json, "status"), "canceling"));
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s", lid);
	t0 = srv_now();
	long st = 0;
	while (srv_now() - t0 < 3 * srv_time_scale()) {
		srv_get(s, path, &r);
		st = r.status;
		srv_resp_free(&r);
		if (st == 404)
			break;
		srv_sleep_ms(50);
	}
	fprintf(stderr, "running job purged after %.2f s\n", srv_now() - t0);
	SRV_ASSERT(s, st == 404);
	SRV_ASSERT(s, access(bp, F_OK) != 0);
}

/* ---- webhooks ---------------------------------------------------------------------- */

struct hook_req {
	char *head;
	char *body;
	size_t len;
};

struct hook_srv {
	int fd, port;
	int fail_first;   /* answer 500 to this many requests first */
	volatile int stop;
	pthread_mutex_t mu;
	struct hook_req req[16];
	int n;
	pthread_t th;
};

static void *hook_main(void *arg)
{
	struct hook_srv *h = arg;
	while (!h->stop) {
		struct pollfd p = {h->fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(h->fd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = {5, 0};
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char *buf = malloc(1 << 20);
		size_t n = 0;
		long want = -1;
		char *he = NULL;
		while (buf && n < (1 << 20) - 1) {
			ssize_t k = recv(c, buf + n, (1 << 20) - 1 - n, 0);
			if (k <= 0)
				break;
			n += (size_t)k;
			buf[n] = 0;
			if (!he && (he = strstr(buf, "\r\n\r\n"))) {
				struct srv_resp tmp = {0};
				char *hcopy = strndup(buf, (size_t)(he - buf) + 2);
				tmp.headers = hcopy;
				char *cl = srv_header(&tmp, "Content-Length");
				want = cl ? atol(cl) : 0;
				free(cl);
				free(hcopy);
			}
			if (he && (long)(n - (size_t)(he + 4 - buf)) >= want)
				break;
		}
		const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		const char *fail = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		pthread_mutex_lock(&h->mu);
		int failing = h->n < h->fail_first;
		pthread_mutex_unlock(&h->mu);
		srv_send_all(c, failing ? fail : ok, strlen(failing ? fail : ok));
		close(c);
		if (buf && he) {
			pthread_mutex_lock(&h->mu);
			if (h->n < 16) {
				struct hook_req *q = &h->req[h->n++];
				q->head = strndup(buf, (size_t)(he - buf) + 2);
				q->len = n - (size_t)(he + 4 - buf);
				q->body = strndup(he + 4, q->len);
			}
			pthread_mutex_unlock(&h->mu);
		}
		free(buf);
	}
	return NULL;
}

static int hook_start(struct hook_srv *h)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		return -1;
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(h->fd, (struct sockaddr *)&a, sizeof(a)) || listen(h->fd, 16) ||
	    getsockname(h->fd, (struct sockaddr *)&a, &al))
		return -1;
	h->port = ntohs(a.sin_port);
	return pthread_create(&h->th, NULL, hook_main, h);
}

static void hook_stop(struct hook_srv *h)
{
	h->stop = 1;
	pthread_join(h->th, NULL);
	close(h->fd);
	for (int i = 0; i < h->n; i++) {
		free(h->req[i].head);
		free(h->req[i].body);
	}
	pthread_mutex_destroy(&h->mu);
}

static void test_webhook(void **state)
{
	struct srv_server *s = server_a();
	struct hook_srv h;
	struct srv_resp r;
	char body[512], id[64];

	(void)state;
	SRV_ASSERT(s, hook_start(&h) == 0);
	char *m0 = metrics_text(s);
	double wh0 = srv_metric(m0 ? m0 : "", "hark_webhooks_total", NULL, NULL);
	free(m0);
	snprintf(body, sizeof(body),
		 "{\"transcript\":\"webhook test transcript\",\"options\":{\"webhook\":\"http://127.0.0.1:%d/hook\"}}",
		 h.port);
	srv_post_json(s, "/v1/jobs", body, &r);
	SRV_ASSERT(s, r.status == 202 && r.json);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);

	double deadline = srv_now() + 15 * srv_time_scale();
	int got = 0;
	while (srv_now() < deadline && !got) {
		pthread_mutex_lock(&h.mu);
		got = h.n;
		pthread_mutex_unlock(&h.mu);
		if (!got)
			srv_sleep_ms(50);
	}
	SRV_ASSERT(s, got >= 1);
	struct hook_req *q = &h.req[0];
	struct srv_resp tmp = {0};
	tmp.headers = q->head;
	SRV_ASSERT(s, starts_with(q->head, "POST /hook "));
	char *ct = srv_header(&tmp, "Content-Type");
	char *evh = srv_header(&tmp, "X-Hark-Event");
	char *del = srv_header(&tmp, "X-Hark-Delivery");
	char *sig = srv_header(&tmp, "X-Hark-Signature");
	SRV_ASSERT(s, starts_with(ct, "application/json"));
	SRV_ASSERT(s, evh && !strcmp(evh, "job.done"));
	SRV_ASSERT(s, del && *del);
	SRV_ASSERT(s, sig && starts_with(sig, "sha256="));

	unsigned char mac[32];
	unsigned int maclen = 0;
	char hex[65];
	HMAC(EVP_sha256(), WEBHOOK_SECRET, (int)strlen(WEBHOOK_SECRET), (const unsigned char *)q->body,
	     q->len, mac, &maclen);
	for (unsigned i = 0; i < maclen; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	if (sig && strcmp(sig + 7, hex))
		fprintf(stderr, "signature %s, want sha256=%s\n", sig, hex);
	SRV_ASSERT(s, sig && !strcmp(sig + 7, hex));
	/* a different secret does not verify */
	HMAC(EVP_sha256(), "wrong", 5, (const unsigned char *)q->body, q->len, mac, &maclen);
	for (unsigned i = 0; i < maclen; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	SRV_ASSERT(s, strcmp(sig + 7, hex) != 0);

	json_error_t je;
	json_t *j = json_loadb(q->body, q->len, 0, &je);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "id"), id) && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	free(ct);
	free(evh);
	free(del);
	free(sig);
	hook_stop(&h);

	/* the delivery is counted */
	deadline = srv_now() + 5 * srv_time_scale();
	double wh1 = wh0;
	while (srv_now() < deadline && wh1 <= wh0) {
		char *m1 = metrics_text(s);
		wh1 = srv_metric(m1 ? m1 : "", "hark_webhooks_total", NULL, NULL);
		free(m1);
		if (wh1 <= wh0)
			srv_sleep_ms(100);
	}
	SRV_ASSERT(s, wh1 > wh0);
}

/* A failed delivery (500) is retried after about a second with the same
 * delivery id and a valid signature. */
static void test_webhook_retry(void **state)
{
	struct srv_server *s = server_a();
	struct hook_srv h;
	struct srv_resp r;
	char body[512];

	(void)state;
	SRV_ASSERT(s, hook_start(&h) == 0);
	h.fail_first = 1;
	snprintf(body, sizeof(body),
		 "{\"transcript\":\"webhook retry transcript\",\"options\":{\"webhook\":\"http://127.0.0.1:%d/retry\"}}",
		 h.port);
	srv_post_json(s, "/v1/jobs", body, &r);
	SRV_ASSERT(s, r.status == 202);
	srv_resp_free(&r);
	double t0 = srv_now(), deadline = t0 + 20 * srv_time_scale(), t1 = 0, t2 = 0;
	int got = 0;
	while (srv_now() < deadline && got < 2) {
		pthread_mutex_lock(&h.mu);
		got = h.n;
		pthread_mutex_unlock(&h.mu);
		if (got >= 1 && !t1)
			t1 = srv_now();
		if (got >= 2)
			t2 = srv_now();
		else
			srv_sleep_ms(20);
	}
	fprintf(stderr, "webhook: first delivery after %.2f s, retry %.2f s later\n", t1 - t0, t2 - t1);
	SRV_ASSERT(s, got >= 2);
	SRV_ASSERT(s, t2 - t1 >= 0.5 && t2 - t1 < 8 * srv_time_scale());
	struct srv_resp a = {0}, b = {0};
	a.headers = h.req[0].head;
	b.headers = h.req[1].head;
	char *d1 = srv_header(&a, "X-Hark-Delivery"), *d2 = srv_header(&b, "X-Hark-Delivery");
	char *sig = srv_header(&b, "X-Hark-Signature");
	SRV_ASSERT(s, d1 && d2 && !strcmp(d1, d2));
	unsigned char mac[32];
	unsigned int maclen = 0;
	char hex[65];
	HMAC(EVP_sha256(), WEBHOOK_SECRET, (int)strlen(WEBHOOK_SECRET), (const unsigned char *)h.req[1].body,
	     h.req[1].len, mac, &maclen);
	for (unsigned i = 0; i < maclen; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	SRV_ASSERT(s, sig && !strncmp(sig, "sha256=", 7) && !strcmp(sig + 7, hex));
	free(d1);
	free(d2);
	free(sig);
	hook_stop(&h);
}

/* ---- operations ---------------------------------------------------------------------- */

static void test_health_ready_metrics_reqid(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;

	(void)state;
	srv_get(s, "/healthz", &r);
	SRV_ASSERT(s, r.status == 200 && r.json && !strcmp(srv_jstr(r.json, "status"), "ok"));
	srv_resp_free(&r);

	srv_get(s, "/readyz", &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	SRV_ASSERT(s, !strcmp(srv_jstr(r.json, "status"), "ready"));
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "checks.database.ok")));
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "checks.model.ok")));
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "checks.disk.ok")));
	SRV_ASSERT(s, srv_jnum(r.json, "checks.disk.free_bytes", -1) > 0);
	SRV_ASSERT(s, srv_jnum(r.json, "checks.disk.min_free_bytes", -1) >= 0);
	srv_resp_free(&r);

	/* X-Request-Id: echoed when sent, generated otherwise, logged */
	const char *h[] = {"X-Request-Id: srvtest-req-7f3a9c", NULL};
	srv_request(s, "GET", "/v1/jobs?limit=1", NULL, NULL, 0, h, &r);
	char *rid = srv_header(&r, "X-Request-Id");
	SRV_ASSERT(s, r.status == 200 && rid && !strcmp(rid, "srvtest-req-7f3a9c"));
	free(rid);
	srv_resp_free(&r);
	srv_get(s, "/v1/jobs/job_doesnotexist", &r);
	rid = srv_header(&r, "X-Request-Id");
	SRV_ASSERT(s, r.status == 404 && rid && strlen(rid) >= 8);
	free(rid);
	srv_resp_free(&r);
	srv_sleep_ms(200);
	char *log = srv_read_log(s);
	SRV_ASSERT(s, log && strstr(log, "srvtest-req-7f3a9c"));
	SRV_ASSERT(s, strstr(log, "\"msg\":\"listening\"") || strstr(log, "\"msg\": \"listening\""));
	free(log);

	/* metrics: the documented families, and counters that move */
	char *m0 = metrics_text(s);
	SRV_ASSERT(s, m0 != NULL);
	static const char *const fam[] = {
		"hark_http_requests_total", "hark_http_request_duration_seconds", "hark_queue_depth",
		"hark_jobs", "hark_stage_duration_seconds", "hark_audio_seconds_total",
		"hark_dedup_total", "hark_workers", "hark_uploads_rejected_total", "hark_streams",
		"hark_webhooks_total"};
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		char pat[128];
		snprintf(pat, sizeof(pat), "# TYPE %s ", fam[i]);
		if (!strstr(m0, pat))
			fprintf(stderr, "metrics lack %s\n", pat);
		SRV_ASSERT(s, strstr(m0, pat) != NULL);
	}
	int found = 0;
	double req0 = srv_metric(m0, "hark_http_requests_total", NULL, &found);
	SRV_ASSERT(s, found > 0 && req0 > 0);
	srv_metric(m0, "hark_http_request_duration_seconds_bucket", "le=\"+Inf\"", &found);
	SRV_ASSERT(s, found > 0);
	SRV_ASSERT(s, srv_metric(m0, "hark_workers", NULL, &found) == 2 && found >= 1);
	srv_metric(m0, "hark_queue_depth", "priority=\"batch\"", &found);
	SRV_ASSERT(s, found == 1);
	srv_metric(m0, "hark_jobs", "status=\"done\"", &found);
	SRV_ASSERT(s, found == 1);
	if (jfk_job[0]) {
		SRV_ASSERT(s, srv_metric(m0, "hark_audio_seconds_total", NULL, NULL) >= 10.5);
		SRV_ASSERT(s, srv_metric(m0, "hark_stage_duration_seconds_count", "stage=\"transcribe\"", NULL) >= 1);
		SRV_ASSERT(s, srv_metric(m0, "hark_jobs", "status=\"done\"", NULL) >= 1);
	}
	for (int i = 0; i < 5; i++) {
		srv_get(s, "/healthz", &r);
		srv_resp_free(&r);
	}
	char *m1 = metrics_text(s);
	SRV_ASSERT(s, m1 != NULL);
	double req1 = srv_metric(m1, "hark_http_requests_total", NULL, NULL);
	fprintf(stderr, "http requests %.0f -> %.0f\n", req0, req1);
	SRV_ASSERT(s, req1 >= req0 + 5);
	free(m0);
	free(m1);
}

/* --cors: the allowed origin is named in Access-Control-Allow-Origin (for
 * requests and preflights), another origin is not. */
static void test_cors(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;

	(void)state;
	const char *ok[] = {"Origin: https://app.example", NULL};
	srv_request(s, "GET", "/v1/jobs?limit=1", NULL, NULL, 0, ok, &r);
	char *acao = srv_header(&r, "Access-Control-Allow-Origin");
	SRV_ASSERT(s, r.status == 200 && acao && !strcmp(acao, "https://app.example"));
	free(acao);
	srv_resp_free(&r);

	const char *pre[] = {"Origin: https://app.example", "Access-Control-Request-Method: POST",
			     "Access-Control-Request-Headers: authorization, content-type", NULL};
	srv_request(s, "OPTIONS", "/v1/jobs", NULL, NULL, 0, pre, &r);
	acao = srv_header(&r, "Access-Control-Allow-Origin");
	char *methods = srv_header(&r, "Access-Control-Allow-Methods");
	fprintf(stderr, "preflight: %ld, allow-origin %s, allow-methods %s\n", r.status, acao ? acao : "-",
		methods ? methods : "-");
	SRV_ASSERT(s, (r.status == 200 || r.status == 204) && acao && !strcmp(acao, "https://app.example"));
	SRV_ASSERT(s, methods && strstr(methods, "POST"));
	free(acao);
	free(methods);
	srv_resp_free(&r);

	const char *bad[] = {"Origin: https://evil.example", NULL};
	srv_request(s, "GET", "/v1/jobs?limit=1", NULL, NULL, 0, bad, &r);
	acao = srv_header(&r, "Access-Control-Allow-Origin");
	SRV_ASSERT(s, acao == NULL || strcmp(acao, "https://evil.example") != 0);
	SRV_ASSERT(s, acao == NULL || strcmp(acao, "*") != 0);
	free(acao);
	srv_resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_and_results),
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_transcript_jobs),
		cmocka_unit_test(test_list_pagination),
		cmocka_unit_test(test_webhook),
		cmocka_unit_test(test_webhook_retry),
		cmocka_unit_test(test_health_ready_metrics_reqid),
		cmocka_unit_test(test_cors),
		cmocka_unit_test(test_cancel_and_priorities),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
