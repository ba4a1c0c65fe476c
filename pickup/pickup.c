/* SPDX-License-Identifier: MIT */
/*
 * pickup: takes what terndrop(1) (sendmail) left in maildrop/ and what
 * ternsuper -r moved there, and passes it through cleanup into incoming/
 * (Postfix's pickup(8)). It runs as mail_owner and trusts nothing in a
 * user's file: the strict queue-file reader parses it, only the sender,
 * the pending recipients and three attributes (fullname, envid, ret) are
 * taken, and cleanup writes a new queue file of its own with the
 * submitter's uid from the file's owner. A file is never renamed into
 * the queue, so a user cannot plant envelope attributes or recipient
 * marks. A file owned by mail_owner that carries a protocol attribute is
 * a requeued queue file (only tern can make such a file): its arrival
 * time, attributes and content (without a new Received:) are kept.
 *
 * Files: maildrop/ID is "ready" when its owner-execute bit is set
 * (terndrop sets it after the last fsync); a file without it is still
 * being written, or was abandoned (removed after PICKUP_STALE_S).
 * Anything malformed goes to corrupt/ with a log line.
 *
 * No duplicates after a crash: the new queue file keeps the maildrop ID
 * and names it (maildrop_id=ID). pickup commits it, then unlinks the
 * maildrop file; qmgr unlinks it too (durably) before it moves the
 * message out of incoming/. So a maildrop file seen again after a crash
 * is either already queued (incoming/ID or hold/ID with maildrop_id=ID:
 * just unlink it) or, once qmgr took the message, has no name left
 * (st_nlink == 0 on the descriptor opened before the check).
 *
 * Wake-ups: inotify on maildrop/ (a new ready file: IN_ATTRIB from the
 * chmod, IN_MOVED_TO from ternsuper -r), and a rescan every
 * PICKUP_RESCAN_MS in case an event was missed. No RFCs; see pickup(8).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/event.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/cleanup.h"
#include "mail/dsn.h"
#include "mail/header_checks.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "mail/status_log.h"
#include "mail/virtual_alias.h"

#define PICKUP_RESCAN_MS 60000
/* After a transient failure (a full disk, a table that did not answer). */
#define PICKUP_RETRY_MS 5000
/* Files taken per event-loop turn, so SIGTERM is not kept waiting. */
#define PICKUP_BATCH 200
/* A file never made ready: its terndrop died. */
#define PICKUP_STALE_S (24 * 3600)
#define PICKUP_COPY_BUF 65536
#define PICKUP_INOTIFY_BUF 4096
#define PICKUP_ENVID_MAX 100 /* RFC 3461 4.4 */
#define PICKUP_FULLNAME_MAX 256

static struct event_loop *pickup_loop;
static struct event_timer *pickup_timer;
static struct event_fd *pickup_notify_ev;
static int pickup_notify_fd = -1;
static int pickup_maildrop_fd = -1;
static struct header_checks *pickup_headers;

enum pickup_result {
	PICKUP_DONE,  /* taken (or not ours to take): go on */
	PICKUP_RETRY, /* a transient failure: try the file again later */
};

static void pickup_schedule(uint64_t ms);

/* Unlinks maildrop/ID, durably: after this a restarted pickup cannot
 * take the message again. */
static void
pickup_unlink(const char *mid)
{
	const char *err;
	char *dir;

	if (unlinkat(pickup_maildrop_fd, mid, 0) < 0 && errno != ENOENT) {
		msg_warn("%s: unlink %s/%s: %m", mid, QUEUE_MAILDROP, mid);
		return;
	}
	dir = queue_path(QUEUE_MAILDROP, NULL);
	if (file_fsync_dir(dir, &err) < 0)
		msg_warn("%s: %s", mid, err);
	free(dir);
}

/* Moves maildrop/ID to corrupt/ID with the reason in the log. */
static void
pickup_corrupt(const char *mid, const char *why)
{
	char *to = queue_path(QUEUE_CORRUPT, mid);

	msg_warn("%s: malformed maildrop file moved to %s/: %s", mid,
	    QUEUE_CORRUPT, why);
	if (renameat(pickup_maildrop_fd, mid, AT_FDCWD, to) < 0) {
		msg_warn("%s: rename to %s: %m; removing it", mid, to);
		pickup_unlink(mid);
	}
	free(to);
}

/*
 * What state/ID holds: 1 a message made from maildrop file ID, 0
 * nothing, -1 another message with the same ID (a queue ID collision:
 * this file needs a fresh ID).
 */
static int
pickup_queued_in(const char *state, const char *mid)
{
	struct qfile q;
	const char *err, *v;
	char *path = queue_path(state, mid);
	int ret;

	errno = 0;
	if (qfile_open(path, 0, (uid_t)-1, &q, &err) < 0) {
		ret = errno == ENOENT ? 0 : -1;
		free(path);
		return ret;
	}
	v = qfile_attr(&q, QUEUE_ATTR_MAILDROP_ID);
	ret = v != NULL && strcmp(v, mid) == 0 ? 1 : -1;
	qfile_close(&q);
	free(path);
	return ret;
}

/*
 * 1 if maildrop file mid was queued before a crash; else 0, with
 * *fresh_id set when its ID is taken by another message.
 */
static int
pickup_already(const char *mid, int *fresh_id)
{
	static const char *const committed[] = {QUEUE_INCOMING, QUEUE_HOLD};
	static const char *const others[] = {QUEUE_ACTIVE, QUEUE_DEFERRED};
	size_t i;
	int r;

	*fresh_id = 0;
	for (i = 0; i < sizeof(committed) / sizeof(committed[0]); i++) {
		r = pickup_queued_in(committed[i], mid);
		if (r > 0)
			return 1;
		if (r < 0)
			*fresh_id = 1;
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (pickup_queued_in(others[i], mid) != 0)
			*fresh_id = 1;
	return 0;
}

/* The address from a maildrop record, checked and qualified with
 * $myorigin; NULL if it is not an address. */
static char *
pickup_address(const char *s, int empty_ok)
{
	char *quoted, *addr = NULL, *local = NULL, *domain = NULL, *out;
	const char *params, *err;

	if (*s == '\0')
		return empty_ok ? xstrdup("") : NULL;
	quoted = xasprintf("<%s>", s);
	if (addr_parse_path(quoted, ADDR_UTF8_OK, &addr, &params, &err) < 0 ||
	    *params != '\0') {
		free(quoted);
		free(addr);
		return NULL;
	}
	free(quoted);
	if (addr_split(addr, &local, &domain) < 0) {
		free(addr);
		return NULL;
	}
	out = domain != NULL ? xstrdup(addr)
			     : xasprintf("%s@%s", addr, var_myorigin);
	free(addr);
	free(local);
	free(domain);
	return out;
}

/* An attribute a user may give: printable ASCII, bounded. */
static const char *
pickup_user_attr(const struct qfile *q, const char *name, size_t max)
{
	const char *v = qfile_attr(q, name), *p;

	if (v == NULL || strlen(v) > max)
		return NULL;
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
	return v;
}

/* Attributes cleanup writes itself from the envelope. */
static int
pickup_own_attr(const char *name)
{
	static const char *const own[] = {"client_addr", "client_name", "helo",
	    "protocol", "body", "smtputf8", "envid", "ret", "sasl_username",
	    QUEUE_ATTR_MAILDROP_ID, NULL};
	int i;

	for (i = 0; own[i] != NULL; i++)
		if (strcmp(own[i], name) == 0)
			return 1;
	return 0;
}

struct pickup_msg {
	struct cleanup_envelope env;
	struct cleanup_rcpt *rcpts;
	char **owned; /* strings the envelope points to */
	int nowned;
	const char **attrs;
	char arrival[32];
	char uid[24];
};

static const char *
pickup_own(struct pickup_msg *m, char *s)
{
	m->owned = xrealloc(m->owned, (size_t)(m->nowned + 1) * sizeof(char *));
	m->owned[m->nowned++] = s;
	return s;
}

static void
pickup_msg_free(struct pickup_msg *m)
{
	int i;

	for (i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	free(m->owned);
	free(m->rcpts);
	free(m->attrs);
}

/*
 * The envelope cleanup gets. A user's file gives its sender, pending
 * recipients and three attributes; a requeued file also its arrival time
 * and every attribute. NULL, or the reason the file is malformed.
 */
static const char *
pickup_envelope(struct pickup_msg *m, const struct qfile *q,
    const struct stat *st, const char *mid, int fresh_id, int requeue)
{
	struct cleanup_envelope *env = &m->env;
	const char *v;
	char *a;
	int i, n = 0, na = 0;

	memset(m, 0, sizeof(*m));
	if ((a = pickup_address(q->sender, 1)) == NULL)
		return "bad sender address";
	env->sender = pickup_own(m, a);
	m->rcpts = xcalloc((size_t)q->nrcpt + 1, sizeof(*m->rcpts));
	for (i = 0; i < q->nrcpt; i++) {
		if (q->rcpts[i].status != QREC_RCPT)
			continue;
		if ((a = pickup_address(q->rcpts[i].addr, 0)) == NULL)
			return "bad recipient address";
		m->rcpts[n].addr = pickup_own(m, a);
		m->rcpts[n].notify = q->rcpts[i].notify &
		    (QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE |
		        QRCPT_NOTIFY_DELAY | QRCPT_NOTIFY_NEVER);
		if (requeue && *q->rcpts[i].orcpt != '\0')
			m->rcpts[n].orcpt = q->rcpts[i].orcpt;
		n++;
	}
	env->rcpts = m->rcpts;
	env->nrcpt = n;
	env->queue_id = fresh_id ? NULL : mid;
	env->bare_newline = CLEANUP_BARE_NORMALIZE;
	m->attrs = xcalloc((size_t)q->nattr + 3, sizeof(*m->attrs));
	m->attrs[na++] = pickup_own(
	    m, xasprintf("%s=%s", QUEUE_ATTR_MAILDROP_ID, mid));
	if (requeue) {
		snprintf(m->arrival, sizeof(m->arrival), "%lld.%06ld",
		    q->arrival_sec, q->arrival_usec);
		env->arrival = m->arrival;
		env->no_received = 1;
		env->client_addr = qfile_attr(q, "client_addr");
		env->client_name = qfile_attr(q, "client_name");
		env->helo = qfile_attr(q, "helo");
		env->protocol = qfile_attr(q, "protocol");
		env->body = qfile_attr(q, "body");
		env->smtputf8 = qfile_attr(q, "smtputf8") != NULL;
		env->envid = qfile_attr(q, "envid");
		env->ret = qfile_attr(q, "ret");
		env->auth_user = qfile_attr(q, "sasl_username");
		for (i = 0; i < q->nattr; i++)
			if (!pickup_own_attr(q->attr_names[i]))
				m->attrs[na++] = pickup_own(m,
				    xasprintf("%s=%s", q->attr_names[i],
				        q->attr_values[i]));
	} else {
		snprintf(m->uid, sizeof(m->uid), "%lu",
		    (unsigned long)st->st_uid);
		env->protocol = "local";
		env->submit_uid = m->uid;
		env->add_missing_headers = 1;
		env->add_from = 1;
		env->from_fullname =
		    pickup_user_attr(q, "fullname", PICKUP_FULLNAME_MAX);
		env->envid = pickup_user_attr(q, "envid", PICKUP_ENVID_MAX);
		v = qfile_attr(q, "ret");
		if (v != NULL &&
		    (strcmp(v, "FULL") == 0 || strcmp(v, "HDRS") == 0))
			env->ret = v;
		m->attrs[na++] = pickup_own(
		    m, xasprintf("%s=%s", QUEUE_ATTR_UID, m->uid));
	}
	m->attrs[na] = NULL;
	env->attrs = m->attrs;
	return NULL;
}

/* Copies the content into cleanup; 0, or -1 on a read error. */
static int
pickup_copy(struct cleanup *c, const struct qfile *q, int binary)
{
	char *buf = xmalloc(PICKUP_COPY_BUF);
	uint64_t done = 0;
	size_t want;
	ssize_t n;
	int ret = 0;

	while (done < q->content_len) {
		want = q->content_len - done > PICKUP_COPY_BUF
			   ? PICKUP_COPY_BUF
			   : (size_t)(q->content_len - done);
		n = pread(q->fd, buf, want, q->content_off + (off_t)done);
		if (n <= 0) {
			ret = -1;
			break;
		}
		cleanup_feed_raw(c, buf, (size_t)n, binary);
		done += (uint64_t)n;
	}
	free(buf);
	return ret;
}

/*
 * A local message that cleanup refused (a header check, a size or
 * hop-count limit): there is no client to answer, so the sender gets a
 * failure notice, as Postfix's cleanup bounces it.
 */
static void
pickup_bounce(const struct qfile *q, const char *sender, const char *text)
{
	struct status_rec *recs;
	struct status_log *log;
	char nid[QUEUE_ID_SIZE];
	const char *err;
	int *idx, i, n = 0;

	msg_info("%s: rejected: %s", q->id, text);
	if (*sender == '\0' || qfile_pending(q) == 0)
		return;
	recs = xcalloc((size_t)q->nrcpt, sizeof(*recs));
	idx = xcalloc((size_t)q->nrcpt, sizeof(*idx));
	for (i = 0; i < q->nrcpt; i++) {
		if (q->rcpts[i].status != QREC_RCPT)
			continue;
		recs[n].rcpt = i;
		recs[n].action = STATUS_ACTION_FAILED;
		recs[n].status = "5.7.1";
		recs[n].diag_type = STATUS_DIAG_TERN;
		recs[n].diag = text;
		recs[n].mta = "";
		recs[n].when = (long long)time(NULL);
		idx[n++] = i;
	}
	if (status_log_append(q->id, recs, n, &err) < 0 ||
	    (log = status_log_read(q->id, q->nrcpt, &err)) == NULL)
		msg_warn("%s: no notice: %s", q->id, err);
	else {
		if (dsn_write(q, DSN_FAILED, idx, n, log, sender, nid, &err) < 0)
			msg_warn("%s: no notice: %s", q->id, err);
		else
			msg_info("%s: sender non-delivery notification: %s",
			    q->id, nid);
		status_log_free(&log);
	}
	status_log_remove(q->id);
	free(recs);
	free(idx);
}

/* Cleanup's verdict as text for the log and the notice. */
static const char *
pickup_reject_text(const struct cleanup *c, unsigned status)
{
	if ((status & (CLEANUP_STAT_REJECT | CLEANUP_STAT_RCPT)) &&
	    c->reject_text != NULL)
		return c->reject_text;
	if (status & CLEANUP_STAT_SIZE)
		return "message file too big";
	if (status & CLEANUP_STAT_HEADER)
		return "message header section too big";
	if (status & CLEANUP_STAT_HOPS)
		return "too many hops: mail forwarding loop";
	return "message content rejected";
}

/* The file is open, ready and not queued before: make it a message. */
static enum pickup_result
pickup_take(const char *mid, struct qfile *q, const struct stat *st,
    int fresh_id)
{
	struct pickup_msg m;
	struct cleanup c;
	const char *why, *err, *body;
	enum pickup_result res = PICKUP_DONE;
	unsigned status;
	int requeue, eno = 0;

	requeue = st->st_uid == geteuid() && qfile_attr(q, "protocol") != NULL;
	if ((why = pickup_envelope(&m, q, st, mid, fresh_id, requeue)) != NULL) {
		pickup_msg_free(&m);
		pickup_corrupt(mid, why);
		return PICKUP_DONE;
	}
	if (m.env.nrcpt == 0) {
		msg_info("%s: no pending recipients: removed", mid);
		pickup_msg_free(&m);
		pickup_unlink(mid);
		return PICKUP_DONE;
	}
	memset(&c, 0, sizeof(c));
	if (cleanup_open(&c, &m.env, &err) < 0) {
		msg_warn("%s: %s", mid, err);
		pickup_msg_free(&m);
		return PICKUP_RETRY;
	}
	if (c.status == CLEANUP_STAT_RCPT) {
		/* A virtual alias table failed (451) or refused (550). */
		if (c.reject_text != NULL && c.reject_text[0] == '4')
			res = PICKUP_RETRY;
		else {
			pickup_bounce(q, m.env.sender, pickup_reject_text(&c, c.status));
			pickup_unlink(mid);
		}
		cleanup_free(&c);
		pickup_msg_free(&m);
		return res;
	}
	if (pickup_headers != NULL) {
		c.header_check = header_checks_hook;
		c.header_check_ctx = pickup_headers;
	}
	body = qfile_attr(q, "body");
	if (pickup_copy(&c, q, requeue && body != NULL &&
	                           strcmp(body, "BINARYMIME") == 0) < 0) {
		msg_warn("%s: read error in maildrop file", mid);
		cleanup_free(&c);
		pickup_msg_free(&m);
		return PICKUP_RETRY;
	}
	status = cleanup_finish(&c, &err, &eno);
	if (status & CLEANUP_STAT_WRITE) {
		msg_warn("%s: %s", mid, err);
		res = PICKUP_RETRY;
	} else if (status != 0) {
		pickup_bounce(q, m.env.sender, pickup_reject_text(&c, status));
		pickup_unlink(mid);
	} else if (c.discard) {
		msg_info("%s: discarded", mid);
		pickup_unlink(mid);
	} else if (qfile_commit(&c.w, c.hold ? QUEUE_HOLD : QUEUE_INCOMING,
	               &err) < 0) {
		/* EEXIST included: that ID is taken, the next attempt
		 * looks again and picks a fresh one. */
		msg_warn("%s: %s", mid, err);
		res = PICKUP_RETRY;
	}
	else {
		if (requeue)
			msg_info("%s: requeued%s%s", c.w.id,
			    fresh_id ? " from " : "", fresh_id ? mid : "");
		else
			msg_info("%s: uid=%s from=<%s>", c.w.id, m.uid,
			    log_sanitize(m.env.sender, ADDR_PATH_MAX));
		pickup_unlink(mid);
		if (!c.hold)
			cleanup_notify_qmgr(c.w.id);
	}
	cleanup_free(&c);
	pickup_msg_free(&m);
	return res;
}

/* One maildrop/ entry. */
static enum pickup_result
pickup_file(const char *mid)
{
	struct qfile q;
	struct stat st;
	const char *err;
	char *path;
	int fd, fresh_id;
	enum pickup_result res;

	fd = openat(pickup_maildrop_fd, mid,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		/* EACCES: a user's file still being written (mode 0600). */
		if (errno != ENOENT && errno != EACCES)
			msg_warn("%s: open %s/%s: %m", mid, QUEUE_MAILDROP, mid);
		if (errno == ELOOP)
			pickup_corrupt(mid, "not a regular file");
		return PICKUP_DONE;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		pickup_corrupt(mid, "not a regular file");
		return PICKUP_DONE;
	}
	if ((st.st_mode & S_IXUSR) == 0) {
		close(fd);
		if (st.st_mtime < time(NULL) - PICKUP_STALE_S) {
			msg_warn("%s: removing a maildrop file its writer "
				 "never finished",
			    mid);
			pickup_unlink(mid);
		}
		return PICKUP_DONE;
	}
	if (pickup_already(mid, &fresh_id)) {
		close(fd);
		msg_info("%s: already queued; removing the maildrop copy", mid);
		pickup_unlink(mid);
		return PICKUP_DONE;
	}
	/* qmgr unlinks the maildrop file before it moves a message out of
	 * incoming/: no name left means it was queued and taken. */
	if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return PICKUP_DONE;
	}
	path = queue_path(QUEUE_MAILDROP, mid);
	if (qfile_open_fd(fd, path, (uid_t)-1, &q, &err) < 0) {
		free(path);
		pickup_corrupt(mid, err);
		return PICKUP_DONE;
	}
	free(path);
	if (!q.complete) {
		qfile_close(&q);
		pickup_corrupt(mid, "no end record");
		return PICKUP_DONE;
	}
	res = pickup_take(mid, &q, &st, fresh_id);
	qfile_close(&q);
	return res;
}

/* Takes up to PICKUP_BATCH ready files; more, or a retry, reschedules. */
static void
pickup_scan(struct event_timer *t, void *ctx)
{
	struct dirent *de;
	DIR *dir;
	int fd, n = 0, retry = 0;

	(void)t;
	(void)ctx;
	if ((fd = dup(pickup_maildrop_fd)) < 0 ||
	    (dir = fdopendir(fd)) == NULL) {
		msg_warn("open %s/: %m", QUEUE_MAILDROP);
		if (fd >= 0)
			close(fd);
		pickup_schedule(PICKUP_RETRY_MS);
		return;
	}
	rewinddir(dir);
	while (n < PICKUP_BATCH && (de = readdir(dir)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		n++;
		if (pickup_file(de->d_name) == PICKUP_RETRY)
			retry = 1;
	}
	closedir(dir);
	if (n >= PICKUP_BATCH)
		pickup_schedule(0);
	else
		pickup_schedule(retry ? PICKUP_RETRY_MS : PICKUP_RESCAN_MS);
}

static void
pickup_schedule(uint64_t ms)
{
	event_timer_reset(pickup_timer, ms);
}

/* maildrop/ changed: drain the events, scan now. */
static void
pickup_notified(struct event_fd *ev, int fd, int events, void *ctx)
{
	char buf[PICKUP_INOTIFY_BUF]
	    __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)ev;
	(void)events;
	(void)ctx;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pickup_schedule(0);
}

/* Nobody needs to talk to pickup: its socket only marks the service. */
static void
pickup_accept(int fd, const struct server_listener *l,
    struct event_loop *loop)
{
	(void)l;
	(void)loop;
	close(fd);
}

static void
pickup_tables(void)
{
	char *err = NULL;

	if (*var_header_checks != '\0' &&
	    (pickup_headers = header_checks_create(var_header_checks, &err)) ==
	        NULL)
		msg_fatal("header_checks: %s", err);
	if (virtual_alias_tables_init(&err) < 0)
		msg_fatal("%s", err);
}

static void
pickup_init(struct event_loop *loop)
{
	char *dir = queue_path(QUEUE_MAILDROP, NULL);

	pickup_loop = loop;
	pickup_tables();
	pickup_maildrop_fd =
	    open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pickup_maildrop_fd < 0)
		msg_fatal("open %s: %m", dir);
	pickup_notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (pickup_notify_fd < 0 ||
	    inotify_add_watch(pickup_notify_fd, dir,
	        IN_ATTRIB | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0)
		msg_warn("inotify on %s: %m; scanning every %d s", dir,
		    PICKUP_RESCAN_MS / 1000);
	else
		pickup_notify_ev = event_fd_add(
		    loop, pickup_notify_fd, EVENT_READ, pickup_notified, NULL);
	free(dir);
	cleanup_notify_init(loop);
	pickup_timer = event_timer_add(loop, 0, pickup_scan, NULL);
}

static void
pickup_check(void)
{
	pickup_tables();
	header_checks_free(&pickup_headers);
	virtual_alias_tables_free();
}

static void
pickup_shutdown(void)
{
	event_timer_del(&pickup_timer);
	event_fd_del(&pickup_notify_ev);
	if (pickup_notify_fd >= 0)
		close(pickup_notify_fd);
	if (pickup_maildrop_fd >= 0)
		close(pickup_maildrop_fd);
	cleanup_notify_shutdown();
	header_checks_free(&pickup_headers);
	virtual_alias_tables_free();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "pickup",
	    .mode = SERVER_MULTI,
	    .init = pickup_init,
	    .accept = pickup_accept,
	    .shutdown = pickup_shutdown,
	    .check = pickup_check,
	};

	server_main(argc, argv, &ops);
}
