/*
 * Configuration of hark-llm-sim: the models it serves (context window,
 * output cap, per-model RPM/TPM limits, embedding dimensions), the rate-limit
 * window, the latency distribution, the SSE chunk spacing, the random fault
 * probabilities and how long a "timeout" fault holds a request. Parsed from
 * the --config JSON file (strictly: an unknown member is an error) and
 * updated at run time by POST /_sim/config with a partial document. All
 * durations are simulated seconds.
 */
#ifndef HARK_SIM_CONFIG_H
#define HARK_SIM_CONFIG_H

#include <stddef.h>

#define HARK_SIM_MODEL_NAME_MAX 128

struct hark_sim_model {
	char name[HARK_SIM_MODEL_NAME_MAX];
	long context_window;    /* tokens (prompt + completion) */
	long max_output_tokens; /* completion cap */
	long rpm;               /* requests per window; 0 = unlimited */
	long tpm;               /* counted tokens per window; 0 = unlimited */
	int embedding;          /* 1: serves /embeddings only */
	int dimensions;         /* embedding vector length (embedding models) */
};

enum hark_sim_latency_dist {
	HARK_SIM_LAT_FIXED = 0,
	HARK_SIM_LAT_UNIFORM = 1,
	HARK_SIM_LAT_LOGNORMAL = 2,
};

struct hark_sim_latency {
	int dist;        /* enum hark_sim_latency_dist */
	double s;        /* fixed */
	double min_s;    /* uniform */
	double max_s;
	double median_s; /* lognormal */
	double sigma;
};

struct hark_sim_faults {
	double p_500, p_503, p_timeout, p_truncated, p_malformed_body, p_bad_json;
};

struct hark_sim_config {
	struct hark_sim_model *models; /* heap, n_models entries */
	size_t n_models;
	double window_s;               /* rate-limit window (60) */
	struct hark_sim_latency latency;
	double stream_chunk_s;         /* gap between SSE content deltas (0.01) */
	struct hark_sim_faults faults;
	double timeout_hold_s;         /* a "timeout" fault holds the request this long (600) */
};

/*
 * Parses a full configuration document (text[0..len), JSON object). Every
 * member is optional; without "models" the three default models exist.
 * Unknown members, wrong types and out-of-range values are errors
 * (HARK_ERR_INVALID_ARG, or HARK_ERR_FORMAT when not JSON) with err naming
 * the member. On success *out owns its models (hark_sim_config_clear).
 */
int hark_sim_config_parse(const char *text, size_t len, struct hark_sim_config *out, char *err,
			  size_t errlen);

/* The configuration an empty document gives. *out owns its models. */
int hark_sim_config_default(struct hark_sim_config *out);

/*
 * Applies a partial document (POST /_sim/config): "faults" (only the members
 * given change), "latency" (replaced whole), "models" (array of {"name",
 * "rpm"?, "tpm"?} naming existing models), "stream_chunk_s",
 * "timeout_hold_s". Validates everything first: on error nothing changes
 * and err says why.
 */
int hark_sim_config_update(struct hark_sim_config *c, const char *text, size_t len, char *err,
			   size_t errlen);

/* Index of the model called name, or -1. */
long hark_sim_config_find(const struct hark_sim_config *c, const char *name);

/* Frees the models and zeroes c. */
void hark_sim_config_clear(struct hark_sim_config *c);

#endif /* HARK_SIM_CONFIG_H */
