/*
 * The job store on a real SQLite database in a fresh temporary directory:
 * insert/get/list with cursor pages, claim order (priorities, next_run_at,
 * per-key concurrency caps), several threads claiming at once without ever
 * sharing a job, lease guards on every worker call, finish exactly once,
 * retries and failures, cancel, release, recovery of dead leases, purge and
 * sweep with orphaned-blob detection, dedup, events, keys, usage, webhooks,
 * settings, a corrupt database file, a full database, and reopening.
 */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_backend.h"

struct fx {
	char dir[256];
	struct hark_store *st;
};

static const int prio_default[HARK_PRIO_COUNT] = {0, 1, 2, 3};

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

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hark-store-test.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* a sub-directory that does not exist yet: open must create it */
	strcat(f->dir, "/data");
	f->st = open_dir(f->dir, 1);
	*state = f;
	return f->st ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char *slash;

	hark_store_close(f->st);
	slash = strrchr(f->dir, '/');
	*slash = '\0';
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A queued job; id out. */
static void make_job(struct hark_store *st, const char *key, int prio, const char *blob,
		     double next_run_at, char id[HARK_ID_LEN])
{
	struct hark_job j;
	struct hark_event ev;
	double now = hark_store_now();

	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(j.type, "noop");
	j.priority = prio;
	snprintf(j.key_id, sizeof(j.key_id), "%s", key ? key : "");
	snprintf(j.blob_sha, sizeof(j.blob_sha), "%s", blob ? blob : "");
	j.options = (char *)"{\"formats\":[\"json\"]}";
	j.max_attempts = 3;
	j.eta_s = -1;
	j.created_at = now;
	j.next_run_at = next_run_at > 0 ? next_run_at : now;
	j.filename = (char *)"meeting.wav";
	assert_int_equal(hark_store_job_insert(st, &j, &ev), HARK_OK);
	assert_true(ev.seq > 0);
	assert_string_equal(ev.type, "queued");
	assert_string_equal(ev.job_id, j.id);
	hark_event_clear(&ev);
	strcpy(id, j.id);
}

static int job_status(struct hark_store *st, const char *id)
{
	struct hark_job j;
	int s;

	assert_int_equal(hark_store_job_get(st, id, &j), HARK_OK);
	s = j.status;
	hark_job_clear(&j);
	return s;
}

/* Claims and checks which job came out (NULL: expect nothing runnable). */
static void claim_expect(struct hark_store *st, const int *order, const char *owner,
			 const char *want)
{
	struct hark_job j;
	struct hark_event ev;
	int rc = hark_store_job_claim(st, order, owner, hark_store_now(), 30, &j, &ev);

	if (!want) {
		assert_int_equal(rc, HARK_ERR_NOT_FOUND);
		return;
	}
	assert_int_equal(rc, HARK_OK);
	assert_string_equal(j.id, want);
	assert_int_equal(j.status, HARK_JOB_RUNNING);
	assert_string_equal(j.lease_owner, owner);
	assert_string_equal(ev.type, "running");
	hark_job_clear(&j);
	hark_event_clear(&ev);
}

static char *sha256_hex(const void *p, size_t n)
{
	unsigned char md[32];
	unsigned int len = 0;
	char *out = malloc(65);

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return out;
}

/* ------------------------------------------------------------------------- */

static void test_names_ids_summary(void **state)
{
	char a[HARK_ID_LEN], b[HARK_ID_LEN], tok[64], *expect, *js;
	struct hark_key k;
	struct hark_job j;
	json_t *o;
	int v;

	(void)state;
	for (int i = 0; i < HARK_JOB_STATUS_COUNT; i++) {
		assert_int_equal(hark_store_status_parse(hark_store_status_name(i), &v), HARK_OK);
		assert_int_equal(v, i);
	}
	for (int i = 0; i < HARK_PRIO_COUNT; i++) {
		assert_int_equal(hark_store_priority_parse(hark_store_priority_name(i), &v), HARK_OK);
		assert_int_equal(v, i);
	}
	assert_int_equal(hark_store_status_parse("bogus", &v), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_priority_parse("urgent", &v), HARK_ERR_INVALID_ARG);

	/* ids: format and strictly increasing in creation order */
	assert_int_equal(hark_store_new_job_id(a), HARK_OK);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(hark_store_new_job_id(b), HARK_OK);
		assert_int_equal(strlen(b), 30);
		assert_memory_equal(b, "job_", 4);
		for (int c = 4; c < 30; c++)
			assert_true((b[c] >= '0' && b[c] <= '9') || (b[c] >= 'a' && b[c] <= 'v'));
		assert_true(strcmp(a, b) < 0);
		strcpy(a, b);
	}

	/* keys: token format, hash = sha256(token), prefix */
	memset(&k, 0, sizeof(k));
	assert_int_equal(hark_store_key_generate(&k, tok, sizeof(tok)), HARK_OK);
	assert_int_equal(strlen(tok), 45);
	assert_memory_equal(tok, "hark_", 5);
	assert_int_equal(strlen(k.id), 20);
	assert_memory_equal(k.id, "key_", 4);
	assert_int_equal(strlen(k.prefix), 12);
	assert_memory_equal(k.prefix, tok, 12);
	expect = sha256_hex(tok, strlen(tok));
	assert_string_equal(k.hash, expect);
	free(expect);

	/* RFC 3339 and days */
	{
		char buf[40], day[11];

		hark_store_rfc3339(1714564800.25, buf, sizeof(buf));
		assert_string_equal(buf, "2024-05-01T12:00:00.250Z");
		hark_store_utc_day(1714607999.9, day);
		assert_string_equal(day, "2024-05-01");
		hark_store_utc_day(1714608000.0, day);
		assert_string_equal(day, "2024-05-02");
	}

	/* summary JSON */
	memset(&j, 0, sizeof(j));
	strcpy(j.id, "job_0123456789abcdefghijklmnop");
	strcpy(j.type, "transcribe");
	j.status = HARK_JOB_FAILED;
	j.priority = HARK_PRIO_BATCH;
	j.created_at = 1714564800.0;
	j.eta_s = -1;
	j.percent = 40;
	j.stage = (char *)"decode";
	j.timings = (char *)"{\"queue\":0.5}";
	j.error_code = (char *)"corrupt_media";
	j.error_message = (char *)"truncated";
	j.attempts = 2;
	js = hark_store_job_summary_json(&j);
	assert_non_null(js);
	o = json_loads(js, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "id")), j.id);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
	assert_string_equal(json_string_value(json_object_get(o, "priority")), "batch");
	assert_true(json_is_false(json_object_get(o, "cached")));
	assert_string_equal(json_string_value(json_object_get(o, "created_at")),
			    "2024-05-01T12:00:00.000Z");
	assert_true(json_is_null(json_object_get(o, "started_at")));
	assert_true(json_is_null(json_object_get(o, "finished_at")));
	assert_true(json_is_null(json_object_get(o, "filename")));
	assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "progress"), "stage")),
			    "decode");
	assert_true(json_is_null(json_object_get(json_object_get(o, "progress"), "eta_s")));
	assert_true(json_real_value(json_object_get(json_object_get(o, "timings"), "queue")) == 0.5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
			    "corrupt_media");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "links"), "result")),
			    "/v1/jobs/job_0123456789abcdefghijklmnop/result");
	json_decref(o);
	free(js);
}

static void test_insert_get_list(void **state)
{
	struct fx *f = *state;
	char ids[25][HARK_ID_LEN], cursor[HARK_ID_LEN] = "";
	int seen[25] = {0};
	struct hark_job *jobs = NULL, j;
	struct hark_job_filter flt;
	size_t n = 0, total = 0, pages = 0;

	for (int i = 0; i < 25; i++)
		make_job(f->st, i % 5 == 0 ? "key_a" : "", HARK_PRIO_NORMAL, NULL, 0, ids[i]);

	assert_int_equal(hark_store_job_get(f->st, ids[3], &j), HARK_OK);
	assert_string_equal(j.id, ids[3]);
	assert_int_equal(j.status, HARK_JOB_QUEUED);
	assert_string_equal(j.type, "noop");
	assert_string_equal(j.options, "{\"formats\":[\"json\"]}");
	assert_string_equal(j.filename, "meeting.wav");
	assert_null(j.media_type);
	assert_string_equal(j.stage, "queued");
	assert_int_equal(j.max_attempts, 3);
	hark_job_clear(&j);
	assert_int_equal(hark_store_job_get(f->st, "job_nope", &j), HARK_ERR_NOT_FOUND);
	assert_true(strstr(hark_store_errmsg(f->st), "job_nope") != NULL);

	/* all jobs, 10 per page, newest first, every job exactly once */
	memset(&flt, 0, sizeof(flt));
	flt.status = -1;
	flt.limit = 10;
	do {
		flt.cursor = cursor;
		assert_int_equal(hark_store_job_list(f->st, &flt, &jobs, &n, cursor), HARK_OK);
		pages++;
		for (size_t i = 0; i < n; i++) {
			int k;

			if (i > 0)
				assert_true(strcmp(jobs[i - 1].id, jobs[i].id) > 0);
			for (k = 0; k < 25 && strcmp(ids[k], jobs[i].id); k++)
				;
			assert_true(k < 25);
			seen[k]++;
			if (total == 0 && i == 0)
				assert_string_equal(jobs[0].id, ids[24]);
		}
		total += n;
		hark_job_array_free(jobs, n);
	} while (cursor[0]);
	assert_int_equal(total, 25);
	assert_int_equal(pages, 3);
	for (int i = 0; i < 25; i++)
		assert_int_equal(seen[i], 1);

	/* by key, by anonymous, by status */
	flt.cursor = NULL;
	flt.limit = 100;
	flt.key_id = "key_a";
	assert_int_equal(hark_store_job_list(f->st, &flt, &jobs, &n, cursor), HARK_OK);
	assert_int_equal(n, 5);
	assert_string_equal(cursor, "");
	for (size_t i = 0; i < n; i++)
		assert_string_equal(jobs[i].key_id, "key_a");
	hark_job_array_free(jobs, n);
	flt.key_id = "";
	assert_int_equal(hark_store_job_list(f->st, &flt, &jobs, &n, cursor), HARK_OK);
	assert_int_equal(n, 20);
	hark_job_array_free(jobs, n);
	flt.key_id = NULL;
	flt.status = HARK_JOB_DONE;
	assert_int_equal(hark_store_job_list(f->st, &flt, &jobs, &n, cursor), HARK_OK);
	assert_int_equal(n, 0);
	assert_null(jobs);
	flt.status = HARK_JOB_QUEUED;
	flt.limit = 0; /* clamped to 1 */
	assert_int_equal(hark_store_job_list(f->st, &flt, &jobs, &n, cursor), HARK_OK);
	assert_int_equal(n, 1);
	assert_string_equal(cursor, ids[24]);
	hark_job_array_free(jobs, n);

	/* duplicate id is rejected */
	memset(&j, 0, sizeof(j));
	strcpy(j.id, ids[0]);
	strcpy(j.type, "noop");
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_ERR_INVALID_ARG);
}

static void test_claim_order(void **state)
{
	struct fx *f = *state;
	char batch[HARK_ID_LEN], normal1[HARK_ID_LEN], normal2[HARK_ID_LEN], high[HARK_ID_LEN],
		later[HARK_ID_LEN];
	const int batch_first[HARK_PRIO_COUNT] = {3, 0, 1, 2};

	make_job(f->st, NULL, HARK_PRIO_BATCH, NULL, 0, batch);
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, normal1);
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, normal2);
	make_job(f->st, NULL, HARK_PRIO_HIGH, NULL, hark_store_now() + 3600, later);
	make_job(f->st, NULL, HARK_PRIO_HIGH, NULL, 0, high);

	claim_expect(f->st, batch_first, "w1", batch);
	claim_expect(f->st, prio_default, "w1", high);  /* `later` waits for next_run_at */
	claim_expect(f->st, prio_default, "w1", normal1);/* oldest first within a priority */
	claim_expect(f->st, prio_default, "w1", normal2);
	claim_expect(f->st, prio_default, "w1", NULL);
	/* claim as of an hour later: the delayed job is due */
	{
		struct hark_job j;

		assert_int_equal(hark_store_job_claim(f->st, prio_default, "w1", hark_store_now() + 3601,
						      30, &j, NULL),
				 HARK_OK);
		assert_string_equal(j.id, later);
		assert_int_equal(j.attempts, 1);
		assert_true(j.started_at > 0);
		assert_string_equal(j.stage, "starting");
		hark_job_clear(&j);
	}
}

static void test_claim_key_cap(void **state)
{
	struct fx *f = *state;
	struct hark_key k;
	char tok[64], k1[HARK_ID_LEN], k2[HARK_ID_LEN], anon[HARK_ID_LEN], u1[HARK_ID_LEN];
	int64_t running;

	memset(&k, 0, sizeof(k));
	assert_int_equal(hark_store_key_generate(&k, tok, sizeof(tok)), HARK_OK);
	k.name = (char *)"capped";
	k.max_concurrent = 1;
	assert_int_equal(hark_store_key_insert(f->st, &k), HARK_OK);

	make_job(f->st, k.id, HARK_PRIO_NORMAL, NULL, 0, k1);
	make_job(f->st, k.id, HARK_PRIO_NORMAL, NULL, 0, k2);
	make_job(f->st, "key_unknown", HARK_PRIO_NORMAL, NULL, 0, u1); /* no such key: no cap */
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, anon);

	claim_expect(f->st, prio_default, "w", k1);
	assert_int_equal(hark_store_key_running(f->st, k.id, &running), HARK_OK);
	assert_int_equal(running, 1);
	assert_int_equal(hark_store_key_unfinished(f->st, k.id, &running), HARK_OK);
	assert_int_equal(running, 2);
	assert_int_equal(hark_store_key_unfinished(f->st, "", &running), HARK_OK);
	assert_int_equal(running, 1);
	claim_expect(f->st, prio_default, "w", u1);  /* k2 skipped: key at its cap */
	claim_expect(f->st, prio_default, "w", anon);
	claim_expect(f->st, prio_default, "w", NULL);
	assert_int_equal(hark_store_job_finish(f->st, k1, "w", NULL, 0, 1.0, NULL, NULL), HARK_OK);
	claim_expect(f->st, prio_default, "w", k2);
	assert_int_equal(hark_store_key_unfinished(f->st, k.id, &running), HARK_OK);
	assert_int_equal(running, 1);
	assert_int_equal(hark_store_key_running(f->st, k.id, &running), HARK_OK);
	assert_int_equal(running, 1);
}

struct claimer {
	struct hark_store *st;
	char owner[16];
	char (*got)[HARK_ID_LEN];
	size_t n;
	int errors;
};

static void *claim_thread(void *arg)
{
	struct claimer *c = arg;

	for (;;) {
		struct hark_job j;
		int rc = hark_store_job_claim(c->st, prio_default, c->owner, hark_store_now(), 30, &j,
					      NULL);

		if (rc == HARK_ERR_NOT_FOUND)
			break;
		if (rc != HARK_OK) {
			c->errors++;
			break;
		}
		if (strcmp(j.lease_owner, c->owner) != 0)
			c->errors++;
		strcpy(c->got[c->n++], j.id);
		/* finish half of them so writers interleave with claims */
		if (c->n % 2 == 0 &&
		    hark_store_job_finish(c->st, j.id, c->owner, NULL, 0, 0, NULL, NULL) != HARK_OK)
			c->errors++;
		hark_job_clear(&j);
	}
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_claim_threads(void **state)
{
	struct fx *f = *state;
	enum { NJOBS = 300, NT = 4 };
	struct hark_store *st = open_dir(f->dir, 0); /* second handle, no fsync: speed */
	struct claimer cl[NT];
	pthread_t th[NT];
	char(*all)[HARK_ID_LEN] = calloc(NJOBS, HARK_ID_LEN);
	size_t total = 0;

	for (int i = 0; i < NJOBS; i++) {
		char id[HARK_ID_LEN];

		make_job(st, NULL, i % HARK_PRIO_COUNT, NULL, 0, id);
	}
	for (int t = 0; t < NT; t++) {
		cl[t].st = t % 2 ? st : f->st; /* two handles = two "processes" on one file */
		snprintf(cl[t].owner, sizeof(cl[t].owner), "w%d", t);
		cl[t].got = calloc(NJOBS, HARK_ID_LEN);
		cl[t].n = 0;
		cl[t].errors = 0;
		assert_int_equal(pthread_create(&th[t], NULL, claim_thread, &cl[t]), 0);
	}
	for (int t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(cl[t].errors, 0);
		memcpy(all[total], cl[t].got, cl[t].n * HARK_ID_LEN);
		total += cl[t].n;
		free(cl[t].got);
	}
	assert_int_equal(total, NJOBS);
	qsort(all, total, HARK_ID_LEN, cmp_id);
	for (size_t i = 1; i < total; i++)
		assert_true(strcmp(all[i - 1], all[i]) != 0);
	free(all);
	hark_store_close(st);
}

static void test_lease_guard(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN];
	struct hark_event ev;
	struct hark_result r = {"json", "{}", 2};
	int cancel = -1, status = -1;
	struct hark_job j;

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, id);
	claim_expect(f->st, prio_default, "A", id);

	assert_int_equal(hark_store_job_heartbeat(f->st, id, "B", hark_store_now() + 60, &cancel),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_job_progress(f->st, id, "B", "decode", 10, 5, NULL, &ev),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(ev.seq, 0);
	assert_int_equal(hark_store_job_finish(f->st, id, "B", &r, 1, 1, NULL, NULL),
			 HARK_ERR_NOT_FOUND);
	assert_true(strstr(hark_store_errmsg(f->st), "lease") != NULL);
	assert_int_equal(hark_store_job_fail(f->st, id, "B", "io_error", "x", 0, NULL),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_job_canceled(f->st, id, "B", NULL), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_job_release(f->st, id, "B", NULL), HARK_ERR_NOT_FOUND);
	assert_int_equal(job_status(f->st, id), HARK_JOB_RUNNING);

	/* owner A: heartbeat extends, progress records stage/progress events */
	assert_int_equal(hark_store_job_heartbeat(f->st, id, "A", hark_store_now() + 60, &cancel),
			 HARK_OK);
	assert_int_equal(cancel, 0);
	assert_int_equal(hark_store_job_progress(f->st, id, "A", "decode", 10, 5, "{\"queue\":0.1}",
						 &ev),
			 HARK_OK);
	assert_string_equal(ev.type, "stage");
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_progress(f->st, id, "A", "decode", 20, 4, NULL, &ev), HARK_OK);
	assert_string_equal(ev.type, "progress");
	assert_non_null(strstr(ev.data, "\"percent\":20"));
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
	assert_true(j.lease_expires_at > hark_store_now() + 50);
	assert_string_equal(j.stage, "decode");
	assert_true(j.percent == 20);
	assert_true(j.eta_s == 4);
	assert_string_equal(j.timings, "{\"queue\":0.1}"); /* NULL keeps */
	hark_job_clear(&j);

	/* a cancel request shows in the heartbeat */
	assert_int_equal(hark_store_job_cancel(f->st, id, &status, &ev), HARK_OK);
	assert_int_equal(status, HARK_JOB_RUNNING);
	assert_int_equal(ev.seq, 0); /* no event until the worker stops */
	assert_int_equal(hark_store_job_heartbeat(f->st, id, "A", hark_store_now() + 60, &cancel),
			 HARK_OK);
	assert_int_equal(cancel, 1);
	assert_int_equal(hark_store_job_canceled(f->st, id, "A", &ev), HARK_OK);
	assert_string_equal(ev.type, "canceled");
	assert_non_null(strstr(ev.data, "\"status\":\"canceled\""));
	hark_event_clear(&ev);
	assert_int_equal(job_status(f->st, id), HARK_JOB_CANCELED);
	assert_int_equal(hark_store_job_heartbeat(f->st, id, "A", hark_store_now() + 60, &cancel),
			 HARK_ERR_NOT_FOUND);
}

static void test_finish_once(void **state)
{
	struct fx *f = *state;
	struct hark_key k;
	char tok[64], id[HARK_ID_LEN], day[11], *body = NULL;
	struct hark_result res[2] = {{"json", "{\"text\":\"hello\"}", 16}, {"txt", "hello\n", 6}};
	struct hark_result other = {"json", "{\"text\":\"other\"}", 16};
	struct hark_event ev;
	struct hark_webhook w;
	struct hark_job j;
	size_t len = 0;
	double used = -1;

	memset(&k, 0, sizeof(k));
	assert_int_equal(hark_store_key_generate(&k, tok, sizeof(tok)), HARK_OK);
	k.name = (char *)"fin";
	assert_int_equal(hark_store_key_insert(f->st, &k), HARK_OK);

	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(id, j.id);
	strcpy(j.type, "transcribe");
	strcpy(j.key_id, k.id);
	j.priority = HARK_PRIO_HIGH;
	j.max_attempts = 3;
	j.created_at = j.next_run_at = hark_store_now();
	j.webhook = (char *)"http://127.0.0.1:9/hook";
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);

	/* result of an unfinished job is absent */
	assert_int_equal(hark_store_result_get(f->st, id, "json", &body, &len), HARK_ERR_NOT_FOUND);
	claim_expect(f->st, prio_default, "W", id);
	assert_int_equal(hark_store_webhook_next(f->st, hark_store_now() + 1, 8, &w),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_job_finish(f->st, id, "W", res, 2, 12.5, "{\"transcribe\":1.5}",
					       &ev),
			 HARK_OK);
	assert_string_equal(ev.type, "done");
	assert_non_null(strstr(ev.data, "\"status\":\"done\""));
	hark_event_clear(&ev);

	/* second finish (same or other owner) writes nothing */
	assert_int_equal(hark_store_job_finish(f->st, id, "W", &other, 1, 99, NULL, &ev),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(ev.seq, 0);
	assert_int_equal(hark_store_result_get(f->st, id, "json", &body, &len), HARK_OK);
	assert_int_equal(len, 16);
	assert_string_equal(body, "{\"text\":\"hello\"}");
	free(body);
	assert_int_equal(hark_store_result_get(f->st, id, "txt", &body, &len), HARK_OK);
	assert_string_equal(body, "hello\n");
	free(body);
	assert_int_equal(hark_store_result_get(f->st, id, "srt", &body, &len), HARK_ERR_NOT_FOUND);

	assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_DONE);
	assert_true(j.percent == 100);
	assert_true(j.audio_s == 12.5);
	assert_string_equal(j.timings, "{\"transcribe\":1.5}");
	assert_string_equal(j.lease_owner, "");
	assert_true(j.finished_at >= j.started_at && j.started_at > 0);
	hark_job_clear(&j);

	/* usage charged once, today */
	hark_store_utc_day(hark_store_now(), day);
	assert_int_equal(hark_store_usage_get(f->st, k.id, day, &used), HARK_OK);
	assert_true(used == 12.5);

	/* exactly one webhook delivery, body = summary */
	assert_int_equal(hark_store_webhook_next(f->st, hark_store_now() + 1, 8, &w), HARK_OK);
	assert_string_equal(w.job_id, id);
	assert_string_equal(w.url, "http://127.0.0.1:9/hook");
	assert_non_null(strstr(w.body, "\"status\":\"done\""));
	assert_int_equal(w.attempts, 0);
	hark_webhook_clear(&w);
}

static void test_fail_retry(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN];
	struct hark_event ev;
	struct hark_job j;
	double now = hark_store_now();

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, id);
	for (int attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(hark_store_job_claim(f->st, prio_default, "W", now + attempt * 100, 30,
						      &j, NULL),
				 HARK_OK);
		assert_string_equal(j.id, id);
		assert_int_equal(j.attempts, attempt);
		hark_job_clear(&j);
		assert_int_equal(hark_store_job_fail(f->st, id, "W", "io_error", "disk hiccup",
						     now + attempt * 100 + 50, &ev),
				 HARK_OK);
		if (attempt < 3) {
			assert_string_equal(ev.type, "requeued");
			hark_event_clear(&ev);
			assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
			assert_int_equal(j.status, HARK_JOB_QUEUED);
			assert_true(j.next_run_at == now + attempt * 100 + 50);
			assert_null(j.error_code);
			hark_job_clear(&j);
			/* not runnable before its retry time */
			assert_int_equal(hark_store_job_claim(f->st, prio_default, "W",
							      now + attempt * 100 + 49, 30, &j, NULL),
					 HARK_ERR_NOT_FOUND);
		} else {
			assert_string_equal(ev.type, "failed");
			assert_non_null(strstr(ev.data, "\"code\":\"io_error\""));
			hark_event_clear(&ev);
		}
	}
	assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_string_equal(j.error_code, "io_error");
	assert_string_equal(j.error_message, "disk hiccup");
	assert_true(j.finished_at > 0);
	hark_job_clear(&j);

	/* a permanent failure (no retry time) fails at once */
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, id);
	claim_expect(f->st, prio_default, "W", id);
	assert_int_equal(hark_store_job_fail(f->st, id, "W", "corrupt_media", "bad", 0, NULL), HARK_OK);
	assert_int_equal(job_status(f->st, id), HARK_JOB_FAILED);
}

static void test_cancel_release(void **state)
{
	struct fx *f = *state;
	char q[HARK_ID_LEN], r[HARK_ID_LEN];
	struct hark_event ev;
	struct hark_job j;
	int status = -1;

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, q);
	assert_int_equal(hark_store_job_cancel(f->st, q, &status, &ev), HARK_OK);
	assert_int_equal(status, HARK_JOB_QUEUED);
	assert_string_equal(ev.type, "canceled");
	assert_true(ev.seq > 0);
	hark_event_clear(&ev);
	assert_int_equal(job_status(f->st, q), HARK_JOB_CANCELED);
	/* canceling a final job leaves it alone */
	assert_int_equal(hark_store_job_cancel(f->st, q, &status, &ev), HARK_OK);
	assert_int_equal(status, HARK_JOB_CANCELED);
	assert_int_equal(ev.seq, 0);
	assert_int_equal(hark_store_job_cancel(f->st, "job_missing", &status, NULL),
			 HARK_ERR_NOT_FOUND);
	claim_expect(f->st, prio_default, "W", NULL);

	/* release: back to queued, the attempt does not count */
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, r);
	claim_expect(f->st, prio_default, "W", r);
	assert_int_equal(hark_store_job_release(f->st, r, "W", &ev), HARK_OK);
	assert_string_equal(ev.type, "requeued");
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_get(f->st, r, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_QUEUED);
	assert_int_equal(j.attempts, 0);
	assert_string_equal(j.lease_owner, "");
	hark_job_clear(&j);
	claim_expect(f->st, prio_default, "W2", r);
	/* a job whose cancel was requested is not requeued by a release */
	assert_int_equal(hark_store_job_cancel(f->st, r, &status, NULL), HARK_OK);
	assert_int_equal(hark_store_job_release(f->st, r, "W2", &ev), HARK_OK);
	assert_string_equal(ev.type, "canceled");
	hark_event_clear(&ev);
	assert_int_equal(job_status(f->st, r), HARK_JOB_CANCELED);
}

static void test_recover(void **state)
{
	struct fx *f = *state;
	char a[HARK_ID_LEN], b[HARK_ID_LEN], c[HARK_ID_LEN], p[HARK_ID_LEN];
	struct hark_job j;
	struct hark_event *evs = NULL;
	size_t n = 0, nev = 0;
	double now = hark_store_now();

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, a);
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, b);
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, c);
	now = hark_store_now();
	/* a: lease 10 s (expires), b: lease 1000 s under inst1, c: lease 1000 s under inst2 */
	assert_int_equal(hark_store_job_claim(f->st, prio_default, "inst0/w1", now, 10, &j, NULL), 0);
	assert_string_equal(j.id, a);
	hark_job_clear(&j);
	assert_int_equal(hark_store_job_claim(f->st, prio_default, "inst1/w1", now, 1000, &j, NULL), 0);
	hark_job_clear(&j);
	assert_int_equal(hark_store_job_claim(f->st, prio_default, "inst2/w1", now, 1000, &j, NULL), 0);
	hark_job_clear(&j);

	assert_int_equal(hark_store_job_recover(f->st, now + 5, NULL, &n), HARK_OK);
	assert_int_equal(n, 0);
	assert_int_equal(hark_store_job_recover(f->st, now + 20, NULL, &n), HARK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(job_status(f->st, a), HARK_JOB_QUEUED);
	assert_int_equal(job_status(f->st, b), HARK_JOB_RUNNING);
	/* the old owner lost its lease */
	assert_int_equal(hark_store_job_finish(f->st, a, "inst0/w1", NULL, 0, 0, NULL, NULL),
			 HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_event_list(f->st, a, 0, 100, &evs, &nev), HARK_OK);
	assert_int_equal(nev, 3);
	assert_string_equal(evs[2].type, "requeued");
	hark_event_array_free(evs, nev);

	assert_int_equal(hark_store_job_recover(f->st, now + 20, "inst1/", &n), HARK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(job_status(f->st, b), HARK_JOB_QUEUED);
	assert_int_equal(job_status(f->st, c), HARK_JOB_RUNNING);
	assert_int_equal(hark_store_job_recover(f->st, now + 20, "", &n), HARK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(job_status(f->st, c), HARK_JOB_QUEUED);

	/* poison: a job that keeps killing its worker fails after max_attempts */
	make_job(f->st, NULL, HARK_PRIO_REALTIME, NULL, 0, p);
	now = hark_store_now();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hark_store_job_claim(f->st, prio_default, "x", now, 1, &j, NULL), 0);
		assert_string_equal(j.id, p);
		hark_job_clear(&j);
		assert_int_equal(hark_store_job_recover(f->st, now + 2, NULL, &n), HARK_OK);
		assert_int_equal(n, 1);
	}
	assert_int_equal(hark_store_job_get(f->st, p, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_string_equal(j.error_code, "internal");
	assert_string_equal(j.error_message, "worker died repeatedly");
	hark_job_clear(&j);
}

static void finish_job(struct hark_store *st, const char *id, const char *body)
{
	struct hark_result r = {"json", body, strlen(body)};
	struct hark_job j;

	assert_int_equal(hark_store_job_claim(st, prio_default, "F", hark_store_now(), 30, &j, NULL),
			 HARK_OK);
	assert_string_equal(j.id, id);
	hark_job_clear(&j);
	assert_int_equal(hark_store_job_finish(st, id, "F", &r, 1, 1, NULL, NULL), HARK_OK);
}

static void test_purge(void **state)
{
	struct fx *f = *state;
	const char *sha = "ab00000000000000000000000000000000000000000000000000000000000001";
	char a[HARK_ID_LEN], b[HARK_ID_LEN], q[HARK_ID_LEN], orphan[HARK_SHA_HEX_LEN];
	struct hark_event *evs = NULL;
	char *body = NULL;
	size_t nev = 0, len;

	make_job(f->st, NULL, HARK_PRIO_NORMAL, sha, 0, a);
	make_job(f->st, NULL, HARK_PRIO_NORMAL, sha, 0, b);
	finish_job(f->st, a, "{}");
	finish_job(f->st, b, "{}");
	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, q);

	assert_int_equal(hark_store_job_purge(f->st, q, orphan), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_job_purge(f->st, "job_zzz", orphan), HARK_ERR_NOT_FOUND);

	assert_int_equal(hark_store_job_purge(f->st, a, orphan), HARK_OK);
	assert_string_equal(orphan, ""); /* b still uses the blob */
	assert_int_equal(job_status(f->st, b), HARK_JOB_DONE);
	assert_int_equal(hark_store_job_get(f->st, a, &(struct hark_job){0}), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_result_get(f->st, a, "json", &body, &len), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_event_list(f->st, a, 0, 100, &evs, &nev), HARK_OK);
	assert_int_equal(nev, 0);

	assert_int_equal(hark_store_job_purge(f->st, b, orphan), HARK_OK);
	assert_string_equal(orphan, sha);
}

static void test_sweep(void **state)
{
	struct fx *f = *state;
	const char *s1 = "cd00000000000000000000000000000000000000000000000000000000000001";
	const char *s2 = "cd00000000000000000000000000000000000000000000000000000000000002";
	char ids[5][HARK_ID_LEN];
	char(*orph)[HARK_SHA_HEX_LEN] = NULL;
	size_t nj = 0, no = 0;
	double now = hark_store_now();
	struct hark_job j;

	/* 0,1 share s1 and expire; 2 uses s2 and expires; 3 uses s2 and lives on;
	 * 4 is queued with a past expiry (never swept while unfinished) */
	for (int i = 0; i < 5; i++) {
		memset(&j, 0, sizeof(j));
		assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
		strcpy(j.type, "noop");
		strcpy(j.blob_sha, i < 2 ? s1 : s2);
		if (i == 4)
			j.blob_sha[0] = '\0';
		j.priority = HARK_PRIO_NORMAL;
		j.max_attempts = 3;
		j.created_at = j.next_run_at = now;
		j.expires_at = i == 3 ? now + 3600 : now - 10;
		assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);
		strcpy(ids[i], j.id);
		if (i < 4)
			finish_job(f->st, ids[i], "{}");
	}
	assert_int_equal(hark_store_sweep(f->st, now, 2, &nj, &orph, &no), HARK_OK);
	assert_int_equal(nj, 2);
	assert_int_equal(no, 1);
	assert_string_equal(orph[0], s1);
	free(orph);
	assert_int_equal(hark_store_sweep(f->st, now, 100, &nj, &orph, &no), HARK_OK);
	assert_int_equal(nj, 1); /* job 2; its blob is still used by job 3 */
	assert_int_equal(no, 0);
	assert_null(orph);
	assert_int_equal(hark_store_sweep(f->st, now, 100, &nj, &orph, &no), HARK_OK);
	assert_int_equal(nj, 0);
	assert_int_equal(job_status(f->st, ids[3]), HARK_JOB_DONE);
	assert_int_equal(job_status(f->st, ids[4]), HARK_JOB_QUEUED);
}

static void test_dedup(void **state)
{
	struct fx *f = *state;
	const char *dk = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct hark_job j, found;
	struct hark_event ev;
	char src[HARK_ID_LEN], *body = NULL;
	size_t len = 0;

	assert_int_equal(hark_store_job_find_done(f->st, dk, &found), HARK_ERR_NOT_FOUND);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(src, j.id);
	strcpy(j.type, "transcribe");
	strcpy(j.dedup_key, dk);
	j.priority = HARK_PRIO_NORMAL;
	j.max_attempts = 3;
	j.created_at = j.next_run_at = hark_store_now();
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);
	/* queued or running jobs are not dedup sources */
	assert_int_equal(hark_store_job_find_done(f->st, dk, &found), HARK_ERR_NOT_FOUND);
	finish_job(f->st, src, "{\"text\":\"same\"}");
	assert_int_equal(hark_store_job_find_done(f->st, dk, &found), HARK_OK);
	assert_string_equal(found.id, src);
	hark_job_clear(&found);

	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	j.cached = 1;
	assert_int_equal(hark_store_job_insert_cached(f->st, &j, src, &ev), HARK_OK);
	assert_string_equal(ev.type, "done");
	assert_non_null(strstr(ev.data, "\"cached\":true"));
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_get(f->st, j.id, &found), HARK_OK);
	assert_int_equal(found.status, HARK_JOB_DONE);
	assert_int_equal(found.cached, 1);
	hark_job_clear(&found);
	assert_int_equal(hark_store_result_get(f->st, j.id, "json", &body, &len), HARK_OK);
	assert_string_equal(body, "{\"text\":\"same\"}");
	free(body);
	/* the source may go; the copy keeps its results */
	assert_int_equal(hark_store_job_purge(f->st, src, NULL), HARK_OK);
	assert_int_equal(hark_store_result_get(f->st, j.id, "json", &body, &len), HARK_OK);
	free(body);
	/* a source without results: nothing inserted */
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	assert_int_equal(hark_store_job_insert_cached(f->st, &j, src, NULL), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_job_get(f->st, j.id, &found), HARK_ERR_NOT_FOUND);
}

static void test_events(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN], other[HARK_ID_LEN];
	int64_t seqs[6];
	struct hark_event ev, *evs = NULL;
	struct hark_job j;
	size_t n = 0;
	json_t *o;

	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(id, j.id);
	strcpy(j.type, "noop");
	j.priority = HARK_PRIO_NORMAL;
	j.max_attempts = 3;
	j.created_at = j.next_run_at = hark_store_now();
	assert_int_equal(hark_store_job_insert(f->st, &j, &ev), HARK_OK);
	seqs[0] = ev.seq;
	hark_event_clear(&ev);
	make_job(f->st, NULL, HARK_PRIO_BATCH, NULL, 0, other); /* interleaved events */
	assert_int_equal(hark_store_job_claim(f->st, prio_default, "E", hark_store_now(), 30, &j, &ev),
			 HARK_OK);
	hark_job_clear(&j);
	seqs[1] = ev.seq;
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_progress(f->st, id, "E", "transcribe", 30, -1, NULL, &ev), 0);
	seqs[2] = ev.seq;
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_progress(f->st, id, "E", "transcribe", 60, 2, NULL, &ev), 0);
	seqs[3] = ev.seq;
	hark_event_clear(&ev);
	assert_int_equal(hark_store_job_finish(f->st, id, "E", NULL, 0, 0, NULL, &ev), 0);
	seqs[4] = ev.seq;
	hark_event_clear(&ev);

	assert_int_equal(hark_store_event_list(f->st, id, 0, 100, &evs, &n), HARK_OK);
	assert_int_equal(n, 5);
	{
		const char *types[5] = {"queued", "running", "stage", "progress", "done"};
		const char *status[5] = {"queued", "running", "running", "running", "done"};

		for (size_t i = 0; i < n; i++) {
			assert_int_equal(evs[i].seq, seqs[i]);
			if (i)
				assert_true(evs[i].seq > evs[i - 1].seq);
			assert_string_equal(evs[i].type, types[i]);
			assert_string_equal(evs[i].job_id, id);
			o = json_loads(evs[i].data, 0, NULL);
			assert_non_null(o);
			assert_string_equal(json_string_value(json_object_get(o, "status")), status[i]);
			json_decref(o);
		}
	}
	hark_event_array_free(evs, n);
	assert_int_equal(hark_store_event_list(f->st, id, seqs[2], 100, &evs, &n), HARK_OK);
	assert_int_equal(n, 2);
	assert_int_equal(evs[0].seq, seqs[3]);
	hark_event_array_free(evs, n);
	assert_int_equal(hark_store_event_list(f->st, id, 0, 2, &evs, &n), HARK_OK);
	assert_int_equal(n, 2);
	hark_event_array_free(evs, n);
	assert_int_equal(hark_store_event_list(f->st, id, seqs[4], 100, &evs, &n), HARK_OK);
	assert_int_equal(n, 0);
}

static void test_keys(void **state)
{
	struct fx *f = *state;
	struct hark_key a, b, got, *list = NULL;
	char ta[64], tb[64], hash[HARK_SHA_HEX_LEN];
	int64_t v0, v1, v2, v3;
	size_t n = 0;

	assert_int_equal(hark_store_keys_version(f->st, &v0), HARK_OK);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(hark_store_key_generate(&a, ta, sizeof(ta)), HARK_OK);
	assert_int_equal(hark_store_key_generate(&b, tb, sizeof(tb)), HARK_OK);
	a.name = (char *)"alice";
	a.rate_rps = 10;
	a.rate_burst = 20;
	a.daily_quota_s = 3600;
	a.max_concurrent = 4;
	a.created_at = 1000;
	b.name = (char *)"bob";
	b.created_at = 2000;
	assert_int_equal(hark_store_key_insert(f->st, &a), HARK_OK);
	assert_int_equal(hark_store_keys_version(f->st, &v1), HARK_OK);
	assert_true(v1 > v0);
	assert_int_equal(hark_store_key_insert(f->st, &b), HARK_OK);
	assert_int_equal(hark_store_key_insert(f->st, &b), HARK_ERR_INVALID_ARG); /* duplicate */

	hark_store_key_hash(ta, hash);
	assert_int_equal(hark_store_key_get_by_hash(f->st, hash, &got), HARK_OK);
	assert_string_equal(got.id, a.id);
	assert_string_equal(got.name, "alice");
	assert_string_equal(got.prefix, a.prefix);
	assert_true(got.rate_rps == 10 && got.rate_burst == 20 && got.daily_quota_s == 3600);
	assert_int_equal(got.max_concurrent, 4);
	assert_true(got.revoked_at == 0);
	hark_key_clear(&got);
	hark_store_key_hash("hark_wrong", hash);
	assert_int_equal(hark_store_key_get_by_hash(f->st, hash, &got), HARK_ERR_NOT_FOUND);

	assert_int_equal(hark_store_key_list(f->st, &list, &n), HARK_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, b.id); /* newest first */
	assert_string_equal(list[1].id, a.id);
	hark_key_array_free(list, n);

	/* revoke by id, by prefix; unknown; version bumps */
	assert_int_equal(hark_store_keys_version(f->st, &v2), HARK_OK);
	assert_int_equal(hark_store_key_revoke(f->st, a.id, 5000), HARK_OK);
	assert_int_equal(hark_store_keys_version(f->st, &v3), HARK_OK);
	assert_true(v3 > v2);
	assert_int_equal(hark_store_key_revoke(f->st, b.prefix, 6000), HARK_OK);
	assert_int_equal(hark_store_key_revoke(f->st, "key_doesnotexist", 0), HARK_ERR_NOT_FOUND);
	hark_store_key_hash(tb, hash);
	assert_int_equal(hark_store_key_get_by_hash(f->st, hash, &got), HARK_OK);
	assert_true(got.revoked_at == 6000);
	hark_key_clear(&got);
	hark_store_key_hash(ta, hash);
	assert_int_equal(hark_store_key_get_by_hash(f->st, hash, &got), HARK_OK);
	assert_true(got.revoked_at == 5000);
	hark_key_clear(&got);
	/* revoking again keeps the first time */
	assert_int_equal(hark_store_key_revoke(f->st, a.id, 7000), HARK_OK);
	assert_int_equal(hark_store_key_get_by_hash(f->st, hash, &got), HARK_OK);
	assert_true(got.revoked_at == 5000);
	hark_key_clear(&got);
}

static void test_usage(void **state)
{
	struct fx *f = *state;
	char ids[3][HARK_ID_LEN], day[11];
	struct hark_job j;
	double used = -1;

	for (int i = 0; i < 3; i++)
		make_job(f->st, i < 2 ? "key_u" : "key_v", HARK_PRIO_NORMAL, NULL, 0, ids[i]);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hark_store_job_claim(f->st, prio_default, "U", hark_store_now(), 30,
						      &j, NULL),
				 HARK_OK);
		assert_int_equal(hark_store_job_finish(f->st, j.id, "U", NULL, 0, 10.0 + i, NULL, NULL),
				 HARK_OK);
		hark_job_clear(&j);
	}
	hark_store_utc_day(hark_store_now(), day);
	assert_int_equal(hark_store_usage_get(f->st, "key_u", day, &used), HARK_OK);
	assert_true(used == 21.0);
	assert_int_equal(hark_store_usage_get(f->st, "key_v", day, &used), HARK_OK);
	assert_true(used == 12.0);
	assert_int_equal(hark_store_usage_get(f->st, "key_u", "2000-01-01", &used), HARK_OK);
	assert_true(used == 0);
}

static void test_webhooks_meta(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN], *v = NULL, *s1 = NULL, *s2 = NULL;
	struct hark_webhook w;
	struct hark_job j;
	double now = hark_store_now();

	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(id, j.id);
	strcpy(j.type, "noop");
	j.max_attempts = 1;
	j.priority = HARK_PRIO_NORMAL;
	j.created_at = j.next_run_at = now;
	j.webhook = (char *)"https://example.invalid/h";
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);
	claim_expect(f->st, prio_default, "H", id);
	assert_int_equal(hark_store_job_fail(f->st, id, "H", "internal", "boom", now + 5, NULL),
			 HARK_OK); /* attempts exhausted: failed + webhook */
	assert_int_equal(hark_store_webhook_next(f->st, now + 1, 8, &w), HARK_OK);
	assert_non_null(strstr(w.body, "\"status\":\"failed\""));
	assert_int_equal(hark_store_webhook_update(f->st, w.id, 0, now + 100), HARK_OK);
	hark_webhook_clear(&w);
	assert_int_equal(hark_store_webhook_next(f->st, now + 1, 8, &w), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_webhook_next(f->st, now + 101, 8, &w), HARK_OK);
	assert_int_equal(w.attempts, 1);
	hark_webhook_clear(&w);
	assert_int_equal(hark_store_webhook_next(f->st, now + 101, 1, &w), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_webhook_next(f->st, now + 101, 8, &w), HARK_OK);
	assert_int_equal(hark_store_webhook_update(f->st, w.id, 1, 0), HARK_OK);
	assert_int_equal(hark_store_webhook_update(f->st, w.id, 1, 0), HARK_ERR_NOT_FOUND);
	hark_webhook_clear(&w);
	assert_int_equal(hark_store_webhook_next(f->st, now + 1e6, 8, &w), HARK_ERR_NOT_FOUND);

	/* meta */
	assert_int_equal(hark_store_meta_get(f->st, "x", &v), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_meta_set(f->st, "x", "1"), HARK_OK);
	assert_int_equal(hark_store_meta_set(f->st, "x", "2"), HARK_OK);
	assert_int_equal(hark_store_meta_get(f->st, "x", &v), HARK_OK);
	assert_string_equal(v, "2");
	free(v);
	assert_int_equal(hark_store_meta_init(f->st, "x", "3", &v), HARK_OK);
	assert_string_equal(v, "2");
	free(v);
	assert_int_equal(hark_store_meta_init(f->st, "y", "3", &v), HARK_OK);
	assert_string_equal(v, "3");
	free(v);
	assert_int_equal(hark_store_webhook_secret(f->st, &s1), HARK_OK);
	assert_int_equal(strlen(s1), 64);
	assert_int_equal(hark_store_webhook_secret(f->st, &s2), HARK_OK);
	assert_string_equal(s1, s2);
	free(s1);
	free(s2);
	assert_int_equal(hark_store_ping_write(f->st, NULL, 0), HARK_OK);
}

static void test_counts(void **state)
{
	struct fx *f = *state;
	int64_t bs[HARK_JOB_STATUS_COUNT], qp[HARK_PRIO_COUNT];
	char ids[7][HARK_ID_LEN];

	/* priorities 0,1,2,0,1,2,0 */
	for (int i = 0; i < 7; i++)
		make_job(f->st, NULL, i % 3, NULL, 0, ids[i]);
	claim_expect(f->st, prio_default, "C", ids[0]);
	assert_int_equal(hark_store_job_finish(f->st, ids[0], "C", NULL, 0, 0, NULL, NULL), HARK_OK);
	claim_expect(f->st, prio_default, "C", ids[3]);
	assert_int_equal(hark_store_job_counts(f->st, bs, qp), HARK_OK);
	assert_int_equal(bs[HARK_JOB_QUEUED], 5);
	assert_int_equal(bs[HARK_JOB_RUNNING], 1);
	assert_int_equal(bs[HARK_JOB_DONE], 1);
	assert_int_equal(bs[HARK_JOB_FAILED], 0);
	assert_int_equal(bs[HARK_JOB_CANCELED], 0);
	assert_int_equal(qp[HARK_PRIO_REALTIME], 1);
	assert_int_equal(qp[HARK_PRIO_HIGH], 2);
	assert_int_equal(qp[HARK_PRIO_NORMAL], 2);
	assert_int_equal(qp[HARK_PRIO_BATCH], 0);
}

static void test_reopen_and_corrupt(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN], path[512], err[256] = "";
	struct hark_store *st = NULL;
	struct hark_job j;
	FILE *fp;
	int rc;

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, id);
	hark_store_close(f->st);
	f->st = open_dir(f->dir, 1);
	assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
	assert_string_equal(j.id, id);
	hark_job_clear(&j);
	assert_string_equal(hark_store_backend(f->st), "sqlite");
	/* the database and its WAL are private; the directory too */
	{
		struct stat sb;

		snprintf(path, sizeof(path), "%s/hark.db", f->dir);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		snprintf(path, sizeof(path), "%s/hark.db-wal", f->dir);
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		assert_int_equal(stat(f->dir, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0700);
	}

	/* garbage where the database should be */
	snprintf(path, sizeof(path), "%s-bad", f->dir);
	mkdir(path, 0700);
	strcat(path, "/hark.db");
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 512; i++)
		fputs("this is not an SQLite database. ", fp);
	fclose(fp);
	*strrchr(path, '/') = '\0';
	rc = hark_store_open(path, NULL, &st, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_CORRUPT);
	assert_null(st);
	assert_non_null(strstr(err, "not a hark database"));
	/* a tiny garbage file too */
	strcat(path, "/hark.db");
	fp = fopen(path, "w");
	fputs("x", fp);
	fclose(fp);
	*strrchr(path, '/') = '\0';
	rc = hark_store_open(path, NULL, &st, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_CORRUPT);
	/* a directory in its place */
	strcat(path, "/hark.db");
	unlink(path);
	mkdir(path, 0700);
	*strrchr(path, '/') = '\0';
	rc = hark_store_open(path, NULL, &st, err, sizeof(err));
	assert_int_equal(rc, HARK_ERR_IS_DIR);
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_disk_full(void **state)
{
	struct fx *f = *state;
	char id[HARK_ID_LEN], *big, *body = NULL;
	struct hark_result r;
	size_t len;
	struct hark_job j;
	int rc;

	make_job(f->st, NULL, HARK_PRIO_NORMAL, NULL, 0, id);
	claim_expect(f->st, prio_default, "D", id);
	big = malloc(4 << 20);
	memset(big, 'x', 4 << 20);
	r.format = "json";
	r.body = big;
	r.len = 4 << 20;
	/* a database capped at 200 pages (800 KiB) cannot take a 4 MiB result */
	assert_int_equal(hark_store_sqlite_limit_pages(f->st, 200), HARK_OK);
	rc = hark_store_job_finish(f->st, id, "D", &r, 1, 1, NULL, NULL);
	assert_int_equal(rc, HARK_ERR_IO);
	assert_non_null(strstr(hark_store_errmsg(f->st), "disk full"));
	/* nothing was written: the job still runs under D, no result */
	assert_int_equal(job_status(f->st, id), HARK_JOB_RUNNING);
	assert_int_equal(hark_store_result_get(f->st, id, "json", &body, &len), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_sqlite_limit_pages(f->st, 1000000), HARK_OK);
	assert_int_equal(hark_store_job_finish(f->st, id, "D", &r, 1, 1, NULL, NULL), HARK_OK);
	assert_int_equal(hark_store_job_get(f->st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_DONE);
	hark_job_clear(&j);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_ids_summary),
		cmocka_unit_test_setup_teardown(test_insert_get_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_key_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_guard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhooks_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_and_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
