/* SPDX-License-Identifier: MIT */
/*
 * The addresses of an address-list header field (RFC 5322 3.4: To, Cc,
 * Bcc and their Resent- forms), as "sendmail -t" extracts recipients:
 * display names, comments (nested), quoted strings, angle addresses
 * with or without a source route, groups ("list: a, b;") and folding
 * white space are understood; each address comes out as its addr-spec
 * in external form (quoted local parts kept as written, no white space
 * outside quotes), the form RFC 5321 paths take.
 *
 * Lenient like Postfix's tok822: an unterminated quote, comment or
 * literal runs to the end of the value, a missing '>' ends at the next
 * ',' and text that is no address yields what it spells. Bounded: an
 * address longer than RFC822_ADDR_LEN_MAX and more than the caller's
 * maximum number of addresses are errors, and the input is read once.
 */
#ifndef TERN_RFC822_ADDR_H
#define TERN_RFC822_ADDR_H

#include <stddef.h>

/* Longest address taken from a header (RFC 5322 2.1.1's line limit). */
#define RFC822_ADDR_LEN_MAX 998

/* Called with each address (NUL-terminated, len bytes, never empty). */
typedef void rfc822_addr_fn(void *ctx, const char *addr, size_t len);

/*
 * Parses value (len bytes, a header's text after the colon, CR and LF
 * of folded lines included) and calls fn for each address, at most max
 * times. Returns the number of addresses, or -1 with *error_r (static
 * text) for an address longer than RFC822_ADDR_LEN_MAX or more than
 * max addresses; fn may have been called before that.
 */
int rfc822_addr_list(const char *value, size_t len, size_t max,
    rfc822_addr_fn *fn, void *ctx, const char **error_r);

#endif
