/*
 * LLM provider configuration (see config.h): reads the `providers`, `routes`
 * and `llm` members of a hark JSON config file with jansson, validates every
 * field (types, ranges, names, cross references) with messages that name the
 * offending path ("providers[1].models[0].rpm: ..."), applies the HARK_LLM_*
 * environment overrides, resolves each route to model indices and builds the
 * implicit "default" (every chat model) and "embed" (every embedding model)
 * routes when the file names none. API key values are read from the
 * environment only and never appear in an error message.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "hark/hark.h"
#include "llm/config.h"
#include "util/errbuf.h"

#define CFG_MAX_FILE_BYTES (1u << 20) /* config files are small; refuse anything bigger */
#define CFG_MAX_PROVIDER_NAME 31      /* key "provider/model" must fit 160 bytes */
#define CFG_MAX_MODEL_NAME 127
#define CFG_MAX_TASK_NAME 63
#define CFG_MAX_ENV_NAME 255
#define CFG_MAX_URL 2048
#define CFG_ENV_PROVIDER "env"

/* ------------------------------------------------------------ helpers ---- */

/* [A-Za-z0-9_.-]{1,max} */
static int is_simple_name(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return n <= max;
}

/* A model id: 1..max bytes, no whitespace or control characters. */
static int is_model_name(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (c <= 0x20 || c == 0x7f)
			return 0;
	}
	return n <= max;
}

/* An environment variable name: [A-Za-z_][A-Za-z0-9_]* */
static int is_env_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s || isdigit((unsigned char)s[0]))
		return 0;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!(isalnum(c) || c == '_'))
			return 0;
	}
	return n <= CFG_MAX_ENV_NAME;
}

/* Checks a base URL and returns a copy without trailing slashes, or NULL
 * with *why set. The URL itself is never quoted in messages (it may carry
 * credentials). */
static char *normalize_base_url(const char *s, const char **why)
{
	size_t n, skip;
	char *out;

	*why = NULL;
	if (!s || !*s) {
		*why = "must be a non-empty string";
		return NULL;
	}
	n = strlen(s);
	if (n > CFG_MAX_URL) {
		*why = "must be at most 2048 characters";
		return NULL;
	}
	if (strncasecmp(s, "http://", 7) == 0) {
		skip = 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		skip = 8;
	} else {
		*why = "must start with http:// or https://";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f) {
			*why = "must not contain whitespace or control characters";
			return NULL;
		}
	}
	if (strchr(s, '?') || strchr(s, '#')) {
		*why = "must not contain a query or fragment";
		return NULL;
	}
	while (n > skip && s[n - 1] == '/')
		n--;
	if (n == skip || s[skip] == '/') {
		*why = "must name a host after the scheme";
		return NULL;
	}
	out = strndup(s, n);
	if (!out)
		*why = "out of memory";
	return out;
}

/* Rejects members of o not in allowed (NULL-terminated). */
static int check_members(const json_t *o, const char *const *allowed, const char *path, char *err,
			 size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v) {
		int ok = 0;

		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = 1;
		if (!ok) {
			hark_errbuf_set(err, errlen, "%s%s%s: unknown member", path,
					*path ? "." : "", key);
			return HARK_ERR_INVALID_ARG;
		}
	}
	return HARK_OK;
}

/* Number member: absent keeps *out; else must satisfy
 * (lo_open ? v > lo : v >= lo) && v <= hi. */
static int get_number(const json_t *o, const char *key, const char *path, double lo, int lo_open,
		      double hi, const char *what, double *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	double d;

	if (!v)
		return HARK_OK;
	if (!json_is_number(v))
		goto bad;
	d = json_number_value(v);
	if (!isfinite(d) || (lo_open ? !(d > lo) : !(d >= lo)) || d > hi)
		goto bad;
	*out = d;
	return HARK_OK;
bad:
	hark_errbuf_set(err, errlen, "%s.%s: must be %s", path, key, what);
	return HARK_ERR_INVALID_ARG;
}

/* Integer member in [lo, hi]: absent keeps *out. */
static int get_integer(const json_t *o, const char *key, const char *path, long long lo,
		       long long hi, const char *what, long long *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	long long x;

	if (!v)
		return HARK_OK;
	if (!json_is_integer(v))
		goto bad;
	x = (long long)json_integer_value(v);
	if (x < lo || x > hi)
		goto bad;
	*out = x;
	return HARK_OK;
bad:
	hark_errbuf_set(err, errlen, "%s.%s: must be %s", path, key, what);
	return HARK_ERR_INVALID_ARG;
}

static int get_bool(const json_t *o, const char *key, const char *path, int *out, char *err,
		    size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return HARK_OK;
	if (!json_is_boolean(v)) {
		hark_errbuf_set(err, errlen, "%s.%s: must be true or false", path, key);
		return HARK_ERR_INVALID_ARG;
	}
	*out = json_is_true(v);
	return HARK_OK;
}

/* String member: *out borrowed (NULL when absent). */
static int get_string(const json_t *o, const char *key, const char *path, int required,
		      const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v) {
		if (!required)
			return HARK_OK;
		hark_errbuf_set(err, errlen, "%s.%s: required member missing", path, key);
		return HARK_ERR_INVALID_ARG;
	}
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v))) {
		hark_errbuf_set(err, errlen, "%s.%s: must be a string", path, key);
		return HARK_ERR_INVALID_ARG;
	}
	*out = json_string_value(v);
	return HARK_OK;
}

/* ---------------------------------------------------- building the config */

static void free_model(struct hark_llm_model *m)
{
	free(m->provider);
	free(m->name);
	free(m->key);
	memset(m, 0, sizeof(*m));
}

static void free_provider(struct hark_llm_provider *p)
{
	free(p->name);
	free(p->base_url);
	free(p->api_key_env);
	if (p->api_key) {
		explicit_bzero(p->api_key, strlen(p->api_key)); /* no key left in freed memory */
		free(p->api_key);
	}
	memset(p, 0, sizeof(*p));
}

void hark_llm_config_free(struct hark_llm_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_providers; i++)
		free_provider(&c->providers[i]);
	free(c->providers);
	for (size_t i = 0; i < c->n_models; i++)
		free_model(&c->models[i]);
	free(c->models);
	for (size_t i = 0; i < c->n_routes; i++) {
		free(c->routes[i].task);
		free(c->routes[i].models);
	}
	free(c->routes);
	free(c);
}

static void set_defaults(struct hark_llm_config *c)
{
	c->cache_ttl_s = 30.0 * 86400.0;
	c->max_attempts = 4;
	c->backoff_base_s = 1;
	c->backoff_max_s = 60;
	c->breaker_failures = 5;
	c->breaker_open_s = 30;
	c->repair_attempts = 1;
	c->time_scale = 1;
	c->max_response_bytes = 8u << 20;
	c->limit_window_s = 60;
	c->limit_margin = 0.02;
	c->embed_batch = 64;
}

static void provider_defaults(struct hark_llm_provider *p)
{
	memset(p, 0, sizeof(*p));
	p->connect_timeout_s = 10;
	p->timeout_s = 120;
	p->idle_timeout_s = 60;
	p->stream = 0;
}

static void model_defaults(struct hark_llm_model *m)
{
	memset(m, 0, sizeof(*m));
	m->max_concurrency = 16;
	m->context_window = 8192;
	m->max_output_tokens = 4096;
	m->structured = HARK_LLM_STRUCT_JSON_SCHEMA;
}

/* Resolves the provider's key variable (empty counts as unset). */
static int resolve_api_key(struct hark_llm_provider *p)
{
	const char *v;

	free(p->api_key);
	p->api_key = NULL;
	if (!p->api_key_env)
		return HARK_OK;
	v = getenv(p->api_key_env);
	if (v && *v) {
		p->api_key = strdup(v);
		if (!p->api_key)
			return HARK_ERR_NOMEM;
	}
	return HARK_OK;
}

static int add_provider(struct hark_llm_config *c, struct hark_llm_provider *p)
{
	struct hark_llm_provider *np =
		realloc(c->providers, (c->n_providers + 1) * sizeof(*c->providers));

	if (!np)
		return HARK_ERR_NOMEM;
	c->providers = np;
	c->providers[c->n_providers++] = *p;
	memset(p, 0, sizeof(*p));
	return HARK_OK;
}

static int add_model(struct hark_llm_config *c, struct hark_llm_model *m)
{
	struct hark_llm_model *nm = realloc(c->models, (c->n_models + 1) * sizeof(*c->models));

	if (!nm)
		return HARK_ERR_NOMEM;
	c->models = nm;
	c->models[c->n_models++] = *m;
	memset(m, 0, sizeof(*m));
	return HARK_OK;
}

/* Fills m->provider, m->key from the provider name. */
static int model_set_names(struct hark_llm_model *m, const char *provider, const char *name)
{
	size_t kl = strlen(provider) + 1 + strlen(name) + 1;

	m->provider = strdup(provider);
	m->name = strdup(name);
	m->key = malloc(kl);
	if (!m->provider || !m->name || !m->key)
		return HARK_ERR_NOMEM;
	snprintf(m->key, kl, "%s/%s", provider, name);
	return HARK_OK;
}

static int parse_model(struct hark_llm_config *c, const json_t *jm, size_t pi, const char *ppath,
		       size_t mi, char *err, size_t errlen)
{
	static const char *const allowed[] = {"name",
					      "rpm",
					      "tpm",
					      "max_concurrency",
					      "price_in",
					      "price_out",
					      "context_window",
					      "max_output_tokens",
					      "structured",
					      "embedding",
					      NULL};
	struct hark_llm_provider *p = &c->providers[pi];
	struct hark_llm_model m;
	char path[96];
	const char *name = NULL, *st = NULL;
	long long conc = 16, ctx = 8192, maxout = -1;
	int rc;

	model_defaults(&m);
	snprintf(path, sizeof(path), "%s.models[%zu]", ppath, mi);
	if (!json_is_object(jm)) {
		hark_errbuf_set(err, errlen, "%s: must be an object", path);
		return HARK_ERR_INVALID_ARG;
	}
	rc = check_members(jm, allowed, path, err, errlen);
	if (rc)
		goto out;
	rc = get_string(jm, "name", path, 1, &name, err, errlen);
	if (rc)
		goto out;
	if (!is_model_name(name, CFG_MAX_MODEL_NAME)) {
		hark_errbuf_set(err, errlen,
				"%s.name: must be a non-empty string without whitespace or control "
				"characters (at most %d bytes)",
				path, CFG_MAX_MODEL_NAME);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	for (size_t k = 0; k < c->n_models; k++) {
		if (c->models[k].provider_index == pi && strcmp(c->models[k].name, name) == 0) {
			hark_errbuf_set(err, errlen,
					"%s.name: duplicate model \"%s\" in provider \"%s\"", path,
					name, p->name);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
	}
	rc = get_number(jm, "rpm", path, 0, 0, INFINITY, "a number >= 0", &m.rpm, err, errlen);
	if (!rc)
		rc = get_number(jm, "tpm", path, 0, 0, INFINITY, "a number >= 0", &m.tpm, err,
				errlen);
	if (!rc)
		rc = get_integer(jm, "max_concurrency", path, 1, 4096,
				 "an integer between 1 and 4096", &conc, err, errlen);
	if (!rc)
		rc = get_number(jm, "price_in", path, 0, 0, INFINITY, "a number >= 0", &m.price_in,
				err, errlen);
	if (!rc)
		rc = get_number(jm, "price_out", path, 0, 0, INFINITY, "a number >= 0",
				&m.price_out, err, errlen);
	if (!rc)
		rc = get_integer(jm, "context_window", path, 256, LONG_MAX, "an integer >= 256",
				 &ctx, err, errlen);
	if (rc)
		goto out;
	if (json_object_get(jm, "max_output_tokens")) {
		char what[80];

		snprintf(what, sizeof(what), "an integer between 1 and context_window (%lld)", ctx);
		rc = get_integer(jm, "max_output_tokens", path, 1, ctx, what, &maxout, err, errlen);
		if (rc)
			goto out;
	} else {
		maxout = ctx < 4096 ? ctx : 4096;
	}
	rc = get_string(jm, "structured", path, 0, &st, err, errlen);
	if (rc)
		goto out;
	if (st) {
		if (strcmp(st, "json_schema") == 0) {
			m.structured = HARK_LLM_STRUCT_JSON_SCHEMA;
		} else if (strcmp(st, "json_object") == 0) {
			m.structured = HARK_LLM_STRUCT_JSON_OBJECT;
		} else if (strcmp(st, "none") == 0) {
			m.structured = HARK_LLM_STRUCT_NONE;
		} else {
			hark_errbuf_set(
				err, errlen,
				"%s.structured: must be \"json_schema\", \"json_object\" or "
				"\"none\"",
				path);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
	}
	rc = get_bool(jm, "embedding", path, &m.embedding, err, errlen);
	if (rc)
		goto out;
	m.max_concurrency = (int)conc;
	m.context_window = (long)ctx;
	m.max_output_tokens = (long)maxout;
	m.provider_index = pi;
	rc = model_set_names(&m, p->name, name);
	if (!rc)
		rc = add_model(c, &m);
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
out:
	free_model(&m);
	return rc;
}

static int parse_provider(struct hark_llm_config *c, const json_t *jp, size_t pi, char *err,
			  size_t errlen)
{
	static const char *const allowed[] = {
		"name",	     "base_url",       "api_key_env", "connect_timeout_s",
		"timeout_s", "idle_timeout_s", "stream",      "models",
		NULL};
	struct hark_llm_provider p;
	char path[32];
	const char *name = NULL, *url = NULL, *why = NULL;
	json_t *jkenv, *jmodels, *jm;
	size_t mi;
	int rc;

	provider_defaults(&p);
	snprintf(path, sizeof(path), "providers[%zu]", pi);
	if (!json_is_object(jp)) {
		hark_errbuf_set(err, errlen, "%s: must be an object", path);
		return HARK_ERR_INVALID_ARG;
	}
	rc = check_members(jp, allowed, path, err, errlen);
	if (!rc)
		rc = get_string(jp, "name", path, 1, &name, err, errlen);
	if (rc)
		goto out;
	if (!is_simple_name(name, CFG_MAX_PROVIDER_NAME)) {
		hark_errbuf_set(err, errlen,
				"%s.name: must be a non-empty string of [A-Za-z0-9_.-] (at most %d "
				"characters)",
				path, CFG_MAX_PROVIDER_NAME);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	for (size_t k = 0; k < c->n_providers; k++) {
		if (strcmp(c->providers[k].name, name) == 0) {
			hark_errbuf_set(err, errlen, "%s.name: duplicate provider \"%s\"", path,
					name);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
	}
	rc = get_string(jp, "base_url", path, 1, &url, err, errlen);
	if (rc)
		goto out;
	p.base_url = normalize_base_url(url, &why);
	if (!p.base_url) {
		hark_errbuf_set(err, errlen, "%s.base_url: %s", path, why);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	jkenv = json_object_get(jp, "api_key_env");
	if (jkenv && !json_is_null(jkenv)) {
		if (!json_is_string(jkenv) || !is_env_name(json_string_value(jkenv))) {
			hark_errbuf_set(err, errlen,
					"%s.api_key_env: must be an environment variable name "
					"([A-Za-z_][A-Za-z0-9_]*) or null",
					path);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		p.api_key_env = strdup(json_string_value(jkenv));
		if (!p.api_key_env) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	}
	rc = get_number(jp, "connect_timeout_s", path, 0, 1, 86400, "a number > 0 and <= 86400",
			&p.connect_timeout_s, err, errlen);
	if (!rc)
		rc = get_number(jp, "timeout_s", path, 0, 1, 86400, "a number > 0 and <= 86400",
				&p.timeout_s, err, errlen);
	if (!rc)
		rc = get_number(jp, "idle_timeout_s", path, 0, 1, 86400,
				"a number > 0 and <= 86400", &p.idle_timeout_s, err, errlen);
	if (!rc)
		rc = get_bool(jp, "stream", path, &p.stream, err, errlen);
	if (rc)
		goto out;
	jmodels = json_object_get(jp, "models");
	if (!jmodels || !json_is_array(jmodels) || json_array_size(jmodels) == 0) {
		hark_errbuf_set(err, errlen, "%s.models: must be a non-empty array", path);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	p.name = strdup(name);
	if (!p.name) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = resolve_api_key(&p);
	if (!rc)
		rc = add_provider(c, &p);
	if (rc)
		goto out;
	json_array_foreach(jmodels, mi, jm) {
		rc = parse_model(c, jm, pi, path, mi, err, errlen);
		if (rc)
			goto out;
	}
out:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	free_provider(&p);
	return rc;
}

static int parse_llm(struct hark_llm_config *c, const json_t *jl, char *err, size_t errlen)
{
	static const char *const allowed[] = {"cache_ttl_s",
					      "max_attempts",
					      "backoff_base_s",
					      "backoff_max_s",
					      "breaker_failures",
					      "breaker_open_s",
					      "repair_attempts",
					      "time_scale",
					      "max_response_bytes",
					      "limit_window_s",
					      "limit_margin",
					      "embed_batch",
					      NULL};
	const char *path = "llm";
	long long attempts = c->max_attempts, bf = c->breaker_failures;
	long long repairs = c->repair_attempts, mrb = (long long)c->max_response_bytes;
	long long eb = (long long)c->embed_batch;
	int rc;

	if (!json_is_object(jl)) {
		hark_errbuf_set(err, errlen, "llm: must be an object");
		return HARK_ERR_INVALID_ARG;
	}
	rc = check_members(jl, allowed, path, err, errlen);
	if (!rc)
		rc = get_number(jl, "cache_ttl_s", path, 0, 0, INFINITY,
				"a number >= 0 (0 = forever)", &c->cache_ttl_s, err, errlen);
	if (!rc)
		rc = get_integer(jl, "max_attempts", path, 1, 100, "an integer between 1 and 100",
				 &attempts, err, errlen);
	if (!rc)
		rc = get_number(jl, "backoff_base_s", path, 0, 0, 86400,
				"a number >= 0 and <= 86400", &c->backoff_base_s, err, errlen);
	if (!rc)
		rc = get_number(jl, "backoff_max_s", path, 0, 0, 86400,
				"a number >= 0 and <= 86400", &c->backoff_max_s, err, errlen);
	if (!rc && c->backoff_max_s < c->backoff_base_s) {
		hark_errbuf_set(err, errlen, "llm.backoff_max_s: must be >= backoff_base_s");
		rc = HARK_ERR_INVALID_ARG;
	}
	if (!rc)
		rc = get_integer(jl, "breaker_failures", path, 1, 1000000,
				 "an integer between 1 and 1000000", &bf, err, errlen);
	if (!rc)
		rc = get_number(jl, "breaker_open_s", path, 0, 1, 86400,
				"a number > 0 and <= 86400", &c->breaker_open_s, err, errlen);
	if (!rc)
		rc = get_integer(jl, "repair_attempts", path, 0, 10, "an integer between 0 and 10",
				 &repairs, err, errlen);
	if (!rc)
		rc = get_number(jl, "time_scale", path, 0, 1, 1e6, "a number > 0 and <= 1000000",
				&c->time_scale, err, errlen);
	if (!rc)
		rc = get_integer(jl, "max_response_bytes", path, 1024, 1ll << 30,
				 "an integer between 1024 and 1073741824", &mrb, err, errlen);
	if (!rc)
		rc = get_number(jl, "limit_window_s", path, 0, 1, 86400,
				"a number > 0 and <= 86400", &c->limit_window_s, err, errlen);
	if (!rc)
		rc = get_number(jl, "limit_margin", path, 0, 0, 0.5, "a number between 0 and 0.5",
				&c->limit_margin, err, errlen);
	if (!rc)
		rc = get_integer(jl, "embed_batch", path, 1, 2048, "an integer between 1 and 2048",
				 &eb, err, errlen);
	if (rc)
		return rc;
	c->max_attempts = (int)attempts;
	c->breaker_failures = (int)bf;
	c->repair_attempts = (int)repairs;
	c->max_response_bytes = (size_t)mrb;
	c->embed_batch = (size_t)eb;
	return HARK_OK;
}

/* ------------------------------------------------------------ env ------- */

/* Strict number from an environment value: the whole string, finite. */
static int env_number(const char *name, double lo, int lo_open, double hi, const char *what,
		      double *out, int *set, char *err, size_t errlen)
{
	const char *s = getenv(name);
	char *end = NULL;
	double d;

	*set = 0;
	if (!s || !*s)
		return HARK_OK;
	errno = 0;
	d = strtod(s, &end);
	while (end && isspace((unsigned char)*end))
		end++;
	if (errno || end == s || *end || !isfinite(d) || (lo_open ? !(d > lo) : !(d >= lo)) ||
	    d > hi) {
		hark_errbuf_set(err, errlen, "%s: must be %s", name, what);
		return HARK_ERR_INVALID_ARG;
	}
	*out = d;
	*set = 1;
	return HARK_OK;
}

/* Removes provider pi and its models, fixing provider_index. */
static void remove_provider(struct hark_llm_config *c, size_t pi)
{
	size_t w = 0;

	for (size_t i = 0; i < c->n_models; i++) {
		if (c->models[i].provider_index == pi) {
			free_model(&c->models[i]);
			continue;
		}
		if (c->models[i].provider_index > pi)
			c->models[i].provider_index--;
		c->models[w++] = c->models[i];
	}
	c->n_models = w;
	free_provider(&c->providers[pi]);
	memmove(&c->providers[pi], &c->providers[pi + 1],
		(c->n_providers - pi - 1) * sizeof(*c->providers));
	c->n_providers--;
}

/* HARK_LLM_BASE_URL & co. *added: 1 when the env provider was installed. */
static int apply_env_provider(struct hark_llm_config *c, int *added, char *err, size_t errlen)
{
	const char *url = getenv("HARK_LLM_BASE_URL");
	const char *model = getenv("HARK_LLM_MODEL");
	const char *kenv = getenv("HARK_LLM_API_KEY_ENV");
	struct hark_llm_provider p;
	struct hark_llm_model m;
	const char *why = NULL;
	int rc = HARK_OK;

	*added = 0;
	if (!url || !*url)
		return HARK_OK;
	if (!model || !*model)
		model = "default";
	if (!kenv || !*kenv)
		kenv = "HARK_LLM_API_KEY";
	provider_defaults(&p);
	model_defaults(&m);
	p.base_url = normalize_base_url(url, &why);
	if (!p.base_url) {
		hark_errbuf_set(err, errlen, "HARK_LLM_BASE_URL: %s", why);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	if (!is_model_name(model, CFG_MAX_MODEL_NAME)) {
		hark_errbuf_set(
			err, errlen,
			"HARK_LLM_MODEL: must be a model name without whitespace or control "
			"characters (at most %d bytes)",
			CFG_MAX_MODEL_NAME);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	if (!is_env_name(kenv)) {
		hark_errbuf_set(err, errlen,
				"HARK_LLM_API_KEY_ENV: must be an environment variable name "
				"([A-Za-z_][A-Za-z0-9_]*)");
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	p.name = strdup(CFG_ENV_PROVIDER);
	p.api_key_env = strdup(kenv);
	if (!p.name || !p.api_key_env) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = resolve_api_key(&p);
	if (rc)
		goto out;
	for (size_t i = 0; i < c->n_providers; i++) {
		if (strcmp(c->providers[i].name, CFG_ENV_PROVIDER) == 0) {
			remove_provider(c, i);
			break;
		}
	}
	m.provider_index = c->n_providers;
	rc = model_set_names(&m, CFG_ENV_PROVIDER, model);
	if (!rc)
		rc = add_provider(c, &p);
	if (!rc)
		rc = add_model(c, &m);
	if (!rc)
		*added = 1;
out:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	free_provider(&p);
	free_model(&m);
	return rc;
}

static int apply_env_options(struct hark_llm_config *c, char *err, size_t errlen)
{
	double d = 0;
	int set = 0, rc;

	rc = env_number("HARK_LLM_TIME_SCALE", 0, 1, 1e6, "a number > 0 and <= 1000000", &d, &set,
			err, errlen);
	if (rc)
		return rc;
	if (set)
		c->time_scale = d;
	rc = env_number("HARK_LLM_CACHE_TTL_S", 0, 0, INFINITY, "a number >= 0 (0 = forever)", &d,
			&set, err, errlen);
	if (rc)
		return rc;
	if (set)
		c->cache_ttl_s = d;
	rc = env_number("HARK_LLM_MAX_ATTEMPTS", 1, 0, 100, "an integer between 1 and 100", &d,
			&set, err, errlen);
	if (rc)
		return rc;
	if (set) {
		if (d != floor(d)) {
			hark_errbuf_set(
				err, errlen,
				"HARK_LLM_MAX_ATTEMPTS: must be an integer between 1 and 100");
			return HARK_ERR_INVALID_ARG;
		}
		c->max_attempts = (int)d;
	}
	return HARK_OK;
}

/* ------------------------------------------------------------ routes ---- */

/* Index of key, -1 unknown, -2 ambiguous bare name. */
static long find_model(const struct hark_llm_config *c, const char *key)
{
	long found = -1;

	if (!c || !key)
		return -1;
	for (size_t i = 0; i < c->n_models; i++)
		if (strcmp(c->models[i].key, key) == 0)
			return (long)i;
	for (size_t i = 0; i < c->n_models; i++) {
		if (strcmp(c->models[i].name, key) == 0) {
			if (found >= 0)
				return -2;
			found = (long)i;
		}
	}
	return found;
}

long hark_llm_config_find_model(const struct hark_llm_config *c, const char *key)
{
	long i = find_model(c, key);

	return i >= 0 ? i : -1;
}

const struct hark_llm_route *hark_llm_config_route(const struct hark_llm_config *c,
						   const char *task)
{
	const struct hark_llm_route *def = NULL;

	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_routes; i++) {
		if (task && strcmp(c->routes[i].task, task) == 0)
			return &c->routes[i];
		if (strcmp(c->routes[i].task, "default") == 0)
			def = &c->routes[i];
	}
	return def;
}

static int add_route(struct hark_llm_config *c, const char *task, size_t *models, size_t n)
{
	struct hark_llm_route *nr = realloc(c->routes, (c->n_routes + 1) * sizeof(*c->routes));
	char *t;

	if (!nr)
		return HARK_ERR_NOMEM;
	c->routes = nr;
	t = strdup(task);
	if (!t)
		return HARK_ERR_NOMEM;
	c->routes[c->n_routes].task = t;
	c->routes[c->n_routes].models = models;
	c->routes[c->n_routes].n_models = n;
	c->n_routes++;
	return HARK_OK;
}

/* A route of every model whose embedding flag equals embedding (none: no route). */
static int add_implicit_route(struct hark_llm_config *c, const char *task, int embedding)
{
	size_t n = 0, *idx;
	int rc;

	for (size_t i = 0; i < c->n_models; i++)
		n += (c->models[i].embedding != 0) == (embedding != 0);
	if (n == 0)
		return HARK_OK;
	idx = malloc(n * sizeof(*idx));
	if (!idx)
		return HARK_ERR_NOMEM;
	n = 0;
	for (size_t i = 0; i < c->n_models; i++)
		if ((c->models[i].embedding != 0) == (embedding != 0))
			idx[n++] = i;
	rc = add_route(c, task, idx, n);
	if (rc)
		free(idx);
	return rc;
}

static int parse_routes(struct hark_llm_config *c, const json_t *jr, char *err, size_t errlen)
{
	const char *task;
	json_t *arr;

	if (!json_is_object(jr)) {
		hark_errbuf_set(err, errlen, "routes: must be an object");
		return HARK_ERR_INVALID_ARG;
	}
	json_object_foreach((json_t *)jr, task, arr) {
		int embed = strcmp(task, "embed") == 0;
		size_t n, i, *idx;
		json_t *e;
		int rc;

		if (!is_simple_name(task, CFG_MAX_TASK_NAME)) {
			hark_errbuf_set(err, errlen,
					"routes: task name must be a non-empty string of "
					"[A-Za-z0-9_.-] (at most %d characters)",
					CFG_MAX_TASK_NAME);
			return HARK_ERR_INVALID_ARG;
		}
		if (!json_is_array(arr) || json_array_size(arr) == 0) {
			hark_errbuf_set(err, errlen,
					"routes.%s: must be a non-empty array of models", task);
			return HARK_ERR_INVALID_ARG;
		}
		n = json_array_size(arr);
		idx = malloc(n * sizeof(*idx));
		if (!idx) {
			hark_errbuf_set(err, errlen, "out of memory");
			return HARK_ERR_NOMEM;
		}
		json_array_foreach(arr, i, e) {
			const char *k = json_string_value(e);
			long mi;

			rc = HARK_ERR_INVALID_ARG;
			if (!k || !*k) {
				hark_errbuf_set(err, errlen,
						"routes.%s[%zu]: must be a non-empty string "
						"(\"provider/model\" or a unique model name)",
						task, i);
				goto bad;
			}
			mi = find_model(c, k);
			if (mi == -2) {
				hark_errbuf_set(
					err, errlen,
					"routes.%s[%zu]: model name \"%s\" is ambiguous (served by "
					"several providers); use \"provider/model\"",
					task, i, k);
				goto bad;
			}
			if (mi < 0) {
				hark_errbuf_set(err, errlen, "routes.%s[%zu]: unknown model \"%s\"",
						task, i, k);
				goto bad;
			}
			if (embed && !c->models[mi].embedding) {
				hark_errbuf_set(err, errlen,
						"routes.%s[%zu]: \"%s\" is not an embedding model",
						task, i, c->models[mi].key);
				goto bad;
			}
			if (!embed && c->models[mi].embedding) {
				hark_errbuf_set(
					err, errlen,
					"routes.%s[%zu]: \"%s\" is an embedding model (only the "
					"\"embed\" route may name one)",
					task, i, c->models[mi].key);
				goto bad;
			}
			for (size_t j = 0; j < i; j++) {
				if (idx[j] == (size_t)mi) {
					hark_errbuf_set(err, errlen,
							"routes.%s[%zu]: \"%s\" is listed twice",
							task, i, c->models[mi].key);
					goto bad;
				}
			}
			idx[i] = (size_t)mi;
		}
		rc = add_route(c, task, idx, n);
		if (rc) {
			hark_errbuf_set(err, errlen, "out of memory");
			goto bad;
		}
		continue;
	bad:
		free(idx);
		return rc;
	}
	return HARK_OK;
}

/* ------------------------------------------------------------ entry ----- */

/* Builds the config from a parsed document (root NULL = no file). */
static int build(const json_t *root, struct hark_llm_config **out, char *err, size_t errlen)
{
	struct hark_llm_config *c = calloc(1, sizeof(*c));
	const json_t *jp = NULL, *jr = NULL, *jl = NULL;
	int rc = HARK_OK, env_added = 0;

	if (!c) {
		hark_errbuf_set(err, errlen, "out of memory");
		return HARK_ERR_NOMEM;
	}
	set_defaults(c);
	if (root) {
		if (!json_is_object(root)) {
			hark_errbuf_set(err, errlen, "top level: must be a JSON object");
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		jp = json_object_get(root, "providers");
		jr = json_object_get(root, "routes");
		jl = json_object_get(root, "llm");
	}
	if (jp) {
		size_t i;
		json_t *e;

		if (!json_is_array(jp)) {
			hark_errbuf_set(err, errlen, "providers: must be an array");
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		json_array_foreach(jp, i, e) {
			rc = parse_provider(c, e, i, err, errlen);
			if (rc)
				goto out;
		}
	}
	if (jl) {
		rc = parse_llm(c, jl, err, errlen);
		if (rc)
			goto out;
	}
	rc = apply_env_provider(c, &env_added, err, errlen);
	if (!rc)
		rc = apply_env_options(c, err, errlen);
	if (!rc && jr)
		rc = parse_routes(c, jr, err, errlen);
	if (rc)
		goto out;
	if (!hark_llm_config_route(c, "default")) {
		if (env_added) {
			size_t *idx = malloc(sizeof(*idx));

			if (!idx) {
				rc = HARK_ERR_NOMEM;
			} else {
				idx[0] = c->n_models - 1; /* the env model is appended last */
				rc = add_route(c, "default", idx, 1);
				if (rc)
					free(idx);
			}
		} else {
			rc = add_implicit_route(c, "default", 0);
		}
	}
	if (!rc && !(jr && json_object_get(jr, "embed")))
		rc = add_implicit_route(c, "embed", 1);
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
out:
	if (rc) {
		hark_llm_config_free(c);
		c = NULL;
	}
	*out = c;
	return rc;
}

int hark_llm_config_parse(const char *text, struct hark_llm_config **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!text) {
		hark_errbuf_set(err, errlen, "no config text");
		return HARK_ERR_INVALID_ARG;
	}
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		hark_errbuf_set(err, errlen, "not valid JSON: line %d column %d: %s", jerr.line,
				jerr.column, jerr.text);
		return HARK_ERR_FORMAT;
	}
	rc = build(root, out, err, errlen);
	json_decref(root);
	return rc;
}

/* Reads at most CFG_MAX_FILE_BYTES of path into a NUL-terminated heap buffer. */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	size_t cap = CFG_MAX_FILE_BYTES + 1, n = 0;
	char *b = NULL;
	int fd, rc = HARK_OK;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(e));
		return (e == ENOENT || e == ENOTDIR) ? HARK_ERR_NOT_FOUND : HARK_ERR_IO;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: is a directory, not a config file", path);
		rc = HARK_ERR_IO;
		goto out;
	}
	b = malloc(cap + 1);
	if (!b) {
		hark_errbuf_set(err, errlen, "out of memory");
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	while (n < cap) {
		ssize_t r = read(fd, b + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			hark_errbuf_set(err, errlen, "%s: read failed: %s", path, strerror(errno));
			rc = HARK_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CFG_MAX_FILE_BYTES) {
		hark_errbuf_set(err, errlen, "%s: config file larger than %u bytes", path,
				CFG_MAX_FILE_BYTES);
		rc = HARK_ERR_IO;
		goto out;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

int hark_llm_config_load(const char *path, struct hark_llm_config **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL;
	char *buf = NULL, sub[384];
	size_t len = 0;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!path) {
		path = getenv("HARK_CONFIG");
		if (path && !*path)
			path = NULL;
	}
	if (!path)
		return build(NULL, out, err, errlen);
	rc = read_file(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!root) {
		hark_errbuf_set(err, errlen, "%s: not valid JSON: line %d column %d: %s", path,
				jerr.line, jerr.column, jerr.text);
		return HARK_ERR_FORMAT;
	}
	sub[0] = '\0';
	rc = build(root, out, sub, sizeof(sub));
	json_decref(root);
	if (rc)
		hark_errbuf_set(err, errlen, "%s: %s", path, sub);
	return rc;
}
