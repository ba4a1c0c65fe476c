/* SPDX-License-Identifier: MIT */
/*
 * Tests of the attribute frame encoding: round trips, incremental
 * decoding whole and one byte at a time, a table of malformed payloads,
 * size limits, and reading/writing frames over a socket pair.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/attr.h"

#define TEST_TIMEOUT_MS  5000
#define SHORT_TIMEOUT_MS 50
#define BIG_VALUE_LEN    (2u * 1024 * 1024)

static const char binary[] = {'a', '\0', 'b', '\0', '\0', '\xff'};
static char long_name[ATTR_NAME_MAX + 2];

/* Builds the frame every round-trip test decodes. */
static void
build(struct buf *f)
{
	memset(long_name, 'n', ATTR_NAME_MAX);
	long_name[ATTR_NAME_MAX] = '\0';
	attr_frame_begin(f);
	CHECK_INT(attr_put_str(f, "request", "deliver"), 0);
	CHECK_INT(attr_put_int(f, "rcpt_index", 3), 0);
	CHECK_INT(attr_put(f, "bin", binary, sizeof(binary)), 0);
	CHECK_INT(attr_put_str(f, "empty", ""), 0);
	CHECK_INT(attr_put_int(f, "rcpt_index", -42), 0);
	CHECK_INT(attr_put_str(f, long_name, "long"), 0);
	CHECK_INT(attr_put_int(f, "min_1", LLONG_MIN), 0);
	CHECK_INT(attr_frame_end(f), 0);
}

static void
check_decoded(const struct attr_list *l)
{
	long long n = 0;

	CHECK_INT(l->count, 7);
	if (l->count != 7)
		return;
	CHECK_STR(l->v[0].name, "request");
	CHECK_STR(l->v[0].value, "deliver");
	CHECK_INT(l->v[0].len, 7);
	CHECK_STR(attr_get(l, "request"), "deliver");
	CHECK_STR(attr_get(l, "rcpt_index"), "3");
	CHECK_STR(l->v[4].value, "-42");
	CHECK_INT(l->v[2].len, sizeof(binary));
	CHECK(memcmp(l->v[2].value, binary, sizeof(binary)) == 0);
	CHECK_INT(l->v[2].value[sizeof(binary)], 0);
	CHECK_STR(attr_get(l, "empty"), "");
	CHECK_INT(l->v[3].len, 0);
	CHECK_STR(attr_get(l, long_name), "long");
	CHECK(attr_get(l, "missing") == NULL);
	CHECK_INT(attr_get_int(l, "rcpt_index", &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(attr_get_int(l, "min_1", &n), 0);
	CHECK(n == LLONG_MIN);
	CHECK_INT(attr_get_int(l, "request", &n), -1);
	CHECK_INT(attr_get_int(l, "empty", &n), -1);
	CHECK_INT(attr_get_int(l, "bin", &n), -1);
	CHECK_INT(attr_get_int(l, "missing", &n), -1);
}

static void
test_roundtrip(void)
{
	struct attr_list l;
	const char *err = NULL;
	struct buf f;
	size_t used = 0;

	buf_init(&f, ATTR_FRAME_MAX + ATTR_HEADER_LEN);
	build(&f);
	attr_list_init(&l);
	CHECK_INT(attr_decode_frame(f.data, f.len, &used, &l, &err), 1);
	CHECK_INT(used, f.len);
	check_decoded(&l);
	/* decoding again reuses the list */
	CHECK_INT(attr_decode(f.data + ATTR_HEADER_LEN, f.len - ATTR_HEADER_LEN,
	              &l, &err),
	    0);
	check_decoded(&l);
	/* an empty frame */
	attr_frame_begin(&f);
	CHECK_INT(attr_frame_end(&f), 0);
	CHECK_INT(f.len, ATTR_HEADER_LEN);
	CHECK_INT(attr_decode_frame(f.data, f.len, &used, &l, &err), 1);
	CHECK_INT(l.count, 0);
	CHECK_INT(used, ATTR_HEADER_LEN);
	attr_list_free(&l);
	buf_free(&f);
}

static void
test_bytewise(void)
{
	struct attr_list l;
	const char *err = NULL;
	struct buf f, two;
	size_t i, used;

	buf_init(&f, 4096);
	buf_init(&two, 8192);
	build(&f);
	attr_list_init(&l);
	for (i = 0; i < f.len; i++) {
		used = 12345;
		if (attr_decode_frame(f.data, i, &used, &l, &err) != 0) {
			printf("# prefix %zu decoded\n", i);
			CHECK(!"partial frame decoded");
			break;
		}
		CHECK_INT(used, 12345);
	}
	CHECK_INT(attr_decode_frame(f.data, f.len, &used, &l, &err), 1);
	check_decoded(&l);

	/* two frames back to back: the first is consumed exactly */
	CHECK_INT(buf_append(&two, f.data, f.len), 0);
	attr_frame_begin(&f);
	CHECK_INT(attr_put_str(&f, "queue_id", "ABC"), 0);
	CHECK_INT(attr_frame_end(&f), 0);
	CHECK_INT(buf_append(&two, f.data, f.len), 0);
	CHECK_INT(attr_decode_frame(two.data, two.len, &used, &l, &err), 1);
	CHECK_INT(l.count, 7);
	CHECK_INT(
	    attr_decode_frame(two.data + used, two.len - used, &used, &l, &err),
	    1);
	CHECK_INT(l.count, 1);
	CHECK_STR(attr_get(&l, "queue_id"), "ABC");
	attr_list_free(&l);
	buf_free(&f);
	buf_free(&two);
}

static void
test_malformed(void)
{
	static const struct {
		const char *data;
		size_t len;
		const char *error;
	} cases[] = {
	    {"\x00\x00\x00\x00\x00", 5, "bad attribute name"},
	    {"\x01"
	     "A"
	     "\x00\x00\x00\x00",
	        6, "bad attribute name"},
	    {"\x03"
	     "a-b"
	     "\x00\x00\x00\x00",
	        8, "bad attribute name"},
	    {"\x41"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaa"
	     "\x00\x00\x00\x00",
	        70, "bad attribute name"},
	    {"\x03"
	     "ab",
	        3, "name runs past"},
	    {"\x01"
	     "a"
	     "\x00\x00\x00",
	        5, "name runs past"},
	    {"\x01"
	     "a"
	     "\x00\x00\x00\x05"
	     "xy",
	        8, "value runs past"},
	    {"\x01"
	     "a"
	     "\xff\xff\xff\xff"
	     "xy",
	        8, "value runs past"},
	    {"\x01"
	     "a"
	     "\x00\x00\x00\x00"
	     "\x01",
	        7, "name runs past"},
	};
	unsigned char frame[128];
	struct attr_list l;
	const char *err;
	size_t i, used;

	attr_list_init(&l);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = "";
		CHECK_INT(
		    attr_decode(cases[i].data, cases[i].len, &l, &err), -1);
		CHECK_INT(l.count, 0);
		if (strstr(err, cases[i].error) == NULL) {
			printf("# case %zu: got \"%s\"\n", i, err);
			CHECK(!"error text");
		}
		/* the same inside a frame */
		frame[0] = frame[1] = frame[2] = 0;
		frame[3] = (unsigned char)cases[i].len;
		memcpy(frame + ATTR_HEADER_LEN, cases[i].data, cases[i].len);
		CHECK_INT(attr_decode_frame(frame,
		              ATTR_HEADER_LEN + cases[i].len, &used, &l, &err),
		    -1);
	}
	/* an over-size header fails before the payload arrives */
	memcpy(frame, "\x00\x40\x00\x01", 4);
	CHECK_INT(attr_decode_frame(frame, 4, &used, &l, &err), -1);
	CHECK(strstr(err, "too large") != NULL);
	memcpy(frame, "\xff\xff\xff\xff", 4);
	CHECK_INT(attr_decode_frame(frame, 4, &used, &l, &err), -1);
	/* exactly the maximum is only "need more" */
	memcpy(frame, "\x00\x40\x00\x00", 4);
	CHECK_INT(attr_decode_frame(frame, 4, &used, &l, &err), 0);
	attr_list_free(&l);
}

static void
test_put_limits(void)
{
	static const char *const bad_names[] = {
	    "", "A", "a-b", "a b", "é", "name\n"};
	char big_name[ATTR_NAME_MAX + 2];
	struct buf f;
	size_t i, len;
	char *big;

	buf_init(&f, 32);
	attr_frame_begin(&f);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		CHECK_INT(attr_put_str(&f, bad_names[i], "x"), -1);
	memset(big_name, 'a', sizeof(big_name) - 1);
	big_name[sizeof(big_name) - 1] = '\0';
	CHECK_INT(attr_put_str(&f, big_name, "x"), -1);
	CHECK_INT(f.len, ATTR_HEADER_LEN);
	/* 4 + (1 + 1 + 4 + 22) = 32 fits, one more byte does not */
	CHECK_INT(attr_put_str(&f, "a", "0123456789012345678901"), 0);
	len = f.len;
	CHECK_INT(attr_put_str(&f, "b", ""), -1);
	CHECK_INT(f.len, len);
	buf_free(&f);

	/* ATTR_FRAME_MAX binds even with a larger buffer */
	buf_init(&f, 2 * ATTR_FRAME_MAX);
	big = xcalloc(1, ATTR_FRAME_MAX);
	attr_frame_begin(&f);
	CHECK_INT(attr_put(&f, "v", big, ATTR_FRAME_MAX), -1);
	CHECK_INT(attr_put(&f, "v", big, ATTR_FRAME_MAX - 6), 0);
	CHECK_INT(attr_put(&f, "w", "", 0), -1);
	CHECK_INT(attr_frame_end(&f), 0);
	CHECK_INT(f.len, ATTR_FRAME_MAX + ATTR_HEADER_LEN);
	free(big);
	buf_free(&f);
}

static void
test_stream(void)
{
	struct attr_list l;
	struct stream a, b;
	const char *err;
	struct buf f;
	int sv[2];

	CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	stream_init(&a, sv[0]);
	stream_init(&b, sv[1]);
	buf_init(&f, 4096);
	attr_list_init(&l);
	build(&f);
	CHECK_INT(attr_write(&a, &f, TEST_TIMEOUT_MS), STREAM_OK);
	CHECK_INT(attr_write(&a, &f, TEST_TIMEOUT_MS), STREAM_OK);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_OK);
	check_decoded(&l);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_OK);
	check_decoded(&l);

	/* nothing sent: the deadline holds */
	CHECK_INT(attr_read(&b, &l, SHORT_TIMEOUT_MS, &err), STREAM_TIMEOUT);

	/* over-size header */
	CHECK_INT(write(sv[0], "\x01\x00\x00\x00", 4), 4);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_ERROR);
	CHECK(strstr(err, "too large") != NULL);

	/* malformed payload */
	CHECK_INT(write(sv[0], "\x00\x00\x00\x02\x05x", 6), 6);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_ERROR);
	CHECK(strstr(err, "runs past") != NULL);

	/* a frame cut short by a close, then a clean close */
	CHECK_INT(write(sv[0], "\x00\x00\x00\x09\x01", 5), 5);
	stream_close(&a);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_ERROR);
	CHECK(strstr(err, "truncated") != NULL);
	CHECK_INT(attr_read(&b, &l, TEST_TIMEOUT_MS, &err), STREAM_EOF);
	stream_close(&b);
	attr_list_free(&l);
	buf_free(&f);
}

/*
 * attr_frame_take's limit (a server's request_max) holds when a frame
 * arrives whole in one read, as when it is collected across reads.
 */
static void
test_take_limit(void)
{
	static const size_t maxima[] = {64, 1024};
	struct attr_list l;
	struct stream st;
	struct buf f, acc;
	const char *err = NULL;
	char value[100];
	size_t i;
	int sv[2];

	memset(value, 'v', sizeof(value));
	buf_init(&f, 4096);
	attr_frame_begin(&f);
	CHECK_INT(attr_put(&f, "value", value, sizeof(value)), 0);
	CHECK_INT(attr_frame_end(&f), 0);
	attr_list_init(&l);
	for (i = 0; i < sizeof(maxima) / sizeof(maxima[0]); i++) {
		CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		CHECK_INT(write(sv[0], f.data, f.len), (long long)f.len);
		close(sv[0]);
		stream_init(&st, sv[1]);
		CHECK_INT(stream_fill(&st), STREAM_OK);
		CHECK_INT(stream_buffered(&st), f.len);
		buf_init(&acc, ATTR_HEADER_LEN + maxima[i]);
		if (f.len > acc.max) {
			CHECK_INT(attr_frame_take(&st, &acc, &l, &err), -1);
			CHECK(err != NULL && strstr(err, "too large") != NULL);
		} else {
			CHECK_INT(attr_frame_take(&st, &acc, &l, &err), 1);
			CHECK_INT(l.count, 1);
		}
		buf_free(&acc);
		stream_close(&st);
	}
	attr_list_free(&l);
	buf_free(&f);
}

/* A frame larger than the stream's output buffer and the socket buffer
 * needs a reader running at the same time: a child process. */
static void
test_stream_big(void)
{
	struct attr_list l;
	struct stream st;
	const char *err = "";
	struct buf f;
	char *big;
	int sv[2], status = -1;
	pid_t pid;
	size_t i;

	big = xmalloc(BIG_VALUE_LEN);
	for (i = 0; i < BIG_VALUE_LEN; i++)
		big[i] = (char)(i * 7);
	CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	if (pid == 0) {
		close(sv[1]);
		buf_init(&f, ATTR_FRAME_MAX + ATTR_HEADER_LEN);
		stream_init(&st, sv[0]);
		attr_frame_begin(&f);
		if (attr_put(&f, "big", big, BIG_VALUE_LEN) < 0 ||
		    attr_put_str(&f, "after", "yes") < 0 ||
		    attr_frame_end(&f) < 0 ||
		    attr_write(&st, &f, TEST_TIMEOUT_MS) != STREAM_OK)
			_exit(1);
		_exit(0);
	}
	CHECK(pid > 0);
	close(sv[0]);
	stream_init(&st, sv[1]);
	attr_list_init(&l);
	CHECK_INT(attr_read(&st, &l, TEST_TIMEOUT_MS, &err), STREAM_OK);
	CHECK_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_INT(l.v[0].len, BIG_VALUE_LEN);
		CHECK(memcmp(l.v[0].value, big, BIG_VALUE_LEN) == 0);
		CHECK_STR(attr_get(&l, "after"), "yes");
	}
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	stream_close(&st);
	attr_list_free(&l);
	free(big);
}

/*
 * attr_frame_take: the accumulator's maximum bounds a frame even when
 * the whole frame sits in the stream's read buffer (a service's
 * request_max must hold for small frames too).
 */
static void
test_take_limit_small(void)
{
	static const char value[] = "a value of more than twenty bytes";
	struct attr_list l;
	struct stream a, b;
	struct buf f, acc;
	const char *err = "";
	int sv[2];

	CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	stream_init(&a, sv[0]);
	stream_init(&b, sv[1]);
	buf_init(&f, 4096);
	attr_list_init(&l);
	attr_frame_begin(&f);
	CHECK_INT(attr_put_str(&f, "v", value), 0);
	CHECK_INT(attr_frame_end(&f), 0);
	CHECK_INT(attr_write(&a, &f, TEST_TIMEOUT_MS), STREAM_OK);
	CHECK_INT(attr_write(&a, &f, TEST_TIMEOUT_MS), STREAM_OK);
	CHECK_INT(stream_fill(&b), STREAM_OK);

	buf_init(&acc, ATTR_HEADER_LEN + f.len);
	CHECK_INT(attr_frame_take(&b, &acc, &l, &err), 1);
	CHECK_STR(attr_get(&l, "v"), value);
	buf_free(&acc);

	buf_init(&acc, ATTR_HEADER_LEN + sizeof(value) / 2);
	CHECK_INT(attr_frame_take(&b, &acc, &l, &err), -1);
	CHECK(strstr(err, "too large") != NULL);
	buf_free(&acc);

	stream_close(&a);
	stream_close(&b);
	attr_list_free(&l);
	buf_free(&f);
}

UNIT_MAIN(UNIT_CASE(test_roundtrip), UNIT_CASE(test_bytewise),
    UNIT_CASE(test_malformed), UNIT_CASE(test_put_limits),
    UNIT_CASE(test_stream), UNIT_CASE(test_stream_big),
    UNIT_CASE(test_take_limit), UNIT_CASE(test_take_limit_small))
