/* SPDX-License-Identifier: MIT */
/* Tests for the capped buffer: growth, the hard maximum, NUL keeping. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "unit.h"

#define BIG_MAX 100000

static void
test_buf_empty(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 10);
	CHECK(b.data == NULL);
	CHECK_STR(buf_cstr(&b), "");
	buf_reset(&b);
	buf_consume(&b, 5);
	buf_truncate(&b, 0);
	CHECK_INT(b.len, 0);
	s = buf_steal(&b);
	CHECK_STR(s, "");
	free(s);
	buf_free(&b);
	CHECK_INT(b.max, 10);
}

static void
test_buf_grow(void)
{
	struct buf b;
	size_t i;
	int ok = 1;

	buf_init(&b, BIG_MAX);
	for (i = 0; i < BIG_MAX; i++)
		ok &= buf_putc(&b, (char)('a' + i % 26)) == 0;
	CHECK(ok);
	CHECK_INT(b.len, BIG_MAX);
	CHECK(b.cap <= BIG_MAX + 1);
	CHECK(b.data[BIG_MAX] == '\0');
	CHECK(b.data[BIG_MAX - 1] == 'a' + (BIG_MAX - 1) % 26);
	CHECK_INT(buf_putc(&b, 'x'), -1);
	CHECK_INT(b.len, BIG_MAX);
	buf_free(&b);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
}

static void
test_buf_max(void)
{
	struct buf b;

	buf_init(&b, 5);
	CHECK_INT(buf_puts(&b, "abc"), 0);
	CHECK_INT(buf_puts(&b, "def"), -1); /* would be 6 */
	CHECK_STR(buf_cstr(&b), "abc");
	CHECK_INT(buf_append(&b, "de", 2), 0);
	CHECK_STR(buf_cstr(&b), "abcde");
	CHECK_INT(buf_printf(&b, "%d", 1), -1);
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK_INT(buf_append(&b, "x", SIZE_MAX), -1); /* no overflow */
	CHECK_STR(buf_cstr(&b), "abcde");
	buf_free(&b);

	buf_init(&b, 0);
	CHECK_INT(buf_putc(&b, 'a'), -1);
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
}

static void
test_buf_binary(void)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK_INT(buf_append(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 4) == 0);
	buf_free(&b);
}

static void
test_buf_printf(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 1000);
	CHECK_INT(buf_printf(&b, "%s=%d", "x", 42), 0);
	CHECK_INT(buf_printf(&b, ", %05.1f", 2.5), 0);
	CHECK_STR(buf_cstr(&b), "x=42, 002.5");
	CHECK_INT(b.len, strlen("x=42, 002.5"));
	buf_reset(&b);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(buf_printf(&b, "%300s", "r"), 0);
	CHECK_INT(b.len, 300);
	CHECK(b.data[299] == 'r');
	s = buf_steal(&b);
	CHECK(b.data == NULL && b.len == 0);
	CHECK_INT(strlen(s), 300);
	free(s);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
}

static void
test_buf_consume_truncate(void)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK_INT(buf_puts(&b, "hello world"), 0);
	buf_consume(&b, 6);
	CHECK_STR(buf_cstr(&b), "world");
	buf_truncate(&b, 3);
	CHECK_STR(buf_cstr(&b), "wor");
	buf_truncate(&b, 10);
	CHECK_STR(buf_cstr(&b), "wor");
	buf_consume(&b, 10);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(b.len, 0);
	buf_free(&b);
}

UNIT_MAIN(UNIT_CASE(test_buf_empty), UNIT_CASE(test_buf_grow),
    UNIT_CASE(test_buf_max), UNIT_CASE(test_buf_binary),
    UNIT_CASE(test_buf_printf), UNIT_CASE(test_buf_consume_truncate))
