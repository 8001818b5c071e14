/*
 * Helpers for C tests that talk to the LLM provider simulator
 * (hark-llm-sim, docs/LLM_SIM.md): start `$HARK_SIM_BIN` as a child on
 * 127.0.0.1 port 0 with a configuration JSON string, a time scale and a
 * request log, wait for its port file, and hand back the base URL
 * "http://127.0.0.1:PORT/v1"; stop it with SIGTERM; fetch /_sim/stats; POST
 * to the admin endpoints; read the JSONL request log; and make plain HTTP
 * requests (status, headers, body, parsed JSON) with libcurl. Each
 * simulator gets its own temporary directory, removed by simh_stop().
 */
#ifndef HARK_TESTS_SIM_HARNESS_H
#define HARK_TESTS_SIM_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct simh {
	pid_t pid;              /* child while running, else 0 */
	int port;
	char base[64];          /* "http://127.0.0.1:PORT/v1" */
	char root[256];         /* temporary directory */
	char config_path[320];  /* root/config.json */
	char port_file[320];    /* root/port */
	char out_path[320];     /* root/sim.out: the child's stdout + stderr */
	char log_path[512];     /* the --log file */
	int exit_status;        /* after simh_stop: exit code, or 128 + signal */
};

/* $HARK_SIM_BIN when set and executable, else NULL. */
const char *simh_bin(void);

/* Monotonic seconds. */
double simh_now(void);
void simh_sleep_ms(int ms);

/*
 * Starts `$HARK_SIM_BIN --listen 127.0.0.1:0 --port-file F --time-scale X
 * --log LOG [--config root/config.json] EXTRA...`. config_json: the
 * configuration text, or NULL for none; time_scale > 0; log_path: the log
 * file, or NULL for root/requests.jsonl; extra_args: NULL-terminated, may be
 * NULL. Waits up to 20 s for the port file. Returns 0 with h filled, or -1
 * (the child's output is printed to stderr and it is killed).
 */
int simh_start(struct simh *h, const char *config_json, double time_scale, const char *log_path,
	       const char *const *extra_args);

/* SIGTERM, wait up to 10 s (then SIGKILL); removes the temporary
 * directory (a log file outside it is kept). Returns the exit status (0 =
 * clean), -1 when it had to be killed. Safe on a zeroed struct. */
int simh_stop(struct simh *h);

/* A finished HTTP exchange. */
struct simh_resp {
	long status;            /* 0 when no response */
	int curl_rc;            /* CURLcode */
	char *headers;          /* raw header block (NUL-terminated) */
	char *body;             /* NUL-terminated */
	size_t len;
	json_t *json;           /* body parsed, or NULL */
	double seconds;         /* wall time of the exchange */
};

/*
 * One request to url (method "GET" or "POST"; body may be NULL). hdrs:
 * extra "Name: value" lines, NULL-terminated, may be NULL. timeout_s: whole
 * exchange, real seconds. Returns 0 when a response arrived (any status).
 */
int simh_request(const char *method, const char *url, const char *body, const char *const *hdrs,
		 double timeout_s, struct simh_resp *r);
/* POST body as application/json to h->base + path (path like "/chat/completions"). */
int simh_post(const struct simh *h, const char *path, const char *body, struct simh_resp *r);
/* Header value (case-insensitive name, last occurrence), heap copy, or NULL. */
char *simh_header(const struct simh_resp *r, const char *name);
void simh_resp_free(struct simh_resp *r);

/* GET /_sim/stats as JSON (new reference), or NULL. */
json_t *simh_stats(const struct simh *h);

/* POST /_sim/<what> ("config", "fail", "recover", "reset") with json_body
 * (NULL = empty). Returns the HTTP status (0 = none). */
long simh_admin(const struct simh *h, const char *what, const char *json_body);

/* The request log as a JSON array of its lines (new reference), or NULL
 * when it cannot be read or a line is not JSON. */
json_t *simh_read_log(const struct simh *h);

#endif /* HARK_TESTS_SIM_HARNESS_H */
