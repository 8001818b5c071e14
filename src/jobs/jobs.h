/*
 * The in-process worker pool of the job service. N worker threads claim jobs
 * from the store (weighted-fair across priorities, so batch work never
 * starves), run them (transcribe an uploaded blob, normalise a submitted
 * transcript, analyse a meeting transcript into minutes and a knowledge
 * graph, transcribe and then analyse, turn a transcript or a recording into
 * a diagram (spec, SVG, PNG) or a recording into an MP4 video of its
 * diagram, or the trivial "noop" type used to measure the queue), keep
 * their leases alive with heartbeats, and finish each job exactly once. Models
 * are loaded once per (engine, model) and shared read-only; every job gets its
 * own engine context. A housekeeping thread recovers expired leases, sweeps
 * expired jobs and blobs, and refreshes queue gauges. Every event a job emits
 * is stored first and then handed to the on_event callback (from worker
 * threads), which the server uses to feed SSE/WebSocket streams.
 */
#ifndef HARK_JOBS_JOBS_H
#define HARK_JOBS_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct hark_llm;

/* Called from worker/housekeeping threads; must not block. ev is borrowed. */
typedef void (*hark_jobs_event_fn)(const struct hark_event *ev, void *user_data);

struct hark_jobs_params {
	const char *data_dir;      /* blobs live under it (required) */
	int n_workers;             /* 0 = number of cores */
	int threads_per_job;       /* engine compute threads per job; 0 = 1 */
	const char *instance_id;   /* lease owner prefix, unique per process (required) */
	double lease_s;            /* default 30 */
	double heartbeat_s;        /* default 5 (also how often cancels are polled from the store) */
	int max_attempts;          /* default 3 */
	double retry_base_s;       /* first backoff for transient failures; default 2 */
	double retry_max_s;        /* default 300 */
	int weights[HARK_PRIO_COUNT]; /* fair shares realtime..batch; default 32,8,4,1 */
	double ttl_s;              /* retention of finished jobs/blobs; 0 = keep; default 7 days */
	double sweep_interval_s;   /* housekeeping period; default 1 (gauges), sweep every 60 s */
	const char *engine;        /* default engine for jobs that say "auto"; NULL = "auto" */
	const char *model;         /* default model name/path; NULL = engine default */
	const char *webhook_secret;/* HMAC-SHA256 key for webhook signatures (required for webhooks) */
	double webhook_timeout_s;  /* per delivery attempt; default 10 */
	int webhook_max_attempts;  /* default 8 (backoff 1 s doubling, capped at 10 min) */
	struct hark_llm *llm;      /* shared LLM client for analysis jobs (borrowed, must
				    * outlive the pool); NULL = offline analysis only */
	int embed;                 /* 1: analysis also embeds chunks (route "embed"); needs llm */
	int llm_later;             /* 1: llm/embed come later through hark_jobs_set_llm();
				    * analysis jobs wait for that call */
	hark_jobs_event_fn on_event;
	void *user_data;
};

struct hark_jobs_params hark_jobs_default_params(void);

/* Histogram bucket upper bounds (seconds) for stage durations; +Inf implied. */
#define HARK_JOBS_N_BUCKETS 12
extern const double hark_jobs_buckets[HARK_JOBS_N_BUCKETS];

enum hark_jobs_stage {
	HARK_STAGE_QUEUE = 0,   /* waiting in the queue */
	HARK_STAGE_TRANSCRIBE,  /* decode + recognise */
	HARK_STAGE_PARSE,       /* transcript jobs: parse the submitted text */
	HARK_STAGE_RENDER,      /* render result formats */
	HARK_STAGE_STORE,       /* commit results */
	HARK_STAGE_ANALYZE,     /* analyze/run jobs: the meeting-analysis pipeline */
	HARK_STAGE_DIAGRAM,     /* diagram/video jobs: read turns, build the diagram
				 * (structure or LLM) and lay it out */
	HARK_STAGE_COUNT
};
/* "queue", "transcribe", "parse", "render", "store", "analyze", "diagram";
 * static. */
const char *hark_jobs_stage_name(int stage);

/* A consistent snapshot of counters (monotonic unless said otherwise). */
struct hark_jobs_stats {
	int workers_total;
	int workers_busy;                       /* gauge */
	int64_t jobs_by_status[HARK_JOB_STATUS_COUNT];  /* gauge, refreshed by housekeeping */
	int64_t queued_by_prio[HARK_PRIO_COUNT];        /* gauge, refreshed by housekeeping */
	uint64_t completed, failed, canceled, retried, recovered;
	double audio_seconds;                   /* audio processed by finished jobs */
	uint64_t stage_count[HARK_STAGE_COUNT];
	double stage_sum[HARK_STAGE_COUNT];
	uint64_t stage_bucket[HARK_STAGE_COUNT][HARK_JOBS_N_BUCKETS + 1]; /* cumulative-ready: per-bucket counts, last = +Inf */
	uint64_t webhooks_sent, webhooks_failed;
	uint64_t swept_jobs, swept_blobs;
	uint64_t analyzed_offline, analyzed_llm; /* analysis jobs done, by method */
	uint64_t diagrams_offline, diagrams_llm; /* diagram jobs done, by method */
	uint64_t videos_offline, videos_llm;     /* video jobs done, by diagram method */
};

struct hark_jobs;

/*
 * Starts the pool on st (borrowed; must outlive the pool). At start every
 * job still marked running by a previous run of this data directory is
 * requeued (the caller guarantees, by a lock file, that no other process
 * serves the same SQLite directory). Errors: HARK_ERR_INVALID_ARG,
 * HARK_ERR_NOMEM, HARK_ERR_INTERNAL (thread creation), message in err.
 */
int hark_jobs_start(struct hark_store *st, const struct hark_jobs_params *p,
		    struct hark_jobs **out, char *err, size_t errlen);

/* Hands the pool its shared LLM client (borrowed; NULL = offline only) and
 * whether analysis embeds chunks, once (with params.llm_later); analysis
 * jobs waiting for it go on. Thread-safe. */
void hark_jobs_set_llm(struct hark_jobs *jobs, struct hark_llm *llm, int embed);

/* A job was queued: wake an idle worker. Thread-safe, non-blocking. */
void hark_jobs_wake(struct hark_jobs *jobs);

/*
 * Asks a job running in this process to stop (its engine cancel callback
 * fires within one chunk, well under a second). Returns 1 if it was running
 * here, else 0. The store's cancel flag covers other processes.
 */
int hark_jobs_cancel(struct hark_jobs *jobs, const char *job_id);

/*
 * Drain (SIGTERM): stop claiming, wait up to timeout_s for running jobs to
 * finish, then cancel the rest and hand them back to the queue (released,
 * not failed). Returns the number of jobs handed back.
 */
size_t hark_jobs_drain(struct hark_jobs *jobs, double timeout_s);

/* Stops every thread (drain with timeout 0 if not drained) and frees. */
void hark_jobs_free(struct hark_jobs *jobs);

/* Snapshot of the counters. Thread-safe. */
void hark_jobs_get_stats(struct hark_jobs *jobs, struct hark_jobs_stats *out);

/* Readiness: the default engine/model can be loaded (cached after the
 * first success). 0 = ok, else an error with a message in err. */
int hark_jobs_check_model(struct hark_jobs *jobs, char *err, size_t errlen);

/* Publishes an event produced outside the pool (e.g. a submit's "queued"
 * event) through the same on_event callback. */
void hark_jobs_publish(struct hark_jobs *jobs, const struct hark_event *ev);

#endif /* HARK_JOBS_JOBS_H */
