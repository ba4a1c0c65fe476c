/* SPDX-License-Identifier: MIT */
/*
 * spawn: the root side of the POP3 (and later IMAP) login split
 * (lib/mail/login_proto.h). The login processes, unprivileged and
 * chrooted, send each finished login here over $login_directory/spawn
 * with the client's descriptor; spawn asks the auth service whether the
 * credentials are right (as $mail_owner, never following the tern-owned
 * path to auth's socket as root), finds the mailbox and its owner
 * (lib/mail/mailbox_locate.h, the rules local delivery writes by),
 * enforces the session limits per user and per client address and the
 * RFC 2449 LOGIN-DELAY, and forks and execs pop3d or imapd (by the
 * request's service) as the mailbox owner with the client on fd 0. It tracks its sessions until they exit.
 *
 * One event-driven process (SERVER_MULTI): requests, auth questions and
 * session exits interleave in one loop; every request has a deadline and
 * a size cap, and requests, sessions and remembered logins are capped.
 * When $pop3_delete_after is set, spawn also starts the retention job
 * (pop3d -E) as $vmail_user once an hour.
 *
 * RFCs: 1939 (APOP, handed to auth), 2449 (LOGIN-DELAY).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/auth_proto.h"
#include "mail/login_proto.h"
#include "mail/mailbox_locate.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/userdb.h"

/* Logins being handled at once; beyond, the listen queue waits. */
#define SPAWN_REQUESTS_MAX    1000
/* Sessions tracked at once (every service): beyond, logins get "limit". */
#define SPAWN_SESSIONS_MAX    10000
/* Users whose last login time is kept for $pop3_login_delay. */
#define SPAWN_LOGINS_MAX      10000
/* The whole request must arrive within this (login_proto.h). */
#define SPAWN_REQUEST_MS      10000
/* Writing the small reply; login is waiting for it. */
#define SPAWN_REPLY_MS        10000
/* Room to receive (and close) descriptors beyond the one allowed. */
#define SPAWN_FDS_MAX         8
#define SPAWN_MS_PER_SEC      1000
/* The retention job: first a minute after start, then every hour. */
#define SPAWN_EXPIRE_FIRST_MS (60 * SPAWN_MS_PER_SEC)
#define SPAWN_EXPIRE_EVERY_MS (3600 * SPAWN_MS_PER_SEC)
#define SPAWN_LOG_FIELD_MAX   100
#define SPAWN_ID_SIZE         24
#define SPAWN_PORT_MAX        65535
#define SPAWN_EXEC_FAILED     127
#define SPAWN_SESSION_PROGRAM "pop3d"
#define SPAWN_IMAP_PROGRAM    "imapd"
/* An IMAP tag is short (imap_parser.h); a request with a longer one is
 * no correct login process's. */
#define SPAWN_TAG_MAX         128
#define SPAWN_DEV_NULL        "/dev/null"

enum spawn_state {
	SPAWN_STATE_READ,  /* collecting the request and its descriptor */
	SPAWN_STATE_AUTH,  /* auth (or a failure delay) has it */
	SPAWN_STATE_REPLY, /* writing the reply */
};

struct spawn_req {
	enum spawn_state state;
	int fd;        /* the connection from login */
	int client_fd; /* the descriptor it passed; -1 until then */
	struct event_fd *ev;
	struct event_timer *timer;
	char *in; /* LOGIN_REQUEST_MAX bytes */
	size_t in_len;
	struct buf out;
	size_t out_off;
	struct attr_list attrs;
	/* Checked request fields, pointing into attrs. */
	const char *service, *mech, *user, *addr, *laddr, *port, *lport;
	const char *tag; /* IMAP: the login command's, NULL for POP3 */
	const struct attr *input;
	int tls;
	struct spawn_req *prev, *next;
};

struct spawn_session {
	pid_t pid;
	char *user;
	char *addr;
	char *service;
	char id[SPAWN_ID_SIZE];
	uint64_t start_ms;
	struct spawn_session *next;
};

struct spawn_login {
	char *key; /* service and user */
	uint64_t at_ms;
};

static struct event_loop *spawn_loop;
static struct attr_client *spawn_auth;
static struct spawn_req *spawn_reqs;
static int spawn_nreqs;
static struct spawn_session *spawn_sessions;
static int spawn_nsessions;
static struct spawn_login *spawn_logins;
static int spawn_nlogins;
static unsigned long long spawn_serial;
static struct event_timer *spawn_expire_timer;
static pid_t spawn_expire_pid;

static void spawn_req_free(struct spawn_req *r);

/* ------------------------------------------------------------ replies */

static void
spawn_write(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct spawn_req *r = ctx;
	ssize_t n;

	(void)ev;
	(void)fd;
	(void)events;
	while (r->out_off < r->out.len) {
		n = send(r->fd, r->out.data + r->out_off,
		    r->out.len - r->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			event_fd_set(r->ev, EVENT_WRITE);
			return;
		}
		if (n <= 0) {
			msg_debug("reply to login: %m");
			break;
		}
		r->out_off += (size_t)n;
	}
	spawn_req_free(r);
}

static void
spawn_timeout(struct event_timer *t, void *ctx)
{
	struct spawn_req *r = ctx;

	event_timer_del(&t);
	r->timer = NULL;
	msg_warn("%s from login within %d s: closing",
	    r->state == SPAWN_STATE_READ ? "no complete request"
	                                 : "reply not taken",
	    (r->state == SPAWN_STATE_READ ? SPAWN_REQUEST_MS : SPAWN_REPLY_MS) /
	        SPAWN_MS_PER_SEC);
	spawn_req_free(r);
}

/* Sends the reply and ends the request (text: for login's log). */
static void
spawn_reply(
    struct spawn_req *r, const char *status, const char *user, const char *text)
{
	attr_frame_begin(&r->out);
	if (attr_put_str(&r->out, LOGIN_ATTR_STATUS, status) < 0 ||
	    (user != NULL && attr_put_str(&r->out, LOGIN_ATTR_USER, user) < 0) ||
	    attr_put_str(&r->out, LOGIN_ATTR_TEXT, text) < 0 ||
	    attr_frame_end(&r->out) < 0)
		msg_panic("spawn: reply outgrew its frame");
	r->state = SPAWN_STATE_REPLY;
	event_timer_del(&r->timer);
	r->timer = event_timer_add(spawn_loop, SPAWN_REPLY_MS, spawn_timeout, r);
	spawn_write(r->ev, r->fd, EVENT_WRITE, r);
}

static const char *
spawn_method(const struct spawn_req *r)
{
	return strcmp(r->mech, LOGIN_MECH_APOP) == 0 ? "APOP" : "PLAIN";
}

static const char *
spawn_log_user(const struct spawn_req *r)
{
	return log_sanitize(r->user, SPAWN_LOG_FIELD_MAX);
}

static const char *
spawn_log_addr(const char *addr)
{
	return *addr != '\0' ? log_sanitize(addr, SPAWN_LOG_FIELD_MAX) : "none";
}

/* -------------------------------------------------------- bookkeeping */

static void
spawn_req_free(struct spawn_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		spawn_reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	if (spawn_auth != NULL)
		attr_client_cancel(spawn_auth, r);
	event_fd_del(&r->ev);
	event_timer_del(&r->timer);
	close(r->fd);
	if (r->client_fd >= 0)
		close(r->client_fd);
	attr_list_free(&r->attrs);
	if (r->in != NULL)
		explicit_bzero(r->in, LOGIN_REQUEST_MAX);
	free(r->in);
	buf_free(&r->out);
	free(r);
	if (spawn_nreqs-- == SPAWN_REQUESTS_MAX)
		server_accept_pause(0);
	server_conn_done();
}

static int
spawn_count(const char *service, const char *user, const char *addr)
{
	const struct spawn_session *s;
	int n = 0;

	for (s = spawn_sessions; s != NULL; s = s->next)
		if (strcmp(s->service, service) == 0 &&
		    ((user != NULL && strcmp(s->user, user) == 0) ||
		        (addr != NULL && strcmp(s->addr, addr) == 0)))
			n++;
	return n;
}

/* The slot of key's last login, or NULL. */
static struct spawn_login *
spawn_login_find(const char *key)
{
	int i;

	for (i = 0; i < spawn_nlogins; i++)
		if (strcmp(spawn_logins[i].key, key) == 0)
			return &spawn_logins[i];
	return NULL;
}

/*
 * Remembers key's login at now. Full: entries older than the delay go
 * first (they no longer matter), else the oldest one.
 */
static void
spawn_login_note(const char *key, uint64_t now)
{
	uint64_t delay_ms = (uint64_t)var_pop3_login_delay * SPAWN_MS_PER_SEC;
	struct spawn_login *l = spawn_login_find(key);
	int i, j, oldest = 0;

	if (l != NULL) {
		l->at_ms = now;
		return;
	}
	for (i = j = 0; i < spawn_nlogins; i++) {
		if (now - spawn_logins[i].at_ms >= delay_ms) {
			free(spawn_logins[i].key);
			continue;
		}
		spawn_logins[j++] = spawn_logins[i];
	}
	spawn_nlogins = j;
	if (spawn_nlogins == SPAWN_LOGINS_MAX) {
		for (i = 1; i < spawn_nlogins; i++)
			if (spawn_logins[i].at_ms < spawn_logins[oldest].at_ms)
				oldest = i;
		free(spawn_logins[oldest].key);
		spawn_logins[oldest] = spawn_logins[--spawn_nlogins];
	}
	spawn_logins[spawn_nlogins].key = xstrdup(key);
	spawn_logins[spawn_nlogins++].at_ms = now;
}

/* ---------------------------------------------------------- sessions */

/*
 * The session's environment: $import_environment (as master gives its
 * daemons) and the TERN_SESSION_* variables of login_proto.h.
 */
static char **
spawn_env(const struct spawn_req *r, const char *user,
    const struct mailbox_location *loc, const char *id)
{
	char **names = config_list(var_import_environment), **envp;
	const char *value;
	struct buf b64;
	size_t count = 0, i, j = 0;

	while (names[count] != NULL)
		count++;
	envp = xcalloc(count + 11, sizeof(*envp));
	for (i = 0; i < count; i++) {
		if (strchr(names[i], '=') != NULL)
			envp[j++] = xstrdup(names[i]);
		else if ((value = getenv(names[i])) != NULL)
			envp[j++] = xasprintf("%s=%s", names[i], value);
	}
	config_list_free(names);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_USER, user);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_MAILDIR, loc->maildir);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_CLIENT, r->addr);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_CLIENT_PORT, r->port);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_LOCAL, r->laddr);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_LOCAL_PORT, r->lport);
	envp[j++] = xasprintf("%s=%d", LOGIN_ENV_TLS, r->tls);
	envp[j++] = xasprintf("%s=%s", LOGIN_ENV_ID, id);
	if (r->tag != NULL)
		envp[j++] = xasprintf("%s=%s", LOGIN_ENV_TAG, r->tag);
	if (r->input != NULL && r->input->len > 0) {
		buf_init(&b64, BASE64_ENCODED_LEN(LOGIN_INPUT_MAX) + 1);
		if (base64_encode(r->input->value, r->input->len, &b64) < 0)
			msg_panic("spawn: session input outgrew its buffer");
		envp[j++] = xasprintf("%s=%s", LOGIN_ENV_INPUT, buf_cstr(&b64));
		buf_free(&b64);
	}
	return envp;
}

static void
spawn_env_free(char **envp)
{
	size_t i;

	for (i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

/*
 * In a child that is about to exec: no signal disposition or mask of
 * spawn's may reach the session (the skeleton blocks the signals it reads
 * through signalfd and ignores SIGPIPE).
 */
static void
spawn_child_signals(void)
{
	sigset_t none;
	int sig;

	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * In the child: become uid/gid for good (with owner's groups for a
 * system user), and prove that root cannot come back. Exits on failure.
 */
static void
spawn_child_identity(const char *owner, uid_t uid, gid_t gid, int system_user)
{
	if (uid == 0)
		msg_panic("spawn: a session as uid 0");
	if ((system_user ? initgroups(owner, gid) : setgroups(1, &gid)) < 0 ||
	    setgid(gid) < 0 || setuid(uid) < 0) {
		msg_error("cannot become %s (uid %ld): %m", owner, (long)uid);
		_exit(SPAWN_EXEC_FAILED);
	}
	if (setuid(0) != -1 || seteuid(0) != -1 || geteuid() != uid ||
	    getuid() != uid || getegid() != gid || getgid() != gid) {
		msg_error("privileges not dropped to %s (uid %ld)", owner,
		    (long)uid);
		_exit(SPAWN_EXEC_FAILED);
	}
}

/* In the child: fd 0 the client (blocking), 1 /dev/null, 2 kept. */
static void
spawn_child_fds(int client_fd)
{
	int null_fd, flags;

	if ((null_fd = open(SPAWN_DEV_NULL, O_WRONLY)) < 0 ||
	    dup2(client_fd, STDIN_FILENO) < 0 ||
	    dup2(null_fd, STDOUT_FILENO) < 0) {
		msg_error("session descriptors: %m");
		_exit(SPAWN_EXEC_FAILED);
	}
	if ((flags = fcntl(STDIN_FILENO, F_GETFL)) < 0 ||
	    fcntl(STDIN_FILENO, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		msg_error("session descriptor: fcntl: %m");
		_exit(SPAWN_EXEC_FAILED);
	}
	/* dup2 clears close-on-exec; everything else of spawn's goes. */
	if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0) {
		msg_error("close_range: %m");
		_exit(SPAWN_EXEC_FAILED);
	}
}

/* The session program of service (pop3d also runs the retention job). */
static const char *
spawn_program_name(const char *service)
{
	return strcmp(service, AUTH_PROTO_IMAP) == 0 ? SPAWN_IMAP_PROGRAM
						     : SPAWN_SESSION_PROGRAM;
}

static char *
spawn_program(const char *service)
{
	return xasprintf("%s/%s", var_daemon_directory,
	    spawn_program_name(service));
}

/* Forks the session; its pid, or -1 (logged). */
static pid_t
spawn_session_start(const struct spawn_req *r, const char *user,
    const struct mailbox_location *loc, const char *id)
{
	char *prog = spawn_program(r->service),
	     **envp = spawn_env(r, user, loc, id);
	char *argv[] = {(char *)spawn_program_name(r->service), "-c",
	    var_config_directory,
	    var_debug_level > 0 ? "-v" : NULL, NULL};
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) < 0) {
		msg_error("fork: %m");
	} else if (pid == 0) {
		spawn_child_signals();
		spawn_child_identity(loc->owner, loc->uid, loc->gid,
		    !loc->is_virtual);
		spawn_child_fds(r->client_fd);
		if (chdir("/") < 0)
			_exit(SPAWN_EXEC_FAILED);
		execve(prog, argv, envp);
		msg_error("session %s: cannot run %s: %m", id, prog);
		_exit(SPAWN_EXEC_FAILED);
	}
	spawn_env_free(envp);
	free(prog);
	return pid;
}

static void
spawn_session_add(pid_t pid, const char *service, const char *user,
    const char *addr, const char *id)
{
	struct spawn_session *s = xcalloc(1, sizeof(*s));

	s->pid = pid;
	s->service = xstrdup(service);
	s->user = xstrdup(user);
	s->addr = xstrdup(addr);
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->start_ms = event_now_ms(spawn_loop);
	s->next = spawn_sessions;
	spawn_sessions = s;
	spawn_nsessions++;
}

static void
spawn_session_free(struct spawn_session *s)
{
	free(s->service);
	free(s->user);
	free(s->addr);
	free(s);
}

static void
spawn_status_text(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, size, "status 0x%x", (unsigned)status);
}

static void
spawn_reaped(pid_t pid, int status)
{
	struct spawn_session **pp, *s;
	char text[64];

	spawn_status_text(status, text, sizeof(text));
	if (pid == spawn_expire_pid) {
		spawn_expire_pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			msg_info("retention job done");
		else
			msg_warn("retention job: %s", text);
		return;
	}
	for (pp = &spawn_sessions; (s = *pp) != NULL; pp = &s->next) {
		if (s->pid != pid)
			continue;
		*pp = s->next;
		spawn_nsessions--;
		msg_info("session for %s from %s ended after %llu s (%s), "
		         "session=<%s>",
		    s->user, spawn_log_addr(s->addr),
		    (unsigned long long)((event_now_ms(spawn_loop) -
		                             s->start_ms) /
		                         SPAWN_MS_PER_SEC),
		    text, s->id);
		spawn_session_free(s);
		return;
	}
}

static void
spawn_sigchld(int signo, void *ctx)
{
	int status;
	pid_t pid;

	(void)signo;
	(void)ctx;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		spawn_reaped(pid, status);
}

/* ------------------------------------------------- after the login */

/* The credentials are right: limits, the mailbox, the session. */
static void
spawn_login_ok(struct spawn_req *r, const char *user)
{
	uint64_t now = event_now_ms(spawn_loop);
	uint64_t delay_ms = (uint64_t)var_pop3_login_delay * SPAWN_MS_PER_SEC;
	struct mailbox_location loc;
	struct spawn_login *last;
	char id[SPAWN_ID_SIZE], *key;
	const char *err;
	int n, found;
	pid_t pid;

	if (spawn_nsessions >= SPAWN_SESSIONS_MAX) {
		msg_warn("login refused: user=<%s>, rip=%s: %d sessions "
		         "running",
		    user, spawn_log_addr(r->addr), spawn_nsessions);
		spawn_reply(r, LOGIN_STATUS_LIMIT, NULL, "too many sessions");
		return;
	}
	if ((n = spawn_count(r->service, user, NULL)) >=
	    var_login_max_user_connections) {
		msg_info("login refused: user=<%s>, method=%s, rip=%s: %d "
		         "sessions of the user (login_max_user_connections)",
		    user, spawn_method(r), spawn_log_addr(r->addr), n);
		spawn_reply(r, LOGIN_STATUS_LIMIT, NULL,
		    "too many sessions of this user");
		return;
	}
	if ((n = spawn_count(r->service, NULL, r->addr)) >=
	    var_login_max_ip_connections) {
		msg_info("login refused: user=<%s>, method=%s, rip=%s: %d "
		         "sessions from the address (login_max_ip_connections)",
		    user, spawn_method(r), spawn_log_addr(r->addr), n);
		spawn_reply(r, LOGIN_STATUS_LIMIT, NULL,
		    "too many sessions from this address");
		return;
	}
	key = xasprintf("%s %s", r->service, user);
	if (delay_ms > 0 && strcmp(r->service, AUTH_PROTO_POP3) == 0 &&
	    (last = spawn_login_find(key)) != NULL &&
	    now - last->at_ms < delay_ms) {
		msg_info("login refused: user=<%s>, method=%s, rip=%s: last "
		         "login %llu s ago (pop3_login_delay)",
		    user, spawn_method(r), spawn_log_addr(r->addr),
		    (unsigned long long)((now - last->at_ms) /
		                         SPAWN_MS_PER_SEC));
		spawn_reply(r, LOGIN_STATUS_DELAY, NULL, "login delay");
		free(key);
		return;
	}
	if ((found = mailbox_locate(user, &loc, &err)) <= 0) {
		msg_warn("login failed: user=<%s>, method=%s, rip=%s: no "
		         "mailbox: %s",
		    user, spawn_method(r), spawn_log_addr(r->addr), err);
		spawn_reply(r, LOGIN_STATUS_TEMPFAIL, NULL, "no mailbox");
		free(key);
		return;
	}
	snprintf(id, sizeof(id), "%llx.%llx",
	    (unsigned long long)getpid(), ++spawn_serial);
	if ((pid = spawn_session_start(r, user, &loc, id)) < 0) {
		spawn_reply(r, LOGIN_STATUS_TEMPFAIL, NULL, "cannot fork");
	} else {
		spawn_session_add(pid, r->service, user, r->addr, id);
		if (delay_ms > 0)
			spawn_login_note(key, now);
		msg_info("login: user=<%s>, method=%s, rip=%s, lip=%s, "
		         "mpid=%ld, uid=%ld%s, session=<%s>",
		    user, spawn_method(r), spawn_log_addr(r->addr),
		    spawn_log_addr(r->laddr), (long)pid, (long)loc.uid,
		    r->tls ? ", TLS" : "", id);
		spawn_reply(r, LOGIN_STATUS_OK, user, "logged in");
	}
	free(key);
	mailbox_location_free(&loc);
}

static void
spawn_auth_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct spawn_req *r = ctx;
	const char *status, *user;

	if (reply == NULL) {
		msg_warn("login failed: user=<%s>, rip=%s: auth service: %s",
		    spawn_log_user(r), spawn_log_addr(r->addr), error);
		spawn_reply(r, LOGIN_STATUS_TEMPFAIL, NULL,
		    "auth service unavailable");
		return;
	}
	status = attr_get(reply, AUTH_ATTR_STATUS);
	user = attr_get(reply, AUTH_ATTR_USER);
	if (status != NULL && strcmp(status, AUTH_STATUS_OK) == 0 &&
	    user != NULL && *user != '\0') {
		spawn_login_ok(r, user);
		return;
	}
	if (status != NULL && strcmp(status, AUTH_STATUS_FAIL) == 0) {
		msg_info("login failed: user=<%s>, method=%s, rip=%s: "
		         "authentication failed",
		    spawn_log_user(r), spawn_method(r),
		    spawn_log_addr(r->addr));
		spawn_reply(r, LOGIN_STATUS_FAIL, NULL, "authentication failed");
		return;
	}
	msg_warn("login failed: user=<%s>, rip=%s: auth: %s",
	    spawn_log_user(r), spawn_log_addr(r->addr),
	    log_sanitize(attr_get(reply, AUTH_ATTR_TEXT) != NULL
	                     ? attr_get(reply, AUTH_ATTR_TEXT)
	                     : "no status",
	        SPAWN_LOG_FIELD_MAX));
	spawn_reply(r, LOGIN_STATUS_TEMPFAIL, NULL, "authentication unavailable");
}

static void
spawn_ask_auth(struct spawn_req *r)
{
	int apop = strcmp(r->mech, LOGIN_MECH_APOP) == 0;
	struct buf *f = attr_client_frame(spawn_auth);
	const struct attr *a;
	int bad;

	bad = attr_put_str(f, AUTH_ATTR_REQUEST,
	          apop ? AUTH_REQUEST_APOP : AUTH_REQUEST_AUTH) < 0 ||
	      attr_put_str(f, AUTH_ATTR_SERVICE, r->service) < 0 ||
	      attr_put_str(f, AUTH_ATTR_USER, r->user) < 0 ||
	      attr_put_str(f, AUTH_ATTR_CLIENT, r->addr) < 0;
	if (apop) {
		a = attr_find(&r->attrs, LOGIN_ATTR_APOP_CHALLENGE);
		bad = bad ||
		      attr_put(f, AUTH_ATTR_APOP_CHALLENGE, a->value, a->len) <
		          0;
		a = attr_find(&r->attrs, LOGIN_ATTR_APOP_DIGEST);
		bad = bad ||
		      attr_put(f, AUTH_ATTR_APOP_DIGEST, a->value, a->len) < 0;
	} else {
		a = attr_find(&r->attrs, LOGIN_ATTR_PASSWORD);
		bad = bad || attr_put(f, AUTH_ATTR_PASSWORD, a->value, a->len) < 0;
	}
	if (bad)
		msg_panic("spawn: auth request outgrew its frame");
	r->state = SPAWN_STATE_AUTH;
	attr_client_send(spawn_auth, spawn_auth_reply, r);
	/* The frame held the password: it is on its way, wipe the copy. */
	explicit_bzero(f->data, f->len);
}

/* ------------------------------------------------------- the request */

/* A text value: present, no NUL, at most max bytes (min 1 if needed). */
static const char *
spawn_text(const struct attr_list *l, const char *name, size_t min, size_t max)
{
	const struct attr *a = attr_find(l, name);

	if (a == NULL || a->len < min || a->len > max ||
	    memchr(a->value, '\0', a->len) != NULL)
		return NULL;
	return a->value;
}

/* 1 if s is printable ASCII without a space. */
static int
spawn_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int
spawn_flag(const struct attr_list *l, const char *name, int *out_r)
{
	const char *v = attr_get(l, name);

	if (v == NULL || strcmp(v, "0") == 0)
		*out_r = 0;
	else if (strcmp(v, "1") == 0)
		*out_r = 1;
	else
		return -1;
	return 0;
}

/* "" or a port number. */
static const char *
spawn_port(const struct attr_list *l, const char *name)
{
	const char *v = attr_get(l, name);
	uint64_t port;

	if (v == NULL || *v == '\0')
		return "";
	return str_to_u64(v, SPAWN_PORT_MAX, &port) == 0 ? v : NULL;
}

/*
 * Checks the shape of the request (login_proto.h); -1 with *why_r for a
 * frame that no correct login process sends: it is closed unanswered.
 */
static int
spawn_req_check(struct spawn_req *r, const char **why_r)
{
	const struct attr_list *l = &r->attrs;
	const char *what = attr_get(l, LOGIN_ATTR_REQUEST);
	int secured;

	if (what == NULL || strcmp(what, LOGIN_REQUEST_LOGIN) != 0)
		return *why_r = "not a login request", -1;
	r->service = spawn_text(l, LOGIN_ATTR_SERVICE, 1, SPAWN_LOG_FIELD_MAX);
	if (r->service == NULL || (strcmp(r->service, AUTH_PROTO_POP3) != 0 &&
	                              strcmp(r->service, AUTH_PROTO_IMAP) != 0))
		return *why_r = "unknown service", -1;
	r->mech = spawn_text(l, LOGIN_ATTR_MECH, 1, SPAWN_LOG_FIELD_MAX);
	if (r->mech == NULL || (strcmp(r->mech, LOGIN_MECH_PLAIN) != 0 &&
	                           strcmp(r->mech, LOGIN_MECH_APOP) != 0))
		return *why_r = "unknown mech", -1;
	if (strcmp(r->mech, LOGIN_MECH_APOP) == 0
	        ? attr_find(l, LOGIN_ATTR_APOP_CHALLENGE) == NULL ||
	              attr_find(l, LOGIN_ATTR_APOP_DIGEST) == NULL
	        : attr_find(l, LOGIN_ATTR_PASSWORD) == NULL)
		return *why_r = "credentials missing", -1;
	if ((r->user = attr_get(l, LOGIN_ATTR_USER)) == NULL)
		return *why_r = "user missing", -1;
	if ((r->addr = spawn_text(l, LOGIN_ATTR_CLIENT_ADDR, 0,
	         AUTH_ADDR_MAX)) == NULL)
		return *why_r = "bad client_addr", -1;
	if ((r->laddr = spawn_text(l, LOGIN_ATTR_LOCAL_ADDR, 0,
	         AUTH_ADDR_MAX)) == NULL)
		r->laddr = "";
	if ((r->port = spawn_port(l, LOGIN_ATTR_CLIENT_PORT)) == NULL ||
	    (r->lport = spawn_port(l, LOGIN_ATTR_LOCAL_PORT)) == NULL)
		return *why_r = "bad port", -1;
	if (spawn_flag(l, LOGIN_ATTR_TLS, &r->tls) < 0 ||
	    spawn_flag(l, LOGIN_ATTR_SECURED, &secured) < 0)
		return *why_r = "bad tls or secured flag", -1;
	/* IMAP's session answers the login command: it needs its tag, a
	 * printable one (it goes into the environment). */
	r->tag = NULL;
	if (strcmp(r->service, AUTH_PROTO_IMAP) == 0) {
		r->tag = spawn_text(l, LOGIN_ATTR_TAG, 1, SPAWN_TAG_MAX);
		if (r->tag == NULL || !spawn_printable(r->tag))
			return *why_r = "bad or missing tag", -1;
	}
	r->input = attr_find(l, LOGIN_ATTR_INPUT);
	if (r->input != NULL && r->input->len > LOGIN_INPUT_MAX)
		return *why_r = "input over LOGIN_INPUT_MAX", -1;
	return 0;
}

/*
 * Credentials that auth would call a protocol violation (and close its
 * connection, failing every login in flight) are answered fail here,
 * after auth's first delay, as auth would answer them.
 */
static int
spawn_creds_sane(const struct spawn_req *r)
{
	const struct attr_list *l = &r->attrs;

	if (spawn_text(l, LOGIN_ATTR_USER, 1, USERDB_NAME_MAX) == NULL)
		return 0;
	if (strcmp(r->mech, LOGIN_MECH_APOP) == 0)
		return spawn_text(l, LOGIN_ATTR_APOP_CHALLENGE, 1,
		           AUTH_APOP_CHALLENGE_MAX) != NULL &&
		       spawn_text(l, LOGIN_ATTR_APOP_DIGEST, AUTH_APOP_DIGEST_LEN,
		           AUTH_APOP_DIGEST_LEN) != NULL;
	return spawn_text(l, LOGIN_ATTR_PASSWORD, 1, USERDB_PASSWORD_MAX) !=
	       NULL;
}

static void
spawn_fail_late(struct event_timer *t, void *ctx)
{
	struct spawn_req *r = ctx;

	event_timer_del(&t);
	r->timer = NULL;
	spawn_reply(r, LOGIN_STATUS_FAIL, NULL, "malformed credentials");
}

static void
spawn_req_ready(struct spawn_req *r)
{
	const char *why;

	event_fd_set(r->ev, 0);
	event_timer_del(&r->timer);
	if (spawn_req_check(r, &why) < 0) {
		msg_warn("protocol error from login: %s: closing", why);
		spawn_req_free(r);
		return;
	}
	if (!spawn_creds_sane(r)) {
		msg_info("login failed: user=<%s>, method=%s, rip=%s: "
		         "malformed credentials",
		    log_sanitize_n(attr_find(&r->attrs, LOGIN_ATTR_USER)->value,
		        attr_find(&r->attrs, LOGIN_ATTR_USER)->len,
		        SPAWN_LOG_FIELD_MAX),
		    spawn_method(r), spawn_log_addr(r->addr));
		r->state = SPAWN_STATE_AUTH;
		r->timer = event_timer_add(spawn_loop,
		    (uint64_t)var_auth_failure_delay * SPAWN_MS_PER_SEC,
		    spawn_fail_late, r);
		return;
	}
	spawn_ask_auth(r);
}

/*
 * Takes the descriptors of one recvmsg: exactly one, with the first
 * bytes of the request, is the client; anything else is closed. -1 when
 * the request is to be dropped.
 */
static int
spawn_take_fds(struct spawn_req *r, struct msghdr *msg, int first)
{
	struct cmsghdr *c;
	int *fds, n, i, bad = (msg->msg_flags & MSG_CTRUNC) != 0;

	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		fds = (int *)(void *)CMSG_DATA(c);
		n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < n; i++) {
			if (first && r->client_fd < 0 && !bad && n == 1) {
				r->client_fd = fds[i];
				continue;
			}
			close(fds[i]);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static void
spawn_read(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct spawn_req *r = ctx;
	union {
		char buf[CMSG_SPACE(SPAWN_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov;
	struct msghdr msg;
	const char *err = NULL;
	size_t consumed;
	uint32_t want;
	ssize_t n;
	int got, first;

	(void)ev;
	(void)events;
	if (r->state == SPAWN_STATE_REPLY) {
		spawn_write(ev, fd, events, r);
		return;
	}
	first = r->in_len == 0;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = r->in + r->in_len;
	iov.iov_len = LOGIN_REQUEST_MAX - r->in_len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsg.buf;
	msg.msg_controllen = sizeof(cmsg.buf);
	/* One byte more than room says "oversized" by itself. */
	if (iov.iov_len == 0) {
		msg_warn("request from login over %d bytes: closing",
		    LOGIN_REQUEST_MAX);
		spawn_req_free(r);
		return;
	}
	n = recvmsg(r->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && spawn_take_fds(r, &msg, first) < 0) {
		msg_warn("request from login with more than one descriptor: "
		         "closing");
		spawn_req_free(r);
		return;
	}
	if (n <= 0) {
		if (n < 0)
			msg_warn("reading the request from login: %m");
		else if (r->in_len > 0)
			msg_warn("login closed in the middle of a request");
		spawn_req_free(r);
		return;
	}
	if (r->client_fd < 0) {
		msg_warn("request from login without a descriptor: closing");
		spawn_req_free(r);
		return;
	}
	r->in_len += (size_t)n;
	if (r->in_len >= ATTR_HEADER_LEN) {
		want = ((uint32_t)(unsigned char)r->in[0] << 24) |
		       ((uint32_t)(unsigned char)r->in[1] << 16) |
		       ((uint32_t)(unsigned char)r->in[2] << 8) |
		       (uint32_t)(unsigned char)r->in[3];
		if (want > LOGIN_REQUEST_MAX - ATTR_HEADER_LEN) {
			msg_warn("request from login of %lu bytes, over %d: "
			         "closing",
			    (unsigned long)want, LOGIN_REQUEST_MAX);
			spawn_req_free(r);
			return;
		}
	}
	got = attr_decode_frame(r->in, r->in_len, &consumed, &r->attrs, &err);
	if (got < 0 || (got > 0 && consumed != r->in_len)) {
		msg_warn("bad request from login: %s: closing",
		    got < 0 ? err : "bytes after the frame");
		spawn_req_free(r);
		return;
	}
	if (got > 0)
		spawn_req_ready(r);
}

static void
spawn_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	struct spawn_req *r = xcalloc(1, sizeof(*r));

	(void)l;
	r->fd = fd;
	r->client_fd = -1;
	r->in = xmalloc(LOGIN_REQUEST_MAX);
	buf_init(&r->out, ATTR_HEADER_LEN + LOGIN_REQUEST_MAX);
	attr_list_init(&r->attrs);
	r->ev = event_fd_add(loop, fd, EVENT_READ, spawn_read, r);
	r->timer = event_timer_add(loop, SPAWN_REQUEST_MS, spawn_timeout, r);
	r->next = spawn_reqs;
	if (r->next != NULL)
		r->next->prev = r;
	spawn_reqs = r;
	if (++spawn_nreqs == SPAWN_REQUESTS_MAX)
		server_accept_pause(1);
}

/* ------------------------------------------------- the retention job */

static void spawn_expire_arm(uint64_t ms);

static void
spawn_expire(struct event_timer *t, void *ctx)
{
	char *prog, *argv[6];
	struct priv_user u = {0};
	struct stat st;
	pid_t pid;

	(void)ctx;
	event_timer_del(&t);
	spawn_expire_timer = NULL;
	spawn_expire_arm(SPAWN_EXPIRE_EVERY_MS);
	if (var_pop3_delete_after <= 0 || spawn_expire_pid > 0)
		return;
	if (stat(var_virtual_mailbox_base, &st) < 0 || !S_ISDIR(st.st_mode)) {
		msg_debug("retention job: no %s", var_virtual_mailbox_base);
		return;
	}
	if (priv_lookup_user(var_vmail_user, &u) < 0 || u.uid == 0) {
		msg_warn("retention job: vmail_user %s is unusable",
		    var_vmail_user);
		if (u.name != NULL)
			priv_user_free(&u);
		return;
	}
	prog = spawn_program(AUTH_PROTO_POP3);
	argv[0] = SPAWN_SESSION_PROGRAM;
	argv[1] = "-c";
	argv[2] = var_config_directory;
	argv[3] = "-E";
	argv[4] = var_virtual_mailbox_base;
	argv[5] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		msg_error("retention job: fork: %m");
	} else if (pid == 0) {
		spawn_child_signals();
		spawn_child_identity(u.name, u.uid, u.gid, 0);
		if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0 || chdir("/") < 0)
			_exit(SPAWN_EXEC_FAILED);
		execv(prog, argv);
		msg_error("retention job: cannot run %s: %m", prog);
		_exit(SPAWN_EXEC_FAILED);
	} else {
		spawn_expire_pid = pid;
		msg_info("retention job started (pid %ld, pop3_delete_after=%llds)",
		    (long)pid, var_pop3_delete_after);
	}
	free(prog);
	priv_user_free(&u);
}

static void
spawn_expire_arm(uint64_t ms)
{
	if (var_pop3_delete_after > 0)
		spawn_expire_timer =
		    event_timer_add(spawn_loop, ms, spawn_expire, NULL);
}

/* ------------------------------------------------------------ process */

static void
spawn_init(struct event_loop *loop)
{
	/* Long enough for a request queued behind a burst of logins in
	 * auth (auth_proto.h): only an auth that stopped answering is cut
	 * off. */
	uint64_t timeout_ms =
	    AUTH_CLIENT_TIMEOUT_MS(var_auth_failure_delay_max);
	struct priv_user owner;
	char *path;

	spawn_loop = loop;
	/* login gives up after LOGIN_SPAWN_TIMEOUT_MS: answer before. */
	if (timeout_ms > LOGIN_SPAWN_TIMEOUT_MS - SPAWN_REPLY_MS)
		timeout_ms = LOGIN_SPAWN_TIMEOUT_MS - SPAWN_REPLY_MS;
	path = queue_path(QUEUE_PRIVATE, AUTH_SERVICE_NAME);
	spawn_auth = attr_client_create(
	    loop, path, 0, timeout_ms, AUTH_REQUEST_MAX, 0);
	free(path);
	if (getuid() == 0) {
		if (priv_lookup_user(var_mail_owner, &owner) < 0)
			msg_fatal("mail_owner user '%s' does not exist",
			    var_mail_owner);
		attr_client_set_ids(spawn_auth, owner.uid, owner.gid);
		priv_user_free(&owner);
	}
	spawn_logins = xcalloc(SPAWN_LOGINS_MAX, sizeof(*spawn_logins));
	if (event_signal_add(loop, SIGCHLD, spawn_sigchld, NULL) < 0)
		msg_fatal("signalfd SIGCHLD: %m");
	spawn_expire_arm(SPAWN_EXPIRE_FIRST_MS);
}

/* Sessions run on (they are the users' now); spawn forgets them. */
static void
spawn_shutdown(void)
{
	struct spawn_session *s;
	int i;

	while (spawn_reqs != NULL)
		spawn_req_free(spawn_reqs);
	attr_client_free(&spawn_auth);
	event_timer_del(&spawn_expire_timer);
	while ((s = spawn_sessions) != NULL) {
		spawn_sessions = s->next;
		spawn_session_free(s);
	}
	for (i = 0; i < spawn_nlogins; i++)
		free(spawn_logins[i].key);
	free(spawn_logins);
	spawn_logins = NULL;
}

static const struct server_ops spawn_ops = {
    .name = "spawn",
    .mode = SERVER_MULTI,
    .init = spawn_init,
    .accept = spawn_accept,
    .shutdown = spawn_shutdown,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &spawn_ops);
}
