/*
 * Unit tests for the LLM circuit breaker (src/llm/breaker): closed admits
 * and opens only at the threshold of consecutive failures (a success in
 * between resets the count), open refuses until open_s has passed and
 * reports when it will admit again, the first caller after that becomes
 * the only half-open probe, the probe's success closes and its failure
 * re-opens for a fresh open period, a neutral outcome frees the probe slot
 * without a verdict, would_allow never changes state, stragglers finishing
 * while open change nothing, and every state change is counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llm/breaker.h"

static void test_closed_counts_consecutive_failures(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	hark_llm_breaker_init(&b, 3, 10.0);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
	assert_string_equal(hark_llm_breaker_state_name(b.state), "closed");
	for (int i = 0; i < 100; i++)
		assert_int_equal(hark_llm_breaker_allow(&b, i), 1);
	/* two failures, then a success: the count starts over */
	hark_llm_breaker_failure(&b, 1);
	hark_llm_breaker_failure(&b, 2);
	assert_int_equal(b.failures, 2);
	hark_llm_breaker_success(&b, 3);
	assert_int_equal(b.failures, 0);
	hark_llm_breaker_failure(&b, 4);
	hark_llm_breaker_failure(&b, 5);
	/* a neutral outcome in closed state neither counts nor resets */
	hark_llm_breaker_neutral(&b);
	assert_int_equal(b.failures, 2);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(b.transitions, 0);
	hark_llm_breaker_failure(&b, 6);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_true(b.opened_at == 6);
	assert_int_equal(b.transitions, 1);
	assert_string_equal(hark_llm_breaker_state_name(b.state), "open");
}

static void test_open_refuses_until_period_passed(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	hark_llm_breaker_init(&b, 1, 10.0);
	assert_true(hark_llm_breaker_next_at(&b, 5) == 5);
	hark_llm_breaker_failure(&b, 100);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_true(hark_llm_breaker_next_at(&b, 101) == 110);
	assert_int_equal(hark_llm_breaker_would_allow(&b, 100), 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 100), 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 109.999), 0);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	/* would_allow looks but does not touch */
	assert_int_equal(hark_llm_breaker_would_allow(&b, 110), 1);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_int_equal(b.probe_inflight, 0);
	assert_int_equal(b.transitions, 1);
	/* stragglers admitted before it opened change nothing */
	hark_llm_breaker_failure(&b, 105);
	assert_true(b.opened_at == 100);
	hark_llm_breaker_success(&b, 106);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	hark_llm_breaker_neutral(&b);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_int_equal(hark_llm_breaker_allow(&b, 109.5), 0);
}

static void test_half_open_single_probe_then_close(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	hark_llm_breaker_init(&b, 2, 5.0);
	hark_llm_breaker_failure(&b, 0);
	hark_llm_breaker_failure(&b, 1);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	/* first caller after the period: the probe */
	assert_int_equal(hark_llm_breaker_allow(&b, 6), 1);
	assert_int_equal(b.state, HARK_LLM_BREAKER_HALF_OPEN);
	assert_string_equal(hark_llm_breaker_state_name(b.state), "half_open");
	assert_int_equal(b.probe_inflight, 1);
	assert_int_equal(b.transitions, 2);
	/* nobody else while the probe runs, however late */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(hark_llm_breaker_would_allow(&b, 7 + i), 0);
		assert_int_equal(hark_llm_breaker_allow(&b, 7 + i), 0);
	}
	assert_true(hark_llm_breaker_next_at(&b, 8) == 8);
	hark_llm_breaker_success(&b, 20);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(b.probe_inflight, 0);
	assert_int_equal(b.failures, 0);
	assert_int_equal(b.transitions, 3);
	assert_int_equal(hark_llm_breaker_allow(&b, 20), 1);
	assert_int_equal(hark_llm_breaker_allow(&b, 20), 1);
	/* closed again with a fresh count: one failure does not open it */
	hark_llm_breaker_failure(&b, 21);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
}

static void test_half_open_failure_reopens(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	hark_llm_breaker_init(&b, 1, 5.0);
	hark_llm_breaker_failure(&b, 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 5), 1); /* probe at 5 */
	hark_llm_breaker_failure(&b, 7);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_int_equal(b.probe_inflight, 0);
	assert_true(b.opened_at == 7);
	assert_int_equal(b.transitions, 3);
	/* a fresh open period from the probe's failure, not the first opening */
	assert_true(hark_llm_breaker_next_at(&b, 8) == 12);
	assert_int_equal(hark_llm_breaker_allow(&b, 10), 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 11.9), 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 12), 1);
	assert_int_equal(b.state, HARK_LLM_BREAKER_HALF_OPEN);
	hark_llm_breaker_success(&b, 13);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(b.transitions, 5);
}

static void test_neutral_frees_probe_slot(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	hark_llm_breaker_init(&b, 1, 1.0);
	hark_llm_breaker_failure(&b, 0);
	assert_int_equal(hark_llm_breaker_allow(&b, 1), 1);
	assert_int_equal(hark_llm_breaker_allow(&b, 1), 0);
	/* the probe got a 429: no verdict, still half-open, slot free */
	hark_llm_breaker_neutral(&b);
	assert_int_equal(b.state, HARK_LLM_BREAKER_HALF_OPEN);
	assert_int_equal(b.probe_inflight, 0);
	assert_int_equal(hark_llm_breaker_would_allow(&b, 1.5), 1);
	assert_int_equal(hark_llm_breaker_allow(&b, 1.5), 1);
	assert_int_equal(hark_llm_breaker_allow(&b, 1.5), 0);
	hark_llm_breaker_failure(&b, 2);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_int_equal(b.transitions, 3);
}

static void test_init_clamps(void **state)
{
	struct hark_llm_breaker b;

	(void)state;
	memset(&b, 0x5a, sizeof(b));
	hark_llm_breaker_init(&b, 0, 3.0);
	assert_int_equal(b.threshold, 1);
	assert_int_equal(b.state, HARK_LLM_BREAKER_CLOSED);
	assert_int_equal(b.probe_inflight, 0);
	assert_int_equal(b.transitions, 0);
	hark_llm_breaker_failure(&b, 0);
	assert_int_equal(b.state, HARK_LLM_BREAKER_OPEN);
	assert_string_equal(hark_llm_breaker_state_name(42), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closed_counts_consecutive_failures),
		cmocka_unit_test(test_open_refuses_until_period_passed),
		cmocka_unit_test(test_half_open_single_probe_then_close),
		cmocka_unit_test(test_half_open_failure_reopens),
		cmocka_unit_test(test_neutral_frees_probe_slot),
		cmocka_unit_test(test_init_clamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
