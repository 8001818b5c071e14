/*
 * SRT and WebVTT: rendering a transcript as subtitle cues (clean text,
 * word-wrapped on UTF-8 character boundaries, long segments split into
 * several timed cues, non-overlapping positive-length timing) and parsing
 * SRT/WebVTT files back into a transcript with line-numbered errors. The
 * exact cue rules are documented in format.h.
 */
#include "format/format.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format/transcript.h"
#include "hark/hark.h"
#include "util/textnorm.h"

#define MAX_CUES ((size_t)40000000)
#define BALANCE_MAX_BYTES 8192 /* longer segments keep the greedy wrap */
#define BALANCE_MIN_WIDTH 8

struct span {
	int64_t start, end; /* ms */
};

/* Cues: spans and texts (lines separated by '\n', clean UTF-8, unescaped). */
struct cue_list {
	struct span *sp;
	char **text;
	size_t n, cap;
};

static void cues_free(struct cue_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->text[i]);
	free(l->text);
	free(l->sp);
	memset(l, 0, sizeof(*l));
}

/* Takes ownership of text (freed on failure too). */
static int cues_add(struct cue_list *l, int64_t start, int64_t end, char *text)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct span *nsp;
		char **nt;

		if (l->n >= MAX_CUES) {
			free(text);
			return HARK_ERR_LIMIT;
		}
		if (ncap > MAX_CUES)
			ncap = MAX_CUES;
		nsp = realloc(l->sp, ncap * sizeof(*nsp));
		if (nsp)
			l->sp = nsp;
		nt = nsp ? realloc(l->text, ncap * sizeof(*nt)) : NULL;
		if (!nt) {
			free(text);
			return HARK_ERR_NOMEM;
		}
		l->text = nt;
		l->cap = ncap;
	}
	l->sp[l->n].start = start;
	l->sp[l->n].end = end;
	l->text[l->n] = text;
	l->n++;
	return HARK_OK;
}

/* Sanitised copy of s with every whitespace/control run collapsed to one
 * space and both ends trimmed. */
static int clean_text(const char *s, char **out, size_t *out_len)
{
	char *c;
	size_t n, i, o = 0;
	int rc, space = 0;

	if ((rc = hark_textnorm_utf8_sanitize(s ? s : "", s ? strlen(s) : 0, 1, &c, &n)))
		return rc;
	for (i = 0; i < n; i++) {
		if (c[i] == ' ' || c[i] == '\t' || c[i] == '\n' || c[i] == '\r') {
			space = 1;
			continue;
		}
		if (space && o)
			c[o++] = ' ';
		space = 0;
		c[o++] = c[i];
	}
	c[o] = '\0';
	*out = c;
	*out_len = o;
	return HARK_OK;
}

static int64_t to_ms(double s)
{
	if (!isfinite(s) || s <= 0)
		return 0;
	if (s > 9.0e12)
		s = 9.0e12;
	return (int64_t)llround(s * 1000.0);
}

struct line {
	size_t bs, be; /* byte range in the cleaned text */
	size_t cs;     /* code point offset of bs */
};

/* Appends a line, growing *lines. */
static int add_line(struct line **lines, size_t *n, size_t *cap, size_t bs, size_t be, size_t cs)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct line *nl = realloc(*lines, ncap * sizeof(*nl));

		if (!nl)
			return HARK_ERR_NOMEM;
		*lines = nl;
		*cap = ncap;
	}
	(*lines)[*n].bs = bs;
	(*lines)[*n].be = be;
	(*lines)[*n].cs = cs;
	(*n)++;
	return HARK_OK;
}

static int is_combining(uint32_t cp)
{
	return (cp >= 0x300 && cp <= 0x36F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
	       (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE20 && cp <= 0xFE2F) ||
	       cp == 0x200D || (cp >= 0xFE00 && cp <= 0xFE0F);
}

/*
 * Greedy word wrap of s (n bytes, cleaned: single spaces, trimmed) into
 * lines of at most width code points. A word longer than a line is broken
 * between characters (not before a combining mark).
 */
static int wrap(const char *s, size_t n, size_t width, struct line **lines, size_t *n_lines)
{
	size_t cap = 0, pos = 0, cpos = 0;
	size_t ls = 0, lcs = 0, lw = 0, le = 0; /* current line: start, cp start, width, end */
	int have = 0, rc;
	uint32_t cp;

	*lines = NULL;
	*n_lines = 0;
	while (pos < n) {
		size_t ws = pos, wcs = cpos, we, wcp = 0;

		/* Measure the word [ws, we). */
		we = ws;
		while (we < n && s[we] != ' ') {
			we += hark_textnorm_utf8_decode(s + we, n - we, &cp);
			wcp++;
		}
		if (have && lw + 1 + wcp <= width) {
			lw += 1 + wcp;
			le = we;
		} else {
			if (have && (rc = add_line(lines, n_lines, &cap, ls, le, lcs)))
				return rc;
			have = 0;
			/* Hard-break words wider than a line. */
			while (wcp > width) {
				size_t b = ws, k = 0, last_ok = ws, last_okk = 0;

				while (k < width) {
					b += hark_textnorm_utf8_decode(s + b, we - b, &cp);
					k++;
					if (b < we) {
						uint32_t nx;

						hark_textnorm_utf8_decode(s + b, we - b, &nx);
						if (!is_combining(nx)) {
							last_ok = b;
							last_okk = k;
						}
					}
				}
				if (last_ok == ws) { /* all combining: break anyway */
					last_ok = b;
					last_okk = k;
				}
				if ((rc = add_line(lines, n_lines, &cap, ws, last_ok, wcs)))
					return rc;
				ws = last_ok;
				wcs += last_okk;
				wcp -= last_okk;
			}
			ls = ws;
			lcs = wcs;
			lw = wcp;
			le = we;
			have = 1;
		}
		cpos = wcs + wcp;
		pos = we;
		if (pos < n && s[pos] == ' ') {
			pos++;
			cpos++;
		}
	}
	if (have && (rc = add_line(lines, n_lines, &cap, ls, le, lcs)))
		return rc;
	return HARK_OK;
}

/*
 * Per cue start times from word timestamps when the segment's words spell
 * its text (ignoring whitespace). starts[k] receives the start of the word
 * holding the first character of cue k. Returns 1 if used, 0 if not usable.
 */
static int word_starts(const struct hark_transcript *t, const struct hark_segment *seg,
		       const char *text, size_t n, const struct line *lines, size_t n_lines,
		       int64_t *starts)
{
	size_t w, i, nonspace = 0, wi = 0, wpos = 0, cue = 0;
	size_t *cue_first_ns;
	char **wclean;
	size_t *wlen;
	int ok = 0;

	if (!seg->n_words || seg->first_word >= t->n_words ||
	    seg->n_words > t->n_words - seg->first_word)
		return 0;
	cue_first_ns = calloc(n_lines, sizeof(*cue_first_ns));
	wclean = calloc(seg->n_words, sizeof(*wclean));
	wlen = calloc(seg->n_words, sizeof(*wlen));
	if (!cue_first_ns || !wclean || !wlen)
		goto out;
	for (w = 0; w < seg->n_words; w++) {
		size_t o = 0;
		char *c;

		if (clean_text(t->words[seg->first_word + w].word, &wclean[w], &wlen[w]))
			goto out;
		c = wclean[w];
		for (i = 0; i < wlen[w]; i++)
			if (c[i] != ' ')
				c[o++] = c[i];
		wlen[w] = o;
	}
	/* Non-space byte index where each cue (pair of lines) starts. */
	for (i = 0; i < n; i++) {
		while (cue * HARK_SUB_MAX_LINES < n_lines && lines[cue * HARK_SUB_MAX_LINES].bs == i) {
			cue_first_ns[cue] = nonspace;
			cue++;
		}
		if (text[i] != ' ')
			nonspace++;
	}
	/* Walk text and words in lockstep, recording cue starts. */
	cue = 0;
	for (i = 0, nonspace = 0; i < n; i++) {
		if (text[i] == ' ')
			continue;
		while (wi < seg->n_words && wpos >= wlen[wi]) {
			wi++;
			wpos = 0;
		}
		if (wi >= seg->n_words || wclean[wi][wpos] != text[i])
			goto out;
		while (cue * HARK_SUB_MAX_LINES < n_lines && cue_first_ns[cue] == nonspace) {
			starts[cue] = to_ms(t->words[seg->first_word + wi].start);
			cue++;
		}
		wpos++;
		nonspace++;
	}
	while (wi < seg->n_words && wpos >= wlen[wi]) {
		wi++;
		wpos = 0;
	}
	ok = wi == seg->n_words;
out:
	if (wclean)
		for (w = 0; w < seg->n_words; w++)
			free(wclean[w]);
	free(wclean);
	free(wlen);
	free(cue_first_ns);
	return ok;
}

/* Code points of the longest space-separated word of s that fits on a line. */
static size_t longest_fitting_word(const char *s, size_t n)
{
	size_t i = 0, best = 0;
	uint32_t cp;

	while (i < n) {
		size_t w = 0;

		while (i < n && s[i] != ' ') {
			i += hark_textnorm_utf8_decode(s + i, n - i, &cp);
			w++;
		}
		if (w <= HARK_SUB_LINE_WIDTH && w > best)
			best = w;
		i++;
	}
	return best;
}

/* Splits one segment into cues appended to l. */
static int segment_cues(const struct hark_transcript *t, const struct hark_segment *seg,
			struct span span, struct cue_list *l)
{
	struct line *lines = NULL;
	size_t n_lines = 0, n, n_cues, k, total_cp;
	int64_t s_ms = span.start, e_ms = span.end, *starts = NULL;
	char *text = NULL;
	int rc;

	if (e_ms < s_ms)
		e_ms = s_ms;
	if ((rc = clean_text(seg->text, &text, &n)))
		return rc;
	if (!n)
		goto out;
	if ((rc = wrap(text, n, HARK_SUB_LINE_WIDTH, &lines, &n_lines)))
		goto out;
	/* Balance: the narrowest width that needs no more lines than the full
	 * width, so lines (and the last cue) come out evenly filled. Never
	 * narrower than the longest word that fits a line, so balancing breaks
	 * no word that the full width kept whole. */
	if (n_lines > 1 && n <= BALANCE_MAX_BYTES) {
		size_t w, floor_w = longest_fitting_word(text, n);

		if (floor_w < BALANCE_MIN_WIDTH)
			floor_w = BALANCE_MIN_WIDTH;
		for (w = HARK_SUB_LINE_WIDTH - 1; w >= floor_w; w--) {
			struct line *l2 = NULL;
			size_t n2 = 0;

			if ((rc = wrap(text, n, w, &l2, &n2))) {
				free(l2);
				goto out;
			}
			if (n2 > n_lines) {
				free(l2);
				break;
			}
			free(lines);
			lines = l2;
		}
	}
	n_cues = (n_lines + HARK_SUB_MAX_LINES - 1) / HARK_SUB_MAX_LINES;
	starts = calloc(n_cues + 1, sizeof(*starts));
	if (!starts) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	total_cp = hark_textnorm_utf8_len(text, n);
	if (n_cues < 2 || !word_starts(t, seg, text, n, lines, n_lines, starts)) {
		for (k = 0; k < n_cues; k++) {
			double frac = (double)lines[k * HARK_SUB_MAX_LINES].cs / (double)total_cp;

			starts[k] = s_ms + (int64_t)llround((double)(e_ms - s_ms) * frac);
		}
	}
	starts[0] = s_ms;
	starts[n_cues] = e_ms;
	for (k = 1; k <= n_cues; k++) {
		if (starts[k] < starts[k - 1])
			starts[k] = starts[k - 1];
		if (starts[k] > e_ms)
			starts[k] = e_ms;
	}
	for (k = 0; k < n_cues; k++) {
		size_t a = k * HARK_SUB_MAX_LINES, b = a + HARK_SUB_MAX_LINES, i, o = 0;
		char *ct;

		if (b > n_lines)
			b = n_lines;
		ct = malloc(lines[b - 1].be - lines[a].bs + 2);
		if (!ct) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		for (i = a; i < b; i++) {
			if (i > a)
				ct[o++] = '\n';
			memcpy(ct + o, text + lines[i].bs, lines[i].be - lines[i].bs);
			o += lines[i].be - lines[i].bs;
		}
		ct[o] = '\0';
		if ((rc = cues_add(l, starts[k], starts[k + 1], ct)))
			goto out;
	}
out:
	free(starts);
	free(lines);
	free(text);
	return rc;
}

/*
 * Makes spans (in the given order) non-overlapping with positive length:
 * each starts no earlier than the previous end; one running into the next
 * span's start is cut there if that leaves it a positive length; an empty
 * one gets HARK_SUB_MIN_CUE_MS, cut at the next start, but at least 1 ms.
 */
static void fix_spans(struct span *v, size_t n)
{
	int64_t prev_end = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t s = v[i].start > prev_end ? v[i].start : prev_end;
		int64_t e = v[i].end > s ? v[i].end : s;
		int64_t nxt = i + 1 < n ? v[i + 1].start : INT64_MAX;

		if (nxt > s && e > nxt)
			e = nxt;
		if (e <= s) {
			int64_t want = s + HARK_SUB_MIN_CUE_MS;

			if (nxt > s && want > nxt)
				want = nxt;
			e = want > s ? want : s + 1;
		}
		v[i].start = s;
		v[i].end = e;
		prev_end = e;
	}
}

/* Non-zero if s has a character that survives clean_text(). */
static int has_visible(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s > 0x20 && *s != 0x7F)
			return 1;
	return 0;
}

static int put_time(struct hark_format_buf *b, int64_t ms, char sep)
{
	int64_t h = ms / 3600000;
	int m = (int)(ms / 60000 % 60), s = (int)(ms / 1000 % 60), f = (int)(ms % 1000);

	return hark_format_buf_printf(b, "%02lld:%02d:%02d%c%03d", (long long)h, m, s, sep, f);
}

static int put_text(struct hark_format_buf *b, const char *s, int vtt)
{
	size_t i, run = 0;
	int rc;

	for (i = 0;; i++) {
		const char *rep = NULL;
		size_t skip = 1;

		if (!s[i])
			break;
		if (vtt) {
			if (s[i] == '&')
				rep = "&amp;";
			else if (s[i] == '<')
				rep = "&lt;";
			else if (s[i] == '>')
				rep = "&gt;";
		} else if (s[i] == '-' && s[i + 1] == '-' && s[i + 2] == '>') {
			rep = "->";
			skip = 3;
		}
		if (!rep)
			continue;
		if ((rc = hark_format_buf_put(b, s + run, i - run)) ||
		    (rc = hark_format_buf_put(b, rep, strlen(rep))))
			return rc;
		i += skip - 1;
		run = i + 1;
	}
	return hark_format_buf_put(b, s + run, i - run);
}

int hark_format_render_subtitles(const struct hark_transcript *t, int vtt, char **out,
				 size_t *out_len)
{
	struct hark_format_buf b = {NULL, 0, 0, 0};
	struct cue_list l = {NULL, NULL, 0, 0};
	struct span *spans = NULL;
	size_t i, k, nv = 0, *vis = NULL;
	int rc = HARK_OK;

	if (!t || !out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	/* Segment spans first (so a segment's cues share its corrected span),
	 * then the cues, whose pieces may be degenerate. */
	if (t->n_segments) {
		spans = malloc(t->n_segments * sizeof(*spans));
		vis = malloc(t->n_segments * sizeof(*vis));
		if (!spans || !vis) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < t->n_segments; i++) {
		const struct hark_segment *seg = &t->segments[i];

		if (!has_visible(seg->text))
			continue;
		spans[nv].start = to_ms(seg->start);
		spans[nv].end = to_ms(seg->end);
		vis[nv++] = i;
	}
	fix_spans(spans, nv);
	for (k = 0; k < nv; k++)
		if ((rc = segment_cues(t, &t->segments[vis[k]], spans[k], &l)))
			goto out;
	fix_spans(l.sp, l.n);
	if ((rc = hark_format_buf_put(&b, vtt ? "WEBVTT\n\n" : "", vtt ? 8 : 0)))
		goto out;
	for (i = 0; i < l.n; i++) {
		if ((!vtt && (rc = hark_format_buf_printf(&b, "%zu\n", i + 1))) ||
		    (rc = put_time(&b, l.sp[i].start, vtt ? '.' : ',')) ||
		    (rc = hark_format_buf_put(&b, " --> ", 5)) ||
		    (rc = put_time(&b, l.sp[i].end, vtt ? '.' : ',')) ||
		    (rc = hark_format_buf_put(&b, "\n", 1)) || (rc = put_text(&b, l.text[i], vtt)) ||
		    (rc = hark_format_buf_put(&b, "\n\n", 2)))
			goto out;
	}
	*out = b.p;
	if (out_len)
		*out_len = b.len;
	b.p = NULL;
out:
	free(b.p);
	free(vis);
	free(spans);
	cues_free(&l);
	return rc;
}

/* ------------------------------------------------------------ parser ---- */

struct reader {
	const char *p;
	size_t len, pos;
	size_t lineno; /* number of the line last returned */
};

/* Next line (without its terminator); 0 at end of input. */
static int next_line(struct reader *r, const char **s, size_t *n)
{
	size_t i;

	if (r->pos >= r->len)
		return 0;
	i = r->pos;
	while (i < r->len && r->p[i] != '\n' && r->p[i] != '\r')
		i++;
	*s = r->p + r->pos;
	*n = i - r->pos;
	if (i < r->len && r->p[i] == '\r' && i + 1 < r->len && r->p[i + 1] == '\n')
		i++;
	r->pos = i < r->len ? i + 1 : i;
	r->lineno++;
	return 1;
}

static int is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

static int has_arrow(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i + 3 <= n; i++)
		if (s[i] == '-' && s[i + 1] == '-' && s[i + 2] == '>')
			return 1;
	return 0;
}

/* Keyword at line start followed by end, space or tab. */
static int starts_kw(const char *s, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	return n >= k && memcmp(s, kw, k) == 0 && (n == k || s[k] == ' ' || s[k] == '\t');
}

static int read_uint(const char *s, size_t n, size_t *i, int max_digits, int64_t *v, int *nd)
{
	*v = 0;
	*nd = 0;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		if (*nd >= max_digits)
			return -1;
		*v = *v * 10 + (s[*i] - '0');
		(*i)++;
		(*nd)++;
	}
	return *nd ? 0 : -1;
}

/* [H+:]MM:SS(.|,)mmm at s[*i] -> ms. Returns 0 on success. */
static int parse_ts(const char *s, size_t n, size_t *i, int64_t *ms)
{
	int64_t f[3], frac;
	int nd, nf = 0, k;

	for (;;) {
		if (nf == 3 || read_uint(s, n, i, nf == 0 ? 9 : 2, &f[nf], &nd))
			return -1;
		nf++;
		if (*i < n && s[*i] == ':') {
			(*i)++;
			continue;
		}
		break;
	}
	if (nf < 2 || *i >= n || (s[*i] != '.' && s[*i] != ','))
		return -1;
	(*i)++;
	if (read_uint(s, n, i, 3, &frac, &nd))
		return -1;
	for (k = nd; k < 3; k++)
		frac *= 10;
	if (f[nf - 1] > 59 || f[nf - 2] > 59)
		return -1;
	if (nf == 3)
		*ms = ((f[0] * 60 + f[1]) * 60 + f[2]) * 1000 + frac;
	else
		*ms = (f[0] * 60 + f[1]) * 1000 + frac;
	return 0;
}

/* "start --> end [settings]". Returns 0 on success. */
static int parse_timing(const char *s, size_t n, int64_t *start, int64_t *end)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (parse_ts(s, n, &i, start))
		return -1;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i + 3 > n || memcmp(s + i, "-->", 3) != 0)
		return -1;
	i += 3;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (parse_ts(s, n, &i, end))
		return -1;
	if (i < n && s[i] != ' ' && s[i] != '\t')
		return -1;
	return 0;
}

/* Decodes a VTT/HTML character reference at s (starting with '&'); returns
 * bytes consumed (0 if not recognised) and the code point. */
static size_t entity(const char *s, size_t n, uint32_t *cp)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} ents[] = {
		{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
		{"&nbsp;", 0xA0}, {"&lrm;", 0x200E}, {"&rlm;", 0x200F},
	};
	size_t k, i;

	for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
		size_t l = strlen(ents[k].name);

		if (n >= l && memcmp(s, ents[k].name, l) == 0) {
			*cp = ents[k].cp;
			return l;
		}
	}
	if (n >= 4 && s[1] == '#') {
		int hex = s[2] == 'x' || s[2] == 'X';
		uint32_t v = 0;

		for (i = hex ? 3 : 2; i < n && i < 12; i++) {
			int d;

			if (s[i] == ';')
				break;
			if (s[i] >= '0' && s[i] <= '9')
				d = s[i] - '0';
			else if (hex && isxdigit((unsigned char)s[i]))
				d = tolower((unsigned char)s[i]) - 'a' + 10;
			else
				return 0;
			v = v * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (i < n && s[i] == ';' && i > (size_t)(hex ? 3 : 2) && v && v <= 0x10FFFF) {
			*cp = v;
			return i + 1;
		}
	}
	return 0;
}

static int srt_tag_name(const char *s, size_t n)
{
	static const char *const names[] = {"i", "b", "u", "s", "font"};
	size_t k;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		size_t l = strlen(names[k]);

		if (n == l && strncasecmp(s, names[k], l) == 0)
			return 1;
	}
	return 0;
}

/* Removes markup from cue text s (n bytes) in place; returns the new length. */
static size_t strip_markup(char *s, size_t n, int vtt)
{
	size_t i = 0, o = 0;

	while (i < n) {
		if (s[i] == '<') {
			size_t j = i + 1;

			while (j < n && s[j] != '>' && s[j] != '<')
				j++;
			if (j < n && s[j] == '>') {
				size_t a = i + 1, b;

				if (a < j && s[a] == '/')
					a++;
				b = a;
				while (b < j && isalpha((unsigned char)s[b]))
					b++;
				if (vtt || srt_tag_name(s + a, b - a)) {
					i = j + 1;
					continue;
				}
			}
		} else if (!vtt && s[i] == '{' && i + 1 < n && s[i + 1] == '\\') {
			size_t j = i + 2;

			while (j < n && s[j] != '}')
				j++;
			if (j < n) {
				i = j + 1;
				continue;
			}
		} else if (vtt && s[i] == '&') {
			uint32_t cp;
			size_t k = entity(s + i, n - i, &cp);

			if (k) {
				char enc[4];
				size_t el = hark_textnorm_utf8_encode(cp, enc);

				/* el <= k always holds for these references. */
				memcpy(s + o, enc, el);
				o += el;
				i += k;
				continue;
			}
		}
		s[o++] = s[i++];
	}
	return o;
}

static void perr(char *err, size_t errlen, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void perr(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (!err || !errlen)
		return;
	k = snprintf(err, errlen, "line %zu: ", line);
	if (k < 0 || (size_t)k >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
	va_end(ap);
}

/* Reads cue text lines up to a blank line, adds the segment. */
static int read_cue_text(struct reader *r, struct hark_transcript *t, int64_t start, int64_t end,
			 int vtt, struct hark_format_buf *tb)
{
	const char *s;
	size_t n, len;
	char *clean = NULL;
	int rc;

	tb->len = 0;
	if ((rc = hark_format_buf_put(tb, "", 0)))
		return rc;
	while (next_line(r, &s, &n)) {
		if (is_blank(s, n))
			break;
		if (tb->len && (rc = hark_format_buf_put(tb, " ", 1)))
			return rc;
		if ((rc = hark_format_buf_put(tb, s, n)))
			return rc;
	}
	len = strip_markup(tb->p, tb->len, vtt);
	tb->p[len] = '\0';
	tb->len = len;
	if ((rc = clean_text(tb->p, &clean, &len)))
		return rc;
	rc = hark_transcript_add_segment(t, (double)start / 1000.0, (double)end / 1000.0, clean,
					 NULL, 0, 0, 0, 0, 0);
	free(clean);
	return rc;
}

int hark_subtitle_parse(const char *buf, size_t len, struct hark_transcript **out, char *err,
			size_t errlen)
{
	struct hark_format_buf tb = {NULL, 0, 0, HARK_FORMAT_MAX_INPUT + 1};
	struct hark_transcript *t = NULL;
	struct reader r;
	const char *s;
	size_t n, i;
	int vtt = 0, rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out || (!buf && len))
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (len == 0) {
		if (err && errlen)
			snprintf(err, errlen, "empty input");
		return HARK_ERR_EMPTY;
	}
	if (len > HARK_FORMAT_MAX_INPUT) {
		if (err && errlen)
			snprintf(err, errlen, "input larger than %zu bytes", HARK_FORMAT_MAX_INPUT);
		return HARK_ERR_LIMIT;
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	/* Binary content: reject NUL bytes, with their line. */
	{
		const char *z = memchr(buf, '\0', len);

		if (z) {
			size_t line = 1;

			for (i = 0; buf + i < z; i++)
				if (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n')))
					line++;
			perr(err, errlen, line, "NUL byte (not a text subtitle file)");
			return HARK_ERR_FORMAT;
		}
	}
	r.p = buf;
	r.len = len;
	r.pos = 0;
	r.lineno = 0;
	if ((rc = hark_transcript_new(&t)))
		return rc;

	if (len >= 6 && memcmp(buf, "WEBVTT", 6) == 0 &&
	    (len == 6 || buf[6] == ' ' || buf[6] == '\t' || buf[6] == '\n' || buf[6] == '\r')) {
		vtt = 1;
		/* Header: up to the first blank line. */
		while (next_line(&r, &s, &n) && !is_blank(s, n)) {
			if (r.lineno > 1 && has_arrow(s, n)) {
				perr(err, errlen, r.lineno, "cue timing inside the WEBVTT header");
				rc = HARK_ERR_FORMAT;
				goto out;
			}
		}
	}
	while (next_line(&r, &s, &n)) {
		int64_t start, end;

		if (is_blank(s, n))
			continue;
		if (vtt && (starts_kw(s, n, "NOTE") || starts_kw(s, n, "STYLE") ||
			    starts_kw(s, n, "REGION"))) {
			while (next_line(&r, &s, &n) && !is_blank(s, n))
				;
			continue;
		}
		if (!has_arrow(s, n)) {
			size_t idline = r.lineno;
			int numeric = 1;

			for (i = 0; i < n; i++)
				if (!(s[i] >= '0' && s[i] <= '9') && s[i] != ' ' && s[i] != '\t')
					numeric = 0;
			if (!vtt && !numeric) {
				perr(err, errlen, idline, "expected a cue number or timing line");
				rc = HARK_ERR_FORMAT;
				goto out;
			}
			if (!next_line(&r, &s, &n) || !has_arrow(s, n)) {
				perr(err, errlen, idline + 1, "expected a cue timing line (\"-->\")");
				rc = HARK_ERR_FORMAT;
				goto out;
			}
		}
		if (parse_timing(s, n, &start, &end)) {
			perr(err, errlen, r.lineno, "malformed cue timing");
			rc = HARK_ERR_FORMAT;
			goto out;
		}
		if (end < start) {
			perr(err, errlen, r.lineno, "cue ends before it starts");
			rc = HARK_ERR_FORMAT;
			goto out;
		}
		if ((rc = read_cue_text(&r, t, start, end, vtt, &tb))) {
			perr(err, errlen, r.lineno, "%s", hark_strerror(rc));
			goto out;
		}
	}
	if (t->n_segments)
		t->duration = t->segments[t->n_segments - 1].end;
	for (i = 0; i < t->n_segments; i++)
		if (t->segments[i].end > t->duration)
			t->duration = t->segments[i].end;
	if ((rc = hark_transcript_finalize_text(t)))
		goto out;
	*out = t;
	t = NULL;
out:
	free(tb.p);
	hark_transcript_free(t);
	return rc;
}
