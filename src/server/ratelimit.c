/*
 * Token buckets behind ratelimit.h, in a chained hash table with a
 * recency list. Each node holds its key, its token count and the time of
 * its last refill; a take refills by (now - last) * rate (capped at burst)
 * and spends one token. The table never holds more than max_keys nodes:
 * a new key at capacity first evicts a bucket that is full again (a client
 * that has been quiet long enough to have lost nothing by forgetting it),
 * searching a bounded stretch from the least recently used end; only when
 * none is found does it evict the least recently used bucket. The hash is
 * seeded per table so that clients cannot pick keys that collide.
 */
#include "server/ratelimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RL_MAX_KEY 1024          /* longer keys are truncated */
#define RL_EVICT_SCAN 64         /* LRU-end nodes examined for a full bucket */
#define RL_MAX_TABLE ((size_t)1 << 26)

struct rl_node {
	struct rl_node *chain;            /* next in the hash chain */
	struct rl_node *newer, *older;    /* recency list */
	uint64_t hash;
	double tokens;
	double last;                      /* time of the last refill */
	double rate, burst;               /* as given on the last take */
	size_t klen;
	char key[];
};

struct hark_ratelimit {
	struct rl_node **slots;
	size_t nslots;                    /* power of two */
	size_t size, max_keys;
	struct rl_node *newest, *oldest;
	uint64_t seed;
};

static uint64_t rl_hash(uint64_t seed, const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull ^ seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	/* final avalanche so the seed reaches every bit */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

struct hark_ratelimit *hark_ratelimit_new(size_t max_keys)
{
	struct hark_ratelimit *rl;
	size_t n = 16;

	if (max_keys < 1)
		max_keys = 1;
	while (n < max_keys && n < RL_MAX_TABLE)
		n <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->slots = calloc(n, sizeof(*rl->slots));
	if (!rl->slots) {
		free(rl);
		return NULL;
	}
	rl->nslots = n;
	rl->max_keys = max_keys;
	if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != (ssize_t)sizeof(rl->seed))
		rl->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)rl;
	return rl;
}

void hark_ratelimit_free(struct hark_ratelimit *rl)
{
	struct rl_node *n, *next;

	if (!rl)
		return;
	for (n = rl->newest; n; n = next) {
		next = n->older;
		free(n);
	}
	free(rl->slots);
	free(rl);
}

size_t hark_ratelimit_size(const struct hark_ratelimit *rl)
{
	return rl ? rl->size : 0;
}

static void lru_unlink(struct hark_ratelimit *rl, struct rl_node *n)
{
	if (n->newer)
		n->newer->older = n->older;
	else
		rl->newest = n->older;
	if (n->older)
		n->older->newer = n->newer;
	else
		rl->oldest = n->newer;
	n->newer = n->older = NULL;
}

static void lru_push(struct hark_ratelimit *rl, struct rl_node *n)
{
	n->older = rl->newest;
	n->newer = NULL;
	if (rl->newest)
		rl->newest->newer = n;
	rl->newest = n;
	if (!rl->oldest)
		rl->oldest = n;
}

static void remove_node(struct hark_ratelimit *rl, struct rl_node *n)
{
	struct rl_node **pp = &rl->slots[n->hash & (rl->nslots - 1)];

	while (*pp && *pp != n)
		pp = &(*pp)->chain;
	if (*pp)
		*pp = n->chain;
	lru_unlink(rl, n);
	rl->size--;
	free(n);
}

/* Tokens n would hold at time now. */
static double refilled(const struct rl_node *n, double now)
{
	double t = n->tokens;

	if (now > n->last && n->rate > 0)
		t += (now - n->last) * n->rate;
	return t < n->burst ? t : n->burst;
}

/* Frees one node at capacity: a full bucket near the LRU end, else the LRU. */
static void evict_one(struct hark_ratelimit *rl, double now)
{
	struct rl_node *n = rl->oldest;

	for (int i = 0; n && i < RL_EVICT_SCAN; i++, n = n->newer)
		if (refilled(n, now) >= n->burst) {
			remove_node(rl, n);
			return;
		}
	if (rl->oldest)
		remove_node(rl, rl->oldest);
}

int hark_ratelimit_take(struct hark_ratelimit *rl, const char *key, double rate,
			double burst, double now, double *retry_after_s)
{
	struct rl_node *n;
	size_t klen;
	uint64_t h;

	if (retry_after_s)
		*retry_after_s = 0;
	if (!(rate > 0)) /* also NaN: unlimited */
		return 1;
	if (!rl || !key)
		return 1; /* nothing to account against: fail open */
	if (!(burst >= 1))
		burst = 1;
	klen = strnlen(key, RL_MAX_KEY);
	h = rl_hash(rl->seed, key, klen);
	for (n = rl->slots[h & (rl->nslots - 1)]; n; n = n->chain)
		if (n->hash == h && n->klen == klen && !memcmp(n->key, key, klen))
			break;
	if (n) {
		n->rate = rate;
		n->burst = burst;
		n->tokens = refilled(n, now);
		if (now > n->last)
			n->last = now;
		lru_unlink(rl, n);
		lru_push(rl, n);
	} else {
		size_t slot;

		if (rl->size >= rl->max_keys)
			evict_one(rl, now);
		n = malloc(sizeof(*n) + klen + 1);
		if (!n)
			return 1; /* out of memory: fail open rather than refuse */
		memcpy(n->key, key, klen);
		n->key[klen] = '\0';
		n->klen = klen;
		n->hash = h;
		n->rate = rate;
		n->burst = burst;
		n->tokens = burst;
		n->last = now;
		slot = h & (rl->nslots - 1);
		n->chain = rl->slots[slot];
		rl->slots[slot] = n;
		lru_push(rl, n);
		rl->size++;
	}
	if (n->tokens >= 1) {
		n->tokens -= 1;
		return 1;
	}
	if (retry_after_s)
		*retry_after_s = (1 - n->tokens) / rate;
	return 0;
}
