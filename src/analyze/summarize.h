/*
 * Extractive meeting summariser: picks whole sentences out of a meeting's
 * speaker turns (analyze/chunk.h's struct hark_chunk_turn, e.g. filled from
 * analyze/meeting_text.h) up to a word budget, as the offline fallback of the
 * minutes pipeline and as the baseline the LLM summaries are judged against.
 * Turns are split into sentences at ".", "?", "!" (followed by a space or the
 * end) and at line breaks; bracketed annotations ("{disfmarker}", "[noise]",
 * "<laugh>") are removed from every method's sentences. Three methods:
 *   - HARK_SUMMARIZE_FULL: disfluencies ("um", "uh", "mm-hmm", ...) are
 *     deleted and leading discourse fillers ("yeah,", "okay so", "well")
 *     stripped; sentences that are only fillers/backchannels
 *     (hark_chunk_is_low_value) or have fewer than min_words / more than
 *     max_words_sentence words are dropped; the rest are ranked by TextRank
 *     (PageRank by power iteration over the graph whose edge weights are the
 *     cosine similarities of the sentences' TF-IDF vectors of Porter-stemmed,
 *     stop-word-free terms) and selected greedily by maximal marginal
 *     relevance (MMR: lambda * normalised rank - (1 - lambda) * highest
 *     similarity to a sentence already chosen), never taking a sentence more
 *     similar than max_similarity to one already chosen.
 *   - HARK_SUMMARIZE_TEXTRANK: the same TextRank over every non-empty
 *     sentence (no filler deletion or filtering), selected by rank alone.
 *   - HARK_SUMMARIZE_LEAD: the first max_words words of the meeting, whole
 *     sentences in order, the last one cut to fit.
 * Ranked methods add a sentence only when it fits the remaining budget
 * (a longer one is skipped, shorter later ones may still fit). The chosen
 * sentences come back in transcript order with their turn index, speaker and
 * time. Deterministic (ties go to the earlier sentence) and locale-free.
 */
#ifndef HARK_ANALYZE_SUMMARIZE_H
#define HARK_ANALYZE_SUMMARIZE_H

#include <stddef.h>

#include "analyze/chunk.h"

enum hark_summarize_method {
	HARK_SUMMARIZE_FULL = 0,     /* filtered TextRank + MMR redundancy control */
	HARK_SUMMARIZE_TEXTRANK = 1, /* baseline: plain TextRank */
	HARK_SUMMARIZE_LEAD = 2,     /* baseline: first max_words words */
};

/* Called between phases and power-iteration steps; nonzero stops the call
 * with HARK_ERR_CANCELED. */
typedef int (*hark_summarize_cancel_fn)(void *user_data);

/* Called with the fraction done in [0, 1] (non-decreasing; 1 at the end of
 * a successful call). */
typedef void (*hark_summarize_progress_fn)(double done, void *user_data);

struct hark_summarize_params {
	int method;                /* enum hark_summarize_method (FULL) */
	size_t max_words;          /* word budget of the summary (150); >= 1 */
	size_t min_words;          /* FULL: shortest sentence kept, in words after
				    * filler removal (6) */
	size_t max_words_sentence; /* FULL: longest sentence kept (60) */
	double damping;            /* PageRank damping, in (0, 1) (0.85) */
	int max_iter;              /* power-iteration cap (200) */
	double tolerance;          /* stop when the L1 change is below this (1e-7) */
	double mmr_lambda;         /* FULL: rank vs novelty weight in [0, 1] (0.7) */
	double max_similarity;     /* FULL: cosine above which a sentence counts as
				    * redundant with a chosen one (0.5) */
	size_t max_neighbors;      /* graph edges kept per sentence, strongest first
				    * (200); >= 1 */
	size_t max_sentences;      /* cap on the sentences of the input (20,000; the
				    * graph costs O(n^2) cosines); over it ->
				    * HARK_ERR_LIMIT */
	size_t max_input_bytes;    /* cap on the summed text bytes (64 MiB);
				    * over it -> HARK_ERR_LIMIT */
	hark_summarize_cancel_fn cancel; /* NULL = never */
	void *cancel_user_data;
	hark_summarize_progress_fn progress; /* NULL = none */
	void *progress_user_data;
};

/* The defaults above. */
struct hark_summarize_params hark_summarize_default_params(void);

/* One selected sentence. */
struct hark_summary_sentence {
	char *text;        /* cleaned sentence, heap, NUL-terminated */
	char *speaker;     /* copy of the turn's speaker (heap) or NULL = unknown */
	size_t turn;       /* index of the input turn it comes from */
	size_t index;      /* sentence index inside that turn (0-based) */
	size_t words;      /* whitespace-separated words of text */
	double start_s;    /* seconds, interpolated by word position inside the
			    * turn's [start_s, end_s]; < 0 = unknown */
	double end_s;
	double score;      /* TextRank score (PageRank mass, sums to 1 over the
			    * ranked sentences); 0 for LEAD */
};

struct hark_summary {
	struct hark_summary_sentence *sentences; /* heap, n entries, transcript order */
	size_t n;
	size_t words;        /* sum of sentences[].words, <= max_words */
	size_t candidates;   /* sentences that entered the ranking (all for LEAD) */
	int iterations;      /* power-iteration steps run (0 for LEAD) */
};

/*
 * Summarises turns[0..n) (n == 0 gives an empty summary) with p (NULL =
 * defaults) into *out, which the caller releases with hark_summary_clear()
 * (on error *out is left empty).
 * Errors: HARK_ERR_INVALID_ARG (NULL out, turns NULL with n > 0, bad params),
 * HARK_ERR_LIMIT (over max_input_bytes or max_sentences), HARK_ERR_CANCELED,
 * HARK_ERR_NOMEM; err (errlen bytes, may be NULL) says why.
 */
int hark_summarize(const struct hark_chunk_turn *turns, size_t n,
		   const struct hark_summarize_params *p, struct hark_summary *out,
		   char *err, size_t errlen);

/*
 * The summary as one string: the sentences joined by single spaces (heap,
 * caller frees), or NULL when out of memory. An empty summary gives "".
 */
char *hark_summary_text(const struct hark_summary *s);

/* Frees everything *s owns and zeroes it. NULL is a no-op. */
void hark_summary_clear(struct hark_summary *s);

#endif /* HARK_ANALYZE_SUMMARIZE_H */
