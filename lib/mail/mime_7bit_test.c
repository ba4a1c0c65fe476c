/* SPDX-License-Identifier: MIT */
/*
 * Tests of the 8-bit to 7-bit downgrade: a table of messages and what
 * each becomes (a plain 8-bit body, MIME text with its CTE replaced
 * even when folded, a multipart with one 8-bit part beside a 7-bit one
 * kept byte for byte, a nested message/rfc822, a digest, a missing
 * closing boundary, no empty line before the body) or why it fails (an
 * 8-bit header, binary, base64, message/partial, 8-bit preamble, no
 * boundary, too deep); quoted-printable details (soft breaks at 76,
 * trailing white space, '=', bare CR and LF) checked by decoding the
 * output again; a 7-bit message left identical; an output maximum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/mime_7bit.h"
#include "unit.h"

#define NELEM(a)      (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX       (1024 * 1024)
#define SMTP_LINE_MAX 998

struct conv_case {
	const char *in;
	const char *out;   /* NULL: fails */
	const char *error; /* start of the error when it fails */
};

static const struct conv_case cases[] = {
    /* 7-bit: identical, whatever the structure. */
    {"From: a@b\r\nSubject: hi\r\n\r\nplain\r\n",
        "From: a@b\r\nSubject: hi\r\n\r\nplain\r\n", NULL},
    {"Content-Type: multipart/mixed\r\n\r\nno boundary, 7-bit\r\n",
        "Content-Type: multipart/mixed\r\n\r\nno boundary, 7-bit\r\n", NULL},
    /* A message without MIME: one text part. */
    {"From: a@b\r\nSubject: x\r\n\r\ncaf\xc3\xa9\r\nline 2\r\n",
        "From: a@b\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "caf=C3=A9\r\nline 2\r\n",
        NULL},
    /* MIME text: the CTE replaced where it stood, even folded. */
    {"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding:\r\n 8bit (comment)\r\nX-After: 1\r\n\r\n"
     "\xc3\xa9t\xc3\xa9\r\n",
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\nX-After: 1\r\n\r\n"
        "=C3=A9t=C3=A9\r\n",
        NULL},
    /* Header names are case-insensitive; a second CTE goes. */
    {"mime-version: 1.0\r\ncontent-transfer-encoding: 7BIT\r\n"
     "CONTENT-TRANSFER-ENCODING: 8bit\r\n\r\n\xff\r\n",
        "mime-version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=FF\r\n",
        NULL},
    /* Multipart: only the 8-bit part changes; the multipart's 8bit
     * label becomes 7bit; quoted boundary with a comment around. */
    {"MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; (c) boundary=\"b=1 x\" (c)\r\n"
     "Content-Transfer-Encoding: 8bit\r\n\r\n"
     "preamble\r\n"
     "--b=1 x\r\n"
     "Content-Type: text/plain\r\n\r\n"
     "7-bit = kept\r\n"
     "--b=1 x\r\n"
     "Content-Type: text/plain; charset=iso-8859-1\r\n"
     "Content-Transfer-Encoding: 8bit\r\n\r\n"
     "gr\xfc\xdf\r\n"
     "--b=1 x--\r\n"
     "epilogue\r\n",
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; (c) boundary=\"b=1 x\" (c)\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        "preamble\r\n"
        "--b=1 x\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "7-bit = kept\r\n"
        "--b=1 x\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "gr=FC=DF\r\n"
        "--b=1 x--\r\n"
        "epilogue\r\n",
        NULL},
    /* A boundary that is a prefix of a line is not a delimiter; the
     * part's last line (before the delimiter's CRLF) ends in a space. */
    {"Content-Type: Multipart/Alternative;\r\n\tboundary=abc\r\n\r\n"
     "--abc\r\n\r\n\xe9\r\n--abcd\r\nx \r\n--abc--\r\n",
        "Content-Type: Multipart/Alternative;\r\n\tboundary=abc\r\n"
        "MIME-Version: 1.0\r\n\r\n"
        "--abc\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=E9\r\n--abcd\r\nx=20\r\n--abc--\r\n",
        NULL},
    /* A missing closing delimiter: the last part runs to the end. */
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
     "--q\r\nContent-Type: text/plain\r\n\r\n\xe9\r\n",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
        "--q\r\nContent-Type: text/plain\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n",
        NULL},
    /* message/rfc822: walked as a message; its label 8bit -> 7bit. */
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
     "--o\r\nContent-Type: message/rfc822\r\n"
     "Content-Transfer-Encoding: 8bit\r\n\r\n"
     "From: c@d\r\nSubject: inner\r\n\r\nna\xc3\xafve\r\n"
     "--o--\r\n",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        "--o\r\nContent-Type: message/rfc822\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        "From: c@d\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "na=C3=AFve\r\n"
        "--o--\r\n",
        NULL},
    /* multipart/digest: a part without Content-Type is a message. */
    {"MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
     "--d\r\n\r\nSubject: m\r\n\r\n\xe9\r\n--d--\r\n",
        "MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
        "--d\r\n\r\nSubject: m\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--d--\r\n",
        NULL},
    /* No empty line before the body: one is added. */
    {"Subject: x\r\ncaf\xe9: not a header\r\n", NULL,
        "8-bit characters in a message header"},
    {"Subject: x\r\n\xe9t\xe9 body\r\n",
        "Subject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=E9t=E9 body\r\n",
        NULL},
    {"Subject: x\r\nbody line caf\xe9\r\n",
        "Subject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "body line caf=E9\r\n",
        NULL},
    /* Failures. */
    {"Subject: caf\xc3\xa9\r\n\r\nbody\r\n", NULL,
        "8-bit characters in a message header"},
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
     "--q\r\nContent-Type: text/plain; name=\"\xe9\"\r\n\r\nx\r\n--q--\r\n",
        NULL, "8-bit characters in a message header"},
    {"MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\xe9\r\n",
        NULL, "8-bit data with Content-Transfer-Encoding binary"},
    {"MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n\xe9\r\n",
        NULL, "8-bit data in a quoted-printable or base64 part"},
    {"MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-uue\r\n\r\n\xe9\r\n",
        NULL, "8-bit data under an unknown"},
    {"MIME-Version: 1.0\r\nContent-Type: message/partial; id=1\r\n\r\n"
     "\xe9\r\n",
        NULL, "8-bit data in a message part other than message/rfc822"},
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n\xe9\r\n", NULL,
        "8-bit data in a multipart without a boundary"},
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
     "pr\xe9\r\n--q\r\n\r\nx\r\n--q--\r\n",
        NULL, "8-bit data outside the parts"},
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
     "--q\r\n\r\nx\r\n--q--\r\nepi\xe9\r\n",
        NULL, "8-bit data outside the parts"},
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
     "no delimiter at all \xe9\r\n",
        NULL, "8-bit data outside the parts"},
};

/* RFC 2045 6.7 decoding, strict enough to catch encoder mistakes. */
static int
qp_decode(const char *s, size_t len, struct buf *out)
{
	size_t i;
	const char *hex = "0123456789ABCDEF", *h1, *h2;

	for (i = 0; i < len; i++) {
		if (s[i] != '=') {
			if (buf_putc(out, s[i]) < 0)
				return -1;
			continue;
		}
		if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 >= len || s[i + 1] == '\0' || s[i + 2] == '\0' ||
		    (h1 = strchr(hex, s[i + 1])) == NULL ||
		    (h2 = strchr(hex, s[i + 2])) == NULL)
			return -1;
		if (buf_putc(out, (char)((h1 - hex) * 16 + (h2 - hex))) < 0)
			return -1;
		i += 2;
	}
	return 0;
}

/* 7-bit, CRLF only, lines within max, no line ending in white space. */
static void
check_7bit(const char *s, size_t len, size_t max)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		CHECK((unsigned char)s[i] < 0x80);
		if (s[i] == '\r') {
			CHECK(i + 1 < len && s[i + 1] == '\n');
			CHECK(i == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'));
			col = 0;
			i++;
			continue;
		}
		CHECK(s[i] != '\n');
		col++;
		CHECK(col <= max);
	}
}

static void
test_convert_table(void)
{
	struct buf out;
	const char *error;
	size_t i;
	int r;

	buf_init(&out, OUT_MAX);
	for (i = 0; i < NELEM(cases); i++) {
		buf_reset(&out);
		error = NULL;
		r = mime_7bit_convert(
		    cases[i].in, strlen(cases[i].in), &out, &error);
		if ((r == 0) != (cases[i].out != NULL))
			printf(
			    "#   case %zu: %d %s\n", i, r, error ? error : "");
		if (cases[i].out == NULL) {
			CHECK_INT(r, -1);
			CHECK(
			    error != NULL && strncmp(error, cases[i].error,
			                         strlen(cases[i].error)) == 0);
			CHECK_INT(out.len, 0);
			continue;
		}
		CHECK_INT(r, 0);
		if (strcmp(buf_cstr(&out), cases[i].out) != 0)
			printf("#   case %zu\n", i);
		CHECK_STR(buf_cstr(&out), cases[i].out);
		check_7bit(out.data, out.len, SMTP_LINE_MAX);
	}
	buf_free(&out);
}

/* The body of a converted one-part message, decoded. */
static void
check_qp_body(const char *body, size_t len)
{
	static const char hdr[] = "Subject: q\r\n\r\n";
	static const char want_hdr[] =
	    "Subject: q\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
	struct buf in, out, dec;
	const char *error;

	buf_init(&in, OUT_MAX);
	buf_init(&out, OUT_MAX);
	buf_init(&dec, OUT_MAX);
	CHECK(buf_puts(&in, hdr) == 0 && buf_append(&in, body, len) == 0);
	CHECK_INT(mime_7bit_convert(in.data, in.len, &out, &error), 0);
	CHECK(out.len >= sizeof(want_hdr) - 1 &&
	      memcmp(out.data, want_hdr, sizeof(want_hdr) - 1) == 0);
	check_7bit(out.data + sizeof(want_hdr) - 1,
	    out.len - (sizeof(want_hdr) - 1), MIME_QP_LINE_MAX);
	CHECK_INT(qp_decode(out.data + sizeof(want_hdr) - 1,
	              out.len - (sizeof(want_hdr) - 1), &dec),
	    0);
	CHECK_INT(dec.len, len);
	CHECK(dec.len == len && memcmp(dec.data, body, len) == 0);
	buf_free(&in);
	buf_free(&out);
	buf_free(&dec);
}

static const char *
qp_of(const char *body, struct buf *out)
{
	struct buf in;
	const char *error, *s;

	buf_init(&in, OUT_MAX);
	buf_reset(out);
	CHECK(buf_puts(&in, "\r\n") == 0 && buf_puts(&in, body) == 0);
	CHECK_INT(mime_7bit_convert(in.data, in.len, out, &error), 0);
	buf_free(&in);
	s = strstr(buf_cstr(out), "\r\n\r\n");
	return s != NULL ? s + 4 : "";
}

static void
test_qp(void)
{
	char line[300], want[300];
	struct buf out;
	size_t n;

	buf_init(&out, OUT_MAX);
	/* Trailing white space, '=', a space inside the line. */
	CHECK_STR(qp_of("\xe9 a=b \r\nx\t\r\nend ", &out),
	    "=E9 a=3Db=20\r\nx=09\r\nend=20");
	/* A bare CR and a bare LF are bytes, not line breaks. */
	CHECK_STR(qp_of("a\rb\nc\xe9\r\n", &out), "a=0Db=0Ac=E9\r\n");
	/* Soft breaks: 75 characters and "=", then the rest. */
	memset(line, 'a', 100);
	memcpy(line + 100, "\xe9\r\n", 4);
	memset(want, 'a', 75);
	memcpy(want + 75, "=\r\n", 3);
	memset(want + 78, 'a', 25);
	memcpy(want + 103, "=E9\r\n", 6);
	CHECK_STR(qp_of(line, &out), want);
	/* A line of exactly 76 stays one line; 77 does not. */
	memset(line, 'b', 76);
	memcpy(line + 76, "\r\n\xe9", 4);
	CHECK(strncmp(qp_of(line, &out), line, 78) == 0);
	memset(line, 'b', 77);
	memcpy(line + 77, "\r\n\xe9", 4);
	CHECK(strstr(qp_of(line, &out), "b=\r\nbb\r\n=E9") != NULL);
	/* An escape is never split by a soft break. */
	memset(line, 'c', 74);
	memcpy(line + 74, "\xe9\xe9\r\n", 5);
	CHECK(strstr(qp_of(line, &out), "cc=\r\n=E9=E9\r\n") != NULL);
	/* Trailing space at exactly the limit. */
	memset(line, 'd', 75);
	memcpy(line + 75, " \r\n\xe9", 5);
	CHECK(strstr(qp_of(line, &out), "d=\r\n=20\r\n=E9") != NULL);

	/* A line after a soft break never starts with "-": it could
	 * pass for a boundary delimiter. */
	memset(line, 'e', 75);
	memcpy(line + 75, "--abc\xe9\r\n", 9);
	CHECK(strstr(qp_of(line, &out), "e=\r\n=2D-abc=E9\r\n") != NULL);

	/* Round trips over every byte value and many line lengths. */
	for (n = 0; n < 200; n += 7) {
		char body[256 + 200];
		size_t i;

		for (i = 0; i < 256; i++)
			body[i] = (char)i;
		memset(body + 256, ' ', n);
		check_qp_body(body, 256 + n);
		check_qp_body(body + 128, 128 + n);
	}
	buf_free(&out);
}

/* Nesting: multipart in multipart down to depth, 8-bit at the bottom. */
static void
nested(struct buf *b, int depth)
{
	int i;

	buf_reset(b);
	for (i = 0; i < depth; i++)
		CHECK(buf_printf(b,
		          "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
		          "--b%d\r\n",
		          i, i) == 0);
	CHECK(buf_puts(b, "Content-Type: text/plain\r\n\r\n\xe9\r\n") == 0);
	for (i = depth - 1; i >= 0; i--)
		CHECK(buf_printf(b, "--b%d--\r\n", i) == 0);
}

static void
test_depth(void)
{
	struct buf in, out;
	const char *error = NULL;

	buf_init(&in, OUT_MAX);
	buf_init(&out, OUT_MAX);
	nested(&in, MIME_7BIT_DEPTH_MAX);
	CHECK_INT(mime_7bit_convert(in.data, in.len, &out, &error), 0);
	CHECK(strstr(buf_cstr(&out), "\r\n=E9\r\n--b19--") != NULL);
	check_7bit(out.data, out.len, SMTP_LINE_MAX);
	buf_reset(&out);
	nested(&in, MIME_7BIT_DEPTH_MAX + 1);
	CHECK_INT(mime_7bit_convert(in.data, in.len, &out, &error), -1);
	CHECK(strncmp(error, "MIME nesting too deep", 21) == 0);
	/* Deep but 7-bit: nothing to walk, copied. */
	nested(&in, MIME_7BIT_DEPTH_MAX * 3);
	*(char *)memchr(in.data, '\xe9', in.len) = 'e';
	CHECK(!mime_has_8bit(in.data, in.len));
	buf_reset(&out);
	CHECK_INT(mime_7bit_convert(in.data, in.len, &out, &error), 0);
	CHECK(out.len == in.len && memcmp(out.data, in.data, in.len) == 0);
	buf_free(&in);
	buf_free(&out);
}

static void
test_identity_and_limits(void)
{
	static const char seven[] =
	    "From: a@b\nX: bare LF header\r\nContent-Type: multipart/mixed; "
	    "boundary=z\r\n\r\n--z\r\nContent-Transfer-Encoding: binary\r\n"
	    "\r\nbare\rCR\r\n--z--";
	static const char eight[] = "Subject: x\r\n\r\n\xe9\xe9\xe9\xe9\r\n";
	struct buf out;
	const char *error;

	buf_init(&out, OUT_MAX);
	CHECK(!mime_has_8bit(seven, sizeof(seven) - 1));
	CHECK(mime_has_8bit(eight, sizeof(eight) - 1));
	CHECK(buf_puts(&out, "kept") == 0);
	CHECK_INT(mime_7bit_convert(seven, sizeof(seven) - 1, &out, &error), 0);
	CHECK_INT(out.len, 4 + sizeof(seven) - 1);
	CHECK(memcmp(out.data + 4, seven, sizeof(seven) - 1) == 0);
	CHECK_INT(mime_7bit_convert("", 0, &out, &error), 0);
	CHECK_INT(out.len, 4 + sizeof(seven) - 1);
	buf_free(&out);

	/* A full output buffer fails and leaves it as it was. */
	buf_init(&out, 40);
	CHECK(buf_puts(&out, "kept") == 0);
	CHECK_INT(
	    mime_7bit_convert(eight, sizeof(eight) - 1, &out, &error), -1);
	CHECK(strncmp(error, "message too large", 17) == 0);
	CHECK_STR(buf_cstr(&out), "kept");
	buf_free(&out);
}

UNIT_MAIN(UNIT_CASE(test_convert_table), UNIT_CASE(test_qp),
    UNIT_CASE(test_depth), UNIT_CASE(test_identity_and_limits))
