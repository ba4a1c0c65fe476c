/* SPDX-License-Identifier: MIT */
/*
 * Bounded parsing helpers (after curl's strparse): numbers, booleans,
 * durations and sizes from configuration and protocol text, with overflow
 * checks, and the few ASCII string operations the protocols need (SMTP
 * verbs and header names compare case-insensitively, RFC 5321 2.4).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "base/str.h"

#define STR_KIB 1024ULL

static int
ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Parses leading digits of s[0..len); *used_r is how many. */
static int
str_digits(
    const char *s, size_t len, uint64_t max, uint64_t *out_r, size_t *used_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 0)
		return -1;
	*out_r = v;
	*used_r = i;
	return 0;
}

int
str_to_u64_n(const char *s, size_t len, uint64_t max, uint64_t *out_r)
{
	uint64_t v;
	size_t used;

	if (str_digits(s, len, max, &v, &used) < 0 || used != len)
		return -1;
	*out_r = v;
	return 0;
}

int
str_to_u64(const char *s, uint64_t max, uint64_t *out_r)
{
	return str_to_u64_n(s, strlen(s), max, out_r);
}

int
str_to_bool(const char *s, int *out_r)
{
	static const struct {
		const char *word;
		int value;
	} words[] = {
	    {"yes", 1},
	    {"true", 1},
	    {"1", 1},
	    {"on", 1},
	    {"no", 0},
	    {"false", 0},
	    {"0", 0},
	    {"off", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (str_eq_ci(s, words[i].word)) {
			*out_r = words[i].value;
			return 0;
		}
	}
	return -1;
}

/* Number followed by at most one unit letter from units (with factors). */
static int
str_to_scaled(const char *s, const char *units, const uint64_t *factors,
    uint64_t default_factor, uint64_t *out_r)
{
	size_t len = strlen(s), used;
	uint64_t v, factor = default_factor ? default_factor : 1;
	const char *u;

	if (str_digits(s, len, UINT64_MAX, &v, &used) < 0)
		return -1;
	if (used + 1 == len) {
		u = strchr(units, ascii_lower((unsigned char)s[used]));
		if (u == NULL || *u == '\0')
			return -1;
		factor = factors[u - units];
	} else if (used != len) {
		return -1;
	}
	if (factor == 0 || v > UINT64_MAX / factor)
		return -1;
	*out_r = v * factor;
	return 0;
}

int
str_to_seconds(const char *s, uint64_t default_unit, uint64_t *out_r)
{
	static const uint64_t factors[] = {1, 60, 3600, 86400, 604800};

	return str_to_scaled(s, "smhdw", factors, default_unit, out_r);
}

int
str_to_size(const char *s, uint64_t *out_r)
{
	static const uint64_t factors[] = {
	    STR_KIB, STR_KIB * STR_KIB, STR_KIB * STR_KIB * STR_KIB};

	return str_to_scaled(s, "kmg", factors, 1, out_r);
}

int
str_eq_ci(const char *a, const char *b)
{
	while (*a != '\0' && ascii_lower((unsigned char)*a) ==
	                         ascii_lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

int
str_prefix_ci(const char *s, size_t len, const char *prefix)
{
	size_t i;

	for (i = 0; prefix[i] != '\0'; i++) {
		if (i >= len || ascii_lower((unsigned char)s[i]) !=
		                    ascii_lower((unsigned char)prefix[i]))
			return 0;
	}
	return 1;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)ascii_lower((unsigned char)*s);
}

char *
str_trim(char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
	return s;
}

int
str_split(char *s, const char *seps, char **fields, int max)
{
	int n = 0;

	for (;;) {
		s += strspn(s, seps);
		if (*s == '\0')
			return n;
		if (n >= max)
			return -1;
		fields[n++] = s;
		s += strcspn(s, seps);
		if (*s == '\0')
			return n;
		*s++ = '\0';
	}
}

size_t
str_utf8_seq(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i;
	uint32_t cp, min;

	if (len == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0; /* continuation byte, C0/C1 overlong lead, > F4 */
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
str_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((n = str_utf8_seq(s + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

const char *
str_format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return buf;
}
