/* SPDX-License-Identifier: MIT */
/*
 * One SMTP session (RFC 5321) inside the event-driven smtpd: non-blocking
 * input through struct stream, replies collected in a per-session buffer
 * and written when the socket takes them, so a pipelined batch of commands
 * (RFC 2920) is answered with one write. Also the DATA path: content goes
 * through cleanup into tmp/, the commit pool makes it durable in
 * incoming/, and input is paused until then, so the 250 is only sent for
 * a message that is safe on disk. Every session has an idle timer
 * (RFC 5321 4.5.3.2) and every buffer a hard bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "smtpd.h"

/*
 * Replies waiting for a client that does not read. Commands stop being
 * taken above the high-water mark, so only a client that pipelines
 * enormous batches can reach the maximum; it is then dropped.
 */
#define SMTPD_OUT_HIGH     (16 * 1024)
#define SMTPD_OUT_MAX      (1024 * 1024)
/* One reply line as formatted (RFC 5321 4.5.3.1.5 allows 512). */
#define SMTPD_REPLY_MAX    1024
/* Client strings in one log line. */
#define SMTPD_LOG_TEXT_MAX 256
#define MS_PER_SEC         1000

static struct smtpd_session *sessions;
static int session_count;
/* SIGTERM: sessions get 421 (RFC 5321 3.8); a running commit first
 * gets its DATA reply, so a message on disk is not sent again. */
static int shutting_down;

static const char *const state_names[] = {
    [SMTPD_STATE_CONNECTED] = "CONNECTED",
    [SMTPD_STATE_HELO] = "HELO",
    [SMTPD_STATE_MAIL] = "MAIL",
    [SMTPD_STATE_DATA] = "DATA",
    [SMTPD_STATE_COMMIT] = "COMMIT",
    [SMTPD_STATE_QUIT] = "QUIT",
};

static void session_after(struct smtpd_session *s);
static void session_shutdown(struct smtpd_session *s);
static commit_done_cb session_committed;

int
smtpd_session_count(void)
{
	return session_count;
}

void
smtpd_set_state(struct smtpd_session *s, enum smtpd_state state)
{
	msg_debug("%s[%s]: state %s -> %s", s->name, s->addr,
	    state_names[s->state], state_names[state]);
	s->state = state;
}

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
	size_t start = s->out.len, i;
	va_list ap;
	int r;

	if (s->close_now)
		return;
	va_start(ap, fmt);
	r = buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	if (r == 0) {
		/* Client text echoed in a reply must not end the line, and
		 * replies stay printable ASCII (RFC 5321 4.2). */
		for (i = start; i < s->out.len; i++)
			if ((unsigned char)s->out.data[i] < 0x20 ||
			    (unsigned char)s->out.data[i] >= 0x7f)
				s->out.data[i] = '?';
		r = buf_append(&s->out, "\r\n", 2);
	}
	if (r < 0) {
		msg_warn("%s[%s]: dropping a client that does not read replies",
		    s->name, s->addr);
		s->close_now = 1;
	}
}

void
smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt,
    const char *fmt, ...)
{
	char text[SMTPD_REPLY_MAX], from[SMTPD_LOG_TEXT_MAX + 16],
	    to[SMTPD_LOG_TEXT_MAX + 16], helo[SMTPD_LOG_TEXT_MAX + 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtpd_reply(s, "%s", text);
	from[0] = to[0] = helo[0] = '\0';
	if (s->sender != NULL)
		snprintf(from, sizeof(from), " from=<%s>",
		    log_sanitize(s->sender, SMTPD_LOG_TEXT_MAX));
	if (rcpt != NULL)
		snprintf(to, sizeof(to), " to=<%s>",
		    log_sanitize(rcpt, SMTPD_LOG_TEXT_MAX));
	if (s->helo != NULL)
		snprintf(helo, sizeof(helo), " helo=<%s>",
		    log_sanitize(s->helo, SMTPD_LOG_TEXT_MAX));
	msg_info("%s: reject: %s from %s[%s]: %s;%s%s proto=%s%s",
	    s->cleanup.open ? s->cleanup.w.id : "NOQUEUE", cmd, s->name,
	    s->addr, log_sanitize(text, sizeof(text)), from, to,
	    s->esmtp ? "ESMTP" : "SMTP", helo);
}

/* Writes queued replies as far as the socket takes them. */
static void
session_write(struct smtpd_session *s)
{
	ssize_t n;

	while (s->out.len > 0 && !s->close_now) {
		n = send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&s->out, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			msg_info("lost connection after %s from %s[%s]",
			    s->last_cmd, s->name, s->addr);
			s->close_now = 1;
		}
	}
}

static void
session_lost(struct smtpd_session *s)
{
	msg_info("lost connection after %s from %s[%s]", s->last_cmd, s->name,
	    s->addr);
	s->close_now = 1;
}

static void
session_free(struct smtpd_session *s)
{
	smtpd_cmd_reset(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	session_count--;
	buf_free(&s->line);
	buf_free(&s->out);
	free(s->helo);
	free(s->name);
	free(s);
}

/* Ends the connection; the memory waits for a running commit. */
static void
session_close(struct smtpd_session *s)
{
	struct buf counts;

	event_fd_del(&s->ev);
	event_timer_del(&s->timer);
	if (s->fd >= 0) {
		buf_init(&counts, SMTPD_REPLY_MAX);
		smtpd_cmd_counts(s, &counts);
		msg_info("disconnect from %s[%s]%s", s->name, s->addr,
		    buf_cstr(&counts));
		buf_free(&counts);
		stream_close(&s->in);
		s->fd = -1;
	}
	if (s->commit_path != NULL) {
		s->dead = 1;
		return;
	}
	session_free(s);
}

static void
session_end_of_data(struct smtpd_session *s)
{
	const char *error = NULL;
	unsigned status = cleanup_finish(&s->cleanup, &error);

	if (status & CLEANUP_STAT_SIZE)
		smtpd_reject(s, "END-OF-MESSAGE", s->rcpts[0],
		    "552 5.3.4 Error: message file too big");
	else if (status & CLEANUP_STAT_BARE)
		smtpd_reject(s, "END-OF-MESSAGE", s->rcpts[0],
		    "554 5.6.11 Error: bare <CR> or <LF> received");
	else if (status & CLEANUP_STAT_WRITE) {
		msg_error("%s: %s", s->cleanup.w.id, error);
		smtpd_reply(s, "451 4.3.0 Error: queue file write error");
	}
	if (status != 0) {
		s->errors++;
		smtpd_cmd_reset(s);
		smtpd_set_state(s, SMTPD_STATE_HELO);
		return;
	}
	s->commit_path = queue_path(QUEUE_INCOMING, s->cleanup.w.id);
	smtpd_set_state(s, SMTPD_STATE_COMMIT);
	commit_submit(smtpd_commit_pool, s->cleanup.w.fd, s->cleanup.w.tmp_path,
	    s->commit_path, smtpd_incoming_dir, session_committed, s);
}

/*
 * Runs what is buffered: command lines, or message content in state DATA.
 * Stops while the commit runs, at QUIT, and while too many replies wait.
 */
static void
session_input(struct smtpd_session *s)
{
	enum stream_result r;
	size_t n;

	while (!s->close_now && s->out.len < SMTPD_OUT_HIGH) {
		if (s->state == SMTPD_STATE_DATA) {
			if (stream_buffered(&s->in) == 0) {
				if (s->in.eof)
					session_lost(s);
				break;
			}
			n = cleanup_feed(&s->cleanup, s->in.rbuf + s->in.rpos,
			    stream_buffered(&s->in));
			s->in.rpos += n;
			if (cleanup_done(&s->cleanup))
				session_end_of_data(s);
			continue;
		}
		if (s->state == SMTPD_STATE_COMMIT ||
		    s->state == SMTPD_STATE_QUIT)
			break;
		r = stream_next_line(&s->in, &s->line,
		    (size_t)var_smtpd_command_line_limit, NULL);
		if (r == STREAM_AGAIN)
			break;
		if (r == STREAM_EOF) {
			session_lost(s);
			break;
		}
		if (r == STREAM_TOOLONG) {
			smtpd_reply(s, "500 5.5.2 Error: line too long");
			s->errors++;
		} else {
			smtpd_cmd_dispatch(s, s->line.data, s->line.len);
		}
		if (s->errors >= var_smtpd_hard_error_limit &&
		    s->state != SMTPD_STATE_QUIT) {
			msg_info("too many errors after %s from %s[%s]",
			    s->last_cmd, s->name, s->addr);
			smtpd_reply(s, "421 4.7.0 %s Error: too many errors",
			    var_myhostname);
			smtpd_set_state(s, SMTPD_STATE_QUIT);
		}
	}
	s->input_blocked = s->out.len >= SMTPD_OUT_HIGH;
}

static void
session_committed(int result, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	const char *id = s->cleanup.w.id;

	free(s->commit_path);
	s->commit_path = NULL;
	if (result == 0) {
		qfile_writer_committed(&s->cleanup.w);
		/* qmgr logs from=/size=/nrcpt= when it takes the message. */
		msg_info("%s: queued, size=%llu", id,
		    (unsigned long long)s->cleanup.w.content_len);
		cleanup_notify_qmgr(id);
		if (!s->dead) {
			smtpd_reply(s, "250 2.0.0 Ok: queued as %s", id);
			smtpd_cmd_data_ok(s);
		}
	} else {
		msg_error("%s: queue file commit: %s", id, error);
		if (!s->dead) {
			smtpd_reply(
			    s, "451 4.3.0 Error: queue file write error");
			s->errors++;
		}
	}
	if (s->dead) {
		session_free(s);
		return;
	}
	if (shutting_down) {
		session_shutdown(s);
		return;
	}
	/* RFC 5321 4.1.1.4: the transaction ends with the DATA reply. */
	smtpd_cmd_reset(s);
	smtpd_set_state(s, SMTPD_STATE_HELO);
	event_timer_reset(s->timer, (uint64_t)var_smtpd_timeout * MS_PER_SEC);
	session_input(s);
	session_after(s);
}

/* The common tail of every callback: write, wait for the right events,
 * or tear down (s may be freed). */
static void
session_after(struct smtpd_session *s)
{
	int mask = 0;

	session_write(s);
	/* Input already buffered gets no new READ event: run it now that
	 * the replies it waited for have room. */
	while (
	    s->input_blocked && !s->close_now && s->out.len < SMTPD_OUT_HIGH) {
		session_input(s);
		session_write(s);
	}
	if (s->close_now || (s->state == SMTPD_STATE_QUIT && s->out.len == 0)) {
		session_close(s);
		return;
	}
	if (s->out.len > 0)
		mask |= EVENT_WRITE;
	if (s->state != SMTPD_STATE_COMMIT && s->state != SMTPD_STATE_QUIT &&
	    s->out.len < SMTPD_OUT_HIGH && !s->in.eof)
		mask |= EVENT_READ;
	event_fd_set(s->ev, mask);
}

static void
session_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct smtpd_session *s = ctx;
	enum stream_result r;

	(void)ev;
	(void)fd;
	if (events & EVENT_WRITE)
		session_write(s);
	/* Input is only read while it may be processed (not during a
	 * commit): a hang-up then shows when reading resumes. */
	if ((events & EVENT_READ) && !s->close_now &&
	    s->state != SMTPD_STATE_COMMIT && s->state != SMTPD_STATE_QUIT) {
		r = stream_fill(&s->in);
		if (r == STREAM_OK)
			event_timer_reset(
			    s->timer, (uint64_t)var_smtpd_timeout * MS_PER_SEC);
		else if (r == STREAM_ERROR)
			session_lost(s);
	}
	session_input(s);
	session_after(s);
}

static void
session_timeout(struct event_timer *t, void *ctx)
{
	struct smtpd_session *s = ctx;

	(void)t;
	if (s->state == SMTPD_STATE_COMMIT) {
		/* Not the client's delay: it waits for the DATA reply (RFC
		 * 5321 4.5.3.2.6). A 421 now would be followed by delivery
		 * anyway, and by the client sending the message again. */
		event_timer_reset(
		    s->timer, (uint64_t)var_smtpd_timeout * MS_PER_SEC);
		return;
	}
	msg_info("timeout after %s from %s[%s]", s->last_cmd, s->name, s->addr);
	smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", var_myhostname);
	session_write(s);
	s->close_now = 1;
	session_after(s);
}

/* Client address for logs and queue file, and its RFC 5321 literal. */
static void
session_peer(struct smtpd_session *s, int fd, const struct server_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	struct in_addr v4;

	if (!l->is_inet) {
		snprintf(s->addr, sizeof(s->addr), "127.0.0.1");
		snprintf(s->rfc_addr, sizeof(s->rfc_addr), "127.0.0.1");
		s->name = xstrdup("localhost");
		return;
	}
	snprintf(s->addr, sizeof(s->addr), "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET,
			    &((const struct sockaddr_in *)&ss)->sin_addr,
			    s->addr, sizeof(s->addr));
		} else if (ss.ss_family == AF_INET6 &&
		           IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(&v4, sin6->sin6_addr.s6_addr + 12, sizeof(v4));
			inet_ntop(AF_INET, &v4, s->addr, sizeof(s->addr));
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &sin6->sin6_addr, s->addr,
			    sizeof(s->addr));
		}
	}
	snprintf(s->rfc_addr, sizeof(s->rfc_addr), "%s%s",
	    strchr(s->addr, ':') != NULL ? "IPv6:" : "", s->addr);
	s->name = xstrdup(s->addr);
}

void
smtpd_session_create(
    int fd, const struct server_listener *l, struct event_loop *loop)
{
	struct smtpd_session *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->fd = fd;
	session_peer(s, fd, l);
	stream_init(&s->in, fd);
	buf_init(&s->line, (size_t)var_smtpd_command_line_limit);
	buf_init(&s->out, SMTPD_OUT_MAX);
	s->state = SMTPD_STATE_CONNECTED;
	s->last_cmd = "CONNECT";
	s->ev = event_fd_add(loop, fd, EVENT_READ, session_io, s);
	s->timer = event_timer_add(
	    loop, (uint64_t)var_smtpd_timeout * MS_PER_SEC, session_timeout, s);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	session_count++;
	msg_info("connect from %s[%s]", s->name, s->addr);
	smtpd_reply(s, "220 %s", var_smtpd_banner);
	session_after(s);
}

/* Best effort: the socket is non-blocking and the process is leaving. */
static void
session_shutdown(struct smtpd_session *s)
{
	if (s->state != SMTPD_STATE_QUIT)
		smtpd_reply(
		    s, "421 4.3.2 %s Service shutting down", var_myhostname);
	session_write(s);
	session_close(s);
}

void
smtpd_session_close_all(void)
{
	struct smtpd_session *s, *next;

	shutting_down = 1;
	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		/* session_committed() ends those in COMMIT. */
		if (!s->dead && s->state != SMTPD_STATE_COMMIT)
			session_shutdown(s);
	}
}
