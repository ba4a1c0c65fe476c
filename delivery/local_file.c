/* SPDX-License-Identifier: MIT */
/*
 * /file targets of aliases, .forward and :include: files (Postfix's
 * local/file.c and mail_copy.c): the message is appended in mbox format,
 * a "From sender date" line, Return-Path and Delivered-To, the content
 * with LF line endings and lines starting with "From " quoted as
 * ">From ", then an empty line. The file is opened as the target's
 * identity (never root) with O_APPEND|O_CREAT|O_NOFOLLOW, must be a
 * regular file with one link, is locked (flock, exclusive) while written,
 * synced before success, and cut back to its old size after a failed
 * write. A path ending in '/' is a maildir. Also the CRLF -> LF reader
 * that file and command deliveries share. No RFCs (mbox is folklore;
 * RFC 4155 describes it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "local.h"

#define LOCAL_FILE_MODE     0600
/* Tries at the lock, LOCAL_LOCK_WAIT_MS apart: then the mail defers. */
#define LOCAL_LOCK_TRIES    50
#define LOCAL_LOCK_WAIT_MS  100
#define LOCAL_MBOX_FROM     "From "
#define LOCAL_MBOX_FROM_LEN 5
#define LOCAL_MAILER_DAEMON "MAILER-DAEMON"
#define LOCAL_DATE_SIZE     64
#define LOCAL_OUT_SIZE      (2 * LOCAL_READ_CHUNK + 2)

void
local_reader_init(struct local_reader *r, const struct qfile *q, int mbox)
{
	memset(r, 0, sizeof(*r));
	r->q = q;
	r->bol = 1;
	r->mbox = mbox;
	r->last_nl = 1;
}

ssize_t
local_reader_next(struct local_reader *r, char *out, size_t max)
{
	static char in[LOCAL_READ_CHUNK];
	uint64_t left = r->q->content_len - r->done;
	size_t want, use, i, o = 0;
	const char *nl;
	ssize_t got;

	if (max < LOCAL_OUT_SIZE)
		msg_panic("local_reader_next: buffer too small");
	if (left == 0) {
		if (!r->pending_cr)
			return 0;
		r->pending_cr = 0;
		out[0] = '\r';
		r->last_nl = 0;
		return 1;
	}
	want = left < sizeof(in) ? (size_t)left : sizeof(in);
	do
		got = pread(
		    r->q->fd, in, want, r->q->content_off + (off_t)r->done);
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		r->error = got == 0 ? "read queue file: unexpected end of file"
		                    : "read queue file: I/O error";
		return -1;
	}
	use = (size_t)got;
	/*
	 * End on a line end unless this is the last chunk, so that a line
	 * start is never split from the "From " that follows it.
	 */
	if ((uint64_t)got < left &&
	    (nl = memrchr(in, '\n', (size_t)got)) != NULL)
		use = (size_t)(nl - in) + 1;
	for (i = 0; i < use; i++) {
		if (r->pending_cr) {
			r->pending_cr = 0;
			if (in[i] == '\n') {
				out[o++] = '\n';
				r->bol = 1;
				continue;
			}
			out[o++] = '\r';
		}
		if (r->bol && r->mbox && use - i >= LOCAL_MBOX_FROM_LEN &&
		    memcmp(in + i, LOCAL_MBOX_FROM, LOCAL_MBOX_FROM_LEN) == 0)
			out[o++] = '>';
		r->bol = 0;
		if (in[i] == '\r') {
			r->pending_cr = 1;
			continue;
		}
		out[o++] = in[i];
		r->bol = in[i] == '\n';
	}
	r->done += use;
	if (r->done == r->q->content_len && r->pending_cr) {
		r->pending_cr = 0;
		out[o++] = '\r';
	}
	if (o > 0)
		r->last_nl = out[o - 1] == '\n';
	return (ssize_t)o;
}

/* "From sender Mon Jan  1 00:00:00 2024\n", as mail readers expect. */
static char *
local_mbox_from(const char *sender)
{
	char date[LOCAL_DATE_SIZE];
	struct tm tm;
	time_t now = time(NULL);
	char *s, *p;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
	s = xasprintf(LOCAL_MBOX_FROM "%s %s\n",
	    *sender != '\0' ? sender : LOCAL_MAILER_DAEMON, date);
	/* A control byte must not end or split the line. */
	for (p = s + LOCAL_MBOX_FROM_LEN; p < s + strlen(s) - 1; p++)
		if ((unsigned char)*p < ' ')
			*p = '?';
	return s;
}

/* Waits for the exclusive lock, bounded. 0 or -1 (errno). */
static int
local_lock(int fd)
{
	int i;

	for (i = 0; i < LOCAL_LOCK_TRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		(void)poll(NULL, 0, LOCAL_LOCK_WAIT_MS);
	}
	errno = EWOULDBLOCK;
	return -1;
}

/* Writes the whole mbox entry to fd; NULL or what failed. */
static const char *
local_mbox_write(struct local_rcpt *lr, int fd)
{
	char *from = local_mbox_from(lr->msg->q->sender);
	char *out = xmalloc(LOCAL_OUT_SIZE);
	struct local_reader rd;
	const char *why = NULL;
	ssize_t n;

	if (file_write_all(fd, from, strlen(from)) < 0 ||
	    file_write_all(fd, lr->prefix, strlen(lr->prefix)) < 0)
		why = strerror(errno);
	local_reader_init(&rd, lr->msg->q, 1);
	while (why == NULL &&
	       (n = local_reader_next(&rd, out, LOCAL_OUT_SIZE)) > 0)
		if (file_write_all(fd, out, (size_t)n) < 0)
			why = strerror(errno);
	if (why == NULL && rd.error != NULL)
		why = rd.error;
	/* The entry ends with its own line end and an empty line. */
	if (why == NULL && file_write_all(fd, rd.last_nl ? "\n" : "\n\n",
	                       rd.last_nl ? 1 : 2) < 0)
		why = strerror(errno);
	free(out);
	free(from);
	return why;
}

void
local_file(struct local_rcpt *lr, const struct local_ident *id,
    const char *path, struct local_result *res)
{
	const char *why = NULL;
	struct stat st;
	off_t size = -1;
	int fd = -1;

	if (path[strlen(path) - 1] == '/') {
		local_store(
		    lr->msg->q, lr->prefix, path, id->uid, id->gid, res);
		if (strcmp(res->result, "sent") == 0) {
			free(res->where);
			res->where = NULL;
			local_set(res, "sent", "2.0.0",
			    "delivered to maildir: %s", path);
		}
		return;
	}
	if (local_root && priv_become(id->uid, id->gid) < 0) {
		local_set(res, "defer", "4.3.0", "cannot switch to uid %ld: %s",
		    (long)id->uid, strerror(errno));
		if (priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
		return;
	}
	fd = open(path,
	    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    LOCAL_FILE_MODE);
	if (fd < 0)
		local_set(res, errno == ELOOP ? "bounce" : "defer",
		    errno == ELOOP ? "5.2.0" : "4.2.0",
		    "cannot open file %s: %s", path,
		    errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	else if (fstat(fd, &st) < 0)
		local_set(res, "defer", "4.2.0", "fstat %s: %s", path,
		    strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		/* Another name for someone else's file is not ours to fill. */
		local_set(res, "bounce", "5.2.0",
		    "cannot deliver to %s: not a regular file with one link",
		    path);
	else if (local_lock(fd) < 0)
		local_set(res, "defer", "4.2.0", "cannot lock %s: %s", path,
		    strerror(errno));
	else if ((size = lseek(fd, 0, SEEK_END)) < 0)
		local_set(res, "defer", "4.2.0", "seek %s: %s", path,
		    strerror(errno));
	else if ((why = local_mbox_write(lr, fd)) != NULL ||
	         (fsync(fd) < 0 && (why = strerror(errno)) != NULL)) {
		/* Take the half entry back: the retry appends it whole. */
		if (ftruncate(fd, size) < 0)
			msg_warn("%s: ftruncate %s: %m", lr->msg->id, path);
		local_set(res, "defer", "4.2.0", "cannot append to %s: %s",
		    path, why);
	} else
		local_set(res, "sent", "2.0.0", "delivered to file: %s", path);
	if (fd >= 0 && close(fd) < 0 && strcmp(res->result, "sent") == 0)
		local_set(res, "defer", "4.2.0", "close %s: %s", path,
		    strerror(errno));
	if (local_root && priv_restore() < 0)
		msg_fatal("cannot return to root privileges: %m");
}
