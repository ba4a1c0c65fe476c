/* SPDX-License-Identifier: MIT */
/*
 * pop3d: one POP3 session after login (RFC 1939 TRANSACTION and UPDATE
 * states, RFC 2449 CAPA, TOP, UIDL, RESP-CODES, PIPELINING), started by
 * spawn as the mailbox owner with the client on fd 0 and its
 * TERN_SESSION_* environment (lib/mail/login_proto.h), as Dovecot's
 * pop3-login hands a client to pop3. One client, blocking I/O with
 * deadlines: the process is the session, and a crash costs that client
 * alone. Also "pop3d -E BASE", the periodic retention run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/login_proto.h"
#include "mail/mail_session.h"
#include "mail/params.h"
#include "mail/pop3_cmd.h"
#include "pop3d.h"

/* RFC 1939 3: a server may close after too many unknown commands. */
#define POP3D_BAD_COMMANDS_MAX 10
/* Queued output is pushed to the client past this many bytes. */
#define POP3D_FLUSH_AT         (64 * 1024)
/* A message is sent in reads of this size (never whole in memory). */
#define POP3D_CHUNK            (64 * 1024)
/* Longest user name and session id put in log lines. */
#define POP3D_LOG_LINE_MAX     1024
/* Longest message number or line count echoed back to the client. */
#define POP3D_ECHO_MAX         20
/* A message number is at most this (the scan caps the count anyway). */
#define POP3D_NUMBER_MAX       4294967295UL
#define POP3D_MS_PER_SEC       1000

enum pop3d_state {
	POP3D_STATE_TRANSACTION,
	POP3D_STATE_UPDATE,
	POP3D_STATE_LOGOUT,
};

static const char *const pop3d_state_names[] = {
    [POP3D_STATE_TRANSACTION] = "TRANSACTION",
    [POP3D_STATE_UPDATE] = "UPDATE",
    [POP3D_STATE_LOGOUT] = "LOGOUT",
};

struct pop3d_session {
	enum pop3d_state state;
	struct stream st;
	struct pop3d_mbox mb;
	struct buf line;
	struct buf uidl;
	int timeout_ms;
	int bad_commands;
	int broken; /* the client is gone or too slow: no more output */
	size_t deleted_count;
	uint64_t deleted_size;
	/* For the log line at the end, as Dovecot's. */
	size_t top_count, retr_count;
	uint64_t top_bytes, retr_bytes;
};

static void
set_state(struct pop3d_session *s, enum pop3d_state state)
{
	mail_session_log(LOG_DEBUG, "state %s -> %s",
	    pop3d_state_names[s->state], pop3d_state_names[state]);
	s->state = state;
}

/* ------------------------------------------------------------ output */

static int
push(struct pop3d_session *s, int all)
{
	if (s->broken)
		return -1;
	if (!all && stream_unsent(&s->st) < POP3D_FLUSH_AT)
		return 0;
	if (stream_flush(&s->st, s->timeout_ms) != STREAM_OK) {
		s->broken = 1;
		return -1;
	}
	return 0;
}

static int
send_bytes(struct pop3d_session *s, const void *data, size_t len)
{
	if (s->broken)
		return -1;
	if (stream_write(&s->st, data, len) < 0) {
		s->broken = 1;
		return -1;
	}
	return push(s, 0);
}

static int reply(struct pop3d_session *s, const char *fmt, ...)
    MTA_PRINTF(2, 3);

/* One response line (CRLF added), queued; pushed out when enough is
 * queued or before the session waits for input. */
static int
reply(struct pop3d_session *s, const char *fmt, ...)
{
	char text[POP3D_LOG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(text) - 3)
		n = (int)sizeof(text) - 3;
	text[n++] = '\r';
	text[n++] = '\n';
	return send_bytes(s, text, (size_t)n);
}

/* ---------------------------------------------------------- messages */

/*
 * The message number argument of a command: 0 and *m_r, or -1 after an
 * -ERR reply (a bad, absent or deleted number).
 */
static int
get_msg(struct pop3d_session *s, const char *arg, struct pop3d_msg **m_r)
{
	unsigned long n;

	if (pop3_cmd_number(arg, POP3D_NUMBER_MAX, &n) < 0) {
		reply(s, "-ERR Invalid message number: %s",
		    log_sanitize(arg, POP3D_ECHO_MAX));
		return -1;
	}
	if (n == 0 || n > s->mb.count) {
		reply(s, "-ERR There's no message %lu.", n);
		return -1;
	}
	*m_r = &s->mb.msgs[n - 1];
	if ((*m_r)->deleted) {
		reply(s, "-ERR Message is deleted.");
		return -1;
	}
	return 0;
}

/*
 * Sends message m (RETR: body_lines -1; TOP: the header and body_lines
 * lines), with its +OK line once the file is open. 0, or -1 after an
 * -ERR (the session goes on) or a broken connection (s->broken).
 */
static int
send_msg(struct pop3d_session *s, struct pop3d_msg *m, long long body_lines,
    uint64_t *sent_r)
{
	struct pop3d_wire w;
	const char *end;
	char *in, *out;
	uint64_t sent = 0;
	ssize_t n;
	size_t o;
	int fd, ret = 0;

	*sent_r = 0;
	pop3d_wire_init(&w, body_lines);
	fd = pop3d_mbox_open_msg(&s->mb, m);
	if (fd < 0) {
		if (errno == ENOENT) {
			/* Dovecot's words: another client expunged it. */
			reply(s, "-ERR Message %zu expunged.",
			    (size_t)(m - s->mb.msgs) + 1);
		} else {
			mail_session_log(LOG_ERR, "open %s/%s/%s: %s",
			    s->mb.path, m->in_new ? "new" : "cur", m->name,
			    strerror(errno));
			reply(s,
			    "-ERR [SYS/TEMP] Couldn't read message "
			    "%zu.",
			    (size_t)(m - s->mb.msgs) + 1);
		}
		return -1;
	}
	if (body_lines < 0)
		reply(s, "+OK %llu octets", (unsigned long long)m->size);
	else
		reply(s, "+OK");
	in = xmalloc(POP3D_CHUNK);
	out = xmalloc(2 * POP3D_CHUNK);
	while (!w.done && !s->broken) {
		n = read(fd, in, POP3D_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* The +OK is out: only closing tells the client. */
			mail_session_log(LOG_ERR, "read %s/cur/%s: %s",
			    s->mb.path, m->name, strerror(errno));
			s->broken = 1;
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		o = pop3d_wire_convert(&w, in, (size_t)n, out);
		sent += o;
		if (send_bytes(s, out, o) < 0)
			ret = -1;
	}
	if (ret == 0) {
		end = pop3d_wire_end(&w, &o);
		ret = send_bytes(s, end, o);
	}
	free(in);
	free(out);
	close(fd);
	*sent_r = sent;
	return ret;
}

/* ---------------------------------------------------------- commands */

static int
cmd_capa(struct pop3d_session *s, struct pop3_cmd *c)
{
	(void)c;
	reply(s, "+OK");
	reply(s, "CAPA");
	reply(s, "TOP");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	reply(s, "USER");
	reply(s, "IMPLEMENTATION tern");
	if (var_pop3_delete_after > 0)
		reply(s, "EXPIRE %lld",
		    var_pop3_delete_after / POP3D_SECONDS_PER_DAY);
	else
		reply(s, "EXPIRE NEVER");
	if (var_pop3_login_delay > 0)
		reply(s, "LOGIN-DELAY %lld", var_pop3_login_delay);
	return reply(s, ".");
}

static int
cmd_stat(struct pop3d_session *s, struct pop3_cmd *c)
{
	uint64_t size = 0;
	size_t i;

	(void)c;
	for (i = 0; i < s->mb.count; i++)
		size += s->mb.msgs[i].size;
	return reply(s, "+OK %zu %llu", s->mb.count - s->deleted_count,
	    (unsigned long long)(size - s->deleted_size));
}

static int
cmd_list(struct pop3d_session *s, struct pop3_cmd *c)
{
	struct pop3d_msg *m;
	size_t i;

	if (c->argc > 0) {
		if (get_msg(s, c->argv[0], &m) < 0)
			return -1;
		return reply(s, "+OK %zu %llu", (size_t)(m - s->mb.msgs) + 1,
		    (unsigned long long)m->size);
	}
	reply(s, "+OK %zu messages:", s->mb.count - s->deleted_count);
	for (i = 0; i < s->mb.count && !s->broken; i++) {
		if (!s->mb.msgs[i].deleted)
			reply(s, "%zu %llu", i + 1,
			    (unsigned long long)s->mb.msgs[i].size);
	}
	return reply(s, ".");
}

static int
cmd_retr(struct pop3d_session *s, struct pop3_cmd *c)
{
	struct pop3d_msg *m;
	uint64_t sent;

	if (get_msg(s, c->argv[0], &m) < 0)
		return -1;
	if (send_msg(s, m, -1, &sent) < 0)
		return -1;
	m->retrieved = 1;
	s->retr_count++;
	s->retr_bytes += sent;
	return 0;
}

static int
cmd_top(struct pop3d_session *s, struct pop3_cmd *c)
{
	struct pop3d_msg *m;
	unsigned long lines;
	uint64_t sent;

	if (get_msg(s, c->argv[0], &m) < 0)
		return -1;
	if (pop3_cmd_number(c->argv[1], ULONG_MAX, &lines) < 0 ||
	    lines > LLONG_MAX) {
		reply(s, "-ERR Invalid line count: %s",
		    log_sanitize(c->argv[1], POP3D_ECHO_MAX));
		return -1;
	}
	if (send_msg(s, m, (long long)lines, &sent) < 0)
		return -1;
	s->top_count++;
	s->top_bytes += sent;
	return 0;
}

static int
cmd_dele(struct pop3d_session *s, struct pop3_cmd *c)
{
	struct pop3d_msg *m;

	if (get_msg(s, c->argv[0], &m) < 0)
		return -1;
	m->deleted = 1;
	s->deleted_count++;
	s->deleted_size += m->size;
	return reply(s, "+OK Marked to be deleted.");
}

static int
cmd_noop(struct pop3d_session *s, struct pop3_cmd *c)
{
	(void)c;
	return reply(s, "+OK");
}

static int
cmd_rset(struct pop3d_session *s, struct pop3_cmd *c)
{
	size_t i;

	(void)c;
	/* As Dovecot: the \Seen of RETRs so far is forgotten too. */
	for (i = 0; i < s->mb.count; i++) {
		s->mb.msgs[i].deleted = 0;
		s->mb.msgs[i].retrieved = 0;
	}
	s->deleted_count = 0;
	s->deleted_size = 0;
	return reply(s, "+OK");
}

static int
send_uidl(struct pop3d_session *s, size_t i, int single)
{
	struct pop3d_msg *m = &s->mb.msgs[i];

	buf_reset(&s->uidl);
	if (pop3d_uidl_expand(var_pop3_uidl_format, m->name, m->base_len,
	        m->uid, s->mb.uidvalidity, &s->uidl) < 0) {
		mail_session_log(LOG_ERR,
		    "UIDL of %s longer than %d characters",
		    log_sanitize(m->name, POP3D_NAME_MAX), POP3D_UIDL_MAX);
		if (single)
			reply(s, "-ERR [SYS/PERM] No UIDL for message %zu.",
			    i + 1);
		return -1;
	}
	return reply(
	    s, single ? "+OK %zu %s" : "%zu %s", i + 1, buf_cstr(&s->uidl));
}

static int
cmd_uidl(struct pop3d_session *s, struct pop3_cmd *c)
{
	struct pop3d_msg *m;
	size_t i;

	if (c->argc > 0) {
		if (get_msg(s, c->argv[0], &m) < 0)
			return -1;
		return send_uidl(s, (size_t)(m - s->mb.msgs), 1);
	}
	reply(s, "+OK");
	for (i = 0; i < s->mb.count && !s->broken; i++) {
		if (!s->mb.msgs[i].deleted)
			(void)send_uidl(s, i, 0);
	}
	return reply(s, ".");
}

static int
cmd_quit(struct pop3d_session *s, struct pop3_cmd *c)
{
	const char *err;
	uint64_t total = 0;
	size_t deleted, i;

	(void)c;
	for (i = 0; i < s->mb.count; i++)
		total += s->mb.msgs[i].size;
	set_state(s, POP3D_STATE_UPDATE);
	if (pop3d_mbox_commit(&s->mb, var_pop3_no_flag_updates,
	        var_pop3_delete_after, time(NULL), &deleted, &err) < 0) {
		mail_session_log(LOG_ERR, "%s", err);
		reply(s, "-ERR [SYS/TEMP] Storage error during logout.");
		mail_session_log(
		    LOG_INFO, "Disconnected: Storage error during logout.");
	} else {
		reply(s, deleted > 0 || s->deleted_count > 0
		             ? "+OK Logging out, messages deleted."
		             : "+OK Logging out.");
		mail_session_log(LOG_INFO,
		    "Disconnected: Logged out top=%zu/%llu, "
		    "retr=%zu/%llu, del=%zu/%zu, size=%llu",
		    s->top_count, (unsigned long long)s->top_bytes,
		    s->retr_count, (unsigned long long)s->retr_bytes, deleted,
		    s->mb.count, (unsigned long long)total);
	}
	set_state(s, POP3D_STATE_LOGOUT);
	return 1;
}

static int
cmd_after_login(struct pop3d_session *s, struct pop3_cmd *c)
{
	return reply(s, "-ERR Already logged in (%s is not allowed now).",
	    pop3_cmd_name(c->id));
}

#define ARGS_ANY (-1)

static const struct pop3d_cmd_def {
	enum pop3_cmd_id id;
	int (*handler)(struct pop3d_session *, struct pop3_cmd *);
	int min_args, max_args; /* ARGS_ANY: the arguments are ignored */
} pop3d_cmds[] = {
    {POP3_CMD_CAPA, cmd_capa, 0, ARGS_ANY},
    {POP3_CMD_STAT, cmd_stat, 0, ARGS_ANY},
    {POP3_CMD_LIST, cmd_list, 0, 1},
    {POP3_CMD_RETR, cmd_retr, 1, 1},
    {POP3_CMD_TOP, cmd_top, 2, 2},
    {POP3_CMD_DELE, cmd_dele, 1, 1},
    {POP3_CMD_NOOP, cmd_noop, 0, ARGS_ANY},
    {POP3_CMD_RSET, cmd_rset, 0, ARGS_ANY},
    {POP3_CMD_UIDL, cmd_uidl, 0, 1},
    {POP3_CMD_QUIT, cmd_quit, 0, ARGS_ANY},
    {POP3_CMD_USER, cmd_after_login, 0, ARGS_ANY},
    {POP3_CMD_PASS, cmd_after_login, 0, ARGS_ANY},
    {POP3_CMD_APOP, cmd_after_login, 0, ARGS_ANY},
    {POP3_CMD_AUTH, cmd_after_login, 0, ARGS_ANY},
    {POP3_CMD_STLS, cmd_after_login, 0, ARGS_ANY},
    {POP3_CMD_UTF8, cmd_after_login, 0, ARGS_ANY},
};

/* One command line: 1 ends the session, 0 goes on; s->bad_commands
 * counts the -ERRs a client earned. */
static int
run_command(struct pop3d_session *s, char *line, size_t len)
{
	const struct pop3d_cmd_def *def = NULL;
	struct pop3_cmd cmd;
	const char *err;
	size_t i;
	int r;

	r = pop3_cmd_parse(line, len, &cmd, &err);
	if (r == POP3_PARSE_EMPTY) {
		reply(s, "-ERR Unknown command: ");
		s->bad_commands++;
		return 0;
	}
	if (r != POP3_PARSE_OK) {
		reply(s, "-ERR %s", err);
		s->bad_commands++;
		return 0;
	}
	for (i = 0; i < sizeof(pop3d_cmds) / sizeof(pop3d_cmds[0]); i++) {
		if (pop3d_cmds[i].id == cmd.id) {
			def = &pop3d_cmds[i];
			break;
		}
	}
	if (def == NULL) {
		reply(s, "-ERR Unknown command: %s",
		    log_sanitize(cmd.name, sizeof(cmd.name)));
		s->bad_commands++;
		return 0;
	}
	if (def->max_args != ARGS_ANY &&
	    (cmd.argc < def->min_args || cmd.argc > def->max_args)) {
		reply(s, "-ERR %s: %s arguments.", pop3_cmd_name(cmd.id),
		    cmd.argc < def->min_args ? "Missing" : "Too many");
		s->bad_commands++;
		return 0;
	}
	r = def->handler(s, &cmd);
	if (r < 0) {
		s->bad_commands++;
		return 0;
	}
	return r;
}

/* ----------------------------------------------------------- session */

/* TERN_SESSION_INPUT: what the client pipelined after its login
 * command, read before anything from the socket. */
static int
preload_input(struct pop3d_session *s)
{
	const char *b64 = getenv(LOGIN_ENV_INPUT), *err;
	struct buf in;

	if (b64 == NULL || *b64 == '\0')
		return 0;
	buf_init(&in, LOGIN_INPUT_MAX);
	if (base64_decode(b64, strlen(b64), &in, &err) < 0 ||
	    in.len > sizeof(s->st.rbuf)) {
		mail_session_log(LOG_ERR, "%s: bad value: %s", LOGIN_ENV_INPUT,
		    in.len > sizeof(s->st.rbuf) ? "too long" : err);
		buf_free(&in);
		return -1;
	}
	memcpy(s->st.rbuf, in.data, in.len);
	s->st.rpos = 0;
	s->st.rlen = in.len;
	buf_free(&in);
	return 0;
}

/* pop3_uidl_format has %u or %v: dovecot-uidlist is read (and kept). */
static int uidl_needs_uid;

static int
open_mailbox(struct pop3d_session *s, const char *maildir)
{
	const char *err;
	size_t removed;
	int busy;

	if (pop3d_mbox_open(
	        &s->mb, maildir, var_pop3_lock_session, &busy, &err) < 0) {
		if (busy) {
			reply(s, "-ERR [IN-USE] Mailbox is locked by another "
			         "POP3 session.");
			mail_session_log(LOG_INFO,
			    "Disconnected: Mailbox is locked by "
			    "another POP3 session");
		} else {
			mail_session_log(LOG_ERR, "%s", err);
			reply(s, "-ERR [SYS/TEMP] Couldn't open mailbox.");
		}
		return -1;
	}
	if (var_pop3_delete_after > 0) {
		if (pop3d_expire_maildir(maildir, var_pop3_delete_after,
		        time(NULL), &removed, &err) < 0)
			mail_session_log(
			    LOG_WARNING, "pop3_delete_after: %s", err);
		else if (removed > 0)
			mail_session_log(LOG_INFO,
			    "pop3_delete_after: removed=%zu", removed);
	}
	if (pop3d_mbox_scan(&s->mb, &err) < 0 ||
	    (uidl_needs_uid && pop3d_mbox_uids(&s->mb, &err) < 0)) {
		mail_session_log(LOG_ERR, "%s", err);
		reply(s, "-ERR [SYS/TEMP] Couldn't open mailbox.");
		return -1;
	}
	if (s->mb.sizes_computed > 0 || s->mb.sizes_unknown > 0)
		mail_session_log(LOG_INFO, "sizes counted=%zu unreadable=%zu",
		    s->mb.sizes_computed, s->mb.sizes_unknown);
	return 0;
}

static int
serve(const char *maildir)
{
	struct pop3d_session s;
	enum stream_result r;
	int end = 0;

	memset(&s, 0, sizeof(s));
	s.state = POP3D_STATE_TRANSACTION;
	s.mb.dirfd = s.mb.curfd = s.mb.newfd = s.mb.lockfd = -1;
	s.timeout_ms = (int)(var_pop3_idle_timeout * POP3D_MS_PER_SEC);
	stream_init(&s.st, 0);
	buf_init(&s.line, POP3_LINE_MAX + 1);
	buf_init(&s.uidl, POP3D_UIDL_MAX);
	if (preload_input(&s) < 0) {
		reply(&s, "-ERR [SYS/TEMP] Internal error.");
		end = 1;
	} else if (open_mailbox(&s, maildir) < 0) {
		end = 1;
	} else {
		reply(&s, "+OK Logged in.");
	}
	while (!end && !s.broken) {
		/* Answers to pipelined commands go out together. */
		if (!stream_input_ready(&s.st) && push(&s, 1) < 0)
			break;
		r = stream_read_line(
		    &s.st, &s.line, POP3_LINE_MAX, s.timeout_ms, NULL);
		if (r == STREAM_OK) {
			end = run_command(&s, s.line.data, s.line.len);
			buf_reset(&s.line);
			if (!end && s.bad_commands >= POP3D_BAD_COMMANDS_MAX) {
				reply(&s, "-ERR Too many bad commands.");
				mail_session_log(LOG_INFO,
				    "Disconnected: Too many bad "
				    "commands");
				end = 1;
			}
		} else if (r == STREAM_TOOLONG) {
			reply(&s, "-ERR Line too long.");
			mail_session_log(
			    LOG_INFO, "Disconnected: Line too long");
			end = 1;
		} else if (r == STREAM_TIMEOUT) {
			reply(&s, "-ERR Disconnected for inactivity.");
			mail_session_log(LOG_INFO, "Disconnected: Inactivity "
			                           "(nothing deleted)");
			end = 1;
		} else {
			mail_session_log(LOG_INFO,
			    "Disconnected: %s (nothing deleted)",
			    r == STREAM_EOF ? "Connection closed"
			                    : "Connection error");
			end = 1;
		}
	}
	if (!s.broken)
		(void)push(&s, 1);
	else if (s.state == POP3D_STATE_TRANSACTION)
		mail_session_log(LOG_INFO,
		    "Disconnected: Write failed or timed out "
		    "(nothing deleted)");
	pop3d_mbox_close(&s.mb);
	buf_free(&s.line);
	buf_free(&s.uidl);
	stream_close(&s.st);
	return 0;
}

static void
check_config(void)
{
	const char *err;

	if (pop3d_uidl_check(var_pop3_uidl_format, &uidl_needs_uid, &err) < 0)
		msg_fatal("pop3_uidl_format = %s: %s",
		    log_sanitize(var_pop3_uidl_format, POP3D_LOG_LINE_MAX / 2),
		    err);
}

int
main(int argc, char **argv)
{
	const char *config_dir = TERN_CONFIG_DIR, *err, *expire = NULL;
	struct mail_session_env env;
	int ch, verbose = 0, check = 0;

	log_init("pop3d", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:E:tv")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'E':
			expire = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			msg_fatal("usage: pop3d [-c config_dir] [-t] [-v] "
			          "[-E base_directory]");
		}
	}
	if (config_load(config_dir, &err) < 0)
		msg_fatal("%s", err);
	check_config();
	if (check)
		return 0;
	mail_session_init("pop3d", verbose);
	if (expire != NULL) {
		if (var_pop3_delete_after == 0)
			return 0;
		return pop3d_expire_tree(
		           expire, var_pop3_delete_after, time(NULL)) == 0
		           ? 0
		           : 1;
	}
	mail_session_env("pop3d", "pop3d", &env);
	return serve(env.maildir);
}
