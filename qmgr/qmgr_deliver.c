/* SPDX-License-Identifier: MIT */
/*
 * The queue manager's side of local delivery: up to
 * local_destination_concurrency_limit connections to private/local (one
 * attr_client each: local serves one connection per process), each
 * carrying one request at a time ({request=deliver, queue_id, queue_file,
 * rcpt_index...}) and its one reply ({rcpt_index, result, dsn, text} per
 * recipient, in request order), with an ipc_timeout deadline per request
 * and an idle close. Results are written into the
 * queue file (qfile_mark, one fsync per reply). The delivery agent logs
 * each recipient's status line; a request that is lost (connection
 * closed, timeout, malformed reply) marks nothing, so its recipients are
 * retried: delivery is at-least-once. No RFCs here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "qmgr.h"

/* Recipients per request: bounds the reply and spreads big lists. */
#define QMGR_BATCH_MAX      50
#define QMGR_ATTRS_PER_RCPT 5
/* An unused connection is closed so the local process can move on. */
#define QMGR_IDLE_MS        60000
/* After local could not be reached, wait this long before trying again. */
#define QMGR_DOWN_MS        5000
#define QMGR_MS_PER_SEC     1000

struct qmgr_conn {
	struct attr_client *client;
	int busy;
	struct qmgr_msg *msg; /* busy: the request's message */
	int idx[QMGR_BATCH_MAX];
	int n;
	struct qmgr_conn *next;
};

static struct qmgr_conn *qmgr_conns;
static int qmgr_nconns;
static struct qmgr_msg *qmgr_ready_head, *qmgr_ready_tail;
static char *qmgr_local_path;
/* Armed while local is unreachable. */
static struct event_timer *qmgr_down;
/* Shutting down: no new requests; the loop ends when none is in flight. */
static struct event_loop *qmgr_draining;

static void qmgr_conn_reply(
    const struct attr_list *reply, const char *error, void *ctx);

static uint64_t
qmgr_ipc_ms(void)
{
	return (uint64_t)var_ipc_timeout * QMGR_MS_PER_SEC;
}

static void
qmgr_ready_push(struct qmgr_msg *m)
{
	m->next_ready = NULL;
	if (qmgr_ready_tail != NULL)
		qmgr_ready_tail->next_ready = m;
	else
		qmgr_ready_head = m;
	qmgr_ready_tail = m;
}

static struct qmgr_msg *
qmgr_ready_pop(void)
{
	struct qmgr_msg *m = qmgr_ready_head;

	qmgr_ready_head = m->next_ready;
	if (qmgr_ready_head == NULL)
		qmgr_ready_tail = NULL;
	m->next_ready = NULL;
	return m;
}

static int
qmgr_busy(void)
{
	struct qmgr_conn *c;
	int n = 0;

	for (c = qmgr_conns; c != NULL; c = c->next)
		n += c->busy;
	return n;
}

static void
qmgr_msg_check(struct qmgr_msg *m)
{
	if (m->handed == m->nlocal && m->inflight == 0)
		qmgr_queue_done(m);
	if (qmgr_draining != NULL && qmgr_busy() == 0)
		event_loop_stop(qmgr_draining);
}

static void
qmgr_local_up(struct event_timer *t, void *ctx)
{
	(void)t;
	(void)ctx;
	event_timer_del(&qmgr_down);
	msg_debug("trying local delivery again");
	qmgr_deliver_add(NULL);
}

static void
qmgr_local_down(void)
{
	if (qmgr_down == NULL)
		qmgr_down = event_timer_add(
		    qmgr_loop, QMGR_DOWN_MS, qmgr_local_up, NULL);
}

/* Sends the next batch of the first ready message on the idle c. */
static void
qmgr_conn_request(struct qmgr_conn *c)
{
	struct qmgr_msg *m = qmgr_ready_pop();
	char file[sizeof(QUEUE_ACTIVE) + QUEUE_ID_SIZE];
	struct buf *f;
	int i, bad;

	c->n = m->nlocal - m->handed;
	if (c->n > QMGR_BATCH_MAX)
		c->n = QMGR_BATCH_MAX;
	memcpy(c->idx, m->local_rcpts + m->handed, sizeof(int) * (size_t)c->n);
	m->handed += c->n;
	m->inflight++;
	/* Round robin: a long recipient list does not starve other mail. */
	if (m->handed < m->nlocal)
		qmgr_ready_push(m);
	snprintf(file, sizeof(file), "%s/%s", QUEUE_ACTIVE, m->q.id);
	f = attr_client_frame(c->client);
	bad = attr_put_str(f, "request", "deliver") < 0 ||
	      attr_put_str(f, "queue_id", m->q.id) < 0 ||
	      attr_put_str(f, "queue_file", file) < 0;
	for (i = 0; i < c->n && !bad; i++)
		bad = attr_put_int(f, "rcpt_index", c->idx[i]) < 0;
	if (bad)
		msg_panic("%s: delivery request does not fit a frame", m->q.id);
	c->msg = m;
	c->busy = 1;
	msg_debug("%s: %d recipient(s) to local", m->q.id, c->n);
	attr_client_send(c->client, qmgr_conn_reply, c);
}

/*
 * Checks the whole reply before acting on it, so a malformed one marks
 * nothing. Returns 0 with status_r filled (0 for defer), or -1.
 */
static int
qmgr_reply_parse(const struct qmgr_conn *c, const struct attr_list *reply,
    char *status_r, const char **why_r)
{
	const struct attr *a;
	const char *result;
	uint64_t idx;
	int i, skip;

	/* The request id (attr_client) comes first. */
	skip = reply->count > 0 && strcmp(reply->v[0].name, ATTR_ID) == 0;
	if (reply->count - skip != c->n * QMGR_ATTRS_PER_RCPT) {
		*why_r = "wrong number of results";
		return -1;
	}
	for (i = 0; i < c->n; i++) {
		a = &reply->v[skip + i * QMGR_ATTRS_PER_RCPT];
		if (strcmp(a[0].name, "rcpt_index") != 0 ||
		    strcmp(a[1].name, "result") != 0 ||
		    strcmp(a[2].name, "dsn") != 0 ||
		    strcmp(a[3].name, "text") != 0 ||
		    strcmp(a[4].name, "action") != 0) {
			*why_r = "unexpected attribute in reply";
			return -1;
		}
		if (str_to_u64(a[0].value, (uint64_t)c->msg->q.nrcpt, &idx) <
		        0 ||
		    (int)idx != c->idx[i]) {
			*why_r = "reply for the wrong recipient";
			return -1;
		}
		result = a[1].value;
		if (strcmp(result, "sent") == 0)
			status_r[i] = QREC_RCPT_DONE;
		else if (strcmp(result, "bounce") == 0)
			status_r[i] = QREC_RCPT_FAILED;
		else if (strcmp(result, "defer") == 0)
			status_r[i] = 0;
		else {
			*why_r = "unknown result";
			return -1;
		}
	}
	return 0;
}

/* The request on c is lost: nothing is marked, the message retries. */
static void
qmgr_conn_lost(struct qmgr_conn *c, const char *why)
{
	struct qmgr_msg *m = c->msg;

	msg_warn("%s: request to local delivery failed (%s); will retry",
	    m->q.id, why);
	m->retry_soon = 1;
	m->inflight--;
	c->busy = 0;
	c->msg = NULL;
	/* Unreachable or broken: give local a moment before the next try. */
	qmgr_local_down();
	qmgr_msg_check(m);
}

static void
qmgr_conn_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct qmgr_conn *c = ctx;
	char status[QMGR_BATCH_MAX];
	struct qmgr_msg *m = c->msg;
	const char *why, *err;
	int i, marks = 0, finals = 0, failed = 0, in_memory;

	if (reply == NULL) {
		qmgr_conn_lost(c, error);
		qmgr_deliver_add(NULL);
		return;
	}
	if (qmgr_reply_parse(c, reply, status, &why) < 0) {
		qmgr_conn_lost(c, why);
		qmgr_deliver_add(NULL);
		return;
	}
	for (i = 0; i < c->n; i++) {
		finals += status[i] != 0;
		failed += status[i] == QREC_RCPT_FAILED;
	}
	/*
	 * When this reply settles the last pending recipients the file is
	 * about to be removed: marking it would only add an fsync to the
	 * scheduler's loop. A crash before the unlink repeats these
	 * deliveries, which at-least-once allows (Postfix does the same).
	 * A failure keeps the file (hold/), so its marks must be on disk.
	 */
	in_memory =
	    m->inflight == 1 && finals == qfile_pending(&m->q) && failed == 0;
	for (i = 0; i < c->n; i++) {
		if (status[i] == 0)
			continue;
		if (in_memory)
			m->q.rcpts[c->idx[i]].status = status[i];
		/* A failed mark leaves the recipient pending: retried later. */
		else if (qfile_mark(&m->q, c->idx[i], status[i], &err) < 0)
			msg_warn("%s", err);
		else
			marks++;
	}
	if (marks > 0 && qfile_sync(&m->q, &err) < 0)
		msg_warn("%s", err);
	m->inflight--;
	c->busy = 0;
	c->msg = NULL;
	qmgr_msg_check(m);
	qmgr_deliver_add(NULL);
}

static struct qmgr_conn *
qmgr_conn_new(void)
{
	struct qmgr_conn *c = xcalloc(1, sizeof(*c));

	c->client = attr_client_create(qmgr_loop, qmgr_local_path, 0,
	    qmgr_ipc_ms(), ATTR_FRAME_MAX, QMGR_IDLE_MS);
	c->next = qmgr_conns;
	qmgr_conns = c;
	qmgr_nconns++;
	return c;
}

/* Hands ready work to idle connections, opening new ones up to the limit. */
static void
qmgr_pump(void)
{
	struct qmgr_conn *c, *idle;

	while (qmgr_ready_head != NULL && qmgr_draining == NULL &&
	       qmgr_down == NULL) {
		idle = NULL;
		for (c = qmgr_conns; c != NULL && idle == NULL; c = c->next)
			if (!c->busy)
				idle = c;
		if (idle == NULL) {
			if (qmgr_nconns >=
			    var_local_destination_concurrency_limit)
				return;
			idle = qmgr_conn_new();
		}
		qmgr_conn_request(idle);
	}
}

void
qmgr_deliver_add(struct qmgr_msg *m)
{
	if (m != NULL)
		qmgr_ready_push(m);
	qmgr_pump();
}

static void
qmgr_drain_timeout(struct event_timer *t, void *ctx)
{
	(void)t;
	msg_warn(
	    "stopping with %d delivery request(s) unanswered", qmgr_busy());
	event_loop_stop(ctx);
}

void
qmgr_deliver_drain(struct event_loop *loop, uint64_t max_ms)
{
	struct event_timer *t;

	if (qmgr_busy() == 0)
		return;
	qmgr_draining = loop;
	t = event_timer_add(loop, max_ms, qmgr_drain_timeout, loop);
	if (event_loop_run(loop) < 0)
		msg_warn("event loop: %m");
	event_timer_del(&t);
}

void
qmgr_deliver_init(void)
{
	qmgr_local_path = queue_path(QUEUE_PRIVATE, "local");
}

void
qmgr_deliver_shutdown(void)
{
	struct qmgr_conn *c;

	while ((c = qmgr_conns) != NULL) {
		qmgr_conns = c->next;
		attr_client_free(&c->client);
		free(c);
	}
	qmgr_nconns = 0;
	event_timer_del(&qmgr_down);
	free(qmgr_local_path);
	qmgr_local_path = NULL;
}
