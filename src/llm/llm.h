/*
 * The LLM layer: every call hark makes to a language model goes through one
 * struct hark_llm. It routes a task to an ordered group of models (picking
 * the first whose context window fits and whose circuit breaker admits
 * calls), keeps requests in flight within each model's concurrency bound and
 * its global RPM/TPM budget, retries transient failures with full-jitter
 * backoff (honouring Retry-After), fails over along the group when a breaker
 * opens, asks for and validates structured JSON (with a bounded repair
 * request), answers repeated requests from a content-hash cache in the store,
 * and accounts tokens and cost per call, job and API key. One background
 * thread drives every transfer through a libcurl multi handle; the calling
 * threads do the parsing, validation and store writes of their own calls.
 * The handle is thread-safe and meant to be shared by all workers.
 *
 * Times and durations in this API are provider seconds: real seconds times
 * config->time_scale (1 in production).
 */
#ifndef HARK_LLM_LLM_H
#define HARK_LLM_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "llm/config.h"

struct hark_store;
struct hark_metrics;
struct hark_llm;

struct hark_llm_params {
	const struct hark_llm_config *config; /* borrowed; must outlive the client */
	struct hark_store *store;   /* cache, accounting, shared limiter; NULL = in memory only */
	struct hark_metrics *metrics; /* hark_llm_* series; NULL = none */
	int shared_limiter;         /* 1: the store-backed limiter (budget shared across
				     * processes); needs store (default 0) */
	int no_cache;               /* 1: never answer from the cache (replies are still
				     * stored) (default 0) */
	uint64_t seed;              /* backoff jitter seed; 0 = from the clock */
};

struct hark_llm_params hark_llm_default_params(void);

/*
 * Creates a client and starts its transfer thread. Fails with
 * HARK_ERR_INVALID_ARG when the config has no providers (callers check
 * config->n_providers and use their offline path instead). err: reason.
 */
int hark_llm_init(const struct hark_llm_params *p, struct hark_llm **out, char *err,
		  size_t errlen);

/* Stops the thread (aborting transfers in flight) and frees; NULL ok. */
void hark_llm_free(struct hark_llm *c);

struct hark_llm_msg {
	const char *role;    /* "system", "user", "assistant" */
	const char *content; /* UTF-8 */
};

/* One chat request (all pointers borrowed for the duration of the call). */
struct hark_llm_request {
	const char *task;              /* route name ("extract", "summarize", ...); unknown
					* or NULL -> the "default" route */
	const struct hark_llm_msg *messages;
	size_t n_messages;
	const char *schema;            /* JSON Schema text the reply must satisfy (the reply
					* is then JSON); NULL = free text */
	const char *schema_name;       /* response_format json_schema name; NULL = task */
	double temperature;            /* default 0 */
	long max_tokens;               /* completion cap; 0 = the model's max_output_tokens */
	const char *job_id;            /* accounting; NULL/"" = none */
	const char *key_id;            /* accounting; NULL/"" = none */
};

/* Outcome of one request. */
struct hark_llm_result {
	int err;                 /* HARK_OK, or why the item finally failed:
				  * HARK_ERR_FORMAT (invalid reply after repair),
				  * HARK_ERR_NETWORK (retries/failover exhausted),
				  * HARK_ERR_LIMIT (fits no model's context window),
				  * HARK_ERR_INVALID_ARG (400/401/403/404 everywhere),
				  * HARK_ERR_CANCELED */
	char *content;           /* reply text; with a schema: the validated JSON
				  * (canonical text); heap, NULL on failure */
	char model[160];         /* "provider/model" that produced content */
	int64_t tokens_in;       /* summed over every billed attempt of this item */
	int64_t tokens_out;
	double cost_usd;
	int cached;              /* 1: answered from the cache (zero tokens, zero cost) */
	int attempts;            /* HTTP requests made for this item (0 when cached) */
	int repairs;             /* repair requests made */
	double latency_s;        /* provider seconds from submit to answer */
	char error[256];         /* why, when err != 0 */
};

/* Frees content; leaves the struct zeroed. */
void hark_llm_result_clear(struct hark_llm_result *r);

struct hark_llm_callbacks {
	/* called on the calling thread after each item finishes */
	void (*progress)(size_t done, size_t total, void *user_data);
	/* chat only: called on the calling thread as soon as item `index`
	 * (into reqs/results) settles, before progress; r is results[index],
	 * complete (ok or failed) and owned by the caller's array, so a caller
	 * can store each answer as it arrives. NULL = none */
	void (*item_done)(size_t index, const struct hark_llm_result *r, void *user_data);
	/* polled on the calling thread; nonzero aborts everything still
	 * pending or in flight (those items end HARK_ERR_CANCELED) */
	int (*cancel)(void *user_data);
	void *user_data;
};

/*
 * Runs n chat requests concurrently (as far as limits allow) and waits for
 * all. results[i] answers reqs[i] (caller-allocated, n entries; each is
 * overwritten). One item's failure never fails the others: the return value
 * is HARK_OK when every item was attempted (check results[i].err), or
 * HARK_ERR_CANCELED / HARK_ERR_NOMEM / HARK_ERR_INVALID_ARG for the batch as
 * a whole. cb may be NULL.
 */
int hark_llm_run(struct hark_llm *c, const struct hark_llm_request *reqs, size_t n,
		 struct hark_llm_result *results, const struct hark_llm_callbacks *cb);

/* One request; returns out->err. */
int hark_llm_chat(struct hark_llm *c, const struct hark_llm_request *req,
		  struct hark_llm_result *out);

/* Accounting of one embeddings call set. */
struct hark_llm_embed_result {
	float *vectors;      /* n x dim, row-major, L2 norms as the provider sent them; heap */
	size_t dim;
	int64_t tokens_in;
	double cost_usd;
	size_t cached;       /* inputs answered from the cache */
	size_t requests;     /* HTTP requests made */
	char model[160];
	char error[256];
};

/*
 * Embeds n texts with the route `task` (NULL -> "embed"), in requests of up
 * to config->embed_batch inputs, under the same limits, retries, breakers,
 * cache (per text) and accounting as chat. All-or-nothing: returns HARK_OK
 * with out->vectors filled, or an error (out->error says why).
 */
int hark_llm_embed(struct hark_llm *c, const char *task, const char *const *texts, size_t n,
		   const char *job_id, const char *key_id, struct hark_llm_embed_result *out);

void hark_llm_embed_result_clear(struct hark_llm_embed_result *r);

/* Process-lifetime totals of this client. */
struct hark_llm_totals {
	int64_t requests;      /* HTTP requests sent */
	int64_t ok;            /* items answered (network or cache) */
	int64_t failed;        /* items finally failed */
	int64_t retries;       /* requests that were retries */
	int64_t rate_limited;  /* 429 responses */
	int64_t repairs;
	int64_t failovers;     /* items moved to a later model of their group */
	int64_t cache_hits;
	int64_t cache_misses;
	int64_t tokens_in, tokens_out;
	double cost_usd;
};

void hark_llm_get_totals(struct hark_llm *c, struct hark_llm_totals *out);

/* Breaker state (enum hark_llm_breaker_state) of model key "provider/model";
 * -1 if unknown. */
int hark_llm_breaker_state(struct hark_llm *c, const char *model_key);

/* Current provider time (Unix seconds x time_scale). */
double hark_llm_now(const struct hark_llm *c);

/*
 * sha256 (hex) of the canonical request (model key, messages, temperature,
 * max_tokens, schema): the cache key of req when sent to model_key.
 */
int hark_llm_request_hash(const struct hark_llm_request *req, const char *model_key,
			  long max_tokens, char hex[65]);

#endif /* HARK_LLM_LLM_H */
