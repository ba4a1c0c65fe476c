/* SPDX-License-Identifier: MIT */
/*
 * The queue file: one message, a sequence of records
 *
 *   u8 type, u32 payload length (big endian), payload
 *
 * in this order: MAGIC ("TERNQ1"), TIME ("SEC.USEC" arrival), WARN
 * (optional, empty: its type byte says whether the delay warning went out,
 * rewritten in place by qfile_mark_warned), SENDER
 * (envelope sender, empty for <>), ATTR* ("name=value": client_addr,
 * client_name, helo, protocol, envid, ret, body, smtputf8, ...), RCPT*
 * (one per recipient), CONTENT (the message, CRLF line endings, not
 * dot-stuffed; exactly one), END (empty; a file without it is incomplete
 * and never scheduled).
 *
 * A recipient record's type byte is its status, rewritten in place by
 * qfile_mark(): QREC_RCPT (pending), QREC_RCPT_DONE (delivered),
 * QREC_RCPT_FAILED (failed, reported to the sender). Its payload is
 *   address NUL orcpt NUL notify-decimal
 * where orcpt is the DSN ORCPT value ("" when absent) and notify is a
 * QRCPT_NOTIFY_* mask (0 = not given: RFC 3461 default FAILURE,DELAY).
 *
 * Limits: QFILE_RECORD_MAX for every non-content record; CONTENT up to
 * 4 GiB - 1 (message_size_limit is far lower).
 */
#ifndef TERN_QFILE_H
#define TERN_QFILE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "base/buf.h"
#include "mail/queue.h"

#define QREC_MAGIC	 'V'
#define QREC_TIME	 'T'
#define QREC_WARN	 'w'	/* delay warning not sent yet */
#define QREC_WARN_SENT	 'W'	/* delay warning sent */
#define QREC_SENDER	 'S'
#define QREC_ATTR	 'A'
#define QREC_RCPT	 'R'
#define QREC_RCPT_DONE	 'D'
#define QREC_RCPT_FAILED 'F'
#define QREC_CONTENT	 'M'
#define QREC_END	 'E'

#define QFILE_MAGIC	 "TERNQ1"
#define QFILE_RECORD_MAX 65536
#define QFILE_HDR_LEN	 5	/* type + u32 length */

#define QRCPT_NOTIFY_SUCCESS 0x1
#define QRCPT_NOTIFY_FAILURE 0x2
#define QRCPT_NOTIFY_DELAY   0x4
#define QRCPT_NOTIFY_NEVER   0x8

struct qrcpt {
	char *addr;
	char *orcpt;		/* "" when absent */
	unsigned notify;
	char status;		/* QREC_RCPT, QREC_RCPT_DONE, QREC_RCPT_FAILED */
	off_t status_off;	/* file offset of the type byte */
	int backup;		/* not on disk: qmgr holds it as a backup MX
				 * (backup_queue_lifetime, dsn_lifetime) */
};

/* Writing: created in tmp/ with mode 0600 under a fresh queue ID. */
struct qfile_writer {
	char id[QUEUE_ID_SIZE];
	int fd;
	char *tmp_path;		/* queue_directory/tmp/ID */
	struct buf out;		/* write-behind buffer */
	off_t pos;		/* bytes written to fd so far */
	off_t content_hdr_off;	/* -1 until qfile_content_begin */
	uint64_t content_len;
	int failed;		/* sticky: a write failed */
};

/*
 * Creates tmp/ID (O_EXCL, retrying with a new ID on EEXIST), writes the
 * MAGIC and TIME records. 0 or -1 with *error_r.
 */
int qfile_create(struct qfile_writer *w, const char **error_r);
/* The same in another directory of the queue (terndrop: maildrop/) with
 * another mode (0600 when 0). */
int qfile_create_in(struct qfile_writer *w, const char *state, mode_t mode,
    const char **error_r);
/*
 * The general form. id: use this queue ID (tried once: EEXIST fails)
 * instead of a fresh one (pickup keeps a maildrop file's ID so that a
 * crash cannot queue it twice); arrival: the TIME record's "SEC.USEC"
 * (a requeued message keeps its arrival time). NULL/0 fields mean the
 * defaults of qfile_create.
 */
struct qfile_create_opts {
	const char *state; /* QUEUE_TMP when NULL */
	mode_t mode;       /* 0600 when 0 */
	const char *id;
	const char *arrival;
};
int qfile_create_opts(struct qfile_writer *w,
    const struct qfile_create_opts *o, const char **error_r);
/* Records; sticky failure is reported by qfile_finish. */
void qfile_put_sender(struct qfile_writer *w, const char *sender);
void qfile_put_attr(struct qfile_writer *w, const char *name, const char *value);
void qfile_put_rcpt(struct qfile_writer *w, const char *addr,
    const char *orcpt, unsigned notify);
void qfile_content_begin(struct qfile_writer *w);
/* Appends message bytes (CRLF endings, already dot-unstuffed). */
void qfile_content_write(struct qfile_writer *w, const void *data, size_t len);
/*
 * Patches the CONTENT length, writes END, flushes to the fd (no fsync).
 * 0 or -1 with *error_r (any earlier write failure lands here).
 */
int qfile_finish(struct qfile_writer *w, const char **error_r);
/*
 * Blocking commit for tools and tests: fsync, rename into state/ID, fsync
 * the state directory. smtpd uses commit_submit() instead.
 */
int qfile_commit(struct qfile_writer *w, const char *state,
    const char **error_r);
/* Closes the fd and frees; unlinks the tmp file if not committed. */
void qfile_writer_free(struct qfile_writer *w);
/* Call after an external commit (commit pool) so free does not unlink. */
void qfile_writer_committed(struct qfile_writer *w);
/*
 * Removes tmp/NAME (dirfd: the tmp/ directory) if its writer is gone: a
 * writer holds an flock on its file from creation until it closes it, so
 * a file that is unlocked and older than min_age seconds was left by a
 * killed process. 1 if it was removed.
 */
int qfile_tmp_stale(int dirfd, const char *name, time_t min_age);

/* Reading. */
struct qfile {
	char id[QUEUE_ID_SIZE];
	int fd;
	long long arrival_sec;
	long arrival_usec;
	char *sender;
	int nattr;
	char **attr_names, **attr_values;
	struct qrcpt *rcpts;
	int nrcpt;
	off_t content_off;	/* first content byte */
	uint64_t content_len;
	int complete;		/* END record present */
	off_t warn_off;		/* the WARN record's type byte; 0: none */
	int warned;		/* the delay warning went out */
};

/*
 * Opens path (O_RDWR, or O_RDONLY when writable is 0) without following a
 * symlink or blocking on a FIFO; anything but a regular file (owned by
 * owner, unless owner is (uid_t)-1) fails with errno EINVAL, so a root
 * reader cannot be tricked by a planted name. Then parses every
 * record, skipping over the content. Returns 0 (check q->complete), or -1
 * with *error_r for a file that is malformed (bad magic, bad lengths,
 * records out of order, garbage after END) - it belongs in corrupt/.
 * A file that simply ends early (cut at any byte, including inside the
 * content or before the first record) opens with complete = 0 as long as
 * every whole record before the cut is valid; fields not reached stay
 * empty (sender "", no attributes or recipients).
 */
int qfile_open(const char *path, int writable, uid_t owner, struct qfile *q,
    const char **error_r);
/*
 * The same checks and parsing over a descriptor the caller opened (a
 * memfd in the fuzzer, for one): qfile_open is open(2) and then this.
 * Takes fd over: it is q->fd on success and closed on failure. name is
 * the path for error texts; its last component becomes q->id. Whether
 * qfile_mark can write depends on fd's access mode.
 */
int qfile_open_fd(int fd, const char *name, uid_t owner, struct qfile *q,
    const char **error_r);
const char *qfile_attr(const struct qfile *q, const char *name);
/* Number of recipients still QREC_RCPT. */
int qfile_pending(const struct qfile *q);
/* Rewrites recipient i's status byte in place (no fsync). 0 or -1. */
int qfile_mark(struct qfile *q, int i, char status, const char **error_r);
/* Rewrites the WARN record as sent (no fsync); q must have one. 0 or -1. */
int qfile_mark_warned(struct qfile *q, const char **error_r);
/* fsync of the file after marks. 0 or -1. */
int qfile_sync(struct qfile *q, const char **error_r);
void qfile_close(struct qfile *q);
/* Time since arrival as Postfix logs it: "0", "0.04", "1.2", "37". */
#define QFILE_DELAY_SIZE 32
void qfile_delay(const struct qfile *q, char *out, size_t n);

#endif
