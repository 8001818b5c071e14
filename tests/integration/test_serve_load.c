/*
 * `hark serve` under a burst: 200 submissions sent at once over 200
 * concurrent connections (libcurl multi) to the real binary on 127.0.0.1,
 * mixing noop jobs, transcript jobs and small real-speech uploads (distinct
 * clips, so dedup cannot answer). Every answer must be 202 with a distinct
 * job id (no 5xx, no dropped connection), every job must reach done, and the
 * server must still answer /healthz with its metrics counting the requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "srv_harness.h"

#define N_REQ 200
#define N_CLIPS 16

static struct srv_server S;
static int up;

static int teardown(void **state)
{
	(void)state;
	return up ? srv_destroy(&S) : 0;
}

struct one {
	CURL *c;
	curl_mime *mime;
	struct curl_slist *hl;
	char body[4096];
	size_t n;
	long status;
	int kind; /* 0 noop, 1 transcript, 2 upload */
	char id[64];
};

static size_t write_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct one *o = ud;
	size_t k = sz * nm;
	size_t room = sizeof(o->body) - 1 - o->n;
	size_t c = k < room ? k : room;
	memcpy(o->body + o->n, p, c);
	o->n += c;
	o->body[o->n] = 0;
	return k;
}

static void test_burst_200(void **state)
{
	struct srv_server *s = &S;
	static struct one req[N_REQ];
	char clips[N_CLIPS][4096], jfk[1024], url[1024];
	const char *args[] = {"--no-auth", "--workers", "2", "--threads", "1", "--engine",
			      "pocketsphinx", NULL};

	(void)state;
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	assert_int_equal(srv_init(s), 0);
	up = 1;
	assert_int_equal(srv_start(s, NULL, args), 0);
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	for (int i = 0; i < N_CLIPS; i++) {
		snprintf(clips[i], sizeof(clips[i]), "%s/clip%02d.wav", s->root, i);
		SRV_ASSERT(s, srv_cut_audio(jfk, 0.3 * i, 0.8, clips[i]) == 0);
	}

	CURLM *m = curl_multi_init();
	SRV_ASSERT(s, m != NULL);
	snprintf(url, sizeof(url), "%s/v1/jobs", s->base);
	int n_up = 0;
	for (int i = 0; i < N_REQ; i++) {
		struct one *o = &req[i];
		memset(o, 0, sizeof(*o));
		o->c = curl_easy_init();
		curl_easy_setopt(o->c, CURLOPT_URL, url);
		curl_easy_setopt(o->c, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(o->c, CURLOPT_WRITEDATA, o);
		curl_easy_setopt(o->c, CURLOPT_TIMEOUT_MS, (long)(60000 * srv_time_scale()));
		curl_easy_setopt(o->c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(o->c, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(o->c, CURLOPT_FORBID_REUSE, 1L);
		o->hl = curl_slist_append(NULL, "Expect:");
		if (i % 10 == 3 && n_up < N_CLIPS) {
			o->kind = 2;
			o->mime = curl_mime_init(o->c);
			curl_mimepart *p = curl_mime_addpart(o->mime);
			curl_mime_name(p, "file");
			curl_mime_filedata(p, clips[n_up++]);
			curl_easy_setopt(o->c, CURLOPT_MIMEPOST, o->mime);
		} else {
			static char bodies[N_REQ][160];
			o->kind = i % 3 == 1 ? 1 : 0;
			if (o->kind == 1)
				snprintf(bodies[i], sizeof(bodies[i]),
					 "{\"transcript\":\"load test transcript number %d\"}", i);
			else
				snprintf(bodies[i], sizeof(bodies[i]), "{\"type\":\"noop\"}");
			o->hl = curl_slist_append(o->hl, "Content-Type: application/json");
			curl_easy_setopt(o->c, CURLOPT_POSTFIELDS, bodies[i]);
		}
		curl_easy_setopt(o->c, CURLOPT_HTTPHEADER, o->hl);
		curl_easy_setopt(o->c, CURLOPT_PRIVATE, o);
		curl_multi_add_handle(m, o->c);
	}
	SRV_ASSERT(s, n_up == N_CLIPS);

	double t0 = srv_now(), deadline = t0 + 60 * srv_time_scale();
	int running = 1;
	while (running && srv_now() < deadline) {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double dt = srv_now() - t0;
	int n202 = 0, n5xx = 0, nfail = 0;
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct one *o = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&o);
		if (msg->data.result != CURLE_OK) {
			nfail++;
			fprintf(stderr, "request %ld: %s\n", (long)(o - req), curl_easy_strerror(msg->data.result));
		}
	}
	for (int i = 0; i < N_REQ; i++) {
		struct one *o = &req[i];
		curl_easy_getinfo(o->c, CURLINFO_RESPONSE_CODE, &o->status);
		if (o->status == 202)
			n202++;
		else
			fprintf(stderr, "request %d (kind %d): status %ld %s\n", i, o->kind, o->status, o->body);
		if (o->status >= 500)
			n5xx++;
		json_error_t je;
		json_t *j = json_loads(o->body, 0, &je);
		const char *id = j ? json_string_value(json_object_get(j, "id")) : NULL;
		snprintf(o->id, sizeof(o->id), "%s", id ? id : "");
		json_decref(j);
		curl_multi_remove_handle(m, o->c);
		curl_easy_cleanup(o->c);
		curl_mime_free(o->mime);
		curl_slist_free_all(o->hl);
	}
	curl_multi_cleanup(m);
	fprintf(stderr, "%d submissions answered in %.2f s: %d x 202, %d x 5xx, %d transport failures\n",
		N_REQ, dt, n202, n5xx, nfail);
	SRV_ASSERT(s, nfail == 0 && n5xx == 0);
	SRV_ASSERT(s, n202 == N_REQ);
	for (int i = 0; i < N_REQ; i++) {
		SRV_ASSERT(s, req[i].id[0] != 0);
		for (int k = 0; k < i; k++)
			SRV_ASSERT(s, strcmp(req[i].id, req[k].id) != 0);
	}

	/* every job reaches done */
	int done = 0;
	deadline = srv_now() + 80 * srv_time_scale();
	static char is_done[N_REQ];
	memset(is_done, 0, sizeof(is_done));
	while (done < N_REQ && srv_now() < deadline) {
		struct srv_resp r;
		srv_get(s, "/v1/jobs?status=done&limit=1000", &r);
		json_t *data = srv_jget(r.json, "data");
		for (size_t k = 0; k < json_array_size(data); k++) {
			const char *id = srv_jstr(json_array_get(data, k), "id");
			for (int i = 0; i < N_REQ && id; i++)
				if (!is_done[i] && !strcmp(req[i].id, id)) {
					is_done[i] = 1;
					done++;
				}
		}
		srv_resp_free(&r);
		if (done < N_REQ)
			srv_sleep_ms(250);
	}
	fprintf(stderr, "%d of %d jobs done after %.1f s\n", done, N_REQ, srv_now() - t0);
	for (int i = 0; i < N_REQ && done < N_REQ; i++)
		if (!is_done[i]) {
			json_t *j = srv_job_get(s, req[i].id);
			fprintf(stderr, "job %s (kind %d) is %s\n", req[i].id, req[i].kind,
				j ? srv_jstr(j, "status") : "missing");
			json_decref(j);
		}
	SRV_ASSERT(s, done == N_REQ);

	struct srv_resp r;
	srv_get(s, "/healthz", &r);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
	srv_get(s, "/metrics", &r);
	SRV_ASSERT(s, r.status == 200);
	double posts = srv_metric(r.body, "hark_http_requests_total", "status=\"202\"", NULL);
	fprintf(stderr, "hark_http_requests_total{status=\"202\"} = %.0f\n", posts);
	SRV_ASSERT(s, posts >= N_REQ);
	srv_metric(r.body, "hark_http_requests_total", "status=\"5", &n5xx);
	SRV_ASSERT(s, n5xx == 0);
	srv_resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_burst_200, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
