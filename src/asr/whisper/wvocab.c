/*
 * Whisper vocabulary (see wvocab.h): synthesised special-token strings, a
 * hash table from token bytes to id for whisper.cpp-compatible prompt
 * tokenisation, the language table and UTF-8 boundary helpers.
 */
#include "asr/whisper/wvocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

struct hark_wvocab {
	const struct hark_wmodel *m;
	int32_t n_vocab;
	/* specials: ids n_tokens..n_vocab-1 as NUL-terminated strings in pool */
	char *spool;
	uint32_t *soff;   /* [n_vocab - n_tokens] */
	uint32_t *slen;
	/* hash: open addressing, slot = id + 1 (0 = empty) */
	int32_t *ht;
	uint32_t hmask;
	uint32_t max_len;
};

static const char *const g_lang_code[HARK_WLANG_COUNT] = {
	"en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar",
	"sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu",
	"ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa",
	"lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn",
	"bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc",
	"ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn",
	"mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw",
	"su", "yue",
};

static const char *const g_lang_name[HARK_WLANG_COUNT] = {
	"english", "chinese", "german", "spanish", "russian", "korean", "french", "japanese",
	"portuguese", "turkish", "polish", "catalan", "dutch", "arabic", "swedish", "italian",
	"indonesian", "hindi", "finnish", "vietnamese", "hebrew", "ukrainian", "greek", "malay",
	"czech", "romanian", "danish", "hungarian", "tamil", "norwegian", "thai", "urdu",
	"croatian", "bulgarian", "lithuanian", "latin", "maori", "malayalam", "welsh", "slovak",
	"telugu", "persian", "latvian", "bengali", "serbian", "azerbaijani", "slovenian",
	"kannada", "estonian", "macedonian", "breton", "basque", "icelandic", "armenian",
	"nepali", "mongolian", "bosnian", "kazakh", "albanian", "swahili", "galician", "marathi",
	"punjabi", "sinhala", "khmer", "shona", "yoruba", "somali", "afrikaans", "occitan",
	"georgian", "belarusian", "tajik", "sindhi", "gujarati", "amharic", "yiddish", "lao",
	"uzbek", "faroese", "haitian creole", "pashto", "turkmen", "nynorsk", "maltese",
	"sanskrit", "luxembourgish", "myanmar", "tibetan", "tagalog", "malagasy", "assamese",
	"tatar", "hawaiian", "lingala", "hausa", "bashkir", "javanese", "sundanese", "cantonese",
};

int hark_wvocab_lang_id(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < HARK_WLANG_COUNT; i++)
		if (strcmp(s, g_lang_code[i]) == 0)
			return i;
	for (int i = 0; i < HARK_WLANG_COUNT; i++)
		if (strcmp(s, g_lang_name[i]) == 0)
			return i;
	return -1;
}

const char *hark_wvocab_lang_code(int id)
{
	return id >= 0 && id < HARK_WLANG_COUNT ? g_lang_code[id] : NULL;
}

const char *hark_wvocab_lang_name(int id)
{
	return id >= 0 && id < HARK_WLANG_COUNT ? g_lang_name[id] : NULL;
}

int32_t hark_wvocab_lang_token(const struct hark_wmodel *m, int lang_id)
{
	if (!m || lang_id < 0 || lang_id >= m->n_langs)
		return -1;
	return m->sp.sot + 1 + lang_id;
}

/* ----------------------------------------------------------------- table -- */

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

const char *hark_wvocab_token(const struct hark_wvocab *v, int32_t id, size_t *len)
{
	if (len)
		*len = 0;
	if (!v || id < 0 || id >= v->n_vocab)
		return NULL;
	const struct hark_wmodel *m = v->m;
	if (id < m->n_tokens) {
		if (len)
			*len = m->tok_len[id];
		return m->tok_bytes[id] ? m->tok_bytes[id] : "";
	}
	int32_t k = id - m->n_tokens;
	if (len)
		*len = v->slen[k];
	return v->spool + v->soff[k];
}

static void ht_insert(struct hark_wvocab *v, int32_t id)
{
	size_t len;
	const char *s = hark_wvocab_token(v, id, &len);
	uint32_t h = hash_bytes(s, len) & v->hmask;
	for (;;) {
		int32_t cur = v->ht[h];
		if (cur == 0) {
			v->ht[h] = id + 1;
			break;
		}
		size_t cl;
		const char *cs = hark_wvocab_token(v, cur - 1, &cl);
		if (cl == len && memcmp(cs, s, len) == 0) {
			v->ht[h] = id + 1; /* later id wins (std::map assignment) */
			break;
		}
		h = (h + 1) & v->hmask;
	}
	if (len > v->max_len)
		v->max_len = (uint32_t)len;
}

static int32_t ht_find(const struct hark_wvocab *v, const char *s, size_t len)
{
	uint32_t h = hash_bytes(s, len) & v->hmask;
	for (;;) {
		int32_t cur = v->ht[h];
		if (cur == 0)
			return -1;
		size_t cl;
		const char *cs = hark_wvocab_token(v, cur - 1, &cl);
		if (cl == len && memcmp(cs, s, len) == 0)
			return cur - 1;
		h = (h + 1) & v->hmask;
	}
}

int hark_wvocab_new(const struct hark_wmodel *m, struct hark_wvocab **out)
{
	if (!m || !out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	struct hark_wvocab *v = calloc(1, sizeof(*v));
	if (!v)
		return HARK_ERR_NOMEM;
	int rc = HARK_ERR_NOMEM;
	v->m = m;
	v->n_vocab = m->hp.n_vocab;
	int32_t ns = m->hp.n_vocab - m->n_tokens;
	if (ns < 0)
		ns = 0;
	v->soff = calloc((size_t)ns + 1, sizeof(*v->soff));
	v->slen = calloc((size_t)ns + 1, sizeof(*v->slen));
	v->spool = malloc((size_t)ns * 32 + 1);
	if (!v->soff || !v->slen || !v->spool)
		goto out;
	const struct hark_wspecial *sp = &m->sp;
	size_t pos = 0;
	for (int32_t i = m->n_tokens; i < m->hp.n_vocab; i++) {
		char buf[32];
		if (i > sp->beg)
			snprintf(buf, sizeof(buf), "[_TT_%d]", (int)(i - sp->beg));
		else if (i == sp->eot)
			snprintf(buf, sizeof(buf), "[_EOT_]");
		else if (i == sp->sot)
			snprintf(buf, sizeof(buf), "[_SOT_]");
		else if (i == sp->translate)
			snprintf(buf, sizeof(buf), "[_TRANSLATE_]");
		else if (i == sp->transcribe)
			snprintf(buf, sizeof(buf), "[_TRANSCRIBE_]");
		else if (i == sp->sot_lm)
			snprintf(buf, sizeof(buf), "[_SOLM_]");
		else if (i == sp->prev)
			snprintf(buf, sizeof(buf), "[_PREV_]");
		else if (i == sp->nosp)
			snprintf(buf, sizeof(buf), "[_NOSP_]");
		else if (i == sp->not_ts)
			snprintf(buf, sizeof(buf), "[_NOT_]");
		else if (i == sp->beg)
			snprintf(buf, sizeof(buf), "[_BEG_]");
		else if (i > sp->sot && i <= sp->sot + m->n_langs && i - sp->sot - 1 < HARK_WLANG_COUNT)
			snprintf(buf, sizeof(buf), "[_LANG_%s]", g_lang_code[i - sp->sot - 1]);
		else
			snprintf(buf, sizeof(buf), "[_extra_token_%d]", (int)i);
		size_t l = strlen(buf);
		int32_t k = i - m->n_tokens;
		v->soff[k] = (uint32_t)pos;
		v->slen[k] = (uint32_t)l;
		memcpy(v->spool + pos, buf, l + 1);
		pos += l + 1;
	}
	uint32_t cap = 1;
	while (cap < (uint32_t)m->hp.n_vocab * 2u + 2u)
		cap <<= 1;
	v->ht = calloc(cap, sizeof(*v->ht));
	if (!v->ht)
		goto out;
	v->hmask = cap - 1;
	for (int32_t i = 0; i < m->hp.n_vocab; i++)
		ht_insert(v, i);
	rc = HARK_OK;
out:
	if (rc) {
		hark_wvocab_free(v);
		return rc;
	}
	*out = v;
	return HARK_OK;
}

void hark_wvocab_free(struct hark_wvocab *v)
{
	if (!v)
		return;
	free(v->ht);
	free(v->spool);
	free(v->slen);
	free(v->soff);
	free(v);
}

/* -------------------------------------------------------------- encoding -- */

static int c_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int c_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int c_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int c_other(unsigned char c)
{
	return !c_space(c) && !c_alpha(c) && !c_digit(c);
}

/* Length of the regex match at s[i] (always >= 1 for i < n). */
static size_t pretok(const unsigned char *s, size_t n, size_t i)
{
	static const char *const contr[] = {"s", "t", "re", "ve", "m", "ll", "d"};
	if (s[i] == '\'') {
		for (int k = 0; k < 7; k++) {
			size_t l = strlen(contr[k]);
			if (i + 1 + l <= n && memcmp(s + i + 1, contr[k], l) == 0)
				return 1 + l;
		}
	}
	static int (*const cls[3])(unsigned char) = {c_alpha, c_digit, c_other};
	for (int k = 0; k < 3; k++) {
		size_t j = i;
		if (s[j] == ' ' && j + 1 < n && cls[k](s[j + 1]))
			j++;
		else if (!cls[k](s[j]))
			continue;
		while (j < n && cls[k](s[j]))
			j++;
		return j - i;
	}
	/* whitespace run */
	size_t j = i;
	while (j < n && c_space(s[j]))
		j++;
	size_t L = j - i;
	if (j == n)
		return L;      /* \s+(?!\S) at end */
	if (L >= 2)
		return L - 1;  /* \s+(?!\S) leaves the last space for the next word */
	return L;              /* \s+ */
}

int hark_wvocab_encode(const struct hark_wvocab *v, const char *text, int32_t *ids, int max, int *n)
{
	if (!v || !text || !n || (max > 0 && !ids))
		return HARK_ERR_INVALID_ARG;
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text);
	int cnt = 0;
	size_t i = 0;
	while (i < len) {
		size_t wl = pretok(s, len, i);
		size_t a = i, e = i + wl;
		while (a < e) {
			size_t j = e - a > v->max_len ? a + v->max_len : e;
			int32_t id = -1;
			for (; j > a; j--) {
				id = ht_find(v, text + a, j - a);
				if (id >= 0)
					break;
			}
			if (id >= 0) {
				if (cnt < max)
					ids[cnt] = id;
				cnt++;
				a = j;
			} else {
				a++;
			}
		}
		i = e;
	}
	*n = cnt;
	return cnt > max ? HARK_ERR_LIMIT : HARK_OK;
}

/* ----------------------------------------------------------------- UTF-8 -- */

size_t hark_wvocab_utf8_complete(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	/* look back at most 3 bytes for a lead byte */
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = s[n - back];
		if ((c & 0xc0) == 0x80)
			continue; /* continuation byte: keep looking */
		size_t need;
		if ((c & 0xe0) == 0xc0)
			need = 2;
		else if ((c & 0xf0) == 0xe0)
			need = 3;
		else if ((c & 0xf8) == 0xf0)
			need = 4;
		else
			return n; /* ASCII or invalid lead: nothing to hold */
		return back < need ? n - back : n;
	}
	return n;
}

static int out_append(char *out, size_t cap, size_t *len, const void *p, size_t n)
{
	if (*len + n + 1 > cap)
		return HARK_ERR_LIMIT;
	memcpy(out + *len, p, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

int hark_wutf8_feed(struct hark_wutf8 *c, const char *piece, size_t n, char *out, size_t cap, size_t *len)
{
	if (!c || !out || !len || (n && !piece))
		return HARK_ERR_INVALID_ARG;
	/* join carry + piece virtually: carry is at most 3 bytes */
	char tmp[8];
	size_t nt = 0;
	memcpy(tmp, c->pend, (size_t)c->npend);
	nt = (size_t)c->npend;
	size_t take = n < 4 ? n : 4;
	memcpy(tmp + nt, piece, take);
	size_t total = nt + n;
	/* find the complete length over the joined sequence */
	size_t keep;
	if (n >= 4) {
		keep = hark_wvocab_utf8_complete(piece, n);
		keep += nt;
	} else {
		keep = hark_wvocab_utf8_complete(tmp, nt + take);
	}
	size_t hold = total - keep;
	if (*len + keep + 1 > cap)
		return HARK_ERR_LIMIT;
	if (keep <= nt) {
		out_append(out, cap, len, tmp, keep);
	} else {
		out_append(out, cap, len, tmp, nt);
		out_append(out, cap, len, piece, keep - nt);
	}
	/* new carry = last `hold` bytes of the joined sequence */
	unsigned char nc[4] = {0};
	for (size_t k = 0; k < hold; k++) {
		size_t idx = total - hold + k;
		nc[k] = idx < nt ? (unsigned char)tmp[idx] : (unsigned char)piece[idx - nt];
	}
	memcpy(c->pend, nc, hold);
	c->npend = (int)hold;
	return 0;
}

int hark_wutf8_flush(struct hark_wutf8 *c, char *out, size_t cap, size_t *len)
{
	if (!c || !out || !len)
		return HARK_ERR_INVALID_ARG;
	int rc = out_append(out, cap, len, c->pend, (size_t)c->npend);
	if (rc == 0)
		c->npend = 0;
	return rc;
}
