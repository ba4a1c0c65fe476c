/* SPDX-License-Identifier: MIT */
/*
 * DNS for tern: the one place that knows c-ares. A resolver lives in one
 * event loop (base/event.h) and never blocks it: c-ares' sockets are
 * watched by the loop, its retransmissions run on one loop timer, and
 * every query has a deadline of its own after which its callback reports
 * DNS_TEMPFAIL, whatever c-ares is still trying. Used by smtpd for DNSBL
 * checks (A and TXT under a zone, RFC 5782) and by the SMTP client for MX,
 * A and AAAA (RFC 5321 5.1).
 *
 * Names are absolute: no search list, no /etc/hosts, no HOSTALIASES.
 * Answers are copied out of the packet and capped (DNS_RR_MAX records,
 * DNS_TXT_MAX bytes of text), so a hostile server costs bounded memory.
 *
 * Answers are cached per resolver by (name without case, type) for their
 * TTL (RFC 1035 7.3, RFC 2308 for NXDOMAIN and NODATA; never failures),
 * within DNS_CACHE_MAX entries and DNS_CACHE_TTL_MAX seconds.
 *
 * Callbacks run from the event loop, never from inside dns_lookup(), so a
 * caller may finish setting up its state after dns_lookup() returns. From
 * inside a callback it is safe to call dns_lookup(), dns_cancel() (on any
 * query) and dns_free().
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "base/event.h"

struct dns;
struct dns_query;

/* RFC 1035 2.3.4: 255 octets on the wire are 253 characters of text. */
#define DNS_NAME_MAX       253
/* Records kept per answer; the rest are dropped (dns_answer.truncated). */
#define DNS_RR_MAX         64
/* Bytes of one TXT record kept (its strings joined); a DNSBL reason fits. */
#define DNS_TXT_MAX        512
/* dns_create()'s timeout_ms range: a query's whole deadline. */
#define DNS_TIMEOUT_MIN_MS 10
#define DNS_TIMEOUT_MAX_MS 600000
/* Servers a dns_create() list may name. */
#define DNS_SERVERS_MAX    16
/* Room for one dns_create() failure text. */
#define DNS_ERROR_MAX      256
/*
 * The answer cache of a resolver: at most DNS_CACHE_MAX answers (the
 * oldest stored goes first), each kept at most DNS_CACHE_TTL_MAX seconds
 * whatever its TTL says.
 */
#define DNS_CACHE_MAX      1000
#define DNS_CACHE_TTL_MAX  86400

/* Query types: the RR TYPE numbers of RFC 1035 3.2.2 and RFC 3596. */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
};

enum dns_status {
	DNS_OK,       /* n >= 1 records */
	DNS_NOTFOUND, /* NXDOMAIN, or no data of that type (see nxdomain) */
	DNS_TEMPFAIL, /* deadline, SERVFAIL, REFUSED, no server, bad packet */
	DNS_FAIL,     /* permanent: a bad name, FORMERR */
};

/*
 * One record. Only the fields of the query's type are set. ttl is the
 * record's TTL in seconds (for A and AAAA reached through CNAMEs, the
 * smallest of the chain), less the time spent in the cache.
 */
struct dns_rr {
	uint32_t ttl;
	struct in_addr a;     /* DNS_T_A */
	struct in6_addr aaaa; /* DNS_T_AAAA */
	unsigned mx_pref;     /* DNS_T_MX: preference, lower first */
	/*
	 * DNS_T_MX: the exchange, no trailing dot; "" is RFC 7505's null MX
	 * ("this domain takes no mail").
	 */
	const char *mx_host;
	/*
	 * DNS_T_TXT: the record's character-strings joined, at most
	 * DNS_TXT_MAX bytes, NUL bytes replaced by '?'. Untrusted text from
	 * the network: pass it through log_sanitize() before logging it or
	 * quoting it in a reply.
	 */
	const char *txt;
	size_t txt_len;
};

/*
 * What a callback gets. Everything in it, rr included, belongs to the
 * library and lives until the callback returns; copy what you keep.
 */
struct dns_answer {
	enum dns_status status;
	/* "" for DNS_OK, else static text for the log ("timeout", ...). */
	const char *error;
	const char *name; /* the name asked, as given */
	enum dns_type type;
	int n; /* records in rr (0 unless DNS_OK) */
	/* MX records sorted by preference (equal ones in answer order). */
	const struct dns_rr *rr;
	int truncated; /* more than DNS_RR_MAX came; those were dropped */
	/*
	 * DNS_NOTFOUND only: 1 if the name does not exist (NXDOMAIN: a
	 * permanent "no such domain"), 0 if it exists but has no record of
	 * this type (NODATA, RFC 2308 2.2).
	 */
	int nxdomain;
	/*
	 * Seconds the answer is good for: the smallest TTL of the answer's
	 * records (CNAMEs included), or for DNS_NOTFOUND the negative TTL of
	 * RFC 2308 5 (0 when the server sent no SOA); at most
	 * DNS_CACHE_TTL_MAX. 0 for failures. What the cache keeps it by.
	 */
	uint32_t ttl;
	int cached; /* 1 if it came from the resolver's cache */
};

typedef void dns_cb(const struct dns_answer *a, void *ctx);

/*
 * Makes a resolver that runs in loop. servers: NULL, "" or only
 * separators for the nameservers of /etc/resolv.conf (read now, once:
 * create before a chroot); else a list separated by commas or spaces of at most
 * DNS_SERVERS_MAX entries "ipv4", "ipv4:port", "ipv6", "[ipv6]" or
 * "[ipv6]:port" (addresses only, no names; port 53 unless given).
 * timeout_ms (DNS_TIMEOUT_MIN_MS..DNS_TIMEOUT_MAX_MS) is each query's
 * whole deadline, retries to every server included.
 * Returns the resolver, or NULL with *error_r set to a message in a
 * thread-local buffer valid until the next dns_create() in the thread.
 */
struct dns *dns_create(struct event_loop *loop, const char *servers,
    unsigned timeout_ms, const char **error_r);

/*
 * Frees the resolver, its cache and its sockets; sets *d_r to NULL;
 * NULL-safe. The callbacks of queries still pending (dns_lookup() and
 * dns_mx_resolve() ones) are NOT called, and their handles become invalid
 * (the caller drops them with the resolver).
 * Safe from inside a callback of this resolver. Must come before
 * event_loop_free() of its loop.
 */
void dns_free(struct dns **d_r);

/*
 * Starts a query for name (absolute: never searched; a trailing dot is
 * optional) of type, in class IN, or takes it from the cache.
 * cb(answer, ctx) is called exactly once,
 * from the event loop and never before dns_lookup() returns, unless the
 * query is cancelled or the resolver freed first. A name that is empty,
 * longer than DNS_NAME_MAX, has an empty label or one longer than 63
 * (RFC 1035 2.3.4), or contains a byte outside printable ASCII or a
 * backslash gets DNS_FAIL that way too. Never returns NULL; the handle is
 * valid until the callback starts (not inside it) or dns_cancel().
 * An unknown type is a bug (msg_panic).
 */
struct dns_query *dns_lookup(
    struct dns *d, const char *name, enum dns_type type, dns_cb *cb, void *ctx);

/*
 * Drops interest in a query: its callback is never called. Safe from
 * inside any callback (also the query's own, where it does nothing),
 * NULL-safe, sets *q_r to NULL. c-ares may still be waiting for the
 * answer; the library keeps what it needs until then.
 */
void dns_cancel(struct dns_query **q_r);

/*
 * The name to look up for address addr in a DNSBL-style zone (RFC 5782
 * 2.1, 2.4): "2.0.0.127.zone" for 127.0.0.2, and for IPv6 the 32 nibbles
 * of the address in reverse, dot-separated, then the zone. An IPv4-mapped
 * IPv6 address ("::ffff:127.0.0.2") is treated as the IPv4 address.
 * zone NULL or "" gives just the reversed part ("in-addr.arpa" makes a
 * PTR name). Writes a NUL-terminated name to out and returns 0, or -1 if
 * addr is not an address or the name is longer than DNS_NAME_MAX (one
 * trailing dot aside) or outsize.
 */
int dns_reverse_name(
    const char *addr, const char *zone, char *out, size_t outsize);

/* Human text for a status ("ok", "not found", ...), for logs. */
const char *dns_status_str(enum dns_status status);

#endif
