/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/maildir.h"
#include "mail/maildir_uidlist.h"
#include "unit.h"

static char test_root[] = "/tmp/tern-uidlist-test-XXXXXX";

/* As Dovecot 2.3 wrote it: S/W extension fields, a header field of its
 * own (P: the POP3 UIDL format), names with and without ,S=/,W=. */
static const char dovecot_text[] =
    "3 V1700000000 N7 G0c3e8a1b47f1d265a1cb0000b8d1e3a2 Pabc\n"
    "1 :1700000000.M123P45.host,S=100,W=102\n"
    "2 W2048 S2000 :1700000001.M5P46.host\n"
    "4 P0000001500000000 :1700000002.M7P47.host,S=9:2,S\n"
    "6 :1700000003.M8P48.host\n";

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", test_root, name);
}

static void
put_file(const char *path, const char *text)
{
	CHECK_INT(file_write_atomic(path, text, strlen(text), 0600, (uid_t)-1,
	              (gid_t)-1, &(const char *){NULL}),
	    0);
}

static char *
get_file(const char *path)
{
	struct buf b;
	const char *error;
	char *s;

	buf_init(&b, 1 << 20);
	if (file_read_all(path, 1 << 20, &b, &error) < 0) {
		buf_free(&b);
		return NULL;
	}
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void
test_setup(void)
{
	CHECK(mkdtemp(test_root) != NULL);
}

static void
test_parse_dovecot(void)
{
	struct maildir_uidlist *ul = maildir_uidlist_create();
	struct maildir_uidlist_rec *rec;
	const char *error = NULL;
	struct buf out;

	CHECK_INT(maildir_uidlist_parse(
	              ul, dovecot_text, strlen(dovecot_text), &error),
	    1);
	CHECK_INT(ul->version, 3);
	CHECK_INT(ul->uidvalidity, 1700000000u);
	CHECK_INT(ul->next_uid, 7);
	CHECK(ul->have_guid && ul->guid[0] == 0x0c && ul->guid[15] == 0xa2);
	CHECK_STR(ul->hdr_ext, "Pabc");
	CHECK_INT(ul->count, 4);
	CHECK_INT(ul->recreate, 0);
	rec = maildir_uidlist_lookup(ul, "1700000001.M5P46.host");
	CHECK(rec != NULL && rec->uid == 2);
	if (rec != NULL) {
		CHECK_STR(maildir_uidlist_rec_ext(rec, 'S'), "2000");
		CHECK_STR(maildir_uidlist_rec_ext(rec, 'W'), "2048");
		CHECK(maildir_uidlist_rec_ext(rec, 'G') == NULL);
	}
	/* a name with flags finds its base; the record keeps only the base */
	rec = maildir_uidlist_lookup(ul, "1700000002.M7P47.host,S=9:2,RS");
	CHECK(rec != NULL && rec->uid == 4);
	if (rec != NULL)
		CHECK_STR(rec->base, "1700000002.M7P47.host,S=9");
	CHECK(maildir_uidlist_lookup(ul, "1700000002.M7P47.host") == NULL);
	CHECK(maildir_uidlist_lookup_uid(ul, 6) != NULL);
	CHECK(maildir_uidlist_lookup_uid(ul, 3) == NULL);
	CHECK(maildir_uidlist_lookup_uid(ul, 7) == NULL);

	/* written back as Dovecot writes it: header and fields kept */
	buf_init(&out, 1 << 20);
	CHECK_INT(maildir_uidlist_format(ul, &out), 0);
	CHECK_STR(buf_cstr(&out),
	    "3 V1700000000 N7 G0c3e8a1b47f1d265a1cb0000b8d1e3a2 Pabc\n"
	    "1 :1700000000.M123P45.host,S=100,W=102\n"
	    "2 W2048 S2000 :1700000001.M5P46.host\n"
	    "4 P0000001500000000 :1700000002.M7P47.host,S=9\n"
	    "6 :1700000003.M8P48.host\n");
	buf_free(&out);
	maildir_uidlist_free(&ul);
	CHECK(ul == NULL);
}

/* Whole text, every cut of it: a cut never parses beyond its lines. */
static void
test_parse_cuts(void)
{
	struct maildir_uidlist *ul;
	const char *error;
	size_t len = strlen(dovecot_text), i;
	int ret;

	for (i = 0; i <= len; i++) {
		ul = maildir_uidlist_create();
		ret = maildir_uidlist_parse(ul, dovecot_text, i, &error);
		if (i <
		    strlen(
		        "3 V1700000000 N7 G0c3e8a1b47f1d265a1cb0000b8d1e3a2 Pabc\n"))
			CHECK_INT(ret, 0);
		else
			CHECK_INT(ret, 1);
		maildir_uidlist_free(&ul);
	}
}

static void
test_parse_v1_and_crlf(void)
{
	static const char v1[] = "1 1234 10\r\n3 abc.def:2,S\r\n5 ghi\n";
	struct maildir_uidlist *ul = maildir_uidlist_create();
	const char *error;

	CHECK_INT(maildir_uidlist_parse(ul, v1, strlen(v1), &error), 1);
	CHECK_INT(ul->version, 1);
	CHECK_INT(ul->uidvalidity, 1234);
	CHECK_INT(ul->next_uid, 10);
	CHECK_INT(ul->count, 2);
	CHECK(!ul->have_guid);
	CHECK(maildir_uidlist_lookup(ul, "abc.def") != NULL);
	CHECK(maildir_uidlist_lookup(ul, "ghi") != NULL);
	maildir_uidlist_free(&ul);
}

static void
test_parse_table(void)
{
	static const struct {
		const char *text;
		int ret, recreate;
		unsigned count;
		uint32_t next_uid;
	} cases[] = {
	    {"", 0, 0, 0, 0},
	    {"3 V1 N1 G00000000000000000000000000000000", 0, 0, 0, 0},
	    {"3 V1 N1\n", 1, 0, 0, 1},
	    {"3 V1 N1\n1 :a", 1, 0, 0, 1}, /* last line without LF */
	    {"3 V1 N1\n1 :a\n", 1, 0, 1, 2},
	    {"3 V0 N1\n", 0, 0, 0, 0},
	    {"3 V1 N0\n", 0, 0, 0, 0},
	    {"3 V1\n", 0, 0, 0, 0},
	    {"3 Vx N1\n", 0, 0, 0, 0},
	    {"3 V4294967296 N1\n", 0, 0, 0, 0},
	    {"3 V1 N1 Gxyz\n", 0, 0, 0, 0},
	    {"3\n", 0, 0, 0, 0},
	    {"2 V1 N1\n", 0, 0, 0, 0},
	    {"x V1 N1\n", 0, 0, 0, 0},
	    {"1 5\n", 0, 0, 0, 0},
	    {"3 V1 N1\n\n", 0, 0, 0, 0},
	    {"3 V1 N1\n0 :a\n", 0, 0, 0, 0},
	    {"3 V1 N1\n1:a\n", 0, 0, 0, 0},
	    {"3 V1 N1\n2 :a\n1 :b\n", 0, 0, 0, 0},
	    {"3 V1 N1\n2 :a\n2 :b\n", 0, 0, 0, 0},
	    {"3 V1 N1\n4294967295 :a\n", 0, 0, 0, 0},
	    {"3 V1 N1\n1 :a/b\n", 0, 0, 0, 0},
	    {"3 V1 N1\n1 S5\n", 0, 0, 0, 0},
	    {"3 V1 N1\n1 :\n", 0, 0, 0, 0},
	    /* Dovecot's uid*10 wraps: 4294967297 is uid 1 */
	    {"3 V1 N1\n4294967297 :a\n", 1, 0, 1, 2},
	    /* a bad extension field is dropped, the record kept */
	    {"3 V1 N1\n1 s5 S6 :a\n", 1, 1, 1, 2},
	    /* the same name again: the later UID wins */
	    {"3 V1 N9\n1 :a\n2 :b\n3 :a\n", 1, 1, 2, 9},
	    /* v1: UID at or above next UID is corrupt */
	    {"1 7 3\n3 a\n", 0, 0, 0, 0},
	    {"3 V1 N1 Xfoo  Ybar\n1  S1  :x y z\n", 1, 0, 1, 2},
	};
	struct maildir_uidlist *ul;
	const char *error;
	size_t i, len;
	int ret;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ul = maildir_uidlist_create();
		len = strlen(cases[i].text);
		error = NULL;
		ret = maildir_uidlist_parse(ul, cases[i].text, len, &error);
		if (ret != cases[i].ret ||
		    (ret == 1 && ul->count != cases[i].count))
			printf("# case %zu\n", i);
		CHECK_INT(ret, cases[i].ret);
		CHECK(ret == 1 || error != NULL);
		if (ret == 1) {
			CHECK_INT(ul->recreate, cases[i].recreate);
			CHECK_INT(ul->count, cases[i].count);
			CHECK_INT(ul->next_uid, cases[i].next_uid);
		}
		maildir_uidlist_free(&ul);
	}
	/* NUL ends a line for the parser */
	ul = maildir_uidlist_create();
	CHECK_INT(
	    maildir_uidlist_parse(ul, "3 V1 N1\n1 :a\0junk\n", 18, &error), 1);
	CHECK(ul->count == 1 && strcmp(ul->recs[0]->base, "a") == 0);
	maildir_uidlist_free(&ul);
	/* the duplicate case keeps the later UID */
	ul = maildir_uidlist_create();
	CHECK_INT(maildir_uidlist_parse(ul, "3 V1 N9\n1 :a\n2 :b\n3 :a\n",
	              strlen("3 V1 N9\n1 :a\n2 :b\n3 :a\n"), &error),
	    1);
	CHECK(maildir_uidlist_lookup(ul, "a") != NULL &&
	      maildir_uidlist_lookup(ul, "a")->uid == 3);
	CHECK(ul->recs[0]->uid == 2 && ul->recs[1]->uid == 3);
	maildir_uidlist_free(&ul);
	/* spaces in names and fields survive a rewrite */
	{
		static const char t[] = "3 V1 N1 Xfoo  Ybar\n1  S1  :x y z\n";
		struct buf out;

		ul = maildir_uidlist_create();
		CHECK_INT(maildir_uidlist_parse(ul, t, strlen(t), &error), 1);
		ul->have_guid = 1;
		buf_init(&out, 4096);
		CHECK_INT(maildir_uidlist_format(ul, &out), 0);
		CHECK_STR(buf_cstr(&out),
		    "3 V1 N2 G00000000000000000000000000000000 Xfoo Ybar\n"
		    "1 S1 :x y z\n");
		buf_free(&out);
		maildir_uidlist_free(&ul);
	}
}

static void
test_parse_bounds(void)
{
	struct maildir_uidlist *ul;
	const char *error;
	struct buf b;
	size_t i;

	/* a line over the limit fails: the file is not Dovecot-corrupt */
	buf_init(&b, 1 << 20);
	CHECK_INT(buf_puts(&b, "3 V1 N1\n1 :"), 0);
	for (i = 0; i < MAILDIR_UIDLIST_LINE_MAX; i++)
		CHECK_INT(buf_putc(&b, 'a'), 0);
	CHECK_INT(buf_putc(&b, '\n'), 0);
	ul = maildir_uidlist_create();
	CHECK_INT(maildir_uidlist_parse(ul, b.data, b.len, &error), -1);
	CHECK(strstr(error, "longer") != NULL);
	maildir_uidlist_free(&ul);
	/* exactly the limit is fine */
	ul = maildir_uidlist_create();
	CHECK_INT(maildir_uidlist_parse(ul, b.data, b.len - 4, &error), 1);
	maildir_uidlist_free(&ul);
	buf_free(&b);
	ul = maildir_uidlist_create();
	CHECK_INT(maildir_uidlist_parse(
	              ul, "", MAILDIR_UIDLIST_SIZE_MAX + 1ul, &error),
	    -1);
	maildir_uidlist_free(&ul);
}

/* Dovecot's order: seconds, then M<usec>, then the rest bytewise. */
static void
test_order_of_new_uids(void)
{
	static char *const shuffled[] = {
	    "1700000001.M10P1.h",
	    "abc",
	    "1700000001.M9P2.h",
	    "1700000000.M999999P1.h",
	    "999999999.M5P1.h",
	    "1700000001.P5.h,S=3",
	    "1700000001.M9P2.h:2,S", /* the same base again */
	    "1700000002.M0P1.h",
	    "1700000001.M9P1.h",
	};
	static const char *const want[] = {
	    "abc",
	    "999999999.M5P1.h",
	    "1700000000.M999999P1.h",
	    "1700000001.M9P1.h",
	    "1700000001.M9P2.h",
	    "1700000001.M10P1.h",
	    /* no M: after the others by the bytes after the seconds */
	    "1700000001.P5.h,S=3",
	    "1700000002.M0P1.h",
	};
	struct maildir_uidlist *ul = maildir_uidlist_create();
	char *const later[] = {"1600000000.M1P1.h", "abc"};
	const char *error;
	size_t i;

	ul->next_uid = 5;
	CHECK_INT(maildir_uidlist_add_new(ul, shuffled,
	              sizeof(shuffled) / sizeof(shuffled[0]), &error),
	    0);
	CHECK_INT(ul->count, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < ul->count && i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_STR(ul->recs[i]->base, want[i]);
		CHECK_INT(ul->recs[i]->uid, 5 + i);
	}
	CHECK_INT(ul->next_uid, 13);
	/* an older name arriving later still gets the next UID */
	CHECK_INT(maildir_uidlist_add_new(ul, later, 2, &error), 0);
	CHECK(maildir_uidlist_lookup(ul, "1600000000.M1P1.h")->uid == 13);
	CHECK(maildir_uidlist_lookup(ul, "abc")->uid == 5);
	maildir_uidlist_remove(ul, "abc");
	CHECK(maildir_uidlist_lookup(ul, "abc") == NULL);
	CHECK(maildir_uidlist_lookup_uid(ul, 5) == NULL);
	CHECK(maildir_uidlist_lookup_uid(ul, 6) != NULL);
	/* UIDs run out before 4294967295 */
	ul->next_uid = 0xfffffffe;
	CHECK_INT(maildir_uidlist_add_new(ul, later, 2, &error), 0);
	CHECK_INT(maildir_uidlist_lookup(ul, "abc")->uid, 0xfffffffe);
	{
		char *const one[] = {"x"};

		CHECK_INT(maildir_uidlist_add_new(ul, one, 1, &error), -1);
	}
	maildir_uidlist_free(&ul);

	CHECK(maildir_uidlist_filename_cmp("1.M1.a:2,S", "1.M1.a") == 0);
	CHECK(maildir_uidlist_filename_cmp("2.x", "10.x") < 0);
	CHECK(maildir_uidlist_filename_cmp("1.M2.x", "1.M10.a") < 0);
	CHECK(maildir_uidlist_base_valid("a:2,S"));
	CHECK(!maildir_uidlist_base_valid(":2,S"));
	CHECK(!maildir_uidlist_base_valid("a\nb"));
	CHECK(!maildir_uidlist_base_valid("a/b"));
	CHECK(!maildir_uidlist_base_valid(""));
}

static char *
make_maildir(const char *name)
{
	char *md = tpath(name);
	const char *error;

	CHECK_INT(maildir_create(md, &error), 0);
	return md;
}

static void
touch(const char *md, const char *sub, const char *name)
{
	char *p = xasprintf("%s/%s/%s", md, sub, name);

	put_file(p, "Subject: x\n\nx\n");
	free(p);
}

static void
test_assign(void)
{
	char *md = make_maildir("assign"), *path, *text, *lock;
	char *b1[] = {"1700000002.M1P1.h", "1700000001.M1P1.h:2,S", "bad/x"};
	char *b2[] = {
	    "1700000001.M1P1.h", "1700000002.M1P1.h", "1700000000.M5P1.h"};
	uint32_t uids[3], uv, uv2;
	const char *error;
	struct stat st;

	path = xasprintf("%s/%s", md, MAILDIR_UIDLIST_NAME);
	lock = xasprintf("%s/%s", md, MAILDIR_UIDLIST_LOCK_NAME);
	/* a fresh maildir: a new file, a time-based UIDVALIDITY */
	CHECK_INT(maildir_uidlist_assign(md, b1, 3, uids, &uv, &error), 0);
	CHECK_INT(uids[0], 2);
	CHECK_INT(uids[1], 1);
	CHECK_INT(uids[2], 0);
	CHECK(uv > (uint32_t)time(NULL) - 60 && uv <= (uint32_t)time(NULL));
	CHECK_INT(stat(lock, &st), -1);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	text = get_file(path);
	CHECK(text != NULL && strncmp(text, "3 V", 3) == 0 &&
	      strstr(text, " N3 G") != NULL &&
	      strstr(text, "\n1 :1700000001.M1P1.h\n2 :1700000002.M1P1.h\n") !=
	          NULL);
	free(text);

	/* the same again reads only; a new one comes after */
	CHECK_INT(maildir_uidlist_assign(md, b1, 2, uids, &uv2, &error), 0);
	CHECK_INT(uv2, uv);
	CHECK_INT(uids[0], 2);
	CHECK_INT(maildir_uidlist_assign(md, b2, 3, uids, &uv2, &error), 0);
	CHECK_INT(uv2, uv);
	CHECK_INT(uids[0], 1);
	CHECK_INT(uids[1], 2);
	CHECK_INT(uids[2], 3);

	/* a rewrite keeps Dovecot's header and extension fields, drops the
	 * records of files gone, keeps one the caller missed that exists */
	text = xasprintf("3 V%u N9 G0c3e8a1b47f1d265a1cb0000b8d1e3a2 Pabc\n"
	                 "1 W20 S10 :1700000001.M1P1.h\n"
	                 "2 :1700000002.M1P1.h\n"
	                 "5 :gone.M1P1.h\n"
	                 "7 G1234 :exists.M1P1.h\n",
	    uv);
	put_file(path, text);
	free(text);
	touch(md, "cur", "exists.M1P1.h:2,S");
	{
		char *b3[] = {"1700000001.M1P1.h", "1700000002.M1P1.h",
		    "1800000000.M1P1.h"};

		CHECK_INT(
		    maildir_uidlist_assign(md, b3, 3, uids, &uv2, &error), 0);
		CHECK_INT(uv2, uv);
		CHECK_INT(uids[0], 1);
		CHECK_INT(uids[2], 9);
	}
	text = get_file(path);
	{
		char *want = xasprintf(
		    "3 V%u N10 G0c3e8a1b47f1d265a1cb0000b8d1e3a2 Pabc\n"
		    "1 W20 S10 :1700000001.M1P1.h\n"
		    "2 :1700000002.M1P1.h\n"
		    "7 G1234 :exists.M1P1.h\n"
		    "9 :1800000000.M1P1.h\n",
		    uv);

		CHECK_STR(text, want);
		free(want);
	}
	free(text);

	/* a corrupt file is rebuilt with a new UIDVALIDITY above the old */
	text = xasprintf("3 V%u N9 G0c3e8a1b47f1d265a1cb0000b8d1e3a2\n"
	                 "2 :a\n1 :b\n",
	    uv + 100);
	put_file(path, text);
	free(text);
	CHECK_INT(maildir_uidlist_assign(md, b2, 3, uids, &uv2, &error), 0);
	CHECK_INT(uv2, uv + 101);
	CHECK_INT(uids[0], 2);
	CHECK_INT(uids[1], 3);
	CHECK_INT(uids[2], 1);
	/* a symbolic link is never followed */
	CHECK_INT(unlink(path), 0);
	CHECK_INT(symlink("/etc/passwd", path), 0);
	CHECK_INT(maildir_uidlist_assign(md, b2, 3, uids, &uv2, &error), -1);
	CHECK(strstr(error, "symbolic link") != NULL);
	free(path);
	free(lock);
	free(md);
}

static void
write_lock(const char *lock, const char *content, time_t age)
{
	struct timespec ts[2];

	put_file(lock, content);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK_INT(utimensat(AT_FDCWD, lock, ts, 0), 0);
}

static void
test_lock(void)
{
	char *md = make_maildir("lock"), *lock, *content;
	struct maildir_uidlist_lock *l = NULL, *l2 = NULL;
	char host[256] = "";
	char *b[] = {"1.M1P1.h"};
	uint32_t uids[1], uv;
	const char *error;
	time_t start;
	pid_t pid;
	int status;

	CHECK_INT(gethostname(host, sizeof(host) - 1), 0);
	lock = xasprintf("%s/%s", md, MAILDIR_UIDLIST_LOCK_NAME);
	CHECK_INT(maildir_uidlist_lock(md, 0, &l, &error), 1);
	content = get_file(lock);
	{
		char *want = xasprintf("%ld:%s", (long)getpid(), host);

		CHECK_STR(content, want);
		free(want);
	}
	free(content);
	/* held: a second try times out */
	CHECK_INT(maildir_uidlist_lock(md, 0, &l2, &error), 0);
	CHECK(strstr(error, "locked") != NULL);
	maildir_uidlist_unlock(&l);
	CHECK(l == NULL);
	CHECK_INT(access(lock, F_OK), -1);

	/* a lock of a process of this host that is gone is stale at once */
	pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	content = xasprintf("%ld:%s", (long)pid, host);
	write_lock(lock, content, 10);
	free(content);
	start = time(NULL);
	CHECK_INT(maildir_uidlist_assign(md, b, 1, uids, &uv, &error), 0);
	CHECK(time(NULL) - start < 5);
	CHECK_INT(uids[0], 1);
	CHECK_INT(access(lock, F_OK), -1);

	/* a live process's lock holds (pid 1 always exists) */
	content = xasprintf("1:%s", host);
	write_lock(lock, content, 10);
	free(content);
	CHECK_INT(maildir_uidlist_lock(md, 1, &l, &error), 0);
	/* another host's lock is judged by age only: young, it holds */
	write_lock(lock, "1:elsewhere.example", 10);
	CHECK_INT(maildir_uidlist_lock_stale(md, 0, 60, &l, &error), 0);
	/* without a PID, unchanged for longer than the stale time: taken */
	write_lock(lock, "", 0);
	start = time(NULL);
	CHECK_INT(maildir_uidlist_lock_stale(md, 10, 1, &l, &error), 1);
	CHECK(time(NULL) - start <= 4);
	maildir_uidlist_unlock(&l);
	/* a lock overridden meanwhile is not removed by its old owner */
	CHECK_INT(maildir_uidlist_lock(md, 0, &l, &error), 1);
	CHECK_INT(unlink(lock), 0);
	write_lock(lock, "1:elsewhere.example", 0);
	maildir_uidlist_unlock(&l);
	CHECK_INT(access(lock, F_OK), 0);
	unlink(lock);
	free(lock);
	free(md);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_parse_dovecot),
    UNIT_CASE(test_parse_cuts), UNIT_CASE(test_parse_v1_and_crlf),
    UNIT_CASE(test_parse_table), UNIT_CASE(test_parse_bounds),
    UNIT_CASE(test_order_of_new_uids), UNIT_CASE(test_assign),
    UNIT_CASE(test_lock), UNIT_CASE(test_cleanup))
