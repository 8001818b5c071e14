/*
 * Internal builder for struct hark_transcript (include/hark/transcribe.h):
 * the only code that should grow a transcript's segment and word arrays.
 * Engines, the JSON reader and the subtitle parser call these helpers so that
 * ids stay consecutive, words stay contiguous per segment (first_word /
 * n_words), times are sane (finite, >= 0, end >= start) and every array
 * has a size cap. Arrays are ordinary malloc() blocks whose capacity is read
 * back with malloc_usable_size(), so a transcript needs no hidden fields;
 * never assign the arrays yourself and then call the add functions.
 */
#ifndef HARK_FORMAT_TRANSCRIPT_H
#define HARK_FORMAT_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "hark/transcribe.h"

#define HARK_TRANSCRIPT_MAX_SEGMENTS ((size_t)10000000) /* per transcript */
#define HARK_TRANSCRIPT_MAX_WORDS ((size_t)10000000)    /* per transcript */
#define HARK_TRANSCRIPT_MAX_TOKENS ((size_t)1000000)    /* per segment */
#define HARK_TRANSCRIPT_MAX_STR ((size_t)16 << 20)      /* bytes per string field */
#define HARK_TRANSCRIPT_MAX_TEXT ((size_t)1 << 30)      /* bytes of joined text */

/* Allocates an empty transcript (all fields zero/NULL) into *out; release it
 * with hark_transcript_free(). Returns HARK_ERR_INVALID_ARG or
 * HARK_ERR_NOMEM. */
int hark_transcript_new(struct hark_transcript **out);

/* Frees everything t owns and zeroes it, leaving t itself allocated and
 * reusable (for an engine's finish() error path). NULL is a no-op. */
void hark_transcript_clear(struct hark_transcript *t);

/* Replaces the string *field (freeing the old value) with a copy of value,
 * e.g. hark_transcript_set_str(&t->language, "en"). value NULL sets NULL.
 * Returns HARK_ERR_LIMIT beyond HARK_TRANSCRIPT_MAX_STR, HARK_ERR_NOMEM. */
int hark_transcript_set_str(char **field, const char *value);

/*
 * Appends a segment. Times are seconds (double); a negative start clamps to
 * 0 and an end below start is raised to start; non-finite times are
 * HARK_ERR_INVALID_ARG. text (UTF-8, NULL = "") is copied as is (formats
 * sanitise on output). tokens (n_tokens ids, may be NULL when n_tokens is 0)
 * are copied. id is set to the segment's index, first_word to the current
 * word count, n_words to 0. Returns HARK_ERR_LIMIT past
 * HARK_TRANSCRIPT_MAX_SEGMENTS / _TOKENS / _STR, HARK_ERR_NOMEM.
 */
int hark_transcript_add_segment(struct hark_transcript *t, double start, double end,
				const char *text, const int32_t *tokens, size_t n_tokens,
				float avg_logprob, float no_speech_prob, float temperature,
				float compression_ratio);

/*
 * Appends a word to the last segment (its n_words grows by one). word
 * (UTF-8, may start with a space) is copied. Times as for segments;
 * probability is clamped to 0..1 (NaN -> 0). Returns HARK_ERR_INVALID_ARG
 * when there is no segment yet, HARK_ERR_LIMIT past
 * HARK_TRANSCRIPT_MAX_WORDS, HARK_ERR_NOMEM.
 */
int hark_transcript_add_word(struct hark_transcript *t, const char *word, double start,
			     double end, float probability);

/*
 * Rebuilds t->text from the segment texts: segments are concatenated, a
 * single space is inserted between two segments when neither side already
 * has whitespace at the joint, and leading/trailing whitespace is trimmed.
 * Returns HARK_ERR_LIMIT past HARK_TRANSCRIPT_MAX_TEXT, HARK_ERR_NOMEM.
 */
int hark_transcript_finalize_text(struct hark_transcript *t);

/* Adds delta_s seconds to every segment and word time (results below 0
 * clamp to 0). For applying --offset or stitching chunks. */
void hark_transcript_shift(struct hark_transcript *t, double delta_s);

/*
 * Appends every segment and word of src to dst, shifting their times by
 * delta_s; ids and first_word are renumbered. dst->text is not touched
 * (call hark_transcript_finalize_text()). On error dst keeps the segments
 * appended so far and stays consistent.
 */
int hark_transcript_append(struct hark_transcript *dst, const struct hark_transcript *src,
			   double delta_s);

#endif /* HARK_FORMAT_TRANSCRIPT_H */
