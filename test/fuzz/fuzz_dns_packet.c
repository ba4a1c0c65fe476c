/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: dns_packet_scan() (lib/dns/dns_packet.c), the walk
 * over a raw DNS answer for record TTLs, the RCODE and the RFC 2308 SOA
 * that lib/dns does itself because c-ares 1.18 does not. The packet comes
 * from the network. Checked: it never reads outside the packet (a heap
 * copy of exactly its size, under ASan); the result is within its bounds
 * (TTLs of 31 bits, at most DNS_PACKET_TTLS_MAX kept, counts that add
 * up, the smallest answer TTL no larger than any kept); the same input
 * gives the same result; and where c-ares' own MX parser accepts the
 * packet too, both see the same number of MX records (dns.c pairs the
 * i-th TTL with c-ares' i-th record).
 *
 * Input: byte 0 picks the type asked (A, AAAA, MX, TXT); the rest is
 * the packet.
 */
#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_packet.h"
#include "fuzz_util.h"

#define TTL_MAX 0x7fffffffu

static const unsigned types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT};

static int
mx_count(const unsigned char *p, size_t len, int *n_r)
{
	struct ares_mx_reply *mx = NULL, *m;
	int n = 0;

	if (ares_parse_mx_reply(p, (int)len, &mx) != ARES_SUCCESS)
		return -1;
	for (m = mx; m != NULL; m = m->next)
		n++;
	ares_free_data(mx);
	*n_r = n;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_packet a, b;
	unsigned char *p;
	unsigned qtype;
	size_t len;
	int ra, rb, i, n;

	if (size < 1)
		return 0;
	qtype = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	len = size - 1;
	p = xmalloc(len > 0 ? len : 1);
	memcpy(p, data + 1, len);

	ra = dns_packet_scan(p, len, qtype, &a);
	FUZZ_CHECK(ra == 0 || ra == -1);
	FUZZ_CHECK(a.n >= 0 && a.n <= DNS_PACKET_TTLS_MAX);
	FUZZ_CHECK(a.n <= a.n_seen && a.n_seen <= a.answers);
	FUZZ_CHECK(a.n == a.n_seen || a.n == DNS_PACKET_TTLS_MAX);
	FUZZ_CHECK(a.rcode >= 0 && a.rcode <= 15);
	FUZZ_CHECK(a.answer_ttl <= TTL_MAX && a.neg_ttl <= TTL_MAX);
	FUZZ_CHECK(a.has_soa || a.neg_ttl == 0);
	FUZZ_CHECK(a.answers > 0 || a.answer_ttl == 0);
	for (i = 0; i < a.n; i++)
		FUZZ_CHECK(a.ttl[i] <= TTL_MAX && a.ttl[i] >= a.answer_ttl);

	rb = dns_packet_scan(p, len, qtype, &b);
	FUZZ_CHECK(ra == rb && memcmp(&a, &b, sizeof(a)) == 0);

	if (ra == 0 && qtype == DNS_T_MX && mx_count(p, len, &n) == 0)
		FUZZ_CHECK(n == a.n_seen);
	free(p);
	return 0;
}
