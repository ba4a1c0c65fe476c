/* SPDX-License-Identifier: MIT */
/*
 * SORT and THREAD keys from header values (RFC 5256 sections 2.1-2.2 and
 * 3, RFC 5957): base subjects, message ids, sent dates and the first
 * address of From/To/Cc, read as Dovecot 2.3 reads them so that both
 * servers order the same folder alike (see imap_sort.h). Uses the RFC 822
 * tokenizer and the address parser of lib/mail/mime (mime_int.h), which
 * follow Dovecot's lib-mail already.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "mail/imap_sort.h"
#include "mail/mime.h"
#include "mail/mime_int.h"

/* RFC 2047 words decode to at most this many times their length (a
 * single-octet charset to UTF-8 needs 3 for U+0800 and up). */
#define DECODE_GROWTH        4
#define DECODE_SLACK         16
/* Room for what the address parser fills in ("MISSING_MAILBOX@...") */
#define ADDR_FILL_SLACK      64
#define SECONDS_PER_MINUTE   60
#define SECONDS_PER_DAY      86400
#define TWO_DIGIT_YEAR_PIVOT 70 /* Dovecot: "yy" below it is 20yy */
#define YEAR_MIN             1900

/* ---------------------------------------------------------- subjects */

static void
upcase_ascii(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
	}
}

/* Tabs, CR, LF and runs of them with spaces become one space. */
static void
pack_whitespace(char *s)
{
	char *d = s;
	int last = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			if (!last)
				*d++ = ' ';
			last = 1;
		} else {
			*d++ = *s;
			last = 0;
		}
	}
	*d = '\0';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP (white space is packed already). */
static int
skip_blob(const char *s, size_t *pos)
{
	size_t i = *pos;

	if (s[i] != '[')
		return 0;
	for (i++; s[i] != '\0' && s[i] != '[' && s[i] != ']'; i++)
		;
	if (s[i] != ']')
		return 0;
	i++;
	if (s[i] == ' ')
		i++;
	*pos = i;
	return 1;
}

/* Step 2: subj-trailer = "(fwd)" / WSP, from the end, not before start. */
static void
remove_trailers(char *s, size_t start, size_t *len, int *fwd)
{
	size_t n = *len;

	while (n > start) {
		if (s[n - 1] == ' ')
			n--;
		else if (n - start >= 5 && memcmp(s + n - 5, "(FWD)", 5) == 0) {
			*fwd = 1;
			n -= 5;
		} else
			break;
	}
	s[n] = '\0';
	*len = n;
}

static int
starts_with(const char *s, const char *prefix, size_t *pos)
{
	size_t n = strlen(prefix);

	if (strncmp(s + *pos, prefix, n) != 0)
		return 0;
	*pos += n;
	return 1;
}

/* Step 3: subj-leader = (*subj-blob subj-refwd) / WSP, where
 * subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":". A leading
 * space goes even when no refwd follows. */
static int
remove_leader(const char *s, size_t *start, int *fwd)
{
	size_t i = *start;
	int found = 0;

	if (s[i] == ' ') {
		i++;
		*start = i;
		found = 1;
	}
	while (s[i] == '[') {
		if (!skip_blob(s, &i))
			return found;
	}
	if (!starts_with(s, "RE", &i) && !starts_with(s, "FWD", &i) &&
	    !starts_with(s, "FW", &i))
		return found;
	if (s[i] == ' ')
		i++;
	if (s[i] == '[' && !skip_blob(s, &i))
		return found;
	if (s[i] != ':')
		return found;
	*start = i + 1;
	*fwd = 1;
	return 1;
}

/* Step 4: a leading subj-blob goes if something is left after it. */
static int
remove_blob_nonempty(const char *s, size_t *start)
{
	size_t i = *start;

	if (s[i] == '[' && skip_blob(s, &i) && s[i] != '\0') {
		*start = i;
		return 1;
	}
	return 0;
}

/* Step 6: subj-fwd = "[fwd:" subject "]". */
static int
remove_fwd_hdr(char *s, size_t *start, size_t *len, int *fwd)
{
	if (strncmp(s + *start, "[FWD:", 5) != 0 || s[*len - 1] != ']')
		return 0;
	*fwd = 1;
	s[--*len] = '\0';
	*start += 5;
	return 1;
}

char *
imap_base_subject(const char *subject, int *reply_or_fwd_r)
{
	size_t in = strlen(subject), start = 0, len;
	struct buf dec;
	char *s, *ret;
	int found;

	*reply_or_fwd_r = 0;
	/* (1) encoded words to UTF-8, white space runs to one space */
	buf_init(&dec, in * DECODE_GROWTH + DECODE_SLACK);
	if (mime_decode_words(&dec, subject, in) < 0)
		buf_reset(&dec);
	s = buf_steal(&dec);
	upcase_ascii(s);
	pack_whitespace(s);
	len = strlen(s);
	do {
		/* (2) trailers */
		remove_trailers(s, start, &len, reply_or_fwd_r);
		do {
			/* (3) leaders, (4) a blob, (5) until none is left */
			found = remove_leader(s, &start, reply_or_fwd_r);
			found = remove_blob_nonempty(s, &start) || found;
		} while (found);
		/* (6) "[fwd: ...]", then again from (2) */
	} while (remove_fwd_hdr(s, &start, &len, reply_or_fwd_r));
	ret = xstrdup(s + start);
	free(s);
	return ret;
}

/* ------------------------------------------------------- message ids */

static int
is_lwsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* An id with quoted strings or comments in it: msg-id = [CFWS] "<"
 * id-left "@" id-right ">" [CFWS], tokenised. start is after '<'. */
static int
msgid_tokenized(const char *value, size_t start, size_t *end_r, struct mstr *id)
{
	struct rfc822_ctx c;
	int ret;

	rfc822_init(&c, value + start, strlen(value + start));
	(void)rfc822_skip_lwsp(&c);
	if (c.data < c.end && *c.data == '"')
		ret = rfc822_parse_quoted_string(&c, id);
	else
		ret = rfc822_parse_dot_atom(&c, id);
	if (ret <= 0 || *c.data != '@')
		return 0;
	mstr_addc(id, '@');
	c.data++;
	(void)rfc822_skip_lwsp(&c);
	if (rfc822_parse_dot_atom(&c, id) <= 0 || *c.data != '>')
		return 0;
	*end_r = (size_t)((const char *)c.data + 1 - value);
	return 1;
}

int
imap_msgid_next(const char *value, size_t *pos, struct buf *out)
{
	size_t i = *pos, start, end, k;
	struct mstr id = {0};
	int at, ok;

	buf_reset(out);
	for (;;) {
		while (value[i] != '<') {
			if (value[i] == '\0') {
				*pos = i;
				return 0;
			}
			i++;
		}
		start = ++i;
		/* The quick way for the usual "<left@right>"; a quote or a
		 * comment inside needs the tokenizer. */
		at = 0;
		for (;; i++) {
			unsigned char ch = (unsigned char)value[i];

			if (ch >= 'A')
				continue;
			if (ch == '@')
				at = 1;
			if (ch == '>' || ch == '"' || ch == '(' || ch == '\0')
				break;
		}
		if (value[i] == '\0') {
			*pos = i;
			return 0;
		}
		if (value[i] == '>') {
			end = i;
			i++;
			if (!at)
				continue;
			for (k = start; k < end; k++) {
				if (!is_lwsp(value[k]) &&
				    buf_putc(out, value[k]) < 0)
					return 0;
			}
			*pos = i;
			return 1;
		}
		mstr_trunc(&id, 0);
		ok = msgid_tokenized(value, start, &end, &id);
		if (ok && buf_append(out, mstr_c(&id), id.len) < 0)
			ok = 0;
		mstr_free(&id);
		if (ok) {
			*pos = end;
			return 1;
		}
		i = start;
	}
}

/* ------------------------------------------------------------- dates */

struct date_tok {
	struct rfc822_ctx c;
	struct mstr s;
};

/* 1 with a token, 0 at the end, -1 when no atom starts here. */
static int
date_token(struct date_tok *t)
{
	int ret;

	mstr_trunc(&t->s, 0);
	ret = t->c.data >= t->c.end ? 0 : rfc822_parse_atom(&t->c, &t->s);
	mstr_c(&t->s);
	return ret < 0 ? -1 : t->s.len > 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Minutes east of UTC; unknown zones are UTC, as in Dovecot. */
static int
date_zone(const char *z, size_t len)
{
	int off, c;

	if (len == 5 && (z[0] == '+' || z[0] == '-')) {
		if (!is_digit(z[1]) || !is_digit(z[2]) || !is_digit(z[3]) ||
		    !is_digit(z[4]))
			return 0;
		off = ((z[1] - '0') * 10 + (z[2] - '0')) * 60 +
		      (z[3] - '0') * 10 + (z[4] - '0');
		return z[0] == '+' ? off : -off;
	}
	if (len == 1) {
		/* Military zones the way Dovecot computes them (from the
		 * octet as written). */
		c = upper((unsigned char)z[0]);
		if (c < 'J')
			return (z[0] - 'A' + 1) * 60;
		if (c == 'J')
			return 0;
		if (c <= 'M')
			return (z[0] - 'A') * 60;
		if (c < 'Z')
			return ('M' - z[0]) * 60;
		return 0;
	}
	if (len == 3 && z[2] == 'T') {
		switch (upper((unsigned char)z[0])) {
		case 'E':
			off = -5 * 60;
			break;
		case 'C':
			off = -6 * 60;
			break;
		case 'M':
			off = -7 * 60;
			break;
		case 'P':
			off = -8 * 60;
			break;
		default:
			return 0;
		}
		if (upper((unsigned char)z[1]) == 'D')
			return off + 60;
		if (upper((unsigned char)z[1]) == 'S')
			return off;
	}
	return 0;
}

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
month_days(int year, int mon)
{
	static const int days[12] = {
	    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (mon == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		return 29;
	return days[mon - 1];
}

/* A number of 1 or 2 digits (the day, the hour). */
static int
small_number(const struct mstr *s, int *n)
{
	if (s->len < 1 || s->len > 2 || !is_digit(s->d[0]) ||
	    (s->len == 2 && !is_digit(s->d[1])))
		return 0;
	*n = s->len == 1 ? s->d[0] - '0'
	                 : (s->d[0] - '0') * 10 + (s->d[1] - '0');
	return 1;
}

static int
two_digits(const struct mstr *s, int *n)
{
	if (s->len != 2 || !is_digit(s->d[0]) || !is_digit(s->d[1]))
		return 0;
	*n = (s->d[0] - '0') * 10 + (s->d[1] - '0');
	return 1;
}

static int
time_sep(const struct date_tok *t)
{
	/* ':' as RFC 5322 says; '.' as broken mailers write */
	return t->c.data < t->c.end && (*t->c.data == ':' || *t->c.data == '.');
}

/* [weekday ","] dd month [yy]yy hh:mm[:ss] [zone] */
static int
date_parse(struct date_tok *t, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int day, mon = -1, year = 0, hour, min, sec = 0, zone = 0, k, r;
	size_t i;

	(void)rfc822_skip_lwsp(&t->c);
	if (date_token(t) <= 0)
		return 0;
	if (t->s.len == 3) {
		if (t->c.data >= t->c.end || *t->c.data != ',')
			return 0;
		t->c.data++;
		(void)rfc822_skip_lwsp(&t->c);
		if (date_token(t) <= 0)
			return 0;
	}
	if (!small_number(&t->s, &day))
		return 0;
	if (date_token(t) <= 0 || t->s.len < 3)
		return 0;
	for (k = 0; k < 12; k++) {
		if (strncasecmp(months + 3 * k, t->s.d, 3) == 0) {
			mon = k + 1;
			break;
		}
	}
	if (mon < 0)
		return 0;
	if (date_token(t) <= 0 || (t->s.len != 2 && t->s.len != 4))
		return 0;
	for (i = 0; i < t->s.len; i++) {
		if (!is_digit(t->s.d[i]))
			return 0;
		year = year * 10 + (t->s.d[i] - '0');
	}
	if (t->s.len == 2)
		year += year < TWO_DIGIT_YEAR_PIVOT ? 2000 : 1900;
	else if (year < YEAR_MIN)
		return 0;
	if (date_token(t) <= 0 || !small_number(&t->s, &hour))
		return 0;
	if (!time_sep(t))
		return 0;
	t->c.data++;
	(void)rfc822_skip_lwsp(&t->c);
	if (date_token(t) < 0 || !two_digits(&t->s, &min))
		return 0;
	if (time_sep(t)) {
		t->c.data++;
		(void)rfc822_skip_lwsp(&t->c);
		if (date_token(t) <= 0 || !two_digits(&t->s, &sec))
			return 0;
	}
	if ((r = date_token(t)) < 0)
		return 0;
	if (r > 0)
		zone = date_zone(t->s.d, t->s.len);
	/* A leap second counts as :59; any other value out of range makes
	 * the date invalid (Dovecot's utc_mktime refuses to normalise). */
	if (sec == 60)
		sec = 59;
	if (day < 1 || day > month_days(year, mon) || hour > 23 || min > 59 ||
	    sec > 59)
		return 0;
	*t_r = days_from_civil(year, mon, day) * SECONDS_PER_DAY +
	       (int64_t)hour * 3600 + min * SECONDS_PER_MINUTE + sec -
	       (int64_t)zone * SECONDS_PER_MINUTE;
	return 1;
}

int
imap_sent_date(const char *value, int64_t *t_r)
{
	struct date_tok t;
	int ok;

	memset(&t, 0, sizeof(t));
	rfc822_init(&t.c, value, strlen(value));
	ok = date_parse(&t, t_r);
	mstr_free(&t.s);
	return ok;
}

/* --------------------------------------------------------- addresses */

char *
imap_sort_addr_key(const char *value, int display)
{
	struct mime_arena arena = {0};
	struct mime_addr *list = NULL, **tail = &list;
	const struct mime_addr *a;
	struct buf b;
	char *ret;

	buf_init(&b, strlen(value) * DECODE_GROWTH + ADDR_FILL_SLACK);
	mime_addr_parse(&arena, value, strlen(value), &tail);
	a = list;
	if (a != NULL && !display) {
		if (a->mailbox != NULL && buf_puts(&b, a->mailbox) < 0)
			buf_reset(&b);
	} else if (a != NULL) {
		if (a->name != NULL &&
		    mime_decode_words(&b, a->name, strlen(a->name)) < 0)
			buf_reset(&b);
		if (b.len == 0 && a->mailbox != NULL) {
			if (buf_puts(&b, a->mailbox) < 0 ||
			    (a->domain != NULL &&
			        buf_printf(&b, "@%s", a->domain) < 0))
				buf_reset(&b);
		}
	}
	mime_arena_free(&arena);
	ret = buf_steal(&b);
	/* Dovecot's strings end at a NUL; so does the key. */
	upcase_ascii(ret);
	return ret;
}
