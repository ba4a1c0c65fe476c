/* SPDX-License-Identifier: MIT */
/* Table tests for the bounded parsing helpers. */
#include <stdint.h>
#include <string.h>

#include "base/str.h"
#include "unit.h"

#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))
#define UNTOUCHED 777
#define FIELDS    4

static void
test_str_to_u64(void)
{
	static const struct {
		const char *in;
		uint64_t max;
		int ret;
		uint64_t out;
	} t[] = {
	    {"0", 10, 0, 0},
	    {"10", 10, 0, 10},
	    {"11", 10, -1, UNTOUCHED},
	    {"7", 5, -1, UNTOUCHED},
	    {"", 10, -1, UNTOUCHED},
	    {"-1", 10, -1, UNTOUCHED},
	    {"+1", 10, -1, UNTOUCHED},
	    {" 1", 10, -1, UNTOUCHED},
	    {"1 ", 10, -1, UNTOUCHED},
	    {"1x", 10, -1, UNTOUCHED},
	    {"007", 10, 0, 7},
	    {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
	    {"18446744073709551616", UINT64_MAX, -1, UNTOUCHED},
	    {"99999999999999999999999", UINT64_MAX, -1, UNTOUCHED},
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		v = UNTOUCHED;
		CHECK_INT(str_to_u64(t[i].in, t[i].max, &v), t[i].ret);
		CHECK(v == t[i].out);
		if (v != t[i].out)
			printf("#   input \"%s\"\n", t[i].in);
	}
	v = UNTOUCHED;
	CHECK_INT(str_to_u64_n("1234", 2, 100, &v), 0);
	CHECK_INT(v, 12);
	CHECK_INT(str_to_u64_n("12", 0, 100, &v), -1);
	CHECK_INT(v, 12);
}

static void
test_str_to_bool(void)
{
	static const struct {
		const char *in;
		int ret, out;
	} t[] = {
	    {"yes", 0, 1},
	    {"YES", 0, 1},
	    {"True", 0, 1},
	    {"1", 0, 1},
	    {"on", 0, 1},
	    {"no", 0, 0},
	    {"false", 0, 0},
	    {"0", 0, 0},
	    {"OFF", 0, 0},
	    {"", -1, UNTOUCHED},
	    {"y", -1, UNTOUCHED},
	    {"yess", -1, UNTOUCHED},
	    {"2", -1, UNTOUCHED},
	};
	size_t i;
	int v;

	for (i = 0; i < NELEM(t); i++) {
		v = UNTOUCHED;
		CHECK_INT(str_to_bool(t[i].in, &v), t[i].ret);
		CHECK_INT(v, t[i].out);
	}
}

static void
test_str_to_seconds(void)
{
	static const struct {
		const char *in;
		uint64_t unit;
		int ret;
		uint64_t out;
	} t[] = {
	    {"300", 1, 0, 300},
	    {"300s", 1, 0, 300},
	    {"5m", 1, 0, 300},
	    {"2h", 1, 0, 7200},
	    {"5d", 1, 0, 432000},
	    {"1w", 1, 0, 604800},
	    {"5", 60, 0, 300},
	    {"5s", 60, 0, 5},
	    {"0", 1, 0, 0},
	    {"5x", 1, -1, UNTOUCHED},
	    {"5mm", 1, -1, UNTOUCHED},
	    {"m", 1, -1, UNTOUCHED},
	    {"", 1, -1, UNTOUCHED},
	    {"-5m", 1, -1, UNTOUCHED},
	    {"31000000000000w", 1, -1, UNTOUCHED},
	    {"18446744073709551615", 1, 0, UINT64_MAX},
	    {"18446744073709551615", 2, -1, UNTOUCHED},
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		v = UNTOUCHED;
		CHECK_INT(str_to_seconds(t[i].in, t[i].unit, &v), t[i].ret);
		CHECK(v == t[i].out);
		if (v != t[i].out)
			printf("#   input \"%s\"\n", t[i].in);
	}
}

static void
test_str_to_size(void)
{
	static const struct {
		const char *in;
		int ret;
		uint64_t out;
	} t[] = {
	    {"0", 0, 0},
	    {"100", 0, 100},
	    {"10k", 0, 10240},
	    {"10K", 0, 10240},
	    {"3m", 0, 3145728},
	    {"2g", 0, 2147483648ULL},
	    {"1t", -1, UNTOUCHED},
	    {"k", -1, UNTOUCHED},
	    {"1kb", -1, UNTOUCHED},
	    {"17179869184g", -1, UNTOUCHED},
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		v = UNTOUCHED;
		CHECK_INT(str_to_size(t[i].in, &v), t[i].ret);
		CHECK(v == t[i].out);
		if (v != t[i].out)
			printf("#   input \"%s\"\n", t[i].in);
	}
}

static void
test_str_case(void)
{
	char s[] = "MiXeD 123";

	CHECK(str_eq_ci("HELO", "helo"));
	CHECK(!str_eq_ci("HELO", "hel"));
	CHECK(!str_eq_ci("hel", "HELO"));
	CHECK(str_eq_ci("", ""));
	CHECK(!str_eq_ci("\xc3", "\xe3"));
	CHECK(str_prefix_ci("MAIL FROM:<a>", 13, "mail from:"));
	CHECK(!str_prefix_ci("MAIL FROM:<a>", 5, "mail from:"));
	CHECK(str_prefix_ci("x", 1, ""));
	CHECK(!str_prefix_ci("RCPT", 4, "mail"));
	str_lower(s);
	CHECK_STR(s, "mixed 123");
}

static void
test_str_trim(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"", ""},
	    {"  ", ""},
	    {"a", "a"},
	    {" \ta b\t ", "a b"},
	    {"x  ", "x"},
	    {"\t\tx", "x"},
	    {"\nx", "\nx"},
	};
	char tmp[32];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		snprintf(tmp, sizeof(tmp), "%s", t[i].in);
		CHECK_STR(str_trim(tmp), t[i].out);
	}
}

static void
test_str_split(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *f[FIELDS];
	} t[] = {
	    {"", 0, {NULL}},
	    {"  ", 0, {NULL}},
	    {"a", 1, {"a"}},
	    {"a b", 2, {"a", "b"}},
	    {"  a ,, b  c ", 3, {"a", "b", "c"}},
	    {"a b c d", 4, {"a", "b", "c", "d"}},
	    {"a b c d e", -1, {NULL}},
	};
	char tmp[32], *f[FIELDS];
	size_t i;
	int n, j;

	for (i = 0; i < NELEM(t); i++) {
		snprintf(tmp, sizeof(tmp), "%s", t[i].in);
		n = str_split(tmp, " ,", f, FIELDS);
		CHECK_INT(n, t[i].ret);
		for (j = 0; j < n && j < FIELDS; j++)
			CHECK_STR(f[j], t[i].f[j]);
	}
}

/* RFC 3629 section 3 and its examples, plus what it forbids. */
static void
test_str_utf8(void)
{
	static const struct {
		const char *in;
		int valid;
	} cases[] = {
	    {"", 1},
	    {"plain ascii", 1},
	    {"j\xc3\xb6s\xc3\xa9", 1}, /* jösé */
	    {"\xe2\x82\xac", 1},       /* euro sign */
	    {"\xf0\x9f\x93\xa7", 1},   /* U+1F4E7 */
	    {"\xf4\x8f\xbf\xbf", 1},   /* U+10FFFF */
	    {"\xc3", 0},               /* cut short */
	    {"\xe2\x82", 0},
	    {"\x80", 0},             /* lone continuation */
	    {"\xc0\xaf", 0},         /* overlong '/' */
	    {"\xe0\x80\xaf", 0},     /* overlong */
	    {"\xed\xa0\x80", 0},     /* surrogate U+D800 */
	    {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
	    {"\xff", 0},
	    {"a\xc3\xb6\xc3", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (str_utf8_valid(cases[i].in, strlen(cases[i].in)) !=
		    cases[i].valid) {
			printf("#   case %zu\n", i);
			CHECK(!"str_utf8_valid");
		}
	CHECK_INT(str_utf8_seq("\xc3\xb6x", 3), 2);
	CHECK_INT(str_utf8_seq("\xc3\xb6", 1), 0);
}

UNIT_MAIN(UNIT_CASE(test_str_to_u64), UNIT_CASE(test_str_to_bool),
    UNIT_CASE(test_str_to_seconds), UNIT_CASE(test_str_to_size),
    UNIT_CASE(test_str_case), UNIT_CASE(test_str_trim),
    UNIT_CASE(test_str_split), UNIT_CASE(test_str_utf8))
