/*
 * Integration tests of the LLM minutes path (src/analyze/llm_minutes.c)
 * against the real hark-llm-sim binary over loopback, on a shared QMSum
 * meeting: batched extraction (one request per batch in the simulator's
 * log, every chunk answered with a slice that validates against the
 * per-chunk schema and quotes its own chunk), the LLM cache on a re-run,
 * injected provider failures and malformed replies reported chunk by chunk
 * (failed batches retried as single chunks), the per-meeting reduce into
 * minutes that validate against share/schemas/minutes.json with references
 * inside the meeting plus graph mentions, a hierarchical reduce under a
 * tiny context window, and the offline fall-back when the reduce fails.
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

#include "analyze/chunk.h"
#include "analyze/graph.h"
#include "analyze/llm_minutes.h"
#include "analyze/meeting_text.h"
#include "analyze/minutes.h"
#include "analyze/prompts.h"
#include "hark/hark.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "llm/schema.h"
#include "llm/tokens.h"
#include "store/store.h"

#include "llmtest_util.h"

#define SCALE 60.0

static void on_alarm(int sig)
{
	static const char msg[] = "\ntest_llm_minutes: a test ran over its time limit\n";

	(void)sig;
	lt_kill_all();
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

static int begin(double limit_s)
{
	signal(SIGALRM, on_alarm);
	alarm((unsigned)limit_s);
	lt_clean_env();
	unsetenv("HARK_PROMPTS_DIR");
	return lt_sim_bin() != NULL;
}

#define REQUIRE_SIM(limit)                                                            \
	do {                                                                          \
		if (!begin(limit)) {                                                  \
			fprintf(stderr, "hark-llm-sim not built ($HARK_SIM_BIN): skipped\n"); \
			skip();                                                       \
		}                                                                     \
	} while (0)

/* ---------------------------------------------------------- fixtures ---- */

/* A meeting read from the shared data and chunked. */
struct mt {
	struct hark_meeting_text text;
	struct hark_chunk_turn *turns;
	size_t n_turns;
	struct hark_chunk_list chunks;
	char **chunk_text;               /* chunk texts as sent (may carry directives) */
	struct hark_llm_chunk_in *in;
};

static void mt_load(struct mt *m, const char *name, size_t max_tokens)
{
	const char *shared = getenv("HARK_SHARED");
	struct hark_chunk_params cp = hark_chunk_default_params();
	char path[1024], err[256] = "";

	memset(m, 0, sizeof(*m));
	if (!shared)
		shared = "../shared";
	snprintf(path, sizeof(path), "%s/meetings/qmsum/%s.json", shared, name);
	assert_int_equal(hark_meeting_text_read(path, NULL, &m->text, err, sizeof(err)), HARK_OK);
	m->n_turns = m->text.n_turns;
	m->turns = calloc(m->n_turns, sizeof(*m->turns));
	assert_non_null(m->turns);
	for (size_t i = 0; i < m->n_turns; i++) {
		m->turns[i].speaker = m->text.turns[i].speaker;
		m->turns[i].text = m->text.turns[i].text;
		/* QMSum has no times: give each turn a synthetic second-long slot
		 * so that time references can be checked */
		m->turns[i].start_s = (double)i * 10.0;
		m->turns[i].end_s = (double)i * 10.0 + 9.0;
	}
	cp.max_tokens = max_tokens;
	cp.overlap_tokens = max_tokens / 8;
	assert_int_equal(hark_chunk_split(m->turns, m->n_turns, &cp, &m->chunks, err, sizeof(err)),
			 HARK_OK);
	assert_true(m->chunks.n >= 2);
	m->chunk_text = calloc(m->chunks.n, sizeof(char *));
	m->in = calloc(m->chunks.n, sizeof(*m->in));
	assert_non_null(m->chunk_text);
	assert_non_null(m->in);
	for (size_t i = 0; i < m->chunks.n; i++) {
		m->chunk_text[i] = strdup(m->chunks.chunks[i].text);
		assert_non_null(m->chunk_text[i]);
		m->in[i].sha256 = m->chunks.chunks[i].sha256;
		m->in[i].text = m->chunk_text[i];
	}
}

/* Appends a directive line to chunk i's text as sent. */
static void mt_directive(struct mt *m, size_t i, const char *directive)
{
	char *t = lt_fmt("%s\nPM: %s", m->chunk_text[i], directive);

	free(m->chunk_text[i]);
	m->chunk_text[i] = t;
	m->in[i].text = t;
}

static void mt_free(struct mt *m)
{
	for (size_t i = 0; m->chunk_text && i < m->chunks.n; i++)
		free(m->chunk_text[i]);
	free(m->chunk_text);
	free(m->in);
	hark_chunk_list_clear(&m->chunks);
	free(m->turns);
	hark_meeting_text_clear(&m->text);
}

/* What the extraction callback saw. */
struct got {
	size_t n;
	char **json;
	int *err;
	int *calls;
};

static void got_init(struct got *g, size_t n)
{
	g->n = n;
	g->json = calloc(n, sizeof(char *));
	g->err = calloc(n, sizeof(int));
	g->calls = calloc(n, sizeof(int));
	assert_non_null(g->json);
	assert_non_null(g->err);
	assert_non_null(g->calls);
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->json[i]);
	free(g->json);
	free(g->err);
	free(g->calls);
	memset(g, 0, sizeof(*g));
}

static void on_chunk(size_t index, const char *json, int err, const char *msg, void *ud)
{
	struct got *g = ud;

	if (index >= g->n) {
		fprintf(stderr, "on_chunk: index %zu out of range\n", index);
		return;
	}
	g->calls[index]++;
	g->err[index] = err;
	if (err) {
		if (!msg || !*msg)
			fprintf(stderr, "on_chunk: chunk %zu failed without a message\n", index);
		g->err[index] = err;
		return;
	}
	free(g->json[index]);
	g->json[index] = json ? strdup(json) : NULL;
}

static int cancel_now(void *ud)
{
	(void)ud;
	return 1;
}

static struct hark_llm *mk_client(const struct hark_llm_config *cfg, struct hark_store *st)
{
	struct hark_llm_params p = hark_llm_default_params();
	struct hark_llm *c = NULL;
	char err[256] = "";
	int rc;

	p.config = cfg;
	p.store = st;
	p.seed = 4242;
	rc = hark_llm_init(&p, &c, err, sizeof(err));
	if (rc != HARK_OK)
		fprintf(stderr, "hark_llm_init: %d %s\n", rc, err);
	assert_int_equal(rc, HARK_OK);
	return c;
}

static struct hark_store *mk_store(const char *dir)
{
	struct hark_store_params sp = hark_store_default_params();
	struct hark_store *st = NULL;
	char err[256] = "";

	sp.sync_full = 0;
	assert_int_equal(hark_store_open(dir, &sp, &st, err, sizeof(err)), HARK_OK);
	return st;
}

/* A provider "p" with models big (and tiny of the given context window, 0 =
 * none); routes extract -> big, summarize -> reduce_model. */
static struct hark_llm_config *mk_config(const struct lt_sim *sim, long tiny_ctx,
					 const char *reduce_model, int max_attempts)
{
	char *cj, tiny[256] = "";
	struct hark_llm_config *cfg;

	if (tiny_ctx > 0)
		snprintf(tiny, sizeof(tiny),
			 ",{\"name\":\"tiny\",\"context_window\":%ld,\"max_output_tokens\":2000}",
			 tiny_ctx);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		    "{\"name\":\"big\",\"context_window\":131072,\"max_output_tokens\":16384,"
		    "\"price_in\":0.5,\"price_out\":1.5}%s]}],"
		    "\"routes\":{\"extract\":[\"p/big\"],\"summarize\":[\"p/%s\"]},"
		    "\"llm\":{\"time_scale\":%g,\"max_attempts\":%d,\"backoff_base_s\":0.5,"
		    "\"breaker_failures\":1000,"
		    "\"backoff_max_s\":2}}",
		    sim->base_v1, tiny, reduce_model, SCALE, max_attempts);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	return cfg;
}

static char *sim_config(long tiny_ctx)
{
	return lt_fmt("{\"models\":[{\"name\":\"big\",\"context_window\":131072,"
		      "\"max_output_tokens\":16384},{\"name\":\"tiny\",\"context_window\":%ld,"
		      "\"max_output_tokens\":2000}]}",
		      tiny_ctx > 0 ? tiny_ctx : 16384);
}

static int64_t chat_requests(const struct lt_sim *s)
{
	json_t *log = lt_sim_log(s);
	size_t n;

	assert_non_null(log);
	n = lt_log_count(log, NULL, NULL, -1, "chat");
	json_decref(log);
	return (int64_t)n;
}

/* The per-chunk slice schema: the extraction schema without "chunk". */
static struct hark_llm_schema *slice_schema(void)
{
	const char *text;
	json_t *s, *props, *arr;
	const char *k;
	struct hark_llm_schema *out = NULL;
	char err[256] = "", *dump;

	assert_int_equal(hark_prompts_get("schemas/minutes_extract.json", &text, NULL), HARK_OK);
	s = json_loads(text, 0, NULL);
	assert_non_null(s);
	props = json_object_get(s, "properties");
	assert_int_equal(json_object_size(props), 6);
	json_object_foreach(props, k, arr) {
		json_t *items = json_object_get(arr, "items");
		json_t *req = json_object_get(items, "required"), *nreq = json_array();
		json_t *v;
		size_t i;

		assert_non_null(json_object_get(json_object_get(items, "properties"), "chunk"));
		json_object_del(json_object_get(items, "properties"), "chunk");
		json_array_foreach(req, i, v)
			if (strcmp(json_string_value(v), "chunk") != 0)
				json_array_append(nreq, v);
		json_object_set_new(items, "required", nreq);
	}
	dump = json_dumps(s, JSON_COMPACT);
	assert_int_equal(hark_llm_schema_compile(dump, &out, err, sizeof(err)), HARK_OK);
	free(dump);
	json_decref(s);
	return out;
}

/* Every evidence string of a slice is a verbatim span of the chunk text;
 * returns the number of items. */
static size_t check_slice(const struct hark_llm_schema *ss, const char *json,
			  const char *chunk_text)
{
	json_t *v = json_loads(json, 0, NULL), *arr, *it;
	const char *k;
	size_t n = 0, i;
	char err[256] = "";

	assert_non_null(v);
	if (hark_llm_schema_validate(ss, v, err, sizeof(err)) != 0)
		fail_msg("slice does not validate: %s: %s", err, json);
	json_object_foreach(v, k, arr) {
		json_array_foreach(arr, i, it) {
			const char *ev = json_string_value(json_object_get(it, "evidence"));

			assert_null(json_object_get(it, "chunk"));
			if (ev && !hark_llm_minutes_quote_in(ev, chunk_text))
				fail_msg("evidence not in its chunk: \"%s\"", ev);
			if (ev && !strstr(chunk_text, ev))
				fprintf(stderr, "note: evidence not verbatim: \"%s\"\n", ev);
			n++;
		}
	}
	json_decref(v);
	return n;
}

/* A hand-made offline minutes of the meeting (what the caller would pass). */
static void mk_offline(struct hark_minutes *o, const struct mt *m)
{
	memset(o, 0, sizeof(*o));
	o->meeting = strdup(m->text.id);
	o->date = strdup("2024-03-04");
	o->duration_s = (double)m->n_turns * 10.0;
	o->method = strdup("offline");
	o->summary = strdup("The offline summary of the meeting.");
	o->participants = calloc(2, sizeof(*o->participants));
	assert_non_null(o->participants);
	o->n_participants = 2;
	o->participants[0].name = strdup("Project Manager");
	o->participants[0].turns = 10;
	o->participants[0].words = 100;
	o->participants[0].talk_s = -1;
	o->participants[0].first_s = 0;
	o->participants[1].name = strdup("Marketing");
	o->participants[1].turns = 5;
	o->participants[1].words = 50;
	o->participants[1].talk_s = -1;
	o->participants[1].first_s = 10;
	o->topics = calloc(1, sizeof(*o->topics));
	assert_non_null(o->topics);
	o->n_topics = 1;
	o->topics[0].title = strdup("Offline topic");
	o->topics[0].ref = hark_minutes_ref_none();
	o->topics[0].ref.turn = 0;
	o->topics[0].ref.last_turn = (long)m->n_turns - 1;
	o->turns = m->n_turns;
	o->chunks = m->chunks.n;
}

/* "Speaker: text" lines of turns[a..b] (clamped), heap. */
static char *turn_lines(const struct mt *m, size_t a, size_t b)
{
	char *out = strdup("");

	assert_non_null(out);
	for (size_t t = a; t <= b && t < m->n_turns; t++) {
		char *next = lt_fmt("%s%s%s: %s", out, *out ? "\n" : "",
				    m->turns[t].speaker ? m->turns[t].speaker : "",
				    m->turns[t].text);

		free(out);
		out = next;
	}
	return out;
}

/* 1 when quote is found in the lines starting at turn t but not in those
 * starting at turn t + 1 (it starts in turn t). */
static int quote_starts_at(const struct mt *m, const char *quote, size_t t)
{
	char *here = turn_lines(m, t, t + 8), *after = turn_lines(m, t + 1, t + 8);
	int r = hark_llm_minutes_quote_in(quote, here) && !hark_llm_minutes_quote_in(quote, after);

	free(here);
	free(after);
	return r;
}

/* Checks a ref lies inside the meeting. */
static void check_ref(const struct hark_minutes_ref *r, const struct mt *m)
{
	assert_true(r->turn >= 0 && (size_t)r->turn < m->n_turns);
	assert_true(r->last_turn == -1 || (r->last_turn >= r->turn &&
					   (size_t)r->last_turn < m->n_turns));
	assert_true(r->start_s >= 0 && r->start_s <= (double)m->n_turns * 10.0);
}

/* minutes JSON against share/schemas/minutes.json when that exists. */
static void check_minutes_schema(const struct hark_minutes *mn)
{
	const char *text;
	struct hark_llm_schema *s = NULL;
	char err[256] = "";
	json_t *j;

	if (hark_prompts_get("schemas/minutes.json", &text, NULL) != HARK_OK) {
		fprintf(stderr, "share/schemas/minutes.json not there: schema check skipped\n");
		return;
	}
	assert_int_equal(hark_llm_schema_compile(text, &s, err, sizeof(err)), HARK_OK);
	j = hark_minutes_to_json(mn);
	assert_non_null(j);
	if (hark_llm_schema_validate(s, j, err, sizeof(err)) != 0) {
		char *d = json_dumps(j, JSON_INDENT(1));

		fprintf(stderr, "%s\n", d);
		free(d);
		fail_msg("minutes do not validate: %s", err);
	}
	json_decref(j);
	hark_llm_schema_free(s);
}

static void check_build(const struct hark_minutes *mn, const struct hark_graph *g,
			const struct mt *m, const struct hark_minutes *off)
{
	const struct hark_minutes_item *lists[3] = {mn->decisions, mn->actions, mn->questions};
	size_t counts[3] = {mn->n_decisions, mn->n_actions, mn->n_questions};
	size_t located = 0, total = 0;

	assert_string_equal(mn->meeting, m->text.id);
	assert_string_equal(mn->method, "llm");
	assert_string_equal(mn->date, off->date);
	assert_true(mn->duration_s == off->duration_s);
	assert_int_equal(mn->n_participants, off->n_participants);
	assert_string_equal(mn->participants[1].name, off->participants[1].name);
	assert_int_equal(mn->chunks, m->chunks.n);
	assert_int_equal(mn->turns, m->n_turns);
	for (size_t i = 0; i < mn->n_topics; i++) {
		check_ref(&mn->topics[i].ref, m);
		assert_true(mn->topics[i].ref.last_turn >= mn->topics[i].ref.turn);
		assert_true(mn->topics[i].ref.end_s >= mn->topics[i].ref.start_s);
		if (i > 0)
			assert_true(mn->topics[i].ref.turn >= mn->topics[i - 1].ref.turn);
	}
	for (size_t i = 0; i < mn->n_points; i++)
		if (mn->points[i].ref.turn >= 0)
			check_ref(&mn->points[i].ref, m);
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < counts[k]; i++) {
			const struct hark_minutes_item *it = &lists[k][i];

			total++;
			assert_non_null(it->text);
			assert_string_equal(it->source, "llm");
			check_ref(&it->ref, m);
			assert_non_null(it->ref.quote);
			/* a located quote starts in the turn the ref names */
			if (quote_starts_at(m, it->ref.quote, (size_t)it->ref.turn)) {
				located++;
				assert_true(it->ref.start_s == m->turns[it->ref.turn].start_s);
				if (m->turns[it->ref.turn].speaker)
					assert_string_equal(it->ref.speaker,
							    m->turns[it->ref.turn].speaker);
			}
			/* no duplicates within a list */
			for (size_t j = 0; j < i; j++)
				assert_string_not_equal(lists[k][j].text, it->text);
			if (k == 1 && it->due_iso) {
				assert_int_equal(strlen(it->due_iso), 10);
				assert_non_null(it->due);
			}
		}
	}
	assert_true(total > 0);
	assert_true(located * 2 >= total); /* most quotes sit inside one turn */
	assert_true(g->n_entities > 0);
	for (size_t i = 0; i < g->n_entities; i++) {
		const struct hark_graph_entity *e = &g->entities[i];

		assert_true(e->n_mentions > 0);
		for (size_t j = 0; j < e->n_mentions; j++) {
			assert_string_equal(e->mentions[j].meeting, m->text.id);
			assert_true(e->mentions[j].chunk >= 0 &&
				    (size_t)e->mentions[j].chunk < m->chunks.n);
			assert_true(e->mentions[j].turn >= 0 &&
				    (size_t)e->mentions[j].turn < m->n_turns);
			/* the mention's turn lies in its chunk */
			assert_true((size_t)e->mentions[j].turn >=
					    m->chunks.chunks[e->mentions[j].chunk].first_turn &&
				    (size_t)e->mentions[j].turn <=
					    m->chunks.chunks[e->mentions[j].chunk].last_turn);
		}
	}
	for (size_t i = 0; i < g->n_relations; i++) {
		assert_true(g->relations[i].source < g->n_entities);
		assert_true(g->relations[i].target < g->n_entities);
		assert_true(g->relations[i].source != g->relations[i].target);
	}
	check_minutes_schema(mn);
}

/* --------------------------------------------- 1. extract, cache, build -- */

static void test_extract_cache_build(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_store *st;
	struct hark_llm_minutes_params p = hark_llm_minutes_default_params();
	struct hark_llm_minutes_stats s1, s2, s3;
	struct hark_llm_schema *ss;
	struct hark_minutes off, mn;
	struct hark_graph g = {0};
	struct got g1, g2;
	struct mt m;
	json_t *log, *chat;
	char dir[256], err[256] = "", *scfg;
	size_t n, n_batches, items = 0;
	int64_t before;

	(void)state;
	REQUIRE_SIM(240);
	mt_load(&m, "ES2004c", 1200);
	n = m.chunks.n;
	n_batches = (n + 4) / 5;
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "llmmin"), 0);
	scfg = sim_config(0);
	assert_int_equal(lt_sim_start(&sim, scfg, SCALE, NULL), 0);
	free(scfg);
	cfg = mk_config(&sim, 0, "big", 3);
	st = mk_store(dir);
	c = mk_client(cfg, st);
	ss = slice_schema();

	p.batch_chunks = 5; /* the default completion budget per chunk */
	p.job_id = "job-minutes";
	memset(&s1, 0, sizeof(s1));
	got_init(&g1, n);
	assert_int_equal(hark_llm_minutes_extract(c, m.in, n, &p, on_chunk, &g1, &s1), HARK_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g1.calls[i], 1);
		assert_int_equal(g1.err[i], 0);
		assert_non_null(g1.json[i]);
		items += check_slice(ss, g1.json[i], m.chunk_text[i]);
		/* every chunk gets notes from the simulator */
		{
			json_t *v = json_loads(g1.json[i], 0, NULL);

			assert_true(json_array_size(json_object_get(v, "notes")) >= 1);
			json_decref(v);
		}
	}
	assert_true(items > n);
	assert_int_equal(s1.batches, n_batches);
	assert_int_equal(s1.requests, n_batches);
	assert_int_equal(s1.chunks_ok, n);
	assert_int_equal(s1.chunks_failed, 0);
	assert_int_equal(s1.failed_batches, 0);
	assert_int_equal(s1.cached, 0);
	assert_true(s1.tokens_in > 0 && s1.tokens_out > 0 && s1.cost_usd > 0);
	fprintf(stderr, "extraction: %zu chunks, %zu requests, %lld completion tokens per chunk\n",
		n, s1.requests, (long long)(s1.tokens_out / (int64_t)n));

	/* the log: one request per batch; chunk IDs are the chunks' sha256
	 * prefixes, and every chunk was sent exactly once */
	log = lt_sim_log(&sim);
	assert_non_null(log);
	chat = lt_log_filter(log, NULL, NULL, 200, "chat");
	assert_int_equal(json_array_size(chat), n_batches);
	{
		size_t seen = 0, i;
		json_t *e;

		json_array_foreach(chat, i, e) {
			json_t *ids = json_object_get(e, "chunks");
			size_t k = json_array_size(ids);

			assert_true(k >= 1 && k <= 5);
			for (size_t j = 0; j < k; j++) {
				const char *id = json_string_value(json_array_get(ids, j));
				size_t hits = 0;

				assert_non_null(id);
				assert_int_equal(strlen(id), 12);
				for (size_t ci = 0; ci < n; ci++)
					if (strncmp(m.chunks.chunks[ci].sha256, id, 12) == 0)
						hits++;
				assert_int_equal(hits, 1);
			}
			assert_true(json_integer_value(json_object_get(e, "max_tokens")) ==
				    (json_int_t)(p.max_tokens_per_chunk * (long)k));
			seen += k;
		}
		assert_int_equal(seen, n);
	}
	json_decref(chat);
	json_decref(log);

	/* again: every batch from the cache, no HTTP request */
	before = chat_requests(&sim);
	memset(&s2, 0, sizeof(s2));
	got_init(&g2, n);
	assert_int_equal(hark_llm_minutes_extract(c, m.in, n, &p, on_chunk, &g2, &s2), HARK_OK);
	assert_int_equal(chat_requests(&sim), before);
	assert_int_equal(s2.cached, n_batches);
	assert_int_equal(s2.tokens_in, 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g2.err[i], 0);
		assert_string_equal(g2.json[i], g1.json[i]);
	}
	got_free(&g2);

	/* reduce into minutes and graph */
	mk_offline(&off, &m);
	memset(&s3, 0, sizeof(s3));
	before = chat_requests(&sim);
	assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
						(const char *const *)g1.json, NULL, &off, &p, &mn,
						&g, &s3, err, sizeof(err)),
			 HARK_OK);
	if (err[0])
		fail_msg("unexpected build note: %s", err);
	assert_int_equal(chat_requests(&sim), before + 1); /* one flat reduce */
	assert_int_equal(s3.reduce_requests, 1);
	assert_int_equal(s3.reduce_levels, 1);
	assert_string_equal(mn.model, "p/big");
	assert_true(strlen(mn.summary) > 0);
	assert_string_not_equal(mn.summary, off.summary);
	assert_true(mn.n_topics >= 1);
	assert_string_not_equal(mn.topics[0].title, "Offline topic");
	check_build(&mn, &g, &m, &off);
	if (getenv("HARK_TEST_DUMP")) {
		json_t *j = hark_minutes_to_json(&mn);
		char *d = json_dumps(j, JSON_INDENT(1));

		fprintf(stderr, "%s\n", d);
		free(d);
		json_decref(j);
	}
	{
		/* the reduce request listed the chunks in meeting order */
		json_t *l2 = lt_sim_log(&sim), *last = json_array_get(l2, json_array_size(l2) - 1);
		json_t *ids = json_object_get(last, "chunks");

		assert_int_equal(json_array_size(ids), n);
		for (size_t i = 0; i < n; i++) {
			char want[32];

			snprintf(want, sizeof(want), "%zu", i);
			assert_string_equal(json_string_value(json_array_get(ids, i)), want);
		}
		json_decref(l2);
	}
	hark_minutes_clear(&mn);
	hark_graph_clear(&g);

	/* a meeting date resolves due dates */
	{
		struct hark_date d = {2024, 3, 4};
		size_t with_due = 0;

		assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
							(const char *const *)g1.json, &d, &off, &p,
							&mn, NULL, NULL, err, sizeof(err)),
				 HARK_OK);
		/* the simulator's due dates are ISO dates: all resolve, to
		 * themselves */
		for (size_t i = 0; i < mn.n_actions; i++) {
			if (!mn.actions[i].due)
				continue;
			with_due++;
			assert_non_null(mn.actions[i].due_iso);
			assert_string_equal(mn.actions[i].due_iso, mn.actions[i].due);
		}
		assert_true(with_due > 0);
		hark_minutes_clear(&mn);
	}

	/* a slice that is not JSON is refused */
	{
		char **bad = calloc(n, sizeof(char *));

		assert_non_null(bad);
		bad[0] = (char *)"{not json";
		assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
							(const char *const *)bad, NULL, &off, &p,
							&mn, NULL, NULL, err, sizeof(err)),
				 HARK_ERR_FORMAT);
		assert_non_null(strstr(err, "chunk 0"));
		free(bad);
	}

	got_free(&g1);
	hark_minutes_clear(&off);
	hark_llm_schema_free(ss);
	hark_llm_free(c);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	lt_rmrf(dir);
	mt_free(&m);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------------- 2. failures, chunk by chunk -- */

static void test_failures(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_minutes_params p = hark_llm_minutes_default_params();
	struct hark_llm_minutes_stats s;
	struct hark_minutes off, mn;
	struct hark_graph g = {0};
	struct got got;
	struct mt m;
	json_t *log;
	char *scfg, err[256] = "";
	size_t n, n_batches, fail_at = 2, bad_at = 6, repair_at = 8, i;
	json_t *e;
	int saw_bad_json = 0;
	size_t singles = 0;

	(void)state;
	REQUIRE_SIM(240);
	mt_load(&m, "ES2004b", 600);
	n = m.chunks.n;
	assert_true(n >= 13);
	n_batches = (n + 4) / 5;
	/* chunk 2: the provider always fails it; chunk 6: always a reply that
	 * is not JSON; chunk 8: one bad reply, which the repair fixes */
	mt_directive(&m, fail_at, "[[sim:fail status=500 times=all]]");
	mt_directive(&m, bad_at, "[[sim:bad_json times=all]]");
	mt_directive(&m, repair_at, "[[sim:bad_json]]");
	/* chunk 12: one reply missing a required member, which the repair fixes */
	mt_directive(&m, 12, "[[sim:wrong_schema]]");
	scfg = sim_config(0);
	assert_int_equal(lt_sim_start(&sim, scfg, SCALE, NULL), 0);
	free(scfg);
	cfg = mk_config(&sim, 0, "big", 2);
	c = mk_client(cfg, NULL);

	p.batch_chunks = 5;
	p.max_tokens_per_chunk = 1000;
	memset(&s, 0, sizeof(s));
	got_init(&got, n);
	assert_int_equal(hark_llm_minutes_extract(c, m.in, n, &p, on_chunk, &got, &s), HARK_OK);
	for (i = 0; i < n; i++) {
		assert_int_equal(got.calls[i], 1);
		if (i == fail_at) {
			assert_int_equal(got.err[i], HARK_ERR_NETWORK);
			assert_null(got.json[i]);
		} else if (i == bad_at) {
			assert_int_equal(got.err[i], HARK_ERR_FORMAT);
			assert_null(got.json[i]);
		} else {
			if (got.err[i])
				fail_msg("chunk %zu failed: %d", i, got.err[i]);
			assert_non_null(got.json[i]);
		}
	}
	assert_int_equal(s.chunks_failed, 2);
	assert_int_equal(s.chunks_ok, n - 2);
	/* the batches of chunks 2 and 6 failed and were retried chunk by chunk
	 * (5 + 5 single requests, two of which failed again) */
	assert_int_equal(s.batches, n_batches);
	assert_int_equal(s.requests, n_batches + 10);
	assert_int_equal(s.failed_batches, 4);

	log = lt_sim_log(&sim);
	assert_non_null(log);
	json_array_foreach(log, i, e) {
		const char *fault = json_string_value(json_object_get(e, "fault"));
		json_t *ids = json_object_get(e, "chunks");

		if (fault && strcmp(fault, "500") == 0)
			/* injected failures only ever hit requests holding chunk 2:
			 * its batch (c3 of 5) or its single retry (c1 of 1) */
			assert_true(json_array_size(ids) == 5 || json_array_size(ids) == 1);
		if (fault && strcmp(fault, "bad_json") == 0)
			saw_bad_json++;
		/* batches ask for 1000 tokens a chunk, single-chunk retries 2000 */
		if (json_array_size(ids) > 1)
			assert_true(json_integer_value(json_object_get(e, "max_tokens")) ==
				    1000 * (json_int_t)json_array_size(ids));
		else if (json_integer_value(json_object_get(e, "max_tokens")) == 2000)
			singles++;
	}
	assert_true(saw_bad_json >= 3);
	assert_true(singles >= 10);
	assert_int_equal(lt_log_count(log, NULL, NULL, -1, "chat"), json_array_size(log));
	{
		size_t wrong = 0;

		json_array_foreach(log, i, e) {
			const char *fault = json_string_value(json_object_get(e, "fault"));

			if (fault && strcmp(fault, "wrong_schema") == 0)
				wrong++;
		}
		assert_int_equal(wrong, 1);
	}
	json_decref(log);

	/* canceled at once: the call says so and every chunk is still reported
	 * once (a request not in the cache: another completion budget) */
	{
		struct hark_llm_minutes_params pc = p;
		struct got gc;

		pc.max_tokens_per_chunk = 999;
		pc.cancel = cancel_now;
		got_init(&gc, n);
		assert_int_equal(hark_llm_minutes_extract(c, m.in, n, &pc, on_chunk, &gc, NULL),
				 HARK_ERR_CANCELED);
		for (i = 0; i < n; i++) {
			assert_int_equal(gc.calls[i], 1);
			assert_true(gc.err[i] == 0 || gc.err[i] == HARK_ERR_CANCELED);
		}
		got_free(&gc);
	}

	/* build with the failed chunks missing */
	mk_offline(&off, &m);
	assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
						(const char *const *)got.json, NULL, &off, &p, &mn,
						&g, NULL, err, sizeof(err)),
			 HARK_OK);
	check_build(&mn, &g, &m, &off);
	for (size_t k = 0; k < g.n_entities; k++)
		for (size_t j = 0; j < g.entities[k].n_mentions; j++)
			assert_true(g.entities[k].mentions[j].chunk != (long)fail_at &&
				    g.entities[k].mentions[j].chunk != (long)bad_at);
	hark_minutes_clear(&mn);
	hark_graph_clear(&g);

	/* the reduce fails (the provider is down): offline summary, err says so */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":503}"), 200);
	{
		struct hark_llm_minutes_params p2 = p;

		p2.reduce_max_tokens = 1999; /* a request not in the cache */
		assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
							(const char *const *)got.json, NULL, &off,
							&p2, &mn, &g, NULL, err, sizeof(err)),
				 HARK_OK);
	}
	assert_true(strlen(err) > 0);
	assert_string_equal(mn.summary, off.summary);
	assert_int_equal(mn.n_topics, 1);
	assert_string_equal(mn.topics[0].title, "Offline topic");
	assert_true(mn.n_decisions + mn.n_actions + mn.n_questions > 0);
	assert_string_equal(mn.method, "llm");
	check_minutes_schema(&mn);
	hark_minutes_clear(&mn);
	hark_graph_clear(&g);
	assert_int_equal(lt_sim_post(&sim, "/_sim/recover", "{}"), 200);

	got_free(&got);
	hark_minutes_clear(&off);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	mt_free(&m);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* -------------------------------------------- 3. hierarchical reduce ----- */

static void test_hierarchical_reduce(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_llm_minutes_params p = hark_llm_minutes_default_params();
	struct hark_llm_minutes_stats s;
	struct hark_minutes off, mn;
	struct hark_graph g = {0};
	struct got got;
	struct mt m;
	const char *prompt;
	char *scfg, err[256] = "";
	size_t n, notes_tokens = 0, sys_tokens;
	long tiny;
	json_t *log, *e;
	size_t i, reduce_reqs = 0;

	(void)state;
	REQUIRE_SIM(300);
	mt_load(&m, "ES2004b", 300);
	n = m.chunks.n;
	assert_true(n >= 20);

	/* extract with the big model first (a plain config) */
	scfg = sim_config(0);
	assert_int_equal(lt_sim_start(&sim, scfg, SCALE, NULL), 0);
	free(scfg);
	cfg = mk_config(&sim, 0, "big", 2);
	c = mk_client(cfg, NULL);
	p.batch_chunks = 10;
	p.max_tokens_per_chunk = 1000;
	memset(&s, 0, sizeof(s));
	got_init(&got, n);
	assert_int_equal(hark_llm_minutes_extract(c, m.in, n, &p, on_chunk, &got, &s), HARK_OK);
	for (i = 0; i < n; i++) {
		json_t *v, *it;
		size_t j;

		assert_int_equal(got.err[i], 0);
		v = json_loads(got.json[i], 0, NULL);
		json_array_foreach(json_object_get(v, "notes"), j, it) {
			const char *t = json_string_value(json_object_get(it, "text"));

			notes_tokens += hark_llm_tokens_count(t, strlen(t));
		}
		json_decref(v);
	}
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);

	/* a reduce model whose window holds the prompt, the reply budget and
	 * about half of the notes: one flat request cannot fit */
	assert_int_equal(hark_prompts_get("prompts/minutes_reduce.md", &prompt, NULL), 0);
	sys_tokens = hark_llm_tokens_count(prompt, strlen(prompt));
	p.reduce_max_tokens = 1500;
	tiny = (long)(sys_tokens + 1500 + 64 + notes_tokens * 3 / 4);
	scfg = sim_config(tiny);
	assert_int_equal(lt_sim_start(&sim, scfg, SCALE, NULL), 0);
	free(scfg);
	cfg = mk_config(&sim, tiny, "tiny", 2);
	c = mk_client(cfg, NULL);
	mk_offline(&off, &m);
	memset(&s, 0, sizeof(s));
	assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
						(const char *const *)got.json, NULL, &off, &p, &mn,
						&g, &s, err, sizeof(err)),
			 HARK_OK);
	if (err[0])
		fail_msg("hierarchical reduce fell back: %s", err);
	fprintf(stderr, "hierarchical reduce: %zu chunks, %zu levels, %zu requests\n", n,
		s.reduce_levels, s.reduce_requests);
	assert_true(s.reduce_levels >= 2);
	assert_true(s.reduce_requests >= 3);
	assert_string_equal(mn.model, "p/tiny");
	assert_string_not_equal(mn.summary, off.summary);
	assert_true(mn.n_topics >= 1);
	check_build(&mn, &g, &m, &off);

	/* every reduce request fitted the tiny window (none was refused) */
	log = lt_sim_log(&sim);
	json_array_foreach(log, i, e) {
		assert_int_equal(json_integer_value(json_object_get(e, "status")), 200);
		assert_true(json_integer_value(json_object_get(e, "prompt_tokens")) + 1500 <=
			    tiny);
		reduce_reqs++;
	}
	assert_int_equal(reduce_reqs, s.reduce_requests);
	json_decref(log);
	hark_minutes_clear(&mn);
	hark_graph_clear(&g);

	got_free(&got);
	hark_minutes_clear(&off);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	mt_free(&m);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ---------------------------------------- 4. build from given slices ---- */

/* The first turn in [a, b] with at least 6 words and no bracket. */
static size_t pick_turn(const struct mt *m, size_t a, size_t b)
{
	for (size_t t = a; t <= b; t++) {
		const char *x = m->turns[t].text;
		size_t words = 0;

		if (strpbrk(x, "{[<"))
			continue;
		for (const char *q = x; *q; q++)
			if (*q == ' ')
				words++;
		if (words >= 5 && m->turns[t].speaker)
			return t;
	}
	fail_msg("no usable turn in %zu..%zu", a, b);
	return 0;
}

static void test_build_given_slices(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *c;
	struct hark_minutes off, mn;
	struct hark_graph g = {0};
	struct mt m;
	char *scfg, err[256] = "", **slices;
	size_t t_dec, t_act;
	const struct hark_chunk *c0, *c1;
	struct hark_date d = {2024, 3, 4}; /* a Monday */
	json_t *j0, *j1;
	long battery = -1, remote = -1;

	(void)state;
	REQUIRE_SIM(120);
	mt_load(&m, "ES2004a", 600);
	c0 = &m.chunks.chunks[0];
	c1 = &m.chunks.chunks[1];
	assert_true(c1->first_turn <= c0->last_turn); /* they overlap */
	t_dec = pick_turn(&m, c1->first_turn, c0->last_turn);
	t_act = pick_turn(&m, c0->first_turn + 1, c0->last_turn);

	/* chunk 0 and chunk 1 both report the decision of an overlap turn */
	j0 = json_pack("{s:[{s:s}], s:[{s:s,s:s}], s:[{s:s,s:s,s:s,s:s}],"
		       "s:[{s:s,s:s}], s:[{s:s,s:s,s:s}], s:[{s:s,s:s,s:s,s:s}]}",
		       "notes", "text", "The team opened the meeting.",
		       "decisions", "decision", "Use a solar battery.", "evidence",
		       m.turns[t_dec].text,
		       "action_items", "task", "Draft the case design", "owner", "Marketing", "due",
		       "by next Friday", "evidence", m.turns[t_act].text,
		       "open_questions", "question", "Who pays for it?", "evidence",
		       "zebra quokka platypus",
		       "entities", "name", "Solar Battery", "type", "product", "evidence",
		       m.turns[t_dec].text,
		       "relations", "source", "Solar Battery", "target", "Remote Control", "type",
		       "Powers", "evidence", m.turns[t_dec].text);
	j1 = json_pack("{s:[{s:s}], s:[{s:s,s:s}], s:[], s:[], s:[], s:[]}",
		       "notes", "text", "The battery was chosen.",
		       "decisions", "decision", "use a Solar  battery!", "evidence",
		       m.turns[t_dec].text,
		       "action_items", "open_questions", "entities", "relations");
	assert_non_null(j0);
	assert_non_null(j1);
	slices = calloc(m.chunks.n, sizeof(char *));
	assert_non_null(slices);
	slices[0] = json_dumps(j0, JSON_COMPACT);
	slices[1] = json_dumps(j1, JSON_COMPACT);

	scfg = sim_config(0);
	assert_int_equal(lt_sim_start(&sim, scfg, SCALE, NULL), 0);
	free(scfg);
	cfg = mk_config(&sim, 0, "big", 2);
	c = mk_client(cfg, NULL);
	mk_offline(&off, &m);
	assert_int_equal(hark_llm_minutes_build(c, m.text.id, m.turns, m.n_turns, &m.chunks,
						(const char *const *)slices, &d, &off, NULL, &mn,
						&g, NULL, err, sizeof(err)),
			 HARK_OK);

	/* one decision (the duplicate from the overlap is dropped), located */
	assert_int_equal(mn.n_decisions, 1);
	assert_string_equal(mn.decisions[0].text, "Use a solar battery.");
	assert_int_equal(mn.decisions[0].ref.turn, (long)t_dec);
	assert_string_equal(mn.decisions[0].ref.speaker, m.turns[t_dec].speaker);
	assert_true(mn.decisions[0].ref.start_s == m.turns[t_dec].start_s);
	assert_true(mn.decisions[0].confidence > 0.7);
	/* the action item: owner kept, "by next Friday" said on Monday 2024-03-04 */
	assert_int_equal(mn.n_actions, 1);
	assert_string_equal(mn.actions[0].owner, "Marketing");
	assert_string_equal(mn.actions[0].due, "by next Friday");
	assert_string_equal(mn.actions[0].due_iso, "2024-03-15");
	assert_int_equal(mn.actions[0].ref.turn, (long)t_act);
	/* a quote found nowhere: the chunk's start, lower confidence */
	assert_int_equal(mn.n_questions, 1);
	assert_int_equal(mn.questions[0].ref.turn, (long)c0->first_turn);
	assert_true(mn.questions[0].confidence < mn.decisions[0].confidence);
	/* the reduce saw both chunks' notes */
	assert_true(mn.n_topics >= 1);
	for (size_t i = 0; i < mn.n_topics; i++)
		assert_true(mn.topics[i].ref.last_turn <= (long)c1->last_turn);
	check_minutes_schema(&mn);

	/* graph: the entity, the relation's unknown end as a concept */
	assert_int_equal(g.n_entities, 2);
	for (size_t i = 0; i < g.n_entities; i++) {
		if (strcmp(g.entities[i].name, "Solar Battery") == 0)
			battery = (long)i;
		if (strcmp(g.entities[i].name, "Remote Control") == 0)
			remote = (long)i;
	}
	assert_true(battery >= 0 && remote >= 0);
	assert_string_equal(g.entities[battery].type, "product");
	assert_string_equal(g.entities[remote].type, "concept");
	assert_int_equal(g.entities[battery].mentions[0].chunk, 0);
	assert_int_equal(g.entities[battery].mentions[0].turn, (long)t_dec);
	assert_int_equal(g.n_relations, 1);
	assert_int_equal(g.relations[0].source, (size_t)battery);
	assert_int_equal(g.relations[0].target, (size_t)remote);
	assert_string_equal(g.relations[0].type, "powers");

	hark_minutes_clear(&mn);
	hark_graph_clear(&g);
	free(slices[0]);
	free(slices[1]);
	free(slices);
	json_decref(j0);
	json_decref(j1);
	hark_minutes_clear(&off);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	mt_free(&m);
	assert_int_equal(lt_sim_stop(&sim), 0);
}

/* ------------------------------------------------------ 5. arguments ---- */

static void test_args(void **state)
{
	struct hark_llm_minutes_params p = hark_llm_minutes_default_params();
	struct hark_llm_chunk_in in = {NULL, "text"};
	struct got got;
	char k1[65], k2[65];

	(void)state;
	lt_clean_env();
	assert_int_equal(p.batch_chunks, 10);
	assert_int_equal(p.max_tokens_per_chunk, 800);
	got_init(&got, 1);
	assert_int_equal(hark_llm_minutes_extract(NULL, &in, 1, &p, on_chunk, &got, NULL),
			 HARK_ERR_INVALID_ARG);
	p.batch_chunks = 0;
	assert_int_equal(hark_llm_minutes_extract((struct hark_llm *)&p, &in, 1, &p, on_chunk,
						  &got, NULL),
			 HARK_ERR_INVALID_ARG);
	p.batch_chunks = 51;
	assert_int_equal(hark_llm_minutes_extract((struct hark_llm *)&p, &in, 1, &p, on_chunk,
						  &got, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(got.calls[0], 0);
	got_free(&got);
	/* the pipeline key is stable */
	assert_int_equal(hark_llm_minutes_pipeline_key(k1), 0);
	assert_int_equal(hark_llm_minutes_pipeline_key(k2), 0);
	assert_string_equal(k1, k2);
	assert_int_equal(strspn(k1, "0123456789abcdef"), 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_args, lt_teardown),
		cmocka_unit_test_teardown(test_extract_cache_build, lt_teardown),
		cmocka_unit_test_teardown(test_failures, lt_teardown),
		cmocka_unit_test_teardown(test_hierarchical_reduce, lt_teardown),
		cmocka_unit_test_teardown(test_build_given_slices, lt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
