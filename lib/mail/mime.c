/* SPDX-License-Identifier: MIT */
/*
 * The MIME tree of a message in memory (RFC 2045, RFC 2046 5.1 multipart
 * boundaries, 5.1.5 multipart/digest defaults, 5.2.1 message/rfc822),
 * section numbers (RFC 3501 6.4.5) and transfer decoding (RFC 2045 6.7,
 * 6.8) for imapd's BODY[section], BINARY and SEARCH.
 *
 * Where parts begin and end follows Dovecot 2.3's message-parser, which
 * is the yardstick for malformed mail: a boundary is any line that starts
 * with "--" and one of the open boundaries (the longest that matches, the
 * newest first), the [CR]LF before it belongs to the boundary, a boundary
 * of an enclosing multipart ends the inner parts (and even a header cut
 * short), a missing close delimiter ends at the end of the message, and
 * "--" lines are no longer boundaries once MIME_PARTS_MAX parts exist.
 * Each byte is looked at a bounded number of times per nesting level, and
 * nesting is bounded by MIME_DEPTH_MAX: linear time for a given limit.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "mail/mime_int.h"

/* RFC 2046 5.1.1 allows 70; Dovecot keeps 80 and ignores the rest. */
#define BOUNDARY_STRING_MAX (70 + 10)
#define BOUNDARY_END_MAX (BOUNDARY_STRING_MAX + 2 + 2)
/* How far back mime_body_decode_piece looks for a quoted-printable
 * cut inside a line before it takes the whole line. */
#define MIME_QP_BACKOFF 64

struct boundary {
	struct boundary *next;
	struct mime_ipart *part;
	char *str;
	size_t len;
	int epilogue;
};

struct parser {
	const char *msg;
	size_t len, pos;
	struct mime_arena *a;
	struct mime_ipart *part;
	struct boundary *bounds;
	unsigned nested, total;
};

struct mime_priv {
	struct mime_arena arena;
};

static struct mime_ipart *
ipart(const struct mime_part *p)
{
	return (struct mime_ipart *)(uintptr_t)p;
}

static struct mime_ipart *
part_new(struct parser *p, struct mime_ipart *parent)
{
	struct mime_ipart *n = mime_arena_alloc(p->a, sizeof(*n));

	n->pub.parent = parent == NULL ? NULL : &parent->pub;
	n->pub.hdr_off = n->pub.body_off = n->pub.end_off = p->pos;
	if (parent != NULL) {
		if (parent->flags & MIME_F_RFC822) {
			parent->pub.message = &n->pub;
		} else {
			if (parent->last_child == NULL)
				parent->pub.children = &n->pub;
			else
				parent->last_child->next = &n->pub;
			parent->last_child = &n->pub;
		}
		p->nested++;
		p->total++;
	}
	return n;
}

/* The longest open boundary that begins the line at data (newest first
 * among equals); an exact match ends the search. */
static struct boundary *
boundary_find(struct boundary *b, const char *data, size_t len,
    int trailing_dashes)
{
	struct boundary *best = NULL;

	for (; b != NULL; b = b->next) {
		if (b->len <= len && memcmp(b->str, data, b->len) == 0 &&
		    (best == NULL || best->len < b->len)) {
			best = b;
			if (best->len == len ||
			    (best->len + 2 == len && trailing_dashes))
				break;
		}
	}
	return best;
}

/* The boundary that the line at "at" is, or NULL. */
static struct boundary *
boundary_line(struct parser *p, size_t at)
{
	const char *data = p->msg + at + 2, *lf;
	size_t size, find;
	int dashes = 0;
	struct boundary *b;

	if (p->bounds == NULL || p->len - at < 2 || p->msg[at] != '-' ||
	    p->msg[at + 1] != '-')
		return NULL;
	if (p->total >= MIME_PARTS_MAX)
		return NULL;
	size = p->len - at - 2;
	lf = memchr(data, '\n', size);
	if (lf != NULL) {
		find = (size_t)(lf - data);
		if (find > 0 && data[find - 1] == '\r')
			find--;
		if (find > 2 && data[find - 1] == '-' && data[find - 2] == '-')
			dashes = 1;
	} else {
		find = size < BOUNDARY_END_MAX ? size : BOUNDARY_END_MAX;
	}
	b = boundary_find(p->bounds, data, find, dashes);
	if (b != NULL)
		b->epilogue = size >= b->len + 2 &&
		    memcmp(data + b->len, "--", 2) == 0;
	return b;
}

static void
boundaries_pop_until(struct parser *p, struct boundary *keep)
{
	while (p->bounds != keep) {
		struct boundary *b = p->bounds;

		p->bounds = b->next;
		free(b->str);
		free(b);
	}
}

static int
at_blank_line(const struct parser *p, size_t at)
{
	return at < p->len && (p->msg[at] == '\n' || (p->msg[at] == '\r' &&
	    at + 1 < p->len && p->msg[at + 1] == '\n'));
}

/* The Content-Type as the tree sees it: the type flags, and the boundary
 * of a multipart. */
static void
tree_content_type(struct mime_ipart *part, const struct mime_hdr *h,
    char **boundary_r)
{
	struct rfc822_ctx c;
	struct mstr s = {0};
	struct mime_param *params;
	size_t n, i;
	int ret;

	rfc822_init(&c, h->value.d, h->value.len);
	rfc822_skip_lwsp(&c);
	ret = rfc822_parse_content_type(&c, &s);
	mstr_c(&s);
	if (strcasecmp(s.d, "message/rfc822") == 0) {
		part->flags |= MIME_F_RFC822;
	} else if (strncasecmp(s.d, "text", 4) == 0 &&
	    (s.len == 4 || s.d[4] == '/')) {
		part->flags |= MIME_F_TEXT;
	} else if (strncasecmp(s.d, "multipart/", 10) == 0) {
		part->flags |= MIME_F_MULTIPART;
		if (strcasecmp(s.d + 10, "digest") == 0)
			part->flags |= MIME_F_DIGEST;
	}
	mstr_free(&s);
	if (ret < 0 || !(part->flags & MIME_F_MULTIPART) ||
	    *boundary_r != NULL)
		return;
	/* The parameters are read again into the part's data; these go. */
	{
		struct mime_arena tmp = {0};

		params = mime_params_parse(&c, &tmp, &n);
		for (i = 0; i < n; i++) {
			if (strcasecmp(params[i].name, "boundary") == 0) {
				*boundary_r = xstrndup(params[i].value,
				    BOUNDARY_STRING_MAX);
				break;
			}
		}
		mime_arena_free(&tmp);
	}
}

enum body_mode { BODY_TO_BOUNDARY, BODY_TO_EOF, BODY_MESSAGE };

/*
 * Reads the header of p->part from p->pos; leaves p->pos where its body
 * is read from, and says how.
 */
static enum body_mode
parse_header(struct parser *p)
{
	struct mime_ipart *part = p->part;
	struct mime_hdr_reader r;
	struct mime_hdr h = {0};
	char *last_boundary = NULL;
	int seen_ct = 0, multipart = 0, blank, parent_digest;
	size_t prev_nl = 0, at, hdr_end;
	struct boundary *b;

	part->pub.hdr_off = p->pos;
	r.p = p->msg + p->pos;
	r.end = p->msg + p->len;
	r.eoh = 0;
	for (;;) {
		at = (size_t)(r.p - p->msg);
		if (last_boundary != NULL && (part->flags & MIME_F_IS_MIME) &&
		    at_blank_line(p, at)) {
			/* The multipart's boundary is open from its blank
			 * line on, so that "--b" in its body is its own even
			 * when an outer boundary is a prefix of it. */
			if (p->nested + 1 < MIME_DEPTH_MAX) {
				b = xcalloc(1, sizeof(*b));
				b->part = part;
				b->str = last_boundary;
				b->len = strlen(last_boundary);
				b->next = p->bounds;
				p->bounds = b;
				last_boundary = NULL;
				multipart = 1;
			} else {
				part->flags &= ~(unsigned)MIME_F_MULTIPART;
			}
		}
		b = boundary_line(p, at);
		if (b != NULL && b->part != part) {
			/* An enclosing boundary cuts the header short; the
			 * newline before it is the boundary's. */
			hdr_end = at - prev_nl;
			part->pub.body_off = hdr_end;
			p->pos = at;
			part->pub.end_off = SIZE_MAX; /* truncated */
			break;
		}
		if (r.eoh) {
			part->pub.body_off = at;
			p->pos = at;
			break;
		}
		if (mime_hdr_next_line(&r, &h, &blank) == 0) {
			if (blank)
				prev_nl = r.p[-1] == '\n' &&
				    (size_t)(r.p - p->msg) >= 2 &&
				    r.p[-2] == '\r' ? 2 : 1;
			continue;
		}
		prev_nl = r.p[-1] != '\n' ? 0 :
		    (size_t)(r.p - p->msg) >= 2 && r.p[-2] == '\r' ? 2 : 1;
		if (mime_hdr_name_is(&h, "Mime-Version")) {
			part->flags |= MIME_F_IS_MIME;
		} else if (mime_hdr_name_is(&h, "Content-Type")) {
			part->flags |= MIME_F_IS_MIME;
			if (!seen_ct) {
				seen_ct = 1;
				tree_content_type(part, &h, &last_boundary);
			}
		}
		mime_data_header(&part->data, p->a, &h);
	}
	mstr_free(&h.value);
	free(last_boundary);

	if (!(part->flags & MIME_F_IS_MIME)) {
		/* Without MIME-Version or Content-Type the Content-*
		 * fields mean nothing. */
		part->flags = 0;
		memset(&part->data, 0, sizeof(part->data));
	}
	parent_digest = part->pub.parent != NULL &&
	    (ipart(part->pub.parent)->flags & MIME_F_DIGEST);
	if (!seen_ct || !(part->flags & MIME_F_IS_MIME))
		part->flags |= parent_digest ? MIME_F_RFC822 : MIME_F_TEXT;

	if (multipart)
		return BODY_TO_BOUNDARY;
	if (part->flags & MIME_F_RFC822) {
		if (p->nested + 1 < MIME_DEPTH_MAX &&
		    p->total < MIME_PARTS_MAX)
			return BODY_MESSAGE;
		part->flags &= ~(unsigned)MIME_F_RFC822;
	}
	return p->bounds != NULL ? BODY_TO_BOUNDARY : BODY_TO_EOF;
}

static void
part_finish(struct parser *p, size_t end)
{
	struct mime_ipart *part = p->part, *parent;

	parent = ipart(part->pub.parent);
	part->pub.end_off = part->pub.end_off == SIZE_MAX ?
	    part->pub.body_off : end;
	p->nested--;
	p->part = parent;
}

/* The next line start at or after from that is a boundary, or len. */
static size_t
find_boundary(struct parser *p, size_t from, struct boundary **b_r)
{
	size_t at = from;
	const char *lf;

	for (;;) {
		if ((*b_r = boundary_line(p, at)) != NULL)
			return at;
		lf = memchr(p->msg + at, '\n', p->len - at);
		if (lf == NULL)
			return p->len;
		at = (size_t)(lf - p->msg) + 1;
		if (at >= p->len) {
			*b_r = NULL;
			return p->len;
		}
	}
}

static void
parse(struct parser *p)
{
	enum body_mode mode;
	struct boundary *b;
	size_t at, start, block;
	const char *lf;

	mode = parse_header(p);
	for (;;) {
		if (mode == BODY_MESSAGE) {
			struct mime_ipart *parent = p->part;

			part_new(p, parent);
			p->part = ipart(parent->pub.message);
			mode = parse_header(p);
			continue;
		}
		if (mode == BODY_TO_EOF || p->bounds == NULL) {
			p->pos = p->len;
			break;
		}
		start = p->pos;
		at = find_boundary(p, start, &b);
		if (b == NULL) {
			p->pos = p->len;
			break;
		}
		/* The [CR]LF before the boundary is the boundary's. */
		block = at;
		if (at > start) {
			block--;
			if (block > start && p->msg[block - 1] == '\r')
				block--;
		}
		while (p->part != b->part)
			part_finish(p, block);
		if (b->epilogue)
			boundaries_pop_until(p, b->next);
		else
			boundaries_pop_until(p, b);
		/* the rest of the boundary line */
		lf = memchr(p->msg + at, '\n', p->len - at);
		p->pos = lf == NULL ? p->len : (size_t)(lf - p->msg) + 1;
		if (p->bounds == NULL || p->bounds->part != p->part) {
			/* the epilogue */
			mode = p->bounds != NULL ? BODY_TO_BOUNDARY :
			    BODY_TO_EOF;
			continue;
		}
		{
			struct mime_ipart *parent = p->part, *n;

			n = part_new(p, parent);
			p->part = n;
			n->flags |= MIME_F_IS_MIME;
			mode = parse_header(p);
		}
	}
	while (p->part->pub.parent != NULL)
		part_finish(p, p->len);
	p->part->pub.end_off = p->len;
	boundaries_pop_until(p, NULL);
}

/* CRLF octets of [from, to): a bare LF counts two. */
static uint64_t
crlf_size(const char *msg, size_t from, size_t to, uint64_t *lines_r)
{
	uint64_t size = to - from, lines = 0;
	const char *s = msg + from, *e = msg + to, *lf;

	while (s < e && (lf = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		lines++;
		if (lf == msg || lf[-1] != '\r')
			size++;
		s = lf + 1;
	}
	*lines_r += lines;
	return size;
}

/*
 * Sizes, bottom up: a part's body is its children plus what lies between
 * them, so each byte is counted once however deep the nesting.
 */
static void
finish_tree(const char *msg, struct mime_part *part)
{
	struct mime_ipart *ip = ipart(part);
	struct mime_part *c, *first;
	size_t pos;

	if (part->body_off < part->hdr_off)
		part->body_off = part->hdr_off;
	if (part->end_off < part->body_off)
		part->end_off = part->body_off;
	first = part->message != NULL ? part->message : part->children;
	for (c = first; c != NULL; c = c->next)
		finish_tree(msg, c);
	part->hdr_size = crlf_size(msg, part->hdr_off, part->body_off,
	    &ip->hdr_lines);
	pos = part->body_off;
	part->body_size = 0;
	for (c = first; c != NULL; c = c->next) {
		/* A message whose header a boundary cut short ends before
		 * its own (empty) message: nothing to count there. */
		if (c->hdr_off < pos || c->end_off > part->end_off)
			continue;
		part->body_size += crlf_size(msg, pos, c->hdr_off,
		    &part->body_lines);
		part->body_size += c->hdr_size + c->body_size;
		part->body_lines += ipart(c)->hdr_lines + c->body_lines;
		pos = c->end_off;
	}
	part->body_size += crlf_size(msg, pos, part->end_off,
	    &part->body_lines);
	part->is_multipart = (ip->flags & MIME_F_MULTIPART) != 0;
	part->is_message_rfc822 = (ip->flags & MIME_F_RFC822) != 0;
	if (ip->data.type != NULL) {
		part->type = ip->data.type;
		part->subtype = ip->data.subtype;
	} else if (ip->flags & MIME_F_RFC822) {
		part->type = "message";
		part->subtype = "rfc822";
	} else {
		part->type = "text";
		part->subtype = "plain";
	}
}

struct mime_message *
mime_parse(const char *msg, size_t len)
{
	struct mime_message *m = xcalloc(1, sizeof(*m));
	struct mime_priv *priv = xcalloc(1, sizeof(*priv));
	struct parser p;

	memset(&p, 0, sizeof(p));
	p.msg = msg;
	p.len = len;
	p.a = &priv->arena;
	p.total = 1;
	p.part = part_new(&p, NULL);
	m->root = &p.part->pub;
	m->priv = priv;
	parse(&p);
	finish_tree(msg, m->root);
	return m;
}

void
mime_free(struct mime_message **m_r)
{
	struct mime_message *m = *m_r;
	struct mime_priv *priv;

	if (m == NULL)
		return;
	priv = m->priv;
	mime_arena_free(&priv->arena);
	free(priv);
	free(m);
	*m_r = NULL;
}

const struct mime_part *
mime_section(const struct mime_message *m, const char *numbers)
{
	const struct mime_part *part = m->root;
	const char *s = numbers;

	while (*s != '\0' && part != NULL) {
		unsigned long n = 0;

		if (*s < '1' || *s > '9')
			return NULL;
		for (; *s >= '0' && *s <= '9'; s++) {
			n = n * 10 + (unsigned long)(*s - '0');
			if (n > MIME_PARTS_MAX)
				return NULL;
		}
		if (*s == '.') {
			s++;
			if (*s == '\0')
				return NULL;
		} else if (*s != '\0') {
			return NULL;
		}
		if (part->is_multipart) {
			part = part->children;
			for (; n > 1 && part != NULL; n--)
				part = part->next;
		} else if (n != 1) {
			return NULL;
		} else if (*s != '\0' && !part->is_message_rfc822) {
			/* only a message/rfc822 has parts below its 1 */
			return NULL;
		}
		if (part != NULL && part->is_message_rfc822 && *s != '\0')
			part = part->message;
	}
	return part;
}

/* ---- transfer decoding ---- */

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
decode_qp(struct buf *out, const char *s, size_t len)
{
	size_t i = 0, lend, keep;
	char c;

	while (i < len) {
		const char *lf = memchr(s + i, '\n', len - i);

		lend = lf == NULL ? len : (size_t)(lf - s);
		keep = lend;
		if (keep > i && s[keep - 1] == '\r')
			keep--;
		/* RFC 2045 6.7 (3): trailing white space is not data */
		while (keep > i && (s[keep - 1] == ' ' || s[keep - 1] == '\t'))
			keep--;
		for (; i < keep; i++) {
			if (s[i] == '=' && i + 1 == keep) {
				/* soft line break */
				goto next_line;
			}
			if (s[i] == '=' && i + 2 < keep &&
			    hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
				c = (char)(hexv(s[i + 1]) * 16 +
				    hexv(s[i + 2]));
				i += 2;
			} else {
				c = s[i];
			}
			if (buf_putc(out, c) < 0)
				return -1;
		}
		if (lf != NULL && buf_append(out, "\r\n", 2) < 0)
			return -1;
next_line:
		i = lf == NULL ? len : lend + 1;
	}
	return 0;
}

static int
decode_base64(struct buf *out, const char *s, size_t len)
{
	static signed char val[256];
	static int init;
	unsigned acc = 0;
	int bits = 0;
	size_t i;

	if (!init) {
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/";

		memset(val, -1, sizeof(val));
		for (i = 0; a[i] != '\0'; i++)
			val[(unsigned char)a[i]] = (signed char)i;
		init = 1;
	}
	for (i = 0; i < len; i++) {
		int v = val[(unsigned char)s[i]];

		if (s[i] == '=')
			break;
		if (v < 0)
			continue; /* line breaks and junk */
		acc = ((acc << 6) | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_putc(out, (char)((acc >> bits) & 0xff)) < 0)
				return -1;
		}
	}
	return 0;
}

int
mime_body_decode(struct buf *out, const char *msg,
    const struct mime_part *part)
{
	const char *enc = ipart(part)->data.encoding;
	const char *s = msg + part->body_off;
	size_t len = part->end_off - part->body_off;

	if (enc == NULL || strcasecmp(enc, "7bit") == 0 ||
	    strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0)
		return buf_append(out, s, len) < 0 ? -1 : 1;
	if (strcasecmp(enc, "base64") == 0)
		return decode_base64(out, s, len) < 0 ? -1 : 1;
	if (strcasecmp(enc, "quoted-printable") == 0)
		return decode_qp(out, s, len) < 0 ? -1 : 1;
	return buf_append(out, s, len) < 0 ? -1 : 0;
}

/* A base64 alphabet octet; '=' ends the data (decode_base64). */
static int
b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Where a quoted-printable piece may end at or before want: after a line
 * end, else inside a line where no "=XY" escape, soft break or trailing
 * white space is cut (decode_qp reads those at the piece's end as at a
 * line's end). len when no such point is near.
 */
static size_t
qp_piece_end(const char *s, size_t pos, size_t want, size_t len)
{
	size_t p;
	const char *lf;

	for (p = want; p > pos; p--) {
		if (s[p - 1] == '\n')
			return p;
	}
	for (p = want; p > pos + 2 && want - p < MIME_QP_BACKOFF; p--) {
		if (strchr(" \t\r=", s[p - 1]) == NULL && s[p - 2] != '=')
			return p;
	}
	lf = memchr(s + want, '\n', len - want);
	return lf != NULL ? (size_t)(lf - s) + 1 : len;
}

int
mime_body_decode_piece(struct buf *out, const char *msg,
    const struct mime_part *part, size_t *pos_r, size_t max)
{
	const char *enc = ipart(part)->data.encoding;
	const char *s = msg + part->body_off;
	size_t len = part->end_off - part->body_off, pos = *pos_r, end, n;
	int known = 1;

	if (max == 0)
		max = 1;
	if (pos > len)
		pos = len;
	end = len - pos > max ? pos + max : len;
	if (enc != NULL && strcasecmp(enc, "base64") == 0) {
		/* A piece ends after a whole number of 4-character quanta,
		 * so the next one starts with no bits pending. */
		for (end = pos, n = 0; end < len; end++) {
			if (s[end] == '=')
				break;
			if (b64_char(s[end]) && ++n % 4 == 0 &&
			    end + 1 - pos >= max) {
				end++;
				break;
			}
		}
		if (decode_base64(out, s + pos, end - pos) < 0)
			return -1;
		*pos_r = end < len && s[end] == '=' ? len : end;
		return 1;
	}
	if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0) {
		if (end < len)
			end = qp_piece_end(s, pos, end, len);
		if (decode_qp(out, s + pos, end - pos) < 0)
			return -1;
		*pos_r = end;
		return 1;
	}
	if (enc != NULL && strcasecmp(enc, "7bit") != 0 &&
	    strcasecmp(enc, "8bit") != 0 && strcasecmp(enc, "binary") != 0)
		known = 0;
	if (buf_append(out, s + pos, end - pos) < 0)
		return -1;
	*pos_r = end;
	return known;
}
