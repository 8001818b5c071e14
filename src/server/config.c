/*
 * Config file loading for `hark serve`: a JSON object whose fields mirror the
 * command-line flags plus the limits that have no flag (header and URL caps,
 * client timeout, disk threshold, rate limits, lease). Each field is checked
 * for type and range; the first problem is reported by field name.
 */
#include "server/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"

struct hark_server_config {
	json_t *root;       /* owns every string the params point into */
	char host[256];
};

void hark_server_config_free(struct hark_server_config *c)
{
	if (!c)
		return;
	json_decref(c->root);
	free(c);
}

int hark_server_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon, *hs, *he;
	char *end;
	long v;

	if (!s || !*s || !host || hostlen < 2)
		return HARK_ERR_INVALID_ARG;
	if (s[0] == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return HARK_ERR_INVALID_ARG;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		hs = s;
		he = colon;
	}
	if (!colon) {
		/* "PORT" alone */
		hs = he = NULL;
		colon = s - 1;
	}
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || v < 0 || v > 65535)
		return HARK_ERR_INVALID_ARG;
	if (!hs || he == hs) {
		snprintf(host, hostlen, "0.0.0.0");
	} else {
		size_t n = (size_t)(he - hs);
		if (n + 1 > hostlen)
			return HARK_ERR_INVALID_ARG;
		memcpy(host, hs, n);
		host[n] = '\0';
	}
	*port = (int)v;
	return HARK_OK;
}

static int want_num(json_t *v, const char *name, double lo, double hi, double *out,
		    char *err, size_t errlen)
{
	if (!json_is_number(v)) {
		hark_errbuf_set(err, errlen, "%s: expected a number", name);
		return HARK_ERR_INVALID_ARG;
	}
	double d = json_number_value(v);
	if (!(d >= lo && d <= hi)) {
		hark_errbuf_set(err, errlen, "%s: %g is out of range [%g, %g]", name, d, lo, hi);
		return HARK_ERR_INVALID_ARG;
	}
	*out = d;
	return HARK_OK;
}

static int want_str(json_t *v, const char *name, const char **out, char *err, size_t errlen)
{
	if (!json_is_string(v)) {
		hark_errbuf_set(err, errlen, "%s: expected a string", name);
		return HARK_ERR_INVALID_ARG;
	}
	*out = json_string_value(v);
	return HARK_OK;
}

/* {"rps": R, "burst": B} into *rps / *burst. */
static int apply_rate(json_t *v, const char *name, double *rps, double *burst, char *err,
		      size_t errlen)
{
	const char *k;
	json_t *f;
	int rc = HARK_OK;

	if (!json_is_object(v)) {
		hark_errbuf_set(err, errlen, "%s: expected an object", name);
		return HARK_ERR_INVALID_ARG;
	}
	json_object_foreach(v, k, f) {
		char full[64];
		snprintf(full, sizeof(full), "%s.%s", name, k);
		if (strcmp(k, "rps") == 0)
			rc = want_num(f, full, 0, 1e6, rps, err, errlen);
		else if (strcmp(k, "burst") == 0)
			rc = want_num(f, full, 0, 1e6, burst, err, errlen);
		else if (strcmp(k, "daily_quota_s") == 0 || strcmp(k, "max_concurrent") == 0)
			continue; /* handled by the caller for key_defaults */
		else {
			hark_errbuf_set(err, errlen, "%s: unknown field", full);
			rc = HARK_ERR_INVALID_ARG;
		}
		if (rc)
			return rc;
	}
	return HARK_OK;
}

static int apply_field(struct hark_server_config *c, struct hark_server_params *p,
		       const char *k, json_t *v, char *err, size_t errlen)
{
	double d;
	int rc;

	if (strcmp(k, "listen") == 0) {
		const char *s;
		if ((rc = want_str(v, k, &s, err, errlen)))
			return rc;
		if (hark_server_parse_listen(s, c->host, sizeof(c->host), &p->port)) {
			hark_errbuf_set(err, errlen, "listen: expected HOST:PORT, got \"%.64s\"", s);
			return HARK_ERR_INVALID_ARG;
		}
		p->host = c->host;
		return HARK_OK;
	}
	if (strcmp(k, "data") == 0)
		return want_str(v, k, &p->data_dir, err, errlen);
	if (strcmp(k, "engine") == 0)
		return want_str(v, k, &p->engine, err, errlen);
	if (strcmp(k, "model") == 0)
		return want_str(v, k, &p->model, err, errlen);
	if (strcmp(k, "webhook_secret_env") == 0)
		return want_str(v, k, &p->webhook_secret_env, err, errlen);
	if (strcmp(k, "port_file") == 0)
		return want_str(v, k, &p->port_file, err, errlen);
	if (strcmp(k, "auth") == 0) {
		if (!json_is_boolean(v)) {
			hark_errbuf_set(err, errlen, "auth: expected true or false");
			return HARK_ERR_INVALID_ARG;
		}
		p->auth = json_is_true(v);
		return HARK_OK;
	}
	if (strcmp(k, "cors_origins") == 0) {
		size_t i;
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) > HARK_SERVER_MAX_CORS) {
			hark_errbuf_set(err, errlen, "cors_origins: expected an array of at most %d strings",
					HARK_SERVER_MAX_CORS);
			return HARK_ERR_INVALID_ARG;
		}
		p->n_cors = 0;
		json_array_foreach(v, i, e) {
			if (!json_is_string(e)) {
				hark_errbuf_set(err, errlen, "cors_origins[%zu]: expected a string", i);
				return HARK_ERR_INVALID_ARG;
			}
			p->cors[p->n_cors++] = json_string_value(e);
		}
		return HARK_OK;
	}
	if (strcmp(k, "anon_rate") == 0)
		return apply_rate(v, k, &p->anon_rps, &p->anon_burst, err, errlen);
	if (strcmp(k, "key_defaults") == 0) {
		json_t *f;
		if ((rc = apply_rate(v, k, &p->key_rps, &p->key_burst, err, errlen)))
			return rc;
		if ((f = json_object_get(v, "daily_quota_s")) &&
		    (rc = want_num(f, "key_defaults.daily_quota_s", 0, 1e12, &p->key_daily_quota_s,
				   err, errlen)))
			return rc;
		if ((f = json_object_get(v, "max_concurrent"))) {
			if ((rc = want_num(f, "key_defaults.max_concurrent", 0, 1e6, &d, err, errlen)))
				return rc;
			p->key_max_concurrent = (int)d;
		}
		return HARK_OK;
	}

	/* numbers */
	static const struct {
		const char *name;
		double lo, hi;
	} nums[] = {
		{"workers", 0, 1024},          {"threads", 1, 256},
		{"max_body_mb", 1, 1 << 20},   {"max_header_bytes", 1024, 60000},
		{"max_url_bytes", 256, 30000}, {"client_timeout_s", 1, 3600},
		{"ttl_days", 0, 36500},        {"drain_timeout_s", 0, 86400},
		{"min_free_disk_mb", 0, 1e9},  {"max_unfinished_per_key", 0, 1e9},
		{"lease_s", 1, 86400},         {"max_attempts", 1, 100},
		{"max_json_mb", 1, 1024},
	};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(k, nums[i].name) != 0)
			continue;
		if ((rc = want_num(v, k, nums[i].lo, nums[i].hi, &d, err, errlen)))
			return rc;
		switch (i) {
		case 0: p->workers = (int)d; break;
		case 1: p->threads = (int)d; break;
		case 2: p->max_body_bytes = (int64_t)(d * 1048576.0); break;
		case 3: p->max_header_bytes = (size_t)d; break;
		case 4: p->max_url_bytes = (size_t)d; break;
		case 5: p->client_timeout_s = d; break;
		case 6: p->ttl_s = d * 86400.0; break;
		case 7: p->drain_timeout_s = d; break;
		case 8: p->min_free_disk_bytes = (int64_t)(d * 1048576.0); break;
		case 9: p->max_unfinished_per_key = (int)d; break;
		case 10: p->lease_s = d; break;
		case 11: p->max_attempts = (int)d; break;
		case 12: p->max_json_bytes = (size_t)(d * 1048576.0); break;
		}
		return HARK_OK;
	}
	hark_errbuf_set(err, errlen, "%.64s: unknown field", k);
	return HARK_ERR_INVALID_ARG;
}

int hark_server_config_load(const char *path, struct hark_server_params *p,
			    struct hark_server_config **out, char *err, size_t errlen)
{
	struct hark_server_config *c = NULL;
	json_error_t jerr;
	const char *k;
	json_t *v;
	FILE *f = NULL;
	int rc = HARK_OK;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		rc = errno == ENOENT ? HARK_ERR_NOT_FOUND
		     : errno == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	c->root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->root) {
		hark_errbuf_set(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	if (!json_is_object(c->root)) {
		hark_errbuf_set(err, errlen, "%s: expected a JSON object", path);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	json_object_foreach(c->root, k, v) {
		/* the LLM layer's members (src/llm/config.c reads them) */
		if (!strcmp(k, "providers") || !strcmp(k, "routes") || !strcmp(k, "llm"))
			continue;
		if ((rc = apply_field(c, p, k, v, err, errlen)))
			goto out;
	}
	*out = c;
	c = NULL;
out:
	hark_server_config_free(c);
	if (f)
		fclose(f);
	return rc;
}
