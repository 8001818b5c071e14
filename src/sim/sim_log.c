/*
 * Request log (JSONL, one fwrite + fflush per line) and statistics of
 * hark-llm-sim (see sim_log.h). Called from the service thread only.
 */
#include "sim/sim_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"

#define N_STATUS 600
#define LINE_CAP 65536

struct usage {
	long long prompt, completion;
};

struct model_stats {
	long long requests;
	struct usage u;
};

static const char *const fault_names[] = {"none",      "rate_limited",   "down",     "timeout",
					  "truncated", "malformed_body", "bad_json", "wrong_schema",
					  NULL};
#define N_FAULTS 9 /* the named ones + "injected" (a status) */

struct hark_sim_log {
	FILE *f;
	char *line;
	long long requests;
	long long by_status[N_STATUS];
	long long rate_limited;
	long long faults[N_FAULTS];
	struct usage u;
	struct model_stats *models;
	size_t n_models;
	long in_flight, max_in_flight;
};

struct hark_sim_log *hark_sim_log_open(const char *path, size_t n_models, char *err,
				       size_t errlen)
{
	struct hark_sim_log *l = calloc(1, sizeof(*l));

	if (!l)
		goto oom;
	l->line = malloc(LINE_CAP);
	l->models = calloc(n_models ? n_models : 1, sizeof(*l->models));
	if (!l->line || !l->models)
		goto oom;
	l->n_models = n_models;
	if (path && *path) {
		l->f = fopen(path, "a");
		if (!l->f) {
			hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
			hark_sim_log_close(l);
			return NULL;
		}
	}
	return l;
oom:
	hark_errbuf_set(err, errlen, "out of memory");
	hark_sim_log_close(l);
	return NULL;
}

void hark_sim_log_close(struct hark_sim_log *l)
{
	if (!l)
		return;
	if (l->f)
		fclose(l->f);
	free(l->line);
	free(l->models);
	free(l);
}

/* Appends s as a JSON string (with quotes) at *pos. */
static void put_str(char *b, size_t cap, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (!s) {
		if (*pos + 5 < cap) {
			memcpy(b + *pos, "null", 4);
			*pos += 4;
		}
		return;
	}
	if (*pos + 2 >= cap)
		return;
	b[(*pos)++] = '"';
	for (; *s && *pos + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			b[(*pos)++] = '\\';
			b[(*pos)++] = (char)c;
		} else if (c < 0x20) {
			b[(*pos)++] = '\\';
			b[(*pos)++] = 'u';
			b[(*pos)++] = '0';
			b[(*pos)++] = '0';
			b[(*pos)++] = hex[c >> 4];
			b[(*pos)++] = hex[c & 15];
		} else {
			b[(*pos)++] = (char)c;
		}
	}
	b[(*pos)++] = '"';
}

static void put_fmt(char *b, size_t cap, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put_fmt(char *b, size_t cap, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b + *pos, cap - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

static void write_line(struct hark_sim_log *l, const struct hark_sim_logrec *r)
{
	char *b = l->line;
	size_t cap = LINE_CAP - 4, pos = 0;

	put_fmt(b, cap, &pos, "{\"seq\":%ld,\"t\":%.6f,\"t_end\":%.6f,\"real\":%.6f,\"path\":",
		r->seq, r->t, r->t_end, r->real);
	put_str(b, cap, &pos, r->path);
	put_fmt(b, cap, &pos, ",\"model\":");
	put_str(b, cap, &pos, r->model);
	put_fmt(b, cap, &pos, ",\"status\":%d,\"fault\":", r->status);
	put_str(b, cap, &pos, r->fault ? r->fault : "none");
	put_fmt(b, cap, &pos,
		",\"stream\":%d,\"admitted\":%d,\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
		"\"counted_tokens\":%ld,\"max_tokens\":",
		r->stream, r->admitted, r->prompt_tokens, r->completion_tokens, r->counted_tokens);
	if (r->max_tokens >= 0)
		put_fmt(b, cap, &pos, "%ld", r->max_tokens);
	else
		put_fmt(b, cap, &pos, "null");
	put_fmt(b, cap, &pos, ",\"n_inputs\":%ld,\"latency_s\":%.6f,\"identity\":", r->n_inputs,
		r->latency_s);
	put_str(b, cap, &pos, r->identity);
	put_fmt(b, cap, &pos, ",\"chunks\":[");
	for (size_t i = 0; i < r->n_chunks && pos + 300 < cap; i++) {
		size_t n = r->chunks[i].id_len < 200 ? r->chunks[i].id_len : 200;
		b[pos++] = i ? ',' : '"';
		if (i)
			b[pos++] = '"';
		memcpy(b + pos, r->chunks[i].id, n); /* ids are [A-Za-z0-9_.:-]+ */
		pos += n;
		b[pos++] = '"';
	}
	b[pos++] = ']';
	b[pos++] = '}';
	b[pos++] = '\n';
	fwrite(b, 1, pos, l->f);
	fflush(l->f);
}

void hark_sim_log_record(struct hark_sim_log *l, const struct hark_sim_logrec *r)
{
	size_t fi = N_FAULTS - 1;

	if (!l)
		return;
	if (l->f)
		write_line(l, r);
	l->requests++;
	if (r->status >= 0 && r->status < N_STATUS)
		l->by_status[r->status]++;
	for (size_t i = 0; fault_names[i]; i++)
		if (r->fault && strcmp(r->fault, fault_names[i]) == 0)
			fi = i;
	l->faults[fi]++;
	if (r->fault && strcmp(r->fault, "rate_limited") == 0)
		l->rate_limited++;
	if (r->model_index >= 0 && (size_t)r->model_index < l->n_models)
		l->models[r->model_index].requests++;
	if (r->usage_delivered) {
		l->u.prompt += r->prompt_tokens;
		l->u.completion += r->completion_tokens;
		if (r->model_index >= 0 && (size_t)r->model_index < l->n_models) {
			l->models[r->model_index].u.prompt += r->prompt_tokens;
			l->models[r->model_index].u.completion += r->completion_tokens;
		}
	}
}

void hark_sim_log_in_flight(struct hark_sim_log *l, int delta)
{
	l->in_flight += delta;
	if (l->in_flight > l->max_in_flight)
		l->max_in_flight = l->in_flight;
}

void hark_sim_log_reset(struct hark_sim_log *l)
{
	long inf = l->in_flight;

	l->requests = 0;
	memset(l->by_status, 0, sizeof(l->by_status));
	memset(l->faults, 0, sizeof(l->faults));
	l->rate_limited = 0;
	memset(&l->u, 0, sizeof(l->u));
	memset(l->models, 0, l->n_models * sizeof(*l->models));
	l->max_in_flight = inf;
}

static json_t *usage_json(const struct usage *u)
{
	return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt,
			 "completion_tokens", (json_int_t)u->completion, "total_tokens",
			 (json_int_t)(u->prompt + u->completion));
}

json_t *hark_sim_log_stats(const struct hark_sim_log *l, const struct hark_sim_config *c)
{
	json_t *o = json_object(), *bs = json_object(), *ms = json_object(), *fs = json_object();
	char key[16];

	if (!o || !bs || !ms || !fs) {
		json_decref(o);
		json_decref(bs);
		json_decref(ms);
		json_decref(fs);
		return NULL;
	}
	for (int s = 0; s < N_STATUS; s++) {
		if (!l->by_status[s])
			continue;
		snprintf(key, sizeof(key), "%d", s);
		json_object_set_new(bs, key, json_integer((json_int_t)l->by_status[s]));
	}
	for (size_t i = 0; i < N_FAULTS; i++)
		if (l->faults[i])
			json_object_set_new(fs, fault_names[i] ? fault_names[i] : "injected",
					    json_integer((json_int_t)l->faults[i]));
	for (size_t i = 0; i < l->n_models && i < c->n_models; i++)
		json_object_set_new(ms, c->models[i].name,
				    json_pack("{s:I,s:o}", "requests",
					      (json_int_t)l->models[i].requests, "usage",
					      usage_json(&l->models[i].u)));
	json_object_set_new(o, "requests", json_integer((json_int_t)l->requests));
	json_object_set_new(o, "by_status", bs);
	json_object_set_new(o, "rate_limited", json_integer((json_int_t)l->rate_limited));
	json_object_set_new(o, "faults", fs);
	json_object_set_new(o, "usage", usage_json(&l->u));
	json_object_set_new(o, "models", ms);
	json_object_set_new(o, "in_flight", json_integer(l->in_flight));
	json_object_set_new(o, "max_in_flight", json_integer(l->max_in_flight));
	return o;
}
