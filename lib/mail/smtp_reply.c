/* SPDX-License-Identifier: MIT */
/*
 * Server replies as the SMTP client reads them: RFC 5321 4.2 (reply
 * lines, multi-line replies), 4.5.3.1.5 (line length: enforced loosely,
 * at SMTP_REPLY_LINE_MAX, as real servers overrun 512), RFC 3463
 * (enhanced status codes, RFC 2034 for where they appear), and the EHLO
 * keywords of RFC 5321 4.1.1.1 (with RFC 4954's AUTH and the old
 * "AUTH=" form some servers still send).
 *
 * The parser is a pure function of the lines fed to it, so it can be
 * fuzzed and tested without a peer; smtp_reply_read puts a stream and
 * one deadline for the whole reply around it (a peer that trickles
 * continuation lines must not stretch the stage's timeout).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/str.h"
#include "mail/smtp_reply.h"

#define CODE_LEN            3  /* "250" */
#define ERROR_LINE_MAX      64 /* of the bad line, in the error text */
#define ELLIPSIS            "..."
#define MS_PER_SEC          1000
#define NS_PER_MS           1000000
/* RFC 3463 2: subject and detail are 1*3digit. */
#define DSN_PART_DIGITS_MAX 3

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX + sizeof(ELLIPSIS));
	buf_init(&r->lines,
	    (size_t)SMTP_REPLY_LINES_MAX * (SMTP_REPLY_LINE_MAX + 1));
	/* stream_read_line wants room for the limit plus a CR. */
	buf_init(&r->line, SMTP_REPLY_LINE_MAX + 1);
}

void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->dsn[0] = '\0';
	r->nlines = 0;
	r->done = 0;
	r->truncated = 0;
	r->error[0] = '\0';
	buf_reset(&r->text);
	buf_reset(&r->lines);
	/* r->line is left alone: the stream owns its state (a partial
	 * line), and stream_read_line empties it before each new line. */
}

void
smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	buf_free(&r->lines);
	buf_free(&r->line);
}

/* Appends what was sized to fit; a failure is a bug in the sizing. */
static void
must_append(struct buf *b, const void *data, size_t len)
{
	if (buf_append(b, data, len) < 0)
		msg_panic("smtp_reply: buffer sized too small");
}

/* Adds text to r->text, sanitized, cut at SMTP_REPLY_TEXT_MAX. */
static void
text_add(struct smtp_reply *r, const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < len && !r->truncated; i++) {
		if (r->text.len >= SMTP_REPLY_TEXT_MAX) {
			must_append(&r->text, ELLIPSIS, strlen(ELLIPSIS));
			r->truncated = 1;
			break;
		}
		c = (unsigned char)s[i];
		if (c < ' ' || c >= 0x7f)
			c = '?';
		must_append(&r->text, &c, 1);
	}
}

/*
 * Length of an RFC 3463 status code "class.subject.detail" at the start
 * of s (len bytes), followed by a space or the end, with the class
 * digit cls; 0 if there is none.
 */
static size_t
dsn_len(const char *s, size_t len, char cls)
{
	size_t i = 0, n;
	int part;

	if (len < 1 || s[0] != cls)
		return 0;
	i = 1;
	for (part = 0; part < 2; part++) {
		if (i >= len || s[i] != '.')
			return 0;
		i++;
		for (n = 0; i < len && is_digit(s[i]); n++, i++)
			;
		if (n == 0 || n > DSN_PART_DIGITS_MAX)
			return 0;
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

static enum smtp_reply_status
bad(struct smtp_reply *r, const char *why, const char *line, size_t len,
    const char **error_r)
{
	if (line != NULL)
		(void)snprintf(r->error, sizeof(r->error), "%s: \"%s\"", why,
		    log_sanitize_n(line, len, ERROR_LINE_MAX));
	else
		(void)snprintf(r->error, sizeof(r->error), "%s", why);
	r->done = -1;
	*error_r = r->error;
	return SMTP_REPLY_BAD;
}

enum smtp_reply_status
smtp_reply_feed(
    struct smtp_reply *r, const char *line, size_t len, const char **error_r)
{
	const char *text;
	size_t tlen, skip;
	int code, last;

	if (r->done != 0)
		msg_panic("smtp_reply_feed: the reply is finished");
	if (len > SMTP_REPLY_LINE_MAX)
		return bad(r, "reply line too long", line, len, error_r);
	if (len < CODE_LEN || line[0] < '2' || line[0] > '5' ||
	    !is_digit(line[1]) || !is_digit(line[2]) ||
	    (len > CODE_LEN && line[CODE_LEN] != ' ' && line[CODE_LEN] != '-'))
		return bad(r, "malformed reply line", line, len, error_r);
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return bad(r, "reply code changed inside a multi-line reply",
		    line, len, error_r);
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return bad(r, "reply has too many lines", NULL, 0, error_r);
	last = len == CODE_LEN || line[CODE_LEN] == ' ';
	text = len > CODE_LEN ? line + CODE_LEN + 1 : line + CODE_LEN;
	tlen = len > CODE_LEN ? len - CODE_LEN - 1 : 0;

	r->line_off[r->nlines] = r->lines.len;
	must_append(&r->lines, text, tlen);
	must_append(&r->lines, "", 1);

	if (r->nlines == 0) {
		r->code = code;
		text_add(r, line, CODE_LEN);
		skip = dsn_len(text, tlen, line[0]);
		if (skip > 0)
			memcpy(r->dsn, text, skip);
		r->dsn[skip] = '\0';
	} else if (r->dsn[0] != '\0' &&
	           (skip = dsn_len(text, tlen, line[0])) == strlen(r->dsn) &&
	           memcmp(text, r->dsn, skip) == 0) {
		/* "550-5.1.1 a" "550 5.1.1 b": the code once is enough. */
		text += skip;
		tlen -= skip;
		while (tlen > 0 && *text == ' ') {
			text++;
			tlen--;
		}
	}
	if (tlen > 0) {
		text_add(r, " ", 1);
		text_add(r, text, tlen);
	}
	r->nlines++;
	if (!last)
		return SMTP_REPLY_MORE;
	r->done = 1;
	return SMTP_REPLY_OK;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

enum smtp_reply_status
smtp_reply_read(struct stream *st, struct smtp_reply *r, int timeout_ms,
    const char **error_r)
{
	int64_t start = now_ms(), left;
	enum smtp_reply_status s;
	enum stream_result sr;

	smtp_reply_reset(r);
	for (;;) {
		left = -1;
		if (timeout_ms >= 0) {
			left = timeout_ms - (now_ms() - start);
			if (left < 0)
				left = 0;
		}
		sr = stream_read_line(
		    st, &r->line, SMTP_REPLY_LINE_MAX, (int)left, NULL);
		switch (sr) {
		case STREAM_OK:
			break;
		case STREAM_TIMEOUT:
			*error_r = r->nlines > 0 ? "timed out in the middle "
			                           "of a multi-line reply"
			                         : "timed out waiting for "
			                           "the reply";
			return SMTP_REPLY_TIMEOUT;
		case STREAM_EOF:
			*error_r = r->nlines > 0 ? "lost connection in the "
			                           "middle of a reply"
			                         : "lost connection";
			return SMTP_REPLY_EOF;
		case STREAM_TOOLONG:
			*error_r = "reply line too long";
			return SMTP_REPLY_TOOLONG;
		case STREAM_AGAIN:
			/* Not from a blocking read; never loop on it. */
			errno = EAGAIN;
			*error_r = "read error";
			return SMTP_REPLY_ERROR;
		case STREAM_ERROR:
		default:
			*error_r = "read error";
			return SMTP_REPLY_ERROR;
		}
		s = smtp_reply_feed(r, r->line.data != NULL ? r->line.data : "",
		    r->line.len, error_r);
		if (s != SMTP_REPLY_MORE)
			return s;
	}
}

const char *
smtp_reply_line(const struct smtp_reply *r, int i)
{
	if (i < 0 || i >= r->nlines)
		msg_panic("smtp_reply_line: line %d of %d", i, r->nlines);
	return r->lines.data + r->line_off[i];
}

/* --- EHLO keywords ------------------------------------------------- */

static const struct {
	const char *name;
	unsigned flag;
} ehlo_keywords[] = {
    {"PIPELINING", SMTP_EHLO_PIPELINING},
    {"SIZE", SMTP_EHLO_SIZE},
    {"8BITMIME", SMTP_EHLO_8BITMIME},
    {"SMTPUTF8", SMTP_EHLO_SMTPUTF8},
    {"DSN", SMTP_EHLO_DSN},
    {"CHUNKING", SMTP_EHLO_CHUNKING},
    {"BINARYMIME", SMTP_EHLO_BINARYMIME},
    {"STARTTLS", SMTP_EHLO_STARTTLS},
    {"AUTH", SMTP_EHLO_AUTH},
    {"ENHANCEDSTATUSCODES", SMTP_EHLO_ENHANCEDSTATUSCODES},
};

#define NKEYWORDS (sizeof(ehlo_keywords) / sizeof(ehlo_keywords[0]))

static int
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 4422 3.1: sasl-mech = 1*20mech-char, upper-case letters, digits,
 * "-" and "_" (lower case accepted here and upper-cased). */
static int
is_mech_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       is_digit(c) || c == '-' || c == '_';
}

/* The word at s (n bytes) as a SASL mechanism, upper-cased, if valid. */
static int
mech_take(const char *s, size_t n, char *out)
{
	size_t i;

	if (n == 0 || n > SMTP_EHLO_MECH_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_mech_char(s[i]))
			return 0;
		out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A')
		                                      : s[i];
	}
	out[n] = '\0';
	return 1;
}

static void
add_mechs(struct smtp_ehlo *e, const char *s)
{
	char mech[SMTP_EHLO_MECH_MAX + 1];
	size_t n, used, mlen;

	for (;;) {
		while (is_space(*s))
			s++;
		if (*s == '\0')
			return;
		for (n = 0; s[n] != '\0' && !is_space(s[n]); n++)
			;
		if (mech_take(s, n, mech) && !smtp_ehlo_has_auth(e, mech)) {
			used = strlen(e->auth);
			mlen = strlen(mech);
			if (used + (used > 0) + mlen < sizeof(e->auth)) {
				if (used > 0)
					e->auth[used++] = ' ';
				memcpy(e->auth + used, mech, mlen + 1);
			}
		}
		s += n;
	}
}

void
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	const char *s, *arg;
	size_t klen, k;
	uint64_t size;
	int i;

	memset(e, 0, sizeof(*e));
	if (r->code != 250 || r->done != 1)
		return;
	for (i = 1; i < r->nlines; i++) {
		s = smtp_reply_line(r, i);
		while (is_space(*s))
			s++;
		/* ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); the
		 * old "AUTH=..." ends the keyword at "=". */
		for (klen = 0;
		     s[klen] != '\0' && !is_space(s[klen]) && s[klen] != '=';
		     klen++)
			;
		arg = s + klen;
		if (*arg != '\0')
			arg++;
		for (k = 0; k < NKEYWORDS; k++) {
			if (strlen(ehlo_keywords[k].name) == klen &&
			    str_prefix_ci(s, klen, ehlo_keywords[k].name))
				break;
		}
		if (k == NKEYWORDS)
			continue;
		e->ext |= ehlo_keywords[k].flag;
		if (ehlo_keywords[k].flag == SMTP_EHLO_AUTH) {
			add_mechs(e, arg);
		} else if (ehlo_keywords[k].flag == SMTP_EHLO_SIZE) {
			/* RFC 1870: "SIZE" alone or "SIZE n"; 0 or a bad
			 * number means no stated limit. */
			while (is_space(*arg))
				arg++;
			klen = strcspn(arg, " \t");
			if (str_to_u64_n(arg, klen, UINT64_MAX, &size) == 0)
				e->size_max = size;
		}
	}
}

int
smtp_ehlo_has_auth(const struct smtp_ehlo *e, const char *mech)
{
	size_t n = strlen(mech);
	const char *s = e->auth;

	if (n == 0)
		return 0;
	while (*s != '\0') {
		if (str_prefix_ci(s, strlen(s), mech) &&
		    (s[n] == ' ' || s[n] == '\0'))
			return 1;
		s = strchr(s, ' ');
		if (s == NULL)
			return 0;
		s++;
	}
	return 0;
}
