/*
 * Deadline date expressions in English meeting speech: finds phrases such as
 * "tomorrow", "by next Friday", "end of the month", "in two weeks",
 * "March 3rd", "3/14", "2024-05-01", "Q3" or "EOD" in a text span and
 * resolves each relative to the meeting date when that is known. Matching is
 * ASCII case-insensitive on whole words; no allocation (results go into a
 * caller array with a cap).
 *
 * Resolution rules (meeting date M; weeks run Monday..Sunday):
 *   - "today", "tonight", "EOD", "COB", "end of (the) day" -> M.
 *   - "tomorrow" -> M + 1.
 *   - a bare weekday, "this <weekday>", "on/by/until/before <weekday>" -> the
 *     first such weekday strictly after M (said on a Friday, "Friday" is the
 *     Friday a week later).
 *   - "next <weekday>" -> that weekday in the week after M's week (said on a
 *     Monday, "next Friday" is 11 days later, not 4).
 *   - period expressions resolve to the end of the period: "this week",
 *     "end of (the) week", "EOW" -> Friday of M's week (when M is a Saturday
 *     or Sunday: the Friday after); "next week", "end of next week" -> Friday
 *     of the following week; "end of (the) month", "this month", "EOM" -> last
 *     day of M's month; "next month" -> last day of the next month; "Qn",
 *     "Qn YYYY" -> last day of quarter n (of M's year, or the next year when
 *     that quarter has already ended; YYYY when given); "end of (the)
 *     quarter", "this quarter", "EOQ" -> last day of M's quarter; "next
 *     quarter" -> last day of the next one; "end of (the) year" -> Dec 31.
 *   - "in N days / weeks / months" (N digits, "a", "one".."twelve",
 *     "a couple of") -> M + N days / 7N days / N months (day clamped to the
 *     month's length).
 *   - "the 15th" (ordinal suffix required) -> the next 15th on or after M.
 *   - "March 3rd", "March 3", "3rd of March", "3 March", "on March 3",
 *     "3/14" (US month/day) -> that day in M's year, or the next year when it
 *     would fall before M; an explicit year ("March 3, 2025", "3/14/2025",
 *     "3/14/25") wins. "May <n>" needs an ordinal suffix, a year, or a
 *     preceding "on/by/until/before" (the verb "may"); so does "<n> <Month>"
 *     without "of" ("by 3 June", "3rd June"). "n/m" followed by
 *     "of" is a fraction and ignored.
 *   - "YYYY-MM-DD" -> itself (no meeting date needed).
 *   - an expression right after "last", "past" or "previous" ("last Friday",
 *     "the past week") refers to the past and is not reported.
 * A leading "by", "on", "until", "till", "before" or "due" is part of the
 * match span. Without a meeting date, relative expressions are returned with
 * resolved = 0 and only the normalized phrase.
 */
#ifndef HARK_ANALYZE_DATES_H
#define HARK_ANALYZE_DATES_H

#include <stddef.h>

/* A calendar date; year 0 = unknown. */
struct hark_date {
	int year;   /* e.g. 2024; 0 = unknown */
	int month;  /* 1..12 */
	int day;    /* 1..31 */
};

enum hark_date_precision {
	HARK_DATE_DAY = 0,
	HARK_DATE_WEEK = 1,
	HARK_DATE_MONTH = 2,
	HARK_DATE_QUARTER = 3,
	HARK_DATE_YEAR = 4,
};

/* One date expression found in a text. */
struct hark_date_match {
	size_t start;          /* byte offset of the first byte of the phrase */
	size_t end;            /* byte offset one past the last byte */
	int resolved;          /* 1: date/iso are filled */
	struct hark_date date; /* the resolved date (when resolved) */
	char iso[11];          /* "YYYY-MM-DD" when resolved, else "" */
	char norm[48];         /* normalized phrase, e.g. "next friday",
				* "+14 days", "end of month", "Q3", "03-14",
				* "day 15", "2024-05-01" */
	int precision;         /* enum hark_date_precision */
	int deadline;          /* 1: introduced by by/until/till/before/due */
};

/* 1 when y-m-d is a valid Gregorian date (year 1..9999). */
int hark_date_valid(int year, int month, int day);

/* Days since 1970-01-01 for a valid date (may be negative). */
long hark_date_to_days(const struct hark_date *d);

/* The date for days since 1970-01-01. */
struct hark_date hark_date_from_days(long days);

/* Weekday of a valid date: 0 = Monday .. 6 = Sunday. */
int hark_date_weekday(const struct hark_date *d);

/*
 * Finds date expressions in text[0..len) (need not be NUL-terminated).
 * meeting: the meeting date, or NULL / year 0 when unknown (relative
 * expressions then come back with resolved = 0). Writes up to cap matches
 * into out in text order, non-overlapping, and the count into *n_out; more
 * than cap matches are dropped silently (the first cap are kept).
 * Returns HARK_ERR_INVALID_ARG for NULL text (with len > 0), NULL n_out, an
 * invalid meeting date, or NULL out with cap > 0; else 0.
 */
int hark_dates_find(const char *text, size_t len, const struct hark_date *meeting,
		    struct hark_date_match *out, size_t cap, size_t *n_out);

/* Formats d as "YYYY-MM-DD" into buf (at least 11 bytes). */
void hark_date_format(const struct hark_date *d, char buf[11]);

#endif /* HARK_ANALYZE_DATES_H */
