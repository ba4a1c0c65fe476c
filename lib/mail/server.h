/* SPDX-License-Identifier: MIT */
/*
 * The server skeleton every daemon runs in (Postfix's single_server /
 * multi_server idea). master starts a daemon as
 *
 *   DAEMON -c CONFIG_DIR -n SERVICE [-u | -U USER] [-r | -R DIR] [-v]
 *          [-o name=value]... [args]
 *
 * with TERN_LISTEN_FDS=N in the environment, fd 3 the read end of a pipe
 * whose write end master holds (EOF = master is gone), and its listening
 * sockets on fds 4 .. 4+N-1. -u: drop to mail_owner; -U USER: drop to
 * USER instead (the service's own user, services.conf); either way to
 * the user's primary group alone, and never to a user with uid 0; -r:
 * chroot to queue_directory; -R DIR: chroot to DIR, which must be a
 * root-owned directory that group and others cannot write (not a
 * symlink); -v: more logging. Inside a chroot, the parameter that names
 * the directory (queue_directory for -r; queue_directory or
 * login_directory when DIR is its value) becomes "", so paths built as
 * "$login_directory/spawn" resolve to "/spawn". Not started by root, the
 * daemon stays who it is. server_main loads the config, opens
 * logging, calls ops->pre_drop as root, chroots and drops privileges,
 * calls ops->init, then serves until SIGTERM or the master pipe closes,
 * calls ops->shutdown and exits 0.
 *
 * Process limits ($max_use, $max_idle, usually set per service with -o):
 * a process that has taken $max_use connections takes no more and exits
 * 0 once they are all done; one that has served a connection and has
 * none open for $max_idle exits 0. master restarts a process that exits
 * 0 at once, without a warning. SINGLE daemons are counted by the
 * skeleton (one connection per serve()); MULTI daemons must call
 * server_conn_done() when a connection they accepted ends.
 */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include "base/buf.h"
#include "base/event.h"
#include "base/mem.h"
#include "mail/attr.h"

#define SERVER_LIFELINE_FD 3
#define SERVER_LISTEN_FD0  4

enum server_mode {
	/* Many connections at once, each driven from the event loop. */
	SERVER_MULTI,
	/* One connection at a time, served by a blocking call. */
	SERVER_SINGLE,
};

struct server_listener {
	int fd;
	int is_inet;
};

struct server_ops {
	const char *name;	/* program name in logs, e.g. "smtpd" */
	enum server_mode mode;
	/*
	 * Optional: runs as root after config load, before chroot/drop.
	 * argc/argv are the arguments after the options (argv[argc] is NULL).
	 */
	void (*pre_drop)(int argc, char **argv);
	/* Optional: runs after the drop; the loop exists in both modes. */
	void (*init)(struct event_loop *loop);
	/* MULTI: a new connection (non-blocking, close-on-exec). */
	void (*accept)(int fd, const struct server_listener *l,
	    struct event_loop *loop);
	/* SINGLE: serve fd until done (blocking); the skeleton closes it. */
	void (*serve)(int fd, const struct server_listener *l);
	/* Optional: before exit. */
	void (*shutdown)(void);
	/*
	 * Optional: -t checks the configuration (config_load, then this)
	 * and exits 0, or 1 through msg_fatal with the reason on stderr.
	 * Runs as the caller (tern check: root), like pre_drop.
	 */
	void (*check)(void);
};

/* Never returns. argc/argv as given to main. */
MTA_NORETURN void server_main(int argc, char **argv,
    const struct server_ops *ops);
/* The daemon's loop (valid after init). */
struct event_loop *server_loop(void);
/* The service name from -n. */
const char *server_service_name(void);
/*
 * SINGLE mode, inside serve(): while held (hold = 1) SIGTERM and SIGINT
 * wait, so the request in hand is finished and answered; releasing
 * (hold = 0) lets a pending one end the process at once.
 */
void server_hold_signals(int hold);
/*
 * MULTI mode: pause = 1 stops taking new connections (the process is
 * full, so its siblings in the service, or the listen queue, get them);
 * pause = 0 takes them again.
 */
void server_accept_pause(int pause);
/*
 * MULTI mode: a connection that accept() was given has ended (closed,
 * or handed on). Drives $max_use and $max_idle; a daemon that never calls
 * it is never retired by them.
 */
void server_conn_done(void);

/*
 * SINGLE mode, the loop of a delivery agent: reads requests from fd
 * (attr frames, within ipc_timeout each), calls handle(req, reply) with
 * SIGTERM held, so a stop never falls between a delivery and its reply
 * (the queue manager would send the message again), and writes the
 * reply. handle returns 0, or -1 for a request so bad that the
 * connection ends. idle (may be NULL) runs before each wait for a
 * request: it may wait itself (an agent with a session to keep alive)
 * and returns -1 to end. Returns at EOF or on any error.
 */
void server_serve_requests(int fd,
    int (*handle)(const struct attr_list *req, struct buf *reply),
    int (*idle)(int fd));

#endif
