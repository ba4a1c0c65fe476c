/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the 8-bit to 7-bit downgrade (lib/mail/mime_7bit.c,
 * RFC 6152 3, RFC 2045 6.7, RFC 2046 5). Whatever the MIME structure,
 * a conversion either fails with a reason and leaves the output buffer
 * as it was, or its output has no byte >= 0x80, no bare CR or LF and no
 * line over 998 bytes where the input had none (the converter copies
 * what it does not re-encode), stays within a few times the input, and
 * converts to itself again; an input without 8-bit bytes comes out
 * identical.
 *
 * Input: the message as the queue stores it.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/mime_7bit.h"
#include "fuzz_util.h"

/* RFC 5321 4.5.3.1.6: 998 characters and CRLF. */
#define LINE_MAX_SMTP 998
/* QP triples a byte and adds "=\r\n" per 75; a few header lines. */
#define OUT_FACTOR    4
#define OUT_EXTRA     4096
#define PREFIX        "prefix"

struct shape {
	int bare;      /* a CR not before LF, or an LF not after CR */
	int long_line; /* a line over LINE_MAX_SMTP */
};

static void
shape_of(const char *s, size_t len, struct shape *sh)
{
	size_t i, col = 0;

	memset(sh, 0, sizeof(*sh));
	for (i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		if (s[i] == '\r' || s[i] == '\n')
			sh->bare = 1;
		/* A bare LF ends a line too: copied text keeps it, and
		 * what the converter adds starts after it. */
		if (s[i] == '\n')
			col = 0;
		else if (++col > LINE_MAX_SMTP)
			sh->long_line = 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data, *error;
	struct shape in_shape, out_shape;
	struct buf out, again;
	size_t plen = strlen(PREFIX);
	int r;

	buf_init(&out, size * OUT_FACTOR + OUT_EXTRA + plen);
	if (buf_puts(&out, PREFIX) < 0)
		fuzz_fail(__FILE__, __LINE__, "prefix");
	error = NULL;
	r = mime_7bit_convert(msg, size, &out, &error);
	FUZZ_CHECK(r == 0 || r == -1);
	FUZZ_CHECK(out.len >= plen && memcmp(out.data, PREFIX, plen) == 0);
	if (r < 0) {
		FUZZ_CHECK(error != NULL && error[0] != '\0');
		FUZZ_CHECK(out.len == plen);
		/* Only a message with 8-bit bytes can fail. */
		FUZZ_CHECK(mime_has_8bit(msg, size));
		buf_free(&out);
		return 0;
	}
	if (!mime_has_8bit(msg, size)) {
		FUZZ_CHECK(out.len == plen + size &&
		           memcmp(out.data + plen, msg, size) == 0);
		buf_free(&out);
		return 0;
	}
	FUZZ_CHECK(!mime_has_8bit(out.data + plen, out.len - plen));
	shape_of(msg, size, &in_shape);
	shape_of(out.data + plen, out.len - plen, &out_shape);
	if (!in_shape.bare)
		FUZZ_CHECK(!out_shape.bare);
	if (!in_shape.long_line)
		FUZZ_CHECK(!out_shape.long_line);
	/* 7-bit now: converting again changes nothing. */
	buf_init(&again, out.len);
	FUZZ_CHECK(mime_7bit_convert(
	               out.data + plen, out.len - plen, &again, &error) == 0);
	FUZZ_CHECK(again.len == out.len - plen &&
	           memcmp(again.data, out.data + plen, again.len) == 0);
	buf_free(&again);
	buf_free(&out);
	return 0;
}
