/* SPDX-License-Identifier: MIT */
/*
 * Lookup tables behind one interface, in Postfix's syntax "type:name"
 * (tern_tables(5)):
 *
 *   hash:/etc/tern/access       Berkeley DB hash file access.db, built from
 *                               the text file "access" by ternmap(1)
 *   pcre:/etc/tern/helo.pcre    "/regex/flags result" lines, first match
 *   cidr:/etc/tern/clients.cidr "network/prefix result" lines, first match
 *   inline:{ key=value, { key = value, with commas } }
 *   static:value                every key finds value
 *
 * Exact tables (hash, inline) fold the key to lower case (ternmap folds the
 * keys it stores); pattern tables (pcre, cidr) match the whole key as
 * given, so callers doing partial lookups (parent domains, address
 * prefixes) ask map_is_pattern() and skip them for pattern tables, as
 * Postfix does.
 *
 * File tables notice a new version of their file (another inode, size or
 * mtime; ternmap replaces files by rename, so a reader never sees half a
 * table) at most once per MAP_RECHECK_MS and reopen; if the new version
 * cannot be loaded the old contents stay in use and a warning is logged.
 */
#ifndef TERN_MAP_H
#define TERN_MAP_H

#define MAP_RECHECK_MS 1000

struct map;

/*
 * Opens spec ("type:name"). NULL with *error_r set (allocated, caller
 * frees) naming the file and line of a syntax error: "/etc/tern/helo.pcre,
 * line 3: missing closing delimiter".
 */
struct map *map_open(const char *spec, char **error_r);
/* NULL-safe; sets *m_r to NULL. */
void map_free(struct map **m_r);
/*
 * 1 found, *value_r valid until the next lookup on m; 0 not found; -1 the
 * table cannot answer now (I/O error), *error_r says why (valid until the
 * next lookup on m).
 */
int map_lookup(struct map *m, const char *key, const char **value_r,
    const char **error_r);
/* The spec as given to map_open, for log lines. */
const char *map_spec(const struct map *m);
/* 1 for pcre: and cidr: (whole-key matches only). */
int map_is_pattern(const struct map *m);
/*
 * Makes the next lookup on m check its file now instead of up to
 * MAP_RECHECK_MS later (tests; a daemon told to reload). Does nothing
 * for tables without a file.
 */
void map_recheck_now(struct map *m);

#endif
