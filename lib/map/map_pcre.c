/* SPDX-License-Identifier: MIT */
/*
 * pcre: tables, Postfix's syntax (pcre_table(5), dict_pcre.c):
 *
 *   /regex/flags   result      first matching rule gives its result
 *   !/regex/flags  result      a rule for keys that do not match
 *   if /regex/flags ... endif  rules inside apply only to matching keys
 *
 * The delimiter is the first character ('/' usually; any punctuation
 * works, and a backslash escapes it inside the regex). Matching is case
 * insensitive unless the i flag toggles it; m, s, x, A, E and U set
 * PCRE2_MULTILINE, DOTALL, EXTENDED, ANCHORED, DOLLAR_ENDONLY and
 * UNGREEDY. The result may use $1..$9, ${n} or $(n) for what a group
 * captured (an unset group gives nothing) and $$ for a dollar; a group
 * the regex does not have, or $n in the result of a negated rule, is
 * refused at open, where Postfix only warns.
 *
 * Every match runs with a match, depth and heap limit, so a regex that
 * backtracks without end cannot hang a daemon on a hostile key; a lookup
 * that hits one fails (the caller defers) rather than skip the rule,
 * which may have been the one that rejects.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/str.h"
#include "map/map_int.h"

/*
 * Backtracking steps, nesting depth and heap (KiB) a match may use:
 * PCRE2's defaults are 10 million steps and 20 MB; a sane table needs a
 * tiny fraction, and smtpd runs one lookup per command.
 */
#define PCRE_MATCH_LIMIT 1000000
#define PCRE_DEPTH_LIMIT 10000
#define PCRE_HEAP_LIMIT  4096
/* Highest group number $n may name (PCRE2 allows 65535 groups). */
#define PCRE_GROUP_MAX   99
#define PCRE_ERRMSG_MAX  256

enum pcre_kind {
	PCRE_RULE_MATCH,
	PCRE_RULE_IF,
	PCRE_RULE_ENDIF,
};

struct pcre_rule {
	enum pcre_kind kind;
	int negate;
	unsigned line;
	pcre2_code *code;
	char *result; /* PCRE_RULE_MATCH: template with $n */
	size_t endif; /* PCRE_RULE_IF: index of its endif */
};

struct pcre_table {
	char *name;
	struct pcre_rule *rules;
	size_t n, cap;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
};

static void
pcre_free(void *data)
{
	struct pcre_table *t = data;
	size_t i;

	for (i = 0; i < t->n; i++) {
		pcre2_code_free(t->rules[i].code);
		free(t->rules[i].result);
	}
	pcre2_match_data_free(t->md);
	pcre2_match_context_free(t->mctx);
	free(t->rules);
	free(t->name);
	free(t);
}

static struct pcre_rule *
pcre_add(struct pcre_table *t, enum pcre_kind kind, unsigned line)
{
	struct pcre_rule *r;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->rules = xrealloc(t->rules, t->cap * sizeof(*t->rules));
	}
	r = &t->rules[t->n++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->line = line;
	return r;
}

/*
 * Expands the result template tmpl into out, with the groups of the last
 * match (ovector, count groups set) from subject; with ovector NULL only
 * checks the syntax and that no group past ngroups is named. -1 with
 * *why_r allocated.
 */
static int
pcre_expand(const char *tmpl, uint32_t ngroups, const PCRE2_SIZE *ovector,
    int count, const char *subject, struct buf *out, char **why_r)
{
	const char *p = tmpl, *dollar;
	uint64_t n;
	char close;
	size_t len;

	while ((dollar = strchr(p, '$')) != NULL) {
		if (out != NULL && buf_append(out, p, (size_t)(dollar - p)) < 0)
			goto toolong;
		p = dollar + 1;
		if (*p == '$') {
			if (out != NULL && buf_putc(out, '$') < 0)
				goto toolong;
			p++;
			continue;
		}
		if (*p >= '1' && *p <= '9') {
			n = (uint64_t)(*p - '0');
			p++;
		} else if (*p == '{' || *p == '(') {
			close = *p == '{' ? '}' : ')';
			len = strspn(p + 1, "0123456789");
			if (p[1 + len] != close ||
			    str_to_u64_n(p + 1, len, PCRE_GROUP_MAX, &n) < 0 ||
			    n == 0) {
				*why_r = xasprintf("bad $ substitution in "
				                   "\"%s\" (use $1..$9, ${n}, "
				                   "$$)",
				    tmpl);
				return -1;
			}
			p += len + 2;
		} else {
			*why_r = xasprintf("bad $ substitution in \"%s\" "
			                   "(use $1..$9, ${n}, $$)",
			    tmpl);
			return -1;
		}
		if (n > ngroups) {
			*why_r = xasprintf("$%u in \"%s\": the regex has %u "
			                   "group%s",
			    (unsigned)n, tmpl, ngroups,
			    ngroups == 1 ? "" : "s");
			return -1;
		}
		if (ovector == NULL || (int)n >= count ||
		    ovector[2 * n] == PCRE2_UNSET)
			continue;
		if (buf_append(out, subject + ovector[2 * n],
		        ovector[2 * n + 1] - ovector[2 * n]) < 0)
			goto toolong;
	}
	if (out != NULL && buf_puts(out, p) < 0)
		goto toolong;
	return 0;
toolong:
	*why_r = xasprintf("result longer than %d bytes", MAP_VALUE_MAX);
	return -1;
}

/*
 * Parses "[!]/regex/flags" at *p into r, compiling the regex; *p moves
 * past the flags and following blanks. -1 with *why_r allocated.
 */
static int
pcre_parse_pattern(char **p, struct pcre_rule *r, char **why_r)
{
	char *s = *p, *re, delim;
	PCRE2_UCHAR msg[PCRE_ERRMSG_MAX];
	uint32_t options = PCRE2_CASELESS;
	PCRE2_SIZE erroff;
	int errcode;

	if (*s == '!') {
		r->negate = 1;
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	delim = *s;
	if (delim == '\0' || delim == '\\' || isalnum((unsigned char)delim) ||
	    isspace((unsigned char)delim)) {
		*why_r = xasprintf("expected /regex/: \"%s\"", *p);
		return -1;
	}
	re = ++s;
	for (; *s != '\0' && *s != delim; s++)
		if (*s == '\\' && s[1] != '\0')
			s++;
	if (*s == '\0') {
		*why_r = xasprintf("missing closing delimiter \"%c\"", delim);
		return -1;
	}
	*s++ = '\0';
	for (; *s != '\0' && *s != ' ' && *s != '\t'; s++) {
		switch (*s) {
		case 'i':
			options ^= PCRE2_CASELESS;
			break;
		case 'm':
			options |= PCRE2_MULTILINE;
			break;
		case 's':
			options |= PCRE2_DOTALL;
			break;
		case 'x':
			options |= PCRE2_EXTENDED;
			break;
		case 'A':
			options |= PCRE2_ANCHORED;
			break;
		case 'E':
			options |= PCRE2_DOLLAR_ENDONLY;
			break;
		case 'U':
			options |= PCRE2_UNGREEDY;
			break;
		default:
			*why_r = xasprintf("unknown regex flag \"%c\" (i m s x "
			                   "A E U)",
			    isprint((unsigned char)*s) ? *s : '?');
			return -1;
		}
	}
	while (*s == ' ' || *s == '\t')
		s++;
	*p = s;
	r->code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, options,
	    &errcode, &erroff, NULL);
	if (r->code == NULL) {
		if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", errcode);
		*why_r = xasprintf("regex %c%s%c: %s at offset %zu", delim, re,
		    delim, (const char *)msg, (size_t)erroff);
		return -1;
	}
	return 0;
}

/* The parser's state between lines. */
struct pcre_parser {
	struct pcre_table *t;
	size_t open_if[MAP_IF_DEPTH_MAX];
	unsigned open_line[MAP_IF_DEPTH_MAX];
	size_t depth;
	uint32_t max_groups;
};

/* One logical line s (modifiable). -1 with *why_r allocated. */
static int
pcre_parse_line(struct pcre_parser *ps, char *s, unsigned line, char **why_r)
{
	struct pcre_table *t = ps->t;
	struct pcre_rule *r;
	const char *rest;
	uint32_t ngroups = 0;

	if (map_keyword(s, "endif", &rest)) {
		if (*rest != '\0') {
			*why_r = xasprintf("text after endif");
			return -1;
		}
		if (ps->depth == 0) {
			*why_r = xasprintf("endif without if");
			return -1;
		}
		t->rules[ps->open_if[--ps->depth]].endif = t->n;
		(void)pcre_add(t, PCRE_RULE_ENDIF, line);
		return 0;
	}
	if (map_keyword(s, "if", &rest)) {
		if (ps->depth == MAP_IF_DEPTH_MAX) {
			*why_r = xasprintf("if blocks nested deeper than %d",
			    MAP_IF_DEPTH_MAX);
			return -1;
		}
		r = pcre_add(t, PCRE_RULE_IF, line);
		s = (char *)rest;
		if (pcre_parse_pattern(&s, r, why_r) < 0)
			return -1;
		if (*s != '\0') {
			*why_r =
			    xasprintf("text after the if pattern: \"%s\"", s);
			return -1;
		}
		ps->open_line[ps->depth] = line;
		ps->open_if[ps->depth++] = t->n - 1;
		return 0;
	}
	r = pcre_add(t, PCRE_RULE_MATCH, line);
	if (pcre_parse_pattern(&s, r, why_r) < 0)
		return -1;
	if (*s == '\0') {
		*why_r = xasprintf("missing result after the pattern");
		return -1;
	}
	if (pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &ngroups) != 0)
		ngroups = 0;
	/* A key that does not match has no groups to substitute. */
	if (r->negate && strstr(s, "$") != NULL &&
	    pcre_expand(s, 0, NULL, 0, NULL, NULL, why_r) < 0) {
		free(*why_r);
		*why_r = xasprintf("$n in the result of a negated rule");
		return -1;
	}
	if (pcre_expand(s, ngroups, NULL, 0, NULL, NULL, why_r) < 0)
		return -1;
	if (ngroups > ps->max_groups)
		ps->max_groups = ngroups;
	r->result = xstrdup(s);
	return 0;
}

void *
map_pcre_parse(const char *name, const char *text, size_t len, char **error_r)
{
	struct pcre_table *t = xcalloc(1, sizeof(*t));
	struct pcre_parser ps;
	struct map_lines lines;
	char *why;
	int ret;

	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	t->name = xstrdup(name);
	map_lines_init(&lines, name, text, len);
	while ((ret = map_lines_next(&lines, error_r)) > 0) {
		if (pcre_parse_line(&ps, lines.buf.data, lines.line, &why) <
		    0) {
			*error_r = map_line_error(name, lines.line, "%s", why);
			free(why);
			goto fail;
		}
	}
	if (ret < 0)
		goto fail;
	if (ps.depth > 0) {
		*error_r = map_line_error(
		    name, ps.open_line[ps.depth - 1], "if without endif");
		goto fail;
	}
	map_lines_free(&lines);
	t->md = pcre2_match_data_create(ps.max_groups + 1, NULL);
	t->mctx = pcre2_match_context_create(NULL);
	if (t->md == NULL || t->mctx == NULL)
		msg_fatal("out of memory");
	pcre2_set_match_limit(t->mctx, PCRE_MATCH_LIMIT);
	pcre2_set_depth_limit(t->mctx, PCRE_DEPTH_LIMIT);
	pcre2_set_heap_limit(t->mctx, PCRE_HEAP_LIMIT);
	return t;
fail:
	map_lines_free(&lines);
	pcre_free(t);
	return NULL;
}

static void *
pcre_load(const char *name, struct map_file_id *id_r, char **error_r)
{
	return map_file_load_text(name, id_r, map_pcre_parse, error_r);
}

static int
pcre_lookup(void *data, const char *key, struct buf *value, char *error)
{
	struct pcre_table *t = data;
	PCRE2_UCHAR msg[PCRE_ERRMSG_MAX];
	struct pcre_rule *r;
	size_t i, klen = strlen(key);
	char *why;
	int rc, match;

	for (i = 0; i < t->n; i++) {
		r = &t->rules[i];
		if (r->kind == PCRE_RULE_ENDIF)
			continue;
		rc = pcre2_match(
		    r->code, (PCRE2_SPTR)key, klen, 0, 0, t->md, t->mctx);
		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
			if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
				snprintf(
				    (char *)msg, sizeof(msg), "error %d", rc);
			snprintf(error, MAP_ERROR_MAX, "%s, line %u: %s",
			    t->name, r->line, (const char *)msg);
			return -1;
		}
		match = rc >= 0;
		if (r->negate)
			match = !match;
		if (r->kind == PCRE_RULE_IF) {
			if (!match)
				i = r->endif;
			continue;
		}
		if (!match)
			continue;
		if (pcre_expand(r->result, UINT32_MAX,
		        r->negate ? NULL : pcre2_get_ovector_pointer(t->md), rc,
		        key, value, &why) < 0) {
			snprintf(error, MAP_ERROR_MAX, "%s, line %u: %s",
			    t->name, r->line, why);
			free(why);
			return -1;
		}
		return 1;
	}
	return 0;
}

const struct map_ops map_pcre_ops = {
    .type = "pcre",
    .pattern = 1,
    .file = 1,
    .suffix = "",
    .load = pcre_load,
    .lookup = pcre_lookup,
    .free = pcre_free,
};
