/* SPDX-License-Identifier: MIT */
/*
 * Delivery status notifications (RFC 3464 in an RFC 6522 multipart/report,
 * RFC 3461 DSN parameters honoured, RFC 6533 for SMTPUTF8 messages),
 * written as new queue messages so that they are durable and retried
 * like any other mail. qmgr decides who gets a notice and about which
 * recipients; this module does the RFC work.
 */
#ifndef TERN_DSN_H
#define TERN_DSN_H

#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/status_log.h"

enum dsn_kind { DSN_FAILED, DSN_DELAYED, DSN_SUCCESS };

/*
 * The queue-file attribute that marks tern's own notices, and its values:
 * a notice about a message with the null sender (which is itself a
 * notice; it goes to the postmaster) is a "2bounce".
 */
#define DSN_ATTR_NOTICE	   "notice"
#define DSN_NOTICE_BOUNCE  "bounce"
#define DSN_NOTICE_DELAY   "delay"
#define DSN_NOTICE_SUCCESS "success"
#define DSN_NOTICE_2BOUNCE "2bounce"

/*
 * 1 if a recipient with this NOTIFY mask (qfile.h QRCPT_NOTIFY_*; 0 =
 * not given, which RFC 3461 4.1 reads as FAILURE,DELAY) asked for a
 * notice of this kind, else 0. It does not look at the sender: a message
 * with the null sender never gets a notice except the double bounce.
 */
int dsn_notify_wants(unsigned notify, enum dsn_kind kind);

/*
 * Writes and commits into incoming/ (fsync, rename, directory fsync) a
 * notice about message q (open and complete) for the recipients whose
 * indexes are rcpts[0..n) (n > 0, each < q->nrcpt, else msg_panic), each
 * described by its latest record in log (NULL or no record: a generic
 * status of the kind). The envelope: null sender, the one recipient
 * notify_to (the original sender, or the postmaster for a double
 * bounce; an address without '@' is qualified with $myhostname in the To:
 * header only), the attributes protocol=local and notice=KIND
 * (DSN_NOTICE_*), plus body=8BITMIME and smtputf8 when the content
 * needs them.
 *
 * The content: From MAILER-DAEMON@$myhostname, Auto-Submitted:
 * auto-replied (RFC 3834), a multipart/report of a text/plain
 * explanation, a message/delivery-status (per-message fields and one
 * block per recipient: Final-Recipient, Original-Recipient from ORCPT,
 * Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date,
 * Will-Retry-Until for delays from dsn_lifetime) and the original: whole
 * (message/rfc822) for a failure unless RET=HDRS, BODY=BINARYMIME or it
 * is larger than bounce_size_limit, else its header section
 * (text/rfc822-headers, cut at bounce_size_limit). A message with the
 * smtputf8 attribute gets the RFC 6533 types (global-delivery-status,
 * message/global, message/global-headers) and UTF-8 text; otherwise all
 * text is ASCII. Text from peers never breaks a line, lines are folded
 * below 998 octets (RFC 5322 2.1.1).
 *
 * Returns 0 with the new queue ID in id_r, or -1 with *error_r (the
 * queue file could not be read or the notice not written; nothing is
 * left in tmp/).
 */
/*
 * Seconds recipient rcpt of q may stay queued: backup_queue_lifetime for
 * one held as a backup MX (qrcpt.backup, whatever the sender: a site's
 * notices wait for it like its other mail), else bounce_queue_lifetime
 * for the null sender and maximal_queue_lifetime for the rest.
 */
long long dsn_lifetime(const struct qfile *q, int rcpt);

int dsn_write(const struct qfile *q, enum dsn_kind kind, const int *rcpts,
    int n, const struct status_log *log, const char *notify_to,
    char id_r[QUEUE_ID_SIZE], const char **error_r);

#endif
