/* SPDX-License-Identifier: MIT */
/*
 * Delivery status notifications, written as new queue messages: a
 * multipart/report (RFC 6522) of a text for people, the machine-readable
 * message/delivery-status (RFC 3464) and the original message or its
 * header section, as the sender asked with RET (RFC 3461 4.3). ENVID and
 * ORCPT come back as Original-Envelope-Id and Original-Recipient (RFC
 * 3461 4.2, 4.4). Messages sent with SMTPUTF8 get the RFC 6533 types.
 * Notices carry the null sender (RFC 5321 4.5.5), so no notice is ever
 * sent about one, and Auto-Submitted: auto-replied (RFC 3834). What goes
 * in each part follows Postfix's bounce_notify_util.c.
 *
 * Everything taken from the queue file or the status log (addresses, the
 * remote server's reply, ENVID) is written through one sanitising,
 * folding writer: it cannot end a header line, forge a field or a MIME
 * boundary, or exceed the 998-octet line limit of RFC 5322 2.1.1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/cleanup.h"
#include "mail/dsn.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/status_log.h"

/* RFC 5322 2.1.1: lines SHOULD stay within 78 octets, MUST within 998.
 * Text is folded at the first space past DSN_FOLD_AT and cut hard at
 * DSN_LINE_HARD (a word that long has no better place to break). */
#define DSN_FOLD_AT       76
#define DSN_LINE_HARD     980
/* Continuation of a header field (RFC 5322 2.2.3) and of a line in the
 * text part; both keep a boundary from starting a line. */
#define DSN_FOLD_FIELD    "\r\n "
#define DSN_FOLD_TEXT     "\r\n    "
/* Pending output is handed to the queue file writer past this much. */
#define DSN_FLUSH         (16 * 1024)
#define DSN_OUT_MAX       (64 * 1024)
/* RFC 2046 5.1.1: a boundary is 1 to 70 characters. */
#define DSN_BOUNDARY_SIZE 71
#define DSN_ERR_SIZE      512
#define DSN_HEX_CODEPOINT 16 /* "\x{10FFFF}" and a NUL */

struct emit {
	struct qfile_writer *w;
	struct buf b; /* pending output */
	size_t col;   /* octets on the current line */
	int utf8;     /* UTF-8 may be written (RFC 6533) */
};

static __thread char dsn_err[DSN_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define dsn_error(...) str_format(dsn_err, sizeof(dsn_err), __VA_ARGS__)

int
dsn_notify_wants(unsigned notify, enum dsn_kind kind)
{
	if (notify == 0)
		notify = QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY;
	if (notify & QRCPT_NOTIFY_NEVER)
		return 0;
	switch (kind) {
	case DSN_FAILED:
		return (notify & QRCPT_NOTIFY_FAILURE) != 0;
	case DSN_DELAYED:
		return (notify & QRCPT_NOTIFY_DELAY) != 0;
	case DSN_SUCCESS:
		return (notify & QRCPT_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

/* Output. */

static void
emit_flush(struct emit *e)
{
	if (e->b.len > 0)
		qfile_content_write(e->w, e->b.data, e->b.len);
	buf_reset(&e->b);
}

/* Our own bytes, trusted: only the column is tracked. */
static void
emit_raw(struct emit *e, const char *s, size_t len)
{
	const char *nl;

	if (len == 0)
		return;
	nl = memrchr(s, '\n', len);
	e->col = nl != NULL ? len - (size_t)(nl - s) - 1 : e->col + len;
	if (e->b.len + len > DSN_FLUSH)
		emit_flush(e);
	if (len > DSN_FLUSH) {
		qfile_content_write(e->w, s, len);
		return;
	}
	if (buf_append(&e->b, s, len) < 0)
		msg_panic("dsn: output buffer overflow");
}

static void
emit(struct emit *e, const char *s)
{
	emit_raw(e, s, strlen(s));
}

static void emitf(struct emit *e, const char *fmt, ...) MTA_PRINTF(2, 3);

static void
emitf(struct emit *e, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	emit(e, s);
	free(s);
}

/*
 * Text from outside (addresses, replies, ENVID): control characters
 * become spaces, anything that is not ASCII (or not UTF-8 when UTF-8 may
 * be written) becomes '?', and the line is folded with fold in place of
 * a space past DSN_FOLD_AT, or inserted at DSN_LINE_HARD.
 */
static void
emit_clean(struct emit *e, const char *s, const char *fold)
{
	size_t len = strlen(s), i = 0, seq;
	unsigned char c;
	char ch;

	while (i < len) {
		c = (unsigned char)s[i];
		seq = c < 0x80 ? 1 : str_utf8_seq(s + i, len - i);
		if (c == ' ' && e->col >= DSN_FOLD_AT) {
			emit(e, fold);
			i++;
			continue;
		}
		if (e->col >= DSN_LINE_HARD)
			emit(e, fold);
		if (c >= 0x80 && seq > 0 && e->utf8) {
			emit_raw(e, s + i, seq);
			i += seq;
			continue;
		}
		ch = c < ' ' || c == 0x7f ? ' ' : c >= 0x80 ? '?' : (char)c;
		emit_raw(e, &ch, 1);
		i += seq > 0 ? seq : 1;
	}
}

/*
 * An address for a report field: ASCII as it is; otherwise, where UTF-8
 * may not be written, each non-ASCII character as \x{HEX} (RFC 6533
 * 3, utf-8-addr-xtext's escape). Caller frees.
 */
static char *
addr_text(const char *addr, int utf8, int *ascii_r)
{
	struct buf b;
	size_t len = strlen(addr), i = 0, seq;
	unsigned long cp;
	unsigned char c;
	char hex[DSN_HEX_CODEPOINT];
	size_t k;

	*ascii_r = 1;
	for (i = 0; i < len; i++)
		if ((unsigned char)addr[i] >= 0x80)
			*ascii_r = 0;
	if (*ascii_r || utf8)
		return xstrdup(addr);
	buf_init(&b, len * sizeof(hex) + 1);
	for (i = 0; i < len; i += seq) {
		c = (unsigned char)addr[i];
		seq = c < 0x80 ? 1 : str_utf8_seq(addr + i, len - i);
		if (seq == 1 || seq == 0) {
			seq = 1;
			if (buf_putc(&b, c < 0x80 ? (char)c : '?') < 0)
				msg_panic("dsn: address buffer");
			continue;
		}
		cp = c & (0x7fu >> seq);
		for (k = 1; k < seq; k++)
			cp = cp << 6 | ((unsigned char)addr[i + k] & 0x3fu);
		snprintf(hex, sizeof(hex), "\\x{%lX}", cp);
		if (buf_puts(&b, hex) < 0)
			msg_panic("dsn: address buffer");
	}
	return buf_steal(&b);
}

/* "Name: TYPE; ADDR" for an address field of the report. */
static void
emit_addr_field(
    struct emit *e, const char *name, const char *type, const char *addr)
{
	int ascii;
	char *text = addr_text(addr, e->utf8, &ascii);

	/* RFC 6533 3: "utf-8" is the type of an address that is not ASCII. */
	if (!ascii)
		type = "utf-8";
	emitf(e, "%s: ", name);
	emit_clean(e, type, DSN_FOLD_FIELD);
	emit(e, "; ");
	emit_clean(e, text, DSN_FOLD_FIELD);
	emit(e, "\r\n");
	free(text);
}

static void
emit_date_field(struct emit *e, const char *name, long long when)
{
	char date[CLEANUP_DATE_SIZE];

	cleanup_date(date, sizeof(date), (time_t)when);
	emitf(e, "%s: %s\r\n", name, date);
}

/* The original. */

struct original {
	struct buf data;
	int headers_only;
	int eight_bit;
};

/* Length of the header section at the start of p (the lines before the
 * first empty one); a line cut by the end counts only if complete. */
static size_t
header_len(const char *p, size_t len, int complete)
{
	const char *line = p, *end = p + len, *nl;
	size_t n;

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			return complete ? len : (size_t)(line - p);
		n = (size_t)(nl - line);
		if (n == 0 || (n == 1 && line[0] == '\r'))
			break;
		line = nl + 1;
	}
	return (size_t)(line - p);
}

static int
load_original(
    const struct qfile *q, int whole, struct original *o, const char **error_r)
{
	size_t limit = (size_t)var_bounce_size_limit, want;
	char *p;
	size_t i, keep;

	memset(o, 0, sizeof(*o));
	buf_init(&o->data, limit);
	if (q->content_len > limit)
		whole = 0;
	want = q->content_len < limit ? (size_t)q->content_len : limit;
	o->headers_only = !whole;
	if (want == 0)
		return 0;
	p = xmalloc(want);
	if (file_pread_all(q->fd, p, want, q->content_off) < 0) {
		*error_r = dsn_error("%s: read content: %s", q->id,
		    errno != 0 ? strerror(errno) : "file shrank");
		free(p);
		return -1;
	}
	keep = whole ? want : header_len(p, want, want == q->content_len);
	for (i = 0; i < keep; i++)
		if ((unsigned char)p[i] >= 0x80)
			o->eight_bit = 1;
	if (buf_append(&o->data, p, keep) < 0)
		msg_panic("dsn: original over its limit");
	free(p);
	return 0;
}

/* A boundary that no line of the original starts with (RFC 2046 5.1.1). */
static void
make_boundary(char *out, const char *id, const struct original *o)
{
	unsigned n;
	char delim[DSN_BOUNDARY_SIZE + 2];

	for (n = 0;; n++) {
		snprintf(out, DSN_BOUNDARY_SIZE, "%s.%lld.%u/tern-report", id,
		    (long long)time(NULL), n);
		snprintf(delim, sizeof(delim), "--%s", out);
		if (o->data.len == 0 || memmem(o->data.data, o->data.len, delim,
		                            strlen(delim)) == NULL)
			return;
	}
}

/* The parts. */

static const char *
notice_name(const struct qfile *q, enum dsn_kind kind)
{
	switch (kind) {
	case DSN_FAILED:
		return q->sender[0] == '\0' ? DSN_NOTICE_2BOUNCE
		                            : DSN_NOTICE_BOUNCE;
	case DSN_DELAYED:
		return DSN_NOTICE_DELAY;
	case DSN_SUCCESS:
		return DSN_NOTICE_SUCCESS;
	}
	msg_panic("dsn: bad kind %d", (int)kind);
}

long long
dsn_lifetime(const struct qfile *q, int rcpt)
{
	if (q->rcpts[rcpt].backup)
		return var_backup_queue_lifetime;
	return q->sender[0] == '\0' ? var_bounce_queue_lifetime
	                            : var_maximal_queue_lifetime;
}

static long long
retry_until(const struct qfile *q, int rcpt)
{
	return q->arrival_sec + dsn_lifetime(q, rcpt);
}

/* The text part names one date: the last recipient's. */
static long long
retry_until_last(const struct qfile *q, const int *rcpts, int n)
{
	long long until = 0, t;
	int i;

	for (i = 0; i < n; i++)
		if ((t = retry_until(q, rcpts[i])) > until)
			until = t;
	return until;
}

/* RFC 3464 2.3.3 and 2.3.4: an action and a status of the notice's
 * kind, from the record when it fits. */
static const char *
rcpt_action(enum dsn_kind kind, const struct status_rec *r)
{
	if (kind == DSN_FAILED)
		return STATUS_ACTION_FAILED;
	if (kind == DSN_DELAYED)
		return STATUS_ACTION_DELAYED;
	if (r != NULL && (strcmp(r->action, STATUS_ACTION_RELAYED) == 0 ||
	                     strcmp(r->action, STATUS_ACTION_EXPANDED) == 0))
		return r->action;
	return STATUS_ACTION_DELIVERED;
}

static const char *
rcpt_status(enum dsn_kind kind, const struct status_rec *r)
{
	char c = r != NULL ? r->status[0] : '\0';

	switch (kind) {
	case DSN_FAILED:
		/* An expired recipient keeps its last temporary status. */
		return c == '5' || c == '4' ? r->status : "5.0.0";
	case DSN_DELAYED:
		return c == '4' ? r->status : "4.0.0";
	case DSN_SUCCESS:
		return c == '2' ? r->status : "2.0.0";
	}
	msg_panic("dsn: bad kind %d", (int)kind);
}

static void
emit_headers(struct emit *e, const struct qfile *q, enum dsn_kind kind,
    const char *notify_to, const char *boundary, int eight_bit)
{
	static const char *const subjects[] = {
	    [DSN_FAILED] = "Undelivered Mail Returned to Sender",
	    [DSN_DELAYED] = "Delayed Mail (still being retried)",
	    [DSN_SUCCESS] = "Successful Mail Delivery Report",
	};
	char date[CLEANUP_DATE_SIZE];

	cleanup_date(date, sizeof(date), time(NULL));
	emitf(e, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    var_myhostname);
	emit(e, "To: <");
	emit_clean(e, notify_to, DSN_FOLD_FIELD);
	if (strchr(notify_to, '@') == NULL)
		emitf(e, "@%s", var_myhostname);
	emit(e, ">\r\n");
	emitf(e, "Subject: %s\r\n",
	    kind == DSN_FAILED && q->sender[0] == '\0'
	        ? "Postmaster Copy: Undelivered Mail"
	        : subjects[kind]);
	emitf(e, "Date: %s\r\n", date);
	emitf(e, "Message-ID: <%s@%s>\r\n", e->w->id, var_myhostname);
	emit(e, "Auto-Submitted: auto-replied\r\n");
	emit(e, "MIME-Version: 1.0\r\n");
	emitf(e,
	    "Content-Type: multipart/report; report-type=%s;\r\n"
	    "\tboundary=\"%s\"\r\n",
	    e->utf8 ? "global-delivery-status" : "delivery-status", boundary);
	if (eight_bit)
		emit(e, "Content-Transfer-Encoding: 8bit\r\n");
	emit(e, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

/* One recipient in the text part. */
static void
emit_text_rcpt(struct emit *e, enum dsn_kind kind, const char *addr,
    const struct status_rec *r)
{
	int ascii;
	char *text = addr_text(addr, e->utf8, &ascii);

	emit(e, "<");
	emit_clean(e, text, DSN_FOLD_TEXT);
	emit(e, ">: ");
	free(text);
	if (r == NULL || r->diag[0] == '\0') {
		emit(e, kind == DSN_SUCCESS ? "delivered"
		                            : "no reason was recorded");
	} else if (strcmp(r->diag_type, STATUS_DIAG_SMTP) == 0 &&
	           r->mta[0] != '\0') {
		emit(e, "host ");
		emit_clean(e, r->mta, DSN_FOLD_TEXT);
		emit(e, " said: ");
		emit_clean(e, r->diag, DSN_FOLD_TEXT);
	} else {
		emit_clean(e, r->diag, DSN_FOLD_TEXT);
		if (r->mta[0] != '\0') {
			emit(e, " (");
			emit_clean(e, r->mta, DSN_FOLD_TEXT);
			emit(e, ")");
		}
	}
	emit(e, "\r\n\r\n");
}

static void
emit_text_part(struct emit *e, const struct qfile *q, enum dsn_kind kind,
    const int *rcpts, int n, const struct status_log *log, const char *boundary,
    const struct original *o)
{
	const char *attached =
	    o->headers_only ? "Its header section is" : "It is";
	char date[CLEANUP_DATE_SIZE];
	int i;

	emitf(e, "--%s\r\n", boundary);
	emit(e, "Content-Description: Notification\r\n");
	emitf(e, "Content-Type: text/plain; charset=%s\r\n",
	    e->utf8 ? "utf-8" : "us-ascii");
	if (e->utf8)
		emit(e, "Content-Transfer-Encoding: 8bit\r\n");
	emitf(e, "\r\nThis is the mail system at host %s.\r\n\r\n",
	    var_myhostname);
	switch (kind) {
	case DSN_FAILED:
		if (q->sender[0] == '\0') {
			emitf(e,
			    "A delivery status notification could not be "
			    "delivered to its\r\nrecipient, for the reasons "
			    "below. %s attached.\r\n",
			    attached);
			break;
		}
		emitf(e,
		    "Your message could not be delivered to one or more "
		    "recipients, for\r\nthe reasons below. %s attached.\r\n"
		    "\r\nIf you need help, write to the postmaster of this "
		    "host and include\r\nthis report.\r\n",
		    attached);
		break;
	case DSN_DELAYED:
		cleanup_date(date, sizeof(date),
		    (time_t)retry_until_last(q, rcpts, n));
		emitf(e,
		    "Your message has not yet been delivered to the "
		    "recipients below,\r\nfor the reasons given. This is a "
		    "warning only: you need not send it\r\nagain. Delivery "
		    "will be tried until\r\n\r\n    %s\r\n\r\nand you will "
		    "hear again only if it has failed by then.\r\n%s "
		    "attached.\r\n",
		    date, attached);
		break;
	case DSN_SUCCESS:
		emitf(e,
		    "Your message was delivered to the recipients below, "
		    "as you asked\r\n(NOTIFY=SUCCESS). %s attached.\r\n",
		    attached);
		break;
	}
	emit(e, "\r\n");
	for (i = 0; i < n; i++)
		emit_text_rcpt(e, kind, q->rcpts[rcpts[i]].addr,
		    status_log_get(log, rcpts[i]));
}

static void
emit_status_part(struct emit *e, const struct qfile *q, enum dsn_kind kind,
    const int *rcpts, int n, const struct status_log *log, const char *boundary)
{
	const struct status_rec *r;
	const struct qrcpt *rc;
	const char *envid = qfile_attr(q, "envid"), *semi;
	char *type;
	int i;

	emitf(e, "--%s\r\n", boundary);
	emit(e, "Content-Description: Delivery report\r\n");
	emitf(e, "Content-Type: message/%sdelivery-status\r\n",
	    e->utf8 ? "global-" : "");
	if (e->utf8)
		emit(e, "Content-Transfer-Encoding: 8bit\r\n");
	emit(e, "\r\n");
	/* RFC 3464 2.2: the per-message fields. */
	emitf(e, "Reporting-MTA: dns; %s\r\n", var_myhostname);
	emitf(e, "X-Tern-Queue-ID: %s\r\n", q->id);
	if (q->sender[0] != '\0')
		emit_addr_field(e, "X-Tern-Sender", "rfc822", q->sender);
	if (envid != NULL && envid[0] != '\0') {
		emit(e, "Original-Envelope-Id: ");
		emit_clean(e, envid, DSN_FOLD_FIELD);
		emit(e, "\r\n");
	}
	emit_date_field(e, "Arrival-Date", q->arrival_sec);
	/* RFC 3464 2.3: one block per recipient. */
	for (i = 0; i < n; i++) {
		rc = &q->rcpts[rcpts[i]];
		r = status_log_get(log, rcpts[i]);
		emit(e, "\r\n");
		emit_addr_field(e, "Final-Recipient", "rfc822", rc->addr);
		/* The stored ORCPT is "addr-type;address", xtext decoded. */
		if (rc->orcpt[0] != '\0') {
			semi = strchr(rc->orcpt, ';');
			if (semi == NULL || semi == rc->orcpt) {
				emit_addr_field(e, "Original-Recipient",
				    "rfc822", rc->orcpt);
			} else {
				type = xstrndup(
				    rc->orcpt, (size_t)(semi - rc->orcpt));
				emit_addr_field(
				    e, "Original-Recipient", type, semi + 1);
				free(type);
			}
		}
		emitf(e, "Action: %s\r\n", rcpt_action(kind, r));
		emitf(e, "Status: %s\r\n", rcpt_status(kind, r));
		if (r != NULL && r->mta[0] != '\0') {
			emit(e, "Remote-MTA: dns; ");
			emit_clean(e, r->mta, DSN_FOLD_FIELD);
			emit(e, "\r\n");
		}
		if (r != NULL && r->diag[0] != '\0') {
			emitf(e, "Diagnostic-Code: %s; ", r->diag_type);
			emit_clean(e, r->diag, DSN_FOLD_FIELD);
			emit(e, "\r\n");
		}
		if (r != NULL && r->when > 0)
			emit_date_field(e, "Last-Attempt-Date", r->when);
		if (kind == DSN_DELAYED)
			emit_date_field(e, "Will-Retry-Until",
			    retry_until(q, rcpts[i]));
	}
}

static void
emit_original_part(struct emit *e, enum dsn_kind kind, const char *boundary,
    const struct original *o)
{
	const char *type;

	emitf(e, "\r\n--%s\r\n", boundary);
	emitf(e, "Content-Description: %s%s\r\n",
	    kind == DSN_SUCCESS   ? ""
	    : kind == DSN_DELAYED ? "Delayed "
	                          : "Undelivered ",
	    o->headers_only ? "Message Headers" : "Message");
	if (o->headers_only)
		type =
		    e->utf8 ? "message/global-headers" : "text/rfc822-headers";
	else
		type = e->utf8 ? "message/global" : "message/rfc822";
	emitf(e, "Content-Type: %s\r\n", type);
	if (o->eight_bit)
		emit(e, "Content-Transfer-Encoding: 8bit\r\n");
	emit(e, "\r\n");
	emit_raw(e, buf_cstr(&o->data), o->data.len);
	/* The CRLF before the delimiter belongs to it (RFC 2046 5.1.1). */
	emitf(e, "\r\n--%s--\r\n", boundary);
}

int
dsn_write(const struct qfile *q, enum dsn_kind kind, const int *rcpts, int n,
    const struct status_log *log, const char *notify_to,
    char id_r[QUEUE_ID_SIZE], const char **error_r)
{
	struct qfile_writer w;
	struct original o;
	struct emit e;
	const char *ret = qfile_attr(q, "ret"), *body = qfile_attr(q, "body");
	char boundary[DSN_BOUNDARY_SIZE];
	int i, whole, eight_bit, result = -1;

	if (n <= 0)
		msg_panic("dsn_write: no recipients");
	for (i = 0; i < n; i++)
		if (rcpts[i] < 0 || rcpts[i] >= q->nrcpt)
			msg_panic(
			    "dsn_write: recipient %d out of range", rcpts[i]);
	if (!q->complete) {
		*error_r = dsn_error("%s: queue file incomplete", q->id);
		return -1;
	}
	if (notify_to == NULL || notify_to[0] == '\0') {
		*error_r = dsn_error("%s: notice without a recipient", q->id);
		return -1;
	}
	/*
	 * RFC 3461 4.3: the whole message for a failure unless RET=HDRS;
	 * a BINARYMIME body cannot travel inside a text report.
	 */
	whole = kind == DSN_FAILED &&
	        (ret == NULL || !str_eq_ci(ret, "HDRS")) &&
	        (body == NULL || !str_eq_ci(body, "BINARYMIME"));
	if (load_original(q, whole, &o, error_r) < 0) {
		buf_free(&o.data);
		return -1;
	}
	memset(&e, 0, sizeof(e));
	e.utf8 = qfile_attr(q, "smtputf8") != NULL;
	eight_bit = e.utf8 || o.eight_bit;
	if (qfile_create(&w, error_r) < 0) {
		buf_free(&o.data);
		return -1;
	}
	e.w = &w;
	buf_init(&e.b, DSN_OUT_MAX);
	make_boundary(boundary, w.id, &o);

	qfile_put_sender(&w, "");
	qfile_put_attr(&w, "protocol", "local");
	if (eight_bit)
		qfile_put_attr(&w, "body", "8BITMIME");
	if (e.utf8)
		qfile_put_attr(&w, "smtputf8", "1");
	qfile_put_attr(&w, DSN_ATTR_NOTICE, notice_name(q, kind));
	qfile_put_rcpt(&w, notify_to, "", 0);
	qfile_content_begin(&w);
	emit_headers(&e, q, kind, notify_to, boundary, eight_bit);
	emit_text_part(&e, q, kind, rcpts, n, log, boundary, &o);
	emit_status_part(&e, q, kind, rcpts, n, log, boundary);
	emit_original_part(&e, kind, boundary, &o);
	emit_flush(&e);
	if (qfile_finish(&w, error_r) == 0 &&
	    qfile_commit(&w, QUEUE_INCOMING, error_r) == 0) {
		memcpy(id_r, w.id, QUEUE_ID_SIZE);
		result = 0;
	}
	qfile_writer_free(&w);
	buf_free(&e.b);
	buf_free(&o.data);
	return result;
}
