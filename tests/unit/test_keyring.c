/*
 * Unit tests for the API-key cache (src/server/keyring) against a real
 * SQLite store in a temporary directory: keys created with the store's own
 * generator are found by their tokens with every limit field copied and
 * the name withheld; unknown and near-miss tokens are not found; a revoke
 * shows (revoked_at != 0) only after a refresh; a refresh reloads only when
 * the store's keys version changed, including changes made through a
 * second store handle (as `hark keys` in another process would); hundreds
 * of keys all resolve; lookups from several threads stay correct while the
 * set is reloaded underneath them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "audio_testutil.h"
#include "hark/hark.h"
#include "server/keyring.h"
#include "store/store.h"

struct fixture {
	char dir[512];
	struct hark_store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct hark_store_params p = hark_store_default_params();
	char err[256];

	if (!f || audio_tu_mkdtemp(f->dir, sizeof(f->dir)) != 0) {
		free(f);
		return -1;
	}
	p.sync_full = 0;
	if (hark_store_open(f->dir, &p, &f->st, err, sizeof(err)) != 0) {
		fprintf(stderr, "store open: %s\n", err);
		audio_tu_rmtree(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hark_store_close(f->st);
	audio_tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Creates and inserts a key; token receives its secret. */
static void make_key(struct hark_store *st, const char *name, double rps, double burst,
		     double quota, int maxc, struct hark_key *k, char token[128])
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(hark_store_key_generate(k, token, 128), HARK_OK);
	k->name = (char *)name;
	k->created_at = 1700000000.5;
	k->rate_rps = rps;
	k->rate_burst = burst;
	k->daily_quota_s = quota;
	k->max_concurrent = maxc;
	assert_int_equal(hark_store_key_insert(st, k), HARK_OK);
	k->name = NULL;
}

static void test_lookup_revoke_refresh(void **state)
{
	struct fixture *f = *state;
	struct hark_keyring *kr = hark_keyring_new();
	struct hark_key k[3], got;
	char tok[3][128], bad[128];

	assert_non_null(kr);
	/* nothing loaded yet */
	assert_int_equal(hark_keyring_count(kr), 0);
	assert_int_equal(hark_keyring_loads(kr), 0);
	/* first refresh always loads, even an empty store */
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 1);
	assert_int_equal(hark_keyring_count(kr), 0);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 1);

	make_key(f->st, "alice", 5, 10, 3600, 2, &k[0], tok[0]);
	make_key(f->st, "bob", 0, 0, 0, 0, &k[1], tok[1]);
	make_key(f->st, "carol", 0.5, 1, 60, 1, &k[2], tok[2]);
	/* the cache does not see them until refreshed */
	assert_int_equal(hark_keyring_lookup(kr, tok[0], &got), 0);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 2);
	assert_int_equal(hark_keyring_count(kr), 3);

	for (int i = 0; i < 3; i++) {
		memset(&got, 0x5a, sizeof(got));
		assert_int_equal(hark_keyring_lookup(kr, tok[i], &got), 1);
		assert_string_equal(got.id, k[i].id);
		assert_string_equal(got.hash, k[i].hash);
		assert_string_equal(got.prefix, k[i].prefix);
		assert_null(got.name);
		assert_true(got.revoked_at == 0);
		assert_true(got.rate_rps == k[i].rate_rps);
		assert_true(got.rate_burst == k[i].rate_burst);
		assert_true(got.daily_quota_s == k[i].daily_quota_s);
		assert_int_equal(got.max_concurrent, k[i].max_concurrent);
		assert_true(got.created_at > 1700000000 && got.created_at < 1700000001);
	}
	/* unknown and near-miss tokens */
	assert_int_equal(hark_keyring_lookup(kr, "hark_0000000000000000000000000000000000000000",
					     &got), 0);
	snprintf(bad, sizeof(bad), "%s", tok[0]);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(hark_keyring_lookup(kr, bad, &got), 0);
	bad[strlen(bad) - 1] = '\0';
	assert_int_equal(hark_keyring_lookup(kr, bad, &got), 0);
	assert_int_equal(hark_keyring_lookup(kr, "", &got), 0);
	assert_int_equal(hark_keyring_lookup(kr, k[0].hash, &got), 0); /* the hash is no token */

	/* unchanged store: no reload */
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 2);

	/* revoke bob: visible after the next refresh */
	assert_int_equal(hark_store_key_revoke(f->st, k[1].id, 1800000000.0), HARK_OK);
	assert_int_equal(hark_keyring_lookup(kr, tok[1], &got), 1);
	assert_true(got.revoked_at == 0);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 3);
	assert_int_equal(hark_keyring_lookup(kr, tok[1], &got), 1);
	assert_true(got.revoked_at != 0);
	assert_string_equal(got.id, k[1].id);
	assert_int_equal(hark_keyring_count(kr), 3);
	/* others unaffected */
	assert_int_equal(hark_keyring_lookup(kr, tok[0], &got), 1);
	assert_true(got.revoked_at == 0);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_int_equal(hark_keyring_loads(kr), 3);

	/* revoke by token prefix through a second handle (another process) */
	{
		struct hark_store *st2 = NULL;
		struct hark_store_params p = hark_store_default_params();
		char err[256];
		struct hark_key k4;
		char tok4[128];

		p.sync_full = 0;
		assert_int_equal(hark_store_open(f->dir, &p, &st2, err, sizeof(err)), HARK_OK);
		assert_int_equal(hark_store_key_revoke(st2, k[2].prefix, 1800000001.0), HARK_OK);
		make_key(st2, "dave", 1, 1, 0, 0, &k4, tok4);
		hark_store_close(st2);
		assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
		assert_int_equal(hark_keyring_loads(kr), 4);
		assert_int_equal(hark_keyring_count(kr), 4);
		assert_int_equal(hark_keyring_lookup(kr, tok[2], &got), 1);
		assert_true(got.revoked_at != 0);
		assert_int_equal(hark_keyring_lookup(kr, tok4, &got), 1);
		assert_string_equal(got.id, k4.id);
	}
	hark_keyring_free(kr);
}

static void test_many_keys(void **state)
{
	struct fixture *f = *state;
	struct hark_keyring *kr = hark_keyring_new();
	enum { N = 300 };
	char (*tok)[128] = calloc(N, 128);
	struct hark_key *k = calloc(N, sizeof(*k)), got;

	assert_non_null(kr);
	assert_non_null(tok);
	assert_non_null(k);
	for (int i = 0; i < N; i++)
		make_key(f->st, "bulk", i, i + 1, 0, i % 7, &k[i], tok[i]);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	assert_true(hark_keyring_count(kr) >= N); /* plus any from earlier tests */
	for (int i = 0; i < N; i++) {
		assert_int_equal(hark_keyring_lookup(kr, tok[i], &got), 1);
		assert_string_equal(got.id, k[i].id);
		assert_true(got.rate_rps == i);
		assert_int_equal(got.max_concurrent, i % 7);
	}
	hark_keyring_free(kr);
	free(tok);
	free(k);
}

struct reader {
	struct hark_keyring *kr;
	const char *token;
	const char *id;
	atomic_int *stop;
	atomic_int started;
	long lookups, misses;
};

static void *reader_main(void *p)
{
	struct reader *r = p;
	struct hark_key got;

	while (!atomic_load(r->stop)) {
		if (hark_keyring_lookup(r->kr, r->token, &got) != 1 || strcmp(got.id, r->id))
			r->misses++;
		r->lookups++;
		atomic_store(&r->started, 1);
	}
	return NULL;
}

static void test_concurrent_reload(void **state)
{
	struct fixture *f = *state;
	struct hark_keyring *kr = hark_keyring_new();
	struct hark_key stable, extra;
	char tok[128], tok2[128];
	atomic_int stop;
	struct reader r[3];
	pthread_t th[3];
	unsigned long loads0;

	assert_non_null(kr);
	atomic_init(&stop, 0);
	make_key(f->st, "stable", 1, 1, 0, 0, &stable, tok);
	assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	loads0 = hark_keyring_loads(kr);
	for (int i = 0; i < 3; i++) {
		r[i].kr = kr;
		r[i].token = tok;
		r[i].id = stable.id;
		r[i].stop = &stop;
		atomic_init(&r[i].started, 0);
		r[i].lookups = r[i].misses = 0;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
	}
	/* every reader is looking keys up before the set starts changing */
	for (int i = 0; i < 3; i++)
		while (!atomic_load(&r[i].started))
			sched_yield();
	for (int i = 0; i < 15; i++) {
		make_key(f->st, "churn", 1, 1, 0, 0, &extra, tok2);
		assert_int_equal(hark_keyring_refresh(kr, f->st), HARK_OK);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].misses, 0);
		assert_true(r[i].lookups > 0);
	}
	assert_int_equal(hark_keyring_loads(kr), loads0 + 15);
	assert_int_equal(hark_keyring_lookup(kr, tok2, &extra), 1);
	hark_keyring_free(kr);
}

static void test_null_args(void **state)
{
	struct hark_key got;

	(void)state;
	assert_int_equal(hark_keyring_refresh(NULL, NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_keyring_lookup(NULL, "x", &got), 0);
	assert_int_equal(hark_keyring_count(NULL), 0);
	hark_keyring_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_revoke_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reload, setup, teardown),
		cmocka_unit_test(test_null_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
