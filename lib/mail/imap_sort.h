/* SPDX-License-Identifier: MIT */
/*
 * The header-derived keys of IMAP SORT and THREAD (RFC 5256, RFC 5957
 * DISPLAYFROM/DISPLAYTO): pure functions over header values, shared by
 * imapd's SORT and THREAD commands and unit-tested alone.
 *
 * Dovecot 2.3 is the yardstick (the same folder must sort and thread
 * alike in both servers): its base subject rules (lib-imap's
 * imap-base-subject.c), its Message-ID reading (lib-mail message-id.c),
 * its Date: reading (message-date.c) and its first-address rule. One
 * difference: strings are compared under i;ascii-casemap (RFC 5256's
 * collation: ASCII letters upper-cased, other octets as they are), where
 * Dovecot titlecases and decomposes all of Unicode.
 */
#ifndef TERN_IMAP_SORT_H
#define TERN_IMAP_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/*
 * The base subject of RFC 5256 section 2.1 of a Subject: value (NUL-
 * terminated, as read from the header): RFC 2047 words decoded to UTF-8,
 * ASCII letters upper-cased, white space runs made one space, then the
 * "Re:", "Fwd:", "[blob]", "(fwd)" and "[fwd: ...]" rules, as Dovecot
 * applies them. *reply_or_fwd_r is 1 when a reply or forward marker was
 * removed (THREAD=REFERENCES step 5). The caller frees the result.
 */
char *imap_base_subject(const char *subject, int *reply_or_fwd_r);

/*
 * The next message id of a Message-ID:, In-Reply-To: or References:
 * value (NUL-terminated) from *pos on, without its angle brackets and
 * white space ("local@domain"), into out (reset first). Invalid ids
 * ("<foo>", no '@') are skipped, as Dovecot skips them. 1 with the id
 * and *pos moved past it, 0 when there is no other (or out is full).
 */
int imap_msgid_next(const char *value, size_t *pos, struct buf *out);

/*
 * An RFC 5322 Date: value (NUL-terminated) as seconds since the epoch,
 * UTC, read the way Dovecot reads it (obsolete zones, 2-digit years,
 * missing seconds, '.' as time separator, an unknown zone as +0000): 1,
 * or 0 when unparsable (RFC 5256: then the INTERNALDATE counts).
 */
int imap_sent_date(const char *value, int64_t *t_r);

/*
 * The SORT key of an address header value (NUL-terminated): the first
 * address's local part (FROM, TO, CC: RFC 5256 "addr-mailbox"), or with
 * display, its display name RFC 2047-decoded, else "mailbox@domain"
 * (RFC 5957 DISPLAYFROM, DISPLAYTO), ASCII letters upper-cased. "" when
 * there is no address. The caller frees the result.
 */
char *imap_sort_addr_key(const char *value, int display);

#endif
