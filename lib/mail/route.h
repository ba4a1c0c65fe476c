/* SPDX-License-Identifier: MIT */
/*
 * Where the queue manager sends a recipient: (transport, nexthop), as
 * Postfix's trivial-rewrite resolves it. The address class (resolve.h)
 * picks the default: $local_transport for $mydestination,
 * $virtual_transport for $virtual_mailbox_domains, error:5.1.1 for a
 * virtual alias domain address without an alias, $relay_transport for
 * $relay_domains and $default_transport for the rest, with $relayhost as
 * the nexthop of the last two when it is set. $transport_maps then
 * overrides, looked up (transport(5)) by the whole address, by the
 * domain, by each parent ".domain", and by "*". A table value is
 * "transport:nexthop"; an empty half keeps the default's.
 * The built-in transports "error" (bounce, the nexthop is the text),
 * "retry" (defer, likewise) and "discard" never reach a socket.
 */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include "mail/resolve.h"

struct route {
	char *transport; /* "local", "smtp", "error", ... */
	char *nexthop;   /* host, [host]:port, domain, or error text */
	enum resolve_class class;
};

/*
 * Opens $transport_maps. 0, or -1 with *error_r (allocated) for a table
 * that cannot be opened or a malformed transport parameter.
 */
int route_init(char **error_r);
void route_shutdown(void);
/*
 * 0 with *r filled (free with route_free); -1 for an address that cannot
 * be parsed; -2 when a table cannot answer now (*error_r, static until
 * the next call): try again later.
 */
int route_address(const char *addr, struct route *r, const char **error_r);
void route_free(struct route *r);

#endif
