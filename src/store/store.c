/*
 * The backend-independent half of the job store: status and priority names,
 * time-ordered job ids, API key generation and hashing (OpenSSL SHA-256 and
 * RAND_bytes), RFC 3339 and UTC-day formatting, the job summary JSON that
 * events, the API and webhooks share, the *_clear/array_free helpers, the
 * per-thread error message, and the hark_store_* entry points, which check
 * their arguments and call the backend through its table of operations
 * (store_backend.h). No SQL here.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "store/store_backend.h"

/* ---- per-thread error message ------------------------------------------- */

static _Thread_local char tl_errmsg[512];

int hark_store_set_errmsg(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tl_errmsg, sizeof(tl_errmsg), fmt, ap);
	va_end(ap);
	return err;
}

const char *hark_store_errmsg(struct hark_store *st)
{
	(void)st;
	return tl_errmsg;
}

static void errmsg_reset(void)
{
	tl_errmsg[0] = '\0';
}

/* Fills an empty message with the generic text of err after a failure. */
static int finish_err(int rc)
{
	if (rc != HARK_OK && !tl_errmsg[0])
		snprintf(tl_errmsg, sizeof(tl_errmsg), "%s", hark_strerror(rc));
	return rc;
}

double hark_store_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- names ---------------------------------------------------------------- */

static const char *const status_names[HARK_JOB_STATUS_COUNT] = {
	"queued", "running", "done", "failed", "canceled",
};
static const char *const prio_names[HARK_PRIO_COUNT] = {
	"realtime", "high", "normal", "batch",
};

const char *hark_store_status_name(int status)
{
	if (status < 0 || status >= HARK_JOB_STATUS_COUNT)
		return "unknown";
	return status_names[status];
}

int hark_store_status_parse(const char *name, int *out)
{
	for (int i = 0; name && i < HARK_JOB_STATUS_COUNT; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*out = i;
			return HARK_OK;
		}
	}
	return HARK_ERR_INVALID_ARG;
}

const char *hark_store_priority_name(int prio)
{
	if (prio < 0 || prio >= HARK_PRIO_COUNT)
		return "unknown";
	return prio_names[prio];
}

int hark_store_priority_parse(const char *name, int *out)
{
	for (int i = 0; name && i < HARK_PRIO_COUNT; i++) {
		if (strcmp(name, prio_names[i]) == 0) {
			*out = i;
			return HARK_OK;
		}
	}
	return HARK_ERR_INVALID_ARG;
}

/* ---- clear / free ----------------------------------------------------------- */

void hark_job_clear(struct hark_job *j)
{
	if (!j)
		return;
	free(j->filename);
	free(j->media_type);
	free(j->options);
	free(j->input_text);
	free(j->webhook);
	free(j->stage);
	free(j->timings);
	free(j->error_code);
	free(j->error_message);
	memset(j, 0, sizeof(*j));
}

void hark_job_array_free(struct hark_job *jobs, size_t n)
{
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		hark_job_clear(&jobs[i]);
	free(jobs);
}

void hark_event_clear(struct hark_event *e)
{
	if (!e)
		return;
	free(e->data);
	memset(e, 0, sizeof(*e));
}

void hark_event_array_free(struct hark_event *ev, size_t n)
{
	if (!ev)
		return;
	for (size_t i = 0; i < n; i++)
		hark_event_clear(&ev[i]);
	free(ev);
}

void hark_key_clear(struct hark_key *k)
{
	if (!k)
		return;
	free(k->name);
	memset(k, 0, sizeof(*k));
}

void hark_key_array_free(struct hark_key *k, size_t n)
{
	if (!k)
		return;
	for (size_t i = 0; i < n; i++)
		hark_key_clear(&k[i]);
	free(k);
}

void hark_webhook_clear(struct hark_webhook *w)
{
	if (!w)
		return;
	free(w->url);
	free(w->body);
	memset(w, 0, sizeof(*w));
}

/* ---- ids, keys, hashing ------------------------------------------------------ */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void hark_store_key_hash(const char *token, char hash[HARK_SHA_HEX_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!token)
		token = "";
	if (!EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) || len != 32) {
		hash[0] = '\0';
		return;
	}
	hex_encode(md, 32, hash);
}

int hark_store_key_generate(struct hark_key *k, char *token, size_t token_len)
{
	unsigned char secret[20], idb[8];

	if (!k || !token || token_len < 64)
		return HARK_ERR_INVALID_ARG;
	if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(idb, sizeof(idb)) != 1)
		return hark_store_set_errmsg(HARK_ERR_INTERNAL, "system random generator failed");
	memcpy(token, "hark_", 5);
	hex_encode(secret, sizeof(secret), token + 5);
	memcpy(k->id, "key_", 4);
	hex_encode(idb, sizeof(idb), k->id + 4);
	hark_store_key_hash(token, k->hash);
	memcpy(k->prefix, token, 12);
	k->prefix[12] = '\0';
	OPENSSL_cleanse(secret, sizeof(secret));
	return k->hash[0] ? HARK_OK : HARK_ERR_INTERNAL;
}

/*
 * Job ids: "job_" + 26 chars of base32 in an alphabet whose ASCII order is
 * its numeric order, so string order is numeric order. The first 12 chars
 * carry 60 bits of microseconds since the epoch, forced strictly increasing
 * within the process (so ids made one after another sort in that order even
 * within one microsecond or across a clock step back); the last 14 carry 70
 * random bits, so ids from different processes do not collide.
 */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_us;

int hark_store_new_job_id(char id[HARK_ID_LEN])
{
	static const char b32[] = "0123456789abcdefghijklmnopqrstuv";
	unsigned char rnd[9];
	struct timespec ts;
	uint64_t us, r_hi, r_lo;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return hark_store_set_errmsg(HARK_ERR_INTERNAL, "system random generator failed");
	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	pthread_mutex_lock(&id_lock);
	if (us <= id_last_us)
		us = id_last_us + 1;
	id_last_us = us;
	pthread_mutex_unlock(&id_lock);

	memcpy(id, "job_", 4);
	for (int i = 0; i < 12; i++)
		id[4 + i] = b32[(us >> (55 - 5 * i)) & 31];
	/* 70 random bits: 6 from rnd[0], 64 from rnd[1..8] */
	r_hi = rnd[0] & 63;
	r_lo = 0;
	for (int i = 1; i < 9; i++)
		r_lo = (r_lo << 8) | rnd[i];
	for (int i = 0; i < 14; i++) {
		int bit = 65 - 5 * i; /* position of the chunk's low bit in the 70-bit number */
		uint64_t v;

		if (bit >= 64)
			v = r_hi >> (bit - 64);
		else if (bit + 5 > 64)
			v = (r_lo >> bit) | (r_hi << (64 - bit));
		else
			v = r_lo >> bit;
		id[16 + i] = b32[v & 31];
	}
	id[30] = '\0';
	return HARK_OK;
}

/* ---- time formatting ------------------------------------------------------------ */

void hark_store_utc_day(double t, char day[11])
{
	time_t s = (time_t)floor(t);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || strftime(day, 11, "%Y-%m-%d", &tm) != 10)
		snprintf(day, 11, "1970-01-01");
}

void hark_store_rfc3339(double t, char *out, size_t outlen)
{
	double fl = floor(t);
	time_t s = (time_t)fl;
	int ms = (int)((t - fl) * 1000.0);
	struct tm tm;
	char base[32];

	if (!out || !outlen)
		return;
	if (ms > 999)
		ms = 999;
	if (ms < 0)
		ms = 0;
	if (!gmtime_r(&s, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, outlen, "%s.%03dZ", base, ms);
}

/* ---- summary JSON ------------------------------------------------------------------ */

static json_t *time_or_null(double t)
{
	char buf[40];

	if (!(t > 0))
		return json_null();
	hark_store_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
	json_t *v;

	if (!s)
		return json_null();
	v = json_string(s);
	return v ? v : json_null(); /* invalid UTF-8: never fail the whole summary */
}

static int set_new(json_t *o, const char *k, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new(o, k, v);
}

char *hark_store_job_summary_json(const struct hark_job *j)
{
	json_t *o = NULL, *progress = NULL, *timings = NULL, *err = NULL, *links = NULL;
	char path[128], *out = NULL;
	int bad = 0;

	if (!j)
		return NULL;
	o = json_object();
	if (!o)
		return NULL;
	bad |= set_new(o, "id", json_string(j->id));
	bad |= set_new(o, "type", json_string(j->type));
	bad |= set_new(o, "status", json_string(hark_store_status_name(j->status)));
	bad |= set_new(o, "priority", json_string(hark_store_priority_name(j->priority)));
	bad |= set_new(o, "cached", json_boolean(j->cached));
	bad |= set_new(o, "filename", str_or_null(j->filename));
	bad |= set_new(o, "media_type", str_or_null(j->media_type));
	bad |= set_new(o, "created_at", time_or_null(j->created_at));
	bad |= set_new(o, "started_at", time_or_null(j->started_at));
	bad |= set_new(o, "finished_at", time_or_null(j->finished_at));
	bad |= set_new(o, "attempts", json_integer(j->attempts));
	bad |= set_new(o, "audio_s", json_real(isfinite(j->audio_s) ? j->audio_s : 0));

	progress = json_object();
	if (progress) {
		bad |= set_new(progress, "stage", str_or_null(j->stage));
		bad |= set_new(progress, "percent",
			       json_real(isfinite(j->percent) ? j->percent : 0));
		bad |= set_new(progress, "eta_s",
			       j->eta_s >= 0 && isfinite(j->eta_s) ? json_real(j->eta_s)
								     : json_null());
	}
	bad |= set_new(o, "progress", progress);

	if (j->timings && *j->timings)
		timings = json_loads(j->timings, JSON_REJECT_DUPLICATES, NULL);
	if (timings && !json_is_object(timings)) {
		json_decref(timings);
		timings = NULL;
	}
	bad |= set_new(o, "timings", timings ? timings : json_object());

	if (j->status == HARK_JOB_FAILED) {
		err = json_object();
		if (err) {
			bad |= set_new(err, "code", json_string(j->error_code ? j->error_code
									      : "internal"));
			bad |= set_new(err, "message", str_or_null(j->error_message));
		}
		bad |= set_new(o, "error", err);
	} else {
		bad |= set_new(o, "error", json_null());
	}

	links = json_object();
	if (links) {
		snprintf(path, sizeof(path), "/v1/jobs/%s", j->id);
		bad |= set_new(links, "self", json_string(path));
		snprintf(path, sizeof(path), "/v1/jobs/%s/progress", j->id);
		bad |= set_new(links, "progress", json_string(path));
		snprintf(path, sizeof(path), "/v1/jobs/%s/events", j->id);
		bad |= set_new(links, "events", json_string(path));
		snprintf(path, sizeof(path), "/v1/jobs/%s/ws", j->id);
		bad |= set_new(links, "ws", json_string(path));
		snprintf(path, sizeof(path), "/v1/jobs/%s/result", j->id);
		bad |= set_new(links, "result", json_string(path));
	}
	bad |= set_new(o, "links", links);

	if (!bad)
		out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	json_decref(o);
	return out;
}

/* ---- open / close ---------------------------------------------------------------- */

struct hark_store_params hark_store_default_params(void)
{
	struct hark_store_params p;

	memset(&p, 0, sizeof(p));
	p.sync_full = 1;
	p.busy_timeout_s = 10;
	return p;
}

int hark_store_open(const char *location, const struct hark_store_params *p,
		    struct hark_store **out, char *err, size_t errlen)
{
	struct hark_store_params def = hark_store_default_params();
	struct hark_store *st = NULL;
	const struct hark_store_ops *ops = &hark_store_sqlite_ops;
	int rc;

	errmsg_reset();
	if (out)
		*out = NULL;
	if (!location || !*location || !out) {
		if (err && errlen)
			snprintf(err, errlen, "no store location given");
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "no store location given");
	}
	if (strncmp(location, "postgres://", 11) == 0 ||
	    strncmp(location, "postgresql://", 13) == 0) {
		if (err && errlen)
			snprintf(err, errlen, "PostgreSQL store is not available in this build");
		return hark_store_set_errmsg(HARK_ERR_UNSUPPORTED,
					     "PostgreSQL store is not available in this build");
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return HARK_ERR_NOMEM;
	st->ops = ops;
	rc = ops->open(location, p ? p : &def, &st->be, err, errlen);
	if (rc != HARK_OK) {
		free(st);
		return finish_err(rc);
	}
	*out = st;
	return HARK_OK;
}

void hark_store_close(struct hark_store *st)
{
	if (!st)
		return;
	st->ops->close(st->be);
	free(st);
}

const char *hark_store_backend(const struct hark_store *st)
{
	return st ? st->ops->name : "none";
}

/* ---- dispatchers ------------------------------------------------------------------ */

#define CHECK(cond)                                                                 \
	do {                                                                        \
		if (!(cond))                                                        \
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,          \
						     "invalid argument: %s", #cond); \
	} while (0)

static void ev_zero(struct hark_event *ev)
{
	if (ev)
		memset(ev, 0, sizeof(*ev));
}

int hark_store_job_insert(struct hark_store *st, const struct hark_job *j, struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && j && j->id[0] && j->type[0]);
	CHECK(j->priority >= 0 && j->priority < HARK_PRIO_COUNT);
	return finish_err(st->ops->job_insert(st->be, j, ev));
}

int hark_store_job_find_done(struct hark_store *st, const char *dedup_key, struct hark_job *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && out && dedup_key);
	if (!*dedup_key)
		return HARK_ERR_NOT_FOUND;
	return finish_err(st->ops->job_find_done(st->be, dedup_key, out));
}

int hark_store_job_insert_cached(struct hark_store *st, const struct hark_job *j,
				 const char *source_id, struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && j && j->id[0] && j->type[0] && source_id && *source_id);
	CHECK(j->priority >= 0 && j->priority < HARK_PRIO_COUNT);
	return finish_err(st->ops->job_insert_cached(st->be, j, source_id, ev));
}

int hark_store_job_get(struct hark_store *st, const char *id, struct hark_job *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && id && out);
	return finish_err(st->ops->job_get(st->be, id, out));
}

int hark_store_job_list(struct hark_store *st, const struct hark_job_filter *f,
			struct hark_job **out, size_t *n, char next_cursor[HARK_ID_LEN])
{
	struct hark_job_filter g;
	char cursor[HARK_ID_LEN] = "";

	errmsg_reset();
	CHECK(st && f && out && n && next_cursor);
	CHECK(f->status >= -1 && f->status < HARK_JOB_STATUS_COUNT);
	/* the cursor may live in next_cursor itself: copy it before clearing */
	g = *f;
	if (f->cursor) {
		snprintf(cursor, sizeof(cursor), "%s", f->cursor);
		g.cursor = cursor;
	}
	*out = NULL;
	*n = 0;
	next_cursor[0] = '\0';
	return finish_err(st->ops->job_list(st->be, &g, out, n, next_cursor));
}

int hark_store_job_claim(struct hark_store *st, const int *prio_order, const char *owner,
			 double now, double lease_s, struct hark_job *out, struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && prio_order && owner && *owner && strlen(owner) < 64 && out);
	for (int i = 0; i < HARK_PRIO_COUNT; i++)
		CHECK(prio_order[i] >= 0 && prio_order[i] < HARK_PRIO_COUNT);
	return finish_err(st->ops->job_claim(st->be, prio_order, owner, now, lease_s, out, ev));
}

int hark_store_job_heartbeat(struct hark_store *st, const char *id, const char *owner,
			     double lease_until, int *cancel_requested)
{
	int dummy = 0;

	errmsg_reset();
	CHECK(st && id && owner && *owner);
	return finish_err(st->ops->job_heartbeat(st->be, id, owner, lease_until,
						 cancel_requested ? cancel_requested : &dummy));
}

int hark_store_job_progress(struct hark_store *st, const char *id, const char *owner,
			    const char *stage, double percent, double eta_s,
			    const char *timings, struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id && owner && *owner && stage);
	if (!(percent >= 0))
		percent = 0;
	if (percent > 100)
		percent = 100;
	if (!isfinite(eta_s))
		eta_s = -1;
	return finish_err(st->ops->job_progress(st->be, id, owner, stage, percent, eta_s,
						timings, ev));
}

int hark_store_job_finish(struct hark_store *st, const char *id, const char *owner,
			  const struct hark_result *results, size_t n, double audio_s,
			  const char *timings, struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id && owner && *owner && (results || n == 0));
	for (size_t i = 0; i < n; i++)
		CHECK(results[i].format && *results[i].format && (results[i].body || !results[i].len));
	if (!(audio_s >= 0) || !isfinite(audio_s))
		audio_s = 0;
	return finish_err(st->ops->job_finish(st->be, id, owner, results, n, audio_s, timings, ev));
}

int hark_store_job_fail(struct hark_store *st, const char *id, const char *owner,
			const char *code, const char *message, double retry_at,
			struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id && owner && *owner);
	return finish_err(st->ops->job_fail(st->be, id, owner, code ? code : "internal",
					    message ? message : "", retry_at, ev));
}

int hark_store_job_cancel(struct hark_store *st, const char *id, int *status_out,
			  struct hark_event *ev)
{
	int dummy;

	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id);
	return finish_err(st->ops->job_cancel(st->be, id, status_out ? status_out : &dummy, ev));
}

int hark_store_job_canceled(struct hark_store *st, const char *id, const char *owner,
			    struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id && owner && *owner);
	return finish_err(st->ops->job_canceled(st->be, id, owner, ev));
}

int hark_store_job_release(struct hark_store *st, const char *id, const char *owner,
			   struct hark_event *ev)
{
	errmsg_reset();
	ev_zero(ev);
	CHECK(st && id && owner && *owner);
	return finish_err(st->ops->job_release(st->be, id, owner, ev));
}

int hark_store_job_recover(struct hark_store *st, double now, const char *owner_prefix,
			   size_t *n_out)
{
	size_t dummy;

	errmsg_reset();
	if (n_out)
		*n_out = 0;
	CHECK(st);
	return finish_err(st->ops->job_recover(st->be, now, owner_prefix, n_out ? n_out : &dummy));
}

int hark_store_job_purge(struct hark_store *st, const char *id, char orphan_sha[HARK_SHA_HEX_LEN])
{
	char dummy[HARK_SHA_HEX_LEN];

	errmsg_reset();
	if (orphan_sha)
		orphan_sha[0] = '\0';
	CHECK(st && id);
	return finish_err(st->ops->job_purge(st->be, id, orphan_sha ? orphan_sha : dummy));
}

int hark_store_sweep(struct hark_store *st, double now, size_t limit, size_t *n_jobs,
		     char (**orphans)[HARK_SHA_HEX_LEN], size_t *n_orphans)
{
	errmsg_reset();
	if (n_jobs)
		*n_jobs = 0;
	if (orphans)
		*orphans = NULL;
	if (n_orphans)
		*n_orphans = 0;
	CHECK(st && n_jobs && orphans && n_orphans);
	if (limit == 0)
		return HARK_OK;
	return finish_err(st->ops->sweep(st->be, now, limit, n_jobs, orphans, n_orphans));
}

int hark_store_job_counts(struct hark_store *st, int64_t by_status[HARK_JOB_STATUS_COUNT],
			  int64_t queued_by_prio[HARK_PRIO_COUNT])
{
	errmsg_reset();
	CHECK(st && by_status && queued_by_prio);
	memset(by_status, 0, sizeof(int64_t) * HARK_JOB_STATUS_COUNT);
	memset(queued_by_prio, 0, sizeof(int64_t) * HARK_PRIO_COUNT);
	return finish_err(st->ops->job_counts(st->be, by_status, queued_by_prio));
}

int hark_store_key_running(struct hark_store *st, const char *key_id, int64_t *n)
{
	errmsg_reset();
	if (n)
		*n = 0;
	CHECK(st && key_id && n);
	return finish_err(st->ops->key_running(st->be, key_id, n));
}

int hark_store_key_unfinished(struct hark_store *st, const char *key_id, int64_t *n)
{
	errmsg_reset();
	if (n)
		*n = 0;
	CHECK(st && key_id && n);
	return finish_err(st->ops->key_unfinished(st->be, key_id, n));
}

int hark_store_result_get(struct hark_store *st, const char *job_id, const char *format,
			  char **body, size_t *len)
{
	errmsg_reset();
	if (body)
		*body = NULL;
	if (len)
		*len = 0;
	CHECK(st && job_id && format && body && len);
	return finish_err(st->ops->result_get(st->be, job_id, format, body, len));
}

int hark_store_event_list(struct hark_store *st, const char *job_id, int64_t after_seq,
			  size_t limit, struct hark_event **out, size_t *n)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	CHECK(st && job_id && out && n);
	if (limit == 0)
		return HARK_OK;
	if (limit > 100000)
		limit = 100000;
	return finish_err(st->ops->event_list(st->be, job_id, after_seq, limit, out, n));
}

int hark_store_key_insert(struct hark_store *st, const struct hark_key *k)
{
	errmsg_reset();
	CHECK(st && k && k->id[0] && strlen(k->hash) == 64 && k->prefix[0]);
	return finish_err(st->ops->key_insert(st->be, k));
}

int hark_store_key_list(struct hark_store *st, struct hark_key **out, size_t *n)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	CHECK(st && out && n);
	return finish_err(st->ops->key_list(st->be, out, n));
}

int hark_store_key_revoke(struct hark_store *st, const char *id_or_prefix, double now)
{
	errmsg_reset();
	CHECK(st && id_or_prefix && *id_or_prefix);
	return finish_err(st->ops->key_revoke(st->be, id_or_prefix, now > 0 ? now : hark_store_now()));
}

int hark_store_key_get_by_hash(struct hark_store *st, const char *hash, struct hark_key *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && hash && out);
	return finish_err(st->ops->key_get_by_hash(st->be, hash, out));
}

int hark_store_usage_get(struct hark_store *st, const char *key_id, const char *day, double *audio_s)
{
	errmsg_reset();
	if (audio_s)
		*audio_s = 0;
	CHECK(st && key_id && day && audio_s);
	return finish_err(st->ops->usage_get(st->be, key_id, day, audio_s));
}

int hark_store_keys_version(struct hark_store *st, int64_t *version)
{
	errmsg_reset();
	if (version)
		*version = 0;
	CHECK(st && version);
	return finish_err(st->ops->keys_version(st->be, version));
}

int hark_store_webhook_next(struct hark_store *st, double now, int max_attempts,
			    struct hark_webhook *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && out);
	return finish_err(st->ops->webhook_next(st->be, now, max_attempts, out));
}

int hark_store_webhook_update(struct hark_store *st, int64_t id, int ok, double next_at)
{
	errmsg_reset();
	CHECK(st);
	return finish_err(st->ops->webhook_update(st->be, id, ok, next_at));
}

int hark_store_meta_get(struct hark_store *st, const char *name, char **value)
{
	errmsg_reset();
	if (value)
		*value = NULL;
	CHECK(st && name && value);
	return finish_err(st->ops->meta_get(st->be, name, value));
}

int hark_store_meta_set(struct hark_store *st, const char *name, const char *value)
{
	errmsg_reset();
	CHECK(st && name && value);
	return finish_err(st->ops->meta_set(st->be, name, value));
}

int hark_store_meta_init(struct hark_store *st, const char *name, const char *value,
			 char **out)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	CHECK(st && name && value && out);
	return finish_err(st->ops->meta_init(st->be, name, value, out));
}

int hark_store_ping_write(struct hark_store *st, char *err, size_t errlen)
{
	int rc;

	errmsg_reset();
	CHECK(st);
	rc = finish_err(st->ops->ping_write(st->be));
	if (rc != HARK_OK && err && errlen)
		snprintf(err, errlen, "%s", tl_errmsg);
	return rc;
}

int hark_store_webhook_secret(struct hark_store *st, char **secret)
{
	unsigned char raw[32];
	char hex[65];
	int rc;

	errmsg_reset();
	if (secret)
		*secret = NULL;
	CHECK(st && secret);
	rc = st->ops->meta_get(st->be, "webhook_secret", secret);
	if (rc != HARK_ERR_NOT_FOUND)
		return finish_err(rc);
	errmsg_reset();
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return hark_store_set_errmsg(HARK_ERR_INTERNAL, "system random generator failed");
	hex_encode(raw, sizeof(raw), hex);
	OPENSSL_cleanse(raw, sizeof(raw));
	rc = st->ops->meta_init(st->be, "webhook_secret", hex, secret);
	OPENSSL_cleanse(hex, sizeof(hex));
	return finish_err(rc);
}

/* ---- LLM layer ---------------------------------------------------------------------- */

int hark_store_llm_cache_get(struct hark_store *st, const char *hash, double now, char **value,
			     size_t *len)
{
	errmsg_reset();
	if (value)
		*value = NULL;
	if (len)
		*len = 0;
	CHECK(st && hash && *hash && value && len);
	CHECK(!isnan(now));
	return finish_err(st->ops->llm_cache_get(st->be, hash, now, value, len));
}

int hark_store_llm_cache_put(struct hark_store *st, const char *hash, const char *model,
			     const char *value, size_t len, double expires_at)
{
	errmsg_reset();
	CHECK(st && hash && *hash && (value || len == 0));
	CHECK(isfinite(expires_at) && expires_at >= 0);
	if (len > 1000000000u)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "cached reply of %zu bytes is too large",
					     len);
	return finish_err(st->ops->llm_cache_put(st->be, hash, model ? model : "",
						 value ? value : "", len, expires_at));
}

int hark_store_llm_cache_purge(struct hark_store *st, double now, int64_t *n_out)
{
	int64_t dummy;

	errmsg_reset();
	if (n_out)
		*n_out = 0;
	CHECK(st && !isnan(now));
	return finish_err(st->ops->llm_cache_purge(st->be, now, n_out ? n_out : &dummy));
}

int hark_store_llm_call_add(struct hark_store *st, const struct hark_llm_call *c)
{
	errmsg_reset();
	CHECK(st && c);
	CHECK(isfinite(c->at) && isfinite(c->cost_usd) && !isnan(c->latency_s));
	return finish_err(st->ops->llm_call_add(st->be, c));
}

int hark_store_llm_usage(struct hark_store *st, const char *job_id, const char *key_id,
			 const char *model, double since, struct hark_llm_usage *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && out);
	if (isnan(since))
		since = 0;
	return finish_err(st->ops->llm_usage(st->be, job_id, key_id, model, since, out));
}

/* Reservations count whole tokens (rounded up, as the in-process limiter
 * does), so window sums are exact; negative counts are 0. */
static double whole_tokens(double tokens)
{
	if (!(tokens > 0))
		return 0;
	if (tokens > 1e15)
		return 1e15;
	return ceil(tokens);
}

int hark_store_llm_rate_acquire(struct hark_store *st, const char *key, double rpm, double tpm,
				double window_s, double tokens, double now, int *admitted,
				double *retry_at, int64_t *ticket)
{
	int64_t dummy;

	errmsg_reset();
	if (admitted)
		*admitted = 0;
	if (retry_at)
		*retry_at = 0;
	if (ticket)
		*ticket = 0;
	CHECK(st && key && *key && strnlen(key, 1025) <= 1024 && admitted && retry_at);
	CHECK(isfinite(now) && !isnan(rpm) && !isnan(tpm) && !isnan(tokens));
	if (!(rpm > 0) || isinf(rpm))
		rpm = 0;
	if (!(tpm > 0) || isinf(tpm))
		tpm = 0;
	if (rpm > 0 || tpm > 0)
		CHECK(isfinite(window_s) && window_s > 0);
	tokens = whole_tokens(tokens);
	return finish_err(st->ops->llm_rate_acquire(st->be, key, rpm, tpm, window_s, tokens, now,
						    admitted, retry_at, ticket ? ticket : &dummy));
}

int hark_store_llm_rate_adjust(struct hark_store *st, int64_t ticket, double tokens)
{
	errmsg_reset();
	CHECK(st && !isnan(tokens));
	if (ticket <= 0)
		return HARK_OK; /* no reservation behind it (unlimited key) */
	return finish_err(st->ops->llm_rate_adjust(st->be, ticket, whole_tokens(tokens)));
}

int hark_store_llm_rate_block(struct hark_store *st, const char *key, double until)
{
	errmsg_reset();
	CHECK(st && key && *key && strnlen(key, 1025) <= 1024 && !isnan(until));
	return finish_err(st->ops->llm_rate_block(st->be, key, until));
}

/* ---- meeting analysis --------------------------------------------------------------- */

void hark_meeting_rec_clear(struct hark_meeting_rec *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->source);
	free(m->date);
	free(m->method);
	free(m->model);
	free(m->minutes_json);
	free(m->graph_json);
	memset(m, 0, sizeof(*m));
}

void hark_meeting_rec_array_free(struct hark_meeting_rec *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		hark_meeting_rec_clear(&m[i]);
	free(m);
}

void hark_search_hits_free(struct hark_search_hit *hits, size_t n)
{
	if (!hits)
		return;
	for (size_t i = 0; i < n; i++) {
		free(hits[i].kind);
		free(hits[i].meeting);
		free(hits[i].speaker);
		free(hits[i].text);
		free(hits[i].snippet);
	}
	free(hits);
}

/* Strict UTF-8 check of the first len bytes (no overlongs, no surrogates). */
static int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += k + 1;
	}
	return 1;
}

/*
 * Checks an optional/required string against a byte cap: HARK_OK, or
 * INVALID_ARG (missing when required, empty when required, not UTF-8) /
 * LIMIT (longer than max), with a message naming what.
 */
static int check_str(const char *s, size_t max, int required, const char *what)
{
	size_t len;

	if (!s) {
		if (required)
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "%s is missing", what);
		return HARK_OK;
	}
	len = strnlen(s, max + 1);
	if (len > max)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%s is longer than %zu bytes", what,
					     max);
	if (required && len == 0)
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "%s is empty", what);
	if (!utf8_valid(s, len))
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "%s is not valid UTF-8", what);
	return HARK_OK;
}

/* 64 lowercase hex digits (allow_empty: "" too). */
static int is_sha_hex(const char *s, int allow_empty)
{
	size_t i;

	if (!s)
		return 0;
	if (!*s)
		return allow_empty;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

static int is_doc_kind(const char *k)
{
	static const char *const kinds[] = {"chunk", "summary", "topic",
					    "decision", "action", "question"};

	for (size_t i = 0; k && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(k, kinds[i]) == 0)
			return 1;
	return 0;
}

#define CHECK_RC(expr)                      \
	do {                                \
		int check_rc_ = (expr);     \
		if (check_rc_ != HARK_OK)   \
			return check_rc_;   \
	} while (0)

static int check_meeting_name(const char *name)
{
	return check_str(name, HARK_STORE_NAME_MAX, 1, "meeting name");
}

int hark_store_meeting_put(struct hark_store *st, const struct hark_meeting_rec *m,
			   const struct hark_meeting_chunk *chunks, size_t n,
			   const struct hark_search_doc *docs, size_t n_docs)
{
	errmsg_reset();
	CHECK(st && m && (chunks || n == 0) && (docs || n_docs == 0));
	CHECK_RC(check_meeting_name(m->name));
	CHECK_RC(check_str(m->source, 4096, 0, "meeting source"));
	CHECK_RC(check_str(m->date, 64, 0, "meeting date"));
	CHECK_RC(check_str(m->method, 64, 0, "analysis method"));
	CHECK_RC(check_str(m->model, 256, 0, "analysis model"));
	CHECK_RC(check_str(m->minutes_json, HARK_STORE_JSON_MAX, 0, "minutes JSON"));
	CHECK_RC(check_str(m->graph_json, HARK_STORE_JSON_MAX, 0, "graph JSON"));
	CHECK(is_sha_hex(m->content_sha, 1) && is_sha_hex(m->params_sha, 1));
	CHECK(m->n_chunks >= 0 && !isnan(m->analyzed_at));
	if (n > HARK_STORE_CHUNKS_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%zu chunks exceed the cap of %d", n,
					     HARK_STORE_CHUNKS_MAX);
	if (n_docs > HARK_STORE_DOCS_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT,
					     "%zu search documents exceed the cap of %d", n_docs,
					     HARK_STORE_DOCS_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!is_sha_hex(chunks[i].chunk_sha, 0))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "chunk %zu: chunk_sha is not 64 hex digits", i);
		CHECK(!isnan(chunks[i].start_s) && !isnan(chunks[i].end_s));
	}
	for (size_t i = 0; i < n_docs; i++) {
		const struct hark_search_doc *d = &docs[i];

		if (!is_doc_kind(d->kind))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "document %zu: unknown kind", i);
		if (d->meeting && strcmp(d->meeting, m->name) != 0)
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "document %zu belongs to another meeting", i);
		CHECK_RC(check_str(d->text, HARK_STORE_DOC_TEXT_MAX, 1, "document text"));
		CHECK_RC(check_str(d->speaker, 256, 0, "document speaker"));
		if (d->chunk_sha && !is_sha_hex(d->chunk_sha, 1))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "document %zu: chunk_sha is not 64 hex digits",
						     i);
		CHECK(!isnan(d->start_s) && !isnan(d->end_s));
	}
	return finish_err(st->ops->meeting_put(st->be, m, chunks, n, docs, n_docs));
}

int hark_store_meeting_get(struct hark_store *st, const char *name, struct hark_meeting_rec *out)
{
	errmsg_reset();
	if (out)
		memset(out, 0, sizeof(*out));
	CHECK(st && out);
	CHECK_RC(check_meeting_name(name));
	return finish_err(st->ops->meeting_get(st->be, name, out));
}

int hark_store_meeting_list(struct hark_store *st, int with_json, struct hark_meeting_rec **out,
			    size_t *n)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	CHECK(st && out && n);
	return finish_err(st->ops->meeting_list(st->be, with_json != 0, out, n));
}

int hark_store_meeting_chunks(struct hark_store *st, const char *name,
			      struct hark_meeting_chunk **out, size_t *n)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	CHECK(st && out && n);
	CHECK_RC(check_meeting_name(name));
	return finish_err(st->ops->meeting_chunks(st->be, name, out, n));
}

int hark_store_meeting_delete(struct hark_store *st, const char *name)
{
	errmsg_reset();
	CHECK(st);
	CHECK_RC(check_meeting_name(name));
	return finish_err(st->ops->meeting_delete(st->be, name));
}

static int check_pipeline(const char *pipeline)
{
	return check_str(pipeline, 128, 1, "pipeline");
}

int hark_store_chunk_result_get(struct hark_store *st, const char *chunk_sha,
				const char *pipeline, char **json)
{
	const char *shas[1];
	char *got = NULL;
	int rc;

	errmsg_reset();
	if (json)
		*json = NULL;
	CHECK(st && json && is_sha_hex(chunk_sha, 0));
	CHECK_RC(check_pipeline(pipeline));
	shas[0] = chunk_sha;
	rc = st->ops->chunk_result_get_many(st->be, pipeline, shas, 1, &got);
	if (rc == HARK_OK && !got)
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no %s result for chunk %s",
					   pipeline, chunk_sha);
	*json = got;
	return finish_err(rc);
}

int hark_store_chunk_result_put(struct hark_store *st, const char *chunk_sha,
				const char *pipeline, const char *model, const char *json)
{
	errmsg_reset();
	CHECK(st && is_sha_hex(chunk_sha, 0));
	CHECK_RC(check_pipeline(pipeline));
	CHECK_RC(check_str(model, 256, 0, "model"));
	CHECK_RC(check_str(json, HARK_STORE_JSON_MAX, 1, "chunk result JSON"));
	return finish_err(st->ops->chunk_result_put(st->be, chunk_sha, pipeline, model, json));
}

int hark_store_chunk_result_get_many(struct hark_store *st, const char *pipeline,
				     const char *const *shas, size_t n, char **out_json)
{
	errmsg_reset();
	CHECK(st && (shas || n == 0) && (out_json || n == 0));
	for (size_t i = 0; i < n; i++)
		out_json[i] = NULL;
	CHECK_RC(check_pipeline(pipeline));
	if (n > HARK_STORE_BATCH_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%zu shas exceed the batch cap of %d",
					     n, HARK_STORE_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (!is_sha_hex(shas[i], 0))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "sha %zu is not 64 hex digits", i);
	if (n == 0)
		return HARK_OK;
	return finish_err(st->ops->chunk_result_get_many(st->be, pipeline, shas, n, out_json));
}

static size_t clamp_limit(size_t limit)
{
	if (limit == 0)
		return 10;
	return limit > 1000 ? 1000 : limit;
}

static int check_filters(const char *kind, const char *meeting)
{
	if (kind && !is_doc_kind(kind))
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
					     "unknown document kind filter (use chunk, summary, "
					     "topic, decision, action or question)");
	if (meeting)
		return check_meeting_name(meeting);
	return HARK_OK;
}

int hark_store_search_bm25_in(struct hark_store *st, const char *fts_query,
			      const char *kind_filter, const char *meeting_filter, size_t limit,
			      struct hark_search_hit **out, size_t *n)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n)
		*n = 0;
	CHECK(st && out && n);
	CHECK_RC(check_str(fts_query, HARK_STORE_QUERY_MAX, 1, "search query"));
	CHECK_RC(check_filters(kind_filter, meeting_filter));
	return finish_err(st->ops->search_bm25(st->be, fts_query, kind_filter, meeting_filter,
					       clamp_limit(limit), out, n));
}

int hark_store_search_bm25(struct hark_store *st, const char *fts_query, const char *kind_filter,
			   size_t limit, struct hark_search_hit **out, size_t *n)
{
	return hark_store_search_bm25_in(st, fts_query, kind_filter, NULL, limit, out, n);
}

int hark_store_search_docs_by_sha(struct hark_store *st, const char *const *text_shas, size_t n,
				  const char *kind_filter, const char *meeting_filter,
				  const char *highlight_query, size_t limit,
				  struct hark_search_hit **out, size_t *n_out)
{
	errmsg_reset();
	if (out)
		*out = NULL;
	if (n_out)
		*n_out = 0;
	CHECK(st && out && n_out && (text_shas || n == 0));
	CHECK_RC(check_filters(kind_filter, meeting_filter));
	CHECK_RC(check_str(highlight_query, HARK_STORE_QUERY_MAX, 0, "highlight query"));
	if (n > HARK_STORE_BATCH_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%zu shas exceed the batch cap of %d",
					     n, HARK_STORE_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (!is_sha_hex(text_shas[i], 0))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "sha %zu is not 64 hex digits", i);
	if (n == 0)
		return HARK_OK;
	return finish_err(st->ops->search_docs_by_sha(st->be, text_shas, n, kind_filter,
						      meeting_filter, highlight_query,
						      clamp_limit(limit), out, n_out));
}

int hark_store_search_has_fts(struct hark_store *st)
{
	return st ? st->ops->search_has_fts(st->be) : 0;
}

static int check_model(const char *model)
{
	return check_str(model, 159, 1, "embedding model");
}

static int check_vectors(const float *v, size_t n, size_t dim)
{
	if (dim == 0 || dim > HARK_STORE_EMBED_DIM_MAX)
		return hark_store_set_errmsg(dim ? HARK_ERR_LIMIT : HARK_ERR_INVALID_ARG,
					     "embedding dimension %zu outside 1..%d", dim,
					     HARK_STORE_EMBED_DIM_MAX);
	for (size_t i = 0; i < n * dim; i++)
		if (!isfinite(v[i]))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "embedding value %zu of vector %zu is not finite",
						     i % dim, i / dim);
	return HARK_OK;
}

int hark_store_embedding_put(struct hark_store *st, const char *text_sha, const char *model,
			     const float *v, size_t dim)
{
	const char *shas[1];

	errmsg_reset();
	CHECK(st && is_sha_hex(text_sha, 0) && v);
	CHECK_RC(check_model(model));
	CHECK_RC(check_vectors(v, 1, dim));
	shas[0] = text_sha;
	return finish_err(st->ops->embedding_put_many(st->be, model, shas, 1, v, dim));
}

int hark_store_embedding_put_many(struct hark_store *st, const char *model,
				  const char *const *shas, size_t n, const float *vecs, size_t dim)
{
	errmsg_reset();
	CHECK(st && (shas || n == 0) && (vecs || n == 0));
	CHECK_RC(check_model(model));
	if (n > HARK_STORE_BATCH_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%zu vectors exceed the batch cap of %d",
					     n, HARK_STORE_BATCH_MAX);
	if (n == 0)
		return HARK_OK;
	for (size_t i = 0; i < n; i++)
		if (!is_sha_hex(shas[i], 0))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "sha %zu is not 64 hex digits", i);
	CHECK_RC(check_vectors(vecs, n, dim));
	return finish_err(st->ops->embedding_put_many(st->be, model, shas, n, vecs, dim));
}

int hark_store_embedding_get_many(struct hark_store *st, const char *model,
				  const char *const *shas, size_t n, float **vecs, size_t *dims)
{
	errmsg_reset();
	CHECK(st && (shas || n == 0) && (vecs || n == 0) && (dims || n == 0));
	for (size_t i = 0; i < n; i++) {
		vecs[i] = NULL;
		dims[i] = 0;
	}
	CHECK_RC(check_model(model));
	if (n > HARK_STORE_BATCH_MAX)
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%zu shas exceed the batch cap of %d",
					     n, HARK_STORE_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (!is_sha_hex(shas[i], 0))
			return hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
						     "sha %zu is not 64 hex digits", i);
	if (n == 0)
		return HARK_OK;
	return finish_err(st->ops->embedding_get_many(st->be, model, shas, n, vecs, dims));
}

int hark_store_embedding_scan(struct hark_store *st, const char *model,
			      int (*cb)(const char *text_sha, const float *v, size_t dim, void *ud),
			      void *ud)
{
	errmsg_reset();
	CHECK(st && cb);
	CHECK_RC(check_model(model));
	return finish_err(st->ops->embedding_scan(st->be, model, cb, ud));
}
