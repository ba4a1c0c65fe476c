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
 * attempt (as in Postfix); a retry time further ahead than
 * maximal_backoff_time can only come from a clock stepped backwards, and
 * is due at once. Scans do bounded work per event-loop turn. A file that
 * cannot be parsed, or has no end record outside tmp/ (where a commit
 * never puts one), is moved to corrupt/ with a log line. hold/ is never
 * scanned: its messages wait for the admin.
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

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/queue_admin.h"
#include "mail/status_log.h"
#include "base/str.h"
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
#define QMGR_MS_PER_SEC       1000

struct qmgr_scan {
	const char *state;
	DIR *dir;
	struct event_timer *timer;
	int blocked; /* stopped at the active limit, resumes on room */
	int flushed; /* a flush asked for this scan: see qmgr_flush_armed */
};

static struct qmgr_scan qmgr_scan_active = {.state = QUEUE_ACTIVE};
static struct qmgr_scan qmgr_scan_incoming = {.state = QUEUE_INCOMING};
static struct qmgr_scan qmgr_scan_deferred = {.state = QUEUE_DEFERRED};
/* Until active/ has been taken back nothing else may enter it. */
static int qmgr_recovering = 1;
static long long qmgr_nactive;
long long qmgr_nrcpt_active;
/*
 * A flush came: the next deferred/ scan (and the rest of a running one)
 * takes its messages as flushed, which defer_transports deliver. A
 * running scan passed files the flush made due, so the next one is
 * needed as well.
 */
static int qmgr_flush_armed;
/* Wall-clock time of the next deferred/ scan. */
static time_t qmgr_deferred_next;
/* Messages waiting to retry their move out of active/. */
static struct qmgr_msg *qmgr_stuck;
/* Every message in memory, for the shutdown. */
static struct qmgr_msg *qmgr_all;
/* Removes what killed writers left in tmp/: at start, then periodically. */
static struct event_timer *qmgr_tmp_timer;

static void qmgr_scan_tick(struct event_timer *t, void *ctx);

static void
qmgr_free(struct qmgr_msg *m)
{
	if (m->all_prev != NULL)
		m->all_prev->all_next = m->all_next;
	else if (qmgr_all == m)
		qmgr_all = m->all_next;
	if (m->all_next != NULL)
		m->all_next->all_prev = m->all_prev;
	qmgr_message_free(m);
}

/*
 * The active set is full: by messages, or by recipients (a message is
 * always taken when the set is empty, however many it has).
 */
static int
qmgr_full(void)
{
	return qmgr_nactive >= qmgr_active_max ||
	       (qmgr_nactive > 0 &&
	           qmgr_nrcpt_active >= var_qmgr_message_recipient_limit);
}

/* Resumes scans that stopped at the active limit. */
static void
qmgr_unblock(void)
{
	struct qmgr_scan *scans[] = {
	    &qmgr_scan_active, &qmgr_scan_incoming, &qmgr_scan_deferred};
	size_t i;

	if (qmgr_full())
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

static int
qmgr_errno_transient(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == EACCES || err == EPERM || err == EIO || err == EINTR;
}

/* Moves state/ID to corrupt/, where nothing looks at it again. */
static void
qmgr_corrupt(const char *path, const char *id, const char *why)
{
	char *to = queue_path(QUEUE_CORRUPT, id);

	if (rename(path, to) < 0)
		msg_warn("%s: corrupt queue file (%s); cannot move it to %s/: %m",
		    id, why, QUEUE_CORRUPT);
	else
		msg_warn("%s: corrupt queue file (%s); moved to %s/", id, why,
		    QUEUE_CORRUPT);
	free(to);
}

/*
 * A message pickup(8) queued names its maildrop file (maildrop_id=ID):
 * unlinks it, durably, if pickup did not get to it. 0, or -1 (try the
 * message later: delivering it now could deliver it twice).
 */
static int
qmgr_maildrop_forget(const struct qfile *q)
{
	const char *mid = qfile_attr(q, QUEUE_ATTR_MAILDROP_ID);
	const char *err;
	char *path, *dir;
	int ret = 0;

	if (mid == NULL)
		return 0;
	if (!queue_id_valid(mid)) {
		msg_warn("%s: bad %s '%s'", q->id, QUEUE_ATTR_MAILDROP_ID,
		    log_sanitize(mid, QUEUE_ID_SIZE));
		return 0;
	}
	path = queue_path(QUEUE_MAILDROP, mid);
	if (unlink(path) == 0) {
		dir = queue_path(QUEUE_MAILDROP, NULL);
		if (file_fsync_dir(dir, &err) < 0) {
			msg_warn("%s: %s", q->id, err);
			ret = -1;
		}
		free(dir);
	} else if (errno != ENOENT) {
		msg_warn("%s: unlink %s: %m", q->id, path);
		ret = -1;
	}
	free(path);
	return ret;
}

/* Opens state/ID, moves it to active/ and schedules it. */
static void
qmgr_take(const char *state, const char *id, int flushed)
{
	struct qmgr_msg *m = qmgr_message_new();
	char *path = queue_path(state, id), *to = NULL;
	const char *err;

	m->all_next = qmgr_all;
	if (qmgr_all != NULL)
		qmgr_all->all_prev = m;
	qmgr_all = m;
	errno = 0;
	if (qfile_open(path, 1, (uid_t)-1, &m->q, &err) < 0) {
		if (errno == ENOENT)
			msg_debug("%s: already taken from %s/", id, state);
		else if (qmgr_errno_transient(errno))
			msg_warn("%s", err);
		else
			qmgr_corrupt(path, id, err);
		qmgr_free(m);
		goto out;
	}
	if (!m->q.complete) {
		/* Only a commit (a rename of a whole file) brings files here. */
		qmgr_corrupt(path, id, "no end record");
		qmgr_free(m);
		goto out;
	}
	if (strcmp(state, QUEUE_ACTIVE) != 0) {
		/* Before the message can be delivered, its maildrop original
		 * must be gone, or a pickup restarted after a crash would
		 * queue it again (pickup(8) checks incoming/ first, then
		 * whether its maildrop file still has a name). */
		if (qmgr_maildrop_forget(&m->q) < 0) {
			qmgr_free(m);
			goto out;
		}
		to = queue_path(QUEUE_ACTIVE, id);
		/* The descriptor stays valid across the rename. */
		if (rename(path, to) < 0) {
			msg_warn("%s: rename %s to %s: %m", id, path, to);
			qmgr_free(m);
			goto out;
		}
	} else {
		/* A qmgr before this one may have had it delivered. */
		m->recovered = 1;
	}
	qmgr_nactive++;
	m->flushed = flushed;
	qmgr_message_load(m);
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
	/* Beyond any backoff: the clock went back; do not wait for it. */
	if (st.st_mtime <= now ||
	    st.st_mtime - now > (time_t)var_maximal_backoff_time)
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
		if (s == &qmgr_scan_deferred) {
			qmgr_deferred_next = now + (time_t)var_queue_run_delay;
			s->flushed = qmgr_flush_armed;
			qmgr_flush_armed = 0;
		}
	}
	for (n = 0; n < QMGR_SCAN_BATCH; n++) {
		if (qmgr_full()) {
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
		qmgr_take(s->state, de->d_name, s->flushed);
	}
	if (de != NULL) {
		event_timer_reset(s->timer, QMGR_SCAN_AGAIN_MS);
		return;
	}
	if (errno != 0)
		msg_warn("readdir %s/: %m", s->state);
	closedir(s->dir);
	s->dir = NULL;
	s->flushed = 0;
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
	if (qmgr_recovering || qmgr_full()) {
		/* The file waits in incoming/ for a later scan. */
		msg_debug("%s: notice deferred (%s)", id,
		    qmgr_recovering ? "recovering" : "active queue full");
		if (!qmgr_recovering)
			qmgr_scan_incoming.blocked = 1;
		return;
	}
	qmgr_take(QUEUE_INCOMING, id, 0);
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
		if (errno == ENOENT) {
			/* Removed or moved by ternsuper while qmgr could not be
			 * asked: nothing is left to defer. */
			msg_warn("%s: gone from %s/ before its deferral; forgotten",
			    m->q.id, QUEUE_ACTIVE);
		} else {
			msg_warn("%s: rename %s to %s: %m; will try again",
			    m->q.id, path, to);
			ret = -1;
		}
	} else {
		msg_info("%s: deferred, pending=%d, retry=%llds", m->q.id,
		    pending, delay);
		qmgr_deferred_due(now + (time_t)delay);
	}
	free(to);
	return ret;
}

static void qmgr_release(struct qmgr_msg *m, int pending);

static void
qmgr_stuck_retry(struct event_timer *t, void *ctx)
{
	struct qmgr_msg *m = ctx, **pp;

	(void)t;
	for (pp = &qmgr_stuck; *pp != m; pp = &(*pp)->next_stuck)
		;
	*pp = m->next_stuck;
	event_timer_del(&m->stuck);
	qmgr_release(m, m->stuck_pending);
}

/*
 * Moves active/ID to state/ID for the administrator (hold/, or maildrop/
 * with pickup's ready mark). 0, or -1 when the file is still in active/.
 */
static int
qmgr_admin_move(struct qmgr_msg *m, const char *path, const char *state,
    const char *what)
{
	char *to = queue_path(state, m->q.id);
	int ret = 0;

	if (strcmp(state, QUEUE_MAILDROP) == 0 &&
	    fchmod(m->q.fd, QUEUE_ADMIN_REQUEUE_MODE) < 0)
		msg_warn("%s: fchmod: %m", m->q.id);
	if (rename(path, to) < 0) {
		if (errno == ENOENT) {
			msg_warn("%s: gone from %s/ before it could be %s",
			    m->q.id, QUEUE_ACTIVE, what);
		} else {
			msg_warn("%s: rename %s to %s: %m; will try again",
			    m->q.id, path, to);
			ret = -1;
		}
	} else {
		/* A requeued message comes back under a new ID. */
		if (strcmp(state, QUEUE_MAILDROP) == 0 &&
		    status_log_remove(m->q.id) < 0)
			msg_warn("%s: cannot remove its status log: %m", m->q.id);
		msg_info("%s: %s", m->q.id, what);
	}
	free(to);
	return ret;
}

static void
qmgr_release(struct qmgr_msg *m, int pending)
{
	char *path = queue_path(QUEUE_ACTIVE, m->q.id);
	int ret = 0;

	if (pending > 0 && m->admin == QMGR_ADMIN_HOLD)
		ret = qmgr_admin_move(m, path, QUEUE_HOLD, "placed on hold");
	else if (pending > 0 && m->admin == QMGR_ADMIN_REQUEUE)
		ret = qmgr_admin_move(m, path, QUEUE_MAILDROP, "requeued");
	else if (pending > 0 && m->admin != QMGR_ADMIN_DELETE)
		ret = qmgr_defer(m, path, pending);
	else if (unlink(path) < 0 && errno != ENOENT) {
		msg_warn("%s: unlink %s: %m; will try again", m->q.id, path);
		ret = -1;
	} else {
		if (status_log_remove(m->q.id) < 0)
			msg_warn("%s: cannot remove its status log: %m", m->q.id);
		msg_info("%s: removed", m->q.id);
	}
	free(path);
	/*
	 * A file left in active/ is only looked at again when qmgr starts:
	 * keep the message, and its active slot, and retry the move.
	 */
	if (ret < 0) {
		m->stuck_pending = pending;
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
qmgr_queue_release(struct qmgr_msg *m, int pending)
{
	qmgr_release(m, pending);
}

static const char *
qmgr_admin_name(enum qmgr_admin what)
{
	return what == QMGR_ADMIN_DELETE ? QUEUE_ADMIN_DELETE
	       : what == QMGR_ADMIN_HOLD ? QUEUE_ADMIN_HOLD
	                                 : QUEUE_ADMIN_REQUEUE;
}

/* active/ID that no pass holds: nothing is in flight, act now. */
static const char *
qmgr_admin_file(const char *id, enum qmgr_admin what)
{
	char *path = queue_path(QUEUE_ACTIVE, id);
	const char *ret = QUEUE_ADMIN_ABSENT;
	struct qmgr_msg m;
	int fd;

	/* A scan that listed the name finds it gone (ENOENT: not taken). */
	if (what == QMGR_ADMIN_DELETE) {
		if (unlink(path) == 0) {
			if (status_log_remove(id) < 0)
				msg_warn("%s: cannot remove its status log: %m", id);
			msg_info("%s: removed", id);
			ret = QUEUE_ADMIN_DONE;
		} else if (errno != ENOENT) {
			msg_warn("%s: unlink %s: %m", id, path);
		}
		free(path);
		return ret;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			msg_warn("%s: open %s: %m", id, path);
		free(path);
		return ret;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.q.id, sizeof(m.q.id), "%s", id);
	m.q.fd = fd;
	if (qmgr_admin_move(&m, path,
	        what == QMGR_ADMIN_HOLD ? QUEUE_HOLD : QUEUE_MAILDROP,
	        what == QMGR_ADMIN_HOLD ? "placed on hold" : "requeued") == 0)
		ret = QUEUE_ADMIN_DONE;
	close(fd);
	free(path);
	return ret;
}

const char *
qmgr_queue_admin(const char *id, enum qmgr_admin what)
{
	struct qmgr_msg *m;

	for (m = qmgr_all; m != NULL; m = m->all_next)
		if (strcmp(m->q.id, id) == 0)
			break;
	if (m == NULL)
		return qmgr_admin_file(id, what);
	/* A delete wins over a hold or requeue asked for before. */
	if (m->admin != QMGR_ADMIN_DELETE)
		m->admin = what;
	msg_info("%s: %s requested by the administrator", id,
	    qmgr_admin_name(what));
	/* Its move out of active/ failed before: the retry does it. */
	if (m->stuck != NULL)
		return QUEUE_ADMIN_LATER;
	/* This entry keeps m alive through the withdrawal. */
	m->entries++;
	qmgr_transport_withdraw(m);
	if (m->entries > 1) {
		qmgr_message_entry_done(m);
		return QUEUE_ADMIN_LATER;
	}
	qmgr_message_entry_done(m);
	return QUEUE_ADMIN_DONE;
}

static void
qmgr_flush_arm(void)
{
	qmgr_flush_armed = 1;
	if (qmgr_scan_deferred.dir != NULL)
		qmgr_scan_deferred.flushed = 1;
}

/* 1 if rcpt_domain is domain, or (subdomains) a name below it. */
static int
qmgr_flush_domain(const char *rcpt_domain, const char *domain, int subdomains)
{
	size_t rl = strlen(rcpt_domain), dl = strlen(domain);

	return str_eq_ci(rcpt_domain, domain) ||
	       (subdomains && rl > dl && rcpt_domain[rl - dl - 1] == '.' &&
	           str_eq_ci(rcpt_domain + rl - dl, domain));
}

/* 1 if the file at dirfd/name has a pending recipient in domain (or,
 * with subdomains, below it: ETRN @domain). */
static int
qmgr_flush_match(
    int dirfd, const char *name, const char *domain, int subdomains)
{
	struct qfile q;
	const char *err, *at;
	int fd, i, found = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (qfile_open_fd(fd, name, (uid_t)-1, &q, &err) < 0)
		return 0;
	for (i = 0; i < q.nrcpt && !found; i++)
		found = q.rcpts[i].status == QREC_RCPT &&
		        (at = strrchr(q.rcpts[i].addr, '@')) != NULL &&
		        qmgr_flush_domain(at + 1, domain, subdomains);
	qfile_close(&q);
	return found;
}

void
qmgr_queue_flush(const char *domain, int subdomains)
{
	char *path = queue_path(QUEUE_DEFERRED, NULL);
	struct timespec times[2];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	qmgr_transport_revive_all();
	qmgr_flush_arm();
	if ((dir = opendir(path)) == NULL) {
		msg_warn("open %s: %m", path);
		free(path);
		return;
	}
	times[0].tv_nsec = UTIME_OMIT;
	times[1].tv_sec = time(NULL);
	times[1].tv_nsec = 0;
	/* Bounded by the directory; each file is one utimensat. */
	while ((de = readdir(dir)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (domain != NULL && *domain != '\0' &&
		    !qmgr_flush_match(
		        dirfd(dir), de->d_name, domain, subdomains))
			continue;
		if (utimensat(dirfd(dir), de->d_name, times,
		        AT_SYMLINK_NOFOLLOW) == 0)
			n++;
	}
	closedir(dir);
	free(path);
	msg_info("flush%s%s: %d deferred message(s) due now",
	    domain == NULL || *domain == '\0' ? ""
	    : subdomains                      ? " @"
	                                      : " ",
	    domain != NULL ? log_sanitize(domain, ADDR_PATH_MAX) : "", n);
	qmgr_deferred_due(time(NULL));
}

void
qmgr_queue_flush_id(const char *id)
{
	char *path = queue_path(QUEUE_DEFERRED, id);
	struct timespec times[2];

	times[0].tv_nsec = UTIME_OMIT;
	times[1].tv_sec = time(NULL);
	times[1].tv_nsec = 0;
	/* Its destination may be dead-until; the user asked for now. */
	qmgr_transport_revive_all();
	qmgr_flush_arm();
	if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) < 0) {
		msg_info("flush %s: not in %s/ (%m)", id, QUEUE_DEFERRED);
	} else {
		msg_info("flush %s: due now", id);
		qmgr_deferred_due(times[1].tv_sec);
	}
	free(path);
}

void
qmgr_queue_shutdown(void)
{
	struct qmgr_scan *scans[] = {
	    &qmgr_scan_active, &qmgr_scan_incoming, &qmgr_scan_deferred};
	size_t i;

	/* Files stay where they are: active/ is taken back at the start. */
	qmgr_transport_shutdown();
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
