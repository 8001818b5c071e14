/*
 * Extractive summariser (src/analyze/summarize.c): word budget, transcript
 * order, no duplicates, determinism, filler exclusion, redundancy control,
 * speaker/time attribution, the lead baseline, empty input, parameter
 * errors, cancellation, and ROUGE against the human reference summaries of
 * every shared meeting ($HARK_SHARED/meetings) for the three methods (the
 * seed of the summary-quality benchmark; the table is printed).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "analyze/chunk.h"
#include "analyze/meeting_text.h"
#include "analyze/rouge.h"
#include "analyze/summarize.h"
#include "hark/hark.h"

/* ------------------------------------------------------------ fixture ---- */

static const char *const content[] = {
	"The remote control should have a curved case made of rubber.",
	"Our budget for each unit is twelve Euros and fifty cents.",
	"Marketing found that younger people want a fancy look and feel.",
	"The battery could be replaced by a kinetic energy source.",
	"We decided to drop the teletext button from the design.",
	"Speech recognition is too expensive for this price range.",
	"The interface designer will prepare the button layout for next week.",
	"Customers lose their remote controls very often in the living room.",
	"A solar cell on the top of the case would need bright light.",
	"The company colours yellow and black must appear on the product.",
	"We should use a simple chip instead of the advanced one to save money.",
	"The prototype will be made of soft plastic with a spongy feel.",
};

static const char *const fill[] = {
	"Yeah.", "Um, okay.", "Mm-hmm.", "Right, right.", "Uh huh.", "Okay.", "{vocalsound}",
	"Hmm.", "Yeah yeah.", "So.",
};

static const char *const spk[] = {"Project Manager", "Marketing", "Industrial Designer",
				  "User Interface"};

struct meeting {
	struct hark_chunk_turn *t;
	char **texts;
	size_t n;
};

/* Builds n turns: every third turn a filler, the others one or two content
 * sentences with disfluencies; turn i spans [10 i, 10 i + 8] seconds. */
static void make_meeting(struct meeting *m, size_t n, uint32_t seed)
{
	m->n = n;
	m->t = calloc(n, sizeof(*m->t));
	m->texts = calloc(n, sizeof(*m->texts));
	assert_non_null(m->t);
	assert_non_null(m->texts);
	for (size_t i = 0; i < n; i++) {
		char buf[512];

		seed = seed * 1103515245u + 12345u;
		if (i % 3 == 2) {
			snprintf(buf, sizeof(buf), "%s", fill[(seed >> 16) % 10]);
		} else {
			const char *a = content[(seed >> 16) % 12];
			const char *b = content[(seed >> 8) % 12];

			if ((seed >> 4) & 1)
				snprintf(buf, sizeof(buf), "Um, %s Uh, {disfmarker} %s", a, b);
			else
				snprintf(buf, sizeof(buf), "Yeah, %s", a);
		}
		m->texts[i] = strdup(buf);
		assert_non_null(m->texts[i]);
		m->t[i].text = m->texts[i];
		m->t[i].speaker = spk[i % 4];
		m->t[i].start_s = 10.0 * (double)i;
		m->t[i].end_s = 10.0 * (double)i + 8.0;
	}
}

static void free_meeting(struct meeting *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->texts[i]);
	free(m->texts);
	free(m->t);
}

static size_t count_words(const char *s)
{
	size_t w = 0;
	int in = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n') {
			in = 0;
		} else if (!in) {
			in = 1;
			w++;
		}
	}
	return w;
}

/* Invariants every summary must satisfy. */
static void check_summary(const struct hark_summary *s, const struct hark_chunk_turn *t,
			  size_t n, const struct hark_summarize_params *p)
{
	size_t words = 0;

	assert_true(s->words <= p->max_words);
	for (size_t i = 0; i < s->n; i++) {
		const struct hark_summary_sentence *x = &s->sentences[i];

		assert_non_null(x->text);
		assert_int_equal(x->words, count_words(x->text));
		assert_true(x->words > 0);
		words += x->words;
		assert_true(x->turn < n);
		/* strictly increasing (turn, index): order kept, no duplicates */
		if (i > 0) {
			const struct hark_summary_sentence *y = &s->sentences[i - 1];

			assert_true(x->turn > y->turn || (x->turn == y->turn && x->index > y->index));
		}
		if (t[x->turn].speaker)
			assert_string_equal(x->speaker, t[x->turn].speaker);
		else
			assert_null(x->speaker);
		if (t[x->turn].start_s >= 0) {
			assert_true(x->start_s >= t[x->turn].start_s - 1e-9);
			assert_true(x->end_s <= t[x->turn].end_s + 1e-9);
			assert_true(x->start_s <= x->end_s);
		} else {
			assert_true(x->start_s < 0);
		}
		assert_null(strstr(x->text, "{disfmarker}"));
		assert_null(strstr(x->text, "{vocalsound}"));
	}
	assert_int_equal(words, s->words);
	assert_true(words <= p->max_words);
}

static int has_word(const char *text, const char *w)
{
	size_t n = strlen(w);

	for (const char *q = text; (q = strstr(q, w)) != NULL; q++) {
		int left = q == text || !((q[-1] >= 'a' && q[-1] <= 'z') ||
					  (q[-1] >= 'A' && q[-1] <= 'Z'));
		char c = q[n];
		int right = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-');

		if (left && right)
			return 1;
	}
	return 0;
}

/* --------------------------------------------------------- properties ---- */

static void test_properties(void **state)
{
	static const size_t budgets[] = {1, 7, 20, 50, 120, 400};
	struct meeting m;
	char err[256];

	(void)state;
	make_meeting(&m, 60, 7);
	for (int method = 0; method < 3; method++) {
		for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
			struct hark_summarize_params p = hark_summarize_default_params();
			struct hark_summary s, s2;
			char *t1, *t2;

			p.method = method;
			p.max_words = budgets[b];
			assert_int_equal(hark_summarize(m.t, m.n, &p, &s, err, sizeof(err)), HARK_OK);
			check_summary(&s, m.t, m.n, &p);
			if (method == HARK_SUMMARIZE_LEAD || budgets[b] >= 20)
				assert_true(s.n > 0);
			/* deterministic */
			assert_int_equal(hark_summarize(m.t, m.n, &p, &s2, err, sizeof(err)), HARK_OK);
			t1 = hark_summary_text(&s);
			t2 = hark_summary_text(&s2);
			assert_non_null(t1);
			assert_non_null(t2);
			assert_string_equal(t1, t2);
			assert_int_equal(s.n, s2.n);
			for (size_t i = 0; i < s.n; i++) {
				assert_int_equal(s.sentences[i].turn, s2.sentences[i].turn);
				assert_true(s.sentences[i].score == s2.sentences[i].score);
			}
			if (method == HARK_SUMMARIZE_FULL) {
				/* fillers excluded: no filler turn, no disfluency, no
				 * sentence under min_words */
				for (size_t i = 0; i < s.n; i++) {
					const struct hark_summary_sentence *x = &s.sentences[i];

					assert_true(x->turn % 3 != 2);
					assert_false(hark_chunk_is_low_value(x->text));
					assert_true(x->words >= p.min_words);
					assert_false(has_word(x->text, "Um"));
					assert_false(has_word(x->text, "Uh"));
					assert_false(has_word(x->text, "Yeah"));
				}
				/* no duplicate text (the fixture repeats sentences a lot) */
				for (size_t i = 0; i < s.n; i++)
					for (size_t j = i + 1; j < s.n; j++)
						assert_string_not_equal(s.sentences[i].text,
									s.sentences[j].text);
			}
			free(t1);
			free(t2);
			hark_summary_clear(&s);
			hark_summary_clear(&s2);
		}
	}
	free_meeting(&m);
}

static void test_redundancy(void **state)
{
	/* The same sentence said three times is the most central; plain TextRank
	 * takes all copies, the full method only one. */
	const char *dup = "The remote control budget is twelve Euros fifty per unit.";
	struct hark_chunk_turn t[8];
	const char *texts[8] = {
		dup, "Marketing wants a fancy look and feel for younger people.", dup,
		"The remote control case will be curved and made of rubber.", dup,
		"We decided the budget and the remote control case this morning.",
		"The kinetic battery source is cheaper than solar cells.",
		"Next week the designer presents the button layout.",
	};
	struct hark_summarize_params p = hark_summarize_default_params();
	struct hark_summary s;
	char err[256];
	size_t copies;

	(void)state;
	for (int i = 0; i < 8; i++) {
		t[i].text = texts[i];
		t[i].speaker = NULL;
		t[i].start_s = t[i].end_s = -1;
	}
	p.max_words = 45;
	p.method = HARK_SUMMARIZE_TEXTRANK;
	assert_int_equal(hark_summarize(t, 8, &p, &s, err, sizeof(err)), HARK_OK);
	check_summary(&s, t, 8, &p);
	copies = 0;
	for (size_t i = 0; i < s.n; i++)
		copies += strcmp(s.sentences[i].text, dup) == 0;
	assert_true(copies >= 2);
	hark_summary_clear(&s);
	p.method = HARK_SUMMARIZE_FULL;
	assert_int_equal(hark_summarize(t, 8, &p, &s, err, sizeof(err)), HARK_OK);
	check_summary(&s, t, 8, &p);
	copies = 0;
	for (size_t i = 0; i < s.n; i++)
		copies += strcmp(s.sentences[i].text, dup) == 0;
	assert_int_equal(copies, 1);
	assert_true(s.n >= 3);
	for (size_t i = 0; i < s.n; i++)
		assert_null(s.sentences[i].speaker);
	hark_summary_clear(&s);
}

static void test_lead_and_times(void **state)
{
	struct hark_chunk_turn t[3] = {
		{"A", "One two three four. Five six seven eight.", 10.0, 20.0},
		{"B", "Nine ten {vocalsound} eleven.", -1, -1},
		{NULL, "Twelve thirteen fourteen fifteen sixteen.", 30.0, 35.0},
	};
	struct hark_summarize_params p = hark_summarize_default_params();
	struct hark_summary s;
	char err[256], *txt;

	(void)state;
	p.method = HARK_SUMMARIZE_LEAD;
	p.max_words = 13;
	assert_int_equal(hark_summarize(t, 3, &p, &s, err, sizeof(err)), HARK_OK);
	check_summary(&s, t, 3, &p);
	txt = hark_summary_text(&s);
	assert_string_equal(txt, "One two three four. Five six seven eight. Nine ten eleven. "
				 "Twelve thirteen");
	free(txt);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.words, 13);
	/* sentence 2 of turn 0 covers words 4..8 of 8 -> [15, 20] s */
	assert_int_equal(s.sentences[1].turn, 0);
	assert_int_equal(s.sentences[1].index, 1);
	assert_true(s.sentences[0].start_s > 9.999 && s.sentences[0].start_s < 10.001);
	assert_true(s.sentences[1].start_s > 14.999 && s.sentences[1].start_s < 15.001);
	assert_true(s.sentences[1].end_s > 19.999 && s.sentences[1].end_s < 20.001);
	assert_string_equal(s.sentences[2].speaker, "B");
	assert_true(s.sentences[2].start_s < 0);
	assert_null(s.sentences[3].speaker);
	assert_true(s.sentences[3].start_s > 29.999 && s.sentences[3].start_s < 30.001);
	hark_summary_clear(&s);
}

static int cancel_now(void *ud)
{
	(*(int *)ud)++;
	return 1;
}

struct prog {
	int calls;
	double last;
	int monotonic;
};

static void on_progress(double done, void *ud)
{
	struct prog *pr = ud;

	if (done < pr->last || done < 0 || done > 1)
		pr->monotonic = 0;
	pr->last = done;
	pr->calls++;
}

static void test_progress(void **state)
{
	struct meeting m;
	struct hark_summarize_params p = hark_summarize_default_params();
	struct hark_summary s;
	struct prog pr = {0, 0, 1};
	char err[256];

	(void)state;
	make_meeting(&m, 40, 11);
	p.progress = on_progress;
	p.progress_user_data = &pr;
	assert_int_equal(hark_summarize(m.t, m.n, &p, &s, err, sizeof(err)), HARK_OK);
	assert_true(pr.calls >= 3);
	assert_true(pr.monotonic);
	assert_true(pr.last == 1.0);
	hark_summary_clear(&s);
	free_meeting(&m);
}

static void test_empty_and_errors(void **state)
{
	struct hark_chunk_turn fillers[4] = {
		{"A", "Yeah.", -1, -1}, {"B", "Um, okay. Mm-hmm.", -1, -1},
		{"C", "", -1, -1}, {"D", NULL, -1, -1},
	};
	struct hark_summarize_params p = hark_summarize_default_params();
	struct hark_summary s;
	struct meeting m;
	char err[256], *txt;
	int calls = 0;

	(void)state;
	for (int method = 0; method < 3; method++) {
		p.method = method;
		assert_int_equal(hark_summarize(NULL, 0, &p, &s, err, sizeof(err)), HARK_OK);
		assert_int_equal(s.n, 0);
		txt = hark_summary_text(&s);
		assert_string_equal(txt, "");
		free(txt);
		hark_summary_clear(&s);
	}
	p.method = HARK_SUMMARIZE_FULL;
	assert_int_equal(hark_summarize(fillers, 4, &p, &s, err, sizeof(err)), HARK_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.candidates, 0);
	hark_summary_clear(&s);
	/* the baselines keep fillers */
	p.method = HARK_SUMMARIZE_TEXTRANK;
	assert_int_equal(hark_summarize(fillers, 4, &p, &s, err, sizeof(err)), HARK_OK);
	assert_true(s.n >= 2);
	hark_summary_clear(&s);

	assert_int_equal(hark_summarize(fillers, 4, &p, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_summarize(NULL, 2, &p, &s, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	p = hark_summarize_default_params();
	p.max_words = 0;
	assert_int_equal(hark_summarize(fillers, 4, &p, &s, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_summarize_default_params();
	p.damping = 1.0;
	assert_int_equal(hark_summarize(fillers, 4, &p, &s, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_summarize_default_params();
	p.method = 7;
	assert_int_equal(hark_summarize(fillers, 4, &p, &s, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);

	make_meeting(&m, 30, 3);
	p = hark_summarize_default_params();
	p.max_input_bytes = 100;
	assert_int_equal(hark_summarize(m.t, m.n, &p, &s, err, sizeof(err)), HARK_ERR_LIMIT);
	assert_true(strlen(err) > 0);
	p = hark_summarize_default_params();
	p.max_sentences = 5;
	assert_int_equal(hark_summarize(m.t, m.n, &p, &s, err, sizeof(err)), HARK_ERR_LIMIT);
	p = hark_summarize_default_params();
	p.cancel = cancel_now;
	p.cancel_user_data = &calls;
	assert_int_equal(hark_summarize(m.t, m.n, &p, &s, err, sizeof(err)), HARK_ERR_CANCELED);
	assert_true(calls >= 1);
	assert_int_equal(s.n, 0);
	assert_null(s.sentences);
	free_meeting(&m);
}

/* ----------------------------------------------------- shared meetings --- */

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");

	return (s && *s) ? s : "../shared";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the paths of dir's files ending in suffix to *v (sorted per dir). */
static void list_files(const char *dir, const char *suffix, char ***v, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t first = *n, sl = strlen(suffix);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char path[4096];

		if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		*v = realloc(*v, (*n + 1) * sizeof(**v));
		assert_non_null(*v);
		(*v)[(*n)++] = strdup(path);
	}
	closedir(d);
	qsort(*v + first, *n - first, sizeof(**v), cmp_str);
}

static void test_shared_rouge(void **state)
{
	static const char *const names[] = {"full", "textrank", "lead"};
	char dir[4096], err[256];
	char **files = NULL;
	size_t nf = 0, used = 0;
	double sum[3][3] = {{0}};
	struct stat st;
	clock_t c0 = clock();

	(void)state;
	snprintf(dir, sizeof(dir), "%s/meetings", shared_dir());
	if (stat(dir, &st) != 0) {
		skip();
		return;
	}
	snprintf(dir, sizeof(dir), "%s/meetings/qmsum", shared_dir());
	list_files(dir, ".json", &files, &nf);
	snprintf(dir, sizeof(dir), "%s/meetings/ami", shared_dir());
	list_files(dir, ".transcript.txt", &files, &nf);
	assert_true(nf >= 10);
	printf("%-24s %5s | %-20s | %-20s | %-20s\n", "meeting", "ref_w", "full R1/R2/RL",
	       "textrank R1/R2/RL", "lead R1/R2/RL");
	for (size_t f = 0; f < nf; f++) {
		struct hark_meeting_text m;
		struct hark_chunk_turn *t;
		struct hark_rouge_result rr;
		const char *base = strrchr(files[f], '/');
		size_t ref_words;

		assert_int_equal(hark_meeting_text_read(files[f], NULL, &m, err, sizeof(err)),
				 HARK_OK);
		if (!m.reference_summary) {
			hark_meeting_text_clear(&m);
			continue;
		}
		t = calloc(m.n_turns, sizeof(*t));
		assert_non_null(t);
		for (size_t i = 0; i < m.n_turns; i++) {
			t[i].speaker = m.turns[i].speaker;
			t[i].text = m.turns[i].text;
			t[i].start_s = m.turns[i].start_s;
			t[i].end_s = m.turns[i].end_s;
		}
		/* the budget is the reference's length, as usual for extractive
		 * ROUGE comparisons */
		ref_words = count_words(m.reference_summary);
		printf("%-24s %5zu", base ? base + 1 : files[f], ref_words);
		for (int method = 0; method < 3; method++) {
			struct hark_summarize_params p = hark_summarize_default_params();
			struct hark_summary s;
			char *txt;

			p.method = method;
			p.max_words = ref_words;
			assert_int_equal(hark_summarize(t, m.n_turns, &p, &s, err, sizeof(err)),
					 HARK_OK);
			check_summary(&s, t, m.n_turns, &p);
			assert_true(s.n > 0);
			txt = hark_summary_text(&s);
			assert_non_null(txt);
			assert_int_equal(hark_rouge_compute(txt, m.reference_summary, NULL, &rr, err,
							    sizeof(err)),
					 HARK_OK);
			printf(" | %.3f %.3f %.3f   ", rr.rouge1.f1, rr.rouge2.f1, rr.rougel.f1);
			sum[method][0] += rr.rouge1.f1;
			sum[method][1] += rr.rouge2.f1;
			sum[method][2] += rr.rougel.f1;
			free(txt);
			hark_summary_clear(&s);
		}
		printf("\n");
		used++;
		free(t);
		hark_meeting_text_clear(&m);
	}
	assert_true(used >= 10);
	printf("mean ROUGE F1 over %zu meetings (Porter stemming, budget = reference words):\n",
	       used);
	for (int method = 0; method < 3; method++)
		printf("  %-9s R1 %.4f  R2 %.4f  RL %.4f\n", names[method], sum[method][0] / used,
		       sum[method][1] / used, sum[method][2] / used);
	printf("  (cpu %.2f s)\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
	assert_true(sum[0][0] > 0);
	assert_true(sum[0][0] >= sum[2][0]);
	for (size_t f = 0; f < nf; f++)
		free(files[f]);
	free(files);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_redundancy),
		cmocka_unit_test(test_lead_and_times),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_shared_rouge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
