/*
 * Meeting minutes data model: freeing, item appending, and the two
 * renderings of struct hark_minutes, the JSON document (read back by
 * hark_minutes_from_json; schema share/schemas/minutes.json, documented in
 * docs/MINUTES.md) and the Markdown page with escaped transcript text and
 * [hh:mm:ss] time links (or "turn N" when no time is known). See minutes.h.
 */
#include "analyze/minutes.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

/* Most items hark_minutes_item_push keeps in one array. */
#define MINUTES_MAX_ITEMS 100000
/* Cap on any array read back by hark_minutes_from_json. */
#define MINUTES_MAX_ARRAY 1000000
/* Cap on the Markdown page (bytes). */
#define MINUTES_MAX_MARKDOWN ((size_t)256 << 20)

/* ---------------------------------------------------------------- clear --- */

struct hark_minutes_ref hark_minutes_ref_none(void)
{
	struct hark_minutes_ref r;

	memset(&r, 0, sizeof(r));
	r.start_s = -1.0;
	r.end_s = -1.0;
	r.turn = -1;
	r.last_turn = -1;
	return r;
}

void hark_minutes_ref_clear(struct hark_minutes_ref *r)
{
	if (!r)
		return;
	free(r->speaker);
	free(r->quote);
	memset(r, 0, sizeof(*r));
}

void hark_minutes_item_clear(struct hark_minutes_item *it)
{
	if (!it)
		return;
	free(it->text);
	free(it->owner);
	free(it->due);
	free(it->due_iso);
	free(it->source);
	hark_minutes_ref_clear(&it->ref);
	memset(it, 0, sizeof(*it));
}

static void topic_clear(struct hark_minutes_topic *t)
{
	free(t->title);
	for (size_t i = 0; i < t->n_keywords; i++)
		free(t->keywords[i]);
	free(t->keywords);
	free(t->summary);
	hark_minutes_ref_clear(&t->ref);
	memset(t, 0, sizeof(*t));
}

static void items_free(struct hark_minutes_item *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++)
		hark_minutes_item_clear(&a[i]);
	free(a);
}

void hark_minutes_clear(struct hark_minutes *m)
{
	if (!m)
		return;
	free(m->meeting);
	free(m->date);
	free(m->method);
	free(m->model);
	free(m->summary);
	for (size_t i = 0; m->points && i < m->n_points; i++) {
		free(m->points[i].text);
		hark_minutes_ref_clear(&m->points[i].ref);
	}
	free(m->points);
	for (size_t i = 0; m->topics && i < m->n_topics; i++)
		topic_clear(&m->topics[i]);
	free(m->topics);
	items_free(m->decisions, m->n_decisions);
	items_free(m->actions, m->n_actions);
	items_free(m->questions, m->n_questions);
	for (size_t i = 0; m->participants && i < m->n_participants; i++)
		free(m->participants[i].name);
	free(m->participants);
	memset(m, 0, sizeof(*m));
}

/* strdup that keeps NULL; *ok is cleared when a copy fails. */
static char *dup_opt(const char *s, int *ok)
{
	char *c;

	if (!s)
		return NULL;
	c = strdup(s);
	if (!c)
		*ok = 0;
	return c;
}

int hark_minutes_item_push(struct hark_minutes_item **arr, size_t *n,
			   const struct hark_minutes_item *it)
{
	struct hark_minutes_item c;
	int ok = 1;

	if (!arr || !n || !it)
		return HARK_ERR_INVALID_ARG;
	if (*n >= MINUTES_MAX_ITEMS)
		return HARK_ERR_LIMIT;
	/* the array may come from anywhere (hark_minutes_from_json, a caller's
	 * exact-size malloc), so its capacity is taken to be *n: grow by one */
	{
		struct hark_minutes_item *na = realloc(*arr, (*n + 1) * sizeof(*na));

		if (!na)
			return HARK_ERR_NOMEM;
		*arr = na;
	}
	memset(&c, 0, sizeof(c));
	c.text = dup_opt(it->text ? it->text : "", &ok);
	c.owner = dup_opt(it->owner, &ok);
	c.due = dup_opt(it->due, &ok);
	c.due_iso = dup_opt(it->due_iso, &ok);
	c.source = dup_opt(it->source, &ok);
	c.confidence = it->confidence;
	c.ref = it->ref;
	c.ref.speaker = dup_opt(it->ref.speaker, &ok);
	c.ref.quote = dup_opt(it->ref.quote, &ok);
	if (!ok) {
		hark_minutes_item_clear(&c);
		return HARK_ERR_NOMEM;
	}
	(*arr)[(*n)++] = c;
	return HARK_OK;
}

/* ----------------------------------------------------------------- JSON --- */

/* Sets key to v (stolen); *ok cleared when v is NULL or the set fails. */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		*ok = 0;
}

/* A JSON string for s (NULL gives ""); text that is not valid UTF-8 is
 * sanitised (bad bytes become U+FFFD) rather than failing. */
static json_t *j_str(const char *s)
{
	json_t *v;
	char *clean = NULL;

	if (!s)
		s = "";
	v = json_string(s);
	if (v || hark_textnorm_utf8_valid(s, strlen(s)))
		return v;
	if (hark_textnorm_utf8_sanitize(s, strlen(s), 0, &clean, NULL) != 0)
		return NULL;
	v = json_string(clean);
	free(clean);
	return v;
}

static json_t *j_str_or_null(const char *s)
{
	return s ? j_str(s) : json_null();
}

static json_t *j_time(double t)
{
	return (isfinite(t) && t >= 0) ? json_real(t) : json_null();
}

static json_t *j_turn(long t)
{
	return t >= 0 ? json_integer((json_int_t)t) : json_null();
}

static json_t *j_conf(double c)
{
	if (!isfinite(c) || c < 0)
		c = 0;
	if (c > 1)
		c = 1;
	return json_real(c);
}

static void put_ref(json_t *o, const struct hark_minutes_ref *r, int *ok)
{
	put(o, "start", j_time(r->start_s), ok);
	put(o, "end", j_time(r->end_s), ok);
	put(o, "turn", j_turn(r->turn), ok);
	put(o, "speaker", j_str_or_null(r->speaker), ok);
}

static json_t *item_json(const struct hark_minutes_item *it, int action)
{
	json_t *o = json_object();
	int ok = o != NULL;

	if (!o)
		return NULL;
	put(o, action ? "task" : "text", j_str(it->text), &ok);
	if (action) {
		put(o, "owner", j_str_or_null(it->owner), &ok);
		put(o, "due", j_str_or_null(it->due), &ok);
		put(o, "due_date", j_str_or_null(it->due_iso), &ok);
	}
	put(o, "confidence", j_conf(it->confidence), &ok);
	put(o, "source", j_str_or_null(it->source), &ok);
	put_ref(o, &it->ref, &ok);
	put(o, "evidence_quote", j_str_or_null(it->ref.quote), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *items_json(const struct hark_minutes_item *a, size_t n, int action)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(arr, item_json(&a[i], action)) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *point_json(const struct hark_minutes_point *p)
{
	json_t *o = json_object();
	int ok = o != NULL;

	if (!o)
		return NULL;
	put(o, "text", j_str(p->text), &ok);
	put_ref(o, &p->ref, &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *topic_json(const struct hark_minutes_topic *t)
{
	json_t *o = json_object(), *kw = json_array();
	int ok = o && kw;

	if (!ok) {
		json_decref(o);
		json_decref(kw);
		return NULL;
	}
	for (size_t i = 0; t->keywords && i < t->n_keywords; i++)
		if (json_array_append_new(kw, j_str(t->keywords[i])) != 0)
			ok = 0;
	put(o, "title", j_str(t->title), &ok);
	put(o, "keywords", kw, &ok);
	put(o, "summary", j_str_or_null(t->summary), &ok);
	put(o, "start", j_time(t->ref.start_s), &ok);
	put(o, "end", j_time(t->ref.end_s), &ok);
	put(o, "first_turn", j_turn(t->ref.turn), &ok);
	put(o, "last_turn", j_turn(t->ref.last_turn), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *participant_json(const struct hark_minutes_participant *p)
{
	json_t *o = json_object();
	int ok = o != NULL;

	if (!o)
		return NULL;
	put(o, "name", j_str(p->name), &ok);
	put(o, "turns", json_integer((json_int_t)p->turns), &ok);
	put(o, "words", json_integer((json_int_t)p->words), &ok);
	put(o, "talk_time", j_time(p->talk_s), &ok);
	put(o, "first_heard", j_time(p->first_s), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *hark_minutes_to_json(const struct hark_minutes *m)
{
	json_t *o, *a, *st;
	int ok = 1;

	if (!m)
		return NULL;
	o = json_object();
	if (!o)
		return NULL;
	put(o, "meeting", j_str(m->meeting), &ok);
	put(o, "date", j_str_or_null(m->date), &ok);
	put(o, "duration", j_time(m->duration_s), &ok);
	put(o, "method", j_str(m->method), &ok);
	put(o, "model", j_str_or_null(m->model), &ok);
	put(o, "summary", j_str(m->summary), &ok);

	a = json_array();
	for (size_t i = 0; a && m->points && i < m->n_points; i++)
		if (json_array_append_new(a, point_json(&m->points[i])) != 0)
			ok = 0;
	put(o, "summary_points", a, &ok);

	a = json_array();
	for (size_t i = 0; a && m->topics && i < m->n_topics; i++)
		if (json_array_append_new(a, topic_json(&m->topics[i])) != 0)
			ok = 0;
	put(o, "topics", a, &ok);

	put(o, "decisions", items_json(m->decisions, m->n_decisions, 0), &ok);
	put(o, "action_items", items_json(m->actions, m->n_actions, 1), &ok);
	put(o, "open_questions", items_json(m->questions, m->n_questions, 0), &ok);

	a = json_array();
	for (size_t i = 0; a && m->participants && i < m->n_participants; i++)
		if (json_array_append_new(a, participant_json(&m->participants[i])) != 0)
			ok = 0;
	put(o, "participants", a, &ok);

	st = json_object();
	if (st) {
		put(st, "turns", json_integer((json_int_t)m->turns), &ok);
		put(st, "chunks", json_integer((json_int_t)m->chunks), &ok);
	}
	put(o, "stats", st, &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ------------------------------------------------------------ from JSON --- */

struct rd {
	char *err;
	size_t errlen;
	char path[96]; /* the object being read, e.g. "topics[3]" */
	int rc;        /* first error */
};

static void rd_fail(struct rd *r, int rc, const char *key, const char *what)
{
	if (r->rc)
		return;
	r->rc = rc;
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(r->err, r->errlen, "out of memory");
	else
		hark_errbuf_set(r->err, r->errlen, "minutes JSON: %s%s%s: %s", r->path,
				r->path[0] ? "." : "", key, what);
}

static const json_t *rd_member(struct rd *r, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		rd_fail(r, HARK_ERR_FORMAT, key, "missing");
	return v;
}

/* A string member; nullable: JSON null gives NULL. */
static char *rd_str(struct rd *r, const json_t *o, const char *key, int nullable)
{
	const json_t *v = rd_member(r, o, key);
	char *s;

	if (!v)
		return NULL;
	if (json_is_null(v) && nullable)
		return NULL;
	if (!json_is_string(v)) {
		rd_fail(r, HARK_ERR_FORMAT, key, nullable ? "expected string or null" : "expected string");
		return NULL;
	}
	s = strdup(json_string_value(v));
	if (!s)
		rd_fail(r, HARK_ERR_NOMEM, key, "");
	return s;
}

/* A time (number >= 0) or null (-1). */
static double rd_time(struct rd *r, const json_t *o, const char *key)
{
	const json_t *v = rd_member(r, o, key);

	if (!v || json_is_null(v))
		return -1.0;
	if (!json_is_number(v) || json_number_value(v) < 0) {
		rd_fail(r, HARK_ERR_FORMAT, key, "expected a number >= 0 or null");
		return -1.0;
	}
	return json_number_value(v);
}

static long rd_turn(struct rd *r, const json_t *o, const char *key)
{
	const json_t *v = rd_member(r, o, key);

	if (!v || json_is_null(v))
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)0x7fffffff) {
		rd_fail(r, HARK_ERR_FORMAT, key, "expected a turn index or null");
		return -1;
	}
	return (long)json_integer_value(v);
}

static size_t rd_count(struct rd *r, const json_t *o, const char *key)
{
	const json_t *v = rd_member(r, o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		rd_fail(r, HARK_ERR_FORMAT, key, "expected an integer >= 0");
		return 0;
	}
	return (size_t)json_integer_value(v);
}

static double rd_conf(struct rd *r, const json_t *o, const char *key)
{
	const json_t *v = rd_member(r, o, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
		rd_fail(r, HARK_ERR_FORMAT, key, "expected a number in [0, 1]");
		return 0;
	}
	return json_number_value(v);
}

/* The array member key as (array, size); allocates *out of n elements of
 * size elem (zeroed). Returns the array, or NULL on error / empty. */
static const json_t *rd_array(struct rd *r, const json_t *o, const char *key, void **out,
			      size_t elem, size_t *n)
{
	const json_t *v = rd_member(r, o, key);

	*out = NULL;
	*n = 0;
	if (!v)
		return NULL;
	if (!json_is_array(v)) {
		rd_fail(r, HARK_ERR_FORMAT, key, "expected an array");
		return NULL;
	}
	if (json_array_size(v) > MINUTES_MAX_ARRAY) {
		rd_fail(r, HARK_ERR_FORMAT, key, "too many entries");
		return NULL;
	}
	if (json_array_size(v) == 0)
		return NULL;
	*out = calloc(json_array_size(v), elem);
	if (!*out) {
		rd_fail(r, HARK_ERR_NOMEM, key, "");
		return NULL;
	}
	*n = json_array_size(v);
	return v;
}

/* Checks that element i of array key is an object and sets r->path. */
static const json_t *rd_elem(struct rd *r, const json_t *arr, const char *key, size_t i)
{
	const json_t *e = json_array_get(arr, i);

	snprintf(r->path, sizeof(r->path), "%s[%zu]", key, i);
	if (!json_is_object(e)) {
		r->path[0] = '\0';
		rd_fail(r, HARK_ERR_FORMAT, key, "expected an array of objects");
		return NULL;
	}
	return e;
}

static void rd_ref(struct rd *r, const json_t *o, struct hark_minutes_ref *ref)
{
	ref->start_s = rd_time(r, o, "start");
	ref->end_s = rd_time(r, o, "end");
	ref->turn = rd_turn(r, o, "turn");
	ref->last_turn = -1;
	ref->speaker = rd_str(r, o, "speaker", 1);
}

static void rd_items(struct rd *r, const json_t *o, const char *key, int action,
		     struct hark_minutes_item **out, size_t *n)
{
	void *p;
	const json_t *arr = rd_array(r, o, key, &p, sizeof(**out), n);

	*out = p;
	for (size_t i = 0; arr && i < *n && !r->rc; i++) {
		struct hark_minutes_item *it = &(*out)[i];
		const json_t *e = rd_elem(r, arr, key, i);

		it->ref = hark_minutes_ref_none();
		if (!e)
			break;
		it->text = rd_str(r, e, action ? "task" : "text", 0);
		if (action) {
			it->owner = rd_str(r, e, "owner", 1);
			it->due = rd_str(r, e, "due", 1);
			it->due_iso = rd_str(r, e, "due_date", 1);
		}
		it->confidence = rd_conf(r, e, "confidence");
		it->source = rd_str(r, e, "source", 1);
		rd_ref(r, e, &it->ref);
		it->ref.quote = rd_str(r, e, "evidence_quote", 1);
	}
	r->path[0] = '\0';
}

int hark_minutes_from_json(const json_t *j, struct hark_minutes *out, char *err, size_t errlen)
{
	struct rd r;
	const json_t *arr, *st;
	void *p = NULL;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.errlen = errlen;
	if (!json_is_object(j)) {
		hark_errbuf_set(err, errlen, "minutes JSON: expected an object");
		return HARK_ERR_FORMAT;
	}
	out->meeting = rd_str(&r, j, "meeting", 0);
	out->date = rd_str(&r, j, "date", 1);
	out->duration_s = rd_time(&r, j, "duration");
	out->method = rd_str(&r, j, "method", 0);
	out->model = rd_str(&r, j, "model", 1);
	out->summary = rd_str(&r, j, "summary", 0);

	p = NULL;
	arr = r.rc ? NULL : rd_array(&r, j, "summary_points", &p, sizeof(*out->points), &out->n_points);
	out->points = p;
	for (size_t i = 0; arr && i < out->n_points && !r.rc; i++) {
		const json_t *e = rd_elem(&r, arr, "summary_points", i);

		out->points[i].ref = hark_minutes_ref_none();
		if (!e)
			break;
		out->points[i].text = rd_str(&r, e, "text", 0);
		rd_ref(&r, e, &out->points[i].ref);
	}
	r.path[0] = '\0';

	p = NULL;
	arr = r.rc ? NULL : rd_array(&r, j, "topics", &p, sizeof(*out->topics), &out->n_topics);
	out->topics = p;
	for (size_t i = 0; arr && i < out->n_topics && !r.rc; i++) {
		struct hark_minutes_topic *t = &out->topics[i];
		const json_t *e = rd_elem(&r, arr, "topics", i), *kw;

		t->ref = hark_minutes_ref_none();
		if (!e)
			break;
		t->title = rd_str(&r, e, "title", 0);
		kw = rd_member(&r, e, "keywords");
		if (kw && !json_is_array(kw)) {
			rd_fail(&r, HARK_ERR_FORMAT, "keywords", "expected an array of strings");
		} else if (kw && json_array_size(kw) > 0) {
			if (json_array_size(kw) > MINUTES_MAX_ARRAY) {
				rd_fail(&r, HARK_ERR_FORMAT, "keywords", "too many entries");
			} else {
				t->keywords = calloc(json_array_size(kw), sizeof(char *));
				if (!t->keywords)
					rd_fail(&r, HARK_ERR_NOMEM, "keywords", "");
			}
			for (size_t k = 0; t->keywords && k < json_array_size(kw) && !r.rc; k++) {
				const json_t *s = json_array_get(kw, k);

				if (!json_is_string(s)) {
					rd_fail(&r, HARK_ERR_FORMAT, "keywords",
						"expected an array of strings");
					break;
				}
				t->keywords[k] = strdup(json_string_value(s));
				if (!t->keywords[k]) {
					rd_fail(&r, HARK_ERR_NOMEM, "keywords", "");
					break;
				}
				t->n_keywords = k + 1;
			}
		}
		t->summary = rd_str(&r, e, "summary", 1);
		t->ref.start_s = rd_time(&r, e, "start");
		t->ref.end_s = rd_time(&r, e, "end");
		t->ref.turn = rd_turn(&r, e, "first_turn");
		t->ref.last_turn = rd_turn(&r, e, "last_turn");
	}
	r.path[0] = '\0';

	if (!r.rc)
		rd_items(&r, j, "decisions", 0, &out->decisions, &out->n_decisions);
	if (!r.rc)
		rd_items(&r, j, "action_items", 1, &out->actions, &out->n_actions);
	if (!r.rc)
		rd_items(&r, j, "open_questions", 0, &out->questions, &out->n_questions);

	p = NULL;
	arr = r.rc ? NULL
		   : rd_array(&r, j, "participants", &p, sizeof(*out->participants),
			      &out->n_participants);
	out->participants = p;
	for (size_t i = 0; arr && i < out->n_participants && !r.rc; i++) {
		struct hark_minutes_participant *pp = &out->participants[i];
		const json_t *e = rd_elem(&r, arr, "participants", i);

		if (!e)
			break;
		pp->name = rd_str(&r, e, "name", 0);
		pp->turns = rd_count(&r, e, "turns");
		pp->words = rd_count(&r, e, "words");
		pp->talk_s = rd_time(&r, e, "talk_time");
		pp->first_s = rd_time(&r, e, "first_heard");
	}
	r.path[0] = '\0';

	st = r.rc ? NULL : rd_member(&r, j, "stats");
	if (st && !json_is_object(st)) {
		rd_fail(&r, HARK_ERR_FORMAT, "stats", "expected an object");
	} else if (st) {
		snprintf(r.path, sizeof(r.path), "stats");
		out->turns = rd_count(&r, st, "turns");
		out->chunks = rd_count(&r, st, "chunks");
	}
	if (r.rc) {
		hark_minutes_clear(out);
		return r.rc;
	}
	return HARK_OK;
}

/* ------------------------------------------------------------- Markdown --- */

struct sb {
	char *s;
	size_t len, cap;
	int fail;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->fail)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *ns;

		while (cap < b->len + n + 1 && cap <= MINUTES_MAX_MARKDOWN)
			cap *= 2;
		if (cap < b->len + n + 1 || cap > MINUTES_MAX_MARKDOWN * 2) {
			b->fail = 1;
			return;
		}
		ns = realloc(b->s, cap);
		if (!ns) {
			b->fail = 1;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->fail = 1;
		return;
	}
	sb_add(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/*
 * Appends transcript text with Markdown made inert: the inline specials
 * \ ` * _ [ ] < > | ~ # & are backslash-escaped, line breaks and tabs
 * become spaces (everything stays on one line, so table cells and list
 * items hold), and a leading "-", "+", "=" or "1." that could start a block is
 * escaped too.
 */
static void sb_esc(struct sb *b, const char *s)
{
	size_t i = 0;

	if (!s)
		return;
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	if (s[i] == '-' || s[i] == '+' || s[i] == '=')
		sb_add(b, "\\", 1);
	else if (s[i] >= '0' && s[i] <= '9') {
		size_t k = i;

		while (s[k] >= '0' && s[k] <= '9')
			k++;
		if (s[k] == '.' || s[k] == ')') {
			sb_add(b, s + i, k - i);
			sb_add(b, "\\", 1);
			i = k;
		}
	}
	for (; s[i]; i++) {
		char c = s[i];

		if (c == '\n' || c == '\r' || c == '\t') {
			sb_add(b, " ", 1);
			continue;
		}
		if (strchr("\\`*_[]<>|~#&", c))
			sb_add(b, "\\", 1);
		sb_add(b, &c, 1);
	}
}

static void hms(double t, char out[32])
{
	long s = (long)floor(t);

	snprintf(out, 32, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
}

static int time_known(double t)
{
	return isfinite(t) && t >= 0 && t < 1e9;
}

/* Where a ref points: "[hh:mm:ss](#t=S)" or a range, else "turn N" /
 * "turns A–B", else "n/a". */
static void sb_when(struct sb *b, const struct hark_minutes_ref *r, int range)
{
	char a[32], z[32];

	if (time_known(r->start_s)) {
		hms(r->start_s, a);
		if (range && time_known(r->end_s) && r->end_s >= r->start_s) {
			hms(r->end_s, z);
			sb_printf(b, "[%s-%s](#t=%.0f,%.0f)", a, z, floor(r->start_s),
				  ceil(r->end_s));
		} else {
			sb_printf(b, "[%s](#t=%.0f)", a, floor(r->start_s));
		}
	} else if (r->turn >= 0) {
		if (range && r->last_turn > r->turn)
			sb_printf(b, "turns %ld-%ld", r->turn, r->last_turn);
		else
			sb_printf(b, "turn %ld", r->turn);
	} else {
		sb_puts(b, "n/a");
	}
}

/* Words of a quote beyond which the Markdown cuts it. */
#define MD_QUOTE_WORDS 40

static void sb_quote(struct sb *b, const char *q)
{
	size_t words = 0, i = 0, cut;
	char *tmp;

	if (!q)
		return;
	/* cut at MD_QUOTE_WORDS words */
	while (q[i]) {
		while (q[i] == ' ')
			i++;
		if (!q[i])
			break;
		if (words == MD_QUOTE_WORDS)
			break;
		words++;
		while (q[i] && q[i] != ' ')
			i++;
	}
	cut = i;
	while (cut > 0 && q[cut - 1] == ' ')
		cut--;
	tmp = strndup(q, cut);
	if (!tmp) {
		b->fail = 1;
		return;
	}
	sb_puts(b, "\"");
	sb_esc(b, tmp);
	sb_puts(b, q[i] ? " ...\"" : "\"");
	free(tmp);
}

static void md_items(struct sb *b, const char *title, const struct hark_minutes_item *a,
		     size_t n)
{
	sb_printf(b, "## %s\n\n", title);
	if (n == 0) {
		sb_puts(b, "None.\n\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hark_minutes_item *it = &a[i];

		sb_puts(b, "- ");
		sb_esc(b, it->text);
		sb_puts(b, " (");
		if (it->ref.speaker) {
			sb_esc(b, it->ref.speaker);
			sb_puts(b, ", ");
		}
		sb_when(b, &it->ref, 0);
		sb_puts(b, ")\n");
		if (it->ref.quote) {
			sb_puts(b, "  > ");
			sb_quote(b, it->ref.quote);
			sb_puts(b, "\n");
		}
	}
	sb_puts(b, "\n");
}

char *hark_minutes_to_markdown(const struct hark_minutes *m)
{
	struct sb b;
	char t[32];

	if (!m)
		return NULL;
	memset(&b, 0, sizeof(b));
	sb_puts(&b, "# Minutes: ");
	sb_esc(&b, m->meeting && *m->meeting ? m->meeting : "meeting");
	if (m->date) {
		sb_puts(&b, " (");
		sb_esc(&b, m->date);
		sb_puts(&b, ")");
	}
	sb_puts(&b, "\n\n");
	sb_puts(&b, "- Date: ");
	sb_esc(&b, m->date ? m->date : "unknown");
	sb_puts(&b, "\n- Duration: ");
	if (time_known(m->duration_s)) {
		hms(m->duration_s, t);
		sb_puts(&b, t);
	} else {
		sb_puts(&b, "unknown");
	}
	sb_puts(&b, "\n- Method: ");
	sb_esc(&b, m->method ? m->method : "unknown");
	if (m->model) {
		sb_puts(&b, " (");
		sb_esc(&b, m->model);
		sb_puts(&b, ")");
	}
	sb_printf(&b, "\n- Analysed: %zu turns, %zu chunks\n\n", m->turns, m->chunks);

	sb_puts(&b, "## Summary\n\n");
	if (m->summary && *m->summary) {
		sb_esc(&b, m->summary);
		sb_puts(&b, "\n\n");
	} else {
		sb_puts(&b, "None.\n\n");
	}
	for (size_t i = 0; m->points && i < m->n_points; i++) {
		sb_puts(&b, "- ");
		sb_when(&b, &m->points[i].ref, 0);
		sb_puts(&b, " ");
		if (m->points[i].ref.speaker) {
			sb_esc(&b, m->points[i].ref.speaker);
			sb_puts(&b, ": ");
		}
		sb_esc(&b, m->points[i].text);
		sb_puts(&b, "\n");
	}
	if (m->n_points)
		sb_puts(&b, "\n");

	sb_puts(&b, "## Topics\n\n");
	if (m->n_topics == 0)
		sb_puts(&b, "None.\n\n");
	for (size_t i = 0; m->topics && i < m->n_topics; i++) {
		const struct hark_minutes_topic *tp = &m->topics[i];

		sb_printf(&b, "%zu. **", i + 1);
		sb_esc(&b, tp->title);
		sb_puts(&b, "** ");
		sb_when(&b, &tp->ref, 1);
		sb_puts(&b, "\n");
		if (tp->summary) {
			sb_puts(&b, "   ");
			sb_esc(&b, tp->summary);
			sb_puts(&b, "\n");
		}
		if (tp->n_keywords) {
			sb_puts(&b, "   Keywords: ");
			for (size_t k = 0; k < tp->n_keywords; k++) {
				if (k)
					sb_puts(&b, ", ");
				sb_esc(&b, tp->keywords[k]);
			}
			sb_puts(&b, "\n");
		}
		if (i + 1 == m->n_topics)
			sb_puts(&b, "\n");
	}

	md_items(&b, "Decisions", m->decisions, m->n_decisions);

	sb_puts(&b, "## Action items\n\n");
	if (m->n_actions == 0) {
		sb_puts(&b, "None.\n\n");
	} else {
		sb_puts(&b, "| Task | Owner | Due | When | Evidence |\n");
		sb_puts(&b, "| --- | --- | --- | --- | --- |\n");
		for (size_t i = 0; i < m->n_actions; i++) {
			const struct hark_minutes_item *it = &m->actions[i];

			sb_puts(&b, "| ");
			sb_esc(&b, it->text);
			sb_puts(&b, " | ");
			sb_esc(&b, it->owner ? it->owner : "unassigned");
			sb_puts(&b, " | ");
			if (it->due)
				sb_esc(&b, it->due);
			if (it->due_iso) {
				sb_puts(&b, it->due ? " (" : "");
				sb_esc(&b, it->due_iso);
				sb_puts(&b, it->due ? ")" : "");
			}
			if (!it->due && !it->due_iso)
				sb_puts(&b, "none");
			sb_puts(&b, " | ");
			sb_when(&b, &it->ref, 0);
			sb_puts(&b, " | ");
			if (it->ref.quote)
				sb_quote(&b, it->ref.quote);
			sb_puts(&b, " |\n");
		}
		sb_puts(&b, "\n");
	}

	md_items(&b, "Open questions", m->questions, m->n_questions);

	sb_puts(&b, "## Participants\n\n");
	if (m->n_participants == 0) {
		sb_puts(&b, "None identified.\n");
	} else {
		sb_puts(&b, "| Name | Turns | Words | Talk time | First heard |\n");
		sb_puts(&b, "| --- | --- | --- | --- | --- |\n");
		for (size_t i = 0; m->participants && i < m->n_participants; i++) {
			const struct hark_minutes_participant *p = &m->participants[i];
			struct hark_minutes_ref r = hark_minutes_ref_none();

			sb_puts(&b, "| ");
			sb_esc(&b, p->name);
			sb_printf(&b, " | %zu | %zu | ", p->turns, p->words);
			if (time_known(p->talk_s)) {
				hms(p->talk_s, t);
				sb_puts(&b, t);
			} else {
				sb_puts(&b, "unknown");
			}
			sb_puts(&b, " | ");
			r.start_s = p->first_s;
			if (time_known(p->first_s))
				sb_when(&b, &r, 0);
			else
				sb_puts(&b, "unknown");
			sb_puts(&b, " |\n");
		}
	}
	if (b.fail || !b.s) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
