/* SPDX-License-Identifier: MIT */
/*
 * Tests for group commit: many commits from one loop all complete and are
 * renamed, directory syncs are shared, failures carry a message, several
 * directories work, and freeing the pool delivers what is still queued.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/commit.h"
#include "unit.h"

#define NCOMMITS          200
#define NTHREADS          4
#define GUARD_MS          30000
#define NDRAIN            20
#define NDIRS             3
#define DIR_SYNC_DELAY_US 2000
#define GATE_WAIT_MS      5000

static char scratch[PATH_MAX];

struct job {
	struct event_loop *loop;
	int *done;
	int want;
	int fd;
	int result;
	char error[256];
};

/*
 * Test seam: this executable's fsync() overrides libc's for commit.o.
 * Directory syncs are made slow as on a real disk (on tmpfs they cost
 * nothing, so nothing would ever need grouping), and the first one waits
 * until NTHREADS renames have landed in gate_dir. Those renames then
 * provably queue behind a running sync, and the next sync covers them
 * all, so fewer syncs than commits is certain, not a matter of luck.
 */
static const char *gate_dir;
static atomic_int gate_passed;
/* When > 0, the Nth directory sync fails with EIO. */
static atomic_int dir_sync_fail_nth, dir_sync_count;

static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int
fsync(int fd)
{
	struct stat st;
	int ms;

	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (gate_dir != NULL && !atomic_exchange(&gate_passed, 1))
			for (ms = 0; ms < GATE_WAIT_MS &&
			             count_entries(gate_dir) < NTHREADS;
			     ms++)
				usleep(1000);
		usleep(DIR_SYNC_DELAY_US);
		if (atomic_fetch_add(&dir_sync_count, 1) + 1 ==
		    atomic_load(&dir_sync_fail_nth)) {
			errno = EIO;
			return -1;
		}
	}
	return (int)syscall(SYS_fsync, fd);
}

static void
scratch_create(void)
{
	char path[PATH_MAX + 16];

	snprintf(scratch, sizeof(scratch), "commit_test.XXXXXX");
	if (mkdtemp(scratch) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/tmp", scratch);
	if (mkdir(path, 0700) < 0)
		abort();
}

static void
scratch_remove(void)
{
	unit_rmtree(scratch);
}

static void
guard_cb(struct event_timer *t, void *ctx)
{
	(void)t;
	printf("# guard timer fired\n");
	event_loop_stop(ctx);
}

static void
commit_cb(int result, const char *error, void *ctx)
{
	struct job *job = ctx;

	job->result = result;
	snprintf(job->error, sizeof(job->error), "%s", error ? error : "");
	close(job->fd);
	job->fd = -1;
	if (++*job->done == job->want)
		event_loop_stop(job->loop);
}

/* Writes scratch/tmp/NAME and queues its commit to scratch/DIR/NAME. */
static void
submit_one(struct commit_pool *pool, struct job *job, const char *dir,
    const char *name)
{
	char tmp[PATH_MAX + 64], final[PATH_MAX + 64], fdir[PATH_MAX + 16];

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", scratch, name);
	snprintf(final, sizeof(final), "%s/%s/%s", scratch, dir, name);
	snprintf(fdir, sizeof(fdir), "%s/%s", scratch, dir);
	job->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (job->fd < 0 || write(job->fd, name, strlen(name)) < 0)
		abort();
	job->result = 1;
	commit_submit(pool, job->fd, tmp, final, fdir, commit_cb, job);
}

static int
exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s/%s", scratch, dir, name);
	return access(path, F_OK) == 0;
}

static void
test_commit_many(void)
{
	static struct job jobs[NCOMMITS];
	struct event_loop *loop = event_loop_create();
	struct commit_pool *pool = commit_pool_create(loop, NTHREADS);
	struct event_timer *guard;
	char name[32], path[PATH_MAX + 48];
	int done = 0, i, ok = 1, moved = 1;
	uint64_t syncs;

	scratch_create();
	snprintf(path, sizeof(path), "%s/incoming", scratch);
	CHECK_INT(mkdir(path, 0700), 0);
	gate_dir = path;
	for (i = 0; i < NCOMMITS; i++) {
		jobs[i].loop = loop;
		jobs[i].done = &done;
		jobs[i].want = NCOMMITS;
		snprintf(name, sizeof(name), "msg%d", i);
		submit_one(pool, &jobs[i], "incoming", name);
	}
	guard = event_timer_add(loop, GUARD_MS, guard_cb, loop);
	CHECK_INT(event_loop_run(loop), 0);
	event_timer_del(&guard);
	CHECK_INT(done, NCOMMITS);
	for (i = 0; i < NCOMMITS; i++) {
		snprintf(name, sizeof(name), "msg%d", i);
		ok &= jobs[i].result == 0 && jobs[i].fd == -1;
		moved &= exists("incoming", name) && !exists("tmp", name);
	}
	CHECK(ok);
	CHECK(moved);
	/* See fsync() above for why some syncs must have been shared. */
	syncs = commit_pool_dir_syncs(pool);
	printf("# %d commits, %llu directory syncs\n", NCOMMITS,
	    (unsigned long long)syncs);
	CHECK(syncs >= 1 && syncs < NCOMMITS);
	commit_pool_free(&pool);
	CHECK(pool == NULL);
	gate_dir = NULL;
	event_loop_free(&loop);
	scratch_remove();
}

static void
test_commit_errors_and_dirs(void)
{
	struct event_loop *loop = event_loop_create();
	struct commit_pool *pool = commit_pool_create(loop, 2);
	struct job jobs[NDIRS + 1];
	char name[32], path[PATH_MAX + 48];
	int done = 0, i;

	scratch_create();
	for (i = 0; i < NDIRS; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		snprintf(path, sizeof(path), "%s/%s", scratch, name);
		CHECK_INT(mkdir(path, 0700), 0);
	}
	for (i = 0; i <= NDIRS; i++) {
		jobs[i].loop = loop;
		jobs[i].done = &done;
		jobs[i].want = NDIRS + 1;
		snprintf(name, sizeof(name), "d%d", i); /* d3 is missing */
		submit_one(pool, &jobs[i], name, name);
	}
	CHECK_INT(event_loop_run(loop), 0);
	CHECK_INT(done, NDIRS + 1);
	for (i = 0; i < NDIRS; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		CHECK_INT(jobs[i].result, 0);
		CHECK(exists(name, name));
	}
	CHECK_INT(jobs[NDIRS].result, -ENOENT);
	CHECK(strncmp(jobs[NDIRS].error, "rename ", 7) == 0);
	CHECK(strstr(jobs[NDIRS].error, "/d3/d3: No such file or directory") !=
	      NULL);
	printf("# error: %s\n", jobs[NDIRS].error);
	commit_pool_free(&pool);
	event_loop_free(&loop);
	scratch_remove();
}

/* commit_pool_free waits for queued work and reports it. */
static void
test_commit_free_drains(void)
{
	struct event_loop *loop = event_loop_create();
	struct commit_pool *pool = commit_pool_create(loop, NTHREADS);
	struct job jobs[NDRAIN];
	char name[32], path[PATH_MAX + 48];
	int done = 0, i, ok = 1;

	scratch_create();
	snprintf(path, sizeof(path), "%s/incoming", scratch);
	CHECK_INT(mkdir(path, 0700), 0);
	for (i = 0; i < NDRAIN; i++) {
		jobs[i].loop = loop;
		jobs[i].done = &done;
		jobs[i].want = NDRAIN;
		snprintf(name, sizeof(name), "m%d", i);
		submit_one(pool, &jobs[i], "incoming", name);
	}
	commit_pool_free(&pool);
	CHECK_INT(done, NDRAIN);
	for (i = 0; i < NDRAIN; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		ok &= jobs[i].result == 0 && exists("incoming", name);
	}
	CHECK(ok);
	event_loop_free(&loop);
	scratch_remove();
}

/*
 * A failed directory sync fails every commit it covered, not only the
 * thread that ran it: the gate makes renames queue behind the first sync,
 * so the second (failing) one covers several.
 */
static void
test_commit_dir_sync_error(void)
{
	struct event_loop *loop = event_loop_create();
	struct commit_pool *pool = commit_pool_create(loop, NTHREADS);
	struct job jobs[NTHREADS * 2];
	char name[32], path[PATH_MAX + 48];
	int done = 0, failed = 0, i, n = NTHREADS * 2;

	scratch_create();
	snprintf(path, sizeof(path), "%s/incoming", scratch);
	CHECK_INT(mkdir(path, 0700), 0);
	gate_dir = path;
	atomic_store(&gate_passed, 0);
	atomic_store(&dir_sync_count, 0);
	atomic_store(&dir_sync_fail_nth, 2);
	for (i = 0; i < n; i++) {
		jobs[i].loop = loop;
		jobs[i].done = &done;
		jobs[i].want = n;
		snprintf(name, sizeof(name), "e%d", i);
		submit_one(pool, &jobs[i], "incoming", name);
	}
	CHECK_INT(event_loop_run(loop), 0);
	CHECK_INT(done, n);
	for (i = 0; i < n; i++)
		if (jobs[i].result < 0) {
			failed++;
			CHECK(strstr(jobs[i].error, "Input/output error") !=
			      NULL);
		}
	printf("# %d of %d commits failed with the sync\n", failed, n);
	CHECK(failed > 1);
	CHECK(failed < n);
	atomic_store(&dir_sync_fail_nth, 0);
	gate_dir = NULL;
	commit_pool_free(&pool);
	event_loop_free(&loop);
	scratch_remove();
}

UNIT_MAIN(UNIT_CASE(test_commit_many), UNIT_CASE(test_commit_errors_and_dirs),
    UNIT_CASE(test_commit_free_drains), UNIT_CASE(test_commit_dir_sync_error))
