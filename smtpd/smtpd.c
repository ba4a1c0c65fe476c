/* SPDX-License-Identifier: MIT */
/*
 * smtpd: the SMTP receiver (RFC 5321). One event-driven process serves up
 * to smtpd_max_clients sessions at once, with cleanup in-process and queue
 * file commits in a small thread pool, so no message costs a fork, an
 * extra process hop or a blocked event loop. This file only wires the
 * service into the server skeleton; the protocol lives in smtpd_session.c
 * and smtpd_cmd.c, the queue file in cleanup.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "smtpd.h"

struct commit_pool *smtpd_commit_pool;
char *smtpd_incoming_dir;

/* Time zone data lives outside a chroot: load it first (Received: dates). */
static void
smtpd_pre_drop(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tzset();
}

static void
smtpd_init(struct event_loop *loop)
{
	smtpd_commit_pool =
	    commit_pool_create(loop, (int)var_smtpd_commit_threads);
	smtpd_incoming_dir = queue_path(QUEUE_INCOMING, NULL);
	cleanup_notify_init(loop);
}

static void
smtpd_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	static const char busy[] =
	    "421 4.3.2 Too many connections, try again later\r\n";

	if (smtpd_session_count() >= var_smtpd_max_clients) {
		msg_warn(
		    "too many connections: smtpd_max_clients = %lld reached",
		    var_smtpd_max_clients);
		/* Best effort: a fresh socket takes a short line at once. */
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0)
			msg_debug("send: %s", strerror(errno));
		close(fd);
		return;
	}
	smtpd_session_create(fd, l, loop);
}

/* Open tmp/ files go; commits already running finish (their clients get
 * the DATA reply, qmgr its notice) before the pool is gone. */
static void
smtpd_shutdown(void)
{
	smtpd_session_close_all();
	commit_pool_free(&smtpd_commit_pool);
	cleanup_notify_shutdown();
	free(smtpd_incoming_dir);
	smtpd_incoming_dir = NULL;
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "smtpd",
	    .mode = SERVER_MULTI,
	    .pre_drop = smtpd_pre_drop,
	    .init = smtpd_init,
	    .accept = smtpd_accept,
	    .shutdown = smtpd_shutdown,
	};

	server_main(argc, argv, &ops);
}
