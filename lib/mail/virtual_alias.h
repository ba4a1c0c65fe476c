/* SPDX-License-Identifier: MIT */
/*
 * The virtual tables (Postfix's virtual(5) and virtual_mailbox_maps):
 *
 *   virtual_alias_maps     address -> addresses, applied by cleanup to
 *                          every recipient before the message is queued
 *                          (and by smtpd at RCPT to decide the same way);
 *   virtual_alias_domains  domains that are ours but have no mailboxes:
 *                          every address there must have an alias;
 *   virtual_mailbox_maps   address of a $virtual_mailbox_domains domain
 *                          -> maildir below $virtual_mailbox_base.
 *
 * Tables are lib/map tables, opened once per process: a daemon that
 * chroots opens them before (virtual_alias_tables_init, as root); any other
 * user opens them on first use. No RFCs; the ORCPT text follows RFC 3461
 * 4.2 and RFC 6533 (utf-8 addresses).
 */
#ifndef TERN_MAIL_VIRTUAL_ALIAS_H
#define TERN_MAIL_VIRTUAL_ALIAS_H

/*
 * Opens the tables of virtual_alias_maps, virtual_alias_domains and
 * virtual_mailbox_maps now (as root, before a chroot). 0, or -1 with
 * *error_r (allocated, caller frees) naming the parameter and the table's
 * error. Calling it again after success does nothing. Users that skip it
 * get the tables opened on first use, and a table that cannot be opened
 * then is fatal (a broken configuration, as at start).
 */
int virtual_alias_tables_init(char **error_r);
/* Closes every table (reload, exit, tests). */
void virtual_alias_tables_free(void);

/* 1 if virtual_alias_maps names a table: recipients may be rewritten. */
int virtual_alias_active(void);

enum virtual_alias_status {
	VIRTUAL_ALIAS_OK,
	VIRTUAL_ALIAS_TEMPFAIL, /* a table could not answer now */
	/* Every address the recipient expands into leads back to one
	 * being expanded (a -> b, b -> a), or the nesting is deeper than
	 * virtual_alias_recursion_limit. */
	VIRTUAL_ALIAS_LOOP,
	/* More than virtual_alias_expansion_limit addresses. */
	VIRTUAL_ALIAS_TOO_MANY,
	/* A value that is not an address: "|command", "/file",
	 * ":include:", or bad syntax; or a value with no address at all.
	 * Virtual aliases never run commands nor write files (only
	 * aliases(5) of local delivery may). */
	VIRTUAL_ALIAS_BAD,
};

struct virtual_alias_expansion {
	enum virtual_alias_status status;
	/* The address itself had an entry (its own key or a catch-all):
	 * smtpd accepts it without a mailbox. */
	int aliased;
	/* With VIRTUAL_ALIAS_OK: the final addresses in the order found,
	 * duplicates (addr_fold) removed; just the address when nothing
	 * matched, and an address that maps to itself stays. Owned. */
	char **addrs;
	int naddr;
	/* Otherwise: what went wrong, for the log (table, addresses). */
	char *detail;
};

/*
 * Expands addr as Postfix's cleanup does: for user@domain the keys are
 * "user@domain", then "user" (only when domain is in $mydestination),
 * then "@domain" (the catch-all); pattern tables (pcre, cidr) see only
 * the whole address. A value is a list of addresses separated by commas
 * or white space, each expanded again; an unqualified one gets
 * @$myorigin. The result is every address reachable so that has no
 * entry of its own or maps to itself. Each distinct address is looked up
 * once, so work is bounded by the distinct addresses met, not by the
 * paths to them; an address met again, also through a cycle, adds
 * nothing: a -> b with b -> a, c gives c (Postfix would expand until
 * its recursion limit and defer the message).
 * Free *x with virtual_alias_expansion_free (also after a failure).
 */
void virtual_alias_expand(const char *addr, struct virtual_alias_expansion *x);
void virtual_alias_expansion_free(struct virtual_alias_expansion *x);
/*
 * The SMTP reply refusing addr for a failed expansion, allocated:
 * "451 4.3.0 <addr>: Temporary lookup failure" (TEMPFAIL), 550 5.4.6
 * (LOOP), 550 5.5.3 (TOO_MANY), 550 5.1.3 (BAD). The client never sees
 * the table's contents; the detail is for the log.
 */
char *virtual_alias_reply(
    const char *addr, const struct virtual_alias_expansion *x);

/*
 * 1 if domain (lower case) is in virtual_alias_domains: a name of the
 * list, or a key of one of its tables (Postfix's default,
 * virtual_alias_domains = $virtual_alias_maps, means that a table line
 * "example.com anything" makes example.com an alias domain). 0 if not,
 * -1 if a table failed (*error_r valid until the next call).
 */
int virtual_alias_domain(const char *domain, const char **error_r);

/* 1 if virtual_mailbox_maps names a table (else the mailbox list rules). */
int virtual_mailbox_active(void);
/*
 * Looks addr (a folded address of a virtual mailbox domain) up in
 * virtual_mailbox_maps: the address, then "@domain". 1 found, with
 * *maildir_r = $virtual_mailbox_base/VALUE and *top_r = the directory of
 * VALUE's first component below the base (both allocated: the caller
 * creates top as the store's owner, delivery the rest); the value must be
 * a relative path ending in '/' (a maildir) without "." or ".."
 * components. 0 not listed. -1 a table failure (tempfail = 1) or an
 * unusable value (tempfail = 0), with *error_r valid until the next call.
 */
int virtual_mailbox_find(const char *addr, char **maildir_r, char **top_r,
    int *tempfail_r, const char **error_r);

#endif
