/*
 * Integration tests of diagram making (src/analyze/visual.c) offline and
 * through the LLM layer against the real hark-llm-sim over loopback: the
 * offline path detects and builds a valid spec; with a provider the draft
 * is sent with the diagram prompt and schema and the validated answer is
 * used (times taken from the turns it names); a malformed answer is re-asked
 * once and then falls back to the offline spec with a note; a provider that
 * is down also falls back; a forced type is honoured; long inputs are paged
 * and every page validates; no speech is a clear error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze/visual.h"
#include "hark/hark.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "store/store.h"

#include "llmtest_util.h"

#define SCALE 60.0

static void on_alarm(int sig)
{
	static const char msg[] = "\ntest_visual_llm: a test ran over its time limit\n";

	(void)sig;
	lt_kill_all();
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

static void limit(unsigned s)
{
	signal(SIGALRM, on_alarm);
	alarm(s);
	lt_clean_env();
	unsetenv("HARK_PROMPTS_DIR");
}

/* A spoken procedure, one turn per sentence, 6 s each. */
static const char *const k_flow[] = {
	"First, the customer submits the order form on the website.",
	"Then we check whether the item is in stock.",
	"If it is in stock, we pack it and ship it the same day.",
	"Otherwise we email the customer a back-order notice.",
	"After that the invoice is sent.",
	"Finally, the order is closed in the system.",
};

struct turns {
	struct hark_chunk_turn *t;
	char **text;
	size_t n;
};

static void turns_make(struct turns *ts, const char *const *lines, size_t n, const char *extra)
{
	ts->n = n;
	ts->t = calloc(n, sizeof(*ts->t));
	ts->text = calloc(n, sizeof(*ts->text));
	assert_non_null(ts->t);
	assert_non_null(ts->text);
	for (size_t i = 0; i < n; i++) {
		ts->text[i] = i + 1 == n && extra ? lt_fmt("%s %s", lines[i], extra)
						  : strdup(lines[i]);
		assert_non_null(ts->text[i]);
		ts->t[i].speaker = "Ana";
		ts->t[i].text = ts->text[i];
		ts->t[i].start_s = 6.0 * (double)i;
		ts->t[i].end_s = 6.0 * (double)i + 5.5;
	}
}

static void turns_free(struct turns *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		free(ts->text[i]);
	free(ts->text);
	free(ts->t);
}

static void assert_valid(const struct hark_diagram *d)
{
	char err[256] = "";
	int rc = hark_diagram_validate(d, err, sizeof(err));

	if (rc != HARK_OK)
		fprintf(stderr, "invalid spec: %s\n", err);
	assert_int_equal(rc, HARK_OK);
}

/* Every element with a turn lies within that turn's time span. */
static void assert_times_from_turns(const struct hark_diagram *d, const struct turns *ts)
{
	size_t with = 0;

	for (size_t i = 0; i < d->n_nodes; i++) {
		const struct hark_diagram_span *sp = &d->nodes[i].span;

		if (sp->turn >= 0) {
			assert_true((size_t)sp->turn < ts->n);
			assert_true(sp->start_s >= ts->t[sp->turn].start_s - 1e-9);
			assert_true(sp->start_s <= ts->t[sp->turn].end_s + 1e-9);
			with++;
		}
	}
	assert_true(with > 0);
}

static void test_offline(void **state)
{
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result r;
	struct turns ts;
	char err[256] = "";

	(void)state;
	limit(60);
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]), NULL);
	p.source = "order.txt";
	p.duration_s = 36.0;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.n_pages, 1);
	assert_int_equal(r.scores.best, HARK_DIAGRAM_FLOWCHART);
	assert_int_equal(r.pages[0].type, HARK_DIAGRAM_FLOWCHART);
	assert_int_equal(r.used_llm, 0);
	assert_int_equal(r.llm_calls, 0);
	assert_string_equal(r.pages[0].source, "order.txt");
	assert_true(r.pages[0].duration_s == 36.0);
	assert_valid(&r.pages[0]);
	assert_times_from_turns(&r.pages[0], &ts);
	hark_visual_result_clear(&r);

	/* a forced type is built (or falls back to a mind map with a note) */
	p.type = HARK_DIAGRAM_SEQUENCE;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.requested, HARK_DIAGRAM_SEQUENCE);
	assert_valid(&r.pages[0]);
	if (r.pages[0].type != HARK_DIAGRAM_SEQUENCE) {
		assert_int_equal(r.pages[0].type, HARK_DIAGRAM_MINDMAP);
		assert_non_null(strstr(r.note, "mind map"));
	}
	hark_visual_result_clear(&r);

	/* bad parameters and no speech */
	p.type = 99;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p.type = -1;
	{
		struct hark_chunk_turn silent[2] = {{"A", "", 0, 1}, {"B", "  ", 1, 2}};

		assert_int_equal(hark_visual_build(silent, 2, &p, &r, err, sizeof(err)),
				 HARK_ERR_EMPTY);
		assert_int_equal(r.n_pages, 0);
	}
	turns_free(&ts);
}

static void test_long_input_pages(void **state)
{
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result r;
	struct hark_chunk_turn *t;
	char **txt, err[256] = "";
	size_t n = 400;

	(void)state;
	limit(120);
	t = calloc(n, sizeof(*t));
	txt = calloc(n, sizeof(*txt));
	assert_non_null(t);
	assert_non_null(txt);
	for (size_t i = 0; i < n; i++) {
		txt[i] = lt_fmt("Step %zu: then we move crate %zu to bay %zu. If the bay is full, "
				"otherwise we wait.",
				i + 1, i * 7 % 97, i % 13);
		t[i].speaker = "Lead";
		t[i].text = txt[i];
		t[i].start_s = 10.0 * (double)i;
		t[i].end_s = 10.0 * (double)i + 9;
	}
	p.type = HARK_DIAGRAM_FLOWCHART;
	p.max_pages = 3;
	assert_int_equal(hark_visual_build(t, n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_true(r.total_pages > 3);
	assert_int_equal(r.n_pages, 3);
	for (size_t k = 0; k < r.n_pages; k++) {
		assert_valid(&r.pages[k]);
		assert_int_equal(r.pages[k].page, (int)k + 1);
		assert_true(r.pages[k].n_nodes <= p.max_nodes);
	}
	hark_visual_result_clear(&r);
	/* detected, the same input is summarised into one readable mind map */
	p.type = -1;
	assert_int_equal(hark_visual_build(t, n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.scores.best, HARK_DIAGRAM_FLOWCHART);
	assert_int_equal(r.n_pages, 1);
	assert_int_equal(r.total_pages, 1);
	assert_int_equal(r.pages[0].type, HARK_DIAGRAM_MINDMAP);
	assert_non_null(strstr(r.note, "long input"));
	assert_true(r.pages[0].n_nodes >= 3 && r.pages[0].n_nodes <= p.max_nodes);
	assert_valid(&r.pages[0]);
	hark_visual_result_clear(&r);
	for (size_t i = 0; i < n; i++)
		free(txt[i]);
	free(txt);
	free(t);
}

/* ------------------------------------------------------------ LLM path ---- */

struct env {
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_store *st;
	struct hark_llm *c;
	char dir[256];
};

static void env_up(struct env *e, const char *base_override)
{
	struct hark_store_params sp = hark_store_default_params();
	struct hark_llm_params lp = hark_llm_default_params();
	char err[256] = "", *cj;

	memset(e, 0, sizeof(*e));
	assert_int_equal(lt_mkdtemp(e->dir, sizeof(e->dir), "visual"), 0);
	assert_int_equal(lt_sim_start(&e->sim, "{\"models\":[{\"name\":\"m\",\"context_window\":"
				       "32768,\"max_output_tokens\":8192}]}",
				      SCALE, NULL),
			 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\","
		    "\"connect_timeout_s\":2,\"timeout_s\":60,\"models\":["
		    "{\"name\":\"m\",\"context_window\":32768,\"max_output_tokens\":8192,"
		    "\"price_in\":1,\"price_out\":2}]}],\"routes\":{\"diagram\":[\"p/m\"]},"
		    "\"llm\":{\"time_scale\":%g,\"max_attempts\":2,\"backoff_base_s\":0.2,"
		    "\"backoff_max_s\":1}}",
		    base_override ? base_override : e->sim.base_v1, SCALE);
	e->cfg = lt_config(cj);
	free(cj);
	assert_non_null(e->cfg);
	sp.sync_full = 0;
	assert_int_equal(hark_store_open(e->dir, &sp, &e->st, err, sizeof(err)), HARK_OK);
	lp.config = e->cfg;
	lp.store = e->st;
	lp.seed = 99;
	assert_int_equal(hark_llm_init(&lp, &e->c, err, sizeof(err)), HARK_OK);
}

static void env_down(struct env *e)
{
	hark_llm_free(e->c);
	hark_store_close(e->st);
	hark_llm_config_free(e->cfg);
	assert_int_equal(lt_sim_stop(&e->sim), 0);
	lt_rmrf(e->dir);
}

static size_t chat_count(const struct env *e)
{
	json_t *log = lt_sim_log(&e->sim);
	size_t n;

	assert_non_null(log);
	n = lt_log_count(log, NULL, NULL, -1, "chat");
	json_decref(log);
	return n;
}

static void test_llm_refines(void **state)
{
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result r, off;
	struct turns ts;
	struct env e;
	char err[256] = "";

	(void)state;
	limit(120);
	if (!lt_sim_bin())
		skip();
	env_up(&e, NULL);
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]), NULL);
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &off, err, sizeof(err)), HARK_OK);
	p.llm = e.c;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.used_llm, 1);
	assert_int_equal(r.llm_calls, 1);
	assert_true(r.tokens_in > 0 && r.tokens_out > 0);
	assert_string_equal(r.note, "");
	assert_int_equal(chat_count(&e), 1);
	/* the provider's answer, not the draft: the simulator marks the title */
	assert_non_null(strstr(r.pages[0].title, "(refined)"));
	assert_null(strstr(off.pages[0].title, "(refined)"));
	assert_int_equal(r.pages[0].n_nodes, off.pages[0].n_nodes);
	assert_valid(&r.pages[0]);
	assert_times_from_turns(&r.pages[0], &ts);
	hark_visual_result_clear(&r);
	/* the same request again is answered by the cache: no new request */
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.used_llm, 1);
	assert_int_equal(chat_count(&e), 1);
	hark_visual_result_clear(&r);
	hark_visual_result_clear(&off);
	turns_free(&ts);
	env_down(&e);
}

static void test_llm_bad_answers(void **state)
{
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result r;
	struct turns ts;
	struct env e;
	char err[256] = "";
	int fallback_type = -1;

	(void)state;
	limit(180);
	if (!lt_sim_bin())
		skip();
	env_up(&e, NULL);

	/* one malformed reply: the LLM layer's own repair request fixes it */
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]), "[[sim:bad_json]]");
	p.llm = e.c;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.used_llm, 1);
	assert_valid(&r.pages[0]);
	hark_visual_result_clear(&r);
	turns_free(&ts);

	/* replies that never match the schema: the offline spec, with a note */
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]),
		   "[[sim:wrong_schema times=all]]");
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.used_llm, 0);
	assert_non_null(strstr(r.note, "LLM failed"));
	assert_null(strstr(r.pages[0].title, "(refined)"));
	assert_valid(&r.pages[0]);
	hark_visual_result_clear(&r);
	turns_free(&ts);

	/* schema-valid answers that fail the diagram rules (here: the wrong
	 * type, because the draft had to fall back to a mind map) are re-asked
	 * with the error, once, then the offline spec is used */
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]), NULL);
	p.llm = NULL;
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES && fallback_type < 0; t++) {
		p.type = t;
		assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
		if (r.pages[0].type != t)
			fallback_type = t;
		hark_visual_result_clear(&r);
	}
	if (fallback_type >= 0) {
		size_t before = chat_count(&e);

		p.type = fallback_type;
		p.llm = e.c;
		p.max_repairs = 1;
		assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
		assert_int_equal(r.used_llm, 0);
		assert_int_equal(r.llm_calls, 2);
		assert_int_equal(chat_count(&e), before + 2);
		assert_non_null(strstr(r.note, "LLM spec invalid"));
		assert_non_null(strstr(r.note, "was asked for"));
		assert_int_equal(r.pages[0].type, HARK_DIAGRAM_MINDMAP);
		assert_valid(&r.pages[0]);
		hark_visual_result_clear(&r);
		/* no re-asks when max_repairs is 0 */
		p.max_repairs = 0;
		p.title = "Other title";
		assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
		assert_int_equal(r.llm_calls, 1);
		hark_visual_result_clear(&r);
	} else {
		fprintf(stderr, "every type was built for the procedure: re-ask case not reached\n");
	}
	turns_free(&ts);
	env_down(&e);
}

static void test_llm_down_falls_back(void **state)
{
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result r;
	struct turns ts;
	struct env e;
	char err[256] = "";

	(void)state;
	limit(120);
	if (!lt_sim_bin())
		skip();
	/* a provider on a port nobody listens on */
	env_up(&e, "http://127.0.0.1:9/v1");
	turns_make(&ts, k_flow, sizeof(k_flow) / sizeof(k_flow[0]), NULL);
	p.llm = e.c;
	assert_int_equal(hark_visual_build(ts.t, ts.n, &p, &r, err, sizeof(err)), HARK_OK);
	assert_int_equal(r.used_llm, 0);
	assert_non_null(strstr(r.note, "LLM failed"));
	assert_valid(&r.pages[0]);
	hark_visual_result_clear(&r);
	turns_free(&ts);
	env_down(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline),
		cmocka_unit_test(test_long_input_pages),
		cmocka_unit_test(test_llm_refines),
		cmocka_unit_test(test_llm_bad_answers),
		cmocka_unit_test(test_llm_down_falls_back),
	};

	return cmocka_run_group_tests(tests, NULL, lt_teardown);
}
