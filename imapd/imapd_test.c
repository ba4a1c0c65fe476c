/* SPDX-License-Identifier: MIT */
/*
 * Tests of imapd's helpers without I/O: LIST patterns (tables of
 * pattern, name, result, the exponential cases included), the end of
 * the header of stored LF and CRLF mail, CRLF conversion, Date: days and case-insensitive search.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapd.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
test_list_match(void)
{
	static const struct {
		const char *pattern, *name;
		int match;
	} t[] = {
	    {"*", "INBOX", 1},
	    {"*", "a.b.c", 1},
	    {"%", "a", 1},
	    {"%", "a.b", 0},
	    {"a.%", "a.b", 1},
	    {"a.%", "a.b.c", 0},
	    {"a.*", "a.b.c", 1},
	    {"a*", "a", 1},
	    {"a%b", "axxb", 1},
	    {"a%b", "ax.xb", 0},
	    {"a*b", "ax.xb", 1},
	    {"INBOX", "INBOX", 1},
	    {"INBOX", "INBOXx", 0},
	    {"", "", 1},
	    {"", "a", 0},
	    {"%.%", "Archive.2026", 1},
	    {"*a*a*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
	    {"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%.x", "aaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++)
		CHECK_INT(imapd_list_match(t[i].pattern, t[i].name, '.'),
		    t[i].match);
}

static void
test_header_end(void)
{
	CHECK_INT(imapd_header_end("A: 1\n\nbody", 10), 6);
	CHECK_INT(imapd_header_end("A: 1\r\n\r\nbody", 12), 8);
	CHECK_INT(imapd_header_end("\nbody", 5), 1);
	CHECK_INT(imapd_header_end("A: 1\nB: 2", 9), 9);
}

static void
crlf_check(const char *in, int prev_cr, const char *want)
{
	char out[64];
	size_t len = strlen(in), n;

	CHECK(len * 2 <= sizeof(out));
	n = imapd_crlf_copy(out, in, len, prev_cr);
	CHECK_INT(n, strlen(want));
	CHECK(memcmp(out, want, n) == 0);
	CHECK_INT(len + imapd_crlf_extra(in, len, prev_cr), n);
}

static void
test_crlf(void)
{
	crlf_check("a\nb\r\nc\n", 0, "a\r\nb\r\nc\r\n");
	crlf_check("\n\n", 0, "\r\n\r\n");
	crlf_check("", 0, "");
	crlf_check("", 1, "");
	/* a last line without a line end, a lone CR */
	crlf_check("a\nb", 0, "a\r\nb");
	crlf_check("a\rb\r", 0, "a\rb\r");
	crlf_check("\r\r\n\n", 0, "\r\r\n\r\n");
	/* a piece that starts after a CR of the one before */
	crlf_check("\nx\n", 1, "\nx\r\n");
	crlf_check("\nx\n", 0, "\r\nx\r\n");
}

static void
test_rfc822_day(void)
{
	static const struct {
		const char *in;
		int ok;
		int64_t day;
	} t[] = {
	    {"Mon, 2 Feb 2026 10:00:00 +0100", 1, 1769990400},
	    {"2 Feb 2026 23:59:59 -1200", 1, 1769990400},
	    {" Thu, 01 Jan 1970 00:00:00 GMT", 1, 0},
	    {"1 jan 99 00:00 +0000", 1, 915148800},
	    {"Feb 2026", 0, 0},
	    {"", 0, 0},
	    {"32 Jan 2026", 0, 0},
	};
	int64_t day;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		day = -1;
		CHECK_INT(imapd_rfc822_day(t[i].in, strlen(t[i].in), &day),
		    t[i].ok);
		if (t[i].ok)
			CHECK_INT(day, t[i].day);
	}
}

static void
test_contains(void)
{
	CHECK_INT(imapd_contains("Hello World", 11, "WORLD", 5), 1);
	CHECK_INT(imapd_contains("Hello", 5, "", 0), 1);
	CHECK_INT(imapd_contains("Hel", 3, "Hello", 5), 0);
	CHECK_INT(imapd_contains("abcabd", 6, "abd", 3), 1);
	/* candidates of either case, in any order, to the very end */
	CHECK_INT(imapd_contains("xAbyaBZ", 7, "abz", 3), 1);
	CHECK_INT(imapd_contains("EEEEEEe1", 8, "E1", 2), 1);
	CHECK_INT(imapd_contains("eEeEeE", 6, "E1", 2), 0);
	CHECK_INT(imapd_contains("ab", 2, "B", 1), 1);
	CHECK_INT(imapd_contains("a.b", 3, ".", 1), 1);
	CHECK_INT(imapd_contains("ab", 2, "c", 1), 0);
}

UNIT_MAIN(UNIT_CASE(test_list_match), UNIT_CASE(test_header_end),
    UNIT_CASE(test_crlf), UNIT_CASE(test_rfc822_day),
    UNIT_CASE(test_contains))
