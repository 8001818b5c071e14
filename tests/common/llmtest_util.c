/*
 * Helpers for the LLM layer's integration tests (see llmtest_util.h): the
 * hark-llm-sim child process through the shared sim harness (plus kill -9
 * and restart on the same port), its admin endpoints and JSONL request log,
 * sliding-window and Retry-After analysis of that log, and small file/time
 * utilities.
 */
#include "llmtest_util.h"
#include "wd_util.h"
#include "sim_harness.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "llm/config.h"

/* ------------------------------------------------------------ registry -- */

/* What a failed test (cmocka unwinds it with longjmp) would leave behind:
 * simulator processes and temporary directories. Copies, not pointers into
 * the test's stack, so lt_cleanup() is safe after the unwinding. */
#define LT_MAX_SIMS 16
#define LT_MAX_DIRS 32

static struct {
	const struct lt_sim *owner; /* compared, never dereferenced */
	pid_t pid;
	char root[256];
	char logdir[256];
} lt_sims[LT_MAX_SIMS];
static char lt_dirs[LT_MAX_DIRS][256];

static void lt_reg_sim(const struct lt_sim *s)
{
	int free_slot = -1;

	for (int i = 0; i < LT_MAX_SIMS; i++) {
		if (lt_sims[i].owner == s) {
			free_slot = i;
			break;
		}
		if (!lt_sims[i].owner && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return;
	lt_sims[free_slot].owner = s;
	lt_sims[free_slot].pid = s->h.pid;
	snprintf(lt_sims[free_slot].root, sizeof(lt_sims[free_slot].root), "%s", s->h.root);
	snprintf(lt_sims[free_slot].logdir, sizeof(lt_sims[free_slot].logdir), "%s", s->logdir);
}

static void lt_unreg_sim(const struct lt_sim *s)
{
	for (int i = 0; i < LT_MAX_SIMS; i++)
		if (lt_sims[i].owner == s)
			memset(&lt_sims[i], 0, sizeof(lt_sims[i]));
}

static void lt_reg_dir(const char *dir)
{
	for (int i = 0; i < LT_MAX_DIRS; i++) {
		if (!lt_dirs[i][0]) {
			snprintf(lt_dirs[i], sizeof(lt_dirs[i]), "%s", dir);
			return;
		}
	}
}

static void lt_unreg_dir(const char *dir)
{
	for (int i = 0; i < LT_MAX_DIRS; i++)
		if (lt_dirs[i][0] && !strcmp(lt_dirs[i], dir))
			lt_dirs[i][0] = 0;
}

void lt_kill_all(void)
{
	for (int i = 0; i < LT_MAX_SIMS; i++)
		if (lt_sims[i].owner && lt_sims[i].pid > 0)
			kill(lt_sims[i].pid, SIGKILL);
}

void lt_cleanup(void)
{
	for (int i = 0; i < LT_MAX_SIMS; i++) {
		if (!lt_sims[i].owner)
			continue;
		if (lt_sims[i].pid > 0) {
			kill(lt_sims[i].pid, SIGKILL);
			waitpid(lt_sims[i].pid, NULL, 0);
		}
		lt_rmrf(lt_sims[i].root);
		lt_rmrf(lt_sims[i].logdir);
		memset(&lt_sims[i], 0, sizeof(lt_sims[i]));
	}
	for (int i = 0; i < LT_MAX_DIRS; i++) {
		if (lt_dirs[i][0]) {
			lt_rmrf(lt_dirs[i]);
			lt_dirs[i][0] = 0;
		}
	}
}

int lt_teardown(void **state)
{
	(void)state;
	lt_cleanup();
	return 0;
}

/* ------------------------------------------------------------- basics ---- */

const char *lt_sim_bin(void)
{
	const char *b = getenv("HARK_SIM_BIN");

	if (!b || !*b || access(b, X_OK) != 0)
		return NULL;
	return b;
}

void lt_clean_env(void)
{
	static const char *const vars[] = {"HARK_CONFIG",	  "HARK_LLM_BASE_URL",
					   "HARK_LLM_MODEL",	  "HARK_LLM_API_KEY_ENV",
					   "HARK_LLM_API_KEY",	  "HARK_LLM_TIME_SCALE",
					   "HARK_LLM_CACHE_TTL_S", "HARK_LLM_MAX_ATTEMPTS", NULL};

	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

double lt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void lt_sleep(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int lt_mkdtemp(char *out, size_t n, const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((size_t)snprintf(out, n, "%s/hark-lt-%s-XXXXXX", tmp, tag ? tag : "x") >= n)
		return -1;
	if (!mkdtemp(out))
		return -1;
	lt_reg_dir(out);
	return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void lt_rmrf(const char *dir)
{
	if (dir && *dir) {
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		lt_unreg_dir(dir);
	}
}

int lt_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	size_t n = strlen(text);
	int ok;

	if (!f)
		return -1;
	ok = fwrite(text, 1, n, f) == n;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

char *lt_read_file(const char *path, size_t *len)
{
	return wd_slurp(path, len);
}

char *lt_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0 || !s) {
		fprintf(stderr, "lt_fmt: out of memory\n");
		abort();
	}
	return s;
}

/* ------------------------------------------------ sim process, HTTP ---- */

json_t *lt_sim_get_json(const struct lt_sim *s, const char *path)
{
	char url[512];
	struct simh_resp r;
	json_t *j = NULL;

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	memset(&r, 0, sizeof(r));
	if (simh_request("GET", url, NULL, NULL, 20, &r) == 0 && r.status == 200 && r.json)
		j = json_incref(r.json);
	if (!j)
		fprintf(stderr, "lt: GET %s -> %ld %s\n", url, r.status, r.body ? r.body : "");
	simh_resp_free(&r);
	return j;
}

json_t *lt_sim_stats(const struct lt_sim *s)
{
	return lt_sim_get_json(s, "/_sim/stats");
}

long lt_sim_post(const struct lt_sim *s, const char *path, const char *body_json)
{
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	char url[512];
	struct simh_resp r;
	long st;

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	memset(&r, 0, sizeof(r));
	simh_request("POST", url, body_json ? body_json : "{}", hdrs, 20, &r);
	st = r.status;
	if (st < 200 || st >= 300)
		fprintf(stderr, "lt: POST %s %s -> %ld %s\n", url, body_json ? body_json : "{}", st,
			r.body ? r.body : "");
	simh_resp_free(&r);
	return st;
}

double lt_jnum(const json_t *v, const char *dotted)
{
	char key[256];
	const char *p = dotted;

	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(key))
			return 0;
		memcpy(key, p, n);
		key[n] = 0;
		v = json_object_get(v, key);
		p += n;
		if (*p == '.')
			p++;
	}
	return json_is_number(v) ? json_number_value(v) : 0;
}

/* Starts one run (listen: "127.0.0.1:0" or the same port again) through the
 * sim harness, then waits for /_sim/stats to answer. */
static int lt_launch(struct lt_sim *s, const char *listen)
{
	char seed[] = "7";
	const char *extra[8];
	int n = 0;
	double t0;

	extra[n++] = "--listen"; /* the last --listen wins */
	extra[n++] = listen;
	extra[n++] = "--seed";
	extra[n++] = seed;
	if (s->api_key[0]) {
		extra[n++] = "--api-key";
		extra[n++] = s->api_key;
	}
	extra[n] = NULL;
	/* the log lives in our own directory (one file per run), so that it
	 * survives restarts and is removed with it */
	snprintf(s->log, sizeof(s->log), "%s/requests.%d.jsonl", s->logdir, s->runs + 1);
	if (simh_start(&s->h, s->config, s->scale, s->log, extra) != 0) {
		simh_stop(&s->h); /* removes its directory */
		return -1;
	}
	s->runs++;
	lt_reg_sim(s);
	s->port = s->h.port;
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
	snprintf(s->base_v1, sizeof(s->base_v1), "%s", s->h.base);
	t0 = lt_now();
	while (lt_now() - t0 < 10) {
		json_t *st = lt_sim_get_json(s, "/_sim/stats");

		if (st) {
			json_decref(st);
			return 0;
		}
		lt_sleep(0.05);
	}
	simh_stop(&s->h);
	return -1;
}

int lt_sim_start(struct lt_sim *s, const char *config_json, double scale, const char *api_key)
{
	memset(s, 0, sizeof(*s));
	if (!lt_sim_bin()) {
		fprintf(stderr, "lt: $HARK_SIM_BIN is not an executable\n");
		return -1;
	}
	s->config = config_json ? strdup(config_json) : NULL;
	snprintf(s->api_key, sizeof(s->api_key), "%s", api_key ? api_key : "");
	s->scale = scale > 0 ? scale : 1;
	if (lt_mkdtemp(s->logdir, sizeof(s->logdir), "simlog") != 0 ||
	    lt_launch(s, "127.0.0.1:0") != 0) {
		fprintf(stderr, "lt: hark-llm-sim did not start\n");
		lt_rmrf(s->logdir);
		free(s->config);
		memset(s, 0, sizeof(*s));
		return -1;
	}
	return 0;
}

int lt_sim_restart(struct lt_sim *s)
{
	char listen[64];
	double t0 = lt_now();

	simh_stop(&s->h); /* when killed already: just removes its directory */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	while (lt_now() - t0 < 15) {
		if (lt_launch(s, listen) == 0)
			return 0;
		lt_sleep(0.2);
	}
	fprintf(stderr, "lt: hark-llm-sim did not restart on port %d\n", s->port);
	return -1;
}

void lt_sim_kill9(struct lt_sim *s)
{
	if (s->h.pid > 0) {
		kill(s->h.pid, SIGKILL);
		waitpid(s->h.pid, NULL, 0);
		s->h.pid = 0;
		lt_reg_sim(s);
	}
}

int lt_sim_stop(struct lt_sim *s)
{
	int rc = 0;

	if (s->h.root[0] || s->h.pid) {
		int st = simh_stop(&s->h);

		if (st != 0) {
			fprintf(stderr, "lt: hark-llm-sim stopped with status %d\n", st);
			rc = -1;
		}
	}
	free(s->config);
	lt_rmrf(s->logdir);
	lt_unreg_sim(s);
	memset(s, 0, sizeof(*s));
	return rc;
}

json_t *lt_sim_log(const struct lt_sim *s)
{
	json_t *arr = simh_read_log(&s->h);

	return arr ? arr : json_array();
}

/* -------------------------------------------------------- log analysis ---- */

void lt_identity(const char *first_user_content, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	hex[0] = 0;
	if (!EVP_Digest(first_user_content, strlen(first_user_content), md, &n, EVP_sha256(),
			NULL) ||
	    n != 32)
		return;
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

json_t *lt_log_filter(const json_t *log, const char *identity, const char *model, long status,
		      const char *path_sub)
{
	json_t *out = json_array();
	size_t i;
	json_t *e;

	json_array_foreach(log, i, e) {
		const char *id = json_string_value(json_object_get(e, "identity"));
		const char *m = json_string_value(json_object_get(e, "model"));
		const char *p = json_string_value(json_object_get(e, "path"));
		long st = (long)json_integer_value(json_object_get(e, "status"));

		if (identity && (!id || strcmp(id, identity)))
			continue;
		if (model && (!m || strcmp(m, model)))
			continue;
		if (status >= 0 && st != status)
			continue;
		if (path_sub && (!p || !strstr(p, path_sub)))
			continue;
		json_array_append(out, e);
	}
	return out;
}

size_t lt_log_count(const json_t *log, const char *identity, const char *model, long status,
		    const char *path_sub)
{
	json_t *f = lt_log_filter(log, identity, model, status, path_sub);
	size_t n = json_array_size(f);

	json_decref(f);
	return n;
}

struct lt_arr {
	double t;
	double tok;
};

static int lt_cmp_arr(const void *a, const void *b)
{
	double x = ((const struct lt_arr *)a)->t, y = ((const struct lt_arr *)b)->t;

	return x < y ? -1 : x > y;
}

/* Admitted (non-429) arrivals of entries (model filter optional), sorted. */
static struct lt_arr *lt_admitted(const json_t *entries, const char *model, size_t *n_out)
{
	size_t n = 0, i;
	json_t *e;
	struct lt_arr *a = calloc(json_array_size(entries) + 1, sizeof(*a));

	if (!a) {
		*n_out = 0;
		return NULL;
	}
	json_array_foreach(entries, i, e) {
		const char *m = json_string_value(json_object_get(e, "model"));

		if (json_integer_value(json_object_get(e, "status")) == 429)
			continue;
		if (model && (!m || strcmp(m, model)))
			continue;
		a[n].t = json_number_value(json_object_get(e, "t"));
		a[n].tok = json_number_value(json_object_get(e, "counted_tokens"));
		n++;
	}
	qsort(a, n, sizeof(*a), lt_cmp_arr);
	*n_out = n;
	return a;
}

void lt_window_max(const json_t *entries, double window_s, size_t *max_requests,
		   double *max_tokens)
{
	size_t n, j = 0;
	struct lt_arr *a = lt_admitted(entries, NULL, &n);
	double tok = 0, best_tok = 0;
	size_t best_n = 0;

	/* two pointers: window [a[i].t, a[i].t + window_s) */
	for (size_t i = 0; i < n; i++) {
		while (j < n && a[j].t < a[i].t + window_s) {
			tok += a[j].tok;
			j++;
		}
		if (j - i > best_n)
			best_n = j - i;
		if (tok > best_tok)
			best_tok = tok;
		tok -= a[i].tok;
	}
	free(a);
	*max_requests = best_n;
	*max_tokens = best_tok;
}

double lt_expected_wait(const json_t *log, const char *model, double t, double window_s,
			double rpm, double tpm, double counted)
{
	size_t n, lo = 0, hi, k;
	struct lt_arr *a = lt_admitted(log, model, &n);
	double tok = 0, wait = 0;

	if (!a)
		return 0;
	/* admitted arrivals inside (t - window_s, t] */
	while (lo < n && a[lo].t <= t - window_s)
		lo++;
	hi = lo;
	while (hi < n && a[hi].t <= t)
		hi++;
	for (size_t i = lo; i < hi; i++)
		tok += a[i].tok;
	/* drop the oldest until one more request of `counted` tokens fits */
	for (k = lo; k < hi; k++) {
		size_t count = hi - k;
		int ok_r = rpm <= 0 || (double)count + 1 <= rpm;
		int ok_t = tpm <= 0 || tok + counted <= tpm;

		if (ok_r && ok_t)
			break;
		tok -= a[k].tok;
		wait = a[k].t + window_s - t;
	}
	free(a);
	return wait > 0 ? wait : 0;
}

/* --------------------------------------------------------------- config -- */

struct hark_llm_config *lt_config(const char *json_text)
{
	struct hark_llm_config *c = NULL;
	char err[512] = "";

	if (hark_llm_config_parse(json_text, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "lt: config rejected: %s\n%s\n", err, json_text);
		return NULL;
	}
	return c;
}
