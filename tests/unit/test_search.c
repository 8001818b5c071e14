/*
 * Cross-meeting search (src/analyze/search.h) on a real store: the safe
 * FTS5 query built from free text (quoted words only, whatever the user
 * typed), hostile queries that must never fail except when they have no
 * word at all, BM25 search over real QMSum meetings (hits really contain
 * the query word, kind and meeting filters, limits, the JSON rendering),
 * and hybrid search against the provider simulator (hark-llm-sim, whose
 * embeddings hash words and word pairs): vectors stored once per text
 * (a second embedding pass makes no HTTP request, by the client's own
 * totals), the vector list ordered by cosine similarity computed here from
 * the stored vectors, reciprocal rank fusion scores recomputed from the
 * reported ranks, and a failed query embedding degrading to BM25.
 */
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "analyze/meeting_text.h"
#include "analyze/search.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "store/store.h"

#include "llmtest_util.h"

struct fx {
	char root[256];
	char dir[300];
	struct hark_store *st;
};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct hark_store_params p = hark_store_default_params();
	struct fx *f = calloc(1, sizeof(*f));
	char err[256] = "";

	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/hark-search.XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
	p.sync_full = 0;
	if (hark_store_open(f->dir, &p, &f->st, err, sizeof(err)) != HARK_OK) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	lt_cleanup();
	hark_store_close(f->st);
	nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void put_docs(struct hark_store *st, const char *meeting, const char *const *texts,
		     size_t n, const char *kind)
{
	struct hark_meeting_rec m;
	struct hark_search_doc *d = calloc(n ? n : 1, sizeof(*d));

	assert_non_null(d);
	memset(&m, 0, sizeof(m));
	m.name = (char *)meeting;
	m.method = (char *)"offline";
	for (size_t i = 0; i < n; i++) {
		d[i].kind = kind;
		d[i].text = texts[i];
		d[i].start_s = -1;
		d[i].end_s = -1;
		d[i].turn = (long)i;
	}
	assert_int_equal(hark_store_meeting_put(st, &m, NULL, 0, d, n), HARK_OK);
	free(d);
}

/* ---- query building --------------------------------------------------------------------- */

/* out must be one or more "word" joined by " OR ", no other quote. */
static void check_fts_shape(const char *q)
{
	const char *p = q;

	assert_true(*p == '"');
	while (*p) {
		const char *e;

		assert_true(*p == '"');
		e = strchr(p + 1, '"');
		assert_non_null(e);
		assert_true(e > p + 1); /* non-empty word */
		for (const char *c = p + 1; c < e; c++)
			assert_true(*c != ' ' && *c != '*' && *c != '(' && *c != ':');
		p = e + 1;
		if (*p) {
			assert_memory_equal(p, " OR ", 4);
			p += 4;
		}
	}
}

static void expect_fts(const char *query, const char *want)
{
	char out[4096], err[256] = "";

	assert_int_equal(hark_search_fts_query(query, out, sizeof(out), err, sizeof(err)), HARK_OK);
	check_fts_shape(out);
	if (want)
		assert_string_equal(out, want);
}

static void test_fts_query(void **state)
{
	char out[4096], err[256] = "", *big;
	size_t words = 1;

	(void)state;
	expect_fts("Budget review", "\"budget\" OR \"review\"");
	expect_fts("what about the budget?", "\"budget\"");
	expect_fts("the", "\"the\""); /* only stop words: keep them */
	expect_fts("Budget budget BUDGET", "\"budget\"");
	expect_fts("NEAR(budget, 3)", "\"near\" OR \"budget\" OR \"3\"");
	expect_fts("budget\" OR \"x*", "\"budget\" OR \"x\"");
	expect_fts("-budget +review ^title col:value", "\"budget\" OR \"review\" OR \"title\" OR "
						      "\"col\" OR \"value\"");
	expect_fts("Caf\xc3\xa9 na\xc3\xafve \xc2\xab" "x" "\xc2\xbb",
		   "\"caf\xc3\xa9\" OR \"na\xc3\xafve\" OR \"x\"");
	expect_fts("bad\xff" "byte", "\"bad\" OR \"byte\"");
	/* no word at all */
	const char *none[] = {"", "   \t\n", "\"", "*", "-", "\"\"\"", "NEAR(", "(((", "\xc2\xab\xc2\xbb",
			      "\xe2\x80\x94", "\xf0\x9f\x98\x80", "\xff\xfe"};

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		int rc = hark_search_fts_query(none[i], out, sizeof(out), err, sizeof(err));

		if (i == 6) {
			/* "NEAR(" has the word "near" */
			assert_int_equal(rc, HARK_OK);
			continue;
		}
		assert_int_equal(rc, HARK_ERR_INVALID_ARG);
		assert_non_null(strstr(err, "no words"));
	}
	/* very long: bounded words and bytes */
	big = malloc(200000);
	assert_non_null(big);
	big[0] = '\0';
	for (size_t o = 0; o < 190000;) {
		o += (size_t)snprintf(big + o, 200000 - o, "w%zu ", words++);
	}
	assert_int_equal(hark_search_fts_query(big, out, sizeof(out), err, sizeof(err)), HARK_OK);
	check_fts_shape(out);
	{
		size_t n = 1;

		for (const char *p = out; (p = strstr(p, " OR ")); p += 4)
			n++;
		assert_int_equal(n, HARK_SEARCH_WORDS_MAX);
	}
	/* one huge word is cut to the word cap */
	memset(big, 'a', 100000);
	big[100000] = '\0';
	assert_int_equal(hark_search_fts_query(big, out, sizeof(out), err, sizeof(err)), HARK_OK);
	assert_int_equal(strlen(out), HARK_SEARCH_WORD_MAX + 2);
	free(big);
	/* small buffer */
	assert_int_equal(hark_search_fts_query("budget review", out, 8, err, sizeof(err)),
			 HARK_ERR_LIMIT);
}

/* ---- BM25 over real meetings --------------------------------------------------------------- */

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

/* Loads QMSum meeting id as "chunk" documents (one per non-empty turn);
 * returns the number of turns whose text contains needle (lowercase). */
static size_t load_qmsum(struct hark_store *st, const char *id, const char *needle)
{
	struct hark_meeting_text mt;
	struct hark_meeting_rec m;
	struct hark_search_doc *d;
	const char *shared = getenv("HARK_SHARED");
	char path[512], err[256] = "";
	size_t n = 0, with = 0;

	snprintf(path, sizeof(path), "%s/meetings/qmsum/%s.json", shared ? shared : "../shared",
		 id);
	if (hark_meeting_text_read(path, NULL, &mt, err, sizeof(err)) != HARK_OK)
		fail_msg("read %s: %s", path, err);
	d = calloc(mt.n_turns, sizeof(*d));
	assert_non_null(d);
	for (size_t i = 0; i < mt.n_turns; i++) {
		char *l;

		if (!mt.turns[i].text[0] || strlen(mt.turns[i].text) > HARK_STORE_DOC_TEXT_MAX)
			continue;
		d[n].kind = "chunk";
		d[n].speaker = mt.turns[i].speaker;
		d[n].text = mt.turns[i].text;
		d[n].start_s = -1;
		d[n].end_s = -1;
		d[n].turn = (long)i;
		l = lower_dup(mt.turns[i].text);
		with += strstr(l, needle) != NULL;
		free(l);
		n++;
	}
	memset(&m, 0, sizeof(m));
	m.name = (char *)id;
	m.source = path;
	m.method = (char *)"offline";
	assert_int_equal(hark_store_meeting_put(st, &m, NULL, 0, d, n), HARK_OK);
	free(d);
	hark_meeting_text_clear(&mt);
	return with;
}

static void test_bm25_qmsum(void **state)
{
	struct fx *f = *state;
	struct hark_search_params p = hark_search_default_params();
	struct hark_search_hit *h = NULL;
	char err[256] = "";
	size_t n, with_a, with_b, seen_a = 0, seen_b = 0;
	json_t *js;

	with_a = load_qmsum(f->st, "ES2004a", "remote");
	with_b = load_qmsum(f->st, "ES2004b", "remote");
	assert_true(with_a > 3 && with_b > 3);

	p.limit = 100;
	assert_int_equal(hark_search_query(f->st, NULL, "the remotes?", &p, &h, &n, err,
					   sizeof(err)),
			 HARK_OK);
	/* every hit really holds the word (Porter: remotes -> remot), both meetings */
	assert_true(n > 0 && n <= 100);
	assert_true(n >= (with_a + with_b < 100 ? with_a + with_b : 100) / 2);
	for (size_t i = 0; i < n; i++) {
		char *l = lower_dup(h[i].text);

		assert_non_null(strstr(l, "remot"));
		assert_non_null(strstr(h[i].snippet, "\xc2\xab"));
		free(l);
		seen_a += strcmp(h[i].meeting, "ES2004a") == 0;
		seen_b += strcmp(h[i].meeting, "ES2004b") == 0;
		assert_int_equal(h[i].bm25_rank, (int)i + 1);
		assert_int_equal(h[i].vec_rank, 0);
		if (i)
			assert_true(h[i - 1].score >= h[i].score);
	}
	assert_true(seen_a > 0 && seen_b > 0);
	js = hark_search_hits_to_json("the remotes?", h, n);
	assert_non_null(js);
	assert_string_equal(json_string_value(json_object_get(js, "query")), "the remotes?");
	assert_int_equal(json_array_size(json_object_get(js, "results")), n);
	{
		json_t *r0 = json_array_get(json_object_get(js, "results"), 0);
		const char *keys[] = {"kind",  "meeting", "speaker", "start", "end",
				      "turn",  "text",    "snippet", "score"};

		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			assert_non_null(json_object_get(r0, keys[k]));
		assert_true(json_is_null(json_object_get(r0, "start")));
		assert_true(json_is_integer(json_object_get(r0, "turn")));
		assert_string_equal(json_string_value(json_object_get(r0, "text")), h[0].text);
		assert_true(json_real_value(json_object_get(r0, "score")) == h[0].score);
	}
	json_decref(js);
	hark_search_hits_free(h, n);

	/* meeting filter and limit */
	p.meeting = "ES2004b";
	p.limit = 5;
	assert_int_equal(hark_search_query(f->st, NULL, "remote control", &p, &h, &n, err,
					   sizeof(err)),
			 HARK_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(h[i].meeting, "ES2004b");
	hark_search_hits_free(h, n);
	/* kind filter: no summaries stored */
	p.meeting = NULL;
	p.kind = "summary";
	assert_int_equal(hark_search_query(f->st, NULL, "remote", &p, &h, &n, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(n, 0);
	assert_null(h);
	p.kind = "memo";
	assert_int_equal(hark_search_query(f->st, NULL, "remote", &p, &h, &n, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	/* limit capped at 100 */
	p.kind = NULL;
	p.limit = 100000;
	assert_int_equal(hark_search_query(f->st, NULL, "remote", &p, &h, &n, err, sizeof(err)),
			 HARK_OK);
	assert_true(n <= HARK_SEARCH_LIMIT_MAX);
	hark_search_hits_free(h, n);
}

static void test_hostile_queries(void **state)
{
	struct fx *f = *state;
	const char *texts[] = {"budget review for the marketing team", "near the window",
			       "col value pairs", "the end"};
	const char *ok[] = {"\"budget", "budget*", "NEAR(budget review)", "-budget", "budget -",
			    "budget AND", "OR OR OR budget", "col:value", "{budget review}",
			    "^budget", "budget\"review", "'; DROP TABLE search_docs; --",
			    "\\\" OR 1=1 --", "(budget)) OR ((review", "the"};
	const char *bad[] = {"", "\"", "*", "-", "NOT", "((()))", "\xe2\x80\xa6"};
	struct hark_search_hit *h = NULL;
	char err[256], *big;
	size_t n;

	(void)state;
	put_docs(f->st, "m", texts, 4, "chunk");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err[0] = '\0';
		if (hark_search_query(f->st, NULL, ok[i], NULL, &h, &n, err, sizeof(err)) != HARK_OK)
			fail_msg("query %s: %s", ok[i], err);
		hark_search_hits_free(h, n);
	}
	/* "NOT" is a word to look for (not an operator) */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = hark_search_query(f->st, NULL, bad[i], NULL, &h, &n, err, sizeof(err));

		if (strcmp(bad[i], "NOT") == 0) {
			assert_int_equal(rc, HARK_OK);
			hark_search_hits_free(h, n);
			continue;
		}
		assert_int_equal(rc, HARK_ERR_INVALID_ARG);
		assert_null(h);
		assert_int_equal(n, 0);
		assert_true(err[0] != '\0');
	}
	/* the table survived the injection attempt */
	assert_int_equal(hark_search_query(f->st, NULL, "budget", NULL, &h, &n, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(n, 1);
	hark_search_hits_free(h, n);
	/* very long queries */
	big = malloc(1 << 20);
	assert_non_null(big);
	for (size_t i = 0; i < (1 << 20) - 1; i++)
		big[i] = "budget \"*(NEAR-"[i % 15];
	big[(1 << 20) - 1] = '\0';
	assert_int_equal(hark_search_query(f->st, NULL, big, NULL, &h, &n, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(n, 2); /* "budget" and "near" */
	hark_search_hits_free(h, n);
	memset(big, '"', (1 << 20) - 1);
	assert_int_equal(hark_search_query(f->st, NULL, big, NULL, &h, &n, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	free(big);
	assert_int_equal(hark_search_query(f->st, NULL, NULL, NULL, &h, &n, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
}

/* ---- hybrid against the simulator ---------------------------------------------------------- */

static const char *const hybrid_texts[] = {
	/* 0 */ "Revenue forecast for the quarter looks strong according to finance.",
	/* 1 */ "Quarterly forecast: forecast numbers, forecast dates, forecast owners.",
	/* 2 */ "The team discussed the office party and the catering.",
	/* 3 */ "The quarterly revenue forecast was approved by the board.",
	/* 4 */ "Marketing wants a bigger budget for the spring campaign.",
	/* 5 */ "Engineering will ship the mobile app in june.",
};
#define N_HYBRID 6

static void on_alarm(int sig)
{
	(void)sig;
	lt_kill_all();
	_exit(1);
}

static int64_t requests(struct hark_llm *c)
{
	struct hark_llm_totals t;

	hark_llm_get_totals(c, &t);
	return t.requests;
}

static double cosine(const float *a, const float *b, size_t dim)
{
	double d = 0, na = 0, nb = 0;

	for (size_t i = 0; i < dim; i++) {
		d += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	return d / sqrt(na * nb);
}

static int text_index(const char *t)
{
	for (int i = 0; i < N_HYBRID; i++)
		if (strcmp(t, hybrid_texts[i]) == 0)
			return i;
	return -1;
}

static void test_hybrid_sim(void **state)
{
	struct fx *f = *state;
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm_params lp = hark_llm_default_params();
	struct hark_llm *c = NULL;
	struct hark_search_params p = hark_search_default_params();
	struct hark_search_hit *h = NULL;
	struct hark_llm_embed_result qe;
	const char *query = "quarterly revenue forecast";
	const char *shas[N_HYBRID];
	char sh[N_HYBRID][HARK_SHA_HEX_LEN], err[256] = "", *model = NULL, *cj;
	float *vecs[N_HYBRID];
	size_t dims[N_HYBRID], n;
	double sim_of[N_HYBRID];
	int64_t r0, r1;
	int n_pos = 0;

	signal(SIGALRM, on_alarm);
	alarm(120);
	lt_clean_env();
	if (!lt_sim_bin()) {
		fprintf(stderr, "hark-llm-sim not built ($HARK_SIM_BIN): skipped\n");
		skip();
	}
	assert_int_equal(lt_sim_start(&sim, NULL, 20, NULL), 0);
	cj = lt_fmt("{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		    "{\"name\":\"sim-small\"},"
		    "{\"name\":\"sim-embed\",\"embedding\":true}]}],"
		    "\"routes\":{\"embed\":[\"p/sim-embed\"]},"
		    "\"llm\":{\"time_scale\":20,\"max_attempts\":1}}",
		    sim.base_v1);
	cfg = lt_config(cj);
	free(cj);
	assert_non_null(cfg);
	lp.config = cfg;
	lp.store = f->st;
	lp.no_cache = 1; /* only the search store may spare requests here */
	lp.seed = 1;
	assert_int_equal(hark_llm_init(&lp, &c, err, sizeof(err)), HARK_OK);

	put_docs(f->st, "plan", hybrid_texts, N_HYBRID, "chunk");

	/* no vectors yet: hybrid asked for, BM25 only, and no request made */
	r0 = requests(c);
	assert_int_equal(hark_search_query(f->st, c, query, &p, &h, &n, err, sizeof(err)), HARK_OK);
	assert_int_equal(requests(c), r0);
	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].vec_rank, 0);
	hark_search_hits_free(h, n);

	/* embed every document once; the second pass costs nothing */
	assert_int_equal(hark_search_embed_docs(f->st, c, NULL, hybrid_texts, N_HYBRID, "job-x",
						err, sizeof(err)),
			 HARK_OK);
	r1 = requests(c);
	assert_true(r1 > r0);
	assert_int_equal(hark_search_embed_docs(f->st, c, NULL, hybrid_texts, N_HYBRID, NULL, err,
						sizeof(err)),
			 HARK_OK);
	assert_int_equal(requests(c), r1);
	/* one new text among known ones: one request with one input */
	{
		const char *more[] = {hybrid_texts[2], "A brand new line about revenue.",
				      hybrid_texts[0]};
		json_t *log, *emb;

		assert_int_equal(hark_search_embed_docs(f->st, c, "embed", more, 3, NULL, err,
							sizeof(err)),
				 HARK_OK);
		assert_int_equal(requests(c), r1 + 1);
		log = lt_sim_log(&sim);
		emb = lt_log_filter(log, NULL, "sim-embed", 200, "embeddings");
		assert_true(json_array_size(emb) >= 2);
		assert_int_equal(json_integer_value(json_object_get(
					 json_array_get(emb, json_array_size(emb) - 1), "n_inputs")),
				 1);
		json_decref(emb);
		json_decref(log);
	}
	assert_int_equal(hark_store_meta_get(f->st, "search.embed_model.embed", &model), HARK_OK);
	assert_string_equal(model, "p/sim-embed");
	for (int i = 0; i < N_HYBRID; i++) {
		hark_store_key_hash(hybrid_texts[i], sh[i]);
		shas[i] = sh[i];
	}
	assert_int_equal(hark_store_embedding_get_many(f->st, model, shas, N_HYBRID, vecs, dims),
			 HARK_OK);
	for (int i = 0; i < N_HYBRID; i++)
		assert_non_null(vecs[i]);

	/* the expected vector order, from the stored vectors and the query's own embedding */
	memset(&qe, 0, sizeof(qe));
	assert_int_equal(hark_llm_embed(c, "embed", &query, 1, NULL, NULL, &qe), HARK_OK);
	assert_int_equal(qe.dim, dims[0]);
	for (int i = 0; i < N_HYBRID; i++) {
		sim_of[i] = cosine(qe.vectors, vecs[i], qe.dim);
		n_pos += sim_of[i] > 0;
	}
	hark_llm_embed_result_clear(&qe);
	/* the phrase overlap ("quarterly revenue forecast") is the nearest */
	for (int i = 0; i < N_HYBRID; i++)
		if (i != 3)
			assert_true(sim_of[3] > sim_of[i]);

	r0 = requests(c);
	assert_int_equal(hark_search_query(f->st, c, query, &p, &h, &n, err, sizeof(err)), HARK_OK);
	assert_int_equal(requests(c), r0 + 1); /* the query's embedding */
	assert_string_equal(err, "");
	assert_true(n >= 3);
	{
		int vec_seen = 0, both = 0;
		double prev_sim = 2;

		for (int want = 1; want <= N_HYBRID; want++) {
			for (size_t i = 0; i < n; i++) {
				int t;

				if (h[i].vec_rank != want)
					continue;
				t = text_index(h[i].text);
				assert_true(t >= 0);
				assert_true(sim_of[t] > 0);
				assert_true(sim_of[t] <= prev_sim);
				prev_sim = sim_of[t];
				vec_seen++;
			}
		}
		assert_int_equal(vec_seen, n_pos); /* every positive-cosine doc, in cosine order */
		for (size_t i = 0; i < n; i++) {
			double want = 0;

			if (h[i].bm25_rank)
				want += 1.0 / (60 + h[i].bm25_rank);
			if (h[i].vec_rank)
				want += 1.0 / (60 + h[i].vec_rank);
			assert_true(fabs(h[i].score - want) < 1e-12);
			both += h[i].bm25_rank && h[i].vec_rank;
			if (i)
				assert_true(h[i - 1].score >= h[i].score);
		}
		assert_true(both >= 1);
		/* the phrase match leads the fused list, found by both lists */
		assert_string_equal(h[0].text, hybrid_texts[3]);
		assert_int_equal(h[0].vec_rank, 1);
		assert_true(h[0].bm25_rank > 0);
	}
	hark_search_hits_free(h, n);

	/* filters apply to the vector list too */
	p.meeting = "elsewhere";
	assert_int_equal(hark_search_query(f->st, c, query, &p, &h, &n, err, sizeof(err)), HARK_OK);
	assert_int_equal(n, 0);
	p.meeting = NULL;

	/* BM25 only without a client, or with hybrid off */
	p.hybrid = 0;
	r0 = requests(c);
	assert_int_equal(hark_search_query(f->st, c, query, &p, &h, &n, err, sizeof(err)), HARK_OK);
	assert_int_equal(requests(c), r0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].vec_rank, 0);
	hark_search_hits_free(h, n);
	p.hybrid = 1;

	/* the provider failing: BM25 results, and a warning */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":400}"), 200);
	assert_int_equal(hark_search_query(f->st, c, query, &p, &h, &n, err, sizeof(err)), HARK_OK);
	assert_true(n >= 3);
	assert_non_null(strstr(err, "BM25"));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].vec_rank, 0);
	hark_search_hits_free(h, n);
	{
		const char *nt[] = {"an unseen text"};

		assert_int_not_equal(hark_search_embed_docs(f->st, c, NULL, nt, 1, NULL, err,
							    sizeof(err)),
				     HARK_OK);
		assert_true(err[0] != '\0');
	}

	for (int i = 0; i < N_HYBRID; i++)
		free(vecs[i]);
	free(model);
	hark_llm_free(c);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
	alarm(0);
}

static void test_embed_docs_args(void **state)
{
	struct fx *f = *state;
	char err[256];
	const char *empty[] = {""};

	/* argument checks need no provider */
	assert_int_equal(hark_search_embed_docs(f->st, NULL, NULL, empty, 1, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_search_embed_docs(NULL, NULL, NULL, NULL, 0, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fts_query),
		cmocka_unit_test_setup_teardown(test_bm25_qmsum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_sim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embed_docs_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
