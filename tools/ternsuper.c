/* SPDX-License-Identifier: MIT */
/*
 * ternsuper: queue maintenance for the superuser (Postfix's postsuper).
 *
 *   ternsuper [-c dir] [-s] [-v] [-d ID|ALL|-] [-h ...] [-H ...] [-r ...]
 *             [queue ...]
 *
 * -d deletes messages (and their status logs), -h puts them on hold,
 * -H releases them into incoming/ (and tells qmgr), -r requeues them
 * into maildrop/, where pickup runs them through cleanup again; -s
 * checks and repairs the queue first. "ALL" is every message of the
 * queues, "-" reads queue IDs from standard input, one per line.
 *
 * Right after the configuration is loaded ternsuper acts as mail_owner
 * (effective ids): every queue path is followed by tern's own user, and
 * root comes back only to fchown a file -s already holds open. The
 * active queue is qmgr's while it works on a message, so a message
 * found there is handled by qmgr (queue_admin.h) when its deliveries in
 * flight are back; only when qmgr cannot be reached does ternsuper act
 * on active/ itself.
 *
 * Exit codes (sysexits.h): 0, EX_USAGE, EX_NOPERM (not root),
 * EX_CONFIG (configuration or mail_owner), EX_SOFTWARE (qmgr did not
 * answer, a file could not be changed), EX_IOERR (queue unreadable).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/queue_admin.h"
#include "mail/status_log.h"

#define SUPER_PROGNAME   "ternsuper"
/* qmgr answers at once; longer means it is stuck. */
#define SUPER_TIMEOUT_MS 10000
/* A line of standard input: a queue ID and some slack. */
#define SUPER_LINE_MAX   256
/* IDs read from standard input at most (far beyond any real queue). */
#define SUPER_STDIN_MAX  10000000
/* tmp/ files younger than this are never stale (qmgr's rule). */
#define SUPER_TMP_MIN_AGE 10
/* A status log this fresh may belong to a message that is moving
 * between queues while -s looks; it is left for the next check. */
#define SUPER_STATUS_MIN_AGE 60
/* Mode of every queue file (qfile_create). */
#define SUPER_FILE_MODE  0600
/* A passage over the queues is repeated once: a message may move from
 * one queue to another between two looks (Postfix does the same). */
#define SUPER_TRIES      2
#define SUPER_ALL        "ALL"
#define SUPER_STDIN      "-"

enum super_op { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE, OP_COUNT };

struct super_req {
	enum super_op op;
	const char *arg; /* an ID, ALL or - */
};

/* Queues each operation looks in by default, active last: a message
 * moving into active/ meanwhile is found there. */
static const char *const super_default_queues[OP_COUNT][5] = {
    [OP_DELETE] = {QUEUE_HOLD, QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_ACTIVE,
        NULL},
    [OP_HOLD] = {QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_ACTIVE, NULL},
    [OP_RELEASE] = {QUEUE_HOLD, NULL},
    [OP_REQUEUE] = {QUEUE_HOLD, QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_ACTIVE,
        NULL},
};

/* Queues a user may name, and the operations that apply to each. */
static const struct {
	const char *name;
	unsigned ops; /* 1 << enum super_op */
} super_queues[] = {
    {QUEUE_INCOMING, 1u << OP_DELETE | 1u << OP_HOLD | 1u << OP_REQUEUE},
    {QUEUE_ACTIVE, 1u << OP_DELETE | 1u << OP_HOLD | 1u << OP_REQUEUE},
    {QUEUE_DEFERRED, 1u << OP_DELETE | 1u << OP_HOLD | 1u << OP_REQUEUE},
    {QUEUE_HOLD, 1u << OP_DELETE | 1u << OP_RELEASE | 1u << OP_REQUEUE},
    /* A corrupt file can only go away: cleanup would refuse it again. */
    {QUEUE_CORRUPT, 1u << OP_DELETE},
};

static const char *const super_summary[OP_COUNT] = {
    [OP_DELETE] = "Deleted",
    [OP_HOLD] = "Placed on hold",
    [OP_RELEASE] = "Released from hold",
    [OP_REQUEUE] = "Requeued",
};

static const char *const super_qmgr_request[OP_COUNT] = {
    [OP_DELETE] = QUEUE_ADMIN_DELETE,
    [OP_HOLD] = QUEUE_ADMIN_HOLD,
    [OP_REQUEUE] = QUEUE_ADMIN_REQUEUE,
};

static int super_user_fd = STDERR_FILENO; /* the person's stderr */
static int super_logging;                 /* the mail log is set up */
static int super_exit;                    /* worst status so far */
static int super_qfd = -1;                /* queue_directory */
static struct priv_user super_owner;
static long long super_count[OP_COUNT];

/* The connection to qmgr; down once it could not be made. */
static struct {
	int fd;
	int down;
	struct stream st;
	long long next_id;
} super_qmgr = {.fd = -1};

static void MTA_NORETURN
super_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] [-s] [-v] [-d queue_id|ALL|-] "
	    "[-h queue_id|ALL|-]\n"
	    "       [-H queue_id|ALL|-] [-r queue_id|ALL|-] [queue ...]\n",
	    SUPER_PROGNAME);
	exit(EX_USAGE);
}

/* "ternsuper: text" for the person, and the same line in the mail log. */
static void MTA_PRINTF(2, 3) super_say(int level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	dprintf(super_user_fd, "%s: %s%s\n", SUPER_PROGNAME,
	    level == 0 ? "" : level == 1 ? "warning: " : "fatal: ", text);
	if (!super_logging)
		return; /* no mail log yet: stderr was all */
	if (level == 0)
		msg_info("%s", text);
	else if (level == 1)
		msg_warn("%s", text);
	else
		msg_error("%s", text);
}

#define super_info(...) super_say(0, __VA_ARGS__)
#define super_warn(...) super_say(1, __VA_ARGS__)

static void MTA_NORETURN MTA_PRINTF(2, 3)
super_fatal(int status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	super_say(2, "%s", text);
	exit(status);
}

static void
super_failed(int status)
{
	if (super_exit == 0)
		super_exit = status;
}

/*
 * The mail log: master's maillog_file, opened as root before the switch
 * (its directory is root's), else syslog. The person's stderr is kept
 * apart so every line reaches both.
 */
static void
super_log_open(void)
{
	struct stat st;
	int fd;

	super_logging = 1;
	if (*var_maillog_file == '\0') {
		log_init(SUPER_PROGNAME, LOG_DEST_SYSLOG);
		return;
	}
	fd = open(var_maillog_file,
	    O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	/* Not a file root made (master creates it): no log lines there. */
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != 0 || st.st_nlink != 1) {
		if (fd >= 0)
			close(fd);
		log_init(SUPER_PROGNAME, LOG_DEST_SYSLOG);
		return;
	}
	super_user_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (super_user_fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		super_user_fd = STDERR_FILENO;
		log_init(SUPER_PROGNAME, LOG_DEST_SYSLOG);
	} else {
		log_init(SUPER_PROGNAME, LOG_DEST_STDERR);
	}
	close(fd);
}

/*
 * At exit, with the queue work done: LeakSanitizer's check reads the
 * process from a helper, which an effective uid other than the real one
 * forbids (the process is not dumpable then).
 */
static void
super_restore_at_exit(void)
{
	if (priv_restore() < 0)
		_exit(EX_OSERR);
}

static void
super_become_owner(void)
{
	if (priv_become(super_owner.uid, super_owner.gid) < 0)
		super_fatal(EX_OSERR, "cannot switch to %s: %s", var_mail_owner,
		    strerror(errno));
}

/* Opens a queue directory below queue_directory, as mail_owner. */
static int
super_dir(const char *queue)
{
	int fd = openat(super_qfd, queue,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		super_warn("open %s/%s: %s", var_queue_directory, queue,
		    strerror(errno));
		super_failed(EX_IOERR);
	}
	return fd;
}

/* A rename that never replaces a message of the same ID: 0, or -1 with
 * errno (0 on success). */
static int
super_rename_to(int from, const char *name, int to, const char *newname)
{
	if (file_rename_noreplace(from, name, to, newname) < 0)
		return -1;
	errno = 0;
	return 0;
}

static int
super_rename(int from, const char *name, int to)
{
	return super_rename_to(from, name, to, name);
}

/* ----- qmgr */

static void
super_qmgr_close(void)
{
	if (super_qmgr.fd >= 0)
		stream_close(&super_qmgr.st);
	super_qmgr.fd = -1;
}

/* 0 with a connection, -1 when qmgr is not running (or refuses). */
static int
super_qmgr_connect(void)
{
	char *path;
	struct sockaddr_un sun;
	int fd;

	if (super_qmgr.fd >= 0)
		return 0;
	if (super_qmgr.down)
		return -1;
	path = queue_path(QUEUE_PRIVATE, FLUSH_SERVICE);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		free(path);
		super_qmgr.down = 1;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	free(path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (log_verbose())
			msg_info("qmgr is not running: %s", strerror(errno));
		close(fd);
		super_qmgr.down = 1;
		return -1;
	}
	super_qmgr.fd = fd;
	stream_init(&super_qmgr.st, fd);
	return 0;
}

/*
 * Asks qmgr about active/ID: QUEUE_ADMIN_DONE, _LATER or _ABSENT
 * (static), NULL when qmgr is not running, or "" when it did not answer
 * (then nothing may be done to the file: qmgr may still act on it).
 */
static const char *
super_qmgr_ask(enum super_op op, const char *id)
{
	static char status[32];
	struct attr_list reply;
	struct buf frame;
	const char *err, *st;
	char rid[32];
	int bad;

	if (super_qmgr_connect() < 0)
		return NULL;
	snprintf(rid, sizeof(rid), "%lld", ++super_qmgr.next_id);
	buf_init(&frame, ATTR_FRAME_MAX);
	attr_frame_begin(&frame);
	bad = attr_put_str(&frame, ATTR_ID, rid) < 0 ||
	      attr_put_str(&frame, "request", super_qmgr_request[op]) < 0 ||
	      attr_put_str(&frame, QUEUE_ADMIN_ATTR_ID, id) < 0 ||
	      attr_frame_end(&frame) < 0;
	if (bad)
		msg_panic("admin request does not fit a frame");
	attr_list_init(&reply);
	*status = '\0';
	if (attr_write(&super_qmgr.st, &frame, SUPER_TIMEOUT_MS) != STREAM_OK) {
		super_warn("%s: cannot ask qmgr: %s", id, strerror(errno));
	} else if (attr_read(&super_qmgr.st, &reply, SUPER_TIMEOUT_MS, &err) !=
	           STREAM_OK) {
		super_warn("%s: no answer from qmgr: %s", id, err);
	} else if ((st = attr_get(&reply, QUEUE_ADMIN_ATTR_STATUS)) == NULL ||
	           (strcmp(st, QUEUE_ADMIN_DONE) != 0 &&
	               strcmp(st, QUEUE_ADMIN_LATER) != 0 &&
	               strcmp(st, QUEUE_ADMIN_ABSENT) != 0)) {
		super_warn("%s: unexpected answer from qmgr", id);
	} else {
		snprintf(status, sizeof(status), "%s", st);
	}
	if (*status == '\0') {
		super_qmgr_close();
		super_failed(EX_SOFTWARE);
	}
	attr_list_free(&reply);
	buf_free(&frame);
	return status;
}

/* A released message is due now: qmgr's notice for a new message. */
static void
super_qmgr_notice(const char *id)
{
	struct buf frame;

	if (super_qmgr_connect() < 0)
		return; /* qmgr scans incoming/ when it starts */
	buf_init(&frame, ATTR_FRAME_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", "new") < 0 ||
	    attr_put_str(&frame, QUEUE_ADMIN_ATTR_ID, id) < 0 ||
	    attr_frame_end(&frame) < 0)
		msg_panic("notice does not fit a frame");
	if (attr_write(&super_qmgr.st, &frame, SUPER_TIMEOUT_MS) != STREAM_OK) {
		/* Only a delay: qmgr's incoming/ scan finds it. */
		msg_warn("%s: cannot notify qmgr: %s", id, strerror(errno));
		super_qmgr_close();
	}
	buf_free(&frame);
}

/* ----- one message */

static void
super_status_remove(const char *id)
{
	if (status_log_remove(id) < 0)
		super_warn("%s: cannot remove its status log: %s", id,
		    strerror(errno));
}

/* Moves queue/ID to maildrop/ for pickup. 1 done, 0 not there, -1. */
static int
super_requeue_file(int dfd, const char *queue, const char *id)
{
	int fd, mfd, ret = -1;
	struct stat st;

	fd = openat(dfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : (super_warn("open %s/%s: %s", queue,
		                                  id, strerror(errno)),
		                                 -1);
	/* pickup takes a mail_owner file in maildrop/ as a queue file. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != super_owner.uid) {
		super_warn("%s/%s: not a regular file of %s; not requeued (try "
		           "-s)",
		    queue, id, var_mail_owner);
		close(fd);
		return -1;
	}
	if ((mfd = super_dir(QUEUE_MAILDROP)) < 0) {
		close(fd);
		return -1;
	}
	if (fchmod(fd, QUEUE_ADMIN_REQUEUE_MODE) < 0) {
		super_warn("%s/%s: fchmod: %s", queue, id, strerror(errno));
	} else if (super_rename(dfd, id, mfd) < 0) {
		ret = errno == ENOENT ? 0 : -1;
		if (ret < 0)
			super_warn("%s: rename %s/ to %s/: %s", id, queue,
			    QUEUE_MAILDROP, strerror(errno));
		(void)fchmod(fd, st.st_mode & 07777);
	} else {
		ret = 1;
	}
	close(mfd);
	close(fd);
	return ret;
}

/* Acts on queue/ID without asking anyone. 1 done, 0 not there, -1. */
static int
super_direct(enum super_op op, int dfd, const char *queue, const char *id)
{
	const char *to = op == OP_HOLD ? QUEUE_HOLD : QUEUE_INCOMING;
	int tfd, ret;

	switch (op) {
	case OP_DELETE:
		if (unlinkat(dfd, id, 0) < 0) {
			if (errno == ENOENT)
				return 0;
			super_warn("%s: unlink %s/: %s", id, queue, strerror(errno));
			return -1;
		}
		super_status_remove(id);
		return 1;
	case OP_REQUEUE:
		if ((ret = super_requeue_file(dfd, queue, id)) > 0)
			super_status_remove(id);
		return ret;
	default:
		if ((tfd = super_dir(to)) < 0)
			return -1;
		ret = 1;
		if (super_rename(dfd, id, tfd) < 0) {
			ret = errno == ENOENT ? 0 : -1;
			if (ret < 0)
				super_warn("%s: rename %s/ to %s/: %s", id, queue, to,
				    strerror(errno));
		}
		close(tfd);
		return ret;
	}
}

static const char *const super_done_text[OP_COUNT] = {
    [OP_DELETE] = "removed",
    [OP_HOLD] = "placed on hold",
    [OP_RELEASE] = "released from hold",
    [OP_REQUEUE] = "requeued",
};

/* op on queue/ID. 1 done (or qmgr will), 0 not there, -1 failed. */
static int
super_one(enum super_op op, int dfd, const char *queue, const char *id)
{
	const char *st;
	struct stat sb;
	int ret;

	if (strcmp(queue, QUEUE_ACTIVE) == 0) {
		if (fstatat(dfd, id, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		st = super_qmgr_ask(op, id);
		if (st != NULL && *st == '\0')
			return -1;
		if (st != NULL && strcmp(st, QUEUE_ADMIN_ABSENT) == 0)
			return 0;
		if (st != NULL) {
			/* qmgr logs its own lines; the person sees one here. */
			dprintf(super_user_fd, "%s: %s: %s%s\n", SUPER_PROGNAME, id,
			    super_done_text[op],
			    strcmp(st, QUEUE_ADMIN_LATER) == 0
			        ? " (when its deliveries in progress end)"
			        : "");
			return 1;
		}
		/* qmgr is not running: nothing else uses active/. */
	}
	if ((ret = super_direct(op, dfd, queue, id)) > 0) {
		super_info("%s: %s", id, super_done_text[op]);
		if (op == OP_RELEASE)
			super_qmgr_notice(id);
	}
	if (ret < 0)
		super_failed(EX_SOFTWARE);
	return ret;
}

static int
super_queue_applies(enum super_op op, const char *queue)
{
	size_t i;

	for (i = 0; i < sizeof(super_queues) / sizeof(super_queues[0]); i++)
		if (strcmp(super_queues[i].name, queue) == 0)
			return (super_queues[i].ops & (1u << op)) != 0;
	return 0;
}

/* The queues op looks in: the named ones it applies to, or its default. */
static const char **
super_op_queues(enum super_op op, char **named, int nnamed)
{
	const char **out = xcalloc((size_t)nnamed + 5, sizeof(*out));
	int i, n = 0;

	if (nnamed == 0) {
		for (i = 0; super_default_queues[op][i] != NULL; i++)
			out[n++] = super_default_queues[op][i];
		return out;
	}
	for (i = 0; i < nnamed; i++)
		if (super_queue_applies(op, named[i]))
			out[n++] = named[i];
	/* Named active/ last, like the defaults. */
	for (i = 0; i + 1 < n; i++)
		if (strcmp(out[i], QUEUE_ACTIVE) == 0) {
			memmove(&out[i], &out[i + 1], (size_t)(n - i - 1) *
			                                  sizeof(*out));
			out[n - 1] = QUEUE_ACTIVE;
			break;
		}
	return out;
}

/* One ID: each queue in turn until found, the passage twice. */
static void
super_by_id(enum super_op op, const char **queues, const char *id)
{
	int try, i, dfd, ret = 0;

	if (!queue_id_valid(id)) {
		super_warn("invalid mail queue id: %s",
		    log_sanitize(id, SUPER_LINE_MAX));
		return;
	}
	for (try = 0; try < SUPER_TRIES && ret == 0; try++) {
		for (i = 0; queues[i] != NULL && ret == 0; i++) {
			if ((dfd = super_dir(queues[i])) < 0)
				continue;
			ret = super_one(op, dfd, queues[i], id);
			close(dfd);
		}
	}
	if (ret > 0)
		super_count[op]++;
}

static int
super_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queue IDs in queue, sorted (a listing first: renames during a
 * readdir may show a name twice or not at all). */
static char **
super_list(const char *queue, int *n_r)
{
	char **names = NULL;
	struct dirent *de;
	int dfd, n = 0, cap = 0;
	DIR *dir;

	*n_r = 0;
	if ((dfd = super_dir(queue)) < 0 || (dir = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			names = xrealloc(names, (size_t)cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n > 0)
		qsort(names, (size_t)n, sizeof(*names), super_cmp);
	*n_r = n;
	return names;
}

static void
super_free_list(char **names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ALL: every message of the queues, each counted once. */
static void
super_all(enum super_op op, const char **queues)
{
	struct hash *seen = hash_create();
	char **names;
	int try, i, k, n, dfd;

	for (try = 0; try < SUPER_TRIES; try++) {
		for (i = 0; queues[i] != NULL; i++) {
			names = super_list(queues[i], &n);
			if (names == NULL)
				continue;
			if ((dfd = super_dir(queues[i])) >= 0) {
				for (k = 0; k < n; k++) {
					if (hash_get(seen, names[k]) != NULL)
						continue;
					if (super_one(op, dfd, queues[i], names[k]) > 0) {
						hash_put(seen, names[k], (void *)1);
						super_count[op]++;
					}
				}
				close(dfd);
			}
			super_free_list(names, n);
		}
	}
	hash_free(&seen, NULL);
}

/* The IDs on standard input, read once (a second "-" finds none). */
static char **
super_stdin_ids(int *n_r)
{
	static int done;
	char **ids = NULL;
	struct stream st;
	struct buf line;
	enum stream_result r;
	int n = 0, cap = 0;
	char *s;

	*n_r = 0;
	if (done)
		return NULL;
	done = 1;
	stream_init(&st, STDIN_FILENO);
	buf_init(&line, SUPER_LINE_MAX + 1);
	while (n < SUPER_STDIN_MAX) {
		r = stream_read_line(&st, &line, SUPER_LINE_MAX, -1, NULL);
		if (r == STREAM_TOOLONG) {
			super_warn("standard input: line too long; skipped");
			continue;
		}
		if (r != STREAM_OK)
			break;
		s = str_trim(xstrdup(buf_cstr(&line)));
		if (*s == '\0') {
			free(s);
			continue;
		}
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ids = xrealloc(ids, (size_t)cap * sizeof(*ids));
		}
		ids[n++] = s;
	}
	buf_free(&line);
	stream_free(&st);
	*n_r = n;
	return ids;
}

static void
super_request(const struct super_req *r, char **named, int nnamed)
{
	const char **queues = super_op_queues(r->op, named, nnamed);
	char **ids;
	int i, n;

	if (strcmp(r->arg, SUPER_ALL) == 0) {
		super_all(r->op, queues);
	} else if (strcmp(r->arg, SUPER_STDIN) == 0) {
		ids = super_stdin_ids(&n);
		for (i = 0; i < n; i++)
			super_by_id(r->op, queues, ids[i]);
		for (i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
	} else {
		super_by_id(r->op, queues, r->arg);
	}
	free(queues);
}

/* ----- -s: check and repair */

/* Moves queue/NAME (anything at all) to corrupt/ under a fresh ID. */
static void
super_corrupt(int dfd, const char *queue, const char *name, const char *why)
{
	char id[QUEUE_ID_SIZE];
	int cfd;

	if ((cfd = super_dir(QUEUE_CORRUPT)) < 0)
		return;
	/* A valid name is kept: the admin finds the message by its ID. */
	if (queue_id_valid(name))
		snprintf(id, sizeof(id), "%s", name);
	else
		queue_id_new(id);
	errno = 0;
	if (super_rename_to(dfd, name, cfd, id) < 0 && errno == EEXIST) {
		/* corrupt/ has one of that name already: a fresh one. */
		queue_id_new(id);
		(void)super_rename_to(dfd, name, cfd, id);
	}
	if (errno != 0) {
		super_warn("%s/%s: %s; cannot move it to %s/: %s", queue,
		    log_sanitize(name, SUPER_LINE_MAX), why, QUEUE_CORRUPT,
		    strerror(errno));
		super_failed(EX_SOFTWARE);
	} else {
		super_warn("%s/%s: %s; moved to %s/%s", queue,
		    log_sanitize(name, SUPER_LINE_MAX), why, QUEUE_CORRUPT, id);
	}
	close(cfd);
}

/* Owner and mode of an open queue file; root only for the fchown. */
static void
super_fix_file(int fd, const struct stat *st, const char *queue,
    const char *name)
{
	/* A file linked elsewhere may be anything (a hard link planted in
	 * the queue): never given to mail_owner. */
	if (st->st_nlink != 1) {
		super_warn("%s/%s: %lu links; not changing it", queue, name,
		    (unsigned long)st->st_nlink);
		return;
	}
	if (st->st_uid != super_owner.uid || st->st_gid != super_owner.gid) {
		/* By descriptor: no name is followed with root's rights. */
		if (priv_restore() < 0)
			super_fatal(EX_OSERR, "cannot return to root: %s",
			    strerror(errno));
		if (fchown(fd, super_owner.uid, super_owner.gid) < 0)
			super_warn("%s/%s: fchown: %s", queue, name, strerror(errno));
		else
			super_warn("%s/%s: owner was %ld:%ld; fixed", queue, name,
			    (long)st->st_uid, (long)st->st_gid);
		super_become_owner();
	}
	if ((st->st_mode & 07777) != SUPER_FILE_MODE) {
		if (fchmod(fd, SUPER_FILE_MODE) < 0)
			super_warn("%s/%s: fchmod: %s", queue, name, strerror(errno));
		else
			super_warn("%s/%s: mode was %04o; fixed", queue, name,
			    (unsigned)(st->st_mode & 07777));
	}
}

/* One entry of a message queue. */
static void
super_check_file(int dfd, const char *queue, const char *name)
{
	struct stat st;
	struct qfile q;
	const char *err;
	char why[512];
	int fd;

	if (!queue_id_valid(name)) {
		super_corrupt(dfd, queue, name, "name is not a queue ID");
		return;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return; /* moved meanwhile */
		snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
		super_corrupt(dfd, queue, name, why);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		super_corrupt(dfd, queue, name, "not a regular file");
		return;
	}
	super_fix_file(fd, &st, queue, name);
	if (qfile_open_fd(fd, name, (uid_t)-1, &q, &err) < 0) {
		snprintf(why, sizeof(why), "%s", err);
		super_corrupt(dfd, queue, name, why);
		return;
	}
	/* Only a whole file is ever renamed into a queue. */
	if (!q.complete)
		super_corrupt(dfd, queue, name, "no end record");
	qfile_close(&q);
}

static void
super_check_queue(const char *queue)
{
	struct dirent *de;
	char **names = NULL;
	int dfd, n = 0, cap = 0, i;
	DIR *dir;

	if ((dfd = super_dir(queue)) < 0)
		return;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			names = xrealloc(names, (size_t)cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	for (i = 0; i < n; i++)
		super_check_file(dirfd(dir), queue, names[i]);
	closedir(dir);
	super_free_list(names, n);
}

/* Stale tmp/ files: their writer is gone (qfile_tmp_stale). */
static void
super_check_tmp(void)
{
	struct dirent *de;
	int dfd, removed = 0;
	DIR *dir;

	if ((dfd = super_dir(QUEUE_TMP)) < 0)
		return;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (queue_id_valid(de->d_name) &&
		    qfile_tmp_stale(dirfd(dir), de->d_name, SUPER_TMP_MIN_AGE)) {
			super_info("%s: removed a stale file from %s/", de->d_name,
			    QUEUE_TMP);
			removed++;
		}
	closedir(dir);
	if (removed > 0)
		super_info("Removed stale temporary files: %d", removed);
}

/* 1 if ID is a message in any queue (status logs belong to those). */
static int
super_message_exists(const char *id)
{
	static const char *const queues[] = {QUEUE_INCOMING, QUEUE_ACTIVE,
	    QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, QUEUE_MAILDROP};
	struct stat st;
	char path[sizeof(QUEUE_INCOMING) + QUEUE_ID_SIZE + 1];
	size_t i;

	for (i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", queues[i], id);
		if (fstatat(super_qfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 1;
	}
	return 0;
}

static void
super_check_status(void)
{
	struct dirent *de;
	struct stat st;
	int dfd, removed = 0;
	DIR *dir;

	if ((dfd = super_dir(QUEUE_STATUS)) < 0)
		return;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!queue_id_valid(de->d_name) ||
		    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_mtime + SUPER_STATUS_MIN_AGE > time(NULL))
			continue;
		/* Twice: a message moving between queues is in one of them
		 * at each look, but one look may miss it. */
		if (super_message_exists(de->d_name) ||
		    super_message_exists(de->d_name))
			continue;
		if (unlinkat(dirfd(dir), de->d_name, 0) == 0) {
			super_info("%s: removed an orphaned status log",
			    de->d_name);
			removed++;
		}
	}
	closedir(dir);
	(void)removed;
}

static void
super_check(void)
{
	static const char *const queues[] = {
	    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD};
	size_t i;

	for (i = 0; i < sizeof(queues) / sizeof(queues[0]); i++)
		super_check_queue(queues[i]);
	super_check_tmp();
	super_check_status();
}

/* ----- main */

static int
super_queue_known(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(super_queues) / sizeof(super_queues[0]); i++)
		if (strcmp(super_queues[i].name, name) == 0)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	struct super_req *reqs;
	int ch, nreq = 0, check = 0, verbose = 0, i;
	enum super_op op;

	log_init(SUPER_PROGNAME, LOG_DEST_STDERR);
	reqs = xcalloc((size_t)argc + 1, sizeof(*reqs));
	while ((ch = getopt(argc, argv, "c:d:h:H:r:sv")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			continue;
		case 's':
			check = 1;
			continue;
		case 'v':
			verbose++;
			continue;
		case 'd':
			op = OP_DELETE;
			break;
		case 'h':
			op = OP_HOLD;
			break;
		case 'H':
			op = OP_RELEASE;
			break;
		case 'r':
			op = OP_REQUEUE;
			break;
		default:
			super_usage();
		}
		reqs[nreq].op = op;
		reqs[nreq++].arg = optarg;
	}
	if (nreq == 0 && !check)
		super_usage();
	for (i = optind; i < argc; i++)
		if (!super_queue_known(argv[i])) {
			fprintf(stderr, "%s: fatal: unknown queue name: %s\n",
			    SUPER_PROGNAME, log_sanitize(argv[i], SUPER_LINE_MAX));
			exit(EX_USAGE);
		}
	if (getuid() != 0)
		super_fatal(EX_NOPERM,
		    "use of this command is reserved for the superuser");
	log_set_verbose(verbose);
	if (config_load(config_dir, &err) < 0)
		super_fatal(EX_CONFIG, "%s", err);
	if (priv_lookup_user(var_mail_owner, &super_owner) < 0)
		super_fatal(EX_CONFIG, "mail_owner %s does not exist",
		    var_mail_owner);
	super_log_open();
	/* From here on every queue path is followed as mail_owner. */
	super_become_owner();
	atexit(super_restore_at_exit);
	super_qfd = open(var_queue_directory,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (super_qfd < 0)
		super_fatal(EX_IOERR, "open %s: %s", var_queue_directory,
		    strerror(errno));
	if (check)
		super_check();
	for (i = 0; i < nreq; i++)
		super_request(&reqs[i], argv + optind, argc - optind);
	super_qmgr_close();
	for (op = 0; op < OP_COUNT; op++) {
		int used = 0;

		for (i = 0; i < nreq; i++)
			used |= reqs[i].op == op;
		if (used)
			super_info("%s: %lld message%s", super_summary[op],
			    super_count[op], super_count[op] == 1 ? "" : "s");
	}
	close(super_qfd);
	free(reqs);
	priv_user_free(&super_owner);
	return super_exit;
}
