/* SPDX-License-Identifier: MIT */
/*
 * Base64 encoding and strict, incremental decoding (RFC 4648 section 4).
 * SASL (RFC 4954, RFC 5034, RFC 3501) carries every challenge and
 * response in it, so the decoder reads text a network client chose: it
 * accepts exactly one spelling of each value and refuses everything
 * else, instead of skipping what it does not know as MIME decoders do.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "base/base64.h"

#define BASE64_QUANTUM   4 /* characters per group */
#define BASE64_GROUP     3 /* bytes per group */
#define BASE64_BITS      6 /* bits per character */
#define BASE64_MASK      ((1u << BASE64_BITS) - 1)
#define BASE64_PAD       '='
/* Padding may start at the third or fourth character of a quantum. */
#define BASE64_PAD_FIRST 2

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#define BASE64_ALPHABET_LEN (sizeof(base64_alphabet) - 1)

/* The 6-bit value of c, or -1 if c is not in the alphabet. */
static int
base64_value(char c)
{
	const char *p = memchr(base64_alphabet, c, BASE64_ALPHABET_LEN);

	return p != NULL ? (int)(p - base64_alphabet) : -1;
}

/* Character k (0 = leftmost) of the quantum that holds the 24 bits v. */
static char
base64_char(uint32_t v, size_t k)
{
	size_t shift = (BASE64_QUANTUM - 1 - k) * BASE64_BITS;

	return base64_alphabet[(v >> shift) & BASE64_MASK];
}

int
base64_encode(const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	char group[BASE64_QUANTUM];
	size_t i, k, left;
	uint32_t v;

	if (len > (SIZE_MAX - BASE64_GROUP) / BASE64_QUANTUM ||
	    out->len > out->max ||
	    BASE64_ENCODED_LEN(len) > out->max - out->len)
		return -1;
	for (i = 0; i < len; i += BASE64_GROUP) {
		left = len - i < BASE64_GROUP ? len - i : BASE64_GROUP;
		v = 0;
		for (k = 0; k < BASE64_GROUP; k++)
			v = v << CHAR_BIT | (k < left ? p[i + k] : 0);
		/* left bytes fill left + 1 characters; '=' pads the rest. */
		for (k = 0; k < BASE64_QUANTUM; k++)
			group[k] = k <= left ? base64_char(v, k) : BASE64_PAD;
		/* Room was checked above: this cannot fail. */
		if (buf_append(out, group, sizeof(group)) < 0)
			return -1;
	}
	return 0;
}

void
base64_decode_init(struct base64_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

static int
base64_fail(struct base64_decoder *d, const char *error, const char **error_r)
{
	if (d->error == NULL)
		d->error = error;
	*error_r = d->error;
	return -1;
}

/* A full quantum: its bytes go out, and padding ends the input. */
static int
base64_quantum(struct base64_decoder *d, struct buf *out, const char **error_r)
{
	unsigned char bytes[BASE64_GROUP];
	uint32_t v = 0;
	int i;

	for (i = 0; i < BASE64_QUANTUM; i++)
		v = v << BASE64_BITS | d->quad[i];
	/*
	 * Each '=' drops one byte; what the last character put into the
	 * dropped bytes are spare bits, which must be zero (RFC 4648 3.5).
	 */
	if ((v & ((1u << (d->pads * CHAR_BIT)) - 1)) != 0)
		return base64_fail(
		    d, "non-zero bits before the padding", error_r);
	for (i = 0; i < BASE64_GROUP; i++)
		bytes[i] =
		    (unsigned char)(v >> ((BASE64_GROUP - 1 - i) * CHAR_BIT));
	if (buf_append(out, bytes, (size_t)(BASE64_GROUP - d->pads)) < 0)
		return base64_fail(d, "decoded data too long", error_r);
	d->done = d->pads > 0;
	d->n = 0;
	d->pads = 0;
	return 0;
}

int
base64_decode_more(struct base64_decoder *d, const char *in, size_t len,
    struct buf *out, const char **error_r)
{
	size_t i;
	int v;

	if (d->error != NULL)
		return base64_fail(d, d->error, error_r);
	for (i = 0; i < len; i++) {
		if (d->done)
			return base64_fail(
			    d, "data after the padding", error_r);
		if (in[i] == BASE64_PAD) {
			if (d->n < BASE64_PAD_FIRST)
				return base64_fail(
				    d, "misplaced padding", error_r);
			d->pads++;
			d->quad[d->n++] = 0;
		} else {
			v = base64_value(in[i]);
			if (v < 0)
				return base64_fail(
				    d, "invalid base64 character", error_r);
			/* "xx=x": a value after padding began. */
			if (d->pads > 0)
				return base64_fail(
				    d, "misplaced padding", error_r);
			d->quad[d->n++] = (unsigned char)v;
		}
		if (d->n == BASE64_QUANTUM &&
		    base64_quantum(d, out, error_r) < 0)
			return -1;
	}
	return 0;
}

int
base64_decode_finish(struct base64_decoder *d, const char **error_r)
{
	if (d->error != NULL)
		return base64_fail(d, d->error, error_r);
	if (d->n != 0)
		return base64_fail(d,
		    "truncated base64 (length not a multiple of 4)", error_r);
	return 0;
}

int
base64_decode(const char *in, size_t len, struct buf *out, const char **error_r)
{
	struct base64_decoder d;
	size_t old = out->len;

	base64_decode_init(&d);
	if (base64_decode_more(&d, in, len, out, error_r) < 0 ||
	    base64_decode_finish(&d, error_r) < 0) {
		buf_truncate(out, old);
		return -1;
	}
	return 0;
}
