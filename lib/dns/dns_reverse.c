/* SPDX-License-Identifier: MIT */
/*
 * Names under a reverse zone: the DNSBL query names of RFC 5782 2.1
 * (IPv4: the four octets in reverse) and 2.4 (IPv6: the 32 nibbles in
 * reverse), which are also the PTR names of RFC 1035 3.5 and RFC 3596
 * 2.5 under in-addr.arpa and ip6.arpa. Pure string work, no c-ares.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"

#define DNS_V4_BYTES        4
#define DNS_V6_BYTES        16
/* Where the IPv4 address sits in an IPv4-mapped IPv6 one (RFC 4291 2.5.5.2). */
#define DNS_V4MAPPED_OFFSET 12
/* "f.e. ... .0": 32 nibbles and the 31 dots between them. */
#define DNS_REVERSE_V6_LEN  63

static void
dns_reverse_v4(const unsigned char *b, char *out, size_t outsize)
{
	snprintf(out, outsize, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
}

static void
dns_reverse_v6(const unsigned char *b, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	int i;

	for (i = DNS_V6_BYTES - 1; i >= 0; i--) {
		*p++ = hex[b[i] & 0xf];
		*p++ = '.';
		*p++ = hex[b[i] >> 4];
		*p++ = '.';
	}
	p[-1] = '\0'; /* no dot after the last nibble */
}

int
dns_reverse_name(const char *addr, const char *zone, char *out, size_t outsize)
{
	unsigned char b[DNS_V6_BYTES];
	char rev[DNS_REVERSE_V6_LEN + 1];
	size_t len;
	int n;

	if (outsize > 0)
		out[0] = '\0';
	if (inet_pton(AF_INET, addr, b) == 1)
		dns_reverse_v4(b, rev, sizeof(rev));
	else if (inet_pton(AF_INET6, addr, b) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)b))
			dns_reverse_v4(
			    b + DNS_V4MAPPED_OFFSET, rev, sizeof(rev));
		else
			dns_reverse_v6(b, rev);
	} else
		return -1;
	if (zone != NULL && *zone != '\0')
		n = snprintf(out, outsize, "%s.%s", rev, zone);
	else
		n = snprintf(out, outsize, "%s", rev);
	if (n < 0 || (size_t)n >= outsize) {
		if (outsize > 0)
			out[0] = '\0';
		return -1;
	}
	len = (size_t)n;
	if (len > 0 && out[len - 1] == '.')
		len--;
	if (len > DNS_NAME_MAX) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}
