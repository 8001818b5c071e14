/*
 * Test harness for hark-llm-sim (see sim_harness.h): child-process control,
 * a small libcurl client, the admin endpoints and the request log.
 */
#include "sim_harness.h"
#include "wd_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

const char *simh_bin(void)
{
	const char *b = getenv("HARK_SIM_BIN");

	if (!b || !*b || access(b, X_OK) != 0)
		return NULL;
	return b;
}

double simh_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void simh_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void dump_output(const struct simh *h)
{
	char *out = wd_slurp(h->out_path, NULL);

	fprintf(stderr, "---- hark-llm-sim output ----\n%s\n-----------------------------\n",
		out ? out : "(none)");
	free(out);
}

int simh_start(struct simh *h, const char *config_json, double time_scale, const char *log_path,
	       const char *const *extra_args)
{
	const char *bin = simh_bin();
	char scale[32];
	const char *argv[64];
	int argc = 0;
	double deadline;

	memset(h, 0, sizeof(*h));
	if (!bin) {
		fprintf(stderr, "simh_start: $HARK_SIM_BIN is not set or not executable\n");
		return -1;
	}
	snprintf(h->root, sizeof(h->root), "/tmp/hark-sim-XXXXXX");
	if (!mkdtemp(h->root)) {
		h->root[0] = '\0';
		return -1;
	}
	snprintf(h->config_path, sizeof(h->config_path), "%s/config.json", h->root);
	snprintf(h->port_file, sizeof(h->port_file), "%s/port", h->root);
	snprintf(h->out_path, sizeof(h->out_path), "%s/sim.out", h->root);
	snprintf(h->log_path, sizeof(h->log_path), "%s",
		 log_path ? log_path : "");
	if (!log_path)
		snprintf(h->log_path, sizeof(h->log_path), "%s/requests.jsonl", h->root);
	snprintf(scale, sizeof(scale), "%.17g", time_scale > 0 ? time_scale : 1.0);
	argv[argc++] = bin;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--port-file";
	argv[argc++] = h->port_file;
	argv[argc++] = "--time-scale";
	argv[argc++] = scale;
	argv[argc++] = "--log";
	argv[argc++] = h->log_path;
	if (config_json) {
		FILE *f = fopen(h->config_path, "w");
		if (!f)
			return -1;
		fputs(config_json, f);
		fclose(f);
		argv[argc++] = "--config";
		argv[argc++] = h->config_path;
	}
	for (size_t i = 0; extra_args && extra_args[i] && argc < 62; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;

	h->pid = fork();
	if (h->pid < 0) {
		h->pid = 0;
		return -1;
	}
	if (h->pid == 0) {
		FILE *o = freopen(h->out_path, "w", stdout);
		if (o)
			dup2(fileno(stdout), 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	deadline = simh_now() + 20.0;
	while (simh_now() < deadline) {
		char *p = wd_slurp(h->port_file, NULL);
		int st;

		if (p) {
			h->port = atoi(p);
			free(p);
			if (h->port > 0)
				break;
		}
		if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
			h->pid = 0;
			fprintf(stderr, "simh_start: hark-llm-sim exited at start-up\n");
			dump_output(h);
			return -1;
		}
		simh_sleep_ms(10);
	}
	if (h->port <= 0) {
		fprintf(stderr, "simh_start: no port file after 20 s\n");
		dump_output(h);
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
		return -1;
	}
	snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d/v1", h->port);
	return 0;
}

/* Removes the files the harness puts in dir, then dir (a --log file
 * given outside it stays). */
static void rmtree_flat(const char *dir)
{
	const char *names[] = {"config.json", "port", "sim.out", "requests.jsonl", NULL};
	char p[512];

	for (size_t i = 0; names[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int simh_stop(struct simh *h)
{
	int st = 0, rc = 0;

	if (h->pid > 0) {
		double deadline = simh_now() + 10.0;
		pid_t w = 0;

		kill(h->pid, SIGTERM);
		while (simh_now() < deadline && (w = waitpid(h->pid, &st, WNOHANG)) == 0)
			simh_sleep_ms(10);
		if (w != h->pid) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, &st, 0);
			rc = -1;
		}
		h->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (rc == 0)
			rc = h->exit_status;
		if (rc != 0)
			dump_output(h);
		else {
			/* sanitizer reports go to the output without changing the status */
			char *out = wd_slurp(h->out_path, NULL);
			if (out && (strstr(out, "AddressSanitizer") || strstr(out, "LeakSanitizer") ||
				    strstr(out, "runtime error"))) {
				fprintf(stderr, "---- sanitizer report ----\n%s\n", out);
				rc = -1;
			}
			free(out);
		}
		h->pid = 0;
	}
	if (h->root[0]) {
		rmtree_flat(h->root);
		h->root[0] = '\0';
	}
	return rc;
}

/* ---- HTTP ------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct buf *b = user;
	size_t n = size * nmemb;

	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np)
			return 0;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct buf *b = user;
	size_t n = size * nmemb;

	/* a new status line (e.g. after 100 Continue) starts a new block */
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
		b->n = 0;
	return on_data(ptr, size, nmemb, user);
}

int simh_request(const char *method, const char *url, const char *body, const char *const *hdrs,
		 double timeout_s, struct simh_resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *sl = NULL;
	struct buf bb = {0}, hb = {0};
	double t0 = simh_now();

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	sl = curl_slist_append(sl, "Expect:");
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		sl = curl_slist_append(sl, hdrs[i]);
	if (body) {
		sl = curl_slist_append(sl, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") == 0 && !body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	r->curl_rc = (int)curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = bb.p ? bb.p : strdup("");
	r->len = bb.n;
	r->headers = hb.p ? hb.p : strdup("");
	r->json = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	r->seconds = simh_now() - t0;
	curl_slist_free_all(sl);
	curl_easy_cleanup(c);
	return r->status > 0 ? 0 : -1;
}

int simh_post(const struct simh *h, const char *path, const char *body, struct simh_resp *r)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", h->base, path);
	return simh_request("POST", url, body, NULL, 30.0, r);
}

char *simh_header(const struct simh_resp *r, const char *name)
{
	size_t nl = strlen(name);
	const char *p = r->headers, *found = NULL;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0)
			found = p;
		if (!eol)
			break;
		p = eol + 2;
	}
	if (!found)
		return NULL;
	{
		const char *v = found + nl + 1, *e = strstr(v, "\r\n");
		size_t n;
		char *out;

		while (*v == ' ' || *v == '\t')
			v++;
		n = e ? (size_t)(e - v) : strlen(v);
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		out = malloc(n + 1);
		if (!out)
			return NULL;
		memcpy(out, v, n);
		out[n] = '\0';
		return out;
	}
}

void simh_resp_free(struct simh_resp *r)
{
	free(r->headers);
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* ---- admin and log ---------------------------------------------------------------- */

json_t *simh_stats(const struct simh *h)
{
	char url[256];
	struct simh_resp r;
	json_t *out = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_sim/stats", h->port);
	if (simh_request("GET", url, NULL, NULL, 10.0, &r) == 0 && r.status == 200 && r.json)
		out = json_incref(r.json);
	simh_resp_free(&r);
	return out;
}

long simh_admin(const struct simh *h, const char *what, const char *json_body)
{
	char url[256];
	struct simh_resp r;
	long st;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_sim/%s", h->port, what);
	simh_request("POST", url, json_body, NULL, 10.0, &r);
	st = r.status;
	simh_resp_free(&r);
	return st;
}

json_t *simh_read_log(const struct simh *h)
{
	size_t n = 0;
	char *text = wd_slurp(h->log_path, &n);
	json_t *arr;
	char *line, *save = NULL;

	if (!text)
		return NULL;
	arr = json_array();
	for (line = strtok_r(text, "\n", &save); arr && line; line = strtok_r(NULL, "\n", &save)) {
		json_t *v = json_loads(line, 0, NULL);
		if (!v) {
			fprintf(stderr, "simh_read_log: not JSON: %s\n", line);
			json_decref(arr);
			arr = NULL;
			break;
		}
		json_array_append_new(arr, v);
	}
	free(text);
	return arr;
}
