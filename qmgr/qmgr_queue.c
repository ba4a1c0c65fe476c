/* SPDX-License-Identifier: MIT */
/*
 * The queue manager's view of the queue directories: which files enter
 * the active queue (kept in memory, bounded by qmgr_active_limit), and
 * where each goes when its delivery pass is over. Every move is one
 * rename(2). At start every file left in active/ is taken back (a crash
 * may repeat deliveries, never lose one); then incoming/ is scanned every
 * few seconds (notices from smtpd make that a fallback) and deferred/ when
 * its earliest retry time comes. A deferred file's mtime is its next
 * attempt time; the delay is the message's age, clamped between
 * minimal_backoff_time and maximal_backoff_time, so it doubles with each
 * attempt (as in Postfix). Scans do bounded work per event-loop turn.
 * Delivery status notifications (RFC 3464) are not generated yet: a
 * message with failed recipients is kept in hold/ instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "qmgr.h"

/* Directory entries looked at per event-loop turn. */
#define QMGR_SCAN_BATCH       100
/* A scan with entries left resumes after pending events are served. */
#define QMGR_SCAN_AGAIN_MS    0
/* incoming/ is only a fallback for lost notices. */
#define QMGR_INCOMING_SCAN_MS 5000
/* Retry times have one-second resolution; never scan more often. */
#define QMGR_DEFERRED_MIN_MS  1000
/* Seconds before retrying a message whose request to local was lost. */
#define QMGR_RETRY_SOON       5
/* Retry interval for a message whose move out of active/ failed. */
#define QMGR_STUCK_RETRY_MS   5000
/* tmp/ files younger than this are never stale (a writer takes its lock
 * right after creating the file; this leaves that instant alone). */
#define QMGR_TMP_MIN_AGE      10
/* tmp/ entries looked at per sweep. */
#define QMGR_TMP_SWEEP_MAX    1000
/* Incomplete files remembered so each is warned about once. */
#define QMGR_WARNED_MAX       64
/* Delays under this print as 0; under QMGR_DELAY_WIDE with a fraction. */
#define QMGR_DELAY_MIN        0.01
#define QMGR_DELAY_WIDE       10.0
#define QMGR_DELAY_SIZE       32
#define QMGR_MS_PER_SEC       1000
#define QMGR_USEC_PER_SEC     1e6

struct qmgr_scan {
	const char *state;
	DIR *dir;
	struct event_timer *timer;
	int blocked; /* stopped at the active limit, resumes on room */
};

static struct qmgr_scan qmgr_scan_active = {.state = QUEUE_ACTIVE};
static struct qmgr_scan qmgr_scan_incoming = {.state = QUEUE_INCOMING};
static struct qmgr_scan qmgr_scan_deferred = {.state = QUEUE_DEFERRED};
/* Until active/ has been taken back nothing else may enter it. */
static int qmgr_recovering = 1;
static long long qmgr_nactive;
/* Wall-clock time of the next deferred/ scan. */
static time_t qmgr_deferred_next;
/* Messages waiting to retry their move out of active/. */
static struct qmgr_msg *qmgr_stuck;
/* Every message in memory, for the shutdown. */
static struct qmgr_msg *qmgr_all;
static char qmgr_warned[QMGR_WARNED_MAX][QUEUE_ID_SIZE];
/* Removes what killed writers left in tmp/: at start, then periodically. */
static struct event_timer *qmgr_tmp_timer;
static int qmgr_warned_next;

static void qmgr_scan_tick(struct event_timer *t, void *ctx);

/* Postfix-style delay: "0.04", "1.2", "37". */
static void
qmgr_delay(const struct qfile *q, char *out, size_t n)
{
	struct timeval now;
	double d;

	gettimeofday(&now, NULL);
	d = (double)(now.tv_sec - q->arrival_sec) +
	    (double)(now.tv_usec - q->arrival_usec) / QMGR_USEC_PER_SEC;
	if (d < QMGR_DELAY_MIN)
		snprintf(out, n, "0");
	else if (d < 1)
		snprintf(out, n, "%.2f", d);
	else if (d < QMGR_DELAY_WIDE)
		snprintf(out, n, "%.1f", d);
	else
		snprintf(out, n, "%.0f", d);
}

/* Status lines for recipients no delivery agent sees. */
static void
qmgr_log_rcpt(const struct qmgr_msg *m, int i, const char *dsn,
    const char *status, const char *text)
{
	char delay[QMGR_DELAY_SIZE];

	qmgr_delay(&m->q, delay, sizeof(delay));
	msg_info("%s: to=<%s>, relay=none, delay=%s, dsn=%s, status=%s (%s)",
	    m->q.id, log_sanitize(m->q.rcpts[i].addr, ADDR_PATH_MAX), delay,
	    dsn, status, text);
}

static void
qmgr_free(struct qmgr_msg *m)
{
	if (m->all_prev != NULL)
		m->all_prev->all_next = m->all_next;
	else if (qmgr_all == m)
		qmgr_all = m->all_next;
	if (m->all_next != NULL)
		m->all_next->all_prev = m->all_prev;
	event_timer_del(&m->stuck);
	qfile_close(&m->q);
	free(m->local_rcpts);
	free(m);
}

/* Resumes scans that stopped at the active limit. */
static void
qmgr_unblock(void)
{
	struct qmgr_scan *scans[] = {
	    &qmgr_scan_active, &qmgr_scan_incoming, &qmgr_scan_deferred};
	size_t i;

	if (qmgr_nactive >= qmgr_active_max)
		return;
	for (i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		if (scans[i]->blocked && scans[i]->timer != NULL) {
			scans[i]->blocked = 0;
			event_timer_reset(scans[i]->timer, QMGR_SCAN_AGAIN_MS);
		}
	}
}

/* Arms the deferred scan for when (wall clock), unless one comes sooner. */
static void
qmgr_deferred_due(time_t when)
{
	struct qmgr_scan *s = &qmgr_scan_deferred;
	time_t now = time(NULL);
	uint64_t ms;

	if (when >= qmgr_deferred_next)
		return;
	qmgr_deferred_next = when;
	/* A running or blocked scan re-arms itself from qmgr_deferred_next. */
	if (s->timer == NULL || s->dir != NULL || s->blocked)
		return;
	ms = when > now ? (uint64_t)(when - now) * QMGR_MS_PER_SEC : 0;
	event_timer_reset(
	    s->timer, ms < QMGR_DEFERRED_MIN_MS ? QMGR_DEFERRED_MIN_MS : ms);
}

/*
 * Decides where each pending recipient goes, marks the undeliverable ones
 * and hands the rest to the local transport.
 */
static void
qmgr_load(struct qmgr_msg *m)
{
	struct resolve_result r;
	const char *err;
	int i, marks = 0;

	msg_info("%s: from=<%s>, size=%llu, nrcpt=%d (queue active)", m->q.id,
	    log_sanitize(m->q.sender, ADDR_PATH_MAX),
	    (unsigned long long)m->q.content_len, m->q.nrcpt);
	m->local_rcpts = xcalloc(
	    m->q.nrcpt > 0 ? (size_t)m->q.nrcpt : 1, sizeof(*m->local_rcpts));
	for (i = 0; i < m->q.nrcpt; i++) {
		if (m->q.rcpts[i].status != QREC_RCPT)
			continue;
		if (resolve_address(m->q.rcpts[i].addr, &r) < 0) {
			qmgr_log_rcpt(
			    m, i, "5.1.3", "bounced", "bad address syntax");
			if (qfile_mark(&m->q, i, QREC_RCPT_FAILED, &err) < 0)
				msg_warn("%s", err);
			else
				marks++;
		} else if (r.class == RESOLVE_REMOTE ||
		           r.class == RESOLVE_RELAY) {
			qmgr_log_rcpt(m, i, "4.3.5", "deferred",
			    "remote delivery is not available yet");
		} else {
			m->local_rcpts[m->nlocal++] = i;
		}
		resolve_free(&r);
	}
	if (marks > 0 && qfile_sync(&m->q, &err) < 0)
		msg_warn("%s", err);
	if (m->nlocal == 0)
		qmgr_queue_done(m);
	else
		qmgr_deliver_add(m);
}

static int
qmgr_errno_transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == EACCES || err == EPERM || err == EIO || err == EINTR;
}

/* Logs an incomplete file once per qmgr lifetime (or ring turn). */
static void
qmgr_warn_incomplete(const char *state, const char *id)
{
	int i;

	for (i = 0; i < QMGR_WARNED_MAX; i++)
		if (strcmp(qmgr_warned[i], id) == 0)
			return;
	snprintf(qmgr_warned[qmgr_warned_next], QUEUE_ID_SIZE, "%s", id);
	qmgr_warned_next = (qmgr_warned_next + 1) % QMGR_WARNED_MAX;
	msg_warn("%s: queue file in %s/ has no end record; leaving it alone",
	    id, state);
}

/* Opens state/ID, moves it to active/ and schedules it. */
static void
qmgr_take(const char *state, const char *id)
{
	struct qmgr_msg *m = xcalloc(1, sizeof(*m));
	char *path = queue_path(state, id), *to = NULL;

	m->all_next = qmgr_all;
	if (qmgr_all != NULL)
		qmgr_all->all_prev = m;
	qmgr_all = m;
	const char *err;

	errno = 0;
	if (qfile_open(path, 1, (uid_t)-1, &m->q, &err) < 0) {
		if (errno == ENOENT) {
			msg_debug("%s: already taken from %s/", id, state);
		} else if (qmgr_errno_transient(errno)) {
			msg_warn("%s", err);
		} else {
			to = queue_path(QUEUE_CORRUPT, id);
			if (rename(path, to) < 0)
				msg_warn("%s: corrupt queue file (%s); cannot "
				         "move it to %s/: %m",
				    id, err, QUEUE_CORRUPT);
			else
				msg_warn(
				    "%s: corrupt queue file (%s); moved to "
				    "%s/",
				    id, err, QUEUE_CORRUPT);
		}
		qmgr_free(m);
		goto out;
	}
	if (!m->q.complete) {
		qmgr_warn_incomplete(state, id);
		qmgr_free(m);
		goto out;
	}
	if (strcmp(state, QUEUE_ACTIVE) != 0) {
		to = queue_path(QUEUE_ACTIVE, id);
		/* The descriptor stays valid across the rename. */
		if (rename(path, to) < 0) {
			msg_warn("%s: rename %s to %s: %m", id, path, to);
			qmgr_free(m);
			goto out;
		}
	}
	qmgr_nactive++;
	qmgr_load(m);
out:
	free(path);
	free(to);
}

/* 1 if deferred/NAME is due; else notes its time for the next scan. */
static int
qmgr_scan_due(DIR *dir, const char *name, time_t now)
{
	struct stat st;

	if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0; /* gone meanwhile */
	if (st.st_mtime <= now)
		return 1;
	if (st.st_mtime < qmgr_deferred_next)
		qmgr_deferred_next = st.st_mtime;
	return 0;
}

static void
qmgr_scan_finished(struct qmgr_scan *s)
{
	time_t now = time(NULL);
	uint64_t ms;

	if (s == &qmgr_scan_active) {
		event_timer_del(&s->timer);
		qmgr_recovering = 0;
		msg_debug("recovery of %s/ done", QUEUE_ACTIVE);
		qmgr_scan_incoming.timer = event_timer_add(qmgr_loop,
		    QMGR_SCAN_AGAIN_MS, qmgr_scan_tick, &qmgr_scan_incoming);
		qmgr_scan_deferred.timer = event_timer_add(qmgr_loop,
		    QMGR_SCAN_AGAIN_MS, qmgr_scan_tick, &qmgr_scan_deferred);
	} else if (s == &qmgr_scan_incoming) {
		event_timer_reset(s->timer, QMGR_INCOMING_SCAN_MS);
	} else {
		ms =
		    qmgr_deferred_next > now
		        ? (uint64_t)(qmgr_deferred_next - now) * QMGR_MS_PER_SEC
		        : 0;
		event_timer_reset(s->timer,
		    ms < QMGR_DEFERRED_MIN_MS ? QMGR_DEFERRED_MIN_MS : ms);
	}
}

static void
qmgr_scan_tick(struct event_timer *t, void *ctx)
{
	struct qmgr_scan *s = ctx;
	time_t now = time(NULL);
	struct dirent *de = NULL;
	char *path;
	int n;

	(void)t;
	if (s->dir == NULL) {
		path = queue_path(s->state, NULL);
		s->dir = opendir(path);
		if (s->dir == NULL) {
			msg_warn("open %s: %m", path);
			free(path);
			event_timer_reset(s->timer, QMGR_INCOMING_SCAN_MS);
			return;
		}
		free(path);
		if (s == &qmgr_scan_deferred)
			qmgr_deferred_next = now + (time_t)var_queue_run_delay;
	}
	for (n = 0; n < QMGR_SCAN_BATCH; n++) {
		if (qmgr_nactive >= qmgr_active_max) {
			s->blocked = 1; /* qmgr_unblock() resumes */
			return;
		}
		errno = 0;
		if ((de = readdir(s->dir)) == NULL)
			break;
		if (!queue_id_valid(de->d_name))
			continue;
		if (s == &qmgr_scan_deferred &&
		    !qmgr_scan_due(s->dir, de->d_name, now))
			continue;
		qmgr_take(s->state, de->d_name);
	}
	if (de != NULL) {
		event_timer_reset(s->timer, QMGR_SCAN_AGAIN_MS);
		return;
	}
	if (errno != 0)
		msg_warn("readdir %s/: %m", s->state);
	closedir(s->dir);
	s->dir = NULL;
	qmgr_scan_finished(s);
}

/*
 * A killed smtpd leaves its half-written file in tmp/, where nothing else
 * would ever look (one of 7.7 MB was found). Files whose writer is gone
 * are recognised by their free lock (qfile_tmp_stale).
 */
static void
qmgr_tmp_sweep(struct event_timer *t, void *ctx)
{
	char *path = queue_path(QUEUE_TMP, NULL);
	struct dirent *de;
	DIR *dir;
	int n = 0, removed = 0;

	(void)ctx;
	if ((dir = opendir(path)) == NULL) {
		msg_warn("open %s: %m", path);
	} else {
		while (n++ < QMGR_TMP_SWEEP_MAX && (de = readdir(dir)) != NULL)
			if (queue_id_valid(de->d_name) &&
			    qfile_tmp_stale(
			        dirfd(dir), de->d_name, QMGR_TMP_MIN_AGE)) {
				msg_info("%s: removed a stale file from %s/",
				    de->d_name, QUEUE_TMP);
				removed++;
			}
		closedir(dir);
	}
	free(path);
	msg_debug("tmp/ sweep: %d removed", removed);
	event_timer_reset(t, (uint64_t)var_queue_run_delay * QMGR_MS_PER_SEC);
}

void
qmgr_queue_init(void)
{
	qmgr_tmp_timer = event_timer_add(qmgr_loop, 0, qmgr_tmp_sweep, NULL);
	qmgr_deferred_next = time(NULL) + (time_t)var_queue_run_delay;
	qmgr_scan_active.timer = event_timer_add(
	    qmgr_loop, QMGR_SCAN_AGAIN_MS, qmgr_scan_tick, &qmgr_scan_active);
}

void
qmgr_queue_notice(const char *id)
{
	if (qmgr_recovering || qmgr_nactive >= qmgr_active_max) {
		/* The file waits in incoming/ for a later scan. */
		msg_debug("%s: notice deferred (%s)", id,
		    qmgr_recovering ? "recovering" : "active queue full");
		if (!qmgr_recovering)
			qmgr_scan_incoming.blocked = 1;
		return;
	}
	qmgr_take(QUEUE_INCOMING, id);
}

/*
 * Moves active/ID to deferred/ID with the next attempt time as mtime.
 * 0, or -1 when the file is still in active/.
 */
static int
qmgr_defer(struct qmgr_msg *m, const char *path, int pending)
{
	time_t now = time(NULL);
	long long delay = (long long)(now - m->q.arrival_sec);
	long long lo =
	    m->retry_soon ? QMGR_RETRY_SOON : var_minimal_backoff_time;
	long long hi =
	    m->retry_soon ? var_minimal_backoff_time : var_maximal_backoff_time;
	struct timespec times[2];
	char *to;
	int ret = 0;

	if (delay < lo)
		delay = lo;
	if (delay > hi)
		delay = hi;
	times[0].tv_sec = now;
	times[0].tv_nsec = 0;
	times[1].tv_sec = now + (time_t)delay;
	times[1].tv_nsec = 0;
	/* After the marks: writing the status bytes would reset the mtime. */
	if (futimens(m->q.fd, times) < 0)
		msg_warn("%s: cannot set the retry time: %m", m->q.id);
	to = queue_path(QUEUE_DEFERRED, m->q.id);
	if (rename(path, to) < 0) {
		msg_warn("%s: rename %s to %s: %m; will try again", m->q.id,
		    path, to);
		ret = -1;
	} else {
		msg_info("%s: deferred, pending=%d, retry=%llds", m->q.id,
		    pending, delay);
		qmgr_deferred_due(now + (time_t)delay);
	}
	free(to);
	return ret;
}

static void
qmgr_stuck_retry(struct event_timer *t, void *ctx)
{
	struct qmgr_msg *m = ctx, **pp;

	(void)t;
	for (pp = &qmgr_stuck; *pp != m; pp = &(*pp)->next_stuck)
		;
	*pp = m->next_stuck;
	event_timer_del(&m->stuck);
	qmgr_queue_done(m);
}

/* Recipients marked failed: until bounces exist, nobody is told. */
static int
qmgr_failed(const struct qfile *q)
{
	int i, n = 0;

	for (i = 0; i < q->nrcpt; i++)
		n += q->rcpts[i].status == QREC_RCPT_FAILED;
	return n;
}

/*
 * A message whose every recipient is done but some failed: nobody can be
 * told yet (bounces come with the queue issue), so it is kept in hold/
 * for the admin instead of vanishing. 0, or -1 if still in active/.
 */
static int
qmgr_hold(struct qmgr_msg *m, const char *path, int failed)
{
	char *to = queue_path(QUEUE_HOLD, m->q.id);
	int ret = 0;

	if (rename(path, to) < 0) {
		msg_warn("%s: rename %s to %s: %m; will try again", m->q.id,
		    path, to);
		ret = -1;
	} else
		msg_info("%s: held: %d recipient(s) failed and no bounce can "
		         "be sent yet; the message stays in %s/",
		    m->q.id, failed, QUEUE_HOLD);
	free(to);
	return ret;
}

void
qmgr_queue_done(struct qmgr_msg *m)
{
	char *path = queue_path(QUEUE_ACTIVE, m->q.id);
	int pending = qfile_pending(&m->q), failed = qmgr_failed(&m->q);
	int ret = 0;

	if (pending > 0)
		ret = qmgr_defer(m, path, pending);
	else if (failed > 0)
		ret = qmgr_hold(m, path, failed);
	else if (unlink(path) < 0 && errno != ENOENT) {
		msg_warn("%s: unlink %s: %m; will try again", m->q.id, path);
		ret = -1;
	} else
		msg_info("%s: removed", m->q.id);
	free(path);
	/*
	 * A file left in active/ is only looked at again when qmgr starts:
	 * keep the message, and its active slot, and retry the move.
	 */
	if (ret < 0) {
		m->stuck = event_timer_add(
		    qmgr_loop, QMGR_STUCK_RETRY_MS, qmgr_stuck_retry, m);
		m->next_stuck = qmgr_stuck;
		qmgr_stuck = m;
		return;
	}
	qmgr_free(m);
	qmgr_nactive--;
	qmgr_unblock();
}

void
qmgr_queue_shutdown(void)
{
	struct qmgr_scan *scans[] = {
	    &qmgr_scan_active, &qmgr_scan_incoming, &qmgr_scan_deferred};
	size_t i;

	/* Files stay where they are: active/ is taken back at the start. */
	while (qmgr_all != NULL)
		qmgr_free(qmgr_all);
	event_timer_del(&qmgr_tmp_timer);
	qmgr_stuck = NULL;
	for (i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		event_timer_del(&scans[i]->timer);
		if (scans[i]->dir != NULL)
			closedir(scans[i]->dir);
		scans[i]->dir = NULL;
	}
}
