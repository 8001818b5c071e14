/*
 * Unit tests for the Prometheus registry (src/server/metrics). Every render
 * is run through a strict reader of the text exposition format 0.0.4
 * written here: comment lines, metric and label names, escaped label
 * values (decoded back), numbers, one TYPE per family before its samples,
 * histogram series complete (_bucket with ascending le ending in +Inf,
 * cumulative counts, _count equal to the +Inf bucket, _sum). On top of
 * that: values of counters, gauges and histograms against hand-computed
 * expectations, label merging with le, HELP and label escaping, the series
 * cap and malformed labels counted as dropped, declaration errors, and
 * four threads updating at once summing exactly.
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
#include <pthread.h>

#include "hark/hark.h"
#include "server/metrics.h"

/* ---------------------------------------------------- exposition reader -- */

#define MAX_SAMPLES 4096

struct sample {
	char name[128];
	char labels[512];     /* decoded: k=v pairs joined by '|', le included */
	char le[256];         /* "" if none */
	char rawlabels[1024]; /* as rendered, without the braces */
	double value;
};

struct expo {
	struct sample *s;
	int n;
	char types[64][128];  /* family names with a TYPE line */
	char kinds[64][16];
	int ntypes;
};

static int is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static int parse_number(const char *s, double *v)
{
	char *end;

	if (!strcmp(s, "+Inf")) {
		*v = INFINITY;
		return 0;
	}
	if (!strcmp(s, "-Inf")) {
		*v = -INFINITY;
		return 0;
	}
	if (!strcmp(s, "NaN")) {
		*v = NAN;
		return 0;
	}
	if (!*s || strchr(s, ' '))
		return -1;
	*v = strtod(s, &end);
	return *end ? -1 : 0;
}

static int family_kind(const struct expo *e, const char *fam, char *kind)
{
	for (int i = 0; i < e->ntypes; i++)
		if (!strcmp(e->types[i], fam)) {
			strcpy(kind, e->kinds[i]);
			return 0;
		}
	return -1;
}

/* 1 if a sample called name belongs to family fam. */
static int sample_of(const char *name, const char *fam)
{
	size_t n = strlen(fam);

	if (strncmp(name, fam, n))
		return 0;
	return !name[n] || !strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
	       !strcmp(name + n, "_count");
}

/* Parses one sample line; fails the test on any format error. */
static void parse_sample(struct expo *e, const char *line)
{
	struct sample *s;
	const char *p = line;
	size_t n = 0, ln = 0;

	assert_true(e->n < MAX_SAMPLES);
	s = &e->s[e->n++];
	memset(s, 0, sizeof(*s));
	if (!is_name_start(*p))
		fail_msg("bad metric name in \"%s\"", line);
	while (is_name_char(*p) && n + 1 < sizeof(s->name))
		s->name[n++] = *p++;
	if (*p == '{') {
		const char *open = ++p;

		while (*p != '}') {
			char lname[64];
			size_t k = 0;

			if (!is_name_start(*p) || *p == ':')
				fail_msg("bad label name in \"%s\"", line);
			while (is_name_char(*p) && *p != ':' && k + 1 < sizeof(lname))
				lname[k++] = *p++;
			lname[k] = '\0';
			if (p[0] != '=' || p[1] != '"')
				fail_msg("label without =\" in \"%s\"", line);
			p += 2;
			if (ln)
				s->labels[ln++] = '|';
			ln += (size_t)snprintf(s->labels + ln, sizeof(s->labels) - ln, "%s=", lname);
			{
				char val[256];
				size_t vn = 0;

				while (*p != '"') {
					char c = *p++;

					if (!c || c == '\n')
						fail_msg("unterminated label value in \"%s\"", line);
					if (c == '\\') {
						c = *p++;
						if (c == 'n')
							c = '\n';
						else if (c != '\\' && c != '"')
							fail_msg("bad escape in \"%s\"", line);
					}
					assert_true(vn + 1 < sizeof(val));
					val[vn++] = c;
				}
				val[vn] = '\0';
				p++;
				if (!strcmp(lname, "le"))
					snprintf(s->le, sizeof(s->le), "%s", val);
				ln += (size_t)snprintf(s->labels + ln, sizeof(s->labels) - ln, "%s", val);
			}
			if (*p == ',')
				p++;
			else if (*p != '}')
				fail_msg("bad label separator in \"%s\"", line);
		}
		snprintf(s->rawlabels, sizeof(s->rawlabels), "%.*s", (int)(p - open), open);
		p++;
	}
	if (*p != ' ')
		fail_msg("no space before value in \"%s\"", line);
	p++;
	if (parse_number(p, &s->value))
		fail_msg("bad value in \"%s\"", line);
}

/* Reads a whole exposition and checks its structure. */
static void parse_expo(const char *text, size_t len, struct expo *e)
{
	char *copy = malloc(len + 1), *line, *save = NULL;

	assert_non_null(copy);
	memcpy(copy, text, len);
	copy[len] = '\0';
	assert_int_equal(strlen(copy), len); /* no NUL inside */
	assert_true(len > 0 && text[len - 1] == '\n');
	memset(e, 0, sizeof(*e));
	e->s = calloc(MAX_SAMPLES, sizeof(*e->s));
	assert_non_null(e->s);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "# HELP ", 7)) {
			const char *q = line + 7;

			assert_true(is_name_start(*q));
			while (is_name_char(*q))
				q++;
			assert_true(*q == ' ');
			for (q++; *q; q++) {
				if (*q == '\\') {
					assert_true(q[1] == '\\' || q[1] == 'n');
					q++;
				}
			}
		} else if (!strncmp(line, "# TYPE ", 7)) {
			char name[128], kind[32];

			assert_int_equal(sscanf(line + 7, "%127s %31s", name, kind), 2);
			assert_true(!strcmp(kind, "counter") || !strcmp(kind, "gauge") ||
				    !strcmp(kind, "histogram"));
			for (int i = 0; i < e->ntypes; i++)
				if (!strcmp(e->types[i], name))
					fail_msg("second TYPE line for %s", name);
			/* TYPE must come before the family's samples */
			for (int i = 0; i < e->n; i++)
				assert_false(sample_of(e->s[i].name, name));
			assert_true(e->ntypes < 64);
			strcpy(e->types[e->ntypes], name);
			strcpy(e->kinds[e->ntypes++], kind);
		} else if (line[0] == '#') {
			fail_msg("unexpected comment \"%s\"", line);
		} else {
			parse_sample(e, line);
		}
	}
	free(copy);
	/* every sample belongs to a typed family; histogram structure */
	for (int i = 0; i < e->n; i++) {
		struct sample *s = &e->s[i];
		char kind[16], fam[128];

		if (family_kind(e, s->name, kind) == 0) {
			assert_true(strcmp(kind, "histogram") != 0);
			assert_true(s->le[0] == '\0');
			continue;
		}
		snprintf(fam, sizeof(fam), "%s", s->name);
		char *suf = strrchr(fam, '_');

		assert_non_null(suf);
		*suf = '\0';
		assert_int_equal(family_kind(e, fam, kind), 0);
		assert_string_equal(kind, "histogram");
		if (!strcmp(suf + 1, "bucket")) {
			assert_true(s->le[0] != '\0');
		} else {
			assert_true(!strcmp(suf + 1, "sum") || !strcmp(suf + 1, "count"));
			assert_true(s->le[0] == '\0');
		}
	}
	/* per histogram series: le ascending to +Inf, counts cumulative,
	 * +Inf bucket == _count, _sum present */
	for (int i = 0; i < e->n; i++) {
		struct sample *s = &e->s[i];
		size_t nl = strlen(s->name);

		if (nl < 7 || strcmp(s->name + nl - 7, "_bucket"))
			continue;
		if (i > 0 && !strcmp(e->s[i - 1].name, s->name))
			continue; /* not the first bucket of its series */
		double prev_le = -INFINITY, prev_c = 0;
		int j = i;

		for (; j < e->n && !strcmp(e->s[j].name, s->name); j++) {
			double le;

			assert_int_equal(parse_number(e->s[j].le, &le), 0);
			assert_true(le > prev_le);
			assert_true(e->s[j].value >= prev_c);
			prev_le = le;
			prev_c = e->s[j].value;
			if (isinf(le))
				break;
		}
		assert_true(j < e->n && isinf(prev_le));
		char base[128], want[140];

		snprintf(base, sizeof(base), "%.*s", (int)(nl - 7), s->name);
		snprintf(want, sizeof(want), "%s_sum", base);
		assert_string_equal(e->s[j + 1].name, want);
		snprintf(want, sizeof(want), "%s_count", base);
		assert_string_equal(e->s[j + 2].name, want);
		assert_true(e->s[j + 2].value == prev_c);
	}
}

static void expo_free(struct expo *e)
{
	free(e->s);
}

/* Value of the sample with this name and decoded labels ('|'-joined). */
static double find(const struct expo *e, const char *name, const char *labels)
{
	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->s[i].name, name) && !strcmp(e->s[i].labels, labels))
			return e->s[i].value;
	fail_msg("no sample %s{%s}", name, labels);
	return NAN;
}

static int has(const struct expo *e, const char *name, const char *labels)
{
	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->s[i].name, name) && !strcmp(e->s[i].labels, labels))
			return 1;
	return 0;
}

static void render(struct hark_metrics *m, struct expo *e, char **text)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(hark_metrics_render(m, &out, &len), HARK_OK);
	assert_non_null(out);
	parse_expo(out, len, e);
	if (text)
		*text = out;
	else
		free(out);
}

/* ---------------------------------------------------------------- tests -- */

static void test_counter_gauge(void **state)
{
	struct hark_metrics *m = hark_metrics_new(100);
	struct expo e;
	char *text;
	double v;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "hark_http_requests_total", "HTTP requests.",
					      HARK_METRIC_COUNTER, NULL, 0), HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "hark_queue_depth", "Queued jobs.",
					      HARK_METRIC_GAUGE, NULL, 0), HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "hark_audio_seconds_total", "Audio seconds.",
					      HARK_METRIC_COUNTER, NULL, 0), HARK_OK);
	/* declaring again is a no-op, even with another kind */
	assert_int_equal(hark_metrics_declare(m, "hark_queue_depth", "x", HARK_METRIC_COUNTER,
					      NULL, 0), HARK_OK);

	const char *l200 = "route=\"/v1/jobs\",method=\"POST\",status=\"202\"";
	const char *l429 = "route=\"/v1/jobs\",method=\"POST\",status=\"429\"";

	for (int i = 0; i < 7; i++)
		hark_metrics_add(m, "hark_http_requests_total", l200, 1);
	hark_metrics_add(m, "hark_http_requests_total", l429, 1);
	hark_metrics_add(m, "hark_http_requests_total", l429, -5); /* counters never go down */
	hark_metrics_add(m, "hark_audio_seconds_total", NULL, 12.5);
	hark_metrics_add(m, "hark_audio_seconds_total", "", 0.25);
	hark_metrics_set(m, "hark_queue_depth", "priority=\"normal\"", 4);
	hark_metrics_add(m, "hark_queue_depth", "priority=\"normal\"", -1);
	hark_metrics_set(m, "hark_queue_depth", "priority=\"batch\"", 0.1);
	hark_metrics_add(m, "hark_unknown_total", NULL, 1);       /* ignored */
	hark_metrics_observe(m, "hark_queue_depth", "", 3);          /* wrong kind: ignored */

	render(m, &e, &text);
	assert_int_equal(e.ntypes, 4); /* three families + dropped_total */
	assert_true(find(&e, "hark_http_requests_total",
			 "route=/v1/jobs|method=POST|status=202") == 7);
	assert_true(find(&e, "hark_http_requests_total",
			 "route=/v1/jobs|method=POST|status=429") == 1);
	assert_true(find(&e, "hark_audio_seconds_total", "") == 12.75);
	assert_true(find(&e, "hark_queue_depth", "priority=normal") == 3);
	assert_true(find(&e, "hark_queue_depth", "priority=batch") == 0.1);
	assert_true(find(&e, "hark_metrics_dropped_total", "") == 0);
	assert_false(has(&e, "hark_queue_depth", ""));
	assert_null(strstr(text, "hark_unknown_total"));
	/* exact text of a few lines */
	assert_non_null(strstr(text, "# HELP hark_http_requests_total HTTP requests.\n"
				     "# TYPE hark_http_requests_total counter\n"));
	assert_non_null(strstr(text, "\nhark_queue_depth{priority=\"batch\"} 0.1\n"));
	assert_non_null(strstr(text, "\nhark_audio_seconds_total 12.75\n"));
	assert_non_null(strstr(text, "# TYPE hark_queue_depth gauge\n"));
	free(text);
	expo_free(&e);

	assert_int_equal(hark_metrics_value(m, "hark_queue_depth", "priority=\"normal\"", &v),
			 HARK_OK);
	assert_true(v == 3);
	assert_int_equal(hark_metrics_value(m, "hark_queue_depth", "priority=\"high\"", &v),
			 HARK_ERR_NOT_FOUND);
	hark_metrics_free(m);
}

static void test_histogram(void **state)
{
	static const double b[] = { 0.1, 0.5, 1, 5 };
	static const double obs[] = { 0.05, 0.1, 0.3, 0.7, 2, 10, 10 };
	struct hark_metrics *m = hark_metrics_new(100);
	struct expo e;
	char *text;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "hark_http_request_duration_seconds",
					      "Request latency.", HARK_METRIC_HISTOGRAM, b, 4),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "plain_seconds", "No labels.",
					      HARK_METRIC_HISTOGRAM, b, 4), HARK_OK);
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		hark_metrics_observe(m, "hark_http_request_duration_seconds",
				     "route=\"/v1/jobs\"", obs[i]);
		hark_metrics_observe(m, "plain_seconds", NULL, obs[i]);
	}
	hark_metrics_observe(m, "hark_http_request_duration_seconds", "route=\"/healthz\"",
			     0.001);
	hark_metrics_add(m, "plain_seconds", NULL, 1); /* wrong kind: ignored */
	render(m, &e, &text);
	/* le is inclusive: 0.1 falls in the 0.1 bucket */
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/v1/jobs|le=0.1") == 2);
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/v1/jobs|le=0.5") == 3);
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/v1/jobs|le=1") == 4);
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/v1/jobs|le=5") == 5);
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/v1/jobs|le=+Inf") == 7);
	assert_true(fabs(find(&e, "hark_http_request_duration_seconds_sum", "route=/v1/jobs") -
			 23.15) < 1e-9);
	assert_true(find(&e, "hark_http_request_duration_seconds_count", "route=/v1/jobs") == 7);
	assert_true(find(&e, "hark_http_request_duration_seconds_bucket",
			 "route=/healthz|le=0.1") == 1);
	assert_true(find(&e, "hark_http_request_duration_seconds_count", "route=/healthz") == 1);
	/* label merging: the series' labels first, then le */
	assert_non_null(strstr(text, "hark_http_request_duration_seconds_bucket"
				     "{route=\"/v1/jobs\",le=\"0.5\"} 3\n"));
	/* no labels: le alone, _sum/_count without braces */
	assert_non_null(strstr(text, "\nplain_seconds_bucket{le=\"+Inf\"} 7\n"));
	assert_true(fabs(find(&e, "plain_seconds_sum", "") - 23.15) < 1e-9);
	assert_non_null(strstr(text, "\nplain_seconds_sum 23.15"));
	assert_non_null(strstr(text, "\nplain_seconds_count 7\n"));
	assert_non_null(strstr(text, "# TYPE plain_seconds histogram\n"));
	free(text);
	expo_free(&e);
	hark_metrics_free(m);
}

static void test_escaping(void **state)
{
	struct hark_metrics *m = hark_metrics_new(100);
	char esc[128], labels[256], small[8];
	struct expo e;
	char *text;
	const char *raw = "C:\\path \"quoted\"\nnext";

	(void)state;
	hark_metrics_escape(raw, esc, sizeof(esc));
	assert_string_equal(esc, "C:\\\\path \\\"quoted\\\"\\nnext");
	/* truncation never cuts an escape in half */
	hark_metrics_escape("ab\"cd", small, 4);
	assert_string_equal(small, "ab");
	hark_metrics_escape("ab\"cd", small, 5);
	assert_string_equal(small, "ab\\\"");
	hark_metrics_escape("x", small, 1);
	assert_string_equal(small, "");

	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "hark_uploads_rejected_total",
					      "Rejected uploads.\nSecond line with a \\ backslash.",
					      HARK_METRIC_COUNTER, NULL, 0), HARK_OK);
	snprintf(labels, sizeof(labels), "reason=\"%s\"", esc);
	hark_metrics_add(m, "hark_uploads_rejected_total", labels, 2);
	render(m, &e, &text);
	/* the reader decodes the value back to the original */
	{
		char want[128];

		snprintf(want, sizeof(want), "reason=%s", raw);
		assert_true(find(&e, "hark_uploads_rejected_total", want) == 2);
	}
	assert_non_null(strstr(text, "# HELP hark_uploads_rejected_total Rejected uploads.\\n"
				     "Second line with a \\\\ backslash.\n"));
	free(text);
	expo_free(&e);
	hark_metrics_free(m);
}

static void test_series_cap_and_bad_labels(void **state)
{
	static const double b[] = { 1 };
	struct hark_metrics *m = hark_metrics_new(5);
	struct expo e;
	char labels[64];
	double v;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "c_total", "c", HARK_METRIC_COUNTER, NULL, 0),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "h_seconds", "h", HARK_METRIC_HISTOGRAM, b, 1),
			 HARK_OK);
	/* malformed label strings never become series */
	hark_metrics_add(m, "c_total", "route=\"unterminated", 1);
	hark_metrics_add(m, "c_total", "route=unquoted", 1);
	hark_metrics_add(m, "c_total", "route=\"a\"b=\"c\"", 1);
	hark_metrics_add(m, "c_total", "route=\"a\",", 1);
	hark_metrics_add(m, "c_total", "9x=\"a\"", 1);
	hark_metrics_add(m, "c_total", "x=\"bad \\q escape\"", 1);
	hark_metrics_add(m, "c_total", "x=\"raw\nnewline\"", 1);
	hark_metrics_observe(m, "h_seconds", "le=\"1\"", 1); /* le is reserved */
	assert_int_equal(hark_metrics_value(m, "hark_metrics_dropped_total", NULL, &v), HARK_OK);
	assert_true(v == 8);
	/* ten distinct series against a cap of five */
	for (int i = 0; i < 10; i++) {
		snprintf(labels, sizeof(labels), "ip=\"10.0.0.%d\"", i);
		hark_metrics_add(m, "c_total", labels, 1);
	}
	/* series that exist keep updating past the cap */
	hark_metrics_add(m, "c_total", "ip=\"10.0.0.0\"", 1);
	hark_metrics_observe(m, "h_seconds", "", 0.5); /* a new series: dropped */
	render(m, &e, NULL);
	assert_true(find(&e, "c_total", "ip=10.0.0.0") == 2);
	assert_true(find(&e, "c_total", "ip=10.0.0.4") == 1);
	assert_false(has(&e, "c_total", "ip=10.0.0.5"));
	assert_false(has(&e, "h_seconds_count", ""));
	assert_true(find(&e, "hark_metrics_dropped_total", "") == 8 + 5 + 1);
	{
		int n = 0;

		for (int i = 0; i < e.n; i++)
			n += !strcmp(e.s[i].name, "c_total");
		assert_int_equal(n, 5);
	}
	expo_free(&e);
	hark_metrics_free(m);
}

static void test_declare_errors(void **state)
{
	static const double desc[] = { 1, 0.5 };
	static const double dup[] = { 1, 1 };
	static const double withinf[] = { 1, 2, INFINITY };
	static const double withnan[] = { 1, NAN };
	struct hark_metrics *m = hark_metrics_new(10);
	struct expo e;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "", "x", HARK_METRIC_COUNTER, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "9lives", "x", HARK_METRIC_COUNTER, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "has space", "x", HARK_METRIC_COUNTER, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "has-dash", "x", HARK_METRIC_GAUGE, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, NULL, "x", HARK_METRIC_GAUGE, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "k", "x", (enum hark_metric_kind)7, NULL, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "h1", "x", HARK_METRIC_HISTOGRAM, desc, 2),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "h2", "x", HARK_METRIC_HISTOGRAM, dup, 2),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "h3", "x", HARK_METRIC_HISTOGRAM, withnan, 2),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "h4", "x", HARK_METRIC_HISTOGRAM, NULL, 3),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_metrics_declare(m, "hark_metrics_dropped_total", "x",
					      HARK_METRIC_COUNTER, NULL, 0), HARK_ERR_INVALID_ARG);
	/* an explicit +Inf bound is the implied one; no bounds at all is fine */
	assert_int_equal(hark_metrics_declare(m, "h5", "x", HARK_METRIC_HISTOGRAM, withinf, 3),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "h6", NULL, HARK_METRIC_HISTOGRAM, NULL, 0),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "ns:sub_total", "colons are legal",
					      HARK_METRIC_COUNTER, NULL, 0), HARK_OK);
	hark_metrics_observe(m, "h5", "", 1.5);
	hark_metrics_observe(m, "h6", "", 1.5);
	render(m, &e, NULL);
	assert_true(find(&e, "h5_bucket", "le=1") == 0);
	assert_true(find(&e, "h5_bucket", "le=2") == 1);
	assert_true(find(&e, "h5_bucket", "le=+Inf") == 1);
	assert_true(find(&e, "h6_bucket", "le=+Inf") == 1);
	{
		int inf = 0;

		for (int i = 0; i < e.n; i++)
			inf += !strcmp(e.s[i].name, "h5_bucket") && !strcmp(e.s[i].le, "+Inf");
		assert_int_equal(inf, 1);
	}
	expo_free(&e);
	hark_metrics_free(m);
}

static void test_number_format(void **state)
{
	struct hark_metrics *m = hark_metrics_new(10);
	struct expo e;
	char *text;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "g", "g", HARK_METRIC_GAUGE, NULL, 0), HARK_OK);
	hark_metrics_set(m, "g", "k=\"third\"", 1.0 / 3.0);
	hark_metrics_set(m, "g", "k=\"big\"", 123456789012.0);
	hark_metrics_set(m, "g", "k=\"inf\"", INFINITY);
	hark_metrics_set(m, "g", "k=\"ninf\"", -INFINITY);
	hark_metrics_set(m, "g", "k=\"nan\"", NAN);
	hark_metrics_set(m, "g", "k=\"tiny\"", 1e-300);
	render(m, &e, &text);
	assert_true(find(&e, "g", "k=third") == 1.0 / 3.0); /* round-trips exactly */
	assert_true(find(&e, "g", "k=big") == 123456789012.0);
	assert_true(isinf(find(&e, "g", "k=inf")) && find(&e, "g", "k=inf") > 0);
	assert_true(isinf(find(&e, "g", "k=ninf")) && find(&e, "g", "k=ninf") < 0);
	assert_true(isnan(find(&e, "g", "k=nan")));
	assert_true(find(&e, "g", "k=tiny") == 1e-300);
	assert_non_null(strstr(text, "g{k=\"big\"} 123456789012\n"));
	free(text);
	expo_free(&e);
	hark_metrics_free(m);
}

/* ---------------------------------------------------------- concurrency -- */

#define N_THREADS 4
#define N_ITERS 50000

struct worker {
	struct hark_metrics *m;
	int id;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	char labels[64];

	for (int i = 0; i < N_ITERS; i++) {
		snprintf(labels, sizeof(labels), "status=\"%d\"", 200 + (i % 3));
		hark_metrics_add(w->m, "req_total", labels, 1);
		hark_metrics_add(w->m, "bytes_total", NULL, 2);
		hark_metrics_observe(w->m, "lat_seconds", NULL, (i % 4) * 0.5); /* 0,.5,1,1.5 */
		hark_metrics_add(w->m, "inflight", NULL, 1);
		hark_metrics_add(w->m, "inflight", NULL, -1);
		if (i % 1000 == 0) {
			char *out = NULL;
			size_t len;

			if (hark_metrics_render(w->m, &out, &len) == HARK_OK)
				free(out);
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	static const double b[] = { 0.25, 1 };
	struct hark_metrics *m = hark_metrics_new(100);
	struct worker w[N_THREADS];
	pthread_t th[N_THREADS];
	struct expo e;
	double total = 0;

	(void)state;
	assert_non_null(m);
	assert_int_equal(hark_metrics_declare(m, "req_total", "r", HARK_METRIC_COUNTER, NULL, 0),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "bytes_total", "b", HARK_METRIC_COUNTER, NULL,
					      0), HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "lat_seconds", "l", HARK_METRIC_HISTOGRAM, b, 2),
			 HARK_OK);
	assert_int_equal(hark_metrics_declare(m, "inflight", "i", HARK_METRIC_GAUGE, NULL, 0),
			 HARK_OK);
	for (int t = 0; t < N_THREADS; t++) {
		w[t].m = m;
		w[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	render(m, &e, NULL);
	for (int s = 200; s <= 202; s++) {
		char l[32];

		snprintf(l, sizeof(l), "status=%d", s);
		total += find(&e, "req_total", l);
	}
	assert_true(total == (double)N_THREADS * N_ITERS);
	/* i % 3 == 0 occurs ceil(N/3) times per thread */
	assert_true(find(&e, "req_total", "status=200") == N_THREADS * ((N_ITERS + 2) / 3));
	assert_true(find(&e, "bytes_total", "") == 2.0 * N_THREADS * N_ITERS);
	assert_true(find(&e, "inflight", "") == 0);
	assert_true(find(&e, "lat_seconds_count", "") == (double)N_THREADS * N_ITERS);
	assert_true(find(&e, "lat_seconds_bucket", "le=0.25") == N_THREADS * N_ITERS / 4);
	assert_true(find(&e, "lat_seconds_bucket", "le=1") == 3 * N_THREADS * N_ITERS / 4);
	assert_true(find(&e, "lat_seconds_sum", "") == 0.75 * N_THREADS * N_ITERS);
	expo_free(&e);
	hark_metrics_free(m);
}

static void test_empty_and_null(void **state)
{
	struct hark_metrics *m = hark_metrics_new(0);
	struct expo e;
	char *out = (char *)"x";
	size_t len = 1;

	(void)state;
	assert_non_null(m);
	render(m, &e, NULL);
	assert_int_equal(e.n, 1); /* only hark_metrics_dropped_total */
	expo_free(&e);
	assert_int_equal(hark_metrics_render(NULL, &out, &len), HARK_ERR_INVALID_ARG);
	assert_null(out);
	hark_metrics_add(NULL, "x", NULL, 1);
	hark_metrics_free(NULL);
	hark_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_series_cap_and_bad_labels),
		cmocka_unit_test(test_declare_errors),
		cmocka_unit_test(test_number_format),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_empty_and_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
