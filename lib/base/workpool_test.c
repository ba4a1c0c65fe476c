/* SPDX-License-Identifier: MIT */
/*
 * Tests of the thread pool: every job runs once, off the loop thread, and
 * its completion runs once in the loop thread; jobs run in parallel; and
 * freeing the pool runs the jobs still queued and their completions.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "base/workpool.h"
#include "unit.h"

#define NJOBS       200
#define NTHREADS    4
#define GUARD_MS    30000
#define NDRAIN      20
#define SLOW_US     20000

struct job {
	struct event_loop *loop;
	pthread_t loop_thread;
	int ran, done, off_loop, in_loop;
	int *ndone, want;
	atomic_int *running, *most;
	int slow;
};

static void
job_run(void *arg)
{
	struct job *j = arg;
	int now, most;

	j->ran++;
	j->off_loop = !pthread_equal(pthread_self(), j->loop_thread);
	if (j->slow) {
		now = atomic_fetch_add(j->running, 1) + 1;
		most = atomic_load(j->most);
		while (now > most &&
		       !atomic_compare_exchange_weak(j->most, &most, now))
			;
		usleep(SLOW_US);
		atomic_fetch_sub(j->running, 1);
	}
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done++;
	j->in_loop = pthread_equal(pthread_self(), j->loop_thread);
	if (++*j->ndone == j->want && j->loop != NULL)
		event_loop_stop(j->loop);
}

static void
guard_cb(struct event_timer *t, void *ctx)
{
	(void)t;
	printf("# guard timer fired\n");
	event_loop_stop(ctx);
}

static void
run_jobs(int slow)
{
	struct event_loop *loop = event_loop_create();
	struct workpool *pool = workpool_create(loop, NTHREADS);
	static struct job jobs[NJOBS];
	atomic_int running = 0, most = 0;
	struct event_timer *guard;
	int i, ndone = 0, bad = 0;

	CHECK_INT(workpool_threads(pool), NTHREADS);
	for (i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){.loop = loop,
		    .loop_thread = pthread_self(),
		    .ndone = &ndone,
		    .want = NJOBS,
		    .running = &running,
		    .most = &most,
		    .slow = slow && i < NTHREADS * 2};
		workpool_submit(pool, job_run, job_done, &jobs[i]);
	}
	guard = event_timer_add(loop, GUARD_MS, guard_cb, loop);
	event_loop_run(loop);
	event_timer_del(&guard);
	CHECK_INT(ndone, NJOBS);
	for (i = 0; i < NJOBS; i++)
		bad += jobs[i].ran != 1 || jobs[i].done != 1 ||
		       !jobs[i].off_loop || !jobs[i].in_loop;
	CHECK_INT(bad, 0);
	/* Slow jobs overlap: more than one thread works at once. */
	if (slow)
		CHECK(atomic_load(&most) > 1);
	workpool_free(&pool);
	CHECK(pool == NULL);
	event_loop_free(&loop);
}

static void
test_every_job_once(void)
{
	run_jobs(0);
}

static void
test_parallel(void)
{
	run_jobs(1);
}

static void
test_free_drains(void)
{
	struct event_loop *loop = event_loop_create();
	struct workpool *pool = workpool_create(loop, 1);
	struct job jobs[NDRAIN];
	int i, ndone = 0, bad = 0;

	for (i = 0; i < NDRAIN; i++) {
		jobs[i] = (struct job){.loop_thread = pthread_self(),
		    .ndone = &ndone,
		    .want = NDRAIN};
		workpool_submit(pool, job_run, job_done, &jobs[i]);
	}
	workpool_free(&pool);
	CHECK_INT(ndone, NDRAIN);
	for (i = 0; i < NDRAIN; i++)
		bad += jobs[i].ran != 1 || jobs[i].done != 1 || !jobs[i].in_loop;
	CHECK_INT(bad, 0);
	event_loop_free(&loop);
}

UNIT_MAIN(UNIT_CASE(test_every_job_once), UNIT_CASE(test_parallel),
    UNIT_CASE(test_free_drains))
