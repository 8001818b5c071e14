/*
 * Text normalisation for scoring and output safety: a strict UTF-8
 * decoder/encoder/sanitiser shared by the output formats, and the
 * word-error-rate normaliser (lowercase, punctuation removal, number
 * expansion, spelling variants, hesitation and annotation removal). The
 * normaliser works on an array of code points so multibyte characters are
 * never split; see textnorm.h for the exact rules.
 */
#include "util/textnorm.h"

#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

/* ------------------------------------------------------------ UTF-8 ---- */

size_t hark_textnorm_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c;
	size_t len, i;

	*cp = 0xFFFD;
	if (n == 0)
		return 0;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if (u[0] >= 0xC2 && u[0] <= 0xDF) {
		len = 2;
		c = u[0] & 0x1F;
	} else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
		len = 3;
		c = u[0] & 0x0F;
	} else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
		len = 4;
		c = u[0] & 0x07;
	} else {
		return 1;
	}
	if (n < len)
		return 1;
	for (i = 1; i < len; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 1;
		c = (c << 6) | (u[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10FFFF ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 1;
	*cp = c;
	return len;
}

size_t hark_textnorm_utf8_encode(uint32_t cp, char *buf)
{
	unsigned char *b = (unsigned char *)buf;

	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	b[0] = (unsigned char)(0xF0 | (cp >> 18));
	b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	b[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A decode that reports whether the sequence was genuinely valid (a literal
 * U+FFFD in the input is valid). */
static size_t decode_checked(const char *s, size_t n, uint32_t *cp, int *valid)
{
	size_t k = hark_textnorm_utf8_decode(s, n, cp);

	*valid = !(k == 1 && (unsigned char)s[0] >= 0x80);
	return k;
}

int hark_textnorm_utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	uint32_t cp;
	int ok;

	while (i < n) {
		i += decode_checked(s + i, n - i, &cp, &ok);
		if (!ok)
			return 0;
	}
	return 1;
}

size_t hark_textnorm_utf8_len(const char *s, size_t n)
{
	size_t i = 0, count = 0;
	uint32_t cp;

	while (i < n) {
		i += hark_textnorm_utf8_decode(s + i, n - i, &cp);
		count++;
	}
	return count;
}

int hark_textnorm_utf8_sanitize(const char *s, size_t n, int strip_controls, char **out,
				size_t *out_len)
{
	char *buf;
	size_t i = 0, o = 0;
	uint32_t cp;
	int ok;

	if (!out || (!s && n))
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (n > ((size_t)1 << 30))
		return HARK_ERR_LIMIT;
	/* Each bad byte becomes 3 bytes (U+FFFD) at most. */
	buf = malloc(n * 3 + 1);
	if (!buf)
		return HARK_ERR_NOMEM;
	while (i < n) {
		size_t k = decode_checked(s + i, n - i, &cp, &ok);

		if (!ok) {
			o += hark_textnorm_utf8_encode(0xFFFD, buf + o);
		} else if (cp == 0 ||
			   (strip_controls && ((cp < 0x20 && cp != '\t' && cp != '\n' &&
						 cp != '\r') || cp == 0x7F))) {
			buf[o++] = ' ';
		} else {
			memcpy(buf + o, s + i, k);
			o += k;
		}
		i += k;
	}
	buf[o] = '\0';
	*out = buf;
	if (out_len)
		*out_len = o;
	return HARK_OK;
}

/* ------------------------------------------------------- normaliser ---- */

struct tbuf {
	char *p;
	size_t len, cap, max;
};

static int tbuf_put(struct tbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *np;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max) {
			if (b->len + n + 1 > b->max)
				return HARK_ERR_LIMIT;
			ncap = b->max;
		}
		np = realloc(b->p, ncap);
		if (!np)
			return HARK_ERR_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return HARK_OK;
}

/* Appends one word, separated from the previous by a single space. */
static int emit(struct tbuf *b, const char *w, size_t n)
{
	int rc;

	if (n == 0)
		return HARK_OK;
	if (b->len && (rc = tbuf_put(b, " ", 1)))
		return rc;
	return tbuf_put(b, w, n);
}

static int emit_str(struct tbuf *b, const char *w)
{
	return emit(b, w, strlen(w));
}

struct hark_textnorm_params hark_textnorm_default_params(void)
{
	struct hark_textnorm_params p = {
		.expand_numbers = 1,
		.remove_fillers = 1,
		.remove_bracketed = 1,
		.map_spellings = 1,
	};
	return p;
}

static uint32_t lower_cp(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0x80)
		return c;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 0x20;
	if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
		return c | 1;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return (c & 1) ? c + 1 : c;
	if (c == 0x178)
		return 0xFF;
	if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
		return c + 0x20;
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	return c;
}

static int is_space_cp(uint32_t c)
{
	return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
	       c == 0x205F || c == 0x3000;
}

static int is_dash_cp(uint32_t c)
{
	return c == '-' || (c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0xFE58 ||
	       c == 0xFE63 || c == 0xFF0D;
}

static int is_apos_cp(uint32_t c)
{
	return c == '\'' || c == 0x2019 || c == 0x2018 || c == 0x02BC || c == '`' || c == 0xB4;
}

static int is_zero_width(uint32_t c)
{
	return (c >= 0x200B && c <= 0x200F) || c == 0xFEFF || c == 0x00AD;
}

/* Letters for tokenising: ASCII letters and any non-ASCII code point that is
 * not a known punctuation, symbol or replacement character. */
static int is_letter_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	if (c >= 0xA0 && c <= 0xBF)
		return c == 0xAA || c == 0xB5 || c == 0xBA;
	if (c == 0xD7 || c == 0xF7)
		return 0;
	if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x20A0 && c <= 0x20CF) ||
	    (c >= 0x2100 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
	    (c >= 0xFE10 && c <= 0xFE6F) || (c >= 0xFF01 && c <= 0xFF0F) ||
	    (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
	    (c >= 0xFF5B && c <= 0xFF65) || c == 0xFFFD || (c >= 0x1F000 && c <= 0x1FAFF))
		return 0;
	return 1;
}

static const char *const ones[] = {
	"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
	"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
	"seventeen", "eighteen", "nineteen",
};
static const char *const tens[] = {
	"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
};
static const char *const scales[] = {
	"", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion",
};

struct sbuf_fixed {
	char *p;
	size_t len, cap;
	int overflow;
};

static void fx_word(struct sbuf_fixed *f, const char *w)
{
	size_t n = strlen(w);

	if (f->overflow)
		return;
	if (f->len + (f->len ? 1 : 0) + n + 1 > f->cap) {
		f->overflow = 1;
		return;
	}
	if (f->len)
		f->p[f->len++] = ' ';
	memcpy(f->p + f->len, w, n);
	f->len += n;
	f->p[f->len] = '\0';
}

static void fx_below_1000(struct sbuf_fixed *f, unsigned v)
{
	if (v >= 100) {
		fx_word(f, ones[v / 100]);
		fx_word(f, "hundred");
		v %= 100;
		if (!v)
			return;
	}
	if (v < 20) {
		fx_word(f, ones[v]);
	} else {
		fx_word(f, tens[v / 10]);
		if (v % 10)
			fx_word(f, ones[v % 10]);
	}
}

size_t hark_textnorm_cardinal(uint64_t n, char *buf, size_t cap)
{
	struct sbuf_fixed f = {buf, 0, cap, 0};
	unsigned groups[7];
	int ng = 0, g;

	if (!buf || cap == 0)
		return 0;
	buf[0] = '\0';
	if (n >= 1000000000000000000ULL)
		return 0;
	if (n == 0) {
		fx_word(&f, "zero");
		return f.overflow ? 0 : f.len;
	}
	while (n) {
		groups[ng++] = (unsigned)(n % 1000);
		n /= 1000;
	}
	for (g = ng - 1; g >= 0; g--) {
		if (!groups[g])
			continue;
		fx_below_1000(&f, groups[g]);
		if (g)
			fx_word(&f, scales[g]);
	}
	if (f.overflow) {
		buf[0] = '\0';
		return 0;
	}
	return f.len;
}

/* Rewrites the last word of the words in buf (length *len, capacity cap) as
 * an ordinal ("two" -> "second", "twenty" -> "twentieth"). */
static void ordinalize(char *buf, size_t *len, size_t cap)
{
	static const char *const irregular[][2] = {
		{"one", "first"}, {"two", "second"}, {"three", "third"}, {"five", "fifth"},
		{"eight", "eighth"}, {"nine", "ninth"}, {"twelve", "twelfth"},
	};
	char *last = strrchr(buf, ' ');
	size_t i, wl;

	last = last ? last + 1 : buf;
	wl = strlen(last);
	for (i = 0; i < sizeof(irregular) / sizeof(irregular[0]); i++) {
		if (strcmp(last, irregular[i][0]) == 0) {
			size_t nl = strlen(irregular[i][1]);

			if ((size_t)(last - buf) + nl + 1 > cap)
				return;
			memcpy(last, irregular[i][1], nl + 1);
			*len = (size_t)(last - buf) + nl;
			return;
		}
	}
	if (*len + 5 > cap)
		return;
	if (wl && last[wl - 1] == 'y') {
		memcpy(last + wl - 1, "ieth", 5);
		*len += 3;
	} else {
		memcpy(last + wl, "th", 3);
		*len += 2;
	}
}

/* Rewrites the last word as a plural ("eighty" -> "eighties"). */
static void pluralize(char *buf, size_t *len, size_t cap)
{
	if (*len == 0 || *len + 4 > cap)
		return;
	if (buf[*len - 1] == 'y') {
		memcpy(buf + *len - 1, "ies", 4);
		*len += 2;
	} else if (buf[*len - 1] == 'x') {
		memcpy(buf + *len, "es", 3);
		*len += 2;
	} else {
		memcpy(buf + *len, "s", 2);
		*len += 1;
	}
}

/* "1813" -> "eighteen thirteen", "1900" -> "nineteen hundred", "1805" ->
 * "eighteen oh five", "2024" -> "twenty twenty four". */
static size_t year_words(unsigned n, char *buf, size_t cap)
{
	size_t l = hark_textnorm_cardinal(n / 100, buf, cap);
	unsigned lo = n % 100;
	struct sbuf_fixed f = {buf, l, cap, 0};

	if (!l)
		return 0;
	if (lo == 0) {
		fx_word(&f, "hundred");
	} else {
		if (lo < 10)
			fx_word(&f, "oh");
		fx_below_1000(&f, lo);
	}
	return f.overflow ? 0 : f.len;
}

static int is_year(unsigned long long v)
{
	return (v >= 1100 && v <= 1999) || (v >= 2010 && v <= 2099);
}

static int emit_digits(struct tbuf *b, const uint32_t *d, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = emit_str(b, ones[d[i] - '0'])))
			return rc;
	return HARK_OK;
}

enum num_suffix { SUF_NONE, SUF_ORDINAL, SUF_PLURAL };

struct number {
	uint32_t digits[64]; /* integer part, grouping commas removed */
	size_t n_digits;
	int too_long;
	const uint32_t *frac;
	size_t n_frac;
	int grouped;
	uint32_t currency; /* '$', 0xA3, 0x20AC or 0 */
	int percent;
	enum num_suffix suffix;
};

static int emit_number(struct tbuf *b, const struct number *num, int expand)
{
	char words[512];
	unsigned long long v = 0;
	size_t i, l;
	int rc;

	if (!expand) {
		char tmp[160];
		size_t k = 0;

		for (i = 0; i < num->n_digits && k < 70; i++)
			tmp[k++] = (char)num->digits[i];
		if (num->n_frac)
			tmp[k++] = '.';
		for (i = 0; i < num->n_frac && k < sizeof(tmp) - 1; i++)
			tmp[k++] = (char)num->frac[i];
		if ((rc = emit(b, tmp, k)))
			return rc;
		if (num->percent)
			return emit_str(b, "percent");
		return HARK_OK;
	}
	if (num->too_long || num->n_digits > 18 ||
	    (num->n_digits > 1 && num->digits[0] == '0' && !num->currency)) {
		if ((rc = emit_digits(b, num->digits, num->n_digits)))
			return rc;
		goto frac_and_unit;
	}
	for (i = 0; i < num->n_digits; i++)
		v = v * 10 + (num->digits[i] - '0');

	if (num->currency && num->n_frac == 2) {
		unsigned cents = (num->frac[0] - '0') * 10 + (num->frac[1] - '0');
		const char *unit = num->currency == '$' ? "dollar" :
				   num->currency == 0xA3 ? "pound" : "euro";
		const char *sub = num->currency == 0xA3 ? "pence" : "cents";

		if (v || !cents) {
			l = hark_textnorm_cardinal(v, words, sizeof(words));
			if ((rc = emit(b, words, l)) || (rc = emit_str(b, unit)))
				return rc;
			if (v != 1 && (rc = tbuf_put(b, "s", 1)))
				return rc;
		}
		if (cents) {
			l = hark_textnorm_cardinal(cents, words, sizeof(words));
			if ((rc = emit(b, words, l)))
				return rc;
			if ((rc = emit_str(b, cents == 1 && num->currency != 0xA3
						   ? "cent" : sub)))
				return rc;
		}
		if (num->percent)
			return emit_str(b, "percent");
		return HARK_OK;
	}
	if (!num->n_frac && !num->grouped && !num->currency && num->n_digits == 4 &&
	    is_year(v) && num->suffix != SUF_ORDINAL)
		l = year_words((unsigned)v, words, sizeof(words));
	else
		l = hark_textnorm_cardinal(v, words, sizeof(words));
	if (!num->n_frac && num->suffix == SUF_ORDINAL)
		ordinalize(words, &l, sizeof(words));
	else if (!num->n_frac && num->suffix == SUF_PLURAL)
		pluralize(words, &l, sizeof(words));
	if ((rc = emit(b, words, l)))
		return rc;

frac_and_unit:
	if (num->n_frac) {
		if ((rc = emit_str(b, "point")) || (rc = emit_digits(b, num->frac, num->n_frac)))
			return rc;
	}
	if (num->currency) {
		const char *unit = num->currency == '$' ? "dollars" :
				   num->currency == 0xA3 ? "pounds" : "euros";

		if (!num->n_frac && !num->too_long && num->n_digits <= 18 && v == 1)
			unit = num->currency == '$' ? "dollar" :
			       num->currency == 0xA3 ? "pound" : "euro";
		if ((rc = emit_str(b, unit)))
			return rc;
	}
	if (num->percent)
		return emit_str(b, "percent");
	return HARK_OK;
}

static int is_digit_cp(uint32_t c)
{
	return c >= '0' && c <= '9';
}

static int emit_word(struct tbuf *b, const char *w, size_t n,
		     const struct hark_textnorm_params *p)
{
	static const char *const fillers[] = {"um", "uh", "hmm", "mm", "mhm", "mmm", "umm", "uhm"};
	static const char *const spell[][2] = {
		{"mr", "mister"}, {"mrs", "missus"}, {"dr", "doctor"},
		{"ok", "okay"}, {"vs", "versus"},
	};
	size_t i;

	if (p->remove_fillers) {
		for (i = 0; i < sizeof(fillers) / sizeof(fillers[0]); i++)
			if (strlen(fillers[i]) == n && memcmp(fillers[i], w, n) == 0)
				return HARK_OK;
	}
	if (p->map_spellings) {
		for (i = 0; i < sizeof(spell) / sizeof(spell[0]); i++)
			if (strlen(spell[i][0]) == n && memcmp(spell[i][0], w, n) == 0)
				return emit_str(b, spell[i][1]);
	}
	return emit(b, w, n);
}

/* Index of the closing bracket matching the opener at cps[i], or 0 if none
 * within the rest of the text. */
static size_t find_close(const uint32_t *cps, size_t n, size_t i)
{
	uint32_t open = cps[i];
	uint32_t close = open == '[' ? ']' : open == '(' ? ')' : '>';
	size_t j;

	for (j = i + 1; j < n; j++) {
		if (cps[j] == close)
			return j;
		if (cps[j] == open)
			return 0;
	}
	return 0;
}

int hark_textnorm_normalize(const char *in, size_t len, const struct hark_textnorm_params *p,
			    char **out, size_t *out_len)
{
	struct hark_textnorm_params defp = hark_textnorm_default_params();
	struct tbuf b = {NULL, 0, 0, 0};
	uint32_t *cps = NULL;
	size_t n = 0, i = 0;
	char *word = NULL;
	int rc = HARK_OK;

	if (!out || (!in && len))
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (len > HARK_TEXTNORM_MAX_INPUT)
		return HARK_ERR_LIMIT;
	if (!p)
		p = &defp;
	b.max = len * 24 + 4096;

	cps = malloc((len + 1) * sizeof(*cps));
	word = malloc(len * 4 + 8);
	if (!cps || !word) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	/* Pass 1: decode and map to a simplified code point stream. */
	while (i < len) {
		uint32_t c;

		i += hark_textnorm_utf8_decode(in + i, len - i, &c);
		if (is_zero_width(c))
			continue;
		if (is_space_cp(c) || is_dash_cp(c) || c < 0x20 || c == 0x7F)
			c = ' ';
		else if (is_apos_cp(c))
			c = '\'';
		else
			c = lower_cp(c);
		cps[n++] = c;
	}
	if ((rc = tbuf_put(&b, "", 0)))
		goto out;

	/* Pass 2: tokenise and emit. */
	i = 0;
	while (i < n) {
		uint32_t c = cps[i];

		if (p->remove_bracketed && (c == '[' || c == '(' || c == '<')) {
			size_t j = find_close(cps, n, i);

			if (j) {
				i = j + 1;
				continue;
			}
		}
		if (is_letter_cp(c)) {
			size_t wl = 0;

			while (i < n) {
				c = cps[i];
				if (is_letter_cp(c)) {
					wl += hark_textnorm_utf8_encode(c, word + wl);
					i++;
				} else if (c == '\'' && i + 1 < n && is_letter_cp(cps[i + 1])) {
					word[wl++] = '\'';
					i++;
				} else {
					break;
				}
			}
			if ((rc = emit_word(&b, word, wl, p)))
				goto out;
			continue;
		}
		if (is_digit_cp(c)) {
			struct number num;
			size_t start = i;

			memset(&num, 0, sizeof(num));
			for (;;) {
				while (i < n && is_digit_cp(cps[i])) {
					if (num.n_digits < sizeof(num.digits) / sizeof(num.digits[0]))
						num.digits[num.n_digits++] = cps[i];
					else
						num.too_long = 1;
					i++;
				}
				/* Thousands grouping: ",ddd" not followed by a digit. */
				if (i + 4 <= n && cps[i] == ',' && is_digit_cp(cps[i + 1]) &&
				    is_digit_cp(cps[i + 2]) && is_digit_cp(cps[i + 3]) &&
				    (i + 4 == n || !is_digit_cp(cps[i + 4])) && i - start <= 3 + 4 * 6) {
					num.grouped = 1;
					i++;
					continue;
				}
				break;
			}
			if (i + 1 < n && cps[i] == '.' && is_digit_cp(cps[i + 1])) {
				num.frac = cps + i + 1;
				i++;
				while (i < n && is_digit_cp(cps[i])) {
					num.n_frac++;
					i++;
				}
			}
			if (start > 0 && (cps[start - 1] == '$' || cps[start - 1] == 0xA3 ||
					  cps[start - 1] == 0x20AC))
				num.currency = cps[start - 1];
			if (i < n && cps[i] == '%') {
				num.percent = 1;
				i++;
			} else if (i < n && is_letter_cp(cps[i])) {
				size_t j = i;

				while (j < n && is_letter_cp(cps[j]))
					j++;
				if (j - i == 2 && !num.n_frac) {
					uint32_t a = cps[i], z = cps[i + 1];

					if ((a == 's' && z == 't') || (a == 'n' && z == 'd') ||
					    (a == 'r' && z == 'd') || (a == 't' && z == 'h')) {
						num.suffix = SUF_ORDINAL;
						i = j;
					}
				} else if (j - i == 1 && cps[i] == 's' && !num.n_frac) {
					num.suffix = SUF_PLURAL;
					i = j;
				}
			} else if (i + 1 < n && cps[i] == '\'' && cps[i + 1] == 's' &&
				   (i + 2 == n || !is_letter_cp(cps[i + 2])) && !num.n_frac) {
				num.suffix = SUF_PLURAL;
				i += 2;
			}
			if ((rc = emit_number(&b, &num, p->expand_numbers)))
				goto out;
			continue;
		}
		if (c == '%') {
			if ((rc = emit_str(&b, "percent")))
				goto out;
		} else if (c == '&') {
			if ((rc = emit_str(&b, "and")))
				goto out;
		}
		i++;
	}
	*out = b.p;
	b.p = NULL;
	if (out_len)
		*out_len = b.len;
out:
	free(b.p);
	free(word);
	free(cps);
	return rc;
}
