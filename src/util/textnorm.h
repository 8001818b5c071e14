/*
 * Text normalisation: strict UTF-8 decoding and sanitising (invalid bytes,
 * overlong forms, surrogates and code points above U+10FFFF become U+FFFD),
 * and the scoring normaliser used before word-error-rate computation. The
 * normaliser lowercases (ASCII and Latin-1), removes punctuation (keeping
 * apostrophes inside words such as "don't"), turns hyphens into spaces,
 * expands numbers to words ("1813" -> "eighteen thirteen", "123" -> "one
 * hundred twenty three", "2nd" -> "second", "5%" -> "five percent", "$5" ->
 * "five dollars"), maps a minimal set of spelling variants ("mr" ->
 * "mister", "mrs" -> "missus", "dr" -> "doctor", "ok" -> "okay"), optionally
 * drops hesitations and bracketed annotations, and collapses whitespace to
 * single spaces. The same function is applied to reference and hypothesis so
 * both sides are normalised consistently.
 */
#ifndef HARK_UTIL_TEXTNORM_H
#define HARK_UTIL_TEXTNORM_H

#include <stddef.h>
#include <stdint.h>

/* Largest input hark_textnorm_normalize() accepts (bytes). */
#define HARK_TEXTNORM_MAX_INPUT ((size_t)16 << 20)

/*
 * Decodes one UTF-8 character from s (n > 0 bytes available). Returns the
 * number of bytes it occupies (1..4) and stores the code point in *cp. An
 * invalid or truncated sequence returns 1 and stores U+FFFD, so a caller that
 * advances by the return value always makes progress and skips exactly one
 * bad byte. Strict: overlong forms, UTF-16 surrogates and values above
 * U+10FFFF are invalid.
 */
size_t hark_textnorm_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Encodes cp (<= U+10FFFF, not a surrogate; anything else encodes U+FFFD)
 * into buf (>= 4 bytes). Returns the number of bytes written. */
size_t hark_textnorm_utf8_encode(uint32_t cp, char *buf);

/* Non-zero if the n bytes at s are entirely valid (strict) UTF-8. */
int hark_textnorm_utf8_valid(const char *s, size_t n);

/* Number of code points in the n bytes at s (invalid bytes count one each). */
size_t hark_textnorm_utf8_len(const char *s, size_t n);

/*
 * Copies the n bytes at s into a new NUL-terminated heap string *out (caller
 * frees with free()), replacing every invalid UTF-8 sequence by U+FFFD and,
 * if strip_controls is non-zero, every C0 control byte other than tab,
 * newline and carriage return (and DEL) by a space. Embedded NUL bytes are
 * always replaced. *out_len (may be NULL) receives the length.
 * Returns HARK_ERR_NOMEM or HARK_ERR_LIMIT (n > 1 GiB).
 */
int hark_textnorm_utf8_sanitize(const char *s, size_t n, int strip_controls, char **out,
				size_t *out_len);

struct hark_textnorm_params {
	int expand_numbers;    /* digits -> words (default 1) */
	int remove_fillers;    /* drop "um", "uh", "hmm", "mm", "mhm", "mmm" (default 1) */
	int remove_bracketed;  /* drop "[...]", "(...)" and "<...>" spans (default 1) */
	int map_spellings;     /* mr -> mister, mrs -> missus, ... (default 1) */
};

/* Defaults: every option on. */
struct hark_textnorm_params hark_textnorm_default_params(void);

/*
 * Normalises the len bytes at in (UTF-8; invalid bytes are treated as
 * U+FFFD) for scoring. p NULL means defaults. On success *out is a new
 * NUL-terminated heap string (caller frees) of lowercase words separated by
 * single spaces, with no leading or trailing space; *out_len (may be NULL)
 * receives its length. Returns HARK_ERR_INVALID_ARG, HARK_ERR_LIMIT (len >
 * HARK_TEXTNORM_MAX_INPUT) or HARK_ERR_NOMEM.
 */
int hark_textnorm_normalize(const char *in, size_t len, const struct hark_textnorm_params *p,
			    char **out, size_t *out_len);

/*
 * Writes English words for the non-negative integer n into buf (cap bytes,
 * NUL-terminated), e.g. 123 -> "one hundred twenty three". Supports values
 * below 10^18. Returns the length written, or 0 if buf is too small.
 */
size_t hark_textnorm_cardinal(uint64_t n, char *buf, size_t cap);

#endif /* HARK_UTIL_TEXTNORM_H */
