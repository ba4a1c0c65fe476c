/* SPDX-License-Identifier: MIT */
/*
 * Maildir delivery for local and virtual mailboxes, following
 * https://cr.yp.to/proto/maildir.html as Dovecot reads it: the message is
 * written under a unique name in tmp/, made durable, renamed into new/
 * with its stored size (",S=") so readers need not stat it, and new/ is
 * fsync'd before success is reported. Queue content has CRLF line
 * endings (RFC 5321 2.3.8); mail at rest has LF, so CRLF becomes LF here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/mem.h"
#include "mail/maildir.h"

/* Bytes read from the queue file per pread. */
#define MAILDIR_CHUNK        (64 * 1024)
/* Attempts at a unique name (only a clock step back can collide). */
#define MAILDIR_CREATE_TRIES 3
#define MAILDIR_DIR_MODE     0700
#define MAILDIR_FILE_MODE    0600
/* Bound on recursion while creating missing parents. */
#define MAILDIR_MKDIR_DEPTH  64
#define MAILDIR_HOST_MAX     256
#define MAILDIR_ERR_SIZE     (PATH_MAX + 256)

static __thread char maildir_err[MAILDIR_ERR_SIZE];
static unsigned long maildir_counter;

static const char *maildir_error(const char *fmt, ...) MTA_PRINTF(1, 2);

static const char *
maildir_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(maildir_err, sizeof(maildir_err), fmt, ap);
	va_end(ap);
	return maildir_err;
}

/* mkdir -p without touching the mode of directories that exist. */
static int
mkdir_p(const char *path, int depth, const char **error_r)
{
	char parent[PATH_MAX];
	struct stat st;

	if (mkdir(path, MAILDIR_DIR_MODE) == 0)
		return 0;
	if (errno == ENOENT && depth < MAILDIR_MKDIR_DEPTH) {
		file_dirname(path, parent, sizeof(parent));
		if (strcmp(parent, path) != 0 &&
		    mkdir_p(parent, depth + 1, error_r) < 0)
			return -1;
		if (mkdir(path, MAILDIR_DIR_MODE) == 0)
			return 0;
	}
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	*error_r = maildir_error("mkdir %s: %s", path,
	    errno == EEXIST ? "exists and is not a directory"
	                    : strerror(errno));
	return -1;
}

int
maildir_create(const char *maildir, const char **error_r)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	char *sub;
	size_t i;
	int ret;

	if (mkdir_p(maildir, 0, error_r) < 0)
		return -1;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		sub = xasprintf("%s/%s", maildir, subdirs[i]);
		ret = mkdir_p(sub, MAILDIR_MKDIR_DEPTH, error_r);
		free(sub);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* The host part of unique names, '/' and ':' escaped as Dovecot does. */
static void
host_part(char *out, size_t n)
{
	/* Looked up once per process: a system call per message otherwise. */
	static char host[MAILDIR_HOST_MAX];
	size_t i, o = 0;

	if (host[0] == '\0' &&
	    (gethostname(host, sizeof(host)) < 0 || host[0] == '\0'))
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < n; i++) {
		if (host[i] == '/' || host[i] == ':') {
			snprintf(
			    out + o, n - o, "\\%03o", (unsigned char)host[i]);
			o += 4;
		} else {
			out[o++] = host[i];
		}
	}
	out[o] = '\0';
}

/* Opens tmp/UNIQUE; *name_r gets UNIQUE, *tmp_r its path (caller frees). */
static int
open_tmp(const char *maildir, char **name_r, char **tmp_r, const char **error_r)
{
	char host[MAILDIR_HOST_MAX * 4];
	struct timeval tv;
	int fd, i, created = 0;

	host_part(host, sizeof(host));
	*name_r = *tmp_r = NULL;
	for (i = 0; i < MAILDIR_CREATE_TRIES; i++) {
		free(*name_r);
		free(*tmp_r);
		gettimeofday(&tv, NULL);
		*name_r = xasprintf("%lld.M%ldP%ldQ%lu.%s",
		    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		    ++maildir_counter, host);
		*tmp_r = xasprintf("%s/tmp/%s", maildir, *name_r);
		fd = open(*tmp_r, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    MAILDIR_FILE_MODE);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && !created) {
			created = 1;
			if (maildir_create(maildir, error_r) < 0)
				goto fail;
		} else if (errno != EEXIST) {
			*error_r = maildir_error(
			    "create %s: %s", *tmp_r, strerror(errno));
			goto fail;
		}
	}
	*error_r = maildir_error("create %s/tmp/: no unique name", maildir);
fail:
	free(*name_r);
	free(*tmp_r);
	*name_r = *tmp_r = NULL;
	return -1;
}

/*
 * Copies len bytes of src_fd from off to fd, CRLF -> LF. A CR at the end
 * of a chunk waits for the next byte. Returns bytes written or -1.
 */
static int64_t
copy_body(int fd, const char *tmp, int src_fd, off_t off, uint64_t len,
    const char **error_r)
{
	char *in = xmalloc(MAILDIR_CHUNK), *out = xmalloc(MAILDIR_CHUNK + 1);
	uint64_t done = 0;
	int64_t written = 0;
	int pending_cr = 0;
	size_t want, i, o;
	ssize_t got;

	while (done < len || pending_cr) {
		o = 0;
		got = 0;
		if (done < len) {
			want = len - done < MAILDIR_CHUNK ? (size_t)(len - done)
			                                  : MAILDIR_CHUNK;
			got = pread(src_fd, in, want, off + (off_t)done);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				*error_r = maildir_error("read queue file: %s",
				    got == 0 ? "unexpected end of file"
				             : strerror(errno));
				written = -1;
				break;
			}
			done += (uint64_t)got;
		}
		for (i = 0; i < (size_t)got; i++) {
			if (pending_cr) {
				pending_cr = 0;
				if (in[i] == '\n') {
					out[o++] = '\n';
					continue;
				}
				out[o++] = '\r';
			}
			if (in[i] == '\r')
				pending_cr = 1;
			else
				out[o++] = in[i];
		}
		if (done == len && pending_cr) {
			out[o++] = '\r';
			pending_cr = 0;
		}
		if (file_write_all(fd, out, o) < 0) {
			*error_r =
			    maildir_error("write %s: %s", tmp, strerror(errno));
			written = -1;
			break;
		}
		written += (int64_t)o;
	}
	free(in);
	free(out);
	return written;
}

int
maildir_deliver(const char *maildir, const char *prefix, int src_fd, off_t off,
    uint64_t len, char **path_r, const char **error_r)
{
	char *name = NULL, *tmp = NULL, *final = NULL, *newdir;
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	int64_t body;
	int fd, ret = -1;

	fd = open_tmp(maildir, &name, &tmp, error_r);
	if (fd < 0)
		return -1;
	if (plen > 0 && file_write_all(fd, prefix, plen) < 0) {
		*error_r = maildir_error("write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	body = copy_body(fd, tmp, src_fd, off, len, error_r);
	if (body < 0)
		goto fail;
	if (fsync(fd) < 0) {
		*error_r = maildir_error("fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		*error_r = maildir_error("close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	final = xasprintf("%s/new/%s,S=%llu", maildir, name,
	    (unsigned long long)((uint64_t)plen + (uint64_t)body));
	if (rename(tmp, final) < 0) {
		*error_r = maildir_error(
		    "rename %s to %s: %s", tmp, final, strerror(errno));
		goto fail;
	}
	newdir = xasprintf("%s/new", maildir);
	ret = file_fsync_dir(newdir, error_r);
	free(newdir);
	if (ret < 0) {
		/* Not durable: take it back so the retry is no duplicate. */
		(void)unlink(final);
		goto out;
	}
	if (path_r != NULL) {
		*path_r = final;
		final = NULL;
	}
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
out:
	free(name);
	free(tmp);
	free(final);
	return ret;
}
