/*
 * Cross-meeting search: turns a free-text query into a safe FTS5 query
 * (words only, each quoted, OR-joined; user syntax never reaches SQLite),
 * runs BM25 through the store, and, when an LLM client is given and vectors
 * of the embedding route's model are stored, embeds the query, ranks the
 * stored vectors by cosine similarity (a brute-force scan) and fuses both
 * lists by reciprocal rank fusion. Also embeds document texts once
 * (vectors keyed by the text's sha256 and the model that made them) and
 * renders hits as JSON. Deterministic and locale-free.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/search.h"
#include "llm/llm.h"
#include "util/errbuf.h"

#define EMBED_BATCH 256          /* texts per hark_llm_embed call */
#define TASK_MAX 64              /* bytes of a route name */
#define META_PREFIX "search.embed_model."

struct hark_search_params hark_search_default_params(void)
{
	struct hark_search_params p;

	memset(&p, 0, sizeof(p));
	p.limit = 10;
	p.hybrid = 1;
	p.embed_task = "embed";
	p.rrf_k = 60;
	return p;
}

/* ---- query words ------------------------------------------------------------------ */

/*
 * Decodes one UTF-8 code point at s[i] (len bytes); returns its byte length
 * (1 for an invalid byte, reported as *cp = 0xfffd).
 */
static size_t utf8_next(const unsigned char *s, size_t len, size_t i, unsigned *cp)
{
	unsigned c = s[i];
	size_t k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		k = 1;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 2;
		*cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 3;
		*cp = c & 0x07;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	if (len - i <= k) {
		*cp = 0xfffd;
		return 1;
	}
	for (size_t j = 1; j <= k; j++) {
		if ((s[i + j] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		*cp = (*cp << 6) | (s[i + j] & 0x3f);
	}
	return k + 1;
}

/* Letters and digits: ASCII alphanumerics, and non-ASCII code points
 * outside the punctuation, symbol and emoji blocks. */
static int word_cp(unsigned cp)
{
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z');
	if (cp == 0xfffd || cp < 0xc0 || cp == 0xd7 || cp == 0xf7)
		return 0;
	if ((cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x3000 && cp <= 0x303f) ||
	    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff0f) ||
	    (cp >= 0xff1a && cp <= 0xff20) || (cp >= 0xff3b && cp <= 0xff40) ||
	    (cp >= 0xff5b && cp <= 0xff65) || (cp >= 0x1f000 && cp <= 0x1ffff) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xe000 && cp <= 0xf8ff))
		return 0;
	return 1;
}

static int is_stopword(const char *w)
{
	static const char *const stop[] = {
		"a",    "an",   "and",  "are",  "as",   "at",   "be",    "but",  "by",
		"did",  "do",   "does", "for",  "from", "had",  "has",   "have", "he",
		"her",  "his",  "i",    "in",   "is",   "it",   "its",   "me",   "my",
		"of",   "on",   "or",   "our",  "she",  "so",   "than",  "that", "the",
		"their", "them", "then", "there", "these", "they", "this", "to",  "us",
		"was",  "we",   "were", "what", "when", "where", "which", "who", "why",
		"will", "with", "you",  "your", "about", "how",  "any",   "all",  "been",
	};

	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (strcmp(w, stop[i]) == 0)
			return 1;
	return 0;
}

struct qwords {
	char w[HARK_SEARCH_WORDS_MAX][HARK_SEARCH_WORD_MAX + 1];
	int stop[HARK_SEARCH_WORDS_MAX];
	size_t n;
};

/* The words of query (see hark_search_fts_query), lowercased, deduplicated. */
static void split_words(const char *query, struct qwords *q)
{
	const unsigned char *s = (const unsigned char *)query;
	size_t len = strnlen(query, HARK_SEARCH_QUERY_MAX), i = 0;

	memset(q, 0, sizeof(*q));
	/* never cut a UTF-8 sequence at the cap */
	if (len == HARK_SEARCH_QUERY_MAX)
		while (len > 0 && (s[len] & 0xc0) == 0x80)
			len--;
	while (i < len && q->n < HARK_SEARCH_WORDS_MAX) {
		char buf[HARK_SEARCH_WORD_MAX + 1];
		size_t bl = 0, k;
		unsigned cp;
		int dup = 0;

		k = utf8_next(s, len, i, &cp);
		if (!word_cp(cp)) {
			i += k;
			continue;
		}
		while (i < len) {
			k = utf8_next(s, len, i, &cp);
			if (!word_cp(cp))
				break;
			if (bl + k <= HARK_SEARCH_WORD_MAX) {
				for (size_t j = 0; j < k; j++) {
					unsigned char b = s[i + j];

					buf[bl++] = (char)((b >= 'A' && b <= 'Z') ? b - 'A' + 'a' : b);
				}
			}
			i += k;
		}
		buf[bl] = '\0';
		for (size_t j = 0; j < q->n; j++)
			dup |= strcmp(q->w[j], buf) == 0;
		if (dup || !bl)
			continue;
		memcpy(q->w[q->n], buf, bl + 1);
		q->stop[q->n] = is_stopword(buf);
		q->n++;
	}
}

int hark_search_fts_query(const char *query, char *out, size_t outlen, char *err, size_t errlen)
{
	struct qwords q;
	size_t o = 0, content = 0;

	if (out && outlen)
		out[0] = '\0';
	if (!query || !out) {
		hark_errbuf_set(err, errlen, "no search query given");
		return HARK_ERR_INVALID_ARG;
	}
	split_words(query, &q);
	for (size_t i = 0; i < q.n; i++)
		content += !q.stop[i];
	if (q.n == 0) {
		hark_errbuf_set(err, errlen,
				"the search query has no words (letters or digits) to look for");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < q.n; i++) {
		size_t wl = strlen(q.w[i]);

		if (content && q.stop[i])
			continue; /* stop words only count when nothing else is left */
		if (o + wl + 7 > outlen) {
			hark_errbuf_set(err, errlen, "search query buffer too small");
			return HARK_ERR_LIMIT;
		}
		if (o) {
			memcpy(out + o, " OR ", 4);
			o += 4;
		}
		out[o++] = '"';
		memcpy(out + o, q.w[i], wl);
		o += wl;
		out[o++] = '"';
		out[o] = '\0';
	}
	return HARK_OK;
}

/* ---- embeddings -------------------------------------------------------------------- */

static int task_ok(const char *task)
{
	size_t n = strnlen(task, TASK_MAX + 1);

	if (n == 0 || n > TASK_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = task[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* The model the store recorded for task's vectors into *model (heap), or NULL. */
static int recorded_model(struct hark_store *st, const char *task, char **model)
{
	char key[sizeof(META_PREFIX) + TASK_MAX];
	int rc;

	*model = NULL;
	snprintf(key, sizeof(key), "%s%s", META_PREFIX, task);
	rc = hark_store_meta_get(st, key, model);
	if (rc == HARK_ERR_NOT_FOUND) {
		*model = NULL;
		return HARK_OK;
	}
	return rc;
}

int hark_search_embed_docs(struct hark_store *st, struct hark_llm *llm, const char *task,
			   const char *const *texts, size_t n, const char *job_id, char *err,
			   size_t errlen)
{
	char (*shas)[HARK_SHA_HEX_LEN] = NULL;
	const char **miss_txt = NULL, **miss_sha = NULL, **uniq_sha = NULL;
	float **vecs = NULL;
	size_t *dims = NULL, n_uniq = 0, n_miss = 0;
	char *model = NULL;
	int rc = HARK_OK;

	if (err && errlen)
		err[0] = '\0';
	if (!task)
		task = "embed";
	if (!st || !llm || (!texts && n) || !task_ok(task)) {
		hark_errbuf_set(err, errlen, "invalid argument to embed documents");
		return HARK_ERR_INVALID_ARG;
	}
	if (n > HARK_STORE_BATCH_MAX) {
		hark_errbuf_set(err, errlen, "%zu texts exceed the cap of %d", n,
				HARK_STORE_BATCH_MAX);
		return HARK_ERR_LIMIT;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = texts[i] ? strnlen(texts[i], HARK_STORE_DOC_TEXT_MAX + 1) : 0;

		if (len == 0 || len > HARK_STORE_DOC_TEXT_MAX) {
			hark_errbuf_set(err, errlen, "text %zu is %s", i,
					len ? "longer than the document cap" : "empty");
			return len ? HARK_ERR_LIMIT : HARK_ERR_INVALID_ARG;
		}
	}
	if (n == 0)
		return HARK_OK;
	shas = calloc(n, sizeof(*shas));
	miss_txt = calloc(n, sizeof(*miss_txt));
	miss_sha = calloc(n, sizeof(*miss_sha));
	uniq_sha = calloc(n, sizeof(*uniq_sha));
	vecs = calloc(n, sizeof(*vecs));
	dims = calloc(n, sizeof(*dims));
	if (!shas || !miss_txt || !miss_sha || !uniq_sha || !vecs || !dims) {
		rc = HARK_ERR_NOMEM;
		hark_errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	/* unique texts by sha256 (first occurrence kept, order preserved) */
	for (size_t i = 0; i < n; i++) {
		int dup = 0;

		hark_store_key_hash(texts[i], shas[i]);
		for (size_t j = 0; j < n_uniq && !dup; j++)
			dup = strcmp(uniq_sha[j], shas[i]) == 0;
		if (dup)
			continue;
		uniq_sha[n_uniq] = shas[i];
		miss_txt[n_uniq] = texts[i];
		n_uniq++;
	}
	rc = recorded_model(st, task, &model);
	if (rc == HARK_OK && model) {
		rc = hark_store_embedding_get_many(st, model, uniq_sha, n_uniq, vecs, dims);
		if (rc == HARK_ERR_INVALID_ARG || rc == HARK_ERR_LIMIT) {
			rc = HARK_OK; /* a recorded model the store cannot key: embed all */
			memset(vecs, 0, n * sizeof(*vecs));
		}
	}
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "%s", hark_store_errmsg(st));
		goto out;
	}
	for (size_t i = 0; i < n_uniq; i++) {
		if (vecs[i])
			continue;
		miss_txt[n_miss] = miss_txt[i];
		miss_sha[n_miss] = uniq_sha[i];
		n_miss++;
	}
	for (size_t b = 0; rc == HARK_OK && b < n_miss; b += EMBED_BATCH) {
		size_t m = n_miss - b < EMBED_BATCH ? n_miss - b : EMBED_BATCH;
		struct hark_llm_embed_result er;

		memset(&er, 0, sizeof(er));
		rc = hark_llm_embed(llm, task, miss_txt + b, m, job_id, NULL, &er);
		if (rc != HARK_OK) {
			hark_errbuf_set(err, errlen, "embedding failed: %s",
					er.error[0] ? er.error : hark_strerror(rc));
		} else if (!er.vectors || er.dim == 0 || !er.model[0]) {
			rc = HARK_ERR_FORMAT;
			hark_errbuf_set(err, errlen, "embedding reply without vectors");
		} else {
			rc = hark_store_embedding_put_many(st, er.model, miss_sha + b, m, er.vectors,
							   er.dim);
			if (rc == HARK_OK && (!model || strcmp(model, er.model) != 0)) {
				char key[sizeof(META_PREFIX) + TASK_MAX];

				snprintf(key, sizeof(key), "%s%s", META_PREFIX, task);
				rc = hark_store_meta_set(st, key, er.model);
				free(model);
				model = strdup(er.model);
				if (rc == HARK_OK && !model)
					rc = HARK_ERR_NOMEM;
			}
			if (rc != HARK_OK)
				hark_errbuf_set(err, errlen, "storing embeddings: %s",
						hark_store_errmsg(st));
		}
		hark_llm_embed_result_clear(&er);
	}
out:
	if (vecs)
		for (size_t i = 0; i < n; i++)
			free(vecs[i]);
	free(vecs);
	free(dims);
	free(shas);
	free(miss_txt);
	free(miss_sha);
	free(uniq_sha);
	free(model);
	return rc;
}

/* ---- vector ranking -------------------------------------------------------------------- */

struct vtop {
	char sha[HARK_SHA_HEX_LEN];
	double sim;
};

struct vscan {
	const float *q;    /* unit query vector */
	size_t dim;
	struct vtop top[HARK_SEARCH_CANDIDATES];
	size_t n;
};

/* Keeps the HARK_SEARCH_CANDIDATES most similar vectors with a positive
 * cosine (ties: smaller sha). */
static int vscan_cb(const char *sha, const float *v, size_t dim, void *ud)
{
	struct vscan *vs = ud;
	double dot = 0, nv = 0, sim;
	size_t i;

	if (dim != vs->dim)
		return 0; /* another dimension: not comparable */
	for (i = 0; i < dim; i++) {
		dot += (double)vs->q[i] * v[i];
		nv += (double)v[i] * v[i];
	}
	if (!(nv > 0))
		return 0;
	sim = dot / sqrt(nv);
	if (!(sim > 0))
		return 0; /* orthogonal or opposed: no evidence of relevance */
	if (vs->n == HARK_SEARCH_CANDIDATES) {
		const struct vtop *w = &vs->top[vs->n - 1];

		if (sim < w->sim || (sim == w->sim && strcmp(sha, w->sha) > 0))
			return 0;
	}
	i = vs->n < HARK_SEARCH_CANDIDATES ? vs->n++ : HARK_SEARCH_CANDIDATES - 1;
	while (i > 0 && (vs->top[i - 1].sim < sim ||
			 (vs->top[i - 1].sim == sim && strcmp(vs->top[i - 1].sha, sha) > 0))) {
		vs->top[i] = vs->top[i - 1];
		i--;
	}
	snprintf(vs->top[i].sha, sizeof(vs->top[i].sha), "%s", sha);
	vs->top[i].sim = sim;
	return 0;
}

/*
 * The vector list: embeds the query with the route, ranks the stored
 * vectors of the model that answered, and loads the documents behind the
 * best ones (filters applied) with vec_rank set. *out NULL / *n 0 when the
 * store has none. A failed embedding is a warning (HARK_OK, *warned = 1,
 * err set).
 */
static int vector_list(struct hark_store *st, struct hark_llm *llm, const char *task,
		       const char *query, const char *fts, const struct hark_search_params *p,
		       struct hark_search_hit **out, size_t *n, int *warned, char *err,
		       size_t errlen)
{
	struct hark_llm_embed_result er;
	struct vscan *vs = NULL;
	const char *shas[HARK_SEARCH_CANDIDATES];
	float *q = NULL;
	double norm = 0;
	int rc;

	*out = NULL;
	*n = 0;
	memset(&er, 0, sizeof(er));
	rc = hark_llm_embed(llm, task, &query, 1, NULL, NULL, &er);
	if (rc != HARK_OK || !er.vectors || !er.dim || !er.model[0]) {
		hark_errbuf_set(err, errlen, "query embedding failed (%s); BM25 results only",
				er.error[0] ? er.error : hark_strerror(rc ? rc : HARK_ERR_FORMAT));
		*warned = 1;
		rc = HARK_OK;
		goto out;
	}
	vs = calloc(1, sizeof(*vs));
	q = malloc(er.dim * sizeof(float));
	if (!vs || !q) {
		rc = HARK_ERR_NOMEM;
		hark_errbuf_set(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < er.dim; i++)
		norm += (double)er.vectors[i] * er.vectors[i];
	if (!(norm > 0) || !isfinite(norm)) {
		hark_errbuf_set(err, errlen, "query embedding is a zero vector; BM25 results only");
		*warned = 1;
		goto out;
	}
	norm = sqrt(norm);
	for (size_t i = 0; i < er.dim; i++)
		q[i] = (float)(er.vectors[i] / norm);
	vs->q = q;
	vs->dim = er.dim;
	rc = hark_store_embedding_scan(st, er.model, vscan_cb, vs);
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "%s", hark_store_errmsg(st));
		goto out;
	}
	for (size_t i = 0; i < vs->n; i++)
		shas[i] = vs->top[i].sha;
	if (vs->n) {
		rc = hark_store_search_docs_by_sha(st, shas, vs->n, p->kind, p->meeting, fts,
						   2 * HARK_SEARCH_CANDIDATES, out, n);
		if (rc != HARK_OK)
			hark_errbuf_set(err, errlen, "%s", hark_store_errmsg(st));
	}
	for (size_t i = 0; rc == HARK_OK && i < *n; i++)
		(*out)[i].vec_rank = (int)i + 1;
out:
	hark_llm_embed_result_clear(&er);
	free(vs);
	free(q);
	return rc;
}

/* ---- fusion ---------------------------------------------------------------------------- */

static int fused_cmp(const void *a, const void *b)
{
	const struct hark_search_hit *x = a, *y = b;
	int bx, by;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	/* ties: the better single-list rank first, then the older document */
	bx = x->bm25_rank && (!x->vec_rank || x->bm25_rank < x->vec_rank) ? x->bm25_rank
									  : x->vec_rank;
	by = y->bm25_rank && (!y->vec_rank || y->bm25_rank < y->vec_rank) ? y->bm25_rank
									  : y->vec_rank;
	if (bx != by)
		return bx < by ? -1 : 1;
	return x->doc_id < y->doc_id ? -1 : x->doc_id > y->doc_id;
}

/*
 * Reciprocal rank fusion of the BM25 hits (bm, nb) and the vector hits
 * (vh, nv) into a new array (both inputs are consumed: their strings move
 * into the result and the arrays are freed).
 */
static int fuse(struct hark_search_hit *bm, size_t nb, struct hark_search_hit *vh, size_t nv,
		double k, struct hark_search_hit **out, size_t *n)
{
	struct hark_search_hit *f = calloc(nb + nv ? nb + nv : 1, sizeof(*f));
	size_t nf = 0;

	if (!f) {
		hark_search_hits_free(bm, nb);
		hark_search_hits_free(vh, nv);
		return HARK_ERR_NOMEM;
	}
	for (size_t i = 0; i < nb; i++) {
		f[nf] = bm[i];
		f[nf].score = 1.0 / (k + bm[i].bm25_rank);
		nf++;
	}
	for (size_t i = 0; i < nv; i++) {
		size_t j;

		for (j = 0; j < nf; j++)
			if (f[j].doc_id == vh[i].doc_id)
				break;
		if (j < nf) {
			if (!f[j].vec_rank) {
				f[j].vec_rank = vh[i].vec_rank;
				f[j].score += 1.0 / (k + vh[i].vec_rank);
			}
			free(vh[i].kind);
			free(vh[i].meeting);
			free(vh[i].speaker);
			free(vh[i].text);
			free(vh[i].snippet);
			continue;
		}
		f[nf] = vh[i];
		f[nf].bm25_rank = 0;
		f[nf].score = 1.0 / (k + vh[i].vec_rank);
		nf++;
	}
	free(bm);
	free(vh);
	qsort(f, nf, sizeof(*f), fused_cmp);
	*out = f;
	*n = nf;
	return HARK_OK;
}

/* Frees hits[limit..n) (their strings; the array stays); returns the new count. */
static size_t hits_truncate(struct hark_search_hit *hits, size_t n, size_t limit)
{
	for (size_t i = limit; i < n; i++) {
		free(hits[i].kind);
		free(hits[i].meeting);
		free(hits[i].speaker);
		free(hits[i].text);
		free(hits[i].snippet);
	}
	return n > limit ? limit : n;
}

/* ---- the query ---------------------------------------------------------------------------- */

int hark_search_query(struct hark_store *st, struct hark_llm *llm, const char *query,
		      const struct hark_search_params *p, struct hark_search_hit **out, size_t *n,
		      char *err, size_t errlen)
{
	struct hark_search_params d = hark_search_default_params();
	struct hark_search_hit *bm = NULL, *vh = NULL, *all = NULL;
	size_t nb = 0, nv = 0, na = 0, limit;
	char fts[HARK_SEARCH_WORDS_MAX * (HARK_SEARCH_WORD_MAX + 6) + 8];
	char qtext[HARK_SEARCH_QUERY_MAX + 1];
	const char *task;
	char *model = NULL;
	int rc, hybrid = 0, warned = 0;

	if (err && errlen)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	if (!st || !query || !out || !n) {
		hark_errbuf_set(err, errlen, "invalid argument to search");
		return HARK_ERR_INVALID_ARG;
	}
	if (!p)
		p = &d;
	limit = p->limit ? p->limit : 10;
	if (limit > HARK_SEARCH_LIMIT_MAX)
		limit = HARK_SEARCH_LIMIT_MAX;
	task = p->embed_task && *p->embed_task ? p->embed_task : "embed";
	rc = hark_search_fts_query(query, fts, sizeof(fts), err, errlen);
	if (rc != HARK_OK)
		return rc;

	if (p->hybrid && llm) {
		if (!task_ok(task)) {
			hark_errbuf_set(err, errlen, "invalid embedding route name");
			return HARK_ERR_INVALID_ARG;
		}
		rc = recorded_model(st, task, &model);
		if (rc != HARK_OK) {
			hark_errbuf_set(err, errlen, "%s", hark_store_errmsg(st));
			return rc;
		}
		hybrid = model != NULL; /* no vectors were ever stored: nothing to fuse */
		free(model);
	}

	rc = hark_store_search_bm25_in(st, fts, p->kind, p->meeting,
				       hybrid ? HARK_SEARCH_CANDIDATES : limit, &bm, &nb);
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "%s", hark_store_errmsg(st));
		return rc;
	}
	if (!hybrid) {
		*out = bm;
		*n = nb;
		return HARK_OK;
	}

	/* the embedding sees the query as typed (cut at the query cap, never
	 * inside a UTF-8 sequence) */
	{
		size_t ql = strnlen(query, HARK_SEARCH_QUERY_MAX);

		while (ql > 0 && query[ql] && ((unsigned char)query[ql] & 0xc0) == 0x80)
			ql--;
		memcpy(qtext, query, ql);
		qtext[ql] = '\0';
	}
	rc = vector_list(st, llm, task, qtext, fts, p, &vh, &nv, &warned, err, errlen);
	if (rc != HARK_OK) {
		hark_search_hits_free(bm, nb);
		return rc;
	}
	if (nv == 0) {
		/* nothing to fuse: keep BM25 scores, cut to the limit */
		nb = hits_truncate(bm, nb, limit);
		free(vh);
		*out = bm;
		*n = nb;
		return HARK_OK;
	}
	rc = fuse(bm, nb, vh, nv, p->rrf_k > 0 ? p->rrf_k : 60, &all, &na);
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "out of memory");
		return rc;
	}
	na = hits_truncate(all, na, limit);
	if (!warned && err && errlen)
		err[0] = '\0';
	*out = all;
	*n = na;
	return HARK_OK;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
	json_t *v;

	if (!s)
		return json_null();
	v = json_string(s);
	return v ? v : json_null();
}

json_t *hark_search_hits_to_json(const char *query, const struct hark_search_hit *hits, size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	int bad = !o || !arr;

	for (size_t i = 0; !bad && i < n; i++) {
		const struct hark_search_hit *h = &hits[i];
		json_t *r = json_object();

		if (!r) {
			bad = 1;
			break;
		}
		bad |= json_object_set_new(r, "kind", str_or_null(h->kind));
		bad |= json_object_set_new(r, "meeting", str_or_null(h->meeting));
		bad |= json_object_set_new(r, "speaker", str_or_null(h->speaker));
		bad |= json_object_set_new(r, "start", h->start_s >= 0 && isfinite(h->start_s)
							       ? json_real(h->start_s)
							       : json_null());
		bad |= json_object_set_new(r, "end", h->end_s >= 0 && isfinite(h->end_s)
							     ? json_real(h->end_s)
							     : json_null());
		bad |= json_object_set_new(r, "turn",
					   h->turn >= 0 ? json_integer(h->turn) : json_null());
		bad |= json_object_set_new(r, "text", str_or_null(h->text));
		bad |= json_object_set_new(r, "snippet", str_or_null(h->snippet));
		bad |= json_object_set_new(r, "score",
					   json_real(isfinite(h->score) ? h->score : 0));
		bad |= json_object_set_new(r, "bm25_rank", json_integer(h->bm25_rank));
		bad |= json_object_set_new(r, "vec_rank", json_integer(h->vec_rank));
		bad |= json_object_set_new(r, "chunk_sha",
					   h->chunk_sha[0] ? json_string(h->chunk_sha) : json_null());
		bad |= json_array_append_new(arr, r);
	}
	if (!bad)
		bad |= json_object_set_new(o, "query", str_or_null(query));
	if (!bad) {
		bad |= json_object_set_new(o, "results", arr);
		arr = NULL;
	}
	if (bad) {
		json_decref(o);
		json_decref(arr);
		return NULL;
	}
	return o;
}
