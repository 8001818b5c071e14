/*
 * The worker pool against a real SQLite store in a temporary directory and
 * real audio from $HARK_SHARED, with the PocketSphinx engine: a transcribe
 * job runs queued -> running -> done with results in all four formats and
 * its events published in order with the store's sequence numbers; text
 * ("transcript") and noop jobs; a corrupt upload fails at once; a transient
 * failure (an unreadable blob) is retried and then succeeds; a running
 * two-minute transcription stops within a second of a cancel (in-process and
 * through the store's cancel flag); weighted fair scheduling interleaves
 * batch work with high-priority work; a key's max_concurrent is respected;
 * drain hands a running job back to the queue; a job left running by a dead
 * owner is recovered at start and finishes exactly once; a worker that lost
 * its lease discards its attempt; expired jobs and their blobs are swept;
 * model names resolve to the right engine (Whisper via the shared
 * random-weight micro model, which also checks the Whisper engine's cancel).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "audio_testutil.h"
#include "format/format.h"
#include "jobs/jobs.h"
#include "jobs/options.h"
#include "store/blob.h"
#include "store/store.h"

#define MAX_EVENTS 4096

/* ---- collected events ------------------------------------------------------------ */

struct rec_event {
	int64_t seq;
	char job_id[HARK_ID_LEN];
	char type[16];
	char stage[32];
	double percent;
	double at; /* monotonic */
};

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec_event events[MAX_EVENTS];
static int n_events;
/* When set, the callback restores this file's mode at the first "requeued"
 * event of chmod_job (the transient-failure test). */
static char chmod_path[4096];
static char chmod_job[HARK_ID_LEN];

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_event(const struct hark_event *ev, void *user)
{
	struct rec_event r;
	json_t *root, *prog;

	(void)user;
	memset(&r, 0, sizeof(r));
	r.seq = ev->seq;
	snprintf(r.job_id, sizeof(r.job_id), "%s", ev->job_id);
	snprintf(r.type, sizeof(r.type), "%s", ev->type);
	r.at = mono();
	root = ev->data ? json_loads(ev->data, 0, NULL) : NULL;
	prog = root ? json_object_get(root, "progress") : NULL;
	if (json_is_object(prog)) {
		json_t *s = json_object_get(prog, "stage");
		if (json_is_string(s))
			snprintf(r.stage, sizeof(r.stage), "%s", json_string_value(s));
		r.percent = json_number_value(json_object_get(prog, "percent"));
	}
	json_decref(root);
	pthread_mutex_lock(&ev_mu);
	if (chmod_path[0] && strcmp(r.type, "requeued") == 0 && strcmp(r.job_id, chmod_job) == 0) {
		chmod(chmod_path, 0644);
		chmod_path[0] = '\0';
	}
	if (n_events < MAX_EVENTS)
		events[n_events++] = r;
	pthread_mutex_unlock(&ev_mu);
}

static void events_reset(void)
{
	pthread_mutex_lock(&ev_mu);
	n_events = 0;
	chmod_path[0] = '\0';
	pthread_mutex_unlock(&ev_mu);
}

/* Copies the events of job_id (all jobs when NULL) in publish order. */
static int events_of(const char *job_id, struct rec_event *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&ev_mu);
	for (int i = 0; i < n_events && n < max; i++)
		if (!job_id || strcmp(events[i].job_id, job_id) == 0)
			out[n++] = events[i];
	pthread_mutex_unlock(&ev_mu);
	return n;
}

/* Monotonic time of the first event of job_id with type (and stage if not
 * NULL, percent > min_percent); < 0 if none yet. */
static double event_time(const char *job_id, const char *type, const char *stage,
			 double min_percent)
{
	double t = -1;

	pthread_mutex_lock(&ev_mu);
	for (int i = 0; i < n_events; i++) {
		struct rec_event *e = &events[i];
		if (strcmp(e->job_id, job_id) == 0 && strcmp(e->type, type) == 0 &&
		    (!stage || (strcmp(e->stage, stage) == 0 && e->percent > min_percent))) {
			t = e->at;
			break;
		}
	}
	pthread_mutex_unlock(&ev_mu);
	return t;
}

static double wait_event(const char *job_id, const char *type, const char *stage,
			 double min_percent, double timeout_s)
{
	double end = mono() + timeout_s, t;

	while ((t = event_time(job_id, type, stage, min_percent)) < 0 && mono() < end)
		usleep(5000);
	return t;
}

/* ---- fixture ------------------------------------------------------------------------ */

static char shared_audio[2048];
static char long_wav[4096];   /* ~2 minutes, built once */
static char short_wav[4096];  /* the first 2 s of the JFK clip */
static char scratch[512];     /* holds long_wav */

struct fx {
	char dir[512];
	struct hark_store *st;
	struct hark_jobs *pool;
};

static void fx_open_store(struct fx *f)
{
	struct hark_store_params sp = hark_store_default_params();
	char err[256] = "";

	memset(f, 0, sizeof(*f));
	events_reset();
	assert_int_equal(audio_tu_mkdtemp(f->dir, sizeof(f->dir)), 0);
	sp.sync_full = 0;
	if (hark_store_open(f->dir, &sp, &f->st, err, sizeof(err)) != HARK_OK)
		fail_msg("store open: %s", err);
}

static struct hark_jobs_params fx_params(struct fx *f, int workers)
{
	struct hark_jobs_params p = hark_jobs_default_params();

	p.data_dir = f->dir;
	p.instance_id = "jobs-test";
	p.n_workers = workers;
	p.engine = "pocketsphinx";
	p.webhook_secret = "jobs-test-secret";
	p.on_event = on_event;
	return p;
}

/* For tests whose jobs need no model (noop, transcript): a default model that
 * fails at once, so the pool's start-up preload costs nothing. */
static struct hark_jobs_params fx_params_nomodel(struct fx *f, int workers)
{
	struct hark_jobs_params p = fx_params(f, workers);

	p.engine = "whisper";
	p.model = "/nonexistent/ggml-none.bin";
	return p;
}

static void fx_start(struct fx *f, const struct hark_jobs_params *p)
{
	char err[256] = "";

	if (hark_jobs_start(f->st, p, &f->pool, err, sizeof(err)) != HARK_OK)
		fail_msg("jobs start: %s", err);
}

static void fx_close(struct fx *f)
{
	hark_jobs_free(f->pool);
	f->pool = NULL;
	hark_store_close(f->st);
	audio_tu_rmtree(f->dir);
}

/* Stores the file at path (or n bytes at data) as a blob; sha out. */
static void put_blob(struct fx *f, const char *path, const void *data, size_t n,
		     char sha[HARK_SHA_HEX_LEN])
{
	struct hark_blob_writer *w = NULL;
	char err[256] = "";

	assert_int_equal(hark_blob_writer_new(f->dir, 0, &w, err, sizeof(err)), HARK_OK);
	if (path) {
		char buf[65536];
		size_t r;
		FILE *fp = fopen(path, "rb");

		assert_non_null(fp);
		while ((r = fread(buf, 1, sizeof(buf), fp)) > 0)
			assert_int_equal(hark_blob_writer_write(w, buf, r), HARK_OK);
		fclose(fp);
	} else {
		assert_int_equal(hark_blob_writer_write(w, data, n), HARK_OK);
	}
	if (hark_blob_writer_commit(w, sha, err, sizeof(err)) != HARK_OK)
		fail_msg("blob commit: %s", err);
	hark_blob_writer_free(w);
}

struct job_spec {
	const char *type;
	const char *options;   /* JSON text or NULL */
	const char *blob_sha;  /* or NULL */
	const char *text;      /* transcript jobs */
	const char *key_id;    /* or NULL */
	int max_attempts;      /* 0 = 3 */
	double expires_at;     /* 0 = never */
};

static void insert_job(struct fx *f, const struct job_spec *s, char id[HARK_ID_LEN])
{
	struct hark_job_options o = hark_job_options_default();
	struct hark_job j;
	char err[256] = "";
	char *canon;

	if (s->options &&
	    hark_job_options_parse(s->options, strlen(s->options), &o, err, sizeof(err)) != HARK_OK)
		fail_msg("options: %s", err);
	canon = hark_job_options_canonical(&o);
	assert_non_null(canon);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	snprintf(j.type, sizeof(j.type), "%s", s->type);
	j.status = HARK_JOB_QUEUED;
	j.priority = o.priority;
	if (s->key_id)
		snprintf(j.key_id, sizeof(j.key_id), "%s", s->key_id);
	if (s->blob_sha)
		snprintf(j.blob_sha, sizeof(j.blob_sha), "%s", s->blob_sha);
	j.options = canon;
	j.input_text = (char *)s->text;
	j.max_attempts = s->max_attempts > 0 ? s->max_attempts : 3;
	j.created_at = j.next_run_at = (double)time(NULL);
	j.expires_at = s->expires_at;
	assert_int_equal(hark_store_job_insert(f->st, &j, NULL), HARK_OK);
	if (f->pool)
		hark_jobs_wake(f->pool);
	snprintf(id, HARK_ID_LEN, "%s", j.id);
	free(canon);
	hark_job_options_clear(&o);
}

static int is_final(int status)
{
	return status == HARK_JOB_DONE || status == HARK_JOB_FAILED || status == HARK_JOB_CANCELED;
}

/* Polls until the job reaches a final status (or want, if >= 0); fills *j. */
static void wait_job(struct fx *f, const char *id, int want, double timeout_s, struct hark_job *j)
{
	double end = mono() + timeout_s;

	for (;;) {
		memset(j, 0, sizeof(*j));
		assert_int_equal(hark_store_job_get(f->st, id, j), HARK_OK);
		if (want >= 0 ? j->status == want : is_final(j->status))
			return;
		if (mono() > end)
			fail_msg("job %s: status %s after %.0f s", id,
				 hark_store_status_name(j->status), timeout_s);
		hark_job_clear(j);
		usleep(10000);
	}
}

static char *result(struct fx *f, const char *id, const char *fmt)
{
	char *body = NULL;
	size_t len = 0;

	if (hark_store_result_get(f->st, id, fmt, &body, &len) != HARK_OK)
		return NULL;
	return body;
}

static int have_audio(void)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/jfk/jfk.wav", shared_audio);
	return access(p, R_OK) == 0;
}

static void clip(const char *rel, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", shared_audio, rel);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_transcribe_done(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_stats stats;
	struct rec_event ev[256];
	struct hark_event *sev = NULL;
	char path[4096], sha[HARK_SHA_HEX_LEN], id[HARK_ID_LEN];
	char *txt, *json, *srt, *vtt;
	size_t n_sev = 0;
	json_t *root, *tm;
	int n, i, k;

	(void)state;
	if (!have_audio())
		skip();
	fx_open_store(&f);
	{
		struct hark_jobs_params p = fx_params(&f, 2);
		fx_start(&f, &p);
	}
	clip("jfk/jfk.wav", path, sizeof(path));
	put_blob(&f, path, NULL, 0, sha);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha,
					   .options = "{\"engine\":\"pocketsphinx\"}"}, id);
	wait_job(&f, id, -1, 60, &j);
	assert_string_equal(hark_store_status_name(j.status), "done");
	assert_int_equal(j.attempts, 1);
	assert_true(j.audio_s > 10.5 && j.audio_s < 11.5);
	assert_null(j.error_code);
	assert_non_null(j.timings);
	root = json_loads(j.timings, 0, NULL);
	assert_non_null(root);
	for (const char *const *kname = (const char *const[]){"queue", "transcribe", "render",
							      "store", NULL}; *kname; kname++) {
		tm = json_object_get(root, *kname);
		if (!json_is_number(tm))
			fail_msg("timings lack %s: %s", *kname, j.timings);
		assert_true(json_number_value(tm) >= 0);
	}
	assert_true(json_number_value(json_object_get(root, "transcribe")) > 0.01);
	json_decref(root);
	hark_job_clear(&j);

	/* All four results, consistent with each other. */
	txt = result(&f, id, "txt");
	json = result(&f, id, "json");
	srt = result(&f, id, "srt");
	vtt = result(&f, id, "vtt");
	assert_non_null(txt);
	assert_non_null(json);
	assert_non_null(srt);
	assert_non_null(vtt);
	assert_non_null(strstr(txt, "country"));
	assert_non_null(strstr(srt, " --> "));
	assert_int_equal(strncmp(vtt, "WEBVTT", 6), 0);
	root = json_loads(json, 0, NULL);
	assert_non_null(root);
	assert_true(json_array_size(json_object_get(root, "segments")) > 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(root, "engine"), "name")),
			    "pocketsphinx");
	assert_non_null(strstr(json_string_value(json_object_get(root, "text")), "country"));
	json_decref(root);
	free(txt);
	free(json);
	free(srt);
	free(vtt);

	/* Published events: running first, done last, increasing seq, a
	 * transcribe stage and a render stage, and the very same seqs as the
	 * store's replay (after the insert's "queued"). */
	n = events_of(id, ev, 256);
	assert_true(n >= 4);
	assert_string_equal(ev[0].type, "running");
	assert_string_equal(ev[n - 1].type, "done");
	for (i = 1; i < n; i++)
		assert_true(ev[i].seq > ev[i - 1].seq);
	for (i = 0; i < n && strcmp(ev[i].stage, "transcribe") != 0; i++)
		;
	assert_true(i < n);
	for (k = i; k < n && strcmp(ev[k].stage, "render") != 0; k++)
		;
	assert_true(k < n && k > i);
	assert_int_equal(hark_store_event_list(f.st, id, 0, 1000, &sev, &n_sev), HARK_OK);
	assert_int_equal((int)n_sev, n + 1);
	assert_string_equal(sev[0].type, "queued");
	for (i = 0; i < n; i++) {
		assert_int_equal(sev[i + 1].seq, ev[i].seq);
		assert_string_equal(sev[i + 1].type, ev[i].type);
	}
	hark_event_array_free(sev, n_sev);

	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.completed, 1);
	assert_int_equal(stats.failed, 0);
	assert_true(stats.audio_seconds > 10.5);
	assert_int_equal(stats.workers_total, 2);
	assert_int_equal(stats.stage_count[HARK_STAGE_TRANSCRIBE], 1);
	assert_int_equal(stats.stage_count[HARK_STAGE_QUEUE], 1);
	{
		uint64_t sum = 0;
		for (i = 0; i <= HARK_JOBS_N_BUCKETS; i++)
			sum += stats.stage_bucket[HARK_STAGE_TRANSCRIBE][i];
		assert_int_equal(sum, 1);
	}
	for (i = 1; i < HARK_JOBS_N_BUCKETS; i++)
		assert_true(hark_jobs_buckets[i] > hark_jobs_buckets[i - 1]);
	fx_close(&f);
}

static const char *const srt_text =
	"1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n"
	"2\n00:00:03,000 --> 00:00:04,000\n<i>General</i> Kenobi!\n\n";

static void test_transcript_and_noop(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_transcript *t = NULL;
	char id_srt[HARK_ID_LEN], id_txt[HARK_ID_LEN], id_noop[HARK_ID_LEN], id_bad[HARK_ID_LEN];
	char err[256];
	char *body;

	(void)state;
	fx_open_store(&f);
	p = fx_params_nomodel(&f, 1);
	fx_start(&f, &p);
	insert_job(&f, &(struct job_spec){.type = "transcript", .text = srt_text,
					   .options = "{\"formats\":[\"srt\",\"txt\"]}"}, id_srt);
	insert_job(&f, &(struct job_spec){.type = "transcript",
					   .text = "first line\n\n  second line  \n"}, id_txt);
	insert_job(&f, &(struct job_spec){.type = "noop"}, id_noop);
	insert_job(&f, &(struct job_spec){.type = "transcript", .text = "{\"segments\": 3"}, id_bad);

	wait_job(&f, id_srt, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	assert_non_null(strstr(j.timings, "\"parse\""));
	hark_job_clear(&j);
	body = result(&f, id_srt, "txt");
	assert_non_null(body);
	assert_non_null(strstr(body, "Hello there."));
	assert_non_null(strstr(body, "General Kenobi!"));
	free(body);
	body = result(&f, id_srt, "srt");
	assert_non_null(body);
	assert_int_equal(hark_subtitle_parse(body, strlen(body), &t, err, sizeof(err)), HARK_OK);
	assert_int_equal(t->n_segments, 2);
	assert_true(t->segments[0].start > 0.99 && t->segments[0].start < 1.01);
	assert_true(t->segments[1].end > 3.99 && t->segments[1].end < 4.01);
	hark_transcript_free(t);
	free(body);
	assert_null(result(&f, id_srt, "json")); /* not requested */
	assert_true(event_time(id_srt, "stage", "parse", -1) >= 0);

	wait_job(&f, id_txt, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	hark_job_clear(&j);
	body = result(&f, id_txt, "json");
	assert_non_null(body);
	{
		json_t *root = json_loads(body, 0, NULL);
		assert_non_null(root);
		assert_int_equal(json_array_size(json_object_get(root, "segments")), 2);
		assert_string_equal(json_string_value(json_object_get(root, "text")),
				    "first line second line");
		json_decref(root);
	}
	free(body);

	wait_job(&f, id_noop, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	hark_job_clear(&j);
	body = result(&f, id_noop, "json");
	assert_non_null(body);
	assert_string_equal(body, "{\"type\":\"noop\"}");
	free(body);

	wait_job(&f, id_bad, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_int_equal(j.attempts, 1);
	assert_string_equal(j.error_code, hark_err_code(HARK_ERR_FORMAT));
	assert_non_null(j.error_message);
	hark_job_clear(&j);
	fx_close(&f);
}

static void test_corrupt_fails_at_once(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_jobs_stats stats;
	unsigned char junk[8192];
	char sha[HARK_SHA_HEX_LEN], id[HARK_ID_LEN], id_missing[HARK_ID_LEN];
	char path[4096];

	(void)state;
	fx_open_store(&f);
	p = fx_params(&f, 1);
	p.retry_base_s = 0.05;
	fx_start(&f, &p);
	assert_int_equal(getrandom(junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	junk[0] = 0x13; /* no accidental magic number */
	put_blob(&f, NULL, junk, sizeof(junk), sha);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha}, id);
	wait_job(&f, id, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_int_equal(j.attempts, 1);
	if (strcmp(j.error_code, "corrupt_media") != 0 && strcmp(j.error_code, "not_media") != 0)
		fail_msg("error code %s (%s)", j.error_code, j.error_message);
	assert_true(event_time(id, "requeued", NULL, 0) < 0);
	assert_true(event_time(id, "failed", NULL, 0) >= 0);
	hark_job_clear(&j);

	/* A blob that vanished is permanent too. */
	memset(junk, 0x42, 4096);
	put_blob(&f, NULL, junk, 4096, sha);
	assert_int_equal(hark_blob_path(f.dir, sha, path, sizeof(path)), HARK_OK);
	assert_int_equal(unlink(path), 0);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha}, id_missing);
	wait_job(&f, id_missing, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_int_equal(j.attempts, 1);
	assert_string_equal(j.error_code, "not_found");
	assert_non_null(strstr(j.error_message, "blob missing"));
	hark_job_clear(&j);

	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.failed, 2);
	assert_int_equal(stats.retried, 0);
	fx_close(&f);
}

/* ---- capabilities: root ignores file modes unless CAP_DAC_* are dropped ---- */

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};

	return (int)syscall(SYS_capget, &h, d);
}

static int caps_set(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};

	return (int)syscall(SYS_capset, &h, d);
}

/* Drops the DAC override capabilities from this thread's effective set
 * (threads it creates inherit that). saved gets the previous set. */
static int drop_dac(struct __user_cap_data_struct saved[2])
{
	struct __user_cap_data_struct d[2];

	if (caps_get(saved) != 0)
		return -1;
	memcpy(d, saved, sizeof(d));
	d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	return caps_set(d);
}

static void test_transient_retry(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_jobs_stats stats;
	struct __user_cap_data_struct saved[2];
	char blob[4096], sha[HARK_SHA_HEX_LEN], id[HARK_ID_LEN];
	int dropped = 0, fd;

	(void)state;
	if (!short_wav[0])
		skip();
	fx_open_store(&f);
	put_blob(&f, short_wav, NULL, 0, sha);
	assert_int_equal(hark_blob_path(f.dir, sha, blob, sizeof(blob)), HARK_OK);
	assert_int_equal(chmod(blob, 0), 0);
	if (geteuid() == 0) {
		dropped = drop_dac(saved) == 0;
		if (!dropped) {
			chmod(blob, 0644);
			fx_close(&f);
			skip();
		}
	}
	/* The mode must really stop this thread (and the pool's threads) now. */
	fd = open(blob, O_RDONLY);
	if (fd >= 0) {
		close(fd);
		if (dropped)
			caps_set(saved);
		chmod(blob, 0644);
		fx_close(&f);
		skip();
	}
	/* Queue the job first and arm the restore, then start the pool. */
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha, .max_attempts = 3},
		   id);
	pthread_mutex_lock(&ev_mu);
	snprintf(chmod_path, sizeof(chmod_path), "%s", blob);
	snprintf(chmod_job, sizeof(chmod_job), "%s", id);
	pthread_mutex_unlock(&ev_mu);
	p = fx_params(&f, 1);
	p.retry_base_s = 0.1;
	p.retry_max_s = 0.3;
	fx_start(&f, &p); /* worker threads inherit the reduced capabilities */
	if (dropped)
		assert_int_equal(caps_set(saved), 0);

	wait_job(&f, id, -1, 60, &j);
	if (j.status != HARK_JOB_DONE)
		fail_msg("status %s: %s %s", hark_store_status_name(j.status),
			 j.error_code ? j.error_code : "", j.error_message ? j.error_message : "");
	assert_int_equal(j.attempts, 2);
	assert_null(j.error_code);
	hark_job_clear(&j);
	assert_true(event_time(id, "requeued", NULL, 0) >= 0);
	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.retried, 1);
	assert_int_equal(stats.completed, 1);
	fx_close(&f);
}

/* ---- cancel ---------------------------------------------------------------------------- */

static void start_long_job(struct fx *f, char id[HARK_ID_LEN])
{
	char sha[HARK_SHA_HEX_LEN];

	put_blob(f, long_wav, NULL, 0, sha);
	insert_job(f, &(struct job_spec){.type = "transcribe", .blob_sha = sha}, id);
	/* Really transcribing: a progress event past 0 %. */
	if (wait_event(id, "progress", "transcribe", 0.0, 60) < 0)
		fail_msg("no transcription progress");
}

static void test_cancel_running(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_jobs_stats stats;
	char id[HARK_ID_LEN], id2[HARK_ID_LEN];
	double t0, t1;
	int prev;

	(void)state;
	if (!long_wav[0])
		skip();
	fx_open_store(&f);
	p = fx_params(&f, 1);
	p.heartbeat_s = 0.2;
	fx_start(&f, &p);

	/* In-process cancel. */
	start_long_job(&f, id);
	t0 = mono();
	assert_int_equal(hark_jobs_cancel(f.pool, id), 1);
	t1 = wait_event(id, "canceled", NULL, 0, 10);
	assert_true(t1 > 0);
	print_message("in-process cancel: canceled after %.3f s\n", t1 - t0);
	if (t1 - t0 >= 1.0)
		fail_msg("cancel took %.2f s", t1 - t0);
	wait_job(&f, id, -1, 5, &j);
	assert_int_equal(j.status, HARK_JOB_CANCELED);
	assert_true(j.percent < 100);
	hark_job_clear(&j);
	assert_null(result(&f, id, "json"));
	assert_int_equal(hark_jobs_cancel(f.pool, id), 0); /* no longer running */

	/* Store-side cancel (another process handled the DELETE): noticed by
	 * the heartbeat within heartbeat_s, then stopped within a chunk. */
	start_long_job(&f, id2);
	t0 = mono();
	assert_int_equal(hark_store_job_cancel(f.st, id2, &prev, NULL), HARK_OK);
	assert_int_equal(prev, HARK_JOB_RUNNING);
	t1 = wait_event(id2, "canceled", NULL, 0, 10);
	assert_true(t1 > 0);
	print_message("store-side cancel: canceled after %.3f s\n", t1 - t0);
	if (t1 - t0 >= 1.0 + p.heartbeat_s)
		fail_msg("store cancel took %.2f s", t1 - t0);
	wait_job(&f, id2, -1, 5, &j);
	assert_int_equal(j.status, HARK_JOB_CANCELED);
	hark_job_clear(&j);

	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.canceled, 2);
	fx_close(&f);
}

static void test_drain_releases(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	char id[HARK_ID_LEN];
	double t0;

	(void)state;
	if (!long_wav[0])
		skip();
	fx_open_store(&f);
	p = fx_params(&f, 1);
	fx_start(&f, &p);
	start_long_job(&f, id);
	t0 = mono();
	assert_int_equal(hark_jobs_drain(f.pool, 0.3), 1);
	assert_true(mono() - t0 < 5.0);
	assert_true(event_time(id, "requeued", NULL, 0) >= 0);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_job_get(f.st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_QUEUED);
	assert_int_equal(j.attempts, 0);
	assert_string_equal(j.lease_owner, "");
	hark_job_clear(&j);
	/* A drained pool claims nothing more. */
	assert_int_equal(hark_jobs_drain(f.pool, 0), 0);
	usleep(300 * 1000);
	assert_int_equal(hark_store_job_get(f.st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_QUEUED);
	hark_job_clear(&j);
	fx_close(&f);
}

/* ---- scheduling -------------------------------------------------------------------------- */

static void test_weighted_fairness(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	char batch[20][HARK_ID_LEN], high[20][HARK_ID_LEN];
	static struct rec_event ev[MAX_EVENTS];
	int order[40], n_done = 0, n, batch_in_first20 = 0, last_high = -1, first_batch = -1;

	(void)state;
	fx_open_store(&f);
	/* Batch jobs are older: FIFO alone would run them all first. */
	for (int i = 0; i < 20; i++)
		insert_job(&f, &(struct job_spec){.type = "noop", .options = "{\"priority\":\"batch\"}"},
			   batch[i]);
	for (int i = 0; i < 20; i++)
		insert_job(&f, &(struct job_spec){.type = "noop", .options = "{\"priority\":\"high\"}"},
			   high[i]);
	p = fx_params_nomodel(&f, 1);
	fx_start(&f, &p);
	wait_job(&f, batch[19], HARK_JOB_DONE, 30, &j);
	hark_job_clear(&j);
	wait_job(&f, high[19], HARK_JOB_DONE, 30, &j);
	hark_job_clear(&j);

	n = events_of(NULL, ev, MAX_EVENTS);
	for (int i = 0; i < n; i++) {
		if (strcmp(ev[i].type, "done") != 0)
			continue;
		int is_batch = -1;
		for (int k = 0; k < 20; k++) {
			if (strcmp(ev[i].job_id, batch[k]) == 0)
				is_batch = 1;
			if (strcmp(ev[i].job_id, high[k]) == 0)
				is_batch = 0;
		}
		assert_true(is_batch >= 0);
		assert_true(n_done < 40);
		order[n_done++] = is_batch;
	}
	assert_int_equal(n_done, 40);
	for (int i = 0; i < 40; i++) {
		if (order[i] && first_batch < 0)
			first_batch = i;
		if (!order[i])
			last_high = i;
		if (i < 20)
			batch_in_first20 += order[i];
	}
	/* Weights 8:1 → roughly one batch job per 8 high ones while both wait. */
	if (batch_in_first20 < 1 || batch_in_first20 > 6 || first_batch > 12 || last_high > 30)
		fail_msg("order not weighted-fair: %d batch in the first 20, first batch at %d, "
			 "last high at %d", batch_in_first20, first_batch, last_high);
	assert_int_equal(order[0], 0); /* high goes first */
	fx_close(&f);
}

static void test_key_max_concurrent(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_key k;
	char token[128], sha[HARK_SHA_HEX_LEN];
	char ids[3][HARK_ID_LEN];
	static struct rec_event ev[MAX_EVENTS];
	int n, running_key = 0, max_key = 0, running_all = 0, max_all = 0;

	(void)state;
	if (!short_wav[0])
		skip();
	fx_open_store(&f);
	memset(&k, 0, sizeof(k));
	assert_int_equal(hark_store_key_generate(&k, token, sizeof(token)), HARK_OK);
	k.name = strdup("capped");
	k.created_at = (double)time(NULL);
	k.max_concurrent = 1;
	assert_int_equal(hark_store_key_insert(f.st, &k), HARK_OK);
	put_blob(&f, short_wav, NULL, 0, sha);
	for (int i = 0; i < 2; i++)
		insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha, .key_id = k.id},
			   ids[i]);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha}, ids[2]);
	p = fx_params(&f, 3);
	fx_start(&f, &p);
	for (int i = 0; i < 3; i++) {
		wait_job(&f, ids[i], -1, 120, &j);
		assert_int_equal(j.status, HARK_JOB_DONE);
		hark_job_clear(&j);
	}
	n = events_of(NULL, ev, MAX_EVENTS);
	/* Replay in store order. */
	for (int a = 1; a < n; a++) {
		struct rec_event t = ev[a];
		int b = a;
		while (b > 0 && ev[b - 1].seq > t.seq) {
			ev[b] = ev[b - 1];
			b--;
		}
		ev[b] = t;
	}
	for (int i = 0; i < n; i++) {
		int keyed = strcmp(ev[i].job_id, ids[2]) != 0;
		int d = strcmp(ev[i].type, "running") == 0 ? 1 :
			(strcmp(ev[i].type, "done") == 0 || strcmp(ev[i].type, "failed") == 0 ||
			 strcmp(ev[i].type, "requeued") == 0) ? -1 : 0;
		running_all += d;
		if (keyed)
			running_key += d;
		if (running_key > max_key)
			max_key = running_key;
		if (running_all > max_all)
			max_all = running_all;
	}
	assert_int_equal(max_key, 1);
	assert_true(max_all >= 2); /* the uncapped job ran beside a capped one */
	hark_key_clear(&k);
	fx_close(&f);
}

/* ---- recovery --------------------------------------------------------------------------- */

static void test_recovery_at_start(void **state)
{
	struct fx f;
	struct hark_job j, claimed;
	struct hark_jobs_params p;
	struct hark_jobs_stats stats;
	struct hark_event *sev = NULL;
	size_t n_sev = 0;
	int order[HARK_PRIO_COUNT] = {0, 1, 2, 3}, n_done = 0, n_requeued = 0;
	char id[HARK_ID_LEN];

	(void)state;
	fx_open_store(&f);
	insert_job(&f, &(struct job_spec){.type = "noop"}, id);
	/* A previous server claimed it and died (its lease has not expired). */
	memset(&claimed, 0, sizeof(claimed));
	assert_int_equal(hark_store_job_claim(f.st, order, "dead-instance/w0", (double)time(NULL),
					      3600, &claimed, NULL), HARK_OK);
	assert_string_equal(claimed.id, id);
	hark_job_clear(&claimed);

	p = fx_params_nomodel(&f, 2);
	fx_start(&f, &p);
	wait_job(&f, id, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	assert_int_equal(j.attempts, 2);
	hark_job_clear(&j);
	usleep(300 * 1000);
	assert_int_equal(hark_store_event_list(f.st, id, 0, 1000, &sev, &n_sev), HARK_OK);
	for (size_t i = 0; i < n_sev; i++) {
		n_done += strcmp(sev[i].type, "done") == 0;
		n_requeued += strcmp(sev[i].type, "requeued") == 0;
	}
	hark_event_array_free(sev, n_sev);
	assert_int_equal(n_done, 1);
	assert_int_equal(n_requeued, 1);
	hark_jobs_get_stats(f.pool, &stats);
	assert_int_equal(stats.recovered, 1);
	assert_int_equal(stats.completed, 1);
	fx_close(&f);
}

static int count_events(const char *job_id, const char *type)
{
	int n = 0;

	pthread_mutex_lock(&ev_mu);
	for (int i = 0; i < n_events; i++)
		n += strcmp(events[i].job_id, job_id) == 0 && strcmp(events[i].type, type) == 0;
	pthread_mutex_unlock(&ev_mu);
	return n;
}

/* A worker whose lease was taken away stops and discards its attempt: it
 * writes no outcome, and the requeued job is claimed afresh. */
static void test_lease_lost(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	char id[HARK_ID_LEN];
	size_t n = 0;
	double t0, end;

	(void)state;
	if (!long_wav[0])
		skip();
	fx_open_store(&f);
	p = fx_params(&f, 1);
	p.heartbeat_s = 0.2;
	fx_start(&f, &p);
	start_long_job(&f, id);
	assert_int_equal(count_events(id, "running"), 1);
	/* Recovery with a clock an hour ahead sees the lease as expired. */
	assert_int_equal(hark_store_job_recover(f.st, (double)time(NULL) + 3600, NULL, &n), HARK_OK);
	assert_int_equal(n, 1);
	t0 = mono();
	end = t0 + 10;
	while (count_events(id, "running") < 2 && mono() < end)
		usleep(5000);
	assert_int_equal(count_events(id, "running"), 2);
	print_message("lease lost: claimed again after %.3f s\n", mono() - t0);
	assert_true(mono() - t0 < 2.0);
	assert_int_equal(count_events(id, "canceled"), 0);
	assert_int_equal(count_events(id, "failed"), 0);
	assert_int_equal(count_events(id, "done"), 0);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_job_get(f.st, id, &j), HARK_OK);
	assert_int_equal(j.status, HARK_JOB_RUNNING);
	assert_int_equal(j.attempts, 2);
	hark_job_clear(&j);
	assert_int_equal(hark_jobs_cancel(f.pool, id), 1);
	wait_job(&f, id, -1, 10, &j);
	assert_int_equal(j.status, HARK_JOB_CANCELED);
	hark_job_clear(&j);
	fx_close(&f);
}

/* Finished jobs past their retention are swept when the pool starts, with
 * the blob no other job uses; unexpired jobs stay. */
static void test_sweep_at_start(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	struct hark_jobs_stats stats;
	unsigned char junk[4096];
	char sha[HARK_SHA_HEX_LEN], blob[4096], id_old[HARK_ID_LEN], id_keep[HARK_ID_LEN];
	double end;
	int rc;

	(void)state;
	fx_open_store(&f);
	memset(junk, 0x5a, sizeof(junk));
	put_blob(&f, NULL, junk, sizeof(junk), sha);
	assert_int_equal(hark_blob_path(f.dir, sha, blob, sizeof(blob)), HARK_OK);
	insert_job(&f, &(struct job_spec){.type = "noop", .blob_sha = sha,
					   .expires_at = (double)time(NULL) - 10}, id_old);
	insert_job(&f, &(struct job_spec){.type = "noop", .expires_at = (double)time(NULL) + 3600},
		   id_keep);
	p = fx_params_nomodel(&f, 1);
	fx_start(&f, &p);
	wait_job(&f, id_old, -1, 30, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	hark_job_clear(&j);
	wait_job(&f, id_keep, -1, 30, &j);
	hark_job_clear(&j);
	hark_jobs_free(f.pool);
	f.pool = NULL;
	assert_int_equal(access(blob, F_OK), 0);

	fx_start(&f, &p);
	end = mono() + 10;
	do {
		memset(&j, 0, sizeof(j));
		rc = hark_store_job_get(f.st, id_old, &j);
		hark_job_clear(&j);
		if (rc == HARK_ERR_NOT_FOUND)
			break;
		usleep(10000);
	} while (mono() < end);
	assert_int_equal(rc, HARK_ERR_NOT_FOUND);
	/* The counters follow once the blob is removed, just after the commit. */
	do {
		hark_jobs_get_stats(f.pool, &stats);
		if (stats.swept_blobs > 0)
			break;
		usleep(10000);
	} while (mono() < end);
	assert_int_not_equal(access(blob, F_OK), 0);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_job_get(f.st, id_keep, &j), HARK_OK);
	hark_job_clear(&j);
	assert_int_equal(stats.swept_jobs, 1);
	assert_int_equal(stats.swept_blobs, 1);
	fx_close(&f);
}

/* ---- model names ------------------------------------------------------------------------ */

/*
 * Model names resolve like `hark transcribe -m NAME`: a Whisper name is
 * ggml-NAME.bin in $HARK_MODELS (here a directory linking the shared
 * random-weight micro model), a PocketSphinx name is a directory of its
 * model directory; an unknown name fails at once as a model error. The
 * Whisper engine also stops a two-minute job within a second of a cancel.
 */
/* engine.name of a JSON result ("" if absent); static buffer. */
static const char *engine_name(const char *json)
{
	static char name[32];
	json_t *root = json_loads(json, 0, NULL);
	json_t *v = json_object_get(json_object_get(root, "engine"), "name");

	snprintf(name, sizeof(name), "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(root);
	return name;
}

static void test_model_names(void **state)
{
	struct fx f;
	struct hark_job j;
	struct hark_jobs_params p;
	char models[512], link[1024], target[2048], *old = NULL, *body;
	char id_w[HARK_ID_LEN], id_ps[HARK_ID_LEN], id_bad[HARK_ID_LEN], id_long[HARK_ID_LEN];
	char sha[HARK_SHA_HEX_LEN];
	const char *shared = getenv("HARK_SHARED");
	double t0, t1;

	(void)state;
	snprintf(target, sizeof(target), "%s/whisper/models/micro-en3.bin", shared ? shared : "../shared");
	if (!short_wav[0] || !long_wav[0] || access(target, R_OK) != 0)
		skip();
	assert_int_equal(audio_tu_mkdtemp(models, sizeof(models)), 0);
	snprintf(link, sizeof(link), "%s/ggml-micro-test.bin", models);
	assert_int_equal(symlink(target, link), 0);
	if (getenv("HARK_MODELS"))
		old = strdup(getenv("HARK_MODELS"));
	setenv("HARK_MODELS", models, 1); /* no pool thread runs yet */

	fx_open_store(&f);
	p = fx_params(&f, 1);
	p.heartbeat_s = 0.2;
	fx_start(&f, &p);
	put_blob(&f, short_wav, NULL, 0, sha);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha,
					   .options = "{\"model\":\"micro-test\",\"formats\":[\"json\"]}"},
		   id_w);
#ifndef __SANITIZE_ADDRESS__
	/* PocketSphinx validates a model in a forked child; under ASan a fork
	 * while other threads allocate can hang the child (its allocator lock),
	 * so this named PocketSphinx model, loaded by a worker, runs only in
	 * plain builds. */
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha,
					   .options = "{\"engine\":\"pocketsphinx\",\"model\":\"en-us\"}"},
		   id_ps);
#endif
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha,
					   .options = "{\"model\":\"no-such-model\"}"}, id_bad);

	wait_job(&f, id_w, -1, 60, &j);
	if (j.status != HARK_JOB_DONE)
		fail_msg("whisper job: %s %s", j.error_code ? j.error_code : "",
			 j.error_message ? j.error_message : "");
	hark_job_clear(&j);
	body = result(&f, id_w, "json");
	assert_non_null(body);
	assert_string_equal(engine_name(body), "whisper");
	free(body);
	assert_null(result(&f, id_w, "txt"));

#ifndef __SANITIZE_ADDRESS__
	wait_job(&f, id_ps, -1, 60, &j);
	assert_int_equal(j.status, HARK_JOB_DONE);
	hark_job_clear(&j);
	body = result(&f, id_ps, "json");
	assert_non_null(body);
	assert_string_equal(engine_name(body), "pocketsphinx");
	free(body);
#else
	(void)id_ps;
#endif

	wait_job(&f, id_bad, -1, 60, &j);
	assert_int_equal(j.status, HARK_JOB_FAILED);
	assert_int_equal(j.attempts, 1);
	assert_string_equal(j.error_code, hark_err_code(HARK_ERR_MODEL));
	assert_non_null(strstr(j.error_message, "no-such-model"));
	hark_job_clear(&j);

	/* Whisper on two minutes: cancel while it runs. */
	put_blob(&f, long_wav, NULL, 0, sha);
	insert_job(&f, &(struct job_spec){.type = "transcribe", .blob_sha = sha,
					   .options = "{\"engine\":\"whisper\",\"model\":\"micro-test\"}"},
		   id_long);
	/* Whisper reports progress per 30 s window, which takes long under
	 * sanitizers: cancel 1.5 s into the transcribe stage instead. */
	if (wait_event(id_long, "stage", "transcribe", -1.0, 60) < 0)
		fail_msg("whisper job did not start");
	usleep(1500 * 1000);
	t0 = mono();
	assert_int_equal(hark_jobs_cancel(f.pool, id_long), 1);
	t1 = wait_event(id_long, "canceled", NULL, 0, 10);
	assert_true(t1 > 0);
	print_message("whisper cancel: canceled after %.3f s\n", t1 - t0);
	if (t1 - t0 >= 1.0)
		fail_msg("whisper cancel took %.2f s", t1 - t0);
	fx_close(&f);

	if (old) {
		setenv("HARK_MODELS", old, 1);
		free(old);
	} else {
		unsetenv("HARK_MODELS");
	}
	audio_tu_rmtree(models);
}

/* ---- setup ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
	const char *shared = getenv("HARK_SHARED");
	char src[4096];

	(void)state;
	snprintf(shared_audio, sizeof(shared_audio), "%s/audio", shared ? shared : "../shared");
	long_wav[0] = short_wav[0] = '\0';
	if (!have_audio() || !audio_tu_have_ffmpeg())
		return 0;
	if (audio_tu_mkdtemp(scratch, sizeof(scratch)) != 0)
		return 0;
	clip("jfk/jfk.wav", src, sizeof(src));
	snprintf(long_wav, sizeof(long_wav), "%s/long.wav", scratch);
	/* 11 copies of the 11 s clip: about two minutes. */
	if (audio_tu_ffmpeg("-stream_loop 10 -i '%s' -ac 1 -ar 16000 -c:a pcm_s16le '%s'", src,
			    long_wav) != 0)
		long_wav[0] = '\0';
	snprintf(short_wav, sizeof(short_wav), "%s/short.wav", scratch);
	if (audio_tu_ffmpeg("-i '%s' -t 2 -c:a pcm_s16le '%s'", src, short_wav) != 0)
		short_wav[0] = '\0';
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (scratch[0])
		audio_tu_rmtree(scratch);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcribe_done),
		cmocka_unit_test(test_transcript_and_noop),
		cmocka_unit_test(test_corrupt_fails_at_once),
		cmocka_unit_test(test_transient_retry),
		cmocka_unit_test(test_cancel_running),
		cmocka_unit_test(test_drain_releases),
		cmocka_unit_test(test_weighted_fairness),
		cmocka_unit_test(test_key_max_concurrent),
		cmocka_unit_test(test_recovery_at_start),
		cmocka_unit_test(test_lease_lost),
		cmocka_unit_test(test_sweep_at_start),
		cmocka_unit_test(test_model_names),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
