/*
 * The server's event hub (src/server/hub.c) and config loading
 * (src/server/config.c): events posted from several threads reach every
 * subscriber of their job in order and no one else, a subscriber may leave
 * from inside its callback, shared events are freed when the last holder
 * lets go, a full inbox drops instead of growing; listen addresses parse,
 * the documented config file loads onto the defaults and unknown or
 * ill-typed fields are rejected by name.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hark/hark.h"
#include "server/config.h"
#include "server/hub.h"
#include "server/server.h"

struct rec {
	struct hark_hub_sub sub; /* first member */
	int64_t seqs[512];
	int n;
	int finals;
	int leave_on_final;
	struct hark_hub *hub;
	struct hark_hub_event *kept;
};

static void on_ev(struct hark_hub_sub *s, struct hark_hub_event *ev)
{
	struct rec *r = (struct rec *)s;

	if (r->n < 512)
		r->seqs[r->n++] = ev->seq;
	if (ev->final) {
		r->finals++;
		if (r->leave_on_final)
			hark_hub_unsubscribe(r->hub, s);
	}
	if (!r->kept)
		r->kept = hark_hub_event_ref(ev);
}

static struct hark_event mk(const char *job, int64_t seq, const char *type)
{
	struct hark_event e;

	memset(&e, 0, sizeof(e));
	snprintf(e.job_id, sizeof(e.job_id), "%s", job);
	snprintf(e.type, sizeof(e.type), "%s", type);
	e.seq = seq;
	e.data = (char *)"{\"status\":\"x\"}";
	return e;
}

struct producer {
	struct hark_hub *hub;
	const char *job;
	int64_t base;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (int i = 0; i < 100; i++) {
		struct hark_event e = mk(p->job, p->base + i, i == 99 ? "done" : "progress");
		while (hark_hub_post(p->hub, &e) == HARK_ERR_LIMIT)
			usleep(100);
	}
	return NULL;
}

static void test_fanout_order_and_isolation(void **state)
{
	struct hark_hub *hub = hark_hub_new(100000);
	struct rec a1, a2, b;
	pthread_t t[2];
	struct producer pa = {hub, "job_aaa", 1000}, pb = {hub, "job_bbb", 5000};

	(void)state;
	assert_non_null(hub);
	memset(&a1, 0, sizeof(a1));
	memset(&a2, 0, sizeof(a2));
	memset(&b, 0, sizeof(b));
	a1.sub.fn = a2.sub.fn = b.sub.fn = on_ev;
	a2.leave_on_final = 1;
	a2.hub = hub;
	hark_hub_subscribe(hub, &a1.sub, "job_aaa");
	hark_hub_subscribe(hub, &a2.sub, "job_aaa");
	hark_hub_subscribe(hub, &b.sub, "job_bbb");
	assert_int_equal(hark_hub_subscribers(hub), 3);

	pthread_create(&t[0], NULL, produce, &pa);
	pthread_create(&t[1], NULL, produce, &pb);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_int_equal(hark_hub_dispatch(hub), 200);

	assert_int_equal(a1.n, 100);
	assert_int_equal(a2.n, 100);
	assert_int_equal(b.n, 100);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(a1.seqs[i], 1000 + i);
		assert_int_equal(b.seqs[i], 5000 + i);
	}
	assert_int_equal(a1.finals, 1);
	/* a2 left inside its callback; a1 and b stay */
	assert_int_equal(hark_hub_subscribers(hub), 2);

	/* a later event of job_aaa reaches a1 only */
	struct hark_event e = mk("job_aaa", 2000, "progress");
	assert_int_equal(hark_hub_post(hub, &e), HARK_OK);
	assert_int_equal(hark_hub_dispatch(hub), 1);
	assert_int_equal(a1.n, 101);
	assert_int_equal(a2.n, 100);

	/* kept references outlive the dispatch; the payload is intact */
	assert_non_null(a1.kept);
	assert_int_equal(a1.kept->seq, 1000);
	assert_string_equal(a1.kept->data, "{\"status\":\"x\"}");
	assert_int_equal(a1.kept->len, strlen(a1.kept->data));
	hark_hub_event_unref(a1.kept);
	hark_hub_event_unref(a2.kept);
	hark_hub_event_unref(b.kept);

	hark_hub_unsubscribe(hub, &a1.sub);
	hark_hub_unsubscribe(hub, &a1.sub); /* idempotent */
	hark_hub_unsubscribe(hub, &b.sub);
	assert_int_equal(hark_hub_subscribers(hub), 0);
	hark_hub_free(hub);
}

static void test_inbox_cap_and_final(void **state)
{
	struct hark_hub *hub = hark_hub_new(3);
	struct hark_event e = mk("job_x", 1, "queued");

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(hark_hub_post(hub, &e), HARK_OK);
	assert_int_equal(hark_hub_post(hub, &e), HARK_ERR_LIMIT);
	assert_int_equal(hark_hub_dropped(hub), 1);
	assert_int_equal(hark_hub_dispatch(hub), 3); /* nobody listens: freed */
	assert_int_equal(hark_hub_post(hub, &e), HARK_OK); /* room again */
	hark_hub_free(hub); /* frees what is still queued */

	assert_true(hark_hub_type_is_final("done"));
	assert_true(hark_hub_type_is_final("failed"));
	assert_true(hark_hub_type_is_final("canceled"));
	assert_false(hark_hub_type_is_final("requeued"));
	assert_false(hark_hub_type_is_final("progress"));
}

static void test_listen_parse(void **state)
{
	char host[64];
	int port = -1;

	(void)state;
	assert_int_equal(hark_server_parse_listen("127.0.0.1:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(hark_server_parse_listen(":0", host, sizeof(host), &port), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 0);
	assert_int_equal(hark_server_parse_listen("9000", host, sizeof(host), &port), 0);
	assert_int_equal(port, 9000);
	assert_int_equal(hark_server_parse_listen("[::1]:81", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 81);
	assert_int_not_equal(hark_server_parse_listen("host:99999", host, sizeof(host), &port), 0);
	assert_int_not_equal(hark_server_parse_listen("host:", host, sizeof(host), &port), 0);
	assert_int_not_equal(hark_server_parse_listen("host:8x", host, sizeof(host), &port), 0);
	assert_int_not_equal(hark_server_parse_listen("", host, sizeof(host), &port), 0);
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/hark-cfg-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_config_file(void **state)
{
	/* the example of docs/SERVER.md */
	static const char doc[] =
		"{\"listen\": \"0.0.0.0:8080\", \"data\": \"/srv/hark\", \"workers\": 4, \"threads\": 1,"
		" \"engine\": \"auto\", \"model\": \"\","
		" \"auth\": true, \"cors_origins\": [\"https://app.example\"],"
		" \"max_body_mb\": 100, \"max_header_bytes\": 8192, \"max_url_bytes\": 2048,"
		" \"client_timeout_s\": 30, \"ttl_days\": 7, \"drain_timeout_s\": 30,"
		" \"min_free_disk_mb\": 512, \"max_unfinished_per_key\": 1000,"
		" \"anon_rate\": {\"rps\": 20, \"burst\": 40},"
		" \"key_defaults\": {\"rps\": 10, \"burst\": 20, \"daily_quota_s\": 0, \"max_concurrent\": 4},"
		" \"lease_s\": 30, \"max_attempts\": 3,"
		" \"webhook_secret_env\": \"HARK_WEBHOOK_SECRET\"}";
	struct hark_server_params p = hark_server_default_params();
	struct hark_server_config *c = NULL;
	char err[256] = "";
	char *path = write_tmp(doc);

	(void)state;
	assert_int_equal(hark_server_config_load(path, &p, &c, err, sizeof(err)), 0);
	assert_string_equal(p.host, "0.0.0.0");
	assert_int_equal(p.port, 8080);
	assert_string_equal(p.data_dir, "/srv/hark");
	assert_int_equal(p.workers, 4);
	assert_int_equal(p.n_cors, 1);
	assert_string_equal(p.cors[0], "https://app.example");
	assert_int_equal(p.max_body_bytes, (int64_t)100 << 20);
	assert_true(p.ttl_s == 7 * 86400.0);
	assert_int_equal(p.min_free_disk_bytes, (int64_t)512 << 20);
	assert_true(p.anon_rps == 20 && p.anon_burst == 40);
	assert_true(p.key_rps == 10 && p.key_burst == 20);
	assert_int_equal(p.key_max_concurrent, 4);
	hark_server_config_free(c);
	unlink(path);
	free(path);

	/* an unknown field and a wrong type are named */
	static const char *const bad[][2] = {
		{"{\"wokers\": 4}", "wokers"},
		{"{\"workers\": \"4\"}", "workers"},
		{"{\"anon_rate\": {\"rps\": 1, \"brust\": 2}}", "anon_rate.brust"},
		{"{\"listen\": \"nowhere\"}", "listen"},
		{"{\"max_body_mb\": 0}", "max_body_mb"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = hark_server_default_params();
		path = write_tmp(bad[i][0]);
		err[0] = '\0';
		assert_int_equal(hark_server_config_load(path, &p, &c, err, sizeof(err)),
				 HARK_ERR_INVALID_ARG);
		assert_non_null(strstr(err, bad[i][1]));
		assert_null(c);
		unlink(path);
		free(path);
	}
	path = write_tmp("{\"workers\": ");
	assert_int_equal(hark_server_config_load(path, &p, &c, err, sizeof(err)), HARK_ERR_FORMAT);
	unlink(path);
	free(path);
	assert_int_equal(hark_server_config_load("/nonexistent/hark.json", &p, &c, err, sizeof(err)),
			 HARK_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fanout_order_and_isolation),
		cmocka_unit_test(test_inbox_cap_and_final),
		cmocka_unit_test(test_listen_parse),
		cmocka_unit_test(test_config_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
