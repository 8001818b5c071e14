/*
 * Unit tests for the scoring normaliser (src/util/textnorm) and word error
 * rate (src/util/wer): hand-computed alignments, corpus aggregation, caps,
 * and normalisation of numbers, punctuation, case and spelling variants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hark/hark.h"
#include "util/textnorm.h"
#include "util/wer.h"

static void check_norm(const char *in, const char *want)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(hark_textnorm_normalize(in, strlen(in), NULL, &out, &len), HARK_OK);
	assert_non_null(out);
	if (strcmp(out, want) != 0)
		print_error("normalize(\"%s\") = \"%s\", want \"%s\"\n", in, out, want);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(out));
	free(out);
}

static struct hark_wer_counts wer(const char *ref, const char *hyp, int normalize)
{
	struct hark_wer_counts c;

	assert_int_equal(hark_wer_compute(ref, hyp, normalize, &c), HARK_OK);
	return c;
}

static void test_wer_insertion(void **state)
{
	struct hark_wer_counts c = wer("the cat sat", "the cat sat down", 0);

	(void)state;
	assert_int_equal(c.sub, 0);
	assert_int_equal(c.del, 0);
	assert_int_equal(c.ins, 1);
	assert_int_equal(c.ref_words, 3);
	assert_int_equal(c.hyp_words, 4);
	assert_int_equal(c.hits, 3);
	assert_true(hark_wer_rate(&c) > 1.0 / 3 - 1e-12 && hark_wer_rate(&c) < 1.0 / 3 + 1e-12);
}

static void test_wer_sub_del(void **state)
{
	/* the cat sat on the mat / the cat sit on mat: sat->sit (S), second
	 * "the" missing (D). */
	struct hark_wer_counts c = wer("the cat sat on the mat", "the cat sit on mat", 0);

	(void)state;
	assert_int_equal(c.sub, 1);
	assert_int_equal(c.del, 1);
	assert_int_equal(c.ins, 0);
	assert_int_equal(c.hits, 4);
	assert_int_equal(c.ref_words, 6);
	assert_true(hark_wer_rate(&c) > 2.0 / 6 - 1e-12 && hark_wer_rate(&c) < 2.0 / 6 + 1e-12);
}

static void test_wer_disjoint_and_ties(void **state)
{
	struct hark_wer_counts c = wer("a b c", "x y", 0);

	(void)state;
	/* Nothing matches: 2 substitutions and 1 deletion is the minimum. */
	assert_int_equal(c.sub + c.del + c.ins, 3);
	assert_int_equal(c.sub, 2);
	assert_int_equal(c.del, 1);
	/* a b c d e / a x c e f: minimum cost 3 (several optimal alignments). */
	c = wer("a b c d e", "a x c e f", 0);
	assert_int_equal(c.sub + c.del + c.ins, 3);
	assert_int_equal(c.hits + c.sub + c.del, 5);
	assert_int_equal(c.hits + c.sub + c.ins, 5);
	/* Identical, and whitespace does not matter. */
	c = wer("  one\ttwo\nthree ", "one two three", 0);
	assert_int_equal(c.sub + c.del + c.ins, 0);
	assert_int_equal(c.hits, 3);
	/* Case matters without normalisation, not with it. */
	c = wer("Hello World", "hello world", 0);
	assert_int_equal(c.sub, 2);
	c = wer("Hello, World!", "hello world", 1);
	assert_int_equal(c.sub + c.del + c.ins, 0);
}

static void test_wer_empty(void **state)
{
	struct hark_wer_counts c;

	(void)state;
	c = wer("", "", 0);
	assert_int_equal(c.ref_words, 0);
	assert_true(hark_wer_rate(&c) == 0.0);
	c = wer("", "word", 0);
	assert_int_equal(c.ins, 1);
	assert_true(hark_wer_rate(&c) == 1.0);
	c = wer("two words", "   ", 0);
	assert_int_equal(c.del, 2);
	assert_true(hark_wer_rate(&c) == 1.0);
	assert_int_equal(hark_wer_compute(NULL, "x", 0, &c), HARK_ERR_INVALID_ARG);
}

static void test_wer_aggregate(void **state)
{
	struct hark_wer_counts total, c;

	(void)state;
	memset(&total, 0, sizeof(total));
	c = wer("the cat sat", "the cat sat down", 0); /* 1 error / 3 */
	hark_wer_add(&total, &c);
	c = wer("a b c d e f g", "a b c d e f g", 0); /* 0 / 7 */
	hark_wer_add(&total, &c);
	assert_int_equal(total.ref_words, 10);
	assert_int_equal(total.ins, 1);
	/* Corpus WER is 1/10, not the mean of 1/3 and 0. */
	assert_true(hark_wer_rate(&total) > 0.1 - 1e-12 && hark_wer_rate(&total) < 0.1 + 1e-12);
}

static void test_wer_long_and_limit(void **state)
{
	enum { N = 3000 };
	const char **ref = malloc(N * sizeof(*ref)), **hyp = malloc(N * sizeof(*hyp));
	static const char *const vocab[] = {"alpha", "beta", "gamma", "delta", "eps"};
	struct hark_wer_counts c;
	size_t i, big = 200000;
	const char **huge;

	(void)state;
	assert_non_null(ref);
	assert_non_null(hyp);
	for (i = 0; i < N; i++) {
		ref[i] = vocab[(i * 7 + i / 3) % 5];
		/* every 10th word substituted */
		hyp[i] = i % 10 == 0 ? "zzz" : ref[i];
	}
	assert_int_equal(hark_wer_align(ref, N, hyp, N, &c), HARK_OK);
	assert_int_equal(c.sub, N / 10);
	assert_int_equal(c.del + c.ins, 0);
	/* Dropping the first word is one deletion, not a cascade. */
	assert_int_equal(hark_wer_align(ref, N, hyp + 1, N - 1, &c), HARK_OK);
	assert_int_equal(c.sub + c.del + c.ins, N / 10);
	free(ref);
	free(hyp);

	/* Beyond the cell cap the call refuses before doing any work. */
	huge = calloc(big, sizeof(*huge));
	assert_non_null(huge);
	for (i = 0; i < big; i++)
		huge[i] = "w";
	assert_int_equal(hark_wer_align(huge, big, huge, big, &c), HARK_ERR_LIMIT);
	free(huge);
}

static void test_norm_brief_examples(void **state)
{
	(void)state;
	check_norm("In 1813, Mr. Smith paid $5", "in eighteen thirteen mister smith paid five dollars");
	check_norm("Mrs. Jones", "missus jones");
	check_norm("Don't STOP -- it's the 2nd time, 50% off!",
		   "don't stop it's the second time fifty percent off");
	check_norm("123", "one hundred twenty three");
	check_norm("well-known", "well known");
	check_norm("  multiple \t  spaces\n", "multiple spaces");
	check_norm("", "");
	check_norm("!!! ... ???", "");
}

static void test_norm_numbers(void **state)
{
	(void)state;
	check_norm("1900", "nineteen hundred");
	check_norm("1805", "eighteen oh five");
	check_norm("2024", "twenty twenty four");
	check_norm("2005", "two thousand five");
	check_norm("1099", "one thousand ninety nine");
	check_norm("the 1990s", "the nineteen nineties");
	check_norm("1,000,000 people", "one million people");
	check_norm("1,813", "one thousand eight hundred thirteen");
	check_norm("3.14", "three point one four");
	check_norm("21st 3rd 12th 100th 40th", "twenty first third twelfth one hundredth fortieth");
	check_norm("$5.50", "five dollars fifty cents");
	check_norm("$1", "one dollar");
	check_norm("0", "zero");
	check_norm("007", "zero zero seven");
	check_norm("15 %", "fifteen percent");
	check_norm("mp3", "mp three");
	check_norm("1000000000000", "one trillion");
	check_norm("12345678901234567890123", "one two three four five six seven eight nine zero "
					       "one two three four five six seven eight nine zero "
					       "one two three");
}

static void test_norm_text(void **state)
{
	char buf[64];

	(void)state;
	check_norm("ÉCOLE Café NAÏVE", "école café naïve");
	check_norm("\xe2\x80\x98quoted\xe2\x80\x99 rock\xe2\x80\x99n\xe2\x80\x99roll",
		   "quoted rock'n'roll");
	check_norm("em\xe2\x80\x94" "dash en\xe2\x80\x93" "dash", "em dash en dash");
	check_norm("Um, hello [laughter] uh (inaudible) there", "hello there");
	check_norm("OK, Dr. Who vs. you & me", "okay doctor who versus you and me");
	check_norm("the dogs' bone", "the dogs bone");
	check_norm("\xff\xfe broken \xc3", "broken");
	check_norm("東京 – café", "東京 café");
	assert_int_equal(hark_textnorm_cardinal(999999, buf, sizeof(buf)),
			 strlen("nine hundred ninety nine thousand nine hundred ninety nine"));
	assert_string_equal(buf, "nine hundred ninety nine thousand nine hundred ninety nine");
	assert_int_equal(hark_textnorm_cardinal(123456789, buf, 8), 0); /* too small */
}

static void test_norm_options(void **state)
{
	struct hark_textnorm_params p = hark_textnorm_default_params();
	char *out = NULL;
	const char *in = "Um Mr. 42";

	(void)state;
	p.expand_numbers = 0;
	p.remove_fillers = 0;
	p.map_spellings = 0;
	assert_int_equal(hark_textnorm_normalize(in, strlen(in), &p, &out, NULL), HARK_OK);
	assert_string_equal(out, "um mr 42");
	free(out);
	assert_int_equal(hark_textnorm_normalize(NULL, 3, NULL, &out, NULL), HARK_ERR_INVALID_ARG);
}

static void test_utf8_helpers(void **state)
{
	char *out = NULL;
	size_t n = 0;
	uint32_t cp;

	(void)state;
	assert_true(hark_textnorm_utf8_valid("na\xc3\xafve \xe6\x9d\xb1", 10));
	assert_false(hark_textnorm_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(hark_textnorm_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(hark_textnorm_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(hark_textnorm_utf8_valid("\xe6\x9d", 2));         /* truncated */
	assert_int_equal(hark_textnorm_utf8_decode("\xe6\x9d\xb1", 3, &cp), 3);
	assert_int_equal(cp, 0x6771);
	assert_int_equal(hark_textnorm_utf8_len("caf\xc3\xa9 \xe6\x9d\xb1", 9), 6);
	assert_int_equal(hark_textnorm_utf8_sanitize("a\xff" "b\x01" "c", 5, 1, &out, &n), HARK_OK);
	assert_string_equal(out, "a\xef\xbf\xbd" "b c");
	assert_int_equal(n, 7);
	assert_true(hark_textnorm_utf8_valid(out, n));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wer_insertion),
		cmocka_unit_test(test_wer_sub_del),
		cmocka_unit_test(test_wer_disjoint_and_ties),
		cmocka_unit_test(test_wer_empty),
		cmocka_unit_test(test_wer_aggregate),
		cmocka_unit_test(test_wer_long_and_limit),
		cmocka_unit_test(test_norm_brief_examples),
		cmocka_unit_test(test_norm_numbers),
		cmocka_unit_test(test_norm_text),
		cmocka_unit_test(test_norm_options),
		cmocka_unit_test(test_utf8_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
