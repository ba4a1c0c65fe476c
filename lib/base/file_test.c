/* SPDX-License-Identifier: MIT */
/* Tests for the file helpers, in a scratch directory under the cwd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "unit.h"

#define NELEM(a)       (sizeof(a) / sizeof((a)[0]))
#define NOBODY         65534
#define READ_MAX       100
/* Concurrent writers of one file, and how often each writes it. */
#define ATOMIC_WRITERS 4
#define ATOMIC_ROUNDS  200
#define ATOMIC_BIG     (256 * 1024)
/* Symlink swaps raced against file_ensure_dir (bounded). */
#define RACE_ROUNDS    20000

/* Small and fixed, so paths built from it provably fit PATH_MAX. */
#define SCRATCH_TEMPLATE "file_test.XXXXXX"
static char scratch[sizeof(SCRATCH_TEMPLATE)];

static void
scratch_create(void)
{
	memcpy(scratch, SCRATCH_TEMPLATE, sizeof(scratch));
	if (mkdtemp(scratch) == NULL)
		abort();
}

static void
scratch_remove(void)
{
	unit_rmtree(scratch);
}

static const char *
path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", scratch, name);
	return out;
}

static void
test_file_dirname(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"a/b", "a"},
	    {"b", "."},
	    {"", "."},
	    {"/b", "/"},
	    {"/", "/"},
	    {"/a/b/c", "/a/b"},
	    {"a//b", "a"},
	    {"//x", "/"},
	};
	char out[64], tiny[3];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		file_dirname(t[i].in, out, sizeof(out));
		CHECK_STR(out, t[i].out);
	}
	file_dirname("abcdef/x", tiny, sizeof(tiny));
	CHECK_STR(tiny, "ab");
}

static void
test_file_io(void)
{
	char path[PATH_MAX], got[16];
	int fd;

	scratch_create();
	fd = open(path_in(path, sizeof(path), "io"), O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, "hello world", 11), 0);
	CHECK_INT(file_pwrite_all(fd, "W", 1, 6), 0);
	CHECK_INT(file_pread_all(fd, got, 11, 0), 0);
	CHECK(memcmp(got, "hello World", 11) == 0);
	CHECK_INT(file_pread_all(fd, got, 5, 8), -1); /* early EOF */
	CHECK_INT(file_write_all(-1, "x", 1), -1);
	close(fd);
	scratch_remove();
}

static void
test_file_flags(void)
{
	int p[2];

	if (pipe(p) < 0)
		abort();
	CHECK_INT(file_set_cloexec(p[0], 1), 0);
	CHECK(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	CHECK_INT(file_set_cloexec(p[0], 0), 0);
	CHECK(!(fcntl(p[0], F_GETFD) & FD_CLOEXEC));
	CHECK_INT(file_set_nonblock(p[0], 1), 0);
	CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	CHECK_INT(file_set_nonblock(p[0], 0), 0);
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	close(p[0]);
	close(p[1]);
	CHECK_INT(file_set_cloexec(p[0], 1), -1);
	CHECK_INT(file_set_nonblock(p[0], 1), -1);
}

static void
test_file_atomic_read(void)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32], want[PATH_MAX + 64];
	const char *error = NULL;
	struct buf b;
	struct stat st;

	scratch_create();
	buf_init(&b, READ_MAX);
	path_in(path, sizeof(path), "conf");
	CHECK_INT(file_write_atomic(
	              path, "one", 3, 0640, (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(file_write_atomic(
	              path, "second", 6, 0640, (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	CHECK(access(tmp, F_OK) < 0);
	CHECK_INT(file_read_all(path, READ_MAX, &b, &error), 0);
	CHECK_STR(buf_cstr(&b), "second");
	CHECK_INT(file_read_all(path, 6, &b, &error), 0); /* max exactly */
	CHECK_INT(file_read_all(path, 5, &b, &error), -1);
	CHECK_INT(b.len, 0);
	CHECK(error != NULL && strstr(error, "read ") == error);

	path_in(path, sizeof(path), "missing/x");
	CHECK_INT(file_read_all(path, READ_MAX, &b, &error), -1);
	snprintf(
	    want, sizeof(want), "open %s: No such file or directory", path);
	CHECK_STR(error, want);
	CHECK_INT(
	    file_write_atomic(path, "x", 1, 0600, (uid_t)-1, (gid_t)-1, &error),
	    -1);
	CHECK(error != NULL && strstr(error, "create ") == error);
	CHECK_INT(file_fsync_dir(scratch, &error), 0);
	CHECK_INT(file_fsync_dir(path, &error), -1);
	CHECK_STR(error, want);

	if (geteuid() == 0) {
		path_in(path, sizeof(path), "owned");
		CHECK_INT(file_write_atomic(
		              path, "x", 1, 0600, NOBODY, NOBODY, &error),
		    0);
		CHECK_INT(stat(path, &st), 0);
		CHECK_INT(st.st_uid, NOBODY);
		CHECK_INT(st.st_gid, NOBODY);
	}
	buf_free(&b);
	scratch_remove();
}

static void
test_file_ensure_dir(void)
{
	char path[PATH_MAX], file[PATH_MAX];
	const char *error = NULL;
	struct stat st;
	int changed = -1;
	mode_t old = umask(022);

	scratch_create();
	path_in(path, sizeof(path), "a/b/c");
	CHECK_INT(
	    file_ensure_dir(path, 0700, (uid_t)-1, (gid_t)-1, &changed, &error),
	    0);
	CHECK_INT(changed, 1);
	CHECK_INT(stat(path, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(st.st_mode & 07777, 0700);
	/* Parents are plain directories, not as strict as the leaf. */
	CHECK_INT(stat(path_in(file, sizeof(file), "a/b"), &st), 0);
	CHECK_INT(st.st_mode & 07777, 0755);

	CHECK_INT(
	    file_ensure_dir(path, 0700, (uid_t)-1, (gid_t)-1, &changed, &error),
	    0);
	CHECK_INT(changed, 0);
	CHECK_INT(chmod(path, 0777), 0);
	CHECK_INT(file_ensure_dir(
	              path, 02750, (uid_t)-1, (gid_t)-1, &changed, &error),
	    0);
	CHECK_INT(changed, 1);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 02750);
	CHECK_INT(
	    file_ensure_dir(path, 02750, (uid_t)-1, (gid_t)-1, NULL, &error),
	    0);

	if (geteuid() == 0) {
		CHECK_INT(file_ensure_dir(
		              path, 02750, NOBODY, (gid_t)-1, &changed, &error),
		    0);
		CHECK_INT(changed, 1);
		CHECK_INT(stat(path, &st), 0);
		CHECK_INT(st.st_uid, NOBODY);
		CHECK_INT(st.st_gid, getegid());
		CHECK_INT(file_ensure_dir(
		              path, 02750, NOBODY, getegid(), &changed, &error),
		    0);
		CHECK_INT(changed, 0);
	}

	/* A file in the way is an error, not replaced. */
	path_in(file, sizeof(file), "a/plain");
	CHECK_INT(
	    file_write_atomic(file, "", 0, 0600, (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(
	    file_ensure_dir(file, 0700, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	CHECK(error != NULL && strstr(error, "Not a directory") != NULL);
	path_in(file, sizeof(file), "a/plain/sub");
	CHECK_INT(
	    file_ensure_dir(file, 0700, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	umask(old);
	scratch_remove();
}

/*
 * file_fix_file changes a regular file through a descriptor and refuses
 * names that could lead root elsewhere: a symbolic link, a FIFO, a file
 * with another hard link.
 */
static void
test_file_fix_file(void)
{
	char path[PATH_MAX], other[PATH_MAX];
	const char *error = NULL;
	struct stat st;
	int changed = -1;

	scratch_create();
	path_in(path, sizeof(path), "users");
	CHECK_INT(
	    file_fix_file(path, 0640, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	CHECK_INT(errno, ENOENT);
	CHECK(error != NULL && strstr(error, "No such file") != NULL);

	CHECK_INT(
	    file_write_atomic(path, "x", 1, 0644, (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(
	    file_fix_file(path, 0640, (uid_t)-1, (gid_t)-1, &changed, &error),
	    0);
	CHECK_INT(changed, 1);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	CHECK_INT(
	    file_fix_file(path, 0640, (uid_t)-1, (gid_t)-1, &changed, &error),
	    0);
	CHECK_INT(changed, 0);
	if (geteuid() == 0) {
		CHECK_INT(
		    file_fix_file(path, 0640, 0, NOBODY, &changed, &error), 0);
		CHECK_INT(changed, 1);
		CHECK_INT(stat(path, &st), 0);
		CHECK_INT(st.st_uid, 0);
		CHECK_INT(st.st_gid, NOBODY);
	}

	/* A symbolic link: the target keeps its mode. */
	path_in(other, sizeof(other), "link");
	CHECK_INT(symlink("users", other), 0);
	CHECK_INT(
	    file_fix_file(other, 0600, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	CHECK(error != NULL && strstr(error, "symbolic link") != NULL);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);

	/* A second hard link: the file may be someone else's. */
	path_in(other, sizeof(other), "hard");
	CHECK_INT(link(path, other), 0);
	CHECK_INT(
	    file_fix_file(path, 0600, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	CHECK(error != NULL && strstr(error, "hard links") != NULL);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);

	/* A FIFO is neither waited on nor changed. */
	path_in(other, sizeof(other), "fifo");
	CHECK_INT(mkfifo(other, 0644), 0);
	CHECK_INT(
	    file_fix_file(other, 0600, (uid_t)-1, (gid_t)-1, &changed, &error),
	    -1);
	CHECK(error != NULL && strstr(error, "not a regular file") != NULL);
	CHECK_INT(stat(other, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	scratch_remove();
}

/*
 * A name left in the way of the temporary file (a stale one, or a hard
 * link planted by whoever can write the directory) must never be opened
 * and truncated: the file it points to would be overwritten and chmod'ed.
 */
static void
test_file_atomic_stale_tmp(void)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32], victim[PATH_MAX];
	const char *error = NULL;
	struct buf b;
	struct stat st;
	int fd;

	scratch_create();
	buf_init(&b, READ_MAX);
	path_in(path, sizeof(path), "conf");
	path_in(victim, sizeof(victim), "victim");
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, "precious", 8), 0);
	close(fd);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	CHECK_INT(link(victim, tmp), 0);
	CHECK_INT(file_write_atomic(
	              path, "new", 3, 0644, (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(file_read_all(victim, READ_MAX, &b, &error), 0);
	CHECK_STR(buf_cstr(&b), "precious");
	CHECK_INT(stat(victim, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	CHECK_INT(file_read_all(path, READ_MAX, &b, &error), 0);
	CHECK_STR(buf_cstr(&b), "new");
	buf_free(&b);
	scratch_remove();
}

struct atomic_writer {
	pthread_t thread;
	const char *path;
	char fill;
	int failures;
};

static void *
atomic_writer_run(void *arg)
{
	struct atomic_writer *w = arg;
	char *data = malloc(ATOMIC_BIG);
	const char *error;
	int i;

	if (data == NULL)
		abort();
	memset(data, w->fill, ATOMIC_BIG);
	for (i = 0; i < ATOMIC_ROUNDS; i++)
		if (file_write_atomic(w->path, data, ATOMIC_BIG, 0600,
		        (uid_t)-1, (gid_t)-1, &error) < 0)
			w->failures++;
	free(data);
	return NULL;
}

/* Writers of one path (threads here, processes sharing a directory in
 * real life) must each replace it whole, never mix or cut each other. */
static void
test_file_atomic_concurrent(void)
{
	struct atomic_writer w[ATOMIC_WRITERS];
	char path[PATH_MAX];
	const char *error = NULL;
	struct buf b;
	size_t i;
	int bad = 0, failures = 0;

	scratch_create();
	buf_init(&b, ATOMIC_BIG);
	path_in(path, sizeof(path), "shared");
	for (i = 0; i < NELEM(w); i++) {
		w[i].path = path;
		w[i].fill = (char)('a' + i);
		w[i].failures = 0;
		pthread_create(&w[i].thread, NULL, atomic_writer_run, &w[i]);
	}
	for (i = 0; i < NELEM(w); i++) {
		pthread_join(w[i].thread, NULL);
		failures += w[i].failures;
	}
	CHECK_INT(failures, 0);
	CHECK_INT(file_read_all(path, ATOMIC_BIG, &b, &error), 0);
	CHECK_INT(b.len, ATOMIC_BIG);
	for (i = 1; i < b.len; i++)
		bad |= b.data[i] != b.data[0];
	CHECK(!bad);
	buf_free(&b);
	scratch_remove();
}

struct swapper {
	pthread_t thread;
	const char *dir, *link;
	volatile int stop;
};

/* Keeps exchanging dir with a symlink, atomically (no moment without
 * dir), so file_ensure_dir sees a directory that then turns into a link. */
static void *
swapper_run(void *arg)
{
	struct swapper *s = arg;

	while (!s->stop)
		if (renameat2(AT_FDCWD, s->dir, AT_FDCWD, s->link,
		        RENAME_EXCHANGE) < 0)
			break;
	return NULL;
}

/*
 * Whoever owns the parent directory (vmail for virtual domains) can swap
 * the directory for a symlink between the check and the chmod: the mode
 * must only ever be applied to the directory that was checked.
 */
static void
test_file_ensure_dir_race(void)
{
	char dir[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	struct swapper s;
	const char *error;
	struct stat st;
	int i;

	scratch_create();
	path_in(dir, sizeof(dir), "d");
	path_in(link, sizeof(link), "link");
	path_in(target, sizeof(target), "target");
	CHECK_INT(mkdir(target, 0755), 0);
	CHECK_INT(chmod(target, 0755), 0);
	CHECK_INT(mkdir(dir, 0755), 0);
	CHECK_INT(symlink("target", link), 0);
	s.dir = dir;
	s.link = link;
	s.stop = 0;
	pthread_create(&s.thread, NULL, swapper_run, &s);
	for (i = 0; i < RACE_ROUNDS; i++) {
		/* Alternate modes so every round has a chmod to do. */
		(void)file_ensure_dir(dir, (i & 1) ? 0700 : 0750, (uid_t)-1,
		    (gid_t)-1, NULL, &error);
		if (stat(target, &st) == 0 && (st.st_mode & 07777) != 0755)
			break;
	}
	s.stop = 1;
	pthread_join(s.thread, NULL);
	CHECK_INT(stat(target, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0755);
	scratch_remove();
}

/* Moves a file; refuses (EEXIST) to replace one, leaving both. */
static void
test_file_rename_noreplace(void)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat st;
	int fd;

	scratch_create();
	path_in(a, sizeof(a), "a");
	path_in(b, sizeof(b), "b");
	CHECK((fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	close(fd);
	CHECK_INT(file_rename_noreplace(AT_FDCWD, a, AT_FDCWD, b), 0);
	CHECK_INT(stat(a, &st), -1);
	CHECK_INT(stat(b, &st), 0);
	CHECK((fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	close(fd);
	CHECK_INT(file_rename_noreplace(AT_FDCWD, a, AT_FDCWD, b), -1);
	CHECK_INT(errno, EEXIST);
	CHECK_INT(stat(a, &st), 0);
	CHECK_INT(stat(b, &st), 0);
	scratch_remove();
}

UNIT_MAIN(UNIT_CASE(test_file_dirname), UNIT_CASE(test_file_io),
    UNIT_CASE(test_file_flags), UNIT_CASE(test_file_atomic_read),
    UNIT_CASE(test_file_ensure_dir), UNIT_CASE(test_file_atomic_stale_tmp),
    UNIT_CASE(test_file_atomic_concurrent),
    UNIT_CASE(test_file_ensure_dir_race), UNIT_CASE(test_file_fix_file),
    UNIT_CASE(test_file_rename_noreplace))
