/* SPDX-License-Identifier: MIT */
/*
 * Envelope addresses as they appear in MAIL FROM and RCPT TO: the Path,
 * Mailbox, Local-part and Domain grammar of RFC 5321 4.1.2, address
 * literals for IPv4 and IPv6 (RFC 5321 4.1.3) and the size limits of RFC
 * 5321 4.5.3.1. The parser is strict: anything outside the grammar
 * (spaces, control characters, bare CR or LF, 8-bit bytes) is a syntax
 * error the SMTP server reports to the client. A missing domain is
 * accepted (Postfix does the same for "<postmaster>" and local users).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"

#define ADDR_LABEL_MAX    63 /* RFC 1035 2.3.4 */
#define ADDR_LITERAL_MAX  64 /* longest text inside [ ] we try */
#define ADDR_IPV6_TAG     "IPv6:"
#define ADDR_IPV6_TAG_LEN 5
#define ALPHA_DIGIT                                            \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789"
/* RFC 5322 3.2.3 atext */
#define ATEXT ALPHA_DIGIT "!#$%&'*+-/=?^_`{|}~"

/* Span of bytes of s (at most n) that are in set, NUL-safe. */
static size_t
span(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n && s[i] != '\0' && strchr(set, s[i]) != NULL; i++)
		;
	return i;
}

static int
literal_valid(const char *s, size_t n)
{
	char text[ADDR_LITERAL_MAX + 1];
	unsigned char a[sizeof(struct in6_addr)];
	int family = AF_INET;

	if (n > ADDR_IPV6_TAG_LEN && str_prefix_ci(s, n, ADDR_IPV6_TAG)) {
		family = AF_INET6;
		s += ADDR_IPV6_TAG_LEN;
		n -= ADDR_IPV6_TAG_LEN;
	}
	if (n == 0 || n > ADDR_LITERAL_MAX || memchr(s, '\0', n) != NULL)
		return 0;
	memcpy(text, s, n);
	text[n] = '\0';
	return inet_pton(family, text, a) == 1;
}

/* The domain s[0..n): labels of letters, digits and inner hyphens, or
 * an address literal. */
static int
domain_valid_n(const char *s, size_t n)
{
	size_t i = 0, label;

	if (n == 0 || n > ADDR_DOMAIN_MAX)
		return 0;
	if (s[0] == '[')
		return n >= 2 && s[n - 1] == ']' && literal_valid(s + 1, n - 2);
	for (;;) {
		label = span(s + i, n - i, ALPHA_DIGIT "-");
		if (label == 0 || label > ADDR_LABEL_MAX || s[i] == '-' ||
		    s[i + label - 1] == '-')
			return 0;
		i += label;
		if (i == n)
			return 1;
		if (s[i] != '.')
			return 0;
		i++;
	}
}

int
addr_domain_valid(const char *s)
{
	return domain_valid_n(s, strlen(s));
}

/* Length of the domain starting at s: a [literal], or everything up to
 * one of the stop characters (so bad bytes count against the domain). */
static size_t
domain_len(const char *s, const char *stop)
{
	const char *close;

	if (*s == '[') {
		close = strchr(s, ']');
		return close != NULL ? (size_t)(close - s) + 1 : strlen(s);
	}
	return strcspn(s, stop);
}

/* RFC 5321 Quoted-string of qtextSMTP and quoted-pairSMTP: length
 * including both quotes, 0 if malformed. */
static size_t
quoted_len(const char *s)
{
	unsigned char c;
	size_t i;

	for (i = 1;; i++) {
		c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c == '\\')
			c = (unsigned char)s[++i];
		if (c < ' ' || c > '~')
			return 0;
	}
}

/* RFC 5321 Dot-string: atoms separated by single dots. */
static size_t
dot_string_len(const char *s)
{
	size_t i = 0, n;

	for (;;) {
		n = strspn(s + i, ATEXT);
		if (n == 0)
			return 0;
		i += n;
		if (s[i] != '.' || s[i + 1] == '\0' ||
		    strchr(ATEXT, s[i + 1]) == NULL)
			return i;
		i++;
	}
}

int
addr_parse_path(const char *s, int allow_empty, char **addr_r,
    const char **params_r, const char **error_r)
{
	const char *p = s, *open, *local;
	size_t n;

	while (*p == ' ')
		p++;
	if (*p != '<') {
		*error_r = "missing <";
		return -1;
	}
	open = p++;
	/* A-d-l ":" — a source route, ignored per RFC 5321 4.1.2 / C. */
	if (*p == '@') {
		for (;;) {
			n = domain_len(++p, ",:>");
			if (!domain_valid_n(p, n)) {
				*error_r = "bad source route";
				return -1;
			}
			p += n;
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@') {
				*error_r = "bad source route";
				return -1;
			}
			p++;
		}
		p++;
	}
	local = p;
	if (*p == '>' && p == open + 1) {
		if (!allow_empty) {
			*error_r = "empty address not allowed";
			return -1;
		}
	} else {
		n = *p == '"' ? quoted_len(p) : dot_string_len(p);
		if (n == 0) {
			*error_r = "bad address syntax";
			return -1;
		}
		if (n > ADDR_LOCAL_MAX) {
			*error_r = "local part too long";
			return -1;
		}
		p += n;
		if (*p == '@') {
			n = domain_len(++p, ">");
			if (n > ADDR_DOMAIN_MAX) {
				*error_r = "domain too long";
				return -1;
			}
			if (!domain_valid_n(p, n)) {
				*error_r = "bad domain";
				return -1;
			}
			p += n;
		}
	}
	if (*p != '>') {
		*error_r = *p == '\0' ? "missing >" : "bad address syntax";
		return -1;
	}
	if ((size_t)(p - open) + 1 > ADDR_PATH_MAX) {
		*error_r = "address too long";
		return -1;
	}
	n = (size_t)(p - local);
	p++;
	if (*p != '\0' && *p != ' ') {
		*error_r = "garbage after address";
		return -1;
	}
	while (*p == ' ')
		p++;
	*addr_r = xstrndup(local, n);
	*params_r = p;
	return 0;
}

/* The '@' that separates the domain: the last one outside quotes. */
static const char *
addr_at(const char *addr)
{
	const char *p, *at = NULL;
	int quoted = 0;

	for (p = addr; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	return at;
}

int
addr_split(const char *addr, char **local_r, char **domain_r)
{
	const char *at = addr_at(addr);
	size_t llen = at != NULL ? (size_t)(at - addr) : strlen(addr);

	*local_r = NULL;
	*domain_r = NULL;
	if (llen == 0 || llen > ADDR_LOCAL_MAX)
		return -1;
	if (at != NULL && (at[1] == '\0' || strlen(at + 1) > ADDR_DOMAIN_MAX))
		return -1;
	*local_r = xstrndup(addr, llen);
	if (at != NULL) {
		*domain_r = xstrdup(at + 1);
		str_lower(*domain_r);
	}
	return 0;
}

char *
addr_local_fold(const char *local)
{
	size_t len = strlen(local), i, o = 0;
	char *out = xmalloc(len + 1);

	/* "alice" and alice are the same mailbox (RFC 5321 4.1.2). */
	if (len >= 2 && local[0] == '"' && local[len - 1] == '"' &&
	    quoted_len(local) == len) {
		for (i = 1; i + 1 < len; i++) {
			if (local[i] == '\\')
				i++;
			out[o++] = local[i];
		}
		out[o] = '\0';
	} else {
		memcpy(out, local, len + 1);
	}
	str_lower(out);
	return out;
}

char *
addr_fold(const char *addr)
{
	char *local, *domain, *folded, *out;

	if (addr_split(addr, &local, &domain) < 0) {
		out = xstrdup(addr);
		str_lower(out);
		return out;
	}
	folded = addr_local_fold(local);
	out = domain != NULL ? xasprintf("%s@%s", folded, domain) : folded;
	if (domain != NULL)
		free(folded);
	free(local);
	free(domain);
	return out;
}
