/* SPDX-License-Identifier: MIT */
/*
 * Group commit of queue files. fsync(2) and a directory sync take
 * milliseconds on real disks, far too long for the event loop, so a small
 * thread pool does fsync(file) -> rename(tmp, final) -> fsync(directory).
 * Per directory, renames draw increasing tickets; one thread at a time
 * syncs the directory for every ticket drawn before it started, while the
 * others wait for a sync that covers their own ticket. Messages arriving
 * together therefore share one directory sync. Results travel back to the
 * loop thread through an eventfd, where the callbacks run.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/commit.h"
#include "base/log.h"
#include "base/mem.h"

/* More threads only add contention on one disk. */
#define COMMIT_THREADS_MAX 64
#define COMMIT_ERRBUF      128

struct commit_dir {
	char *path;
	int fd;               /* opened by the first syncer; -1 until then */
	uint64_t renamed_seq; /* tickets handed out after renames */
	uint64_t synced_seq;  /* every ticket <= this is durable */
	uint64_t failed_seq;  /* a failed sync covered every ticket <= this */
	int failed_errno;
	int syncing;          /* a thread is inside fsync(fd) */
	struct commit_dir *next;
};

struct commit_job {
	int fd;
	char *tmp_path, *final_path;
	struct commit_dir *dir;
	commit_done_cb *cb;
	void *ctx;
	int result;
	char *error;
	struct commit_job *next;
};

struct commit_job_list {
	struct commit_job *head, **tail;
};

struct commit_pool {
	struct event_loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t work_cond; /* queue not empty, or shutdown */
	pthread_cond_t sync_cond; /* some directory sync finished */
	struct commit_job_list queue, done;
	struct commit_dir *dirs;
	int shutdown;
	uint64_t dir_syncs;
	int nthreads;
	pthread_t *threads;
	int efd; /* workers -> loop: "done list has jobs" */
	struct event_fd *ev;
};

static void
job_list_init(struct commit_job_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void
job_list_push(struct commit_job_list *l, struct commit_job *job)
{
	job->next = NULL;
	*l->tail = job;
	l->tail = &job->next;
}

static void commit_job_fail(
    struct commit_job *job, int err, const char *fmt, ...) MTA_PRINTF(3, 4);

/* Sets the job's result to -err with "<what>: <errno text>". */
static void
commit_job_fail(struct commit_job *job, int err, const char *fmt, ...)
{
	char ebuf[COMMIT_ERRBUF];
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	job->result = err > 0 ? -err : -EIO;
	job->error =
	    xasprintf("%s: %s", what, strerror_r(err, ebuf, sizeof(ebuf)));
	free(what);
}

/*
 * Makes the job's rename durable. Called and returns with pool->lock held;
 * drops it only around the fsync itself.
 */
static void
commit_dir_sync(struct commit_pool *pool, struct commit_job *job)
{
	struct commit_dir *dir = job->dir;
	uint64_t ticket = ++dir->renamed_seq, target;
	const char *step;
	int err;

	while (ticket > dir->synced_seq) {
		/*
		 * A failed sync covered this rename too. Linux reports an
		 * fsync error once, so a retry could "succeed" without the
		 * rename on disk: never answer 250 for it.
		 */
		if (ticket <= dir->failed_seq) {
			commit_job_fail(
			    job, dir->failed_errno, "fsync %s", dir->path);
			return;
		}
		if (dir->syncing) {
			pthread_cond_wait(&pool->sync_cond, &pool->lock);
			continue;
		}
		/* Covers every rename counted so far, not only ours. */
		dir->syncing = 1;
		target = dir->renamed_seq;
		pool->dir_syncs++;
		pthread_mutex_unlock(&pool->lock);
		err = 0;
		step = "open";
		if (dir->fd < 0)
			dir->fd =
			    open(dir->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir->fd >= 0)
			step = "fsync";
		if (dir->fd < 0 || fsync(dir->fd) < 0)
			err = errno;
		pthread_mutex_lock(&pool->lock);
		dir->syncing = 0;
		if (err == 0 && target > dir->synced_seq)
			dir->synced_seq = target;
		pthread_cond_broadcast(&pool->sync_cond);
		if (err != 0) {
			if (target > dir->failed_seq) {
				dir->failed_seq = target;
				dir->failed_errno = err;
			}
			commit_job_fail(job, err, "%s %s", step, dir->path);
			return;
		}
	}
}

static void
commit_job_run(struct commit_pool *pool, struct commit_job *job)
{
	if (fsync(job->fd) < 0)
		commit_job_fail(job, errno, "fsync %s", job->tmp_path);
	else if (rename(job->tmp_path, job->final_path) < 0)
		commit_job_fail(job, errno, "rename %s to %s", job->tmp_path,
		    job->final_path);
	pthread_mutex_lock(&pool->lock);
	if (job->result == 0)
		commit_dir_sync(pool, job);
	job_list_push(&pool->done, job);
	pthread_mutex_unlock(&pool->lock);
}

static void *
commit_worker(void *arg)
{
	struct commit_pool *pool = arg;
	struct commit_job *job;
	uint64_t one = 1;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->queue.head == NULL && !pool->shutdown)
			pthread_cond_wait(&pool->work_cond, &pool->lock);
		if ((job = pool->queue.head) == NULL)
			break;
		if ((pool->queue.head = job->next) == NULL)
			pool->queue.tail = &pool->queue.head;
		pthread_mutex_unlock(&pool->lock);
		commit_job_run(pool, job);
		/* The counter cannot overflow in practice; failure is a bug. */
		if (write(pool->efd, &one, sizeof(one)) != sizeof(one))
			msg_panic("commit: eventfd write: %m");
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Runs finished jobs' callbacks in the loop thread. */
static void
commit_deliver(struct commit_pool *pool)
{
	struct commit_job *job, *next;

	pthread_mutex_lock(&pool->lock);
	job = pool->done.head;
	job_list_init(&pool->done);
	pthread_mutex_unlock(&pool->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		job->cb(job->result, job->error, job->ctx);
		free(job->tmp_path);
		free(job->final_path);
		free(job->error);
		free(job);
	}
}

static void
commit_event(struct event_fd *ev, int fd, int events, void *ctx)
{
	uint64_t count;

	(void)ev;
	(void)events;
	/* Non-blocking; EAGAIN just means another wakeup drained it. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		msg_panic("commit: eventfd read: %m");
	commit_deliver(ctx);
}

struct commit_pool *
commit_pool_create(struct event_loop *loop, int nthreads)
{
	struct commit_pool *pool = xcalloc(1, sizeof(*pool));
	sigset_t all, old;
	int i, err;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > COMMIT_THREADS_MAX)
		nthreads = COMMIT_THREADS_MAX;
	pool->loop = loop;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work_cond, NULL);
	pthread_cond_init(&pool->sync_cond, NULL);
	job_list_init(&pool->queue);
	job_list_init(&pool->done);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		msg_fatal("eventfd: %m");
	pool->ev =
	    event_fd_add(loop, pool->efd, EVENT_READ, commit_event, pool);

	/* Signals belong to the loop thread (signalfd), never to workers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pool->threads = xcalloc((size_t)nthreads, sizeof(*pool->threads));
	for (i = 0; i < nthreads; i++) {
		err = pthread_create(
		    &pool->threads[i], NULL, commit_worker, pool);
		if (err != 0) {
			errno = err;
			msg_fatal("commit: pthread_create: %m");
		}
	}
	pool->nthreads = nthreads;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

void
commit_pool_free(struct commit_pool **pool_r)
{
	struct commit_pool *pool = *pool_r;
	struct commit_dir *dir;
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->shutdown = 1;
	pthread_cond_broadcast(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	commit_deliver(pool);
	event_fd_del(&pool->ev);
	close(pool->efd);
	while ((dir = pool->dirs) != NULL) {
		pool->dirs = dir->next;
		if (dir->fd >= 0)
			close(dir->fd);
		free(dir->path);
		free(dir);
	}
	free(pool->threads);
	pthread_cond_destroy(&pool->sync_cond);
	pthread_cond_destroy(&pool->work_cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
	*pool_r = NULL;
}

/* Called with pool->lock held. */
static struct commit_dir *
commit_dir_get(struct commit_pool *pool, const char *path)
{
	struct commit_dir *dir;

	for (dir = pool->dirs; dir != NULL; dir = dir->next)
		if (strcmp(dir->path, path) == 0)
			return dir;
	dir = xcalloc(1, sizeof(*dir));
	dir->path = xstrdup(path);
	dir->fd = -1;
	dir->next = pool->dirs;
	pool->dirs = dir;
	return dir;
}

void
commit_submit(struct commit_pool *pool, int fd, const char *tmp_path,
    const char *final_path, const char *final_dir, commit_done_cb *cb,
    void *ctx)
{
	struct commit_job *job = xcalloc(1, sizeof(*job));

	job->fd = fd;
	job->tmp_path = xstrdup(tmp_path);
	job->final_path = xstrdup(final_path);
	job->cb = cb;
	job->ctx = ctx;
	pthread_mutex_lock(&pool->lock);
	job->dir = commit_dir_get(pool, final_dir);
	job_list_push(&pool->queue, job);
	pthread_cond_signal(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
}

uint64_t
commit_pool_dir_syncs(struct commit_pool *pool)
{
	uint64_t n;

	pthread_mutex_lock(&pool->lock);
	n = pool->dir_syncs;
	pthread_mutex_unlock(&pool->lock);
	return n;
}
