/*
 * Prometheus registry behind metrics.h. Families (name, help, kind,
 * histogram bounds) are kept in declaration order; each series (a family
 * plus one label string) lives in a chained hash table keyed by
 * name + labels and on its family's list in creation order, which is the
 * order of the rendered output. A histogram series keeps one count per
 * bucket (made cumulative when rendered), the sum and the count. Label
 * strings are checked once, when their series is created, so a malformed
 * one can never corrupt the exposition; series past the cap and malformed
 * label strings are dropped and counted in hark_metrics_dropped_total. One
 * mutex serialises updates and rendering.
 */
#include "server/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

#define MX_MAX_FAMILIES 4096
#define MX_MAX_BUCKETS 128
#define MX_MAX_NAME 200
#define MX_MAX_HELP 1024
#define MX_MAX_LABELS 4096
#define MX_MAX_RENDER ((size_t)256 << 20)

struct mx_series {
	struct mx_series *chain;      /* hash chain */
	struct mx_series *next;       /* family list, creation order */
	struct mx_family *fam;
	uint64_t hash;
	double value;                 /* counter / gauge */
	double sum;                   /* histogram */
	uint64_t count;
	uint64_t *buckets;            /* histogram: n_buckets + 1 (last: +Inf) */
	char labels[];
};

struct mx_family {
	char *name;
	char *help;
	enum hark_metric_kind kind;
	double *bounds;
	size_t n_bounds;
	struct mx_series *first, *last;
};

struct hark_metrics {
	pthread_mutex_t mu;
	struct mx_family **fams;
	size_t n_fams, cap_fams;
	struct mx_series **slots;
	size_t nslots, n_series, max_series;
	uint64_t dropped;
};

static uint64_t mx_hash(const char *name, const char *labels)
{
	uint64_t h = 14695981039346656037ull;

	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h = (h ^ 0xffu) * 1099511628211ull;
	for (const char *s = labels; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

struct hark_metrics *hark_metrics_new(size_t max_series)
{
	struct hark_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nslots = 64;
	m->slots = calloc(m->nslots, sizeof(*m->slots));
	if (!m->slots || pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m->slots);
		free(m);
		return NULL;
	}
	m->max_series = max_series;
	return m;
}

void hark_metrics_free(struct hark_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_fams; i++) {
		struct mx_family *f = m->fams[i];
		struct mx_series *s, *next;

		for (s = f->first; s; s = next) {
			next = s->next;
			free(s->buckets);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	free(m->fams);
	free(m->slots);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ------------------------------------------------------- validation ---- */

static int valid_metric_name(const char *s)
{
	size_t n = 0;

	for (const char *p = s; *p; p++, n++) {
		char c = *p;
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			    c == ':';

		if (!alpha && !(n > 0 && c >= '0' && c <= '9'))
			return 0;
	}
	return n > 0 && n <= MX_MAX_NAME;
}

/*
 * Checks `name="value"(,name="value")*` with escaped values (\\, \", \n
 * only) and, for histograms, no label named le. Empty is valid.
 */
static int valid_labels(const char *s, int histogram)
{
	const char *p = s;

	if (strlen(s) > MX_MAX_LABELS)
		return 0;
	while (*p) {
		const char *name = p;

		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
			return 0;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		       (*p >= '0' && *p <= '9'))
			p++;
		if (histogram && p - name == 2 && !strncmp(name, "le", 2))
			return 0;
		if (p[0] != '=' || p[1] != '"')
			return 0;
		p += 2;
		while (*p != '"') {
			if (!*p || *p == '\n')
				return 0;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return 0;
				p++;
			}
			p++;
		}
		p++;
		if (*p == ',') {
			p++;
			if (!*p)
				return 0;
		} else if (*p) {
			return 0;
		}
	}
	return 1;
}

/* ------------------------------------------------------ declaration ---- */

static struct mx_family *find_family(struct hark_metrics *m, const char *name)
{
	for (size_t i = 0; i < m->n_fams; i++)
		if (!strcmp(m->fams[i]->name, name))
			return m->fams[i];
	return NULL;
}

int hark_metrics_declare(struct hark_metrics *m, const char *name, const char *help,
			 enum hark_metric_kind kind, const double *buckets, size_t n_buckets)
{
	struct mx_family *f = NULL;
	int rc = HARK_OK;

	if (!m || !name || !valid_metric_name(name) ||
	    (kind != HARK_METRIC_COUNTER && kind != HARK_METRIC_GAUGE &&
	     kind != HARK_METRIC_HISTOGRAM))
		return HARK_ERR_INVALID_ARG;
	if (!strcmp(name, "hark_metrics_dropped_total"))
		return HARK_ERR_INVALID_ARG; /* reserved: always rendered */
	if (kind == HARK_METRIC_HISTOGRAM) {
		if (n_buckets && !buckets)
			return HARK_ERR_INVALID_ARG;
		/* a trailing +Inf is implied anyway */
		if (n_buckets && isinf(buckets[n_buckets - 1]) && buckets[n_buckets - 1] > 0)
			n_buckets--;
		if (n_buckets > MX_MAX_BUCKETS)
			return HARK_ERR_INVALID_ARG;
		for (size_t i = 0; i < n_buckets; i++)
			if (!isfinite(buckets[i]) || (i && !(buckets[i] > buckets[i - 1])))
				return HARK_ERR_INVALID_ARG;
	} else {
		n_buckets = 0;
	}
	if (!help)
		help = "";
	if (strlen(help) > MX_MAX_HELP)
		return HARK_ERR_INVALID_ARG;

	pthread_mutex_lock(&m->mu);
	if (find_family(m, name))
		goto out; /* no-op */
	if (m->n_fams >= MX_MAX_FAMILIES) {
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	if (m->n_fams == m->cap_fams) {
		size_t nc = m->cap_fams ? m->cap_fams * 2 : 16;
		struct mx_family **nf = realloc(m->fams, nc * sizeof(*nf));

		if (!nf) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		m->fams = nf;
		m->cap_fams = nc;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto nomem;
	f->name = strdup(name);
	f->help = strdup(help);
	if (!f->name || !f->help)
		goto nomem;
	f->kind = kind;
	if (n_buckets) {
		f->bounds = malloc(n_buckets * sizeof(*f->bounds));
		if (!f->bounds)
			goto nomem;
		memcpy(f->bounds, buckets, n_buckets * sizeof(*f->bounds));
	}
	f->n_bounds = n_buckets;
	m->fams[m->n_fams++] = f;
	goto out;
nomem:
	if (f) {
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	rc = HARK_ERR_NOMEM;
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

/* --------------------------------------------------------- updating ---- */

static void grow_slots(struct hark_metrics *m)
{
	size_t nn = m->nslots * 2;
	struct mx_series **ns = calloc(nn, sizeof(*ns));

	if (!ns)
		return; /* keep the longer chains */
	for (size_t i = 0; i < m->nslots; i++) {
		struct mx_series *s = m->slots[i], *next;

		for (; s; s = next) {
			next = s->chain;
			s->chain = ns[s->hash & (nn - 1)];
			ns[s->hash & (nn - 1)] = s;
		}
	}
	free(m->slots);
	m->slots = ns;
	m->nslots = nn;
}

/* Finds or creates the series; NULL for unknown names or dropped updates.
 * Called with the mutex held. */
static struct mx_series *get_series(struct hark_metrics *m, const char *name, const char *labels,
				    enum hark_metric_kind kind)
{
	uint64_t h = mx_hash(name, labels);
	struct mx_series *s;
	struct mx_family *f;
	size_t ll;

	for (s = m->slots[h & (m->nslots - 1)]; s; s = s->chain)
		if (s->hash == h && !strcmp(s->labels, labels) && !strcmp(s->fam->name, name))
			return s->fam->kind == kind ? s : NULL;
	f = find_family(m, name);
	if (!f || f->kind != kind)
		return NULL;
	if (m->n_series >= m->max_series || !valid_labels(labels, kind == HARK_METRIC_HISTOGRAM)) {
		m->dropped++;
		return NULL;
	}
	ll = strlen(labels);
	s = calloc(1, sizeof(*s) + ll + 1);
	if (!s) {
		m->dropped++;
		return NULL;
	}
	memcpy(s->labels, labels, ll + 1);
	if (kind == HARK_METRIC_HISTOGRAM) {
		s->buckets = calloc(f->n_bounds + 1, sizeof(*s->buckets));
		if (!s->buckets) {
			free(s);
			m->dropped++;
			return NULL;
		}
	}
	s->fam = f;
	s->hash = h;
	s->chain = m->slots[h & (m->nslots - 1)];
	m->slots[h & (m->nslots - 1)] = s;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	m->n_series++;
	if (m->n_series > m->nslots / 4 * 3)
		grow_slots(m);
	return s;
}

/* Counters only go up; gauges take anything. */
void hark_metrics_add(struct hark_metrics *m, const char *name, const char *labels, double v)
{
	struct mx_series *s;

	if (!m || !name || isnan(v))
		return;
	pthread_mutex_lock(&m->mu);
	s = get_series(m, name, labels ? labels : "", HARK_METRIC_COUNTER);
	if (s) {
		if (v > 0)
			s->value += v;
	} else if ((s = get_series(m, name, labels ? labels : "", HARK_METRIC_GAUGE))) {
		s->value += v;
	}
	pthread_mutex_unlock(&m->mu);
}

void hark_metrics_set(struct hark_metrics *m, const char *name, const char *labels, double v)
{
	struct mx_series *s;

	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	s = get_series(m, name, labels ? labels : "", HARK_METRIC_GAUGE);
	if (!s)
		s = get_series(m, name, labels ? labels : "", HARK_METRIC_COUNTER);
	if (s)
		s->value = v;
	pthread_mutex_unlock(&m->mu);
}

void hark_metrics_observe(struct hark_metrics *m, const char *name, const char *labels, double v)
{
	struct mx_series *s;

	if (!m || !name || isnan(v))
		return;
	pthread_mutex_lock(&m->mu);
	s = get_series(m, name, labels ? labels : "", HARK_METRIC_HISTOGRAM);
	if (s) {
		size_t i = 0;

		while (i < s->fam->n_bounds && v > s->fam->bounds[i])
			i++;
		s->buckets[i]++;
		s->count++;
		s->sum += v;
	}
	pthread_mutex_unlock(&m->mu);
}

int hark_metrics_value(struct hark_metrics *m, const char *name, const char *labels,
		       double *value)
{
	int rc = HARK_ERR_NOT_FOUND;

	if (!m || !name || !value)
		return HARK_ERR_INVALID_ARG;
	if (!labels)
		labels = "";
	pthread_mutex_lock(&m->mu);
	if (!strcmp(name, "hark_metrics_dropped_total") && !*labels) {
		*value = (double)m->dropped;
		rc = HARK_OK;
	} else {
		uint64_t h = mx_hash(name, labels);

		for (struct mx_series *s = m->slots[h & (m->nslots - 1)]; s; s = s->chain)
			if (s->hash == h && !strcmp(s->labels, labels) &&
			    !strcmp(s->fam->name, name)) {
				*value = s->fam->kind == HARK_METRIC_HISTOGRAM ? (double)s->count
									      : s->value;
				rc = HARK_OK;
				break;
			}
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

void hark_metrics_escape(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	if (!out || !cap)
		return;
	for (; in && *in; in++) {
		const char *rep = NULL;
		char one[2] = { *in, 0 };
		size_t rl;

		if (*in == '\\')
			rep = "\\\\";
		else if (*in == '"')
			rep = "\\\"";
		else if (*in == '\n')
			rep = "\\n";
		else
			rep = one;
		rl = strlen(rep);
		if (n + rl + 1 > cap)
			break; /* never split an escape */
		memcpy(out + n, rep, rl);
		n += rl;
	}
	out[n] = '\0';
}

/* -------------------------------------------------------- rendering ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	if (b->failed)
		return;
	va_copy(ap2, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (!b->p || b->len + (size_t)n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		char *np;

		while (nc < b->len + (size_t)n + 1)
			nc *= 2;
		if (nc > MX_MAX_RENDER) {
			b->failed = 1;
			return;
		}
		np = realloc(b->p, nc);
		if (!np) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

/* Shortest round-tripping text of v ("+Inf", "-Inf", "NaN" as Prometheus
 * spells them). */
static void fmt_num(double v, char *out, size_t n)
{
	if (isnan(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void render_help(struct sbuf *b, const struct mx_family *f)
{
	sb_printf(b, "# HELP %s ", f->name);
	for (const char *s = f->help; *s; s++) {
		if (*s == '\\')
			sb_printf(b, "\\\\");
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *s);
	}
	sb_printf(b, "\n# TYPE %s %s\n", f->name,
		  f->kind == HARK_METRIC_COUNTER ? "counter"
		  : f->kind == HARK_METRIC_GAUGE ? "gauge" : "histogram");
}

static void render_series(struct sbuf *b, const struct mx_series *s)
{
	const struct mx_family *f = s->fam;
	const char *l = s->labels;
	char num[64];

	if (f->kind != HARK_METRIC_HISTOGRAM) {
		fmt_num(s->value, num, sizeof(num));
		if (*l)
			sb_printf(b, "%s{%s} %s\n", f->name, l, num);
		else
			sb_printf(b, "%s %s\n", f->name, num);
		return;
	}
	uint64_t cum = 0;

	for (size_t i = 0; i <= f->n_bounds; i++) {
		cum += s->buckets[i];
		if (i < f->n_bounds)
			fmt_num(f->bounds[i], num, sizeof(num));
		else
			snprintf(num, sizeof(num), "+Inf");
		sb_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, l, *l ? "," : "", num,
			  (unsigned long long)cum);
	}
	fmt_num(s->sum, num, sizeof(num));
	if (*l) {
		sb_printf(b, "%s_sum{%s} %s\n", f->name, l, num);
		sb_printf(b, "%s_count{%s} %llu\n", f->name, l, (unsigned long long)s->count);
	} else {
		sb_printf(b, "%s_sum %s\n", f->name, num);
		sb_printf(b, "%s_count %llu\n", f->name, (unsigned long long)s->count);
	}
}

int hark_metrics_render(struct hark_metrics *m, char **out, size_t *len)
{
	struct sbuf b = { 0 };

	if (!out || !len)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	*len = 0;
	if (!m)
		return HARK_ERR_INVALID_ARG;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_fams; i++) {
		const struct mx_family *f = m->fams[i];

		render_help(&b, f);
		for (const struct mx_series *s = f->first; s; s = s->next)
			render_series(&b, s);
	}
	sb_printf(&b, "# HELP hark_metrics_dropped_total Metric updates dropped "
		  "(series cap reached or malformed labels).\n"
		  "# TYPE hark_metrics_dropped_total counter\n"
		  "hark_metrics_dropped_total %llu\n", (unsigned long long)m->dropped);
	pthread_mutex_unlock(&m->mu);
	if (b.failed) {
		free(b.p);
		return HARK_ERR_NOMEM;
	}
	*out = b.p;
	*len = b.len;
	return HARK_OK;
}
