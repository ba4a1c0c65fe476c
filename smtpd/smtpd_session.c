/* SPDX-License-Identifier: MIT */
/*
 * One SMTP session (RFC 5321) inside the event-driven smtpd: input and
 * replies go through one struct stream (plain, or TLS after STARTTLS or
 * on the implicit-TLS port, RFC 3207 and RFC 8314), so a pipelined batch
 * of commands (RFC 2920) is answered with one write. Also the content
 * path: DATA (dot-unstuffed by cleanup) and BDAT chunks (RFC 3030) go
 * into tmp/, the commit pool makes the file durable in incoming/, and
 * input waits meanwhile, so 250 is only sent for a message safe on disk.
 *
 * Limits on what a client may hold: a per-read idle timeout, a deadline
 * for every command line however slowly it trickles, one for the whole
 * content of a message, a shorter one for the first command, a count of
 * connections per client address kept by anvil across processes, and a
 * process that is full stops accepting so its siblings take new
 * connections. Every buffer has a hard bound.
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
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "smtpd.h"

/*
 * Replies waiting for a client that does not read. Commands stop being
 * taken above this mark; the stream's own maximum (1 MiB) is the hard
 * bound, and a client that reaches it is dropped.
 */
#define SMTPD_OUT_HIGH      (16 * 1024)
/* One reply line as formatted (RFC 5321 4.5.3.1.5 allows 512). */
#define SMTPD_REPLY_MAX     1024
/* Client strings in one log line. */
#define SMTPD_LOG_TEXT_MAX  256
#define MS_PER_SEC          1000
/* RFC 4954 4: an AUTH command line may be 12288 octets. */
#define SMTPD_AUTH_LINE_MAX 12288

static struct smtpd_session *sessions;
static int session_count;
/* SIGTERM: sessions get 421 (RFC 5321 3.8); a running commit first
 * gets its DATA reply, so a message on disk is not sent again. */
static int shutting_down;

static const char *const state_names[] = {
    [SMTPD_STATE_START] = "START",
    [SMTPD_STATE_PREGREET] = "PREGREET",
    [SMTPD_STATE_CONNECTED] = "CONNECTED",
    [SMTPD_STATE_HELO] = "HELO",
    [SMTPD_STATE_MAIL] = "MAIL",
    [SMTPD_STATE_DATA] = "DATA",
    [SMTPD_STATE_BDAT] = "BDAT",
    [SMTPD_STATE_COMMIT] = "COMMIT",
    [SMTPD_STATE_QUIT] = "QUIT",
};

static void session_after(struct smtpd_session *s);
static void session_shutdown(struct smtpd_session *s);
static void session_greet(struct smtpd_session *s);
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
	struct buf *out = &s->st.wbuf;
	size_t start = out->len, i;
	va_list ap;
	int r;

	if (s->close_now)
		return;
	va_start(ap, fmt);
	r = buf_vprintf(out, fmt, ap);
	va_end(ap);
	if (r == 0) {
		/* Client text echoed in a reply must not end the line, and
		 * replies stay printable ASCII (RFC 5321 4.2). */
		for (i = start; i < out->len; i++)
			if ((unsigned char)out->data[i] < 0x20 ||
			    (unsigned char)out->data[i] >= 0x7f)
				out->data[i] = '?';
		r = buf_append(out, "\r\n", 2);
	}
	if (r < 0) {
		buf_truncate(out, start);
		msg_warn("%s[%s]: dropping a client that does not read replies",
		    s->name, s->addr);
		s->close_now = 1;
	}
}

/* "ID|NOQUEUE: ACTION: CMD from host[addr]: TEXT; from=<s> to=<r>
 * proto=P helo=<h>" */
static void
session_log_action(struct smtpd_session *s, const char *action, const char *cmd,
    const char *rcpt, const char *text)
{
	char from[SMTPD_LOG_TEXT_MAX + 16], to[SMTPD_LOG_TEXT_MAX + 16],
	    helo[SMTPD_LOG_TEXT_MAX + 16];

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
	msg_info("%s: %s: %s from %s[%s]: %s;%s%s proto=%s%s",
	    s->cleanup.open ? s->cleanup.w.id : "NOQUEUE", action, cmd, s->name,
	    s->addr, log_sanitize(text, SMTPD_REPLY_MAX), from, to,
	    s->esmtp ? "ESMTP" : "SMTP", helo);
}

void
smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt,
    const char *fmt, ...)
{
	char text[SMTPD_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtpd_reply(s, "%s", text);
	session_log_action(s, "reject", cmd, rcpt, text);
}

const char *
smtpd_protocol(const struct smtpd_session *s)
{
	/* RFC 3848 with-protocol names; RFC 6531 3.7.3 for SMTPUTF8. */
	static const char *const esmtp[2][2][2] = {
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!s->esmtp)
		return "SMTP";
	return esmtp[s->mail.smtputf8 != 0][s->tls_active]
	            [s->auth_user != NULL];
}

/* Writes queued replies as far as the transport takes them. */
static void
session_write(struct smtpd_session *s)
{
	size_t before = stream_unsent(&s->st);

	if (before == 0 || s->close_now)
		return;
	if (stream_try_flush(&s->st) == STREAM_ERROR) {
		msg_info("lost connection after %s from %s[%s]", s->last_cmd,
		    s->name, s->addr);
		s->close_now = 1;
		return;
	}
	if (stream_unsent(&s->st) < before)
		s->last_io_ms = event_now_ms(s->loop);
}

static void
session_lost(struct smtpd_session *s)
{
	msg_info("lost connection after %s from %s[%s]", s->last_cmd, s->name,
	    s->addr);
	s->close_now = 1;
}

void
smtpd_anvil_request(
    struct smtpd_session *s, const char *request, attr_client_cb *cb)
{
	/* Without a callback, a notice: nobody waits for the answer. */
	struct buf *f = cb != NULL ? attr_client_frame(smtpd_anvil)
	                           : attr_client_notice_frame(smtpd_anvil);

	if (attr_put_str(f, "request", request) < 0 ||
	    attr_put_str(f, "service", SMTPD_ANVIL_SERVICE) < 0 ||
	    attr_put_str(f, "ident", s->addr) < 0)
		msg_panic("anvil request does not fit a frame");
	if (cb != NULL)
		s->waiting = 1;
	attr_client_send(smtpd_anvil, cb, cb != NULL ? s : NULL);
}

static void
session_anvil_done(struct smtpd_session *s)
{
	if (!s->anvil_counted)
		return;
	s->anvil_counted = 0;
	smtpd_anvil_request(s, "disconnect", NULL);
}

static void
session_free(struct smtpd_session *s)
{
	smtpd_cmd_free(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (session_count-- == var_smtpd_max_clients)
		server_accept_pause(0);
	server_conn_done();
	buf_free(&s->line);
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
	/* Answers still to come must not reach a freed session. */
	attr_client_cancel(smtpd_anvil, s);
	attr_client_cancel(smtpd_proxymap, s);
	attr_client_cancel(smtpd_auth, s);
	attr_client_cancel(smtpd_qmgr, s);
	smtpd_check_session_free(s);
	session_anvil_done(s);
	if (s->fd >= 0) {
		buf_init(&counts, SMTPD_REPLY_MAX);
		smtpd_cmd_counts(s, &counts);
		msg_info("disconnect from %s[%s]%s", s->name, s->addr,
		    buf_cstr(&counts));
		buf_free(&counts);
		stream_close(&s->st);
		s->fd = -1;
	}
	if (s->commit_path != NULL) {
		s->dead = 1;
		return;
	}
	session_free(s);
}

/* The reply to a failed queue file write: a full disk is 452 4.3.1. */
static void
session_write_error(struct smtpd_session *s, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	else
		smtpd_reply(s, "451 4.3.0 Error: queue file write error");
	s->errors++;
}

int
smtpd_session_open_file(struct smtpd_session *s)
{
	struct cleanup_envelope env;
	struct cleanup_rcpt *rcpts;
	const char *error;
	int i, ret;

	rcpts = xcalloc((size_t)s->nrcpt, sizeof(*rcpts));
	for (i = 0; i < s->nrcpt; i++) {
		rcpts[i].addr = s->rcpts[i].addr;
		rcpts[i].orcpt = s->rcpts[i].orcpt;
		rcpts[i].notify = s->rcpts[i].notify;
	}
	memset(&env, 0, sizeof(env));
	env.sender = s->sender;
	env.rcpts = rcpts;
	env.nrcpt = s->nrcpt;
	env.client_name = s->name;
	env.client_addr = s->addr;
	env.client_rfc_addr = s->rfc_addr;
	env.helo = s->helo;
	env.protocol = smtpd_protocol(s);
	env.body = s->mail.body == SMTP_BODY_7BIT         ? "7BIT"
	           : s->mail.body == SMTP_BODY_8BITMIME   ? "8BITMIME"
	           : s->mail.body == SMTP_BODY_BINARYMIME ? "BINARYMIME"
	                                                  : NULL;
	env.envid = s->mail.envid;
	env.ret = s->mail.ret == SMTP_RET_FULL   ? "FULL"
	          : s->mail.ret == SMTP_RET_HDRS ? "HDRS"
	                                         : NULL;
	env.smtputf8 = s->mail.smtputf8;
	env.tls = s->tls_active ? s->tls_text : NULL;
	env.auth_user = s->auth_user;
	env.auth_header = var_smtpd_sasl_authenticated_header;
	env.add_missing_headers = s->auth_user != NULL;
	env.bare_newline = smtpd_bare_newline;
	smtpd_check_envelope(s, &env);
	ret = cleanup_open(&s->cleanup, &env, &error);
	free(rcpts);
	if (ret < 0) {
		msg_error("%s", error);
		session_write_error(s, errno);
		return -1;
	}
	if (s->cleanup.status & CLEANUP_STAT_RCPT) {
		/* virtual_alias_maps changed since RCPT: refused before the
		 * content, and the recipients stay for another try. */
		smtpd_reject(s, s->last_cmd, s->rcpts[0].addr, "%s",
		    s->cleanup.reject_text);
		cleanup_free(&s->cleanup);
		return -1;
	}
	smtpd_check_content(s);
	msg_info("%s: client=%s[%s]%s%s", s->cleanup.w.id, s->name, s->addr,
	    s->auth_user != NULL ? ", sasl_username=" : "",
	    s->auth_user != NULL
	        ? log_sanitize(s->auth_user, SMTPD_LOG_TEXT_MAX)
	        : "");
	return 0;
}

void
smtpd_session_content(struct smtpd_session *s)
{
	if (s->state != SMTPD_STATE_DATA && s->state != SMTPD_STATE_BDAT)
		msg_panic(
		    "smtpd_session_content in state %s", state_names[s->state]);
	if (s->data_start_ms == 0)
		s->data_start_ms = event_now_ms(s->loop);
}

/*
 * Refuses the content that cleanup refused (status bits) and ends the
 * transaction: after a 5xx to DATA or to any BDAT the client starts over
 * (RFC 5321 4.1.1.4, RFC 3030 2).
 */
static void
session_refuse(struct smtpd_session *s, const char *cmd, unsigned status)
{
	const char *rcpt = s->rcpts[0].addr;

	if (status & CLEANUP_STAT_SIZE)
		smtpd_reject(
		    s, cmd, rcpt, "552 5.3.4 Error: message file too big");
	else if (status & CLEANUP_STAT_HEADER)
		smtpd_reject(s, cmd, rcpt,
		    "552 5.3.4 Error: message header size exceeds limit");
	else if (status & CLEANUP_STAT_HOPS)
		/* RFC 3463 5.4.6: routing loop detected. */
		smtpd_reject(s, cmd, rcpt, "554 5.4.6 Error: too many hops");
	else if (status & CLEANUP_STAT_BARE)
		smtpd_reject(s, cmd, rcpt,
		    "550 5.5.2 Error: bare <CR> or <LF> received");
	else if (status & CLEANUP_STAT_REJECT)
		/* cleanup logged the header and the text. */
		smtpd_reply(s, "%s", s->cleanup.reject_text);
	s->errors++;
	smtpd_cmd_reset(s);
	smtpd_set_state(s, SMTPD_STATE_HELO);
}

/* The content is complete: refuse it, or commit it and wait. */
static void
session_end_of_content(struct smtpd_session *s, const char *cmd)
{
	const char *error = NULL;
	int err = 0;
	unsigned status = cleanup_finish(&s->cleanup, &error, &err);

	s->data_start_ms = 0;
	if (status & CLEANUP_STAT_WRITE) {
		msg_error("%s: %s", s->cleanup.w.id, error);
		session_write_error(s, err);
		smtpd_cmd_reset(s);
		smtpd_set_state(s, SMTPD_STATE_HELO);
		return;
	}
	if (status != 0) {
		session_refuse(s, cmd, status);
		return;
	}
	if (s->cleanup.discard) {
		/* Accepted as far as the client knows; the tmp file goes
		 * with the transaction. */
		session_log_action(
		    s, "discard", cmd, s->rcpts[0].addr, "message discarded");
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->cleanup.w.id);
		smtpd_cmd_ok(s, s->bdat ? "BDAT" : "DATA");
		smtpd_cmd_reset(s);
		smtpd_set_state(s, SMTPD_STATE_HELO);
		return;
	}
	/* A held message waits in hold/ for the administrator. */
	s->commit_path = queue_path(
	    s->cleanup.hold ? QUEUE_HOLD : QUEUE_INCOMING, s->cleanup.w.id);
	smtpd_set_state(s, SMTPD_STATE_COMMIT);
	commit_submit(smtpd_commit_pool, s->cleanup.w.fd, s->cleanup.w.tmp_path,
	    s->commit_path,
	    s->cleanup.hold ? smtpd_hold_dir : smtpd_incoming_dir,
	    session_committed, s);
}

/* One BDAT chunk is in: say so, or commit the message at LAST. */
static void
session_bdat_done(struct smtpd_session *s)
{
	if (s->bdat_skip) {
		/* The reply was chosen when the command came. */
		s->bdat_skip = 0;
		smtpd_set_state(s, s->bdat_resume);
		return;
	}
	if (s->bdat_last) {
		session_end_of_content(s, "BDAT");
		return;
	}
	if (s->cleanup.status != 0) {
		/* RFC 3030 2: after a 5xx the transaction is over. */
		session_refuse(s, "BDAT", s->cleanup.status);
		return;
	}
	smtpd_reply(
	    s, "250 2.0.0 Ok: %llu octets", (unsigned long long)s->bdat_size);
	smtpd_cmd_ok(s, "BDAT");
	smtpd_set_state(s, SMTPD_STATE_MAIL);
}

/* Content bytes in state DATA or BDAT; 0 when more input is needed. */
static int
session_content(struct smtpd_session *s)
{
	const char *data;
	size_t len, n;

	if (s->state == SMTPD_STATE_BDAT && s->bdat_left == 0) {
		session_bdat_done(s); /* BDAT 0 [LAST] */
		return 1;
	}
	data = stream_peek(&s->st, &len);
	if (len == 0) {
		if (s->st.eof)
			session_lost(s);
		return 0;
	}
	if (s->state == SMTPD_STATE_DATA) {
		n = cleanup_feed(&s->cleanup, data, len);
		stream_consume(&s->st, n);
		if (cleanup_done(&s->cleanup))
			session_end_of_content(s, "END-OF-MESSAGE");
		return 1;
	}
	n = len < s->bdat_left ? len : (size_t)s->bdat_left;
	if (!s->bdat_skip)
		cleanup_feed_raw(
		    &s->cleanup, data, n, s->mail.body == SMTP_BODY_BINARYMIME);
	stream_consume(&s->st, n);
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		session_bdat_done(s);
	return 1;
}

/* A client that sends before the greeting (RFC 5321 4.3.1) is a bot. */
static void
session_early_talker(struct smtpd_session *s)
{
	msg_info("reject: early talker from %s[%s]: sent %zu bytes before "
	         "the greeting",
	    s->name, s->addr, stream_buffered(&s->st));
	smtpd_reply(s, "554 5.5.1 Error: SMTP protocol synchronization");
	stream_consume(&s->st, stream_buffered(&s->st));
	smtpd_set_state(s, SMTPD_STATE_QUIT);
}

/* Without PIPELINING offered, a client must wait for each reply. */
static void
session_check_pipelining(struct smtpd_session *s)
{
	if (s->pipelining_logged || (s->ext != 0 && s->esmtp) ||
	    stream_buffered(&s->st) == 0 || s->state == SMTPD_STATE_DATA ||
	    s->state == SMTPD_STATE_BDAT)
		return;
	s->pipelining_logged = 1;
	msg_info("improper command pipelining after %s from %s[%s]",
	    s->last_cmd, s->name, s->addr);
}

/*
 * The read limit of a line: smtpd_command_line_limit, raised where AUTH
 * is offered to what an AUTH command with its initial response, or a
 * SASL response, may need (RFC 4954 4: 12288 octets).
 */
static size_t
session_line_max(const struct smtpd_session *s)
{
	size_t max = (size_t)var_smtpd_command_line_limit;

	if (smtpd_auth_offered(s) && max < SMTPD_AUTH_LINE_MAX)
		max = SMTPD_AUTH_LINE_MAX;
	return max;
}

/* Only AUTH and SASL responses may use the raised limit. */
static int
session_line_too_long(const struct smtpd_session *s)
{
	return s->line.len > (size_t)var_smtpd_command_line_limit &&
	       s->sasl == NULL &&
	       !str_prefix_ci(s->line.data, s->line.len, "AUTH ");
}

/*
 * Runs what is buffered: command lines, or message content. Stops while
 * a question to another service is out, while the commit runs, at QUIT,
 * before STARTTLS switches the stream, and while too many replies wait.
 */
static void
session_input(struct smtpd_session *s)
{
	enum stream_result r;

	while (!s->close_now && !s->waiting && !s->tls_starting &&
	       stream_unsent(&s->st) < SMTPD_OUT_HIGH) {
		switch (s->state) {
		case SMTPD_STATE_START:
		case SMTPD_STATE_COMMIT:
		case SMTPD_STATE_QUIT:
			return;
		case SMTPD_STATE_PREGREET:
			if (stream_buffered(&s->st) > 0)
				session_early_talker(s);
			else if (s->st.eof)
				session_lost(s);
			return;
		case SMTPD_STATE_DATA:
		case SMTPD_STATE_BDAT:
			if (!session_content(s))
				return;
			continue;
		default:
			break;
		}
		r = stream_next_line(
		    &s->st, &s->line, session_line_max(s), NULL);
		if (r == STREAM_AGAIN)
			return;
		if (r == STREAM_EOF) {
			session_lost(s);
			return;
		}
		s->commands++;
		s->cmd_start_ms = event_now_ms(s->loop);
		if (r == STREAM_TOOLONG || session_line_too_long(s)) {
			smtpd_reply(s, "500 5.5.2 Error: line too long");
			s->errors++;
		} else if (s->sasl != NULL) {
			smtpd_auth_response(s, buf_cstr(&s->line));
		} else {
			smtpd_cmd_dispatch(s, s->line.data, s->line.len);
			session_check_pipelining(s);
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
		/* qmgr logs from=/size=/nrcpt= when it takes the message;
		 * it never sees one in hold/. */
		msg_info("%s: %s, size=%llu", id,
		    s->cleanup.hold ? "held" : "queued",
		    (unsigned long long)s->cleanup.w.content_len);
		if (!s->cleanup.hold)
			cleanup_notify_qmgr(id);
		if (!s->dead) {
			smtpd_reply(s, "250 2.0.0 Ok: queued as %s", id);
			smtpd_cmd_ok(s, s->bdat ? "BDAT" : "DATA");
		}
	} else {
		msg_error("%s: queue file commit: %s", id, error);
		if (!s->dead)
			session_write_error(s, -result);
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
	s->cmd_start_ms = event_now_ms(s->loop);
	smtpd_session_resume(s);
}

/* Deadline bookkeeping: which limit fires next, and when. */
struct session_deadline {
	uint64_t at;
	const char *what; /* for the log line */
};

static void
deadline_min(struct session_deadline *d, uint64_t at, const char *what)
{
	if (d->at == 0 || at < d->at) {
		d->at = at;
		d->what = what;
	}
}

/* The nearest client deadline; at == 0 when none runs (waiting on
 * another service or the disk, which have deadlines of their own). */
static struct session_deadline
session_deadline(const struct smtpd_session *s)
{
	struct session_deadline d = {0, NULL};

	if (s->waiting || s->state == SMTPD_STATE_COMMIT ||
	    s->state == SMTPD_STATE_START)
		return d;
	if (s->state == SMTPD_STATE_PREGREET)
		return d; /* the greeting timer, not a timeout */
	deadline_min(&d,
	    s->last_io_ms + (uint64_t)var_smtpd_timeout * MS_PER_SEC, "idle");
	if (s->commands == 0)
		deadline_min(&d,
		    s->connect_ms +
		        (uint64_t)var_smtpd_first_command_timeout * MS_PER_SEC,
		    "first command");
	if (s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT)
		deadline_min(&d,
		    s->data_start_ms +
		        (uint64_t)var_smtpd_data_time_limit * MS_PER_SEC,
		    "content");
	else if (s->state != SMTPD_STATE_QUIT)
		deadline_min(&d,
		    s->cmd_start_ms +
		        (uint64_t)var_smtpd_command_time_limit * MS_PER_SEC,
		    "command");
	return d;
}

static void session_timeout(struct event_timer *t, void *ctx);

/* Sets the one session timer to ms from now. */
static void
session_timer(struct smtpd_session *s, uint64_t ms)
{
	if (s->timer == NULL)
		s->timer = event_timer_add(s->loop, ms, session_timeout, s);
	else
		event_timer_reset(s->timer, ms);
}

static void
session_arm(struct smtpd_session *s)
{
	struct session_deadline d = session_deadline(s);
	uint64_t now = event_now_ms(s->loop);

	if (s->state == SMTPD_STATE_PREGREET)
		return; /* the greeting timer is armed */
	if (d.at == 0)
		event_timer_del(&s->timer);
	else
		session_timer(s, d.at > now ? d.at - now : 0);
}

/* 1 while the session takes input (and replies have room). */
static int
session_wants_input(const struct smtpd_session *s)
{
	return !s->close_now && !s->waiting && !s->tls_starting &&
	       s->state != SMTPD_STATE_COMMIT && s->state != SMTPD_STATE_QUIT &&
	       s->state != SMTPD_STATE_START &&
	       stream_unsent(&s->st) < SMTPD_OUT_HIGH;
}

/* The common tail of every callback: write, wait for the right events,
 * or tear down (s may be freed). */
static void
session_after(struct smtpd_session *s)
{
	size_t before;

	session_write(s);
	/*
	 * Input already here gets no new READ event: run it now that
	 * whatever held it up is over. That is bytes in the stream's buffer,
	 * or plaintext TLS decoded but the stream has not taken yet.
	 */
	while (session_wants_input(s)) {
		before = stream_buffered(&s->st);
		if (before == 0) {
			if (!stream_input_ready(&s->st) ||
			    stream_fill(&s->st) != STREAM_OK)
				break;
			before = stream_buffered(&s->st);
		}
		session_input(s);
		session_write(s);
		if (stream_buffered(&s->st) == before)
			break; /* nothing taken: it needs more input */
	}
	/* STARTTLS: the 220 went out in plaintext; what follows is TLS. */
	if (s->tls_starting && stream_unsent(&s->st) == 0 && !s->close_now) {
		tls_stream_server(&s->st, smtpd_tls);
		s->tls_starting = 0;
		s->tls_active = 1;
	}
	if (s->close_now ||
	    (s->state == SMTPD_STATE_QUIT && stream_unsent(&s->st) == 0)) {
		session_close(s);
		return;
	}
	event_fd_set(
	    s->ev, stream_events(&s->st, session_wants_input(s) && !s->st.eof));
	session_arm(s);
}

void
smtpd_session_resume(struct smtpd_session *s)
{
	session_input(s);
	session_after(s);
}

/* The handshake finished: note the session for logs and Received:. */
static void
session_tls_info(struct smtpd_session *s)
{
	struct tls_info info;

	if (!s->tls_active || s->tls_text[0] != '\0' ||
	    tls_stream_info(&s->st, &info) < 0)
		return;
	snprintf(s->tls_text, sizeof(s->tls_text),
	    "%s with cipher %s (%d/%d bits)", info.protocol, info.cipher,
	    info.bits, info.alg_bits);
	/* "Anonymous" as Postfix says it: no client certificate. */
	msg_info("%s TLS connection established from %s[%s]: %s%s%s",
	    info.resumed ? "Resumed" : "Anonymous", s->name, s->addr,
	    s->tls_text, info.sni[0] != '\0' ? " sni=" : "",
	    info.sni[0] != '\0' ? log_sanitize(info.sni, TLS_SNI_MAX) : "");
}

static void
session_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct smtpd_session *s = ctx;
	enum stream_result r;
	const char *why;

	(void)ev;
	(void)fd;
	(void)events;
	session_write(s);
	/* Input is only read while it may be processed: a hang-up then
	 * shows when reading resumes. In PREGREET, reading is the test. */
	if (session_wants_input(s) ||
	    (s->state == SMTPD_STATE_PREGREET && !s->close_now)) {
		r = stream_fill(&s->st);
		if (r == STREAM_OK)
			s->last_io_ms = event_now_ms(s->loop);
		else if (r == STREAM_ERROR) {
			why = s->tls_active ? tls_stream_error(&s->st) : NULL;
			if (why != NULL)
				msg_info("TLS error from %s[%s]: %s", s->name,
				    s->addr, why);
			session_lost(s);
		}
		session_tls_info(s);
	}
	session_input(s);
	session_after(s);
}

static void
session_timeout(struct event_timer *t, void *ctx)
{
	struct smtpd_session *s = ctx;
	struct session_deadline d;

	(void)t;
	if (s->state == SMTPD_STATE_PREGREET) {
		session_greet(s);
		session_input(s);
		session_after(s);
		return;
	}
	d = session_deadline(s);
	if (d.at == 0 || d.at > event_now_ms(s->loop)) {
		session_arm(s); /* moved on meanwhile */
		return;
	}
	if (s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT)
		msg_info("timeout (%s) after %s (%llu bytes) from %s[%s]",
		    d.what, s->last_cmd, (unsigned long long)s->cleanup.size,
		    s->name, s->addr);
	else
		msg_info("timeout (%s) after %s from %s[%s]", d.what,
		    s->last_cmd, s->name, s->addr);
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

static void
session_greet_checked(struct smtpd_session *s, int result)
{
	s->waiting = 0;
	if (result == SMTPD_CHECK_PASS)
		smtpd_reply(s, "220 %s", var_smtpd_banner);
	else
		s->access_denied = 1;
	smtpd_session_resume(s);
}

/*
 * The greeting (RFC 5321 4.3.1), after any pause. Without
 * smtpd_delay_reject the client restrictions come first, as in Postfix:
 * a rejected client gets the reject instead of the greeting, and 503 to
 * every command but QUIT (RFC 5321 3.1).
 */
static void
session_greet(struct smtpd_session *s)
{
	smtpd_set_state(s, SMTPD_STATE_CONNECTED);
	s->connect_ms = s->cmd_start_ms = s->last_io_ms = event_now_ms(s->loop);
	switch (smtpd_check(s, SMTPD_CHECK_CONNECT, session_greet_checked)) {
	case SMTPD_CHECK_PASS:
		smtpd_reply(s, "220 %s", var_smtpd_banner);
		break;
	case SMTPD_CHECK_PENDING:
		s->waiting = 1;
		break;
	default:
		s->access_denied = 1;
		break;
	}
}

/* The client may stay: hold the greeting back, or send it. */
static void
session_start(struct smtpd_session *s)
{
	if (var_smtpd_greet_pause > 0 && !s->tls_active) {
		smtpd_set_state(s, SMTPD_STATE_PREGREET);
		session_timer(s, (uint64_t)var_smtpd_greet_pause * MS_PER_SEC);
		return;
	}
	session_greet(s);
}

static void
session_anvil_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	long long count = 0, rate = 0;

	s->waiting = 0;
	if (reply == NULL || attr_get_int(reply, "count", &count) < 0 ||
	    attr_get_int(reply, "rate", &rate) < 0) {
		/* The limit fails open: mail matters more than the count. */
		msg_warn("anvil: %s; not limiting %s",
		    error != NULL ? error : "malformed reply", s->addr);
	} else {
		s->anvil_counted = 1;
	}
	if (var_smtpd_client_connection_limit > 0 &&
	    count > var_smtpd_client_connection_limit) {
		msg_warn("too many connections from %s[%s]: %lld (limit %lld)",
		    s->name, s->addr, count, var_smtpd_client_connection_limit);
		smtpd_reply(s,
		    "421 4.7.0 %s Error: too many connections from %s",
		    var_myhostname, s->addr);
		smtpd_set_state(s, SMTPD_STATE_QUIT);
	} else if (var_smtpd_client_connection_rate_limit > 0 &&
	           rate > var_smtpd_client_connection_rate_limit) {
		msg_warn("connection rate limit exceeded by %s[%s]: %lld in "
		         "%llds (limit %lld)",
		    s->name, s->addr, rate, var_anvil_rate_time_unit,
		    var_smtpd_client_connection_rate_limit);
		smtpd_reply(s,
		    "421 4.7.0 %s Error: too many connections from %s",
		    var_myhostname, s->addr);
		smtpd_set_state(s, SMTPD_STATE_QUIT);
	} else {
		session_start(s);
	}
	smtpd_session_resume(s);
}

/* Does anvil count this client (limits set, not exempt)? */
static int
session_limited(const struct smtpd_session *s)
{
	return s->is_inet &&
	       (var_smtpd_client_connection_limit > 0 ||
	           var_smtpd_client_connection_rate_limit > 0) &&
	       !smtpd_check_event_exempt(s->addr);
}

void
smtpd_session_create(
    int fd, const struct server_listener *l, struct event_loop *loop)
{
	struct smtpd_session *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->fd = fd;
	s->is_inet = l->is_inet;
	session_peer(s, fd, l);
	stream_init(&s->st, fd);
	/* The largest limit plus its CR (stream.h). */
	buf_init(&s->line, (var_smtpd_command_line_limit > SMTPD_AUTH_LINE_MAX
	                           ? (size_t)var_smtpd_command_line_limit
	                           : SMTPD_AUTH_LINE_MAX) +
	                       1);
	s->state = SMTPD_STATE_START;
	s->last_cmd = "CONNECT";
	s->connect_ms = s->last_io_ms = s->cmd_start_ms = event_now_ms(loop);
	s->ev = event_fd_add(loop, fd, 0, session_io, s);
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	/* Full: the other smtpd processes take the next connections. */
	if (++session_count == var_smtpd_max_clients)
		server_accept_pause(1);
	msg_info("connect from %s[%s]", s->name, s->addr);
	if (var_smtpd_tls_wrappermode) {
		if (smtpd_tls == NULL) {
			msg_warn("smtpd_tls_wrappermode without a certificate: "
			         "dropping %s[%s]",
			    s->name, s->addr);
			s->close_now = 1;
			session_after(s);
			return;
		}
		tls_stream_server(&s->st, smtpd_tls);
		s->tls_active = 1;
	}
	if (session_limited(s)) {
		smtpd_anvil_request(s, "connect", session_anvil_reply);
		session_after(s);
		return;
	}
	session_start(s);
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
