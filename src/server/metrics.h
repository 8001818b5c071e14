/*
 * A small Prometheus metrics registry: labelled counters, gauges and
 * histograms, updated from any thread (one mutex per registry; updates are a
 * hash lookup and an add) and rendered in the Prometheus text exposition
 * format (version 0.0.4). Series are created on first use; the number of
 * series is capped so unbounded label values cannot exhaust memory (updates
 * past the cap are dropped and counted in hark_metrics_dropped_total).
 */
#ifndef HARK_SERVER_METRICS_H
#define HARK_SERVER_METRICS_H

#include <stddef.h>

struct hark_metrics;

enum hark_metric_kind { HARK_METRIC_COUNTER, HARK_METRIC_GAUGE, HARK_METRIC_HISTOGRAM };

/* max_series: cap over all metrics (e.g. 4096). NULL on allocation failure. */
struct hark_metrics *hark_metrics_new(size_t max_series);
void hark_metrics_free(struct hark_metrics *m);

/*
 * Declares a metric family (name, help text, kind). Histograms take n_buckets
 * ascending upper bounds (copied; +Inf is implied). Declaring the same name
 * twice is a no-op. Returns 0 or HARK_ERR_INVALID_ARG / HARK_ERR_NOMEM.
 */
int hark_metrics_declare(struct hark_metrics *m, const char *name, const char *help,
			 enum hark_metric_kind kind, const double *buckets, size_t n_buckets);

/*
 * labels: Prometheus label pairs already formatted without braces, e.g.
 * "route=\"/v1/jobs\",status=\"202\"" (NULL or "" for none). Label values
 * must be escaped by the caller with hark_metrics_escape when they come from
 * outside. Unknown metric names are ignored.
 */
void hark_metrics_add(struct hark_metrics *m, const char *name, const char *labels, double v);
void hark_metrics_set(struct hark_metrics *m, const char *name, const char *labels, double v);
void hark_metrics_observe(struct hark_metrics *m, const char *name, const char *labels, double v);

/* Escapes a label value (backslash, quote, newline) into out (cap bytes,
 * truncated, always NUL-terminated). */
void hark_metrics_escape(const char *in, char *out, size_t cap);

/*
 * Current value of one series: a counter's or gauge's value, a histogram's
 * observation count; hark_metrics_dropped_total with labels NULL/"" gives
 * the dropped-update count. labels as for the updates (exact string).
 * Returns 0, HARK_ERR_NOT_FOUND if the series does not exist (yet), or
 * HARK_ERR_INVALID_ARG.
 */
int hark_metrics_value(struct hark_metrics *m, const char *name, const char *labels,
		       double *value);

/* Renders everything; *out heap (caller frees), *len bytes. */
int hark_metrics_render(struct hark_metrics *m, char **out, size_t *len);

#endif /* HARK_SERVER_METRICS_H */
