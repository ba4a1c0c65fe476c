/* SPDX-License-Identifier: MIT */
/*
 * Tests of the parameter table and tern.conf loading: defaults, syntax,
 * $name expansion, conversion and range errors, computed host names,
 * config_edit and config_list (brace groups stay one word). Overrides persist for the life of the
 * process, so the override test runs last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/params.h"

#define TEST_FILE_MAX (2 * 1024 * 1024)

static char tmpdir[] = "/tmp/params_test.XXXXXX";
static char *conf_path;

static void
setup(void)
{
	if (conf_path != NULL)
		return;
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	conf_path = xasprintf("%s/tern.conf", tmpdir);
}

static void
write_conf(const char *text)
{
	FILE *f;

	setup();
	if (text == NULL) {
		unlink(conf_path);
		return;
	}
	f = fopen(conf_path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(conf_path);
		exit(1);
	}
}

static int
load(const char *text, const char **error_r)
{
	write_conf(text);
	return config_load(tmpdir, error_r);
}

static char *
read_conf(void)
{
	struct buf b;
	const char *err;

	buf_init(&b, TEST_FILE_MAX);
	if (file_read_all(conf_path, TEST_FILE_MAX, &b, &err) < 0)
		buf_reset(&b);
	return buf_steal(&b);
}

static void
test_table(void)
{
	const struct param_def *p = param_find("smtpd_timeout");

	CHECK(param_count > 30);
	CHECK(p != NULL);
	CHECK(p != NULL && p->type == PARAM_TIME && p->min == 1 &&
	      p->max == 3600 && p->var == &var_smtpd_timeout);
	CHECK(param_find("no_such_parameter") == NULL);
	CHECK_STR(param_table[0].name, "config_directory");
}

static void
test_defaults(void)
{
	const char *err = NULL;
	char *want;

	CHECK_INT(load(NULL, &err), 0);
	CHECK_STR(var_config_directory, tmpdir);
	CHECK_INT(var_smtpd_timeout, 300);
	CHECK_INT(var_message_size_limit, 10240000);
	CHECK_INT(var_debug_level, 0);
	CHECK_STR(var_mail_owner, "tern");
	CHECK_STR(var_queue_directory, TERN_QUEUE_DIR);
	CHECK_STR(var_myorigin, var_myhostname);
	want = xasprintf("%s/users", tmpdir);
	CHECK_STR(var_user_file, want);
	free(want);
	want = xasprintf(
	    "%s, localhost.%s, localhost", var_myhostname, var_mydomain);
	CHECK_STR(var_mydestination, want);
	free(want);
	CHECK_STR(config_value("smtpd_timeout"), "300");
	CHECK_STR(config_value("mail_owner"), "tern");
	CHECK(config_value("no_such_parameter") == NULL);
	CHECK_INT(config_is_set("smtpd_timeout"), 0);
	CHECK(config_raw("smtpd_timeout") == NULL);
}

static void
test_syntax(void)
{
	const char *err = NULL;

	CHECK_INT(load("# comment\n"
	               "\n"
	               "smtpd_timeout = 120\n"
	               "   # indented comment\n"
	               "mydestination = a.example,\n"
	               "    b.example,\n"
	               "\n"
	               "\tc.example\n"
	               "mail_owner=postman\r\n"
	               "smtpd_banner =   hello   world   \n"
	               "debug_level = 1\n"
	               "debug_level = 2\n"
	               "vmail_user =\n"
	               "inet_interfaces = last-line-no-newline",
	              &err),
	    0);
	CHECK_INT(var_smtpd_timeout, 120);
	CHECK_STR(var_mydestination, "a.example, b.example, c.example");
	CHECK_STR(var_mail_owner, "postman");
	CHECK_STR(var_smtpd_banner, "hello   world");
	CHECK_INT(var_debug_level, 2);
	CHECK_STR(var_vmail_user, "");
	CHECK_STR(var_inet_interfaces, "last-line-no-newline");
	CHECK_INT(config_is_set("smtpd_timeout"), 1);
	CHECK_INT(config_is_set("queue_directory"), 0);
	CHECK_STR(
	    config_raw("mydestination"), "a.example, b.example, c.example");
}

static void
test_units(void)
{
	const char *err = NULL;

	CHECK_INT(load("smtpd_timeout = 5m\nmessage_size_limit = 10m\n"
	               "ipc_timeout = 1d\n",
	              &err),
	    0);
	CHECK_INT(var_smtpd_timeout, 300);
	CHECK_INT(var_message_size_limit, 10 * 1024 * 1024);
	CHECK_INT(var_ipc_timeout, 86400);
	CHECK_STR(config_value("message_size_limit"), "10485760");
}

static void
test_expansion(void)
{
	const char *err = NULL;
	char *s;

	CHECK_INT(load("myhostname = mx.example.org\n"
	               "mydomain = example.org\n"
	               "my_suffix = tern-$mydomain\n"
	               "my_alias = ${my_suffix}\n"
	               "smtpd_banner = ${myhostname} $my_alias $$x $ lone\n"
	               "myorigin = $mydomain\n"
	               "mail_owner = a${undefined_name}b\n",
	              &err),
	    0);
	CHECK_STR(
	    var_smtpd_banner, "mx.example.org tern-example.org $x $ lone");
	CHECK_STR(var_myorigin, "example.org");
	CHECK_STR(var_mydestination,
	    "mx.example.org, localhost.example.org, localhost");
	CHECK_STR(var_mail_owner, "ab");
	/* config_raw keeps the unexpanded text */
	CHECK_STR(
	    config_raw("smtpd_banner"), "${myhostname} $my_alias $$x $ lone");

	s = config_expand("<$myorigin/${myhostname}>", &err);
	CHECK_STR(s, "<example.org/mx.example.org>");
	free(s);
	s = config_expand("$smtpd_timeout", &err);
	CHECK_STR(s, "300");
	free(s);
	s = config_expand("${unterminated", &err);
	CHECK(s == NULL);
	free(s);
}

static void
test_loops(void)
{
	static const struct {
		const char *conf, *error;
	} cases[] = {
	    {"smtpd_banner = x $smtpd_banner\n",
	        "parameter expansion loop: smtpd_banner -> smtpd_banner"},
	    {"myorigin = $loop_a\nloop_a = ${loop_b}\nloop_b = $myorigin\n",
	        "parameter expansion loop: myorigin -> loop_a -> loop_b -> "
	        "myorigin"},
	    {"myhostname = $mydomain\nmydomain = $myhostname\n",
	        "parameter expansion loop: "},
	};
	const char *err;
	size_t i;

	CHECK_INT(load("smtpd_timeout = 77\n", &err), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = "";
		CHECK_INT(load(cases[i].conf, &err), -1);
		if (strstr(err, cases[i].error) == NULL) {
			printf("# case %zu: error \"%s\"\n", i, err);
			CHECK(!"loop error text");
		}
		CHECK(strstr(err, "tern.conf:") != NULL);
	}
	/* a failed load leaves the running values alone */
	CHECK_INT(var_smtpd_timeout, 77);
}

static void
test_errors(void)
{
	static const struct {
		const char *conf, *error;
	} cases[] = {
	    {"smtpd_timeout = x\n",
	        "tern.conf:1: smtpd_timeout: bad time value 'x'"},
	    {"\n# c\nsmtpd_timeout = 5000\n",
	        "tern.conf:3: smtpd_timeout: value '5000' out of range "
	        "1..3600"},
	    {"smtpd_timeout = 0\n", "out of range 1..3600"},
	    {"debug_level = abc\n",
	        "tern.conf:1: debug_level: bad numeric value 'abc'"},
	    {"debug_level = -1\n", "bad numeric value '-1'"},
	    {"debug_level = 10\n", "out of range 0..9"},
	    {"message_size_limit = 1q\n",
	        "message_size_limit: bad size value '1q'"},
	    {"message_size_limit = 100\n", "out of range 1024..2147483647"},
	    {"message_size_limit = 3g\n", "out of range 1024..2147483647"},
	    {"ipc_timeout = 99999999999999999999999\n", "bad time value"},
	    {"just some text\n", "tern.conf:1: missing '='"},
	    {"bad-name = 1\n", "tern.conf:1: bad parameter name 'bad-name'"},
	    {"= 1\n", "tern.conf:1: bad parameter name ''"},
	    {"  starts = indented\n",
	        "tern.conf:1: continuation line without a parameter"},
	    {"smtpd_banner = ${myhostname\n", "tern.conf:1: bad ${name}"},
	    {"smtpd_timeout = ${smtpd_banner}\n", "bad time value"},
	};
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = "";
		CHECK_INT(load(cases[i].conf, &err), -1);
		if (strstr(err, cases[i].error) == NULL) {
			printf("# case %zu: got \"%s\", want \"%s\"\n", i, err,
			    cases[i].error);
			CHECK(!"error text");
		}
	}
}

static void
test_limits(void)
{
	const char *err = "";
	struct buf b;
	size_t i;

	/* one over-long physical line */
	buf_init(&b, TEST_FILE_MAX);
	CHECK_INT(buf_puts(&b, "smtpd_banner = "), 0);
	for (i = 0; i < 9000; i++)
		CHECK_INT(buf_putc(&b, 'x'), 0);
	CHECK_INT(load(buf_cstr(&b), &err), -1);
	CHECK(strstr(err, "tern.conf:1: line too long") != NULL);

	/* a file over the size cap */
	buf_reset(&b);
	while (b.len < 1100 * 1024)
		CHECK_INT(buf_puts(&b, "# filler filler filler filler\n"), 0);
	err = "";
	CHECK_INT(load(buf_cstr(&b), &err), -1);
	CHECK(strstr(err, "tern.conf") != NULL);

	/* continuation lines cannot grow a value without bound */
	buf_reset(&b);
	CHECK_INT(buf_puts(&b, "smtpd_banner = x\n"), 0);
	for (i = 0; i < 200; i++) {
		CHECK_INT(buf_putc(&b, ' '), 0);
		while (b.len % 1000 != 999)
			CHECK_INT(buf_putc(&b, 'y'), 0);
		CHECK_INT(buf_putc(&b, '\n'), 0);
	}
	err = "";
	CHECK_INT(load(buf_cstr(&b), &err), -1);
	CHECK(strstr(err, "value too long") != NULL);

	/* NUL bytes are refused */
	write_conf(NULL);
	{
		FILE *f = fopen(conf_path, "w");

		CHECK(f != NULL && fwrite("a = 1\nb\0 = 2\n", 1, 13, f) == 13);
		CHECK(f != NULL && fclose(f) == 0);
	}
	err = "";
	CHECK_INT(config_load(tmpdir, &err), -1);
	CHECK(strstr(err, "tern.conf:2: NUL byte") != NULL);

	/* nor can expansion (each level multiplies by eight) */
	buf_reset(&b);
	CHECK_INT(buf_puts(&b, "l0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
	                       "l1 = $l0$l0$l0$l0$l0$l0$l0$l0\n"
	                       "l2 = $l1$l1$l1$l1$l1$l1$l1$l1\n"
	                       "l3 = $l2$l2$l2$l2$l2$l2$l2$l2\n"
	                       "l4 = $l3$l3$l3$l3$l3$l3$l3$l3\n"
	                       "smtpd_banner = $l4\n"),
	    0);
	err = "";
	CHECK_INT(load(buf_cstr(&b), &err), -1);
	CHECK(strstr(err, "value too long") != NULL);
	buf_free(&b);
}

static void
collect_unknown(const char *name, const char *value, void *ctx)
{
	struct buf *b = ctx;

	CHECK_INT(buf_printf(b, "%s=%s;", name, value), 0);
}

static void
test_unknown(void)
{
	const char *err;
	struct buf b;

	buf_init(&b, 1024);
	CHECK_INT(load("smtpd_timout = 10\nsmtpd_timeout = 20\n"
	               "my_var = $smtpd_timeout\n",
	              &err),
	    0);
	config_foreach_unknown(collect_unknown, &b);
	CHECK_STR(buf_cstr(&b), "smtpd_timout=10;my_var=$smtpd_timeout;");
	CHECK(config_value("smtpd_timout") == NULL);
	CHECK_INT(config_is_set("smtpd_timout"), 1);
	buf_free(&b);
}

static void
test_hostnames(void)
{
	static const struct {
		const char *conf, *host, *domain;
	} cases[] = {
	    {"myhostname = mail.example.org\n", "mail.example.org",
	        "example.org"},
	    {"myhostname = solo\n", "solo", "localdomain"},
	    {"myhostname = trailing.\n", "trailing.", "localdomain"},
	    {"myhostname = a.b.c\nmydomain = z.test\n", "a.b.c", "z.test"},
	    {"myhostname = $mydomain\nmydomain = d.test\n", "d.test", "d.test"},
	};
	char host[256] = "";
	const char *err, *dot;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(load(cases[i].conf, &err), 0);
		CHECK_STR(var_myhostname, cases[i].host);
		CHECK_STR(var_mydomain, cases[i].domain);
	}
	/* empty: computed from gethostname() */
	CHECK_INT(load("myhostname =\n", &err), 0);
	CHECK_INT(gethostname(host, sizeof(host) - 1), 0);
	CHECK_STR(var_myhostname, host[0] != '\0' ? host : "localhost");
	dot = strchr(var_myhostname, '.');
	CHECK_STR(var_mydomain,
	    dot != NULL && dot[1] != '\0' ? dot + 1 : "localdomain");
}

static void
test_edit(void)
{
	const char *err = NULL;
	struct stat st;
	char *text;

	write_conf(NULL);
	CHECK_INT(config_edit(tmpdir, "smtpd_timeout", "45", &err), 0);
	CHECK_INT(stat(conf_path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	text = read_conf();
	CHECK_STR(text, "smtpd_timeout = 45\n");
	free(text);

	write_conf("# head\n"
	           "mydestination = a,\n"
	           "   b,\n"
	           "# between\n"
	           "   c\n"
	           "smtpd_timeout = 1\n"
	           "mydestination = again\n"
	           "\tmore\n"
	           "myorigin = x");
	CHECK_INT(chmod(conf_path, 0600), 0);
	CHECK_INT(config_edit(tmpdir, "mydestination", "d.example", &err), 0);
	CHECK_INT(config_edit(tmpdir, "mydestinationx", "y", &err), 0);
	text = read_conf();
	CHECK_STR(text, "# head\n"
	                "mydestination = d.example\n"
	                "# between\n"
	                "smtpd_timeout = 1\n"
	                "myorigin = x\n"
	                "mydestinationx = y\n");
	free(text);
	CHECK_INT(stat(conf_path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	CHECK_INT(config_load(tmpdir, &err), 0);
	CHECK_STR(var_mydestination, "d.example");
	CHECK_INT(var_smtpd_timeout, 1);

	/* value with $ survives unexpanded and expands on load */
	CHECK_INT(config_edit(tmpdir, "myorigin", "$mydomain", &err), 0);
	CHECK_INT(config_load(tmpdir, &err), 0);
	CHECK_STR(config_raw("myorigin"), "$mydomain");
	CHECK_STR(var_myorigin, var_mydomain);

	err = NULL;
	CHECK_INT(config_edit(tmpdir, "bad name", "x", &err), -1);
	CHECK(err != NULL);
	err = NULL;
	CHECK_INT(config_edit(tmpdir, "myorigin", "a\nb = c", &err), -1);
	CHECK(err != NULL);
	CHECK_INT(config_edit("/nonexistent/dir", "myorigin", "x", &err), -1);
}

/* ternconf -X and -#: every entry of the name, continuation lines too. */
static void
test_unset(void)
{
	const char *err = NULL;
	char *text;

	write_conf("mydestination = a,\n"
	           "   b\n"
	           "# between\n"
	           "smtpd_timeout = 1\n"
	           "mydestination = again\n");
	CHECK_INT(config_unset(tmpdir, "mydestination", 1, &err), 1);
	text = read_conf();
	CHECK_STR(text, "#mydestination = a,\n"
	                "#   b\n"
	                "# between\n"
	                "smtpd_timeout = 1\n"
	                "#mydestination = again\n");
	free(text);
	CHECK_INT(config_unset(tmpdir, "smtpd_timeout", 0, &err), 1);
	CHECK_INT(config_unset(tmpdir, "smtpd_timeout", 0, &err), 0);
	text = read_conf();
	CHECK_STR(text, "#mydestination = a,\n"
	                "#   b\n"
	                "# between\n"
	                "#mydestination = again\n");
	free(text);
	err = NULL;
	CHECK_INT(config_unset(tmpdir, "bad name", 0, &err), -1);
	CHECK(err != NULL);
}

static void
test_list(void)
{
	static const struct {
		const char *in;
		const char *want; /* items joined with '|' */
	} cases[] = {
	    {"a, b c", "a|b|c"},
	    {"", ""},
	    {" ,, \t\n", ""},
	    {"one", "one"},
	    {",x,,y,\tz\r\n", "x|y|z"},
	    {"check_client_access inline:{ a=b, c=d }, reject",
	        "check_client_access|inline:{ a=b, c=d }|reject"},
	    {"inline:{ {a = b, c}, d=e } x", "inline:{ {a = b, c}, d=e }|x"},
	    {"x inline:{ a=b", "x|inline:{ a=b"},
	    {"} a", "}|a"},
	};
	struct buf b;
	char **list;
	size_t i, j;

	buf_init(&b, 256);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		list = config_list(cases[i].in);
		buf_reset(&b);
		for (j = 0; list[j] != NULL; j++)
			CHECK_INT(
			    buf_printf(&b, "%s%s", j ? "|" : "", list[j]), 0);
		CHECK_STR(buf_cstr(&b), cases[i].want);
		config_list_free(list);
	}
	list = config_list(NULL);
	CHECK(list[0] == NULL);
	config_list_free(list);
	buf_free(&b);
}

static void
test_overrides(void)
{
	const char *err = "";

	config_override("smtpd_timeout", "33");
	config_override("smtpd_banner", "$myhostname override");
	config_override("no_such_thing", "1");
	CHECK_INT(load("smtpd_timeout = 20\nmyhostname = h.test\n"
	               "config_directory = /ignored\n",
	              &err),
	    0);
	CHECK_INT(var_smtpd_timeout, 33);
	CHECK_STR(var_smtpd_banner, "h.test override");
	CHECK_STR(var_config_directory, tmpdir);
	CHECK_INT(config_is_set("smtpd_banner"), 1);
	CHECK_STR(config_raw("smtpd_timeout"), "20");

	config_override("smtpd_timeout", "never");
	CHECK_INT(load(NULL, &err), -1);
	CHECK(strstr(err, "override of smtpd_timeout: smtpd_timeout: bad time "
	                  "value 'never'") != NULL);
	CHECK_INT(var_smtpd_timeout, 33);
	config_override("smtpd_timeout", "300");
	CHECK_INT(load(NULL, &err), 0);
	CHECK_INT(var_smtpd_timeout, 300);
}

/* Hostile shapes: expansion chains at the depth limit, continuation
 * lines at end of file, a line of exactly the maximum length. Runs
 * before test_overrides, whose overrides stay for the process. */
static void
test_hostile(void)
{
	const char *err = "";
	struct buf b;
	int i, depth;

	buf_init(&b, TEST_FILE_MAX);
	/* smtpd_banner plus 31 chained names is 32 levels: allowed */
	for (depth = 31; depth <= 32; depth++) {
		buf_reset(&b);
		CHECK_INT(buf_puts(&b, "smtpd_banner = $p1\n"), 0);
		for (i = 1; i < depth; i++)
			CHECK_INT(
			    buf_printf(&b, "p%d = ${p%d}\n", i, i + 1), 0);
		CHECK_INT(buf_printf(&b, "p%d = bottom\n", depth), 0);
		err = "";
		if (depth == 31) {
			CHECK_INT(load(buf_cstr(&b), &err), 0);
			CHECK_STR(var_smtpd_banner, "bottom");
		} else {
			CHECK_INT(load(buf_cstr(&b), &err), -1);
			CHECK(strstr(err, "too deep") != NULL);
		}
	}
	/* continuation as the very last bytes, with and without CR/LF */
	CHECK_INT(load("smtpd_banner = a\n  b", &err), 0);
	CHECK_STR(var_smtpd_banner, "a b");
	CHECK_INT(load("smtpd_banner = a\r\n\tb\r\n  \r\n", &err), 0);
	CHECK_STR(var_smtpd_banner, "a b");
	CHECK_INT(load("smtpd_banner = a\n \n\t\n", &err), 0);
	CHECK_STR(var_smtpd_banner, "a");
	/* a line of exactly the maximum (8192) is fine */
	buf_reset(&b);
	CHECK_INT(buf_puts(&b, "smtpd_banner = "), 0);
	while (b.len < 8192)
		CHECK_INT(buf_putc(&b, 'x'), 0);
	CHECK_INT(load(buf_cstr(&b), &err), 0);
	CHECK_INT(strlen(var_smtpd_banner), 8192 - strlen("smtpd_banner = "));
	/* lone and doubled dollars, unterminated and empty braces */
	CHECK_INT(load("smtpd_banner = $ $$ a$ $-x $$$$", &err), 0);
	CHECK_STR(var_smtpd_banner, "$ $ a$ $-x $$");
	CHECK_INT(load("smtpd_banner = ${myhostname", &err), -1);
	CHECK(strstr(err, "bad ${name} syntax") != NULL);
	CHECK_INT(load("smtpd_banner = ${}", &err), -1);
	CHECK(strstr(err, "bad $name syntax") != NULL);
	buf_free(&b);
}

static void
test_cleanup(void)
{
	unlink(conf_path);
	CHECK_INT(rmdir(tmpdir), 0);
	free(conf_path);
	conf_path = NULL;
}

UNIT_MAIN(UNIT_CASE(test_table), UNIT_CASE(test_defaults),
    UNIT_CASE(test_syntax), UNIT_CASE(test_units), UNIT_CASE(test_expansion),
    UNIT_CASE(test_loops), UNIT_CASE(test_errors), UNIT_CASE(test_limits),
    UNIT_CASE(test_unknown), UNIT_CASE(test_hostnames), UNIT_CASE(test_edit),
    UNIT_CASE(test_unset), UNIT_CASE(test_list), UNIT_CASE(test_hostile),
    UNIT_CASE(test_overrides), UNIT_CASE(test_cleanup))
