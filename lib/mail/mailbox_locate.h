/* SPDX-License-Identifier: MIT */
/*
 * Where an address's mailbox is and who owns it, by the rules local
 * delivery writes by, so that a POP3 or IMAP session opens the maildir
 * that delivery fills:
 *
 *   a domain of $virtual_mailbox_domains: $vmail_user, and the maildir
 *     that virtual_mailbox_maps gives, else
 *     $virtual_mailbox_base/DOMAIN/USER/Maildir;
 *   a domain of $mydestination (or none): the system user named by the
 *     local part (getpwnam), ~/$home_mailbox.
 *
 * A mailbox owned by uid 0 is never located (root's mail is aliased to a
 * user; a session as root would undo the privilege split).
 */
#ifndef TERN_MAILBOX_LOCATE_H
#define TERN_MAILBOX_LOCATE_H

#include <sys/types.h>

struct mailbox_location {
	char *owner;   /* the owner's login name */
	uid_t uid;
	gid_t gid;
	int is_virtual; /* 1: $vmail_user (its primary group only); 0: a
			 * system user (initgroups) */
	char *maildir; /* absolute, without a trailing '/' */
};

/*
 * addr: a full address (as auth answers it). 1 with *loc filled (free
 * with mailbox_location_free), 0 when addr has no mailbox here (not a
 * local or virtual domain, no such system user, an unusable name, uid
 * 0), -1 for a temporary failure (a table or the user database did not
 * answer); *error_r says why (static, valid until the next call).
 */
int mailbox_locate(const char *addr, struct mailbox_location *loc,
    const char **error_r);
void mailbox_location_free(struct mailbox_location *loc);

/*
 * The maildir of a virtual address (folded, of a $virtual_mailbox_domains
 * domain: local and domain are its parts): virtual_mailbox_maps when set
 * (the address, then @domain), else $virtual_mailbox_base/DOMAIN/USER/
 * Maildir/. 1 with *maildir_r (ends in '/') and *top_r (the directory
 * delivery creates as the store's owner), both allocated; 0 not listed
 * in the table; -1 a table failure (*tempfail_r = 1) or an unusable
 * name or value (*tempfail_r = 0), with *error_r.
 */
int mailbox_virtual_path(const char *addr, const char *local,
    const char *domain, char **maildir_r, char **top_r, int *tempfail_r,
    const char **error_r);

#endif
