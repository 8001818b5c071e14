/*
 * Load generator for `hark serve` (loopback only): one epoll loop drives
 * thousands of non-blocking HTTP/1.1 keep-alive connections from a single
 * thread. Three modes, each bounded in time:
 *   submit  C clients each POST {"type":"noop"} back to back for D seconds;
 *           reports requests/s and latency p50/p90/p99/max by status class.
 *   sse     opens N idle Server-Sent Event streams to /v1/jobs/{id}/events
 *           of a running or queued job, holds them for H seconds; reports
 *           how many were held and the server's VmRSS (and open fds) from
 *           /proc/<pid> before, while holding and after.
 *   queue   submits M noop jobs as fast as possible over C connections, then
 *           polls /metrics until hark_jobs{status="done"} has grown by M;
 *           reports submit rate and end-to-end jobs/s.
 * Every mode prints one line of key=value pairs (bench/bench_serve.sh turns
 * them into markdown). Targets outside 127.0.0.0/8 are refused.
 *
 *   bench_serve submit --port P [--conns 1000] [--duration 10]
 *   bench_serve sse    --port P --job ID [--streams 10000] [--hold 10] [--pid SERVER_PID]
 *   bench_serve queue  --port P [--jobs 10000] [--conns 64] [--timeout 600]
 *   common: [--host 127.0.0.1] [--token TOKEN] [--timeout S]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP 16384
#define MAX_CONNS 200000

struct opts {
	const char *mode;
	char host[64];
	int port;
	int conns;
	double duration;
	int streams;
	double hold;
	int jobs;
	double timeout;
	const char *job;
	const char *token;
	int pid;
};

enum cstate { C_CONNECTING = 0, C_IDLE, C_SENDING, C_WAITING, C_STREAM, C_CLOSED };

struct conn {
	int fd;
	int state;
	char *out;          /* request being sent (points into a shared buffer) */
	size_t out_len, out_off;
	char in[IN_CAP];
	size_t in_len;
	double t_sent;
	int requests;       /* completed on this connection */
};

struct stats {
	float *lat;         /* seconds of every completed request */
	size_t n_lat, cap_lat;
	uint64_t st2xx, st429, st503, st5xx, other, errors, reconnects, bytes_in;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_serve submit|sse|queue --port P [--host 127.0.0.1] [--token T]\n"
		"  submit: [--conns 1000] [--duration 10]\n"
		"  sse:    --job ID [--streams 10000] [--hold 10] [--pid SERVER_PID]\n"
		"  queue:  [--jobs 10000] [--conns 64]\n"
		"  [--timeout S] hard limit of the whole run\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->host, sizeof(o->host), "127.0.0.1");
	o->conns = -1;
	o->duration = 10;
	o->streams = 10000;
	o->hold = 10;
	o->jobs = 10000;
	o->timeout = -1;
	if (argc < 2)
		return -1;
	o->mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return -1;
		if (!strcmp(a, "--host"))
			snprintf(o->host, sizeof(o->host), "%s", v);
		else if (!strcmp(a, "--port"))
			o->port = atoi(v);
		else if (!strcmp(a, "--conns"))
			o->conns = atoi(v);
		else if (!strcmp(a, "--duration"))
			o->duration = atof(v);
		else if (!strcmp(a, "--streams"))
			o->streams = atoi(v);
		else if (!strcmp(a, "--hold"))
			o->hold = atof(v);
		else if (!strcmp(a, "--jobs"))
			o->jobs = atoi(v);
		else if (!strcmp(a, "--timeout"))
			o->timeout = atof(v);
		else if (!strcmp(a, "--job"))
			o->job = v;
		else if (!strcmp(a, "--token"))
			o->token = v;
		else if (!strcmp(a, "--pid"))
			o->pid = atoi(v);
		else
			return -1;
		i++;
	}
	if (o->conns < 0)
		o->conns = !strcmp(o->mode, "queue") ? 64 : 1000;
	if (o->port <= 0 || o->port > 65535 || o->conns < 1 || o->conns > MAX_CONNS ||
	    o->streams < 1 || o->streams > MAX_CONNS || o->jobs < 1 || o->duration <= 0 || o->hold < 0)
		return -1;
	if (o->timeout < 0) {
		if (!strcmp(o->mode, "submit"))
			o->timeout = o->duration + 60;
		else if (!strcmp(o->mode, "sse"))
			o->timeout = o->hold + 120;
		else
			o->timeout = 600;
	}
	return 0;
}

/* Loopback only: the host must be an IPv4 address in 127.0.0.0/8. */
static int loopback_addr(const char *host, int port, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127 ? 0 : -1;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static long nofile_limit(void)
{
	struct rlimit rl;
	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* ---- connections -------------------------------------------------------------- */

static int conn_open(int ep, const struct sockaddr_in *a, struct conn *c)
{
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->in_len = 0;
	c->out_off = 0;
	if (c->fd < 0) {
		c->state = C_CLOSED;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)a, sizeof(*a)) != 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		c->state = C_CLOSED;
		return -1;
	}
	c->state = C_CONNECTING;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		close(c->fd);
		c->fd = -1;
		c->state = C_CLOSED;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_CLOSED;
}

static void want(int ep, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events | EPOLLRDHUP, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is left of c->out. 1 = all sent, 0 = would block, -1 = error. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (k > 0) {
			c->out_off += (size_t)k;
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return -1;
	}
	return 1;
}

/* Reads what is available. Returns bytes read (>0), 0 on would-block, -1 on
 * EOF or error. Past IN_CAP the oldest bytes are dropped (streams). */
static ssize_t conn_read(struct conn *c, struct stats *st)
{
	ssize_t total = 0;
	for (;;) {
		if (c->in_len >= IN_CAP - 1)
			c->in_len = 0;
		ssize_t k = recv(c->fd, c->in + c->in_len, IN_CAP - 1 - c->in_len, 0);
		if (k > 0) {
			c->in_len += (size_t)k;
			c->in[c->in_len] = 0;
			total += k;
			st->bytes_in += (uint64_t)k;
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return total;
		return total > 0 ? total : -1;
	}
}

/* Length of one complete response at the start of c->in (0 = incomplete);
 * *status gets its status code. */
static size_t response_len(const struct conn *c, int *status)
{
	const char *b = c->in;
	const char *he = memmem(b, c->in_len, "\r\n\r\n", 4);
	if (!he)
		return 0;
	size_t hl = (size_t)(he - b) + 4;
	*status = c->in_len > 12 ? atoi(b + 9) : 0;
	const char *p = b;
	long cl = -1;
	int chunked = 0;
	while (p < he) {
		const char *eol = memmem(p, (size_t)(he - p) + 2, "\r\n", 2);
		if (!eol)
			break;
		if (!strncasecmp(p, "Content-Length:", 15))
			cl = atol(p + 15);
		else if (!strncasecmp(p, "Transfer-Encoding:", 18) && memmem(p, (size_t)(eol - p), "chunked", 7))
			chunked = 1;
		p = eol + 2;
	}
	if (chunked) {
		const char *end = memmem(b + hl - 2, c->in_len - hl + 2, "\r\n0\r\n\r\n", 7);
		return end ? (size_t)(end - b) + 7 : 0;
	}
	if (cl < 0)
		cl = 0;
	return c->in_len >= hl + (size_t)cl ? hl + (size_t)cl : 0;
}

static void record(struct stats *st, int status, double lat)
{
	if (status >= 200 && status < 300)
		st->st2xx++;
	else if (status == 429)
		st->st429++;
	else if (status == 503)
		st->st503++;
	else if (status >= 500)
		st->st5xx++;
	else
		st->other++;
	if (st->n_lat == st->cap_lat) {
		size_t nc = st->cap_lat ? st->cap_lat * 2 : 1 << 16;
		if (nc > (size_t)1 << 28)
			return; /* cap: 256 M samples */
		float *n = realloc(st->lat, nc * sizeof(*n));
		if (!n)
			return;
		st->lat = n;
		st->cap_lat = nc;
	}
	st->lat[st->n_lat++] = (float)lat;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static double pct(const float *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static char *make_request(const struct opts *o, const char *method, const char *path, const char *body,
			  const char *extra)
{
	char auth[256] = "";
	char *r = malloc(4096);
	if (!r)
		return NULL;
	if (o->token)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", o->token);
	if (body)
		snprintf(r, 4096,
			 "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n%s\r\n%s",
			 method, path, o->host, o->port, auth, strlen(body), extra ? extra : "", body);
	else
		snprintf(r, 4096, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s\r\n", method, path, o->host,
			 o->port, auth, extra ? extra : "");
	return r;
}

/* ---- submit / queue: request-response loops ---------------------------------------- */

/*
 * Drives conns keep-alive clients sending req until stop_at (or, when
 * max_requests > 0, until that many were sent). Returns the number sent.
 */
static uint64_t run_requests(const struct sockaddr_in *a, const char *req, int conns,
			     double stop_at, double hard_deadline, uint64_t max_requests, struct stats *st,
			     double *first_sent, double *last_done)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc((size_t)conns, sizeof(*cs));
	struct epoll_event *evs = calloc(4096, sizeof(*evs));
	uint64_t sent = 0, done = 0;
	size_t req_len = strlen(req);
	int open_now = 0;

	if (ep < 0 || !cs || !evs) {
		free(cs);
		free(evs);
		return 0;
	}
	*first_sent = 0;
	for (int i = 0; i < conns; i++) {
		cs[i].fd = -1;
		cs[i].out = (char *)req;
		cs[i].out_len = req_len;
		if (conn_open(ep, a, &cs[i]) == 0)
			open_now++;
		else
			st->errors++;
	}
	for (;;) {
		double t = now_s();
		int sending = t < stop_at && (!max_requests || sent < max_requests);
		if (t > hard_deadline)
			break;
		int busy = 0;
		for (int i = 0; i < conns && !busy; i++)
			busy = cs[i].state == C_SENDING || cs[i].state == C_WAITING;
		if (!sending && !busy)
			break;
		int n = epoll_wait(ep, evs, 4096, 50);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			uint32_t e = evs[k].events;
			if (c->state == C_CLOSED)
				continue;
			if (c->state == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || (e & (EPOLLERR | EPOLLHUP))) {
					st->errors++;
					conn_close(c);
					continue;
				}
				c->state = C_IDLE;
			}
			if (c->state == C_WAITING && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
				ssize_t r = conn_read(c, st);
				int status = 0;
				size_t len = response_len(c, &status);
				if (len) {
					double tn = now_s();
					record(st, status, tn - c->t_sent);
					*last_done = tn;
					done++;
					c->requests++;
					memmove(c->in, c->in + len, c->in_len - len);
					c->in_len -= len;
					c->state = C_IDLE;
				}
				if (r < 0) { /* closed: reconnect */
					if (c->state == C_WAITING)
						st->errors++;
					conn_close(c);
					if (sending && conn_open(ep, a, c) == 0)
						st->reconnects++;
					continue;
				}
			}
			if (c->state == C_IDLE && sending && (!max_requests || sent < max_requests)) {
				c->out_off = 0;
				c->state = C_SENDING;
				c->t_sent = now_s();
				if (!*first_sent)
					*first_sent = c->t_sent;
				sent++;
			}
			if (c->state == C_SENDING) {
				int f = conn_flush(c);
				if (f < 0) {
					st->errors++;
					conn_close(c);
					if (sending && conn_open(ep, a, c) == 0)
						st->reconnects++;
					continue;
				}
				if (f == 1) {
					c->state = C_WAITING;
					want(ep, c, EPOLLIN);
				} else {
					want(ep, c, EPOLLIN | EPOLLOUT);
				}
			} else if (c->state == C_IDLE) {
				/* nothing to send now: wake on EPOLLOUT again only while sending */
				want(ep, c, sending ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
			}
		}
		/* connections idle with EPOLLOUT level-triggered fire again next turn */
	}
	for (int i = 0; i < conns; i++) {
		if (cs[i].state == C_SENDING || cs[i].state == C_WAITING)
			st->errors++; /* unanswered at the deadline */
		conn_close(&cs[i]);
	}
	(void)open_now;
	(void)done;
	close(ep);
	free(cs);
	free(evs);
	return sent;
}

static int mode_submit(const struct opts *o, const struct sockaddr_in *a)
{
	struct stats st = {0};
	char *req = make_request(o, "POST", "/v1/jobs", "{\"type\":\"noop\"}", NULL);
	double t0 = now_s(), first = 0, last = 0;

	if (!req)
		return 1;
	uint64_t sent = run_requests(a, req, o->conns, t0 + o->duration, t0 + o->timeout, 0, &st, &first, &last);
	double span = (last > first ? last : now_s()) - (first ? first : t0);
	qsort(st.lat, st.n_lat, sizeof(*st.lat), cmp_float);
	printf("mode=submit conns=%d duration_s=%.1f sent=%llu completed=%zu rps=%.0f p50_ms=%.2f p90_ms=%.2f "
	       "p99_ms=%.2f max_ms=%.2f s2xx=%llu s429=%llu s503=%llu s5xx=%llu other=%llu errors=%llu reconnects=%llu\n",
	       o->conns, span, (unsigned long long)sent, st.n_lat, span > 0 ? st.n_lat / span : 0,
	       pct(st.lat, st.n_lat, 0.5) * 1e3, pct(st.lat, st.n_lat, 0.9) * 1e3,
	       pct(st.lat, st.n_lat, 0.99) * 1e3, st.n_lat ? st.lat[st.n_lat - 1] * 1e3 : 0,
	       (unsigned long long)st.st2xx, (unsigned long long)st.st429, (unsigned long long)st.st503,
	       (unsigned long long)st.st5xx, (unsigned long long)st.other, (unsigned long long)st.errors,
	       (unsigned long long)st.reconnects);
	free(st.lat);
	free(req);
	return st.n_lat > 0 ? 0 : 1;
}

/* One blocking GET with Connection: close; body (heap) or NULL. */
static char *http_get(const struct opts *o, const struct sockaddr_in *a, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {10, 0};
	char *req = make_request(o, "GET", path, NULL, "Connection: close\r\n");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0 || !req)
		goto out;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0)
		goto out;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto out;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			if (cap > (64u << 20))
				break;
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (buf)
		buf[n] = 0;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	if (buf && strncmp(buf, "HTTP/1.", 7) == 0) {
		char *body = strstr(buf, "\r\n\r\n");
		if (body) {
			char *r = strdup(body + 4);
			free(buf);
			return r;
		}
	}
	free(buf);
	return NULL;
}

/* Sum of the samples of metric name whose labels contain sub; -1 if none. */
static double metric(const char *text, const char *name, const char *sub)
{
	size_t nl = strlen(name);
	double sum = 0;
	int found = 0;
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!strncmp(p, name, nl) && (p[nl] == '{' || p[nl] == ' ')) {
			const char *close = p[nl] == '{' ? strchr(p, '}') : p + nl;
			if (close && (!eol || close < eol)) {
				int ok = 1;
				if (sub) {
					char *lab = strndup(p, (size_t)(close - p));
					ok = lab && strstr(lab, sub);
					free(lab);
				}
				if (ok) {
					sum += strtod(close + 1, NULL);
					found = 1;
				}
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return found ? sum : -1;
}

static double done_jobs(const struct opts *o, const struct sockaddr_in *a)
{
	char *m = http_get(o, a, "/metrics");
	double v = m ? metric(m, "hark_jobs", "status=\"done\"") : -1;
	free(m);
	return v;
}

static int mode_queue(const struct opts *o, const struct sockaddr_in *a)
{
	struct stats st = {0};
	char *req = make_request(o, "POST", "/v1/jobs", "{\"type\":\"noop\"}", NULL);
	double first = 0, last = 0;

	if (!req)
		return 1;
	double base = done_jobs(o, a);
	if (base < 0) {
		fprintf(stderr, "bench_serve: cannot read hark_jobs{status=\"done\"} from /metrics\n");
		free(req);
		return 1;
	}
	double t0 = now_s(), deadline = t0 + o->timeout;
	run_requests(a, req, o->conns, deadline, deadline, (uint64_t)o->jobs, &st, &first, &last);
	double t_sub = now_s();
	uint64_t accepted = st.st2xx;
	double done = 0, t_done = 0;
	while (now_s() < deadline) {
		done = done_jobs(o, a) - base;
		if (done >= (double)accepted) {
			t_done = now_s();
			break;
		}
		usleep(100000);
	}
	double sub_s = t_sub - (first ? first : t0);
	double all_s = (t_done ? t_done : now_s()) - (first ? first : t0);
	printf("mode=queue jobs=%d conns=%d accepted=%llu rejected=%llu errors=%llu submit_s=%.2f submit_rps=%.0f "
	       "done=%.0f all_done_s=%.2f jobs_per_s=%.0f complete=%d\n",
	       o->jobs, o->conns, (unsigned long long)accepted,
	       (unsigned long long)(st.st429 + st.st503 + st.st5xx + st.other), (unsigned long long)st.errors,
	       sub_s, sub_s > 0 ? accepted / sub_s : 0, done, all_s, all_s > 0 ? done / all_s : 0,
	       t_done > 0);
	free(st.lat);
	free(req);
	return t_done > 0 ? 0 : 1;
}

/* ---- sse ------------------------------------------------------------------------- */

static long proc_kib(int pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

static long proc_fds(int pid)
{
	char path[64];
	long n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int mode_sse(const struct opts *o, const struct sockaddr_in *a)
{
	struct stats st = {0};
	char path[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc((size_t)o->streams, sizeof(*cs));
	struct epoll_event *evs = calloc(4096, sizeof(*evs));
	int rc = 1;

	if (!o->job || strlen(o->job) > 64) {
		fprintf(stderr, "bench_serve sse: --job ID is required\n");
		goto out;
	}
	if (ep < 0 || !cs || !evs)
		goto out;
	if (nofile_limit() < o->streams + 64)
		fprintf(stderr, "bench_serve: RLIMIT_NOFILE %ld is below %d streams; raise ulimit -n\n",
			nofile_limit(), o->streams);
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", o->job);
	char *req = make_request(o, "GET", path, NULL, "Accept: text/event-stream\r\n");
	if (!req)
		goto out;
	size_t req_len = strlen(req);
	long rss0 = o->pid ? proc_kib(o->pid, "VmRSS:") : -1;
	long fds0 = o->pid ? proc_fds(o->pid) : -1;

	/* open with at most 256 connections in their handshake at a time */
	double t0 = now_s(), deadline = t0 + o->timeout, t_open = 0;
	int opened = 0, held = 0, failed = 0, in_flight = 0, finished_early = 0;
	double hold_until = 0;
	for (;;) {
		double t = now_s();
		if (t > deadline)
			break;
		while (opened < o->streams && in_flight < 256) {
			struct conn *c = &cs[opened++];
			c->out = req;
			c->out_len = req_len;
			if (conn_open(ep, a, c) == 0)
				in_flight++;
			else
				failed++;
		}
		if (!t_open && opened == o->streams && in_flight == 0) {
			t_open = t;
			hold_until = t + o->hold;
			fprintf(stderr, "bench_serve: %d streams held after %.2f s\n", held, t - t0);
		}
		if (t_open && t >= hold_until)
			break;
		int n = epoll_wait(ep, evs, 4096, 50);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			uint32_t e = evs[k].events;
			if (c->state == C_CLOSED)
				continue;
			if (c->state == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || (e & (EPOLLERR | EPOLLHUP))) {
					failed++;
					in_flight--;
					conn_close(c);
					continue;
				}
				c->state = C_SENDING;
			}
			if (c->state == C_SENDING) {
				int f = conn_flush(c);
				if (f < 0) {
					failed++;
					in_flight--;
					conn_close(c);
					continue;
				}
				if (f == 1) {
					c->state = C_WAITING;
					want(ep, c, EPOLLIN);
				}
				continue;
			}
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				ssize_t r = conn_read(c, &st);
				if (c->state == C_WAITING && memmem(c->in, c->in_len, "\r\n\r\n", 4)) {
					int status = atoi(c->in + 9);
					in_flight--;
					if (status == 200) {
						held++;
						c->state = C_STREAM;
					} else {
						failed++;
						conn_close(c);
						continue;
					}
					c->in_len = 0;
				}
				if (r < 0) {
					if (c->state == C_STREAM) {
						held--;
						finished_early++;
					} else if (c->state == C_WAITING) {
						failed++;
						in_flight--;
					}
					conn_close(c);
				}
			}
		}
	}
	long rss1 = o->pid ? proc_kib(o->pid, "VmRSS:") : -1;
	long fds1 = o->pid ? proc_fds(o->pid) : -1;
	for (int i = 0; i < o->streams; i++)
		conn_close(&cs[i]);
	usleep(2000000);
	long rss2 = o->pid ? proc_kib(o->pid, "VmRSS:") : -1;
	printf("mode=sse streams=%d held=%d failed=%d closed_by_server=%d open_s=%.2f hold_s=%.1f "
	       "server_rss_before_mb=%.1f server_rss_held_mb=%.1f server_rss_after_mb=%.1f "
	       "rss_per_stream_kb=%.1f server_fds_before=%ld server_fds_held=%ld bytes_in=%llu\n",
	       o->streams, held, failed, finished_early, t_open ? t_open - t0 : -1, o->hold,
	       rss0 / 1024.0, rss1 / 1024.0, rss2 / 1024.0,
	       held > 0 && rss0 >= 0 ? (double)(rss1 - rss0) / held : -1, fds0, fds1,
	       (unsigned long long)st.bytes_in);
	rc = held == o->streams ? 0 : 1;
	free(req);
out:
	if (ep >= 0)
		close(ep);
	free(cs);
	free(evs);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sockaddr_in a;

	signal(SIGPIPE, SIG_IGN);
	if (parse_opts(argc, argv, &o) != 0) {
		usage();
		return 2;
	}
	if (loopback_addr(o.host, o.port, &a) != 0) {
		fprintf(stderr, "bench_serve: refusing %s: only 127.0.0.0/8 targets are allowed\n", o.host);
		return 2;
	}
	raise_nofile();
	if ((!strcmp(o.mode, "submit") || !strcmp(o.mode, "queue")) && nofile_limit() < o.conns + 64)
		fprintf(stderr, "bench_serve: RLIMIT_NOFILE %ld is below %d connections; raise ulimit -n\n",
			nofile_limit(), o.conns);
	if (!strcmp(o.mode, "submit"))
		return mode_submit(&o, &a);
	if (!strcmp(o.mode, "queue"))
		return mode_queue(&o, &a);
	if (!strcmp(o.mode, "sse"))
		return mode_sse(&o, &a);
	usage();
	return 2;
}
