/*
 * Unit tests for the in-process LLM rate limiter (src/llm/limiter_local) on
 * a synthetic clock. Hand-computed cases pin the request and token budgets
 * and their retry times; randomized workloads with varied token sizes,
 * every refused request re-issued exactly at its retry_at, are checked by
 * brute force over the admitted log to never hold more than rpm requests or
 * tpm tokens in any window, and retry_at is shown tight (a try a hair
 * before it fails, at it succeeds). Also: an oversize request goes into an
 * empty window only, adjust frees and consumes budget, Retry-After blocks
 * stack with the window, keys are independent, the clock never goes back
 * per key, the per-key log is bounded when only tpm is set, and threads
 * hammering one key in lock-step rounds never exceed the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>

#include "hark/hark.h"
#include "llm/limiter.h"

struct adm {
	double t;
	double tokens;
};

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static int acq(struct hark_llm_limiter *l, const char *key, const struct hark_llm_limits *lim,
	       double tokens, double now, double *retry_at, int64_t *ticket)
{
	int admitted = -1;
	double ra = -1;
	int64_t tk = -1;

	assert_int_equal(l->ops->acquire(l->self, key, lim, tokens, now, &admitted, &ra, &tk),
			 HARK_OK);
	assert_true(admitted == 0 || admitted == 1);
	if (!admitted) {
		assert_true(ra > now);
		assert_int_equal(tk, 0);
	}
	if (retry_at)
		*retry_at = ra;
	if (ticket)
		*ticket = tk;
	return admitted;
}

/*
 * Brute force: for every admitted time x, the reservations alive at x
 * (t <= x < t + W: a reservation occupies [t, t + W), written as in
 * floating point the limiter must agree with) number at most rpm and carry
 * at most tpm tokens. Windows ending at an admission are the fullest ones.
 * Returns the largest request count seen in a window.
 */
static int check_windows(const struct adm *a, size_t n, const struct hark_llm_limits *lim)
{
	int worst = 0;

	for (size_t i = 0; i < n; i++) {
		double x = a[i].t, toks = 0;
		int cnt = 0;

		for (size_t j = 0; j < n; j++) {
			if (a[j].t + lim->window_s > x && a[j].t <= x) {
				cnt++;
				toks += a[j].tokens;
			}
		}
		if (lim->rpm > 0 && cnt > lim->rpm) {
			print_error("window ending %.9f holds %d requests > rpm %.0f\n", x, cnt,
				    lim->rpm);
			fail();
		}
		if (lim->tpm > 0 && toks > lim->tpm) {
			print_error("window ending %.9f holds %.0f tokens > tpm %.0f\n", x, toks,
				    lim->tpm);
			fail();
		}
		if (cnt > worst)
			worst = cnt;
	}
	return worst;
}

static void test_requests_per_window_exact(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 3, .tpm = 0, .window_s = 60};
	double ra;
	int64_t t1, t2;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_string_equal(l->ops->name, "local");
	assert_int_equal(acq(l, "p/m", &lim, 10, 0, &ra, &t1), 1);
	assert_true(t1 > 0);
	assert_int_equal(acq(l, "p/m", &lim, 10, 1, &ra, &t2), 1);
	assert_true(t2 > t1);
	assert_int_equal(acq(l, "p/m", &lim, 10, 2, &ra, NULL), 1);
	assert_int_equal(acq(l, "p/m", &lim, 10, 3, &ra, NULL), 0);
	assert_true(ra == 60.0); /* the reservation at 0 leaves at 60 */
	assert_int_equal(acq(l, "p/m", &lim, 10, nextafter(60.0, 0), &ra, NULL), 0);
	assert_true(ra == 60.0);
	assert_int_equal(acq(l, "p/m", &lim, 10, 60.0, &ra, NULL), 1);
	/* full again: next slot when the one at 1 leaves */
	assert_int_equal(acq(l, "p/m", &lim, 10, 60.0, &ra, NULL), 0);
	assert_true(ra == 61.0);
	/* another key has its own budget */
	assert_int_equal(acq(l, "p/other", &lim, 10, 60.0, &ra, NULL), 1);
	hark_llm_limiter_free(l);
}

static void test_tokens_per_window_exact(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 0, .tpm = 100, .window_s = 60};
	double ra;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 40, 0, &ra, NULL), 1);
	assert_int_equal(acq(l, "k", &lim, 30, 10, &ra, NULL), 1);
	assert_int_equal(acq(l, "k", &lim, 20, 20, &ra, NULL), 1);
	/* 90 used: 10 fits, 11 does not */
	assert_int_equal(acq(l, "k", &lim, 11, 30, &ra, NULL), 0);
	assert_true(ra == 60.0);
	/* 50 needs the 40 gone (50 + 50 = 100) */
	assert_int_equal(acq(l, "k", &lim, 50, 30, &ra, NULL), 0);
	assert_true(ra == 60.0);
	/* 80 needs the 40 and the 30 gone (20 + 80 = 100) */
	assert_int_equal(acq(l, "k", &lim, 80, 30, &ra, NULL), 0);
	assert_true(ra == 70.0);
	/* 100 needs everything gone */
	assert_int_equal(acq(l, "k", &lim, 100, 30, &ra, NULL), 0);
	assert_true(ra == 80.0);
	assert_int_equal(acq(l, "k", &lim, 10, 30, &ra, NULL), 1);
	/* fractional tokens count as whole ones: 100 used now */
	assert_int_equal(acq(l, "k", &lim, 0.2, 30, &ra, NULL), 0);
	assert_true(ra == 60.0);
	/* at 69.999 the 40 has left (30+20+10 used): 70 waits for the 30 */
	assert_int_equal(acq(l, "k", &lim, 70, 69.999, &ra, NULL), 0);
	assert_true(ra == 70.0);
	assert_int_equal(acq(l, "k", &lim, 70, 70, &ra, NULL), 1);
	hark_llm_limiter_free(l);
}

static void test_oversize_needs_empty_window(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 10, .tpm = 100, .window_s = 30};
	double ra;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	/* empty window: admitted although it exceeds the whole budget */
	assert_int_equal(acq(l, "k", &lim, 250, 0, &ra, NULL), 1);
	/* nothing else fits until it leaves */
	assert_int_equal(acq(l, "k", &lim, 1, 5, &ra, NULL), 0);
	assert_true(ra == 30.0);
	assert_int_equal(acq(l, "k", &lim, 1, 30, &ra, NULL), 1);
	assert_int_equal(acq(l, "k", &lim, 1, 40, &ra, NULL), 1);
	/* oversize with others in the window: waits for the newest to leave */
	assert_int_equal(acq(l, "k", &lim, 500, 41, &ra, NULL), 0);
	assert_true(ra == 70.0);
	assert_int_equal(acq(l, "k", &lim, 500, nextafter(70.0, 0), &ra, NULL), 0);
	assert_int_equal(acq(l, "k", &lim, 500, 70.0, &ra, NULL), 1);
	hark_llm_limiter_free(l);
}

static void test_adjust_frees_and_consumes(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 0, .tpm = 100, .window_s = 60};
	double ra;
	int64_t tk, tk2;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 80, 0, &ra, &tk), 1);
	assert_int_equal(acq(l, "k", &lim, 50, 1, &ra, NULL), 0);
	/* the estimate was high: the response said 30 */
	assert_int_equal(l->ops->adjust(l->self, "k", tk, 30), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 50, 1, &ra, &tk2), 1); /* 80 used */
	assert_int_equal(acq(l, "k", &lim, 20, 2, &ra, NULL), 1); /* 100 used */
	assert_int_equal(acq(l, "k", &lim, 1, 2, &ra, NULL), 0);
	/* the 50 was really 10: 40 free */
	assert_int_equal(l->ops->adjust(l->self, "k", tk2, 10), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 40, 3, &ra, NULL), 1);
	assert_int_equal(acq(l, "k", &lim, 1, 3, &ra, NULL), 0);
	/* adjust up consumes: the first one was really 60 -> over by 30, and
	 * the retry time waits for it (tokens 60,10,20,40 at 0,1,2,3) */
	assert_int_equal(l->ops->adjust(l->self, "k", tk, 60), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 30, 4, &ra, NULL), 0);
	assert_true(ra == 60.0); /* the 60 gone: 70 used + 30 */
	/* unknown ticket, unknown key, ticket 0: ignored */
	assert_int_equal(l->ops->adjust(l->self, "k", 999999, 1), HARK_OK);
	assert_int_equal(l->ops->adjust(l->self, "nokey", tk, 1), HARK_OK);
	assert_int_equal(l->ops->adjust(l->self, "k", 0, 1), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 30, 4, &ra, NULL), 0);
	assert_true(ra == 60.0);
	/* a ticket that has left the window is ignored */
	assert_int_equal(acq(l, "k", &lim, 30, 61, &ra, NULL), 1);
	assert_int_equal(l->ops->adjust(l->self, "k", tk, 1000), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 10, 61, &ra, NULL), 1); /* 20+40+30+10 */
	hark_llm_limiter_free(l);
}

static void test_block(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 2, .tpm = 0, .window_s = 60};
	struct hark_llm_limits none = {0, 0, 60};
	double ra;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_int_equal(l->ops->block(l->self, "k", 50), HARK_OK);
	/* an earlier block does not shorten it */
	assert_int_equal(l->ops->block(l->self, "k", 20), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 1, 10, &ra, NULL), 0);
	assert_true(ra == 50.0);
	/* blocks apply to unlimited models too */
	assert_int_equal(acq(l, "k", &none, 1, 10, &ra, NULL), 0);
	assert_true(ra == 50.0);
	assert_int_equal(acq(l, "k", &lim, 1, 50, &ra, NULL), 1);
	assert_int_equal(acq(l, "k", &lim, 1, 51, &ra, NULL), 1);
	/* the later of block and window */
	assert_int_equal(l->ops->block(l->self, "k", 100), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 1, 52, &ra, NULL), 0);
	assert_true(ra == 110.0);
	assert_int_equal(l->ops->block(l->self, "k", 200), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 1, 52, &ra, NULL), 0);
	assert_true(ra == 200.0);
	/* other keys are not blocked */
	assert_int_equal(acq(l, "k2", &lim, 1, 52, &ra, NULL), 1);
	hark_llm_limiter_free(l);
}

static void test_unlimited_and_args(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits none = {0, 0, 0};
	struct hark_llm_limits bad = {5, 0, 0};
	double ra;
	int64_t tk;
	int adm;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(acq(l, "free", &none, 1e6, 1.0, &ra, &tk), 1);
		assert_int_equal(tk, 0); /* nothing logged */
	}
	assert_int_equal(l->ops->acquire(l->self, NULL, &none, 1, 0, &adm, &ra, &tk),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(l->ops->acquire(l->self, "k", NULL, 1, 0, &adm, &ra, &tk),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(l->ops->acquire(l->self, "k", &bad, 1, 0, &adm, &ra, &tk),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(l->ops->acquire(l->self, "k", &none, NAN, 0, &adm, &ra, &tk),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(adm, 0);
	hark_llm_limiter_free(l);
	hark_llm_limiter_free(NULL);
}

static void test_clock_never_goes_back(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 1, .tpm = 0, .window_s = 60};
	double ra;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_int_equal(acq(l, "k", &lim, 1, 100, &ra, NULL), 1);
	/* a caller whose clock read is older arrives "at 100" */
	assert_int_equal(acq(l, "k", &lim, 1, 30, &ra, NULL), 0);
	assert_true(ra == 160.0);
	/* and after a refusal at 150, a read of 140 cannot find the slot that
	 * would have been free by then in a world where time went back */
	assert_int_equal(acq(l, "k", &lim, 1, 150, &ra, NULL), 0);
	assert_int_equal(acq(l, "k", &lim, 1, 160, &ra, NULL), 1);

	/* tokens: 100 at 0 fills the window; a call at 65 drops it; a stale
	 * read of 30 must not slip 100 more into the window that still held
	 * the first 100 at 30: it is recorded at 65, which the next refusal's
	 * retry time shows */
	lim = (struct hark_llm_limits){.rpm = 0, .tpm = 100, .window_s = 60};
	assert_int_equal(acq(l, "t", &lim, 100, 0, &ra, NULL), 1);
	assert_int_equal(acq(l, "t", &lim, 0, 65, &ra, NULL), 1);
	assert_int_equal(acq(l, "t", &lim, 100, 30, &ra, NULL), 1);
	assert_int_equal(acq(l, "t", &lim, 1, 66, &ra, NULL), 0);
	assert_true(ra == 125.0);
	hark_llm_limiter_free(l);
}

/* One randomized run: each refused request is re-issued at its retry_at. */
static void run_random(uint64_t seed, size_t nreq)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim;
	struct adm *a = calloc(nreq, sizeof(*a));
	uint64_t s = seed;
	double now = 1000.0 * rng_unit(&s);
	size_t n = 0, refused = 0;
	int worst;

	assert_non_null(a);
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	lim.rpm = 1 + (double)(rng_next(&s) % 12);
	lim.tpm = 30 + (double)(rng_next(&s) % 500);
	lim.window_s = 1 + 99 * rng_unit(&s);
	if (seed % 5 == 0)
		lim.rpm = 0; /* tokens only */
	if (seed % 7 == 0)
		lim.tpm = 0; /* requests only */
	while (n < nreq) {
		double tokens, ra = 0, gap;
		unsigned kind = (unsigned)(rng_next(&s) % 10);

		/* varied sizes: tiny, medium, large, exactly the budget, zero */
		if (lim.tpm > 0) {
			if (kind < 4)
				tokens = 1 + (double)(rng_next(&s) % 10);
			else if (kind < 8)
				tokens = 1 + (double)(rng_next(&s) % (uint64_t)(lim.tpm / 2));
			else if (kind == 8)
				tokens = lim.tpm;
			else
				tokens = 0;
		} else {
			tokens = (double)(rng_next(&s) % 5000);
		}
		gap = rng_unit(&s);
		if (gap < 0.3)
			gap = 0;
		else
			gap = -log(rng_unit(&s) + 1e-12) * lim.window_s /
			      (lim.rpm > 0 ? lim.rpm : 8) * 0.4;
		now += gap;
		if (!acq(l, "p/m", &lim, tokens, now, &ra, NULL)) {
			double before = nextafter(ra, -INFINITY), ra2;

			refused++;
			/* tight: a hair earlier is still refused, with the same answer */
			if (before > now) {
				assert_int_equal(acq(l, "p/m", &lim, tokens, before, &ra2, NULL), 0);
				assert_true(ra2 == ra);
			}
			now = ra;
			if (!acq(l, "p/m", &lim, tokens, now, &ra2, NULL)) {
				print_error("seed %llu: refused at its own retry_at %.9f "
					    "(next %.9f) rpm %.0f tpm %.0f W %.3f tokens %.0f\n",
					    (unsigned long long)seed, now, ra2, lim.rpm, lim.tpm,
					    lim.window_s, tokens);
				fail();
			}
		}
		a[n].t = now;
		a[n].tokens = ceil(tokens);
		n++;
	}
	worst = check_windows(a, n, &lim);
	/* the workload really pushed against the limits */
	assert_true(refused > nreq / 10);
	if (lim.rpm > 0 && lim.tpm == 0)
		assert_int_equal(worst, (int)lim.rpm);
	hark_llm_limiter_free(l);
	free(a);
}

static void test_random_workloads_never_exceed(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 24; seed++)
		run_random(seed, 1500);
}

static void test_log_bounded_without_rpm(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 0, .tpm = 1e12, .window_s = 60};
	const size_t cap = (size_t)1 << 20;
	double ra;
	int adm;
	int64_t tk;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	for (size_t i = 0; i < cap; i++) {
		assert_int_equal(
			l->ops->acquire(l->self, "k", &lim, 0, 5.0, &adm, &ra, &tk), HARK_OK);
		if (!adm)
			fail_msg("refused after %zu zero-token requests", i);
	}
	/* the log is full: the cap acts as an rpm */
	assert_int_equal(acq(l, "k", &lim, 0, 5.0, &ra, NULL), 0);
	assert_true(ra == 65.0);
	assert_int_equal(acq(l, "k", &lim, 0, 65.0, &ra, NULL), 1);
	hark_llm_limiter_free(l);
}

/* ------------------------------------------------------------ threads -- */

#define NTHREADS 8
#define ROUNDS 400
#define PER_ROUND 40

struct hammer {
	struct hark_llm_limiter *l;
	const struct hark_llm_limits *lim;
	pthread_barrier_t *bar;
	volatile double *clock;
	uint64_t seed;
	struct adm *adm;
	size_t n;
	size_t refused;
	int err;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	uint64_t s = h->seed;

	for (int r = 0; r < ROUNDS; r++) {
		double now;

		pthread_barrier_wait(h->bar); /* clock set */
		now = *h->clock;
		for (int i = 0; i < PER_ROUND; i++) {
			double tokens = 1 + (double)(rng_next(&s) % 60), ra;
			int adm = 0;
			int64_t tk;

			if (h->l->ops->acquire(h->l->self, "shared/model", h->lim, tokens, now,
					       &adm, &ra, &tk) != HARK_OK) {
				h->err = 1;
				continue;
			}
			if (adm) {
				h->adm[h->n].t = now;
				h->adm[h->n].tokens = tokens;
				h->n++;
			} else {
				h->refused++;
				if (!(ra > now))
					h->err = 1;
			}
		}
		pthread_barrier_wait(h->bar); /* round done */
	}
	return NULL;
}

static int cmp_adm(const void *x, const void *y)
{
	const struct adm *a = x, *b = y;

	return (a->t > b->t) - (a->t < b->t);
}

static void test_threads_hammer_one_key(void **state)
{
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 40, .tpm = 900, .window_s = 10};
	struct hammer h[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t bar;
	volatile double clock = 0;
	struct adm *all;
	size_t total = 0, refused = 0;
	uint64_t s = 99;

	(void)state;
	assert_int_equal(hark_llm_limiter_local_new(&l), HARK_OK);
	assert_int_equal(pthread_barrier_init(&bar, NULL, NTHREADS + 1), 0);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].l = l;
		h[i].lim = &lim;
		h[i].bar = &bar;
		h[i].clock = &clock;
		h[i].seed = 1000 + (uint64_t)i;
		h[i].adm = calloc(ROUNDS * PER_ROUND, sizeof(struct adm));
		assert_non_null(h[i].adm);
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int r = 0; r < ROUNDS; r++) {
		clock = clock + rng_unit(&s) * 0.8; /* several rounds per window */
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(h[i].err, 0);
		total += h[i].n;
		refused += h[i].refused;
	}
	all = calloc(total, sizeof(*all));
	assert_non_null(all);
	total = 0;
	for (int i = 0; i < NTHREADS; i++) {
		memcpy(all + total, h[i].adm, h[i].n * sizeof(*all));
		total += h[i].n;
		free(h[i].adm);
	}
	qsort(all, total, sizeof(*all), cmp_adm);
	check_windows(all, total, &lim);
	/* contention was real: most attempts were refused, yet the budget was
	 * used (about 900 tokens / 30 per request per 10 s over ~160 s) */
	assert_true(refused > total);
	assert_true(total > 200);
	free(all);
	pthread_barrier_destroy(&bar);
	hark_llm_limiter_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_per_window_exact),
		cmocka_unit_test(test_tokens_per_window_exact),
		cmocka_unit_test(test_oversize_needs_empty_window),
		cmocka_unit_test(test_adjust_frees_and_consumes),
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_unlimited_and_args),
		cmocka_unit_test(test_clock_never_goes_back),
		cmocka_unit_test(test_random_workloads_never_exceed),
		cmocka_unit_test(test_log_bounded_without_rpm),
		cmocka_unit_test(test_threads_hammer_one_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
