/*
 * A small fork-join thread pool. hark_tpool_run() hands n_tasks task indices
 * to the pool's worker threads plus the calling thread (tasks are claimed
 * dynamically through an atomic counter) and returns when every task has
 * finished. It allocates nothing per call. A pool with one thread (or a NULL
 * pool) runs every task inline on the caller, in order. One pool serves one
 * run at a time: concurrent hark_tpool_run() calls on the same pool are
 * serialised. Tasks must not call hark_tpool_run() on their own pool.
 */
#ifndef HARK_UTIL_TPOOL_H
#define HARK_UTIL_TPOOL_H

struct hark_tpool;

/* Task callback: task in [0, n_tasks). */
typedef void (*hark_tpool_fn)(void *ctx, int task, int n_tasks);

/* Task callback that also learns which thread runs it: thread in
 * [0, hark_tpool_n_threads(pool)), stable for the duration of the task, so it
 * can index per-thread scratch. The caller is thread 0. */
typedef void (*hark_tpool_fn_ex)(void *ctx, int task, int n_tasks, int thread);

/*
 * Creates a pool of n_threads threads in total (the caller counts as one, so
 * n_threads - 1 workers are started). n_threads < 1 is treated as 1; more
 * than 256 is clamped to 256. Returns NULL on allocation/thread failure.
 */
struct hark_tpool *hark_tpool_new(int n_threads);

/* Total threads including the caller; 1 for a NULL pool. */
int hark_tpool_n_threads(const struct hark_tpool *pool);

/* Runs fn(ctx, t, n_tasks) for every t in [0, n_tasks) and waits for all of
 * them. pool may be NULL (inline). n_tasks <= 0 returns at once. */
void hark_tpool_run(struct hark_tpool *pool, hark_tpool_fn fn, void *ctx, int n_tasks);

/* Same with the thread index passed to fn. */
void hark_tpool_run_ex(struct hark_tpool *pool, hark_tpool_fn_ex fn, void *ctx, int n_tasks);

/* Stops and joins the workers and frees the pool. NULL is a no-op. */
void hark_tpool_free(struct hark_tpool *pool);

#endif /* HARK_UTIL_TPOOL_H */
