/*
 * Meeting transcript reader: turns a text transcript file into an ordered
 * array of speaker turns for the chunker (analyze/chunk.h) and the meeting
 * analysis pipeline. Two formats:
 *   - QMSum JSON (Yale-LILY/QMSum): an object whose member
 *     "meeting_transcripts" is an array of {"speaker": S, "content": T};
 *     the reference summary is the answer of the first "general_query_list"
 *     entry. QMSum's tokenised spacing ("it 's", "better ?", "pre - existing")
 *     is undone when detokenize is set.
 *   - Plain text (the AMI corpus `<id>.transcript.txt` files, or any text):
 *     every non-empty line is one turn. When every non-empty line reads
 *     "Label: text" (a label of 1..64 bytes up to the first ": ", at most 8
 *     words, no sentence punctuation before it other than in abbreviations
 *     such as "Dr."), the label is the speaker; otherwise the speaker is
 *     unknown (NULL). A file "<id>.transcript.txt" takes its reference summary
 *     from "<id>.abssumm.txt" beside it when that exists. (In the AMI files
 *     each line holds all the words of one participant, so their "turns" are
 *     long, unlabelled and not in speaking order.)
 * Neither format carries times: start_s / end_s are -1 (unknown). Text is
 * returned as in the file apart from the QMSum detokenisation and trimming;
 * the chunker does the filler/marker clean-up.
 */
#ifndef HARK_ANALYZE_MEETING_TEXT_H
#define HARK_ANALYZE_MEETING_TEXT_H

#include <stddef.h>

enum hark_meeting_text_format {
	HARK_MEETING_TEXT_AUTO = 0,  /* JSON when the first non-space byte is '{', else text */
	HARK_MEETING_TEXT_QMSUM = 1,
	HARK_MEETING_TEXT_PLAIN = 2,
};

struct hark_meeting_text_params {
	int format;          /* enum hark_meeting_text_format (AUTO) */
	size_t max_bytes;    /* file size cap (64 MiB); over it -> HARK_ERR_LIMIT */
	size_t max_turns;    /* turn count cap (1,000,000); over it -> HARK_ERR_LIMIT */
	int detokenize;      /* 1: undo QMSum's tokenised spacing (1) */
	int load_summary;    /* 1: fill reference_summary when the source has one (1) */
};

struct hark_meeting_text_params hark_meeting_text_default_params(void);

/* One turn (strings owned by the meeting). */
struct hark_meeting_turn {
	char *speaker;       /* NUL-terminated UTF-8, NULL = unknown */
	char *text;          /* NUL-terminated UTF-8, never NULL, may be "" */
	double start_s;      /* seconds, < 0 = unknown (always -1 for these formats) */
	double end_s;
};

struct hark_meeting_text {
	char id[128];                     /* file name without directory and without
					   * ".json" / ".transcript.txt" / ".txt" */
	int format;                       /* the format actually read */
	struct hark_meeting_turn *turns;  /* heap array of n_turns, in file order */
	size_t n_turns;
	char *reference_summary;          /* human summary (heap) or NULL */
};

/*
 * Reads the transcript file at path into *out (caller releases with
 * hark_meeting_text_clear; on error *out is left empty). p NULL = defaults.
 * Errors: HARK_ERR_INVALID_ARG (NULL arguments, bad format value),
 * HARK_ERR_NOT_FOUND / HARK_ERR_PERMISSION / HARK_ERR_IS_DIR / HARK_ERR_IO
 * (the file), HARK_ERR_EMPTY (zero bytes, or no turn at all),
 * HARK_ERR_LIMIT (over max_bytes or max_turns), HARK_ERR_FORMAT (not the
 * expected structure: invalid JSON with its line and column, a missing
 * "meeting_transcripts" array, an entry without string "speaker"/"content",
 * NUL bytes in a text file), HARK_ERR_NOMEM. err (errlen bytes) names the
 * file and the offending entry.
 */
int hark_meeting_text_read(const char *path, const struct hark_meeting_text_params *p,
			   struct hark_meeting_text *out, char *err, size_t errlen);

/*
 * Same, from data[0..len) in memory; id (may be NULL) fills out->id. No
 * summary file is looked up. Same errors except the file ones.
 */
int hark_meeting_text_parse(const char *data, size_t len, const char *id,
			    const struct hark_meeting_text_params *p,
			    struct hark_meeting_text *out, char *err, size_t errlen);

/* Frees everything *m owns and zeroes it. NULL is a no-op. */
void hark_meeting_text_clear(struct hark_meeting_text *m);

#endif /* HARK_ANALYZE_MEETING_TEXT_H */
