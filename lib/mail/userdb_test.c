/* SPDX-License-Identifier: MIT */
/*
 * Tests for the user file: names, hashing and verification, the
 * passwd-file round trip with foreign fields, and the cached address list.
 */
#include <crypt.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/userdb.h"
#include "unit.h"

#define TEST_FILE_MAX (1024 * 1024)

static char test_root[] = "/tmp/userdb_test.XXXXXX";

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", test_root, name);
}

static void
put_file(const char *name, const char *text)
{
	const char *error;
	char *path = tpath(name);

	CHECK_INT(file_write_atomic(path, text, strlen(text), 0600, (uid_t)-1,
	              (gid_t)-1, &error),
	    0);
	free(path);
}

static char *
get_file(const char *name)
{
	const char *error;
	char *path = tpath(name);
	struct buf b;

	buf_init(&b, TEST_FILE_MAX);
	CHECK_INT(file_read_all(path, TEST_FILE_MAX, &b, &error), 0);
	free(path);
	return buf_steal(&b);
}

/* yescrypt where libxcrypt has it, else SHA512-CRYPT. */
static int
new_hash(const char *stored)
{
	if (strncmp(stored, "{CRYPT}$y$", 10) == 0)
		return 1;
	/* $6$ + 16 salt characters + '$' + 86 hash characters */
	return strncmp(stored, "{SHA512-CRYPT}$6$", 17) == 0 &&
	       strlen(stored) == 14 + 3 + 16 + 1 + 86;
}

static void
test_setup(void)
{
	CHECK(mkdtemp(test_root) != NULL);
}

static void
test_add_verify(void)
{
	struct userdb db = {0};
	const struct userdb_entry *e;
	const char *error;

	CHECK_INT(userdb_add(&db, "Alice@Example.TEST", "s3cret:pw",
	              USERDB_HASHED, &error),
	    0);
	CHECK_INT(userdb_add(&db, "bob@example.test", "hunter2", USERDB_HASHED,
	              &error),
	    0);
	CHECK_INT(db.count, 2);
	e = userdb_find(&db, "alice@example.test");
	CHECK(e != NULL);
	if (e != NULL) {
		CHECK_STR(e->name, "alice@example.test");
		CHECK(new_hash(e->password));
		CHECK_STR(e->rest, ":::::");
		CHECK_INT(userdb_verify(e, "s3cret:pw"), 1);
		CHECK_INT(userdb_verify(e, "s3cret:pW"), 0);
		CHECK_INT(userdb_verify(e, ""), 0);
		CHECK_INT(userdb_verify(e, "s3cret:pw "), 0);
	}
	CHECK(userdb_find(&db, "ALICE@example.test") == e);
	CHECK(userdb_find(&db, "carol@example.test") == NULL);
	/* Same password, different salt. */
	CHECK_INT(userdb_add(&db, "carol@example.test", "hunter2",
	              USERDB_HASHED, &error),
	    0);
	CHECK(strcmp(db.v[1].password, db.v[2].password) != 0);
	CHECK_INT(userdb_verify(&db.v[2], "hunter2"), 1);

	CHECK_INT(
	    userdb_add(&db, "ALICE@example.test", "x", USERDB_HASHED, &error),
	    -1);
	CHECK_STR(error, "user already exists");
	CHECK_INT(
	    userdb_add(&db, "dave@example.test", "", USERDB_HASHED, &error),
	    -1);
	CHECK_INT(
	    userdb_add(&db, "dave@example.test", "a\nb", USERDB_HASHED, &error),
	    -1);
	CHECK_INT(db.count, 3);

	CHECK_INT(userdb_del(&db, "Bob@example.test", &error), 0);
	CHECK_INT(userdb_del(&db, "bob@example.test", &error), -1);
	CHECK_INT(db.count, 2);
	CHECK_STR(db.v[0].name, "alice@example.test");
	CHECK_STR(db.v[1].name, "carol@example.test");
	userdb_free(&db);
	CHECK_INT(db.count, 0);
}

static void
test_names(void)
{
	static const struct {
		const char *name;
		int ok;
	} cases[] = {
	    {"a@b", 1},
	    {"first.last+tag@sub.example.test", 1},
	    {"", 0},
	    {"alice", 0},
	    {"@example.test", 0},
	    {"alice@", 0},
	    {"a@b@c", 0},
	    {"a b@c", 0},
	    {"a\t@c", 0},
	    {"a@c\n", 0},
	    {"a\x7f@c", 0},
	    {"a:b@c", 0},
	    {"#a@c", 0},
	    {"a/b@c", 0},
	    {"a@c/..", 0},
	    {"a\\b@c", 0},
	    {".a@c", 0},
	    {"a@.c", 0},
	    {"a@..", 0},
	};
	struct userdb db = {0};
	const char *error;
	size_t i;
	int got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = userdb_add(
		          &db, cases[i].name, "pw", USERDB_HASHED, &error) == 0;
		if (got != cases[i].ok) {
			printf("# name \"%s\": got %d\n", cases[i].name, got);
			CHECK(0);
		}
	}
	userdb_free(&db);
}

static void
test_schemes(void)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	struct userdb_entry e;
	const char *h;

	h = crypt_r("pw", "$5$abcdefgh", cd);
	CHECK(h != NULL && strncmp(h, "$5$", 3) == 0);
	e.name = "x@y";
	e.rest = "";
	e.password = xasprintf("{CRYPT}%s", h);
	CHECK_INT(userdb_verify(&e, "pw"), 1);
	CHECK_INT(userdb_verify(&e, "px"), 0);
	free(e.password);
	/* SHA512-CRYPT must be a $6$ hash. */
	e.password = xasprintf("{SHA512-CRYPT}%s", h);
	CHECK_INT(userdb_verify(&e, "pw"), 0);
	free(e.password);
	h = crypt_r("pw", "$6$abcdefgh", cd);
	e.password = xasprintf("{sha512-crypt}%s", h);
	CHECK_INT(userdb_verify(&e, "pw"), 1);
	free(e.password);
	/* Plaintext schemes, as Dovecot's passwd-file allows them. */
	e.password = "{PLAIN}pw";
	CHECK_INT(userdb_verify(&e, "pw"), 1);
	CHECK_INT(userdb_verify(&e, "pW"), 0);
	CHECK_INT(userdb_verify(&e, "pwx"), 0);
	CHECK_INT(userdb_verify(&e, "p"), 0);
	CHECK_INT(userdb_verify(&e, ""), 0);
	CHECK_STR(userdb_plaintext(&e), "pw");
	e.password = "{clear}two words";
	CHECK_INT(userdb_verify(&e, "two words"), 1);
	CHECK_INT(userdb_verify(&e, "two"), 0);
	e.password = "{CLEARTEXT}pw";
	CHECK_INT(userdb_verify(&e, "pw"), 1);
	e.password = "{PLAIN}";
	CHECK_INT(userdb_verify(&e, ""), 0);
	e.password = "{PLAINX}pw";
	CHECK_INT(userdb_verify(&e, "pw"), 0);
	CHECK(userdb_plaintext(&e) == NULL);
	e.password = "{CRYPT}$6$abc";
	CHECK(userdb_plaintext(&e) == NULL);
	CHECK_INT(userdb_equal_ct("abc", 3, "abc", 3), 1);
	CHECK_INT(userdb_equal_ct("abc", 3, "abd", 3), 0);
	CHECK_INT(userdb_equal_ct("abc", 3, "ab", 2), 0);
	CHECK_INT(userdb_equal_ct("abc", 3, "", 0), 0);
	CHECK_INT(userdb_equal_ct("", 0, "", 0), 1);
	e.password = "pw";
	CHECK_INT(userdb_verify(&e, "pw"), 0);
	e.password = "{CRYPT}";
	CHECK_INT(userdb_verify(&e, ""), 0);
	e.password = "{CRYPT}*";
	CHECK_INT(userdb_verify(&e, ""), 0);
	e.password = "{SHA512-CRYPT}$6$abc$tooshort";
	CHECK_INT(userdb_verify(&e, "pw"), 0);
	free(cd);
}

/* Stray CRs before the LF are not part of the last field. */
static void
test_stray_cr(void)
{
	struct userdb db;
	const struct userdb_entry *e;
	const char *error;
	char *users = tpath("users");

	put_file("users", "cr@example.test:{PLAIN}y\r\r\n"
	                  "rest@example.test:{PLAIN}z:1:2\r\r\r\n");
	CHECK_INT(userdb_load(users, &db, &error), 0);
	e = userdb_find(&db, "cr@example.test");
	CHECK(e != NULL);
	if (e != NULL)
		CHECK_STR(e->password, "{PLAIN}y");
	e = userdb_find(&db, "rest@example.test");
	CHECK(e != NULL);
	if (e != NULL)
		CHECK_STR(e->rest, "1:2");
	userdb_free(&db);
	free(users);
}

static void
test_round_trip(void)
{
	static const char foreign[] =
	    "# managed by hand\n"
	    "\n"
	    "Bob@Example.test:{PLAIN}x:1000:1000::/home/bob::userdb_quota_rule=*:storage=1G\r\n"
	    "root:{CRYPT}*\n"
	    "eve@example.test:{CRYPT}abc:\n";
	struct userdb db, db2;
	const struct userdb_entry *e;
	const char *error;
	char *users = tpath("users"), *list = tpath("mailboxes"), *text;
	struct stat st;

	put_file("users", foreign);
	CHECK_INT(userdb_load(users, &db, &error), 0);
	CHECK_INT(db.count, 3);
	e = userdb_find(&db, "bob@example.test");
	CHECK(e != NULL);
	if (e != NULL) {
		CHECK_STR(e->name, "bob@example.test");
		CHECK_STR(e->password, "{PLAIN}x");
		CHECK_STR(e->rest,
		    "1000:1000::/home/bob::userdb_quota_rule=*:storage=1G");
	}
	CHECK_INT(
	    userdb_add(&db, "new@example.test", "pw", USERDB_HASHED, &error),
	    0);
	CHECK_INT(
	    userdb_save(&db, users, list, (uid_t)-1, (gid_t)-1, &error), 0);
	CHECK_INT(stat(users, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	CHECK_INT(stat(list, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);

	text = get_file("mailboxes");
	/* Bob's quota rule reaches the list; no hash does. */
	CHECK_STR(text, "bob@example.test\tquota=1073741824S\nroot\n"
	                "eve@example.test\nnew@example.test\n");
	free(text);
	text = get_file("users");
	CHECK(strncmp(text,
	          "bob@example.test:{PLAIN}x:1000:1000::/home/bob::"
	          "userdb_quota_rule=*:storage=1G\n"
	          "root:{CRYPT}*\n"
	          "eve@example.test:{CRYPT}abc\n"
	          "new@example.test:{",
	          strlen("bob@example.test:{PLAIN}x:1000:1000::/home/bob::"
	                 "userdb_quota_rule=*:storage=1G\n"
	                 "root:{CRYPT}*\n"
	                 "eve@example.test:{CRYPT}abc\n"
	                 "new@example.test:{")) == 0);
	CHECK(strstr(text, "#") == NULL);
	CHECK(strlen(text) > 7 &&
	      strcmp(text + strlen(text) - 7, "::::::\n") == 0);
	free(text);

	CHECK_INT(userdb_load(users, &db2, &error), 0);
	CHECK_INT(db2.count, db.count);
	e = userdb_find(&db2, "new@example.test");
	CHECK(e != NULL && userdb_verify(e, "pw") == 1);
	e = userdb_find(&db2, "bob@example.test");
	CHECK(e != NULL && strcmp(e->rest, db.v[0].rest) == 0);
	userdb_free(&db2);
	userdb_free(&db);
	free(users);
	free(list);
}

static void
test_load_errors(void)
{
	static const char *bad[] = {
	    "a@b\n",
	    "a@b:x\nA@B:y\n",
	    "a b@c:x\n",
	    ":x\n",
	    "a@b:x\n\x01:y\n",
	};
	struct userdb db;
	const char *error;
	char *path = tpath("bad");
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file("bad", bad[i]);
		error = NULL;
		CHECK_INT(userdb_load(path, &db, &error), -1);
		CHECK(error != NULL && strstr(error, path) != NULL);
		CHECK_INT(db.count, 0);
	}
	CHECK(strstr(error, ":2:") != NULL);
	free(path);
	path = tpath("missing");
	CHECK_INT(userdb_load(path, &db, &error), 0);
	CHECK_INT(db.count, 0);
	free(path);
	/* tern init creates an empty user file; it must load as empty. */
	put_file("empty", "");
	path = tpath("empty");
	CHECK_INT(userdb_load(path, &db, &error), 0);
	CHECK_INT(db.count, 0);
	free(path);
}

static void
test_list(void)
{
	const char *error;
	char *list = tpath("list");
	struct timespec ts[2];

	CHECK_INT(userdb_list_contains(list, "a@b", &error), -1);
	CHECK(strstr(error, "No such file") != NULL);
	put_file(
	    "list", "a@example.test\n  B@Example.Test \n# c@example.test\n");
	CHECK_INT(userdb_list_contains(list, "a@example.test", &error), 1);
	CHECK_INT(userdb_list_contains(list, "A@EXAMPLE.test", &error), 1);
	CHECK_INT(userdb_list_contains(list, "b@example.test", &error), 1);
	CHECK_INT(userdb_list_contains(list, "c@example.test", &error), 0);
	CHECK_INT(userdb_list_contains(list, "example.test", &error), 0);
	CHECK_INT(userdb_list_contains(list, "", &error), 0);

	/* Atomic replacement: a new inode. */
	put_file("list", "c@example.test\n");
	CHECK_INT(userdb_list_contains(list, "a@example.test", &error), 0);
	CHECK_INT(userdb_list_contains(list, "c@example.test", &error), 1);

	/* In-place edit of the same size: only the mtime tells. */
	{
		int fd = open(list, O_WRONLY);

		CHECK(fd >= 0);
		CHECK_INT(pwrite(fd, "d", 1, 0), 1);
		close(fd);
	}
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK_INT(utimensat(AT_FDCWD, list, ts, 0), 0);
	CHECK_INT(userdb_list_contains(list, "d@example.test", &error), 1);
	CHECK_INT(userdb_list_contains(list, "c@example.test", &error), 0);

	put_file("list", "");
	CHECK_INT(userdb_list_contains(list, "d@example.test", &error), 0);
	free(list);
}

static void
test_passwd(void)
{
	struct userdb db = {0};
	const char *error;
	char *old;

	CHECK_INT(
	    userdb_add(&db, "p@example.test", "first", USERDB_HASHED, &error),
	    0);
	old = xstrdup(db.v[0].password);
	CHECK_INT(userdb_set_password(
	              &db, "P@example.test", "second", USERDB_HASHED, &error),
	    0);
	CHECK(strcmp(old, db.v[0].password) != 0);
	CHECK(new_hash(db.v[0].password));
	CHECK_INT(userdb_verify(&db.v[0], "second"), 1);
	CHECK_INT(userdb_verify(&db.v[0], "first"), 0);
	CHECK_STR(db.v[0].rest, ":::::");
	CHECK_INT(userdb_set_password(
	              &db, "q@example.test", "x", USERDB_HASHED, &error),
	    -1);
	CHECK_INT(userdb_set_password(
	              &db, "p@example.test", "a\nb", USERDB_HASHED, &error),
	    -1);
	CHECK_INT(userdb_verify(&db.v[0], "second"), 1);
	free(old);
	userdb_free(&db);
}

/* ternuser -s PLAIN: the password in clear, for APOP, and back. */
static void
test_plain(void)
{
	struct userdb db = {0};
	const char *error;
	char big[USERDB_PASSWORD_MAX + 1];

	CHECK_INT(
	    userdb_add(&db, "a@example.test", "apop pw", USERDB_PLAIN, &error),
	    0);
	CHECK_STR(db.v[0].password, "{PLAIN}apop pw");
	CHECK_STR(userdb_plaintext(&db.v[0]), "apop pw");
	CHECK_INT(userdb_verify(&db.v[0], "apop pw"), 1);
	CHECK_INT(userdb_verify(&db.v[0], "apop"), 0);
	/* The field would end at the ':'. */
	CHECK_INT(userdb_set_password(
	              &db, "a@example.test", "a:b", USERDB_PLAIN, &error),
	    -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[USERDB_PASSWORD_MAX - strlen("{PLAIN}")] = '\0';
	CHECK_INT(userdb_set_password(
	              &db, "a@example.test", big, USERDB_PLAIN, &error),
	    0);
	big[USERDB_PASSWORD_MAX - strlen("{PLAIN}")] = 'x';
	big[USERDB_PASSWORD_MAX - strlen("{PLAIN}") + 1] = '\0';
	CHECK_INT(userdb_set_password(
	              &db, "a@example.test", big, USERDB_PLAIN, &error),
	    -1);
	/* Hashed again: no longer readable. */
	CHECK_INT(userdb_set_password(
	              &db, "a@example.test", "new", USERDB_HASHED, &error),
	    0);
	CHECK(new_hash(db.v[0].password));
	CHECK(userdb_plaintext(&db.v[0]) == NULL);
	CHECK_INT(userdb_verify(&db.v[0], "new"), 1);
	userdb_free(&db);
}

static void
test_limits(void)
{
	static const struct {
		const char *rest;
		long long bytes, count;
	} cases[] = {
	    {"", -1, -1},
	    {":::::", -1, -1},
	    {":::::userdb_quota_rule=*:storage=100M", 100LL << 20, -1},
	    {":::::userdb_quota_rule=*:storage=100", 102400, -1},
	    {":::::userdb_quota_rule=*:storage=7B", 7, -1},
	    {":::::userdb_quota_rule=*:storage=2t", 2LL << 40, -1},
	    {":::::userdb_quota_rule=*:bytes=1000", 1000, -1},
	    {":::::userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:messages=1000",
	        1LL << 30, 1000},
	    {":::::quota_rule=*:storage=1K:messages=5", 1024, 5},
	    {"1000:1000::/home/x::userdb_quota_rule=?:storage=0", 0, -1},
	    /* Folders' rules, relative and odd limits count for nothing. */
	    {":::::userdb_quota_rule=Trash:storage=10M", -1, -1},
	    {":::::userdb_quota_rule=*:storage=+10M", -1, -1},
	    {":::::userdb_quota_rule=*:storage=10%", -1, -1},
	    {":::::userdb_quota_rule=*:storage=10X", -1, -1},
	    {":::::userdb_quota_rule=*:storage=", -1, -1},
	    {":::::userdb_quota_rule=*:storage=99999999999999999999", -1, -1},
	    {":::::userdb_quota_rulex=*:storage=1", -1, -1},
	    {":::::userdb_mail=maildir:~/x userdb_quota_rule3=*:messages=9", -1,
	        9},
	    /* A colon-rich home: the extra fields start at the sixth. */
	    {"1:2:g:/h:/s:userdb_quota_rule=*:messages=3", -1, 3},
	    {"1:2:g:userdb_quota_rule=*:messages=3", -1, -1},
	};
	struct userdb_entry e = {0};
	struct userdb_limits l;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e.rest = (char *)cases[i].rest;
		userdb_entry_limits(&e, &l);
		if (l.bytes != cases[i].bytes || l.count != cases[i].count) {
			printf("# \"%s\": got %lld %lld\n", cases[i].rest,
			    (long long)l.bytes, (long long)l.count);
			CHECK(0);
		}
	}
}

static void
test_set_limits(void)
{
	static const struct {
		const char *rest;
		long long bytes, count;
		const char *want;
	} cases[] = {
	    {":::::", 100LL << 20, 1000,
	        ":::::userdb_quota_rule=*:storage=100M "
	        "userdb_quota_rule2=*:messages=1000"},
	    {"", 12345, -1, ":::::userdb_quota_rule=*:storage=12345B"},
	    {"1:2", -1, 5, "1:2::::userdb_quota_rule=*:messages=5"},
	    {":::::userdb_quota_rule=*:storage=1G", -1, -1, ":::::"},
	    {":::::userdb_quota_rule=*:storage=1G", 0, -1,
	        ":::::userdb_quota_rule=*:storage=0"},
	    {"1000:1000::/home/b::userdb_mail=x userdb_quota_rule=*:storage=1G "
	     "userdb_quota_rule2=Trash:ignore userdb_quota_rule3=*:messages=5",
	        1LL << 30, -1,
	        "1000:1000::/home/b::userdb_quota_rule=*:storage=1G "
	        "userdb_quota_rule2=Trash:ignore userdb_mail=x"},
	    {":::::quota_rule=*:storage=1G", 2048, 3,
	        ":::::userdb_quota_rule=*:storage=2K "
	        "userdb_quota_rule2=*:messages=3"},
	};
	struct userdb db = {0};
	struct userdb_limits l;
	const char *error;
	size_t i;

	CHECK_INT(
	    userdb_add(&db, "l@example.test", "pw", USERDB_HASHED, &error), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		free(db.v[0].rest);
		db.v[0].rest = xstrdup(cases[i].rest);
		l.bytes = cases[i].bytes;
		l.count = cases[i].count;
		CHECK_INT(
		    userdb_set_limits(&db, "L@example.test", &l, &error), 0);
		CHECK_STR(db.v[0].rest, cases[i].want);
		/* What was set reads back. */
		userdb_entry_limits(&db.v[0], &l);
		CHECK_INT(l.bytes, cases[i].bytes);
		if (strstr(cases[i].rest, "messages=5") == NULL ||
		    cases[i].count >= 0)
			CHECK_INT(l.count, cases[i].count);
	}
	CHECK_INT(userdb_set_limits(&db, "x@example.test", &l, &error), -1);
	userdb_free(&db);
}

static void
test_list_quota(void)
{
	struct userdb_limits l;
	const char *error;
	char *list = tpath("qlist");

	put_file("qlist", "a@example.test\tquota=1000S,5C\n"
	                  "b@example.test quota=0S future=1\n"
	                  "c@example.test\tquota=7C\n"
	                  "d@example.test\tquota=bad\n"
	                  "E@example.test\n");
	CHECK_INT(userdb_list_lookup(list, "A@example.test", &l, &error), 1);
	CHECK_INT(l.bytes, 1000);
	CHECK_INT(l.count, 5);
	CHECK_INT(userdb_list_lookup(list, "b@example.test", &l, &error), 1);
	CHECK_INT(l.bytes, 0);
	CHECK_INT(l.count, -1);
	CHECK_INT(userdb_list_lookup(list, "c@example.test", &l, &error), 1);
	CHECK_INT(l.bytes, -1);
	CHECK_INT(l.count, 7);
	CHECK_INT(userdb_list_lookup(list, "d@example.test", &l, &error), 1);
	CHECK_INT(l.bytes, -1);
	CHECK_INT(l.count, -1);
	CHECK_INT(userdb_list_lookup(list, "e@example.test", &l, &error), 1);
	CHECK_INT(l.bytes, -1);
	CHECK_INT(userdb_list_lookup(list, "f@example.test", &l, &error), 0);
	/* Old readers' question still has its answer. */
	CHECK_INT(userdb_list_contains(list, "a@example.test", &error), 1);
	CHECK_INT(userdb_list_contains(list, "quota=1000S,5C", &error), 0);
	free(list);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_add_verify),
    UNIT_CASE(test_names), UNIT_CASE(test_schemes), UNIT_CASE(test_stray_cr),
    UNIT_CASE(test_round_trip), UNIT_CASE(test_load_errors),
    UNIT_CASE(test_list), UNIT_CASE(test_passwd), UNIT_CASE(test_plain),
    UNIT_CASE(test_limits), UNIT_CASE(test_set_limits),
    UNIT_CASE(test_list_quota), UNIT_CASE(test_cleanup))
