/* SPDX-License-Identifier: MIT */
/*
 * The queue manager, tern's only scheduler: it moves committed messages
 * from incoming/ into the active queue, asks the local delivery agent to
 * deliver them, marks each recipient's result in the queue file, and
 * removes or defers each message with exponential backoff. This file is
 * the process: the server skeleton hooks and the listener on which smtpd
 * announces each message it committed ({request=new, queue_id=ID} attr
 * frames, no reply) and `tern flush`, ternqueue and smtpd's ETRN ask for
 * a queue run ({request=flush[, domain[, subdomains=1] | queue_id]}, flush.h;
 * answered when it carries an id). A lost notice only delays mail: the queue
 * scan finds the file anyway. No RFCs here; see qmgr(8).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/attr.h"
#include "mail/attr_server.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/queue_admin.h"
#include "mail/route.h"
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

struct event_loop *qmgr_loop;
long long qmgr_active_max;

/*
 * A flush request; with an id (smtpd's ETRN) the answer says qmgr took
 * it, which is when smtpd may say 250 (flush.h).
 */
static int
qmgr_flush_notice(struct attr_conn *conn, const struct attr_list *req)
{
	const char *domain = attr_get(req, FLUSH_ATTR_DOMAIN);
	const char *sub = attr_get(req, FLUSH_ATTR_SUBDOMAINS);
	const char *id = attr_get(req, FLUSH_ATTR_QUEUE_ID);
	struct buf *reply;

	if (domain != NULL && !flush_domain_valid(domain)) {
		msg_warn("notice connection: bad flush domain '%s'",
		    log_sanitize(domain, QMGR_TOKEN_LOG_MAX));
		return -1;
	}
	if (id != NULL && (domain != NULL || !queue_id_valid(id))) {
		msg_warn("notice connection: bad flush queue_id '%s'",
		    log_sanitize(id, QMGR_TOKEN_LOG_MAX));
		return -1;
	}
	if (id != NULL)
		qmgr_flush_request_id(id);
	else
		qmgr_flush_request(
		    domain, sub != NULL && strcmp(sub, "1") == 0);
	reply = attr_conn_reply_begin(conn, req);
	if (attr_put_str(reply, FLUSH_ATTR_STATUS, FLUSH_STATUS_OK) < 0)
		msg_panic("flush: reply does not fit a frame");
	attr_conn_reply_end(conn);
	return 0;
}

/* ternsuper about an active message (queue_admin.h). */
static int
qmgr_admin_request(struct attr_conn *conn, const struct attr_list *req,
    enum qmgr_admin what)
{
	const char *id = attr_get(req, QUEUE_ADMIN_ATTR_ID);
	struct buf *reply;

	if (id == NULL || !queue_id_valid(id)) {
		msg_warn("notice connection: bad queue_id '%s'",
		    log_sanitize(id != NULL ? id : "", QMGR_TOKEN_LOG_MAX));
		return -1;
	}
	reply = attr_conn_reply_begin(conn, req);
	if (attr_put_str(reply, QUEUE_ADMIN_ATTR_STATUS,
	        qmgr_queue_admin(id, what)) < 0)
		msg_panic("admin: reply does not fit a frame");
	attr_conn_reply_end(conn);
	return 0;
}

/* One notice ({request=new, queue_id}), a flush request or ternsuper's
 * request; -1 closes the connection. */
static int
qmgr_notice(struct attr_conn *conn, const struct attr_list *req)
{
	const char *what = attr_get(req, "request");
	const char *id = attr_get(req, "queue_id");

	if (what != NULL && strcmp(what, FLUSH_REQUEST) == 0)
		return qmgr_flush_notice(conn, req);
	if (what != NULL && strcmp(what, QUEUE_ADMIN_DELETE) == 0)
		return qmgr_admin_request(conn, req, QMGR_ADMIN_DELETE);
	if (what != NULL && strcmp(what, QUEUE_ADMIN_HOLD) == 0)
		return qmgr_admin_request(conn, req, QMGR_ADMIN_HOLD);
	if (what != NULL && strcmp(what, QUEUE_ADMIN_REQUEUE) == 0)
		return qmgr_admin_request(conn, req, QMGR_ADMIN_REQUEUE);
	if (what == NULL || strcmp(what, "new") != 0) {
		msg_warn("notice connection: unknown request '%s'",
		    log_sanitize(what != NULL ? what : "", QMGR_TOKEN_LOG_MAX));
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

static const struct attr_server_ops qmgr_notice_ops = {
    .request = qmgr_notice,
};

static void
qmgr_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	const struct attr_server_limits lim = {
	    .request_max = QMGR_NOTICE_MAX,
	    .conns_max = QMGR_CLIENTS_MAX,
	    .idle_ms = (uint64_t)var_ipc_timeout * QMGR_MS_PER_SEC,
	};

	(void)l;
	attr_server_accept(fd, loop, &qmgr_notice_ops, &lim);
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
	                  var_default_process_limit;
	long long want = var_qmgr_message_active_limit + spare;
	struct rlimit rl;

	qmgr_active_max = var_qmgr_message_active_limit;
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
		msg_info("open file limit %lld: using qmgr_message_active_limit %lld "
		         "instead of %lld",
		    (long long)rl.rlim_cur, qmgr_active_max,
		    var_qmgr_message_active_limit);
	}
}

/* Tables are opened as root, before any chroot (as smtpd's are). */
static void
qmgr_pre_drop(int argc, char **argv)
{
	char *err;

	(void)argc;
	(void)argv;
	if (route_init(&err) < 0)
		msg_fatal("%s", err);
	qmgr_transport_init();
}

static void
qmgr_check_params(void)
{
	if (var_minimal_backoff_time > var_maximal_backoff_time)
		msg_fatal("minimal_backoff_time (%llds) is greater than "
		          "maximal_backoff_time (%llds)",
		    var_minimal_backoff_time, var_maximal_backoff_time);
}

/* qmgr -t (tern check): what qmgr would refuse at start. */
static void
qmgr_check(void)
{
	char *err;

	qmgr_check_params();
	if (route_init(&err) < 0)
		msg_fatal("%s", err);
	route_shutdown();
}

static void
qmgr_init(struct event_loop *loop)
{
	qmgr_loop = loop;
	qmgr_check_params();
	qmgr_fd_limit();
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
	qmgr_transport_drain(qmgr_loop, QMGR_DRAIN_MS);
	attr_server_close_all();
	qmgr_flush_shutdown();
	qmgr_queue_shutdown();
	route_shutdown();
}

static const struct server_ops qmgr_ops = {
    .name = "qmgr",
    .mode = SERVER_MULTI,
    .pre_drop = qmgr_pre_drop,
    .check = qmgr_check,
    .init = qmgr_init,
    .accept = qmgr_accept,
    .shutdown = qmgr_shutdown,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &qmgr_ops);
}
