/* SPDX-License-Identifier: MIT */
/* netlist: the mynetworks syntax over cidr and lookup tables. */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "mail/netlist.h"
#include "unit.h"

static void
test_setup(void)
{
	log_init("netlist_test", LOG_DEST_STDERR);
}

static void
test_netlist(void)
{
	struct netlist *l;
	char *err = NULL;

	l = netlist_create("127.0.0.0/8, !10.1.0.0/16 10.0.0.0/8 [::1]/128 "
	                   "2001:db8::/32 192.0.2.7 "
	                   "inline:{ 198.51.100.1=OK }",
	    "mynetworks", &err);
	CHECK(l != NULL);
	CHECK_INT(netlist_match(l, "127.1.2.3"), 1);
	CHECK_INT(netlist_match(l, "10.2.0.1"), 1);
	CHECK_INT(netlist_match(l, "10.1.0.1"), 0); /* excluded first */
	CHECK_INT(netlist_match(l, "::1"), 1);
	CHECK_INT(netlist_match(l, "2001:db8:1::2"), 1);
	CHECK_INT(netlist_match(l, "192.0.2.7"), 1);
	CHECK_INT(netlist_match(l, "192.0.2.8"), 0);
	CHECK_INT(netlist_match(l, "198.51.100.1"), 1);
	CHECK_INT(netlist_match(l, "198.51.100.2"), 0);
	CHECK_INT(netlist_match(l, "not-an-address"), 0);
	netlist_free(&l);
	CHECK(l == NULL);
	l = netlist_create("", "mynetworks", &err);
	CHECK(l != NULL);
	CHECK_INT(netlist_match(l, "127.0.0.1"), 0);
	netlist_free(&l);
	CHECK(netlist_create("127.0.0.1/8", "mynetworks", &err) == NULL);
	CHECK(err != NULL && strstr(err, "mynetworks") != NULL &&
	      strstr(err, "non-null host address bits") != NULL);
	free(err);
	err = NULL;
	CHECK(netlist_create("nosuch:/x", "mynetworks", &err) == NULL);
	CHECK(err != NULL);
	free(err);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_netlist))
