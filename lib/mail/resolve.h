/* SPDX-License-Identifier: MIT */
/*
 * Where a recipient address goes, from the parameters alone (no tables
 * yet): a domain in $mydestination (or no domain) is a system user's
 * ~/$home_mailbox; a domain in $virtual_mailbox_domains is a virtual user
 * in $virtual_mailbox_base; a domain in $relay_domains, or below one, is
 * relayed for anyone; anything else is remote. Comparisons are
 * case-insensitive on the domain.
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
	RESOLVE_REMOTE
};

struct resolve_result {
	enum resolve_class class;
	char *local;	/* local part: folded (addr_local_fold) for LOCAL and
			 * VIRTUAL, as given for RELAY and REMOTE */
	char *domain;	/* lower-case; "" for an address without a domain */
};

/* 0, or -1 for an address that cannot be split. Free with resolve_free. */
int resolve_address(const char *addr, struct resolve_result *r);
void resolve_free(struct resolve_result *r);
/* Virtual mailbox path: base/DOMAIN/LOCAL/Maildir/ (local lower-cased);
 * NULL if local or domain contains '/' or is "." or "..". Caller frees. */
char *resolve_virtual_maildir(const char *local, const char *domain);

#endif
