/*
 * Extractive summariser: sentence splitting and cleaning, TF-IDF sentence
 * vectors over Porter-stemmed terms, a TextRank graph ranked by power
 * iteration, MMR selection under a word budget, and the lead baseline. See
 * summarize.h.
 */
#include "analyze/summarize.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/rouge.h"
#include "hark/hark.h"

struct hark_summarize_params hark_summarize_default_params(void)
{
	struct hark_summarize_params p;

	memset(&p, 0, sizeof(p));
	p.method = HARK_SUMMARIZE_FULL;
	p.max_words = 150;
	p.min_words = 6;
	p.max_words_sentence = 60;
	p.damping = 0.85;
	p.max_iter = 200;
	p.tolerance = 1e-7;
	p.mmr_lambda = 0.7;
	p.max_similarity = 0.5;
	p.max_neighbors = 200;
	p.max_sentences = 20000;
	p.max_input_bytes = (size_t)64 << 20;
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

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* -------------------------------------------------------- text clean-up --- */

/* Length of a bracketed annotation ({..}, [..], <..>, at most 48 bytes, no
 * nesting or line break) starting at s[i], else 0. */
static size_t marker_len(const char *s, size_t n, size_t i)
{
	char close;

	switch (s[i]) {
	case '{': close = '}'; break;
	case '[': close = ']'; break;
	case '<': close = '>'; break;
	default: return 0;
	}
	for (size_t j = i + 1; j < n && j - i <= 48; j++) {
		if (s[j] == close)
			return j - i + 1;
		if (s[j] == '\n' || s[j] == '{' || s[j] == '[' || s[j] == '<')
			return 0;
	}
	return 0;
}

/* Disfluencies deleted anywhere by FULL. */
static const char *const disfluencies[] = {
	"um", "umm", "uh", "uhh", "uhm", "uh-huh", "hmm", "hmmm", "hm", "mm", "mmm",
	"mm-hmm", "mhm", "mhmm", "er", "erm", "ah", "ahh", "eh",
};

/* Discourse fillers stripped from the start of a sentence by FULL. */
static const char *const leading[] = {
	"yeah", "yes", "okay", "ok", "so", "well", "oh", "right", "alright", "and",
	"but", "um", "uh", "like", "anyway", "anyways", "now",
};

/* Whether the word w[0..n) (punctuation around it ignored, any case) is in
 * list[0..k). */
static int word_in(const char *w, size_t n, const char *const *list, size_t k)
{
	char buf[16];
	size_t a = 0, b = n;

	while (a < b && !is_alnum((unsigned char)w[a]))
		a++;
	while (b > a && !is_alnum((unsigned char)w[b - 1]))
		b--;
	if (a == b || b - a >= sizeof(buf))
		return 0;
	for (size_t i = a; i < b; i++)
		buf[i - a] = (char)lower((unsigned char)w[i]);
	buf[b - a] = '\0';
	for (size_t i = 0; i < k; i++)
		if (strcmp(buf, list[i]) == 0)
			return 1;
	return 0;
}

/* Whether the word w[0..n) has a letter or digit (or a non-ASCII byte). */
static int has_content(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_alnum((unsigned char)w[i]) || (unsigned char)w[i] >= 0x80)
			return 1;
	return 0;
}

/*
 * Cleans s[0..n) into a new heap string: markers removed, whitespace
 * collapsed, words without content (stray punctuation) dropped; with full,
 * disfluencies deleted and leading fillers stripped. *words gets the word
 * count. NULL when out of memory.
 */
static char *clean_sentence(const char *s, size_t n, int full, size_t *words)
{
	char *o = malloc(n + 1);
	size_t k = 0, w = 0, i = 0;
	int at_start = 1;

	*words = 0;
	if (!o)
		return NULL;
	while (i < n) {
		size_t m, j;

		if (is_space((unsigned char)s[i]) || (unsigned char)s[i] < 0x20) {
			i++;
			continue;
		}
		if ((m = marker_len(s, n, i)) > 0) {
			i += m;
			continue;
		}
		j = i;
		while (j < n && !is_space((unsigned char)s[j]) && (unsigned char)s[j] >= 0x20 &&
		       !marker_len(s, n, j))
			j++;
		if (!has_content(s + i, j - i)) {
			/* stray punctuation: glue it to the previous word */
			if (k > 0 && s[i] != '-') {
				memcpy(o + k, s + i, j - i);
				k += j - i;
			}
			i = j;
			continue;
		}
		if (full && (word_in(s + i, j - i, disfluencies,
				     sizeof(disfluencies) / sizeof(disfluencies[0])) ||
			     (at_start && word_in(s + i, j - i, leading,
						  sizeof(leading) / sizeof(leading[0]))))) {
			i = j;
			continue;
		}
		if (k > 0)
			o[k++] = ' ';
		memcpy(o + k, s + i, j - i);
		k += j - i;
		w++;
		at_start = 0;
		i = j;
	}
	o[k] = '\0';
	if (full && k > 0 && o[0] >= 'a' && o[0] <= 'z')
		o[0] = (char)(o[0] - 'a' + 'A');
	*words = w;
	return o;
}

/* ------------------------------------------------------------ sentences --- */

struct sent {
	size_t turn;
	size_t index;      /* within the turn */
	size_t woff;       /* raw word offset of its start within the turn */
	size_t wlen;       /* raw words */
	size_t twords;     /* raw words of the whole turn */
	char *text;        /* cleaned */
	size_t words;      /* words of text */
	int cand;
	uint32_t *terms;   /* sorted term ids */
	float *w;          /* unit TF-IDF weights */
	size_t nt;
	double score;
};

struct sents {
	struct sent *a;
	size_t n, cap;
};

static void sents_free(struct sents *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		free(ss->a[i].text);
		free(ss->a[i].terms);
		free(ss->a[i].w);
	}
	free(ss->a);
	memset(ss, 0, sizeof(*ss));
}

static size_t count_words(const char *s, size_t n)
{
	size_t w = 0;
	int in = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_space((unsigned char)s[i])) {
			in = 0;
		} else if (!in) {
			in = 1;
			w++;
		}
	}
	return w;
}

/* Splits every turn into sentences (cleaned per method). */
static int split_all(const struct hark_chunk_turn *turns, size_t n,
		     const struct hark_summarize_params *p, struct sents *ss, char *err,
		     size_t errlen)
{
	int full = p->method == HARK_SUMMARIZE_FULL;

	for (size_t t = 0; t < n; t++) {
		const char *s = turns[t].text ? turns[t].text : "";
		size_t len = strlen(s), a = 0, idx = 0, woff = 0;
		size_t tw = count_words(s, len);

		while (a < len) {
			size_t b = a, words, raw;
			char *txt;

			while (b < len) {
				char c = s[b];

				if (c == '\n') {
					break;
				}
				if ((c == '.' || c == '?' || c == '!') &&
				    (b + 1 == len || is_space((unsigned char)s[b + 1]) ||
				     s[b + 1] == '"' || s[b + 1] == '\'')) {
					while (b + 1 < len && !is_space((unsigned char)s[b + 1]))
						b++;
					b++;
					break;
				}
				b++;
			}
			raw = count_words(s + a, b - a);
			txt = clean_sentence(s + a, b - a, full, &words);
			if (!txt) {
				set_err(err, errlen, "summarize: out of memory");
				return HARK_ERR_NOMEM;
			}
			if (words == 0) {
				free(txt);
			} else {
				if (ss->n >= p->max_sentences) {
					free(txt);
					set_err(err, errlen, "summarize: over %zu sentences",
						p->max_sentences);
					return HARK_ERR_LIMIT;
				}
				if (ss->n == ss->cap) {
					size_t nc = ss->cap ? ss->cap * 2 : 256;
					struct sent *na = realloc(ss->a, nc * sizeof(*na));

					if (!na) {
						free(txt);
						set_err(err, errlen, "summarize: out of memory");
						return HARK_ERR_NOMEM;
					}
					ss->a = na;
					ss->cap = nc;
				}
				memset(&ss->a[ss->n], 0, sizeof(ss->a[0]));
				ss->a[ss->n].turn = t;
				ss->a[ss->n].index = idx++;
				ss->a[ss->n].woff = woff;
				ss->a[ss->n].wlen = raw;
				ss->a[ss->n].twords = tw;
				ss->a[ss->n].text = txt;
				ss->a[ss->n].words = words;
				ss->n++;
			}
			woff += raw;
			a = b < len && s[b] == '\n' ? b + 1 : b;
		}
	}
	return HARK_OK;
}

/* -------------------------------------------------------------- vectors --- */

static const char *const stopwords[] = {
	"a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any",
	"are", "as", "at", "be", "because", "been", "before", "being", "between", "both",
	"but", "by", "can", "could", "did", "do", "does", "doing", "don", "down", "during",
	"each", "few", "for", "from", "further", "get", "got", "gonna", "had", "has", "have",
	"having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into",
	"is", "it", "its", "just", "know", "let", "like", "ll", "me", "might", "more", "most",
	"much", "must", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "one",
	"only", "or", "other", "our", "ours", "out", "over", "own", "re", "really", "s",
	"said", "same", "say", "she", "should", "so", "some", "such", "t", "than", "that",
	"the", "their", "them", "then", "there", "these", "they", "thing", "things", "think",
	"this", "those", "through", "to", "too", "uh", "um", "under", "until", "up", "us",
	"ve", "very", "was", "way", "we", "well", "were", "what", "when", "where", "which",
	"while", "who", "whom", "why", "will", "with", "would", "yeah", "yes", "you", "your",
	"yours", "okay", "ok", "oh", "right", "mm", "hmm", "m", "d", "actually", "maybe",
	"kind", "sort", "go", "going", "want", "mean", "see", "gonna", "wanna", "lot",
};

static int is_stopword(const char *w)
{
	for (size_t i = 0; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
		if (w[0] == stopwords[i][0] && strcmp(w, stopwords[i]) == 0)
			return 1;
	return 0;
}

struct occ {
	const char *term; /* points into the pool once it stops growing */
	size_t off;       /* offset of the term in the pool */
	uint32_t sent;   /* index into the candidate list */
	uint32_t id;
};

static int cmp_occ_term(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	int c = strcmp(x->term, y->term);

	if (c)
		return c;
	return x->sent < y->sent ? -1 : x->sent > y->sent;
}

static int cmp_occ_sent(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;

	if (x->sent != y->sent)
		return x->sent < y->sent ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Builds unit TF-IDF vectors (tf = 1 + ln count, idf = ln(1 + N / df)) for
 * the candidates cand[0..nc). Term ids are assigned in term order, so the
 * result does not depend on memory addresses.
 */
static int build_vectors(struct sents *ss, const size_t *cand, size_t nc)
{
	struct occ *o = NULL;
	char *pool = NULL;
	size_t n_occ = 0, pool_len = 0, pool_cap = 0, occ_cap = 0;
	uint32_t *df = NULL;
	int rc = HARK_ERR_NOMEM;
	uint32_t next_id = 0;

	for (size_t c = 0; c < nc; c++) {
		const char *s = ss->a[cand[c]].text;

		while (*s) {
			char w[HARK_ROUGE_MAX_WORD + 1], st[HARK_ROUGE_MAX_WORD + 1];
			size_t len = 0, sl;
			int alpha = 1;

			while (*s && !is_alnum((unsigned char)*s))
				s++;
			if (!*s)
				break;
			while (is_alnum((unsigned char)*s) || *s == '\'') {
				if (*s != '\'' && len < HARK_ROUGE_MAX_WORD) {
					w[len++] = (char)lower((unsigned char)*s);
					if (*s >= '0' && *s <= '9')
						alpha = 0;
				} else if (*s == '\'') {
					/* "it's" -> "it": drop the clitic */
					s++;
					while (is_alnum((unsigned char)*s))
						s++;
					break;
				}
				s++;
			}
			w[len] = '\0';
			if (len == 0 || is_stopword(w))
				continue;
			sl = (alpha && len > 3) ? hark_rouge_porter_stem(w, len, st, sizeof(st))
					      : (size_t)snprintf(st, sizeof(st), "%s", w);
			if (sl >= sizeof(st))
				sl = sizeof(st) - 1;
			if (pool_len + sl + 1 > pool_cap) {
				size_t ncap = pool_cap ? pool_cap * 2 : 4096;
				char *np;

				while (ncap < pool_len + sl + 1)
					ncap *= 2;
				np = realloc(pool, ncap);
				if (!np)
					goto out;
				pool = np;
				pool_cap = ncap;
			}
			if (n_occ == occ_cap) {
				size_t ncap = occ_cap ? occ_cap * 2 : 1024;
				struct occ *no = realloc(o, ncap * sizeof(*no));

				if (!no)
					goto out;
				o = no;
				occ_cap = ncap;
			}
			memcpy(pool + pool_len, st, sl);
			pool[pool_len + sl] = '\0';
			o[n_occ].term = NULL;
			o[n_occ].off = pool_len;
			o[n_occ].sent = (uint32_t)c;
			o[n_occ].id = 0;
			n_occ++;
			pool_len += sl + 1;
		}
	}
	if (n_occ == 0) {
		rc = HARK_OK;
		goto out;
	}
	for (size_t i = 0; i < n_occ; i++)
		o[i].term = pool + o[i].off;
	qsort(o, n_occ, sizeof(*o), cmp_occ_term);
	df = calloc(n_occ, sizeof(*df));
	if (!df)
		goto out;
	for (size_t i = 0; i < n_occ; i++) {
		if (i > 0 && strcmp(o[i].term, o[i - 1].term) != 0)
			next_id++;
		o[i].id = next_id;
		if (i == 0 || o[i].id != o[i - 1].id || o[i].sent != o[i - 1].sent)
			df[next_id]++;
	}
	qsort(o, n_occ, sizeof(*o), cmp_occ_sent);
	for (size_t i = 0; i < n_occ;) {
		size_t e = i, k = 0;
		uint32_t sid = o[i].sent;
		struct sent *s;
		double norm = 0;

		while (e < n_occ && o[e].sent == sid)
			e++;
		s = &ss->a[cand[sid]];
		s->terms = malloc((e - i) * sizeof(*s->terms));
		s->w = malloc((e - i) * sizeof(*s->w));
		if (!s->terms || !s->w)
			goto out;
		for (size_t j = i; j < e;) {
			size_t r = j;
			double tf, idf;

			while (r < e && o[r].id == o[j].id)
				r++;
			tf = 1.0 + log((double)(r - j));
			idf = log(1.0 + (double)nc / (double)df[o[j].id]);
			s->terms[k] = o[j].id;
			s->w[k] = (float)(tf * idf);
			norm += (double)s->w[k] * s->w[k];
			k++;
			j = r;
		}
		norm = sqrt(norm);
		for (size_t j = 0; j < k; j++)
			s->w[j] = norm > 0 ? (float)(s->w[j] / norm) : 0.0f;
		s->nt = k;
		i = e;
	}
	rc = HARK_OK;
out:
	free(df);
	free(pool);
	free(o);
	return rc;
}

/* Cosine of two unit sparse vectors. */
static double cosine(const struct sent *a, const struct sent *b)
{
	size_t i = 0, j = 0;
	double d = 0;

	while (i < a->nt && j < b->nt) {
		if (a->terms[i] < b->terms[j])
			i++;
		else if (a->terms[i] > b->terms[j])
			j++;
		else
			d += (double)a->w[i++] * b->w[j++];
	}
	return d;
}

/* ------------------------------------------------------------- TextRank --- */

struct edge {
	uint32_t to;
	float w;
};

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	if (x->w != y->w)
		return x->w > y->w ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

static int cancelled(const struct hark_summarize_params *p)
{
	return p->cancel && p->cancel(p->cancel_user_data);
}

static void progress(const struct hark_summarize_params *p, double done)
{
	if (p->progress)
		p->progress(done, p->progress_user_data);
}

struct posting {
	uint32_t sent; /* candidate index */
	float w;       /* the term's weight in that sentence */
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/*
 * Ranks the candidates cand[0..nc) by PageRank over the cosine graph (each
 * node keeping its max_neighbors strongest edges); scores go to
 * ss->a[cand[i]].score and sum to 1.
 */
static int textrank(struct sents *ss, const size_t *cand, size_t nc,
		    const struct hark_summarize_params *p, int *iters, char *err, size_t errlen)
{
	size_t *off = NULL, n_edges = 0, cap_edges = 0;
	struct edge *e = NULL, *row = NULL;
	double *rowsum = NULL, *r = NULL, *nr = NULL, *acc = NULL;
	size_t *poff = NULL, n_terms = 0, n_post = 0;
	uint32_t *touched = NULL;
	unsigned char *mark = NULL;
	struct posting *post = NULL;
	int rc = HARK_ERR_NOMEM;

	*iters = 0;
	if (nc == 0)
		return HARK_OK;
	off = calloc(nc + 1, sizeof(*off));
	row = malloc(nc * sizeof(*row));
	rowsum = calloc(nc, sizeof(*rowsum));
	r = malloc(nc * sizeof(*r));
	nr = malloc(nc * sizeof(*nr));
	acc = calloc(nc, sizeof(*acc));
	touched = malloc(nc * sizeof(*touched));
	mark = calloc(nc, 1);
	if (!off || !row || !rowsum || !r || !nr || !acc || !touched || !mark)
		goto out;
	/* Inverted index over the candidates' terms: the cosine of i with every
	 * other sentence is accumulated through the postings of i's terms, so
	 * pairs without a shared term cost nothing (the products are summed in
	 * the same term order as cosine(), so the values are identical). */
	for (size_t i = 0; i < nc; i++) {
		const struct sent *a = &ss->a[cand[i]];

		n_post += a->nt;
		for (size_t k = 0; k < a->nt; k++)
			if ((size_t)a->terms[k] + 1 > n_terms)
				n_terms = (size_t)a->terms[k] + 1;
	}
	poff = calloc(n_terms + 1, sizeof(*poff));
	post = malloc((n_post ? n_post : 1) * sizeof(*post));
	if (!poff || !post)
		goto out;
	for (size_t i = 0; i < nc; i++) {
		const struct sent *a = &ss->a[cand[i]];

		for (size_t k = 0; k < a->nt; k++)
			poff[a->terms[k] + 1]++;
	}
	for (size_t t = 0; t < n_terms; t++)
		poff[t + 1] += poff[t];
	{
		size_t *fill = calloc(n_terms ? n_terms : 1, sizeof(*fill));

		if (!fill)
			goto out;
		for (size_t i = 0; i < nc; i++) {
			const struct sent *a = &ss->a[cand[i]];

			for (size_t k = 0; k < a->nt; k++) {
				size_t t = a->terms[k];
				struct posting *pp = &post[poff[t] + fill[t]++];

				pp->sent = (uint32_t)i;
				pp->w = a->w[k];
			}
		}
		free(fill);
	}
	for (size_t i = 0; i < nc; i++) {
		size_t k = 0;

		if ((i & 255) == 0) {
			if (cancelled(p)) {
				rc = HARK_ERR_CANCELED;
				goto out;
			}
			/* the graph is ~90% of the work */
			progress(p, 0.05 + 0.85 * (double)i / (double)nc);
		}
		{
			const struct sent *a = &ss->a[cand[i]];
			size_t nt = 0;

			for (size_t q = 0; q < a->nt; q++) {
				size_t t = a->terms[q];

				for (size_t x = poff[t]; x < poff[t + 1]; x++) {
					uint32_t j = post[x].sent;

					if (j == i)
						continue;
					if (!mark[j]) {
						mark[j] = 1;
						touched[nt++] = j;
					}
					acc[j] += (double)a->w[q] * post[x].w;
				}
			}
			if (nt > 1)
				qsort(touched, nt, sizeof(*touched), cmp_u32);
			for (size_t x = 0; x < nt; x++) {
				uint32_t j = touched[x];
				double c = acc[j];

				acc[j] = 0;
				mark[j] = 0;
				if (c > 1e-9) {
					row[k].to = j;
					row[k].w = (float)c;
					k++;
				}
			}
		}
		if (k > p->max_neighbors) {
			qsort(row, k, sizeof(*row), cmp_edge);
			k = p->max_neighbors;
		}
		if (n_edges + k > cap_edges) {
			size_t ncap = cap_edges ? cap_edges * 2 : 4096;
			struct edge *ne;

			while (ncap < n_edges + k)
				ncap *= 2;
			ne = realloc(e, ncap * sizeof(*ne));
			if (!ne)
				goto out;
			e = ne;
			cap_edges = ncap;
		}
		for (size_t j = 0; j < k; j++) {
			e[n_edges++] = row[j];
			rowsum[i] += row[j].w;
		}
		off[i + 1] = n_edges;
	}
	for (size_t i = 0; i < nc; i++)
		r[i] = 1.0 / (double)nc;
	for (int it = 0; it < p->max_iter; it++) {
		double dangling = 0, delta = 0, base;

		if (cancelled(p)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		for (size_t i = 0; i < nc; i++)
			if (rowsum[i] <= 0)
				dangling += r[i];
		base = (1.0 - p->damping) / (double)nc + p->damping * dangling / (double)nc;
		for (size_t i = 0; i < nc; i++)
			nr[i] = base;
		for (size_t i = 0; i < nc; i++) {
			if (rowsum[i] <= 0)
				continue;
			for (size_t k = off[i]; k < off[i + 1]; k++)
				nr[e[k].to] += p->damping * r[i] * e[k].w / rowsum[i];
		}
		for (size_t i = 0; i < nc; i++) {
			delta += fabs(nr[i] - r[i]);
			r[i] = nr[i];
		}
		*iters = it + 1;
		if (delta < p->tolerance)
			break;
	}
	for (size_t i = 0; i < nc; i++)
		ss->a[cand[i]].score = r[i];
	rc = HARK_OK;
out:
	free(acc);
	free(touched);
	free(mark);
	free(poff);
	free(post);
	if (rc == HARK_ERR_NOMEM)
		set_err(err, errlen, "summarize: out of memory");
	else if (rc == HARK_ERR_CANCELED)
		set_err(err, errlen, "summarize: cancelled");
	free(nr);
	free(r);
	free(rowsum);
	free(row);
	free(e);
	free(off);
	return rc;
}

/* ------------------------------------------------------------ selection --- */

struct rank_ent {
	double score;
	size_t idx;
};

static int cmp_rank(const void *a, const void *b)
{
	const struct rank_ent *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* TEXTRANK: by score, each sentence that still fits. */
static size_t select_rank(const struct sents *ss, const size_t *cand, size_t nc,
			  size_t budget, size_t *chosen)
{
	struct rank_ent *r = malloc((nc ? nc : 1) * sizeof(*r));
	size_t n = 0, used = 0;

	if (!r)
		return (size_t)-1;
	for (size_t i = 0; i < nc; i++) {
		r[i].score = ss->a[cand[i]].score;
		r[i].idx = cand[i];
	}
	qsort(r, nc, sizeof(*r), cmp_rank);
	for (size_t i = 0; i < nc && used < budget; i++) {
		size_t w = ss->a[r[i].idx].words;

		if (used + w <= budget) {
			chosen[n++] = r[i].idx;
			used += w;
		}
	}
	free(r);
	return n;
}

/* FULL: MMR with a redundancy cut-off. */
static size_t select_mmr(const struct sents *ss, const size_t *cand, size_t nc,
			 const struct hark_summarize_params *p, size_t *chosen)
{
	unsigned char *dead = calloc(nc ? nc : 1, 1);
	double maxs = 0;
	size_t n = 0, used = 0;

	if (!dead)
		return (size_t)-1;
	for (size_t i = 0; i < nc; i++)
		if (ss->a[cand[i]].score > maxs)
			maxs = ss->a[cand[i]].score;
	for (;;) {
		double best = -1e300;
		size_t bi = nc;

		for (size_t i = 0; i < nc; i++) {
			const struct sent *s = &ss->a[cand[i]];
			double red = 0, v;

			if (dead[i])
				continue;
			if (used + s->words > p->max_words) {
				dead[i] = 1;
				continue;
			}
			for (size_t k = 0; k < n; k++) {
				double c = cosine(s, &ss->a[chosen[k]]);

				if (c > red)
					red = c;
			}
			if (red > p->max_similarity) {
				dead[i] = 1;
				continue;
			}
			v = p->mmr_lambda * (maxs > 0 ? s->score / maxs : 0) -
			    (1.0 - p->mmr_lambda) * red;
			if (v > best) {
				best = v;
				bi = i;
			}
		}
		if (bi == nc)
			break;
		dead[bi] = 1;
		chosen[n++] = cand[bi];
		used += ss->a[cand[bi]].words;
	}
	free(dead);
	return n;
}

/* Cuts s to its first w words (in place). */
static void cut_words(char *s, size_t w)
{
	size_t k = 0;
	int in = 0;

	for (char *q = s; *q; q++) {
		if (is_space((unsigned char)*q)) {
			in = 0;
		} else if (!in) {
			in = 1;
			if (k++ == w) {
				while (q > s && is_space((unsigned char)q[-1]))
					q--;
				*q = '\0';
				return;
			}
		}
	}
}

/* ----------------------------------------------------------------- API ---- */

void hark_summary_clear(struct hark_summary *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->sentences[i].text);
		free(s->sentences[i].speaker);
	}
	free(s->sentences);
	memset(s, 0, sizeof(*s));
}

char *hark_summary_text(const struct hark_summary *s)
{
	size_t len = 0, o = 0;
	char *t;

	for (size_t i = 0; s && i < s->n; i++)
		len += strlen(s->sentences[i].text) + 1;
	t = malloc(len + 1);
	if (!t)
		return NULL;
	for (size_t i = 0; s && i < s->n; i++) {
		size_t l = strlen(s->sentences[i].text);

		if (o)
			t[o++] = ' ';
		memcpy(t + o, s->sentences[i].text, l);
		o += l;
	}
	t[o] = '\0';
	return t;
}

static int check_params(const struct hark_summarize_params *p, char *err, size_t errlen)
{
	if (p->method < HARK_SUMMARIZE_FULL || p->method > HARK_SUMMARIZE_LEAD ||
	    p->max_words == 0 || !(p->damping > 0 && p->damping < 1) || p->max_iter < 1 ||
	    !(p->tolerance >= 0) || !(p->mmr_lambda >= 0 && p->mmr_lambda <= 1) ||
	    !(p->max_similarity >= 0) || p->max_neighbors == 0 || p->max_sentences == 0 ||
	    p->max_words_sentence < p->min_words) {
		set_err(err, errlen, "summarize: invalid parameters");
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

int hark_summarize(const struct hark_chunk_turn *turns, size_t n,
		   const struct hark_summarize_params *p, struct hark_summary *out,
		   char *err, size_t errlen)
{
	struct hark_summarize_params dp = hark_summarize_default_params();
	struct sents ss;
	size_t *cand = NULL, *chosen = NULL, nc = 0, nch = 0, total = 0;
	int rc, iters = 0;

	memset(&ss, 0, sizeof(ss));
	if (err && errlen)
		err[0] = '\0';
	if (!out || (!turns && n > 0)) {
		set_err(err, errlen, "summarize: NULL argument");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &dp;
	rc = check_params(p, err, errlen);
	if (rc != HARK_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		total += turns[i].text ? strlen(turns[i].text) : 0;
		if (total > p->max_input_bytes) {
			set_err(err, errlen, "summarize: input over %zu bytes", p->max_input_bytes);
			return HARK_ERR_LIMIT;
		}
	}
	progress(p, 0.0);
	rc = split_all(turns, n, p, &ss, err, errlen);
	if (rc != HARK_OK)
		goto out;
	rc = HARK_ERR_NOMEM;
	cand = malloc((ss.n ? ss.n : 1) * sizeof(*cand));
	chosen = malloc((ss.n ? ss.n : 1) * sizeof(*chosen));
	if (!cand || !chosen) {
		set_err(err, errlen, "summarize: out of memory");
		goto out;
	}
	for (size_t i = 0; i < ss.n; i++) {
		struct sent *s = &ss.a[i];

		if (p->method == HARK_SUMMARIZE_FULL &&
		    (s->words < p->min_words || s->words > p->max_words_sentence ||
		     hark_chunk_is_low_value(s->text)))
			continue;
		s->cand = 1;
		cand[nc++] = i;
	}
	if (p->method == HARK_SUMMARIZE_LEAD) {
		size_t used = 0;

		for (size_t i = 0; i < nc && used < p->max_words; i++) {
			struct sent *s = &ss.a[cand[i]];

			if (used + s->words > p->max_words) {
				cut_words(s->text, p->max_words - used);
				s->words = p->max_words - used;
			}
			chosen[nch++] = cand[i];
			used += s->words;
		}
	} else {
		if (cancelled(p)) {
			rc = HARK_ERR_CANCELED;
			set_err(err, errlen, "summarize: cancelled");
			goto out;
		}
		if (build_vectors(&ss, cand, nc) != HARK_OK) {
			set_err(err, errlen, "summarize: out of memory");
			goto out;
		}
		rc = textrank(&ss, cand, nc, p, &iters, err, errlen);
		if (rc != HARK_OK)
			goto out;
		rc = HARK_ERR_NOMEM;
		nch = p->method == HARK_SUMMARIZE_FULL ? select_mmr(&ss, cand, nc, p, chosen)
						       : select_rank(&ss, cand, nc, p->max_words,
								     chosen);
		if (nch == (size_t)-1) {
			nch = 0;
			set_err(err, errlen, "summarize: out of memory");
			goto out;
		}
		qsort(chosen, nch, sizeof(*chosen), cmp_size);
	}
	out->sentences = calloc(nch ? nch : 1, sizeof(*out->sentences));
	if (!out->sentences) {
		set_err(err, errlen, "summarize: out of memory");
		goto out;
	}
	for (size_t i = 0; i < nch; i++) {
		struct sent *s = &ss.a[chosen[i]];
		struct hark_summary_sentence *d = &out->sentences[out->n];
		const struct hark_chunk_turn *t = &turns[s->turn];

		d->speaker = (t->speaker && *t->speaker) ? strdup(t->speaker) : NULL;
		if (t->speaker && *t->speaker && !d->speaker) {
			set_err(err, errlen, "summarize: out of memory");
			goto out;
		}
		d->text = s->text;
		s->text = NULL;
		d->turn = s->turn;
		d->index = s->index;
		d->words = s->words;
		d->score = p->method == HARK_SUMMARIZE_LEAD ? 0 : s->score;
		d->start_s = d->end_s = -1;
		if (t->start_s >= 0 && t->end_s >= t->start_s) {
			double span = t->end_s - t->start_s;
			double tw = s->twords ? (double)s->twords : 1.0;

			d->start_s = t->start_s + span * (double)s->woff / tw;
			d->end_s = t->start_s + span * (double)(s->woff + s->wlen) / tw;
			if (d->end_s > t->end_s)
				d->end_s = t->end_s;
		}
		out->words += d->words;
		out->n++;
	}
	out->candidates = nc;
	out->iterations = iters;
	progress(p, 1.0);
	rc = HARK_OK;
out:
	if (rc != HARK_OK)
		hark_summary_clear(out);
	free(chosen);
	free(cand);
	sents_free(&ss);
	return rc;
}
