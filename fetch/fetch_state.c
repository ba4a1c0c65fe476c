/* SPDX-License-Identifier: MIT */
/*
 * What an account already brought in: $fetch_state_directory/NAME, a
 * journal of lines "ID QUEUEID MARK WHEN" (the remote message's UIDL,
 * the queue ID chosen for it, p(ending), q(ueued) or x (not queued after
 * all: forget it), seconds), appended
 * and fdatasync'd one at a time and rewritten compactly (tmp + fsync +
 * rename + directory fsync) when opened and after each poll. The last
 * line of an ID wins; a torn last line (a crash mid-append) is ignored.
 *
 * The order per message is: cleanup creates tmp/Q (locked while its
 * writer lives) → "ID Q p" → content → commit (fsync, rename into
 * incoming/, directory fsync) → "ID Q q" → remote deletion. A crash
 * between two steps is settled when the journal is opened, before any
 * server is asked:
 *
 *   - Q in incoming/, active/, deferred/, hold/ or corrupt/: it was
 *     committed; the entry becomes queued, and the message is never
 *     collected again (only deleted remotely, unless keep=yes).
 *   - tmp/Q still there: never committed. We remove it (its lock is
 *     free: we were its writer) and collect the message again.
 *   - Q nowhere: either it was committed and already delivered, or it
 *     was never committed and qmgr swept tmp/Q. qmgr removes a tmp/
 *     file only when it is unlocked and its mtime is at least
 *     FETCH_SWEEP_AGE seconds old (qmgr_queue.c, QMGR_TMP_MIN_AGE), and
 *     tmp/Q was written no earlier than a second before the pending
 *     record, so while the record is younger than FETCH_SWEEP_SAFE
 *     seconds the sweep cannot have happened: it was delivered (no
 *     duplicate). An older record (tern was down longer than that) is
 *     ambiguous; it is collected again, with a warning: a possible
 *     duplicate is preferred to a possible loss.
 *
 * The daemon opens every account's journal at start, so after a kill
 * and master's restart the settling happens within the safe window.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "fetch.h"

/* qmgr's QMGR_TMP_MIN_AGE: a younger tmp/ file is never swept. */
#define FETCH_SWEEP_AGE 10
/* Allowing for whole-second times on both sides. */
#define FETCH_SWEEP_SAFE (FETCH_SWEEP_AGE - 2)
/* A journal larger than this is refused (the account would need more
 * than a million remote messages). */
#define FETCH_STATE_FILE_MAX (128 * 1024 * 1024)
#define FETCH_STATE_LINE_MAX (FETCH_UIDL_MAX + QUEUE_ID_SIZE + 40)

static void
fetch_entry_free(void *v)
{
	free(v);
}

static void
fetch_state_set(struct fetch_state *s, const char *id, const char *qid,
    enum fetch_mark mark, long long when)
{
	struct fetch_entry *e = hash_get(s->ids, id);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		hash_put(s->ids, id, e);
	}
	snprintf(e->qid, sizeof(e->qid), "%s", qid);
	e->mark = mark;
	e->when = when;
}

int
fetch_id_valid(const char *id)
{
	size_t n = strlen(id);
	const char *p;

	if (n == 0 || n > FETCH_UIDL_MAX)
		return 0;
	for (p = id; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return 0;
	return 1;
}

static void
fetch_state_replay(struct fetch_state *s, char *text, size_t len)
{
	char *line = text, *nl, *f[5];
	uint64_t when;

	while ((size_t)(line - text) < len &&
	       (nl = memchr(line, '\n', len - (size_t)(line - text))) != NULL) {
		*nl = '\0';
		if (str_split(line, " ", f, 5) == 4 && fetch_id_valid(f[0]) &&
		    queue_id_valid(f[1]) && strlen(f[2]) == 1 &&
		    (f[2][0] == FETCH_MARK_PENDING ||
		        f[2][0] == FETCH_MARK_QUEUED ||
		        f[2][0] == FETCH_MARK_DROPPED) &&
		    str_to_u64(f[3], UINT64_MAX >> 1, &when) == 0) {
			if (f[2][0] == FETCH_MARK_DROPPED)
				free(hash_del(s->ids, f[0]));
			else
				fetch_state_set(s, f[0], f[1],
				    (enum fetch_mark)f[2][0], (long long)when);
		}
		line = nl + 1;
	}
}

/* 1 if queue ID qid names a committed message. */
static int
fetch_in_queue(const char *qid)
{
	static const char *const dirs[] = {QUEUE_INCOMING, QUEUE_ACTIVE,
	    QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT};
	struct stat st;
	size_t i;
	char *p;
	int found = 0;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !found; i++) {
		p = queue_path(dirs[i], qid);
		found = lstat(p, &st) == 0;
		free(p);
	}
	return found;
}

/* See the top of the file. */
static void
fetch_state_settle(struct fetch_state *s, const char *name)
{
	struct fetch_entry *e;
	const char *id;
	char **forget = NULL;
	size_t pos = 0, nforget = 0, i;
	char *tmpdir = queue_path(QUEUE_TMP, NULL), *p;
	struct stat st;
	long long now = (long long)time(NULL);
	int tmpfd;
	void *v;

	tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while ((id = hash_iter(s->ids, &pos, &v)) != NULL) {
		e = v;
		if (e->mark != FETCH_MARK_PENDING)
			continue;
		if (fetch_in_queue(e->qid)) {
			msg_info("%s: account %s: %s was queued before a "
				 "restart",
			    e->qid, name, id);
			e->mark = FETCH_MARK_QUEUED;
			continue;
		}
		p = queue_path(QUEUE_TMP, e->qid);
		if (lstat(p, &st) == 0) {
			if (tmpfd >= 0)
				(void)qfile_tmp_stale(tmpfd, e->qid, 0);
			msg_info("%s: account %s: %s was not committed; it "
				 "is collected again",
			    e->qid, name, id);
			forget = xrealloc(forget, (nforget + 1) * sizeof(*forget));
			forget[nforget++] = xstrdup(id);
		} else if (now - e->when < FETCH_SWEEP_SAFE) {
			msg_info("%s: account %s: %s was queued and delivered "
				 "before a restart",
			    e->qid, name, id);
			e->mark = FETCH_MARK_QUEUED;
		} else {
			msg_warn("%s: account %s: cannot tell whether %s was "
				 "queued before tern stopped; it is collected "
				 "again and may arrive twice",
			    e->qid, name, id);
			forget = xrealloc(forget, (nforget + 1) * sizeof(*forget));
			forget[nforget++] = xstrdup(id);
		}
		free(p);
	}
	for (i = 0; i < nforget; i++) {
		free(hash_del(s->ids, forget[i]));
		free(forget[i]);
	}
	free(forget);
	if (tmpfd >= 0)
		close(tmpfd);
	free(tmpdir);
}

/* Rewrites the journal with one line per entry; reopens it. */
static int
fetch_state_rewrite(struct fetch_state *s)
{
	struct buf out;
	struct fetch_entry *e;
	const char *id, *err;
	size_t pos = 0;
	void *v;
	int ret = 0;

	buf_init(&out, FETCH_STATE_FILE_MAX);
	while ((id = hash_iter(s->ids, &pos, &v)) != NULL) {
		e = v;
		if (buf_printf(&out, "%s %s %c %lld\n", id, e->qid, e->mark,
		        e->when) < 0) {
			msg_warn("%s: over %d bytes", s->path,
			    FETCH_STATE_FILE_MAX);
			ret = -1;
			break;
		}
	}
	if (ret == 0 && file_write_atomic(s->path, out.data != NULL ? out.data : "",
	                    out.len, 0600, (uid_t)-1, (gid_t)-1, &err) < 0) {
		msg_warn("%s", err);
		ret = -1;
	}
	buf_free(&out);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	        O_CLOEXEC, 0600);
	if (s->fd < 0) {
		msg_warn("open %s: %m", s->path);
		ret = -1;
	}
	return ret;
}

int
fetch_state_open(struct fetch_state *s, const char *name, char **error_r)
{
	struct buf text;
	const char *err;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->ids = hash_create();
	if (file_ensure_dir(var_fetch_state_directory, 0700, (uid_t)-1,
	        (gid_t)-1, NULL, &err) < 0) {
		*error_r = xstrdup(err);
		return -1;
	}
	s->path = xasprintf("%s/%s", var_fetch_state_directory, name);
	buf_init(&text, FETCH_STATE_FILE_MAX);
	errno = 0;
	if (file_read_all(s->path, FETCH_STATE_FILE_MAX, &text, &err) < 0 &&
	    errno != ENOENT) {
		*error_r = xstrdup(err);
		buf_free(&text);
		return -1;
	}
	if (text.len > 0)
		fetch_state_replay(s, text.data, text.len);
	buf_free(&text);
	fetch_state_settle(s, name);
	if (fetch_state_rewrite(s) < 0) {
		*error_r = xasprintf("%s: cannot be written", s->path);
		return -1;
	}
	return 0;
}

int
fetch_state_mark(struct fetch_state *s, const char *id, const char *qid,
    enum fetch_mark mark)
{
	char line[FETCH_STATE_LINE_MAX];
	long long now = (long long)time(NULL);
	int n;

	n = snprintf(line, sizeof(line), "%s %s %c %lld\n", id, qid, mark, now);
	if (n < 0 || (size_t)n >= sizeof(line) || s->fd < 0 ||
	    file_write_all(s->fd, line, (size_t)n) < 0 ||
	    fdatasync(s->fd) < 0) {
		msg_warn("%s: cannot record %s: %m", s->path, qid);
		return -1;
	}
	if (mark == FETCH_MARK_DROPPED)
		free(hash_del(s->ids, id));
	else
		fetch_state_set(s, id, qid, mark, now);
	return 0;
}

void
fetch_state_prune(struct fetch_state *s, struct hash *listed)
{
	const char *id;
	char **gone = NULL;
	size_t pos = 0, n = 0, i;
	struct fetch_entry *e;
	void *v;

	while ((id = hash_iter(s->ids, &pos, &v)) != NULL) {
		e = v;
		if (e->mark == FETCH_MARK_QUEUED && hash_get(listed, id) == NULL) {
			gone = xrealloc(gone, (n + 1) * sizeof(*gone));
			gone[n++] = xstrdup(id);
		}
	}
	for (i = 0; i < n; i++) {
		free(hash_del(s->ids, gone[i]));
		free(gone[i]);
	}
	free(gone);
	(void)fetch_state_rewrite(s);
}

const struct fetch_entry *
fetch_state_get(const struct fetch_state *s, const char *id)
{
	return hash_get(s->ids, id);
}

void
fetch_state_close(struct fetch_state *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	hash_free(&s->ids, fetch_entry_free);
	free(s->path);
	s->path = NULL;
}
