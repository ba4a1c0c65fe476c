/* SPDX-License-Identifier: MIT */
/*
 * 8-bit to 7-bit conversion of a message for a peer that does not offer
 * 8BITMIME (RFC 6152 3: the client must convert or bounce), as Postfix's
 * downgrade does: text whose body carries 8-bit bytes is re-encoded as
 * quoted-printable (RFC 2045 6.7), walking multipart (RFC 2046 5.1)
 * and message/rfc822 (RFC 2046 5.2.1) parts; what cannot be converted
 * without changing its meaning fails, and the delivery agent bounces it
 * with 5.6.3.
 */
#ifndef TERN_MIME_7BIT_H
#define TERN_MIME_7BIT_H

#include <stddef.h>
#include "base/buf.h"

/* Nesting of multipart and message/rfc822 parts the converter walks
 * into; a message that needs conversion deeper than this fails. */
#define MIME_7BIT_DEPTH_MAX 20
/* RFC 2046 5.1.1 allows 70; a longer boundary parameter counts as
 * missing (its multipart cannot be walked). */
#define MIME_BOUNDARY_MAX   200
/* RFC 2045 6.7 (5): encoded lines are at most 76 characters. */
#define MIME_QP_LINE_MAX    76

/* 1 if msg[0..len) has a byte >= 0x80 (only then is conversion due). */
int mime_has_8bit(const char *msg, size_t len);

/*
 * msg: the whole message as the queue stores it (CRLF line endings, not
 * dot-stuffed). Appends a 7-bit version to out and returns 0, or
 * returns -1 with *error_r (static text) when it cannot be done without
 * changing the meaning; out is then as it was.
 *
 * Every part (a message without MIME is one text part) whose body has a
 * byte >= 0x80 and whose Content-Transfer-Encoding is absent, 7bit or
 * 8bit gets its body re-encoded as quoted-printable (hard line breaks
 * where the body had CRLF; a bare CR or LF in such a body is encoded
 * as =0D / =0A) and its Content-Transfer-Encoding header replaced by
 * (or given) "quoted-printable"; a message (the top level, or the body
 * of a message/rfc822 part) whose own body is so re-encoded gets
 * "MIME-Version: 1.0" if it had none. multipart parts are walked
 * along their boundary, message/rfc822 parts as nested messages; the
 * Content-Transfer-Encoding "8bit" of such a composite part becomes
 * "7bit". Everything that holds no 8-bit byte is copied byte for byte,
 * so a message without any comes out identical.
 *
 * Fails for: an 8-bit byte in a header; 8-bit data under
 * Content-Transfer-Encoding binary, base64, quoted-printable or an
 * unknown one; 8-bit data in a message part other than
 * message/rfc822, in a multipart without a usable boundary, or in a
 * multipart's preamble or epilogue (text no reader sees, but nothing
 * would make it 7-bit without changing the bytes); nesting deeper than
 * MIME_7BIT_DEPTH_MAX where 8-bit data lies; out reaching its maximum.
 * Quoted-printable makes a body at most about 3.2 times as long, and
 * each converted part gains a header line or two (about 70 bytes), so
 * real mail grows by less than 3.2 times plus a little; made-up input
 * of many tiny parts can grow up to about 15 times: the caller's
 * maximum for out is the bound (a "too large" failure, not a crash).
 * A multipart whose closing boundary is missing ends at the end of its
 * enclosing body.
 */
int mime_7bit_convert(
    const char *msg, size_t len, struct buf *out, const char **error_r);

#endif
