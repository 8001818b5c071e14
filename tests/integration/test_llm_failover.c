/*
 * Integration tests of the LLM client's circuit breakers and failover
 * against real hark-llm-sim processes over loopback: a model made to answer
 * 503 (POST /_sim/fail) opens its breaker after breaker_failures
 * consecutive failures and items move to the next model of the route; after
 * /_sim/recover and breaker_open_s one probe goes back (half-open, exactly
 * one in flight while the others keep using the fallback) and, once it
 * succeeds, new items use the preferred model again; a failed probe
 * re-opens the breaker; a whole provider killed with SIGKILL (connection
 * refused) fails over the same way and fails back once it is restarted on
 * the same port. Which model answered is checked both in the results and
 * in the simulators' request logs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hark/hark.h"
#include "llm/breaker.h"
#include "llm/config.h"
#include "llm/llm.h"

#include "llmtest_util.h"

#define SIM_TWO_MODELS                                                                    \
	"{\"models\":[{\"name\":\"m-a\",\"context_window\":16384,\"max_output_tokens\":4096}," \
	"{\"name\":\"m-b\",\"context_window\":16384,\"max_output_tokens\":4096}]}"

static void on_alarm(int sig)
{
	static const char msg[] = "\ntest_llm_failover: a test ran over its time limit\n";

	(void)sig;
	lt_kill_all(); /* no simulator outlives the test program */
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

#define REQUIRE_SIM(limit)                                                                  \
	do {                                                                                \
		signal(SIGALRM, on_alarm);                                                  \
		alarm(limit);                                                               \
		lt_clean_env();                                                             \
		if (!lt_sim_bin()) {                                                        \
			fprintf(stderr, "hark-llm-sim not built ($HARK_SIM_BIN): skipped\n"); \
			skip();                                                             \
		}                                                                           \
	} while (0)

static struct hark_llm *mk_client(const struct hark_llm_config *cfg)
{
	struct hark_llm_params p = hark_llm_default_params();
	struct hark_llm *c = NULL;
	char err[256] = "";
	int rc;

	p.config = cfg;
	p.seed = 99;
	rc = hark_llm_init(&p, &c, err, sizeof(err));
	if (rc != HARK_OK)
		fprintf(stderr, "hark_llm_init: %s\n", err);
	assert_int_equal(rc, HARK_OK);
	return c;
}

/* One request with a fresh content; returns its result (caller clears)
 * after checking it succeeded. */
static int seq;

static void ask(struct hark_llm *c, const char *extra, struct hark_llm_result *r)
{
	char content[256];
	struct hark_llm_msg m = {"user", content};
	struct hark_llm_request q;

	snprintf(content, sizeof(content), "Failover probe number %d asks for a reply. %s", ++seq,
		 extra ? extra : "");
	memset(&q, 0, sizeof(q));
	q.messages = &m;
	q.n_messages = 1;
	hark_llm_chat(c, &q, r);
	if (r->err)
		fprintf(stderr, "request %d: err %d %s\n", seq, r->err, r->error);
}

/* Asks and checks which model answered. */
static void ask_expect(struct hark_llm *c, const char *model)
{
	struct hark_llm_result r;

	ask(c, NULL, &r);
	assert_int_equal(r.err, HARK_OK);
	if (strcmp(r.model, model))
		fprintf(stderr, "request %d answered by %s, expected %s\n", seq, r.model, model);
	assert_string_equal(r.model, model);
	hark_llm_result_clear(&r);
}

/* n requests in one batch; every one must be answered by model. */
static void batch_expect(struct hark_llm *c, size_t n, const char *model)
{
	char (*content)[128] = calloc(n, sizeof(*content));
	struct hark_llm_msg *m = calloc(n, sizeof(*m));
	struct hark_llm_request *q = calloc(n, sizeof(*q));
	struct hark_llm_result *r = calloc(n, sizeof(*r));

	assert_non_null(content);
	assert_non_null(m);
	assert_non_null(q);
	assert_non_null(r);
	for (size_t i = 0; i < n; i++) {
		snprintf(content[i], sizeof(content[i]), "Batch item %d.%zu wants an answer.", ++seq,
			 i);
		m[i].role = "user";
		m[i].content = content[i];
		q[i].messages = &m[i];
		q[i].n_messages = 1;
	}
	assert_int_equal(hark_llm_run(c, q, n, r, NULL), HARK_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r[i].err, HARK_OK);
		assert_string_equal(r[i].model, model);
		hark_llm_result_clear(&r[i]);
	}
	free(content);
	free(m);
	free(q);
	free(r);
}

static size_t arrivals(const struct lt_sim *s, const char *model, long status)
{
	json_t *log = lt_sim_log(s);
	size_t n = lt_log_count(log, NULL, model, status, "chat");

	json_decref(log);
	return n;
}

static char *two_model_config(const struct lt_sim *s, double scale, int failures, double open_s,
			      int max_attempts)
{
	return lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		      "{\"name\":\"m-a\",\"context_window\":16384},"
		      "{\"name\":\"m-b\",\"context_window\":16384}]}],"
		      "\"routes\":{\"default\":[\"p/m-a\",\"p/m-b\"]},"
		      "\"llm\":{\"time_scale\":%g,\"breaker_failures\":%d,\"breaker_open_s\":%g,"
		      "\"max_attempts\":%d,\"backoff_base_s\":0.05,\"backoff_max_s\":0.2}}",
		      s->base_v1, scale, failures, open_s, max_attempts);
}

/* --------------------------------------------- failover and failback ---- */

static void test_failover_failback_503(void **state)
{
	const double scale = 10, open_s = 20;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_totals tot;
	double t_opened = 0;
	char *cj;

	(void)state;
	REQUIRE_SIM(90);
	assert_int_equal(lt_sim_start(&sim, SIM_TWO_MODELS, scale, NULL), 0);
	cj = two_model_config(&sim, scale, 3, open_s, 2);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg);

	/* healthy: the preferred model answers */
	for (int i = 0; i < 3; i++)
		ask_expect(c, "p/m-a");
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(arrivals(&sim, "m-a", 200), 3);

	/* m-a fails: the first item tries it max_attempts (2) times and moves
	 * to m-b; the second item's failure is the third in a row, which opens
	 * the breaker; after that nothing goes to m-a */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":503,\"model\":\"m-a\"}"),
			 200);
	for (int i = 0; i < 8; i++) {
		ask_expect(c, "p/m-b");
		if (i == 1)
			t_opened = lt_now();
	}
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_OPEN);
	assert_int_equal(hark_llm_breaker_state(c, "p/m-b"), HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(arrivals(&sim, "m-a", 503), 3);
	assert_int_equal(arrivals(&sim, "m-b", 200), 8);
	hark_llm_get_totals(c, &tot);
	assert_true(tot.failovers >= 8);
	assert_int_equal(tot.failed, 0);

	/* recovered, but the breaker is still open: m-b keeps answering */
	assert_int_equal(lt_sim_post(&sim, "/_sim/recover", "{}"), 200);
	ask_expect(c, "p/m-b");
	assert_int_equal(arrivals(&sim, "m-a", -1), 6);
	/* after breaker_open_s the probe goes to m-a, succeeds and closes it;
	 * new items are back on m-a */
	lt_sleep(t_opened + open_s / scale + 0.3 - lt_now());
	ask_expect(c, "p/m-a");
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_CLOSED);
	batch_expect(c, 6, "p/m-a");
	assert_int_equal(arrivals(&sim, "m-a", 200), 3 + 1 + 6);
	assert_int_equal(arrivals(&sim, "m-b", 200), 9);

	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

static void test_failover_failback_kill9(void **state)
{
	const double scale = 10, open_s = 20;
	struct lt_sim sa, sb;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	double t_opened = 0;
	int port_a;
	char *cj;

	(void)state;
	REQUIRE_SIM(90);
	assert_int_equal(lt_sim_start(&sa, NULL, scale, NULL), 0);
	assert_int_equal(lt_sim_start(&sb, NULL, scale, NULL), 0);
	cj = lt_fmt("{\"providers\":["
		    "{\"name\":\"pa\",\"base_url\":\"%s\",\"connect_timeout_s\":10,"
		    "\"models\":[{\"name\":\"sim-small\",\"context_window\":16384}]},"
		    "{\"name\":\"pb\",\"base_url\":\"%s\",\"connect_timeout_s\":10,"
		    "\"models\":[{\"name\":\"sim-small\",\"context_window\":16384}]}],"
		    "\"routes\":{\"default\":[\"pa/sim-small\",\"pb/sim-small\"]},"
		    "\"llm\":{\"time_scale\":%g,\"breaker_failures\":2,\"breaker_open_s\":%g,"
		    "\"max_attempts\":2,\"backoff_base_s\":0.05,\"backoff_max_s\":0.2}}",
		    sa.base_v1, sb.base_v1, scale, open_s);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg);

	for (int i = 0; i < 3; i++)
		ask_expect(c, "pa/sim-small");
	assert_int_equal(arrivals(&sa, "sim-small", 200), 3);

	/* provider a disappears (connections refused) */
	port_a = sa.port;
	lt_sim_kill9(&sa);
	for (int i = 0; i < 4; i++) {
		ask_expect(c, "pb/sim-small");
		if (i == 0)
			t_opened = lt_now();
	}
	assert_int_equal(hark_llm_breaker_state(c, "pa/sim-small"), HARK_LLM_BREAKER_OPEN);
	assert_int_equal(arrivals(&sb, "sim-small", 200), 4);

	/* it comes back on the same port; after breaker_open_s the probe
	 * succeeds and new items go to it again */
	assert_int_equal(lt_sim_restart(&sa), 0);
	assert_int_equal(sa.port, port_a);
	lt_sleep(t_opened + open_s / scale + 0.3 - lt_now());
	ask_expect(c, "pa/sim-small");
	assert_int_equal(hark_llm_breaker_state(c, "pa/sim-small"), HARK_LLM_BREAKER_CLOSED);
	batch_expect(c, 5, "pa/sim-small");
	assert_int_equal(arrivals(&sa, "sim-small", 200), 6); /* the restarted sim's log */
	assert_int_equal(arrivals(&sb, "sim-small", 200), 4);

	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sa), 0);
	assert_int_equal(lt_sim_stop(&sb), 0);
}

/* ----------------------------------------------------- breaker states ---- */

struct probe_arg {
	struct hark_llm *c;
	struct hark_llm_result r;
};

static void *probe_thread(void *p)
{
	struct probe_arg *a = p;

	ask(a->c, "[[sim:delay s=25]]", &a->r);
	return NULL;
}

static void test_breaker_states(void **state)
{
	const double scale = 10, open_s = 20;
	const int failures = 3;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_result r;
	struct probe_arg pa;
	pthread_t th;
	double t_opened = 0, t0;
	int st = -1;
	char *cj;

	(void)state;
	REQUIRE_SIM(120);
	assert_int_equal(lt_sim_start(&sim, SIM_TWO_MODELS, scale, NULL), 0);
	/* max_attempts 1: every 503 of m-a moves that item on to m-b at once */
	cj = two_model_config(&sim, scale, failures, open_s, 1);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	c = mk_client(cfg);
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(hark_llm_breaker_state(c, "p/no-such-model"), -1);

	/* closed -> open after exactly `failures` consecutive 503s */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":503,\"model\":\"m-a\"}"),
			 200);
	for (int i = 1; i <= failures; i++) {
		ask_expect(c, "p/m-b");
		assert_int_equal(arrivals(&sim, "m-a", 503), (size_t)i);
		assert_int_equal(hark_llm_breaker_state(c, "p/m-a"),
				 i < failures ? HARK_LLM_BREAKER_CLOSED : HARK_LLM_BREAKER_OPEN);
	}
	t_opened = lt_now();
	/* open: calls skip m-a */
	ask_expect(c, "p/m-b");
	assert_int_equal(arrivals(&sim, "m-a", -1), (size_t)failures);
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_OPEN);

	/* half-open after open_s: exactly one probe in flight (a slow one),
	 * the other calls keep going to m-b meanwhile */
	assert_int_equal(lt_sim_post(&sim, "/_sim/recover", "{}"), 200);
	lt_sleep(t_opened + open_s / scale + 0.3 - lt_now());
	memset(&pa, 0, sizeof(pa));
	pa.c = c;
	assert_int_equal(pthread_create(&th, NULL, probe_thread, &pa), 0);
	t0 = lt_now();
	while (lt_now() - t0 < 1.5) {
		st = hark_llm_breaker_state(c, "p/m-a");
		if (st == HARK_LLM_BREAKER_HALF_OPEN)
			break;
		lt_sleep(0.005);
	}
	assert_int_equal(st, HARK_LLM_BREAKER_HALF_OPEN);
	batch_expect(c, 5, "p/m-b");
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_HALF_OPEN);
	pthread_join(th, NULL);
	/* the probe (25 provider s) succeeded: closed */
	assert_int_equal(pa.r.err, HARK_OK);
	assert_string_equal(pa.r.model, "p/m-a");
	hark_llm_result_clear(&pa.r);
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(arrivals(&sim, "m-a", 200), 1);
	ask_expect(c, "p/m-a");

	/* open again, then a failing probe: half-open -> open */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":503,\"model\":\"m-a\"}"),
			 200);
	for (int i = 0; i < failures; i++)
		ask_expect(c, "p/m-b");
	t_opened = lt_now();
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_OPEN);
	assert_int_equal(arrivals(&sim, "m-a", 503), 2 * (size_t)failures);
	lt_sleep(t_opened + open_s / scale + 0.3 - lt_now());
	ask(c, NULL, &r); /* the probe: m-a answers 503, the item moves on to m-b */
	assert_int_equal(r.err, HARK_OK);
	assert_string_equal(r.model, "p/m-b");
	hark_llm_result_clear(&r);
	t_opened = lt_now();
	assert_int_equal(arrivals(&sim, "m-a", 503), 2 * (size_t)failures + 1);
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_OPEN);
	/* re-opened for a fresh open_s: the next call does not touch m-a */
	ask_expect(c, "p/m-b");
	assert_int_equal(arrivals(&sim, "m-a", -1), 2 * (size_t)failures + 1 + 2);

	/* and it heals once m-a does */
	assert_int_equal(lt_sim_post(&sim, "/_sim/recover", "{}"), 200);
	lt_sleep(t_opened + open_s / scale + 0.3 - lt_now());
	ask_expect(c, "p/m-a");
	assert_int_equal(hark_llm_breaker_state(c, "p/m-a"), HARK_LLM_BREAKER_CLOSED);

	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_failover_failback_503, lt_teardown),
		cmocka_unit_test_teardown(test_failover_failback_kill9, lt_teardown),
		cmocka_unit_test_teardown(test_breaker_states, lt_teardown),
	};

	if (getenv("LT_FILTER")) /* e.g. LT_FILTER=test_cache* to run a subset */
		cmocka_set_test_filter(getenv("LT_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
