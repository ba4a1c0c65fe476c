/* SPDX-License-Identifier: MIT */
/*
 * A table of header values and the addresses sendmail -t takes from
 * them: display names, comments, quotes, groups, routes, folding, and
 * the limits; each parsed whole and again split into lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/rfc822_addr.h"
#include "unit.h"

#define OUT_MAX 512

struct collect {
	char out[OUT_MAX];
	size_t len;
};

/* Joins the addresses with '|'. */
static void
collect(void *ctx, const char *addr, size_t len)
{
	struct collect *c = ctx;

	CHECK(strlen(addr) == len && len > 0);
	if (c->len + len + 2 > sizeof(c->out))
		return;
	if (c->len > 0)
		c->out[c->len++] = '|';
	memcpy(c->out + c->len, addr, len);
	c->len += len;
	c->out[c->len] = '\0';
}

static void
test_lists(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *want;
	} cases[] = {
	    {"bob@example.com", 1, "bob@example.com"},
	    {" Bob <bob@example.com>", 1, "bob@example.com"},
	    {"\"Smith, J\" <j@x.test>, alice@y.test (Alice, A.)", 2,
	        "j@x.test|alice@y.test"},
	    {"a@b.test,\r\n\tc@d.test", 2, "a@b.test|c@d.test"},
	    {"a@b.test,\n c@d.test\n", 2, "a@b.test|c@d.test"},
	    {"undisclosed-recipients:;", 0, ""},
	    {"team: a@x.test, B <b@x.test>;, c@y.test", 3,
	        "a@x.test|b@x.test|c@y.test"},
	    {"<@relay.test,@r2.test:u@d.test>", 1, "u@d.test"},
	    {"\"john doe\"@x.test", 1, "\"john doe\"@x.test"},
	    {"\"a\\\"b\"@x.test", 1, "\"a\\\"b\"@x.test"},
	    {"u@[192.0.2.1]", 1, "u@[192.0.2.1]"},
	    {"root", 1, "root"},
	    {"x (nested (comment) here) @ y . test", 1, "x@y.test"},
	    {"Bob <bob@x.test, al@y.test", 2, "bob@x.test|al@y.test"},
	    {"", 0, ""},
	    {" , ,, ", 0, ""},
	    {"(unterminated comment a@b", 0, ""},
	    {"\"unterminated a@b", 1, "\"unterminated a@b"},
	    {"a@b.test; c@d.test", 2, "a@b.test|c@d.test"},
	};
	struct collect c;
	const char *err;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		err = NULL;
		r = rfc822_addr_list(cases[i].in, strlen(cases[i].in), 100,
		    collect, &c, &err);
		if (r != cases[i].ret)
			printf("#   case %zu: %s\n", i, cases[i].in);
		CHECK_INT(r, cases[i].ret);
		CHECK_STR(c.out, cases[i].want);
	}
}

static void
test_limits(void)
{
	char big[RFC822_ADDR_LEN_MAX + 16];
	struct collect c;
	const char *err = NULL;

	/* Too many addresses. */
	memset(&c, 0, sizeof(c));
	CHECK_INT(rfc822_addr_list("a@b, c@d, e@f", 13, 2, collect, &c, &err),
	    -1);
	CHECK_STR(err, "too many addresses");
	CHECK_STR(c.out, "a@b|c@d");
	/* An address one byte too long, then one that fits. */
	memset(big, 'x', sizeof(big));
	memset(&c, 0, sizeof(c));
	CHECK_INT(rfc822_addr_list(
	              big, RFC822_ADDR_LEN_MAX + 1, 10, collect, &c, &err),
	    -1);
	CHECK_STR(err, "address too long");
	memset(&c, 0, sizeof(c));
	CHECK_INT(rfc822_addr_list(big, RFC822_ADDR_LEN_MAX, 10, collect, &c,
	              &err),
	    1);
	/* A long display name does not matter when <> follows. */
	memcpy(big + RFC822_ADDR_LEN_MAX + 1, "<a@b>", 5);
	memset(&c, 0, sizeof(c));
	CHECK_INT(rfc822_addr_list(
	              big, RFC822_ADDR_LEN_MAX + 6, 10, collect, &c, &err),
	    1);
	CHECK_STR(c.out, "a@b");
	/* Embedded NULs are just bytes. */
	memset(&c, 0, sizeof(c));
	CHECK_INT(rfc822_addr_list("a\0b, c", 6, 10, collect, &c, &err), 2);
	CHECK_STR(c.out, "ab|c");
}

UNIT_MAIN(UNIT_CASE(test_lists), UNIT_CASE(test_limits))
