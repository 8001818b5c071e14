/*
 * Event fan-out for the server: job events produced on worker threads (and
 * by submit tasks) are posted to a thread-safe, bounded inbox; the service
 * thread drains it and hands each event to every subscriber of that job
 * (SSE streams, WebSocket streams, synchronous OpenAI requests waiting for
 * the end of their job). Events are shared, reference-counted copies so
 * ten thousand subscribers of one job cost one copy of the payload.
 * Subscriptions and reference counts belong to the service thread only.
 */
#ifndef HARK_SERVER_HUB_H
#define HARK_SERVER_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One event as subscribers see it. Immutable after creation. */
struct hark_hub_event {
	int refs;                  /* service thread only */
	int64_t seq;
	int final;                 /* done, failed or canceled */
	char type[16];
	char job_id[HARK_ID_LEN];
	struct hark_hub_event *next; /* inbox link (internal) */
	size_t len;                /* bytes of data */
	char data[];               /* JSON job summary, NUL-terminated */
};

struct hark_hub_sub;
/* Called on the service thread for each event of the subscribed job. The
 * callee takes its own reference (hark_hub_event_ref) to keep ev. It may
 * unsubscribe s (and only s) from inside the call. */
typedef void (*hark_hub_fn)(struct hark_hub_sub *s, struct hark_hub_event *ev);

/* A subscription, embedded in the subscriber's own struct. */
struct hark_hub_sub {
	char job_id[HARK_ID_LEN];
	hark_hub_fn fn;
	unsigned bucket;
	int active;
	struct hark_hub_sub *prev, *next;
};

struct hark_hub;

/* max_inbox: events waiting for the service thread before new ones are
 * dropped (counted). NULL on allocation failure. */
struct hark_hub *hark_hub_new(size_t max_inbox);
/* Frees the hub and any events still in the inbox. Subscribers must be gone. */
void hark_hub_free(struct hark_hub *h);

/* 1 for "done", "failed", "canceled". */
int hark_hub_type_is_final(const char *type);

/* New event (refs = 1) copied from a store event; NULL on allocation failure. */
struct hark_hub_event *hark_hub_event_new(const struct hark_event *ev);
struct hark_hub_event *hark_hub_event_ref(struct hark_hub_event *ev);
/* Drops a reference; frees at zero. NULL is a no-op. */
void hark_hub_event_unref(struct hark_hub_event *ev);

/* Any thread: copies ev into the inbox. Returns 0, HARK_ERR_NOMEM, or
 * HARK_ERR_LIMIT when the inbox is full (the event is dropped; streams
 * recover it from the store on reconnect). The caller wakes the service
 * thread. */
int hark_hub_post(struct hark_hub *h, const struct hark_event *ev);

/* Service thread: subscribes s (fn set by the caller) to job_id. */
void hark_hub_subscribe(struct hark_hub *h, struct hark_hub_sub *s, const char *job_id);
/* Service thread: removes s if subscribed (idempotent). */
void hark_hub_unsubscribe(struct hark_hub *h, struct hark_hub_sub *s);

/* Service thread: drains the inbox, calling subscribers in event order.
 * Returns the number of events drained. */
size_t hark_hub_dispatch(struct hark_hub *h);

/* Counters: events dropped because the inbox was full; current subscribers. */
uint64_t hark_hub_dropped(struct hark_hub *h);
size_t hark_hub_subscribers(struct hark_hub *h);

#endif /* HARK_SERVER_HUB_H */
