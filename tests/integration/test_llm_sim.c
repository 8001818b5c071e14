/*
 * Wire-level tests of hark-llm-sim over loopback (libcurl + jansson): exact
 * usage counts, deterministic replies, schema instances built from chunk
 * markers, max_tokens cuts, SSE streaming, rate limits and their headers
 * (fast through a time scale), every directive, /_sim/fail and recover,
 * authentication, error shapes, embeddings, agreement of stats, log and what
 * the client saw, start-up errors, and 300 concurrent requests.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "llm/tokens.h"
#include "sim_harness.h"

#define SKIP_WITHOUT_SIM()                                                  \
	do {                                                                \
		if (!simh_bin()) {                                          \
			fprintf(stderr, "HARK_SIM_BIN not set: skipping\n"); \
			skip();                                             \
		}                                                           \
	} while (0)

/* ---- helpers -------------------------------------------------------------------- */

/* {"model": model, "messages": [{"role":"user","content": user}]} plus the
 * members of extra (JSON object text, may be NULL). Returns heap text. */
static char *chat_req(const char *model, const char *system, const char *user, const char *extra)
{
	json_t *msgs = json_array();
	json_t *o;
	char *s;

	if (system)
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
	json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", user));
	o = json_pack("{s:s,s:o}", "model", model, "messages", msgs);
	if (extra) {
		json_t *e = json_loads(extra, 0, NULL);
		assert_non_null(e);
		json_object_update(o, e);
		json_decref(e);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static const char *content_of(const struct simh_resp *r)
{
	json_t *msg = json_object_get(json_array_get(json_object_get(r->json, "choices"), 0),
				      "message");
	return json_string_value(json_object_get(msg, "content"));
}

static const char *finish_of(const struct simh_resp *r)
{
	return json_string_value(json_object_get(
		json_array_get(json_object_get(r->json, "choices"), 0), "finish_reason"));
}

static long usage_of(const json_t *v, const char *k)
{
	return (long)json_integer_value(json_object_get(json_object_get(v, "usage"), k));
}

/* POST a chat request, asserting a response arrived. */
static void chat(const struct simh *h, const char *body, struct simh_resp *r)
{
	assert_int_equal(simh_post(h, "/chat/completions", body, r), 0);
}

static long header_long(const struct simh_resp *r, const char *name)
{
	char *v = simh_header(r, name);
	long x = v ? atol(v) : -1;

	free(v);
	return x;
}

/* Parses "1s", "250ms", "6m0s", "1.5s", "1h2m3s" into seconds; -1 if bad. */
static double parse_dur(const char *s)
{
	double total = 0;
	int any = 0;

	if (!s)
		return -1;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		if (end == s)
			return -1;
		if (end[0] == 'm' && end[1] == 's') {
			total += v / 1000;
			end += 2;
		} else if (*end == 'h') {
			total += v * 3600;
			end++;
		} else if (*end == 'm') {
			total += v * 60;
			end++;
		} else if (*end == 's') {
			total += v;
			end++;
		} else {
			return -1;
		}
		any = 1;
		s = end;
	}
	return any ? total : -1;
}

/* Finds the log line with seq (x-request-id "req_<seq>" of r). */
static json_t *log_line_for(json_t *log, const struct simh_resp *r)
{
	char *rid = simh_header(r, "x-request-id");
	long seq = rid && strncmp(rid, "req_", 4) == 0 ? atol(rid + 4) : -1;
	size_t i;
	json_t *l;

	free(rid);
	json_array_foreach(log, i, l)
		if (json_integer_value(json_object_get(l, "seq")) == seq)
			return l;
	return NULL;
}

static size_t count_lines(json_t *log, const char *key, const char *val)
{
	size_t i, n = 0;
	json_t *l;

	json_array_foreach(log, i, l) {
		const json_t *v = json_object_get(l, key);
		if (json_is_string(v) && strcmp(json_string_value(v), val) == 0)
			n++;
	}
	return n;
}

/* Small structural check of v against schema (the subset the simulator
 * fills): type, required, properties, items, enum, min/max(Items), $ref. */
static int check_schema(const json_t *root, const json_t *s, const json_t *v, char *why,
			size_t n)
{
	const json_t *t, *e;

	for (int i = 0; i < 8 && json_is_string(json_object_get(s, "$ref")); i++) {
		const char *ref = json_string_value(json_object_get(s, "$ref"));
		const char *name = strrchr(ref, '/');
		s = json_object_get(json_object_get(root, "$defs"), name ? name + 1 : "");
	}
	if (!s)
		return snprintf(why, n, "unresolved $ref"), -1;
	e = json_object_get(s, "enum");
	if (e) {
		size_t i;
		const json_t *x;
		json_array_foreach(e, i, x)
			if (json_equal(x, v))
				return 0;
		return snprintf(why, n, "value not in enum"), -1;
	}
	t = json_object_get(s, "type");
	if (json_is_array(t)) {
		if (json_is_null(v))
			return 0;
		t = json_array_get(t, 0);
	}
	if (!t)
		return 0;
	if (!strcmp(json_string_value(t), "object")) {
		const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
		const char *k;
		json_t *ps;
		size_t i;
		if (!json_is_object(v))
			return snprintf(why, n, "expected object"), -1;
		json_array_foreach(req, i, e)
			if (!json_object_get(v, json_string_value(e)))
				return snprintf(why, n, "missing %s", json_string_value(e)), -1;
		json_object_foreach((json_t *)props, k, ps) {
			const json_t *pv = json_object_get(v, k);
			if (pv && check_schema(root, ps, pv, why, n))
				return -1;
		}
		return 0;
	}
	if (!strcmp(json_string_value(t), "array")) {
		size_t i;
		const json_t *x;
		const json_t *mi = json_object_get(s, "minItems"), *ma = json_object_get(s, "maxItems");
		if (!json_is_array(v))
			return snprintf(why, n, "expected array"), -1;
		if (mi && json_array_size(v) < (size_t)json_integer_value(mi))
			return snprintf(why, n, "too few items"), -1;
		if (ma && json_array_size(v) > (size_t)json_integer_value(ma))
			return snprintf(why, n, "too many items"), -1;
		json_array_foreach(v, i, x)
			if (check_schema(root, json_object_get(s, "items"), x, why, n))
				return -1;
		return 0;
	}
	if (!strcmp(json_string_value(t), "string")) {
		const json_t *ml = json_object_get(s, "maxLength");
		if (!json_is_string(v))
			return snprintf(why, n, "expected string"), -1;
		if (ml && json_string_length(v) > (size_t)json_integer_value(ml) * 4)
			return snprintf(why, n, "too long"), -1;
		return 0;
	}
	if (!strcmp(json_string_value(t), "integer")) {
		const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
		if (!json_is_integer(v))
			return snprintf(why, n, "expected integer"), -1;
		if ((mn && json_integer_value(v) < json_number_value(mn)) ||
		    (mx && json_integer_value(v) > json_number_value(mx)))
			return snprintf(why, n, "integer out of range"), -1;
		return 0;
	}
	if (!strcmp(json_string_value(t), "number")) {
		const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
		if (!json_is_number(v))
			return snprintf(why, n, "expected number"), -1;
		if ((mn && json_number_value(v) < json_number_value(mn)) ||
		    (mx && json_number_value(v) > json_number_value(mx)))
			return snprintf(why, n, "number out of range"), -1;
		return 0;
	}
	if (!strcmp(json_string_value(t), "boolean"))
		return json_is_boolean(v) ? 0 : (snprintf(why, n, "expected boolean"), -1);
	return 0;
}

static const char ENTITY_SCHEMA[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"entities\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/entity\"}},"
	"\"summary\":{\"type\":\"string\",\"maxLength\":60},"
	"\"meeting_date\":{\"type\":\"string\"},"
	"\"mood\":{\"type\":\"string\",\"enum\":[\"calm\",\"tense\",\"upbeat\"]},"
	"\"score\":{\"type\":\"integer\",\"minimum\":3,\"maximum\":7},"
	"\"final\":{\"type\":\"boolean\"}},"
	"\"required\":[\"entities\",\"summary\",\"meeting_date\",\"mood\",\"score\",\"final\"],"
	"\"additionalProperties\":false,"
	"\"$defs\":{\"entity\":{\"type\":\"object\",\"properties\":{"
	"\"name\":{\"type\":\"string\"},"
	"\"type\":{\"type\":\"string\",\"enum\":[\"person\",\"organization\",\"place\"]},"
	"\"chunk\":{\"type\":\"string\"},"
	"\"evidence\":{\"type\":\"string\"},"
	"\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1}},"
	"\"required\":[\"name\",\"type\",\"chunk\",\"evidence\",\"confidence\"],"
	"\"additionalProperties\":false}}}";

static const char TRANSCRIPT[] =
	"Transcript follows.\n"
	"[chunk c1]\n"
	"Alice Johnson opened the meeting in Berlin. The team reviewed the launch plan with "
	"Acme Corp and agreed that the beta starts in March.\n"
	"[chunk c2]\n"
	"Then Bob said the budget is tight this quarter. Carol from Finance asked for a "
	"revised estimate by Friday.\n"
	"[chunk c3]\n"
	"Finally the group discussed hiring. Dave Miller will draft two job descriptions and "
	"share them with Erin next week.\n";

/* A json_schema response_format member text for schema. */
static char *rf_schema(const char *schema)
{
	size_t n = strlen(schema) + 200;
	char *s = malloc(n);

	snprintf(s, n,
		 "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\","
		 "\"strict\":true,\"schema\":%s}}}",
		 schema);
	return s;
}

/* ---- usage, determinism, schema, max_tokens ------------------------------------------ */

static void test_usage_exact(void **state)
{
	struct simh h;
	struct simh_resp r;
	const char *roles[] = {"system", "user"};
	const char *contents[] = {"You are terse. Answer in one line; no lists!",
				  "Summarise: the café opened at 9:30, and 12 people came — "
				  "mostly regulars. Supercalifragilistic words cost more."};
	char *body;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	body = chat_req("sim-small", contents[0], contents[1], NULL);
	chat(&h, body, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	assert_string_equal(json_string_value(json_object_get(r.json, "object")), "chat.completion");
	assert_string_equal(json_string_value(json_object_get(r.json, "model")), "sim-small");
	assert_true(strncmp(json_string_value(json_object_get(r.json, "id")), "chatcmpl-", 9) == 0);
	assert_int_equal(usage_of(r.json, "prompt_tokens"),
			 (long)hark_llm_tokens_chat(roles, contents, 2));
	assert_non_null(content_of(&r));
	assert_int_equal(usage_of(r.json, "completion_tokens"),
			 (long)hark_llm_tokens_count(content_of(&r), strlen(content_of(&r))));
	assert_int_equal(usage_of(r.json, "total_tokens"),
			 usage_of(r.json, "prompt_tokens") + usage_of(r.json, "completion_tokens"));
	assert_string_equal(finish_of(&r), "stop");
	/* the free-text reply is extractive: it starts with the first sentence */
	assert_true(strncmp(content_of(&r), "Summarise: the café opened at 9:30, and 12", 40) == 0);
	simh_resp_free(&r);
	free(body);

	/* content as an array of text parts counts like the joined text */
	{
		const char *c2[] = {"part one.\npart two"};
		const char *r2[] = {"user"};
		body = strdup("{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":"
			      "[{\"type\":\"text\",\"text\":\"part one.\"},{\"type\":\"text\","
			      "\"text\":\"part two\"}]}]}");
		chat(&h, body, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(usage_of(r.json, "prompt_tokens"), (long)hark_llm_tokens_chat(r2, c2, 1));
		simh_resp_free(&r);
		free(body);
	}
	assert_int_equal(simh_stop(&h), 0);
}

static void test_deterministic(void **state)
{
	struct simh h;
	struct simh_resp a, b, c, d;
	char *rf = rf_schema(ENTITY_SCHEMA);
	char *q1 = chat_req("sim-small", "Extract entities.", TRANSCRIPT, rf);
	char *q2 = chat_req("sim-small", "Extract entities.", TRANSCRIPT + 20, rf);
	char *q3 = chat_req("sim-large", "Extract entities.", TRANSCRIPT, rf);

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	chat(&h, q1, &a);
	chat(&h, q1, &b);
	chat(&h, q2, &c);
	chat(&h, q3, &d);
	assert_int_equal(a.status, 200);
	assert_string_equal(content_of(&a), content_of(&b));
	assert_string_not_equal(content_of(&a), content_of(&c));
	assert_string_not_equal(content_of(&a), content_of(&d));
	simh_resp_free(&a);
	simh_resp_free(&b);
	simh_resp_free(&c);
	simh_resp_free(&d);
	/* a restarted simulator answers the same */
	{
		struct simh h2;
		struct simh_resp x, y;
		assert_int_equal(simh_start(&h2, NULL, 1, NULL, NULL), 0);
		chat(&h, q1, &x);
		chat(&h2, q1, &y);
		assert_string_equal(content_of(&x), content_of(&y));
		simh_resp_free(&x);
		simh_resp_free(&y);
		assert_int_equal(simh_stop(&h2), 0);
	}
	assert_int_equal(simh_stop(&h), 0);
	free(rf);
	free(q1);
	free(q2);
	free(q3);
}

/* Checks an entity-schema instance against the transcript's chunks. */
static void check_entities(const char *content)
{
	json_t *schema = json_loads(ENTITY_SCHEMA, 0, NULL);
	json_t *v = json_loads(content, 0, NULL);
	const char *ids[] = {"c1", "c2", "c3"};
	json_t *ents, *e;
	size_t i, k;
	char why[200] = "";

	assert_non_null(v);
	if (check_schema(schema, schema, v, why, sizeof(why)))
		fail_msg("instance violates the schema: %s\n%s", why, content);
	ents = json_object_get(v, "entities");
	k = json_array_size(ents) / 3;
	/* K chunks -> K x (1 or 2) items, item i from chunk i mod K */
	assert_true(json_array_size(ents) == 3 || json_array_size(ents) == 6);
	json_array_foreach(ents, i, e) {
		const char *chunk = json_string_value(json_object_get(e, "chunk"));
		const char *ev = json_string_value(json_object_get(e, "evidence"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *body = strstr(TRANSCRIPT, chunk ? chunk : "?");
		const char *next;
		char span[400];

		assert_string_equal(chunk, ids[i % 3]);
		/* the evidence is a sentence of that chunk, the name a capitalised word from it */
		assert_non_null(body);
		next = strstr(body + 3, "[chunk");
		snprintf(span, sizeof(span), "%.*s", (int)(next ? next - body : (long)strlen(body)),
			 body);
		assert_non_null(ev);
		assert_true(strlen(ev) > 10);
		if (!strstr(span, ev))
			fail_msg("evidence \"%s\" is not from chunk %s", ev, chunk);
		assert_non_null(name);
		assert_true(name[0] >= 'A' && name[0] <= 'Z');
		if (!strstr(span, name))
			fail_msg("name \"%s\" is not from chunk %s", name, chunk);
	}
	(void)k;
	{
		const char *d = json_string_value(json_object_get(v, "meeting_date"));
		assert_non_null(d);
		assert_int_equal(strlen(d), 10);
		assert_true(d[4] == '-' && d[7] == '-');
	}
	json_decref(v);
	json_decref(schema);
}

static void test_schema_instance(void **state)
{
	struct simh h;
	struct simh_resp r;
	char *rf = rf_schema(ENTITY_SCHEMA);
	char *q = chat_req("sim-small", "Extract entities.", TRANSCRIPT, rf);
	json_t *log;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	check_entities(content_of(&r));
	simh_resp_free(&r);
	free(q);

	/* the same schema given in the prompt (json_object and no response_format) */
	{
		size_t n = strlen(ENTITY_SCHEMA) + 200;
		char *sys = malloc(n);
		snprintf(sys, n, "Extract entities. Reply with JSON only, matching this JSON Schema:\n%s",
			 ENTITY_SCHEMA);
		q = chat_req("sim-small", sys, TRANSCRIPT, "{\"response_format\":{\"type\":\"json_object\"}}");
		chat(&h, q, &r);
		assert_int_equal(r.status, 200);
		check_entities(content_of(&r));
		simh_resp_free(&r);
		free(q);
		q = chat_req("sim-small", sys, TRANSCRIPT, NULL);
		chat(&h, q, &r);
		assert_int_equal(r.status, 200);
		check_entities(content_of(&r));
		simh_resp_free(&r);
		free(q);
		free(sys);
	}
	/* json_object without a schema: {"reply": text} */
	q = chat_req("sim-small", NULL, "Say something. Anything.",
		     "{\"response_format\":{\"type\":\"json_object\"}}");
	chat(&h, q, &r);
	{
		json_t *v = json_loads(content_of(&r), 0, NULL);
		assert_non_null(v);
		assert_true(json_is_string(json_object_get(v, "reply")));
		json_decref(v);
	}
	simh_resp_free(&r);
	free(q);
	/* the log names the chunks that were sent */
	log = simh_read_log(&h);
	assert_non_null(log);
	{
		json_t *ch = json_object_get(json_array_get(log, 0), "chunks");
		assert_int_equal(json_array_size(ch), 3);
		assert_string_equal(json_string_value(json_array_get(ch, 0)), "c1");
		assert_string_equal(json_string_value(json_array_get(ch, 2)), "c3");
	}
	json_decref(log);
	assert_int_equal(simh_stop(&h), 0);
	free(rf);
}

static void test_max_tokens_cut(void **state)
{
	struct simh h;
	struct simh_resp full, cut;
	char *rf = rf_schema(ENTITY_SCHEMA);
	char *q = chat_req("sim-small", "Extract entities.", TRANSCRIPT, rf);
	json_t *o = json_loads(q, 0, NULL);
	char *q7;

	(void)state;
	SKIP_WITHOUT_SIM();
	json_object_set_new(o, "max_tokens", json_integer(7));
	q7 = json_dumps(o, JSON_COMPACT);
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	chat(&h, q, &full);
	chat(&h, q7, &cut);
	assert_int_equal(cut.status, 200);
	assert_string_equal(finish_of(&cut), "length");
	assert_int_equal(usage_of(cut.json, "completion_tokens"), 7);
	assert_int_equal(hark_llm_tokens_count(content_of(&cut), strlen(content_of(&cut))), 7);
	/* a prefix of the whole reply, and no longer valid JSON */
	assert_true(strncmp(content_of(&full), content_of(&cut), strlen(content_of(&cut))) == 0);
	assert_null(json_loads(content_of(&cut), 0, NULL));
	simh_resp_free(&full);
	simh_resp_free(&cut);
	/* max_completion_tokens works the same; too large a value is a 400 */
	json_object_del(o, "max_tokens");
	json_object_set_new(o, "max_completion_tokens", json_integer(5000));
	free(q7);
	q7 = json_dumps(o, JSON_COMPACT);
	chat(&h, q7, &cut);
	assert_int_equal(cut.status, 400);
	simh_resp_free(&cut);
	assert_int_equal(simh_stop(&h), 0);
	json_decref(o);
	free(q7);
	free(q);
	free(rf);
}

/* ---- streaming ------------------------------------------------------------------- */

struct sse {
	json_t *events; /* array of parsed data objects */
	int done;       /* saw [DONE] last */
	int bad;        /* a data line that is not JSON */
};

static void parse_sse(const char *body, struct sse *out)
{
	const char *p = body;

	memset(out, 0, sizeof(*out));
	out->events = json_array();
	while (p && *p) {
		const char *e = strstr(p, "\n\n");
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n > 6 && strncmp(p, "data: ", 6) == 0) {
			if (n == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
				out->done = 1;
			} else {
				json_t *v = json_loadb(p + 6, n - 6, 0, NULL);
				if (v)
					json_array_append_new(out->events, v);
				else
					out->bad = 1;
				out->done = 0;
			}
		}
		p = e ? e + 2 : NULL;
	}
}

static void test_streaming(void **state)
{
	struct simh h;
	struct simh_resp plain, sr;
	struct sse s;
	char *rf = rf_schema(ENTITY_SCHEMA);
	char *q = chat_req("sim-small", "Extract entities.", TRANSCRIPT, rf);
	json_t *o = json_loads(q, 0, NULL);
	char *qs, *ct, acc[65536] = "";
	size_t i;
	json_t *ev;
	int saw_finish = 0, saw_usage = 0;

	(void)state;
	SKIP_WITHOUT_SIM();
	json_object_set_new(o, "stream", json_true());
	json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
	qs = json_dumps(o, JSON_COMPACT);
	assert_int_equal(simh_start(&h, "{\"stream_chunk_s\":0.05}", 20, NULL, NULL), 0);
	chat(&h, q, &plain);
	chat(&h, qs, &sr);
	assert_int_equal(sr.status, 200);
	ct = simh_header(&sr, "content-type");
	assert_non_null(ct);
	assert_true(strncmp(ct, "text/event-stream", 17) == 0);
	free(ct);
	parse_sse(sr.body, &s);
	assert_false(s.bad);
	assert_true(s.done);
	assert_true(json_array_size(s.events) >= 4);
	/* first delta carries the role */
	ev = json_array_get(s.events, 0);
	assert_string_equal(json_string_value(json_object_get(ev, "object")), "chat.completion.chunk");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    json_array_get(json_object_get(ev, "choices"), 0), "delta"),
							     "role")),
			    "assistant");
	json_array_foreach(s.events, i, ev) {
		json_t *ch = json_object_get(ev, "choices");
		json_t *c0 = json_array_get(ch, 0);
		const char *piece = json_string_value(
			json_object_get(json_object_get(c0, "delta"), "content"));
		const char *fr = json_string_value(json_object_get(c0, "finish_reason"));
		if (piece)
			strncat(acc, piece, sizeof(acc) - strlen(acc) - 1);
		if (fr) {
			assert_string_equal(fr, "stop");
			saw_finish = 1;
		}
		if (json_array_size(ch) == 0) {
			/* the usage chunk comes last */
			assert_int_equal(i, json_array_size(s.events) - 1);
			assert_true(saw_finish);
			assert_int_equal(usage_of(ev, "prompt_tokens"), usage_of(plain.json, "prompt_tokens"));
			assert_int_equal(usage_of(ev, "completion_tokens"),
					 usage_of(plain.json, "completion_tokens"));
			saw_usage = 1;
		}
	}
	assert_true(saw_finish);
	assert_true(saw_usage);
	/* deltas assemble into the non-streaming content */
	assert_string_equal(acc, content_of(&plain));
	/* several content deltas were spaced stream_chunk_s apart (sim time) */
	assert_true(json_array_size(s.events) > 10);
	assert_true(sr.seconds >= (double)(json_array_size(s.events) - 4) * 0.05 / 20 * 0.8);
	sr.seconds = 0;
	simh_resp_free(&sr);
	free(qs);

	/* without include_usage: no usage chunk */
	json_object_del(o, "stream_options");
	qs = json_dumps(o, JSON_COMPACT);
	chat(&h, qs, &sr);
	json_decref(s.events);
	parse_sse(sr.body, &s);
	assert_true(s.done);
	json_array_foreach(s.events, i, ev)
		assert_int_equal(json_array_size(json_object_get(ev, "choices")), 1);
	simh_resp_free(&sr);
	json_decref(s.events);
	simh_resp_free(&plain);
	assert_int_equal(simh_stop(&h), 0);
	json_decref(o);
	free(qs);
	free(q);
	free(rf);
}

/* ---- rate limits -------------------------------------------------------------------- */

static const char LIMIT_CONFIG[] =
	"{\"window_s\":60,\"models\":["
	"{\"name\":\"lim\",\"rpm\":3},"
	"{\"name\":\"tok\",\"tpm\":200},"
	"{\"name\":\"free\"}]}";

/* Every admitted line of model fits the limits within any window. */
static void referee(json_t *log, const char *model, long rpm, long tpm, double window)
{
	size_t i, j;
	json_t *a, *b;

	json_array_foreach(log, i, a) {
		long n = 0, tok = 0;
		double t = json_number_value(json_object_get(a, "t"));
		if (!json_is_string(json_object_get(a, "model")) ||
		    strcmp(json_string_value(json_object_get(a, "model")), model) ||
		    !json_integer_value(json_object_get(a, "admitted")))
			continue;
		json_array_foreach(log, j, b) {
			double tb = json_number_value(json_object_get(b, "t"));
			if (!json_is_string(json_object_get(b, "model")) ||
			    strcmp(json_string_value(json_object_get(b, "model")), model) ||
			    !json_integer_value(json_object_get(b, "admitted")))
				continue;
			if (tb <= t && tb > t - window) {
				n++;
				tok += (long)json_integer_value(json_object_get(b, "counted_tokens"));
			}
		}
		if (rpm)
			assert_true(n <= rpm);
		if (tpm)
			assert_true(tok <= tpm);
	}
}

static void test_rate_limits(void **state)
{
	struct simh h;
	struct simh_resp r;
	char *q = chat_req("lim", NULL, "Hello there. Rate limits ahead.", NULL);
	double scale = 20;
	char *v;
	long retry_ms;
	json_t *log;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, LIMIT_CONFIG, scale, NULL, NULL), 0);
	for (int i = 0; i < 3; i++) {
		chat(&h, q, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(header_long(&r, "x-ratelimit-limit-requests"), 3);
		assert_int_equal(header_long(&r, "x-ratelimit-remaining-requests"), 2 - i);
		v = simh_header(&r, "x-ratelimit-reset-requests");
		assert_non_null(v);
		if (i < 2)
			assert_true(parse_dur(v) == 0);
		else
			assert_true(parse_dur(v) > 30 && parse_dur(v) <= 60);
		free(v);
		/* no token limit on this model: "unlimited" token headers */
		assert_int_equal(header_long(&r, "x-ratelimit-limit-tokens"), 1000000000);
		assert_int_equal(header_long(&r, "x-ratelimit-remaining-tokens"), 1000000000);
		simh_resp_free(&r);
	}
	chat(&h, q, &r);
	assert_int_equal(r.status, 429);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
			    "rate_limit_exceeded");
	v = simh_header(&r, "retry-after");
	assert_non_null(v);
	assert_true(atol(v) >= 1 && atol(v) <= 60);
	free(v);
	retry_ms = header_long(&r, "retry-after-ms");
	assert_true(retry_ms > 0 && retry_ms <= 60000);
	assert_true(labs(retry_ms - 1000 * header_long(&r, "retry-after")) <= 1000);
	assert_int_equal(header_long(&r, "x-ratelimit-remaining-requests"), 0);
	v = simh_header(&r, "x-ratelimit-reset-requests");
	assert_true(fabs(parse_dur(v) - retry_ms / 1000.0) < 0.5);
	free(v);
	simh_resp_free(&r);
	/* a rejected request consumed nothing: after Retry-After it is admitted */
	simh_sleep_ms((int)(retry_ms / scale) + 100);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	free(q);

	/* tokens: counted = prompt + max_tokens */
	q = chat_req("tok", NULL, "Tokens please.", "{\"max_tokens\":150}");
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(header_long(&r, "x-ratelimit-limit-tokens"), 200);
	assert_int_equal(header_long(&r, "x-ratelimit-remaining-tokens"),
			 200 - 150 - usage_of(r.json, "prompt_tokens"));
	v = simh_header(&r, "x-ratelimit-reset-tokens");
	assert_true(parse_dur(v) > 30 && parse_dur(v) <= 60);
	free(v);
	simh_resp_free(&r);
	chat(&h, q, &r);
	assert_int_equal(r.status, 429);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
			    "tokens");
	simh_resp_free(&r);
	free(q);
	/* a request larger than the whole budget is refused too */
	q = chat_req("tok", NULL, "Too big.", "{\"max_tokens\":300}");
	chat(&h, q, &r);
	assert_int_equal(r.status, 429);
	simh_resp_free(&r);
	free(q);
	/* the unlimited model carries no rate-limit headers */
	q = chat_req("free", NULL, "Free.", NULL);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	assert_null(simh_header(&r, "x-ratelimit-limit-requests"));
	simh_resp_free(&r);
	free(q);

	/* /_sim/config changes limits at once */
	assert_int_equal(simh_admin(&h, "config", "{\"models\":[{\"name\":\"free\",\"rpm\":1}]}"), 200);
	q = chat_req("free", NULL, "Now limited.", NULL);
	chat(&h, q, &r);
	assert_int_equal(r.status, 429); /* the earlier request is in the window */
	simh_resp_free(&r);
	free(q);
	assert_int_equal(simh_admin(&h, "config", "{\"models\":[{\"name\":\"nope\",\"rpm\":1}]}"), 400);
	assert_int_equal(simh_admin(&h, "config", "{\"window_s\":5}"), 400);

	log = simh_read_log(&h);
	assert_non_null(log);
	referee(log, "lim", 3, 0, 60);
	referee(log, "tok", 0, 200, 60);
	assert_int_equal(count_lines(log, "fault", "rate_limited"), 4);
	{
		size_t i;
		json_t *l;
		json_array_foreach(log, i, l)
			if (!strcmp(json_string_value(json_object_get(l, "fault")), "rate_limited")) {
				assert_int_equal(json_integer_value(json_object_get(l, "status")), 429);
				assert_int_equal(json_integer_value(json_object_get(l, "admitted")), 0);
			}
	}
	json_decref(log);
	{
		json_t *st = simh_stats(&h);
		assert_int_equal(json_integer_value(json_object_get(st, "rate_limited")), 4);
		json_decref(st);
	}
	assert_int_equal(simh_stop(&h), 0);
}

/* ---- directives ------------------------------------------------------------------------ */

static const char DIR_CONFIG[] = "{\"timeout_hold_s\":20}";

static void test_directive_fail(void **state)
{
	struct simh h;
	struct simh_resp r;
	char *q = chat_req("sim-small", NULL, "Fail twice please. [[sim:fail status=503 times=2]]", NULL);
	char *q429 = chat_req("sim-small", NULL, "Slow down. [[sim:fail status=429 retry_after=7]]", NULL);
	char *qall = chat_req("sim-small", NULL, "Always 502. [[sim:fail status=502 times=all]]", NULL);
	json_t *log;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, DIR_CONFIG, 20, NULL, NULL), 0);
	for (int i = 0; i < 3; i++) {
		chat(&h, q, &r);
		assert_int_equal(r.status, i < 2 ? 503 : 200);
		if (i < 2)
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(r.json, "error"), "type")),
					    "server_error");
		simh_resp_free(&r);
	}
	chat(&h, q429, &r);
	assert_int_equal(r.status, 429);
	assert_int_equal(header_long(&r, "retry-after"), 7);
	assert_int_equal(header_long(&r, "retry-after-ms"), 7000);
	simh_resp_free(&r);
	chat(&h, q429, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	for (int i = 0; i < 4; i++) {
		chat(&h, qall, &r);
		assert_int_equal(r.status, 502);
		simh_resp_free(&r);
	}
	log = simh_read_log(&h);
	assert_int_equal(count_lines(log, "fault", "503"), 2);
	assert_int_equal(count_lines(log, "fault", "429"), 1);
	assert_int_equal(count_lines(log, "fault", "502"), 4);
	json_decref(log);
	assert_int_equal(simh_stop(&h), 0);
	free(q);
	free(q429);
	free(qall);
}

static void test_directive_content_faults(void **state)
{
	struct simh h;
	struct simh_resp r;
	char *rf = rf_schema(ENTITY_SCHEMA);
	char user[2048];
	char *q;
	json_t *v;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, DIR_CONFIG, 20, NULL, NULL), 0);

	/* bad_json: a 200 whose content is not JSON (usage counted), then valid */
	snprintf(user, sizeof(user), "%s[[sim:bad_json]]", TRANSCRIPT);
	q = chat_req("sim-small", "Extract.", user, rf);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(content_of(&r));
	assert_null(json_loads(content_of(&r), 0, NULL));
	assert_int_equal(usage_of(r.json, "completion_tokens"),
			 (long)hark_llm_tokens_count(content_of(&r), strlen(content_of(&r))));
	simh_resp_free(&r);
	/* a repair request repeating the original messages has the same
	 * identity, so the directive is used up */
	{
		json_t *o = json_loads(q, 0, NULL);
		json_t *msgs = json_object_get(o, "messages");
		char *rq;
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", "{oops"));
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content",
						      "That was not valid JSON. Reply again."));
		rq = json_dumps(o, JSON_COMPACT);
		chat(&h, rq, &r);
		assert_int_equal(r.status, 200);
		v = json_loads(content_of(&r), 0, NULL);
		assert_non_null(v);
		json_decref(v);
		simh_resp_free(&r);
		free(rq);
		json_decref(o);
	}
	free(q);

	/* wrong_schema: JSON missing a required member */
	snprintf(user, sizeof(user), "%s[[sim:wrong_schema times=1]]", TRANSCRIPT);
	q = chat_req("sim-small", "Extract.", user, rf);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	v = json_loads(content_of(&r), 0, NULL);
	assert_non_null(v);
	assert_null(json_object_get(v, "entities"));
	json_decref(v);
	simh_resp_free(&r);
	chat(&h, q, &r);
	check_entities(content_of(&r));
	simh_resp_free(&r);
	free(q);

	/* malformed_body: 200 whose body is not JSON */
	q = chat_req("sim-small", NULL, "Malformed. [[sim:malformed_body]]", NULL);
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	assert_true(r.len > 0);
	assert_null(r.json);
	simh_resp_free(&r);
	chat(&h, q, &r);
	assert_non_null(r.json);
	simh_resp_free(&r);
	free(q);

	/* truncate: the body is cut and the connection closed */
	q = chat_req("sim-small", "Extract.", TRANSCRIPT, rf);
	{
		json_t *o = json_loads(q, 0, NULL);
		json_t *m = json_array_get(json_object_get(o, "messages"), 1);
		char *tq;
		snprintf(user, sizeof(user), "%s [[sim:truncate]]", TRANSCRIPT);
		json_object_set_new(m, "content", json_string(user));
		tq = json_dumps(o, JSON_COMPACT);
		chat(&h, tq, &r);
		assert_int_equal(r.curl_rc, CURLE_PARTIAL_FILE);
		assert_null(r.json);
		simh_resp_free(&r);
		chat(&h, tq, &r);
		assert_int_equal(r.curl_rc, 0);
		assert_non_null(r.json);
		simh_resp_free(&r);
		/* streaming: the stream stops without finish_reason or [DONE] */
		snprintf(user, sizeof(user), "%s [[sim:truncate]] streamed", TRANSCRIPT);
		json_object_set_new(m, "content", json_string(user));
		json_object_set_new(o, "stream", json_true());
		free(tq);
		tq = json_dumps(o, JSON_COMPACT);
		chat(&h, tq, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.curl_rc, CURLE_PARTIAL_FILE);
		assert_null(strstr(r.body, "[DONE]"));
		assert_null(strstr(r.body, "finish_reason\":\"stop"));
		simh_resp_free(&r);
		free(tq);
		json_decref(o);
	}
	free(q);

	{
		json_t *log = simh_read_log(&h);
		json_t *st = simh_stats(&h);
		assert_int_equal(count_lines(log, "fault", "bad_json"), 1);
		assert_int_equal(count_lines(log, "fault", "wrong_schema"), 1);
		assert_int_equal(count_lines(log, "fault", "malformed_body"), 1);
		assert_int_equal(count_lines(log, "fault", "truncated"), 2);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "faults"),
								     "truncated")),
				 2);
		json_decref(st);
		json_decref(log);
	}
	assert_int_equal(simh_stop(&h), 0);
	free(rf);
}

static void test_directive_timeout_delay(void **state)
{
	struct simh h;
	struct simh_resp r;
	char url[128];
	char *q = chat_req("sim-small", NULL, "Hang on. [[sim:timeout]]", NULL);
	char *qd = chat_req("sim-small", NULL, "Take your time. [[sim:delay s=5 times=all]]", NULL);
	json_t *log, *l;
	double t0;

	(void)state;
	SKIP_WITHOUT_SIM();
	/* hold 20 sim s = 1 real s at scale 20 */
	assert_int_equal(simh_start(&h, DIR_CONFIG, 20, NULL, NULL), 0);
	snprintf(url, sizeof(url), "%s/chat/completions", h.base);
	simh_request("POST", url, q, NULL, 0.3, &r);
	assert_int_equal(r.curl_rc, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(r.status, 0);
	simh_resp_free(&r);
	/* not logged until the hold ends */
	log = simh_read_log(&h);
	assert_int_equal(count_lines(log, "fault", "timeout"), 0);
	json_decref(log);
	simh_sleep_ms(2000);
	log = simh_read_log(&h);
	assert_int_equal(count_lines(log, "fault", "timeout"), 1);
	l = json_array_get(log, 0);
	assert_int_equal(json_integer_value(json_object_get(l, "status")), 0);
	assert_true(json_number_value(json_object_get(l, "t_end")) -
			    json_number_value(json_object_get(l, "t")) >= 19.9);
	json_decref(log);
	/* the next arrival is answered */
	chat(&h, q, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);

	/* delay s=5: 0.25 real s at scale 20, every time */
	for (int i = 0; i < 2; i++) {
		t0 = simh_now();
		chat(&h, qd, &r);
		assert_int_equal(r.status, 200);
		assert_true(simh_now() - t0 >= 0.24);
		simh_resp_free(&r);
	}
	log = simh_read_log(&h);
	l = json_array_get(log, json_array_size(log) - 1);
	assert_true(fabs(json_number_value(json_object_get(l, "latency_s")) - 5.0) < 0.5);
	json_decref(log);
	assert_int_equal(simh_stop(&h), 0);
	free(q);
	free(qd);
}

/* The status / fault sequence of n requests against a fresh simulator. */
static void fault_run(const char *config, const char *seed, int n, char *out, size_t cap)
{
	struct simh h;
	struct simh_resp r;
	const char *args[] = {"--seed", seed, NULL};
	size_t pos = 0;

	out[0] = '\0';
	assert_int_equal(simh_start(&h, config, 20, NULL, args), 0);
	for (int i = 0; i < n; i++) {
		char user[64], *q;
		snprintf(user, sizeof(user), "Random fault probe %d.", i);
		q = chat_req("sim-small", NULL, user, NULL);
		chat(&h, q, &r);
		pos += (size_t)snprintf(out + pos, cap - pos, "%ld%c,", r.status,
					r.status == 200 && !r.json ? 'm' : r.status == 200 ? 'o' : 'e');
		simh_resp_free(&r);
		free(q);
	}
	assert_int_equal(simh_stop(&h), 0);
}

static void test_random_faults(void **state)
{
	const char *cfg = "{\"faults\":{\"p_500\":0.25,\"p_503\":0.1,\"p_malformed_body\":0.25}}";
	char a[2048], b[2048], c[2048];
	size_t n500 = 0, nm = 0;

	(void)state;
	SKIP_WITHOUT_SIM();
	fault_run(cfg, "7", 60, a, sizeof(a));
	fault_run(cfg, "7", 60, b, sizeof(b));
	fault_run(cfg, "8", 60, c, sizeof(c));
	/* the same seed gives the same faults, another seed others */
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	for (const char *p = a; (p = strstr(p, "500e")); p++)
		n500++;
	for (const char *p = a; (p = strstr(p, "200m")); p++)
		nm++;
	/* 15 and 15 expected of 60 */
	assert_true(n500 >= 5 && n500 <= 27);
	assert_true(nm >= 5 && nm <= 27);
}

/* ---- admin, auth, errors ------------------------------------------------------------------ */

static void test_fail_recover(void **state)
{
	struct simh h;
	struct simh_resp r;
	char *qs = chat_req("sim-small", NULL, "small", NULL);
	char *ql = chat_req("sim-large", NULL, "large", NULL);

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	assert_int_equal(simh_admin(&h, "fail", "{\"status\":503,\"model\":\"sim-small\"}"), 200);
	chat(&h, qs, &r);
	assert_int_equal(r.status, 503);
	simh_resp_free(&r);
	chat(&h, ql, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	assert_int_equal(simh_admin(&h, "fail", "{\"status\":500}"), 200);
	chat(&h, ql, &r);
	assert_int_equal(r.status, 500);
	simh_resp_free(&r);
	assert_int_equal(simh_admin(&h, "recover", NULL), 200);
	chat(&h, qs, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	chat(&h, ql, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	assert_int_equal(simh_admin(&h, "fail", "{\"status\":503,\"model\":\"nope\"}"), 404);
	assert_int_equal(simh_admin(&h, "fail", "{\"status\":\"x\"}"), 400);
	{
		json_t *log = simh_read_log(&h);
		assert_int_equal(count_lines(log, "fault", "down"), 2);
		json_decref(log);
	}
	/* reset zeroes the statistics */
	assert_int_equal(simh_admin(&h, "reset", NULL), 200);
	{
		json_t *st = simh_stats(&h);
		assert_int_equal(json_integer_value(json_object_get(st, "requests")), 0);
		json_decref(st);
	}
	assert_int_equal(simh_stop(&h), 0);
	free(qs);
	free(ql);
}

static void test_auth_and_errors(void **state)
{
	struct simh h;
	struct simh_resp r;
	const char *args[] = {"--api-key", "sekrit", NULL};
	const char *good[] = {"Authorization: Bearer sekrit", NULL};
	const char *bad[] = {"Authorization: Bearer nope", NULL};
	char url[160];
	char *q = chat_req("sim-small", NULL, "hi", NULL);

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, args), 0);
	snprintf(url, sizeof(url), "%s/chat/completions", h.base);
	simh_request("POST", url, q, NULL, 10, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
			    "invalid_api_key");
	assert_true(json_is_null(json_object_get(json_object_get(r.json, "error"), "param")));
	assert_non_null(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")));
	simh_resp_free(&r);
	simh_request("POST", url, q, bad, 10, &r);
	assert_int_equal(r.status, 401);
	simh_resp_free(&r);
	simh_request("POST", url, q, good, 10, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	/* the same path without /v1 */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/chat/completions", h.port);
	simh_request("POST", url, q, good, 10, &r);
	assert_int_equal(r.status, 200);
	simh_resp_free(&r);
	/* admin needs no key */
	{
		json_t *st = simh_stats(&h);
		assert_non_null(st);
		json_decref(st);
	}
	free(q);

	/* unknown model, unknown path, bad JSON, missing messages */
	snprintf(url, sizeof(url), "%s/chat/completions", h.base);
	q = chat_req("gpt-nonexistent", NULL, "hi", NULL);
	simh_request("POST", url, q, good, 10, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
			    "model_not_found");
	simh_resp_free(&r);
	free(q);
	simh_request("POST", url, "{\"model\": \"sim-small\", \"messages\": [", good, 10, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "error"), "type")),
			    "invalid_request_error");
	simh_resp_free(&r);
	simh_request("POST", url, "{\"model\": \"sim-small\"}", good, 10, &r);
	assert_int_equal(r.status, 400);
	simh_resp_free(&r);
	snprintf(url, sizeof(url), "%s/nothing/here", h.base);
	simh_request("POST", url, "{}", good, 10, &r);
	assert_int_equal(r.status, 404);
	assert_non_null(json_object_get(r.json, "error"));
	simh_resp_free(&r);
	snprintf(url, sizeof(url), "%s/models", h.base);
	simh_request("GET", url, NULL, good, 10, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "data")), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "owned_by")),
			    "hark-llm-sim");
	simh_resp_free(&r);
	/* a body over 32 MiB */
	{
		size_t n = ((size_t)32 << 20) + 100;
		char *big = malloc(n + 1);
		memset(big, 'a', n);
		big[n] = '\0';
		memcpy(big, "{\"x\":\"", 6);
		snprintf(url, sizeof(url), "%s/chat/completions", h.base);
		simh_request("POST", url, big, good, 60, &r);
		assert_int_equal(r.status, 413);
		simh_resp_free(&r);
		free(big);
	}
	assert_int_equal(simh_stop(&h), 0);
}

static void test_startup(void **state)
{
	struct simh h;
	const char *bad_opt[] = {"--bogus", "1", NULL};

	(void)state;
	SKIP_WITHOUT_SIM();
	/* an unknown config member refuses to start (exit 2) */
	assert_int_equal(simh_start(&h, "{\"models\":[{\"name\":\"m\",\"rpmm\":3}]}", 1, NULL, NULL), -1);
	simh_stop(&h);
	assert_int_equal(simh_start(&h, "{\"latency\":{\"dist\":\"gamma\"}}", 1, NULL, NULL), -1);
	simh_stop(&h);
	assert_int_equal(simh_start(&h, NULL, 1, NULL, bad_opt), -1);
	simh_stop(&h);
	{
		char cmd[1024];
		snprintf(cmd, sizeof(cmd),
			 "echo '{\"faults\":{\"p_500\":0.1,\"p_nope\":1}}' > /tmp/hark-sim-badcfg.json; "
			 "'%s' --config /tmp/hark-sim-badcfg.json >/dev/null 2>&1; e=$?; "
			 "rm -f /tmp/hark-sim-badcfg.json; exit $e",
			 simh_bin());
		int st = system(cmd);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 2);
	}
	/* a good start prints the listening line and exits 0 on SIGTERM */
	assert_int_equal(simh_start(&h, "{\"latency\":{\"dist\":\"lognormal\",\"median_s\":2,"
				     "\"sigma\":0.5},\"faults\":{\"p_500\":0}}",
				     1, NULL, NULL),
			 0);
	{
		FILE *f;
		char line[256] = "";
		simh_sleep_ms(50);
		f = fopen(h.out_path, "r");
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		assert_true(strncmp(line, "hark-llm-sim listening on 127.0.0.1:", 36) == 0);
		assert_int_equal(atoi(line + 36), h.port);
	}
	assert_int_equal(simh_stop(&h), 0);
	assert_int_equal(h.exit_status, 0);
}

/* ---- embeddings ------------------------------------------------------------------------ */

static double cosine(const json_t *a, const json_t *b)
{
	double dot = 0;
	size_t i;
	const json_t *x;

	json_array_foreach(a, i, x)
		dot += json_number_value(x) * json_number_value(json_array_get(b, i));
	return dot;
}

static void test_embeddings(void **state)
{
	struct simh h;
	struct simh_resp r;
	const char *inputs[] = {
		"The quarterly budget review is scheduled for next Tuesday with the finance team.",
		"Next Tuesday the finance team holds the quarterly budget review.",
		"Penguins huddle together on the ice to survive the Antarctic winter.",
	};
	char body[1024];
	json_t *data;
	double norm = 0;
	size_t i;
	json_t *x;
	long want_tokens = 0;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, NULL, 1, NULL, NULL), 0);
	snprintf(body, sizeof(body), "{\"model\":\"sim-embed\",\"input\":[\"%s\",\"%s\",\"%s\"]}",
		 inputs[0], inputs[1], inputs[2]);
	assert_int_equal(simh_post(&h, "/embeddings", body, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "object")), "list");
	data = json_object_get(r.json, "data");
	assert_int_equal(json_array_size(data), 3);
	for (i = 0; i < 3; i++) {
		json_t *e = json_object_get(json_array_get(data, i), "embedding");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(data, i), "index")), i);
		assert_int_equal(json_array_size(e), 256);
		want_tokens += (long)hark_llm_tokens_count(inputs[i], strlen(inputs[i]));
	}
	json_array_foreach(json_object_get(json_array_get(data, 0), "embedding"), i, x)
		norm += json_number_value(x) * json_number_value(x);
	assert_true(fabs(norm - 1.0) < 1e-4);
	{
		json_t *e0 = json_object_get(json_array_get(data, 0), "embedding");
		json_t *e1 = json_object_get(json_array_get(data, 1), "embedding");
		json_t *e2 = json_object_get(json_array_get(data, 2), "embedding");
		double sim = cosine(e0, e1), unrel = cosine(e0, e2);
		assert_true(sim > 0.5);
		assert_true(sim > unrel + 0.3);
	}
	assert_int_equal(usage_of(r.json, "prompt_tokens"), want_tokens);
	assert_int_equal(usage_of(r.json, "total_tokens"), want_tokens);
	simh_resp_free(&r);

	/* dimensions, a single string input, and the limits */
	assert_int_equal(simh_post(&h, "/embeddings",
				   "{\"model\":\"sim-embed\",\"input\":\"hello world\",\"dimensions\":64}", &r),
			 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(r.json, "data"), 0),
							 "embedding")),
			 64);
	simh_resp_free(&r);
	assert_int_equal(simh_post(&h, "/embeddings",
				   "{\"model\":\"sim-embed\",\"input\":\"x\",\"dimensions\":1000}", &r),
			 0);
	assert_int_equal(r.status, 400);
	simh_resp_free(&r);
	assert_int_equal(simh_post(&h, "/embeddings", "{\"model\":\"sim-small\",\"input\":\"x\"}", &r), 0);
	assert_int_equal(r.status, 400);
	simh_resp_free(&r);
	/* base64: 4 bytes per dimension */
	assert_int_equal(simh_post(&h, "/embeddings",
				   "{\"model\":\"sim-embed\",\"input\":\"x y\",\"dimensions\":30,"
				   "\"encoding_format\":\"base64\"}",
				   &r),
			 0);
	assert_int_equal(r.status, 200);
	{
		const char *b64 = json_string_value(json_object_get(json_array_get(json_object_get(r.json, "data"), 0),
								    "embedding"));
		assert_non_null(b64);
		assert_int_equal(strlen(b64), (30 * 4 + 2) / 3 * 4);
	}
	simh_resp_free(&r);
	assert_int_equal(simh_stop(&h), 0);
}

/* ---- stats vs log vs client --------------------------------------------------------------- */

static void test_stats_log_agree(void **state)
{
	struct simh h;
	struct simh_resp r[8];
	const char *users[8] = {
		"Normal one.",
		"Normal two, longer. It has two sentences.",
		"Spoiled. [[sim:bad_json]]",
		"Cut. [[sim:truncate]]",
		"Unavailable. [[sim:fail status=503]]",
		"Unknown model.",
		"Limited.",
		"Limited again.",
	};
	const char *models[8] = {"sim-small", "sim-large", "sim-small", "sim-small",
				 "sim-small", "nope",      "one",       "one"};
	long p_sum = 0, c_sum = 0;
	json_t *log, *st;
	size_t i;

	(void)state;
	SKIP_WITHOUT_SIM();
	assert_int_equal(simh_start(&h, "{\"models\":[{\"name\":\"sim-small\"},{\"name\":\"sim-large\"},"
				     "{\"name\":\"one\",\"rpm\":1}]}",
				     1, NULL, NULL),
			 0);
	for (i = 0; i < 8; i++) {
		char *q = chat_req(models[i], NULL, users[i], NULL);
		chat(&h, q, &r[i]);
		free(q);
		/* what the client got whole with a usage object */
		if (r[i].status == 200 && r[i].curl_rc == 0 && r[i].json) {
			p_sum += usage_of(r[i].json, "prompt_tokens");
			c_sum += usage_of(r[i].json, "completion_tokens");
		}
	}
	assert_int_equal(r[5].status, 404);
	assert_int_equal(r[7].status, 429);
	st = simh_stats(&h);
	log = simh_read_log(&h);
	assert_non_null(st);
	assert_non_null(log);
	assert_int_equal(json_integer_value(json_object_get(st, "requests")), 8);
	assert_int_equal(json_array_size(log), 8);
	assert_int_equal(usage_of(st, "prompt_tokens"), p_sum);
	assert_int_equal(usage_of(st, "completion_tokens"), c_sum);
	assert_int_equal(usage_of(st, "total_tokens"), p_sum + c_sum);
	{
		json_t *bs = json_object_get(st, "by_status");
		assert_int_equal(json_integer_value(json_object_get(bs, "200")), 5);
		assert_int_equal(json_integer_value(json_object_get(bs, "503")), 1);
		assert_int_equal(json_integer_value(json_object_get(bs, "404")), 1);
		assert_int_equal(json_integer_value(json_object_get(bs, "429")), 1);
		assert_int_equal(json_integer_value(json_object_get(
					 json_object_get(json_object_get(st, "models"), "sim-small"),
					 "requests")),
				 4);
	}
	/* each response matches its log line */
	for (i = 0; i < 8; i++) {
		json_t *l = log_line_for(log, &r[i]);
		assert_non_null(l);
		assert_int_equal(json_integer_value(json_object_get(l, "status")), r[i].status);
		if (r[i].status == 200 && r[i].json &&
		    !strcmp(json_string_value(json_object_get(l, "fault")), "none")) {
			assert_int_equal(json_integer_value(json_object_get(l, "prompt_tokens")),
					 usage_of(r[i].json, "prompt_tokens"));
			assert_int_equal(json_integer_value(json_object_get(l, "completion_tokens")),
					 usage_of(r[i].json, "completion_tokens"));
			assert_int_equal(json_integer_value(json_object_get(l, "counted_tokens")),
					 usage_of(r[i].json, "total_tokens"));
		}
		simh_resp_free(&r[i]);
	}
	json_decref(log);
	json_decref(st);
	assert_int_equal(simh_stop(&h), 0);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

#define N_CONC 300

struct cbuf {
	char *p;
	size_t n;
};

static size_t cb_write(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct cbuf *b = user;
	size_t n = size * nmemb;
	char *np = realloc(b->p, b->n + n + 1);

	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static void test_concurrent(void **state)
{
	struct simh h;
	CURLM *m;
	CURL *e[N_CONC];
	struct cbuf bufs[N_CONC];
	char *bodies[N_CONC];
	struct curl_slist *hdr = NULL;
	char url[160];
	int running = 0, ok = 0;
	double t0;
	json_t *st;

	(void)state;
	SKIP_WITHOUT_SIM();
	/* 20 sim s of latency = 1 real s: every request is in flight at once */
	assert_int_equal(simh_start(&h, "{\"latency\":{\"dist\":\"uniform\",\"min_s\":18,\"max_s\":22}}",
				    20, NULL, NULL),
			 0);
	snprintf(url, sizeof(url), "%s/chat/completions", h.base);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	m = curl_multi_init();
	for (int i = 0; i < N_CONC; i++) {
		char user[128];
		snprintf(user, sizeof(user), "Request number %d. Please answer it.", i);
		bodies[i] = chat_req(i % 2 ? "sim-small" : "sim-large", NULL, user,
				     i % 3 == 0 ? "{\"stream\":true}" : NULL);
		memset(&bufs[i], 0, sizeof(bufs[i]));
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, cb_write);
		curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &bufs[i]);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
		curl_multi_add_handle(m, e[i]);
	}
	t0 = simh_now();
	do {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running && simh_now() - t0 < 90);
	for (int i = 0; i < N_CONC; i++) {
		long code = 0;
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &code);
		if (code == 200 && bufs[i].p &&
		    (i % 3 == 0 ? strstr(bufs[i].p, "data: [DONE]") != NULL
				: strstr(bufs[i].p, "\"usage\"") != NULL))
			ok++;
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
		free(bufs[i].p);
		free(bodies[i]);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	assert_int_equal(ok, N_CONC);
	st = simh_stats(&h);
	assert_int_equal(json_integer_value(json_object_get(st, "requests")), N_CONC);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "by_status"), "200")),
			 N_CONC);
	fprintf(stderr, "concurrent: %d requests in %.2f s, max in flight %lld\n", N_CONC,
		simh_now() - t0, (long long)json_integer_value(json_object_get(st, "max_in_flight")));
	assert_true(json_integer_value(json_object_get(st, "max_in_flight")) >= N_CONC / 2);
	assert_int_equal(json_integer_value(json_object_get(st, "in_flight")), 0);
	json_decref(st);
	assert_int_equal(simh_stop(&h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_exact),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_schema_instance),
		cmocka_unit_test(test_max_tokens_cut),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_directive_fail),
		cmocka_unit_test(test_directive_content_faults),
		cmocka_unit_test(test_directive_timeout_delay),
		cmocka_unit_test(test_random_faults),
		cmocka_unit_test(test_fail_recover),
		cmocka_unit_test(test_auth_and_errors),
		cmocka_unit_test(test_startup),
		cmocka_unit_test(test_embeddings),
		cmocka_unit_test(test_stats_log_agree),
		cmocka_unit_test(test_concurrent),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
