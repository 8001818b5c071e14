/*
 * Circuit breaker state machine for one provider model (see breaker.h).
 * Closed admits every call and counts consecutive health failures; at the
 * threshold it opens. Open refuses calls until open_s has passed, then the
 * first caller turns it half-open and becomes the single probe. The probe's
 * success closes it, its failure re-opens it (restarting the open period),
 * and a neutral outcome (a verdict-free 429/400) frees the probe slot for
 * the next caller. Outcomes of calls admitted before the breaker opened that
 * arrive while it is open change nothing: the open period is neither
 * extended nor cut short by stragglers. No locking; the owner serializes.
 */
#include "llm/breaker.h"

#include <stddef.h>

void hark_llm_breaker_init(struct hark_llm_breaker *b, int threshold, double open_s)
{
	if (!b)
		return;
	b->state = HARK_LLM_BREAKER_CLOSED;
	b->failures = 0;
	b->threshold = threshold >= 1 ? threshold : 1;
	b->open_s = open_s > 0 ? open_s : 0;
	b->opened_at = 0;
	b->probe_inflight = 0;
	b->transitions = 0;
}

static void set_state(struct hark_llm_breaker *b, int state)
{
	if (b->state != state) {
		b->state = state;
		b->transitions++;
	}
}

static int open_elapsed(const struct hark_llm_breaker *b, double now)
{
	return now >= b->opened_at + b->open_s;
}

int hark_llm_breaker_allow(struct hark_llm_breaker *b, double now)
{
	if (!b)
		return 0;
	switch (b->state) {
	case HARK_LLM_BREAKER_CLOSED:
		return 1;
	case HARK_LLM_BREAKER_OPEN:
		if (!open_elapsed(b, now))
			return 0;
		set_state(b, HARK_LLM_BREAKER_HALF_OPEN);
		b->probe_inflight = 1;
		return 1;
	case HARK_LLM_BREAKER_HALF_OPEN:
		if (b->probe_inflight)
			return 0;
		b->probe_inflight = 1;
		return 1;
	default:
		return 0;
	}
}

int hark_llm_breaker_would_allow(const struct hark_llm_breaker *b, double now)
{
	if (!b)
		return 0;
	switch (b->state) {
	case HARK_LLM_BREAKER_CLOSED:
		return 1;
	case HARK_LLM_BREAKER_OPEN:
		return open_elapsed(b, now);
	case HARK_LLM_BREAKER_HALF_OPEN:
		return !b->probe_inflight;
	default:
		return 0;
	}
}

double hark_llm_breaker_next_at(const struct hark_llm_breaker *b, double now)
{
	if (b && b->state == HARK_LLM_BREAKER_OPEN)
		return b->opened_at + b->open_s;
	return now;
}

void hark_llm_breaker_success(struct hark_llm_breaker *b, double now)
{
	(void)now;
	if (!b)
		return;
	switch (b->state) {
	case HARK_LLM_BREAKER_HALF_OPEN:
		b->probe_inflight = 0;
		b->failures = 0;
		set_state(b, HARK_LLM_BREAKER_CLOSED);
		break;
	case HARK_LLM_BREAKER_CLOSED:
		b->failures = 0;
		break;
	default: /* open: a straggler admitted before it opened */
		break;
	}
}

void hark_llm_breaker_failure(struct hark_llm_breaker *b, double now)
{
	if (!b)
		return;
	switch (b->state) {
	case HARK_LLM_BREAKER_CLOSED:
		if (++b->failures >= b->threshold) {
			b->opened_at = now;
			b->failures = 0;
			set_state(b, HARK_LLM_BREAKER_OPEN);
		}
		break;
	case HARK_LLM_BREAKER_HALF_OPEN:
		b->probe_inflight = 0;
		b->failures = 0;
		b->opened_at = now;
		set_state(b, HARK_LLM_BREAKER_OPEN);
		break;
	default: /* open: a straggler; the open period stands */
		break;
	}
}

void hark_llm_breaker_neutral(struct hark_llm_breaker *b)
{
	if (b && b->state == HARK_LLM_BREAKER_HALF_OPEN)
		b->probe_inflight = 0;
}

const char *hark_llm_breaker_state_name(int state)
{
	switch (state) {
	case HARK_LLM_BREAKER_CLOSED:
		return "closed";
	case HARK_LLM_BREAKER_HALF_OPEN:
		return "half_open";
	case HARK_LLM_BREAKER_OPEN:
		return "open";
	default:
		return "unknown";
	}
}
