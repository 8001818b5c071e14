/*
 * Integration tests of the LLM client (src/llm/llm.h) against the real
 * hark-llm-sim binary over loopback: global RPM/TPM limits shared by
 * several threads (checked window by window in the sim's request log),
 * Retry-After honoured on injected and real 429s, the reply cache (chat,
 * TTL, embeddings per text), structured output repair and clean failures,
 * transport faults retried, 400/401 never retried, cost and token totals
 * equal to the simulator's own usage counts (per job and per API key too),
 * streaming equal to non-streaming, cancellation, model choice by context
 * window, the store-backed limiter shared by two processes (and several
 * processes opening one fresh store at once). Every
 * expectation comes from the simulator's stats or request log; times run
 * scaled (the sim and the client use the same time scale) so minutes of
 * provider time take seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hark/hark.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "llm/tokens.h"
#include "store/store.h"

#include "llmtest_util.h"

/* ------------------------------------------------------------- helpers --- */

#define SCHEMA_ITEMS                                                                       \
	"{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"minItems\":1,"   \
	"\"items\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"       \
	"\"summary\":{\"type\":\"string\"}},\"required\":[\"name\",\"summary\"],"              \
	"\"additionalProperties\":false}}},\"required\":[\"items\"],"                          \
	"\"additionalProperties\":false}"

static void on_alarm(int sig)
{
	static const char msg[] = "\ntest_llm_client: a test ran over its time limit\n";

	(void)sig;
	lt_kill_all(); /* no simulator outlives the test program */
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

/* Every test: a watchdog and the sim binary (skip without it). */
static int begin(double limit_s)
{
	signal(SIGALRM, on_alarm);
	alarm((unsigned)limit_s);
	lt_clean_env();
	return lt_sim_bin() != NULL;
}

#define REQUIRE_SIM(limit)                                                            \
	do {                                                                          \
		if (!begin(limit)) {                                                  \
			fprintf(stderr, "hark-llm-sim not built ($HARK_SIM_BIN): skipped\n"); \
			skip();                                                       \
		}                                                                     \
	} while (0)

/* A batch of one-message chat requests whose contents the batch owns. */
struct rb {
	size_t n;
	char **user;
	struct hark_llm_msg *msgs;
	struct hark_llm_request *reqs;
	struct hark_llm_result *res;
};

static void rb_init(struct rb *b, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	b->user = calloc(n, sizeof(char *));
	b->msgs = calloc(n, sizeof(*b->msgs));
	b->reqs = calloc(n, sizeof(*b->reqs));
	b->res = calloc(n, sizeof(*b->res));
	assert_non_null(b->user);
	assert_non_null(b->msgs);
	assert_non_null(b->reqs);
	assert_non_null(b->res);
}

/* Item i: one user message (content taken over), task may be NULL. */
static void rb_set(struct rb *b, size_t i, char *content, const char *task)
{
	free(b->user[i]);
	b->user[i] = content;
	b->msgs[i].role = "user";
	b->msgs[i].content = content;
	memset(&b->reqs[i], 0, sizeof(b->reqs[i]));
	b->reqs[i].task = task;
	b->reqs[i].messages = &b->msgs[i];
	b->reqs[i].n_messages = 1;
}

static void rb_free(struct rb *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->user[i]);
		hark_llm_result_clear(&b->res[i]);
	}
	free(b->user);
	free(b->msgs);
	free(b->reqs);
	free(b->res);
	memset(b, 0, sizeof(*b));
}

static struct hark_llm *mk_client(const struct hark_llm_config *cfg, struct hark_store *st,
				  int no_cache, int shared)
{
	struct hark_llm_params p = hark_llm_default_params();
	struct hark_llm *c = NULL;
	char err[256] = "";
	int rc;

	p.config = cfg;
	p.store = st;
	p.no_cache = no_cache;
	p.shared_limiter = shared;
	p.seed = 12345;
	rc = hark_llm_init(&p, &c, err, sizeof(err));
	if (rc != HARK_OK)
		fprintf(stderr, "hark_llm_init: %d %s\n", rc, err);
	assert_int_equal(rc, HARK_OK);
	assert_non_null(c);
	return c;
}

static struct hark_store *mk_store(const char *dir)
{
	struct hark_store_params sp = hark_store_default_params();
	struct hark_store *st = NULL;
	char err[256] = "";
	int rc;

	sp.sync_full = 0;
	rc = hark_store_open(dir, &sp, &st, err, sizeof(err));
	if (rc != HARK_OK)
		fprintf(stderr, "hark_store_open(%s): %s\n", dir, err);
	assert_int_equal(rc, HARK_OK);
	return st;
}

static int64_t stat_requests(const struct lt_sim *s)
{
	json_t *st = lt_sim_stats(s);
	int64_t n;

	assert_non_null(st);
	n = (int64_t)lt_jnum(st, "requests");
	json_decref(st);
	return n;
}

/* 1 when content is JSON matching SCHEMA_ITEMS (checked here, not by the
 * library's validator). */
static int valid_items_reply(const char *content)
{
	json_t *v, *items, *it;
	size_t i;
	int ok = 1;

	if (!content)
		return 0;
	v = json_loads(content, 0, NULL);
	items = json_object_get(v, "items");
	if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_array(items) ||
	    json_array_size(items) < 1)
		ok = 0;
	json_array_foreach(items, i, it) {
		if (!json_is_object(it) || json_object_size(it) != 2 ||
		    !json_is_string(json_object_get(it, "name")) ||
		    !json_is_string(json_object_get(it, "summary")))
			ok = 0;
	}
	if (!ok)
		fprintf(stderr, "not a valid reply for the schema: %s\n", content);
	json_decref(v);
	return ok;
}

/* "k" words of 5 letters (1 token each), deterministic per seed. */
static char *words(size_t k, unsigned seed)
{
	char *s = malloc(k * 6 + 1);
	size_t n = 0;

	assert_non_null(s);
	for (size_t i = 0; i < k; i++) {
		unsigned x = seed * 2654435761u + (unsigned)i * 40503u;

		for (int j = 0; j < 5; j++) {
			s[n++] = (char)('a' + x % 26);
			x /= 26;
		}
		s[n++] = ' ';
	}
	s[n] = 0;
	return s;
}

static const char *entry_str(const json_t *e, const char *k)
{
	const char *s = json_string_value(json_object_get(e, k));

	return s ? s : "";
}

/* ------------------------------------------------ 1. RPM/TPM limiter ---- */

struct run_arg {
	struct hark_llm *c;
	const struct hark_llm_request *reqs;
	struct hark_llm_result *res;
	size_t n;
	int rc;
};

static void *run_thread(void *p)
{
	struct run_arg *a = p;

	a->rc = hark_llm_run(a->c, a->reqs, a->n, a->res, NULL);
	return NULL;
}

static void test_limiter_rpm_tpm(void **state)
{
	const double scale = 30, rpm = 60, tpm = 20000, window = 60;
	const size_t n = 240, n_threads = 3;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb b;
	pthread_t th[3];
	struct run_arg args[3];
	json_t *log, *ok_entries;
	size_t max_req = 0, n_ok;
	double max_tok = 0, sum_tok = 0, t_first = 1e300, t_last = -1e300, bound, span;
	size_t i;
	json_t *e;
	char *cj;

	(void)state;
	REQUIRE_SIM(120);
	assert_int_equal(lt_sim_start(&sim,
				      "{\"models\":[{\"name\":\"lim\",\"context_window\":16384,"
				      "\"max_output_tokens\":4096,\"rpm\":60,\"tpm\":20000}]}",
				      scale, NULL),
			 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"lim\",\"rpm\":%g,\"tpm\":%g,\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"limit_margin\":0.05}}",
		    sim.base_v1, rpm, tpm, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	/* half small (~60 tokens counted), half large (~700): the token limit
	 * binds in some windows, the request limit in others */
	rb_init(&b, n);
	for (i = 0; i < n; i++) {
		unsigned h = (unsigned)i * 2246822519u + 7u;
		int big = (h >> 7) & 1;
		size_t k = big ? 420 + h % 200 : 10 + h % 30;
		char *w = words(k, (unsigned)i);

		rb_set(&b, i, lt_fmt("Limiter item %zu says %s.", i, w), NULL);
		free(w);
		b.reqs[i].max_tokens = big ? 120 + (long)(h % 80) : 20 + (long)(h % 20);
	}
	for (i = 0; i < n_threads; i++) {
		size_t per = n / n_threads;

		args[i].c = c;
		args[i].reqs = b.reqs + i * per;
		args[i].res = b.res + i * per;
		args[i].n = per;
		args[i].rc = -1;
		assert_int_equal(pthread_create(&th[i], NULL, run_thread, &args[i]), 0);
	}
	for (i = 0; i < n_threads; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].rc, HARK_OK);
	}
	for (i = 0; i < n; i++) {
		if (b.res[i].err)
			fprintf(stderr, "item %zu: %s\n", i, b.res[i].error);
		assert_int_equal(b.res[i].err, HARK_OK);
		assert_non_null(b.res[i].content);
	}

	log = lt_sim_log(&sim);
	ok_entries = lt_log_filter(log, NULL, "lim", 200, "chat");
	n_ok = json_array_size(ok_entries);
	assert_int_equal(n_ok, n);
	assert_int_equal(lt_log_count(log, NULL, NULL, 429, NULL), 0);
	assert_int_equal(json_array_size(log), n); /* nothing but first tries */
	json_array_foreach(ok_entries, i, e) {
		double t = json_number_value(json_object_get(e, "t"));

		sum_tok += json_number_value(json_object_get(e, "counted_tokens"));
		if (t < t_first)
			t_first = t;
		if (t > t_last)
			t_last = t;
	}
	lt_window_max(ok_entries, window, &max_req, &max_tok);
	/* the fastest any client could go: every window full of requests or
	 * tokens */
	bound = fmax((ceil((double)n / rpm) - 1) * window, (ceil(sum_tok / tpm) - 1) * window);
	span = t_last - t_first;
	fprintf(stderr,
		"limiter: %zu requests, %.0f counted tokens, busiest 60 s window %zu requests / "
		"%.0f tokens, span %.1f sim s, lower bound %.1f (x%.2f)\n",
		n, sum_tok, max_req, max_tok, span, bound, bound > 0 ? span / bound : 0);
	assert_true(max_req <= (size_t)rpm);
	assert_true(max_tok <= tpm);
	assert_true(bound >= 180);
	assert_true(span >= bound - 1);
	assert_true(span < 1.5 * bound);

	json_decref(ok_entries);
	json_decref(log);
	rb_free(&b);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ---------------------------------------------- 2. Retry-After honoured -- */

static void test_retry_after_directive(void **state)
{
	const double scale = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb b;
	json_t *log, *arr;
	char id[65], id2[65];
	double t0, t1;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"sim-small\",\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"backoff_base_s\":0.05,\"backoff_max_s\":0.2}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	rb_init(&b, 2);
	rb_set(&b, 0,
	       lt_fmt("Please summarise the budget meeting. "
		      "[[sim:fail status=429 retry_after=7 times=1]]"),
	       NULL);
	rb_set(&b, 1, lt_fmt("An unrelated request that must not wait."), NULL);
	assert_int_equal(hark_llm_run(c, b.reqs, 2, b.res, NULL), HARK_OK);
	assert_int_equal(b.res[0].err, HARK_OK);
	assert_int_equal(b.res[0].attempts, 2);
	assert_non_null(b.res[0].content);
	assert_int_equal(b.res[1].err, HARK_OK);
	assert_int_equal(b.res[1].attempts, 1);

	lt_identity(b.user[0], id);
	lt_identity(b.user[1], id2);
	log = lt_sim_log(&sim);
	arr = lt_log_filter(log, id, NULL, -1, "chat");
	assert_int_equal(json_array_size(arr), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "status")),
			 429);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "status")),
			 200);
	t0 = json_number_value(json_object_get(json_array_get(arr, 0), "t"));
	t1 = json_number_value(json_object_get(json_array_get(arr, 1), "t"));
	fprintf(stderr, "retry-after 7: 429 at %.3f, retry at %.3f (+%.3f sim s)\n", t0, t1,
		t1 - t0);
	assert_true(t1 >= t0 + 7 - 0.05);
	assert_true(t1 < t0 + 7 + 3); /* not wildly later either */
	/* the other item was not held back by the 429 */
	assert_int_equal(lt_log_count(log, id2, NULL, 200, NULL), 1);
	json_decref(arr);
	json_decref(log);

	rb_free(&b);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* The sim's own limit (rpm 10) is tighter than the client's (100): real
 * 429s with Retry-After / retry-after-ms; every retry waits at least what
 * the sim's window demanded. */
static void test_retry_after_real_429(void **state)
{
	const double scale = 60, sim_rpm = 10;
	const size_t n = 25;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb b;
	json_t *log;
	size_t n429 = 0, checked = 0;
	double min_slack = 1e300;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim,
				      "{\"models\":[{\"name\":\"tight\",\"context_window\":16384,"
				      "\"max_output_tokens\":4096,\"rpm\":10}]}",
				      scale, NULL),
			 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"tight\",\"rpm\":100,\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"max_attempts\":6,\"backoff_base_s\":0.5,"
		    "\"backoff_max_s\":2}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	rb_init(&b, n);
	for (size_t i = 0; i < n; i++)
		rb_set(&b, i, lt_fmt("Real rate limit item %zu. Say something short.", i), NULL);
	assert_int_equal(hark_llm_run(c, b.reqs, n, b.res, NULL), HARK_OK);
	for (size_t i = 0; i < n; i++) {
		if (b.res[i].err)
			fprintf(stderr, "item %zu: %s\n", i, b.res[i].error);
		assert_int_equal(b.res[i].err, HARK_OK);
	}

	log = lt_sim_log(&sim);
	n429 = lt_log_count(log, NULL, "tight", 429, NULL);
	/* the first wave overruns the sim's budget, so real 429s happen; how
	 * many depends on timing (after the first, the client holds the model
	 * back until Retry-After), so only their presence is certain */
	assert_true(n429 >= 1);
	for (size_t i = 0; i < n; i++) {
		char id[65];
		json_t *arr, *e;
		size_t k;

		lt_identity(b.user[i], id);
		arr = lt_log_filter(log, id, NULL, -1, "chat");
		assert_true(json_array_size(arr) >= 1);
		assert_int_equal(json_integer_value(json_object_get(
					 json_array_get(arr, json_array_size(arr) - 1), "status")),
				 200);
		json_array_foreach(arr, k, e) {
			double t, next_t, need;

			if (json_integer_value(json_object_get(e, "status")) != 429)
				continue;
			assert_true(k + 1 < json_array_size(arr));
			t = json_number_value(json_object_get(e, "t"));
			next_t = json_number_value(json_object_get(json_array_get(arr, k + 1), "t"));
			need = lt_expected_wait(log, "tight", t, 60, sim_rpm, 0,
						json_number_value(json_object_get(e, "counted_tokens")));
			assert_true(need > 0); /* the 429 is explained by the sim's window */
			if (next_t < t + need - 0.05)
				fprintf(stderr,
					"item %zu: 429 at %.3f demanded %.3f s, retried after %.3f\n",
					i, t, need, next_t - t);
			assert_true(next_t >= t + need - 0.05);
			if (next_t - t - need < min_slack)
				min_slack = next_t - t - need;
			checked++;
		}
		json_decref(arr);
	}
	fprintf(stderr,
		"real 429s: %zu, every retry checked against its window (%zu), smallest margin "
		"%.3f sim s\n",
		n429, checked, min_slack);
	assert_int_equal(checked, n429);
	{
		struct hark_llm_totals t;

		hark_llm_get_totals(c, &t);
		assert_int_equal(t.rate_limited, (int64_t)n429);
	}
	json_decref(log);
	rb_free(&b);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------------------------------ 5. cache -- */

static void test_cache_chat(void **state)
{
	const double scale = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c, *c2, *nc;
	struct hark_store *st;
	struct hark_llm_result r1, r2, r3, r4, r5, r6, r7;
	struct hark_llm_msg m1 = {"user", "What did the team decide about the launch date?"};
	struct hark_llm_msg m2 = {"user", "What did the team decide about the launch budget?"};
	struct hark_llm_msg m3 = {"user", "[chunk c1] Maria Lopez owns the migration plan. "
					  "[chunk c2] Tom Baker reviews the budget."};
	struct hark_llm_request q1, q2, q3;
	struct hark_llm_usage u;
	char dir[256];
	int64_t n0;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "cache"), 0);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"sim-small\",\"context_window\":16384,\"price_in\":0.5,\"price_out\":1.5}]}],"
		    "\"llm\":{\"time_scale\":%g}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	st = mk_store(dir);
	c = mk_client(cfg, st, 0, 0);
	memset(&q1, 0, sizeof(q1));
	q1.messages = &m1;
	q1.n_messages = 1;
	q2 = q1;
	q2.messages = &m2;
	q3 = q1;
	q3.messages = &m3;
	q3.schema = SCHEMA_ITEMS;

	n0 = stat_requests(&sim);
	assert_int_equal(hark_llm_chat(c, &q1, &r1), HARK_OK);
	assert_int_equal(r1.cached, 0);
	assert_true(r1.tokens_in > 0 && r1.tokens_out > 0 && r1.cost_usd > 0);
	assert_int_equal(stat_requests(&sim), n0 + 1);

	/* the same request again: from the cache, no request */
	assert_int_equal(hark_llm_chat(c, &q1, &r2), HARK_OK);
	assert_int_equal(r2.cached, 1);
	assert_int_equal(r2.tokens_in, 0);
	assert_int_equal(r2.tokens_out, 0);
	assert_true(r2.cost_usd == 0);
	assert_int_equal(r2.attempts, 0);
	assert_string_equal(r2.content, r1.content);
	assert_string_equal(r2.model, r1.model);
	assert_int_equal(stat_requests(&sim), n0 + 1);

	/* another client on the same store: still cached (it lives in the store) */
	c2 = mk_client(cfg, st, 0, 0);
	assert_int_equal(hark_llm_chat(c2, &q1, &r3), HARK_OK);
	assert_int_equal(r3.cached, 1);
	assert_string_equal(r3.content, r1.content);
	assert_int_equal(stat_requests(&sim), n0 + 1);

	/* no_cache: a request is made (same reply: the sim is deterministic) */
	nc = mk_client(cfg, st, 1, 0);
	assert_int_equal(hark_llm_chat(nc, &q1, &r4), HARK_OK);
	assert_int_equal(r4.cached, 0);
	assert_int_equal(r4.attempts, 1);
	assert_true(r4.tokens_in > 0);
	assert_string_equal(r4.content, r1.content);
	assert_int_equal(stat_requests(&sim), n0 + 2);

	/* a changed prompt misses */
	assert_int_equal(hark_llm_chat(c, &q2, &r5), HARK_OK);
	assert_int_equal(r5.cached, 0);
	assert_int_equal(stat_requests(&sim), n0 + 3);
	assert_string_not_equal(r5.content, r1.content);

	/* structured replies are cached too (the validated JSON) */
	assert_int_equal(hark_llm_chat(c, &q3, &r6), HARK_OK);
	assert_int_equal(r6.cached, 0);
	assert_true(valid_items_reply(r6.content));
	assert_int_equal(hark_llm_chat(c2, &q3, &r7), HARK_OK);
	assert_int_equal(r7.cached, 1);
	assert_string_equal(r7.content, r6.content);
	assert_int_equal(stat_requests(&sim), n0 + 4);

	/* accounting: 4 requests, 3 cache hits, tokens only from requests */
	assert_int_equal(hark_store_llm_usage(st, NULL, NULL, NULL, 0, &u), HARK_OK);
	assert_int_equal(u.requests, 4);
	assert_int_equal(u.cached, 3);
	assert_int_equal(u.tokens_in, r1.tokens_in + r4.tokens_in + r5.tokens_in + r6.tokens_in);

	hark_llm_result_clear(&r1);
	hark_llm_result_clear(&r2);
	hark_llm_result_clear(&r3);
	hark_llm_result_clear(&r4);
	hark_llm_result_clear(&r5);
	hark_llm_result_clear(&r6);
	hark_llm_result_clear(&r7);
	hark_llm_free(nc);
	hark_llm_free(c2);
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	lt_rmrf(dir);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

static void test_cache_ttl(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_store *st;
	struct hark_llm_result r1, r2, r3;
	struct hark_llm_msg m1 = {"user", "Is the cache entry still fresh after its time to live?"};
	struct hark_llm_request q1;
	char dir[256];
	int64_t n0;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "ttl"), 0);
	/* time scale 1 here: the TTL is the same in real and provider seconds */
	assert_int_equal(lt_sim_start(&sim, NULL, 1, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"sim-small\",\"context_window\":16384}]}],\"llm\":{\"cache_ttl_s\":1}}",
		    sim.base_v1);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	st = mk_store(dir);
	c = mk_client(cfg, st, 0, 0);
	memset(&q1, 0, sizeof(q1));
	q1.messages = &m1;
	q1.n_messages = 1;

	n0 = stat_requests(&sim);
	assert_int_equal(hark_llm_chat(c, &q1, &r1), HARK_OK);
	assert_int_equal(hark_llm_chat(c, &q1, &r2), HARK_OK);
	assert_int_equal(r1.cached, 0);
	assert_int_equal(r2.cached, 1);
	assert_int_equal(stat_requests(&sim), n0 + 1);
	lt_sleep(1.4);
	assert_int_equal(hark_llm_chat(c, &q1, &r3), HARK_OK);
	assert_int_equal(r3.cached, 0);
	assert_int_equal(stat_requests(&sim), n0 + 2);
	assert_string_equal(r3.content, r1.content);

	hark_llm_result_clear(&r1);
	hark_llm_result_clear(&r2);
	hark_llm_result_clear(&r3);
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	lt_rmrf(dir);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

static void test_cache_embeddings(void **state)
{
	const double scale = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_store *st;
	struct hark_llm_embed_result e1, e2;
	const char *t3[] = {"the first sentence to embed", "a second, different one",
			    "and the third text"};
	/* the three again (shuffled) plus one new text */
	const char *t4[] = {"a second, different one", "a brand new fourth text",
			    "the first sentence to embed", "and the third text"};
	const size_t map4[] = {1, (size_t)-1, 0, 2};
	json_t *log, *emb;
	char dir[256];
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "emb"), 0);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		    "{\"name\":\"sim-small\",\"context_window\":16384},"
		    "{\"name\":\"sim-embed\",\"embedding\":true,\"price_in\":0.02}]}],"
		    "\"routes\":{\"embed\":[\"p/sim-embed\"]},\"llm\":{\"time_scale\":%g}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	st = mk_store(dir);
	c = mk_client(cfg, st, 0, 0);

	assert_int_equal(hark_llm_embed(c, NULL, t3, 3, NULL, NULL, &e1), HARK_OK);
	assert_int_equal(e1.cached, 0);
	assert_int_equal(e1.requests, 1);
	assert_true(e1.dim > 0);
	assert_true(e1.tokens_in > 0);
	assert_int_equal(hark_llm_embed(c, NULL, t4, 4, NULL, NULL, &e2), HARK_OK);
	assert_int_equal(e2.cached, 3);
	assert_int_equal(e2.requests, 1);
	assert_int_equal(e2.dim, e1.dim);
	for (size_t i = 0; i < 4; i++)
		if (map4[i] != (size_t)-1)
			assert_memory_equal(e2.vectors + i * e2.dim, e1.vectors + map4[i] * e1.dim,
					    e1.dim * sizeof(float));

	log = lt_sim_log(&sim);
	emb = lt_log_filter(log, NULL, "sim-embed", 200, "embeddings");
	assert_int_equal(json_array_size(emb), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(emb, 0), "n_inputs")),
			 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(emb, 1), "n_inputs")),
			 1);
	/* the billed tokens are the sim's count for the one new text */
	assert_int_equal(e2.tokens_in,
			 json_integer_value(json_object_get(json_array_get(emb, 1), "prompt_tokens")));
	json_decref(emb);
	json_decref(log);
	/* accounting: the billed tokens of both requests, and (docs/LLM.md:
	 * "every HTTP request and every cache hit is recorded") the hits */
	{
		struct hark_llm_usage u;

		assert_int_equal(hark_store_llm_usage(st, NULL, NULL, NULL, 0, &u), HARK_OK);
		assert_int_equal(u.requests, 2);
		assert_int_equal(u.tokens_in, e1.tokens_in + e2.tokens_in);
		if (u.cached < 1)
			fprintf(stderr, "embedding cache hits are not accounted in the store "
					"(llm.c hark_llm_embed records no call for them)\n");
		assert_true(u.cached >= 1);
	}

	hark_llm_embed_result_clear(&e1);
	hark_llm_embed_result_clear(&e2);
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	lt_rmrf(dir);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------- 6. invalid replies and faults ---- */

static void test_repair_and_faults(void **state)
{
	const double scale = 20;
	enum { BAD1, WRONG1, BADALL, PLAIN, MALFORMED, TRUNC, TIMEOUT, E400, SMALLMAX, N };
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb b;
	json_t *log;
	char id[N][65];
	char *cj;

	(void)state;
	REQUIRE_SIM(90);
	assert_int_equal(lt_sim_start(&sim, "{\"timeout_hold_s\":600}", scale, NULL), 0);
	/* provider timeouts of 20 provider seconds = 1 s real */
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"timeout_s\":20,"
		    "\"idle_timeout_s\":20,\"models\":[{\"name\":\"sim-small\","
		    "\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"backoff_base_s\":0.1,\"backoff_max_s\":0.5}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	rb_init(&b, N);
#define CHUNKS "[chunk a1] Priya Natarajan presented the quarterly numbers. " \
	       "[chunk a2] Jonas Berg will draft the hiring plan by Friday. "
	rb_set(&b, BAD1, lt_fmt(CHUNKS "Extract items. [[sim:bad_json times=1]]"), NULL);
	rb_set(&b, WRONG1, lt_fmt(CHUNKS "Extract items. [[sim:wrong_schema times=1]]"), NULL);
	rb_set(&b, BADALL, lt_fmt(CHUNKS "Extract items. [[sim:bad_json times=all]]"), NULL);
	rb_set(&b, PLAIN, lt_fmt(CHUNKS "Extract items, nothing injected."), NULL);
	rb_set(&b, MALFORMED, lt_fmt(CHUNKS "Extract. [[sim:malformed_body times=1]]"), NULL);
	rb_set(&b, TRUNC, lt_fmt(CHUNKS "Extract. [[sim:truncate times=1]]"), NULL);
	rb_set(&b, TIMEOUT, lt_fmt(CHUNKS "Extract. [[sim:timeout times=1]]"), NULL);
	rb_set(&b, E400, lt_fmt(CHUNKS "Extract. [[sim:fail status=400 times=1]]"), NULL);
	rb_set(&b, SMALLMAX, lt_fmt(CHUNKS "Extract with a tiny completion budget."), NULL);
#undef CHUNKS
	for (int i = 0; i < N; i++) {
		b.reqs[i].schema = SCHEMA_ITEMS;
		b.reqs[i].schema_name = "items";
		lt_identity(b.user[i], id[i]);
	}
	b.reqs[SMALLMAX].max_tokens = 6;
	assert_int_equal(hark_llm_run(c, b.reqs, N, b.res, NULL), HARK_OK);
	for (int i = 0; i < N; i++)
		fprintf(stderr, "item %d: err %d attempts %d repairs %d %s\n", i, b.res[i].err,
			b.res[i].attempts, b.res[i].repairs, b.res[i].error);
	log = lt_sim_log(&sim);

	/* bad JSON once: one repair request, then a valid reply */
	assert_int_equal(b.res[BAD1].err, HARK_OK);
	assert_int_equal(b.res[BAD1].repairs, 1);
	assert_int_equal(b.res[BAD1].attempts, 2);
	assert_true(valid_items_reply(b.res[BAD1].content));
	assert_int_equal(lt_log_count(log, id[BAD1], NULL, 200, "chat"), 2);
	/* a reply violating the schema: likewise */
	assert_int_equal(b.res[WRONG1].err, HARK_OK);
	assert_int_equal(b.res[WRONG1].repairs, 1);
	assert_true(valid_items_reply(b.res[WRONG1].content));
	assert_int_equal(lt_log_count(log, id[WRONG1], NULL, 200, "chat"), 2);
	/* always bad: a clean FORMAT failure after exactly one repair */
	assert_int_equal(b.res[BADALL].err, HARK_ERR_FORMAT);
	assert_null(b.res[BADALL].content);
	assert_true(strlen(b.res[BADALL].error) > 0);
	assert_int_equal(b.res[BADALL].repairs, 1);
	assert_int_equal(lt_log_count(log, id[BADALL], NULL, -1, "chat"), 2);
	assert_true(b.res[BADALL].tokens_in > 0); /* the bad replies were billed */
	/* the other items of the batch are unaffected */
	assert_int_equal(b.res[PLAIN].err, HARK_OK);
	assert_int_equal(b.res[PLAIN].repairs, 0);
	assert_int_equal(b.res[PLAIN].attempts, 1);
	assert_true(valid_items_reply(b.res[PLAIN].content));
	/* transport-level faults: retried, then answered */
	assert_int_equal(b.res[MALFORMED].err, HARK_OK);
	assert_int_equal(b.res[MALFORMED].repairs, 0);
	assert_true(valid_items_reply(b.res[MALFORMED].content));
	assert_int_equal(lt_log_count(log, id[MALFORMED], NULL, 200, "chat"), 2);
	assert_int_equal(b.res[TRUNC].err, HARK_OK);
	assert_true(valid_items_reply(b.res[TRUNC].content));
	assert_int_equal(b.res[TIMEOUT].err, HARK_OK);
	assert_true(valid_items_reply(b.res[TIMEOUT].content));
	assert_true(lt_log_count(log, id[TIMEOUT], NULL, 200, "chat") >= 1);
	/* a 400 is the caller's fault: not retried */
	assert_int_equal(b.res[E400].err, HARK_ERR_INVALID_ARG);
	assert_true(strlen(b.res[E400].error) > 0);
	assert_int_equal(b.res[E400].attempts, 1);
	assert_int_equal(lt_log_count(log, id[E400], NULL, -1, NULL), 1);
	/* a reply cut by a tiny max_tokens: repaired or a clean failure */
	if (b.res[SMALLMAX].err == HARK_OK) {
		assert_true(valid_items_reply(b.res[SMALLMAX].content));
	} else {
		assert_int_equal(b.res[SMALLMAX].err, HARK_ERR_FORMAT);
		assert_null(b.res[SMALLMAX].content);
		assert_true(strlen(b.res[SMALLMAX].error) > 0);
	}
	assert_true(b.res[SMALLMAX].repairs <= 1);
	assert_true(lt_log_count(log, id[SMALLMAX], NULL, -1, "chat") <= 2);
	/* the faulty first tries reached the sim: two requests each (the held
	 * "timeout" one is not in the log while the sim still holds it; the
	 * directive applies to the first arrival only, so the answered one was
	 * the second) */
	assert_int_equal(lt_log_count(log, id[MALFORMED], NULL, -1, "chat"), 2);
	assert_int_equal(lt_log_count(log, id[TRUNC], NULL, -1, "chat"), 2);
	assert_int_equal(lt_log_count(log, id[TIMEOUT], NULL, 200, "chat"), 1);
	/* llm.h: result.attempts = "HTTP requests made for this item": every
	 * request the sim saw, transport failures included */
	{
		int want[N];

		for (int i = 0; i < N; i++)
			want[i] = (int)lt_log_count(log, id[i], NULL, -1, "chat");
		want[TIMEOUT] = 2;
		for (int i = 0; i < N; i++)
			if (b.res[i].attempts != want[i])
				fprintf(stderr,
					"item %d: attempts %d, but %d requests were made "
					"(llm.c undercounts)\n",
					i, b.res[i].attempts, want[i]);
		for (int i = 0; i < N; i++)
			assert_int_equal(b.res[i].attempts, want[i]);
	}
	json_decref(log);

	rb_free(&b);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* 401 (wrong key): never retried; the right key works. */
static void test_401_not_retried(void **state)
{
	const double scale = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_result r;
	struct hark_llm_msg m = {"user", "Does the key work for this request?"};
	struct hark_llm_request q;
	json_t *log;
	char id[65];
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, "lt-right-key"), 0);
	memset(&q, 0, sizeof(q));
	q.messages = &m;
	q.n_messages = 1;
	lt_identity(m.content, id);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"api_key_env\":"
		    "\"LT_SIM_KEY\",\"models\":[{\"name\":\"sim-small\",\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"backoff_base_s\":0.05}}",
		    sim.base_v1, scale);

	setenv("LT_SIM_KEY", "lt-wrong-key", 1);
	cfg = lt_config(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_ERR_INVALID_ARG);
	assert_int_equal(r.attempts, 1);
	assert_null(r.content);
	assert_true(strlen(r.error) > 0);
	hark_llm_result_clear(&r);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	log = lt_sim_log(&sim);
	assert_int_equal(lt_log_count(log, NULL, NULL, 401, NULL), 1);
	assert_int_equal(json_array_size(log), 1);
	json_decref(log);

	setenv("LT_SIM_KEY", "lt-right-key", 1);
	cfg = lt_config(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_OK);
	assert_int_equal(r.attempts, 1);
	hark_llm_result_clear(&r);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	unsetenv("LT_SIM_KEY");
	free(cj);
	log = lt_sim_log(&sim);
	assert_int_equal(lt_log_count(log, id, NULL, 200, NULL), 1);
	json_decref(log);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------------------ 7. cost and tokens ---- */

struct mix_item {
	const char *task;
	const char *directive;
	int schema;
	const char *job;
	const char *key;
	int expect; /* expected err */
};

static void test_cost_totals(void **state)
{
	const double scale = 20;
	/* prices per 1M tokens */
	const double small_in = 0.15, small_out = 0.60, large_in = 2.5, large_out = 10.0,
		     embed_in = 0.02;
	static const struct mix_item mix[] = {
		{"plain", "", 0, "job-1", "key-A", HARK_OK},
		{"stream", "", 0, "job-1", "key-A", HARK_OK},
		{"plain", "", 1, "job-2", "key-A", HARK_OK},
		{"stream", "", 1, "job-2", "key-B", HARK_OK},
		{"plain", "[[sim:fail status=503 times=1]]", 0, "job-1", "key-B", HARK_OK},
		{"stream", "[[sim:fail status=503 times=2]]", 0, "job-3", "key-B", HARK_OK},
		{"plain", "[[sim:bad_json times=1]]", 1, "job-2", "key-A", HARK_OK},
		{"stream", "[[sim:bad_json times=1]]", 1, "job-3", "key-A", HARK_OK},
		{"plain", "[[sim:bad_json times=all]]", 1, "job-1", "key-B", HARK_ERR_FORMAT},
		{"stream", "[[sim:bad_json times=all]]", 1, "job-2", "key-B", HARK_ERR_FORMAT},
		{"plain", "[[sim:wrong_schema times=1]]", 1, "job-3", "key-A", HARK_OK},
		{"plain", "[[sim:fail status=400 times=1]]", 0, "job-3", "key-A",
		 HARK_ERR_INVALID_ARG},
		{"stream", "[[sim:truncate times=1]]", 0, "job-1", "key-A", HARK_OK},
		{"plain", "[[sim:truncate times=1]]", 1, "job-2", "key-B", HARK_OK},
		{"stream", "[[sim:malformed_body times=1]]", 0, "job-3", "key-B", HARK_OK},
		{"plain", "[[sim:malformed_body times=1]]", 0, NULL, NULL, HARK_OK},
		{"stream", "", 1, NULL, "key-A", HARK_OK},
		{"plain", "", 0, "job-1", NULL, HARK_OK},
		{"plain", "[[sim:fail status=429 retry_after=2 times=1]]", 0, "job-2", "key-A",
		 HARK_OK},
		{"stream", "[[sim:fail status=500 times=1]]", 1, "job-1", "key-B", HARK_OK},
	};
	const size_t n = sizeof(mix) / sizeof(mix[0]);
	const char *jobs[] = {"job-1", "job-2", "job-3", ""};
	const char *keys[] = {"key-A", "key-B", ""};
	const char *etexts[] = {"embedding one for job one", "embedding two for job one",
				"embedding three"};
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_store *st;
	struct rb b;
	struct hark_llm_embed_result er;
	struct hark_llm_totals tot;
	struct hark_llm_usage u;
	json_t *stats;
	int64_t sum_in = 0, sum_out = 0;
	double sum_cost = 0, sim_cost;
	double sin_, sout, lin, lout, ein;
	char dir[256];
	char *cj;

	(void)state;
	REQUIRE_SIM(90);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "cost"), 0);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":["
		    "{\"name\":\"plainp\",\"base_url\":\"%s\",\"models\":["
		    "{\"name\":\"sim-small\",\"context_window\":16384,\"price_in\":%g,"
		    "\"price_out\":%g},"
		    "{\"name\":\"sim-embed\",\"embedding\":true,\"price_in\":%g}]},"
		    "{\"name\":\"streamp\",\"base_url\":\"%s\",\"stream\":true,\"models\":["
		    "{\"name\":\"sim-large\",\"context_window\":131072,\"price_in\":%g,"
		    "\"price_out\":%g}]}],"
		    "\"routes\":{\"plain\":[\"plainp/sim-small\"],\"stream\":[\"streamp/sim-large\"],"
		    "\"embed\":[\"plainp/sim-embed\"]},"
		    "\"llm\":{\"time_scale\":%g,\"backoff_base_s\":0.1,\"backoff_max_s\":0.5}}",
		    sim.base_v1, small_in, small_out, embed_in, sim.base_v1, large_in, large_out,
		    scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	st = mk_store(dir);
	c = mk_client(cfg, st, 0, 0);

	rb_init(&b, n);
	for (size_t i = 0; i < n; i++) {
		rb_set(&b, i,
		       lt_fmt("[chunk k%zu] Item %zu: Helena Park asked Omar Said to book the "
			      "venue. %s",
			      i, i, mix[i].directive),
		       mix[i].task);
		b.reqs[i].schema = mix[i].schema ? SCHEMA_ITEMS : NULL;
		b.reqs[i].job_id = mix[i].job;
		b.reqs[i].key_id = mix[i].key;
	}
	assert_int_equal(hark_llm_run(c, b.reqs, n, b.res, NULL), HARK_OK);
	assert_int_equal(hark_llm_embed(c, NULL, etexts, 3, "job-1", "key-A", &er), HARK_OK);
	for (size_t i = 0; i < n; i++) {
		if (b.res[i].err != mix[i].expect)
			fprintf(stderr, "item %zu (%s %s): err %d (%s), expected %d\n", i, mix[i].task,
				mix[i].directive, b.res[i].err, b.res[i].error, mix[i].expect);
		assert_int_equal(b.res[i].err, mix[i].expect);
		sum_in += b.res[i].tokens_in;
		sum_out += b.res[i].tokens_out;
		sum_cost += b.res[i].cost_usd;
	}
	sum_in += er.tokens_in;
	sum_cost += er.cost_usd;

	stats = lt_sim_stats(&sim);
	assert_non_null(stats);
	hark_llm_get_totals(c, &tot);
	assert_int_equal(hark_store_llm_usage(st, NULL, NULL, NULL, 0, &u), HARK_OK);
	fprintf(stderr,
		"tokens in: results %lld totals %lld store %lld sim %.0f; out: results %lld "
		"totals %lld store %lld sim %.0f\n",
		(long long)sum_in, (long long)tot.tokens_in, (long long)u.tokens_in,
		lt_jnum(stats, "usage.prompt_tokens"), (long long)sum_out,
		(long long)tot.tokens_out, (long long)u.tokens_out,
		lt_jnum(stats, "usage.completion_tokens"));
	assert_int_equal(sum_in, (int64_t)lt_jnum(stats, "usage.prompt_tokens"));
	assert_int_equal(sum_out, (int64_t)lt_jnum(stats, "usage.completion_tokens"));
	assert_int_equal(tot.tokens_in, sum_in);
	assert_int_equal(tot.tokens_out, sum_out);
	assert_int_equal(u.tokens_in, sum_in);
	assert_int_equal(u.tokens_out, sum_out);
	/* every HTTP request the client made reached the sim and was recorded */
	assert_int_equal(tot.requests, (int64_t)lt_jnum(stats, "requests"));
	assert_int_equal(u.requests, tot.requests);

	/* cost = the sim's per-model usage x the configured prices */
	sin_ = lt_jnum(stats, "models.sim-small.usage.prompt_tokens");
	sout = lt_jnum(stats, "models.sim-small.usage.completion_tokens");
	lin = lt_jnum(stats, "models.sim-large.usage.prompt_tokens");
	lout = lt_jnum(stats, "models.sim-large.usage.completion_tokens");
	ein = lt_jnum(stats, "models.sim-embed.usage.prompt_tokens");
	assert_true(sin_ > 0 && sout > 0 && lin > 0 && lout > 0 && ein > 0);
	sim_cost = (sin_ * small_in + sout * small_out + lin * large_in + lout * large_out +
		    ein * embed_in) /
		   1e6;
	fprintf(stderr, "cost: expected %.9f results %.9f totals %.9f store %.9f\n", sim_cost,
		sum_cost, tot.cost_usd, u.cost_usd);
	assert_true(fabs(sum_cost - sim_cost) <= 1e-9 * sim_cost);
	assert_true(fabs(tot.cost_usd - sim_cost) <= 1e-9 * sim_cost);
	assert_true(fabs(u.cost_usd - sim_cost) <= 1e-9 * sim_cost);

	/* per job and per API key (the embedding call belongs to job-1 / key-A) */
	for (size_t j = 0; j < sizeof(jobs) / sizeof(jobs[0]); j++) {
		int64_t ti = 0, to = 0;
		double co = 0;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(mix[i].job ? mix[i].job : "", jobs[j]))
				continue;
			ti += b.res[i].tokens_in;
			to += b.res[i].tokens_out;
			co += b.res[i].cost_usd;
		}
		if (!strcmp(jobs[j], "job-1")) {
			ti += er.tokens_in;
			co += er.cost_usd;
		}
		assert_int_equal(hark_store_llm_usage(st, jobs[j], NULL, NULL, 0, &u), HARK_OK);
		assert_int_equal(u.tokens_in, ti);
		assert_int_equal(u.tokens_out, to);
		assert_true(fabs(u.cost_usd - co) <= 1e-9 * (co > 0 ? co : 1));
	}
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		int64_t ti = 0, to = 0;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(mix[i].key ? mix[i].key : "", keys[k]))
				continue;
			ti += b.res[i].tokens_in;
			to += b.res[i].tokens_out;
		}
		if (!strcmp(keys[k], "key-A"))
			ti += er.tokens_in;
		assert_int_equal(hark_store_llm_usage(st, NULL, keys[k], NULL, 0, &u), HARK_OK);
		assert_int_equal(u.tokens_in, ti);
		assert_int_equal(u.tokens_out, to);
	}
	/* per model */
	assert_int_equal(hark_store_llm_usage(st, NULL, NULL, "streamp/sim-large", 0, &u), HARK_OK);
	assert_int_equal(u.tokens_in, (int64_t)lin);
	assert_int_equal(u.tokens_out, (int64_t)lout);

	json_decref(stats);
	hark_llm_embed_result_clear(&er);
	rb_free(&b);
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	lt_rmrf(dir);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* --------------------------------------------------------- 8. streaming -- */

static void test_streaming_identical(void **state)
{
	const double scale = 20;
	const size_t n = 6;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb plain, streamed;
	json_t *log;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim, "{\"stream_chunk_s\":0.05}", scale, NULL), 0);
	cj = lt_fmt("{\"providers\":["
		    "{\"name\":\"plainp\",\"base_url\":\"%s\",\"models\":[{\"name\":\"sim-small\","
		    "\"context_window\":16384}]},"
		    "{\"name\":\"streamp\",\"base_url\":\"%s\",\"stream\":true,\"models\":["
		    "{\"name\":\"sim-small\",\"context_window\":16384}]}],"
		    "\"routes\":{\"plain\":[\"plainp/sim-small\"],\"stream\":[\"streamp/sim-small\"]},"
		    "\"llm\":{\"time_scale\":%g}}",
		    sim.base_v1, sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	rb_init(&plain, n);
	rb_init(&streamed, n);
	for (size_t i = 0; i < n; i++) {
		char *w = words(30 + 40 * i, (unsigned)(i + 100));
		const char *text =
			i == 5 ? "Unicode too: Zoë and Håkon met in Zürich — they agreed on €5k." : w;

		rb_set(&plain, i,
		       lt_fmt("[chunk s%zu] Meeting %zu: Ana Silva said %s. Then Ben Ode replied.", i,
			      i, text),
		       "plain");
		rb_set(&streamed, i, strdup(plain.user[i]), "stream");
		free(w);
		if (i % 2) {
			/* same schema name too: it is part of the request (and of the
			 * sim's reply seed); by default it would be the task name */
			plain.reqs[i].schema = SCHEMA_ITEMS;
			streamed.reqs[i].schema = SCHEMA_ITEMS;
			plain.reqs[i].schema_name = "items";
			streamed.reqs[i].schema_name = "items";
		}
		if (i == 4) {
			plain.reqs[i].max_tokens = 40;
			streamed.reqs[i].max_tokens = 40;
		}
	}
	assert_int_equal(hark_llm_run(c, plain.reqs, n, plain.res, NULL), HARK_OK);
	assert_int_equal(hark_llm_run(c, streamed.reqs, n, streamed.res, NULL), HARK_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(plain.res[i].err, HARK_OK);
		assert_int_equal(streamed.res[i].err, HARK_OK);
		assert_string_equal(plain.res[i].model, "plainp/sim-small");
		assert_string_equal(streamed.res[i].model, "streamp/sim-small");
		assert_string_equal(streamed.res[i].content, plain.res[i].content);
		assert_int_equal(streamed.res[i].tokens_in, plain.res[i].tokens_in);
		assert_int_equal(streamed.res[i].tokens_out, plain.res[i].tokens_out);
		assert_true(plain.res[i].tokens_out > 0);
		if (i % 2)
			assert_true(valid_items_reply(streamed.res[i].content));
	}
	log = lt_sim_log(&sim);
	{
		json_t *all = lt_log_filter(log, NULL, "sim-small", 200, "chat"), *e;
		size_t k, n_stream = 0;

		assert_int_equal(json_array_size(all), 2 * n);
		json_array_foreach(all, k, e) n_stream +=
			(size_t)json_integer_value(json_object_get(e, "stream"));
		assert_int_equal(n_stream, n);
		json_decref(all);
	}
	json_decref(log);
	rb_free(&plain);
	rb_free(&streamed);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------------------------------ 9. cancel -- */

struct cancel_state {
	double t0;
	double after;
	size_t progress_calls;
};

static int cancel_cb(void *ud)
{
	struct cancel_state *s = ud;

	return lt_now() - s->t0 >= s->after;
}

static void progress_cb(size_t done, size_t total, void *ud)
{
	struct cancel_state *s = ud;

	assert_true(done <= total);
	s->progress_calls++;
}

static void test_cancel(void **state)
{
	const double scale = 20;
	const size_t n = 12;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct rb b;
	struct hark_llm_callbacks cb;
	struct cancel_state cs;
	struct hark_llm_result r;
	struct hark_llm_msg m = {"user", "A quick request after the cancel."};
	struct hark_llm_request q;
	double t_run, t_free;
	int rc;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"timeout_s\":3000,"
		    "\"idle_timeout_s\":3000,\"models\":[{\"name\":\"sim-small\","
		    "\"context_window\":16384,\"max_concurrency\":8}]}],"
		    "\"llm\":{\"time_scale\":%g}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);

	/* 600 provider seconds each (30 s real): only a cancel ends this soon;
	 * 8 are in flight, 4 still queued when it comes */
	rb_init(&b, n);
	for (size_t i = 0; i < n; i++)
		rb_set(&b, i, lt_fmt("Slow item %zu. [[sim:delay s=600]]", i), NULL);
	memset(&cs, 0, sizeof(cs));
	cs.t0 = lt_now();
	cs.after = 0.5;
	memset(&cb, 0, sizeof(cb));
	cb.cancel = cancel_cb;
	cb.progress = progress_cb;
	cb.user_data = &cs;
	rc = hark_llm_run(c, b.reqs, n, b.res, &cb);
	t_run = lt_now() - cs.t0;
	fprintf(stderr, "cancel: run returned %d after %.2f s real\n", rc, t_run);
	assert_int_equal(rc, HARK_ERR_CANCELED);
	assert_true(t_run < 0.5 + 2.0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(b.res[i].err, HARK_ERR_CANCELED);
		assert_null(b.res[i].content);
	}
	assert_true(cs.progress_calls <= n);

	/* the client is still usable */
	memset(&q, 0, sizeof(q));
	q.messages = &m;
	q.n_messages = 1;
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_OK);
	hark_llm_result_clear(&r);

	t_free = lt_now();
	hark_llm_free(c);
	assert_true(lt_now() - t_free < 2.0);
	rb_free(&b);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ----------------------------------------------- 10. model by context ---- */

static void test_model_autoselect(void **state)
{
	const double scale = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_result r;
	struct hark_llm_msg m;
	struct hark_llm_request q;
	json_t *log, *arr;
	char *w, *big, *huge;
	char id[65];
	int64_t n0;
	char *cj;

	(void)state;
	REQUIRE_SIM(60);
	assert_int_equal(lt_sim_start(&sim, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		    "{\"name\":\"sim-small\",\"context_window\":16384,\"max_output_tokens\":4096},"
		    "{\"name\":\"sim-large\",\"context_window\":131072,\"max_output_tokens\":8192}]}],"
		    "\"routes\":{\"default\":[\"p/sim-small\",\"p/sim-large\"]},"
		    "\"llm\":{\"time_scale\":%g}}",
		    sim.base_v1, scale);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg, NULL, 0, 0);
	memset(&q, 0, sizeof(q));
	q.messages = &m;
	q.n_messages = 1;
	m.role = "user";

	m.content = "A short question that fits the small model.";
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_OK);
	assert_string_equal(r.model, "p/sim-small");
	hark_llm_result_clear(&r);

	w = words(20000, 3);
	big = lt_fmt("Summarise this long transcript. %s", w);
	free(w);
	m.content = big;
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_OK);
	assert_string_equal(r.model, "p/sim-large");
	assert_true(r.tokens_in > 16384);
	hark_llm_result_clear(&r);
	lt_identity(big, id);
	log = lt_sim_log(&sim);
	arr = lt_log_filter(log, id, NULL, -1, "chat");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(entry_str(json_array_get(arr, 0), "model"), "sim-large");
	assert_true(json_integer_value(json_object_get(json_array_get(arr, 0), "prompt_tokens")) >
		    16384);
	json_decref(arr);
	json_decref(log);

	/* too big for every model: refused without a request */
	n0 = stat_requests(&sim);
	w = words(140000, 4);
	huge = lt_fmt("Summarise this enormous transcript. %s", w);
	free(w);
	m.content = huge;
	assert_int_equal(hark_llm_chat(c, &q, &r), HARK_ERR_LIMIT);
	assert_int_equal(r.attempts, 0);
	assert_null(r.content);
	assert_true(strlen(r.error) > 0);
	hark_llm_result_clear(&r);
	assert_int_equal(stat_requests(&sim), n0);

	free(big);
	free(huge);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------ 11. limiter shared by processes ---- */

/* Child: its own store handle and client; exit code = failed items. */
static void shared_child(const char *cfg_text, const char *dir, int shared, int who, size_t n)
{
	struct hark_llm_config *cfg = lt_config(cfg_text);
	struct hark_store_params sp = hark_store_default_params();
	struct hark_store *st = NULL;
	struct hark_llm_params p = hark_llm_default_params();
	struct hark_llm *c = NULL;
	struct rb b;
	char err[256];
	int failed = 0;

	alarm(60);
	sp.sync_full = 0;
	if (!cfg)
		_exit(100);
	if (hark_store_open(dir, &sp, &st, err, sizeof(err)) != HARK_OK) {
		fprintf(stderr, "child %d: hark_store_open: %s\n", who, err);
		_exit(104);
	}
	p.config = cfg;
	p.store = st;
	p.shared_limiter = shared;
	p.no_cache = 1;
	p.seed = (uint64_t)who + 1;
	if (hark_llm_init(&p, &c, err, sizeof(err)) != HARK_OK)
		_exit(101);
	memset(&b, 0, sizeof(b));
	b.n = n;
	b.user = calloc(n, sizeof(char *));
	b.msgs = calloc(n, sizeof(*b.msgs));
	b.reqs = calloc(n, sizeof(*b.reqs));
	b.res = calloc(n, sizeof(*b.res));
	if (!b.user || !b.msgs || !b.reqs || !b.res)
		_exit(102);
	for (size_t i = 0; i < n; i++) {
		b.user[i] = lt_fmt("Process %d item %zu (shared %d): a short request.", who, i,
				   shared);
		b.msgs[i].role = "user";
		b.msgs[i].content = b.user[i];
		b.reqs[i].messages = &b.msgs[i];
		b.reqs[i].n_messages = 1;
		b.reqs[i].max_tokens = 30;
	}
	if (hark_llm_run(c, b.reqs, n, b.res, NULL) != HARK_OK)
		_exit(103);
	for (size_t i = 0; i < n; i++)
		failed += b.res[i].err != HARK_OK;
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	_exit(failed > 99 ? 99 : failed);
}

/* Runs two children; returns how many of them exited 0. */
static int run_two(const char *cfg_text, const char *dir, int shared, size_t n)
{
	pid_t pid[2];
	int ok = 0;

	fflush(stdout);
	fflush(stderr);
	for (int k = 0; k < 2; k++) {
		pid[k] = fork();
		assert_true(pid[k] >= 0);
		if (pid[k] == 0)
			shared_child(cfg_text, dir, shared, k, n);
	}
	for (int k = 0; k < 2; k++) {
		int status = 0;

		waitpid(pid[k], &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
		else
			fprintf(stderr, "child %d: status 0x%x\n", k, status);
	}
	return ok;
}

static void test_shared_limiter_processes(void **state)
{
	const double scale = 30, rpm = 30;
	const size_t per_child = 40;
	struct lt_sim sim;
	json_t *log, *ok_entries, *stats;
	size_t max_req = 0;
	double max_tok = 0;
	char dir[256], dir2[256];
	char *cj;

	(void)state;
	REQUIRE_SIM(120);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "shared"), 0);
	assert_int_equal(lt_mkdtemp(dir2, sizeof(dir2), "local"), 0);
	assert_int_equal(lt_sim_start(&sim,
				      "{\"models\":[{\"name\":\"shared\",\"context_window\":16384,"
				      "\"max_output_tokens\":4096,\"rpm\":30}]}",
				      scale, NULL),
			 0);
	/* max_attempts 1: a 429 would fail the item, so the children's exit
	 * codes also tell whether the sim ever refused one */
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":[{\"name\":"
		    "\"shared\",\"rpm\":%g,\"context_window\":16384}]}],"
		    "\"llm\":{\"time_scale\":%g,\"limit_margin\":0.05,\"max_attempts\":1}}",
		    sim.base_v1, rpm, scale);

	/* the store-backed limiter: two processes, one budget (the data
	 * directory exists already, as it does for workers started after the
	 * first; opening a fresh one from two processes at once is
	 * test_store_fresh_open_race's subject) */
	hark_store_close(mk_store(dir));
	hark_store_close(mk_store(dir2));
	assert_int_equal(run_two(cj, dir, 1, per_child), 2);
	log = lt_sim_log(&sim);
	ok_entries = lt_log_filter(log, NULL, "shared", 200, "chat");
	assert_int_equal(json_array_size(ok_entries), 2 * per_child);
	assert_int_equal(lt_log_count(log, NULL, NULL, 429, NULL), 0);
	lt_window_max(ok_entries, 60, &max_req, &max_tok);
	fprintf(stderr, "shared limiter: %zu requests from 2 processes, busiest window %zu (rpm %g)\n",
		json_array_size(ok_entries), max_req, rpm);
	assert_true(max_req <= (size_t)rpm);
	assert_true(max_req >= (size_t)rpm - 2); /* and the budget was used */
	json_decref(ok_entries);
	json_decref(log);

	/* control: per-process limiters each spend the full budget, so together
	 * they overrun the provider (this is what the shared limiter prevents) */
	assert_int_equal(lt_sim_post(&sim, "/_sim/reset", "{}"), 200);
	lt_sleep(70.0 / scale); /* let the sim's window empty */
	run_two(cj, dir2, 0, (size_t)rpm);
	stats = lt_sim_stats(&sim);
	assert_non_null(stats);
	fprintf(stderr, "local limiters: the sim rate-limited %.0f requests\n",
		lt_jnum(stats, "rate_limited"));
	assert_true(lt_jnum(stats, "rate_limited") > 0);
	json_decref(stats);

	free(cj);
	lt_rmrf(dir);
	lt_rmrf(dir2);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* Several processes opening the same fresh data directory at once (workers
 * started together, each with the store-backed limiter): every open must
 * succeed (the busy timeout is 10 s; the race is over in milliseconds). */
static void test_store_fresh_open_race(void **state)
{
	const int rounds = 60, procs = 3;
	int failed = 0;

	(void)state;
	signal(SIGALRM, on_alarm);
	alarm(120);
	for (int r = 0; r < rounds; r++) {
		char dir[256];
		pid_t pid[3];

		assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "race"), 0);
		fflush(stderr);
		for (int k = 0; k < procs; k++) {
			pid[k] = fork();
			assert_true(pid[k] >= 0);
			if (pid[k] == 0) {
				struct hark_store_params sp = hark_store_default_params();
				struct hark_store *st = NULL;
				struct hark_llm_usage u;
				char err[256] = "";
				double t0 = lt_now();

				if (hark_store_open(dir, &sp, &st, err, sizeof(err)) != HARK_OK) {
					fprintf(stderr, "round %d process %d: open failed after %.3f s: %s\n",
						r, k, lt_now() - t0, err);
					_exit(1);
				}
				/* then write at once, as a limiter does */
				for (int i = 0; i < 5; i++) {
					int admitted = 0;
					double retry_at = 0;
					int64_t ticket = 0;

					if (hark_store_llm_rate_acquire(st, "p/m", 1000, 0, 60, 10,
									(double)i, &admitted,
									&retry_at, &ticket) != HARK_OK)
						_exit(2);
				}
				if (hark_store_llm_usage(st, NULL, NULL, NULL, 0, &u) != HARK_OK)
					_exit(3);
				hark_store_close(st);
				_exit(0);
			}
		}
		for (int k = 0; k < procs; k++) {
			int status = 0;

			waitpid(pid[k], &status, 0);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed++;
		}
		lt_rmrf(dir);
	}
	if (failed)
		fprintf(stderr,
			"%d of %d concurrent opens of a fresh store failed (src/store/store_sqlite.c "
			"init_db: PRAGMA journal_mode=WAL answers SQLITE_BUSY without waiting)\n",
			failed, rounds * procs);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: it forks, and nothing threaded has run yet */
		cmocka_unit_test_teardown(test_shared_limiter_processes, lt_teardown),
		cmocka_unit_test_teardown(test_store_fresh_open_race, lt_teardown),
		cmocka_unit_test_teardown(test_limiter_rpm_tpm, lt_teardown),
		cmocka_unit_test_teardown(test_retry_after_directive, lt_teardown),
		cmocka_unit_test_teardown(test_retry_after_real_429, lt_teardown),
		cmocka_unit_test_teardown(test_cache_chat, lt_teardown),
		cmocka_unit_test_teardown(test_cache_ttl, lt_teardown),
		cmocka_unit_test_teardown(test_cache_embeddings, lt_teardown),
		cmocka_unit_test_teardown(test_repair_and_faults, lt_teardown),
		cmocka_unit_test_teardown(test_401_not_retried, lt_teardown),
		cmocka_unit_test_teardown(test_cost_totals, lt_teardown),
		cmocka_unit_test_teardown(test_streaming_identical, lt_teardown),
		cmocka_unit_test_teardown(test_cancel, lt_teardown),
		cmocka_unit_test_teardown(test_model_autoselect, lt_teardown),
	};

	if (getenv("LT_FILTER")) /* e.g. LT_FILTER=test_cache* to run a subset */
		cmocka_set_test_filter(getenv("LT_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
