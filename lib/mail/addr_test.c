/* SPDX-License-Identifier: MIT */
/*
 * Tests of envelope address parsing (RFC 5321 4.1.2): tables of good and
 * bad paths, length limits, splitting and domain validation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "base/buf.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/params.h"

#define REPEAT_MAX 512

/* "x" repeated n times, in a rotating static buffer. */
static const char *
rep(char c, size_t n)
{
	static char bufs[4][REPEAT_MAX + 1];
	static int next;
	char *b = bufs[next++ % 4];

	memset(b, c, n);
	b[n] = '\0';
	return b;
}

static void
test_good(void)
{
	static const struct {
		const char *in;
		int allow_empty;
		const char *addr, *params;
	} cases[] = {
	    {"<a@b.c>", 0, "a@b.c", ""},
	    {"  <a@b.c>", 0, "a@b.c", ""},
	    {"<a@b.c> SIZE=100 BODY=8BITMIME", 0, "a@b.c",
	        "SIZE=100 BODY=8BITMIME"},
	    {"<a@b.c>   NOTIFY=NEVER", 0, "a@b.c", "NOTIFY=NEVER"},
	    {"<a@b.c>   ", 0, "a@b.c", ""},
	    {"<\"x y\"@b.c>", 0, "\"x y\"@b.c", ""},
	    {"<\"a\\\"b\\\\c\"@b.c>", 0, "\"a\\\"b\\\\c\"@b.c", ""},
	    {"<\"\"@b.c>", 0, "\"\"@b.c", ""},
	    {"<@r1,@r2:a@b>", 0, "a@b", ""},
	    {"<@r1.example:a@b>", 0, "a@b", ""},
	    {"<>", 1, "", ""},
	    {"<> SIZE=5", 1, "", "SIZE=5"},
	    {"<postmaster>", 0, "postmaster", ""},
	    {"<first.last+tag@sub.example.org>", 0,
	        "first.last+tag@sub.example.org", ""},
	    {"<!#$%&'*+-/=?^_`{|}~@x.y>", 0, "!#$%&'*+-/=?^_`{|}~@x.y", ""},
	    {"<User@EXAMPLE.Org>", 0, "User@EXAMPLE.Org", ""},
	    {"<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", ""},
	    {"<a@[IPv6:2001:db8::1]>", 0, "a@[IPv6:2001:db8::1]", ""},
	    {"<a@[ipv6:::1]>", 0, "a@[ipv6:::1]", ""},
	    {"<a@x-y.z9>", 0, "a@x-y.z9", ""},
	};
	const char *params, *err;
	char *addr;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		addr = NULL;
		err = "";
		if (addr_parse_path(cases[i].in, cases[i].allow_empty, &addr,
		        &params, &err) < 0) {
			printf("# case %zu (%s): %s\n", i, cases[i].in, err);
			CHECK(!"parse failed");
			continue;
		}
		CHECK_STR(addr, cases[i].addr);
		CHECK_STR(params, cases[i].params);
		free(addr);
	}
}

static void
test_bad(void)
{
	static const struct {
		const char *in;
		int allow_empty;
		const char *error;
	} cases[] = {
	    {"a@b.c", 0, "missing <"},
	    {"", 0, "missing <"},
	    {"\t<a@b.c>", 0, "missing <"},
	    {"<a@b.c", 0, "missing >"},
	    {"<a@b.c>>", 0, "garbage after address"},
	    {"<<a@b.c>>", 0, "bad address syntax"},
	    {"<a@b.c>x", 0, "garbage after address"},
	    {"<a @b.c>", 0, "bad address syntax"},
	    {"< a@b.c>", 0, "bad address syntax"},
	    {"<a@ b.c>", 0, "bad domain"},
	    {"<a@b.c >", 0, "bad domain"},
	    {"<a b@c.d>", 0, "bad address syntax"},
	    {"<>", 0, "empty address not allowed"},
	    {"<> x", 0, "empty address not allowed"},
	    {"<a\x01@b.c>", 0, "bad address syntax"},
	    {"<a@b\x7f.c>", 0, "bad domain"},
	    {"<a@b.c>\r", 0, "garbage after address"},
	    {"<a\n@b.c>", 0, "bad address syntax"},
	    {"<a\r@b.c>", 0, "bad address syntax"},
	    {"<\"a\nb\"@b.c>", 0, "bad address syntax"},
	    {"<\"a\rb\"@b.c>", 0, "bad address syntax"},
	    {"<\"ab@b.c>", 0, "bad address syntax"},
	    {"<\"a\\\x01\"@b.c>", 0, "bad address syntax"},
	    {"<a\xc3\xa9@b.c>", 0, "non-ASCII address without SMTPUTF8"},
	    {"<.a@b.c>", 0, "bad address syntax"},
	    {"<a.@b.c>", 0, "bad address syntax"},
	    {"<a..b@b.c>", 0, "bad address syntax"},
	    {"<a@>", 0, "bad domain"},
	    {"<a@b..c>", 0, "bad domain"},
	    {"<a@-b.c>", 0, "bad domain"},
	    {"<a@b-.c>", 0, "bad domain"},
	    {"<a@b.c.>", 0, "bad domain"},
	    {"<a@b_c.d>", 0, "bad domain"},
	    {"<a@[1.2.3]>", 0, "bad domain"},
	    {"<a@[1.2.3.256]>", 0, "bad domain"},
	    {"<a@[IPv6:1.2.3.4]>", 0, "bad domain"},
	    {"<a@[IPv6:zz::1]>", 0, "bad domain"},
	    {"<a@[tag:content]>", 0, "bad domain"},
	    {"<a@[1.2.3.4>", 0, "bad domain"},
	    {"<@:a@b>", 0, "bad source route"},
	    {"<@r1,r2:a@b>", 0, "bad source route"},
	    {"<@r1 a@b>", 0, "bad source route"},
	    {"<@r1:>", 1, "bad address syntax"},
	    {"<@@:a@b>", 0, "bad source route"},
	};
	const char *params, *err;
	char *addr;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		addr = NULL;
		err = "";
		CHECK_INT(addr_parse_path(cases[i].in, cases[i].allow_empty,
		              &addr, &params, &err),
		    -1);
		CHECK(addr == NULL);
		if (strcmp(err, cases[i].error) != 0) {
			printf("# case %zu: got \"%s\", want \"%s\"\n", i, err,
			    cases[i].error);
			CHECK(!"error text");
		}
		free(addr);
	}
}

static void
test_lengths(void)
{
	struct buf b;
	const char *params, *err;
	char *addr = NULL, *label63;
	struct {
		char *in;
		const char *error; /* NULL: accepted */
	} cases[10];
	size_t i;

	buf_init(&b, 4096);
	label63 = xstrdup(rep('d', 63));
	/* 64-octet local part is fine, 65 is not */
	cases[0].in = xasprintf("<%s@b.c>", rep('l', 64));
	cases[0].error = NULL;
	cases[1].in = xasprintf("<%s@b.c>", rep('l', 65));
	cases[1].error = "local part too long";
	/* a 252-octet domain in a 256-octet path */
	cases[2].in = xasprintf("<%s@%s.%s.%s.%s>", rep('l', 1), label63,
	    label63, label63, rep('e', 60));
	cases[2].error = NULL;
	/* a domain over 255 octets */
	cases[3].in = xasprintf(
	    "<a@%s.%s.%s.%s>", label63, label63, label63, rep('e', 64));
	cases[3].error = "domain too long";
	/* local 64 + domain 250: path over 256 */
	cases[4].in = xasprintf("<%s@%s.%s.%s.%s>", rep('l', 64), label63,
	    label63, label63, rep('e', 58));
	cases[4].error = "address too long";
	/* a 64-octet label */
	cases[5].in = xasprintf("<a@%s.c>", rep('e', 64));
	cases[5].error = "bad domain";
	/* the 256-octet path of case 2 with one more octet */
	cases[6].in = xasprintf("<%s@%s.%s.%s.%s>", rep('l', 2), label63,
	    label63, label63, rep('e', 60));
	cases[6].error = "address too long";
	/* quoted local parts count every octet, quotes and escapes too */
	cases[7].in = xasprintf("<\"%s\\\"\"@b.c>", rep('q', 60));
	cases[7].error = NULL;
	cases[8].in = xasprintf("<\"%s\\\"\"@b.c>", rep('q', 61));
	cases[8].error = "local part too long";
	/* an address literal as the whole domain, at the 256-octet edge */
	cases[9].in = xasprintf("<%s@[IPv6:2001:db8::1]>", rep('l', 64));
	cases[9].error = NULL;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = "";
		addr = NULL;
		if (cases[i].error == NULL) {
			CHECK_INT(addr_parse_path(
			              cases[i].in, 0, &addr, &params, &err),
			    0);
			CHECK(addr != NULL &&
			      strlen(addr) + 2 == strlen(cases[i].in));
		} else {
			CHECK_INT(addr_parse_path(
			              cases[i].in, 0, &addr, &params, &err),
			    -1);
			if (strcmp(err, cases[i].error) != 0) {
				printf("# case %zu: got \"%s\"\n", i, err);
				CHECK(!"error text");
			}
		}
		free(addr);
		free(cases[i].in);
	}
	free(label63);
	buf_free(&b);
}

static void
test_split(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *local, *domain;
	} cases[] = {
	    {"a@B.Example", 0, "a", "b.example"},
	    {"User@x", 0, "User", "x"},
	    {"\"x@y\"@z.org", 0, "\"x@y\"", "z.org"},
	    {"postmaster", 0, "postmaster", NULL},
	    /* An '@' inside quotes never splits (the fuzzer's find). */
	    {"\"root@localhost\"", 0, "\"root@localhost\"", NULL},
	    {"\"a\\\"@b\"@c", 0, "\"a\\\"@b\"", "c"},
	    {"@b.c", -1, NULL, NULL},
	    {"a@", -1, NULL, NULL},
	    {"", -1, NULL, NULL},
	};
	char *local, *domain, *in;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(
		    addr_split(cases[i].in, &local, &domain), cases[i].ret);
		if (cases[i].local != NULL)
			CHECK_STR(local, cases[i].local);
		else
			CHECK(local == NULL);
		if (cases[i].domain != NULL)
			CHECK_STR(domain, cases[i].domain);
		else
			CHECK(domain == NULL);
		free(local);
		free(domain);
	}
	in = xasprintf("%s@b.c", rep('l', 65));
	CHECK_INT(addr_split(in, &local, &domain), -1);
	free(in);
	in = xasprintf("a@%s", rep('d', 256));
	CHECK_INT(addr_split(in, &local, &domain), -1);
	free(in);
}

/* RFC 6531: UTF-8 only with SMTPUTF8, and then only valid UTF-8. */
static void
test_utf8(void)
{
	static const struct {
		const char *in;
		unsigned flags;
		int ret;
		const char *addr;
	} cases[] = {
	    {"<j\xc3\xb6s\xc3\xa9@example.test>", ADDR_UTF8_OK, 0,
	        "j\xc3\xb6s\xc3\xa9@example.test"},
	    {"<user@b\xc3\xbc" "cher.example>", ADDR_UTF8_OK, 0,
	        "user@b\xc3\xbc" "cher.example"},
	    {"<\"\xc3\xa9 x\"@h>", ADDR_UTF8_OK, 0, "\"\xc3\xa9 x\"@h"},
	    {"<a.\xc3\xa9@h>", ADDR_UTF8_OK, 0, "a.\xc3\xa9@h"},
	    {"<j\xc3\xb6s\xc3\xa9@example.test>", 0, -1, NULL},
	    {"<\xc3@h>", ADDR_UTF8_OK, -1, NULL},       /* cut sequence */
	    {"<a\xc0\xaf" "b@h>", ADDR_UTF8_OK, -1, NULL}, /* overlong */
	    {"<a@\xff.h>", ADDR_UTF8_OK, -1, NULL},
	};
	const char *params, *error;
	char *addr;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		addr = NULL;
		if (addr_parse_path(cases[i].in, cases[i].flags, &addr, &params,
		        &error) != cases[i].ret) {
			printf("#   case %zu\n", i);
			CHECK(!"addr_parse_path");
		} else if (cases[i].ret == 0) {
			CHECK_STR(addr, cases[i].addr);
		} else if (cases[i].flags == 0) {
			CHECK(error == addr_err_needs_utf8);
		}
		free(addr);
	}
}

static void
test_fold(void)
{
	static const struct {
		const char *in, *local, *addr;
	} cases[] = {
	    {"Alice@Example.TEST", "alice", "alice@example.test"},
	    {"\"Alice\"@host", "alice", "alice@host"},
	    {"\"a\\\"B\"@h", "a\"b", "\"a\\\"b\"@h"},
	    {"\"root@LOCALHOST\"", "root@localhost", "\"root@localhost\""},
	    {"PostMaster", "postmaster", "postmaster"},
	    {"\"x\"y@h", "\"x\"y", "\"x\"y@h"},
	    /* Unquoting must not make two mailboxes one (fuzz_addr). */
	    {"\"A@b\"@c", "a@b", "\"a@b\"@c"},
	    {"\"a@B@c\"", "a@b@c", "\"a@b@c\""},
	    {"\"a b\"@c", "a b", "\"a b\"@c"},
	};
	char *local, *domain, *f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(addr_split(cases[i].in, &local, &domain), 0);
		f = addr_local_fold(local);
		CHECK_STR(f, cases[i].local);
		free(f);
		f = addr_fold(cases[i].in);
		CHECK_STR(f, cases[i].addr);
		free(f);
		free(local);
		free(domain);
	}
}

static void
test_domain(void)
{
	static const struct {
		const char *in;
		int valid;
	} cases[] = {
	    {"example.org", 1},
	    {"localhost", 1},
	    {"a-b.c-d.e", 1},
	    {"123.example", 1},
	    {"[127.0.0.1]", 1},
	    {"[IPv6:::1]", 1},
	    {"[IPv6:2001:db8::192.0.2.1]", 1},
	    {"", 0},
	    {".", 0},
	    {"a.", 0},
	    {".a", 0},
	    {"a..b", 0},
	    {"-a.b", 0},
	    {"a-.b", 0},
	    {"a_b.c", 0},
	    {"a b", 0},
	    {"[127.0.0.1", 0},
	    {"127.0.0.1]", 0},
	    {"[]", 0},
	    {"[::1]", 0},
	    {"[IPv6:]", 0},
	    {"[IPv6:127.0.0.1]", 0},
	    {"[999.0.0.1]", 0},
	};
	char *s;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (addr_domain_valid(cases[i].in) != cases[i].valid) {
			printf("# case %zu: %s\n", i, cases[i].in);
			CHECK(!"addr_domain_valid");
		}
	s = xasprintf("%s.%s.%s.%s", rep('a', 63), rep('b', 63), rep('c', 63),
	    rep('d', 63));
	CHECK_INT(addr_domain_valid(s), 1); /* 255 */
	free(s);
	s = xasprintf("%s.%s.%s.%s", rep('a', 63), rep('b', 63), rep('c', 63),
	    rep('d', 64));
	CHECK_INT(addr_domain_valid(s), 0);
	free(s);
	s = xasprintf("%s.x", rep('a', 64));
	CHECK_INT(addr_domain_valid(s), 0);
	free(s);
}

static void
test_strip_extension(void)
{
	char *s;

	var_recipient_delimiter = "+";
	s = addr_strip_extension("alice+lists@example.test");
	CHECK_STR(s, "alice@example.test");
	free(s);
	s = addr_strip_extension("alice+a+b");
	CHECK_STR(s, "alice");
	free(s);
	CHECK(addr_strip_extension("alice@example.test") == NULL);
	CHECK(addr_strip_extension("+x@example.test") == NULL);
	/* A delimiter in the domain is not an extension. */
	CHECK(addr_strip_extension("alice@ex+ample.test") == NULL);
	var_recipient_delimiter = "-+";
	s = addr_strip_extension("bob-owner@example.test");
	CHECK_STR(s, "bob@example.test");
	free(s);
	var_recipient_delimiter = "";
	CHECK(addr_strip_extension("alice+x@example.test") == NULL);
}

UNIT_MAIN(UNIT_CASE(test_good), UNIT_CASE(test_bad), UNIT_CASE(test_lengths),
    UNIT_CASE(test_split), UNIT_CASE(test_utf8), UNIT_CASE(test_fold),
    UNIT_CASE(test_domain), UNIT_CASE(test_strip_extension))
