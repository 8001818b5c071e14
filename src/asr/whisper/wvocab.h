/*
 * Whisper tokenizer and token text: id -> bytes exactly as whisper.cpp's
 * whisper_token_to_str renders them (file tokens verbatim; synthesised
 * specials such as "[_SOT_]", "[_TT_150]", "[_LANG_en]",
 * "[_extra_token_N]"), prompt encoding identical to whisper.cpp's
 * tokenize() (its regex pre-tokenisation, then greedy longest match against
 * the vocabulary), whisper's language table (100 codes, "yue" last, only
 * for n_vocab 51866 models) and a UTF-8 helper that holds back incomplete
 * multibyte sequences at the end of a piece of text.
 */
#ifndef HARK_ASR_WHISPER_WVOCAB_H
#define HARK_ASR_WHISPER_WVOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "asr/whisper/wmodel.h"

struct hark_wvocab;

/*
 * Builds the token tables for model m (which must outlive the vocab: file
 * token bytes are referenced, not copied). Returns 0, HARK_ERR_NOMEM or
 * HARK_ERR_INVALID_ARG.
 */
int hark_wvocab_new(const struct hark_wmodel *m, struct hark_wvocab **out);
void hark_wvocab_free(struct hark_wvocab *v);

/*
 * Bytes of token id as whisper_token_to_str returns them; *len receives the
 * length (tokens may contain any byte, including NUL; the returned buffer is
 * also NUL-terminated for specials, NOT for file tokens). Returns NULL (and
 * *len = 0) for id outside [0, n_vocab). Pointer valid for the vocab's life.
 */
const char *hark_wvocab_token(const struct hark_wvocab *v, int32_t id, size_t *len);

/*
 * whisper_tokenize(): splits text with whisper.cpp's std::regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?[[:alpha:]]+| ?[[:digit:]]+| ?[^\s[:alpha:][:digit:]]+|\s+(?!\S)|\s+
 * (byte-wise, "C" locale classes, so bytes >= 0x80 are "other") and encodes
 * each piece by repeatedly taking the longest vocabulary entry (file tokens
 * and synthesised specials; for duplicate strings the highest id wins, as
 * std::map assignment does) that prefixes the rest; bytes matching nothing
 * are skipped. Writes up to max ids; *n receives the total count. Returns 0,
 * or HARK_ERR_LIMIT if more than max ids were needed (ids holds the first
 * max), HARK_ERR_INVALID_ARG for NULL args.
 */
int hark_wvocab_encode(const struct hark_wvocab *v, const char *text, int32_t *ids, int max, int *n);

/* -------------------------------------------------------------- languages -- */

#define HARK_WLANG_COUNT 100

/* Language index (0 = "en" ... 99 = "yue") for a code ("de") or an English
 * name ("german"), case-sensitive lower case as whisper.cpp; -1 if unknown. */
int hark_wvocab_lang_id(const char *code_or_name);
/* Code / English name for a language index; NULL when out of range. */
const char *hark_wvocab_lang_code(int lang_id);
const char *hark_wvocab_lang_name(int lang_id);
/* Token id of <|code|> for model m (sot + 1 + lang_id), or -1 if the model
 * has no such language (lang_id < 0 or >= m->n_langs). Like whisper.cpp this
 * does not check is_multilingual. */
int32_t hark_wvocab_lang_token(const struct hark_wmodel *m, int lang_id);

/* ------------------------------------------------------------------ UTF-8 -- */

/*
 * Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete UTF-8 sequence: when the last 1-3 bytes are the start of a
 * multibyte character whose continuation bytes are missing, they are
 * excluded. Invalid bytes are not held back (they can never complete).
 */
size_t hark_wvocab_utf8_complete(const char *s, size_t n);

/*
 * Streaming text assembly that never splits a multibyte character: feed
 * pieces (token bytes); complete text is appended to out, and an incomplete
 * trailing sequence (at most 3 bytes) is kept in the carry and prepended to
 * the next piece. hark_wutf8_flush emits whatever is still held.
 */
struct hark_wutf8 {
	unsigned char pend[4];
	int npend;
};
/* Appends to out (capacity cap, including the terminating NUL that is always
 * written); *len is the current length and is updated. Returns 0, or
 * HARK_ERR_LIMIT when out is too small (nothing appended). */
int hark_wutf8_feed(struct hark_wutf8 *c, const char *piece, size_t n, char *out, size_t cap, size_t *len);
int hark_wutf8_flush(struct hark_wutf8 *c, char *out, size_t cap, size_t *len);

#endif /* HARK_ASR_WHISPER_WVOCAB_H */
