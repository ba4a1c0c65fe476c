/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648 section 4, the standard alphabet, always padded) into
 * and out of a struct buf. The decoder is strict, as it reads what
 * network clients send (SASL responses): only the 64 alphabet characters
 * and '=' padding, length a multiple of 4, padding only at the very end,
 * the unused bits before the padding zero (RFC 4648 3.5: one encoding per
 * value), no white space or line breaks anywhere. It takes its input in
 * pieces of any size (one byte at a time gives the same result as the
 * whole), and the output buffer's maximum bounds what it produces.
 */
#ifndef TERN_BASE64_H
#define TERN_BASE64_H

#include <stddef.h>
#include "base/buf.h"

/* Characters in the encoding of n bytes (padded). */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* The most bytes that n characters of base64 decode to. */
#define BASE64_DECODED_MAX(n) (((n) / 4) * 3)

/*
 * Appends the padded encoding of in[0..len) to out. 0, or -1 when it
 * would pass out's maximum (out is then unchanged).
 */
int base64_encode(const void *in, size_t len, struct buf *out) MTA_NODISCARD;

/* Decoder state; fill with base64_decode_init. */
struct base64_decoder {
	unsigned char quad[4];	/* 6-bit values of the current quantum */
	int n;			/* characters in quad */
	int pads;		/* '=' in the current quantum */
	int done;		/* a padded quantum ended the input */
	const char *error;	/* first error, sticky; NULL while good */
};

void base64_decode_init(struct base64_decoder *d);
/*
 * Decodes in[0..len), appending every completed quantum to out. 0, or -1
 * with *error_r (static text) for a bad character, misplaced padding,
 * data after the padding, non-zero padding bits, or output past out's
 * maximum; the decoder then stays failed, and out holds a partial result
 * the caller must discard.
 */
int base64_decode_more(struct base64_decoder *d, const char *in, size_t len,
    struct buf *out, const char **error_r) MTA_NODISCARD;
/*
 * The input is complete: 0 if it ended on a quantum boundary (empty input
 * included), -1 with *error_r otherwise or after an earlier error.
 */
int base64_decode_finish(struct base64_decoder *d, const char **error_r)
    MTA_NODISCARD;
/*
 * The whole input at once: appends the decoded bytes to out and returns
 * 0, or returns -1 with *error_r and out as it was.
 */
int base64_decode(const char *in, size_t len, struct buf *out,
    const char **error_r) MTA_NODISCARD;

#endif
