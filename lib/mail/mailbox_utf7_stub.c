/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY: modified UTF-7 (RFC 3501 5.1.3) for the store's tests until
 * lib/mail/imap_parser.c lands on main; removed at that merge.
 */
#include <stdint.h>
#include <string.h>

#include "mail/imap_parser.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
put_utf8(struct buf *out, uint32_t c)
{
	char s[4];
	size_t n;

	if (c < 0x80) {
		s[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		s[0] = (char)(0xc0 | (c >> 6));
		s[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		s[0] = (char)(0xe0 | (c >> 12));
		s[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		s[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | (c >> 18));
		s[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		s[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	return buf_append(out, s, n) < 0 ? -1 : 1;
}

int
imap_utf7_to_utf8(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	uint32_t bits, nbits, u, hi;
	const char *q;

	while (i < len) {
		if (in[i] != '&') {
			if ((unsigned char)in[i] < 0x20 ||
			    (unsigned char)in[i] > 0x7e)
				return 0;
			if (buf_putc(out, in[i++]) < 0)
				return -1;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			if (buf_putc(out, '&') < 0)
				return -1;
			i++;
			continue;
		}
		bits = nbits = 0;
		hi = 0;
		while (i < len && in[i] != '-') {
			q = strchr(b64, in[i]);
			if (q == NULL || in[i] == '\0')
				return 0;
			bits = (bits << 6) | (uint32_t)(q - b64);
			nbits += 6;
			i++;
			if (nbits >= 16) {
				nbits -= 16;
				u = (bits >> nbits) & 0xffff;
				if (u >= 0xd800 && u < 0xdc00) {
					if (hi != 0)
						return 0;
					hi = u;
					continue;
				}
				if (u >= 0xdc00 && u < 0xe000) {
					if (hi == 0)
						return 0;
					u = 0x10000 + ((hi - 0xd800) << 10) +
					    (u - 0xdc00);
					hi = 0;
				} else if (hi != 0) {
					return 0;
				}
				if (put_utf8(out, u) < 0)
					return -1;
			}
		}
		if (i >= len || hi != 0)
			return 0;
		i++;
	}
	return 1;
}

int
imap_utf8_to_utf7(const char *in, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	uint32_t c, bits = 0, nbits = 0, units[2];
	size_t i = 0, n, k, j;
	int open = 0;

	while (i < len) {
		c = s[i];
		if (c >= 0x20 && c <= 0x7e) {
			if (open) {
				if (nbits > 0 &&
				    buf_putc(out,
				        b64[(bits << (6 - nbits)) & 0x3f]) < 0)
					return -1;
				if (buf_putc(out, '-') < 0)
					return -1;
				open = 0;
				bits = nbits = 0;
			}
			if (c == '&' ? buf_puts(out, "&-") < 0
			             : buf_putc(out, (char)c) < 0)
				return -1;
			i++;
			continue;
		}
		if (c < 0x80)
			return 0;
		n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (n == 0 || i + n > len || c > 0xf4)
			return 0;
		c &= 0x3f >> (n - 1);
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
		    (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
		    (c >= 0xd800 && c < 0xe000))
			return 0;
		i += n;
		if (!open) {
			if (buf_putc(out, '&') < 0)
				return -1;
			open = 1;
		}
		if (c >= 0x10000) {
			units[0] = 0xd800 + ((c - 0x10000) >> 10);
			units[1] = 0xdc00 + ((c - 0x10000) & 0x3ff);
			k = 2;
		} else {
			units[0] = c;
			k = 1;
		}
		for (j = 0; j < k; j++) {
			bits = (bits << 16) | units[j];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				if (buf_putc(out, b64[(bits >> nbits) & 0x3f]) <
				    0)
					return -1;
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (open) {
		if (nbits > 0 &&
		    buf_putc(out, b64[(bits << (6 - nbits)) & 0x3f]) < 0)
			return -1;
		if (buf_putc(out, '-') < 0)
			return -1;
	}
	return 1;
}
