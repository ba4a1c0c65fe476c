/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the ESMTP parameter parsers of lib/mail/smtp_param.c
 * on their own: MAIL FROM and RCPT TO parameters (RFC 1870, 6152, 3030,
 * 6531, 3461, 4954) under any set of offered extensions, the BDAT
 * argument, and xtext (RFC 3461 4) both ways on any bytes: encoding
 * round-trips, decoding is canonical after one round, and a full output
 * buffer is an error, never an overrun.
 *
 * Input: one byte of offered extensions (SMTP_EXT_*), then the text.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/smtp_param.h"
#include "fuzz_check.h"
#include "fuzz_util.h"

#define CFG_EXTS_MASK   0x3f
/* "+XX" per byte at most. */
#define XTEXT_EXPANSION 3

static void
check_xtext(const char *in, size_t len)
{
	struct buf enc, dec, again, small;
	size_t i;
	char c;

	/* Anything encodes to xtext characters and decodes back. */
	buf_init(&enc, XTEXT_EXPANSION * len + 1);
	buf_init(&dec, len + 1);
	FUZZ_CHECK(xtext_encode(in, len, &enc) == 0);
	for (i = 0; i < enc.len; i++) {
		c = enc.data[i];
		FUZZ_CHECK(c >= '!' && c <= '~' && c != '=');
	}
	FUZZ_CHECK(xtext_decode(enc.data, enc.len, &dec) == 0);
	FUZZ_CHECK(dec.len == len && memcmp(buf_cstr(&dec), in, len) == 0);
	buf_free(&enc);
	buf_free(&dec);

	/* Decoded xtext encodes to no more than it was, and the same. */
	buf_init(&dec, len + 1);
	if (xtext_decode(in, len, &dec) == 0) {
		FUZZ_CHECK(dec.len <= len);
		buf_init(&enc, XTEXT_EXPANSION * len + 1);
		buf_init(&again, len + 1);
		FUZZ_CHECK(xtext_encode(dec.data, dec.len, &enc) == 0);
		FUZZ_CHECK(enc.len <= len);
		FUZZ_CHECK(xtext_decode(enc.data, enc.len, &again) == 0);
		FUZZ_CHECK(
		    again.len == dec.len &&
		    memcmp(buf_cstr(&again), buf_cstr(&dec), dec.len) == 0);
		/* One byte less room than needed: refused. */
		if (dec.len > 0) {
			buf_init(&small, dec.len - 1);
			FUZZ_CHECK(xtext_decode(in, len, &small) < 0);
			buf_free(&small);
		}
		buf_free(&enc);
		buf_free(&again);
	}
	buf_free(&dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned exts;
	char *text;

	if (size < 1)
		return 0;
	exts = data[0] & CFG_EXTS_MASK;
	check_xtext((const char *)data + 1, size - 1);
	/* The parameters come from a command line: no NUL in them. */
	text = fuzz_cstr(data + 1, size - 1);
	(void)fuzz_check_mail_params(text, exts);
	(void)fuzz_check_rcpt_params(text, exts);
	(void)fuzz_check_bdat(text);
	free(text);
	return 0;
}
