/*
 * Meeting minutes data model (src/analyze/minutes.c): a fully populated
 * minutes value survives the JSON round trip field by field; unknown times,
 * turns, speakers, owners and dates are written as JSON null, never
 * omitted; every JSON output (full, sparse, zeroed, hostile text) validates
 * against share/schemas/minutes.json with the src/llm/schema.h validator
 * while broken documents do not; hark_minutes_from_json names the bad
 * member; the Markdown page has every section and item, shows [hh:mm:ss]
 * times or "turn N", and escapes Markdown specials in transcript text;
 * hark_minutes_item_push copies and caps.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analyze/minutes.h"
#include "schema_util.h"
#include "hark/hark.h"
#include "llm/schema.h"

/* ------------------------------------------------------------ helpers --- */

static char *xstrdup(const char *s)
{
	char *c = s ? strdup(s) : NULL;

	if (s)
		assert_non_null(c);
	return c;
}

static struct hark_llm_schema *load_schema(void)
{
	struct hark_llm_schema *s = su_schema_load("minutes.json");

	if (!s)
		fail_msg("share/schemas/minutes.json does not load");
	return s;
}

static void assert_valid(const json_t *j)
{
	struct hark_llm_schema *s = load_schema();
	char err[512] = "";
	int rc = hark_llm_schema_validate(s, j, err, sizeof(err));

	if (rc) {
		char *dump = json_dumps(j, JSON_COMPACT);

		fail_msg("minutes JSON does not validate: %s\n%.2000s", err, dump ? dump : "?");
	}
	hark_llm_schema_free(s);
}

static struct hark_minutes_ref ref(double s, double e, long turn, const char *spk,
				   const char *quote)
{
	struct hark_minutes_ref r = hark_minutes_ref_none();

	r.start_s = s;
	r.end_s = e;
	r.turn = turn;
	r.speaker = xstrdup(spk);
	r.quote = xstrdup(quote);
	return r;
}

static void push(struct hark_minutes_item **arr, size_t *n, const char *text, const char *owner,
		 const char *due, const char *due_iso, double conf, const char *source,
		 struct hark_minutes_ref r)
{
	struct hark_minutes_item it;

	memset(&it, 0, sizeof(it));
	it.text = (char *)text;
	it.owner = (char *)owner;
	it.due = (char *)due;
	it.due_iso = (char *)due_iso;
	it.confidence = conf;
	it.source = (char *)source;
	it.ref = r;
	assert_int_equal(hark_minutes_item_push(arr, n, &it), 0);
	hark_minutes_ref_clear(&r);
}

/*
 * A minutes value with every field used, including unknowns in some
 * entries. Only what the JSON carries is set: a point's or item's last_turn
 * stays -1, points carry no quote, topics no speaker or quote.
 */
static void build_full(struct hark_minutes *m)
{
	memset(m, 0, sizeof(*m));
	m->meeting = xstrdup("weekly-sync");
	m->date = xstrdup("2024-05-06");
	m->duration_s = 3723.25;
	m->method = xstrdup("llm");
	m->model = xstrdup("openai/gpt-4o-mini");
	m->summary = xstrdup("The team reviewed the budget. Launch moves to June.");
	m->n_points = 2;
	m->points = calloc(2, sizeof(*m->points));
	assert_non_null(m->points);
	m->points[0].text = xstrdup("The team reviewed the budget.");
	m->points[0].ref = ref(12.5, 15.75, 3, "Alice", NULL);
	m->points[1].text = xstrdup("Launch moves to June.");
	m->points[1].ref = ref(-1, -1, -1, NULL, NULL);

	m->n_topics = 2;
	m->topics = calloc(2, sizeof(*m->topics));
	assert_non_null(m->topics);
	m->topics[0].title = xstrdup("Budget review");
	m->topics[0].n_keywords = 3;
	m->topics[0].keywords = calloc(3, sizeof(char *));
	assert_non_null(m->topics[0].keywords);
	m->topics[0].keywords[0] = xstrdup("budget");
	m->topics[0].keywords[1] = xstrdup("marketing spend");
	m->topics[0].keywords[2] = xstrdup("Q3");
	m->topics[0].summary = xstrdup("Marketing has spent most of its budget.");
	m->topics[0].ref = hark_minutes_ref_none();
	m->topics[0].ref.start_s = 0;
	m->topics[0].ref.end_s = 1800.5;
	m->topics[0].ref.turn = 0;
	m->topics[0].ref.last_turn = 41;
	m->topics[1].title = xstrdup("Launch");
	m->topics[1].ref = hark_minutes_ref_none();
	m->topics[1].ref.turn = 42;
	m->topics[1].ref.last_turn = 80;

	push(&m->decisions, &m->n_decisions, "move the launch to June", NULL, NULL, NULL, 0.75,
	     "cue:decided", ref(100.25, 104, 7, "Carol", "We decided to move the launch to June."));
	push(&m->decisions, &m->n_decisions, "keep the vendor", NULL, NULL, NULL, 0.8, "llm",
	     ref(-1, -1, -1, NULL, NULL));
	push(&m->actions, &m->n_actions, "send the budget report", "Alice", "by Friday",
	     "2024-05-10", 0.85, "cue:first_person",
	     ref(20, 23.5, 2, "Alice", "I'll send the budget report by Friday."));
	push(&m->actions, &m->n_actions, "book a room", NULL, "next month", NULL, 0.5, NULL,
	     ref(-1, -1, 9, NULL, NULL));
	push(&m->questions, &m->n_questions, "which venue to pick", NULL, NULL, NULL, 0.65,
	     "cue:still_figure_out", ref(300, -1, 12, "Bob", "We still need to figure out the venue."));

	m->n_participants = 2;
	m->participants = calloc(2, sizeof(*m->participants));
	assert_non_null(m->participants);
	m->participants[0].name = xstrdup("Alice");
	m->participants[0].turns = 14;
	m->participants[0].words = 512;
	m->participants[0].talk_s = 622.125;
	m->participants[0].first_s = 0.5;
	m->participants[1].name = xstrdup("Speaker 2");
	m->participants[1].turns = 3;
	m->participants[1].words = 40;
	m->participants[1].talk_s = -1;
	m->participants[1].first_s = -1;
	m->turns = 81;
	m->chunks = 4;
}

static void assert_str_eq_opt(const char *a, const char *b)
{
	if (!a || !b) {
		if (a != b)
			fail_msg("'%s' vs '%s'", a ? a : "(null)", b ? b : "(null)");
		return;
	}
	assert_string_equal(a, b);
}

static void assert_ref_eq(const struct hark_minutes_ref *a, const struct hark_minutes_ref *b)
{
	assert_true(a->start_s == b->start_s);
	assert_true(a->end_s == b->end_s);
	assert_int_equal(a->turn, b->turn);
	assert_int_equal(a->last_turn, b->last_turn);
	assert_str_eq_opt(a->speaker, b->speaker);
	assert_str_eq_opt(a->quote, b->quote);
}

static void assert_items_eq(const struct hark_minutes_item *a, size_t na,
			    const struct hark_minutes_item *b, size_t nb)
{
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(a[i].text, b[i].text);
		assert_str_eq_opt(a[i].owner, b[i].owner);
		assert_str_eq_opt(a[i].due, b[i].due);
		assert_str_eq_opt(a[i].due_iso, b[i].due_iso);
		assert_true(a[i].confidence == b[i].confidence);
		assert_str_eq_opt(a[i].source, b[i].source);
		assert_ref_eq(&a[i].ref, &b[i].ref);
	}
}

static void assert_minutes_eq(const struct hark_minutes *a, const struct hark_minutes *b)
{
	assert_str_eq_opt(a->meeting, b->meeting);
	assert_str_eq_opt(a->date, b->date);
	assert_true(a->duration_s == b->duration_s);
	assert_str_eq_opt(a->method, b->method);
	assert_str_eq_opt(a->model, b->model);
	assert_str_eq_opt(a->summary, b->summary);
	assert_int_equal(a->n_points, b->n_points);
	for (size_t i = 0; i < a->n_points; i++) {
		assert_string_equal(a->points[i].text, b->points[i].text);
		assert_ref_eq(&a->points[i].ref, &b->points[i].ref);
	}
	assert_int_equal(a->n_topics, b->n_topics);
	for (size_t i = 0; i < a->n_topics; i++) {
		assert_string_equal(a->topics[i].title, b->topics[i].title);
		assert_int_equal(a->topics[i].n_keywords, b->topics[i].n_keywords);
		for (size_t k = 0; k < a->topics[i].n_keywords; k++)
			assert_string_equal(a->topics[i].keywords[k], b->topics[i].keywords[k]);
		assert_str_eq_opt(a->topics[i].summary, b->topics[i].summary);
		assert_ref_eq(&a->topics[i].ref, &b->topics[i].ref);
	}
	assert_items_eq(a->decisions, a->n_decisions, b->decisions, b->n_decisions);
	assert_items_eq(a->actions, a->n_actions, b->actions, b->n_actions);
	assert_items_eq(a->questions, a->n_questions, b->questions, b->n_questions);
	assert_int_equal(a->n_participants, b->n_participants);
	for (size_t i = 0; i < a->n_participants; i++) {
		assert_string_equal(a->participants[i].name, b->participants[i].name);
		assert_int_equal(a->participants[i].turns, b->participants[i].turns);
		assert_int_equal(a->participants[i].words, b->participants[i].words);
		assert_true(a->participants[i].talk_s == b->participants[i].talk_s);
		assert_true(a->participants[i].first_s == b->participants[i].first_s);
	}
	assert_int_equal(a->turns, b->turns);
	assert_int_equal(a->chunks, b->chunks);
}

/* -------------------------------------------------------------- tests --- */

static void test_round_trip(void **state)
{
	struct hark_minutes m, back;
	char err[256] = "";
	json_t *j, *j2;
	char *txt;

	(void)state;
	build_full(&m);
	j = hark_minutes_to_json(&m);
	assert_non_null(j);
	/* through text, as a reader of the file would get it */
	txt = json_dumps(j, JSON_INDENT(2));
	assert_non_null(txt);
	json_decref(j);
	j = json_loads(txt, 0, NULL);
	free(txt);
	assert_non_null(j);
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), 0);
	assert_minutes_eq(&m, &back);
	/* and writing it again gives the same document */
	j2 = hark_minutes_to_json(&back);
	assert_non_null(j2);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	hark_minutes_clear(&back);
	hark_minutes_clear(&m);
	/* clear leaves a zeroed value; clearing twice or NULL is harmless */
	assert_null(m.meeting);
	assert_int_equal(m.n_topics, 0);
	hark_minutes_clear(&m);
	hark_minutes_clear(NULL);
}

static void test_json_shape_and_nulls(void **state)
{
	struct hark_minutes m;
	json_t *j, *a, *o;

	(void)state;
	build_full(&m);
	j = hark_minutes_to_json(&m);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "meeting")), "weekly-sync");
	assert_true(json_number_value(json_object_get(j, "duration")) == 3723.25);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "stats"), "chunks")),
			 4);
	/* the second point has no time, turn or speaker: nulls, not omissions */
	o = json_array_get(json_object_get(j, "summary_points"), 1);
	assert_non_null(o);
	assert_true(json_is_null(json_object_get(o, "start")));
	assert_true(json_is_null(json_object_get(o, "end")));
	assert_true(json_is_null(json_object_get(o, "turn")));
	assert_true(json_is_null(json_object_get(o, "speaker")));
	/* action item names: task / due_date / evidence_quote */
	a = json_object_get(j, "action_items");
	o = json_array_get(a, 0);
	assert_string_equal(json_string_value(json_object_get(o, "task")), "send the budget report");
	assert_string_equal(json_string_value(json_object_get(o, "owner")), "Alice");
	assert_string_equal(json_string_value(json_object_get(o, "due_date")), "2024-05-10");
	assert_string_equal(json_string_value(json_object_get(o, "evidence_quote")),
			    "I'll send the budget report by Friday.");
	assert_int_equal(json_integer_value(json_object_get(o, "turn")), 2);
	o = json_array_get(a, 1);
	assert_true(json_is_null(json_object_get(o, "owner")));
	assert_string_equal(json_string_value(json_object_get(o, "due")), "next month");
	assert_true(json_is_null(json_object_get(o, "due_date")));
	assert_true(json_is_null(json_object_get(o, "source")));
	assert_true(json_is_null(json_object_get(o, "evidence_quote")));
	assert_true(json_is_null(json_object_get(o, "start")));
	assert_int_equal(json_integer_value(json_object_get(o, "turn")), 9);
	/* topic ranges */
	o = json_array_get(json_object_get(j, "topics"), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "first_turn")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "last_turn")), 41);
	assert_int_equal(json_array_size(json_object_get(o, "keywords")), 3);
	o = json_array_get(json_object_get(j, "topics"), 1);
	assert_true(json_is_null(json_object_get(o, "summary")));
	assert_true(json_is_null(json_object_get(o, "start")));
	assert_int_equal(json_array_size(json_object_get(o, "keywords")), 0);
	/* decisions have "text", no owner members */
	o = json_array_get(json_object_get(j, "decisions"), 0);
	assert_string_equal(json_string_value(json_object_get(o, "text")), "move the launch to June");
	assert_null(json_object_get(o, "owner"));
	/* unknown participant times */
	o = json_array_get(json_object_get(j, "participants"), 1);
	assert_true(json_is_null(json_object_get(o, "talk_time")));
	assert_true(json_is_null(json_object_get(o, "first_heard")));
	assert_valid(j);
	json_decref(j);
	hark_minutes_clear(&m);

	/* a zeroed value (nothing filled): every unknown is null, still valid */
	memset(&m, 0, sizeof(m));
	m.duration_s = -1;
	j = hark_minutes_to_json(&m);
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(j, "date")));
	assert_true(json_is_null(json_object_get(j, "model")));
	assert_true(json_is_null(json_object_get(j, "duration")));
	assert_string_equal(json_string_value(json_object_get(j, "summary")), "");
	assert_int_equal(json_array_size(json_object_get(j, "topics")), 0);
	assert_valid(j);
	json_decref(j);
}

static void test_schema_rejects_broken(void **state)
{
	struct hark_llm_schema *s = load_schema();
	struct hark_minutes m;
	char err[256];
	json_t *j, *o;

	(void)state;
	build_full(&m);
	j = hark_minutes_to_json(&m);
	assert_non_null(j);
	hark_minutes_clear(&m);

	/* confidence out of range */
	o = json_array_get(json_object_get(j, "decisions"), 0);
	json_object_set_new(o, "confidence", json_real(1.5));
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_set_new(o, "confidence", json_real(0.5));
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), 0);
	/* an omitted unknown */
	json_object_del(o, "speaker");
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_set_new(o, "speaker", json_null());
	/* a negative time */
	json_object_set_new(o, "start", json_real(-3));
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_set_new(o, "start", json_null());
	/* an extra member */
	json_object_set_new(j, "extra", json_true());
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_del(j, "extra");
	/* a turn that is not an integer */
	o = json_array_get(json_object_get(j, "topics"), 0);
	json_object_set_new(o, "first_turn", json_string("0"));
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_set_new(o, "first_turn", json_integer(0));
	assert_int_equal(hark_llm_schema_validate(s, j, err, sizeof(err)), 0);
	json_decref(j);
	hark_llm_schema_free(s);
}

static void test_hostile_values(void **state)
{
	struct hark_minutes m, back;
	char err[256] = "";
	json_t *j;

	(void)state;
	build_full(&m);
	/* out-of-range / non-finite numbers and invalid UTF-8 still give valid JSON */
	m.actions[0].confidence = 7.0;
	m.decisions[0].confidence = NAN;
	m.duration_s = INFINITY;
	m.points[0].ref.start_s = -0.5;
	free(m.summary);
	m.summary = xstrdup("bad \xff\xfe bytes");
	j = hark_minutes_to_json(&m);
	assert_non_null(j);
	assert_true(json_number_value(json_object_get(json_array_get(json_object_get(j, "action_items"), 0),
						      "confidence")) == 1.0);
	assert_true(json_number_value(json_object_get(json_array_get(json_object_get(j, "decisions"), 0),
						      "confidence")) == 0.0);
	assert_true(json_is_null(json_object_get(j, "duration")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "summary")), "bytes"));
	assert_valid(j);
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), 0);
	assert_true(back.duration_s < 0);
	assert_true(back.points[0].ref.start_s < 0);
	hark_minutes_clear(&back);
	json_decref(j);
	hark_minutes_clear(&m);
}

static void test_from_json_errors(void **state)
{
	struct hark_minutes m, back;
	char err[256];
	json_t *j, *o;

	(void)state;
	build_full(&m);
	j = hark_minutes_to_json(&m);
	hark_minutes_clear(&m);
	assert_non_null(j);

	/* not an object */
	{
		json_t *arr = json_array();

		assert_int_equal(hark_minutes_from_json(arr, &back, err, sizeof(err)),
				 HARK_ERR_FORMAT);
		json_decref(arr);
	}
	/* a missing member is named */
	json_object_del(j, "summary");
	err[0] = '\0';
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "summary"));
	assert_null(back.meeting); /* left cleared */
	json_object_set_new(j, "summary", json_string("x"));
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), 0);
	hark_minutes_clear(&back);

	/* a wrong type deep inside names the entry */
	o = json_array_get(json_object_get(j, "action_items"), 1);
	json_object_set_new(o, "owner", json_integer(3));
	err[0] = '\0';
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "action_items[1]"));
	assert_non_null(strstr(err, "owner"));
	json_object_set_new(o, "owner", json_null());

	/* keywords must be strings */
	o = json_array_get(json_object_get(j, "topics"), 0);
	json_array_append_new(json_object_get(o, "keywords"), json_integer(1));
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "keywords"));
	json_array_remove(json_object_get(o, "keywords"), 3);

	/* a negative turn is not an index */
	json_object_set_new(o, "last_turn", json_integer(-4));
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	json_object_set_new(o, "last_turn", json_integer(41));

	/* stats must be an object */
	json_object_set_new(j, "stats", json_integer(2));
	assert_int_equal(hark_minutes_from_json(j, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "stats"));
	json_decref(j);
	assert_int_equal(hark_minutes_from_json(NULL, &back, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_int_equal(hark_minutes_from_json(NULL, NULL, err, sizeof(err)), HARK_ERR_INVALID_ARG);
}

/* Count of non-overlapping occurrences of needle in hay. */
static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + strlen(needle), needle))
		n++;
	return n;
}

static void test_markdown(void **state)
{
	struct hark_minutes m;
	char *md;

	(void)state;
	build_full(&m);
	/* Markdown specials in transcript text */
	free(m.decisions[1].text);
	m.decisions[1].text = xstrdup("use *bold* _x_ [link](y) a|b `code` <b> #1 ~z~ \\ & more\nline");
	free(m.actions[1].text);
	m.actions[1].text = xstrdup("split | the cell");
	md = hark_minutes_to_markdown(&m);
	assert_non_null(md);

	/* title and every section */
	assert_non_null(strstr(md, "# Minutes: weekly-sync"));
	assert_non_null(strstr(md, "2024-05-06"));
	assert_non_null(strstr(md, "01:02:03")); /* duration 3723.25 s */
	assert_non_null(strstr(md, "openai/gpt-4o-mini"));
	const char *sections[] = {"## Summary", "## Topics", "## Decisions", "## Action items",
				  "## Open questions", "## Participants"};
	const char *prev = md;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const char *at = strstr(md, sections[i]);

		if (!at)
			fail_msg("section %s missing:\n%s", sections[i], md);
		assert_true(at >= prev); /* in the documented order */
		prev = at;
	}
	/* every item and topic appears */
	assert_non_null(strstr(md, "The team reviewed the budget."));
	assert_non_null(strstr(md, "Budget review"));
	assert_non_null(strstr(md, "marketing spend"));
	assert_non_null(strstr(md, "Marketing has spent most of its budget."));
	assert_non_null(strstr(md, "move the launch to June"));
	assert_non_null(strstr(md, "send the budget report"));
	assert_non_null(strstr(md, "by Friday"));
	assert_non_null(strstr(md, "2024-05-10"));
	assert_non_null(strstr(md, "which venue to pick"));
	assert_non_null(strstr(md, "Speaker 2"));
	assert_non_null(strstr(md, "I'll send the budget report by Friday."));
	/* times: known ones as [hh:mm:ss], unknown ones as turn N; topic ranges */
	assert_non_null(strstr(md, "[00:00:12]"));        /* point at 12.5 s */
	assert_non_null(strstr(md, "[00:01:40]"));        /* decision at 100.25 s */
	assert_non_null(strstr(md, "[00:00:00-00:30:00]")); /* topic 0 .. 1800.5 s */
	assert_non_null(strstr(md, "turns 42-80"));        /* topic without times */
	assert_non_null(strstr(md, "turn 9"));             /* action without time */
	/* escaping */
	assert_non_null(strstr(md, "use \\*bold\\* \\_x\\_ \\[link\\](y) a\\|b \\`code\\` \\<b\\> \\#1 "
				   "\\~z\\~ \\\\ \\& more line"));
	assert_null(strstr(md, "*bold*"));
	assert_non_null(strstr(md, "split \\| the cell"));
	/* the action table: header, rule, one row per action */
	assert_non_null(strstr(md, "| Task | Owner | Due | When | Evidence |"));
	{
		const char *tab = strstr(md, "## Action items");
		const char *end = strstr(md, "## Open questions");
		size_t rows = 0;

		for (const char *p = tab; p && p < end; p = strchr(p + 1, '\n'))
			if (p[1] == '|')
				rows++;
		assert_int_equal(rows, 2 + m.n_actions);
		/* each row has exactly 6 unescaped pipes */
		for (const char *p = strstr(tab, "\n|"); p && p < end; p = strstr(p + 1, "\n|")) {
			size_t pipes = 0;

			for (const char *q = p + 1; *q && *q != '\n'; q++)
				pipes += *q == '|' && q[-1] != '\\';
			assert_int_equal(pipes, 6);
		}
	}
	assert_int_equal(count_of(md, "## "), 6);
	free(md);
	hark_minutes_clear(&m);

	/* text that would start a block is escaped at the start of its line */
	build_full(&m);
	free(m.summary);
	m.summary = xstrdup("- not a list");
	free(m.topics[0].summary);
	m.topics[0].summary = xstrdup("1. not a list either");
	md = hark_minutes_to_markdown(&m);
	assert_non_null(md);
	assert_non_null(strstr(md, "\n\\- not a list\n"));
	assert_non_null(strstr(md, "1\\. not a list either"));
	free(md);
	hark_minutes_clear(&m);

	/* empty minutes: still every section, "None." in the empty ones */
	memset(&m, 0, sizeof(m));
	m.duration_s = -1;
	md = hark_minutes_to_markdown(&m);
	assert_non_null(md);
	assert_int_equal(count_of(md, "## "), 6);
	assert_true(count_of(md, "None") >= 5);
	free(md);
	assert_null(hark_minutes_to_markdown(NULL));
}

static void test_item_push(void **state)
{
	struct hark_minutes_item *arr = NULL, it;
	size_t n = 0;
	char text[] = "draft the plan";
	char owner[] = "Bob";

	(void)state;
	memset(&it, 0, sizeof(it));
	it.text = text;
	it.owner = owner;
	it.confidence = 0.7;
	it.ref = hark_minutes_ref_none();
	it.ref.turn = 5;
	assert_int_equal(hark_minutes_item_push(&arr, &n, &it), 0);
	assert_int_equal(n, 1);
	/* copies, the source is untouched */
	assert_true(arr[0].text != text);
	assert_string_equal(arr[0].text, "draft the plan");
	assert_string_equal(arr[0].owner, "Bob");
	assert_null(arr[0].due);
	assert_int_equal(arr[0].ref.turn, 5);
	assert_true(arr[0].ref.start_s < 0);
	text[0] = 'X';
	assert_string_equal(arr[0].text, "draft the plan");
	assert_string_equal(it.owner, "Bob");

	/* growth keeps earlier entries intact */
	it.owner = NULL;
	while (n < 1000) {
		it.ref.turn = (long)n;
		assert_int_equal(hark_minutes_item_push(&arr, &n, &it), 0);
	}
	assert_string_equal(arr[0].text, "draft the plan");
	assert_string_equal(arr[0].owner, "Bob");
	for (size_t i = 1; i < n; i++) {
		assert_string_equal(arr[i].text, "Xraft the plan");
		assert_int_equal(arr[i].ref.turn, (long)i);
		assert_null(arr[i].owner);
	}
	assert_int_equal(hark_minutes_item_push(NULL, &n, &it), HARK_ERR_INVALID_ARG);
	for (size_t i = 0; i < n; i++)
		hark_minutes_item_clear(&arr[i]);
	free(arr);

	/* the cap: an array already holding 100,000 items takes no more (the
	 * check happens before the array is touched, so a short one stands in) */
	{
		struct hark_minutes_item *one = NULL;
		size_t k = 0;

		assert_int_equal(hark_minutes_item_push(&one, &k, &it), 0);
		k = 100000;
		assert_int_equal(hark_minutes_item_push(&one, &k, &it), HARK_ERR_LIMIT);
		assert_int_equal(k, 100000);
		hark_minutes_item_clear(&one[0]);
		free(one);
	}

	/* ref helpers */
	struct hark_minutes_ref r = hark_minutes_ref_none();
	assert_true(r.start_s < 0 && r.end_s < 0);
	assert_int_equal(r.turn, -1);
	assert_int_equal(r.last_turn, -1);
	assert_null(r.speaker);
	assert_null(r.quote);
	hark_minutes_ref_clear(NULL);
	hark_minutes_item_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_json_shape_and_nulls),
		cmocka_unit_test(test_schema_rejects_broken),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_from_json_errors),
		cmocka_unit_test(test_markdown),
		cmocka_unit_test(test_item_push),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
