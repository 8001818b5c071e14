/*
 * The LLM layer of the job store on a real SQLite database in a fresh
 * temporary directory: the reply cache (get, put, replace, expiry, purge and
 * the retention sweep), call accounting summed under every combination of
 * the job/key/model/since filters against sums the test computes itself,
 * the shared sliding-window rate limiter on a synthetic clock (exact
 * retry_at checked against a brute-force reference, never more than rpm
 * requests or tpm tokens in any window, adjust, block, oversize requests),
 * the store-backed limiter handle, three processes sharing one budget
 * through one data directory, and the migration of a store at the previous
 * schema version (jobs kept, LLM tables and indexes created, a failed
 * migration rolled back).
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm/limiter.h"
#include "store/store.h"

struct fx {
	char root[256]; /* mkdtemp directory */
	char dir[300];  /* root/data: the store */
	struct hark_store *st;
};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct hark_store *open_dir(const char *dir, int sync_full)
{
	struct hark_store_params p = hark_store_default_params();
	struct hark_store *st = NULL;
	char err[256] = "";
	int rc;

	p.sync_full = sync_full;
	rc = hark_store_open(dir, &p, &st, err, sizeof(err));
	if (rc != HARK_OK)
		fail_msg("open %s: %s (%d)", dir, err, rc);
	return st;
}

/* Fixture without sync (many write transactions; durability is not under test). */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/hark-store-llm.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
	f->st = open_dir(f->dir, 0);
	*state = f;
	return f->st ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hark_store_close(f->st);
	nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Small deterministic generator (xorshift64*), so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int rng_int(uint64_t *s, int lo, int hi)
{
	return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* ---- reply cache ---------------------------------------------------------------- */

static void expect_cached(struct hark_store *st, const char *hash, double now, const char *want,
			  size_t want_len)
{
	char *v = NULL;
	size_t n = 0;

	assert_int_equal(hark_store_llm_cache_get(st, hash, now, &v, &n), HARK_OK);
	assert_non_null(v);
	assert_int_equal(n, want_len);
	assert_memory_equal(v, want, want_len);
	assert_int_equal(v[n], '\0');
	free(v);
}

static void expect_not_cached(struct hark_store *st, const char *hash, double now)
{
	char *v = (char *)"x";
	size_t n = 7;

	assert_int_equal(hark_store_llm_cache_get(st, hash, now, &v, &n), HARK_ERR_NOT_FOUND);
	assert_null(v);
	assert_int_equal(n, 0);
}

static void test_cache(void **state)
{
	struct fx *f = *state;
	struct hark_store *st = f->st;
	static const char bin[] = {'a', 'b', '\0', 'c', '\n', (char)0xff, 'z'};
	char (*orphans)[HARK_SHA_HEX_LEN] = NULL;
	size_t n_jobs = 9, n_orph = 9;
	int64_t n = -1;

	expect_not_cached(st, "h1", 100);
	/* binary value with an embedded NUL, never expires */
	assert_int_equal(hark_store_llm_cache_put(st, "h1", "sim/a", bin, sizeof(bin), 0), HARK_OK);
	expect_cached(st, "h1", 100, bin, sizeof(bin));
	expect_cached(st, "h1", 1e12, bin, sizeof(bin));
	/* replace */
	assert_int_equal(hark_store_llm_cache_put(st, "h1", "sim/b", "{\"r\":2}", 7, 0), HARK_OK);
	expect_cached(st, "h1", 100, "{\"r\":2}", 7);
	/* empty value */
	assert_int_equal(hark_store_llm_cache_put(st, "h0", "sim/a", NULL, 0, 0), HARK_OK);
	expect_cached(st, "h0", 100, "", 0);

	/* expiry: valid strictly before expires_at */
	assert_int_equal(hark_store_llm_cache_put(st, "h2", "sim/a", "two", 3, 1000), HARK_OK);
	expect_cached(st, "h2", 999.5, "two", 3);
	expect_not_cached(st, "h2", 1000);
	expect_not_cached(st, "h2", 1000.5);
	/* replacing an entry also replaces its expiry */
	assert_int_equal(hark_store_llm_cache_put(st, "h2", "sim/a", "TWO", 3, 1200), HARK_OK);
	expect_cached(st, "h2", 1100, "TWO", 3);
	assert_int_equal(hark_store_llm_cache_put(st, "h3", "sim/a", "three", 5, 2000), HARK_OK);

	/* purge removes only expired rows: afterwards h2 is gone even for an
	 * earlier `now`, h3 and the never-expiring ones stay */
	assert_int_equal(hark_store_llm_cache_purge(st, 1500, &n), HARK_OK);
	assert_int_equal(n, 1);
	expect_not_cached(st, "h2", 0);
	expect_cached(st, "h3", 1500, "three", 5);
	expect_cached(st, "h1", 1500, "{\"r\":2}", 7);
	assert_int_equal(hark_store_llm_cache_purge(st, 1500, NULL), HARK_OK);
	assert_int_equal(hark_store_llm_cache_purge(st, 1e12, &n), HARK_OK);
	assert_int_equal(n, 1);
	expect_not_cached(st, "h3", 0);
	expect_cached(st, "h1", 1e12, "{\"r\":2}", 7);
	expect_cached(st, "h0", 1e12, "", 0);

	/* the job store's retention sweep removes expired replies too, at most
	 * `limit` per call */
	for (int i = 0; i < 5; i++) {
		char h[16];

		snprintf(h, sizeof(h), "s%d", i);
		assert_int_equal(hark_store_llm_cache_put(st, h, "sim/a", "v", 1, 3000 + i), HARK_OK);
	}
	assert_int_equal(hark_store_sweep(st, 5000, 3, &n_jobs, &orphans, &n_orph), HARK_OK);
	assert_int_equal(n_jobs, 0);
	assert_int_equal(n_orph, 0);
	free(orphans);
	assert_int_equal(hark_store_llm_cache_purge(st, 5000, &n), HARK_OK);
	assert_int_equal(n, 2); /* the sweep took the first 3 */
	expect_cached(st, "h1", 5000, "{\"r\":2}", 7);

	/* argument checks */
	assert_int_equal(hark_store_llm_cache_put(st, NULL, "m", "v", 1, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_cache_put(st, "", "m", "v", 1, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_cache_put(st, "h", "m", NULL, 3, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_cache_put(st, "h", "m", "v", 1, NAN), HARK_ERR_INVALID_ARG);
	assert_true(hark_store_errmsg(st)[0] != '\0');
}

/* ---- call accounting ----------------------------------------------------------- */

#define N_CALLS 90

/* Does call c match the filters (NULL = any, "" = calls without one)? */
static int call_matches(const struct hark_llm_call *c, const char *job, const char *key,
			const char *model, double since)
{
	if (job && strcmp(c->job_id, job) != 0)
		return 0;
	if (key && strcmp(c->key_id, key) != 0)
		return 0;
	if (model && strcmp(c->model, model) != 0)
		return 0;
	return c->at >= since;
}

static void test_usage(void **state)
{
	struct fx *f = *state;
	static const char *const jobs[] = {"", "job_a", "job_b"};
	static const char *const keys[] = {"", "key_1", "key_2"};
	static const char *const models[] = {"sim/m1", "sim/m2", "other/m3"};
	static const char *const fjobs[] = {NULL, "", "job_a", "job_b", "job_zz"};
	static const char *const fkeys[] = {NULL, "", "key_1", "key_2"};
	static const char *const fmodels[] = {NULL, "sim/m1", "sim/m2", "other/m3", "none/x"};
	static const double fsince[] = {0, 1030, 1059.5, 5000};
	struct hark_llm_call calls[N_CALLS];
	struct hark_llm_usage u;
	uint64_t seed = 0x5eed1234abcdULL;
	int nonzero = 0;

	/* empty log: all zero */
	assert_int_equal(hark_store_llm_usage(f->st, NULL, NULL, NULL, 0, &u), HARK_OK);
	assert_int_equal(u.calls, 0);
	assert_true(u.cost_usd == 0);

	for (int i = 0; i < N_CALLS; i++) {
		struct hark_llm_call *c = &calls[i];

		memset(c, 0, sizeof(*c));
		c->at = 1000 + i;
		snprintf(c->job_id, sizeof(c->job_id), "%s", jobs[rng_int(&seed, 0, 2)]);
		snprintf(c->key_id, sizeof(c->key_id), "%s", keys[rng_int(&seed, 0, 2)]);
		snprintf(c->model, sizeof(c->model), "%s", models[rng_int(&seed, 0, 2)]);
		snprintf(c->task, sizeof(c->task), "minutes");
		snprintf(c->kind, sizeof(c->kind), "%s", i % 4 ? "chat" : "embed");
		c->cached = rng_int(&seed, 0, 4) == 0;
		c->ok = c->cached || rng_int(&seed, 0, 5) != 0;
		c->http_status = c->cached ? 0 : (c->ok ? 200 : 429);
		if (!c->cached) {
			c->tokens_in = rng_int(&seed, 1, 5000);
			c->tokens_out = rng_int(&seed, 0, 900);
			/* multiples of 1/1024: sums are exact in any order */
			c->cost_usd = rng_int(&seed, 0, 4000) / 1024.0;
		}
		c->latency_s = rng_int(&seed, 1, 3000) / 100.0;
		assert_int_equal(hark_store_llm_call_add(f->st, c), HARK_OK);
	}

	for (size_t a = 0; a < sizeof(fjobs) / sizeof(*fjobs); a++)
		for (size_t b = 0; b < sizeof(fkeys) / sizeof(*fkeys); b++)
			for (size_t m = 0; m < sizeof(fmodels) / sizeof(*fmodels); m++)
				for (size_t s = 0; s < sizeof(fsince) / sizeof(*fsince); s++) {
					struct hark_llm_usage w;

					memset(&w, 0, sizeof(w));
					for (int i = 0; i < N_CALLS; i++) {
						const struct hark_llm_call *c = &calls[i];

						if (!call_matches(c, fjobs[a], fkeys[b], fmodels[m],
								  fsince[s]))
							continue;
						w.calls++;
						w.requests += !c->cached;
						w.cached += c->cached;
						w.failed += !c->ok;
						w.tokens_in += c->tokens_in;
						w.tokens_out += c->tokens_out;
						w.cost_usd += c->cost_usd;
					}
					memset(&u, 0x55, sizeof(u));
					assert_int_equal(hark_store_llm_usage(f->st, fjobs[a], fkeys[b],
									      fmodels[m], fsince[s], &u),
							 HARK_OK);
					if (u.calls != w.calls || u.requests != w.requests ||
					    u.cached != w.cached || u.failed != w.failed ||
					    u.tokens_in != w.tokens_in ||
					    u.tokens_out != w.tokens_out || u.cost_usd != w.cost_usd)
						fail_msg("usage job=%s key=%s model=%s since=%g: got "
							 "%lld calls %lld tok_in, want %lld calls %lld",
							 fjobs[a] ? fjobs[a] : "(any)",
							 fkeys[b] ? fkeys[b] : "(any)",
							 fmodels[m] ? fmodels[m] : "(any)", fsince[s],
							 (long long)u.calls, (long long)u.tokens_in,
							 (long long)w.calls, (long long)w.tokens_in);
					nonzero += w.calls > 0;
				}
	/* the filters were exercised on non-trivial subsets */
	assert_true(nonzero > 100);
	assert_int_equal(hark_store_llm_usage(f->st, NULL, NULL, NULL, 0, &u), HARK_OK);
	assert_int_equal(u.calls, N_CALLS);
	assert_int_equal(u.requests + u.cached, N_CALLS);
	assert_int_equal(hark_store_llm_usage(f->st, NULL, NULL, NULL, 0, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_call_add(f->st, NULL), HARK_ERR_INVALID_ARG);
}

/* ---- rate limits on a synthetic clock ------------------------------------------- */

struct acq {
	int admitted;
	double retry_at;
	int64_t ticket;
};

static struct acq acquire(struct hark_store *st, const char *key, double rpm, double tpm,
			  double w, double tokens, double now)
{
	struct acq a = {-1, -1, -1};

	assert_int_equal(hark_store_llm_rate_acquire(st, key, rpm, tpm, w, tokens, now,
						     &a.admitted, &a.retry_at, &a.ticket),
			 HARK_OK);
	if (a.admitted)
		assert_true(a.ticket > 0 || (rpm <= 0 && tpm <= 0));
	else
		assert_true(a.retry_at > now);
	return a;
}

static void expect_admit(struct hark_store *st, const char *key, double rpm, double tpm, double w,
			 double tokens, double now)
{
	struct acq a = acquire(st, key, rpm, tpm, w, tokens, now);

	if (!a.admitted)
		fail_msg("%s: %g tokens at %g refused (retry_at %.17g)", key, tokens, now,
			 a.retry_at);
}

static void expect_retry(struct hark_store *st, const char *key, double rpm, double tpm, double w,
			 double tokens, double now, double want)
{
	struct acq a = acquire(st, key, rpm, tpm, w, tokens, now);

	if (a.admitted)
		fail_msg("%s: %g tokens at %g admitted, want retry at %g", key, tokens, now, want);
	if (a.retry_at != want)
		fail_msg("%s: %g tokens at %g: retry_at %.17g, want %.17g", key, tokens, now,
			 a.retry_at, want);
}

static void test_rate_basic(void **state)
{
	struct hark_store *st = ((struct fx *)*state)->st;
	struct acq a;
	int64_t t1;

	/* requests: 3 per 60 s */
	expect_admit(st, "rpm", 3, 0, 60, 10, 0);
	expect_admit(st, "rpm", 3, 0, 60, 10, 1);
	expect_admit(st, "rpm", 3, 0, 60, 10, 2);
	expect_retry(st, "rpm", 3, 0, 60, 10, 3, 60);
	expect_retry(st, "rpm", 3, 0, 60, 10, nextafter(60, 0), 60);
	expect_admit(st, "rpm", 3, 0, 60, 10, 60);
	expect_retry(st, "rpm", 3, 0, 60, 10, 60.5, 61);
	/* other keys are independent */
	expect_admit(st, "rpm-other", 3, 0, 60, 10, 3);

	/* tokens: 1000 per 60 s */
	expect_admit(st, "tpm", 0, 1000, 60, 400, 0);
	expect_admit(st, "tpm", 0, 1000, 60, 400, 10);
	expect_retry(st, "tpm", 0, 1000, 60, 300, 20, 60);  /* the first must leave */
	expect_retry(st, "tpm", 0, 1000, 60, 700, 20, 70);  /* both must leave */
	expect_admit(st, "tpm", 0, 1000, 60, 200, 20);      /* exactly 1000 */
	expect_retry(st, "tpm", 0, 1000, 60, 1, 21, 60);
	/* both limits: the later of the two */
	expect_admit(st, "both", 2, 1000, 60, 100, 0);
	expect_admit(st, "both", 2, 1000, 60, 800, 5);
	expect_retry(st, "both", 2, 1000, 60, 50, 6, 60);   /* rpm binds */
	expect_retry(st, "both", 2, 1000, 60, 950, 6, 65);  /* tpm binds */
	/* fractional tokens count as whole tokens */
	expect_admit(st, "frac", 0, 2, 60, 0.2, 0);
	expect_admit(st, "frac", 0, 2, 60, 0.2, 1);
	expect_retry(st, "frac", 0, 2, 60, 0.2, 2, 60);

	/* oversize: admitted into an empty window only */
	expect_admit(st, "big", 0, 1000, 60, 5000, 0);
	expect_retry(st, "big", 0, 1000, 60, 10, 1, 60);
	expect_admit(st, "big", 0, 1000, 60, 10, 100);
	expect_retry(st, "big", 0, 1000, 60, 5000, 101, 160);
	expect_admit(st, "big", 0, 1000, 60, 5000, 160);

	/* adjust replaces the reservation's token count */
	a = acquire(st, "adj", 0, 1000, 60, 100, 0);
	assert_true(a.admitted);
	t1 = a.ticket;
	assert_int_equal(hark_store_llm_rate_adjust(st, t1, 600), HARK_OK);
	expect_retry(st, "adj", 0, 1000, 60, 500, 1, 60);
	assert_int_equal(hark_store_llm_rate_adjust(st, t1, 100), HARK_OK);
	expect_admit(st, "adj", 0, 1000, 60, 500, 1);
	expect_retry(st, "adj", 0, 1000, 60, 401, 2, 60);
	/* unknown and empty tickets are ignored */
	assert_int_equal(hark_store_llm_rate_adjust(st, t1 + 1000000, 5), HARK_OK);
	assert_int_equal(hark_store_llm_rate_adjust(st, 0, 5), HARK_OK);
	assert_int_equal(hark_store_llm_rate_adjust(st, -3, 5), HARK_OK);

	/* block: nothing before `until`, the later block wins */
	assert_int_equal(hark_store_llm_rate_block(st, "blk", 50), HARK_OK);
	expect_retry(st, "blk", 10, 0, 60, 1, 10, 50);
	assert_int_equal(hark_store_llm_rate_block(st, "blk", 30), HARK_OK);
	expect_retry(st, "blk", 10, 0, 60, 1, 40, 50);
	expect_admit(st, "blk", 10, 0, 60, 1, 50);
	/* block and limits together: the later of the two */
	expect_admit(st, "blk2", 1, 0, 60, 1, 100);
	assert_int_equal(hark_store_llm_rate_block(st, "blk2", 120), HARK_OK);
	expect_retry(st, "blk2", 1, 0, 60, 1, 110, 160);
	assert_int_equal(hark_store_llm_rate_block(st, "blk2", 200), HARK_OK);
	expect_retry(st, "blk2", 1, 0, 60, 1, 170, 200);
	expect_admit(st, "blk2", 1, 0, 60, 1, 200);
	/* unlimited key: only the block applies; nothing to reserve */
	expect_admit(st, "free", 0, 0, 0, 1e9, 1);
	assert_int_equal(hark_store_llm_rate_block(st, "free", 10), HARK_OK);
	expect_retry(st, "free", 0, 0, 0, 1, 5, 10);
	a = acquire(st, "free", 0, 0, 0, 1, 10);
	assert_true(a.admitted);
	assert_int_equal(a.ticket, 0);

	/* argument checks */
	assert_int_equal(hark_store_llm_rate_acquire(st, "", 1, 0, 60, 1, 0, &a.admitted,
						     &a.retry_at, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_rate_acquire(st, "k", 1, 0, 0, 1, 0, &a.admitted,
						     &a.retry_at, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_rate_acquire(st, "k", 1, 0, 60, 1, NAN, &a.admitted,
						     &a.retry_at, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_llm_rate_block(st, "k", NAN), HARK_ERR_INVALID_ARG);
}

/* Reference model: what a correct limiter answers, by brute force. */
struct resv {
	double t;
	double tokens;
	int64_t ticket;
};

static int ref_fits(const struct resv *r, size_t n, double at, double w, double rpm, double tpm,
		    double tokens)
{
	int64_t cnt = 0;
	double sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i].t + w > at) { /* still inside the window at `at` */
			cnt++;
			sum += r[i].tokens;
		}
	}
	if (cnt == 0)
		return 1;
	if (rpm > 0 && cnt + 1 > rpm)
		return 0;
	if (tpm > 0 && sum + tokens > tpm)
		return 0;
	return 1;
}

/* The earliest time >= now at which the request fits (every candidate: now
 * and each moment a reservation leaves). */
static double ref_earliest(const struct resv *r, size_t n, double now, double w, double rpm,
			   double tpm, double tokens)
{
	double best = INFINITY;

	if (ref_fits(r, n, now, w, rpm, tpm, tokens))
		return now;
	for (size_t i = 0; i < n; i++) {
		double cand = r[i].t + w;

		if (cand > now && cand < best && ref_fits(r, n, cand, w, rpm, tpm, tokens))
			best = cand;
	}
	return best;
}

/* No window (x - w, x] holds more than rpm reservations or more than tpm
 * tokens (unless it holds a single oversize one). r sorted by t. */
static void check_windows(const struct resv *r, size_t n, double w, double rpm, double tpm)
{
	size_t lo = 0;
	double sum = 0;

	for (size_t j = 0; j < n; j++) {
		sum += r[j].tokens;
		while (r[lo].t + w <= r[j].t) {
			sum -= r[lo].tokens;
			lo++;
		}
		if (rpm > 0 && (double)(j - lo + 1) > rpm)
			fail_msg("%zu requests in the window ending at %.6f (rpm %g)", j - lo + 1,
				 r[j].t, rpm);
		if (tpm > 0 && j > lo && sum > tpm)
			fail_msg("%.0f tokens in the window ending at %.6f (tpm %g)", sum, r[j].t,
				 tpm);
	}
}

static int cmp_resv(const void *a, const void *b)
{
	const struct resv *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t ? 1 : 0;
}

#define SIM_CLIENTS 6
#define SIM_ADMITS 400

/*
 * Clients with random requests, each retrying exactly at the retry_at it was
 * given: every answer must equal the brute-force reference (so retry_at is
 * exact: admitted at retry_at, refused a hair before it), and the admitted
 * log must respect both limits in every window. Some admitted reservations
 * are adjusted down (the reference follows). The probe a hair before each
 * retry_at also acts as a caller whose clock runs ahead: the calls after it
 * come with earlier times, as from a process that read its clock and then
 * waited for the write lock, and must still see every reservation that
 * shares their window.
 */
static void run_sim(struct hark_store *st, const char *key, double rpm, double tpm, double w,
		    uint64_t seed)
{
	struct resv *log = calloc(SIM_ADMITS + 1, sizeof(*log));
	double next[SIM_CLIENTS], want[SIM_CLIENTS];
	size_t n = 0, lo = 0;
	int refusals = 0, oversize = 0;

	assert_non_null(log);
	for (int c = 0; c < SIM_CLIENTS; c++) {
		next[c] = rng_int(&seed, 0, 1000) / 100.0;
		want[c] = rng_int(&seed, 1, 10) == 1 ? tpm * 1.5 : rng_int(&seed, 20, 400);
	}
	while (n < SIM_ADMITS) {
		int c = 0;
		double now, ref;
		struct acq a;

		for (int i = 1; i < SIM_CLIENTS; i++)
			if (next[i] < next[c])
				c = i;
		now = next[c];
		/* admission times never decrease here: skip what left for good */
		while (lo < n && log[lo].t + w <= now)
			lo++;
		ref = ref_earliest(log + lo, n - lo, now, w, rpm, tpm, want[c]);
		a = acquire(st, key, rpm, tpm, w, want[c], now);
		if (a.admitted != (ref == now))
			fail_msg("at %.6f (%g tokens): admitted %d, reference says %d", now,
				 want[c], a.admitted, ref == now);
		if (!a.admitted) {
			struct acq early;

			if (a.retry_at != ref)
				fail_msg("at %.6f (%g tokens): retry_at %.17g, reference %.17g", now,
					 want[c], a.retry_at, ref);
			/* tight: a hair earlier is still refused, with the same answer */
			early = acquire(st, key, rpm, tpm, w, want[c], nextafter(a.retry_at, 0));
			assert_false(early.admitted);
			assert_true(early.retry_at == a.retry_at);
			next[c] = a.retry_at;
			refusals++;
			continue;
		}
		log[n].t = now;
		log[n].tokens = want[c];
		log[n].ticket = a.ticket;
		oversize += tpm > 0 && want[c] > tpm;
		n++;
		if (rng_int(&seed, 1, 5) == 1) {
			/* the reply used fewer tokens than reserved */
			size_t k = n - 1 - (size_t)rng_int(&seed, 0, (int)(n > 3 ? 3 : n - 1));
			double less = floor(log[k].tokens / 2);

			assert_int_equal(hark_store_llm_rate_adjust(st, log[k].ticket, less), HARK_OK);
			log[k].tokens = less;
		}
		next[c] = now + rng_int(&seed, 0, 800) / 100.0;
		want[c] = rng_int(&seed, 1, 12) == 1 ? tpm * 1.5 : rng_int(&seed, 20, 400);
	}
	/* the simulation really ran into both limits */
	assert_true(refusals > SIM_ADMITS / 2);
	if (tpm > 0)
		assert_true(oversize > 0);
	qsort(log, n, sizeof(*log), cmp_resv);
	check_windows(log, n, w, rpm, tpm);
	free(log);
}

static void test_rate_sim(void **state)
{
	struct hark_store *st = ((struct fx *)*state)->st;

	run_sim(st, "sim/both", 7, 1000, 60, 0x1234567ULL);
	run_sim(st, "sim/rpm", 5, 0, 60, 0xabcdefULL);
	run_sim(st, "sim/tpm", 0, 1500, 61.5, 0x777ULL);
}

/* ---- the limiter handle ----------------------------------------------------------- */

static void test_limiter_store(void **state)
{
	struct hark_store *st = ((struct fx *)*state)->st;
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = 3, .tpm = 100, .window_s = 60};
	int admitted = -1;
	double retry = -1;
	int64_t t1 = 0, t2 = 0;

	assert_int_equal(hark_llm_limiter_store_new(NULL, &l), HARK_ERR_INVALID_ARG);
	assert_null(l);
	assert_int_equal(hark_llm_limiter_store_new(st, &l), HARK_OK);
	assert_non_null(l);
	assert_string_equal(l->ops->name, "store");
	assert_int_equal(l->ops->acquire(l->self, "p/m", &lim, 40, 0, &admitted, &retry, &t1),
			 HARK_OK);
	assert_int_equal(admitted, 1);
	assert_true(t1 > 0);
	assert_int_equal(l->ops->acquire(l->self, "p/m", &lim, 40, 1, &admitted, &retry, &t2),
			 HARK_OK);
	assert_int_equal(admitted, 1);
	assert_true(t2 > t1);
	assert_int_equal(l->ops->acquire(l->self, "p/m", &lim, 30, 2, &admitted, &retry, NULL),
			 HARK_OK);
	assert_int_equal(admitted, 0);
	assert_true(retry == 60);
	/* adjust through the handle; the budget is the store's, so a direct
	 * store call sees the corrected reservation: 10 + 40 + 30 fits */
	assert_int_equal(l->ops->adjust(l->self, "p/m", t1, 10), HARK_OK);
	expect_admit(st, "p/m", 3, 100, 60, 30, 2);
	assert_int_equal(l->ops->acquire(l->self, "p/m", &lim, 1, 3, &admitted, &retry, NULL),
			 HARK_OK);
	assert_int_equal(admitted, 0); /* rpm 3 reached */
	assert_true(retry == 60);
	assert_int_equal(l->ops->block(l->self, "p/m", 500), HARK_OK);
	expect_retry(st, "p/m", 3, 100, 60, 10, 300, 500);
	assert_int_equal(l->ops->acquire(l->self, "p/m", &lim, 10, 500, &admitted, &retry, NULL),
			 HARK_OK);
	assert_int_equal(admitted, 1);
	hark_llm_limiter_free(l);
	hark_llm_limiter_free(NULL);
}

/* ---- several processes share one budget ------------------------------------------ */

#define MP_CHILDREN 3
#define MP_RPM 10.0
#define MP_TPM 3000.0
#define MP_WINDOW 60.0  /* provider seconds */
#define MP_SCALE 120.0  /* provider seconds per real second: a window is 0.5 s */
#define MP_RUN_S 2.0    /* real seconds each child runs */

static double real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Child: its own store handle and limiter; hammers one key; writes every
 * admitted (time, tokens, ticket) to path. Returns the exit status. */
static int mp_child(const char *dir, const char *path, int idx)
{
	struct hark_store_params p = hark_store_default_params();
	struct hark_store *st = NULL;
	struct hark_llm_limiter *l = NULL;
	struct hark_llm_limits lim = {.rpm = MP_RPM, .tpm = MP_TPM, .window_s = MP_WINDOW};
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(idx + 1);
	double end = real_now() + MP_RUN_S, tokens;
	FILE *out = NULL;
	int status = 0;

	p.sync_full = 0;
	if (hark_store_open(dir, &p, &st, NULL, 0) != HARK_OK)
		return 2;
	if (hark_llm_limiter_store_new(st, &l) != HARK_OK) {
		status = 3;
		goto done;
	}
	out = fopen(path, "w");
	if (!out) {
		status = 4;
		goto done;
	}
	tokens = rng_int(&seed, 100, 600);
	while (real_now() < end) {
		double now = real_now() * MP_SCALE, retry = 0, wait_s;
		int admitted = 0;
		int64_t ticket = 0;

		if (l->ops->acquire(l->self, "sim/shared", &lim, tokens, now, &admitted, &retry,
				    &ticket) != HARK_OK) {
			status = 5;
			break;
		}
		if (admitted) {
			fprintf(out, "%.17g %.17g %lld\n", now, tokens, (long long)ticket);
			tokens = rng_int(&seed, 100, 600);
			continue; /* straight back for more: maximum contention */
		}
		if (!(retry > now)) {
			status = 6;
			break;
		}
		wait_s = (retry - now) / MP_SCALE;
		if (wait_s > 0.1)
			wait_s = 0.1;
		usleep((useconds_t)(wait_s * 1e6) + 1);
	}
done:
	if (out && fclose(out) != 0 && status == 0)
		status = 7;
	hark_llm_limiter_free(l);
	hark_store_close(st);
	return status;
}

static void test_multiprocess(void **state)
{
	struct fx *f = *state;
	pid_t pids[MP_CHILDREN];
	struct resv *all = NULL;
	size_t n = 0, cap = 0;
	char path[MP_CHILDREN][400];

	/* the fixture's handle must not cross the fork */
	hark_store_close(f->st);
	f->st = NULL;
	for (int i = 0; i < MP_CHILDREN; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/admitted-%d.txt", f->root, i);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(mp_child(f->dir, path[i], i));
	}
	for (int i = 0; i < MP_CHILDREN; i++) {
		int ws = 0;

		assert_int_equal(waitpid(pids[i], &ws, 0), pids[i]);
		assert_true(WIFEXITED(ws));
		if (WEXITSTATUS(ws) != 0)
			fail_msg("child %d exited with %d", i, WEXITSTATUS(ws));
	}
	for (int i = 0; i < MP_CHILDREN; i++) {
		FILE *in = fopen(path[i], "r");
		double t, tok;
		long long ticket;
		size_t mine = 0;

		assert_non_null(in);
		while (fscanf(in, "%lf %lf %lld", &t, &tok, &ticket) == 3) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				all = realloc(all, cap * sizeof(*all));
				assert_non_null(all);
			}
			all[n].t = t;
			all[n].tokens = tok;
			all[n].ticket = ticket;
			n++;
			mine++;
		}
		fclose(in);
		/* every process got a share */
		assert_true(mine > 0);
	}
	/* tickets are unique across processes */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(all[i].ticket != all[j].ticket);
	qsort(all, n, sizeof(*all), cmp_resv);
	check_windows(all, n, MP_WINDOW, MP_RPM, MP_TPM);
	/* the budget was used, not just refused: more than one full window */
	if ((double)n <= MP_RPM)
		fail_msg("only %zu requests admitted in %g windows", n,
			 MP_RUN_S * MP_SCALE / MP_WINDOW);
	free(all);
	f->st = open_dir(f->dir, 0);
}

/* ---- migration from schema version 1 ------------------------------------------------ */

static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(h);
}

static int raw_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int v = -1;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* Takes the database back to what schema version 1 had. */
static void downgrade(const char *db)
{
	raw_exec(db, "BEGIN; DROP TABLE llm_cache; DROP TABLE llm_calls; DROP TABLE llm_rate;"
		     " DROP TABLE llm_rate_block; PRAGMA user_version=1; COMMIT;");
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'llm%'"),
			 0);
}

static void test_migration(void **state)
{
	struct fx *f = *state;
	struct hark_llm_call call;
	struct hark_llm_usage u;
	struct hark_job j, got;
	struct hark_event ev;
	struct hark_store *st = NULL;
	char db[400], err[256] = "";
	int rc;

	snprintf(db, sizeof(db), "%s/hark.db", f->dir);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(j.type, "noop");
	j.priority = HARK_PRIO_HIGH;
	strcpy(j.key_id, "key_0123456789abcdef");
	j.options = (char *)"{\"formats\":[\"txt\"]}";
	j.filename = (char *)"standup.wav";
	j.max_attempts = 3;
	j.eta_s = -1;
	j.created_at = (double)time(NULL);
	j.next_run_at = j.created_at;
	assert_int_equal(hark_store_job_insert(f->st, &j, &ev), HARK_OK);
	hark_event_clear(&ev);
	memset(&call, 0, sizeof(call));
	call.at = 100;
	strcpy(call.model, "sim/m");
	call.tokens_in = 7;
	assert_int_equal(hark_store_llm_call_add(f->st, &call), HARK_OK);
	hark_store_close(f->st);
	f->st = NULL;

	assert_int_equal(raw_int(db, "PRAGMA user_version"), 3);
	downgrade(db);

	/* reopening migrates: tables and indexes back, jobs untouched */
	f->st = open_dir(f->dir, 0);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 3);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND"
				     " tbl_name='llm_calls' AND name IN ('llm_calls_job',"
				     " 'llm_calls_key','llm_calls_model','llm_calls_at')"),
			 4);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND"
				     " name IN ('llm_cache','llm_calls','llm_rate','llm_rate_block')"),
			 4);
	assert_int_equal(hark_store_job_get(f->st, j.id, &got), HARK_OK);
	assert_string_equal(got.key_id, j.key_id);
	assert_string_equal(got.options, j.options);
	assert_string_equal(got.filename, "standup.wav");
	assert_int_equal(got.priority, HARK_PRIO_HIGH);
	assert_int_equal(got.status, HARK_JOB_QUEUED);
	hark_job_clear(&got);
	/* the new tables work; the old call log went with the dropped table */
	assert_int_equal(hark_store_llm_usage(f->st, NULL, NULL, NULL, 0, &u), HARK_OK);
	assert_int_equal(u.calls, 0);
	assert_int_equal(hark_store_llm_call_add(f->st, &call), HARK_OK);
	assert_int_equal(hark_store_llm_usage(f->st, NULL, NULL, "sim/m", 0, &u), HARK_OK);
	assert_int_equal(u.calls, 1);
	assert_int_equal(u.tokens_in, 7);
	assert_int_equal(hark_store_llm_cache_put(f->st, "h", "sim/m", "v", 1, 0), HARK_OK);
	expect_cached(f->st, "h", 1, "v", 1);
	expect_admit(f->st, "k", 1, 0, 60, 1, 0);
	expect_retry(f->st, "k", 1, 0, 60, 1, 1, 60);
	hark_store_close(f->st);
	f->st = NULL;

	/* a migration that cannot apply is rolled back as a whole */
	downgrade(db);
	raw_exec(db, "CREATE TABLE llm_rate_block (x INTEGER)");
	rc = hark_store_open(f->dir, NULL, &st, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_CORRUPT);
	assert_null(st);
	assert_non_null(strstr(err, "migrate"));
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name='llm_calls'"),
			 0);
	raw_exec(db, "DROP TABLE llm_rate_block");

	/* a newer schema is refused, untouched */
	raw_exec(db, "PRAGMA user_version=99");
	rc = hark_store_open(f->dir, NULL, &st, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_UNSUPPORTED);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 99);
	raw_exec(db, "PRAGMA user_version=1");

	/* and after all that the version-1 store still migrates with its job */
	f->st = open_dir(f->dir, 0);
	assert_int_equal(hark_store_job_get(f->st, j.id, &got), HARK_OK);
	hark_job_clear(&got);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_sim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limiter_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multiprocess, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
