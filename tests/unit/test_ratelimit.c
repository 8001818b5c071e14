/*
 * Unit tests for the token-bucket rate limiter (src/server/ratelimit) on a
 * synthetic clock: a burst is granted then refused with the time until the
 * next token, tokens come back at the configured rate (never beyond the
 * burst), keys are independent, rate <= 0 is unlimited and untracked, a
 * clock that steps back grants nothing extra, and the table stays within
 * its capacity under a flood of distinct keys while evicting buckets that
 * are full again before a drained one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "hark/hark.h"
#include "server/ratelimit.h"

#define EPS 1e-9

static void test_burst_then_refuse(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(100);
	double ra = -1;

	(void)state;
	assert_non_null(rl);
	/* rate 2/s, burst 5, all at t = 100 */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(hark_ratelimit_take(rl, "key_a", 2, 5, 100.0, &ra), 1);
		assert_true(ra == 0);
	}
	assert_int_equal(hark_ratelimit_take(rl, "key_a", 2, 5, 100.0, &ra), 0);
	assert_true(fabs(ra - 0.5) < EPS); /* one token per 0.5 s */
	assert_true(ceil(ra) >= 1);
	/* a refused take spends nothing: still 0.5 s to wait */
	assert_int_equal(hark_ratelimit_take(rl, "key_a", 2, 5, 100.0, &ra), 0);
	assert_true(fabs(ra - 0.5) < EPS);
	/* 0.2 s later: 0.4 tokens, 0.3 s to go */
	assert_int_equal(hark_ratelimit_take(rl, "key_a", 2, 5, 100.2, &ra), 0);
	assert_true(fabs(ra - 0.3) < 1e-6);
	/* another key is untouched */
	assert_int_equal(hark_ratelimit_take(rl, "key_b", 2, 5, 100.2, &ra), 1);
	assert_int_equal(hark_ratelimit_size(rl), 2);
	/* NULL retry pointer is fine */
	assert_int_equal(hark_ratelimit_take(rl, "key_a", 2, 5, 100.2, NULL), 0);
	hark_ratelimit_free(rl);
}

static void test_refill(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(10);
	double ra = 0, t = 0;
	int granted = 0;

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 3; i++)
		assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 0.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 0.0, &ra), 0);
	assert_true(fabs(ra - 1.0) < EPS);
	/* just before a token: refused; at the token: granted */
	assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 0.5, &ra), 0);
	assert_true(fabs(ra - 0.5) < 1e-9);
	assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 1.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 1.0, &ra), 0);
	/* steady polling every 0.1 s for 60 s grants the rate, ~60 */
	for (t = 1.1; t < 61.05; t += 0.1)
		granted += hark_ratelimit_take(rl, "10.0.0.1", 1, 3, t, NULL);
	assert_true(granted >= 59 && granted <= 61);
	/* a long idle period refills only up to the burst */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 10000.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "10.0.0.1", 1, 3, 10000.0, &ra), 0);
	/* slow rate: one request per 10 s */
	assert_int_equal(hark_ratelimit_take(rl, "slow", 0.1, 1, 50.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "slow", 0.1, 1, 50.0, &ra), 0);
	assert_true(fabs(ra - 10.0) < 1e-6);
	assert_int_equal(hark_ratelimit_take(rl, "slow", 0.1, 1, 55.0, &ra), 0);
	assert_true(fabs(ra - 5.0) < 1e-6);
	assert_int_equal(hark_ratelimit_take(rl, "slow", 0.1, 1, 60.0, &ra), 1);
	/* burst < 1 is treated as 1: one request can always pass eventually */
	assert_int_equal(hark_ratelimit_take(rl, "tiny", 1, 0, 0.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "tiny", 1, 0, 0.0, &ra), 0);
	hark_ratelimit_free(rl);
}

static void test_clock_backwards(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(10);
	double ra = 0;

	(void)state;
	assert_non_null(rl);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 1, 100.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 1, 50.0, &ra), 0);
	assert_true(ra > 0 && ra <= 1.0 + EPS);
	/* stepping back did not move the reference time back either */
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 1, 100.5, &ra), 0);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 1, 101.0, &ra), 1);
	hark_ratelimit_free(rl);
}

static void test_unlimited(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(10);
	double ra = -1;

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(hark_ratelimit_take(rl, "free", 0, 1, 1.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "neg", -5, 1, 1.0, &ra), 1);
	assert_int_equal(hark_ratelimit_take(rl, "nan", NAN, 1, 1.0, &ra), 1);
	assert_true(ra == 0);
	assert_int_equal(hark_ratelimit_size(rl), 0); /* nothing tracked */
	hark_ratelimit_free(rl);
}

static void test_rate_change(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(10);

	(void)state;
	assert_non_null(rl);
	/* key's burst lowered from 10 to 2: the bucket is clamped */
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 10, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 2, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 2, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, "k", 1, 2, 0.0, NULL), 0);
	hark_ratelimit_free(rl);
}

static void test_capacity_flood(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(1000);
	char key[64];

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "198.51.%d.%d", (i >> 8) & 255, i & 255);
		snprintf(key + strlen(key), sizeof(key) - strlen(key), "#%d", i);
		/* a new key always gets its first request */
		assert_int_equal(hark_ratelimit_take(rl, key, 1, 5, i * 1e-4, NULL), 1);
		assert_true(hark_ratelimit_size(rl) <= 1000);
	}
	assert_int_equal(hark_ratelimit_size(rl), 1000);
	/* the most recent key survived and is still accounted */
	for (int i = 0; i < 4; i++)
		assert_int_equal(hark_ratelimit_take(rl, key, 1, 5, 20.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, key, 1, 5, 20.0, NULL), 0);
	hark_ratelimit_free(rl);
}

static void test_evicts_full_first(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(10);
	char key[32];
	double ra = 0;

	(void)state;
	assert_non_null(rl);
	/* the abuser is the least recently used and drained (slow refill) */
	for (int i = 0; i < 3; i++)
		assert_int_equal(hark_ratelimit_take(rl, "abuser", 0.001, 3, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, "abuser", 0.001, 3, 0.0, NULL), 0);
	/* nine others take one token at t = 1 and are full again by t = 10 */
	for (int i = 0; i < 9; i++) {
		snprintf(key, sizeof(key), "quiet%d", i);
		assert_int_equal(hark_ratelimit_take(rl, key, 10, 5, 1.0, NULL), 1);
	}
	assert_int_equal(hark_ratelimit_size(rl), 10);
	/* nine new keys at t = 10 push out the full buckets, not the abuser */
	for (int i = 0; i < 9; i++) {
		snprintf(key, sizeof(key), "new%d", i);
		assert_int_equal(hark_ratelimit_take(rl, key, 1, 1, 10.0, NULL), 1);
		assert_int_equal(hark_ratelimit_size(rl), 10);
	}
	assert_int_equal(hark_ratelimit_take(rl, "abuser", 0.001, 3, 10.0, &ra), 0);
	assert_true(ra > 900); /* still drained: ~990 s to the next token */

	/* no full bucket left (the new keys are drained, burst 1): the least
	 * recently used one goes, which is new0 */
	assert_int_equal(hark_ratelimit_take(rl, "another", 1, 1, 10.0, NULL), 1);
	assert_int_equal(hark_ratelimit_size(rl), 10);
	assert_int_equal(hark_ratelimit_take(rl, "new1", 1, 1, 10.0, NULL), 0);  /* kept */
	assert_int_equal(hark_ratelimit_take(rl, "new0", 1, 1, 10.0, NULL), 1);  /* forgotten */
	hark_ratelimit_free(rl);
}

static void test_long_and_odd_keys(void **state)
{
	struct hark_ratelimit *rl = hark_ratelimit_new(4);
	char *big = malloc(5000);

	(void)state;
	assert_non_null(rl);
	assert_non_null(big);
	memset(big, 'k', 4999);
	big[4999] = '\0';
	assert_int_equal(hark_ratelimit_take(rl, big, 1, 1, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, big, 1, 1, 0.0, NULL), 0);
	assert_int_equal(hark_ratelimit_take(rl, "", 1, 1, 0.0, NULL), 1);
	assert_int_equal(hark_ratelimit_take(rl, "", 1, 1, 0.0, NULL), 0);
	assert_int_equal(hark_ratelimit_size(rl), 2);
	free(big);
	hark_ratelimit_free(rl);
	hark_ratelimit_free(NULL);
	assert_int_equal(hark_ratelimit_size(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refuse),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_rate_change),
		cmocka_unit_test(test_capacity_flood),
		cmocka_unit_test(test_evicts_full_first),
		cmocka_unit_test(test_long_and_odd_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
