/* SPDX-License-Identifier: MIT */
/*
 * 8-bit to 7-bit downgrade of a queued message for a peer without
 * 8BITMIME (RFC 6152 3), in the manner of Postfix's: the MIME structure
 * (RFC 2045 headers, RFC 2046 5.1 multipart and 5.2.1 message/rfc822)
 * is walked only where 8-bit bytes lie, leaf parts with such bytes are
 * re-encoded as quoted-printable (RFC 2045 6.7), and every byte of a
 * part that needs no change is copied as it was, so that signatures
 * over 7-bit parts survive.
 *
 * The message is held whole in memory (the agent reads the CONTENT
 * record), so the walk works on pointer ranges with no copying; the
 * output grows in the caller's buffer, whose maximum bounds it.
 * Malformed MIME is tolerated the way mail readers tolerate it: a
 * header that cannot be parsed counts as absent, a missing closing
 * boundary ends the multipart at the end of its body.
 */
#include <string.h>

#include "base/str.h"
#include "mail/mime_7bit.h"

/* Longest type or subtype name we compare (RFC 6838 4.2: 127). */
#define MIME_TOKEN_MAX 127
#define QP_HEX         "0123456789ABCDEF"
#define CRLF           "\r\n"

enum cte {
	CTE_NONE, /* no header, or one that does not parse */
	CTE_7BIT,
	CTE_8BIT,
	CTE_BINARY,
	CTE_QP,
	CTE_BASE64,
	CTE_OTHER,
};

/* What an entity's header says about its content. */
struct mime_info {
	int has_type;                  /* a Content-Type that parsed */
	char type[MIME_TOKEN_MAX + 1]; /* lower case */
	char subtype[MIME_TOKEN_MAX + 1];
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t boundary_len; /* 0: none */
	enum cte cte;
	int has_cte;
	int has_mime_version;
};

/* How the header of a converted entity is written out. */
enum hdr_mode {
	HDR_CTE_7BIT, /* composite: "8bit" becomes "7bit" */
	HDR_CTE_QP,   /* leaf: the CTE becomes quoted-printable */
};

struct conv {
	struct buf *out;
	const char *error;
};

static int
fail(struct conv *c, const char *why)
{
	c->error = why;
	return -1;
}

static int
emit(struct conv *c, const char *s, size_t len)
{
	if (buf_append(c->out, s, len) < 0)
		return fail(c, "message too large after 8-bit to 7-bit "
		               "conversion");
	return 0;
}

static int
emits(struct conv *c, const char *s)
{
	return emit(c, s, strlen(s));
}

int
mime_has_8bit(const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)msg[i] >= 0x80)
			return 1;
	}
	return 0;
}

static int
range_8bit(const char *s, const char *end)
{
	return mime_has_8bit(s, (size_t)(end - s));
}

/* The start of the line after the one at s (after its LF), or end. */
static const char *
next_line(const char *s, const char *end)
{
	const char *lf = memchr(s, '\n', (size_t)(end - s));

	return lf != NULL ? lf + 1 : end;
}

/* The end of the line's content: before its LF and a CR before that. */
static const char *
line_content_end(const char *s, const char *next)
{
	if (next > s && next[-1] == '\n')
		next--;
	if (next > s && next[-1] == '\r')
		next--;
	return next;
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The colon of a header field line at s (content up to ce), or NULL. A
 * name is any bytes above space but ':' and DEL, 8-bit ones included,
 * so that an 8-bit header is seen as a header (and refused) rather
 * than taken for the start of the body; RFC 5322 4.5.5's obsolete
 * spaces before the colon are allowed.
 */
static const char *
header_colon(const char *s, const char *ce)
{
	const char *q = s;

	while (q < ce && (unsigned char)*q > ' ' && *q != ':' && *q != 0x7f)
		q++;
	if (q == s)
		return NULL;
	while (q < ce && is_wsp(*q))
		q++;
	return q < ce && *q == ':' ? q : NULL;
}

/*
 * Splits the entity at p into header [p, *hend_r) and body [*body_r,
 * end): the header ends at an empty line (which lies between the two)
 * or, leniently, at the first line that is neither a field nor a
 * continuation (then *hend_r == *body_r).
 */
static void
split_entity(
    const char *p, const char *end, const char **hend_r, const char **body_r)
{
	const char *s = p, *next, *ce;

	while (s < end) {
		next = next_line(s, end);
		ce = line_content_end(s, next);
		if (ce == s && next > s && next[-1] == '\n') {
			*hend_r = s;
			*body_r = next;
			return;
		}
		if (!(s > p && is_wsp(*s)) && header_colon(s, ce) == NULL)
			break;
		s = next;
	}
	*hend_r = s;
	*body_r = s;
}

/* The end of the logical field starting at s: after its continuations. */
static const char *
field_end(const char *s, const char *hend)
{
	s = next_line(s, hend);
	while (s < hend && is_wsp(*s))
		s = next_line(s, hend);
	return s;
}

/* Skips white space, line breaks of folding and (nested) comments. */
static const char *
skip_cfws(const char *s, const char *e)
{
	size_t depth = 0;

	while (s < e) {
		if (depth > 0) {
			if (*s == '\\' && s + 1 < e)
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			s++;
		} else if (is_wsp(*s) || *s == '\r' || *s == '\n') {
			s++;
		} else if (*s == '(') {
			depth = 1;
			s++;
		} else {
			break;
		}
	}
	return s;
}

/* RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs,
 * or tspecials>. */
static int
is_token_char(char c)
{
	return (unsigned char)c > ' ' && (unsigned char)c < 0x7f &&
	       strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/*
 * A token at *sp, copied lower-cased into out (size bytes) when it
 * fits; returns its length (0: none), *sp moved past it. A token that
 * does not fit returns size (too long: the caller treats it as bad).
 */
static size_t
take_token(const char **sp, const char *e, char *out, size_t size)
{
	const char *s = *sp;
	size_t n = 0;

	while (s < e && is_token_char(*s)) {
		if (n + 1 < size)
			out[n] =
			    (char)((*s >= 'A' && *s <= 'Z') ? *s - 'A' + 'a'
			                                    : *s);
		n++;
		s++;
	}
	*sp = s;
	if (n + 1 > size)
		return size;
	out[n] = '\0';
	return n;
}

/*
 * A parameter value, token or quoted-string (RFC 2045 5.1, RFC 5322
 * 3.2.4: backslash quotes the next byte, folding line breaks are
 * dropped), into out as given (case kept). Returns its length, or -1
 * for a bad one (unterminated quote) or one that does not fit.
 */
static long
take_value(const char **sp, const char *e, char *out, size_t size)
{
	const char *s = *sp;
	size_t n = 0;
	int toolong = 0;

	if (s < e && *s == '"') {
		s++;
		while (s < e && *s != '"') {
			if (*s == '\r' || *s == '\n') {
				s++;
				continue;
			}
			if (*s == '\\' && s + 1 < e)
				s++;
			if (n + 1 < size)
				out[n++] = *s;
			else
				toolong = 1;
			s++;
		}
		if (s >= e)
			return -1;
		s++;
	} else {
		while (s < e && is_token_char(*s)) {
			if (n + 1 < size)
				out[n++] = *s;
			else
				toolong = 1;
			s++;
		}
	}
	*sp = s;
	out[n] = '\0';
	return toolong ? -1 : (long)n;
}

/* RFC 2045 5.1 Content-Type; a value that does not parse is ignored. */
static void
parse_content_type(const char *s, const char *e, struct mime_info *m)
{
	char attr[MIME_TOKEN_MAX + 1], value[MIME_BOUNDARY_MAX + 1];
	size_t n;
	long vlen;

	s = skip_cfws(s, e);
	n = take_token(&s, e, m->type, sizeof(m->type));
	if (n == 0 || n == sizeof(m->type))
		return;
	s = skip_cfws(s, e);
	if (s >= e || *s != '/')
		return;
	s = skip_cfws(s + 1, e);
	n = take_token(&s, e, m->subtype, sizeof(m->subtype));
	if (n == 0 || n == sizeof(m->subtype))
		return;
	m->has_type = 1;
	for (;;) {
		s = skip_cfws(s, e);
		if (s >= e || *s != ';')
			return;
		s = skip_cfws(s + 1, e);
		n = take_token(&s, e, attr, sizeof(attr));
		if (n == 0 || n == sizeof(attr))
			return;
		s = skip_cfws(s, e);
		if (s >= e || *s != '=')
			return;
		s = skip_cfws(s + 1, e);
		vlen = take_value(&s, e, value, sizeof(value));
		if (vlen < 0)
			return;
		if (strcmp(attr, "boundary") == 0 && m->boundary_len == 0 &&
		    vlen > 0) {
			memcpy(m->boundary, value, (size_t)vlen + 1);
			m->boundary_len = (size_t)vlen;
		}
	}
}

static enum cte
parse_cte(const char *s, const char *e)
{
	static const struct {
		const char *name;
		enum cte cte;
	} names[] = {
	    {"7bit", CTE_7BIT},
	    {"8bit", CTE_8BIT},
	    {"binary", CTE_BINARY},
	    {"quoted-printable", CTE_QP},
	    {"base64", CTE_BASE64},
	};
	char tok[MIME_TOKEN_MAX + 1];
	size_t i, n;

	s = skip_cfws(s, e);
	n = take_token(&s, e, tok, sizeof(tok));
	if (n == 0)
		return CTE_NONE;
	if (n == sizeof(tok))
		return CTE_OTHER;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(tok, names[i].name) == 0)
			return names[i].cte;
	}
	return CTE_OTHER;
}

/* The field at s is named name (case-insensitive); *value_r after ':'. */
static int
field_is(const char *s, const char *fe, const char *name, const char **value_r)
{
	const char *ce = line_content_end(s, next_line(s, fe));
	const char *colon = header_colon(s, ce), *q;
	size_t n = strlen(name);

	if (colon == NULL)
		return 0;
	for (q = colon; q > s && is_wsp(q[-1]); q--)
		;
	if ((size_t)(q - s) != n || !str_prefix_ci(s, n, name))
		return 0;
	*value_r = colon + 1;
	return 1;
}

/* Reads the MIME fields of header [p, hend); the first of each counts. */
static void
parse_header(const char *p, const char *hend, struct mime_info *m)
{
	const char *s, *fe, *v;
	int has_ctype = 0;

	memset(m, 0, sizeof(*m));
	for (s = p; s < hend; s = fe) {
		fe = field_end(s, hend);
		if (field_is(s, fe, "Content-Type", &v)) {
			if (!has_ctype)
				parse_content_type(v, fe, m);
			has_ctype = 1;
		} else if (field_is(s, fe, "Content-Transfer-Encoding", &v)) {
			if (!m->has_cte)
				m->cte = parse_cte(v, fe);
			m->has_cte = 1;
		} else if (field_is(s, fe, "MIME-Version", &v)) {
			m->has_mime_version = 1;
		}
	}
}

/*
 * Writes the header [p, hend) and the separator up to body with the
 * changes mode asks for, plus MIME-Version if add_mime_version.
 */
static int
emit_header(struct conv *c, const char *p, const char *hend, const char *body,
    const char *end, enum hdr_mode mode, int add_mime_version)
{
	const char *s, *fe, *v;
	int cte_done = 0, open_line = 0;

	for (s = p; s < hend; s = fe) {
		fe = field_end(s, hend);
		if (field_is(s, fe, "Content-Transfer-Encoding", &v)) {
			if (mode == HDR_CTE_QP) {
				if (!cte_done && emits(c, "Content-Transfer-"
				                          "Encoding: quoted-"
				                          "printable" CRLF) < 0)
					return -1;
				cte_done = 1;
				continue;
			}
			if (parse_cte(v, fe) == CTE_8BIT) {
				if (emits(c, "Content-Transfer-Encoding: "
				             "7bit" CRLF) < 0)
					return -1;
				continue;
			}
		}
		if (emit(c, s, (size_t)(fe - s)) < 0)
			return -1;
		open_line = fe[-1] != '\n';
	}
	if ((mode == HDR_CTE_QP && !cte_done) || add_mime_version) {
		/* A last field cut by the end of the data needs its end. */
		if (open_line && emits(c, CRLF) < 0)
			return -1;
		open_line = 0;
		if (add_mime_version && emits(c, "MIME-Version: 1.0" CRLF) < 0)
			return -1;
		if (mode == HDR_CTE_QP && !cte_done &&
		    emits(c, "Content-Transfer-Encoding: "
		             "quoted-printable" CRLF) < 0)
			return -1;
	}
	if (hend == body && body < end && mode == HDR_CTE_QP) {
		/* No empty line before the body: the encoded body's first
		 * line could pass for a field ("caf=E9: x"), so one is
		 * added. */
		if (open_line && emits(c, CRLF) < 0)
			return -1;
		return emits(c, CRLF);
	}
	return emit(c, hend, (size_t)(body - hend));
}

/*
 * RFC 2045 6.7: the bytes [s, end) as quoted-printable. CRLF stays a
 * hard line break; '=', controls (a bare CR or LF too), DEL, 8-bit
 * bytes and a space or tab before a line end are =XX; encoded lines
 * stay within MIME_QP_LINE_MAX, with "=" soft breaks.
 */
static int
qp_encode(struct conv *c, const char *s, const char *end)
{
	char line[MIME_QP_LINE_MAX + 1];
	size_t col = 0, tok, limit;
	unsigned char ch;
	int last;

	while (s < end) {
		if (s[0] == '\r' && s + 1 < end && s[1] == '\n') {
			if (emit(c, line, col) < 0 || emits(c, CRLF) < 0)
				return -1;
			col = 0;
			s += 2;
			continue;
		}
		ch = (unsigned char)*s;
		last = s + 1 == end ||
		       (s + 2 < end && s[1] == '\r' && s[2] == '\n');
		tok = (ch > ' ' && ch < 0x7f && ch != '=') ||
		              ((ch == ' ' || ch == '\t') && !last)
		          ? 1
		          : 3;
		/* Room for a soft break's "=" unless this ends the line. */
		limit = last ? MIME_QP_LINE_MAX : MIME_QP_LINE_MAX - 1;
		if (col + tok > limit) {
			if (emit(c, line, col) < 0 || emits(c, "=" CRLF) < 0)
				return -1;
			col = 0;
			/* A line the break starts must not begin with
			 * "--": it could pass for a boundary delimiter
			 * of an enclosing multipart. */
			if (ch == '-')
				tok = 3;
		}
		if (tok == 1) {
			line[col++] = (char)ch;
		} else {
			line[col++] = '=';
			line[col++] = QP_HEX[ch >> 4];
			line[col++] = QP_HEX[ch & 0xf];
		}
		s++;
	}
	return emit(c, line, col);
}

/*
 * RFC 2046 5.1.1: the line [s, ce) is "--boundary" (1) or
 * "--boundary--" (2), with trailing white space; else 0.
 */
static int
delimiter(const char *s, const char *ce, const struct mime_info *m)
{
	const char *q;
	int close = 0;

	if ((size_t)(ce - s) < 2 + m->boundary_len || s[0] != '-' ||
	    s[1] != '-' || memcmp(s + 2, m->boundary, m->boundary_len) != 0)
		return 0;
	q = s + 2 + m->boundary_len;
	if (ce - q >= 2 && q[0] == '-' && q[1] == '-') {
		close = 1;
		q += 2;
	}
	while (q < ce && is_wsp(*q))
		q++;
	if (q != ce)
		return 0;
	return close ? 2 : 1;
}

/* The next delimiter line at or after s: its start, or end if none;
 * *kind_r and *next_r as delimiter() and the line after it. */
static const char *
find_delimiter(const char *s, const char *end, const struct mime_info *m,
    int *kind_r, const char **next_r)
{
	const char *next;

	for (; s < end; s = next) {
		next = next_line(s, end);
		*kind_r = delimiter(s, line_content_end(s, next), m);
		if (*kind_r != 0) {
			*next_r = next;
			return s;
		}
	}
	*kind_r = 0;
	*next_r = end;
	return end;
}

/* A default type (both names are shorter than the fields). */
static void
set_type(struct mime_info *m, const char *type, const char *subtype)
{
	memcpy(m->type, type, strlen(type) + 1);
	memcpy(m->subtype, subtype, strlen(subtype) + 1);
}

static int entity(struct conv *c, const char *p, const char *end, int depth,
    int is_message, int in_digest);

/* A multipart body [b, end): preamble, parts, epilogue. */
static int
multipart(struct conv *c, const char *b, const char *end,
    const struct mime_info *m, int depth)
{
	const char *d, *after, *part, *pend, *nd, *nafter;
	int kind, nkind, digest = strcmp(m->subtype, "digest") == 0;
	static const char *outside = "8-bit data outside the parts of a "
	                             "multipart (preamble or epilogue)";

	d = find_delimiter(b, end, m, &kind, &after);
	if (range_8bit(b, d))
		return fail(c, outside);
	if (emit(c, b, (size_t)(d - b)) < 0)
		return -1;
	while (d < end) {
		if (emit(c, d, (size_t)(after - d)) < 0)
			return -1;
		if (kind == 2) {
			/* The epilogue. */
			if (range_8bit(after, end))
				return fail(c, outside);
			return emit(c, after, (size_t)(end - after));
		}
		part = after;
		nd = find_delimiter(part, end, m, &nkind, &nafter);
		pend = nd;
		/* The line break before a delimiter belongs to it. */
		if (nd < end) {
			if (pend > part && pend[-1] == '\n')
				pend--;
			if (pend > part && pend[-1] == '\r')
				pend--;
		}
		if (entity(c, part, pend, depth, 0, digest) < 0 ||
		    emit(c, pend, (size_t)(nd - pend)) < 0)
			return -1;
		d = nd;
		kind = nkind;
		after = nafter;
	}
	/* No closing delimiter: the last part ran to the end. */
	return 0;
}

/*
 * The entity [p, end): a message (the top level or a message/rfc822
 * body) if is_message, else a body part, whose default type is
 * message/rfc822 inside a multipart/digest (RFC 2046 5.1.5).
 */
static int
entity(struct conv *c, const char *p, const char *end, int depth,
    int is_message, int in_digest)
{
	const char *hend, *body;
	struct mime_info m;
	int add_mv;

	if (!range_8bit(p, end))
		return emit(c, p, (size_t)(end - p));
	if (depth > MIME_7BIT_DEPTH_MAX)
		return fail(c, "MIME nesting too deep for 8-bit to 7-bit "
		               "conversion");
	split_entity(p, end, &hend, &body);
	if (range_8bit(p, hend))
		return fail(c, "8-bit characters in a message header");
	parse_header(p, hend, &m);
	if (!m.has_type) {
		set_type(&m, in_digest ? "message" : "text",
		    in_digest ? "rfc822" : "plain");
	}
	/* Converting means reading it as MIME: say so if it did not. */
	add_mv = is_message && !m.has_mime_version;

	if (m.cte == CTE_BINARY)
		return fail(c, "8-bit data with Content-Transfer-Encoding "
		               "binary");
	if (m.cte == CTE_QP || m.cte == CTE_BASE64)
		return fail(c, "8-bit data in a quoted-printable or base64 "
		               "part");
	if (m.cte == CTE_OTHER)
		return fail(c, "8-bit data under an unknown "
		               "Content-Transfer-Encoding");

	if (strcmp(m.type, "multipart") == 0) {
		if (m.boundary_len == 0)
			return fail(c, "8-bit data in a multipart without a "
			               "boundary");
		if (emit_header(c, p, hend, body, end, HDR_CTE_7BIT, add_mv) <
		    0)
			return -1;
		return multipart(c, body, end, &m, depth + 1);
	}
	if (strcmp(m.type, "message") == 0) {
		if (strcmp(m.subtype, "rfc822") != 0)
			return fail(c, "8-bit data in a message part other "
			               "than message/rfc822");
		if (emit_header(c, p, hend, body, end, HDR_CTE_7BIT, add_mv) <
		    0)
			return -1;
		return entity(c, body, end, depth + 1, 1, 0);
	}
	if (emit_header(c, p, hend, body, end, HDR_CTE_QP, add_mv) < 0)
		return -1;
	return qp_encode(c, body, end);
}

int
mime_7bit_convert(
    const char *msg, size_t len, struct buf *out, const char **error_r)
{
	struct conv c = {out, NULL};
	size_t start = out->len;

	if (entity(&c, msg, msg + len, 0, 1, 0) < 0) {
		buf_truncate(out, start);
		*error_r = c.error;
		return -1;
	}
	return 0;
}
