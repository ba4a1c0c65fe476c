/* SPDX-License-Identifier: MIT */
/*
 * The MIME structure of a message (RFC 2045-2049, RFC 2047 encoded words,
 * RFC 2231 parameters), parsed once from the whole message in memory,
 * for imapd's ENVELOPE, BODYSTRUCTURE, BODY[section], BINARY and SEARCH,
 * and fuzzed alone (test/fuzz/fuzz_mime.c).
 *
 * Malformed input is tolerated as Dovecot tolerates it (its output is the
 * yardstick: the same message gives the same ENVELOPE and BODYSTRUCTURE
 * text in tern as in Dovecot 2.3): a missing boundary ends at the end of
 * the enclosing part, a header without a blank line ends at the end of
 * the part, multiparts nest at most MIME_DEPTH_MAX deep (deeper ones are
 * leaf parts), at most MIME_PARTS_MAX parts per message (the rest is the
 * last part's body). Never a crash, never a read outside the message.
 *
 * Offsets are into the stored message (LF or CRLF line ends); sizes and
 * line counts are those of the message as IMAP sends it, with CRLF line
 * ends (imapd converts bare LF on output), as Dovecot's "virtual" sizes.
 */
#ifndef TERN_MIME_H
#define TERN_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define MIME_DEPTH_MAX 100
#define MIME_PARTS_MAX 10000

struct mime_part {
	struct mime_part *parent, *children, *next;
	/* The part's header: [hdr_off, body_off) includes the blank line
	 * that ends it (if there is one); the body: [body_off, end_off). */
	size_t hdr_off, body_off, end_off;
	/* CRLF sizes of header (blank line included) and body; body lines. */
	uint64_t hdr_size, body_size, body_lines;
	/* Content-Type as sent ("text"/"plain" when absent or unparsable,
	 * RFC 2045 5.2; "message"/"rfc822" inside multipart/digest). */
	const char *type, *subtype;
	int is_multipart, is_message_rfc822;
	/* message/rfc822 (message/global is a leaf part, as in Dovecot
	 * 2.3): the enclosed message's root part, or NULL. */
	struct mime_part *message;
};

struct mime_message {
	struct mime_part *root;
	/* Private: the arena the parts and strings live in. */
	void *priv;
};

/* Parses msg (len octets). Never fails for malformed MIME; NULL only when
 * memory runs out. Free with mime_free. The message must stay in memory
 * (mmap'd) while the result is used. */
struct mime_message *mime_parse(const char *msg, size_t len);
void mime_free(struct mime_message **m_r);

/*
 * IMAP writers (RFC 3501 7.4.2, RFC 9051 7.5.2): each appends the
 * parenthesised item's value to out. msg is the message mime_parse saw.
 * Return 0, or -1 when out is full.
 */
int mime_envelope(struct buf *out, const char *msg, const struct mime_part *part);
/* BODYSTRUCTURE (extended: extension data) or BODY (not extended). */
int mime_bodystructure(struct buf *out, const char *msg,
    const struct mime_part *part, int extended);

/*
 * The part named by an IMAP section number list ("1.2.3"; "" is the
 * whole message), as RFC 3501 6.4.5 defines: a non-multipart message's
 * part 1 is its body; the parts of a message/rfc822 are those of the
 * enclosed message. NULL when there is no such part.
 */
const struct mime_part *mime_section(const struct mime_message *m,
    const char *numbers);

/* The value of header field name in [hdr, hdr+len) (the first one,
 * unfolded, leading white space dropped), NULL if absent; caller frees. */
char *mime_header_get(const char *hdr, size_t len, const char *name);

/* Appends the RFC 2047-decoded text of a header value as UTF-8 (unknown
 * charsets and bad encodings left as they are). 0 or -1 (full). */
int mime_decode_words(struct buf *out, const char *value, size_t len);

/* Appends the part's body decoded from its Content-Transfer-Encoding
 * (base64, quoted-printable; others as they are). 1, 0 when the
 * encoding is unknown (IMAP BINARY's [UNKNOWN-CTE]), -1 (full). */
int mime_body_decode(struct buf *out, const char *msg,
    const struct mime_part *part);
/*
 * The same in pieces, so that a large part is never decoded whole
 * (imapd streams BINARY): appends the decoded bytes of the body from
 * offset *pos_r (0 at first) to a point near *pos_r + max where decoding
 * resumes exactly, and moves *pos_r there (to the body's length at the
 * end). The pieces together are what mime_body_decode appends; a piece
 * may be longer than max when no cut is possible (a long
 * quoted-printable line). 1, 0 when the encoding is unknown (the piece
 * is appended as it is), -1 (full).
 */
int mime_body_decode_piece(struct buf *out, const char *msg,
    const struct mime_part *part, size_t *pos_r, size_t max);

#endif
