/* SPDX-License-Identifier: MIT */
/*
 * Tests of the lookup tables: every type through map_open/map_lookup,
 * the syntax errors that must name file and line, reloading after a file
 * is replaced (forced with map_recheck_now, no sleeping), and hash
 * tables built by map_build_hash, the code ternmap runs.
 */
#include <db.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "map/map.h"
#include "map/map_build.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NOTFOUND NULL
/* An owner other than root for the ownership test (nobody on Debian). */
#define OTHER_ID 65534

struct lookup_case {
	const char *key;
	const char *want; /* NOTFOUND: not found */
};

static char scratch[] = "/tmp/map_test.XXXXXX";

static void
scratch_init(void)
{
	if (scratch[sizeof(scratch) - 2] == 'X' && mkdtemp(scratch) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

/* Writes text to scratch/name by rename (a new inode); returns the path. */
static char *
put_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", scratch, name);
	char *tmp = xasprintf("%s.new", path);
	FILE *f = fopen(tmp, "w");

	CHECK(f != NULL);
	if (f != NULL) {
		CHECK(fputs(text, f) >= 0);
		CHECK(fclose(f) == 0);
	}
	CHECK(rename(tmp, path) == 0);
	free(tmp);
	return path;
}

/* Opens type:scratch/name after writing text there. */
static struct map *
open_text(const char *type, const char *name, const char *text, char **error_r)
{
	char *path = put_file(name, text);
	char *spec = xasprintf("%s:%s", type, path);
	struct map *m;

	*error_r = NULL;
	m = map_open(spec, error_r);
	free(spec);
	free(path);
	return m;
}

static void
check_lookups(struct map *m, const struct lookup_case *t, size_t n)
{
	const char *value, *err;
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		value = NULL;
		ret = map_lookup(m, t[i].key, &value, &err);
		if (t[i].want == NOTFOUND) {
			CHECK_INT(ret, 0);
			if (ret != 0)
				printf("#   key \"%s\" found \"%s\"\n",
				    t[i].key, ret > 0 ? value : err);
		} else {
			CHECK_INT(ret, 1);
			if (ret == 1)
				CHECK_STR(value, t[i].want);
			if (ret != 1 || strcmp(value, t[i].want) != 0)
				printf("#   key \"%s\"\n", t[i].key);
		}
	}
}

/* The error of opening text as type must be "PATH, line N: ...what...". */
static void
check_open_error(
    const char *type, const char *text, unsigned line, const char *what)
{
	char *err, *path = xasprintf("%s/bad.%s", scratch, type);
	char *prefix = xasprintf("%s, line %u: ", path, line);
	struct map *m;

	m = open_text(type, strrchr(path, '/') + 1, text, &err);
	CHECK(m == NULL);
	CHECK(err != NULL);
	if (err != NULL) {
		CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
		CHECK(strstr(err, what) != NULL);
		if (strncmp(err, prefix, strlen(prefix)) != 0 ||
		    strstr(err, what) == NULL)
			printf("#   got \"%s\", want \"%s...%s\"\n", err,
			    prefix, what);
	}
	map_free(&m);
	free(err);
	free(prefix);
	free(path);
}

static void
test_static(void)
{
	static const struct lookup_case t1[] = {
	    {"anything", "OK"},
	    {"", "OK"},
	};
	static const struct lookup_case t2[] = {
	    {"x", "reject, with spaces"},
	};
	char *err = NULL;
	struct map *m;

	m = map_open("static:OK", &err);
	CHECK(m != NULL);
	CHECK(!map_is_pattern(m));
	CHECK_STR(map_spec(m), "static:OK");
	check_lookups(m, t1, NELEM(t1));
	map_free(&m);
	CHECK(m == NULL);
	map_free(&m);
	m = map_open("static:{ reject, with spaces }", &err);
	CHECK(m != NULL);
	check_lookups(m, t2, NELEM(t2));
	map_free(&m);
	CHECK(map_open("static:{ open", &err) == NULL);
	free(err);
}

static void
test_inline(void)
{
	static const struct lookup_case t[] = {
	    {"key", "value"},
	    {"KEY", "value"},
	    {"key2", "value2"},
	    {"key3", "value, with commas"},
	    {"Mixed", "Case Kept"},
	    {"empty", ""},
	    {"value", NOTFOUND},
	    {"", NOTFOUND},
	};
	static const char *const bad[] = {
	    "inline:key=value",
	    "inline:{ key }",
	    "inline:{ key=value",
	    "inline:{ {key=value }",
	    "inline:{ =value }",
	    "inline:{ a=1, A=2 }",
	    "inline:{ a=1 } }",
	};
	struct map *m;
	char *err = NULL;
	size_t i;

	m = map_open("inline:{ key=value, key2=value2 "
	             "{ key3 = value, with commas },{MIXED = Case Kept} "
	             "empty= }",
	    &err);
	CHECK(m != NULL);
	if (m == NULL) {
		printf("#   %s\n", err);
		free(err);
		return;
	}
	check_lookups(m, t, NELEM(t));
	map_free(&m);
	m = map_open("inline:{}", &err);
	CHECK(m != NULL);
	check_lookups(m, t + 6, 1);
	map_free(&m);
	for (i = 0; i < NELEM(bad); i++) {
		err = NULL;
		m = map_open(bad[i], &err);
		CHECK(m == NULL);
		CHECK(err != NULL && strstr(err, "inline:") != NULL);
		if (m != NULL)
			printf("#   accepted %s\n", bad[i]);
		map_free(&m);
		free(err);
	}
}

static void
test_open_errors(void)
{
	static const char *const bad[] = {
	    "nocolon",
	    "btree:/etc/x",
	    "pcre:",
	    "pcre:/nonexistent/tern/x.pcre",
	    "hash:/nonexistent/tern/x",
	    "cidr:/nonexistent/tern/x.cidr",
	};
	char *err;
	size_t i;

	for (i = 0; i < NELEM(bad); i++) {
		err = NULL;
		CHECK(map_open(bad[i], &err) == NULL);
		CHECK(err != NULL);
		free(err);
	}
}

static const char cidr_text[] =
    "# clients\n"
    "192.0.2.0/24        net24\n"
    "198.51.100.7        one\n"
    "\n"
    "if 10.0.0.0/8\n"
    "  # comment inside a continuation does not end it\n"
    "!10.1.0.0/16        outside\n"
    "    continued\n"
    "endif\n"
    "IF !172.16.0.0/12\n"
    "if 203.0.113.0/24\n"
    "203.0.113.128/25    high\n"
    "endif\n"
    "ENDIF\n"
    "2001:db8::/32       v6net\n"
    "[2001:db8:1::1]     v6one\n"
    "[2001:db9::]/32     v6bracket\n"
    "::/0                v6any\n"
    "0.0.0.0/0           any4\n";

static void
test_cidr(void)
{
	static const struct lookup_case t[] = {
	    {"192.0.2.1", "net24"},
	    {"192.0.2.255", "net24"},
	    {"198.51.100.7", "one"},
	    {"198.51.100.8", "any4"},
	    {"10.2.3.4", "outside    continued"},
	    {"10.1.3.4", "any4"},
	    {"203.0.113.200", "high"},
	    {"203.0.113.1", "any4"},
	    {"2001:db8::1", "v6net"},
	    {"2001:DB8:ffff::", "v6net"},
	    {"2001:db8:1::1", "v6net"},
	    {"2001:db9:abcd::1", "v6bracket"},
	    {"::1", "v6any"},
	    /* The IPv4 client it stands for. */
	    {"::ffff:192.0.2.1", "net24"},
	    {"not-an-address", NOTFOUND},
	    {"192.0.2.1/32", NOTFOUND},
	    {"[::1]", NOTFOUND},
	    {"", NOTFOUND},
	};
	static const struct lookup_case t2[] = {
	    {"172.16.0.1", NOTFOUND},
	    {"172.32.0.1", "x"},
	    {"1.2.3.4", NOTFOUND},
	};
	struct map *m;
	char *err;

	m = open_text("cidr", "clients.cidr", cidr_text, &err);
	CHECK(m != NULL);
	if (m == NULL) {
		printf("#   %s\n", err);
		free(err);
		return;
	}
	CHECK(map_is_pattern(m));
	check_lookups(m, t, NELEM(t));
	map_free(&m);
	/* The first v6-only line must not match v4 keys (and vice versa). */
	m = open_text("cidr", "two.cidr",
	    "if !172.16.0.0/12\nif 172.0.0.0/8\n172.32.0.0/11 x\nendif\n"
	    "endif\n",
	    &err);
	CHECK(m != NULL);
	if (m != NULL)
		check_lookups(m, t2, NELEM(t2));
	map_free(&m);
}

static void
test_cidr_errors(void)
{
	check_open_error("cidr", "# x\n\n192.0.2.1/24 r\n", 3,
	    "non-null host address bits in \"192.0.2.1/24\", perhaps you "
	    "should use \"192.0.2.0/24\" instead");
	check_open_error("cidr", "2001:db8::1/32 r\n", 1,
	    "perhaps you should use \"2001:db8::/32\"");
	check_open_error("cidr", "a\n192.0.2.0/24\n", 1, "bad address");
	check_open_error(
	    "cidr", "192.0.2.0/24 r\n192.0.2.0/24\n", 2, "missing result");
	check_open_error("cidr", "192.0.2.0/33 r\n", 1, "bad prefix");
	check_open_error("cidr", "192.0.2.0/ r\n", 1, "bad prefix");
	check_open_error("cidr", "[192.0.2.0]/24 r\n", 1, "bad address");
	check_open_error("cidr", "1.2.3 r\n", 1, "bad address");
	check_open_error("cidr", "x\n", 1, "bad address");
	check_open_error("cidr", "endif\n", 1, "endif without if");
	check_open_error("cidr", "1.2.3.4 r\nif 1.2.3.4\n1.2.3.4 r\n", 2,
	    "if without endif");
	check_open_error("cidr", "if 1.2.3.4 r\nendif\n", 1, "text after");
	check_open_error("cidr", " 1.2.3.4 r\n", 1, "continuation");
}

static const char pcre_text[] =
    "# HELO checks\n"
    "/^localhost$/              REJECT you are not me\n"
    "/^([a-z]+)\\.(example)\\.(org)$/ OK $1 at ${2} in $(3) costs $$5\n"
    "/^(x)?y$/                  opt<$1>\n"
    "/^CASE\\./i                case sensitive\n"
    "if /\\.test$/\n"
    "!/^mail\\./                 not mail\n"
    "if /^mail\\./\n"
    "/^mail\\.a\\.test$/          mail a\n"
    "endif\n"
    "endif\n"
    "#/never/ commented out\n"
    "!/\\./                      no dot\n"
    "|a/b|                      other delimiter\n"
    "/a\\/c/                     escaped delimiter\n"
    "/^multi/\n"
    "  line result\n";

static void
test_pcre(void)
{
	static const struct lookup_case t[] = {
	    {"localhost", "REJECT you are not me"},
	    {"LOCALHOST", "REJECT you are not me"},
	    {"www.example.org", "OK www at example in org costs $5"},
	    {"y", "opt<>"},
	    {"xy", "opt<x>"},
	    {"CASE.x", "case sensitive"},
	    {"case.x", NOTFOUND},
	    {"CaSe.x", NOTFOUND},
	    {"host.test", "not mail"},
	    {"mail.a.test", "mail a"},
	    {"mail.b.test", NOTFOUND},
	    {"nodot", "no dot"},
	    {"x.a/b", "other delimiter"},
	    {"x.a/c", "escaped delimiter"},
	    {"multi.x", "line result"},
	    {"other.thing", NOTFOUND},
	};
	static const struct lookup_case t2[] = {
	    {"case", "extended"},
	};
	struct map *m;
	char *err;

	m = open_text("pcre", "helo.pcre", pcre_text, &err);
	CHECK(m != NULL);
	if (m == NULL) {
		printf("#   %s\n", err);
		free(err);
		return;
	}
	CHECK(map_is_pattern(m));
	check_lookups(m, t, NELEM(t));
	map_free(&m);
	m = open_text("pcre", "x.pcre", "/^ca se$/x extended\n", &err);
	CHECK(m != NULL);
	if (m != NULL)
		check_lookups(m, t2, NELEM(t2));
	map_free(&m);
}

static void
test_pcre_errors(void)
{
	check_open_error("pcre", "/a/ ok\n\n/abc reject\n", 3,
	    "missing closing delimiter \"/\"");
	check_open_error("pcre", "/a/q ok\n", 1, "unknown regex flag \"q\"");
	check_open_error("pcre", "# c\n/a(/ ok\n", 2, "regex /a(/");
	check_open_error("pcre", "/(a)/ $2\n", 1, "the regex has 1 group");
	check_open_error("pcre", "/a/ $x\n", 1, "bad $ substitution");
	check_open_error("pcre", "/a/ ${1\n", 1, "bad $ substitution");
	check_open_error("pcre", "!/(a)/ $1\n", 1, "negated rule");
	check_open_error("pcre", "/a/\n", 1, "missing result");
	check_open_error("pcre", "a ok\n", 1, "expected /regex/");
	check_open_error("pcre", "/a/ x\nendif\n", 2, "endif without if");
	check_open_error(
	    "pcre", "if /a/\nif /b/\n/c/ d\nendif\n", 1, "if without endif");
	check_open_error("pcre", "if /a/ x\nendif\n", 1, "text after");
	check_open_error("pcre", "endif x\n", 1, "text after endif");
	check_open_error("pcre", "  /a/ x\n", 1, "continuation");
}

/* A regex that backtracks without end fails the lookup, quickly. */
static void
test_pcre_limit(void)
{
	char key[64];
	const char *value, *err;
	struct map *m;
	char *oerr;

	memset(key, 'a', sizeof(key) - 2);
	key[sizeof(key) - 2] = 'b';
	key[sizeof(key) - 1] = '\0';
	m = open_text("pcre", "slow.pcre", "/^(a|a)+$/ x\n", &oerr);
	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK_INT(map_lookup(m, key, &value, &err), -1);
	map_free(&m);
}

static void
test_reload(void)
{
	char *err, *path, *spec;
	const char *value, *lerr;
	struct map *m;

	path = put_file("reload.pcre", "/a/ one\n");
	spec = xasprintf("pcre:%s", path);
	m = map_open(spec, &err);
	CHECK(m != NULL);
	if (m == NULL)
		goto out;
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "one");
	free(put_file("reload.pcre", "/a/ two\n"));
	map_recheck_now(m);
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "two");
	/* A broken new version: the old contents stay. */
	free(put_file("reload.pcre", "/a/ three\n/b\n"));
	map_recheck_now(m);
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "two");
	map_recheck_now(m);
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "two");
	/* Gone: the old contents stay too. */
	CHECK(unlink(path) == 0);
	map_recheck_now(m);
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "two");
	free(put_file("reload.pcre", "/a/ four\n"));
	map_recheck_now(m);
	CHECK_INT(map_lookup(m, "a", &value, &lerr), 1);
	CHECK_STR(value, "four");
	map_free(&m);
out:
	free(spec);
	free(path);
}

/* Entries of scratch whose name starts with prefix. */
static int
count_files(const char *prefix)
{
	DIR *d = opendir(scratch);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static int
dump_cb(const char *key, const char *value, void *ctx)
{
	int *n = ctx;

	CHECK(strcmp(key, "user@example.org") != 0 || strcmp(value, "OK") == 0);
	(*n)++;
	return 0;
}

static void
test_hash(void)
{
	static const struct lookup_case t[] = {
	    {"user@example.org", "OK"},
	    {"USER@Example.ORG", "OK"},
	    {"example.net", "REJECT no thanks"},
	    {"dup", "first"},
	    {"long", "value  continued here"},
	    {"missing", NOTFOUND},
	    {"", NOTFOUND},
	};
	char *path, *spec, *err = NULL, *db;
	struct stat st;
	struct map *m;
	int n = 0;

	path = put_file("access", "# access\n"
	                          "User@Example.ORG     OK\n"
	                          "example.net\tREJECT no thanks  \n"
	                          "dup first\n"
	                          "DUP second\n"
	                          "long value\n"
	                          "  continued here\n");
	CHECK(chmod(path, 0640) == 0);
	CHECK_INT(map_build_hash(path, 0, &err), 0);
	if (err != NULL)
		printf("#   %s\n", err);
	free(err);
	err = NULL;
	db = xasprintf("%s.db", path);
	CHECK(stat(db, &st) == 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	CHECK_INT(count_files("access"), 2);
	spec = xasprintf("hash:%s", path);
	m = map_open(spec, &err);
	CHECK(m != NULL);
	if (m != NULL) {
		CHECK(!map_is_pattern(m));
		check_lookups(m, t, NELEM(t));
	}
	CHECK_INT(map_hash_dump(path, dump_cb, &n, &err), 0);
	CHECK_INT(n, 4);

	/* A failed build leaves the old table and no temporary file. */
	free(put_file("access", "ok OK\nnovalue\n"));
	err = NULL;
	CHECK_INT(map_build_hash(path, 0, &err), -1);
	CHECK(err != NULL);
	if (err != NULL) {
		char *want = xasprintf("%s, line 2: ", path);

		CHECK(strncmp(err, want, strlen(want)) == 0);
		if (strncmp(err, want, strlen(want)) != 0)
			printf("#   got \"%s\"\n", err);
		free(want);
	}
	free(err);
	err = NULL;
	CHECK_INT(count_files("access"), 2);
	if (m != NULL) {
		map_recheck_now(m);
		check_lookups(m, t, 1);
	}

	/* A rebuild is noticed; -f keeps the case of keys. */
	free(put_file("access", "New OK\n"));
	CHECK_INT(map_build_hash(path, MAP_BUILD_NOFOLD, &err), 0);
	free(err);
	if (m != NULL) {
		static const struct lookup_case t2[] = {
		    {"user@example.org", NOTFOUND},
		    {"new", NOTFOUND},
		};
		map_recheck_now(m);
		check_lookups(m, t2, NELEM(t2));
	}
	map_free(&m);
	free(db);
	free(spec);
	free(path);
}

/* Files written by other tools store keys without the NUL. */
static void
test_hash_no_nul(void)
{
	static const struct lookup_case t[] = {
	    {"plain", "value"},
	    {"PLAIN", "value"},
	};
	char *base = xasprintf("%s/nonul", scratch);
	char *path = xasprintf("%s.db", base);
	char *spec = xasprintf("hash:%s", base), *err = NULL;
	struct map *m;
	DBT k, v;
	DB *db;

	CHECK(db_create(&db, NULL, 0) == 0);
	CHECK(db->open(db, NULL, path, NULL, DB_HASH, DB_CREATE, 0600) == 0);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = "plain";
	k.size = 5;
	v.data = "value";
	v.size = 5;
	CHECK(db->put(db, NULL, &k, &v, 0) == 0);
	CHECK(db->close(db, 0) == 0);
	m = map_open(spec, &err);
	CHECK(m != NULL);
	if (m != NULL)
		check_lookups(m, t, NELEM(t));
	map_free(&m);
	free(err);
	free(spec);
	free(path);
	free(base);
}

/* Run as root, the table gets the source's owner and group. */
static void
test_hash_owner(void)
{
	char *path, *db, *err = NULL;
	struct stat st;

	if (geteuid() != 0) {
		printf("# skipped: not root\n");
		return;
	}
	path = put_file("owned", "key secret\n");
	CHECK(chown(path, OTHER_ID, OTHER_ID) == 0);
	CHECK(chmod(path, 0600) == 0);
	CHECK_INT(map_build_hash(path, 0, &err), 0);
	free(err);
	db = xasprintf("%s.db", path);
	CHECK(stat(db, &st) == 0);
	CHECK_INT(st.st_uid, OTHER_ID);
	CHECK_INT(st.st_gid, OTHER_ID);
	CHECK_INT(st.st_mode & 07777, 0600);
	free(db);
	free(path);
}

/* A query as ternmap -q makes it: the value, or NOTFOUND. */
static void
check_query(const char *name, const char *key, int flags, const char *want)
{
	char *value = NULL, *err = NULL;
	int ret = map_hash_query(name, key, flags, &value, &err);

	CHECK_INT(ret, want != NULL ? 1 : 0);
	if (want != NULL && value != NULL)
		CHECK_STR(value, want);
	if (ret < 0)
		printf("#   %s: %s\n", key, err);
	free(value);
	free(err);
}

/*
 * -i and -d edit in place for readers: a new file (another inode), the
 * owner and mode of the old one, other records kept; duplicates as
 * postmap (warn and keep, -r replaces, -w ignores).
 */
static void
test_hash_edit(void)
{
	static const char add[] = "new one\nKeep changed\n";
	char *path = put_file("edit", "keep old\nGone x\nother y\n");
	char *db = xasprintf("%s.db", path), *err = NULL;
	char *keys[] = {"GONE", "absent", "other"};
	struct stat before, after;
	size_t deleted = 99;

	CHECK(chmod(path, 0640) == 0);
	CHECK_INT(map_build_hash(path, 0, &err), 0);
	CHECK(stat(db, &before) == 0);
	CHECK_INT(map_hash_update(path, add, strlen(add), "stdin", 0, &err), 0);
	CHECK(stat(db, &after) == 0);
	CHECK(after.st_ino != before.st_ino);
	CHECK_INT(after.st_mode & 07777, 0640);
	check_query(path, "new", 0, "one");
	check_query(path, "keep", 0, "old");
	check_query(path, "gone", 0, "x");
	CHECK_INT(map_hash_update(path, add, strlen(add), "stdin",
	              MAP_BUILD_DUP_REPLACE, &err),
	    0);
	check_query(path, "keep", 0, "changed");
	CHECK_INT(map_hash_update(path, "keep again\n", 11, "stdin",
	              MAP_BUILD_DUP_IGNORE, &err),
	    0);
	check_query(path, "keep", 0, "changed");
	/* A bad line changes nothing. */
	CHECK_INT(
	    map_hash_update(path, "a b\nnovalue\n", 12, "stdin", 0, &err), -1);
	CHECK(err != NULL && strncmp(err, "stdin, line 2: ", 15) == 0);
	free(err);
	err = NULL;
	check_query(path, "a", 0, NOTFOUND);

	CHECK_INT(
	    map_hash_delete(path, keys, NELEM(keys), 0, &deleted, &err), 0);
	CHECK_INT(deleted, 2);
	check_query(path, "gone", 0, NOTFOUND);
	check_query(path, "other", 0, NOTFOUND);
	check_query(path, "new", 0, "one");
	CHECK_INT(count_files("edit"), 2);

	/* -i creates a missing table; -d does not. */
	free(db);
	db = xasprintf("%s/created.db", scratch);
	free(path);
	path = xasprintf("%s/created", scratch);
	CHECK_INT(map_hash_delete(path, keys, 1, 0, &deleted, &err), -1);
	free(err);
	err = NULL;
	CHECK_INT(map_hash_update(path, "A b\n", 4, "stdin", 0, &err), 0);
	check_query(path, "a", 0, "b");
	CHECK(stat(db, &after) == 0);
	CHECK_INT(after.st_mode & 07777, MAP_BUILD_MODE);
	free(err);
	free(db);
	free(path);
}

/* -f, -n/-N, -u, -F, -p and aliases(5) input through the edits. */
static void
test_hash_flags(void)
{
	char *path, *file, *line, *err = NULL, *value = NULL;
	struct stat st;
	size_t deleted = 0;
	char *keys[] = {"MiXed"};
	struct map *m;
	char *spec;
	const char *v, *lerr;

	/* -f: keys kept as written, found only by a -f query. */
	path = put_file("nofold", "MiXed value\n");
	CHECK_INT(map_build_hash(path, MAP_BUILD_NOFOLD, &err), 0);
	check_query(path, "MiXed", MAP_BUILD_NOFOLD, "value");
	check_query(path, "mixed", MAP_BUILD_NOFOLD, NOTFOUND);
	check_query(path, "MiXed", 0, NOTFOUND);
	CHECK_INT(
	    map_hash_delete(path, keys, 1, MAP_BUILD_NOFOLD, &deleted, &err),
	    0);
	CHECK_INT(deleted, 1);
	free(path);

	/* -n: no NUL; the daemons still find it, a -N query does not. */
	path = put_file("nonul", "key value\n");
	CHECK(chmod(path, 0600) == 0);
	CHECK_INT(
	    map_build_hash(path, MAP_BUILD_NONUL | MAP_BUILD_NOPERM, &err), 0);
	check_query(path, "key", MAP_BUILD_NONUL, "value");
	check_query(path, "key", MAP_BUILD_NUL, NOTFOUND);
	check_query(path, "key", 0, "value");
	spec = xasprintf("hash:%s", path);
	m = map_open(spec, &err);
	CHECK(m != NULL && map_lookup(m, "KEY", &v, &lerr) == 1);
	map_free(&m);
	free(spec);
	file = xasprintf("%s.db", path);
	CHECK(stat(file, &st) == 0);
	CHECK_INT(st.st_mode & 07777, MAP_BUILD_MODE);
	free(file);
	free(path);

	/* Lines that are not UTF-8 are skipped unless -u. */
	path = put_file("utf8", "good \xc3\xa9t\xc3\xa9\nbad \xe9t\xe9\n");
	CHECK_INT(map_build_hash(path, 0, &err), 0);
	check_query(path, "good", 0, "\xc3\xa9t\xc3\xa9");
	check_query(path, "bad", 0, NOTFOUND);
	CHECK_INT(map_build_hash(path, MAP_BUILD_NOUTF8, &err), 0);
	check_query(path, "bad", 0, "\xe9t\xe9");
	free(path);

	/* -F: the files' contents joined by a newline, base64. */
	free(put_file("part1", "one"));
	free(put_file("part2", "two\n"));
	line = xasprintf("k %s/part1, %s/part2\nmissing %s/nonexistent\n",
	    scratch, scratch, scratch);
	path = put_file("files", line);
	CHECK_INT(map_build_hash(path, MAP_BUILD_VALUE_FILES, &err), 0);
	/* "one\ntwo\n" */
	check_query(path, "k", 0, "b25lCnR3bwo=");
	check_query(path, "missing", 0, NOTFOUND);
	free(line);
	free(path);

	/* aliases(5) input for -i. */
	path = put_file("al", "root: admin\n");
	CHECK_INT(map_build_aliases(path, 0, &err), 0);
	CHECK_INT(map_hash_update(path, "\"Odd Name\": x, y\n", 17, "stdin",
	              MAP_BUILD_ALIASES, &err),
	    0);
	CHECK_INT(map_hash_query(path, "odd name", 0, &value, &err), 1);
	if (value != NULL)
		CHECK_STR(value, "x, y");
	free(value);
	check_query(path, "root", 0, "admin");
	free(path);
	free(err);
}

static void
test_setup(void)
{
	log_init("map_test", LOG_DEST_STDERR);
	scratch_init();
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(scratch), 0);
}

/* mynetworks syntax: networks, bare addresses, brackets, "!", tables. */
UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_static), UNIT_CASE(test_inline),
    UNIT_CASE(test_open_errors), UNIT_CASE(test_cidr),
    UNIT_CASE(test_cidr_errors), UNIT_CASE(test_pcre),
    UNIT_CASE(test_pcre_errors), UNIT_CASE(test_pcre_limit),
    UNIT_CASE(test_reload), UNIT_CASE(test_hash), UNIT_CASE(test_hash_no_nul),
    UNIT_CASE(test_hash_owner), UNIT_CASE(test_hash_edit),
    UNIT_CASE(test_hash_flags), UNIT_CASE(test_cleanup))
