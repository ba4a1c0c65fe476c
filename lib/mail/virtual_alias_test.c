/* SPDX-License-Identifier: MIT */
/*
 * Tests of the virtual tables: alias expansion (fan-out, catch-all,
 * chains, self-reference, loops, limits, values that are not addresses,
 * duplicates), alias domains, the resolver's alias class, and
 * virtual_mailbox_maps paths; all with inline: tables and a real
 * config_load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"

#define ALIASES                                                              \
	"inline:{ {group@ex.test = alice@virt.test, bob@virt.test "          \
	"carol@virt.test}, {@catch.test = all@virt.test}, "                  \
	"{a@ex.test = b@ex.test}, {b@ex.test = c@ex.test}, "                 \
	"{c@ex.test = <final@virt.test>}, "                                  \
	"{l1@ex.test = l2@ex.test}, {l2@ex.test = l1@ex.test}, "             \
	"{c1@ex.test = c2@ex.test}, {c2@ex.test = c1@ex.test, c3@ex.test}, " \
	"{c3@ex.test = out@virt.test, c1@ex.test}, nothing@ex.test=, "       \
	"{self@ex.test = self@ex.test, copy@virt.test}, "                    \
	"{back@ex.test = fwd@ex.test, back@ex.test}, "                       \
	"{fwd@ex.test = back@ex.test}, "                                     \
	"{pipe@ex.test = |/bin/touch}, {file@ex.test = /tmp/f}, "            \
	"{incl@ex.test = :include:/etc/x}, "                                 \
	"{dup@ex.test = group@ex.test, alice@virt.test, Alice@VIRT.test}, "  \
	"{bare@ex.test = joe}, {wide@ex.test = w1@x.test w2@x.test "         \
	"w3@x.test}, postmaster=root@virt.test, alias.test=yes }"

#define MAILBOXES                                                      \
	"inline:{ alice@virt.test=virt.test/alice/, @mb.test=catch/, " \
	"mbox@virt.test=virt.test/mbox, abs@virt.test=/etc/, "         \
	"dots@virt.test=a/../b/, empty@virt.test=a//b/ }"

static void
load(void)
{
	char dir[] = "/tmp/virtual_alias_test.XXXXXX";
	const char *err = "";

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	config_override("mydestination", "mx.example.net, localhost");
	config_override("myhostname", "mx.example.net");
	config_override("myorigin", "origin.test");
	config_override("virtual_mailbox_domains", "virt.test, mb.test");
	config_override("virtual_mailbox_base", "/srv/vmail");
	config_override("virtual_alias_maps", ALIASES);
	config_override("virtual_mailbox_maps", MAILBOXES);
	if (config_load(dir, &err) < 0) {
		printf("# config_load: %s\n", err);
		exit(1);
	}
	rmdir(dir);
}

/* Expands addr; checks status, aliased and the addresses in order. */
static void
expect(const char *addr, enum virtual_alias_status status, int aliased,
    const char *const *want)
{
	struct virtual_alias_expansion x;
	int i, n = 0;

	while (want != NULL && want[n] != NULL)
		n++;
	virtual_alias_expand(addr, &x);
	if ((int)x.status != (int)status)
		printf("# %s: status %d (%s)\n", addr, (int)x.status,
		    x.detail != NULL ? x.detail : "");
	CHECK_INT(x.status, status);
	CHECK_INT(x.aliased, aliased);
	if (status != VIRTUAL_ALIAS_OK) {
		CHECK(x.detail != NULL);
		CHECK(x.naddr == 0 && x.addrs == NULL);
	} else {
		CHECK_INT(x.naddr, n);
		for (i = 0; i < n && i < x.naddr; i++)
			CHECK_STR(x.addrs[i], want[i]);
	}
	virtual_alias_expansion_free(&x);
}

static void
test_expand(void)
{
	static const char *const none[] = {"nobody@ex.test", NULL};
	static const char *const group[] = {
	    "alice@virt.test", "bob@virt.test", "carol@virt.test", NULL};
	static const char *const catch[] = {"all@virt.test", NULL};
	static const char *const chain[] = {"final@virt.test", NULL};
	static const char *const self[] = {
	    "self@ex.test", "copy@virt.test", NULL};
	static const char *const back[] = {"back@ex.test", NULL};
	static const char *const cycle[] = {"out@virt.test", NULL};
	static const char *const dup[] = {
	    "alice@virt.test", "bob@virt.test", "carol@virt.test", NULL};
	static const char *const bare[] = {"joe@origin.test", NULL};
	static const char *const pm[] = {"root@virt.test", NULL};
	static const char *const pm_remote[] = {"postmaster@ex.test", NULL};

	CHECK(virtual_alias_active());
	expect("nobody@ex.test", VIRTUAL_ALIAS_OK, 0, none);
	expect("group@ex.test", VIRTUAL_ALIAS_OK, 1, group);
	expect("Group@EX.test", VIRTUAL_ALIAS_OK, 1, group);
	expect("anyone@catch.test", VIRTUAL_ALIAS_OK, 1, catch);
	expect("a@ex.test", VIRTUAL_ALIAS_OK, 1, chain);
	expect("self@ex.test", VIRTUAL_ALIAS_OK, 1, self);
	/* back maps to itself too: the way back ends there, no loop. */
	expect("back@ex.test", VIRTUAL_ALIAS_OK, 1, back);
	expect("fwd@ex.test", VIRTUAL_ALIAS_OK, 1, back);
	expect("dup@ex.test", VIRTUAL_ALIAS_OK, 1, dup);
	expect("bare@ex.test", VIRTUAL_ALIAS_OK, 1, bare);
	/* "user" keys only for $mydestination domains. */
	expect("postmaster@localhost", VIRTUAL_ALIAS_OK, 1, pm);
	expect("postmaster@ex.test", VIRTUAL_ALIAS_OK, 0, pm_remote);
	expect("l1@ex.test", VIRTUAL_ALIAS_LOOP, 1, NULL);
	/* A cycle with a way out: the way out. */
	expect("c1@ex.test", VIRTUAL_ALIAS_OK, 1, cycle);
	expect("nothing@ex.test", VIRTUAL_ALIAS_BAD, 1, NULL);
	expect("pipe@ex.test", VIRTUAL_ALIAS_BAD, 1, NULL);
	expect("file@ex.test", VIRTUAL_ALIAS_BAD, 1, NULL);
	expect("incl@ex.test", VIRTUAL_ALIAS_BAD, 1, NULL);
}

static void
test_limits(void)
{
	static const char *const chain[] = {"final@virt.test", NULL};
	static const char *const group[] = {
	    "alice@virt.test", "bob@virt.test", "carol@virt.test", NULL};
	long long width = var_virtual_alias_expansion_limit;
	long long depth = var_virtual_alias_recursion_limit;

	var_virtual_alias_expansion_limit = 2;
	expect("wide@ex.test", VIRTUAL_ALIAS_TOO_MANY, 1, NULL);
	var_virtual_alias_expansion_limit = 3;
	expect("group@ex.test", VIRTUAL_ALIAS_OK, 1, group);
	var_virtual_alias_expansion_limit = width;
	/* a -> b -> c -> final: three nested expansions. */
	var_virtual_alias_recursion_limit = 2;
	expect("a@ex.test", VIRTUAL_ALIAS_LOOP, 1, NULL);
	var_virtual_alias_recursion_limit = 3;
	expect("a@ex.test", VIRTUAL_ALIAS_OK, 1, chain);
	var_virtual_alias_recursion_limit = depth;
}

static void
test_replies(void)
{
	static const struct {
		enum virtual_alias_status status;
		const char *reply;
	} cases[] = {
	    {VIRTUAL_ALIAS_TEMPFAIL,
	        "451 4.3.0 <a@b>: Temporary lookup failure"},
	    {VIRTUAL_ALIAS_LOOP, "550 5.4.6 <a@b>: "},
	    {VIRTUAL_ALIAS_TOO_MANY, "550 5.5.3 <a@b>: "},
	    {VIRTUAL_ALIAS_BAD, "550 5.1.3 <a@b>: "},
	};
	struct virtual_alias_expansion x;
	size_t i;
	char *r;

	memset(&x, 0, sizeof(x));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x.status = cases[i].status;
		r = virtual_alias_reply("a@b", &x);
		CHECK(strncmp(r, cases[i].reply, strlen(cases[i].reply)) == 0);
		free(r);
	}
}

static void
test_domains(void)
{
	struct resolve_result r;
	const char *err;

	/* The default $virtual_alias_maps: keys that are domains. */
	CHECK_INT(virtual_alias_domain("alias.test", &err), 1);
	CHECK_INT(virtual_alias_domain("ex.test", &err), 0);
	CHECK_INT(virtual_alias_domain("virt.test", &err), 0);
	CHECK_INT(resolve_address("Joe@Alias.Test", &r), 0);
	CHECK_INT(r.class, RESOLVE_ALIAS);
	CHECK_STR(r.local, "joe");
	resolve_free(&r);
	CHECK_INT(resolve_address("joe@virt.test", &r), 0);
	CHECK_INT(r.class, RESOLVE_VIRTUAL);
	resolve_free(&r);
	CHECK_INT(resolve_address("joe@ex.test", &r), 0);
	CHECK_INT(r.class, RESOLVE_REMOTE);
	resolve_free(&r);
}

/* An explicit list: names only, and a table that is not one. */
static void
test_domain_list(void)
{
	char *saved = var_virtual_alias_domains, *err = NULL;
	const char *e;

	var_virtual_alias_domains = "Ex.Test, other.test";
	CHECK_INT(virtual_alias_tables_init(&err), 0);
	CHECK_INT(virtual_alias_domain("ex.test", &e), 1);
	CHECK_INT(virtual_alias_domain("other.test", &e), 1);
	CHECK_INT(virtual_alias_domain("alias.test", &e), 0);
	var_virtual_alias_domains = "/etc/domains";
	CHECK_INT(virtual_alias_tables_init(&err), -1);
	CHECK(err != NULL && strstr(err, "virtual_alias_domains") != NULL);
	free(err);
	var_virtual_alias_domains = saved;
	err = NULL;
	CHECK_INT(virtual_alias_tables_init(&err), 0);
	CHECK_INT(virtual_alias_domain("alias.test", &e), 1);
}

static void
mailbox(const char *addr, int ret, const char *maildir, const char *top,
    int tempfail)
{
	char *m = NULL, *t = NULL;
	const char *err = NULL;
	int tf = -1, r;

	r = virtual_mailbox_find(addr, &m, &t, &tf, &err);
	if (r != ret)
		printf("# %s: %d (%s)\n", addr, r, err != NULL ? err : "");
	CHECK_INT(r, ret);
	CHECK_INT(tf, tempfail);
	if (ret == 1) {
		CHECK_STR(m, maildir);
		CHECK_STR(t, top);
	}
	if (ret < 0)
		CHECK(err != NULL);
	free(m);
	free(t);
}

static void
test_mailbox(void)
{
	CHECK(virtual_mailbox_active());
	mailbox("alice@virt.test", 1, "/srv/vmail/virt.test/alice/",
	    "/srv/vmail/virt.test", 0);
	mailbox("Alice@Virt.Test", 1, "/srv/vmail/virt.test/alice/",
	    "/srv/vmail/virt.test", 0);
	mailbox("x@mb.test", 1, "/srv/vmail/catch/", "/srv/vmail", 0);
	mailbox("nobody@virt.test", 0, NULL, NULL, 0);
	mailbox("mbox@virt.test", -1, NULL, NULL, 0);
	mailbox("abs@virt.test", -1, NULL, NULL, 0);
	mailbox("dots@virt.test", -1, NULL, NULL, 0);
	mailbox("empty@virt.test", -1, NULL, NULL, 0);
}

static void
test_setup(void)
{
	load();
}

static void
test_cleanup(void)
{
	virtual_alias_tables_free();
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_expand), UNIT_CASE(test_limits),
    UNIT_CASE(test_replies), UNIT_CASE(test_domains),
    UNIT_CASE(test_domain_list), UNIT_CASE(test_mailbox),
    UNIT_CASE(test_cleanup))
