/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the SMTP client's reply parser (lib/mail/smtp_reply.c,
 * RFC 5321 4.2) and the EHLO keywords read from a reply. The input is
 * what a server sends: it is split at LF (one CR before it dropped, a
 * last line without LF ignored, as the stream does) and fed line by
 * line, each result checked against a model of the reply grammar; a
 * complete reply must keep the header's promises (code range, an
 * enhanced status code of the code's class, a bounded printable text,
 * its lines) and its EHLO keywords are parsed and checked. Then the
 * same bytes are read through smtp_reply_read from a stream that hands
 * them out in irregular pieces, which must give the same replies.
 *
 * Input: the bytes from the server.
 */
#include <string.h>

#include "base/buf.h"
#include "base/stream.h"
#include "mail/smtp_reply.h"
#include "fuzz_util.h"

#define MAX_REPLIES     4096
#define SMALL_PIECE     512
#define READ_TIMEOUT_MS 1000
#define EHLO_ALL                                                         \
	(SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE | SMTP_EHLO_8BITMIME |    \
	    SMTP_EHLO_SMTPUTF8 | SMTP_EHLO_DSN | SMTP_EHLO_CHUNKING |    \
	    SMTP_EHLO_BINARYMIME | SMTP_EHLO_STARTTLS | SMTP_EHLO_AUTH | \
	    SMTP_EHLO_ENHANCEDSTATUSCODES)

/* What one reply came to, to compare the two ways of reading. */
struct outcome {
	int status; /* SMTP_REPLY_OK, or BAD (TOOLONG counts as BAD) */
	int code;
	size_t text_len;
	unsigned text_hash;
};

static struct outcome outcomes[MAX_REPLIES];
static size_t noutcomes;

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static unsigned
hash(const char *s, size_t len)
{
	unsigned h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* RFC 3463 class.subject.detail, class = first digit of code. */
static void
check_dsn(const char *dsn, int code)
{
	size_t i = 1, n;
	int part;

	if (dsn[0] == '\0')
		return;
	FUZZ_CHECK(dsn[0] == '0' + code / 100);
	for (part = 0; part < 2; part++) {
		FUZZ_CHECK(dsn[i] == '.');
		i++;
		for (n = 0; is_digit(dsn[i]); n++, i++)
			;
		FUZZ_CHECK(n >= 1 && n <= 3);
	}
	FUZZ_CHECK(dsn[i] == '\0');
}

static void
check_ehlo(const struct smtp_reply *r)
{
	struct smtp_ehlo e;
	size_t i, n, len;
	const char *s;

	smtp_ehlo_parse(r, &e);
	FUZZ_CHECK((e.ext & ~(unsigned)EHLO_ALL) == 0);
	if (r->code != 250)
		FUZZ_CHECK(e.ext == 0 && e.auth[0] == '\0');
	len = strlen(e.auth);
	FUZZ_CHECK(len < sizeof(e.auth));
	if (len > 0)
		FUZZ_CHECK(e.ext & SMTP_EHLO_AUTH);
	if (e.size_max > 0)
		FUZZ_CHECK(e.ext & SMTP_EHLO_SIZE);
	/* Mechanisms: 1..20 of A-Z 0-9 - _, single spaces, each once. */
	for (s = e.auth; *s != '\0'; s += n + (s[n] == ' ')) {
		n = strcspn(s, " ");
		FUZZ_CHECK(n >= 1 && n <= SMTP_EHLO_MECH_MAX);
		for (i = 0; i < n; i++)
			FUZZ_CHECK((s[i] >= 'A' && s[i] <= 'Z') ||
			           is_digit(s[i]) || s[i] == '-' ||
			           s[i] == '_');
		FUZZ_CHECK(s[n] == '\0' || s[n + 1] != '\0');
		{
			char mech[SMTP_EHLO_MECH_MAX + 1];
			const char *first;

			memcpy(mech, s, n);
			mech[n] = '\0';
			FUZZ_CHECK(smtp_ehlo_has_auth(&e, mech));
			/* Its first occurrence is this one. */
			for (first = e.auth;; first += strcspn(first, " ") + 1)
				if (strncmp(first, mech, n) == 0 &&
				    (first[n] == ' ' || first[n] == '\0'))
					break;
			FUZZ_CHECK(first == s);
		}
	}
}

static void
check_complete(const struct smtp_reply *r)
{
	const char *text = buf_cstr(&r->text);
	size_t i;
	int j;

	FUZZ_CHECK(r->code >= 200 && r->code <= 599);
	FUZZ_CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	check_dsn(r->dsn, r->code);
	FUZZ_CHECK(r->text.len <= SMTP_REPLY_TEXT_MAX + 3);
	FUZZ_CHECK(r->text.len >= 3 && text[0] == '0' + r->code / 100 &&
	           text[1] == '0' + r->code / 10 % 10 &&
	           text[2] == '0' + r->code % 10);
	for (i = 0; i < r->text.len; i++)
		FUZZ_CHECK(text[i] >= ' ' && text[i] < 0x7f);
	if (r->dsn[0] != '\0')
		FUZZ_CHECK(strncmp(text + 4, r->dsn, strlen(r->dsn)) == 0);
	for (j = 0; j < r->nlines; j++)
		FUZZ_CHECK(
		    strlen(smtp_reply_line(r, j)) <= SMTP_REPLY_LINE_MAX - 4);
	check_ehlo(r);
}

/*
 * The grammar, independently: MORE, OK or BAD for a line given the
 * reply so far (code of its first line, lines fed).
 */
static int
model(const char *s, size_t len, int code, int nlines)
{
	int c;

	if (len > SMTP_REPLY_LINE_MAX || len < 3 || s[0] < '2' || s[0] > '5' ||
	    !is_digit(s[1]) || !is_digit(s[2]) ||
	    (len > 3 && s[3] != ' ' && s[3] != '-'))
		return SMTP_REPLY_BAD;
	c = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (nlines > 0 && c != code)
		return SMTP_REPLY_BAD;
	if (nlines >= SMTP_REPLY_LINES_MAX)
		return SMTP_REPLY_BAD;
	return len == 3 || s[3] == ' ' ? SMTP_REPLY_OK : SMTP_REPLY_MORE;
}

static void
record(const struct smtp_reply *r, int status)
{
	struct outcome *o;

	if (noutcomes >= MAX_REPLIES)
		return;
	o = &outcomes[noutcomes++];
	o->status = status;
	o->code = status == SMTP_REPLY_OK ? r->code : 0;
	o->text_len = status == SMTP_REPLY_OK ? r->text.len : 0;
	o->text_hash =
	    status == SMTP_REPLY_OK
	        ? hash(r->text.data != NULL ? r->text.data : "", r->text.len)
	        : 0;
}

static void
by_lines(const char *in, size_t len, struct smtp_reply *r)
{
	const char *s = in, *end = in + len, *nl, *error;
	size_t n;
	int st, want;

	smtp_reply_reset(r);
	while (s < end && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		n = (size_t)(nl - s);
		if (n > 0 && s[n - 1] == '\r')
			n--;
		want = model(s, n, r->code, r->nlines);
		error = NULL;
		st = smtp_reply_feed(r, s, n, &error);
		FUZZ_CHECK(st == want);
		if (st == SMTP_REPLY_BAD) {
			FUZZ_CHECK(error != NULL && error[0] != '\0');
			record(r, st);
			smtp_reply_reset(r);
		} else if (st == SMTP_REPLY_OK) {
			check_complete(r);
			record(r, st);
			smtp_reply_reset(r);
		}
		s = nl + 1;
	}
}

static void
by_stream(
    const char *in, size_t len, struct smtp_reply *r, struct fuzz_rng *rng)
{
	struct stream st;
	struct fuzz_mem mem;
	const char *error;
	size_t i = 0;
	int s;

	stream_init(&st, -1);
	fuzz_mem_init(&mem, in, len, fuzz_rng_next(rng),
	    (int)(fuzz_rng_next(rng) & 1), SMALL_PIECE);
	stream_set_transport(&st, &fuzz_transport, &mem);
	for (;;) {
		error = NULL;
		s = smtp_reply_read(&st, r, READ_TIMEOUT_MS, &error);
		FUZZ_CHECK(s == SMTP_REPLY_OK || s == SMTP_REPLY_BAD ||
		           s == SMTP_REPLY_TOOLONG || s == SMTP_REPLY_EOF);
		FUZZ_CHECK(s == SMTP_REPLY_OK || error != NULL);
		if (s == SMTP_REPLY_EOF)
			break;
		if (s == SMTP_REPLY_TOOLONG)
			s = SMTP_REPLY_BAD;
		if (i < noutcomes) {
			FUZZ_CHECK(outcomes[i].status == s);
			if (s == SMTP_REPLY_OK) {
				FUZZ_CHECK(outcomes[i].code == r->code);
				FUZZ_CHECK(outcomes[i].text_len == r->text.len);
				FUZZ_CHECK(
				    outcomes[i].text_hash ==
				    hash(buf_cstr(&r->text), r->text.len));
			}
		}
		i++;
	}
	/* Every reply the lines made, and no more. */
	FUZZ_CHECK(i == noutcomes || noutcomes == MAX_REPLIES);
	stream_free(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply r;
	static int ready;
	struct fuzz_rng rng;

	if (!ready) {
		/* Kept across inputs: its buffers are large. */
		smtp_reply_init(&r);
		ready = 1;
	}
	noutcomes = 0;
	fuzz_rng_init(&rng, data, size);
	by_lines((const char *)data, size, &r);
	by_stream((const char *)data, size, &r, &rng);
	return 0;
}
