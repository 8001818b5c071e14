/*
 * Circuit breaker for one provider model: closed (calls flow), open (calls
 * refused until open_s has passed), half-open (one probe call at a time; a
 * success closes the breaker, a failure re-opens it). Only failures that
 * say something about the provider's health count (5xx, timeouts,
 * connection errors); the caller decides which. Plain state, no locking:
 * the owner serializes access.
 */
#ifndef HARK_LLM_BREAKER_H
#define HARK_LLM_BREAKER_H

enum hark_llm_breaker_state {
	HARK_LLM_BREAKER_CLOSED = 0,
	HARK_LLM_BREAKER_HALF_OPEN = 1,
	HARK_LLM_BREAKER_OPEN = 2,
};

struct hark_llm_breaker {
	int state;           /* enum hark_llm_breaker_state */
	int failures;        /* consecutive failures while closed */
	int threshold;       /* failures that open it */
	double open_s;       /* how long it stays open */
	double opened_at;    /* when it last opened */
	int probe_inflight;  /* half-open: a probe call is running */
	long transitions;    /* state changes so far (for tests and metrics) */
};

/* A closed breaker; threshold >= 1, open_s > 0 (times in provider seconds). */
void hark_llm_breaker_init(struct hark_llm_breaker *b, int threshold, double open_s);

/*
 * May a call start at now? Closed: yes. Open: no, unless open_s has passed,
 * in which case it turns half-open and admits this call as the probe.
 * Half-open: yes only if no probe is in flight (this call becomes the
 * probe). Returns 1 or 0.
 */
int hark_llm_breaker_allow(struct hark_llm_breaker *b, double now);

/* Would allow() admit a call at now, without changing any state? */
int hark_llm_breaker_would_allow(const struct hark_llm_breaker *b, double now);

/* When an open breaker will next admit a probe (opened_at + open_s);
 * now for any other state. */
double hark_llm_breaker_next_at(const struct hark_llm_breaker *b, double now);

/* Outcome of an admitted call. success closes a half-open breaker and resets
 * the failure count; failure re-opens a half-open breaker, or opens a closed
 * one at the threshold. neutral (e.g. a 429 or a 400: no verdict on health)
 * just frees the probe slot. */
void hark_llm_breaker_success(struct hark_llm_breaker *b, double now);
void hark_llm_breaker_failure(struct hark_llm_breaker *b, double now);
void hark_llm_breaker_neutral(struct hark_llm_breaker *b);

/* "closed", "half_open", "open"; static storage. */
const char *hark_llm_breaker_state_name(int state);

#endif /* HARK_LLM_BREAKER_H */
