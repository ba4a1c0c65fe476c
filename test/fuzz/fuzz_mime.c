/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the MIME parser (lib/mail/mime.c) and its IMAP
 * writers, on anyone's message. Invariants: parts lie inside the message
 * in order (header, then body), children inside their parent, no more
 * than MIME_PARTS_MAX of them nor deeper than MIME_DEPTH_MAX; ENVELOPE,
 * BODY and BODYSTRUCTURE are written with balanced parentheses outside
 * strings; every section number that names a part finds that part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/mime.h"
#include "fuzz_util.h"

#define FUZZ_OUT_MAX (16 * 1024 * 1024)

struct walk {
	const char *msg;
	size_t len, parts;
};

static void
check_part(struct walk *w, const struct mime_part *p, unsigned depth)
{
	const struct mime_part *c;

	FUZZ_CHECK(depth <= MIME_DEPTH_MAX + 1);
	FUZZ_CHECK(p->hdr_off <= p->body_off && p->body_off <= p->end_off &&
	    p->end_off <= w->len);
	FUZZ_CHECK(p->hdr_size >= p->body_off - p->hdr_off);
	FUZZ_CHECK(p->body_size >= p->end_off - p->body_off);
	FUZZ_CHECK(p->type != NULL && p->subtype != NULL);
	FUZZ_CHECK(!(p->is_multipart && p->is_message_rfc822));
	w->parts++;
	for (c = p->children; c != NULL; c = c->next) {
		FUZZ_CHECK(p->is_multipart);
		FUZZ_CHECK(c->parent == p);
		FUZZ_CHECK(c->hdr_off >= p->body_off && c->end_off <= p->end_off);
		check_part(w, c, depth + 1);
	}
	if (p->message != NULL) {
		FUZZ_CHECK(p->is_message_rfc822);
		check_part(w, p->message, depth + 1);
	}
}

/* Parentheses balance outside quoted strings and literals. */
static void
check_balanced(const char *s, size_t len)
{
	size_t i;
	long depth = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			FUZZ_CHECK(i < len);
		} else if (s[i] == '{') {
			size_t n = 0;

			for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
				n = n * 10 + (size_t)(s[i] - '0');
			FUZZ_CHECK(i + 2 < len && s[i] == '}' &&
			    s[i + 1] == '\r' && s[i + 2] == '\n');
			i += 2 + n;
			FUZZ_CHECK(i < len);
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			depth--;
			FUZZ_CHECK(depth >= 0);
		}
	}
	FUZZ_CHECK(depth == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m;
	const struct mime_part *p;
	struct walk w = {(const char *)data, size, 0};
	struct buf out;
	char *hdr;

	m = mime_parse((const char *)data, size);
	FUZZ_CHECK(m != NULL && m->root != NULL);
	check_part(&w, m->root, 0);
	FUZZ_CHECK(w.parts <= MIME_PARTS_MAX + 1);

	buf_init(&out, FUZZ_OUT_MAX);
	FUZZ_CHECK(mime_envelope(&out, w.msg, m->root) == 0);
	check_balanced(out.data, out.len);
	buf_reset(&out);
	FUZZ_CHECK(mime_bodystructure(&out, w.msg, m->root, 0) == 0);
	check_balanced(out.data, out.len);
	buf_reset(&out);
	FUZZ_CHECK(mime_bodystructure(&out, w.msg, m->root, 1) == 0);
	check_balanced(out.data, out.len);

	FUZZ_CHECK(mime_section(m, "") == m->root);
	/* "1" is the first child, or a leaf's body; a multipart without
	 * parts has none */
	p = mime_section(m, "1");
	if (m->root->is_multipart)
		FUZZ_CHECK(p == m->root->children);
	else
		FUZZ_CHECK(p == m->root);
	p = mime_section(m, "1.2.1");
	buf_reset(&out);
	if (p != NULL)
		FUZZ_CHECK(mime_body_decode(&out, w.msg, p) >= 0);
	buf_reset(&out);
	FUZZ_CHECK(mime_body_decode(&out, w.msg, m->root) >= 0);

	hdr = mime_header_get(w.msg + m->root->hdr_off,
	    m->root->body_off - m->root->hdr_off, "Subject");
	if (hdr != NULL) {
		buf_reset(&out);
		FUZZ_CHECK(mime_decode_words(&out, hdr, strlen(hdr)) == 0);
		free(hdr);
	}
	buf_free(&out);
	mime_free(&m);
	FUZZ_CHECK(m == NULL);
	return 0;
}
