/* SPDX-License-Identifier: MIT */
/*
 * The queue manager, tern's only scheduler: it moves committed messages
 * from incoming/ into the active queue, asks the local delivery agent to
 * deliver them, marks each recipient's result in the queue file, and
 * removes or defers each message with exponential backoff. This file is
 * the process: the server skeleton hooks and the listener on which smtpd
 * announces each message it committed ({request=new, queue_id=ID} attr
 * frames, no reply). A lost notice only delays mail: the queue scan finds
 * the file anyway. No RFCs here; see qmgr(8).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "qmgr.h"

/* A notice frame is about 50 bytes; anything near this is garbage. */
#define QMGR_NOTICE_MAX    4096
/* smtpd processes keep one connection each; more means a leak or abuse. */
#define QMGR_CLIENTS_MAX   256
/* Bytes of a bad protocol token that are logged. */
#define QMGR_TOKEN_LOG_MAX 64
#define QMGR_MS_PER_SEC    1000
/* Descriptors besides queue files: logs, directories, sockets to local. */
#define QMGR_FD_SPARE      64
/* Waiting for replies at stop: well under master's SIGKILL delay (5 s). */
#define QMGR_DRAIN_MS      3000

struct qmgr_client {
	int fd;
	struct event_fd *ev;
	struct event_timer *idle;
	struct buf in;
	struct attr_list attrs;
	struct qmgr_client *prev, *next;
};

struct event_loop *qmgr_loop;
long long qmgr_active_max;
static struct qmgr_client *qmgr_clients;
static int qmgr_nclients;

static void
qmgr_client_free(struct qmgr_client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		qmgr_clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	event_fd_del(&c->ev);
	event_timer_del(&c->idle);
	close(c->fd);
	buf_free(&c->in);
	attr_list_free(&c->attrs);
	free(c);
	qmgr_nclients--;
}

static void
qmgr_client_idle(struct event_timer *t, void *ctx)
{
	(void)t;
	msg_debug("closing idle notice connection");
	qmgr_client_free(ctx);
}

/* Handles one frame; -1 closes the connection. */
static int
qmgr_client_frame(struct qmgr_client *c)
{
	const char *req = attr_get(&c->attrs, "request");
	const char *id = attr_get(&c->attrs, "queue_id");

	if (req == NULL || strcmp(req, "new") != 0) {
		msg_warn("notice connection: unknown request '%s'",
		    log_sanitize(req != NULL ? req : "", QMGR_TOKEN_LOG_MAX));
		return -1;
	}
	if (id == NULL || !queue_id_valid(id)) {
		msg_warn("notice connection: bad queue_id '%s'",
		    log_sanitize(id != NULL ? id : "", QMGR_TOKEN_LOG_MAX));
		return -1;
	}
	qmgr_queue_notice(id);
	return 0;
}

static void
qmgr_client_read(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct qmgr_client *c = ctx;
	char tmp[QMGR_NOTICE_MAX];
	size_t room = c->in.max - c->in.len, used;
	const char *err = NULL;
	ssize_t n;
	int r;

	(void)ev;
	(void)events;
	if (room == 0) {
		msg_warn(
		    "notice connection: frame over %d bytes", QMGR_NOTICE_MAX);
		qmgr_client_free(c);
		return;
	}
	n = read(fd, tmp, room);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0)
			msg_warn("notice connection: read: %m");
		qmgr_client_free(c);
		return;
	}
	if (buf_append(&c->in, tmp, (size_t)n) < 0)
		msg_panic("notice buffer overrun");
	event_timer_reset(c->idle, (uint64_t)var_ipc_timeout * QMGR_MS_PER_SEC);
	while ((r = attr_decode_frame(
	            c->in.data, c->in.len, &used, &c->attrs, &err)) == 1) {
		buf_consume(&c->in, used);
		if (qmgr_client_frame(c) < 0) {
			qmgr_client_free(c);
			return;
		}
	}
	if (r < 0) {
		msg_warn("notice connection: %s", err);
		qmgr_client_free(c);
	}
}

static void
qmgr_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	struct qmgr_client *c;

	(void)l;
	if (qmgr_nclients >= QMGR_CLIENTS_MAX) {
		msg_warn("too many notice connections (%d), refusing one",
		    QMGR_CLIENTS_MAX);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	buf_init(&c->in, QMGR_NOTICE_MAX);
	attr_list_init(&c->attrs);
	c->ev = event_fd_add(loop, fd, EVENT_READ, qmgr_client_read, c);
	c->idle = event_timer_add(loop,
	    (uint64_t)var_ipc_timeout * QMGR_MS_PER_SEC, qmgr_client_idle, c);
	c->next = qmgr_clients;
	if (c->next != NULL)
		c->next->prev = c;
	qmgr_clients = c;
	qmgr_nclients++;
}

/*
 * Every active message holds its queue file open, so the active limit
 * needs as many descriptors: raise the soft limit, and where the hard
 * limit is lower, lower the active limit rather than fail at EMFILE.
 */
static void
qmgr_fd_limit(void)
{
	long long spare = QMGR_FD_SPARE + QMGR_CLIENTS_MAX +
	                  var_local_destination_concurrency_limit;
	long long want = var_qmgr_active_limit + spare;
	struct rlimit rl;

	qmgr_active_max = var_qmgr_active_limit;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		msg_fatal("getrlimit: %m");
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur =
		    rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want
		        ? rl.rlim_max
		        : (rlim_t)want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 &&
		    getrlimit(RLIMIT_NOFILE, &rl) < 0)
			msg_fatal("getrlimit: %m");
	}
	if (rl.rlim_cur != RLIM_INFINITY && (long long)rl.rlim_cur < want) {
		qmgr_active_max = (long long)rl.rlim_cur - spare;
		if (qmgr_active_max < 1)
			qmgr_active_max = 1;
		msg_info("open file limit %lld: using qmgr_active_limit %lld "
		         "instead of %lld",
		    (long long)rl.rlim_cur, qmgr_active_max,
		    var_qmgr_active_limit);
	}
}

static void
qmgr_init(struct event_loop *loop)
{
	qmgr_loop = loop;
	qmgr_fd_limit();
	qmgr_deliver_init();
	qmgr_queue_init();
}

static void
qmgr_shutdown(void)
{
	/*
	 * Answers in flight settle recipients; without them a stop would
	 * deliver those messages again after the restart. Bounded well
	 * under master's grace period before SIGKILL.
	 */
	qmgr_deliver_drain(qmgr_loop, QMGR_DRAIN_MS);
	while (qmgr_clients != NULL)
		qmgr_client_free(qmgr_clients);
}

static const struct server_ops qmgr_ops = {
    .name = "qmgr",
    .mode = SERVER_MULTI,
    .init = qmgr_init,
    .accept = qmgr_accept,
    .shutdown = qmgr_shutdown,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &qmgr_ops);
}
