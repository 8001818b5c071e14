/*
 * Transcript chunker: cuts a meeting transcript (an ordered array of speaker
 * turns) into chunks that fit an LLM prompt budget, for extraction and
 * summarisation passes. Low-value turns (empty, only fillers/backchannels
 * such as "um", "yeah", "mm-hmm", "okay", or only noise markers such as
 * "[silence]", "{vocalsound}", "<laugh>") are dropped first, and short inline
 * annotations in brackets are removed from the turns kept. Each chunk is a
 * run of lines "Speaker: text" (just "text" when the speaker is unknown)
 * whose token count (hark_llm_tokens_count, the estimate the LLM layer and
 * the provider simulator use) never exceeds max_tokens. Boundaries fall
 * between turns whenever a turn fits the budget; a longer turn is split at
 * sentence boundaries, a sentence longer than the budget at word boundaries,
 * and a single word longer than the budget at character boundaries, so any
 * input length works and no text is lost. Each chunk after the first starts
 * with an overlap that repeats the tail turns (or tail sentences of the last
 * turn) of the previous chunk, at most overlap_tokens. The output is a pure
 * function of the input and the parameters (deterministic, locale-free).
 */
#ifndef HARK_ANALYZE_CHUNK_H
#define HARK_ANALYZE_CHUNK_H

#include <stddef.h>

/* Longest speaker label kept (bytes; longer labels are cut at a UTF-8
 * character boundary). */
#define HARK_CHUNK_MAX_SPEAKER 64

/* One speaker turn of the input (all pointers borrowed). */
struct hark_chunk_turn {
	const char *speaker; /* UTF-8 label; NULL or "" = unknown (no "Speaker: " prefix) */
	const char *text;    /* UTF-8; NULL = empty */
	double start_s;      /* seconds from the start of the meeting; < 0 = unknown */
	double end_s;        /* seconds; < 0 = unknown */
};

struct hark_chunk_params {
	size_t max_tokens;      /* hard cap on a chunk's token count (1200); >= 32 */
	size_t overlap_tokens;  /* cap on the repeated tail of the previous chunk (100);
				 * must be <= max_tokens / 2 */
	size_t min_tokens;      /* a chunk whose new (non-overlap) text has fewer tokens
				 * than this (speaker prefixes not counted) is dropped (8) */
	int drop_fillers;       /* 1: drop turns made only of fillers/backchannels and
				 * noise markers (1) */
	int strip_markers;      /* 1: remove inline bracketed annotations such as
				 * "{disfmarker}", "[noise]", "<laugh>" (1) */
	size_t max_input_bytes; /* cap on the summed speaker + text bytes of the input
				 * (256 MiB); over it -> HARK_ERR_LIMIT */
};

/* The defaults above. */
struct hark_chunk_params hark_chunk_default_params(void);

/* One chunk. */
struct hark_chunk {
	char *text;             /* lines "Speaker: text" joined by '\n', no trailing
				 * newline; heap, NUL-terminated */
	size_t len;             /* strlen(text) */
	size_t tokens;          /* hark_llm_tokens_count(text, len) <= max_tokens */
	size_t overlap_tokens;  /* tokens of the leading lines repeated from the
				 * previous chunk (0 for the first chunk) */
	size_t first_turn;      /* index into the input array of the turn the chunk's
				 * first line comes from (overlap included) */
	size_t last_turn;       /* index of the turn its last line comes from */
	double start_s;         /* earliest known start of the text covered (a part of a
				 * split turn is interpolated inside the turn's
				 * [start_s, end_s]); < 0 = unknown */
	double end_s;           /* latest known end; < 0 = unknown */
	char sha256[65];        /* lowercase hex sha256 of text[0..len) */
};

/* Result of hark_chunk_split. */
struct hark_chunk_list {
	struct hark_chunk *chunks; /* heap array of n chunks, in transcript order */
	size_t n;
	size_t turns_kept;         /* input turns that survived the filter */
	size_t turns_dropped;      /* empty or low-value turns removed */
	size_t chunks_dropped;     /* chunks under min_tokens removed */
};

/*
 * Chunks turns[0..n) (n == 0 is valid and gives zero chunks) with p (NULL =
 * defaults) into *out, which the caller releases with
 * hark_chunk_list_clear(). On error *out is left empty.
 * Errors: HARK_ERR_INVALID_ARG (NULL out, turns NULL with n > 0, bad params),
 * HARK_ERR_LIMIT (input over p->max_input_bytes), HARK_ERR_NOMEM,
 * HARK_ERR_INTERNAL (a crypto failure); err (errlen bytes) says why.
 */
int hark_chunk_split(const struct hark_chunk_turn *turns, size_t n,
		     const struct hark_chunk_params *p, struct hark_chunk_list *out,
		     char *err, size_t errlen);

/* Frees every chunk and the array; leaves *l zeroed. NULL is a no-op. */
void hark_chunk_list_clear(struct hark_chunk_list *l);

/*
 * Nonzero when text (NUL-terminated; NULL counts as empty) has no content
 * word: it is empty, or made only of fillers/backchannels ("um", "uh",
 * "yeah", "mm-hmm", "okay", "right", ...), bracketed noise markers
 * ("[silence]", "{vocalsound}", "<laugh>") and punctuation. The filter
 * hark_chunk_split applies when drop_fillers is set.
 */
int hark_chunk_is_low_value(const char *text);

#endif /* HARK_ANALYZE_CHUNK_H */
