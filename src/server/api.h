/*
 * Internal contract between the server's libwebsockets glue (server.c: the
 * service thread, connections, response and stream writing, the completion
 * list, signals and drain) and the API handlers (api.c: routing, request
 * parsing, uploads, and the blocking tasks run on the work queue). Nothing
 * here is used outside src/server.
 *
 * Threading rules. Every field of struct hark_req and struct hark_stream is
 * owned by the service thread, except while a main task is in flight: then
 * the task (one at a time per request) may read the request fields and write
 * the response fields (status, body, ctype, location, retry_after) and the
 * task_* fields; the service thread reads them again only after the task's
 * completion has been drained. Uploads (struct hark_upload) are shared with
 * their writer task under upload->mu. A request whose connection closed
 * stays allocated (wsi = NULL) until its last task has come back.
 */
#ifndef HARK_SERVER_API_H
#define HARK_SERVER_API_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/jobs.h"
#include "jobs/options.h"
#include "server/hub.h"
#include "server/server.h"
#include "store/blob.h"
#include "store/store.h"

struct hark_keyring;
struct hark_ratelimit;
struct hark_metrics;
struct hark_workq;
struct hark_multipart;
struct hark_req;
struct hark_upload;

enum hark_route {
	HARK_ROUTE_NONE = 0,
	HARK_ROUTE_HEALTHZ,
	HARK_ROUTE_READYZ,
	HARK_ROUTE_METRICS,
	HARK_ROUTE_JOBS,          /* /v1/jobs */
	HARK_ROUTE_JOB,           /* /v1/jobs/{id} */
	HARK_ROUTE_JOB_PROGRESS,
	HARK_ROUTE_JOB_RESULT,
	HARK_ROUTE_JOB_EVENTS,
	HARK_ROUTE_JOB_WS,
	HARK_ROUTE_OPENAI,        /* /v1/audio/transcriptions */
	HARK_ROUTE_SEARCH,        /* /v1/search */
	HARK_ROUTE_COUNT
};

/* Completion-list node: a finished task or an upload-writer report. */
enum { HARK_DONE_TASK = 1, HARK_DONE_UPLOAD = 2 };
struct hark_done {
	struct hark_done *next;
	int queued;            /* guarded by srv->done_mu */
	int kind;
	void *obj;             /* struct hark_req * or struct hark_upload * */
};

struct hark_srv {
	const struct hark_server_params *p;
	struct lws_context *ctx;
	struct hark_store *st;
	struct hark_jobs *jobs;
	struct hark_workq *wq;
	struct hark_hub *hub;
	struct hark_keyring *keys;
	struct hark_ratelimit *rl;
	struct hark_metrics *metrics;
	struct hark_llm *llm;   /* LLM client shared by jobs; NULL = offline only */
	int embed;              /* an "embed" route is configured: hybrid search, chunk embeddings */
	int port;
	char instance_id[48];

	pthread_mutex_t done_mu;
	struct hark_done *done_head, *done_tail;

	atomic_int draining;    /* 1 after SIGTERM/SIGINT: no new jobs */
	atomic_int stop;        /* 1: leave the service loop */
	int secret_in_store;    /* the webhook secret came from the store */

	/* service thread only */
	struct hark_req *live;  /* every request with a connection */
	int n_sse, n_ws;
	uint64_t rng;
	double last_tick;
	unsigned char *wbuf;    /* LWS_PRE + HARK_WBUF bytes, reused for writes */
	struct hark_hub_sub **purges; /* jobs to purge once they stop */
	size_t n_purges;
};

#define HARK_WBUF (64 * 1024)
#define HARK_HEAD_BYTES 4096

enum hark_stream_kind { HARK_STREAM_SSE = 1, HARK_STREAM_WS = 2, HARK_STREAM_WAIT = 3 };

/* A live event stream (SSE/WS) or a synchronous wait for a job's end. */
struct hark_stream {
	struct hark_hub_sub sub;     /* first member: container of the sub */
	struct hark_req *req;
	int kind;
	int64_t last_seq;            /* highest seq sent (or resumed from) */
	struct hark_event *hist;     /* stored events to replay (owned) */
	size_t n_hist, hist_i;
	struct hark_hub_event **q;   /* live events ring */
	size_t q_head, q_len, q_cap;
	int ready;                   /* history loaded: may write */
	int job_final;               /* the job had ended when history was read */
	int final_sent;
	int overflow;                /* client too slow: drop it */
	int close_code;              /* ws: close with this code (0 = none pending) */
	int hdr_sent;
	int ping_due;
	double last_write;
};

struct hark_up_chunk {
	struct hark_up_chunk *next;
	size_t len, cap;
	unsigned char data[];
};

/* The streaming upload of one request: file bytes on their way to a blob. */
struct hark_upload {
	pthread_mutex_t mu;
	atomic_int refs;
	struct hark_srv *srv;
	struct hark_req *req;        /* service thread; NULL once the request is freed */
	struct hark_done d;
	/* guarded by mu */
	struct hark_up_chunk *head, *tail;
	size_t queued;               /* bytes waiting */
	int running;                 /* a writer task is scheduled or running */
	int abort;                   /* discard everything */
	int werr;                    /* first write error (enum hark_err) */
	char errmsg[256];
	int64_t written;
	/* writer task only while running; then the submit task */
	struct hark_blob_writer *w;
	int paused;                  /* service thread: rx flow control is off */
};

/* Multipart part being read. */
enum { HARK_PART_NONE = 0, HARK_PART_FILE, HARK_PART_FIELD, HARK_PART_SKIP };

struct hark_req {
	struct hark_srv *srv;
	struct lws *wsi;             /* NULL once the connection is gone */
	int refs;                    /* 1 for the connection + 1 per task in flight */
	struct hark_req *lprev, *lnext;
	struct hark_done d_task;
	void (*task_run)(struct hark_req *r);   /* on the work queue */
	void (*task_done)(struct hark_req *r);  /* back on the service thread */
	int task_busy;               /* a main task is in flight */

	/* request line and headers */
	int method;                  /* LWSHUMETH_* */
	const char *method_name;
	int route;
	const char *route_label;
	char job_id[HARK_ID_LEN];
	char req_id[72];
	char ip[64];
	char origin[256];
	int cors_ok;
	char key_id[HARK_ID_LEN];    /* "" = anonymous */
	double key_quota_s;          /* daily audio seconds; 0 = unlimited */
	double t0;                   /* monotonic start */
	double t_wall;               /* wall-clock start */
	int is_ws;
	int head_only;               /* HEAD: send the headers only */
	int rx_off;                  /* input flow-controlled off while waiting */

	/* query */
	char q_format[16];
	int q_format_set;            /* format= was given */
	char q_text[1024];           /* /v1/search: q (decoded) */
	char q_kind[32];             /* /v1/search: kind ("" = any) */
	char q_meeting[128];         /* /v1/search: meeting ("" = any) */
	char q_status[16];
	char q_cursor[HARK_ID_LEN];
	long q_limit;
	int q_purge;
	int64_t last_event_id;

	/* body */
	int body_kind;               /* 0 none, 1 json, 2 multipart */
	int64_t content_length;      /* -1 = not given */
	int chunked;                 /* Transfer-Encoding: chunked (decoded here) */
	int dc_state;                /* dechunker state */
	uint64_t dc_left;            /* bytes left in the current chunk */
	int64_t body_bytes;          /* body (payload) bytes seen */
	int body_started;            /* the handler reads the body (408 deadline applies) */
	int body_done;
	int body_error;              /* an early answer was given; ignore the rest */
	char *json;                  /* application/json body; for a text upload
				      * (analyze) the file's bytes */
	size_t json_len;
	char sub_type[16];           /* multipart "type" field ("" = transcribe) */
	int text_file;               /* the file part is a text transcript (kept in json) */
	struct hark_multipart *mp;
	int part;                    /* HARK_PART_* */
	char part_name[48];
	char *field;                 /* current small field value */
	size_t field_len;
	char *options_text;          /* the "options" part */
	char *filename;
	int file_seen, file_done;
	unsigned char *head;         /* first HARK_HEAD_BYTES of the file (sniffing) */
	size_t head_len;
	int sniffed;
	const char *media_type;
	struct hark_upload *up;
	double last_rx;              /* monotonic time of the last body bytes */

	/* OpenAI form fields */
	char oa_model[128];
	char oa_language[16];
	char *oa_prompt;
	char oa_format[16];
	char oa_temperature[32];
	int oa_word, oa_segment;

	/* task inputs/outputs */
	struct hark_job_options opts;
	int opts_set;
	int task_rc;                 /* task-specific outcome */
	int job_status;              /* status seen by a task */
	int cached;
	int await_writer;            /* body done; submit once the writer drained */
	int job_inserted;            /* the submit task ran (the job may exist) */
	int wait_ended;              /* the awaited job's final event arrived */
	int cancel_job;              /* cancel the job once the task is back */

	/* response (written by tasks while in flight) */
	int status;
	char *body;
	size_t body_len, body_off;
	const char *ctype;
	char location[96];
	int retry_after;             /* > 0: Retry-After header */
	const char *allow;           /* Allow header for 405 */
	int resp_ready, hdr_sent, resp_done;
	int close_after;             /* close the connection after the answer */
	int logged;
	double linger_until;         /* answered early; discard body until then */

	struct hark_stream *stream;
};

/* ---- server.c: services for the handlers (service thread unless noted) ---- */

/* Monotonic seconds; wall-clock Unix seconds. Any thread. */
double hark_server_now(void);
double hark_server_wall(void);

/* One JSON log line on stderr: ts, level, msg, then the extra pairs
 * ("key", "string value") until NULL. Any thread. */
void hark_server_log(const char *level, const char *msg, ...);

/* Wakes the service thread (lws_cancel_service). Any thread. */
void hark_server_wake(struct hark_srv *srv);

/* Sets the response (takes ownership of body, a malloc'd buffer or NULL)
 * and schedules writing. ctype NULL = application/json. From a task: only
 * the fields are set; the completion makes it go out. */
void hark_server_set_response(struct hark_req *r, int status, const char *ctype, char *body,
			      size_t len);
/* JSON error body {"error":{"code","message","type"}}. */
void hark_server_set_error(struct hark_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Service thread: the response fields are final; start writing. */
void hark_server_respond(struct hark_req *r);

/* Service thread: runs run(r) on the work queue, then done(r) back here.
 * done NULL = respond with what run set. Returns 0, or HARK_ERR_LIMIT when
 * the queue is full (the caller answers 503 overloaded). */
int hark_server_submit(struct hark_req *r, void (*run)(struct hark_req *),
		       void (*done)(struct hark_req *));

/* Any thread: publish a store event to the hub (and wake the service thread). */
void hark_server_publish(struct hark_srv *srv, const struct hark_event *ev);

/* Bytes received on r's connection since the previous request on it ended
 * (headers, and any body bytes already in); -1 if unknown. */
int64_t hark_server_request_bytes(struct hark_req *r);

/* Streams (service thread). */
struct hark_stream *hark_server_stream_new(struct hark_req *r, int kind, int64_t after_seq);
/* The history is loaded (or failed): start writing. */
void hark_server_stream_ready(struct hark_req *r);
/* Service thread: r waits (body complete) for a job that may run for a long
 * time before anything is written: disarms the connection's pending timeout
 * (libwebsockets otherwise closes it client_timeout_s + 5 s after the last
 * body bytes of a chunked upload). A dead client still ends the wait. */
void hark_server_hold(struct hark_req *r);

/* Upload queue (service thread): appends file bytes for the writer task,
 * pausing the connection above the high-water mark. */
int hark_server_upload_append(struct hark_req *r, const void *p, size_t n);
/* Service thread: no more bytes will come. */
void hark_server_upload_finish(struct hark_req *r);
/* Service thread: discard queued and future bytes. */
void hark_server_upload_abort(struct hark_req *r);
/* Any thread: 1 while the upload's writer has bytes queued or runs. */
int hark_server_upload_busy(struct hark_upload *up);

/* Remember to purge job_id once its final event passes (service thread). */
void hark_server_purge_later(struct hark_srv *srv, const char *job_id);

/* ---- api.c: handlers called by the glue (service thread) ---------------- */

/* LWS_CALLBACK_HTTP: route and start the request. Returns 0, or -1 to close. */
int hark_api_http(struct hark_req *r, const char *path);
/* A piece of the request body (already de-chunked). 0 or -1 to close. */
int hark_api_body(struct hark_req *r, const void *p, size_t n);
/* The whole body has arrived. 0 or -1 to close. */
int hark_api_body_done(struct hark_req *r);
/* WebSocket upgrade request: 0 to accept (r->stream set), else the handshake
 * is refused (an HTTP error was written). */
int hark_api_ws_filter(struct hark_req *r, const char *path);
/* The WebSocket is up: subscribe and load history. */
void hark_api_ws_established(struct hark_req *r);
/* The upload writer drained its queue (or failed). */
void hark_api_upload_report(struct hark_req *r);
/* The job a synchronous request waits for ended (r->job_status says how). */
void hark_api_wait_ended(struct hark_req *r);
/* The connection closed before the answer (e.g. cancel the OpenAI job). */
void hark_api_closed(struct hark_req *r);
/* A task came back for a request whose connection had closed. */
void hark_api_orphan_done(struct hark_req *r);
/* /metrics body (text). */
char *hark_api_metrics_text(struct hark_srv *srv, size_t *len);
/* Parses the route of path into r->route, r->route_label, r->job_id. */
void hark_api_route(struct hark_req *r, const char *path);

/* Metric names used by both files. */
void hark_api_declare_metrics(struct hark_metrics *m);

#endif /* HARK_SERVER_API_H */
