/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/cidr.h"
#include "base/str.h"


static int
cidr_host(const char *text, size_t len, struct cidr *c)
{
	char tmp[CIDR_TEXT_SIZE];

	if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
		text++;
		len -= 2;
		if (memchr(text, ':', len) == NULL)
			return -1;
	}
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, text, len);
	tmp[len] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, tmp, c->addr) == 1) {
		c->family = AF_INET;
		c->prefix = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
		c->family = AF_INET6;
		c->prefix = 128;
		return 0;
	}
	return -1;
}

int
cidr_addr(const char *addr, struct cidr *c_r)
{
	return cidr_host(addr, strlen(addr), c_r);
}

int
cidr_parse(const char *text, struct cidr *c_r, const char **error_r)
{
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	uint64_t prefix;
	unsigned i, bits;
	int host_bits = 0;

	if (cidr_host(text, len, c_r) < 0) {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	if (slash == NULL)
		return 0;
	if (str_to_u64(slash + 1, c_r->family == AF_INET ? 32 : 128,
	        &prefix) < 0) {
		*error_r = "bad network prefix length";
		return -1;
	}
	c_r->prefix = (unsigned)prefix;
	for (i = 0; i < (c_r->family == AF_INET ? 4u : 16u); i++) {
		bits = i * 8 >= prefix ? 0
		       : i * 8 + 8 <= prefix
		           ? 8
		           : (unsigned)prefix - i * 8;
		if ((c_r->addr[i] & (uint8_t)(0xff >> bits)) != 0) {
			host_bits = 1;
			c_r->addr[i] &= (uint8_t)~(0xff >> bits);
		}
	}
	if (host_bits) {
		*error_r = "non-null host address bits";
		return -1;
	}
	return 0;
}

void
cidr_format(const struct cidr *c, char *out, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
		addr[0] = '\0';
	snprintf(out, size, "%s/%u", addr, c->prefix);
}

int
cidr_match(const struct cidr *net, const struct cidr *host)
{
	static const uint8_t v4mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *h = host->addr;
	unsigned full, rest;

	if (net->family == AF_INET && host->family == AF_INET6 &&
	    memcmp(host->addr, v4mapped, sizeof(v4mapped)) == 0)
		h = host->addr + sizeof(v4mapped);
	else if (net->family != host->family)
		return 0;
	full = net->prefix / 8;
	rest = net->prefix % 8;
	if (memcmp(net->addr, h, full) != 0)
		return 0;
	return rest == 0 ||
	       ((net->addr[full] ^ h[full]) & (uint8_t)(0xff << (8 - rest))) ==
	           0;
}
