/*
 * Fork-join thread pool (see tpool.h). Workers sleep on a condition variable
 * between runs after a short spin; a run publishes a new generation number,
 * every participant claims task indices from an atomic counter, and the
 * caller waits until every worker has left the generation.
 */
#include "util/tpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define TPOOL_MAX_THREADS 256
#define TPOOL_SPIN 4000

struct tpool_worker {
	struct hark_tpool *pool;
	int index;
	pthread_t th;
};

struct hark_tpool {
	int n_threads;
	int n_started;
	struct tpool_worker *workers;

	pthread_mutex_t run_lock;   /* serialises hark_tpool_run calls */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_cond_t done;

	/* current job */
	hark_tpool_fn fn;
	hark_tpool_fn_ex fn_ex;
	void *ctx;
	int n_tasks;
	atomic_int next;
	atomic_int n_left;          /* workers still inside the generation */
	atomic_uint gen;
	int stop;
};

static void tpool_work(struct hark_tpool *p, int thread)
{
	for (;;) {
		int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (t >= p->n_tasks)
			break;
		if (p->fn_ex)
			p->fn_ex(p->ctx, t, p->n_tasks, thread);
		else
			p->fn(p->ctx, t, p->n_tasks);
	}
}

static void *tpool_main(void *arg)
{
	struct tpool_worker *w = arg;
	struct hark_tpool *p = w->pool;
	unsigned seen = 0;

	for (;;) {
		unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
		for (int i = 0; g == seen && i < TPOOL_SPIN; i++) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
			g = atomic_load_explicit(&p->gen, memory_order_acquire);
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->stop)
				pthread_cond_wait(&p->wake, &p->mu);
			int stop = p->stop;
			pthread_mutex_unlock(&p->mu);
			if (stop && g == seen)
				return NULL;
		}
		seen = g;
		tpool_work(p, w->index);
		if (atomic_fetch_sub_explicit(&p->n_left, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

struct hark_tpool *hark_tpool_new(int n_threads)
{
	if (n_threads < 1)
		n_threads = 1;
	if (n_threads > TPOOL_MAX_THREADS)
		n_threads = TPOOL_MAX_THREADS;
	struct hark_tpool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->n_threads = n_threads;
	pthread_mutex_init(&p->run_lock, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->next, 0);
	atomic_init(&p->n_left, 0);
	atomic_init(&p->gen, 0);
	if (n_threads > 1) {
		p->workers = calloc((size_t)n_threads - 1, sizeof(*p->workers));
		if (!p->workers) {
			hark_tpool_free(p);
			return NULL;
		}
		for (int i = 0; i < n_threads - 1; i++) {
			p->workers[i].pool = p;
			p->workers[i].index = i + 1;
			if (pthread_create(&p->workers[i].th, NULL, tpool_main, &p->workers[i]) != 0) {
				hark_tpool_free(p);
				return NULL;
			}
			p->n_started++;
		}
	}
	return p;
}

int hark_tpool_n_threads(const struct hark_tpool *pool)
{
	return pool ? pool->n_threads : 1;
}

static void tpool_dispatch(struct hark_tpool *p, hark_tpool_fn fn, hark_tpool_fn_ex fn_ex,
			   void *ctx, int n_tasks)
{
	if (n_tasks <= 0)
		return;
	if (!p || p->n_started == 0 || n_tasks == 1) {
		for (int t = 0; t < n_tasks; t++) {
			if (fn_ex)
				fn_ex(ctx, t, n_tasks, 0);
			else
				fn(ctx, t, n_tasks);
		}
		return;
	}
	pthread_mutex_lock(&p->run_lock);
	p->fn = fn;
	p->fn_ex = fn_ex;
	p->ctx = ctx;
	p->n_tasks = n_tasks;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_store_explicit(&p->n_left, p->n_started, memory_order_relaxed);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	tpool_work(p, 0);

	for (int i = 0; i < TPOOL_SPIN && atomic_load_explicit(&p->n_left, memory_order_acquire) > 0; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	if (atomic_load_explicit(&p->n_left, memory_order_acquire) > 0) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load_explicit(&p->n_left, memory_order_acquire) > 0)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_unlock(&p->run_lock);
}

void hark_tpool_run(struct hark_tpool *pool, hark_tpool_fn fn, void *ctx, int n_tasks)
{
	if (fn)
		tpool_dispatch(pool, fn, NULL, ctx, n_tasks);
}

void hark_tpool_run_ex(struct hark_tpool *pool, hark_tpool_fn_ex fn, void *ctx, int n_tasks)
{
	if (fn)
		tpool_dispatch(pool, NULL, fn, ctx, n_tasks);
}

void hark_tpool_free(struct hark_tpool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->mu);
	for (int i = 0; i < pool->n_started; i++)
		pthread_join(pool->workers[i].th, NULL);
	free(pool->workers);
	pthread_cond_destroy(&pool->done);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->mu);
	pthread_mutex_destroy(&pool->run_lock);
	free(pool);
}
