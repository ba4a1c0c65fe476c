/* SPDX-License-Identifier: MIT */
/*
 * A bounded walk over a DNS answer packet for what c-ares 1.18 leaves
 * out: the TTL of every record (it reports them for A and AAAA only), the
 * RCODE (NXDOMAIN against "no data") and the SOA in the authority
 * section that says how long a negative answer may be cached. The packet
 * comes from the network: every offset is checked against its length
 * before a read, and names are skipped label by label without following
 * compression pointers, so a hostile packet can neither make us read
 * outside it nor loop.
 *
 * RFC 1035 4.1 (message format), 3.3.13 (SOA), RFC 2181 8 (TTLs),
 * RFC 2308 3 and 5 (negative caching).
 */
#include <string.h>

#include "dns/dns_packet.h"

/* RFC 1035 4.1.1: the header is 12 octets. */
#define DNS_HEADER_LEN    12
/* RFC 1035 4.1.2: QTYPE and QCLASS after the name. */
#define DNS_QFIXED_LEN    4
/* RFC 1035 4.1.3: TYPE, CLASS, TTL, RDLENGTH after the owner name. */
#define DNS_RRFIXED_LEN   10
/* RFC 1035 2.3.4: a name is at most 255 octets on the wire. */
#define DNS_WIRE_NAME_MAX 255
#define DNS_PTR_MASK      0xc0
#define DNS_QR_BIT        0x80
#define DNS_RCODE_MASK    0x0f
#define DNS_TYPE_SOA      6
#define DNS_CLASS_IN      1
/* SOA RDATA after the two names: SERIAL REFRESH RETRY EXPIRE MINIMUM. */
#define DNS_SOA_FIXED_LEN 20
#define DNS_SOA_MIN_OFF   16
/* RFC 2181 8: a TTL is 31 bits; one with the top bit set means 0. */
#define DNS_TTL_TOP_BIT   0x80000000u

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t
ttl_value(uint32_t ttl)
{
	return (ttl & DNS_TTL_TOP_BIT) ? 0 : ttl;
}

/*
 * Moves *off past the name at p[*off] within p[0..end): labels up to the
 * root label or up to a compression pointer (whose target is not
 * visited). 0, or -1 if it runs past end, is longer than 255 octets or
 * uses a reserved label type (RFC 1035 4.1.4, RFC 6891 5).
 */
static int
skip_name(const unsigned char *p, size_t end, size_t *off)
{
	size_t o = *off, total = 0;
	unsigned c;

	for (;;) {
		if (o >= end)
			return -1;
		c = p[o];
		if ((c & DNS_PTR_MASK) == DNS_PTR_MASK) {
			if (end - o < 2)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (c & DNS_PTR_MASK)
			return -1;
		total += c + 1;
		if (total > DNS_WIRE_NAME_MAX)
			return -1;
		if (c == 0) {
			*off = o + 1;
			return 0;
		}
		o += c + 1;
	}
}

/* The fixed part of the record at *off, moving *off to its RDATA. */
static int
read_rr(const unsigned char *p, size_t len, size_t *off, unsigned *type_r,
    unsigned *class_r, uint32_t *ttl_r, size_t *rdlen_r)
{
	if (skip_name(p, len, off) < 0 || len - *off < DNS_RRFIXED_LEN)
		return -1;
	*type_r = get16(p + *off);
	*class_r = get16(p + *off + 2);
	*ttl_r = ttl_value(get32(p + *off + 4));
	*rdlen_r = get16(p + *off + 8);
	*off += DNS_RRFIXED_LEN;
	if (len - *off < *rdlen_r)
		return -1;
	return 0;
}

/* The negative TTL of an SOA whose RDATA is p[off..off + rdlen). */
static int
soa_neg_ttl(const unsigned char *p, size_t off, size_t rdlen, uint32_t ttl,
    uint32_t *neg_r)
{
	size_t end = off + rdlen;
	uint32_t minimum;

	if (skip_name(p, end, &off) < 0 || skip_name(p, end, &off) < 0 ||
	    end - off < DNS_SOA_FIXED_LEN)
		return -1;
	minimum = ttl_value(get32(p + off + DNS_SOA_MIN_OFF));
	*neg_r = minimum < ttl ? minimum : ttl;
	return 0;
}

int
dns_packet_scan(
    const unsigned char *p, size_t len, unsigned qtype, struct dns_packet *pk_r)
{
	unsigned qdcount, ancount, nscount, i, type, class;
	size_t off = DNS_HEADER_LEN, rdlen;
	uint32_t ttl;

	memset(pk_r, 0, sizeof(*pk_r));
	if (len < DNS_HEADER_LEN || !(p[2] & DNS_QR_BIT))
		return -1;
	pk_r->rcode = p[3] & DNS_RCODE_MASK;
	qdcount = get16(p + 4);
	ancount = get16(p + 6);
	nscount = get16(p + 8);
	/* c-ares only accepts answers to its one question */
	if (qdcount != 1)
		return -1;
	if (skip_name(p, len, &off) < 0 || len - off < DNS_QFIXED_LEN)
		return -1;
	off += DNS_QFIXED_LEN;

	for (i = 0; i < ancount; i++) {
		if (read_rr(p, len, &off, &type, &class, &ttl, &rdlen) < 0)
			return -1;
		if (pk_r->answers == 0 || ttl < pk_r->answer_ttl)
			pk_r->answer_ttl = ttl;
		pk_r->answers++;
		if (type == qtype && class == DNS_CLASS_IN) {
			if (pk_r->n < DNS_PACKET_TTLS_MAX)
				pk_r->ttl[pk_r->n++] = ttl;
			pk_r->n_seen++;
		}
		off += rdlen;
	}
	for (i = 0; i < nscount; i++) {
		if (read_rr(p, len, &off, &type, &class, &ttl, &rdlen) < 0)
			return -1;
		if (type == DNS_TYPE_SOA && class == DNS_CLASS_IN &&
		    !pk_r->has_soa &&
		    soa_neg_ttl(p, off, rdlen, ttl, &pk_r->neg_ttl) == 0)
			pk_r->has_soa = 1;
		off += rdlen;
	}
	/* The additional section is not needed: not read. */
	return 0;
}
