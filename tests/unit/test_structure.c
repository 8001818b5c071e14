/*
 * Tests for analyze/structure: detection accuracy over the hand-labelled
 * texts in tests/data/diagram_texts.tsv (confusion matrix printed), every
 * built spec validating for every type, structure checks on small
 * hand-written examples (decisions with yes/no exits, timeline order with a
 * meeting date, sequence order and participants, hierarchy parent links),
 * the mind-map fallback, pagination of very long input (the shared QMSum
 * meetings, skipped when absent), robustness on odd input, and errors.
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

#include "analyze/meeting_text.h"
#include "analyze/structure.h"
#include "hark/hark.h"
#include "render/diagram.h"

/* ------------------------------------------------------- helpers --- */

struct text_case {
	int type;
	char *buf;                       /* owns the turn strings */
	struct hark_chunk_turn turns[16];
	size_t n;
};

static char *xstrdup(const char *s)
{
	size_t L = strlen(s) + 1;
	char *d = malloc(L);

	assert_non_null(d);
	memcpy(d, s, L);
	return d;
}

/* Splits text at " | " into turns with an optional "Name: " speaker; turn k
 * gets the times [10k, 10k + 8] so spans can be checked. */
static void make_case(const char *text, struct text_case *tc)
{
	char *p;

	tc->buf = xstrdup(text);
	tc->n = 0;
	p = tc->buf;
	while (p && tc->n < 16) {
		char *bar = strstr(p, " | ");
		if (bar) {
			*bar = '\0';
			bar += 3;
		}
		struct hark_chunk_turn *t = &tc->turns[tc->n];
		t->speaker = NULL;
		t->text = p;
		/* "Name: " prefix: up to 24 bytes of letters/spaces, capitalised */
		char *colon = strstr(p, ": ");
		if (colon && colon - p <= 24 && p[0] >= 'A' && p[0] <= 'Z') {
			int ok = 1;
			for (char *q = p; q < colon; q++)
				if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || *q == ' '))
					ok = 0;
			if (ok) {
				*colon = '\0';
				t->speaker = p;
				t->text = colon + 2;
			}
		}
		t->start_s = 10.0 * (double)tc->n;
		t->end_s = t->start_s + 8.0;
		tc->n++;
		p = bar;
	}
}

static const char *src_dir(void)
{
	static char buf[1024];
	const char *s = getenv("HARK_SOURCE_DIR");

	if (s && *s)
		return s;
	snprintf(buf, sizeof(buf), "%s", __FILE__);
	char *x = strstr(buf, "/tests/unit/");
	if (x) {
		*x = '\0';
		return buf;
	}
	return ".";
}

static size_t load_cases(struct text_case **out)
{
	char path[1200], line[4096];
	size_t n = 0, cap = 0;
	struct text_case *v = NULL;

	snprintf(path, sizeof(path), "%s/tests/data/diagram_texts.tsv", src_dir());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t L = strlen(line);
		while (L > 0 && (line[L - 1] == '\n' || line[L - 1] == '\r'))
			line[--L] = '\0';
		if (L == 0 || line[0] == '#')
			continue;
		char *tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		assert_int_equal(hark_diagram_type_parse(line, &v[n].type), 0);
		make_case(tab + 1, &v[n]);
		n++;
	}
	fclose(f);
	*out = v;
	return n;
}

static void free_cases(struct text_case *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(v[k].buf);
	free(v);
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Checks the invariants every built spec keeps. */
static void check_spec(const struct hark_diagram *d, const struct hark_chunk_turn *turns,
		       size_t n, const struct hark_structure_params *p)
{
	char err[256];

	if (hark_diagram_validate(d, err, sizeof(err)) != 0)
		fail_msg("invalid spec: %s", err);
	assert_true(d->n_nodes >= 1 && d->n_nodes <= p->max_nodes);
	assert_true(d->page >= 1 && d->page <= d->pages);
	for (size_t k = 0; k < d->n_nodes; k++) {
		const struct hark_diagram_node *nd = &d->nodes[k];
		if (utf8_chars(nd->label) > p->max_label)
			fail_msg("label over %zu chars: \"%s\"", p->max_label, nd->label);
		assert_true(nd->span.turn >= -1 && nd->span.turn < (long)n);
		if (nd->span.turn >= 0 && nd->span.start_s >= 0) {
			const struct hark_chunk_turn *t = &turns[nd->span.turn];
			assert_true(nd->span.start_s >= t->start_s - 1e-9);
			assert_true(nd->span.end_s >= nd->span.start_s);
			/* a mind-map topic spans its whole stretch of turns */
			if (!(d->type == HARK_DIAGRAM_MINDMAP && strcmp(nd->kind, "root") != 0))
				assert_true(nd->span.end_s <= t->end_s + 1e-9);
		}
	}
	for (size_t k = 0; k < d->n_edges; k++) {
		const struct hark_diagram_edge *e = &d->edges[k];
		if (e->label && utf8_chars(e->label) > p->max_label)
			fail_msg("edge label over %zu chars: \"%s\"", p->max_label, e->label);
		assert_true(e->span.turn >= -1 && e->span.turn < (long)n);
	}
}

static const struct hark_diagram_node *find_node(const struct hark_diagram *d, const char *needle)
{
	for (size_t k = 0; k < d->n_nodes; k++)
		if (strcasestr(d->nodes[k].label, needle))
			return &d->nodes[k];
	return NULL;
}

static int has_edge(const struct hark_diagram *d, const char *from, const char *to)
{
	for (size_t k = 0; k < d->n_edges; k++)
		if (strcmp(d->edges[k].from, from) == 0 && strcmp(d->edges[k].to, to) == 0)
			return 1;
	return 0;
}

static int build_text(const char *text, int type, const struct hark_structure_params *p,
		      struct hark_diagram *d, struct text_case *tc)
{
	char err[256] = "";
	make_case(text, tc);
	memset(d, 0, sizeof(*d));
	int rc = hark_structure_build(tc->turns, tc->n, type, p, d, err, sizeof(err));
	if (rc)
		print_message("build: %s\n", err);
	return rc;
}

/* ----------------------------------------------------------- tests --- */

static void test_detection_accuracy(void **state)
{
	(void)state;
	struct text_case *v;
	size_t n = load_cases(&v), correct = 0;
	size_t cm[HARK_DIAGRAM_N_TYPES][HARK_DIAGRAM_N_TYPES];
	size_t per[HARK_DIAGRAM_N_TYPES] = { 0 };

	memset(cm, 0, sizeof(cm));
	assert_true(n >= 50);
	for (size_t k = 0; k < n; k++) {
		struct hark_structure_scores sc;
		assert_int_equal(hark_structure_detect(v[k].turns, v[k].n, &sc), 0);
		assert_true(sc.best >= 0 && sc.best < HARK_DIAGRAM_N_TYPES);
		assert_true(sc.confidence >= 0 && sc.confidence <= 1);
		assert_true(strlen(sc.reason) > 0);
		cm[v[k].type][sc.best]++;
		per[v[k].type]++;
		if (sc.best == v[k].type)
			correct++;
		else
			print_message("miss: %s -> %s (%s): %.60s\n", hark_diagram_type_name(v[k].type),
				      hark_diagram_type_name(sc.best), sc.reason, v[k].turns[0].text);
	}
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++)
		assert_true(per[t] >= 10);
	double acc = (double)correct / (double)n;
	print_message("detection accuracy %zu/%zu = %.3f\n", correct, n, acc);
	print_message("%-10s", "true\\pred");
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++)
		print_message(" %9.9s", hark_diagram_type_name(t));
	print_message("\n");
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		print_message("%-10s", hark_diagram_type_name(t));
		for (int u = 0; u < HARK_DIAGRAM_N_TYPES; u++)
			print_message(" %9zu", cm[t][u]);
		print_message("\n");
	}
	assert_true(acc >= 0.85);
	free_cases(v, n);
}

static void test_every_type_validates(void **state)
{
	(void)state;
	struct text_case *v;
	size_t n = load_cases(&v);
	struct hark_structure_params p = hark_structure_default_params();
	size_t kept[HARK_DIAGRAM_N_TYPES] = { 0 };

	p.meeting_date = "2024-05-10";
	for (size_t k = 0; k < n; k++)
		for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
			struct hark_diagram d;
			char err[256] = "";
			memset(&d, 0, sizeof(d));
			int rc = hark_structure_build(v[k].turns, v[k].n, t, &p, &d, err, sizeof(err));
			if (rc)
				fail_msg("build %s of text %zu: %s", hark_diagram_type_name(t), k, err);
			check_spec(&d, v[k].turns, v[k].n, &p);
			assert_true(d.type == t || d.type == HARK_DIAGRAM_MINDMAP);
			/* a text labelled with a type keeps that type when built as it */
			if (t == v[k].type && d.type == t)
				kept[t]++;
			hark_diagram_clear(&d);
		}
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		print_message("%s: built as itself %zu times\n", hark_diagram_type_name(t), kept[t]);
		assert_true(kept[t] >= 8);
	}
	free_cases(v, n);
}

static void test_flowchart_decision(void **state)
{
	(void)state;
	struct text_case tc;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();

	assert_int_equal(build_text("Open the ticket. If the customer is a premium member, call them back "
				    "today. Otherwise, send the standard reply. Then close the ticket.",
				    HARK_DIAGRAM_FLOWCHART, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.type, HARK_DIAGRAM_FLOWCHART);
	size_t starts = 0, ends = 0, decisions = 0;
	const struct hark_diagram_node *dec = NULL;
	for (size_t k = 0; k < d.n_nodes; k++) {
		starts += strcmp(d.nodes[k].kind, "start") == 0;
		ends += strcmp(d.nodes[k].kind, "end") == 0;
		if (strcmp(d.nodes[k].kind, "decision") == 0) {
			decisions++;
			dec = &d.nodes[k];
		}
	}
	assert_int_equal(starts, 1);
	assert_int_equal(ends, 1);
	assert_int_equal(decisions, 1);
	assert_non_null(strstr(dec->label, "premium"));
	const struct hark_diagram_node *yes = find_node(&d, "call them back");
	const struct hark_diagram_node *no = find_node(&d, "standard reply");
	const struct hark_diagram_node *close = find_node(&d, "close the ticket");
	assert_non_null(yes);
	assert_non_null(no);
	assert_non_null(close);
	int saw_yes = 0, saw_no = 0;
	for (size_t k = 0; k < d.n_edges; k++) {
		const struct hark_diagram_edge *e = &d.edges[k];
		if (strcmp(e->from, dec->id) != 0)
			continue;
		assert_non_null(e->label);
		if (strcmp(e->label, "yes") == 0 && strcmp(e->to, yes->id) == 0)
			saw_yes = 1;
		if (strcmp(e->label, "no") == 0 && strcmp(e->to, no->id) == 0)
			saw_no = 1;
	}
	assert_true(saw_yes && saw_no);
	/* both branches join at the next step */
	assert_true(has_edge(&d, yes->id, close->id));
	assert_true(has_edge(&d, no->id, close->id));
	/* the step before the decision leads into it */
	const struct hark_diagram_node *open = find_node(&d, "Open the ticket");
	assert_non_null(open);
	assert_true(has_edge(&d, open->id, dec->id));
	assert_null(find_node(&d, "Otherwise"));
	hark_diagram_clear(&d);
	free(tc.buf);

	/* a condition without "otherwise": its "no" exit skips the action */
	assert_int_equal(build_text("Check the oil. If it is low, add a litre. Start the engine.",
				    HARK_DIAGRAM_FLOWCHART, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	dec = NULL;
	for (size_t k = 0; k < d.n_nodes; k++)
		if (strcmp(d.nodes[k].kind, "decision") == 0)
			dec = &d.nodes[k];
	assert_non_null(dec);
	const struct hark_diagram_node *start = find_node(&d, "Start the engine");
	assert_non_null(start);
	int no_to_start = 0;
	for (size_t k = 0; k < d.n_edges; k++)
		if (strcmp(d.edges[k].from, dec->id) == 0 && d.edges[k].label &&
		    strcmp(d.edges[k].label, "no") == 0 && strcmp(d.edges[k].to, start->id) == 0)
			no_to_start = 1;
	assert_true(no_to_start);
	hark_diagram_clear(&d);
	free(tc.buf);
}

static void test_timeline_order(void **state)
{
	(void)state;
	struct text_case tc;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();

	p.meeting_date = "2024-05-10";
	assert_int_equal(build_text("Next year we want to open a second office. We started the company "
				    "in 2019. In March 2021 we hired the first ten people.",
				    HARK_DIAGRAM_TIMELINE, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.type, HARK_DIAGRAM_TIMELINE);
	assert_int_equal(d.n_nodes, 3);
	const struct hark_diagram_node *a = find_node(&d, "2019"), *b = find_node(&d, "March 2021"),
				       *c = find_node(&d, "second office");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a->order < b->order);
	assert_true(b->order < c->order);
	assert_non_null(a->date);
	assert_non_null(b->date);
	assert_non_null(c->date);
	assert_int_equal(strncmp(a->date, "2019", 4), 0);
	assert_int_equal(strncmp(b->date, "2021-03", 7), 0);
	assert_int_equal(strncmp(c->date, "2025", 4), 0);
	/* nodes come out in axis order */
	assert_ptr_equal(&d.nodes[0], a);
	assert_ptr_equal(&d.nodes[2], c);
	hark_diagram_clear(&d);
	free(tc.buf);

	/* without a meeting date "next year" cannot be placed by date: it keeps
	 * its place in mention order after the dated events before it */
	p.meeting_date = NULL;
	assert_int_equal(build_text("In 2019 we started. In March 2021 we hired people. Next year we "
				    "open a second office.",
				    HARK_DIAGRAM_TIMELINE, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	c = find_node(&d, "second office");
	b = find_node(&d, "March 2021");
	assert_non_null(c);
	assert_null(c->date);
	assert_true(b->order < c->order);
	hark_diagram_clear(&d);
	free(tc.buf);

	/* one sentence, three dated clauses: three events, each with its own
	 * time inside the turn */
	assert_int_equal(build_text("We started in 2015, and in 2018 we moved to Lisbon; in March "
				    "2020 we closed the old site, and we kept the name.",
				    HARK_DIAGRAM_TIMELINE, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.n_nodes, 3);
	a = find_node(&d, "2015");
	b = find_node(&d, "Lisbon");
	c = find_node(&d, "old site");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_null(strstr(a->label, "Lisbon"));
	assert_int_equal(strncmp(b->date, "2018", 4), 0);
	assert_int_equal(strncmp(c->date, "2020-03", 7), 0);
	assert_true(a->order < b->order && b->order < c->order);
	assert_true(a->span.start_s < b->span.start_s && b->span.start_s < c->span.start_s);
	hark_diagram_clear(&d);
	free(tc.buf);
}

static void test_sequence_order(void **state)
{
	(void)state;
	struct text_case tc;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();

	assert_int_equal(build_text("The client sends a login request to the server. The server queries "
				    "the database for the user. The database returns the user record "
				    "to the server. Then the server replies to the client with a "
				    "session token.",
				    HARK_DIAGRAM_SEQUENCE, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.type, HARK_DIAGRAM_SEQUENCE);
	assert_int_equal(d.n_nodes, 3);
	const struct hark_diagram_node *cl = find_node(&d, "client"), *sv = find_node(&d, "server"),
				       *db = find_node(&d, "database");
	assert_non_null(cl);
	assert_non_null(sv);
	assert_non_null(db);
	assert_int_equal(d.n_edges, 4);
	const char *want[4][2] = { { cl->id, sv->id }, { sv->id, db->id }, { db->id, sv->id },
				   { sv->id, cl->id } };
	const char *verb[4] = { "sends", "queries", "returns", "replies" };
	for (size_t k = 0; k < 4; k++) {
		assert_string_equal(d.edges[k].from, want[k][0]);
		assert_string_equal(d.edges[k].to, want[k][1]);
		assert_non_null(d.edges[k].label);
		assert_int_equal(strncmp(d.edges[k].label, verb[k], strlen(verb[k])), 0);
		/* a short verb phrase */
		size_t words = 1;
		for (const char *q = d.edges[k].label; *q; q++)
			words += *q == ' ';
		assert_true(words <= 6);
		if (k > 0)
			assert_true(d.edges[k].seq > d.edges[k - 1].seq);
	}
	hark_diagram_clear(&d);
	free(tc.buf);

	/* a dialogue: participants from the speakers, one message per turn */
	assert_int_equal(build_text("Sara: Hi Mike, did you get my report? | Mike: Yes, I read it last "
				    "night. | Sara: Great, any comments? | Mike: Only on the budget part.",
				    HARK_DIAGRAM_SEQUENCE, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.type, HARK_DIAGRAM_SEQUENCE);
	assert_int_equal(d.n_nodes, 2);
	const struct hark_diagram_node *sa = find_node(&d, "Sara"), *mi = find_node(&d, "Mike");
	assert_non_null(sa);
	assert_non_null(mi);
	assert_int_equal(d.n_edges, 4);
	for (size_t k = 0; k < 4; k++) {
		assert_string_equal(d.edges[k].from, k % 2 ? mi->id : sa->id);
		assert_string_equal(d.edges[k].to, k % 2 ? sa->id : mi->id);
		assert_int_equal(d.edges[k].span.turn, (long)k);
	}
	hark_diagram_clear(&d);
	free(tc.buf);
}

static void test_hierarchy_parents(void **state)
{
	(void)state;
	struct text_case tc;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();

	assert_int_equal(build_text("Bob and Carol report to Alice. Alice reports to the CEO. The CEO "
				    "also manages Dan. The support team is part of operations.",
				    HARK_DIAGRAM_HIERARCHY, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.type, HARK_DIAGRAM_HIERARCHY);
	const struct hark_diagram_node *bob = find_node(&d, "Bob"), *carol = find_node(&d, "Carol"),
				       *alice = find_node(&d, "Alice"), *ceo = find_node(&d, "CEO"),
				       *dan = find_node(&d, "Dan"), *sup = find_node(&d, "support"),
				       *ops = find_node(&d, "operations");
	assert_non_null(bob);
	assert_non_null(carol);
	assert_non_null(alice);
	assert_non_null(ceo);
	assert_non_null(dan);
	assert_non_null(sup);
	assert_non_null(ops);
	assert_true(has_edge(&d, alice->id, bob->id));
	assert_true(has_edge(&d, alice->id, carol->id));
	assert_true(has_edge(&d, ceo->id, alice->id));
	assert_true(has_edge(&d, ceo->id, dan->id));
	assert_true(has_edge(&d, ops->id, sup->id));
	assert_false(has_edge(&d, bob->id, alice->id));
	assert_string_equal(bob->kind, "person");
	assert_string_equal(sup->kind, "unit");
	assert_int_equal(d.n_edges, 5);
	hark_diagram_clear(&d);
	free(tc.buf);

	/* a cycle in speech ("A reports to B", "B reports to A") never reaches the spec */
	assert_int_equal(build_text("Ann reports to Ben. Ben reports to Ann.", HARK_DIAGRAM_HIERARCHY,
				    &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	assert_int_equal(d.n_edges, 1);
	hark_diagram_clear(&d);
	free(tc.buf);
}

static void test_fallback_mindmap(void **state)
{
	(void)state;
	const char *text = "The weather was lovely and everyone enjoyed the lunch. The coffee "
			   "tasted great and the view over the harbour was beautiful.";
	struct text_case tc;
	struct hark_structure_scores sc;
	struct hark_structure_params p = hark_structure_default_params();

	make_case(text, &tc);
	assert_int_equal(hark_structure_detect(tc.turns, tc.n, &sc), 0);
	assert_int_equal(sc.best, HARK_DIAGRAM_MINDMAP);
	free(tc.buf);
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		struct hark_diagram d;
		assert_int_equal(build_text(text, t, &p, &d, &tc), 0);
		check_spec(&d, tc.turns, tc.n, &p);
		assert_int_equal(d.type, HARK_DIAGRAM_MINDMAP);
		assert_true(d.n_nodes >= 3);
		size_t roots = 0;
		for (size_t k = 0; k < d.n_nodes; k++)
			roots += strcmp(d.nodes[k].kind, "root") == 0;
		assert_int_equal(roots, 1);
		hark_diagram_clear(&d);
		free(tc.buf);
	}

	/* detection of nothing */
	memset(&sc, 0xff, sizeof(sc));
	assert_int_equal(hark_structure_detect(NULL, 0, &sc), 0);
	assert_int_equal(sc.best, HARK_DIAGRAM_MINDMAP);
	assert_true(sc.confidence == 0.0);
}

static void test_labels_shortened(void **state)
{
	(void)state;
	struct text_case tc;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();

	p.max_label = 20;
	assert_int_equal(build_text("First, carefully unpack every single component from the large "
				    "cardboard box. If any component looks damaged or scratched, "
				    "photograph it and contact the supplier. Then assemble the frame.",
				    HARK_DIAGRAM_FLOWCHART, &p, &d, &tc), 0);
	check_spec(&d, tc.turns, tc.n, &p);
	const struct hark_diagram_node *x = find_node(&d, "unpack");
	assert_non_null(x);
	/* cut at a word boundary with an ellipsis */
	size_t L = strlen(x->label);
	assert_true(L > 3 && strcmp(x->label + L - 3, "...") == 0);
	assert_true(x->label[L - 4] != ' ');
	/* steps read as sentences: capital first letter */
	assert_int_equal(strncmp(x->label, "Carefully unpack", 16), 0);
	hark_diagram_clear(&d);
	free(tc.buf);
}

static void test_empty_and_args(void **state)
{
	(void)state;
	struct hark_diagram d;
	struct hark_structure_params p = hark_structure_default_params();
	struct hark_chunk_turn t[2] = { { "A", "", 0, 1 }, { "B", "  ... !! ", 1, 2 } };
	char err[128];

	memset(&d, 0, sizeof(d));
	assert_int_equal(hark_structure_build(t, 0, 0, &p, &d, err, sizeof(err)), HARK_ERR_EMPTY);
	assert_int_equal(hark_structure_build(t, 2, 0, &p, &d, err, sizeof(err)), HARK_ERR_EMPTY);
	assert_int_equal(d.n_nodes, 0);
	assert_int_equal(hark_structure_build(NULL, 2, 0, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_structure_build(t, 2, 7, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_structure_build(t, 2, 0, &p, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p.max_nodes = 500;
	assert_int_equal(hark_structure_build(t, 2, 0, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_structure_default_params();
	p.meeting_date = "2024-13-45";
	assert_int_equal(hark_structure_build(t, 2, 0, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_structure_default_params();
	p.page = 0;
	assert_int_equal(hark_structure_build(t, 2, 0, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_structure_default_params();
	struct hark_chunk_turn one = { NULL, "Check the oil. Then drive.", -1, -1 };
	p.page = 5;
	assert_int_equal(hark_structure_build(&one, 1, 0, &p, &d, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(d.n_nodes, 0);
	assert_int_equal(hark_structure_detect(NULL, 1, NULL), HARK_ERR_INVALID_ARG);
	struct hark_structure_scores sc;
	assert_int_equal(hark_structure_detect(NULL, 3, &sc), HARK_ERR_INVALID_ARG);
}

static void test_odd_input(void **state)
{
	(void)state;
	struct hark_structure_params p = hark_structure_default_params();
	size_t big = 300000;
	char *bin = malloc(4096), *words = malloc(big + 1);
	uint32_t x = 12345;

	assert_non_null(bin);
	assert_non_null(words);
	for (size_t k = 0; k < 4095; k++) {
		x = x * 1103515245u + 12345u;
		bin[k] = (char)(1 + (x >> 16) % 255);
	}
	bin[4095] = '\0';
	/* no punctuation at all, one huge turn */
	static const char *const vocab[] = { "then", "if", "team", "sends", "server", "2019",
					     "reports", "to", "alpha", "beta", "otherwise" };
	size_t o = 0;
	for (size_t k = 0; o + 16 < big; k++) {
		const char *w = vocab[(k * 7 + k / 3) % 11];
		size_t L = strlen(w);
		memcpy(words + o, w, L);
		o += L;
		words[o++] = ' ';
	}
	words[o] = '\0';
	const char *texts[3] = { bin, words, "\xff\xfe\xc0\xaf" "abc \xe2\x82" };
	for (int i = 0; i < 3; i++) {
		struct hark_chunk_turn t = { "X", texts[i], -1, -1 };
		struct hark_structure_scores sc;
		assert_int_equal(hark_structure_detect(&t, 1, &sc), 0);
		for (int ty = 0; ty < HARK_DIAGRAM_N_TYPES; ty++) {
			struct hark_diagram d;
			char err[256] = "";
			memset(&d, 0, sizeof(d));
			int rc = hark_structure_build(&t, 1, ty, &p, &d, err, sizeof(err));
			if (rc)
				fail_msg("odd input %d type %d: %s", i, ty, err);
			check_spec(&d, &t, 1, &p);
			hark_diagram_clear(&d);
		}
	}
	free(bin);
	free(words);
}

/* ------------------------------------------------- shared meetings --- */

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");

	return s && *s ? s : "../shared";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads every shared QMSum meeting; returns the count (0 when absent). */
static size_t load_qmsum(struct hark_meeting_text **out)
{
	char dir[1024];
	char *names[64];
	size_t nn = 0, nm = 0;

	snprintf(dir, sizeof(dir), "%s/meetings/qmsum", shared_dir());
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && nn < 64) {
		size_t L = strlen(e->d_name);
		if (L > 5 && strcmp(e->d_name + L - 5, ".json") == 0)
			names[nn++] = xstrdup(e->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(names[0]), cmp_str);
	*out = calloc(nn ? nn : 1, sizeof(**out));
	assert_non_null(*out);
	for (size_t k = 0; k < nn; k++) {
		char path[1200], err[256];
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		if (hark_meeting_text_read(path, NULL, &(*out)[nm], err, sizeof(err)) == 0)
			nm++;
		free(names[k]);
	}
	return nm;
}

static struct hark_chunk_turn *meeting_turns(const struct hark_meeting_text *m, size_t nm,
					     size_t *n)
{
	size_t total = 0, o = 0;

	for (size_t k = 0; k < nm; k++)
		total += m[k].n_turns;
	struct hark_chunk_turn *t = calloc(total ? total : 1, sizeof(*t));
	assert_non_null(t);
	for (size_t k = 0; k < nm; k++)
		for (size_t j = 0; j < m[k].n_turns; j++) {
			t[o].speaker = m[k].turns[j].speaker;
			t[o].text = m[k].turns[j].text;
			t[o].start_s = -1;
			t[o].end_s = -1;
			o++;
		}
	*n = total;
	return t;
}

static void test_shared_meetings(void **state)
{
	(void)state;
	struct hark_meeting_text *m = NULL;
	size_t nm = load_qmsum(&m);
	struct hark_structure_params p = hark_structure_default_params();

	if (nm == 0) {
		free(m);
		skip();
	}
	for (size_t k = 0; k < nm; k++) {
		size_t n;
		struct hark_chunk_turn *t = meeting_turns(&m[k], 1, &n);
		struct hark_structure_scores sc;
		assert_int_equal(hark_structure_detect(t, n, &sc), 0);
		for (int ty = 0; ty < HARK_DIAGRAM_N_TYPES; ty++) {
			struct hark_diagram d;
			char err[256] = "";
			memset(&d, 0, sizeof(d));
			int rc = hark_structure_build(t, n, ty, &p, &d, err, sizeof(err));
			if (rc)
				fail_msg("%s as %s: %s", m[k].id, hark_diagram_type_name(ty), err);
			check_spec(&d, t, n, &p);
			hark_diagram_clear(&d);
		}
		free(t);
	}
	for (size_t k = 0; k < nm; k++)
		hark_meeting_text_clear(&m[k]);
	free(m);
}

static void test_pagination_long_input(void **state)
{
	(void)state;
	struct hark_meeting_text *m = NULL;
	size_t nm = load_qmsum(&m), n;
	struct hark_structure_params p = hark_structure_default_params();

	if (nm == 0) {
		free(m);
		skip();
	}
	struct hark_chunk_turn *t = meeting_turns(m, nm, &n);
	/* give the turns times, 5 s each, so spans can be checked */
	for (size_t k = 0; k < n; k++) {
		t[k].start_s = 5.0 * (double)k;
		t[k].end_s = t[k].start_s + 4.5;
	}
	int paged = 0;
	for (int ty = 0; ty < HARK_DIAGRAM_N_TYPES; ty++) {
		struct hark_diagram d;
		char err[256] = "";
		memset(&d, 0, sizeof(d));
		p.page = 1;
		assert_int_equal(hark_structure_build(t, n, ty, &p, &d, err, sizeof(err)), 0);
		check_spec(&d, t, n, &p);
		int pages = d.pages, built = d.type;
		print_message("%s: %d page(s), %zu nodes on page 1\n", hark_diagram_type_name(ty),
			      pages, d.n_nodes);
		hark_diagram_clear(&d);
		if (pages > 1)
			paged++;
		/* pages 2 and last, and one past the end */
		int probe[2] = { 2, pages };
		for (int q = 0; q < 2; q++) {
			if (probe[q] > pages || probe[q] < 2)
				continue;
			p.page = probe[q];
			assert_int_equal(hark_structure_build(t, n, ty, &p, &d, err, sizeof(err)), 0);
			check_spec(&d, t, n, &p);
			assert_int_equal(d.page, probe[q]);
			assert_int_equal(d.pages, pages);
			assert_int_equal(d.type, built);
			hark_diagram_clear(&d);
		}
		p.page = pages + 1;
		assert_int_equal(hark_structure_build(t, n, ty, &p, &d, err, sizeof(err)),
				 HARK_ERR_INVALID_ARG);
	}
	/* at least the flowchart and the timeline of hours of speech need pages */
	assert_true(paged >= 2);
	free(t);
	for (size_t k = 0; k < nm; k++)
		hark_meeting_text_clear(&m[k]);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detection_accuracy),
		cmocka_unit_test(test_every_type_validates),
		cmocka_unit_test(test_flowchart_decision),
		cmocka_unit_test(test_timeline_order),
		cmocka_unit_test(test_sequence_order),
		cmocka_unit_test(test_hierarchy_parents),
		cmocka_unit_test(test_fallback_mindmap),
		cmocka_unit_test(test_labels_shortened),
		cmocka_unit_test(test_empty_and_args),
		cmocka_unit_test(test_odd_input),
		cmocka_unit_test(test_shared_meetings),
		cmocka_unit_test(test_pagination_long_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
