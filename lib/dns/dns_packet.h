/* SPDX-License-Identifier: MIT */
/*
 * The few facts lib/dns needs from a raw DNS answer that c-ares 1.18 does
 * not report: the RCODE, every record's TTL (c-ares gives them for A and
 * AAAA only) and the negative-caching TTL of RFC 2308. Internal to
 * lib/dns (and its fuzz target); callers use dns.h.
 */
#ifndef TERN_DNS_PACKET_H
#define TERN_DNS_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

/* TTLs of the records of the type asked kept, one more than dns.c keeps
 * records, so that the i-th TTL always matches the i-th record c-ares
 * returns. */
#define DNS_PACKET_TTLS_MAX (DNS_RR_MAX + 1)
/* RFC 1035 4.1.1 RCODEs. */
#define DNS_RCODE_NOERROR   0
#define DNS_RCODE_NXDOMAIN  3

struct dns_packet {
	int rcode;
	/* Records in the answer section (any type: CNAMEs count). */
	int answers;
	/* The smallest TTL of those (0 if there are none). */
	uint32_t answer_ttl;
	/*
	 * The records of the type asked (class IN) in answer order, as
	 * c-ares' parsers take them; n is at most DNS_PACKET_TTLS_MAX,
	 * more are counted in n_seen only.
	 */
	int n, n_seen;
	uint32_t ttl[DNS_PACKET_TTLS_MAX];
	/* RFC 2308 5: an SOA in the authority section makes a negative
	 * answer cacheable for min(SOA TTL, SOA MINIMUM). */
	int has_soa;
	uint32_t neg_ttl;
};

/*
 * Walks the header, the question and the answer and authority sections
 * of the packet p[0..len) for the record type qtype (RFC 1035 4.1),
 * filling *pk_r. Never reads outside p, trusts no count or length in it
 * (each record costs at least its fixed 10 bytes, so the walk is bounded
 * by len) and follows no compression pointer (names are only skipped).
 * A TTL with the top bit set counts as 0 (RFC 2181 8). Returns 0, or -1
 * if the packet is malformed or not a response to one question (then
 * *pk_r holds what was read before the error, and nothing of it should
 * be trusted).
 */
int dns_packet_scan(const unsigned char *p, size_t len, unsigned qtype,
    struct dns_packet *pk_r);

#endif
