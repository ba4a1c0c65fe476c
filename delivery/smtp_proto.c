/* SPDX-License-Identifier: MIT */
/*
 * One SMTP session (RFC 5321) with one peer: the greeting, EHLO (HELO
 * when EHLO is refused), STARTTLS and AUTH (smtp_tls.c, smtp_sasl.c),
 * then per message MAIL FROM, RCPT TO and DATA or BDAT (RFC 3030), all
 * in one write when the peer offers PIPELINING (RFC 2920: DATA is the
 * last command of the group). Every read and write has the deadline of
 * its stage (smtp_*_timeout) and every reply a size limit
 * (mail/smtp_reply.h), so a silent or babbling peer costs a deferral.
 *
 * What the peer says about a recipient is final for it here; what goes
 * wrong with the session (lost, timed out, a 4xx to MAIL or DATA, a
 * broken reply) leaves the recipients pending for the next exchanger -
 * except after the final dot, when the peer may have the message
 * already: then they are deferred (RFC 5321 6.1, Postfix's "message may
 * be sent more than once").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/mime_7bit.h"
#include "mail/params.h"
#include "mail/smtp_param.h"
#include "tls/tls.h"
#include "smtp.h"

#define SMTP_MS_PER_SEC   1000
#define SMTP_CMD_MAX      4096
#define SMTP_CHUNK        65536
/* Output queued before a flush while sending the body. */
#define SMTP_FLUSH_AT     (256 * 1024)
#define SMTP_WHY_MAX      1024

static int
smtp_ms(long long seconds)
{
	return (int)(seconds * SMTP_MS_PER_SEC);
}

/* Sets why and dsn (class 4 unless given otherwise) for a failure. */
void
smtp_sess_fail(struct smtp_sess *s, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	buf_reset(&s->why);
	va_start(ap, fmt);
	if (buf_vprintf(&s->why, fmt, ap) < 0)
		buf_truncate(&s->why, s->why.len); /* cut: still says why */
	va_end(ap);
	snprintf(s->dsn, sizeof(s->dsn), "%s", dsn);
}

/* The failure of a read or write, in Postfix's words. */
static void
smtp_io_fail(struct smtp_sess *s, int rc, const char *stage,
    const char *detail)
{
	const char *tls = s->st.tr != NULL ? tls_stream_error(&s->st) : NULL;

	switch (rc) {
	case SMTP_REPLY_TIMEOUT:
		smtp_sess_fail(s, "4.4.2", "conversation with %s timed out while %s",
		    s->relay_short, stage);
		break;
	case SMTP_REPLY_EOF:
		smtp_sess_fail(s, "4.4.2", "lost connection with %s while %s",
		    s->relay_short, stage);
		break;
	case SMTP_REPLY_TOOLONG:
		smtp_sess_fail(s, "4.5.0",
		    "host %s sent a reply line that is too long while %s",
		    s->relay_short, stage);
		break;
	case SMTP_REPLY_BAD:
		smtp_sess_fail(s, "4.5.0",
		    "host %s sent a malformed reply while %s: %s", s->relay_short,
		    stage, detail != NULL ? detail : "protocol error");
		break;
	default:
		smtp_sess_fail(s, "4.4.2", "error talking to %s while %s: %s",
		    s->relay_short, stage,
		    tls != NULL ? tls : strerror(errno));
		break;
	}
	s->reusable = 0;
}

/* Queues one command line. */
int
smtp_cmd(struct smtp_sess *s, const char *fmt, ...)
{
	char line[SMTP_CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		msg_panic("SMTP command too long");
	/* AUTH lines carry the password, only base64-encoded. */
	msg_debug("> %s: %s", s->relay_short, s->secret ? "(AUTH data)" : line);
	memcpy(line + n, "\r\n", 2);
	return stream_write(&s->st, line, (size_t)n + 2);
}

int
smtp_flush(struct smtp_sess *s, const char *stage, long long timeout)
{
	enum stream_result r = stream_flush(&s->st, smtp_ms(timeout));

	if (r == STREAM_OK)
		return 0;
	smtp_io_fail(s,
	    r == STREAM_TIMEOUT ? SMTP_REPLY_TIMEOUT
	    : r == STREAM_EOF   ? SMTP_REPLY_EOF
	                        : SMTP_REPLY_ERROR,
	    stage, NULL);
	return -1;
}

/* Reads one reply into s->reply: its code, or -1 (why is set). */
int
smtp_read(struct smtp_sess *s, const char *stage, long long timeout)
{
	const char *err = NULL;
	int rc;

	smtp_reply_reset(&s->reply);
	rc = smtp_reply_read(&s->st, &s->reply, smtp_ms(timeout), &err);
	if (rc != SMTP_REPLY_OK) {
		smtp_io_fail(s, rc, stage, err);
		return -1;
	}
	msg_debug("< %s: %s", s->relay_short, buf_cstr(&s->reply.text));
	return s->reply.code;
}

/* The reply's enhanced status, or a default of its class. */
static const char *
smtp_reply_dsn(const struct smtp_sess *s, char *out, size_t n)
{
	int cls = s->reply.code / 100;

	if (s->reply.dsn[0] != '\0')
		snprintf(out, n, "%s", s->reply.dsn);
	else
		snprintf(out, n, "%d.0.0", cls == 2 || cls == 4 || cls == 5 ? cls : 4);
	return out;
}

/* A reply that ends the session at this exchanger: why = what it said. */
void
smtp_sess_fail_reply(struct smtp_sess *s, const char *cmd)
{
	char dsn[SMTP_DSN_MAX];

	smtp_reply_dsn(s, dsn, sizeof(dsn));
	dsn[0] = '4'; /* another exchanger may take it: defer at worst */
	smtp_sess_fail(s, dsn, "host %s said: %s (in reply to %s command)",
	    s->relay_short, buf_cstr(&s->reply.text), cmd);
	s->reusable = 0;
}

/* The peer's answer is final for r. */
static void
smtp_rcpt_reply(struct smtp_sess *s, struct smtp_msg *m, struct smtp_rcpt *r,
    const char *cmd)
{
	char dsn[SMTP_DSN_MAX], *log_text;
	int code = s->reply.code;
	const char *result = code / 100 == 2 ? "sent"
	                     : code / 100 == 5 ? "bounce" : "defer";

	smtp_reply_dsn(s, dsn, sizeof(dsn));
	if (code / 100 == 2)
		log_text = xasprintf("%s", buf_cstr(&s->reply.text));
	else
		log_text = xasprintf("host %s said: %s (in reply to %s command)",
		    s->relay_short, buf_cstr(&s->reply.text), cmd);
	smtp_rcpt_set(m, r, result, dsn, s->t.host, "smtp", s->relay,
	    buf_cstr(&s->reply.text), log_text);
	free(log_text);
}

void
smtp_sess_open(struct smtp_sess *s, const struct smtp_msg *m,
    const struct smtp_target *t, int fd)
{
	memset(s, 0, sizeof(*s));
	s->open = 1;
	stream_init(&s->st, fd);
	s->t = *t;
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", t->host, t->addr,
	    t->port);
	snprintf(s->relay_short, sizeof(s->relay_short), "%s[%s]", t->host,
	    t->addr);
	s->dest = xstrdup(m->nexthop);
	smtp_reply_init(&s->reply);
	buf_init(&s->why, SMTP_WHY_MAX);
}

void
smtp_sess_close(struct smtp_sess *s, int quit)
{
	if (!s->open)
		return;
	if (quit && s->reusable && smtp_cmd(s, "QUIT") == 0 &&
	    stream_flush(&s->st, smtp_ms(var_smtp_quit_timeout)) == STREAM_OK)
		(void)smtp_read(s, "sending QUIT", var_smtp_quit_timeout);
	stream_close(&s->st);
	smtp_reply_free(&s->reply);
	buf_free(&s->why);
	free(s->dest);
	s->dest = NULL;
	s->open = 0;
}

/* EHLO, or HELO when the peer does not know EHLO. */
int
smtp_hello(struct smtp_sess *s, long long timeout)
{
	int code;

	memset(&s->ehlo, 0, sizeof(s->ehlo));
	if (smtp_cmd(s, "EHLO %s", var_smtp_helo_name) < 0 ||
	    smtp_flush(s, "performing the EHLO handshake", timeout) < 0 ||
	    (code = smtp_read(s, "performing the EHLO handshake", timeout)) < 0)
		return -1;
	if (code / 100 == 2) {
		smtp_ehlo_parse(&s->reply, &s->ehlo);
		return 0;
	}
	if (code / 100 != 5) {
		smtp_sess_fail_reply(s, "EHLO");
		return -1;
	}
	if (smtp_cmd(s, "HELO %s", var_smtp_helo_name) < 0 ||
	    smtp_flush(s, "performing the HELO handshake",
	        var_smtp_helo_timeout) < 0 ||
	    (code = smtp_read(s, "performing the HELO handshake",
	         var_smtp_helo_timeout)) < 0)
		return -1;
	if (code / 100 != 2) {
		smtp_sess_fail_reply(s, "HELO");
		return -1;
	}
	return 0;
}

enum smtp_sess_result
smtp_sess_setup(struct smtp_sess *s, struct smtp_msg *m, int no_tls)
{
	enum smtp_sess_result r;
	int code;

	code = smtp_read(s, "receiving the initial server greeting",
	    var_smtp_greeting_timeout);
	if (code < 0)
		return SMTP_SESS_NEXT;
	if (code / 100 != 2) {
		char dsn[SMTP_DSN_MAX];

		smtp_reply_dsn(s, dsn, sizeof(dsn));
		dsn[0] = '4';
		smtp_sess_fail(s, dsn, "host %s refused to talk to me: %s",
		    s->relay_short, buf_cstr(&s->reply.text));
		return SMTP_SESS_NEXT;
	}
	if (smtp_hello(s, var_smtp_helo_timeout) < 0)
		return SMTP_SESS_NEXT;
	if ((r = smtp_tls_start(s, m, no_tls)) != SMTP_SESS_OK)
		return r;
	return smtp_sasl_auth(s, m);
}

/* ---- the message ---------------------------------------------------- */

static int
smtp_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* The whole content, for the 8-bit to 7-bit conversion. */
static int
smtp_content_load(const struct smtp_msg *m, struct buf *out)
{
	char chunk[SMTP_CHUNK];
	uint64_t off = 0, want;
	ssize_t n;

	while (off < m->q.content_len) {
		want = m->q.content_len - off;
		if (want > sizeof(chunk))
			want = sizeof(chunk);
		n = pread(m->q.fd, chunk, (size_t)want,
		    m->q.content_off + (off_t)off);
		if (n <= 0 || buf_append(out, chunk, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Writes content (from mem, or the queue file when mem is NULL),
 * dot-stuffed for DATA when stuff is set, ending in CRLF.
 */
static int
smtp_send_body(struct smtp_sess *s, const struct smtp_msg *m,
    const char *mem, size_t memlen, int stuff)
{
	char chunk[SMTP_CHUNK];
	const char *p, *start;
	uint64_t off = 0, total = mem != NULL ? memlen : m->q.content_len;
	size_t len;
	ssize_t n;
	int bol = 1;
	char last[2] = {'\r', '\n'};

	while (off < total) {
		if (mem != NULL) {
			p = mem + off;
			len = (size_t)(total - off);
			if (len > SMTP_CHUNK)
				len = SMTP_CHUNK;
		} else {
			len = (size_t)(total - off);
			if (len > sizeof(chunk))
				len = sizeof(chunk);
			n = pread(m->q.fd, chunk, len,
			    m->q.content_off + (off_t)off);
			if (n <= 0) {
				smtp_sess_fail(s, "4.3.0",
				    "error reading the queue file: %s",
				    n < 0 ? strerror(errno) : "short file");
				s->reusable = 0;
				return -1;
			}
			len = (size_t)n;
			p = chunk;
		}
		off += len;
		start = p;
		for (const char *e = p + len; p < e; p++) {
			if (bol && *p == '.' && stuff) {
				if (stream_write(&s->st, start,
				        (size_t)(p - start)) < 0 ||
				    stream_write(&s->st, ".", 1) < 0)
					goto overflow;
				start = p;
			}
			bol = *p == '\n';
		}
		if (stream_write(&s->st, start, (size_t)(p - start)) < 0)
			goto overflow;
		if (len >= 2) {
			last[0] = p[-2];
			last[1] = p[-1];
		} else {
			last[0] = last[1];
			last[1] = p[-1];
		}
		if (stream_unsent(&s->st) >= SMTP_FLUSH_AT &&
		    smtp_flush(s, "sending message body",
		        var_smtp_data_xfer_timeout) < 0)
			return -1;
	}
	if ((total == 0 || last[0] != '\r' || last[1] != '\n') &&
	    stream_write(&s->st, "\r\n", 2) < 0)
		goto overflow;
	return 0;
overflow:
	smtp_sess_fail(s, "4.3.0", "output buffer overflow");
	s->reusable = 0;
	return -1;
}

/* Appends to a command being built; a line that would not fit panics
 * in smtp_cmd, and parameters are bounded far below SMTP_CMD_MAX. */
static void MTA_PRINTF(2, 3)
smtp_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	if (rc < 0)
		msg_panic("SMTP command too long");
}

static void
smtp_mail_cmd(struct smtp_sess *s, const struct smtp_msg *m, uint64_t size,
    int eight)
{
	struct buf cmd, x;

	buf_init(&cmd, SMTP_CMD_MAX - 3);
	buf_init(&x, SMTP_CMD_MAX);
	smtp_add(&cmd, "MAIL FROM:<%s>", m->sender);
	if (s->ehlo.ext & SMTP_EHLO_SIZE)
		smtp_add(&cmd, " SIZE=%llu", (unsigned long long)size);
	if (eight && str_eq_ci(m->body, "BINARYMIME") &&
	    (s->ehlo.ext & SMTP_EHLO_BINARYMIME) &&
	    (s->ehlo.ext & SMTP_EHLO_CHUNKING))
		smtp_add(&cmd, " BODY=BINARYMIME");
	else if (eight && (s->ehlo.ext & SMTP_EHLO_8BITMIME))
		smtp_add(&cmd, " BODY=8BITMIME");
	if (m->smtputf8 && (s->ehlo.ext & SMTP_EHLO_SMTPUTF8))
		smtp_add(&cmd, " SMTPUTF8");
	if (s->ehlo.ext & SMTP_EHLO_DSN) {
		if (m->ret != NULL && *m->ret != '\0')
			smtp_add(&cmd, " RET=%s", m->ret);
		if (m->envid != NULL && *m->envid != '\0' &&
		    xtext_encode(m->envid, strlen(m->envid), &x) == 0)
			smtp_add(&cmd, " ENVID=%s", buf_cstr(&x));
	}
	(void)smtp_cmd(s, "%s", buf_cstr(&cmd));
	buf_free(&cmd);
	buf_free(&x);
}

static void
smtp_rcpt_cmd(struct smtp_sess *s, const struct smtp_rcpt *r)
{
	struct buf cmd, x;
	const char *semi;
	unsigned nt = r->q->notify;

	buf_init(&cmd, SMTP_CMD_MAX - 3);
	buf_init(&x, SMTP_CMD_MAX);
	smtp_add(&cmd, "RCPT TO:<%s>", r->q->addr);
	if ((s->ehlo.ext & SMTP_EHLO_DSN) && nt != 0) {
		if (nt & QRCPT_NOTIFY_NEVER)
			smtp_add(&cmd, " NOTIFY=NEVER");
		else
			smtp_add(&cmd, " NOTIFY=%s%s%s%s%s",
			    nt & QRCPT_NOTIFY_SUCCESS ? "SUCCESS" : "",
			    (nt & QRCPT_NOTIFY_SUCCESS) &&
			            (nt & (QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY))
			        ? "," : "",
			    nt & QRCPT_NOTIFY_FAILURE ? "FAILURE" : "",
			    (nt & QRCPT_NOTIFY_FAILURE) && (nt & QRCPT_NOTIFY_DELAY)
			        ? "," : "",
			    nt & QRCPT_NOTIFY_DELAY ? "DELAY" : "");
	}
	if ((s->ehlo.ext & SMTP_EHLO_DSN) && r->q->orcpt[0] != '\0' &&
	    (semi = strchr(r->q->orcpt, ';')) != NULL &&
	    str_prefix_ci(r->q->orcpt, (size_t)(semi - r->q->orcpt), "rfc822") &&
	    semi - r->q->orcpt == 6 &&
	    xtext_encode(semi + 1, strlen(semi + 1), &x) == 0)
		smtp_add(&cmd, " ORCPT=rfc822;%s", buf_cstr(&x));
	(void)smtp_cmd(s, "%s", buf_cstr(&cmd));
	buf_free(&cmd);
	buf_free(&x);
}

/* Checks that depend on what the peer offers; 1 when all is decided. */
static int
smtp_peer_checks(struct smtp_sess *s, struct smtp_msg *m, struct buf *body,
    int *eight_r, int *converted_r)
{
	char text[SMTP_WHY_MAX];
	const char *err = NULL;
	int i;

	*eight_r = str_eq_ci(m->body, "8BITMIME") ||
	           str_eq_ci(m->body, "BINARYMIME");
	*converted_r = 0;
	if (m->smtputf8 && !(s->ehlo.ext & SMTP_EHLO_SMTPUTF8)) {
		snprintf(text, sizeof(text),
		    "SMTPUTF8 is required, but was not offered by host %s",
		    s->relay_short);
		for (i = 0; i < m->n; i++)
			if (smtp_has_8bit(m->sender) ||
			    smtp_has_8bit(m->r[i].q->addr))
				smtp_rcpt_set(m, &m->r[i], "bounce", "5.6.7",
				    s->t.host, "x-tern", s->relay, text, NULL);
	}
	if ((s->ehlo.ext & SMTP_EHLO_SIZE) && s->ehlo.size_max > 0 &&
	    m->q.content_len > s->ehlo.size_max) {
		snprintf(text, sizeof(text),
		    "message size %llu exceeds size limit %llu of server %s",
		    (unsigned long long)m->q.content_len,
		    (unsigned long long)s->ehlo.size_max, s->relay_short);
		for (i = 0; i < m->n; i++)
			smtp_rcpt_set(m, &m->r[i], "bounce", "5.3.4", s->t.host,
			    "x-tern", s->relay, text, NULL);
	}
	if (smtp_pending(m) == 0)
		return 1;
	if (*eight_r && !(s->ehlo.ext & SMTP_EHLO_8BITMIME)) {
		if (smtp_content_load(m, body) < 0) {
			smtp_sess_fail(s, "4.3.0", "error reading the queue file");
			return -1;
		}
		*eight_r = 0;
		if (mime_has_8bit(body->data, body->len)) {
			struct buf out;

			buf_init(&out, body->max);
			if (mime_7bit_convert(body->data, body->len, &out, &err) <
			    0) {
				snprintf(text, sizeof(text),
				    "host %s does not accept 8-bit mail and the "
				    "message cannot be converted to 7-bit: %s",
				    s->relay_short, err);
				for (i = 0; i < m->n; i++)
					smtp_rcpt_set(m, &m->r[i], "bounce",
					    "5.6.3", s->t.host, "x-tern",
					    s->relay, text, NULL);
				buf_free(&out);
				return 1;
			}
			buf_free(body);
			*body = out;
			*converted_r = 1;
		}
	}
	return 0;
}

/* The final reply to the content: the answer for every accepted one. */
static void
smtp_final(struct smtp_sess *s, struct smtp_msg *m, const char *cmd)
{
	int i, dsn_peer = (s->ehlo.ext & SMTP_EHLO_DSN) != 0;

	for (i = 0; i < m->n; i++) {
		struct smtp_rcpt *r = &m->r[i];

		if (r->state != SMTP_RCPT_PENDING || !r->accepted)
			continue;
		if (s->reply.code / 100 == 2 &&
		    (r->q->notify & QRCPT_NOTIFY_SUCCESS)) {
			/* RFC 3461 4.1: a DSN peer reports success itself;
			 * without DSN support this host says "relayed". */
			if (dsn_peer)
				r->dsn_passed = 1;
			else
				r->action = "relayed";
		}
		smtp_rcpt_reply(s, m, r, cmd);
	}
}

/* Recipients accepted in this transaction go back to pending. */
static void
smtp_unaccept(struct smtp_msg *m)
{
	int i;

	for (i = 0; i < m->n; i++)
		m->r[i].accepted = 0;
}

enum smtp_sess_result
smtp_sess_mail(struct smtp_sess *s, struct smtp_msg *m)
{
	int pipe = (s->ehlo.ext & SMTP_EHLO_PIPELINING) != 0;
	int bdat = (s->ehlo.ext & SMTP_EHLO_CHUNKING) != 0;
	int i, code, eight, converted, nacc = 0, sent_data = 0;
	enum smtp_sess_result res = SMTP_SESS_NEXT;
	struct buf body;
	uint64_t size;
	const char *data_cmd;

	s->reusable = 0;
	smtp_unaccept(m);
	buf_init(&body, (size_t)m->q.content_len * 4 + SMTP_CHUNK);
	code = smtp_peer_checks(s, m, &body, &eight, &converted);
	if (code != 0) {
		/* Decided without a transaction: the session is still clean. */
		s->reusable = code > 0;
		res = code > 0 ? SMTP_SESS_STOP : SMTP_SESS_NEXT;
		goto out;
	}
	size = converted ? body.len : m->q.content_len;
	smtp_mail_cmd(s, m, size, eight);
	if (!pipe && (smtp_flush(s, "sending MAIL FROM", var_smtp_mail_timeout) <
	                     0 ||
	                 (code = smtp_read(s, "sending MAIL FROM",
	                      var_smtp_mail_timeout)) < 0))
		goto out;
	for (i = 0; pipe && i < m->n; i++)
		if (m->r[i].state == SMTP_RCPT_PENDING)
			smtp_rcpt_cmd(s, &m->r[i]);
	if (pipe) {
		if (!bdat)
			(void)smtp_cmd(s, "DATA");
		if (smtp_flush(s, "sending MAIL FROM", var_smtp_mail_timeout) < 0 ||
		    (code = smtp_read(s, "sending MAIL FROM",
		         var_smtp_mail_timeout)) < 0)
			goto out;
	}
	if (code / 100 != 2) {
		if (code / 100 == 5) {
			for (i = 0; i < m->n; i++)
				if (m->r[i].state == SMTP_RCPT_PENDING)
					smtp_rcpt_reply(s, m, &m->r[i],
					    "MAIL FROM");
			res = SMTP_SESS_STOP;
		} else
			smtp_sess_fail_reply(s, "MAIL FROM");
		/* Pipelined replies still on the way: no reuse. */
		s->reusable = !pipe;
		if (!pipe && res == SMTP_SESS_STOP && smtp_cmd(s, "RSET") == 0 &&
		    smtp_flush(s, "sending RSET", var_smtp_rset_timeout) == 0 &&
		    smtp_read(s, "sending RSET", var_smtp_rset_timeout) / 100 != 2)
			s->reusable = 0;
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		struct smtp_rcpt *r = &m->r[i];

		if (r->state != SMTP_RCPT_PENDING)
			continue;
		if (!pipe && (smtp_rcpt_cmd(s, r),
		                 smtp_flush(s, "sending RCPT TO",
		                     var_smtp_rcpt_timeout) < 0))
			goto out;
		if ((code = smtp_read(s, "sending RCPT TO",
		         var_smtp_rcpt_timeout)) < 0)
			goto out;
		if (code / 100 == 2) {
			r->accepted = 1;
			nacc++;
		} else
			smtp_rcpt_reply(s, m, r, "RCPT TO");
	}
	if (bdat) {
		if (nacc == 0) {
			res = SMTP_SESS_OK;
			goto rset;
		}
		data_cmd = "BDAT";
		(void)smtp_cmd(s, "BDAT %llu LAST", (unsigned long long)size);
		if (smtp_send_body(s, m, converted ? body.data : NULL, body.len,
		        0) < 0)
			goto out;
	} else {
		data_cmd = "end of DATA";
		if (!pipe) {
			if (nacc == 0) {
				res = SMTP_SESS_OK;
				goto rset;
			}
			(void)smtp_cmd(s, "DATA");
			if (smtp_flush(s, "sending DATA command",
			        var_smtp_data_init_timeout) < 0)
				goto out;
		}
		if ((code = smtp_read(s, "sending DATA command",
		         var_smtp_data_init_timeout)) < 0)
			goto out;
		if (code != 354) {
			if (nacc == 0) {
				res = SMTP_SESS_OK;
				goto rset;
			}
			if (code / 100 == 5) {
				smtp_final(s, m, "DATA");
				res = SMTP_SESS_OK;
				goto rset;
			}
			if (code / 100 == 2) {
				smtp_sess_fail(s, "4.5.0",
				    "host %s sent an unexpected reply to DATA "
				    "(no 354): %s",
				    s->relay_short, buf_cstr(&s->reply.text));
				s->reusable = 0;
			} else
				smtp_sess_fail_reply(s, "DATA");
			goto out;
		}
		if (nacc == 0) {
			/* RFC 2920 3.1: an empty message ends it. */
			(void)smtp_cmd(s, ".");
			if (smtp_flush(s, "sending end of data",
			        var_smtp_data_done_timeout) < 0 ||
			    smtp_read(s, "sending end of data",
			        var_smtp_data_done_timeout) < 0)
				goto out;
			s->reusable = 1;
			res = SMTP_SESS_OK;
			goto out;
		}
		if (smtp_send_body(s, m, converted ? body.data : NULL, body.len,
		        1) < 0)
			goto out;
		(void)smtp_cmd(s, ".");
	}
	if (smtp_flush(s, "sending message body", var_smtp_data_xfer_timeout) <
	    0)
		goto out;
	sent_data = 1;
	if (smtp_read(s,
	        "sending end of data -- message may be sent more than once",
	        var_smtp_data_done_timeout) < 0)
		goto out;
	smtp_final(s, m, data_cmd);
	s->reusable = 1;
	res = SMTP_SESS_OK;
	goto out;
rset:
	if (smtp_cmd(s, "RSET") == 0 &&
	    smtp_flush(s, "sending RSET", var_smtp_rset_timeout) == 0 &&
	    smtp_read(s, "sending RSET", var_smtp_rset_timeout) / 100 == 2)
		s->reusable = 1;
out:
	if (res == SMTP_SESS_NEXT) {
		if (sent_data) {
			/* The peer may have it: no second exchanger. */
			for (i = 0; i < m->n; i++)
				if (m->r[i].state == SMTP_RCPT_PENDING &&
				    m->r[i].accepted)
					smtp_rcpt_set(m, &m->r[i], "defer",
					    s->dsn, s->t.host, "x-tern", s->relay,
					    buf_cstr(&s->why), NULL);
			res = SMTP_SESS_STOP;
		}
		smtp_unaccept(m);
		s->reusable = 0;
	}
	buf_free(&body);
	return res;
}
