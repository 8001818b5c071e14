/*
 * Offline minutes analyzer: fills struct hark_minutes (analyze/minutes.h)
 * from a meeting's speaker turns without any model, deterministically and
 * fast. The summary and its points come from the extractive summariser
 * (analyze/summarize.h, FULL method); topics from a TextTiling-style lexical
 * cohesion segmentation (cosine similarity of Porter-stemmed content-word
 * counts in windows on either side of every turn gap, boundaries at the
 * deepest valleys of the smoothed curve), titled by their most distinctive
 * 1-3 word phrases (TF-IDF against the whole meeting) and summarised by
 * their top-ranked sentence; decisions, action items and open questions
 * from the sentence cues of analyze/cues.h (owners, due dates resolved
 * against the meeting date), de-duplicated and capped; participants from
 * the speaker labels. docs/MINUTES.md describes each step.
 */
#ifndef HARK_ANALYZE_OFFLINE_H
#define HARK_ANALYZE_OFFLINE_H

#include <stddef.h>

#include "analyze/chunk.h"
#include "analyze/dates.h"
#include "analyze/minutes.h"

/* Called between phases and inside long loops; nonzero stops the call with
 * HARK_ERR_CANCELED. */
typedef int (*hark_offline_cancel_fn)(void *user_data);

/* Called with the fraction done in [0, 1] (non-decreasing; 1 at the end of a
 * successful call). */
typedef void (*hark_offline_progress_fn)(double done, void *user_data);

struct hark_offline_params {
	struct hark_date meeting_date; /* resolves relative due dates and fills
					* minutes.date; year 0 = unknown ({0}) */
	size_t summary_words;          /* word budget of the summary (150); >= 1 */
	size_t max_topics;             /* most topics (8); 1..100,000 */
	size_t min_topic_turns;        /* shortest topic stretch, in turns (6); >= 1.
					* Stretches are also at least 1/24 of the
					* meeting's turns, and a meeting with fewer
					* than 2 * min_topic_turns turns is one topic */
	double min_confidence;         /* cue threshold in [0, 1] (0.5) */
	size_t max_items;              /* cap per item kind, the most confident
					* kept (50); >= 1 */
	size_t max_input_bytes;        /* cap on summed speaker + text bytes (64 MiB);
					* over it -> HARK_ERR_LIMIT */
	size_t max_turns;              /* cap on n (1,000,000); over it -> HARK_ERR_LIMIT */
	hark_offline_cancel_fn cancel; /* NULL = never */
	void *cancel_user_data;
	hark_offline_progress_fn progress; /* NULL = none */
	void *progress_user_data;
};

/* The defaults above. */
struct hark_offline_params hark_offline_default_params(void);

/*
 * Analyses turns[0..n) (borrowed; n == 0 is valid and gives empty minutes
 * with summary "") of the meeting named meeting (NULL = "meeting") with p
 * (NULL = defaults) into *out, which the caller releases with
 * hark_minutes_clear (on error *out is left zeroed). The result has method
 * "offline", model NULL, turns = n, chunks = 0 (a pipeline that also chunks
 * sets it), duration = the latest known turn end (else -1), date from
 * p->meeting_date (NULL when unknown). Summary points and items keep the
 * turn index, speaker and (interpolated inside the turn when the turn's
 * times are known) time they come from; items also keep the sentence as the
 * evidence quote (at most 40 words). Topics cover turns 0..n-1 contiguously
 * in order, without overlap. Participants are the distinct non-empty
 * speaker labels, most words first. Output is a pure function of the input.
 * Errors: HARK_ERR_INVALID_ARG (NULL out, turns NULL with n > 0, bad params
 * or meeting date), HARK_ERR_LIMIT (over max_input_bytes / max_turns, or
 * the summariser's sentence cap), HARK_ERR_CANCELED, HARK_ERR_NOMEM; err
 * (errlen bytes, may be NULL) says why.
 */
int hark_offline_minutes(const struct hark_chunk_turn *turns, size_t n, const char *meeting,
			 const struct hark_offline_params *p, struct hark_minutes *out, char *err,
			 size_t errlen);

#endif /* HARK_ANALYZE_OFFLINE_H */
