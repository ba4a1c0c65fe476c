/* SPDX-License-Identifier: MIT */
/*
 * ternmap: builds, checks and queries lookup tables (Postfix's postmap).
 *
 *   ternmap [-c dir] [-f] [-v] type:file ...   build file.db from file
 *                                              (hash:), or check the
 *                                              syntax (pcre:, cidr:, ...)
 *   ternmap [-c dir] -a [-f] [-v] hash:file ...  the same from aliases(5)
 *                                              input ("name: value")
 *   ternmap [-c dir] [-v] -q key type:name     print the value of key
 *   ternmap [-c dir] [-v] -s hash:name         print every record
 *
 * A name without "type:" is a hash: table. -q exits 0 found, 1 not
 * found, 2 on error; the other modes 0 or 1. The build itself is
 * map_build_hash() (lib/map/map_build.h): atomic, durable, permission
 * bits and owner of the source. No RFCs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "map/map.h"
#include "map/map_build.h"

#define TERNMAP_EXIT_NOTFOUND 1
#define TERNMAP_EXIT_ERROR    2
#define TERNMAP_HASH_PREFIX   "hash:"

static void MTA_NORETURN
ternmap_usage(void)
{
	fprintf(stderr,
	    "usage: ternmap [-c config_dir] [-a] [-f] [-v] type:file ...\n"
	    "       ternmap [-c config_dir] [-v] -q key type:name\n"
	    "       ternmap [-c config_dir] [-v] -s hash:name\n");
	exit(TERNMAP_EXIT_ERROR);
}

/* An error of -q: exit 2, so that "not found" (1) stays unambiguous. */
static void MTA_NORETURN MTA_PRINTF(1, 2) ternmap_error(const char *fmt, ...)
{
	va_list ap;

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

/* Builds or checks one table; 0 or -1 (after saying why). */
static int
ternmap_one(const char *arg, int flags)
{
	char *spec = ternmap_spec(arg), *err = NULL;
	struct map *m;
	int ret = 0;

	if (strncmp(spec, TERNMAP_HASH_PREFIX, strlen(TERNMAP_HASH_PREFIX)) ==
	    0) {
		if (map_build_hash(
		        spec + strlen(TERNMAP_HASH_PREFIX), flags, &err) < 0) {
			fprintf(stderr, "ternmap: %s\n", err);
			ret = -1;
		} else
			msg_debug("%s: built", spec);
	} else if (flags & MAP_BUILD_ALIASES) {
		fprintf(stderr, "ternmap: %s: -a builds hash: tables only\n",
		    spec);
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

static int
ternmap_query(const char *key, const char *arg)
{
	char *spec = ternmap_spec(arg), *err = NULL;
	const char *value, *lerr;
	struct map *m;
	int ret;

	if ((m = map_open(spec, &err)) == NULL)
		ternmap_error("%s", err);
	ret = map_lookup(m, key, &value, &lerr);
	if (ret < 0)
		ternmap_error("%s: %s", spec, lerr);
	if (ret > 0)
		printf("%s\n", value);
	map_free(&m);
	free(spec);
	return ret > 0 ? 0 : TERNMAP_EXIT_NOTFOUND;
}

static int
ternmap_print(const char *key, const char *value, void *ctx)
{
	(void)ctx;
	printf("%s %s\n", key, value);
	return 0;
}

static void
ternmap_dump(const char *arg)
{
	char *spec = ternmap_spec(arg), *err = NULL;

	if (strncmp(spec, TERNMAP_HASH_PREFIX, strlen(TERNMAP_HASH_PREFIX)) !=
	    0)
		msg_die("%s: -s lists hash: tables only", spec);
	if (map_hash_dump(spec + strlen(TERNMAP_HASH_PREFIX), ternmap_print,
	        NULL, &err) < 0)
		msg_die("%s", err);
	free(spec);
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err, *query = NULL;
	int ch, flags = 0, dump = 0, verbose = 0, failed = 0, i, ret = 0;

	log_init("ternmap", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "ac:fq:sv")) != -1) {
		switch (ch) {
		case 'a':
			flags |= MAP_BUILD_ALIASES;
			break;
		case 'c':
			config_dir = optarg;
			break;
		case 'f':
			flags |= MAP_BUILD_NOFOLD;
			break;
		case 'q':
			query = optarg;
			break;
		case 's':
			dump = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			ternmap_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || (query != NULL && dump) ||
	    ((flags & MAP_BUILD_ALIASES) && (query != NULL || dump)) ||
	    ((query != NULL || dump) && argc != 1))
		ternmap_usage();
	log_set_verbose(verbose);
	if (config_load(config_dir, &err) < 0)
		ternmap_error("%s", err);
	if (query != NULL)
		ret = ternmap_query(query, argv[0]);
	else if (dump)
		ternmap_dump(argv[0]);
	else
		for (i = 0; i < argc; i++)
			failed |= ternmap_one(argv[i], flags) < 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		ternmap_error("write error on standard output");
	return failed ? 1 : ret;
}
