/* SPDX-License-Identifier: MIT */
/*
 * The pieces of IMAP syntax besides the command parser (imap_parser.h):
 * strings as the server writes them (RFC 9051 4.3: quoted or literal),
 * sequence sets (RFC 9051 9 sequence-set, RFC 5182 "$"), date-time and
 * date (RFC 3501 9, written the way Dovecot writes them), and mailbox
 * names in modified UTF-7 (RFC 3501 5.1.3).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/imap_parser.h"

#define SECS_PER_DAY   86400
#define SECS_PER_HOUR  3600
#define SECS_PER_MIN   60
/* RFC 3501 9 zone: "+"/"-" 4DIGIT; more than a day away is nonsense. */
#define ZONE_HOURS_MAX 23
#define SURROGATE_HIGH 0xd800
#define SURROGATE_LOW  0xdc00
#define SURROGATE_END  0xe000
#define PLANE1         0x10000

static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ---- strings ---- */

/* 1 when s can be sent as a quoted string. */
static int
quotable(const char *s, size_t len, int utf8)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return 0;
		if (c >= 0x80 && !utf8)
			return 0;
	}
	return !utf8 || str_utf8_valid(s, len);
}

int
imap_append_string(struct buf *out, const char *s, size_t len, int utf8)
{
	size_t old = out->len, i, run;

	if (!quotable(s, len, utf8)) {
		if (buf_printf(out, "{%zu}\r\n", len) < 0 ||
		    buf_append(out, s, len) < 0)
			goto full;
		return 0;
	}
	if (buf_putc(out, '"') < 0)
		goto full;
	for (i = 0; i < len; i += run) {
		for (run = 0;
		     i + run < len && s[i + run] != '"' && s[i + run] != '\\';
		     run++)
			;
		if (buf_append(out, s + i, run) < 0)
			goto full;
		if (i + run < len) {
			if (buf_putc(out, '\\') < 0 ||
			    buf_putc(out, s[i + run]) < 0)
				goto full;
			run++;
		}
	}
	if (buf_putc(out, '"') < 0)
		goto full;
	return 0;
full:
	buf_truncate(out, old);
	return -1;
}

int
imap_append_nstring(struct buf *out, const char *s, size_t len, int utf8)
{
	if (s == NULL)
		return buf_puts(out, "NIL");
	return imap_append_string(out, s, len, utf8);
}

/* ---- sequence sets ---- */

/* A seq-number: nz-number or '*' (UINT32_MAX). Advances *s. */
static int
seq_number(const char **s, uint32_t *n_r)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p == '*') {
		*n_r = UINT32_MAX;
		*s = p + 1;
		return 1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return 0;
	}
	if (v == 0)
		return 0;
	*n_r = (uint32_t)v;
	*s = p;
	return 1;
}

int
imap_seqset_parse(
    const char *s, struct imap_seqset *set, int allow_dollar, int *dollar_r)
{
	size_t cap = 0;
	uint32_t lo, hi;

	set->ranges = NULL;
	set->count = 0;
	if (dollar_r != NULL)
		*dollar_r = 0;
	if (allow_dollar && strcmp(s, "$") == 0) {
		if (dollar_r != NULL)
			*dollar_r = 1;
		return 1;
	}
	for (;;) {
		if (!seq_number(&s, &lo))
			goto bad;
		hi = lo;
		if (*s == ':') {
			s++;
			if (!seq_number(&s, &hi))
				goto bad;
		}
		if (set->count == IMAP_SEQSET_MAX)
			goto bad;
		if (set->count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set->ranges =
			    xrealloc(set->ranges, cap * sizeof(*set->ranges));
		}
		/* RFC 9051 9: "4:2" is "2:4". */
		set->ranges[set->count].lo = lo < hi ? lo : hi;
		set->ranges[set->count].hi = lo < hi ? hi : lo;
		set->count++;
		if (*s == '\0')
			return 1;
		if (*s++ != ',')
			goto bad;
	}
bad:
	imap_seqset_free(set);
	return 0;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	size_t i;

	for (i = 0; i < set->count; i++) {
		uint32_t lo = set->ranges[i].lo, hi = set->ranges[i].hi, t;

		if (lo == UINT32_MAX)
			lo = star;
		if (hi == UINT32_MAX)
			hi = star;
		if (lo > hi) {
			t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return 1;
	}
	return 0;
}

int
imap_seqset_format(struct buf *out, const uint32_t *nums, size_t n)
{
	size_t old = out->len, i = 0, j;
	int first = 1;

	while (i < n) {
		/* The run nums[i..j] of consecutive (or repeated) numbers. */
		for (j = i; j + 1 < n && (nums[j + 1] == nums[j] ||
		                             (nums[j] != UINT32_MAX &&
		                                 nums[j + 1] == nums[j] + 1));
		     j++)
			;
		if (buf_printf(
		        out, "%s%u", first ? "" : ",", (unsigned)nums[i]) < 0)
			goto full;
		if (nums[j] != nums[i] &&
		    buf_printf(out, ":%u", (unsigned)nums[j]) < 0)
			goto full;
		first = 0;
		i = j + 1;
	}
	return 0;
full:
	buf_truncate(out, old);
	return -1;
}

/* ---- dates ---- */

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil): no time zone of the process is
 * involved, unlike mktime. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {
	    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* n digits at s into *v. */
static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* "d-Mon-yyyy" (day of one or two digits, or a space and one digit when
 * fixed) at *s: advances *s. */
static int
parse_day(const char **s, int fixed, int *y, int *m, int *d)
{
	const char *p = *s;
	int i;

	if (fixed && p[0] == ' ')
		p++;
	if (!digits(p, 1, d))
		return 0;
	p++;
	if (*p >= '0' && *p <= '9') {
		*d = *d * 10 + (*p - '0');
		p++;
	}
	if (*p++ != '-')
		return 0;
	for (i = 0; i < 12; i++)
		if (strncasecmp(p, month_names[i], 3) == 0)
			break;
	if (i == 12)
		return 0;
	*m = i + 1;
	p += 3;
	if (*p++ != '-' || !digits(p, 4, y))
		return 0;
	if (*d < 1 || *d > days_in_month(*y, *m))
		return 0;
	*s = p + 4;
	return 1;
}

int
imap_datetime_parse(const char *s, int64_t *time_r, int *tz_r)
{
	int quoted = *s == '"', y, m, d, hh, mm, ss, zh, zm, zone;

	if (quoted)
		s++;
	if (!parse_day(&s, 1, &y, &m, &d))
		return 0;
	if (s[0] != ' ' || !digits(s + 1, 2, &hh) || s[3] != ':' ||
	    !digits(s + 4, 2, &mm) || s[6] != ':' || !digits(s + 7, 2, &ss))
		return 0;
	s += 9;
	if (hh > 23 || mm > 59 || ss > 60)
		return 0;
	if (s[0] != ' ' || (s[1] != '+' && s[1] != '-') ||
	    !digits(s + 2, 2, &zh) || !digits(s + 4, 2, &zm))
		return 0;
	if (zh > ZONE_HOURS_MAX || zm > 59)
		return 0;
	zone =
	    (zh * SECS_PER_HOUR + zm * SECS_PER_MIN) * (s[1] == '-' ? -1 : 1);
	s += 6;
	if (quoted && *s++ != '"')
		return 0;
	if (*s != '\0')
		return 0;
	*time_r = days_from_civil(y, m, d) * SECS_PER_DAY +
	          (int64_t)hh * SECS_PER_HOUR + (int64_t)mm * SECS_PER_MIN +
	          ss - zone;
	*tz_r = zone;
	return 1;
}

int
imap_datetime_append(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	long off, a;

	if (localtime_r(&tt, &tm) == NULL)
		return buf_puts(out, "\"01-Jan-1970 00:00:00 +0000\"");
	off = tm.tm_gmtoff / SECS_PER_MIN;
	a = off < 0 ? -off : off;
	return buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"",
	    tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', a / 60, a % 60);
}

int
imap_date_parse(const char *s, int64_t *day_r)
{
	int quoted = *s == '"', y, m, d;

	if (quoted)
		s++;
	if (!parse_day(&s, 0, &y, &m, &d))
		return 0;
	if (quoted && *s++ != '"')
		return 0;
	if (*s != '\0')
		return 0;
	*day_r = days_from_civil(y, m, d) * SECS_PER_DAY;
	return 1;
}

/* ---- modified UTF-7 ---- */

/* RFC 3501 5.1.3: RFC 2152's base64 with ',' for '/'. */
static const char mb64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
mb64_value(unsigned char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(mb64, c)) == NULL)
		return -1;
	return (int)(p - mb64);
}

static int
put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < PLANE1) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

/* The base64 run from in[*i] (after '&') to its '-': 1, 0, -1. */
static int
utf7_run(const char *in, size_t len, size_t *i, struct buf *out)
{
	uint32_t bits = 0, high = 0, u;
	int nbits = 0, v, units = 0;

	for (; *i < len && in[*i] != '-'; (*i)++) {
		if ((v = mb64_value((unsigned char)in[*i])) < 0)
			return 0;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		units++;
		if (high != 0) {
			if (u < SURROGATE_LOW || u >= SURROGATE_END)
				return 0;
			u = PLANE1 + ((high - SURROGATE_HIGH) << 10) +
			    (u - SURROGATE_LOW);
			high = 0;
		} else if (u >= SURROGATE_HIGH && u < SURROGATE_LOW) {
			high = u;
			continue;
		} else if (u >= SURROGATE_LOW && u < SURROGATE_END) {
			return 0;
		} else if (u >= 0x20 && u < 0x7f) {
			/* Printable ASCII represents itself. */
			return 0;
		}
		if (put_utf8(out, u) < 0)
			return -1;
	}
	/* Unterminated, empty ("&-" is handled by the caller), a lone
	 * high surrogate, or leftover bits that are not zero padding. */
	if (*i == len || units == 0 || high != 0 || nbits >= 6 || bits != 0)
		return 0;
	(*i)++;
	return 1;
}

int
imap_utf7_to_utf8(const char *in, size_t len, struct buf *out)
{
	size_t old = out->len, i = 0;
	int r;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c >= 0x7f) {
			r = 0;
			goto fail;
		}
		if (c != '&') {
			if (buf_putc(out, (char)c) < 0) {
				r = -1;
				goto fail;
			}
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			if (buf_putc(out, '&') < 0) {
				r = -1;
				goto fail;
			}
			i++;
			continue;
		}
		if ((r = utf7_run(in, len, &i, out)) != 1)
			goto fail;
	}
	return 1;
fail:
	buf_truncate(out, old);
	return r;
}

/* Appends the UTF-16 unit u to the base64 run. */
static int
utf7_unit(struct buf *out, uint32_t u, uint32_t *bits, int *nbits)
{
	*bits = (*bits << 16) | u;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		if (buf_putc(out, mb64[(*bits >> *nbits) & 0x3f]) < 0)
			return -1;
	}
	*bits &= (1u << *nbits) - 1;
	return 0;
}

int
imap_utf8_to_utf7(const char *in, size_t len, struct buf *out)
{
	size_t old = out->len, i = 0, n;
	uint32_t bits = 0, cp;
	int nbits = 0, in_run = 0;

	if (!str_utf8_valid(in, len))
		return 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c < 0x7f) {
			if (in_run) {
				if (nbits > 0 &&
				    buf_putc(out,
				        mb64[(bits << (6 - nbits)) & 0x3f]) < 0)
					goto full;
				if (buf_putc(out, '-') < 0)
					goto full;
				in_run = 0;
				bits = 0;
				nbits = 0;
			}
			if (buf_putc(out, (char)c) < 0 ||
			    (c == '&' && buf_putc(out, '-') < 0))
				goto full;
			i++;
			continue;
		}
		n = str_utf8_seq(in + i, len - i);
		if (n == 1)
			cp = c;
		else if (n == 2)
			cp = ((uint32_t)(c & 0x1f) << 6) |
			     ((unsigned char)in[i + 1] & 0x3f);
		else if (n == 3)
			cp =
			    ((uint32_t)(c & 0x0f) << 12) |
			    ((uint32_t)((unsigned char)in[i + 1] & 0x3f) << 6) |
			    ((unsigned char)in[i + 2] & 0x3f);
		else
			cp =
			    ((uint32_t)(c & 0x07) << 18) |
			    ((uint32_t)((unsigned char)in[i + 1] & 0x3f)
			        << 12) |
			    ((uint32_t)((unsigned char)in[i + 2] & 0x3f) << 6) |
			    ((unsigned char)in[i + 3] & 0x3f);
		i += n;
		if (!in_run) {
			if (buf_putc(out, '&') < 0)
				goto full;
			in_run = 1;
		}
		if (cp >= PLANE1) {
			cp -= PLANE1;
			if (utf7_unit(out, SURROGATE_HIGH + (cp >> 10), &bits,
			        &nbits) < 0 ||
			    utf7_unit(out, SURROGATE_LOW + (cp & 0x3ff), &bits,
			        &nbits) < 0)
				goto full;
		} else if (utf7_unit(out, cp, &bits, &nbits) < 0) {
			goto full;
		}
	}
	if (in_run) {
		if (nbits > 0 &&
		    buf_putc(out, mb64[(bits << (6 - nbits)) & 0x3f]) < 0)
			goto full;
		if (buf_putc(out, '-') < 0)
			goto full;
	}
	return 1;
full:
	buf_truncate(out, old);
	return -1;
}
