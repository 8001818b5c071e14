/*
 * Webhook delivery for the job service: one background thread takes due
 * deliveries from the store (hark_store_webhook_next), POSTs each job summary
 * with libcurl to its http(s) URL, signed with HMAC-SHA256 of the raw body,
 * and records the outcome: any 2xx removes the delivery, anything else
 * (connection error, timeout, other status) schedules the next attempt with
 * exponential backoff (1 s doubling, capped at 10 minutes) until the attempt
 * limit, after which the delivery is given up. Deliveries live in the store,
 * so a restart resumes them. Started and stopped by the worker pool.
 */
#ifndef HARK_JOBS_WEBHOOK_H
#define HARK_JOBS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define HARK_WEBHOOK_SIG_LEN 72 /* "sha256=" + 64 hex digits + NUL */
#define HARK_WEBHOOK_MAX_BACKOFF_S 600.0

/*
 * Signature header value of body (len bytes) under secret:
 * "sha256=<lowercase hex HMAC-SHA256(secret, body)>" into out. Returns 0, or
 * HARK_ERR_INVALID_ARG (NULL secret/out) / HARK_ERR_INTERNAL (OpenSSL).
 */
int hark_webhook_sign(const char *secret, const void *body, size_t len,
		      char out[HARK_WEBHOOK_SIG_LEN]);

/* Seconds to wait before the next try after a delivery has failed `attempts`
 * times so far (attempts >= 0): min(2^attempts, 600). */
double hark_webhook_backoff(int attempts);

/*
 * One delivery attempt: POSTs body (len bytes, a JSON job summary) to url
 * with the Content-Type, X-Hark-Event (job.<status> from the body's "status"
 * field), X-Hark-Delivery (delivery_id) and X-Hark-Signature headers. Only
 * http and https, no redirects, the response body is read and discarded (at
 * most 64 KiB). timeout_s bounds the whole attempt. cancel (may be NULL) is
 * polled during the transfer. *http_status gets the response status (0 when
 * no response). Returns 0 when a 2xx status came back; HARK_ERR_NETWORK
 * (message in err) otherwise; HARK_ERR_CANCELED when cancel fired.
 */
int hark_webhook_post(const char *url, const char *body, size_t len, const char *secret,
		      int64_t delivery_id, double timeout_s, int (*cancel)(void *), void *cancel_user,
		      long *http_status, char *err, size_t errlen);

struct hark_webhook_params {
	struct hark_store *st;     /* borrowed, must outlive the sender */
	const char *secret;        /* signing key (copied; required) */
	double timeout_s;          /* per attempt; <= 0 = 10 */
	int max_attempts;          /* <= 0 = 8 */
	double poll_s;             /* idle poll period; <= 0 = 1 */
};

struct hark_webhook_sender;

/* Starts the delivery thread. Errors: HARK_ERR_INVALID_ARG, HARK_ERR_NOMEM,
 * HARK_ERR_INTERNAL (thread or libcurl start-up), message in err. */
int hark_webhook_start(const struct hark_webhook_params *p, struct hark_webhook_sender **out,
		       char *err, size_t errlen);

/* A delivery may have been enqueued: look now. Thread-safe. NULL is a no-op. */
void hark_webhook_wake(struct hark_webhook_sender *s);

/* Deliveries that succeeded, and deliveries given up after the last attempt. */
void hark_webhook_counts(struct hark_webhook_sender *s, uint64_t *sent, uint64_t *failed);

/* Stops the thread (an attempt in flight is abandoned and stays due) and
 * frees s. NULL is a no-op. */
void hark_webhook_stop(struct hark_webhook_sender *s);

#endif /* HARK_JOBS_WEBHOOK_H */
