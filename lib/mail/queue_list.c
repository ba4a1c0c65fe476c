/* SPDX-License-Identifier: MIT */
/*
 * The queue listing (queue_list.h): Postfix's showq walk over tern's
 * queue files and status logs, and the frames showq streams to ternqueue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/status_log.h"

/* Long enough for any path below queue_directory in a log line. */
#define QUEUE_LIST_LOG_MAX 256

/* The pending recipients of q with their last deferral reason, then cb. */
static int
queue_list_report(const char *queue, struct qfile *q, long long uid,
    queue_list_cb *cb, void *ctx)
{
	struct queue_list_msg m = {0};
	struct queue_list_rcpt *r;
	struct status_log *log = NULL;
	const struct status_rec *rec;
	const char *err, *uid_attr;
	char *end;
	int i, n = 0, ret;

	r = xcalloc((size_t)q->nrcpt + 1, sizeof(*r));
	/* A log that cannot be read costs the reasons, not the message. */
	if (strcmp(queue, QUEUE_MAILDROP) != 0 &&
	    (log = status_log_read(q->id, q->nrcpt, &err)) == NULL)
		msg_warn("%s: status log: %s", q->id, err);
	for (i = 0; i < q->nrcpt; i++) {
		if (q->rcpts[i].status != QREC_RCPT)
			continue;
		r[n].addr = q->rcpts[i].addr;
		r[n].orcpt = q->rcpts[i].orcpt;
		rec = log != NULL ? status_log_get(log, i) : NULL;
		r[n].reason = rec != NULL && strcmp(rec->action,
		                                 STATUS_ACTION_DELAYED) == 0
		                  ? rec->diag
		                  : "";
		n++;
	}
	m.queue = queue;
	m.id = q->id;
	m.arrival = q->arrival_sec;
	m.size = (long long)q->content_len;
	m.sender = q->sender;
	m.uid = uid;
	if (uid < 0 && (uid_attr = qfile_attr(q, "uid")) != NULL) {
		errno = 0;
		m.uid = strtoll(uid_attr, &end, 10);
		if (errno != 0 || end == uid_attr || *end != '\0' || m.uid < 0)
			m.uid = -1;
	}
	m.ready = 1;
	m.rcpts = r;
	m.nrcpt = n;
	ret = cb(&m, ctx);
	status_log_free(&log);
	free(r);
	return ret;
}

/* incoming/, active/, deferred/, hold/: files mail_owner wrote. */
static int
queue_list_state(const char *queue, uid_t owner, queue_list_cb *cb, void *ctx)
{
	char *dir_path = queue_path(queue, NULL), *path;
	struct dirent *de;
	struct qfile q;
	const char *err;
	DIR *dir;
	int ret = 0;

	if ((dir = opendir(dir_path)) == NULL) {
		msg_warn(
		    "open %s: %m", log_sanitize(dir_path, QUEUE_LIST_LOG_MAX));
		free(dir_path);
		return 0;
	}
	/* Bounded by the directory; one file open at a time. */
	while (ret == 0 && (de = readdir(dir)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		path = queue_path(queue, de->d_name);
		/* A file that moved on since readdir shows in its next
		 * directory, or is gone; a bad one is for corrupt/. */
		if (qfile_open(path, 0, owner, &q, &err) == 0) {
			if (q.complete)
				ret = queue_list_report(queue, &q, -1, cb, ctx);
			qfile_close(&q);
		} else if (errno != ENOENT) {
			msg_warn("%s: skipped: %s", de->d_name, err);
		}
		free(path);
	}
	closedir(dir);
	free(dir_path);
	return ret;
}

/*
 * One maildrop/ file: its owner submitted it. A file is complete when
 * its owner-execute bit is set (terndrop sets it last) or mail_owner owns
 * it (a requeued queue file); only then, and only if the strict reader
 * takes it, are its sender and recipients shown.
 */
static int
queue_list_maildrop_file(
    int dfd, const char *name, uid_t owner, queue_list_cb *cb, void *ctx)
{
	struct queue_list_msg m = {0};
	struct stat st;
	struct qfile q;
	const char *err;
	char *path;
	int fd, ret = 0, opened = 0, complete;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	if ((st.st_mode & S_IXUSR) != 0 || st.st_uid == owner) {
		fd = openat(
		    dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		/* fstat of what was opened: the name may have changed. */
		if (fd >= 0 && fstat(fd, &st) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0) {
			path = queue_path(QUEUE_MAILDROP, name);
			opened =
			    qfile_open_fd(fd, path, st.st_uid, &q, &err) == 0;
			free(path);
		}
		if (opened) {
			complete = q.complete;
			if (complete)
				ret = queue_list_report(QUEUE_MAILDROP, &q,
				    st.st_uid == owner ? -1
				                       : (long long)st.st_uid,
				    cb, ctx);
			qfile_close(&q);
			if (complete)
				return ret;
		}
	}
	m.queue = QUEUE_MAILDROP;
	m.id = name;
	m.arrival = (long long)st.st_mtime;
	m.size = (long long)st.st_size;
	m.sender = "";
	m.uid = st.st_uid == owner ? -1 : (long long)st.st_uid;
	m.ready = 0;
	return cb(&m, ctx);
}

static int
queue_list_maildrop(uid_t owner, queue_list_cb *cb, void *ctx)
{
	char *dir_path = queue_path(QUEUE_MAILDROP, NULL);
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if ((dir = opendir(dir_path)) == NULL) {
		msg_warn(
		    "open %s: %m", log_sanitize(dir_path, QUEUE_LIST_LOG_MAX));
		free(dir_path);
		return 0;
	}
	while (ret == 0 && (de = readdir(dir)) != NULL)
		if (queue_id_valid(de->d_name))
			ret = queue_list_maildrop_file(
			    dirfd(dir), de->d_name, owner, cb, ctx);
	closedir(dir);
	free(dir_path);
	return ret;
}

int
queue_list_walk(uid_t owner, queue_list_cb *cb, void *ctx)
{
	static const char *const queues[] = {
	    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD};
	size_t i;

	for (i = 0; i < sizeof(queues) / sizeof(queues[0]); i++)
		if (queue_list_state(queues[i], owner, cb, ctx) < 0)
			return -1;
	return queue_list_maildrop(owner, cb, ctx);
}

int
queue_list_put_message(struct buf *frame, const struct queue_list_msg *m)
{
	if (attr_put_str(frame, "type", SHOWQ_TYPE_MESSAGE) < 0 ||
	    attr_put_str(frame, "queue_name", m->queue) < 0 ||
	    attr_put_str(frame, "queue_id", m->id) < 0 ||
	    attr_put_int(frame, "arrival_time", m->arrival) < 0 ||
	    attr_put_int(frame, "message_size", m->size) < 0 ||
	    attr_put_int(frame, "forced_expire", m->forced_expire) < 0 ||
	    attr_put_str(frame, "sender", m->sender) < 0 ||
	    attr_put_int(frame, "ready", m->ready) < 0)
		return -1;
	return 0;
}

int
queue_list_put_rcpt(struct buf *frame, const struct queue_list_rcpt *r)
{
	if (attr_put_str(frame, "type", SHOWQ_TYPE_RECIPIENT) < 0 ||
	    attr_put_str(frame, "address", r->addr) < 0 ||
	    attr_put_str(frame, "orig_address", r->orcpt) < 0 ||
	    attr_put_str(frame, "delay_reason", r->reason) < 0)
		return -1;
	return 0;
}

int
queue_list_put_end(struct buf *frame, const char *status, const char *reason)
{
	if (attr_put_str(frame, "type", SHOWQ_TYPE_END) < 0 ||
	    attr_put_str(frame, "status", status) < 0 ||
	    attr_put_str(frame, "reason", reason) < 0)
		return -1;
	return 0;
}

int
queue_list_get_message(const struct attr_list *l, struct queue_list_msg *m)
{
	long long v;

	memset(m, 0, sizeof(*m));
	m->uid = -1;
	if ((m->queue = attr_get(l, "queue_name")) == NULL ||
	    (m->id = attr_get(l, "queue_id")) == NULL ||
	    (m->sender = attr_get(l, "sender")) == NULL ||
	    attr_get_int(l, "arrival_time", &m->arrival) < 0 ||
	    attr_get_int(l, "message_size", &m->size) < 0)
		return -1;
	if (attr_get_int(l, "forced_expire", &v) < 0)
		return -1;
	m->forced_expire = v != 0;
	if (attr_get_int(l, "ready", &v) < 0)
		return -1;
	m->ready = v != 0;
	return 0;
}

int
queue_list_get_rcpt(const struct attr_list *l, struct queue_list_rcpt *r)
{
	if ((r->addr = attr_get(l, "address")) == NULL ||
	    (r->orcpt = attr_get(l, "orig_address")) == NULL ||
	    (r->reason = attr_get(l, "delay_reason")) == NULL)
		return -1;
	return 0;
}
