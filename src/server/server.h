/*
 * `hark serve`: the HTTP job service. One libwebsockets service thread does
 * all network I/O (HTTP, Server-Sent Events, WebSocket) and never blocks;
 * everything that may block (SQL, blob writes and fsync, result reads) runs
 * on a work queue whose results come back to the service thread, and the
 * worker pool of src/jobs transcribes. This header is the whole public
 * surface: the parameters (filled from flags and the config file) and one
 * blocking entry point. The HTTP contract is docs/SERVER.md.
 */
#ifndef HARK_SERVER_SERVER_H
#define HARK_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#define HARK_SERVER_MAX_CORS 16

struct hark_llm_config;

struct hark_server_params {
	const struct hark_llm_config *llm_config; /* LLM providers (borrowed); NULL or none
						  * configured = offline only */
	const char *host;             /* listen address; "127.0.0.1" (0.0.0.0 / :: = all) */
	int port;                     /* 8080; 0 = any free port */
	const char *data_dir;         /* "./hark-data": hark.db, blobs/, hark.lock */
	int workers;                  /* jobs processed at once; 0 = cores */
	int threads;                  /* compute threads per job; default 1 */
	const char *engine;           /* default engine for jobs that say auto; "auto" */
	const char *model;            /* default model; "" = engine default */
	int auth;                     /* 1: bearer API keys required on /v1/ */
	const char *cors[HARK_SERVER_MAX_CORS]; /* allowed origins ("*" = any) */
	size_t n_cors;
	int64_t max_body_bytes;       /* upload cap (413); default 100 MiB */
	size_t max_json_bytes;        /* application/json body cap; default 1 MiB */
	size_t max_header_bytes;      /* header block cap (431); default 8192 */
	size_t max_url_bytes;         /* URL cap (414); default 2048 */
	double client_timeout_s;      /* slow-client deadline (408); default 30 */
	double ttl_s;                 /* retention of finished jobs; 0 = keep; default 7 days */
	double drain_timeout_s;       /* SIGTERM grace for running jobs; default 30 */
	int64_t min_free_disk_bytes;  /* readiness threshold; default 512 MiB */
	int max_unfinished_per_key;   /* 429 too_many_jobs above; 0 = unlimited; default 1000 */
	double anon_rps, anon_burst;  /* per-IP token bucket without auth; 20, 40 */
	double key_rps, key_burst;    /* for keys whose own rate is 0; 10, 20 */
	double key_daily_quota_s;     /* for keys whose own quota is 0; 0 = unlimited */
	int key_max_concurrent;       /* informational (the store enforces each key's own) */
	double lease_s;               /* job lease; default 30 */
	int max_attempts;             /* default 3 */
	const char *webhook_secret_env; /* env var holding the webhook secret; "HARK_WEBHOOK_SECRET" */
	const char *port_file;        /* write the bound port there once listening; NULL = no */
	int workq_threads;            /* blocking-work threads; default 8 */
	size_t workq_max_pending;     /* queued blocking tasks before 503 overloaded; default 8192 */
};

/* Defaults as documented above (and in docs/SERVER.md). */
struct hark_server_params hark_server_default_params(void);

/*
 * Runs the server until SIGTERM or SIGINT has drained it: takes the data
 * directory's lock, opens the store, starts the worker pool, listens, logs
 * one JSON line with "msg":"listening" and the bound port, serves, and on a
 * signal stops accepting jobs, drains running jobs (drain_timeout_s), closes
 * everything and returns 0. While it runs, SIGTERM and SIGINT handlers of
 * the process are replaced (restored on return). Errors
 * before serving (lock held by another server, port in use, store or
 * worker failure) return an enum hark_err with a message in err.
 */
int hark_server_run(const struct hark_server_params *p, char *err, size_t errlen);

#endif /* HARK_SERVER_SERVER_H */
