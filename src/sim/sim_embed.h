/*
 * Embeddings of hark-llm-sim: parsing of /embeddings requests and
 * deterministic vectors built by feature hashing of lower-cased word
 * unigrams and bigrams (signed buckets, common English function words
 * down-weighted), L2-normalised, so texts sharing words and phrases get a
 * high cosine similarity and unrelated texts a low one.
 */
#ifndef HARK_SIM_EMBED_H
#define HARK_SIM_EMBED_H

#include <stddef.h>

#include <jansson.h>

#include "sim/sim_text.h"

#define HARK_SIM_MAX_INPUTS 2048

struct hark_sim_embed_req {
	json_t *root;          /* the parsed body (owns the borrowed strings) */
	const char *model;
	size_t n;              /* inputs */
	const char **inputs;   /* n entries, borrowed from root */
	long dimensions;       /* requested, or -1 */
	int base64;            /* encoding_format "base64" */
	long prompt_tokens;    /* sum of hark_llm_tokens_count over inputs */
	char identity[65];     /* sha256 of the first input */
	struct hark_sim_directive *dirs;
	size_t n_dirs, dirs_cap;
};

/* Parses an /embeddings body; like hark_sim_chat_parse (400 on failure,
 * *param names the member). *out: hark_sim_embed_req_free. */
int hark_sim_embed_parse(const char *body, size_t len, struct hark_sim_embed_req **out,
			 const char **param, char *err, size_t errlen);
void hark_sim_embed_req_free(struct hark_sim_embed_req *r);

/* Unit-norm embedding of text[0..len) into vec[0..dims) (dims >= 1). */
void hark_sim_embed(const char *text, size_t len, int dims, float *vec);

/* The 200 reply body for r with dims-long vectors under model name model:
 * heap, *len bytes; NULL on allocation failure. */
char *hark_sim_embed_reply(const struct hark_sim_embed_req *r, const char *model, int dims,
			   size_t *len);

#endif /* HARK_SIM_EMBED_H */
