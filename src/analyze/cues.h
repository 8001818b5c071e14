/*
 * Offline meeting-item cues: decides from linguistic cues alone whether one
 * sentence (with its speaker) is a decision, an action item, an open
 * question or nothing, and extracts the task text (the clause without the cue
 * words), the owner and the due expression (via analyze/dates.h). Tuned for
 * precision over recall: only explicit cues fire, negated cues ("I won't",
 * "we didn't decide") never make an item (a negated decision such as "we
 * haven't decided yet" is an open question), hedged first-person phrases
 * ("I'll think", "I'll be honest") and questions are not commitments, and a
 * task needs at least two content words.
 *
 * Cues, their base confidence, and owners:
 *   action, first person ("I'll", "I will", "I'm going to", "I can take",
 *     "I'll take care of", "let me", "I'm on it", "leave it with me"):
 *     owner = the speaker; 0.70 ("let me" 0.60, "I can"/"I could" 0.55).
 *   action, assignment: "<Name>, can/could/would you ...", "<Name> will ...",
 *     "<Name> is going to ...", "<Name> to <verb> ...", "assign(ed) ... to
 *     <Name>", "<Name>, you'll/you need to ...", "action item for <Name>":
 *     owner = the named participant (as spelled in the caller's list); 0.70.
 *     Without a known name only a sentence-opening "can you ..." / "could
 *     you ..." counts (owner empty; 0.50); requests to hear/see/repeat/
 *     explain and preference questions ("would you prefer") never count.
 *   action, team ("we need to", "we have to", "we should", "someone needs
 *     to"): no owner; 0.40 (so below the default threshold unless a due date
 *     is found).
 * Cues inside a conditional clause ("if ... I'll") or after "what"/"as"/
 * "whether" ("what we decided") do not fire; a transcript disfluency marker
 * ("{disfmarker}") right after the cue means the speaker abandoned it, and
 * one later in the clause ends the task.
 *   decision ("we agreed", "we decided", "we've decided", "let's go with",
 *     "we'll go with", "we're going with", "the decision is", "decided to",
 *     "agreed to", "agreed:", "we settled on", "final decision"): 0.75.
 *   open question ("we still need to figure out", "open question", "TBD",
 *     "to be decided/determined", "haven't decided", "not decided yet",
 *     "still unclear", "we need to decide", "remains to be seen", "not sure
 *     yet"): 0.65. Plain interrogatives about the group's course ("should
 *     we ...?", "how do we ...?", "who will ...?") only when
 *     interrogative_questions is set: 0.35.
 * A found date adds 0.10 and a resolved owner 0.05 (capped at 0.95). Results
 * below min_confidence are reported as NONE.
 */
#ifndef HARK_ANALYZE_CUES_H
#define HARK_ANALYZE_CUES_H

#include <stddef.h>

#include "analyze/dates.h"

enum hark_cue_type {
	HARK_CUE_NONE = 0,
	HARK_CUE_DECISION = 1,
	HARK_CUE_ACTION = 2,
	HARK_CUE_QUESTION = 3,
};

struct hark_cues_params {
	double min_confidence;       /* below it the type is NONE (0.5) */
	int interrogative_questions; /* 1: plain group-course questions count (0) */
	size_t max_sentence_bytes;   /* longer sentences are NONE (2000) */
	struct hark_date meeting_date; /* for due dates; year 0 = unknown ({0}) */
};

struct hark_cues_params hark_cues_default_params(void);

struct hark_cue_result {
	int type;              /* enum hark_cue_type */
	double confidence;     /* 0..1; 0 for NONE */
	char rule[32];         /* name of the cue that fired, e.g. "first_person" */
	char task[256];        /* clause without the cue words (truncated), "" if none */
	char owner[64];        /* speaker or named participant, "" = unknown */
	char due[64];          /* due phrase as spoken ("by Friday"), "" = none */
	char due_iso[11];      /* resolved "YYYY-MM-DD" or "" */
	size_t cue_start;      /* byte range of the cue words in the sentence */
	size_t cue_end;
};

/*
 * Classifies sentence[0..len) said by speaker (may be NULL). participants
 * (n_participants names, may be NULL/0) are the names an assignment may
 * name; a name matches case-insensitively as a whole word, either in full or
 * by its first word (at least 3 letters). p NULL = defaults. Always fills
 * *out (NONE when nothing fired). Returns HARK_ERR_INVALID_ARG for NULL out
 * or NULL sentence with len > 0, else 0.
 */
int hark_cues_classify(const char *sentence, size_t len, const char *speaker,
		       const char *const *participants, size_t n_participants,
		       const struct hark_cues_params *p, struct hark_cue_result *out);

/* A sentence span inside a turn. */
struct hark_cue_span {
	size_t start, end; /* byte offsets, end exclusive, trimmed of spaces */
};

/*
 * Splits text[0..len) into sentences at '.', '!', '?' followed by space or
 * the end (not after common abbreviations like "Mr." or single letters, or
 * between digits). Writes up to cap spans into out and the count into
 * *n_out (extra sentences are dropped). Returns HARK_ERR_INVALID_ARG for
 * NULL arguments (text may be NULL when len is 0), else 0.
 */
int hark_cues_split_sentences(const char *text, size_t len, struct hark_cue_span *out,
			      size_t cap, size_t *n_out);

#endif /* HARK_ANALYZE_CUES_H */
