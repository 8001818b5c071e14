/*
 * Exact sliding-window rate limits of hark-llm-sim, one window per model. A
 * request admitted at simulated time t with T counted tokens occupies the
 * window during [t, t + window_s): an arrival at time u is admitted when the
 * requests admitted in (u - window_s, u] plus itself stay within rpm and
 * their counted tokens plus its own within tpm (0 = no limit). A rejected
 * arrival consumes nothing. Lookups are O(log n) through cumulative token
 * sums; eviction is amortised O(1). Single-threaded (the service thread).
 */
#ifndef HARK_SIM_LIMITS_H
#define HARK_SIM_LIMITS_H

#include <stddef.h>

struct hark_sim_window;

enum hark_sim_admit {
	HARK_SIM_ADMITTED = 0,
	HARK_SIM_REJECTED = 1, /* over a limit now; *retry_s says when it would fit */
	HARK_SIM_TOO_LARGE = 2 /* tokens > tpm: never fits */
};

/* What the x-ratelimit-* headers report at a time. */
struct hark_sim_window_state {
	long requests;          /* admitted requests in the window */
	long tokens;            /* their counted tokens */
	double reset_requests_s; /* until the window has room for one more request (0 = now) */
	double reset_tokens_s;   /* until every counted token has left the window */
};

/* NULL on allocation failure. */
struct hark_sim_window *hark_sim_window_new(void);
void hark_sim_window_free(struct hark_sim_window *w);

/*
 * Arrival at sim time now (non-decreasing across calls) of a request of
 * tokens counted tokens. Admits it (recording it) or returns
 * HARK_SIM_REJECTED / HARK_SIM_TOO_LARGE with *retry_s = simulated seconds
 * until an arrival of the same size would be admitted if nothing else
 * arrived (window_s for TOO_LARGE). rpm/tpm 0 = unlimited.
 */
int hark_sim_window_admit(struct hark_sim_window *w, double now, double window_s, long rpm,
			  long tpm, long tokens, double *retry_s);

/* State at sim time now (evicts expired entries first). */
void hark_sim_window_state(struct hark_sim_window *w, double now, double window_s, long rpm,
			   struct hark_sim_window_state *out);

/* Forgets every entry. */
void hark_sim_window_clear(struct hark_sim_window *w);

#endif /* HARK_SIM_LIMITS_H */
