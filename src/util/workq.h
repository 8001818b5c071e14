/*
 * A FIFO work queue served by a fixed set of threads: the server hands it
 * everything that may block (SQL, disk writes and fsync, result rendering)
 * so the network service thread never waits. The queue length is capped;
 * a full queue refuses new work (the server answers 503 overloaded).
 * Tasks run exactly once, in submission order per thread pickup.
 */
#ifndef HARK_UTIL_WORKQ_H
#define HARK_UTIL_WORKQ_H

#include <stddef.h>

struct hark_workq;

typedef void (*hark_workq_fn)(void *arg);

/* n_threads >= 1; max_pending >= 1. NULL on failure. */
struct hark_workq *hark_workq_new(int n_threads, size_t max_pending);

/* Queues fn(arg). Returns 0, or HARK_ERR_LIMIT when max_pending tasks are
 * waiting, or HARK_ERR_CANCELED after shutdown began. Thread-safe. */
int hark_workq_submit(struct hark_workq *q, hark_workq_fn fn, void *arg);

/* Tasks waiting (not yet started). */
size_t hark_workq_pending(struct hark_workq *q);

/* Runs every queued task to completion, stops the threads and frees q. */
void hark_workq_free(struct hark_workq *q);

#endif /* HARK_UTIL_WORKQ_H */
