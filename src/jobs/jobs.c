/*
 * The worker pool of the job service (src/jobs/jobs.h). Worker threads claim
 * jobs from the store in an order chosen by stride scheduling over the four
 * priority classes (each class has a pass value that grows by 1/weight each
 * time it is served; the class with the lowest pass is tried first), run them
 * (transcribe a blob, parse a submitted transcript, analyse a meeting with
 * the pipeline of src/analyze/pipeline.h, transcribe then analyse, draw a
 * diagram of a transcript or recording, render a recording's diagram video,
 * or a no-op), report throttled progress, and end each attempt exactly once: finish, fail (with
 * a retry time for transient errors), canceled, or released on drain. A
 * heartbeat thread renews leases and notices store-side cancels and lost
 * leases; a housekeeping thread refreshes gauges, recovers expired leases
 * and sweeps expired jobs and their blobs; a webhook thread (webhook.c)
 * delivers job-completion callbacks. Loaded models are cached per (engine,
 * model) and shared read-only by every job; each job gets its own context.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze/pipeline.h"
#include "analyze/visual.h"
#include "api/transcribe_internal.h"
#include "asr/whisper/wmodels.h"
#include "audio/audio.h"
#include "format/format.h"
#include "format/transcript.h"
#include "hark/transcribe.h"
#include "jobs/jobs.h"
#include "jobs/options.h"
#include "jobs/webhook.h"
#include "render/diagram.h"
#include "render/scene.h"
#include "render/video.h"
#include "store/blob.h"
#include "util/errbuf.h"

#ifndef HARK_PS_MODELDIR
#define HARK_PS_MODELDIR "/usr/share/pocketsphinx/model"
#endif

const double hark_jobs_buckets[HARK_JOBS_N_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
};

#define MAX_MODELS 8             /* cached (engine, model) pairs */
#define IDLE_POLL_S 1.0          /* idle workers re-check the queue this often */
#define PROGRESS_MIN_S 0.25      /* progress writes per job at most this often */
#define RECOVER_EVERY_S 60.0     /* expired-lease recovery and TTL sweep period */
#define SWEEP_BATCH 500
#define DRAIN_CANCEL_WAIT_S 30.0 /* how long drain waits for canceled jobs to hand back */
#define VISUAL_MAX_INPUT ((size_t)64 << 20) /* transcript bytes a diagram job reads */
#define VIDEO_RESULT_CAP ((int64_t)512 << 20) /* an MP4 stored as a result at most */
#define VIDEO_TMP_PREFIX "video-"  /* DIR/blobs/tmp/video-<job>-<rand>/: a render's files */

/* Why a running job's cancel callback fires (bits of worker.flags). */
#define STOP_USER 1   /* hark_jobs_cancel or a store-side cancel request */
#define STOP_DRAIN 2  /* drain: hand the job back to the queue */
#define STOP_LOST 4   /* the lease is gone: discard the work */

struct worker {
	struct hark_jobs *pool;
	int idx;
	pthread_t thread;
	int started;
	char owner[64];
	atomic_int flags;          /* STOP_* bits for the current job */
	/* under pool->mu */
	int busy;                  /* claiming or running */
	char job_id[HARK_ID_LEN];  /* "" unless running a job */
	uint64_t gen;              /* bumps with every job */
};

struct model_entry {
	char engine[16];
	char model[256];
	struct hark_model *m;
	int refs;
	uint64_t last_used;
};

struct hark_jobs {
	struct hark_store *st;
	struct hark_jobs_params p;     /* with strings pointing at the copies below */
	char *data_dir, *instance_id, *engine, *model, *secret;
	char default_engine[16];       /* engine the defaults resolve to ("" unknown) */

	pthread_mutex_t mu;
	pthread_cond_t work_cond;      /* idle workers wait here */
	pthread_cond_t idle_cond;      /* drain waits here for workers to go idle */
	pthread_cond_t tick_cond;      /* heartbeat/housekeeping sleep here */
	uint64_t wake_seq;
	int n_waiting;
	int n_busy;
	int stop, draining, drained;
	double pass[HARK_PRIO_COUNT];
	size_t released;

	struct worker *workers;
	int n_workers;
	pthread_t hb_thread, hk_thread;
	int hb_started, hk_started;

	pthread_mutex_t model_mu;
	struct model_entry models[MAX_MODELS];
	uint64_t model_clock;

	pthread_mutex_t stats_mu;
	struct hark_jobs_stats stats;

	/* under mu */
	struct hark_llm *llm;          /* shared LLM client (borrowed) or NULL */
	int embed;
	int llm_ready;                 /* 0 until hark_jobs_set_llm() when llm_later */

	struct hark_webhook_sender *webhook;
};

/* ---- small helpers -------------------------------------------------------- */

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Absolute CLOCK_MONOTONIC deadline secs from now. */
static struct timespec deadline_in(double secs)
{
	struct timespec ts;

	if (secs < 0)
		secs = 0;
	if (secs > 86400.0)
		secs = 86400.0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Uniform double in [0, 1) from the kernel RNG (a weak fallback if it fails). */
static double rand01(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint64_t)(mono_now() * 1e9) * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* One JSON log line on stderr, written with a single call so that lines of
 * different threads do not interleave. */
static void log_line(const char *level, const char *msg, const char *job_id, const char *detail)
{
	char line[1024];
	size_t n;

	n = (size_t)snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s\",\"component\":\"jobs\"",
			     level, msg);
	if (job_id && *job_id && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"job\":\"%s\"", job_id);
	if (detail && *detail && n + 16 < sizeof(line)) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"detail\":\"");
		for (const char *p = detail; *p && n + 12 < sizeof(line); p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\')
				n += (size_t)snprintf(line + n, sizeof(line) - n, "\\%c", c);
			else if (c < 0x20)
				n += (size_t)snprintf(line + n, sizeof(line) - n, "\\u%04x", c);
			else
				line[n++] = (char)c;
		}
		line[n++] = '"';
	}
	if (n + 3 > sizeof(line))
		n = sizeof(line) - 3;
	line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, stderr);
}

const char *hark_jobs_stage_name(int stage)
{
	static const char *const names[HARK_STAGE_COUNT] = {
		"queue", "transcribe", "parse", "render", "store", "analyze", "diagram",
	};

	if (stage < 0 || stage >= HARK_STAGE_COUNT)
		return "unknown";
	return names[stage];
}

struct hark_jobs_params hark_jobs_default_params(void)
{
	struct hark_jobs_params p;

	memset(&p, 0, sizeof(p));
	p.n_workers = 0;
	p.threads_per_job = 1;
	p.lease_s = 30.0;
	p.heartbeat_s = 5.0;
	p.max_attempts = 3;
	p.retry_base_s = 2.0;
	p.retry_max_s = 300.0;
	p.weights[HARK_PRIO_REALTIME] = 32;
	p.weights[HARK_PRIO_HIGH] = 8;
	p.weights[HARK_PRIO_NORMAL] = 4;
	p.weights[HARK_PRIO_BATCH] = 1;
	p.ttl_s = 7 * 86400.0;
	p.sweep_interval_s = 1.0;
	p.webhook_timeout_s = 10.0;
	p.webhook_max_attempts = 8;
	return p;
}

/* ---- stats ---------------------------------------------------------------- */

static void observe_locked(struct hark_jobs *pool, int stage, double secs)
{
	int b = HARK_JOBS_N_BUCKETS;

	if (!(secs >= 0))
		secs = 0;
	for (int i = 0; i < HARK_JOBS_N_BUCKETS; i++) {
		if (secs <= hark_jobs_buckets[i]) {
			b = i;
			break;
		}
	}
	pool->stats.stage_count[stage]++;
	pool->stats.stage_sum[stage] += secs;
	pool->stats.stage_bucket[stage][b]++;
}

static void observe(struct hark_jobs *pool, int stage, double secs)
{
	pthread_mutex_lock(&pool->stats_mu);
	observe_locked(pool, stage, secs);
	pthread_mutex_unlock(&pool->stats_mu);
}

static void count_event(struct hark_jobs *pool, const struct hark_event *ev)
{
	pthread_mutex_lock(&pool->stats_mu);
	if (strcmp(ev->type, "failed") == 0)
		pool->stats.failed++;
	else if (strcmp(ev->type, "canceled") == 0)
		pool->stats.canceled++;
	else if (strcmp(ev->type, "requeued") == 0)
		pool->stats.retried++;
	pthread_mutex_unlock(&pool->stats_mu);
}

void hark_jobs_publish(struct hark_jobs *jobs, const struct hark_event *ev)
{
	if (jobs && ev && jobs->p.on_event)
		jobs->p.on_event(ev, jobs->p.user_data);
}

/* Publishes ev (if the store filled it) and clears it. */
static void publish_clear(struct hark_jobs *pool, struct hark_event *ev)
{
	if (ev->job_id[0])
		hark_jobs_publish(pool, ev);
	hark_event_clear(ev);
}

void hark_jobs_get_stats(struct hark_jobs *jobs, struct hark_jobs_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->stats_mu);
	*out = jobs->stats;
	pthread_mutex_unlock(&jobs->stats_mu);
	pthread_mutex_lock(&jobs->mu);
	out->workers_total = jobs->n_workers;
	out->workers_busy = 0;
	for (int i = 0; i < jobs->n_workers; i++)
		if (jobs->workers[i].job_id[0])
			out->workers_busy++;
	pthread_mutex_unlock(&jobs->mu);
	hark_webhook_counts(jobs->webhook, &out->webhooks_sent, &out->webhooks_failed);
}

/* ---- model cache ------------------------------------------------------------- */

/*
 * Resolves a job's model name (never a path) into a model path for engine
 * (which may be "auto": then the engine is decided here). Whisper names are
 * looked up like `hark transcribe -m NAME` does (ggml-NAME.bin in $HARK_MODELS
 * and ~/.cache/hark/models); PocketSphinx names are model directories under
 * the PocketSphinx model directory.
 */
static int resolve_named_model(const char *engine, const char *name, char *engine_out,
			       size_t engine_len, char *path, size_t pathlen, char *err,
			       size_t errlen)
{
	int want_whisper = strcmp(engine, "whisper") == 0 || strcmp(engine, "auto") == 0;
	int want_ps = strcmp(engine, "pocketsphinx") == 0 || strcmp(engine, "auto") == 0;
	struct stat sb;

	if (want_whisper && hark_wmodels_resolve(name, path, pathlen) == HARK_OK &&
	    strcmp(path, name) != 0) {
		snprintf(engine_out, engine_len, "whisper");
		return HARK_OK;
	}
	if (want_ps) {
		if ((size_t)snprintf(path, pathlen, "%s/%s", HARK_PS_MODELDIR, name) < pathlen &&
		    stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			snprintf(engine_out, engine_len, "pocketsphinx");
			return HARK_OK;
		}
	}
	path[0] = '\0';
	hark_errbuf_set(err, errlen, "model \"%s\" not found for engine %s", name, engine);
	return HARK_ERR_MODEL;
}

/*
 * Gets a loaded model for the job's engine/model strings, loading it once.
 * An empty/"auto" engine with an empty model means the pool's defaults (with
 * a model name, "auto" lets the name pick the engine: a Whisper model name
 * first, else a PocketSphinx model directory); an
 * explicit engine with an empty model means the pool's default model when
 * the defaults resolve to that engine, else that engine's own default; a
 * model name is resolved by resolve_named_model(). The returned entry is
 * referenced; drop it with model_release().
 */
static int model_acquire(struct hark_jobs *pool, const char *engine, const char *model,
			 struct model_entry **out, char *err, size_t errlen)
{
	char eng[16], key_model[256], path[1024], eng_resolved[16];
	struct hark_model_params mp = hark_model_default_params();
	struct model_entry *e = NULL, *victim = NULL;
	int named = model && *model;
	int use_default_model = 0; /* the pool's configured engine + model */
	int rc = HARK_OK;

	*out = NULL;
	if (!engine || !*engine || strcmp(engine, "auto") == 0) {
		/* A named model decides the engine itself (as with the CLI's
		 * --engine auto); otherwise the pool's defaults apply. */
		engine = named ? "auto" : pool->engine ? pool->engine : "auto";
		use_default_model = !named;
	} else if (!named && strcmp(engine, pool->default_engine) == 0) {
		/* The job names the engine the defaults resolve to: same model. */
		engine = pool->engine ? pool->engine : "auto";
		use_default_model = 1;
	}
	snprintf(eng, sizeof(eng), "%s", engine);
	if (use_default_model)
		snprintf(key_model, sizeof(key_model), "default:%s", pool->model ? pool->model : "");
	else if (named)
		snprintf(key_model, sizeof(key_model), "name:%s", model);
	else
		snprintf(key_model, sizeof(key_model), "engine-default");

	pthread_mutex_lock(&pool->model_mu);
	for (int i = 0; i < MAX_MODELS; i++) {
		struct model_entry *m = &pool->models[i];
		if (m->m && strcmp(m->engine, eng) == 0 && strcmp(m->model, key_model) == 0) {
			e = m;
			goto found;
		}
	}
	/* A free slot, else the least recently used model no job is using. */
	for (int i = 0; i < MAX_MODELS; i++) {
		struct model_entry *m = &pool->models[i];
		if (!m->m) {
			victim = m;
			break;
		}
		if (m->refs == 0 && (!victim || m->last_used < victim->last_used))
			victim = m;
	}
	if (!victim) {
		hark_errbuf_set(err, errlen, "too many different models in use at once");
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	mp.engine = eng;
	mp.language = "en";
	mp.n_threads = pool->p.threads_per_job > 0 ? pool->p.threads_per_job : 1;
	if (use_default_model) {
		mp.model_path = pool->model && *pool->model ? pool->model : NULL;
	} else if (!named) {
		mp.model_path = NULL; /* another engine than the default: its own default */
	} else {
		rc = resolve_named_model(eng, model, eng_resolved, sizeof(eng_resolved), path,
					 sizeof(path), err, errlen);
		if (rc != HARK_OK)
			goto out;
		mp.engine = eng_resolved;
		mp.model_path = path;
	}
	if (victim->m) {
		hark_model_free(victim->m);
		victim->m = NULL;
	}
	rc = hark_model_load(&mp, &victim->m, err, errlen);
	if (rc != HARK_OK) {
		victim->m = NULL;
		goto out;
	}
	snprintf(victim->engine, sizeof(victim->engine), "%s", eng);
	snprintf(victim->model, sizeof(victim->model), "%s", key_model);
	victim->refs = 0;
	e = victim;
found:
	e->refs++;
	e->last_used = ++pool->model_clock;
	*out = e;
out:
	pthread_mutex_unlock(&pool->model_mu);
	return rc;
}

static void model_release(struct hark_jobs *pool, struct model_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&pool->model_mu);
	e->refs--;
	pthread_mutex_unlock(&pool->model_mu);
}

int hark_jobs_check_model(struct hark_jobs *jobs, char *err, size_t errlen)
{
	struct model_entry *e;
	int rc;

	if (!jobs)
		return HARK_ERR_INVALID_ARG;
	rc = model_acquire(jobs, NULL, NULL, &e, err, errlen);
	if (rc == HARK_OK)
		model_release(jobs, e);
	return rc;
}

/* ---- one job ------------------------------------------------------------------ */

/* State of one running attempt. */
struct run {
	struct hark_jobs *pool;
	struct worker *w;
	struct hark_job *job;
	struct hark_job_options opts;
	double t_claimed;        /* mono */
	double queue_s, work_s, render_s, store_s;
	double analyze_s;        /* > 0: the analysis pipeline ran */
	double diagram_s;        /* > 0: a diagram was built (read, structure/LLM, layout) */
	double render_lo, render_hi, render_t0; /* video render: percent span, mono start */
	double tx_share;         /* share of the percent given to transcription */
	double pct_lo, pct_hi;   /* percent span of the analysis */
	double work_t0;          /* mono start of transcribe/parse */
	double last_report;      /* mono of the last progress write */
	char stage[16];
};

/* Records progress (throttled unless the stage changes or force). */
static void report(struct run *r, const char *stage, double percent, double eta_s, int force)
{
	struct hark_event ev;
	double t = mono_now();
	int rc;

	if (!force && strcmp(stage, r->stage) == 0 && t - r->last_report < PROGRESS_MIN_S)
		return;
	memset(&ev, 0, sizeof(ev));
	r->last_report = t;
	snprintf(r->stage, sizeof(r->stage), "%s", stage);
	rc = hark_store_job_progress(r->pool->st, r->job->id, r->w->owner, stage, percent, eta_s,
				     NULL, &ev);
	r->store_s += mono_now() - t;
	if (rc == HARK_OK)
		publish_clear(r->pool, &ev);
	else {
		hark_event_clear(&ev);
		if (rc == HARK_ERR_NOT_FOUND)
			atomic_fetch_or(&r->w->flags, STOP_LOST);
	}
}

static void on_progress(double fraction, double audio_done_s, void *user)
{
	struct run *r = user;
	double elapsed, eta = -1.0;

	(void)audio_done_s;
	if (!(fraction >= 0))
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	if (mono_now() - r->last_report < PROGRESS_MIN_S)
		return;
	elapsed = mono_now() - r->work_t0;
	if (fraction >= 0.01)
		eta = elapsed * (1.0 - fraction) / fraction;
	report(r, "transcribe", 100.0 * r->tx_share * fraction, eta, 0);
}

static int on_cancel(void *user)
{
	struct run *r = user;

	return atomic_load(&r->w->flags) != 0;
}

/* Permanent errors fail at once; everything else is retried. */
static int is_permanent(int rc)
{
	switch (rc) {
	case HARK_ERR_NOMEM:
	case HARK_ERR_IO:
	case HARK_ERR_PERMISSION:
	case HARK_ERR_NETWORK:
	case HARK_ERR_INTERNAL:
	case HARK_ERR_ENGINE:
		return 0;
	default:
		return 1;
	}
}

/* Backoff before attempt n+1 after n failed attempts: uniform between the
 * base and min(max, base * 2^(n)), so retries spread out (full jitter). */
static double retry_delay(const struct hark_jobs_params *p, int attempts)
{
	double base = p->retry_base_s, cap;

	if (attempts < 1)
		attempts = 1;
	cap = base * pow(2.0, attempts > 30 ? 30 : attempts);
	if (cap > p->retry_max_s)
		cap = p->retry_max_s;
	if (cap < base)
		cap = base;
	return base + rand01() * (cap - base);
}

/* The attempt was stopped by its cancel callback: finish the stop. */
static void end_stopped(struct run *r)
{
	struct hark_event ev;
	int flags = atomic_load(&r->w->flags);
	int rc;

	memset(&ev, 0, sizeof(ev));
	if (flags & STOP_LOST) {
		log_line("warn", "lease lost; work discarded", r->job->id, NULL);
		return;
	}
	if (!(flags & STOP_USER) && (flags & STOP_DRAIN)) {
		rc = hark_store_job_release(r->pool->st, r->job->id, r->w->owner, &ev);
		if (rc == HARK_OK) {
			pthread_mutex_lock(&r->pool->mu);
			r->pool->released++;
			pthread_mutex_unlock(&r->pool->mu);
			publish_clear(r->pool, &ev);
			return;
		}
	} else {
		rc = hark_store_job_canceled(r->pool->st, r->job->id, r->w->owner, &ev);
		if (rc == HARK_OK) {
			count_event(r->pool, &ev);
			publish_clear(r->pool, &ev);
			return;
		}
	}
	hark_event_clear(&ev);
	if (rc != HARK_ERR_NOT_FOUND)
		log_line("error", "cannot record a stopped job", r->job->id,
			 hark_store_errmsg(r->pool->st));
}

/* Ends the attempt with error rc (message msg). */
static void end_failed(struct run *r, int rc, const char *msg)
{
	struct hark_event ev;
	double retry_at = 0;
	double t;
	int src;

	if (rc == HARK_ERR_CANCELED || (atomic_load(&r->w->flags) & STOP_LOST)) {
		end_stopped(r);
		return;
	}
	if (!is_permanent(rc))
		retry_at = wall_now() + retry_delay(&r->pool->p, r->job->attempts);
	memset(&ev, 0, sizeof(ev));
	t = mono_now();
	src = hark_store_job_fail(r->pool->st, r->job->id, r->w->owner, hark_err_code(rc),
				  msg && *msg ? msg : hark_strerror(rc), retry_at, &ev);
	r->store_s += mono_now() - t;
	if (src == HARK_OK) {
		count_event(r->pool, &ev);
		if (strcmp(ev.type, "failed") == 0 && r->job->webhook)
			hark_webhook_wake(r->pool->webhook);
		publish_clear(r->pool, &ev);
		return;
	}
	hark_event_clear(&ev);
	if (src != HARK_ERR_NOT_FOUND)
		log_line("error", "cannot record a failed job", r->job->id,
			 hark_store_errmsg(r->pool->st));
}

/* Commits the results; on a store error the attempt is failed as transient. */
static void end_done(struct run *r, const struct hark_result *res, size_t n, double audio_s,
		     int work_stage)
{
	struct hark_event ev;
	char timings[256];
	double t;
	int rc;

	memset(&ev, 0, sizeof(ev));
	if (work_stage == HARK_STAGE_TRANSCRIBE && r->analyze_s > 0)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"transcribe\":%.6f,\"render\":%.6f,\"analyze\":%.6f,"
			 "\"store\":%.6f}",
			 r->queue_s, r->work_s, r->render_s, r->analyze_s, r->store_s);
	else if (work_stage == HARK_STAGE_TRANSCRIBE)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"transcribe\":%.6f,\"render\":%.6f,\"store\":%.6f}",
			 r->queue_s, r->work_s, r->render_s, r->store_s);
	else if (work_stage == HARK_STAGE_PARSE)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"parse\":%.6f,\"render\":%.6f,\"store\":%.6f}",
			 r->queue_s, r->work_s, r->render_s, r->store_s);
	else if (work_stage == HARK_STAGE_ANALYZE)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"analyze\":%.6f,\"store\":%.6f}", r->queue_s,
			 r->analyze_s, r->store_s);
	else if (work_stage == HARK_STAGE_DIAGRAM && r->work_s > 0)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"transcribe\":%.6f,\"diagram\":%.6f,\"render\":%.6f,"
			 "\"store\":%.6f}",
			 r->queue_s, r->work_s, r->diagram_s, r->render_s, r->store_s);
	else if (work_stage == HARK_STAGE_DIAGRAM)
		snprintf(timings, sizeof(timings),
			 "{\"queue\":%.6f,\"diagram\":%.6f,\"render\":%.6f,\"store\":%.6f}",
			 r->queue_s, r->diagram_s, r->render_s, r->store_s);
	else
		snprintf(timings, sizeof(timings), "{\"queue\":%.6f,\"store\":%.6f}", r->queue_s,
			 r->store_s);
	t = mono_now();
	rc = hark_store_job_finish(r->pool->st, r->job->id, r->w->owner, res, n, audio_s, timings,
				   &ev);
	r->store_s += mono_now() - t;
	if (rc == HARK_OK) {
		pthread_mutex_lock(&r->pool->stats_mu);
		r->pool->stats.completed++;
		if (audio_s > 0)
			r->pool->stats.audio_seconds += audio_s;
		if (work_stage == HARK_STAGE_DIAGRAM) {
			if (r->work_s > 0)
				observe_locked(r->pool, HARK_STAGE_TRANSCRIBE, r->work_s);
			observe_locked(r->pool, HARK_STAGE_DIAGRAM, r->diagram_s);
			observe_locked(r->pool, HARK_STAGE_RENDER, r->render_s);
		} else if (work_stage >= 0 && work_stage != HARK_STAGE_ANALYZE) {
			observe_locked(r->pool, work_stage, r->work_s);
			observe_locked(r->pool, HARK_STAGE_RENDER, r->render_s);
		}
		if (r->analyze_s > 0)
			observe_locked(r->pool, HARK_STAGE_ANALYZE, r->analyze_s);
		observe_locked(r->pool, HARK_STAGE_STORE, r->store_s);
		pthread_mutex_unlock(&r->pool->stats_mu);
		if (r->job->webhook)
			hark_webhook_wake(r->pool->webhook);
		publish_clear(r->pool, &ev);
		return;
	}
	hark_event_clear(&ev);
	if (rc == HARK_ERR_NOT_FOUND) {
		/* Lease lost or canceled meanwhile: nothing may be written. */
		if (atomic_load(&r->w->flags) & STOP_USER)
			end_stopped(r);
		return;
	}
	end_failed(r, rc == HARK_ERR_NOMEM ? rc : HARK_ERR_IO, hark_store_errmsg(r->pool->st));
}

/* Renders t in every requested format into res (bodies heap, caller frees). */
static int render_all(struct run *r, const struct hark_transcript *t, struct hark_result *res,
		      char **bodies, size_t *n, char *err, size_t errlen)
{
	static const enum hark_format order[4] = {HARK_FORMAT_JSON, HARK_FORMAT_TXT,
						  HARK_FORMAT_SRT, HARK_FORMAT_VTT};
	unsigned formats = r->opts.formats ? r->opts.formats : 0xFu;
	double t0 = mono_now();
	int rc = HARK_OK;

	*n = 0;
	for (int i = 0; i < 4; i++) {
		size_t len = 0;

		if (!(formats & (1u << order[i])))
			continue;
		rc = hark_transcript_render(t, order[i], &bodies[*n], &len);
		if (rc != HARK_OK) {
			hark_errbuf_set(err, errlen, "rendering %s failed: %s",
					hark_format_ext(order[i]), hark_strerror(rc));
			break;
		}
		res[*n].format = hark_format_ext(order[i]);
		res[*n].body = bodies[*n];
		res[*n].len = len;
		(*n)++;
	}
	r->render_s = mono_now() - t0;
	return rc;
}

/* Transcribes the job's blob into *out (caller frees). Returns HARK_OK or an
 * error with err set; the model is handed back before returning. */
static int transcribe_blob(struct run *r, struct hark_transcript **out, char *err, size_t errlen)
{
	struct hark_transcribe_params tp = hark_transcribe_default_params();
	struct model_entry *me = NULL;
	struct hark_ctx *ctx = NULL;
	char path[4096];
	struct stat sb;
	int rc;

	*out = NULL;
	rc = hark_blob_path(r->pool->data_dir, r->job->blob_sha, path, sizeof(path));
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "job has no valid blob");
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	if (stat(path, &sb) != 0 && errno == ENOENT) {
		hark_errbuf_set(err, errlen, "blob missing");
		rc = HARK_ERR_NOT_FOUND;
		goto out;
	}
	rc = model_acquire(r->pool, r->opts.engine, r->opts.model, &me, err, errlen);
	if (rc != HARK_OK) {
		if (rc != HARK_ERR_NOMEM)
			rc = HARK_ERR_MODEL;
		goto out;
	}
	rc = hark_ctx_init(me->m, &ctx);
	if (rc != HARK_OK)
		goto out;
	tp.language = r->opts.language[0] ? r->opts.language : NULL;
	tp.n_threads = r->pool->p.threads_per_job > 0 ? r->pool->p.threads_per_job : 1;
	tp.translate = r->opts.translate;
	if (r->opts.beam_size > 0)
		tp.beam_size = r->opts.beam_size;
	tp.prompt = r->opts.prompt;
	tp.word_timestamps = r->opts.word_timestamps;
	tp.progress = on_progress;
	tp.progress_user_data = r;
	tp.cancel = on_cancel;
	tp.cancel_user_data = r;

	r->work_t0 = mono_now();
	report(r, "transcribe", 0.0, -1.0, 1);
	rc = hark_transcribe_file(ctx, path, &tp, out);
	r->work_s = mono_now() - r->work_t0;
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "%s", hark_ctx_errmsg(ctx));
		goto out;
	}
	if (atomic_load(&r->w->flags))
		rc = HARK_ERR_CANCELED;
out:
	if (rc != HARK_OK) {
		hark_transcript_free(*out);
		*out = NULL;
	}
	hark_ctx_free(ctx);
	model_release(r->pool, me);
	return rc;
}

static void run_transcribe(struct run *r)
{
	struct hark_transcript *t = NULL;
	struct hark_result res[4];
	char *bodies[4] = {NULL, NULL, NULL, NULL};
	char err[512] = "";
	size_t n = 0;
	int rc;

	r->tx_share = 0.9;
	rc = transcribe_blob(r, &t, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	report(r, "render", 90.0, -1.0, 1);
	rc = render_all(r, t, res, bodies, &n, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	end_done(r, res, n, t->duration, HARK_STAGE_TRANSCRIBE);
	goto out;
fail:
	end_failed(r, rc, err);
out:
	for (size_t i = 0; i < 4; i++)
		free(bodies[i]);
	hark_transcript_free(t);
}

/* ---- meeting analysis ------------------------------------------------------------- */

/* Share of the analysis percent span per pipeline stage (sums to 1). */
static const double stage_share[HARK_PIPELINE_N_STAGES] = {
	[HARK_PIPELINE_READ] = 0.02,    [HARK_PIPELINE_OFFLINE] = 0.10,
	[HARK_PIPELINE_EXTRACT] = 0.60, [HARK_PIPELINE_REDUCE] = 0.10,
	[HARK_PIPELINE_INDEX] = 0.12,   [HARK_PIPELINE_GRAPH] = 0.06,
};

/* Pipeline progress into job progress: the stage name, and the percent
 * spread over the stages; every extraction batch is reported. */
static void on_pipeline_progress(int stage, size_t done, size_t total, void *user)
{
	struct run *r = user;
	double base = 0.0, frac = 0.0;

	if (stage < 0 || stage >= HARK_PIPELINE_N_STAGES)
		return;
	for (int i = 0; i < stage; i++)
		base += stage_share[i];
	if (total > 0)
		frac = (double)done / (double)total;
	if (!(frac >= 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	report(r, hark_pipeline_stage_name(stage),
	       r->pct_lo + (r->pct_hi - r->pct_lo) * (base + stage_share[stage] * frac), -1.0,
	       stage == HARK_PIPELINE_EXTRACT);
}

/* The shared LLM client, waiting for hark_jobs_set_llm() when it is still
 * to come (unless the attempt is being stopped). */
static struct hark_llm *pool_llm(struct run *r, int *embed)
{
	struct hark_jobs *pool = r->pool;
	struct hark_llm *llm;

	pthread_mutex_lock(&pool->mu);
	while (!pool->llm_ready && !pool->stop && !atomic_load(&r->w->flags)) {
		struct timespec dl = deadline_in(0.2);
		pthread_cond_timedwait(&pool->tick_cond, &pool->mu, &dl);
	}
	llm = pool->llm_ready ? pool->llm : NULL;
	*embed = pool->llm_ready ? pool->embed : 0;
	pthread_mutex_unlock(&pool->mu);
	return llm;
}

void hark_jobs_set_llm(struct hark_jobs *jobs, struct hark_llm *llm, int embed)
{
	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->mu);
	jobs->llm = llm;
	jobs->embed = llm ? embed : 0;
	jobs->llm_ready = 1;
	pthread_cond_broadcast(&jobs->tick_cond);
	pthread_mutex_unlock(&jobs->mu);
}

/* The meeting's name: options.name, else the uploaded file's name without
 * its extension, else the job id. */
static void meeting_name(const struct run *r, char *out, size_t n)
{
	const char *f = r->job->filename;
	size_t len, i = 0;

	if (r->opts.name[0]) {
		snprintf(out, n, "%s", r->opts.name);
		return;
	}
	len = f ? strlen(f) : 0;
	for (size_t k = len; k > 1; k--) {
		if (f[k - 1] == '.') {
			len = k - 1;
			break;
		}
	}
	if (len >= n)
		len = n - 1;
	/* whole UTF-8 sequences only (a cut never splits a character) */
	while (i < len) {
		unsigned char c = (unsigned char)f[i];
		size_t cl = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		if (i + cl > len)
			break;
		for (size_t k = 0; k < cl; k++) {
			unsigned char b = (unsigned char)f[i + k];
			out[i + k] = (b < 0x20 || b == 0x7f || b == '/' || b == '\\' ||
				      (i + k == 0 && b == '.')) ? '_' : (char)b;
		}
		i += cl;
	}
	out[i] = '\0';
	if (!out[0])
		snprintf(out, n, "%s", r->job->id);
}

/*
 * Runs the pipeline on the job's submitted text (t NULL) or on t into m
 * (cleared by the caller). Returns HARK_OK, HARK_ERR_CANCELED, or the
 * meeting's (or the run's) error with err set.
 */
static int analyze_meeting(struct run *r, const struct hark_transcript *t,
			   struct hark_pipeline_meeting *m, char *err, size_t errlen)
{
	struct hark_pipeline_params pp = hark_pipeline_default_params();
	struct hark_pipeline_input in;
	struct hark_llm *llm = NULL;
	char name[128];
	double t0 = mono_now();
	int embed = 0, rc;

	memset(&in, 0, sizeof(in));
	meeting_name(r, name, sizeof(name));
	in.name = name;
	if (t) {
		in.transcript = t;
	} else {
		if (!r->job->input_text) {
			hark_errbuf_set(err, errlen, "analyze job without a transcript");
			return HARK_ERR_EMPTY;
		}
		in.data = r->job->input_text;
		in.len = strlen(r->job->input_text);
	}
	in.date = r->opts.date[0] ? r->opts.date : NULL;
	if (r->opts.chunk_tokens > 0) {
		pp.chunk.max_tokens = (size_t)r->opts.chunk_tokens;
		if (pp.chunk.overlap_tokens > pp.chunk.max_tokens / 2)
			pp.chunk.overlap_tokens = pp.chunk.max_tokens / 2;
	}
	if (r->opts.overlap_tokens >= 0)
		pp.chunk.overlap_tokens = (size_t)r->opts.overlap_tokens;
	if (r->opts.batch > 0)
		pp.batch_chunks = (size_t)r->opts.batch;
	if (!r->opts.offline)
		llm = pool_llm(r, &embed);
	if (atomic_load(&r->w->flags))
		return HARK_ERR_CANCELED;
	pp.llm = llm;
	pp.embed = llm && embed;
	pp.force = r->opts.force;
	pp.job_id = r->job->id;
	pp.key_id = r->job->key_id[0] ? r->job->key_id : NULL;
	pp.progress = on_pipeline_progress;
	pp.cancel = on_cancel;
	pp.user_data = r;

	report(r, hark_pipeline_stage_name(HARK_PIPELINE_READ), r->pct_lo, -1.0, 1);
	rc = hark_pipeline_run(r->pool->st, &in, 1, &pp, m, NULL, NULL, err, errlen);
	r->analyze_s = mono_now() - t0;
	if (r->analyze_s <= 0)
		r->analyze_s = 1e-9;
	if (rc == HARK_OK && atomic_load(&r->w->flags))
		rc = HARK_ERR_CANCELED;
	if (rc == HARK_OK && m->err != HARK_OK) {
		rc = m->err;
		hark_errbuf_set(err, errlen, "%s", m->error[0] ? m->error : hark_strerror(rc));
	}
	if (rc == HARK_OK && !m->minutes_json) {
		hark_errbuf_set(err, errlen, "the analysis produced no minutes");
		rc = HARK_ERR_INTERNAL;
	}
	if (rc == HARK_OK && m->warning[0])
		log_line("warn", "analysis warning", r->job->id, m->warning);
	return rc;
}

/* Appends the analysis results of m to res (n entries so far). */
static size_t add_analysis_results(const struct hark_pipeline_meeting *m, struct hark_result *res,
				   size_t n)
{
	res[n].format = "minutes";
	res[n].body = m->minutes_json;
	res[n].len = strlen(m->minutes_json);
	n++;
	if (m->minutes_md) {
		res[n].format = "minutes.md";
		res[n].body = m->minutes_md;
		res[n].len = strlen(m->minutes_md);
		n++;
	}
	if (m->graph_json) {
		res[n].format = "graph";
		res[n].body = m->graph_json;
		res[n].len = strlen(m->graph_json);
		n++;
	}
	return n;
}

static void count_method(struct run *r, const struct hark_pipeline_meeting *m)
{
	pthread_mutex_lock(&r->pool->stats_mu);
	if (strcmp(m->method, "llm") == 0)
		r->pool->stats.analyzed_llm++;
	else
		r->pool->stats.analyzed_offline++;
	pthread_mutex_unlock(&r->pool->stats_mu);
}

static void run_analyze(struct run *r)
{
	struct hark_pipeline_meeting m;
	struct hark_result res[3];
	char err[512] = "";
	size_t n;
	int rc;

	memset(&m, 0, sizeof(m));
	r->pct_lo = 0.0;
	r->pct_hi = 98.0;
	rc = analyze_meeting(r, NULL, &m, err, sizeof(err));
	if (rc != HARK_OK) {
		end_failed(r, rc, err);
		goto out;
	}
	n = add_analysis_results(&m, res, 0);
	count_method(r, &m);
	end_done(r, res, n, 0.0, HARK_STAGE_ANALYZE);
out:
	hark_pipeline_meeting_clear(&m);
}

/* "run": transcribe the blob, render the transcript formats, analyse. */
static void run_run(struct run *r)
{
	struct hark_pipeline_meeting m;
	struct hark_transcript *t = NULL;
	struct hark_result res[7];
	char *bodies[4] = {NULL, NULL, NULL, NULL};
	char err[512] = "";
	size_t n = 0;
	int rc;

	memset(&m, 0, sizeof(m));
	r->tx_share = 0.5;
	rc = transcribe_blob(r, &t, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	report(r, "render", 50.0, -1.0, 1);
	rc = render_all(r, t, res, bodies, &n, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	r->pct_lo = 52.0;
	r->pct_hi = 98.0;
	rc = analyze_meeting(r, t, &m, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	n = add_analysis_results(&m, res, n);
	count_method(r, &m);
	end_done(r, res, n, t->duration, HARK_STAGE_TRANSCRIBE);
	goto out;
fail:
	end_failed(r, rc, err);
out:
	for (size_t i = 0; i < 4; i++)
		free(bodies[i]);
	hark_transcript_free(t);
	hark_pipeline_meeting_clear(&m);
}

/* ---- diagrams and videos ---------------------------------------------------------- */

/* What a diagram or video job builds before rendering. */
struct visual {
	struct hark_transcript *t;     /* audio input: the transcript */
	struct hark_chunk_turn *turns; /* point into owner (not freed on their own) */
	size_t n_turns;
	void *owner;
	struct hark_visual_result vr;
	struct hark_scene *scene;
	double duration;               /* audio seconds, < 0 unknown */
	char audio_path[4096];         /* the job's blob ("" for text input) */
};

static void visual_clear(struct visual *v)
{
	hark_scene_free(v->scene);
	hark_visual_result_clear(&v->vr);
	free(v->owner); /* the turns live in it (hark_pipeline_read) */
	hark_transcript_free(v->t);
	memset(v, 0, sizeof(*v));
}

/*
 * Reads the job's input into turns (an upload is transcribed first, taking
 * percent 0..tx_pct), builds the diagram pages (offline or through the
 * pool's LLM client unless options.offline) and lays them out into a scene.
 * Returns HARK_OK, HARK_ERR_CANCELED or an error with err set.
 */
static int visual_prepare(struct run *r, int video, double tx_pct, double layout_pct,
			  struct visual *v, char *err, size_t errlen)
{
	struct hark_visual_params vp = hark_visual_default_params();
	struct hark_scene_params scp = hark_scene_default_params();
	struct hark_pipeline_input in;
	char date[11] = "", meta[11] = "";
	double t0;
	int rc, embed = 0;

	memset(&in, 0, sizeof(in));
	v->duration = -1;
	if (r->job->blob_sha[0]) {
		rc = hark_blob_path(r->pool->data_dir, r->job->blob_sha, v->audio_path,
				    sizeof(v->audio_path));
		if (rc != HARK_OK) {
			hark_errbuf_set(err, errlen, "job has no valid blob");
			return HARK_ERR_INVALID_ARG;
		}
		r->tx_share = tx_pct / 100.0;
		rc = transcribe_blob(r, &v->t, err, errlen);
		if (rc != HARK_OK)
			return rc;
		if (v->t->duration > 0)
			v->duration = v->t->duration;
		in.transcript = v->t;
		hark_audio_probe_date(v->audio_path, date);
	} else if (video) {
		hark_errbuf_set(err, errlen, "a video job needs an audio or video upload");
		return HARK_ERR_INVALID_ARG;
	} else if (r->job->input_text) {
		in.data = r->job->input_text;
		in.len = strlen(r->job->input_text);
	} else {
		hark_errbuf_set(err, errlen, "diagram job without input");
		return HARK_ERR_EMPTY;
	}
	t0 = mono_now();
	report(r, "diagram", tx_pct, -1.0, 1);
	rc = hark_pipeline_read(&in, VISUAL_MAX_INPUT, &v->turns, &v->n_turns, &v->owner, meta,
				err, errlen);
	if (rc == HARK_ERR_EMPTY && v->t)
		hark_errbuf_set(err, errlen, "no speech found: nothing to draw");
	if (rc != HARK_OK)
		goto out;
	if (!date[0])
		memcpy(date, meta, sizeof(meta));
	if (r->opts.diagram_type[0] &&
	    hark_diagram_type_parse(r->opts.diagram_type, &vp.type) != HARK_OK) {
		hark_errbuf_set(err, errlen, "unknown diagram type \"%s\"", r->opts.diagram_type);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	if (r->opts.max_nodes > 0)
		vp.max_nodes = (size_t)r->opts.max_nodes;
	vp.max_pages = video ? 64 : 12;
	vp.title = r->opts.title[0] ? r->opts.title : NULL;
	vp.meeting_date = r->opts.date[0] ? r->opts.date : date[0] ? date : NULL;
	vp.source = r->job->filename && *r->job->filename ? r->job->filename : NULL;
	vp.duration_s = v->duration;
	vp.llm = r->opts.offline ? NULL : pool_llm(r, &embed);
	vp.job_id = r->job->id;
	vp.key_id = r->job->key_id[0] ? r->job->key_id : NULL;
	vp.cancel = on_cancel;
	vp.user_data = r;
	if (atomic_load(&r->w->flags)) {
		rc = HARK_ERR_CANCELED;
		goto out;
	}
	rc = hark_visual_build(v->turns, v->n_turns, &vp, &v->vr, err, errlen);
	if (rc == HARK_ERR_EMPTY)
		hark_errbuf_set(err, errlen, "no speech found: nothing to draw");
	if (rc != HARK_OK)
		goto out;
	if (v->vr.note[0])
		log_line("info", "diagram note", r->job->id, v->vr.note);
	if (atomic_load(&r->w->flags)) {
		rc = HARK_ERR_CANCELED;
		goto out;
	}
	report(r, "layout", layout_pct, -1.0, 1);
	scp.dark = r->opts.dark;
	scp.captions = video ? r->opts.captions : 0;
	rc = hark_scene_init(v->vr.pages, v->vr.n_pages, v->turns, v->n_turns, &scp, &v->scene,
			     err, errlen);
	if (rc == HARK_OK && atomic_load(&r->w->flags))
		rc = HARK_ERR_CANCELED;
out:
	r->diagram_s = mono_now() - t0;
	if (r->diagram_s <= 0)
		r->diagram_s = 1e-9;
	return rc;
}

/* The job's summary of its diagram (result format "summary"): heap JSON
 * text or NULL. vs (video jobs) may be NULL. */
static char *visual_summary(const struct run *r, const struct visual *v, int video,
			    const struct hark_video_stats *vs)
{
	json_t *j = hark_visual_result_to_json(&v->vr);
	char *s = NULL;
	int bad = 0;

	if (!j)
		return NULL;
	bad |= json_object_set_new(j, "kind", json_string(video ? "video" : "diagram"));
	bad |= json_object_set_new(j, "dark", json_boolean(r->opts.dark));
	if (video && vs) {
		bad |= json_object_set_new(j, "duration", json_real(vs->duration_s));
		bad |= json_object_set_new(j, "frames", json_integer(vs->frames));
		bad |= json_object_set_new(j, "painted", json_integer(vs->painted));
		bad |= json_object_set_new(j, "width",
					   json_integer(r->opts.width > 0 ? r->opts.width : 1280));
		bad |= json_object_set_new(j, "height",
					   json_integer(r->opts.height > 0 ? r->opts.height : 720));
		bad |= json_object_set_new(j, "fps", json_integer(r->opts.fps > 0 ? r->opts.fps : 30));
		bad |= json_object_set_new(j, "captions", json_boolean(r->opts.captions));
		bad |= json_object_set_new(j, "render_seconds", json_real(vs->wall_s));
	}
	if (!bad)
		s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}

/* Page 1's spec as JSON text (heap) or NULL. */
static char *visual_spec(const struct visual *v)
{
	json_t *spec = hark_diagram_to_json(&v->vr.pages[0]);
	char *s = spec ? json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(spec);
	return s;
}

static void count_visual(struct run *r, const struct visual *v, int video)
{
	pthread_mutex_lock(&r->pool->stats_mu);
	if (video && v->vr.used_llm)
		r->pool->stats.videos_llm++;
	else if (video)
		r->pool->stats.videos_offline++;
	else if (v->vr.used_llm)
		r->pool->stats.diagrams_llm++;
	else
		r->pool->stats.diagrams_offline++;
	pthread_mutex_unlock(&r->pool->stats_mu);
}

/* "diagram": a transcript (text) or a recording (transcribed first) into
 * the spec of page 1, its SVG and its PNG, and the summary. */
static void run_diagram(struct run *r)
{
	struct visual v;
	struct hark_result res[4];
	unsigned char *svg = NULL, *png = NULL;
	char *spec = NULL, *summary = NULL;
	char err[512] = "";
	size_t svg_len = 0, png_len = 0;
	double audio_pct = r->job->blob_sha[0] ? 60.0 : 0.0, t0;
	int rc;

	memset(&v, 0, sizeof(v));
	rc = visual_prepare(r, 0, audio_pct, audio_pct + 0.6 * (100.0 - audio_pct), &v, err,
			    sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	t0 = mono_now();
	report(r, "render", audio_pct + 0.7 * (100.0 - audio_pct), -1.0, 1);
	spec = visual_spec(&v);
	summary = visual_summary(r, &v, 0, NULL);
	if (!spec || !summary) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	rc = hark_scene_svg(v.scene, 0, &svg, &svg_len, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	if (atomic_load(&r->w->flags)) {
		rc = HARK_ERR_CANCELED;
		goto fail;
	}
	rc = hark_scene_png(v.scene, 0, 0, 0, &png, &png_len, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	r->render_s = mono_now() - t0;
	if (atomic_load(&r->w->flags)) {
		rc = HARK_ERR_CANCELED;
		goto fail;
	}
	res[0] = (struct hark_result){"diagram", spec, strlen(spec)};
	res[1] = (struct hark_result){"svg", (const char *)svg, svg_len};
	res[2] = (struct hark_result){"png", (const char *)png, png_len};
	res[3] = (struct hark_result){"summary", summary, strlen(summary)};
	report(r, "store", 98.0, -1.0, 1);
	count_visual(r, &v, 0);
	end_done(r, res, 4, v.t ? v.t->duration : 0.0, HARK_STAGE_DIAGRAM);
	goto out;
fail:
	end_failed(r, rc, err);
out:
	free(summary);
	free(spec);
	free(png);
	free(svg);
	visual_clear(&v);
}

static void on_video_progress(double fraction, void *user)
{
	struct run *r = user;
	double elapsed, eta = -1.0;

	if (!(fraction >= 0))
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	if (mono_now() - r->last_report < PROGRESS_MIN_S)
		return;
	elapsed = mono_now() - r->render_t0;
	if (fraction >= 0.01)
		eta = elapsed * (1.0 - fraction) / fraction;
	report(r, "render", r->render_lo + (r->render_hi - r->render_lo) * fraction, eta, 0);
}

/* Removes dir's files and dir itself (a render's private directory: no
 * subdirectories). */
static void remove_tmp_dir(const char *dir)
{
	char path[4200];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
			    (int)sizeof(path))
				unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Removes render directories left by a process that died mid-render
 * (called at start, before any worker runs). */
static void clean_video_tmp(const char *data_dir)
{
	char dir[4096], path[4200];
	struct dirent *de;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/blobs/tmp", data_dir) >= (int)sizeof(dir))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, VIDEO_TMP_PREFIX, strlen(VIDEO_TMP_PREFIX)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
			remove_tmp_dir(path);
	}
	closedir(d);
}

/* Reads the file at path (at most cap bytes) into *out (heap). */
static int read_whole(const char *path, int64_t cap, char **out, size_t *len, char *err,
		      size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd = -1, rc = HARK_OK;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		hark_errbuf_set(err, errlen, "cannot read the rendered video: %s", strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	if (sb.st_size <= 0) {
		hark_errbuf_set(err, errlen, "the rendered video is empty");
		rc = HARK_ERR_INTERNAL;
		goto out;
	}
	if ((int64_t)sb.st_size > cap) {
		hark_errbuf_set(err, errlen, "the rendered video exceeds %lld MB",
				(long long)(cap >> 20));
		rc = HARK_ERR_LIMIT;
		goto out;
	}
	buf = malloc((size_t)sb.st_size);
	if (!buf) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			hark_errbuf_set(err, errlen, "cannot read the rendered video: %s",
					n < 0 ? strerror(errno) : "short read");
			rc = HARK_ERR_IO;
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* "video": a recording transcribed, drawn and rendered into an MP4 of its
 * audio with the diagram appearing as it is spoken. The MP4 is written in
 * a private directory under DIR/blobs/tmp, read into the result and the
 * directory removed on every path. */
static void run_video(struct run *r)
{
	struct hark_video_params p = hark_video_default_params();
	struct hark_video_stats vs;
	struct visual v;
	struct hark_result res[3];
	char *mp4 = NULL, *spec = NULL, *summary = NULL;
	char err[512] = "", dir[4096] = "", out_path[4200];
	size_t mp4_len = 0;
	unsigned rnd = 0;
	int rc;

	memset(&v, 0, sizeof(v));
	memset(&vs, 0, sizeof(vs));
	if (!r->job->blob_sha[0]) {
		hark_errbuf_set(err, sizeof(err), "a video job needs an audio or video upload");
		rc = HARK_ERR_INVALID_ARG;
		goto fail;
	}
	rc = visual_prepare(r, 1, 30.0, 33.0, &v, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)(mono_now() * 1e6);
	/* blobs/tmp exists once an upload was stored; made here if it went away */
	if (snprintf(dir, sizeof(dir), "%s/blobs/tmp", r->pool->data_dir) < (int)sizeof(dir))
		mkdir(dir, 0700);
	if (snprintf(dir, sizeof(dir), "%s/blobs/tmp/" VIDEO_TMP_PREFIX "%s-%08x",
		     r->pool->data_dir, r->job->id, rnd) >= (int)sizeof(dir)) {
		dir[0] = '\0';
		hark_errbuf_set(err, sizeof(err), "data directory path too long");
		rc = HARK_ERR_LIMIT;
		goto fail;
	}
	if (mkdir(dir, 0700) != 0) {
		hark_errbuf_set(err, sizeof(err), "cannot create %s: %s", dir, strerror(errno));
		dir[0] = '\0';
		rc = HARK_ERR_IO;
		goto fail;
	}
	snprintf(out_path, sizeof(out_path), "%s/video.mp4", dir);
	if (r->opts.width > 0 && r->opts.height > 0) {
		p.width = r->opts.width;
		p.height = r->opts.height;
	}
	if (r->opts.fps > 0)
		p.fps = r->opts.fps;
	p.threads = r->pool->p.threads_per_job > 0 ? r->pool->p.threads_per_job : 1;
	p.paint = hark_scene_paint;
	p.key = hark_scene_key;
	p.paint_user_data = v.scene;
	p.progress = on_video_progress;
	p.cancel = on_cancel;
	p.cb_user_data = r;
	r->render_lo = 35.0;
	r->render_hi = 96.0;
	r->render_t0 = mono_now();
	report(r, "render", r->render_lo, -1.0, 1);
	rc = hark_video_encode(v.audio_path, out_path, &p, &vs, err, sizeof(err));
	if (rc == HARK_OK && atomic_load(&r->w->flags))
		rc = HARK_ERR_CANCELED;
	if (rc == HARK_OK)
		rc = read_whole(out_path, VIDEO_RESULT_CAP, &mp4, &mp4_len, err, sizeof(err));
	r->render_s = mono_now() - r->render_t0;
	remove_tmp_dir(dir);
	dir[0] = '\0';
	if (rc != HARK_OK)
		goto fail;
	spec = visual_spec(&v);
	summary = visual_summary(r, &v, 1, &vs);
	if (!spec || !summary) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	res[0] = (struct hark_result){"mp4", mp4, mp4_len};
	res[1] = (struct hark_result){"diagram", spec, strlen(spec)};
	res[2] = (struct hark_result){"summary", summary, strlen(summary)};
	report(r, "store", 97.0, -1.0, 1);
	count_visual(r, &v, 1);
	end_done(r, res, 3, v.t ? v.t->duration : 0.0, HARK_STAGE_DIAGRAM);
	goto out;
fail:
	end_failed(r, rc, err);
out:
	if (dir[0])
		remove_tmp_dir(dir);
	free(summary);
	free(spec);
	free(mp4);
	visual_clear(&v);
}

/* Plain text (no JSON, no subtitle timing lines): one segment per non-empty
 * line, without times. */
static int parse_plain_text(const char *text, struct hark_transcript **out)
{
	struct hark_transcript *t = NULL;
	const char *p = text;
	char *line = NULL;
	int rc = hark_transcript_new(&t);

	while (rc == HARK_OK && *p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		const char *s = p;

		while (len && (*s == ' ' || *s == '\t' || *s == '\r')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
			len--;
		if (len) {
			free(line);
			line = strndup(s, len);
			rc = line ? hark_transcript_add_segment(t, 0, 0, line, NULL, 0, 0, 0, 0, 0)
				  : HARK_ERR_NOMEM;
		}
		p = e ? e + 1 : p + strlen(p);
	}
	free(line);
	if (rc == HARK_OK && t->n_segments == 0)
		rc = HARK_ERR_EMPTY;
	if (rc == HARK_OK)
		rc = hark_transcript_finalize_text(t);
	if (rc != HARK_OK) {
		hark_transcript_free(t);
		return rc;
	}
	*out = t;
	return HARK_OK;
}

static int parse_submitted(const char *text, struct hark_transcript **out, char *err,
			   size_t errlen)
{
	const char *p = text;
	size_t len = strlen(text);

	if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
	    (unsigned char)p[2] == 0xBF)
		p += 3;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (!*p) {
		hark_errbuf_set(err, errlen, "transcript is empty");
		return HARK_ERR_EMPTY;
	}
	if (*p == '{' || strncmp(p, "WEBVTT", 6) == 0 || strstr(p, "-->"))
		return hark_transcript_parse(text, len, out, err, errlen);
	return parse_plain_text(p, out);
}

static void run_transcript(struct run *r)
{
	struct hark_transcript *t = NULL;
	struct hark_result res[4];
	char *bodies[4] = {NULL, NULL, NULL, NULL};
	char err[512] = "";
	size_t n = 0;
	int rc;

	r->work_t0 = mono_now();
	report(r, "parse", 0.0, -1.0, 1);
	if (!r->job->input_text) {
		hark_errbuf_set(err, sizeof(err), "transcript job without text");
		rc = HARK_ERR_EMPTY;
		goto fail;
	}
	rc = parse_submitted(r->job->input_text, &t, err, sizeof(err));
	r->work_s = mono_now() - r->work_t0;
	if (rc != HARK_OK)
		goto fail;
	if (atomic_load(&r->w->flags)) {
		rc = HARK_ERR_CANCELED;
		goto fail;
	}
	rc = render_all(r, t, res, bodies, &n, err, sizeof(err));
	if (rc != HARK_OK)
		goto fail;
	end_done(r, res, n, 0.0, HARK_STAGE_PARSE);
	goto out;
fail:
	end_failed(r, rc, err);
out:
	for (size_t i = 0; i < 4; i++)
		free(bodies[i]);
	hark_transcript_free(t);
}

static void run_noop(struct run *r)
{
	static const char body[] = "{\"type\":\"noop\"}";
	struct hark_result res = {"json", body, sizeof(body) - 1};

	end_done(r, &res, 1, 0.0, -1);
}

static void run_job(struct worker *w, struct hark_job *job, double claim_store_s)
{
	struct run r;
	char err[512] = "";
	double now = wall_now(), since;

	memset(&r, 0, sizeof(r));
	r.pool = w->pool;
	r.w = w;
	r.job = job;
	r.opts = hark_job_options_default();
	r.t_claimed = mono_now();
	r.store_s = claim_store_s;
	r.last_report = -1e9;
	snprintf(r.stage, sizeof(r.stage), "starting");
	since = job->attempts <= 1 || job->next_run_at <= 0 ? job->created_at : job->next_run_at;
	r.queue_s = since > 0 && now > since ? now - since : 0.0;
	observe(w->pool, HARK_STAGE_QUEUE, r.queue_s);

	if (atomic_load(&w->flags)) {
		end_stopped(&r);
		return;
	}
	if (strcmp(job->type, "noop") == 0) {
		run_noop(&r);
		return;
	}
	if (hark_job_options_parse(job->options, job->options ? strlen(job->options) : 0, &r.opts,
				   err, sizeof(err)) != HARK_OK) {
		end_failed(&r, HARK_ERR_INVALID_ARG, err);
		goto out;
	}
	if (strcmp(job->type, "transcribe") == 0)
		run_transcribe(&r);
	else if (strcmp(job->type, "transcript") == 0)
		run_transcript(&r);
	else if (strcmp(job->type, "analyze") == 0)
		run_analyze(&r);
	else if (strcmp(job->type, "run") == 0)
		run_run(&r);
	else if (strcmp(job->type, "diagram") == 0)
		run_diagram(&r);
	else if (strcmp(job->type, "video") == 0)
		run_video(&r);
	else {
		hark_errbuf_set(err, sizeof(err), "unknown job type \"%s\"", job->type);
		end_failed(&r, HARK_ERR_INVALID_ARG, err);
	}
out:
	hark_job_options_clear(&r.opts);
}

/* ---- scheduling and worker threads ------------------------------------------------ */

/* Class order by ascending pass (ties: higher priority first). Under mu. */
static void prio_order_locked(struct hark_jobs *pool, int order[HARK_PRIO_COUNT])
{
	for (int i = 0; i < HARK_PRIO_COUNT; i++)
		order[i] = i;
	for (int i = 1; i < HARK_PRIO_COUNT; i++) {
		int c = order[i], j = i;
		while (j > 0 && pool->pass[order[j - 1]] > pool->pass[c]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = c;
	}
}

/*
 * Stride update after serving class c (order was the claim's order): c's pass
 * grows by 1/weight; classes tried before c were empty, and they are moved up
 * to c's old pass so that an idle class cannot bank credit and later starve
 * the others. Passes are renormalised so they stay small. Under mu.
 */
static void pass_update_locked(struct hark_jobs *pool, const int order[HARK_PRIO_COUNT], int c)
{
	double served = pool->pass[c], lo;

	for (int i = 0; i < HARK_PRIO_COUNT && order[i] != c; i++)
		if (pool->pass[order[i]] < served)
			pool->pass[order[i]] = served;
	pool->pass[c] += 1.0 / (double)pool->p.weights[c];
	lo = pool->pass[0];
	for (int i = 1; i < HARK_PRIO_COUNT; i++)
		if (pool->pass[i] < lo)
			lo = pool->pass[i];
	if (lo > 1e6)
		for (int i = 0; i < HARK_PRIO_COUNT; i++)
			pool->pass[i] -= lo;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hark_jobs *pool = w->pool;
	int last_err = HARK_OK;

	for (;;) {
		int order[HARK_PRIO_COUNT];
		struct hark_job job;
		struct hark_event ev;
		uint64_t seq;
		double t0, claim_s;
		int rc, c;

		pthread_mutex_lock(&pool->mu);
		if (pool->stop || pool->draining) {
			pthread_mutex_unlock(&pool->mu);
			break;
		}
		seq = pool->wake_seq;
		prio_order_locked(pool, order);
		w->busy = 1;
		pool->n_busy++;
		pthread_mutex_unlock(&pool->mu);

		memset(&job, 0, sizeof(job));
		memset(&ev, 0, sizeof(ev));
		t0 = mono_now();
		rc = hark_store_job_claim(pool->st, order, w->owner, wall_now(), pool->p.lease_s, &job,
					  &ev);
		claim_s = mono_now() - t0;
		if (rc != HARK_OK) {
			hark_job_clear(&job);
			hark_event_clear(&ev);
			if (rc != HARK_ERR_NOT_FOUND && rc != last_err)
				log_line("error", "claiming a job failed", NULL,
					 hark_store_errmsg(pool->st));
			last_err = rc;
			pthread_mutex_lock(&pool->mu);
			w->busy = 0;
			pool->n_busy--;
			pthread_cond_broadcast(&pool->idle_cond);
			if (!pool->stop && !pool->draining && pool->wake_seq == seq) {
				struct timespec dl = deadline_in(IDLE_POLL_S);
				pool->n_waiting++;
				pthread_cond_timedwait(&pool->work_cond, &pool->mu, &dl);
				pool->n_waiting--;
			}
			pthread_mutex_unlock(&pool->mu);
			continue;
		}
		last_err = HARK_OK;
		c = job.priority >= 0 && job.priority < HARK_PRIO_COUNT ? job.priority : HARK_PRIO_NORMAL;
		atomic_store(&w->flags, 0);
		pthread_mutex_lock(&pool->mu);
		pass_update_locked(pool, order, c);
		snprintf(w->job_id, sizeof(w->job_id), "%s", job.id);
		w->gen++;
		if (pool->draining)
			atomic_fetch_or(&w->flags, STOP_DRAIN);
		if (pool->n_waiting > 0)
			pthread_cond_signal(&pool->work_cond); /* there may be more work */
		pthread_mutex_unlock(&pool->mu);

		publish_clear(pool, &ev);
		run_job(w, &job, claim_s);
		hark_job_clear(&job);

		pthread_mutex_lock(&pool->mu);
		w->job_id[0] = '\0';
		w->busy = 0;
		pool->n_busy--;
		pthread_cond_broadcast(&pool->idle_cond);
		pthread_mutex_unlock(&pool->mu);
	}
	return NULL;
}

void hark_jobs_wake(struct hark_jobs *jobs)
{
	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->mu);
	jobs->wake_seq++;
	pthread_cond_signal(&jobs->work_cond);
	pthread_mutex_unlock(&jobs->mu);
}

int hark_jobs_cancel(struct hark_jobs *jobs, const char *job_id)
{
	int found = 0;

	if (!jobs || !job_id || !*job_id)
		return 0;
	pthread_mutex_lock(&jobs->mu);
	for (int i = 0; i < jobs->n_workers; i++) {
		struct worker *w = &jobs->workers[i];
		if (w->job_id[0] && strcmp(w->job_id, job_id) == 0) {
			atomic_fetch_or(&w->flags, STOP_USER);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&jobs->mu);
	return found;
}

/* Sleeps on tick_cond up to secs; returns 1 when the pool is stopping. */
static int tick_wait(struct hark_jobs *pool, double secs)
{
	struct timespec dl = deadline_in(secs);
	int stop;

	pthread_mutex_lock(&pool->mu);
	while (!pool->stop) {
		if (pthread_cond_timedwait(&pool->tick_cond, &pool->mu, &dl) == ETIMEDOUT)
			break;
	}
	stop = pool->stop;
	pthread_mutex_unlock(&pool->mu);
	return stop;
}

static void *heartbeat_main(void *arg)
{
	struct hark_jobs *pool = arg;

	while (!tick_wait(pool, pool->p.heartbeat_s)) {
		for (int i = 0; i < pool->n_workers; i++) {
			struct worker *w = &pool->workers[i];
			char id[HARK_ID_LEN];
			uint64_t gen;
			int cancel_req = 0, rc;

			pthread_mutex_lock(&pool->mu);
			snprintf(id, sizeof(id), "%s", w->job_id);
			gen = w->gen;
			pthread_mutex_unlock(&pool->mu);
			if (!id[0])
				continue;
			rc = hark_store_job_heartbeat(pool->st, id, w->owner,
						      wall_now() + pool->p.lease_s, &cancel_req);
			pthread_mutex_lock(&pool->mu);
			if (w->gen == gen && strcmp(w->job_id, id) == 0) {
				if (rc == HARK_ERR_NOT_FOUND)
					atomic_fetch_or(&w->flags, STOP_LOST);
				else if (rc == HARK_OK && cancel_req)
					atomic_fetch_or(&w->flags, STOP_USER);
			}
			pthread_mutex_unlock(&pool->mu);
			if (rc != HARK_OK && rc != HARK_ERR_NOT_FOUND)
				log_line("warn", "heartbeat failed", id, hark_store_errmsg(pool->st));
		}
	}
	return NULL;
}

/* Retention sweep: expired finished jobs, then their unreferenced blobs. */
static void sweep_expired(struct hark_jobs *pool)
{
	for (int round = 0; round < 100; round++) {
		char (*orphans)[HARK_SHA_HEX_LEN] = NULL;
		size_t n_jobs = 0, n_orphans = 0;

		if (hark_store_sweep(pool->st, wall_now(), SWEEP_BATCH, &n_jobs, &orphans,
				     &n_orphans) != HARK_OK) {
			free(orphans);
			break;
		}
		for (size_t i = 0; i < n_orphans; i++)
			hark_blob_remove(pool->data_dir, orphans[i]);
		free(orphans);
		pthread_mutex_lock(&pool->stats_mu);
		pool->stats.swept_jobs += n_jobs;
		pool->stats.swept_blobs += n_orphans;
		pthread_mutex_unlock(&pool->stats_mu);
		if (n_jobs < SWEEP_BATCH)
			break;
	}
}

/* Expired-lease recovery and the retention sweep. */
static void recover_and_sweep(struct hark_jobs *pool)
{
	size_t n = 0;

	if (hark_store_job_recover(pool->st, wall_now(), NULL, &n) == HARK_OK && n > 0) {
		pthread_mutex_lock(&pool->stats_mu);
		pool->stats.recovered += n;
		pthread_mutex_unlock(&pool->stats_mu);
		pthread_mutex_lock(&pool->mu);
		pool->wake_seq++;
		pthread_cond_broadcast(&pool->work_cond);
		pthread_mutex_unlock(&pool->mu);
	}
	sweep_expired(pool);
}

static void refresh_gauges(struct hark_jobs *pool)
{
	int64_t by_status[HARK_JOB_STATUS_COUNT], by_prio[HARK_PRIO_COUNT];

	if (hark_store_job_counts(pool->st, by_status, by_prio) != HARK_OK)
		return;
	pthread_mutex_lock(&pool->stats_mu);
	memcpy(pool->stats.jobs_by_status, by_status, sizeof(by_status));
	memcpy(pool->stats.queued_by_prio, by_prio, sizeof(by_prio));
	pthread_mutex_unlock(&pool->stats_mu);
}

static void *housekeeping_main(void *arg)
{
	struct hark_jobs *pool = arg;
	double last_sweep = mono_now();

	/* A server that was down past some jobs' retention sweeps them now. */
	sweep_expired(pool);
	refresh_gauges(pool);
	while (!tick_wait(pool, pool->p.sweep_interval_s)) {
		refresh_gauges(pool);
		if (mono_now() - last_sweep >= RECOVER_EVERY_S) {
			last_sweep = mono_now();
			recover_and_sweep(pool);
		}
	}
	return NULL;
}

/* ---- start / drain / free ----------------------------------------------------------- */

size_t hark_jobs_drain(struct hark_jobs *jobs, double timeout_s)
{
	struct timespec dl;
	size_t before;

	if (!jobs)
		return 0;
	pthread_mutex_lock(&jobs->mu);
	if (jobs->drained) {
		pthread_mutex_unlock(&jobs->mu);
		return 0;
	}
	jobs->draining = 1;
	before = jobs->released;
	pthread_cond_broadcast(&jobs->work_cond);
	dl = deadline_in(timeout_s);
	while (jobs->n_busy > 0) {
		if (pthread_cond_timedwait(&jobs->idle_cond, &jobs->mu, &dl) == ETIMEDOUT)
			break;
	}
	for (int i = 0; i < jobs->n_workers; i++)
		if (jobs->workers[i].busy)
			atomic_fetch_or(&jobs->workers[i].flags, STOP_DRAIN);
	dl = deadline_in(DRAIN_CANCEL_WAIT_S);
	while (jobs->n_busy > 0) {
		if (pthread_cond_timedwait(&jobs->idle_cond, &jobs->mu, &dl) == ETIMEDOUT)
			break;
	}
	jobs->drained = 1;
	before = jobs->released - before;
	pthread_mutex_unlock(&jobs->mu);
	return before;
}

static void stop_threads(struct hark_jobs *pool)
{
	pthread_mutex_lock(&pool->mu);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->work_cond);
	pthread_cond_broadcast(&pool->tick_cond);
	pthread_mutex_unlock(&pool->mu);
	for (int i = 0; i < pool->n_workers; i++) {
		if (pool->workers[i].started) {
			pthread_join(pool->workers[i].thread, NULL);
			pool->workers[i].started = 0;
		}
	}
	if (pool->hb_started)
		pthread_join(pool->hb_thread, NULL);
	if (pool->hk_started)
		pthread_join(pool->hk_thread, NULL);
	pool->hb_started = pool->hk_started = 0;
	hark_webhook_stop(pool->webhook);
	pool->webhook = NULL;
}

static void pool_destroy(struct hark_jobs *pool)
{
	for (int i = 0; i < MAX_MODELS; i++)
		hark_model_free(pool->models[i].m);
	pthread_cond_destroy(&pool->work_cond);
	pthread_cond_destroy(&pool->idle_cond);
	pthread_cond_destroy(&pool->tick_cond);
	pthread_mutex_destroy(&pool->mu);
	pthread_mutex_destroy(&pool->model_mu);
	pthread_mutex_destroy(&pool->stats_mu);
	free(pool->workers);
	free(pool->data_dir);
	free(pool->instance_id);
	free(pool->engine);
	free(pool->model);
	if (pool->secret) {
		memset(pool->secret, 0, strlen(pool->secret));
		free(pool->secret);
	}
	free(pool);
}

void hark_jobs_free(struct hark_jobs *jobs)
{
	if (!jobs)
		return;
	hark_jobs_drain(jobs, 0.0);
	stop_threads(jobs);
	pool_destroy(jobs);
}

/* Copies p with defaults for unset fields; validates. */
static int normalise_params(struct hark_jobs_params *q, const struct hark_jobs_params *p,
			    char *err, size_t errlen)
{
	struct hark_jobs_params d = hark_jobs_default_params();
	long ncpu;

	*q = *p;
	if (!p->data_dir || !*p->data_dir || !p->instance_id || !*p->instance_id) {
		hark_errbuf_set(err, errlen, "jobs: data_dir and instance_id are required");
		return HARK_ERR_INVALID_ARG;
	}
	if (q->n_workers <= 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		q->n_workers = ncpu > 0 ? (int)(ncpu > 256 ? 256 : ncpu) : 1;
	}
	if (q->n_workers > 1024) {
		hark_errbuf_set(err, errlen, "jobs: too many workers (%d)", q->n_workers);
		return HARK_ERR_INVALID_ARG;
	}
	if (q->threads_per_job <= 0)
		q->threads_per_job = 1;
	if (!(q->lease_s > 0))
		q->lease_s = d.lease_s;
	if (!(q->heartbeat_s > 0))
		q->heartbeat_s = d.heartbeat_s;
	if (q->heartbeat_s > q->lease_s / 3.0)
		q->heartbeat_s = q->lease_s / 3.0;
	if (q->max_attempts <= 0)
		q->max_attempts = d.max_attempts;
	if (!(q->retry_base_s > 0))
		q->retry_base_s = d.retry_base_s;
	if (!(q->retry_max_s > 0))
		q->retry_max_s = d.retry_max_s;
	if (q->retry_max_s < q->retry_base_s)
		q->retry_max_s = q->retry_base_s;
	for (int i = 0; i < HARK_PRIO_COUNT; i++)
		if (q->weights[i] <= 0)
			q->weights[i] = d.weights[i];
	if (q->ttl_s < 0)
		q->ttl_s = 0;
	if (!(q->sweep_interval_s > 0))
		q->sweep_interval_s = d.sweep_interval_s;
	if (!(q->webhook_timeout_s > 0))
		q->webhook_timeout_s = d.webhook_timeout_s;
	if (q->webhook_max_attempts <= 0)
		q->webhook_max_attempts = d.webhook_max_attempts;
	return HARK_OK;
}

int hark_jobs_start(struct hark_store *st, const struct hark_jobs_params *p,
		    struct hark_jobs **out, char *err, size_t errlen)
{
	struct hark_jobs *pool = NULL;
	pthread_condattr_t ca;
	size_t n_recovered = 0;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!st || !p) {
		hark_errbuf_set(err, errlen, "jobs: store and params are required");
		return HARK_ERR_INVALID_ARG;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return HARK_ERR_NOMEM;
	rc = normalise_params(&pool->p, p, err, errlen);
	if (rc != HARK_OK) {
		free(pool);
		return rc;
	}
	pool->st = st;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_mutex_init(&pool->model_mu, NULL);
	pthread_mutex_init(&pool->stats_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->work_cond, &ca);
	pthread_cond_init(&pool->idle_cond, &ca);
	pthread_cond_init(&pool->tick_cond, &ca);
	pthread_condattr_destroy(&ca);

	pool->data_dir = strdup(p->data_dir);
	pool->instance_id = strdup(p->instance_id);
	pool->engine = dup_or_null(p->engine && *p->engine ? p->engine : NULL);
	pool->model = dup_or_null(p->model && *p->model ? p->model : NULL);
	pool->secret = dup_or_null(p->webhook_secret && *p->webhook_secret ? p->webhook_secret : NULL);
	pool->n_workers = pool->p.n_workers;
	pool->workers = calloc((size_t)pool->n_workers, sizeof(*pool->workers));
	if (!pool->data_dir || !pool->instance_id || !pool->workers ||
	    (p->engine && *p->engine && !pool->engine) || (p->model && *p->model && !pool->model) ||
	    (p->webhook_secret && *p->webhook_secret && !pool->secret)) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	pool->p.data_dir = pool->data_dir;
	pool->p.instance_id = pool->instance_id;
	pool->p.engine = pool->engine;
	pool->p.model = pool->model;
	pool->p.webhook_secret = pool->secret;
	pool->stats.workers_total = pool->n_workers;
	pool->llm = p->llm;
	pool->embed = p->llm ? p->embed : 0;
	pool->llm_ready = !p->llm_later;

	/* Single process per data directory: whatever is still running belongs
	 * to a previous run of this server. */
	rc = hark_store_job_recover(st, wall_now(), "", &n_recovered);
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "jobs: recovery failed: %s", hark_store_errmsg(st));
		goto fail;
	}
	pool->stats.recovered = n_recovered;
	hark_blob_clean_tmp(pool->data_dir);
	clean_video_tmp(pool->data_dir);

	{
		const struct hark_engine_ops *ops = NULL;
		char dpath[1024], derr[256];

		if (hark_api_resolve_engine(pool->engine, pool->model, &ops, dpath, sizeof(dpath),
					    derr, sizeof(derr)) == HARK_OK && ops)
			snprintf(pool->default_engine, sizeof(pool->default_engine), "%s", ops->name);
	}
	/* Load the default model now, before this pool starts any thread: the
	 * first job does not pay for it, and the PocketSphinx engine validates a
	 * model in a forked child, which is safest while few threads run (a
	 * sanitizer's allocator lock held by another thread at fork time would
	 * hang the child). A failure is not fatal here: jobs report it, and
	 * hark_jobs_check_model() tells readiness. */
	{
		struct model_entry *e = NULL;
		char merr[256];

		if (model_acquire(pool, NULL, NULL, &e, merr, sizeof(merr)) == HARK_OK)
			model_release(pool, e);
	}

	if (!pool->secret)
		log_line("warn", "no webhook secret: webhook deliveries are stored but not sent",
			 NULL, NULL);
	if (pool->secret) {
		struct hark_webhook_params wp = {
			.st = st,
			.secret = pool->secret,
			.timeout_s = pool->p.webhook_timeout_s,
			.max_attempts = pool->p.webhook_max_attempts,
			.poll_s = 1.0,
		};
		rc = hark_webhook_start(&wp, &pool->webhook, err, errlen);
		if (rc != HARK_OK)
			goto fail;
	}
	rc = HARK_ERR_INTERNAL;
	if (pthread_create(&pool->hk_thread, NULL, housekeeping_main, pool) != 0)
		goto fail_thread;
	pool->hk_started = 1;
	if (pthread_create(&pool->hb_thread, NULL, heartbeat_main, pool) != 0)
		goto fail_thread;
	pool->hb_started = 1;
	for (int i = 0; i < pool->n_workers; i++) {
		struct worker *w = &pool->workers[i];
		w->pool = pool;
		w->idx = i;
		snprintf(w->owner, sizeof(w->owner), "%.48s/w%d", pool->instance_id, i);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			goto fail_thread;
		w->started = 1;
	}
	*out = pool;
	return HARK_OK;
fail_thread:
	hark_errbuf_set(err, errlen, "jobs: cannot start threads");
	pthread_mutex_lock(&pool->mu);
	pool->drained = 1;
	pthread_mutex_unlock(&pool->mu);
	stop_threads(pool);
fail:
	pool_destroy(pool);
	return rc;
}
