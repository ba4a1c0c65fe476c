/* SPDX-License-Identifier: MIT */
/*
 * Group commit of queue files. fsync(2) and a directory sync take
 * milliseconds on real disks, far too long for the event loop, so a small
 * thread pool does fsync(file) -> rename(tmp, final) -> fsync(directory).
 * Per directory, renames draw increasing tickets; one thread at a time
 * syncs the directory for every ticket drawn before it started, while the
 * others wait for a sync that covers their own ticket. Messages arriving
 * together therefore share one directory sync. The threads, and the
 * return of results to the loop thread, are lib/base/workpool's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/commit.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/workpool.h"

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
	struct commit_pool *pool;
	int fd;
	char *tmp_path, *final_path;
	struct commit_dir *dir;
	commit_done_cb *cb;
	void *ctx;
	int result;
	char *error;
};

struct commit_pool {
	struct workpool *workers;
	pthread_mutex_t lock;     /* the directories and the count */
	pthread_cond_t sync_cond; /* some directory sync finished */
	struct commit_dir *dirs;
	uint64_t dir_syncs;
};

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
commit_job_run(void *arg)
{
	struct commit_job *job = arg;
	struct commit_pool *pool = job->pool;

	if (fsync(job->fd) < 0)
		commit_job_fail(job, errno, "fsync %s", job->tmp_path);
	else if (rename(job->tmp_path, job->final_path) < 0)
		commit_job_fail(job, errno, "rename %s to %s", job->tmp_path,
		    job->final_path);
	if (job->result == 0) {
		pthread_mutex_lock(&pool->lock);
		commit_dir_sync(pool, job);
		pthread_mutex_unlock(&pool->lock);
	}
}

/* In the loop thread. */
static void
commit_job_done(void *arg)
{
	struct commit_job *job = arg;

	job->cb(job->result, job->error, job->ctx);
	free(job->tmp_path);
	free(job->final_path);
	free(job->error);
	free(job);
}

struct commit_pool *
commit_pool_create(struct event_loop *loop, int nthreads)
{
	struct commit_pool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->sync_cond, NULL);
	pool->workers = workpool_create(loop, nthreads);
	return pool;
}

void
commit_pool_free(struct commit_pool **pool_r)
{
	struct commit_pool *pool = *pool_r;
	struct commit_dir *dir;

	if (pool == NULL)
		return;
	workpool_free(&pool->workers);
	while ((dir = pool->dirs) != NULL) {
		pool->dirs = dir->next;
		if (dir->fd >= 0)
			close(dir->fd);
		free(dir->path);
		free(dir);
	}
	pthread_cond_destroy(&pool->sync_cond);
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

	job->pool = pool;
	job->fd = fd;
	job->tmp_path = xstrdup(tmp_path);
	job->final_path = xstrdup(final_path);
	job->cb = cb;
	job->ctx = ctx;
	pthread_mutex_lock(&pool->lock);
	job->dir = commit_dir_get(pool, final_dir);
	pthread_mutex_unlock(&pool->lock);
	workpool_submit(pool->workers, commit_job_run, commit_job_done, job);
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
