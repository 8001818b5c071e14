/*
 * The job store: durable state of the job service (jobs, their progress
 * events, rendered results, API keys and their usage, webhook deliveries and
 * small settings; the LLM layer's cache and accounting; the meeting-analysis
 * data: analysed meetings, the per-chunk result cache, search documents with
 * their full-text index, and embeddings) behind one table of function
 * pointers, so that the SQLite backend (one file per data directory, the
 * default) and a later PostgreSQL
 * backend are interchangeable. All SQL and all locking live inside the
 * backend file; callers see only the hark_store_* functions below. A store
 * handle is thread-safe: any thread may call any function at any time (the
 * backend keeps its own connections). Every state change of a job appends an
 * event in the same transaction, and hands it back so the caller can publish
 * it live with the same sequence number that a later replay would use.
 *
 * Times are Unix seconds as doubles (UTC). Strings in structs filled by the
 * store are heap-owned by that struct and released by the matching *_clear().
 */
#ifndef HARK_STORE_STORE_H
#define HARK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hark/hark.h"

#define HARK_ID_LEN 40       /* buffer size for job/key/delivery ids */
#define HARK_SHA_HEX_LEN 65  /* 64 hex digits + NUL */

enum hark_job_status {
	HARK_JOB_QUEUED = 0,
	HARK_JOB_RUNNING = 1,
	HARK_JOB_DONE = 2,
	HARK_JOB_FAILED = 3,
	HARK_JOB_CANCELED = 4,
};
#define HARK_JOB_STATUS_COUNT 5

enum hark_job_priority {
	HARK_PRIO_REALTIME = 0,
	HARK_PRIO_HIGH = 1,
	HARK_PRIO_NORMAL = 2,
	HARK_PRIO_BATCH = 3,
};
#define HARK_PRIO_COUNT 4

/* "queued", "running", "done", "failed", "canceled"; static storage. */
const char *hark_store_status_name(int status);
/* Inverse of the above; HARK_ERR_INVALID_ARG for an unknown name. */
int hark_store_status_parse(const char *name, int *out);
/* "realtime", "high", "normal", "batch"; static storage. */
const char *hark_store_priority_name(int prio);
int hark_store_priority_parse(const char *name, int *out);

/* One job row. */
struct hark_job {
	char id[HARK_ID_LEN];          /* "job_" + 26 lowercase base32 chars, time-ordered */
	char type[16];                 /* "transcribe", "transcript", "noop" */
	int status;                    /* enum hark_job_status */
	int priority;                  /* enum hark_job_priority */
	char key_id[HARK_ID_LEN];      /* owning API key id; "" = anonymous */
	char blob_sha[HARK_SHA_HEX_LEN]; /* uploaded media; "" = none */
	int64_t blob_size;             /* bytes */
	char *filename;                /* client's file name, display only (never a path); may be NULL */
	char *media_type;              /* sniffed MIME type, e.g. "audio/wav"; may be NULL */
	char *options;                 /* canonical JSON object text (never NULL once stored) */
	char *input_text;              /* "transcript" jobs: submitted transcript text; else NULL */
	char dedup_key[HARK_SHA_HEX_LEN]; /* sha256 over content + result-affecting options; "" = none */
	char *webhook;                 /* URL or NULL */
	int attempts;                  /* claims so far (a crash-requeue counts) */
	int max_attempts;              /* after this many, a transient failure is final */
	int cached;                    /* 1: finished at submit from an identical job */
	int cancel_requested;          /* 1: DELETE arrived while running */
	char *stage;                   /* current stage ("queued", "decode", "transcribe", "render", ...) */
	double percent;                /* 0..100 within the whole job */
	double eta_s;                  /* seconds left; < 0 unknown */
	char *timings;                 /* JSON object {"stage": seconds, ...}; may be NULL */
	char *error_code;              /* hark_err_code() string; NULL unless failed */
	char *error_message;           /* NULL unless failed */
	double audio_s;                /* seconds of audio processed (0 unknown) */
	double created_at, started_at, finished_at;
	double next_run_at;            /* queued jobs are not claimed before this */
	double expires_at;             /* retention: sweeper removes after this; 0 = never */
	char lease_owner[64];          /* "" unless running */
	double lease_expires_at;
};

/* Frees the heap strings of j and zeroes it. NULL is a no-op. */
void hark_job_clear(struct hark_job *j);
/* Frees an array of n jobs returned by a list call (each cleared). */
void hark_job_array_free(struct hark_job *jobs, size_t n);

/* One job event (SSE/WebSocket payload). seq is store-wide, strictly increasing. */
struct hark_event {
	int64_t seq;
	char job_id[HARK_ID_LEN];
	char type[16];   /* "queued","running","stage","progress","done","failed","canceled","requeued" */
	char *data;      /* JSON object text: the job summary (hark_store_job_summary_json) */
	double at;
};
void hark_event_clear(struct hark_event *e);
void hark_event_array_free(struct hark_event *ev, size_t n);

/* A rendered result handed to job_finish (borrowed). */
struct hark_result {
	const char *format;  /* "json", "txt", "srt", "vtt" */
	const char *body;
	size_t len;
};

struct hark_job_filter {
	int status;              /* -1 = any */
	const char *key_id;      /* NULL = any key (anonymous mode); "" = anonymous jobs only */
	const char *cursor;      /* NULL/"" = newest first; else return jobs with id < cursor */
	size_t limit;            /* 1..1000 (clamped) */
};

/* One API key. The secret token is never stored, only its sha256. */
struct hark_key {
	char id[HARK_ID_LEN];          /* "key_" + 16 lowercase hex */
	char *name;                    /* label given at creation */
	char hash[HARK_SHA_HEX_LEN];   /* sha256 hex of the full token */
	char prefix[16];               /* first 12 chars of the token, for display */
	double created_at;
	double revoked_at;             /* 0 = active */
	double rate_rps;               /* token-bucket refill, requests/s; 0 = unlimited */
	double rate_burst;             /* bucket size */
	double daily_quota_s;          /* audio seconds per UTC day; 0 = unlimited */
	int max_concurrent;            /* running jobs at once; 0 = unlimited */
};
void hark_key_clear(struct hark_key *k);
void hark_key_array_free(struct hark_key *k, size_t n);

/*
 * Makes a fresh key: token "hark_" + 40 random lowercase hex chars into
 * token (>= 64 bytes), its sha256 hex into k->hash, k->id and k->prefix.
 * Other fields are left to the caller. Returns HARK_ERR_INTERNAL if the
 * system RNG fails.
 */
int hark_store_key_generate(struct hark_key *k, char *token, size_t token_len);
/* sha256 hex of token into hash (65 bytes). */
void hark_store_key_hash(const char *token, char hash[HARK_SHA_HEX_LEN]);

/* New time-ordered job id into id (HARK_ID_LEN bytes). */
int hark_store_new_job_id(char id[HARK_ID_LEN]);

/*
 * The job summary JSON object that events, GET /v1/jobs/{id} and webhooks
 * carry (see docs/SERVER.md): id, type, status, priority, cached, created_at,
 * started_at, finished_at, progress{stage,percent,eta_s}, timings, error,
 * audio_s, attempts, filename, media_type, links. Returns a new heap string
 * (caller frees) or NULL on allocation failure.
 */
char *hark_store_job_summary_json(const struct hark_job *j);

/* A webhook delivery waiting to be (re)sent. */
struct hark_webhook {
	int64_t id;
	char job_id[HARK_ID_LEN];
	char *url;
	char *body;      /* JSON job summary at completion */
	int attempts;
	double next_at;
};
void hark_webhook_clear(struct hark_webhook *w);

struct hark_store_params {
	int sync_full;      /* 1 (default): synchronous=FULL, every commit fsync'd */
	double busy_timeout_s; /* how long a writer waits for the lock (default 10) */
};
struct hark_store_params hark_store_default_params(void);

struct hark_store;  /* opaque */

/*
 * Opens (creating if needed) the store at location: for SQLite a data
 * directory (DIR/hark.db, WAL mode; the directory is created). The schema is
 * created or migrated. HARK_ERR_IO / HARK_ERR_CORRUPT / HARK_ERR_PERMISSION
 * with a message in err on failure.
 */
int hark_store_open(const char *location, const struct hark_store_params *p,
		    struct hark_store **out, char *err, size_t errlen);
void hark_store_close(struct hark_store *st);
/* Backend name: "sqlite". */
const char *hark_store_backend(const struct hark_store *st);

/* ---- jobs ---------------------------------------------------------------- */

/*
 * Inserts a new job in status queued (or done when j->cached, see
 * job_insert_cached). j->id must be set (hark_store_new_job_id), created_at,
 * next_run_at, expires_at too. Appends a "queued" event (returned in *ev if
 * ev != NULL; caller clears).
 */
int hark_store_job_insert(struct hark_store *st, const struct hark_job *j, struct hark_event *ev);

/*
 * Dedup: finds the newest job in status done with this dedup_key whose
 * results are still present and not expired; fills *out. HARK_ERR_NOT_FOUND
 * if none.
 */
int hark_store_job_find_done(struct hark_store *st, const char *dedup_key, struct hark_job *out);

/*
 * Inserts j as an already finished job (status done, cached = 1) whose
 * results are copies of source_id's, in one transaction. Appends a "done"
 * event.
 */
int hark_store_job_insert_cached(struct hark_store *st, const struct hark_job *j,
				 const char *source_id, struct hark_event *ev);

/* Reads one job. HARK_ERR_NOT_FOUND if absent. */
int hark_store_job_get(struct hark_store *st, const char *id, struct hark_job *out);

/*
 * Lists jobs newest first. *out (caller frees with hark_job_array_free) gets
 * up to f->limit jobs; next_cursor gets the id to pass as the next cursor, or
 * "" when there are no more.
 */
int hark_store_job_list(struct hark_store *st, const struct hark_job_filter *f,
			struct hark_job **out, size_t *n, char next_cursor[HARK_ID_LEN]);

/*
 * Claims the next runnable job for owner: status queued, next_run_at <= now,
 * whose key is below its max_concurrent running jobs. Priorities are tried
 * in prio_order (HARK_PRIO_COUNT entries); within a priority, oldest first.
 * Sets status running, lease_owner = owner, lease_expires_at = now + lease_s,
 * attempts += 1, started_at (first claim), stage "starting". Appends a
 * "running" event. HARK_ERR_NOT_FOUND when nothing is runnable.
 */
int hark_store_job_claim(struct hark_store *st, const int *prio_order, const char *owner,
			 double now, double lease_s, struct hark_job *out, struct hark_event *ev);

/*
 * Extends the lease of a running job held by owner to lease_until and
 * reports whether a cancel was requested. HARK_ERR_NOT_FOUND if the job is
 * no longer running under this owner (lease lost: the caller must stop and
 * discard its work).
 */
int hark_store_job_heartbeat(struct hark_store *st, const char *id, const char *owner,
			     double lease_until, int *cancel_requested);

/*
 * Records progress of a running job held by owner: stage, percent (0..100),
 * eta_s (< 0 unknown), timings (JSON object text or NULL to keep). Appends a
 * "stage" event when the stage changed, else a "progress" event.
 * HARK_ERR_NOT_FOUND if the lease is lost.
 */
int hark_store_job_progress(struct hark_store *st, const char *id, const char *owner,
			    const char *stage, double percent, double eta_s,
			    const char *timings, struct hark_event *ev);

/*
 * Finishes a running job held by owner in one transaction: stores the n
 * results, sets status done, percent 100, audio_s, timings, finished_at,
 * clears the lease, adds audio_s to the owning key's usage of the current
 * UTC day, enqueues a webhook delivery when the job has a webhook, and
 * appends a "done" event. If the job is not running under owner (lease
 * lost, canceled), nothing is written and HARK_ERR_NOT_FOUND is returned:
 * a result is stored exactly once.
 */
int hark_store_job_finish(struct hark_store *st, const char *id, const char *owner,
			  const struct hark_result *results, size_t n, double audio_s,
			  const char *timings, struct hark_event *ev);

/*
 * Ends a running attempt with an error. retry_at > 0 and attempts <
 * max_attempts: back to queued with next_run_at = retry_at (event
 * "requeued"); otherwise status failed with code/message (event "failed",
 * webhook enqueued). HARK_ERR_NOT_FOUND if the lease is lost.
 */
int hark_store_job_fail(struct hark_store *st, const char *id, const char *owner,
			const char *code, const char *message, double retry_at,
			struct hark_event *ev);

/*
 * Cancels a job. Queued: status canceled at once (event "canceled").
 * Running: sets cancel_requested (the worker stops and calls
 * job_canceled); *status_out gets the status before the call. Done, failed
 * or canceled jobs are left alone (status_out tells). HARK_ERR_NOT_FOUND if
 * absent.
 */
int hark_store_job_cancel(struct hark_store *st, const char *id, int *status_out,
			  struct hark_event *ev);

/* Worker side of a cancel: running job held by owner -> canceled. */
int hark_store_job_canceled(struct hark_store *st, const char *id, const char *owner,
			    struct hark_event *ev);

/*
 * Hands a running job held by owner back to the queue without counting a
 * failure (drain on SIGTERM): status queued, attempts -= 1, lease cleared,
 * event "requeued".
 */
int hark_store_job_release(struct hark_store *st, const char *id, const char *owner,
			   struct hark_event *ev);

/*
 * Recovery: every running job whose lease expired before now (or, when
 * owner_prefix != NULL, every running job whose owner starts with it, expired
 * or not) goes back to queued with a "requeued" event; a job that already
 * used max_attempts becomes failed with code "internal" ("worker died
 * repeatedly"). *n_out gets how many were requeued or failed.
 */
int hark_store_job_recover(struct hark_store *st, double now, const char *owner_prefix,
			   size_t *n_out);

/*
 * Deletes a finished/canceled/failed job (row, results, events). If no
 * other job references its blob, copies the blob sha into orphan_sha (else
 * ""), so the caller can delete the file. HARK_ERR_INVALID_ARG if the job is
 * queued or running.
 */
int hark_store_job_purge(struct hark_store *st, const char *id,
			 char orphan_sha[HARK_SHA_HEX_LEN]);

/*
 * Retention sweep: purges jobs in a final state with expires_at <= now (at
 * most limit per call). *orphans gets a heap array of blob shas no longer
 * referenced (caller frees with free()); *n_jobs the jobs removed. Also
 * deletes expired LLM cache rows (at most limit per call).
 */
int hark_store_sweep(struct hark_store *st, double now, size_t limit, size_t *n_jobs,
		     char (**orphans)[HARK_SHA_HEX_LEN], size_t *n_orphans);

/* Counts for metrics: jobs by status, queued jobs by priority. */
int hark_store_job_counts(struct hark_store *st, int64_t by_status[HARK_JOB_STATUS_COUNT],
			  int64_t queued_by_prio[HARK_PRIO_COUNT]);

/* Running jobs of a key (for caps at submit time). */
int hark_store_key_running(struct hark_store *st, const char *key_id, int64_t *n);

/* ---- results and events ------------------------------------------------- */

/*
 * Reads a stored result of a done job. *body is a new heap buffer (caller
 * frees), NUL-terminated, *len bytes without the NUL. HARK_ERR_NOT_FOUND if
 * absent.
 */
int hark_store_result_get(struct hark_store *st, const char *job_id, const char *format,
			  char **body, size_t *len);

/* Events of job_id with seq > after_seq, oldest first, at most limit. */
int hark_store_event_list(struct hark_store *st, const char *job_id, int64_t after_seq,
			  size_t limit, struct hark_event **out, size_t *n);

/* ---- keys and usage ----------------------------------------------------- */

int hark_store_key_insert(struct hark_store *st, const struct hark_key *k);
/* All keys, newest first (revoked included). */
int hark_store_key_list(struct hark_store *st, struct hark_key **out, size_t *n);
/* Revokes by id or by token prefix. HARK_ERR_NOT_FOUND if no such key. */
int hark_store_key_revoke(struct hark_store *st, const char *id_or_prefix, double now);
/* Looks a key up by token hash (revoked keys are returned too; check revoked_at). */
int hark_store_key_get_by_hash(struct hark_store *st, const char *hash, struct hark_key *out);
/* Audio seconds charged to key_id on UTC day "YYYY-MM-DD". 0 if none. */
int hark_store_usage_get(struct hark_store *st, const char *key_id, const char *day, double *audio_s);
/* A counter that changes whenever keys change (for cache refresh). */
int hark_store_keys_version(struct hark_store *st, int64_t *version);

/* ---- webhooks ------------------------------------------------------------ */

/* Oldest delivery with next_at <= now and attempts < max; NOT_FOUND if none. */
int hark_store_webhook_next(struct hark_store *st, double now, int max_attempts,
			    struct hark_webhook *out);
/* Delivered (ok = 1: removed) or failed attempt (attempts += 1, next_at). */
int hark_store_webhook_update(struct hark_store *st, int64_t id, int ok, double next_at);

/* ---- settings and health -------------------------------------------------- */

/* Small persistent key/value settings (e.g. the webhook secret). *value heap. */
int hark_store_meta_get(struct hark_store *st, const char *name, char **value);
int hark_store_meta_set(struct hark_store *st, const char *name, const char *value);
/* Performs a real write transaction (readiness probe). */
int hark_store_ping_write(struct hark_store *st, char *err, size_t errlen);

/* ---- additions by the store module ---------------------------------------- */

/*
 * The message of the last failed store call made by the calling thread (a
 * thread-local buffer, "" after a call that succeeded; every hark_store_*
 * call resets it). Valid until this thread's next store call. st may be NULL.
 */
const char *hark_store_errmsg(struct hark_store *st);

/*
 * Atomic get-or-create of a setting: stores value under name unless a value
 * is already there, then returns the stored value in *out (heap, caller
 * frees). Two processes racing get the same answer.
 */
int hark_store_meta_init(struct hark_store *st, const char *name, const char *value,
			 char **out);

/*
 * The webhook signing secret kept in the store (meta "webhook_secret"):
 * created on first use as 32 random bytes in lowercase hex (64 chars).
 * *secret is heap (caller frees). HARK_ERR_INTERNAL if the RNG fails.
 */
int hark_store_webhook_secret(struct hark_store *st, char **secret);

/* Queued + running jobs of a key (the max_unfinished_per_key cap at submit
 * time; "" counts anonymous jobs). */
int hark_store_key_unfinished(struct hark_store *st, const char *key_id, int64_t *n);

/* "YYYY-MM-DD" of Unix time t in UTC into day (11 bytes): the usage day. */
void hark_store_utc_day(double t, char day[11]);

/* RFC 3339 UTC ("2024-05-01T12:00:00.123Z", millisecond precision) of Unix
 * time t into out (>= 25 bytes). */
void hark_store_rfc3339(double t, char *out, size_t outlen);

/* ---- LLM layer: reply cache, call accounting, shared rate limits ---------- */

/* One accounted LLM call (a finished HTTP request, or a cache hit). */
struct hark_llm_call {
	double at;                     /* Unix seconds (real) */
	char job_id[HARK_ID_LEN];      /* "" = none */
	char key_id[HARK_ID_LEN];      /* "" = none */
	char task[32];                 /* route name */
	char model[160];               /* "provider/model" */
	char kind[12];                 /* "chat", "embed" */
	int http_status;               /* 0 = transport failure or cache hit */
	int ok;                        /* 1: a usable reply */
	int cached;                    /* 1: answered from the cache (0 tokens, 0 cost) */
	int64_t tokens_in, tokens_out; /* billed usage the provider reported */
	double cost_usd;
	double latency_s;              /* provider seconds */
};

/* Sums over accounted calls. */
struct hark_llm_usage {
	int64_t calls;       /* rows (HTTP requests + cache hits) */
	int64_t requests;    /* rows with cached = 0 */
	int64_t cached;
	int64_t failed;      /* rows with ok = 0 */
	int64_t tokens_in, tokens_out;
	double cost_usd;
};

/*
 * Reply cache keyed by the sha256 (hex) of a canonical request. get: *value
 * heap (caller frees) and *len, or HARK_ERR_NOT_FOUND when absent or expired
 * (expires_at != 0 and <= now). put: insert or replace; expires_at 0 =
 * never. purge: deletes expired rows, *n_out how many (may be NULL).
 */
int hark_store_llm_cache_get(struct hark_store *st, const char *hash, double now, char **value,
			     size_t *len);
int hark_store_llm_cache_put(struct hark_store *st, const char *hash, const char *model,
			     const char *value, size_t len, double expires_at);
int hark_store_llm_cache_purge(struct hark_store *st, double now, int64_t *n_out);

/* Appends one accounted call. */
int hark_store_llm_call_add(struct hark_store *st, const struct hark_llm_call *c);

/* Sums calls matching every given filter: job_id / key_id (NULL = any;
 * "" matches calls without one), model (NULL = any), at >= since. */
int hark_store_llm_usage(struct hark_store *st, const char *job_id, const char *key_id,
			 const char *model, double since, struct hark_llm_usage *out);

/*
 * Store-backed sliding-window limiter (the shared budget behind
 * hark_llm_limiter_store_new; semantics of struct hark_llm_limiter_ops in
 * src/llm/limiter.h). Times are provider seconds. rpm/tpm 0 = unlimited.
 * Atomic across processes: one write transaction per acquire.
 */
int hark_store_llm_rate_acquire(struct hark_store *st, const char *key, double rpm, double tpm,
				double window_s, double tokens, double now, int *admitted,
				double *retry_at, int64_t *ticket);
int hark_store_llm_rate_adjust(struct hark_store *st, int64_t ticket, double tokens);
int hark_store_llm_rate_block(struct hark_store *st, const char *key, double until);

/* ---- meeting analysis: meetings, chunk results, search documents, embeddings ---- */

/*
 * Input caps of this section (violations: HARK_ERR_INVALID_ARG for a
 * malformed value, HARK_ERR_LIMIT for an oversized one; nothing is written):
 *   meeting name 1..HARK_STORE_NAME_MAX bytes; source <= 4096; date, method
 *   <= 64; model <= 256; content_sha / params_sha "" or 64 lowercase hex;
 *   minutes_json / graph_json <= HARK_STORE_JSON_MAX bytes each;
 *   chunks per meeting <= HARK_STORE_CHUNKS_MAX; search documents per
 *   meeting <= HARK_STORE_DOCS_MAX; document text 1..HARK_STORE_DOC_TEXT_MAX
 *   bytes of valid UTF-8; speaker <= 256; kind one of "chunk", "summary",
 *   "topic", "decision", "action", "question";
 *   chunk sha: 64 lowercase hex; pipeline 1..128 bytes; chunk result JSON
 *   <= HARK_STORE_JSON_MAX; batched gets <= HARK_STORE_BATCH_MAX shas;
 *   FTS query 1..HARK_STORE_QUERY_MAX bytes; search limit clamped to 1..1000;
 *   embedding model 1..159 bytes; dim 1..HARK_STORE_EMBED_DIM_MAX, finite
 *   values. Every string must be NUL-terminated UTF-8.
 */
#define HARK_STORE_NAME_MAX 256
#define HARK_STORE_JSON_MAX (64u * 1024u * 1024u)
#define HARK_STORE_CHUNKS_MAX 100000
#define HARK_STORE_DOCS_MAX 200000
#define HARK_STORE_DOC_TEXT_MAX 65536
#define HARK_STORE_BATCH_MAX 100000
#define HARK_STORE_QUERY_MAX 4096
#define HARK_STORE_EMBED_DIM_MAX 16384

/* One analysed meeting. Filled by the store: strings heap-owned, released by
 * hark_meeting_rec_clear. Handed to the store: borrowed (NULL = none). */
struct hark_meeting_rec {
	char *name;                         /* unique key, e.g. the transcript's base name */
	char *source;                       /* input path or URL, display only */
	char content_sha[HARK_SHA_HEX_LEN]; /* sha256 of the transcript text; "" = unknown */
	char params_sha[HARK_SHA_HEX_LEN];  /* sha256 of the result-affecting options */
	char *date;                         /* "YYYY-MM-DD" or free text; may be NULL */
	char *method;                       /* "offline", "llm", ... */
	char *model;                        /* "provider/model" or NULL */
	int64_t n_chunks;
	double analyzed_at;                 /* Unix seconds */
	char *minutes_json;                 /* minutes document; NULL when not loaded */
	char *graph_json;                   /* graph document; NULL when not loaded */
};

/* Frees the heap strings of m and zeroes it. NULL is a no-op. */
void hark_meeting_rec_clear(struct hark_meeting_rec *m);
/* Frees an array of n records returned by hark_store_meeting_list. */
void hark_meeting_rec_array_free(struct hark_meeting_rec *m, size_t n);

/* One chunk of an analysed meeting (by value). */
struct hark_meeting_chunk {
	int64_t seq;                      /* 0-based position in the meeting */
	char chunk_sha[HARK_SHA_HEX_LEN]; /* content hash of the chunk (64 hex) */
	double start_s, end_s;            /* seconds into the meeting; < 0 unknown */
	long first_turn, last_turn;       /* turn indices covered (inclusive) */
};

/* One searchable text (borrowed when handed to the store). */
struct hark_search_doc {
	const char *kind;      /* "chunk", "summary", "topic", "decision", "action", "question" */
	const char *meeting;   /* owning meeting; NULL or equal to the meeting being put */
	const char *speaker;   /* NULL = none */
	const char *text;      /* UTF-8, non-empty */
	const char *chunk_sha; /* chunk it comes from, 64 hex, or NULL/"" */
	double start_s, end_s; /* seconds; < 0 unknown */
	long turn;             /* turn index; < 0 unknown */
};

/* One search result; strings heap-owned (hark_search_hits_free). */
struct hark_search_hit {
	char *kind, *meeting, *speaker, *text;
	char *snippet;                   /* excerpt of text with «» around matched terms */
	char chunk_sha[HARK_SHA_HEX_LEN];
	double start_s, end_s;
	long turn;
	double score;                    /* higher is better (BM25: -bm25(); hybrid: RRF sum) */
	int bm25_rank;                   /* 1-based rank in the BM25 list; 0 = not in it */
	int vec_rank;                    /* 1-based rank in the vector list; 0 = not in it */
	int64_t doc_id;                  /* store id of the document (changes on re-put) */
};

void hark_search_hits_free(struct hark_search_hit *hits, size_t n);

/*
 * In one transaction: inserts or replaces meeting m (analyzed_at 0 = now),
 * replaces its chunk list with chunks[0..n) and its search documents with
 * docs[0..n_docs) (the text sha256 of each is recorded, for embeddings), so
 * a re-analysed meeting never leaves stale or duplicate chunks/documents.
 */
int hark_store_meeting_put(struct hark_store *st, const struct hark_meeting_rec *m,
			   const struct hark_meeting_chunk *chunks, size_t n,
			   const struct hark_search_doc *docs, size_t n_docs);
/* Reads one meeting (with its JSON documents) into *out (cleared first;
 * caller clears). HARK_ERR_NOT_FOUND if absent. */
int hark_store_meeting_get(struct hark_store *st, const char *name, struct hark_meeting_rec *out);
/* All meetings sorted by name (byte order); minutes_json/graph_json only
 * when with_json (else NULL). *out: hark_meeting_rec_array_free. */
int hark_store_meeting_list(struct hark_store *st, int with_json, struct hark_meeting_rec **out,
			    size_t *n);
/* The chunk list of a meeting in seq order (*out heap, free()); an absent
 * meeting gives HARK_ERR_NOT_FOUND. */
int hark_store_meeting_chunks(struct hark_store *st, const char *name,
			      struct hark_meeting_chunk **out, size_t *n);
/* Deletes a meeting with its chunks and search documents. NOT_FOUND if absent. */
int hark_store_meeting_delete(struct hark_store *st, const char *name);

/*
 * Per-chunk analysis cache keyed by (chunk_sha, pipeline). get: *json heap
 * (caller frees), HARK_ERR_NOT_FOUND when absent. put: insert or replace
 * (model may be NULL). get_many: out_json[i] (n entries, caller frees each)
 * answers shas[i], NULL when absent; one read transaction.
 */
int hark_store_chunk_result_get(struct hark_store *st, const char *chunk_sha,
				const char *pipeline, char **json);
int hark_store_chunk_result_put(struct hark_store *st, const char *chunk_sha,
				const char *pipeline, const char *model, const char *json);
int hark_store_chunk_result_get_many(struct hark_store *st, const char *pipeline,
				     const char *const *shas, size_t n, char **out_json);

/*
 * Full-text search over the stored documents. fts_query: an FTS5 query (the
 * caller is responsible for its syntax: hark_search_query builds a safe
 * one); an invalid query gives HARK_ERR_INVALID_ARG. Results best first
 * (score = -bm25, higher better; bm25_rank 1..n; vec_rank 0). kind_filter /
 * meeting_filter: NULL = all. When the SQLite library lacks FTS5 the store
 * falls back to a LIKE scan scored by term frequency (docs/SEARCH.md); that
 * fallback understands quoted terms and bare words joined by OR.
 * *out: hark_search_hits_free.
 */
int hark_store_search_bm25(struct hark_store *st, const char *fts_query, const char *kind_filter,
			   size_t limit, struct hark_search_hit **out, size_t *n);
int hark_store_search_bm25_in(struct hark_store *st, const char *fts_query,
			      const char *kind_filter, const char *meeting_filter, size_t limit,
			      struct hark_search_hit **out, size_t *n);
/*
 * The documents whose text sha256 is one of text_shas (n entries), in the
 * order of text_shas (documents sharing a text follow each other), filtered
 * by kind/meeting (NULL = all), at most limit. Snippets highlight the terms
 * of highlight_query (same syntax as above; NULL = none). Ranks and scores
 * are left 0 for the caller.
 */
int hark_store_search_docs_by_sha(struct hark_store *st, const char *const *text_shas, size_t n,
				  const char *kind_filter, const char *meeting_filter,
				  const char *highlight_query, size_t limit,
				  struct hark_search_hit **out, size_t *n_out);
/* 1 when this store answers search with FTS5, 0 when it uses the LIKE fallback. */
int hark_store_search_has_fts(struct hark_store *st);

/*
 * Embeddings keyed by (text_sha, model): float vectors of dim entries
 * (stored as native-endian float32). put: insert or replace. get_many:
 * vecs[i] (heap, caller frees) and dims[i] for shas[i], NULL/0 when absent.
 * scan: calls cb for every vector of model (cb returns nonzero to stop; the
 * pointers are valid during the call only; cb must not call the store).
 */
int hark_store_embedding_put(struct hark_store *st, const char *text_sha, const char *model,
			     const float *v, size_t dim);
/* put_many: n vectors (vecs n x dim, row-major) under shas[i], one transaction. */
int hark_store_embedding_put_many(struct hark_store *st, const char *model,
				  const char *const *shas, size_t n, const float *vecs, size_t dim);
int hark_store_embedding_get_many(struct hark_store *st, const char *model,
				  const char *const *shas, size_t n, float **vecs, size_t *dims);
int hark_store_embedding_scan(struct hark_store *st, const char *model,
			      int (*cb)(const char *text_sha, const float *v, size_t dim, void *ud),
			      void *ud);

#endif /* HARK_STORE_STORE_H */
