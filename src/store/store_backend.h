/*
 * Internal contract between the backend-independent part of the job store
 * (store.c: names, ids, keys, summary JSON, the hark_store_* dispatchers) and
 * a storage backend (store_sqlite.c today; a PostgreSQL backend later). A
 * backend is one table of function pointers, one per public operation of
 * store.h, working on its own opaque state (void *be). Backends report
 * failures as enum hark_err codes and leave a one-line reason in the
 * calling thread's store error buffer through hark_store_set_errmsg(). Not
 * for use outside src/store (tests excepted).
 */
#ifndef HARK_STORE_STORE_BACKEND_H
#define HARK_STORE_STORE_BACKEND_H

#include "store/store.h"

struct hark_store_ops {
	const char *name; /* "sqlite" */

	int (*open)(const char *location, const struct hark_store_params *p, void **be,
		    char *err, size_t errlen);
	void (*close)(void *be);

	/* jobs */
	int (*job_insert)(void *be, const struct hark_job *j, struct hark_event *ev);
	int (*job_find_done)(void *be, const char *dedup_key, struct hark_job *out);
	int (*job_insert_cached)(void *be, const struct hark_job *j, const char *source_id,
				 struct hark_event *ev);
	int (*job_get)(void *be, const char *id, struct hark_job *out);
	int (*job_list)(void *be, const struct hark_job_filter *f, struct hark_job **out,
			size_t *n, char next_cursor[HARK_ID_LEN]);
	int (*job_claim)(void *be, const int *prio_order, const char *owner, double now,
			 double lease_s, struct hark_job *out, struct hark_event *ev);
	int (*job_heartbeat)(void *be, const char *id, const char *owner, double lease_until,
			     int *cancel_requested);
	int (*job_progress)(void *be, const char *id, const char *owner, const char *stage,
			    double percent, double eta_s, const char *timings,
			    struct hark_event *ev);
	int (*job_finish)(void *be, const char *id, const char *owner,
			  const struct hark_result *results, size_t n, double audio_s,
			  const char *timings, struct hark_event *ev);
	int (*job_fail)(void *be, const char *id, const char *owner, const char *code,
			const char *message, double retry_at, struct hark_event *ev);
	int (*job_cancel)(void *be, const char *id, int *status_out, struct hark_event *ev);
	int (*job_canceled)(void *be, const char *id, const char *owner, struct hark_event *ev);
	int (*job_release)(void *be, const char *id, const char *owner, struct hark_event *ev);
	int (*job_recover)(void *be, double now, const char *owner_prefix, size_t *n_out);
	int (*job_purge)(void *be, const char *id, char orphan_sha[HARK_SHA_HEX_LEN]);
	int (*sweep)(void *be, double now, size_t limit, size_t *n_jobs,
		     char (**orphans)[HARK_SHA_HEX_LEN], size_t *n_orphans);
	int (*job_counts)(void *be, int64_t by_status[HARK_JOB_STATUS_COUNT],
			  int64_t queued_by_prio[HARK_PRIO_COUNT]);
	int (*key_running)(void *be, const char *key_id, int64_t *n);
	int (*key_unfinished)(void *be, const char *key_id, int64_t *n);

	/* results and events */
	int (*result_get)(void *be, const char *job_id, const char *format, char **body,
			  size_t *len);
	int (*event_list)(void *be, const char *job_id, int64_t after_seq, size_t limit,
			  struct hark_event **out, size_t *n);

	/* keys and usage */
	int (*key_insert)(void *be, const struct hark_key *k);
	int (*key_list)(void *be, struct hark_key **out, size_t *n);
	int (*key_revoke)(void *be, const char *id_or_prefix, double now);
	int (*key_get_by_hash)(void *be, const char *hash, struct hark_key *out);
	int (*usage_get)(void *be, const char *key_id, const char *day, double *audio_s);
	int (*keys_version)(void *be, int64_t *version);

	/* webhooks */
	int (*webhook_next)(void *be, double now, int max_attempts, struct hark_webhook *out);
	int (*webhook_update)(void *be, int64_t id, int ok, double next_at);

	/* settings and health */
	int (*meta_get)(void *be, const char *name, char **value);
	int (*meta_set)(void *be, const char *name, const char *value);
	int (*meta_init)(void *be, const char *name, const char *value, char **out);
	int (*ping_write)(void *be);

	/* LLM layer: reply cache, call accounting, shared rate limits (the
	 * dispatchers in store.c have checked and normalised the arguments) */
	int (*llm_cache_get)(void *be, const char *hash, double now, char **value, size_t *len);
	int (*llm_cache_put)(void *be, const char *hash, const char *model, const char *value,
			     size_t len, double expires_at);
	int (*llm_cache_purge)(void *be, double now, int64_t *n_out);
	int (*llm_call_add)(void *be, const struct hark_llm_call *c);
	int (*llm_usage)(void *be, const char *job_id, const char *key_id, const char *model,
			 double since, struct hark_llm_usage *out);
	int (*llm_rate_acquire)(void *be, const char *key, double rpm, double tpm,
				double window_s, double tokens, double now, int *admitted,
				double *retry_at, int64_t *ticket);
	int (*llm_rate_adjust)(void *be, int64_t ticket, double tokens);
	int (*llm_rate_block)(void *be, const char *key, double until);

	/* meeting analysis (schema version 3; arguments checked in store.c) */
	int (*meeting_put)(void *be, const struct hark_meeting_rec *m,
			   const struct hark_meeting_chunk *chunks, size_t n,
			   const struct hark_search_doc *docs, size_t n_docs);
	int (*meeting_get)(void *be, const char *name, struct hark_meeting_rec *out);
	int (*meeting_list)(void *be, int with_json, struct hark_meeting_rec **out, size_t *n);
	int (*meeting_chunks)(void *be, const char *name, struct hark_meeting_chunk **out,
			      size_t *n);
	int (*meeting_delete)(void *be, const char *name);
	int (*chunk_result_get_many)(void *be, const char *pipeline, const char *const *shas,
				     size_t n, char **out_json);
	int (*chunk_result_put)(void *be, const char *chunk_sha, const char *pipeline,
				const char *model, const char *json);
	int (*search_bm25)(void *be, const char *fts_query, const char *kind,
			   const char *meeting, size_t limit, struct hark_search_hit **out,
			   size_t *n);
	int (*search_docs_by_sha)(void *be, const char *const *shas, size_t n, const char *kind,
				  const char *meeting, const char *highlight, size_t limit,
				  struct hark_search_hit **out, size_t *n_out);
	int (*search_has_fts)(void *be);
	int (*embedding_put_many)(void *be, const char *model, const char *const *shas, size_t n,
				  const float *vecs, size_t dim);
	int (*embedding_get_many)(void *be, const char *model, const char *const *shas,
				  size_t n, float **vecs, size_t *dims);
	int (*embedding_scan)(void *be, const char *model,
			      int (*cb)(const char *text_sha, const float *v, size_t dim,
					void *ud),
			      void *ud);
};

extern const struct hark_store_ops hark_store_sqlite_ops;

/* The handle behind the opaque struct hark_store of store.h. */
struct hark_store {
	const struct hark_store_ops *ops;
	void *be; /* backend state */
};

/* printf-formats the calling thread's store error message (see
 * hark_store_errmsg). Returns err unchanged, for `return set(...)` chains. */
int hark_store_set_errmsg(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Current wall-clock time, Unix seconds. */
double hark_store_now(void);

/*
 * Test hook (SQLite backend only): caps the database at max_pages pages on
 * every connection of st (PRAGMA max_page_count), so that tests can provoke
 * SQLITE_FULL ("disk full") without filling a disk. 0 = leave unchanged.
 * HARK_ERR_UNSUPPORTED for other backends.
 */
int hark_store_sqlite_limit_pages(struct hark_store *st, long max_pages);

/*
 * Test hook (SQLite backend only): when on != 0, stores opened afterwards
 * in this process behave as if the SQLite library lacked FTS5 (no FTS table
 * is created and search uses the LIKE fallback). Process-wide; set it
 * before hark_store_open.
 */
void hark_store_sqlite_force_no_fts(int on);

#endif /* HARK_STORE_STORE_BACKEND_H */
