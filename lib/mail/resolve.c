/* SPDX-License-Identifier: MIT */
/*
 * Recipient classification: $mydestination domains belong to system
 * users, $virtual_alias_domains (names, or keys of their tables) exist
 * only through virtual aliases, $virtual_mailbox_domains belong to
 * virtual users under $virtual_mailbox_base, everything else is relayed
 * or remote. Domains compare case-insensitively (RFC 5321 2.4); local
 * parts of local, alias and virtual domains are folded by
 * addr_local_fold() (unquoted, lower-cased, as Postfix does), so smtpd's
 * RCPT check and local delivery agree on which mailbox an address names;
 * remote local parts are kept as given.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"

static int
list_has(const char *list_value, const char *domain)
{
	char **list = config_list(list_value);
	int found = 0;
	size_t i;

	for (i = 0; list[i] != NULL && !found; i++)
		found = str_eq_ci(list[i], domain);
	config_list_free(list);
	return found;
}

/* Postfix's parent_domain_matches_subdomains: "example.com" in the list
 * also covers "mx.example.com". */
static int
list_has_parent(const char *list_value, const char *domain)
{
	char **list = config_list(list_value);
	size_t i, dl = strlen(domain), l;
	int found = 0;

	for (i = 0; list[i] != NULL && !found; i++) {
		l = strlen(list[i]);
		found = str_eq_ci(list[i], domain) ||
		        (dl > l && domain[dl - l - 1] == '.' &&
		            str_eq_ci(list[i], domain + dl - l));
	}
	config_list_free(list);
	return found;
}

int
resolve_domain_listed(const char *list_value, const char *domain)
{
	return list_has_parent(list_value, domain);
}

/* $virtual_alias_domains; a table failure counts as one (see
 * RESOLVE_ALIAS). */
static int
resolve_alias_domain(const char *domain)
{
	const char *error;
	int r = virtual_alias_domain(domain, &error);

	if (r < 0)
		msg_warn("virtual_alias_domains: %s; treating %s as a virtual "
		         "alias domain",
		    error, domain);
	return r != 0;
}

int
resolve_address(const char *addr, struct resolve_result *r)
{
	char *local;

	memset(r, 0, sizeof(*r));
	if (addr_split(addr, &local, &r->domain) < 0)
		return -1;
	r->local = local;
	if (r->domain == NULL) {
		r->domain = xstrdup("");
		r->class = RESOLVE_LOCAL;
	} else if (list_has(var_mydestination, r->domain))
		r->class = RESOLVE_LOCAL;
	else if (resolve_alias_domain(r->domain))
		r->class = RESOLVE_ALIAS;
	else if (list_has(var_virtual_mailbox_domains, r->domain))
		r->class = RESOLVE_VIRTUAL;
	else if (list_has_parent(var_relay_domains, r->domain))
		r->class = RESOLVE_RELAY;
	else
		r->class = RESOLVE_REMOTE;
	/* Every consumer of a local mailbox name sees the same folded form. */
	if (r->class == RESOLVE_LOCAL || r->class == RESOLVE_VIRTUAL ||
	    r->class == RESOLVE_ALIAS) {
		r->local = addr_local_fold(local);
		free(local);
	}
	return 0;
}

void
resolve_free(struct resolve_result *r)
{
	free(r->local);
	free(r->domain);
	r->local = NULL;
	r->domain = NULL;
}

/* A path component must not climb out of or alias its directory. */
static int
component_safe(const char *s)
{
	return *s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0;
}

char *
resolve_virtual_maildir(const char *local, const char *domain)
{
	char *l, *d, *path = NULL;

	if (!component_safe(local) || !component_safe(domain))
		return NULL;
	l = xstrdup(local);
	d = xstrdup(domain);
	str_lower(l);
	str_lower(d);
	path = xasprintf("%s/%s/%s/Maildir/", var_virtual_mailbox_base, d, l);
	free(l);
	free(d);
	return path;
}
