/*
 * Cross-meeting search over the documents that analysis stores (chunks,
 * summaries, topics, decisions, actions, questions; see
 * hark_store_meeting_put). A free-text query is turned into a safe FTS5
 * query (its words, each quoted, joined by OR, so documents matching more
 * and rarer words rank first under BM25; user syntax never reaches
 * SQLite). With an LLM client and stored vectors, the BM25 list is fused
 * with a vector list (cosine over the stored embeddings of the embedding
 * route's model) by reciprocal rank fusion. docs/SEARCH.md describes the
 * ranking in full.
 */
#ifndef HARK_ANALYZE_SEARCH_H
#define HARK_ANALYZE_SEARCH_H

#include <stddef.h>

#include <jansson.h>

#include "store/store.h"

struct hark_llm;

#define HARK_SEARCH_QUERY_MAX 1024 /* bytes of a query used; the rest is ignored */
#define HARK_SEARCH_WORDS_MAX 32   /* words of a query used */
#define HARK_SEARCH_WORD_MAX 64    /* bytes per word (longer words are cut) */
#define HARK_SEARCH_LIMIT_MAX 100
#define HARK_SEARCH_CANDIDATES 50  /* per list (BM25, vectors) before fusion */

struct hark_search_params {
	size_t limit;           /* results wanted; 0 = 10; more than 100 = 100 */
	const char *kind;       /* document kind filter; NULL = all */
	const char *meeting;    /* meeting name filter; NULL = all */
	int hybrid;             /* 1: fuse with embeddings when llm != NULL and vectors exist */
	const char *embed_task; /* LLM route of the embeddings; NULL = "embed" */
	double rrf_k;           /* reciprocal rank fusion constant; <= 0 = 60 */
};

/* limit 10, kind/meeting NULL, hybrid 1, embed_task "embed", rrf_k 60. */
struct hark_search_params hark_search_default_params(void);

/*
 * Builds the FTS5 query for a free-text query into out (outlen bytes): the
 * query's words (letters and digits, Unicode letters included; at most
 * HARK_SEARCH_WORDS_MAX, each cut to HARK_SEARCH_WORD_MAX bytes, from the
 * first HARK_SEARCH_QUERY_MAX bytes), lowercased (ASCII), duplicates and
 * common English stop words dropped (unless nothing else is left), each in
 * double quotes, joined by " OR ". HARK_ERR_INVALID_ARG with a message in
 * err when the query has no word; HARK_ERR_LIMIT when out is too small
 * (2 KiB always suffices: HARK_SEARCH_WORDS_MAX * (HARK_SEARCH_WORD_MAX + 6)).
 */
int hark_search_fts_query(const char *query, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Searches the store. llm NULL (or p->hybrid 0, or no stored vectors for
 * the route) = BM25 only: score = -bm25, higher better. Hybrid: the top
 * HARK_SEARCH_CANDIDATES of BM25 and of cosine similarity between the
 * query's embedding and the stored vectors of the embedding model are
 * fused, score = sum of 1 / (rrf_k + rank) over the lists a document is
 * in; bm25_rank / vec_rank (1-based, 0 = absent) tell which. *out (caller
 * frees with hark_search_hits_free) gets at most p->limit hits, best first;
 * *n may be 0. If the query embedding fails, the BM25 results are returned
 * with HARK_OK and the reason in err (a warning). Errors: INVALID_ARG (no
 * word in the query, bad filter), store errors; err says why.
 */
int hark_search_query(struct hark_store *st, struct hark_llm *llm, const char *query,
		      const struct hark_search_params *p, struct hark_search_hit **out, size_t *n,
		      char *err, size_t errlen);

/*
 * Embeds the texts (n <= HARK_STORE_BATCH_MAX, each 1..HARK_STORE_DOC_TEXT_MAX
 * bytes) whose sha256 has no stored vector for the route's model yet and
 * stores the vectors under the model that produced them (keyed by the text's
 * sha256, the key hark_store_meeting_put records for each document). The
 * route's model is remembered in the store (setting
 * "search.embed_model.<task>") after the first call, so texts already
 * embedded cost no request. task NULL = "embed"; job_id (may be NULL) for
 * accounting. Errors of hark_llm_embed are returned with its reason in err.
 */
int hark_search_embed_docs(struct hark_store *st, struct hark_llm *llm, const char *task,
			   const char *const *texts, size_t n, const char *job_id, char *err,
			   size_t errlen);

/*
 * {"query": query, "results": [{"kind","meeting","speaker","start","end",
 * "turn","text","snippet","score","bm25_rank","vec_rank","chunk_sha"}]}: a
 * new reference (NULL on allocation failure). speaker, start, end, turn and
 * chunk_sha are null when unknown (NULL, < 0, "").
 */
json_t *hark_search_hits_to_json(const char *query, const struct hark_search_hit *hits, size_t n);

#endif /* HARK_ANALYZE_SEARCH_H */
