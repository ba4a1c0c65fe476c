/* SPDX-License-Identifier: MIT */
/*
 * The outbound SMTP delivery agent: takes requests from the queue
 * manager over private/smtp ({request=deliver, queue_id,
 * queue_file=active/ID, nexthop, recovered, active_at, rcpt_index...}),
 * delivers the message to the nexthop's exchangers (smtp_connect.c) and
 * answers one reply frame with a result per recipient: result, an
 * enhanced status code, the text (the peer's reply, or our reason), the
 * action, the remote MTA and the diagnostic type, as RFC 3464 wants them
 * in a notice; then dest_status=fail when no exchanger could be reached,
 * so the queue manager slows down for that destination.
 *
 * One request at a time per process (the server skeleton's single mode,
 * as Postfix's smtp(8)): the process blocks on one peer, and the queue
 * manager runs as many of them as services.conf allows. It logs one line
 * per recipient in Postfix's shape, "ID: to=<a>, relay=host[addr]:port,
 * delay=, delays=a/b/c/d, dsn=, status=" (the queue manager does not
 * repeat it). It runs as mail_owner and only reads the queue file.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "smtp.h"

/* Recipients per request (qmgr sends at most the recipient limit). */
#define SMTP_RCPT_MAX      1000
#define SMTP_TOKEN_LOG_MAX 64
#define SMTP_LOG_TEXT_MAX  1024

double
smtp_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Postfix's style: "0", "0.04", "1.2", "37". */
static void
smtp_fmt_delay(double d, char *out, size_t n)
{
	if (d < 0)
		d = 0;
	if (d >= 10)
		snprintf(out, n, "%.0f", d);
	else if (d >= 1)
		snprintf(out, n, "%.1f", d);
	else if (d >= 0.01)
		snprintf(out, n, "%.2f", d);
	else if (d >= 0.0001)
		snprintf(out, n, "%.2g", d); /* no exponent from 1e-4 on */
	else
		snprintf(out, n, "0");
}

int
smtp_pending(const struct smtp_msg *m)
{
	int i, n = 0;

	for (i = 0; i < m->n; i++)
		n += m->r[i].state == SMTP_RCPT_PENDING;
	return n;
}

/* Records a recipient's final answer for this request and logs it. */
void
smtp_rcpt_set(struct smtp_msg *m, struct smtp_rcpt *r, const char *result,
    const char *dsn, const char *mta, const char *diag_type,
    const char *relay, const char *text, const char *log_text)
{
	char delay[QFILE_DELAY_SIZE], a[16], b[16], c[16], d[16];
	double now = smtp_now(), conn, active;
	const char *status;

	if (r->state != SMTP_RCPT_PENDING)
		return;
	r->state = SMTP_RCPT_DONE;
	r->result = result;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->text);
	free(r->log_text);
	free(r->mta);
	r->text = xstrdup(text);
	r->log_text = xstrdup(log_text != NULL ? log_text : text);
	r->mta = xstrdup(mta != NULL ? mta : "");
	r->diag_type = diag_type;
	snprintf(r->relay, sizeof(r->relay), "%s",
	    relay != NULL && *relay != '\0' ? relay : "none");
	status = strcmp(result, "sent") == 0     ? "sent"
	         : strcmp(result, "bounce") == 0 ? "bounced"
	                                         : "deferred";
	/* a: before the queue manager, b: in it, c: connection set-up,
	 * d: transmission (Postfix's delays=a/b/c/d). */
	active = m->t_active > 0 ? m->t_active : m->t_request;
	conn = m->t_conn > 0 ? m->t_conn : now;
	smtp_fmt_delay(active - m->t_arrival, a, sizeof(a));
	smtp_fmt_delay(m->t_request - active, b, sizeof(b));
	smtp_fmt_delay(conn - m->t_request, c, sizeof(c));
	smtp_fmt_delay(m->t_conn > 0 ? now - m->t_conn : 0, d, sizeof(d));
	qfile_delay(&m->q, delay, sizeof(delay));
	msg_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, "
	         "dsn=%s, status=%s (%s)",
	    m->id, log_sanitize(r->q->addr, SMTP_LOG_TEXT_MAX), r->relay,
	    delay, a, b, c, d, r->dsn, status,
	    log_sanitize(r->log_text, SMTP_LOG_TEXT_MAX));
}

/* "SEC.USEC" of a request attribute, 0 when absent or bad. */
static double
smtp_time_attr(const struct attr_list *req, const char *name)
{
	const char *v = attr_get(req, name);
	char *end;
	double t;

	if (v == NULL)
		return 0;
	errno = 0;
	t = strtod(v, &end);
	return errno == 0 && *end == '\0' && t > 0 ? t : 0;
}

static int
smtp_reply_rcpt(struct buf *reply, const struct smtp_rcpt *r)
{
	if (attr_put_int(reply, "rcpt_index", r->index) < 0 ||
	    attr_put_str(reply, "result", r->result) < 0 ||
	    attr_put_str(reply, "dsn", r->dsn) < 0 ||
	    attr_put_str(reply, "text", r->text) < 0 ||
	    attr_put_str(reply, "action", r->action) < 0 ||
	    attr_put_str(reply, "mta", r->mta) < 0 ||
	    attr_put_str(reply, "diag_type", r->diag_type) < 0)
		return -1;
	if (r->dsn_passed && attr_put_int(reply, "dsn_passed", 1) < 0)
		return -1;
	return 0;
}

static void
smtp_msg_free(struct smtp_msg *m)
{
	int i;

	for (i = 0; i < m->n; i++) {
		free(m->r[i].text);
		free(m->r[i].log_text);
		free(m->r[i].mta);
	}
	free(m->r);
	free(m->last_text);
	qfile_close(&m->q);
}

/* The request's recipient indexes; -1 when the list is bad. */
static int
smtp_rcpt_list(const struct attr_list *req, int *idx)
{
	uint64_t v;
	int i, n = 0;

	for (i = 0; i < req->count; i++) {
		if (strcmp(req->v[i].name, "rcpt_index") != 0)
			continue;
		if (n == SMTP_RCPT_MAX ||
		    str_to_u64(req->v[i].value, INT_MAX, &v) < 0)
			return -1;
		idx[n++] = (int)v;
	}
	return n > 0 ? n : -1;
}

static int
smtp_request(const struct attr_list *req, struct buf *reply)
{
	const char *request = attr_get(req, "request");
	const char *id = attr_get(req, "queue_id");
	const char *file = attr_get(req, "queue_file");
	const char *nexthop = attr_get(req, "nexthop");
	char want[sizeof(QUEUE_ACTIVE) + QUEUE_ID_SIZE];
	struct smtp_msg m;
	const char *err, *v;
	char *path;
	int *idx, n, i, ok, dest_fail;

	if (request == NULL || strcmp(request, "deliver") != 0) {
		msg_warn("unknown request '%s'",
		    log_sanitize(request != NULL ? request : "",
		        SMTP_TOKEN_LOG_MAX));
		return -1;
	}
	if (id != NULL && queue_id_valid(id))
		snprintf(want, sizeof(want), "%s/%s", QUEUE_ACTIVE, id);
	if (id == NULL || !queue_id_valid(id) || file == NULL ||
	    strcmp(file, want) != 0 || nexthop == NULL || *nexthop == '\0') {
		msg_warn("bad queue_id, queue_file or nexthop in request");
		return -1;
	}
	idx = xcalloc(SMTP_RCPT_MAX, sizeof(*idx));
	if ((n = smtp_rcpt_list(req, idx)) < 0) {
		msg_warn("%s: bad recipient list in request", id);
		free(idx);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.q.fd = -1;
	m.id = id;
	m.nexthop = nexthop;
	m.t_request = smtp_now();
	m.t_active = smtp_time_attr(req, "active_at");
	path = queue_path(QUEUE_ACTIVE, id);
	ok = qfile_open(path, 0, (uid_t)-1, &m.q, &err) == 0;
	if (ok && !m.q.complete) {
		err = "incomplete queue file";
		ok = 0;
	}
	free(path);
	for (i = 0; ok && i < n; i++)
		if (idx[i] >= m.q.nrcpt) {
			msg_warn("%s: recipient index out of range in request",
			    id);
			free(idx);
			smtp_msg_free(&m);
			return -1;
		}
	if (attr_reply_begin(reply, req) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	m.r = xcalloc((size_t)n, sizeof(*m.r));
	m.n = n;
	m.t_arrival = (double)m.q.arrival_sec + (double)m.q.arrival_usec / 1e6;
	for (i = 0; i < n; i++) {
		m.r[i].index = idx[i];
		m.r[i].action = "";
		m.r[i].diag_type = "x-tern";
		m.r[i].q = ok ? &m.q.rcpts[idx[i]] : NULL;
	}
	if (!ok) {
		msg_warn("%s: %s", id, err);
		for (i = 0; i < n; i++) {
			m.r[i].state = SMTP_RCPT_DONE;
			m.r[i].result = "defer";
			snprintf(m.r[i].dsn, sizeof(m.r[i].dsn), "4.3.0");
			m.r[i].text = xstrdup(err);
			m.r[i].mta = xstrdup("");
		}
	} else {
		m.sender = m.q.sender;
		v = qfile_attr(&m.q, "body");
		m.body = v != NULL ? v : "";
		m.smtputf8 = qfile_attr(&m.q, "smtputf8") != NULL;
		m.envid = qfile_attr(&m.q, "envid");
		m.ret = qfile_attr(&m.q, "ret");
		smtp_deliver(&m);
	}
	dest_fail = 0;
	for (i = 0; i < n; i++) {
		if (smtp_reply_rcpt(reply, &m.r[i]) < 0)
			msg_panic("%s: reply does not fit a frame", id);
		if (strcmp(m.r[i].result, "defer") == 0 && ok &&
		    !m.any_connected)
			dest_fail = 1;
	}
	if (dest_fail && attr_put_str(reply, "dest_status", "fail") < 0)
		msg_panic("%s: reply does not fit a frame", id);
	if (attr_frame_end(reply) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	free(idx);
	smtp_msg_free(&m);
	return 0;
}

/*
 * Waits for the next request; while a session is cached, only until it
 * expires, then says goodbye to the peer and goes on waiting.
 */
static int
smtp_wait_request(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int ms, rc;

	while ((ms = smtp_cache_ms_left()) >= 0) {
		rc = poll(&p, 1, ms);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc == 0)
			smtp_cache_expire(0);
	}
	return 0;
}

static void
smtp_serve(int fd, const struct server_listener *l)
{
	(void)l;
	server_serve_requests(fd, smtp_request, smtp_wait_request);
	/* The queue manager went away: the next one may be for elsewhere. */
	smtp_cache_expire(1);
}

/* Tables, resolv.conf and services.conf, read as root. */
static int
smtp_setup(void)
{
	return smtp_connect_init() < 0 || smtp_tls_init() < 0 ||
	               smtp_sasl_init() < 0
	           ? -1
	           : 0;
}

static void
smtp_pre_drop(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (smtp_setup() < 0)
		msg_fatal("cannot start: see the errors above");
}

static void
smtp_shutdown(void)
{
	smtp_cache_expire(1);
	smtp_sasl_shutdown();
	smtp_tls_shutdown();
	smtp_connect_shutdown();
}

static void
smtp_check(void)
{
	/* The TLS contexts too, which the daemon makes only when needed. */
	if (smtp_setup() < 0 || smtp_tls_check() < 0)
		msg_fatal("smtp: bad configuration (see above)");
	smtp_shutdown();
}

static const struct server_ops smtp_ops = {
    .name = "smtp",
    .mode = SERVER_SINGLE,
    .pre_drop = smtp_pre_drop,
    .serve = smtp_serve,
    .shutdown = smtp_shutdown,
    .check = smtp_check,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &smtp_ops);
}
