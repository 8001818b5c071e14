/*
 * ROUGE scores (Lin, 2004) between a candidate text and one reference text,
 * for judging extractive and abstractive meeting summaries: ROUGE-1 and
 * ROUGE-2 (n-gram overlap with clipped counts: a candidate n-gram counts at
 * most as often as it occurs in the reference) and ROUGE-L (longest common
 * subsequence of the two whole token sequences, i.e. the "rougeL" variant of
 * the common rouge-score package; the sentence-level "union LCS" ROUGE-Lsum
 * is NOT implemented). Preprocessing follows the original ROUGE script and
 * rouge-score: ASCII letters are lowercased, every byte that is not [a-z0-9]
 * separates tokens (so non-ASCII text and punctuation vanish), and, when
 * stemming is on (the default), tokens longer than three bytes made only of
 * letters are reduced with the Porter (1980) stemmer implemented here from
 * the published algorithm. Each score is precision (matches / candidate
 * n-grams), recall (matches / reference n-grams) and F1 (their harmonic
 * mean); any count of zero gives 0. Pure functions, locale-free.
 */
#ifndef HARK_ANALYZE_ROUGE_H
#define HARK_ANALYZE_ROUGE_H

#include <stddef.h>

/* Longest token the Porter stemmer handles; longer tokens are kept as they
 * are (bytes). */
#define HARK_ROUGE_MAX_WORD 64

struct hark_rouge_params {
	int stem;              /* 1: Porter-stem tokens longer than 3 letters (1) */
	size_t max_tokens;     /* cap on the tokens of either text (1,000,000);
				* over it -> HARK_ERR_LIMIT */
	size_t max_lcs_cells;  /* cap on cand_tokens * ref_tokens for ROUGE-L
				* (400,000,000); over it -> HARK_ERR_LIMIT */
};

struct hark_rouge_params hark_rouge_default_params(void);

/* One ROUGE measure, each in [0, 1]. */
struct hark_rouge_score {
	double precision;
	double recall;
	double f1;
};

struct hark_rouge_result {
	struct hark_rouge_score rouge1;
	struct hark_rouge_score rouge2;
	struct hark_rouge_score rougel;
	size_t cand_tokens;    /* tokens after preprocessing */
	size_t ref_tokens;
};

/*
 * Scores candidate against reference (NUL-terminated UTF-8; NULL counts as
 * ""), p NULL = defaults, into *out (zeroed on error). An empty side gives
 * all-zero scores (identity of two empty texts is 0, as in rouge-score).
 * Errors: HARK_ERR_INVALID_ARG (out NULL), HARK_ERR_LIMIT (over a cap),
 * HARK_ERR_NOMEM; err (errlen bytes, may be NULL) says why.
 */
int hark_rouge_compute(const char *candidate, const char *reference,
		       const struct hark_rouge_params *p, struct hark_rouge_result *out,
		       char *err, size_t errlen);

/*
 * Porter stem of the lowercase ASCII word w[0..len) into out (cap bytes,
 * NUL-terminated, truncated to cap - 1). Words of 1-2 letters, words longer
 * than HARK_ROUGE_MAX_WORD and words with a byte outside [a-z] are copied
 * unchanged. Returns the stem's length (before any truncation to cap).
 */
size_t hark_rouge_porter_stem(const char *w, size_t len, char *out, size_t cap);

#endif /* HARK_ANALYZE_ROUGE_H */
