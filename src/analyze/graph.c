/*
 * Knowledge-graph model (see graph.h for the contract): entity and relation
 * storage with copy-in evidence, name normalisation, entity resolution and
 * the JSON / GraphML / Neo4j CSV writers. Resolution never compares all
 * entities pairwise: entities are blocked by sort keys (normalized name with
 * a singular final word, acronym / initials, person first and last names),
 * candidate pairs inside a block are joined with a union-find whose roots
 * carry the cluster type (so incompatible types never merge), and the merged
 * graph is rebuilt with deep copies (on an allocation failure the graph is
 * left unchanged). The whole pass is O(n log n) in the number of entities
 * plus O(m log m) in the number of relations; output order depends only on
 * the input.
 */
#include "analyze/graph.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

#define MAX_ALIASES ((size_t)1024)
#define MAX_MEETINGS ((size_t)1000000)
#define MAX_NAME_BYTES ((size_t)4096)

enum { T_PERSON, T_ORG, T_PROJECT, T_PRODUCT, T_PLACE, T_DATE, T_CONCEPT, T_COUNT };

static const char *const type_names[T_COUNT] = {"person", "organization", "project", "product",
						"place", "date", "concept"};

static int type_index(const char *t)
{
	if (t)
		for (int i = 0; i < T_COUNT; i++)
			if (strcmp(t, type_names[i]) == 0)
				return i;
	return T_CONCEPT;
}

static int types_compatible(int a, int b)
{
	if (a == b)
		return 1;
	if (a == T_CONCEPT)
		return b != T_PERSON && b != T_DATE;
	if (b == T_CONCEPT)
		return a != T_PERSON && a != T_DATE;
	return 0;
}

/* ------------------------------------------------------------ helpers ---- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void mention_free(struct hark_graph_mention *m)
{
	free(m->meeting);
	free(m->surface);
	free(m->quote);
	memset(m, 0, sizeof(*m));
}

/* Deep copy of src into dst; 0 or HARK_ERR_NOMEM (dst then zeroed). */
static int mention_copy(struct hark_graph_mention *dst, const struct hark_graph_mention *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->meeting = strdup(src->meeting ? src->meeting : "");
	dst->surface = dup_or_null(src->surface);
	dst->quote = dup_or_null(src->quote);
	dst->chunk = src->chunk;
	dst->turn = src->turn;
	dst->start_s = src->start_s;
	if (!dst->meeting || (src->surface && !dst->surface) || (src->quote && !dst->quote)) {
		mention_free(dst);
		return HARK_ERR_NOMEM;
	}
	return 0;
}

static void entity_free(struct hark_graph_entity *e)
{
	free(e->id);
	free(e->name);
	free(e->type);
	for (size_t i = 0; i < e->n_aliases; i++)
		free(e->aliases[i]);
	free(e->aliases);
	for (size_t i = 0; i < e->n_mentions; i++)
		mention_free(&e->mentions[i]);
	free(e->mentions);
	for (size_t i = 0; i < e->n_meetings; i++)
		free(e->meetings[i]);
	free(e->meetings);
	memset(e, 0, sizeof(*e));
}

static void relation_free(struct hark_graph_relation *r)
{
	free(r->type);
	for (size_t i = 0; i < r->n_evidence; i++)
		mention_free(&r->evidence[i]);
	free(r->evidence);
	memset(r, 0, sizeof(*r));
}

void hark_graph_clear(struct hark_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_entities; i++)
		entity_free(&g->entities[i]);
	free(g->entities);
	for (size_t i = 0; i < g->n_relations; i++)
		relation_free(&g->relations[i]);
	free(g->relations);
	memset(g, 0, sizeof(*g));
}

/* Inserts a copy of s into the sorted unique string array *arr (n, cap
 * entries); no-op when present or when *n == limit. */
static int sorted_insert(char ***arr, size_t *n, size_t limit, const char *s)
{
	size_t lo = 0, hi = *n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp((*arr)[mid], s);

		if (c == 0)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (*n >= limit)
		return 0;
	char **na = realloc(*arr, (*n + 1) * sizeof(*na));
	if (!na)
		return HARK_ERR_NOMEM;
	*arr = na;
	char *c = strdup(s);
	if (!c)
		return HARK_ERR_NOMEM;
	memmove(&na[lo + 1], &na[lo], (*n - lo) * sizeof(*na));
	na[lo] = c;
	(*n)++;
	return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t limit)
{
	if (need <= *cap)
		return 0;
	if (need > limit)
		return HARK_ERR_LIMIT;
	size_t nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	if (nc > limit)
		nc = limit;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return HARK_ERR_NOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* Open-addressing map from borrowed strings to indices. */
struct smap {
	const char **keys;
	size_t *vals;
	size_t cap; /* power of two */
};

static int smap_init(struct smap *m, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n + 1)
		cap *= 2;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = calloc(cap, sizeof(*m->vals));
	m->cap = cap;
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		memset(m, 0, sizeof(*m));
		return HARK_ERR_NOMEM;
	}
	return 0;
}

static void smap_free(struct smap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Slot of key (occupied by key, or the empty slot where it would go). */
static size_t smap_slot(const struct smap *m, const char *key)
{
	size_t i = (size_t)str_hash(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* ------------------------------------------------------ normalisation ---- */

struct strbuf {
	char *p;
	size_t n, cap;
};

static int sb_putc(struct strbuf *b, char c)
{
	if (b->n + 2 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		char *np = realloc(b->p, nc);
		if (!np)
			return HARK_ERR_NOMEM;
		b->p = np;
		b->cap = nc;
	}
	b->p[b->n++] = c;
	b->p[b->n] = '\0';
	return 0;
}

static int sb_puts(struct strbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sb_putc(b, s[i]))
			return HARK_ERR_NOMEM;
	return 0;
}

static int is_alnum_ascii(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int in_list(const char *w, size_t n, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && memcmp(list[i], w, n) == 0)
			return 1;
	return 0;
}

static const char *const person_titles[] = {"mr", "mrs", "ms", "dr", "prof", "hon", "sir", "madam", NULL};
static const char *const org_suffixes[] = {"inc", "corp", "ltd", "llc", "co", "gmbh", "plc", NULL};
static const char *const acronym_skip[] = {"of", "the", "and", "for", "in", "on", "a",
					   "an", "to", "de", "at", "la", NULL};

/* Case-folds and strips name into space-separated tokens; *comma_tok gets the
 * token index at the first comma (or -1) and *commas the comma count. */
static int fold_tokens(const char *name, struct strbuf *b, long *comma_tok, int *commas)
{
	size_t len = strlen(name);
	int need_space = 0;
	long ntok = 0;

	*comma_tok = -1;
	*commas = 0;
	if (len > MAX_NAME_BYTES)
		len = MAX_NAME_BYTES;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x80) {
			if (is_alnum_ascii(c)) {
				if (need_space && b->n > 0 && sb_putc(b, ' '))
					return HARK_ERR_NOMEM;
				if (need_space || b->n == 0)
					ntok++;
				need_space = 0;
				if (sb_putc(b, (char)((c >= 'A' && c <= 'Z') ? c + 32 : c)))
					return HARK_ERR_NOMEM;
			} else if (c == '\'') {
				/* possessive 's: drop; other apostrophes join */
				if (i + 1 < len && (name[i + 1] == 's' || name[i + 1] == 'S') &&
				    (i + 2 >= len || !is_alnum_ascii((unsigned char)name[i + 2]))) {
					i += 2;
					continue;
				}
			} else if (c == '.') {
				/* dropped without a break: "U.S." -> "us" */
			} else {
				if (c == ',') {
					if (*comma_tok < 0)
						*comma_tok = ntok;
					(*commas)++;
				}
				need_space = 1;
			}
			i++;
			continue;
		}
		uint32_t cp;
		size_t k = hark_textnorm_utf8_decode(name + i, len - i, &cp);
		if (cp == 0x2019 || cp == 0x2018) {
			if (i + k < len && (name[i + k] == 's' || name[i + k] == 'S') &&
			    (i + k + 1 >= len || !is_alnum_ascii((unsigned char)name[i + k + 1]))) {
				i += k + 1;
				continue;
			}
			i += k;
			continue;
		}
		if ((cp >= 0x2000 && cp <= 0x206F) || cp == 0x00A0 || cp == 0xFFFD ||
		    (cp >= 0xA1 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7) {
			need_space = 1;
			i += k;
			continue;
		}
		if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
			cp += 0x20;
		char enc[4];
		size_t el = hark_textnorm_utf8_encode(cp, enc);
		if (need_space && b->n > 0 && sb_putc(b, ' '))
			return HARK_ERR_NOMEM;
		if (need_space || b->n == 0)
			ntok++;
		need_space = 0;
		if (sb_puts(b, enc, el))
			return HARK_ERR_NOMEM;
		i += k;
	}
	return 0;
}

/* Splits s (modified in place) at spaces into toks (at most max). */
static size_t split_tokens(char *s, char **toks, size_t max)
{
	size_t n = 0;
	char *p = s;

	while (*p && n < max) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		toks[n++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

#define MAX_TOKS 128

static char *normalize_ti(const char *name, int ti)
{
	struct strbuf b = {0};
	long comma_tok;
	int commas;
	char *toks[MAX_TOKS];
	char *out = NULL;

	if (!name)
		name = "";
	if (fold_tokens(name, &b, &comma_tok, &commas) || sb_putc(&b, '\0'))
		goto out;
	size_t n = split_tokens(b.p, toks, MAX_TOKS);
	size_t first = 0, last = n;

	if (ti == T_PERSON && commas == 1 && comma_tok > 0 && (size_t)comma_tok < n) {
		char *rot[MAX_TOKS];
		size_t k = 0;
		for (size_t i = (size_t)comma_tok; i < n; i++)
			rot[k++] = toks[i];
		for (size_t i = 0; i < (size_t)comma_tok; i++)
			rot[k++] = toks[i];
		memcpy(toks, rot, n * sizeof(*toks));
	}
	if (last - first > 1 && strcmp(toks[first], "the") == 0)
		first++;
	if (ti == T_PERSON) {
		while (last - first > 1 && in_list(toks[first], strlen(toks[first]), person_titles))
			first++;
	} else {
		while (last - first > 1 &&
		       in_list(toks[last - 1], strlen(toks[last - 1]), org_suffixes))
			last--;
	}
	struct strbuf o = {0};
	if (sb_putc(&o, '\0'))
		goto out;
	o.n = 0;
	for (size_t i = first; i < last; i++) {
		if ((i > first && sb_putc(&o, ' ')) || sb_puts(&o, toks[i], strlen(toks[i]))) {
			free(o.p);
			goto out;
		}
	}
	out = o.p;
out:
	free(b.p);
	return out;
}

char *hark_graph_normalize_name(const char *name, const char *type)
{
	return normalize_ti(name, type_index(type));
}

/* Singular form of the final word of a normalized name (in place). */
static void singularize(char *s)
{
	char *w = strrchr(s, ' ');
	w = w ? w + 1 : s;
	size_t n = strlen(w);

	if (n <= 3)
		return;
	if (strcmp(w + n - 3, "ies") == 0) {
		w[n - 3] = 'y';
		w[n - 2] = '\0';
	} else if (n > 4 && (strcmp(w + n - 4, "sses") == 0 || strcmp(w + n - 4, "ches") == 0 ||
			     strcmp(w + n - 4, "shes") == 0)) {
		w[n - 2] = '\0';
	} else if (strcmp(w + n - 3, "xes") == 0 || strcmp(w + n - 3, "zes") == 0) {
		w[n - 2] = '\0';
	} else if (w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i') {
		w[n - 1] = '\0';
	}
}

/* Acronym key (lowercase letters) of an all-caps 2..8 letter name (dots
 * allowed: "W.H.O."), else 0. */
static int acronym_key(const char *name, char out[16])
{
	size_t k = 0;
	for (const char *p = name; *p; p++) {
		if (*p == '.')
			continue;
		if (*p < 'A' || *p > 'Z' || k >= 8)
			return 0;
		out[k++] = (char)(*p + 32);
	}
	out[k] = '\0';
	return k >= 2;
}

/* Initials of a normalized multi-word name, with (skip = 0) or without
 * (skip = 1) stop words; 0 when fewer than 2 letters or over 8. */
static int initials_key(const char *norm, int skip, char out[16])
{
	size_t k = 0, words = 0;
	const char *p = norm;

	while (*p) {
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		size_t wl = (size_t)(p - s);
		words++;
		if (!(skip && in_list(s, wl, acronym_skip))) {
			if (k >= 8)
				return 0;
			out[k++] = s[0];
		}
		while (*p == ' ')
			p++;
	}
	out[k] = '\0';
	return words >= 2 && k >= 2;
}

int hark_graph_same_entity(const char *a, const char *b, const char *type)
{
	int ti = type_index(type), same = 0;
	char *na = normalize_ti(a, ti), *nb = normalize_ti(b, ti);
	char ka[16], kb[16];

	if (!na || !nb)
		goto out;
	if (na[0] && strcmp(na, nb) == 0) {
		same = 1;
		goto out;
	}
	if (ti != T_PERSON) {
		if (ti != T_DATE) {
			if (acronym_key(a, ka) &&
			    ((initials_key(nb, 0, kb) && strcmp(ka, kb) == 0) ||
			     (initials_key(nb, 1, kb) && strcmp(ka, kb) == 0)))
				same = 1;
			if (acronym_key(b, ka) &&
			    ((initials_key(na, 0, kb) && strcmp(ka, kb) == 0) ||
			     (initials_key(na, 1, kb) && strcmp(ka, kb) == 0)))
				same = 1;
		}
		singularize(na);
		singularize(nb);
		if (na[0] && strcmp(na, nb) == 0)
			same = 1;
		goto out;
	}
	/* people */
	char *ta[MAX_TOKS], *tb[MAX_TOKS];
	size_t n1 = split_tokens(na, ta, MAX_TOKS), n2 = split_tokens(nb, tb, MAX_TOKS);
	if (!n1 || !n2)
		goto out;
	if (n1 == 1 || n2 == 1) {
		char **one = n1 == 1 ? ta : tb, **full = n1 == 1 ? tb : ta;
		size_t nf = n1 == 1 ? n2 : n1;
		same = strcmp(one[0], full[0]) == 0 || strcmp(one[0], full[nf - 1]) == 0;
		goto out;
	}
	if (strcmp(ta[n1 - 1], tb[n2 - 1]) != 0)
		goto out;
	if (strcmp(ta[0], tb[0]) == 0)
		same = 1;
	else if ((strlen(ta[0]) == 1 || strlen(tb[0]) == 1) && ta[0][0] == tb[0][0])
		same = 1;
out:
	free(na);
	free(nb);
	return same;
}

/* ---------------------------------------------------------- mutation ---- */

static int entity_add_mention(struct hark_graph_entity *e, const struct hark_graph_mention *m)
{
	e->mention_count++;
	if (!m)
		return 0;
	int rc = sorted_insert(&e->meetings, &e->n_meetings, MAX_MEETINGS,
			       m->meeting ? m->meeting : "");
	if (rc)
		return rc;
	if (e->n_mentions >= HARK_GRAPH_MAX_MENTIONS)
		return 0;
	struct hark_graph_mention *nm =
		realloc(e->mentions, (e->n_mentions + 1) * sizeof(*nm));
	if (!nm)
		return HARK_ERR_NOMEM;
	e->mentions = nm;
	rc = mention_copy(&nm[e->n_mentions], m);
	if (rc)
		return rc;
	e->n_mentions++;
	return 0;
}

static int entity_add_alias(struct hark_graph_entity *e, const char *s)
{
	if (!s || !s[0] || strcmp(s, e->name) == 0)
		return 0;
	return sorted_insert(&e->aliases, &e->n_aliases, MAX_ALIASES, s);
}

int hark_graph_add_entity(struct hark_graph *g, const char *name, const char *type,
			  const struct hark_graph_mention *m, size_t *index_out)
{
	int rc = 0, ti = type_index(type);
	const char *tname = type_names[ti];
	char *norm = NULL;
	size_t idx = SIZE_MAX;

	if (!g || !name || !name[strspn(name, " \t\r\n")])
		return HARK_ERR_INVALID_ARG;
	norm = normalize_ti(name, ti);
	if (!norm)
		return HARK_ERR_NOMEM;
	for (size_t i = g->n_entities; i-- > 0;)
		if (strcmp(g->entities[i].name, name) == 0 && strcmp(g->entities[i].type, tname) == 0) {
			idx = i;
			break;
		}
	for (size_t i = g->n_entities; idx == SIZE_MAX && norm[0] && i-- > 0;) {
		struct hark_graph_entity *e = &g->entities[i];
		if (strcmp(e->type, tname) != 0)
			continue;
		char *en = normalize_ti(e->name, ti);
		if (!en) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		int eq = strcmp(en, norm) == 0;
		free(en);
		if (eq) {
			idx = i;
			break;
		}
	}
	if (idx == SIZE_MAX) {
		rc = grow((void **)&g->entities, &g->cap_entities, g->n_entities + 1,
			  sizeof(*g->entities), HARK_GRAPH_MAX_ENTITIES);
		if (rc)
			goto out;
		struct hark_graph_entity *e = &g->entities[g->n_entities];
		memset(e, 0, sizeof(*e));
		e->name = strdup(name);
		e->type = strdup(tname);
		if (!e->name || !e->type) {
			entity_free(e);
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		idx = g->n_entities++;
	} else {
		rc = entity_add_alias(&g->entities[idx], name);
		if (rc)
			goto out;
	}
	if (m && m->surface) {
		rc = entity_add_alias(&g->entities[idx], m->surface);
		if (rc)
			goto out;
	}
	if (m && !m->surface) {
		struct hark_graph_mention c = *m;
		c.surface = (char *)name;
		rc = entity_add_mention(&g->entities[idx], &c);
	} else {
		rc = entity_add_mention(&g->entities[idx], m);
	}
	if (rc)
		goto out;
	if (index_out)
		*index_out = idx;
out:
	free(norm);
	return rc;
}

/* Lowercased, trimmed copy of a relation type (NULL: empty or no memory,
 * *empty tells which). */
static char *rel_type_norm(const char *t, int *empty)
{
	*empty = 0;
	if (!t)
		t = "";
	while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
		t++;
	size_t n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\n' || t[n - 1] == '\r'))
		n--;
	if (n == 0) {
		*empty = 1;
		return NULL;
	}
	char *r = strndup(t, n);
	if (r)
		for (char *p = r; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
	return r;
}

static int relation_add_evidence(struct hark_graph_relation *r, const struct hark_graph_mention *ev)
{
	if (!ev || r->n_evidence >= HARK_GRAPH_MAX_MENTIONS)
		return 0;
	struct hark_graph_mention *ne = realloc(r->evidence, (r->n_evidence + 1) * sizeof(*ne));
	if (!ne)
		return HARK_ERR_NOMEM;
	r->evidence = ne;
	int rc = mention_copy(&ne[r->n_evidence], ev);
	if (rc)
		return rc;
	r->n_evidence++;
	return 0;
}

int hark_graph_add_relation(struct hark_graph *g, size_t source, size_t target, const char *type,
			    const struct hark_graph_mention *ev)
{
	int empty, rc = 0;
	char *t;

	if (!g || source >= g->n_entities || target >= g->n_entities || source == target)
		return HARK_ERR_INVALID_ARG;
	t = rel_type_norm(type, &empty);
	if (!t)
		return empty ? HARK_ERR_INVALID_ARG : HARK_ERR_NOMEM;
	if (strcmp(t, "co_occurs") == 0 && source > target) {
		size_t x = source;
		source = target;
		target = x;
	}
	for (size_t i = g->n_relations; i-- > 0;) {
		struct hark_graph_relation *r = &g->relations[i];
		if (r->source == source && r->target == target && strcmp(r->type, t) == 0) {
			r->weight += 1;
			rc = relation_add_evidence(r, ev);
			goto out;
		}
	}
	rc = grow((void **)&g->relations, &g->cap_relations, g->n_relations + 1,
		  sizeof(*g->relations), HARK_GRAPH_MAX_RELATIONS);
	if (rc)
		goto out;
	struct hark_graph_relation *r = &g->relations[g->n_relations];
	memset(r, 0, sizeof(*r));
	r->source = source;
	r->target = target;
	r->type = t;
	t = NULL;
	r->weight = 1;
	g->n_relations++;
	rc = relation_add_evidence(r, ev);
out:
	free(t);
	return rc;
}

static int entity_copy(struct hark_graph_entity *d, const struct hark_graph_entity *s)
{
	memset(d, 0, sizeof(*d));
	d->id = dup_or_null(s->id);
	d->name = strdup(s->name ? s->name : "");
	d->type = strdup(s->type ? s->type : "concept");
	if ((s->id && !d->id) || !d->name || !d->type)
		goto nomem;
	if (s->n_aliases) {
		d->aliases = calloc(s->n_aliases, sizeof(char *));
		if (!d->aliases)
			goto nomem;
		for (; d->n_aliases < s->n_aliases; d->n_aliases++)
			if (!(d->aliases[d->n_aliases] = strdup(s->aliases[d->n_aliases])))
				goto nomem;
	}
	if (s->n_meetings) {
		d->meetings = calloc(s->n_meetings, sizeof(char *));
		if (!d->meetings)
			goto nomem;
		for (; d->n_meetings < s->n_meetings; d->n_meetings++)
			if (!(d->meetings[d->n_meetings] = strdup(s->meetings[d->n_meetings])))
				goto nomem;
	}
	if (s->n_mentions) {
		d->mentions = calloc(s->n_mentions, sizeof(*d->mentions));
		if (!d->mentions)
			goto nomem;
		for (; d->n_mentions < s->n_mentions; d->n_mentions++)
			if (mention_copy(&d->mentions[d->n_mentions], &s->mentions[d->n_mentions]))
				goto nomem;
	}
	d->mention_count = s->mention_count;
	return 0;
nomem:
	entity_free(d);
	return HARK_ERR_NOMEM;
}

static int relation_copy(struct hark_graph_relation *d, const struct hark_graph_relation *s,
			 size_t off)
{
	memset(d, 0, sizeof(*d));
	d->source = s->source + off;
	d->target = s->target + off;
	d->weight = s->weight;
	d->type = strdup(s->type ? s->type : "related_to");
	if (!d->type)
		goto nomem;
	if (s->n_evidence) {
		d->evidence = calloc(s->n_evidence, sizeof(*d->evidence));
		if (!d->evidence)
			goto nomem;
		for (; d->n_evidence < s->n_evidence; d->n_evidence++)
			if (mention_copy(&d->evidence[d->n_evidence], &s->evidence[d->n_evidence]))
				goto nomem;
	}
	return 0;
nomem:
	relation_free(d);
	return HARK_ERR_NOMEM;
}

int hark_graph_append(struct hark_graph *dst, const struct hark_graph *src)
{
	int rc;
	size_t off, ne0, nr0;

	if (!dst || !src)
		return HARK_ERR_INVALID_ARG;
	off = dst->n_entities;
	ne0 = dst->n_entities;
	nr0 = dst->n_relations;
	rc = grow((void **)&dst->entities, &dst->cap_entities, dst->n_entities + src->n_entities,
		  sizeof(*dst->entities), HARK_GRAPH_MAX_ENTITIES);
	if (!rc)
		rc = grow((void **)&dst->relations, &dst->cap_relations,
			  dst->n_relations + src->n_relations, sizeof(*dst->relations),
			  HARK_GRAPH_MAX_RELATIONS);
	if (rc)
		return rc;
	for (size_t i = 0; i < src->n_entities; i++) {
		rc = entity_copy(&dst->entities[dst->n_entities], &src->entities[i]);
		if (rc)
			goto fail;
		dst->n_entities++;
	}
	for (size_t i = 0; i < src->n_relations; i++) {
		if (src->relations[i].source >= src->n_entities ||
		    src->relations[i].target >= src->n_entities)
			continue;
		rc = relation_copy(&dst->relations[dst->n_relations], &src->relations[i], off);
		if (rc)
			goto fail;
		dst->n_relations++;
	}
	return 0;
fail:
	while (dst->n_entities > ne0)
		entity_free(&dst->entities[--dst->n_entities]);
	while (dst->n_relations > nr0)
		relation_free(&dst->relations[--dst->n_relations]);
	return rc;
}

/* -------------------------------------------------------- resolution ---- */

struct uf {
	size_t *parent;
	int *ctype; /* cluster type, valid at roots */
};

static size_t uf_find(struct uf *u, size_t x)
{
	while (u->parent[x] != x) {
		u->parent[x] = u->parent[u->parent[x]];
		x = u->parent[x];
	}
	return x;
}

/* Joins the clusters of a and b when their types are compatible; the root
 * is the smaller index (deterministic). Returns 1 when joined or already one. */
static int uf_union(struct uf *u, size_t a, size_t b)
{
	size_t ra = uf_find(u, a), rb = uf_find(u, b);
	if (ra == rb)
		return 1;
	if (!types_compatible(u->ctype[ra], u->ctype[rb]))
		return 0;
	int t = u->ctype[ra] == T_CONCEPT ? u->ctype[rb] : u->ctype[ra];
	if (rb < ra) {
		size_t x = ra;
		ra = rb;
		rb = x;
	}
	u->parent[rb] = ra;
	u->ctype[ra] = t;
	return 1;
}

struct kv {
	const char *key;
	size_t idx;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

struct einfo;
static int kv_last_first_cmp(const void *a, const void *b, void *ctx);

/* First index in sorted kv[0..n) with key >= k. */
static size_t kv_lower(const struct kv *kv, size_t n, const char *k)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(kv[mid].key, k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Per-entity matching data. */
struct einfo {
	char *norm;    /* normalized name */
	char *key;     /* norm, final word singular for non-persons */
	char *pbuf;    /* person token storage */
	char *ptok[MAX_TOKS];
	size_t np;
	char acr[16], ini0[16], ini1[16];
	int has_acr, has_ini0, has_ini1;
};

/* (last name, first name, index) order of full-name kv entries (key = last). */
static int kv_last_first_cmp(const void *a, const void *b, void *ctx)
{
	const struct kv *x = a, *y = b;
	const struct einfo *inf = ctx;
	int c = strcmp(x->key, y->key);
	if (!c)
		c = strcmp(inf[x->idx].ptok[0], inf[y->idx].ptok[0]);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Distinct roots among uf roots of kv[lo..hi) filtered by pred; returns the
 * unique one through *root or 0 when none/ambiguous. */
static int unique_root(struct uf *u, const struct kv *kv, size_t lo, size_t hi,
		       const struct einfo *inf, char initial, size_t *root)
{
	int found = 0;
	size_t r0 = 0;
	for (size_t i = lo; i < hi; i++) {
		const struct einfo *e = &inf[kv[i].idx];
		if (initial && e->ptok[0][0] != initial)
			continue;
		if (initial && strlen(e->ptok[0]) < 2)
			continue;
		size_t r = uf_find(u, kv[i].idx);
		if (!found) {
			r0 = r;
			found = 1;
		} else if (r != r0) {
			return 0;
		}
	}
	if (found)
		*root = r0;
	return found;
}

/* Candidate surface forms for the canonical name. */
struct cand {
	const char *s;
	size_t count;
	int comma;
};

static int cand_better(const struct cand *a, const struct cand *b)
{
	if (a->comma != b->comma)
		return a->comma < b->comma;
	size_t la = strlen(a->s), lb = strlen(b->s);
	if (la != lb)
		return la > lb;
	if (a->count != b->count)
		return a->count > b->count;
	return strcmp(a->s, b->s) < 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Entity order (type, name, old order). */
struct eord {
	const char *type, *name;
	size_t idx;
};

static int eord_cmp(const void *a, const void *b)
{
	const struct eord *x = a, *y = b;
	int c = strcmp(x->type, y->type);
	if (!c)
		c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

struct rord {
	const char *sid, *tid, *type;
	size_t idx;
};

static int rord_cmp(const void *a, const void *b)
{
	const struct rord *x = a, *y = b;
	int c = strcmp(x->sid, y->sid);
	if (!c)
		c = strcmp(x->type, y->type);
	if (!c)
		c = strcmp(x->tid, y->tid);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static char *make_slug(const char *type, const char *name)
{
	struct strbuf b = {0};
	int dash = 0;

	if (sb_puts(&b, type, strlen(type)) || sb_putc(&b, ':'))
		goto nomem;
	size_t base = b.n;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		unsigned char c = *p;
		if (is_alnum_ascii(c) || c >= 0x80) {
			if (dash && b.n > base && sb_putc(&b, '-'))
				goto nomem;
			dash = 0;
			if (sb_putc(&b, (char)((c >= 'A' && c <= 'Z') ? c + 32 : c)))
				goto nomem;
		} else if (c != '\'' && c != '.') {
			dash = 1;
		}
	}
	if (b.n == base && sb_putc(&b, 'x'))
		goto nomem;
	return b.p;
nomem:
	free(b.p);
	return NULL;
}

static void free_entities(struct hark_graph_entity *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++)
		entity_free(&e[i]);
	free(e);
}

static void free_relations(struct hark_graph_relation *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		relation_free(&r[i]);
	free(r);
}

/* Builds the merged entity of the cluster members[0..nm) into d. */
static int build_cluster(const struct hark_graph *g, const size_t *members, size_t nm, int ti,
			 struct hark_graph_entity *d)
{
	int rc = HARK_ERR_NOMEM;
	size_t na = 0, nmeet = 0, nmen = 0, total = 0;
	struct cand best = {0};
	const char **al = NULL, **mt = NULL;

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < nm; i++) {
		const struct hark_graph_entity *e = &g->entities[members[i]];
		na += e->n_aliases + 1;
		nmeet += e->n_meetings;
		total += e->mention_count;
	}
	al = malloc(na * sizeof(*al));
	mt = malloc((nmeet ? nmeet : 1) * sizeof(*mt));
	if (!al || !mt)
		goto out;
	na = 0;
	nmeet = 0;
	for (size_t i = 0; i < nm; i++) {
		const struct hark_graph_entity *e = &g->entities[members[i]];
		struct cand c = {e->name, e->mention_count, ti == T_PERSON && strchr(e->name, ',')};
		if (!best.s || cand_better(&c, &best))
			best = c;
		al[na++] = e->name;
		for (size_t k = 0; k < e->n_aliases; k++) {
			struct cand ca = {e->aliases[k], 0, ti == T_PERSON && strchr(e->aliases[k], ',')};
			if (cand_better(&ca, &best))
				best = ca;
			al[na++] = e->aliases[k];
		}
		for (size_t k = 0; k < e->n_meetings; k++)
			mt[nmeet++] = e->meetings[k];
	}
	d->name = strdup(best.s);
	d->type = strdup(type_names[ti]);
	if (!d->name || !d->type)
		goto out;
	qsort(al, na, sizeof(*al), cmp_str_ptr);
	d->aliases = malloc(na * sizeof(char *));
	if (!d->aliases)
		goto out;
	for (size_t i = 0; i < na && d->n_aliases < MAX_ALIASES; i++) {
		if (strcmp(al[i], d->name) == 0 || (i > 0 && strcmp(al[i], al[i - 1]) == 0))
			continue;
		if (!(d->aliases[d->n_aliases] = strdup(al[i])))
			goto out;
		d->n_aliases++;
	}
	if (nmeet) {
		qsort(mt, nmeet, sizeof(*mt), cmp_str_ptr);
		d->meetings = malloc(nmeet * sizeof(char *));
		if (!d->meetings)
			goto out;
		for (size_t i = 0; i < nmeet; i++) {
			if (i > 0 && strcmp(mt[i], mt[i - 1]) == 0)
				continue;
			if (!(d->meetings[d->n_meetings] = strdup(mt[i])))
				goto out;
			d->n_meetings++;
		}
	}
	for (size_t i = 0; i < nm; i++)
		nmen += g->entities[members[i]].n_mentions;
	if (nmen > HARK_GRAPH_MAX_MENTIONS)
		nmen = HARK_GRAPH_MAX_MENTIONS;
	if (nmen) {
		d->mentions = calloc(nmen, sizeof(*d->mentions));
		if (!d->mentions)
			goto out;
		for (size_t i = 0; i < nm && d->n_mentions < nmen; i++) {
			const struct hark_graph_entity *e = &g->entities[members[i]];
			for (size_t k = 0; k < e->n_mentions && d->n_mentions < nmen; k++) {
				if (mention_copy(&d->mentions[d->n_mentions], &e->mentions[k]))
					goto out;
				d->n_mentions++;
			}
		}
	}
	d->mention_count = total < d->n_mentions ? d->n_mentions : total;
	rc = 0;
out:
	free(al);
	free(mt);
	if (rc)
		entity_free(d);
	return rc;
}

int hark_graph_resolve(struct hark_graph *g, size_t *merged_out)
{
	int rc = HARK_ERR_NOMEM;
	size_t n = g ? g->n_entities : 0;
	struct einfo *inf = NULL;
	struct uf u = {0};
	struct kv *kv = NULL, *kfull = NULL, *kfirst = NULL, *klast = NULL;
	size_t *cl_of = NULL, *members = NULL, *cl_start = NULL, *cl_len = NULL, *fill = NULL;
	size_t n_cl = 0;
	struct hark_graph_entity *ne = NULL;
	struct eord *eo = NULL;
	size_t *newpos = NULL;
	struct hark_graph_relation *nr = NULL;
	size_t n_nr = 0;
	struct rord *ro = NULL;
	struct smap ids = {0};
	struct hark_graph_relation *fr = NULL;
	size_t n_fr = 0;

	if (!g)
		return HARK_ERR_INVALID_ARG;
	inf = calloc(n ? n : 1, sizeof(*inf));
	u.parent = malloc((n ? n : 1) * sizeof(size_t));
	u.ctype = malloc((n ? n : 1) * sizeof(int));
	kv = malloc((3 * n + 1) * sizeof(*kv));
	if (!inf || !u.parent || !u.ctype || !kv)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct hark_graph_entity *e = &g->entities[i];
		int ti = type_index(e->type);
		u.parent[i] = i;
		u.ctype[i] = ti;
		inf[i].norm = normalize_ti(e->name, ti);
		inf[i].key = inf[i].norm ? strdup(inf[i].norm) : NULL;
		if (!inf[i].key)
			goto out;
		if (ti != T_PERSON && ti != T_DATE)
			singularize(inf[i].key);
		if (ti == T_PERSON) {
			inf[i].pbuf = strdup(inf[i].norm);
			if (!inf[i].pbuf)
				goto out;
			inf[i].np = split_tokens(inf[i].pbuf, inf[i].ptok, MAX_TOKS);
		} else if (ti != T_DATE) {
			inf[i].has_acr = acronym_key(e->name, inf[i].acr);
			inf[i].has_ini0 = initials_key(inf[i].norm, 0, inf[i].ini0);
			inf[i].has_ini1 = initials_key(inf[i].norm, 1, inf[i].ini1) &&
					  strcmp(inf[i].ini0, inf[i].ini1) != 0;
		}
	}

	/* A: equal keys (normalized, singular final word) */
	size_t nk = 0;
	for (size_t i = 0; i < n; i++)
		if (inf[i].key[0])
			kv[nk++] = (struct kv){inf[i].key, i};
	qsort(kv, nk, sizeof(*kv), kv_cmp);
	for (size_t a = 0; a < nk;) {
		size_t b = a + 1;
		while (b < nk && strcmp(kv[b].key, kv[a].key) == 0)
			b++;
		for (size_t i = a + 1; i < b; i++)
			for (size_t j = a; j < i; j++) /* first compatible earlier member */
				if (uf_union(&u, kv[j].idx, kv[i].idx))
					break;
		a = b;
	}

	/* B: acronyms = initials of a multi-word name with a unique cluster */
	nk = 0;
	for (size_t i = 0; i < n; i++) {
		if (inf[i].has_ini0)
			kv[nk++] = (struct kv){inf[i].ini0, i};
		if (inf[i].has_ini1)
			kv[nk++] = (struct kv){inf[i].ini1, i};
	}
	qsort(kv, nk, sizeof(*kv), kv_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!inf[i].has_acr)
			continue;
		size_t lo = kv_lower(kv, nk, inf[i].acr), hi = lo, root = 0;
		while (hi < nk && strcmp(kv[hi].key, inf[i].acr) == 0)
			hi++;
		int found = 0, amb = 0;
		for (size_t k = lo; k < hi; k++) {
			if (!types_compatible(u.ctype[uf_find(&u, kv[k].idx)], u.ctype[uf_find(&u, i)]))
				continue;
			size_t r = uf_find(&u, kv[k].idx);
			if (!found) {
				root = r;
				found = 1;
			} else if (r != root) {
				amb = 1;
			}
		}
		if (found && !amb)
			uf_union(&u, i, root);
	}

	/* C: people. Full names (first and last of 2+ letters) sorted by (last,
	 * first); equal pairs join (middle names ignored); then one entry per
	 * distinct pair serves the initial and lone-name lookups. */
	size_t nfull = 0, nu = 0;
	kfull = malloc((n + 1) * sizeof(*kfull));
	kfirst = malloc((n + 1) * sizeof(*kfirst));
	klast = malloc((n + 1) * sizeof(*klast));
	if (!kfull || !kfirst || !klast)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (type_index(g->entities[i].type) != T_PERSON || inf[i].np < 2)
			continue;
		if (strlen(inf[i].ptok[inf[i].np - 1]) < 2 || strlen(inf[i].ptok[0]) < 2)
			continue;
		kfull[nfull++] = (struct kv){inf[i].ptok[inf[i].np - 1], i};
	}
	qsort_r(kfull, nfull, sizeof(*kfull), kv_last_first_cmp, inf);
	for (size_t i = 0; i < nfull; i++) {
		if (nu > 0 && strcmp(kfull[i].key, klast[nu - 1].key) == 0 &&
		    strcmp(inf[kfull[i].idx].ptok[0], inf[klast[nu - 1].idx].ptok[0]) == 0) {
			uf_union(&u, klast[nu - 1].idx, kfull[i].idx);
			continue;
		}
		klast[nu++] = kfull[i];
	}
	for (size_t i = 0; i < nu; i++)
		kfirst[i] = (struct kv){inf[klast[i].idx].ptok[0], klast[i].idx};
	qsort(kfirst, nu, sizeof(*kfirst), kv_cmp);
	/* initials: "J. Doe" into the unique "J* Doe" */
	for (size_t i = 0; i < n; i++) {
		if (type_index(g->entities[i].type) != T_PERSON || inf[i].np < 2 ||
		    strlen(inf[i].ptok[0]) != 1)
			continue;
		const char *last = inf[i].ptok[inf[i].np - 1];
		size_t lo = kv_lower(klast, nu, last), hi = lo, root;
		while (hi < nu && strcmp(klast[hi].key, last) == 0)
			hi++;
		if (unique_root(&u, klast, lo, hi, inf, inf[i].ptok[0][0], &root))
			uf_union(&u, i, root);
	}
	/* lone names: into the unique full name with that first or last name */
	for (size_t i = 0; i < n; i++) {
		if (type_index(g->entities[i].type) != T_PERSON || inf[i].np != 1)
			continue;
		const char *w = inf[i].ptok[0];
		size_t lo1 = kv_lower(kfirst, nu, w), hi1 = lo1;
		size_t lo2 = kv_lower(klast, nu, w), hi2 = lo2;
		size_t r1 = 0, r2 = 0;
		while (hi1 < nu && strcmp(kfirst[hi1].key, w) == 0)
			hi1++;
		while (hi2 < nu && strcmp(klast[hi2].key, w) == 0)
			hi2++;
		int f1 = hi1 > lo1, f2 = hi2 > lo2;
		if (f1 && !unique_root(&u, kfirst, lo1, hi1, inf, 0, &r1))
			continue;
		if (f2 && !unique_root(&u, klast, lo2, hi2, inf, 0, &r2))
			continue;
		if (f1 && f2 && r1 != r2)
			continue;
		if (f1 || f2)
			uf_union(&u, i, f1 ? r1 : r2);
	}

	/* clusters, in order of their smallest member */
	cl_of = malloc((n + 1) * sizeof(size_t));
	cl_start = calloc(n + 1, sizeof(size_t));
	cl_len = calloc(n + 1, sizeof(size_t));
	fill = calloc(n + 1, sizeof(size_t));
	members = malloc((n + 1) * sizeof(size_t));
	if (!cl_of || !cl_start || !cl_len || !fill || !members)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t r = uf_find(&u, i);
		if (r == i)
			cl_of[i] = n_cl++;
		else
			cl_of[i] = cl_of[r]; /* r < i: root is the smallest member */
		cl_len[cl_of[i]]++;
	}
	for (size_t c = 1; c < n_cl; c++)
		cl_start[c] = cl_start[c - 1] + cl_len[c - 1];
	for (size_t i = 0; i < n; i++)
		members[cl_start[cl_of[i]] + fill[cl_of[i]]++] = i;

	ne = calloc(n_cl ? n_cl : 1, sizeof(*ne));
	if (!ne)
		goto out;
	for (size_t c = 0; c < n_cl; c++) {
		size_t root = members[cl_start[c]];
		rc = build_cluster(g, &members[cl_start[c]], cl_len[c], u.ctype[uf_find(&u, root)],
				   &ne[c]);
		if (rc)
			goto out;
	}
	rc = HARK_ERR_NOMEM;

	/* order (type, name) and ids */
	eo = malloc((n_cl + 1) * sizeof(*eo));
	newpos = malloc((n_cl + 1) * sizeof(size_t));
	if (!eo || !newpos || smap_init(&ids, n_cl))
		goto out;
	for (size_t c = 0; c < n_cl; c++)
		eo[c] = (struct eord){ne[c].type, ne[c].name, c};
	qsort(eo, n_cl, sizeof(*eo), eord_cmp);
	for (size_t k = 0; k < n_cl; k++)
		newpos[eo[k].idx] = k;
	for (size_t k = 0; k < n_cl; k++) {
		struct hark_graph_entity *e = &ne[eo[k].idx];
		char *id = make_slug(e->type, e->name);
		if (!id)
			goto out;
		size_t slot = smap_slot(&ids, id);
		for (unsigned sfx = 2; ids.keys[slot]; sfx++) {
			size_t bl = strlen(id);
			char *id2 = malloc(bl + 24);
			if (!id2) {
				free(id);
				goto out;
			}
			char *dash = strrchr(id, '-');
			/* strip a suffix added on the previous round */
			if (sfx > 2 && dash)
				*dash = '\0';
			snprintf(id2, bl + 24, "%s-%u", id, sfx);
			free(id);
			id = id2;
			slot = smap_slot(&ids, id);
		}
		e->id = id;
		ids.keys[slot] = id;
		ids.vals[slot] = k;
	}

	/* relations: re-point, drop self-loops, sort, de-duplicate */
	nr = calloc(g->n_relations + 1, sizeof(*nr));
	if (!nr)
		goto out;
	for (size_t i = 0; i < g->n_relations; i++) {
		const struct hark_graph_relation *r = &g->relations[i];
		if (r->source >= n || r->target >= n)
			continue;
		size_t s = newpos[cl_of[r->source]], t = newpos[cl_of[r->target]];
		if (s == t)
			continue;
		if (relation_copy(&nr[n_nr], r, 0))
			goto out;
		n_nr++;
		if (strcmp(nr[n_nr - 1].type, "co_occurs") == 0 && s > t) {
			size_t x = s;
			s = t;
			t = x;
		}
		nr[n_nr - 1].source = s;
		nr[n_nr - 1].target = t;
	}
	ro = malloc((n_nr + 1) * sizeof(*ro));
	fr = calloc(n_nr + 1, sizeof(*fr));
	if (!ro || !fr)
		goto out;
	for (size_t i = 0; i < n_nr; i++)
		ro[i] = (struct rord){ne[eo[nr[i].source].idx].id, ne[eo[nr[i].target].idx].id,
				      nr[i].type, i};
	qsort(ro, n_nr, sizeof(*ro), rord_cmp);
	for (size_t k = 0; k < n_nr; k++) {
		struct hark_graph_relation *r = &nr[ro[k].idx];
		if (n_fr > 0 && fr[n_fr - 1].source == r->source && fr[n_fr - 1].target == r->target &&
		    strcmp(fr[n_fr - 1].type, r->type) == 0) {
			struct hark_graph_relation *d = &fr[n_fr - 1];
			d->weight += r->weight;
			for (size_t e = 0; e < r->n_evidence; e++) {
				if (d->n_evidence < HARK_GRAPH_MAX_MENTIONS) {
					struct hark_graph_mention *ev =
						realloc(d->evidence, (d->n_evidence + 1) * sizeof(*ev));
					if (!ev)
						goto out;
					d->evidence = ev;
					ev[d->n_evidence++] = r->evidence[e];
				} else {
					mention_free(&r->evidence[e]);
				}
			}
			free(r->evidence);
			free(r->type);
			memset(r, 0, sizeof(*r));
		} else {
			fr[n_fr++] = *r;
			memset(r, 0, sizeof(*r));
		}
	}

	/* install */
	struct hark_graph_entity *sorted = malloc((n_cl ? n_cl : 1) * sizeof(*sorted));
	if (!sorted)
		goto out;
	for (size_t k = 0; k < n_cl; k++)
		sorted[k] = ne[eo[k].idx];
	free(ne);
	ne = NULL;
	for (size_t i = 0; i < g->n_entities; i++)
		entity_free(&g->entities[i]);
	free(g->entities);
	for (size_t i = 0; i < g->n_relations; i++)
		relation_free(&g->relations[i]);
	free(g->relations);
	g->entities = sorted;
	g->n_entities = g->cap_entities = n_cl;
	g->relations = fr;
	g->n_relations = n_fr;
	g->cap_relations = n_nr + 1;
	fr = NULL;
	n_fr = 0;
	if (merged_out)
		*merged_out = n - n_cl;
	rc = 0;
out:
	if (inf)
		for (size_t i = 0; i < n; i++) {
			free(inf[i].norm);
			free(inf[i].key);
			free(inf[i].pbuf);
		}
	free(inf);
	free(u.parent);
	free(u.ctype);
	free(kv);
	free(kfull);
	free(kfirst);
	free(klast);
	free(cl_of);
	free(cl_start);
	free(cl_len);
	free(fill);
	free(members);
	free_entities(ne, n_cl);
	free(eo);
	free(newpos);
	free_relations(nr, n_nr);
	free(ro);
	free_relations(fr, n_fr);
	smap_free(&ids);
	return rc;
}

/* ---------------------------------------------------------------- JSON ---- */

static int jset(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *mention_json(const struct hark_graph_mention *m, int with_surface)
{
	json_t *o = json_object();
	int bad = !o;
	if (o) {
		bad |= jset(o, "meeting", json_string(m->meeting ? m->meeting : ""));
		if (with_surface)
			bad |= jset(o, "surface", jstr_or_null(m->surface));
		bad |= jset(o, "quote", jstr_or_null(m->quote));
		bad |= jset(o, "chunk", json_integer(m->chunk < 0 ? -1 : m->chunk));
		bad |= jset(o, "turn", json_integer(m->turn < 0 ? -1 : m->turn));
		bad |= jset(o, "start", m->start_s >= 0 ? json_real(m->start_s) : json_null());
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *str_array(char **a, size_t n)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, json_string(a[i]))) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

json_t *hark_graph_to_json(const struct hark_graph *g)
{
	json_t *root = json_object(), *ents = json_array(), *rels = json_array(), *st = json_object();
	int bad = !root || !ents || !rels || !st;

	if (bad)
		goto out;
	for (size_t i = 0; i < g->n_entities && !bad; i++) {
		const struct hark_graph_entity *e = &g->entities[i];
		json_t *o = json_object(), *ms = json_array();
		bad |= !o || !ms;
		if (!bad) {
			bad |= jset(o, "id", json_string(e->id ? e->id : ""));
			bad |= jset(o, "name", json_string(e->name));
			bad |= jset(o, "type", json_string(e->type));
			bad |= jset(o, "aliases", str_array(e->aliases, e->n_aliases));
			bad |= jset(o, "mention_count", json_integer((json_int_t)e->mention_count));
			bad |= jset(o, "meetings", str_array(e->meetings, e->n_meetings));
			for (size_t k = 0; k < e->n_mentions && !bad; k++)
				bad |= json_array_append_new(ms, mention_json(&e->mentions[k], 1));
		}
		if (!bad) {
			bad |= json_object_set_new(o, "mentions", ms);
			ms = NULL;
			bad |= json_array_append_new(ents, o);
			o = NULL;
		}
		json_decref(o);
		json_decref(ms);
	}
	for (size_t i = 0; i < g->n_relations && !bad; i++) {
		const struct hark_graph_relation *r = &g->relations[i];
		const char *sid = r->source < g->n_entities ? g->entities[r->source].id : NULL;
		const char *tid = r->target < g->n_entities ? g->entities[r->target].id : NULL;
		json_t *o = json_object(), *ev = json_array();
		bad |= !o || !ev;
		if (!bad) {
			bad |= jset(o, "source", json_string(sid ? sid : ""));
			bad |= jset(o, "target", json_string(tid ? tid : ""));
			bad |= jset(o, "type", json_string(r->type));
			bad |= jset(o, "weight", json_real(r->weight));
			for (size_t k = 0; k < r->n_evidence && !bad; k++)
				bad |= json_array_append_new(ev, mention_json(&r->evidence[k], 0));
		}
		if (!bad) {
			bad |= json_object_set_new(o, "evidence", ev);
			ev = NULL;
			bad |= json_array_append_new(rels, o);
			o = NULL;
		}
		json_decref(o);
		json_decref(ev);
	}
	if (!bad) {
		bad |= jset(st, "entities", json_integer((json_int_t)g->n_entities));
		bad |= jset(st, "relations", json_integer((json_int_t)g->n_relations));
		bad |= json_object_set_new(root, "entities", ents);
		ents = NULL;
		bad |= json_object_set_new(root, "relations", rels);
		rels = NULL;
		bad |= json_object_set_new(root, "stats", st);
		st = NULL;
	}
out:
	json_decref(ents);
	json_decref(rels);
	json_decref(st);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static int mention_from_json(const json_t *o, struct hark_graph_mention *m, const char *where,
			     char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	const json_t *mt = json_object_get(o, "meeting"), *sf = json_object_get(o, "surface"),
		     *q = json_object_get(o, "quote"), *ch = json_object_get(o, "chunk"),
		     *tu = json_object_get(o, "turn"), *st = json_object_get(o, "start");
	if (!json_is_object(o) || !json_is_string(mt) || (sf && !json_is_string(sf) && !json_is_null(sf)) ||
	    (q && !json_is_string(q) && !json_is_null(q)) || (ch && !json_is_integer(ch)) ||
	    (tu && !json_is_integer(tu)) || (st && !json_is_number(st) && !json_is_null(st))) {
		hark_errbuf_set(err, errlen, "%s: malformed mention", where);
		return HARK_ERR_FORMAT;
	}
	struct hark_graph_mention c = {
		.meeting = (char *)json_string_value(mt),
		.surface = json_is_string(sf) ? (char *)json_string_value(sf) : NULL,
		.quote = json_is_string(q) ? (char *)json_string_value(q) : NULL,
		.chunk = ch ? (long)json_integer_value(ch) : -1,
		.turn = tu ? (long)json_integer_value(tu) : -1,
		.start_s = json_is_number(st) ? json_number_value(st) : -1.0,
	};
	return mention_copy(m, &c);
}

static int str_array_from_json(const json_t *a, char ***out, size_t *n, size_t limit,
			       const char *where, char *err, size_t errlen)
{
	if (!a)
		return 0;
	if (!json_is_array(a)) {
		hark_errbuf_set(err, errlen, "%s: expected an array", where);
		return HARK_ERR_FORMAT;
	}
	size_t k;
	const json_t *v;
	json_array_foreach(a, k, v)
	{
		if (!json_is_string(v)) {
			hark_errbuf_set(err, errlen, "%s/%zu: expected a string", where, k);
			return HARK_ERR_FORMAT;
		}
		int rc = sorted_insert(out, n, limit, json_string_value(v));
		if (rc)
			return rc;
	}
	return 0;
}

int hark_graph_from_json(const json_t *j, struct hark_graph *out, char *err, size_t errlen)
{
	int rc = HARK_ERR_FORMAT;
	const json_t *ents = json_object_get(j, "entities"), *rels = json_object_get(j, "relations");
	size_t ne0, nr0, k;
	const json_t *v;
	struct smap ids = {0};
	char where[96];

	if (!out)
		return HARK_ERR_INVALID_ARG;
	ne0 = out->n_entities;
	nr0 = out->n_relations;
	if (!json_is_object(j) || !json_is_array(ents) || (rels && !json_is_array(rels))) {
		hark_errbuf_set(err, errlen, "%s: expected an array",
				!json_is_object(j) ? "/" : !json_is_array(ents) ? "/entities" : "/relations");
		return HARK_ERR_FORMAT;
	}
	json_array_foreach(ents, k, v)
	{
		const json_t *id = json_object_get(v, "id"), *nm = json_object_get(v, "name"),
			     *ty = json_object_get(v, "type"), *mc = json_object_get(v, "mention_count"),
			     *ms = json_object_get(v, "mentions");
		snprintf(where, sizeof(where), "/entities/%zu", k);
		if (!json_is_object(v) || !json_is_string(nm) || !json_string_length(nm) ||
		    (ty && !json_is_string(ty)) || (id && !json_is_string(id)) ||
		    (mc && !json_is_integer(mc)) || (ms && !json_is_array(ms))) {
			hark_errbuf_set(err, errlen, "%s: missing or malformed name/type/id/mentions",
					where);
			rc = HARK_ERR_FORMAT;
			goto fail;
		}
		rc = grow((void **)&out->entities, &out->cap_entities, out->n_entities + 1,
			  sizeof(*out->entities), HARK_GRAPH_MAX_ENTITIES);
		if (rc)
			goto fail;
		struct hark_graph_entity *e = &out->entities[out->n_entities];
		memset(e, 0, sizeof(*e));
		out->n_entities++;
		e->id = id && json_string_length(id) ? strdup(json_string_value(id)) : NULL;
		e->name = strdup(json_string_value(nm));
		e->type = strdup(type_names[type_index(ty ? json_string_value(ty) : NULL)]);
		if ((id && json_string_length(id) && !e->id) || !e->name || !e->type) {
			rc = HARK_ERR_NOMEM;
			goto fail;
		}
		snprintf(where, sizeof(where), "/entities/%zu/aliases", k);
		rc = str_array_from_json(json_object_get(v, "aliases"), &e->aliases, &e->n_aliases,
					 MAX_ALIASES, where, err, errlen);
		if (!rc) {
			snprintf(where, sizeof(where), "/entities/%zu/meetings", k);
			rc = str_array_from_json(json_object_get(v, "meetings"), &e->meetings,
						 &e->n_meetings, MAX_MEETINGS, where, err, errlen);
		}
		if (rc)
			goto fail;
		size_t nms = ms ? json_array_size(ms) : 0;
		if (nms > HARK_GRAPH_MAX_MENTIONS)
			nms = HARK_GRAPH_MAX_MENTIONS;
		if (nms) {
			e->mentions = calloc(nms, sizeof(*e->mentions));
			if (!e->mentions) {
				rc = HARK_ERR_NOMEM;
				goto fail;
			}
			for (size_t i = 0; i < nms; i++) {
				snprintf(where, sizeof(where), "/entities/%zu/mentions/%zu", k, i);
				rc = mention_from_json(json_array_get(ms, i), &e->mentions[i], where, err,
						       errlen);
				if (rc)
					goto fail;
				e->n_mentions++;
			}
		}
		json_int_t cnt = mc ? json_integer_value(mc) : 0;
		e->mention_count = cnt > (json_int_t)e->n_mentions ? (size_t)cnt : e->n_mentions;
	}
	rc = smap_init(&ids, out->n_entities - ne0);
	if (rc)
		goto fail;
	for (size_t i = ne0; i < out->n_entities; i++) {
		if (!out->entities[i].id)
			continue;
		size_t s = smap_slot(&ids, out->entities[i].id);
		if (!ids.keys[s]) {
			ids.keys[s] = out->entities[i].id;
			ids.vals[s] = i;
		}
	}
	if (rels)
		json_array_foreach(rels, k, v)
		{
			const json_t *so = json_object_get(v, "source"), *ta = json_object_get(v, "target"),
				     *ty = json_object_get(v, "type"), *w = json_object_get(v, "weight"),
				     *ev = json_object_get(v, "evidence");
			snprintf(where, sizeof(where), "/relations/%zu", k);
			if (!json_is_object(v) || !json_is_string(so) || !json_is_string(ta) ||
			    !json_is_string(ty) || !json_string_length(ty) || (w && !json_is_number(w)) ||
			    (ev && !json_is_array(ev))) {
				hark_errbuf_set(err, errlen, "%s: missing or malformed source/target/type",
						where);
				rc = HARK_ERR_FORMAT;
				goto fail;
			}
			size_t s1 = smap_slot(&ids, json_string_value(so));
			size_t s2 = smap_slot(&ids, json_string_value(ta));
			if (!ids.keys[s1] || !ids.keys[s2]) {
				hark_errbuf_set(err, errlen, "%s: unknown entity id \"%s\"", where,
						!ids.keys[s1] ? json_string_value(so) : json_string_value(ta));
				rc = HARK_ERR_FORMAT;
				goto fail;
			}
			rc = grow((void **)&out->relations, &out->cap_relations, out->n_relations + 1,
				  sizeof(*out->relations), HARK_GRAPH_MAX_RELATIONS);
			if (rc)
				goto fail;
			struct hark_graph_relation *r = &out->relations[out->n_relations];
			memset(r, 0, sizeof(*r));
			out->n_relations++;
			r->source = ids.vals[s1];
			r->target = ids.vals[s2];
			r->weight = w ? json_number_value(w) : 1.0;
			r->type = strdup(json_string_value(ty));
			if (!r->type) {
				rc = HARK_ERR_NOMEM;
				goto fail;
			}
			size_t nev = ev ? json_array_size(ev) : 0;
			if (nev > HARK_GRAPH_MAX_MENTIONS)
				nev = HARK_GRAPH_MAX_MENTIONS;
			if (nev) {
				r->evidence = calloc(nev, sizeof(*r->evidence));
				if (!r->evidence) {
					rc = HARK_ERR_NOMEM;
					goto fail;
				}
				for (size_t i = 0; i < nev; i++) {
					snprintf(where, sizeof(where), "/relations/%zu/evidence/%zu", k, i);
					rc = mention_from_json(json_array_get(ev, i), &r->evidence[i],
							       where, err, errlen);
					if (rc)
						goto fail;
					r->n_evidence++;
				}
			}
		}
	smap_free(&ids);
	return 0;
fail:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	else if (rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "graph size limit exceeded");
	smap_free(&ids);
	while (out->n_entities > ne0)
		entity_free(&out->entities[--out->n_entities]);
	while (out->n_relations > nr0)
		relation_free(&out->relations[--out->n_relations]);
	return rc;
}

/* ------------------------------------------------------------ GraphML ---- */

static void xml_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
				fputc(' ', f);
			else
				fputc(*s, f);
		}
	}
}

int hark_graph_write_graphml(const struct hark_graph *g, FILE *f)
{
	if (!g || !f)
		return HARK_ERR_INVALID_ARG;
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n"
	      "  <key id=\"name\" for=\"node\" attr.name=\"name\" attr.type=\"string\"/>\n"
	      "  <key id=\"type\" for=\"node\" attr.name=\"type\" attr.type=\"string\"/>\n"
	      "  <key id=\"aliases\" for=\"node\" attr.name=\"aliases\" attr.type=\"string\"/>\n"
	      "  <key id=\"mention_count\" for=\"node\" attr.name=\"mention_count\" "
	      "attr.type=\"long\"/>\n"
	      "  <key id=\"rtype\" for=\"edge\" attr.name=\"type\" attr.type=\"string\"/>\n"
	      "  <key id=\"weight\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n"
	      "  <graph id=\"hark\" edgedefault=\"directed\">\n",
	      f);
	for (size_t i = 0; i < g->n_entities; i++) {
		const struct hark_graph_entity *e = &g->entities[i];
		fputs("    <node id=\"", f);
		xml_escape(f, e->id ? e->id : "");
		fputs("\">\n      <data key=\"name\">", f);
		xml_escape(f, e->name);
		fputs("</data>\n      <data key=\"type\">", f);
		xml_escape(f, e->type);
		fputs("</data>\n      <data key=\"aliases\">", f);
		for (size_t k = 0; k < e->n_aliases; k++) {
			if (k)
				fputc(';', f);
			xml_escape(f, e->aliases[k]);
		}
		fprintf(f, "</data>\n      <data key=\"mention_count\">%zu</data>\n    </node>\n",
			e->mention_count);
	}
	for (size_t i = 0; i < g->n_relations; i++) {
		const struct hark_graph_relation *r = &g->relations[i];
		if (r->source >= g->n_entities || r->target >= g->n_entities)
			continue;
		fprintf(f, "    <edge id=\"e%zu\" source=\"", i);
		xml_escape(f, g->entities[r->source].id ? g->entities[r->source].id : "");
		fputs("\" target=\"", f);
		xml_escape(f, g->entities[r->target].id ? g->entities[r->target].id : "");
		fputs("\">\n      <data key=\"rtype\">", f);
		xml_escape(f, r->type);
		fprintf(f, "</data>\n      <data key=\"weight\">%.17g</data>\n    </edge>\n", r->weight);
	}
	fputs("  </graph>\n</graphml>\n", f);
	return (ferror(f) || fflush(f)) ? HARK_ERR_IO : 0;
}

/* --------------------------------------------------------- Neo4j CSV ---- */

/* One CSV field, quoted when it holds a comma, quote or separator; line
 * breaks become spaces (neo4j-admin reads one record per line by default).
 * In array fields (arr) a ';' inside an element becomes ','. */
static void csv_field(FILE *f, const char *s, int arr)
{
	int q = 0;
	for (const char *p = s; p && *p; p++)
		if (*p == ',' || *p == '"' || *p == ';' || *p == '\n' || *p == '\r')
			q = 1;
	if (q)
		fputc('"', f);
	for (const char *p = s; p && *p; p++) {
		if (*p == '"')
			fputs("\"\"", f);
		else if (*p == '\n' || *p == '\r')
			fputc(' ', f);
		else if (arr && *p == ';')
			fputc(',', f);
		else
			fputc(*p, f);
	}
	if (q)
		fputc('"', f);
}

static void csv_array(FILE *f, char **a, size_t n)
{
	int q = 0;
	for (size_t i = 0; i < n; i++)
		for (const char *p = a[i]; *p; p++)
			if (*p == ',' || *p == '"' || *p == ';' || *p == '\n' || *p == '\r')
				q = 1;
	q |= n > 1;
	if (q)
		fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(';', f);
		for (const char *p = a[i]; *p; p++) {
			if (*p == '"')
				fputs("\"\"", f);
			else if (*p == '\n' || *p == '\r')
				fputc(' ', f);
			else if (*p == ';')
				fputc(',', f);
			else
				fputc(*p, f);
		}
	}
	if (q)
		fputc('"', f);
}

int hark_graph_write_neo4j_csv(const struct hark_graph *g, FILE *nodes, FILE *rels)
{
	if (!g || !nodes || !rels)
		return HARK_ERR_INVALID_ARG;
	fputs("id:ID,name,aliases:string[],mentions:int,meetings:string[],:LABEL\n", nodes);
	for (size_t i = 0; i < g->n_entities; i++) {
		const struct hark_graph_entity *e = &g->entities[i];
		char label[32];
		snprintf(label, sizeof(label), "%s", e->type);
		if (label[0] >= 'a' && label[0] <= 'z')
			label[0] = (char)(label[0] - 32);
		csv_field(nodes, e->id ? e->id : "", 0);
		fputc(',', nodes);
		csv_field(nodes, e->name, 0);
		fputc(',', nodes);
		csv_array(nodes, e->aliases, e->n_aliases);
		fprintf(nodes, ",%zu,", e->mention_count);
		csv_array(nodes, e->meetings, e->n_meetings);
		fputc(',', nodes);
		csv_field(nodes, label, 0);
		fputc('\n', nodes);
	}
	fputs(":START_ID,:END_ID,:TYPE,weight:double,evidence\n", rels);
	for (size_t i = 0; i < g->n_relations; i++) {
		const struct hark_graph_relation *r = &g->relations[i];
		if (r->source >= g->n_entities || r->target >= g->n_entities)
			continue;
		char t[128];
		size_t k = 0;
		int us = 0;
		for (const char *p = r->type; *p && k + 2 < sizeof(t); p++) {
			unsigned char c = (unsigned char)*p;
			if (is_alnum_ascii(c)) {
				if (us && k > 0)
					t[k++] = '_';
				us = 0;
				t[k++] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c);
			} else {
				us = 1;
			}
		}
		if (k == 0)
			t[k++] = 'R';
		t[k] = '\0';
		csv_field(rels, g->entities[r->source].id ? g->entities[r->source].id : "", 0);
		fputc(',', rels);
		csv_field(rels, g->entities[r->target].id ? g->entities[r->target].id : "", 0);
		fprintf(rels, ",%s,%.17g,", t, r->weight);
		csv_field(rels, r->n_evidence && r->evidence[0].quote ? r->evidence[0].quote : "", 0);
		fputc('\n', rels);
	}
	if (ferror(nodes) || ferror(rels) || fflush(nodes) || fflush(rels))
		return HARK_ERR_IO;
	return 0;
}
