/*
 * The request log and the counters of hark-llm-sim. Every API request
 * (everything but /_sim/...) produces one record when its response starts
 * or when it is dropped; the record goes to the JSONL log (one line,
 * flushed at once) and into the statistics served by GET /_sim/stats.
 */
#ifndef HARK_SIM_LOG_H
#define HARK_SIM_LOG_H

#include <stddef.h>

#include <jansson.h>

#include "sim/sim_config.h"
#include "sim/sim_text.h"

struct hark_sim_logrec {
	long seq;                 /* arrival order, from 1 */
	double t;                 /* sim arrival */
	double t_end;             /* sim response start (or drop) */
	double real;              /* unix real arrival */
	const char *path;         /* as requested */
	const char *model;        /* NULL when unknown */
	int status;               /* HTTP status; 0 = dropped by the sim, 499 = client gone */
	const char *fault;        /* "none", "500", "timeout", "rate_limited", ... */
	int stream;
	int admitted;             /* 1: counted in the rate-limit window */
	long prompt_tokens;
	long completion_tokens;
	long counted_tokens;
	long max_tokens;          /* -1 = null */
	long n_inputs;            /* messages (chat) or inputs (embeddings) */
	const char *identity;     /* hex, or NULL */
	const struct hark_sim_chunk *chunks;
	size_t n_chunks;
	double latency_s;         /* sim seconds from arrival to the response start */
	int usage_delivered;      /* 1: the usage counts toward /_sim/stats "usage" */
	long model_index;         /* index in the config, or -1 */
};

struct hark_sim_log;

/* Opens (appends to) path; path NULL = no file, statistics only. n_models:
 * size of the per-model table. NULL with err on failure. */
struct hark_sim_log *hark_sim_log_open(const char *path, size_t n_models, char *err,
				       size_t errlen);
void hark_sim_log_close(struct hark_sim_log *l);

/* Records one request (log line + statistics). */
void hark_sim_log_record(struct hark_sim_log *l, const struct hark_sim_logrec *r);

/* Requests currently between arrival and the end of their response. */
void hark_sim_log_in_flight(struct hark_sim_log *l, int delta);

/* Zeroes the statistics (the log file is kept). */
void hark_sim_log_reset(struct hark_sim_log *l);

/* The statistics document (new reference). */
json_t *hark_sim_log_stats(const struct hark_sim_log *l, const struct hark_sim_config *c);

#endif /* HARK_SIM_LOG_H */
