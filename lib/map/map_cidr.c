/* SPDX-License-Identifier: MIT */
/*
 * cidr: tables, Postfix's syntax (cidr_table(5), dict_cidr.c):
 *
 *   192.0.2.0/24        result      IPv4 network
 *   192.0.2.7           result      one address (/32)
 *   2001:db8::/32       result      IPv6 (RFC 4291 2.3 prefix notation)
 *   [2001:db8::1]/128   result      IPv6 in brackets
 *   !198.51.100.0/24    result      every address outside the network
 *   if 10.0.0.0/8  ...  endif       rules inside apply only to matches
 *
 * Rules are tried in file order; the first that matches gives the result.
 * A network with bits set past its prefix is refused, as Postfix warns
 * about it: it is nearly always a typo for something else. The key is an
 * address as text (inet_pton: no brackets, no prefix); any other key
 * finds nothing. An IPv4-mapped IPv6 key is IPv6, as in Postfix.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/str.h"
#include "map/map_int.h"

#define CIDR_ADDR_MAX  16 /* bytes of an IPv6 address */
#define CIDR_V4_BITS   32
#define CIDR_V6_BITS   128
#define BITS_PER_BYTE  8
#define CIDR_BYTE_MASK 0xff

enum cidr_kind {
	CIDR_MATCH,
	CIDR_IF,
	CIDR_ENDIF,
};

struct cidr_rule {
	enum cidr_kind kind;
	int negate;
	int family;
	unsigned char net[CIDR_ADDR_MAX];
	unsigned prefix;
	char *result; /* CIDR_MATCH */
	size_t endif; /* CIDR_IF: index of its endif */
};

struct cidr_table {
	struct cidr_rule *rules;
	size_t n, cap;
};

static void
cidr_free(void *data)
{
	struct cidr_table *t = data;
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->rules[i].result);
	free(t->rules);
	free(t);
}

static struct cidr_rule *
cidr_add(struct cidr_table *t, enum cidr_kind kind)
{
	struct cidr_rule *r;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->rules = xrealloc(t->rules, t->cap * sizeof(*t->rules));
	}
	r = &t->rules[t->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	return r;
}

/* 1 if addr lies in the first prefix bits of net. */
static int
cidr_in(const unsigned char *addr, const unsigned char *net, unsigned prefix)
{
	unsigned full = prefix / BITS_PER_BYTE, rest = prefix % BITS_PER_BYTE;
	unsigned char mask;

	if (memcmp(addr, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(CIDR_BYTE_MASK << (BITS_PER_BYTE - rest));
	return (addr[full] & mask) == (net[full] & mask);
}

/* Clears the bits of a past prefix; 1 if any was set. */
static int
cidr_clear_host_bits(unsigned char *a, unsigned prefix, size_t len)
{
	unsigned full = prefix / BITS_PER_BYTE, rest = prefix % BITS_PER_BYTE;
	unsigned char keep;
	int set = 0;
	size_t i;

	if (rest != 0) {
		keep =
		    (unsigned char)(CIDR_BYTE_MASK << (BITS_PER_BYTE - rest));
		set |= (a[full] & ~keep) != 0;
		a[full] &= keep;
		full++;
	}
	for (i = full; i < len; i++) {
		set |= a[i] != 0;
		a[i] = 0;
	}
	return set;
}

/*
 * Parses "addr", "addr/prefix", "[v6addr]" or "[v6addr]/prefix" into r.
 * -1 with *why_r allocated (no file or line: the caller adds them).
 */
static int
cidr_parse_net(const char *pattern, struct cidr_rule *r, char **why_r)
{
	char *copy = xstrdup(pattern), *addr = copy, *pfx = NULL, *close;
	char fixed[INET6_ADDRSTRLEN];
	unsigned char want[CIDR_ADDR_MAX];
	uint64_t prefix;
	unsigned bits;
	int bracket = 0;

	if (*addr == '[') {
		bracket = 1;
		addr++;
		if ((close = strchr(addr, ']')) == NULL ||
		    (close[1] != '\0' && close[1] != '/')) {
			*why_r =
			    xasprintf("bad address pattern \"%s\"", pattern);
			goto fail;
		}
		*close = '\0';
		if (close[1] == '/')
			pfx = close + 2;
	} else if ((pfx = strchr(addr, '/')) != NULL)
		*pfx++ = '\0';
	r->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	bits = r->family == AF_INET6 ? CIDR_V6_BITS : CIDR_V4_BITS;
	if ((bracket && r->family != AF_INET6) ||
	    inet_pton(r->family, addr, r->net) != 1) {
		*why_r = xasprintf("bad address pattern \"%s\"", pattern);
		goto fail;
	}
	if (pfx == NULL)
		prefix = bits;
	else if (str_to_u64(pfx, bits, &prefix) < 0) {
		*why_r = xasprintf(
		    "bad prefix length in \"%s\" (0 to %u)", pattern, bits);
		goto fail;
	}
	r->prefix = (unsigned)prefix;
	memcpy(want, r->net, sizeof(want));
	if (cidr_clear_host_bits(want, r->prefix, bits / BITS_PER_BYTE)) {
		if (inet_ntop(r->family, want, fixed, sizeof(fixed)) == NULL)
			fixed[0] = '\0';
		*why_r = xasprintf("non-null host address bits in \"%s\", "
		                   "perhaps you should use \"%s%s%s/%u\" "
		                   "instead",
		    pattern, bracket ? "[" : "", fixed, bracket ? "]" : "",
		    r->prefix);
		goto fail;
	}
	free(copy);
	return 0;
fail:
	free(copy);
	return -1;
}

/* The pattern with an optional '!' in front; *p moved past it. */
static int
cidr_parse_pattern(char **p, struct cidr_rule *r, char **why_r)
{
	char *s = *p, *end;

	if (*s == '!') {
		r->negate = 1;
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	if (*s == '\0') {
		*why_r = xasprintf("missing address pattern");
		return -1;
	}
	end = s + strcspn(s, " \t");
	if (*end != '\0')
		*end++ = '\0';
	while (*end == ' ' || *end == '\t')
		end++;
	*p = end;
	return cidr_parse_net(s, r, why_r);
}

void *
map_cidr_parse(const char *name, const char *text, size_t len, char **error_r)
{
	struct cidr_table *t = xcalloc(1, sizeof(*t));
	size_t open_if[MAP_IF_DEPTH_MAX];
	unsigned open_line[MAP_IF_DEPTH_MAX];
	struct map_lines lines;
	struct cidr_rule *r;
	const char *rest;
	char *s, *why;
	size_t depth = 0;
	int ret;

	map_lines_init(&lines, name, text, len);
	while ((ret = map_lines_next(&lines, error_r)) > 0) {
		s = lines.buf.data;
		if (map_keyword(s, "endif", &rest)) {
			if (*rest != '\0') {
				why = xasprintf("text after endif");
				goto bad;
			}
			if (depth == 0) {
				why = xasprintf("endif without if");
				goto bad;
			}
			t->rules[open_if[--depth]].endif = t->n;
			(void)cidr_add(t, CIDR_ENDIF);
			continue;
		}
		if (map_keyword(s, "if", &rest)) {
			if (depth == MAP_IF_DEPTH_MAX) {
				why = xasprintf("if blocks nested deeper "
				                "than %d",
				    MAP_IF_DEPTH_MAX);
				goto bad;
			}
			r = cidr_add(t, CIDR_IF);
			s = (char *)rest;
			if (cidr_parse_pattern(&s, r, &why) < 0)
				goto bad;
			if (*s != '\0') {
				why = xasprintf("text after the if pattern: "
				                "\"%s\"",
				    s);
				goto bad;
			}
			open_line[depth] = lines.line;
			open_if[depth++] = t->n - 1;
			continue;
		}
		r = cidr_add(t, CIDR_MATCH);
		if (cidr_parse_pattern(&s, r, &why) < 0)
			goto bad;
		if (*s == '\0') {
			why = xasprintf("missing result after the pattern");
			goto bad;
		}
		r->result = xstrdup(s);
	}
	if (ret < 0)
		goto fail;
	if (depth > 0) {
		*error_r = map_line_error(
		    name, open_line[depth - 1], "if without endif");
		goto fail;
	}
	map_lines_free(&lines);
	return t;
bad:
	*error_r = map_line_error(name, lines.line, "%s", why);
	free(why);
fail:
	map_lines_free(&lines);
	cidr_free(t);
	return NULL;
}

static void *
cidr_load(const char *name, struct map_file_id *id_r, char **error_r)
{
	struct buf text;
	struct stat st;
	void *t;

	buf_init(&text, MAP_FILE_MAX);
	if (map_file_read(name, MAP_FILE_MAX, &text, &st, error_r) < 0) {
		buf_free(&text);
		return NULL;
	}
	map_file_id_set(id_r, &st);
	t = map_cidr_parse(name, buf_cstr(&text), text.len, error_r);
	buf_free(&text);
	return t;
}

static int
cidr_lookup(void *data, const char *key, struct buf *value, char *error)
{
	struct cidr_table *t = data;
	unsigned char addr[CIDR_ADDR_MAX];
	struct cidr_rule *r;
	int family, match;
	size_t i;

	family = strchr(key, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(family, key, addr) != 1)
		return 0;
	for (i = 0; i < t->n; i++) {
		r = &t->rules[i];
		if (r->kind == CIDR_ENDIF)
			continue;
		match = r->family == family && cidr_in(addr, r->net, r->prefix);
		if (r->negate)
			match = !match;
		if (r->kind == CIDR_IF) {
			if (!match)
				i = r->endif;
			continue;
		}
		if (!match)
			continue;
		if (buf_puts(value, r->result) < 0) {
			snprintf(error, MAP_ERROR_MAX, "result too long");
			return -1;
		}
		return 1;
	}
	return 0;
}

const struct map_ops map_cidr_ops = {
    .type = "cidr",
    .pattern = 1,
    .file = 1,
    .suffix = "",
    .load = cidr_load,
    .lookup = cidr_lookup,
    .free = cidr_free,
};
