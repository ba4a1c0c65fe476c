/* SPDX-License-Identifier: MIT */
/*
 * The thread pool behind group commit and auth's hashing: one mutex and
 * condition for the FIFO queue, a list of finished jobs, and an eventfd
 * that tells the loop thread to run their callbacks. Worker threads block
 * every signal: signals belong to the loop thread (signalfd).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/workpool.h"

struct workpool_item {
	workpool_run_fn *run;
	workpool_done_fn *done;
	void *job;
	struct workpool_item *next;
};

struct workpool_list {
	struct workpool_item *head, **tail;
};

struct workpool {
	struct event_loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t work_cond; /* queue not empty, or shutdown */
	struct workpool_list queue, done;
	int shutdown;
	int nthreads;
	pthread_t *threads;
	int efd; /* workers -> loop: "done list has jobs" */
	struct event_fd *ev;
};

static void
workpool_list_init(struct workpool_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void
workpool_list_push(struct workpool_list *l, struct workpool_item *it)
{
	it->next = NULL;
	*l->tail = it;
	l->tail = &it->next;
}

static void *
workpool_worker(void *arg)
{
	struct workpool *pool = arg;
	struct workpool_item *it;
	uint64_t one = 1;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->queue.head == NULL && !pool->shutdown)
			pthread_cond_wait(&pool->work_cond, &pool->lock);
		if ((it = pool->queue.head) == NULL)
			break;
		if ((pool->queue.head = it->next) == NULL)
			pool->queue.tail = &pool->queue.head;
		pthread_mutex_unlock(&pool->lock);
		it->run(it->job);
		pthread_mutex_lock(&pool->lock);
		workpool_list_push(&pool->done, it);
		pthread_mutex_unlock(&pool->lock);
		/* The counter cannot overflow in practice; failure is a bug. */
		if (write(pool->efd, &one, sizeof(one)) != sizeof(one))
			msg_panic("workpool: eventfd write: %m");
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Runs finished jobs' callbacks in the loop thread. */
static void
workpool_deliver(struct workpool *pool)
{
	struct workpool_item *it, *next;

	pthread_mutex_lock(&pool->lock);
	it = pool->done.head;
	workpool_list_init(&pool->done);
	pthread_mutex_unlock(&pool->lock);
	for (; it != NULL; it = next) {
		next = it->next;
		it->done(it->job);
		free(it);
	}
}

static void
workpool_event(struct event_fd *ev, int fd, int events, void *ctx)
{
	uint64_t count;

	(void)ev;
	(void)events;
	/* Non-blocking; EAGAIN just means another wakeup drained it. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		msg_panic("workpool: eventfd read: %m");
	workpool_deliver(ctx);
}

struct workpool *
workpool_create(struct event_loop *loop, int nthreads)
{
	struct workpool *pool = xcalloc(1, sizeof(*pool));
	sigset_t all, old;
	int i, err;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > WORKPOOL_THREADS_MAX)
		nthreads = WORKPOOL_THREADS_MAX;
	pool->loop = loop;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work_cond, NULL);
	workpool_list_init(&pool->queue);
	workpool_list_init(&pool->done);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		msg_fatal("eventfd: %m");
	pool->ev =
	    event_fd_add(loop, pool->efd, EVENT_READ, workpool_event, pool);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pool->threads = xcalloc((size_t)nthreads, sizeof(*pool->threads));
	for (i = 0; i < nthreads; i++) {
		err = pthread_create(
		    &pool->threads[i], NULL, workpool_worker, pool);
		if (err != 0) {
			errno = err;
			msg_fatal("workpool: pthread_create: %m");
		}
	}
	pool->nthreads = nthreads;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

void
workpool_free(struct workpool **pool_r)
{
	struct workpool *pool = *pool_r;
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->shutdown = 1;
	pthread_cond_broadcast(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	workpool_deliver(pool);
	event_fd_del(&pool->ev);
	close(pool->efd);
	free(pool->threads);
	pthread_cond_destroy(&pool->work_cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
	*pool_r = NULL;
}

void
workpool_submit(struct workpool *pool, workpool_run_fn *run,
    workpool_done_fn *done, void *job)
{
	struct workpool_item *it = xcalloc(1, sizeof(*it));

	it->run = run;
	it->done = done;
	it->job = job;
	pthread_mutex_lock(&pool->lock);
	workpool_list_push(&pool->queue, it);
	pthread_cond_signal(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
}

int
workpool_threads(const struct workpool *pool)
{
	return pool->nthreads;
}
