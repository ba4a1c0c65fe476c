/* SPDX-License-Identifier: MIT */
/*
 * The transport resolver (route.h). Tables are opened once; the
 * transport parameters are split per lookup because they are short and
 * a reload restarts the daemon anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "mail/route.h"

static struct map_list *route_maps;

int
route_init(char **error_r)
{
	route_shutdown();
	route_maps = map_list_open("transport_maps", var_transport_maps,
	    error_r);
	return route_maps != NULL ? 0 : -1;
}

void
route_shutdown(void)
{
	map_list_free(&route_maps);
}

/* "transport:nexthop" into r, each half only when not empty. */
static void
route_apply(struct route *r, const char *value)
{
	const char *colon = strchr(value, ':');
	size_t tl = colon != NULL ? (size_t)(colon - value) : strlen(value);

	if (tl > 0) {
		free(r->transport);
		r->transport = xstrndup(value, tl);
	}
	if (colon != NULL && colon[1] != '\0') {
		free(r->nexthop);
		r->nexthop = xstrdup(colon + 1);
	}
}

/* First table that knows key: 1 applied, 0 none, -1 table error. */
static int
route_lookup(struct route *r, const char *key, const char **error_r)
{
	const char *value;
	int rc = map_list_lookup(route_maps, key, &value, error_r);

	if (rc > 0)
		route_apply(r, value);
	return rc;
}

/* transport(5) order: address, domain, .parent..., "*". */
static int
route_maps_apply(struct route *r, const char *addr, const char *domain,
    const char **error_r)
{
	const char *d;
	int rc;

	if (map_list_empty(route_maps))
		return 0;
	if (*domain != '\0' && (rc = route_lookup(r, addr, error_r)) != 0)
		return rc;
	if (*domain != '\0' && (rc = route_lookup(r, domain, error_r)) != 0)
		return rc;
	for (d = domain; *d != '\0'; d++) {
		if (*d != '.')
			continue;
		rc = route_lookup(r, d, error_r);
		if (rc != 0)
			return rc;
	}
	return route_lookup(r, "*", error_r);
}

int
route_address(const char *addr, struct route *r, const char **error_r)
{
	struct resolve_result res;
	const char *deflt;
	char *key;
	int rc;

	memset(r, 0, sizeof(*r));
	if (resolve_address(addr, &res) < 0)
		return -1;
	r->class = res.class;
	switch (res.class) {
	case RESOLVE_LOCAL:
		deflt = var_local_transport;
		break;
	case RESOLVE_VIRTUAL:
		deflt = var_virtual_transport;
		break;
	case RESOLVE_RELAY:
		deflt = var_relay_transport;
		break;
	case RESOLVE_ALIAS:
		/* cleanup rewrote every alias; what is left has none. */
		deflt = "error:5.1.1 User unknown in virtual alias table";
		break;
	default:
		deflt = var_default_transport;
		break;
	}
	/* The nexthop when nothing names one: the domain, or this host. */
	r->transport = xstrdup("");
	r->nexthop = xstrdup(res.class == RESOLVE_LOCAL ? var_myhostname
	                                                 : res.domain);
	if ((res.class == RESOLVE_RELAY || res.class == RESOLVE_REMOTE) &&
	    *var_relayhost != '\0') {
		free(r->nexthop);
		r->nexthop = xstrdup(var_relayhost);
	}
	route_apply(r, deflt);
	key = xasprintf("%s@%s", res.local, res.domain);
	str_lower(key);
	rc = route_maps_apply(r, key, res.domain, error_r);
	free(key);
	resolve_free(&res);
	if (rc < 0) {
		route_free(r);
		return -2;
	}
	if (*r->transport == '\0') {
		free(r->transport);
		r->transport = xstrdup("local");
	}
	return 0;
}

void
route_free(struct route *r)
{
	free(r->transport);
	free(r->nexthop);
	r->transport = NULL;
	r->nexthop = NULL;
}
