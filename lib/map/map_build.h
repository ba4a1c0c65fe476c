/* SPDX-License-Identifier: MIT */
/*
 * Building and listing hash: tables (Berkeley DB hash files), shared by
 * ternmap(1) and the tests.
 */
#ifndef TERN_MAP_BUILD_H
#define TERN_MAP_BUILD_H

#include <stddef.h>

/* ternmap -f: store keys as written instead of folding them. */
#define MAP_BUILD_NOFOLD     0x1
/*
 * The source is in aliases(5) syntax: "name: target, target..." per
 * logical line, the name quoted ("a b": ...) when it holds blanks or a
 * colon. The value is stored as written (trimmed; it may be empty).
 */
#define MAP_BUILD_ALIASES    0x2
/* The largest source file map_build_hash() reads (it holds it whole). */
#define MAP_BUILD_SOURCE_MAX (256 * 1024 * 1024)

/*
 * Builds source.db from the text file source, postmap's format: "key
 * value" per logical line (the key ends at the first blank; '#'
 * comments, blank lines and continuation lines as in every text table),
 * keys folded to lower case unless MAP_BUILD_NOFOLD. Keys and values are
 * stored with a trailing NUL, as Postfix stores them. A duplicate key is
 * a warning (msg_warn, file and line) and the first one stays.
 *
 * Atomic and durable: a new file under a unique name in the same
 * directory, synced, renamed over source.db, directory synced. It gets
 * source's permission bits and, when the caller is root, source's owner
 * and group (through the descriptor). On any error the temporary file is
 * removed, source.db is untouched, and -1 returns with *error_r
 * allocated, naming file and line for a syntax error. 0 on success.
 */
int map_build_hash(const char *source, int flags, char **error_r);

/* map_build_hash(source, flags | MAP_BUILD_ALIASES): newaliases. */
int map_build_aliases(const char *source, int flags, char **error_r);

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
