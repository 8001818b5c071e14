/*
 * hark-llm-sim configuration: strict parsing of the --config document, the
 * built-in defaults, and partial run-time updates (POST /_sim/config) that
 * validate everything before changing anything.
 */
#include "sim/sim_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hark/hark.h"
#include "util/errbuf.h"

#define MAX_MODELS 256

static const struct hark_sim_model default_models[] = {
	{"sim-small", 16384, 4096, 0, 0, 0, 0},
	{"sim-large", 131072, 8192, 0, 0, 0, 0},
	{"sim-embed", 8192, 0, 0, 0, 1, 256},
};

static void base_config(struct hark_sim_config *c)
{
	memset(c, 0, sizeof(*c));
	c->window_s = 60;
	c->latency.dist = HARK_SIM_LAT_FIXED;
	c->latency.s = 0;
	c->stream_chunk_s = 0.01;
	c->timeout_hold_s = 600;
}

int hark_sim_config_default(struct hark_sim_config *out)
{
	size_t n = sizeof(default_models) / sizeof(default_models[0]);

	base_config(out);
	out->models = malloc(sizeof(default_models));
	if (!out->models)
		return HARK_ERR_NOMEM;
	memcpy(out->models, default_models, sizeof(default_models));
	out->n_models = n;
	return HARK_OK;
}

void hark_sim_config_clear(struct hark_sim_config *c)
{
	if (!c)
		return;
	free(c->models);
	memset(c, 0, sizeof(*c));
}

long hark_sim_config_find(const struct hark_sim_config *c, const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < c->n_models; i++)
		if (strcmp(c->models[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* ---- value helpers ---------------------------------------------------------- */

/* A non-negative finite number at member key of o into *out (unchanged when
 * absent). Returns 0, or -1 with err set. */
static int get_num(const json_t *o, const char *where, const char *key, double lo, double hi,
		   double *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);
	double d;

	if (!v)
		return 0;
	if (!json_is_number(v)) {
		hark_errbuf_set(err, errlen, "%s%s: expected a number", where, key);
		return -1;
	}
	d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi) {
		hark_errbuf_set(err, errlen, "%s%s: %g is out of range [%g, %g]", where, key, d, lo,
				hi);
		return -1;
	}
	*out = d;
	return 0;
}

static int get_long(const json_t *o, const char *where, const char *key, double lo, double hi,
		    long *out, char *err, size_t errlen)
{
	double d = out ? (double)*out : 0;

	if (get_num(o, where, key, lo, hi, &d, err, errlen))
		return -1;
	if (d != floor(d)) {
		hark_errbuf_set(err, errlen, "%s%s: expected an integer", where, key);
		return -1;
	}
	*out = (long)d;
	return 0;
}

/* Fails on a member of o not in the NULL-terminated list allowed. */
static int only_members(const json_t *o, const char *where, const char *const *allowed,
			char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v) {
		int ok = 0;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = 1;
		if (!ok) {
			hark_errbuf_set(err, errlen, "%sunknown member \"%s\"", where, key);
			return -1;
		}
	}
	(void)v;
	return 0;
}

/* ---- sections ----------------------------------------------------------------- */

static int parse_latency(const json_t *v, struct hark_sim_latency *out, char *err, size_t errlen)
{
	static const char *const fixed[] = {"dist", "s", NULL};
	static const char *const uniform[] = {"dist", "min_s", "max_s", NULL};
	static const char *const lognormal[] = {"dist", "median_s", "sigma", NULL};
	const char *dist = "fixed";
	const json_t *d;
	struct hark_sim_latency l;

	memset(&l, 0, sizeof(l));
	if (!json_is_object(v)) {
		hark_errbuf_set(err, errlen, "latency: expected an object");
		return -1;
	}
	d = json_object_get(v, "dist");
	if (d && !json_is_string(d)) {
		hark_errbuf_set(err, errlen, "latency.dist: expected a string");
		return -1;
	}
	if (d)
		dist = json_string_value(d);
	if (strcmp(dist, "fixed") == 0) {
		l.dist = HARK_SIM_LAT_FIXED;
		if (only_members(v, "latency: ", fixed, err, errlen) ||
		    get_num(v, "latency.", "s", 0, 1e7, &l.s, err, errlen))
			return -1;
	} else if (strcmp(dist, "uniform") == 0) {
		l.dist = HARK_SIM_LAT_UNIFORM;
		if (only_members(v, "latency: ", uniform, err, errlen) ||
		    get_num(v, "latency.", "min_s", 0, 1e7, &l.min_s, err, errlen) ||
		    get_num(v, "latency.", "max_s", 0, 1e7, &l.max_s, err, errlen))
			return -1;
		if (l.max_s < l.min_s) {
			hark_errbuf_set(err, errlen, "latency: max_s is below min_s");
			return -1;
		}
	} else if (strcmp(dist, "lognormal") == 0) {
		l.dist = HARK_SIM_LAT_LOGNORMAL;
		l.median_s = 1;
		l.sigma = 0.5;
		if (only_members(v, "latency: ", lognormal, err, errlen) ||
		    get_num(v, "latency.", "median_s", 0, 1e7, &l.median_s, err, errlen) ||
		    get_num(v, "latency.", "sigma", 0, 10, &l.sigma, err, errlen))
			return -1;
	} else {
		hark_errbuf_set(err, errlen,
				"latency.dist: \"%s\" is not one of fixed, uniform, lognormal", dist);
		return -1;
	}
	*out = l;
	return 0;
}

static int parse_faults(const json_t *v, struct hark_sim_faults *f, char *err, size_t errlen)
{
	static const char *const allowed[] = {"p_500", "p_503", "p_timeout", "p_truncated",
					      "p_malformed_body", "p_bad_json", NULL};

	if (!json_is_object(v)) {
		hark_errbuf_set(err, errlen, "faults: expected an object");
		return -1;
	}
	if (only_members(v, "faults: ", allowed, err, errlen) ||
	    get_num(v, "faults.", "p_500", 0, 1, &f->p_500, err, errlen) ||
	    get_num(v, "faults.", "p_503", 0, 1, &f->p_503, err, errlen) ||
	    get_num(v, "faults.", "p_timeout", 0, 1, &f->p_timeout, err, errlen) ||
	    get_num(v, "faults.", "p_truncated", 0, 1, &f->p_truncated, err, errlen) ||
	    get_num(v, "faults.", "p_malformed_body", 0, 1, &f->p_malformed_body, err, errlen) ||
	    get_num(v, "faults.", "p_bad_json", 0, 1, &f->p_bad_json, err, errlen))
		return -1;
	if (f->p_500 + f->p_503 + f->p_timeout + f->p_truncated + f->p_malformed_body +
		    f->p_bad_json > 1.0 + 1e-9) {
		hark_errbuf_set(err, errlen, "faults: the probabilities add up to more than 1");
		return -1;
	}
	return 0;
}

static int parse_model(const json_t *v, size_t idx, struct hark_sim_model *m, char *err,
		       size_t errlen)
{
	static const char *const allowed[] = {"name", "context_window", "max_output_tokens", "rpm",
					      "tpm", "embedding", "dimensions", NULL};
	char where[64];
	const json_t *name, *emb;
	double big = 1e12;

	snprintf(where, sizeof(where), "models[%zu].", idx);
	if (!json_is_object(v)) {
		hark_errbuf_set(err, errlen, "models[%zu]: expected an object", idx);
		return -1;
	}
	{
		char w2[64];
		snprintf(w2, sizeof(w2), "models[%zu]: ", idx);
		if (only_members(v, w2, allowed, err, errlen))
			return -1;
	}
	name = json_object_get(v, "name");
	if (!json_is_string(name) || !json_string_length(name) ||
	    json_string_length(name) >= sizeof(m->name)) {
		hark_errbuf_set(err, errlen, "%sname: expected a non-empty string (< %d bytes)", where,
				HARK_SIM_MODEL_NAME_MAX);
		return -1;
	}
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", json_string_value(name));
	emb = json_object_get(v, "embedding");
	if (emb && !json_is_boolean(emb)) {
		hark_errbuf_set(err, errlen, "%sembedding: expected true or false", where);
		return -1;
	}
	m->embedding = emb && json_is_true(emb);
	m->context_window = m->embedding ? 8192 : 16384;
	m->max_output_tokens = m->embedding ? 0 : 4096;
	m->dimensions = m->embedding ? 256 : 0;
	{
		long dims = m->dimensions;
		if (get_long(v, where, "context_window", 1, big, &m->context_window, err, errlen) ||
		    get_long(v, where, "max_output_tokens", 1, big, &m->max_output_tokens, err,
			     errlen) ||
		    get_long(v, where, "rpm", 0, big, &m->rpm, err, errlen) ||
		    get_long(v, where, "tpm", 0, big, &m->tpm, err, errlen) ||
		    get_long(v, where, "dimensions", 1, 65536, &dims, err, errlen))
			return -1;
		m->dimensions = (int)dims;
	}
	if (json_object_get(v, "dimensions") && !m->embedding) {
		hark_errbuf_set(err, errlen, "%sdimensions: only for embedding models", where);
		return -1;
	}
	return 0;
}

int hark_sim_config_parse(const char *text, size_t len, struct hark_sim_config *out, char *err,
			  size_t errlen)
{
	static const char *const allowed[] = {"models", "window_s", "latency", "stream_chunk_s",
					      "faults", "timeout_hold_s", NULL};
	struct hark_sim_config c;
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	const json_t *v;
	int rc = HARK_ERR_INVALID_ARG;

	base_config(&c);
	if (!root) {
		hark_errbuf_set(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
		return HARK_ERR_FORMAT;
	}
	if (!json_is_object(root)) {
		hark_errbuf_set(err, errlen, "the configuration must be a JSON object");
		goto out;
	}
	if (only_members(root, "", allowed, err, errlen) ||
	    get_num(root, "", "window_s", 0.001, 1e7, &c.window_s, err, errlen) ||
	    get_num(root, "", "stream_chunk_s", 0, 3600, &c.stream_chunk_s, err, errlen) ||
	    get_num(root, "", "timeout_hold_s", 0, 1e7, &c.timeout_hold_s, err, errlen))
		goto out;
	if ((v = json_object_get(root, "latency")) && parse_latency(v, &c.latency, err, errlen))
		goto out;
	if ((v = json_object_get(root, "faults")) && parse_faults(v, &c.faults, err, errlen))
		goto out;
	v = json_object_get(root, "models");
	if (!v) {
		size_t n = sizeof(default_models) / sizeof(default_models[0]);
		c.models = malloc(sizeof(default_models));
		if (!c.models) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		memcpy(c.models, default_models, sizeof(default_models));
		c.n_models = n;
	} else {
		size_t n = json_array_size(v);
		if (!json_is_array(v) || n == 0 || n > MAX_MODELS) {
			hark_errbuf_set(err, errlen, "models: expected an array of 1 to %d models",
					MAX_MODELS);
			goto out;
		}
		c.models = calloc(n, sizeof(*c.models));
		if (!c.models) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (parse_model(json_array_get(v, i), i, &c.models[i], err, errlen))
				goto out;
			for (size_t k = 0; k < i; k++)
				if (strcmp(c.models[k].name, c.models[i].name) == 0) {
					hark_errbuf_set(err, errlen, "models[%zu]: duplicate name \"%s\"",
							i, c.models[i].name);
					goto out;
				}
			c.n_models = i + 1;
		}
	}
	*out = c;
	c.models = NULL;
	rc = HARK_OK;
out:
	free(c.models);
	json_decref(root);
	return rc;
}

int hark_sim_config_update(struct hark_sim_config *c, const char *text, size_t len, char *err,
			   size_t errlen)
{
	static const char *const allowed[] = {"models", "latency", "stream_chunk_s", "faults",
					      "timeout_hold_s", NULL};
	static const char *const model_allowed[] = {"name", "rpm", "tpm", NULL};
	struct hark_sim_config n = *c;
	struct hark_sim_model *models = NULL;
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	const json_t *v;
	int rc = HARK_ERR_INVALID_ARG;

	if (!root) {
		hark_errbuf_set(err, errlen, "not JSON: %s", je.text);
		return HARK_ERR_FORMAT;
	}
	if (!json_is_object(root)) {
		hark_errbuf_set(err, errlen, "expected a JSON object");
		goto out;
	}
	if (only_members(root, "", allowed, err, errlen) ||
	    get_num(root, "", "stream_chunk_s", 0, 3600, &n.stream_chunk_s, err, errlen) ||
	    get_num(root, "", "timeout_hold_s", 0, 1e7, &n.timeout_hold_s, err, errlen))
		goto out;
	if ((v = json_object_get(root, "latency")) && parse_latency(v, &n.latency, err, errlen))
		goto out;
	if ((v = json_object_get(root, "faults")) && parse_faults(v, &n.faults, err, errlen))
		goto out;
	models = malloc(c->n_models * sizeof(*models));
	if (!models) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	memcpy(models, c->models, c->n_models * sizeof(*models));
	if ((v = json_object_get(root, "models"))) {
		if (!json_is_array(v)) {
			hark_errbuf_set(err, errlen, "models: expected an array");
			goto out;
		}
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *m = json_array_get(v, i);
			char where[64];
			long idx;

			snprintf(where, sizeof(where), "models[%zu]: ", i);
			if (!json_is_object(m) || only_members(m, where, model_allowed, err, errlen)) {
				if (!json_is_object(m))
					hark_errbuf_set(err, errlen, "models[%zu]: expected an object", i);
				goto out;
			}
			idx = hark_sim_config_find(c, json_string_value(json_object_get(m, "name")));
			if (idx < 0) {
				hark_errbuf_set(err, errlen, "models[%zu]: no such model", i);
				goto out;
			}
			snprintf(where, sizeof(where), "models[%zu].", i);
			if (get_long(m, where, "rpm", 0, 1e12, &models[idx].rpm, err, errlen) ||
			    get_long(m, where, "tpm", 0, 1e12, &models[idx].tpm, err, errlen))
				goto out;
		}
	}
	memcpy(c->models, models, c->n_models * sizeof(*models));
	c->latency = n.latency;
	c->faults = n.faults;
	c->stream_chunk_s = n.stream_chunk_s;
	c->timeout_hold_s = n.timeout_hold_s;
	rc = HARK_OK;
out:
	free(models);
	json_decref(root);
	return rc;
}
