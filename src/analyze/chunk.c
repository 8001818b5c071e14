/*
 * Transcript chunker (see chunk.h for the contract). Three stages: (1) every
 * input turn is cleaned (control characters to spaces, short bracketed
 * annotations removed, whitespace collapsed) and dropped when it carries no
 * content word; (2) each kept turn is cut into "atoms" — its sentences, and
 * for a sentence longer than the budget its words, and for a word longer
 * than the budget pieces of it — each with its token count, so that the
 * token count of any run of atoms is the sum of theirs (exact when atoms meet
 * at whitespace, an upper bound inside a split word); (3) a greedy packer
 * fills each chunk with whole turns while they fit (falling back to atoms
 * only for a turn longer than the budget, or to fill a chunk that would
 * otherwise be nearly empty), after an overlap taken from the tail of the
 * previous chunk. Pieces are kept as (turn, atom range) until rendering, so
 * the chunk text is copied exactly once.
 */
#include "analyze/chunk.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "llm/tokens.h"
#include "util/errbuf.h"

/* Bracketed annotations at most this long (brackets included) are markers. */
#define MARKER_MAX 48

struct hark_chunk_params hark_chunk_default_params(void)
{
	struct hark_chunk_params p;

	memset(&p, 0, sizeof(p));
	p.max_tokens = 1200;
	p.overlap_tokens = 100;
	p.min_tokens = 8;
	p.drop_fillers = 1;
	p.strip_markers = 1;
	p.max_input_bytes = (size_t)256 << 20;
	return p;
}

void hark_chunk_list_clear(struct hark_chunk_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->chunks[i].text);
	free(l->chunks);
	memset(l, 0, sizeof(*l));
}

/* ---------------------------------------------------------------- text ---- */

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char closer_of(char c)
{
	return c == '{' ? '}' : c == '[' ? ']' : c == '<' ? '>' : 0;
}

/*
 * If s[i] opens a marker ("{vocalsound}", "[noise]", "<laugh>": an opening
 * bracket, 1..MARKER_MAX-2 bytes without brackets or line breaks, the
 * matching closer), returns its length, else 0.
 */
static size_t marker_len(const char *s, size_t n, size_t i)
{
	char close = closer_of(s[i]);

	if (!close)
		return 0;
	for (size_t j = i + 1; j < n && j - i < MARKER_MAX; j++) {
		char c = s[j];

		if (c == close)
			return j > i + 1 ? j - i + 1 : 0;
		if (closer_of(c) || c == '}' || c == ']' || c == '>' || c == '\n' || c == '\r')
			return 0;
	}
	return 0;
}

/*
 * Cleans src[0..n) into dst (>= n + 1 bytes): control characters become
 * spaces, markers are removed when strip is set, whitespace runs collapse to
 * one space, both ends are trimmed. Returns the cleaned length.
 */
static size_t clean_text(const char *src, size_t n, int strip, char *dst)
{
	size_t o = 0;
	int pending_space = 0, removed = 0;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)src[i];
		size_t m;

		if (strip && (m = marker_len(src, n, i)) > 0) {
			pending_space = 1;
			removed = 1;
			i += m;
			continue;
		}
		if (is_space(c) || c < 0x20 || c == 0x7f) {
			pending_space = 1;
			i++;
			continue;
		}
		/* "off {gap} ." -> "off." rather than "off ." */
		if (pending_space && o > 0 && !(removed && strchr(".,?!;:", (char)c)))
			dst[o++] = ' ';
		pending_space = 0;
		removed = 0;
		dst[o++] = (char)c;
		i++;
	}
	dst[o] = '\0';
	return o;
}

static const char *const fillers[] = {
	"um", "umm", "uh", "uhh", "uhm", "uh-huh", "uh-uh", "hmm", "hmmm", "hm", "mm", "mmm",
	"mm-hmm", "mm-mm", "mhm", "mhmm", "huh", "ah", "ahh", "aha", "oh", "ooh", "er", "erm",
	"eh", "yeah", "yea", "yeh", "ya", "yep", "yup", "yes", "okay", "ok", "kay", "right",
	"alright", "sure", "cool", "so", "well", "oops", "sorry", "thanks", "ha", "haha",
	"wow", "hey", "aye",
};

/* Whether the word w[0..n) (any case, surrounding punctuation ignored) is a
 * filler; *content is set when it has at least one letter or digit. */
static int word_is_filler(const char *w, size_t n, int *content)
{
	char buf[16];
	size_t a = 0, b = n, k;

	while (a < b && !is_alnum((unsigned char)w[a]))
		a++;
	while (b > a && !is_alnum((unsigned char)w[b - 1]))
		b--;
	if (a == b) {
		/* only punctuation or non-ASCII: content if anything non-ASCII */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)w[i] >= 0x80) {
				*content = 1;
				return 0;
			}
		*content = 0;
		return 1;
	}
	*content = 1;
	if (b - a > 7) /* longer than any filler */
		return 0;
	for (k = 0; a + k < b; k++) {
		char c = w[a + k];

		buf[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	buf[k] = '\0';
	for (size_t i = 0; i < sizeof(fillers) / sizeof(fillers[0]); i++)
		if (fillers[i][0] == buf[0] && strcmp(buf, fillers[i]) == 0)
			return 1;
	return 0;
}

int hark_chunk_is_low_value(const char *text)
{
	size_t n, i = 0;

	if (!text)
		return 1;
	n = strlen(text);
	while (i < n) {
		unsigned char c = (unsigned char)text[i];
		size_t m, j;
		int content = 0;

		if (is_space(c) || c < 0x20) {
			i++;
			continue;
		}
		if ((m = marker_len(text, n, i)) > 0) {
			i += m;
			continue;
		}
		j = i;
		while (j < n && !is_space((unsigned char)text[j]) && !marker_len(text, n, j))
			j++;
		if (!word_is_filler(text + i, j - i, &content))
			return 0;
		i = j;
	}
	return 1;
}

/* --------------------------------------------------------------- atoms ---- */

struct atom {
	size_t off, len; /* byte range in the turn's cleaned text */
	size_t tok;
};

struct cturn {
	size_t src;            /* index in the input */
	char *spk;             /* cleaned label, NULL = none (heap) */
	size_t spk_len;
	size_t spk_tok;        /* tokens of "spk:" (0 without a label) */
	char *text;            /* cleaned text (heap) */
	size_t len;
	size_t tok;            /* sum of its atoms' tokens */
	size_t a0, na;         /* its atoms in the global array */
	double start, end;
	int split;             /* 1: packed atom by atom */
};

struct state {
	const struct hark_chunk_params *p;
	struct cturn *turns;
	size_t nt;
	struct atom *atoms;
	size_t na, cap_atoms;
	char *err;
	size_t errlen;
};

static int push_atom(struct state *s, size_t off, size_t len, size_t tok)
{
	if (s->na == s->cap_atoms) {
		size_t nc = s->cap_atoms ? s->cap_atoms * 2 : 256;
		struct atom *a = realloc(s->atoms, nc * sizeof(*a));

		if (!a)
			return HARK_ERR_NOMEM;
		s->atoms = a;
		s->cap_atoms = nc;
	}
	s->atoms[s->na].off = off;
	s->atoms[s->na].len = len;
	s->atoms[s->na].tok = tok;
	s->na++;
	return HARK_OK;
}

/* Length of the UTF-8 character starting at s[0] (1 for an invalid byte). */
static size_t utf8_len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	size_t want = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;

	if (want > n)
		return 1;
	for (size_t i = 1; i < want; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			return 1;
	return want;
}

/* A word longer than cap tokens: pieces of whole characters, each <= cap. */
static int atoms_of_word(struct state *s, const char *t, size_t off, size_t len, size_t cap)
{
	size_t i = 0;

	while (i < len) {
		size_t want = len - i, end, tok;

		if (want > cap * 6)
			want = cap * 6;
		for (;;) {
			end = i;
			while (end < i + want) {
				size_t cl = utf8_len(t + off + end, len - end);

				if (end + cl > i + want)
					break;
				end += cl;
			}
			if (end == i)
				end = i + utf8_len(t + off + i, len - i);
			tok = hark_llm_tokens_count(t + off + i, end - i);
			if (tok <= cap || end - i <= utf8_len(t + off + i, len - i))
				break;
			/* shrink proportionally, by at least one byte */
			{
				size_t nw = (end - i) * cap / tok;

				want = nw < end - i ? nw : end - i - 1;
				if (want == 0)
					want = 1;
			}
		}
		if (push_atom(s, off + i, end - i, tok))
			return HARK_ERR_NOMEM;
		i = end;
	}
	return HARK_OK;
}

/* A sentence longer than cap tokens: its words (split further if needed). */
static int atoms_of_sentence(struct state *s, const char *t, size_t off, size_t len, size_t cap)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i, tok;
		int rc;

		while (j < len && t[off + j] != ' ')
			j++;
		tok = hark_llm_tokens_count(t + off + i, j - i);
		rc = tok <= cap ? push_atom(s, off + i, j - i, tok)
				: atoms_of_word(s, t, off + i, j - i, cap);
		if (rc)
			return rc;
		i = j;
		while (i < len && t[off + i] == ' ')
			i++;
	}
	return HARK_OK;
}

/* Whether a sentence ends right before position e of t (len n): returns the
 * end (after closing quotes/brackets) or 0. */
static size_t sentence_end(const char *t, size_t n, size_t i)
{
	unsigned char c = (unsigned char)t[i];
	size_t e;
	int need_space = 1;

	if (c == '.' || c == '!' || c == '?') {
		e = i + 1;
	} else if (c == 0xE2 && i + 2 < n && (unsigned char)t[i + 1] == 0x80 &&
		   (unsigned char)t[i + 2] == 0xA6) {
		e = i + 3; /* ellipsis */
	} else if (c == 0xE3 && i + 2 < n && (unsigned char)t[i + 1] == 0x80 &&
		   (unsigned char)t[i + 2] == 0x82) {
		e = i + 3; /* ideographic full stop */
		need_space = 0;
	} else if (c == 0xEF && i + 2 < n && (unsigned char)t[i + 1] == 0xBC &&
		   ((unsigned char)t[i + 2] == 0x81 || (unsigned char)t[i + 2] == 0x9F)) {
		e = i + 3; /* fullwidth ! ? */
		need_space = 0;
	} else {
		return 0;
	}
	while (e < n && (t[e] == '"' || t[e] == '\'' || t[e] == ')' || t[e] == ']' ||
			 t[e] == '}'))
		e++;
	if (e == n || t[e] == ' ' || !need_space)
		return e;
	return 0;
}

/* Cuts turn ct into atoms: sentences, or smaller for those over cap. */
static int atoms_of_turn(struct state *s, struct cturn *ct, size_t cap)
{
	const char *t = ct->text;
	size_t n = ct->len, start = 0, i = 0;

	ct->a0 = s->na;
	ct->tok = 0;
	while (start < n) {
		size_t e = 0, tok;
		int rc;

		for (i = start; i < n; i++) {
			e = sentence_end(t, n, i);
			if (e)
				break;
		}
		if (!e)
			e = n;
		tok = hark_llm_tokens_count(t + start, e - start);
		rc = tok <= cap ? push_atom(s, start, e - start, tok)
				: atoms_of_sentence(s, t, start, e - start, cap);
		if (rc)
			return rc;
		start = e;
		while (start < n && t[start] == ' ')
			start++;
	}
	ct->na = s->na - ct->a0;
	for (size_t k = ct->a0; k < s->na; k++)
		ct->tok += s->atoms[k].tok;
	return HARK_OK;
}

/* ------------------------------------------------------------- packing ---- */

struct piece {
	size_t t;      /* index into state.turns */
	size_t a0, a1; /* global atom range [a0, a1) */
	int overlap;   /* 1: repeated from the previous chunk */
};

struct plist {
	struct piece *v;
	size_t n, cap;
};

static int plist_push(struct plist *l, size_t t, size_t a0, size_t a1, int overlap)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct piece *v = realloc(l->v, nc * sizeof(*v));

		if (!v)
			return HARK_ERR_NOMEM;
		l->v = v;
		l->cap = nc;
	}
	l->v[l->n].t = t;
	l->v[l->n].a0 = a0;
	l->v[l->n].a1 = a1;
	l->v[l->n].overlap = overlap;
	l->n++;
	return HARK_OK;
}

static size_t atoms_tok(const struct state *s, size_t a0, size_t a1)
{
	size_t n = 0;

	for (size_t k = a0; k < a1; k++)
		n += s->atoms[k].tok;
	return n;
}

/* Whether piece b continues piece a on the same line. */
static int contiguous(const struct piece *a, const struct piece *b)
{
	return a && a->t == b->t && a->a1 == b->a0;
}

/* Planned tokens of a piece list as rendered (a prefix per line). */
static size_t plist_cost(const struct state *s, const struct plist *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct piece *pc = &l->v[i];

		if (!(i > 0 && contiguous(&l->v[i - 1], pc)))
			n += s->turns[pc->t].spk_tok;
		n += atoms_tok(s, pc->a0, pc->a1);
	}
	return n;
}

/* Overlap for the next chunk: the tail of prev within overlap_tokens. */
static int build_overlap(const struct state *s, const struct plist *prev, struct plist *out)
{
	size_t rem = s->p->overlap_tokens, first = prev->n, k_part = 0;
	int partial = 0;

	out->n = 0;
	if (rem == 0)
		return HARK_OK;
	for (size_t j = prev->n; j-- > 0;) {
		const struct piece *pc = &prev->v[j];
		size_t spk = s->turns[pc->t].spk_tok;
		size_t tok = atoms_tok(s, pc->a0, pc->a1);
		size_t k, sum = 0;

		if (spk + tok <= rem) {
			rem -= spk + tok;
			first = j;
			continue;
		}
		k = pc->a1;
		while (k > pc->a0 && spk + sum + s->atoms[k - 1].tok <= rem) {
			sum += s->atoms[k - 1].tok;
			k--;
		}
		if (k < pc->a1) {
			partial = 1;
			k_part = k;
			first = j;
		}
		break;
	}
	for (size_t j = first; j < prev->n; j++) {
		const struct piece *pc = &prev->v[j];
		size_t a0 = (partial && j == first) ? k_part : pc->a0;

		if (plist_push(out, pc->t, a0, pc->a1, 1))
			return HARK_ERR_NOMEM;
	}
	return HARK_OK;
}

static void to_hex(const unsigned char *md, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = '\0';
}

static double piece_start(const struct state *s, const struct piece *pc)
{
	const struct cturn *ct = &s->turns[pc->t];

	if (pc->a0 == ct->a0)
		return ct->start >= 0 ? ct->start : -1;
	if (ct->start >= 0 && ct->end >= ct->start && ct->len > 0)
		return ct->start + (ct->end - ct->start) * (double)s->atoms[pc->a0].off /
					   (double)ct->len;
	return -1;
}

static double piece_end(const struct state *s, const struct piece *pc)
{
	const struct cturn *ct = &s->turns[pc->t];
	const struct atom *last = &s->atoms[pc->a1 - 1];

	if (pc->a1 == ct->a0 + ct->na)
		return ct->end >= 0 ? ct->end : -1;
	if (ct->start >= 0 && ct->end >= ct->start && ct->len > 0)
		return ct->start + (ct->end - ct->start) * (double)(last->off + last->len) /
					   (double)ct->len;
	return -1;
}

/* Renders pieces into a new chunk. */
static int render(const struct state *s, const struct plist *l, struct hark_chunk *c)
{
	size_t cap = 0, o = 0, ov_end = 0;
	char *buf;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < l->n; i++) {
		const struct piece *pc = &l->v[i];
		const struct cturn *ct = &s->turns[pc->t];
		const struct atom *a = &s->atoms[pc->a0], *b = &s->atoms[pc->a1 - 1];

		cap += ct->spk_len + 3 + (b->off + b->len - a->off) + 1;
	}
	buf = malloc(cap + 1);
	if (!buf)
		return HARK_ERR_NOMEM;
	c->start_s = -1;
	c->end_s = -1;
	for (size_t i = 0; i < l->n; i++) {
		const struct piece *pc = &l->v[i];
		const struct cturn *ct = &s->turns[pc->t];
		const struct atom *a = &s->atoms[pc->a0], *b = &s->atoms[pc->a1 - 1];
		size_t from = a->off, to = b->off + b->len;
		double ps = piece_start(s, pc), pe = piece_end(s, pc);

		if (i > 0 && contiguous(&l->v[i - 1], pc)) {
			from = s->atoms[pc->a0 - 1].off + s->atoms[pc->a0 - 1].len;
		} else {
			if (i > 0)
				buf[o++] = '\n';
			if (ct->spk) {
				memcpy(buf + o, ct->spk, ct->spk_len);
				o += ct->spk_len;
				buf[o++] = ':';
				buf[o++] = ' ';
			}
		}
		memcpy(buf + o, ct->text + from, to - from);
		o += to - from;
		if (pc->overlap)
			ov_end = o;
		if (ps >= 0 && (c->start_s < 0 || ps < c->start_s))
			c->start_s = ps;
		if (pe >= 0 && pe > c->end_s)
			c->end_s = pe;
	}
	buf[o] = '\0';
	c->text = buf;
	c->len = o;
	c->tokens = hark_llm_tokens_count(buf, o);
	c->overlap_tokens = hark_llm_tokens_count(buf, ov_end);
	c->first_turn = s->turns[l->v[0].t].src;
	c->last_turn = s->turns[l->v[l->n - 1].t].src;
	if (!EVP_Digest(buf, o, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		free(buf);
		c->text = NULL;
		return HARK_ERR_INTERNAL;
	}
	to_hex(md, mdlen, c->sha256);
	return HARK_OK;
}

static int push_chunk(struct hark_chunk_list *out, size_t *cap, const struct hark_chunk *c)
{
	if (out->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct hark_chunk *v = realloc(out->chunks, nc * sizeof(*v));

		if (!v)
			return HARK_ERR_NOMEM;
		out->chunks = v;
		*cap = nc;
	}
	out->chunks[out->n++] = *c;
	return HARK_OK;
}

/* The greedy packer over s->turns. */
static int pack(struct state *s, struct hark_chunk_list *out)
{
	const size_t max = s->p->max_tokens;
	struct plist cur = {0}, prev = {0};
	size_t t = 0, a = 0, cap = 0;
	int rc = HARK_OK;

	if (s->nt > 0)
		a = s->turns[0].a0;
	while (t < s->nt) {
		size_t used, newtok = 0, n_new = 0;

		rc = build_overlap(s, &prev, &cur);
		if (rc)
			goto out;
		used = plist_cost(s, &cur);
		while (t < s->nt) {
			struct cturn *ct = &s->turns[t];
			size_t a1, c, utok;
			struct piece u;
			int whole = (a == ct->a0 && !ct->split && ct->spk_tok + ct->tok <= max);

			a1 = whole ? ct->a0 + ct->na : a + 1;
			utok = atoms_tok(s, a, a1);
			u.t = t;
			u.a0 = a;
			u.a1 = a1;
			c = utok + ((cur.n > 0 && contiguous(&cur.v[cur.n - 1], &u)) ? 0 : ct->spk_tok);
			if (used + c <= max) {
				if (cur.n > 0 && contiguous(&cur.v[cur.n - 1], &u) &&
				    !cur.v[cur.n - 1].overlap) {
					cur.v[cur.n - 1].a1 = a1; /* extend the line */
				} else if ((rc = plist_push(&cur, t, a, a1, 0))) {
					goto out;
				}
				used += c;
				newtok += utok;
				n_new++;
				if (a1 == ct->a0 + ct->na) {
					t++;
					a = t < s->nt ? s->turns[t].a0 : 0;
				} else {
					a = a1;
				}
				continue;
			}
			if ((n_new == 0 || newtok < s->p->min_tokens) && cur.n > 0 &&
			    cur.v[0].overlap) {
				/* no or too little new text: give up overlap first */
				memmove(cur.v, cur.v + 1, (cur.n - 1) * sizeof(cur.v[0]));
				cur.n--;
				used = plist_cost(s, &cur);
				continue;
			}
			if (newtok < s->p->min_tokens && whole && n_new > 0) {
				/* fill the chunk with the next turn's sentences */
				ct->split = 1;
				continue;
			}
			break;
		}
		if (n_new == 0) {
			/* cannot happen: every unit fits an empty chunk */
			hark_errbuf_set(s->err, s->errlen, "chunker made no progress");
			rc = HARK_ERR_INTERNAL;
			goto out;
		}
		if (newtok < s->p->min_tokens) {
			out->chunks_dropped++;
		} else {
			struct hark_chunk c;

			rc = render(s, &cur, &c);
			if (rc == HARK_OK && c.tokens > max) {
				free(c.text);
				hark_errbuf_set(s->err, s->errlen, "chunk over budget (%zu > %zu)",
						c.tokens, max);
				rc = HARK_ERR_INTERNAL;
			}
			if (rc == HARK_OK && (rc = push_chunk(out, &cap, &c)))
				free(c.text);
			if (rc)
				goto out;
		}
		{
			struct plist tmp = prev;

			prev = cur;
			cur = tmp;
		}
	}
out:
	free(cur.v);
	free(prev.v);
	return rc;
}

/* ---------------------------------------------------------------- entry --- */

/* Cleans a speaker label into a heap string (NULL when empty), cut to
 * HARK_CHUNK_MAX_SPEAKER bytes and to prefix tokens <= max_tokens / 4. */
static int clean_speaker(const char *spk, size_t max_tokens, char **out, size_t *len,
			 size_t *tok)
{
	size_t n = spk ? strlen(spk) : 0, o;
	char *b;

	*out = NULL;
	*len = 0;
	*tok = 0;
	if (n == 0)
		return HARK_OK;
	b = malloc(n + 1);
	if (!b)
		return HARK_ERR_NOMEM;
	o = clean_text(spk, n, 0, b);
	for (;;) {
		if (o > HARK_CHUNK_MAX_SPEAKER ||
		    (o > 0 && hark_llm_tokens_count(b, o) + 1 > max_tokens / 4)) {
			size_t w;

			o = o > HARK_CHUNK_MAX_SPEAKER ? HARK_CHUNK_MAX_SPEAKER : o - 1;
			while (o > 0 && ((unsigned char)b[o] & 0xC0) == 0x80)
				o--;
			/* prefer a word boundary in the second half */
			for (w = o; w > o / 2 && b[w] != ' '; w--)
				;
			if (w > o / 2)
				o = w;
			while (o > 0 && b[o - 1] == ' ')
				o--;
			b[o] = '\0';
			continue;
		}
		break;
	}
	if (o == 0) {
		free(b);
		return HARK_OK;
	}
	*out = b;
	*len = o;
	*tok = hark_llm_tokens_count(b, o) + 1;
	return HARK_OK;
}

int hark_chunk_split(const struct hark_chunk_turn *turns, size_t n,
		     const struct hark_chunk_params *p, struct hark_chunk_list *out,
		     char *err, size_t errlen)
{
	struct hark_chunk_params defaults = hark_chunk_default_params();
	struct state s;
	size_t total = 0;
	int rc = HARK_OK;

	memset(&s, 0, sizeof(s));
	if (!out) {
		hark_errbuf_set(err, errlen, "out is NULL");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &defaults;
	if (n > 0 && !turns) {
		hark_errbuf_set(err, errlen, "turns is NULL");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->max_tokens < 32 || p->overlap_tokens > p->max_tokens / 2 ||
	    p->min_tokens > p->max_tokens / 2) {
		hark_errbuf_set(err, errlen,
				"bad chunk params: max_tokens %zu (>= 32), overlap_tokens %zu and "
				"min_tokens %zu (<= max_tokens / 2)",
				p->max_tokens, p->overlap_tokens, p->min_tokens);
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		total += (turns[i].text ? strlen(turns[i].text) : 0) +
			 (turns[i].speaker ? strlen(turns[i].speaker) : 0);
		if (total > p->max_input_bytes) {
			hark_errbuf_set(err, errlen, "transcript over %zu bytes", p->max_input_bytes);
			return HARK_ERR_LIMIT;
		}
	}
	s.p = p;
	s.err = err;
	s.errlen = errlen;
	s.turns = calloc(n ? n : 1, sizeof(*s.turns));
	if (!s.turns) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *txt = turns[i].text ? turns[i].text : "";
		size_t len = strlen(txt);
		struct cturn *ct = &s.turns[s.nt];
		char *b;

		b = malloc(len + 1);
		if (!b) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		len = clean_text(txt, len, p->strip_markers, b);
		if (len == 0 || (p->drop_fillers && hark_chunk_is_low_value(b))) {
			free(b);
			out->turns_dropped++;
			continue;
		}
		memset(ct, 0, sizeof(*ct));
		ct->text = b;
		ct->len = len;
		ct->src = i;
		ct->start = turns[i].start_s >= 0 ? turns[i].start_s : -1;
		ct->end = turns[i].end_s >= 0 ? turns[i].end_s : -1;
		s.nt++;
		rc = clean_speaker(turns[i].speaker, p->max_tokens, &ct->spk, &ct->spk_len,
				   &ct->spk_tok);
		if (rc == HARK_OK)
			rc = atoms_of_turn(&s, ct, p->max_tokens - ct->spk_tok);
		if (rc)
			goto out;
	}
	out->turns_kept = s.nt;
	rc = pack(&s, out);
out:
	if (rc) {
		if (rc == HARK_ERR_NOMEM)
			hark_errbuf_set(err, errlen, "out of memory");
		hark_chunk_list_clear(out);
	}
	for (size_t i = 0; i < s.nt; i++) {
		free(s.turns[i].text);
		free(s.turns[i].spk);
	}
	free(s.turns);
	free(s.atoms);
	return rc;
}
