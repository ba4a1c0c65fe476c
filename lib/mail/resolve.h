/* SPDX-License-Identifier: MIT */
/*
 * Where a recipient address goes, from the parameters: a domain in
 * $mydestination (or no domain) is a system user's ~/$home_mailbox; a
 * domain in $virtual_alias_domains exists only through virtual aliases; a
 * domain in $virtual_mailbox_domains is a virtual user in
 * $virtual_mailbox_base; a domain in $relay_domains, or below one, is
 * relayed for anyone; anything else is remote (Postfix's order).
 * Comparisons are case-insensitive on the domain.
 */
#ifndef TERN_RESOLVE_H
#define TERN_RESOLVE_H

/*
 * RELAY: a domain of $relay_domains (or a subdomain of one) that this host
 * accepts mail for from anyone and passes on; REMOTE: anything else, which
 * only trusted clients may relay to.
 */
enum resolve_class {
	RESOLVE_LOCAL,
	RESOLVE_VIRTUAL,
	RESOLVE_RELAY,
	RESOLVE_REMOTE,
	/*
	 * A domain of $virtual_alias_domains: ours (not relayed), without
	 * mailboxes. cleanup rewrites its addresses by virtual_alias_maps;
	 * one left over is "User unknown in virtual alias table" (5.1.1).
	 * A table that fails to answer whether a domain is one also gives
	 * this class (logged): never relay or refuse as remote on a
	 * transient error.
	 */
	RESOLVE_ALIAS
};

struct resolve_result {
	enum resolve_class class;
	char *local;	/* local part: folded (addr_local_fold) for LOCAL,
			 * VIRTUAL and ALIAS, as given for RELAY and REMOTE */
	char *domain;	/* lower-case; "" for an address without a domain */
};

/*
 * 0, or -1 for an address that cannot be split. Free with resolve_free.
 * The tables of virtual_alias_domains are opened on first use unless
 * virtual_alias_tables_init() ran (virtual_alias.h).
 */
int resolve_address(const char *addr, struct resolve_result *r);
void resolve_free(struct resolve_result *r);
/*
 * 1 if domain is in list_value (a domain list such as $relay_domains:
 * names, case-insensitive) or below one of its names, as relay_domains
 * matches (Postfix's parent_domain_matches_subdomains).
 */
int resolve_domain_listed(const char *list_value, const char *domain);
/* Virtual mailbox path: base/DOMAIN/LOCAL/Maildir/ (local lower-cased);
 * NULL if local or domain contains '/' or is "." or "..". Caller frees. */
char *resolve_virtual_maildir(const char *local, const char *domain);

#endif
