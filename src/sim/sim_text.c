/*
 * Text helpers of hark-llm-sim (see sim_text.h): token-budget cuts, hashing,
 * chunk markers, directives, and extraction of names, sentences and words.
 */
#include "sim/sim_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ---- tokens ------------------------------------------------------------------ */

static int is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t hark_sim_cut_tokens(const char *text, size_t len, size_t max_tokens)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, n = 0, cut = len;

	while (i < len) {
		unsigned char c = s[i];

		if (is_space(c)) {
			i++;
		} else if (is_word(c)) {
			size_t j = i, run, cost;

			while (j < len && is_word(s[j]))
				j++;
			run = j - i;
			cost = 1 + (run - 1) / 6;
			if (n + cost > max_tokens) {
				size_t rem = max_tokens - n;
				cut = rem ? i + 1 + 6 * (rem - 1) : i;
				break;
			}
			n += cost;
			i = j;
		} else {
			size_t j = i + 1;

			if (c >= 0xC0 && c < 0xF8)
				while (j < len && (s[j] & 0xC0) == 0x80)
					j++;
			if (n + 1 > max_tokens) {
				cut = i;
				break;
			}
			n++;
			i = j;
		}
	}
	if (cut < len)
		while (cut > 0 && is_space(s[cut - 1]))
			cut--;
	return cut;
}

/* ---- hashing ------------------------------------------------------------------- */

void hark_sim_sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int olen = 32;

	if (EVP_Digest(p, n, out, &olen, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

void hark_sim_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

uint64_t hark_sim_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

uint64_t hark_sim_fnv(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- chunk markers ----------------------------------------------------------------- */

static int is_id_char(unsigned char c)
{
	return is_word(c) || c == '_' || c == '.' || c == ':' || c == '-';
}

/* If a marker starts at text[i] (a line start), its id span and the offset
 * just after the "]" go to the out parameters; returns 1. */
static int marker_at(const char *text, size_t len, size_t i, size_t *id_off, size_t *id_len,
		     size_t *after)
{
	size_t j = i;

	while (j < len && (text[j] == ' ' || text[j] == '\t'))
		j++;
	if (len - j < 8 || memcmp(text + j, "[chunk ", 7) != 0)
		return 0;
	j += 7;
	while (j < len && text[j] == ' ')
		j++;
	*id_off = j;
	while (j < len && is_id_char((unsigned char)text[j]))
		j++;
	if (j == *id_off || j >= len || text[j] != ']')
		return 0;
	*id_len = j - *id_off;
	*after = j + 1;
	return 1;
}

static int cmp_chunk(const void *a, const void *b, void *base)
{
	const struct hark_sim_chunk *x = &((const struct hark_sim_chunk *)base)[*(const size_t *)a];
	const struct hark_sim_chunk *y = &((const struct hark_sim_chunk *)base)[*(const size_t *)b];
	size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
	int c = memcmp(x->id, y->id, n);

	if (c)
		return c;
	if (x->id_len != y->id_len)
		return x->id_len < y->id_len ? -1 : 1;
	/* equal ids: earlier first */
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int hark_sim_dedup_chunks(struct hark_sim_chunk *arr, size_t *n)
{
	size_t *idx, k = 0;
	unsigned char *drop;

	if (*n < 2)
		return 0;
	idx = malloc(*n * sizeof(*idx));
	drop = calloc(*n, 1);
	if (!idx || !drop) {
		free(idx);
		free(drop);
		return -1;
	}
	for (size_t i = 0; i < *n; i++)
		idx[i] = i;
	qsort_r(idx, *n, sizeof(*idx), cmp_chunk, arr);
	for (size_t i = 1; i < *n; i++) {
		const struct hark_sim_chunk *x = &arr[idx[i - 1]], *y = &arr[idx[i]];
		if (x->id_len == y->id_len && memcmp(x->id, y->id, x->id_len) == 0)
			drop[idx[i]] = 1;
	}
	for (size_t i = 0; i < *n; i++)
		if (!drop[i])
			arr[k++] = arr[i];
	*n = k;
	free(idx);
	free(drop);
	return 0;
}

int hark_sim_find_chunks(const char *text, size_t len, struct hark_sim_chunk **arr, size_t *n,
			 size_t *cap, size_t max)
{
	size_t i = 0;
	long cur = -1; /* index in *arr of the chunk whose body is running, or -1 */

	while (i < len) {
		size_t id_off, id_len, after;
		const char *nl;

		if (marker_at(text, len, i, &id_off, &id_len, &after)) {
			if (cur >= 0)
				(*arr)[cur].len = (size_t)(text + i - (*arr)[cur].text);
			cur = -1;
			if (*n < max) {
				if (*n == *cap) {
					size_t nc = *cap ? *cap * 2 : 16;
					struct hark_sim_chunk *na = realloc(*arr, nc * sizeof(*na));
					if (!na)
						return -1;
					*arr = na;
					*cap = nc;
				}
				(*arr)[*n].id = text + id_off;
				(*arr)[*n].id_len = id_len;
				(*arr)[*n].text = text + after;
				(*arr)[*n].len = len - after;
				cur = (long)*n;
				(*n)++;
			}
			i = after;
		}
		nl = memchr(text + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - text) + 1;
	}
	if (cur >= 0)
		(*arr)[cur].len = (size_t)(text + len - (*arr)[cur].text);
	return 0;
}

/* ---- directives -------------------------------------------------------------------- */

static const char *const dir_names[] = {"fail", "bad_json", "wrong_schema", "truncate",
					"malformed_body", "timeout", "delay", NULL};

static int parse_long(const char *s, size_t n, long *out)
{
	char buf[32];
	char *end;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtol(buf, &end, 10);
	return *end ? -1 : 0;
}

static int parse_double(const char *s, size_t n, double *out)
{
	char buf[32];
	char *end;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtod(buf, &end);
	return *end || !isfinite(*out) || *out < 0 ? -1 : 0;
}

/* Parses the inside of "[[sim:" ... "]]" (p[0..n)). */
static void parse_directive(const char *p, size_t n, struct hark_sim_directive *d)
{
	size_t i = 0, k;

	memset(d, 0, sizeof(*d));
	d->times = 1;
	d->status = 500;
	d->retry_after_s = -1;
	d->s = -1;
	while (i < n && (is_word((unsigned char)p[i]) || p[i] == '_'))
		i++;
	if (i == 0 || i >= sizeof(d->name)) {
		d->bad = 1;
		return;
	}
	memcpy(d->name, p, i);
	d->name[i] = '\0';
	d->bad = 1;
	for (k = 0; dir_names[k]; k++)
		if (strcmp(dir_names[k], d->name) == 0)
			d->bad = 0;
	while (i < n) {
		size_t ks, kl, vs, vl;

		while (i < n && is_space((unsigned char)p[i]))
			i++;
		if (i >= n)
			break;
		ks = i;
		while (i < n && p[i] != '=' && !is_space((unsigned char)p[i]))
			i++;
		kl = i - ks;
		if (i >= n || p[i] != '=') {
			d->bad = 1;
			break;
		}
		i++;
		vs = i;
		while (i < n && !is_space((unsigned char)p[i]))
			i++;
		vl = i - vs;
		if (kl == 5 && memcmp(p + ks, "times", 5) == 0) {
			if (vl == 3 && memcmp(p + vs, "all", 3) == 0)
				d->times = -1;
			else if (parse_long(p + vs, vl, &d->times) || d->times < 0)
				d->bad = 1;
		} else if (kl == 6 && memcmp(p + ks, "status", 6) == 0) {
			long st;
			if (parse_long(p + vs, vl, &st) || st < 100 || st > 599)
				d->bad = 1;
			else
				d->status = (int)st;
		} else if (kl == 11 && memcmp(p + ks, "retry_after", 11) == 0) {
			if (parse_double(p + vs, vl, &d->retry_after_s))
				d->bad = 1;
		} else if (kl == 1 && p[ks] == 's') {
			if (parse_double(p + vs, vl, &d->s))
				d->bad = 1;
		} else {
			d->bad = 1;
		}
	}
	if (!d->bad && strcmp(d->name, "delay") == 0 && d->s < 0)
		d->bad = 1;
}

int hark_sim_find_directives(const char *text, size_t len, struct hark_sim_directive **arr,
			     size_t *n, size_t *cap, size_t max)
{
	const char *p = text, *end = text + len;

	while (p < end && *n < max) {
		const char *q = memmem(p, (size_t)(end - p), "[[sim:", 6), *close;
		size_t lim;

		if (!q)
			break;
		q += 6;
		lim = (size_t)(end - q) < 512 ? (size_t)(end - q) : 512;
		close = memmem(q, lim, "]]", 2);
		if (!close) {
			p = q;
			continue;
		}
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 4;
			struct hark_sim_directive *na = realloc(*arr, nc * sizeof(*na));
			if (!na)
				return -1;
			*arr = na;
			*cap = nc;
		}
		parse_directive(q, (size_t)(close - q), &(*arr)[*n]);
		(*n)++;
		p = close + 2;
	}
	return 0;
}

/* ---- text index --------------------------------------------------------------------- */

static int is_sentence_end(const char *w, size_t n)
{
	while (n > 0 && (w[n - 1] == '"' || w[n - 1] == '\'' || w[n - 1] == ')' ||
			 w[n - 1] == ']'))
		n--;
	return n > 0 && (w[n - 1] == '.' || w[n - 1] == '!' || w[n - 1] == '?');
}

static int is_cap_word(const char *w, size_t n)
{
	return n >= 2 && w[0] >= 'A' && w[0] <= 'Z' && w[1] >= 'a' && w[1] <= 'z';
}

static int grow_u32(uint32_t **a, size_t n, size_t *cap)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	uint32_t *na = realloc(*a, nc * sizeof(*na));
	if (!na)
		return -1;
	*a = na;
	*cap = nc;
	return 0;
}

struct hark_sim_textinfo *hark_sim_textinfo_new(const char *text, size_t len)
{
	struct hark_sim_textinfo *ti = calloc(1, sizeof(*ti));
	size_t wcap = 0, wcap2 = 0, scap = 0, ncap = 0, icap = 0, i = 0;
	int newline = 1; /* a newline since the previous word */
	int prev_end = 1; /* the previous word ended a sentence */

	if (!ti)
		return NULL;
	ti->text = text;
	ti->len = len > UINT32_MAX ? UINT32_MAX : len;
	len = ti->len;
	while (i < len) {
		size_t s, e;
		int start;

		if (is_space((unsigned char)text[i])) {
			if (text[i] == '\n')
				newline = 1;
			i++;
			continue;
		}
		if (len - i >= 6 && memcmp(text + i, "[[sim:", 6) == 0) {
			const char *close = memmem(text + i, len - i, "]]", 2);
			if (close) {
				i = (size_t)(close - text) + 2;
				continue;
			}
		}
		s = i;
		while (i < len && !is_space((unsigned char)text[i]))
			i++;
		e = i;
		start = newline || prev_end;
		if (grow_u32(&ti->word_off, ti->n_words, &wcap) ||
		    grow_u32(&ti->word_len, ti->n_words, &wcap2))
			goto fail;
		ti->word_off[ti->n_words] = (uint32_t)s;
		ti->word_len[ti->n_words] = (uint32_t)(e - s);
		if (start) {
			if (grow_u32(&ti->sent, ti->n_sents, &scap))
				goto fail;
			ti->sent[ti->n_sents++] = (uint32_t)ti->n_words;
		}
		if (is_cap_word(text + s, e - s)) {
			if (start) {
				if (grow_u32(&ti->inames, ti->n_inames, &icap))
					goto fail;
				ti->inames[ti->n_inames++] = (uint32_t)ti->n_words;
			} else {
				if (grow_u32(&ti->names, ti->n_names, &ncap))
					goto fail;
				ti->names[ti->n_names++] = (uint32_t)ti->n_words;
			}
		}
		ti->n_words++;
		prev_end = is_sentence_end(text + s, e - s);
		newline = 0;
	}
	return ti;
fail:
	hark_sim_textinfo_free(ti);
	return NULL;
}

void hark_sim_textinfo_free(struct hark_sim_textinfo *ti)
{
	if (!ti)
		return;
	free(ti->word_off);
	free(ti->word_len);
	free(ti->sent);
	free(ti->names);
	free(ti->inames);
	free(ti);
}

/* Appends s[0..n) to out at *pos (cap bytes incl. the NUL), never splitting
 * a UTF-8 sequence. */
static void put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (*pos + 1 >= cap)
		return;
	if (n > cap - 1 - *pos) {
		n = cap - 1 - *pos;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
}

/* The leading name part of word w: letters, UTF-8 bytes and inner hyphens. */
static size_t name_len(const char *w, size_t n)
{
	size_t k = 0;

	while (k < n && (((w[k] | 0x20) >= 'a' && (w[k] | 0x20) <= 'z') ||
			 (unsigned char)w[k] >= 0x80 || w[k] == '-'))
		k++;
	while (k > 0 && w[k - 1] == '-')
		k--;
	return k;
}

static int is_sent_start(const struct hark_sim_textinfo *ti, size_t w)
{
	size_t lo = 0, hi = ti->n_sents;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ti->sent[mid] < w)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ti->n_sents && ti->sent[lo] == w;
}

void hark_sim_pick_name(const struct hark_sim_textinfo *ti, uint64_t h, char *out, size_t cap)
{
	size_t pos = 0, w, n, n2;
	const char *p;

	out[0] = '\0';
	if (!ti || ti->n_words == 0) {
		put(out, cap, &pos, "Unknown", 7);
		return;
	}
	if (ti->n_names)
		w = ti->names[h % ti->n_names];
	else if (ti->n_inames)
		w = ti->inames[h % ti->n_inames];
	else {
		/* no capitalised word: capitalise a word of letters */
		size_t start = h % ti->n_words;
		for (size_t k = 0; k < ti->n_words; k++) {
			size_t c = (start + k) % ti->n_words;
			p = ti->text + ti->word_off[c];
			n = name_len(p, ti->word_len[c]);
			if (n >= 2 && p[0] >= 'a' && p[0] <= 'z') {
				char first = (char)(p[0] - 'a' + 'A');
				put(out, cap, &pos, &first, 1);
				put(out, cap, &pos, p + 1, n - 1);
				return;
			}
		}
		put(out, cap, &pos, "Unknown", 7);
		return;
	}
	p = ti->text + ti->word_off[w];
	n = name_len(p, ti->word_len[w]);
	put(out, cap, &pos, p, n);
	/* a second capitalised word right after, in the same sentence */
	if (n == ti->word_len[w] && w + 1 < ti->n_words) {
		const char *q = ti->text + ti->word_off[w + 1];
		if (is_cap_word(q, ti->word_len[w + 1]) && !is_sent_start(ti, w + 1)) {
			n2 = name_len(q, ti->word_len[w + 1]);
			put(out, cap, &pos, " ", 1);
			put(out, cap, &pos, q, n2);
		}
	}
}

static size_t sent_end(const struct hark_sim_textinfo *ti, size_t s)
{
	return s + 1 < ti->n_sents ? ti->sent[s + 1] : ti->n_words;
}

static void join_words(const struct hark_sim_textinfo *ti, size_t a, size_t b, int strip_punct,
		       char *out, size_t cap)
{
	size_t pos = 0;

	out[0] = '\0';
	for (size_t w = a; w < b; w++) {
		size_t n = ti->word_len[w];
		const char *p = ti->text + ti->word_off[w];

		if (strip_punct && w + 1 == b)
			while (n > 1 && strchr(".,;:!?", p[n - 1]))
				n--;
		if (w > a)
			put(out, cap, &pos, " ", 1);
		put(out, cap, &pos, p, n);
	}
}

void hark_sim_pick_sentence(const struct hark_sim_textinfo *ti, uint64_t h, size_t max_words,
			    char *out, size_t cap)
{
	size_t s, pick, a, b;

	out[0] = '\0';
	if (!ti || ti->n_sents == 0) {
		hark_sim_pick_words(ti, h, out, cap);
		return;
	}
	s = h % ti->n_sents;
	pick = s;
	for (size_t k = 0; k < ti->n_sents; k++) {
		size_t c = (s + k) % ti->n_sents;
		if (sent_end(ti, c) - ti->sent[c] >= 3) {
			pick = c;
			break;
		}
	}
	a = ti->sent[pick];
	b = sent_end(ti, pick);
	if (b - a > max_words)
		b = a + max_words;
	join_words(ti, a, b, 0, out, cap);
}

void hark_sim_pick_words(const struct hark_sim_textinfo *ti, uint64_t h, char *out, size_t cap)
{
	size_t a, k;

	out[0] = '\0';
	if (!ti || ti->n_words == 0) {
		size_t pos = 0;
		put(out, cap, &pos, "not stated", 10);
		return;
	}
	a = h % ti->n_words;
	k = 2 + (size_t)((h >> 17) % 3);
	if (a + k > ti->n_words)
		a = ti->n_words > k ? ti->n_words - k : 0;
	join_words(ti, a, a + k > ti->n_words ? ti->n_words : a + k, 1, out, cap);
}

void hark_sim_first_sentence(const struct hark_sim_textinfo *ti, size_t max_words, char *out,
			     size_t cap)
{
	size_t b;

	out[0] = '\0';
	if (!ti || ti->n_sents == 0)
		return;
	b = sent_end(ti, 0);
	if (b - ti->sent[0] > max_words)
		b = ti->sent[0] + max_words;
	join_words(ti, ti->sent[0], b, 0, out, cap);
}

/* ---- durations ------------------------------------------------------------------------ */

void hark_sim_format_duration(double s, char *out, size_t cap)
{
	long long ms;
	long long hours, mins, sec_ms;
	char sec[32];

	if (!(s > 0))
		s = 0;
	if (s > 1e9)
		s = 1e9;
	ms = (long long)ceil(s * 1000.0 - 1e-9);
	if (ms < 1000) {
		snprintf(out, cap, "%lldms", ms);
		return;
	}
	hours = ms / 3600000;
	mins = (ms / 60000) % 60;
	sec_ms = ms % 60000;
	if (sec_ms % 1000 == 0) {
		snprintf(sec, sizeof(sec), "%lld", sec_ms / 1000);
	} else {
		size_t n;
		snprintf(sec, sizeof(sec), "%lld.%03lld", sec_ms / 1000, sec_ms % 1000);
		n = strlen(sec);
		while (n > 0 && sec[n - 1] == '0')
			sec[--n] = '\0';
	}
	if (hours)
		snprintf(out, cap, "%lldh%lldm%ss", hours, mins, sec);
	else if (mins)
		snprintf(out, cap, "%lldm%ss", mins, sec);
	else
		snprintf(out, cap, "%ss", sec);
}
