/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: strict base64 (lib/base/base64.c, RFC 4648 4), the
 * decoder every SASL response goes through. Checked: decoding in
 * irregular pieces and one byte at a time gives the result and the error
 * of decoding at once; what decodes encodes back to exactly the input
 * (one spelling per value, RFC 4648 3.5); anything encodes and decodes
 * back; an output buffer one byte short is an error that leaves the
 * buffer as it was, for both directions.
 *
 * Input: one byte for the output buffer's maximum, then the text (or
 * the bytes to encode).
 */
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "fuzz_util.h"

/* Bytes already in the output buffer: results are appended after them. */
#define PREFIX     "xyz"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define BIG_MAX(n) (PREFIX_LEN + BASE64_ENCODED_LEN(n) + 16)

static int
decode_pieces(const char *in, size_t len, size_t step, struct fuzz_rng *rng,
    struct buf *out, const char **error_r)
{
	struct base64_decoder d;
	size_t used = 0, n;
	int r = 0;

	base64_decode_init(&d);
	while (used < len && r == 0) {
		n = step != 0 ? step : fuzz_piece(rng, len);
		if (n > len - used)
			n = len - used;
		r = base64_decode_more(&d, in + used, n, out, error_r);
		used += n;
	}
	if (r == 0)
		r = base64_decode_finish(&d, error_r);
	/* Failed for good: later calls fail with the same error. */
	if (r < 0)
		FUZZ_CHECK(base64_decode_finish(&d, error_r) < 0);
	return r;
}

static void
check_decode(const char *in, size_t len, size_t out_max, struct fuzz_rng *rng)
{
	struct buf whole, piece, enc, small;
	const char *err1 = NULL, *err2 = NULL, *err3 = NULL;
	int r1, r2, r3;

	buf_init(&whole, BIG_MAX(len));
	FUZZ_CHECK(buf_puts(&whole, PREFIX) == 0);
	r1 = base64_decode(in, len, &whole, &err1);
	if (r1 < 0) {
		FUZZ_CHECK(err1 != NULL);
		FUZZ_CHECK(whole.len == PREFIX_LEN);
	} else {
		FUZZ_CHECK(whole.len - PREFIX_LEN <= BASE64_DECODED_MAX(len));
		/* One spelling per value: it encodes back to the input. */
		buf_init(&enc, BASE64_ENCODED_LEN(len) + 1);
		FUZZ_CHECK(base64_encode(whole.data + PREFIX_LEN,
		               whole.len - PREFIX_LEN, &enc) == 0);
		FUZZ_CHECK(
		    enc.len == len && memcmp(buf_cstr(&enc), in, len) == 0);
		buf_free(&enc);
	}
	FUZZ_CHECK(memcmp(buf_cstr(&whole), PREFIX, PREFIX_LEN) == 0);

	/* Pieces and single bytes: same result, same first error. */
	buf_init(&piece, BIG_MAX(len));
	FUZZ_CHECK(buf_puts(&piece, PREFIX) == 0);
	r2 = decode_pieces(in, len, 0, rng, &piece, &err2);
	FUZZ_CHECK(r2 == r1);
	if (r1 == 0)
		FUZZ_CHECK(piece.len == whole.len &&
		           memcmp(piece.data, whole.data, whole.len) == 0);
	else
		FUZZ_CHECK(strcmp(err1, err2) == 0);
	buf_reset(&piece);
	FUZZ_CHECK(buf_puts(&piece, PREFIX) == 0);
	r3 = decode_pieces(in, len, 1, rng, &piece, &err3);
	FUZZ_CHECK(r3 == r1);
	if (r1 == 0)
		FUZZ_CHECK(piece.len == whole.len &&
		           memcmp(piece.data, whole.data, whole.len) == 0);
	else
		FUZZ_CHECK(strcmp(err1, err3) == 0);
	buf_free(&piece);

	/* A maximum below the result: refused, the buffer as it was. */
	if (r1 == 0 && whole.len > PREFIX_LEN) {
		buf_init(&small, whole.len - 1);
		FUZZ_CHECK(buf_puts(&small, PREFIX) == 0);
		FUZZ_CHECK(base64_decode(in, len, &small, &err1) < 0);
		FUZZ_CHECK(small.len == PREFIX_LEN);
		buf_free(&small);
	}
	/* And the chosen maximum: success exactly when it fits. */
	buf_init(&small, PREFIX_LEN + out_max);
	FUZZ_CHECK(buf_puts(&small, PREFIX) == 0);
	r2 = base64_decode(in, len, &small, &err2);
	FUZZ_CHECK(
	    r2 == (r1 == 0 && whole.len <= PREFIX_LEN + out_max ? 0 : -1));
	buf_free(&small);
	buf_free(&whole);
}

static void
check_encode(const char *in, size_t len, size_t out_max)
{
	struct buf enc, dec, small;
	const char *err;

	buf_init(&enc, BIG_MAX(len));
	FUZZ_CHECK(buf_puts(&enc, PREFIX) == 0);
	FUZZ_CHECK(base64_encode(in, len, &enc) == 0);
	FUZZ_CHECK(enc.len == PREFIX_LEN + BASE64_ENCODED_LEN(len));
	buf_init(&dec, len + 1);
	FUZZ_CHECK(base64_decode(enc.data + PREFIX_LEN, enc.len - PREFIX_LEN,
	               &dec, &err) == 0);
	FUZZ_CHECK(dec.len == len && memcmp(buf_cstr(&dec), in, len) == 0);
	buf_init(&small, PREFIX_LEN + out_max);
	FUZZ_CHECK(buf_puts(&small, PREFIX) == 0);
	if (BASE64_ENCODED_LEN(len) > out_max) {
		FUZZ_CHECK(base64_encode(in, len, &small) < 0);
		FUZZ_CHECK(small.len == PREFIX_LEN);
	} else {
		FUZZ_CHECK(base64_encode(in, len, &small) == 0);
		FUZZ_CHECK(small.len == enc.len &&
		           memcmp(small.data, enc.data, enc.len) == 0);
	}
	buf_free(&small);
	buf_free(&dec);
	buf_free(&enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rng rng;
	size_t out_max;

	if (size < 1)
		return 0;
	out_max = data[0];
	fuzz_rng_init(&rng, data, size);
	check_decode((const char *)data + 1, size - 1, out_max, &rng);
	check_encode((const char *)data + 1, size - 1, out_max);
	return 0;
}
