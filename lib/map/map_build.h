/* SPDX-License-Identifier: MIT */
/*
 * Building, changing and reading hash: tables (Berkeley DB hash files),
 * shared by ternmap(1), newaliases and the tests. Every change, a full
 * build or an edit of a few keys, writes a new file and renames it over
 * the old one, so a reader (a daemon, "ternmap -q") sees either the old
 * table or the new one, never a page in between.
 */
#ifndef TERN_MAP_BUILD_H
#define TERN_MAP_BUILD_H

#include <stddef.h>

/* -f: keys are stored and looked up as written, not folded. */
#define MAP_BUILD_NOFOLD      0x001
/*
 * -a: the source is in aliases(5) syntax: "name: target, target..." per
 * logical line, the name quoted ("a b": ...) when it holds blanks or a
 * colon. The value is stored as written (trimmed; it may be empty).
 */
#define MAP_BUILD_ALIASES     0x002
/* -r: a key given again replaces the earlier value, quietly. */
#define MAP_BUILD_DUP_REPLACE 0x004
/* -w: a key given again is ignored, quietly (default: with a warning). */
#define MAP_BUILD_DUP_IGNORE  0x008
/*
 * -N: keys and values carry their terminating NUL (the default when
 * storing) and lookups and deletes try only that form; -n: stored
 * without it, and only that form is tried. Without either, lookups try
 * the NUL form first, then the other (Postfix's dict_db.c).
 */
#define MAP_BUILD_NUL         0x010
#define MAP_BUILD_NONUL       0x020
/* -u: no UTF-8 check (by default a line that is not UTF-8 is skipped). */
#define MAP_BUILD_NOUTF8      0x040
/*
 * -F: a value is a list of file names (comma or blank separated): their
 * contents, joined by a newline, are stored base64-encoded instead.
 */
#define MAP_BUILD_VALUE_FILES 0x080
/* -p: the new table gets mode 0644, not the source's permission bits. */
#define MAP_BUILD_NOPERM      0x100

/* The largest source text (a file or standard input) read whole. */
#define MAP_BUILD_SOURCE_MAX   (256 * 1024 * 1024)
/* The largest .db file an edit copies. */
#define MAP_BUILD_DB_MAX       (1024L * 1024 * 1024)
/* The most bytes -F reads for one value (all its files together). */
#define MAP_BUILD_FILES_MAX    (1024 * 1024)
/* Mode of a table that has no source to copy it from (-p, -i on none). */
#define MAP_BUILD_MODE         0644
/*
 * How long an edit waits for another edit of the same table (an flock on
 * the current .db file) before giving up.
 */
#define MAP_BUILD_LOCK_WAIT_MS 10000

/*
 * Builds source.db from the text file source, postmap's format: "key
 * value" per logical line (the key ends at the first blank; '#'
 * comments, blank lines and continuation lines as in every text table),
 * keys folded to lower case unless MAP_BUILD_NOFOLD. Keys and values are
 * stored with a trailing NUL, as Postfix stores them, unless
 * MAP_BUILD_NONUL. A duplicate key is a warning (msg_warn, file and line)
 * and the first one stays, unless MAP_BUILD_DUP_*; a line that is not
 * UTF-8 is a warning and skipped, unless MAP_BUILD_NOUTF8.
 *
 * Atomic and durable: a new file under a unique name in the same
 * directory, synced, renamed over source.db, directory synced, while
 * holding the lock edits take. It gets source's permission bits (mode
 * MAP_BUILD_MODE with MAP_BUILD_NOPERM) and, when the caller is root,
 * source's owner and group (through the descriptor). On any error the
 * temporary file is removed, source.db is untouched, and -1 returns with
 * *error_r allocated, naming file and line for a syntax error. 0 on
 * success.
 */
int map_build_hash(const char *source, int flags, char **error_r);

/* map_build_hash(source, flags | MAP_BUILD_ALIASES): newaliases. */
int map_build_aliases(const char *source, int flags, char **error_r);

/*
 * Adds the records of text (len bytes in the source format, or aliases(5)
 * with MAP_BUILD_ALIASES; origin names it in messages, "stdin") to the
 * table name (the file name.db), keeping every other record: postmap -i.
 * A key already in the table keeps its value with a warning, unless
 * MAP_BUILD_DUP_*. A missing table is created (mode MAP_BUILD_MODE).
 * Edits of one table are serialised by an flock on the current .db
 * file, waiting at most MAP_BUILD_LOCK_WAIT_MS; the result replaces the
 * file as map_build_hash() does, with its owner and mode. 0, or -1 with
 * *error_r allocated and the table unchanged.
 */
int map_hash_update(const char *name, const char *text, size_t len,
    const char *origin, int flags, char **error_r);

/*
 * Removes keys[0..count) (folded unless MAP_BUILD_NOFOLD; both NUL forms
 * unless MAP_BUILD_NUL or MAP_BUILD_NONUL) from the table name, as
 * map_hash_update() edits. *deleted_r is the number of keys found. A
 * missing table is an error. 0, or -1 with *error_r allocated.
 */
int map_hash_delete(const char *name, char *const *keys, size_t count,
    int flags, size_t *deleted_r, char **error_r);

/*
 * Looks key up in the table name as ternmap -q does (MAP_BUILD_NOFOLD,
 * MAP_BUILD_NUL, MAP_BUILD_NONUL honoured; daemons use map_lookup). 1
 * with *value_r allocated (without its NUL), 0 not found, -1 with
 * *error_r allocated.
 */
int map_hash_query(const char *name, const char *key, int flags, char **value_r,
    char **error_r);

/*
 * Splits one logical aliases(5) line in place: *key_r is the name
 * (unquoted), *value_r the trimmed rest after the colon (may be "").
 * 0, or -1 when there is no name followed by a colon.
 */
int map_alias_line(char *line, char **key_r, char **value_r);

/*
 * Calls cb for each record of the hash table name (the file name.db),
 * in the database's order, with the trailing NULs removed; cb returning
 * non-zero stops. 0 when done, -1 with *error_r allocated.
 */
typedef int map_dump_cb(const char *key, const char *value, void *ctx);
int map_hash_dump(const char *name, map_dump_cb *cb, void *ctx, char **error_r);

#endif
