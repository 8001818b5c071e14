/*
 * Job options: every field parses and validates (unknown fields, bad types
 * and out-of-range values are rejected with the field named), form fields
 * map onto the same fields, the canonical text is stable whatever the input
 * key order and round-trips through the parser, and the dedup key ignores
 * priority, formats and webhook but changes with content, type, language,
 * model and the other result-affecting options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hark/transcribe.h"
#include "jobs/options.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int parse(const char *json, struct hark_job_options *o, char *err, size_t errlen)
{
	*o = hark_job_options_default();
	err[0] = '\0';
	return hark_job_options_parse(json, json ? strlen(json) : 0, o, err, errlen);
}

static void expect_invalid(const char *json, const char *needle)
{
	struct hark_job_options o;
	char err[256];
	int rc = parse(json, &o, err, sizeof(err));

	if (rc != HARK_ERR_INVALID_ARG || !strstr(err, needle))
		fail_msg("%s: rc %d, err \"%s\" (wanted \"%s\")", json, rc, err, needle);
	hark_job_options_clear(&o);
}

static void test_defaults(void **state)
{
	struct hark_job_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, sizeof(err)), HARK_OK);
	assert_string_equal(o.engine, "auto");
	assert_string_equal(o.model, "");
	assert_string_equal(o.language, "");
	assert_null(o.prompt);
	assert_null(o.webhook);
	assert_true(o.temperature == 0.0);
	assert_int_equal(o.translate, 0);
	assert_int_equal(o.beam_size, 0);
	assert_int_equal(o.word_timestamps, 1);
	assert_int_equal(o.priority, HARK_PRIO_NORMAL);
	assert_int_equal(o.formats, (1u << HARK_FORMAT_TXT) | (1u << HARK_FORMAT_JSON) |
					    (1u << HARK_FORMAT_SRT) | (1u << HARK_FORMAT_VTT));
	assert_int_equal(parse("  \n", &o, err, sizeof(err)), HARK_OK);
	assert_int_equal(parse("{}", &o, err, sizeof(err)), HARK_OK);
	assert_string_equal(o.engine, "auto");
	hark_job_options_clear(&o);
}

static void test_valid_fields(void **state)
{
	struct hark_job_options o;
	char err[256];
	const char *json =
		"{\"engine\":\"whisper\",\"model\":\"base.en-q5_1\",\"language\":\"DE\","
		"\"prompt\":\"Glossary: hark\",\"temperature\":0.4,\"translate\":true,"
		"\"beam_size\":8,\"word_timestamps\":false,\"formats\":[\"srt\",\"json\"],"
		"\"priority\":\"batch\",\"webhook\":\"https://example.com/hook?x=1\"}";

	(void)state;
	assert_int_equal(parse(json, &o, err, sizeof(err)), HARK_OK);
	assert_string_equal(o.engine, "whisper");
	assert_string_equal(o.model, "base.en-q5_1");
	assert_string_equal(o.language, "de");
	assert_string_equal(o.prompt, "Glossary: hark");
	assert_true(o.temperature > 0.399 && o.temperature < 0.401);
	assert_int_equal(o.translate, 1);
	assert_int_equal(o.beam_size, 8);
	assert_int_equal(o.word_timestamps, 0);
	assert_int_equal(o.formats, (1u << HARK_FORMAT_SRT) | (1u << HARK_FORMAT_JSON));
	assert_int_equal(o.priority, HARK_PRIO_BATCH);
	assert_string_equal(o.webhook, "https://example.com/hook?x=1");
	hark_job_options_clear(&o);
	assert_null(o.prompt);
	assert_null(o.webhook);

	/* Integers are numbers too; "auto" language; null prompt/webhook. */
	assert_int_equal(parse("{\"temperature\":1,\"language\":\"auto\",\"prompt\":null,"
			       "\"webhook\":null,\"engine\":\"pocketsphinx\"}", &o, err, sizeof(err)),
			 HARK_OK);
	assert_true(o.temperature == 1.0);
	assert_string_equal(o.language, "auto");
	assert_string_equal(o.engine, "pocketsphinx");
	hark_job_options_clear(&o);
}

static void test_invalid_fields(void **state)
{
	struct hark_job_options o;
	char err[256];

	(void)state;
	expect_invalid("{\"langauge\":\"en\"}", "options.langauge");
	expect_invalid("{\"engine\":\"vosk\"}", "options.engine");
	expect_invalid("{\"engine\":3}", "options.engine");
	expect_invalid("{\"model\":\"../etc/passwd\"}", "options.model");
	expect_invalid("{\"model\":\"/abs/ggml.bin\"}", "options.model");
	expect_invalid("{\"model\":\"a/b\"}", "options.model");
	expect_invalid("{\"model\":\"tiny..en\"}", "options.model");
	expect_invalid("{\"model\":\"tiny en\"}", "options.model");
	expect_invalid("{\"language\":\"english\"}", "options.language");
	expect_invalid("{\"language\":\"e1\"}", "options.language");
	expect_invalid("{\"temperature\":1.5}", "options.temperature");
	expect_invalid("{\"temperature\":-0.1}", "options.temperature");
	expect_invalid("{\"temperature\":\"0.2\"}", "options.temperature");
	expect_invalid("{\"translate\":1}", "options.translate");
	expect_invalid("{\"word_timestamps\":\"yes\"}", "options.word_timestamps");
	expect_invalid("{\"beam_size\":17}", "options.beam_size");
	expect_invalid("{\"beam_size\":2.5}", "options.beam_size");
	expect_invalid("{\"formats\":[]}", "options.formats");
	expect_invalid("{\"formats\":[\"pdf\"]}", "options.formats");
	expect_invalid("{\"formats\":\"json\"}", "options.formats");
	expect_invalid("{\"priority\":\"urgent\"}", "options.priority");
	expect_invalid("{\"webhook\":\"ftp://example.com/\"}", "options.webhook");
	expect_invalid("{\"webhook\":\"file:///etc/passwd\"}", "options.webhook");
	expect_invalid("{\"webhook\":\"http:///nohost\"}", "options.webhook");
	expect_invalid("{\"webhook\":\"http://a b/\"}", "options.webhook");

	char *big = malloc(5000 + 32);
	assert_non_null(big);
	strcpy(big, "{\"prompt\":\"");
	memset(big + strlen(big), 'x', 5000);
	strcpy(big + 11 + 5000, "\"}");
	expect_invalid(big, "options.prompt");
	free(big);

	/* Not an object / not JSON / duplicate keys: format errors. */
	assert_int_equal(parse("[1,2]", &o, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_int_equal(parse("{\"engine\":", &o, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_int_equal(parse("{\"model\":\"a\",\"model\":\"b\"}", &o, err, sizeof(err)),
			 HARK_ERR_FORMAT);
	hark_job_options_clear(&o);
}

/* A failed parse leaves the previous values untouched. */
static void test_parse_atomic(void **state)
{
	struct hark_job_options o = hark_job_options_default();
	char err[256];
	const char *j1 = "{\"prompt\":\"keep\",\"language\":\"fr\"}";
	const char *j2 = "{\"prompt\":\"changed\",\"language\":\"xx1\"}";

	(void)state;
	assert_int_equal(hark_job_options_parse(j1, strlen(j1), &o, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_job_options_parse(j2, strlen(j2), &o, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_string_equal(o.prompt, "keep");
	assert_string_equal(o.language, "fr");
	hark_job_options_clear(&o);
}

static void test_set_fields(void **state)
{
	struct hark_job_options o = hark_job_options_default();
	char err[256];

	(void)state;
	assert_int_equal(hark_job_options_set(&o, "temperature", "0.2", err, sizeof(err)), HARK_OK);
	assert_true(o.temperature > 0.199 && o.temperature < 0.201);
	assert_int_equal(hark_job_options_set(&o, "translate", "true", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.translate, 1);
	assert_int_equal(hark_job_options_set(&o, "word_timestamps", "0", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.word_timestamps, 0);
	assert_int_equal(hark_job_options_set(&o, "formats", "json, srt", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.formats, (1u << HARK_FORMAT_JSON) | (1u << HARK_FORMAT_SRT));
	assert_int_equal(hark_job_options_set(&o, "formats", "[\"vtt\"]", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.formats, 1u << HARK_FORMAT_VTT);
	assert_int_equal(hark_job_options_set(&o, "beam_size", "4", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.beam_size, 4);
	assert_int_equal(hark_job_options_set(&o, "priority", "realtime", err, sizeof(err)), HARK_OK);
	assert_int_equal(o.priority, HARK_PRIO_REALTIME);
	assert_int_equal(hark_job_options_set(&o, "prompt", "hello", err, sizeof(err)), HARK_OK);
	assert_string_equal(o.prompt, "hello");
	assert_int_equal(hark_job_options_set(&o, "webhook", "http://127.0.0.1:9/x", err, sizeof(err)),
			 HARK_OK);
	assert_string_equal(o.webhook, "http://127.0.0.1:9/x");
	assert_int_equal(hark_job_options_set(&o, "model", "tiny.en", err, sizeof(err)), HARK_OK);
	assert_string_equal(o.model, "tiny.en");

	assert_int_equal(hark_job_options_set(&o, "temperature", "0.2x", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "options.temperature"));
	assert_int_equal(hark_job_options_set(&o, "translate", "maybe", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_job_options_set(&o, "formats", "json,,srt", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_job_options_set(&o, "formats", "json,doc", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_job_options_set(&o, "beam_size", "", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_job_options_set(&o, "model", "x/y", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_job_options_set(&o, "colour", "red", err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "options.colour"));
	/* Failed sets left the values alone. */
	assert_true(o.temperature > 0.199 && o.temperature < 0.201);
	assert_string_equal(o.model, "tiny.en");
	hark_job_options_clear(&o);
}

static void test_canonical(void **state)
{
	struct hark_job_options a, b, c;
	char err[256];
	char *ta, *tb, *tc;
	json_t *root;
	const char *prev = NULL, *key;
	json_t *v;

	(void)state;
	assert_int_equal(parse("{\"language\":\"en\",\"priority\":\"high\",\"formats\":[\"vtt\",\"json\"],"
			       "\"temperature\":0.2,\"prompt\":\"p\"}", &a, err, sizeof(err)), HARK_OK);
	assert_int_equal(parse("{\"prompt\":\"p\",\"temperature\":0.2,\"formats\":[\"json\",\"vtt\"],"
			       "\"priority\":\"high\",\"language\":\"EN\"}", &b, err, sizeof(err)), HARK_OK);
	ta = hark_job_options_canonical(&a);
	tb = hark_job_options_canonical(&b);
	assert_non_null(ta);
	assert_non_null(tb);
	assert_string_equal(ta, tb);
	assert_null(strchr(ta, ' '));
	assert_null(strchr(ta, '\n'));
	assert_non_null(strstr(ta, "\"temperature\":0.2"));

	/* Keys are sorted and every field is present. */
	root = json_loads(ta, 0, NULL);
	assert_non_null(root);
	assert_int_equal(json_object_size(root), 11);
	json_object_foreach(root, key, v) {
		if (prev)
			assert_true(strcmp(prev, key) < 0);
		prev = key;
	}
	json_decref(root);

	/* Round trip: the canonical text parses back to the same canonical text. */
	assert_int_equal(parse(ta, &c, err, sizeof(err)), HARK_OK);
	tc = hark_job_options_canonical(&c);
	assert_string_equal(ta, tc);
	assert_string_equal(c.prompt, "p");
	assert_int_equal(c.priority, HARK_PRIO_HIGH);
	free(tc);

	/* A default object round-trips too (null prompt and webhook). */
	hark_job_options_clear(&c);
	tc = hark_job_options_canonical(&c);
	assert_non_null(strstr(tc, "\"webhook\":null"));
	hark_job_options_clear(&c);
	assert_int_equal(parse(tc, &c, err, sizeof(err)), HARK_OK);
	free(tc);

	free(ta);
	free(tb);
	hark_job_options_clear(&a);
	hark_job_options_clear(&b);
	hark_job_options_clear(&c);
}

static void key_of(const char *json, const char *type, const char *sha, char key[HARK_SHA_HEX_LEN])
{
	struct hark_job_options o;
	char err[256];

	if (parse(json, &o, err, sizeof(err)) != HARK_OK)
		fail_msg("%s: %s", json, err);
	hark_job_options_dedup_key(&o, type, sha, key);
	assert_int_equal(strlen(key), 64);
	hark_job_options_clear(&o);
}

static void test_dedup_key(void **state)
{
	char base[HARK_SHA_HEX_LEN], k[HARK_SHA_HEX_LEN];
	static const char *const same[] = {
		"{\"priority\":\"realtime\"}",
		"{\"webhook\":\"https://example.com/h\"}",
		"{\"formats\":[\"txt\"]}",
		"{\"priority\":\"batch\",\"formats\":[\"srt\",\"vtt\"],\"webhook\":\"http://x/\"}",
	};
	static const char *const differ[] = {
		"{\"language\":\"de\"}",
		"{\"model\":\"tiny.en\"}",
		"{\"engine\":\"whisper\"}",
		"{\"prompt\":\"names\"}",
		"{\"temperature\":0.5}",
		"{\"translate\":true}",
		"{\"beam_size\":3}",
		"{\"word_timestamps\":false}",
	};

	(void)state;
	key_of("{}", "transcribe", SHA_A, base);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		key_of(same[i], "transcribe", SHA_A, k);
		if (strcmp(k, base) != 0)
			fail_msg("dedup key changed with %s", same[i]);
	}
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		key_of(differ[i], "transcribe", SHA_A, k);
		if (strcmp(k, base) == 0)
			fail_msg("dedup key did not change with %s", differ[i]);
	}
	key_of("{}", "transcribe", SHA_B, k);
	assert_string_not_equal(k, base);
	key_of("{}", "transcript", SHA_A, k);
	assert_string_not_equal(k, base);
	/* Deterministic. */
	key_of("{}", "transcribe", SHA_A, k);
	assert_string_equal(k, base);
	for (int i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", base[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_valid_fields),
		cmocka_unit_test(test_invalid_fields),
		cmocka_unit_test(test_parse_atomic),
		cmocka_unit_test(test_set_fields),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_dedup_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
