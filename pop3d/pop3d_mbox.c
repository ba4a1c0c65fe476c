/* SPDX-License-Identifier: MIT */
/*
 * The maildir of one POP3 session (RFC 1939 3, 6: the maildrop, its
 * lock and the UPDATE state), kept as Dovecot keeps it so that both can
 * serve the same mailbox: new/ messages move to cur/ with ":2," when the
 * mailbox is opened, \Seen is the S of ":2,FLAGS", message numbers
 * follow arrival order, and deletion is an unlink plus a negative line
 * in Maildir++'s maildirsize. Sizes are wire sizes (CRLF lines) from
 * Dovecot's ",W=" field, or counted once and cached in tern-pop3-sizes,
 * so opening a large mailbox reads no message. Retention
 * (pop3_delete_after) keeps the messages POP3 retrieved in
 * tern-pop3-retrieved and removes them once old enough.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "mail/maildir_uidlist.h"
#include "pop3d.h"

/* Bytes read per call when counting a message's line ends. */
#define MBOX_READ_CHUNK  (64 * 1024)
/* Output of the caches is written in pieces of this size. */
#define MBOX_WRITE_CHUNK (64 * 1024)
#define MBOX_FILE_MODE   0600
#define MBOX_ERR_SIZE    (PATH_MAX + 256)
/* First line of tern-pop3-sizes: anything else is rebuilt. */
#define SIZES_MAGIC      "tern-pop3-sizes 1\n"

static char mbox_err[MBOX_ERR_SIZE];

static const char *mbox_error(const char *fmt, ...) MTA_PRINTF(1, 2);

static const char *
mbox_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mbox_err, sizeof(mbox_err), fmt, ap);
	va_end(ap);
	return mbox_err;
}

static size_t
base_len_of(const char *name)
{
	const char *c = strchr(name, ':');

	return c != NULL ? (size_t)(c - name) : strlen(name);
}

static int
open_subdir(int dirfd, const char *name)
{
	return openat(
	    dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A DIR of its own over the directory fd (which stays open). */
static DIR *
dir_stream(int fd)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d;

	if (dup_fd < 0)
		return NULL;
	if ((d = fdopendir(dup_fd)) == NULL) {
		close(dup_fd);
		return NULL;
	}
	rewinddir(d);
	return d;
}

/* An entry that may be a message: a regular file (or unknown type) with
 * a name that is not hidden and leaves room for ":2,FLAGS". */
static int
message_entry(const struct dirent *de)
{
	return de->d_name[0] != '.' &&
	       strlen(de->d_name) <= POP3D_NAME_MAX - 8 &&
	       (de->d_type == DT_REG || de->d_type == DT_UNKNOWN);
}

int
pop3d_mbox_open(struct pop3d_mbox *mb, const char *path, int lock, int *busy_r,
    const char **error_r)
{
	memset(mb, 0, sizeof(*mb));
	mb->dirfd = mb->curfd = mb->newfd = mb->lockfd = -1;
	mb->path = xstrdup(path);
	*busy_r = 0;
	if (maildir_create(path, error_r) < 0)
		return -1;
	mb->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mb->dirfd < 0) {
		*error_r = mbox_error("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (!lock)
		return 0;
	mb->lockfd = openat(mb->dirfd, POP3D_LOCK_FILE,
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    MBOX_FILE_MODE);
	if (mb->lockfd < 0) {
		*error_r = mbox_error(
		    "open %s/%s: %s", path, POP3D_LOCK_FILE, strerror(errno));
		return -1;
	}
	/* flock: a session that dies, however it dies, releases it. */
	if (flock(mb->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			*busy_r = 1;
		*error_r = mbox_error(
		    "lock %s/%s: %s", path, POP3D_LOCK_FILE, strerror(errno));
		return -1;
	}
	return 0;
}

void
pop3d_mbox_close(struct pop3d_mbox *mb)
{
	size_t i;

	for (i = 0; i < mb->count; i++)
		free(mb->msgs[i].name);
	free(mb->msgs);
	mb->msgs = NULL;
	mb->count = 0;
	if (mb->curfd >= 0)
		close(mb->curfd);
	if (mb->newfd >= 0)
		close(mb->newfd);
	if (mb->dirfd >= 0)
		close(mb->dirfd);
	if (mb->lockfd >= 0)
		close(mb->lockfd);
	mb->curfd = mb->newfd = mb->dirfd = mb->lockfd = -1;
	free(mb->path);
	mb->path = NULL;
}

static struct pop3d_msg *
add_msg(struct pop3d_mbox *mb, size_t *alloc, const char *name, int in_new)
{
	struct pop3d_msg *m;

	if (mb->count == *alloc) {
		*alloc = *alloc == 0 ? 64 : *alloc * 2;
		mb->msgs = xrealloc(mb->msgs, *alloc * sizeof(*mb->msgs));
	}
	m = &mb->msgs[mb->count++];
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(name);
	m->base_len = base_len_of(name);
	m->in_new = in_new ? 1 : 0;
	if (pop3d_name_time(name, &m->sec, &m->usec) < 0) {
		m->sec = 0;
		m->usec = -1;
	}
	return m;
}

/*
 * new/ to cur/ as Dovecot does when it opens a maildir read-write. A
 * message that cannot move (a clash in cur/) is served from new/.
 */
static int
move_new(struct pop3d_mbox *mb, size_t *alloc, const char **error_r)
{
	struct dirent *de;
	size_t seen = 0;
	char *to;
	DIR *d;
	int ret;

	if ((d = dir_stream(mb->newfd)) == NULL) {
		*error_r =
		    mbox_error("opendir %s/new: %s", mb->path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL && seen < POP3D_MESSAGES_MAX) {
		if (!message_entry(de))
			continue;
		seen++;
		to = strchr(de->d_name, ':') != NULL
		         ? xstrdup(de->d_name)
		         : xasprintf("%s:2,", de->d_name);
		ret =
		    file_rename_noreplace(mb->newfd, de->d_name, mb->curfd, to);
		if (ret < 0 && errno != ENOENT)
			add_msg(mb, alloc, de->d_name, 1);
		free(to);
	}
	closedir(d);
	return 0;
}

static int
read_cur(struct pop3d_mbox *mb, size_t *alloc, const char **error_r)
{
	struct dirent *de;
	size_t seen = 0;
	DIR *d;

	if ((d = dir_stream(mb->curfd)) == NULL) {
		*error_r =
		    mbox_error("opendir %s/cur: %s", mb->path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL && seen < POP3D_MESSAGES_MAX) {
		if (!message_entry(de))
			continue;
		seen++;
		add_msg(mb, alloc, de->d_name, 0);
	}
	closedir(d);
	return 0;
}

static int
msg_dirfd(const struct pop3d_mbox *mb, const struct pop3d_msg *m)
{
	return m->in_new ? mb->newfd : mb->curfd;
}

/* The wire size of what fd holds, as RETR would send it (pop3d.h).
 * -1 on a read error. */
static int
count_wire_size(int fd, uint64_t *size_r)
{
	char *in = xmalloc(MBOX_READ_CHUNK),
	     *out = xmalloc(2 * MBOX_READ_CHUNK);
	struct pop3d_wire w;
	uint64_t size = 0;
	size_t end_len;
	ssize_t n;
	int ret = 0;

	pop3d_wire_init(&w, -1);
	for (;;) {
		n = read(fd, in, MBOX_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		size += pop3d_wire_convert(&w, in, (size_t)n, out);
	}
	free(in);
	free(out);
	(void)pop3d_wire_end(&w, &end_len);
	/* Without the stuffing and the final ".\r\n". */
	*size_r = size - w.stuffed + end_len - 3;
	return ret;
}

static void
free_value(void *v)
{
	free(v);
}

/* tern-pop3-sizes into a table base -> uint64_t size; anything that is
 * not exactly our format leaves the table empty (it is rebuilt). */
static struct hash *
sizes_load(struct pop3d_mbox *mb)
{
	struct hash *h = hash_create();
	struct buf text;
	const char *err;
	char *path, *p, *nl, *sp;
	uint64_t size, *v;

	buf_init(&text, POP3D_STATE_FILE_MAX);
	path = xasprintf("%s/%s", mb->path, POP3D_SIZES_FILE);
	if (file_read_all(path, POP3D_STATE_FILE_MAX, &text, &err) < 0 ||
	    text.len < strlen(SIZES_MAGIC) ||
	    memcmp(text.data, SIZES_MAGIC, strlen(SIZES_MAGIC)) != 0)
		goto done;
	for (p = text.data + strlen(SIZES_MAGIC); *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			goto bad;
		*nl = '\0';
		if ((sp = strchr(p, ' ')) == NULL ||
		    str_to_u64_n(p, (size_t)(sp - p), UINT64_MAX, &size) < 0 ||
		    sp[1] == '\0')
			goto bad;
		v = xmalloc(sizeof(*v));
		*v = size;
		free(hash_put(h, sp + 1, v));
	}
	goto done;
bad:
	hash_free(&h, free_value);
	h = hash_create();
done:
	free(path);
	buf_free(&text);
	return h;
}

/* Writes the sizes of the messages without ",W=" (tmp + rename). */
static void
sizes_save(struct pop3d_mbox *mb, const uint64_t *computed)
{
	struct buf out;
	const char *err;
	char *path;
	size_t i;
	int ok = 1;

	buf_init(&out, POP3D_STATE_FILE_MAX);
	ok = buf_puts(&out, SIZES_MAGIC) == 0;
	for (i = 0; ok && i < mb->count; i++) {
		if (computed[i] == 0)
			continue;
		ok = buf_printf(&out, "%llu %.*s\n",
		         (unsigned long long)mb->msgs[i].size,
		         (int)mb->msgs[i].base_len, mb->msgs[i].name) == 0;
	}
	path = xasprintf("%s/%s", mb->path, POP3D_SIZES_FILE);
	if (ok && file_write_atomic(path, out.data, out.len, MBOX_FILE_MODE,
	              (uid_t)-1, (gid_t)-1, &err) < 0)
		msg_warn("%s", err);
	free(path);
	buf_free(&out);
}

/*
 * Sizes of every message: ",W=", else the cache, else one read. computed
 * marks those that need a cache entry (no ",W=", a name the cache can
 * hold, and a size that was read, not guessed).
 */
static void
find_sizes(struct pop3d_mbox *mb)
{
	uint64_t *computed =
	    xcalloc(mb->count ? mb->count : 1, sizeof(*computed));
	struct hash *h = NULL;
	struct pop3d_msg *m;
	size_t i, used = 0;
	uint64_t *v, s;
	struct stat st;
	char *base;
	int fd, dirty = 0;

	for (i = 0; i < mb->count; i++) {
		m = &mb->msgs[i];
		if (pop3d_name_field(m->name, 'W', &m->size) == 0)
			continue;
		if (h == NULL)
			h = sizes_load(mb);
		base = xstrndup(m->name, m->base_len);
		v = hash_get(h, base);
		free(base);
		if (strchr(m->name, '\n') == NULL)
			computed[i] = 1;
		if (v != NULL) {
			m->size = *v;
			used++;
			continue;
		}
		fd = openat(msg_dirfd(mb, m), m->name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    count_wire_size(fd, &m->size) == 0) {
			mb->sizes_computed++;
			dirty |= (int)computed[i];
		} else {
			/* Unreadable: the stored size is close, and the
			 * next session tries again. */
			computed[i] = 0;
			mb->sizes_unknown++;
			if (pop3d_name_field(m->name, 'S', &s) == 0)
				m->size = s;
			else if (fstatat(msg_dirfd(mb, m), m->name, &st,
			             AT_SYMLINK_NOFOLLOW) == 0)
				m->size = (uint64_t)st.st_size;
		}
		if (fd >= 0)
			close(fd);
	}
	/* Rewrite when something was counted, or the cache names
	 * messages that are gone (or has entries we do not need). */
	if (h != NULL && (dirty || used != hash_count(h)))
		sizes_save(mb, computed);
	else if (h == NULL && faccessat(mb->dirfd, POP3D_SIZES_FILE, F_OK,
	                          AT_SYMLINK_NOFOLLOW) == 0)
		(void)unlinkat(mb->dirfd, POP3D_SIZES_FILE, 0);
	hash_free(&h, free_value);
	free(computed);
}

static int
msg_cmp(const void *a, const void *b)
{
	const struct pop3d_msg *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return pop3d_name_cmp(x->name, y->name);
}

int
pop3d_mbox_uids(struct pop3d_mbox *mb, const char **error_r)
{
	char **bases = xcalloc(mb->count + 1, sizeof(*bases));
	uint32_t *uids = xcalloc(mb->count + 1, sizeof(*uids));
	size_t i;
	int ret;

	for (i = 0; i < mb->count; i++)
		bases[i] = xstrndup(mb->msgs[i].name, mb->msgs[i].base_len);
	ret = maildir_uidlist_assign(
	    mb->path, bases, mb->count, uids, &mb->uidvalidity, error_r);
	if (ret == 0) {
		for (i = 0; i < mb->count; i++)
			mb->msgs[i].uid = uids[i];
		/* Dovecot's pop3 lists a mailbox in UID order. */
		if (mb->count > 1)
			qsort(mb->msgs, mb->count, sizeof(*mb->msgs), msg_cmp);
	}
	for (i = 0; i < mb->count; i++)
		free(bases[i]);
	free(bases);
	free(uids);
	return ret;
}

int
pop3d_mbox_scan(struct pop3d_mbox *mb, const char **error_r)
{
	size_t alloc = 0;

	mb->newfd = open_subdir(mb->dirfd, "new");
	mb->curfd = open_subdir(mb->dirfd, "cur");
	if (mb->newfd < 0 || mb->curfd < 0) {
		*error_r = mbox_error("open %s/%s: %s", mb->path,
		    mb->newfd < 0 ? "new" : "cur", strerror(errno));
		return -1;
	}
	if (move_new(mb, &alloc, error_r) < 0 ||
	    read_cur(mb, &alloc, error_r) < 0)
		return -1;
	find_sizes(mb);
	/* UIDs are 0 until dovecot-uidlist gives them: arrival order. */
	if (mb->count > 1)
		qsort(mb->msgs, mb->count, sizeof(*mb->msgs), msg_cmp);
	return 0;
}

/* The name m's base has now in cur/ (flags changed by another
 * process), into m. 0, or -1 with errno ENOENT when it is gone. */
static int
find_again(struct pop3d_mbox *mb, struct pop3d_msg *m)
{
	struct dirent *de;
	size_t seen = 0;
	DIR *d;
	int found = 0;

	if ((d = dir_stream(mb->curfd)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && seen++ < POP3D_MESSAGES_MAX) {
		if (strncmp(de->d_name, m->name, m->base_len) == 0 &&
		    (de->d_name[m->base_len] == ':' ||
		        de->d_name[m->base_len] == '\0') &&
		    (m->in_new || strcmp(de->d_name, m->name) != 0)) {
			free(m->name);
			m->name = xstrdup(de->d_name);
			m->in_new = 0;
			found = 1;
			break;
		}
	}
	closedir(d);
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int
pop3d_mbox_open_msg(struct pop3d_mbox *mb, struct pop3d_msg *m)
{
	struct stat st;
	int fd, tries;

	for (tries = 0; tries < 2; tries++) {
		fd = openat(msg_dirfd(mb, m), m->name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != ENOENT || tries > 0 || find_again(mb, m) < 0)
			return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* The stored size of m for maildirsize: ",S=", else the file's. */
static uint64_t
stored_size(struct pop3d_mbox *mb, const struct pop3d_msg *m)
{
	struct stat st;
	uint64_t s;

	if (pop3d_name_field(m->name, 'S', &s) == 0)
		return s;
	if (fstatat(msg_dirfd(mb, m), m->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return (uint64_t)st.st_size;
	return 0;
}

/* Adds S to m's flags (moving it to cur/ if it is still in new/). */
static int
mark_seen(struct pop3d_mbox *mb, struct pop3d_msg *m)
{
	char *to;
	int tries, ret = 0;

	for (tries = 0; tries < 2; tries++) {
		to = pop3d_name_add_flag(m->name, 'S');
		if (to == NULL && !m->in_new)
			return 0;
		if (to == NULL)
			to = xstrdup(m->name);
		ret = file_rename_noreplace(
		    msg_dirfd(mb, m), m->name, mb->curfd, to);
		free(to);
		if (ret == 0 || errno != ENOENT || tries > 0)
			break;
		/* Renamed meanwhile (IMAP set a flag): once more. */
		if (find_again(mb, m) < 0)
			return 0;
	}
	return ret;
}

/* Unlinks m; 1 if it went, 0 if it was gone already, -1. */
static int
remove_msg(struct pop3d_mbox *mb, struct pop3d_msg *m, uint64_t *size_r)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		*size_r = stored_size(mb, m);
		if (unlinkat(msg_dirfd(mb, m), m->name, 0) == 0)
			return 1;
		if (errno != ENOENT || tries > 0)
			break;
		if (find_again(mb, m) < 0)
			return 0;
	}
	return errno == ENOENT ? 0 : -1;
}

/* Appends "TIME BASE" of each retrieved message to the retention list,
 * in writes of whole lines (O_APPEND keeps concurrent lines whole). */
static int
append_retrieved(struct pop3d_mbox *mb, time_t now, const char **error_r)
{
	struct pop3d_msg *m;
	struct buf out;
	size_t i;
	int fd = -1, ret = 0;

	buf_init(&out, MBOX_WRITE_CHUNK * 2);
	for (i = 0; i < mb->count && ret == 0; i++) {
		m = &mb->msgs[i];
		if (!m->retrieved || m->deleted ||
		    memchr(m->name, '\n', m->base_len) != NULL)
			continue;
		if (fd < 0) {
			fd = openat(mb->dirfd, POP3D_RETRIEVED_FILE,
			    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
			        O_NONBLOCK | O_CLOEXEC,
			    MBOX_FILE_MODE);
			if (fd < 0) {
				ret = -1;
				break;
			}
		}
		if (buf_printf(&out, "%lld %.*s\n", (long long)now,
		        (int)m->base_len, m->name) < 0)
			msg_panic("append_retrieved: line too long");
		if (out.len >= MBOX_WRITE_CHUNK) {
			ret = file_write_all(fd, out.data, out.len);
			buf_reset(&out);
		}
	}
	if (ret == 0 && out.len > 0)
		ret = file_write_all(fd, out.data, out.len);
	if (ret < 0)
		*error_r = mbox_error("write %s/%s: %s", mb->path,
		    POP3D_RETRIEVED_FILE, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		*error_r = mbox_error("close %s/%s: %s", mb->path,
		    POP3D_RETRIEVED_FILE, strerror(errno));
		ret = -1;
	}
	buf_free(&out);
	return ret;
}

int
pop3d_mbox_commit(struct pop3d_mbox *mb, int no_flag_updates,
    long long delete_after, time_t now, size_t *deleted_r, const char **error_r)
{
	uint64_t bytes = 0, size;
	struct pop3d_msg *m;
	size_t i, count = 0;
	int r, ret = 0, changed = 0;

	*deleted_r = 0;
	for (i = 0; i < mb->count; i++) {
		m = &mb->msgs[i];
		if (m->deleted) {
			r = remove_msg(mb, m, &size);
			if (r > 0) {
				bytes += size;
				count++;
				changed = 1;
			} else if (r < 0 && ret == 0) {
				*error_r = mbox_error("unlink %s/%s/%s: %s",
				    mb->path, m->in_new ? "new" : "cur",
				    m->name, strerror(errno));
				ret = -1;
			}
		} else if (m->retrieved && !no_flag_updates) {
			/* Not made durable: a \Seen lost in a crash costs
			 * nothing, and an fsync per QUIT would. */
			if (mark_seen(mb, m) < 0 && ret == 0) {
				*error_r = mbox_error("rename %s/cur/%s: %s",
				    mb->path, m->name, strerror(errno));
				ret = -1;
			}
		}
	}
	/* Deletions are: a message that came back after a crash would be
	 * fetched a second time. */
	if (changed && fsync(mb->curfd) < 0 && ret == 0) {
		*error_r =
		    mbox_error("fsync %s/cur: %s", mb->path, strerror(errno));
		ret = -1;
	}
	if (count > 0)
		(void)maildir_quota_add(
		    mb->path, -(int64_t)bytes, -(int64_t)count);
	*deleted_r = count;
	if (delete_after > 0 && append_retrieved(mb, now, error_r) < 0)
		ret = -1;
	return ret;
}

/* ---------------------------------------------------------- retention */

struct retained {
	long long when; /* retrieved at */
	int present;    /* the message is still there */
};

/* The retention list into base -> struct retained. 0 (absent: *h_r
 * NULL), or -1. */
static int
retained_load(int dirfd, const char *maildir, struct hash **h_r,
    size_t *lines_r, const char **error_r)
{
	struct retained *r;
	struct stat st;
	uint64_t when;
	char *text, *p, *nl, *sp;
	size_t len;
	int fd;

	*h_r = NULL;
	*lines_r = 0;
	fd = openat(dirfd, POP3D_RETRIEVED_FILE,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = mbox_error("open %s/%s: %s", maildir,
		    POP3D_RETRIEVED_FILE, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > POP3D_STATE_FILE_MAX) {
		*error_r = mbox_error("%s/%s: not a regular file or larger "
		                      "than %d bytes",
		    maildir, POP3D_RETRIEVED_FILE, POP3D_STATE_FILE_MAX);
		close(fd);
		return -1;
	}
	/* Appends may have grown it since: what fstat saw is enough. */
	len = (size_t)st.st_size;
	text = xmalloc(len + 1);
	if (file_pread_all(fd, text, len, 0) < 0) {
		*error_r = mbox_error("read %s/%s: %s", maildir,
		    POP3D_RETRIEVED_FILE, strerror(errno));
		close(fd);
		free(text);
		return -1;
	}
	text[len] = '\0';
	close(fd);
	*h_r = hash_create();
	for (p = text; p < text + len; p = nl + 1) {
		/* A line without LF is an append in progress: skipped. */
		if ((nl = memchr(p, '\n', len - (size_t)(p - text))) == NULL)
			break;
		*nl = '\0';
		(*lines_r)++;
		if ((sp = strchr(p, ' ')) == NULL || sp[1] == '\0' ||
		    str_to_u64_n(p, (size_t)(sp - p), LLONG_MAX, &when) < 0)
			continue;
		r = xcalloc(1, sizeof(*r));
		r->when = (long long)when;
		free(hash_put(*h_r, sp + 1, r));
	}
	free(text);
	return 0;
}

/* Removes the listed messages of one of cur/ and new/ that are old
 * enough; marks the rest present. */
static void
expire_dir(int dirfd, const char *sub, struct hash *h, long long max_age,
    time_t now, size_t *removed_r, uint64_t *bytes_r)
{
	struct retained *r;
	struct dirent *de;
	struct stat st;
	long long sec;
	long usec;
	size_t seen = 0;
	uint64_t size;
	char *base;
	DIR *d;
	int fd;

	if ((fd = open_subdir(dirfd, sub)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL && seen < POP3D_MESSAGES_MAX) {
		if (!message_entry(de))
			continue;
		seen++;
		base = xstrndup(de->d_name, base_len_of(de->d_name));
		r = hash_get(h, base);
		free(base);
		if (r == NULL)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		/* Arrival: the name's time, else the file's. */
		if (pop3d_name_time(de->d_name, &sec, &usec) < 0 || sec == 0)
			sec = (long long)st.st_mtime;
		if (sec > (long long)now - max_age) {
			r->present = 1;
			continue;
		}
		if (pop3d_name_field(de->d_name, 'S', &size) < 0)
			size = (uint64_t)st.st_size;
		if (unlinkat(fd, de->d_name, 0) == 0) {
			(*removed_r)++;
			*bytes_r += size;
		} else {
			r->present = 1;
		}
	}
	if (*removed_r > 0)
		(void)fsync(fd);
	closedir(d);
}

static int
expire_at(int dirfd, const char *maildir, long long max_age, time_t now,
    size_t *removed_r, const char **error_r)
{
	struct retained *r;
	struct hash *h;
	struct buf out;
	const char *key;
	char *path;
	size_t lines, kept = 0, pos = 0;
	uint64_t bytes = 0;
	void *v;
	int ret = 0;

	*removed_r = 0;
	if (retained_load(dirfd, maildir, &h, &lines, error_r) < 0)
		return -1;
	if (h == NULL)
		return 0;
	expire_dir(dirfd, "cur", h, max_age, now, removed_r, &bytes);
	expire_dir(dirfd, "new", h, max_age, now, removed_r, &bytes);
	if (*removed_r > 0)
		(void)maildir_quota_add(
		    maildir, -(int64_t)bytes, -(int64_t)*removed_r);
	while (hash_iter(h, &pos, &v) != NULL)
		kept += ((struct retained *)v)->present;
	if (kept == lines)
		goto done;
	/* Rewrite without what is gone (and without duplicates). */
	path = xasprintf("%s/%s", maildir, POP3D_RETRIEVED_FILE);
	if (kept == 0) {
		if (unlinkat(dirfd, POP3D_RETRIEVED_FILE, 0) < 0 &&
		    errno != ENOENT) {
			*error_r =
			    mbox_error("unlink %s: %s", path, strerror(errno));
			ret = -1;
		}
		free(path);
		goto done;
	}
	buf_init(&out, POP3D_STATE_FILE_MAX);
	pos = 0;
	while ((key = hash_iter(h, &pos, &v)) != NULL) {
		r = v;
		if (r->present &&
		    buf_printf(&out, "%lld %s\n", r->when, key) < 0)
			break;
	}
	if (file_write_atomic(path, out.data, out.len, MBOX_FILE_MODE,
	        (uid_t)-1, (gid_t)-1, error_r) < 0)
		ret = -1;
	buf_free(&out);
	free(path);
done:
	hash_free(&h, free_value);
	return ret;
}

int
pop3d_expire_maildir(const char *maildir, long long max_age, time_t now,
    size_t *removed_r, const char **error_r)
{
	int fd, ret;

	*removed_r = 0;
	fd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = mbox_error("open %s: %s", maildir, strerror(errno));
		return -1;
	}
	ret = expire_at(fd, maildir, max_age, now, removed_r, error_r);
	close(fd);
	return ret;
}

static int
is_maildir(int dirfd)
{
	struct stat st;

	return fstatat(dirfd, "cur", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode) &&
	       fstatat(dirfd, "new", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* One directory of the -E walk; dirfd is closed. */
static void
expire_walk(int dirfd, const char *path, int depth, long long max_age,
    time_t now, int *failed_r)
{
	struct dirent *de;
	struct stat st;
	const char *err;
	size_t removed, seen = 0;
	char *child;
	int maildir, lockfd, fd;
	DIR *d;

	maildir = is_maildir(dirfd);
	if (maildir && faccessat(dirfd, POP3D_RETRIEVED_FILE, F_OK,
	                   AT_SYMLINK_NOFOLLOW) == 0) {
		lockfd = openat(dirfd, POP3D_LOCK_FILE,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		    MBOX_FILE_MODE);
		if (lockfd >= 0 && flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
			if (expire_at(dirfd, path, max_age, now, &removed,
			        &err) < 0) {
				msg_warn("expire %s: %s", path, err);
				(*failed_r)++;
			} else if (removed > 0) {
				msg_info(
				    "expire %s: removed=%zu", path, removed);
			}
		} else if (lockfd < 0) {
			msg_warn("expire %s: open %s: %s", path,
			    POP3D_LOCK_FILE, strerror(errno));
			(*failed_r)++;
		}
		/* A session holds it: the next run expires. */
		if (lockfd >= 0)
			close(lockfd);
	}
	if (depth >= POP3D_EXPIRE_DEPTH || (d = fdopendir(dirfd)) == NULL) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL && seen++ < POP3D_MESSAGES_MAX) {
		if (de->d_name[0] == '.')
			continue;
		if (maildir && (strcmp(de->d_name, "cur") == 0 ||
		                   strcmp(de->d_name, "new") == 0 ||
		                   strcmp(de->d_name, "tmp") == 0))
			continue;
		if (de->d_type != DT_DIR && (de->d_type != DT_UNKNOWN ||
		                                fstatat(dirfd, de->d_name, &st,
		                                    AT_SYMLINK_NOFOLLOW) < 0 ||
		                                !S_ISDIR(st.st_mode)))
			continue;
		fd = open_subdir(dirfd, de->d_name);
		if (fd < 0)
			continue;
		child = xasprintf("%s/%s", path, de->d_name);
		expire_walk(fd, child, depth + 1, max_age, now, failed_r);
		free(child);
	}
	closedir(d);
}

int
pop3d_expire_tree(const char *base, long long max_age, time_t now)
{
	int fd, failed = 0;

	fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		msg_warn("expire: open %s: %s", base, strerror(errno));
		return 1;
	}
	expire_walk(fd, base, 0, max_age, now, &failed);
	return failed;
}
