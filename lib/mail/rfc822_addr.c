/* SPDX-License-Identifier: MIT */
/*
 * Address lists of message headers (RFC 5322 3.4, 3.2.2 comments and
 * folding white space, 3.2.4 quoted strings, 3.4.1 domain literals, and
 * the obsolete route syntax of 4.4): a single pass over the text that
 * keeps two candidates for the address of the current list element -
 * what stands outside angle brackets (an addr-spec, or a display name
 * to be dropped) and what stands inside them - and emits one at each
 * ',' or ';' and at the end. Used by sendmail -t (tools/sendmail_msg.c).
 */
#include <string.h>

#include "mail/rfc822_addr.h"

/* The text collected for one candidate address. */
struct rfc822_text {
	char data[RFC822_ADDR_LEN_MAX + 1];
	size_t len;
	int overflow;	/* more than RFC822_ADDR_LEN_MAX bytes were given */
};

struct rfc822_state {
	struct rfc822_text plain;	/* outside <>: addr-spec or phrase */
	struct rfc822_text angle;	/* inside <> */
	int in_angle, had_angle;
	size_t count, max;
	rfc822_addr_fn *fn;
	void *ctx;
};

static void
text_reset(struct rfc822_text *t)
{
	t->len = 0;
	t->overflow = 0;
	t->data[0] = '\0';
}

static void
text_add(struct rfc822_text *t, char c)
{
	/* Never part of an address: the callback gets C strings. */
	if (c == '\0')
		return;
	if (t->len >= RFC822_ADDR_LEN_MAX) {
		t->overflow = 1;
		return;
	}
	t->data[t->len++] = c;
	t->data[t->len] = '\0';
}

/* Ends a list element; 0, or -1 with *error_r. */
static int
element_end(struct rfc822_state *s, const char **error_r)
{
	struct rfc822_text *t = s->had_angle ? &s->angle : &s->plain;
	int ret = 0;

	if (t->overflow) {
		*error_r = "address too long";
		ret = -1;
	} else if (t->len > 0) {
		if (s->count >= s->max) {
			*error_r = "too many addresses";
			ret = -1;
		} else {
			s->count++;
			s->fn(s->ctx, t->data, t->len);
		}
	}
	text_reset(&s->plain);
	text_reset(&s->angle);
	s->in_angle = s->had_angle = 0;
	return ret;
}

/*
 * Copies a quoted string or domain literal starting at in[i] (the
 * opening '"' or '[') through its closing character, escapes kept;
 * returns the index after it (len if unterminated).
 */
static size_t
copy_quoted(const char *in, size_t len, size_t i, char close,
    struct rfc822_text *t)
{
	text_add(t, in[i++]);
	while (i < len) {
		if (in[i] == '\\' && i + 1 < len) {
			/* A quoted line break would split the address over
			 * two lines: dropped with its backslash. */
			if (in[i + 1] != '\r' && in[i + 1] != '\n') {
				text_add(t, in[i]);
				text_add(t, in[i + 1]);
			}
			i += 2;
			continue;
		}
		if (in[i] == '\r' || in[i] == '\n' || in[i] == '\0') {
			/* Folding inside quotes is white space (RFC 5322
			 * 3.2.2): unfold by dropping the line break. */
			i++;
			continue;
		}
		text_add(t, in[i]);
		if (in[i++] == close)
			break;
	}
	return i;
}

/* Skips a comment starting at in[i] ('('), nested ones included. */
static size_t
skip_comment(const char *in, size_t len, size_t i)
{
	size_t depth = 0;

	for (; i < len; i++) {
		if (in[i] == '\\') {
			i++;
			continue;
		}
		if (in[i] == '(')
			depth++;
		else if (in[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

int
rfc822_addr_list(const char *in, size_t len, size_t max, rfc822_addr_fn *fn,
    void *ctx, const char **error_r)
{
	struct rfc822_state s;
	struct rfc822_text *t;
	size_t i = 0;
	char c;

	memset(&s, 0, sizeof(s));
	text_reset(&s.plain);
	text_reset(&s.angle);
	s.max = max;
	s.fn = fn;
	s.ctx = ctx;
	while (i < len) {
		c = in[i];
		t = s.in_angle ? &s.angle : &s.plain;
		switch (c) {
		case '(':
			i = skip_comment(in, len, i);
			continue;
		case '"':
			i = copy_quoted(in, len, i, '"', t);
			continue;
		case '[':
			i = copy_quoted(in, len, i, ']', t);
			continue;
		case '<':
			/* What came before was a display name. */
			s.in_angle = s.had_angle = 1;
			text_reset(&s.angle);
			break;
		case '>':
			s.in_angle = 0;
			break;
		case ':':
			if (s.in_angle)
				/* The end of a source route "@a,@b:". */
				text_reset(&s.angle);
			else
				/* A group's display name. */
				text_reset(&s.plain);
			break;
		case ',':
			/* A comma inside <> separates route hops only. */
			if (s.in_angle && s.angle.len > 0 &&
			    s.angle.data[0] == '@')
				break;
			if (element_end(&s, error_r) < 0)
				return -1;
			break;
		case ';':
			if (element_end(&s, error_r) < 0)
				return -1;
			break;
		case '\0':
			/* Never part of an address: the callback gets C
			 * strings. */
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			break;
		default:
			text_add(t, c);
			break;
		}
		i++;
	}
	if (element_end(&s, error_r) < 0)
		return -1;
	return (int)s.count;
}
