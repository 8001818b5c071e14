/*
 * Unit tests for the work queue (src/util/workq): FIFO order with one
 * thread, the pending cap (HARK_ERR_LIMIT while a task blocks the only
 * thread), hark_workq_free running every queued task before it returns,
 * submissions refused once shutdown began, and many producers against many
 * consumers losing or duplicating nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "hark/hark.h"
#include "util/workq.h"

/* ------------------------------------------------------------ ordering -- */

struct order_log {
	pthread_mutex_t mu;
	int seen[1000];
	int n;
};

struct order_item {
	struct order_log *log;
	int idx;
};

static void order_task(void *p)
{
	struct order_item *it = p;

	pthread_mutex_lock(&it->log->mu);
	it->log->seen[it->log->n++] = it->idx;
	pthread_mutex_unlock(&it->log->mu);
}

static void test_fifo_order(void **state)
{
	static struct order_log log = { .mu = PTHREAD_MUTEX_INITIALIZER };
	static struct order_item items[1000];
	struct hark_workq *q = hark_workq_new(1, 1000);

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 1000; i++) {
		items[i].log = &log;
		items[i].idx = i;
		assert_int_equal(hark_workq_submit(q, order_task, &items[i]), HARK_OK);
	}
	hark_workq_free(q);
	assert_int_equal(log.n, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(log.seen[i], i);
}

/* -------------------------------------------------------- cap and drain -- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int entered;       /* the blocking task has started */
	atomic_int ran;    /* plain tasks run */
};

static void gate_task(void *p)
{
	struct gate *g = p;

	pthread_mutex_lock(&g->mu);
	g->entered = 1;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void count_task(void *p)
{
	struct gate *g = p;

	atomic_fetch_add(&g->ran, 1);
}

static void gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	atomic_init(&g->ran, 0);
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->entered)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void test_cap_limit(void **state)
{
	struct gate g;
	struct hark_workq *q = hark_workq_new(1, 5);

	(void)state;
	gate_init(&g);
	assert_non_null(q);
	assert_int_equal(hark_workq_submit(q, gate_task, &g), HARK_OK);
	gate_wait_entered(&g); /* the only thread is now busy */
	assert_int_equal(hark_workq_pending(q), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(hark_workq_submit(q, count_task, &g), HARK_OK);
	assert_int_equal(hark_workq_pending(q), 5);
	assert_int_equal(hark_workq_submit(q, count_task, &g), HARK_ERR_LIMIT);
	assert_int_equal(hark_workq_submit(q, count_task, &g), HARK_ERR_LIMIT);
	assert_int_equal(hark_workq_pending(q), 5);
	assert_int_equal(atomic_load(&g.ran), 0);
	gate_open(&g);
	hark_workq_free(q);
	/* exactly the 5 accepted tasks ran; the refused ones never did */
	assert_int_equal(atomic_load(&g.ran), 5);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

/* A helper thread opens the gate after the main thread entered free(). */
static void *open_later(void *p)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	gate_open(p);
	return NULL;
}

static void test_free_runs_pending(void **state)
{
	struct gate g;
	pthread_t th;
	struct hark_workq *q = hark_workq_new(2, 1000);

	(void)state;
	gate_init(&g);
	assert_non_null(q);
	/* block both threads so everything else stays queued */
	assert_int_equal(hark_workq_submit(q, gate_task, &g), HARK_OK);
	assert_int_equal(hark_workq_submit(q, gate_task, &g), HARK_OK);
	for (int i = 0; i < 500; i++)
		assert_int_equal(hark_workq_submit(q, count_task, &g), HARK_OK);
	assert_true(hark_workq_pending(q) >= 498);
	assert_int_equal(pthread_create(&th, NULL, open_later, &g), 0);
	hark_workq_free(q); /* must wait for the gate, then drain all 500 */
	assert_int_equal(atomic_load(&g.ran), 500);
	pthread_join(th, NULL);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

/* ------------------------------------------------ submit during shutdown -- */

struct chain {
	struct hark_workq *q;
	atomic_int runs;
	atomic_int last_rc;
};

/* Resubmits itself until the queue refuses: ends only once free() began. */
static void chain_task(void *p)
{
	struct chain *c = p;
	int rc;

	atomic_fetch_add(&c->runs, 1);
	if (atomic_load(&c->runs) > 10000000)
		return; /* safety net: never loop forever if free() misbehaves */
	rc = hark_workq_submit(c->q, chain_task, c);
	atomic_store(&c->last_rc, rc);
}

static void test_submit_after_shutdown(void **state)
{
	struct chain c;

	(void)state;
	c.q = hark_workq_new(1, 4);
	assert_non_null(c.q);
	atomic_init(&c.runs, 0);
	atomic_init(&c.last_rc, -1);
	assert_int_equal(hark_workq_submit(c.q, chain_task, &c), HARK_OK);
	hark_workq_free(c.q);
	assert_int_equal(atomic_load(&c.last_rc), HARK_ERR_CANCELED);
	assert_true(atomic_load(&c.runs) >= 1);
	assert_true(atomic_load(&c.runs) <= 10000000);
}

/* ------------------------------------------------------- many producers -- */

#define N_PRODUCERS 4
#define PER_PRODUCER 5000

struct mp_shared {
	struct hark_workq *q;
	atomic_int hits[N_PRODUCERS * PER_PRODUCER];
	atomic_long sum;
	atomic_int refused;
};

struct mp_item {
	struct mp_shared *s;
	int id;
};

static void mp_task(void *p)
{
	struct mp_item *it = p;

	atomic_fetch_add(&it->s->hits[it->id], 1);
	atomic_fetch_add(&it->s->sum, it->id);
}

struct producer {
	struct mp_shared *s;
	struct mp_item *items;
	int base;
};

static void *producer_main(void *p)
{
	struct producer *pr = p;

	for (int i = 0; i < PER_PRODUCER; i++) {
		struct mp_item *it = &pr->items[pr->base + i];
		int rc;

		while ((rc = hark_workq_submit(pr->s->q, mp_task, it)) == HARK_ERR_LIMIT) {
			atomic_fetch_add(&pr->s->refused, 1);
			sched_yield();
		}
		if (rc != HARK_OK)
			return (void *)1;
	}
	return NULL;
}

static void test_many_producers(void **state)
{
	struct mp_shared *s = calloc(1, sizeof(*s));
	struct mp_item *items = calloc(N_PRODUCERS * PER_PRODUCER, sizeof(*items));
	struct producer pr[N_PRODUCERS];
	pthread_t th[N_PRODUCERS];
	long want = 0;

	(void)state;
	assert_non_null(s);
	assert_non_null(items);
	s->q = hark_workq_new(3, 64); /* small cap: producers do hit LIMIT */
	assert_non_null(s->q);
	for (int i = 0; i < N_PRODUCERS * PER_PRODUCER; i++) {
		items[i].s = s;
		items[i].id = i;
		want += i;
	}
	for (int t = 0; t < N_PRODUCERS; t++) {
		pr[t].s = s;
		pr[t].items = items;
		pr[t].base = t * PER_PRODUCER;
		assert_int_equal(pthread_create(&th[t], NULL, producer_main, &pr[t]), 0);
	}
	for (int t = 0; t < N_PRODUCERS; t++) {
		void *ret = NULL;

		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	hark_workq_free(s->q);
	for (int i = 0; i < N_PRODUCERS * PER_PRODUCER; i++)
		assert_int_equal(atomic_load(&s->hits[i]), 1);
	assert_int_equal(atomic_load(&s->sum), want);
	free(items);
	free(s);
}

static void test_bad_args(void **state)
{
	(void)state;
	assert_null(hark_workq_new(0, 10));
	assert_null(hark_workq_new(2, 0));
	assert_int_equal(hark_workq_pending(NULL), 0);
	hark_workq_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_order),
		cmocka_unit_test(test_cap_limit),
		cmocka_unit_test(test_free_runs_pending),
		cmocka_unit_test(test_submit_after_shutdown),
		cmocka_unit_test(test_many_producers),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
