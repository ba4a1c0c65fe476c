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
 * finds nothing. An IPv4-mapped IPv6 key (::ffff:192.0.2.1) also
 * matches IPv4 networks: it is that IPv4 client (lib/base/cidr.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/cidr.h"
#include "base/str.h"
#include "map/map_int.h"

enum cidr_kind {
	CIDR_MATCH,
	CIDR_IF,
	CIDR_ENDIF,
};

struct cidr_rule {
	enum cidr_kind kind;
	int negate;
	struct cidr net;
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

/*
 * Parses "addr", "addr/prefix", "[v6addr]" or "[v6addr]/prefix" into r.
 * -1 with *why_r allocated (no file or line: the caller adds them).
 */
static int
cidr_parse_net(const char *pattern, struct cidr_rule *r, char **why_r)
{
	char fixed[CIDR_TEXT_SIZE];
	const char *err;
	int bracket = pattern[0] == '[';

	if (cidr_parse(pattern, &r->net, &err) == 0)
		return 0;
	if (strcmp(err, "bad network prefix length") == 0) {
		*why_r = xasprintf("bad prefix length in \"%s\"", pattern);
		return -1;
	}
	if (strcmp(err, "non-null host address bits") != 0) {
		*why_r = xasprintf("bad address pattern \"%s\"", pattern);
		return -1;
	}
	cidr_format(&r->net, fixed, sizeof(fixed));
	if (bracket) {
		char *slash = strchr(fixed, '/');

		*why_r = xasprintf("non-null host address bits in \"%s\", "
		                   "perhaps you should use \"[%.*s]%s\" instead",
		    pattern, (int)(slash - fixed), fixed, slash);
	} else {
		*why_r = xasprintf("non-null host address bits in \"%s\", "
		                   "perhaps you should use \"%s\" instead",
		    pattern, fixed);
	}
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
	return map_file_load_text(name, id_r, map_cidr_parse, error_r);
}

static int
cidr_lookup(void *data, const char *key, struct buf *value, char *error)
{
	struct cidr_table *t = data;
	struct cidr host;
	struct cidr_rule *r;
	int match;
	size_t i;

	/* Only a bare address is a key (no brackets, no prefix). */
	if (key[0] == '[' || cidr_addr(key, &host) < 0)
		return 0;
	for (i = 0; i < t->n; i++) {
		r = &t->rules[i];
		if (r->kind == CIDR_ENDIF)
			continue;
		match = cidr_match(&r->net, &host);
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
