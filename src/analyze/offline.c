/*
 * Offline minutes analyzer (see offline.h): extractive summary through
 * analyze/summarize.c, participants from speaker labels, decisions / action
 * items / open questions from the per-sentence cues of analyze/cues.c
 * (de-duplicated by normalised text and capped by confidence), and topics
 * by TextTiling over speaker turns: every turn is reduced to Porter-stemmed
 * content words, each gap between turns is scored by the cosine similarity
 * of the word counts in a window of turns on either side, the curve is
 * smoothed, and boundaries go to the deepest valleys (depth = climb to the
 * nearest peak on each side) subject to a minimum stretch length. Topic
 * titles and keywords are the stretch's best 1-3 word phrases of adjacent
 * content words, scored by TF-IDF (turns as documents) times the share of
 * the word's meeting-wide occurrences that fall inside the stretch.
 * Everything is deterministic (ties go to the earlier position) and
 * locale-free (ASCII case folding only).
 */
#include "analyze/offline.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/cues.h"
#include "analyze/rouge.h"
#include "analyze/summarize.h"
#include "hark/hark.h"
#include "util/errbuf.h"

/* Longest word (bytes) the topic tokeniser keeps; longer ones are skipped. */
#define OFF_MAX_WORD 48
/* Words of an evidence quote / of a sentence used as an item text. */
#define OFF_QUOTE_WORDS 40
#define OFF_ITEM_WORDS 60
/* Cap on distinct terms, surfaces, speakers, phrases per table. */
#define OFF_MAX_KEYS ((size_t)4 << 20)
/* Cap on cue candidates before de-duplication. */
#define OFF_MAX_CANDIDATES ((size_t)1 << 20)
/* Most keywords per topic. */
#define OFF_KEYWORDS 5

struct hark_offline_params hark_offline_default_params(void)
{
	struct hark_offline_params p;

	memset(&p, 0, sizeof(p));
	p.summary_words = 150;
	p.max_topics = 8;
	p.min_topic_turns = 6;
	p.min_confidence = 0.5;
	p.max_items = 50;
	p.max_input_bytes = (size_t)64 << 20;
	p.max_turns = 1000000;
	return p;
}

/* ------------------------------------------------------------- context --- */

struct ctx {
	const struct hark_chunk_turn *turns;
	size_t n;
	const struct hark_offline_params *p;
	char *err;
	size_t errlen;
	double done; /* progress last reported */
};

static int canceled(struct ctx *c)
{
	if (c->p->cancel && c->p->cancel(c->p->cancel_user_data)) {
		hark_errbuf_set(c->err, c->errlen, "canceled");
		return 1;
	}
	return 0;
}

static void progress(struct ctx *c, double f)
{
	if (f > 1)
		f = 1;
	if (f < c->done)
		f = c->done;
	c->done = f;
	if (c->p->progress)
		c->p->progress(f, c->p->progress_user_data);
}

static int nomem(struct ctx *c)
{
	hark_errbuf_set(c->err, c->errlen, "out of memory");
	return HARK_ERR_NOMEM;
}

/* Progress of a hark_summarize call mapped into [lo, hi] of ours. */
struct sub_progress {
	struct ctx *c;
	double lo, hi;
};

static void sub_progress_cb(double f, void *ud)
{
	struct sub_progress *s = ud;

	progress(s->c, s->lo + (s->hi - s->lo) * f);
}

static const char *turn_text(const struct hark_chunk_turn *t)
{
	return t->text ? t->text : "";
}

static const char *turn_speaker(const struct hark_chunk_turn *t)
{
	return t->speaker && t->speaker[0] ? t->speaker : NULL;
}

/* ------------------------------------------------------- key hash table --- */

/* Byte-string keys (owned copies) mapped to dense indexes 0..n-1. */
struct keytab {
	size_t *slot;  /* cap entries: index + 1, 0 = empty */
	size_t cap;    /* power of two */
	char **key;
	size_t *klen;
	size_t n, ncap;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void keytab_free(struct keytab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->key[i]);
	free(t->key);
	free(t->klen);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int keytab_rehash(struct keytab *t, size_t cap)
{
	size_t *ns = calloc(cap, sizeof(*ns));

	if (!ns)
		return HARK_ERR_NOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t h = (size_t)hash_bytes(t->key[i], t->klen[i]) & (cap - 1);

		while (ns[h])
			h = (h + 1) & (cap - 1);
		ns[h] = i + 1;
	}
	free(t->slot);
	t->slot = ns;
	t->cap = cap;
	return HARK_OK;
}

/* Finds key k[0..len); with add set, inserts it when absent. *idx gets the
 * index (SIZE_MAX when absent and not added), *added whether it is new. */
static int keytab_get(struct keytab *t, const char *k, size_t len, int add, size_t *idx,
		      int *added)
{
	size_t h;

	*idx = SIZE_MAX;
	if (added)
		*added = 0;
	if (!add && t->cap == 0)
		return HARK_OK;
	if (add && (t->cap == 0 || (t->n + 1) * 2 > t->cap) &&
	    keytab_rehash(t, t->cap ? t->cap * 2 : 64) != 0)
		return HARK_ERR_NOMEM;
	h = (size_t)hash_bytes(k, len) & (t->cap - 1);
	while (t->slot[h]) {
		size_t i = t->slot[h] - 1;

		if (t->klen[i] == len && memcmp(t->key[i], k, len) == 0) {
			*idx = i;
			return HARK_OK;
		}
		h = (h + 1) & (t->cap - 1);
	}
	if (!add)
		return HARK_OK;
	if (t->n >= OFF_MAX_KEYS)
		return HARK_ERR_LIMIT;
	if (t->n == t->ncap) {
		size_t nc = t->ncap ? t->ncap * 2 : 64;
		char **nk = realloc(t->key, nc * sizeof(*nk));
		size_t *nl;

		if (!nk)
			return HARK_ERR_NOMEM;
		t->key = nk;
		nl = realloc(t->klen, nc * sizeof(*nl));
		if (!nl)
			return HARK_ERR_NOMEM;
		t->klen = nl;
		t->ncap = nc;
	}
	t->key[t->n] = malloc(len + 1);
	if (!t->key[t->n])
		return HARK_ERR_NOMEM;
	memcpy(t->key[t->n], k, len);
	t->key[t->n][len] = '\0';
	t->klen[t->n] = len;
	t->slot[h] = t->n + 1;
	*idx = t->n++;
	if (added)
		*added = 1;
	return HARK_OK;
}

/* ---------------------------------------------------------- text helpers --- */

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static int is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static char lower(char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* A whitespace token is a bracketed transcript annotation ("{disfmarker}",
 * "[noise]", "<laugh>") when it opens with a bracket. */
static int is_marker_token(const char *s, size_t n)
{
	return n > 0 && (s[0] == '{' || s[0] == '[' || s[0] == '<');
}

/* Words in s[0..len): whitespace tokens with a letter or digit that are not
 * bracketed annotations. */
static size_t count_words(const char *s, size_t len)
{
	size_t i = 0, w = 0;

	while (i < len) {
		size_t a, alnum = 0;

		while (i < len && is_space(s[i]))
			i++;
		a = i;
		while (i < len && !is_space(s[i])) {
			alnum |= is_alnum((unsigned char)s[i]) || ((unsigned char)s[i] >= 0x80);
			i++;
		}
		if (i > a && alnum && !is_marker_token(s + a, i - a))
			w++;
	}
	return w;
}

/*
 * Copies s[0..len) into a new string with bracketed annotations ("{...}",
 * "[...]", "<...>", closed within 64 bytes) removed, whitespace collapsed to
 * single spaces, spaces before , . ? ! removed, and at most max_words words
 * (" ..." appended when cut). NULL when out of memory.
 */
static char *clean_text(const char *s, size_t len, size_t max_words)
{
	char *o = malloc(len + 5);
	size_t k = 0, words = 0, i = 0;
	int pending = 0, cut = 0;

	if (!o)
		return NULL;
	while (i < len) {
		char ch = s[i];

		if (ch == '{' || ch == '[' || ch == '<') {
			char close = ch == '{' ? '}' : ch == '[' ? ']' : '>';
			size_t j = i + 1;

			while (j < len && j - i < 64 && s[j] != close && s[j] != '\n')
				j++;
			if (j < len && s[j] == close) {
				i = j + 1;
				pending = 1;
				continue;
			}
		}
		if (is_space(ch)) {
			pending = 1;
			i++;
			continue;
		}
		if (k == 0 || pending) {
			/* a lone punctuation mark ("better ?") joins the word before */
			int lone = strchr(",.?!;:", ch) && (i + 1 >= len || is_space(s[i + 1]));

			if (!lone || k == 0) {
				if (words == max_words) {
					cut = 1;
					break;
				}
				words++;
			}
			if (k > 0 && !lone)
				o[k++] = ' ';
			pending = 0;
		}
		o[k++] = ch;
		i++;
	}
	if (cut) {
		memcpy(o + k, " ...", 4);
		k += 4;
	}
	o[k] = '\0';
	return o;
}

/* ---------------------------------------------------------- participants --- */

struct part_acc {
	size_t first_turn;
	size_t turns, words;
	double talk, first;
	int talk_known;
};

static int cmp_part(const void *a, const void *b)
{
	const struct hark_minutes_participant *x = a, *y = b;

	if (x->words != y->words)
		return x->words > y->words ? -1 : 1;
	/* equal words: more turns first, then by name */
	if (x->turns != y->turns)
		return x->turns > y->turns ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Fills out->participants; also returns the distinct speaker labels (in
 * order of first appearance, borrowed from turns) for the cue classifier. */
static int do_participants(struct ctx *c, struct hark_minutes *out, const char ***names,
			   size_t *n_names)
{
	struct keytab kt;
	struct part_acc *acc = NULL;
	size_t nacc = 0, capacc = 0;
	int rc = HARK_OK;

	memset(&kt, 0, sizeof(kt));
	*names = NULL;
	*n_names = 0;
	for (size_t t = 0; t < c->n; t++) {
		const struct hark_chunk_turn *tu = &c->turns[t];
		const char *sp = turn_speaker(tu);
		size_t idx;
		int added;

		if (!sp)
			continue;
		rc = keytab_get(&kt, sp, strlen(sp), 1, &idx, &added);
		if (rc == HARK_ERR_LIMIT) {
			hark_errbuf_set(c->err, c->errlen, "too many distinct speakers");
			goto out;
		}
		if (rc) {
			rc = nomem(c);
			goto out;
		}
		if (added) {
			if (nacc == capacc) {
				size_t nc = capacc ? capacc * 2 : 16;
				struct part_acc *na = realloc(acc, nc * sizeof(*na));

				if (!na) {
					rc = nomem(c);
					goto out;
				}
				acc = na;
				capacc = nc;
			}
			memset(&acc[nacc], 0, sizeof(acc[nacc]));
			acc[nacc].first_turn = t;
			acc[nacc].first = -1;
			nacc++;
		}
		acc[idx].turns++;
		acc[idx].words += count_words(turn_text(tu), strlen(turn_text(tu)));
		if (tu->start_s >= 0 && tu->end_s >= tu->start_s && isfinite(tu->end_s)) {
			acc[idx].talk += tu->end_s - tu->start_s;
			acc[idx].talk_known = 1;
		}
		if (tu->start_s >= 0 && isfinite(tu->start_s) &&
		    (acc[idx].first < 0 || tu->start_s < acc[idx].first))
			acc[idx].first = tu->start_s;
	}
	if (nacc == 0)
		goto out;
	out->participants = calloc(nacc, sizeof(*out->participants));
	*names = calloc(nacc, sizeof(**names));
	if (!out->participants || !*names) {
		rc = nomem(c);
		goto out;
	}
	for (size_t i = 0; i < nacc; i++) {
		struct hark_minutes_participant *pp = &out->participants[i];

		(*names)[i] = turn_speaker(&c->turns[acc[i].first_turn]);
		pp->name = strdup((*names)[i]);
		if (!pp->name) {
			rc = nomem(c);
			goto out;
		}
		out->n_participants = i + 1;
		pp->turns = acc[i].turns;
		pp->words = acc[i].words;
		pp->talk_s = acc[i].talk_known ? acc[i].talk : -1.0;
		pp->first_s = acc[i].first;
	}
	*n_names = nacc;
	qsort(out->participants, out->n_participants, sizeof(*out->participants), cmp_part);
out:
	if (rc) {
		free(*names);
		*names = NULL;
	}
	free(acc);
	keytab_free(&kt);
	return rc;
}

/* -------------------------------------------------------------- summary --- */

static int do_summary(struct ctx *c, struct hark_minutes *out)
{
	struct hark_summarize_params sp = hark_summarize_default_params();
	struct hark_summary s;
	struct sub_progress sub = {c, 0.0, 0.45};
	char e[256] = "";
	int rc;

	memset(&s, 0, sizeof(s));
	sp.max_words = c->p->summary_words;
	sp.cancel = c->p->cancel;
	sp.cancel_user_data = c->p->cancel_user_data;
	sp.progress = sub_progress_cb;
	sp.progress_user_data = &sub;
	rc = hark_summarize(c->turns, c->n, &sp, &s, e, sizeof(e));
	if (rc) {
		hark_errbuf_set(c->err, c->errlen, "summary: %s", e);
		return rc;
	}
	out->summary = hark_summary_text(&s);
	if (!out->summary) {
		rc = nomem(c);
		goto out;
	}
	if (s.n) {
		out->points = calloc(s.n, sizeof(*out->points));
		if (!out->points) {
			rc = nomem(c);
			goto out;
		}
	}
	for (size_t i = 0; i < s.n; i++) {
		struct hark_minutes_point *pt = &out->points[i];

		pt->ref = hark_minutes_ref_none();
		out->n_points = i + 1;
		pt->text = strdup(s.sentences[i].text);
		if (s.sentences[i].speaker)
			pt->ref.speaker = strdup(s.sentences[i].speaker);
		if (!pt->text || (s.sentences[i].speaker && !pt->ref.speaker)) {
			rc = nomem(c);
			goto out;
		}
		pt->ref.start_s = s.sentences[i].start_s;
		pt->ref.end_s = s.sentences[i].end_s;
		pt->ref.turn = (long)s.sentences[i].turn;
	}
out:
	hark_summary_clear(&s);
	return rc;
}

/* ---------------------------------------------------------------- items --- */

struct cand {
	int kind;          /* enum hark_cue_type */
	size_t seq;        /* sentence number in the meeting (order) */
	struct hark_minutes_item it;
};

struct cands {
	struct cand *a;
	size_t n, cap;
	struct keytab keys[4]; /* per kind: normalised text -> candidate index */
	size_t *key_cand[4];   /* key index -> candidate index */
	size_t key_cap[4];
};

static void cands_free(struct cands *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		hark_minutes_item_clear(&cs->a[i].it);
	free(cs->a);
	for (int k = 0; k < 4; k++) {
		keytab_free(&cs->keys[k]);
		free(cs->key_cand[k]);
	}
	memset(cs, 0, sizeof(*cs));
}

/* Normalised text for de-duplication: ASCII letters and digits lowercased,
 * other bytes >= 0x80 kept, everything else a single space. */
static size_t norm_key(const char *s, char *out, size_t cap)
{
	size_t k = 0;
	int sp = 0;

	for (size_t i = 0; s[i] && k + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (is_alnum(ch) || ch >= 0x80) {
			if (sp && k > 0)
				out[k++] = ' ';
			sp = 0;
			if (k + 1 < cap)
				out[k++] = lower((char)ch);
		} else {
			sp = 1;
		}
	}
	out[k] = '\0';
	return k;
}

/* Time span of words [w0, w1) of a turn with W words: interpolated when
 * the turn's start and end are known; the turn's own start (and end, if
 * known) when only that is known; -1 when the start is unknown. */
static void interp(const struct hark_chunk_turn *t, size_t w0, size_t w1, size_t W,
		   double *start, double *end)
{
	double s = t->start_s, e = t->end_s;
	int sk = s >= 0 && isfinite(s), ek = sk && e >= s && isfinite(e);

	*start = -1.0;
	*end = -1.0;
	if (!sk)
		return;
	if (!ek || W == 0) {
		*start = s;
		*end = ek ? e : -1.0;
		return;
	}
	*start = s + (e - s) * (double)w0 / (double)W;
	*end = s + (e - s) * (double)(w1 < W ? w1 : W) / (double)W;
}

/* Builds the item for one classified sentence and adds or merges it. */
static int add_cand(struct ctx *c, struct cands *cs, const struct hark_cue_result *r,
		    size_t turn, size_t seq, const char *sent, size_t slen, size_t w0, size_t ws,
		    size_t W)
{
	const struct hark_chunk_turn *tu = &c->turns[turn];
	struct hark_minutes_item it;
	char key[512], src[48];
	size_t klen, idx;
	int added, rc, kind = r->type;

	memset(&it, 0, sizeof(it));
	it.ref = hark_minutes_ref_none();
	if (r->task[0])
		it.text = clean_text(r->task, strlen(r->task), OFF_ITEM_WORDS);
	else
		it.text = clean_text(sent, slen, OFF_ITEM_WORDS);
	if (!it.text)
		return nomem(c);
	klen = norm_key(it.text, key, sizeof(key));
	if (klen == 0) {
		free(it.text);
		return HARK_OK;
	}
	rc = keytab_get(&cs->keys[kind], key, klen, 1, &idx, &added);
	if (rc) {
		free(it.text);
		if (rc == HARK_ERR_LIMIT) {
			hark_errbuf_set(c->err, c->errlen, "too many meeting items");
			return rc;
		}
		return nomem(c);
	}
	if (!added) {
		struct cand *old = &cs->a[cs->key_cand[kind][idx]];

		if (!(r->confidence > old->it.confidence)) {
			free(it.text);
			return HARK_OK;
		}
	} else if (idx >= cs->key_cap[kind]) {
		size_t nc = cs->key_cap[kind] ? cs->key_cap[kind] * 2 : 64;
		size_t *nk = realloc(cs->key_cand[kind], nc * sizeof(*nk));

		if (!nk) {
			free(it.text);
			return nomem(c);
		}
		cs->key_cand[kind] = nk;
		cs->key_cap[kind] = nc;
	}
	if (r->owner[0] && !(it.owner = strdup(r->owner)))
		goto oom;
	if (r->due[0] && !(it.due = strdup(r->due)))
		goto oom;
	if (r->due_iso[0] && !(it.due_iso = strdup(r->due_iso)))
		goto oom;
	snprintf(src, sizeof(src), "cue:%s", r->rule);
	if (!(it.source = strdup(src)))
		goto oom;
	if (turn_speaker(tu) && !(it.ref.speaker = strdup(turn_speaker(tu))))
		goto oom;
	if (!(it.ref.quote = clean_text(sent, slen, OFF_QUOTE_WORDS)))
		goto oom;
	it.confidence = r->confidence;
	it.ref.turn = (long)turn;
	interp(tu, w0, w0 + ws, W, &it.ref.start_s, &it.ref.end_s);
	if (!added) {
		struct cand *old = &cs->a[cs->key_cand[kind][idx]];

		hark_minutes_item_clear(&old->it);
		old->it = it;
		old->seq = seq;
		return HARK_OK;
	}
	if (cs->n >= OFF_MAX_CANDIDATES) {
		hark_minutes_item_clear(&it);
		hark_errbuf_set(c->err, c->errlen, "too many meeting items");
		return HARK_ERR_LIMIT;
	}
	if (cs->n == cs->cap) {
		size_t nc = cs->cap ? cs->cap * 2 : 64;
		struct cand *na = realloc(cs->a, nc * sizeof(*na));

		if (!na)
			goto oom;
		cs->a = na;
		cs->cap = nc;
	}
	cs->a[cs->n].kind = kind;
	cs->a[cs->n].seq = seq;
	cs->a[cs->n].it = it;
	cs->key_cand[kind][idx] = cs->n;
	cs->n++;
	return HARK_OK;
oom:
	hark_minutes_item_clear(&it);
	return nomem(c);
}

static int cmp_conf(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a, *y = *(const struct cand *const *)b;

	if (x->it.confidence != y->it.confidence)
		return x->it.confidence > y->it.confidence ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a, *y = *(const struct cand *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the kept candidates of one kind into *arr (transcript order). */
static int take_kind(struct ctx *c, struct cands *cs, int kind, struct hark_minutes_item **arr,
		     size_t *n)
{
	struct cand **v;
	size_t m = 0;

	for (size_t i = 0; i < cs->n; i++)
		m += cs->a[i].kind == kind;
	if (m == 0)
		return HARK_OK;
	v = malloc(m * sizeof(*v));
	if (!v)
		return nomem(c);
	m = 0;
	for (size_t i = 0; i < cs->n; i++)
		if (cs->a[i].kind == kind)
			v[m++] = &cs->a[i];
	if (m > c->p->max_items) {
		qsort(v, m, sizeof(*v), cmp_conf);
		m = c->p->max_items;
	}
	qsort(v, m, sizeof(*v), cmp_seq);
	*arr = calloc(m, sizeof(**arr));
	if (!*arr) {
		free(v);
		return nomem(c);
	}
	for (size_t i = 0; i < m; i++) {
		(*arr)[i] = v[i]->it; /* moved: the candidate no longer owns it */
		memset(&v[i]->it, 0, sizeof(v[i]->it));
	}
	*n = m;
	free(v);
	return HARK_OK;
}

static int do_items(struct ctx *c, struct hark_minutes *out, const char **names, size_t n_names)
{
	struct hark_cues_params cp = hark_cues_default_params();
	struct hark_cue_span *spans = NULL;
	size_t span_cap = 0, seq = 0;
	struct cands cs;
	int rc = HARK_OK;

	memset(&cs, 0, sizeof(cs));
	cp.min_confidence = c->p->min_confidence;
	cp.meeting_date = c->p->meeting_date;
	for (size_t t = 0; t < c->n; t++) {
		const struct hark_chunk_turn *tu = &c->turns[t];
		const char *s = turn_text(tu);
		size_t len = strlen(s), ns = 0, W, woff = 0, pos = 0;

		if ((t & 255) == 0) {
			if (canceled(c)) {
				rc = HARK_ERR_CANCELED;
				goto out;
			}
			progress(c, 0.45 + 0.2 * (double)t / (double)c->n);
		}
		if (len == 0)
			continue;
		if (len / 2 + 2 > span_cap) {
			size_t nc = len / 2 + 2;
			struct hark_cue_span *na = realloc(spans, nc * sizeof(*na));

			if (!na) {
				rc = nomem(c);
				goto out;
			}
			spans = na;
			span_cap = nc;
		}
		if (hark_cues_split_sentences(s, len, spans, span_cap, &ns) != 0)
			continue;
		W = count_words(s, len);
		for (size_t k = 0; k < ns; k++, seq++) {
			struct hark_cue_result r;
			size_t a = spans[k].start, b = spans[k].end, ws;

			if (b <= a || b > len)
				continue;
			woff += count_words(s + pos, a > pos ? a - pos : 0);
			pos = a > pos ? a : pos;
			ws = count_words(s + a, b - a);
			if (hark_cues_classify(s + a, b - a, turn_speaker(tu), names, n_names, &cp,
					       &r) == 0 &&
			    r.type != HARK_CUE_NONE && r.type <= HARK_CUE_QUESTION &&
			    r.confidence >= c->p->min_confidence) {
				rc = add_cand(c, &cs, &r, t, seq, s + a, b - a, woff, ws, W);
				if (rc)
					goto out;
			}
			woff += ws;
			pos = b;
		}
	}
	rc = take_kind(c, &cs, HARK_CUE_DECISION, &out->decisions, &out->n_decisions);
	if (!rc)
		rc = take_kind(c, &cs, HARK_CUE_ACTION, &out->actions, &out->n_actions);
	if (!rc)
		rc = take_kind(c, &cs, HARK_CUE_QUESTION, &out->questions, &out->n_questions);
out:
	free(spans);
	cands_free(&cs);
	return rc;
}

/* --------------------------------------------------------------- topics --- */

/* Words that carry no topic: function words, meeting fillers and discourse
 * markers, and very common verbs / vague nouns. */
static const char *const topic_stop[] = {
	"about", "above", "actually", "after", "again", "against", "ago", "ahead", "all",
	"almost", "along", "already", "alright", "also", "although", "always", "among", "and",
	"another", "any", "anybody", "anyone", "anything", "anyway", "anywhere", "are", "aren",
	"around", "away", "back", "bad", "basically", "because", "been", "before", "being",
	"below", "best", "better", "between", "big", "bit", "both", "but", "call", "came",
	"can", "cannot", "cause", "certain", "certainly", "come", "comes", "coming", "could",
	"couldn", "definitely", "did", "didn", "different", "does", "doesn", "doing", "don",
	"done", "down", "during", "each", "easy", "eight", "either", "else", "enough", "etcetera",
	"even", "ever", "every", "everybody", "everyone", "everything", "exactly", "fact",
	"far", "few", "fine", "first", "five", "for", "four", "from", "further", "get", "gets",
	"getting", "give", "given", "gives", "going", "gonna", "good", "got", "gotta", "great",
	"guess", "guys", "had", "hadn", "half", "happen", "happens", "has", "hasn", "have",
	"haven", "having", "hello", "her", "here", "hers", "herself", "hey", "him", "himself",
	"his", "hmm", "how", "however", "huh", "idea", "indeed", "into", "isn", "its", "itself",
	"just", "keep", "kind", "kinda", "know", "knows", "last", "least", "less", "let",
	"lets", "like", "likely", "little", "long", "look", "looking", "looks", "lot", "lots",
	"made", "make", "makes", "making", "many", "may", "maybe", "mean", "means", "might",
	"mine", "more", "most", "much", "must", "myself", "need", "needs", "never", "new",
	"next", "nice", "nine", "nobody", "none", "nope", "nor", "not", "nothing", "now",
	"off", "okay", "old", "once", "one", "ones", "only", "onto", "other", "others",
	"otherwise", "our", "ours", "ourselves", "out", "over", "own", "part", "people",
	"perhaps", "point", "possible", "pretty", "probably", "put", "quite", "rather",
	"really", "right", "said", "same", "saw", "say", "saying", "says", "second", "see",
	"seem", "seems", "seen", "seven", "several", "shall", "she", "should", "shouldn",
	"since", "six", "small", "some", "somebody", "someone", "something", "sometimes",
	"somewhat", "somewhere", "soon", "sorry", "sort", "sorta", "start", "still", "stuff",
	"such", "sure", "take", "taking", "talk", "talked", "talking", "tell", "ten", "than",
	"thank", "thanks", "that", "the", "their", "theirs", "them", "themselves", "then",
	"there", "therefore", "these", "they", "thing", "things", "think", "thinking", "third",
	"this", "those", "though", "thought", "three", "through", "thus", "time", "times",
	"together", "too", "took", "totally", "toward", "towards", "tried", "true", "try",
	"trying", "two", "uhm", "under", "understand", "until", "upon", "use", "used", "using",
	"usually", "very", "wanna", "want", "wanted", "wants", "was", "wasn", "way", "ways",
	"well", "went", "were", "weren", "what", "whatever", "when", "where", "whether",
	"which", "while", "who", "whole", "whom", "whose", "why", "will", "with", "within",
	"without", "won", "wonder", "work", "would", "wouldn", "wow", "yeah", "yep", "yes",
	"yet", "you", "your", "yours", "yourself", "zero",
};

/* Verbs common in meetings: never at either edge of a topic phrase (sorted). */
static const char *const verb_stop[] = {
	"adds", "agree", "agreed", "ask", "asked", "assume", "becomes", "believe", "call",
	"causes", "change", "classify", "consider", "decide", "decided", "discuss",
	"discussed", "exist", "feel", "find", "focusing", "found", "gave", "goes", "hit",
	"hold", "hope", "introduce", "leave", "meant", "mention", "mentioned", "minimise",
	"minimize", "produce", "recognise", "recognize", "refine", "reflect", "remember",
	"running", "seems", "select", "sell", "send", "sent", "show", "standing", "starts",
	"suppose", "taken", "turning", "wait", "worry",
};

/* Adjectives and vague words: fine before a noun ("natural rubber") but not
 * as a phrase's last word or alone (sorted). */
static const char *const adj_stop[] = {
	"awesome", "basic", "bigger", "central", "certain", "cheap", "cheaper", "cool",
	"crazy", "difficult", "easier", "equal", "expensive", "false", "fancy", "funny",
	"general", "happy", "important", "interesting", "main", "natural", "nice", "normal",
	"obvious", "physical", "please", "pure", "real", "relevant", "similar", "simple",
	"smaller", "special", "specific", "useful", "weird",
};

/* 1 when w[0..n) is in the sorted list a of na words. */
static int in_sorted(const char *const *a, size_t na, const char *w, size_t n)
{
	size_t lo = 0, hi = na;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strncmp(w, a[mid], n);

		if (cmp == 0 && a[mid][n] != '\0')
			cmp = -1;
		if (cmp == 0)
			return 1;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

static int is_topic_stop(const char *w, size_t n)
{
	return in_sorted(topic_stop, sizeof(topic_stop) / sizeof(topic_stop[0]), w, n);
}

/* Token stream: term ids, -1 = phrase break (stop word, punctuation,
 * annotation or turn start). */
struct topic_data {
	int32_t *tok;     /* all turns' streams back to back */
	size_t ntok, captok;
	size_t *toff;     /* n + 1 offsets into tok */
	size_t *tcontent; /* content tokens per turn */
	struct keytab terms;  /* stem -> term id */
	struct keytab surf;   /* display form -> surface id */
	size_t *surf_term;    /* surface id -> term id */
	size_t *surf_count;
	size_t surf_cap;
	size_t *best_surf;    /* term id -> surface id (after counting) */
	uint8_t *title_ok;    /* term id -> usable as a phrase's last (or only) word */
	uint8_t *head_ok;     /* term id -> usable as a phrase's first word */
	size_t *tf;           /* term id -> occurrences in the meeting */
	size_t *df;           /* term id -> turns containing it */
	size_t *last_turn;    /* term id -> last turn seen + 1 (for df) */
	size_t term_cap;
	size_t total;         /* content tokens */
};

static void topic_data_free(struct topic_data *d)
{
	free(d->tok);
	free(d->toff);
	free(d->tcontent);
	keytab_free(&d->terms);
	keytab_free(&d->surf);
	free(d->surf_term);
	free(d->surf_count);
	free(d->best_surf);
	free(d->title_ok);
	free(d->head_ok);
	free(d->tf);
	free(d->df);
	free(d->last_turn);
	memset(d, 0, sizeof(*d));
}

static int push_tok(struct topic_data *d, int32_t v)
{
	if (v < 0 && (d->ntok == 0 || d->tok[d->ntok - 1] < 0))
		return HARK_OK; /* no double breaks */
	if (d->ntok == d->captok) {
		size_t nc = d->captok ? d->captok * 2 : 4096;
		int32_t *nt = realloc(d->tok, nc * sizeof(*nt));

		if (!nt)
			return HARK_ERR_NOMEM;
		d->tok = nt;
		d->captok = nc;
	}
	d->tok[d->ntok++] = v;
	return HARK_OK;
}

static int grow_terms(struct topic_data *d, size_t need)
{
	size_t nc = d->term_cap ? d->term_cap : 256;

	if (need <= d->term_cap)
		return HARK_OK;
	while (nc < need)
		nc *= 2;
#define GROW(f)                                                                                  \
	do {                                                                                     \
		void *np = realloc(d->f, nc * sizeof(*d->f));                                    \
		if (!np)                                                                         \
			return HARK_ERR_NOMEM;                                                   \
		d->f = np;                                                                       \
		memset(d->f + d->term_cap, 0, (nc - d->term_cap) * sizeof(*d->f));               \
	} while (0)
	GROW(title_ok);
	GROW(head_ok);
	GROW(tf);
	GROW(df);
	GROW(last_turn);
	GROW(best_surf);
#undef GROW
	d->term_cap = nc;
	return HARK_OK;
}

/* Adds one word (raw bytes w[0..n), original case) of turn t. */
static int add_word(struct topic_data *d, const char *w, size_t n, size_t t)
{
	char low[OFF_MAX_WORD + 1], st[OFF_MAX_WORD + 8], disp[OFF_MAX_WORD + 1];
	size_t sl, tid, sid, upper = 0, alpha = 0;
	int added, rc;

	if (n < 3 || n > OFF_MAX_WORD)
		return push_tok(d, -1);
	for (size_t i = 0; i < n; i++) {
		low[i] = lower(w[i]);
		upper += w[i] >= 'A' && w[i] <= 'Z';
		alpha += (low[i] >= 'a' && low[i] <= 'z') || (unsigned char)w[i] >= 0x80;
	}
	low[n] = '\0';
	if (alpha == 0 || is_topic_stop(low, n))
		return push_tok(d, -1);
	sl = hark_rouge_porter_stem(low, n, st, sizeof(st));
	if (sl >= sizeof(st))
		sl = sizeof(st) - 1;
	rc = keytab_get(&d->terms, st, sl, 1, &tid, &added);
	if (rc)
		return rc;
	if (added) {
		if (tid > INT32_MAX - 1)
			return HARK_ERR_LIMIT;
		rc = grow_terms(d, tid + 1);
		if (rc)
			return rc;
	}
	d->tf[tid]++;
	if (d->last_turn[tid] != t + 1) {
		d->df[tid]++;
		d->last_turn[tid] = t + 1;
	}
	/* display form: lowercase unless written as an acronym */
	memcpy(disp, upper == n ? w : low, n);
	rc = keytab_get(&d->surf, disp, n, 1, &sid, &added);
	if (rc)
		return rc;
	if (added) {
		if (sid >= d->surf_cap) {
			size_t nc = d->surf_cap ? d->surf_cap * 2 : 256;
			size_t *a = realloc(d->surf_term, nc * sizeof(*a));

			if (!a)
				return HARK_ERR_NOMEM;
			d->surf_term = a;
			a = realloc(d->surf_count, nc * sizeof(*a));
			if (!a)
				return HARK_ERR_NOMEM;
			d->surf_count = a;
			d->surf_cap = nc;
		}
		d->surf_term[sid] = tid;
		d->surf_count[sid] = 0;
	}
	d->surf_count[sid]++;
	d->total++;
	return push_tok(d, (int32_t)tid);
}

/* 1 when the word s[a..i) is no content: a run of one letter ("aaa",
 * "nnn") or a word the speaker broke off ("wha-", "sor {disfmarker}"). */
static int is_fragment(const char *s, size_t a, size_t i)
{
	size_t j = i;
	int run = i - a >= 2;

	for (size_t k = a + 1; run && k < i; k++)
		run = lower(s[k]) == lower(s[a]);
	if (run)
		return 1;
	if (s[j] == '-' && (s[j + 1] == '\0' || is_space(s[j + 1])))
		return 1;
	while (s[j] == ' ')
		j++;
	return strncmp(s + j, "{disfmarker}", 12) == 0;
}

static int tokenize_turns(struct ctx *c, struct topic_data *d)
{
	int rc;

	d->toff = calloc(c->n + 1, sizeof(*d->toff));
	d->tcontent = calloc(c->n + 1, sizeof(*d->tcontent));
	if (!d->toff || !d->tcontent)
		return HARK_ERR_NOMEM;
	for (size_t t = 0; t < c->n; t++) {
		const char *s = turn_text(&c->turns[t]);
		size_t i = 0, before = d->total;

		if ((t & 255) == 0 && canceled(c))
			return HARK_ERR_CANCELED;
		if ((rc = push_tok(d, -1)) != 0)
			return rc;
		d->toff[t] = d->ntok;
		while (s[i]) {
			unsigned char ch = (unsigned char)s[i];

			if (ch == '{' || ch == '[' || ch == '<') {
				char close = ch == '{' ? '}' : ch == '[' ? ']' : '>';
				size_t j = i + 1;

				while (s[j] && j - i < 64 && s[j] != close)
					j++;
				if (s[j] == close) {
					i = j + 1;
					if ((rc = push_tok(d, -1)) != 0)
						return rc;
					continue;
				}
			}
			if (is_alnum(ch) || ch >= 0x80) {
				size_t a = i;

				while (s[i] && (is_alnum((unsigned char)s[i]) ||
						(unsigned char)s[i] >= 0x80))
					i++;
				rc = is_fragment(s, a, i) ? push_tok(d, -1)
							  : add_word(d, s + a, i - a, t);
				if (rc)
					return rc;
				/* a contraction's tail ("'s", "n't") is skipped */
				if (s[i] == '\'') {
					i++;
					while (is_alnum((unsigned char)s[i]))
						i++;
				}
				continue;
			}
			if (strchr(".,;:?!()\"", (char)ch) && (rc = push_tok(d, -1)) != 0)
				return rc;
			i++;
		}
		d->tcontent[t] = d->total - before;
	}
	d->toff[c->n] = d->ntok;
	/* most frequent display form per term (first seen wins ties) */
	for (size_t tid = 0; tid < d->terms.n; tid++)
		d->best_surf[tid] = SIZE_MAX;
	for (size_t sid = 0; sid < d->surf.n; sid++) {
		size_t tid = d->surf_term[sid];

		if (d->best_surf[tid] == SIZE_MAX ||
		    d->surf_count[sid] > d->surf_count[d->best_surf[tid]])
			d->best_surf[tid] = sid;
	}
	/* adverbs ("-ly"), past forms ("-ed" but not "-eed") and listed verbs,
	 * judged on the usual form, are not used at a label's edges; listed
	 * adjectives only at its start */
	for (size_t tid = 0; tid < d->terms.n; tid++) {
		char low[OFF_MAX_WORD + 1];
		size_t sid = d->best_surf[tid], n;

		if (sid == SIZE_MAX)
			continue;
		n = d->surf.klen[sid];
		for (size_t i = 0; i < n; i++)
			low[i] = lower(d->surf.key[sid][i]);
		low[n] = '\0';
		d->head_ok[tid] =
			!(n > 4 && low[n - 2] == 'l' && low[n - 1] == 'y') &&
			!(n > 4 && low[n - 2] == 'e' && low[n - 1] == 'd' && low[n - 3] != 'e') &&
			!in_sorted(verb_stop, sizeof(verb_stop) / sizeof(verb_stop[0]), low, n);
		d->title_ok[tid] = d->head_ok[tid] &&
			!in_sorted(adj_stop, sizeof(adj_stop) / sizeof(adj_stop[0]), low, n);
	}
	return HARK_OK;
}

/* Gap g (1..n-1) lies between turns g-1 and g. Fills score[g] with the
 * cosine of the windows' term counts (0 when a side is empty). */
static int gap_scores(struct ctx *c, const struct topic_data *d, size_t block, double *score)
{
	uint32_t *L = calloc(d->terms.n + 1, sizeof(*L)), *R = calloc(d->terms.n + 1, sizeof(*R));
	size_t *touched = NULL, nt = 0, capt = 0;
	int rc = HARK_OK;

	if (!L || !R) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	score[0] = 0;
	for (size_t g = 1; g < c->n; g++) {
		size_t got = 0;
		double dot = 0, nl = 0, nr = 0;

		if ((g & 1023) == 0 && canceled(c)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		nt = 0;
		for (size_t side = 0; side < 2; side++) {
			uint32_t *V = side ? R : L;

			got = 0;
			for (size_t k = 0; got < block; k++) {
				size_t t;

				if (side == 0) {
					if (k >= g)
						break;
					t = g - 1 - k;
				} else {
					t = g + k;
					if (t >= c->n)
						break;
				}
				for (size_t i = d->toff[t]; i < d->toff[t + 1]; i++) {
					int32_t id = d->tok[i];

					if (id < 0)
						continue;
					if (L[id] == 0 && R[id] == 0) {
						if (nt == capt) {
							size_t ncap = capt ? capt * 2 : 256;
							size_t *na = realloc(touched, ncap * sizeof(*na));

							if (!na) {
								rc = HARK_ERR_NOMEM;
								goto out;
							}
							touched = na;
							capt = ncap;
						}
						touched[nt++] = (size_t)id;
					}
					V[id]++;
					got++;
				}
			}
		}
		for (size_t i = 0; i < nt; i++) {
			double l = L[touched[i]], r = R[touched[i]];

			dot += l * r;
			nl += l * l;
			nr += r * r;
			L[touched[i]] = 0;
			R[touched[i]] = 0;
		}
		score[g] = (nl > 0 && nr > 0) ? dot / sqrt(nl * nr) : 0;
	}
out:
	free(L);
	free(R);
	free(touched);
	return rc;
}

struct depth {
	size_t gap;
	double depth;
};

static int cmp_depth(const void *a, const void *b)
{
	const struct depth *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1;
	return x->gap < y->gap ? -1 : x->gap > y->gap;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* Chooses topic start turns: starts[0] = 0, then the accepted boundaries in
 * order; *ns their count (>= 1). */
static int segment(struct ctx *c, const struct topic_data *d, size_t *starts, size_t *ns)
{
	const struct hark_offline_params *p = c->p;
	size_t n = c->n, minlen = p->min_topic_turns, block, nb = 0, nd = 0;
	double *raw = NULL, *sm = NULL, mean = 0, var = 0, cut;
	struct depth *dp = NULL;
	int rc = HARK_OK;

	starts[0] = 0;
	*ns = 1;
	if (n / 24 > minlen)
		minlen = n / 24;
	if (p->max_topics <= 1 || n < 2 * minlen || d->total == 0)
		return HARK_OK;
	block = d->total / (2 * p->max_topics);
	if (block < 20)
		block = 20;
	if (block > 120)
		block = 120;
	raw = calloc(n, sizeof(*raw));
	sm = calloc(n, sizeof(*sm));
	dp = calloc(n, sizeof(*dp));
	if (!raw || !sm || !dp) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = gap_scores(c, d, block, raw);
	if (rc)
		goto out;
	/* smoothing: mean over gaps g-2..g+2 */
	for (size_t g = 1; g < n; g++) {
		double s = 0;
		size_t k = 0;

		for (size_t h = g >= 3 ? g - 2 : 1; h <= g + 2 && h < n; h++, k++)
			s += raw[h];
		sm[g] = s / (double)k;
	}
	/* depth of every local minimum */
	for (size_t g = minlen; g + minlen <= n; g++) {
		double lp = sm[g], rp = sm[g];

		if ((g > 1 && sm[g - 1] < sm[g]) || (g + 1 < n && sm[g + 1] < sm[g]))
			continue;
		for (size_t h = g; h > 1 && sm[h - 1] >= sm[h]; h--)
			lp = sm[h - 1];
		for (size_t h = g; h + 1 < n && sm[h + 1] >= sm[h]; h++)
			rp = sm[h + 1];
		dp[nd].gap = g;
		dp[nd].depth = (lp - sm[g]) + (rp - sm[g]);
		if (dp[nd].depth > 0)
			nd++;
	}
	if (nd == 0)
		goto out;
	for (size_t i = 0; i < nd; i++)
		mean += dp[i].depth;
	mean /= (double)nd;
	for (size_t i = 0; i < nd; i++)
		var += (dp[i].depth - mean) * (dp[i].depth - mean);
	cut = mean - sqrt(var / (double)nd) / 2;
	qsort(dp, nd, sizeof(*dp), cmp_depth);
	for (size_t i = 0; i < nd && nb + 1 < p->max_topics; i++) {
		size_t g = dp[i].gap;
		int ok = dp[i].depth >= cut;

		for (size_t k = 0; ok && k < nb; k++) {
			size_t a = starts[1 + k];

			if ((g > a ? g - a : a - g) < minlen)
				ok = 0;
		}
		if (ok)
			starts[1 + nb++] = g;
	}
	qsort(starts + 1, nb, sizeof(*starts), cmp_size);
	*ns = 1 + nb;
out:
	free(raw);
	free(sm);
	free(dp);
	return rc;
}

struct phrase {
	size_t id;      /* key index in the phrase table */
	int32_t t[3];
	size_t len;
	size_t count;
	size_t first;   /* first position (token index) */
	double score;
};

static int cmp_phrase(const void *a, const void *b)
{
	const struct phrase *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len; /* same start: shorter first */
}

/* Appends the display form of phrase ph to buf (cap bytes). */
static void phrase_text(const struct topic_data *d, const struct phrase *ph, char *buf, size_t cap)
{
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ph->len; i++) {
		size_t tid = (size_t)ph->t[i], sid = d->best_surf[tid];
		const char *w = sid == SIZE_MAX ? d->terms.key[tid] : d->surf.key[sid];
		size_t wl = strlen(w);

		if (k + wl + 2 > cap)
			break;
		if (i)
			buf[k++] = ' ';
		memcpy(buf + k, w, wl);
		k += wl;
		buf[k] = '\0';
	}
}

/* Title and keywords of the topic over turns [a, b]. */
static int topic_label(struct ctx *c, const struct topic_data *d, size_t a, size_t b,
		       size_t topic_no, size_t *tf_topic, struct hark_minutes_topic *tp)
{
	struct keytab pt;
	struct phrase *ph = NULL;
	size_t nph = 0, capph = 0, lo = d->toff[a], hi = d->toff[b + 1], nturns_doc = 0;
	size_t chosen[OFF_KEYWORDS], nch = 0;
	char buf[3 * (OFF_MAX_WORD + 1) + 8], title[2 * sizeof(buf) + 8];
	int rc = HARK_OK;

	memset(&pt, 0, sizeof(pt));
	for (size_t t = 0; t < c->n; t++)
		nturns_doc += d->tcontent[t] > 0;
	for (size_t i = lo; i < hi; i++)
		if (d->tok[i] >= 0)
			tf_topic[d->tok[i]]++;
	for (size_t i = lo; i < hi; i++) {
		for (size_t L = 1; L <= 3 && i + L <= hi; L++) {
			int32_t key[3];
			size_t idx;
			int added, bad = 0;

			for (size_t k = 0; k < L; k++) {
				key[k] = d->tok[i + k];
				if (key[k] < 0)
					bad = 1;
				for (size_t m = 0; !bad && m < k; m++)
					bad = key[m] == key[k];
			}
			if (bad)
				break;
			if (!d->head_ok[key[0]] || !d->title_ok[key[L - 1]])
				continue;
			rc = keytab_get(&pt, (const char *)key, L * sizeof(int32_t), 1, &idx, &added);
			if (rc)
				goto out;
			if (added) {
				if (nph == capph) {
					size_t nc = capph ? capph * 2 : 256;
					struct phrase *np = realloc(ph, nc * sizeof(*np));

					if (!np) {
						rc = HARK_ERR_NOMEM;
						goto out;
					}
					ph = np;
					capph = nc;
				}
				memset(&ph[nph], 0, sizeof(ph[nph]));
				ph[nph].id = idx;
				memcpy(ph[nph].t, key, L * sizeof(int32_t));
				ph[nph].len = L;
				ph[nph].first = i;
				nph++;
			}
			ph[idx].count++;
		}
	}
	for (size_t i = 0; i < nph; i++) {
		double ws = 0, maxtf = 0, cohesion;

		for (size_t k = 0; k < ph[i].len; k++) {
			size_t tid = (size_t)ph[i].t[k];
			double tf = (double)tf_topic[tid];
			double idf = log(((double)nturns_doc + 1) / ((double)d->df[tid] + 1)) + 1;

			ws += tf * idf * (tf / (double)d->tf[tid]);
			if (tf > maxtf)
				maxtf = tf;
		}
		cohesion = maxtf > 0 ? sqrt((double)ph[i].count / maxtf) : 0;
		ph[i].score = ws / (double)ph[i].len * (1 + 0.6 * (double)(ph[i].len - 1)) * cohesion;
		if (ph[i].len > 1 && ph[i].count < 2)
			ph[i].score = 0;
	}
	qsort(ph, nph, sizeof(*ph), cmp_phrase);
	for (size_t i = 0; i < nph && nch < OFF_KEYWORDS; i++) {
		int overlap = 0;

		if (ph[i].score <= 0)
			break;
		for (size_t k = 0; k < nch && !overlap; k++)
			for (size_t x = 0; x < ph[i].len; x++)
				for (size_t y = 0; y < ph[chosen[k]].len; y++)
					overlap |= ph[i].t[x] == ph[chosen[k]].t[y];
		if (!overlap)
			chosen[nch++] = i;
	}
	if (nch) {
		tp->keywords = calloc(nch, sizeof(char *));
		if (!tp->keywords) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	}
	title[0] = '\0';
	for (size_t k = 0; k < nch; k++) {
		phrase_text(d, &ph[chosen[k]], buf, sizeof(buf));
		tp->keywords[k] = strdup(buf);
		if (!tp->keywords[k]) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		tp->n_keywords = k + 1;
		if (k < 2) {
			if (k)
				strcat(title, ", ");
			strcat(title, buf);
		}
	}
	if (title[0] >= 'a' && title[0] <= 'z')
		title[0] = (char)(title[0] - 'a' + 'A');
	if (!title[0])
		snprintf(title, sizeof(title), "Topic %zu", topic_no + 1);
	tp->title = strdup(title);
	if (!tp->title)
		rc = HARK_ERR_NOMEM;
out:
	for (size_t i = lo; i < hi; i++)
		if (d->tok[i] >= 0)
			tf_topic[d->tok[i]] = 0;
	free(ph);
	keytab_free(&pt);
	return rc;
}

/* The top-ranked sentence of turns [a, b] (NULL when none qualifies). */
static int topic_sentence(struct ctx *c, size_t a, size_t b, char **out)
{
	struct hark_summarize_params sp = hark_summarize_default_params();
	struct hark_summary s;
	char e[256] = "";
	size_t best = SIZE_MAX;
	int rc;

	*out = NULL;
	memset(&s, 0, sizeof(s));
	sp.max_words = 40;
	sp.max_words_sentence = 40;
	sp.cancel = c->p->cancel;
	sp.cancel_user_data = c->p->cancel_user_data;
	rc = hark_summarize(c->turns + a, b - a + 1, &sp, &s, e, sizeof(e));
	if (rc) {
		hark_errbuf_set(c->err, c->errlen, "topic summary: %s", e);
		return rc;
	}
	for (size_t i = 0; i < s.n; i++)
		if (best == SIZE_MAX || s.sentences[i].score > s.sentences[best].score)
			best = i;
	if (best != SIZE_MAX) {
		*out = strdup(s.sentences[best].text);
		if (!*out)
			rc = HARK_ERR_NOMEM;
	}
	hark_summary_clear(&s);
	return rc;
}

static int do_topics(struct ctx *c, struct hark_minutes *out)
{
	struct topic_data d;
	size_t *starts = NULL, ns = 0, *tf_topic = NULL;
	int rc;

	memset(&d, 0, sizeof(d));
	if (c->n == 0)
		return HARK_OK;
	rc = tokenize_turns(c, &d);
	if (rc)
		goto out;
	progress(c, 0.75);
	starts = calloc(c->p->max_topics + 1, sizeof(*starts));
	tf_topic = calloc(d.terms.n + 1, sizeof(*tf_topic));
	if (!starts || !tf_topic) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = segment(c, &d, starts, &ns);
	if (rc)
		goto out;
	out->topics = calloc(ns, sizeof(*out->topics));
	if (!out->topics) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t k = 0; k < ns; k++) {
		struct hark_minutes_topic *tp = &out->topics[k];
		size_t a = starts[k], b = k + 1 < ns ? starts[k + 1] - 1 : c->n - 1;

		if (canceled(c)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		tp->ref = hark_minutes_ref_none();
		out->n_topics = k + 1;
		tp->ref.turn = (long)a;
		tp->ref.last_turn = (long)b;
		for (size_t t = a; t <= b; t++) {
			double s = c->turns[t].start_s, e = c->turns[t].end_s;

			if (s >= 0 && isfinite(s) && (tp->ref.start_s < 0 || s < tp->ref.start_s))
				tp->ref.start_s = s;
			if (e >= 0 && isfinite(e) && e > tp->ref.end_s)
				tp->ref.end_s = e;
		}
		rc = topic_label(c, &d, a, b, k, tf_topic, tp);
		if (rc)
			goto out;
		rc = topic_sentence(c, a, b, &tp->summary);
		if (rc)
			goto out;
		progress(c, 0.75 + 0.25 * (double)(k + 1) / (double)ns);
	}
out:
	if (rc == HARK_ERR_NOMEM)
		nomem(c);
	else if (rc == HARK_ERR_CANCELED)
		hark_errbuf_set(c->err, c->errlen, "canceled");
	else if (rc == HARK_ERR_LIMIT && c->err && !c->err[0])
		hark_errbuf_set(c->err, c->errlen, "topics: too many distinct words");
	free(starts);
	free(tf_topic);
	topic_data_free(&d);
	return rc;
}

/* ----------------------------------------------------------------- main --- */

static int check_params(const struct hark_offline_params *p, char *err, size_t errlen)
{
	const struct hark_date *md = &p->meeting_date;

	if (p->summary_words < 1 || p->max_topics < 1 || p->min_topic_turns < 1 ||
	    p->max_items < 1 || !(p->min_confidence >= 0 && p->min_confidence <= 1) ||
	    p->max_topics > 100000) {
		hark_errbuf_set(err, errlen, "invalid offline analyzer parameters");
		return HARK_ERR_INVALID_ARG;
	}
	if (md->year != 0 && !hark_date_valid(md->year, md->month, md->day)) {
		hark_errbuf_set(err, errlen, "invalid meeting date %d-%d-%d", md->year, md->month,
				md->day);
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

int hark_offline_minutes(const struct hark_chunk_turn *turns, size_t n, const char *meeting,
			 const struct hark_offline_params *p, struct hark_minutes *out, char *err,
			 size_t errlen)
{
	struct hark_offline_params dp = hark_offline_default_params();
	struct ctx c;
	const char **names = NULL;
	size_t n_names = 0, bytes = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out || (!turns && n > 0)) {
		hark_errbuf_set(err, errlen, "invalid argument");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &dp;
	rc = check_params(p, err, errlen);
	if (rc)
		return rc;
	if (n > p->max_turns) {
		hark_errbuf_set(err, errlen, "%zu turns exceed the cap of %zu", n, p->max_turns);
		return HARK_ERR_LIMIT;
	}
	for (size_t t = 0; t < n; t++) {
		bytes += strlen(turn_text(&turns[t]));
		if (turns[t].speaker)
			bytes += strlen(turns[t].speaker);
		if (bytes > p->max_input_bytes) {
			hark_errbuf_set(err, errlen, "input exceeds %zu bytes", p->max_input_bytes);
			return HARK_ERR_LIMIT;
		}
	}
	memset(&c, 0, sizeof(c));
	c.turns = turns;
	c.n = n;
	c.p = p;
	c.err = err;
	c.errlen = errlen;
	if (canceled(&c))
		return HARK_ERR_CANCELED;

	out->meeting = strdup(meeting ? meeting : "meeting");
	out->method = strdup("offline");
	if (!out->meeting || !out->method) {
		rc = nomem(&c);
		goto out;
	}
	if (p->meeting_date.year != 0) {
		out->date = malloc(11);
		if (!out->date) {
			rc = nomem(&c);
			goto out;
		}
		hark_date_format(&p->meeting_date, out->date);
	}
	out->duration_s = -1.0;
	for (size_t t = 0; t < n; t++)
		if (turns[t].end_s >= 0 && isfinite(turns[t].end_s) && turns[t].end_s > out->duration_s)
			out->duration_s = turns[t].end_s;
	out->turns = n;
	out->chunks = 0;

	rc = do_summary(&c, out);
	if (rc)
		goto out;
	progress(&c, 0.45);
	rc = do_participants(&c, out, &names, &n_names);
	if (rc)
		goto out;
	rc = do_items(&c, out, names, n_names);
	if (rc)
		goto out;
	progress(&c, 0.65);
	rc = do_topics(&c, out);
	if (rc)
		goto out;
	progress(&c, 1.0);
out:
	free(names);
	if (rc)
		hark_minutes_clear(out);
	return rc;
}
