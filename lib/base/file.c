/* SPDX-License-Identifier: MIT */
/*
 * File helpers that follow tern's durability rule: data belongs to tern
 * only after write, fsync(file), rename and fsync(directory), because a
 * rename is not durable until the directory entry itself reaches the disk.
 * Also the small descriptor chores (full writes, flags, directory setup).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"

/* Room for "step path: strerror" messages returned through error_r. */
#define FILE_ERROR_MAX   (PATH_MAX + 128)
#define FILE_READ_CHUNK  8192
#define FILE_MODE_BITS   07777
/* Like mkdir -p: parents get a plain traversable mode, not the leaf's. */
#define FILE_PARENT_MODE 0755

static __thread char file_error_buf[FILE_ERROR_MAX];

/* Formats "step path: strerror(errno)" into the thread's error buffer. */
static int
file_fail(const char **error_r, const char *step, const char *path)
{
	snprintf(file_error_buf, sizeof(file_error_buf), "%s %s: %s", step,
	    path, strerror(errno));
	if (error_r != NULL)
		*error_r = file_error_buf;
	return -1;
}

int
file_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
file_pread_all(int fd, void *data, size_t len, off_t off)
{
	char *p = data;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO; /* early EOF: the file is shorter */
		if (n <= 0)
			return -1;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int
file_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int
file_fsync_dir(const char *dir, const char **error_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int saved;

	if (fd < 0)
		return file_fail(error_r, "open", dir);
	if (fsync(fd) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return file_fail(error_r, "fsync", dir);
	}
	close(fd);
	return 0;
}

void
file_dirname(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (n == 0)
		return;
	if (slash == NULL) {
		snprintf(out, n, ".");
		return;
	}
	/* "/x" -> "/", "a//b" -> "a" */
	while (slash > path && slash[-1] == '/')
		slash--;
	len = slash == path ? 1 : (size_t)(slash - path);
	snprintf(out, n, "%.*s", (int)len, path);
}

static int
file_replace(const char *path, const void *data, size_t len, mode_t mode,
    uid_t uid, gid_t gid, int durable, const char **error_r)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *step;
	int fd, saved;

	/*
	 * A fresh name per call (O_EXCL, like mkstemp): a fixed name would
	 * let two writers of one file share the temporary file, and would
	 * open and truncate whatever a stale or planted entry of that name
	 * (a hard link to another file) points to.
	 */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.XXXXXX", path,
	        (long)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return file_fail(error_r, "create", path);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return file_fail(error_r, "create", tmp);
	/* fchmod because the umask must not weaken the requested mode. */
	if (file_write_all(fd, data, len) < 0)
		step = "write";
	else if (fchmod(fd, mode) < 0)
		step = "chmod";
	else if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	         fchown(fd, uid, gid) < 0)
		step = "chown";
	else if (durable && fsync(fd) < 0)
		step = "fsync";
	else
		step = NULL;
	saved = errno;
	if (close(fd) < 0 && step == NULL) {
		step = "close";
		saved = errno;
	}
	if (step == NULL && rename(tmp, path) < 0) {
		step = "rename";
		saved = errno;
	}
	if (step != NULL) {
		unlink(tmp);
		errno = saved;
		return file_fail(error_r, step, tmp);
	}
	if (!durable)
		return 0;
	file_dirname(path, dir, sizeof(dir));
	return file_fsync_dir(dir, error_r);
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    uid_t uid, gid_t gid, const char **error_r)
{
	return file_replace(path, data, len, mode, uid, gid, 1, error_r);
}

int
file_write_atomic_nosync(const char *path, const void *data, size_t len,
    mode_t mode, const char **error_r)
{
	return file_replace(
	    path, data, len, mode, (uid_t)-1, (gid_t)-1, 0, error_r);
}

int
file_read_all(
    const char *path, size_t max, struct buf *out, const char **error_r)
{
	char chunk[FILE_READ_CHUNK];
	ssize_t n;
	int fd, saved;

	buf_reset(out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return file_fail(error_r, "open", path);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out->len + (size_t)n > max ||
		    buf_append(out, chunk, (size_t)n) < 0) {
			errno = EFBIG;
			n = -1;
			break;
		}
	}
	saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		buf_reset(out);
		return file_fail(error_r, "read", path);
	}
	return 0;
}

/* mkdir -p of the parents of dir (not dir itself). */
static int
file_mkdir_parents(const char *dir, const char **error_r)
{
	char path[PATH_MAX];
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s", dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return file_fail(error_r, "mkdir", dir);
	}
	for (i = 1; path[i] != '\0'; i++) {
		if (path[i] != '/' || path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, FILE_PARENT_MODE) < 0 && errno != EEXIST)
			return file_fail(error_r, "mkdir", path);
		path[i] = '/';
	}
	return 0;
}

int
file_ensure_dir(const char *dir, mode_t mode, uid_t uid, gid_t gid,
    int *changed_r, const char **error_r)
{
	const char *step;
	struct stat st;
	int changed = 0, fd, saved;

	if (changed_r != NULL)
		*changed_r = 0;
	if (lstat(dir, &st) < 0) {
		if (errno != ENOENT)
			return file_fail(error_r, "stat", dir);
		if (file_mkdir_parents(dir, error_r) < 0)
			return -1;
		if (mkdir(dir, mode) < 0 && errno != EEXIST)
			return file_fail(error_r, "mkdir", dir);
		changed = 1;
		if (lstat(dir, &st) < 0)
			return file_fail(error_r, "stat", dir);
	}
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return file_fail(error_r, "stat", dir);
	}
	/*
	 * Mode and owner are fixed through a descriptor of the directory
	 * itself: whoever owns the parent could swap the name for a symlink
	 * after the check, and chmod(2) follows symlinks. Only a non-root
	 * caller can lack read access to its directory; it gains nothing from
	 * a race, so it keeps the path-based calls.
	 */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno != EACCES || geteuid() == 0)) {
		if (errno == ELOOP)
			errno = ENOTDIR;
		return file_fail(error_r, "open", dir);
	}
	if (fd >= 0 && fstat(fd, &st) < 0) {
		step = "stat";
		goto fail;
	}
	if ((st.st_mode & FILE_MODE_BITS) != mode) {
		if ((fd >= 0 ? fchmod(fd, mode) : chmod(dir, mode)) < 0) {
			step = "chmod";
			goto fail;
		}
		changed = 1;
	}
	if ((uid != (uid_t)-1 && st.st_uid != uid) ||
	    (gid != (gid_t)-1 && st.st_gid != gid)) {
		if ((fd >= 0 ? fchown(fd, uid, gid) : lchown(dir, uid, gid)) <
		    0) {
			step = "chown";
			goto fail;
		}
		changed = 1;
	}
	if (fd >= 0)
		close(fd);
	if (changed_r != NULL)
		*changed_r = changed;
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return file_fail(error_r, step, dir);
}

/* "path: why" into the thread's error buffer, errno set; returns -1. */
static int
file_refuse(const char **error_r, const char *path, const char *why, int err)
{
	snprintf(file_error_buf, sizeof(file_error_buf), "%s: %s", path, why);
	if (error_r != NULL)
		*error_r = file_error_buf;
	errno = err;
	return -1;
}

int
file_fix_file(const char *path, mode_t mode, uid_t uid, gid_t gid,
    int *changed_r, const char **error_r)
{
	const char *step = NULL;
	struct stat st;
	int changed = 0, fd, saved;

	if (changed_r != NULL)
		*changed_r = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return file_refuse(error_r, path,
		    "is a symbolic link; not changing it", ELOOP);
	if (fd < 0)
		return file_fail(error_r, "open", path);
	if (fstat(fd, &st) < 0)
		step = "stat";
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		return file_refuse(error_r, path,
		    !S_ISREG(st.st_mode)
		        ? "is not a regular file; not changing it"
		        : "has other hard links; not changing it",
		    EPERM);
	} else if ((st.st_mode & FILE_MODE_BITS) != mode) {
		/* Mode first: a new group never sees the old, wider mode. */
		if (fchmod(fd, mode) < 0)
			step = "chmod";
		changed = 1;
	}
	if (step == NULL && ((uid != (uid_t)-1 && st.st_uid != uid) ||
	                        (gid != (gid_t)-1 && st.st_gid != gid))) {
		if (fchown(fd, uid, gid) < 0)
			step = "chown";
		changed = 1;
	}
	saved = errno;
	close(fd);
	if (step != NULL) {
		errno = saved;
		return file_fail(error_r, step, path);
	}
	if (changed_r != NULL)
		*changed_r = changed;
	return 0;
}

int
file_set_cloexec(int fd, int on)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -1;
	flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, flags) < 0 ? -1 : 0;
}

int
file_set_nonblock(int fd, int on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags) < 0 ? -1 : 0;
}

int
file_rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	int saved;

	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
	if (linkat(fromfd, from, tofd, to, 0) < 0)
		return -1;
	if (unlinkat(fromfd, from, 0) < 0) {
		saved = errno;
		(void)unlinkat(tofd, to, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

void
file_tcp_nodelay(int fd)
{
	int on = 1;

	/* ENOTSOCK or EOPNOTSUPP (a UNIX socket, a pipe): nothing to do. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}
