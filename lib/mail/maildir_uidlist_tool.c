/* SPDX-License-Identifier: MIT */
/*
 * maildir_uidlist_tool MAILDIR: lists new/ and cur/ as pop3d does, gives
 * the files their UIDs with maildir_uidlist_assign and prints
 * "uidvalidity N", then "UID BASE" for each file in UID order. For
 * test/integration/test_uidlist.py, which compares them with Dovecot's.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "mail/maildir_uidlist.h"

struct entry {
	uint32_t uid;
	char *base;
};

static int
entry_cmp(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

int
main(int argc, char **argv)
{
	static const char *const subdirs[] = {"new", "cur"};
	struct entry *e;
	struct dirent *de;
	char **bases = NULL, *dir;
	uint32_t *uids, uidvalidity;
	const char *error;
	size_t n = 0, cap = 0, i;
	DIR *d;

	if (argc != 2) {
		fprintf(stderr, "usage: maildir_uidlist_tool MAILDIR\n");
		return 2;
	}
	for (i = 0; i < 2; i++) {
		dir = xasprintf("%s/%s", argv[1], subdirs[i]);
		d = opendir(dir);
		free(dir);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				bases = xrealloc(bases, cap * sizeof(*bases));
			}
			bases[n++] =
			    xstrndup(de->d_name, strcspn(de->d_name, ":"));
		}
		closedir(d);
	}
	uids = xcalloc(n + 1, sizeof(*uids));
	if (maildir_uidlist_assign(
	        argv[1], bases, n, uids, &uidvalidity, &error) < 0) {
		fprintf(stderr, "maildir_uidlist_tool: %s\n", error);
		return 1;
	}
	e = xcalloc(n + 1, sizeof(*e));
	for (i = 0; i < n; i++) {
		e[i].uid = uids[i];
		e[i].base = bases[i];
	}
	qsort(e, n, sizeof(*e), entry_cmp);
	printf("uidvalidity %u\n", uidvalidity);
	for (i = 0; i < n; i++)
		printf("%u %s\n", e[i].uid, e[i].base);
	for (i = 0; i < n; i++)
		free(bases[i]);
	free(bases);
	free(uids);
	free(e);
	return 0;
}
