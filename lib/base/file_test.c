/* SPDX-License-Identifier: MIT */
/* Tests for the file helpers, in a scratch directory under the cwd. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NOBODY   65534
#define NFTW_FDS 16
#define READ_MAX 100

/* Small and fixed, so paths built from it provably fit PATH_MAX. */
#define SCRATCH_TEMPLATE "file_test.XXXXXX"
static char scratch[sizeof(SCRATCH_TEMPLATE)];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

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
	nftw(scratch, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS);
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

UNIT_MAIN(UNIT_CASE(test_file_dirname), UNIT_CASE(test_file_io),
    UNIT_CASE(test_file_flags), UNIT_CASE(test_file_atomic_read),
    UNIT_CASE(test_file_ensure_dir))
