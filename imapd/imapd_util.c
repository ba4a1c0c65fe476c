/* SPDX-License-Identifier: MIT */
/*
 * imapd helpers without I/O: sequence sets resolved against a view
 * (RFC 9051 9 sequence-set, RFC 5182 "$"), flag lists, header fields of
 * a stored message (RFC 5322 2.2 with its folding), CRLF conversion of
 * stored LF mail, the day of a Date: field (SENTBEFORE etc.) and LIST
 * patterns (RFC 3501 6.3.8).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "imapd.h"

#define SECONDS_PER_DAY 86400
/* Two-digit years in Date: fields (RFC 5322 4.3). */
#define YEAR_2DIGIT_CUTOFF 50

void
imapd_bputs(struct buf *b, const char *s)
{
	if (buf_puts(b, s) < 0)
		return;
}

void
imapd_bputc(struct buf *b, char c)
{
	if (buf_putc(b, c) < 0)
		return;
}

void
imapd_bappend(struct buf *b, const void *data, size_t len)
{
	if (buf_append(b, data, len) < 0)
		return;
}

void
imapd_bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(b, fmt, ap) < 0) {
		va_end(ap);
		return;
	}
	va_end(ap);
}

void
imapd_seqs_free(struct imapd_seqs *set)
{
	free(set->seqs);
	set->seqs = NULL;
	set->count = 0;
}

uint32_t
imapd_seq_lower(struct mailbox *box, uint32_t uid)
{
	uint32_t lo = 1, hi = mailbox_count(box) + 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (mailbox_msg(box, mid)->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A range of sequence numbers, for sorting. */
struct seq_range {
	uint32_t lo, hi;
};

static int
seq_range_cmp(const void *a, const void *b)
{
	const struct seq_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Resolves a sequence set (uid: of UIDs; "$": the saved result) against
 * the view. The ranges are made sequence ranges, sorted and swept once,
 * so "1:*,1:*,..." costs O(ranges log ranges + view), not O(ranges *
 * view).
 */
int
imapd_seqs_resolve(struct imapd_session *s, const char *str, int uid,
    struct imapd_seqs *out)
{
	struct mailbox *box = s->box;
	struct imap_seqset set;
	struct seq_range *r;
	uint32_t n = mailbox_count(box), star, lo, hi, seq, next = 1;
	uint8_t *mark;
	size_t i, nr = 0;
	int dollar = 0;

	out->seqs = NULL;
	out->count = 0;
	memset(&set, 0, sizeof(set));
	if (!imap_seqset_parse(str, &set, 1, &dollar))
		return 0;
	if (dollar) {
		mark = xcalloc((size_t)n + 2, 1);
		for (i = 0; i < s->saved_count; i++) {
			seq = mailbox_seq(box, s->saved[i]);
			if (seq != 0)
				mark[seq] = 1;
		}
		out->seqs = xmalloc(((size_t)n + 1) * sizeof(*out->seqs));
		for (seq = 1; seq <= n; seq++) {
			if (mark[seq])
				out->seqs[out->count++] = seq;
		}
		free(mark);
		return 1;
	}
	r = xmalloc((set.count + 1) * sizeof(*r));
	star = uid ? (n > 0 ? mailbox_msg(box, n)->uid : 0) : n;
	for (i = 0; i < set.count; i++) {
		lo = set.ranges[i].lo == UINT32_MAX ? star : set.ranges[i].lo;
		hi = set.ranges[i].hi == UINT32_MAX ? star : set.ranges[i].hi;
		if (lo > hi) {
			seq = lo;
			lo = hi;
			hi = seq;
		}
		if (!uid && (lo > n || hi > n || lo == 0 || hi == 0)) {
			free(r);
			imap_seqset_free(&set);
			return 0;
		}
		if (uid) {
			if (star == 0)
				continue;
			lo = imapd_seq_lower(box, lo);
			hi = hi == UINT32_MAX ? n + 1
			                      : imapd_seq_lower(box, hi + 1);
			if (lo >= hi)
				continue;
			hi--;
		}
		r[nr].lo = lo;
		r[nr].hi = hi;
		nr++;
	}
	imap_seqset_free(&set);
	qsort(r, nr, sizeof(*r), seq_range_cmp);
	out->seqs = xmalloc(((size_t)n + 1) * sizeof(*out->seqs));
	for (i = 0; i < nr; i++) {
		for (seq = r[i].lo > next ? r[i].lo : next; seq <= r[i].hi;
		     seq++)
			out->seqs[out->count++] = seq;
		if (r[i].hi + 1 > next)
			next = r[i].hi + 1;
	}
	free(r);
	return 1;
}

static const struct {
	const char *name;
	uint8_t bit;
} system_flags[] = {
    {"\\Answered", MAILBOX_F_ANSWERED},
    {"\\Flagged", MAILBOX_F_FLAGGED},
    {"\\Deleted", MAILBOX_F_DELETED},
    {"\\Seen", MAILBOX_F_SEEN},
    {"\\Draft", MAILBOX_F_DRAFT},
    {"\\Recent", MAILBOX_F_RECENT},
};

int
imapd_flag_bit(const char *name, size_t len, uint8_t *bit_r)
{
	size_t i;

	for (i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (strlen(system_flags[i].name) == len &&
		    strncasecmp(system_flags[i].name, name, len) == 0) {
			*bit_r = system_flags[i].bit;
			return 1;
		}
	}
	return 0;
}

int
imapd_append_flags(struct buf *out, struct mailbox *box, uint8_t flags,
    uint32_t keywords)
{
	const char *sep = "";
	size_t i;

	for (i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (flags & system_flags[i].bit) {
			if (buf_printf(out, "%s%s", sep, system_flags[i].name) <
			    0)
				return -1;
			sep = " ";
		}
	}
	for (i = 0; i < MAILBOX_KEYWORDS_MAX; i++) {
		const char *name;

		if (!(keywords & (1U << i)) || box == NULL ||
		    i >= mailbox_keyword_count(box))
			continue;
		/* A hole Dovecot left in dovecot-keywords has no name. */
		name = mailbox_keyword_name(box, (unsigned)i);
		if (name == NULL)
			continue;
		if (buf_printf(out, "%s%s", sep, name) < 0)
			return -1;
		sep = " ";
	}
	return 0;
}

/* RFC 3501 9: flag-keyword is an atom: no specials. */
static int
keyword_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAILBOX_KEYWORD_LEN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

static int
parse_one_flag(struct mailbox *box, const struct imap_arg *a, int create,
    uint8_t *flags, uint32_t *keywords, int *created, const char **error_r)
{
	const char *err;
	uint8_t bit;
	size_t before;
	int idx;

	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Flags must be atoms.";
		return 0;
	}
	if (a->len > 0 && a->str[0] == '\\') {
		if (!imapd_flag_bit(a->str, a->len, &bit)) {
			*error_r = "Invalid system flag.";
			return 0;
		}
		/* \Recent belongs to the server (RFC 3501 2.3.2). */
		if (bit != MAILBOX_F_RECENT)
			*flags |= bit;
		return 1;
	}
	if (!keyword_valid(a->str, a->len)) {
		*error_r = "Invalid keyword.";
		return 0;
	}
	before = mailbox_keyword_count(box);
	idx = mailbox_keyword_index(box, a->str, create, &err);
	if (idx < 0 && create) {
		/* Not the client's syntax: the folder's limit (or its
		 * dovecot-keywords file) said no. */
		*error_r = err != NULL ? err : "Too many keywords.";
		return idx;
	}
	if (idx >= 0 && idx < MAILBOX_KEYWORDS_MAX)
		*keywords |= 1U << idx;
	if (mailbox_keyword_count(box) != before)
		*created = 1;
	return 1;
}

int
imapd_parse_flags(struct mailbox *box, const struct imap_arg *arg,
    int create, uint8_t *flags_r, uint32_t *keywords_r, int *created_r,
    const char **error_r)
{
	size_t i;
	int r;

	*flags_r = 0;
	*keywords_r = 0;
	*created_r = 0;
	if (arg->type != IMAP_ARG_LIST)
		return parse_one_flag(box, arg, create, flags_r, keywords_r,
		    created_r, error_r);
	for (i = 0; i < arg->count; i++) {
		r = parse_one_flag(box, &arg->list[i], create, flags_r,
		    keywords_r, created_r, error_r);
		if (r <= 0)
			return r;
	}
	return 1;
}

size_t
imapd_header_end(const char *msg, size_t len)
{
	size_t i = 0;

	/* A line that is empty (LF or CRLF alone) ends the header. */
	while (i < len) {
		if (msg[i] == '\n')
			return i + 1;
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		while (i < len && msg[i] != '\n')
			i++;
		if (i < len)
			i++;
	}
	return len;
}

size_t
imapd_crlf_copy(char *dst, const char *src, size_t len, int prev_cr)
{
	const char *p = src, *end = src + len, *lf;
	char *d = dst;
	size_t n;

	if (len == 0)
		return 0;
	/* A line at a time: memchr and memcpy run at memory speed. */
	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n = (size_t)(lf - p);
		memcpy(d, p, n);
		d += n;
		if (lf == src ? !prev_cr : lf[-1] != '\r')
			*d++ = '\r';
		*d++ = '\n';
		p = lf + 1;
	}
	memcpy(d, p, (size_t)(end - p));
	return (size_t)(d - dst) + (size_t)(end - p);
}

size_t
imapd_crlf_extra(const char *src, size_t len, int prev_cr)
{
	const char *p = src, *end = src + len, *lf;
	size_t n = 0;

	if (len == 0)
		return 0;
	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (lf == src ? !prev_cr : lf[-1] != '\r')
			n++;
		p = lf + 1;
	}
	return n;
}

int
imapd_header_next(const char *hdr, size_t len, size_t *pos,
    const char **name_r, size_t *name_len_r, const char **value_r,
    size_t *value_len_r, size_t *field_start_r)
{
	size_t p = *pos, start, colon, end;

	for (;;) {
		if (p >= len || hdr[p] == '\n' ||
		    (hdr[p] == '\r' && p + 1 < len && hdr[p + 1] == '\n'))
			return 0;
		start = p;
		while (p < len && hdr[p] != '\n')
			p++;
		if (p < len)
			p++;
		/* Continuation lines belong to the field. */
		while (p < len && (hdr[p] == ' ' || hdr[p] == '\t')) {
			while (p < len && hdr[p] != '\n')
				p++;
			if (p < len)
				p++;
		}
		end = p;
		for (colon = start; colon < end && hdr[colon] != ':' &&
		     hdr[colon] != '\n';
		     colon++)
			;
		if (colon >= end || hdr[colon] != ':')
			continue; /* not a field: skipped, as Dovecot does */
		*name_r = hdr + start;
		*name_len_r = colon - start;
		while (*name_len_r > 0 && (hdr[start + *name_len_r - 1] == ' ' ||
		                              hdr[start + *name_len_r - 1] == '\t'))
			(*name_len_r)--;
		*value_r = hdr + colon + 1;
		*value_len_r = end - colon - 1;
		*field_start_r = start;
		*pos = p;
		return 1;
	}
}

static int
parse_num(const char *s, size_t len, size_t *i, int maxdigits, int *v_r)
{
	int v = 0, d = 0;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9' && d < maxdigits) {
		v = v * 10 + (s[*i] - '0');
		(*i)++;
		d++;
	}
	*v_r = v;
	return d > 0;
}

static void
skip_cfws(const char *s, size_t len, size_t *i)
{
	int depth = 0;

	while (*i < len) {
		if (s[*i] == '(')
			depth++;
		else if (s[*i] == ')' && depth > 0)
			depth--;
		else if (depth == 0 && s[*i] != ' ' && s[*i] != '\t' &&
		         s[*i] != '\r' && s[*i] != '\n')
			return;
		(*i)++;
	}
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
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

int
imapd_rfc822_day(const char *s, size_t len, int64_t *day_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	size_t i = 0, k;
	int day, year, mon = -1;

	skip_cfws(s, len, &i);
	/* An optional day of the week. */
	if (i < len && ((s[i] >= 'A' && s[i] <= 'Z') ||
	                   (s[i] >= 'a' && s[i] <= 'z'))) {
		while (i < len && s[i] != ',' && s[i] != ' ')
			i++;
		if (i < len && s[i] == ',')
			i++;
		skip_cfws(s, len, &i);
	}
	if (!parse_num(s, len, &i, 2, &day))
		return 0;
	skip_cfws(s, len, &i);
	if (i + 3 > len)
		return 0;
	for (k = 0; k < 12; k++) {
		if (strncasecmp(s + i, months + 3 * k, 3) == 0)
			mon = (int)k + 1;
	}
	if (mon < 0)
		return 0;
	i += 3;
	skip_cfws(s, len, &i);
	k = i;
	if (!parse_num(s, len, &i, 4, &year))
		return 0;
	if (i - k <= 2)
		year += year < YEAR_2DIGIT_CUTOFF ? 2000 : 1900;
	else if (i - k == 3)
		year += 1900;
	if (day < 1 || day > 31)
		return 0;
	*day_r = days_from_civil(year, mon, day) * SECONDS_PER_DAY;
	return 1;
}

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
}

/* The next occurrence of c at or after p in [p, end), end if none; *at
 * remembers the last answer so that no range is scanned twice. */
static const char *
next_of(const char **at, const char *p, const char *end, unsigned char c)
{
	if (*at == NULL || (*at < p && *at != end)) {
		*at = memchr(p, c, (size_t)(end - p));
		if (*at == NULL)
			*at = end;
	}
	return *at;
}

int
imapd_contains(const char *hay, size_t hlen, const char *needle,
    size_t nlen)
{
	const char *p = hay, *end, *lo = NULL, *up = NULL, *c;
	unsigned char lower, upper;
	size_t j;

	if (nlen == 0)
		return 1;
	if (nlen > hlen)
		return 0;
	end = hay + (hlen - nlen) + 1; /* where a match may start */
	lower = fold((unsigned char)needle[0]);
	upper = lower >= 'a' && lower <= 'z'
	            ? (unsigned char)(lower - 'a' + 'A')
	            : lower;
	/* memchr finds the candidates: far faster than folding every
	 * octet (SEARCH BODY over a folder is mostly this loop) */
	for (;;) {
		c = next_of(&lo, p, end, lower);
		if (upper != lower && next_of(&up, p, end, upper) < c)
			c = up;
		if (c >= end)
			return 0;
		for (j = 1; j < nlen; j++) {
			if (fold((unsigned char)c[j]) !=
			    fold((unsigned char)needle[j]))
				break;
		}
		if (j == nlen)
			return 1;
		p = c + 1;
	}
}

int
imapd_list_match(const char *p, const char *n, char sep)
{
	/* Dynamic programming over the name, one row per pattern octet:
	 * row[j] says the pattern so far matches the name's first j octets.
	 * Linear in both lengths, whatever the wildcards (a backtracking
	 * matcher is exponential on "*a*a*a*...b"). */
	size_t nlen = strlen(n), j;
	unsigned char *row, *next, *t;
	int ok;

	if (strlen(p) > IMAPD_PATTERN_MAX)
		return 0;
	row = xcalloc(nlen + 1, 1);
	next = xcalloc(nlen + 1, 1);
	row[0] = 1;
	for (; *p != '\0'; p++) {
		if (*p == '*' || *p == '%') {
			next[0] = row[0];
			for (j = 1; j <= nlen; j++)
				next[j] = row[j] ||
				          (next[j - 1] &&
				              (*p == '*' || n[j - 1] != sep));
		} else {
			next[0] = 0;
			for (j = 1; j <= nlen; j++)
				next[j] = row[j - 1] && n[j - 1] == *p;
		}
		t = row;
		row = next;
		next = t;
	}
	ok = row[nlen];
	free(row);
	free(next);
	return ok;
}
