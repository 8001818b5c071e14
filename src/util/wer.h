/*
 * Word error rate: Levenshtein alignment of a hypothesis against a reference
 * over word tokens, reporting substitutions, deletions and insertions
 * separately so results over a corpus can be summed before dividing
 * (corpus WER = sum(S+D+I) / sum(N)). Memory is two DP rows; time is
 * O(N * M), capped at HARK_WER_MAX_CELLS.
 */
#ifndef HARK_UTIL_WER_H
#define HARK_UTIL_WER_H

#include <stddef.h>
#include <stdint.h>

/* Cap on N * M alignment cells (about a minute of CPU); split longer
 * inputs (e.g. per file or per chapter) and sum the counts. */
#define HARK_WER_MAX_CELLS ((uint64_t)20000000000ULL)

struct hark_wer_counts {
	uint64_t sub;       /* S */
	uint64_t del;       /* D: reference words missing from the hypothesis */
	uint64_t ins;       /* I: extra hypothesis words */
	uint64_t hits;      /* correct words */
	uint64_t ref_words; /* N */
	uint64_t hyp_words;
};

/*
 * Aligns hyp[0..n_hyp) against ref[0..n_ref) (NUL-terminated words compared
 * bytewise) and stores the counts of a minimum-edit alignment in *out. Ties
 * prefer match/substitution, then deletion, then insertion. Returns
 * HARK_ERR_INVALID_ARG, HARK_ERR_LIMIT (n_ref * n_hyp > HARK_WER_MAX_CELLS)
 * or HARK_ERR_NOMEM.
 */
int hark_wer_align(const char *const *ref, size_t n_ref, const char *const *hyp, size_t n_hyp,
		   struct hark_wer_counts *out);

/*
 * Splits ref and hyp (UTF-8) into words on whitespace and aligns them. With
 * normalize non-zero both are first passed through hark_textnorm_normalize()
 * with default parameters. Same errors as hark_wer_align (plus those of the
 * normaliser).
 */
int hark_wer_compute(const char *ref, const char *hyp, int normalize,
		     struct hark_wer_counts *out);

/* Adds c into acc (corpus aggregation). */
void hark_wer_add(struct hark_wer_counts *acc, const struct hark_wer_counts *c);

/* (S + D + I) / N. With N = 0: 0 if the hypothesis is also empty, else 1. */
double hark_wer_rate(const struct hark_wer_counts *c);

#endif /* HARK_UTIL_WER_H */
