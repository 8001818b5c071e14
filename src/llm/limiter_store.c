/*
 * Store-backed implementation of the LLM rate limiter (limiter.h): every
 * reservation, adjustment and Retry-After block is one write transaction in
 * the job store (hark_store_llm_rate_*), so all workers of all processes
 * that open the same store share one request/token budget per model key.
 * This file only adapts the limiter's table of operations to those store
 * calls; the sliding-window arithmetic lives in the store backend. The
 * handle borrows the store, which must outlive it.
 */
#include "llm/limiter.h"

#include <stdlib.h>

#include "hark/hark.h"
#include "store/store.h"

struct store_limiter {
	struct hark_store *st;
};

static int store_acquire(void *self, const char *key, const struct hark_llm_limits *lim,
			 double tokens, double now, int *admitted, double *retry_at,
			 int64_t *ticket)
{
	struct store_limiter *L = self;
	double dummy_retry = 0;
	int64_t dummy_ticket = 0;
	int rc;

	if (admitted)
		*admitted = 0;
	if (ticket)
		*ticket = 0;
	if (!L || !lim || !admitted)
		return HARK_ERR_INVALID_ARG;
	if (!retry_at)
		retry_at = &dummy_retry;
	rc = hark_store_llm_rate_acquire(L->st, key, lim->rpm, lim->tpm, lim->window_s, tokens,
					 now, admitted, retry_at, ticket ? ticket : &dummy_ticket);
	if (rc == HARK_OK && *admitted)
		*retry_at = now; /* as the in-process limiter reports it */
	return rc;
}

static int store_adjust(void *self, const char *key, int64_t ticket, double tokens)
{
	struct store_limiter *L = self;

	(void)key; /* tickets are unique store-wide */
	if (!L)
		return HARK_ERR_INVALID_ARG;
	return hark_store_llm_rate_adjust(L->st, ticket, tokens);
}

static int store_block(void *self, const char *key, double until)
{
	struct store_limiter *L = self;

	if (!L)
		return HARK_ERR_INVALID_ARG;
	return hark_store_llm_rate_block(L->st, key, until);
}

static void store_destroy(void *self)
{
	free(self);
}

static const struct hark_llm_limiter_ops store_ops = {
	.name = "store",
	.acquire = store_acquire,
	.adjust = store_adjust,
	.block = store_block,
	.destroy = store_destroy,
};

int hark_llm_limiter_store_new(struct hark_store *st, struct hark_llm_limiter **out)
{
	struct hark_llm_limiter *l = NULL;
	struct store_limiter *L = NULL;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!st)
		return HARK_ERR_INVALID_ARG;
	l = calloc(1, sizeof(*l));
	L = calloc(1, sizeof(*L));
	if (!l || !L) {
		free(L);
		free(l);
		return HARK_ERR_NOMEM;
	}
	L->st = st;
	l->ops = &store_ops;
	l->self = L;
	*out = l;
	return HARK_OK;
}
