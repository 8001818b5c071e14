/*
 * Helpers for the LLM layer's integration tests (tests/integration/
 * test_llm_*.c): run `$HARK_SIM_BIN` (hark-llm-sim) on a loopback port with
 * a config, time scale and JSONL request log through the shared sim harness
 * (sim_harness.h), kill -9 it and restart it on the same port; call its
 * admin endpoints (/_sim/stats, /_sim/fail, ...); read its request log back
 * as JSON and analyse it (arrivals per request identity, sliding
 * window counts, the exact wait a 429 implied); build LLM configs from JSON
 * text; make and remove temporary directories; compute a request's sim
 * identity (sha256 of its first user message). Failures print why on
 * stderr; the tests turn them into cmocka assertions.
 */
#ifndef HARK_TESTS_LLMTEST_UTIL_H
#define HARK_TESTS_LLMTEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "sim_harness.h"

struct hark_llm_config;

/* ---- environment and time ---------------------------------------------- */

/* $HARK_SIM_BIN when it names an executable file, else NULL. */
const char *lt_sim_bin(void);
/* Removes the HARK_LLM_* / HARK_CONFIG variables that would change a config
 * parsed from text. Call once at the start of a test program. */
void lt_clean_env(void);
/* Monotonic seconds. */
double lt_now(void);
void lt_sleep(double seconds);
/* Creates a fresh directory under $TMPDIR (or /tmp) into out (registered for
 * lt_cleanup until lt_rmrf). 0 on success. */
int lt_mkdtemp(char *out, size_t n, const char *tag);
/* rm -rf dir (best effort). */
void lt_rmrf(const char *dir);
/* Writes text to path; 0 on success. */
int lt_write_file(const char *path, const char *text);
/* Whole file as a NUL-terminated heap string (caller frees), or NULL. */
char *lt_read_file(const char *path, size_t *len);

/* ---- cleanup after a failed test ------------------------------------------ */

/* A failed cmocka assertion unwinds the test before it can stop its
 * simulators or remove its directories. Every sim started and directory
 * made here is registered until stopped/removed: lt_cleanup() kills and
 * reaps the sims still registered and removes the directories;
 * lt_teardown() is the same as a cmocka teardown function (use
 * cmocka_unit_test_teardown(test, lt_teardown)); lt_kill_all() only sends
 * SIGKILL (async-signal-safe, for a watchdog's signal handler). */
void lt_cleanup(void);
int lt_teardown(void **state);
void lt_kill_all(void);

/* ---- the simulator process ----------------------------------------------- */

/* One simulator (tests/common/sim_harness.h runs the process). */
struct lt_sim {
	struct simh h;        /* the current run */
	char *config;         /* config JSON text (heap; NULL = the sim's defaults) */
	char api_key[128];    /* --api-key when non-empty */
	double scale;         /* --time-scale */
	int port;
	int runs;             /* starts so far */
	char base[96];        /* "http://127.0.0.1:PORT" (admin endpoints) */
	char base_v1[112];    /* base + "/v1" (a provider's base_url) */
	char logdir[256];     /* our directory of request logs */
	char log[320];        /* logdir/requests.<run>.jsonl: the current run's log */
};

/*
 * Starts $HARK_SIM_BIN on 127.0.0.1 port 0 with config_json (may be NULL:
 * the sim's defaults), --time-scale scale, --seed 7, a request log and
 * --api-key when api_key is non-NULL, then waits for /_sim/stats to answer.
 * 0 on success; on failure the sim's output is printed and -1 returned
 * (nothing left running).
 */
int lt_sim_start(struct lt_sim *s, const char *config_json, double scale, const char *api_key);
/* Starts it again (after lt_sim_kill9, or stopping it) on the same port,
 * with a new request log; retries while the port is still held. 0 on
 * success. */
int lt_sim_restart(struct lt_sim *s);
/* kill -9 and reap (the port becomes refused). */
void lt_sim_kill9(struct lt_sim *s);
/* SIGTERM, wait, remove its files. Returns -1 when it did not exit 0 or its
 * output holds a sanitizer report, else 0. Safe on a zeroed struct. */
int lt_sim_stop(struct lt_sim *s);

/* GET base + path as JSON (caller decrefs), or NULL. */
json_t *lt_sim_get_json(const struct lt_sim *s, const char *path);
/* GET /_sim/stats. */
json_t *lt_sim_stats(const struct lt_sim *s);
/* POST body_json to base + path; returns the HTTP status (0 = no reply). */
long lt_sim_post(const struct lt_sim *s, const char *path, const char *body_json);
/* Number at a dotted path of a JSON value ("usage.prompt_tokens",
 * "models.sim-small.usage.completion_tokens"); 0 when missing. */
double lt_jnum(const json_t *v, const char *dotted);
/* Reads the current run's request log: an array of the log objects in file
 * order (caller decrefs); an empty array when there is no log yet. */
json_t *lt_sim_log(const struct lt_sim *s);

/* ---- request-log analysis ------------------------------------------------- */

/* sha256 hex of text: the sim's identity of a request whose first user
 * message is text. */
void lt_identity(const char *first_user_content, char hex[65]);

/* Log entries matching every given filter (NULL / -1 = any): identity,
 * model, HTTP status, path substring ("chat", "embeddings"). New array
 * (caller decrefs) of borrowed-then-increfed entries, in log order. */
json_t *lt_log_filter(const json_t *log, const char *identity, const char *model, long status,
		      const char *path_sub);
/* json_array_size of lt_log_filter. */
size_t lt_log_count(const json_t *log, const char *identity, const char *model, long status,
		    const char *path_sub);

/*
 * For entries (array, any order) taken as arrivals at their "t", the maximum
 * over every sliding window [t_i, t_i + window_s) (window starting at an
 * arrival) of the number of arrivals and of the sum of "counted_tokens".
 * Entries with status 429 are ignored (a rejected request consumes nothing).
 */
void lt_window_max(const json_t *entries, double window_s, size_t *max_requests,
		   double *max_tokens);

/*
 * For a 429 entry at time t of model `model` with a per-window request limit
 * rpm (tpm: token limit, 0 = none), the exact time the sim had to wait until
 * its window would admit it: from the admitted (non-429) arrivals of that
 * model in (t - window_s, t]. Returns seconds (0 if the window was not
 * full, which means the 429 was not explained by these limits).
 */
double lt_expected_wait(const json_t *log, const char *model, double t, double window_s,
			double rpm, double tpm, double counted);

/* ---- LLM config ------------------------------------------------------------ */

/* hark_llm_config_parse of text; prints the error and returns NULL on
 * failure. */
struct hark_llm_config *lt_config(const char *json_text);

/* printf into a new heap string (caller frees); never NULL (aborts the test
 * program on allocation failure, which only tests may do). */
char *lt_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* HARK_TESTS_LLMTEST_UTIL_H */
