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
#include "mail/params.h"

#define ADDR_LABEL_MAX    63 /* RFC 1035 2.3.4 */
#define ADDR_LITERAL_MAX  64 /* longest text inside [ ] we try */
#define ADDR_IPV6_TAG     "IPv6:"
#define ADDR_IPV6_TAG_LEN 5
#define ALPHA_DIGIT                                            \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789"
/* RFC 5322 3.2.3 atext */
#define ATEXT ALPHA_DIGIT "!#$%&'*+-/=?^_`{|}~"

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

/* A run of s[0..n) of bytes in set, and with utf8 of whole UTF-8
 * sequences beyond ASCII (RFC 6531 UTF8-non-ascii). */
static size_t
span_utf8(const char *s, size_t n, const char *set, int utf8)
{
	size_t i = 0, seq;

	while (i < n && s[i] != '\0') {
		if ((unsigned char)s[i] < 0x80) {
			if (strchr(set, s[i]) == NULL)
				break;
			i++;
		} else if (utf8 && (seq = str_utf8_seq(s + i, n - i)) > 1) {
			i += seq;
		} else {
			break;
		}
	}
	return i;
}

/* The domain s[0..n): labels of letters, digits and inner hyphens (and
 * U-labels with utf8, RFC 6531 3.3), or an address literal. */
static int
domain_valid_n(const char *s, size_t n, int utf8)
{
	size_t i = 0, label;

	if (n == 0 || n > ADDR_DOMAIN_MAX)
		return 0;
	if (s[0] == '[')
		return n >= 2 && s[n - 1] == ']' && literal_valid(s + 1, n - 2);
	for (;;) {
		label = span_utf8(s + i, n - i, ALPHA_DIGIT "-", utf8);
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
	return domain_valid_n(s, strlen(s), 0);
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

/* RFC 5321 Quoted-string of qtextSMTP and quoted-pairSMTP (with utf8
 * also UTF8-non-ascii, RFC 6531 3.3): length including both quotes, 0 if
 * malformed. */
static size_t
quoted_len(const char *s, int utf8)
{
	unsigned char c;
	size_t i, seq;

	for (i = 1;; i++) {
		c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c == '\\')
			c = (unsigned char)s[++i];
		if (c >= 0x80 && utf8 &&
		    (seq = str_utf8_seq(s + i, strnlen(s + i, 4))) > 1) {
			i += seq - 1;
			continue;
		}
		if (c < ' ' || c > '~')
			return 0;
	}
}

/* RFC 5321 Dot-string: atoms separated by single dots. */
static size_t
dot_string_len(const char *s, int utf8)
{
	size_t i = 0, n;

	for (;;) {
		n = span_utf8(s + i, strlen(s + i), ATEXT, utf8);
		if (n == 0)
			return 0;
		i += n;
		if (s[i] != '.' || span_utf8(s + i + 1, 4, ATEXT, utf8) == 0)
			return i;
		i++;
	}
}

const char addr_err_needs_utf8[] = "non-ASCII address without SMTPUTF8";

/* 1 if the path that starts at s (up to its first '>') has 8-bit bytes. */
static int
path_has_8bit(const char *s)
{
	for (; *s != '\0' && *s != '>'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
addr_parse_path(const char *s, unsigned flags, char **addr_r,
    const char **params_r, const char **error_r)
{
	const char *p = s, *open, *local;
	int utf8 = (flags & ADDR_UTF8_OK) != 0;
	size_t n;

	while (*p == ' ')
		p++;
	if (*p != '<') {
		*error_r = "missing <";
		return -1;
	}
	open = p++;
	if (!utf8 && path_has_8bit(p)) {
		*error_r = addr_err_needs_utf8;
		return -1;
	}
	/* A-d-l ":" — a source route, ignored per RFC 5321 4.1.2 / C. */
	if (*p == '@') {
		for (;;) {
			n = domain_len(++p, ",:>");
			if (!domain_valid_n(p, n, utf8)) {
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
		if (!(flags & ADDR_EMPTY_OK)) {
			*error_r = "empty address not allowed";
			return -1;
		}
	} else {
		n = *p == '"' ? quoted_len(p, utf8) : dot_string_len(p, utf8);
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
			if (!domain_valid_n(p, n, utf8)) {
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
	    quoted_len(local, 1) == len) {
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
	/* Quotes that mattered stay, so "a@b"@c and "a@b@c" remain two. */
	if (folded[strspn(folded, ATEXT ".")] != '\0') {
		free(folded);
		folded = xstrdup(local);
		str_lower(folded);
	}
	out = domain != NULL ? xasprintf("%s@%s", folded, domain) : folded;
	if (domain != NULL)
		free(folded);
	free(local);
	free(domain);
	return out;
}

char *
addr_strip_extension(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : strlen(addr);
	size_t n;

	if (*var_recipient_delimiter == '\0')
		return NULL;
	n = strcspn(addr, var_recipient_delimiter);
	if (n == 0 || n >= local)
		return NULL;
	return xasprintf("%.*s%s", (int)n, addr, at != NULL ? at : "");
}
