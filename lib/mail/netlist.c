/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "base/cidr.h"
#include "base/log.h"
#include "base/mem.h"
#include "map/map.h"
#include "mail/netlist.h"
#include "mail/params.h"

struct netlist_entry {
	int negate;
	struct map *map; /* a type:table word, or NULL */
	struct cidr net;
};

struct netlist {
	struct netlist_entry *e;
	size_t n;
};

struct netlist *
netlist_create(const char *value, const char *param, char **error_r)
{
	struct netlist *l = xcalloc(1, sizeof(*l));
	char **words = config_list(value);
	const char *w, *err;
	char *merr;
	size_t i;

	for (i = 0; words[i] != NULL; i++)
		;
	l->e = xcalloc(i + 1, sizeof(*l->e));
	for (i = 0; words[i] != NULL; i++) {
		struct netlist_entry *e = &l->e[l->n];

		w = words[i];
		if (*w == '!') {
			e->negate = 1;
			w++;
		}
		/* A table spec has "type:" before any '/' or '['; an IPv6
		 * address has no such letters-only prefix. */
		if (strchr(w, ':') != NULL && w[0] != '[' &&
		    cidr_parse(w, &e->net, &err) < 0) {
			e->map = map_open(w, &merr);
			if (e->map == NULL) {
				*error_r = xasprintf("%s: %s", param, merr);
				free(merr);
				goto fail;
			}
		} else if (cidr_parse(w, &e->net, &err) < 0) {
			*error_r = xasprintf("%s: \"%s\": %s", param,
			    log_sanitize(w, 64), err);
			goto fail;
		}
		l->n++;
	}
	config_list_free(words);
	return l;
fail:
	config_list_free(words);
	netlist_free(&l);
	return NULL;
}

void
netlist_free(struct netlist **l_r)
{
	struct netlist *l = *l_r;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		map_free(&l->e[i].map);
	free(l->e);
	free(l);
	*l_r = NULL;
}

int
netlist_match(struct netlist *l, const char *addr)
{
	struct cidr host;
	const char *value, *error;
	size_t i;
	int r;

	if (l == NULL || cidr_addr(addr, &host) < 0)
		return 0;
	for (i = 0; i < l->n; i++) {
		const struct netlist_entry *e = &l->e[i];

		if (e->map == NULL) {
			r = cidr_match(&e->net, &host);
		} else {
			r = map_lookup(e->map, addr, &value, &error);
			if (r < 0) {
				msg_warn("%s: lookup of %s failed: %s",
				    map_spec(e->map), addr, error);
				return 0;
			}
		}
		if (r > 0)
			return !e->negate;
	}
	return 0;
}
