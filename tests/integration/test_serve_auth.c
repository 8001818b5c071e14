/*
 * API keys and limits of `hark serve` against the real binary on 127.0.0.1,
 * keys made with the `hark keys` CLI (before start and while the server
 * runs): no token or an unknown token -> 401, a key revoked while the server
 * runs -> 403 within a few seconds, a key made while it runs works, a key
 * with --rps 1 --burst 2 -> 429 rate_limited with Retry-After and recovers
 * after it, a daily quota of 5 audio seconds -> the submit after an 11 s
 * upload is 429 quota_exceeded with Retry-After up to midnight UTC, keys see
 * only their own jobs (404 otherwise, and not in their list), and with
 * --no-auth the per-IP token bucket of the config's anon_rate applies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv_harness.h"

static struct srv_server S, N;
static int up, n_up;
static char tok_a[160], id_a[64], tok_b[160], id_b[64];

static struct srv_server *server(void)
{
	const char *args[] = {"--workers", "2", "--threads", "1", "--engine", "pocketsphinx", NULL};
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	if (!up) {
		assert_int_equal(srv_init(&S), 0);
		/* keys made before the server starts (the CLI creates the store) */
		assert_int_equal(srv_key_create(S.data, "alice", "--rps 1000 --burst 1000", tok_a,
						sizeof(tok_a), id_a, sizeof(id_a)), 0);
		assert_int_equal(srv_key_create(S.data, "bob", "--rps 1000 --burst 1000", tok_b,
						sizeof(tok_b), id_b, sizeof(id_b)), 0);
		assert_int_equal(srv_start(&S, NULL, args), 0);
		up = 1;
	}
	return &S;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (up)
		rc |= srv_destroy(&S);
	if (n_up)
		rc |= srv_destroy(&N);
	return rc;
}

static void use(struct srv_server *s, const char *token)
{
	snprintf(s->token, sizeof(s->token), "%s", token ? token : "");
}

static void test_unauthorized(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;

	(void)state;
	use(s, NULL);
	srv_get(s, "/v1/jobs", &r);
	SRV_ASSERT(s, r.status == 401 && srv_is_error(&r, "unauthorized"));
	srv_resp_free(&r);
	srv_post_json(s, "/v1/jobs", "{\"type\":\"noop\"}", &r);
	SRV_ASSERT(s, r.status == 401 && srv_is_error(&r, "unauthorized"));
	srv_resp_free(&r);
	/* operations routes need no key */
	srv_get(s, "/healthz", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);

	static const char *const bad[] = {
		"Authorization: Bearer hark_0000000000000000000000000000000000000000",
		"Authorization: Bearer ", "Authorization: Basic YWxpY2U6c2VjcmV0",
		"Authorization: bearer-ish nonsense"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *h[] = {bad[i], NULL};
		srv_request(s, "GET", "/v1/jobs", NULL, NULL, 0, h, &r);
		if (r.status != 401)
			fprintf(stderr, "%s -> %ld\n", bad[i], r.status);
		SRV_ASSERT(s, r.status == 401 && srv_is_error(&r, "unauthorized"));
		srv_resp_free(&r);
	}
	/* a token that differs from a real one in its last character */
	char near[200];
	snprintf(near, sizeof(near), "Authorization: Bearer %s", tok_a);
	near[strlen(near) - 1] = near[strlen(near) - 1] == '0' ? '1' : '0';
	const char *h[] = {near, NULL};
	srv_request(s, "GET", "/v1/jobs", NULL, NULL, 0, h, &r);
	SRV_ASSERT(s, r.status == 401 && srv_is_error(&r, "unauthorized"));
	srv_resp_free(&r);

	use(s, tok_a);
	srv_get(s, "/v1/jobs", &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	srv_resp_free(&r);
}

static void test_isolation(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char ja[64], jb[64], path[256];

	(void)state;
	use(s, tok_a);
	SRV_ASSERT(s, srv_submit_noop(s, NULL, ja, sizeof(ja)) == 202);
	use(s, tok_b);
	SRV_ASSERT(s, srv_submit_noop(s, NULL, jb, sizeof(jb)) == 202);
	json_t *j = srv_wait_status(s, jb, "done", 20);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);

	/* A cannot see, read, stream, cancel or purge B's job */
	use(s, tok_a);
	static const char *const sub[] = {"", "/progress", "/result", "/events"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/v1/jobs/%s%s", jb, sub[i]);
		srv_get(s, path, &r);
		if (r.status != 404)
			fprintf(stderr, "A GET %s -> %ld\n", path, r.status);
		SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
		srv_resp_free(&r);
	}
	snprintf(path, sizeof(path), "/v1/jobs/%s?purge=1", jb);
	srv_delete(s, path, &r);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);
	srv_get(s, "/v1/jobs?limit=1000", &r);
	SRV_ASSERT(s, r.status == 200 && r.json);
	json_t *data = srv_jget(r.json, "data");
	int own = 0;
	for (size_t i = 0; i < json_array_size(data); i++) {
		const char *id = srv_jstr(json_array_get(data, i), "id");
		SRV_ASSERT(s, strcmp(id, jb) != 0);
		own += !strcmp(id, ja);
	}
	SRV_ASSERT(s, own == 1);
	srv_resp_free(&r);

	/* B still sees its job */
	use(s, tok_b);
	j = srv_job_get(s, jb);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	use(s, tok_a);
}

static void test_revoke_while_running(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char tok[160], id[64];

	(void)state;
	/* a key made while the server runs is picked up */
	SRV_ASSERT(s, srv_key_create(s->data, "carol", "--rps 1000 --burst 1000", tok, sizeof(tok), id,
				     sizeof(id)) == 0);
	use(s, tok);
	double t0 = srv_now(), deadline = t0 + 8 * srv_time_scale();
	long st = 0;
	while (srv_now() < deadline) {
		srv_get(s, "/v1/jobs?limit=1", &r);
		st = r.status;
		srv_resp_free(&r);
		if (st == 200)
			break;
		srv_sleep_ms(100);
	}
	fprintf(stderr, "new key accepted after %.2f s\n", srv_now() - t0);
	SRV_ASSERT(s, st == 200);

	/* revoke it: 403 forbidden within the refresh period */
	SRV_ASSERT(s, srv_key_revoke(s->data, id) == 0);
	t0 = srv_now();
	deadline = t0 + 8 * srv_time_scale();
	while (srv_now() < deadline) {
		srv_get(s, "/v1/jobs?limit=1", &r);
		st = r.status;
		if (st != 200)
			break;
		srv_resp_free(&r);
		srv_sleep_ms(100);
	}
	fprintf(stderr, "revoked key refused (%ld) after %.2f s\n", st, srv_now() - t0);
	SRV_ASSERT(s, st == 403 && srv_is_error(&r, "forbidden"));
	SRV_ASSERT(s, srv_now() - t0 < 4 * srv_time_scale());
	srv_resp_free(&r);
	srv_post_json(s, "/v1/jobs", "{\"type\":\"noop\"}", &r);
	SRV_ASSERT(s, r.status == 403 && srv_is_error(&r, "forbidden"));
	srv_resp_free(&r);
	use(s, tok_a);
}

static void test_rate_limit(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char tok[160], id[64];
	int ok = 0, limited = 0;
	long retry = -1;

	(void)state;
	SRV_ASSERT(s, srv_key_create(s->data, "dave", "--rps 1 --burst 2", tok, sizeof(tok), id, sizeof(id)) == 0);
	use(s, tok);
	/* wait for the key to be known (one request at most per second meanwhile) */
	double deadline = srv_now() + 8 * srv_time_scale();
	long st = 0;
	while (srv_now() < deadline) {
		srv_get(s, "/v1/jobs?limit=1", &r);
		st = r.status;
		srv_resp_free(&r);
		if (st != 401)
			break;
		srv_sleep_ms(1000);
	}
	SRV_ASSERT(s, st == 200);
	srv_sleep_ms(2100); /* bucket full again */
	for (int i = 0; i < 6; i++) {
		srv_get(s, "/v1/jobs?limit=1", &r);
		if (r.status == 200) {
			ok++;
		} else {
			SRV_ASSERT(s, r.status == 429 && srv_is_error(&r, "rate_limited"));
			char *ra = srv_header(&r, "Retry-After");
			SRV_ASSERT(s, ra != NULL);
			char *end = NULL;
			long v = strtol(ra, &end, 10);
			SRV_ASSERT(s, end && *end == 0 && v >= 1 && v <= 2);
			retry = v;
			free(ra);
			limited++;
		}
		srv_resp_free(&r);
	}
	fprintf(stderr, "rate limit: %d allowed, %d limited, Retry-After %ld\n", ok, limited, retry);
	SRV_ASSERT(s, ok >= 2 && ok <= 3 && limited >= 3);
	/* after Retry-After the key works again */
	srv_sleep_ms((int)(retry * 1000) + 100);
	srv_get(s, "/v1/jobs?limit=1", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
	/* other keys are not affected */
	use(s, tok_a);
	srv_get(s, "/v1/jobs?limit=1", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
}

static void test_daily_quota(void **state)
{
	struct srv_server *s = server();
	struct srv_resp r;
	char tok[160], id[64], jfk[1024], jid[64];

	(void)state;
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	SRV_ASSERT(s, srv_key_create(s->data, "erin", "--rps 1000 --burst 1000 --quota-seconds 5", tok,
				     sizeof(tok), id, sizeof(id)) == 0);
	use(s, tok);
	double deadline = srv_now() + 8 * srv_time_scale();
	long st = 0;
	while (srv_now() < deadline) {
		srv_get(s, "/v1/jobs?limit=1", &r);
		st = r.status;
		srv_resp_free(&r);
		if (st == 200)
			break;
		srv_sleep_ms(100);
	}
	SRV_ASSERT(s, st == 200);
	/* under quota: 11 s of audio is accepted and charged when done */
	SRV_ASSERT(s, srv_submit_file(s, jfk, "{\"language\":\"en\",\"formats\":[\"txt\"]}", jid, sizeof(jid)) == 202);
	json_t *j = srv_wait_status(s, jid, "done|failed|canceled", 60);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);
	/* over quota now */
	srv_upload(s, "/v1/jobs", jfk, NULL, NULL, "{\"language\":\"en\",\"priority\":\"batch\"}", NULL, NULL, &r);
	SRV_ASSERT(s, r.status == 429 && srv_is_error(&r, "quota_exceeded"));
	char *ra = srv_header(&r, "Retry-After");
	SRV_ASSERT(s, ra != NULL);
	long v = atol(ra);
	time_t now = time(NULL);
	long to_midnight = 86400 - (long)(now % 86400);
	fprintf(stderr, "quota: Retry-After %ld, seconds to midnight UTC %ld\n", v, to_midnight);
	SRV_ASSERT(s, v >= 1 && v <= 86400 && labs(v - to_midnight) <= 120);
	free(ra);
	srv_resp_free(&r);
	/* another key is not affected */
	use(s, tok_b);
	char clip[1024];
	snprintf(clip, sizeof(clip), "%s/q.wav", s->root);
	SRV_ASSERT(s, srv_cut_audio(jfk, 0, 1.0, clip) == 0);
	SRV_ASSERT(s, srv_submit_file(s, clip, NULL, jid, sizeof(jid)) == 202);
	use(s, tok_a);
}

static void test_anon_rate(void **state)
{
	struct srv_server *np = &N;
	struct srv_resp r;
	const char *args[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine", "pocketsphinx", NULL};
	int ok = 0, limited = 0;

	(void)state;
	if (!srv_serve_available())
		skip();
	assert_int_equal(srv_init(np), 0);
	n_up = 1;
	assert_int_equal(srv_start(np, "{\"anon_rate\":{\"rps\":1,\"burst\":3}}", args), 0);
	for (int i = 0; i < 8; i++) {
		srv_get(np, "/v1/jobs?limit=1", &r);
		if (r.status == 200)
			ok++;
		else if (r.status == 429) {
			SRV_ASSERT(np, srv_is_error(&r, "rate_limited"));
			char *ra = srv_header(&r, "Retry-After");
			SRV_ASSERT(np, ra && atol(ra) >= 1);
			free(ra);
			limited++;
		}
		srv_resp_free(&r);
	}
	fprintf(stderr, "anonymous: %d allowed, %d limited\n", ok, limited);
	SRV_ASSERT(np, ok >= 3 && ok <= 4 && limited >= 4);
	/* health checks are not rate limited */
	srv_get(np, "/healthz", &r);
	SRV_ASSERT(np, r.status == 200);
	srv_resp_free(&r);
	n_up = 0;
	assert_int_equal(srv_destroy(np), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unauthorized),
		cmocka_unit_test(test_isolation),
		cmocka_unit_test(test_revoke_while_running),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_daily_quota),
		cmocka_unit_test(test_anon_rate),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
