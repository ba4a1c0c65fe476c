/* SPDX-License-Identifier: MIT */
/*
 * Building and editing hash: tables, postmap's job done the tern way:
 * every change, a full build from the text source or an edit of a few
 * keys (postmap -i, -d), is written into a new file beside the old under
 * a unique name (mkostemp, O_EXCL), synced, and renamed over it, then the
 * directory is synced (lib/base/file.h's durability rule). Postfix edits
 * the .db in place under an flock that its readers also take; tern's
 * readers keep the table open without locks and reload when the file's
 * identity changes, so only a rename keeps them from ever seeing half an
 * update. Edits copy the current file first, under an exclusive flock on
 * it, so two edits of one table never lose each other's changes (the
 * lock is re-taken when the file was replaced while waiting). Postfix's
 * postmap.c, mkmap_db.c and dict_db.c are the model for the format
 * (NUL-terminated keys and values), duplicates, -F and the ownership
 * rule; with MAP_BUILD_ALIASES the source is in aliases(5) syntax
 * instead ("name: value", newaliases' job, Postfix's mkmap_alias /
 * tok822 rules simplified: a name is a word or a quoted string). RFC 4648
 * (base64, for -F).
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "map/map_build.h"
#include "map/map_int.h"

/* setuid, setgid and sticky mean nothing on a table: never copied. */
#define BUILD_PERM_BITS    0777
/* How often a waiting edit tries the lock again. */
#define BUILD_LOCK_POLL_MS 10
#define BUILD_NS_PER_MS    1000000
#define BUILD_MS_PER_S     1000
/* Creations of a missing table that lost a race before an edit gives up. */
#define BUILD_CREATE_TRIES 5
#define BUILD_COPY_CHUNK   65536
/* -F: the separators of a list of file names (Postfix's CHARS_COMMA_SP). */
#define BUILD_FILE_SEPS    ", \t\r\n"

/* The permission bits and owner a new table file gets. */
struct build_perm {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int chown; /* give it uid and gid (only root can) */
};

/* Writes the records of a change into the new table file. */
typedef int build_fill_fn(DB *db, void *ctx, char **error_r);

static void
build_db_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
	(void)env;
	(void)prefix;
	msg_debug("berkeley db: %s", msg);
}

int
map_alias_line(char *line, char **key_r, char **value_r)
{
	char *p = line, *key, *out;

	if (*p == '"') {
		/* A quoted name may hold blanks and colons; \ escapes. */
		key = out = ++p;
		while (*p != '\0' && *p != '"') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			*out++ = *p++;
		}
		if (*p != '"')
			return -1;
		p++;
		*out = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':' || out == key)
			return -1;
		p++;
	} else {
		key = p;
		p += strcspn(p, ": \t");
		out = p;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':' || out == key)
			return -1;
		*out = '\0';
		p++;
	}
	*key_r = key;
	*value_r = str_trim(p);
	return 0;
}

static int64_t
build_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		msg_panic("clock_gettime(CLOCK_MONOTONIC): %m");
	return (int64_t)ts.tv_sec * BUILD_MS_PER_S +
	       ts.tv_nsec / BUILD_NS_PER_MS;
}

/*
 * -F: the contents of the files named in list, joined by a newline,
 * base64-encoded into out. -1 with *error_r allocated.
 */
static int
build_value_files(const char *list, struct buf *out, char **error_r)
{
	char *copy = xstrdup(list), *p = copy, *name;
	struct buf content, one;
	struct stat st;
	size_t n;
	int ret = -1;

	buf_init(&content, MAP_BUILD_FILES_MAX);
	buf_init(&one, MAP_BUILD_FILES_MAX);
	for (;;) {
		p += strspn(p, BUILD_FILE_SEPS);
		if (*p == '\0')
			break;
		name = p;
		n = strcspn(p, BUILD_FILE_SEPS);
		p += n;
		if (*p != '\0')
			*p++ = '\0';
		if (map_file_read(
		        name, MAP_BUILD_FILES_MAX, &one, &st, error_r) < 0)
			goto done;
		if ((content.len > 0 && buf_putc(&content, '\n') < 0) ||
		    buf_append(&content, one.data, one.len) < 0) {
			*error_r = xasprintf("the files of \"%s\" hold more "
			                     "than %d bytes",
			    list, MAP_BUILD_FILES_MAX);
			goto done;
		}
	}
	buf_reset(out);
	if (base64_encode(content.data, content.len, out) < 0) {
		*error_r = xasprintf("\"%s\": encoded value too long", list);
		goto done;
	}
	ret = 0;
done:
	buf_free(&one);
	buf_free(&content);
	free(copy);
	return ret;
}

/*
 * Stores one record as flags say (folding, NUL, duplicates). 0 (stored or
 * a duplicate left alone), -1 with *error_r allocated.
 */
static int
build_put(DB *db, char *key, const char *value, int flags, const char *origin,
    unsigned line, char **error_r)
{
	size_t nul = (flags & MAP_BUILD_NONUL) ? 0 : 1;
	DBT k, v;
	int ret;

	if (!(flags & MAP_BUILD_NOFOLD))
		str_lower(key);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = key;
	k.size = (u_int32_t)(strlen(key) + nul);
	v.data = (void *)value;
	v.size = (u_int32_t)(strlen(value) + nul);
	ret = db->put(db, NULL, &k, &v,
	    (flags & MAP_BUILD_DUP_REPLACE) ? 0 : DB_NOOVERWRITE);
	if (ret == DB_KEYEXIST) {
		if (!(flags & MAP_BUILD_DUP_IGNORE))
			msg_warn("%s, line %u: duplicate key \"%s\": keeping "
			         "the first one",
			    origin, line, key);
		return 0;
	}
	if (ret != 0) {
		*error_r = map_line_error(
		    origin, line, "berkeley db put: %s", db_strerror(ret));
		return -1;
	}
	return 0;
}

/* The records of a source text, for build_put_all. */
struct build_text {
	const char *origin;
	const char *text;
	size_t len;
	int flags;
};

/*
 * Puts every record of the source text into db. -1 with *error_r
 * allocated ("source, line N: ...").
 */
static int
build_put_all(DB *db, void *ctx, char **error_r)
{
	const struct build_text *t = ctx;
	const char *source = t->origin;
	int flags = t->flags;
	struct map_lines lines;
	struct buf files;
	char *key, *value, *ferr;
	size_t klen;
	int ret;

	buf_init(&files, BASE64_ENCODED_LEN(MAP_BUILD_FILES_MAX) + 1);
	map_lines_init(&lines, source, t->text, t->len);
	while ((ret = map_lines_next(&lines, error_r)) > 0) {
		/* Postfix with smtputf8_enable: such lines are skipped. */
		if (!(flags & MAP_BUILD_NOUTF8) &&
		    !str_utf8_valid(lines.buf.data, lines.buf.len)) {
			msg_warn("%s, line %u: not UTF-8: ignoring this line "
			         "(-u accepts it)",
			    source, lines.line);
			continue;
		}
		if (flags & MAP_BUILD_ALIASES) {
			if (map_alias_line(lines.buf.data, &key, &value) < 0) {
				*error_r = map_line_error(source, lines.line,
				    "expected \"name: value\" (a name, "
				    "quoted if it has blanks, then a colon)");
				ret = -1;
				break;
			}
		} else {
			key = lines.buf.data;
			klen = strcspn(key, " \t");
			value = key + klen;
			if (*value != '\0')
				*value++ = '\0';
			value = str_trim(value);
			if (*value == '\0') {
				*error_r = map_line_error(source, lines.line,
				    "expected \"key whitespace value\", found "
				    "no value after \"%s\"",
				    key);
				ret = -1;
				break;
			}
			if (key[klen - 1] == ':')
				msg_warn("%s, line %u: record is in \"key: "
				         "value\" format; is this an alias "
				         "file? (-a reads one)",
				    source, lines.line);
		}
		if (flags & MAP_BUILD_VALUE_FILES) {
			/* Postfix skips such an entry and goes on. */
			if (build_value_files(value, &files, &ferr) < 0) {
				msg_warn("%s, line %u: %s: skipping this entry",
				    source, lines.line, ferr);
				free(ferr);
				continue;
			}
			value = (char *)buf_cstr(&files);
		}
		if ((ret = build_put(db, key, value, flags, source, lines.line,
		         error_r)) < 0)
			break;
	}
	map_lines_free(&lines);
	buf_free(&files);
	return ret < 0 ? -1 : 0;
}

/*
 * Gives the new table its owner (when root) and permission bits, on the
 * descriptor: the name could be swapped, the descriptor cannot. Done
 * before anything is written, so secrets are never readable by more
 * than the source allows.
 */
static int
build_fix_owner_mode(
    int fd, const struct build_perm *perm, const char *tmp, char **error_r)
{
	if (perm->chown && geteuid() == 0 &&
	    (perm->uid != geteuid() || perm->gid != getegid()) &&
	    fchown(fd, perm->uid, perm->gid) < 0) {
		*error_r = xasprintf("fchown %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, perm->mode & BUILD_PERM_BITS) < 0) {
		*error_r = xasprintf("fchmod %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Locks the current file path for an edit. 1 with *fd_r open and locked
 * and *st_r its status; 0 when there is no such file; -1 with *error_r
 * allocated. A file replaced while we waited is unlocked again and the
 * new one is taken: the lock must be on the file that the edit copies.
 */
static int
build_lock(const char *path, int *fd_r, struct stat *st_r, char **error_r)
{
	const struct timespec poll = {0, BUILD_LOCK_POLL_MS * BUILD_NS_PER_MS};
	int64_t deadline = build_now_ms() + MAP_BUILD_LOCK_WAIT_MS;
	struct stat now;
	int fd;

	for (;;) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			return 0;
		if (fd < 0) {
			*error_r =
			    xasprintf("open %s: %s", path, strerror(errno));
			return -1;
		}
		if (fstat(fd, st_r) < 0 || !S_ISREG(st_r->st_mode)) {
			*error_r = xasprintf("%s: not a regular file", path);
			close(fd);
			return -1;
		}
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR) {
				*error_r = xasprintf(
				    "flock %s: %s", path, strerror(errno));
				close(fd);
				return -1;
			}
			if (build_now_ms() >= deadline) {
				*error_r = xasprintf("%s: still locked by "
				                     "another edit after %d ms",
				    path, MAP_BUILD_LOCK_WAIT_MS);
				close(fd);
				return -1;
			}
			nanosleep(&poll, NULL);
		}
		if (stat(path, &now) == 0 && now.st_dev == st_r->st_dev &&
		    now.st_ino == st_r->st_ino) {
			*fd_r = fd;
			return 1;
		}
		close(fd);
		if (build_now_ms() >= deadline) {
			*error_r = xasprintf("%s: replaced again and again "
			                     "for %d ms",
			    path, MAP_BUILD_LOCK_WAIT_MS);
			return -1;
		}
	}
}

/* Copies the locked table (size bytes) into the new file. */
static int
build_copy(int from, int to, off_t size, const char *path, char **error_r)
{
	char chunk[BUILD_COPY_CHUNK];
	off_t off = 0;
	ssize_t n;

	if (size > MAP_BUILD_DB_MAX) {
		*error_r = xasprintf(
		    "%s: larger than %ld bytes", path, MAP_BUILD_DB_MAX);
		return -1;
	}
	while (off < size) {
		n = pread(from, chunk, sizeof(chunk), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = xasprintf("read %s: %s", path,
			    n < 0 ? strerror(errno) : "file shrank");
			return -1;
		}
		if (file_write_all(to, chunk, (size_t)n) < 0) {
			*error_r = xasprintf(
			    "write copy of %s: %s", path, strerror(errno));
			return -1;
		}
		off += n;
	}
	return 0;
}

/*
 * Makes a new version of the table file path and puts it in place. A
 * full build (src != NULL) starts empty with src's permissions; an edit
 * starts from a copy of the current file and keeps its owner and mode,
 * or from nothing when there is none and create is set. The result is
 * renamed over the file the edit locked; a created table is linked in,
 * so a table another process created meanwhile is edited instead of
 * overwritten.
 */
static int
build_table(const char *path, const struct build_perm *src, int create,
    build_fill_fn *fill, void *ctx, char **error_r)
{
	char dir[PATH_MAX];
	struct build_perm perm;
	struct stat cur;
	const char *ferr;
	char *tmp = NULL;
	int fd = -1, lockfd = -1, locked = 0, tries = 0, ret;
	DB *db = NULL;

again:
	if (src == NULL || (lstat(path, &cur) == 0 && S_ISREG(cur.st_mode))) {
		if ((locked = build_lock(path, &lockfd, &cur, error_r)) < 0)
			goto fail;
		if (src == NULL && !locked && !create) {
			*error_r =
			    xasprintf("open %s: %s", path, strerror(ENOENT));
			goto fail;
		}
	}
	if (src != NULL)
		perm = *src;
	else if (locked) {
		perm.mode = cur.st_mode & BUILD_PERM_BITS;
		perm.uid = cur.st_uid;
		perm.gid = cur.st_gid;
		perm.chown = 1;
	} else {
		memset(&perm, 0, sizeof(perm));
		perm.mode = MAP_BUILD_MODE;
	}
	tmp = xasprintf("%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if (build_fix_owner_mode(fd, &perm, tmp, error_r) < 0)
		goto fail;
	if (src == NULL && locked &&
	    build_copy(lockfd, fd, cur.st_size, path, error_r) < 0)
		goto fail;
	/*
	 * Berkeley DB opens by name and takes the empty file mkostemp made
	 * as a new database (and the copy as the old one); fd keeps the
	 * inode for fsync.
	 */
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		*error_r = xasprintf("db_create: %s", db_strerror(ret));
		goto fail;
	}
	db->set_errcall(db, build_db_errcall);
	if ((ret = db->open(db, NULL, tmp, NULL, DB_HASH, DB_CREATE,
	         perm.mode & BUILD_PERM_BITS)) != 0) {
		*error_r = xasprintf("open %s: %s", tmp, db_strerror(ret));
		goto fail;
	}
	if (fill(db, ctx, error_r) < 0)
		goto fail;
	if ((ret = db->sync(db, 0)) != 0) {
		*error_r = xasprintf("sync %s: %s", tmp, db_strerror(ret));
		goto fail;
	}
	ret = db->close(db, 0);
	db = NULL;
	if (ret != 0) {
		*error_r = xasprintf("close %s: %s", tmp, db_strerror(ret));
		goto fail;
	}
	if (fsync(fd) < 0) {
		*error_r = xasprintf("fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	ret = close(fd);
	fd = -1;
	if (ret < 0) {
		*error_r = xasprintf("close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (src == NULL && !locked) {
		if (link(tmp, path) < 0) {
			if (errno == EEXIST && ++tries < BUILD_CREATE_TRIES) {
				/* Created meanwhile: edit that one. */
				(void)unlink(tmp);
				free(tmp);
				tmp = NULL;
				goto again;
			}
			*error_r = xasprintf(
			    "link %s to %s: %s", tmp, path, strerror(errno));
			goto fail;
		}
		if (unlink(tmp) < 0)
			msg_warn("unlink %s: %m", tmp);
	} else if (rename(tmp, path) < 0) {
		*error_r = xasprintf(
		    "rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	free(tmp);
	tmp = NULL;
	if (lockfd >= 0)
		close(lockfd);
	lockfd = -1;
	file_dirname(path, dir, sizeof(dir));
	if (file_fsync_dir(dir, &ferr) < 0) {
		/* The table is in place; only its durability is in doubt. */
		*error_r = xasprintf("%s: %s", path, ferr);
		return -1;
	}
	return 0;
fail:
	if (db != NULL)
		(void)db->close(db, 0);
	if (fd >= 0)
		close(fd);
	if (lockfd >= 0)
		close(lockfd);
	if (tmp != NULL && unlink(tmp) < 0 && errno != ENOENT)
		msg_warn("unlink %s: %m", tmp);
	free(tmp);
	return -1;
}

int
map_build_aliases(const char *source, int flags, char **error_r)
{
	return map_build_hash(source, flags | MAP_BUILD_ALIASES, error_r);
}

int
map_build_hash(const char *source, int flags, char **error_r)
{
	struct build_perm perm;
	struct build_text t;
	struct buf text;
	struct stat st;
	char *path;
	int ret;

	buf_init(&text, MAP_BUILD_SOURCE_MAX);
	if (map_file_read(source, MAP_BUILD_SOURCE_MAX, &text, &st, error_r) <
	    0) {
		buf_free(&text);
		return -1;
	}
	memset(&perm, 0, sizeof(perm));
	perm.mode = (flags & MAP_BUILD_NOPERM) ? MAP_BUILD_MODE
	                                       : st.st_mode & BUILD_PERM_BITS;
	perm.uid = st.st_uid;
	perm.gid = st.st_gid;
	perm.chown = 1;
	t.origin = source;
	t.text = buf_cstr(&text);
	t.len = text.len;
	t.flags = flags;
	path = xasprintf("%s.db", source);
	ret = build_table(path, &perm, 0, build_put_all, &t, error_r);
	free(path);
	buf_free(&text);
	return ret;
}

int
map_hash_update(const char *name, const char *text, size_t len,
    const char *origin, int flags, char **error_r)
{
	struct build_text t = {origin, text, len, flags};
	char *path = xasprintf("%s.db", name);
	int ret;

	ret = build_table(path, NULL, 1, build_put_all, &t, error_r);
	free(path);
	return ret;
}

/* The keys of map_hash_delete. */
struct build_del {
	char *const *keys;
	size_t count;
	int flags;
	size_t deleted;
};

static int
build_del_all(DB *db, void *ctx, char **error_r)
{
	struct build_del *d = ctx;
	size_t i, len;
	char *key;
	DBT k;
	int ret;

	d->deleted = 0;
	for (i = 0; i < d->count; i++) {
		key = xstrdup(d->keys[i]);
		if (!(d->flags & MAP_BUILD_NOFOLD))
			str_lower(key);
		len = strlen(key);
		memset(&k, 0, sizeof(k));
		k.data = key;
		ret = DB_NOTFOUND;
		if (!(d->flags & MAP_BUILD_NONUL)) {
			k.size = (u_int32_t)(len + 1);
			ret = db->del(db, NULL, &k, 0);
		}
		if (ret == DB_NOTFOUND && !(d->flags & MAP_BUILD_NUL) &&
		    len > 0) {
			k.size = (u_int32_t)len;
			ret = db->del(db, NULL, &k, 0);
		}
		free(key);
		if (ret == 0)
			d->deleted++;
		else if (ret != DB_NOTFOUND) {
			*error_r = xasprintf("berkeley db delete \"%s\": %s",
			    d->keys[i], db_strerror(ret));
			return -1;
		}
	}
	return 0;
}

int
map_hash_delete(const char *name, char *const *keys, size_t count, int flags,
    size_t *deleted_r, char **error_r)
{
	struct build_del d = {keys, count, flags, 0};
	char *path = xasprintf("%s.db", name);
	int ret;

	*deleted_r = 0;
	ret = build_table(path, NULL, 0, build_del_all, &d, error_r);
	if (ret == 0)
		*deleted_r = d.deleted;
	free(path);
	return ret;
}
