/*
 * Unit tests for structured-output checking (src/llm/schema): every
 * supported keyword accepting a valid value and rejecting an invalid one
 * with the exact JSON pointer in the message, nested arrays of objects,
 * anyOf, local $ref including a recursive schema, compile-time rejection of
 * unsupported keywords and malformed schemas, json_extract on bare, fenced,
 * prose-wrapped and truncated replies and on strings holding braces and
 * escaped quotes, canonical text (key order, equal values, numbers), and
 * inputs nested 10000 deep (no stack overflow anywhere).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hark/hark.h"
#include "llm/schema.h"

static struct hark_llm_schema *compile_ok(const char *text)
{
	struct hark_llm_schema *s = NULL;
	char err[512] = "";
	int rc = hark_llm_schema_compile(text, &s, err, sizeof(err));

	if (rc)
		print_error("compile failed (%d): %s\nschema: %s\n", rc, err, text);
	assert_int_equal(rc, HARK_OK);
	assert_non_null(s);
	return s;
}

/* Validates instance text against s; want_msg NULL = must be valid, else the
 * exact error message. */
static void check(const struct hark_llm_schema *s, const char *instance, const char *want_msg)
{
	json_error_t jerr;
	json_t *v = json_loads(instance, JSON_DECODE_ANY, &jerr);
	char err[512] = "";
	int rc;

	if (!v)
		print_error("bad test instance %s: %s\n", instance, jerr.text);
	assert_non_null(v);
	rc = hark_llm_schema_validate(s, v, err, sizeof(err));
	if (!want_msg) {
		if (rc)
			print_error("%s: unexpected violation: %s\n", instance, err);
		assert_int_equal(rc, HARK_OK);
	} else {
		if (rc != HARK_ERR_FORMAT || strcmp(err, want_msg) != 0)
			print_error("%s:\n  got  %d \"%s\"\n  want \"%s\"\n", instance, rc, err,
				    want_msg);
		assert_int_equal(rc, HARK_ERR_FORMAT);
		assert_string_equal(err, want_msg);
	}
	json_decref(v);
}

static void test_keywords(void **state)
{
	struct hark_llm_schema *s;

	(void)state;
	s = compile_ok("{\"type\": \"object\","
		       " \"properties\": {"
		       "  \"s\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 4},"
		       "  \"n\": {\"type\": \"number\", \"minimum\": -1.5, \"maximum\": 10},"
		       "  \"i\": {\"type\": \"integer\"},"
		       "  \"b\": {\"type\": \"boolean\"},"
		       "  \"z\": {\"type\": \"null\"},"
		       "  \"sn\": {\"type\": [\"string\", \"null\"]},"
		       "  \"e\": {\"enum\": [\"red\", \"green\", 3, null]},"
		       "  \"c\": {\"const\": {\"k\": [1, 2]}},"
		       "  \"a\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"},"
		       "        \"minItems\": 1, \"maxItems\": 3},"
		       "  \"o\": {\"type\": \"object\","
		       "        \"additionalProperties\": {\"type\": \"number\"}},"
		       "  \"a/b~c\": {\"type\": \"string\"}"
		       " },"
		       " \"required\": [\"s\"],"
		       " \"additionalProperties\": false,"
		       " \"title\": \"t\", \"description\": \"annotations are allowed\"}");
	/* valid */
	check(s, "{\"s\": \"ab\"}", NULL);
	check(s, "{\"s\": \"abcd\", \"n\": -1.5, \"i\": 3, \"b\": false, \"z\": null, \"sn\": null,"
		 " \"e\": \"green\", \"c\": {\"k\": [1, 2.0]}, \"a\": [1, 2, 3],"
		 " \"o\": {\"x\": 1.5},"
		 " \"a/b~c\": \"ok\"}",
	      NULL);
	/* 4 code points, 8 bytes */
	check(s, "{\"s\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL);
	check(s, "{\"s\": \"ab\", \"i\": 4.0, \"n\": 10, \"e\": 3.0, \"sn\": \"x\"}", NULL);
	check(s, "{\"s\": \"ab\", \"e\": null}", NULL);
	/* type */
	check(s, "[1]", "(root): expected object, got array");
	check(s, "{\"s\": 5}", "/s: expected string, got integer");
	check(s, "{\"s\": \"ab\", \"n\": \"5\"}", "/n: expected number, got string");
	check(s, "{\"s\": \"ab\", \"i\": 2.5}", "/i: expected integer, got number");
	check(s, "{\"s\": \"ab\", \"b\": 0}", "/b: expected boolean, got integer");
	check(s, "{\"s\": \"ab\", \"z\": false}", "/z: expected null, got boolean");
	check(s, "{\"s\": \"ab\", \"sn\": 1}", "/sn: expected string or null, got integer");
	/* required, additionalProperties */
	check(s, "{\"n\": 1}", "(root): missing required property \"s\"");
	check(s, "{\"s\": \"ab\", \"extra\": 1}",
	      "/extra: property not allowed (additionalProperties is false)");
	check(s, "{\"s\": \"ab\", \"o\": {\"x\": 1, \"y\": \"no\"}}",
	      "/o/y: expected number, got string");
	/* pointer escaping of "/" and "~" */
	check(s, "{\"s\": \"ab\", \"a/b~c\": 1}", "/a~1b~0c: expected string, got integer");
	/* string lengths in code points */
	check(s, "{\"s\": \"a\"}", "/s: string shorter than 2 characters (has 1)");
	check(s, "{\"s\": \"abcde\"}", "/s: string longer than 4 characters (has 5)");
	check(s, "{\"s\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
	      "/s: string longer than 4 characters (has 5)");
	/* minimum, maximum */
	check(s, "{\"s\": \"ab\", \"n\": -2}", "/n: -2 is less than the minimum -1.5");
	check(s, "{\"s\": \"ab\", \"n\": 10.5}", "/n: 10.5 is greater than the maximum 10");
	check(s, "{\"s\": \"ab\", \"n\": 10.1}", "/n: 10.1 is greater than the maximum 10");
	/* enum, const */
	check(s, "{\"s\": \"ab\", \"e\": \"blue\"}", "/e: \"blue\" is not one of the enum values");
	check(s, "{\"s\": \"ab\", \"e\": 4}", "/e: value is not one of the enum values");
	check(s, "{\"s\": \"ab\", \"c\": {\"k\": [1, 3]}}",
	      "/c: value does not equal the schema's const");
	check(s, "{\"s\": \"ab\", \"c\": {\"k\": [1, 2], \"j\": 0}}",
	      "/c: value does not equal the schema's const");
	/* items, minItems, maxItems */
	check(s, "{\"s\": \"ab\", \"a\": []}", "/a: expected at least 1 items, got 0");
	check(s, "{\"s\": \"ab\", \"a\": [1, 2, 3, 4]}", "/a: expected at most 3 items, got 4");
	check(s, "{\"s\": \"ab\", \"a\": [1, \"x\"]}", "/a/1: expected integer, got string");
	hark_llm_schema_free(s);

	/* a schema with no constraints accepts anything; `false` accepts nothing */
	s = compile_ok("{}");
	check(s, "[1, {\"a\": null}]", NULL);
	check(s, "3", NULL);
	hark_llm_schema_free(s);
	s = compile_ok("{\"properties\": {\"never\": false, \"any\": true}}");
	check(s, "{\"any\": [1]}", NULL);
	check(s, "{\"never\": 1}", "/never: no value is allowed here");
	hark_llm_schema_free(s);
}

static const char *entities_schema =
	"{\"type\": \"object\", \"required\": [\"entities\"], \"additionalProperties\": false,"
	" \"properties\": {\"entities\": {\"type\": \"array\", \"items\": {"
	"   \"type\": \"object\", \"required\": [\"name\", \"mentions\"],"
	"   \"additionalProperties\": false,"
	"   \"properties\": {\"name\": {\"type\": \"string\"},"
	"     \"kind\": {\"enum\": [\"person\", \"org\"]},"
	"     \"mentions\": {\"type\": \"array\", \"items\": {"
	"       \"type\": \"object\", \"required\": [\"chunk\", \"quote\"],"
	"       \"properties\": {\"chunk\": {\"type\": \"string\"},"
	"                      \"quote\": {\"type\": \"string\", \"minLength\": 1}}}}}}}}}";

static void test_nested_arrays_of_objects(void **state)
{
	struct hark_llm_schema *s;
	const json_t *js;

	(void)state;
	s = compile_ok(entities_schema);
	js = hark_llm_schema_json(s);
	assert_non_null(js);
	assert_true(json_is_object(json_object_get(js, "properties")));
	check(s, "{\"entities\": []}", NULL);
	check(s, "{\"entities\": [{\"name\": \"Ann\", \"kind\": \"person\", \"mentions\": "
		 "[{\"chunk\": \"c1\", \"quote\": \"Ann said\"}]}, {\"name\": \"ACME\", "
		 "\"mentions\": []}]}",
	      NULL);
	check(s, "{\"entities\": [{\"name\": \"a\", \"mentions\": []}, {\"name\": \"b\", "
		 "\"mentions\": []}, {\"name\": \"c\", \"mentions\": []}, {\"name\": null, "
		 "\"mentions\": []}]}",
	      "/entities/3/name: expected string, got null");
	check(s, "{\"entities\": [{\"name\": \"a\", \"mentions\": [{\"chunk\": \"c\", \"quote\": "
		 "\"q\"}, {\"chunk\": \"c\", \"quote\": \"\"}]}]}",
	      "/entities/0/mentions/1/quote: string shorter than 1 characters (has 0)");
	check(s, "{\"entities\": [{\"name\": \"a\", \"mentions\": [{\"quote\": \"q\"}]}]}",
	      "/entities/0/mentions/0: missing required property \"chunk\"");
	check(s, "{\"entities\": [{\"name\": \"a\", \"mentions\": [], \"kind\": \"place\"}]}",
	      "/entities/0/kind: \"place\" is not one of the enum values");
	check(s, "{\"entities\": [{\"name\": \"a\", \"mentions\": [], \"age\": 3}]}",
	      "/entities/0/age: property not allowed (additionalProperties is false)");
	check(s, "{\"entities\": {}}", "/entities: expected array, got object");
	hark_llm_schema_free(s);
}

static void test_any_of(void **state)
{
	struct hark_llm_schema *s;
	char err[512];
	json_t *v;

	(void)state;
	s = compile_ok("{\"type\": \"object\", \"properties\": {\"due\": {\"anyOf\": ["
		       " {\"type\": \"null\"},"
		       " {\"type\": \"object\", \"required\": [\"date\"],"
		       "  \"properties\": {\"date\": {\"type\": \"string\","
		       "                                \"minLength\": 10}}}]}}}");
	check(s, "{\"due\": null}", NULL);
	check(s, "{\"due\": {\"date\": \"2024-01-31\"}}", NULL);
	check(s, "{}", NULL);
	/* the message names the value and the alternative that got furthest */
	check(s, "{\"due\": 5}",
	      "/due: matches no anyOf alternative (closest, #0: /due: expected null, got integer)");
	check(s, "{\"due\": {\"date\": \"soon\"}}",
	      "/due: matches no anyOf alternative (closest, #1: /due/date: string shorter than 10 "
	      "characters (has 4))");
	/* the pointer is intact after a failed alternative */
	v = json_loads("{\"due\": {\"date\": 3}}", 0, NULL);
	assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "/due/date: expected string, got integer"));
	json_decref(v);
	hark_llm_schema_free(s);
}

static void test_refs(void **state)
{
	struct hark_llm_schema *s;
	char deep[4096];
	size_t n = 0;

	(void)state;
	/* $defs and definitions */
	s = compile_ok("{\"$defs\": {\"person\": {\"type\": \"object\", \"required\": [\"name\"],"
		       " \"properties\": {\"name\": {\"type\": \"string\"}}}},"
		       " \"definitions\": {\"id\": {\"type\": \"integer\", \"minimum\": 1}},"
		       " \"type\": \"object\", \"properties\": {"
		       "  \"owner\": {\"$ref\": \"#/$defs/person\"},"
		       "  \"ids\": {\"type\": \"array\","
		       "           \"items\": {\"$ref\": \"#/definitions/id\"}}}}");
	check(s, "{\"owner\": {\"name\": \"Bo\"}, \"ids\": [1, 2]}", NULL);
	check(s, "{\"owner\": {}}", "/owner: missing required property \"name\"");
	check(s, "{\"ids\": [1, 0]}", "/ids/1: 0 is less than the minimum 1");
	hark_llm_schema_free(s);

	/* a recursive schema: a tree of nodes */
	s = compile_ok("{\"$ref\": \"#/$defs/node\", \"$defs\": {\"node\": {\"type\": \"object\","
		       " \"required\": [\"label\"], \"additionalProperties\": false,"
		       " \"properties\": {\"label\": {\"type\": \"string\"},"
		       "  \"children\": {\"type\": \"array\", \"items\": {\"$ref\": "
		       "\"#/$defs/node\"}}}}}}");
	check(s, "{\"label\": \"root\"}", NULL);
	check(s, "{\"label\": \"r\", \"children\": [{\"label\": \"a\", \"children\": [{\"label\": "
		 "\"b\"}]}, {\"label\": \"c\", \"children\": []}]}",
	      NULL);
	check(s, "{\"label\": \"r\", \"children\": [{\"label\": \"a\", \"children\": [{\"label\": "
		 "7}]}]}",
	      "/children/0/children/0/label: expected string, got integer");
	check(s, "{\"label\": \"r\", \"children\": [{\"children\": []}]}",
	      "/children/0: missing required property \"label\"");
	/* recursion through the instance stops at 64 levels, iteratively checked */
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"label\": \"x\"");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n,
				      ", \"children\": [{\"label\": \"x\"");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}]");
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}");
	/* the first container past level 64 is level 65: the object at 32 x /children/0 */
	{
		char want[512];
		size_t w = 0;

		for (int i = 0; i < 32; i++)
			w += (size_t)snprintf(want + w, sizeof(want) - w, "/children/0");
		snprintf(want + w, sizeof(want) - w, ": nesting deeper than 64 levels");
		check(s, deep, want);
	}
	hark_llm_schema_free(s);

	/* "#" refers to the whole schema */
	s = compile_ok("{\"type\": \"array\", \"items\": {\"anyOf\": [{\"type\": \"integer\"},"
		       " {\"$ref\": \"#\"}]}}");
	check(s, "[1, [2, [3, []]]]", NULL);
	{
		json_t *v = json_loads("[1, [2, [\"x\"]]]", 0, NULL);
		char err[512];

		/* each level reports the alternative that got furthest, down to the culprit */
		assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_ERR_FORMAT);
		const char *want = "/1: matches no anyOf alternative (closest, #1: /1/1: ";

		assert_true(strncmp(err, want, strlen(want)) == 0);
		assert_non_null(strstr(err, "/1/1/0: expected integer, got string"));
		json_decref(v);
	}
	hark_llm_schema_free(s);
}

struct bad_schema {
	const char *text;
	int rc;
	const char *msg;
};

static const struct bad_schema bad_schemas[] = {
	{ "{\"type\": ", HARK_ERR_FORMAT, NULL },
	{ "[]", HARK_ERR_INVALID_ARG, "(root): a schema must be a JSON object" },
	{ "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"string\", \"pattern\": "
	  "\"^a\"}}}",
	  HARK_ERR_INVALID_ARG, "/properties/x/pattern: unsupported keyword \"pattern\"" },
	{ "{\"oneOf\": [{}]}", HARK_ERR_INVALID_ARG, "/oneOf: unsupported keyword \"oneOf\"" },
	{ "{\"items\": {\"format\": \"date\"}}", HARK_ERR_INVALID_ARG,
	  "/items/format: unsupported keyword \"format\"" },
	{ "{\"type\": \"text\"}", HARK_ERR_INVALID_ARG,
	  "/type: must be a type name (string, number, integer, boolean, null, object, array) or "
	  "a non-empty array of them" },
	{ "{\"type\": []}", HARK_ERR_INVALID_ARG,
	  "/type: must be a type name (string, number, integer, boolean, null, object, array) or "
	  "a non-empty array of them" },
	{ "{\"properties\": []}", HARK_ERR_INVALID_ARG,
	  "/properties: must be an object of schemas" },
	{ "{\"properties\": {\"a\": 3}}", HARK_ERR_INVALID_ARG,
	  "/properties/a: a schema must be an object or a boolean" },
	{ "{\"required\": [1]}", HARK_ERR_INVALID_ARG,
	  "/required: must be an array of property names" },
	{ "{\"items\": [{}, {}]}", HARK_ERR_INVALID_ARG,
	  "/items: must be a schema (the array form is not supported)" },
	{ "{\"minItems\": -1}", HARK_ERR_INVALID_ARG, "/minItems: must be a non-negative integer" },
	{ "{\"maxLength\": 1.5}", HARK_ERR_INVALID_ARG,
	  "/maxLength: must be a non-negative integer" },
	{ "{\"minItems\": 3, \"maxItems\": 2}", HARK_ERR_INVALID_ARG,
	  "/maxItems: must be >= minItems" },
	{ "{\"minimum\": \"0\"}", HARK_ERR_INVALID_ARG, "/minimum: must be a number" },
	{ "{\"enum\": []}", HARK_ERR_INVALID_ARG, "/enum: must be a non-empty array" },
	{ "{\"anyOf\": []}", HARK_ERR_INVALID_ARG, "/anyOf: must be a non-empty array of schemas" },
	{ "{\"anyOf\": [{}, {\"if\": {}}]}", HARK_ERR_INVALID_ARG,
	  "/anyOf/1/if: unsupported keyword \"if\"" },
	{ "{\"$ref\": \"#/$defs/missing\"}", HARK_ERR_INVALID_ARG,
	  "/$ref: \"#/$defs/missing\": reference target does not exist" },
	{ "{\"$ref\": \"other.json#/x\"}", HARK_ERR_INVALID_ARG,
	  "/$ref: \"other.json#/x\": only local references (\"#/...\") are supported" },
	{ "{\"$ref\": 5}", HARK_ERR_INVALID_ARG, "/$ref: must be a string" },
	{ "{\"$defs\": {\"a\": {\"maxItems\": \"3\"}}}", HARK_ERR_INVALID_ARG,
	  "/$defs/a/maxItems: must be a non-negative integer" },
	/* a definition used through $ref is reported at its own path */
	{ "{\"properties\": {\"x\": {\"$ref\": \"#/$defs/a\"}}, \"$defs\": {\"a\": {\"type\": "
	  "\"object\", \"properties\": {\"y\": {\"uniqueItems\": true}}}}}",
	  HARK_ERR_INVALID_ARG,
	  "/$defs/a/properties/y/uniqueItems: unsupported keyword \"uniqueItems\"" },
	/* cycles that never descend into the instance */
	{ "{\"$ref\": \"#\"}", HARK_ERR_INVALID_ARG, NULL },
	{ "{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"anyOf\": [{\"$ref\": "
	  "\"#/$defs/a\"}]}}, \"$ref\": \"#/$defs/a\"}",
	  HARK_ERR_INVALID_ARG, NULL },
	{ "{\"type\": \"object\", \"type\": \"array\"}", HARK_ERR_FORMAT, NULL },
};

static void test_compile_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_schemas) / sizeof(bad_schemas[0]); i++) {
		struct hark_llm_schema *s = (struct hark_llm_schema *)0x1;
		char err[512] = "";
		int rc = hark_llm_schema_compile(bad_schemas[i].text, &s, err, sizeof(err));

		const char *want = bad_schemas[i].msg;

		if (rc != bad_schemas[i].rc || (want && strcmp(err, want) != 0)) {
			print_error("case %zu: %s\n  got  %d \"%s\"\n  want %d \"%s\"\n", i,
				    bad_schemas[i].text, rc, err, bad_schemas[i].rc,
				    bad_schemas[i].msg ? bad_schemas[i].msg : "(any)");
			fail();
		}
		assert_null(s);
		assert_true(err[0] != '\0');
	}
	{
		char err[512];
		struct hark_llm_schema *s = NULL;

		assert_int_equal(hark_llm_schema_compile("{\"$ref\": \"#\"}", &s, err, sizeof(err)),
				 HARK_ERR_INVALID_ARG);
		assert_non_null(strstr(err, "$ref cycle"));
	}
}

/* Extracts text; returns the canonical text of the value (heap) or NULL with err. */
static char *extract(const char *text, char *err, size_t errlen, int *rc)
{
	json_t *v = (json_t *)0x1;
	char *out = NULL;

	*rc = hark_llm_json_extract(text, strlen(text), &v, err, errlen);
	if (*rc == 0) {
		assert_non_null(v);
		out = hark_llm_json_canonical(v);
		json_decref(v);
	} else {
		assert_null(v);
	}
	return out;
}

static void expect_extract(const char *text, const char *canonical)
{
	char err[256] = "";
	int rc;
	char *got = extract(text, err, sizeof(err), &rc);

	if (rc || !got || strcmp(got, canonical))
		print_error("extract(%s):\n  got  %d %s %s\n  want %s\n", text, rc, got ? got : "-",
			    err, canonical);
	assert_int_equal(rc, HARK_OK);
	assert_string_equal(got, canonical);
	free(got);
}

static void expect_extract_fail(const char *text, const char *msg_part)
{
	char err[256] = "";
	int rc;
	char *got = extract(text, err, sizeof(err), &rc);

	if (rc != HARK_ERR_FORMAT || !strstr(err, msg_part))
		print_error("extract(%s): got %d %s, want error containing \"%s\"\n", text, rc,
			    err, msg_part);
	assert_null(got);
	assert_int_equal(rc, HARK_ERR_FORMAT);
	assert_non_null(strstr(err, msg_part));
}

static void test_extract(void **state)
{
	json_t *v = NULL;
	char err[256];

	(void)state;
	/* bare JSON, with surrounding whitespace; arrays too */
	expect_extract("{\"a\": 1, \"b\": [true, null]}", "{\"a\":1,\"b\":[true,null]}");
	expect_extract("\n\t [1, 2]\n", "[1,2]");
	/* fenced, with and without an info string, prose around */
	expect_extract("```json\n{\"a\": 1}\n```", "{\"a\":1}");
	expect_extract("Here you go:\n```\n[{\"x\": \"y\"}]\n```\nAnything else?",
		       "[{\"x\":\"y\"}]");
	expect_extract("First try:\n```json\n{\"a\": oops}\n```\nFixed:\n```JSON\n{\"a\": 2}\n```",
		       "{\"a\":2}");
	/* inside prose */
	expect_extract("Sure! The result is {\"ok\": true, \"n\": 3}. Hope this helps.",
		       "{\"n\":3,\"ok\":true}");
	expect_extract("The list: [1, 2, 3] as requested", "[1,2,3]");
	/* a balanced span that is not JSON is skipped whole */
	expect_extract("I used {curly braces} here; answer: {\"a\": [1]}", "{\"a\":[1]}");
	/* strings holding braces, brackets, escaped quotes and backslashes */
	expect_extract("Result: {\"text\": \"a } b { c ] [\", \"q\": \"say \\\"}\\\" now\","
		       " \"bs\": \"C:\\\\dir\\\\\"} done",
		       "{\"bs\":\"C:\\\\dir\\\\\",\"q\":\"say \\\"}\\\" now\","
		       "\"text\":\"a } b { c ] [\"}");
	/* the whole text is preferred over a fragment */
	expect_extract("{\"outer\": {\"inner\": 1}}", "{\"outer\":{\"inner\":1}}");
	/* non-ASCII text stays UTF-8 */
	expect_extract("{\"name\": \"Zo\xc3\xab \xe2\x82\xac\"}",
		       "{\"name\":\"Zo\xc3\xab \xe2\x82\xac\"}");

	/* truncated replies say so and never yield an inner fragment */
	expect_extract_fail("{\"items\": [{\"a\": 1}, {\"a\": 2}, {\"a\"", "truncated");
	expect_extract_fail("```json\n{\"items\": [{\"a\": 1}, {\"a\": 2}", "truncated");
	expect_extract_fail("Here: {\"text\": \"cut in the mid", "truncated: unterminated string");
	expect_extract_fail("[1, 2, 3", "unbalanced braces at end of reply");
	/* nothing there */
	expect_extract_fail("I cannot help with that.", "no JSON object or array");
	expect_extract_fail("", "no JSON object or array");
	expect_extract_fail("42", "no JSON object or array");
	expect_extract_fail("{not json} and [neither]", "no JSON value in reply parses");

	/* never reads past len: the valid object lies beyond it */
	assert_int_equal(hark_llm_json_extract("{\"a\": 1} {\"b\": 2}", 4, &v, err, sizeof(err)),
			 HARK_ERR_FORMAT);
	assert_null(v);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(hark_llm_json_extract("[1]xyz", 3, &v, err, sizeof(err)), HARK_OK);
	assert_int_equal(json_array_size(v), 1);
	json_decref(v);
	assert_int_equal(hark_llm_json_extract(NULL, 0, &v, err, sizeof(err)), HARK_ERR_FORMAT);
}

static char *canon_text(const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	char *out;

	assert_non_null(v);
	out = hark_llm_json_canonical(v);
	assert_non_null(out);
	json_decref(v);
	return out;
}

static void expect_canon(const char *json, const char *want)
{
	char *got = canon_text(json);

	if (strcmp(got, want))
		print_error("canonical(%s) = %s, want %s\n", json, got, want);
	assert_string_equal(got, want);
	free(got);
}

static void test_canonical(void **state)
{
	char *a, *b;
	json_t *v;

	(void)state;
	/* independent of key order and whitespace; equal for equal values */
	a = canon_text("{\"b\": 1, \"a\": {\"y\": [1, 2], \"x\": null}, \"c\": \"s\"}");
	b = canon_text("{ \"c\":\"s\",\n \"a\": {\"x\": null, \"y\": [1, 2.0]}, \"b\": 1.0 }");
	assert_string_equal(a, b);
	assert_string_equal(a, "{\"a\":{\"x\":null,\"y\":[1,2]},\"b\":1,\"c\":\"s\"}");
	free(a);
	free(b);
	/* different values differ (array order matters) */
	a = canon_text("{\"y\": [1, 2]}");
	b = canon_text("{\"y\": [2, 1]}");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	/* keys sorted bytewise (UTF-8 order), including prefixes */
	expect_canon("{\"ab\": 1, \"a\": 2, \"B\": 3, \"\xc3\xa9\": 4, \"\": 5}",
		     "{\"\":5,\"B\":3,\"a\":2,\"ab\":1,\"\xc3\xa9\":4}");
	/* numbers: shortest round-trip form, integral reals as integers, -0 as 0 */
	expect_canon("[0.1, 1.5, -2.0, -0.0, 1e300, 123456789012, 2.5e-8, 9007199254740993,"
		     " -9223372036854775808, 0.30000000000000004]",
		     "[0.1,1.5,-2,0,1e+300,123456789012,2.5e-08,9007199254740993,"
		     "-9223372036854775808,0.30000000000000004]");
	/* strings: escapes for quotes, backslash and control characters only */
	expect_canon("[\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\\/\"]",
		     "[\"a\\\"b\\\\c\\n\\t\\u0001\x7f/\"]");
	expect_canon("{}", "{}");
	expect_canon("[]", "[]");
	expect_canon("[[], {}, [{}]]", "[[],{},[{}]]");
	expect_canon("true", "true");
	expect_canon("\"x\"", "\"x\"");
	/* stable: the canonical text of the parsed canonical text is itself */
	a = canon_text("{\"z\": [0.1, {\"k\": 1e-7, \"j\": \"\\u00e9\"}], \"m\": -3.25e10}");
	b = canon_text(a);
	assert_string_equal(a, b);
	free(a);
	free(b);
	/* an embedded NUL in a string is kept (escaped), not cut */
	v = json_stringn("a\0b", 3);
	a = hark_llm_json_canonical(v);
	assert_string_equal(a, "\"a\\u0000b\"");
	free(a);
	json_decref(v);
	assert_null(hark_llm_json_canonical(NULL));
}

/* Builds [[[...]]] depth levels deep without recursion. */
static json_t *deep_array(int depth)
{
	json_t *root = json_array(), *cur = root;

	for (int i = 1; i < depth; i++) {
		json_t *child = json_array();

		json_array_append_new(cur, child);
		cur = child;
	}
	return root;
}

/* Frees a deep value without jansson's recursive json_delete. */
static void free_deep(json_t *v)
{
	while (v) {
		json_t *child = json_array_size(v) ? json_incref(json_array_get(v, 0)) : NULL;

		json_array_clear(v);
		json_decref(v);
		v = child;
	}
}

static void test_deep_nesting(void **state)
{
	const int depth = 10000;
	struct hark_llm_schema *s;
	char *text, *canon, err[512];
	json_t *v = NULL;
	size_t n = 0;
	int rc;

	(void)state;
	/* text nested 10000 deep: extraction fails cleanly (the parser refuses it) */
	text = malloc(2 * (size_t)depth + 1);
	assert_non_null(text);
	memset(text, '[', (size_t)depth);
	memset(text + depth, ']', (size_t)depth);
	text[2 * depth] = '\0';
	rc = hark_llm_json_extract(text, 2 * (size_t)depth, &v, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_FORMAT);
	assert_null(v);
	/* the same truncated (only openers), and object nesting in prose */
	rc = hark_llm_json_extract(text, (size_t)depth, &v, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "truncated"));
	free(text);
	text = malloc(6 * (size_t)depth + 64);
	assert_non_null(text);
	n = (size_t)sprintf(text, "Answer: ");
	for (int i = 0; i < depth; i++)
		n += (size_t)sprintf(text + n, "{\"a\":");
	n += (size_t)sprintf(text + n, "1");
	for (int i = 0; i < depth; i++)
		text[n++] = '}';
	text[n] = '\0';
	rc = hark_llm_json_extract(text, n, &v, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_FORMAT);
	assert_null(v);
	free(text);

	/* a schema text nested 10000 deep is refused by the parser; 100 deep by the compiler */
	text = malloc(40 * (size_t)depth + 64);
	assert_non_null(text);
	n = 0;
	for (int i = 0; i < depth; i++)
		n += (size_t)sprintf(text + n, "{\"items\":");
	n += (size_t)sprintf(text + n, "{}");
	for (int i = 0; i < depth; i++)
		text[n++] = '}';
	text[n] = '\0';
	s = (struct hark_llm_schema *)0x1;
	assert_int_equal(hark_llm_schema_compile(text, &s, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_null(s);
	n = 0;
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(text + n, "{\"items\":");
	n += (size_t)sprintf(text + n, "{}");
	for (int i = 0; i < 100; i++)
		text[n++] = '}';
	text[n] = '\0';
	assert_int_equal(hark_llm_schema_compile(text, &s, err, sizeof(err)), HARK_ERR_LIMIT);
	assert_non_null(strstr(err, "deeper than 64"));
	/* a chain of $defs referring to each other 200 deep */
	n = (size_t)sprintf(text, "{\"$ref\": \"#/$defs/d0\", \"$defs\": {");
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(text + n, "%s\"d%d\": {\"type\": \"array\", \"items\": "
					       "{\"$ref\": \"#/$defs/d%d\"}}",
				     i ? ", " : "", i, i + 1);
	n += (size_t)sprintf(text + n, ", \"d200\": {}}}");
	rc = hark_llm_schema_compile(text, &s, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_LIMIT);
	free(text);

	/* a value nested 10000 deep (built in memory): validation stops at 64 levels,
	 * canonical text renders it without recursion */
	v = deep_array(depth);
	s = compile_ok("{\"type\": \"array\"}");
	assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "nesting deeper than 64 levels"));
	assert_true(strncmp(err, "/0/0/0/0/", 9) == 0);
	hark_llm_schema_free(s);
	s = compile_ok("{\"$ref\": \"#/$defs/t\", \"$defs\": {\"t\": {\"type\": \"array\","
		       " \"items\": {\"$ref\": \"#/$defs/t\"}}}}");
	assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "nesting deeper than 64 levels"));
	hark_llm_schema_free(s);
	canon = hark_llm_json_canonical(v);
	assert_non_null(canon);
	assert_int_equal(strlen(canon), 2 * (size_t)depth);
	assert_int_equal(canon[depth - 1], '[');
	assert_int_equal(canon[depth], ']');
	free(canon);
	free_deep(v);

	/* exactly 64 levels is fine, 65 is not */
	s = compile_ok("{}");
	v = deep_array(64);
	assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_OK);
	free_deep(v);
	v = deep_array(65);
	assert_int_equal(hark_llm_schema_validate(s, v, err, sizeof(err)), HARK_ERR_FORMAT);
	free_deep(v);
	hark_llm_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_nested_arrays_of_objects),
		cmocka_unit_test(test_any_of),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_deep_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
