/*
 * The LLM client (contract in llm.h). Two kinds of threads cooperate:
 *  - one transfer thread owns the curl multi handle. It walks the list of
 *    pending attempts in FIFO order, picks each attempt's model (the first
 *    candidate of its route, from the item's current position, whose breaker
 *    admits calls), and starts it once the model has a free concurrency slot
 *    and the rate limiter grants a reservation; finished transfers go back to
 *    the batch that owns them;
 *  - the calling thread of hark_llm_run owns its batch: it answers items from
 *    the cache, queues the rest, and processes every finished transfer of its
 *    own (parse, usage accounting, schema validation, repair, retry with
 *    backoff, failover, cache write), so JSON and store work never stall the
 *    transfer thread.
 * One mutex (c->mu) guards the pending list, model states (breakers,
 * in-flight counts, limiter wait hints), batches' done lists and totals.
 */
#include "llm/llm.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "hark/hark.h"
#include "llm/breaker.h"
#include "llm/http.h"
#include "llm/limiter.h"
#include "llm/schema.h"
#include "llm/tokens.h"
#include "server/metrics.h"
#include "store/store.h"

#define KIND_CHAT 0
#define KIND_EMBED 1
#define MAX_WAIT_MS 250
#define BUSY_WAIT_MS 50
#define MIN_CONNECT_TIMEOUT_S 0.25
#define MIN_TIMEOUT_S 0.5

struct batch;

/* One item of a batch: a chat request, or one group of embedding inputs. */
struct item {
	struct batch *b;
	size_t index;
	int kind;
	const struct hark_llm_request *req; /* chat */
	const char *task;
	const char *job_id, *key_id;
	json_t *messages;          /* chat: base messages (+ repair turns) */
	const struct hark_llm_schema *schema;
	const char *schema_name;
	char *schema_prompt;       /* "...matching this JSON Schema:\n{...}" */
	json_t *inputs;            /* embed: array of strings */
	size_t *cands;             /* candidate model indices (fit the prompt) */
	size_t n_cands;
	size_t cur;                /* first candidate still usable */
	int *tries;                /* per candidate */
	char (*hashes)[65];        /* cache key per candidate ("" = none) */
	int retries;               /* retries so far (for backoff exponent) */
	long prompt_est;           /* estimated prompt tokens */
	long schema_prompt_tokens; /* extra prompt tokens where the schema travels in the prompt */
	long max_tokens;           /* requested completion cap (0 = per model) */
	double t_submit;
	int done;
	struct hark_llm_result *res;  /* chat */
	/* embed */
	size_t *embed_slots;       /* output rows for the inputs */
	float *embed_out;          /* batch-wide output (owned by the batch) */
};

/* One HTTP request in the making or in flight. */
struct attempt {
	struct attempt *next;
	struct item *it;
	double not_before;         /* provider time */
	int is_retry;
	int is_repair;
	/* set at admission */
	size_t model;
	size_t cand_pos;
	int64_t ticket;
	long max_eff;
	double reserved;
	double t_start;
	int probe;
	struct hark_llm_xfer *x;
	char *body;
	size_t body_model;         /* the model body was built for */
	struct hark_llm_xfer_result res;
	int canceled;
};

struct batch {
	pthread_cond_t cond;
	struct attempt *done_head, *done_tail;
	volatile int cancel;
	size_t outstanding;        /* attempts queued or in flight */
	/* embed */
	float *vectors;
	size_t dim;
	int embed_failed;
	char embed_error[256];
	int64_t tokens_in;         /* embed: billed input tokens */
	double cost_usd;
};

struct model_state {
	const struct hark_llm_model *m;
	struct hark_llm_breaker br;
	int inflight;
	double wait_until;         /* limiter said: nothing before this */
	unsigned blocked_iter;
	int state_pub;             /* breaker state as last published */
};

struct hark_llm {
	const struct hark_llm_config *cfg;
	struct hark_store *store;
	struct hark_metrics *metrics;
	struct hark_llm_limiter *limiter;
	int no_cache;

	pthread_mutex_t mu;
	pthread_t thread;
	int thread_started;
	int stopping;
	CURLM *multi;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

	struct model_state *ms;
	struct attempt *pend_head, *pend_tail;
	unsigned iter;
	uint64_t rng;
	struct hark_llm_totals tot;
};

/* ------------------------------------------------------------ helpers ---- */

static double real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double hark_llm_now(const struct hark_llm *c)
{
	return real_now() * c->cfg->time_scale;
}

static double rand01(struct hark_llm *c)
{
	/* xorshift64*; caller holds c->mu */
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void set_error(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_error(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
		hex[0] = 0;
		return;
	}
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void metric_labels(char *out, size_t cap, const char *model)
{
	char esc[200];

	hark_metrics_escape(model, esc, sizeof(esc));
	snprintf(out, cap, "model=\"%s\"", esc);
}

static void declare_metrics(struct hark_metrics *m)
{
	static const double lat[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 120, 300};

	if (!m)
		return;
	hark_metrics_declare(m, "hark_llm_requests_total",
			     "LLM HTTP requests by model and outcome (HTTP status or transport error)",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_request_seconds",
			     "LLM request latency in provider seconds", HARK_METRIC_HISTOGRAM, lat,
			     sizeof(lat) / sizeof(lat[0]));
	hark_metrics_declare(m, "hark_llm_retries_total", "LLM requests that were retries",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_rate_limited_total", "LLM 429 responses",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_breaker_state",
			     "Circuit breaker state per model (0 closed, 1 half-open, 2 open)",
			     HARK_METRIC_GAUGE, NULL, 0);
	hark_metrics_declare(m, "hark_llm_cache_hits_total", "LLM replies served from the cache",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_cache_misses_total",
			     "LLM requests not found in the cache", HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_tokens_total",
			     "LLM tokens billed by model and direction (in, out)",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_cost_usd_total", "LLM cost in US dollars by model",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_items_total",
			     "LLM work items finished by outcome (ok, cached, failed)",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_failovers_total",
			     "LLM items moved to a later model of their route", HARK_METRIC_COUNTER,
			     NULL, 0);
	hark_metrics_declare(m, "hark_llm_repairs_total", "LLM repair requests for invalid JSON",
			     HARK_METRIC_COUNTER, NULL, 0);
	hark_metrics_declare(m, "hark_llm_inflight", "LLM requests in flight per model",
			     HARK_METRIC_GAUGE, NULL, 0);
}

/* caller holds c->mu */
static void publish_breaker(struct hark_llm *c, struct model_state *ms)
{
	char lb[256];

	if (ms->state_pub == ms->br.state)
		return;
	ms->state_pub = ms->br.state;
	if (!c->metrics)
		return;
	metric_labels(lb, sizeof(lb), ms->m->key);
	hark_metrics_set(c->metrics, "hark_llm_breaker_state", lb, ms->br.state);
}

/* ------------------------------------------------------ curl sharing ---- */

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	struct hark_llm *c = u;

	(void)h;
	(void)a;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	struct hark_llm *c = u;

	(void)h;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_mu[d]);
}

/* ------------------------------------------------------- body building -- */

static json_t *chat_messages_for(const struct item *it, const struct hark_llm_model *m)
{
	json_t *msgs = json_deep_copy(it->messages);

	if (!msgs)
		return NULL;
	if (it->schema && m->structured != HARK_LLM_STRUCT_JSON_SCHEMA && it->schema_prompt) {
		/* the schema travels in the prompt: append it to the first system
		 * message, or add one */
		json_t *first = json_array_get(msgs, 0);
		const char *role = json_string_value(json_object_get(first, "role"));

		if (first && role && !strcmp(role, "system")) {
			const char *old = json_string_value(json_object_get(first, "content"));
			size_t n = strlen(old ? old : "") + strlen(it->schema_prompt) + 3;
			char *s = malloc(n);

			if (!s) {
				json_decref(msgs);
				return NULL;
			}
			snprintf(s, n, "%s\n\n%s", old ? old : "", it->schema_prompt);
			json_object_set_new(first, "content", json_string(s));
			free(s);
		} else {
			json_array_insert_new(msgs, 0,
					      json_pack("{s:s,s:s}", "role", "system", "content",
							it->schema_prompt));
		}
	}
	return msgs;
}

static char *build_body(const struct hark_llm *c, const struct attempt *a)
{
	const struct item *it = a->it;
	const struct hark_llm_model *m = &c->cfg->models[a->model];
	const struct hark_llm_provider *p = &c->cfg->providers[m->provider_index];
	json_t *o = NULL;
	char *s = NULL;

	if (it->kind == KIND_EMBED) {
		o = json_pack("{s:s,s:O}", "model", m->name, "input", it->inputs);
	} else {
		json_t *msgs = chat_messages_for(it, m);

		if (!msgs)
			return NULL;
		o = json_pack("{s:s,s:o,s:f,s:I}", "model", m->name, "messages", msgs,
			      "temperature", it->req->temperature, "max_tokens",
			      (json_int_t)a->max_eff);
		if (o && it->schema) {
			if (m->structured == HARK_LLM_STRUCT_JSON_SCHEMA)
				json_object_set_new(
					o, "response_format",
					json_pack("{s:s,s:{s:s,s:O,s:b}}", "type", "json_schema",
						  "json_schema", "name",
						  it->schema_name ? it->schema_name : "reply",
						  "schema", hark_llm_schema_json(it->schema),
						  "strict", 1));
			else if (m->structured == HARK_LLM_STRUCT_JSON_OBJECT)
				json_object_set_new(o, "response_format",
						    json_pack("{s:s}", "type", "json_object"));
		}
		if (o && p->stream) {
			json_object_set_new(o, "stream", json_true());
			json_object_set_new(o, "stream_options",
					    json_pack("{s:b}", "include_usage", 1));
		}
	}
	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* ------------------------------------------------------ transfer thread -- */

static void push_done(struct attempt *a)
{
	struct batch *b = a->it->b;

	a->next = NULL;
	if (b->done_tail)
		b->done_tail->next = a;
	else
		b->done_head = a;
	b->done_tail = a;
	pthread_cond_broadcast(&b->cond);
}

/* Chooses the model for a due attempt: the first candidate from it->cur
 * whose breaker admits calls. Returns the candidate position or -1 (then
 * *wake is when one may). caller holds c->mu */
static long choose_model(struct hark_llm *c, const struct attempt *a, double now, double *wake)
{
	const struct item *it = a->it;

	for (size_t p = it->cur; p < it->n_cands; p++) {
		struct model_state *ms = &c->ms[it->cands[p]];

		if (it->tries[p] >= c->cfg->max_attempts)
			continue;
		if (hark_llm_breaker_would_allow(&ms->br, now))
			return (long)p;
		double t = hark_llm_breaker_next_at(&ms->br, now);

		if (t < *wake)
			*wake = t;
	}
	return -1;
}

static long max_tokens_for(const struct item *it, const struct hark_llm_model *m)
{
	long mx = it->max_tokens > 0 ? it->max_tokens : m->max_output_tokens;
	long room = m->context_window - it->prompt_est;

	if (it->kind == KIND_EMBED)
		return 0;
	if (it->max_tokens <= 0 && mx > room)
		mx = room;
	return mx > 0 ? mx : 1;
}

/* Picks due attempts that may start now; returns them as a list. Sets *wake
 * (provider time) for the next scan. caller holds c->mu */
static struct attempt *admit(struct hark_llm *c, double now, double *wake)
{
	struct attempt *start = NULL, **stail = &start;
	struct attempt **pp = &c->pend_head, *prev = NULL;
	size_t n_models = c->cfg->n_models, blocked = 0;

	c->iter++;
	while (*pp) {
		struct attempt *a = *pp;
		struct item *it = a->it;
		long pos;
		struct model_state *ms;
		const struct hark_llm_model *m;
		struct hark_llm_limits lim;
		int admitted = 0;
		double retry_at = 0;
		int64_t ticket = 0;

		if (it->b->cancel || c->stopping) {
			a->canceled = 1;
			goto take_done;
		}
		if (a->not_before > now) {
			if (a->not_before < *wake)
				*wake = a->not_before;
			goto skip;
		}
		pos = choose_model(c, a, now, wake);
		if (pos < 0) {
			if (it->cur >= it->n_cands) {
				/* nothing left to try (caller will report) */
				a->canceled = 0;
				a->res.outcome = HARK_LLM_XFER_ERROR;
				snprintf(a->res.error, sizeof(a->res.error), "no model left to try");
				goto take_done;
			}
			goto skip;
		}
		ms = &c->ms[it->cands[pos]];
		m = ms->m;
		if (ms->blocked_iter == c->iter)
			goto skip;
		if (ms->inflight >= m->max_concurrency || now < ms->wait_until) {
			if (now < ms->wait_until && ms->wait_until < *wake)
				*wake = ms->wait_until;
			ms->blocked_iter = c->iter;
			if (++blocked >= n_models)
				break;
			goto skip;
		}
		a->max_eff = max_tokens_for(it, m);
		a->reserved = (double)it->prompt_est + (double)a->max_eff;
		if (it->schema && m->structured != HARK_LLM_STRUCT_JSON_SCHEMA)
			a->reserved += (double)it->schema_prompt_tokens;
		lim.rpm = m->rpm;
		lim.tpm = m->tpm;
		lim.window_s = c->cfg->limit_window_s * (1.0 + c->cfg->limit_margin);
		if (m->rpm > 0 || m->tpm > 0) {
			if (c->limiter->ops->acquire(c->limiter->self, m->key, &lim, a->reserved, now,
						     &admitted, &retry_at, &ticket) != HARK_OK) {
				/* store trouble: try again shortly */
				retry_at = now + 1.0;
				admitted = 0;
			}
			if (!admitted) {
				ms->wait_until = retry_at;
				if (retry_at < *wake)
					*wake = retry_at;
				ms->blocked_iter = c->iter;
				if (++blocked >= n_models)
					break;
				goto skip;
			}
		}
		a->probe = ms->br.state != HARK_LLM_BREAKER_CLOSED;
		hark_llm_breaker_allow(&ms->br, now);
		publish_breaker(c, ms);
		if ((size_t)pos != it->cur) {
			/* moved past an open breaker: later items try the preferred
			 * model again once its breaker lets a probe through */
			c->tot.failovers++;
		}
		a->model = it->cands[pos];
		a->cand_pos = (size_t)pos;
		a->ticket = ticket;
		a->t_start = now;
		ms->inflight++;
		it->tries[pos]++;
		c->tot.requests++;
		if (a->is_retry)
			c->tot.retries++;
		/* unlink into the start list */
		*pp = a->next;
		if (c->pend_tail == a)
			c->pend_tail = prev;
		a->next = NULL;
		*stail = a;
		stail = &a->next;
		continue;
take_done:
		*pp = a->next;
		if (c->pend_tail == a)
			c->pend_tail = prev;
		push_done(a);
		continue;
skip:
		prev = a;
		pp = &a->next;
	}
	return start;
}

static void start_attempt(struct hark_llm *c, struct attempt *a)
{
	const struct hark_llm_model *m = &c->cfg->models[a->model];
	const struct hark_llm_provider *p = &c->cfg->providers[m->provider_index];
	struct hark_llm_xfer_req rq;
	char url[1024];
	double scale = c->cfg->time_scale;

	if (!a->body || a->body_model != a->model) {
		free(a->body);
		a->body = build_body(c, a);
	}
	if (!a->body)
		goto fail;
	snprintf(url, sizeof(url), "%s%s", p->base_url,
		 a->it->kind == KIND_EMBED ? "/embeddings" : "/chat/completions");
	memset(&rq, 0, sizeof(rq));
	rq.url = url;
	rq.api_key = p->api_key;
	rq.body = a->body;
	rq.body_len = strlen(a->body);
	rq.connect_timeout_s = fmax(p->connect_timeout_s / scale, MIN_CONNECT_TIMEOUT_S);
	rq.timeout_s = p->timeout_s > 0 ? fmax(p->timeout_s / scale, MIN_TIMEOUT_S) : 0;
	/* the idle timeout guards streams; a non-streaming reply legitimately
	 * sends nothing until the whole completion is generated */
	rq.idle_timeout_s = p->stream && p->idle_timeout_s > 0
				    ? fmax(p->idle_timeout_s / scale, MIN_TIMEOUT_S) : 0;
	rq.max_response = c->cfg->max_response_bytes;
	rq.stream = a->it->kind == KIND_CHAT && p->stream;
	rq.cancel = &a->it->b->cancel;
	rq.user = a;
	if (hark_llm_xfer_new(&rq, c->share, &a->x) != HARK_OK)
		goto fail;
	if (curl_multi_add_handle(c->multi, hark_llm_xfer_easy(a->x)) != CURLM_OK)
		goto fail;
	return;
fail:
	if (a->x) {
		hark_llm_xfer_free(a->x);
		a->x = NULL;
	}
	a->res.outcome = HARK_LLM_XFER_ERROR;
	snprintf(a->res.error, sizeof(a->res.error), "could not build the request (out of memory)");
	pthread_mutex_lock(&c->mu);
	c->ms[a->model].inflight--;
	push_done(a);
	pthread_mutex_unlock(&c->mu);
}

/* Hands finished transfers back to their batches; returns how many. */
static int finish_transfers(struct hark_llm *c)
{
	CURLMsg *msg;
	int left, n = 0;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct hark_llm_xfer *x = NULL;
		struct attempt *a;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		a = hark_llm_xfer_user(x);
		curl_multi_remove_handle(c->multi, msg->easy_handle);
		hark_llm_xfer_finish(x, msg->data.result, &a->res);
		hark_llm_xfer_free(x);
		a->x = NULL;
		pthread_mutex_lock(&c->mu);
		c->ms[a->model].inflight--;
		push_done(a);
		pthread_mutex_unlock(&c->mu);
		n++;
	}
	return n;
}

static void *loop_main(void *arg)
{
	struct hark_llm *c = arg;

	for (;;) {
		struct attempt *start, *next;
		double now, wake;
		int running = 0, stop, finished;
		long ms;

		pthread_mutex_lock(&c->mu);
		stop = c->stopping;
		now = hark_llm_now(c);
		wake = now + MAX_WAIT_MS / 1000.0 * c->cfg->time_scale;
		start = admit(c, now, &wake);
		pthread_mutex_unlock(&c->mu);
		for (struct attempt *a = start; a; a = next) {
			next = a->next;
			a->next = NULL;
			start_attempt(c, a);
		}
		curl_multi_perform(c->multi, &running);
		finished = finish_transfers(c);
		if (stop && running == 0) {
			pthread_mutex_lock(&c->mu);
			int empty = c->pend_head == NULL;

			pthread_mutex_unlock(&c->mu);
			if (empty)
				break;
		}
		ms = (long)ceil((wake - now) / c->cfg->time_scale * 1000.0);
		if (ms < 0)
			ms = 0;
		if (ms > MAX_WAIT_MS)
			ms = MAX_WAIT_MS;
		/* running transfers: come back often enough for their idle and
		 * cancel checks (the progress callback runs on perform) */
		if (running > 0 && ms > BUSY_WAIT_MS)
			ms = BUSY_WAIT_MS;
		/* a finished transfer freed a slot: admit again before sleeping */
		if (finished)
			continue;
		if (start == NULL || ms > 0)
			curl_multi_poll(c->multi, NULL, 0, (int)ms, NULL);
	}
	return NULL;
}

static void wake_loop(struct hark_llm *c)
{
	curl_multi_wakeup(c->multi);
}

/* ------------------------------------------------------------ init/free -- */

struct hark_llm_params hark_llm_default_params(void)
{
	struct hark_llm_params p;

	memset(&p, 0, sizeof(p));
	return p;
}

int hark_llm_init(const struct hark_llm_params *p, struct hark_llm **out, char *err,
		  size_t errlen)
{
	struct hark_llm *c = NULL;
	int rc = HARK_OK;

	*out = NULL;
	if (!p || !p->config) {
		set_error(err, errlen, "no LLM configuration");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->config->n_providers == 0 || p->config->n_models == 0) {
		set_error(err, errlen, "no LLM provider is configured");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->shared_limiter && !p->store) {
		set_error(err, errlen, "a shared rate limiter needs a store");
		return HARK_ERR_INVALID_ARG;
	}
	rc = hark_llm_http_global_init();
	if (rc != HARK_OK) {
		set_error(err, errlen, "libcurl initialisation failed");
		return rc;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return HARK_ERR_NOMEM;
	c->cfg = p->config;
	c->store = p->store;
	c->metrics = p->metrics;
	c->no_cache = p->no_cache;
	c->rng = p->seed ? p->seed : (uint64_t)(real_now() * 1e6) ^ 0x9E3779B97F4A7C15ULL;
	if (!c->rng)
		c->rng = 1;
	pthread_mutex_init(&c->mu, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_mu[i], NULL);
	c->ms = calloc(c->cfg->n_models, sizeof(*c->ms));
	if (!c->ms) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < c->cfg->n_models; i++) {
		c->ms[i].m = &c->cfg->models[i];
		hark_llm_breaker_init(&c->ms[i].br, c->cfg->breaker_failures > 0 ? c->cfg->breaker_failures : 5,
				      c->cfg->breaker_open_s > 0 ? c->cfg->breaker_open_s : 30);
		c->ms[i].state_pub = -1;
	}
	rc = p->shared_limiter ? hark_llm_limiter_store_new(p->store, &c->limiter)
			       : hark_llm_limiter_local_new(&c->limiter);
	if (rc != HARK_OK) {
		set_error(err, errlen, "could not create the rate limiter");
		goto fail;
	}
	c->multi = curl_multi_init();
	c->share = curl_share_init();
	if (!c->multi || !c->share) {
		rc = HARK_ERR_NOMEM;
		goto fail;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	{
		long total = 0;

		for (size_t i = 0; i < c->cfg->n_models; i++)
			total += c->cfg->models[i].max_concurrency;
		curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total + 8);
	}
	declare_metrics(c->metrics);
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->cfg->n_models; i++)
		publish_breaker(c, &c->ms[i]);
	pthread_mutex_unlock(&c->mu);
	if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
		set_error(err, errlen, "could not start the LLM transfer thread");
		rc = HARK_ERR_INTERNAL;
		goto fail;
	}
	c->thread_started = 1;
	*out = c;
	return HARK_OK;
fail:
	hark_llm_free(c);
	return rc;
}

void hark_llm_free(struct hark_llm *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		pthread_mutex_lock(&c->mu);
		c->stopping = 1;
		pthread_mutex_unlock(&c->mu);
		wake_loop(c);
		pthread_join(c->thread, NULL);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->share)
		curl_share_cleanup(c->share);
	hark_llm_limiter_free(c->limiter);
	free(c->ms);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_mu[i]);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* -------------------------------------------------------------- hashing -- */

static int hash_chat(const json_t *messages, const struct hark_llm_schema *schema,
		     double temperature, long max_tokens, const char *model_key, char hex[65])
{
	json_t *o = json_pack("{s:s,s:O,s:f,s:I,s:O}", "model", model_key, "messages", messages,
			      "temperature", temperature, "max_tokens", (json_int_t)max_tokens,
			      "schema", schema ? hark_llm_schema_json(schema) : json_null());
	char *s;

	if (!o)
		return HARK_ERR_NOMEM;
	s = hark_llm_json_canonical(o);
	json_decref(o);
	if (!s)
		return HARK_ERR_NOMEM;
	sha256_hex(s, strlen(s), hex);
	free(s);
	return hex[0] ? HARK_OK : HARK_ERR_INTERNAL;
}

static json_t *messages_json(const struct hark_llm_msg *msgs, size_t n)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_pack("{s:s,s:s}", "role", msgs[i].role ? msgs[i].role : "user",
				      "content", msgs[i].content ? msgs[i].content : "");

		if (!m || json_array_append_new(a, m)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int hark_llm_request_hash(const struct hark_llm_request *req, const char *model_key,
			  long max_tokens, char hex[65])
{
	json_t *msgs;
	struct hark_llm_schema *sc = NULL;
	int rc;

	if (!req || !model_key)
		return HARK_ERR_INVALID_ARG;
	msgs = messages_json(req->messages, req->n_messages);
	if (!msgs)
		return HARK_ERR_NOMEM;
	if (req->schema && hark_llm_schema_compile(req->schema, &sc, NULL, 0) != HARK_OK) {
		json_decref(msgs);
		return HARK_ERR_INVALID_ARG;
	}
	rc = hash_chat(msgs, sc, req->temperature, max_tokens, model_key, hex);
	hark_llm_schema_free(sc);
	json_decref(msgs);
	return rc;
}

static void embed_hash(const char *model_key, const char *text, char hex[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	hex[0] = 0;
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, "embed\n", 6) &&
	    EVP_DigestUpdate(ctx, model_key, strlen(model_key) + 1) &&
	    EVP_DigestUpdate(ctx, text, strlen(text)) && EVP_DigestFinal_ex(ctx, md, &n) &&
	    n == 32) {
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
	EVP_MD_CTX_free(ctx);
}

/* ------------------------------------------------------- item handling --- */

static void item_free(struct item *it)
{
	if (!it)
		return;
	json_decref(it->messages);
	json_decref(it->inputs);
	free(it->schema_prompt);
	free(it->cands);
	free(it->tries);
	free(it->hashes);
	free(it->embed_slots);
}

/* Fills it->cands with the route's models that can take the prompt.
 * Returns the number (0 = fits nowhere). */
static int plan_candidates(struct hark_llm *c, struct item *it, const char *default_task)
{
	const char *task = it->task && *it->task ? it->task : default_task;
	const struct hark_llm_route *r = hark_llm_config_route(c->cfg, task);
	size_t n = 0;

	if (!r || r->n_models == 0)
		return 0;
	it->cands = calloc(r->n_models, sizeof(size_t));
	it->tries = calloc(r->n_models, sizeof(int));
	if (!it->cands || !it->tries)
		return -1;
	for (size_t i = 0; i < r->n_models; i++) {
		const struct hark_llm_model *m = &c->cfg->models[r->models[i]];
		long need = it->prompt_est + (it->kind == KIND_CHAT ? (it->max_tokens > 0 ? it->max_tokens : 16) : 0);

		if ((it->kind == KIND_EMBED) != (m->embedding != 0))
			continue;
		if (need > m->context_window)
			continue;
		it->cands[n++] = r->models[i];
	}
	it->n_cands = n;
	return (int)n;
}

static char *build_body(const struct hark_llm *c, const struct attempt *a);

static void enqueue(struct hark_llm *c, struct attempt *a)
{
	struct item *it = a->it;

	/* Build the body now, on the calling thread, for the model it will most
	 * likely go to: the transfer thread then sends it the moment the limiter
	 * admits it (a late send would shift its arrival out of the window the
	 * reservation was made for). */
	if (it->cur < it->n_cands) {
		a->model = it->cands[it->cur];
		a->max_eff = max_tokens_for(it, &c->cfg->models[a->model]);
		a->body = build_body(c, a);
		a->body_model = a->model;
	}
	pthread_mutex_lock(&c->mu);
	a->next = NULL;
	if (c->pend_tail)
		c->pend_tail->next = a;
	else
		c->pend_head = a;
	c->pend_tail = a;
	a->it->b->outstanding++;
	pthread_mutex_unlock(&c->mu);
	wake_loop(c);
}

static struct attempt *new_attempt(struct item *it, double not_before)
{
	struct attempt *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->it = it;
	a->not_before = not_before;
	return a;
}

static void attempt_free(struct attempt *a)
{
	if (!a)
		return;
	if (a->x)
		hark_llm_xfer_free(a->x);
	free(a->body);
	hark_llm_xfer_result_clear(&a->res);
	free(a);
}

static void record_call(struct hark_llm *c, const struct item *it, const char *model,
			int status, int ok, int cached, int64_t tin, int64_t tout, double cost,
			double latency)
{
	struct hark_llm_call call;
	char lb[256];

	if (c->metrics) {
		metric_labels(lb, sizeof(lb), model);
		if (tin || tout) {
			char l2[300];

			snprintf(l2, sizeof(l2), "%s,direction=\"in\"", lb);
			hark_metrics_add(c->metrics, "hark_llm_tokens_total", l2, (double)tin);
			snprintf(l2, sizeof(l2), "%s,direction=\"out\"", lb);
			hark_metrics_add(c->metrics, "hark_llm_tokens_total", l2, (double)tout);
			hark_metrics_add(c->metrics, "hark_llm_cost_usd_total", lb, cost);
		}
	}
	if (!c->store)
		return;
	memset(&call, 0, sizeof(call));
	call.at = real_now();
	snprintf(call.job_id, sizeof(call.job_id), "%s", it->job_id ? it->job_id : "");
	snprintf(call.key_id, sizeof(call.key_id), "%s", it->key_id ? it->key_id : "");
	snprintf(call.task, sizeof(call.task), "%s", it->task ? it->task : "default");
	snprintf(call.model, sizeof(call.model), "%s", model);
	snprintf(call.kind, sizeof(call.kind), "%s", it->kind == KIND_EMBED ? "embed" : "chat");
	call.http_status = status;
	call.ok = ok;
	call.cached = cached;
	call.tokens_in = tin;
	call.tokens_out = tout;
	call.cost_usd = cost;
	call.latency_s = latency;
	hark_store_llm_call_add(c->store, &call);
}

static const char *outcome_label(const struct hark_llm_xfer_result *r, char *buf, size_t cap)
{
	static const char *names[] = {"ok", "connect_error", "timeout", "truncated",
				      "too_large", "canceled", "error"};

	if (r->outcome == HARK_LLM_XFER_OK) {
		snprintf(buf, cap, "%ld", r->status);
		return buf;
	}
	if (r->outcome >= 0 && r->outcome < (int)(sizeof(names) / sizeof(names[0])))
		return names[r->outcome];
	return "error";
}

/* Reads usage from a parsed reply. */
static void read_usage(const json_t *body, int64_t *tin, int64_t *tout)
{
	const json_t *u = json_object_get(body, "usage");

	*tin = (int64_t)json_integer_value(json_object_get(u, "prompt_tokens"));
	*tout = (int64_t)json_integer_value(json_object_get(u, "completion_tokens"));
}

static double backoff(struct hark_llm *c, int retries)
{
	double cap = c->cfg->backoff_base_s * pow(2.0, retries);
	double r;

	if (cap > c->cfg->backoff_max_s)
		cap = c->cfg->backoff_max_s;
	pthread_mutex_lock(&c->mu);
	r = rand01(c);
	pthread_mutex_unlock(&c->mu);
	return r * cap;
}

/* Final verdict on an item. */
static void item_finish(struct hark_llm *c, struct item *it, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void item_finish(struct hark_llm *c, struct item *it, int err, const char *fmt, ...)
{
	it->done = 1;
	pthread_mutex_lock(&c->mu);
	if (err == HARK_OK)
		c->tot.ok++;
	else
		c->tot.failed++;
	pthread_mutex_unlock(&c->mu);
	if (c->metrics) {
		char lb[64];

		snprintf(lb, sizeof(lb), "outcome=\"%s\"", err == HARK_OK ? "ok" : "failed");
		hark_metrics_add(c->metrics, "hark_llm_items_total", lb, 1);
	}
	if (it->kind == KIND_EMBED) {
		if (err != HARK_OK && !it->b->embed_failed) {
			va_list ap;

			it->b->embed_failed = err;
			va_start(ap, fmt);
			vsnprintf(it->b->embed_error, sizeof(it->b->embed_error), fmt, ap);
			va_end(ap);
		}
		return;
	}
	it->res->err = err;
	it->res->latency_s = hark_llm_now(c) - it->t_submit;
	if (err != HARK_OK && fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(it->res->error, sizeof(it->res->error), fmt, ap);
		va_end(ap);
	}
}

/* Schedules another try of it (not_before = now + delay) or, when its
 * candidates are used up, fails it. */
static void retry_or_fail(struct hark_llm *c, struct item *it, double delay, int err,
			  const char *why)
{
	struct attempt *a;
	int left = 0;

	/* move past candidates whose tries are used up */
	while (it->cur < it->n_cands && it->tries[it->cur] >= c->cfg->max_attempts) {
		it->cur++;
		if (it->cur < it->n_cands) {
			pthread_mutex_lock(&c->mu);
			c->tot.failovers++;
			pthread_mutex_unlock(&c->mu);
			if (c->metrics) {
				char lb[256];

				metric_labels(lb, sizeof(lb), c->cfg->models[it->cands[it->cur]].key);
				hark_metrics_add(c->metrics, "hark_llm_failovers_total", lb, 1);
			}
			delay = 0; /* a fresh model: no reason to wait */
		}
	}
	for (size_t p = it->cur; p < it->n_cands; p++)
		if (it->tries[p] < c->cfg->max_attempts)
			left = 1;
	if (!left) {
		item_finish(c, it, err, "%s", why);
		return;
	}
	a = new_attempt(it, hark_llm_now(c) + delay);
	if (!a) {
		item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
		return;
	}
	a->is_retry = 1;
	it->retries++;
	enqueue(c, a);
}

/* Handles a successful chat reply body. Returns 1 when the item is settled
 * (answered, failed or re-queued for repair). */
static void handle_chat_reply(struct hark_llm *c, struct item *it, struct attempt *a,
			      json_t *body, const struct hark_llm_model *m, int64_t tin,
			      int64_t tout)
{
	const json_t *choice = json_array_get(json_object_get(body, "choices"), 0);
	const json_t *msg = json_object_get(choice, "message");
	const char *content = json_string_value(json_object_get(msg, "content"));
	const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
	char verr[256] = "";
	char *final = NULL;
	json_t *v = NULL;

	if (!content) {
		/* a 200 without a message: the provider misbehaved; retry */
		retry_or_fail(c, it, backoff(c, it->retries), HARK_ERR_NETWORK,
			      "provider reply had no message content");
		return;
	}
	if (it->schema) {
		if (hark_llm_json_extract(content, strlen(content), &v, verr, sizeof(verr)) == HARK_OK &&
		    hark_llm_schema_validate(it->schema, v, verr, sizeof(verr)) == HARK_OK) {
			final = hark_llm_json_canonical(v);
		} else if (finish && !strcmp(finish, "length") && !verr[0]) {
			snprintf(verr, sizeof(verr), "reply cut at max_tokens");
		}
		if (!final && finish && !strcmp(finish, "length")) {
			char tmp[256];

			snprintf(tmp, sizeof(tmp), "reply truncated at max_tokens (%.200s)", verr);
			snprintf(verr, sizeof(verr), "%s", tmp);
		}
		json_decref(v);
		if (!final) {
			if (it->res->repairs < c->cfg->repair_attempts) {
				char note[700];
				struct attempt *r;

				snprintf(note, sizeof(note),
					 "Your previous reply was not valid: %s. Reply again with only "
					 "the corrected JSON value that matches the schema, nothing else.",
					 verr);
				json_array_append_new(it->messages,
						      json_pack("{s:s,s:s}", "role", "assistant",
								"content", content));
				json_array_append_new(it->messages,
						      json_pack("{s:s,s:s}", "role", "user",
								"content", note));
				it->prompt_est = (long)hark_llm_tokens_count(content, strlen(content)) +
						 (long)hark_llm_tokens_count(note, strlen(note)) + 8 +
						 it->prompt_est;
				it->res->repairs++;
				pthread_mutex_lock(&c->mu);
				c->tot.repairs++;
				pthread_mutex_unlock(&c->mu);
				if (c->metrics)
					hark_metrics_add(c->metrics, "hark_llm_repairs_total", NULL, 1);
				r = new_attempt(it, hark_llm_now(c));
				if (!r) {
					item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
					return;
				}
				r->is_repair = 1;
				/* the repair goes to the model that answered */
				for (size_t p = 0; p < it->n_cands; p++)
					if (it->cands[p] == a->model && p > it->cur)
						it->cur = p;
				enqueue(c, r);
				return;
			}
			item_finish(c, it, HARK_ERR_FORMAT, "invalid structured reply from %s: %s",
				    m->key, verr);
			return;
		}
	} else {
		final = strdup(content);
	}
	if (!final) {
		item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
		return;
	}
	free(it->res->content);
	it->res->content = final;
	snprintf(it->res->model, sizeof(it->res->model), "%s", m->key);
	if (c->store && it->hashes) {
		double ttl = c->cfg->cache_ttl_s;

		for (size_t p = 0; p < it->n_cands; p++)
			if (it->cands[p] == a->model && it->hashes[p][0])
				hark_store_llm_cache_put(c->store, it->hashes[p], m->key, final,
							 strlen(final), ttl > 0 ? real_now() + ttl : 0);
	}
	(void)tin;
	(void)tout;
	item_finish(c, it, HARK_OK, NULL);
}

/* Handles a 2xx embeddings reply: one vector per input of the item. */
static void handle_embed_reply(struct hark_llm *c, struct item *it, json_t *body,
			       const struct hark_llm_model *m, float **rows, size_t *dim)
{
	const json_t *data = json_object_get(body, "data");
	size_t n_in = json_array_size(it->inputs);
	size_t i;
	json_t *e;

	if (!json_is_array(data) || json_array_size(data) != n_in) {
		retry_or_fail(c, it, backoff(c, it->retries), HARK_ERR_NETWORK,
			      "embeddings reply has the wrong number of vectors");
		return;
	}
	json_array_foreach(data, i, e) {
		const json_t *vec = json_object_get(e, "embedding");
		json_int_t idx = json_integer_value(json_object_get(e, "index"));
		size_t d = json_array_size(vec), slot;
		float *row;

		if (!json_is_array(vec) || d == 0 || idx < 0 || (size_t)idx >= n_in ||
		    (*dim && d != *dim)) {
			item_finish(c, it, HARK_ERR_FORMAT, "malformed embeddings reply from %s", m->key);
			return;
		}
		*dim = d;
		slot = it->embed_slots[idx];
		row = malloc(d * sizeof(float));
		if (!row) {
			item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
			return;
		}
		for (size_t k = 0; k < d; k++)
			row[k] = (float)json_number_value(json_array_get(vec, k));
		free(rows[slot]);
		rows[slot] = row;
	}
	if (c->store) {
		double ttl = c->cfg->cache_ttl_s;

		json_array_foreach(it->inputs, i, e) {
			char hex[65];
			size_t slot = it->embed_slots[i];

			embed_hash(m->key, json_string_value(e), hex);
			if (hex[0] && rows[slot])
				hark_store_llm_cache_put(c->store, hex, m->key, (const char *)rows[slot],
							 *dim * sizeof(float),
							 ttl > 0 ? real_now() + ttl : 0);
		}
	}
	item_finish(c, it, HARK_OK, NULL);
}

/* Processes one finished attempt on the calling thread. rows/dim: embedding
 * outputs of the batch (NULL for chat). */
static void process_attempt(struct hark_llm *c, struct attempt *a, float **rows, size_t *dim)
{
	struct item *it = a->it;
	const struct hark_llm_model *m;
	struct model_state *ms;
	struct hark_llm_xfer_result *r = &a->res;
	double now = hark_llm_now(c), lat;
	char lb[256], st[32];
	json_t *body = NULL;
	int64_t tin = 0, tout = 0;
	double cost = 0;

	if (it->done)
		return;
	if (a->canceled || r->outcome == HARK_LLM_XFER_CANCELED || it->b->cancel) {
		if (a->t_start > 0) {
			pthread_mutex_lock(&c->mu);
			hark_llm_breaker_neutral(&c->ms[a->model].br);
			pthread_mutex_unlock(&c->mu);
		}
		item_finish(c, it, HARK_ERR_CANCELED, "canceled");
		return;
	}
	if (a->t_start <= 0) {
		/* never admitted: no model of the route could take it */
		item_finish(c, it, HARK_ERR_NETWORK, "%s", r->error[0] ? r->error : "no model available");
		return;
	}
	m = &c->cfg->models[a->model];
	ms = &c->ms[a->model];
	lat = now - a->t_start;
	if (it->kind == KIND_CHAT)
		it->res->attempts++;
	if (c->metrics) {
		char l2[300];

		metric_labels(lb, sizeof(lb), m->key);
		snprintf(l2, sizeof(l2), "%s,status=\"%s\"", lb, outcome_label(r, st, sizeof(st)));
		hark_metrics_add(c->metrics, "hark_llm_requests_total", l2, 1);
		hark_metrics_observe(c->metrics, "hark_llm_request_seconds", lb, lat);
		if (a->is_retry)
			hark_metrics_add(c->metrics, "hark_llm_retries_total", lb, 1);
	}
	/* rate-limit headers: a provider that says "none left" is believed */
	if (r->outcome == HARK_LLM_XFER_OK && (m->rpm > 0 || m->tpm > 0)) {
		if (r->remaining_requests == 0 && r->reset_requests_s > 0)
			c->limiter->ops->block(c->limiter->self, m->key, now + r->reset_requests_s);
		if (r->remaining_tokens == 0 && r->reset_tokens_s > 0)
			c->limiter->ops->block(c->limiter->self, m->key, now + r->reset_tokens_s);
	}
	if (r->outcome != HARK_LLM_XFER_OK) {
		int health = r->outcome != HARK_LLM_XFER_TOO_LARGE;

		pthread_mutex_lock(&c->mu);
		if (health)
			hark_llm_breaker_failure(&ms->br, now);
		else
			hark_llm_breaker_neutral(&ms->br);
		publish_breaker(c, ms);
		pthread_mutex_unlock(&c->mu);
		record_call(c, it, m->key, 0, 0, 0, 0, 0, 0, lat);
		if (!health) {
			item_finish(c, it, HARK_ERR_LIMIT, "reply from %s exceeded %zu bytes", m->key,
				    c->cfg->max_response_bytes);
			return;
		}
		{
			char why[400];

			snprintf(why, sizeof(why), "%s: %s", m->key,
				 r->error[0] ? r->error : outcome_label(r, st, sizeof(st)));
			retry_or_fail(c, it, backoff(c, it->retries), HARK_ERR_NETWORK, why);
		}
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		body = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
		if (!json_is_object(body)) {
			pthread_mutex_lock(&c->mu);
			hark_llm_breaker_failure(&ms->br, now);
			publish_breaker(c, ms);
			pthread_mutex_unlock(&c->mu);
			json_decref(body);
			record_call(c, it, m->key, (int)r->status, 0, 0, 0, 0, 0, lat);
			retry_or_fail(c, it, backoff(c, it->retries), HARK_ERR_NETWORK,
				      "provider reply body is not JSON");
			return;
		}
		pthread_mutex_lock(&c->mu);
		hark_llm_breaker_success(&ms->br, now);
		publish_breaker(c, ms);
		pthread_mutex_unlock(&c->mu);
		read_usage(body, &tin, &tout);
		if (it->kind == KIND_EMBED && tin == 0)
			tin = (int64_t)json_integer_value(
				json_object_get(json_object_get(body, "usage"), "total_tokens"));
		cost = (double)tin * m->price_in / 1e6 + (double)tout * m->price_out / 1e6;
		if (tin > 0 && a->ticket)
			c->limiter->ops->adjust(c->limiter->self, m->key, a->ticket,
						(double)tin + (double)a->max_eff);
		pthread_mutex_lock(&c->mu);
		c->tot.tokens_in += tin;
		c->tot.tokens_out += tout;
		c->tot.cost_usd += cost;
		pthread_mutex_unlock(&c->mu);
		if (it->kind == KIND_EMBED) {
			it->b->tokens_in += tin;
			it->b->cost_usd += cost;
		}
		if (it->kind == KIND_CHAT) {
			it->res->tokens_in += tin;
			it->res->tokens_out += tout;
			it->res->cost_usd += cost;
		}
		record_call(c, it, m->key, (int)r->status, 1, 0, tin, tout, cost, lat);
		if (it->kind == KIND_CHAT)
			handle_chat_reply(c, it, a, body, m, tin, tout);
		else
			handle_embed_reply(c, it, body, m, rows, dim);
		json_decref(body);
		return;
	}
	record_call(c, it, m->key, (int)r->status, 0, 0, 0, 0, 0, lat);
	if (r->status == 429) {
		double ra = r->retry_after_s;

		pthread_mutex_lock(&c->mu);
		hark_llm_breaker_neutral(&ms->br);
		c->tot.rate_limited++;
		pthread_mutex_unlock(&c->mu);
		if (c->metrics)
			hark_metrics_add(c->metrics, "hark_llm_rate_limited_total", lb, 1);
		if (ra < 0)
			ra = fmax(r->reset_requests_s, r->reset_tokens_s);
		if (ra < 0)
			ra = backoff(c, it->retries);
		else
			c->limiter->ops->block(c->limiter->self, m->key, now + ra);
		retry_or_fail(c, it, ra + backoff(c, 0) * 0.1, HARK_ERR_NETWORK,
			      "rate limited (429) on every try");
		return;
	}
	if (r->status >= 500 || r->status == 408) {
		char why[300];

		pthread_mutex_lock(&c->mu);
		hark_llm_breaker_failure(&ms->br, now);
		publish_breaker(c, ms);
		pthread_mutex_unlock(&c->mu);
		snprintf(why, sizeof(why), "%s answered HTTP %ld", m->key, r->status);
		retry_or_fail(c, it, backoff(c, it->retries), HARK_ERR_NETWORK, why);
		return;
	}
	pthread_mutex_lock(&c->mu);
	hark_llm_breaker_neutral(&ms->br);
	pthread_mutex_unlock(&c->mu);
	{
		char msg[200] = "";
		json_t *eb = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
		const char *em = json_string_value(json_object_get(json_object_get(eb, "error"), "message"));

		snprintf(msg, sizeof(msg), "%s", em ? em : "");
		json_decref(eb);
		if (r->status == 401 || r->status == 403 || r->status == 404) {
			/* this deployment cannot serve us; never retried, but the
			 * next model of the group may */
			char why[400];

			it->tries[a->cand_pos] = c->cfg->max_attempts;
			snprintf(why, sizeof(why), "%s answered HTTP %ld: %s", m->key, r->status, msg);
			retry_or_fail(c, it, 0, HARK_ERR_INVALID_ARG, why);
			return;
		}
		item_finish(c, it, HARK_ERR_INVALID_ARG, "%s answered HTTP %ld: %s", m->key,
			    r->status, msg);
	}
}

/* process_attempt; returns 1 when the attempt's item is settled. */
static int process_done(struct hark_llm *c, struct attempt *a, float **rows, size_t *dim)
{
	process_attempt(c, a, rows, dim);
	return a->it->done;
}

/* ------------------------------------------------------------ batches ---- */

static int batch_init(struct batch *b)
{
	memset(b, 0, sizeof(*b));
	return pthread_cond_init(&b->cond, NULL) ? HARK_ERR_INTERNAL : HARK_OK;
}

/* Waits for and processes every outstanding attempt of b. */
static void batch_drain(struct hark_llm *c, struct batch *b, struct item *items, size_t n_items,
			size_t total, size_t *n_done, const struct hark_llm_callbacks *cb,
			float **rows, size_t *dim)
{
	for (;;) {
		struct attempt *list, *next;

		pthread_mutex_lock(&c->mu);
		while (!b->done_head && b->outstanding > 0) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&b->cond, &c->mu, &ts);
			if (!b->done_head && cb && cb->cancel && !b->cancel) {
				pthread_mutex_unlock(&c->mu);
				if (cb->cancel(cb->user_data)) {
					b->cancel = 1;
					wake_loop(c);
				}
				pthread_mutex_lock(&c->mu);
			}
		}
		list = b->done_head;
		b->done_head = b->done_tail = NULL;
		for (struct attempt *a = list; a; a = a->next)
			b->outstanding--;
		pthread_mutex_unlock(&c->mu);
		if (!list)
			break;
		for (struct attempt *a = list; a; a = next) {
			struct item *it = a->it;
			int was_done = it->done;

			int settled;

			next = a->next;
			settled = process_done(c, a, rows, dim);
			attempt_free(a);
			if (!was_done && settled) {
				(*n_done)++;
				if (cb && cb->item_done && it->res)
					cb->item_done(it->index, it->res, cb->user_data);
				if (cb && cb->progress)
					cb->progress(*n_done, total, cb->user_data);
			}
		}
		if (cb && cb->cancel && !b->cancel && cb->cancel(cb->user_data)) {
			b->cancel = 1;
			wake_loop(c);
		}
	}
	(void)items;
	(void)n_items;
}

static const char SCHEMA_PROMPT[] = "Reply with JSON only, matching this JSON Schema:\n";

int hark_llm_run(struct hark_llm *c, const struct hark_llm_request *reqs, size_t n,
		 struct hark_llm_result *results, const struct hark_llm_callbacks *cb)
{
	struct batch b;
	struct item *items = NULL;
	struct hark_llm_schema **schemas = NULL;
	size_t n_done = 0;
	int rc = HARK_OK;

	if (!c || (!reqs && n) || (!results && n))
		return HARK_ERR_INVALID_ARG;
	if (n == 0)
		return HARK_OK;
	if (batch_init(&b) != HARK_OK)
		return HARK_ERR_INTERNAL;
	items = calloc(n, sizeof(*items));
	schemas = calloc(n, sizeof(*schemas));
	if (!items || !schemas) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hark_llm_request *rq = &reqs[i];
		struct item *it = &items[i];
		struct hark_llm_result *res = &results[i];
		const char **roles = NULL, **contents = NULL;
		int nc;
		int hit = 0;
		char serr[200] = "";

		memset(res, 0, sizeof(*res));
		it->b = &b;
		it->index = i;
		it->kind = KIND_CHAT;
		it->req = rq;
		it->res = res;
		it->task = rq->task;
		it->job_id = rq->job_id;
		it->key_id = rq->key_id;
		it->max_tokens = rq->max_tokens;
		it->t_submit = hark_llm_now(c);
		if (!rq->messages || rq->n_messages == 0) {
			item_finish(c, it, HARK_ERR_INVALID_ARG, "a request needs at least one message");
			goto item_done;
		}
		if (rq->schema) {
			/* reuse the previous item's compiled schema when the text is the same */
			if (i > 0 && schemas[i - 1] && reqs[i - 1].schema &&
			    (reqs[i - 1].schema == rq->schema || !strcmp(reqs[i - 1].schema, rq->schema))) {
				it->schema = items[i - 1].schema;
			} else if (hark_llm_schema_compile(rq->schema, &schemas[i], serr, sizeof(serr)) ==
				   HARK_OK) {
				it->schema = schemas[i];
			} else {
				item_finish(c, it, HARK_ERR_INVALID_ARG, "invalid schema: %s", serr);
				goto item_done;
			}
			if (!schemas[i])
				schemas[i] = NULL;
			{
				char *sj = json_dumps(hark_llm_schema_json(it->schema), JSON_COMPACT);
				size_t len = sizeof(SCHEMA_PROMPT) + (sj ? strlen(sj) : 0) + 1;

				it->schema_prompt = malloc(len);
				if (it->schema_prompt) {
					snprintf(it->schema_prompt, len, "%s%s", SCHEMA_PROMPT, sj ? sj : "{}");
					it->schema_prompt_tokens = (long)hark_llm_tokens_count(
						it->schema_prompt, strlen(it->schema_prompt)) + 2;
				}
				free(sj);
			}
			it->schema_name = rq->schema_name ? rq->schema_name : rq->task;
		}
		it->messages = messages_json(rq->messages, rq->n_messages);
		roles = calloc(rq->n_messages, sizeof(char *));
		contents = calloc(rq->n_messages, sizeof(char *));
		if (!it->messages || !roles || !contents) {
			free(roles);
			free(contents);
			item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
			goto item_done;
		}
		for (size_t k = 0; k < rq->n_messages; k++) {
			roles[k] = rq->messages[k].role ? rq->messages[k].role : "user";
			contents[k] = rq->messages[k].content;
		}
		it->prompt_est = (long)hark_llm_tokens_chat(roles, contents, rq->n_messages);
		free(roles);
		free(contents);
		nc = plan_candidates(c, it, "default");
		if (nc < 0) {
			item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
			goto item_done;
		}
		if (nc == 0) {
			if (!hark_llm_config_route(c->cfg, rq->task ? rq->task : "default"))
				item_finish(c, it, HARK_ERR_INVALID_ARG, "no route for task '%s'",
					    rq->task ? rq->task : "default");
			else
				item_finish(c, it, HARK_ERR_LIMIT,
					    "a prompt of %ld tokens fits no model of route '%s'",
					    it->prompt_est, rq->task ? rq->task : "default");
			goto item_done;
		}
		it->hashes = calloc(it->n_cands, sizeof(*it->hashes));
		if (!it->hashes) {
			item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
			goto item_done;
		}
		for (size_t p = 0; p < it->n_cands && !hit; p++) {
			const struct hark_llm_model *m = &c->cfg->models[it->cands[p]];
			char *val = NULL;
			size_t len = 0;

			if (hash_chat(it->messages, it->schema, rq->temperature, max_tokens_for(it, m),
				      m->key, it->hashes[p]) != HARK_OK)
				it->hashes[p][0] = 0;
			if (!c->store || c->no_cache || !it->hashes[p][0])
				continue;
			if (hark_store_llm_cache_get(c->store, it->hashes[p], real_now(), &val, &len) ==
			    HARK_OK) {
				res->content = val;
				res->cached = 1;
				snprintf(res->model, sizeof(res->model), "%s", m->key);
				record_call(c, it, m->key, 0, 1, 1, 0, 0, 0, 0);
				hit = 1;
			}
		}
		pthread_mutex_lock(&c->mu);
		if (hit)
			c->tot.cache_hits++;
		else
			c->tot.cache_misses++;
		pthread_mutex_unlock(&c->mu);
		if (c->metrics)
			hark_metrics_add(c->metrics,
					 hit ? "hark_llm_cache_hits_total" : "hark_llm_cache_misses_total",
					 NULL, 1);
		if (hit) {
			item_finish(c, it, HARK_OK, NULL);
			goto item_done;
		}
		{
			struct attempt *a = new_attempt(it, 0);

			if (!a) {
				item_finish(c, it, HARK_ERR_NOMEM, "out of memory");
				goto item_done;
			}
			enqueue(c, a);
		}
		continue;
item_done:
		n_done++;
		if (cb && cb->item_done && it->res)
			cb->item_done(it->index, it->res, cb->user_data);
		if (cb && cb->progress)
			cb->progress(n_done, n, cb->user_data);
	}
	batch_drain(c, &b, items, n, n, &n_done, cb, NULL, NULL);
	if (b.cancel)
		rc = HARK_ERR_CANCELED;
out:
	if (items)
		for (size_t i = 0; i < n; i++)
			item_free(&items[i]);
	if (schemas)
		for (size_t i = 0; i < n; i++)
			hark_llm_schema_free(schemas[i]);
	free(schemas);
	free(items);
	pthread_cond_destroy(&b.cond);
	return rc;
}

int hark_llm_chat(struct hark_llm *c, const struct hark_llm_request *req,
		  struct hark_llm_result *out)
{
	int rc = hark_llm_run(c, req, 1, out, NULL);

	return rc != HARK_OK ? rc : out->err;
}

void hark_llm_result_clear(struct hark_llm_result *r)
{
	if (!r)
		return;
	free(r->content);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------- embeddings -- */

int hark_llm_embed(struct hark_llm *c, const char *task, const char *const *texts, size_t n,
		   const char *job_id, const char *key_id, struct hark_llm_embed_result *out)
{
	struct batch b;
	struct item probe_it;
	struct item *items = NULL;
	float **rows = NULL;
	size_t dim = 0, n_items = 0, n_done = 0, model = 0;
	const struct hark_llm_model *m;
	size_t per = c && c->cfg->embed_batch ? c->cfg->embed_batch : 64;
	int rc = HARK_OK;

	if (!c || !out || (!texts && n))
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (batch_init(&b) != HARK_OK)
		return HARK_ERR_INTERNAL;
	/* the model: the first embedding model of the route whose breaker admits calls */
	memset(&probe_it, 0, sizeof(probe_it));
	probe_it.kind = KIND_EMBED;
	probe_it.task = task ? task : "embed";
	if (plan_candidates(c, &probe_it, "embed") <= 0) {
		snprintf(out->error, sizeof(out->error), "no embedding model for task '%s'",
			 probe_it.task);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	model = probe_it.cands[0];
	pthread_mutex_lock(&c->mu);
	for (size_t p = 0; p < probe_it.n_cands; p++)
		if (hark_llm_breaker_would_allow(&c->ms[probe_it.cands[p]].br, hark_llm_now(c))) {
			model = probe_it.cands[p];
			break;
		}
	pthread_mutex_unlock(&c->mu);
	m = &c->cfg->models[model];
	snprintf(out->model, sizeof(out->model), "%s", m->key);
	rows = calloc(n ? n : 1, sizeof(float *));
	items = calloc(n / per + 1, sizeof(*items));
	if (!rows || !items) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	/* cache lookups */
	for (size_t i = 0; i < n; i++) {
		char hex[65], *val = NULL;
		size_t len = 0;

		if (!texts[i]) {
			snprintf(out->error, sizeof(out->error), "input %zu is NULL", i);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		if (!c->store || c->no_cache)
			continue;
		embed_hash(m->key, texts[i], hex);
		if (hex[0] && hark_store_llm_cache_get(c->store, hex, real_now(), &val, &len) == HARK_OK) {
			if (len % sizeof(float) == 0 && len > 0 && (!dim || len / sizeof(float) == dim)) {
				dim = len / sizeof(float);
				rows[i] = malloc(len);
				if (!rows[i]) {
					free(val);
					rc = HARK_ERR_NOMEM;
					goto out;
				}
				memcpy(rows[i], val, len);
				free(val);
				out->cached++;
				continue;
			}
			free(val);
		}
	}
	pthread_mutex_lock(&c->mu);
	c->tot.cache_hits += (int64_t)out->cached;
	c->tot.cache_misses += (int64_t)(n - out->cached);
	pthread_mutex_unlock(&c->mu);
	if (c->metrics) {
		hark_metrics_add(c->metrics, "hark_llm_cache_hits_total", NULL, (double)out->cached);
		hark_metrics_add(c->metrics, "hark_llm_cache_misses_total", NULL,
				 (double)(n - out->cached));
	}
	if (out->cached) {
		/* one accounted row for the inputs the cache answered */
		struct item acc;

		memset(&acc, 0, sizeof(acc));
		acc.kind = KIND_EMBED;
		acc.task = probe_it.task;
		acc.job_id = job_id;
		acc.key_id = key_id;
		record_call(c, &acc, m->key, 0, 1, 1, 0, 0, 0, 0);
	}
	/* group the misses */
	for (size_t i = 0; i < n;) {
		struct item *it;
		size_t k = 0;

		if (rows[i]) {
			i++;
			continue;
		}
		it = &items[n_items++];
		it->b = &b;
		it->kind = KIND_EMBED;
		it->task = probe_it.task;
		it->job_id = job_id;
		it->key_id = key_id;
		it->inputs = json_array();
		it->embed_slots = calloc(per, sizeof(size_t));
		it->cands = calloc(1, sizeof(size_t));
		it->tries = calloc(1, sizeof(int));
		if (!it->inputs || !it->embed_slots || !it->cands || !it->tries) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		it->cands[0] = model;
		it->n_cands = 1;
		it->t_submit = hark_llm_now(c);
		for (; i < n && k < per; i++) {
			if (rows[i])
				continue;
			json_array_append_new(it->inputs, json_string(texts[i]));
			it->embed_slots[k++] = i;
			it->prompt_est += (long)hark_llm_tokens_count(texts[i], strlen(texts[i]));
		}
		{
			struct attempt *a = new_attempt(it, 0);

			if (!a) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			out->requests++;
			enqueue(c, a);
		}
	}
	batch_drain(c, &b, items, n_items, n_items, &n_done, NULL, rows, &dim);
	if (b.embed_failed) {
		rc = b.embed_failed;
		snprintf(out->error, sizeof(out->error), "%s", b.embed_error);
		goto out;
	}
	if (n) {
		out->vectors = malloc(n * (dim ? dim : 1) * sizeof(float));
		if (!out->vectors) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (!rows[i]) {
				snprintf(out->error, sizeof(out->error), "input %zu got no vector", i);
				rc = HARK_ERR_INTERNAL;
				goto out;
			}
			memcpy(out->vectors + i * dim, rows[i], dim * sizeof(float));
		}
	}
	out->dim = dim;
out:
	out->tokens_in = b.tokens_in;
	out->cost_usd = b.cost_usd;
	if (items) {
		for (size_t i = 0; i < n_items; i++)
			item_free(&items[i]);
	}
	if (rows)
		for (size_t i = 0; i < n; i++)
			free(rows[i]);
	free(rows);
	free(items);
	item_free(&probe_it);
	pthread_cond_destroy(&b.cond);
	if (rc != HARK_OK) {
		free(out->vectors);
		out->vectors = NULL;
	}
	return rc;
}

void hark_llm_embed_result_clear(struct hark_llm_embed_result *r)
{
	if (!r)
		return;
	free(r->vectors);
	memset(r, 0, sizeof(*r));
}

/* --------------------------------------------------------------- totals -- */

void hark_llm_get_totals(struct hark_llm *c, struct hark_llm_totals *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	*out = c->tot;
	pthread_mutex_unlock(&c->mu);
}

int hark_llm_breaker_state(struct hark_llm *c, const char *model_key)
{
	long i;
	int s;

	if (!c || !model_key)
		return -1;
	i = hark_llm_config_find_model(c->cfg, model_key);
	if (i < 0)
		return -1;
	pthread_mutex_lock(&c->mu);
	s = c->ms[i].br.state;
	pthread_mutex_unlock(&c->mu);
	return s;
}
