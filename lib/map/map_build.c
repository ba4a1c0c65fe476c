/* SPDX-License-Identifier: MIT */
/*
 * Building hash: tables from their text source, postmap's job done the
 * tern way: the new table is written beside the old under a unique name
 * (mkostemp, O_EXCL), synced, and renamed over it, then the directory is
 * synced (lib/base/file.h's durability rule). Readers never see half a
 * table, and a failed build leaves the old one in place. Postfix's
 * postmap.c and mkmap_db.c are the model for the format (NUL-terminated
 * keys and values) and the ownership rule; with MAP_BUILD_ALIASES the
 * source is in aliases(5) syntax instead ("name: value", newaliases'
 * job, Postfix's mkmap_alias / tok822 rules simplified: a name is a
 * word or a quoted string). No RFCs.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "map/map_build.h"
#include "map/map_int.h"

/* setuid, setgid and sticky mean nothing on a table: never copied. */
#define BUILD_PERM_BITS 0777

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

/*
 * Puts every record of the source text into db. -1 with *error_r
 * allocated ("source, line N: ...").
 */
static int
build_put_all(DB *db, const char *source, const char *text, size_t len,
    int flags, char **error_r)
{
	struct map_lines lines;
	char *key, *value;
	size_t klen;
	DBT k, v;
	int ret;

	map_lines_init(&lines, source, text, len);
	while ((ret = map_lines_next(&lines, error_r)) > 0) {
		if (flags & MAP_BUILD_ALIASES) {
			if (map_alias_line(lines.buf.data, &key, &value) < 0) {
				*error_r = map_line_error(source, lines.line,
				    "expected \"name: value\" (a name, "
				    "quoted if it has blanks, then a colon)");
				ret = -1;
				break;
			}
			klen = strlen(key);
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
		}
		if (!(flags & MAP_BUILD_NOFOLD))
			str_lower(key);
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.data = key;
		k.size = (u_int32_t)(klen + 1);
		v.data = value;
		v.size = (u_int32_t)(strlen(value) + 1);
		ret = db->put(db, NULL, &k, &v, DB_NOOVERWRITE);
		if (ret == DB_KEYEXIST) {
			msg_warn("%s, line %u: duplicate key \"%s\": keeping "
			         "the first one",
			    source, lines.line, key);
			continue;
		}
		if (ret != 0) {
			*error_r = map_line_error(source, lines.line,
			    "berkeley db put: %s", db_strerror(ret));
			ret = -1;
			break;
		}
	}
	map_lines_free(&lines);
	return ret < 0 ? -1 : 0;
}

/*
 * Gives the new table source's owner (when root) and permission bits,
 * on the descriptor: the name could be swapped, the descriptor cannot.
 * Done before anything is written, so secrets are never readable by
 * more than the source allows.
 */
static int
build_fix_owner_mode(
    int fd, const struct stat *src, const char *tmp, char **error_r)
{
	if (geteuid() == 0 &&
	    (src->st_uid != geteuid() || src->st_gid != getegid()) &&
	    fchown(fd, src->st_uid, src->st_gid) < 0) {
		*error_r = xasprintf("fchown %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, src->st_mode & BUILD_PERM_BITS) < 0) {
		*error_r = xasprintf("fchmod %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

int
map_build_aliases(const char *source, int flags, char **error_r)
{
	return map_build_hash(source, flags | MAP_BUILD_ALIASES, error_r);
}

int
map_build_hash(const char *source, int flags, char **error_r)
{
	char dir[PATH_MAX];
	char *path = NULL, *tmp = NULL;
	const char *ferr;
	struct buf text;
	struct stat st;
	DB *db = NULL;
	int fd = -1, ret;

	buf_init(&text, MAP_BUILD_SOURCE_MAX);
	if (map_file_read(source, MAP_BUILD_SOURCE_MAX, &text, &st, error_r) <
	    0)
		goto fail;
	path = xasprintf("%s.db", source);
	tmp = xasprintf("%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if (build_fix_owner_mode(fd, &st, tmp, error_r) < 0)
		goto fail;
	/*
	 * Berkeley DB opens by name and takes the empty file mkostemp made
	 * as a new database; fd keeps the inode for fsync.
	 */
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		*error_r = xasprintf("db_create: %s", db_strerror(ret));
		goto fail;
	}
	db->set_errcall(db, build_db_errcall);
	if ((ret = db->open(db, NULL, tmp, NULL, DB_HASH, DB_CREATE,
	         st.st_mode & BUILD_PERM_BITS)) != 0) {
		*error_r = xasprintf("open %s: %s", tmp, db_strerror(ret));
		goto fail;
	}
	if (build_put_all(
	        db, source, buf_cstr(&text), text.len, flags, error_r) < 0)
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
	if (rename(tmp, path) < 0) {
		*error_r = xasprintf(
		    "rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	free(tmp);
	tmp = NULL;
	file_dirname(path, dir, sizeof(dir));
	if (file_fsync_dir(dir, &ferr) < 0) {
		/* The table is in place; only its durability is in doubt. */
		*error_r = xasprintf("%s: %s", path, ferr);
		goto fail;
	}
	free(path);
	buf_free(&text);
	return 0;
fail:
	if (db != NULL)
		(void)db->close(db, 0);
	if (fd >= 0)
		close(fd);
	if (tmp != NULL && unlink(tmp) < 0 && errno != ENOENT)
		msg_warn("unlink %s: %m", tmp);
	free(tmp);
	free(path);
	buf_free(&text);
	return -1;
}
