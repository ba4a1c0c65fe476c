/* SPDX-License-Identifier: MIT */
/*
 * What the table types of lib/map share and map.c dispatches to: one
 * struct map_ops per type, the identity of a loaded file (to notice a new
 * version), the logical-line reader of the text formats and the error
 * strings that name file and line. Not for use outside lib/map, except
 * the text parsers, which the fuzz targets call without a file.
 */
#ifndef TERN_MAP_INT_H
#define TERN_MAP_INT_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/mem.h"

/*
 * A logical line of a table file (continuation lines included): beyond
 * this the file is refused. Postfix has no cap; 64 KiB is far above any
 * sane regular expression or network list line.
 */
#define MAP_LINE_MAX     (64 * 1024)
/* A pcre: or cidr: file larger than this is refused at open. */
#define MAP_FILE_MAX     (16 * 1024 * 1024)
/* A lookup result (after $n substitution in pcre: tables). */
#define MAP_VALUE_MAX    (64 * 1024)
/* Room for the message of a failed lookup. */
#define MAP_ERROR_MAX    512
/* if ... endif blocks nested deeper than this are refused. */
#define MAP_IF_DEPTH_MAX 64

/* Which version of a file a table was loaded from. */
struct map_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

void map_file_id_set(struct map_file_id *id_r, const struct stat *st);
int map_file_id_eq(const struct map_file_id *a, const struct map_file_id *b);

struct map_ops {
	const char *type;
	int pattern; /* whole-key matches only (map_is_pattern) */
	int file;    /* name is a file: rechecked and reloaded */
	/* Appended to the name to get the file that is read (".db"). */
	const char *suffix;
	/*
	 * Loads the table named name (the part after "type:"); for file
	 * tables fills *id_r with the version loaded. NULL with *error_r
	 * allocated on failure.
	 */
	void *(*load)(
	    const char *name, struct map_file_id *id_r, char **error_r);
	/*
	 * 1 found (value written to *value), 0 not found, -1 the table
	 * cannot answer (error written to error, MAP_ERROR_MAX bytes).
	 */
	int (*lookup)(
	    void *data, const char *key, struct buf *value, char *error);
	void (*free)(void *data);
};

extern const struct map_ops map_hash_ops;
extern const struct map_ops map_pcre_ops;
extern const struct map_ops map_cidr_ops;
extern const struct map_ops map_inline_ops;
extern const struct map_ops map_static_ops;

/*
 * The text parsers of the pattern tables, for a text already in memory;
 * name is used in error messages only. NULL with *error_r allocated
 * ("name, line 3: ...") on any syntax error.
 */
void *map_pcre_parse(
    const char *name, const char *text, size_t len, char **error_r);
void *map_cidr_parse(
    const char *name, const char *text, size_t len, char **error_r);

/* "name, line N: text", allocated. */
char *map_line_error(const char *name, unsigned line, const char *fmt, ...)
    MTA_PRINTF(3, 4);

/*
 * Reads the whole regular file path (at most max bytes) into out and
 * fills *st_r from fstat of the descriptor read, so the identity is that
 * of the very bytes read. -1 with *error_r allocated.
 */
int map_file_read(const char *path, size_t max, struct buf *out,
    struct stat *st_r, char **error_r);
/* A text table's parser: the whole file in memory; NULL with *error_r
 * naming name and the line. */
typedef void *map_text_parse_fn(
    const char *name, const char *text, size_t len, char **error_r);
/* Reads name (at most MAP_FILE_MAX), records its identity, parses it. */
void *map_file_load_text(const char *name, struct map_file_id *id_r,
    map_text_parse_fn *parse, char **error_r);

/*
 * The logical-line reader of the text formats, Postfix's rules: '#' as
 * the first non-blank character makes a comment line, blank lines are
 * skipped, a line starting with a space or tab continues the previous
 * one (comments and blank lines in between do not end it). Trailing
 * blanks (and a CR) are cut. A NUL byte, an over-long line and a
 * continuation line with nothing to continue are errors.
 */
struct map_lines {
	const char *name;
	const char *p, *end;
	unsigned next_line; /* number of the input line at p */
	unsigned line;      /* first input line of the logical line */
	struct buf buf;
};

void map_lines_init(
    struct map_lines *l, const char *name, const char *text, size_t len);
/*
 * 1 with the logical line in l->buf (modifiable in place, NUL-terminated)
 * and its first line number in l->line; 0 at the end; -1 with *error_r
 * allocated.
 */
int map_lines_next(struct map_lines *l, char **error_r);
void map_lines_free(struct map_lines *l);

/* 1 if the logical line s starts with the word kw (if, endif) alone. */
int map_keyword(const char *s, const char *kw, const char **rest_r);

#endif
