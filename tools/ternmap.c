/* SPDX-License-Identifier: MIT */
/*
 * ternmap: builds, edits, checks and queries lookup tables (Postfix's
 * postmap and postalias, see ternmap(1)):
 *
 *   ternmap [options] type:file ...       build file.db from file (hash:),
 *                                         or check the syntax (pcre:, ...)
 *   ternmap [options] -q key|- table ...  print the value of key (or of
 *                                         each key read from stdin)
 *   ternmap [options] -d key|- hash:name ...  delete key(s)
 *   ternmap [options] -i hash:name        add "key value" lines from stdin
 *   ternmap [options] -s hash:name        print every record
 *
 * A name without "type:" is a hash: table; -a reads and writes aliases(5)
 * syntax. Run as root, a build or edit runs as the owner of the source
 * (or of the table being edited) unless -o, as postmap does: root never
 * writes into a directory that someone else controls. Exit status: -q
 * and -d 0 when a key was found, 1 when none was, 2 on an error; the
 * other modes 0 or 1; 2 for a usage error. The table work itself is
 * lib/map/map_build.h. RFC 4648 (-F values).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/params.h"
#include "map/map.h"
#include "map/map_build.h"

#define TERNMAP_EXIT_NOTFOUND 1
#define TERNMAP_EXIT_ERROR    2
#define TERNMAP_HASH_PREFIX   "hash:"
/* A key read by -q - or -d - (a line of stdin). */
#define TERNMAP_KEY_MAX       4096
/* A -F value after decoding: what -F can have stored. */
#define TERNMAP_DECODED_MAX   (MAP_BUILD_FILES_MAX + 1)

enum ternmap_mode {
	TERNMAP_BUILD,
	TERNMAP_QUERY,  /* -q */
	TERNMAP_DELETE, /* -d */
	TERNMAP_UPDATE, /* -i */
	TERNMAP_DUMP,   /* -s */
};

static int ternmap_flags;
static int ternmap_as_owner = 1; /* cleared by -o */

static void MTA_NORETURN
ternmap_usage(void)
{
	fprintf(stderr,
	    "usage: ternmap [-c config_dir] [-afFNnoprsuvw] type:file ...\n"
	    "       ternmap [-c config_dir] [-afFNnuv] -q key|- table ...\n"
	    "       ternmap [-c config_dir] [-afNnov] -d key|- "
	    "hash:name ...\n"
	    "       ternmap [-c config_dir] [-afFNnoruvw] -i hash:name\n"
	    "       ternmap [-c config_dir] [-aFv] -s hash:name\n");
	exit(TERNMAP_EXIT_ERROR);
}

/* An error of -q or -d: exit 2, so that "not found" (1) stays unambiguous. */
static void MTA_NORETURN MTA_PRINTF(1, 2) ternmap_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ternmap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(TERNMAP_EXIT_ERROR);
}

/* "file" means "hash:file", as with postmap's default type. */
static char *
ternmap_spec(const char *arg)
{
	if (strchr(arg, ':') == NULL)
		return xasprintf("%s%s", TERNMAP_HASH_PREFIX, arg);
	return xstrdup(arg);
}

/* The name of a hash: table without the prefix, NULL for other types. */
static const char *
ternmap_hash_name(const char *spec)
{
	size_t n = strlen(TERNMAP_HASH_PREFIX);

	return strncmp(spec, TERNMAP_HASH_PREFIX, n) == 0 ? spec + n : NULL;
}

/*
 * Postfix's rule for a root caller: do the work as the owner of path
 * (the source, or the table an edit changes), so that a table in a
 * user's directory is written by that user and root writes only where
 * root owns the file. 1 when the identity was switched (undo with
 * ternmap_restore), 0 when not.
 */
static int
ternmap_become_owner(const char *path)
{
	char dir[4096];
	struct stat st, dst;

	if (!ternmap_as_owner || getuid() != 0 || stat(path, &st) < 0)
		return 0;
	if (st.st_uid == 0) {
		file_dirname(path, dir, sizeof(dir));
		if (stat(dir, &dst) == 0 && dst.st_uid != 0)
			msg_warn("%s is owned by root but its directory %s is "
			         "not: give them the same owner, or whoever "
			         "owns %s can make root write elsewhere",
			    path, dir, dir);
		return 0;
	}
	if (priv_become(st.st_uid, st.st_gid) < 0)
		ternmap_error("%s: cannot run as its owner (uid %ld): %s", path,
		    (long)st.st_uid, strerror(errno));
	msg_debug("%s: working as uid %ld", path, (long)st.st_uid);
	return 1;
}

static void
ternmap_restore(int switched)
{
	if (switched && priv_restore() < 0)
		msg_fatal("cannot return to root: %m");
}

/* Builds or checks one table; 0 or -1 (after saying why). */
static int
ternmap_one(const char *arg)
{
	char *spec = ternmap_spec(arg), *err = NULL;
	const char *name = ternmap_hash_name(spec);
	struct map *m;
	int ret = 0, switched;

	if (name != NULL) {
		switched = ternmap_become_owner(name);
		if (map_build_hash(name, ternmap_flags, &err) < 0) {
			fprintf(stderr, "ternmap: %s\n", err);
			ret = -1;
		} else
			msg_debug("%s: built", spec);
		ternmap_restore(switched);
	} else if (ternmap_flags & MAP_BUILD_ALIASES) {
		fprintf(
		    stderr, "ternmap: %s: -a builds hash: tables only\n", spec);
		ret = -1;
	} else if ((m = map_open(spec, &err)) == NULL) {
		fprintf(stderr, "ternmap: %s\n", err);
		ret = -1;
	} else {
		msg_debug("%s: no errors", spec);
		map_free(&m);
	}
	free(err);
	free(spec);
	return ret;
}

/*
 * -F: the value as stored is base64; what is shown is the decoded text.
 * NULL (after a warning naming what) when it does not decode.
 */
static char *
ternmap_decode(const char *what, const char *value)
{
	const char *err;
	struct buf out;
	char *s;

	buf_init(&out, TERNMAP_DECODED_MAX);
	if (base64_decode(value, strlen(value), &out, &err) < 0) {
		msg_warn("%s: value is not base64 (-F): %s", what, err);
		buf_free(&out);
		return NULL;
	}
	s = xstrdup(buf_cstr(&out));
	buf_free(&out);
	return s;
}

/*
 * Looks key up in each table in turn, the first answer wins (postmap -q
 * with several tables). 1 with *value_r allocated, 0 not found; errors
 * exit.
 */
static int
ternmap_lookup(char **specs, int n, const char *key, char **value_r)
{
	const char *name, *value, *lerr;
	char *err = NULL;
	struct map *m;
	int i, ret = 0;

	/* Postfix with smtputf8_enable: such a key is never found. */
	if (!(ternmap_flags & MAP_BUILD_NOUTF8) &&
	    !str_utf8_valid(key, strlen(key))) {
		msg_warn("key is not UTF-8: not looked up (-u does)");
		return 0;
	}
	for (i = 0; i < n && ret == 0; i++) {
		if ((name = ternmap_hash_name(specs[i])) != NULL) {
			ret = map_hash_query(
			    name, key, ternmap_flags, value_r, &err);
			if (ret < 0)
				ternmap_error("%s", err);
			continue;
		}
		/* Other types: as a daemon sees them (-f has no effect). */
		if ((m = map_open(specs[i], &err)) == NULL)
			ternmap_error("%s", err);
		ret = map_lookup(m, key, &value, &lerr);
		if (ret < 0)
			ternmap_error("%s: %s", specs[i], lerr);
		if (ret > 0)
			*value_r = xstrdup(value);
		map_free(&m);
	}
	if (ret > 0 && (ternmap_flags & MAP_BUILD_VALUE_FILES)) {
		char *decoded = ternmap_decode(key, *value_r);

		free(*value_r);
		if (decoded == NULL)
			ternmap_error("%s: cannot decode the value", key);
		*value_r = decoded;
	}
	return ret;
}

/*
 * The next line of stdin without its line end into buf (size
 * TERNMAP_KEY_MAX + 2). 1, 0 at the end; a longer line is an error.
 */
static int
ternmap_read_key(char *buf, size_t size)
{
	size_t len;

	if (fgets(buf, (int)size, stdin) == NULL) {
		if (ferror(stdin))
			ternmap_error("read error on standard input");
		return 0;
	}
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (!feof(stdin))
		ternmap_error("a key on standard input is longer than %d bytes",
		    TERNMAP_KEY_MAX);
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return 1;
}

static int
ternmap_query(const char *key, char **specs, int n)
{
	char line[TERNMAP_KEY_MAX + 2], *value;
	int found = 0;

	if (strcmp(key, "-") != 0) {
		if (ternmap_lookup(specs, n, key, &value) <= 0)
			return TERNMAP_EXIT_NOTFOUND;
		printf("%s\n", value);
		free(value);
		return 0;
	}
	/* postmap -q -: "key<TAB>value" for each key found. */
	while (ternmap_read_key(line, sizeof(line))) {
		if (ternmap_lookup(specs, n, line, &value) > 0) {
			printf("%s\t%s\n", line, value);
			free(value);
			found = 1;
		}
	}
	return found ? 0 : TERNMAP_EXIT_NOTFOUND;
}

/* Reads all of stdin (at most MAP_BUILD_SOURCE_MAX bytes) into text. */
static void
ternmap_read_stdin(struct buf *text)
{
	char chunk[8192];
	ssize_t n;

	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ternmap_error(
			    "read standard input: %s", strerror(errno));
		if (n == 0)
			return;
		if (buf_append(text, chunk, (size_t)n) < 0)
			ternmap_error("standard input is longer than %d bytes",
			    MAP_BUILD_SOURCE_MAX);
	}
}

static int
ternmap_delete(const char *key, char **specs, int n)
{
	char line[TERNMAP_KEY_MAX + 2], *err = NULL, *db;
	char **keys = NULL;
	const char *name;
	size_t count = 0, deleted, total = 0, i;
	int t, switched;

	for (t = 0; t < n; t++)
		if (ternmap_hash_name(specs[t]) == NULL)
			ternmap_error(
			    "%s: -d edits hash: tables only", specs[t]);
	if (strcmp(key, "-") == 0) {
		while (ternmap_read_key(line, sizeof(line))) {
			keys = xrealloc(keys, (count + 1) * sizeof(*keys));
			keys[count++] = xstrdup(line);
		}
	} else {
		keys = xmalloc(sizeof(*keys));
		keys[count++] = xstrdup(key);
	}
	for (t = 0; t < n; t++) {
		name = ternmap_hash_name(specs[t]);
		db = xasprintf("%s.db", name);
		switched = ternmap_become_owner(db);
		free(db);
		if (map_hash_delete(
		        name, keys, count, ternmap_flags, &deleted, &err) < 0)
			ternmap_error("%s", err);
		ternmap_restore(switched);
		msg_debug(
		    "%s: %zu of %zu keys deleted", specs[t], deleted, count);
		total += deleted;
	}
	for (i = 0; i < count; i++)
		free(keys[i]);
	free(keys);
	return total > 0 ? 0 : TERNMAP_EXIT_NOTFOUND;
}

static int
ternmap_update(const char *spec)
{
	const char *name = ternmap_hash_name(spec);
	char *db, *err = NULL;
	struct buf text;
	int switched, ret = 0;

	if (name == NULL)
		msg_die("%s: -i edits hash: tables only", spec);
	buf_init(&text, MAP_BUILD_SOURCE_MAX);
	ternmap_read_stdin(&text);
	db = xasprintf("%s.db", name);
	switched = ternmap_become_owner(access(db, F_OK) == 0 ? db : name);
	if (map_hash_update(name, buf_cstr(&text), text.len, "stdin",
	        ternmap_flags, &err) < 0) {
		fprintf(stderr, "ternmap: %s\n", err);
		free(err);
		ret = 1;
	}
	ternmap_restore(switched);
	free(db);
	buf_free(&text);
	return ret;
}

static int
ternmap_print(const char *key, const char *value, void *ctx)
{
	char *decoded;

	(void)ctx;
	if (ternmap_flags & MAP_BUILD_VALUE_FILES) {
		/* As postmap -s -F: a record that does not decode is skipped. */
		if ((decoded = ternmap_decode(key, value)) != NULL)
			printf("%s\t%s\n", key, decoded);
		free(decoded);
	} else
		printf("%s\t%s\n", key, value);
	return 0;
}

static void
ternmap_dump(const char *spec)
{
	const char *name = ternmap_hash_name(spec);
	char *err = NULL;

	if (name == NULL)
		msg_die("%s: -s lists hash: tables only", spec);
	if (map_hash_dump(name, ternmap_print, NULL, &err) < 0)
		msg_die("%s", err);
}

static void
ternmap_set_mode(enum ternmap_mode *mode, enum ternmap_mode m)
{
	if (*mode != TERNMAP_BUILD) {
		fprintf(
		    stderr, "ternmap: specify only one of -d -i -q or -s\n");
		ternmap_usage();
	}
	*mode = m;
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err, *key = NULL;
	enum ternmap_mode mode = TERNMAP_BUILD;
	int ch, verbose = 0, failed = 0, i, ret = 0;
	char **specs;

	log_init("ternmap", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "ac:d:fFiNnopq:rsuvw")) != -1) {
		switch (ch) {
		case 'a':
			ternmap_flags |= MAP_BUILD_ALIASES;
			break;
		case 'c':
			config_dir = optarg;
			break;
		case 'd':
			ternmap_set_mode(&mode, TERNMAP_DELETE);
			key = optarg;
			break;
		case 'f':
			ternmap_flags |= MAP_BUILD_NOFOLD;
			break;
		case 'F':
			ternmap_flags |= MAP_BUILD_VALUE_FILES;
			break;
		case 'i':
			ternmap_set_mode(&mode, TERNMAP_UPDATE);
			break;
		case 'N':
			ternmap_flags =
			    (ternmap_flags & ~MAP_BUILD_NONUL) | MAP_BUILD_NUL;
			break;
		case 'n':
			ternmap_flags =
			    (ternmap_flags & ~MAP_BUILD_NUL) | MAP_BUILD_NONUL;
			break;
		case 'o':
			ternmap_as_owner = 0;
			break;
		case 'p':
			ternmap_flags |= MAP_BUILD_NOPERM;
			break;
		case 'q':
			ternmap_set_mode(&mode, TERNMAP_QUERY);
			key = optarg;
			break;
		case 'r':
			ternmap_flags =
			    (ternmap_flags & ~MAP_BUILD_DUP_IGNORE) |
			    MAP_BUILD_DUP_REPLACE;
			break;
		case 's':
			ternmap_set_mode(&mode, TERNMAP_DUMP);
			break;
		case 'u':
			ternmap_flags |= MAP_BUILD_NOUTF8;
			break;
		case 'v':
			verbose++;
			break;
		case 'w':
			ternmap_flags =
			    (ternmap_flags & ~MAP_BUILD_DUP_REPLACE) |
			    MAP_BUILD_DUP_IGNORE;
			break;
		default:
			ternmap_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 ||
	    ((mode == TERNMAP_UPDATE || mode == TERNMAP_DUMP) && argc != 1))
		ternmap_usage();
	log_set_verbose(verbose);
	if (config_load(config_dir, &err) < 0)
		ternmap_error("%s", err);
	specs = xcalloc((size_t)argc, sizeof(*specs));
	for (i = 0; i < argc; i++)
		specs[i] = ternmap_spec(argv[i]);
	switch (mode) {
	case TERNMAP_QUERY:
		ret = ternmap_query(key, specs, argc);
		break;
	case TERNMAP_DELETE:
		ret = ternmap_delete(key, specs, argc);
		break;
	case TERNMAP_UPDATE:
		ret = ternmap_update(specs[0]);
		break;
	case TERNMAP_DUMP:
		ternmap_dump(specs[0]);
		break;
	case TERNMAP_BUILD:
		for (i = 0; i < argc; i++)
			failed |= ternmap_one(specs[i]) < 0;
		ret = failed ? 1 : 0;
		break;
	}
	for (i = 0; i < argc; i++)
		free(specs[i]);
	free(specs);
	if (fflush(stdout) != 0 || ferror(stdout))
		ternmap_error("write error on standard output");
	return ret;
}
