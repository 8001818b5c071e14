/*
 * ROUGE-1/2/L scoring with ROUGE-style tokenisation and a Porter stemmer
 * written from the 1980 paper ("An algorithm for suffix stripping"): tokens
 * are interned to integer ids, n-gram multisets are compared by sorting, and
 * the LCS uses a two-row dynamic programme. See rouge.h.
 */
#include "analyze/rouge.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

struct hark_rouge_params hark_rouge_default_params(void)
{
	struct hark_rouge_params p;

	memset(&p, 0, sizeof(p));
	p.stem = 1;
	p.max_tokens = 1000000;
	p.max_lcs_cells = 400000000;
	return p;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------- Porter ---- */

/* Working word: b[0..k] is the current word (k = last index), j marks the
 * end of the stem found by ends(). */
struct pw {
	char b[HARK_ROUGE_MAX_WORD + 8];
	int k;
	int j;
};

/* Nonzero when b[i] is a consonant: not a vowel, and 'y' only after a vowel
 * (or at the start). */
static int cons(const struct pw *z, int i)
{
	switch (z->b[i]) {
	case 'a': case 'e': case 'i': case 'o': case 'u':
		return 0;
	case 'y':
		return i == 0 ? 1 : !cons(z, i - 1);
	default:
		return 1;
	}
}

/* m, the number of VC sequences in b[0..j]: [C](VC)^m[V]. */
static int measure(const struct pw *z, int j)
{
	int n = 0, i = 0;

	while (i <= j && cons(z, i))
		i++;
	for (;;) {
		while (i <= j && !cons(z, i))
			i++;
		if (i > j)
			return n;
		while (i <= j && cons(z, i))
			i++;
		n++;
	}
}

/* *v*: b[0..j] contains a vowel. */
static int vowel_in(const struct pw *z, int j)
{
	for (int i = 0; i <= j; i++)
		if (!cons(z, i))
			return 1;
	return 0;
}

/* *d: b[i-1..i] is a double consonant. */
static int double_c(const struct pw *z, int i)
{
	return i >= 1 && z->b[i] == z->b[i - 1] && cons(z, i);
}

/* *o: b[i-2..i] is consonant-vowel-consonant and b[i] is not w, x or y. */
static int cvc(const struct pw *z, int i)
{
	char c;

	if (i < 2 || !cons(z, i) || cons(z, i - 1) || !cons(z, i - 2))
		return 0;
	c = z->b[i];
	return c != 'w' && c != 'x' && c != 'y';
}

/* Nonzero when the word ends with s (and it is shorter than the word);
 * sets j to the index before the suffix. */
static int ends(struct pw *z, const char *s)
{
	int l = (int)strlen(s);

	if (l > z->k + 1)
		return 0;
	if (memcmp(z->b + z->k - l + 1, s, (size_t)l) != 0)
		return 0;
	z->j = z->k - l;
	return 1;
}

/* Replaces b[j+1..k] with s. */
static void set_to(struct pw *z, const char *s)
{
	int l = (int)strlen(s);

	memcpy(z->b + z->j + 1, s, (size_t)l);
	z->k = z->j + l;
}

/* (m > 0) suffix -> s. */
static void r_m0(struct pw *z, const char *s)
{
	if (measure(z, z->j) > 0)
		set_to(z, s);
}

static void step1ab(struct pw *z)
{
	if (z->b[z->k] == 's') {
		if (ends(z, "sses"))
			z->k -= 2;
		else if (ends(z, "ies"))
			set_to(z, "i");
		else if (z->k >= 1 && z->b[z->k - 1] != 's')
			z->k--;
	}
	if (ends(z, "eed")) {
		if (measure(z, z->j) > 0)
			z->k--;
	} else if ((ends(z, "ed") || ends(z, "ing")) && vowel_in(z, z->j)) {
		z->k = z->j;
		if (ends(z, "at"))
			set_to(z, "ate");
		else if (ends(z, "bl"))
			set_to(z, "ble");
		else if (ends(z, "iz"))
			set_to(z, "ize");
		else if (double_c(z, z->k)) {
			char c = z->b[z->k];

			if (c != 'l' && c != 's' && c != 'z')
				z->k--;
		} else if (measure(z, z->k) == 1 && cvc(z, z->k)) {
			z->j = z->k;
			set_to(z, "e");
		}
	}
}

static void step1c(struct pw *z)
{
	if (ends(z, "y") && vowel_in(z, z->j))
		z->b[z->k] = 'i';
}

struct rule {
	const char *from;
	const char *to;
};

/* Applies the first rule whose suffix matches; the tables list a longer
 * suffix before any shorter one it ends with, so the first hit is the
 * longest match, and (as in the paper) a failed condition stops the step. */
static void apply_rules(struct pw *z, const struct rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ends(z, r[i].from)) {
			r_m0(z, r[i].to);
			return;
		}
	}
}

static void step2(struct pw *z)
{
	static const struct rule r[] = {
		{"ational", "ate"}, {"tional", "tion"}, {"enci", "ence"}, {"anci", "ance"},
		{"izer", "ize"}, {"abli", "able"}, {"alli", "al"}, {"entli", "ent"},
		{"eli", "e"}, {"ousli", "ous"}, {"ization", "ize"}, {"ation", "ate"},
		{"ator", "ate"}, {"alism", "al"}, {"iveness", "ive"}, {"fulness", "ful"},
		{"ousness", "ous"}, {"aliti", "al"}, {"iviti", "ive"}, {"biliti", "ble"},
	};

	apply_rules(z, r, sizeof(r) / sizeof(r[0]));
}

static void step3(struct pw *z)
{
	static const struct rule r[] = {
		{"icate", "ic"}, {"ative", ""}, {"alize", "al"}, {"iciti", "ic"},
		{"ical", "ic"}, {"ful", ""}, {"ness", ""},
	};

	apply_rules(z, r, sizeof(r) / sizeof(r[0]));
}

static void step4(struct pw *z)
{
	/* Paper order; "ement" precedes "ment" precedes "ent", so the first hit
	 * is the longest matching suffix. */
	static const char *const s[] = {
		"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement",
		"ment", "ent", "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (!ends(z, s[i]))
			continue;
		if (strcmp(s[i], "ion") == 0 &&
		    !(z->j >= 0 && (z->b[z->j] == 's' || z->b[z->j] == 't')))
			return;
		if (measure(z, z->j) > 1)
			z->k = z->j;
		return;
	}
}

static void step5(struct pw *z)
{
	z->j = z->k;
	if (z->b[z->k] == 'e') {
		int m = measure(z, z->k - 1);

		if (m > 1 || (m == 1 && !cvc(z, z->k - 1)))
			z->k--;
	}
	if (z->b[z->k] == 'l' && double_c(z, z->k) && measure(z, z->k) > 1)
		z->k--;
}

size_t hark_rouge_porter_stem(const char *w, size_t len, char *out, size_t cap)
{
	struct pw z;
	size_t n;
	int ok = len > 2 && len <= HARK_ROUGE_MAX_WORD;

	for (size_t i = 0; ok && i < len; i++)
		if (w[i] < 'a' || w[i] > 'z')
			ok = 0;
	if (!ok) {
		if (cap > 0) {
			n = len < cap - 1 ? len : cap - 1;
			memcpy(out, w, n);
			out[n] = '\0';
		}
		return len;
	}
	memset(&z, 0, sizeof(z));
	memcpy(z.b, w, len);
	z.k = (int)len - 1;
	z.j = 0;
	step1ab(&z);
	if (z.k > 0) {
		step1c(&z);
		step2(&z);
		step3(&z);
		step4(&z);
		step5(&z);
	}
	n = (size_t)z.k + 1;
	if (cap > 0) {
		size_t c = n < cap - 1 ? n : cap - 1;

		memcpy(out, z.b, c);
		out[c] = '\0';
	}
	return n;
}

/* ------------------------------------------------------------ scoring ---- */

/* Interning table: open addressing over token strings, shared by both texts. */
struct intern {
	char **keys;
	uint32_t *ids;
	size_t cap;   /* power of two */
	size_t n;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static int intern_grow(struct intern *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	char **nk = calloc(ncap, sizeof(*nk));
	uint32_t *ni = calloc(ncap, sizeof(*ni));

	if (!nk || !ni) {
		free(nk);
		free(ni);
		return HARK_ERR_NOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		size_t h;

		if (!t->keys[i])
			continue;
		h = (size_t)hash_bytes(t->keys[i], strlen(t->keys[i])) & (ncap - 1);
		while (nk[h])
			h = (h + 1) & (ncap - 1);
		nk[h] = t->keys[i];
		ni[h] = t->ids[i];
	}
	free(t->keys);
	free(t->ids);
	t->keys = nk;
	t->ids = ni;
	t->cap = ncap;
	return HARK_OK;
}

static int intern_get(struct intern *t, const char *s, size_t n, uint32_t *id)
{
	size_t h;

	if ((t->n + 1) * 2 > t->cap && intern_grow(t) != HARK_OK)
		return HARK_ERR_NOMEM;
	h = (size_t)hash_bytes(s, n) & (t->cap - 1);
	while (t->keys[h]) {
		if (strlen(t->keys[h]) == n && memcmp(t->keys[h], s, n) == 0) {
			*id = t->ids[h];
			return HARK_OK;
		}
		h = (h + 1) & (t->cap - 1);
	}
	t->keys[h] = strndup(s, n);
	if (!t->keys[h])
		return HARK_ERR_NOMEM;
	t->ids[h] = (uint32_t)t->n++;
	*id = t->ids[h];
	return HARK_OK;
}

static void intern_free(struct intern *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->ids);
	memset(t, 0, sizeof(*t));
}

/* Tokenises text into a heap array of ids (*ids, *n). */
static int tokenize(const char *text, const struct hark_rouge_params *p, struct intern *t,
		    uint32_t **ids, size_t *n, char *err, size_t errlen)
{
	size_t cap = 0, cnt = 0;
	uint32_t *a = NULL;
	const char *s = text ? text : "";
	char w[HARK_ROUGE_MAX_WORD + 1], st[HARK_ROUGE_MAX_WORD + 1];
	int rc = HARK_OK;

	while (*s) {
		size_t len = 0, big = 0;
		int alpha = 1;
		const char *tok;
		size_t tlen;
		uint32_t id;

		while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			       (*s >= '0' && *s <= '9')))
			s++;
		if (!*s)
			break;
		tok = s;
		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		       (*s >= '0' && *s <= '9')) {
			char c = *s;

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c >= '0' && c <= '9')
				alpha = 0;
			if (len < HARK_ROUGE_MAX_WORD)
				w[len++] = c;
			else
				big = 1;
			s++;
		}
		if (big) {
			/* Over-long token: intern it whole, lowercased. */
			char *lw = strndup(tok, (size_t)(s - tok));

			if (!lw) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			for (char *q = lw; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q - 'A' + 'a');
			rc = intern_get(t, lw, strlen(lw), &id);
			free(lw);
			if (rc != HARK_OK)
				goto out;
		} else {
			tok = w;
			tlen = len;
			if (p->stem && alpha && len > 3) {
				tlen = hark_rouge_porter_stem(w, len, st, sizeof(st));
				tok = st;
			}
			rc = intern_get(t, tok, tlen, &id);
			if (rc != HARK_OK)
				goto out;
		}
		if (cnt >= p->max_tokens) {
			set_err(err, errlen, "rouge: text over %zu tokens", p->max_tokens);
			rc = HARK_ERR_LIMIT;
			goto out;
		}
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 256;
			uint32_t *na = realloc(a, nc * sizeof(*na));

			if (!na) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			a = na;
			cap = nc;
		}
		a[cnt++] = id;
	}
out:
	if (rc != HARK_OK) {
		free(a);
		a = NULL;
		cnt = 0;
		if (rc == HARK_ERR_NOMEM)
			set_err(err, errlen, "rouge: out of memory");
	}
	*ids = a;
	*n = cnt;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* n-gram keys (n = 1 or 2) of ids[0..cnt), sorted; *m keys. */
static uint64_t *ngrams(const uint32_t *ids, size_t cnt, int n, size_t *m)
{
	size_t k = cnt >= (size_t)n ? cnt - (size_t)n + 1 : 0;
	uint64_t *g = malloc((k ? k : 1) * sizeof(*g));

	*m = 0;
	if (!g)
		return NULL;
	for (size_t i = 0; i < k; i++)
		g[i] = n == 1 ? ids[i] : ((uint64_t)ids[i] << 32) | ids[i + 1];
	qsort(g, k, sizeof(*g), cmp_u64);
	*m = k;
	return g;
}

static struct hark_rouge_score score_of(size_t match, size_t nc, size_t nr)
{
	struct hark_rouge_score s = {0, 0, 0};

	if (nc == 0 || nr == 0 || match == 0)
		return s;
	s.precision = (double)match / (double)nc;
	s.recall = (double)match / (double)nr;
	s.f1 = 2.0 * s.precision * s.recall / (s.precision + s.recall);
	return s;
}

/* Clipped overlap of two sorted multisets = sum over keys of min counts. */
static size_t clipped_overlap(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0, m = 0;

	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			m++;
			i++;
			j++;
		}
	}
	return m;
}

static int ngram_score(const uint32_t *c, size_t nc, const uint32_t *r, size_t nr, int n,
		       struct hark_rouge_score *out)
{
	size_t mc, mr;
	uint64_t *gc = ngrams(c, nc, n, &mc), *gr = ngrams(r, nr, n, &mr);

	if (!gc || !gr) {
		free(gc);
		free(gr);
		return HARK_ERR_NOMEM;
	}
	*out = score_of(clipped_overlap(gc, mc, gr, mr), mc, mr);
	free(gc);
	free(gr);
	return HARK_OK;
}

/* LCS length of a[0..na) and b[0..nb) with two rows of nb + 1. */
static int lcs_len(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, size_t *out)
{
	uint32_t *prev = calloc(nb + 1, sizeof(*prev)), *cur = calloc(nb + 1, sizeof(*cur));

	if (!prev || !cur) {
		free(prev);
		free(cur);
		return HARK_ERR_NOMEM;
	}
	for (size_t i = 1; i <= na; i++) {
		uint32_t *t;

		cur[0] = 0;
		for (size_t j = 1; j <= nb; j++) {
			if (a[i - 1] == b[j - 1])
				cur[j] = prev[j - 1] + 1;
			else
				cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	*out = prev[nb];
	free(prev);
	free(cur);
	return HARK_OK;
}

int hark_rouge_compute(const char *candidate, const char *reference,
		       const struct hark_rouge_params *p, struct hark_rouge_result *out,
		       char *err, size_t errlen)
{
	struct hark_rouge_params dp = hark_rouge_default_params();
	struct intern t;
	uint32_t *c = NULL, *r = NULL;
	size_t nc = 0, nr = 0, l = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	if (err && errlen)
		err[0] = '\0';
	if (!out) {
		set_err(err, errlen, "rouge: out is NULL");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &dp;
	rc = tokenize(candidate, p, &t, &c, &nc, err, errlen);
	if (rc != HARK_OK)
		goto out;
	rc = tokenize(reference, p, &t, &r, &nr, err, errlen);
	if (rc != HARK_OK)
		goto out;
	if (nc && nr && (double)nc * (double)nr > (double)p->max_lcs_cells) {
		set_err(err, errlen, "rouge: %zu x %zu tokens over the LCS cap %zu", nc, nr,
			p->max_lcs_cells);
		rc = HARK_ERR_LIMIT;
		goto out;
	}
	rc = ngram_score(c, nc, r, nr, 1, &out->rouge1);
	if (rc == HARK_OK)
		rc = ngram_score(c, nc, r, nr, 2, &out->rouge2);
	if (rc == HARK_OK)
		rc = lcs_len(c, nc, r, nr, &l);
	if (rc != HARK_OK) {
		set_err(err, errlen, "rouge: out of memory");
		goto out;
	}
	out->rougel = score_of(l, nc, nr);
	out->cand_tokens = nc;
	out->ref_tokens = nr;
out:
	if (rc != HARK_OK)
		memset(out, 0, sizeof(*out));
	free(r);
	free(c);
	intern_free(&t);
	return rc;
}
