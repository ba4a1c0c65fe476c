/* SPDX-License-Identifier: MIT */
/*
 * newaliases: builds every table of $alias_database from its aliases(5)
 * source (Postfix's newaliases, "sendmail -bi").
 *
 *   newaliases [-c config_dir] [-v]
 *
 * hash:FILE builds FILE.db from FILE (map_build_aliases: atomic, durable,
 * owner and permission bits of the source); other table types cannot be
 * built. A malformed line is reported with its file and line number and
 * leaves that table's old version in place. Exits 0, or 1 when any
 * table failed. No RFCs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "map/map_build.h"

#define NEWALIASES_HASH_PREFIX "hash:"

static void MTA_NORETURN
newaliases_usage(void)
{
	fprintf(stderr, "usage: newaliases [-c config_dir] [-v]\n");
	exit(1);
}

/* Builds one alias_database entry; 0 or -1 (after saying why). */
static int
newaliases_one(const char *spec)
{
	const char *name = spec;
	char *err = NULL;

	if (strncmp(spec, NEWALIASES_HASH_PREFIX,
	        strlen(NEWALIASES_HASH_PREFIX)) == 0)
		name = spec + strlen(NEWALIASES_HASH_PREFIX);
	else if (strchr(spec, ':') != NULL) {
		fprintf(stderr,
		    "newaliases: %s: only hash: alias tables can be built\n",
		    spec);
		return -1;
	}
	if (map_build_aliases(name, 0, &err) < 0) {
		fprintf(stderr, "newaliases: %s\n", err);
		free(err);
		return -1;
	}
	msg_debug("%s: built", spec);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	int ch, verbose = 0, failed = 0, i;
	char **list;

	log_init("newaliases", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			newaliases_usage();
		}
	}
	if (optind != argc)
		newaliases_usage();
	log_set_verbose(verbose);
	if (config_load(config_dir, &err) < 0) {
		fprintf(stderr, "newaliases: %s\n", err);
		return 1;
	}
	list = config_list(var_alias_database);
	for (i = 0; list[i] != NULL; i++)
		failed |= newaliases_one(list[i]) < 0;
	config_list_free(list);
	return failed ? 1 : 0;
}
