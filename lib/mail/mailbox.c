/* SPDX-License-Identifier: MIT */
/*
 * An open folder (a view, as one IMAP session selected it) of a Maildir++
 * store, and the changes sessions make to it: RFC 3501 (SELECT, FETCH
 * FLAGS, STORE, EXPUNGE, APPEND, COPY), RFC 7162 (CONDSTORE modseqs),
 * RFC 4315 (UIDPLUS), RFC 2177 (IDLE's watch descriptor).
 *
 * The folder's state is what tern.index holds plus what tern.index.log
 * adds after it. Every change goes through the log under its lock (flock):
 * a session's STORE, EXPUNGE, APPEND and COPY, and what a directory scan
 * finds that someone else did (delivery, pop3d, Dovecot), so that every
 * view reads the same changes with the same modseqs in the same order. A
 * writer that changed new/ or cur/ records their mtimes after its change
 * when they were what the state knew before it, so that other views need
 * no scan for it; a scan happens only when a directory's mtime is not the
 * one the state records. UIDs and UIDVALIDITY are dovecot-uidlist's,
 * flags the file names', keywords dovecot-keywords': the tern files are a
 * cache, rebuilt by one scan when missing or damaged.
 *
 * HIGHESTMODSEQ never goes down for a CONDSTORE client: a state rebuilt
 * without its index starts its modseqs at the current time in
 * microseconds, above anything the lost index reached unless it made more
 * than a million changes a second since it was built.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mailbox_private.h"
#include "mail/maildir_uidlist.h"

#define BOX_ERR_SIZE  (PATH_MAX + 256)
/* Log bytes read per pread. */
#define LOG_CHUNK     (256 * 1024)
/* Records written in one scan (a first scan of a large folder). */
#define LOG_WRITE_MAX (512u * 1024 * 1024)
/* The index is rewritten when the log has grown this much past it. */
#define INDEX_REWRITE (64 * 1024)
/* The log starts again (after an index rewrite) beyond this size. */
uint64_t mailbox_log_rotate = 4 * 1024 * 1024;
#define LOG_ROTATE     mailbox_log_rotate
/* How long a session waits for another's log lock. */
#define LOCK_WAIT_MS   30000
#define LOCK_RETRY_MS  10
#define CACHE_SIZE_MAX (1024ull * 1024 * 1024)
#define CACHE_REC_MAX  (16u * 1024 * 1024)
#define CACHE_HDR      12 /* u32 length, u32 uid, u8 field, 3 unused */
#define CACHE_MAGIC    "TERNCCH1"
#define CACHE_FILE_HDR 16 /* magic, u32 uidvalidity, u32 unused */
/* Records put are written together, one locked write per this much (a
 * FETCH of 20,000 ENVELOPEs is ~20 writes, not 20,000 lock/stat/write
 * rounds). */
#define CACHE_PEND_FLUSH (512u * 1024)
#define CACHE_PEND_BIT   (1u << 31)
/* Records are read this much at a time: a FETCH or SEARCH walking the
 * folder finds the next message's record in the same window (records
 * written together lie together), one pread per window, not per
 * message. */
#define CACHE_WINDOW (64u * 1024)
/* The record headers are listed this much at a time. */
#define CACHE_LIST_CHUNK (1024u * 1024)
/* A cache file this large, at least half of it records of expunged
 * messages or overwritten ones, is rewritten with the live records
 * only (Dovecot's cache purge): it would otherwise grow with every
 * message the folder ever held. */
#define CACHE_COMPACT_MIN (1024u * 1024)
#define CACHE_COMPACT_PIECE (64u * 1024)
#define MSG_READ_CHUNK 65536
#define APPEND_TRIES   3

/* A name read into a buffer (vname). */
#define NAME_BUF       (MAILBOX_LOG_REC_MAX + 1)
/* A scan's arena of names: a name and its base per file. */
#define SCAN_NAMES_MAX \
	((size_t)MAILDIR_UIDLIST_RECORDS_MAX * 2 * (NAME_MAX + 1))
/* Most a scan reserves up front from a directory's size (a directory
 * that once held many more files keeps its size). */
#define SCAN_RESERVE_MAX (64u * 1024 * 1024)
/* Dead bytes of the name arena that make it worth compacting. */
#define NAMES_DEAD_MIN (64 * 1024)

/*
 * A message of the view: the public struct (40 bytes), whose priv_
 * fields hold the view's own. Its file name is not a string of its own
 * (at ~60 bytes, plus malloc's overhead, it was most of a view's
 * memory): it stays in the index file the view was loaded from (or last
 * wrote), read when needed (opening, renaming, a scan); only names the
 * log brought since then are in box->names (priv_arena).
 */
struct vrec {
	struct mailbox_msg m;
};
_Static_assert(sizeof(struct vrec) <= 40, "a view's message grew");

/* 16 bytes: there is one per message and field once a FETCH or SEARCH
 * filled the cache (32 made 1.3 MiB of a session on 20,000 messages). */
struct cache_ent {
	uint32_t uid;
	/* in the file (< CACHE_SIZE_MAX), or CACHE_PEND_BIT | offset in
	 * pend (< CACHE_PEND_FLUSH + CACHE_REC_MAX) */
	uint32_t off;
	uint32_t gen;      /* order of writing: the later record wins (one
			    * per record: fewer than 2^32 fit the file) */
	uint32_t len : 25; /* <= CACHE_REC_MAX */
	uint32_t field : 7;
};
_Static_assert(CACHE_SIZE_MAX < CACHE_PEND_BIT, "cache offsets");
_Static_assert(CACHE_REC_MAX < (1u << 25), "cache lengths");

struct mailbox {
	struct mailbox_user *user;
	char *name, *path;
	unsigned open_flags;
	struct vrec *recs; /* what the client knows, ascending uid */
	uint32_t count, cap;
	struct vrec *pend; /* new messages for the next sync, ascending */
	uint32_t npend, pcap;
	char *names; /* names the log brought (NUL-terminated) */
	uint32_t names_len, names_cap, names_dead;
	int names_fd;          /* the index file the other names are in */
	const char *names_copy; /* it, read during a scan or index write */
	size_t names_copy_len;
	uint32_t recent;
	uint32_t uidvalidity, uidnext;
	uint64_t hms;
	struct timespec new_mtime, cur_mtime; /* what the state reflects */
	int log_fd;
	dev_t log_dev;
	ino_t log_ino;
	uint64_t log_gen, log_off, index_off;
	int index_ok;
	uint64_t own_from, own_to; /* log range of this view's STOREs */
	struct maildir_keywords kw;
	int kw_changed;
	int scanned;        /* since the end of the last mailbox_sync */
	/* UIDs whose files this view moved from new/ (\Recent here),
	 * ascending */
	uint32_t *moved;
	uint32_t nmoved;
	int watch_fd, log_wd;
	int cache_fd, cache_loaded;
	/* cache[0, nsorted) is sorted; cache[nsorted, ncache) holds the
	 * records put since, ascending as long as they come ascending (a
	 * FETCH or SEARCH walks the folder in order), so neither a get nor
	 * a put sorts the whole list again in the common case. */
	struct cache_ent *cache;
	size_t ncache, ccap, nsorted;
	uint32_t cache_gen;
	struct buf cache_buf;
	struct buf cache_pend; /* records not yet written (headers too) */
	char *cache_win;       /* CACHE_WINDOW octets of the file */
	uint64_t win_off;
	size_t win_len;
};

static __thread char box_err[BOX_ERR_SIZE];

/* Error texts stay valid until the module's next error in the thread. */
#define box_error(...) str_format(box_err, sizeof(box_err), __VA_ARGS__)
static void cache_flush(struct mailbox *box);

static int
ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*
 * 1 if a later change to a directory whose mtime is t would give it
 * another mtime: the coarse clock the kernel stamps directories with has
 * moved past t (past its second, for a file system of whole seconds). A
 * scan that ends in the tick of the directory's last change cannot
 * trust the mtime it saw: a file added in the rest of that tick would
 * leave it as it is, and stay unseen until the next change.
 */
static int
mtime_settled(const struct timespec *t)
{
	struct timespec now;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0)
		return 0;
	if (now.tv_sec != t->tv_sec)
		return now.tv_sec > t->tv_sec;
	return t->tv_nsec != 0 && now.tv_nsec > t->tv_nsec;
}

static uint64_t
now_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- records of the view ---- */

static int64_t
find_in(const struct vrec *v, uint32_t n, uint32_t uid)
{
	uint32_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v[mid].m.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].m.uid == uid ? (int64_t)lo : -1;
}

/* The file name of v (in buf, NAME_BUF bytes, or in the arena), or NULL
 * if it has none or it cannot be read. */
static const char *
vname(const struct mailbox *box, const struct vrec *v, char *buf)
{
	if (v->m.priv_name_len == 0)
		return NULL;
	if (v->m.priv_arena)
		return box->names + v->m.priv_name;
	if (box->names_copy != NULL &&
	    (size_t)v->m.priv_name + v->m.priv_name_len <= box->names_copy_len)
		memcpy(
		    buf, box->names_copy + v->m.priv_name, v->m.priv_name_len);
	else if (box->names_fd < 0 ||
	         file_pread_all(box->names_fd, buf, v->m.priv_name_len,
	             (off_t)v->m.priv_name) < 0)
		return NULL;
	buf[v->m.priv_name_len] = '\0';
	return buf;
}

static void
vname_drop(struct mailbox *box, struct vrec *v)
{
	if (v->m.priv_arena)
		box->names_dead += (uint32_t)v->m.priv_name_len + 1;
	v->m.priv_arena = 0;
	v->m.priv_name_len = 0;
}

/* Copies the live names into a new arena. */
static void
names_compact(struct mailbox *box)
{
	struct vrec *sets[2] = {box->recs, box->pend};
	uint32_t counts[2] = {box->count, box->npend}, i, len = 0;
	char *names;
	int k;

	names = xmalloc((size_t)(box->names_len - box->names_dead) + 1);
	for (k = 0; k < 2; k++)
		for (i = 0; i < counts[k]; i++) {
			struct vrec *v = &sets[k][i];

			if (!v->m.priv_arena)
				continue;
			memcpy(names + len, box->names + v->m.priv_name,
			    (size_t)v->m.priv_name_len + 1);
			v->m.priv_name = len;
			len += (uint32_t)v->m.priv_name_len + 1;
		}
	free(box->names);
	box->names = names;
	box->names_cap = box->names_len - box->names_dead + 1;
	box->names_len = len;
	box->names_dead = 0;
}

static void
vname_set(struct mailbox *box, struct vrec *v, const char *name)
{
	size_t len = strlen(name);

	vname_drop(box, v);
	if (len == 0 || len > MAILBOX_LOG_REC_MAX)
		return;
	if (box->names_len + len + 1 > box->names_cap) {
		if (box->names_dead >= NAMES_DEAD_MIN &&
		    box->names_dead >= box->names_len / 2)
			names_compact(box);
		if (box->names_len + len + 1 > box->names_cap) {
			size_t cap = (size_t)box->names_cap * 2 + len + 4096;

			if (cap > UINT32_MAX)
				msg_panic(
				    "mailbox: names of %s too long", box->name);
			box->names = xrealloc(box->names, cap);
			box->names_cap = (uint32_t)cap;
		}
	}
	memcpy(box->names + box->names_len, name, len + 1);
	v->m.priv_name = box->names_len;
	v->m.priv_name_len = (uint16_t)len;
	v->m.priv_arena = 1;
	box->names_len += (uint32_t)len + 1;
}

/* Reads the index file for a pass over every name (scan, index write):
 * read, not mapped, for a file its owner truncated would be SIGBUS; if it
 * cannot be read whole, names are read one by one. */
static void
names_load(struct mailbox *box)
{
	struct stat st;
	char *p;

	if (box->names_copy != NULL || box->names_fd < 0 ||
	    fstat(box->names_fd, &st) < 0 || st.st_size <= 0)
		return;
	p = xmalloc((size_t)st.st_size);
	if (file_pread_all(box->names_fd, p, (size_t)st.st_size, 0) < 0) {
		free(p);
		return;
	}
	box->names_copy = p;
	box->names_copy_len = (size_t)st.st_size;
}

static void
names_unload(struct mailbox *box)
{
	free((void *)box->names_copy);
	box->names_copy = NULL;
	box->names_copy_len = 0;
}

static void
vrec_set(struct mailbox *box, struct vrec *v, const struct mailbox_rec *r)
{
	char buf[NAME_BUF];
	const char *old;

	v->m.uid = r->uid;
	v->m.flags = (uint8_t)((v->m.flags & MAILBOX_F_RECENT) | r->flags);
	v->m.keywords = r->keywords;
	v->m.modseq = r->modseq;
	v->m.size = r->size;
	v->m.received = r->received;
	v->m.priv_in_new = r->in_new != 0;
	old = vname(box, v, buf);
	if (old == NULL || strcmp(old, r->fname) != 0)
		vname_set(box, v, r->fname);
}

static char *
base_of(const char *fname)
{
	return xstrndup(fname, strcspn(fname, ":"));
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
moved_free(struct mailbox *box)
{
	free(box->moved);
	box->moved = NULL;
	box->nmoved = 0;
}

static void
apply_set(struct mailbox *box, const struct mailbox_rec *r, int own)
{
	struct vrec *v;
	int64_t i;
	uint32_t at;

	if (r->modseq > box->hms)
		box->hms = r->modseq;
	if (r->uid >= box->uidnext)
		box->uidnext = r->uid + 1;
	i = find_in(box->recs, box->count, r->uid);
	if (i >= 0) {
		v = &box->recs[i];
		if (v->m.priv_gone)
			return;
		if (!own && (v->m.modseq != r->modseq ||
		                (v->m.flags & MAILBOX_F_STORED) != r->flags ||
		                v->m.keywords != r->keywords))
			v->m.priv_changed = 1;
		vrec_set(box, v, r);
		return;
	}
	i = find_in(box->pend, box->npend, r->uid);
	if (i >= 0) {
		vrec_set(box, &box->pend[i], r);
		return;
	}
	if (box->npend == box->pcap) {
		box->pcap = box->pcap == 0 ? 64 : box->pcap * 2;
		box->pend = xrealloc(box->pend, box->pcap * sizeof(*box->pend));
	}
	/* UIDs are given and logged under one lock: in order but for
	 * Dovecot's, which a scan may find below ours */
	at = box->npend;
	while (at > 0 && box->pend[at - 1].m.uid > r->uid)
		at--;
	memmove(box->pend + at + 1, box->pend + at,
	    (box->npend - at) * sizeof(*box->pend));
	box->npend++;
	v = &box->pend[at];
	memset(v, 0, sizeof(*v));
	vrec_set(box, v, r);
	if (box->nmoved > 0 &&
	    bsearch(&r->uid, box->moved, box->nmoved, sizeof(*box->moved),
	        uid_cmp) != NULL)
		v->m.flags |= MAILBOX_F_RECENT;
}

static void
apply_expunge(struct mailbox *box, uint32_t uid, uint64_t modseq)
{
	int64_t i;

	if (modseq > box->hms)
		box->hms = modseq;
	i = find_in(box->recs, box->count, uid);
	if (i >= 0) {
		box->recs[i].m.priv_gone = 1;
		return;
	}
	i = find_in(box->pend, box->npend, uid);
	if (i >= 0) {
		vname_drop(box, &box->pend[i]);
		memmove(box->pend + i, box->pend + i + 1,
		    (box->npend - (uint32_t)i - 1) * sizeof(*box->pend));
		box->npend--;
	}
}

static void
apply(struct mailbox *box, const struct mailbox_log_rec *r, int own)
{
	mailbox_stats.log_records++;
	switch (r->type) {
	case MAILBOX_LOG_SET:
		apply_set(box, &r->rec, own);
		break;
	case MAILBOX_LOG_EXPUNGE:
		apply_expunge(box, r->uid, r->modseq);
		break;
	case MAILBOX_LOG_DIRS:
		box->new_mtime = r->new_mtime;
		box->cur_mtime = r->cur_mtime;
		if (r->uidvalidity != 0)
			box->uidvalidity = r->uidvalidity;
		if (r->uidnext > box->uidnext)
			box->uidnext = r->uidnext;
		break;
	}
}

/* ---- the log ---- */

static char *
box_file(const struct mailbox *box, const char *name)
{
	return xasprintf("%s/%s", box->path, name);
}

/* Opens (creating) the log; a new one gets a fresh generation. */
static int
log_open(struct mailbox *box, const char **error_r)
{
	char *path = box_file(box, MAILBOX_LOG_NAME);
	char hdr[MAILBOX_LOG_HDR_SIZE];
	struct stat st;
	int fd;

	fd = open(
	    path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MAILBOX_FILE_MODE);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = box_error("open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	free(path);
	if (st.st_size < MAILBOX_LOG_HDR_SIZE) {
		/* new (or torn at birth): give it a header under its lock */
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
			*error_r = box_error("lock log: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (st.st_size < MAILBOX_LOG_HDR_SIZE) {
			mailbox_log_header(hdr, now_usec());
			if (ftruncate(fd, 0) < 0 ||
			    file_pwrite_all(fd, hdr, sizeof(hdr), 0) < 0) {
				*error_r =
				    box_error("write log: %s", strerror(errno));
				close(fd);
				return -1;
			}
		}
		(void)flock(fd, LOCK_UN);
	}
	if (file_pread_all(fd, hdr, sizeof(hdr), 0) < 0 ||
	    mailbox_log_header_parse(hdr, &box->log_gen) < 0) {
		/* not ours or damaged: start a new one */
		mailbox_log_header(hdr, now_usec());
		if (flock(fd, LOCK_EX) < 0 || ftruncate(fd, 0) < 0 ||
		    file_pwrite_all(fd, hdr, sizeof(hdr), 0) < 0) {
			*error_r = box_error("reset log: %s", strerror(errno));
			close(fd);
			return -1;
		}
		(void)flock(fd, LOCK_UN);
		(void)mailbox_log_header_parse(hdr, &box->log_gen);
	}
	if (box->log_fd >= 0)
		close(box->log_fd);
	box->log_fd = fd;
	box->log_dev = st.st_dev;
	box->log_ino = st.st_ino;
	box->log_off = MAILBOX_LOG_HDR_SIZE;
	return 0;
}

/* Reads and applies the log from the view's offset to its valid end;
 * *valid_r (may be NULL) gets that end. 0 or -1. */
static int
log_read_fd(struct mailbox *box, uint64_t *valid_r, const char **error_r)
{
	struct mailbox_log_rec r;
	char *chunk = xmalloc(LOG_CHUNK);
	size_t have = 0, pos;
	ssize_t n, used;
	int own;

	for (;;) {
		n = pread(box->log_fd, chunk + have, LOG_CHUNK - have,
		    (off_t)(box->log_off + have));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = box_error("read log: %s", strerror(errno));
			free(chunk);
			return -1;
		}
		have += (size_t)n;
		pos = 0;
		while ((used = mailbox_log_decode(
		            chunk + pos, have - pos, &r)) > 0) {
			own = box->log_off + pos >= box->own_from &&
			      box->log_off + pos < box->own_to;
			apply(box, &r, own);
			free(r.rec.fname);
			pos += (size_t)used;
		}
		box->log_off += pos;
		memmove(chunk, chunk + pos, have - pos);
		have -= pos;
		/* a corrupt record, or the end: stop here */
		if (used < 0 || n == 0 || have == LOG_CHUNK)
			break;
	}
	free(chunk);
	if (valid_r != NULL)
		*valid_r = box->log_off;
	return 0;
}

static int
log_read(struct mailbox *box, const char **error_r)
{
	char *path;
	struct stat st;
	uint64_t old_gen;
	int ret;

	if (log_read_fd(box, NULL, error_r) < 0)
		return -1;
	path = box_file(box, MAILBOX_LOG_NAME);
	ret = lstat(path, &st);
	free(path);
	if (ret == 0 && st.st_ino == box->log_ino && st.st_dev == box->log_dev)
		return 0;
	/* rotated (or removed): the old one is read to its end; the new
	 * one follows it if it is the next generation, else the folder is
	 * scanned to be sure */
	old_gen = box->log_gen;
	if (log_open(box, error_r) < 0)
		return -1;
	if (box->log_gen != old_gen + 1) {
		box->new_mtime.tv_sec = box->cur_mtime.tv_sec = 0;
		box->new_mtime.tv_nsec = box->cur_mtime.tv_nsec = -1;
	}
	/* the rotating session wrote the index for the new log's start */
	box->index_off = box->log_off;
	if (box->watch_fd >= 0) {
		path = box_file(box, MAILBOX_LOG_NAME);
		box->log_wd = inotify_add_watch(box->watch_fd, path, IN_MODIFY);
		free(path);
	}
	return log_read_fd(box, NULL, error_r);
}

static void
log_unlock(struct mailbox *box)
{
	(void)flock(box->log_fd, LOCK_UN);
}

/* Takes the log lock and catches up, the torn tail of a dead writer cut
 * off. 0, or a mailbox_error. */
static int
log_lock(struct mailbox *box, const char **error_r)
{
	int waited = 0;
	struct stat st;
	uint64_t valid;
	char *path;

	for (;;) {
		if (flock(box->log_fd, LOCK_EX | LOCK_NB) == 0) {
			path = box_file(box, MAILBOX_LOG_NAME);
			if (lstat(path, &st) == 0 &&
			    st.st_ino == box->log_ino &&
			    st.st_dev == box->log_dev) {
				free(path);
				break;
			}
			free(path);
			log_unlock(box);
			if (log_read(box, error_r) < 0)
				return MAILBOX_ERR_TEMP;
			continue;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			*error_r = box_error("lock log: %s", strerror(errno));
			return MAILBOX_ERR_TEMP;
		}
		if (waited >= LOCK_WAIT_MS) {
			*error_r = "Mailbox is locked by another session";
			return MAILBOX_ERR_INUSE;
		}
		sleep_ms(LOCK_RETRY_MS);
		waited += LOCK_RETRY_MS;
	}
	if (log_read_fd(box, &valid, error_r) < 0 ||
	    fstat(box->log_fd, &st) < 0) {
		log_unlock(box);
		return MAILBOX_ERR_TEMP;
	}
	if ((uint64_t)st.st_size > valid &&
	    ftruncate(box->log_fd, (off_t)valid) < 0) {
		*error_r = box_error("truncate log: %s", strerror(errno));
		log_unlock(box);
		return MAILBOX_ERR_TEMP;
	}
	return 0;
}

/* Appends records (lock held, caught up) and applies them; own: they
 * are this view's STOREs (no changed() for them). */
static int
log_append(
    struct mailbox *box, const struct buf *recs, int own, const char **error_r)
{
	if (recs->len == 0)
		return 0;
	if (file_pwrite_all(
	        box->log_fd, recs->data, recs->len, (off_t)box->log_off) < 0) {
		*error_r = box_error("write log: %s", strerror(errno));
		return MAILBOX_ERR_TEMP;
	}
	if (own) {
		box->own_from = box->log_off;
		box->own_to = box->log_off + recs->len;
	}
	if (log_read_fd(box, NULL, error_r) < 0)
		return MAILBOX_ERR_TEMP;
	box->own_from = box->own_to = 0;
	return 0;
}

/* ---- directories ---- */

static int
stat_dirs(
    const struct mailbox *box, struct timespec *new_r, struct timespec *cur_r)
{
	char *p;
	struct stat st;
	int ret = 0;

	p = xasprintf("%s/new", box->path);
	if (stat(p, &st) < 0)
		ret = -1;
	else
		*new_r = st.st_mtim;
	free(p);
	p = xasprintf("%s/cur", box->path);
	if (stat(p, &st) < 0)
		ret = -1;
	else
		*cur_r = st.st_mtim;
	free(p);
	return ret;
}

void (*mailbox_test_before_dirs_record)(struct mailbox *box);

/*
 * A DIRS record: the mtimes after this view's change, when before it
 * they were what the state knew (else someone else changed a directory
 * too, and the next sync must scan). new/, when this change did not
 * touch it, keeps the mtime known before: a delivery into it while the
 * change was made shows as a newer mtime at the next sync, where a
 * fresh stat would have taken it for this view's own. One that touched
 * new/ (a message not yet moved to cur/) leaves it to the next scan.
 */
static void
dirs_record(struct mailbox *box, struct buf *out, int trusted, int in_new)
{
	struct mailbox_log_rec r;
	struct timespec new_before = box->new_mtime;

	memset(&r, 0, sizeof(r));
	r.type = MAILBOX_LOG_DIRS;
	if (mailbox_test_before_dirs_record != NULL)
		mailbox_test_before_dirs_record(box);
	if (!trusted || stat_dirs(box, &r.new_mtime, &r.cur_mtime) < 0) {
		r.new_mtime.tv_nsec = r.cur_mtime.tv_nsec = -1;
	} else if (in_new) {
		r.new_mtime.tv_nsec = -1;
	} else {
		r.new_mtime = new_before;
	}
	r.uidvalidity = box->uidvalidity;
	r.uidnext = box->uidnext;
	mailbox_log_encode(out, &r);
}

static int
dirs_known(struct mailbox *box)
{
	struct timespec n, c;

	return stat_dirs(box, &n, &c) == 0 && ts_eq(&n, &box->new_mtime) &&
	       ts_eq(&c, &box->cur_mtime);
}

/* RFC822.SIZE of a file without ",W=": its size with CRLF line ends. */
static int
wire_size(int dirfd, const char *fname, uint64_t *size_r, int64_t *received_r)
{
	char *chunk;
	struct stat st;
	uint64_t size = 0;
	ssize_t n, i;
	char prev = 0;
	int fd;

	mailbox_stats.msg_reads++;
	/* O_NONBLOCK: a FIFO named like a message must not hang the scan */
	fd = openat(dirfd, fname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	*received_r = (int64_t)st.st_mtim.tv_sec;
	chunk = xmalloc(MSG_READ_CHUNK);
	while ((n = read(fd, chunk, MSG_READ_CHUNK)) > 0) {
		for (i = 0; i < n; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				size++;
			prev = chunk[i];
		}
		size += (uint64_t)n;
	}
	free(chunk);
	close(fd);
	*size_r = size;
	return 0;
}

struct scan_file {
	/* into the scan's name arena: the name, and its base (up to ':')
	 * after it, each NUL-terminated; offsets while the arena grows */
	union {
		char *p;
		size_t off;
	} fname, base;
	uint8_t in_new, moved;
	uint32_t uid;
};

/* What scan_move_new moved: each file's inode and new name (in names),
 * sorted by inode, so that the listing of cur/ that follows knows them
 * without a string hash of 20,000 names. */
struct moved_file {
	ino_t ino;
	size_t name_off;
};

struct moved_list {
	struct moved_file *f;
	size_t n, cap;
	struct buf names;
};

static int
moved_ino_cmp(const void *a, const void *b)
{
	const struct moved_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* 1 if this view moved the file of this name and inode from new/. A
 * file system that changes the inode on rename (an overlay's copy-up)
 * only costs the file its \Recent. */
static int
moved_has(const struct moved_list *mv, ino_t ino, const char *name)
{
	size_t lo = 0, hi = mv->n, mid, blen;
	const char *m;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (mv->f[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* by base: someone may have changed its flags since */
	blen = strcspn(name, ":");
	for (; lo < mv->n && mv->f[lo].ino == ino; lo++) {
		m = mv->names.data + mv->f[lo].name_off;
		if (strncmp(m, name, blen) == 0 &&
		    (m[blen] == ':' || m[blen] == '\0'))
			return 1;
	}
	return 0;
}

/* Room in b for what the listing of d adds, about factor times the
 * directory's size: growing the buffer as 20,000 names come in would copy
 * it over and over. */
static void
scan_reserve(DIR *d, struct buf *b, size_t factor)
{
	struct stat st;
	size_t want;

	if (fstat(dirfd(d), &st) < 0 || st.st_size <= 0)
		return;
	want = (size_t)st.st_size * factor;
	(void)buf_reserve(b, want < SCAN_RESERVE_MAX ? want : SCAN_RESERVE_MAX);
}

static int
scan_dir(struct mailbox *box, const char *sub, uint8_t in_new,
    const struct moved_list *mv, struct buf *names, struct scan_file **files,
    size_t *n, size_t *cap, const char **error_r)
{
	char *path = xasprintf("%s/%s", box->path, sub);
	struct scan_file *f;
	struct dirent *de;
	size_t len, blen;
	DIR *d;

	d = opendir(path);
	if (d == NULL) {
		*error_r = box_error("opendir %s: %s", sub, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	scan_reserve(d, names, 2);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    !maildir_uidlist_base_valid(de->d_name))
			continue;
		if (*n >= (size_t)MAILDIR_UIDLIST_RECORDS_MAX) {
			*error_r = "Too many messages in the folder";
			closedir(d);
			return -1;
		}
		if (*n == *cap) {
			*cap = *cap == 0 ? 256 : *cap * 2;
			*files = xrealloc(*files, *cap * sizeof(**files));
		}
		len = strlen(de->d_name);
		blen = strcspn(de->d_name, ":");
		f = &(*files)[*n];
		f->fname.off = names->len;
		f->base.off = names->len + len + 1;
		if (buf_append(names, de->d_name, len + 1) < 0 ||
		    buf_append(names, de->d_name, blen) < 0 ||
		    buf_append(names, "", 1) < 0) {
			*error_r = "Too many messages in the folder";
			closedir(d);
			return -1;
		}
		f->in_new = in_new;
		f->moved = mv != NULL && mv->n > 0 &&
		           moved_has(mv, de->d_ino, de->d_name);
		f->uid = 0;
		(*n)++;
	}
	closedir(d);
	return 0;
}

/* Moves new/ to cur/ (this view's \Recent), as Dovecot does on sync. */
static void
scan_move_new(struct mailbox *box, struct moved_list *mv)
{
	char *path = xasprintf("%s/new", box->path), *cur;
	char to[NAME_BUF + 3];
	struct dirent *de;
	size_t len;
	int curfd;
	DIR *d;

	d = opendir(path);
	free(path);
	if (d == NULL)
		return;
	cur = xasprintf("%s/cur", box->path);
	curfd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(cur);
	if (curfd < 0) {
		closedir(d);
		return;
	}
	scan_reserve(d, &mv->names, 1);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    !maildir_uidlist_base_valid(de->d_name))
			continue;
		len = strlen(de->d_name);
		if (len > MAILBOX_LOG_REC_MAX)
			continue; /* a name no record could hold */
		memcpy(to, de->d_name, len + 1);
		if (strstr(to, ":2,") == NULL)
			memcpy(to + len, ":2,", 4);
		if (file_rename_noreplace(dirfd(d), de->d_name, curfd, to) < 0)
			continue;
		if (mv->n == mv->cap) {
			mv->cap = mv->cap == 0 ? 256 : mv->cap * 2;
			mv->f = xrealloc(mv->f, mv->cap * sizeof(*mv->f));
		}
		mv->f[mv->n].ino = de->d_ino;
		mv->f[mv->n].name_off = mv->names.len;
		if (buf_append(&mv->names, to, strlen(to) + 1) < 0)
			break; /* it stays moved, only not \Recent */
		mv->n++;
	}
	close(curfd);
	closedir(d);
	if (mv->n > 1)
		qsort(mv->f, mv->n, sizeof(*mv->f), moved_ino_cmp);
}

/* UIDs of the files, from dovecot-uidlist, new ones added under its
 * lock. */
static int
scan_uids(struct mailbox *box, struct scan_file *files, size_t n,
    uint32_t *uidvalidity_r, uint32_t *uidnext_r, const char **error_r)
{
	struct maildir_uidlist_lock *lock = NULL;
	struct maildir_uidlist *ul = NULL;
	struct maildir_uidlist_rec *rec;
	char **missing = NULL;
	size_t *missing_at = NULL;
	uint32_t old_uv = 0, *uids = NULL;
	size_t i, k = 0;
	const char *why;
	int ret, locked = 0;

again:
	ret = maildir_uidlist_read(box->path, &ul, &why);
	if (ret < 0) {
		*error_r = why;
		goto fail;
	}
	if (ret == 0) {
		old_uv = ul->uidvalidity;
		maildir_uidlist_free(&ul);
		ul = maildir_uidlist_create();
	}
	k = 0;
	missing = xrealloc(missing, (n + 1) * sizeof(*missing));
	missing_at = xrealloc(missing_at, (n + 1) * sizeof(*missing_at));
	for (i = 0; i < n; i++) {
		/* An empty list (a first SELECT) has none of the names. */
		rec = ul->count > 0 ? maildir_uidlist_lookup(ul, files[i].base.p)
		                    : NULL;
		files[i].uid = rec != NULL ? rec->uid : 0;
		if (rec == NULL) {
			missing_at[k] = i;
			missing[k++] = files[i].base.p;
		}
	}
	if ((k > 0 || ret == 0) && !locked) {
		maildir_uidlist_free(&ul);
		ret = maildir_uidlist_lock(
		    box->path, MAILDIR_UIDLIST_LOCK_WAIT_SECS, &lock, error_r);
		if (ret <= 0)
			goto fail;
		locked = 1;
		goto again;
	}
	if (locked && (k > 0 || ret == 0)) {
		uids = xmalloc((k + 1) * sizeof(*uids));
		if (maildir_uidlist_add_new_uids(ul, missing, k, uids,
		        error_r) < 0 ||
		    maildir_uidlist_write(box->path, ul, old_uv, error_r) < 0)
			goto fail;
		for (i = 0; i < k; i++)
			files[missing_at[i]].uid = uids[i];
	}
	*uidvalidity_r = ul->uidvalidity;
	*uidnext_r = ul->next_uid;
	ret = 0;
	goto out;
fail:
	ret = -1;
out:
	maildir_uidlist_unlock(&lock);
	maildir_uidlist_free(&ul);
	free(missing);
	free(missing_at);
	free(uids);
	return ret;
}

static int
file_uid_cmp(const void *a, const void *b)
{
	const struct scan_file *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void
set_record(struct buf *out, const struct mailbox_rec *rec)
{
	struct mailbox_log_rec r;

	memset(&r, 0, sizeof(r));
	r.type = MAILBOX_LOG_SET;
	r.rec = *rec;
	mailbox_log_encode(out, &r);
}

static void
expunge_record(struct buf *out, uint32_t uid, uint64_t modseq)
{
	struct mailbox_log_rec r;

	memset(&r, 0, sizeof(r));
	r.type = MAILBOX_LOG_EXPUNGE;
	r.uid = uid;
	r.modseq = modseq;
	mailbox_log_encode(out, &r);
}

/* A state message (in the view or pending) by uid, or NULL. */
static struct vrec *
state_find(struct mailbox *box, uint32_t uid)
{
	int64_t i = find_in(box->recs, box->count, uid);

	if (i >= 0)
		return box->recs[i].m.priv_gone ? NULL : &box->recs[i];
	i = find_in(box->pend, box->npend, uid);
	return i >= 0 ? &box->pend[i] : NULL;
}

/*
 * What the directories hold against the state (lock held, caught up),
 * logged as changes: one scan.
 */
static int
scan(struct mailbox *box, const char **error_r)
{
	struct scan_file *files = NULL;
	struct moved_list mv;
	struct buf names;
	uint32_t *moved;
	size_t n = 0, cap = 0, i, k;
	struct timespec na, ca, nb, cb;
	uint32_t uidvalidity, uidnext, j;
	struct mailbox_rec rec;
	uint8_t *seen_r = NULL, *seen_p = NULL;
	struct vrec *v;
	struct buf out;
	int newfd = -1, curfd = -1, reset, ret = MAILBOX_ERR_TEMP;
	char *p, nbuf[NAME_BUF];
	const char *vn;

	mailbox_stats.scans++;
	names_load(box);
	buf_init(&out, LOG_WRITE_MAX);
	memset(&mv, 0, sizeof(mv));
	buf_init(&mv.names, SCAN_NAMES_MAX);
	buf_init(&names, SCAN_NAMES_MAX);
	if ((box->open_flags & MAILBOX_OPEN_READONLY) == 0)
		scan_move_new(box, &mv);
	if (stat_dirs(box, &na, &ca) < 0) {
		*error_r = box_error("stat %s: %s", box->path, strerror(errno));
		ret = MAILBOX_ERR_NONEXISTENT;
		goto out;
	}
	if (scan_dir(box, "new", 1, NULL, &names, &files, &n, &cap, error_r) <
	        0 ||
	    scan_dir(box, "cur", 0, &mv, &names, &files, &n, &cap, error_r) <
	        0 ||
	    stat_dirs(box, &nb, &cb) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		files[i].fname.p = names.data + files[i].fname.off;
		files[i].base.p = names.data + files[i].base.off;
	}
	/* a record per file at most: its name and some 40 bytes */
	(void)buf_reserve(&out, names.len / 2 + n * 64);
	if (scan_uids(box, files, n, &uidvalidity, &uidnext, error_r) < 0)
		goto out;
	if (n > 0)
		qsort(files, n, sizeof(*files), file_uid_cmp);
	/* what this view moved, by UID now, for apply_set's \Recent */
	for (i = k = 0; i < n; i++)
		k += files[i].moved && files[i].uid != 0;
	if (k > 0) {
		moved = xmalloc((box->nmoved + k) * sizeof(*moved));
		if (box->nmoved > 0)
			memcpy(moved, box->moved,
			    box->nmoved * sizeof(*moved));
		for (i = 0, k = box->nmoved; i < n; i++)
			if (files[i].moved && files[i].uid != 0)
				moved[k++] = files[i].uid;
		free(box->moved);
		box->moved = moved;
		box->nmoved = (uint32_t)k;
		qsort(box->moved, box->nmoved, sizeof(*box->moved), uid_cmp);
	}
	p = xasprintf("%s/new", box->path);
	newfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(p);
	p = xasprintf("%s/cur", box->path);
	curfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(p);
	if (newfd < 0 || curfd < 0) {
		*error_r = box_error("open %s: %s", box->path, strerror(errno));
		goto out;
	}
	reset = box->uidvalidity != 0 && uidvalidity != box->uidvalidity;
	if (box->hms == 0)
		box->hms = now_usec();
	seen_r = xcalloc(box->count + 1, 1);
	seen_p = xcalloc(box->npend + 1, 1);
	for (i = 0; i < n; i++) {
		if (files[i].uid == 0 ||
		    (i > 0 && files[i].uid == files[i - 1].uid))
			continue;
		v = reset ? NULL : state_find(box, files[i].uid);
		memset(&rec, 0, sizeof(rec));
		rec.uid = files[i].uid;
		rec.fname = files[i].fname.p;
		rec.in_new = files[i].in_new;
		mailbox_fname_flags(files[i].fname.p, &rec.flags, &rec.keywords);
		if (v != NULL) {
			/* No folder records: recs may be NULL, and NULL + 0
			 * is undefined. */
			if (box->count > 0 && v >= box->recs &&
			    v < box->recs + box->count)
				seen_r[v - box->recs] = 1;
			else
				seen_p[v - box->pend] = 1;
			vn = vname(box, v, nbuf);
			if (vn != NULL && strcmp(vn, files[i].fname.p) == 0)
				continue;
			rec.size = v->m.size;
			rec.received = v->m.received;
			rec.modseq = v->m.modseq;
			if ((v->m.flags & MAILBOX_F_STORED) != rec.flags ||
			    v->m.keywords != rec.keywords)
				rec.modseq = ++box->hms;
		} else {
			if (mailbox_fname_size(rec.fname, 'W', &rec.size))
				rec.received = MAILBOX_RECEIVED_UNKNOWN;
			else if (wire_size(rec.in_new ? newfd : curfd,
			             rec.fname, &rec.size, &rec.received) < 0)
				continue; /* gone meanwhile */
			rec.modseq = ++box->hms;
		}
		set_record(&out, &rec);
	}
	for (j = 0; j < box->count; j++)
		if (!box->recs[j].m.priv_gone && (reset || !seen_r[j]))
			expunge_record(&out, box->recs[j].m.uid, ++box->hms);
	for (j = 0; j < box->npend; j++)
		if (reset || !seen_p[j])
			expunge_record(&out, box->pend[j].m.uid, ++box->hms);
	box->uidvalidity = uidvalidity;
	if (uidnext > box->uidnext)
		box->uidnext = uidnext;
	/* trusted only if nothing changed while we listed, and nothing
	 * can change unseen in the tick of the last change */
	{
		struct mailbox_log_rec r;

		memset(&r, 0, sizeof(r));
		r.type = MAILBOX_LOG_DIRS;
		r.new_mtime = nb;
		r.cur_mtime = cb;
		if (!ts_eq(&na, &nb) || !mtime_settled(&nb))
			r.new_mtime.tv_nsec = -1;
		if (!ts_eq(&ca, &cb) || !mtime_settled(&cb))
			r.cur_mtime.tv_nsec = -1;
		r.uidvalidity = uidvalidity;
		r.uidnext = box->uidnext;
		mailbox_log_encode(&out, &r);
	}
	ret = log_append(box, &out, 0, error_r);
out:
	if (newfd >= 0)
		close(newfd);
	if (curfd >= 0)
		close(curfd);
	free(files);
	buf_free(&names);
	buf_free(&mv.names);
	free(mv.f);
	free(seen_r);
	free(seen_p);
	buf_free(&out);
	names_unload(box);
	box->scanned = 1;
	return ret;
}

/* ---- the index ---- */

/* Writes the index of the state (lock held, caught up), and starts the
 * log again when it is large. */
static int
index_write_locked(struct mailbox *box, const char **error_r)
{
	struct mailbox_index idx;
	uint32_t i = 0, j = 0, k = 0;
	char hdr[MAILBOX_LOG_HDR_SIZE], *tmp, *path, nbuf[NAME_BUF];
	struct vrec *v, **from;
	struct buf names;
	const char *vn;
	int fd, ret, names_fd;

	memset(&idx, 0, sizeof(idx));
	idx.uidvalidity = box->uidvalidity;
	idx.uidnext = box->uidnext;
	idx.highestmodseq = box->hms;
	idx.log_gen = box->log_gen;
	idx.log_off = box->log_off;
	idx.new_mtime = box->new_mtime;
	idx.cur_mtime = box->cur_mtime;
	idx.recs = xcalloc(box->count + box->npend + 1, sizeof(*idx.recs));
	from = xcalloc(box->count + box->npend + 1, sizeof(*from));
	/* the names, gathered (offsets first: the buffer moves) */
	buf_init(&names, (size_t)UINT32_MAX);
	names_load(box);
	while (i < box->count || j < box->npend) {
		if (j >= box->npend ||
		    (i < box->count && box->recs[i].m.uid < box->pend[j].m.uid))
			v = &box->recs[i++];
		else
			v = &box->pend[j++];
		if (v->m.priv_gone)
			continue;
		vn = vname(box, v, nbuf);
		if (vn == NULL) {
			*error_r = box_error(
			    "read %s: %s", MAILBOX_INDEX_NAME, strerror(errno));
			names_unload(box);
			buf_free(&names);
			free(idx.recs);
			free(from);
			return -1;
		}
		from[k] = v;
		idx.recs[k].fname_off = (uint32_t)names.len;
		if (buf_append(&names, vn, strlen(vn) + 1) < 0)
			msg_panic("mailbox: names of %s too long", box->name);
		idx.recs[k].uid = v->m.uid;
		idx.recs[k].flags = v->m.flags & MAILBOX_F_STORED;
		idx.recs[k].in_new = v->m.priv_in_new;
		idx.recs[k].keywords = v->m.keywords;
		idx.recs[k].modseq = v->m.modseq;
		idx.recs[k].size = v->m.size;
		idx.recs[k].received = v->m.received;
		k++;
	}
	names_unload(box);
	idx.count = k;
	for (i = 0; i < k; i++)
		idx.recs[i].fname = names.data + idx.recs[i].fname_off;
	if (box->log_off >= LOG_ROTATE) {
		idx.log_gen = box->log_gen + 1;
		idx.log_off = MAILBOX_LOG_HDR_SIZE;
	}
	ret = mailbox_index_write_fd(box->path, &idx, &names_fd, error_r);
	buf_free(&names);
	if (ret == 0 && names_fd >= 0) {
		/* the names are now in the file just written: the arena and
		 * the old file go (a gone message's name with them) */
		for (i = 0; i < box->count; i++)
			vname_drop(box, &box->recs[i]);
		for (i = 0; i < box->npend; i++)
			vname_drop(box, &box->pend[i]);
		for (i = 0; i < k; i++) {
			from[i]->m.priv_name = idx.recs[i].fname_off;
			from[i]->m.priv_name_len = idx.recs[i].fname_len;
		}
		free(box->names);
		box->names = NULL;
		box->names_len = box->names_cap = box->names_dead = 0;
		if (box->names_fd >= 0)
			close(box->names_fd);
		box->names_fd = names_fd;
	}
	free(idx.recs);
	free(from);
	if (ret < 0)
		return -1;
	box->index_off = box->log_off;
	if (box->log_off < LOG_ROTATE)
		return 0;
	/* a new log of the next generation replaces the old one, whose
	 * readers finish it and follow */
	tmp = box_file(box, MAILBOX_LOG_NAME ".new");
	path = box_file(box, MAILBOX_LOG_NAME);
	(void)unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    MAILBOX_FILE_MODE);
	mailbox_log_header(hdr, box->log_gen + 1);
	if (fd < 0 || file_pwrite_all(fd, hdr, sizeof(hdr), 0) < 0 ||
	    rename(tmp, path) < 0) {
		*error_r = box_error("rotate log: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
		free(tmp);
		free(path);
		return -1;
	}
	close(fd);
	free(tmp);
	free(path);
	/* our lock goes with the old file: rotating is the last step */
	if (log_open(box, error_r) < 0)
		return -1;
	box->index_off = box->log_off;
	return 0;
}

/* ---- opening ---- */

int mailbox_sync(struct mailbox *box, unsigned sync_flags,
    const struct mailbox_sync_ops *ops, void *ctx, const char **error_r);

static void
box_free(struct mailbox *box)
{
	names_unload(box);
	free(box->names);
	if (box->names_fd >= 0)
		close(box->names_fd);
	free(box->recs);
	free(box->pend);
	if (box->log_fd >= 0)
		close(box->log_fd);
	if (box->watch_fd >= 0)
		close(box->watch_fd);
	if (box->cache_fd >= 0)
		close(box->cache_fd);
	free(box->cache);
	buf_free(&box->cache_buf);
	buf_free(&box->cache_pend);
	free(box->cache_win);
	maildir_keywords_clear(&box->kw);
	moved_free(box);
	free(box->name);
	free(box->path);
	free(box);
}

/* Moves pending messages into the view; the new \Recent count. */
static uint32_t
merge_pending(struct mailbox *box)
{
	uint32_t i, recent = 0;
	int sort = 0;

	if (box->npend == 0)
		return 0;
	if (box->count + box->npend > box->cap) {
		box->cap = box->count + box->npend + box->cap / 2 + 64;
		box->recs = xrealloc(box->recs, box->cap * sizeof(*box->recs));
	}
	if (box->count > 0 &&
	    box->pend[0].m.uid < box->recs[box->count - 1].m.uid)
		sort = 1;
	for (i = 0; i < box->npend; i++) {
		box->pend[i].m.priv_changed = 0;
		if ((box->pend[i].m.flags & MAILBOX_F_RECENT) != 0)
			recent++;
		box->recs[box->count++] = box->pend[i];
	}
	box->npend = 0;
	if (box->pcap > 64) {
		/* a first scan's thousands: not kept for a few new ones */
		free(box->pend);
		box->pend = NULL;
		box->pcap = 0;
	}
	if (sort) {
		/* a UID below ours that Dovecot gave: keep the order */
		uint32_t a, b;
		struct vrec t;

		for (a = 1; a < box->count; a++) {
			t = box->recs[a];
			for (b = a; b > 0 && box->recs[b - 1].m.uid > t.m.uid;
			     b--)
				box->recs[b] = box->recs[b - 1];
			box->recs[b] = t;
		}
	}
	box->recent += recent;
	return recent;
}

static int
box_load_index(struct mailbox *box, const char **error_r)
{
	struct mailbox_index idx;
	struct stat st;
	uint32_t i;
	int ret, fd;

	ret = mailbox_index_read_fd(box->path, &idx, &fd, error_r);
	if (ret < 0)
		return -1;
	if (ret == 0 || idx.log_gen != box->log_gen ||
	    fstat(box->log_fd, &st) < 0 || idx.log_off > (uint64_t)st.st_size ||
	    idx.log_off < MAILBOX_LOG_HDR_SIZE) {
		if (ret > 0) {
			mailbox_index_free(&idx);
			close(fd);
		}
		/* rebuilt by a scan; modseqs restart above the old ones */
		box->hms = now_usec();
		box->new_mtime.tv_nsec = box->cur_mtime.tv_nsec = -1;
		return 0;
	}
	box->recs = xcalloc(idx.count + 1, sizeof(*box->recs));
	box->cap = idx.count + 1;
	for (i = 0; i < idx.count; i++) {
		box->recs[i].m.uid = idx.recs[i].uid;
		box->recs[i].m.flags = idx.recs[i].flags;
		box->recs[i].m.keywords = idx.recs[i].keywords;
		box->recs[i].m.modseq = idx.recs[i].modseq;
		box->recs[i].m.size = idx.recs[i].size;
		box->recs[i].m.received = idx.recs[i].received;
		box->recs[i].m.priv_in_new = idx.recs[i].in_new != 0;
		box->recs[i].m.priv_name = idx.recs[i].fname_off;
		box->recs[i].m.priv_name_len = idx.recs[i].fname_len;
	}
	box->names_fd = fd;
	box->count = idx.count;
	box->uidvalidity = idx.uidvalidity;
	box->uidnext = idx.uidnext;
	box->hms = idx.highestmodseq;
	box->new_mtime = idx.new_mtime;
	box->cur_mtime = idx.cur_mtime;
	box->log_off = idx.log_off;
	box->index_off = idx.log_off;
	box->index_ok = 1;
	mailbox_index_free(&idx);
	return 0;
}

/* The sync work without reports: log, keywords, a scan if needed. */
static int
sync_state(struct mailbox *box, const char **error_r)
{
	int ret;

	if (log_read(box, error_r) < 0)
		return MAILBOX_ERR_TEMP;
	ret = maildir_keywords_refresh(box->path, &box->kw, error_r);
	if (ret < 0)
		return MAILBOX_ERR_TEMP;
	if (ret > 0)
		box->kw_changed = 1;
	if (dirs_known(box))
		return 0;
	ret = log_lock(box, error_r);
	if (ret < 0)
		return ret;
	if (!dirs_known(box))
		ret = scan(box, error_r);
	if (ret == 0 &&
	    (!box->index_ok || box->log_off - box->index_off > INDEX_REWRITE ||
	        box->log_off >= LOG_ROTATE)) {
		if (index_write_locked(box, error_r) == 0)
			box->index_ok = 1;
	}
	log_unlock(box);
	return ret;
}

int
mailbox_open(struct mailbox_user *user, const char *name, unsigned open_flags,
    struct mailbox **box_r, const char **error_r)
{
	struct mailbox *box;
	char *path, *norm, *cur;
	uint32_t i;
	int err;

	*box_r = NULL;
	path = mailbox_folder_path(user, name, &norm, &err, error_r);
	if (path == NULL)
		return err;
	cur = xasprintf("%s/cur", path);
	if (access(cur, F_OK) < 0) {
		*error_r = "Mailbox doesn't exist";
		free(cur);
		free(path);
		free(norm);
		return MAILBOX_ERR_NONEXISTENT;
	}
	free(cur);
	box = xcalloc(1, sizeof(*box));
	box->user = user;
	box->name = norm;
	box->path = path;
	box->open_flags = open_flags;
	box->log_fd = box->watch_fd = box->cache_fd = box->names_fd = -1;
	box->uidnext = 1;
	buf_init(&box->cache_buf, CACHE_REC_MAX);
	buf_init(&box->cache_pend, CACHE_PEND_FLUSH + CACHE_REC_MAX +
	    CACHE_HDR);
	if (log_open(box, error_r) < 0 || box_load_index(box, error_r) < 0) {
		box_free(box);
		return MAILBOX_ERR_TEMP;
	}
	err = sync_state(box, error_r);
	if (err < 0) {
		box_free(box);
		return err;
	}
	for (i = 0; i < box->count; i++)
		box->recs[i].m.priv_changed = 0;
	/* what the log said after the index is the starting point, not
	 * news for the client */
	(void)mailbox_sync(box, 0, NULL, NULL, error_r);
	for (i = 0; i < box->count; i++)
		box->recs[i].m.priv_changed = 0;
	box->kw_changed = 0;
	*box_r = box;
	return 0;
}

void
mailbox_close(struct mailbox **box_r)
{
	struct mailbox *box = *box_r;
	const char *error;

	if (box == NULL)
		return;
	cache_flush(box);
	if (log_lock(box, &error) == 0) {
		if (!box->index_ok ||
		    box->log_off - box->index_off > INDEX_REWRITE ||
		    box->log_off >= LOG_ROTATE)
			(void)index_write_locked(box, &error);
		log_unlock(box);
	}
	box_free(box);
	*box_r = NULL;
}

const char *
mailbox_name(const struct mailbox *box)
{
	return box->name;
}

void
mailbox_view_status(const struct mailbox *box, struct mailbox_status *st)
{
	uint32_t i;

	memset(st, 0, sizeof(*st));
	st->messages = box->count;
	st->recent = box->recent;
	st->uidnext = box->uidnext;
	st->uidvalidity = box->uidvalidity;
	st->highestmodseq = box->hms;
	for (i = 0; i < box->count; i++) {
		if ((box->recs[i].m.flags & MAILBOX_F_SEEN) == 0) {
			st->unseen++;
			if (st->first_unseen == 0)
				st->first_unseen = i + 1;
		}
		if ((box->recs[i].m.flags & MAILBOX_F_DELETED) != 0)
			st->deleted++;
		st->size += box->recs[i].m.size;
	}
}

size_t
mailbox_view_bytes(const struct mailbox *box)
{
	return (size_t)box->cap * sizeof(*box->recs) +
	       (size_t)box->pcap * sizeof(*box->pend) + box->names_cap +
	       (size_t)box->ccap * sizeof(*box->cache);
}

uint32_t
mailbox_count(const struct mailbox *box)
{
	return box->count;
}

const struct mailbox_msg *
mailbox_msg(const struct mailbox *box, uint32_t seq)
{
	if (seq == 0 || seq > box->count)
		msg_panic("mailbox_msg: seq %u of %u", seq, box->count);
	return &box->recs[seq - 1].m;
}

uint32_t
mailbox_seq(const struct mailbox *box, uint32_t uid)
{
	int64_t i = find_in(box->recs, box->count, uid);

	return i < 0 ? 0 : (uint32_t)i + 1;
}

int
mailbox_msg_gone(const struct mailbox *box, uint32_t seq)
{
	return seq >= 1 && seq <= box->count && box->recs[seq - 1].m.priv_gone;
}

/* ---- keywords ---- */

int
mailbox_keyword_index(
    struct mailbox *box, const char *name, int create, const char **error_r)
{
	struct maildir_uidlist_lock *lock = NULL;
	int idx;

	idx = maildir_keywords_lookup(&box->kw, name);
	if (idx >= 0 || !create)
		return idx;
	if (maildir_uidlist_lock(
	        box->path, MAILDIR_UIDLIST_LOCK_WAIT_SECS, &lock, error_r) <= 0)
		return MAILBOX_ERR_TEMP;
	if (maildir_keywords_refresh(box->path, &box->kw, error_r) < 0) {
		maildir_uidlist_unlock(&lock);
		return MAILBOX_ERR_TEMP;
	}
	idx = maildir_keywords_add(box->path, &box->kw, name, error_r);
	maildir_uidlist_unlock(&lock);
	if (idx == -2) {
		*error_r = "Too many keywords in this mailbox";
		return MAILBOX_ERR_LIMIT;
	}
	return idx < 0 ? MAILBOX_ERR_TEMP : idx;
}

size_t
mailbox_keyword_count(const struct mailbox *box)
{
	size_t n = 0, i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (box->kw.names[i] != NULL)
			n = i + 1;
	return n;
}

const char *
mailbox_keyword_name(const struct mailbox *box, unsigned idx)
{
	return idx < MAILDIR_KEYWORDS_MAX ? box->kw.names[idx] : NULL;
}

/* ---- sync ---- */

static void
watch_drain(struct mailbox *box)
{
	char ev[4096];

	if (box->watch_fd < 0)
		return;
	while (read(box->watch_fd, ev, sizeof(ev)) > 0)
		;
}

/* Another session (or Dovecot) deleted the folder under this view. */
static int
folder_gone(const struct mailbox *box)
{
	char *cur = xasprintf("%s/cur", box->path);
	int gone = access(cur, F_OK) < 0 && errno == ENOENT;

	free(cur);
	return gone;
}

int
mailbox_sync(struct mailbox *box, unsigned sync_flags,
    const struct mailbox_sync_ops *ops, void *ctx, const char **error_r)
{
	static const struct mailbox_sync_ops none;
	uint32_t i, o, recent;
	int ret;

	if (ops == NULL)
		ops = &none;
	cache_flush(box);
	watch_drain(box);
	ret = sync_state(box, error_r);
	if (ret < 0 && folder_gone(box)) {
		*error_r = "Mailbox was deleted";
		return MAILBOX_ERR_NONEXISTENT;
	}
	if (ret < 0)
		return ret;
	if ((sync_flags & MAILBOX_SYNC_NO_EXPUNGE) == 0) {
		for (i = box->count; i > 0; i--) {
			if (!box->recs[i - 1].m.priv_gone)
				continue;
			if (ops->expunged != NULL)
				ops->expunged(ctx, i, box->recs[i - 1].m.uid);
		}
		for (i = o = 0; i < box->count; i++) {
			if (box->recs[i].m.priv_gone) {
				if ((box->recs[i].m.flags & MAILBOX_F_RECENT) !=
				    0)
					box->recent--;
				vname_drop(box, &box->recs[i]);
				continue;
			}
			box->recs[o++] = box->recs[i];
		}
		box->count = o;
	}
	for (i = 0; i < box->count; i++) {
		if (!box->recs[i].m.priv_changed)
			continue;
		box->recs[i].m.priv_changed = 0;
		if (!box->recs[i].m.priv_gone && ops->changed != NULL)
			ops->changed(ctx, i + 1);
	}
	if (box->kw_changed) {
		box->kw_changed = 0;
		if (ops->keywords != NULL)
			ops->keywords(ctx);
	}
	if (box->npend > 0) {
		recent = merge_pending(box);
		(void)recent;
		if (ops->exists != NULL)
			ops->exists(ctx, box->count, box->recent);
	}
	moved_free(box);
	if (box->scanned) {
		box->scanned = 0;
#ifdef __GLIBC__
		/* A scan's lists (names, bases, the uid list, the log
		 * records, the pending messages: MiBs for a large folder)
		 * were freed in the middle of the heap, where glibc keeps
		 * them: a session that goes idle gives them back. */
		malloc_trim(0);
#endif
	}
	return 0;
}

/* ---- changes ---- */

static int
readonly_check(const struct mailbox *box, const char **error_r)
{
	if ((box->open_flags & MAILBOX_OPEN_READONLY) == 0)
		return 0;
	*error_r = "Mailbox is read-only";
	return MAILBOX_ERR_NOPERM;
}

int
mailbox_store(struct mailbox *box, uint32_t seq, uint8_t flags,
    uint32_t keywords, uint64_t unchangedsince, uint64_t *modseq_r,
    const char **error_r)
{
	struct mailbox_rec rec;
	struct vrec *v;
	char *from = NULL, *to = NULL, *newname, nbuf[NAME_BUF];
	const char *vn;
	struct buf out;
	int ret, known, tries;

	if (seq == 0 || seq > box->count)
		msg_panic("mailbox_store: seq %u of %u", seq, box->count);
	ret = readonly_check(box, error_r);
	if (ret < 0)
		return ret;
	flags &= MAILBOX_F_STORED;
	ret = log_lock(box, error_r);
	if (ret < 0)
		return ret;
	buf_init(&out, MAILBOX_LOG_REC_MAX * 4);
	for (tries = 0;; tries++) {
		v = &box->recs[seq - 1];
		if (v->m.priv_gone) {
			*error_r = "Message was expunged";
			ret = MAILBOX_ERR_EXPUNGED;
			goto out;
		}
		if (unchangedsince != 0 && v->m.modseq > unchangedsince) {
			*error_r = "Message was modified";
			ret = MAILBOX_ERR_MODIFIED;
			goto out;
		}
		if ((v->m.flags & MAILBOX_F_STORED) == flags &&
		    v->m.keywords == keywords) {
			*modseq_r = v->m.modseq;
			ret = 0;
			goto out;
		}
		known = dirs_known(box);
		vn = vname(box, v, nbuf);
		if (vn == NULL) {
			*error_r = "Message was expunged";
			ret = MAILBOX_ERR_EXPUNGED;
			goto out;
		}
		newname = mailbox_fname_with_flags(vn, flags, keywords);
		free(from);
		free(to);
		from = xasprintf("%s/%s/%s", box->path,
		    v->m.priv_in_new ? "new" : "cur", vn);
		to = xasprintf("%s/cur/%s", box->path, newname);
		if (rename(from, to) == 0) {
			memset(&rec, 0, sizeof(rec));
			rec.uid = v->m.uid;
			rec.flags = flags;
			rec.keywords = keywords;
			rec.modseq = box->hms + 1;
			rec.size = v->m.size;
			rec.received = v->m.received;
			rec.fname = newname;
			set_record(&out, &rec);
			dirs_record(box, &out, known, v->m.priv_in_new);
			free(newname);
			ret = log_append(box, &out, 1, error_r);
			*modseq_r = rec.modseq;
			goto out;
		}
		free(newname);
		if (errno != ENOENT || tries > 0) {
			*error_r = box_error("rename: %s", strerror(errno));
			ret = MAILBOX_ERR_TEMP;
			goto out;
		}
		/* renamed by someone else (Dovecot, pop3d): find it */
		ret = scan(box, error_r);
		if (ret < 0)
			goto out;
	}
out:
	log_unlock(box);
	free(from);
	free(to);
	buf_free(&out);
	return ret;
}

/* Drops the records of bases from dovecot-uidlist (Dovecot does on its
 * next rewrite; this keeps the file from growing with tern alone). */
static void
uidlist_drop(struct mailbox *box, char **bases, size_t n)
{
	struct maildir_uidlist_lock *lock = NULL;
	struct maildir_uidlist *ul = NULL;
	const char *error;
	size_t i;

	if (n == 0 || maildir_uidlist_lock(box->path, 0, &lock, &error) <= 0)
		return;
	if (maildir_uidlist_read(box->path, &ul, &error) > 0) {
		maildir_uidlist_remove_bases(ul, bases, n);
		(void)maildir_uidlist_write(box->path, ul, 0, &error);
	}
	maildir_uidlist_free(&ul);
	maildir_uidlist_unlock(&lock);
	for (i = 0; i < n; i++)
		free(bases[i]);
}

int
mailbox_expunge(
    struct mailbox *box, const uint32_t *uids, size_t n, const char **error_r)
{
	char **bases = NULL, *p, nbuf[NAME_BUF];
	size_t i, nb = 0;
	const char *vn;
	struct vrec *v;
	struct buf out;
	int ret, known, tries, retry, in_new;

	ret = readonly_check(box, error_r);
	if (ret < 0 || n == 0)
		return ret;
	ret = log_lock(box, error_r);
	if (ret < 0)
		return ret;
	buf_init(&out, LOG_WRITE_MAX);
	bases = xcalloc(n + 1, sizeof(*bases));
	for (tries = 0; tries < 2; tries++) {
		known = dirs_known(box);
		retry = 0;
		in_new = 0;
		buf_reset(&out);
		for (i = 0; i < n; i++) {
			v = state_find(box, uids[i]);
			if (v == NULL || (vn = vname(box, v, nbuf)) == NULL)
				continue;
			p = xasprintf("%s/%s/%s", box->path,
			    v->m.priv_in_new ? "new" : "cur", vn);
			if (unlink(p) < 0 && errno == ENOENT && tries == 0) {
				retry = 1;
				free(p);
				continue;
			}
			free(p);
			in_new |= v->m.priv_in_new;
			expunge_record(&out, v->m.uid, ++box->hms);
			bases[nb++] = base_of(vn);
		}
		dirs_record(box, &out, known, in_new);
		ret = log_append(box, &out, 0, error_r);
		if (ret < 0 || !retry)
			break;
		/* some were renamed meanwhile by another program */
		ret = scan(box, error_r);
		if (ret < 0)
			break;
	}
	log_unlock(box);
	uidlist_drop(box, bases, nb);
	free(bases);
	buf_free(&out);
	return ret;
}

int
mailbox_msg_open(
    struct mailbox *box, uint32_t seq, int *fd_r, const char **error_r)
{
	struct vrec *v;
	char *p, nbuf[NAME_BUF];
	const char *vn;
	int tries, ret;

	if (seq == 0 || seq > box->count)
		msg_panic("mailbox_msg_open: seq %u of %u", seq, box->count);
	for (tries = 0; tries < 3; tries++) {
		v = &box->recs[seq - 1];
		if (v->m.priv_gone || (vn = vname(box, v, nbuf)) == NULL)
			break;
		p = xasprintf("%s/%s/%s", box->path,
		    v->m.priv_in_new ? "new" : "cur", vn);
		/* O_NONBLOCK: a FIFO in the maildir must not hang the
		 * session (names are no longer stat'ed by the scan) */
		*fd_r = open(
		    p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		free(p);
		if (*fd_r >= 0) {
			struct stat st;

			if (fstat(*fd_r, &st) == 0 && S_ISREG(st.st_mode))
				return 0;
			close(*fd_r);
			*fd_r = -1;
			*error_r = "Message file is not a regular file";
			return MAILBOX_ERR_TEMP;
		}
		if (errno != ENOENT) {
			*error_r = box_error("open: %s", strerror(errno));
			return MAILBOX_ERR_TEMP;
		}
		/* renamed since: the log may say where, else a scan */
		if (tries == 0) {
			if (log_read(box, error_r) < 0)
				return MAILBOX_ERR_TEMP;
			continue;
		}
		ret = log_lock(box, error_r);
		if (ret < 0)
			return ret;
		ret = scan(box, error_r);
		log_unlock(box);
		if (ret < 0)
			return ret;
	}
	*error_r = "Message was expunged";
	return MAILBOX_ERR_EXPUNGED;
}

/* ---- append and copy ---- */

static unsigned long append_counter;

static char *
unique_name(void)
{
	static char host[256];
	struct timeval tv;
	size_t i;

	if (host[0] == '\0') {
		if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		for (i = 0; host[i] != '\0'; i++)
			if (host[i] == '/' || host[i] == ':')
				host[i] = '_';
	}
	gettimeofday(&tv, NULL);
	return xasprintf("%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++append_counter, host);
}

static int
quota_check(struct mailbox_user *user, uint64_t bytes, uint64_t count,
    const char **error_r)
{
	struct maildir_usage u;

	if (!user->have_quota)
		return 0;
	if (maildir_quota_usage(
	        user->root, &user->quota, time(NULL), &u, error_r) < 0)
		return MAILBOX_ERR_TEMP;
	if ((user->quota.bytes != 0 && u.bytes + bytes > user->quota.bytes) ||
	    (user->quota.count != 0 && u.count + count > user->quota.count)) {
		*error_r = "Quota exceeded (mailbox for user is full)";
		return MAILBOX_ERR_OVERQUOTA;
	}
	return 0;
}

/* Gives the new files (bases) UIDs in dovecot-uidlist, in order. */
static int
uidlist_add(struct mailbox *box, char **bases, size_t n, uint32_t *uids_r,
    const char **error_r)
{
	struct maildir_uidlist_lock *lock = NULL;
	struct maildir_uidlist *ul = NULL;
	struct maildir_uidlist_rec *rec;
	uint32_t old_uv = 0;
	const char *why;
	size_t i;
	int ret;

	if (maildir_uidlist_lock(
	        box->path, MAILDIR_UIDLIST_LOCK_WAIT_SECS, &lock, error_r) <= 0)
		return MAILBOX_ERR_TEMP;
	ret = maildir_uidlist_read(box->path, &ul, &why);
	if (ret < 0) {
		*error_r = why;
		goto fail;
	}
	if (ret == 0) {
		old_uv = ul->uidvalidity;
		maildir_uidlist_free(&ul);
		ul = maildir_uidlist_create();
	}
	/* one at a time: the caller's order, not Dovecot's name order */
	for (i = 0; i < n; i++)
		if (maildir_uidlist_add_new(ul, &bases[i], 1, error_r) < 0)
			goto fail;
	if (maildir_uidlist_write(box->path, ul, old_uv, error_r) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		rec = maildir_uidlist_lookup(ul, bases[i]);
		uids_r[i] = rec != NULL ? rec->uid : 0;
	}
	if (box->uidvalidity != 0 && ul->uidvalidity != box->uidvalidity) {
		/* recreated meanwhile: the next sync rescans */
		box->new_mtime.tv_nsec = box->cur_mtime.tv_nsec = -1;
	}
	box->uidvalidity = ul->uidvalidity;
	if (ul->next_uid > box->uidnext)
		box->uidnext = ul->next_uid;
	maildir_uidlist_unlock(&lock);
	maildir_uidlist_free(&ul);
	return 0;
fail:
	maildir_uidlist_unlock(&lock);
	maildir_uidlist_free(&ul);
	return MAILBOX_ERR_TEMP;
}

/* Writes the message into tmp/; *size_r and *wire_r. */
static int
append_write(
    int fd, const char *data, size_t len, uint64_t *size_r, uint64_t *wire_r)
{
	struct buf b;
	size_t i;
	int ret = 0;

	buf_init(&b, MSG_READ_CHUNK * 2);
	*size_r = *wire_r = 0;
	for (i = 0; i < len && ret == 0; i++) {
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			(*wire_r)++;
		if (data[i] == '\n' && i > 0 && data[i - 1] == '\r')
			(*wire_r)++;
		ret = buf_putc(&b, data[i]);
		(*size_r)++;
		(*wire_r)++;
		if (b.len >= MSG_READ_CHUNK) {
			ret = file_write_all(fd, b.data, b.len);
			buf_reset(&b);
		}
	}
	if (ret == 0 && b.len > 0)
		ret = file_write_all(fd, b.data, b.len);
	buf_free(&b);
	return ret;
}

static int
fsync_path(const char *dir)
{
	const char *error;

	return file_fsync_dir(dir, &error);
}

static int
view_append(struct mailbox *box, const char *data, size_t len, uint8_t flags,
    uint32_t keywords, int64_t received, uint32_t *uid_r, const char **error_r)
{
	char *unique, *tmp, *name, *dst, *curdir, *base;
	struct timespec ts[2];
	struct mailbox_rec rec;
	uint64_t size, wire;
	struct buf out;
	int fd, ret, known;

	unique = unique_name();
	tmp = xasprintf("%s/tmp/%s", box->path, unique);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    MAILBOX_FILE_MODE);
	if (fd < 0) {
		*error_r = box_error("create tmp: %s", strerror(errno));
		free(unique);
		free(tmp);
		return MAILBOX_ERR_TEMP;
	}
	ts[0].tv_sec = ts[1].tv_sec = received != 0 ? received : time(NULL);
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (append_write(fd, data, len, &size, &wire) < 0 ||
	    futimens(fd, ts) < 0 || fsync(fd) < 0) {
		*error_r = box_error("write tmp: %s", strerror(errno));
		close(fd);
		unlink(tmp);
		free(unique);
		free(tmp);
		return MAILBOX_ERR_TEMP;
	}
	close(fd);
	base = xasprintf("%s,S=%llu,W=%llu", unique, (unsigned long long)size,
	    (unsigned long long)wire);
	name = mailbox_fname_with_flags(base, flags, keywords);
	dst = xasprintf("%s/cur/%s", box->path, name);
	curdir = xasprintf("%s/cur", box->path);
	buf_init(&out, MAILBOX_LOG_REC_MAX * 4);
	ret = log_lock(box, error_r);
	if (ret < 0)
		goto out;
	known = dirs_known(box);
	if (file_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, dst) < 0 ||
	    fsync_path(curdir) < 0) {
		*error_r = box_error("rename into cur: %s", strerror(errno));
		ret = MAILBOX_ERR_TEMP;
		log_unlock(box);
		goto out;
	}
	ret = uidlist_add(box, &base, 1, uid_r, error_r);
	if (ret == 0) {
		memset(&rec, 0, sizeof(rec));
		rec.uid = *uid_r;
		rec.flags = flags;
		rec.keywords = keywords;
		rec.modseq = box->hms + 1;
		rec.size = wire;
		rec.received = ts[1].tv_sec;
		rec.fname = name;
		set_record(&out, &rec);
		dirs_record(box, &out, known, 0);
		ret = log_append(box, &out, 0, error_r);
	} else {
		(void)unlink(dst);
	}
	log_unlock(box);
	if (ret == 0 && box->user->have_quota)
		(void)maildir_quota_add(box->user->root, (int64_t)size, 1);
out:
	(void)unlink(tmp);
	buf_free(&out);
	free(curdir);
	free(dst);
	free(name);
	free(base);
	free(unique);
	free(tmp);
	return ret;
}

/* Keyword bits of names in box (created as needed). */
static int
keyword_bits(struct mailbox *box, const char *const *names, size_t n,
    uint32_t *bits_r, const char **error_r)
{
	size_t i;
	int idx;

	*bits_r = 0;
	for (i = 0; i < n; i++) {
		idx = mailbox_keyword_index(box, names[i], 1, error_r);
		if (idx < 0)
			return idx;
		*bits_r |= 1u << idx;
	}
	return 0;
}

int
mailbox_append(struct mailbox_user *user, const char *name, const char *data,
    size_t len, uint8_t flags, const char *const *keywords,
    size_t keyword_count, int64_t received, uint32_t *uidvalidity_r,
    uint32_t *uid_r, const char **error_r)
{
	struct mailbox *box;
	uint32_t bits;
	int ret;

	ret = mailbox_open(user, name, MAILBOX_OPEN_READONLY, &box, error_r);
	if (ret < 0)
		return ret;
	ret = quota_check(user, len, 1, error_r);
	if (ret == 0)
		ret =
		    keyword_bits(box, keywords, keyword_count, &bits, error_r);
	if (ret == 0)
		ret = view_append(box, data, len, flags & MAILBOX_F_STORED,
		    bits, received, uid_r, error_r);
	*uidvalidity_r = box->uidvalidity;
	mailbox_close(&box);
	return ret;
}

/* Links (or copies) src into dst: 0 or -1. */
static int
link_or_copy(const char *src, const char *dst)
{
	char buf[MSG_READ_CHUNK];
	struct stat st;
	int in, out;
	ssize_t n;

	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return -1;
	in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    MAILBOX_FILE_MODE);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (file_write_all(out, buf, (size_t)n) < 0) {
			n = -1;
			break;
		}
	/* The copy keeps INTERNALDATE (RFC 9051 6.4.7), as a link does. */
	if (n < 0 || fstat(in, &st) < 0 ||
	    futimens(out, (struct timespec[2]){st.st_atim, st.st_mtim}) < 0 ||
	    fsync(out) < 0) {
		close(in);
		close(out);
		unlink(dst);
		return -1;
	}
	close(in);
	close(out);
	return 0;
}

int
mailbox_copy(struct mailbox *box, const uint32_t *seqs, size_t n,
    const char *dest, uint32_t *uidvalidity_r, uint32_t *uids_r,
    const char **error_r)
{
	struct mailbox *dst = NULL;
	char **bases = NULL, **names = NULL, **paths = NULL, *src, *unique;
	char nbuf[NAME_BUF];
	const char *vn;
	const struct vrec *v;
	struct mailbox_rec rec;
	uint64_t total = 0, ssize;
	uint32_t bits, k;
	const char *kname;
	struct buf out;
	size_t i, made = 0;
	int ret, known, idx;

	ret =
	    mailbox_open(box->user, dest, MAILBOX_OPEN_READONLY, &dst, error_r);
	if (ret < 0)
		return ret;
	buf_init(&out, LOG_WRITE_MAX);
	bases = xcalloc(n + 1, sizeof(*bases));
	names = xcalloc(n + 1, sizeof(*names));
	paths = xcalloc(n + 1, sizeof(*paths));
	for (i = 0; i < n; i++)
		total += box->recs[seqs[i] - 1].m.size;
	ret = quota_check(box->user, total, n, error_r);
	if (ret < 0)
		goto out;
	for (i = 0; i < n; i++) {
		v = &box->recs[seqs[i] - 1];
		bits = 0;
		for (k = 0; k < MAILDIR_KEYWORDS_MAX; k++) {
			kname = box->kw.names[k];
			if ((v->m.keywords & (1u << k)) == 0 || kname == NULL)
				continue;
			idx = mailbox_keyword_index(dst, kname, 1, error_r);
			if (idx < 0) {
				ret = idx;
				goto out;
			}
			bits |= 1u << idx;
		}
		vn = vname(box, v, nbuf);
		if (vn == NULL) {
			*error_r = "Some of the messages were expunged";
			ret = MAILBOX_ERR_EXPUNGED;
			goto out;
		}
		unique = unique_name();
		if (!mailbox_fname_size(vn, 'S', &ssize))
			ssize = 0;
		bases[i] = ssize != 0 ? xasprintf("%s,S=%llu,W=%llu", unique,
		                            (unsigned long long)ssize,
		                            (unsigned long long)v->m.size)
		                      : xasprintf("%s,W=%llu", unique,
		                            (unsigned long long)v->m.size);
		free(unique);
		names[i] = mailbox_fname_with_flags(
		    bases[i], v->m.flags & MAILBOX_F_STORED, bits);
	}
	ret = log_lock(dst, error_r);
	if (ret < 0)
		goto out;
	known = dirs_known(dst);
	for (i = 0; i < n; i++) {
		v = &box->recs[seqs[i] - 1];
		vn = vname(box, v, nbuf);
		if (vn == NULL) {
			*error_r = "Some of the messages were expunged";
			ret = MAILBOX_ERR_EXPUNGED;
			break;
		}
		src = xasprintf("%s/%s/%s", box->path,
		    v->m.priv_in_new ? "new" : "cur", vn);
		paths[i] = xasprintf("%s/cur/%s", dst->path, names[i]);
		if (link_or_copy(src, paths[i]) < 0) {
			*error_r = errno == ENOENT
			               ? "Some of the messages were expunged"
			               : box_error("link: %s", strerror(errno));
			ret = errno == ENOENT ? MAILBOX_ERR_EXPUNGED
			                      : MAILBOX_ERR_TEMP;
			free(src);
			break;
		}
		free(src);
		made++;
	}
	if (ret == 0) {
		src = xasprintf("%s/cur", dst->path);
		if (fsync_path(src) < 0) {
			*error_r = "fsync failed";
			ret = MAILBOX_ERR_TEMP;
		}
		free(src);
	}
	if (ret == 0)
		ret = uidlist_add(dst, bases, n, uids_r, error_r);
	if (ret == 0) {
		for (i = 0; i < n; i++) {
			v = &box->recs[seqs[i] - 1];
			memset(&rec, 0, sizeof(rec));
			rec.uid = uids_r[i];
			mailbox_fname_flags(
			    names[i], &rec.flags, &rec.keywords);
			rec.modseq = ++dst->hms;
			rec.size = v->m.size;
			rec.received = v->m.received;
			rec.fname = names[i];
			set_record(&out, &rec);
		}
		dirs_record(dst, &out, known, 0);
		ret = log_append(dst, &out, 0, error_r);
	} else {
		for (i = 0; i < made; i++)
			(void)unlink(paths[i]);
	}
	log_unlock(dst);
	if (ret == 0 && box->user->have_quota)
		(void)maildir_quota_add(
		    box->user->root, (int64_t)total, (int64_t)n);
	*uidvalidity_r = dst->uidvalidity;
out:
	for (i = 0; i < n; i++) {
		free(bases[i]);
		free(names[i]);
		free(paths[i]);
	}
	free(bases);
	free(names);
	free(paths);
	buf_free(&out);
	mailbox_close(&dst);
	return ret;
}

/* ---- the cache ---- */

static int
cache_ent_cmp(const void *a, const void *b)
{
	const struct cache_ent *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	if (x->field != y->field)
		return x->field < y->field ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

static struct cache_ent *
cache_add(struct mailbox *box, uint32_t uid, uint8_t field, uint32_t len,
    uint32_t off, int keep_sorted)
{
	struct cache_ent *e;

	if (box->ncache == box->ccap) {
		box->ccap = box->ccap == 0 ? 256 : box->ccap * 2;
		box->cache = xrealloc(box->cache, box->ccap * sizeof(*box->cache));
	}
	e = &box->cache[box->ncache];
	e->uid = uid;
	e->field = field;
	e->len = len;
	e->off = off;
	e->gen = box->cache_gen++;
	/* out of order: sort once, the new record starting a new tail */
	if (keep_sorted && box->ncache > box->nsorted &&
	    cache_ent_cmp(e - 1, e) > 0) {
		qsort(box->cache, box->ncache, sizeof(*box->cache),
		    cache_ent_cmp);
		box->nsorted = box->ncache;
		e = &box->cache[box->ncache];
	}
	box->ncache++;
	return e;
}

/* 1 if cache[i] is the newest record of its (uid, field) and its message
 * is in the folder (the list sorted). */
static int
cache_live(struct mailbox *box, size_t i)
{
	const struct cache_ent *e = &box->cache[i], *next = e + 1;

	if (i + 1 < box->ncache && next->uid == e->uid &&
	    next->field == e->field)
		return 0;
	return state_find(box, e->uid) != NULL;
}

static int cache_read(
    struct mailbox *box, const struct cache_ent *e, char *dst);

/*
 * Rewrites a cache file of size bytes with its live records when they
 * are less than half of it, under the log lock and with appends held
 * off (flock): a session that still has the old file open appends to
 * it, and its records are then missing from the new one (a miss, not a
 * wrong answer).
 */
static void
cache_compact(struct mailbox *box, uint64_t size)
{
	char hdr[CACHE_FILE_HDR], rh[CACHE_HDR], *path = NULL, *tmp = NULL;
	struct cache_ent *keep = NULL;
	struct stat ps, fs;
	uint64_t live = 0, off = CACHE_FILE_HDR;
	const char *error;
	struct buf out;
	size_t i, n;
	int fd = -1, ok = 0;

	if (size < CACHE_COMPACT_MIN)
		return;
	for (i = 0; i < box->ncache; i++)
		if (cache_live(box, i))
			live += CACHE_HDR + box->cache[i].len;
	if (live * 2 > size)
		return;
	if (log_lock(box, &error) < 0)
		return;
	path = box_file(box, MAILBOX_CACHE_NAME);
	/* Another session may have rewritten it since this one opened it:
	 * then this is not the file to replace. */
	if (stat(path, &ps) < 0 || fstat(box->cache_fd, &fs) < 0 ||
	    ps.st_ino != fs.st_ino || ps.st_dev != fs.st_dev ||
	    flock(box->cache_fd, LOCK_EX) < 0)
		goto out;
	tmp = xasprintf("%s.tmp", path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    MAILBOX_FILE_MODE);
	if (fd < 0 ||
	    file_pread_all(box->cache_fd, hdr, sizeof(hdr), 0) < 0)
		goto unlock;
	buf_init(&out, CACHE_SIZE_MAX);
	keep = xmalloc((box->ncache + 1) * sizeof(*keep));
	if (buf_append(&out, hdr, sizeof(hdr)) < 0)
		goto free_out;
	for (i = n = 0; i < box->ncache; i++) {
		struct cache_ent e = box->cache[i];
		uint32_t l = e.len;

		if (!cache_live(box, i))
			continue;
		memset(rh, 0, sizeof(rh));
		memcpy(rh, &l, 4);
		memcpy(rh + 4, &e.uid, 4);
		rh[8] = (char)e.field;
		if (buf_append(&out, rh, sizeof(rh)) < 0 ||
		    buf_reserve(&out, l) < 0 ||
		    cache_read(box, &e, out.data + out.len) < 0)
			goto free_out;
		out.len += l;
		out.data[out.len] = '\0';
		off += CACHE_HDR;
		e.off = (uint32_t)off;
		off += l;
		keep[n++] = e;
		/* written as it goes: a session holds a piece, not the file */
		if (out.len >= CACHE_COMPACT_PIECE) {
			if (file_write_all(fd, out.data, out.len) < 0)
				goto free_out;
			buf_reset(&out);
		}
	}
	if (file_write_all(fd, out.data, out.len) < 0 ||
	    rename(tmp, path) < 0)
		goto free_out;
	ok = 1;
	memcpy(box->cache, keep, n * sizeof(*keep));
	box->ncache = box->nsorted = n;
free_out:
	free(keep);
	buf_free(&out);
unlock:
	(void)flock(box->cache_fd, LOCK_UN);
	if (ok) {
		close(box->cache_fd);
		box->cache_fd = fd;
		box->win_len = 0;
		fd = -1;
	} else if (tmp != NULL) {
		(void)unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
out:
	free(tmp);
	free(path);
	log_unlock(box);
}

/* Opens the cache and lists its records (headers only). */
static void
cache_load(struct mailbox *box)
{
	char hdr[CACHE_FILE_HDR], rh[CACHE_HDR];
	char *path = box_file(box, MAILBOX_CACHE_NAME), *chunk;
	uint32_t uv, len, uid;
	struct stat st;
	uint64_t off, cs = 0, cl = 0;
	size_t clen;

	box->cache_loaded = 1;
	box->cache_fd = open(
	    path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, MAILBOX_FILE_MODE);
	free(path);
	if (box->cache_fd < 0 || fstat(box->cache_fd, &st) < 0)
		return;
	if (st.st_size < CACHE_FILE_HDR ||
	    file_pread_all(box->cache_fd, hdr, sizeof(hdr), 0) < 0 ||
	    memcmp(hdr, CACHE_MAGIC, 8) != 0 ||
	    (memcpy(&uv, hdr + 8, 4), uv != box->uidvalidity)) {
		/* new, or of another UIDVALIDITY: start it again (under
		 * the log lock, so that two sessions do not both) */
		const char *error;

		if (log_lock(box, &error) < 0)
			return;
		memcpy(hdr, CACHE_MAGIC, 8);
		memcpy(hdr + 8, &box->uidvalidity, 4);
		memset(hdr + 12, 0, 4);
		if (ftruncate(box->cache_fd, 0) < 0 ||
		    file_pwrite_all(box->cache_fd, hdr, sizeof(hdr), 0) < 0) {
			close(box->cache_fd);
			box->cache_fd = -1;
		}
		log_unlock(box);
		return;
	}
	/* no more than the file: a small folder's cache costs no MiB */
	clen = (uint64_t)st.st_size < CACHE_LIST_CHUNK ? (size_t)st.st_size
	                                                : CACHE_LIST_CHUNK;
	chunk = xmalloc(clen);
	for (off = CACHE_FILE_HDR; off + CACHE_HDR <= (uint64_t)st.st_size;) {
		if (off < cs || off + CACHE_HDR > cs + cl) {
			ssize_t got;

			do
				got = pread(box->cache_fd, chunk,
				    clen, (off_t)off);
			while (got < 0 && errno == EINTR);
			cs = off;
			cl = got > 0 ? (uint64_t)got : 0;
			if (cl < CACHE_HDR)
				break;
		}
		memcpy(rh, chunk + (off - cs), CACHE_HDR);
		memcpy(&len, rh, 4);
		if (len > CACHE_REC_MAX ||
		    off + CACHE_HDR + len > (uint64_t)st.st_size ||
		    off + CACHE_HDR + len > CACHE_SIZE_MAX)
			break;
		memcpy(&uid, rh + 4, 4);
		(void)cache_add(box, uid, (uint8_t)rh[8], len,
		    (uint32_t)(off + CACHE_HDR), 0);
		off += CACHE_HDR + len;
	}
	free(chunk);
	qsort(box->cache, box->ncache, sizeof(*box->cache), cache_ent_cmp);
	box->nsorted = box->ncache;
	cache_compact(box, (uint64_t)st.st_size);
}

/* Writes the records put since the last flush, in one locked write at
 * the file's end: a torn write leaves a last record that readers skip;
 * others' records interleave whole. */
static void
cache_flush(struct mailbox *box)
{
	struct stat st;
	uint64_t base = 0;
	size_t i, n, nsorted;
	int ok = 0;

	if (box->cache_pend.len == 0)
		return;
	if (box->cache_fd >= 0 && flock(box->cache_fd, LOCK_EX) == 0) {
		if (fstat(box->cache_fd, &st) == 0 &&
		    (uint64_t)st.st_size + box->cache_pend.len <=
		        CACHE_SIZE_MAX &&
		    file_pwrite_all(box->cache_fd, box->cache_pend.data,
		        box->cache_pend.len, st.st_size) == 0) {
			base = (uint64_t)st.st_size;
			ok = 1;
		}
		(void)flock(box->cache_fd, LOCK_UN);
	}
	/* Unwritten records are dropped (order kept): a cache miss later
	 * computes them again. */
	for (i = 0, n = 0, nsorted = 0; i < box->ncache; i++) {
		struct cache_ent *e = &box->cache[i];

		if (e->off & CACHE_PEND_BIT) {
			if (!ok)
				continue;
			e->off = (uint32_t)(base + (e->off & ~CACHE_PEND_BIT));
		}
		if (i < box->nsorted)
			nsorted++;
		box->cache[n++] = *e;
	}
	box->ncache = n;
	box->nsorted = nsorted;
	/* freed, not kept: up to CACHE_PEND_FLUSH an idle session would
	 * hold for nothing (growing it again costs a few reallocs) */
	buf_free(&box->cache_pend);
}

/* The last record of (uid, field) in cache[lo, hi) (sorted), or NULL. */
static const struct cache_ent *
cache_find(const struct cache_ent *c, size_t lo, size_t hi, uint32_t uid,
    uint8_t field)
{
	size_t mid, base = lo;
	const struct cache_ent *e;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		e = &c[mid];
		if (e->uid < uid || (e->uid == uid && e->field <= field))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == base)
		return NULL;
	e = &c[lo - 1];
	return e->uid == uid && e->field == field ? e : NULL;
}

/* The newest record of the message's field, or NULL. */
static const struct cache_ent *
cache_lookup(struct mailbox *box, uint32_t seq, enum mailbox_cache_field field)
{
	const struct cache_ent *e;
	uint32_t uid;

	if (seq == 0 || seq > box->count || field >= MAILBOX_CACHE_FIELDS)
		return NULL;
	if (!box->cache_loaded)
		cache_load(box);
	if (box->cache_fd < 0 || box->ncache == 0)
		return NULL;
	uid = box->recs[seq - 1].m.uid;
	/* the tail is newer than the sorted part */
	e = cache_find(box->cache, box->nsorted, box->ncache, uid,
	    (uint8_t)field);
	if (e == NULL)
		e = cache_find(box->cache, 0, box->nsorted, uid, (uint8_t)field);
	return e;
}

/* Copies e's bytes to dst (e->len of them): 0, or -1. */
static int
cache_read(struct mailbox *box, const struct cache_ent *e, char *dst)
{
	if (e->off & CACHE_PEND_BIT) {
		memcpy(dst, box->cache_pend.data + (e->off & ~CACHE_PEND_BIT),
		    e->len);
	} else if (e->len <= CACHE_WINDOW / 2) {
		if (e->off < box->win_off ||
		    e->off + e->len > box->win_off + box->win_len) {
			ssize_t n;

			/* the file only grows (records are appended), so
			 * what a window holds stays true */
			if (box->cache_win == NULL)
				box->cache_win = xmalloc(CACHE_WINDOW);
			do
				n = pread(box->cache_fd, box->cache_win,
				    CACHE_WINDOW, (off_t)e->off);
			while (n < 0 && errno == EINTR);
			box->win_off = e->off;
			box->win_len = n > 0 ? (size_t)n : 0;
			if (box->win_len < e->len)
				return -1;
		}
		memcpy(dst, box->cache_win + (e->off - box->win_off), e->len);
	} else if (file_pread_all(box->cache_fd, dst, e->len, (off_t)e->off) <
	           0) {
		return -1;
	}
	return 0;
}

int
mailbox_cache_get(struct mailbox *box, uint32_t seq,
    enum mailbox_cache_field field, const char **data_r, size_t *len_r)
{
	const struct cache_ent *e = cache_lookup(box, seq, field);

	if (e == NULL)
		return 0;
	buf_reset(&box->cache_buf);
	if (buf_append(&box->cache_buf, "", 0) < 0)
		return 0;
	if (box->cache_buf.cap < (size_t)e->len + 1) {
		box->cache_buf.data =
		    xrealloc(box->cache_buf.data, (size_t)e->len + 1);
		box->cache_buf.cap = (size_t)e->len + 1;
	}
	if (cache_read(box, e, box->cache_buf.data) < 0)
		return 0;
	box->cache_buf.data[e->len] = '\0';
	*data_r = box->cache_buf.data;
	*len_r = e->len;
	return 1;
}

int64_t
mailbox_msg_received(struct mailbox *box, uint32_t seq)
{
	const struct cache_ent *e;
	const char *error;
	struct stat st;
	int64_t t;
	int fd;

	if (seq == 0 || seq > box->count)
		msg_panic("mailbox_msg_received: seq %u of %u", seq, box->count);
	if (box->recs[seq - 1].m.received != MAILBOX_RECEIVED_UNKNOWN)
		return box->recs[seq - 1].m.received;
	/* Not through cache_buf: a caller may hold another field's bytes. */
	e = cache_lookup(box, seq, MAILBOX_CACHE_RECEIVED);
	if (e != NULL && e->len == sizeof(t) && cache_read(box, e, (char *)&t) == 0 &&
	    t != MAILBOX_RECEIVED_UNKNOWN) {
		box->recs[seq - 1].m.received = t;
		return t;
	}
	if (mailbox_msg_open(box, seq, &fd, &error) != 0)
		return 0;
	t = fstat(fd, &st) == 0 ? (int64_t)st.st_mtim.tv_sec : 0;
	close(fd);
	if (t == 0)
		return 0;
	box->recs[seq - 1].m.received = t;
	mailbox_cache_put(box, seq, MAILBOX_CACHE_RECEIVED, (const char *)&t,
	    sizeof(t));
	return t;
}

void
mailbox_cache_put(struct mailbox *box, uint32_t seq,
    enum mailbox_cache_field field, const char *data, size_t len)
{
	char rh[CACHE_HDR];
	uint32_t uid, l = (uint32_t)len;
	size_t at;

	if (seq == 0 || seq > box->count || field >= MAILBOX_CACHE_FIELDS ||
	    len > CACHE_REC_MAX)
		return;
	if (!box->cache_loaded)
		cache_load(box);
	if (box->cache_fd < 0)
		return;
	if (box->cache_pend.len + CACHE_HDR + len > CACHE_PEND_FLUSH)
		cache_flush(box);
	uid = box->recs[seq - 1].m.uid;
	memset(rh, 0, sizeof(rh));
	memcpy(rh, &l, 4);
	memcpy(rh + 4, &uid, 4);
	rh[8] = (char)field;
	at = box->cache_pend.len;
	if (buf_append(&box->cache_pend, rh, sizeof(rh)) < 0 ||
	    buf_append(&box->cache_pend, data, len) < 0) {
		box->cache_pend.len = at;
		return;
	}
	(void)cache_add(box, uid, (uint8_t)field, l,
	    CACHE_PEND_BIT | (uint32_t)(at + CACHE_HDR), 1);
}

/* ---- IDLE ---- */

int
mailbox_watch_fd(struct mailbox *box)
{
	char *p;

	if (box->watch_fd >= 0)
		return box->watch_fd;
	box->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (box->watch_fd < 0)
		return -1;
	p = xasprintf("%s/new", box->path);
	(void)inotify_add_watch(box->watch_fd, p,
	    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM);
	free(p);
	p = xasprintf("%s/cur", box->path);
	(void)inotify_add_watch(box->watch_fd, p,
	    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM);
	free(p);
	p = box_file(box, MAILBOX_LOG_NAME);
	box->log_wd = inotify_add_watch(box->watch_fd, p, IN_MODIFY);
	free(p);
	return box->watch_fd;
}
