/*
 * Word error rate by Levenshtein alignment over word tokens. Words are first
 * interned to integer ids (a small open-addressing hash table) so the
 * O(N * M) dynamic programme compares integers; only two rows of cells are
 * kept, each cell carrying its edit cost and its S/D/I breakdown.
 */
#include "util/wer.h"

#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/textnorm.h"

struct cell {
	uint32_t cost, s, d, i;
};

struct intern {
	const char **keys;
	uint32_t *ids;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Id of word w (keys are borrowed, not copied). */
static uint32_t intern_get(struct intern *t, const char *w)
{
	size_t m = t->cap - 1, i = (size_t)hash_str(w) & m;

	while (t->keys[i]) {
		if (strcmp(t->keys[i], w) == 0)
			return t->ids[i];
		i = (i + 1) & m;
	}
	t->keys[i] = w;
	t->ids[i] = (uint32_t)t->n++;
	return t->ids[i];
}

static int better(const struct cell *a, const struct cell *b)
{
	return a->cost < b->cost;
}

int hark_wer_align(const char *const *ref, size_t n_ref, const char *const *hyp, size_t n_hyp,
		   struct hark_wer_counts *out)
{
	struct intern tab = {NULL, NULL, 0, 0};
	uint32_t *rid = NULL, *hid = NULL;
	struct cell *prev = NULL, *cur = NULL, *tmp;
	size_t i, j, need;
	int rc = HARK_OK;

	if (!out || (n_ref && !ref) || (n_hyp && !hyp))
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (n_ref > UINT32_MAX / 2 || n_hyp > UINT32_MAX / 2)
		return HARK_ERR_LIMIT;
	if (n_ref && n_hyp && (uint64_t)n_ref * (uint64_t)n_hyp > HARK_WER_MAX_CELLS)
		return HARK_ERR_LIMIT;
	out->ref_words = n_ref;
	out->hyp_words = n_hyp;
	if (!n_ref || !n_hyp) {
		out->del = n_ref;
		out->ins = n_hyp;
		return HARK_OK;
	}
	need = (n_ref + n_hyp) * 2;
	tab.cap = 16;
	while (tab.cap < need)
		tab.cap *= 2;
	tab.keys = calloc(tab.cap, sizeof(*tab.keys));
	tab.ids = calloc(tab.cap, sizeof(*tab.ids));
	rid = malloc(n_ref * sizeof(*rid));
	hid = malloc(n_hyp * sizeof(*hid));
	prev = malloc((n_hyp + 1) * sizeof(*prev));
	cur = malloc((n_hyp + 1) * sizeof(*cur));
	if (!tab.keys || !tab.ids || !rid || !hid || !prev || !cur) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n_ref; i++) {
		if (!ref[i]) {
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		rid[i] = intern_get(&tab, ref[i]);
	}
	for (j = 0; j < n_hyp; j++) {
		if (!hyp[j]) {
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		hid[j] = intern_get(&tab, hyp[j]);
	}
	/* Row 0: every hypothesis word so far is an insertion. */
	for (j = 0; j <= n_hyp; j++) {
		prev[j].cost = (uint32_t)j;
		prev[j].s = prev[j].d = 0;
		prev[j].i = (uint32_t)j;
	}
	for (i = 1; i <= n_ref; i++) {
		cur[0].cost = (uint32_t)i;
		cur[0].s = cur[0].i = 0;
		cur[0].d = (uint32_t)i;
		for (j = 1; j <= n_hyp; j++) {
			struct cell diag = prev[j - 1], del = prev[j], ins = cur[j - 1], best;

			if (rid[i - 1] != hid[j - 1]) {
				diag.cost++;
				diag.s++;
			}
			del.cost++;
			del.d++;
			ins.cost++;
			ins.i++;
			best = diag;
			if (better(&del, &best))
				best = del;
			if (better(&ins, &best))
				best = ins;
			cur[j] = best;
		}
		tmp = prev;
		prev = cur;
		cur = tmp;
	}
	out->sub = prev[n_hyp].s;
	out->del = prev[n_hyp].d;
	out->ins = prev[n_hyp].i;
	out->hits = n_ref - out->sub - out->del;
out:
	free(cur);
	free(prev);
	free(hid);
	free(rid);
	free(tab.ids);
	free(tab.keys);
	return rc;
}

/* Splits s in place on ASCII whitespace into a new array of word pointers. */
static int split_words(char *s, char ***words, size_t *n)
{
	size_t cap = 0, k = 0;
	char **v = NULL, *p = s;

	*words = NULL;
	*n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
			*p++ = '\0';
		if (!*p)
			break;
		if (k == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				free(v);
				return HARK_ERR_NOMEM;
			}
			v = nv;
			cap = ncap;
		}
		v[k++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\f' &&
		       *p != '\v')
			p++;
	}
	*words = v;
	*n = k;
	return HARK_OK;
}

int hark_wer_compute(const char *ref, const char *hyp, int normalize,
		     struct hark_wer_counts *out)
{
	char *r = NULL, *h = NULL, **rw = NULL, **hw = NULL;
	size_t nr = 0, nh = 0;
	int rc;

	if (!ref || !hyp || !out)
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (normalize) {
		if ((rc = hark_textnorm_normalize(ref, strlen(ref), NULL, &r, NULL)) ||
		    (rc = hark_textnorm_normalize(hyp, strlen(hyp), NULL, &h, NULL)))
			goto out;
	} else {
		r = strdup(ref);
		h = strdup(hyp);
		if (!r || !h) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	}
	if ((rc = split_words(r, &rw, &nr)) || (rc = split_words(h, &hw, &nh)))
		goto out;
	rc = hark_wer_align((const char *const *)rw, nr, (const char *const *)hw, nh, out);
out:
	free(hw);
	free(rw);
	free(h);
	free(r);
	return rc;
}

void hark_wer_add(struct hark_wer_counts *acc, const struct hark_wer_counts *c)
{
	if (!acc || !c)
		return;
	acc->sub += c->sub;
	acc->del += c->del;
	acc->ins += c->ins;
	acc->hits += c->hits;
	acc->ref_words += c->ref_words;
	acc->hyp_words += c->hyp_words;
}

double hark_wer_rate(const struct hark_wer_counts *c)
{
	if (!c)
		return 0.0;
	if (!c->ref_words)
		return c->hyp_words ? 1.0 : 0.0;
	return (double)(c->sub + c->del + c->ins) / (double)c->ref_words;
}
