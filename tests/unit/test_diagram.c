/*
 * Diagram specs (src/render/diagram.c): type names and parsing, one valid
 * spec per type (validation, exact JSON round trip through text, agreement
 * with share/schemas/diagram.json), every validation rule broken one at a
 * time with the path of the first violation, the caps of the builders and
 * of the JSON reader, deep chains walked without recursion, and the JSON
 * reader's member type checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hark/hark.h"
#include "llm/schema.h"
#include "render/diagram.h"
#include "schema_util.h"

/* ------------------------------------------------------------ helpers ---- */

static struct hark_diagram_span sp(double a, double b, long turn)
{
	struct hark_diagram_span s = {a, b, turn};
	return s;
}

static void init(struct hark_diagram *d, int type, const char *title)
{
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->title = strdup(title);
	assert_non_null(d->title);
	d->duration_s = 600.25;
	d->page = 1;
	d->pages = 1;
}

static void node(struct hark_diagram *d, const char *id, const char *label, const char *kind,
		 const char *group, struct hark_diagram_span s)
{
	assert_int_equal(hark_diagram_add_node(d, id, label, kind, group, &s), HARK_OK);
}

static void edge(struct hark_diagram *d, const char *from, const char *to, const char *label,
		 long seq, struct hark_diagram_span s)
{
	assert_int_equal(hark_diagram_add_edge(d, from, to, label, seq, &s), HARK_OK);
}

/* Replaces a heap string owned by the spec. */
static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? strdup(v) : NULL;
	if (v)
		assert_non_null(*slot);
}

/* Flowchart: s -> a -> d -(yes)-> b -> e, d -(no)-> c -> e. */
static void make_flowchart(struct hark_diagram *d)
{
	init(d, HARK_DIAGRAM_FLOWCHART, "Release process");
	set_str(&d->source, "standup.wav");
	assert_int_equal(hark_diagram_add_group(d, "qa", "Quality checks"), HARK_OK);
	node(d, "s", "Start", "start", NULL, sp(1.5, 2.0, 0));
	node(d, "a", "Run the test suite", "step", "qa", sp(2.0, 7.123456789012345, 1));
	node(d, "d", "Did every test pass?", "decision", "qa", sp(7.5, 9.0, 2));
	node(d, "b", "Tag the release", "step", NULL, sp(9.0, 12.0, 3));
	node(d, "c", "Fix the failures", "step", NULL, sp(12.5, -1, -1));
	node(d, "e", "Done", "end", NULL, sp(-1, -1, -1));
	edge(d, "s", "a", NULL, -1, sp(-1, -1, -1));
	edge(d, "a", "d", NULL, -1, sp(7.5, 9.0, 2));
	edge(d, "d", "b", "yes", -1, sp(9.0, 9.5, 3));
	edge(d, "d", "c", "no", -1, sp(12.5, 13.0, 4));
	edge(d, "b", "e", NULL, -1, sp(-1, -1, -1));
	edge(d, "c", "e", NULL, -1, sp(-1, -1, -1));
}

/* Timeline: three events linked in order; the last one undated. */
static void make_timeline(struct hark_diagram *d)
{
	init(d, HARK_DIAGRAM_TIMELINE, "Project milestones");
	node(d, "e1", "Kick-off", "event", NULL, sp(30, 35, 4));
	node(d, "e2", "Beta \xc3\xa0 Z\xc3\xbcrich", "event", NULL, sp(80, 90, 9));
	node(d, "e3", "General availability", "event", NULL, sp(140, 150, 12));
	set_str(&d->nodes[0].date, "2024-02-29");
	d->nodes[0].order = 19782; /* 2024-02-29 */
	set_str(&d->nodes[1].date, "2024-06-03");
	d->nodes[1].order = 19877;
	d->nodes[2].order = 20000.5;
	edge(d, "e1", "e2", NULL, -1, sp(-1, -1, -1));
	edge(d, "e2", "e3", "then", -1, sp(-1, -1, -1));
}

/* Mind map: r -> t1 -> s1, r -> t2. */
static void make_mindmap(struct hark_diagram *d)
{
	init(d, HARK_DIAGRAM_MINDMAP, "Budget discussion");
	d->duration_s = -1; /* unknown */
	node(d, "r", "Budget", "root", NULL, sp(0, 300, 0));
	node(d, "t1", "Hardware", "topic", NULL, sp(10, 100, 2));
	node(d, "t2", "Travel", "topic", NULL, sp(100, 200, 8));
	node(d, "s1", "Laptops for new hires", "subtopic", NULL, sp(20, 40, 3));
	edge(d, "r", "t1", NULL, -1, sp(-1, -1, -1));
	edge(d, "r", "t2", NULL, -1, sp(-1, -1, -1));
	edge(d, "t1", "s1", NULL, -1, sp(-1, -1, -1));
}

/* Hierarchy (a DAG: ann reports into two units). */
static void make_hierarchy(struct hark_diagram *d)
{
	init(d, HARK_DIAGRAM_HIERARCHY, "Organisation");
	d->page = 2;
	d->pages = 3;
	assert_int_equal(hark_diagram_add_group(d, "tech", "Technology"), HARK_OK);
	assert_int_equal(hark_diagram_add_group(d, "biz", "Business"), HARK_OK);
	node(d, "co", "Acme", "unit", NULL, sp(5, 6, 1));
	node(d, "eng", "Engineering", "unit", "tech", sp(6, 8, 1));
	node(d, "ops", "Operations", "unit", "biz", sp(8, 9, 2));
	node(d, "ann", "Ann Lee", "person", "tech", sp(9, 12, 3));
	edge(d, "co", "eng", "contains", -1, sp(6, 8, 1));
	edge(d, "co", "ops", "contains", -1, sp(8, 9, 2));
	edge(d, "eng", "ann", NULL, -1, sp(9, 10, 3));
	edge(d, "ops", "ann", NULL, -1, sp(10, 12, 3));
}

/* Sequence: client / server / db, three messages in time order. */
static void make_sequence(struct hark_diagram *d)
{
	init(d, HARK_DIAGRAM_SEQUENCE, "Login");
	node(d, "client", "Client", "participant", NULL, sp(-1, -1, -1));
	node(d, "server", "Server", "participant", NULL, sp(-1, -1, -1));
	node(d, "db", "Database", "participant", NULL, sp(-1, -1, -1));
	edge(d, "client", "server", "POST /login", 0, sp(1.0, 2.0, 0));
	edge(d, "server", "db", "look up the user", 1, sp(2.0, 3.0, 1));
	edge(d, "db", "server", "user row", 2, sp(3.0, 3.5, 1));
	edge(d, "server", "client", "session cookie", 3, sp(-1, -1, -1));
}

static void make(int type, struct hark_diagram *d)
{
	switch (type) {
	case HARK_DIAGRAM_FLOWCHART:
		make_flowchart(d);
		break;
	case HARK_DIAGRAM_TIMELINE:
		make_timeline(d);
		break;
	case HARK_DIAGRAM_MINDMAP:
		make_mindmap(d);
		break;
	case HARK_DIAGRAM_HIERARCHY:
		make_hierarchy(d);
		break;
	default:
		make_sequence(d);
		break;
	}
}

static void assert_valid(const struct hark_diagram *d)
{
	char err[256] = "untouched";
	int rc = hark_diagram_validate(d, err, sizeof(err));

	if (rc != HARK_OK)
		fail_msg("expected a valid spec, got %d: %s", rc, err);
	assert_string_equal(err, "");
}

/* Validation fails with HARK_ERR_FORMAT and err starting "<path>:". */
static void expect_fail(const struct hark_diagram *d, const char *path)
{
	char err[256] = "";
	char want[96];
	int rc = hark_diagram_validate(d, err, sizeof(err));

	snprintf(want, sizeof(want), "%s:", path);
	if (rc != HARK_ERR_FORMAT || strncmp(err, want, strlen(want)) != 0)
		fail_msg("expected HARK_ERR_FORMAT at \"%s\", got %d: \"%s\"", path, rc, err);
}

/* Builds the valid spec of type, lets f break it, expects path. */
static void broken(int type, void (*f)(struct hark_diagram *d), const char *path)
{
	struct hark_diagram d;

	make(type, &d);
	assert_valid(&d);
	f(&d);
	expect_fail(&d, path);
	hark_diagram_clear(&d);
}

static int same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int same_num(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static int same_span(const struct hark_diagram_span *a, const struct hark_diagram_span *b)
{
	return same_num(a->start_s, b->start_s) && same_num(a->end_s, b->end_s) &&
	       a->turn == b->turn;
}

static void assert_same(const struct hark_diagram *a, const struct hark_diagram *b)
{
	assert_int_equal(a->type, b->type);
	assert_true(same_str(a->title, b->title));
	assert_true(same_str(a->source, b->source));
	assert_true(same_num(a->duration_s, b->duration_s));
	assert_int_equal(a->page, b->page);
	assert_int_equal(a->pages, b->pages);
	assert_int_equal(a->n_nodes, b->n_nodes);
	assert_int_equal(a->n_edges, b->n_edges);
	assert_int_equal(a->n_groups, b->n_groups);
	for (size_t i = 0; i < a->n_nodes; i++) {
		const struct hark_diagram_node *x = &a->nodes[i], *y = &b->nodes[i];
		assert_true(same_str(x->id, y->id));
		assert_true(same_str(x->label, y->label));
		assert_true(same_str(x->kind, y->kind));
		assert_true(same_str(x->group, y->group));
		assert_true(same_str(x->date, y->date));
		assert_true(same_num(x->order, y->order));
		assert_true(same_span(&x->span, &y->span));
	}
	for (size_t k = 0; k < a->n_edges; k++) {
		const struct hark_diagram_edge *x = &a->edges[k], *y = &b->edges[k];
		assert_true(same_str(x->from, y->from));
		assert_true(same_str(x->to, y->to));
		assert_true(same_str(x->label, y->label));
		assert_int_equal(x->seq, y->seq);
		assert_true(same_span(&x->span, &y->span));
	}
	for (size_t g = 0; g < a->n_groups; g++) {
		assert_true(same_str(a->groups[g].id, b->groups[g].id));
		assert_true(same_str(a->groups[g].label, b->groups[g].label));
	}
}

/* Parses JSON text into a spec, expecting rc and (on failure) err starting
 * with path. */
static void parse_expect(const char *text, int want_rc, const char *path)
{
	struct hark_diagram d;
	char err[256] = "";
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	int rc;

	if (!j)
		fail_msg("test JSON does not parse: %s", jerr.text);
	rc = hark_diagram_from_json(j, &d, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("from_json: expected %d, got %d (%s) for %s", want_rc, rc, err, text);
	if (path && strncmp(err, path, strlen(path)) != 0)
		fail_msg("from_json: expected err at \"%s\", got \"%s\"", path, err);
	if (rc != HARK_OK) {
		/* the reader leaves nothing behind */
		assert_int_equal(d.n_nodes, 0);
		assert_null(d.nodes);
		assert_null(d.title);
	}
	hark_diagram_clear(&d);
	json_decref(j);
}

/* -------------------------------------------------------------- tests ---- */

static void test_type_names(void **state)
{
	static const char *const names[] = {"flowchart", "timeline", "mindmap", "hierarchy",
					    "sequence"};
	int t = -7;

	(void)state;
	for (int i = 0; i < HARK_DIAGRAM_N_TYPES; i++) {
		assert_string_equal(hark_diagram_type_name(i), names[i]);
		assert_int_equal(hark_diagram_type_parse(names[i], &t), HARK_OK);
		assert_int_equal(t, i);
	}
	assert_string_equal(hark_diagram_type_name(-1), "unknown");
	assert_string_equal(hark_diagram_type_name(HARK_DIAGRAM_N_TYPES), "unknown");

	assert_int_equal(hark_diagram_type_parse("FlowChart", &t), HARK_OK);
	assert_int_equal(t, HARK_DIAGRAM_FLOWCHART);
	assert_int_equal(hark_diagram_type_parse("SEQUENCE", &t), HARK_OK);
	assert_int_equal(t, HARK_DIAGRAM_SEQUENCE);
	t = -7;
	assert_int_equal(hark_diagram_type_parse("mind-map", &t), HARK_OK);
	assert_int_equal(t, HARK_DIAGRAM_MINDMAP);
	t = -7;
	assert_int_equal(hark_diagram_type_parse("Mind_Map", &t), HARK_OK);
	assert_int_equal(t, HARK_DIAGRAM_MINDMAP);
	t = -7;
	assert_int_equal(hark_diagram_type_parse("MindMap", &t), HARK_OK);
	assert_int_equal(t, HARK_DIAGRAM_MINDMAP);

	t = 42;
	assert_int_equal(hark_diagram_type_parse("auto", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse("", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse("flow", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse("flowcharts", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse(" timeline", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse("mind map", &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse(NULL, &t), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_type_parse("timeline", NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(t, 42); /* untouched on failure */
}

static void test_valid_round_trip(void **state)
{
	struct hark_llm_schema *schema = su_schema_load("diagram.json");

	(void)state;
	assert_non_null(schema);
	for (int type = 0; type < HARK_DIAGRAM_N_TYPES; type++) {
		struct hark_diagram d, back;
		char err[256] = "";
		json_t *j, *j2, *parsed;
		char *text;
		json_error_t jerr;

		make(type, &d);
		assert_valid(&d);
		j = hark_diagram_to_json(&d);
		assert_non_null(j);
		if (su_schema_check(schema, j, err, sizeof(err)) != 0)
			fail_msg("%s spec against diagram.json: %s", hark_diagram_type_name(type),
				 err);
		assert_string_equal(json_string_value(json_object_get(j, "type")),
				    hark_diagram_type_name(type));
		assert_int_equal(json_array_size(json_object_get(j, "nodes")), d.n_nodes);
		assert_int_equal(json_array_size(json_object_get(j, "edges")), d.n_edges);

		/* through text, so the number formatting is part of the trip */
		text = json_dumps(j, JSON_COMPACT);
		assert_non_null(text);
		parsed = json_loads(text, 0, &jerr);
		assert_non_null(parsed);
		if (hark_diagram_from_json(parsed, &back, err, sizeof(err)) != HARK_OK)
			fail_msg("from_json of %s: %s", hark_diagram_type_name(type), err);
		assert_same(&d, &back);
		assert_valid(&back);
		j2 = hark_diagram_to_json(&back);
		assert_non_null(j2);
		assert_true(json_equal(j, j2));

		json_decref(j2);
		json_decref(parsed);
		free(text);
		json_decref(j);
		hark_diagram_clear(&back);
		hark_diagram_clear(&d);
		assert_null(d.nodes);
		assert_int_equal(d.n_nodes, 0);
	}
	hark_llm_schema_free(schema);
}

static void test_json_unknowns_are_null(void **state)
{
	struct hark_diagram d;
	json_t *j, *n4, *e0;

	(void)state;
	make_flowchart(&d);
	j = hark_diagram_to_json(&d);
	assert_non_null(j);
	n4 = json_array_get(json_object_get(j, "nodes"), 4); /* "c": start only */
	assert_true(json_is_real(json_object_get(n4, "start")));
	assert_true(json_is_null(json_object_get(n4, "end")));
	assert_true(json_is_null(json_object_get(n4, "turn")));
	assert_true(json_is_null(json_object_get(n4, "group")));
	assert_true(json_is_null(json_object_get(n4, "date")));
	e0 = json_array_get(json_object_get(j, "edges"), 0);
	assert_true(json_is_null(json_object_get(e0, "label")));
	assert_true(json_is_null(json_object_get(e0, "seq")));
	assert_string_equal(json_string_value(json_object_get(j, "source")), "standup.wav");
	json_decref(j);
	hark_diagram_clear(&d);

	make_mindmap(&d);
	j = hark_diagram_to_json(&d);
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(j, "duration")));
	assert_true(json_is_null(json_object_get(j, "source")));
	json_decref(j);
	hark_diagram_clear(&d);
	hark_diagram_clear(NULL);
}

/* ---- one rule at a time ---- */

static void dup_id(struct hark_diagram *d) { set_str(&d->nodes[2].id, "a"); }
static void id_space(struct hark_diagram *d) { set_str(&d->nodes[1].id, "a b"); }
static void id_accent(struct hark_diagram *d) { set_str(&d->nodes[1].id, "caf\xc3\xa9"); }
static void id_long(struct hark_diagram *d)
{
	set_str(&d->nodes[3].id, "abcdefghijklmnopqrstuvwxyz0123456"); /* 33 */
}
static void id_empty(struct hark_diagram *d) { set_str(&d->nodes[0].id, ""); }
static void label_empty(struct hark_diagram *d) { set_str(&d->nodes[3].label, ""); }
static void label_blank(struct hark_diagram *d) { set_str(&d->nodes[3].label, " \t "); }
static void label_null(struct hark_diagram *d) { set_str(&d->nodes[1].label, NULL); }
static void label_long(struct hark_diagram *d)
{
	char buf[HARK_DIAGRAM_MAX_LABEL + 2];

	memset(buf, 'x', HARK_DIAGRAM_MAX_LABEL + 1);
	buf[HARK_DIAGRAM_MAX_LABEL + 1] = '\0';
	set_str(&d->nodes[0].label, buf);
}
static void label_bad_utf8(struct hark_diagram *d) { set_str(&d->nodes[1].label, "ab\xc3\x28"); }
static void label_overlong(struct hark_diagram *d) { set_str(&d->nodes[2].label, "x\xc0\xaf"); }
static void label_surrogate(struct hark_diagram *d)
{
	set_str(&d->nodes[2].label, "\xed\xa0\x80");
}
static void edge_label_bad_utf8(struct hark_diagram *d) { set_str(&d->edges[2].label, "\xff"); }
static void edge_label_empty(struct hark_diagram *d) { set_str(&d->edges[2].label, ""); }
static void group_label_bad(struct hark_diagram *d) { set_str(&d->groups[0].label, "\x80"); }
static void title_bad_utf8(struct hark_diagram *d) { set_str(&d->title, "Q3 \xe2\x82"); }
static void title_missing(struct hark_diagram *d) { set_str(&d->title, NULL); }
static void kind_flow_topic(struct hark_diagram *d) { set_str(&d->nodes[3].kind, "topic"); }
static void kind_mind_step(struct hark_diagram *d) { set_str(&d->nodes[2].kind, "step"); }
static void kind_null(struct hark_diagram *d) { set_str(&d->nodes[1].kind, NULL); }
static void kind_case(struct hark_diagram *d) { set_str(&d->nodes[0].kind, "Event"); }
static void edge_to_missing(struct hark_diagram *d) { set_str(&d->edges[3].to, "n9"); }
static void edge_from_missing(struct hark_diagram *d) { set_str(&d->edges[0].from, "zz"); }
static void self_edge(struct hark_diagram *d) { set_str(&d->edges[1].to, "a"); }
static void no_start(struct hark_diagram *d) { set_str(&d->nodes[0].kind, "step"); }
static void two_starts(struct hark_diagram *d) { set_str(&d->nodes[5].kind, "start"); }
static void one_exit(struct hark_diagram *d) { set_str(&d->edges[3].from, "b"); }
static void two_roots(struct hark_diagram *d) { set_str(&d->nodes[2].kind, "root"); }
static void no_root(struct hark_diagram *d) { set_str(&d->nodes[0].kind, "topic"); }
static void unreachable(struct hark_diagram *d)
{
	node(d, "x", "Loose end", "topic", NULL, sp(-1, -1, -1));
}
static void mind_cycle(struct hark_diagram *d)
{
	node(d, "x", "Chicken", "topic", NULL, sp(-1, -1, -1));
	node(d, "y", "Egg", "subtopic", NULL, sp(-1, -1, -1));
	edge(d, "x", "y", NULL, -1, sp(-1, -1, -1));
	edge(d, "y", "x", NULL, -1, sp(-1, -1, -1));
}
static void into_root(struct hark_diagram *d) { edge(d, "s1", "r", NULL, -1, sp(-1, -1, -1)); }
static void two_parents(struct hark_diagram *d) { edge(d, "t2", "s1", NULL, -1, sp(-1, -1, -1)); }
static void hier_cycle(struct hark_diagram *d)
{
	edge(d, "ann", "co", "runs", -1, sp(-1, -1, -1));
}
static void seq_non_participant(struct hark_diagram *d)
{
	node(d, "cache", "Cache", "step", NULL, sp(-1, -1, -1));
	edge(d, "cache", "server", "hit", 4, sp(-1, -1, -1));
}
static void seq_lone_non_participant(struct hark_diagram *d)
{
	node(d, "cache", "Cache", "unit", NULL, sp(-1, -1, -1));
}
static void seq_repeat(struct hark_diagram *d) { d->edges[2].seq = 0; }
static void seq_negative(struct hark_diagram *d) { d->edges[1].seq = -1; }
static void seq_against_time(struct hark_diagram *d)
{
	d->edges[1].seq = 7; /* at 2.0 s, after seq 2 at 3.0 s */
}
static void node_nan(struct hark_diagram *d) { d->nodes[1].span.start_s = NAN; }
static void node_inf(struct hark_diagram *d) { d->nodes[1].span.end_s = INFINITY; }
static void edge_nan(struct hark_diagram *d) { d->edges[0].span.end_s = NAN; }
static void duration_nan(struct hark_diagram *d) { d->duration_s = NAN; }
static void end_before_start(struct hark_diagram *d) { d->nodes[2].span = sp(10.0, 5.0, 2); }
static void edge_end_before_start(struct hark_diagram *d) { d->edges[1].span = sp(3.0, 2.5, 1); }
static void turn_negative(struct hark_diagram *d) { d->nodes[0].span.turn = -5; }
static void group_missing(struct hark_diagram *d) { set_str(&d->nodes[3].group, "nope"); }
static void group_dup(struct hark_diagram *d) { set_str(&d->groups[1].id, "tech"); }
static void group_bad_id(struct hark_diagram *d) { set_str(&d->groups[0].id, "te ch"); }
static void order_nan(struct hark_diagram *d) { d->nodes[1].order = NAN; }
static void tl_skip(struct hark_diagram *d) { set_str(&d->edges[1].from, "e1"); }
static void tl_backward(struct hark_diagram *d)
{
	set_str(&d->edges[0].from, "e2");
	set_str(&d->edges[0].to, "e1");
}
static void tl_tie(struct hark_diagram *d) { d->nodes[1].order = d->nodes[0].order; }
static void bad_date(struct hark_diagram *d) { set_str(&d->nodes[0].date, "2023-02-29"); }
static void bad_date_form(struct hark_diagram *d) { set_str(&d->nodes[1].date, "3 June 2024"); }
static void bad_type(struct hark_diagram *d) { d->type = HARK_DIAGRAM_N_TYPES; }
static void page_past(struct hark_diagram *d) { d->page = 4; }
static void pages_zero(struct hark_diagram *d)
{
	d->pages = 0;
	d->page = 0;
}
static void two_faults(struct hark_diagram *d)
{
	set_str(&d->edges[0].to, "ghost");     /* reported second */
	set_str(&d->nodes[4].label, "");       /* reported first: nodes before edges */
}

static void test_rules_common(void **state)
{
	(void)state;
	broken(HARK_DIAGRAM_FLOWCHART, dup_id, "nodes[2].id");
	broken(HARK_DIAGRAM_FLOWCHART, id_space, "nodes[1].id");
	broken(HARK_DIAGRAM_FLOWCHART, id_accent, "nodes[1].id");
	broken(HARK_DIAGRAM_FLOWCHART, id_long, "nodes[3].id");
	broken(HARK_DIAGRAM_FLOWCHART, id_empty, "nodes[0].id");
	broken(HARK_DIAGRAM_FLOWCHART, label_empty, "nodes[3].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_blank, "nodes[3].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_null, "nodes[1].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_long, "nodes[0].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_bad_utf8, "nodes[1].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_overlong, "nodes[2].label");
	broken(HARK_DIAGRAM_FLOWCHART, label_surrogate, "nodes[2].label");
	broken(HARK_DIAGRAM_FLOWCHART, edge_label_bad_utf8, "edges[2].label");
	broken(HARK_DIAGRAM_FLOWCHART, edge_label_empty, "edges[2].label");
	broken(HARK_DIAGRAM_FLOWCHART, group_label_bad, "groups[0].label");
	broken(HARK_DIAGRAM_FLOWCHART, title_bad_utf8, "title");
	broken(HARK_DIAGRAM_FLOWCHART, title_missing, "title");
	broken(HARK_DIAGRAM_FLOWCHART, kind_flow_topic, "nodes[3].kind");
	broken(HARK_DIAGRAM_MINDMAP, kind_mind_step, "nodes[2].kind");
	broken(HARK_DIAGRAM_HIERARCHY, kind_null, "nodes[1].kind");
	broken(HARK_DIAGRAM_TIMELINE, kind_case, "nodes[0].kind");
	broken(HARK_DIAGRAM_FLOWCHART, edge_to_missing, "edges[3].to");
	broken(HARK_DIAGRAM_FLOWCHART, edge_from_missing, "edges[0].from");
	broken(HARK_DIAGRAM_FLOWCHART, self_edge, "edges[1].to");
	broken(HARK_DIAGRAM_FLOWCHART, node_nan, "nodes[1].start");
	broken(HARK_DIAGRAM_FLOWCHART, node_inf, "nodes[1].end");
	broken(HARK_DIAGRAM_FLOWCHART, edge_nan, "edges[0].end");
	broken(HARK_DIAGRAM_FLOWCHART, duration_nan, "duration");
	broken(HARK_DIAGRAM_FLOWCHART, end_before_start, "nodes[2].end");
	broken(HARK_DIAGRAM_SEQUENCE, edge_end_before_start, "edges[1].end");
	broken(HARK_DIAGRAM_FLOWCHART, turn_negative, "nodes[0].turn");
	broken(HARK_DIAGRAM_FLOWCHART, group_missing, "nodes[3].group");
	broken(HARK_DIAGRAM_HIERARCHY, group_dup, "groups[1].id");
	broken(HARK_DIAGRAM_HIERARCHY, group_bad_id, "groups[0].id");
	broken(HARK_DIAGRAM_FLOWCHART, bad_type, "type");
	broken(HARK_DIAGRAM_HIERARCHY, page_past, "page");
	broken(HARK_DIAGRAM_HIERARCHY, pages_zero, "pages");
	broken(HARK_DIAGRAM_FLOWCHART, two_faults, "nodes[4].label");
}

static void test_rules_flowchart(void **state)
{
	struct hark_diagram d;
	char err[256];

	(void)state;
	broken(HARK_DIAGRAM_FLOWCHART, no_start, "nodes");
	broken(HARK_DIAGRAM_FLOWCHART, two_starts, "nodes[5].kind");
	broken(HARK_DIAGRAM_FLOWCHART, one_exit, "nodes[2]");

	/* no nodes at all (the array stays owned so the spec can be cleared) */
	make_flowchart(&d);
	d.n_nodes = 0;
	expect_fail(&d, "nodes");
	d.n_nodes = 6;
	hark_diagram_clear(&d);

	/* the exact message the header documents */
	make_flowchart(&d);
	edge_to_missing(&d);
	assert_int_equal(hark_diagram_validate(&d, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_string_equal(err, "edges[3].to: no node \"n9\"");
	hark_diagram_clear(&d);

	/* a decision with three exits is fine, one with none is not */
	make_flowchart(&d);
	edge(&d, "d", "e", "skip", -1, sp(-1, -1, -1));
	assert_valid(&d);
	hark_diagram_clear(&d);
	make_flowchart(&d);
	node(&d, "d2", "Anything else?", "decision", NULL, sp(-1, -1, -1));
	edge(&d, "e", "d2", NULL, -1, sp(-1, -1, -1));
	expect_fail(&d, "nodes[6]");
	hark_diagram_clear(&d);

	/* err NULL / tiny is safe */
	make_flowchart(&d);
	no_start(&d);
	assert_int_equal(hark_diagram_validate(&d, NULL, 0), HARK_ERR_FORMAT);
	assert_int_equal(hark_diagram_validate(&d, err, 4), HARK_ERR_FORMAT);
	assert_string_equal(err, "nod");
	hark_diagram_clear(&d);
	assert_int_equal(hark_diagram_validate(NULL, err, sizeof(err)), HARK_ERR_INVALID_ARG);
}

static void test_rules_timeline(void **state)
{
	struct hark_diagram d;

	(void)state;
	broken(HARK_DIAGRAM_TIMELINE, order_nan, "nodes[1].order");
	broken(HARK_DIAGRAM_TIMELINE, tl_skip, "edges[1]");
	broken(HARK_DIAGRAM_TIMELINE, tl_backward, "edges[0]");
	broken(HARK_DIAGRAM_TIMELINE, tl_tie, "edges[0]");
	broken(HARK_DIAGRAM_TIMELINE, bad_date, "nodes[0].date");
	broken(HARK_DIAGRAM_TIMELINE, bad_date_form, "nodes[1].date");

	/* no links at all is fine; events sharing a date may both link on */
	make_timeline(&d);
	d.n_edges = 0;
	assert_valid(&d);
	d.n_edges = 2;
	node(&d, "e2b", "Beta in Lyon", "event", NULL, sp(-1, -1, -1));
	d.nodes[3].order = d.nodes[1].order;
	edge(&d, "e1", "e2b", NULL, -1, sp(-1, -1, -1));
	edge(&d, "e2b", "e3", NULL, -1, sp(-1, -1, -1));
	assert_valid(&d);
	hark_diagram_clear(&d);
}

static void test_rules_mindmap(void **state)
{
	char err[256];
	struct hark_diagram d;

	(void)state;
	broken(HARK_DIAGRAM_MINDMAP, two_roots, "nodes[2].kind");
	broken(HARK_DIAGRAM_MINDMAP, no_root, "nodes");
	broken(HARK_DIAGRAM_MINDMAP, unreachable, "nodes[4]");
	broken(HARK_DIAGRAM_MINDMAP, mind_cycle, "nodes[4]");
	broken(HARK_DIAGRAM_MINDMAP, into_root, "edges[3].to");
	broken(HARK_DIAGRAM_MINDMAP, two_parents, "edges[3].to");

	/* the cycle is named as such, the loose node as unreachable */
	make_mindmap(&d);
	mind_cycle(&d);
	assert_int_equal(hark_diagram_validate(&d, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "cycle"));
	hark_diagram_clear(&d);
	make_mindmap(&d);
	unreachable(&d);
	assert_int_equal(hark_diagram_validate(&d, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "not reachable"));
	assert_null(strstr(err, "cycle"));
	hark_diagram_clear(&d);

	/* a lone root is a valid mind map */
	init(&d, HARK_DIAGRAM_MINDMAP, "Just one idea");
	node(&d, "r", "Idea", "root", NULL, sp(-1, -1, -1));
	assert_valid(&d);
	hark_diagram_clear(&d);
}

static void test_rules_hierarchy_sequence(void **state)
{
	(void)state;
	broken(HARK_DIAGRAM_HIERARCHY, hier_cycle, "edges[4].to");
	broken(HARK_DIAGRAM_SEQUENCE, seq_non_participant, "edges[4].from");
	broken(HARK_DIAGRAM_SEQUENCE, seq_lone_non_participant, "nodes[3].kind");
	broken(HARK_DIAGRAM_SEQUENCE, seq_repeat, "edges[2].seq");
	broken(HARK_DIAGRAM_SEQUENCE, seq_negative, "edges[1].seq");
	broken(HARK_DIAGRAM_SEQUENCE, seq_against_time, "edges[1].seq");
}

/* Deep chains: 60 levels walked without recursion, then a back edge. */
static void test_deep_chains(void **state)
{
	(void)state;
	for (int type = HARK_DIAGRAM_MINDMAP; type <= HARK_DIAGRAM_HIERARCHY; type++) {
		struct hark_diagram d;
		char id[16], prev[16], label[32];

		init(&d, type, "Chain");
		for (int i = 0; i < HARK_DIAGRAM_MAX_NODES; i++) {
			const char *kind = type == HARK_DIAGRAM_MINDMAP ? (i ? "topic" : "root")
									: "unit";
			snprintf(id, sizeof(id), "n%d", i);
			snprintf(label, sizeof(label), "Level %d", i);
			node(&d, id, label, kind, NULL, sp(i, i + 0.5, i));
			if (i)
				edge(&d, prev, id, NULL, -1, sp(-1, -1, -1));
			memcpy(prev, id, sizeof(id));
		}
		assert_valid(&d);
		/* close the loop from the deepest node back to the top */
		edge(&d, "n59", "n0", NULL, -1, sp(-1, -1, -1));
		expect_fail(&d, "edges[59].to");
		hark_diagram_clear(&d);
	}
}

static void test_caps(void **state)
{
	struct hark_diagram d;
	char label[HARK_DIAGRAM_MAX_LABEL + 2], id[16];

	(void)state;
	init(&d, HARK_DIAGRAM_HIERARCHY, "Caps");
	for (int i = 0; i < HARK_DIAGRAM_MAX_NODES; i++) {
		snprintf(id, sizeof(id), "u%d", i);
		node(&d, id, "Unit", "unit", NULL, sp(-1, -1, -1));
	}
	assert_int_equal(hark_diagram_add_node(&d, "u60", "Unit", "unit", NULL, NULL),
			 HARK_ERR_LIMIT);
	assert_int_equal(d.n_nodes, HARK_DIAGRAM_MAX_NODES);
	/* edges a -> b for a < b (acyclic), in order, until the cap */
	for (int a = 0, b = 1, k = 0; k < HARK_DIAGRAM_MAX_EDGES; k++) {
		char from[16], to[16];
		snprintf(from, sizeof(from), "u%d", a);
		snprintf(to, sizeof(to), "u%d", b);
		edge(&d, from, to, NULL, -1, sp(-1, -1, -1));
		if (++b == HARK_DIAGRAM_MAX_NODES) {
			a++;
			b = a + 1;
		}
	}
	assert_int_equal(hark_diagram_add_edge(&d, "u0", "u1", NULL, -1, NULL), HARK_ERR_LIMIT);
	assert_int_equal(d.n_edges, HARK_DIAGRAM_MAX_EDGES);
	for (int i = 0; i < HARK_DIAGRAM_MAX_GROUPS; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		assert_int_equal(hark_diagram_add_group(&d, id, "Group"), HARK_OK);
	}
	assert_int_equal(hark_diagram_add_group(&d, "g16", "Group"), HARK_ERR_LIMIT);
	assert_int_equal(d.n_groups, HARK_DIAGRAM_MAX_GROUPS);
	assert_valid(&d); /* a full spec is still valid */

	/* the label cap is in bytes: 200 pass, 201 do not; 100 x "é" = 200 bytes */
	memset(label, 'x', HARK_DIAGRAM_MAX_LABEL + 1);
	label[HARK_DIAGRAM_MAX_LABEL + 1] = '\0';
	hark_diagram_clear(&d);
	init(&d, HARK_DIAGRAM_MINDMAP, "Labels");
	assert_int_equal(hark_diagram_add_node(&d, "r", label, "root", NULL, NULL), HARK_ERR_LIMIT);
	assert_int_equal(d.n_nodes, 0);
	label[HARK_DIAGRAM_MAX_LABEL] = '\0';
	node(&d, "r", label, "root", NULL, sp(-1, -1, -1));
	for (int i = 0; i < 100; i++)
		memcpy(label + 2 * i, "\xc3\xa9", 2);
	node(&d, "t", label, "topic", NULL, sp(-1, -1, -1));
	memset(label, 'y', HARK_DIAGRAM_MAX_LABEL + 1);
	label[HARK_DIAGRAM_MAX_LABEL + 1] = '\0';
	assert_int_equal(hark_diagram_add_edge(&d, "r", "t", label, -1, NULL), HARK_ERR_LIMIT);
	assert_int_equal(hark_diagram_add_group(&d, "g", label), HARK_ERR_LIMIT);
	edge(&d, "r", "t", NULL, -1, sp(-1, -1, -1));
	assert_valid(&d);
	/* NULL span = unknown */
	assert_true(d.nodes[0].span.start_s < 0 && d.nodes[0].span.turn == -1);

	assert_int_equal(hark_diagram_add_node(NULL, "a", "b", "root", NULL, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_add_node(&d, NULL, "b", "root", NULL, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_diagram_add_edge(&d, "r", NULL, NULL, -1, NULL), HARK_ERR_INVALID_ARG);
	hark_diagram_clear(&d);
}

/* The reader's caps: build JSON with one element too many. */
static void test_json_caps(void **state)
{
	struct hark_diagram d;
	char err[256], id[16];
	json_t *j, *nodes, *n0;

	(void)state;
	make_mindmap(&d);
	j = hark_diagram_to_json(&d);
	assert_non_null(j);
	hark_diagram_clear(&d);
	nodes = json_object_get(j, "nodes");
	n0 = json_array_get(nodes, 1);
	for (int i = (int)json_array_size(nodes); i <= HARK_DIAGRAM_MAX_NODES; i++) {
		json_t *c = json_deep_copy(n0);
		assert_non_null(c);
		snprintf(id, sizeof(id), "x%d", i);
		json_object_set_new(c, "id", json_string(id));
		assert_int_equal(json_array_append_new(nodes, c), 0);
	}
	assert_int_equal(hark_diagram_from_json(j, &d, err, sizeof(err)), HARK_ERR_LIMIT);
	assert_non_null(strstr(err, "nodes"));
	assert_int_equal(d.n_nodes, 0);

	/* back under the cap: parses (and is an invalid mind map, unreachable nodes) */
	assert_int_equal(json_array_remove(nodes, json_array_size(nodes) - 1), 0);
	assert_int_equal(hark_diagram_from_json(j, &d, err, sizeof(err)), HARK_OK);
	assert_int_equal(d.n_nodes, HARK_DIAGRAM_MAX_NODES);
	expect_fail(&d, "nodes[4]");
	hark_diagram_clear(&d);

	/* a label over the byte cap */
	{
		char big[HARK_DIAGRAM_MAX_LABEL + 2];
		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		json_object_set_new(json_array_get(nodes, 3), "label", json_string(big));
		assert_int_equal(hark_diagram_from_json(j, &d, err, sizeof(err)), HARK_ERR_LIMIT);
		assert_non_null(strstr(err, "nodes[3].label"));
		assert_int_equal(d.n_nodes, 0);
	}
	json_decref(j);
}

static void test_json_member_types(void **state)
{
	(void)state;
	/* a minimal answer as an LLM may write it: optional members left out,
	 * integer times */
	parse_expect("{\"type\":\"Mind-Map\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"Root\",\"kind\":\"root\",\"start\":3,\"end\":4}]}",
		     HARK_OK, NULL);
	{
		struct hark_diagram d;
		char err[128];
		json_t *j = json_loads("{\"type\":\"timeline\",\"title\":\"T\",\"nodes\":[{\"id\":"
				       "\"a\",\"label\":\"A\",\"kind\":\"event\",\"start\":3}]}",
				       0, NULL);
		assert_non_null(j);
		assert_int_equal(hark_diagram_from_json(j, &d, err, sizeof(err)), HARK_OK);
		assert_int_equal(d.type, HARK_DIAGRAM_TIMELINE);
		assert_true(d.nodes[0].span.start_s == 3.0);
		assert_true(d.nodes[0].span.end_s < 0);
		assert_int_equal(d.nodes[0].span.turn, -1);
		assert_int_equal(d.page, 1);
		assert_int_equal(d.pages, 1);
		assert_true(d.duration_s < 0);
		/* a timeline event without an order is parsed, then refused */
		expect_fail(&d, "nodes[0].order");
		hark_diagram_clear(&d);
		json_decref(j);
	}

	parse_expect("[1,2]", HARK_ERR_FORMAT, "(root)");
	parse_expect("{\"title\":\"T\",\"nodes\":[]}", HARK_ERR_FORMAT, "type");
	parse_expect("{\"type\":3,\"title\":\"T\",\"nodes\":[]}", HARK_ERR_FORMAT, "type");
	parse_expect("{\"type\":\"auto\",\"title\":\"T\",\"nodes\":[]}", HARK_ERR_FORMAT, "type");
	parse_expect("{\"type\":\"timeline\",\"title\":null,\"nodes\":[]}", HARK_ERR_FORMAT,
		     "title");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\"}", HARK_ERR_FORMAT, "nodes");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\",\"nodes\":{}}", HARK_ERR_FORMAT,
		     "nodes");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\",\"nodes\":[],\"groups\":\"g\"}",
		     HARK_ERR_FORMAT, "groups");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\",\"duration\":\"5\",\"nodes\":[]}",
		     HARK_ERR_FORMAT, "duration");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\",\"page\":1.0,\"nodes\":[]}",
		     HARK_ERR_FORMAT, "page");
	parse_expect("{\"type\":\"timeline\",\"title\":\"T\",\"pages\":99999999999,\"nodes\":[]}",
		     HARK_ERR_FORMAT, "pages");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"R\",\"kind\":\"root\"},{\"id\":\"a\",\"label\":5,\"kind\":\"topic\"}]}",
		     HARK_ERR_FORMAT, "nodes[1].label");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"R\",\"kind\":\"root\"},\"a\"]}",
		     HARK_ERR_FORMAT, "nodes[1]");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"label\":\"R\","
		     "\"kind\":\"root\"}]}",
		     HARK_ERR_FORMAT, "nodes[0].id");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"R\",\"kind\":\"root\",\"start\":\"10\"}]}",
		     HARK_ERR_FORMAT, "nodes[0].start");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"R\",\"kind\":\"root\",\"turn\":2.5}]}",
		     HARK_ERR_FORMAT, "nodes[0].turn");
	parse_expect("{\"type\":\"mindmap\",\"title\":\"T\",\"nodes\":[{\"id\":\"r\",\"label\":"
		     "\"R\",\"kind\":\"root\",\"group\":[]}]}",
		     HARK_ERR_FORMAT, "nodes[0].group");
	parse_expect("{\"type\":\"sequence\",\"title\":\"T\",\"nodes\":[{\"id\":\"a\",\"label\":"
		     "\"A\",\"kind\":\"participant\"}],\"edges\":[{\"from\":\"a\",\"to\":\"b\","
		     "\"seq\":\"x\"}]}",
		     HARK_ERR_FORMAT, "edges[0].seq");
	parse_expect("{\"type\":\"sequence\",\"title\":\"T\",\"nodes\":[{\"id\":\"a\",\"label\":"
		     "\"A\",\"kind\":\"participant\"}],\"edges\":[{\"from\":\"a\",\"to\":\"b\","
		     "\"seq\":1.5}]}",
		     HARK_ERR_FORMAT, "edges[0].seq");
	parse_expect("{\"type\":\"sequence\",\"title\":\"T\",\"nodes\":[{\"id\":\"a\",\"label\":"
		     "\"A\",\"kind\":\"participant\"}],\"edges\":[{\"from\":\"a\",\"to\":null}]}",
		     HARK_ERR_FORMAT, "edges[0].to");
	parse_expect("{\"type\":\"sequence\",\"title\":\"T\",\"nodes\":[{\"id\":\"a\",\"label\":"
		     "\"A\",\"kind\":\"participant\"}],\"groups\":[{\"id\":\"g\",\"label\":true}]}",
		     HARK_ERR_FORMAT, "groups[0].label");
}

/* A hand-written spec file: parses, validates, and matches the schema. */
static void test_spec_text(void **state)
{
	static const char text[] =
		"{\"type\":\"sequence\",\"title\":\"Ordering\",\"source\":\"call.mp3\","
		"\"duration\":42.5,\"page\":1,\"pages\":1,"
		"\"nodes\":["
		"{\"id\":\"shop\",\"label\":\"Shop\",\"kind\":\"participant\",\"group\":null,"
		"\"date\":null,\"order\":0,\"start\":null,\"end\":null,\"turn\":null},"
		"{\"id\":\"bank\",\"label\":\"Bank\",\"kind\":\"participant\",\"group\":null,"
		"\"date\":null,\"order\":0,\"start\":null,\"end\":null,\"turn\":null}],"
		"\"edges\":["
		"{\"from\":\"shop\",\"to\":\"bank\",\"label\":\"charge card\",\"seq\":0,"
		"\"start\":4.25,\"end\":6,\"turn\":1},"
		"{\"from\":\"bank\",\"to\":\"shop\",\"label\":\"approved\",\"seq\":1,"
		"\"start\":6.5,\"end\":7,\"turn\":2}],"
		"\"groups\":[]}";
	struct hark_llm_schema *schema = su_schema_load("diagram.json");
	struct hark_diagram d;
	char err[256];
	json_t *j = json_loads(text, 0, NULL);

	(void)state;
	assert_non_null(schema);
	assert_non_null(j);
	assert_int_equal(su_schema_check(schema, j, err, sizeof(err)), 0);
	assert_int_equal(hark_diagram_from_json(j, &d, err, sizeof(err)), HARK_OK);
	assert_valid(&d);
	assert_int_equal(d.n_edges, 2);
	assert_string_equal(d.edges[1].label, "approved");
	assert_true(d.edges[0].span.start_s == 4.25);
	assert_int_equal(d.edges[1].seq, 1);
	hark_diagram_clear(&d);

	/* the schema itself is strict: an unknown kind or member is refused */
	json_object_set_new(json_array_get(json_object_get(j, "nodes"), 0), "kind",
			    json_string("actor"));
	assert_true(su_schema_check(schema, j, err, sizeof(err)) != 0);
	json_object_set_new(json_array_get(json_object_get(j, "nodes"), 0), "kind",
			    json_string("participant"));
	assert_int_equal(su_schema_check(schema, j, err, sizeof(err)), 0);
	json_object_set_new(j, "colour", json_string("red"));
	assert_true(su_schema_check(schema, j, err, sizeof(err)) != 0);
	json_object_del(j, "colour");
	json_object_set_new(j, "type", json_string("auto"));
	assert_true(su_schema_check(schema, j, err, sizeof(err)) != 0);
	json_decref(j);
	hark_llm_schema_free(schema);
}

/* Every per-type example in docs/DIAGRAM.md matches the schema, parses and
 * validates, and covers its type. */
static void test_doc_examples(void **state)
{
	struct hark_llm_schema *schema = su_schema_load("diagram.json");
	char path[1024], err[256];
	FILE *f;
	char *doc, *p;
	long size;
	int seen[HARK_DIAGRAM_N_TYPES] = {0};

	(void)state;
	assert_non_null(schema);
	su_source_path("docs/DIAGRAM.md", path, sizeof(path));
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	doc = calloc(1, (size_t)size + 1);
	assert_non_null(doc);
	assert_int_equal(fread(doc, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	p = strstr(doc, "## Validation");
	assert_non_null(p);
	while ((p = strstr(p, "```json\n")) != NULL) {
		char *body = p + 8, *end = strstr(body, "```");
		struct hark_diagram d;
		json_error_t jerr;
		json_t *j;

		assert_non_null(end);
		*end = '\0';
		j = json_loads(body, 0, &jerr);
		if (!j)
			fail_msg("doc example does not parse: %s (line %d)", jerr.text, jerr.line);
		if (su_schema_check(schema, j, err, sizeof(err)) != 0)
			fail_msg("doc example against the schema: %s", err);
		if (hark_diagram_from_json(j, &d, err, sizeof(err)) != HARK_OK)
			fail_msg("doc example: %s", err);
		assert_valid(&d);
		seen[d.type] = 1;
		hark_diagram_clear(&d);
		json_decref(j);
		p = end + 3;
	}
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++)
		if (!seen[t])
			fail_msg("docs/DIAGRAM.md has no valid %s example", hark_diagram_type_name(t));
	free(doc);
	hark_llm_schema_free(schema);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_valid_round_trip),
		cmocka_unit_test(test_json_unknowns_are_null),
		cmocka_unit_test(test_rules_common),
		cmocka_unit_test(test_rules_flowchart),
		cmocka_unit_test(test_rules_timeline),
		cmocka_unit_test(test_rules_mindmap),
		cmocka_unit_test(test_rules_hierarchy_sequence),
		cmocka_unit_test(test_deep_chains),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_json_caps),
		cmocka_unit_test(test_json_member_types),
		cmocka_unit_test(test_spec_text),
		cmocka_unit_test(test_doc_examples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
