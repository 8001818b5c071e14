/*
 * Deadline date expressions (see dates.h for the exact resolution rules):
 * a small word tokenizer keeps byte offsets, then a hand-written matcher
 * tries the longest pattern at each word and resolves it with plain
 * day-count arithmetic on the proleptic Gregorian calendar.
 */
#include "analyze/dates.h"

#include <stdio.h>
#include <string.h>

#include "hark/hark.h"

#define TOK_MAX 32
#define MAX_TOKS 4096

struct tok {
	size_t start, end;
	char s[TOK_MAX]; /* lowercase, truncated */
};

static const char *const wd_names[7] = {"monday", "tuesday", "wednesday", "thursday",
					"friday", "saturday", "sunday"};
static const char *const mon_names[12] = {"january", "february", "march", "april",
					  "may", "june", "july", "august",
					  "september", "october", "november", "december"};
static const char *const mon_abbr[12] = {"jan", "feb", "mar", "apr", "may", "jun",
					 "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const num_words[13] = {"zero", "one", "two", "three", "four", "five", "six",
					  "seven", "eight", "nine", "ten", "eleven", "twelve"};

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int y, int m)
{
	static const int ml[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && is_leap(y))
		return 29;
	return ml[m - 1];
}

int hark_date_valid(int year, int month, int day)
{
	if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1)
		return 0;
	return day <= month_len(year, month);
}

long hark_date_to_days(const struct hark_date *d)
{
	/* days from 1970-01-01 via era arithmetic (March-based years) */
	long y = d->year - (d->month <= 2);
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long mp = (d->month + 9) % 12;
	long doy = (153 * mp + 2) / 5 + d->day - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct hark_date hark_date_from_days(long days)
{
	struct hark_date r;
	long z = days + 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long dd = doy - (153 * mp + 2) / 5 + 1;
	long mm = mp < 10 ? mp + 3 : mp - 9;
	r.year = (int)(yoe + era * 400 + (mm <= 2));
	r.month = (int)mm;
	r.day = (int)dd;
	return r;
}

int hark_date_weekday(const struct hark_date *d)
{
	long days = hark_date_to_days(d); /* 1970-01-01 was a Thursday (3) */
	long w = (days + 3) % 7;
	if (w < 0)
		w += 7;
	return (int)w;
}

void hark_date_format(const struct hark_date *d, char buf[11])
{
	unsigned y = (unsigned)d->year % 10000u, m = (unsigned)d->month % 100u, dd = (unsigned)d->day % 100u;
	buf[0] = (char)('0' + y / 1000);
	buf[1] = (char)('0' + y / 100 % 10);
	buf[2] = (char)('0' + y / 10 % 10);
	buf[3] = (char)('0' + y % 10);
	buf[4] = '-';
	buf[5] = (char)('0' + m / 10);
	buf[6] = (char)('0' + m % 10);
	buf[7] = '-';
	buf[8] = (char)('0' + dd / 10);
	buf[9] = (char)('0' + dd % 10);
	buf[10] = 0;
}

/* ---------------------------------------------------------- tokenizer --- */

static int is_tokc(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '/' || c == '-' || c == '\'';
}

static size_t tokenize(const char *t, size_t len, struct tok *toks, size_t cap)
{
	size_t n = 0, i = 0;
	while (i < len && n < cap) {
		while (i < len && !is_tokc((unsigned char)t[i]))
			i++;
		if (i >= len)
			break;
		size_t s = i;
		while (i < len && is_tokc((unsigned char)t[i]))
			i++;
		size_t e = i;
		/* trim apostrophes / dashes / slashes at the edges */
		while (e > s && (t[e - 1] == '\'' || t[e - 1] == '-' || t[e - 1] == '/'))
			e--;
		while (s < e && (t[s] == '\'' || t[s] == '-' || t[s] == '/'))
			s++;
		if (s == e)
			continue;
		struct tok *k = &toks[n++];
		k->start = s;
		k->end = e;
		size_t L = e - s < TOK_MAX - 1 ? e - s : TOK_MAX - 1;
		for (size_t j = 0; j < L; j++) {
			char c = t[s + j];
			k->s[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		k->s[L] = 0;
		/* possessive "friday's" -> "friday" */
		if (L > 2 && k->s[L - 2] == '\'' && k->s[L - 1] == 's')
			k->s[L - 2] = 0;
	}
	return n;
}

/* ------------------------------------------------------------ helpers --- */

static int tok_is(const struct tok *toks, size_t n, size_t i, const char *w)
{
	return i < n && strcmp(toks[i].s, w) == 0;
}

static int weekday_of(const char *s)
{
	for (int i = 0; i < 7; i++)
		if (strcmp(s, wd_names[i]) == 0)
			return i;
	return -1;
}

static int month_of(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (strcmp(s, mon_names[i]) == 0)
			return i + 1;
	/* abbreviations except the ambiguous "mar"/"may" handled by full name */
	for (int i = 0; i < 12; i++)
		if (i != 2 && i != 4 && strcmp(s, mon_abbr[i]) == 0)
			return i + 1;
	if (strcmp(s, "sept") == 0)
		return 9;
	return -1;
}

/* parses all-digit s (1..4 digits); -1 if not */
static int parse_uint(const char *s, size_t maxd)
{
	size_t L = strlen(s);
	if (L == 0 || L > maxd)
		return -1;
	int v = 0;
	for (size_t i = 0; i < L; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* day number with optional ordinal suffix: "3", "3rd", "15th", "first".
 * *ordinal = 1 when a suffix/word was present. */
static int parse_day(const char *s, int *ordinal)
{
	static const char *const ordw[] = {"first", "second", "third", "fourth", "fifth",
					   "sixth", "seventh", "eighth", "ninth", "tenth"};
	*ordinal = 0;
	for (int i = 0; i < 10; i++)
		if (strcmp(s, ordw[i]) == 0) {
			*ordinal = 1;
			return i + 1;
		}
	size_t L = strlen(s);
	size_t dl = 0;
	while (dl < L && s[dl] >= '0' && s[dl] <= '9')
		dl++;
	if (dl == 0 || dl > 2)
		return -1;
	int v = 0;
	for (size_t i = 0; i < dl; i++)
		v = v * 10 + (s[i] - '0');
	if (dl < L) {
		const char *suf = s + dl;
		if (strcmp(suf, "st") && strcmp(suf, "nd") && strcmp(suf, "rd") && strcmp(suf, "th"))
			return -1;
		*ordinal = 1;
	}
	if (v < 1 || v > 31)
		return -1;
	return v;
}

/* small count: digits, number words, "a"/"an"; "a couple of" consumes 3. */
static int parse_count(const struct tok *toks, size_t n, size_t i, size_t *used)
{
	*used = 1;
	if (i >= n)
		return -1;
	const char *s = toks[i].s;
	if (strcmp(s, "a") == 0 || strcmp(s, "an") == 0) {
		if (tok_is(toks, n, i + 1, "couple")) {
			*used = tok_is(toks, n, i + 2, "of") ? 3 : 2;
			return 2;
		}
		return 1;
	}
	for (int k = 1; k <= 12; k++)
		if (strcmp(s, num_words[k]) == 0)
			return k;
	int v = parse_uint(s, 3);
	if (v >= 1 && v <= 365)
		return v;
	return -1;
}

static int parse_year(const char *s)
{
	int y = parse_uint(s, 4);
	if (y >= 1900 && y <= 2199 && strlen(s) == 4)
		return y;
	return -1;
}

static struct hark_date add_days(struct hark_date d, long k)
{
	return hark_date_from_days(hark_date_to_days(&d) + k);
}

static struct hark_date add_months(struct hark_date d, int k)
{
	int m0 = d.month - 1 + k;
	d.year += m0 / 12;
	d.month = m0 % 12 + 1;
	int ml = month_len(d.year, d.month);
	if (d.day > ml)
		d.day = ml;
	return d;
}

static struct hark_date end_of_month(struct hark_date d)
{
	d.day = month_len(d.year, d.month);
	return d;
}

static struct hark_date end_of_quarter(int year, int q)
{
	struct hark_date r = {year, q * 3, 1};
	return end_of_month(r);
}

/* Friday of the week containing d (Sat/Sun -> the Friday after). */
static struct hark_date friday_of_week(struct hark_date d)
{
	int w = hark_date_weekday(&d);
	if (w <= 4)
		return add_days(d, 4 - w);
	return add_days(d, 4 + 7 - w);
}

/* ------------------------------------------------------------ matcher --- */

struct mres {
	size_t ntok;        /* tokens consumed (> 0 on match) */
	int needs_meeting;  /* relative: needs M */
	int have_date;      /* date filled */
	struct hark_date date;
	char norm[48];
	int precision;
};

static void set_norm(struct mres *r, const char *s)
{
	snprintf(r->norm, sizeof r->norm, "%s", s);
}

/* Month + day (+ year). Fills r; d_ord tells whether the day had a suffix. */
static void finish_md(struct mres *r, const struct hark_date *M, int month, int day, int year)
{
	r->precision = HARK_DATE_DAY;
	if (year > 0) {
		snprintf(r->norm, sizeof r->norm, "%04d-%02d-%02d", year, month, day);
		if (hark_date_valid(year, month, day)) {
			r->have_date = 1;
			r->date = (struct hark_date){year, month, day};
		} else {
			r->ntok = 0;
		}
		return;
	}
	if (day > (month == 2 ? 29 : month_len(2001, month))) {
		r->ntok = 0;
		return;
	}
	snprintf(r->norm, sizeof r->norm, "%02d-%02d", month, day);
	r->needs_meeting = 1;
	if (M) {
		int y = M->year;
		while (!hark_date_valid(y, month, day) && y < M->year + 8)
			y++;
		struct hark_date c = {y, month, day};
		if (hark_date_to_days(&c) < hark_date_to_days(M)) {
			y++;
			while (!hark_date_valid(y, month, day) && y < M->year + 9)
				y++;
			c = (struct hark_date){y, month, day};
		}
		r->have_date = 1;
		r->date = c;
	}
}

static int match_at(const struct tok *tk, size_t n, size_t i, const struct hark_date *M,
		    int after_prep, struct mres *r)
{
	memset(r, 0, sizeof *r);
	const char *s = tk[i].s;
	int v;

	/* ISO date */
	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		char b[11];
		memcpy(b, s, 11);
		b[4] = b[7] = 0;
		int y = parse_uint(b, 4), m = parse_uint(b + 5, 2), d = parse_uint(b + 8, 2);
		if (y > 0 && hark_date_valid(y, m, d)) {
			r->ntok = 1;
			finish_md(r, M, m, d, y);
			return r->ntok > 0;
		}
		return 0;
	}
	/* m/d or m/d/yy(yy) */
	if (strchr(s, '/')) {
		int parts[3] = {-1, -1, -1}, np = 0;
		char b[TOK_MAX];
		memcpy(b, s, TOK_MAX);
		char *p = b;
		while (np < 3) {
			char *sl = strchr(p, '/');
			if (sl)
				*sl = 0;
			parts[np++] = parse_uint(p, 4);
			if (!sl)
				break;
			p = sl + 1;
			if (np == 3)
				return 0; /* too many parts */
		}
		if (np < 2 || parts[0] < 1 || parts[0] > 12 || parts[1] < 1 || parts[1] > 31)
			return 0;
		if (strlen(b) > 2)
			return 0; /* month must be 1-2 digits */
		if (tok_is(tk, n, i + 1, "of"))
			return 0; /* fraction: "3/4 of" */
		int y = 0;
		if (np == 3) {
			if (parts[2] < 0)
				return 0;
			y = parts[2] < 100 ? 2000 + parts[2] : parts[2];
			if (y < 1900 || y > 2199)
				return 0;
		}
		r->ntok = 1;
		finish_md(r, M, parts[0], parts[1], y);
		return r->ntok > 0;
	}

	if (!strcmp(s, "today") || !strcmp(s, "tonight") || !strcmp(s, "eod") || !strcmp(s, "cob")) {
		r->ntok = 1;
		r->needs_meeting = 1;
		set_norm(r, !strcmp(s, "tonight") ? "tonight" : !strcmp(s, "today") ? "today" : "end of day");
		if (M) {
			r->have_date = 1;
			r->date = *M;
		}
		return 1;
	}
	if (!strcmp(s, "tomorrow")) {
		r->ntok = 1;
		r->needs_meeting = 1;
		set_norm(r, "tomorrow");
		if (M) {
			r->have_date = 1;
			r->date = add_days(*M, 1);
		}
		return 1;
	}
	if (!strcmp(s, "eow") || !strcmp(s, "eom") || !strcmp(s, "eoq")) {
		r->ntok = 1;
		r->needs_meeting = 1;
		if (s[2] == 'w') {
			set_norm(r, "end of week");
			r->precision = HARK_DATE_WEEK;
			if (M)
				r->date = friday_of_week(*M);
		} else if (s[2] == 'm') {
			set_norm(r, "end of month");
			r->precision = HARK_DATE_MONTH;
			if (M)
				r->date = end_of_month(*M);
		} else {
			set_norm(r, "end of quarter");
			r->precision = HARK_DATE_QUARTER;
			if (M)
				r->date = end_of_quarter(M->year, (M->month - 1) / 3 + 1);
		}
		r->have_date = M != NULL;
		return 1;
	}
	/* end of (the) day/week/month/quarter/year, end of next week/month */
	if (!strcmp(s, "end") && tok_is(tk, n, i + 1, "of")) {
		size_t j = i + 2;
		int next = 0, today = 0;
		if (tok_is(tk, n, j, "the") || tok_is(tk, n, j, "this"))
			j++;
		else if (tok_is(tk, n, j, "next")) {
			next = 1;
			j++;
		}
		if (j >= n)
			return 0;
		const char *u = tk[j].s;
		r->ntok = j + 1 - i;
		r->needs_meeting = 1;
		struct hark_date d = M ? *M : (struct hark_date){0, 0, 0};
		if (!strcmp(u, "day") || !strcmp(u, "today")) {
			if (next)
				return 0;
			today = 1;
			set_norm(r, "end of day");
		} else if (!strcmp(u, "week")) {
			r->precision = HARK_DATE_WEEK;
			set_norm(r, next ? "end of next week" : "end of week");
			if (M)
				d = friday_of_week(next ? add_days(*M, 7) : *M);
		} else if (!strcmp(u, "month")) {
			r->precision = HARK_DATE_MONTH;
			set_norm(r, next ? "end of next month" : "end of month");
			if (M) {
				d = *M;
				d.day = 1;
				d = end_of_month(next ? add_months(d, 1) : d);
			}
		} else if (!strcmp(u, "quarter")) {
			r->precision = HARK_DATE_QUARTER;
			set_norm(r, next ? "end of next quarter" : "end of quarter");
			if (M) {
				int q = (M->month - 1) / 3 + 1 + next, y = M->year;
				if (q > 4) {
					q = 1;
					y++;
				}
				d = end_of_quarter(y, q);
			}
		} else if (!strcmp(u, "year")) {
			r->precision = HARK_DATE_YEAR;
			set_norm(r, next ? "end of next year" : "end of year");
			if (M)
				d = (struct hark_date){M->year + next, 12, 31};
		} else {
			r->ntok = 0;
			return 0;
		}
		(void)today;
		if (M) {
			r->have_date = 1;
			r->date = d;
		}
		return 1;
	}
	/* this/next + weekday / week / month / quarter */
	if ((!strcmp(s, "this") || !strcmp(s, "next") || !strcmp(s, "coming")) && i + 1 < n) {
		int next = !strcmp(s, "next");
		size_t j = i + 1;
		if (!strcmp(s, "this") && tok_is(tk, n, j, "coming"))
			j++;
		const char *u = tk[j].s;
		int w = weekday_of(u);
		r->needs_meeting = 1;
		if (w >= 0) {
			r->ntok = j + 1 - i;
			snprintf(r->norm, sizeof r->norm, "%s%s", next ? "next " : "", wd_names[w]);
			if (M) {
				int mw = hark_date_weekday(M);
				if (next) /* that weekday in the following Mon..Sun week */
					r->date = add_days(*M, 7 - mw + w);
				else
					r->date = add_days(*M, ((w - mw + 6) % 7) + 1);
				r->have_date = 1;
			}
			return 1;
		}
		if (!strcmp(s, "coming"))
			return 0;
		if (!strcmp(u, "week")) {
			r->ntok = 2;
			r->precision = HARK_DATE_WEEK;
			set_norm(r, next ? "next week" : "this week");
			if (M) {
				r->have_date = 1;
				r->date = friday_of_week(next ? add_days(*M, 7) : *M);
			}
			return 1;
		}
		if (!strcmp(u, "month")) {
			r->ntok = 2;
			r->precision = HARK_DATE_MONTH;
			set_norm(r, next ? "next month" : "this month");
			if (M) {
				struct hark_date d = *M;
				d.day = 1;
				r->have_date = 1;
				r->date = end_of_month(next ? add_months(d, 1) : d);
			}
			return 1;
		}
		if (!strcmp(u, "quarter")) {
			r->ntok = 2;
			r->precision = HARK_DATE_QUARTER;
			set_norm(r, next ? "next quarter" : "this quarter");
			if (M) {
				int q = (M->month - 1) / 3 + 1 + next, y = M->year;
				if (q > 4) {
					q = 1;
					y++;
				}
				r->have_date = 1;
				r->date = end_of_quarter(y, q);
			}
			return 1;
		}
		return 0;
	}
	/* bare weekday */
	if ((v = weekday_of(s)) >= 0) {
		r->ntok = 1;
		r->needs_meeting = 1;
		set_norm(r, wd_names[v]);
		if (M) {
			int mw = hark_date_weekday(M);
			r->have_date = 1;
			r->date = add_days(*M, ((v - mw + 6) % 7) + 1);
		}
		return 1;
	}
	/* in N days/weeks/months */
	if (!strcmp(s, "in") || !strcmp(s, "within")) {
		size_t used;
		int cnt = parse_count(tk, n, i + 1, &used);
		size_t j = i + 1 + used;
		if (cnt < 1 || j >= n)
			return 0;
		const char *u = tk[j].s;
		long days = -1;
		int months = 0;
		if (!strcmp(u, "day") || !strcmp(u, "days"))
			days = cnt;
		else if (!strcmp(u, "week") || !strcmp(u, "weeks"))
			days = 7L * cnt;
		else if (!strcmp(u, "month") || !strcmp(u, "months"))
			months = cnt;
		else
			return 0;
		if (cnt > 1 && u[strlen(u) - 1] != 's')
			return 0;
		r->ntok = j + 1 - i;
		r->needs_meeting = 1;
		if (months) {
			r->precision = HARK_DATE_DAY;
			snprintf(r->norm, sizeof r->norm, "+%d months", months);
		} else {
			snprintf(r->norm, sizeof r->norm, "+%ld days", days);
		}
		if (M) {
			r->have_date = 1;
			r->date = months ? add_months(*M, months) : add_days(*M, days);
		}
		return 1;
	}
	/* Qn [YYYY] */
	if (s[0] == 'q' && s[1] >= '1' && s[1] <= '4' && s[2] == 0) {
		int q = s[1] - '0';
		int y = (i + 1 < n) ? parse_year(tk[i + 1].s) : -1;
		r->ntok = y > 0 ? 2 : 1;
		r->precision = HARK_DATE_QUARTER;
		if (y > 0) {
			snprintf(r->norm, sizeof r->norm, "Q%d %d", q, y);
			r->have_date = 1;
			r->date = end_of_quarter(y, q);
			return 1;
		}
		snprintf(r->norm, sizeof r->norm, "Q%d", q);
		r->needs_meeting = 1;
		if (M) {
			int yy = M->year;
			if (q < (M->month - 1) / 3 + 1)
				yy++;
			r->have_date = 1;
			r->date = end_of_quarter(yy, q);
		}
		return 1;
	}
	/* month name + day [, year] */
	int mo = month_of(s);
	if (mo > 0 && i + 1 < n) {
		int ord;
		int d = parse_day(tk[i + 1].s, &ord);
		if (d < 0)
			return 0;
		int y = (i + 2 < n) ? parse_year(tk[i + 2].s) : -1;
		if (mo == 5 && !ord && y < 0 && !after_prep)
			return 0; /* "may 2 people" */
		r->ntok = y > 0 ? 3 : 2;
		finish_md(r, M, mo, d, y > 0 ? y : 0);
		return r->ntok > 0;
	}
	/* "the 15th" [of March] / "3rd of March" / "3 March" */
	{
		size_t j = i;
		int had_the = 0;
		if (!strcmp(s, "the")) {
			j++;
			had_the = 1;
		}
		if (j < n) {
			int ord;
			int d = parse_day(tk[j].s, &ord);
			if (d > 0) {
				size_t k = j + 1;
				if (tok_is(tk, n, k, "of"))
					k++;
				int m2 = k < n ? month_of(tk[k].s) : -1;
				if (m2 < 0 && k < n && !strcmp(tk[k].s, "may") && (ord || k > j + 1))
					m2 = 5;
				if (m2 < 0 && k < n && !strcmp(tk[k].s, "march") && (ord || k > j + 1))
					m2 = 3;
				if (m2 > 0 && (ord || k > j + 1 || had_the || tk[k].s[0])) {
					if (!ord && k == j + 1 && !had_the && !after_prep)
						; /* "3 march" without ordinal needs a preposition */
					else {
						int y = (k + 1 < n) ? parse_year(tk[k + 1].s) : -1;
						r->ntok = k + 1 - i + (y > 0);
						finish_md(r, M, m2, d, y > 0 ? y : 0);
						return r->ntok > 0;
					}
				}
				if (had_the && ord && tk[j].s[0] >= '0' && tk[j].s[0] <= '9') {
					r->ntok = j + 1 - i;
					r->needs_meeting = 1;
					snprintf(r->norm, sizeof r->norm, "day %d", d);
					if (M) {
						struct hark_date c = *M;
						int guard = 0;
						for (;;) {
							if (c.day <= d && hark_date_valid(c.year, c.month, d)) {
								c.day = d;
								break;
							}
							c.day = 1;
							c = add_months(c, 1);
							if (++guard > 24)
								return 0;
						}
						r->have_date = 1;
						r->date = c;
					}
					return 1;
				}
			}
		}
	}
	return 0;
}

static int is_prep(const char *s, int *deadline)
{
	if (!strcmp(s, "by") || !strcmp(s, "until") || !strcmp(s, "till") || !strcmp(s, "before") ||
	    !strcmp(s, "due")) {
		*deadline = 1;
		return 1;
	}
	if (!strcmp(s, "on")) {
		*deadline = 0;
		return 1;
	}
	return 0;
}

int hark_dates_find(const char *text, size_t len, const struct hark_date *meeting,
		    struct hark_date_match *out, size_t cap, size_t *n_out)
{
	if (!n_out || (!text && len > 0) || (!out && cap > 0))
		return HARK_ERR_INVALID_ARG;
	*n_out = 0;
	const struct hark_date *M = NULL;
	if (meeting && meeting->year != 0) {
		if (!hark_date_valid(meeting->year, meeting->month, meeting->day))
			return HARK_ERR_INVALID_ARG;
		M = meeting;
	}
	struct tok toks[256];
	size_t pos = 0, nfound = 0;
	/* process in windows of up to 256 tokens, re-tokenizing from the last
	 * consumed offset so long texts are covered without a large stack */
	while (pos < len) {
		size_t n = tokenize(text + pos, len - pos, toks, 256);
		if (n == 0)
			break;
		size_t last_consumed_end = 0;
		size_t i = 0;
		size_t limit = n == 256 ? n - 8 : n; /* keep context for patterns */
		while (i < limit) {
			int deadline = 0;
			size_t si = i;
			int prep = is_prep(toks[i].s, &deadline);
			if (prep)
				si = i + 1;
			/* "(by) the end of ..." */
			if (si + 1 < n && !strcmp(toks[si].s, "the") && !strcmp(toks[si + 1].s, "end"))
				si++;
			/* "last Friday", "past week", "previous month": past, no deadline */
			if (si > 0 && si < n &&
			    (!strcmp(toks[si - 1].s, "last") || !strcmp(toks[si - 1].s, "past") ||
			     !strcmp(toks[si - 1].s, "previous"))) {
				i++;
				continue;
			}
			struct mres r;
			if (si < n && match_at(toks, n, si, M, prep, &r) && r.ntok > 0) {
				if (nfound < cap) {
					struct hark_date_match *m = &out[nfound];
					memset(m, 0, sizeof *m);
					m->start = pos + toks[i].start;
					m->end = pos + toks[si + r.ntok - 1].end;
					m->precision = r.precision;
					m->deadline = deadline;
					snprintf(m->norm, sizeof m->norm, "%s", r.norm);
					if (r.have_date && hark_date_valid(r.date.year, r.date.month, r.date.day)) {
						m->resolved = 1;
						m->date = r.date;
						hark_date_format(&r.date, m->iso);
					}
					nfound++;
				} else {
					*n_out = nfound;
					return 0;
				}
				last_consumed_end = toks[si + r.ntok - 1].end;
				i = si + r.ntok;
				continue;
			}
			i++;
		}
		if (n < 256)
			break;
		size_t adv = toks[limit].start;
		if (last_consumed_end > adv)
			adv = last_consumed_end;
		pos += adv;
	}
	*n_out = nfound;
	return 0;
}
