/* SPDX-License-Identifier: MIT */
/*
 * Tests for protocol streams over socketpairs and pipes: line splitting
 * with whole input and byte-at-a-time delivery, CRLF versus LF, length
 * limits at max and max + 1, deadlines, EOF, the non-blocking half, and
 * buffered output.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/stream.h"
#include "unit.h"

#define NELEM(a)      (sizeof(a) / sizeof((a)[0]))
#define STEPS_MAX     6
#define TEST_TIMEOUT  5000 /* ms; only hit when the code is broken */
#define SHORT_TIMEOUT 100
#define BYTE_DELAY_US 200
#define SLOW_DELAY_US 30000
#define LINE_MAX_BIG  50000
#define LONG_LINE     40000
#define BIG_WRITE     (2 * 1024 * 1024)
#define FLUSH_FILL    (512 * 1024)

/* Writes data in chunks from a thread, then closes its end. */
struct feeder {
	pthread_t thread;
	int fd;
	const char *data;
	size_t len, chunk;
	useconds_t delay_us;
};

static void *
feeder_run(void *arg)
{
	struct feeder *f = arg;
	size_t off, n;

	for (off = 0; off < f->len; off += n) {
		n = f->len - off < f->chunk ? f->len - off : f->chunk;
		if (file_write_all(f->fd, f->data + off, n) < 0)
			break;
		if (f->delay_us > 0)
			usleep(f->delay_us);
	}
	close(f->fd);
	return NULL;
}

static void
feeder_start(struct feeder *f, int fd, const char *data, size_t len,
    size_t chunk, useconds_t delay_us)
{
	f->fd = fd;
	f->data = data;
	f->len = len;
	f->chunk = chunk;
	f->delay_us = delay_us;
	pthread_create(&f->thread, NULL, feeder_run, f);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct step {
	enum stream_result r;
	const char *line;
	int cr;
};

static const struct {
	const char *in;
	size_t max;
	struct step steps[STEPS_MAX];
} line_cases[] = {
    {"hello\r\nworld\n", 100,
        {{STREAM_OK, "hello", 1}, {STREAM_OK, "world", 0},
            {STREAM_EOF, NULL, 0}}},
    {"\n\r\n", 100,
        {{STREAM_OK, "", 0}, {STREAM_OK, "", 1}, {STREAM_EOF, NULL, 0}}},
    {"a\rb\r\n", 100, {{STREAM_OK, "a\rb", 1}, {STREAM_EOF, NULL, 0}}},
    {"partial", 100, {{STREAM_EOF, NULL, 0}}},
    {"one\npartial", 100, {{STREAM_OK, "one", 0}, {STREAM_EOF, NULL, 0}}},
    {"", 100, {{STREAM_EOF, NULL, 0}}},
    /* exactly max, with and without CR, then max + 1 */
    {"12345\r\n12345\n123456\nnext\n", 5,
        {{STREAM_OK, "12345", 1}, {STREAM_OK, "12345", 0},
            {STREAM_TOOLONG, NULL, 0}, {STREAM_OK, "next", 0},
            {STREAM_EOF, NULL, 0}}},
    {"123456\r\nx\r\n", 5,
        {{STREAM_TOOLONG, NULL, 0}, {STREAM_OK, "x", 1},
            {STREAM_EOF, NULL, 0}}},
    {"1234567890123\n\n", 5,
        {{STREAM_TOOLONG, NULL, 0}, {STREAM_OK, "", 0}, {STREAM_EOF, NULL, 0}}},
    {"too long without end", 5, {{STREAM_EOF, NULL, 0}}},
    {"\n", 0, {{STREAM_OK, "", 0}, {STREAM_EOF, NULL, 0}}},
    {"x\n", 0, {{STREAM_TOOLONG, NULL, 0}, {STREAM_EOF, NULL, 0}}},
};

/* Reads steps from a stream fed with in, chunk bytes per write. */
static void
run_line_case(size_t idx, size_t chunk, useconds_t delay_us)
{
	const struct step *steps = line_cases[idx].steps;
	struct feeder f;
	struct stream st;
	struct buf line;
	enum stream_result r;
	int sv[2], cr, i;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	buf_init(&line, LINE_MAX_BIG);
	feeder_start(&f, sv[1], line_cases[idx].in, strlen(line_cases[idx].in),
	    chunk, delay_us);
	for (i = 0; i < STEPS_MAX; i++) {
		cr = -1;
		r = stream_read_line(
		    &st, &line, line_cases[idx].max, TEST_TIMEOUT, &cr);
		if (r != steps[i].r) {
			printf(
			    "#   case %zu chunk %zu step %d: got %d want %d\n",
			    idx, chunk, i, (int)r, (int)steps[i].r);
			CHECK(r == steps[i].r);
			break;
		}
		if (r == STREAM_OK) {
			CHECK_STR(buf_cstr(&line), steps[i].line);
			CHECK_INT(cr, steps[i].cr);
		}
		if (r == STREAM_EOF)
			break;
	}
	pthread_join(f.thread, NULL);
	buf_free(&line);
	stream_close(&st);
}

static void
test_stream_lines_whole(void)
{
	size_t i;

	for (i = 0; i < NELEM(line_cases); i++)
		run_line_case(i, strlen(line_cases[i].in) + 1, 0);
}

static void
test_stream_lines_bytewise(void)
{
	size_t i;

	for (i = 0; i < NELEM(line_cases); i++)
		run_line_case(i, 1, BYTE_DELAY_US);
}

static void
test_stream_lines_split(void)
{
	size_t i;

	for (i = 0; i < NELEM(line_cases); i++)
		run_line_case(i, 3, BYTE_DELAY_US);
}

/* Lines longer than the read buffer, kept or discarded by max. */
static void
test_stream_long_lines(void)
{
	size_t len = 2 * LONG_LINE + 32;
	char *in = malloc(len);
	struct feeder f;
	struct stream st;
	struct buf line;
	int sv[2], cr;
	size_t i, pos = 0, c, chunks[2];

	/* A line of exactly STREAM_RBUF_SIZE - 1 bytes puts its CR at the
	 * very end of a full read buffer. */
	for (i = 0; i < STREAM_RBUF_SIZE - 1; i++)
		in[pos++] = 'c';
	memcpy(in + pos, "\r\n", 2);
	pos += 2;
	for (i = 0; i < LONG_LINE; i++)
		in[pos++] = (char)('a' + i % 26);
	in[pos++] = '\n';
	for (i = 0; i < LONG_LINE - STREAM_RBUF_SIZE; i++)
		in[pos++] = 'z';
	memcpy(in + pos, "\nok\n", 4);
	pos += 4;

	chunks[0] = 1000; /* partial reads */
	chunks[1] = pos;  /* one write */
	for (c = 0; c < NELEM(chunks); c++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			abort();
		stream_init(&st, sv[0]);
		buf_init(&line, LINE_MAX_BIG);
		feeder_start(&f, sv[1], in, pos, chunks[c], 0);
		CHECK_INT(stream_read_line(
		              &st, &line, LINE_MAX_BIG, TEST_TIMEOUT, &cr),
		    STREAM_OK);
		CHECK_INT(line.len, STREAM_RBUF_SIZE - 1);
		CHECK_INT(cr, 1);
		CHECK_INT(stream_read_line(
		              &st, &line, LINE_MAX_BIG, TEST_TIMEOUT, &cr),
		    STREAM_OK);
		CHECK_INT(line.len, LONG_LINE);
		CHECK(line.len == LONG_LINE &&
		      memcmp(line.data, in + STREAM_RBUF_SIZE + 1, LONG_LINE) ==
		          0);
		CHECK_INT(cr, 0);
		/* Same size class, but now over the caller's limit. */
		CHECK_INT(stream_read_line(
		              &st, &line, LONG_LINE / 2, TEST_TIMEOUT, &cr),
		    STREAM_TOOLONG);
		CHECK_INT(stream_read_line(
		              &st, &line, LONG_LINE / 2, TEST_TIMEOUT, &cr),
		    STREAM_OK);
		CHECK_STR(buf_cstr(&line), "ok");
		CHECK_INT(stream_read_line(
		              &st, &line, LONG_LINE / 2, TEST_TIMEOUT, &cr),
		    STREAM_EOF);
		pthread_join(f.thread, NULL);
		buf_free(&line);
		stream_close(&st);
	}
	free(in);
}

static void
test_stream_timeout(void)
{
	struct stream st;
	struct buf line;
	int sv[2];
	int64_t start, took;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	buf_init(&line, 100);
	CHECK_INT(write(sv[1], "half", 4), 4);
	start = now_ms();
	CHECK_INT(stream_read_line(&st, &line, 100, SHORT_TIMEOUT, NULL),
	    STREAM_TIMEOUT);
	took = now_ms() - start;
	CHECK(took >= SHORT_TIMEOUT - 5 && took < 10 * SHORT_TIMEOUT);
	/* Nothing was lost: the rest completes the line. */
	CHECK_INT(write(sv[1], " line\n", 6), 6);
	CHECK_INT(
	    stream_read_line(&st, &line, 100, SHORT_TIMEOUT, NULL), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "half line");
	/* Nothing at all. */
	start = now_ms();
	CHECK_INT(stream_read_line(&st, &line, 100, SHORT_TIMEOUT, NULL),
	    STREAM_TIMEOUT);
	CHECK(now_ms() - start >= SHORT_TIMEOUT - 5);
	close(sv[1]);
	buf_free(&line);
	stream_close(&st);
}

/* A slow trickle (600 ms in all) must not extend the call's deadline. */
static void
test_stream_timeout_trickle(void)
{
	static const char slow[] = "01234567890123456789";
	struct feeder f;
	struct stream st;
	struct buf line;
	int sv[2];
	int64_t took;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	buf_init(&line, 100);
	feeder_start(&f, sv[1], slow, strlen(slow), 1, SLOW_DELAY_US);
	took = now_ms();
	CHECK_INT(stream_read_line(&st, &line, 100, SHORT_TIMEOUT, NULL),
	    STREAM_TIMEOUT);
	took = now_ms() - took;
	CHECK(took >= SHORT_TIMEOUT - 5 && took < 5 * SHORT_TIMEOUT);
	pthread_join(f.thread, NULL);
	buf_free(&line);
	stream_close(&st);
}

static void
test_stream_nonblocking(void)
{
	struct stream st;
	struct buf line;
	int sv[2], cr;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	CHECK_INT(file_set_nonblock(sv[0], 1), 0);
	stream_init(&st, sv[0]);
	buf_init(&line, 100);
	CHECK_INT(stream_fill(&st), STREAM_AGAIN);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_AGAIN);
	CHECK_INT(write(sv[1], "ab", 2), 2);
	CHECK_INT(stream_fill(&st), STREAM_OK);
	CHECK_INT(stream_buffered(&st), 2);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_AGAIN);
	CHECK_INT(write(sv[1], "c\r\nd\n12345678901\nok\n", 20), 20);
	CHECK_INT(stream_fill(&st), STREAM_OK);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "abc");
	CHECK_INT(cr, 1);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "d");
	CHECK_INT(cr, 0);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_TOOLONG);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "ok");
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_AGAIN);
	CHECK_INT(stream_buffered(&st), 0);
	/* An over-long line that has not ended yet is skipped silently. */
	CHECK_INT(write(sv[1], "123456789012345", 15), 15);
	CHECK_INT(stream_fill(&st), STREAM_OK);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_AGAIN);
	CHECK_INT(write(sv[1], "6\nlast", 6), 6);
	CHECK_INT(stream_fill(&st), STREAM_OK);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_TOOLONG);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_AGAIN);
	close(sv[1]);
	CHECK_INT(stream_fill(&st), STREAM_EOF);
	CHECK_INT(stream_next_line(&st, &line, 10, &cr), STREAM_EOF);
	CHECK_INT(stream_fill(&st), STREAM_EOF);
	buf_free(&line);
	stream_close(&st);
}

/* Non-blocking lines longer than the read buffer, up to the caller's
 * limit (smtpd_command_line_limit allows 65536). */
static void
test_stream_nonblocking_long(void)
{
	size_t len = 3 * STREAM_RBUF_SIZE, i;
	char *in = malloc(len + 2);
	struct stream st;
	struct buf line;
	enum stream_result r = STREAM_AGAIN;
	int sv[2], cr = 0, n;

	for (i = 0; i < len; i++)
		in[i] = (char)('a' + i % 26);
	memcpy(in + len, "\r\n", 2);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	CHECK_INT(file_set_nonblock(sv[0], 1), 0);
	CHECK_INT(file_set_nonblock(sv[1], 1), 0);
	stream_init(&st, sv[0]);
	buf_init(&line, len + 1);
	/* Fed in pieces smaller and larger than the read buffer. */
	for (i = 0, n = 0; i < len + 2 || r == STREAM_AGAIN; n++) {
		if (i < len + 2) {
			size_t chunk = n % 2 ? 1000 : STREAM_RBUF_SIZE + 7;
			if (chunk > len + 2 - i)
				chunk = len + 2 - i;
			CHECK_INT(write(sv[1], in + i, chunk), chunk);
			i += chunk;
		}
		while ((r = stream_fill(&st)) == STREAM_OK) {
			r = stream_next_line(&st, &line, len, &cr);
			if (r != STREAM_AGAIN)
				break;
		}
		if (r == STREAM_AGAIN)
			r = stream_next_line(&st, &line, len, &cr);
		if (r != STREAM_AGAIN)
			break;
		if (n > 100)
			break;
	}
	CHECK_INT(r, STREAM_OK);
	CHECK_INT(line.len, len);
	CHECK(line.len == len && memcmp(line.data, in, len) == 0);
	CHECK_INT(cr, 1);
	/* One byte over the limit is too long, and the next line is fine. */
	CHECK_INT(write(sv[1], in, 2000), 2000);
	CHECK_INT(write(sv[1], "\nok\n", 4), 4);
	CHECK_INT(stream_fill(&st), STREAM_OK);
	CHECK_INT(stream_next_line(&st, &line, 1999, &cr), STREAM_TOOLONG);
	CHECK_INT(stream_next_line(&st, &line, 1999, &cr), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "ok");
	close(sv[1]);
	buf_free(&line);
	stream_close(&st);
	free(in);
}

/*
 * A transport that hands out its input one byte per call and, every
 * other call, first asks for writability (as TLS may): the stream must
 * report that want and still assemble the lines.
 */
struct fake_tr {
	const char *in;
	size_t pos, len;
	int calls;
	char out[64];
	size_t outlen;
	int freed;
};

static ssize_t
fake_read(void *ctx, int fd, void *data, size_t len, int *want_r)
{
	struct fake_tr *f = ctx;

	(void)fd;
	(void)len;
	if (f->calls++ % 2 == 0) {
		*want_r = STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	}
	if (f->pos == f->len)
		return 0;
	*(char *)data = f->in[f->pos++];
	return 1;
}

static ssize_t
fake_write(void *ctx, int fd, const void *data, size_t len, int *want_r)
{
	struct fake_tr *f = ctx;

	(void)fd;
	if (f->calls++ % 2 == 0) {
		*want_r = STREAM_WANT_READ;
		errno = EAGAIN;
		return -1;
	}
	if (len > 1)
		len = 1;
	if (f->outlen + len > sizeof(f->out))
		abort();
	memcpy(f->out + f->outlen, data, len);
	f->outlen += len;
	return (ssize_t)len;
}

static size_t
fake_pending(void *ctx)
{
	struct fake_tr *f = ctx;

	return f->len - f->pos;
}

static void
fake_free(void *ctx)
{
	((struct fake_tr *)ctx)->freed = 1;
}

static const struct stream_transport fake_transport = {
    fake_read, fake_write, fake_pending, fake_free};

static void
test_stream_transport(void)
{
	struct fake_tr f = {.in = "EHLO x\r\nQUIT\r\n"};
	struct stream st;
	struct buf line;
	int cr, guard = 0;
	enum stream_result r;

	f.len = strlen(f.in);
	stream_init(&st, -1);
	stream_set_transport(&st, &fake_transport, &f);
	buf_init(&line, 100);
	CHECK_INT(stream_fill(&st), STREAM_AGAIN);
	CHECK_INT(stream_events(&st, 1), STREAM_WANT_WRITE);
	CHECK_INT(stream_input_ready(&st), 1); /* plaintext is pending */
	while ((r = stream_next_line(&st, &line, 10, &cr)) == STREAM_AGAIN &&
	       guard++ < 100)
		(void)stream_fill(&st);
	CHECK_INT(r, STREAM_OK);
	CHECK_STR(buf_cstr(&line), "EHLO x");
	CHECK_INT(stream_events(&st, 1), STREAM_WANT_READ);
	/* Blocking reads never poll while the transport has plaintext. */
	CHECK_INT(
	    stream_read_line(&st, &line, 10, TEST_TIMEOUT, &cr), STREAM_OK);
	CHECK_STR(buf_cstr(&line), "QUIT");
	CHECK_INT(stream_events(&st, 0), 0);
	CHECK_INT(stream_puts(&st, "250 ok\r\n"), 0);
	CHECK_INT(stream_try_flush(&st), STREAM_AGAIN);
	CHECK_INT(stream_events(&st, 0), STREAM_WANT_READ);
	for (guard = 0; stream_try_flush(&st) == STREAM_AGAIN && guard < 100;
	     guard++)
		;
	CHECK_INT(stream_unsent(&st), 0);
	CHECK(f.outlen == 8 && memcmp(f.out, "250 ok\r\n", 8) == 0);
	buf_free(&line);
	stream_free(&st);
	CHECK_INT(f.freed, 1);
}

static void
test_stream_read_exact(void)
{
	struct stream st;
	struct buf out;
	int p[2];

	if (pipe(p) < 0)
		abort();
	stream_init(&st, p[0]);
	buf_init(&out, 10);
	CHECK_INT(write(p[1], "line\r\n12345678abc", 17), 17);
	CHECK_INT(
	    stream_read_line(&st, &out, 10, TEST_TIMEOUT, NULL), STREAM_OK);
	CHECK_INT(stream_read_exact(&st, &out, 3, TEST_TIMEOUT), STREAM_OK);
	CHECK_STR(buf_cstr(&out), "123");
	CHECK_INT(stream_read_exact(&st, &out, 5, TEST_TIMEOUT), STREAM_OK);
	CHECK_STR(buf_cstr(&out), "45678");
	CHECK_INT(stream_read_exact(&st, &out, 11, TEST_TIMEOUT), STREAM_ERROR);
	CHECK_INT(
	    stream_read_exact(&st, &out, 5, SHORT_TIMEOUT), STREAM_TIMEOUT);
	close(p[1]);
	CHECK_INT(stream_read_exact(&st, &out, 5, TEST_TIMEOUT), STREAM_EOF);
	buf_free(&out);
	stream_close(&st);
}

static void
test_stream_write(void)
{
	struct stream st;
	char got[64], *big;
	ssize_t n;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	stream_init(&st, sv[0]);
	CHECK_INT(stream_puts(&st, "220 "), 0);
	CHECK_INT(stream_printf(&st, "%s ready", "host"), 0);
	CHECK_INT(stream_write(&st, "\r\n", 2), 0);
	CHECK_INT(stream_flush(&st, TEST_TIMEOUT), STREAM_OK);
	CHECK_INT(st.wbuf.len, 0);
	n = read(sv[1], got, sizeof(got) - 1);
	CHECK_INT(n, 16);
	got[n > 0 ? n : 0] = '\0';
	CHECK_STR(got, "220 host ready\r\n");
	CHECK_INT(stream_flush(&st, TEST_TIMEOUT), STREAM_OK);

	/* The output cap, then a peer that never reads. */
	big = calloc(1, BIG_WRITE);
	CHECK_INT(stream_write(&st, big, BIG_WRITE), -1);
	CHECK_INT(st.wbuf.len, 0);
	CHECK_INT(stream_write(&st, big, FLUSH_FILL), 0);
	CHECK_INT(stream_write(&st, big, FLUSH_FILL), 0);
	CHECK_INT(stream_write(&st, "x", 1), -1);
	CHECK_INT(stream_flush(&st, SHORT_TIMEOUT), STREAM_TIMEOUT);
	CHECK(st.wbuf.len > 0 && st.wbuf.len < 2 * FLUSH_FILL);
	/* A vanished peer is an error, not SIGPIPE. */
	close(sv[1]);
	CHECK_INT(stream_flush(&st, TEST_TIMEOUT), STREAM_ERROR);
	free(big);
	stream_close(&st);
}

UNIT_MAIN(UNIT_CASE(test_stream_lines_whole),
    UNIT_CASE(test_stream_lines_bytewise), UNIT_CASE(test_stream_lines_split),
    UNIT_CASE(test_stream_long_lines), UNIT_CASE(test_stream_timeout),
    UNIT_CASE(test_stream_timeout_trickle), UNIT_CASE(test_stream_nonblocking),
    UNIT_CASE(test_stream_nonblocking_long), UNIT_CASE(test_stream_transport),
    UNIT_CASE(test_stream_read_exact), UNIT_CASE(test_stream_write))
