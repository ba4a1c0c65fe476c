/* SPDX-License-Identifier: MIT */
/*
 * The queue manager's internal interfaces. qmgr.c owns the process (main,
 * the listener for smtpd's notices); qmgr_queue.c owns the queue
 * directories and the messages in memory (the active queue);
 * qmgr_deliver.c owns the connections to the local delivery agent.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include "base/event.h"
#include "mail/qfile.h"

/* One message of the active queue: its file is active/ID, open for marks. */
struct qmgr_msg {
	struct qfile q;
	int *local_rcpts; /* recipient indexes for the local transport */
	int nlocal;
	int handed;     /* local_rcpts[0..handed) went out in requests */
	int inflight;   /* requests not answered yet */
	int retry_soon; /* a request was lost: retry shortly */
	struct event_timer *stuck;   /* its final rename/unlink failed */
	struct qmgr_msg *next_stuck; /* qmgr_queue's list of those */
	struct qmgr_msg *next_ready; /* qmgr_deliver's ready list */
	struct qmgr_msg *all_prev, *all_next; /* every message in memory */
};

/* The daemon's event loop (set by qmgr.c before the init calls). */
extern struct event_loop *qmgr_loop;
/* qmgr_active_limit, lowered to what the open file limit allows. */
extern long long qmgr_active_max;

/*
 * Starts the queue work: takes back every file in active/ (crash
 * recovery), then scans incoming/ and deferred/ periodically.
 */
void qmgr_queue_init(void);
/* smtpd committed incoming/ID: take it now if there is room. */
void qmgr_queue_notice(const char *id);
/*
 * Called by qmgr_deliver when m has no request left to send or to wait
 * for: removes the file when nothing is pending, else defers it. Frees m,
 * or keeps it (and its active slot) and retries when the file could not
 * be moved out of active/.
 */
void qmgr_queue_done(struct qmgr_msg *m);
/* Frees every message in memory (their files stay put) and the scans. */
void qmgr_queue_shutdown(void);

void qmgr_deliver_init(void);
/* Queues m (with nlocal > 0) for local delivery requests. */
void qmgr_deliver_add(struct qmgr_msg *m);
/*
 * On shutdown: sends no new requests and runs the loop until every
 * request in flight is answered, or max_ms passed, or the loop is stopped
 * again (a second SIGTERM, master gone).
 */
void qmgr_deliver_drain(struct event_loop *loop, uint64_t max_ms);
/* Closes the connections to local (after the drain). */
void qmgr_deliver_shutdown(void);

#endif
