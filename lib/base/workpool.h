/* SPDX-License-Identifier: MIT */
/*
 * A pool of threads for work too slow for the event loop (fsync for group
 * commit, password hashes for auth): jobs run in submission order on
 * whichever thread is free, and each job's completion callback runs later
 * in the loop's thread, woken through an eventfd. The pool knows nothing
 * of the jobs; callers keep their own state, counts and caps.
 */
#ifndef TERN_WORKPOOL_H
#define TERN_WORKPOOL_H

#include "base/event.h"

/* More threads than this only add contention. */
#define WORKPOOL_THREADS_MAX 64

struct workpool;

/* In a pool thread, without any lock of the pool's held. */
typedef void workpool_run_fn(void *job);
/* In the loop thread, after run returned. */
typedef void workpool_done_fn(void *job);

/* nthreads is clamped to 1..WORKPOOL_THREADS_MAX. */
struct workpool *workpool_create(struct event_loop *loop, int nthreads);
/*
 * Lets every queued job run, joins the threads and runs the completion
 * callbacks not yet run, before it returns; sets *pool_r to NULL.
 */
void workpool_free(struct workpool **pool_r);
/* Queues job: run(job) in a thread, then done(job) in the loop. */
void workpool_submit(struct workpool *pool, workpool_run_fn *run,
    workpool_done_fn *done, void *job);
int workpool_threads(const struct workpool *pool);

#endif
