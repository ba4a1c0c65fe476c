/* SPDX-License-Identifier: MIT */
/*
 * The queue manager's internal interfaces, in Postfix's shape:
 *
 *   qmgr.c           the process: main, the listener for notices and
 *                    flush requests
 *   qmgr_queue.c     the queue directories: which files enter the active
 *                    set (bounded), where each goes when its pass ends
 *   qmgr_message.c   one message in memory: routing its recipients into
 *                    entries, results, the end of a pass (notices, marks,
 *                    expiry, delay warning)
 *   qmgr_transport.c transports (a delivery agent's socket and process
 *                    limit), destinations (transport + nexthop, with a
 *                    concurrency window and a dead-until backoff) and
 *                    entries (one message's recipients for one
 *                    destination: one delivery request)
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include <time.h>
#include "base/event.h"
#include "mail/qfile.h"

struct qmgr_dest;

/* One message's recipients for one destination. */
struct qmgr_entry {
	struct qmgr_msg *msg;
	struct qmgr_dest *dest;
	int *rcpts;
	int n, cap;
	struct qmgr_entry *next; /* the destination's to-do list */
	struct qmgr_entry *msg_next; /* the message's entries while routing */
};

/* One recipient's result in this pass (for notices and marks). */
enum qmgr_rcpt_state {
	QMGR_RCPT_IDLE,     /* not routed in this pass (done before) */
	QMGR_RCPT_QUEUED,   /* in an entry */
	QMGR_RCPT_SENT,     /* delivered */
	QMGR_RCPT_DEFERRED, /* temporary failure; stays pending */
	QMGR_RCPT_FAILED    /* permanent failure, to be reported */
};

/* What an administrator asked for (ternsuper, queue_admin.h): done
 * instead of the deferral or removal when the pass ends. */
enum qmgr_admin {
	QMGR_ADMIN_NONE,
	QMGR_ADMIN_DELETE,
	QMGR_ADMIN_HOLD,
	QMGR_ADMIN_REQUEUE
};

/* One message of the active set: its file is active/ID, open for marks. */
struct qmgr_msg {
	struct qfile q;
	unsigned char *state;  /* enum qmgr_rcpt_state per recipient */
	unsigned char *notify_success; /* 1: a "delivered" notice is due */
	int entries;           /* entries not finished */
	int recovered;         /* may have been delivered before a crash */
	int retry_soon;        /* a request was lost: retry shortly */
	int flushed;           /* taken by a flush: defer_transports deliver */
	enum qmgr_admin admin; /* set by ternsuper: where the pass ends */
	double active_at;      /* when this pass took it (delays=a/b) */
	struct qmgr_entry *routing; /* entries made by qmgr_message_route */
	struct event_timer *stuck;   /* its final rename/unlink failed */
	int stuck_pending;
	struct qmgr_msg *next_stuck;
	struct qmgr_msg *all_prev, *all_next;
};

/* One recipient's answer, from an agent or a built-in transport. */
struct qmgr_result {
	int rcpt;
	char status;          /* QREC_RCPT_DONE, QREC_RCPT_FAILED or 0 (defer) */
	const char *dsn;      /* "2.0.0" */
	const char *text;     /* diagnostic */
	const char *action;   /* delivered, expanded, relayed, or "" */
	const char *mta;      /* remote MTA or "" */
	const char *diag_type; /* "smtp" or "x-tern" */
	int dsn_passed;       /* the next hop took over its DSN (RFC 3461) */
};

extern struct event_loop *qmgr_loop;
/* qmgr_message_active_limit, lowered to what the open file limit allows. */
extern long long qmgr_active_max;

/* qmgr_queue.c */
void qmgr_queue_init(void);
void qmgr_queue_notice(const char *id);
/* Every deferred message (or those with a pending recipient in domain,
 * or with subdomains also below it) is due now; dead destinations come
 * back. One scan of deferred/: callers go through qmgr_flush_request. */
void qmgr_queue_flush(const char *domain, int subdomains);
/* deferred/ID is due now (ternqueue -i); through qmgr_flush_request_id. */
void qmgr_queue_flush_id(const char *id);
/* m's pass is over (qmgr_message_done decided): move, remove or keep. */
void qmgr_queue_release(struct qmgr_msg *m, int pending);
void qmgr_queue_shutdown(void);
/*
 * ternsuper's request for active/ID (queue_admin.h): a message in memory
 * gets it at the end of its pass (its waiting entries are withdrawn, so
 * that is as soon as its requests in flight are answered); a file qmgr
 * has not taken (yet) is handled at once. Returns QUEUE_ADMIN_DONE,
 * _LATER or _ABSENT.
 */
const char *qmgr_queue_admin(const char *id, enum qmgr_admin what);
/* Recipients held by messages in memory. */
extern long long qmgr_nrcpt_active;

/* qmgr_flush.c */
/*
 * A flush request (tern flush, ternqueue, smtpd's ETRN): runs
 * qmgr_queue_flush now, or, when the same flush ran less than
 * QMGR_FLUSH_INTERVAL_MS ago, once when that interval ends (requests
 * meanwhile are coalesced), so a client repeating ETRN cannot keep qmgr
 * scanning deferred/.
 */
void qmgr_flush_request(const char *domain, int subdomains);
/* The same for the one deferred message id (ternqueue -i), under the
 * same rule per ID. */
void qmgr_flush_request_id(const char *id);
void qmgr_flush_shutdown(void);

/* qmgr_message.c */
struct qmgr_msg *qmgr_message_new(void);
void qmgr_message_free(struct qmgr_msg *m);
/* Routes the pending recipients of a freshly opened m and queues them. */
void qmgr_message_load(struct qmgr_msg *m);
/* Records n results of m (status log, marks in memory). */
void qmgr_message_results(struct qmgr_msg *m, const struct qmgr_result *r,
    int n);
/* Recipients of an entry whose request was lost: retry soon. */
void qmgr_message_lost(struct qmgr_msg *m, const int *rcpts, int n,
    const char *why);
/* One entry of m finished; the last one ends the pass. */
void qmgr_message_entry_done(struct qmgr_msg *m);
/*
 * One recipient's answer from qmgr itself (a built-in transport, a dead
 * destination, a transport that is down): logs it and records it.
 */
void qmgr_message_answer(struct qmgr_msg *m, int i, char status,
    const char *dsn, const char *text, const char *action);
/* Log line for a recipient no agent saw. */
void qmgr_message_log(const struct qmgr_msg *m, int i, const char *relay,
    const char *dsn, const char *status, const char *text);

/* qmgr_transport.c */
void qmgr_transport_init(void);
/*
 * Adds recipient rcpt of m for (transport, nexthop). Built-in transports
 * answer at once. Entries are not scheduled until qmgr_transport_commit.
 */
void qmgr_transport_add(struct qmgr_msg *m, int rcpt, const char *transport,
    const char *nexthop);
/* Queues m's routed entries and starts requests. */
void qmgr_transport_commit(struct qmgr_msg *m);
/*
 * Takes back m's entries that wait for a destination (no request went
 * out for them); their recipients count as deferred. Each one finishes
 * (qmgr_message_entry_done): the caller holds an entry of its own so
 * that m outlives the call.
 */
void qmgr_transport_withdraw(struct qmgr_msg *m);
/* Revives every dead destination (flush). */
void qmgr_transport_revive_all(void);
/* Requests in flight over every transport. */
int qmgr_transport_busy(void);
void qmgr_transport_drain(struct event_loop *loop, uint64_t max_ms);
void qmgr_transport_shutdown(void);

#endif
