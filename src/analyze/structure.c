/*
 * Offline diagram structure from speech: splits the speaker turns into
 * sentences, scores cue-word features per diagram type (flowchart, timeline,
 * mind map, hierarchy, sequence) to pick the kind of diagram, and builds a
 * render/diagram.h spec of a requested type with simple clause patterns
 * (steps and if/otherwise decisions, dated events, "X reports to Y"
 * relations, "A sends B ..." messages, topics and their keywords). Every
 * element keeps the turn it came from and its time interpolated inside the
 * turn; labels are cleaned and shortened at word boundaries; long inputs are
 * paginated so no page exceeds max_nodes. Pure ASCII case folding, no
 * locale, no randomness; work is linear in the input apart from small
 * per-sentence caps. docs/VIDEO.md describes the rules.
 */
#include "analyze/structure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/cues.h"
#include "analyze/dates.h"
#include "analyze/offline.h"
#include "hark/hark.h"
#include "util/errbuf.h"

#define MAX_WORDS 96          /* words of a sentence looked at by the rules */
#define WORD_BYTES 24         /* lower-cased word copy */
#define MAX_SENTS_TURN 4096   /* sentences kept per turn */
#define MAX_SENTS 2000000     /* sentences kept overall */
#define MAX_INPUT (256u << 20) /* summed text bytes */
#define MAX_ITEMS 4096        /* flow units / events / relations / messages kept */
#define MAX_NAMES 512         /* distinct participants / hierarchy names */

struct word {
	size_t b, e;          /* byte range in the turn text */
	char lw[WORD_BYTES];  /* lower-cased (ASCII), truncated */
};

struct sent {
	size_t turn;
	size_t b, e;          /* byte range in the turn text */
};

struct swords {
	const char *text;     /* the turn text */
	size_t n;
	struct word w[MAX_WORDS];
};

struct ctx {
	const struct hark_chunk_turn *turns;
	size_t n_turns;
	struct sent *s;
	size_t n_s;
	struct hark_structure_params p;
	struct hark_date meeting;  /* year 0 = unknown */
};

static char *dup_str(const char *s)
{
	size_t L = strlen(s) + 1;
	char *d = malloc(L);

	if (d)
		memcpy(d, s, L);
	return d;
}

/* ------------------------------------------------------------ words --- */

static int is_wordc(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '\'' || c >= 0x80;
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Fills sw with the words of text[b..e) (first MAX_WORDS). */
static void words_of(const char *text, size_t b, size_t e, struct swords *sw)
{
	size_t i = b;

	sw->text = text;
	sw->n = 0;
	while (i < e && sw->n < MAX_WORDS) {
		while (i < e && !is_wordc((unsigned char)text[i]))
			i++;
		if (i >= e)
			break;
		size_t ws = i;
		while (i < e && is_wordc((unsigned char)text[i]))
			i++;
		size_t we = i;
		while (we > ws && text[we - 1] == '\'')
			we--;
		while (ws < we && text[ws] == '\'')
			ws++;
		if (ws == we)
			continue;
		struct word *w = &sw->w[sw->n++];
		size_t k, L = we - ws;
		w->b = ws;
		w->e = we;
		if (L >= WORD_BYTES)
			L = WORD_BYTES - 1;
		for (k = 0; k < L; k++)
			w->lw[k] = lower(text[ws + k]);
		w->lw[L] = '\0';
	}
}

static int weq(const struct swords *sw, size_t i, const char *s)
{
	return i < sw->n && strcmp(sw->w[i].lw, s) == 0;
}

/* 1 when the space-separated words of phrase start at word i. */
static int at(const struct swords *sw, size_t i, const char *phrase)
{
	const char *p = phrase;

	while (*p) {
		const char *q = strchr(p, ' ');
		size_t L = q ? (size_t)(q - p) : strlen(p);
		if (i >= sw->n || strlen(sw->w[i].lw) != L || memcmp(sw->w[i].lw, p, L) != 0)
			return 0;
		i++;
		p += L;
		if (*p == ' ')
			p++;
	}
	return 1;
}

/* Number of words of phrase (for skipping past a match). */
static size_t phrase_words(const char *phrase)
{
	size_t n = 1;

	for (; *phrase; phrase++)
		if (*phrase == ' ')
			n++;
	return n;
}

static int in_list(const char *w, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(w, list[i]) == 0)
			return 1;
	return 0;
}

/* Index of the first phrase of list matching at word i, or -1. */
static int at_list(const struct swords *sw, size_t i, const char *const *list)
{
	for (size_t k = 0; list[k]; k++)
		if (at(sw, i, list[k]))
			return (int)k;
	return -1;
}

static const char *const STOP[] = {
	"a", "an", "the", "and", "or", "but", "if", "then", "so", "to", "of", "in", "on", "at",
	"for", "with", "by", "from", "as", "is", "are", "was", "were", "be", "been", "being",
	"it", "its", "it's", "this", "that", "these", "those", "there", "here", "we", "you",
	"i", "he", "she", "they", "them", "our", "your", "my", "his", "her", "their", "me",
	"us", "do", "does", "did", "have", "has", "had", "will", "would", "can", "could",
	"should", "may", "might", "must", "shall", "not", "no", "yes", "um", "uh", "yeah",
	"okay", "ok", "right", "well", "just", "also", "very", "really", "about", "into",
	"out", "up", "down", "over", "what", "which", "who", "whom", "when", "where", "why",
	"how", "all", "any", "some", "one", "two", "three", "more", "most", "other", "another",
	"than", "too", "only", "own", "same", "such", "each", "both", "few", "many", "much",
	"like", "think", "know", "mean", "thing", "things", "lot", "kind", "sort", "get",
	"got", "go", "going", "gonna", "let's", "let", "i'm", "we're", "you're", "that's",
	"don't", "i'll", "we'll", "there's", "first", "next", "after", "before", "finally",
	"once", "while", "because", "said", "say", "says", "mm", "hmm", "oh", "ah", "actually",
	"maybe", "probably", "something", "anything", "yep", "sure", "now", "again", "even",
	"still", "back", "way", "make", "want", "need", "see", "look", "guess", "bit", "quite",
	"disfmarker", "vocalsound", "gap", "pause", "laugh", "regarding", "concerning",
	"including", "include", "includes", "several", "aspects", "topics", "ideas",
	/* contractions and greetings carry no topic */
	"didn't", "isn't", "wasn't", "aren't", "weren't", "can't", "won't", "doesn't",
	"haven't", "hasn't", "couldn't", "wouldn't", "shouldn't", "i've", "you've", "we've",
	"they're", "they've", "he's", "she's", "what's", "it'll", "you'll", "i'd", "we'd",
	"hello", "hi", "hey", "bye", "thanks", "thank", "please", "neither", "either",
	"though", "although", "here's", "there're", "whether", NULL,
};

static int is_stop(const char *w)
{
	if (w[0] == '\0' || w[1] == '\0')
		return 1;
	return in_list(w, STOP);
}

/* ------------------------------------------------------- sentences --- */

/*
 * A second dated clause inside a sentence ("..., and in 2021 we ...",
 * "...; in March we ..."): returns where the first part ends (the comma or
 * semicolon) and sets *next to the start of "in", or returns e when there is
 * none. Such a sentence holds two events, so it is cut there.
 */
static int ascii_prefix(const char *t, const char *lowp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(t[i]) != lowp[i])
			return 0;
	return 1;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t date_clause(const char *tx, size_t b, size_t e, size_t *next)
{
	static const char *const LEADS[] = { ", and in ", "; and in ", "; in ", ", then in ",
					     ", and then in ", NULL };
	static const char *const MONTHS[] = { "january", "february", "march", "april", "may",
					      "june", "july", "august", "september", "october",
					      "november", "december", NULL };

	for (size_t i = b; i < e; i++) {
		if (tx[i] != ',' && tx[i] != ';')
			continue;
		for (size_t k = 0; LEADS[k]; k++) {
			size_t L = strlen(LEADS[k]), a = i + L, in_at = i + L - 3;
			int ok = 0;

			if (a >= e || !ascii_prefix(tx + i, LEADS[k], L))
				continue;
			if (a + 4 <= e && (tx[a] == '1' || tx[a] == '2') && is_digit(tx[a + 1]) &&
			    is_digit(tx[a + 2]) && is_digit(tx[a + 3]) &&
			    (a + 4 == e || !is_wordc((unsigned char)tx[a + 4])))
				ok = 1;
			for (size_t m = 0; !ok && MONTHS[m]; m++) {
				size_t ml = strlen(MONTHS[m]);

				ok = a + ml <= e && ascii_prefix(tx + a, MONTHS[m], ml) &&
				     (a + ml == e || !is_wordc((unsigned char)tx[a + ml]));
			}
			if (ok) {
				*next = in_at;
				return i;
			}
		}
	}
	return e;
}

static int split_all(struct ctx *c, char *err, size_t errlen)
{
	size_t cap = 0, total = 0;
	struct hark_cue_span *sp = NULL;
	int rc = 0;

	sp = malloc(MAX_SENTS_TURN * sizeof(*sp));
	if (!sp) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t t = 0; t < c->n_turns; t++) {
		const char *tx = c->turns[t].text;
		size_t L = tx ? strlen(tx) : 0, ns = 0;
		total += L;
		if (total > MAX_INPUT) {
			hark_errbuf_set(err, errlen, "input over %u bytes", (unsigned)MAX_INPUT);
			rc = HARK_ERR_LIMIT;
			goto out;
		}
		if (L == 0)
			continue;
		hark_cues_split_sentences(tx, L, sp, MAX_SENTS_TURN, &ns);
		for (size_t k = 0; k < ns && c->n_s < MAX_SENTS; k++) {
			size_t b = sp[k].start, e0 = sp[k].end;
			/* one sentence, or its dated clauses one by one */
			while (b < e0 && c->n_s < MAX_SENTS) {
				size_t next = e0, e = date_clause(tx, b, e0, &next), j;

				for (j = b; j < e && !is_wordc((unsigned char)tx[j]); j++)
					;
				if (j < e) {
					if (c->n_s == cap) {
						size_t nc = cap ? cap * 2 : 64;
						struct sent *ns2 = realloc(c->s, nc * sizeof(*ns2));
						if (!ns2) {
							rc = HARK_ERR_NOMEM;
							goto out;
						}
						c->s = ns2;
						cap = nc;
					}
					c->s[c->n_s].turn = t;
					c->s[c->n_s].b = b;
					c->s[c->n_s].e = e;
					c->n_s++;
				}
				b = e < e0 ? next : e0;
			}
		}
	}
out:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	free(sp);
	return rc;
}

/* Span of text[b..e) of turn t (times interpolated inside the turn). */
static struct hark_diagram_span span_of(const struct ctx *c, size_t t, size_t b, size_t e)
{
	struct hark_diagram_span s = { -1.0, -1.0, (long)t };
	const struct hark_chunk_turn *tu = &c->turns[t];
	size_t L = tu->text ? strlen(tu->text) : 0;

	if (tu->start_s >= 0 && tu->end_s >= tu->start_s && isfinite(tu->start_s) &&
	    isfinite(tu->end_s)) {
		double d = tu->end_s - tu->start_s;
		s.start_s = L ? tu->start_s + d * (double)b / (double)L : tu->start_s;
		s.end_s = L ? tu->start_s + d * (double)e / (double)L : tu->end_s;
		if (s.end_s < s.start_s)
			s.end_s = s.start_s;
	}
	return s;
}

/* --------------------------------------------------------- labels --- */

/* Cleans text[0..len) into buf (cap bytes): bracketed markers removed,
 * control bytes and invalid UTF-8 replaced, spaces collapsed, trimmed of
 * punctuation at the ends, then cut to max_chars characters at a word
 * boundary ("..." appended when cut). Returns the byte length (0 = empty). */
static size_t make_label(const char *text, size_t len, size_t max_chars, char *buf, size_t cap)
{
	size_t o = 0, i = 0, chars = 0;
	size_t last_space_o = 0, last_space_chars = 0;
	int cut = 0;

	if (max_chars < 4)
		max_chars = 4;
	while (i < len && o + 8 < cap) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '{' || ch == '[' || ch == '<') {
			char close = ch == '{' ? '}' : ch == '[' ? ']' : '>';
			size_t j = i + 1;
			while (j < len && j - i < 40 && text[j] != close)
				j++;
			if (j < len && text[j] == close) {
				i = j + 1;
				ch = ' ';
				goto space;
			}
		}
		if (ch < 0x20 || ch == 0x7f) {
			i++;
			ch = ' ';
			goto space;
		}
		if (ch == ' ') {
			i++;
space:
			if (o > 0 && buf[o - 1] != ' ') {
				last_space_o = o;
				last_space_chars = chars;
				buf[o++] = ' ';
				chars++;
			}
		} else {
			size_t n = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3
			    : (ch & 0xf8) == 0xf0 ? 4 : 0;
			int ok = n > 0 && i + n <= len;
			for (size_t k = 1; ok && k < n; k++)
				if (((unsigned char)text[i + k] & 0xc0) != 0x80)
					ok = 0;
			if (ok && n == 2 && ch < 0xc2)
				ok = 0;
			if (ok) {
				memcpy(buf + o, text + i, n);
				o += n;
				i += n;
			} else {
				buf[o++] = '?';
				i++;
			}
			chars++;
		}
		if (chars > max_chars || o + 8 >= HARK_DIAGRAM_MAX_LABEL) {
			cut = 1;
			break;
		}
	}
	if (i < len && !cut)
		cut = 1;
	if (cut) {
		if (last_space_o > 0 && last_space_chars + 3 <= max_chars && last_space_chars > max_chars / 3) {
			o = last_space_o;
		} else {
			/* no usable word boundary: cut at a character boundary */
			size_t cc = 0, k = 0;
			while (k < o && cc + 3 < max_chars) {
				unsigned char ch = (unsigned char)buf[k];
				size_t n = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3 : 4;
				if (k + n > o)
					break;
				k += n;
				cc++;
			}
			o = k;
		}
	}
	/* trim spaces and trailing punctuation */
	while (o > 0 && (buf[o - 1] == ' ' || buf[o - 1] == ',' || buf[o - 1] == '.' ||
			 buf[o - 1] == ';' || buf[o - 1] == ':' || buf[o - 1] == '-'))
		o--;
	size_t s0 = 0;
	while (s0 < o && (buf[s0] == ' ' || buf[s0] == ',' || buf[s0] == '-' || buf[s0] == ':'))
		s0++;
	if (s0)
		memmove(buf, buf + s0, o - s0);
	o -= s0;
	if (o > 0 && cut) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return o;
}

/* Label of text[b..e) of turn t into buf. */
static size_t label_of(const struct ctx *c, size_t t, size_t b, size_t e, char *buf, size_t cap)
{
	const char *tx = c->turns[t].text;

	if (!tx || e <= b)
		return 0;
	return make_label(tx + b, e - b, c->p.max_label, buf, cap);
}

/* --------------------------------------------------------- detect --- */

static const char *const SEQUENCERS[] = {
	"first", "firstly", "then", "next", "afterwards", "finally", "lastly", "after that",
	"second", "secondly", "third", "thirdly", "once", "and then", "after this",
	"to start", "to begin", "begin by", "start by", NULL,
};
static const char *const CONDITIONS[] = {
	"if", "otherwise", "else", "unless", "in case", "if not", "if so", "whether", NULL,
};
static const char *const IMPERATIVES[] = {
	"check", "open", "send", "click", "submit", "fill", "review", "approve", "wait", "go",
	"take", "add", "run", "restart", "call", "create", "enter", "install", "log", "sign",
	"pay", "ship", "choose", "select", "verify", "reject", "escalate", "deploy", "test",
	"build", "merge", "close", "print", "save", "upload", "download", "put", "turn",
	"press", "remove", "boil", "pour", "mix", "stir", "cut", "heat", "plug", "unplug",
	"write", "read", "ask", "tell", "notify", "email", "contact", "confirm", "update",
	"move", "record", "file", "archive", "measure", "repeat", "start", "stop", "retry",
	"try", "assign", "schedule", "book", "prepare", "collect", "compare", "forward",
	"return", "refund", "inspect", "clean", "wash", "replace", "attach", "fix", "push",
	"pull", "label", "sort", "pack", "scan", "weigh", "order", "register", "apply",
	"contact", "keep", "leave", "set", "place", "drop", "hand", "use", "discard", NULL,
};
static const char *const LEADERS[] = {
	"so", "and", "now", "just", "please", "you", "we", "then", "next", "first", "finally",
	"lastly", "afterwards", "second", "third", "well", "okay", "ok", "also", NULL,
};
static const char *const MONTHS[] = {
	"january", "february", "march", "april", "may", "june", "july", "august",
	"september", "october", "november", "december", NULL,
};
static const char *const MONTHS3[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
	NULL,
};
static const char *const TL_MARKERS[] = {
	"phase", "stage", "milestone", "milestones", "quarter", "decade", "century", "era",
	"roadmap", "deadline", "launch", "launched", "founded", "released", "release",
	"ago", "history", "historically", "later", "eventually", "since", "until", "by then",
	"back in", "years", "months", "weeks", "born", "started", "began", "opened", "moved",
	NULL,
};
static const char *const REL_PERIOD[] = {
	"last year", "next year", "this year", "last month", "next month", "last quarter",
	"next quarter", "last decade", "following year", "the year after", "a year later",
	"two years later", "years later", "the next day", "the following week", NULL,
};
static const char *const MM_NOUNS[] = {
	"aspects", "aspect", "topics", "topic", "themes", "theme", "areas", "area", "ideas",
	"idea", "factors", "categories", "pros", "cons", "points", "dimensions", "elements",
	"options", "issues", "concerns", "benefits", "advantages", "disadvantages", "risks",
	"features", "brainstorm", "brainstorming", "pillars", "sides", "angles", NULL,
};
static const char *const MM_PHRASES[] = {
	"regarding", "as for", "in terms of", "when it comes to", "on the one hand",
	"on the other hand", "another topic", "another thing", "another idea",
	"another aspect", "related to", "for example", "such as", "includes", "include",
	"including", "covers", "concerning", "as well as", "also", "touches on", NULL,
};
static const char *const HI_RELS[] = {
	"reports to", "report to", "reporting to", "reports directly to", "is part of",
	"are part of", "part of", "consists of", "consist of", "belongs to", "belong to",
	"made up of", "manages", "managed by", "leads", "led by", "oversees", "overseen by",
	"head of", "heads", "in charge of", "under", "subsidiary", "subsidiaries",
	"divided into", "split into", "comprises", "composed of", "contains", "runs",
	"run by", "sits under", "falls under", "is responsible for", "report into", NULL,
};
static const char *const HI_UNITS[] = {
	"team", "teams", "department", "departments", "division", "divisions", "unit",
	"units", "organization", "organisation", "org", "branch", "branches", "office",
	"section", "sections", "ceo", "cto", "cfo", "coo", "vp", "director", "directors",
	"manager", "managers", "chief", "president", "boss", "head", "supervisor", "lead",
	"hierarchy", "chart", "subteam", "subteams", "squad", "squads", "group", "groups",
	"company", "board", "module", "modules", "subsystem", "category", "chapter", NULL,
};
static const char *const SEQ_VERBS[] = {
	"sends", "replies", "responds", "asks", "calls", "returns", "forwards", "receives",
	"acknowledges", "notifies", "requests", "answers", "tells", "passes", "pings",
	"emails", "queries", "hands", "redirects", "posts", "publishes", "pushes", "fetches",
	"confirms", "writes", "texts", "invokes", "messages", "delivers", "relays", "issues",
	"transfers", "signals", "informs", "reports", "sent", "replied", "responded",
	"returned", "forwarded", "answered", "told", "notified", "asked", "called", NULL,
};
static const char *const SEQ_NOUNS[] = {
	"client", "server", "browser", "api", "database", "db", "service", "backend",
	"frontend", "gateway", "handshake", "request", "response", "message", "token", "ack",
	"payload", "callback", "endpoint", "queue", "broker", "cache", "proxy", "reply",
	NULL,
};

enum { F_SEQ, F_COND, F_IMP, F_DATE, F_YEAR, F_MARK, F_MMN, F_MMP, F_ENUM, F_HREL,
       F_HUNIT, F_SVERB, F_SNOUN, F_DIAL, F_N };

/* Word index after leading discourse words and sequencers. */
static size_t skip_leaders(const struct swords *sw)
{
	size_t i = 0;

	while (i < sw->n && i < 4) {
		if (at(sw, i, "after that") || at(sw, i, "and then") || at(sw, i, "after this")) {
			i += 2;
			continue;
		}
		if (weq(sw, i, "step") && i + 1 < sw->n) {
			i += 2;
			continue;
		}
		if (in_list(sw->w[i].lw, LEADERS)) {
			i++;
			continue;
		}
		break;
	}
	return i;
}

static int is_year(const char *w)
{
	if (strlen(w) != 4)
		return 0;
	for (int k = 0; k < 4; k++)
		if (w[k] < '0' || w[k] > '9')
			return 0;
	int y = atoi(w);
	return y >= 1800 && y <= 2199;
}

static int month_at(const struct swords *sw, size_t i)
{
	if (i >= sw->n)
		return 0;
	for (int m = 0; MONTHS[m]; m++) {
		if (strcmp(sw->w[i].lw, MONTHS[m]) == 0 ||
		    (m != 4 && strcmp(sw->w[i].lw, MONTHS3[m]) == 0 && i + 1 < sw->n &&
		     (is_year(sw->w[i + 1].lw) || (sw->w[i + 1].lw[0] >= '0' && sw->w[i + 1].lw[0] <= '9')))) {
			/* "may" and "march" as verbs: need a number or year, or a preposition before */
			if (m == 4 || m == 2) {
				int ok = (i + 1 < sw->n && sw->w[i + 1].lw[0] >= '0' &&
					  sw->w[i + 1].lw[0] <= '9') ||
					 (i > 0 && (weq(sw, i - 1, "in") || weq(sw, i - 1, "last") ||
						    weq(sw, i - 1, "next") || weq(sw, i - 1, "since") ||
						    weq(sw, i - 1, "by") || weq(sw, i - 1, "until") ||
						    weq(sw, i - 1, "early") || weq(sw, i - 1, "late") ||
						    weq(sw, i - 1, "mid") || weq(sw, i - 1, "of") ||
						    weq(sw, i - 1, "this")));
				if (!ok)
					continue;
			}
			return m + 1;
		}
	}
	return 0;
}

/* Adds the features of one sentence to f. */
static void sentence_features(const struct ctx *c, const struct sent *s, double *f)
{
	struct swords sw;
	const char *tx = c->turns[s->turn].text;
	struct hark_date_match dm[8];
	size_t nd = 0, commas = 0;
	double mmp = 0, hu = 0, sn = 0, mk = 0;
	int seq = 0, cond = 0;

	words_of(tx, s->b, s->e, &sw);
	if (sw.n == 0)
		return;
	size_t lead = skip_leaders(&sw);
	for (size_t i = 0; i < sw.n && i < 4; i++) {
		int k = at_list(&sw, i, SEQUENCERS);
		if (k >= 0 && (i == 0 || k == 1 || k == 14)) {
			seq = 1;
			break;
		}
		if (weq(&sw, i, "step") && i + 1 < sw.n) {
			seq = 1;
			break;
		}
	}
	f[F_SEQ] += seq;
	for (size_t i = 0; i < sw.n && cond < 2; i++)
		if (at_list(&sw, i, CONDITIONS) >= 0)
			cond++;
	f[F_COND] += cond;
	if (lead < sw.n && in_list(sw.w[lead].lw, IMPERATIVES) &&
	    !(lead + 1 < sw.n && (weq(&sw, lead + 1, "is") || weq(&sw, lead + 1, "was"))))
		f[F_IMP] += 1;

	if (hark_dates_find(tx + s->b, s->e - s->b, c->meeting.year ? &c->meeting : NULL, dm, 8,
			    &nd) == 0)
		f[F_DATE] += (double)(nd > 2 ? 2 : nd);
	int years = 0;
	for (size_t i = 0; i < sw.n; i++) {
		if (is_year(sw.w[i].lw) || month_at(&sw, i) || at_list(&sw, i, REL_PERIOD) >= 0)
			years++;
		if (at_list(&sw, i, TL_MARKERS) >= 0)
			mk += 0.5;
		if (at_list(&sw, i, MM_PHRASES) >= 0)
			mmp += 0.75;
		if (in_list(sw.w[i].lw, MM_NOUNS))
			f[F_MMN] += 1;
		if (at_list(&sw, i, HI_RELS) >= 0)
			f[F_HREL] += 1;
		if (in_list(sw.w[i].lw, HI_UNITS))
			hu += 0.5;
		if (i > 0 && in_list(sw.w[i].lw, SEQ_VERBS) && !is_stop(sw.w[i - 1].lw))
			f[F_SVERB] += (sw.w[i].lw[strlen(sw.w[i].lw) - 1] == 's') ? 1.0 : 0.5;
		if (in_list(sw.w[i].lw, SEQ_NOUNS))
			sn += 0.5;
	}
	f[F_YEAR] += years > 2 ? 2 : years;
	f[F_MARK] += mk > 1 ? 1 : mk;
	f[F_MMP] += mmp > 1.5 ? 1.5 : mmp;
	f[F_HUNIT] += hu > 1.5 ? 1.5 : hu;
	f[F_SNOUN] += sn > 1 ? 1 : sn;
	for (size_t j = s->b; j < s->e; j++)
		if (tx[j] == ',' || tx[j] == ';')
			commas++;
	if (commas >= 2 && !seq)
		f[F_ENUM] += 1;
	if (memchr(tx + s->b, ':', s->e - s->b))
		f[F_ENUM] += 0.5;
}

static int same_speaker(const char *a, const char *b)
{
	if (!a || !b || !*a || !*b)
		return 0;
	return strcmp(a, b) == 0;
}

/* Dialogue feature: alternating named speakers that address each other. */
static double dialogue_feature(const struct ctx *c)
{
	double d = 0;
	size_t alt = 0;

	for (size_t t = 1; t < c->n_turns; t++) {
		const char *a = c->turns[t - 1].speaker, *b = c->turns[t].speaker;
		if (!a || !b || !*a || !*b || same_speaker(a, b))
			continue;
		alt++;
		const char *tx = c->turns[t].text;
		if (!tx)
			continue;
		/* addresses the previous speaker by name, or answers a question */
		size_t la = strlen(a);
		int addr = 0;
		for (const char *q = tx; *q && !addr && la > 0; q++) {
			if (q != tx && is_wordc((unsigned char)q[-1]))
				continue;
			size_t k = 0;
			while (k < la && q[k] && lower(q[k]) == lower(a[k]))
				k++;
			if (k == la && !is_wordc((unsigned char)q[la]))
				addr = 1;
		}
		const char *pt = c->turns[t - 1].text;
		if (pt && strchr(pt, '?'))
			d += 0.5;
		if (addr)
			d += 0.5;
	}
	return alt >= 2 ? d : 0;
}

static const char *const FNAME[F_N] = {
	"sequencers", "conditions", "imperatives", "dates", "years/months", "time markers",
	"topic nouns", "topic phrases", "enumerations", "relations", "org words",
	"message verbs", "system nouns", "dialogue",
};

/* Per-type weighted sums of the features. */
static void type_scores(const double *f, double *sc)
{
	sc[HARK_DIAGRAM_FLOWCHART] = 1.0 * f[F_SEQ] + 1.5 * f[F_COND] + 1.0 * f[F_IMP];
	sc[HARK_DIAGRAM_TIMELINE] = 1.5 * f[F_DATE] + 1.5 * f[F_YEAR] + 1.0 * f[F_MARK];
	sc[HARK_DIAGRAM_MINDMAP] = 1.0 * f[F_MMN] + 1.0 * f[F_MMP] + 0.75 * f[F_ENUM];
	sc[HARK_DIAGRAM_HIERARCHY] = 2.0 * f[F_HREL] + 1.0 * f[F_HUNIT];
	sc[HARK_DIAGRAM_SEQUENCE] = 2.0 * f[F_SVERB] + 1.0 * f[F_SNOUN] + 1.0 * f[F_DIAL];
}

static const int TYPE_FEATS[HARK_DIAGRAM_N_TYPES][4] = {
	{ F_SEQ, F_COND, F_IMP, -1 },
	{ F_DATE, F_YEAR, F_MARK, -1 },
	{ F_MMN, F_MMP, F_ENUM, -1 },
	{ F_HREL, F_HUNIT, -1, -1 },
	{ F_SVERB, F_SNOUN, F_DIAL, -1 },
};

static void detect_ctx(const struct ctx *c, struct hark_structure_scores *out)
{
	double f[F_N] = { 0 }, raw[HARK_DIAGRAM_N_TYPES];
	size_t o = 0;

	for (size_t i = 0; i < c->n_s; i++)
		sentence_features(c, &c->s[i], f);
	f[F_DIAL] = dialogue_feature(c);
	type_scores(f, raw);
	double norm = c->n_s ? sqrt((double)c->n_s) : 1.0;
	int best = HARK_DIAGRAM_MINDMAP, second = -1;
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		out->score[t] = raw[t] / norm;
		if (raw[t] > raw[best])
			best = t;
	}
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++)
		if (t != best && (second < 0 || raw[t] > raw[second]))
			second = t;
	if (raw[best] < 1.0) {
		out->best = HARK_DIAGRAM_MINDMAP;
		out->confidence = 0;
		snprintf(out->reason, sizeof(out->reason),
			 "no clear structure (best feature score %.2f): mind map of topics",
			 raw[best]);
		return;
	}
	out->best = best;
	out->confidence = (raw[best] - raw[second]) / raw[best];
	o = (size_t)snprintf(out->reason, sizeof(out->reason), "%s %.1f:",
			     hark_diagram_type_name(best), raw[best]);
	for (int k = 0; k < 4 && TYPE_FEATS[best][k] >= 0 && o < sizeof(out->reason); k++) {
		int fi = TYPE_FEATS[best][k];
		if (f[fi] <= 0)
			continue;
		o += (size_t)snprintf(out->reason + o, sizeof(out->reason) - o, " %s %.1f",
				      FNAME[fi], f[fi]);
	}
	if (o < sizeof(out->reason))
		snprintf(out->reason + o, sizeof(out->reason) - o, "; next %s %.1f",
			 hark_diagram_type_name(second), raw[second]);
}

static int parse_meeting(const char *s, struct hark_date *d)
{
	int y, m, dd;
	char tail;

	memset(d, 0, sizeof(*d));
	if (!s)
		return 0;
	if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3 || !hark_date_valid(y, m, dd))
		return HARK_ERR_INVALID_ARG;
	d->year = y;
	d->month = m;
	d->day = dd;
	return 0;
}

int hark_structure_detect(const struct hark_chunk_turn *turns, size_t n,
			  struct hark_structure_scores *out)
{
	struct ctx c;
	int rc;

	if (!out || (!turns && n > 0))
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	out->best = HARK_DIAGRAM_MINDMAP;
	snprintf(out->reason, sizeof(out->reason), "no text: mind map");
	if (n == 0)
		return 0;
	memset(&c, 0, sizeof(c));
	c.turns = turns;
	c.n_turns = n;
	c.p = hark_structure_default_params();
	rc = split_all(&c, NULL, 0);
	(void)rc; /* on a cap or no memory, score the sentences split so far */
	detect_ctx(&c, out);
	free(c.s);
	return 0;
}

struct hark_structure_params hark_structure_default_params(void)
{
	struct hark_structure_params p;

	memset(&p, 0, sizeof(p));
	p.max_nodes = 24;
	p.max_label = 60;
	p.page = 1;
	p.title = NULL;
	p.meeting_date = NULL;
	return p;
}

/* ------------------------------------------------------ word counts --- */

#define WC_SIZE 16384u

struct wc_ent {
	char w[WORD_BYTES];
	size_t count;
	size_t first;   /* first sentence index */
	size_t turn, b, e; /* first occurrence */
};

struct wc_table {
	struct wc_ent *e;   /* WC_SIZE slots, w[0] == 0 = empty */
	size_t used;
};

static unsigned long hash_str(const char *s)
{
	unsigned long h = 5381;

	while (*s)
		h = h * 33u + (unsigned char)*s++;
	return h;
}

static struct wc_ent *wc_get(struct wc_table *t, const char *w, int add)
{
	unsigned long h = hash_str(w) & (WC_SIZE - 1);

	for (size_t k = 0; k < WC_SIZE; k++) {
		struct wc_ent *e = &t->e[(h + k) & (WC_SIZE - 1)];
		if (e->w[0] == '\0') {
			if (!add || t->used + 1 >= WC_SIZE * 3 / 4)
				return NULL;
			snprintf(e->w, sizeof(e->w), "%s", w);
			t->used++;
			return e;
		}
		if (strcmp(e->w, w) == 0)
			return e;
	}
	return NULL;
}

static int wc_content(const char *w)
{
	if (is_stop(w) || strlen(w) < 3)
		return 0;
	if (w[0] >= '0' && w[0] <= '9')
		return 0;
	return 1;
}

/* Counts the content words of sentences [from, to) into t (skipping words
 * whose lower form equals skip, when given). */
static void wc_count(const struct ctx *c, size_t from, size_t to, struct wc_table *t,
		     const char *must, const char *skip, size_t excl)
{
	struct swords *sw = malloc(sizeof(*sw));

	if (!sw)
		return;
	for (size_t i = from; i < to; i++) {
		const struct sent *s = &c->s[i];
		if (i == excl)
			continue;
		words_of(c->turns[s->turn].text, s->b, s->e, sw);
		if (must) {
			int found = 0;
			for (size_t k = 0; k < sw->n && !found; k++)
				if (strcmp(sw->w[k].lw, must) == 0)
					found = 1;
			if (!found)
				continue;
		}
		for (size_t k = 0; k < sw->n; k++) {
			if (!wc_content(sw->w[k].lw) || (skip && strcmp(sw->w[k].lw, skip) == 0))
				continue;
			struct wc_ent *e = wc_get(t, sw->w[k].lw, 1);
			if (!e)
				continue;
			if (e->count++ == 0) {
				e->first = i;
				e->turn = s->turn;
				e->b = sw->w[k].b;
				e->e = sw->w[k].e;
			}
		}
	}
	free(sw);
}

/* Best entry not yet taken (count desc, first mention asc); NULL if none. */
static struct wc_ent *wc_best(struct wc_table *t, size_t min_count)
{
	struct wc_ent *best = NULL;

	for (size_t k = 0; k < WC_SIZE; k++) {
		struct wc_ent *e = &t->e[k];
		if (e->w[0] == '\0' || e->count < min_count)
			continue;
		if (!best || e->count > best->count ||
		    (e->count == best->count && (e->first < best->first ||
						 (e->first == best->first && e->b < best->b))))
			best = e;
	}
	return best;
}

/* ------------------------------------------------------- building --- */

struct bld {
	struct ctx *c;
	struct hark_diagram *d;
	int next;
	char lab[1024];
};

/* Adds a node with a fresh id (written to id, 16 bytes). */
static int b_node(struct bld *b, const char *label, const char *kind,
		  const struct hark_diagram_span *sp, char *id)
{
	snprintf(id, 16, "n%d", b->next++);
	return hark_diagram_add_node(b->d, id, label && *label ? label : "(untitled)", kind, NULL,
				     sp);
}

static int b_node_text(struct bld *b, size_t t, size_t from, size_t to, const char *kind,
		       char *id)
{
	struct hark_diagram_span sp = span_of(b->c, t, from, to);

	if (label_of(b->c, t, from, to, b->lab, sizeof(b->lab)) == 0)
		snprintf(b->lab, sizeof(b->lab), "(untitled)");
	/* steps, decisions, events and units read as sentences: capital first
	 * letter (sub-topic keywords stay as spoken) */
	if (strcmp(kind, "subtopic") != 0 && b->lab[0] >= 'a' && b->lab[0] <= 'z')
		b->lab[0] = (char)(b->lab[0] - 'a' + 'A');
	return b_node(b, b->lab, kind, &sp, id);
}

static const struct hark_diagram_span NO_SPAN = { -1.0, -1.0, -1 };

/* -------------------------------------------------------- flowchart --- */

enum { U_STEP, U_COND, U_ELSE };

struct funit {
	size_t si;            /* sentence */
	int kind;
	int neg;              /* "unless": the action is the "no" branch */
	size_t cb, ce;        /* condition bytes (U_COND) */
	size_t ab, ae;        /* action / step bytes */
	size_t ob, oe;        /* inline otherwise bytes (U_COND), ob == oe = none */
};

static size_t trim_b(const char *tx, size_t b, size_t e)
{
	while (b < e && !is_wordc((unsigned char)tx[b]))
		b++;
	return b;
}

static int has_flow_feature(const struct swords *sw)
{
	size_t lead = skip_leaders(sw);

	for (size_t i = 0; i < sw->n && i < 3; i++)
		if (at_list(sw, i, SEQUENCERS) >= 0 || (weq(sw, i, "step") && i + 1 < sw->n))
			return 1;
	for (size_t i = 0; i < sw->n; i++)
		if (at_list(sw, i, CONDITIONS) >= 0)
			return 1;
	return lead < sw->n && in_list(sw->w[lead].lw, IMPERATIVES);
}

/* Parses sentence si into *u; returns 0 when it has no words. */
static int flow_unit(const struct ctx *c, size_t si, struct swords *sw, struct funit *u)
{
	const struct sent *s = &c->s[si];
	const char *tx = c->turns[s->turn].text;
	size_t lead, i;

	memset(u, 0, sizeof(*u));
	u->si = si;
	words_of(tx, s->b, s->e, sw);
	if (sw->n == 0)
		return 0;
	lead = skip_leaders(sw);
	if (lead >= sw->n)
		lead = 0;
	u->ab = sw->w[lead].b;
	u->ae = s->e;
	if (at(sw, lead, "otherwise") || at(sw, lead, "else") || at(sw, lead, "if not") ||
	    at(sw, lead, "or else") || at(sw, lead, "if no") || at(sw, lead, "if it isn't") ||
	    at(sw, lead, "if it's not") || at(sw, lead, "if that fails")) {
		size_t k = lead + (at(sw, lead, "otherwise") || at(sw, lead, "else") ? 1
				   : at(sw, lead, "if it isn't") || at(sw, lead, "if it's not") ||
					     at(sw, lead, "if that fails") ? 3 : 2);
		u->kind = U_ELSE;
		u->ab = k < sw->n ? sw->w[k].b : s->e;
		/* "if not, ..." may keep the rest of the condition up to a comma */
		if (k < sw->n && !at(sw, lead, "otherwise") && !at(sw, lead, "else")) {
			const char *cm = memchr(tx + sw->w[lead].e, ',', s->e - sw->w[lead].e);
			if (cm)
				u->ab = trim_b(tx, (size_t)(cm - tx) + 1, s->e);
		}
		if (u->ab >= s->e)
			u->kind = U_STEP, u->ab = sw->w[lead].b;
		return 1;
	}
	for (i = 0; i < sw->n; i++)
		if (weq(sw, i, "if") || weq(sw, i, "unless") || at(sw, i, "in case"))
			break;
	if (i >= sw->n || weq(sw, i + 1, "so") || weq(sw, i + 1, "not"))
		return 1;
	size_t cstart_w = i + (at(sw, i, "in case") ? 2 : 1);
	if (cstart_w >= sw->n)
		return 1;
	u->neg = weq(sw, i, "unless");
	/* inline otherwise */
	size_t ow = sw->n;
	for (size_t k = cstart_w; k < sw->n; k++)
		if (weq(sw, k, "otherwise") || (weq(sw, k, "else") && k > 0 && weq(sw, k - 1, "or")) ||
		    (weq(sw, k, "else") && !weq(sw, k - 1, "or"))) {
			ow = weq(sw, k, "else") && weq(sw, k - 1, "or") ? k - 1 : k;
			u->ob = trim_b(tx, sw->w[k].e, s->e);
			u->oe = s->e;
			if (u->ob >= u->oe)
				u->ob = u->oe = 0;
			break;
		}
	size_t lim = ow < sw->n ? sw->w[ow].b : s->e;
	if (i <= lead) {
		/* "If X, Y" / "If X then Y" */
		size_t cb = sw->w[cstart_w].b, ce = lim, ab = lim;
		const char *cm = memchr(tx + cb, ',', lim - cb);
		size_t thenw = sw->n, subj = sw->n;
		static const char *const SUBJ[] = { "we", "you", "i", "they", "please", "just",
						    NULL };
		for (size_t k = cstart_w + 1; k < sw->n && sw->w[k].b < lim; k++)
			if (weq(sw, k, "then")) {
				thenw = k;
				break;
			}
		/* "if X we do Y": the action starts at its subject */
		for (size_t k = cstart_w + 2; k < sw->n && sw->w[k].b < lim; k++)
			if (in_list(sw->w[k].lw, SUBJ)) {
				subj = k;
				break;
			}
		if (subj < sw->n && (!cm || sw->w[subj].b < (size_t)(cm - tx)) &&
		    (thenw == sw->n || subj < thenw)) {
			ce = sw->w[subj].b;
			ab = ce;
		} else if (cm && (thenw == sw->n || (size_t)(cm - tx) < sw->w[thenw].b)) {
			ce = (size_t)(cm - tx);
			ab = trim_b(tx, ce + 1, lim);
			/* skip a "then" right after the comma */
			if (ab + 4 <= lim && lower(tx[ab]) == 't' && lower(tx[ab + 1]) == 'h' &&
			    lower(tx[ab + 2]) == 'e' && lower(tx[ab + 3]) == 'n' &&
			    (ab + 4 == lim || !is_wordc((unsigned char)tx[ab + 4])))
				ab = trim_b(tx, ab + 4, lim);
		} else if (thenw < sw->n) {
			ce = sw->w[thenw].b;
			ab = trim_b(tx, sw->w[thenw].e, lim);
		}
		u->cb = cb;
		u->ce = ce;
		u->ab = ab;
		u->ae = lim;
	} else {
		/* "Y if X" */
		u->ab = sw->w[lead].b;
		u->ae = sw->w[i].b;
		u->cb = sw->w[cstart_w].b;
		u->ce = lim;
	}
	if (u->ae <= u->ab) {
		if (u->ob < u->oe) {
			/* "if X, otherwise Z": yes continues, no goes to Z */
			u->ab = u->ae = 0;
		} else {
			u->kind = U_STEP;
			u->ab = sw->w[lead].b;
			u->ae = s->e;
			return 1;
		}
	}
	if (u->ce <= u->cb)
		return u->kind = U_STEP, u->ab = sw->w[lead].b, u->ae = s->e, 1;
	u->kind = U_COND;
	return 1;
}

static size_t unit_cost(const struct funit *u)
{
	if (u->kind != U_COND)
		return 1;
	return 1 + (u->ae > u->ab) + (u->oe > u->ob);
}

struct pend {
	char id[16];
	const char *label;
};

#define MAX_PEND 16

static int connect_pending(struct bld *b, struct pend *pd, size_t *np, const char *to,
			   const struct hark_diagram_span *sp)
{
	int rc = 0;

	for (size_t k = 0; k < *np && rc == 0; k++)
		if (strcmp(pd[k].id, to) != 0)
			rc = hark_diagram_add_edge(b->d, pd[k].id, to, pd[k].label, -1, sp);
	*np = 0;
	return rc;
}

static void push_pend(struct pend *pd, size_t *np, const char *id, const char *label)
{
	if (*np >= MAX_PEND)
		return;
	snprintf(pd[*np].id, sizeof(pd[*np].id), "%s", id);
	pd[*np].label = label;
	(*np)++;
}

/* Builds the flowchart; returns 1 (in *absent) when the text has no steps. */
static int build_flow(struct bld *b, int *absent, char *err, size_t errlen)
{
	struct ctx *c = b->c;
	struct funit *u = NULL;
	struct swords *sw = malloc(sizeof(*sw));
	size_t nu = 0, nfeat = 0, cap = c->n_s < MAX_ITEMS ? c->n_s : MAX_ITEMS;
	size_t budget = (c->p.max_nodes > 2 ? c->p.max_nodes - 2 : 1);
	int rc = 0, long_in = c->n_s > 40;
	struct pend pd[MAX_PEND];
	size_t np = 0;
	char id[16], sid[16], eid[16];

	u = calloc(cap ? cap : 1, sizeof(*u));
	if (!u || !sw) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_s && nu < cap; i++) {
		const struct sent *s = &c->s[i];
		words_of(c->turns[s->turn].text, s->b, s->e, sw);
		int feat = has_flow_feature(sw);
		if (long_in && !feat)
			continue;
		nfeat += (size_t)feat;
		if (flow_unit(c, i, sw, &u[nu]))
			nu++;
	}
	if (nu == 0 || nfeat == 0) {
		*absent = 1;
		goto out;
	}
	/* pages: greedy packing of unit costs */
	int page = 1, pages = 1;
	size_t used = 0, first = 0, last = nu;
	for (size_t k = 0; k < nu; k++) {
		size_t cost = unit_cost(&u[k]);
		if (used + cost > budget && used > 0) {
			pages++;
			used = 0;
			if (pages == c->p.page)
				first = k;
			else if (pages == c->p.page + 1)
				last = k;
		}
		used += cost;
	}
	page = c->p.page;
	if (page > pages) {
		hark_errbuf_set(err, errlen, "page %d of %d", page, pages);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	b->d->page = page;
	b->d->pages = pages;
	snprintf(b->lab, sizeof(b->lab), page > 1 ? "Continued from page %d" : "Start", page - 1);
	rc = b_node(b, b->lab, "start", &NO_SPAN, sid);
	if (rc)
		goto out;
	push_pend(pd, &np, sid, NULL);
	for (size_t k = first; k < last && rc == 0; k++) {
		const struct funit *x = &u[k];
		const struct sent *s = &c->s[x->si];
		struct hark_diagram_span sp = span_of(c, s->turn, s->b, s->e);
		if (x->kind == U_ELSE) {
			size_t j, found = MAX_PEND;
			for (j = 0; j < np; j++)
				if (pd[j].label && strcmp(pd[j].label, "no") == 0)
					found = j;
			rc = b_node_text(b, s->turn, x->ab, x->ae, "step", id);
			if (rc)
				break;
			if (found < MAX_PEND) {
				rc = hark_diagram_add_edge(b->d, pd[found].id, id, "no", -1, &sp);
				memmove(&pd[found], &pd[found + 1], (np - found - 1) * sizeof(pd[0]));
				np--;
				push_pend(pd, &np, id, NULL);
			} else {
				rc = connect_pending(b, pd, &np, id, &sp);
				push_pend(pd, &np, id, NULL);
			}
			continue;
		}
		if (x->kind == U_STEP) {
			rc = b_node_text(b, s->turn, x->ab, x->ae, "step", id);
			if (rc == 0)
				rc = connect_pending(b, pd, &np, id, &sp);
			push_pend(pd, &np, id, NULL);
			continue;
		}
		/* decision */
		char did[16], aid[16];
		size_t L = make_label(c->turns[s->turn].text + x->cb, x->ce - x->cb,
				      c->p.max_label - 1, b->lab, sizeof(b->lab) - 2);
		if (L == 0)
			L = (size_t)snprintf(b->lab, sizeof(b->lab), "condition");
		if (b->lab[L - 1] != '?') {
			b->lab[L] = '?';
			b->lab[L + 1] = '\0';
		}
		struct hark_diagram_span csp = span_of(c, s->turn, x->cb, x->ce);
		rc = b_node(b, b->lab, "decision", &csp, did);
		if (rc == 0)
			rc = connect_pending(b, pd, &np, did, &sp);
		if (rc)
			break;
		const char *yes = x->neg ? "no" : "yes", *no = x->neg ? "yes" : "no";
		if (x->ae > x->ab) {
			rc = b_node_text(b, s->turn, x->ab, x->ae, "step", aid);
			if (rc == 0)
				rc = hark_diagram_add_edge(b->d, did, aid, yes, -1, &sp);
			push_pend(pd, &np, aid, NULL);
		} else {
			push_pend(pd, &np, did, yes);
		}
		if (rc)
			break;
		if (x->oe > x->ob) {
			rc = b_node_text(b, s->turn, x->ob, x->oe, "step", aid);
			if (rc == 0)
				rc = hark_diagram_add_edge(b->d, did, aid, no, -1, &sp);
			push_pend(pd, &np, aid, NULL);
		} else {
			push_pend(pd, &np, did, no);
		}
	}
	if (rc)
		goto out;
	snprintf(b->lab, sizeof(b->lab), page < pages ? "Continued on page %d" : "End", page + 1);
	rc = b_node(b, b->lab, "end", &NO_SPAN, eid);
	if (rc == 0)
		rc = connect_pending(b, pd, &np, eid, &NO_SPAN);
out:
	if (rc == HARK_ERR_NOMEM || rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "flowchart: %s", hark_strerror(rc));
	free(u);
	free(sw);
	return rc;
}

/* --------------------------------------------------------- timeline --- */

struct event {
	size_t si;
	int dated;
	long days;
	double order;
	char iso[11];
};

/* The first resolvable date of sentence s; returns 1 and fills *days/iso when
 * found. *marked says whether it has any time cue at all. */
static int sentence_date(const struct ctx *c, const struct sent *s, struct swords *sw,
			 long *days, char *iso, int *marked)
{
	const char *tx = c->turns[s->turn].text;
	struct hark_date_match dm[8];
	size_t nd = 0, best_pos = (size_t)-1;
	struct hark_date best = { 0, 0, 0 };
	const struct hark_date *M = c->meeting.year ? &c->meeting : NULL;

	*marked = 0;
	words_of(tx, s->b, s->e, sw);
	if (hark_dates_find(tx + s->b, s->e - s->b, M, dm, 8, &nd) == 0) {
		if (nd > 0)
			*marked = 1;
		for (size_t k = 0; k < nd; k++)
			if (dm[k].resolved) {
				best_pos = s->b + dm[k].start;
				best = dm[k].date;
				break;
			}
	}
	for (size_t i = 0; i < sw->n; i++) {
		struct hark_date d = { 0, 0, 0 };
		int m;
		if (at_list(sw, i, TL_MARKERS) >= 0 || at_list(sw, i, SEQUENCERS) >= 0)
			*marked = 1;
		if (sw->w[i].b >= best_pos)
			break;
		if (is_year(sw->w[i].lw) && !(i > 0 && month_at(sw, i - 1))) {
			d.year = atoi(sw->w[i].lw);
			d.month = 1;
			d.day = 1;
		} else if ((m = month_at(sw, i)) != 0) {
			if (i + 1 < sw->n && is_year(sw->w[i + 1].lw)) {
				d.year = atoi(sw->w[i + 1].lw);
			} else if (i + 2 < sw->n && is_year(sw->w[i + 2].lw) &&
				   sw->w[i + 1].lw[0] >= '0' && sw->w[i + 1].lw[0] <= '9') {
				continue; /* "March 3, 2021": dates.h has it */
			} else if (M) {
				d.year = M->year;
				if (i > 0 && weq(sw, i - 1, "last") && m >= M->month)
					d.year--;
				else if (i > 0 && weq(sw, i - 1, "next") && m <= M->month)
					d.year++;
			}
			d.month = m;
			d.day = 1;
		} else if (M && (at(sw, i, "last year") || at(sw, i, "next year") ||
				 at(sw, i, "this year") || at(sw, i, "last month") ||
				 at(sw, i, "next month") || at(sw, i, "this month"))) {
			int delta = weq(sw, i, "last") ? -1 : weq(sw, i, "next") ? 1 : 0;
			d.year = M->year;
			d.month = 1;
			d.day = 1;
			if (weq(sw, i + 1, "year")) {
				d.year += delta;
			} else {
				int mm = M->month + delta;
				if (mm < 1)
					mm = 12, d.year--;
				if (mm > 12)
					mm = 1, d.year++;
				d.month = mm;
			}
		}
		if (d.year && hark_date_valid(d.year, d.month, d.day)) {
			best = d;
			best_pos = sw->w[i].b;
			break;
		}
	}
	if (best.year == 0 || !hark_date_valid(best.year, best.month, best.day))
		return 0;
	*marked = 1;
	*days = hark_date_to_days(&best);
	hark_date_format(&best, iso);
	return 1;
}

static int cmp_event(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	if (x->order < y->order)
		return -1;
	if (x->order > y->order)
		return 1;
	return x->si < y->si ? -1 : x->si > y->si;
}

static int build_timeline(struct bld *b, int *absent, char *err, size_t errlen)
{
	struct ctx *c = b->c;
	struct swords *sw = malloc(sizeof(*sw));
	size_t cap = c->n_s < MAX_ITEMS ? c->n_s : MAX_ITEMS, ne = 0, ndated = 0;
	struct event *ev = calloc(cap ? cap : 1, sizeof(*ev));
	int rc = 0, long_in = c->n_s > 40;
	char id[16];

	if (!ev || !sw) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_s && ne < cap; i++) {
		int marked = 0;
		struct event *e = &ev[ne];
		memset(e, 0, sizeof(*e));
		e->si = i;
		e->dated = sentence_date(c, &c->s[i], sw, &e->days, e->iso, &marked);
		if (!e->dated && long_in)
			continue;
		if (!e->dated && !marked && sw->n < 3)
			continue;
		ndated += (size_t)e->dated;
		ne++;
	}
	if (ne == 0 || (ndated == 0 && long_in)) {
		*absent = 1;
		goto out;
	}
	if (ndated == 0) {
		int any = 0, marked = 0;
		long dd;
		char iso[11];
		for (size_t k = 0; k < ne && !any; k++) {
			sentence_date(c, &c->s[ev[k].si], sw, &dd, iso, &marked);
			any = marked;
		}
		if (!any) {
			*absent = 1;
			goto out;
		}
	}
	/* orders: dated = days; undated follow the previous event in mention order */
	{
		double prev = 0;
		int have_prev = 0;
		size_t k0 = 0;
		for (size_t k = 0; k < ne; k++) {
			if (ev[k].dated) {
				ev[k].order = (double)ev[k].days;
				if (!have_prev) {
					for (size_t j = k0; j < k; j++)
						ev[j].order = ev[k].order - 0.01 * (double)(k - j);
				}
				prev = ev[k].order;
				have_prev = 1;
			} else if (have_prev) {
				prev += 0.01;
				ev[k].order = prev;
			} else if (ndated == 0) {
				ev[k].order = (double)k;
			}
		}
	}
	qsort(ev, ne, sizeof(*ev), cmp_event);
	size_t per = c->p.max_nodes;
	int pages = (int)((ne + per - 1) / per);
	if (c->p.page > pages) {
		hark_errbuf_set(err, errlen, "page %d of %d", c->p.page, pages);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	b->d->page = c->p.page;
	b->d->pages = pages;
	size_t from = (size_t)(c->p.page - 1) * per, to = from + per < ne ? from + per : ne;
	for (size_t k = from; k < to && rc == 0; k++) {
		const struct sent *s = &c->s[ev[k].si];
		rc = b_node_text(b, s->turn, s->b, s->e, "event", id);
		if (rc)
			break;
		struct hark_diagram_node *nd = &b->d->nodes[b->d->n_nodes - 1];
		nd->order = ndated ? ev[k].order : (double)k;
		if (ev[k].dated) {
			nd->date = dup_str(ev[k].iso);
			if (!nd->date)
				rc = HARK_ERR_NOMEM;
		}
	}
out:
	if (rc == HARK_ERR_NOMEM || rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "timeline: %s", hark_strerror(rc));
	free(ev);
	free(sw);
	return rc;
}

/* ------------------------------------------------- names (parties) --- */

struct name {
	char key[64];         /* lower-cased, determiners dropped */
	size_t turn, b, e;    /* first mention */
	int person;
};

struct names {
	struct name *v;
	size_t n;
	int merge_affix; /* 1: "origin" and "origin server" are one name */
};

static const char *const DETS[] = {
	"the", "a", "an", "our", "their", "his", "her", "its", "my", "your", "both", "each",
	"every", "all", "this", "that", "then", "and", "also", "now", "currently", "directly",
	"first", "finally", "next", "so", "whole", NULL,
};
static const char *const UNIT_WORDS[] = {
	"team", "teams", "department", "division", "unit", "group", "office", "company",
	"organization", "organisation", "branch", "section", "board", "squad", "subsidiary",
	"lab", "committee", "module", "service", "system", "layer", "region", "store",
	"desk", "center", "centre", "function", "council", "agency", "ministry", NULL,
};
static const char *const ROLE_WORDS[] = {
	"ceo", "cto", "cfo", "coo", "vp", "manager", "director", "lead", "head", "engineer",
	"president", "chief", "officer", "supervisor", "analyst", "designer", "intern",
	"developer", "assistant", "founder", "chair", "secretary", "minister", NULL,
};

/* Index of the name for words [w0, w1) of sw (trimmed of determiners),
 * added when new; -1 when empty, a pronoun, or the table is full. */
static long name_of(struct names *nm, const struct ctx *c, size_t turn, const struct swords *sw,
		    size_t w0, size_t w1)
{
	char key[64];
	size_t o = 0;

	while (w0 < w1 && in_list(sw->w[w0].lw, DETS))
		w0++;
	while (w1 > w0 && in_list(sw->w[w1 - 1].lw, DETS))
		w1--;
	if (w1 - w0 > 5)
		w0 = w1 - 5;
	if (w0 >= w1)
		return -1;
	if (w1 - w0 == 1) {
		static const char *const PRON[] = { "it", "they", "he", "she", "we", "i", "you",
			"this", "which", "who", "that", "them", "him", "there", "everyone", NULL };
		if (in_list(sw->w[w0].lw, PRON))
			return -1;
	}
	for (size_t k = w0; k < w1; k++) {
		size_t L = strlen(sw->w[k].lw);
		if (o + L + 2 >= sizeof(key))
			break;
		if (o)
			key[o++] = ' ';
		memcpy(key + o, sw->w[k].lw, L);
		o += L;
	}
	key[o] = '\0';
	/* a plural/singular pair is one name */
	for (size_t k = 0; k < nm->n; k++) {
		size_t a = strlen(nm->v[k].key);
		const char *ek = nm->v[k].key;
		if (nm->merge_affix && a != o) {
			const char *lo = a > o ? ek : key, *sh = a > o ? key : ek;
			size_t ll = a > o ? a : o, ls = a > o ? o : a;
			if ((strncmp(lo, sh, ls) == 0 && lo[ls] == ' ') ||
			    (strcmp(lo + ll - ls, sh) == 0 && lo[ll - ls - 1] == ' '))
				return (long)k;
		}
		if (strcmp(nm->v[k].key, key) == 0 ||
		    (o == a + 1 && key[o - 1] == 's' && strncmp(nm->v[k].key, key, a) == 0) ||
		    (a == o + 1 && nm->v[k].key[a - 1] == 's' && strncmp(nm->v[k].key, key, o) == 0))
			return (long)k;
	}
	if (nm->n >= MAX_NAMES)
		return -1;
	if (nm->n % 32 == 0) {
		struct name *v = realloc(nm->v, (nm->n + 32) * sizeof(*v));
		if (!v)
			return -1;
		nm->v = v;
	}
	struct name *x = &nm->v[nm->n];
	memset(x, 0, sizeof(*x));
	snprintf(x->key, sizeof(x->key), "%s", key);
	x->turn = turn;
	x->b = sw->w[w0].b;
	x->e = sw->w[w1 - 1].e;
	int unit = 0, role = 0;
	for (size_t k = w0; k < w1; k++) {
		unit |= in_list(sw->w[k].lw, UNIT_WORDS);
		role |= in_list(sw->w[k].lw, ROLE_WORDS);
	}
	unsigned char f = (unsigned char)sw->text[sw->w[w0].b];
	x->person = !unit && (role || (f >= 'A' && f <= 'Z'));
	(void)c;
	return (long)nm->n++;
}

/* ------------------------------------------------------- hierarchy --- */

static const char *const CHILD_FIRST[] = {
	"reports directly to", "reports to", "report to", "reporting to", "report into",
	"reports into", "is part of", "are part of", "is a part of", "belongs to", "belong to",
	"is under", "are under", "sits under", "sit under", "falls under", "fall under",
	"is managed by", "are managed by", "managed by", "is led by", "are led by", "led by",
	"is run by", "are run by", "run by", "overseen by", "works for", "work for",
	"works under", "work under", "is a subsidiary of", "are subsidiaries of",
	"is a division of", "is a unit of", "is inside", "are inside", "is within",
	"are within", "answers to", "answer to", "is supervised by", "supervised by",
	"is owned by", "owned by", "is contained in", "is included in", NULL,
};
static const char *const PARENT_FIRST[] = {
	"consists of", "consist of", "is made up of", "are made up of", "made up of",
	"is composed of", "composed of", "is divided into", "divided into", "is split into",
	"split into", "comprises", "comprise", "contains", "contain", "manages", "manage",
	"leads", "oversees", "oversee", "heads", "runs", "supervises", "is in charge of",
	"in charge of", "is responsible for", "owns", "includes", "has", "have", NULL,
};

static int unit_in(const struct swords *sw)
{
	for (size_t k = 0; k < sw->n; k++)
		if (in_list(sw->w[k].lw, UNIT_WORDS) || in_list(sw->w[k].lw, HI_UNITS))
			return 1;
	return 0;
}

static int gap_has(const char *tx, size_t from, size_t to, const char *set)
{
	for (size_t j = from; j < to; j++)
		if (strchr(set, tx[j]))
			return 1;
	return 0;
}

static const char *const CLAUSE_END[] = {
	"which", "who", "whom", "that", "while", "because", "where", "but", "so", "since",
	"although", "when", "with", "is", "are", "was", "were", "has", "have", "will", "and",
	"also", "reports", "report", "for", "on", "in", "at", "plus", "or", "if", "unless",
	"after", "before", "once", "until", "then", "from", "by", "via", "using", "to", NULL,
};

/* Items of the list at words [w0, ...) into idx (split at ',', "and",
 * "or", "plus"); a ':' restarts the list. Returns the count. */
static size_t right_items(struct names *nm, const struct ctx *c, size_t turn,
			  const struct swords *sw, size_t w0, int list, long *idx, size_t cap)
{
	size_t n = 0, start = w0, k;
	const char *tx = sw->text;

	/* "three teams: A, B and C" */
	for (k = w0; k < sw->n && k < w0 + 6; k++)
		if (k > w0 && gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ":")) {
			start = k;
			break;
		}
	for (k = start; k <= sw->n && n < cap; k++) {
		int end = k == sw->n || k - start >= 6;
		int sep = 0;
		if (!end && k > start) {
			if (gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ".;!?()"))
				end = 1;
			else if (gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ","))
				sep = 1;
		}
		if (!end && (weq(sw, k, "and") || weq(sw, k, "or") || weq(sw, k, "plus")))
			sep = 2;
		else if (!end && k > start && in_list(sw->w[k].lw, CLAUSE_END))
			end = 1;
		if (end || sep) {
			if (k > start) {
				long x = name_of(nm, c, turn, sw, start, k);
				if (x >= 0)
					idx[n++] = x;
			}
			if (end || !list)
				break;
			start = sep == 2 ? k + 1 : k;
			if (sep == 1 && (weq(sw, k, "and") || weq(sw, k, "or")))
				start = k + 1;
		}
	}
	return n;
}

/* Items to the left of word r (back to a clause boundary). */
static size_t left_items(struct names *nm, const struct ctx *c, size_t turn,
			 const struct swords *sw, size_t r, long *idx, size_t cap)
{
	size_t l = r, n = 0;
	const char *tx = sw->text;

	/* "X, who reports to Y": the relative pronoun stands for X */
	if (l > 1 && (weq(sw, l - 1, "who") || weq(sw, l - 1, "which") || weq(sw, l - 1, "that")) &&
	    gap_has(tx, sw->w[l - 2].e, sw->w[l - 1].b, ","))
		l--, r--;
	while (l > 0 && r - l < 8) {
		size_t k = l - 1;
		if (gap_has(tx, sw->w[k].e, sw->w[l].b, ".;:!?()"))
			break;
		if (in_list(sw->w[k].lw, CLAUSE_END) && !weq(sw, k, "and") && !weq(sw, k, "or") &&
		    !weq(sw, k, "also"))
			break;
		if ((weq(sw, k, "and") || weq(sw, k, "but")) && k > 0 &&
		    gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ","))
			break;
		if (weq(sw, k, "if") || weq(sw, k, "under"))
			break;
		l = k;
	}
	size_t start = l;
	for (size_t k = l; k <= r && n < cap; k++) {
		int sep = k == r || weq(sw, k, "and") || weq(sw, k, "or") ||
			  (k > start && gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ","));
		if (!sep)
			continue;
		if (k > start) {
			long x = name_of(nm, c, turn, sw, start, k);
			if (x >= 0)
				idx[n++] = x;
		}
		start = (k < r && (weq(sw, k, "and") || weq(sw, k, "or"))) ? k + 1 : k;
	}
	return n;
}

struct rel {
	long parent, child;
	size_t si;
};

/* 1 when to is reachable from from along parent->child links. */
static int reaches(const struct rel *r, size_t nr, long from, long to)
{
	unsigned char seen[MAX_NAMES];
	long stack[MAX_NAMES];
	size_t sp = 0;

	if (from == to)
		return 1;
	memset(seen, 0, sizeof(seen));
	stack[sp++] = from;
	seen[from] = 1;
	while (sp > 0) {
		long x = stack[--sp];
		for (size_t k = 0; k < nr; k++) {
			if (r[k].parent != x)
				continue;
			long y = r[k].child;
			if (y == to)
				return 1;
			if (!seen[y] && sp < MAX_NAMES) {
				seen[y] = 1;
				stack[sp++] = y;
			}
		}
	}
	return 0;
}

static int build_hier(struct bld *b, int *absent, char *err, size_t errlen)
{
	struct ctx *c = b->c;
	struct swords *sw = malloc(sizeof(*sw));
	struct names nm = { NULL, 0, 0 };
	struct rel *rl = calloc(MAX_ITEMS, sizeof(*rl));
	size_t nr = 0;
	long *order = NULL, *page_of = NULL;
	char (*ids)[16] = NULL;
	int rc = 0;

	if (!sw || !rl) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_s && nr < MAX_ITEMS - 16; i++) {
		const struct sent *s = &c->s[i];
		words_of(c->turns[s->turn].text, s->b, s->e, sw);
		for (size_t k = 1; k < sw->n && nr < MAX_ITEMS - 16; k++) {
			int cf = at_list(sw, k, CHILD_FIRST), pf = -1;
			if (cf < 0)
				pf = at_list(sw, k, PARENT_FIRST);
			const char *ph;
			if (cf >= 0)
				ph = CHILD_FIRST[cf];
			else if (pf >= 0)
				ph = PARENT_FIRST[pf];
			else
				continue;
			if (pf >= 0 && (strcmp(ph, "has") == 0 || strcmp(ph, "have") == 0 ||
					strcmp(ph, "includes") == 0 || strcmp(ph, "runs") == 0 ||
					strcmp(ph, "owns") == 0) && !unit_in(sw))
				continue;
			long L[8], R[8];
			size_t nl = left_items(&nm, c, s->turn, sw, k, L, 8);
			size_t nrr = right_items(&nm, c, s->turn, sw, k + phrase_words(ph),
						 pf >= 0, R, 8);
			for (size_t a = 0; a < nl; a++)
				for (size_t z = 0; z < nrr; z++) {
					long par = cf >= 0 ? R[z] : L[a], ch = cf >= 0 ? L[a] : R[z];
					int dup = 0;
					for (size_t q = 0; q < nr && !dup; q++)
						dup = rl[q].parent == par && rl[q].child == ch;
					if (dup || par == ch || reaches(rl, nr, ch, par))
						continue;
					rl[nr].parent = par;
					rl[nr].child = ch;
					rl[nr].si = i;
					nr++;
				}
			k += phrase_words(ph) - 1;
		}
	}
	if (nr == 0) {
		*absent = 1;
		goto out;
	}
	/* breadth-first order from the roots (names never a child), then the rest */
	size_t nn = nm.n, no = 0;
	order = malloc(nn * sizeof(*order));
	page_of = malloc(nn * sizeof(*page_of));
	ids = malloc(nn * sizeof(*ids));
	if (!order || !page_of || !ids) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t k = 0; k < nn; k++)
		page_of[k] = -1;
	for (size_t k = 0; k < nn; k++) {
		int is_child = 0, used = 0;
		for (size_t q = 0; q < nr; q++) {
			is_child |= rl[q].child == (long)k;
			used |= rl[q].child == (long)k || rl[q].parent == (long)k;
		}
		if (!is_child && used) {
			order[no++] = (long)k;
			page_of[k] = 0;
		}
	}
	for (size_t h = 0; h < no; h++)
		for (size_t q = 0; q < nr; q++)
			if (rl[q].parent == order[h] && page_of[rl[q].child] < 0) {
				page_of[rl[q].child] = 0;
				order[no++] = rl[q].child;
			}
	size_t per = c->p.max_nodes;
	int pages = (int)((no + per - 1) / per);
	if (pages < 1)
		pages = 1;
	if (c->p.page > pages) {
		hark_errbuf_set(err, errlen, "page %d of %d", c->p.page, pages);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	for (size_t h = 0; h < no; h++)
		page_of[order[h]] = (long)(h / per) + 1;
	b->d->page = c->p.page;
	b->d->pages = pages;
	for (size_t h = 0; h < no && rc == 0; h++) {
		const struct name *x = &nm.v[order[h]];
		if (page_of[order[h]] != c->p.page)
			continue;
		rc = b_node_text(b, x->turn, x->b, x->e, x->person ? "person" : "unit", ids[order[h]]);
	}
	for (size_t q = 0; q < nr && rc == 0; q++) {
		if (page_of[rl[q].parent] != c->p.page || page_of[rl[q].child] != c->p.page)
			continue;
		if (b->d->n_edges >= HARK_DIAGRAM_MAX_EDGES)
			break;
		const struct sent *s = &c->s[rl[q].si];
		struct hark_diagram_span sp = span_of(c, s->turn, s->b, s->e);
		rc = hark_diagram_add_edge(b->d, ids[rl[q].parent], ids[rl[q].child], NULL, -1, &sp);
	}
	if (rc == 0 && b->d->n_nodes == 0)
		*absent = 1;
out:
	if (rc == HARK_ERR_NOMEM || rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "hierarchy: %s", hark_strerror(rc));
	free(nm.v);
	free(rl);
	free(order);
	free(page_of);
	free(ids);
	free(sw);
	return rc;
}

/* -------------------------------------------------------- sequence --- */

static const char *const DIRECT_OBJ[] = {
	"asks", "calls", "tells", "notifies", "pings", "emails", "answers", "queries",
	"informs", "messages", "texts", "invokes", "asked", "called", "told", "notified",
	"answered", "informed", "contacts", "contacted", "pays", "paid", "signals", NULL,
};

struct msg {
	long from, to;
	size_t si, lb, le;    /* label bytes in the turn */
};

static int build_seq(struct bld *b, int *absent, char *err, size_t errlen)
{
	struct ctx *c = b->c;
	struct swords *sw = malloc(sizeof(*sw));
	struct names nm = { NULL, 0, 1 };
	struct msg *ms = calloc(MAX_ITEMS, sizeof(*ms));
	size_t nmsg = 0;
	long *pidx = NULL;
	int rc = 0;
	char (*ids)[16] = NULL;

	if (!sw || !ms) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->n_s && nmsg < MAX_ITEMS; i++) {
		const struct sent *s = &c->s[i];
		const char *tx = c->turns[s->turn].text;
		words_of(tx, s->b, s->e, sw);
		for (size_t v = 1; v < sw->n && nmsg < MAX_ITEMS; v++) {
			if (!in_list(sw->w[v].lw, SEQ_VERBS) ||
			    (is_stop(sw->w[v - 1].lw) && !weq(sw, v - 1, "and") &&
			     !weq(sw, v - 1, "then")))
				continue;
			long L[2], from = -1, to = -1;
			size_t nl = 0;
			if (weq(sw, v - 1, "and") || weq(sw, v - 1, "then")) {
				/* "X does A and sends B to Y": the sentence's subject */
				if (nmsg > 0 && ms[nmsg - 1].si == i) {
					from = ms[nmsg - 1].from;
				} else {
					size_t a = skip_leaders(sw), z;
					while (a < v && in_list(sw->w[a].lw, DETS))
						a++;
					unsigned char f0 = a < v ? (unsigned char)tx[sw->w[a].b] : 0;
					for (z = a; z < v && z < a + 3 && !is_stop(sw->w[z].lw); z++) {
						unsigned char fz = (unsigned char)tx[sw->w[z].b];
						if (z > a && f0 >= 'A' && f0 <= 'Z' && !(fz >= 'A' && fz <= 'Z'))
							break;
						size_t lz = strlen(sw->w[z].lw);
						if (z > a && (in_list(sw->w[z].lw, SEQ_VERBS) ||
							      (lz > 3 && sw->w[z].lw[lz - 1] == 's')))
							break;
					}
					if (z > a)
						from = name_of(&nm, c, s->turn, sw, a, z);
				}
			} else {
				nl = left_items(&nm, c, s->turn, sw, v, L, 2);
				if (nl > 0)
					from = L[nl - 1];
				else if (nmsg > 0)
					from = ms[nmsg - 1].to;
			}
			if (from < 0)
				continue;
			size_t lab_end = s->e, k;
			if (weq(sw, v, "receives") || weq(sw, v, "received")) {
				for (k = v + 1; k < sw->n && !weq(sw, k, "from"); k++)
					;
				if (k + 1 < sw->n) {
					long R[1];
					if (right_items(&nm, c, s->turn, sw, k + 1, 0, R, 1) == 1) {
						to = from;
						from = R[0];
						lab_end = sw->w[k].b;
					}
				}
			} else if (in_list(sw->w[v].lw, DIRECT_OBJ)) {
				size_t k1 = v + 1;
				while (k1 < sw->n && in_list(sw->w[k1].lw, DETS))
					k1++;
				size_t e2 = k1;
				while (e2 < sw->n && e2 < k1 + 3 && !is_stop(sw->w[e2].lw) &&
				       !gap_has(tx, sw->w[e2 - 1].e, sw->w[e2].b, ",;:"))
					e2++;
				if (e2 > k1) {
					to = name_of(&nm, c, s->turn, sw, v + 1, e2);
					/* label: verb + what follows the receiver */
					if (to >= 0 && e2 < sw->n) {
						ms[nmsg].lb = sw->w[v].b;
						lab_end = s->e;
					}
				}
			} else {
				int fromv = weq(sw, v, "requests") || weq(sw, v, "fetches") ||
					    weq(sw, v, "requested") || weq(sw, v, "fetched");
				/* "A sends Bob the key": a capitalised receiver right after the verb */
				unsigned char f1 = v + 1 < sw->n ? (unsigned char)tx[sw->w[v + 1].b] : 0;
				if (f1 >= 'A' && f1 <= 'Z' && !weq(sw, v + 1, "i")) {
					to = name_of(&nm, c, s->turn, sw, v + 1, v + 2);
					lab_end = s->e;
				}
				for (k = v + 1; to < 0 && k < sw->n && k < v + 10; k++)
					if ((weq(sw, k, "to") || weq(sw, k, "into") ||
					     (fromv && weq(sw, k, "from"))) && k + 1 < sw->n &&
					    !in_list(sw->w[k + 1].lw, IMPERATIVES)) {
						long R[1];
						if (right_items(&nm, c, s->turn, sw, k + 1, 0, R, 1) == 1) {
							to = R[0];
							lab_end = sw->w[k].b;
						}
						break;
					}
			}
			if (to < 0 && nmsg > 0)
				to = ms[nmsg - 1].from; /* "replies", "returns it" */
			if (to < 0 || to == from)
				continue;
			ms[nmsg].from = from;
			ms[nmsg].to = to;
			ms[nmsg].si = i;
			ms[nmsg].lb = sw->w[v].b;
			/* short verb phrase: at most six words */
			size_t cnt = 0, le = sw->w[v].e;
			for (k = v; k < sw->n && sw->w[k].b < lab_end && cnt < 6; k++, cnt++) {
				if (k > v && gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ",;:"))
					break;
				le = sw->w[k].e;
			}
			ms[nmsg].le = le;
			nmsg++;
			/* go on after this clause: "..., and B returns X to A" */
			while (v + 1 < sw->n && sw->w[v + 1].e <= le)
				v++;
		}
	}
	if (nmsg == 0) {
		/* a dialogue: each turn is a message to the previous other speaker */
		for (size_t t = 0; t < c->n_turns && nmsg < MAX_ITEMS; t++) {
			const char *a = c->turns[t].speaker;
			if (!a || !*a || !c->turns[t].text)
				continue;
			const char *o = NULL;
			for (size_t q = t; q-- > 0;)
				if (c->turns[q].speaker && *c->turns[q].speaker &&
				    !same_speaker(c->turns[q].speaker, a)) {
					o = c->turns[q].speaker;
					break;
				}
			for (size_t q = t + 1; !o && q < c->n_turns; q++)
				if (c->turns[q].speaker && *c->turns[q].speaker &&
				    !same_speaker(c->turns[q].speaker, a))
					o = c->turns[q].speaker;
			if (!o)
				continue;
			/* the first sentence of the turn */
			size_t si = c->n_s;
			for (size_t q = 0; q < c->n_s; q++)
				if (c->s[q].turn == t) {
					si = q;
					break;
				}
			if (si == c->n_s)
				continue;
			struct swords tmp;
			tmp.n = 0;
			long fa, fo;
			{
				/* names from the speaker labels */
				struct swords *w2 = sw;
				words_of(a, 0, strlen(a), w2);
				fa = name_of(&nm, c, t, w2, 0, w2->n);
				words_of(o, 0, strlen(o), w2);
				fo = name_of(&nm, c, t, w2, 0, w2->n);
				(void)tmp;
			}
			if (fa < 0 || fo < 0 || fa == fo)
				continue;
			words_of(c->turns[t].text, c->s[si].b, c->s[si].e, sw);
			ms[nmsg].from = fa;
			ms[nmsg].to = fo;
			ms[nmsg].si = si;
			ms[nmsg].lb = c->s[si].b;
			ms[nmsg].le = sw->n > 6 ? sw->w[5].e : c->s[si].e;
			nmsg++;
		}
		/* speaker-label names point into the labels, not the text: mark them */
		for (size_t k = 0; k < nm.n; k++)
			nm.v[k].turn = (size_t)-1;
	}
	if (nmsg == 0) {
		*absent = 1;
		goto out;
	}
	/* pages: greedy, a page holds at most max_nodes participants */
	pidx = malloc(nm.n * sizeof(*pidx));
	ids = malloc(nm.n * sizeof(*ids));
	if (!pidx || !ids) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	int page = 1;
	size_t k0 = 0, used = 0, edges = 0;
	size_t from_m = 0, to_m = nmsg;
	for (size_t k = 0; k < nm.n; k++)
		pidx[k] = 0;
	for (size_t q = 0; q < nmsg; q++) {
		size_t add = (pidx[ms[q].from] != page) + (pidx[ms[q].to] != page && ms[q].to != ms[q].from);
		if ((used + add > c->p.max_nodes || edges + 1 > HARK_DIAGRAM_MAX_EDGES) && q > k0) {
			if (page == c->p.page)
				to_m = q;
			page++;
			if (page == c->p.page)
				from_m = q;
			k0 = q;
			used = 0;
			edges = 0;
			add = 2;
		}
		pidx[ms[q].from] = page;
		pidx[ms[q].to] = page;
		used += add;
		edges++;
	}
	int pages = page;
	if (c->p.page > pages) {
		hark_errbuf_set(err, errlen, "page %d of %d", c->p.page, pages);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	b->d->page = c->p.page;
	b->d->pages = pages;
	for (size_t k = 0; k < nm.n; k++)
		pidx[k] = -1;
	for (size_t q = from_m; q < to_m && rc == 0; q++) {
		long e2[2] = { ms[q].from, ms[q].to };
		for (int z = 0; z < 2 && rc == 0; z++) {
			long x = e2[z];
			if (pidx[x] >= 0)
				continue;
			const struct name *nmx = &nm.v[x];
			struct hark_diagram_span sp = NO_SPAN;
			if (nmx->turn != (size_t)-1) {
				sp = span_of(c, nmx->turn, nmx->b, nmx->e);
				if (label_of(c, nmx->turn, nmx->b, nmx->e, b->lab, sizeof(b->lab)) == 0)
					snprintf(b->lab, sizeof(b->lab), "%s", nmx->key);
			} else {
				/* a speaker label: find its original spelling */
				const char *lab = nmx->key;
				for (size_t t = 0; t < c->n_turns; t++) {
					const char *spk = c->turns[t].speaker;
					if (!spk)
						continue;
					struct swords *w2 = sw;
					words_of(spk, 0, strlen(spk), w2);
					char kk[64];
					size_t o2 = 0;
					for (size_t wi = 0; wi < w2->n && o2 + 26 < sizeof(kk); wi++) {
						if (o2)
							kk[o2++] = ' ';
						size_t LL = strlen(w2->w[wi].lw);
						memcpy(kk + o2, w2->w[wi].lw, LL);
						o2 += LL;
					}
					kk[o2] = '\0';
					if (strcmp(kk, nmx->key) == 0) {
						lab = spk;
						break;
					}
				}
				if (make_label(lab, strlen(lab), c->p.max_label, b->lab, sizeof(b->lab)) == 0)
					snprintf(b->lab, sizeof(b->lab), "participant");
			}
			rc = b_node(b, b->lab, "participant", &sp, ids[x]);
			pidx[x] = 1;
		}
		if (rc)
			break;
		const struct sent *s = &c->s[ms[q].si];
		struct hark_diagram_span sp = span_of(c, s->turn, ms[q].lb, ms[q].le);
		if (label_of(c, s->turn, ms[q].lb, ms[q].le, b->lab, sizeof(b->lab)) == 0)
			snprintf(b->lab, sizeof(b->lab), "message");
		rc = hark_diagram_add_edge(b->d, ids[ms[q].from], ids[ms[q].to], b->lab, (long)q, &sp);
	}
out:
	if (rc == HARK_ERR_NOMEM || rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "sequence: %s", hark_strerror(rc));
	free(nm.v);
	free(ms);
	free(pidx);
	free(ids);
	free(sw);
	return rc;
}

/* --------------------------------------------------------- mind map --- */

static void capitalize(char *s)
{
	if (s[0] >= 'a' && s[0] <= 'z')
		s[0] = (char)(s[0] - 'a' + 'A');
}

/* Adds up to quota keyword children of parent_id co-occurring with head. */
static int add_keywords(struct bld *b, const char *parent_id, const char *head,
			const char *const *skip, size_t nskip, size_t quota, const char *kind,
			size_t excl)
{
	struct ctx *c = b->c;
	struct wc_table t = { NULL, 0 };
	int rc = 0;
	size_t scan = c->n_s < 4000 ? c->n_s : 4000;

	if (quota == 0)
		return 0;
	t.e = calloc(WC_SIZE, sizeof(*t.e));
	if (!t.e)
		return HARK_ERR_NOMEM;
	wc_count(c, 0, scan, &t, head, head, excl);
	for (size_t k = 0; k < nskip; k++) {
		struct wc_ent *e = wc_get(&t, skip[k], 0);
		if (e)
			e->count = 0;
	}
	for (size_t q = 0; q < quota && rc == 0; q++) {
		struct wc_ent *e = wc_best(&t, 1);
		char id[16];
		if (!e)
			break;
		if (make_label(e->w, strlen(e->w), c->p.max_label, b->lab, sizeof(b->lab)) == 0) {
			e->count = 0;
			continue;
		}
		struct hark_diagram_span sp = span_of(c, e->turn, e->b, e->e);
		rc = b_node(b, b->lab, kind, &sp, id);
		if (rc == 0)
			rc = hark_diagram_add_edge(b->d, parent_id, id, NULL, -1, &sp);
		e->count = 0;
	}
	free(t.e);
	return rc;
}

static const char *const TYPE_TITLE[HARK_DIAGRAM_N_TYPES] = {
	"Flowchart", "Timeline", "Mind map", "Hierarchy", "Sequence",
};

/* A title from the diagram's own structure: the top of a hierarchy, the
 * parties of a sequence, the span of a dated timeline. 0 = none. */
static int structural_title(const struct hark_diagram *d, char *buf, size_t cap)
{
	if (d->type == HARK_DIAGRAM_HIERARCHY) {
		for (size_t i = 0; i < d->n_nodes; i++) {
			int has_parent = 0;

			for (size_t k = 0; k < d->n_edges && !has_parent; k++)
				has_parent = strcmp(d->edges[k].to, d->nodes[i].id) == 0;
			if (!has_parent) {
				snprintf(buf, cap, "%s: %.150s", TYPE_TITLE[d->type], d->nodes[i].label);
				return 1;
			}
		}
	} else if (d->type == HARK_DIAGRAM_SEQUENCE && d->n_nodes >= 2) {
		if (d->n_nodes == 2)
			snprintf(buf, cap, "%s: %.80s and %.80s", TYPE_TITLE[d->type],
				 d->nodes[0].label, d->nodes[1].label);
		else
			snprintf(buf, cap, "%s: %.60s, %.60s and %zu more", TYPE_TITLE[d->type],
				 d->nodes[0].label, d->nodes[1].label, d->n_nodes - 2);
		return 1;
	} else if (d->type == HARK_DIAGRAM_TIMELINE) {
		const char *lo = NULL, *hi = NULL;

		for (size_t i = 0; i < d->n_nodes; i++) {
			const char *dt = d->nodes[i].date;

			if (!dt || strlen(dt) < 4)
				continue;
			if (!lo || strcmp(dt, lo) < 0)
				lo = dt;
			if (!hi || strcmp(dt, hi) > 0)
				hi = dt;
		}
		if (lo && hi && strncmp(lo, hi, 4) != 0) {
			snprintf(buf, cap, "%s, %.4s to %.4s", TYPE_TITLE[d->type], lo, hi);
			return 1;
		}
	}
	return 0;
}

static int build_mind(struct bld *b, const char *top, const struct wc_ent *topent,
		      char *err, size_t errlen)
{
	struct ctx *c = b->c;
	struct hark_minutes m;
	struct names nm = { NULL, 0, 0 };
	struct swords *sw = malloc(sizeof(*sw));
	char rid[16];
	int rc = 0;
	size_t budget = c->p.max_nodes - 1;
	const char *used[16];
	size_t nused = 0;

	memset(&m, 0, sizeof(m));
	if (!sw) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	b->d->page = 1;
	b->d->pages = 1;
	/* root */
	if (c->p.title) {
		make_label(c->p.title, strlen(c->p.title), c->p.max_label, b->lab, sizeof(b->lab));
	} else if (top) {
		make_label(top, strlen(top), c->p.max_label, b->lab, sizeof(b->lab));
		capitalize(b->lab);
	} else {
		label_of(c, c->s[0].turn, c->s[0].b, c->s[0].e, b->lab, sizeof(b->lab));
	}
	{
		struct hark_diagram_span sp = topent ? span_of(c, topent->turn, topent->b, topent->e)
						     : NO_SPAN;
		rc = b_node(b, b->lab, "root", &sp, rid);
	}
	if (rc || !top)
		goto out;
	used[nused++] = top;
	/* long input: the offline topics */
	if (c->n_s > 40 || c->n_turns >= 12) {
		struct hark_offline_params op = hark_offline_default_params();
		op.meeting_date = c->meeting;
		op.max_topics = budget < 8 ? budget : 8;
		if (op.max_topics < 1)
			op.max_topics = 1;
		int orc = hark_offline_minutes(c->turns, c->n_turns, "meeting", &op, &m, NULL, 0);
		if (orc == HARK_ERR_NOMEM) {
			rc = orc;
			goto out;
		}
		if (orc == 0 && m.n_topics >= 2) {
			size_t nt = m.n_topics < budget ? m.n_topics : budget;
			/* the root names the whole meeting, not its most frequent word */
			if (!c->p.title) {
				char *nl = dup_str("Meeting topics");
				if (!nl) {
					rc = HARK_ERR_NOMEM;
					goto out;
				}
				free(b->d->nodes[0].label);
				b->d->nodes[0].label = nl;
				b->d->nodes[0].span = NO_SPAN;
			}
			size_t left = budget - nt, per = nt ? left / nt : 0;
			if (per > 3)
				per = 3;
			for (size_t k = 0; k < nt && rc == 0; k++) {
				const struct hark_minutes_topic *tp = &m.topics[k];
				struct hark_diagram_span sp = { tp->ref.start_s, tp->ref.end_s, tp->ref.turn };
				char tid[16], kid[16];
				if (!(sp.start_s >= 0 && sp.end_s >= sp.start_s))
					sp.start_s = sp.end_s = -1;
				if (make_label(tp->title, strlen(tp->title), c->p.max_label, b->lab,
					       sizeof(b->lab)) == 0)
					snprintf(b->lab, sizeof(b->lab), "topic %zu", k + 1);
				rc = b_node(b, b->lab, "topic", &sp, tid);
				if (rc == 0)
					rc = hark_diagram_add_edge(b->d, rid, tid, NULL, -1, &sp);
				for (size_t q = 0, a = 0; q < tp->n_keywords && a < per && rc == 0; q++) {
					const char *kw = tp->keywords[q];
					/* a keyword already in the topic's title adds nothing */
					if (!kw || strcasestr(tp->title, kw) ||
					    make_label(kw, strlen(kw), c->p.max_label, b->lab,
						       sizeof(b->lab)) == 0)
						continue;
					rc = b_node(b, b->lab, "subtopic", &sp, kid);
					if (rc == 0)
						rc = hark_diagram_add_edge(b->d, tid, kid, NULL, -1, &sp);
					a++;
				}
			}
			goto out;
		}
	}
	/* an enumeration ("three aspects: cost, speed and quality", "X has A,
	 * B, C and D") */
	long items[8];
	size_t ni = 0, enum_si = 0, intro_a = 0, intro_z = 0;
	for (size_t i = 0; i < c->n_s && i < 200 && ni < 2; i++) {
		const struct sent *s = &c->s[i];
		const char *tx = c->turns[s->turn].text;
		words_of(tx, s->b, s->e, sw);
		for (size_t k = 1; k < sw->n; k++) {
			int colon = gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ":");
			int intro = weq(sw, k, "such") && weq(sw, k + 1, "as");
			int comma = gap_has(tx, sw->w[k - 1].e, sw->w[k].b, ",");
			size_t st;
			if (colon || intro) {
				st = intro ? k + 2 : k;
			} else if (in_list(sw->w[k - 1].lw, MM_NOUNS) &&
				   (weq(sw, k, "are") || weq(sw, k, "include"))) {
				st = k + 1;
			} else if (comma) {
				st = k - 1;
				while (st > 0 && !is_stop(sw->w[st - 1].lw) && k - 1 - st < 2)
					st--;
			} else {
				continue;
			}
			nm.n = 0;
			ni = right_items(&nm, c, s->turn, sw, st, 1, items, 8);
			if (ni >= (comma && !colon && !intro ? 3u : 2u)) {
				enum_si = i;
				/* the intro phrase, trimmed of function words */
				size_t a = 0, z = intro ? k : st;
				while (a < z && (is_stop(sw->w[a].lw) || (sw->w[a].lw[0] >= '0' &&
								  sw->w[a].lw[0] <= '9') ||
						 in_list(sw->w[a].lw, DETS)))
					a++;
				while (z > a && is_stop(sw->w[z - 1].lw))
					z--;
				if (z > a) {
					intro_a = sw->w[a].b;
					intro_z = sw->w[z - 1].e;
				}
				break;
			}
			ni = 0;
		}
	}
	if (ni >= 2) {
		const struct sent *es = &c->s[enum_si];
		if (!c->p.title && intro_z > intro_a &&
		    label_of(c, es->turn, intro_a, intro_z, b->lab, sizeof(b->lab)) > 0) {
			char *nl = dup_str(b->lab);
			if (!nl) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			capitalize(nl);
			free(b->d->nodes[0].label);
			b->d->nodes[0].label = nl;
			b->d->nodes[0].span = span_of(c, es->turn, intro_a, intro_z);
		}
		size_t nt = ni < budget ? ni : budget;
		size_t per = (budget - nt) / nt;
		char heads[8][64];
		if (per > 3)
			per = 3;
		for (size_t k = 0; k < ni && nused < 16; k++) {
			const char *hd = strrchr(nm.v[items[k]].key, ' ');
			snprintf(heads[k], sizeof(heads[k]), "%s", hd ? hd + 1 : nm.v[items[k]].key);
			used[nused++] = heads[k];
		}
		for (size_t k = 0; k < nt && rc == 0; k++) {
			const struct name *x = &nm.v[items[k]];
			char tid[16];
			rc = b_node_text(b, x->turn, x->b, x->e, "topic", tid);
			struct hark_diagram_span sp = span_of(c, x->turn, x->b, x->e);
			if (rc == 0)
				rc = hark_diagram_add_edge(b->d, rid, tid, NULL, -1, &sp);
			if (rc == 0)
				rc = add_keywords(b, tid, heads[k], used, nused, per, "subtopic",
						  enum_si);
		}
		goto out;
	}
	/* keywords of the whole text, each with its own co-occurring words */
	{
		struct wc_table t = { NULL, 0 };
		char kw[6][WORD_BYTES];
		size_t nk = 0;
		t.e = calloc(WC_SIZE, sizeof(*t.e));
		if (!t.e) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		wc_count(c, 0, c->n_s < 4000 ? c->n_s : 4000, &t, NULL, top, (size_t)-1);
		size_t want = budget < 5 ? budget : 5;
		while (nk < want) {
			struct wc_ent *e = wc_best(&t, 1);
			char tid[16];
			if (!e)
				break;
			snprintf(kw[nk], sizeof(kw[nk]), "%s", e->w);
			struct hark_diagram_span sp = span_of(c, e->turn, e->b, e->e);
			if (make_label(e->w, strlen(e->w), c->p.max_label, b->lab, sizeof(b->lab)) == 0)
				snprintf(b->lab, sizeof(b->lab), "topic");
			rc = b_node(b, b->lab, "topic", &sp, tid);
			if (rc == 0)
				rc = hark_diagram_add_edge(b->d, rid, tid, NULL, -1, &sp);
			if (rc)
				break;
			e->count = 0;
			used[nused++] = kw[nk];
			nk++;
		}
		free(t.e);
		if (rc)
			goto out;
		/* grandchildren under each keyword */
		size_t per = nk ? (budget - nk) / nk : 0;
		if (per > 2)
			per = 2;
		for (size_t k = 0; k < nk && rc == 0; k++) {
			char tid[16];
			snprintf(tid, sizeof(tid), "n%u", (unsigned)(k + 1)); /* ids n1.. follow the root n0 */
			rc = add_keywords(b, tid, kw[k], used, nused, per, "subtopic", (size_t)-1);
		}
	}
out:
	if (rc == HARK_ERR_NOMEM || rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "mind map: %s", hark_strerror(rc));
	hark_minutes_clear(&m);
	free(nm.v);
	free(sw);
	return rc;
}

/* ------------------------------------------------------------ build --- */


int hark_structure_build(const struct hark_chunk_turn *turns, size_t n, int type,
			 const struct hark_structure_params *pp, struct hark_diagram *out,
			 char *err, size_t errlen)
{
	struct ctx c;
	struct bld b;
	struct wc_table t = { NULL, 0 };
	char top[WORD_BYTES] = "";
	struct wc_ent topent;
	int rc = 0, absent = 0, have_top = 0;

	memset(&c, 0, sizeof(c));
	if (!out || (!turns && n > 0) || type < 0 || type >= HARK_DIAGRAM_N_TYPES) {
		hark_errbuf_set(err, errlen, "invalid argument");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	c.p = pp ? *pp : hark_structure_default_params();
	if (c.p.max_nodes < 4 || c.p.max_nodes > HARK_DIAGRAM_MAX_NODES || c.p.max_label < 8 ||
	    c.p.max_label > HARK_DIAGRAM_MAX_LABEL || c.p.page < 1) {
		hark_errbuf_set(err, errlen,
				"params: max_nodes 4..%d, max_label 8..%d, page >= 1",
				HARK_DIAGRAM_MAX_NODES, HARK_DIAGRAM_MAX_LABEL);
		return HARK_ERR_INVALID_ARG;
	}
	if (parse_meeting(c.p.meeting_date, &c.meeting)) {
		hark_errbuf_set(err, errlen, "meeting_date: not YYYY-MM-DD");
		return HARK_ERR_INVALID_ARG;
	}
	c.turns = turns;
	c.n_turns = n;
	rc = split_all(&c, err, errlen);
	if (rc)
		goto out;
	if (c.n_s == 0) {
		hark_errbuf_set(err, errlen, "no words in the input");
		rc = HARK_ERR_EMPTY;
		goto out;
	}
	t.e = calloc(WC_SIZE, sizeof(*t.e));
	if (!t.e) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	wc_count(&c, 0, c.n_s, &t, NULL, NULL, (size_t)-1);
	{
		struct wc_ent *e = wc_best(&t, 1);
		if (e) {
			snprintf(top, sizeof(top), "%s", e->w);
			topent = *e;
			have_top = 1;
		}
	}
	free(t.e);
	t.e = NULL;

	memset(&b, 0, sizeof(b));
	b.c = &c;
	b.d = out;
	out->type = type;
	out->page = 1;
	out->pages = 1;
	out->duration_s = -1;
	for (size_t k = 0; k < n; k++)
		if (turns[k].end_s >= 0 && isfinite(turns[k].end_s) && turns[k].end_s > out->duration_s)
			out->duration_s = turns[k].end_s;
	switch (type) {
	case HARK_DIAGRAM_FLOWCHART:
		rc = build_flow(&b, &absent, err, errlen);
		break;
	case HARK_DIAGRAM_TIMELINE:
		rc = build_timeline(&b, &absent, err, errlen);
		break;
	case HARK_DIAGRAM_HIERARCHY:
		rc = build_hier(&b, &absent, err, errlen);
		break;
	case HARK_DIAGRAM_SEQUENCE:
		rc = build_seq(&b, &absent, err, errlen);
		break;
	default:
		absent = 1;
		break;
	}
	if (rc)
		goto out;
	if (absent) {
		double dur = out->duration_s;
		hark_diagram_clear(out);
		memset(&b, 0, sizeof(b));
		b.c = &c;
		b.d = out;
		out->type = HARK_DIAGRAM_MINDMAP;
		out->duration_s = dur;
		if (c.p.page != 1) {
			hark_errbuf_set(err, errlen, "page %d of 1", c.p.page);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		rc = build_mind(&b, have_top ? top : NULL, have_top ? &topent : NULL, err, errlen);
		if (rc)
			goto out;
	}
	if (c.p.title)
		make_label(c.p.title, strlen(c.p.title), HARK_DIAGRAM_MAX_LABEL / 4, b.lab,
			   sizeof(b.lab));
	else if (out->type == HARK_DIAGRAM_MINDMAP && out->n_nodes > 0)
		snprintf(b.lab, sizeof(b.lab), "%s: %.150s", TYPE_TITLE[out->type],
			 out->nodes[0].label);
	else if (out->n_nodes > 0 && structural_title(out, b.lab, sizeof(b.lab)))
		;
	else if (have_top) {
		char tl[WORD_BYTES * 4];
		make_label(top, strlen(top), WORD_BYTES, tl, sizeof(tl));
		snprintf(b.lab, sizeof(b.lab), "%s: %s", TYPE_TITLE[out->type], tl);
	}
	else
		snprintf(b.lab, sizeof(b.lab), "%s", TYPE_TITLE[out->type]);
	if (!b.lab[0])
		snprintf(b.lab, sizeof(b.lab), "%s", TYPE_TITLE[out->type]);
	out->title = dup_str(b.lab);
	if (!out->title) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	{
		char verr[256];
		if (hark_diagram_validate(out, verr, sizeof(verr)) != 0) {
			hark_errbuf_set(err, errlen, "built an invalid %s: %s",
					hark_diagram_type_name(out->type), verr);
			rc = HARK_ERR_INTERNAL;
			goto out;
		}
	}
out:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	if (rc && out)
		hark_diagram_clear(out);
	free(t.e);
	free(c.s);
	return rc;
}
