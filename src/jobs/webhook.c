/*
 * Webhook delivery (src/jobs/webhook.h): a thread that polls the store for
 * due deliveries and POSTs them with libcurl (a fresh easy handle per
 * attempt, http/https only, no redirects, bounded time, response body
 * discarded under a cap), signing each body with HMAC-SHA256 (OpenSSL).
 * Outcomes are written back to the store: success removes the delivery, a
 * failure schedules the next attempt with exponential backoff.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jobs/webhook.h"
#include "util/errbuf.h"

#define RESPONSE_CAP (64 * 1024)

int hark_webhook_sign(const char *secret, const void *body, size_t len,
		      char out[HARK_WEBHOOK_SIG_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t klen;

	if (!secret || !out || (!body && len))
		return HARK_ERR_INVALID_ARG;
	out[0] = '\0';
	klen = strlen(secret);
	if (klen > INT_MAX)
		return HARK_ERR_INVALID_ARG;
	if (!HMAC(EVP_sha256(), secret, (int)klen, body ? body : (const void *)"", len, md, &mdlen) ||
	    mdlen != 32)
		return HARK_ERR_INTERNAL;
	memcpy(out, "sha256=", 7);
	for (unsigned i = 0; i < mdlen; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[7 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[7 + 2 * mdlen] = '\0';
	return HARK_OK;
}

double hark_webhook_backoff(int attempts)
{
	if (attempts < 0)
		attempts = 0;
	if (attempts >= 10)
		return HARK_WEBHOOK_MAX_BACKOFF_S;
	double d = (double)(1 << attempts);
	return d < HARK_WEBHOOK_MAX_BACKOFF_S ? d : HARK_WEBHOOK_MAX_BACKOFF_S;
}

/* "job.done" / "job.failed" from the body's status ("job.unknown" else). */
static void event_name(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const char *status = NULL;
	json_t *v = root ? json_object_get(root, "status") : NULL;

	if (json_is_string(v))
		status = json_string_value(v);
	snprintf(out, outlen, "job.%s", status && strlen(status) < 32 &&
		 strspn(status, "abcdefghijklmnopqrstuvwxyz_") == strlen(status) ? status : "unknown");
	json_decref(root);
}

struct sink {
	size_t got;
};

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct sink *s = user;
	size_t n = size * nmemb;

	(void)ptr;
	if (s->got + n > RESPONSE_CAP)
		return 0; /* abort: the endpoint talks too much */
	s->got += n;
	return n;
}

struct xfer_cancel {
	int (*fn)(void *);
	void *user;
};

static int xfer_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer_cancel *c = user;

	(void)dt, (void)dn, (void)ut, (void)un;
	return c->fn && c->fn(c->user) ? 1 : 0;
}

int hark_webhook_post(const char *url, const char *body, size_t len, const char *secret,
		      int64_t delivery_id, double timeout_s, int (*cancel)(void *), void *cancel_user,
		      long *http_status, char *err, size_t errlen)
{
	char sig[HARK_WEBHOOK_SIG_LEN], hdr[160], ev[48];
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *tmp;
	struct xfer_cancel xc = {cancel, cancel_user};
	struct sink sink = {0};
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	int rc;

	if (http_status)
		*http_status = 0;
	if (!url || !body || !secret)
		return HARK_ERR_INVALID_ARG;
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		hark_errbuf_set(err, errlen, "webhook URL is not http(s)");
		return HARK_ERR_INVALID_ARG;
	}
	rc = hark_webhook_sign(secret, body, len, sig);
	if (rc != HARK_OK)
		return rc;
	event_name(body, len, ev, sizeof(ev));

	static const char *const fixed[] = {"Content-Type: application/json", "Expect:",
					    "User-Agent: hark/" HARK_VERSION_STRING};
	for (size_t i = 0; i < 3; i++) {
		if (!(tmp = curl_slist_append(headers, fixed[i])))
			goto nomem;
		headers = tmp;
	}
	snprintf(hdr, sizeof(hdr), "X-Hark-Event: %s", ev);
	if (!(tmp = curl_slist_append(headers, hdr)))
		goto nomem;
	headers = tmp;
	snprintf(hdr, sizeof(hdr), "X-Hark-Delivery: %lld", (long long)delivery_id);
	if (!(tmp = curl_slist_append(headers, hdr)))
		goto nomem;
	headers = tmp;
	snprintf(hdr, sizeof(hdr), "X-Hark-Signature: %s", sig);
	if (!(tmp = curl_slist_append(headers, hdr)))
		goto nomem;
	headers = tmp;

	c = curl_easy_init();
	if (!c)
		goto nomem;
	if (timeout_s <= 0)
		timeout_s = 10;
	long tmo_ms = timeout_s > 3600 ? 3600000L : (long)(timeout_s * 1000.0);
	if (tmo_ms < 1)
		tmo_ms = 1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tmo_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, tmo_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &xc);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 0L);

	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (http_status)
		*http_status = status;
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		hark_errbuf_set(err, errlen, "canceled");
		rc = HARK_ERR_CANCELED;
	} else if (status >= 200 && status < 300 &&
		   (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)) {
		rc = HARK_OK; /* a 2xx counts even if its body was cut at the cap */
	} else if (cc != CURLE_OK) {
		hark_errbuf_set(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
		rc = HARK_ERR_NETWORK;
	} else {
		hark_errbuf_set(err, errlen, "HTTP status %ld", status);
		rc = HARK_ERR_NETWORK;
	}
	goto out;
nomem:
	rc = HARK_ERR_NOMEM;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	return rc;
}

/* ---- the delivery thread ---------------------------------------------------- */

struct hark_webhook_sender {
	struct hark_store *st;
	char *secret;
	double timeout_s;
	int max_attempts;
	double poll_s;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int woken;            /* under mu */
	atomic_int stop;
	atomic_uint_fast64_t sent, failed;
	int curl_inited;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int sender_stopping(void *user)
{
	struct hark_webhook_sender *s = user;

	return atomic_load(&s->stop);
}

/* Sleeps up to secs unless woken or stopped. */
static void sender_wait(struct hark_webhook_sender *s, double secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->woken && !atomic_load(&s->stop)) {
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	s->woken = 0;
	pthread_mutex_unlock(&s->mu);
}

static void *sender_main(void *arg)
{
	struct hark_webhook_sender *s = arg;

	while (!atomic_load(&s->stop)) {
		struct hark_webhook w;
		char err[256] = "";
		long status = 0;
		int rc;

		memset(&w, 0, sizeof(w));
		rc = hark_store_webhook_next(s->st, now_s(), s->max_attempts, &w);
		if (rc != HARK_OK) {
			hark_webhook_clear(&w);
			sender_wait(s, s->poll_s);
			continue;
		}
		rc = hark_webhook_post(w.url, w.body ? w.body : "{}", w.body ? strlen(w.body) : 2,
				       s->secret, w.id, s->timeout_s, sender_stopping, s, &status,
				       err, sizeof(err));
		if (rc == HARK_ERR_CANCELED) {
			/* Shutting down: leave the delivery due for the next start. */
			hark_webhook_clear(&w);
			break;
		}
		if (rc == HARK_OK) {
			if (hark_store_webhook_update(s->st, w.id, 1, 0) == HARK_OK)
				atomic_fetch_add(&s->sent, 1);
		} else {
			double next = now_s() + hark_webhook_backoff(w.attempts);
			if (hark_store_webhook_update(s->st, w.id, 0, next) == HARK_OK &&
			    w.attempts + 1 >= s->max_attempts) {
				atomic_fetch_add(&s->failed, 1);
				fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"webhook given up\","
					"\"job\":\"%s\",\"attempts\":%d,\"status\":%ld}\n",
					w.job_id, w.attempts + 1, status);
			}
		}
		hark_webhook_clear(&w);
	}
	return NULL;
}

int hark_webhook_start(const struct hark_webhook_params *p, struct hark_webhook_sender **out,
		       char *err, size_t errlen)
{
	struct hark_webhook_sender *s = NULL;
	pthread_condattr_t ca;
	int rc;

	if (!p || !p->st || !p->secret || !*p->secret || !out) {
		hark_errbuf_set(err, errlen, "webhook sender needs a store and a secret");
		return HARK_ERR_INVALID_ARG;
	}
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->secret = strdup(p->secret))) {
		free(s);
		return HARK_ERR_NOMEM;
	}
	s->st = p->st;
	s->timeout_s = p->timeout_s > 0 ? p->timeout_s : 10.0;
	s->max_attempts = p->max_attempts > 0 ? p->max_attempts : 8;
	s->poll_s = p->poll_s > 0 ? p->poll_s : 1.0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		hark_errbuf_set(err, errlen, "libcurl initialisation failed");
		rc = HARK_ERR_INTERNAL;
		goto fail_alloc;
	}
	s->curl_inited = 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
		hark_errbuf_set(err, errlen, "cannot start the webhook thread");
		rc = HARK_ERR_INTERNAL;
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mu);
		curl_global_cleanup();
		goto fail_alloc;
	}
	*out = s;
	return HARK_OK;
fail_alloc:
	free(s->secret);
	free(s);
	return rc;
}

void hark_webhook_wake(struct hark_webhook_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->woken = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

void hark_webhook_counts(struct hark_webhook_sender *s, uint64_t *sent, uint64_t *failed)
{
	if (sent)
		*sent = s ? atomic_load(&s->sent) : 0;
	if (failed)
		*failed = s ? atomic_load(&s->failed) : 0;
}

void hark_webhook_stop(struct hark_webhook_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stop, 1);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	if (s->curl_inited)
		curl_global_cleanup();
	/* Scrub the key before the memory is reused. */
	OPENSSL_cleanse(s->secret, strlen(s->secret));
	free(s->secret);
	free(s);
}
