/* SPDX-License-Identifier: MIT */
/*
 * Envelope addresses (RFC 5321 4.1.2): parsing of <path> arguments with
 * their ESMTP parameters, and splitting. Limits from RFC 5321 4.5.3.1:
 * local part 64, domain 255, path 256 octets.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX	256

#define ADDR_EMPTY_OK	0x1	/* <> is allowed (MAIL FROM) */
#define ADDR_UTF8_OK	0x2	/* UTF-8 local parts and U-labels (RFC 6531) */

/* The *error_r of a path with 8-bit bytes without ADDR_UTF8_OK (the
 * caller answers 553 5.6.7); compare the pointer. */
extern const char addr_err_needs_utf8[];

/*
 * Parses "<addr> params..." (MAIL FROM:/RCPT TO: argument after the
 * colon, leading spaces allowed). Accepts <> only with ADDR_EMPTY_OK,
 * 8-bit bytes only with ADDR_UTF8_OK (and then only valid UTF-8). Strips a
 * source route (<@a,@b:user@d>). Quoted local parts are kept as given.
 * *addr_r is malloc'd, without the brackets; *params_r points into s at
 * the ESMTP parameters (spaces skipped; "" if none). Returns 0, or -1
 * with *error_r a short client-facing reason ("missing <", "address too
 * long", addr_err_needs_utf8, ...). Limits are in octets (RFC 6531 3.3).
 */
int addr_parse_path(const char *s, unsigned flags, char **addr_r,
    const char **params_r, const char **error_r);
/*
 * Splits addr at the last '@' outside a quoted local part into malloc'd
 * local part (as given) and lower-cased domain; an address without such
 * an '@' ("root", "\"root@localhost\"") gives domain NULL. 0 or -1 if
 * either part is empty or too long.
 */
int addr_split(const char *addr, char **local_r, char **domain_r);
/*
 * The one case rule for local parts of local and virtual domains (as
 * Postfix folds them): a quoted local part loses its quoting
 * ("Alice" -> Alice) and ASCII letters are lower-cased. Malloc'd.
 */
char *addr_local_fold(const char *local);
/*
 * The whole address in that form, the domain lower-cased: the key under
 * which two recipients are the same mailbox (duplicate removal). Quotes
 * that matter (the local part holds '@', a space, ...) are kept, so that
 * no two different mailboxes share a key. Malloc'd.
 */
char *addr_fold(const char *addr);
/* 1 if s is a syntactically valid domain or address literal [1.2.3.4]. */
int addr_domain_valid(const char *s);
/*
 * "user+ext@domain" without its extension ("user@domain"), split at the
 * first of $recipient_delimiter's characters in the local part; NULL when
 * there is none (or nothing before it). Caller frees.
 */
char *addr_strip_extension(const char *addr);

#endif
