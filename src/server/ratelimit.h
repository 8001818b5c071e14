/*
 * Token-bucket rate limiting keyed by a string (an API key id or a client
 * IP). A bucket holds up to burst tokens and refills at rate tokens per
 * second; each request takes one. The table is bounded: idle buckets (full
 * again) are evicted first when it is at capacity, so a flood of distinct
 * IPs cannot grow memory without bound. Not thread-safe by design: the
 * server's single service thread owns it.
 */
#ifndef HARK_SERVER_RATELIMIT_H
#define HARK_SERVER_RATELIMIT_H

#include <stddef.h>

struct hark_ratelimit;

/* max_keys: table capacity (e.g. 100000). NULL on allocation failure. */
struct hark_ratelimit *hark_ratelimit_new(size_t max_keys);
void hark_ratelimit_free(struct hark_ratelimit *rl);

/*
 * Takes one token from key's bucket at time now (seconds, monotonic).
 * rate <= 0 means unlimited (always allowed). Returns 1 if allowed; 0 if
 * not, with *retry_after_s (if non-NULL) set to the seconds until a token
 * is available (>= 1 when rounded up for Retry-After).
 */
int hark_ratelimit_take(struct hark_ratelimit *rl, const char *key, double rate,
			double burst, double now, double *retry_after_s);

/* Number of buckets currently held. */
size_t hark_ratelimit_size(const struct hark_ratelimit *rl);

#endif /* HARK_SERVER_RATELIMIT_H */
