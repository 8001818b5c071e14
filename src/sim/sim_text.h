/*
 * Text helpers of hark-llm-sim: cutting a reply to a token budget with the
 * same count as src/llm/tokens.h, SHA-256 and 64-bit mixing for the
 * deterministic choices, chunk markers ("[chunk ID]" at a line start),
 * directives ("[[sim:NAME key=value ...]]"), and the word / sentence /
 * capitalised-name index of a text from which replies are extracted.
 * Everything is O(length of the text).
 */
#ifndef HARK_SIM_TEXT_H
#define HARK_SIM_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* ---- tokens ------------------------------------------------------------------ */

/*
 * Length in bytes of the longest prefix of text[0..len) that costs at most
 * max_tokens tokens under hark_llm_tokens_count's rule; when the whole text
 * costs more, the prefix costs exactly max_tokens (a letter/digit run may be
 * cut inside). Never splits a UTF-8 sequence.
 */
size_t hark_sim_cut_tokens(const char *text, size_t len, size_t max_tokens);

/* ---- hashing ------------------------------------------------------------------- */

/* SHA-256 of p[0..n) into out. */
void hark_sim_sha256(const void *p, size_t n, unsigned char out[32]);
/* 64 lowercase hex digits + NUL of a digest. */
void hark_sim_hex(const unsigned char *d, size_t n, char *out);
/* A well-mixed 64-bit value of x (splitmix64 finaliser). */
uint64_t hark_sim_mix(uint64_t x);
/* 64-bit FNV-1a of s[0..n). */
uint64_t hark_sim_fnv(const char *s, size_t n);

/* ---- chunk markers ----------------------------------------------------------------- */

struct hark_sim_chunk {
	const char *id;     /* into the scanned text */
	size_t id_len;
	const char *text;   /* body: from after the marker line's "]" to the next marker */
	size_t len;
};

/*
 * Appends the chunks of text[0..len) to *arr (grown; *n entries, *cap
 * capacity, at most max in all). A marker is "[chunk ID]" at the start of a
 * line (after optional spaces), ID = [A-Za-z0-9_.:-]+. Returns 0, or -1
 * on allocation failure.
 */
int hark_sim_find_chunks(const char *text, size_t len, struct hark_sim_chunk **arr, size_t *n,
			 size_t *cap, size_t max);

/* Keeps the first chunk of each ID (order kept), O(n log n). Returns 0, or -1 on allocation failure. */
int hark_sim_dedup_chunks(struct hark_sim_chunk *arr, size_t *n);

/* ---- directives -------------------------------------------------------------------- */

#define HARK_SIM_DIR_NAME_MAX 24

struct hark_sim_directive {
	char name[HARK_SIM_DIR_NAME_MAX]; /* "fail", "bad_json", ... */
	long times;                       /* default 1; -1 = all */
	int status;                       /* fail: HTTP status (default 500) */
	double retry_after_s;             /* fail 429: Retry-After; < 0 = none */
	double s;                         /* delay: seconds; < 0 = none */
	int bad;                          /* 1: malformed (unknown key or value) */
};

/*
 * Appends the directives found in text[0..len) (in order) to *arr (grown,
 * at most max in all). Returns 0, or -1 on allocation failure.
 */
int hark_sim_find_directives(const char *text, size_t len, struct hark_sim_directive **arr,
			     size_t *n, size_t *cap, size_t max);

/* ---- text index --------------------------------------------------------------------- */

struct hark_sim_textinfo {
	const char *text;
	size_t len;
	uint32_t *word_off, *word_len;  /* whitespace-separated words, directives skipped */
	size_t n_words;
	uint32_t *sent;                 /* first word of each sentence; n_sents entries */
	size_t n_sents;
	uint32_t *names;                /* words that look like names (capitalised), not
					 * sentence-initial */
	size_t n_names;
	uint32_t *inames;               /* capitalised, sentence-initial */
	size_t n_inames;
};

/* Builds the index of text[0..len) (the text is borrowed). NULL on
 * allocation failure. */
struct hark_sim_textinfo *hark_sim_textinfo_new(const char *text, size_t len);
void hark_sim_textinfo_free(struct hark_sim_textinfo *ti);

/*
 * Extraction into out (cap bytes, NUL-terminated, valid UTF-8), choices by h.
 * name:  a capitalised word or two (non-initial preferred);
 * sentence: one sentence of at most max_words words;
 * words: 2-4 consecutive words.
 * Fall back to generic text when the index has no words.
 */
void hark_sim_pick_name(const struct hark_sim_textinfo *ti, uint64_t h, char *out, size_t cap);
void hark_sim_pick_sentence(const struct hark_sim_textinfo *ti, uint64_t h, size_t max_words,
			    char *out, size_t cap);
void hark_sim_pick_words(const struct hark_sim_textinfo *ti, uint64_t h, char *out, size_t cap);
/* First sentence (at most max_words words) of the text, or "" when none. */
void hark_sim_first_sentence(const struct hark_sim_textinfo *ti, size_t max_words, char *out,
			     size_t cap);

/* ---- durations ------------------------------------------------------------------------ */

/* OpenAI-style duration: "250ms" below a second, else "1s", "1.5s",
 * "6m0s", "1h2m3s". */
void hark_sim_format_duration(double s, char *out, size_t cap);

#endif /* HARK_SIM_TEXT_H */
