/* SPDX-License-Identifier: MIT */
/*
 * The MIME parser: BODYSTRUCTURE and ENVELOPE of a table of messages as
 * Dovecot 2.3 writes them (the expected strings are doveadm's), section
 * numbers, header lookup, RFC 2047 decoding, transfer decoding, and the
 * depth and part limits. test/integration/test_mime.py compares a larger
 * corpus with a running Dovecot.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/mime.h"
#include "unit.h"

#define OUT_MAX (1024 * 1024)

static char *
bodystructure(const char *msg, int extended)
{
	struct mime_message *m = mime_parse(msg, strlen(msg));
	struct buf out;
	char *s;

	buf_init(&out, OUT_MAX);
	CHECK(mime_bodystructure(&out, msg, m->root, extended) == 0);
	s = buf_steal(&out);
	mime_free(&m);
	CHECK(m == NULL);
	return s;
}

static char *
envelope(const char *msg)
{
	struct mime_message *m = mime_parse(msg, strlen(msg));
	struct buf out;
	char *s;

	buf_init(&out, OUT_MAX);
	CHECK(mime_envelope(&out, msg, m->root) == 0);
	s = buf_steal(&out);
	mime_free(&m);
	return s;
}

static const struct {
	const char *msg, *body, *bodystructure;
} structures[] = {
	{"", "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0",
	 "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "
	 "NIL NIL NIL NIL"},
	{"Subject: x\n\nbody\n",
	 "\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1",
	 NULL},
	/* Content-Type without MIME-Version counts; upper case is kept. */
	{"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	 "Content-Language: en, de-DE\r\n\r\nbody\r\n",
	 NULL,
	 "\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 6 1 "
	 "NIL NIL (\"en\" \"de-DE\") NIL"},
	/* the attachment, RFC 2231 kept encoded as Dovecot keeps it */
	{"From: \"A \\\"B\\\"\" <a@b.c>\nContent-Type: multipart/mixed; "
	 "boundary=zz\n\n--zz\nContent-Type: text/plain; charset=utf-8\n\n"
	 "hi\n--zz\nContent-Type: application/pdf; name*=utf-8''a%20b.pdf\n"
	 "Content-Disposition: attachment; filename=\"a b.pdf\"\n\nxx\n"
	 "--zz--\n",
	 "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 2 0)"
	 "(\"application\" \"pdf\" (\"name*\" \"utf-8''a%20b.pdf\") NIL NIL "
	 "\"7bit\" 2) \"mixed\"",
	 "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 2 0 NIL "
	 "NIL NIL NIL)(\"application\" \"pdf\" (\"name*\" \"utf-8''a%20b.pdf\")"
	 " NIL NIL \"7bit\" 2 NIL (\"attachment\" (\"filename\" \"a b.pdf\")) "
	 "NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL NIL"},
	/* no boundary parameter: an empty multipart */
	{"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n--x\n\nbody\n",
	 NULL,
	 "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "
	 "NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL"},
	/* an enclosing boundary that a nested one starts with */
	{"Content-Type: multipart/mixed; boundary=a\n\n--a\n"
	 "Content-Type: multipart/alternative; boundary=ab\n\n--ab\n\nx\n"
	 "--a\n\ny\n--a--\n",
	 "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)"
	 " \"alternative\")(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
	 "NIL \"7bit\" 1 0) \"mixed\"", NULL},
	/* a header cut short by the boundary */
	{"Content-Type: multipart/mixed; boundary=q\n\n--q\n"
	 "Content-Type: text/plain\n--q\nX: y\n\nz\n--q--\n",
	 "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
	 "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)"
	 " \"mixed\"", NULL},
	/* digest: a part without Content-Type is a message */
	{"MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
	 "--d\n\nSubject: one\n\n1\n--d--\n",
	 "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 17 (NIL \"one\" NIL NIL "
	 "NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
	 "\"us-ascii\") NIL NIL \"7bit\" 1 0) 2) \"digest\"", NULL},
	/* NUL in a parameter: U+FFFD, so a literal */
	{"Content-Type: text/plain; name=\"x\\\"y\\\"z\\\"w\\\"v\\\"\"\n\n",
	 "\"text\" \"plain\" (\"name\" {10}\r\nx\"y\"z\"w\"v\" \"charset\" "
	 "\"us-ascii\") NIL NIL \"7bit\" 0 0", NULL},
};

static void
test_structures(void)
{
	size_t i;

	for (i = 0; i < sizeof(structures) / sizeof(structures[0]); i++) {
		char *s;

		printf("# structure %zu\n", i);
		if (structures[i].body != NULL) {
			s = bodystructure(structures[i].msg, 0);
			CHECK_STR(s, structures[i].body);
			free(s);
		}
		if (structures[i].bodystructure != NULL) {
			s = bodystructure(structures[i].msg, 1);
			CHECK_STR(s, structures[i].bodystructure);
			free(s);
		}
	}
}

static const struct {
	const char *msg, *envelope;
} envelopes[] = {
	{"", "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL"},
	{"From: \"A \\\"B\\\"\" <a@b.c>, Fred <fred@x>\n"
	 "To: undisclosed-recipients:;\nSubject: =?utf-8?q?h=C3=A9llo?= "
	 "\"x\"\n\n",
	 "NIL {26}\r\n=?utf-8?q?h=C3=A9llo?= \"x\" (({5}\r\nA \"B\" NIL \"a\" "
	 "\"b.c\")(\"Fred\" NIL \"fred\" \"x\")) (({5}\r\nA \"B\" NIL \"a\" "
	 "\"b.c\")(\"Fred\" NIL \"fred\" \"x\")) (({5}\r\nA \"B\" NIL \"a\" "
	 "\"b.c\")(\"Fred\" NIL \"fred\" \"x\")) ((NIL NIL "
	 "\"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL"},
	/* the last Subject, both From lines; Sender and Reply-To follow */
	{"Subject: first\nSubject: second\nFrom: a@x\nFrom: b@y\n"
	 "Sender: s@z\nMessage-ID: <m@z>\n\n",
	 "NIL \"second\" ((NIL NIL \"a\" \"x\")(NIL NIL \"b\" \"y\")) ((NIL NIL "
	 "\"s\" \"z\")) ((NIL NIL \"a\" \"x\")(NIL NIL \"b\" \"y\")) NIL NIL "
	 "NIL NIL \"<m@z>\""},
	/* folding: collapsed in the subject, a space in the date */
	{"Subject: first line\n\tsecond\nDate: Mon, 6 Jan 2025\n 10:00 +0100"
	 "\nTo: bare, @x\n\n",
	 "\"Mon, 6 Jan 2025 10:00 +0100\" {17}\r\nfirst line second NIL NIL NIL "
	 "((NIL NIL \"bare\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" "
	 "\"x\")) NIL NIL NIL NIL"},
};

static void
test_envelopes(void)
{
	size_t i;

	for (i = 0; i < sizeof(envelopes) / sizeof(envelopes[0]); i++) {
		char *s = envelope(envelopes[i].msg);

		printf("# envelope %zu\n", i);
		CHECK_STR(s, envelopes[i].envelope);
		free(s);
	}
}

static void
test_sections(void)
{
	static const char nested[] =
	    "Content-Type: multipart/mixed; boundary=o\n\n--o\n\none\n--o\n"
	    "Content-Type: message/rfc822\n\nSubject: in\n"
	    "Content-Type: multipart/alternative; boundary=i\n\n--i\n\na\n"
	    "--i\nContent-Type: text/html\n\n<b>\n--i--\n--o\n"
	    "Content-Type: message/rfc822\n\nSubject: leaf\n\nleaf body\n"
	    "--o--\n";
	static const char plain[] = "Subject: x\n\nbody\n";
	struct mime_message *m = mime_parse(nested, strlen(nested));
	const struct mime_part *p, *two;

	CHECK(mime_section(m, "") == m->root);
	p = mime_section(m, "1");
	CHECK(p != NULL && p == m->root->children);
	two = mime_section(m, "2");
	CHECK(two != NULL && two->is_message_rfc822);
	CHECK(two->message != NULL && two->message->is_multipart);
	p = mime_section(m, "2.2");
	CHECK(p != NULL && strcmp(p->subtype, "html") == 0);
	CHECK(p != NULL && memcmp(nested + p->body_off, "<b>", 3) == 0);
	/* a non-multipart message's 1 is its body */
	p = mime_section(m, "3.1");
	CHECK(p != NULL && memcmp(nested + p->body_off, "leaf body", 9) == 0);
	CHECK(mime_section(m, "3.2") == NULL);
	/* Dovecot takes a leaf's "1" again; not deeper */
	CHECK(mime_section(m, "1.1") == m->root->children);
	CHECK(mime_section(m, "1.1.1") == NULL);
	CHECK(mime_section(m, "4") == NULL);
	CHECK(mime_section(m, "0") == NULL);
	CHECK(mime_section(m, "1.") == NULL);
	CHECK(mime_section(m, "x") == NULL);
	CHECK(mime_section(m, "99999999999999999999") == NULL);
	mime_free(&m);

	m = mime_parse(plain, strlen(plain));
	CHECK(mime_section(m, "1") == m->root);
	CHECK(mime_section(m, "1.1") == NULL);
	CHECK(mime_section(m, "2") == NULL);
	mime_free(&m);
	mime_free(&m); /* NULL-safe */
}

static void
test_sizes(void)
{
	/* CRLF sizes of a stored LF message */
	static const char msg[] = "Subject: x\n\nline one\nline two\n";
	struct mime_message *m = mime_parse(msg, strlen(msg));

	CHECK(m->root->hdr_off == 0);
	CHECK(m->root->body_off == 12);
	CHECK(m->root->end_off == strlen(msg));
	CHECK(m->root->hdr_size == 14);
	CHECK(m->root->body_size == 20);
	CHECK(m->root->body_lines == 2);
	CHECK(strcmp(m->root->type, "text") == 0);
	CHECK(strcmp(m->root->subtype, "plain") == 0);
	mime_free(&m);
}

static void
test_limits(void)
{
	struct buf msg, out;
	struct mime_message *m;
	const struct mime_part *p;
	unsigned depth = 0, i;

	buf_init(&msg, 16 * 1024 * 1024);
	for (i = 0; i < MIME_DEPTH_MAX + 20; i++)
		CHECK(buf_printf(&msg, "Content-Type: multipart/mixed; "
		    "boundary=b%u\n\n--b%u\n", i, i) == 0);
	m = mime_parse(msg.data, msg.len);
	for (p = m->root; p != NULL; p = p->children)
		depth++;
	CHECK(depth <= MIME_DEPTH_MAX);
	CHECK(depth >= MIME_DEPTH_MAX - 1);
	buf_init(&out, OUT_MAX);
	CHECK(mime_bodystructure(&out, msg.data, m->root, 1) == 0);
	CHECK(strstr(out.data, "\"application\" \"octet-stream\"") != NULL);
	buf_free(&out);
	mime_free(&m);

	buf_reset(&msg);
	CHECK(buf_puts(&msg, "Content-Type: multipart/mixed; boundary=m\n\n")
	    == 0);
	for (i = 0; i < MIME_PARTS_MAX + 100; i++)
		CHECK(buf_puts(&msg, "--m\n\n.\n") == 0);
	m = mime_parse(msg.data, msg.len);
	i = 0;
	for (p = m->root->children; p != NULL; p = p->next)
		i++;
	CHECK(i == MIME_PARTS_MAX - 1);
	mime_free(&m);
	buf_free(&msg);
}

static void
test_header_get(void)
{
	static const char hdr[] = "From: a@b\nSubject:  one\n\ttwo\n"
	    "subject: again\nX-Empty:\n\nSubject: body\n";
	char *v;

	v = mime_header_get(hdr, strlen(hdr), "SUBJECT");
	CHECK_STR(v, "one\n\ttwo");
	free(v);
	v = mime_header_get(hdr, strlen(hdr), "x-empty");
	CHECK_STR(v, "");
	free(v);
	CHECK(mime_header_get(hdr, strlen(hdr), "To") == NULL);
	/* the header ends where the caller says */
	v = mime_header_get(hdr, 5, "From");
	CHECK_STR(v, "");
	free(v);
	CHECK(mime_header_get(hdr, 4, "From") == NULL);
}

static void
test_decode_words(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{"plain text", "plain text"},
		{"=?utf-8?q?h=C3=A9llo?= world", "h\xc3\xa9llo world"},
		{"=?UTF-8?B?w6k=?= =?utf-8?q?_x?=", "\xc3\xa9 x"},
		{"=?iso-8859-1?q?caf=E9?=", "caf\xc3\xa9"},
		{"=?bogus-charset?q?x?= y", "=?bogus-charset?q?x?= y"},
		{"=?utf-8?q?bad=Z?=", "=?utf-8?q?bad=Z?="},
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"a\n\tb", "a\tb"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf out;

		buf_init(&out, 1024);
		CHECK(mime_decode_words(&out, t[i].in, strlen(t[i].in)) == 0);
		CHECK_STR(buf_cstr(&out), t[i].out);
		buf_free(&out);
	}
}

static void
test_body_decode(void)
{
	static const struct {
		const char *msg, *out;
		int ret;
	} t[] = {
		{"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"
		 "aGVs\nbG8=\n", "hello", 1},
		{"MIME-Version: 1.0\nContent-Transfer-Encoding: "
		 "Quoted-Printable\n\na=3Db=\nc  \n=ZZ\n", "a=bc\r\n=ZZ\r\n", 1},
		{"MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\nraw\n",
		 "raw\n", 1},
		{"MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\n"
		 "raw\n", "raw\n", 0},
		/* "=4" at the very end is kept as it is */
		{"MIME-Version: 1.0\nContent-Transfer-Encoding: "
		 "quoted-printable\n\na=4", "a=4", 1},
		/* without MIME-Version the field means nothing (RFC 2045 4) */
		{"Content-Transfer-Encoding: base64\n\naGVs\n", "aGVs\n", 1},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct mime_message *m = mime_parse(t[i].msg,
		    strlen(t[i].msg));
		struct buf out;

		buf_init(&out, 1024);
		CHECK(mime_body_decode(&out, t[i].msg, m->root) == t[i].ret);
		CHECK_STR(buf_cstr(&out), t[i].out);
		buf_free(&out);
		buf_init(&out, 2);
		CHECK(mime_body_decode(&out, t[i].msg, m->root) == -1);
		buf_free(&out);
		mime_free(&m);
	}
}

/* Pieces of every size give what the whole decode gives. */
static void
test_body_decode_piece(void)
{
	static const char *const msgs[] = {
		"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"
		"aGVs\nbG8=\nZZZZ\n",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"
		"aGVsbG8g\nd29y bGQgYW5k\r\nIG1v\ncmUgdGV4dCBo\nZXJl\n",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: "
		"Quoted-Printable\n\na=3Db=\nc  \n=ZZ\n",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: "
		"quoted-printable\n\nlong line with =C3=A9 escapes =3D and =\r\n"
		"soft  breaks\t \r\nand trailing space   \nx=4",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: "
		"quoted-printable\n\n=41=42=43=44=45=46=47=48=49=4A=4B=4C=4D"
		"=4E=4F=50=51=52=53=54=55=56=57=58=59=5A=41=42=43=44=45=46=47"
		"=48=49=4A=4B=4C=4D=4E=4F=50=51=52=53=54=55=56=57=58=59=5A    "
		"                                                     end",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\nraw\n",
		"MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\n"
		"raw\n",
	};
	size_t i, max, pos, len, body;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct mime_message *m = mime_parse(msgs[i], strlen(msgs[i]));
		struct buf whole, pieces;
		int ret, r;

		buf_init(&whole, 4096);
		ret = mime_body_decode(&whole, msgs[i], m->root);
		body = m->root->end_off - m->root->body_off;
		for (max = 1; max <= body + 1; max++) {
			buf_init(&pieces, 4096);
			pos = 0;
			len = 0;
			do {
				r = mime_body_decode_piece(
				    &pieces, msgs[i], m->root, &pos, max);
				CHECK(r == ret);
				CHECK(pos > len || pos == body);
				len = pos;
			} while (pos < body);
			CHECK(pieces.len == whole.len);
			CHECK(memcmp(buf_cstr(&pieces), buf_cstr(&whole),
			          whole.len) == 0);
			buf_free(&pieces);
		}
		buf_free(&whole);
		mime_free(&m);
	}
}

UNIT_MAIN(UNIT_CASE(test_structures), UNIT_CASE(test_envelopes),
    UNIT_CASE(test_sections), UNIT_CASE(test_sizes), UNIT_CASE(test_limits),
    UNIT_CASE(test_header_get), UNIT_CASE(test_decode_words),
    UNIT_CASE(test_body_decode), UNIT_CASE(test_body_decode_piece))
