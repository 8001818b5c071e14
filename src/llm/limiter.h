/*
 * Global request/token rate limiting for LLM calls: per model (key
 * "provider/model"), at most `rpm` requests and `tpm` tokens inside any
 * sliding window of `window_s` provider seconds, shared by every worker that
 * holds the same limiter. Two implementations sit behind one table of
 * function pointers: an in-process one (limiter_local.c) and a store-backed
 * one (limiter_store.c) whose budget is shared by every process using the
 * same store, so that several hark workers together never exceed a
 * provider's limits. Times are provider seconds (real seconds times the
 * configured time scale) on a clock all sharers agree on (Unix time x scale).
 */
#ifndef HARK_LLM_LIMITER_H
#define HARK_LLM_LIMITER_H

#include <stddef.h>
#include <stdint.h>

struct hark_store;

struct hark_llm_limits {
	double rpm;      /* requests per window; 0 = unlimited */
	double tpm;      /* tokens per window; 0 = unlimited */
	double window_s; /* window length, e.g. 60 x (1 + margin) */
};

struct hark_llm_limiter_ops {
	const char *name; /* "local", "store" */
	/*
	 * Tries to reserve one request costing `tokens` for model key at time
	 * now. Admitted: *admitted = 1, *ticket identifies the reservation (for
	 * adjust). Not admitted: *admitted = 0 and *retry_at = the earliest
	 * time at which the same reservation could succeed (> now). A single
	 * reservation larger than the whole tpm is admitted once the window is
	 * empty (it could never fit otherwise). Returns 0, or an error code
	 * (store failure); on error nothing is reserved.
	 */
	int (*acquire)(void *self, const char *key, const struct hark_llm_limits *lim,
		       double tokens, double now, int *admitted, double *retry_at,
		       int64_t *ticket);
	/* Replaces the token count of reservation ticket (prompt estimate
	 * corrected from the response's usage). Unknown/expired tickets are
	 * ignored. */
	int (*adjust)(void *self, const char *key, int64_t ticket, double tokens);
	/* Nothing is admitted for key before `until` (Retry-After, a
	 * x-ratelimit-reset-* with remaining 0). Keeps the later of the
	 * current and the new block. */
	int (*block)(void *self, const char *key, double until);
	void (*destroy)(void *self);
};

struct hark_llm_limiter {
	const struct hark_llm_limiter_ops *ops;
	void *self;
};

/* In-process limiter (thread-safe). *out heap; free with
 * hark_llm_limiter_free. */
int hark_llm_limiter_local_new(struct hark_llm_limiter **out);

/* Store-backed limiter: reservations live in st (which must outlive the
 * limiter), so every process on the same store shares one budget. */
int hark_llm_limiter_store_new(struct hark_store *st, struct hark_llm_limiter **out);

/* Destroys the implementation and the handle; NULL is a no-op. */
void hark_llm_limiter_free(struct hark_llm_limiter *l);

#endif /* HARK_LLM_LIMITER_H */
