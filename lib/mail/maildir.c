/* SPDX-License-Identifier: MIT */
/*
 * Maildir delivery for local and virtual mailboxes, following
 * https://cr.yp.to/proto/maildir.html as Dovecot reads it: the message is
 * written in tmp/, made durable, moved into new/ under its unique name
 * with its stored size (",S=") and its size with CRLF line ends (",W=")
 * so readers need not stat or read it, and new/ is
 * fsync'd before success is reported (once per batch of deliveries).
 * A delivery for a queue file has a name that every attempt shares, and
 * the move never replaces a file: a delivery repeated after a crash
 * (before the queue manager marked the recipient done) finds the first
 * copy and stores nothing. Queue content has CRLF line endings (RFC 5321
 * 2.3.8); mail at rest has LF, so CRLF becomes LF here.
 */
#include <dirent.h>
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
#include "base/str.h"
#include "mail/maildir.h"

/* Bytes read from the queue file per pread. */
#define MAILDIR_CHUNK        (64 * 1024)
/* Attempts at a tmp/ name (only a clock step back or a stale file). */
#define MAILDIR_CREATE_TRIES 3
#define MAILDIR_DIR_MODE     0700
#define MAILDIR_FILE_MODE    0600
/* Bound on recursion while creating missing parents. */
#define MAILDIR_MKDIR_DEPTH  64
#define MAILDIR_HOST_MAX     256
#define MAILDIR_ERR_SIZE     (PATH_MAX + 256)
/* FNV-1a, 32 bits: a short, stable hash of a delivery target. */
#define MAILDIR_FNV_OFFSET   2166136261u
#define MAILDIR_FNV_PRIME    16777619u

struct maildir_batch_dir {
	char *maildir;
	int fd; /* new/, opened as the mailbox owner */
};

static __thread char maildir_err[MAILDIR_ERR_SIZE];
static unsigned long maildir_counter;

/* Error texts stay valid until the module's next error in the thread. */
#define maildir_error(...) str_format(maildir_err, sizeof(maildir_err), __VA_ARGS__)

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

/*
 * The host part of names, '/' and ':' escaped as Dovecot does. Looked up
 * once per process, with the pid: system calls per message otherwise.
 */
static const char *
host_part(void)
{
	static char escaped[MAILDIR_HOST_MAX * 4];
	char host[MAILDIR_HOST_MAX];
	size_t i, o = 0;

	if (escaped[0] != '\0')
		return escaped;
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < sizeof(escaped); i++) {
		if (host[i] == '/' || host[i] == ':') {
			snprintf(escaped + o, sizeof(escaped) - o, "\\%03o",
			    (unsigned char)host[i]);
			o += 4;
		} else {
			escaped[o++] = host[i];
		}
	}
	escaped[o] = '\0';
	return escaped;
}

static long
my_pid(void)
{
	static long pid;

	if (pid == 0)
		pid = (long)getpid();
	return pid;
}

char *
maildir_unique(long long arrival_sec, long arrival_usec, const char *queue_id,
    int rcpt_index, const char *target)
{
	uint32_t h = MAILDIR_FNV_OFFSET;
	char hash[16] = "";
	const char *p;

	if (target != NULL) {
		for (p = target; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * MAILDIR_FNV_PRIME;
		snprintf(hash, sizeof(hash), "H%08x", (unsigned)h);
	}
	return xasprintf("%lld.M%06ldQ%sR%d%s.%s", arrival_sec, arrival_usec,
	    queue_id, rcpt_index, hash, host_part());
}

/* A name for a delivery that has no queue file behind it. */
static char *
fresh_unique(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return xasprintf("%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, my_pid(), ++maildir_counter, host_part());
}

/*
 * Opens tmp/ for unique (its own name per process, so that two processes
 * repeating one delivery at once do not share a file); *tmp_r gets the
 * path (caller frees).
 */
static int
open_tmp(
    const char *maildir, const char *unique, char **tmp_r, const char **error_r)
{
	char *fresh = NULL;
	int fd, i, created = 0;

	*tmp_r = NULL;
	for (i = 0; i < MAILDIR_CREATE_TRIES; i++) {
		free(*tmp_r);
		if (unique == NULL) {
			free(fresh);
			fresh = fresh_unique();
			*tmp_r = xasprintf("%s/tmp/%s", maildir, fresh);
		} else {
			*tmp_r = xasprintf(
			    "%s/tmp/%s,P%ld", maildir, unique, my_pid());
		}
		fd = open(*tmp_r,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    MAILDIR_FILE_MODE);
		if (fd >= 0) {
			free(fresh);
			return fd;
		}
		if (errno == ENOENT && !created) {
			created = 1;
			if (maildir_create(maildir, error_r) < 0)
				goto fail;
		} else if (errno == EEXIST && unique != NULL) {
			/* Left by a dead process that had our pid. */
			(void)unlink(*tmp_r);
		} else if (errno != EEXIST) {
			*error_r = maildir_error(
			    "create %s: %s", *tmp_r, strerror(errno));
			goto fail;
		}
	}
	*error_r = maildir_error("create %s/tmp/: no unique name", maildir);
fail:
	free(fresh);
	free(*tmp_r);
	*tmp_r = NULL;
	return -1;
}

/*
 * Copies prefix and then len bytes of src_fd from off to fd, CRLF -> LF;
 * the prefix goes out with the first chunk (one write fewer). A CR at the
 * end of a chunk waits for the next byte. Returns bytes written or -1;
 * *wire_r gets the size POP3 sends (RFC 1939 11: CRLF line ends, and
 * the CRLF RETR adds after a last line without one), Dovecot's ",W=".
 */
static int64_t
copy_body(int fd, const char *tmp, const char *prefix, int src_fd, off_t off,
    uint64_t len, uint64_t *wire_r, const char **error_r)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	char *in = xmalloc(MAILDIR_CHUNK),
	     *out = xmalloc(plen + MAILDIR_CHUNK + 1);
	uint64_t done = 0;
	int64_t written = 0;
	uint64_t bare_lf = 0;
	int pending_cr = 0, first = 1;
	char last = '\n';
	size_t want, i, o;
	ssize_t got;

	while (done < len || pending_cr || first) {
		o = 0;
		got = 0;
		if (first && plen > 0) {
			memcpy(out, prefix, plen);
			o = plen;
		}
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
		first = 0;
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
		for (i = 0; i < o; i++) {
			if (out[i] == '\n' && last != '\r')
				bare_lf++;
			last = out[i];
		}
		if (o > 0 && file_write_all(fd, out, o) < 0) {
			*error_r =
			    maildir_error("write %s: %s", tmp, strerror(errno));
			written = -1;
			break;
		}
		written += (int64_t)o;
	}
	free(in);
	free(out);
	*wire_r = (uint64_t)written + bare_lf;
	if (written > 0 && last != '\n')
		*wire_r += 2;
	return written;
}

/* 1 if dir holds UNIQUE with any suffix (",S=...", ":2,FLAGS"), 0, -1. */
static int
dir_has(const char *maildir, const char *sub, const char *unique,
    const char **error_r)
{
	char *path = xasprintf("%s/%s", maildir, sub);
	size_t ulen = strlen(unique);
	struct dirent *de;
	DIR *d;
	int found = 0;

	d = opendir(path);
	if (d == NULL) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		*error_r =
		    maildir_error("opendir %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while (!found && (de = readdir(d)) != NULL) {
		found = strncmp(de->d_name, unique, ulen) == 0 &&
		        (de->d_name[ulen] == ',' || de->d_name[ulen] == ':' ||
		            de->d_name[ulen] == '\0');
	}
	closedir(d);
	free(path);
	return found;
}

/* new/ of maildir: from the batch, or opened (and added to it). */
static int
new_dir_fd(
    const char *maildir, struct maildir_batch *batch, const char **error_r)
{
	char *path;
	int i, fd;

	for (i = 0; batch != NULL && i < batch->count; i++) {
		if (strcmp(batch->v[i].maildir, maildir) == 0)
			return batch->v[i].fd;
	}
	path = xasprintf("%s/new", maildir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = maildir_error("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (batch != NULL) {
		batch->v = xrealloc(
		    batch->v, sizeof(*batch->v) * (size_t)(batch->count + 1));
		batch->v[batch->count].maildir = xstrdup(maildir);
		batch->v[batch->count].fd = fd;
		batch->count++;
	}
	return fd;
}

int
maildir_batch_sync(struct maildir_batch *batch, const char **error_r)
{
	int i, ret = 0;

	for (i = 0; i < batch->count; i++) {
		if (ret == 0 && fsync(batch->v[i].fd) < 0) {
			*error_r = maildir_error("fsync %s/new: %s",
			    batch->v[i].maildir, strerror(errno));
			ret = -1;
		}
		close(batch->v[i].fd);
		free(batch->v[i].maildir);
	}
	free(batch->v);
	batch->v = NULL;
	batch->count = 0;
	return ret;
}

static int
quota_active(const struct maildir_quota *q)
{
	return q != NULL && (q->bytes != 0 || q->count != 0);
}

/*
 * After the file is written: MAILDIR_DELIVERED (room for it),
 * MAILDIR_FULL, MAILDIR_EXISTS (full, but this very message is in new/
 * from an earlier attempt) or MAILDIR_ERROR.
 */
static int
quota_check(const struct maildir_delivery *d, int newfd, const char *name,
    uint64_t size, const char **error_r)
{
	struct maildir_usage u;
	struct stat st;

	if (maildir_quota_usage(d->maildir, d->quota,
	        d->now != 0 ? d->now : time(NULL), &u, error_r) < 0)
		return MAILDIR_ERROR;
	if (!maildir_quota_exceeded(d->quota, &u, size))
		return MAILDIR_DELIVERED;
	if (fstatat(newfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return MAILDIR_EXISTS;
	return MAILDIR_FULL;
}

int
maildir_deliver(
    const struct maildir_delivery *d, char **path_r, const char **error_r)
{
	char *tmp = NULL, *name = NULL, *fresh = NULL;
	const char *unique = d->unique;
	uint64_t wire = 0;
	int64_t size;
	int fd, newfd = -1, ret = MAILDIR_ERROR;

	if (path_r != NULL)
		*path_r = NULL;
	if (d->check_cur && unique != NULL) {
		ret = dir_has(d->maildir, "cur", unique, error_r);
		if (ret != 0)
			return ret < 0 ? MAILDIR_ERROR : MAILDIR_EXISTS;
		ret = MAILDIR_ERROR;
	}
	fd = open_tmp(d->maildir, unique, &tmp, error_r);
	if (fd < 0)
		return MAILDIR_ERROR;
	size = copy_body(
	    fd, tmp, d->prefix, d->src_fd, d->off, d->len, &wire, error_r);
	if (size < 0)
		goto fail;
	if (unique == NULL)
		unique = fresh = xstrdup(strrchr(tmp, '/') + 1);
	/* Dovecot's fields, in its order: readers need no stat for the
	 * quota (S=) and no read for a POP3 LIST (W=). */
	name = xasprintf("%s,S=%lld,W=%llu", unique, (long long)size,
	    (unsigned long long)wire);
	newfd = new_dir_fd(d->maildir, d->batch, error_r);
	if (newfd < 0)
		goto fail;
	/* Before the fsync: a message that stays out costs no disk flush. */
	if (quota_active(d->quota)) {
		ret = quota_check(d, newfd, name, (uint64_t)size, error_r);
		if (ret != MAILDIR_DELIVERED) {
			close(fd);
			(void)unlink(tmp);
			goto done;
		}
		ret = MAILDIR_ERROR;
	}
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
	if (file_rename_noreplace(AT_FDCWD, tmp, newfd, name) == 0) {
		ret = MAILDIR_DELIVERED;
		if (quota_active(d->quota))
			(void)maildir_quota_add(d->maildir, size, 1);
	} else if (errno == EEXIST) {
		/* An earlier attempt stored it; new/ is synced as for a
		 * delivery, as that attempt may not have got so far. */
		(void)unlink(tmp);
		ret = MAILDIR_EXISTS;
	} else {
		*error_r = maildir_error("rename %s to %s/new/%s: %s", tmp,
		    d->maildir, name, strerror(errno));
		goto fail;
	}
	if (d->batch == NULL && fsync(newfd) < 0) {
		*error_r = maildir_error(
		    "fsync %s/new: %s", d->maildir, strerror(errno));
		/* Not durable: take it back so the retry is no duplicate. */
		if (ret == MAILDIR_DELIVERED)
			(void)unlinkat(newfd, name, 0);
		ret = MAILDIR_ERROR;
		goto done;
	}
	goto done;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	ret = MAILDIR_ERROR;
done:
	if (path_r != NULL &&
	    (ret == MAILDIR_DELIVERED || ret == MAILDIR_EXISTS))
		*path_r = xasprintf("%s/new/%s", d->maildir, name);
	if (d->batch == NULL && newfd >= 0)
		close(newfd);
	free(tmp);
	free(name);
	free(fresh);
	return ret;
}
