/*
 * Webhook delivery end to end: a loopback HTTP receiver (a socket server
 * thread in this test, bound to 127.0.0.1) answers the first delivery of a
 * finished job with 500 and the second with 200. The test checks that the
 * delivery was retried after the backoff, that both attempts carry the same
 * delivery id, the job.done / job.failed event names and a signature equal
 * to an HMAC-SHA256 of the received body computed here with OpenSSL, and
 * that the pool's counters agree. Single attempts are also checked against
 * a redirecting endpoint (never followed) and a closed port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audio_testutil.h"
#include "jobs/jobs.h"
#include "jobs/options.h"
#include "jobs/webhook.h"
#include "store/store.h"

#define SECRET "test-secret-0123456789"
#define MAX_REQ 16

/* ---- loopback receiver ------------------------------------------------------- */

struct request {
	char event[64];
	char delivery[64];
	char signature[128];
	char content_type[64];
	char *body;
	size_t body_len;
	double at;
};

struct receiver {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t mu;
	int stop;
	int statuses[MAX_REQ];  /* status to answer request i with (0 = 200) */
	const char *location;   /* sent with 3xx answers */
	struct request req[MAX_REQ];
	int n_req;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void header_value(const char *head, const char *name, char *out, size_t n)
{
	const char *p = head;
	size_t nl = strlen(name);

	out[0] = '\0';
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (!e)
				e = v + strlen(v);
			snprintf(out, n, "%.*s", (int)(e - v), v);
			return;
		}
	}
}

static void serve_one(struct receiver *rv, int c)
{
	char buf[65536];
	size_t len = 0;
	char *hdr_end = NULL;
	long clen = 0;
	char tmp[64];
	struct request rq;
	int status, idx;

	memset(&rq, 0, sizeof(rq));
	while (len < sizeof(buf) - 1) {
		struct pollfd pf = {c, POLLIN, 0};
		ssize_t r;

		if (poll(&pf, 1, 5000) <= 0)
			return;
		r = read(c, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
		buf[len] = '\0';
		if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			*hdr_end = '\0';
			header_value(buf, "Content-Length", tmp, sizeof(tmp));
			clen = atol(tmp);
			header_value(buf, "X-Hark-Event", rq.event, sizeof(rq.event));
			header_value(buf, "X-Hark-Delivery", rq.delivery, sizeof(rq.delivery));
			header_value(buf, "X-Hark-Signature", rq.signature, sizeof(rq.signature));
			header_value(buf, "Content-Type", rq.content_type, sizeof(rq.content_type));
		}
		if (hdr_end && (size_t)(hdr_end + 4 - buf) + (size_t)clen <= len)
			break;
	}
	if (!hdr_end)
		return;
	rq.body_len = (size_t)clen;
	rq.body = malloc(rq.body_len + 1);
	if (!rq.body)
		return;
	memcpy(rq.body, hdr_end + 4, rq.body_len);
	rq.body[rq.body_len] = '\0';
	rq.at = now_s();

	pthread_mutex_lock(&rv->mu);
	idx = rv->n_req;
	if (idx < MAX_REQ) {
		rv->req[idx] = rq;
		rv->n_req++;
		rq.body = NULL;
	}
	status = idx < MAX_REQ && rv->statuses[idx] ? rv->statuses[idx] : 200;
	pthread_mutex_unlock(&rv->mu);
	free(rq.body);

	if (status >= 300 && status < 400)
		len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 %d Moved\r\nLocation: %s\r\n"
				       "Content-Length: 0\r\nConnection: close\r\n\r\n", status,
				       rv->location ? rv->location : "/");
	else
		len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n"
				       "Connection: close\r\n\r\nok", status);
	if (write(c, buf, len) < 0) {
		/* the client went away; nothing to do */
	}
}

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;

	for (;;) {
		struct pollfd pf = {rv->fd, POLLIN, 0};
		int stop, c;

		pthread_mutex_lock(&rv->mu);
		stop = rv->stop;
		pthread_mutex_unlock(&rv->mu);
		if (stop)
			break;
		if (poll(&pf, 1, 50) <= 0)
			continue;
		c = accept(rv->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(rv, c);
		close(c);
	}
	return NULL;
}

static void receiver_start(struct receiver *rv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(rv, 0, sizeof(*rv));
	pthread_mutex_init(&rv->mu, NULL);
	rv->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(rv->fd >= 0);
	setsockopt(rv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	assert_int_equal(bind(rv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(rv->fd, 16), 0);
	assert_int_equal(getsockname(rv->fd, (struct sockaddr *)&a, &alen), 0);
	rv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&rv->thread, NULL, receiver_main, rv), 0);
}

static void receiver_stop(struct receiver *rv)
{
	pthread_mutex_lock(&rv->mu);
	rv->stop = 1;
	pthread_mutex_unlock(&rv->mu);
	pthread_join(rv->thread, NULL);
	close(rv->fd);
	for (int i = 0; i < rv->n_req; i++)
		free(rv->req[i].body);
	pthread_mutex_destroy(&rv->mu);
}

static int receiver_count(struct receiver *rv)
{
	int n;

	pthread_mutex_lock(&rv->mu);
	n = rv->n_req;
	pthread_mutex_unlock(&rv->mu);
	return n;
}

static int wait_requests(struct receiver *rv, int n, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (receiver_count(rv) < n && now_s() < end)
		usleep(20000);
	return receiver_count(rv) >= n;
}

/* The signature a receiver would compute: HMAC-SHA256 with OpenSSL directly. */
static void expected_signature(const char *body, size_t len, char *out, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t o;

	assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)body,
			     len, md, &mdlen));
	assert_int_equal(mdlen, 32);
	o = (size_t)snprintf(out, n, "sha256=");
	for (unsigned i = 0; i < mdlen; i++)
		o += (size_t)snprintf(out + o, n - o, "%02x", md[i]);
}

/* ---- store + pool fixtures ------------------------------------------------------- */

struct fixture {
	char dir[512];
	struct hark_store *st;
	struct hark_jobs *pool;
};

static void fixture_open(struct fixture *f)
{
	char err[256] = "";
	struct hark_store_params sp = hark_store_default_params();
	struct hark_jobs_params jp = hark_jobs_default_params();

	memset(f, 0, sizeof(*f));
	assert_int_equal(audio_tu_mkdtemp(f->dir, sizeof(f->dir)), 0);
	sp.sync_full = 0;
	if (hark_store_open(f->dir, &sp, &f->st, err, sizeof(err)) != HARK_OK)
		fail_msg("store open: %s", err);
	jp.data_dir = f->dir;
	jp.instance_id = "webhook-test";
	jp.n_workers = 1;
	jp.webhook_secret = SECRET;
	jp.webhook_timeout_s = 5;
	jp.webhook_max_attempts = 3;
	/* noop and transcript jobs need no model: a default that fails fast
	 * keeps the start-up preload from loading (and forking) anything. */
	jp.engine = "whisper";
	jp.model = "/nonexistent/ggml-none.bin";
	if (hark_jobs_start(f->st, &jp, &f->pool, err, sizeof(err)) != HARK_OK)
		fail_msg("jobs start: %s", err);
}

static void fixture_close(struct fixture *f)
{
	hark_jobs_free(f->pool);
	hark_store_close(f->st);
	audio_tu_rmtree(f->dir);
}

/* Inserts a job with a webhook; type "noop" or "transcript" (with text). */
static void insert_job(struct fixture *f, const char *type, const char *text, const char *url,
		       char id[HARK_ID_LEN])
{
	struct hark_job_options o = hark_job_options_default();
	struct hark_job j;
	char err[256];
	char *canon;

	assert_int_equal(hark_job_options_set(&o, "webhook", url, err, sizeof(err)), HARK_OK);
	canon = hark_job_options_canonical(&o);
	assert_non_null(canon);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	snprintf(j.type, sizeof(j.type), "%s", type);
	j.status = HARK_JOB_QUEUED;
	j.priority = HARK_PRIO_NORMAL;
	j.options = canon;
	j.input_text = (char *)text;
	j.webhook = o.webhook;
	j.max_attempts = 3;
	j.created_at = j.next_run_at = (double)time(NULL);
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);
	hark_jobs_wake(f->pool);
	snprintf(id, HARK_ID_LEN, "%s", j.id);
	free(canon);
	hark_job_options_clear(&o);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_sign_and_backoff(void **state)
{
	char sig[HARK_WEBHOOK_SIG_LEN], want[128];
	const char *body = "{\"id\":\"job_x\",\"status\":\"done\"}";

	(void)state;
	assert_int_equal(hark_webhook_sign(SECRET, body, strlen(body), sig), HARK_OK);
	expected_signature(body, strlen(body), want, sizeof(want));
	assert_string_equal(sig, want);
	assert_int_equal(strlen(sig), 71);
	/* A different body or secret gives a different signature. */
	assert_int_equal(hark_webhook_sign(SECRET, body, strlen(body) - 1, want), HARK_OK);
	assert_string_not_equal(sig, want);
	assert_int_equal(hark_webhook_sign("other", body, strlen(body), want), HARK_OK);
	assert_string_not_equal(sig, want);

	assert_true(hark_webhook_backoff(0) == 1.0);
	assert_true(hark_webhook_backoff(1) == 2.0);
	assert_true(hark_webhook_backoff(3) == 8.0);
	assert_true(hark_webhook_backoff(9) == 512.0);
	assert_true(hark_webhook_backoff(10) == 600.0);
	assert_true(hark_webhook_backoff(60) == 600.0);
}

/* One attempt at a time: 2xx ok, 500 and redirects fail, closed port fails. */
static void test_single_attempts(void **state)
{
	struct receiver rv;
	char url[128], err[256];
	const char *body = "{\"status\":\"failed\"}";
	long status;
	int closed_port;

	(void)state;
	receiver_start(&rv);
	rv.statuses[0] = 204;
	rv.statuses[1] = 500;
	rv.statuses[2] = 302;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rv.port);
	rv.location = url;

	assert_int_equal(hark_webhook_post(url, body, strlen(body), SECRET, 42, 5, NULL, NULL,
					   &status, err, sizeof(err)), HARK_OK);
	assert_int_equal(status, 204);
	assert_int_equal(hark_webhook_post(url, body, strlen(body), SECRET, 43, 5, NULL, NULL,
					   &status, err, sizeof(err)), HARK_ERR_NETWORK);
	assert_int_equal(status, 500);
	assert_non_null(strstr(err, "500"));
	/* A redirect is not followed: one request only, and it counts as failed. */
	assert_int_equal(hark_webhook_post(url, body, strlen(body), SECRET, 44, 5, NULL, NULL,
					   &status, err, sizeof(err)), HARK_ERR_NETWORK);
	assert_int_equal(status, 302);
	assert_int_equal(receiver_count(&rv), 3);
	assert_string_equal(rv.req[0].event, "job.failed");
	assert_string_equal(rv.req[0].delivery, "42");
	assert_string_equal(rv.req[1].delivery, "43");
	assert_string_equal(rv.req[0].content_type, "application/json");
	assert_string_equal(rv.req[0].body, body);
	closed_port = rv.port;
	receiver_stop(&rv);

	/* Nobody listens any more. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", closed_port);
	assert_int_equal(hark_webhook_post(url, body, strlen(body), SECRET, 45, 2, NULL, NULL,
					   &status, err, sizeof(err)), HARK_ERR_NETWORK);
	assert_int_equal(status, 0);
	/* Only http(s). */
	assert_int_equal(hark_webhook_post("file:///etc/passwd", body, strlen(body), SECRET, 46, 2,
					   NULL, NULL, &status, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
}

static void check_signed(const struct request *rq)
{
	char want[128];

	expected_signature(rq->body, rq->body_len, want, sizeof(want));
	assert_string_equal(rq->signature, want);
	assert_string_equal(rq->content_type, "application/json");
}

/* A finished job's webhook fails once with 500 and is delivered on retry. */
static void test_retry_until_delivered(void **state)
{
	struct receiver rv;
	struct fixture f;
	struct hark_jobs_stats stats;
	char url[128], id[HARK_ID_LEN];
	json_t *root;
	double gap;

	(void)state;
	receiver_start(&rv);
	rv.statuses[0] = 500;
	rv.statuses[1] = 200;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/done", rv.port);
	fixture_open(&f);
	insert_job(&f, "noop", NULL, url, id);

	if (!wait_requests(&rv, 2, 20.0))
		fail_msg("expected 2 deliveries, got %d", receiver_count(&rv));
	/* Give a wrongly repeated delivery the chance to show up. */
	usleep(1500 * 1000);
	assert_int_equal(receiver_count(&rv), 2);
	for (int i = 0; i < 2; i++) {
		check_signed(&rv.req[i]);
		assert_string_equal(rv.req[i].event, "job.done");
		assert_true(rv.req[i].delivery[0] != '\0');
	}
	assert_string_equal(rv.req[0].delivery, rv.req[1].delivery);
	assert_string_equal(rv.req[0].body, rv.req[1].body);
	gap = rv.req[1].at - rv.req[0].at;
	/* First backoff is 1 s (idle poll granularity adds up to ~1 s). */
	assert_true(gap >= 0.9);
	assert_true(gap < 10.0);

	root = json_loads(rv.req[1].body, 0, NULL);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "id")), id);
	assert_string_equal(json_string_value(json_object_get(root, "status")), "done");
	json_decref(root);

	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.webhooks_sent, 1);
	assert_int_equal(stats.webhooks_failed, 0);
	fixture_close(&f);
	receiver_stop(&rv);
}

/* A failed job says job.failed; an endpoint that always fails is given up
 * after webhook_max_attempts (3 here: 1 s + 2 s of backoff). */
static void test_failed_job_given_up(void **state)
{
	struct receiver rv;
	struct fixture f;
	struct hark_jobs_stats stats;
	char url[128], id[HARK_ID_LEN];
	double end;

	(void)state;
	receiver_start(&rv);
	for (int i = 0; i < MAX_REQ; i++)
		rv.statuses[i] = 503;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/fail", rv.port);
	fixture_open(&f);
	/* A timing line that does not parse: a permanent format error. */
	insert_job(&f, "transcript", "1\n00:00:01,000 --> garbage\nhello\n", url, id);

	if (!wait_requests(&rv, 3, 30.0))
		fail_msg("expected 3 attempts, got %d", receiver_count(&rv));
	end = now_s() + 10.0;
	do {
		hark_jobs_get_stats(f.pool, &stats);
		if (stats.webhooks_failed == 1)
			break;
		usleep(50000);
	} while (now_s() < end);
	assert_int_equal(stats.webhooks_failed, 1);
	assert_int_equal(stats.webhooks_sent, 0);
	usleep(2500 * 1000);
	assert_int_equal(receiver_count(&rv), 3);
	for (int i = 0; i < 3; i++) {
		check_signed(&rv.req[i]);
		assert_string_equal(rv.req[i].event, "job.failed");
	}
	assert_non_null(strstr(rv.req[0].body, id));
	fixture_close(&f);
	receiver_stop(&rv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_and_backoff),
		cmocka_unit_test(test_single_attempts),
		cmocka_unit_test(test_retry_until_delivered),
		cmocka_unit_test(test_failed_job_given_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
