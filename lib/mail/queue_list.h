/* SPDX-License-Identifier: MIT */
/*
 * Listing the mail queue (what mailq shows): the walk over the queue
 * directories that the showq daemon runs for everybody and ternqueue runs
 * itself, as mail_owner, when the mail system is down; and the frames
 * showq sends its clients (public/showq):
 *
 *   request  {request=list}
 *            {request=flush} | {request=flush_site, domain}
 *            | {request=deliver, queue_id}
 *   replies  {type=message, queue_name, queue_id, arrival_time,
 *             message_size, forced_expire, sender, ready}
 *            followed by one {type=recipient, address, orig_address,
 *             delay_reason} per pending recipient (list only), and
 *            finally {type=end, status, reason}: status ok, denied,
 *            notfound, unavailable or error.
 *
 * Every frame is small (QFILE_RECORD_MAX and STATUS_DIAG_MAX bound its
 * values), so a queue of any length streams through in bounded memory.
 */
#ifndef TERN_QUEUE_LIST_H
#define TERN_QUEUE_LIST_H

#include <sys/types.h>
#include "base/buf.h"
#include "base/mem.h"
#include "mail/attr.h"

#define SHOWQ_SERVICE        "showq" /* public/showq */
#define SHOWQ_REQ_LIST       "list"
#define SHOWQ_REQ_FLUSH      "flush"
#define SHOWQ_REQ_FLUSH_SITE "flush_site"
#define SHOWQ_REQ_DELIVER    "deliver"
#define SHOWQ_TYPE_MESSAGE   "message"
#define SHOWQ_TYPE_RECIPIENT "recipient"
#define SHOWQ_TYPE_END       "end"
#define SHOWQ_OK             "ok"
#define SHOWQ_DENIED         "denied"
#define SHOWQ_NOTFOUND       "notfound"
#define SHOWQ_UNAVAILABLE    "unavailable"
#define SHOWQ_ERROR          "error"
/* A request is a few names and one domain or queue ID. */
#define SHOWQ_REQUEST_MAX    1024
/* The largest reply frame: a recipient with a full reason. */
#define SHOWQ_REPLY_MAX      (4 * 65536 + 8192)

struct queue_list_rcpt {
	const char *addr;
	const char *orcpt;  /* the DSN ORCPT value, "" when absent */
	const char *reason; /* the last deferral reason, "" when none */
};

struct queue_list_msg {
	const char *queue; /* incoming, active, deferred, hold, maildrop */
	const char *id;
	long long arrival;  /* unix seconds */
	long long size;     /* content bytes (an unread maildrop file:
				 * the file's size) */
	int forced_expire;  /* always 0: tern has no postsuper -e */
	const char *sender; /* envelope sender, "" for <> */
	long long uid;      /* who submitted it locally (pickup's uid=
				 * attribute, a maildrop file's owner); -1
				 * when it came over SMTP */
	/* 0 for a maildrop file not yet complete or not readable as a
	 * queue file: sender and recipients are unknown. */
	int ready;
	const struct queue_list_rcpt *rcpts; /* pending ones only */
	int nrcpt;
};

/* One message; returns 0 to go on, -1 to stop the walk. */
typedef int queue_list_cb(const struct queue_list_msg *m, void *ctx);

/*
 * Walks incoming/, active/, deferred/, hold/ and maildrop/ (Postfix's
 * order) under the configured queue_directory, calling cb for every
 * message. Run as mail_owner (owner: its uid; queue files must be
 * owned by it): never as root. Names that are not queue IDs, files that
 * are not regular, do not parse or are incomplete (corrupt, or gone
 * meanwhile) are skipped; a directory that cannot be read is logged and
 * skipped. Returns 0, or -1 when cb stopped the walk.
 */
int queue_list_walk(uid_t owner, queue_list_cb *cb, void *ctx);

/* The showq frames above; each returns 0, or -1 when frame is full. */
int queue_list_put_message(struct buf *frame, const struct queue_list_msg *m)
    MTA_NODISCARD;
int queue_list_put_rcpt(struct buf *frame, const struct queue_list_rcpt *r)
    MTA_NODISCARD;
int queue_list_put_end(
    struct buf *frame, const char *status, const char *reason) MTA_NODISCARD;

/*
 * Decodes a message or recipient frame (l) back into *m or *r; the
 * strings point into l. 0, or -1 when an attribute is missing or bad.
 */
int queue_list_get_message(const struct attr_list *l, struct queue_list_msg *m);
int queue_list_get_rcpt(const struct attr_list *l, struct queue_list_rcpt *r);

#endif
