/* SPDX-License-Identifier: MIT */
/*
 * The server skeleton shared by every daemon that master starts (Postfix's
 * single_server / multi_server): option parsing, configuration, logging,
 * the listening sockets handed over by master, chroot and privilege drop,
 * and an event loop that ends on SIGTERM or when master goes away (EOF on
 * the lifeline pipe at fd 3). A daemon's main() only fills struct
 * server_ops and calls server_main(). No RFCs: this is process plumbing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/log.h"
#include "base/priv.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/server.h"

/* Same cap master uses when it passes listeners; far above real configs. */
#define SERVER_LISTEN_MAX      64
/* Connections taken per wakeup, so one busy listener cannot starve others. */
#define SERVER_ACCEPT_BURST    64
/* Pause before accepting again after running out of descriptors. */
#define SERVER_EMFILE_PAUSE_MS 1000
#define SERVER_MS_PER_SEC      1000

struct server_listen_slot {
	struct server_listener l;
	struct event_fd *ev;
	struct event_timer *pause;
};

static const struct server_ops *server_ops;
static struct event_loop *server_ev_loop;
static const char *server_name;
static struct server_listen_slot *server_slots;
static int server_nslots;
/* MULTI: the daemon is full; its siblings take new connections. */
static int server_paused;
/* $max_use and $max_idle: connections taken, open, and the idle timer. */
static unsigned long long server_used;
static int server_open;
static int server_retiring;
static struct event_timer *server_idle_timer;

struct event_loop *
server_loop(void)
{
	return server_ev_loop;
}

const char *
server_service_name(void)
{
	return server_name;
}

static void
server_stop_signal(int signo, void *ctx)
{
	(void)ctx;
	msg_debug("stopping on signal %d", signo);
	event_loop_stop(server_ev_loop);
}

/* The lifeline only becomes readable at EOF: master has exited. */
static void
server_lifeline(struct event_fd *ev, int fd, int events, void *ctx)
{
	(void)fd;
	(void)events;
	(void)ctx;
	msg_debug("master has gone away, stopping");
	event_fd_del(&ev);
	event_loop_stop(server_ev_loop);
}

static int server_accepting(void);

static void
server_resume(struct event_timer *t, void *ctx)
{
	struct server_listen_slot *s = ctx;

	event_timer_del(&t);
	s->pause = NULL;
	event_fd_set(s->ev, server_accepting() ? EVENT_READ : 0);
}

/* Listening on or not: neither paused by the daemon nor used up. */
static int
server_accepting(void)
{
	return !server_paused && !server_retiring;
}

static void
server_listen_update(void)
{
	int i;

	for (i = 0; i < server_nslots; i++)
		if (server_slots[i].ev != NULL && server_slots[i].pause == NULL)
			event_fd_set(
			    server_slots[i].ev, server_accepting() ? EVENT_READ : 0);
}

static void
server_idle_expired(struct event_timer *t, void *ctx)
{
	(void)ctx;
	event_timer_del(&t);
	server_idle_timer = NULL;
	msg_debug("idle for %lld s after serving: exiting", var_max_idle);
	event_loop_stop(server_ev_loop);
}

/* A connection begins: counted against $max_use, the idle timer stops. */
static void
server_conn_begin(void)
{
	event_timer_del(&server_idle_timer);
	server_open++;
	if (var_max_use > 0 && ++server_used >= (unsigned long long)var_max_use &&
	    !server_retiring) {
		/* The rest go to siblings, or to the process master starts
		 * when this one exits. */
		msg_debug("served max_use=%lld connections: retiring",
		    var_max_use);
		server_retiring = 1;
		server_listen_update();
	}
}

void
server_conn_done(void)
{
	if (server_open > 0)
		server_open--;
	if (server_open > 0 || server_ev_loop == NULL)
		return;
	if (server_retiring)
		event_loop_stop(server_ev_loop);
	else if (var_max_idle > 0 && server_idle_timer == NULL)
		server_idle_timer = event_timer_add(server_ev_loop,
		    (uint64_t)var_max_idle * SERVER_MS_PER_SEC,
		    server_idle_expired, NULL);
}

void
server_accept_pause(int pause)
{
	if (server_paused == pause)
		return;
	server_paused = pause;
	msg_debug("%s new connections", pause ? "pausing" : "resuming");
	server_listen_update();
}

/* Returns the new fd, or -1 when nothing (more) is to be accepted now. */
static int
server_accept_one(struct server_listen_slot *s)
{
	int fd;

	for (;;) {
		fd = accept4(s->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EAGAIN:
			return -1;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Level-triggered: without a pause we would spin. */
			msg_warn("accept: %m; pausing for %d ms",
			    SERVER_EMFILE_PAUSE_MS);
			event_fd_set(s->ev, 0);
			if (s->pause == NULL)
				s->pause = event_timer_add(server_ev_loop,
				    SERVER_EMFILE_PAUSE_MS, server_resume, s);
			return -1;
		default:
			msg_warn("accept: %m");
			return -1;
		}
	}
}

/*
 * SINGLE services block inside serve(); while they do, SIGTERM must still
 * end the process (Postfix single_server behaviour), so the signals the
 * loop normally takes through signalfd are unblocked for the duration.
 */
static void
server_stop_signals_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(how, &set, NULL);
}

void
server_hold_signals(int hold)
{
	server_stop_signals_mask(hold ? SIG_BLOCK : SIG_UNBLOCK);
}

/* 1 once master has exited: the lifeline is at end of file. */
static int
server_master_gone(void)
{
	struct pollfd p = {.fd = SERVER_LIFELINE_FD, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

static void
server_readable(struct event_fd *ev, int lfd, int events, void *ctx)
{
	struct server_listen_slot *s = ctx;
	int fd, n;

	(void)ev;
	(void)lfd;
	(void)events;
	if (server_ops->mode == SERVER_MULTI) {
		/* accept() may pause us (full): take no more then. */
		for (n = 0; n < SERVER_ACCEPT_BURST && server_accepting();
		     n++) {
			if ((fd = server_accept_one(s)) < 0)
				return;
			server_conn_begin();
			server_ops->accept(fd, &s->l, server_ev_loop);
		}
		return;
	}
	/* Master may have died before the death signal was armed. */
	if (server_master_gone()) {
		event_loop_stop(server_ev_loop);
		return;
	}
	if (server_retiring || (fd = server_accept_one(s)) < 0)
		return;
	if (file_set_nonblock(fd, 0) < 0)
		msg_fatal("fcntl: %m");
	server_conn_begin();
	server_stop_signals_mask(SIG_UNBLOCK);
	server_ops->serve(fd, &s->l);
	server_stop_signals_mask(SIG_BLOCK);
	close(fd);
	server_conn_done();
}

static int
server_listen_count(void)
{
	const char *env = getenv("TERN_LISTEN_FDS");
	uint64_t n;

	if (env == NULL)
		msg_fatal(
		    "TERN_LISTEN_FDS is not set: %s must be started by master",
		    server_ops->name);
	if (str_to_u64(env, SERVER_LISTEN_MAX, &n) < 0)
		msg_fatal("bad TERN_LISTEN_FDS value '%s'", env);
	return (int)n;
}

static struct server_listen_slot *
server_listeners(int count)
{
	struct server_listen_slot *slots =
	    xcalloc((size_t)count + 1, sizeof(*slots));
	struct sockaddr_storage ss;
	socklen_t len;
	int i;

	for (i = 0; i < count; i++) {
		slots[i].l.fd = SERVER_LISTEN_FD0 + i;
		len = sizeof(ss);
		if (getsockname(slots[i].l.fd, (struct sockaddr *)&ss, &len) <
		    0)
			msg_fatal("listener fd %d: %m", slots[i].l.fd);
		slots[i].l.is_inet =
		    ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
		if (file_set_nonblock(slots[i].l.fd, 1) < 0 ||
		    file_set_cloexec(slots[i].l.fd, 1) < 0)
			msg_fatal("listener fd %d: fcntl: %m", slots[i].l.fd);
	}
	return slots;
}

static char server_chroot_root[] = "";

/*
 * -R DIR: the directory is opened without following a symlink and
 * checked by descriptor (root's, not writable by group or others: no
 * one but root may place anything in a root process's new "/"), then
 * entered by that descriptor, so what was checked is what is used.
 */
static void
server_chroot_dir(const char *dir)
{
	struct stat st;
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
	    0)
		msg_fatal("chroot directory %s: %m", dir);
	if (fstat(fd, &st) < 0)
		msg_fatal("chroot directory %s: fstat: %m", dir);
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		msg_fatal("chroot directory %s must belong to root and not be "
		          "writable by group or others (owner uid %ld, mode "
		          "%04o)",
		    dir, (long)st.st_uid, (unsigned)(st.st_mode & 07777));
	if (fchdir(fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		msg_fatal("chroot %s: %m", dir);
	close(fd);
	/* The parameter that names the new root now means "/". */
	if (strcmp(dir, var_login_directory) == 0)
		var_login_directory = server_chroot_root;
	if (strcmp(dir, var_queue_directory) == 0)
		var_queue_directory = server_chroot_root;
}

/*
 * Looks the user up before any chroot: the passwd file is outside it.
 * user: whom to become (-u: $mail_owner, -U: the named one), or NULL to
 * stay who we are. A service that is meant to be unprivileged must never
 * end up as uid 0 through a user entry that maps to it.
 */
static void
server_drop(const char *user, int chroot_dir, const char *chroot_path)
{
	struct priv_user u = {0};
	int root = geteuid() == 0;

	if (user != NULL && root && priv_lookup_user(user, &u) < 0)
		msg_fatal("%s user '%s' does not exist",
		    user == var_mail_owner ? "mail_owner" : "service", user);
	if (user != NULL && root && u.uid == 0)
		msg_fatal(
		    "user '%s' has uid 0: not dropping privileges to it", user);
	if (chroot_path != NULL) {
		if (root)
			server_chroot_dir(chroot_path);
		else
			msg_debug("not root: ignoring chroot to %s", chroot_path);
	} else if (chroot_dir) {
		if (root) {
			priv_chroot(var_queue_directory);
			/* Inside, the queue is "/": queue_path() gives
			 * "/incoming/ID" and private/ sockets resolve. */
			var_queue_directory = server_chroot_root;
		} else
			msg_debug("not root: ignoring chroot to %s",
			    var_queue_directory);
	}
	if (user != NULL && root) {
		priv_drop(u.uid, u.gid);
		priv_user_free(&u);
	}
}

void
server_main(int argc, char **argv, const struct server_ops *ops)
{
	const char *config_dir = TERN_CONFIG_DIR, *err, *user = NULL;
	const char *chroot_path = NULL;
	struct server_listen_slot *slots;
	int ch, unpriv = 0, chroot_dir = 0, verbose = 0, check = 0, count, i;
	char *eq;

	server_ops = ops;
	server_name = ops->name;
	log_init(ops->name, LOG_DEST_STDERR);
	if ((ops->mode == SERVER_MULTI && ops->accept == NULL) ||
	    (ops->mode == SERVER_SINGLE && ops->serve == NULL))
		msg_panic(
		    "server_main: no connection handler for %s", ops->name);

	/* '+': options end at the first argument that is not one. */
	while ((ch = getopt(argc, argv, "+c:n:o:rR:tuU:v")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'n':
			server_name = optarg;
			break;
		case 'o':
			if ((eq = strchr(optarg, '=')) == NULL)
				msg_fatal("-o %s: expected name=value", optarg);
			*eq = '\0';
			config_override(optarg, eq + 1);
			*eq = '=';
			break;
		case 'r':
			chroot_dir = 1;
			break;
		case 'R':
			if (*optarg != '/')
				msg_fatal("-R %s: not an absolute path", optarg);
			chroot_path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'u':
			unpriv = 1;
			break;
		case 'U':
			user = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			msg_fatal("usage: %s [-c config_dir] [-n service] "
			          "[-u | -U user] [-r | -R dir] [-t] [-v] "
			          "[-o name=value]... "
			          "[args]",
			    ops->name);
		}
	}
	if (config_load(config_dir, &err) < 0)
		msg_fatal("%s", err);
	if (check) {
		/* Reasons go to the terminal of whoever asked. */
		if (ops->check != NULL)
			ops->check();
		exit(0);
	}
	/* master already pointed fd 2 at the log file when one is set. */
	log_init(ops->name,
	    *var_maillog_file == '\0' ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	if (verbose < var_debug_level)
		verbose = (int)var_debug_level;
	log_set_verbose(verbose);

	count = server_listen_count();
	slots = server_listeners(count);
	if (fcntl(SERVER_LIFELINE_FD, F_GETFD) < 0)
		msg_fatal("lifeline fd %d is not open: %s must be started by "
		          "master",
		    SERVER_LIFELINE_FD, ops->name);
	file_set_cloexec(SERVER_LIFELINE_FD, 1);
	signal(SIGPIPE, SIG_IGN);

	if (ops->pre_drop != NULL)
		ops->pre_drop(argc - optind, argv + optind);
	/* -U names the service's own user; -u means $mail_owner. */
	if (user == NULL && unpriv)
		user = var_mail_owner;
	server_drop(user, chroot_dir, chroot_path);

	if ((server_ev_loop = event_loop_create()) == NULL)
		msg_fatal("cannot create the event loop: %m");
	if (event_signal_add(
	        server_ev_loop, SIGTERM, server_stop_signal, NULL) < 0 ||
	    event_signal_add(server_ev_loop, SIGINT, server_stop_signal, NULL) <
	        0)
		msg_fatal("signalfd: %m");
	/*
	 * A SINGLE daemon blocked in serve() does not watch the lifeline, so
	 * the kernel also sends SIGTERM when master dies (unblocked there, it
	 * ends the process; elsewhere it stops the loop like the lifeline).
	 * After the drop, which would clear it, and once SIGTERM is taken.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		msg_warn("prctl PR_SET_PDEATHSIG: %m");
	event_fd_add(server_ev_loop, SERVER_LIFELINE_FD, EVENT_READ,
	    server_lifeline, NULL);
	if (ops->init != NULL)
		ops->init(server_ev_loop);
	server_slots = slots;
	server_nslots = count;
	for (i = 0; i < count; i++)
		slots[i].ev = event_fd_add(server_ev_loop, slots[i].l.fd,
		    server_accepting() ? EVENT_READ : 0, server_readable,
		    &slots[i]);
	msg_debug("service %s: %d listener(s), ready", server_name, count);

	if (event_loop_run(server_ev_loop) < 0)
		msg_fatal("event loop: %m");
	if (ops->shutdown != NULL)
		ops->shutdown();
	event_timer_del(&server_idle_timer);
	for (i = 0; i < count; i++) {
		event_fd_del(&slots[i].ev);
		event_timer_del(&slots[i].pause);
	}
	event_loop_free(&server_ev_loop);
	server_slots = NULL;
	server_nslots = 0;
	free(slots);
	exit(0);
}

void
server_serve_requests(int fd,
    int (*handle)(const struct attr_list *req, struct buf *reply),
    int (*idle)(int fd))
{
	int timeout_ms = (int)(var_ipc_timeout * SERVER_MS_PER_SEC);
	struct attr_list req;
	struct stream st;
	struct buf reply;
	enum stream_result r;
	const char *err = NULL;

	stream_init(&st, fd);
	attr_list_init(&req);
	buf_init(&reply, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	for (;;) {
		if (idle != NULL && stream_buffered(&st) == 0 && idle(fd) < 0)
			break;
		r = attr_read(&st, &req, timeout_ms, &err);
		if (r == STREAM_EOF)
			break;
		if (r != STREAM_OK) {
			msg_warn("reading request: %s", err);
			break;
		}
		server_hold_signals(1);
		if (handle(&req, &reply) < 0) {
			server_hold_signals(0);
			break;
		}
		r = attr_write(&st, &reply, timeout_ms);
		server_hold_signals(0);
		if (r != STREAM_OK) {
			msg_warn("cannot send the reply: %m");
			break;
		}
	}
	buf_free(&reply);
	attr_list_free(&req);
	stream_free(&st);
}
