/* SPDX-License-Identifier: MIT */
/*
 * Tests of services.conf parsing: a table of good entries with their
 * parsed fields, a table of bad ones with their error text, and loading
 * from a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/services.h"

#define DEFAULT_MAXPROC 100
/* No tern.conf there: every parameter has its default or override. */
#define NO_CONFIG_DIR   "/nonexistent/tern-services-test"

/* $name in the unpriv column expands from these. */
static void
load_config(void)
{
	const char *err = "";

	config_override("vmail_user", "vm");
	config_override("mydestination", "a, b");
	if (config_load(NO_CONFIG_DIR, &err) < 0) {
		printf("# config_load: %s\n", err);
		CHECK(!"config_load");
	}
}

static void
test_good(void)
{
	static const struct {
		const char *text;
		const char *name;
		enum service_type type;
		int private, unpriv, chroot, maxproc, argc;
		const char *argv0, *line, *user;
	} cases[] = {
	    {"smtp inet n y n 2 smtpd", "smtp", SERVICE_INET, 0, 1, 0, 2, 1,
	        "smtpd", "smtp inet n y n 2 smtpd", NULL},
	    {"  # comment\n\n2525\tinet  - - - -   smtpd  -o  a=b\n", "2525",
	        SERVICE_INET, 1, 1, 0, DEFAULT_MAXPROC, 3, "smtpd",
	        "2525 inet - - - - smtpd -o a=b", NULL},
	    {"127.0.0.1:2525 inet n y n - smtpd -o smtpd_banner=x",
	        "127.0.0.1:2525", SERVICE_INET, 0, 1, 0, DEFAULT_MAXPROC, 3,
	        "smtpd", NULL, NULL},
	    {"[::1]:25 inet n y y 10000 /usr/libexec/smtpd", "[::1]:25",
	        SERVICE_INET, 0, 1, 1, 10000, 1, "/usr/libexec/smtpd", NULL,
	        NULL},
	    {"mx.example:smtp inet n - n 1 smtpd", "mx.example:smtp",
	        SERVICE_INET, 0, 1, 0, 1, 1, "smtpd", NULL, NULL},
	    {"qmgr unix y y n 1 qmgr", "qmgr", SERVICE_UNIX, 1, 1, 0, 1, 1,
	        "qmgr", NULL, NULL},
	    {"lo.cal_1-x unix - n - 4 local\r\n", "lo.cal_1-x", SERVICE_UNIX, 1,
	        0, 0, 4, 1, "local", "lo.cal_1-x unix - n - 4 local", NULL},
	    /* A second CR before the LF is not part of the last field. */
	    {"local unix y n n 4 local\r\r\n", "local", SERVICE_UNIX, 1, 0, 0,
	        4, 1, "local", "local unix y n n 4 local", NULL},
	    {"local unix y n n 4\n  local\n# c\n\t -v\n", "local", SERVICE_UNIX,
	        1, 0, 0, 4, 2, "local", "local unix y n n 4 local -v", NULL},
	    /* A user of its own, named or from tern.conf. */
	    {"auth unix y ternauth n 1 auth", "auth", SERVICE_UNIX, 1, 1, 0, 1,
	        1, "auth", "auth unix y ternauth n 1 auth", "ternauth"},
	    {"auth unix y $vmail_user n 1 auth", "auth", SERVICE_UNIX, 1, 1, 0,
	        1, 1, "auth", "auth unix y $vmail_user n 1 auth", "vm"},
	    {"auth unix y ${vmail_user}-x n 1 auth", "auth", SERVICE_UNIX, 1, 1,
	        0, 1, 1, "auth", NULL, "vm-x"},
	    {"a unix y A.b-c_9 n 1 a", "a", SERVICE_UNIX, 1, 1, 0, 1, 1, "a",
	        NULL, "A.b-c_9"},
	    {"a unix y abcdefghijklmnopqrstuvwxyz012345 n 1 a", "a",
	        SERVICE_UNIX, 1, 1, 0, 1, 1, "a", NULL,
	        "abcdefghijklmnopqrstuvwxyz012345"},
	};
	struct service_def *list = NULL;
	const char *err = NULL;
	size_t i;
	int count = -1;

	load_config();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (services_parse(cases[i].text, "services.conf",
		        DEFAULT_MAXPROC, &list, &count, &err) < 0) {
			printf("# case %zu: %s\n", i, err);
			CHECK(!"parse failed");
			continue;
		}
		CHECK_INT(count, 1);
		CHECK_STR(list[0].name, cases[i].name);
		CHECK_INT(list[0].type, cases[i].type);
		CHECK_INT(list[0].private, cases[i].private);
		CHECK_INT(list[0].unpriv, cases[i].unpriv);
		CHECK_INT(list[0].chroot, cases[i].chroot);
		CHECK_INT(list[0].maxproc, cases[i].maxproc);
		CHECK_INT(list[0].argc, cases[i].argc);
		CHECK_STR(list[0].argv[0], cases[i].argv0);
		if (cases[i].user != NULL)
			CHECK_STR(list[0].user, cases[i].user);
		else
			CHECK(list[0].user == NULL);
		CHECK(list[0].argv[list[0].argc] == NULL);
		if (cases[i].line != NULL)
			CHECK_STR(list[0].line, cases[i].line);
		services_free(&list, count);
		CHECK(list == NULL);
	}
}

static void
test_table(void)
{
	static const char text[] = "# name type private unpriv chroot "
	                           "maxproc command\n"
	                           "smtp      inet  n y n 2 smtpd\n"
	                           "587       inet  n y n - smtpd -o a=1\n"
	                           "qmgr      unix  y y n 1 qmgr\n"
	                           "\n"
	                           "smtp      unix  - - n - smtp\n"
	                           "local     unix  y n n 4 local\n";
	struct service_def *list = NULL;
	const char *err = NULL;
	int count = 0;

	CHECK_INT(
	    services_parse(text, "services.conf", 7, &list, &count, &err), 0);
	CHECK_INT(count, 5);
	if (count == 5) {
		CHECK_STR(list[1].name, "587");
		CHECK_INT(list[1].maxproc, 7);
		CHECK_INT(list[1].argc, 3);
		CHECK_STR(list[1].argv[1], "-o");
		CHECK_STR(list[1].argv[2], "a=1");
		CHECK_INT(list[1].lineno, 3);
		CHECK_INT(list[3].type, SERVICE_UNIX);
		CHECK_STR(list[3].name, "smtp");
		CHECK_INT(list[4].lineno, 7);
	}
	services_free(&list, count);

	CHECK_INT(services_parse("", "empty", 1, &list, &count, &err), 0);
	CHECK_INT(count, 0);
	services_free(&list, count);
}

static void
test_bad(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"smtp tcp n y n 2 smtpd", "services.conf:1: unknown type 'tcp'"},
	    {"\n\nsmtp inet n y n 2", "services.conf:3: want: name type"},
	    {"smtp inet n y n", "want: name type"},
	    {"smtp inet x y n 2 smtpd", "bad private value 'x'"},
	    {"smtp inet n y/n n 2 smtpd", "bad unpriv value 'y/n' (want y, n"},
	    {"smtp inet n -x n 2 smtpd", "bad unpriv value '-x'"},
	    {"smtp inet n ab:c n 2 smtpd", "bad unpriv value 'ab:c'"},
	    {"smtp inet n \303\274 n 2 smtpd", "bad unpriv value"},
	    {"smtp inet n abcdefghijklmnopqrstuvwxyz0123456 n 2 smtpd",
	        "bad unpriv value 'abcdefghijklmnopqrstuvwxyz0123456'"},
	    {"smtp inet n $mydestination n 2 smtpd",
	        "bad unpriv value '$mydestination' (expands to 'a, b'"},
	    {"smtp inet n ${vmail_user n 2 smtpd",
	        "bad unpriv value '${vmail_user': bad ${name} syntax"},
	    {"smtp inet n y N 2 smtpd", "bad chroot value 'N'"},
	    {"smtp inet n y n 0 smtpd", "bad maxproc '0'"},
	    {"smtp inet n y n x smtpd", "bad maxproc 'x'"},
	    {"smtp inet n y n 10001 smtpd", "bad maxproc '10001'"},
	    {"smtp inet n y n -1 smtpd", "bad maxproc '-1'"},
	    {"0 inet n y n 1 smtpd", "bad inet service name '0'"},
	    {"65536 inet n y n 1 smtpd", "bad inet service name '65536'"},
	    {"host: inet n y n 1 smtpd", "bad inet service name 'host:'"},
	    {":25 inet n y n 1 smtpd", "bad inet service name ':25'"},
	    {"::1:25 inet n y n 1 smtpd", "bad inet service name '::1:25'"},
	    {"[::1]25 inet n y n 1 smtpd", "bad inet service name"},
	    {"[::1 inet n y n 1 smtpd", "bad inet service name"},
	    {"[]:25 inet n y n 1 smtpd", "bad inet service name"},
	    {"[::1]:0 inet n y n 1 smtpd", "bad inet service name"},
	    {"h/x:25 inet n y n 1 smtpd", "bad inet service name"},
	    {"a/b unix y y n 1 qmgr", "bad unix service name 'a/b'"},
	    {".. unix y y n 1 qmgr", "bad unix service name '..'"},
	    {"q:m unix y y n 1 qmgr", "bad unix service name 'q:m'"},
	    {"login/ unix - n n 1 spawn", "bad unix service name 'login/'"},
	    {"login/a/b unix - n n 1 spawn", "bad unix service name"},
	    {"login/.. unix - n n 1 spawn", "bad unix service name"},
	    {"logins/a unix - n n 1 spawn", "bad unix service name"},
	    {"110 inet n y rel/dir 1 login", "bad chroot value 'rel/dir'"},
	    {"110 inet n y /a/../b 1 login", "bad chroot value '/a/../b'"},
	    {"110 inet n y /a/./b 1 login", "bad chroot value"},
	    {"110 inet n y /a b 1 login", "bad maxproc 'b'"},
	    {"110 inet n y /a:b 1 login", "bad chroot value"},
	    {"110 inet n y $mydestination 1 login",
	        "bad chroot value '$mydestination' (expands to 'a, b'"},
	    {"110 inet n y ${login_directory 1 login",
	        "bad chroot value '${login_directory'"},
	    {"smtp inet n y n 2 smtpd -o", "-o needs name=value"},
	    {"smtp inet n y n 2 smtpd -o x", "-o needs name=value"},
	    {"smtp inet n y n 2 smtpd -o =x", "-o needs name=value"},
	    {"  smtp inet n y n 2 smtpd",
	        "services.conf:1: continuation line without a service"},
	    {"qmgr unix y y n 1 qmgr\n# x\nqmgr unix n n n 1 qmgr2\n",
	        "services.conf:3: duplicate service 'qmgr' (first at line 1)"},
	};
	struct service_def *list = NULL;
	const char *err;
	size_t i;
	int count = -1;

	load_config();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = "";
		CHECK_INT(services_parse(cases[i].text, "services.conf",
		              DEFAULT_MAXPROC, &list, &count, &err),
		    -1);
		CHECK(list == NULL);
		if (strstr(err, cases[i].error) == NULL) {
			printf("# case %zu: got \"%s\", want \"%s\"\n", i, err,
			    cases[i].error);
			CHECK(!"error text");
		}
	}
}

/* The chroot column's directories and the login/NAME unix names. */
static void
test_login(void)
{
	static const char text[] =
	    "110 inet n $login_user $login_directory 2 login pop3\n"
	    "login/spawn unix - n n 1 spawn\n"
	    "s unix y y /srv/x-1.d/ 1 s\n"
	    "q unix y y y 1 q\n"
	    "n unix y y - 1 n\n";
	struct service_def *list = NULL;
	const char *err = "";
	int count = 0;

	config_override("queue_directory", "/var/spool/tq");
	load_config();
	CHECK_INT(
	    services_parse(text, "services.conf", 7, &list, &count, &err), 0);
	if (count != 5) {
		printf("# %s\n", err);
		CHECK_INT(count, 5);
		services_free(&list, count);
		return;
	}
	CHECK_INT(list[0].chroot, 1);
	CHECK_STR(list[0].chroot_dir, "/var/spool/tq/login");
	CHECK_STR(list[0].user, "ternlogin");
	CHECK(services_login_name(&list[0]) == NULL);
	CHECK_STR(list[1].name, "login/spawn");
	CHECK_INT(list[1].type, SERVICE_UNIX);
	CHECK_INT(list[1].chroot, 0);
	CHECK(list[1].chroot_dir == NULL);
	CHECK_STR(services_login_name(&list[1]), "spawn");
	CHECK_INT(list[2].chroot, 1);
	CHECK_STR(list[2].chroot_dir, "/srv/x-1.d/");
	CHECK(services_login_name(&list[2]) == NULL);
	CHECK_INT(list[3].chroot, 1);
	CHECK(list[3].chroot_dir == NULL);
	CHECK_INT(list[4].chroot, 0);
	services_free(&list, count);
}

static void
test_limits(void)
{
	struct service_def *list = NULL;
	const char *err = "";
	char *text, *p;
	int count;
	size_t i;

	/* more arguments than the field limit */
	text = xmalloc(2 * 200 + 64);
	p = text + snprintf(text, 64, "x unix y y n 1 cmd");
	for (i = 0; i < 200; i++) {
		*p++ = ' ';
		*p++ = 'a';
	}
	*p = '\0';
	CHECK_INT(services_parse(text, "s", 1, &list, &count, &err), -1);
	CHECK(strstr(err, "s:1: too many fields") != NULL);
	free(text);

	/* an entry longer than the line limit */
	text = xmalloc(20000);
	p = text + snprintf(text, 64, "x unix y y n 1 cmd ");
	memset(p, 'a', 10000);
	p[10000] = '\0';
	err = "";
	CHECK_INT(services_parse(text, "s", 1, &list, &count, &err), -1);
	CHECK(strstr(err, "s:1: entry too long") != NULL);
	free(text);
}

static void
test_load(void)
{
	char path[] = "/tmp/services_test.XXXXXX";
	struct service_def *list = NULL;
	const char *err = "";
	int fd, count = 0;
	static const char text[] = "smtp inet n y n 2 smtpd\nbad\n";

	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "qmgr unix y y n 1 qmgr\n", 23) == 23);
	CHECK_INT(services_load(path, 5, &list, &count, &err), 0);
	CHECK_INT(count, 1);
	services_free(&list, count);

	CHECK_INT(ftruncate(fd, 0), 0);
	CHECK(
	    pwrite(fd, text, sizeof(text) - 1, 0) == (ssize_t)sizeof(text) - 1);
	CHECK_INT(services_load(path, 5, &list, &count, &err), -1);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	CHECK(strstr(err, ":2: want") != NULL);

	CHECK(pwrite(fd, "x\0y", 3, 0) == 3);
	CHECK_INT(services_load(path, 5, &list, &count, &err), -1);
	CHECK(strstr(err, "NUL") != NULL);
	close(fd);
	unlink(path);
	CHECK_INT(services_load(path, 5, &list, &count, &err), -1);
	CHECK(list == NULL);
}

UNIT_MAIN(UNIT_CASE(test_good), UNIT_CASE(test_table), UNIT_CASE(test_bad),
    UNIT_CASE(test_login), UNIT_CASE(test_limits), UNIT_CASE(test_load))
