/*
 * ROUGE scorer and Porter stemmer (src/analyze/rouge.c): hand-computed
 * ROUGE-1/2/L values on small examples, count clipping, identity and
 * disjointness, precision/recall symmetry, tokenisation (case, punctuation,
 * digits), stemming on/off, the Porter algorithm on the classic words, empty
 * inputs and caps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analyze/rouge.h"
#include "hark/hark.h"

#define EPS 1e-9

/* cmocka 1.1 has no assert_double_equal. */
#define assert_double_equal(a, b, eps) assert_near((a), (b), (eps), #a)

static void assert_near(double a, double b, double eps, const char *what)
{
	if (!(a - b <= eps && b - a <= eps))
		fail_msg("%s = %.12f, want %.12f", what, a, b);
}

static void check_score(const struct hark_rouge_score *s, double p, double r)
{
	double f = (p + r) > 0 ? 2 * p * r / (p + r) : 0;

	assert_double_equal(s->precision, p, EPS);
	assert_double_equal(s->recall, r, EPS);
	assert_double_equal(s->f1, f, EPS);
}

static void score(const char *c, const char *r, int stem, struct hark_rouge_result *out)
{
	struct hark_rouge_params p = hark_rouge_default_params();
	char err[128];

	p.stem = stem;
	assert_int_equal(hark_rouge_compute(c, r, &p, out, err, sizeof(err)), HARK_OK);
}

static void test_hand_example(void **state)
{
	struct hark_rouge_result r;

	(void)state;
	/* cand: the cat sat on the mat (6 tokens); ref: the cat was on the mat (6).
	 * Unigrams: the min(2,2)=2, cat 1, on 1, mat 1, sat 0 -> 5; P = R = 5/6.
	 * Bigrams (5 each): the-cat, on-the, the-mat match -> 3; P = R = 3/5.
	 * LCS: "the cat on the mat" = 5; P = R = 5/6. */
	score("the cat sat on the mat", "the cat was on the mat", 1, &r);
	check_score(&r.rouge1, 5.0 / 6, 5.0 / 6);
	check_score(&r.rouge2, 3.0 / 5, 3.0 / 5);
	check_score(&r.rougel, 5.0 / 6, 5.0 / 6);
	assert_int_equal(r.cand_tokens, 6);
	assert_int_equal(r.ref_tokens, 6);
}

static void test_clipping(void **state)
{
	struct hark_rouge_result r;

	(void)state;
	/* cand "the the the the" (4), ref "the cat" (2): "the" counts min(4,1)=1:
	 * P = 1/4, R = 1/2, F = 1/3. Bigrams the-the x3 vs the-cat: 0.
	 * LCS = 1: P = 1/4, R = 1/2. */
	score("the the the the", "the cat", 1, &r);
	check_score(&r.rouge1, 0.25, 0.5);
	assert_double_equal(r.rouge1.f1, 1.0 / 3, EPS);
	check_score(&r.rouge2, 0, 0);
	check_score(&r.rougel, 0.25, 0.5);
	/* Repeated bigram clipped: cand "a b a b" bigrams ab, ba, ab (3);
	 * ref "a b c" bigrams ab, bc (2): ab min(2,1) = 1 -> P 1/3, R 1/2.
	 * Unigrams: a min(2,1)=1, b min(2,1)=1 -> 2: P 2/4, R 2/3.
	 * LCS "a b" = 2: P 2/4, R 2/3. */
	score("a b a b", "a b c", 1, &r);
	check_score(&r.rouge1, 0.5, 2.0 / 3);
	check_score(&r.rouge2, 1.0 / 3, 0.5);
	check_score(&r.rougel, 0.5, 2.0 / 3);
}

static void test_lin_example(void **state)
{
	struct hark_rouge_result r;

	(void)state;
	/* Lin (2004): ref "police killed the gunman". cand "police kill the
	 * gunman": without stemming 3/4 unigrams; bigrams police-kill, kill-the,
	 * the-gunman vs police-killed, killed-the, the-gunman -> 1/3; LCS 3/4.
	 * With stemming killed -> kill: everything matches. */
	score("police kill the gunman", "police killed the gunman", 0, &r);
	check_score(&r.rouge1, 0.75, 0.75);
	check_score(&r.rouge2, 1.0 / 3, 1.0 / 3);
	check_score(&r.rougel, 0.75, 0.75);
	score("police kill the gunman", "police killed the gunman", 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rouge2, 1, 1);
	check_score(&r.rougel, 1, 1);
	/* cand "the gunman kill police": unigrams all 4 (stemmed) but the LCS is
	 * "the gunman" = 2 -> ROUGE-L 1/2; bigrams: only the-gunman -> 1/3. */
	score("the gunman kill police", "police killed the gunman", 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rouge2, 1.0 / 3, 1.0 / 3);
	check_score(&r.rougel, 0.5, 0.5);
}

static void test_identity_disjoint(void **state)
{
	const char *t = "The budget for the remote control is twenty-five Euros, and "
			"we decided on a curved case with rubber buttons.";
	struct hark_rouge_result r;

	(void)state;
	score(t, t, 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rouge2, 1, 1);
	check_score(&r.rougel, 1, 1);
	score(t, t, 0, &r);
	check_score(&r.rouge1, 1, 1);
	score("alpha beta gamma", "delta epsilon zeta eta", 1, &r);
	check_score(&r.rouge1, 0, 0);
	check_score(&r.rouge2, 0, 0);
	check_score(&r.rougel, 0, 0);
	assert_int_equal(r.cand_tokens, 3);
	assert_int_equal(r.ref_tokens, 4);
	/* case and punctuation do not matter; tokens split at non-alphanumerics */
	score("The CAT -- sat!!", "the cat sat", 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rougel, 1, 1);
	/* "twenty-five" is two tokens; "mp3" and "2024" are kept whole */
	score("twenty-five mp3 2024", "twenty five mp3 2024", 1, &r);
	check_score(&r.rouge1, 1, 1);
	assert_int_equal(r.cand_tokens, 4);
	score("mp3", "mp 3", 1, &r);
	check_score(&r.rouge1, 0, 0);
}

static void test_symmetry(void **state)
{
	static const char *const w[] = {"we", "should", "design", "the", "remote", "button",
					"budget", "meeting", "decided", "price", "market", "a"};
	uint32_t x = 12345;

	(void)state;
	for (int round = 0; round < 50; round++) {
		char a[512] = "", b[512] = "";
		struct hark_rouge_result ab, ba;
		int na = 1 + round % 17, nb = 1 + (round * 7) % 23;

		for (int i = 0; i < na; i++) {
			x = x * 1103515245u + 12345u;
			strcat(a, w[(x >> 16) % 12]);
			strcat(a, " ");
		}
		for (int i = 0; i < nb; i++) {
			x = x * 1103515245u + 12345u;
			strcat(b, w[(x >> 16) % 12]);
			strcat(b, " ");
		}
		score(a, b, 1, &ab);
		score(b, a, 1, &ba);
		assert_double_equal(ab.rouge1.precision, ba.rouge1.recall, EPS);
		assert_double_equal(ab.rouge1.recall, ba.rouge1.precision, EPS);
		assert_double_equal(ab.rouge1.f1, ba.rouge1.f1, EPS);
		assert_double_equal(ab.rouge2.f1, ba.rouge2.f1, EPS);
		assert_double_equal(ab.rougel.precision, ba.rougel.recall, EPS);
		assert_double_equal(ab.rougel.f1, ba.rougel.f1, EPS);
		/* LCS never exceeds the clipped unigram overlap */
		assert_true(ab.rougel.recall <= ab.rouge1.recall + EPS);
		assert_true(ab.rouge1.f1 >= 0 && ab.rouge1.f1 <= 1);
	}
}

static void stem_is(const char *w, const char *want)
{
	char out[HARK_ROUGE_MAX_WORD + 1];
	size_t n = hark_rouge_porter_stem(w, strlen(w), out, sizeof(out));

	if (strcmp(out, want) != 0)
		fail_msg("stem(%s) = %s, want %s", w, out, want);
	assert_int_equal(n, strlen(want));
}

static void test_porter(void **state)
{
	(void)state;
	/* step 1a */
	stem_is("caresses", "caress");
	stem_is("ponies", "poni");
	stem_is("ties", "ti");
	stem_is("caress", "caress");
	stem_is("cats", "cat");
	/* step 1b */
	stem_is("feed", "feed");
	stem_is("agreed", "agre");
	stem_is("plastered", "plaster");
	stem_is("bled", "bled");
	stem_is("motoring", "motor");
	stem_is("sing", "sing");
	stem_is("conflated", "conflat");
	stem_is("troubled", "troubl");
	stem_is("sized", "size");
	stem_is("hopping", "hop");
	stem_is("tanned", "tan");
	stem_is("falling", "fall");
	stem_is("hissing", "hiss");
	stem_is("fizzed", "fizz");
	stem_is("failing", "fail");
	stem_is("filing", "file");
	/* step 1c */
	stem_is("happy", "happi");
	stem_is("sky", "sky");
	/* steps 2-5 */
	stem_is("relational", "relat");
	stem_is("conditional", "condit");
	stem_is("rational", "ration");
	stem_is("digitizer", "digit");
	stem_is("hopefulness", "hope");
	stem_is("goodness", "good");
	stem_is("electrical", "electr");
	stem_is("adjustment", "adjust");
	stem_is("replacement", "replac");
	stem_is("dependent", "depend");
	stem_is("adoption", "adopt");
	stem_is("communism", "commun");
	stem_is("effective", "effect");
	stem_is("generalizations", "gener");
	stem_is("oscillators", "oscil");
	stem_is("probate", "probat");
	stem_is("rate", "rate");
	stem_is("cease", "ceas");
	stem_is("controll", "control");
	stem_is("roll", "roll");
	/* untouched: short, non-letters */
	stem_is("is", "is");
	stem_is("mp3s", "mp3s");
}

static void test_stemming_option(void **state)
{
	struct hark_rouge_result r;

	(void)state;
	/* "meetings decided" vs "meeting decides": stemmed meet/decid on both
	 * sides; unstemmed nothing matches. */
	score("meetings decided", "meeting decides", 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rouge2, 1, 1);
	score("meetings decided", "meeting decides", 0, &r);
	check_score(&r.rouge1, 0, 0);
	/* tokens of three letters or fewer are not stemmed (as rouge-score):
	 * "was" stays "was", "cats" -> "cat" */
	score("cats was", "cat was", 1, &r);
	check_score(&r.rouge1, 1, 1);
}

static void test_empty_and_errors(void **state)
{
	struct hark_rouge_result r;
	struct hark_rouge_params p = hark_rouge_default_params();
	char err[128];

	(void)state;
	score("", "", 1, &r);
	check_score(&r.rouge1, 0, 0);
	check_score(&r.rougel, 0, 0);
	score("some words here", "", 1, &r);
	check_score(&r.rouge1, 0, 0);
	assert_int_equal(r.cand_tokens, 3);
	score(NULL, "reference text", 1, &r);
	check_score(&r.rouge2, 0, 0);
	assert_int_equal(r.ref_tokens, 2);
	score("...!!! ,,,", "the reference", 1, &r);
	assert_int_equal(r.cand_tokens, 0);
	/* a single token: no bigram, ROUGE-2 is 0, ROUGE-1 is 1 */
	score("budget", "budget", 1, &r);
	check_score(&r.rouge1, 1, 1);
	check_score(&r.rouge2, 0, 0);
	assert_int_equal(hark_rouge_compute("a", "a", NULL, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p.max_tokens = 3;
	assert_int_equal(hark_rouge_compute("one two three four", "one", &p, &r, err, sizeof(err)),
			 HARK_ERR_LIMIT);
	assert_true(strlen(err) > 0);
	check_score(&r.rouge1, 0, 0);
	p = hark_rouge_default_params();
	p.max_lcs_cells = 5;
	assert_int_equal(hark_rouge_compute("a b c", "a b c", &p, &r, err, sizeof(err)),
			 HARK_ERR_LIMIT);
	/* an over-long token is one token, compared whole */
	{
		char big[300];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		score(big, big, 1, &r);
		check_score(&r.rouge1, 1, 1);
		assert_int_equal(r.cand_tokens, 1);
		big[200] = 'y';
		score(big, "xxxx", 1, &r);
		check_score(&r.rouge1, 0, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_example),
		cmocka_unit_test(test_clipping),
		cmocka_unit_test(test_lin_example),
		cmocka_unit_test(test_identity_disjoint),
		cmocka_unit_test(test_symmetry),
		cmocka_unit_test(test_porter),
		cmocka_unit_test(test_stemming_option),
		cmocka_unit_test(test_empty_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
