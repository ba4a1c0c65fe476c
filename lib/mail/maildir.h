/* SPDX-License-Identifier: MIT */
/*
 * Maildir delivery (https://cr.yp.to/proto/maildir.html, and Dovecot's
 * reading of it): write tmp/NAME, fsync, move it to
 * new/UNIQUE,S=<size>,W=<size with CRLF line ends>
 * without replacing anything, make new/ durable. Stored mail has LF line
 * endings. Deliveries made for a queue file have a UNIQUE derived from
 * the message and the recipient (maildir_unique), so a repeated delivery
 * finds its earlier copy instead of making a second one. Maildir++ quota
 * (the maildirsize file, as Courier and Dovecot keep it) is checked and
 * updated when limits are given.
 */
#ifndef TERN_MAILDIR_H
#define TERN_MAILDIR_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* The Maildir++ file in the maildir's top directory. */
#define MAILDIR_SIZE_FILE  "maildirsize"
/* A maildirsize this large or larger is recalculated (Maildir++ spec). */
#define MAILDIR_SIZE_MAX   5120
/* Over quota, a maildirsize older than this is recalculated. */
#define MAILDIR_SIZE_STALE (15 * 60)

/* Results of maildir_deliver. */
#define MAILDIR_ERROR     (-1)
#define MAILDIR_DELIVERED 0
#define MAILDIR_EXISTS    1 /* delivered by an earlier attempt */
#define MAILDIR_FULL      2 /* would exceed the quota; nothing stored */

/* Limits of one mailbox; 0 is no limit. */
struct maildir_quota {
	uint64_t bytes;
	uint64_t count;
};

/* What the maildir holds (new/ and cur/ of it and its Maildir++ folders). */
struct maildir_usage {
	uint64_t bytes;
	uint64_t count;
};

/*
 * new/ directories written by one batch of deliveries (one request of the
 * queue manager), each opened by its first delivery as the mailbox owner,
 * so that each is fsync'd once for all of them. Zero-initialise.
 */
struct maildir_batch_dir;
struct maildir_batch {
	struct maildir_batch_dir *v;
	int count;
};

/*
 * Fsyncs every directory of the batch once and closes them all (also on
 * failure) and empties the batch. 0, or -1 with *error_r naming the first
 * directory that failed: its deliveries may not survive a crash.
 */
int maildir_batch_sync(struct maildir_batch *batch, const char **error_r);

/*
 * Creates maildir and its cur/ new/ tmp/ (parents too) with mode 0700 as
 * the calling identity. 0, or -1 with *error_r.
 */
int maildir_create(const char *maildir, const char **error_r);

/*
 * The unique part of a delivery's file name, the same for every attempt:
 * "SEC.M<usec>Q<queue_id>R<rcpt_index>[H<hash>].HOST" with the message's
 * arrival time, HOST the host name ('/' and ':' escaped as \057 and \072,
 * as Dovecot does). target (NULL for none) is hashed into the name when
 * one recipient is delivered to one maildir more than once on purpose.
 * Dovecot sorts such names by their time and "M" microseconds and keeps
 * everything before the ':' when it moves a message to cur/. Caller frees.
 */
char *maildir_unique(long long arrival_sec, long arrival_usec,
    const char *queue_id, int rcpt_index, const char *target);

struct maildir_delivery {
	const char *maildir;
	const char *prefix; /* header lines, LF endings; may be NULL */
	int src_fd;         /* len bytes at off: CRLF lines, become LF */
	off_t off;
	uint64_t len;
	/* From maildir_unique; NULL makes a fresh name per call. */
	const char *unique;
	/* Also look for UNIQUE in cur/ (a scan): the message may have been
	 * delivered before and read since. */
	int check_cur;
	/* NULL or limits; with any limit, maildirsize is kept up to date. */
	const struct maildir_quota *quota;
	/* NULL: new/ is fsync'd before returning; else it is added to the
	 * batch and the caller must call maildir_batch_sync before it
	 * reports the delivery. */
	struct maildir_batch *batch;
	time_t now; /* for maildirsize staleness; 0: time(NULL) */
};

/*
 * Delivers d->prefix and the content into d->maildir (created if missing)
 * as the calling identity (the caller has switched to the mailbox owner).
 * Returns MAILDIR_DELIVERED, MAILDIR_EXISTS (new/UNIQUE,... or, with
 * check_cur, cur/UNIQUE,... is there already: nothing new is stored) or
 * MAILDIR_FULL (the message would exceed d->quota: nothing is stored),
 * with *path_r (if not NULL; caller frees) the file's path for the first
 * two; or MAILDIR_ERROR with *error_r, and then nothing is left in new/
 * or tmp/. The final step never replaces a file (rename with
 * RENAME_NOREPLACE, or link where the file system lacks it).
 */
int maildir_deliver(
    const struct maildir_delivery *d, char **path_r, const char **error_r);

/*
 * Maildir++ quota (maildir_quota.c). The limits line is "<bytes>S",
 * "<count>C" or both joined by ','; maildir_quota_format writes it as
 * Dovecot does ("0S" when there are no limits) into out (at least
 * MAILDIR_QUOTA_LINE_SIZE bytes). maildir_quota_parse_limits: 0, or -1
 * for a malformed line (limits then as far as parsed).
 */
#define MAILDIR_QUOTA_LINE_SIZE 48
void maildir_quota_format(
    const struct maildir_quota *q, char *out, size_t size);
int maildir_quota_parse_limits(const char *line, struct maildir_quota *q);

/*
 * Parses the text of a maildirsize file (len bytes, at most
 * MAILDIR_SIZE_MAX) written at mtime against the limits q. 1 and *u when
 * the file can be trusted; 0 when it must be recalculated: too large,
 * malformed, other limits, negative sums, or over quota with more than
 * one sum line or older than MAILDIR_SIZE_STALE. A last line without LF
 * (an append in progress) is ignored.
 */
int maildir_quota_parse(const char *text, size_t len,
    const struct maildir_quota *q, time_t mtime, time_t now,
    struct maildir_usage *u);

/*
 * What the maildir holds, from maildirsize, or by a scan of new/ and cur/
 * of the maildir and its Maildir++ folders ("S=" of the names, else
 * lstat) when the file is missing or untrusted; a scan rewrites the file
 * (through tmp/, renamed over it). Runs as the mailbox owner. 0, or -1
 * with *error_r.
 */
int maildir_quota_usage(const char *maildir, const struct maildir_quota *q,
    time_t now, struct maildir_usage *u, const char **error_r);
/* Scans and rewrites maildirsize, as above. */
int maildir_quota_recalc(const char *maildir, const struct maildir_quota *q,
    struct maildir_usage *u, const char **error_r);
/*
 * Appends "<bytes> <count>" to maildirsize (one write, O_APPEND) if the
 * file exists. 0, or -1 (the file is then removed, so that the next
 * reader recalculates it).
 */
int maildir_quota_add(const char *maildir, int64_t bytes, int64_t count);
/* 1 if adding one message of size bytes to u exceeds q, else 0. */
int maildir_quota_exceeded(const struct maildir_quota *q,
    const struct maildir_usage *u, uint64_t size);

#endif
