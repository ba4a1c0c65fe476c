/* SPDX-License-Identifier: MIT */
/*
 * Lists of client networks in $mynetworks syntax, shared by every
 * parameter that names trusted or exempt clients (mynetworks,
 * smtpd_client_event_limit_exceptions): words separated by commas or
 * spaces, each an address, an address/prefix (IPv6 with or without
 * Postfix's brackets), or a type:table looked up with the client
 * address (found = in the list). "!" before a word excludes what it
 * matches. The first word that matches decides.
 */
#ifndef TERN_NETLIST_H
#define TERN_NETLIST_H

struct netlist;

/* NULL with *error_r (allocated) naming param and the bad word. */
struct netlist *netlist_create(
    const char *value, const char *param, char **error_r);
void netlist_free(struct netlist **l_r);
/*
 * 1 if addr (a bare IPv4 or IPv6 address) is in the list, 0 if not or if
 * it is no address. A table that cannot answer counts as no match and is
 * logged: a trust list fails closed.
 */
int netlist_match(struct netlist *l, const char *addr);

#endif
