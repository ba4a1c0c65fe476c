/* SPDX-License-Identifier: MIT */
/*
 * hash: tables: Berkeley DB hash files (name.db) as Postfix's postmap
 * writes them, keys and values with a trailing NUL; lookups try the key
 * with its NUL and then without, so files written by other tools that
 * leave the NUL out work as well (Postfix's dict_db.c does the same).
 * The key is folded to lower case first, as ternmap folds the keys it
 * stores. Read only: ternmap replaces the file by rename, and map.c
 * reopens it when it notices. No RFCs.
 */
#include <db.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/str.h"
#include "map/map_build.h"
#include "map/map_int.h"

/*
 * Berkeley DB prints its own diagnostics on stderr unless told
 * otherwise; the error codes it returns say enough, so they go to debug.
 */
static void
hash_db_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
	(void)env;
	(void)prefix;
	msg_debug("berkeley db: %s", msg);
}

/* Opens path read-only. NULL with *error_r allocated. */
static DB *
hash_db_open(const char *path, char **error_r)
{
	DB *db;
	int ret;

	if ((ret = db_create(&db, NULL, 0)) != 0) {
		*error_r = xasprintf("db_create: %s", db_strerror(ret));
		return NULL;
	}
	db->set_errcall(db, hash_db_errcall);
	if ((ret = db->open(db, NULL, path, NULL, DB_HASH, DB_RDONLY, 0)) !=
	    0) {
		*error_r = xasprintf("open %s: %s", path, db_strerror(ret));
		(void)db->close(db, 0);
		return NULL;
	}
	return db;
}

static void *
hash_load(const char *name, struct map_file_id *id_r, char **error_r)
{
	char *path = xasprintf("%s.db", name);
	struct stat st;
	DB *db;

	/*
	 * Stat before open: if the file is replaced in between, the
	 * identity is the older one and the next check reloads.
	 */
	if (stat(path, &st) < 0) {
		*error_r = xasprintf("stat %s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	map_file_id_set(id_r, &st);
	db = hash_db_open(path, error_r);
	free(path);
	return db;
}

static void
hash_free(void *data)
{
	DB *db = data;

	(void)db->close(db, 0);
}

static int
hash_lookup(void *data, const char *key, struct buf *value, char *error)
{
	char *folded = xstrdup(key);
	size_t len = strlen(key);
	DB *db = data;
	DBT k, v;
	int ret;

	str_lower(folded);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = folded;
	k.size = (u_int32_t)(len + 1);
	ret = db->get(db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND && len > 0) {
		k.size = (u_int32_t)len;
		memset(&v, 0, sizeof(v));
		ret = db->get(db, NULL, &k, &v, 0);
	}
	free(folded);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0) {
		snprintf(error, MAP_ERROR_MAX, "berkeley db get: %s",
		    db_strerror(ret));
		return -1;
	}
	if (v.size > 0 && ((const char *)v.data)[v.size - 1] == '\0')
		v.size--;
	if (buf_append(value, v.data, v.size) < 0) {
		snprintf(error, MAP_ERROR_MAX, "value longer than %d bytes",
		    MAP_VALUE_MAX);
		return -1;
	}
	return 1;
}

const struct map_ops map_hash_ops = {
    .type = "hash",
    .file = 1,
    .suffix = ".db",
    .load = hash_load,
    .lookup = hash_lookup,
    .free = hash_free,
};

/* A DBT as a C string without its trailing NUL (allocated). */
static char *
hash_dbt_str(const DBT *d)
{
	size_t len = d->size;

	if (len > 0 && ((const char *)d->data)[len - 1] == '\0')
		len--;
	return xstrndup(d->data, len);
}

int
map_hash_dump(const char *name, map_dump_cb *cb, void *ctx, char **error_r)
{
	char *path = xasprintf("%s.db", name), *key, *val;
	DBC *cur = NULL;
	DBT k, v;
	DB *db;
	int ret, stop = 0;

	if ((db = hash_db_open(path, error_r)) == NULL) {
		free(path);
		return -1;
	}
	if ((ret = db->cursor(db, NULL, &cur, 0)) != 0) {
		*error_r = xasprintf("%s: cursor: %s", path, db_strerror(ret));
		goto fail;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	while (!stop && (ret = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
		key = hash_dbt_str(&k);
		val = hash_dbt_str(&v);
		stop = cb(key, val, ctx);
		free(key);
		free(val);
	}
	if (!stop && ret != DB_NOTFOUND) {
		*error_r = xasprintf("%s: read: %s", path, db_strerror(ret));
		goto fail;
	}
	(void)cur->close(cur);
	(void)db->close(db, 0);
	free(path);
	return 0;
fail:
	if (cur != NULL)
		(void)cur->close(cur);
	(void)db->close(db, 0);
	free(path);
	return -1;
}

int
map_hash_query(const char *name, const char *key, int flags, char **value_r,
    char **error_r)
{
	char *path = xasprintf("%s.db", name), *k = xstrdup(key);
	size_t len = strlen(key);
	DBT dk, dv;
	DB *db;
	int ret = DB_NOTFOUND;

	if ((db = hash_db_open(path, error_r)) == NULL) {
		free(k);
		free(path);
		return -1;
	}
	if (!(flags & MAP_BUILD_NOFOLD))
		str_lower(k);
	memset(&dk, 0, sizeof(dk));
	memset(&dv, 0, sizeof(dv));
	dk.data = k;
	if (!(flags & MAP_BUILD_NONUL)) {
		dk.size = (u_int32_t)(len + 1);
		ret = db->get(db, NULL, &dk, &dv, 0);
	}
	if (ret == DB_NOTFOUND && !(flags & MAP_BUILD_NUL) && len > 0) {
		dk.size = (u_int32_t)len;
		memset(&dv, 0, sizeof(dv));
		ret = db->get(db, NULL, &dk, &dv, 0);
	}
	if (ret == 0)
		*value_r = hash_dbt_str(&dv);
	else if (ret != DB_NOTFOUND)
		*error_r = xasprintf(
		    "%s: berkeley db get: %s", path, db_strerror(ret));
	(void)db->close(db, 0);
	free(k);
	free(path);
	return ret == 0 ? 1 : ret == DB_NOTFOUND ? 0 : -1;
}
