/*
 * The HTTP API of `hark serve` (docs/SERVER.md): routing, limits, auth and
 * rate limits, request parsing (query arguments, JSON bodies, streaming
 * multipart uploads with content sniffing), and the tasks that do the
 * blocking part of each route on the work queue (store reads and writes,
 * blob commits, dedup, result reads), meeting-analysis submissions and
 * results, diagram and video submissions and their (binary) results, and
 * search over analysed meetings. Everything here except the *_task
 * functions runs on the service thread; tasks touch only their request's
 * task and response fields (see api.h).
 */
#include "server/api.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <time.h>

#include "analyze/search.h"
#include "hark/transcribe.h"
#include "server/keyring.h"
#include "server/metrics.h"
#include "server/multipart.h"
#include "server/ratelimit.h"
#include "server/sniff.h"
#include "util/textnorm.h"
#include "util/workq.h"

#define FIELD_CAP (64u << 10)      /* a non-file form field */
#define FILENAME_CAP 255
#define HISTORY_CAP 20000          /* stored events replayed on connect */
#define LIST_MAX 1000
#define SEARCH_MAX 100             /* /v1/search limit= cap */
#define TEXT_UPLOAD_CAP (16u << 20) /* a transcript file uploaded for analysis */

static const char *const method_names[] = {"GET",  "POST",    "OPTIONS", "PUT", "PATCH",
					   "DELETE", "CONNECT", "HEAD",   "GET"};

static const char *const route_labels[HARK_ROUTE_COUNT] = {
	"other",
	"/healthz",
	"/readyz",
	"/metrics",
	"/v1/jobs",
	"/v1/jobs/{id}",
	"/v1/jobs/{id}/progress",
	"/v1/jobs/{id}/result",
	"/v1/jobs/{id}/events",
	"/v1/jobs/{id}/ws",
	"/v1/audio/transcriptions",
	"/v1/search",
};

static const double http_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				      0.25,  0.5,    1,     2.5,  5,     10,   30};

void hark_api_declare_metrics(struct hark_metrics *m)
{
	hark_metrics_declare(m, "hark_http_requests_total", "HTTP requests answered",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_http_request_duration_seconds",
			     "time from request to the end of the answer", HARK_METRIC_HISTOGRAM,
			     http_buckets, sizeof(http_buckets) / sizeof(http_buckets[0]));
	hark_metrics_declare(m, "hark_queue_depth", "queued jobs by priority", HARK_METRIC_GAUGE,
			     NULL, 0);
	hark_metrics_declare(m, "hark_jobs", "jobs by status", HARK_METRIC_GAUGE, NULL, 0);
	hark_metrics_declare(m, "hark_workers", "worker threads by state", HARK_METRIC_GAUGE, NULL,
			     0);
	hark_metrics_declare(m, "hark_streams", "open event streams", HARK_METRIC_GAUGE, NULL, 0);
	hark_metrics_declare(m, "hark_dedup_total", "submissions answered from an identical job",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_uploads_rejected_total", "uploads refused, by reason",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_searches_total", "search requests answered, by result",
			     HARK_METRIC_COUNTER, NULL, 0);
}

static void reject_upload(struct hark_req *r, const char *reason)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	hark_metrics_add(r->srv->metrics, "hark_uploads_rejected_total", labels, 1);
}

/* ---- small helpers ---------------------------------------------------------- */

static void sha256_hex(const void *p, size_t n, char out[HARK_SHA_HEX_LEN])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

static char *dump_json(json_t *o, size_t *len)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	*len = s ? strlen(s) : 0;
	return s;
}

/* Sets a JSON response from o (consumed). */
static void respond_json(struct hark_req *r, int status, json_t *o)
{
	size_t len;
	char *s = dump_json(o, &len);

	json_decref(o);
	if (!s) {
		hark_server_set_error(r, 500, "internal", "out of memory");
		return;
	}
	hark_server_set_response(r, status, "application/json", s, len);
}

static json_t *links_json(const char *id)
{
	char self[96], progress[112], events[112], ws[112], result[112];

	snprintf(self, sizeof(self), "/v1/jobs/%s", id);
	snprintf(progress, sizeof(progress), "%s/progress", self);
	snprintf(events, sizeof(events), "%s/events", self);
	snprintf(ws, sizeof(ws), "%s/ws", self);
	snprintf(result, sizeof(result), "%s/result", self);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "self", self, "progress", progress, "events",
			 events, "ws", ws, "result", result);
}

/* Seconds until the next UTC midnight (quota reset). */
static int secs_to_midnight(void)
{
	time_t now = time(NULL);

	return (int)(86400 - (now % 86400));
}

static int valid_job_id(const char *s, size_t n)
{
	if (n < 5 || n >= HARK_ID_LEN || strncmp(s, "job_", 4) != 0)
		return 0;
	for (size_t i = 4; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

void hark_api_route(struct hark_req *r, const char *path)
{
	size_t n = strlen(path);
	const char *rest;

	while (n > 1 && path[n - 1] == '/')
		n--;
	r->route = HARK_ROUTE_NONE;
	if (n == 8 && strncmp(path, "/healthz", 8) == 0)
		r->route = HARK_ROUTE_HEALTHZ;
	else if (n == 7 && strncmp(path, "/readyz", 7) == 0)
		r->route = HARK_ROUTE_READYZ;
	else if (n == 8 && strncmp(path, "/metrics", 8) == 0)
		r->route = HARK_ROUTE_METRICS;
	else if (n == 8 && strncmp(path, "/v1/jobs", 8) == 0)
		r->route = HARK_ROUTE_JOBS;
	else if (n == 24 && strncmp(path, "/v1/audio/transcriptions", 24) == 0)
		r->route = HARK_ROUTE_OPENAI;
	else if (n == 10 && strncmp(path, "/v1/search", 10) == 0)
		r->route = HARK_ROUTE_SEARCH;
	else if (n > 9 && strncmp(path, "/v1/jobs/", 9) == 0) {
		const char *id = path + 9;
		const char *slash = memchr(id, '/', n - 9);
		size_t idlen = slash ? (size_t)(slash - id) : n - 9;
		rest = slash ? slash : path + n;
		size_t restlen = (size_t)(path + n - rest);
		if (valid_job_id(id, idlen)) {
			if (restlen == 0)
				r->route = HARK_ROUTE_JOB;
			else if (restlen == 9 && strncmp(rest, "/progress", 9) == 0)
				r->route = HARK_ROUTE_JOB_PROGRESS;
			else if (restlen == 7 && strncmp(rest, "/result", 7) == 0)
				r->route = HARK_ROUTE_JOB_RESULT;
			else if (restlen == 7 && strncmp(rest, "/events", 7) == 0)
				r->route = HARK_ROUTE_JOB_EVENTS;
			else if (restlen == 3 && strncmp(rest, "/ws", 3) == 0)
				r->route = HARK_ROUTE_JOB_WS;
			if (r->route != HARK_ROUTE_NONE) {
				memcpy(r->job_id, id, idlen);
				r->job_id[idlen] = '\0';
			}
		} else if (idlen > 0 && (restlen == 0 || strncmp(rest, "/progress", 9) == 0 ||
					 strncmp(rest, "/result", 7) == 0 ||
					 strncmp(rest, "/events", 7) == 0 ||
					 strncmp(rest, "/ws", 3) == 0)) {
			/* a job route with an id that cannot exist: 404 for the job */
			r->route = HARK_ROUTE_JOB;
			r->job_id[0] = '\0';
		}
	}
	r->route_label = route_labels[r->route];
}

static const char *allowed_methods(int route)
{
	switch (route) {
	case HARK_ROUTE_JOBS:
		return "GET, POST, OPTIONS";
	case HARK_ROUTE_JOB:
		return "GET, DELETE, OPTIONS";
	case HARK_ROUTE_OPENAI:
		return "POST, OPTIONS";
	default:
		return "GET, OPTIONS";
	}
}

static int method_ok(int route, int m)
{
	switch (route) {
	case HARK_ROUTE_JOBS:
		return m == LWSHUMETH_GET || m == LWSHUMETH_POST;
	case HARK_ROUTE_JOB:
		return m == LWSHUMETH_GET || m == LWSHUMETH_DELETE;
	case HARK_ROUTE_OPENAI:
		return m == LWSHUMETH_POST;
	default:
		return m == LWSHUMETH_GET;
	}
}

static void answer_error(struct hark_req *r, int status, const char *code, const char *msg)
{
	hark_server_set_error(r, status, code, "%s", msg);
	hark_server_respond(r);
}

/* Copies URL argument name (e.g. "format") into out; 1 if present. */
static int url_arg(struct hark_req *r, const char *name, char *out, size_t outlen)
{
	char key[40], buf[256];
	const char *v;

	snprintf(key, sizeof(key), "%s=", name);
	v = lws_get_urlarg_by_name(r->wsi, key, buf, (int)sizeof(buf));
	if (!v)
		return 0;
	snprintf(out, outlen, "%s", v);
	return 1;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

/* Content-Length / Transfer-Encoding of any request (so that an answer
 * given before the body was read can drop the rest). Returns 1 when an
 * error answer was set. */
static int body_framing(struct hark_req *r)
{
	char buf[64] = "";
	int64_t cl = -1;

	if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
		if (lws_hdr_copy(r->wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
		    parse_i64(buf, &cl) || cl < 0) {
			r->close_after = 1;
			hark_server_set_error(r, 400, "bad_request", "invalid Content-Length");
			return 1;
		}
	}
	r->content_length = cl;
	if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
	    lws_hdr_copy(r->wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
	    strcasestr(buf, "chunked")) {
		if (r->method != LWSHUMETH_POST) {
			r->close_after = 1;
			hark_server_set_error(r, 400, "bad_request",
					      "chunked bodies are accepted on POST only");
			return 1;
		}
		r->chunked = 1;
	}
	return 0;
}

/* Header and URL caps. Returns 1 when an error answer was set. */
static int check_limits(struct hark_req *r, int uri_len)
{
	const struct hark_server_params *p = r->srv->p;
	size_t total = 0, url = (size_t)uri_len;
	int n;

	n = lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_URI_ARGS);
	if (n > 0)
		url += (size_t)n + 1;
	for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
		const unsigned char *name;
		if (t == WSI_TOKEN_HTTP_URI_ARGS || t == WSI_TOKEN_GET_URI ||
		    t == WSI_TOKEN_POST_URI || t == WSI_TOKEN_OPTIONS_URI ||
		    t == WSI_TOKEN_PUT_URI || t == WSI_TOKEN_PATCH_URI ||
		    t == WSI_TOKEN_DELETE_URI || t == WSI_TOKEN_HEAD_URI)
			continue;
		n = lws_hdr_total_length(r->wsi, (enum lws_token_indexes)t);
		if (n <= 0)
			continue;
		name = lws_token_to_string((enum lws_token_indexes)t);
		total += (size_t)n + (name ? strlen((const char *)name) : 0) + 3;
	}
	{
		/* unknown headers are invisible above: bound the header block by
		 * the bytes received for this request, less any body */
		int64_t got = hark_server_request_bytes(r), cl = 0;
		char buf[32];
		if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
		    lws_hdr_copy(r->wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
		    parse_i64(buf, &cl) != 0)
			cl = 0;
		if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
			got = -1; /* body bytes of unknown length may be in */
		if (got > 0 && cl >= 0 && got - cl - (int64_t)url > (int64_t)total)
			total = (size_t)(got - cl - (int64_t)url);
	}
	if (url > p->max_url_bytes) {
		r->close_after = 1;
		hark_server_set_error(r, 414, "uri_too_long", "URL longer than %zu bytes",
				      p->max_url_bytes);
		return 1;
	}
	if (total > p->max_header_bytes) {
		r->close_after = 1;
		hark_server_set_error(r, 431, "header_too_large", "headers exceed %zu bytes",
				      p->max_header_bytes);
		return 1;
	}
	return 0;
}

/* Bearer token auth and the rate limit. Returns 1 when an error was set. */
static int authenticate(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	const struct hark_server_params *p = srv->p;
	double retry = 0, rps, burst;
	const char *bucket;
	char auth[512];
	struct hark_key k;

	if (!p->auth) {
		r->key_id[0] = '\0';
		bucket = r->ip;
		rps = p->anon_rps;
		burst = p->anon_burst;
	} else {
		int n = lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
		const char *tok;
		if (n <= 0 || n >= (int)sizeof(auth) ||
		    lws_hdr_copy(r->wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
		    strncasecmp(auth, "Bearer ", 7) != 0) {
			hark_server_set_error(r, 401, "unauthorized",
					      "missing API key (Authorization: Bearer <token>)");
			return 1;
		}
		tok = auth + 7;
		while (*tok == ' ')
			tok++;
		memset(&k, 0, sizeof(k));
		if (!*tok || !hark_keyring_lookup(srv->keys, tok, &k)) {
			hark_server_set_error(r, 401, "unauthorized", "unknown API key");
			return 1;
		}
		if (k.revoked_at > 0) {
			hark_server_set_error(r, 403, "forbidden", "API key revoked");
			return 1;
		}
		snprintf(r->key_id, sizeof(r->key_id), "%s", k.id);
		r->key_quota_s = k.daily_quota_s > 0 ? k.daily_quota_s : p->key_daily_quota_s;
		bucket = r->key_id;
		rps = k.rate_rps > 0 ? k.rate_rps : p->key_rps;
		burst = k.rate_burst > 0 ? k.rate_burst : p->key_burst;
	}
	if (burst < 1)
		burst = 1;
	if (!hark_ratelimit_take(srv->rl, bucket, rps, burst, hark_server_now(), &retry)) {
		r->retry_after = (int)ceil(retry);
		if (r->retry_after < 1)
			r->retry_after = 1;
		hark_server_set_error(r, 429, "rate_limited", "too many requests; retry in %d s",
				      r->retry_after);
		return 1;
	}
	return 0;
}

static int key_visible(const struct hark_req *r, const struct hark_job *j)
{
	if (!r->srv->p->auth)
		return 1;
	return strcmp(r->key_id, j->key_id) == 0;
}

/* Store failure into an error answer (from a task). */
static void store_error(struct hark_req *r, int rc, const char *what)
{
	const char *m = hark_store_errmsg(r->srv->st);

	if (rc == HARK_ERR_NOT_FOUND) {
		hark_server_set_error(r, 404, "not_found", "job not found");
		return;
	}
	if (rc == HARK_ERR_IO && m && (strstr(m, "full") || strstr(m, "space"))) {
		hark_server_set_error(r, 503, "storage_full", "storage is full");
		return;
	}
	hark_server_set_error(r, 500, "internal", "%s: %s", what, m && *m ? m : hark_strerror(rc));
}

/* ---- simple routes ---------------------------------------------------------- */

static void readyz_task(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	char dberr[256] = "", merr[256] = "";
	int db_ok, model_ok, disk_ok, draining = atomic_load(&srv->draining);
	struct statvfs sv;
	int64_t free_b = 0;
	json_t *o, *checks;

	db_ok = hark_store_ping_write(srv->st, dberr, sizeof(dberr)) == HARK_OK;
	model_ok = hark_jobs_check_model(srv->jobs, merr, sizeof(merr)) == HARK_OK;
	if (statvfs(srv->p->data_dir, &sv) == 0)
		free_b = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	disk_ok = free_b >= srv->p->min_free_disk_bytes;
	checks = json_pack("{s:{s:b},s:{s:b},s:{s:b,s:I,s:I}}", "database", "ok", db_ok, "model",
			   "ok", model_ok, "disk", "ok", disk_ok, "free_bytes", (json_int_t)free_b,
			   "min_free_bytes", (json_int_t)srv->p->min_free_disk_bytes);
	if (checks && !db_ok)
		json_object_set_new(json_object_get(checks, "database"), "error", json_string(dberr));
	if (checks && !model_ok)
		json_object_set_new(json_object_get(checks, "model"), "error", json_string(merr));
	int ready = db_ok && model_ok && disk_ok && !draining;
	o = json_pack("{s:s,s:o,s:b}", "status", ready ? "ready" : "not_ready", "checks", checks,
		      "draining", draining);
	respond_json(r, ready ? 200 : 503, o);
}

char *hark_api_metrics_text(struct hark_srv *srv, size_t *len)
{
	struct hark_jobs_stats js;
	char labels[96], *reg = NULL, *out = NULL;
	size_t reglen = 0, cap, pos;

	memset(&js, 0, sizeof(js));
	if (srv->jobs)
		hark_jobs_get_stats(srv->jobs, &js);
	for (int i = 0; i < HARK_PRIO_COUNT; i++) {
		snprintf(labels, sizeof(labels), "priority=\"%s\"", hark_store_priority_name(i));
		hark_metrics_set(srv->metrics, "hark_queue_depth", labels, (double)js.queued_by_prio[i]);
	}
	for (int i = 0; i < HARK_JOB_STATUS_COUNT; i++) {
		snprintf(labels, sizeof(labels), "status=\"%s\"", hark_store_status_name(i));
		hark_metrics_set(srv->metrics, "hark_jobs", labels, (double)js.jobs_by_status[i]);
	}
	hark_metrics_set(srv->metrics, "hark_workers", "state=\"busy\"", js.workers_busy);
	hark_metrics_set(srv->metrics, "hark_workers", "state=\"idle\"",
			 js.workers_total - js.workers_busy);
	hark_metrics_set(srv->metrics, "hark_streams", "kind=\"sse\"", srv->n_sse);
	hark_metrics_set(srv->metrics, "hark_streams", "kind=\"ws\"", srv->n_ws);
	if (hark_metrics_render(srv->metrics, &reg, &reglen) != HARK_OK)
		return NULL;
	cap = reglen + 16384;
	out = malloc(cap);
	if (!out) {
		free(reg);
		return NULL;
	}
	memcpy(out, reg, reglen);
	pos = reglen;
	free(reg);
#define APPEND(...)                                                              \
	do {                                                                     \
		if (pos < cap)                                                   \
			pos += (size_t)snprintf(out + pos, cap - pos, __VA_ARGS__); \
	} while (0)
	APPEND("# HELP hark_stage_duration_seconds time jobs spent in each stage\n"
	       "# TYPE hark_stage_duration_seconds histogram\n");
	for (int s = 0; s < HARK_STAGE_COUNT; s++) {
		uint64_t cum = 0;
		const char *name = hark_jobs_stage_name(s);
		for (int b = 0; b < HARK_JOBS_N_BUCKETS; b++) {
			cum += js.stage_bucket[s][b];
			APPEND("hark_stage_duration_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n", name,
			       hark_jobs_buckets[b], (unsigned long long)cum);
		}
		cum += js.stage_bucket[s][HARK_JOBS_N_BUCKETS];
		APPEND("hark_stage_duration_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", name,
		       (unsigned long long)cum);
		APPEND("hark_stage_duration_seconds_sum{stage=\"%s\"} %.6f\n", name, js.stage_sum[s]);
		APPEND("hark_stage_duration_seconds_count{stage=\"%s\"} %llu\n", name,
		       (unsigned long long)js.stage_count[s]);
	}
	APPEND("# HELP hark_audio_seconds_total seconds of audio transcribed\n"
	       "# TYPE hark_audio_seconds_total counter\nhark_audio_seconds_total %.3f\n",
	       js.audio_seconds);
	APPEND("# HELP hark_webhooks_total webhook deliveries by result\n"
	       "# TYPE hark_webhooks_total counter\n"
	       "hark_webhooks_total{result=\"sent\"} %llu\nhark_webhooks_total{result=\"failed\"} %llu\n",
	       (unsigned long long)js.webhooks_sent, (unsigned long long)js.webhooks_failed);
	APPEND("# HELP hark_jobs_processed_total jobs ended by this process, by outcome\n"
	       "# TYPE hark_jobs_processed_total counter\n"
	       "hark_jobs_processed_total{result=\"done\"} %llu\n"
	       "hark_jobs_processed_total{result=\"failed\"} %llu\n"
	       "hark_jobs_processed_total{result=\"canceled\"} %llu\n"
	       "hark_jobs_processed_total{result=\"retried\"} %llu\n",
	       (unsigned long long)js.completed, (unsigned long long)js.failed,
	       (unsigned long long)js.canceled, (unsigned long long)js.retried);
	APPEND("# HELP hark_analyze_jobs_total analysis jobs (analyze, run) done by this process, "
	       "by method\n"
	       "# TYPE hark_analyze_jobs_total counter\n"
	       "hark_analyze_jobs_total{method=\"offline\"} %llu\n"
	       "hark_analyze_jobs_total{method=\"llm\"} %llu\n",
	       (unsigned long long)js.analyzed_offline, (unsigned long long)js.analyzed_llm);
	APPEND("# HELP hark_diagram_jobs_total diagram and video jobs done by this process, "
	       "by kind and diagram method\n"
	       "# TYPE hark_diagram_jobs_total counter\n"
	       "hark_diagram_jobs_total{kind=\"diagram\",method=\"offline\"} %llu\n"
	       "hark_diagram_jobs_total{kind=\"diagram\",method=\"llm\"} %llu\n"
	       "hark_diagram_jobs_total{kind=\"video\",method=\"offline\"} %llu\n"
	       "hark_diagram_jobs_total{kind=\"video\",method=\"llm\"} %llu\n",
	       (unsigned long long)js.diagrams_offline, (unsigned long long)js.diagrams_llm,
	       (unsigned long long)js.videos_offline, (unsigned long long)js.videos_llm);
#undef APPEND
	if (pos >= cap)
		pos = cap - 1;
	*len = pos;
	return out;
}

/* ---- job reads ---------------------------------------------------------------- */

/* Reads r->job_id, checking the owner; sets a 404 answer and returns non-zero
 * when the caller may not see it. */
static int load_job(struct hark_req *r, struct hark_job *j)
{
	int rc;

	memset(j, 0, sizeof(*j));
	if (!r->job_id[0]) {
		hark_server_set_error(r, 404, "not_found", "job not found");
		return HARK_ERR_NOT_FOUND;
	}
	rc = hark_store_job_get(r->srv->st, r->job_id, j);
	if (rc == HARK_OK && !key_visible(r, j)) {
		hark_job_clear(j);
		rc = HARK_ERR_NOT_FOUND;
	}
	if (rc) {
		store_error(r, rc, "reading the job");
		return rc;
	}
	return HARK_OK;
}

static int is_visual_type(const char *type)
{
	return strcmp(type, "diagram") == 0 || strcmp(type, "video") == 0;
}

/* The stored "summary" result of a done diagram or video job, parsed, or
 * NULL (task). */
static json_t *visual_summary(struct hark_req *r, const struct hark_job *j)
{
	char *body = NULL;
	size_t len = 0;
	json_t *o = NULL;

	if (j->status != HARK_JOB_DONE || !is_visual_type(j->type))
		return NULL;
	if (hark_store_result_get(r->srv->st, j->id, "summary", &body, &len) == HARK_OK)
		o = json_loadb(body, len, 0, NULL);
	free(body);
	return o;
}

/* The job's summary JSON plus, when the job made LLM calls, an "llm" object
 * with their accounting, and for a done diagram or video job a "diagram"
 * object with its summary (docs/SERVER.md, "Job object"). Heap or NULL. */
static char *job_summary_with_llm(struct hark_req *r, const struct hark_job *j)
{
	char *s = hark_store_job_summary_json(j);
	struct hark_llm_usage u;
	json_t *o, *vis;
	int llm;

	if (!s)
		return s;
	llm = hark_store_llm_usage(r->srv->st, j->id, NULL, NULL, 0, &u) == HARK_OK && u.calls > 0;
	vis = visual_summary(r, j);
	if (!llm && !vis)
		return s;
	o = json_loads(s, 0, NULL);
	if (!o) {
		json_decref(vis);
		return s;
	}
	if (llm)
		json_object_set_new(o, "llm",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "calls",
					      (json_int_t)u.calls, "requests",
					      (json_int_t)u.requests, "cached",
					      (json_int_t)u.cached, "failed", (json_int_t)u.failed,
					      "tokens_in", (json_int_t)u.tokens_in, "tokens_out",
					      (json_int_t)u.tokens_out, "cost_usd", u.cost_usd));
	if (vis)
		json_object_set_new(o, "diagram", vis);
	free(s);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void job_get_task(struct hark_req *r)
{
	struct hark_job j;
	char *s;

	if (load_job(r, &j))
		return;
	s = job_summary_with_llm(r, &j);
	if (s)
		hark_server_set_response(r, 200, "application/json", s, strlen(s));
	else
		hark_server_set_error(r, 500, "internal", "out of memory");
	hark_job_clear(&j);
}

static void progress_task(struct hark_req *r)
{
	struct hark_job j;
	json_t *o;

	if (load_job(r, &j))
		return;
	o = json_pack("{s:s,s:s,s:s,s:f,s:o}", "id", j.id, "status", hark_store_status_name(j.status),
		      "stage", j.stage ? j.stage : hark_store_status_name(j.status), "percent",
		      j.percent, "eta_s", j.eta_s >= 0 ? json_real(j.eta_s) : json_null());
	respond_json(r, 200, o);
	hark_job_clear(&j);
}

static const char *format_ctype(const char *fmt)
{
	if (strcmp(fmt, "json") == 0 || strcmp(fmt, "minutes") == 0 || strcmp(fmt, "graph") == 0 ||
	    strcmp(fmt, "diagram") == 0 || strcmp(fmt, "summary") == 0)
		return "application/json";
	if (strcmp(fmt, "svg") == 0)
		return "image/svg+xml";
	if (strcmp(fmt, "png") == 0)
		return "image/png";
	if (strcmp(fmt, "mp4") == 0)
		return "video/mp4";
	if (strcmp(fmt, "minutes.md") == 0)
		return "text/markdown; charset=utf-8";
	if (strcmp(fmt, "srt") == 0)
		return "application/x-subrip";
	if (strcmp(fmt, "vtt") == 0)
		return "text/vtt";
	return "text/plain; charset=utf-8";
}

static void job_error_answer(struct hark_req *r, const struct hark_job *j)
{
	hark_server_set_error(r, 409, "job_failed", "the job failed: %s: %s",
			      j->error_code ? j->error_code : "internal",
			      j->error_message ? j->error_message : "unknown error");
}

static void result_task(struct hark_req *r)
{
	struct hark_job j;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (load_job(r, &j))
		return;
	if (j.status == HARK_JOB_QUEUED || j.status == HARK_JOB_RUNNING) {
		hark_server_set_error(r, 409, "not_ready", "the job is %s",
				      hark_store_status_name(j.status));
	} else if (j.status == HARK_JOB_FAILED) {
		job_error_answer(r, &j);
	} else if (j.status == HARK_JOB_CANCELED) {
		hark_server_set_error(r, 409, "conflict", "the job was canceled");
	} else {
		/* analysis jobs answer with their minutes unless a format is named,
		 * diagram jobs with their spec, video jobs with their MP4 */
		if (!r->q_format_set && strcmp(j.type, "analyze") == 0)
			snprintf(r->q_format, sizeof(r->q_format), "minutes");
		else if (!r->q_format_set && strcmp(j.type, "diagram") == 0)
			snprintf(r->q_format, sizeof(r->q_format), "diagram");
		else if (!r->q_format_set && strcmp(j.type, "video") == 0)
			snprintf(r->q_format, sizeof(r->q_format), "mp4");
		rc = hark_store_result_get(r->srv->st, j.id, r->q_format, &body, &len);
		if (rc == HARK_OK)
			hark_server_set_response(r, 200, format_ctype(r->q_format), body, len);
		else if (rc == HARK_ERR_NOT_FOUND)
			hark_server_set_error(r, 404, "not_found",
					      "no %s result for this job (see options.formats)",
					      r->q_format);
		else
			store_error(r, rc, "reading the result");
	}
	hark_job_clear(&j);
}

static void list_task(struct hark_req *r)
{
	struct hark_job_filter f;
	struct hark_job *jobs = NULL;
	size_t n = 0, cap = 4096, pos = 0;
	char next[HARK_ID_LEN] = "";
	char *out;
	int rc, st = -1;

	if (r->q_status[0])
		hark_store_status_parse(r->q_status, &st);
	memset(&f, 0, sizeof(f));
	f.status = st;
	f.key_id = r->srv->p->auth ? r->key_id : NULL;
	f.cursor = r->q_cursor[0] ? r->q_cursor : NULL;
	f.limit = (size_t)r->q_limit;
	rc = hark_store_job_list(r->srv->st, &f, &jobs, &n, next);
	if (rc) {
		store_error(r, rc, "listing jobs");
		return;
	}
	out = malloc(cap);
	if (!out)
		goto oom;
	pos = (size_t)snprintf(out, cap, "{\"data\":[");
	for (size_t i = 0; i < n; i++) {
		char *s = hark_store_job_summary_json(&jobs[i]);
		size_t sl = s ? strlen(s) : 0;
		if (!s)
			goto oom;
		if (pos + sl + 128 > cap) {
			char *no;
			while (pos + sl + 128 > cap)
				cap *= 2;
			no = realloc(out, cap);
			if (!no) {
				free(s);
				goto oom;
			}
			out = no;
		}
		if (i)
			out[pos++] = ',';
		memcpy(out + pos, s, sl);
		pos += sl;
		free(s);
	}
	if (next[0])
		pos += (size_t)snprintf(out + pos, cap - pos, "],\"has_more\":true,\"next_cursor\":\"%s\"}",
					next);
	else
		pos += (size_t)snprintf(out + pos, cap - pos, "],\"has_more\":false,\"next_cursor\":null}");
	hark_job_array_free(jobs, n);
	hark_server_set_response(r, 200, "application/json", out, pos);
	return;
oom:
	free(out);
	hark_job_array_free(jobs, n);
	hark_server_set_error(r, 500, "internal", "out of memory");
}

/* ---- cancel and delete -------------------------------------------------------------- */

static void delete_task(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	struct hark_event ev;
	struct hark_job j;
	int prev = -1, rc;
	json_t *o;

	if (load_job(r, &j))
		return;
	memset(&ev, 0, sizeof(ev));
	r->task_rc = 0;
	if (j.status == HARK_JOB_QUEUED || j.status == HARK_JOB_RUNNING) {
		rc = hark_store_job_cancel(srv->st, j.id, &prev, &ev);
		if (rc) {
			store_error(r, rc, "canceling the job");
			hark_job_clear(&j);
			return;
		}
		hark_server_publish(srv, &ev);
		hark_event_clear(&ev);
		if (prev == HARK_JOB_RUNNING)
			hark_jobs_cancel(srv->jobs, j.id);
	} else {
		prev = j.status;
	}
	if (prev == HARK_JOB_RUNNING) {
		o = json_pack("{s:s,s:s,s:b,s:o}", "id", j.id, "status", "canceling", "purged", 0,
			      "links", links_json(j.id));
		r->task_rc = r->q_purge ? 2 : 0; /* 2: purge once it stopped */
		respond_json(r, 202, o);
		hark_job_clear(&j);
		return;
	}
	if (r->q_purge) {
		char orphan[HARK_SHA_HEX_LEN] = "";
		rc = hark_store_job_purge(srv->st, j.id, orphan);
		if (rc == HARK_ERR_INVALID_ARG) {
			hark_server_set_error(r, 409, "conflict", "the job is still running");
		} else if (rc) {
			store_error(r, rc, "purging the job");
		} else {
			if (orphan[0])
				hark_blob_remove(srv->p->data_dir, orphan);
			o = json_pack("{s:s,s:s,s:b}", "id", j.id, "status",
				      prev == HARK_JOB_QUEUED ? "canceled"
							      : hark_store_status_name(prev),
				      "purged", 1);
			respond_json(r, 200, o);
		}
		hark_job_clear(&j);
		return;
	}
	hark_job_clear(&j);
	if (load_job(r, &j))
		return;
	{
		char *s = hark_store_job_summary_json(&j);
		if (s)
			hark_server_set_response(r, 200, "application/json", s, strlen(s));
		else
			hark_server_set_error(r, 500, "internal", "out of memory");
	}
	hark_job_clear(&j);
}

static void delete_done(struct hark_req *r)
{
	if (r->task_rc == 2)
		hark_server_purge_later(r->srv, r->job_id);
	hark_server_respond(r);
}

/* ---- submissions -------------------------------------------------------------------- */

/* Quota and unfinished-jobs caps of the request's key (task). Returns 1 when
 * an error answer was set. */
static int key_caps(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	const struct hark_server_params *p = srv->p;

	if (!r->key_id[0])
		return 0;
	if (r->key_quota_s > 0) {
		char day[11];
		double used = 0;
		hark_store_utc_day(hark_server_wall(), day);
		if (hark_store_usage_get(srv->st, r->key_id, day, &used) == HARK_OK &&
		    used >= r->key_quota_s) {
			r->retry_after = secs_to_midnight();
			hark_server_set_error(r, 429, "quota_exceeded",
					      "daily quota of %.0f audio seconds used", r->key_quota_s);
			return 1;
		}
	}
	if (p->max_unfinished_per_key > 0) {
		int64_t running = 0;
		struct hark_job_filter f;
		struct hark_job *jobs = NULL;
		size_t n = 0;
		char next[HARK_ID_LEN];
		long want = p->max_unfinished_per_key;

		hark_store_key_running(srv->st, r->key_id, &running);
		memset(&f, 0, sizeof(f));
		f.status = HARK_JOB_QUEUED;
		f.key_id = r->key_id;
		f.limit = (size_t)(want > LIST_MAX ? LIST_MAX : want);
		if (hark_store_job_list(srv->st, &f, &jobs, &n, next) == HARK_OK) {
			hark_job_array_free(jobs, n);
			if ((int64_t)n + running >= want) {
				r->retry_after = 5;
				hark_server_set_error(r, 429, "too_many_jobs",
						      "%ld unfinished jobs is the cap for this key", want);
				return 1;
			}
		}
	}
	return 0;
}

/* Answers 202 (queued) or 200 (cached) after inserting j (task). For OpenAI
 * requests only r->cached / r->task_rc are set. */
static void insert_job(struct hark_req *r, struct hark_job *j)
{
	struct hark_srv *srv = r->srv;
	struct hark_event ev;
	struct hark_job src;
	int rc, dedup = j->dedup_key[0] != '\0';
	json_t *o;

	memset(&ev, 0, sizeof(ev));
	memset(&src, 0, sizeof(src));
	r->cached = 0;
	if (dedup && hark_store_job_find_done(srv->st, j->dedup_key, &src) == HARK_OK) {
		j->status = HARK_JOB_DONE;
		j->cached = 1;
		j->finished_at = j->created_at;
		j->started_at = j->created_at;
		j->percent = 100;
		j->audio_s = src.audio_s;
		rc = hark_store_job_insert_cached(srv->st, j, src.id, &ev);
		hark_job_clear(&src);
		if (rc == HARK_OK) {
			r->cached = 1;
			hark_metrics_add(srv->metrics, "hark_dedup_total", "result=\"hit\"", 1);
		}
	} else {
		hark_job_clear(&src);
		if (dedup)
			hark_metrics_add(srv->metrics, "hark_dedup_total", "result=\"miss\"", 1);
		rc = hark_store_job_insert(srv->st, j, &ev);
	}
	if (rc) {
		store_error(r, rc, "storing the job");
		r->task_rc = -1;
		return;
	}
	r->job_inserted = 1;
	hark_server_publish(srv, &ev);
	hark_event_clear(&ev);
	if (!r->cached)
		hark_jobs_wake(srv->jobs);
	r->task_rc = r->cached ? 1 : 0;
	if (r->route == HARK_ROUTE_OPENAI)
		return;
	snprintf(r->location, sizeof(r->location), "/v1/jobs/%s", j->id);
	if (r->cached) {
		char *res = NULL;
		size_t len = 0;
		json_t *result = NULL;
		if (hark_store_result_get(srv->st, j->id,
					  strcmp(j->type, "analyze") == 0 ? "minutes"
					  : is_visual_type(j->type)     ? "summary"
									: "json",
					  &res, &len) == HARK_OK)
			result = json_loadb(res, len, 0, NULL);
		free(res);
		o = json_pack("{s:s,s:s,s:b,s:o,s:o}", "id", j->id, "status", "done", "cached", 1,
			      "result", result ? result : json_null(), "links", links_json(j->id));
		respond_json(r, 200, o);
	} else {
		o = json_pack("{s:s,s:s,s:b,s:o}", "id", j->id, "status", "queued", "cached", 0,
			      "links", links_json(j->id));
		respond_json(r, 202, o);
	}
}

static void fill_job(struct hark_req *r, struct hark_job *j, const char *type, char *options)
{
	double now = hark_server_wall();

	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", r->job_id);
	snprintf(j->type, sizeof(j->type), "%s", type);
	snprintf(j->key_id, sizeof(j->key_id), "%s", r->key_id);
	j->status = HARK_JOB_QUEUED;
	j->priority = r->opts.priority;
	j->options = options;
	j->webhook = r->opts.webhook;
	j->max_attempts = r->srv->p->max_attempts;
	j->stage = (char *)"queued";
	j->eta_s = -1;
	j->created_at = now;
	j->next_run_at = now;
	j->expires_at = r->srv->p->ttl_s > 0 ? now + r->srv->p->ttl_s : 0;
}

/* The content part of the dedup key: the content's sha256, and for analysis
 * jobs whose meeting name comes from the file name also that name (the
 * meeting is stored under it), and for diagram and video jobs the file name
 * (the spec's "source"). */
static void dedup_content(const struct hark_req *r, const char *sha, char out[HARK_SHA_HEX_LEN])
{
	char buf[HARK_SHA_HEX_LEN + FILENAME_CAP + 8];
	int n;

	if (!(strcmp(r->sub_type, "analyze") == 0 || strcmp(r->sub_type, "run") == 0 ||
	      is_visual_type(r->sub_type)) ||
	    r->opts.name[0] || !r->filename || !*r->filename) {
		snprintf(out, HARK_SHA_HEX_LEN, "%s", sha);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%s/%s", sha, r->filename);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	sha256_hex(buf, (size_t)n, out);
}

/* Disk space check before accepting an upload (task). */
static int disk_full(struct hark_req *r)
{
	struct statvfs sv;

	if (r->srv->p->min_free_disk_bytes <= 0 || statvfs(r->srv->p->data_dir, &sv) != 0)
		return 0;
	if ((int64_t)sv.f_bavail * (int64_t)sv.f_frsize >= r->srv->p->min_free_disk_bytes)
		return 0;
	hark_server_set_error(r, 503, "storage_full", "the server is low on disk space");
	return 1;
}

static void submit_upload_task(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	struct hark_upload *up = r->up;
	struct hark_job j;
	char sha[HARK_SHA_HEX_LEN], err[256] = "";
	char *options = NULL;
	int werr, rc;
	int64_t written;

	r->task_rc = -1;
	pthread_mutex_lock(&up->mu);
	werr = up->werr;
	written = up->written;
	snprintf(err, sizeof(err), "%s", up->errmsg);
	pthread_mutex_unlock(&up->mu);
	if (werr == HARK_ERR_LIMIT) {
		reject_upload(r, "too_large");
		hark_server_set_error(r, 413, "payload_too_large", "upload exceeds %lld MB",
				      (long long)(srv->p->max_body_bytes >> 20));
		return;
	}
	if (werr) {
		reject_upload(r, "storage");
		if (strstr(err, "full") || strstr(err, "space") || werr == HARK_ERR_IO)
			hark_server_set_error(r, 503, "storage_full", "cannot store the upload: %s",
					      err);
		else
			hark_server_set_error(r, 500, "internal", "cannot store the upload: %s", err);
		return;
	}
	if (written <= 0 || !up->w) {
		hark_server_set_error(r, 400, "missing_file", "the file part is empty");
		return;
	}
	if (disk_full(r) || key_caps(r))
		return;
	rc = hark_blob_writer_commit(up->w, sha, err, sizeof(err));
	if (rc) {
		reject_upload(r, "storage");
		hark_server_set_error(r, 503, "storage_full", "cannot store the upload: %s", err);
		return;
	}
	options = hark_job_options_canonical(&r->opts);
	if (!options) {
		hark_server_set_error(r, 500, "internal", "out of memory");
		return;
	}
	fill_job(r, &j, r->sub_type[0] ? r->sub_type : "transcribe", options);
	snprintf(j.blob_sha, sizeof(j.blob_sha), "%s", sha);
	j.blob_size = written;
	j.filename = r->filename;
	j.media_type = (char *)r->media_type;
	if (!r->opts.force) {
		char key_sha[HARK_SHA_HEX_LEN];
		dedup_content(r, sha, key_sha);
		hark_job_options_dedup_key(&r->opts, j.type, key_sha, j.dedup_key);
	}
	insert_job(r, &j);
	free(options);
}

static void submit_json_task(struct hark_req *r)
{
	struct hark_job j;
	char *options;
	const char *type = r->sub_type[0] ? r->sub_type : r->json ? "transcript" : "noop";

	r->task_rc = -1;
	if (key_caps(r))
		return;
	options = hark_job_options_canonical(&r->opts);
	if (!options) {
		hark_server_set_error(r, 500, "internal", "out of memory");
		return;
	}
	fill_job(r, &j, type, options);
	j.filename = r->filename; /* analysis uploads: the default meeting name */
	if (r->json) {
		char sha[HARK_SHA_HEX_LEN];
		j.input_text = r->json; /* the transcript text as stored */
		sha256_hex(r->json, r->json_len, sha);
		if (!r->opts.force) {
			char key_sha[HARK_SHA_HEX_LEN];
			dedup_content(r, sha, key_sha);
			hark_job_options_dedup_key(&r->opts, type, key_sha, j.dedup_key);
		}
	}
	insert_job(r, &j);
	free(options);
}

static void submit_or_503(struct hark_req *r, void (*run)(struct hark_req *),
			  void (*done)(struct hark_req *))
{
	if (hark_server_submit(r, run, done) != HARK_OK) {
		r->retry_after = 1;
		answer_error(r, 503, "overloaded", "the server is overloaded; retry shortly");
	}
}

/* ---- OpenAI-compatible transcription ----------------------------------------------- */

static void cancel_run(void *arg);

struct cancel_task {
	struct hark_srv *srv;
	char job_id[HARK_ID_LEN];
};

static void cancel_job_async(struct hark_srv *srv, const char *id)
{
	struct cancel_task *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	t->srv = srv;
	snprintf(t->job_id, sizeof(t->job_id), "%s", id);
	if (hark_workq_submit(srv->wq, cancel_run, t) != HARK_OK)
		free(t);
}

static void cancel_run(void *arg)
{
	struct cancel_task *t = arg;
	struct hark_event ev;
	int prev = -1;

	memset(&ev, 0, sizeof(ev));
	if (hark_store_job_cancel(t->srv->st, t->job_id, &prev, &ev) == HARK_OK) {
		hark_server_publish(t->srv, &ev);
		if (prev == HARK_JOB_RUNNING)
			hark_jobs_cancel(t->srv->jobs, t->job_id);
	}
	hark_event_clear(&ev);
	free(t);
}

/* The answer of a finished OpenAI request (task). */
static void openai_result_task(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	const char *fmt = r->oa_format[0] ? r->oa_format : "json";
	const char *stored = strcmp(fmt, "text") == 0 ? "txt"
			     : (strcmp(fmt, "srt") == 0 || strcmp(fmt, "vtt") == 0) ? fmt : "json";
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (r->job_status == HARK_JOB_FAILED || r->job_status == HARK_JOB_CANCELED) {
		struct hark_job j;
		if (load_job(r, &j))
			return;
		if (j.status == HARK_JOB_CANCELED) {
			hark_server_set_error(r, 409, "conflict", "the job was canceled");
		} else {
			const char *code = j.error_code ? j.error_code : "internal";
			int st = strcmp(code, "internal") == 0 || strcmp(code, "engine_error") == 0 ||
					 strcmp(code, "io_error") == 0 || strcmp(code, "out_of_memory") == 0
				 ? 500 : 400;
			hark_server_set_error(r, st, code, "%s",
					      j.error_message ? j.error_message : "transcription failed");
		}
		hark_job_clear(&j);
		return;
	}
	rc = hark_store_result_get(srv->st, r->job_id, stored, &body, &len);
	if (rc) {
		store_error(r, rc, "reading the result");
		return;
	}
	if (strcmp(fmt, "json") == 0) {
		json_t *root = json_loadb(body, len, 0, NULL);
		json_t *text = root ? json_object_get(root, "text") : NULL;
		json_t *o = json_pack("{s:s}", "text", json_is_string(text) ? json_string_value(text)
									  : "");
		json_decref(root);
		free(body);
		respond_json(r, 200, o);
		return;
	}
	hark_server_set_response(r, 200, format_ctype(strcmp(fmt, "verbose_json") == 0 ? "json"
					  : stored), body, len);
}

static void openai_fetch(struct hark_req *r)
{
	submit_or_503(r, openai_result_task, NULL);
}

void hark_api_wait_ended(struct hark_req *r)
{
	r->wait_ended = 1;
	if (r->task_busy)
		return; /* the submit task is still out: its completion picks it up */
	openai_fetch(r);
}

static void openai_submit_done(struct hark_req *r)
{
	if (r->task_rc < 0) {
		if (r->stream)
			hark_hub_unsubscribe(r->srv->hub, &r->stream->sub);
		hark_server_respond(r);
		return;
	}
	if (r->task_rc == 1) { /* cached: the result is there */
		if (r->stream)
			hark_hub_unsubscribe(r->srv->hub, &r->stream->sub);
		r->job_status = HARK_JOB_DONE;
		openai_fetch(r);
		return;
	}
	if (r->wait_ended)
		openai_fetch(r);
	/* else: the hub calls hark_api_wait_ended when the job ends */
}

void hark_api_closed(struct hark_req *r)
{
	if (r->route != HARK_ROUTE_OPENAI || !r->body_done || r->resp_ready || r->wait_ended)
		return;
	if (r->task_busy) {
		r->cancel_job = 1;
		return;
	}
	if (r->job_inserted && !r->cached)
		cancel_job_async(r->srv, r->job_id);
}

void hark_api_orphan_done(struct hark_req *r)
{
	if (r->cancel_job && r->job_inserted && !r->cached && !r->wait_ended) {
		r->cancel_job = 0;
		cancel_job_async(r->srv, r->job_id);
	}
}

/* ---- streams ------------------------------------------------------------------------- */

static void history_task(struct hark_req *r)
{
	struct hark_stream *s = r->stream;
	struct hark_event *all = NULL;
	size_t n_all = 0;
	int64_t after = s->last_seq;
	struct hark_job j;

	r->task_rc = -1;
	if (load_job(r, &j))
		return;
	s->job_final = j.status == HARK_JOB_DONE || j.status == HARK_JOB_FAILED ||
		       j.status == HARK_JOB_CANCELED;
	hark_job_clear(&j);
	while (n_all < HISTORY_CAP) {
		struct hark_event *ev = NULL, *na;
		size_t n = 0;
		int rc = hark_store_event_list(r->srv->st, r->job_id, after, 1000, &ev, &n);
		if (rc) {
			hark_event_array_free(all, n_all);
			store_error(r, rc, "reading events");
			return;
		}
		if (n == 0) {
			free(ev);
			break;
		}
		na = realloc(all, (n_all + n) * sizeof(*all));
		if (!na) {
			hark_event_array_free(ev, n);
			hark_event_array_free(all, n_all);
			hark_server_set_error(r, 500, "internal", "out of memory");
			return;
		}
		all = na;
		memcpy(all + n_all, ev, n * sizeof(*ev));
		free(ev); /* the strings moved into all */
		n_all += n;
		after = all[n_all - 1].seq;
		if (n < 1000)
			break;
	}
	s->hist = all;
	s->n_hist = n_all;
	r->task_rc = 0;
}

static void history_done(struct hark_req *r)
{
	struct hark_stream *s = r->stream;

	if (r->task_rc < 0) {
		hark_hub_unsubscribe(r->srv->hub, &s->sub);
		if (r->is_ws) {
			s->close_code = r->status == 404 ? 4404 : 1011;
			s->ready = 1;
			lws_callback_on_writable(r->wsi);
			return;
		}
		hark_server_respond(r);
		return;
	}
	hark_server_stream_ready(r);
}

static int64_t last_event_id(struct hark_req *r)
{
	char buf[32] = "";
	int64_t v = 0;

	if (lws_hdr_custom_length(r->wsi, "last-event-id:", 14) > 0 &&
	    lws_hdr_custom_copy(r->wsi, buf, sizeof(buf), "last-event-id:", 14) > 0 &&
	    parse_i64(buf, &v) == 0 && v >= 0)
		return v;
	if (url_arg(r, "last_event_id", buf, sizeof(buf)) && parse_i64(buf, &v) == 0 && v >= 0)
		return v;
	return 0;
}

static int start_stream(struct hark_req *r, int kind)
{
	struct hark_stream *s = hark_server_stream_new(r, kind, last_event_id(r));

	if (!s) {
		answer_error(r, 500, "internal", "out of memory");
		return 0;
	}
	return 0;
}

static void begin_history(struct hark_req *r)
{
	hark_hub_subscribe(r->srv->hub, &r->stream->sub, r->job_id);
	if (hark_server_submit(r, history_task, history_done) != HARK_OK) {
		hark_hub_unsubscribe(r->srv->hub, &r->stream->sub);
		if (r->is_ws) {
			r->stream->close_code = 1013; /* try again later */
			r->stream->ready = 1;
			lws_callback_on_writable(r->wsi);
			return;
		}
		r->retry_after = 1;
		answer_error(r, 503, "overloaded", "the server is overloaded; retry shortly");
	}
}

/* ---- multipart ------------------------------------------------------------------------- */

static int early_error(struct hark_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* An answer before the body ended: the rest of the body is ignored. */
static int early_error(struct hark_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->body_error = 1;
	hark_server_upload_abort(r);
	if (r->stream)
		hark_hub_unsubscribe(r->srv->hub, &r->stream->sub);
	hark_server_set_error(r, status, code, "%s", msg);
	hark_server_respond(r);
	return 1;
}

/* 1 when the n bytes at p read as UTF-8 text: no NUL or other control
 * bytes but tab, CR, LF and FF, and valid UTF-8 (a sequence cut by the
 * end of p counts when complete is 0). */
static int looks_like_text(const unsigned char *p, size_t n, int complete)
{
	size_t valid = n;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f)
			return 0;
	}
	if (!complete) {
		/* drop a trailing partial sequence (at most 3 bytes) */
		size_t k = 0;
		while (k < 3 && k < n && (p[n - 1 - k] & 0xC0) == 0x80)
			k++;
		if (k < n && p[n - 1 - k] >= 0xC0)
			valid = n - 1 - k;
	}
	return hark_textnorm_utf8_valid((const char *)p, valid);
}

/* Appends bytes of a text file part to r->json (capped). 1 when an error
 * answer was given. */
static int text_append(struct hark_req *r, const void *p, size_t n)
{
	size_t cap = TEXT_UPLOAD_CAP;
	char *nb;

	if (r->srv->p->max_body_bytes > 0 && (uint64_t)r->srv->p->max_body_bytes < cap)
		cap = (size_t)r->srv->p->max_body_bytes;
	if (!n)
		return 0;
	if (r->json_len + n > cap) {
		reject_upload(r, "too_large");
		return early_error(r, 413, "payload_too_large",
				   "a transcript upload may have at most %zu bytes", cap);
	}
	nb = realloc(r->json, r->json_len + n + 1);
	if (!nb)
		return early_error(r, 500, "internal", "out of memory");
	memcpy(nb + r->json_len, p, n);
	r->json = nb;
	r->json_len += n;
	r->json[r->json_len] = '\0';
	return 0;
}

static int sniff_now(struct hark_req *r)
{
	int need_more = 0;
	const char *mt;

	if (r->head_len == 0)
		return early_error(r, 400, "missing_file", "the file part is empty");
	mt = hark_sniff_media(r->head, r->head_len, &need_more);
	if (!mt && r->route == HARK_ROUTE_JOBS && strcmp(r->sub_type, "video") == 0) {
		reject_upload(r, "unsupported_media_type");
		return early_error(r, 415, "unsupported_media_type",
				   "a video job needs an audio or video upload (its sound track "
				   "is the video's); for a transcript use type=diagram");
	}
	if (!mt && r->route == HARK_ROUTE_JOBS &&
	    (!r->sub_type[0] || strcmp(r->sub_type, "analyze") == 0 ||
	     strcmp(r->sub_type, "diagram") == 0) &&
	    looks_like_text(r->head, r->head_len, r->file_done)) {
		/* a transcript for analysis (the type field may still come) */
		r->text_file = 1;
		r->sniffed = 1;
		if (text_append(r, r->head, r->head_len))
			return 1;
		free(r->head);
		r->head = NULL;
		r->head_len = 0;
		return 0;
	}
	if (!mt) {
		reject_upload(r, "unsupported_media_type");
		return early_error(r, 415, "unsupported_media_type",
				   "the upload is not audio or video hark can read");
	}
	r->media_type = mt;
	r->sniffed = 1;
	if (hark_server_upload_append(r, r->head, r->head_len) != HARK_OK) {
		r->retry_after = 1;
		return early_error(r, 503, "overloaded", "the server is overloaded; retry shortly");
	}
	free(r->head);
	r->head = NULL;
	return 0;
}

static int mp_begin(void *user, const char *name, const char *filename, const char *ctype)
{
	struct hark_req *r = user;

	(void)ctype;
	free(r->field);
	r->field = NULL;
	r->field_len = 0;
	if (name && strcmp(name, "file") == 0) {
		if (r->file_seen)
			return early_error(r, 400, "bad_request", "more than one file part");
		r->file_seen = 1;
		r->part = HARK_PART_FILE;
		if (strcmp(r->sub_type, "analyze") == 0) {
			r->text_file = 1;
			r->sniffed = 1;
		}
		if (filename && *filename) {
			/* display only: keep the last path component, capped */
			const char *b = filename, *q;
			for (q = filename; *q; q++)
				if (*q == '/' || *q == '\\')
					b = q + 1;
			r->filename = strndup(b, FILENAME_CAP);
		}
		return 0;
	}
	if (!name || !*name) {
		r->part = HARK_PART_SKIP;
		return 0;
	}
	r->part = HARK_PART_FIELD;
	snprintf(r->part_name, sizeof(r->part_name), "%s", name);
	return 0;
}

static int mp_data(void *user, const void *p, size_t n)
{
	struct hark_req *r = user;
	const unsigned char *b = p;

	if (r->body_error)
		return 1;
	if (r->part == HARK_PART_FILE) {
		if (r->text_file)
			return text_append(r, b, n);
		if (!r->sniffed) {
			size_t take = HARK_HEAD_BYTES - r->head_len;
			if (!r->head && !(r->head = malloc(HARK_HEAD_BYTES)))
				return early_error(r, 500, "internal", "out of memory");
			if (take > n)
				take = n;
			memcpy(r->head + r->head_len, b, take);
			r->head_len += take;
			b += take;
			n -= take;
			if (r->head_len < HARK_HEAD_BYTES)
				return 0;
			if (sniff_now(r))
				return 1;
			if (r->text_file)
				return text_append(r, b, n);
		}
		if (n && hark_server_upload_append(r, b, n) != HARK_OK) {
			r->retry_after = 1;
			return early_error(r, 503, "overloaded",
					   "the server is overloaded; retry shortly");
		}
		return 0;
	}
	if (r->part == HARK_PART_FIELD) {
		char *nf;
		if (r->field_len + n > FIELD_CAP)
			return early_error(r, 400, "bad_request", "form field %s is too long",
					   r->part_name);
		nf = realloc(r->field, r->field_len + n + 1);
		if (!nf)
			return early_error(r, 500, "internal", "out of memory");
		memcpy(nf + r->field_len, b, n);
		r->field = nf;
		r->field_len += n;
		r->field[r->field_len] = '\0';
	}
	return 0;
}

static int mp_end(void *user)
{
	struct hark_req *r = user;
	const char *v = r->field ? r->field : "";

	if (r->body_error)
		return 1;
	if (r->part == HARK_PART_FILE) {
		r->file_done = 1;
		if (!r->sniffed && sniff_now(r))
			return 1;
	} else if (r->part == HARK_PART_FIELD) {
		const char *k = r->part_name;
		if (strcmp(k, "options") == 0) {
			free(r->options_text);
			r->options_text = r->field;
			r->field = NULL;
		} else if (r->route == HARK_ROUTE_JOBS && strcmp(k, "type") == 0) {
			if (strcmp(v, "transcribe") != 0 && strcmp(v, "analyze") != 0 &&
			    strcmp(v, "run") != 0 && !is_visual_type(v))
				return early_error(r, 400, "bad_request",
						   "type: \"%.32s\" is not an upload job type "
						   "(transcribe, analyze, run, diagram or video)", v);
			snprintf(r->sub_type, sizeof(r->sub_type), "%s", v);
		} else if (r->route == HARK_ROUTE_JOBS &&
			   (strcmp(k, "name") == 0 || strcmp(k, "date") == 0 ||
			    strcmp(k, "batch") == 0 || strcmp(k, "chunk_tokens") == 0 ||
			    strcmp(k, "overlap_tokens") == 0 || strcmp(k, "offline") == 0 ||
			    strcmp(k, "force") == 0 || strcmp(k, "diagram_type") == 0 ||
			    strcmp(k, "dark") == 0 || strcmp(k, "title") == 0 ||
			    strcmp(k, "max_nodes") == 0 || strcmp(k, "size") == 0 ||
			    strcmp(k, "fps") == 0 || strcmp(k, "captions") == 0)) {
			char err[256] = "";
			if (hark_job_options_set(&r->opts, k, v, err, sizeof(err)) != HARK_OK)
				return early_error(r, 400, "invalid_option", "%s",
						   err[0] ? err : "invalid option");
		} else if (r->route == HARK_ROUTE_OPENAI) {
			if (strcmp(k, "model") == 0)
				snprintf(r->oa_model, sizeof(r->oa_model), "%s", v);
			else if (strcmp(k, "language") == 0)
				snprintf(r->oa_language, sizeof(r->oa_language), "%s", v);
			else if (strcmp(k, "prompt") == 0) {
				free(r->oa_prompt);
				r->oa_prompt = r->field;
				r->field = NULL;
			} else if (strcmp(k, "response_format") == 0)
				snprintf(r->oa_format, sizeof(r->oa_format), "%s", v);
			else if (strcmp(k, "temperature") == 0)
				snprintf(r->oa_temperature, sizeof(r->oa_temperature), "%s", v);
			else if (strcmp(k, "timestamp_granularities[]") == 0 ||
				 strcmp(k, "timestamp_granularities") == 0) {
				if (strstr(v, "word"))
					r->oa_word = 1;
				if (strstr(v, "segment"))
					r->oa_segment = 1;
			}
		}
	}
	free(r->field);
	r->field = NULL;
	r->field_len = 0;
	r->part = HARK_PART_NONE;
	return 0;
}

static const struct hark_multipart_cb mp_cb = {mp_begin, mp_data, mp_end};

/* Options of an OpenAI request from its form fields. Returns 1 on error. */
static int openai_options(struct hark_req *r, char *err, size_t errlen)
{
	struct hark_job_options *o = &r->opts;
	const char *m = r->oa_model;
	int rc = 0;

	if (m[0] && strncmp(m, "whisper-1", 9) != 0 && strncmp(m, "gpt-4o", 6) != 0)
		rc = hark_job_options_set(o, "model", m, err, errlen);
	if (!rc && r->oa_language[0])
		rc = hark_job_options_set(o, "language", r->oa_language, err, errlen);
	if (!rc && r->oa_prompt && r->oa_prompt[0])
		rc = hark_job_options_set(o, "prompt", r->oa_prompt, err, errlen);
	if (!rc && r->oa_temperature[0])
		rc = hark_job_options_set(o, "temperature", r->oa_temperature, err, errlen);
	if (!rc && (r->oa_word || r->oa_segment))
		rc = hark_job_options_set(o, "word_timestamps", r->oa_word ? "true" : "false", err,
					  errlen);
	if (rc)
		return 1;
	if (r->oa_format[0] && strcmp(r->oa_format, "json") != 0 &&
	    strcmp(r->oa_format, "text") != 0 && strcmp(r->oa_format, "srt") != 0 &&
	    strcmp(r->oa_format, "vtt") != 0 && strcmp(r->oa_format, "verbose_json") != 0) {
		snprintf(err, errlen, "response_format: unknown format \"%.32s\"", r->oa_format);
		return 1;
	}
	o->priority = HARK_PRIO_REALTIME;
	return 0;
}

static void start_upload_submit(struct hark_req *r)
{
	if (r->route == HARK_ROUTE_OPENAI) {
		struct hark_stream *s = r->stream;
		if (!s)
			s = hark_server_stream_new(r, HARK_STREAM_WAIT, 0);
		if (!s) {
			answer_error(r, 500, "internal", "out of memory");
			return;
		}
		/* subscribe before the job exists so that its end cannot be missed */
		hark_hub_subscribe(r->srv->hub, &s->sub, r->job_id);
		/* the answer comes when the job ends, however long it runs */
		hark_server_hold(r);
		if (hark_server_submit(r, submit_upload_task, openai_submit_done) != HARK_OK) {
			hark_hub_unsubscribe(r->srv->hub, &s->sub);
			r->retry_after = 1;
			answer_error(r, 503, "overloaded", "the server is overloaded; retry shortly");
		}
		return;
	}
	submit_or_503(r, submit_upload_task, NULL);
}

void hark_api_upload_report(struct hark_req *r)
{
	if (!r->await_writer || r->body_error || r->resp_ready || r->task_busy)
		return;
	if (hark_server_upload_busy(r->up))
		return;
	r->await_writer = 0;
	start_upload_submit(r);
}

/* ---- request entry points ------------------------------------------------------------- */

/* Options given to a job type they do not apply to: 1 with err. Analysis
 * options (name, batch, chunk_tokens, overlap_tokens) belong to analyze and
 * run jobs; date, offline and force to those and to diagram and video jobs;
 * the diagram options to diagram and video jobs; size, fps and captions to
 * video jobs. */
static int analysis_options_misplaced(const struct hark_req *r, const char *type, char *err,
				      size_t errlen)
{
	const struct hark_job_options *o = &r->opts;
	int analysis = strcmp(type, "analyze") == 0 || strcmp(type, "run") == 0;
	int visual = is_visual_type(type), video = strcmp(type, "video") == 0;

	if (!analysis && (o->name[0] || o->batch > 0 || o->chunk_tokens > 0 ||
			  o->overlap_tokens >= 0)) {
		snprintf(err, errlen, "options: name, batch, chunk_tokens and overlap_tokens apply "
			 "to analyze and run jobs only (this is a %s job)", type);
		return 1;
	}
	if (!analysis && !visual && hark_job_options_has_analysis(o)) {
		snprintf(err, errlen, "options: name, date, batch, chunk_tokens, overlap_tokens, "
			 "offline and force apply to analyze, run, diagram and video jobs only "
			 "(this is a %s job)", type);
		return 1;
	}
	if (!visual && hark_job_options_has_visual(o)) {
		snprintf(err, errlen, "options: diagram_type, dark, title, max_nodes, size, fps "
			 "and captions apply to diagram and video jobs only (this is a %s job)",
			 type);
		return 1;
	}
	if (!video && hark_job_options_has_video(o)) {
		snprintf(err, errlen, "options: size, fps and captions apply to video jobs only "
			 "(this is a %s job)", type);
		return 1;
	}
	return 0;
}

static int json_body_done(struct hark_req *r)
{
	json_error_t jerr;
	json_t *root, *v, *opt = NULL;
	const char *k, *type = NULL;
	char err[256] = "";
	char *text = NULL;
	int rc = 0;

	root = json_loadb(r->json ? r->json : "", r->json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		answer_error(r, 400, "invalid_json", root ? "expected a JSON object" : jerr.text);
		return 0;
	}
	json_object_foreach(root, k, v) {
		if (strcmp(k, "type") == 0) {
			if (!json_is_string(v)) {
				rc = 1;
				snprintf(err, sizeof(err), "type: expected a string");
			} else {
				type = json_string_value(v);
			}
		} else if (strcmp(k, "options") == 0) {
			opt = v;
		} else if (strcmp(k, "transcript") == 0) {
			if (json_is_string(v))
				text = strdup(json_string_value(v));
			else if (json_is_object(v))
				text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
			else {
				rc = 1;
				snprintf(err, sizeof(err),
					 "transcript: expected a hark JSON object or a string");
			}
		} else {
			rc = 1;
			snprintf(err, sizeof(err), "%.64s: unknown field", k);
		}
		if (rc)
			break;
	}
	if (!rc && type && strcmp(type, "noop") != 0 && strcmp(type, "transcript") != 0 &&
	    strcmp(type, "analyze") != 0 && strcmp(type, "diagram") != 0) {
		rc = 1;
		if (strcmp(type, "transcribe") == 0 || strcmp(type, "run") == 0 ||
		    strcmp(type, "video") == 0)
			snprintf(err, sizeof(err),
				 "type: \"%.32s\" needs an audio or video file upload "
				 "(multipart/form-data)", type);
		else
			snprintf(err, sizeof(err), "type: unknown job type \"%.32s\" (transcribe, "
				 "transcript, analyze, run, diagram, video or noop)", type);
	}
	if (!rc && type && strcmp(type, "noop") == 0 && text) {
		rc = 1;
		snprintf(err, sizeof(err), "a noop job takes no transcript");
	}
	if (!rc && !text && !(type && strcmp(type, "noop") == 0)) {
		rc = 2;
		snprintf(err, sizeof(err), "expected \"transcript\" or \"type\": \"noop\"");
	}
	if (rc) {
		json_decref(root);
		free(text);
		answer_error(r, 400, rc == 2 ? "missing_file" : "bad_request", err);
		return 0;
	}
	if (opt) {
		char *s = json_dumps(opt, JSON_COMPACT | JSON_ENCODE_ANY);
		int orc = s ? hark_job_options_parse(s, strlen(s), &r->opts, err, sizeof(err))
			    : HARK_ERR_NOMEM;
		free(s);
		if (orc) {
			json_decref(root);
			free(text);
			answer_error(r, 400, "invalid_option", err[0] ? err : "invalid options");
			return 0;
		}
	}
	if (type && (strcmp(type, "analyze") == 0 || strcmp(type, "diagram") == 0))
		snprintf(r->sub_type, sizeof(r->sub_type), "%s", type);
	if (analysis_options_misplaced(r, type ? type : text ? "transcript" : "noop", err,
				       sizeof(err))) {
		json_decref(root);
		free(text);
		answer_error(r, 400, "invalid_option", err);
		return 0;
	}
	json_decref(root);
	free(r->json);
	r->json = text; /* now: the transcript text, or NULL for noop */
	r->json_len = text ? strlen(text) : 0;
	submit_or_503(r, submit_json_task, NULL);
	return 0;
}

/* The whole multipart body of a text upload (type analyze or diagram, or a
 * text file whose type field never said so) has arrived. */
static int text_upload_done(struct hark_req *r)
{
	char err[256] = "";

	if (strcmp(r->sub_type, "video") == 0) {
		reject_upload(r, "unsupported_media_type");
		early_error(r, 415, "unsupported_media_type",
			    "a video job needs an audio or video upload (its sound track is the "
			    "video's); for a transcript use type=diagram");
		return 0;
	}
	if (strcmp(r->sub_type, "diagram") == 0 && r->text_file) {
		/* a transcript to draw; the checks below are those of analyze */
	} else if (strcmp(r->sub_type, "analyze") != 0) {
		reject_upload(r, "unsupported_media_type");
		early_error(r, 415, "unsupported_media_type",
			    "the upload is not audio or video hark can read (a transcript "
			    "file needs the form field type=analyze or type=diagram)");
		return 0;
	}
	if (!r->text_file) {
		reject_upload(r, "unsupported_media_type");
		early_error(r, 415, "unsupported_media_type",
			    "an analyze upload must be a text transcript (use type=run for "
			    "audio or video)");
		return 0;
	}
	if (r->json_len == 0) {
		early_error(r, 400, "missing_file", "the file part is empty");
		return 0;
	}
	if (memchr(r->json, '\0', r->json_len) ||
	    !hark_textnorm_utf8_valid(r->json, r->json_len)) {
		reject_upload(r, "unsupported_media_type");
		early_error(r, 415, "unsupported_media_type",
			    "a transcript upload must be UTF-8 text (SRT, VTT, JSON or plain text)");
		return 0;
	}
	if (r->options_text &&
	    hark_job_options_parse(r->options_text, strlen(r->options_text), &r->opts, err,
				   sizeof(err))) {
		early_error(r, 400, "invalid_option", "%s", err[0] ? err : "invalid options");
		return 0;
	}
	if (analysis_options_misplaced(r, r->sub_type, err, sizeof(err))) {
		early_error(r, 400, "invalid_option", "%s", err);
		return 0;
	}
	submit_or_503(r, submit_json_task, NULL);
	return 0;
}

int hark_api_body_done(struct hark_req *r)
{
	char err[256] = "";

	if (r->body_done)
		return 0;
	r->body_done = 1;
	if (r->body_error || r->resp_ready)
		return 0;
	if (r->body_kind == 1)
		return json_body_done(r);
	if (r->body_kind != 2)
		return 0;
	if (hark_multipart_finish(r->mp) != HARK_OK) {
		reject_upload(r, "malformed");
		early_error(r, 400, "bad_request", "malformed multipart body: %s",
			    hark_multipart_error(r->mp));
		return 0;
	}
	if (!r->file_seen || !r->sniffed) {
		early_error(r, 400, "missing_file", "no file part in the form");
		return 0;
	}
	if (r->route == HARK_ROUTE_JOBS && (r->text_file || strcmp(r->sub_type, "analyze") == 0))
		return text_upload_done(r);
	if (r->route == HARK_ROUTE_JOBS && r->options_text &&
	    hark_job_options_parse(r->options_text, strlen(r->options_text), &r->opts, err,
				   sizeof(err))) {
		early_error(r, 400, "invalid_option", "%s", err[0] ? err : "invalid options");
		return 0;
	}
	if (r->route == HARK_ROUTE_JOBS &&
	    analysis_options_misplaced(r, r->sub_type[0] ? r->sub_type : "transcribe", err,
				       sizeof(err))) {
		early_error(r, 400, "invalid_option", "%s", err);
		return 0;
	}
	if (r->route == HARK_ROUTE_OPENAI) {
		if (openai_options(r, err, sizeof(err))) {
			early_error(r, 400, "invalid_option", "%s", err);
			return 0;
		}
		/* the job may take a while: free the header table meanwhile */
		lws_http_headers_detach(r->wsi);
	}
	hark_server_upload_finish(r);
	r->await_writer = 1;
	hark_api_upload_report(r);
	return 0;
}

int hark_api_body(struct hark_req *r, const void *p, size_t n)
{
	const struct hark_server_params *prm = r->srv->p;
	int rc;

	if (r->body_error || r->body_done || !n)
		return 0;
	r->body_bytes += (int64_t)n;
	if (r->body_kind == 1) {
		char *nj;
		if (r->json_len + n > prm->max_json_bytes) {
			reject_upload(r, "too_large");
			early_error(r, 413, "payload_too_large", "JSON body exceeds %zu bytes",
				    prm->max_json_bytes);
			return 0;
		}
		nj = realloc(r->json, r->json_len + n + 1);
		if (!nj) {
			early_error(r, 500, "internal", "out of memory");
			return 0;
		}
		memcpy(nj + r->json_len, p, n);
		r->json = nj;
		r->json_len += n;
		r->json[r->json_len] = '\0';
		return 0;
	}
	if (r->body_kind != 2)
		return 0;
	if (r->body_bytes > prm->max_body_bytes + (64 << 10)) {
		reject_upload(r, "too_large");
		early_error(r, 413, "payload_too_large", "upload exceeds %lld MB",
			    (long long)(prm->max_body_bytes >> 20));
		return 0;
	}
	rc = hark_multipart_feed(r->mp, p, n);
	if (rc == HARK_ERR_CANCELED || r->body_error)
		return 0;
	if (rc) {
		reject_upload(r, "malformed");
		early_error(r, 400, "bad_request", "malformed multipart body: %s",
			    hark_multipart_error(r->mp));
	}
	return 0;
}

/* Sets up reading the body of a submission. */
static int begin_submission(struct hark_req *r)
{
	struct hark_srv *srv = r->srv;
	const struct hark_server_params *p = srv->p;
	char ct[512] = "";
	int64_t cl = r->content_length;

	if (cl < 0 && !r->chunked) {
		r->close_after = 1;
		answer_error(r, 400, "bad_request", "a body with Content-Length or chunked encoding is required");
		return 0;
	}
	if (atomic_load(&srv->draining)) {
		r->retry_after = 5;
		answer_error(r, 503, "draining", "the server is shutting down");
		return 0;
	}
	if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0)
		lws_hdr_copy(r->wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE);
	if (r->route == HARK_ROUTE_JOBS && strncasecmp(ct, "application/json", 16) == 0) {
		if (cl > (int64_t)p->max_json_bytes) {
			reject_upload(r, "too_large");
			answer_error(r, 413, "payload_too_large", "JSON body too large");
			return 0;
		}
		r->body_kind = 1;
	} else if (strncasecmp(ct, "multipart/form-data", 19) == 0) {
		if (cl > p->max_body_bytes + (64 << 10)) {
			reject_upload(r, "too_large");
			hark_server_set_error(r, 413, "payload_too_large", "upload exceeds %lld MB",
					      (long long)(p->max_body_bytes >> 20));
			hark_server_respond(r);
			return 0;
		}
		if (hark_multipart_new(ct, &mp_cb, r, &r->mp) != HARK_OK) {
			answer_error(r, 400, "bad_request", "multipart/form-data without a valid boundary");
			return 0;
		}
		r->body_kind = 2;
	} else {
		answer_error(r, 400, "bad_request",
			     r->route == HARK_ROUTE_OPENAI
				     ? "expected multipart/form-data"
				     : "expected multipart/form-data or application/json");
		return 0;
	}
	if (hark_store_new_job_id(r->job_id) != HARK_OK) {
		answer_error(r, 500, "internal", "cannot make a job id");
		return 0;
	}
	r->body_started = 1;
	r->last_rx = hark_server_now();
	if (lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_EXPECT) > 0) {
		char ex[32] = "";
		if (lws_hdr_copy(r->wsi, ex, sizeof(ex), WSI_TOKEN_HTTP_EXPECT) > 0 &&
		    strcasecmp(ex, "100-continue") == 0) {
			/* lws does not answer Expect: tell the client to send the body */
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			unsigned char *b = r->srv->wbuf + LWS_PRE;
			memcpy(b, cont, sizeof(cont) - 1);
			if (lws_write(r->wsi, b, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) < 0)
				return -1;
		}
	}
	return 0;
}

/* URL argument name into out (outlen bytes; "" when absent; longer
 * values are cut at a character boundary). */
static void url_arg_long(struct hark_req *r, const char *name, char *out, size_t outlen)
{
	char key[40], buf[1200];
	const char *v;
	size_t n;

	out[0] = '\0';
	snprintf(key, sizeof(key), "%s=", name);
	v = lws_get_urlarg_by_name(r->wsi, key, buf, (int)sizeof(buf));
	if (!v)
		return;
	n = strlen(v);
	if (n >= outlen) {
		n = outlen - 1;
		while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, v, n);
	out[n] = '\0';
}

/* Search kinds (the document kinds analysis stores). */
static const char *const search_kinds[] = {"chunk",  "summary",  "topic",
					   "decision", "action", "question"};

/* Arguments of /v1/search. Returns 1 when an error answer was set. */
static int search_args(struct hark_req *r)
{
	char buf[64];
	const char *q;

	r->q_limit = 10;
	url_arg_long(r, "q", r->q_text, sizeof(r->q_text));
	for (q = r->q_text; *q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'; q++)
		;
	if (!*q) {
		hark_server_set_error(r, 400, "missing_query",
				      "the query argument q is required (e.g. /v1/search?q=budget)");
		return 1;
	}
	if (!hark_textnorm_utf8_valid(r->q_text, strlen(r->q_text))) {
		hark_server_set_error(r, 400, "bad_request", "q is not valid UTF-8");
		return 1;
	}
	if (url_arg(r, "limit", buf, sizeof(buf))) {
		int64_t v;
		if (parse_i64(buf, &v) || v < 1 || v > SEARCH_MAX) {
			hark_server_set_error(r, 400, "bad_request", "limit must be 1..%d",
					      SEARCH_MAX);
			return 1;
		}
		r->q_limit = (long)v;
	}
	if (url_arg(r, "kind", r->q_kind, sizeof(r->q_kind)) && r->q_kind[0]) {
		int ok = 0;
		for (size_t i = 0; i < sizeof(search_kinds) / sizeof(search_kinds[0]); i++)
			ok |= strcmp(r->q_kind, search_kinds[i]) == 0;
		if (!ok) {
			hark_server_set_error(r, 400, "bad_request",
					      "kind must be one of chunk, summary, topic, decision, "
					      "action, question");
			return 1;
		}
	}
	url_arg_long(r, "meeting", r->q_meeting, sizeof(r->q_meeting));
	return 0;
}

/* GET /v1/search (task). */
static void search_task(struct hark_req *r)
{
	struct hark_search_params sp = hark_search_default_params();
	struct hark_search_hit *hits = NULL;
	char err[512] = "";
	size_t n = 0;
	json_t *o;
	int rc;

	sp.limit = (size_t)r->q_limit;
	sp.kind = r->q_kind[0] ? r->q_kind : NULL;
	sp.meeting = r->q_meeting[0] ? r->q_meeting : NULL;
	sp.hybrid = r->srv->llm && r->srv->embed;
	rc = hark_search_query(r->srv->st, sp.hybrid ? r->srv->llm : NULL, r->q_text, &sp, &hits,
			       &n, err, sizeof(err));
	if (rc == HARK_ERR_INVALID_ARG) {
		hark_metrics_add(r->srv->metrics, "hark_searches_total", "result=\"bad_request\"", 1);
		hark_server_set_error(r, 400, "bad_query", "%s", err[0] ? err : "invalid query");
		return;
	}
	if (rc != HARK_OK) {
		hark_metrics_add(r->srv->metrics, "hark_searches_total", "result=\"error\"", 1);
		hark_server_set_error(r, 500, "internal", "search failed: %s",
				      err[0] ? err : hark_strerror(rc));
		return;
	}
	if (err[0])
		hark_server_log("warn", "search fell back to BM25", "detail", err, (char *)NULL);
	o = hark_search_hits_to_json(r->q_text, hits, n);
	hark_search_hits_free(hits, n);
	hark_metrics_add(r->srv->metrics, "hark_searches_total",
			 n ? "result=\"hits\"" : "result=\"empty\"", 1);
	if (!o) {
		hark_server_set_error(r, 500, "internal", "out of memory");
		return;
	}
	respond_json(r, 200, o);
}

static int query_args(struct hark_req *r)
{
	char buf[64];

	if (r->route == HARK_ROUTE_SEARCH)
		return search_args(r);
	if (url_arg(r, "format", r->q_format, sizeof(r->q_format))) {
		r->q_format_set = 1;
		if (strcmp(r->q_format, "json") && strcmp(r->q_format, "txt") &&
		    strcmp(r->q_format, "srt") && strcmp(r->q_format, "vtt") &&
		    strcmp(r->q_format, "minutes") && strcmp(r->q_format, "minutes.md") &&
		    strcmp(r->q_format, "graph") && strcmp(r->q_format, "diagram") &&
		    strcmp(r->q_format, "svg") && strcmp(r->q_format, "png") &&
		    strcmp(r->q_format, "mp4") && strcmp(r->q_format, "summary")) {
			hark_server_set_error(r, 404, "not_found", "unknown result format \"%s\"",
					      r->q_format);
			return 1;
		}
	} else {
		snprintf(r->q_format, sizeof(r->q_format), "json");
	}
	if (url_arg(r, "status", r->q_status, sizeof(r->q_status)) && r->q_status[0]) {
		int st;
		if (hark_store_status_parse(r->q_status, &st) != HARK_OK) {
			hark_server_set_error(r, 400, "bad_request", "unknown status \"%s\"",
					      r->q_status);
			return 1;
		}
	}
	if (url_arg(r, "limit", buf, sizeof(buf))) {
		int64_t v;
		if (parse_i64(buf, &v) || v < 1 || v > LIST_MAX) {
			hark_server_set_error(r, 400, "bad_request", "limit must be 1..%d", LIST_MAX);
			return 1;
		}
		r->q_limit = (long)v;
	}
	if (url_arg(r, "cursor", buf, sizeof(buf)) && buf[0]) {
		if (!valid_job_id(buf, strlen(buf))) {
			hark_server_set_error(r, 400, "bad_request", "invalid cursor");
			return 1;
		}
		memcpy(r->q_cursor, buf, strlen(buf) + 1); /* valid_job_id: < HARK_ID_LEN */
	}
	if (url_arg(r, "purge", buf, sizeof(buf)))
		r->q_purge = strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0;
	return 0;
}

int hark_api_http(struct hark_req *r, const char *path)
{
	struct hark_srv *srv = r->srv;
	char *uri = NULL;
	int uri_len = 0;

	r->method = lws_http_get_uri_and_method(r->wsi, &uri, &uri_len);
	if (r->method < 0 || r->method >= (int)(sizeof(method_names) / sizeof(method_names[0])))
		r->method = LWSHUMETH_GET;
	r->method_name = method_names[r->method];
	hark_api_route(r, path);
	if (body_framing(r) || check_limits(r, uri_len)) {
		hark_server_respond(r);
		return 0;
	}
	if (r->method == LWSHUMETH_HEAD) {
		/* HEAD: as GET without the body, for the plain GET routes */
		if (r->route == HARK_ROUTE_JOB_EVENTS || r->route == HARK_ROUTE_JOB_WS ||
		    r->route == HARK_ROUTE_OPENAI) {
			r->allow = allowed_methods(r->route);
			hark_server_set_error(r, 405, "method_not_allowed", "HEAD is not allowed here");
			hark_server_respond(r);
			return 0;
		}
		r->method = LWSHUMETH_GET;
		r->head_only = 1;
	}
	if (r->method == LWSHUMETH_OPTIONS) {
		r->allow = r->route == HARK_ROUTE_NONE ? "OPTIONS" : allowed_methods(r->route);
		hark_server_set_response(r, 204, "text/plain", NULL, 0);
		hark_server_respond(r);
		return 0;
	}
	if (r->route == HARK_ROUTE_NONE) {
		answer_error(r, 404, "not_found", "no such route");
		return 0;
	}
	if (!method_ok(r->route, r->method)) {
		r->allow = allowed_methods(r->route);
		hark_server_set_error(r, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)",
				      r->method_name, r->allow);
		hark_server_respond(r);
		return 0;
	}
	switch (r->route) {
	case HARK_ROUTE_HEALTHZ: {
		static const char ok[] = "{\"status\":\"ok\"}";
		hark_server_set_response(r, 200, "application/json", strdup(ok), sizeof(ok) - 1);
		hark_server_respond(r);
		return 0;
	}
	case HARK_ROUTE_METRICS: {
		size_t len = 0;
		char *m = hark_api_metrics_text(srv, &len);
		if (!m) {
			answer_error(r, 500, "internal", "cannot render metrics");
			return 0;
		}
		hark_server_set_response(r, 200, "text/plain; version=0.0.4; charset=utf-8", m, len);
		hark_server_respond(r);
		return 0;
	}
	case HARK_ROUTE_READYZ:
		submit_or_503(r, readyz_task, NULL);
		return 0;
	default:
		break;
	}
	/* /v1/... */
	if (authenticate(r) || query_args(r)) {
		hark_server_respond(r);
		return 0;
	}
	if (r->route != HARK_ROUTE_JOBS && r->route != HARK_ROUTE_OPENAI &&
	    r->route != HARK_ROUTE_SEARCH && !r->job_id[0]) {
		answer_error(r, 404, "not_found", "job not found");
		return 0;
	}
	switch (r->route) {
	case HARK_ROUTE_JOBS:
		if (r->method == LWSHUMETH_GET) {
			submit_or_503(r, list_task, NULL);
			return 0;
		}
		return begin_submission(r);
	case HARK_ROUTE_OPENAI:
		return begin_submission(r);
	case HARK_ROUTE_JOB:
		if (r->method == LWSHUMETH_DELETE)
			submit_or_503(r, delete_task, delete_done);
		else
			submit_or_503(r, job_get_task, NULL);
		return 0;
	case HARK_ROUTE_JOB_PROGRESS:
		submit_or_503(r, progress_task, NULL);
		return 0;
	case HARK_ROUTE_JOB_RESULT:
		submit_or_503(r, result_task, NULL);
		return 0;
	case HARK_ROUTE_JOB_EVENTS:
		start_stream(r, HARK_STREAM_SSE);
		if (r->stream)
			begin_history(r);
		return 0;
	case HARK_ROUTE_JOB_WS:
		answer_error(r, 400, "bad_request", "this route needs a WebSocket upgrade");
		return 0;
	case HARK_ROUTE_SEARCH:
		submit_or_503(r, search_task, NULL);
		return 0;
	default:
		answer_error(r, 404, "not_found", "no such route");
		return 0;
	}
}

int hark_api_ws_filter(struct hark_req *r, const char *path)
{
	r->method = LWSHUMETH_GET;
	r->method_name = "GET";
	hark_api_route(r, path);
	if (check_limits(r, (int)strlen(path)))
		return 1;
	if (r->route != HARK_ROUTE_JOB_WS) {
		hark_server_set_error(r, 404, "not_found", "no WebSocket route here");
		return 1;
	}
	if (authenticate(r))
		return 1;
	if (!hark_server_stream_new(r, HARK_STREAM_WS, last_event_id(r))) {
		hark_server_set_error(r, 500, "internal", "out of memory");
		return 1;
	}
	return 0;
}

void hark_api_ws_established(struct hark_req *r)
{
	if (!r->stream)
		return;
	begin_history(r);
}
