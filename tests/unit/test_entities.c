/*
 * Offline entity extractor (src/analyze/entities.c): on a hand-written
 * meeting the expected people, organisations and acronyms come out with the
 * right types, turn references, times and co-occurrence / "mentions"
 * weights (worked out by hand below); sentence-start words, fillers and
 * months are not entities; repeated lowercase terms become concepts;
 * parameters and cancellation; determinism; and on every shared meeting
 * ($HARK_SHARED/meetings) extraction succeeds, finds entities and the
 * resolved graph validates against share/schemas/graph.json.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analyze/entities.h"
#include "schema_util.h"
#include "analyze/graph.h"
#include "analyze/meeting_text.h"
#include "hark/hark.h"
#include "llm/schema.h"

/* ------------------------------------------------------------ helpers ---- */

static size_t find(const struct hark_graph *g, const char *s)
{
	for (size_t i = 0; i < g->n_entities; i++) {
		if (strcmp(g->entities[i].name, s) == 0)
			return i;
		for (size_t k = 0; k < g->entities[i].n_aliases; k++)
			if (strcmp(g->entities[i].aliases[k], s) == 0)
				return i;
	}
	return SIZE_MAX;
}

/* The relation a -[type]-> b (either direction for co_occurs), or NULL. */
static const struct hark_graph_relation *rel(const struct hark_graph *g, size_t a, size_t b,
					     const char *type)
{
	for (size_t i = 0; i < g->n_relations; i++) {
		const struct hark_graph_relation *r = &g->relations[i];
		if (strcmp(r->type, type) != 0)
			continue;
		if ((r->source == a && r->target == b) ||
		    (strcmp(type, "co_occurs") == 0 && r->source == b && r->target == a))
			return r;
	}
	return NULL;
}

static size_t count_type(const struct hark_graph *g, const char *type)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n_relations; i++)
		n += strcmp(g->relations[i].type, type) == 0;
	return n;
}

static struct hark_llm_schema *load_schema(void)
{
	struct hark_llm_schema *s = su_schema_load("graph.json");

	assert_non_null(s);
	return s;
}

/* ------------------------------------------------------------ fixture ---- */

/* Six sentences (numbered s0..s5 below); turn i spans [10 i, 10 i + 10] s. */
static const struct hark_chunk_turn meeting[] = {
	/* s0: -   s1: Acme, WHO */
	{"Alice", "Welcome everyone. Today we review the budget with Acme Corporation and the WHO.",
	 0, 10},
	/* s2: Smith, Acme (MP3 only once) */
	{"Bob", "I spoke to Dr. Smith at Acme Corporation in March about the MP3 player.", 10, 20},
	/* s3: Smith   s4: WHO, Acme */
	{"Alice", "Um, did Dr. Smith agree? The WHO report says Acme Corporation must wait.", 20, 30},
	/* s5: Smith, WHO */
	{"Bob", "Yeah, Dr. Smith and the WHO agreed on Monday.", 30, 40},
	{"Alice", "Okay.", 40, 41},
};

static void test_hand_meeting(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	char err[256] = "";
	struct hark_entities_params p = hark_entities_default_params();
	assert_int_equal(hark_entities_extract(meeting, 5, "demo", &p, &g, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(hark_graph_resolve(&g, NULL), HARK_OK);

	size_t alice = find(&g, "Alice"), bob = find(&g, "Bob"), smith = find(&g, "Dr. Smith"),
	       acme = find(&g, "Acme Corporation"), who = find(&g, "WHO");
	assert_true(alice != SIZE_MAX && bob != SIZE_MAX && smith != SIZE_MAX &&
		    acme != SIZE_MAX && who != SIZE_MAX);
	assert_string_equal(g.entities[alice].type, "person");
	assert_string_equal(g.entities[smith].type, "person");
	assert_string_equal(g.entities[acme].type, "organization");
	assert_string_equal(g.entities[who].type, "organization");
	/* seen once only, sentence-start words, fillers, months, weekdays: absent */
	const char *absent[] = {"MP3", "Welcome", "Today", "Um", "Yeah", "Okay", "March", "Monday",
				"The WHO", "I"};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		assert_int_equal(find(&g, absent[i]), SIZE_MAX);
	assert_int_equal(g.n_entities, 5);

	/* turn references and times */
	const long acme_turns[] = {0, 1, 2}, who_turns[] = {0, 2, 3}, smith_turns[] = {1, 2, 3};
	struct {
		size_t e;
		const long *turns;
	} exp[] = {{acme, acme_turns}, {who, who_turns}, {smith, smith_turns}};
	for (size_t k = 0; k < 3; k++) {
		const struct hark_graph_entity *e = &g.entities[exp[k].e];
		assert_int_equal(e->mention_count, 3);
		assert_int_equal(e->n_mentions, 3);
		assert_int_equal(e->n_meetings, 1);
		assert_string_equal(e->meetings[0], "demo");
		for (size_t m = 0; m < 3; m++) {
			const struct hark_graph_mention *mn = &e->mentions[m];
			assert_int_equal(mn->turn, exp[k].turns[m]);
			assert_int_equal(mn->chunk, -1);
			assert_string_equal(mn->meeting, "demo");
			assert_true(mn->start_s >= 10.0 * (double)mn->turn);
			assert_true(mn->start_s < 10.0 * (double)mn->turn + 10.0);
			assert_non_null(mn->quote);
			assert_non_null(strstr(mn->quote, mn->surface));
		}
	}
	/* the second sentence of turn 0 starts after its first: interpolated */
	assert_true(g.entities[acme].mentions[0].start_s > 0.0);
	assert_non_null(strstr(g.entities[acme].mentions[0].quote, "Today we review"));
	assert_null(strstr(g.entities[acme].mentions[0].quote, "Welcome"));
	/* speakers: one mention per turn with content ("Okay." is not) */
	assert_int_equal(g.entities[alice].mention_count, 2);
	assert_int_equal(g.entities[bob].mention_count, 2);

	/* co-occurrence, same sentence: Acme+WHO in s1 and s4 -> 2 (kept);
	 * Smith+Acme (s2) and Smith+WHO (s5) -> 1 (below min_cooccur 2) */
	const struct hark_graph_relation *r = rel(&g, acme, who, "co_occurs");
	assert_non_null(r);
	assert_true(r->weight == 2.0);
	assert_int_equal(r->n_evidence, 2);
	assert_int_equal(r->evidence[0].turn, 0);
	assert_int_equal(r->evidence[1].turn, 2);
	assert_non_null(strstr(r->evidence[1].quote, "WHO report"));
	assert_int_equal(count_type(&g, "co_occurs"), 1);
	/* speaker mentions (>= 2): Alice->Acme (t0, t2), Alice->WHO (t0, t2),
	 * Bob->Dr. Smith (t1, t3); Bob->Acme, Bob->WHO, Alice->Smith once */
	assert_int_equal(count_type(&g, "mentions"), 3);
	assert_non_null(rel(&g, alice, acme, "mentions"));
	assert_non_null(rel(&g, alice, who, "mentions"));
	r = rel(&g, bob, smith, "mentions");
	assert_non_null(r);
	assert_true(r->weight == 2.0);
	assert_null(rel(&g, bob, acme, "mentions"));
	hark_graph_clear(&g);

	/* window of 2 sentences, every pair kept. By hand (S = Smith, A = Acme,
	 * W = WHO; pairs inside s_j plus pairs with s_{j-1} not inside s_j):
	 * s1 AW; s2 SA + SW, AW; s3 SA; s4 AW + SW, SA; s5 SW + SA, WA
	 * -> A-W 4, S-A 4, S-W 3. */
	p.window_sentences = 2;
	p.min_cooccur = 1;
	assert_int_equal(hark_entities_extract(meeting, 5, "demo", &p, &g, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(hark_graph_resolve(&g, NULL), HARK_OK);
	smith = find(&g, "Dr. Smith");
	acme = find(&g, "Acme Corporation");
	who = find(&g, "WHO");
	assert_true(rel(&g, acme, who, "co_occurs")->weight == 4.0);
	assert_true(rel(&g, smith, acme, "co_occurs")->weight == 4.0);
	assert_true(rel(&g, smith, who, "co_occurs")->weight == 3.0);
	assert_int_equal(count_type(&g, "co_occurs"), 3);
	hark_graph_clear(&g);

	/* min_mentions 1 lets the single MP3 through (letter+digit: product);
	 * max_entities 1 keeps only the first of the equally frequent three */
	p = hark_entities_default_params();
	p.min_mentions = 1;
	assert_int_equal(hark_entities_extract(meeting, 5, "demo", &p, &g, err, sizeof(err)),
			 HARK_OK);
	size_t mp3 = find(&g, "MP3");
	assert_true(mp3 != SIZE_MAX);
	assert_string_equal(g.entities[mp3].type, "product");
	hark_graph_clear(&g);
	p.min_mentions = 2;
	p.max_entities = 1;
	assert_int_equal(hark_entities_extract(meeting, 5, "demo", &p, &g, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(g.n_entities, 3); /* Alice, Bob + Acme (first seen) */
	assert_true(find(&g, "Acme Corporation") != SIZE_MAX);
	hark_graph_clear(&g);
}

static void test_people_and_orgs(void **state)
{
	(void)state;
	const struct hark_chunk_turn t[] = {
		{"Project Manager", "We met John Doe from the University of Edinburgh yesterday.", -1,
		 -1},
		{"Marketing", "I think John Doe liked it, and the University of Edinburgh will pay.",
		 -1, -1},
		{"Project Manager", "Then Globex Ltd and Initech Inc. sent offers. Globex Ltd was "
				    "cheaper than Initech Inc.",
		 -1, -1},
		{"PhD A", "So the L_C_D_ display and the L_C_D_ screen.", -1, -1},
	};
	struct hark_graph g = {0};
	char err[256] = "";
	assert_int_equal(hark_entities_extract(t, 4, "m", NULL, &g, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_graph_resolve(&g, NULL), HARK_OK);
	const char *want[][2] = {
		{"Project Manager", "person"},  {"Marketing", "person"},
		{"PhD A", "person"},            {"John Doe", "person"},
		{"University of Edinburgh", "organization"},
		{"Globex Ltd", "organization"}, {"Initech Inc", "organization"},
		{"LCD", "concept"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t e = find(&g, want[i][0]);
		if (e == SIZE_MAX)
			fail_msg("missing entity %s", want[i][0]);
		assert_string_equal(g.entities[e].type, want[i][1]);
	}
	/* unknown times stay unknown */
	size_t jd = find(&g, "John Doe");
	assert_true(g.entities[jd].mentions[0].start_s < 0);
	assert_int_equal(g.entities[jd].mentions[1].turn, 1);
	hark_graph_clear(&g);
}

static void test_lowercase_terms(void **state)
{
	(void)state;
	const struct hark_chunk_turn t[] = {
		{"A", "so the remote control needs a bigger battery life i think", -1, -1},
		{"B", "yeah the remote control is fine but battery life matters", -1, -1},
		{"A", "um the remote control and the power supply unit", -1, -1},
		{"B", "the power supply unit and the battery life of the remote control", -1, -1},
		{"A", "okay the power supply unit then", -1, -1},
	};
	struct hark_graph g = {0};
	char err[256] = "";
	assert_int_equal(hark_entities_extract(t, 5, "low", NULL, &g, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_graph_resolve(&g, NULL), HARK_OK);
	size_t rc = find(&g, "remote control"), bl = find(&g, "battery life"),
	       psu = find(&g, "power supply unit");
	assert_true(rc != SIZE_MAX && bl != SIZE_MAX && psu != SIZE_MAX);
	assert_string_equal(g.entities[rc].type, "concept");
	assert_int_equal(g.entities[rc].mention_count, 4);
	assert_int_equal(g.entities[bl].mention_count, 3);
	assert_int_equal(g.entities[psu].mention_count, 3);
	/* the parts of the repeated triple are not separate terms */
	assert_int_equal(find(&g, "power supply"), SIZE_MAX);
	assert_int_equal(find(&g, "supply unit"), SIZE_MAX);
	/* each turn is one sentence: remote control + battery life in turns 0, 1,
	 * 3; remote control + power supply unit in 2, 3; battery life + power
	 * supply unit only in 3 (below min_cooccur) */
	const struct hark_graph_relation *r = rel(&g, rc, bl, "co_occurs");
	assert_non_null(r);
	assert_true(r->weight == 3.0);
	r = rel(&g, rc, psu, "co_occurs");
	assert_non_null(r);
	assert_true(r->weight == 2.0);
	assert_null(rel(&g, bl, psu, "co_occurs"));
	hark_graph_clear(&g);
}

static int cancel_now(void *ud)
{
	(void)ud;
	return 1;
}

static void test_errors_and_cancel(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	char err[256] = "";
	struct hark_entities_params p = hark_entities_default_params();
	assert_int_equal(hark_entities_extract(meeting, 5, "", &p, &g, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_entities_extract(NULL, 2, "m", &p, &g, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_entities_extract(meeting, 5, "m", &p, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p.window_sentences = 0;
	assert_int_equal(hark_entities_extract(meeting, 5, "m", &p, &g, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_entities_default_params();
	p.max_input_bytes = 20;
	assert_int_equal(hark_entities_extract(meeting, 5, "m", &p, &g, err, sizeof(err)),
			 HARK_ERR_LIMIT);
	p = hark_entities_default_params();
	p.cancel = cancel_now;
	assert_int_equal(hark_entities_extract(meeting, 5, "m", &p, &g, err, sizeof(err)),
			 HARK_ERR_CANCELED);
	hark_graph_clear(&g);
	/* zero turns: nothing added */
	assert_int_equal(hark_entities_extract(NULL, 0, "m", NULL, &g, err, sizeof(err)), HARK_OK);
	assert_int_equal(g.n_entities, 0);
	/* NULL text and NULL speaker are fine */
	const struct hark_chunk_turn odd[] = {{NULL, NULL, -1, -1}, {"", "Hello IBM and IBM.", 5, 4}};
	assert_int_equal(hark_entities_extract(odd, 2, "m", NULL, &g, err, sizeof(err)), HARK_OK);
	size_t ibm = find(&g, "IBM");
	assert_true(ibm != SIZE_MAX);
	assert_true(g.entities[ibm].mentions[0].start_s == 5.0);
	hark_graph_clear(&g);
}

/* ---------------------------------------------------------- shared data ---- */

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_shared_meetings(void **state)
{
	(void)state;
	const char *root = getenv("HARK_SHARED");
	char dir[4096];
	char *paths[256];
	size_t np = 0;
	const char *sub[][2] = {{"meetings/qmsum", ".json"}, {"meetings/ami", ".transcript.txt"}};

	for (size_t s = 0; s < 2; s++) {
		snprintf(dir, sizeof(dir), "%s/%s", root ? root : "../shared", sub[s][0]);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) && np < 256) {
			if (!has_suffix(de->d_name, sub[s][1]))
				continue;
			char p[4400];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			paths[np] = strdup(p);
			assert_non_null(paths[np]);
			np++;
		}
		closedir(d);
	}
	if (np == 0)
		skip();
	qsort(paths, np, sizeof(*paths), cmp_str);
	struct hark_llm_schema *schema = load_schema();
	struct hark_graph corpus = {0};
	size_t total_entities = 0, total_rel = 0;
	for (size_t i = 0; i < np; i++) {
		struct hark_meeting_text mt;
		char err[512] = "";
		int rc = hark_meeting_text_read(paths[i], NULL, &mt, err, sizeof(err));
		if (rc)
			fail_msg("%s: %s", paths[i], err);
		struct hark_chunk_turn *t = calloc(mt.n_turns + 1, sizeof(*t));
		assert_non_null(t);
		for (size_t k = 0; k < mt.n_turns; k++)
			t[k] = (struct hark_chunk_turn){mt.turns[k].speaker, mt.turns[k].text,
						       mt.turns[k].start_s, mt.turns[k].end_s};
		struct hark_graph g = {0};
		rc = hark_entities_extract(t, mt.n_turns, mt.id, NULL, &g, err, sizeof(err));
		if (rc)
			fail_msg("%s: %s", mt.id, err);
		assert_int_equal(hark_graph_resolve(&g, NULL), HARK_OK);
		size_t non_speaker = 0;
		for (size_t e = 0; e < g.n_entities; e++) {
			const struct hark_graph_entity *en = &g.entities[e];
			assert_true(en->mention_count >= en->n_mentions);
			for (size_t m = 0; m < en->n_mentions; m++) {
				assert_string_equal(en->mentions[m].meeting, mt.id);
				assert_true(en->mentions[m].turn >= 0 &&
					    (size_t)en->mentions[m].turn < mt.n_turns);
			}
			int speaker = 0;
			for (size_t k = 0; k < mt.n_turns && !speaker; k++)
				speaker = mt.turns[k].speaker &&
					  strcmp(mt.turns[k].speaker, en->name) == 0;
			non_speaker += !speaker;
		}
		if (non_speaker < 3)
			fail_msg("%s: only %zu entities besides speakers", mt.id, non_speaker);
		json_t *j = hark_graph_to_json(&g);
		assert_non_null(j);
		rc = hark_llm_schema_validate(schema, j, err, sizeof(err));
		if (rc)
			fail_msg("%s: %s", mt.id, err);
		json_decref(j);
		print_message("%-10s turns %5zu  entities %4zu  relations %5zu\n", mt.id, mt.n_turns,
			      g.n_entities, g.n_relations);
		total_entities += g.n_entities;
		total_rel += g.n_relations;
		assert_int_equal(hark_graph_append(&corpus, &g), HARK_OK);

		/* deterministic: a second run gives the same graph */
		if (i == 0) {
			struct hark_graph g2 = {0};
			assert_int_equal(hark_entities_extract(t, mt.n_turns, mt.id, NULL, &g2, err,
							       sizeof(err)),
					 HARK_OK);
			assert_int_equal(hark_graph_resolve(&g2, NULL), HARK_OK);
			json_t *a = hark_graph_to_json(&g), *b = hark_graph_to_json(&g2);
			assert_true(json_equal(a, b));
			json_decref(a);
			json_decref(b);
			hark_graph_clear(&g2);
		}
		hark_graph_clear(&g);
		free(t);
		hark_meeting_text_clear(&mt);
		free(paths[i]);
	}
	/* the corpus graph: cross-meeting merges happen and it validates */
	size_t merged = 0;
	assert_int_equal(hark_graph_resolve(&corpus, &merged), HARK_OK);
	assert_true(merged > 0);
	assert_int_equal(corpus.n_entities + merged, total_entities);
	json_t *j = hark_graph_to_json(&corpus);
	char err[512] = "";
	int rc = hark_llm_schema_validate(schema, j, err, sizeof(err));
	if (rc)
		fail_msg("corpus: %s", err);
	json_decref(j);
	print_message("corpus: %zu meetings, %zu entities (%zu merged), %zu relations (%zu before)\n",
		      np, corpus.n_entities, merged, corpus.n_relations, total_rel);
	hark_graph_clear(&corpus);
	hark_llm_schema_free(schema);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_meeting),
		cmocka_unit_test(test_people_and_orgs),
		cmocka_unit_test(test_lowercase_terms),
		cmocka_unit_test(test_errors_and_cancel),
		cmocka_unit_test(test_shared_meetings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
