/* SPDX-License-Identifier: MIT */
/*
 * What the modules of lib/dns built on dns_lookup() (dns_mx.c) need from
 * the resolver beyond dns.h: its loop, and a way to be freed by
 * dns_free() with the resolver, as dns.h promises for every pending
 * handle. Not for use outside lib/dns.
 */
#ifndef TERN_DNS_PRIVATE_H
#define TERN_DNS_PRIVATE_H

#include "base/event.h"
#include "dns/dns.h"

/*
 * Something that lives as long as a request of the resolver: dns_free()
 * unlinks each child still attached and calls its drop(), while the
 * resolver is still usable (drop may dns_cancel() its queries and delete
 * its timers) and before any query is freed. drop frees the child, or, if
 * its callback is running, leaves that to the code around the callback.
 */
struct dns_child {
	void (*drop)(struct dns_child *c);
	struct dns *d; /* NULL once detached */
	struct dns_child *prev, *next;
};

void dns_child_attach(struct dns *d, struct dns_child *c);
/* Unlinks c from its resolver; does nothing if dns_free() already did. */
void dns_child_detach(struct dns_child *c);
struct event_loop *dns_loop(struct dns *d);

#endif
