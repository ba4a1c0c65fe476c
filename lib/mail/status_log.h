/* SPDX-License-Identifier: MIT */
/*
 * The per-message status log: $queue_directory/status/ID holds, for the
 * queue file ID, what happened to each recipient (RFC 3464 action, RFC
 * 3463 status, the diagnostic, the remote MTA, the time). qmgr appends
 * (and fsyncs) before it rewrites a recipient's mark in the queue file,
 * so a crash never loses the reason; notices (dsn.h) are built from it.
 *
 * File layout: a sequence of records, each
 *
 *   "\xff\xfeSL"  magic
 *   attr frame    (attr.h: u32 length, then name/value pairs rcpt, action,
 *                 status, diag_type, diag, mta, when)
 *   u32 CRC-32    of the frame, big endian
 *
 * appended with O_APPEND, never rewritten. Every text value is valid
 * UTF-8 (status_log_append replaces anything else), names are [a-z_] and
 * every length is below 2^16, so the bytes 0xff 0xfe never occur inside
 * a frame, whatever a remote server put in its reply: a reader that meets
 * a torn record (a crash mid-append) or garbage skips to the next magic
 * whose frame and CRC check out and goes on, so records appended after a
 * torn one are not lost.
 *
 * Limits: STATUS_DIAG_MAX bytes of diagnostic and STATUS_MTA_MAX of MTA
 * name (longer text is cut); a file over STATUS_LOG_FILE_MAX is refused
 * by the reader, which holds one record per recipient in memory, never
 * the file.
 */
#ifndef TERN_STATUS_LOG_H
#define TERN_STATUS_LOG_H

#define STATUS_DIAG_MAX	    2048
#define STATUS_MTA_MAX	    255	/* RFC 1035 2.3.4: a domain name */
#define STATUS_CODE_MAX	    11	/* RFC 3463: "5.123.123" plus room */
#define STATUS_TYPE_MAX	    32
#define STATUS_LOG_FILE_MAX (256L * 1024 * 1024)

/* RFC 3464 2.3.3 action values. */
#define STATUS_ACTION_FAILED	"failed"
#define STATUS_ACTION_DELAYED	"delayed"
#define STATUS_ACTION_DELIVERED "delivered"
#define STATUS_ACTION_RELAYED	"relayed"
#define STATUS_ACTION_EXPANDED	"expanded"

/* RFC 3464 2.3.6 diagnostic types tern writes. */
#define STATUS_DIAG_SMTP "smtp"	  /* diag is a remote SMTP reply */
#define STATUS_DIAG_TERN "x-tern" /* diag is tern's own text */

struct status_rec {
	int rcpt;		/* recipient index in the queue file */
	const char *action;	/* one of STATUS_ACTION_* */
	const char *status;	/* RFC 3463 enhanced code, "5.1.1" */
	const char *diag_type;	/* STATUS_DIAG_SMTP or STATUS_DIAG_TERN */
	const char *diag;	/* "user unknown", "550 5.1.1 <x>: no such user" */
	const char *mta;	/* remote MTA host name, "" if none */
	long long when;		/* attempt time, unix seconds */
};

struct status_log;

/*
 * Appends n records to status/ID (created mode 0600, O_NOFOLLOW|O_APPEND;
 * an existing name must be a regular file with one link) in one write
 * and fsyncs the file, and the directory when the file is new. Call as
 * mail_owner. Text is sanitised on the way in: CR, LF and other control
 * characters become spaces, invalid UTF-8 becomes '?', diag and mta are
 * cut at their maximum. A record with a bad rcpt (< 0), an action that is
 * not RFC 3464's, a status that is not "D.D{1,3}.D{1,3}" or a diag_type
 * that is not an atom is a bug (msg_panic). 0, or -1 with *error_r
 * (static storage, until the next call in this thread).
 */
int status_log_append(const char *id, const struct status_rec *recs, int n,
    const char **error_r);

/*
 * Reads status/ID and keeps the latest record (the one appended last) for
 * each recipient index < nrcpt; records for other indexes are ignored. A
 * torn or garbage stretch is skipped (see above; status_log_skipped tells
 * how many bytes) and a missing file is an empty log. NULL with *error_r
 * for a file that cannot be read, is not a regular file, or is larger
 * than STATUS_LOG_FILE_MAX. The caller frees with status_log_free.
 */
struct status_log *status_log_read(const char *id, int nrcpt,
    const char **error_r);
/* The latest record of recipient rcpt, or NULL if there is none (or rcpt
 * is out of range). Its strings live as long as the log. */
const struct status_rec *status_log_get(const struct status_log *l,
    int rcpt);
/* Bytes the reader skipped as torn or garbage (0 for a clean file). */
long long status_log_skipped(const struct status_log *l);
/* Frees *l and sets it to NULL; NULL-safe. */
void status_log_free(struct status_log **l);

/* Unlinks status/ID: 0 (also when it did not exist), or -1 with errno. */
int status_log_remove(const char *id);

#endif
