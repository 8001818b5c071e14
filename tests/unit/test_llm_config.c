/*
 * Unit tests for the LLM provider configuration (src/llm/config): a full
 * valid file with every field read back, defaults and the implicit
 * "default"/"embed" routes, each validation error with the path it must
 * name, the HARK_LLM_* environment overrides, API keys resolved from the
 * named variable (absent when unset, never echoed in an error), route and
 * model lookup, foreign top-level members ignored, and file loading (missing
 * file, directory, size cap, syntax error, $HARK_CONFIG).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hark/hark.h"
#include "llm/config.h"

static const char *const env_vars[] = {
	"HARK_CONFIG",        "HARK_LLM_BASE_URL",    "HARK_LLM_MODEL",
	"HARK_LLM_API_KEY_ENV", "HARK_LLM_API_KEY",   "HARK_LLM_TIME_SCALE",
	"HARK_LLM_CACHE_TTL_S", "HARK_LLM_MAX_ATTEMPTS", "TEST_OPENAI_KEY",
	"TEST_OTHER_KEY",     "TEST_ENV_KEY",         NULL
};

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; env_vars[i]; i++)
		unsetenv(env_vars[i]);
	return 0;
}

static const char *full_config =
	"{\n"
	"  \"listen\": \"127.0.0.1:8080\", \"workers\": 4,\n"
	"  \"providers\": [\n"
	"    {\"name\": \"openai\", \"base_url\": \"https://api.openai.com/v1/\",\n"
	"     \"api_key_env\": \"TEST_OPENAI_KEY\", \"connect_timeout_s\": 5, \"timeout_s\": 90,\n"
	"     \"idle_timeout_s\": 30.5, \"stream\": true,\n"
	"     \"models\": [\n"
	"       {\"name\": \"gpt-4o-mini\", \"rpm\": 500, \"tpm\": 1000000,\n"
	"        \"max_concurrency\": 64,\n"
	"        \"price_in\": 0.15, \"price_out\": 0.60, \"context_window\": 128000,\n"
	"        \"max_output_tokens\": 16384, \"structured\": \"json_schema\",\n"
	"        \"embedding\": false},\n"
	"       {\"name\": \"text-embedding-3-small\", \"price_in\": 0.02, \"embedding\": true},\n"
	"       {\"name\": \"shared\", \"structured\": \"json_object\"}\n"
	"     ]},\n"
	"    {\"name\": \"other\", \"base_url\": \"http://localhost:8000/v1\",\n"
	"     \"api_key_env\": null,\n"
	"     \"models\": [\n"
	"       {\"name\": \"big-model\", \"context_window\": 256, \"structured\": \"none\"},\n"
	"       {\"name\": \"shared\"}\n"
	"     ]}\n"
	"  ],\n"
	"  \"routes\": {\"extract\": [\"openai/gpt-4o-mini\", \"other/big-model\"],\n"
	"             \"embed\": [\"openai/text-embedding-3-small\"],\n"
	"             \"default\": [\"gpt-4o-mini\"]},\n"
	"  \"llm\": {\"cache_ttl_s\": 2592000, \"max_attempts\": 4, \"backoff_base_s\": 0.5,\n"
	"          \"backoff_max_s\": 20, \"breaker_failures\": 7, \"breaker_open_s\": 15,\n"
	"          \"repair_attempts\": 2, \"time_scale\": 60, \"max_response_bytes\": 1048576,\n"
	"          \"limit_window_s\": 30, \"limit_margin\": 0.05, \"embed_batch\": 32}\n"
	"}\n";

static struct hark_llm_config *parse_ok(const char *text)
{
	struct hark_llm_config *c = NULL;
	char err[512] = "";
	int rc = hark_llm_config_parse(text, &c, err, sizeof(err));

	if (rc)
		print_error("unexpected error %d: %s\n", rc, err);
	assert_int_equal(rc, HARK_OK);
	assert_non_null(c);
	return c;
}

static void test_full_file(void **state)
{
	struct hark_llm_config *c;
	const struct hark_llm_route *r;
	const struct hark_llm_model *m;

	(void)state;
	setenv("TEST_OPENAI_KEY", "sk-test-123", 1);
	c = parse_ok(full_config);

	assert_int_equal(c->n_providers, 2);
	assert_string_equal(c->providers[0].name, "openai");
	assert_string_equal(c->providers[0].base_url, "https://api.openai.com/v1");
	assert_string_equal(c->providers[0].api_key_env, "TEST_OPENAI_KEY");
	assert_string_equal(c->providers[0].api_key, "sk-test-123");
	assert_true(c->providers[0].connect_timeout_s == 5);
	assert_true(c->providers[0].timeout_s == 90);
	assert_true(c->providers[0].idle_timeout_s == 30.5);
	assert_int_equal(c->providers[0].stream, 1);
	assert_string_equal(c->providers[1].name, "other");
	assert_string_equal(c->providers[1].base_url, "http://localhost:8000/v1");
	assert_null(c->providers[1].api_key_env);
	assert_null(c->providers[1].api_key);
	assert_int_equal(c->providers[1].stream, 0);
	assert_true(c->providers[1].connect_timeout_s == 10);
	assert_true(c->providers[1].timeout_s == 120);
	assert_true(c->providers[1].idle_timeout_s == 60);

	assert_int_equal(c->n_models, 5);
	m = &c->models[0];
	assert_string_equal(m->provider, "openai");
	assert_string_equal(m->name, "gpt-4o-mini");
	assert_string_equal(m->key, "openai/gpt-4o-mini");
	assert_true(m->rpm == 500 && m->tpm == 1000000);
	assert_int_equal(m->max_concurrency, 64);
	assert_true(m->price_in == 0.15 && m->price_out == 0.60);
	assert_int_equal(m->context_window, 128000);
	assert_int_equal(m->max_output_tokens, 16384);
	assert_int_equal(m->structured, HARK_LLM_STRUCT_JSON_SCHEMA);
	assert_int_equal(m->embedding, 0);
	assert_int_equal(m->provider_index, 0);
	m = &c->models[1];
	assert_string_equal(m->key, "openai/text-embedding-3-small");
	assert_int_equal(m->embedding, 1);
	assert_true(m->price_in == 0.02);
	assert_int_equal(c->models[2].structured, HARK_LLM_STRUCT_JSON_OBJECT);
	m = &c->models[3];
	assert_string_equal(m->key, "other/big-model");
	assert_int_equal(m->provider_index, 1);
	assert_int_equal(m->context_window, 256);
	/* the default completion cap never exceeds the context window */
	assert_int_equal(m->max_output_tokens, 256);
	assert_int_equal(m->structured, HARK_LLM_STRUCT_NONE);
	assert_string_equal(c->models[4].key, "other/shared");
	assert_int_equal(c->models[4].provider_index, 1);

	assert_int_equal(c->n_routes, 3);
	r = hark_llm_config_route(c, "extract");
	assert_non_null(r);
	assert_string_equal(r->task, "extract");
	assert_int_equal(r->n_models, 2);
	assert_int_equal(r->models[0], 0);
	assert_int_equal(r->models[1], 3);
	r = hark_llm_config_route(c, "embed");
	assert_non_null(r);
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], 1);
	r = hark_llm_config_route(c, "default");
	assert_non_null(r);
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], 0);

	assert_true(c->cache_ttl_s == 2592000);
	assert_int_equal(c->max_attempts, 4);
	assert_true(c->backoff_base_s == 0.5);
	assert_true(c->backoff_max_s == 20);
	assert_int_equal(c->breaker_failures, 7);
	assert_true(c->breaker_open_s == 15);
	assert_int_equal(c->repair_attempts, 2);
	assert_true(c->time_scale == 60);
	assert_int_equal(c->max_response_bytes, 1048576);
	assert_true(c->limit_window_s == 30);
	assert_true(c->limit_margin == 0.05);
	assert_int_equal(c->embed_batch, 32);
	hark_llm_config_free(c);
}

static void test_defaults_and_implicit_routes(void **state)
{
	struct hark_llm_config *c;
	const struct hark_llm_route *r;

	(void)state;
	c = parse_ok("{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://x.example\","
		     " \"models\": [{\"name\": \"a\"}, {\"name\": \"e\", \"embedding\": true},"
		     " {\"name\": \"b\"}]}]}");
	assert_null(c->providers[0].api_key_env);
	assert_null(c->providers[0].api_key);
	assert_true(c->models[0].rpm == 0 && c->models[0].tpm == 0);
	assert_int_equal(c->models[0].max_concurrency, 16);
	assert_int_equal(c->models[0].context_window, 8192);
	assert_int_equal(c->models[0].max_output_tokens, 4096);
	assert_int_equal(c->models[0].structured, HARK_LLM_STRUCT_JSON_SCHEMA);
	assert_true(c->models[0].price_in == 0 && c->models[0].price_out == 0);
	assert_true(c->cache_ttl_s == 30.0 * 86400);
	assert_int_equal(c->max_attempts, 4);
	assert_true(c->backoff_base_s == 1 && c->backoff_max_s == 60);
	assert_int_equal(c->breaker_failures, 5);
	assert_true(c->breaker_open_s == 30);
	assert_int_equal(c->repair_attempts, 1);
	assert_true(c->time_scale == 1);
	assert_int_equal(c->max_response_bytes, 8u << 20);
	assert_true(c->limit_window_s == 60 && c->limit_margin == 0.02);
	assert_int_equal(c->embed_batch, 64);
	/* no "default" route: every chat model in file order */
	r = hark_llm_config_route(c, "default");
	assert_non_null(r);
	assert_int_equal(r->n_models, 2);
	assert_int_equal(r->models[0], 0);
	assert_int_equal(r->models[1], 2);
	/* an unknown task falls back to it */
	assert_ptr_equal(hark_llm_config_route(c, "summarize"), r);
	assert_ptr_equal(hark_llm_config_route(c, NULL), r);
	/* no "embed" route: every embedding model */
	r = hark_llm_config_route(c, "embed");
	assert_non_null(r);
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], 1);
	hark_llm_config_free(c);

	/* no providers at all is valid (offline) */
	c = parse_ok("{}");
	assert_int_equal(c->n_providers, 0);
	assert_int_equal(c->n_models, 0);
	assert_null(hark_llm_config_route(c, "extract"));
	assert_int_equal(hark_llm_config_find_model(c, "x"), -1);
	hark_llm_config_free(c);
	assert_null(hark_llm_config_route(NULL, "extract"));
	assert_int_equal(hark_llm_config_find_model(NULL, "x"), -1);
	hark_llm_config_free(NULL);
}

static void test_foreign_members_ignored(void **state)
{
	struct hark_llm_config *c;

	(void)state;
	c = parse_ok("{\"listen\": \"0.0.0.0:80\", \"workers\": 8, \"whisper\": {\"model\": 3},"
		     " \"anything\": [1, {\"x\": null}],"
		     " \"providers\": [{\"name\": \"p\", \"base_url\": \"http://h\","
		     " \"models\": [{\"name\": \"m\"}]}]}");
	assert_int_equal(c->n_providers, 1);
	assert_string_equal(c->models[0].key, "p/m");
	hark_llm_config_free(c);
}

static void test_find_model(void **state)
{
	struct hark_llm_config *c;

	(void)state;
	c = parse_ok(full_config);
	assert_int_equal(hark_llm_config_find_model(c, "openai/gpt-4o-mini"), 0);
	assert_int_equal(hark_llm_config_find_model(c, "gpt-4o-mini"), 0);
	assert_int_equal(hark_llm_config_find_model(c, "other/big-model"), 3);
	assert_int_equal(hark_llm_config_find_model(c, "big-model"), 3);
	assert_int_equal(hark_llm_config_find_model(c, "openai/shared"), 2);
	assert_int_equal(hark_llm_config_find_model(c, "other/shared"), 4);
	/* a bare name served by two providers is ambiguous */
	assert_int_equal(hark_llm_config_find_model(c, "shared"), -1);
	assert_int_equal(hark_llm_config_find_model(c, "nope"), -1);
	assert_int_equal(hark_llm_config_find_model(c, "other/gpt-4o-mini"), -1);
	assert_int_equal(hark_llm_config_find_model(c, ""), -1);
	assert_int_equal(hark_llm_config_find_model(c, NULL), -1);
	hark_llm_config_free(c);
}

/* A minimal valid provider with one field replaced. */
#define PROV(extra) "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h/v1\"" extra \
	", \"models\": [{\"name\": \"m\"}]}]}"
#define MODEL(extra) "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h/v1\"," \
	" \"models\": [{\"name\": \"m\"}, {\"name\": \"n\"" extra "}]}]}"
#define LLM(body) "{\"llm\": {" body "}}"

struct bad_case {
	const char *text;
	int rc;
	const char *msg; /* the complete expected message */
};

static const struct bad_case bad_cases[] = {
	{ "{", HARK_ERR_FORMAT, NULL },
	{ "[1]", HARK_ERR_INVALID_ARG, "top level: must be a JSON object" },
	{ "{\"providers\": {}}", HARK_ERR_INVALID_ARG, "providers: must be an array" },
	{ "{\"providers\": [3]}", HARK_ERR_INVALID_ARG, "providers[0]: must be an object" },
	{ PROV(", \"colour\": 1"), HARK_ERR_INVALID_ARG, "providers[0].colour: unknown member" },
	{ "{\"providers\": [{\"base_url\": \"https://h\", \"models\": [{\"name\": \"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].name: required member missing" },
	{ "{\"providers\": [{\"name\": \"\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}]}",
	  HARK_ERR_INVALID_ARG,
	  "providers[0].name: must be a non-empty string of [A-Za-z0-9_.-] (at most 31 "
	  "characters)" },
	{ "{\"providers\": [{\"name\": \"a/b\", \"base_url\": \"https://h\", \"models\": "
	  "[{\"name\": \"m\"}]}]}",
	  HARK_ERR_INVALID_ARG,
	  "providers[0].name: must be a non-empty string of [A-Za-z0-9_.-] (at most 31 "
	  "characters)" },
	{ "{\"providers\": [{\"name\": 7, \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].name: must be a string" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}, {\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[1].name: duplicate provider \"p\"" },
	{ "{\"providers\": [{\"name\": \"p\", \"models\": [{\"name\": \"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].base_url: required member missing" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"ftp://h\", \"models\": [{\"name\": "
	  "\"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].base_url: must start with http:// or https://" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https:///\", \"models\": [{\"name\": "
	  "\"m\"}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].base_url: must name a host after the scheme" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h/ v1\", \"models\": "
	  "[{\"name\": \"m\"}]}]}",
	  HARK_ERR_INVALID_ARG,
	  "providers[0].base_url: must not contain whitespace or control characters" },
	{ PROV(", \"api_key_env\": \"1BAD\""), HARK_ERR_INVALID_ARG,
	  "providers[0].api_key_env: must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*) "
	  "or null" },
	{ PROV(", \"api_key_env\": 5"), HARK_ERR_INVALID_ARG,
	  "providers[0].api_key_env: must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*) "
	  "or null" },
	{ PROV(", \"timeout_s\": 0"), HARK_ERR_INVALID_ARG,
	  "providers[0].timeout_s: must be a number > 0 and <= 86400" },
	{ PROV(", \"connect_timeout_s\": \"10\""), HARK_ERR_INVALID_ARG,
	  "providers[0].connect_timeout_s: must be a number > 0 and <= 86400" },
	{ PROV(", \"idle_timeout_s\": -1"), HARK_ERR_INVALID_ARG,
	  "providers[0].idle_timeout_s: must be a number > 0 and <= 86400" },
	{ PROV(", \"stream\": 1"), HARK_ERR_INVALID_ARG,
	  "providers[0].stream: must be true or false" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\"}]}", HARK_ERR_INVALID_ARG,
	  "providers[0].models: must be a non-empty array" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": []}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].models: must be a non-empty array" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [\"m\"]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].models[0]: must be an object" },
	{ MODEL(", \"rpm\": -1"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].rpm: must be a number >= 0" },
	{ MODEL(", \"rpm\": \"5\""), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].rpm: must be a number >= 0" },
	{ MODEL(", \"tpm\": -0.5"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].tpm: must be a number >= 0" },
	{ MODEL(", \"max_concurrency\": 0"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].max_concurrency: must be an integer between 1 and 4096" },
	{ MODEL(", \"max_concurrency\": 4097"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].max_concurrency: must be an integer between 1 and 4096" },
	{ MODEL(", \"max_concurrency\": 2.5"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].max_concurrency: must be an integer between 1 and 4096" },
	{ MODEL(", \"price_in\": -0.01"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].price_in: must be a number >= 0" },
	{ MODEL(", \"price_out\": null"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].price_out: must be a number >= 0" },
	{ MODEL(", \"context_window\": 255"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].context_window: must be an integer >= 256" },
	{ MODEL(", \"context_window\": 1000, \"max_output_tokens\": 1001"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].max_output_tokens: must be an integer between 1 and "
	  "context_window (1000)" },
	{ MODEL(", \"max_output_tokens\": 0"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].max_output_tokens: must be an integer between 1 and "
	  "context_window (8192)" },
	{ MODEL(", \"structured\": \"xml\""), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].structured: must be \"json_schema\", \"json_object\" or "
	  "\"none\"" },
	{ MODEL(", \"structured\": true"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].structured: must be a string" },
	{ MODEL(", \"embedding\": \"yes\""), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].embedding: must be true or false" },
	{ MODEL(", \"temperature\": 0"), HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].temperature: unknown member" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"rpm\": "
	  "1}]}]}",
	  HARK_ERR_INVALID_ARG, "providers[0].models[0].name: required member missing" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"a b\"}]}]}",
	  HARK_ERR_INVALID_ARG,
	  "providers[0].models[0].name: must be a non-empty string without whitespace or control "
	  "characters (at most 127 bytes)" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}, {\"name\": \"m\"}]}]}",
	  HARK_ERR_INVALID_ARG,
	  "providers[0].models[1].name: duplicate model \"m\" in provider \"p\"" },
	{ "{\"routes\": []}", HARK_ERR_INVALID_ARG, "routes: must be an object" },
	{ PROV("") "x", HARK_ERR_FORMAT, NULL },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": [\"p/m\", \"p/zz\"]}}",
	  HARK_ERR_INVALID_ARG, "routes.extract[1]: unknown model \"p/zz\"" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": []}}",
	  HARK_ERR_INVALID_ARG, "routes.extract: must be a non-empty array of models" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": \"p/m\"}}",
	  HARK_ERR_INVALID_ARG, "routes.extract: must be a non-empty array of models" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": [\"p/m\", 3]}}",
	  HARK_ERR_INVALID_ARG,
	  "routes.extract[1]: must be a non-empty string (\"provider/model\" or a unique model "
	  "name)" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": [\"p/m\", \"m\"]}}",
	  HARK_ERR_INVALID_ARG, "routes.extract[1]: \"p/m\" is listed twice" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}, {\"name\": \"q\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"extract\": [\"m\"]}}",
	  HARK_ERR_INVALID_ARG,
	  "routes.extract[0]: model name \"m\" is ambiguous (served by several providers); use "
	  "\"provider/model\"" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}, {\"name\": \"e\", \"embedding\": true}]}], \"routes\": {\"summarize\": "
	  "[\"p/m\", \"p/e\"]}}",
	  HARK_ERR_INVALID_ARG,
	  "routes.summarize[1]: \"p/e\" is an embedding model (only the \"embed\" route may name "
	  "one)" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}, {\"name\": \"e\", \"embedding\": true}]}], \"routes\": {\"embed\": [\"e\", "
	  "\"m\"]}}",
	  HARK_ERR_INVALID_ARG, "routes.embed[1]: \"p/m\" is not an embedding model" },
	{ "{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\", \"models\": [{\"name\": "
	  "\"m\"}]}], \"routes\": {\"bad task\": [\"m\"]}}",
	  HARK_ERR_INVALID_ARG,
	  "routes: task name must be a non-empty string of [A-Za-z0-9_.-] (at most 63 "
	  "characters)" },
	{ "{\"llm\": 1}", HARK_ERR_INVALID_ARG, "llm: must be an object" },
	{ LLM("\"cache_ttl\": 5"), HARK_ERR_INVALID_ARG, "llm.cache_ttl: unknown member" },
	{ LLM("\"cache_ttl_s\": -1"), HARK_ERR_INVALID_ARG,
	  "llm.cache_ttl_s: must be a number >= 0 (0 = forever)" },
	{ LLM("\"max_attempts\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.max_attempts: must be an integer between 1 and 100" },
	{ LLM("\"backoff_base_s\": -0.1"), HARK_ERR_INVALID_ARG,
	  "llm.backoff_base_s: must be a number >= 0 and <= 86400" },
	{ LLM("\"backoff_base_s\": 10, \"backoff_max_s\": 5"), HARK_ERR_INVALID_ARG,
	  "llm.backoff_max_s: must be >= backoff_base_s" },
	{ LLM("\"breaker_failures\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.breaker_failures: must be an integer between 1 and 1000000" },
	{ LLM("\"breaker_open_s\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.breaker_open_s: must be a number > 0 and <= 86400" },
	{ LLM("\"repair_attempts\": -1"), HARK_ERR_INVALID_ARG,
	  "llm.repair_attempts: must be an integer between 0 and 10" },
	{ LLM("\"time_scale\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.time_scale: must be a number > 0 and <= 1000000" },
	{ LLM("\"time_scale\": false"), HARK_ERR_INVALID_ARG,
	  "llm.time_scale: must be a number > 0 and <= 1000000" },
	{ LLM("\"max_response_bytes\": 100"), HARK_ERR_INVALID_ARG,
	  "llm.max_response_bytes: must be an integer between 1024 and 1073741824" },
	{ LLM("\"limit_window_s\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.limit_window_s: must be a number > 0 and <= 86400" },
	{ LLM("\"limit_margin\": 0.9"), HARK_ERR_INVALID_ARG,
	  "llm.limit_margin: must be a number between 0 and 0.5" },
	{ LLM("\"embed_batch\": 0"), HARK_ERR_INVALID_ARG,
	  "llm.embed_batch: must be an integer between 1 and 2048" },
	/* duplicate keys are rejected by the parser (a typo, not a choice) */
	{ "{\"llm\": {\"max_attempts\": 2, \"max_attempts\": 3}}", HARK_ERR_FORMAT, NULL },
};

static void test_validation_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct hark_llm_config *c = (struct hark_llm_config *)0x1;
		char err[512] = "";
		int rc = hark_llm_config_parse(bad_cases[i].text, &c, err, sizeof(err));

		if (rc != bad_cases[i].rc ||
		    (bad_cases[i].msg && strcmp(err, bad_cases[i].msg) != 0)) {
			print_error("case %zu: %s\n  got rc %d: %s\n  want rc %d: %s\n", i,
				    bad_cases[i].text, rc, err, bad_cases[i].rc,
				    bad_cases[i].msg ? bad_cases[i].msg : "(any)");
			fail();
		}
		assert_null(c);
		assert_true(err[0] != '\0');
	}
}

static void test_api_keys(void **state)
{
	const char *text = "{\"providers\": ["
			   "{\"name\": \"a\", \"base_url\": \"https://a\", \"api_key_env\": "
			   "\"TEST_OPENAI_KEY\", \"models\": [{\"name\": \"m\"}]},"
			   "{\"name\": \"b\", \"base_url\": \"https://b\", \"api_key_env\": "
			   "\"TEST_OTHER_KEY\", \"models\": [{\"name\": \"n\"}]}]}";
	struct hark_llm_config *c;
	char err[512];
	int rc;

	(void)state;
	/* unset: NULL */
	c = parse_ok(text);
	assert_string_equal(c->providers[0].api_key_env, "TEST_OPENAI_KEY");
	assert_null(c->providers[0].api_key);
	assert_null(c->providers[1].api_key);
	hark_llm_config_free(c);
	/* set: the value; empty counts as unset */
	setenv("TEST_OPENAI_KEY", "sk-alpha", 1);
	setenv("TEST_OTHER_KEY", "", 1);
	c = parse_ok(text);
	assert_string_equal(c->providers[0].api_key, "sk-alpha");
	assert_null(c->providers[1].api_key);
	hark_llm_config_free(c);
	/* the key is read at load time: a later change does not alter a loaded config */
	setenv("TEST_OTHER_KEY", "sk-beta", 1);
	c = parse_ok(text);
	setenv("TEST_OTHER_KEY", "sk-gamma", 1);
	assert_string_equal(c->providers[1].api_key, "sk-beta");
	hark_llm_config_free(c);

	/* a key value never appears in an error message */
	setenv("TEST_OPENAI_KEY", "sk-SECRET-VALUE", 1);
	c = NULL;
	rc = hark_llm_config_parse("{\"providers\": [{\"name\": \"a\", \"base_url\": \"https://a\","
				   " \"api_key_env\": \"TEST_OPENAI_KEY\", \"models\": "
				   "[{\"name\": \"m\", \"rpm\": -3}]}]}",
				   &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_INVALID_ARG);
	assert_null(strstr(err, "SECRET"));
	assert_non_null(strstr(err, "providers[0].models[0].rpm"));
	/* nor does a URL (it may carry credentials) */
	rc = hark_llm_config_parse("{\"providers\": [{\"name\": \"a\", \"base_url\": "
				   "\"ftp://user:hunter2@a\", \"models\": [{\"name\": \"m\"}]}]}",
				   &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_INVALID_ARG);
	assert_null(strstr(err, "hunter2"));
}

static void test_env_overrides(void **state)
{
	struct hark_llm_config *c;
	const struct hark_llm_route *r;
	char err[512];
	long i;

	(void)state;
	/* options */
	setenv("HARK_LLM_TIME_SCALE", "120", 1);
	setenv("HARK_LLM_CACHE_TTL_S", "0", 1);
	setenv("HARK_LLM_MAX_ATTEMPTS", "7", 1);
	c = parse_ok(LLM("\"time_scale\": 5, \"cache_ttl_s\": 10, \"max_attempts\": 2,"
			 " \"repair_attempts\": 3"));
	assert_true(c->time_scale == 120);
	assert_true(c->cache_ttl_s == 0);
	assert_int_equal(c->max_attempts, 7);
	assert_int_equal(c->repair_attempts, 3); /* not overridable: the file's value */
	hark_llm_config_free(c);
	setenv("HARK_LLM_TIME_SCALE", "fast", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_string_equal(err, "HARK_LLM_TIME_SCALE: must be a number > 0 and <= 1000000");
	setenv("HARK_LLM_TIME_SCALE", "-2", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	unsetenv("HARK_LLM_TIME_SCALE");
	setenv("HARK_LLM_MAX_ATTEMPTS", "2.5", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_string_equal(err, "HARK_LLM_MAX_ATTEMPTS: must be an integer between 1 and 100");
	setenv("HARK_LLM_MAX_ATTEMPTS", "0", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	unsetenv("HARK_LLM_MAX_ATTEMPTS");
	setenv("HARK_LLM_CACHE_TTL_S", "-1", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_string_equal(err, "HARK_LLM_CACHE_TTL_S: must be a number >= 0 (0 = forever)");
	unsetenv("HARK_LLM_CACHE_TTL_S");

	/* HARK_LLM_BASE_URL alone: provider "env", model "default", key from HARK_LLM_API_KEY,
	 * and the default route */
	setenv("HARK_LLM_BASE_URL", "http://127.0.0.1:9999/v1/", 1);
	c = parse_ok("{}");
	assert_int_equal(c->n_providers, 1);
	assert_string_equal(c->providers[0].name, "env");
	assert_string_equal(c->providers[0].base_url, "http://127.0.0.1:9999/v1");
	assert_string_equal(c->providers[0].api_key_env, "HARK_LLM_API_KEY");
	assert_null(c->providers[0].api_key);
	assert_int_equal(c->n_models, 1);
	assert_string_equal(c->models[0].key, "env/default");
	assert_int_equal(c->models[0].embedding, 0);
	r = hark_llm_config_route(c, "extract");
	assert_non_null(r);
	assert_string_equal(r->task, "default");
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], 0);
	hark_llm_config_free(c);

	/* with a model, a key variable, and a file: the env model is the default route
	 * since the file defines none; the file's own routes stay */
	setenv("HARK_LLM_MODEL", "sim-small", 1);
	setenv("HARK_LLM_API_KEY_ENV", "TEST_ENV_KEY", 1);
	setenv("TEST_ENV_KEY", "sk-env", 1);
	c = parse_ok("{\"providers\": [{\"name\": \"p\", \"base_url\": \"https://h\","
		     " \"models\": [{\"name\": \"m\"}]}], \"routes\": {\"extract\": [\"p/m\"]}}");
	assert_int_equal(c->n_providers, 2);
	i = hark_llm_config_find_model(c, "env/sim-small");
	assert_true(i >= 0);
	assert_int_equal(c->models[i].provider_index, 1);
	assert_string_equal(c->providers[1].api_key_env, "TEST_ENV_KEY");
	assert_string_equal(c->providers[1].api_key, "sk-env");
	r = hark_llm_config_route(c, "default");
	assert_non_null(r);
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], (size_t)i);
	r = hark_llm_config_route(c, "extract");
	assert_int_equal(r->n_models, 1);
	assert_string_equal(c->models[r->models[0]].key, "p/m");
	hark_llm_config_free(c);

	/* a file "default" route wins; a file provider "env" is replaced, and the routes
	 * may name the env model */
	c = parse_ok("{\"providers\": [{\"name\": \"env\", \"base_url\": \"https://old\","
		     " \"models\": [{\"name\": \"old1\"}, {\"name\": \"old2\"}]},"
		     " {\"name\": \"p\", \"base_url\": \"https://h\","
		     " \"models\": [{\"name\": \"m\"}]}],"
		     " \"routes\": {\"default\": [\"p/m\"],"
		     " \"extract\": [\"env/sim-small\", \"m\"]}}");
	assert_int_equal(c->n_providers, 2);
	assert_string_equal(c->providers[0].name, "p");
	assert_string_equal(c->providers[1].name, "env");
	assert_string_equal(c->providers[1].base_url, "http://127.0.0.1:9999/v1");
	assert_int_equal(c->n_models, 2);
	assert_string_equal(c->models[0].key, "p/m");
	assert_int_equal(c->models[0].provider_index, 0);
	assert_string_equal(c->models[1].key, "env/sim-small");
	assert_int_equal(c->models[1].provider_index, 1);
	assert_int_equal(hark_llm_config_find_model(c, "env/old1"), -1);
	r = hark_llm_config_route(c, "default");
	assert_int_equal(r->n_models, 1);
	assert_int_equal(r->models[0], 0);
	r = hark_llm_config_route(c, "extract");
	assert_int_equal(r->n_models, 2);
	assert_int_equal(r->models[0], 1);
	assert_int_equal(r->models[1], 0);
	hark_llm_config_free(c);

	/* bad env values name the variable, not the value */
	setenv("HARK_LLM_BASE_URL", "gopher://user:pw-secret@x", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_string_equal(err, "HARK_LLM_BASE_URL: must start with http:// or https://");
	setenv("HARK_LLM_BASE_URL", "https://ok", 1);
	setenv("HARK_LLM_API_KEY_ENV", "bad-name", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "HARK_LLM_API_KEY_ENV"));
	setenv("HARK_LLM_API_KEY_ENV", "TEST_ENV_KEY", 1);
	setenv("HARK_LLM_MODEL", "two words", 1);
	assert_int_equal(hark_llm_config_parse("{}", &c, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "HARK_LLM_MODEL"));
	/* without HARK_LLM_BASE_URL the other provider variables do nothing */
	unsetenv("HARK_LLM_BASE_URL");
	c = parse_ok("{}");
	assert_int_equal(c->n_providers, 0);
	hark_llm_config_free(c);
}

/* Writes text to a fresh temp file; returns its path (static storage). */
static const char *write_temp(const char *text, size_t len)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/hark_llm_cfg_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

static void test_load_file(void **state)
{
	struct hark_llm_config *c = NULL;
	char err[512], dir[64];
	const char *p;
	char *big;
	int rc;

	(void)state;
	p = write_temp(full_config, strlen(full_config));
	rc = hark_llm_config_load(p, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_OK);
	assert_int_equal(c->n_models, 5);
	hark_llm_config_free(c);
	/* path NULL: $HARK_CONFIG */
	setenv("HARK_CONFIG", p, 1);
	rc = hark_llm_config_load(NULL, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_OK);
	assert_int_equal(c->n_providers, 2);
	hark_llm_config_free(c);
	unlink(p);
	/* $HARK_CONFIG naming a missing file is an error, not an empty config */
	rc = hark_llm_config_load(NULL, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_NOT_FOUND);
	assert_non_null(strstr(err, p));
	assert_null(c);
	/* no path, no $HARK_CONFIG: an empty config */
	unsetenv("HARK_CONFIG");
	rc = hark_llm_config_load(NULL, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_OK);
	assert_int_equal(c->n_providers, 0);
	hark_llm_config_free(c);

	rc = hark_llm_config_load("/nonexistent/dir/hark.json", &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "/nonexistent/dir/hark.json"));
	snprintf(dir, sizeof(dir), "/tmp/hark_llm_dir_XXXXXX");
	assert_non_null(mkdtemp(dir));
	rc = hark_llm_config_load(dir, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_IO);
	assert_non_null(strstr(err, "directory"));
	rmdir(dir);

	/* syntax error: file name, line and column */
	{
		const char *t = "{\n  \"llm\": {\n    \"time_scale\": ,\n  }\n}\n";

		p = write_temp(t, strlen(t));
	}
	rc = hark_llm_config_load(p, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_FORMAT);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "line 3"));
	unlink(p);
	/* validation error: file name then the field path */
	p = write_temp(LLM("\"time_scale\": -1"), strlen(LLM("\"time_scale\": -1")));
	rc = hark_llm_config_load(p, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, ": llm.time_scale: must be a number > 0"));
	unlink(p);
	/* an empty file is not JSON */
	p = write_temp("", 0);
	rc = hark_llm_config_load(p, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_FORMAT);
	unlink(p);
	/* size cap: valid JSON padded past 1 MiB */
	big = malloc((2u << 20) + 8);
	assert_non_null(big);
	memset(big, ' ', 2u << 20);
	memcpy(big, "{}", 2);
	p = write_temp(big, 2u << 20);
	free(big);
	rc = hark_llm_config_load(p, &c, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_IO);
	assert_non_null(strstr(err, "larger than"));
	assert_null(c);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_full_file, clear_env),
		cmocka_unit_test_setup(test_defaults_and_implicit_routes, clear_env),
		cmocka_unit_test_setup(test_foreign_members_ignored, clear_env),
		cmocka_unit_test_setup(test_find_model, clear_env),
		cmocka_unit_test_setup(test_validation_errors, clear_env),
		cmocka_unit_test_setup(test_api_keys, clear_env),
		cmocka_unit_test_setup(test_env_overrides, clear_env),
		cmocka_unit_test_setup(test_load_file, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
