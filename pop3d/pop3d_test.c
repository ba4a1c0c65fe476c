/* SPDX-License-Identifier: MIT */
/*
 * Tests of what pop3d reads from maildir names (times, ",S=" and ",W=",
 * Dovecot's order, adding \Seen), of pop3_uidl_format (tables of format
 * and result, and the formats refused), and of the wire form of a
 * message (CRLF, dot-stuffing, TOP), whole and one byte at a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX  4096

static void
test_name_time(void)
{
	static const struct {
		const char *name;
		int ret;
		long long sec;
		long usec;
	} t[] = {
	    {"1700000000.M123456P9Q1.host,S=10,W=11:2,S", 0, 1700000000,
	        123456},
	    {"1700000000.M000001Q0ABCR0.h", 0, 1700000000, 1},
	    {"1700000000.P12.host", 0, 1700000000, -1},
	    {"1700000000.12345_6.host:2,", 0, 1700000000, -1},
	    /* "M" after the unique part is the host's, not a time. */
	    {"1700000000.P1.Mhost", 0, 1700000000, -1},
	    {"x1700000000.M1.h", -1, 0, 0},
	    {"1700000000", -1, 0, 0},
	    {"", -1, 0, 0},
	    {"1234567890123456789.M1.h", -1, 0, 0},
	};
	long long sec;
	long usec;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		sec = 0;
		usec = 0;
		CHECK_INT(pop3d_name_time(t[i].name, &sec, &usec), t[i].ret);
		if (t[i].ret == 0) {
			CHECK_INT(sec, t[i].sec);
			CHECK_INT(usec, t[i].usec);
		}
	}
}

static void
test_name_field(void)
{
	static const struct {
		const char *name;
		char key;
		int ret;
		uint64_t value;
	} t[] = {
	    {"1.M1.h,S=10,W=12:2,S", 'S', 0, 10},
	    {"1.M1.h,S=10,W=12:2,S", 'W', 0, 12},
	    {"1.M1.h,S=10,W=12", 'W', 0, 12},
	    {"1.M1.h,W=12,S=10", 'W', 0, 12},
	    {"1.M1.h,S=10:2,", 'W', -1, 0},
	    /* Only the base counts, not the flags. */
	    {"1.M1.h:2,,W=5", 'W', -1, 0},
	    {"1.M1.h,W=x:2,", 'W', -1, 0},
	    {"1.M1.h,W=:2,", 'W', -1, 0},
	    {"1.M1.h,W=12x", 'W', -1, 0},
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		v = 0;
		CHECK_INT(pop3d_name_field(t[i].name, t[i].key, &v), t[i].ret);
		if (t[i].ret == 0)
			CHECK_INT(v, t[i].value);
	}
}

static int
sign(int x)
{
	return x < 0 ? -1 : x > 0 ? 1 : 0;
}

static void
test_name_cmp(void)
{
	static const struct {
		const char *a, *b;
		int cmp;
	} t[] = {
	    {"9.M1.h", "10.M0.h", -1},
	    {"10.M2.h", "10.M10.h", -1},
	    {"10.M10.h:2,S", "10.M10.h:2,", 0},
	    {"10.M10.a", "10.M10.b", -1},
	    {"10.P1.b", "10.P1.a", 1},
	    /* No time: 0, before any time. */
	    {"abc", "1.M1.h", -1},
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		CHECK_INT(sign(pop3d_name_cmp(t[i].a, t[i].b)), t[i].cmp);
		CHECK_INT(sign(pop3d_name_cmp(t[i].b, t[i].a)), -t[i].cmp);
	}
}

static void
test_name_add_flag(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"1.M1.h,S=1:2,", "1.M1.h,S=1:2,S"},
	    {"1.M1.h:2,FR", "1.M1.h:2,FRS"},
	    {"1.M1.h:2,DTa", "1.M1.h:2,DSTa"},
	    {"1.M1.h:2,S", NULL},
	    {"1.M1.h:2,RSb", NULL},
	    {"1.M1.h", "1.M1.h:2,S"},
	    {"1.M1.h:1,xyz", "1.M1.h:2,S"},
	};
	size_t i;
	char *got;

	for (i = 0; i < NELEM(t); i++) {
		got = pop3d_name_add_flag(t[i].in, 'S');
		if (t[i].out == NULL)
			CHECK(got == NULL);
		else
			CHECK_STR(got, t[i].out);
		free(got);
	}
}

static void
test_uidl(void)
{
	static const char base[] = "1700000000.M5P1.host,S=10,W=12:2,S";
	static const struct {
		const char *format, *want;
	} t[] = {
	    {"%f", "1700000000.M5P1.host,S=10,W=12"},
	    {"%{filename}", "1700000000.M5P1.host,S=10,W=12"},
	    {"%g", "1700000000.M5P1.host,S=10,W=12"},
	    {"x%%y", "x%y"},
	    {"%08Xu%08Xv", "0000002a499602d2"},
	    {"%Xu", "2a"},
	    {"%u.%v", "42.1234567890"},
	    {"%{uid}-%{uidvalidity}", "42-1234567890"},
	    {"%5f", "17000"},
	    {"%10.3f", ".M5"},
	    {"%-6.f", "0,W=12"},
	    {"%Uf", "1700000000.M5P1.HOST,S=10,W=12"},
	    {"%Rf", "21=W,01=S,tsoh.1P5M.0000000071"},
	    {"%04u", "0042"},
	    {"%01u", "42"},
	};
	struct buf out;
	size_t i;

	buf_init(&out, POP3D_UIDL_MAX);
	for (i = 0; i < NELEM(t); i++) {
		buf_reset(&out);
		CHECK_INT(pop3d_uidl_expand(t[i].format, base,
		              strchr(base, ':') - base, 42, 1234567890, &out),
		    0);
		CHECK_STR(buf_cstr(&out), t[i].want);
	}
	buf_free(&out);
}

static void
test_uidl_check(void)
{
	static const struct {
		const char *format;
		int ret, needs_uid;
	} t[] = {
	    {"%f", 0, 0},
	    {"%{filename}%%", 0, 0},
	    {"UID-%Lf", 0, 0},
	    /* Dovecot's default, from dovecot-uidlist */
	    {"%08Xu%08Xv", 0, 1},
	    {"%v-%{uid}", 0, 1},
	    {"", -1, 0},
	    {"%m", -1, 0},
	    {"%{md5}", -1, 0},
	    {"%Mf", -1, 0},
	    {"%Hf", -1, 0},
	    {"%z", -1, 0},
	    {"%{nope}", -1, 0},
	    {"%{filename", -1, 0},
	    {"abc%", -1, 0},
	    {"%LLLLLLLLLLLf", -1, 0},
	};
	const char *err;
	size_t i;
	int needs;

	for (i = 0; i < NELEM(t); i++) {
		err = NULL;
		needs = -1;
		CHECK_INT(
		    pop3d_uidl_check(t[i].format, &needs, &err), t[i].ret);
		if (t[i].ret < 0)
			CHECK(err != NULL && *err != '\0');
		if (t[i].needs_uid)
			CHECK_INT(needs, 1);
	}
}

/* The whole input, then one byte at a time: the same output. */
static void
wire_check(
    const char *in, long long lines, const char *want, uint64_t want_stuffed)
{
	char out[OUT_MAX], one[2];
	const char *end;
	struct pop3d_wire w;
	size_t n = strlen(in), o, i, len;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		pop3d_wire_init(&w, lines);
		o = 0;
		if (pass == 0) {
			o = pop3d_wire_convert(&w, in, n, out);
		} else {
			for (i = 0; i < n; i++) {
				len = pop3d_wire_convert(&w, in + i, 1, one);
				memcpy(out + o, one, len);
				o += len;
			}
		}
		end = pop3d_wire_end(&w, &len);
		memcpy(out + o, end, len);
		out[o + len] = '\0';
		CHECK_STR(out, want);
		CHECK_INT(w.stuffed, want_stuffed);
	}
}

static void
test_wire(void)
{
	/* LF and CRLF files alike. */
	wire_check("A: 1\n\nbody\n", -1, "A: 1\r\n\r\nbody\r\n.\r\n", 0);
	wire_check("A: 1\r\n\r\nbody\r\n", -1, "A: 1\r\n\r\nbody\r\n.\r\n", 0);
	/* No LF at the end: RETR adds CRLF. */
	wire_check("A: 1\n\nbody", -1, "A: 1\r\n\r\nbody\r\n.\r\n", 0);
	wire_check("", -1, ".\r\n", 0);
	/* Dots at line starts are doubled, nowhere else. */
	wire_check("A: 1\n\n.\n..x\na.b\n.", -1,
	    "A: 1\r\n\r\n..\r\n...x\r\na.b\r\n..\r\n.\r\n", 3);
	/* A bare CR stays. */
	wire_check("a\rb\n", -1, "a\rb\r\n.\r\n", 0);
	/* TOP n 0: the header and the empty line. */
	wire_check(
	    "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, "A: 1\r\nB: 2\r\n\r\n.\r\n", 0);
	wire_check("A: 1\r\n\r\nl1\r\n", 0, "A: 1\r\n\r\n.\r\n", 0);
	wire_check("A: 1\nB: 2\n\nl1\n.l2\nl3\n", 2,
	    "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n", 1);
	wire_check("A: 1\n\nl1\n", 5, "A: 1\r\n\r\nl1\r\n.\r\n", 0);
	/* No body at all: the whole header. */
	wire_check("A: 1\nB: 2", 0, "A: 1\r\nB: 2\r\n.\r\n", 0);
}

UNIT_MAIN(UNIT_CASE(test_name_time), UNIT_CASE(test_name_field),
    UNIT_CASE(test_name_cmp), UNIT_CASE(test_name_add_flag),
    UNIT_CASE(test_uidl), UNIT_CASE(test_uidl_check), UNIT_CASE(test_wire))
