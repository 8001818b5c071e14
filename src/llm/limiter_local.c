/*
 * In-process implementation of the LLM rate limiter (limiter.h). Each model
 * key keeps a sliding-window log of its admitted reservations (time, tokens,
 * ticket) in a ring buffer ordered by time, with running request and token
 * sums; a reservation made at t counts against every window that contains
 * t, i.e. until t + window_s (exclusive). Admission checks both budgets
 * against the log after dropping expired entries; a refusal reports the
 * exact earliest time at which enough old reservations will have left the
 * window for both the request and the token budget (and not before any
 * Retry-After block). Token counts are rounded up to whole tokens and summed
 * in 64-bit integers, so the sums never drift. Per key the clock never goes
 * back: a caller whose `now` is older than one already seen is treated as
 * arriving at that later time, so threads reading the clock a moment apart
 * cannot squeeze an extra reservation into a window. One mutex guards the
 * whole table. Bounds: at most HARK_LLM_LIMITER_LOCAL_MAX_LOG reservations
 * per key (with rpm = 0 and tpm > 0 that cap acts as an rpm), and at most
 * LOCAL_MAX_KEYS keys (idle keys are evicted to make room).
 */
#include "llm/limiter.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

/* Most reservations one key's log can hold (power of two). */
#define HARK_LLM_LIMITER_LOCAL_MAX_LOG ((size_t)1 << 20)
#define LOCAL_MIN_CAP 16
#define LOCAL_MAX_KEYS 4096
#define LOCAL_MAX_KEYLEN 1024
#define LOCAL_BUCKETS 64
#define LOCAL_MAX_TOKENS 1e15

struct resv {
	double t;
	int64_t tokens;
	int64_t ticket;
};

struct lkey {
	struct lkey *next;
	char *name;
	struct resv *ring; /* cap entries, power of two; n live from head */
	size_t cap, head, n;
	int64_t sum;        /* tokens of the n live reservations */
	double clock;       /* latest `now` seen for this key */
	double block_until; /* nothing admitted before this */
};

struct local {
	pthread_mutex_t mu;
	struct lkey *buckets[LOCAL_BUCKETS];
	size_t nkeys;
	int64_t next_ticket;
};

static struct resv *at(struct lkey *k, size_t i)
{
	return &k->ring[(k->head + i) & (k->cap - 1)];
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void key_free(struct lkey *k)
{
	if (!k)
		return;
	free(k->ring);
	free(k->name);
	free(k);
}

/* Resizes the ring to newcap (>= n, power of two), keeping the order. */
static int ring_resize(struct lkey *k, size_t newcap)
{
	struct resv *r = malloc(newcap * sizeof(*r));

	if (!r)
		return HARK_ERR_NOMEM;
	for (size_t i = 0; i < k->n; i++)
		r[i] = *at(k, i);
	free(k->ring);
	k->ring = r;
	k->cap = newcap;
	k->head = 0;
	return HARK_OK;
}

/* Drops reservations that left the window at now. */
static void prune(struct lkey *k, double now, double window_s)
{
	while (k->n > 0) {
		struct resv *r = at(k, 0);

		if (r->t + window_s > now)
			break;
		k->sum -= r->tokens;
		k->head = (k->head + 1) & (k->cap - 1);
		k->n--;
	}
	if (k->n == 0) {
		k->sum = 0;
		k->head = 0;
	}
	/* give memory back after a burst (best effort) */
	if (k->cap > 4 * LOCAL_MIN_CAP && k->n < k->cap / 8) {
		size_t cap = k->cap;

		while (cap > 4 * LOCAL_MIN_CAP && k->n < cap / 8)
			cap /= 2;
		(void)ring_resize(k, cap);
	}
}

/* Removes keys holding nothing (empty log, no pending block). */
static void evict_idle(struct local *L)
{
	for (size_t b = 0; b < LOCAL_BUCKETS; b++) {
		struct lkey **pp = &L->buckets[b];

		while (*pp) {
			struct lkey *k = *pp;

			if (k->n == 0 && k->block_until <= k->clock) {
				*pp = k->next;
				key_free(k);
				L->nkeys--;
			} else {
				pp = &k->next;
			}
		}
	}
}

static struct lkey *find_key(struct local *L, const char *name)
{
	struct lkey *k = L->buckets[hash_key(name) % LOCAL_BUCKETS];

	for (; k; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static int get_key(struct local *L, const char *name, struct lkey **out)
{
	struct lkey *k = find_key(L, name);
	size_t b;

	if (k) {
		*out = k;
		return HARK_OK;
	}
	if (L->nkeys >= LOCAL_MAX_KEYS)
		evict_idle(L);
	if (L->nkeys >= LOCAL_MAX_KEYS)
		return HARK_ERR_LIMIT;
	k = calloc(1, sizeof(*k));
	if (!k)
		return HARK_ERR_NOMEM;
	k->name = strdup(name);
	k->ring = malloc(LOCAL_MIN_CAP * sizeof(*k->ring));
	if (!k->name || !k->ring) {
		key_free(k);
		return HARK_ERR_NOMEM;
	}
	k->cap = LOCAL_MIN_CAP;
	k->clock = -INFINITY;
	k->block_until = -INFINITY;
	b = hash_key(name) % LOCAL_BUCKETS;
	k->next = L->buckets[b];
	L->buckets[b] = k;
	L->nkeys++;
	*out = k;
	return HARK_OK;
}

static int valid_key(const char *key)
{
	return key && key[0] && strnlen(key, LOCAL_MAX_KEYLEN + 1) <= LOCAL_MAX_KEYLEN;
}

static int64_t whole_tokens(double tokens)
{
	if (!(tokens > 0))
		return 0;
	if (tokens > LOCAL_MAX_TOKENS)
		tokens = LOCAL_MAX_TOKENS;
	return (int64_t)ceil(tokens);
}

/* The most reservations a window may hold under lim (and the log cap). */
static size_t request_cap(const struct hark_llm_limits *lim)
{
	if (lim->rpm > 0 && lim->rpm < (double)HARK_LLM_LIMITER_LOCAL_MAX_LOG)
		return lim->rpm >= 1 ? (size_t)floor(lim->rpm) : 1;
	return HARK_LLM_LIMITER_LOCAL_MAX_LOG;
}

static int local_acquire(void *self, const char *key, const struct hark_llm_limits *lim,
			 double tokens, double now, int *admitted, double *retry_at,
			 int64_t *ticket)
{
	struct local *L = self;
	struct lkey *k = NULL;
	int limited, rc;
	int64_t tok;
	double W, rt;

	if (admitted)
		*admitted = 0;
	if (ticket)
		*ticket = 0;
	if (!L || !valid_key(key) || !lim || !admitted || isnan(tokens) || !isfinite(now) ||
	    isnan(lim->rpm) || isnan(lim->tpm))
		return HARK_ERR_INVALID_ARG;
	limited = lim->rpm > 0 || lim->tpm > 0;
	W = lim->window_s;
	if (limited && !(W > 0 && isfinite(W)))
		return HARK_ERR_INVALID_ARG;
	tok = whole_tokens(tokens);

	pthread_mutex_lock(&L->mu);
	rc = get_key(L, key, &k);
	if (rc != HARK_OK)
		goto out;
	if (now < k->clock)
		now = k->clock;
	else
		k->clock = now;
	if (limited)
		prune(k, now, W);

	rt = now;
	if (k->block_until > rt)
		rt = k->block_until;
	if (limited) {
		size_t R = request_cap(lim);

		if (k->n + 1 > R) {
			/* the oldest n-R+1 must leave: R-1 remain, one more fits */
			double t = at(k, k->n - R)->t + W;

			if (t > rt)
				rt = t;
		}
		if (lim->tpm > 0) {
			if ((double)tok > lim->tpm) {
				/* oversize: only into an empty window */
				if (k->n > 0) {
					double t = at(k, k->n - 1)->t + W;

					if (t > rt)
						rt = t;
				}
			} else if ((double)(k->sum + tok) > lim->tpm) {
				int64_t s = k->sum;
				size_t i = 0;
				double t;

				while (i < k->n && (double)(s + tok) > lim->tpm) {
					s -= at(k, i)->tokens;
					i++;
				}
				t = at(k, i - 1)->t + W;
				if (t > rt)
					rt = t;
			}
		}
	}
	if (rt > now) {
		if (retry_at)
			*retry_at = rt;
		goto out;
	}
	if (limited) {
		struct resv *r;

		if (k->n == k->cap) {
			rc = ring_resize(k, k->cap * 2);
			if (rc != HARK_OK)
				goto out;
		}
		r = at(k, k->n);
		r->t = now;
		r->tokens = tok;
		r->ticket = ++L->next_ticket;
		k->n++;
		k->sum += tok;
		if (ticket)
			*ticket = r->ticket;
	}
	*admitted = 1;
	if (retry_at)
		*retry_at = now;
out:
	pthread_mutex_unlock(&L->mu);
	return rc;
}

static int local_adjust(void *self, const char *key, int64_t ticket, double tokens)
{
	struct local *L = self;
	struct lkey *k;

	if (!L || !valid_key(key) || isnan(tokens))
		return HARK_ERR_INVALID_ARG;
	if (ticket <= 0)
		return HARK_OK;
	pthread_mutex_lock(&L->mu);
	k = find_key(L, key);
	if (k && k->n > 0) {
		/* tickets increase along the log: binary search */
		size_t lo = 0, hi = k->n;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (at(k, mid)->ticket < ticket)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < k->n && at(k, lo)->ticket == ticket) {
			struct resv *r = at(k, lo);
			int64_t tok = whole_tokens(tokens);

			k->sum += tok - r->tokens;
			r->tokens = tok;
		}
	}
	pthread_mutex_unlock(&L->mu);
	return HARK_OK;
}

static int local_block(void *self, const char *key, double until)
{
	struct local *L = self;
	struct lkey *k = NULL;
	int rc;

	if (!L || !valid_key(key) || isnan(until))
		return HARK_ERR_INVALID_ARG;
	pthread_mutex_lock(&L->mu);
	rc = get_key(L, key, &k);
	if (rc == HARK_OK && until > k->block_until)
		k->block_until = until;
	pthread_mutex_unlock(&L->mu);
	return rc;
}

static void local_destroy(void *self)
{
	struct local *L = self;

	if (!L)
		return;
	for (size_t b = 0; b < LOCAL_BUCKETS; b++) {
		struct lkey *k = L->buckets[b];

		while (k) {
			struct lkey *next = k->next;

			key_free(k);
			k = next;
		}
	}
	pthread_mutex_destroy(&L->mu);
	free(L);
}

static const struct hark_llm_limiter_ops local_ops = {
	.name = "local",
	.acquire = local_acquire,
	.adjust = local_adjust,
	.block = local_block,
	.destroy = local_destroy,
};

int hark_llm_limiter_local_new(struct hark_llm_limiter **out)
{
	struct hark_llm_limiter *l = NULL;
	struct local *L = NULL;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	l = calloc(1, sizeof(*l));
	L = calloc(1, sizeof(*L));
	if (!l || !L || pthread_mutex_init(&L->mu, NULL) != 0) {
		free(L);
		free(l);
		return HARK_ERR_NOMEM;
	}
	l->ops = &local_ops;
	l->self = L;
	*out = l;
	return HARK_OK;
}
