/*
 * Sliding-window limiter of hark-llm-sim: a ring of admitted entries (time,
 * cumulative counted tokens) per model, oldest first. Tokens in the window
 * are the last cumulative sum minus the cumulative sum of the last evicted
 * entry; the wait for a rejected arrival is the expiry of the entry whose
 * departure makes it fit, found by binary search on the cumulative sums.
 */
#include "sim/sim_limits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MAX_ENTRIES ((size_t)1 << 24)

struct entry {
	double t;
	uint64_t cum; /* counted tokens of all admitted entries up to and including this one */
};

struct hark_sim_window {
	struct entry *e;
	size_t cap, head, n;
	uint64_t total;   /* cum of the newest entry (or of everything admitted) */
	uint64_t evicted; /* cum of the newest evicted entry */
};

struct hark_sim_window *hark_sim_window_new(void)
{
	return calloc(1, sizeof(struct hark_sim_window));
}

void hark_sim_window_free(struct hark_sim_window *w)
{
	if (!w)
		return;
	free(w->e);
	free(w);
}

void hark_sim_window_clear(struct hark_sim_window *w)
{
	w->head = w->n = 0;
	w->evicted = w->total;
}

static struct entry *at(struct hark_sim_window *w, size_t i)
{
	return &w->e[(w->head + i) % w->cap];
}

/* Drops entries with t <= now - window_s (they left the window). */
static void evict(struct hark_sim_window *w, double now, double window_s)
{
	while (w->n && at(w, 0)->t + window_s <= now) {
		w->evicted = at(w, 0)->cum;
		w->head = (w->head + 1) % w->cap;
		w->n--;
	}
}

static int push(struct hark_sim_window *w, double t, uint64_t cum)
{
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		struct entry *ne;

		if (ncap > WINDOW_MAX_ENTRIES) {
			/* never reached with limits set (entries <= rpm); without
			 * limits the oldest entry is forgotten early */
			w->evicted = at(w, 0)->cum;
			w->head = (w->head + 1) % w->cap;
			w->n--;
		} else {
			ne = malloc(ncap * sizeof(*ne));
			if (!ne)
				return -1;
			for (size_t i = 0; i < w->n; i++)
				ne[i] = *at(w, i);
			free(w->e);
			w->e = ne;
			w->cap = ncap;
			w->head = 0;
		}
	}
	w->e[(w->head + w->n) % w->cap].t = t;
	w->e[(w->head + w->n) % w->cap].cum = cum;
	w->n++;
	return 0;
}

int hark_sim_window_admit(struct hark_sim_window *w, double now, double window_s, long rpm,
			  long tpm, long tokens, double *retry_s)
{
	uint64_t in_window, need;
	double wait = 0;
	int over = 0;

	if (tokens < 0)
		tokens = 0;
	*retry_s = 0;
	evict(w, now, window_s);
	if (tpm > 0 && tokens > tpm) {
		*retry_s = window_s;
		return HARK_SIM_TOO_LARGE;
	}
	if (rpm > 0 && (long)w->n + 1 > rpm) {
		/* the (n + 1 - rpm)-th oldest must leave */
		size_t k = w->n + 1 - (size_t)rpm;
		double t = at(w, k - 1)->t + window_s - now;
		if (t > wait)
			wait = t;
		over = 1;
	}
	in_window = w->total - w->evicted;
	if (tpm > 0 && in_window + (uint64_t)tokens > (uint64_t)tpm) {
		size_t lo = 0, hi = w->n - 1; /* in_window > 0 here, so n >= 1 */

		need = in_window + (uint64_t)tokens - (uint64_t)tpm;
		/* smallest i with cum[i] - evicted >= need */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (at(w, mid)->cum - w->evicted >= need)
				hi = mid;
			else
				lo = mid + 1;
		}
		{
			double t = at(w, lo)->t + window_s - now;
			if (t > wait)
				wait = t;
		}
		over = 1;
	}
	if (over) {
		*retry_s = wait > 0 ? wait : 0;
		return HARK_SIM_REJECTED;
	}
	if (push(w, now, w->total + (uint64_t)tokens) != 0) {
		*retry_s = 1;
		return HARK_SIM_REJECTED;
	}
	w->total += (uint64_t)tokens;
	return HARK_SIM_ADMITTED;
}

void hark_sim_window_state(struct hark_sim_window *w, double now, double window_s, long rpm,
			   struct hark_sim_window_state *out)
{
	memset(out, 0, sizeof(*out));
	evict(w, now, window_s);
	out->requests = (long)w->n;
	out->tokens = (long)(w->total - w->evicted);
	if (rpm > 0 && (long)w->n >= rpm) {
		size_t k = w->n + 1 - (size_t)rpm;
		out->reset_requests_s = at(w, k - 1)->t + window_s - now;
	}
	if (w->n)
		out->reset_tokens_s = at(w, w->n - 1)->t + window_s - now;
	if (out->reset_requests_s < 0)
		out->reset_requests_s = 0;
	if (out->reset_tokens_s < 0)
		out->reset_tokens_s = 0;
}
