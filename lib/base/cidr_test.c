/* SPDX-License-Identifier: MIT */
/* Networks: parsing (with Postfix's IPv6 brackets), host-bit errors,
 * matching across prefix boundaries and IPv4-mapped IPv6 clients. */
#include <sys/socket.h>

#include "base/cidr.h"
#include "unit.h"

static int
in(const char *net, const char *addr)
{
	struct cidr n, h;
	const char *err;

	if (cidr_parse(net, &n, &err) < 0 || cidr_addr(addr, &h) < 0)
		return -1;
	return cidr_match(&n, &h);
}

static void
test_cidr_parse(void)
{
	struct cidr c;
	const char *err = NULL;
	char text[CIDR_TEXT_SIZE];

	CHECK_INT(cidr_parse("127.0.0.0/8", &c, &err), 0);
	CHECK_INT(c.family, AF_INET);
	CHECK_INT(c.prefix, 8);
	CHECK_INT(cidr_parse("[::1]/128", &c, &err), 0);
	CHECK_INT(c.family, AF_INET6);
	CHECK_INT(cidr_parse("2001:db8::/32", &c, &err), 0);
	CHECK_INT(cidr_parse("192.0.2.1", &c, &err), 0);
	CHECK_INT(c.prefix, 32);
	CHECK_INT(cidr_parse("127.0.0.1/8", &c, &err), -1);
	CHECK_STR(err, "non-null host address bits");
	cidr_format(&c, text, sizeof(text));
	CHECK_STR(text, "127.0.0.0/8");
	CHECK_INT(cidr_parse("[2001:db8::1]/32", &c, &err), -1);
	cidr_format(&c, text, sizeof(text));
	CHECK_STR(text, "2001:db8::/32");
	CHECK_INT(cidr_parse("10.0.0.0/33", &c, &err), -1);
	CHECK_STR(err, "bad network prefix length");
	CHECK_INT(cidr_parse("10.0.0.0/", &c, &err), -1);
	CHECK_INT(cidr_parse("10.0.0.0/8x", &c, &err), -1);
	CHECK_INT(cidr_parse("example.com", &c, &err), -1);
	CHECK_STR(err, "not an IPv4 or IPv6 address");
	CHECK_INT(cidr_parse("[10.0.0.1]", &c, &err), -1);
	CHECK_INT(cidr_parse("", &c, &err), -1);
	CHECK_INT(cidr_parse("0.0.0.0/0", &c, &err), 0);
	CHECK_INT(cidr_parse("10.1.2.128/25", &c, &err), 0);
	CHECK_INT(cidr_parse("10.1.2.64/25", &c, &err), -1);
}

static void
test_cidr_match(void)
{
	CHECK_INT(in("127.0.0.0/8", "127.9.8.7"), 1);
	CHECK_INT(in("127.0.0.0/8", "128.0.0.1"), 0);
	CHECK_INT(in("10.1.2.128/25", "10.1.2.200"), 1);
	CHECK_INT(in("10.1.2.128/25", "10.1.2.127"), 0);
	CHECK_INT(in("0.0.0.0/0", "192.0.2.1"), 1);
	CHECK_INT(in("192.0.2.1", "192.0.2.1"), 1);
	CHECK_INT(in("192.0.2.1", "192.0.2.2"), 0);
	CHECK_INT(in("[::1]/128", "::1"), 1);
	CHECK_INT(in("2001:db8::/32", "2001:db8:ffff::1"), 1);
	CHECK_INT(in("2001:db8::/33", "2001:db8:8000::1"), 0);
	CHECK_INT(in("127.0.0.0/8", "::ffff:127.0.0.2"), 1);
	CHECK_INT(in("::/0", "127.0.0.1"), 0);
	CHECK_INT(in("127.0.0.0/8", "::1"), 0);
}

UNIT_MAIN(UNIT_CASE(test_cidr_parse), UNIT_CASE(test_cidr_match))
