/*
 * Chat requests and deterministic replies of hark-llm-sim (see sim_reply.h):
 * request parsing and validation, the request hash and identity, schema
 * instances filled from chunk text, free-text and json_object replies, the
 * bad_json / wrong_schema variants, and the directive arrival counters.
 */
#include "sim/sim_reply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hark/hark.h"
#include "llm/schema.h"
#include "llm/tokens.h"
#include "util/errbuf.h"

#define MAX_MESSAGES 100000
#define GEN_BUDGET 50000  /* values per instance */
#define GEN_MAX_DEPTH 32
#define SCHEMA_MARK "matching this JSON Schema:"

/* ---- parsing -------------------------------------------------------------------- */

void hark_sim_chat_free(struct hark_sim_chat *c)
{
	if (!c)
		return;
	if (c->owned)
		for (size_t i = 0; i < c->n_msgs; i++)
			free(c->owned[i]);
	free(c->owned);
	free(c->roles);
	free(c->contents);
	free(c->dirs);
	free(c->chunks);
	json_decref(c->prompt_schema);
	json_decref(c->root);
	free(c);
}

/* A content value as one string: a string as is, null as "", an array of
 * parts as its text parts joined by newlines (in *owned). -1 = malformed. */
static int content_text(const json_t *v, const char **out, char **owned)
{
	size_t total = 0, pos = 0, i;
	const json_t *part;
	char *buf;

	*owned = NULL;
	if (!v || json_is_null(v)) {
		*out = "";
		return 0;
	}
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 0;
	}
	if (!json_is_array(v))
		return -1;
	json_array_foreach(v, i, part) {
		const json_t *t;
		if (!json_is_object(part))
			return -1;
		t = json_object_get(part, "text");
		if (t && !json_is_string(t))
			return -1;
		if (t)
			total += json_string_length(t) + 1;
	}
	buf = malloc(total + 1);
	if (!buf)
		return -2;
	json_array_foreach(v, i, part) {
		const json_t *t = json_object_get(part, "text");
		const json_t *type = json_object_get(part, "type");
		if (!t || (type && json_is_string(type) && strcmp(json_string_value(type), "text")))
			continue;
		if (pos)
			buf[pos++] = '\n';
		memcpy(buf + pos, json_string_value(t), json_string_length(t));
		pos += json_string_length(t);
	}
	buf[pos] = '\0';
	*owned = buf;
	*out = buf;
	return 0;
}

static int get_limit(const json_t *root, const char *key, long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		hark_errbuf_set(err, errlen, "%s must be a positive integer", key);
		return -1;
	}
	*out = json_integer_value(v) > 1000000000 ? 1000000000 : (long)json_integer_value(v);
	return 0;
}

/* The JSON object following SCHEMA_MARK in text, parsed, or NULL. */
static json_t *schema_in_text(const char *text, size_t len)
{
	const char *p = memmem(text, len, SCHEMA_MARK, sizeof(SCHEMA_MARK) - 1);
	const char *end = text + len, *q;
	int depth = 0, in_str = 0;

	if (!p)
		return NULL;
	p += sizeof(SCHEMA_MARK) - 1;
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	if (p >= end || *p != '{')
		return NULL;
	for (q = p; q < end; q++) {
		char ch = *q;
		if (in_str) {
			if (ch == '\\')
				q++;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		if (ch == '"')
			in_str = 1;
		else if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']') {
			if (--depth == 0) {
				json_t *s = json_loadb(p, (size_t)(q + 1 - p), 0, NULL);
				if (s && !json_is_object(s)) {
					json_decref(s);
					s = NULL;
				}
				return s;
			}
		}
	}
	return NULL;
}

static int hash_request(struct hark_sim_chat *c, const json_t *rf)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl = 32;
	char *rfs = NULL;
	int rc = -1;

	if (!ctx)
		return -1;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, c->model, strlen(c->model) + 1) != 1)
		goto out;
	for (size_t i = 0; i < c->n_msgs; i++)
		if (EVP_DigestUpdate(ctx, c->roles[i], strlen(c->roles[i]) + 1) != 1 ||
		    EVP_DigestUpdate(ctx, c->contents[i], strlen(c->contents[i]) + 1) != 1)
			goto out;
	if (rf) {
		rfs = json_dumps(rf, JSON_COMPACT | JSON_SORT_KEYS);
		if (!rfs || EVP_DigestUpdate(ctx, "\x01", 1) != 1 ||
		    EVP_DigestUpdate(ctx, rfs, strlen(rfs)) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, d, &dl) != 1)
		goto out;
	hark_sim_hex(d, 32, c->hash_hex);
	c->h = 0;
	for (int i = 0; i < 8; i++)
		c->h = (c->h << 8) | d[i];
	rc = 0;
out:
	free(rfs);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int hark_sim_chat_parse(const char *body, size_t len, struct hark_sim_chat **out,
			const char **param, char *err, size_t errlen)
{
	struct hark_sim_chat *c = calloc(1, sizeof(*c));
	json_error_t je;
	const json_t *msgs, *v, *rf = NULL;
	long mt = -1, mct = -1;
	int rc = HARK_ERR_INVALID_ARG, first_user = -1;
	unsigned char d[32];

	*param = NULL;
	*out = NULL;
	if (!c)
		return HARK_ERR_NOMEM;
	c->max_tokens = -1;
	c->root = json_loadb(body, len, 0, &je);
	if (!c->root || !json_is_object(c->root)) {
		if (c->root)
			hark_errbuf_set(err, errlen, "the request body must be a JSON object");
		else
			hark_errbuf_set(err, errlen,
					"We could not parse the JSON body of your request: %s", je.text);
		rc = HARK_ERR_FORMAT;
		goto fail;
	}
	v = json_object_get(c->root, "model");
	if (!json_is_string(v) || !json_string_length(v)) {
		*param = "model";
		hark_errbuf_set(err, errlen, "you must provide a model parameter");
		goto fail;
	}
	c->model = json_string_value(v);
	msgs = json_object_get(c->root, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0 ||
	    json_array_size(msgs) > MAX_MESSAGES) {
		*param = "messages";
		hark_errbuf_set(err, errlen, "messages must be a non-empty array (at most %d)",
				MAX_MESSAGES);
		goto fail;
	}
	c->n_msgs = json_array_size(msgs);
	c->roles = calloc(c->n_msgs, sizeof(*c->roles));
	c->contents = calloc(c->n_msgs, sizeof(*c->contents));
	c->owned = calloc(c->n_msgs, sizeof(*c->owned));
	if (!c->roles || !c->contents || !c->owned) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < c->n_msgs; i++) {
		const json_t *m = json_array_get(msgs, i);
		const json_t *role = json_object_get(m, "role");
		int crc;

		if (!json_is_object(m) || !json_is_string(role)) {
			*param = "messages";
			hark_errbuf_set(err, errlen, "messages[%zu] must be an object with a role", i);
			goto fail;
		}
		c->roles[i] = json_string_value(role);
		crc = content_text(json_object_get(m, "content"), &c->contents[i], &c->owned[i]);
		if (crc == -2) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
		if (crc) {
			*param = "messages";
			hark_errbuf_set(err, errlen,
					"messages[%zu].content must be a string or an array of parts", i);
			goto fail;
		}
		if (first_user < 0 && strcmp(c->roles[i], "user") == 0)
			first_user = (int)i;
	}
	if (get_limit(c->root, "max_tokens", &mt, err, errlen)) {
		*param = "max_tokens";
		goto fail;
	}
	if (get_limit(c->root, "max_completion_tokens", &mct, err, errlen)) {
		*param = "max_completion_tokens";
		goto fail;
	}
	c->max_tokens = mct > 0 ? mct : mt;
	v = json_object_get(c->root, "stream");
	if (v && !json_is_boolean(v) && !json_is_null(v)) {
		*param = "stream";
		hark_errbuf_set(err, errlen, "stream must be a boolean");
		goto fail;
	}
	c->stream = v && json_is_true(v);
	v = json_object_get(c->root, "stream_options");
	if (v && json_is_object(v))
		c->include_usage = json_is_true(json_object_get(v, "include_usage"));
	rf = json_object_get(c->root, "response_format");
	if (rf && json_is_null(rf))
		rf = NULL;
	if (rf) {
		const char *type = json_string_value(json_object_get(rf, "type"));
		*param = "response_format";
		if (!json_is_object(rf) || !type) {
			hark_errbuf_set(err, errlen, "response_format must be an object with a type");
			goto fail;
		}
		if (strcmp(type, "text") == 0) {
			c->rf = HARK_SIM_RF_TEXT;
		} else if (strcmp(type, "json_object") == 0) {
			c->rf = HARK_SIM_RF_JSON_OBJECT;
		} else if (strcmp(type, "json_schema") == 0) {
			const json_t *js = json_object_get(rf, "json_schema");
			const json_t *s = json_object_get(js, "schema");
			if (!json_is_object(js) || !json_is_object(s)) {
				hark_errbuf_set(err, errlen,
						"response_format.json_schema.schema must be an object");
				goto fail;
			}
			c->rf = HARK_SIM_RF_JSON_SCHEMA;
			c->schema = s;
		} else {
			hark_errbuf_set(err, errlen, "response_format.type \"%s\" is not supported", type);
			goto fail;
		}
		*param = NULL;
	}
	/* tokens, hash, identity */
	c->prompt_tokens = (long)hark_llm_tokens_chat(c->roles, c->contents, c->n_msgs);
	if (hash_request(c, rf)) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	{
		const char *fu = first_user >= 0 ? c->contents[first_user] : "";
		hark_sim_sha256(fu, strlen(fu), d);
		hark_sim_hex(d, 32, c->identity);
	}
	/* directives (every message), chunks and the prompt schema (not the
	 * assistant's own earlier replies) */
	for (size_t i = 0; i < c->n_msgs; i++) {
		const char *t = c->contents[i];
		size_t n = strlen(t);

		if (hark_sim_find_directives(t, n, &c->dirs, &c->n_dirs, &c->dirs_cap,
					     HARK_SIM_MAX_DIRECTIVES)) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
		if (strcmp(c->roles[i], "assistant") == 0)
			continue;
		if (hark_sim_find_chunks(t, n, &c->chunks, &c->n_chunks, &c->chunks_cap,
					 HARK_SIM_MAX_CHUNKS)) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
		if (!c->schema && !c->prompt_schema && c->rf != HARK_SIM_RF_JSON_SCHEMA)
			c->prompt_schema = schema_in_text(t, n);
	}
	if (hark_sim_dedup_chunks(c->chunks, &c->n_chunks)) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	if (!c->schema && c->prompt_schema)
		c->schema = c->prompt_schema;
	*out = c;
	return HARK_OK;
fail:
	hark_sim_chat_free(c);
	return rc;
}

/* ---- schema instances ------------------------------------------------------------- */

struct gen {
	const json_t *root;
	const struct hark_sim_chunk *chunks;
	size_t n_chunks;
	struct hark_sim_textinfo **infos; /* lazily built, one per chunk */
	struct hark_sim_textinfo *fallback;
	const char *fb_text;
	size_t fb_len;
	long budget;
	char buf[2048];
};

static const struct hark_sim_textinfo *info_of(struct gen *g, long chunk)
{
	if (chunk >= 0 && (size_t)chunk < g->n_chunks) {
		if (!g->infos[chunk])
			g->infos[chunk] = hark_sim_textinfo_new(g->chunks[chunk].text,
								g->chunks[chunk].len);
		return g->infos[chunk];
	}
	if (!g->fallback)
		g->fallback = hark_sim_textinfo_new(g->fb_text, g->fb_len);
	return g->fallback;
}

/* Resolves "#/a/b" in root. */
static const json_t *resolve_ref(const json_t *root, const char *ref)
{
	const json_t *cur = root;
	char tok[256];

	if (!ref || ref[0] != '#')
		return NULL;
	ref++;
	while (*ref == '/') {
		size_t n = 0;
		ref++;
		while (*ref && *ref != '/' && n + 1 < sizeof(tok)) {
			if (ref[0] == '~' && ref[1] == '1') {
				tok[n++] = '/';
				ref += 2;
			} else if (ref[0] == '~' && ref[1] == '0') {
				tok[n++] = '~';
				ref += 2;
			} else {
				tok[n++] = *ref++;
			}
		}
		tok[n] = '\0';
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur))
			cur = json_array_get(cur, (size_t)strtoul(tok, NULL, 10));
		else
			return NULL;
		if (!cur)
			return NULL;
	}
	return cur;
}

/* Follows $ref and anyOf/oneOf/allOf (first branch) to a concrete schema. */
static const json_t *concrete(const struct gen *g, const json_t *s)
{
	for (int i = 0; i < 16 && json_is_object(s); i++) {
		const json_t *ref = json_object_get(s, "$ref");
		const json_t *any = json_object_get(s, "anyOf");
		const json_t *next = NULL;

		if (json_is_string(ref))
			next = resolve_ref(g->root, json_string_value(ref));
		else if (json_is_array(any) && json_array_size(any))
			next = json_array_get(any, 0);
		else if (json_is_array(json_object_get(s, "oneOf")) &&
			 json_array_size(json_object_get(s, "oneOf")))
			next = json_array_get(json_object_get(s, "oneOf"), 0);
		else if (json_is_array(json_object_get(s, "allOf")) &&
			 json_array_size(json_object_get(s, "allOf")))
			next = json_array_get(json_object_get(s, "allOf"), 0);
		if (!next)
			return s;
		s = next;
	}
	return s;
}

static const char *type_of(const json_t *s)
{
	const json_t *t = json_object_get(s, "type");

	if (json_is_string(t))
		return json_string_value(t);
	if (json_is_array(t)) {
		size_t i;
		const json_t *e;
		const char *first = NULL;
		json_array_foreach(t, i, e) {
			if (!json_is_string(e))
				continue;
			if (!first)
				first = json_string_value(e);
			if (strcmp(json_string_value(e), "null") != 0)
				return json_string_value(e);
		}
		if (first)
			return first;
	}
	if (json_object_get(s, "properties"))
		return "object";
	if (json_object_get(s, "items"))
		return "array";
	return "string";
}

static int has_any(const char *prop, const char *const *words)
{
	char low[128];
	size_t n = 0;

	if (!prop)
		return 0;
	for (; prop[n] && n + 1 < sizeof(low); n++)
		low[n] = (char)((prop[n] >= 'A' && prop[n] <= 'Z') ? prop[n] + 32 : prop[n]);
	low[n] = '\0';
	for (size_t i = 0; words[i]; i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

static void iso_date(uint64_t h, char *out, size_t cap)
{
	/* 2024-01-01 plus 0..730 days (civil-from-days) */
	long z = 19723 + (long)(h % 731) + 719468;
	long era = z / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long y = yoe + era * 400;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long d = doy - (153 * mp + 2) / 5 + 1;
	long m = mp < 10 ? mp + 3 : mp - 9;

	if (m <= 2)
		y++;
	snprintf(out, cap, "%04ld-%02ld-%02ld", y, m, d);
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static json_t *gen_string(struct gen *g, const json_t *s, uint64_t h, long chunk,
			  const char *prop)
{
	static const char *const name_w[] = {"name", "entity", "owner", "speaker", "source",
					     "target", "person", NULL};
	static const char *const sent_w[] = {"quote", "evidence", "text", "summary", "description",
					     "task", "title", "decision", NULL};
	static const char *const date_w[] = {"date", "due", NULL};
	static const char *const chunk_w[] = {"chunk", NULL};
	const json_t *minl = json_object_get(s, "minLength"), *maxl = json_object_get(s, "maxLength");
	char *b = g->buf;
	size_t cap = sizeof(g->buf);

	if (has_any(prop, chunk_w)) {
		long c = chunk >= 0 ? chunk : g->n_chunks ? (long)(h % g->n_chunks) : -1;
		if (c >= 0) {
			size_t n = g->chunks[c].id_len < cap - 1 ? g->chunks[c].id_len : cap - 1;
			memcpy(b, g->chunks[c].id, n);
			b[n] = '\0';
		} else {
			snprintf(b, cap, "none");
		}
	} else if (has_any(prop, name_w)) {
		hark_sim_pick_name(info_of(g, chunk), h, b, cap);
	} else if (has_any(prop, sent_w)) {
		hark_sim_pick_sentence(info_of(g, chunk), h, 25, b, cap);
	} else if (has_any(prop, date_w)) {
		iso_date(h, b, cap);
	} else {
		hark_sim_pick_words(info_of(g, chunk), h, b, cap);
	}
	if (!b[0])
		snprintf(b, cap, "n/a");
	if (json_is_integer(maxl) && json_integer_value(maxl) >= 0) {
		size_t maxc = (size_t)json_integer_value(maxl), n = 0, i = 0;
		for (; b[i]; i++) {
			if (((unsigned char)b[i] & 0xC0) != 0x80) {
				if (n == maxc)
					break;
				n++;
			}
		}
		b[i] = '\0';
	}
	if (json_is_integer(minl) && json_integer_value(minl) > 0) {
		size_t minc = (size_t)json_integer_value(minl), have = utf8_chars(b), n = strlen(b);
		if (minc > cap - 1)
			minc = cap - 1;
		while (have < minc && n + 1 < cap) {
			b[n++] = have ? '.' : 'x';
			have++;
		}
		b[n] = '\0';
	}
	{
		json_t *r = json_string(b);
		return r ? r : json_string("n/a");
	}
}

static json_t *gen_value(struct gen *g, const json_t *s, uint64_t h, long chunk,
			 const char *prop, int depth);

static json_t *gen_array(struct gen *g, const json_t *s, uint64_t h, long chunk,
			 const char *prop, int depth)
{
	const json_t *items = json_object_get(s, "items");
	const json_t *mini = json_object_get(s, "minItems"), *maxi = json_object_get(s, "maxItems");
	json_t *arr = json_array();
	int spread = g->n_chunks > 0 && chunk < 0;
	size_t n;

	if (!arr)
		return NULL;
	if (spread)
		n = g->n_chunks * (1 + (size_t)(h % 2));
	else
		n = 1 + (size_t)(h % 3);
	if (depth > GEN_MAX_DEPTH / 2 || g->budget <= 0)
		n = 0;
	if (json_is_integer(maxi) && json_integer_value(maxi) >= 0 &&
	    n > (size_t)json_integer_value(maxi))
		n = (size_t)json_integer_value(maxi);
	if (json_is_integer(mini) && json_integer_value(mini) > 0 &&
	    n < (size_t)json_integer_value(mini))
		n = (size_t)json_integer_value(mini) > 10000 ? 10000 : (size_t)json_integer_value(mini);
	for (size_t i = 0; i < n; i++) {
		long c = spread ? (long)(i % g->n_chunks) : chunk;
		json_t *v = gen_value(g, items, hark_sim_mix(h + 0x1000 + i), c, prop, depth + 1);
		if (!v || json_array_append_new(arr, v)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *gen_value(struct gen *g, const json_t *s, uint64_t h, long chunk,
			 const char *prop, int depth)
{
	const json_t *v;
	const char *type;

	g->budget--;
	s = concrete(g, s);
	if (!json_is_object(s))
		return gen_string(g, NULL, h, chunk, prop); /* no schema ("items" missing): a string */
	if ((v = json_object_get(s, "const")))
		return json_deep_copy(v);
	v = json_object_get(s, "enum");
	if (json_is_array(v) && json_array_size(v))
		return json_deep_copy(json_array_get(v, h % json_array_size(v)));
	type = type_of(s);
	if (strcmp(type, "object") == 0) {
		json_t *o = json_object();
		const json_t *props = json_object_get(s, "properties");
		const char *k;
		json_t *ps;

		if (!o)
			return NULL;
		if (depth > GEN_MAX_DEPTH)
			return o;
		json_object_foreach((json_t *)props, k, ps) {
			json_t *cv = gen_value(g, ps, hark_sim_mix(h ^ hark_sim_fnv(k, strlen(k))), chunk,
					       k, depth + 1);
			if (!cv || json_object_set_new(o, k, cv)) {
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	if (strcmp(type, "array") == 0)
		return gen_array(g, s, h, chunk, prop, depth);
	if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) {
		const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
		double lo, hi;
		if (json_is_number(mn))
			lo = json_number_value(mn);
		else
			lo = json_is_number(mx) ? json_number_value(mx) - 100 : 0;
		hi = json_is_number(mx) ? json_number_value(mx) : lo + 100;
		if (hi < lo)
			hi = lo;
		if (strcmp(type, "integer") == 0) {
			double ilo = ceil(lo), ihi = floor(hi);
			if (ihi < ilo)
				ihi = ilo;
			return json_integer((json_int_t)(ilo + (double)(h % (uint64_t)(ihi - ilo + 1))));
		}
		{
			double x = lo + (hi - lo) * (double)(h % 10001) / 10000.0;
			x = floor(x * 100 + 0.5) / 100;
			if (x < lo)
				x = lo;
			if (x > hi)
				x = hi;
			return json_real(x);
		}
	}
	if (strcmp(type, "boolean") == 0)
		return json_boolean((h >> 7) & 1);
	if (strcmp(type, "null") == 0)
		return json_null();
	return gen_string(g, s, h, chunk, prop);
}

json_t *hark_sim_schema_instance(const json_t *schema, const json_t *root,
				 const struct hark_sim_chunk *chunks, size_t n_chunks,
				 const char *fallback, size_t fallback_len, uint64_t seed)
{
	struct gen g;
	json_t *v;

	memset(&g, 0, sizeof(g));
	g.root = root ? root : schema;
	g.chunks = chunks;
	g.n_chunks = n_chunks;
	g.fb_text = fallback ? fallback : "";
	g.fb_len = fallback ? fallback_len : 0;
	g.budget = GEN_BUDGET;
	if (n_chunks) {
		g.infos = calloc(n_chunks, sizeof(*g.infos));
		if (!g.infos)
			return NULL;
	}
	v = gen_value(&g, schema, hark_sim_mix(seed), -1, NULL, 0);
	for (size_t i = 0; i < n_chunks; i++)
		hark_sim_textinfo_free(g.infos[i]);
	free(g.infos);
	hark_sim_textinfo_free(g.fallback);
	return v;
}

/* ---- replies ------------------------------------------------------------------------ */

static const char *first_user(const struct hark_sim_chat *c)
{
	for (size_t i = 0; i < c->n_msgs; i++)
		if (strcmp(c->roles[i], "user") == 0)
			return c->contents[i];
	return c->n_msgs ? c->contents[c->n_msgs - 1] : "";
}

static const char *last_user(const struct hark_sim_chat *c)
{
	for (size_t i = c->n_msgs; i > 0; i--)
		if (strcmp(c->roles[i - 1], "user") == 0)
			return c->contents[i - 1];
	return c->n_msgs ? c->contents[c->n_msgs - 1] : "";
}

/* The free-text reply: first sentence of the last user message + a tag. */
static char *free_text(const struct hark_sim_chat *c)
{
	const char *u = last_user(c);
	struct hark_sim_textinfo *ti = hark_sim_textinfo_new(u, strlen(u));
	char sent[1600];
	char *out;
	size_t cap;

	sent[0] = '\0';
	if (ti)
		hark_sim_first_sentence(ti, 40, sent, sizeof(sent));
	hark_sim_textinfo_free(ti);
	cap = strlen(sent) + 64;
	out = malloc(cap);
	if (!out)
		return NULL;
	snprintf(out, cap, "%s%s[sim %.8s]", sent[0] ? sent : "OK.", " ", c->hash_hex);
	return out;
}

/* Removes the first required member of the top-level object, or swaps
 * the value for one of another type. */
static json_t *break_schema(const struct hark_sim_chat *c, json_t *v)
{
	struct gen g;
	const json_t *s, *req;

	memset(&g, 0, sizeof(g));
	g.root = c->schema;
	s = concrete(&g, c->schema);
	req = json_object_get(s, "required");
	if (json_is_object(v) && json_is_array(req)) {
		size_t i;
		const json_t *k;
		json_array_foreach(req, i, k) {
			if (json_is_string(k) && json_object_get(v, json_string_value(k))) {
				json_object_del(v, json_string_value(k));
				return v;
			}
		}
	}
	{
		int was_array = json_is_array(v);
		json_decref(v);
		return was_array ? json_object() : json_array();
	}
}

/*
 * A draft the prompt asks the model to refine: the first ```json fenced block
 * of a user message that already satisfies the reply schema. A model asked to
 * improve a valid draft returns a valid document, so the simulator returns
 * the draft (new reference) with its "title" marked as refined, else NULL.
 */
static json_t *draft_in_prompt(const struct hark_sim_chat *c)
{
	struct hark_llm_schema *cs = NULL;
	char *txt = NULL, serr[128];
	json_t *v = NULL;

	for (size_t i = 0; i < c->n_msgs && !v; i++) {
		const char *t = c->contents[i], *a, *b;

		if (strcmp(c->roles[i], "user") != 0)
			continue;
		a = strstr(t, "```json\n");
		b = a ? strstr(a + 8, "\n```") : NULL;
		if (!b)
			continue;
		v = json_loadb(a + 8, (size_t)(b - (a + 8)), 0, NULL);
	}
	if (!v)
		return NULL;
	txt = json_dumps(c->schema, JSON_COMPACT);
	if (!txt || hark_llm_schema_compile(txt, &cs, serr, sizeof(serr)) != 0 ||
	    hark_llm_schema_validate(cs, v, serr, sizeof(serr)) != 0) {
		json_decref(v);
		v = NULL;
	} else if (json_is_string(json_object_get(v, "title"))) {
		char buf[220];

		snprintf(buf, sizeof(buf), "%.190s (refined)",
			 json_string_value(json_object_get(v, "title")));
		json_object_set_new(v, "title", json_string(buf));
	}
	hark_llm_schema_free(cs);
	free(txt);
	return v;
}

int hark_sim_chat_content(const struct hark_sim_chat *c, int variant, char **content,
			  size_t *len)
{
	char *out = NULL;
	json_t *draft = NULL;

	*content = NULL;
	*len = 0;
	if (c->schema && (draft = draft_in_prompt(c)) != NULL) {
		if (variant == HARK_SIM_REPLY_WRONG_SCHEMA)
			draft = break_schema(c, draft);
		out = draft ? json_dumps(draft, JSON_COMPACT) : NULL;
		json_decref(draft);
	} else if (c->schema) {
		const char *fb = first_user(c);
		json_t *v = hark_sim_schema_instance(c->schema, c->schema, c->chunks, c->n_chunks, fb,
						     strlen(fb), c->h);
		if (!v)
			return HARK_ERR_NOMEM;
		if (variant == HARK_SIM_REPLY_WRONG_SCHEMA)
			v = break_schema(c, v);
		out = v ? json_dumps(v, JSON_COMPACT) : NULL;
		json_decref(v);
	} else if (c->rf == HARK_SIM_RF_JSON_OBJECT) {
		char *t = free_text(c);
		json_t *v = t ? json_pack("{s:s}", "reply", t) : NULL;
		free(t);
		if (v && variant == HARK_SIM_REPLY_WRONG_SCHEMA) {
			json_decref(v);
			v = json_array();
		}
		out = v ? json_dumps(v, JSON_COMPACT) : NULL;
		json_decref(v);
	} else {
		out = free_text(c);
	}
	if (!out)
		return HARK_ERR_NOMEM;
	*len = strlen(out);
	if (variant == HARK_SIM_REPLY_BAD_JSON) {
		/* the first half: unbalanced, so never valid JSON */
		size_t cut = *len / 2;
		if (cut == 0)
			cut = *len;
		while (cut > 1 && ((unsigned char)out[cut] & 0xC0) == 0x80)
			cut--;
		out[cut] = '\0';
		*len = cut;
	}
	*content = out;
	return HARK_OK;
}

/* ---- directive counters -------------------------------------------------------------- */

#define COUNTERS_MAX ((size_t)1 << 22)

struct slot {
	uint64_t k1, k2; /* 0,0 = empty */
	long count;
};

struct hark_sim_counters {
	struct slot *s;
	size_t cap, n;
};

struct hark_sim_counters *hark_sim_counters_new(void)
{
	return calloc(1, sizeof(struct hark_sim_counters));
}

void hark_sim_counters_free(struct hark_sim_counters *c)
{
	if (!c)
		return;
	free(c->s);
	free(c);
}

static struct slot *find_slot(struct slot *s, size_t cap, uint64_t k1, uint64_t k2)
{
	size_t i = (size_t)(k1 & (cap - 1));

	for (;;) {
		if ((s[i].k1 == k1 && s[i].k2 == k2) || (s[i].k1 == 0 && s[i].k2 == 0))
			return &s[i];
		i = (i + 1) & (cap - 1);
	}
}

long *hark_sim_counters_slot(struct hark_sim_counters *c, const char *identity, const char *name)
{
	uint64_t k1 = hark_sim_fnv(identity, strlen(identity));
	uint64_t k2 = hark_sim_mix(k1 ^ hark_sim_fnv(name, strlen(name)));
	struct slot *sl;

	k1 = hark_sim_mix(k1 + hark_sim_fnv(name, strlen(name)));
	if (k1 == 0 && k2 == 0)
		k2 = 1;
	if ((c->n + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		struct slot *ns;

		if (ncap > COUNTERS_MAX)
			return NULL;
		ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return NULL;
		for (size_t i = 0; i < c->cap; i++)
			if (c->s[i].k1 || c->s[i].k2)
				*find_slot(ns, ncap, c->s[i].k1, c->s[i].k2) = c->s[i];
		free(c->s);
		c->s = ns;
		c->cap = ncap;
	}
	sl = find_slot(c->s, c->cap, k1, k2);
	if (!sl->k1 && !sl->k2) {
		sl->k1 = k1;
		sl->k2 = k2;
		sl->count = 0;
		c->n++;
	}
	return &sl->count;
}
