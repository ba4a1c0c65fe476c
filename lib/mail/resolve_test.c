/* SPDX-License-Identifier: MIT */
/*
 * Tests of recipient classification and virtual maildir paths, with the
 * parameters set through overrides and a real config_load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "mail/params.h"
#include "mail/resolve.h"

static void
load(void)
{
	char dir[] = "/tmp/resolve_test.XXXXXX";
	const char *err = "";

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	config_override("mydestination", "$myhostname, Example.COM localhost");
	config_override("myhostname", "mx.example.net");
	config_override("virtual_mailbox_domains", "virt.example,other.test");
	config_override("virtual_mailbox_base", "/srv/vmail");
	if (config_load(dir, &err) < 0) {
		printf("# config_load: %s\n", err);
		exit(1);
	}
	rmdir(dir);
}

static void
test_classes(void)
{
	static const struct {
		const char *addr;
		int ret;
		enum resolve_class class;
		const char *local, *domain;
	} cases[] = {
	    {"joe@example.com", 0, RESOLVE_LOCAL, "joe", "example.com"},
	    {"Joe@EXAMPLE.com", 0, RESOLVE_LOCAL, "joe", "example.com"},
	    {"\"Joe\"@example.com", 0, RESOLVE_LOCAL, "joe", "example.com"},
	    {"\"root@localhost\"", 0, RESOLVE_LOCAL, "root@localhost", ""},
	    {"root@localhost", 0, RESOLVE_LOCAL, "root", "localhost"},
	    {"a@mx.example.net", 0, RESOLVE_LOCAL, "a", "mx.example.net"},
	    {"postmaster", 0, RESOLVE_LOCAL, "postmaster", ""},
	    {"u@virt.example", 0, RESOLVE_VIRTUAL, "u", "virt.example"},
	    {"U.V@Other.Test", 0, RESOLVE_VIRTUAL, "u.v", "other.test"},
	    {"x@example.org", 0, RESOLVE_REMOTE, "x", "example.org"},
	    {"X@Example.org", 0, RESOLVE_REMOTE, "X", "example.org"},
	    {"x@sub.example.com", 0, RESOLVE_REMOTE, "x", "sub.example.com"},
	    {"x@virt.example.evil", 0, RESOLVE_REMOTE, "x",
	        "virt.example.evil"},
	    {"@example.com", -1, RESOLVE_REMOTE, NULL, NULL},
	    {"x@", -1, RESOLVE_REMOTE, NULL, NULL},
	};
	struct resolve_result r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(resolve_address(cases[i].addr, &r), cases[i].ret);
		if (cases[i].ret == 0) {
			if ((int)r.class != (int)cases[i].class) {
				printf("# case %zu: %s class %d\n", i,
				    cases[i].addr, (int)r.class);
				CHECK(!"class");
			}
			CHECK_STR(r.local, cases[i].local);
			CHECK_STR(r.domain, cases[i].domain);
		} else {
			CHECK(r.local == NULL && r.domain == NULL);
		}
		resolve_free(&r);
		CHECK(r.local == NULL && r.domain == NULL);
	}
}

static void
test_maildir(void)
{
	static const struct {
		const char *local, *domain, *path;
	} cases[] = {
	    {"joe", "virt.example", "/srv/vmail/virt.example/joe/Maildir/"},
	    {"Joe.Smith", "Virt.Example",
	        "/srv/vmail/virt.example/joe.smith/Maildir/"},
	    {"a/b", "virt.example", NULL},
	    {"joe", "a/b", NULL},
	    {"..", "virt.example", NULL},
	    {".", "virt.example", NULL},
	    {"joe", "..", NULL},
	    {"", "virt.example", NULL},
	    {"joe", "", NULL},
	};
	size_t i;
	char *p;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = resolve_virtual_maildir(cases[i].local, cases[i].domain);
		if (cases[i].path != NULL)
			CHECK_STR(p, cases[i].path);
		else
			CHECK(p == NULL);
		free(p);
	}
}

static void
test_empty_lists(void)
{
	struct resolve_result r;
	const char *err = "";
	char dir[] = "/tmp/resolve_test.XXXXXX";

	CHECK(mkdtemp(dir) != NULL);
	config_override("mydestination", "");
	config_override("virtual_mailbox_domains", "");
	CHECK_INT(config_load(dir, &err), 0);
	rmdir(dir);
	CHECK_INT(resolve_address("joe@example.com", &r), 0);
	CHECK_INT(r.class, RESOLVE_REMOTE);
	resolve_free(&r);
	CHECK_INT(resolve_address("joe", &r), 0);
	CHECK_INT(r.class, RESOLVE_LOCAL);
	resolve_free(&r);
}

static void
test_setup(void)
{
	load();
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_classes),
    UNIT_CASE(test_maildir), UNIT_CASE(test_empty_lists))
