/* SPDX-License-Identifier: MIT */
/*
 * Tests of the SMTP client's reply reader: a table of replies fed line
 * by line (multi-line, the code changing inside one, enhanced status
 * codes of the right and the wrong class, "250" without text, garbage,
 * too many lines, a long text cut), the same replies read whole and in
 * one-byte writes from a socketpair with smtp_reply_read, the errors a
 * peer causes there (an overlong line, EOF and a timeout in mid-reply,
 * a reply trickled past its one deadline), and the EHLO keywords.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/stream.h"
#include "mail/smtp_reply.h"
#include "unit.h"

#define NELEM(a)       (sizeof(a) / sizeof((a)[0]))
#define TEST_TIMEOUT   5000
#define SHORT_TIMEOUT  300
#define TRICKLE_GAP_US 100000
#define TRICKLE_LINES  10

struct reply_case {
	const char *in; /* lines, each ending in \n (CRLF stripped) */
	int status;     /* of the last line fed */
	int code;
	const char *dsn;
	const char *text;
	int nlines;
	const char *error; /* start of the error text for BAD */
};

static const struct reply_case cases[] = {
    {"250 ok\n", SMTP_REPLY_OK, 250, "", "250 ok", 1, NULL},
    {"250\n", SMTP_REPLY_OK, 250, "", "250", 1, NULL},
    {"220 \n", SMTP_REPLY_OK, 220, "", "220", 1, NULL},
    {"550 5.1.1 <a@b>: user unknown\n", SMTP_REPLY_OK, 550, "5.1.1",
        "550 5.1.1 <a@b>: user unknown", 1, NULL},
    {"250-mx.example.net hello\n250-PIPELINING\n250 SIZE 1000\n", SMTP_REPLY_OK,
        250, "", "250 mx.example.net hello PIPELINING SIZE 1000", 3, NULL},
    /* The repeated enhanced code of continuation lines is said once. */
    {"550-5.1.1 The account does not exist.\n550-5.1.1 Please check\n"
     "550 5.1.1 the address.\n",
        SMTP_REPLY_OK, 550, "5.1.1",
        "550 5.1.1 The account does not exist. Please check the address.", 3,
        NULL},
    /* A class that is not the code's: no enhanced status. */
    {"550 2.1.5 ok?\n", SMTP_REPLY_OK, 550, "", "550 2.1.5 ok?", 1, NULL},
    {"451 4.7.1 try later\n", SMTP_REPLY_OK, 451, "4.7.1",
        "451 4.7.1 try later", 1, NULL},
    {"250 2.0.0\n", SMTP_REPLY_OK, 250, "2.0.0", "250 2.0.0", 1, NULL},
    {"250 2.0.0Ok\n", SMTP_REPLY_OK, 250, "", "250 2.0.0Ok", 1, NULL},
    {"250 2.1234.0 x\n", SMTP_REPLY_OK, 250, "", "250 2.1234.0 x", 1, NULL},
    {"250 2.0 x\n", SMTP_REPLY_OK, 250, "", "250 2.0 x", 1, NULL},
    {"354 Go ahead\n", SMTP_REPLY_OK, 354, "", "354 Go ahead", 1, NULL},
    /* Control and 8-bit bytes in the text. */
    {"250 a\tb\x01\xc3\xa9\n", SMTP_REPLY_OK, 250, "", "250 a?b???", 1, NULL},
    {"250-\n250 last\n", SMTP_REPLY_OK, 250, "", "250 last", 2, NULL},
    {"250-first\n", SMTP_REPLY_MORE, 250, "", "250 first", 1, NULL},
    {"250-a\n251 b\n", SMTP_REPLY_BAD, 250, "", NULL, 1,
        "reply code changed inside a multi-line reply"},
    {"hello\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"25\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"2500 x\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"250_x\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"150 x\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"650 x\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"2a0 x\n", SMTP_REPLY_BAD, 0, "", NULL, 0, "malformed reply line"},
    {"250-a\n 250 b\n", SMTP_REPLY_BAD, 250, "", NULL, 1,
        "malformed reply line"},
};

/* Feeds c's lines one by one; returns the last status. */
static int
feed_case(
    const struct reply_case *c, struct smtp_reply *r, const char **error_r)
{
	const char *s = c->in, *nl;
	int st = SMTP_REPLY_MORE;

	while (*s != '\0' && st == SMTP_REPLY_MORE) {
		nl = strchr(s, '\n');
		st = smtp_reply_feed(r, s, (size_t)(nl - s), error_r);
		s = nl + 1;
	}
	return st;
}

static void
check_case(size_t i, const struct reply_case *c, struct smtp_reply *r, int st,
    const char *error)
{
	if (st != c->status)
		printf("#   case %zu: status %d, want %d\n", i, st, c->status);
	CHECK_INT(st, c->status);
	CHECK_INT(r->nlines, c->nlines);
	if (c->status == SMTP_REPLY_BAD) {
		CHECK(error != NULL &&
		      strncmp(error, c->error, strlen(c->error)) == 0);
		return;
	}
	CHECK_INT(r->code, c->code);
	CHECK_STR(r->dsn, c->dsn);
	CHECK_STR(buf_cstr(&r->text), c->text);
}

static void
test_reply_feed(void)
{
	struct smtp_reply r;
	const char *error;
	size_t i;
	int st;

	smtp_reply_init(&r);
	for (i = 0; i < NELEM(cases); i++) {
		smtp_reply_reset(&r);
		error = NULL;
		st = feed_case(&cases[i], &r, &error);
		check_case(i, &cases[i], &r, st, error);
	}
	/* The lines' texts, for EHLO. */
	smtp_reply_reset(&r);
	CHECK_INT(feed_case(&cases[4], &r, &error), SMTP_REPLY_OK);
	CHECK_STR(smtp_reply_line(&r, 0), "mx.example.net hello");
	CHECK_STR(smtp_reply_line(&r, 1), "PIPELINING");
	CHECK_STR(smtp_reply_line(&r, 2), "SIZE 1000");
	smtp_reply_reset(&r);
	CHECK_INT(smtp_reply_feed(&r, "250", 3, &error), SMTP_REPLY_OK);
	CHECK_STR(smtp_reply_line(&r, 0), "");
	/* A NUL in a line is a byte like any other in the text. */
	smtp_reply_reset(&r);
	CHECK_INT(smtp_reply_feed(&r, "250 a\0b", 7, &error), SMTP_REPLY_OK);
	CHECK_STR(buf_cstr(&r.text), "250 a?b");
	smtp_reply_free(&r);
}

static void
test_reply_limits(void)
{
	struct smtp_reply r;
	const char *error = NULL;
	char line[SMTP_REPLY_LINE_MAX + 2];
	int i;

	smtp_reply_init(&r);
	/* SMTP_REPLY_LINES_MAX lines are a reply; one more is not. */
	for (i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		CHECK_INT(
		    smtp_reply_feed(&r, "250-x", 5, &error), SMTP_REPLY_MORE);
	CHECK_INT(smtp_reply_feed(&r, "250 x", 5, &error), SMTP_REPLY_OK);
	CHECK_INT(r.nlines, SMTP_REPLY_LINES_MAX);
	smtp_reply_reset(&r);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		CHECK_INT(
		    smtp_reply_feed(&r, "250-x", 5, &error), SMTP_REPLY_MORE);
	CHECK_INT(smtp_reply_feed(&r, "250-x", 5, &error), SMTP_REPLY_BAD);
	CHECK_STR(error, "reply has too many lines");

	/* Long lines: text cut at SMTP_REPLY_TEXT_MAX with "...". */
	smtp_reply_reset(&r);
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	CHECK_INT(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX, &error),
	    SMTP_REPLY_OK);
	CHECK_INT(r.text.len, SMTP_REPLY_TEXT_MAX + 3);
	CHECK(strcmp(buf_cstr(&r.text) + SMTP_REPLY_TEXT_MAX, "...") == 0);
	CHECK_INT(strlen(smtp_reply_line(&r, 0)), SMTP_REPLY_LINE_MAX - 4);
	smtp_reply_reset(&r);
	CHECK_INT(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX + 1, &error),
	    SMTP_REPLY_BAD);
	CHECK(strncmp(error, "reply line too long", 19) == 0);
	smtp_reply_free(&r);
}

/* Writes data into fd in pieces of chunk bytes, gap_us apart. */
struct writer {
	pthread_t thread;
	int fd;
	const char *data;
	size_t len, chunk;
	useconds_t gap_us;
	int close_after;
};

static void *
writer_run(void *arg)
{
	struct writer *w = arg;
	size_t off = 0, n;

	while (off < w->len) {
		n = w->len - off < w->chunk ? w->len - off : w->chunk;
		if (write(w->fd, w->data + off, n) != (ssize_t)n)
			break;
		off += n;
		if (w->gap_us > 0)
			usleep(w->gap_us);
	}
	if (w->close_after)
		close(w->fd);
	return NULL;
}

static void
writer_start(struct writer *w, int fd, const char *data, size_t len,
    size_t chunk, useconds_t gap_us, int close_after)
{
	w->fd = fd;
	w->data = data;
	w->len = len;
	w->chunk = chunk;
	w->gap_us = gap_us;
	w->close_after = close_after;
	if (pthread_create(&w->thread, NULL, writer_run, w) != 0)
		abort();
}

/* The table through smtp_reply_read, CRLF line ends, whole and bytewise. */
static void
test_reply_read_cases(void)
{
	struct smtp_reply r;
	struct stream st;
	struct writer w;
	struct buf in;
	const char *error, *s;
	size_t i, chunk;
	int sv[2], status;

	smtp_reply_init(&r);
	buf_init(&in, 1 << 16);
	for (chunk = 1; chunk <= 4096; chunk += 4095) {
		for (i = 0; i < NELEM(cases); i++) {
			if (cases[i].status == SMTP_REPLY_MORE)
				continue;
			buf_reset(&in);
			for (s = cases[i].in; *s != '\0'; s++) {
				if (*s == '\n')
					CHECK(buf_putc(&in, '\r') == 0);
				CHECK(buf_putc(&in, *s) == 0);
			}
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
				abort();
			stream_init(&st, sv[0]);
			writer_start(&w, sv[1], in.data, in.len, chunk, 0, 0);
			error = NULL;
			status = smtp_reply_read(&st, &r, TEST_TIMEOUT, &error);
			check_case(i, &cases[i], &r, status, error);
			pthread_join(w.thread, NULL);
			close(sv[1]);
			stream_close(&st);
		}
	}
	buf_free(&in);
	smtp_reply_free(&r);
}

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_reply_read_errors(void)
{
	static const char pipelined[] = "250 2.1.0 Ok\r\n"
	                                "550 5.1.1 no\r\n"
	                                "354 go\r\n";
	char big[SMTP_REPLY_LINE_MAX + 16];
	struct smtp_reply r;
	struct stream st;
	struct writer w;
	const char *error;
	int64_t t0;
	int sv[2], i;

	smtp_reply_init(&r);

	/* Pipelined replies come one per call. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	CHECK_INT(
	    write(sv[1], pipelined, strlen(pipelined)), strlen(pipelined));
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_OK);
	CHECK_STR(buf_cstr(&r.text), "250 2.1.0 Ok");
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_OK);
	CHECK_STR(r.dsn, "5.1.1");
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_OK);
	CHECK_INT(r.code, 354);

	/* An overlong line: TOOLONG; the stream stays in step. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "250-", 4);
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	CHECK_INT(write(sv[1], big, sizeof(big)), sizeof(big));
	CHECK_INT(write(sv[1], "250 ok\r\n", 8), 8);
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_TOOLONG);
	CHECK_STR(error, "reply line too long");
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_OK);
	CHECK_STR(buf_cstr(&r.text), "250 ok");

	/* A timeout in mid-reply. */
	CHECK_INT(write(sv[1], "250-one\r\n250-tw", 15), 15);
	t0 = ms_now();
	CHECK_INT(smtp_reply_read(&st, &r, SHORT_TIMEOUT, &error),
	    SMTP_REPLY_TIMEOUT);
	CHECK(ms_now() - t0 >= SHORT_TIMEOUT - 10);
	CHECK(ms_now() - t0 < TEST_TIMEOUT);
	CHECK_STR(error, "timed out in the middle of a multi-line reply");

	/* EOF in mid-reply (the partial last line is no line). */
	close(sv[1]);
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_EOF);
	stream_close(&st);

	/* EOF before anything. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	CHECK_INT(write(sv[1], "250-a\r\n", 7), 7);
	close(sv[1]);
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_EOF);
	CHECK_STR(error, "lost connection in the middle of a reply");
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_EOF);
	CHECK_STR(error, "lost connection");
	stream_close(&st);

	/* Garbage from the peer: BAD with the line in the error. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	CHECK_INT(write(sv[1], "HTTP/1.1 400\r\n", 14), 14);
	CHECK_INT(
	    smtp_reply_read(&st, &r, TEST_TIMEOUT, &error), SMTP_REPLY_BAD);
	CHECK_STR(error, "malformed reply line: \"HTTP/1.1 400\"");
	close(sv[1]);
	stream_close(&st);

	/*
	 * A peer that sends a continuation line every TRICKLE_GAP_US
	 * never ends: one deadline covers the whole reply, so it times
	 * out although no single line was late.
	 */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	{
		static char trickle[TRICKLE_LINES * 7 + 1];

		for (i = 0; i < TRICKLE_LINES; i++)
			memcpy(trickle + i * 7, "250-x\r\n", 7);
		writer_start(&w, sv[1], trickle, TRICKLE_LINES * 7, 7,
		    TRICKLE_GAP_US, 0);
		t0 = ms_now();
		CHECK_INT(smtp_reply_read(&st, &r, SHORT_TIMEOUT, &error),
		    SMTP_REPLY_TIMEOUT);
		CHECK(ms_now() - t0 <
		      (TRICKLE_LINES - 2) * TRICKLE_GAP_US / 1000);
		CHECK(r.nlines >= 2 && r.nlines < TRICKLE_LINES);
		pthread_join(w.thread, NULL);
	}
	close(sv[1]);
	stream_close(&st);
	smtp_reply_free(&r);
}

static void
parse_ehlo(const char *in, struct smtp_ehlo *e)
{
	struct smtp_reply r;
	const char *s = in, *nl, *error;
	int st = SMTP_REPLY_MORE;

	smtp_reply_init(&r);
	while (*s != '\0' && st == SMTP_REPLY_MORE) {
		nl = strchr(s, '\n');
		st = smtp_reply_feed(&r, s, (size_t)(nl - s), &error);
		s = nl + 1;
	}
	CHECK_INT(st, SMTP_REPLY_OK);
	smtp_ehlo_parse(&r, e);
	smtp_reply_free(&r);
}

static void
test_ehlo(void)
{
	struct smtp_ehlo e;

	parse_ehlo("250-mx.example.net Hello [192.0.2.1]\n"
	           "250-PIPELINING\n"
	           "250-SIZE 10240000\n"
	           "250-VRFY\n"
	           "250-ETRN\n"
	           "250-starttls\n"
	           "250-AUTH PLAIN login CRAM-MD5\n"
	           "250-AUTH=PLAIN LOGIN XOAUTH2\n"
	           "250-ENHANCEDSTATUSCODES\n"
	           "250-8BITMIME\n"
	           "250-DSN\n"
	           "250-SMTPUTF8\n"
	           "250 CHUNKING\n",
	    &e);
	CHECK_INT(e.ext, SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE |
	                     SMTP_EHLO_STARTTLS | SMTP_EHLO_AUTH |
	                     SMTP_EHLO_ENHANCEDSTATUSCODES |
	                     SMTP_EHLO_8BITMIME | SMTP_EHLO_DSN |
	                     SMTP_EHLO_SMTPUTF8 | SMTP_EHLO_CHUNKING);
	CHECK_INT(e.size_max, 10240000);
	CHECK_STR(e.auth, "PLAIN LOGIN CRAM-MD5 XOAUTH2");
	CHECK(smtp_ehlo_has_auth(&e, "login"));
	CHECK(smtp_ehlo_has_auth(&e, "XOAUTH2"));
	CHECK(!smtp_ehlo_has_auth(&e, "CRAM"));
	CHECK(!smtp_ehlo_has_auth(&e, "GSSAPI"));

	/* Only the old form; SIZE without a number; the greeting's words
	 * are no keywords. */
	parse_ehlo("250-PIPELINING greets you\n"
	           "250-AUTH=LOGIN\n"
	           "250-SIZE\n"
	           "250 BINARYMIME\n",
	    &e);
	CHECK_INT(
	    e.ext, SMTP_EHLO_AUTH | SMTP_EHLO_SIZE | SMTP_EHLO_BINARYMIME);
	CHECK_INT(e.size_max, 0);
	CHECK_STR(e.auth, "LOGIN");

	/* Bad values are left out; keywords must match whole. */
	parse_ehlo("250-x\n"
	           "250-SIZE 99999999999999999999999\n"
	           "250-AUTH PL@IN A_MECHANISM_OF_21_CHRS GOOD_ONE\n"
	           "250-PIPELININGX\n"
	           "250-DSNX\n"
	           "250 8BITMIME=\n",
	    &e);
	CHECK_INT(e.ext, SMTP_EHLO_AUTH | SMTP_EHLO_SIZE | SMTP_EHLO_8BITMIME);
	CHECK_INT(e.size_max, 0);
	CHECK_STR(e.auth, "GOOD_ONE");

	/* A one-line 250: no extensions; a refusal: none either. */
	parse_ehlo("250 mx.example.net\n", &e);
	CHECK_INT(e.ext, 0);
	parse_ehlo("502-PIPELINING\n502 no\n", &e);
	CHECK_INT(e.ext, 0);
}

UNIT_MAIN(UNIT_CASE(test_reply_feed), UNIT_CASE(test_reply_limits),
    UNIT_CASE(test_reply_read_cases), UNIT_CASE(test_reply_read_errors),
    UNIT_CASE(test_ehlo))
