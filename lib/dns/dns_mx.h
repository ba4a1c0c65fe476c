/* SPDX-License-Identifier: MIT */
/*
 * Where to deliver mail for a domain (RFC 5321 5.1): its MX records in
 * order of preference, equal preferences in random order so that they
 * share the load, and the addresses of each exchanger; the domain's own
 * addresses when it has no MX (implicit MX); RFC 7505's null MX. Built on
 * dns_lookup(), so every lookup goes through the resolver's cache, and
 * callbacks follow the rules of dns.h: from the event loop, never from
 * inside dns_mx_resolve().
 */
#ifndef TERN_DNS_MX_H
#define TERN_DNS_MX_H

#include <sys/socket.h>

#include "dns/dns.h"

struct dns_mx_query;

/* smtp_address_preference: which address families to look up. */
enum dns_addr_pref {
	DNS_ADDR_ANY,
	DNS_ADDR_IPV4,
	DNS_ADDR_IPV6
};

/* "[host]" in Postfix syntax: the name's own addresses, no MX lookup. */
#define DNS_MX_NO_MX 0x1

/* Targets a result holds at most; later ones are dropped. */
#define DNS_MX_TARGETS_MAX 64

struct dns_mx_target {
	/* The exchanger (implicit MX and DNS_MX_NO_MX: the name itself),
	 * without a trailing dot. */
	char host[DNS_NAME_MAX + 1];
	unsigned pref; /* MX preference; implicit MX and literals: 0 */
	/* AF_INET or AF_INET6, port left 0: the caller sets it. */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

enum dns_mx_status {
	DNS_MX_OK,       /* n >= 1 targets */
	DNS_MX_NULL,     /* RFC 7505 null MX: the domain takes no mail */
	DNS_MX_NOTFOUND, /* permanent: no such domain, or no address */
	DNS_MX_TEMPFAIL, /* a DNS failure that may pass */
};

struct dns_mx_result {
	enum dns_mx_status status;
	/*
	 * Enhanced status code (RFC 3463) for the DSN: "5.1.10" null MX
	 * (RFC 7505 3.2), "5.1.2" the domain does not exist (or has neither
	 * MX nor address), "5.4.4" no exchanger has an address, "4.4.3" a
	 * temporary DNS failure; "" for DNS_MX_OK.
	 */
	const char *dsn;
	/*
	 * Postfix-like text for the log and the DSN ("" for DNS_MX_OK), e.g.
	 * "Host or domain name not found. Name service error for
	 * name=x.test type=MX: Host not found" (", try again" when
	 * temporary) or "mail for x.test is refused by a null MX (RFC
	 * 7505)". Names from DNS in it are printable ASCII.
	 */
	const char *reason;
	const char *domain; /* as given */
	/* DNS_MX_OK: the targets in delivery order: by MX preference, each
	 * exchanger's addresses together (IPv6 first under DNS_ADDR_ANY),
	 * at most DNS_MX_TARGETS_MAX. */
	int n;
	const struct dns_mx_target *t;
	/*
	 * DNS_MX_OK: the best preference among the MX records, also of
	 * exchangers left out for want of an address (0 for an implicit MX
	 * or a literal); below t[0].pref when the best ones had none (the
	 * MX loop rule must then not take this host for the primary).
	 */
	unsigned best_pref;
};

/* Everything in r lives until the callback returns; copy what you keep. */
typedef void dns_mx_cb(const struct dns_mx_result *r, void *ctx);

/*
 * Starts resolving the mail destination domain (a name, absolute; or an
 * address literal "1.2.3.4", "[1.2.3.4]", "[IPv6:2001:db8::1]", which is
 * its own single target without DNS) through resolver d. flags:
 * DNS_MX_NO_MX or 0. pref picks the address records asked for each
 * exchanger: DNS_ADDR_ANY both AAAA and A, DNS_ADDR_IPV4 only A,
 * DNS_ADDR_IPV6 only AAAA.
 *
 * The MX lookup decides: NXDOMAIN is DNS_MX_NOTFOUND 5.1.2; no MX data
 * means the domain itself is the exchanger (RFC 5321 5.1; if it has no
 * address either: 5.1.2); one MX of "." is DNS_MX_NULL; SERVFAIL, a
 * timeout and the like are DNS_MX_TEMPFAIL. Then the addresses of every
 * exchanger are asked at once. An exchanger whose lookups fail is
 * skipped, and so is one named by an IP literal (not a host name: RFC
 * 5321 5.1) or a repeated one; when no exchanger has an address the
 * result is DNS_MX_TEMPFAIL 4.4.3 if some lookup failed temporarily,
 * else DNS_MX_NOTFOUND 5.4.4. CNAMEs on the way are followed by the
 * server.
 *
 * cb(result, ctx) is called exactly once, from the event loop, unless the
 * request is cancelled or the resolver freed first. Never returns NULL;
 * the handle is valid until the callback starts (not inside it) or
 * dns_mx_cancel(). Memory is bounded by DNS_RR_MAX exchangers and
 * DNS_MX_TARGETS_MAX targets.
 */
struct dns_mx_query *dns_mx_resolve(struct dns *d, const char *domain,
    int flags, enum dns_addr_pref pref, dns_mx_cb *cb, void *ctx);

/*
 * Drops a request and the lookups it has out: its callback is never
 * called. Safe from inside any callback (also the request's own, where it
 * does nothing), NULL-safe, sets *q_r to NULL.
 */
void dns_mx_cancel(struct dns_mx_query **q_r);

/* Text for a status ("ok", "null MX", ...), for logs. */
const char *dns_mx_status_str(enum dns_mx_status status);

#endif
