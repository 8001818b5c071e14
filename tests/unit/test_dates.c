/*
 * Deadline date expressions (src/analyze/dates.c): calendar arithmetic
 * checked against libc's timegm/gmtime, every documented expression form
 * resolved from several meeting dates (weekday rules, month/year rollover,
 * leap years), unresolved output without a meeting date, byte offsets,
 * false-positive guards ("may 2 people", "3/4 of", "the second option"),
 * the output cap and argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "analyze/dates.h"
#include "hark/hark.h"

static const struct hark_date MON = {2024, 5, 6}; /* a Monday */

/* finds in s with meeting M; asserts exactly one match covering phrase
 * (a substring of s) and returns it */
static struct hark_date_match one(const char *s, const struct hark_date *M, const char *phrase)
{
	struct hark_date_match m[8];
	size_t n = 99;
	assert_int_equal(hark_dates_find(s, strlen(s), M, m, 8, &n), 0);
	if (n != 1)
		fail_msg("'%s': %zu matches", s, n);
	const char *at = strstr(s, phrase);
	assert_non_null(at);
	if (m[0].start != (size_t)(at - s) || m[0].end != (size_t)(at - s) + strlen(phrase))
		fail_msg("'%s': span [%zu,%zu), want '%s'", s, m[0].start, m[0].end, phrase);
	assert_int_equal(m[0].start, (size_t)(at - s));
	assert_int_equal(m[0].end, (size_t)(at - s) + strlen(phrase));
	return m[0];
}

static void expect_iso(const char *s, const struct hark_date *M, const char *phrase,
		       const char *iso)
{
	struct hark_date_match m = one(s, M, phrase);
	if (!m.resolved || strcmp(m.iso, iso) != 0)
		fail_msg("'%s': got '%s' (resolved %d, norm '%s'), want %s", s, m.iso, m.resolved,
			 m.norm, iso);
}

static void expect_none(const char *s)
{
	struct hark_date_match m[8];
	size_t n = 99;
	assert_int_equal(hark_dates_find(s, strlen(s), &MON, m, 8, &n), 0);
	if (n != 0)
		fail_msg("'%s': unexpected match '%s'", s, m[0].norm);
}

static void test_calendar_vs_libc(void **state)
{
	(void)state;
	/* every day from 1970 to 2100 against timegm / gmtime */
	struct hark_date d = {1970, 1, 1};
	for (long k = 0; k < 47847; k++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		tm.tm_year = d.year - 1900;
		tm.tm_mon = d.month - 1;
		tm.tm_mday = d.day;
		time_t t = timegm(&tm);
		assert_int_equal(hark_date_to_days(&d), (long)(t / 86400));
		struct tm g;
		gmtime_r(&t, &g);
		assert_int_equal(hark_date_weekday(&d), (g.tm_wday + 6) % 7);
		struct hark_date back = hark_date_from_days(k);
		assert_int_equal(back.year, d.year);
		assert_int_equal(back.month, d.month);
		assert_int_equal(back.day, d.day);
		/* next day by hand */
		d.day++;
		if (!hark_date_valid(d.year, d.month, d.day)) {
			d.day = 1;
			if (++d.month > 12) {
				d.month = 1;
				d.year++;
			}
		}
	}
	assert_true(hark_date_valid(2024, 2, 29));
	assert_false(hark_date_valid(2023, 2, 29));
	assert_false(hark_date_valid(1900, 2, 29));
	assert_true(hark_date_valid(2000, 2, 29));
	assert_false(hark_date_valid(2024, 4, 31));
	assert_false(hark_date_valid(2024, 13, 1));
	char b[11];
	struct hark_date x = {2024, 3, 9};
	hark_date_format(&x, b);
	assert_string_equal(b, "2024-03-09");
}

static void test_relative_days(void **state)
{
	(void)state;
	expect_iso("can you do it today", &MON, "today", "2024-05-06");
	expect_iso("I'll finish it tonight.", &MON, "tonight", "2024-05-06");
	expect_iso("send it by tomorrow please", &MON, "by tomorrow", "2024-05-07");
	expect_iso("by EOD", &MON, "by EOD", "2024-05-06");
	expect_iso("before the end of the day", &MON, "before the end of the day", "2024-05-06");
	struct hark_date eom = {2024, 12, 31};
	expect_iso("tomorrow", &eom, "tomorrow", "2025-01-01");
	expect_iso("in 3 days", &MON, "in 3 days", "2024-05-09");
	expect_iso("in two weeks we ship", &MON, "in two weeks", "2024-05-20");
	expect_iso("in a week", &MON, "in a week", "2024-05-13");
	expect_iso("in a couple of weeks", &MON, "in a couple of weeks", "2024-05-20");
	expect_iso("within 10 days", &MON, "within 10 days", "2024-05-16");
	struct hark_date jan31 = {2024, 1, 31};
	expect_iso("in one month", &jan31, "in one month", "2024-02-29");
	expect_iso("in 2 months", &jan31, "in 2 months", "2024-03-31");
}

static void test_weekdays(void **state)
{
	(void)state;
	/* meeting on Monday 2024-05-06 */
	expect_iso("by Friday", &MON, "by Friday", "2024-05-10");
	expect_iso("this Friday", &MON, "this Friday", "2024-05-10");
	expect_iso("on Friday", &MON, "on Friday", "2024-05-10");
	expect_iso("next Friday", &MON, "next Friday", "2024-05-17");
	expect_iso("by Monday", &MON, "by Monday", "2024-05-13"); /* strictly after */
	expect_iso("next Monday", &MON, "next Monday", "2024-05-13");
	expect_iso("on Tuesday", &MON, "on Tuesday", "2024-05-07");
	expect_iso("next Tuesday", &MON, "next Tuesday", "2024-05-14");
	/* property: over a month of meeting days, bare weekday is 1..7 days
	 * ahead with the right weekday; "next X" lies in the following Mon..Sun week */
	for (int day = 1; day <= 31; day++) {
		struct hark_date M = {2024, 7, day};
		long md = hark_date_to_days(&M);
		int mw = hark_date_weekday(&M);
		static const char *const names[7] = {"Monday", "Tuesday", "Wednesday", "Thursday",
						     "Friday", "Saturday", "Sunday"};
		for (int w = 0; w < 7; w++) {
			char s[64];
			snprintf(s, sizeof s, "due %s", names[w]);
			struct hark_date_match m[2];
			size_t n = 0;
			assert_int_equal(hark_dates_find(s, strlen(s), &M, m, 2, &n), 0);
			assert_int_equal(n, 1);
			assert_true(m[0].deadline);
			long dd = hark_date_to_days(&m[0].date) - md;
			assert_true(dd >= 1 && dd <= 7);
			assert_int_equal(hark_date_weekday(&m[0].date), w);
			snprintf(s, sizeof s, "next %s", names[w]);
			assert_int_equal(hark_dates_find(s, strlen(s), &M, m, 2, &n), 0);
			assert_int_equal(n, 1);
			long monday_next = md - mw + 7;
			assert_int_equal(hark_date_to_days(&m[0].date), monday_next + w);
		}
	}
}

static void test_periods(void **state)
{
	(void)state;
	expect_iso("by the end of the week", &MON, "by the end of the week", "2024-05-10");
	expect_iso("EOW", &MON, "EOW", "2024-05-10");
	struct hark_date sat = {2024, 5, 11};
	expect_iso("end of week", &sat, "end of week", "2024-05-17");
	expect_iso("sometime next week", &MON, "next week", "2024-05-17");
	expect_iso("end of next week", &MON, "end of next week", "2024-05-17");
	expect_iso("by end of month", &MON, "by end of month", "2024-05-31");
	expect_iso("by the end of the month", &MON, "by the end of the month", "2024-05-31");
	struct hark_date feb = {2024, 2, 10};
	expect_iso("end of the month", &feb, "end of the month", "2024-02-29");
	expect_iso("next month", &MON, "next month", "2024-06-30");
	expect_iso("in Q3", &MON, "Q3", "2024-09-30");
	expect_iso("Q1", &MON, "Q1", "2025-03-31"); /* already over */
	expect_iso("Q2", &MON, "Q2", "2024-06-30"); /* current quarter */
	expect_iso("Q4 2026", &MON, "Q4 2026", "2026-12-31");
	expect_iso("by end of quarter", &MON, "by end of quarter", "2024-06-30");
	expect_iso("EOQ", &MON, "EOQ", "2024-06-30");
	struct hark_date nov = {2024, 11, 5};
	expect_iso("next quarter", &nov, "next quarter", "2025-03-31");
	expect_iso("end of the year", &MON, "end of the year", "2024-12-31");
}

static void test_calendar_dates(void **state)
{
	(void)state;
	expect_iso("by the 15th", &MON, "by the 15th", "2024-05-15");
	expect_iso("by the 3rd", &MON, "by the 3rd", "2024-06-03"); /* passed this month */
	expect_iso("the 6th", &MON, "the 6th", "2024-05-06");       /* on or after */
	struct hark_date jan = {2023, 1, 31};
	expect_iso("by the 30th", &jan, "by the 30th", "2023-03-30"); /* no Feb 30 */
	expect_iso("on March 3rd", &MON, "on March 3rd", "2025-03-03");
	expect_iso("March 3", &MON, "March 3", "2025-03-03");
	expect_iso("June 3", &MON, "June 3", "2024-06-03");
	expect_iso("on May 20th", &MON, "on May 20th", "2024-05-20");
	expect_iso("the 3rd of June", &MON, "the 3rd of June", "2024-06-03");
	expect_iso("by 3 June", &MON, "by 3 June", "2024-06-03");
	expect_iso("June 30, 2025", &MON, "June 30, 2025", "2025-06-30");
	expect_iso("Sept 9", &MON, "Sept 9", "2024-09-09");
	expect_iso("3/14", &MON, "3/14", "2025-03-14");
	expect_iso("by 12/1", &MON, "by 12/1", "2024-12-01");
	expect_iso("by 12/1/25", &MON, "by 12/1/25", "2025-12-01");
	expect_iso("on 2024-05-01 we", &MON, "on 2024-05-01", "2024-05-01");
	/* ISO dates need no meeting date */
	expect_iso("2023-02-28", NULL, "2023-02-28", "2023-02-28");
	struct hark_date leap = {2024, 3, 1};
	expect_iso("Feb 29", &leap, "Feb 29", "2028-02-29");
}

static void test_unresolved(void **state)
{
	(void)state;
	const char *s = "I'll send it next Friday, then the deck by end of month and the rest in two weeks.";
	struct hark_date_match m[8];
	size_t n = 0;
	assert_int_equal(hark_dates_find(s, strlen(s), NULL, m, 8, &n), 0);
	assert_int_equal(n, 3);
	const char *want[3] = {"next Friday", "by end of month", "in two weeks"};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(m[i].resolved, 0);
		assert_string_equal(m[i].iso, "");
		assert_true(m[i].norm[0] != 0);
		assert_int_equal(m[i].end - m[i].start, strlen(want[i]));
		assert_memory_equal(s + m[i].start, want[i], strlen(want[i]));
	}
	assert_string_equal(m[0].norm, "next friday");
	assert_string_equal(m[1].norm, "end of month");
	assert_string_equal(m[2].norm, "+14 days");
	assert_true(m[1].deadline);
	assert_false(m[0].deadline);
	/* year 0 = unknown too */
	struct hark_date unk = {0, 0, 0};
	assert_int_equal(hark_dates_find(s, strlen(s), &unk, m, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].resolved, 0);
}

static void test_false_positives(void **state)
{
	(void)state;
	expect_none("we may 2 people need");
	expect_none("about 3/4 of the users");
	expect_none("the second option is better");
	expect_none("the first thing to say");
	expect_none("on the 45th floor");
	expect_none("March on, 13/40 said so");
	expect_none("in the meantime let's discuss it");
	expect_none("in 2 parts");
	expect_none("");
	expect_none("we got the budget now");
	expect_none("as we said last Friday");
	expect_none("over the past week");
	expect_none("in the previous month");
}

static void test_cap_and_errors(void **state)
{
	(void)state;
	static char big[16384];
	size_t L = 0;
	for (int i = 0; i < 400 && L + 32 < sizeof big; i++)
		L += (size_t)snprintf(big + L, sizeof big - L, "on Friday word word. ");
	struct hark_date_match m[5];
	size_t n = 0;
	assert_int_equal(hark_dates_find(big, L, &MON, m, 5, &n), 0);
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		assert_true(m[i].start >= m[i - 1].end);
	/* the whole long text is scanned past the tokenizer window */
	static struct hark_date_match all[512];
	assert_int_equal(hark_dates_find(big, L, &MON, all, 512, &n), 0);
	assert_int_equal(n, 400);
	for (size_t i = 0; i < n; i++)
		assert_memory_equal(big + all[i].start, "on Friday", 9);
	assert_int_equal(hark_dates_find(NULL, 3, &MON, m, 5, &n), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_dates_find("x", 1, &MON, m, 5, NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_dates_find("x", 1, &MON, NULL, 5, &n), HARK_ERR_INVALID_ARG);
	struct hark_date bad = {2024, 2, 30};
	assert_int_equal(hark_dates_find("x", 1, &bad, m, 5, &n), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_dates_find("today", 5, &MON, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calendar_vs_libc),
		cmocka_unit_test(test_relative_days),
		cmocka_unit_test(test_weekdays),
		cmocka_unit_test(test_periods),
		cmocka_unit_test(test_calendar_dates),
		cmocka_unit_test(test_unresolved),
		cmocka_unit_test(test_false_positives),
		cmocka_unit_test(test_cap_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
