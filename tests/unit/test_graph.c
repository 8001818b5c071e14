/*
 * Knowledge-graph model (src/analyze/graph.c): name normalisation, entity
 * resolution (people, acronyms, organisation suffixes, articles, plurals,
 * lone names, type compatibility, cross-meeting merges), relation
 * re-pointing and de-duplication, idempotence, ids, JSON round trip and
 * validation against share/schemas/graph.json, GraphML well-formedness and
 * escaping, Neo4j CSV headers and quoting, caps, and a 20k-entity corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analyze/graph.h"
#include "schema_util.h"
#include "hark/hark.h"
#include "llm/schema.h"

/* ------------------------------------------------------------ helpers ---- */

static size_t add(struct hark_graph *g, const char *name, const char *type, const char *meeting)
{
	struct hark_graph_mention m = {(char *)meeting, NULL, (char *)"a quote", -1, 0, -1.0};
	size_t idx = SIZE_MAX;
	assert_int_equal(hark_graph_add_entity(g, name, type, &m, &idx), HARK_OK);
	assert_true(idx < g->n_entities);
	return idx;
}

/* Index of the entity named s or having alias s (SIZE_MAX if none). */
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

static size_t resolve(struct hark_graph *g)
{
	size_t merged = 0;
	assert_int_equal(hark_graph_resolve(g, &merged), HARK_OK);
	return merged;
}

static struct hark_llm_schema *load_schema(void)
{
	struct hark_llm_schema *s = su_schema_load("graph.json");

	assert_non_null(s);
	return s;
}

static void assert_valid(const struct hark_graph *g)
{
	struct hark_llm_schema *s = load_schema();
	json_t *j = hark_graph_to_json(g);
	char err[256] = "";
	assert_non_null(j);
	int rc = hark_llm_schema_validate(s, j, err, sizeof(err));
	if (rc)
		print_error("validate: %s\n", err);
	assert_int_equal(rc, HARK_OK);
	json_decref(j);
	hark_llm_schema_free(s);
}

static char *dump(const struct hark_graph *g)
{
	json_t *j = hark_graph_to_json(g);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(s);
	json_decref(j);
	return s;
}

/* --------------------------------------------------------------- tests ---- */

static void test_normalize(void **state)
{
	(void)state;
	struct {
		const char *in, *type, *want;
	} cases[] = {
		{"The Budget", "concept", "budget"},
		{"  Remote   CONTROL ", "concept", "remote control"},
		{"Acme Inc.", "organization", "acme"},
		{"ACME Corp", "organization", "acme"},
		{"Dr. John Smith's", "person", "john smith"},
		{"Doe, John", "person", "john doe"},
		{"U.S. Navy", "organization", "us navy"},
		{"\xc3\x89" "cole", "concept", "\xc3\xa9" "cole"},
		{"Inc", "organization", "inc"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *n = hark_graph_normalize_name(cases[i].in, cases[i].type);
		assert_non_null(n);
		assert_string_equal(n, cases[i].want);
		free(n);
	}
	assert_true(hark_graph_same_entity("John Doe", "John T. Doe", "person"));
	assert_true(hark_graph_same_entity("J. Doe", "John Doe", "person"));
	assert_true(hark_graph_same_entity("Doe, John", "John Doe", "person"));
	assert_true(hark_graph_same_entity("John", "John Doe", "person"));
	assert_false(hark_graph_same_entity("Jane Doe", "John Doe", "person"));
	assert_false(hark_graph_same_entity("John Smith", "John Doe", "person"));
	assert_true(hark_graph_same_entity("WHO", "World Health Organization", "organization"));
	assert_true(hark_graph_same_entity("Acme Inc.", "acme", "organization"));
	assert_true(hark_graph_same_entity("budgets", "The Budget", "concept"));
	assert_false(hark_graph_same_entity("budget", "bucket", "concept"));
}

static void test_people_merge(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	add(&g, "John Doe", "person", "m1");
	add(&g, "John T. Doe", "person", "m1");
	add(&g, "J. Doe", "person", "m1");
	add(&g, "Doe, John", "person", "m1");
	add(&g, "Mary Major", "person", "m1");
	/* "Doe, John" has the normalized name of "John Doe": joined when added */
	assert_int_equal(g.n_entities, 4);
	assert_int_equal(resolve(&g), 2);
	assert_int_equal(g.n_entities, 2);
	size_t a = find(&g, "John Doe");
	assert_true(a != SIZE_MAX);
	assert_int_equal(find(&g, "John T. Doe"), a);
	assert_int_equal(find(&g, "J. Doe"), a);
	assert_int_equal(find(&g, "Doe, John"), a);
	assert_int_not_equal(find(&g, "Mary Major"), a);
	/* canonical = longest full form; the others are aliases */
	assert_string_equal(g.entities[a].name, "John T. Doe");
	assert_int_equal(g.entities[a].n_aliases, 3);
	assert_int_equal(g.entities[a].mention_count, 4);
	assert_string_equal(g.entities[a].type, "person");
	hark_graph_clear(&g);

	/* parliamentary and formal titles are not part of the name */
	add(&g, "Hon. Anita Anand", "person", "m2");
	add(&g, "Anita Anand", "person", "m2");
	add(&g, "Sir Keir Starmer", "person", "m2");
	add(&g, "Keir Starmer", "person", "m2");
	resolve(&g);
	assert_int_equal(g.n_entities, 2);
	assert_int_equal(find(&g, "Anita Anand"), find(&g, "Hon. Anita Anand"));
	assert_int_equal(find(&g, "Keir Starmer"), find(&g, "Sir Keir Starmer"));
	hark_graph_clear(&g);
}

static void test_lone_names(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	add(&g, "John Doe", "person", "m1");
	add(&g, "John", "person", "m1");
	add(&g, "Doe", "person", "m1");
	resolve(&g);
	assert_int_equal(g.n_entities, 1);
	assert_string_equal(g.entities[0].name, "John Doe");
	hark_graph_clear(&g);

	/* ambiguous: two Johns */
	add(&g, "John Doe", "person", "m1");
	add(&g, "John Smith", "person", "m1");
	add(&g, "John", "person", "m1");
	add(&g, "Smith", "person", "m1");
	resolve(&g);
	assert_int_equal(g.n_entities, 3);
	size_t d = find(&g, "John Doe"), s = find(&g, "John Smith"), j = find(&g, "John");
	assert_true(d != s && d != j && s != j);
	assert_int_equal(find(&g, "Smith"), s);
	hark_graph_clear(&g);

	/* ambiguous initial: "J. Doe" with John Doe and Jane Doe */
	add(&g, "John Doe", "person", "m1");
	add(&g, "Jane Doe", "person", "m1");
	add(&g, "J. Doe", "person", "m1");
	resolve(&g);
	assert_int_equal(g.n_entities, 3);
	hark_graph_clear(&g);
}

static void test_acronyms_and_orgs(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	add(&g, "WHO", "organization", "m1");
	add(&g, "World Health Organization", "concept", "m1");
	add(&g, "Acme Inc.", "organization", "m1");
	add(&g, "ACME", "organization", "m1");
	add(&g, "acme", "concept", "m1");
	add(&g, "The Budget", "concept", "m1");
	add(&g, "budget", "concept", "m1");
	add(&g, "budgets", "concept", "m1");
	add(&g, "Department of Energy", "organization", "m1");
	add(&g, "DOE", "organization", "m1");
	resolve(&g);
	assert_int_equal(g.n_entities, 4);
	size_t w = find(&g, "WHO");
	assert_int_equal(find(&g, "World Health Organization"), w);
	assert_string_equal(g.entities[w].type, "organization"); /* more specific wins */
	assert_string_equal(g.entities[w].name, "World Health Organization");
	size_t a = find(&g, "Acme Inc.");
	assert_int_equal(find(&g, "ACME"), a);
	assert_int_equal(find(&g, "acme"), a);
	assert_string_equal(g.entities[a].type, "organization");
	size_t b = find(&g, "budget");
	assert_int_equal(find(&g, "The Budget"), b);
	assert_int_equal(find(&g, "budgets"), b);
	assert_string_equal(g.entities[b].type, "concept");
	assert_int_equal(find(&g, "DOE"), find(&g, "Department of Energy"));
	hark_graph_clear(&g);
}

static void test_type_compatibility(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	add(&g, "Jordan", "person", "m1");
	add(&g, "Jordan", "organization", "m1");
	add(&g, "jordan", "concept", "m1");
	add(&g, "March", "date", "m1");
	add(&g, "march", "concept", "m1");
	add(&g, "Apple", "organization", "m1");
	add(&g, "Apple", "product", "m1");
	resolve(&g);
	/* person, date never absorb a concept; org and product stay apart */
	size_t np = 0, no = 0, nd = 0, nc = 0, npr = 0;
	for (size_t i = 0; i < g.n_entities; i++) {
		const char *t = g.entities[i].type;
		np += strcmp(t, "person") == 0;
		no += strcmp(t, "organization") == 0;
		nd += strcmp(t, "date") == 0;
		nc += strcmp(t, "concept") == 0;
		npr += strcmp(t, "product") == 0;
	}
	assert_int_equal(np, 1);
	assert_int_equal(no, 2); /* Jordan (with the concept merged in), Apple */
	assert_int_equal(nd, 1);
	assert_int_equal(nc, 1); /* march */
	assert_int_equal(npr, 1);
	assert_int_equal(g.n_entities, 6);
	hark_graph_clear(&g);
}

static void test_cross_meeting(void **state)
{
	(void)state;
	struct hark_graph g1 = {0}, g2 = {0}, corpus = {0};
	for (int i = 0; i < 3; i++)
		add(&g1, "Acme Corp", "organization", "meeting-b");
	add(&g1, "Budget", "concept", "meeting-b");
	for (int i = 0; i < 2; i++)
		add(&g2, "ACME", "organization", "meeting-a");
	add(&g2, "budgets", "concept", "meeting-a");
	assert_int_equal(hark_graph_add_relation(&g1, 0, 1, "co_occurs", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g2, 1, 0, "co_occurs", NULL), HARK_OK);
	resolve(&g1);
	resolve(&g2);
	assert_int_equal(hark_graph_append(&corpus, &g1), HARK_OK);
	assert_int_equal(hark_graph_append(&corpus, &g2), HARK_OK);
	assert_int_equal(corpus.n_entities, 4);
	assert_int_equal(resolve(&corpus), 2);
	assert_int_equal(corpus.n_entities, 2);
	size_t a = find(&corpus, "ACME");
	assert_int_equal(find(&corpus, "Acme Corp"), a);
	const struct hark_graph_entity *e = &corpus.entities[a];
	assert_int_equal(e->mention_count, 5);
	assert_int_equal(e->n_mentions, 5);
	assert_int_equal(e->n_meetings, 2);
	assert_string_equal(e->meetings[0], "meeting-a");
	assert_string_equal(e->meetings[1], "meeting-b");
	/* the two co_occurs relations collapse into one of weight 2 */
	assert_int_equal(corpus.n_relations, 1);
	assert_true(corpus.relations[0].weight == 2.0);
	assert_true(corpus.relations[0].source < corpus.relations[0].target);
	hark_graph_clear(&g1);
	hark_graph_clear(&g2);
	hark_graph_clear(&corpus);
}

static void test_relations_after_merge(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	struct hark_graph_mention ev = {(char *)"m1", NULL, (char *)"John works on Apollo", -1, 3, 12.5};
	size_t a = add(&g, "John Doe", "person", "m1");
	size_t b = add(&g, "J. Doe", "person", "m1");
	size_t c = add(&g, "Project Apollo", "project", "m1");
	size_t d = add(&g, "Apollo Project", "concept", "m1");
	assert_int_equal(hark_graph_add_relation(&g, a, c, "Works On ", &ev), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, b, c, "works on", &ev), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, a, b, "co_occurs", &ev), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, c, a, "co_occurs", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, a, c, "co_occurs", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, d, a, "co_occurs", NULL), HARK_OK);
	assert_int_equal(g.n_relations, 5);
	assert_int_equal(hark_graph_add_relation(&g, a, a, "co_occurs", NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_graph_add_relation(&g, a, 99, "x", NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_graph_add_relation(&g, a, c, "  ", NULL), HARK_ERR_INVALID_ARG);
	resolve(&g);
	assert_int_equal(g.n_entities, 3); /* John Doe, Project Apollo, Apollo Project */
	/* no self loops, no duplicate (source, target, type) */
	for (size_t i = 0; i < g.n_relations; i++) {
		assert_int_not_equal(g.relations[i].source, g.relations[i].target);
		for (size_t k = i + 1; k < g.n_relations; k++)
			assert_false(g.relations[i].source == g.relations[k].source &&
				     g.relations[i].target == g.relations[k].target &&
				     strcmp(g.relations[i].type, g.relations[k].type) == 0);
	}
	size_t jd = find(&g, "John Doe"), pa = find(&g, "Project Apollo");
	int seen_works = 0, seen_co = 0;
	for (size_t i = 0; i < g.n_relations; i++) {
		const struct hark_graph_relation *r = &g.relations[i];
		if (strcmp(r->type, "works on") == 0) {
			seen_works++;
			assert_int_equal(r->source, jd);
			assert_int_equal(r->target, pa);
			assert_true(r->weight == 2.0);
			assert_int_equal(r->n_evidence, 2);
			assert_int_equal(r->evidence[0].turn, 3);
		} else if (strcmp(r->type, "co_occurs") == 0 &&
			   ((r->source == jd && r->target == pa) || (r->source == pa && r->target == jd))) {
			seen_co++;
			assert_true(r->weight == 2.0);
		}
	}
	assert_int_equal(seen_works, 1);
	assert_int_equal(seen_co, 1);
	/* relations sorted by (source id, type, target id) */
	for (size_t i = 1; i < g.n_relations; i++) {
		const struct hark_graph_relation *p = &g.relations[i - 1], *q = &g.relations[i];
		int cmp = strcmp(g.entities[p->source].id, g.entities[q->source].id);
		if (!cmp)
			cmp = strcmp(p->type, q->type);
		if (!cmp)
			cmp = strcmp(g.entities[p->target].id, g.entities[q->target].id);
		assert_true(cmp < 0);
	}
	hark_graph_clear(&g);
}

static void build_mixed(struct hark_graph *g)
{
	const char *names[][2] = {
		{"John Doe", "person"},     {"J. Doe", "person"},       {"Acme Inc.", "organization"},
		{"acme", "concept"},        {"!!!", "concept"},         {"???", "concept"},
		{"Budget", "concept"},      {"budgets", "concept"},     {"WHO", "organization"},
		{"World Health Organization", "organization"},          {"Zed", "place"},           {"X", "concept"},
	};
	size_t idx[sizeof(names) / sizeof(names[0])];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		idx[i] = add(g, names[i][0], names[i][1], i % 2 ? "m2" : "m1");
	assert_int_equal(hark_graph_add_relation(g, idx[0], idx[2], "works for", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(g, idx[1], idx[3], "works for", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(g, idx[6], idx[8], "co_occurs", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(g, idx[10], idx[4], "near", NULL), HARK_OK);
}

static void test_idempotent_and_ids(void **state)
{
	(void)state;
	struct hark_graph g = {0}, h = {0};
	build_mixed(&g);
	build_mixed(&h);
	size_t m1 = resolve(&g);
	assert_true(m1 > 0);
	char *j1 = dump(&g);
	assert_int_equal(resolve(&g), 0);
	char *j2 = dump(&g);
	assert_string_equal(j1, j2);
	/* same input, same output */
	resolve(&h);
	char *j3 = dump(&h);
	assert_string_equal(j1, j3);
	/* ids unique, "<type>:" prefixed, entities sorted by (type, name) */
	for (size_t i = 0; i < g.n_entities; i++) {
		const struct hark_graph_entity *e = &g.entities[i];
		assert_non_null(e->id);
		assert_int_equal(strncmp(e->id, e->type, strlen(e->type)), 0);
		assert_int_equal(e->id[strlen(e->type)], ':');
		for (size_t k = i + 1; k < g.n_entities; k++)
			assert_string_not_equal(e->id, g.entities[k].id);
		if (i > 0) {
			const struct hark_graph_entity *p = &g.entities[i - 1];
			int c = strcmp(p->type, e->type);
			assert_true(c < 0 || (c == 0 && strcmp(p->name, e->name) <= 0));
		}
	}
	/* names without letters stay apart and share the slug "x" with "X":
	 * numeric suffixes in (type, name) order */
	size_t x = find(&g, "!!!"), y = find(&g, "???"), z = find(&g, "X");
	assert_true(x != y && y != z && x != z);
	assert_string_equal(g.entities[x].id, "concept:x");
	assert_string_equal(g.entities[y].id, "concept:x-2");
	assert_string_equal(g.entities[z].id, "concept:x-3");
	free(j1);
	free(j2);
	free(j3);
	hark_graph_clear(&g);
	hark_graph_clear(&h);
}

static void test_json_round_trip(void **state)
{
	(void)state;
	struct hark_graph g = {0}, back = {0};
	char err[256] = "";
	build_mixed(&g);
	struct hark_graph_mention ev = {(char *)"m1", NULL, NULL, 2, 5, 33.25};
	assert_int_equal(hark_graph_add_relation(&g, 0, 4, "mentions", &ev), HARK_OK);
	resolve(&g);
	assert_valid(&g);
	json_t *j = hark_graph_to_json(&g);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "stats"), "entities")),
			 (json_int_t)g.n_entities);
	assert_int_equal(hark_graph_from_json(j, &back, err, sizeof(err)), HARK_OK);
	assert_int_equal(back.n_entities, g.n_entities);
	assert_int_equal(back.n_relations, g.n_relations);
	json_t *j2 = hark_graph_to_json(&back);
	assert_true(json_equal(j, j2));
	/* a resolve of the read-back graph changes nothing */
	assert_int_equal(resolve(&back), 0);
	json_t *j3 = hark_graph_to_json(&back);
	assert_true(json_equal(j, j3));
	json_decref(j2);
	json_decref(j3);

	/* errors: unknown relation endpoint, missing name */
	struct hark_graph bad = {0};
	json_t *rels = json_object_get(j, "relations");
	assert_true(json_array_size(rels) > 0);
	json_object_set_new(json_array_get(rels, 0), "target", json_string("concept:nope"));
	assert_int_equal(hark_graph_from_json(j, &bad, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "/relations/0"));
	assert_int_equal(bad.n_entities, 0);
	json_object_del(json_array_get(json_object_get(j, "entities"), 1), "name");
	assert_int_equal(hark_graph_from_json(j, &bad, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "/entities/1"));
	json_decref(j);
	hark_graph_clear(&g);
	hark_graph_clear(&back);
	hark_graph_clear(&bad);
}

/* Minimal XML well-formedness: balanced tags, quoted attributes, only the
 * five predefined entities. Returns the number of elements named el. */
static size_t xml_check(const char *x, const char *el)
{
	char stack[16][32];
	int depth = 0;
	size_t count = 0;
	for (const char *p = x; *p; p++) {
		if (*p == '&') {
			assert_true(strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 ||
				    strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&quot;", 6) == 0 ||
				    strncmp(p, "&apos;", 6) == 0);
			continue;
		}
		if (*p == '>')
			fail_msg("stray '>' in text");
		if (*p != '<')
			continue;
		const char *e = p + 1;
		int inq = 0;
		while (*e && (inq || *e != '>')) {
			if (*e == '"')
				inq = !inq;
			assert_false(!inq && *e == '<');
			e++;
		}
		assert_int_equal(*e, '>');
		if (p[1] == '?') {
			p = e;
			continue;
		}
		char name[32];
		size_t n = 0;
		const char *q = p + 1 + (p[1] == '/');
		while (q < e && *q != ' ' && *q != '/' && n < sizeof(name) - 1)
			name[n++] = *q++;
		name[n] = '\0';
		if (p[1] == '/') {
			assert_true(depth > 0);
			assert_string_equal(stack[depth - 1], name);
			depth--;
		} else {
			if (strcmp(name, el) == 0)
				count++;
			if (e[-1] != '/') {
				assert_true(depth < 16);
				snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
			}
		}
		p = e;
	}
	assert_int_equal(depth, 0);
	return count;
}

static void test_graphml(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	size_t a = add(&g, "R&D <Lab> \"X\"", "organization", "m1");
	size_t b = add(&g, "Bob's Team", "concept", "m1");
	size_t c = add(&g, "Carol", "person", "m1");
	assert_int_equal(hark_graph_add_relation(&g, c, a, "leads & <owns>", NULL), HARK_OK);
	assert_int_equal(hark_graph_add_relation(&g, a, b, "co_occurs", NULL), HARK_OK);
	resolve(&g);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(hark_graph_write_graphml(&g, f), HARK_OK);
	fclose(f);
	assert_int_equal(xml_check(buf, "node"), g.n_entities);
	assert_int_equal(xml_check(buf, "edge"), g.n_relations);
	assert_non_null(strstr(buf, "R&amp;D &lt;Lab&gt; &quot;X&quot;"));
	assert_non_null(strstr(buf, "leads &amp; &lt;owns&gt;"));
	assert_null(strstr(buf, "<Lab>"));
	assert_non_null(strstr(buf, "<graphml"));
	free(buf);
	hark_graph_clear(&g);
}

/* Splits one RFC 4180 record starting at *p into fields (heap strings);
 * advances *p past the line end. Returns the field count. */
static size_t csv_record(const char **p, char **fields, size_t max)
{
	size_t n = 0;
	const char *s = *p;
	for (;;) {
		char buf[1024];
		size_t k = 0;
		if (*s == '"') {
			s++;
			for (;;) {
				assert_true(*s != '\0');
				if (*s == '"' && s[1] == '"') {
					buf[k++] = '"';
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					assert_true(*s != '\n');
					buf[k++] = *s++;
				}
			}
		} else {
			while (*s && *s != ',' && *s != '\n') {
				assert_true(*s != '"');
				buf[k++] = *s++;
			}
		}
		buf[k] = '\0';
		assert_true(n < max);
		fields[n++] = strdup(buf);
		if (*s == ',') {
			s++;
			continue;
		}
		assert_int_equal(*s, '\n');
		s++;
		break;
	}
	*p = s;
	return n;
}

static void test_neo4j_csv(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	size_t a = add(&g, "Smith, \"Bob\" Ltd", "organization", "m1");
	add(&g, "Smith, \"Bob\" Ltd", "organization", "m2");
	size_t b = add(&g, "Bob Smith", "person", "m1");
	add(&g, "Robert; Smith", "person", "m2");
	assert_int_equal(hark_graph_add_relation(&g, b, a, "works on", NULL), HARK_OK);
	struct hark_graph_mention ev = {(char *)"m1", NULL, (char *)"he said \"yes\",\nthen left", -1,
					1, -1};
	assert_int_equal(hark_graph_add_relation(&g, a, b, "co_occurs", &ev), HARK_OK);
	resolve(&g);
	char *nb = NULL, *rb = NULL;
	size_t nl = 0, rl = 0;
	FILE *nf = open_memstream(&nb, &nl), *rf = open_memstream(&rb, &rl);
	assert_int_equal(hark_graph_write_neo4j_csv(&g, nf, rf), HARK_OK);
	fclose(nf);
	fclose(rf);
	const char *nh = "id:ID,name,aliases:string[],mentions:int,meetings:string[],:LABEL\n";
	const char *rh = ":START_ID,:END_ID,:TYPE,weight:double,evidence\n";
	assert_int_equal(strncmp(nb, nh, strlen(nh)), 0);
	assert_int_equal(strncmp(rb, rh, strlen(rh)), 0);
	const char *p = nb + strlen(nh);
	size_t rows = 0;
	int saw_org = 0;
	while (*p) {
		char *f[16];
		size_t n = csv_record(&p, f, 16);
		assert_int_equal(n, 6);
		if (strcmp(f[5], "Organization") == 0) {
			saw_org = 1;
			assert_string_equal(f[1], "Smith, \"Bob\" Ltd");
			assert_string_equal(f[3], "2");
			assert_string_equal(f[4], "m1;m2");
		} else {
			assert_string_equal(f[5], "Person");
		}
		for (size_t i = 0; i < n; i++)
			free(f[i]);
		rows++;
	}
	assert_true(saw_org);
	assert_int_equal(rows, g.n_entities);
	p = rb + strlen(rh);
	rows = 0;
	int saw_works = 0;
	while (*p) {
		char *f[16];
		size_t n = csv_record(&p, f, 16);
		assert_int_equal(n, 5);
		if (strcmp(f[2], "WORKS_ON") == 0)
			saw_works = 1;
		else
			assert_string_equal(f[2], "CO_OCCURS");
		if (strcmp(f[2], "CO_OCCURS") == 0)
			assert_string_equal(f[4], "he said \"yes\", then left");
		assert_non_null(strchr(f[0], ':'));
		for (size_t i = 0; i < n; i++)
			free(f[i]);
		rows++;
	}
	assert_true(saw_works);
	assert_int_equal(rows, g.n_relations);
	free(nb);
	free(rb);
	hark_graph_clear(&g);
}

static void test_caps_and_errors(void **state)
{
	(void)state;
	struct hark_graph g = {0};
	size_t idx = 0;
	for (size_t i = 0; i < HARK_GRAPH_MAX_MENTIONS + 44; i++)
		idx = add(&g, i % 2 ? "Widget" : "widgets", "product", i < 150 ? "m1" : "m2");
	size_t other = add(&g, "Gadget", "product", "m1");
	assert_int_equal(g.n_entities, 3);
	for (size_t i = 0; i < HARK_GRAPH_MAX_MENTIONS + 10; i++) {
		struct hark_graph_mention ev = {(char *)"m1", NULL, NULL, -1, (long)i, -1};
		assert_int_equal(hark_graph_add_relation(&g, idx, other, "co_occurs", &ev), HARK_OK);
	}
	assert_int_equal(g.n_relations, 1);
	assert_int_equal(g.relations[0].n_evidence, HARK_GRAPH_MAX_MENTIONS);
	assert_true(g.relations[0].weight == (double)(HARK_GRAPH_MAX_MENTIONS + 10));
	resolve(&g);
	assert_int_equal(g.n_entities, 2);
	size_t w = find(&g, "Widget");
	assert_int_equal(g.entities[w].mention_count, HARK_GRAPH_MAX_MENTIONS + 44);
	assert_int_equal(g.entities[w].n_mentions, HARK_GRAPH_MAX_MENTIONS);
	assert_int_equal(g.entities[w].n_meetings, 2);
	assert_valid(&g);

	struct hark_graph_mention m = {(char *)"m1", NULL, NULL, -1, -1, -1};
	assert_int_equal(hark_graph_add_entity(&g, "", "concept", &m, NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_graph_add_entity(&g, "   ", "concept", &m, NULL), HARK_ERR_INVALID_ARG);
	/* unknown types become concept */
	assert_int_equal(hark_graph_add_entity(&g, "Thing", "weird", &m, &idx), HARK_OK);
	assert_string_equal(g.entities[idx].type, "concept");
	/* NULL is harmless */
	hark_graph_clear(NULL);
	struct hark_graph empty = {0};
	assert_int_equal(hark_graph_resolve(&empty, NULL), HARK_OK);
	assert_valid(&empty);
	hark_graph_clear(&empty);
	hark_graph_clear(&g);
}

static void test_large_corpus(void **state)
{
	(void)state;
	static const char *first[] = {"John", "Mary", "Ahmed", "Li", "Olga", "Pedro", "Ana", "Kofi"};
	static const char *last[] = {"Doe", "Smith", "Khan", "Wei", "Ivanova", "Silva", "Mensah",
				     "Okafor", "Berg", "Novak"};
	struct hark_graph corpus = {0};
	uint32_t seed = 12345;
	size_t added = 0;
	for (int mt = 0; mt < 200; mt++) {
		struct hark_graph g = {0};
		char meeting[32];
		snprintf(meeting, sizeof(meeting), "meeting-%03d", mt);
		for (int k = 0; k < 100; k++) {
			char name[96];
			const char *type;
			seed = seed * 1103515245u + 12345u;
			uint32_t r = seed >> 8;
			switch (k % 4) {
			case 0:
				snprintf(name, sizeof(name), "%s %s", first[r % 8], last[(r / 8) % 10]);
				type = "person";
				break;
			case 1:
				snprintf(name, sizeof(name), "%c. %s", first[r % 8][0], last[(r / 8) % 10]);
				type = "person";
				break;
			case 2:
				snprintf(name, sizeof(name), "Org %u Inc", r % 3000);
				type = "organization";
				break;
			default:
				snprintf(name, sizeof(name), "topic %u %s", r % 5000, r % 2 ? "plans" : "plan");
				type = "concept";
				break;
			}
			struct hark_graph_mention m = {meeting, NULL, NULL, -1, k, -1};
			size_t idx;
			assert_int_equal(hark_graph_add_entity(&g, name, type, &m, &idx), HARK_OK);
			if (k > 0 && idx > 0)
				assert_int_equal(hark_graph_add_relation(&g, idx - 1, idx, "co_occurs", NULL),
						 HARK_OK);
		}
		added += g.n_entities;
		assert_int_equal(hark_graph_append(&corpus, &g), HARK_OK);
		hark_graph_clear(&g);
	}
	/* grow to 20k entities by appending unresolved copies */
	while (corpus.n_entities < 20000) {
		struct hark_graph copy = {0};
		assert_int_equal(hark_graph_append(&copy, &corpus), HARK_OK);
		assert_int_equal(hark_graph_append(&corpus, &copy), HARK_OK);
		hark_graph_clear(&copy);
	}
	size_t before = corpus.n_entities;
	assert_true(before >= 20000);
	size_t merged = resolve(&corpus);
	assert_int_equal(merged + corpus.n_entities, before);
	/* at most 8 x 10 full names + 3000 orgs + 5000 topics remain */
	assert_true(corpus.n_entities <= 80 + 3000 + 5000 + 80);
	assert_true(corpus.n_entities > 1000);
	size_t again = resolve(&corpus);
	assert_int_equal(again, 0);
	assert_valid(&corpus);
	hark_graph_clear(&corpus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_people_merge),
		cmocka_unit_test(test_lone_names),
		cmocka_unit_test(test_acronyms_and_orgs),
		cmocka_unit_test(test_type_compatibility),
		cmocka_unit_test(test_cross_meeting),
		cmocka_unit_test(test_relations_after_merge),
		cmocka_unit_test(test_idempotent_and_ids),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_graphml),
		cmocka_unit_test(test_neo4j_csv),
		cmocka_unit_test(test_caps_and_errors),
		cmocka_unit_test(test_large_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
