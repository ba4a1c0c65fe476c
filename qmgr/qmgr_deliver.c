/* SPDX-License-Identifier: MIT */
/*
 * The queue manager's side of local delivery: up to
 * local_destination_concurrency_limit connections to private/local, each
 * carrying one request at a time ({request=deliver, queue_id, queue_file,
 * rcpt_index...}) and its one reply ({rcpt_index, result, dsn, text} per
 * recipient, in request order). Everything runs from the event loop:
 * non-blocking connect, partial writes, replies decoded as they arrive,
 * and an ipc_timeout deadline per request. Results are written into the
 * queue file (qfile_mark, one fsync per reply). The delivery agent logs
 * each recipient's status line; a request that is lost (connection
 * closed, timeout, malformed reply) marks nothing, so its recipients are
 * retried: delivery is at-least-once. No RFCs here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "qmgr.h"

/* Recipients per request: bounds the reply and spreads big lists. */
#define QMGR_BATCH_MAX      50
#define QMGR_ATTRS_PER_RCPT 4
#define QMGR_FRAME_BUF      (ATTR_HEADER_LEN + ATTR_FRAME_MAX)
#define QMGR_READ_CHUNK     16384
/* An unused connection is closed so the local process can move on. */
#define QMGR_IDLE_MS        60000
/* After local could not be reached, wait this long before trying again. */
#define QMGR_DOWN_MS        5000
#define QMGR_MS_PER_SEC     1000
#define QMGR_ERR_SIZE       256

enum qmgr_conn_state {
	QMGR_CONN_CONNECTING,
	QMGR_CONN_IDLE,
	QMGR_CONN_BUSY,
};

struct qmgr_conn {
	int fd;
	enum qmgr_conn_state state;
	struct event_fd *ev;
	struct event_timer *timer;
	struct buf out;
	size_t out_off;
	struct buf in;
	struct attr_list attrs;
	struct qmgr_msg *msg; /* BUSY: the request's message */
	int idx[QMGR_BATCH_MAX];
	int n;
	struct qmgr_conn *next;
};

static struct qmgr_conn *qmgr_conns;
static int qmgr_nconns;
static struct qmgr_msg *qmgr_ready_head, *qmgr_ready_tail;
static struct sockaddr_un qmgr_local_addr;
/* Armed while local is unreachable. */
static struct event_timer *qmgr_down;
/* Shutting down: no new requests; the loop ends when none is in flight. */
static struct event_loop *qmgr_draining;

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

static void
qmgr_conn_free(struct qmgr_conn *c)
{
	struct qmgr_conn **pp;

	for (pp = &qmgr_conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	event_fd_del(&c->ev);
	event_timer_del(&c->timer);
	close(c->fd);
	buf_free(&c->out);
	buf_free(&c->in);
	attr_list_free(&c->attrs);
	free(c);
	qmgr_nconns--;
}

static int
qmgr_busy(void)
{
	struct qmgr_conn *c;
	int n = 0;

	for (c = qmgr_conns; c != NULL; c = c->next)
		n += c->state == QMGR_CONN_BUSY;
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

/* The request on c is lost: nothing is marked, the message retries. */
static void
qmgr_conn_lost(struct qmgr_conn *c, const char *why)
{
	struct qmgr_msg *m = c->msg;

	msg_warn("%s: request to local delivery failed (%s); will retry",
	    m->q.id, why);
	m->retry_soon = 1;
	m->inflight--;
	qmgr_conn_free(c);
	qmgr_msg_check(m);
}

static void
qmgr_conn_lost_errno(struct qmgr_conn *c, const char *what)
{
	char why[QMGR_ERR_SIZE];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(errno));
	qmgr_conn_lost(c, why);
}

static void
qmgr_conn_idle(struct qmgr_conn *c)
{
	c->state = QMGR_CONN_IDLE;
	c->msg = NULL;
	event_fd_set(c->ev, EVENT_READ);
	event_timer_reset(c->timer, QMGR_IDLE_MS);
}

/* Writes what the socket takes; 0, or -1 when c was freed. */
static int
qmgr_conn_write(struct qmgr_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out.len) {
		n = send(c->fd, c->out.data + c->out_off,
		    c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			event_fd_set(c->ev, EVENT_WRITE);
			return 0;
		}
		if (n < 0) {
			qmgr_conn_lost_errno(c, "write");
			return -1;
		}
		c->out_off += (size_t)n;
	}
	buf_reset(&c->out);
	c->out_off = 0;
	event_fd_set(c->ev, EVENT_READ);
	return 0;
}

/* Sends the next batch of the first ready message on the idle c. */
static void
qmgr_conn_request(struct qmgr_conn *c)
{
	struct qmgr_msg *m = qmgr_ready_pop();
	char file[sizeof(QUEUE_ACTIVE) + QUEUE_ID_SIZE];
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
	attr_frame_begin(&c->out);
	bad = attr_put_str(&c->out, "request", "deliver") < 0 ||
	      attr_put_str(&c->out, "queue_id", m->q.id) < 0 ||
	      attr_put_str(&c->out, "queue_file", file) < 0;
	for (i = 0; i < c->n && !bad; i++)
		bad = attr_put_int(&c->out, "rcpt_index", c->idx[i]) < 0;
	if (bad || attr_frame_end(&c->out) < 0)
		msg_panic("%s: delivery request does not fit a frame", m->q.id);
	c->msg = m;
	c->out_off = 0;
	c->state = QMGR_CONN_BUSY;
	event_timer_reset(c->timer, qmgr_ipc_ms());
	msg_debug("%s: %d recipient(s) to local", m->q.id, c->n);
	qmgr_conn_write(c);
}

/*
 * Checks the whole reply before acting on it, so a malformed one marks
 * nothing. Returns 0 with status_r filled (0 for defer), or -1.
 */
static int
qmgr_reply_parse(struct qmgr_conn *c, char *status_r, const char **why_r)
{
	const struct attr *a;
	const char *result;
	uint64_t idx;
	int i;

	if (c->attrs.count != c->n * QMGR_ATTRS_PER_RCPT) {
		*why_r = "wrong number of results";
		return -1;
	}
	for (i = 0; i < c->n; i++) {
		a = &c->attrs.v[i * QMGR_ATTRS_PER_RCPT];
		if (strcmp(a[0].name, "rcpt_index") != 0 ||
		    strcmp(a[1].name, "result") != 0 ||
		    strcmp(a[2].name, "dsn") != 0 ||
		    strcmp(a[3].name, "text") != 0) {
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

static void
qmgr_conn_reply(struct qmgr_conn *c)
{
	char status[QMGR_BATCH_MAX];
	struct qmgr_msg *m = c->msg;
	const char *why, *err;
	int i, marks = 0, finals = 0, failed = 0, in_memory;

	if (qmgr_reply_parse(c, status, &why) < 0) {
		qmgr_conn_lost(c, why);
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
	qmgr_conn_idle(c);
	qmgr_msg_check(m);
}

static void
qmgr_conn_read(struct qmgr_conn *c)
{
	char tmp[QMGR_READ_CHUNK];
	const char *err = NULL;
	size_t used;
	ssize_t n;
	int r;

	n = read(c->fd, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		qmgr_conn_lost_errno(c, "read");
		return;
	}
	if (n == 0) {
		qmgr_conn_lost(c, "connection closed");
		return;
	}
	if (buf_append(&c->in, tmp, (size_t)n) < 0) {
		qmgr_conn_lost(c, "reply too large");
		return;
	}
	r = attr_decode_frame(c->in.data, c->in.len, &used, &c->attrs, &err);
	if (r == 0)
		return;
	if (r < 0 || used != c->in.len) {
		qmgr_conn_lost(c, r < 0 ? err : "data after the reply");
		return;
	}
	buf_reset(&c->in);
	qmgr_conn_reply(c);
}

static void
qmgr_conn_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct qmgr_conn *c = ctx;
	char tmp[1];
	socklen_t len = sizeof(int);
	int err = 0;

	(void)ev;
	(void)events;
	switch (c->state) {
	case QMGR_CONN_CONNECTING:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			errno = err;
			msg_warn("connect to %s: %m", qmgr_local_addr.sun_path);
			qmgr_conn_free(c);
			qmgr_local_down();
			break;
		}
		qmgr_conn_idle(c);
		break;
	case QMGR_CONN_IDLE:
		/* Only EOF is expected here: local ended the connection. */
		if (read(fd, tmp, sizeof(tmp)) > 0)
			msg_warn("unexpected data from local delivery");
		qmgr_conn_free(c);
		break;
	case QMGR_CONN_BUSY:
		if (c->out_off < c->out.len)
			qmgr_conn_write(c);
		else
			qmgr_conn_read(c);
		break;
	}
	qmgr_deliver_add(NULL);
}

static void
qmgr_conn_timeout(struct event_timer *t, void *ctx)
{
	struct qmgr_conn *c = ctx;

	(void)t;
	switch (c->state) {
	case QMGR_CONN_CONNECTING:
		msg_warn("connect to %s: timed out", qmgr_local_addr.sun_path);
		qmgr_conn_free(c);
		qmgr_local_down();
		break;
	case QMGR_CONN_IDLE:
		qmgr_conn_free(c);
		break;
	case QMGR_CONN_BUSY:
		qmgr_conn_lost(c, "timed out");
		break;
	}
	qmgr_deliver_add(NULL);
}

/* A new connection (IDLE or CONNECTING), or NULL when local is down. */
static struct qmgr_conn *
qmgr_conn_open(void)
{
	struct qmgr_conn *c;
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		msg_warn("socket: %m");
		qmgr_local_down();
		return NULL;
	}
	rc = connect(
	    fd, (struct sockaddr *)&qmgr_local_addr, sizeof(qmgr_local_addr));
	if (rc < 0 && errno != EINPROGRESS) {
		msg_warn("connect to %s: %m", qmgr_local_addr.sun_path);
		close(fd);
		qmgr_local_down();
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	buf_init(&c->out, QMGR_FRAME_BUF);
	buf_init(&c->in, QMGR_FRAME_BUF);
	attr_list_init(&c->attrs);
	c->ev = event_fd_add(qmgr_loop, fd, 0, qmgr_conn_io, c);
	c->timer =
	    event_timer_add(qmgr_loop, QMGR_IDLE_MS, qmgr_conn_timeout, c);
	c->next = qmgr_conns;
	qmgr_conns = c;
	qmgr_nconns++;
	if (rc == 0) {
		qmgr_conn_idle(c);
	} else {
		c->state = QMGR_CONN_CONNECTING;
		event_fd_set(c->ev, EVENT_WRITE);
		event_timer_reset(c->timer, qmgr_ipc_ms());
	}
	return c;
}

/* Hands ready work to idle connections, opening new ones up to the limit. */
static void
qmgr_pump(void)
{
	struct qmgr_conn *c, *idle;
	int connecting;

	while (qmgr_ready_head != NULL && qmgr_draining == NULL) {
		idle = NULL;
		connecting = 0;
		for (c = qmgr_conns; c != NULL && idle == NULL; c = c->next) {
			if (c->state == QMGR_CONN_IDLE)
				idle = c;
			connecting |= c->state == QMGR_CONN_CONNECTING;
		}
		if (idle == NULL) {
			if (qmgr_down != NULL || connecting ||
			    qmgr_nconns >=
			        var_local_destination_concurrency_limit)
				return;
			idle = qmgr_conn_open();
			if (idle == NULL || idle->state != QMGR_CONN_IDLE)
				return;
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
	int n;

	qmgr_local_addr.sun_family = AF_UNIX;
	n = snprintf(qmgr_local_addr.sun_path, sizeof(qmgr_local_addr.sun_path),
	    "%s/%s/local", var_queue_directory, QUEUE_PRIVATE);
	if (n < 0 || (size_t)n >= sizeof(qmgr_local_addr.sun_path))
		msg_fatal("queue_directory %s: socket path too long",
		    var_queue_directory);
}
