/*
 * Helpers for the black-box tests of `hark serve` (tests/integration/
 * test_serve_*.c): start the real `$HARK_BIN serve` as a child process on
 * 127.0.0.1 with port 0, a fresh data directory and a port file (its stderr
 * goes to a log file next to the data), wait until /healthz answers, stop it
 * with a signal (or kill -9) and start it again on the same data directory;
 * make HTTP requests through libcurl (status, headers, body, parsed JSON),
 * multipart uploads, raw-socket exchanges for requests libcurl will not send
 * (stalled, oversized, malformed), read Server-Sent Event streams, poll jobs,
 * pick values out of JSON and Prometheus text, build long test audio by
 * concatenating the shared clips with sox/ffmpeg, and create or revoke API
 * keys through the `hark keys` CLI. Everything lives in one temporary
 * directory per server, removed by srv_destroy().
 */
#ifndef HARK_TESTS_SRV_HARNESS_H
#define HARK_TESTS_SRV_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define SRV_MAX_ARGS 40
#define SRV_MAX_ENV 8

struct srv_server {
	char root[512];       /* temporary directory of this server */
	char data[640];       /* root/data: the --data directory */
	char log[640];        /* root/server.log: stdout+stderr of every start (appended) */
	char port_file[640];  /* root/port */
	char config[640];     /* root/config.json (always written by srv_start) */
	pid_t pid;            /* child pid while running, else 0 */
	int port;             /* bound port once started */
	char base[64];        /* "http://127.0.0.1:PORT" */
	char token[160];      /* sent as "Authorization: Bearer <token>" when non-empty */
	char *args[SRV_MAX_ARGS];  /* extra command-line arguments (heap copies) */
	int n_args;
	char *env[SRV_MAX_ENV];    /* extra "NAME=value" entries for the child */
	int n_env;
	int last_exit;        /* wait status decoded: exit code, or 128 + signal */
};

/* ---- environment ---------------------------------------------------------- */

/* $HARK_SHARED or "../shared"; static storage. */
const char *srv_shared(void);
/* $HARK_BIN or NULL when unset or not executable. */
const char *srv_bin(void);
/* 1 when `$HARK_BIN serve --help` exits 0 (the subcommand is wired); cached. */
int srv_serve_available(void);
/* 1 when the shared JFK clip exists. */
int srv_have_audio(void);
/* Path of a shared clip (relative to $HARK_SHARED/audio) into out. */
void srv_clip(const char *rel, char *out, size_t n);
/* Factor for every timeout: 1, or 4 in sanitizer builds, or
 * $HARK_TEST_TIME_SCALE when set. */
double srv_time_scale(void);
/* Monotonic seconds. */
double srv_now(void);
void srv_sleep_ms(int ms);

/* ---- server process --------------------------------------------------------- */

/* Creates the temporary directory and fills the paths; no process yet.
 * Returns 0 on success. */
int srv_init(struct srv_server *s);

/* Adds "NAME=value" to the child's environment (before srv_start). */
void srv_setenv(struct srv_server *s, const char *name, const char *value);

/*
 * Writes root/config.json: permissive test defaults (huge anonymous and
 * per-key rates, 1 MB of required free disk) merged with the JSON object text
 * config_extra (may be NULL; its keys win), then starts
 *   $HARK_BIN serve --listen 127.0.0.1:0 --data DATA --port-file FILE
 *                   --config CONFIG ARGS...
 * (args: NULL-terminated, may be NULL; kept for srv_restart) and waits up to
 * 30 s (scaled) for the port file and a 200 from /healthz. On failure prints
 * the log tail to stderr and returns -1 (the child is killed).
 */
int srv_start(struct srv_server *s, const char *config_extra, const char *const *args);

/* Starts again with the same data directory, config and arguments. */
int srv_restart(struct srv_server *s);

/*
 * Sends sig (0: none, just wait) and waits up to timeout_s for the process
 * to exit. Returns 0 if
 * it exited in time (s->last_exit = exit code, or 128 + signal), -1 if it
 * had to be killed with SIGKILL afterwards.
 */
int srv_stop(struct srv_server *s, int sig, double timeout_s);

/* kill -9 and reap. */
void srv_kill9(struct srv_server *s);

/* 1 while the child runs. */
int srv_alive(struct srv_server *s);

/* Stops the server if running (SIGTERM, then SIGKILL), removes the temporary
 * directory and frees. Safe on a zeroed or partially initialised struct.
 * Returns -1 (after printing the report) when the server's log holds a
 * sanitizer report (AddressSanitizer, LeakSanitizer, UBSan runtime error),
 * else 0; group teardowns return it so such reports fail the test. */
int srv_destroy(struct srv_server *s);

/* 1 when the log holds no sanitizer report; else prints it and returns 0. */
int srv_log_clean(const struct srv_server *s);

/* Prints the last max_bytes of the server log to stderr. */
void srv_dump_log(const struct srv_server *s, size_t max_bytes);

/* Reads the whole log (heap, caller frees), or NULL. */
char *srv_read_log(const struct srv_server *s);

/* ---- HTTP ----------------------------------------------------------------- */

struct srv_resp {
	long status;       /* HTTP status; 0 when no response arrived */
	int curl_rc;       /* CURLcode (0 ok), or -1 for raw-socket failures */
	char *headers;     /* raw header block of the final response (NUL-terminated) */
	char *body;        /* NUL-terminated */
	size_t len;        /* body bytes */
	json_t *json;      /* body parsed as JSON, or NULL */
	double seconds;    /* wall time of the exchange */
};

/*
 * One request to s->base + path. ctype/body may be NULL. hdrs: extra header
 * lines ("Name: value"), NULL-terminated, may be NULL; when one of them is
 * an Authorization header s->token is not added ("Authorization:" with no
 * value sends none). Timeout 30 s (scaled). Returns 0 when a response
 * arrived (any status).
 */
int srv_request(struct srv_server *s, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, const char *const *hdrs, struct srv_resp *r);
int srv_get(struct srv_server *s, const char *path, struct srv_resp *r);
int srv_delete(struct srv_server *s, const char *path, struct srv_resp *r);
int srv_post_json(struct srv_server *s, const char *path, const char *json_text, struct srv_resp *r);

/*
 * Multipart POST: a "file" part read from file (sent with the file name
 * filename, or the file's base name when NULL, and part type part_ctype when
 * non-NULL) and, when options_json != NULL, an "options" part. extra_fields:
 * NULL-terminated name, value, name, value... pairs of plain form fields
 * (may be NULL). file may be NULL (no file part).
 */
int srv_upload(struct srv_server *s, const char *path, const char *file, const char *filename,
	       const char *part_ctype, const char *options_json, const char *const *extra_fields,
	       const char *const *hdrs, struct srv_resp *r);

/* Value of header name (case-insensitive; the last occurrence), heap copy
 * without surrounding spaces, or NULL. */
char *srv_header(const struct srv_resp *r, const char *name);

/* Frees the members and zeroes r. */
void srv_resp_free(struct srv_resp *r);

/*
 * 1 when r's body is {"error":{"code":<code>,"message":<non-empty string>}}
 * (code NULL = any non-empty code), else 0 (and prints why).
 */
int srv_is_error(const struct srv_resp *r, const char *code);

/* ---- raw sockets ------------------------------------------------------------ */

/* Blocking TCP connection to 127.0.0.1:port (Nagle off), or -1. */
int srv_connect(int port);

/* Sends all n bytes (MSG_NOSIGNAL). 0 ok, -1 when the peer closed or erred. */
int srv_send_all(int fd, const void *p, size_t n);

/*
 * Writes req (n bytes) to a new connection while reading, stops writing as
 * soon as a response starts (or the peer closes), then reads one response
 * until it is complete, the peer closes or timeout_s passes. When
 * stall_after_send, nothing more is sent and the exchange waits for the
 * server to answer or close. Fills status/headers/body/json (chunked bodies
 * decoded); r->curl_rc = 0 if a status line arrived, -1 otherwise;
 * *closed_out (may be NULL) = 1 when the server closed the connection.
 * Returns 0 when a status line arrived.
 */
int srv_raw_exchange(int port, const void *req, size_t n, double timeout_s,
		     struct srv_resp *r, int *closed_out);

/* Parses a raw HTTP response buffer (n bytes) into r. 0 if a status line was
 * found. */
int srv_parse_raw_response(const char *buf, size_t n, struct srv_resp *r);

/* ---- jobs ------------------------------------------------------------------- */

/* POST {"type":"noop"} (priority added when non-NULL); copies the id on 202.
 * Returns the HTTP status (0 = no response). */
long srv_submit_noop(struct srv_server *s, const char *priority, char *id, size_t idlen);

/* Upload file with options; copies the id on 200/202; returns the status. */
long srv_submit_file(struct srv_server *s, const char *file, const char *options_json,
		     char *id, size_t idlen);

/* GET /v1/jobs/{id} as JSON (caller decrefs), or NULL when not 200. */
json_t *srv_job_get(struct srv_server *s, const char *id);

/*
 * Polls GET /v1/jobs/{id} every 50 ms until its status is one of want
 * ("done|failed|canceled" style list) or timeout_s (scaled) passes. Returns
 * the last summary with a wanted status (caller decrefs) or NULL.
 */
json_t *srv_wait_status(struct srv_server *s, const char *id, const char *want, double timeout_s);

/* Polls until the job runs with progress.percent > min_percent. */
json_t *srv_wait_running(struct srv_server *s, const char *id, double min_percent, double timeout_s);

/* ---- Server-Sent Events ----------------------------------------------------- */

struct srv_event {
	long long id;       /* the "id:" field; -1 when absent */
	char type[32];      /* the "event:" field ("message" when absent) */
	char *data;         /* the data lines joined with '\n' */
	json_t *json;       /* data parsed, or NULL */
	double at;          /* srv_now() when the event was complete */
};

struct srv_events {
	struct srv_event *ev;
	size_t n, cap;
	long status;        /* HTTP status of the stream */
	char *ctype;        /* Content-Type of the stream (heap) */
	int closed;         /* 1: the server ended the stream; 0: timed out */
	int pings;          /* comment lines seen */
};

/*
 * GETs path as an event stream (Accept: text/event-stream; last_event_id
 * sent as Last-Event-ID when non-NULL) and collects events until the server
 * closes the stream or timeout_s (scaled) passes. Returns 0 when a response
 * arrived.
 */
int srv_sse_collect(struct srv_server *s, const char *path, const char *last_event_id,
		    double timeout_s, struct srv_events *out);
void srv_events_free(struct srv_events *e);
/* Number of events of a type. */
size_t srv_events_count(const struct srv_events *e, const char *type);

/* ---- JSON and text ---------------------------------------------------------- */

/* Value at a dotted path ("error.code", "links.self"), borrowed, or NULL. */
json_t *srv_jget(json_t *o, const char *path);
/* String at path, or NULL. */
const char *srv_jstr(json_t *o, const char *path);
/* Number at path (integer or real), or def. */
double srv_jnum(json_t *o, const char *path, double def);

/*
 * Prometheus text: sum of the samples of metric `name` (exact family name,
 * so "x_total" does not match "x_total_foo") whose label block contains
 * label_substr (NULL = any). *found (may be NULL) = number of series
 * matched.
 */
double srv_metric(const char *text, const char *name, const char *label_substr, int *found);

/* Reads a whole file (heap, NUL-terminated; *n bytes) or NULL. */
char *srv_slurp(const char *path, size_t *n);
/* Writes n bytes to path. 0 = ok. */
int srv_write_file(const char *path, const void *p, size_t n);
/* Regular files below dir, recursively (0 if dir is missing). */
int srv_count_files(const char *dir);
/* 1 when some file below dir (recursively) has base name name. */
int srv_find_file(const char *dir, const char *name);
/* Lowercase words of text (letters and apostrophes) joined by single spaces
 * into a heap string. */
char *srv_words(const char *text);
/* Removes dir recursively. */
void srv_rmtree(const char *dir);

/* ---- audio ---------------------------------------------------------------- */

/*
 * Builds dir/name: the shared JFK and conversation clips (16 kHz mono)
 * concatenated round-robin and cut to exactly seconds, transcoded by ffmpeg
 * when name does not end in .wav (the extension picks the format, e.g. .ogg
 * gives Opus, .mp3 MP3). Kept if it already exists. Full path into out.
 * Returns 0 on success.
 */
int srv_make_audio(const char *dir, const char *name, double seconds, char *out, size_t n);

/* Cuts [start_s, start_s + dur_s) of src into dst (16 kHz mono WAV) with sox. */
int srv_cut_audio(const char *src, double start_s, double dur_s, const char *dst);

/* ---- API keys through the CLI ----------------------------------------------- */

/*
 * `$HARK_BIN keys create --data DATA --name NAME EXTRA...` (extra_args: a
 * space-separated string or NULL); token and id from its JSON output.
 * Returns 0 on success.
 */
int srv_key_create(const char *data_dir, const char *name, const char *extra_args,
		   char *token, size_t tokenlen, char *id, size_t idlen);
/* `$HARK_BIN keys revoke --data DATA ID`. 0 on exit status 0. */
int srv_key_revoke(const char *data_dir, const char *id);

/* Runs a shell command with a bounded time; returns its exit status (or -1). */
int srv_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * cmocka assertion that, on failure, names the expression and prints the tail
 * of the server's log first (use inside test functions that include
 * <cmocka.h>). s may be NULL.
 */
#define SRV_ASSERT(s, c)                                                                  \
	do {                                                                              \
		int srv_ok_ = !!(c);                                                      \
		if (!srv_ok_) {                                                           \
			fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #c);  \
			if ((s) != NULL)                                                  \
				srv_dump_log((s), 3000);                                  \
		}                                                                         \
		assert_true(srv_ok_);                                                     \
	} while (0)

#endif /* HARK_TESTS_SRV_HARNESS_H */
