/* SPDX-License-Identifier: MIT */
/*
 * One message of the active set (qmgr.h): its pending recipients are
 * routed (route.h) into entries, the answers come back per recipient,
 * and when its last entry is done the pass ends here. Every temporary or
 * permanent failure, and every delivery the sender asked to hear about
 * (NOTIFY=SUCCESS), is appended to the message's status log before
 * anything else changes, so a crash never loses a reason. At the end of
 * a pass:
 *
 *  - recipients still deferred past their lifetime (dsn_lifetime:
 *    maximal_queue_lifetime, bounce_queue_lifetime for the null sender,
 *    backup_queue_lifetime for mail held as a backup MX) fail with
 *    5.4.7;
 *  - failed recipients get one failure notice (RFC 3464, dsn.h) unless
 *    their NOTIFY says otherwise; a failed message with the null sender
 *    goes to postmaster as a double bounce, unless it is itself one,
 *    which is dropped with a log line;
 *  - "delivered" notices for NOTIFY=SUCCESS;
 *  - once delay_warning_time has passed, one "delayed" notice per message
 *    (remembered in the queue file's WARN record);
 *  - the marks: F only once the failure notice is committed (F means
 *    "reported"); D for delivered recipients of a message that stays;
 *  - the file is removed with its log when nothing is pending, else it
 *    goes to deferred/ for its next attempt (qmgr_queue.c).
 *
 * Notices go through the queue like any mail. A crash between a notice's
 * commit and the marks repeats the notice; nothing is ever lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/dsn.h"
#include "mail/params.h"
#include "mail/route.h"
#include "mail/status_log.h"
#include "qmgr.h"

#define QMGR_TEXT_MAX     512

struct qmgr_msg *
qmgr_message_new(void)
{
	return xcalloc(1, sizeof(struct qmgr_msg));
}

void
qmgr_message_free(struct qmgr_msg *m)
{
	struct qmgr_entry *e;

	while ((e = m->routing) != NULL) {
		m->routing = e->msg_next;
		free(e->rcpts);
		free(e);
	}
	event_timer_del(&m->stuck);
	qmgr_nrcpt_active -= m->q.nrcpt;
	qfile_close(&m->q);
	free(m->state);
	free(m->notify_success);
	free(m);
}

void
qmgr_message_log(const struct qmgr_msg *m, int i, const char *relay,
    const char *dsn, const char *status, const char *text)
{
	char delay[QFILE_DELAY_SIZE];

	qfile_delay(&m->q, delay, sizeof(delay));
	msg_info("%s: to=<%s>, relay=%s, delay=%s, dsn=%s, status=%s (%s)",
	    m->q.id, log_sanitize(m->q.rcpts[i].addr, ADDR_PATH_MAX), relay,
	    delay, dsn, status, log_sanitize(text, QMGR_TEXT_MAX));
}

void
qmgr_message_answer(struct qmgr_msg *m, int i, char status, const char *dsn,
    const char *text, const char *action)
{
	struct qmgr_result r = {
	    .rcpt = i,
	    .status = status,
	    .dsn = dsn,
	    .text = text,
	    .action = action,
	    .mta = "",
	    .diag_type = "x-tern",
	};

	qmgr_message_log(m, i, "none", dsn,
	    status == QREC_RCPT_DONE     ? "sent"
	    : status == QREC_RCPT_FAILED ? "bounced"
	                                 : "deferred",
	    text);
	qmgr_message_results(m, &r, 1);
}

/*
 * A recipient this host holds as a backup MX: its domain is one of
 * relay_domains and it goes where relay_transport sends relay mail
 * (transport_maps may name the primary; a route to error:, local or
 * another transport is no backup role).
 */
static int
qmgr_backup(const struct route *r)
{
	size_t n = strcspn(var_relay_transport, ":");

	return r->class == RESOLVE_RELAY && strlen(r->transport) == n &&
	       strncmp(r->transport, var_relay_transport, n) == 0;
}

static int
qmgr_listed(char **list, const char *name)
{
	int i;

	for (i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

void
qmgr_message_load(struct qmgr_msg *m)
{
	struct route r;
	struct timeval tv;
	const char *err;
	char **deferred = NULL;
	int i, rc;

	msg_info("%s: from=<%s>, size=%llu, nrcpt=%d (queue active)", m->q.id,
	    log_sanitize(m->q.sender, ADDR_PATH_MAX),
	    (unsigned long long)m->q.content_len, m->q.nrcpt);
	gettimeofday(&tv, NULL);
	m->active_at = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	m->state = xcalloc(m->q.nrcpt > 0 ? (size_t)m->q.nrcpt : 1, 1);
	m->notify_success = xcalloc(m->q.nrcpt > 0 ? (size_t)m->q.nrcpt : 1, 1);
	qmgr_nrcpt_active += m->q.nrcpt;
	/* Entries finish asynchronously; this one keeps the pass open. */
	m->entries++;
	/* A flush releases them (Postfix's QMGR_FLUSH_DFXP). */
	if (*var_defer_transports != '\0' && !m->flushed)
		deferred = config_list(var_defer_transports);
	for (i = 0; i < m->q.nrcpt; i++) {
		if (m->q.rcpts[i].status != QREC_RCPT)
			continue;
		m->state[i] = QMGR_RCPT_QUEUED;
		rc = route_address(m->q.rcpts[i].addr, &r, &err);
		if (rc == -1) {
			qmgr_message_answer(m, i, QREC_RCPT_FAILED, "5.1.3",
			    "bad address syntax", "");
		} else if (rc == -2) {
			qmgr_message_answer(m, i, 0, "4.3.0", err, "");
		} else {
			m->q.rcpts[i].backup = qmgr_backup(&r);
			if (qmgr_listed(deferred, r.transport))
				qmgr_message_answer(
				    m, i, 0, "4.3.2", "deferred transport", "");
			else
				qmgr_transport_add(m, i, r.transport, r.nexthop);
			route_free(&r);
		}
	}
	if (deferred != NULL)
		config_list_free(deferred);
	qmgr_transport_commit(m);
	qmgr_message_entry_done(m);
}

/* The records of results that must outlive a crash. */
static int
qmgr_record(struct qmgr_msg *m, const struct qmgr_result *r,
    struct status_rec *rec)
{
	unsigned notify = m->q.rcpts[r->rcpt].notify;

	memset(rec, 0, sizeof(*rec));
	rec->rcpt = r->rcpt;
	rec->status = r->dsn;
	rec->diag_type = r->diag_type;
	rec->diag = r->text;
	rec->mta = r->mta;
	rec->when = (long long)time(NULL);
	if (r->status == QREC_RCPT_FAILED)
		rec->action = "failed";
	else if (r->status == 0)
		rec->action = "delayed";
	else if ((notify & QRCPT_NOTIFY_SUCCESS) != 0 && !r->dsn_passed)
		rec->action = *r->action != '\0' ? r->action : "delivered";
	else
		return 0;
	return 1;
}

void
qmgr_message_results(struct qmgr_msg *m, const struct qmgr_result *r, int n)
{
	struct status_rec *recs = xcalloc((size_t)n, sizeof(*recs));
	const char *err;
	int i, nrec = 0, logged = 1;

	for (i = 0; i < n; i++)
		nrec += qmgr_record(m, &r[i], &recs[nrec]);
	if (nrec > 0 && status_log_append(m->q.id, recs, nrec, &err) < 0) {
		msg_warn("%s", err);
		logged = 0;
	}
	for (i = 0; i < n; i++) {
		if (r[i].status == QREC_RCPT_DONE) {
			m->state[r[i].rcpt] = QMGR_RCPT_SENT;
			/* A next hop that speaks DSN reports success itself. */
			m->notify_success[r[i].rcpt] =
			    logged && !r[i].dsn_passed &&
			    (m->q.rcpts[r[i].rcpt].notify &
			        QRCPT_NOTIFY_SUCCESS) != 0;
		} else if (r[i].status == QREC_RCPT_FAILED && logged) {
			m->state[r[i].rcpt] = QMGR_RCPT_FAILED;
		} else {
			/* Without its reason on disk a failure is retried. */
			m->state[r[i].rcpt] = QMGR_RCPT_DEFERRED;
		}
	}
	free(recs);
}

void
qmgr_message_lost(struct qmgr_msg *m, const int *rcpts, int n, const char *why)
{
	char text[QMGR_TEXT_MAX];
	int i;

	snprintf(text, sizeof(text), "delivery agent failed: %s", why);
	m->retry_soon = 1;
	/* The agent may have delivered before it died. */
	m->recovered = 1;
	for (i = 0; i < n; i++) {
		m->state[rcpts[i]] = QMGR_RCPT_DEFERRED;
		qmgr_message_log(m, rcpts[i], "none", "4.3.0", "deferred", text);
	}
}

/* Recipients of m in state st whose NOTIFY asks for kind (-1: any). */
static int
qmgr_collect(const struct qmgr_msg *m, int st, int kind, int *out)
{
	int i, n = 0;

	for (i = 0; i < m->q.nrcpt; i++)
		if (m->state[i] == st &&
		    (kind < 0 || dsn_notify_wants(m->q.rcpts[i].notify,
		                     (enum dsn_kind)kind)))
			out[n++] = i;
	return n;
}

/* Writes one notice; 0 or -1 (logged). */
static int
qmgr_notice(struct qmgr_msg *m, enum dsn_kind kind, const int *rcpts, int n,
    const struct status_log *log, const char *to, const char *what)
{
	char id[QUEUE_ID_SIZE];
	const char *err;

	if (dsn_write(&m->q, kind, rcpts, n, log, to, id, &err) < 0) {
		msg_warn("%s: cannot write the %s notice: %s", m->q.id, what, err);
		return -1;
	}
	msg_info("%s: %s notification: %s", m->q.id, what, id);
	return 0;
}

/* Pending recipients past their lifetime fail with their last reason. */
static int
qmgr_expire(struct qmgr_msg *m, struct status_log *log, int pending)
{
	long long age = (long long)time(NULL) - m->q.arrival_sec;
	const struct status_rec *last;
	struct status_rec *recs;
	char **texts;
	const char *err;
	int i, n = 0;

	if (pending == 0)
		return 0;
	recs = xcalloc((size_t)pending, sizeof(*recs));
	texts = xcalloc((size_t)pending, sizeof(*texts));
	for (i = 0; i < m->q.nrcpt; i++) {
		if (m->state[i] != QMGR_RCPT_DEFERRED ||
		    age < dsn_lifetime(&m->q, i))
			continue;
		last = status_log_get(log, i);
		texts[n] = xasprintf("delivery time expired%s%s",
		    last != NULL ? "; last problem: " : "",
		    last != NULL ? last->diag : "");
		recs[n].rcpt = i;
		recs[n].action = "failed";
		recs[n].status = "5.4.7";
		recs[n].diag_type = "x-tern";
		recs[n].diag = texts[n];
		recs[n].mta = last != NULL ? last->mta : "";
		recs[n].when = (long long)time(NULL);
		qmgr_message_log(m, i, "none", "5.4.7", "expired", texts[n]);
		n++;
	}
	if (n > 0 && status_log_append(m->q.id, recs, n, &err) < 0) {
		msg_warn("%s", err);
		n = 0;
	} else {
		for (i = 0; i < n; i++)
			m->state[recs[i].rcpt] = QMGR_RCPT_FAILED;
	}
	for (i = 0; i < pending; i++)
		free(texts[i]);
	free(texts);
	free(recs);
	return n;
}

/*
 * Failure notice: to the sender; for the null sender to postmaster,
 * unless the message is itself a double bounce. 0, or -1 when it could
 * not be written (the recipients stay pending then).
 */
static int
qmgr_bounce(struct qmgr_msg *m, const struct status_log *log, int *rcpts)
{
	const char *kind = qfile_attr(&m->q, DSN_ATTR_NOTICE);
	int n;

	if (*m->q.sender != '\0') {
		n = qmgr_collect(m, QMGR_RCPT_FAILED, DSN_FAILED, rcpts);
		return n == 0 ? 0
		              : qmgr_notice(m, DSN_FAILED, rcpts, n, log,
		                    m->q.sender, "sender non-delivery");
	}
	n = qmgr_collect(m, QMGR_RCPT_FAILED, -1, rcpts);
	if (n == 0)
		return 0;
	if (kind != NULL && strcmp(kind, DSN_NOTICE_2BOUNCE) == 0) {
		msg_warn("%s: undeliverable double bounce discarded", m->q.id);
		return 0;
	}
	return qmgr_notice(m, DSN_FAILED, rcpts, n, log,
	    var_2bounce_notice_recipient,
	    "postmaster non-delivery");
}

/* Writes marks for recipients settled in this pass; fsync if any. */
static void
qmgr_marks(struct qmgr_msg *m, int bounced)
{
	const char *err;
	int i, marks = 0;
	char st;

	for (i = 0; i < m->q.nrcpt; i++) {
		if (m->state[i] == QMGR_RCPT_SENT)
			st = QREC_RCPT_DONE;
		else if (m->state[i] == QMGR_RCPT_FAILED && bounced)
			st = QREC_RCPT_FAILED;
		else
			continue;
		if (m->q.rcpts[i].status == st)
			continue;
		if (qfile_mark(&m->q, i, st, &err) < 0)
			msg_warn("%s", err);
		else
			marks++;
	}
	if (marks > 0 && qfile_sync(&m->q, &err) < 0)
		msg_warn("%s", err);
}

static void
qmgr_delay_warning(struct qmgr_msg *m, const struct status_log *log,
    int *rcpts)
{
	long long age = (long long)time(NULL) - m->q.arrival_sec;
	const char *err;
	int n;

	if (var_delay_warning_time == 0 || age < var_delay_warning_time ||
	    m->q.warn_off == 0 || m->q.warned || *m->q.sender == '\0')
		return;
	n = qmgr_collect(m, QMGR_RCPT_DEFERRED, DSN_DELAYED, rcpts);
	if (n > 0 && qmgr_notice(m, DSN_DELAYED, rcpts, n, log, m->q.sender,
	                 "sender delay") < 0)
		return;
	if (qfile_mark_warned(&m->q, &err) < 0 || qfile_sync(&m->q, &err) < 0)
		msg_warn("%s", err);
}

static int
qmgr_count(const struct qmgr_msg *m, int st)
{
	int i, n = 0;

	for (i = 0; i < m->q.nrcpt; i++)
		n += m->state[i] == st;
	return n;
}

void
qmgr_message_entry_done(struct qmgr_msg *m)
{
	struct status_log *log = NULL;
	const char *err;
	int *rcpts, pending, failed, success = 0, bounced = 1, i, n;

	if (--m->entries > 0)
		return;
	/* Deleted by the administrator: no notices, no marks. */
	if (m->admin == QMGR_ADMIN_DELETE) {
		qmgr_queue_release(m, 0);
		return;
	}
	pending = qmgr_count(m, QMGR_RCPT_DEFERRED);
	failed = qmgr_count(m, QMGR_RCPT_FAILED);
	for (i = 0; i < m->q.nrcpt; i++)
		success += m->notify_success[i];
	if (failed == 0 && success == 0 && pending == 0) {
		qmgr_queue_release(m, 0);
		return;
	}
	rcpts = xcalloc((size_t)m->q.nrcpt, sizeof(*rcpts));
	if ((log = status_log_read(m->q.id, m->q.nrcpt, &err)) == NULL) {
		/* The reasons are on disk; try the whole pass again later. */
		msg_warn("%s", err);
		m->retry_soon = 1;
		for (i = 0; i < m->q.nrcpt; i++)
			if (m->state[i] == QMGR_RCPT_FAILED)
				m->state[i] = QMGR_RCPT_DEFERRED;
		qmgr_marks(m, 0);
		qmgr_queue_release(m, qmgr_count(m, QMGR_RCPT_DEFERRED));
		free(rcpts);
		return;
	}
	if ((n = qmgr_expire(m, log, pending)) > 0) {
		pending -= n;
		/* The notice reads the records just appended. */
		status_log_free(&log);
		if ((log = status_log_read(m->q.id, m->q.nrcpt, &err)) == NULL)
			msg_warn("%s", err);
	}
	if (qmgr_count(m, QMGR_RCPT_FAILED) > 0 && qmgr_bounce(m, log, rcpts) < 0) {
		bounced = 0;
		m->retry_soon = 1;
		for (i = 0; i < m->q.nrcpt; i++)
			if (m->state[i] == QMGR_RCPT_FAILED) {
				m->state[i] = QMGR_RCPT_DEFERRED;
				pending++;
			}
	}
	if (success > 0 && *m->q.sender != '\0') {
		n = 0;
		for (i = 0; i < m->q.nrcpt; i++)
			if (m->notify_success[i])
				rcpts[n++] = i;
		(void)qmgr_notice(m, DSN_SUCCESS, rcpts, n, log, m->q.sender,
		    "sender delivery status");
	}
	if (pending > 0) {
		qmgr_delay_warning(m, log, rcpts);
		qmgr_marks(m, bounced);
	}
	status_log_free(&log);
	free(rcpts);
	qmgr_queue_release(m, pending);
}
