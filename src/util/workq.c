/*
 * Fixed-size thread pool behind workq.h: a mutex-guarded ring buffer of
 * (fn, arg) pairs with capacity max_pending, served by n_threads threads
 * that block on a condition variable. Tasks are taken in submission order.
 * Shutdown (hark_workq_free) refuses further submissions, lets the threads
 * drain every queued task, then joins them; nothing queued is ever dropped.
 */
#include "util/workq.h"

#include <pthread.h>
#include <stdlib.h>

#include "hark/hark.h"

#define WORKQ_MAX_THREADS 256

struct workq_task {
	hark_workq_fn fn;
	void *arg;
};

struct hark_workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* signalled on submit and on shutdown */
	struct workq_task *ring;    /* max_pending slots */
	size_t cap, head, len;      /* head: oldest task */
	int stopping;
	int n_threads;              /* threads actually started */
	pthread_t *threads;
};

static void *workq_main(void *p)
{
	struct hark_workq *q = p;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->len == 0 && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->len == 0)
			break; /* stopping and drained */
		struct workq_task t = q->ring[q->head];

		q->head = (q->head + 1) % q->cap;
		q->len--;
		pthread_mutex_unlock(&q->mu);
		t.fn(t.arg);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Stops and joins the started threads, then frees everything. */
static void workq_destroy(struct hark_workq *q)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q->threads);
	free(q->ring);
	free(q);
}

struct hark_workq *hark_workq_new(int n_threads, size_t max_pending)
{
	struct hark_workq *q;

	if (n_threads < 1 || max_pending < 1 || n_threads > WORKQ_MAX_THREADS ||
	    max_pending > ((size_t)1 << 28))
		return NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->ring = calloc(max_pending, sizeof(*q->ring));
	q->threads = calloc((size_t)n_threads, sizeof(*q->threads));
	if (!q->ring || !q->threads) {
		free(q->ring);
		free(q->threads);
		free(q);
		return NULL;
	}
	q->cap = max_pending;
	if (pthread_mutex_init(&q->mu, NULL) != 0) {
		free(q->ring);
		free(q->threads);
		free(q);
		return NULL;
	}
	if (pthread_cond_init(&q->cv, NULL) != 0) {
		pthread_mutex_destroy(&q->mu);
		free(q->ring);
		free(q->threads);
		free(q);
		return NULL;
	}
	for (int i = 0; i < n_threads; i++) {
		if (pthread_create(&q->threads[i], NULL, workq_main, q) != 0) {
			workq_destroy(q);
			return NULL;
		}
		q->n_threads++;
	}
	return q;
}

int hark_workq_submit(struct hark_workq *q, hark_workq_fn fn, void *arg)
{
	int rc = HARK_OK;

	if (!q || !fn)
		return HARK_ERR_INVALID_ARG;
	pthread_mutex_lock(&q->mu);
	if (q->stopping) {
		rc = HARK_ERR_CANCELED;
	} else if (q->len >= q->cap) {
		rc = HARK_ERR_LIMIT;
	} else {
		size_t tail = (q->head + q->len) % q->cap;

		q->ring[tail].fn = fn;
		q->ring[tail].arg = arg;
		q->len++;
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

size_t hark_workq_pending(struct hark_workq *q)
{
	size_t n;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->mu);
	n = q->len;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void hark_workq_free(struct hark_workq *q)
{
	if (q)
		workq_destroy(q);
}
