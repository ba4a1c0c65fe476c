/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "base/mem.h"
#include "mail/map_list.h"
#include "mail/params.h"

struct map_list {
	struct map *maps[MAP_LIST_MAX];
	int n;
};

struct map_list *
map_list_open(const char *param, const char *value, char **error_r)
{
	struct map_list *l = xcalloc(1, sizeof(*l));
	char **list = config_list(value);
	char *err = NULL;
	int n, i;

	for (n = 0; list[n] != NULL; n++)
		;
	if (n > MAP_LIST_MAX) {
		*error_r = xasprintf("%s: more than %d tables", param,
		    MAP_LIST_MAX);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((l->maps[l->n] = map_open(list[i], &err)) == NULL) {
			*error_r = xasprintf("%s: %s", param, err);
			free(err);
			goto fail;
		}
		l->n++;
	}
	config_list_free(list);
	return l;
fail:
	config_list_free(list);
	map_list_free(&l);
	return NULL;
}

void
map_list_free(struct map_list **l_r)
{
	struct map_list *l = *l_r;

	if (l == NULL)
		return;
	while (l->n > 0)
		map_free(&l->maps[--l->n]);
	free(l);
	*l_r = NULL;
}

int
map_list_empty(const struct map_list *l)
{
	return l == NULL || l->n == 0;
}

int
map_list_lookup(struct map_list *l, const char *key, const char **value_r,
    const char **error_r)
{
	int i, rc;

	for (i = 0; l != NULL && i < l->n; i++) {
		rc = map_lookup(l->maps[i], key, value_r, error_r);
		if (rc != 0)
			return rc;
	}
	return 0;
}
