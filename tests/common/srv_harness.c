/*
 * Test harness for `hark serve` (see srv_harness.h): child-process control,
 * libcurl and raw-socket HTTP clients, an SSE reader, job polling, JSON and
 * Prometheus helpers, test audio built with sox/ffmpeg, and `hark keys`.
 */
#include "srv_harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

extern char **environ;

/* ---- environment ---------------------------------------------------------- */

const char *srv_shared(void)
{
	const char *s = getenv("HARK_SHARED");
	return s && *s ? s : "../shared";
}

const char *srv_bin(void)
{
	const char *b = getenv("HARK_BIN");
	if (!b || !*b || access(b, X_OK) != 0)
		return NULL;
	return b;
}

int srv_serve_available(void)
{
	static int cached = -1;
	if (cached >= 0)
		return cached;
	const char *bin = srv_bin();
	if (!bin) {
		cached = 0;
		return 0;
	}
	cached = srv_system("'%s' serve --help >/dev/null 2>&1", bin) == 0;
	return cached;
}

void srv_clip(const char *rel, char *out, size_t n)
{
	snprintf(out, n, "%s/audio/%s", srv_shared(), rel);
}

int srv_have_audio(void)
{
	char p[1024];
	srv_clip("jfk/jfk.wav", p, sizeof(p));
	return access(p, R_OK) == 0;
}

double srv_time_scale(void)
{
	const char *e = getenv("HARK_TEST_TIME_SCALE");
	if (e && atof(e) > 0)
		return atof(e);
#if defined(__SANITIZE_ADDRESS__)
	return 4.0;
#else
	return 1.0;
#endif
}

double srv_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void srv_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int srv_system(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	int k = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(cmd))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Bounded: a command running past 300 s is killed with its group. */
	double deadline = srv_now() + 300.0 * srv_time_scale();
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (srv_now() > deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		srv_sleep_ms(10);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- files ------------------------------------------------------------------ */

char *srv_slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t cap = 0, len = 0;

	if (n)
		*n = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			size_t nc = cap ? cap * 2 : 8192;
			char *nb = realloc(b, nc);
			if (!nb) {
				free(b);
				fclose(f);
				return NULL;
			}
			b = nb;
			cap = nc;
		}
		size_t got = fread(b + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	fclose(f);
	b[len] = 0;
	if (n)
		*n = len;
	return b;
}

int srv_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(p, 1, n, f) == n;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int walk(const char *dir, const char *name, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char p[4096];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found |= walk(p, name, count);
		} else {
			if (S_ISREG(st.st_mode) && count)
				(*count)++;
			if (name && !strcmp(e->d_name, name))
				found = 1;
		}
	}
	closedir(d);
	return found;
}

int srv_count_files(const char *dir)
{
	int n = 0;
	walk(dir, NULL, &n);
	return n;
}

int srv_find_file(const char *dir, const char *name)
{
	return walk(dir, name, NULL);
}

void srv_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		unlink(dir);
		return;
	}
	while ((e = readdir(d))) {
		char p[4096];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			srv_rmtree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

char *srv_words(const char *text)
{
	size_t n = text ? strlen(text) : 0;
	char *out = malloc(n + 1);
	size_t o = 0;
	int in_word = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (isalnum(c) || c == '\'') {
			if (!in_word && o > 0)
				out[o++] = ' ';
			out[o++] = (char)tolower(c);
			in_word = 1;
		} else {
			in_word = 0;
		}
	}
	out[o] = 0;
	return out;
}

/* ---- server process --------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_ALL); }

int srv_init(struct srv_server *s)
{
	const char *tmp = getenv("TMPDIR");

	memset(s, 0, sizeof(*s));
	pthread_once(&curl_once, curl_init_once);
	signal(SIGPIPE, SIG_IGN);
	snprintf(s->root, sizeof(s->root), "%s/hark-srvtest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->root)) {
		s->root[0] = 0;
		return -1;
	}
	snprintf(s->data, sizeof(s->data), "%s/data", s->root);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->root);
	snprintf(s->port_file, sizeof(s->port_file), "%s/port", s->root);
	snprintf(s->config, sizeof(s->config), "%s/config.json", s->root);
	return 0;
}

void srv_setenv(struct srv_server *s, const char *name, const char *value)
{
	char buf[1024];
	if (s->n_env >= SRV_MAX_ENV)
		return;
	snprintf(buf, sizeof(buf), "%s=%s", name, value);
	s->env[s->n_env++] = strdup(buf);
}

static int write_config(struct srv_server *s, const char *extra)
{
	json_error_t jerr;
	json_t *cfg = json_pack("{s:{s:f,s:f},s:{s:f,s:f,s:i,s:i},s:i}",
				"anon_rate", "rps", 1e6, "burst", 1e6,
				"key_defaults", "rps", 1e6, "burst", 1e6, "daily_quota_s", 0,
				"max_concurrent", 0,
				"min_free_disk_mb", 1);
	int rc = -1;

	if (!cfg)
		return -1;
	if (extra && *extra) {
		json_t *x = json_loads(extra, 0, &jerr);
		if (!x || !json_is_object(x)) {
			fprintf(stderr, "srv_harness: bad config_extra: %s\n", jerr.text);
			json_decref(x);
			json_decref(cfg);
			return -1;
		}
		json_object_update(cfg, x);
		json_decref(x);
	}
	rc = json_dump_file(cfg, s->config, JSON_INDENT(1)) == 0 ? 0 : -1;
	json_decref(cfg);
	return rc;
}

static int spawn(struct srv_server *s)
{
	const char *bin = srv_bin();
	char *argv[SRV_MAX_ARGS + 16];
	char **envp = NULL;
	int n = 0, ne = 0;

	if (!bin)
		return -1;
	argv[n++] = (char *)bin;
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--data";
	argv[n++] = s->data;
	argv[n++] = "--port-file";
	argv[n++] = s->port_file;
	argv[n++] = "--config";
	argv[n++] = s->config;
	for (int i = 0; i < s->n_args; i++)
		argv[n++] = s->args[i];
	argv[n] = NULL;

	for (char **e = environ; *e; e++)
		ne++;
	envp = calloc((size_t)ne + SRV_MAX_ENV + 1, sizeof(*envp));
	if (!envp)
		return -1;
	ne = 0;
	for (char **e = environ; *e; e++) {
		int overridden = 0;
		for (int i = 0; i < s->n_env; i++) {
			size_t kl = strcspn(s->env[i], "=") + 1;
			if (!strncmp(*e, s->env[i], kl))
				overridden = 1;
		}
		if (!overridden)
			envp[ne++] = *e;
	}
	for (int i = 0; i < s->n_env; i++)
		envp[ne++] = s->env[i];
	envp[ne] = NULL;

	unlink(s->port_file);
	int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || nullfd < 0) {
		if (logfd >= 0)
			close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		free(envp);
		return -1;
	}
	{
		char line[256];
		int k = snprintf(line, sizeof(line), "---- srv_harness: start (%d extra args) ----\n", s->n_args);
		if (write(logfd, line, (size_t)k) < 0) {
			/* the log is best effort */
		}
	}
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execve(bin, argv, envp);
		_exit(127);
	}
	close(logfd);
	close(nullfd);
	free(envp);
	if (pid < 0)
		return -1;
	s->pid = pid;
	return 0;
}

static int reap(struct srv_server *s, int block)
{
	int st;
	pid_t r;

	if (s->pid <= 0)
		return 1;
	do {
		r = waitpid(s->pid, &st, block ? 0 : WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r == s->pid) {
		if (WIFEXITED(st))
			s->last_exit = WEXITSTATUS(st);
		else if (WIFSIGNALED(st))
			s->last_exit = 128 + WTERMSIG(st);
	}
	s->pid = 0;
	return 1;
}

int srv_alive(struct srv_server *s)
{
	return s->pid > 0 && !reap(s, 0);
}

static int wait_ready(struct srv_server *s)
{
	double deadline = srv_now() + 30.0 * srv_time_scale();

	s->port = 0;
	while (srv_now() < deadline) {
		if (!srv_alive(s)) {
			fprintf(stderr, "srv_harness: server exited during start-up (status %d)\n",
				s->last_exit);
			return -1;
		}
		if (!s->port) {
			char *p = srv_slurp(s->port_file, NULL);
			if (p) {
				int port = atoi(p);
				free(p);
				if (port > 0 && port < 65536) {
					s->port = port;
					snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", port);
				}
			}
		}
		if (s->port) {
			struct srv_resp r;
			const char *h[] = {"Authorization:", NULL};
			if (srv_request(s, "GET", "/healthz", NULL, NULL, 0, h, &r) == 0 && r.status == 200) {
				srv_resp_free(&r);
				return 0;
			}
			srv_resp_free(&r);
		}
		srv_sleep_ms(50);
	}
	fprintf(stderr, "srv_harness: server not ready after %.0f s\n", 30.0 * srv_time_scale());
	return -1;
}

int srv_start(struct srv_server *s, const char *config_extra, const char *const *args)
{
	for (int i = 0; i < s->n_args; i++)
		free(s->args[i]);
	s->n_args = 0;
	for (int i = 0; args && args[i] && s->n_args < SRV_MAX_ARGS; i++)
		s->args[s->n_args++] = strdup(args[i]);
	if (write_config(s, config_extra) != 0)
		return -1;
	return srv_restart(s);
}

int srv_restart(struct srv_server *s)
{
	if (spawn(s) != 0)
		return -1;
	if (wait_ready(s) != 0) {
		srv_dump_log(s, 4000);
		if (s->pid > 0)
			srv_kill9(s);
		return -1;
	}
	return 0;
}

int srv_stop(struct srv_server *s, int sig, double timeout_s)
{
	double deadline = srv_now() + timeout_s;

	if (s->pid <= 0)
		return 0;
	if (sig)
		kill(s->pid, sig);
	while (srv_now() < deadline) {
		if (reap(s, 0))
			return 0;
		srv_sleep_ms(20);
	}
	kill(s->pid, SIGKILL);
	reap(s, 1);
	return -1;
}

void srv_kill9(struct srv_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	reap(s, 1);
}

int srv_log_clean(const struct srv_server *s)
{
	static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					    "runtime error:", "WARNING: ThreadSanitizer"};
	char *log = srv_read_log(s);
	int clean = 1;

	for (size_t i = 0; log && i < sizeof(marks) / sizeof(marks[0]); i++) {
		const char *hit = strstr(log, marks[i]);
		if (hit) {
			size_t off = (size_t)(hit - log) > 200 ? (size_t)(hit - log) - 200 : 0;
			fprintf(stderr, "srv_harness: sanitizer report in %s:\n%.6000s\n", s->log, log + off);
			clean = 0;
			break;
		}
	}
	free(log);
	return clean;
}

int srv_destroy(struct srv_server *s)
{
	int rc = 0;

	if (!s)
		return 0;
	if (s->pid > 0)
		srv_stop(s, SIGTERM, 10.0 * srv_time_scale());
	if (s->root[0] && !srv_log_clean(s))
		rc = -1;
	if (s->root[0] && !getenv("HARK_TEST_KEEP"))
		srv_rmtree(s->root);
	for (int i = 0; i < s->n_args; i++)
		free(s->args[i]);
	for (int i = 0; i < s->n_env; i++)
		free(s->env[i]);
	memset(s, 0, sizeof(*s));
	return rc;
}

char *srv_read_log(const struct srv_server *s)
{
	return srv_slurp(s->log, NULL);
}

void srv_dump_log(const struct srv_server *s, size_t max_bytes)
{
	size_t n;
	char *b = srv_slurp(s->log, &n);
	char *out;
	size_t o = 0;

	if (!b)
		return;
	/* Keep the interesting lines: everything but successful request logs. */
	out = malloc(n + 1);
	if (!out) {
		free(b);
		return;
	}
	for (char *p = b; *p;) {
		char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) + 1 : strlen(p);
		int boring = 0;
		char save = p[l - 1];
		p[l - 1] = 0;
		if (strstr(p, "\"msg\":\"request\"") &&
		    (strstr(p, "\"status\":2") || strstr(p, "\"status\":3")))
			boring = 1;
		p[l - 1] = save;
		if (!boring) {
			memcpy(out + o, p, l);
			o += l;
		}
		p += l;
	}
	out[o] = 0;
	size_t off = o > max_bytes ? o - max_bytes : 0;
	fprintf(stderr, "---- server log (%s, without 2xx/3xx request lines, last %zu bytes) ----\n%s\n"
			"---- end of log ----\n",
		s->log, o - off, out + off);
	free(out);
	free(b);
}

/* ---- HTTP through libcurl ----------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np)
			return -1;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

static size_t body_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct buf *b = ud;
	if (b->n + sz * nm > (size_t)256 << 20)
		return 0;
	return buf_add(b, p, sz * nm) == 0 ? sz * nm : 0;
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct buf *b = ud;
	size_t n = sz * nm;
	if (n >= 5 && !strncmp(p, "HTTP/", 5))
		b->n = 0; /* a new (final or interim) response starts */
	return buf_add(b, p, n) == 0 ? n : 0;
}

static void finish_resp(struct srv_resp *r, struct buf *hb, struct buf *bb)
{
	r->headers = hb->p ? hb->p : strdup("");
	r->body = bb->p ? bb->p : strdup("");
	r->len = bb->p ? bb->n : 0;
	r->json = NULL;
	if (r->len > 0) {
		json_error_t e;
		r->json = json_loadb(r->body, r->len, 0, &e);
	}
}

static struct curl_slist *make_headers(struct srv_server *s, const char *ctype,
				       const char *const *hdrs)
{
	struct curl_slist *l = NULL;
	int has_auth = 0;
	char line[512];

	for (int i = 0; hdrs && hdrs[i]; i++)
		if (!strncasecmp(hdrs[i], "Authorization:", 14))
			has_auth = 1;
	if (!has_auth && s->token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", s->token);
		l = curl_slist_append(l, line);
	}
	if (ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		l = curl_slist_append(l, line);
	}
	l = curl_slist_append(l, "Expect:");
	for (int i = 0; hdrs && hdrs[i]; i++)
		l = curl_slist_append(l, hdrs[i]);
	return l;
}

static int perform(struct srv_server *s, CURL *c, const char *path, struct curl_slist *hl,
		   struct srv_resp *r)
{
	struct buf hb = {0}, bb = {0};
	char url[8192 + 128];
	double t0 = srv_now();

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(30000 * srv_time_scale()));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	CURLcode rc = curl_easy_perform(c);
	r->curl_rc = (int)rc;
	r->status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	finish_resp(r, &hb, &bb);
	r->seconds = srv_now() - t0;
	return r->status > 0 ? 0 : -1;
}

int srv_request(struct srv_server *s, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, const char *const *hdrs, struct srv_resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	hl = make_headers(s, ctype, hdrs);
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		}
	}
	rc = perform(s, c, path, hl, r);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

int srv_get(struct srv_server *s, const char *path, struct srv_resp *r)
{
	return srv_request(s, "GET", path, NULL, NULL, 0, NULL, r);
}

int srv_delete(struct srv_server *s, const char *path, struct srv_resp *r)
{
	return srv_request(s, "DELETE", path, NULL, NULL, 0, NULL, r);
}

int srv_post_json(struct srv_server *s, const char *path, const char *json_text, struct srv_resp *r)
{
	return srv_request(s, "POST", path, "application/json", json_text, strlen(json_text), NULL, r);
}

int srv_upload(struct srv_server *s, const char *path, const char *file, const char *filename,
	       const char *part_ctype, const char *options_json, const char *const *extra_fields,
	       const char *const *hdrs, struct srv_resp *r)
{
	CURL *c = curl_easy_init();
	curl_mime *m;
	struct curl_slist *hl;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	m = curl_mime_init(c);
	if (file) {
		curl_mimepart *p = curl_mime_addpart(m);
		curl_mime_name(p, "file");
		if (curl_mime_filedata(p, file) != CURLE_OK) {
			fprintf(stderr, "srv_upload: cannot read %s\n", file);
			goto out;
		}
		if (filename)
			curl_mime_filename(p, filename);
		if (part_ctype)
			curl_mime_type(p, part_ctype);
	}
	if (options_json) {
		curl_mimepart *p = curl_mime_addpart(m);
		curl_mime_name(p, "options");
		curl_mime_data(p, options_json, CURL_ZERO_TERMINATED);
		curl_mime_type(p, "application/json");
	}
	for (int i = 0; extra_fields && extra_fields[i] && extra_fields[i + 1]; i += 2) {
		curl_mimepart *p = curl_mime_addpart(m);
		curl_mime_name(p, extra_fields[i]);
		curl_mime_data(p, extra_fields[i + 1], CURL_ZERO_TERMINATED);
	}
	curl_easy_setopt(c, CURLOPT_MIMEPOST, m);
	hl = make_headers(s, NULL, hdrs);
	rc = perform(s, c, path, hl, r);
	curl_slist_free_all(hl);
out:
	curl_mime_free(m);
	curl_easy_cleanup(c);
	return rc;
}

char *srv_header(const struct srv_resp *r, const char *name)
{
	size_t nl = strlen(name);
	const char *p = r->headers;
	char *found = NULL;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			const char *e = p + ll;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			free(found);
			found = strndup(v, (size_t)(e - v));
		}
		p = eol ? eol + 1 : NULL;
	}
	return found;
}

void srv_resp_free(struct srv_resp *r)
{
	if (!r)
		return;
	free(r->headers);
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

int srv_is_error(const struct srv_resp *r, const char *code)
{
	json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
	const char *c = e ? json_string_value(json_object_get(e, "code")) : NULL;
	const char *m = e ? json_string_value(json_object_get(e, "message")) : NULL;

	if (!c || !*c || !m || !*m) {
		fprintf(stderr, "srv_is_error: status %ld body is not {\"error\":{\"code\",\"message\"}}: %.300s\n",
			r->status, r->body ? r->body : "(none)");
		return 0;
	}
	if (code && strcmp(c, code) != 0) {
		fprintf(stderr, "srv_is_error: status %ld code \"%s\", want \"%s\" (message: %s)\n",
			r->status, c, code, m);
		return 0;
	}
	return 1;
}

/* ---- raw sockets ---------------------------------------------------------------- */

int srv_connect(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int srv_send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Decodes a chunked body in place; returns the decoded length, or -1 when
 * it is incomplete. */
static long dechunk(const char *in, size_t n, struct buf *out)
{
	size_t i = 0;
	for (;;) {
		const char *eol = memmem(in + i, n - i, "\r\n", 2);
		if (!eol)
			return -1;
		unsigned long sz = strtoul(in + i, NULL, 16);
		i = (size_t)(eol - in) + 2;
		if (sz == 0)
			return (long)out->n;
		if (i + sz + 2 > n)
			return -1;
		buf_add(out, in + i, sz);
		i += sz + 2;
	}
}

/* 1 when buf holds a complete response. */
static int response_complete(const char *b, size_t n)
{
	const char *he = memmem(b, n, "\r\n\r\n", 4);
	if (!he)
		return 0;
	size_t hl = (size_t)(he - b) + 4;
	char *head = strndup(b, hl);
	struct srv_resp tmp = {0};
	tmp.headers = head;
	char *cl = srv_header(&tmp, "Content-Length");
	char *te = srv_header(&tmp, "Transfer-Encoding");
	int done = 0;
	if (te && strcasestr(te, "chunked")) {
		done = memmem(b + hl, n - hl, "0\r\n\r\n", 5) != NULL;
		if (done) {
			struct buf o = {0};
			done = dechunk(b + hl, n - hl, &o) >= 0;
			free(o.p);
		}
	} else if (cl) {
		done = n - hl >= (size_t)atol(cl);
	} else {
		int st = atoi(b + 9);
		done = (st >= 100 && st < 200) || st == 204 || st == 304;
	}
	free(cl);
	free(te);
	free(head);
	return done;
}

int srv_parse_raw_response(const char *b, size_t n, struct srv_resp *r)
{
	struct buf hb = {0}, bb = {0};

	memset(r, 0, sizeof(*r));
	r->curl_rc = -1;
	if (n < 12 || strncmp(b, "HTTP/1.", 7) != 0) {
		finish_resp(r, &hb, &bb);
		return -1;
	}
	r->status = atol(b + 9);
	r->curl_rc = 0;
	const char *he = memmem(b, n, "\r\n\r\n", 4);
	size_t hl = he ? (size_t)(he - b) + 4 : n;
	buf_add(&hb, b, hl);
	struct srv_resp tmp = {0};
	tmp.headers = hb.p;
	char *te = srv_header(&tmp, "Transfer-Encoding");
	char *cl = srv_header(&tmp, "Content-Length");
	if (te && strcasestr(te, "chunked")) {
		if (dechunk(b + hl, n - hl, &bb) < 0 && bb.n == 0)
			buf_add(&bb, b + hl, n - hl);
	} else if (cl) {
		size_t want = (size_t)atol(cl);
		buf_add(&bb, b + hl, n - hl < want ? n - hl : want);
	} else {
		buf_add(&bb, b + hl, n - hl);
	}
	free(te);
	free(cl);
	finish_resp(r, &hb, &bb);
	return 0;
}

int srv_raw_exchange(int port, const void *req, size_t n, double timeout_s,
		     struct srv_resp *r, int *closed_out)
{
	int fd = srv_connect(port);
	struct buf in = {0};
	size_t sent = 0;
	int closed = 0, sending = 1;
	double t0 = srv_now(), deadline = t0 + timeout_s;

	memset(r, 0, sizeof(*r));
	r->curl_rc = -1;
	if (closed_out)
		*closed_out = 0;
	if (fd < 0)
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (srv_now() < deadline) {
		struct pollfd p = {fd, POLLIN, 0};
		if (sending && sent < n)
			p.events |= POLLOUT;
		int ms = (int)((deadline - srv_now()) * 1000) + 1;
		int k = poll(&p, 1, ms > 200 ? 200 : ms);
		if (k < 0 && errno != EINTR)
			break;
		if (k <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			char tmp[65536];
			ssize_t got = recv(fd, tmp, sizeof(tmp), 0);
			if (got > 0) {
				if (in.n > (64u << 20))
					break; /* cap: no test response is this large */
				buf_add(&in, tmp, (size_t)got);
				sending = 0; /* the server answered: stop sending */
				if (response_complete(in.p, in.n))
					break;
				continue;
			}
			if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				closed = 1;
				break;
			}
		}
		if ((p.revents & POLLOUT) && sending && sent < n) {
			ssize_t k2 = send(fd, (const char *)req + sent, n - sent > 65536 ? 65536 : n - sent,
					  MSG_NOSIGNAL);
			if (k2 > 0)
				sent += (size_t)k2;
			else if (k2 < 0 && errno != EAGAIN && errno != EINTR)
				sending = 0; /* reset or closed: keep reading what came back */
		}
	}
	close(fd);
	if (closed_out)
		*closed_out = closed;
	if (in.n)
		srv_parse_raw_response(in.p, in.n, r);
	else {
		struct buf hb = {0}, bb = {0};
		finish_resp(r, &hb, &bb);
		r->curl_rc = -1;
	}
	free(in.p);
	r->seconds = srv_now() - t0;
	return r->status > 0 ? 0 : -1;
}

/* ---- jobs ------------------------------------------------------------------------ */

static void copy_id(const struct srv_resp *r, char *id, size_t idlen)
{
	const char *v = r->json ? json_string_value(json_object_get(r->json, "id")) : NULL;
	if (id && idlen)
		snprintf(id, idlen, "%s", v ? v : "");
}

long srv_submit_noop(struct srv_server *s, const char *priority, char *id, size_t idlen)
{
	struct srv_resp r;
	char body[256];
	long st;

	if (priority)
		snprintf(body, sizeof(body), "{\"type\":\"noop\",\"options\":{\"priority\":\"%s\"}}", priority);
	else
		snprintf(body, sizeof(body), "{\"type\":\"noop\"}");
	srv_post_json(s, "/v1/jobs", body, &r);
	st = r.status;
	if (st == 200 || st == 202)
		copy_id(&r, id, idlen);
	else if (id && idlen)
		id[0] = 0;
	if (st != 202)
		fprintf(stderr, "srv_submit_noop: status %ld: %.300s\n", st, r.body ? r.body : "");
	srv_resp_free(&r);
	return st;
}

long srv_submit_file(struct srv_server *s, const char *file, const char *options_json,
		     char *id, size_t idlen)
{
	struct srv_resp r;
	long st;

	srv_upload(s, "/v1/jobs", file, NULL, NULL, options_json, NULL, NULL, &r);
	st = r.status;
	if (st == 200 || st == 202)
		copy_id(&r, id, idlen);
	else {
		if (id && idlen)
			id[0] = 0;
		fprintf(stderr, "srv_submit_file(%s): status %ld: %.300s\n", file, st, r.body ? r.body : "");
	}
	srv_resp_free(&r);
	return st;
}

json_t *srv_job_get(struct srv_server *s, const char *id)
{
	struct srv_resp r;
	char path[256];
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	if (srv_get(s, path, &r) == 0 && r.status == 200 && r.json) {
		j = r.json;
		r.json = NULL;
	}
	srv_resp_free(&r);
	return j;
}

static int status_in(const char *st, const char *want)
{
	size_t n = strlen(st);
	const char *p = want;
	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == n && !strncmp(p, st, n))
			return 1;
		p = bar ? bar + 1 : NULL;
	}
	return 0;
}

json_t *srv_wait_status(struct srv_server *s, const char *id, const char *want, double timeout_s)
{
	double deadline = srv_now() + timeout_s * srv_time_scale();
	char last[32] = "";

	while (srv_now() < deadline) {
		json_t *j = srv_job_get(s, id);
		const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
		if (st) {
			snprintf(last, sizeof(last), "%s", st);
			if (status_in(st, want))
				return j;
		}
		json_decref(j);
		srv_sleep_ms(50);
	}
	fprintf(stderr, "srv_wait_status(%s): still \"%s\" after %.0f s, want %s\n", id, last,
		timeout_s * srv_time_scale(), want);
	return NULL;
}

json_t *srv_wait_running(struct srv_server *s, const char *id, double min_percent, double timeout_s)
{
	double deadline = srv_now() + timeout_s * srv_time_scale();

	while (srv_now() < deadline) {
		json_t *j = srv_job_get(s, id);
		const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
		if (st && !strcmp(st, "running") && srv_jnum(j, "progress.percent", -1) > min_percent)
			return j;
		if (st && status_in(st, "done|failed|canceled")) {
			fprintf(stderr, "srv_wait_running(%s): already %s\n", id, st);
			json_decref(j);
			return NULL;
		}
		json_decref(j);
		srv_sleep_ms(50);
	}
	fprintf(stderr, "srv_wait_running(%s): not running with progress > %.1f after %.0f s\n", id,
		min_percent, timeout_s * srv_time_scale());
	return NULL;
}

/* ---- Server-Sent Events ---------------------------------------------------------- */

struct sse_state {
	struct srv_events *out;
	struct buf line;
	struct buf data;
	long long id;
	char type[32];
	int has_fields;
};

static void sse_dispatch(struct sse_state *st)
{
	struct srv_events *e = st->out;
	if (!st->has_fields)
		return;
	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 32;
		struct srv_event *ne = realloc(e->ev, nc * sizeof(*ne));
		if (!ne)
			return;
		e->ev = ne;
		e->cap = nc;
	}
	struct srv_event *ev = &e->ev[e->n++];
	ev->id = st->id;
	snprintf(ev->type, sizeof(ev->type), "%s", st->type[0] ? st->type : "message");
	ev->data = st->data.p ? strdup(st->data.p) : strdup("");
	ev->at = srv_now();
	json_error_t je;
	ev->json = ev->data[0] ? json_loads(ev->data, 0, &je) : NULL;
	st->data.n = 0;
	if (st->data.p)
		st->data.p[0] = 0;
	st->id = -1;
	st->type[0] = 0;
	st->has_fields = 0;
}

static void sse_line(struct sse_state *st, char *l)
{
	size_t n = strlen(l);
	if (n && l[n - 1] == '\r')
		l[--n] = 0;
	if (n == 0) {
		sse_dispatch(st);
		return;
	}
	if (l[0] == ':') {
		st->out->pings++;
		return;
	}
	char *colon = strchr(l, ':');
	const char *val = "";
	if (colon) {
		*colon = 0;
		val = colon + 1;
		if (*val == ' ')
			val++;
	}
	if (!strcmp(l, "id")) {
		st->id = atoll(val);
		st->has_fields = 1;
	} else if (!strcmp(l, "event")) {
		snprintf(st->type, sizeof(st->type), "%s", val);
		st->has_fields = 1;
	} else if (!strcmp(l, "data")) {
		if (st->data.n)
			buf_add(&st->data, "\n", 1);
		buf_add(&st->data, val, strlen(val));
		st->has_fields = 1;
	}
}

static size_t sse_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct sse_state *st = ud;
	size_t n = sz * nm;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			buf_add(&st->line, "", 0); /* allocates and terminates */
			sse_line(st, st->line.p);
			st->line.n = 0;
			st->line.p[0] = 0;
		} else {
			if (st->line.n > (1u << 20))
				return 0;
			buf_add(&st->line, p + i, 1);
		}
	}
	return n;
}

int srv_sse_collect(struct srv_server *s, const char *path, const char *last_event_id,
		    double timeout_s, struct srv_events *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct sse_state st;
	struct buf hb = {0};
	char url[4096], line[256];

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	st.out = out;
	st.id = -1;
	if (!c)
		return -1;
	if (s->token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", s->token);
		hl = curl_slist_append(hl, line);
	}
	hl = curl_slist_append(hl, "Accept: text/event-stream");
	if (last_event_id) {
		snprintf(line, sizeof(line), "Last-Event-ID: %s", last_event_id);
		hl = curl_slist_append(hl, line);
	}
	snprintf(url, sizeof(url), "%s%s", s->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_s * srv_time_scale() * 1000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	out->closed = rc == CURLE_OK;
	if (st.has_fields)
		sse_dispatch(&st); /* a final event without its blank line */
	{
		struct srv_resp tmp = {0};
		tmp.headers = hb.p;
		out->ctype = tmp.headers ? srv_header(&tmp, "Content-Type") : NULL;
	}
	free(hb.p);
	free(st.line.p);
	free(st.data.p);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return out->status > 0 ? 0 : -1;
}

void srv_events_free(struct srv_events *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->ev[i].data);
		json_decref(e->ev[i].json);
	}
	free(e->ev);
	free(e->ctype);
	memset(e, 0, sizeof(*e));
}

size_t srv_events_count(const struct srv_events *e, const char *type)
{
	size_t k = 0;
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->ev[i].type, type))
			k++;
	return k;
}

/* ---- JSON and Prometheus --------------------------------------------------------- */

json_t *srv_jget(json_t *o, const char *path)
{
	char key[128];
	const char *p = path;

	while (o && p && *p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l >= sizeof(key))
			return NULL;
		memcpy(key, p, l);
		key[l] = 0;
		o = json_is_object(o) ? json_object_get(o, key) : NULL;
		p = dot ? dot + 1 : NULL;
	}
	return o;
}

const char *srv_jstr(json_t *o, const char *path)
{
	return json_string_value(srv_jget(o, path));
}

double srv_jnum(json_t *o, const char *path, double def)
{
	json_t *v = srv_jget(o, path);
	return json_is_number(v) ? json_number_value(v) : def;
}

double srv_metric(const char *text, const char *name, const char *label_substr, int *found)
{
	size_t nl = strlen(name);
	double sum = 0;
	int k = 0;
	const char *p = text;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && p[0] != '#' && !strncmp(p, name, nl) && (p[nl] == '{' || p[nl] == ' ')) {
			const char *labels = "";
			size_t lablen = 0;
			const char *v = p + nl;
			if (*v == '{') {
				const char *close = memchr(v, '}', ll - nl);
				if (close) {
					labels = v + 1;
					lablen = (size_t)(close - v - 1);
					v = close + 1;
				}
			}
			int match = 1;
			if (label_substr) {
				char *lab = strndup(labels, lablen);
				match = lab && strstr(lab, label_substr) != NULL;
				free(lab);
			}
			if (match) {
				sum += strtod(v, NULL);
				k++;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	if (found)
		*found = k;
	return sum;
}

/* ---- audio ------------------------------------------------------------------------- */

static double audio_seconds(const char *path)
{
	char cmd[2048];
	char line[128] = "";
	snprintf(cmd, sizeof(cmd), "soxi -D '%s' 2>/dev/null", path);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	pclose(f);
	return line[0] ? atof(line) : -1;
}

int srv_cut_audio(const char *src, double start_s, double dur_s, const char *dst)
{
	return srv_system("sox -q '%s' -r 16000 -c 1 -b 16 '%s' trim %.3f %.3f", src, dst, start_s,
			  dur_s) == 0 ? 0 : -1;
}

int srv_make_audio(const char *dir, const char *name, double seconds, char *out, size_t n)
{
	char src[2][1024], conv[2][1024], wav[1100];
	double dur[2];
	char cmd[8192];
	size_t o = 0;
	const char *dot = strrchr(name, '.');
	int is_wav = dot && !strcmp(dot, ".wav");

	snprintf(out, n, "%s/%s", dir, name);
	if (access(out, R_OK) == 0)
		return 0;
	srv_clip("jfk/jfk.wav", src[0], sizeof(src[0]));
	srv_clip("conversation/pyannote_sample.wav", src[1], sizeof(src[1]));
	for (int i = 0; i < 2; i++) {
		snprintf(conv[i], sizeof(conv[i]), "%s/.srv_src%d.wav", dir, i);
		if (access(conv[i], R_OK) != 0 &&
		    srv_system("sox -q '%s' -r 16000 -c 1 -b 16 '%s'", src[i], conv[i]) != 0)
			return -1;
		dur[i] = audio_seconds(conv[i]);
		if (dur[i] <= 0)
			return -1;
	}
	snprintf(wav, sizeof(wav), is_wav ? "%s" : "%s.tmp.wav", out);
	o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "sox -q");
	double total = 0;
	for (int k = 0; total < seconds && o + 1200 < sizeof(cmd); k++) {
		o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, " '%s'", conv[k % 2]);
		total += dur[k % 2];
	}
	if (total < seconds)
		return -1;
	snprintf(cmd + o, sizeof(cmd) - o, " '%s' trim 0 %.3f", wav, seconds);
	if (srv_system("%s", cmd) != 0)
		return -1;
	if (!is_wav) {
		const char *codec = "";
		if (!strcmp(dot, ".ogg") || !strcmp(dot, ".opus"))
			codec = "-c:a libopus -b:a 24k";
		else if (!strcmp(dot, ".mp3"))
			codec = "-c:a libmp3lame -b:a 32k";
		int rc = srv_system("ffmpeg -nostdin -hide_banner -loglevel error -y -i '%s' %s '%s'", wav,
				    codec, out);
		unlink(wav);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* ---- API keys ------------------------------------------------------------------------ */

int srv_key_create(const char *data_dir, const char *name, const char *extra_args,
		   char *token, size_t tokenlen, char *id, size_t idlen)
{
	char cmd[2048];
	struct buf b = {0};
	char tmp[4096];
	size_t k;
	int rc = -1;

	if (!srv_bin())
		return -1;
	snprintf(cmd, sizeof(cmd), "'%s' keys create --data '%s' --name '%s' %s 2>&1", srv_bin(),
		 data_dir, name, extra_args ? extra_args : "");
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(&b, tmp, k);
	int st = pclose(f);
	if (st != 0 || !b.p) {
		fprintf(stderr, "srv_key_create: `%s` failed (%d): %s\n", cmd, st, b.p ? b.p : "");
		goto out;
	}
	/* The JSON object may follow other lines: parse from the first '{'. */
	char *brace = strchr(b.p, '{');
	json_error_t je;
	json_t *j = brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, &je) : NULL;
	const char *t = j ? json_string_value(json_object_get(j, "token")) : NULL;
	const char *i = j ? json_string_value(json_object_get(j, "id")) : NULL;
	if (t && i) {
		snprintf(token, tokenlen, "%s", t);
		snprintf(id, idlen, "%s", i);
		rc = 0;
	} else {
		fprintf(stderr, "srv_key_create: no token/id in output: %s\n", b.p);
	}
	json_decref(j);
out:
	free(b.p);
	return rc;
}

int srv_key_revoke(const char *data_dir, const char *id)
{
	if (!srv_bin())
		return -1;
	return srv_system("'%s' keys revoke --data '%s' '%s' >/dev/null 2>&1", srv_bin(), data_dir, id) == 0
		       ? 0
		       : -1;
}
