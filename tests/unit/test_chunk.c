/*
 * Transcript chunker (src/analyze/chunk.c) and meeting transcript reader
 * (src/analyze/meeting_text.c): token budgets, overlap, speaker turns,
 * filler filtering, long-turn splitting, time ranges, hashes, empty and huge
 * inputs, and the real shared meetings (QMSum JSON and AMI text) plus
 * malformed files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "analyze/chunk.h"
#include "analyze/meeting_text.h"
#include "hark/hark.h"
#include "llm/tokens.h"

/* ------------------------------------------------------------ helpers ---- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static const char *const words[] = {
	"budget", "remote", "control", "design", "battery", "plastic", "button", "market",
	"Sarah", "Berlin", "prototype", "interface", "the", "we", "should", "consider",
	"a", "customer", "price", "twenty", "five", "euros", "screen", "rubber", "curved",
	"kinetic", "energy", "survey", "younger", "people", "fancy", "look", "and", "feel",
	"technology", "speech", "recognition", "meeting", "decided", "report", "next",
	"week", "component", "chip", "solar", "cells", "of", "in", "to", "is",
};

/* Appends a random sentence of nw words to buf (NUL-terminated, cap bytes). */
static void add_sentence(char *buf, size_t cap, int nw)
{
	size_t o = strlen(buf);

	for (int i = 0; i < nw && o + 32 < cap; i++) {
		const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];

		o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? " " : "", w);
	}
	if (o + 2 < cap) {
		buf[o++] = (rnd() % 5) ? '.' : '?';
		buf[o] = '\0';
	}
}

/* Random turns: texts heap-allocated in texts[i]. */
struct gen {
	struct hark_chunk_turn *turns;
	char **texts;
	size_t n;
};

static const char *const speakers[] = {"Project Manager", "Marketing", "Industrial Designer",
				       "User Interface"};

static void gen_turns(struct gen *g, size_t n, int max_sentences, int long_every, uint64_t seed)
{
	rng_state = seed;
	g->n = n;
	g->turns = calloc(n, sizeof(*g->turns));
	g->texts = calloc(n, sizeof(*g->texts));
	assert_non_null(g->turns);
	assert_non_null(g->texts);
	for (size_t i = 0; i < n; i++) {
		int ns = 1 + (int)(rnd() % (unsigned)max_sentences);
		size_t cap = 64 * 1024;

		if (long_every && i % (size_t)long_every == (size_t)long_every - 1)
			ns = 200; /* far over any budget used here */
		g->texts[i] = calloc(1, cap);
		assert_non_null(g->texts[i]);
		for (int s = 0; s < ns; s++)
			add_sentence(g->texts[i], cap, 3 + (int)(rnd() % 14));
		g->turns[i].speaker = speakers[rnd() % 4];
		g->turns[i].text = g->texts[i];
		g->turns[i].start_s = (double)i * 10.0;
		g->turns[i].end_s = (double)i * 10.0 + 8.0;
	}
}

static void gen_free(struct gen *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->texts[i]);
	free(g->texts);
	free(g->turns);
	memset(g, 0, sizeof(*g));
}

static struct hark_chunk_params params(size_t max, size_t overlap, size_t min)
{
	struct hark_chunk_params p = hark_chunk_default_params();

	p.max_tokens = max;
	p.overlap_tokens = overlap;
	p.min_tokens = min;
	return p;
}

static size_t tok(const char *s)
{
	return hark_llm_tokens_count(s, strlen(s));
}

/* The checks every chunk list must pass. */
static void check_invariants(const struct hark_chunk_list *l, const struct hark_chunk_params *p,
			     size_t n_turns)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct hark_chunk *c = &l->chunks[i];

		assert_non_null(c->text);
		assert_int_equal(c->len, strlen(c->text));
		assert_true(c->len > 0);
		assert_int_equal(c->tokens, hark_llm_tokens_count(c->text, c->len));
		assert_true(c->tokens <= p->max_tokens);
		assert_true(c->overlap_tokens <= p->overlap_tokens);
		assert_true(c->first_turn <= c->last_turn);
		assert_true(c->last_turn < n_turns);
		assert_true(c->text[c->len - 1] != '\n');
		assert_null(strstr(c->text, "\n\n"));
		if (i == 0)
			assert_int_equal(c->overlap_tokens, 0);
		else
			assert_true(c->first_turn >= l->chunks[i - 1].first_turn);
		assert_int_equal(strlen(c->sha256), 64);
	}
}

/* ------------------------------------------------------------- budgets --- */

static void test_budgets(void **state)
{
	static const size_t cfg[][3] = {{1200, 100, 8}, {300, 50, 8}, {64, 16, 0}, {32, 0, 0}};
	struct gen g;

	(void)state;
	gen_turns(&g, 400, 6, 37, 11);
	for (size_t k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++) {
		struct hark_chunk_params p = params(cfg[k][0], cfg[k][1], cfg[k][2]);
		struct hark_chunk_list l;
		char err[256];
		size_t content = 0, sum_new = 0;

		if (hark_chunk_split(g.turns, g.n, &p, &l, err, sizeof(err)) != HARK_OK)
			fail_msg("max %zu: %s", p.max_tokens, err);
		check_invariants(&l, &p, g.n);
		for (size_t i = 0; i < g.n; i++)
			content += tok(g.texts[i]);
		for (size_t i = 0; i < l.n; i++)
			sum_new += l.chunks[i].tokens - l.chunks[i].overlap_tokens;
		/* all content is there (new text = content + speaker prefixes) */
		assert_true(sum_new >= content);
		/* and the chunks are reasonably full: no more than ~2x the minimum */
		assert_true(l.n <= 2 * (content / (p.max_tokens - p.overlap_tokens) + 1));
		hark_chunk_list_clear(&l);
		assert_null(l.chunks);
		assert_int_equal(l.n, 0);
	}
	gen_free(&g);
}

/* -------------------------------------------------------- speaker turns --- */

/* With every turn under the budget, each line is a whole input turn. */
static void test_speaker_turns(void **state)
{
	struct hark_chunk_params p = params(400, 60, 8);
	struct hark_chunk_list l;
	struct gen g;
	char err[256];
	size_t next_new = 0;

	(void)state;
	gen_turns(&g, 300, 4, 0, 5);
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, g.n);
	assert_true(l.n > 10);
	assert_int_equal(l.turns_kept, g.n);
	for (size_t i = 0; i < l.n; i++) {
		char *copy = strdup(l.chunks[i].text), *save = NULL, *line;
		size_t t = l.chunks[i].first_turn, ov = 0;

		assert_non_null(copy);
		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char want[70000];

			assert_true(t <= l.chunks[i].last_turn);
			snprintf(want, sizeof(want), "%s: %s", g.turns[t].speaker, g.texts[t]);
			if (t < next_new) {
				/* overlap line: a tail of the previous chunk's line,
				 * whole turns except possibly the first */
				const char *prev = l.chunks[i - 1].text;
				assert_non_null(strstr(prev, line + strlen(g.turns[t].speaker) + 2));
				ov += tok(line);
			} else {
				assert_string_equal(line, want);
				assert_int_equal(t, next_new);
				next_new = t + 1;
			}
			t++;
		}
		assert_int_equal(t, l.chunks[i].last_turn + 1);
		assert_int_equal(ov, l.chunks[i].overlap_tokens);
		free(copy);
	}
	assert_int_equal(next_new, g.n); /* every turn appeared as new text */
	hark_chunk_list_clear(&l);
	gen_free(&g);
}

/* --------------------------------------------------------------- overlap --- */

/* Short distinct turns: the overlap is exactly the longest run of the
 * previous chunk's last lines that fits overlap_tokens. */
static void test_overlap_whole_turns(void **state)
{
	struct hark_chunk_turn turns[200];
	char texts[200][64];
	struct hark_chunk_params p = params(120, 30, 4);
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	for (int i = 0; i < 200; i++) {
		/* 3..8 tokens each: "Alice: item N is number N." */
		snprintf(texts[i], sizeof(texts[i]), "item %d is %s number %d.", i,
			 (i % 3) ? "the" : "really the", i);
		turns[i].speaker = (i % 2) ? "Alice" : "Bob";
		turns[i].text = texts[i];
		turns[i].start_s = turns[i].end_s = -1;
	}
	assert_int_equal(hark_chunk_split(turns, 200, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, 200);
	assert_true(l.n > 5);
	for (size_t i = 1; i < l.n; i++) {
		const struct hark_chunk *a = &l.chunks[i - 1], *b = &l.chunks[i];
		size_t n_ov = 0, ov_tok = 0, t;
		char want[4096] = "";

		/* lines of the previous chunk from the end while they fit */
		for (t = a->last_turn + 1; t-- > a->first_turn;) {
			char line[128];
			size_t lt;

			snprintf(line, sizeof(line), "%s: %s", turns[t].speaker, texts[t]);
			lt = tok(line);
			if (ov_tok + lt > p.overlap_tokens)
				break;
			ov_tok += lt;
			n_ov++;
		}
		assert_true(n_ov > 0);
		assert_int_equal(b->overlap_tokens, ov_tok);
		assert_int_equal(b->first_turn, a->last_turn + 1 - n_ov);
		for (t = b->first_turn; t <= a->last_turn; t++) {
			char line[128];

			snprintf(line, sizeof(line), "%s%s: %s", t == b->first_turn ? "" : "\n",
				 turns[t].speaker, texts[t]);
			strcat(want, line);
		}
		/* the overlap is the previous chunk's tail and this chunk's head */
		assert_int_equal(strncmp(b->text, want, strlen(want)), 0);
		assert_string_equal(a->text + a->len - strlen(want), want);
	}
	hark_chunk_list_clear(&l);

	/* overlap 0: chunks partition the turns */
	p.overlap_tokens = 0;
	assert_int_equal(hark_chunk_split(turns, 200, &p, &l, err, sizeof(err)), HARK_OK);
	for (size_t i = 1; i < l.n; i++) {
		assert_int_equal(l.chunks[i].overlap_tokens, 0);
		assert_int_equal(l.chunks[i].first_turn, l.chunks[i - 1].last_turn + 1);
	}
	hark_chunk_list_clear(&l);
}

/* A long monologue: chunks cover consecutive sentence ranges that overlap
 * by the tail sentences of the previous chunk. */
static void test_long_turn_split(void **state)
{
	const int ns = 600;
	size_t cap = (size_t)ns * 64;
	char *text = calloc(1, cap), *giant;
	struct hark_chunk_turn turn = {"Professor", NULL, 100.0, 700.0};
	struct hark_chunk_params p = params(200, 40, 8);
	struct hark_chunk_list l;
	char err[256];
	int prev_hi = 0;

	(void)state;
	assert_non_null(text);
	for (int i = 1; i <= ns; i++)
		snprintf(text + strlen(text), cap - strlen(text), "%sSentence %d says %s.",
			 i > 1 ? " " : "", i, (i % 4) ? "little" : "a bit more than the others");
	turn.text = text;
	assert_int_equal(hark_chunk_split(&turn, 1, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, 1);
	assert_true(l.n > 10);
	for (size_t i = 0; i < l.n; i++) {
		const char *s = l.chunks[i].text;
		int lo = 0, hi = 0, n;

		/* one line: the speaker once, then whole sentences */
		assert_null(strchr(s, '\n'));
		assert_int_equal(strncmp(s, "Professor: Sentence ", 20), 0);
		assert_string_equal(s + strlen(s) - 1, ".");
		for (const char *q = s; (q = strstr(q, "Sentence ")) != NULL; q++) {
			assert_int_equal(sscanf(q, "Sentence %d", &n), 1);
			if (!lo)
				lo = n;
			else
				assert_int_equal(n, hi + 1);
			hi = n;
		}
		if (i == 0) {
			assert_int_equal(lo, 1);
		} else {
			/* overlap: at least one repeated sentence, within budget */
			assert_true(lo <= prev_hi);
			assert_true(l.chunks[i].overlap_tokens > 0);
			assert_true(l.chunks[i].overlap_tokens <= p.overlap_tokens);
		}
		/* time range interpolated inside the turn, advancing */
		assert_true(l.chunks[i].start_s >= 100.0 && l.chunks[i].end_s <= 700.0);
		assert_true(l.chunks[i].start_s < l.chunks[i].end_s);
		if (i > 0)
			assert_true(l.chunks[i].start_s > l.chunks[i - 1].start_s);
		prev_hi = hi;
	}
	assert_int_equal(prev_hi, ns);
	assert_true(l.chunks[0].start_s == 100.0);
	assert_true(l.chunks[l.n - 1].end_s == 700.0);
	hark_chunk_list_clear(&l);

	/* no sentence punctuation at all: split at words, nothing lost */
	for (char *q = text; *q; q++)
		if (*q == '.')
			*q = ',';
	assert_int_equal(hark_chunk_split(&turn, 1, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, 1);
	assert_true(l.n > 10);
	assert_non_null(strstr(l.chunks[l.n - 1].text, "Sentence 600 says"));
	hark_chunk_list_clear(&l);

	/* one 40,000-character word: split at characters */
	giant = malloc(40001);
	assert_non_null(giant);
	for (int i = 0; i < 40000; i++)
		giant[i] = (char)('a' + i % 26);
	giant[40000] = '\0';
	turn.text = giant;
	p.overlap_tokens = 0;
	assert_int_equal(hark_chunk_split(&turn, 1, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, 1);
	{
		size_t total = 0;

		for (size_t i = 0; i < l.n; i++)
			total += l.chunks[i].len - strlen("Professor: ");
		assert_int_equal(total, 40000); /* every character kept */
	}
	hark_chunk_list_clear(&l);
	free(giant);
	free(text);
}

/* --------------------------------------------------------------- fillers --- */

static void test_fillers(void **state)
{
	static const char *const low[] = {
		"", "   ", "Um.", "uh", "Yeah.", "Mm-hmm.", "Okay, right.", "{vocalsound}",
		"[silence]", "<laugh>", "<laugh> Okay .", "Hmm hmm hmm .", "'Kay.", "Uh - huh",
		"Yeah, yeah, yeah!", "... ?", "{vocalsound} {disfmarker} Mm.",
	};
	static const char *const keep[] = {
		"Yeah, me.", "No.", "Okay, the budget is fine.", "Twenty five Euros.",
		"{vocalsound} Are we allowed to dim the lights?", "Berlin", "日本",
	};
	struct hark_chunk_turn turns[64];
	size_t n = 0;
	struct hark_chunk_params p = params(1200, 100, 0);
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(low) / sizeof(low[0]); i++) {
		assert_true(hark_chunk_is_low_value(low[i]));
		turns[n].speaker = "A";
		turns[n].text = low[i];
		turns[n].start_s = turns[n].end_s = -1;
		n++;
	}
	assert_true(hark_chunk_is_low_value(NULL));
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		assert_false(hark_chunk_is_low_value(keep[i]));
		turns[n].speaker = "B";
		turns[n].text = keep[i];
		turns[n].start_s = turns[n].end_s = -1;
		n++;
	}
	assert_int_equal(hark_chunk_split(turns, n, &p, &l, err, sizeof(err)), HARK_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.turns_dropped, sizeof(low) / sizeof(low[0]));
	assert_int_equal(l.turns_kept, sizeof(keep) / sizeof(keep[0]));
	assert_string_equal(l.chunks[0].text,
			    "B: Yeah, me.\nB: No.\nB: Okay, the budget is fine.\n"
			    "B: Twenty five Euros.\nB: Are we allowed to dim the lights?\n"
			    "B: Berlin\nB: 日本");
	assert_int_equal(l.chunks[0].first_turn, sizeof(low) / sizeof(low[0]));
	hark_chunk_list_clear(&l);

	/* inline markers go, text stays; markers can be kept on request */
	turns[0].speaker = NULL;
	turns[0].text = "So {disfmarker} the the  budget\nis {gap} fine {vocalsound} .";
	assert_int_equal(hark_chunk_split(turns, 1, &p, &l, err, sizeof(err)), HARK_OK);
	assert_string_equal(l.chunks[0].text, "So the the budget is fine.");
	hark_chunk_list_clear(&l);
	p.strip_markers = 0;
	assert_int_equal(hark_chunk_split(turns, 1, &p, &l, err, sizeof(err)), HARK_OK);
	assert_string_equal(l.chunks[0].text,
			    "So {disfmarker} the the budget is {gap} fine {vocalsound} .");
	hark_chunk_list_clear(&l);

	/* fillers kept when asked */
	p.drop_fillers = 0;
	assert_int_equal(hark_chunk_split(turns + 2, 3, &p, &l, err, sizeof(err)), HARK_OK);
	assert_string_equal(l.chunks[0].text, "A: Um.\nA: uh\nA: Yeah.");
	hark_chunk_list_clear(&l);
}

/* ------------------------------------------------------------ min_tokens --- */

static void test_min_tokens(void **state)
{
	struct hark_chunk_turn turns[2] = {
		{"A", "This is a short but meaningful statement about the budget, and we all "
		      "agreed on it yesterday after the long review.", -1, -1},
		{"B", "We ship Friday.", -1, -1},
	};
	struct hark_chunk_params p = params(32, 0, 8);
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	/* the second turn (4 tokens) alone in a chunk is under min_tokens 8 */
	assert_int_equal(hark_chunk_split(turns, 2, &p, &l, err, sizeof(err)), HARK_OK);
	assert_true(tok(turns[0].text) + 2 <= 32);
	assert_true(tok(turns[0].text) + 2 + tok("B: We ship Friday.") > 32);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.chunks_dropped, 1);
	assert_int_equal(l.chunks[0].last_turn, 0);
	hark_chunk_list_clear(&l);
	p.min_tokens = 0;
	assert_int_equal(hark_chunk_split(turns, 2, &p, &l, err, sizeof(err)), HARK_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.chunks[1].text, "B: We ship Friday.");
	hark_chunk_list_clear(&l);
}

/* ----------------------------------------------------------- time ranges --- */

static void test_time_ranges(void **state)
{
	struct gen g;
	struct hark_chunk_params p = params(300, 50, 8);
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	gen_turns(&g, 200, 4, 0, 99);
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &l, err, sizeof(err)), HARK_OK);
	for (size_t i = 0; i < l.n; i++) {
		const struct hark_chunk *c = &l.chunks[i];

		/* times of whole turns, or interpolated inside the first one */
		assert_true(c->start_s >= g.turns[c->first_turn].start_s);
		assert_true(c->start_s <= g.turns[c->first_turn].end_s);
		assert_true(c->end_s == g.turns[c->last_turn].end_s);
		if (i > 0)
			assert_true(c->start_s > l.chunks[i - 1].start_s);
	}
	assert_true(l.chunks[0].start_s == 0.0);
	hark_chunk_list_clear(&l);

	/* unknown times stay unknown; partly known ones are used */
	for (size_t i = 0; i < g.n; i++)
		g.turns[i].start_s = g.turns[i].end_s = -1;
	g.turns[g.n - 1].end_s = 1234.5;
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &l, err, sizeof(err)), HARK_OK);
	for (size_t i = 0; i + 1 < l.n; i++) {
		assert_true(l.chunks[i].start_s < 0);
		assert_true(l.chunks[i].end_s < 0);
	}
	assert_true(l.chunks[l.n - 1].end_s == 1234.5);
	hark_chunk_list_clear(&l);
	gen_free(&g);
}

/* ---------------------------------------------------------------- hashes --- */

static void sha_hex(const char *s, size_t n, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	assert_true(EVP_Digest(s, n, md, &len, EVP_sha256(), NULL));
	for (unsigned i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void test_hashes(void **state)
{
	struct gen g;
	struct hark_chunk_params p = params(500, 60, 8);
	struct hark_chunk_list a, b, c;
	struct hark_chunk_turn one = {"A", "hello world", -1, -1};
	struct hark_chunk_params p0 = params(500, 60, 0);
	char err[256], hex[65], orig[24];
	size_t changed_at, n_changed = 0;

	(void)state;
	/* a known digest: sha256("A: hello world") */
	assert_int_equal(hark_chunk_split(&one, 1, &p, &a, err, sizeof(err)), HARK_OK);
	assert_int_equal(a.n, 0); /* 2 tokens of content: under min_tokens 8 */
	assert_int_equal(a.chunks_dropped, 1);
	hark_chunk_list_clear(&a);
	assert_int_equal(hark_chunk_split(&one, 1, &p0, &a, err, sizeof(err)), HARK_OK);
	assert_string_equal(a.chunks[0].text, "A: hello world");
	assert_string_equal(a.chunks[0].sha256,
			    "06def47b84b750c23b5141473c78136ce2d5e60bef8ff74aaa17f3253e3e2672");
	sha_hex("A: hello world", 14, hex);
	assert_string_equal(a.chunks[0].sha256, hex);
	hark_chunk_list_clear(&a);

	gen_turns(&g, 300, 5, 50, 7);
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &a, err, sizeof(err)), HARK_OK);
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &b, err, sizeof(err)), HARK_OK);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		sha_hex(a.chunks[i].text, a.chunks[i].len, hex);
		assert_string_equal(a.chunks[i].sha256, hex);
		assert_string_equal(a.chunks[i].sha256, b.chunks[i].sha256);
		assert_string_equal(a.chunks[i].text, b.chunks[i].text);
		if (i > 0)
			assert_string_not_equal(a.chunks[i].sha256, a.chunks[i - 1].sha256);
	}
	/* editing one late turn leaves every earlier chunk's hash as it was */
	changed_at = 250;
	snprintf(orig, sizeof(orig), "%s", g.texts[changed_at]);
	g.texts[changed_at][0] = g.texts[changed_at][0] == 'Z' ? 'Y' : 'Z';
	assert_int_equal(hark_chunk_split(g.turns, g.n, &p, &c, err, sizeof(err)), HARK_OK);
	for (size_t i = 0; i < a.n && i < c.n; i++) {
		if (a.chunks[i].last_turn < changed_at)
			assert_string_equal(a.chunks[i].sha256, c.chunks[i].sha256);
		else if (strstr(a.chunks[i].text, orig) && ++n_changed)
			assert_string_not_equal(a.chunks[i].sha256, c.chunks[i].sha256);
	}
	assert_true(n_changed >= 1);
	hark_chunk_list_clear(&a);
	hark_chunk_list_clear(&b);
	hark_chunk_list_clear(&c);
	gen_free(&g);
}

/* ------------------------------------------------------- empty and errors --- */

static void test_empty_and_errors(void **state)
{
	struct hark_chunk_turn t[3] = {{"A", "um", -1, -1}, {NULL, NULL, -1, -1}, {"", "  ", 1, 2}};
	struct hark_chunk_params p = hark_chunk_default_params();
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	assert_int_equal(p.max_tokens, 1200);
	assert_int_equal(p.overlap_tokens, 100);
	assert_int_equal(hark_chunk_split(NULL, 0, NULL, &l, err, sizeof(err)), HARK_OK);
	assert_int_equal(l.n, 0);
	assert_null(l.chunks);
	hark_chunk_list_clear(&l);
	assert_int_equal(hark_chunk_split(t, 3, NULL, &l, err, sizeof(err)), HARK_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.turns_dropped, 3);
	hark_chunk_list_clear(&l);
	hark_chunk_list_clear(NULL);
	assert_int_equal(hark_chunk_split(NULL, 2, NULL, &l, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_chunk_split(t, 3, NULL, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p.max_tokens = 10;
	assert_int_equal(hark_chunk_split(t, 3, &p, &l, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "max_tokens"));
	p = hark_chunk_default_params();
	p.overlap_tokens = 700;
	assert_int_equal(hark_chunk_split(t, 3, &p, &l, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	p = hark_chunk_default_params();
	p.max_input_bytes = 3;
	t[0].text = "hello world";
	assert_int_equal(hark_chunk_split(t, 3, &p, &l, err, sizeof(err)), HARK_ERR_LIMIT);
	assert_int_equal(l.n, 0);
}

/* A long speaker label is cut at a word boundary; the prefix stays small. */
static void test_speaker_labels(void **state)
{
	struct hark_chunk_turn t = {
		"Hon. Ahmed Hussen (Minister of Families, Children and Social Development)",
		"Thank you, Mr. Chair. I rise on a point of order.", -1, -1};
	struct hark_chunk_params p = params(32, 0, 0);
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	assert_int_equal(hark_chunk_split(&t, 1, NULL, &l, err, sizeof(err)), HARK_OK);
	assert_string_equal(l.chunks[0].text,
			    "Hon. Ahmed Hussen (Minister of Families, Children and Social: "
			    "Thank you, Mr. Chair. I rise on a point of order.");
	hark_chunk_list_clear(&l);
	/* with a 32-token budget the label is cut to <= 8 tokens */
	assert_int_equal(hark_chunk_split(&t, 1, &p, &l, err, sizeof(err)), HARK_OK);
	assert_true(l.chunks[0].tokens <= 32);
	assert_non_null(strstr(l.chunks[0].text, ": Thank you, Mr. Chair. I rise"));
	{
		const char *colon = strstr(l.chunks[0].text, ": Thank");

		assert_true(colon > l.chunks[0].text);
		assert_true(hark_llm_tokens_count(l.chunks[0].text,
						  (size_t)(colon - l.chunks[0].text)) +
				    1 <= 32 / 4);
		assert_int_equal(strncmp(l.chunks[0].text, "Hon. Ahmed", 10), 0);
	}
	hark_chunk_list_clear(&l);
}

/* ---------------------------------------------------------------- huge --- */


/* 16 MiB of turns plus one 2 MiB turn: every byte of content is chunked
 * within budget (no truncation, no quadratic blow-up). */
static void test_huge_input(void **state)
{
	const size_t n = 160000;
	size_t cap = n * 256 + (4u << 20), o = 0, content = 0, sum_new = 0;
	char *buf = malloc(cap);
	struct hark_chunk_turn *t = calloc(n + 1, sizeof(*t));
	struct hark_chunk_params p = hark_chunk_default_params();
	struct hark_chunk_list l;
	char err[256];

	(void)state;
	assert_non_null(buf);
	assert_non_null(t);
	rng_state = 3;
	for (size_t i = 0; i <= n; i++) {
		size_t start = o, target = i == n / 2 ? (2u << 20) : 100;

		buf[o] = '\0';
		while (o - start < target) {
			add_sentence(buf + start, cap - start, 12);
			o = start + strlen(buf + start);
		}
		t[i].speaker = speakers[i % 4];
		t[i].text = buf + start;
		t[i].start_s = (double)i;
		t[i].end_s = (double)i + 0.9;
		content += tok(buf + start);
		o++;
	}
	assert_int_equal(hark_chunk_split(t, n + 1, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, n + 1);
	for (size_t i = 0; i < l.n; i++)
		sum_new += l.chunks[i].tokens - l.chunks[i].overlap_tokens;
	assert_true(sum_new >= content);
	assert_true(l.n > content / p.max_tokens);
	assert_true(l.n < 2 * content / (p.max_tokens - p.overlap_tokens));
	assert_int_equal(l.chunks[l.n - 1].last_turn, n);
	hark_chunk_list_clear(&l);
	free(t);
	free(buf);
}

/* ------------------------------------------------------- meeting reader --- */

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");

	return (s && *s) ? s : "../shared";
}

static char *trimmed(const char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' ||
			 s[n - 1] == '\r'))
		n--;
	return strndup(s, n);
}

static void check_chunks_of(const struct hark_meeting_text *m)
{
	struct hark_chunk_turn *t = calloc(m->n_turns, sizeof(*t));
	struct hark_chunk_params p = hark_chunk_default_params();
	struct hark_chunk_list l;
	char err[256];

	assert_non_null(t);
	for (size_t i = 0; i < m->n_turns; i++) {
		t[i].speaker = m->turns[i].speaker;
		t[i].text = m->turns[i].text;
		t[i].start_s = m->turns[i].start_s;
		t[i].end_s = m->turns[i].end_s;
	}
	assert_int_equal(hark_chunk_split(t, m->n_turns, &p, &l, err, sizeof(err)), HARK_OK);
	check_invariants(&l, &p, m->n_turns);
	assert_true(l.n > 0);
	for (size_t i = 0; i < l.n; i++) {
		assert_null(strstr(l.chunks[i].text, "{disfmarker}"));
		assert_null(strstr(l.chunks[i].text, "{vocalsound}"));
		assert_true(l.chunks[i].start_s < 0);
	}
	hark_chunk_list_clear(&l);
	free(t);
}

static void test_meetings_real(void **state)
{
	static const char *const qmsum[] = {"ES2004a", "Bmr006", "covid_4", "education_4"};
	static const char *const ami[] = {"ES2004a", "IS1009c"};
	char path[4096], err[256];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/meetings/qmsum", shared_dir());
	if (stat(path, &st) != 0) {
		print_message("skipping: %s missing\n", path);
		skip();
	}
	for (size_t k = 0; k < sizeof(qmsum) / sizeof(qmsum[0]); k++) {
		struct hark_meeting_text m;
		json_error_t je;
		json_t *root, *arr;
		char *sum;

		snprintf(path, sizeof(path), "%s/meetings/qmsum/%s.json", shared_dir(), qmsum[k]);
		assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof(err)), HARK_OK);
		assert_string_equal(m.id, qmsum[k]);
		assert_int_equal(m.format, HARK_MEETING_TEXT_QMSUM);
		root = json_load_file(path, 0, &je);
		assert_non_null(root);
		arr = json_object_get(root, "meeting_transcripts");
		assert_int_equal(m.n_turns, json_array_size(arr));
		for (size_t i = 0; i < m.n_turns; i++) {
			json_t *e = json_array_get(arr, i);

			assert_string_equal(m.turns[i].speaker,
					    json_string_value(json_object_get(e, "speaker")));
			assert_true(m.turns[i].start_s < 0);
			/* QMSum's " 's" / " ," spacing is undone */
			assert_null(strstr(m.turns[i].text, " 's "));
			assert_null(strstr(m.turns[i].text, " , "));
		}
		sum = trimmed(json_string_value(json_object_get(
			json_array_get(json_object_get(root, "general_query_list"), 0), "answer")));
		assert_string_equal(m.reference_summary, sum);
		free(sum);
		json_decref(root);
		check_chunks_of(&m);
		hark_meeting_text_clear(&m);
		assert_null(m.turns);
	}
	for (size_t k = 0; k < sizeof(ami) / sizeof(ami[0]); k++) {
		struct hark_meeting_text m;
		char line[1 << 16], spath[4096], *sum;
		FILE *f;
		size_t lines = 0;

		snprintf(path, sizeof(path), "%s/meetings/ami/%s.transcript.txt", shared_dir(),
			 ami[k]);
		assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof(err)), HARK_OK);
		assert_string_equal(m.id, ami[k]);
		assert_int_equal(m.format, HARK_MEETING_TEXT_PLAIN);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			char *tl = trimmed(line);

			if (*tl) {
				assert_true(lines < m.n_turns);
				assert_string_equal(m.turns[lines].text, tl);
				assert_null(m.turns[lines].speaker);
				lines++;
			}
			free(tl);
		}
		fclose(f);
		assert_int_equal(lines, m.n_turns);
		snprintf(spath, sizeof(spath), "%s/meetings/ami/%s.abssumm.txt", shared_dir(),
			 ami[k]);
		f = fopen(spath, "r");
		assert_non_null(f);
		line[fread(line, 1, sizeof(line) - 1, f)] = '\0';
		fclose(f);
		sum = trimmed(line);
		assert_string_equal(m.reference_summary, sum);
		free(sum);
		check_chunks_of(&m);
		hark_meeting_text_clear(&m);
	}
}

static void test_meeting_parse(void **state)
{
	static const char qm[] =
		"{\"meeting_transcripts\":[{\"speaker\":\"Grad B\",\"content\":\"I think it 's "
		"a pre - existing meeting , ok ? Uh - huh . We don't ( really ) know .\"},"
		"{\"speaker\":\"\",\"content\":\" {vocalsound} \"}],"
		"\"general_query_list\":[{\"query\":\"q\",\"answer\":\" A summary. \"}]}";
	static const char labelled[] = "Alice: Hello there.\n\nDr. Bob Smith: Hi: all good?\n";
	static const char mixed[] = "Alice: Hello there.\nno label on this line\n";
	struct hark_meeting_text m;
	struct hark_meeting_text_params p = hark_meeting_text_default_params();
	char err[256];

	(void)state;
	assert_int_equal(hark_meeting_text_parse(qm, strlen(qm), "x/Mtg.json", NULL, &m, err,
						 sizeof(err)),
			 HARK_OK);
	assert_string_equal(m.id, "Mtg");
	assert_int_equal(m.n_turns, 2);
	assert_string_equal(m.turns[0].text,
			    "I think it's a pre-existing meeting, ok? Uh-huh. We don't (really) know.");
	assert_null(m.turns[1].speaker);
	assert_string_equal(m.turns[1].text, "{vocalsound}");
	assert_string_equal(m.reference_summary, "A summary.");
	hark_meeting_text_clear(&m);
	p.detokenize = 0;
	p.load_summary = 0;
	assert_int_equal(hark_meeting_text_parse(qm, strlen(qm), NULL, &p, &m, err, sizeof(err)),
			 HARK_OK);
	assert_non_null(strstr(m.turns[0].text, "it 's a pre - existing"));
	assert_null(m.reference_summary);
	hark_meeting_text_clear(&m);

	assert_int_equal(hark_meeting_text_parse(labelled, strlen(labelled), "t.txt", NULL, &m,
						 err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(m.format, HARK_MEETING_TEXT_PLAIN);
	assert_int_equal(m.n_turns, 2);
	assert_string_equal(m.turns[0].speaker, "Alice");
	assert_string_equal(m.turns[0].text, "Hello there.");
	assert_string_equal(m.turns[1].speaker, "Dr. Bob Smith");
	assert_string_equal(m.turns[1].text, "Hi: all good?");
	hark_meeting_text_clear(&m);
	assert_int_equal(hark_meeting_text_parse(mixed, strlen(mixed), "t.txt", NULL, &m, err,
						 sizeof(err)),
			 HARK_OK);
	assert_int_equal(m.n_turns, 2);
	assert_null(m.turns[0].speaker);
	assert_string_equal(m.turns[0].text, "Alice: Hello there.");
	hark_meeting_text_clear(&m);
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void test_meeting_malformed(void **state)
{
	static const struct {
		const char *body;
		int err;
		const char *msg;
	} cases[] = {
		{"{\"meeting_transcripts\": [", HARK_ERR_FORMAT, "invalid JSON at line 1"},
		{"{\"topic_list\": []}", HARK_ERR_FORMAT, "no \"meeting_transcripts\" array"},
		{"{\"meeting_transcripts\": {}}", HARK_ERR_FORMAT, "meeting_transcripts"},
		{"{\"meeting_transcripts\": [{\"speaker\":\"A\",\"content\":\"x\"},"
		 "{\"speaker\":\"A\"}]}",
		 HARK_ERR_FORMAT, "meeting_transcripts[1]"},
		{"{\"meeting_transcripts\": [{\"speaker\":1,\"content\":\"x\"}]}", HARK_ERR_FORMAT,
		 "meeting_transcripts[0]"},
		{"{\"meeting_transcripts\": []}", HARK_ERR_EMPTY, "no turns"},
		{"", HARK_ERR_EMPTY, "empty"},
		{" \n\t\n", HARK_ERR_EMPTY, "empty"},
		{"{\"meeting_transcripts\": [{\"speaker\":\"A\",\"content\":\"\xff\xfe\"}]}",
		 HARK_ERR_FORMAT, "invalid JSON"},
	};
	char dir[] = "/tmp/hark_test_chunk_XXXXXX", path[256], err[256];
	struct hark_meeting_text m;
	struct hark_meeting_text_params p = hark_meeting_text_default_params();

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "%s/case%zu.json", dir, i);
		write_file(path, cases[i].body, strlen(cases[i].body));
		err[0] = '\0';
		assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof(err)),
				 cases[i].err);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].msg);
		assert_int_equal(m.n_turns, 0);
		assert_null(m.turns);
		unlink(path);
	}
	/* NUL bytes in a text transcript */
	snprintf(path, sizeof(path), "%s/bin.transcript.txt", dir);
	write_file(path, "hello\0world\n", 12);
	assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, "NUL"));
	/* size and turn caps */
	write_file(path, "one\ntwo\nthree\n", 14);
	p.max_bytes = 10;
	assert_int_equal(hark_meeting_text_read(path, &p, &m, err, sizeof(err)), HARK_ERR_LIMIT);
	p = hark_meeting_text_default_params();
	p.max_turns = 2;
	assert_int_equal(hark_meeting_text_read(path, &p, &m, err, sizeof(err)), HARK_ERR_LIMIT);
	assert_non_null(strstr(err, "more than 2 turns"));
	p.max_turns = 3;
	assert_int_equal(hark_meeting_text_read(path, &p, &m, err, sizeof(err)), HARK_OK);
	assert_int_equal(m.n_turns, 3);
	assert_null(m.reference_summary); /* no bin.abssumm.txt */
	hark_meeting_text_clear(&m);
	p.format = 7;
	assert_int_equal(hark_meeting_text_read(path, &p, &m, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	unlink(path);
	/* files that are not there or not files */
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof(err)),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_meeting_text_read(dir, NULL, &m, err, sizeof(err)), HARK_ERR_IS_DIR);
	assert_int_equal(hark_meeting_text_read(NULL, NULL, &m, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	hark_meeting_text_clear(NULL);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budgets),
		cmocka_unit_test(test_speaker_turns),
		cmocka_unit_test(test_overlap_whole_turns),
		cmocka_unit_test(test_long_turn_split),
		cmocka_unit_test(test_fillers),
		cmocka_unit_test(test_min_tokens),
		cmocka_unit_test(test_time_ranges),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_speaker_labels),
		cmocka_unit_test(test_huge_input),
		cmocka_unit_test(test_meetings_real),
		cmocka_unit_test(test_meeting_parse),
		cmocka_unit_test(test_meeting_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
