/*
 * The error enum's names: every value has a distinct code and description,
 * out-of-range values are handled, and CLI exit codes are distinct per kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "hark/hark.h"

static void test_names_distinct(void **state)
{
	(void)state;
	for (int a = 0; a < HARK_ERR__COUNT; a++) {
		assert_non_null(hark_strerror(a));
		assert_non_null(hark_err_code(a));
		assert_string_not_equal(hark_err_code(a), "unknown_error");
		for (int b = a + 1; b < HARK_ERR__COUNT; b++) {
			assert_string_not_equal(hark_err_code(a), hark_err_code(b));
			assert_string_not_equal(hark_strerror(a), hark_strerror(b));
		}
	}
	assert_string_equal(hark_err_code(-1), "unknown_error");
	assert_string_equal(hark_err_code(HARK_ERR__COUNT), "unknown_error");
	assert_string_equal(hark_strerror(9999), "unknown error");
	assert_string_equal(hark_err_code(HARK_ERR_NO_AUDIO), "no_audio_stream");
}

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(hark_cli_exit_code(HARK_OK), 0);
	assert_int_equal(hark_cli_exit_code(HARK_ERR_INVALID_ARG), HARK_EXIT_USAGE);
	for (int a = 1; a < HARK_ERR__COUNT; a++) {
		int ea = hark_cli_exit_code(a);
		assert_true(ea > 1 && ea < 126);
		for (int b = a + 1; b < HARK_ERR__COUNT; b++)
			assert_int_not_equal(ea, hark_cli_exit_code(b));
	}
	assert_string_equal(hark_version(), HARK_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_distinct),
		cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
