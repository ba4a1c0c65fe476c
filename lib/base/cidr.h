/* SPDX-License-Identifier: MIT */
/*
 * IPv4 and IPv6 networks in "address/prefix" form (RFC 4632 for IPv4,
 * RFC 4291 2.3 for IPv6), with or without the brackets Postfix writes
 * around IPv6 ("[::1]/128"). A bare address is a host network. The one
 * parser and matcher for every list of networks (mynetworks, cidr:
 * tables).
 */
#ifndef TERN_CIDR_H
#define TERN_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned prefix;
	uint8_t addr[16]; /* network bytes; 4 used for AF_INET */
};

/* "ffff:...:ffff/128" */
#define CIDR_TEXT_SIZE 64

/*
 * 0, or -1 with *error_r (static text): not an address, a bad prefix, or
 * host bits set below the prefix ("non-null host address bits", which
 * usually means a typo; *c_r then holds the network with those bits
 * cleared, for a suggestion).
 */
int cidr_parse(const char *text, struct cidr *c_r, const char **error_r);
/* "address/prefix" (no brackets) into out. */
void cidr_format(const struct cidr *c, char *out, size_t size);
/* Parses a bare address into a host network; 0 or -1. */
int cidr_addr(const char *addr, struct cidr *c_r);
/* 1 if host (a host network from cidr_addr) lies in net. IPv4-mapped
 * IPv6 hosts match IPv4 networks. */
int cidr_match(const struct cidr *net, const struct cidr *host);

#endif
