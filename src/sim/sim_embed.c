/*
 * Embeddings of hark-llm-sim (see sim_embed.h): request parsing, hashed
 * unigram + bigram vectors, and the reply body (float arrays or base64).
 */
#include "sim/sim_embed.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "llm/tokens.h"
#include "util/errbuf.h"

#define UNIGRAM_W 1.0f
#define BIGRAM_W 0.7f
#define STOP_W 0.2f

static const char *const stopwords[] = {
	"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have",
	"he", "her", "his", "i", "if", "in", "is", "it", "its", "of", "on", "or", "our", "she",
	"so", "that", "the", "their", "them", "there", "they", "this", "to", "was", "we", "were",
	"what", "which", "will", "with", "you", NULL};

void hark_sim_embed_req_free(struct hark_sim_embed_req *r)
{
	if (!r)
		return;
	free(r->inputs);
	free(r->dirs);
	json_decref(r->root);
	free(r);
}

int hark_sim_embed_parse(const char *body, size_t len, struct hark_sim_embed_req **out,
			 const char **param, char *err, size_t errlen)
{
	struct hark_sim_embed_req *r = calloc(1, sizeof(*r));
	json_error_t je;
	const json_t *in, *v;
	unsigned char d[32];
	int rc = HARK_ERR_INVALID_ARG;

	*out = NULL;
	*param = NULL;
	if (!r)
		return HARK_ERR_NOMEM;
	r->dimensions = -1;
	r->root = json_loadb(body, len, 0, &je);
	if (!r->root || !json_is_object(r->root)) {
		hark_errbuf_set(err, errlen, r->root ? "the request body must be a JSON object"
						     : "We could not parse the JSON body of your request");
		rc = HARK_ERR_FORMAT;
		goto fail;
	}
	v = json_object_get(r->root, "model");
	if (!json_is_string(v) || !json_string_length(v)) {
		*param = "model";
		hark_errbuf_set(err, errlen, "you must provide a model parameter");
		goto fail;
	}
	r->model = json_string_value(v);
	in = json_object_get(r->root, "input");
	*param = "input";
	if (json_is_string(in)) {
		r->n = 1;
	} else if (json_is_array(in) && json_array_size(in) > 0 &&
		   json_array_size(in) <= HARK_SIM_MAX_INPUTS) {
		r->n = json_array_size(in);
		for (size_t i = 0; i < r->n; i++)
			if (!json_is_string(json_array_get(in, i))) {
				hark_errbuf_set(err, errlen, "input[%zu] must be a string", i);
				goto fail;
			}
	} else {
		hark_errbuf_set(err, errlen,
				"input must be a string or a non-empty array of at most %d strings",
				HARK_SIM_MAX_INPUTS);
		goto fail;
	}
	r->inputs = calloc(r->n, sizeof(*r->inputs));
	if (!r->inputs) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < r->n; i++) {
		const json_t *s = json_is_string(in) ? in : json_array_get(in, i);
		r->inputs[i] = json_string_value(s);
		r->prompt_tokens += (long)hark_llm_tokens_count(r->inputs[i], json_string_length(s));
		if (hark_sim_find_directives(r->inputs[i], json_string_length(s), &r->dirs, &r->n_dirs,
					     &r->dirs_cap, 32)) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
	}
	v = json_object_get(r->root, "dimensions");
	if (v && !json_is_null(v)) {
		*param = "dimensions";
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65536) {
			hark_errbuf_set(err, errlen, "dimensions must be a positive integer");
			goto fail;
		}
		r->dimensions = (long)json_integer_value(v);
	}
	v = json_object_get(r->root, "encoding_format");
	if (v && !json_is_null(v)) {
		*param = "encoding_format";
		if (!json_is_string(v) || (strcmp(json_string_value(v), "float") &&
					   strcmp(json_string_value(v), "base64"))) {
			hark_errbuf_set(err, errlen, "encoding_format must be \"float\" or \"base64\"");
			goto fail;
		}
		r->base64 = strcmp(json_string_value(v), "base64") == 0;
	}
	*param = NULL;
	hark_sim_sha256(r->inputs[0], strlen(r->inputs[0]), d);
	hark_sim_hex(d, 32, r->identity);
	*out = r;
	return HARK_OK;
fail:
	hark_sim_embed_req_free(r);
	return rc;
}

static int word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static float word_weight(const char *w, size_t n)
{
	for (size_t i = 0; stopwords[i]; i++)
		if (strlen(stopwords[i]) == n && memcmp(stopwords[i], w, n) == 0)
			return STOP_W;
	return UNIGRAM_W;
}

static void add_feature(float *vec, int dims, uint64_t h, float w)
{
	h = hark_sim_mix(h);
	vec[h % (uint64_t)dims] += (h >> 63) ? -w : w;
}

void hark_sim_embed(const char *text, size_t len, int dims, float *vec)
{
	char word[64];
	uint64_t prev = 0;
	float prev_w = 0;
	double norm = 0;
	size_t i = 0;
	int any = 0;

	memset(vec, 0, (size_t)dims * sizeof(*vec));
	while (i < len) {
		size_t n = 0;
		uint64_t h;
		float w;

		if (len - i >= 6 && memcmp(text + i, "[[sim:", 6) == 0) {
			const char *close = memmem(text + i, len - i, "]]", 2);
			if (close) {
				i = (size_t)(close - text) + 2;
				continue;
			}
		}
		if (!word_byte((unsigned char)text[i])) {
			i++;
			continue;
		}
		while (i < len && word_byte((unsigned char)text[i])) {
			unsigned char c = (unsigned char)text[i++];
			if (n < sizeof(word))
				word[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		h = hark_sim_fnv(word, n);
		w = word_weight(word, n);
		add_feature(vec, dims, h, w);
		if (any)
			add_feature(vec, dims, hark_sim_mix(prev * 31 + h) ^ 0xB16A4D5ULL,
				    BIGRAM_W * (w < prev_w ? w : prev_w));
		prev = h;
		prev_w = w;
		any = 1;
	}
	for (int k = 0; k < dims; k++)
		norm += (double)vec[k] * vec[k];
	if (norm <= 0) {
		vec[hark_sim_fnv(text, len) % (uint64_t)dims] = 1.0f;
		return;
	}
	norm = sqrt(norm);
	for (int k = 0; k < dims; k++)
		vec[k] = (float)(vec[k] / norm);
}

/* ---- reply body ------------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
	int oom;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
	if (b->oom || b->n + more + 1 <= b->cap)
		return;
	size_t nc = b->cap ? b->cap : 4096;
	while (nc < b->n + more + 1)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (!np) {
		b->oom = 1;
		return;
	}
	b->p = np;
	b->cap = nc;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void base64(struct sbuf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	sb_reserve(b, (n + 2) / 3 * 4);
	if (b->oom)
		return;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
		sb_add(b, o, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
			     '='};
		sb_add(b, o, 4);
	}
}

char *hark_sim_embed_reply(const struct hark_sim_embed_req *r, const char *model, int dims,
			   size_t *len)
{
	struct sbuf b = {0};
	float *vec = malloc((size_t)dims * sizeof(*vec));
	char num[160];
	json_t *mj = json_string(model);
	char *ms = mj ? json_dumps(mj, JSON_ENCODE_ANY) : NULL;

	json_decref(mj);
	if (!vec || !ms) {
		free(vec);
		free(ms);
		return NULL;
	}
	sb_str(&b, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < r->n; i++) {
		hark_sim_embed(r->inputs[i], strlen(r->inputs[i]), dims, vec);
		snprintf(num, sizeof(num), "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
			 i ? "," : "", i);
		sb_str(&b, num);
		if (r->base64) {
			unsigned char *raw = (unsigned char *)vec; /* little-endian float32 */
			sb_add(&b, "\"", 1);
			base64(&b, raw, (size_t)dims * sizeof(float));
			sb_add(&b, "\"", 1);
		} else {
			sb_add(&b, "[", 1);
			for (int k = 0; k < dims; k++) {
				int n = snprintf(num, sizeof(num), "%s%.7g", k ? "," : "", (double)vec[k]);
				sb_add(&b, num, (size_t)n);
			}
			sb_add(&b, "]", 1);
		}
		sb_add(&b, "}", 1);
	}
	sb_str(&b, "],\"model\":");
	sb_str(&b, ms);
	snprintf(num, sizeof(num), ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}",
		 r->prompt_tokens, r->prompt_tokens);
	sb_str(&b, num);
	free(vec);
	free(ms);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.n;
	return b.p;
}
