/* SPDX-License-Identifier: MIT */
/*
 * The header side of the MIME parser: header lines and their folding
 * (RFC 5322 2.2), the RFC 822 tokens of structured fields, Content-Type
 * and its parameters with RFC 2231 continuations and charsets, the other
 * Content-* fields (RFC 2045, RFC 2183, RFC 3066, RFC 2557, RFC 1864),
 * address lists with groups (RFC 5322 3.4), RFC 2047 encoded words.
 *
 * Malformed input is read as Dovecot 2.3 reads it (lib-mail's
 * message-header-parser, rfc822-parser, rfc2231-parser, message-address):
 * what is kept, dropped or filled in ("MISSING_DOMAIN", "SYNTAX_ERROR")
 * shows in ENVELOPE and BODYSTRUCTURE, which must not change when an
 * admin moves mailboxes between the two servers.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "mail/mime_int.h"

/* RFC 5322 2.1.1 and 2.2: a longer name is taken as a value line. */
#define HDR_NAME_MAX 1000
#define ARENA_CHUNK 8192

struct mime_chunk {
	struct mime_chunk *next;
	size_t used, size;
	max_align_t data[];
};

void *
mime_arena_alloc(struct mime_arena *a, size_t n)
{
	struct mime_chunk *c = a->chunks;
	size_t align = sizeof(max_align_t), need;
	char *p;

	need = (n + align - 1) / align * align;
	if (need < n)
		abort();
	if (c == NULL || c->size - c->used < need) {
		size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		c = xmalloc(sizeof(*c) + size);
		c->used = 0;
		c->size = size;
		c->next = a->chunks;
		a->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	memset(p, 0, n);
	return p;
}

char *
mime_arena_strndup(struct mime_arena *a, const char *s, size_t n)
{
	char *p = mime_arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
mime_arena_free(struct mime_arena *a)
{
	struct mime_chunk *c, *next;

	for (c = a->chunks; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->chunks = NULL;
}

void
mstr_add(struct mstr *s, const void *p, size_t n)
{
	if (s->cap - s->len <= n) {
		size_t cap = s->cap < 64 ? 64 : s->cap;

		while (cap - s->len <= n) {
			if (cap > SIZE_MAX / 2)
				abort();
			cap *= 2;
		}
		s->d = xrealloc(s->d, cap);
		s->cap = cap;
	}
	if (n > 0)
		memcpy(s->d + s->len, p, n);
	s->len += n;
	s->d[s->len] = '\0';
}

void
mstr_addc(struct mstr *s, char c)
{
	mstr_add(s, &c, 1);
}

void
mstr_adds(struct mstr *s, const char *p)
{
	mstr_add(s, p, strlen(p));
}

void
mstr_trunc(struct mstr *s, size_t n)
{
	if (n < s->len) {
		s->len = n;
		s->d[n] = '\0';
	}
}

const char *
mstr_c(struct mstr *s)
{
	if (s->d == NULL)
		mstr_add(s, "", 0);
	return s->d;
}

void
mstr_free(struct mstr *s)
{
	free(s->d);
	s->d = NULL;
	s->len = s->cap = 0;
}

char *
mime_header_strdup(struct mime_arena *a, const char *s, size_t len)
{
	struct mstr t = {0};
	char *r;
	size_t i;

	if (memchr(s, '\0', len) == NULL)
		return mime_arena_strndup(a, s, len);
	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			mstr_adds(&t, MIME_NUL_REPLACEMENT);
		else
			mstr_addc(&t, s[i]);
	}
	r = mime_arena_strndup(a, t.d, t.len);
	mstr_free(&t);
	return r;
}

/* ---- header lines ---- */

static int
is_lwsp(char c)
{
	return c == ' ' || c == '\t';
}

/* One physical line from r->p: its content without [CR]LF, and whether
 * the next line continues it. 0 when no bytes are left. */
static int
hdr_physical(struct mime_hdr_reader *r, const char **s_r, size_t *len_r,
    int *continues_r)
{
	const char *s = r->p, *lf;
	size_t len;

	if (s >= r->end)
		return 0;
	lf = memchr(s, '\n', (size_t)(r->end - s));
	*continues_r = 0;
	if (lf == NULL) {
		/* The header ends with the data: a CR stays in the value. */
		len = (size_t)(r->end - s);
		r->p = r->end;
	} else {
		len = (size_t)(lf - s);
		if (len > 0 && s[len - 1] == '\r')
			len--;
		r->p = lf + 1;
		*continues_r = r->p < r->end && is_lwsp(*r->p);
	}
	*s_r = s;
	*len_r = len;
	return 1;
}

int
mime_hdr_next_line(struct mime_hdr_reader *r, struct mime_hdr *h,
    int *blank_r)
{
	const char *s, *colon = NULL;
	size_t len, i, name_end, pos;
	int continues;

	*blank_r = 0;
	if (r->eoh || !hdr_physical(r, &s, &len, &continues)) {
		r->eoh = 1;
		return 0;
	}
	if (len == 0 && !continues) {
		r->eoh = 1;
		*blank_r = 1;
		return 0;
	}
	h->has_nuls = 0;
	mstr_trunc(&h->value, 0);
	for (i = 0; i < len; i++) {
		if (s[i] == ':') {
			colon = s + i;
			break;
		}
		if (s[i] == '\0')
			h->has_nuls = 1;
	}
	if (colon == NULL) {
		h->name = "";
		h->name_len = 0;
		mstr_add(&h->value, s, len);
	} else {
		name_end = (size_t)(colon - s);
		while (name_end > 0 && is_lwsp(s[name_end - 1]))
			name_end--;
		if (name_end > HDR_NAME_MAX) {
			h->name = "";
			h->name_len = 0;
			mstr_add(&h->value, s, len);
		} else {
			const char *v = colon + 1;
			size_t vlen = len - (size_t)(v - s);

			/* All white space after ':' goes, except when the
			 * value is only white space: then only the first. */
			for (pos = 0; pos < vlen && is_lwsp(v[pos]); pos++)
				;
			if (pos == vlen)
				pos = vlen > 0 && is_lwsp(v[0]) ? 1 : 0;
			h->name = s;
			h->name_len = name_end;
			mstr_add(&h->value, v + pos, vlen - pos);
		}
	}
	while (continues) {
		if (!hdr_physical(r, &s, &len, &continues))
			break;
		mstr_addc(&h->value, '\n');
		mstr_add(&h->value, s, len);
	}
	mstr_c(&h->value);
	return 1;
}

int
mime_hdr_name_is(const struct mime_hdr *h, const char *name)
{
	size_t n = strlen(name), len = strnlen(h->name, h->name_len);

	return len == n && strncasecmp(h->name, name, n) == 0;
}

char *
mime_header_get(const char *hdr, size_t len, const char *name)
{
	struct mime_hdr_reader r = {hdr, hdr + len, 0};
	struct mime_hdr h = {0};
	char *ret = NULL;
	int blank;

	while (mime_hdr_next_line(&r, &h, &blank) > 0) {
		if (mime_hdr_name_is(&h, name)) {
			ret = xstrndup(h.value.d, h.value.len);
			break;
		}
	}
	mstr_free(&h.value);
	return ret;
}

/* ---- RFC 822 tokens ---- */

/* 1: atext; 2: alpha, digits and 8-bit; 4: atext that MIME calls
 * tspecials ('/', '=', '?'). */
const unsigned char mime_atext[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 4,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 4, 0, 4,
	0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 1, 1,
	1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

void
rfc822_init(struct rfc822_ctx *c, const char *data, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->data = (const unsigned char *)data;
	c->end = c->data + len;
}

/* The byte at the cursor; the buffers end with a NUL, which the rules
 * below rely on where they look one past the end. */
#define CUR(c) (*(c)->data)

static int
rfc822_skip_comment(struct rfc822_ctx *c)
{
	const unsigned char *start;
	int level = 1;

	if (c->last_comment != NULL)
		mstr_trunc(c->last_comment, 0);
	start = ++c->data;
	for (; c->data < c->end; c->data++) {
		switch (*c->data) {
		case '\0':
			if (c->last_comment != NULL &&
			    c->nul_replacement != NULL) {
				mstr_add(c->last_comment, start,
				    (size_t)(c->data - start));
				mstr_adds(c->last_comment, c->nul_replacement);
				start = c->data + 1;
			}
			break;
		case '(':
			level++;
			break;
		case ')':
			if (--level == 0) {
				if (c->last_comment != NULL)
					mstr_add(c->last_comment, start,
					    (size_t)(c->data - start));
				c->data++;
				return c->data < c->end ? 1 : 0;
			}
			break;
		case '\n':
			if (c->last_comment != NULL) {
				size_t len = (size_t)(c->data - start);

				if (len > 0 && start[len - 1] == '\r')
					len--;
				mstr_add(c->last_comment, start, len);
				start = c->data + 1;
			}
			break;
		case '\\':
			c->data++;
			if (c->data >= c->end)
				return -1;
			if (*c->data == '\r' || *c->data == '\n' ||
			    *c->data == '\0') {
				/* Not a quoted pair (obs-qp): the character
				 * is read again as itself. */
				c->data--;
				break;
			}
			if (c->last_comment != NULL)
				mstr_add(c->last_comment, start,
				    (size_t)(c->data - start - 1));
			start = c->data;
			break;
		}
	}
	return -1;
}

int
rfc822_skip_lwsp(struct rfc822_ctx *c)
{
	while (c->data < c->end) {
		if (*c->data == ' ' || *c->data == '\t' || *c->data == '\r' ||
		    *c->data == '\n') {
			c->data++;
			continue;
		}
		if (*c->data != '(')
			break;
		if (rfc822_skip_comment(c) < 0)
			return -1;
	}
	return c->data < c->end ? 1 : 0;
}

int
rfc822_parse_atom(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;

	if (c->data >= c->end || !MIME_IS_ATEXT(*c->data))
		return -1;
	for (start = c->data++; c->data < c->end; c->data++) {
		if (MIME_IS_ATEXT(*c->data))
			continue;
		mstr_add(s, start, (size_t)(c->data - start));
		return rfc822_skip_lwsp(c);
	}
	mstr_add(s, start, (size_t)(c->data - start));
	return 0;
}

int
rfc822_parse_dot_atom(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;
	int ret;

	if (c->data >= c->end || !MIME_IS_ATEXT(*c->data))
		return -1;
	for (start = c->data++; c->data < c->end;) {
		if (MIME_IS_ATEXT(*c->data)) {
			c->data++;
			continue;
		}
		if (start == c->data)
			return -1;
		mstr_add(s, start, (size_t)(c->data - start));
		if ((ret = rfc822_skip_lwsp(c)) <= 0)
			return ret;
		if (*c->data != '.')
			return 1;
		c->data++;
		mstr_addc(s, '.');
		if (rfc822_skip_lwsp(c) <= 0)
			return -1;
		start = c->data;
	}
	mstr_add(s, start, (size_t)(c->data - start));
	return 0;
}

int
rfc822_parse_mime_token(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;

	for (start = c->data; c->data < c->end; c->data++) {
		if (MIME_IS_TOKEN(*c->data) || *c->data == '.')
			continue;
		mstr_add(s, start, (size_t)(c->data - start));
		return rfc822_skip_lwsp(c);
	}
	mstr_add(s, start, (size_t)(c->data - start));
	return 0;
}

/*
 * Inside a quoted string or a domain literal: a NUL becomes
 * nul_replacement (when set) and the line break of a folded header goes,
 * as in Dovecot. 1 when *c->data was one of them (taken into s up to it).
 */
static int
rfc822_nul_or_lf(struct rfc822_ctx *c, struct mstr *s,
    const unsigned char **start)
{
	size_t len;

	if (*c->data == '\0') {
		if (c->nul_replacement != NULL) {
			mstr_add(s, *start, (size_t)(c->data - *start));
			mstr_adds(s, c->nul_replacement);
			*start = c->data + 1;
		}
		return 1;
	}
	if (*c->data != '\n')
		return 0;
	len = (size_t)(c->data - *start);
	if (len > 0 && (*start)[len - 1] == '\r')
		len--;
	mstr_add(s, *start, len);
	*start = c->data + 1;
	return 1;
}

int
rfc822_parse_quoted_string(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;

	c->data++;
	for (start = c->data; c->data < c->end; c->data++) {
		if (rfc822_nul_or_lf(c, s, &start))
			continue;
		switch (*c->data) {
		case '"':
			mstr_add(s, start, (size_t)(c->data - start));
			c->data++;
			return rfc822_skip_lwsp(c);
		case '\\':
			c->data++;
			if (c->data >= c->end)
				return -1;
			if (*c->data == '\r' || *c->data == '\n' ||
			    *c->data == '\0') {
				c->data--;
				break;
			}
			mstr_add(s, start, (size_t)(c->data - start - 1));
			start = c->data;
			break;
		}
	}
	return -1;
}

static int
rfc822_parse_atom_or_dot(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;

	for (start = c->data; c->data < c->end; c->data++) {
		if (MIME_IS_ATEXT(*c->data) || *c->data == '.')
			continue;
		mstr_add(s, start, (size_t)(c->data - start));
		return rfc822_skip_lwsp(c);
	}
	mstr_add(s, start, (size_t)(c->data - start));
	return 0;
}

static int
rfc822_parse_phrase(struct rfc822_ctx *c, struct mstr *s)
{
	int ret;

	if (c->data >= c->end)
		return 0;
	if (*c->data == '.')
		return -1;
	for (;;) {
		if (*c->data == '"')
			ret = rfc822_parse_quoted_string(c, s);
		else
			ret = rfc822_parse_atom_or_dot(c, s);
		if (ret <= 0)
			return ret;
		if (!MIME_IS_ATEXT(*c->data) && *c->data != '"' &&
		    *c->data != '.')
			break;
		mstr_addc(s, ' ');
	}
	return rfc822_skip_lwsp(c);
}

static int
rfc822_parse_domain_literal(struct rfc822_ctx *c, struct mstr *s)
{
	const unsigned char *start;

	for (start = c->data++; c->data < c->end; c->data++) {
		if (rfc822_nul_or_lf(c, s, &start))
			continue;
		switch (*c->data) {
		case '[':
			return -1;
		case ']':
			mstr_add(s, start, (size_t)(c->data - start + 1));
			c->data++;
			return rfc822_skip_lwsp(c);
		case '\\':
			/* the backslash stays in a domain literal */
			c->data++;
			if (c->data >= c->end)
				return -1;
			if (*c->data == '\r' || *c->data == '\n' ||
			    *c->data == '\0') {
				mstr_add(s, start, (size_t)(c->data - start));
				start = c->data;
				c->data--;
				break;
			}
		}
	}
	return -1;
}

static int
rfc822_parse_domain(struct rfc822_ctx *c, struct mstr *s)
{
	c->data++; /* '@' */
	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	if (*c->data == '[')
		return rfc822_parse_domain_literal(c, s);
	return rfc822_parse_dot_atom(c, s);
}

int
rfc822_parse_content_type(struct rfc822_ctx *c, struct mstr *s)
{
	size_t pos0 = s->len, pos;
	int ret;

	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	/* A type without a subtype is kept as it is, to match the text
	 * flag the tree parser sets from the same header. */
	if (rfc822_parse_mime_token(c, s) <= 0 || s->len == pos0)
		return -1;
	if (*c->data != '/') {
		mstr_trunc(s, pos0);
		return -1;
	}
	c->data++;
	if (rfc822_skip_lwsp(c) <= 0) {
		mstr_trunc(s, pos0);
		return -1;
	}
	mstr_addc(s, '/');
	pos = s->len;
	if ((ret = rfc822_parse_mime_token(c, s)) < 0 || s->len == pos ||
	    (c->data != c->end && *c->data != ';')) {
		mstr_trunc(s, pos0);
		return -1;
	}
	return ret;
}

static int
rfc822_parse_content_param(struct rfc822_ctx *c, struct mstr *key,
    struct mstr *value)
{
	int ret;

	mstr_trunc(key, 0);
	mstr_trunc(value, 0);
	mstr_c(value);
	if (c->data >= c->end)
		return 0;
	if (*c->data != ';')
		return -1;
	c->data++;
	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	if (rfc822_parse_mime_token(c, key) <= 0)
		return -1;
	if (*c->data != '=')
		return -1;
	c->data++;
	if ((ret = rfc822_skip_lwsp(c)) <= 0) {
		/* no value */
	} else if (*c->data == '"') {
		ret = rfc822_parse_quoted_string(c, value);
	} else if (*c->data == '=') {
		/* Broken senders write name==?utf-8?b?...?= unquoted. */
		while (c->data < c->end && *c->data != ';' &&
		    *c->data != ' ' && *c->data != '\t' && *c->data != '\r' &&
		    *c->data != '\n') {
			mstr_addc(value, (char)*c->data);
			c->data++;
		}
	} else {
		ret = rfc822_parse_mime_token(c, value);
	}
	mstr_c(key);
	return ret < 0 ? -1 : 1;
}

/* ---- RFC 2231 ---- */

struct p2231 {
	char *key, *value;
	unsigned idx;
	int extended;
	size_t order;
};

static int
p2231_cmp(const void *x, const void *y)
{
	const struct p2231 *a = x, *b = y;
	int r = strcmp(a->key, b->key);

	if (r != 0)
		return r;
	if (a->idx != b->idx)
		return a->idx < b->idx ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

struct param_list {
	struct mime_param *v;
	size_t n, cap;
};

static void
plist_add(struct param_list *l, struct mime_arena *a, const char *name,
    size_t nlen, const char *value, size_t vlen)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 8 : l->cap * 2;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].name = mime_arena_strndup(a, name, nlen);
	l->v[l->n].value = mime_arena_strndup(a, value, vlen);
	l->n++;
}

struct mime_param *
mime_params_parse(struct rfc822_ctx *c, struct mime_arena *a,
    size_t *count_r)
{
	struct mstr key = {0}, value = {0}, merged = {0};
	struct param_list out = {0};
	struct p2231 *ext = NULL;
	size_t n_ext = 0, cap_ext = 0, i, j, next;
	/* Dovecot keeps the index of the last numbered parameter for a
	 * following "name*" (no number): the same quirk here, so that
	 * such headers list the same parameters. */
	unsigned idx = 0;
	int ret, extended = 0;
	const char *saved = c->nul_replacement;
	struct mime_param *result;

	c->nul_replacement = MIME_NUL_REPLACEMENT;
	while ((ret = rfc822_parse_content_param(c, &key, &value)) != 0) {
		const char *k, *p;

		if (ret < 0) {
			if (c->data >= c->end)
				break;
			c->data++;
			continue;
		}
		k = key.d;
		p = strchr(k, '*');
		if (p != NULL) {
			const char *star = p;

			if (p[1] != '\0') {
				p++;
				idx = 0;
				for (; *p >= '0' && *p <= '9'; p++)
					idx = idx * 10 + (unsigned)(*p - '0');
			}
			if (*p != '*') {
				extended = 0;
			} else {
				extended = 1;
				p++;
			}
			if (*p != '\0') {
				p = NULL;
			} else {
				if (n_ext == cap_ext) {
					cap_ext = cap_ext == 0 ? 8 :
					    cap_ext * 2;
					ext = xrealloc(ext,
					    cap_ext * sizeof(*ext));
				}
				ext[n_ext].key = xstrndup(k,
				    (size_t)(star - k));
				ext[n_ext].value = xstrndup(value.d,
				    value.len);
				ext[n_ext].idx = idx;
				ext[n_ext].extended = extended;
				ext[n_ext].order = n_ext;
				n_ext++;
			}
		}
		if (p == NULL)
			plist_add(&out, a, k, key.len, value.d,
			    strlen(value.d));
	}
	c->nul_replacement = saved;

	if (n_ext > 0)
		qsort(ext, n_ext, sizeof(*ext), p2231_cmp);
	for (i = 0; i < n_ext; i = next) {
		int ok = 1, have_ext = 0;
		unsigned next_idx = 0;

		for (j = i; j < n_ext; j++) {
			if (strcasecmp(ext[i].key, ext[j].key) != 0)
				break;
			if (ext[j].idx != next_idx)
				ok = 0;
			if (ext[j].extended)
				have_ext = 1;
			next_idx++;
		}
		next = j;
		if (!ok) {
			/* A missing section: the pieces stay apart. */
			for (j = i; j < next; j++) {
				char *k = xasprintf(ext[j].extended ?
				    "%s*%u*" : "%s*%u", ext[j].key,
				    ext[j].idx);

				plist_add(&out, a, k, strlen(k), ext[j].value,
				    strlen(ext[j].value));
				free(k);
			}
			continue;
		}
		mstr_trunc(&merged, 0);
		mstr_c(&merged);
		if (!ext[i].extended && have_ext)
			mstr_adds(&merged, "''");
		for (j = i; j < next; j++) {
			const char *v = ext[j].value;

			if (!ext[j].extended && have_ext) {
				for (; *v != '\0'; v++) {
					if (*v == '%')
						mstr_adds(&merged, "%25");
					else
						mstr_addc(&merged, *v);
				}
			} else {
				mstr_adds(&merged, v);
			}
		}
		{
			char *k = xasprintf("%s%s", ext[i].key,
			    have_ext ? "*" : "");

			plist_add(&out, a, k, strlen(k), merged.d,
			    merged.len);
			free(k);
		}
	}
	for (i = 0; i < n_ext; i++) {
		free(ext[i].key);
		free(ext[i].value);
	}
	free(ext);
	mstr_free(&key);
	mstr_free(&value);
	mstr_free(&merged);

	*count_r = out.n;
	if (out.n == 0) {
		free(out.v);
		return NULL;
	}
	result = mime_arena_alloc(a, out.n * sizeof(*result));
	memcpy(result, out.v, out.n * sizeof(*result));
	free(out.v);
	return result;
}

/* ---- Content-* ---- */

static void
data_content_type(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h)
{
	struct rfc822_ctx c;
	struct mstr s = {0};
	const char *slash;
	int ret;

	rfc822_init(&c, h->value.d, h->value.len);
	rfc822_skip_lwsp(&c);
	ret = rfc822_parse_content_type(&c, &s);
	mstr_c(&s);
	slash = strchr(s.d, '/');
	if (slash != NULL) {
		d->type = mime_arena_strndup(a, s.d, (size_t)(slash - s.d));
		d->subtype = mime_arena_strndup(a, slash + 1,
		    strlen(slash + 1));
	} else {
		d->type = mime_arena_strndup(a, s.d, strlen(s.d));
		d->subtype = "";
	}
	mstr_free(&s);
	if (ret < 0)
		return;
	d->type_params = mime_params_parse(&c, a, &d->n_type_params);
}

static void
data_encoding(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h)
{
	struct rfc822_ctx c;
	struct mstr s = {0};

	rfc822_init(&c, h->value.d, h->value.len);
	rfc822_skip_lwsp(&c);
	if (rfc822_parse_mime_token(&c, &s) >= 0 &&
	    rfc822_skip_lwsp(&c) == 0 && s.len > 0)
		d->encoding = mime_arena_strndup(a, s.d, s.len);
	mstr_free(&s);
}

static void
data_disposition(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h)
{
	struct rfc822_ctx c;
	struct mstr s = {0};

	rfc822_init(&c, h->value.d, h->value.len);
	rfc822_skip_lwsp(&c);
	if (rfc822_parse_mime_token(&c, &s) < 0) {
		mstr_free(&s);
		return;
	}
	mstr_c(&s);
	d->disposition = mime_arena_strndup(a, s.d, s.len);
	mstr_free(&s);
	d->disp_params = mime_params_parse(&c, a, &d->n_disp_params);
}

static void
data_language(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h)
{
	struct rfc822_ctx c;
	struct mstr s = {0};
	const char **langs = NULL;
	size_t n = 0, cap = 0;

	rfc822_init(&c, h->value.d, h->value.len);
	rfc822_skip_lwsp(&c);
	while (rfc822_parse_atom(&c, &s) >= 0) {
		if (n + 1 >= cap) {
			cap = cap == 0 ? 4 : cap * 2;
			langs = xrealloc(langs, cap * sizeof(*langs));
		}
		langs[n++] = mime_arena_strndup(a, s.d, s.len);
		mstr_trunc(&s, 0);
		if (c.data >= c.end || *c.data != ',')
			break;
		c.data++;
		rfc822_skip_lwsp(&c);
	}
	mstr_free(&s);
	if (n > 0) {
		const char **v = mime_arena_alloc(a, (n + 1) * sizeof(*v));

		memcpy(v, langs, n * sizeof(*v));
		v[n] = NULL;
		d->language = v;
	}
	free(langs);
}

void
mime_data_header(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h)
{
	const char *v = h->value.d;
	size_t vlen = h->value.len;

	if (h->name_len < 8 || strncasecmp(h->name, "Content-", 8) != 0)
		return;
	if (mime_hdr_name_is(h, "Content-ID")) {
		if (d->id == NULL)
			d->id = mime_header_strdup(a, v, vlen);
	} else if (mime_hdr_name_is(h, "Content-MD5")) {
		if (d->md5 == NULL)
			d->md5 = mime_header_strdup(a, v, vlen);
	} else if (mime_hdr_name_is(h, "Content-Type")) {
		if (d->type == NULL)
			data_content_type(d, a, h);
	} else if (mime_hdr_name_is(h, "Content-Transfer-Encoding")) {
		if (d->encoding == NULL)
			data_encoding(d, a, h);
	} else if (mime_hdr_name_is(h, "Content-Language")) {
		if (d->language == NULL)
			data_language(d, a, h);
	} else if (mime_hdr_name_is(h, "Content-Location")) {
		if (d->location == NULL)
			d->location = mime_header_strdup(a, v, vlen);
	} else if (mime_hdr_name_is(h, "Content-Description")) {
		if (d->description == NULL)
			d->description = mime_header_strdup(a, v, vlen);
	} else if (mime_hdr_name_is(h, "Content-Disposition")) {
		/* Dovecot reads a later one again while the first had no
		 * parameters; so does this. */
		if (d->disp_params == NULL)
			data_disposition(d, a, h);
	}
}

/* ---- addresses ---- */

struct addr_ctx {
	struct mime_arena *a;
	struct rfc822_ctx p;
	struct mime_addr **tail;
	struct mime_addr addr;
	int invalid;
	struct mstr str, comment;
};

static void
addr_add(struct addr_ctx *c)
{
	struct mime_addr *n = mime_arena_alloc(c->a, sizeof(*n));

	*n = c->addr;
	n->next = NULL;
	memset(&c->addr, 0, sizeof(c->addr));
	c->invalid = 0;
	*c->tail = n;
	c->tail = &n->next;
}

static char *
addr_strdup(struct addr_ctx *c)
{
	return mime_arena_strndup(c->a, mstr_c(&c->str), c->str.len);
}

/* Local parts: dots anywhere, as Dovecot reads them by default. */
static int
addr_nonstrict_dot_atom(struct addr_ctx *c)
{
	struct rfc822_ctx *p = &c->p;
	int ret = -1;

	do {
		while (*p->data == '.') {
			mstr_addc(&c->str, '.');
			p->data++;
			if (p->data == p->end)
				return 0;
			ret = 1;
		}
		if (*p->data == '@')
			break;
		ret = rfc822_parse_atom(p, &c->str);
	} while (ret > 0 && *p->data == '.');
	return ret;
}

static int
addr_local_part(struct addr_ctx *c)
{
	int ret;

	mstr_trunc(&c->str, 0);
	if (*c->p.data == '"')
		ret = rfc822_parse_quoted_string(&c->p, &c->str);
	else
		ret = addr_nonstrict_dot_atom(c);
	if (ret < 0)
		return -1;
	c->addr.mailbox = addr_strdup(c);
	return ret;
}

static int
addr_domain(struct addr_ctx *c)
{
	int ret;

	mstr_trunc(&c->str, 0);
	if ((ret = rfc822_parse_domain(&c->p, &c->str)) < 0)
		return -1;
	c->addr.domain = addr_strdup(c);
	return ret;
}

static int
addr_domain_list(struct addr_ctx *c)
{
	int ret;

	mstr_trunc(&c->str, 0);
	for (;;) {
		if (c->p.data >= c->p.end)
			return 0;
		if (*c->p.data != '@')
			break;
		if (c->str.len > 0)
			mstr_addc(&c->str, ',');
		mstr_addc(&c->str, '@');
		if ((ret = rfc822_parse_domain(&c->p, &c->str)) <= 0)
			return ret;
		while (rfc822_skip_lwsp(&c->p) > 0 && *c->p.data == ',')
			c->p.data++;
	}
	c->addr.route = addr_strdup(c);
	return 1;
}

static int
addr_angle(struct addr_ctx *c)
{
	c->p.data++; /* '<' */
	if (rfc822_skip_lwsp(&c->p) <= 0)
		return -1;
	if (*c->p.data == '@') {
		if (addr_domain_list(c) > 0 && *c->p.data == ':') {
			c->p.data++;
		} else {
			c->addr.route = "INVALID_ROUTE";
			if (c->p.data >= c->p.end)
				return -1;
		}
		if (rfc822_skip_lwsp(&c->p) <= 0)
			return -1;
	}
	if (*c->p.data != '>') {
		if (addr_local_part(c) <= 0)
			return -1;
		if (*c->p.data == '@') {
			if (addr_domain(c) <= 0)
				return -1;
		}
	}
	if (*c->p.data != '>')
		return -1;
	c->p.data++;
	return rfc822_skip_lwsp(&c->p);
}

static int
addr_name_addr(struct addr_ctx *c)
{
	mstr_trunc(&c->str, 0);
	if (rfc822_parse_phrase(&c->p, &c->str) <= 0 || *c->p.data != '<')
		return -1;
	c->addr.name = c->str.len == 0 ? NULL : addr_strdup(c);
	if (addr_angle(c) < 0) {
		c->addr.domain = "SYNTAX_ERROR";
		c->invalid = 1;
	}
	return c->p.data < c->p.end ? 1 : 0;
}

static int
addr_spec(struct addr_ctx *c)
{
	int ret, ret2 = -2, quoted;

	mstr_trunc(&c->comment, 0);
	quoted = *c->p.data == '"';
	ret = addr_local_part(c);
	if (ret <= 0)
		c->invalid = 1;
	if (ret != 0 && c->p.data < c->p.end && *c->p.data == '@') {
		ret2 = addr_domain(c);
		if (ret2 <= 0)
			ret = ret2;
	}
	if (c->comment.len > 0) {
		c->addr.name = mime_arena_strndup(c->a, c->comment.d,
		    c->comment.len);
	} else if (ret2 == -2) {
		/* "user" alone is a mailbox; "user more words" a name. */
		size_t len;

		mstr_addc(&c->str, ' ');
		len = c->str.len;
		(void)rfc822_parse_phrase(&c->p, &c->str);
		if (c->str.len != len) {
			c->addr.mailbox = NULL;
			c->addr.name = addr_strdup(c);
		} else if (!quoted) {
			c->addr.domain = "";
		}
		c->invalid = 1;
		ret = -1;
	}
	return ret;
}

static void
addr_add_fixed(struct addr_ctx *c)
{
	if (c->addr.mailbox == NULL)
		c->addr.mailbox = "MISSING_MAILBOX";
	if (c->addr.domain == NULL || c->addr.domain[0] == '\0')
		c->addr.domain = "MISSING_DOMAIN";
	addr_add(c);
}

static int
addr_mailbox(struct addr_ctx *c)
{
	const unsigned char *start = c->p.data;
	int ret;

	if ((ret = addr_name_addr(c)) < 0) {
		c->p.data = start;
		ret = addr_spec(c);
		if (c->invalid && c->addr.name == NULL &&
		    c->addr.mailbox != NULL && c->addr.domain == NULL) {
			c->addr.name = c->addr.mailbox;
			c->addr.mailbox = NULL;
		}
	}
	addr_add_fixed(c);
	return ret;
}

static int
addr_group(struct addr_ctx *c)
{
	int ret;

	mstr_trunc(&c->str, 0);
	if (rfc822_parse_phrase(&c->p, &c->str) <= 0 || *c->p.data != ':')
		return -1;
	c->p.data++;
	ret = rfc822_skip_lwsp(&c->p);
	c->addr.mailbox = addr_strdup(c);
	addr_add(c);
	if (ret > 0 && *c->p.data != ';') {
		for (;;) {
			(void)addr_mailbox(c);
			if (c->p.data >= c->p.end || *c->p.data != ',')
				break;
			c->p.data++;
			if (rfc822_skip_lwsp(&c->p) <= 0) {
				ret = -1;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (c->p.data >= c->p.end || *c->p.data != ';') {
			ret = -1;
		} else {
			c->p.data++;
			ret = rfc822_skip_lwsp(&c->p);
		}
	}
	addr_add(c); /* the group's end: all NIL */
	return ret == 0 ? 0 : 1;
}

static int
addr_address(struct addr_ctx *c)
{
	const unsigned char *start = c->p.data;
	int ret;

	if ((ret = addr_group(c)) < 0) {
		c->p.data = start;
		ret = addr_mailbox(c);
	}
	return ret;
}

void
mime_addr_parse(struct mime_arena *a, const char *value, size_t len,
    struct mime_addr ***tail_r)
{
	struct addr_ctx c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.a = a;
	c.tail = *tail_r;
	rfc822_init(&c.p, value, len);
	c.p.last_comment = &c.comment;
	c.p.nul_replacement = MIME_NUL_REPLACEMENT;
	if (rfc822_skip_lwsp(&c.p) > 0) {
		for (;;) {
			if (addr_address(&c) == 0)
				break;
			if (c.p.data >= c.p.end || *c.p.data != ',')
				break;
			c.p.data++;
			if ((ret = rfc822_skip_lwsp(&c.p)) <= 0) {
				if (ret < 0)
					addr_add_fixed(&c);
				break;
			}
		}
	}
	*tail_r = c.tail;
	mstr_free(&c.str);
	mstr_free(&c.comment);
}

/* ---- RFC 2047 ---- */

static int
hexval(char c)
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
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes an encoded word's text; 0, or -1 when it is not valid. */
static int
word_decode(char enc, const char *t, size_t len, struct mstr *out)
{
	size_t i;

	if (enc == 'Q' || enc == 'q') {
		for (i = 0; i < len; i++) {
			if (t[i] == '_') {
				mstr_addc(out, ' ');
			} else if (t[i] == '=') {
				int h, l;

				if (i + 2 >= len)
					return -1;
				h = hexval(t[i + 1]);
				l = hexval(t[i + 2]);
				if (h < 0 || l < 0)
					return -1;
				mstr_addc(out, (char)(h * 16 + l));
				i += 2;
			} else {
				mstr_addc(out, t[i]);
			}
		}
		return 0;
	}
	if (enc == 'B' || enc == 'b') {
		unsigned acc = 0;
		int bits = 0, v;

		for (i = 0; i < len; i++) {
			if (t[i] == '=')
				break;
			if ((v = b64val(t[i])) < 0)
				return -1;
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				mstr_addc(out, (char)((acc >> bits) & 0xff));
			}
		}
		return 0;
	}
	return -1;
}

/* Appends text in charset as UTF-8; 0, or -1 when the charset is unknown
 * or the text does not convert. */
static int
charset_to_utf8(const char *charset, const char *in, size_t len,
    struct mstr *out)
{
	char cs[64];
	const char *star;
	size_t cslen;
	iconv_t cd;
	char buf[256];
	char *ip = (char *)in, *op;
	size_t il = len, ol;
	struct mstr tmp = {0};
	int ret = 0;

	/* RFC 2231 5: charset*language */
	star = strchr(charset, '*');
	cslen = star != NULL ? (size_t)(star - charset) : strlen(charset);
	if (cslen == 0 || cslen >= sizeof(cs))
		return -1;
	memcpy(cs, charset, cslen);
	cs[cslen] = '\0';
	if (strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0) {
		mstr_add(out, in, len);
		return 0;
	}
	cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return -1;
	while (il > 0) {
		op = buf;
		ol = sizeof(buf);
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 &&
		    errno != E2BIG) {
			ret = -1;
			break;
		}
		mstr_add(&tmp, buf, sizeof(buf) - ol);
	}
	iconv_close(cd);
	if (ret == 0)
		mstr_add(out, tmp.d, tmp.len);
	mstr_free(&tmp);
	return ret;
}

/* An encoded word "=?charset?e?text?=" at s (len left): its length, and
 * the decoded UTF-8 appended to out; 0 when it is not one. */
static size_t
encoded_word(const char *s, size_t len, struct mstr *out)
{
	const char *q1, *end, *p;
	struct mstr raw = {0};
	char *charset;
	size_t n;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	q1 = memchr(s + 2, '?', len - 2);
	if (q1 == NULL || q1 == s + 2 || (size_t)(s + len - q1) < 4 ||
	    q1[2] != '?')
		return 0;
	p = q1 + 3;
	end = NULL;
	for (; p + 1 < s + len; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			return 0;
		if (p[0] == '?' && p[1] == '=') {
			end = p;
			break;
		}
	}
	if (end == NULL)
		return 0;
	charset = xstrndup(s + 2, (size_t)(q1 - s - 2));
	n = 0;
	if (word_decode(q1[1], q1 + 3, (size_t)(end - q1 - 3), &raw) == 0 &&
	    charset_to_utf8(charset, raw.d == NULL ? "" : raw.d, raw.len,
	    out) == 0)
		n = (size_t)(end + 2 - s);
	free(charset);
	mstr_free(&raw);
	return n;
}

int
mime_decode_words(struct buf *out, const char *value, size_t len)
{
	struct mstr s = {0};
	size_t i = 0, n, ws_start = 0;
	int last_word = 0, ret;

	while (i < len) {
		if (value[i] == '=' && i + 1 < len && value[i + 1] == '?') {
			size_t before = s.len;

			n = encoded_word(value + i, len - i, &s);
			if (n > 0) {
				/* White space between two encoded words is
				 * not shown (RFC 2047 6.2). */
				if (last_word) {
					memmove(s.d + ws_start, s.d + before,
					    s.len - before);
					mstr_trunc(&s, ws_start + s.len -
					    before);
				}
				i += n;
				last_word = 1;
				ws_start = s.len;
				continue;
			}
		}
		if (value[i] == '\r' || value[i] == '\n') {
			/* unfolding (RFC 5322 2.2.3) */
		} else if (value[i] == ' ' || value[i] == '\t') {
			if (!last_word)
				ws_start = s.len;
			mstr_addc(&s, value[i]);
		} else {
			mstr_addc(&s, value[i]);
			last_word = 0;
		}
		i++;
	}
	mstr_c(&s);
	ret = buf_append(out, s.d, s.len);
	mstr_free(&s);
	return ret;
}
