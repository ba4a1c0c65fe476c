/* SPDX-License-Identifier: MIT */
/*
 * Tests for maildir delivery: byte-exact CRLF -> LF conversion across read
 * chunks, the ",S=" and ",W=" sizes, unique names, creating missing maildirs,
 * failures that leave nothing behind, names shared by repeated attempts
 * (EEXIST, the cur/ scan, batches), and Maildir++ quota (maildirsize
 * parsing, recalculation, decisions).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"
#include "unit.h"

/* Must match MAILDIR_CHUNK in maildir.c: CRs are placed around it. */
#define TEST_CHUNK    (64 * 1024)
#define TEST_FILE_MAX (1024 * 1024)
#define TEST_SKIP     37 /* bytes before the message in the source */

static char test_root[] = "/tmp/maildir_test.XXXXXX";

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", test_root, name);
}

/* A source file holding TEST_SKIP junk bytes, then data. */
static int
make_source(const char *data, size_t len)
{
	char *path = tpath("src");
	char junk[TEST_SKIP];
	int fd;

	memset(junk, '\r', sizeof(junk));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, junk, sizeof(junk)), 0);
	CHECK_INT(file_write_all(fd, data, len), 0);
	free(path);
	return fd;
}

/* The reference conversion: every CRLF becomes LF, nothing else changes. */
static size_t
crlf_to_lf(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			continue;
		out[o++] = in[i];
	}
	return o;
}

/* The reference wire size (",W="): the bytes as POP3 sends them, with
 * CRLF line ends and a CRLF after a last line without one. */
static size_t
wire_size(const char *stored, size_t len)
{
	size_t i, n = len;

	for (i = 0; i < len; i++) {
		if (stored[i] == '\n' && (i == 0 || stored[i - 1] != '\r'))
			n++;
	}
	if (len > 0 && stored[len - 1] != '\n')
		n += 2;
	return n;
}

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* maildir_deliver without identity, quota or batch. */
static int
deliver(const char *maildir, const char *prefix, int fd, uint64_t len,
    const char *unique, char **path_r, const char **error_r)
{
	struct maildir_delivery d = {0};

	d.maildir = maildir;
	d.prefix = prefix;
	d.src_fd = fd;
	d.off = TEST_SKIP;
	d.len = len;
	d.unique = unique;
	return maildir_deliver(&d, path_r, error_r);
}

/* Delivers and checks the stored bytes and the name. */
static char *
deliver_check(
    const char *maildir, const char *prefix, const char *data, size_t len)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	char *want = xmalloc(plen + len + 1), *path = NULL, *s, size[64];
	const char *error = NULL;
	struct buf got;
	size_t wlen;
	int fd = make_source(data, len);

	if (plen > 0)
		memcpy(want, prefix, plen);
	wlen = plen + crlf_to_lf(data, len, want + plen);
	CHECK_INT(deliver(maildir, prefix, fd, len, NULL, &path, &error),
	    MAILDIR_DELIVERED);
	close(fd);
	if (path == NULL) {
		printf("# deliver: %s\n", error != NULL ? error : "?");
		free(want);
		return NULL;
	}
	buf_init(&got, TEST_FILE_MAX);
	CHECK_INT(file_read_all(path, TEST_FILE_MAX, &got, &error), 0);
	CHECK_INT(got.len, wlen);
	CHECK(got.len == wlen && memcmp(got.data, want, wlen) == 0);
	snprintf(size, sizeof(size), ",S=%zu,W=%zu", wlen,
	    wire_size(want, wlen));
	s = strstr(path, ",S=");
	CHECK(s != NULL && strcmp(s, size) == 0);
	s = xasprintf("%s/new/", maildir);
	CHECK(strncmp(path, s, strlen(s)) == 0);
	CHECK(strchr(path + strlen(s), '/') == NULL);
	free(s);
	buf_free(&got);
	free(want);
	return path;
}

static void
test_setup(void)
{
	CHECK(mkdtemp(test_root) != NULL);
}

static void
test_create(void)
{
	const char *error;
	char *md = tpath("a/b/Maildir"), *sub;
	struct stat st;

	CHECK_INT(maildir_create(md, &error), 0);
	CHECK_INT(maildir_create(md, &error), 0);
	sub = xasprintf("%s/cur", md);
	CHECK_INT(stat(sub, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(st.st_mode & 0077, 0);
	free(sub);
	CHECK_INT(count_entries(md), 3);
	free(md);

	md = tpath("src");
	close(make_source("", 0));
	sub = xasprintf("%s/x", md);
	CHECK_INT(maildir_create(sub, &error), -1);
	free(sub);
	free(md);
}

static void
test_simple(void)
{
	static const char msg[] =
	    "Subject: hi\r\nX: a\rb\r\n\r\nbody\r\n\r\n.\r\nbare\nlast\r";
	char *md = tpath("simple/Maildir"), *p1, *p2, *p3, *p4, *p5;

	/* The maildir does not exist yet: created on first delivery. */
	p1 = deliver_check(md, "Return-Path: <a@b>\n", msg, sizeof(msg) - 1);
	p2 = deliver_check(md, "", msg, sizeof(msg) - 1);
	p3 = deliver_check(md, NULL, msg, sizeof(msg) - 1);
	p4 = deliver_check(md, "Return-Path: <>\n", "", 0);
	p5 = deliver_check(md, "", "\r\n\r", 3);
	CHECK(p1 != NULL && p2 != NULL && strcmp(p1, p2) != 0);
	CHECK(p2 != NULL && p3 != NULL && strcmp(p2, p3) != 0);
	CHECK(p4 != NULL && strstr(p4, ",S=16,W=17") != NULL);
	/* Stored "\n\r": the LF gets its CR, the last line a CRLF. */
	CHECK(p5 != NULL && strstr(p5, ",S=2,W=5") != NULL);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	free(p5);
	p1 = xasprintf("%s/new", md);
	CHECK_INT(count_entries(p1), 5);
	free(p1);
	p1 = xasprintf("%s/tmp", md);
	CHECK_INT(count_entries(p1), 0);
	free(p1);
	free(md);
}

static void
test_chunks(void)
{
	static const size_t cr_at[] = {
	    TEST_CHUNK - 1,     /* CR LF split by the chunk end */
	    2 * TEST_CHUNK - 1, /* CR at chunk end, then CR LF */
	    3 * TEST_CHUNK - 1, /* lone CR at chunk end */
	};
	size_t len = 3 * TEST_CHUNK + 100, i;
	char *data = xmalloc(len), *md = tpath("big"), *path;

	for (i = 0; i < len; i++)
		data[i] = (char)('a' + i % 26);
	for (i = 0; i + 1 < len; i += 77) {
		data[i] = '\r';
		data[i + 1] = '\n';
	}
	data[cr_at[0]] = '\r';
	data[cr_at[0] + 1] = '\n';
	data[cr_at[1]] = '\r';
	data[cr_at[1] + 1] = '\r';
	data[cr_at[1] + 2] = '\n';
	data[cr_at[2]] = '\r';
	data[cr_at[2] + 1] = 'x';
	path = deliver_check(md, "P: x\n", data, len);
	free(path);
	/* Also with the whole message ending in a CR on a chunk end. */
	path = deliver_check(md, "", data, TEST_CHUNK);
	free(path);
	path = deliver_check(md, "", data, 2 * TEST_CHUNK + 1);
	free(path);
	free(data);
	free(md);
}

static void
test_failures(void)
{
	const char *error = NULL;
	char *md = tpath("fail/Maildir"), *path = NULL, *d;
	int fd;

	/* The source is shorter than claimed: nothing may stay behind. */
	fd = make_source("abc\r\n", 5);
	CHECK_INT(
	    deliver(md, "P: x\n", fd, 10, NULL, &path, &error), MAILDIR_ERROR);
	CHECK(path == NULL);
	CHECK(error != NULL && strstr(error, "end of file") != NULL);
	d = xasprintf("%s/new", md);
	CHECK_INT(count_entries(d), 0);
	free(d);
	d = xasprintf("%s/tmp", md);
	CHECK_INT(count_entries(d), 0);

	/* An unwritable tmp/ (meaningless as root, which ignores modes). */
	if (geteuid() != 0) {
		CHECK_INT(chmod(d, 0500), 0);
		error = NULL;
		CHECK_INT(
		    deliver(md, "", fd, 5, NULL, &path, &error), MAILDIR_ERROR);
		CHECK(error != NULL && strstr(error, strerror(EACCES)) != NULL);
		CHECK(path == NULL);
		CHECK_INT(chmod(d, 0700), 0);
		CHECK_INT(count_entries(d), 0);
		free(d);
		d = xasprintf("%s/new", md);
		CHECK_INT(count_entries(d), 0);
	} else {
		printf("# skipped unwritable maildir test as root\n");
	}
	free(d);

	/* A maildir path below a regular file cannot be created. */
	free(md);
	md = tpath("src/Maildir");
	error = NULL;
	CHECK_INT(deliver(md, "", fd, 5, NULL, &path, &error), MAILDIR_ERROR);
	CHECK(error != NULL && strstr(error, strerror(ENOTDIR)) != NULL);
	close(fd);
	free(md);
}

static void
test_unique(void)
{
	char host[256], *u, *v, *w, want[512];

	CHECK_INT(gethostname(host, sizeof(host)), 0);
	u = maildir_unique(1700000000, 42, "0ABCDEFGHJKMNP", 3, NULL);
	v = maildir_unique(1700000000, 42, "0ABCDEFGHJKMNP", 3, NULL);
	w = maildir_unique(1700000000, 42, "0ABCDEFGHJKMNP", 3, "/a/Maildir");
	if (strchr(host, '/') == NULL && strchr(host, ':') == NULL) {
		snprintf(want, sizeof(want),
		    "1700000000.M000042Q0ABCDEFGHJKMNPR3.%s", host);
		CHECK_STR(u, want);
	}
	CHECK_STR(u, v); /* every attempt: the same name */
	CHECK(strncmp(w, "1700000000.M000042Q0ABCDEFGHJKMNPR3H", 36) == 0);
	CHECK(strlen(w) == strlen(u) + 9);
	CHECK(strchr(u, '/') == NULL && strchr(u, ':') == NULL);
	free(u);
	u = maildir_unique(1700000000, 42, "0ABCDEFGHJKMNP", 4, NULL);
	CHECK(strcmp(u, v) != 0);
	free(u);
	free(v);
	u = maildir_unique(1700000000, 42, "0ABCDEFGHJKMNP", 3, "/b/Maildir");
	CHECK(strcmp(u, w) != 0);
	free(u);
	free(w);
}

/* Moves every file of new/ to cur/ with ":2,<flags>", as an IMAP
 * server does once it has shown the message. */
static void
move_to_cur(const char *md, const char *info)
{
	char *dir = xasprintf("%s/new", md), *from, *to;
	struct dirent *de;
	DIR *d = opendir(dir);

	CHECK(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		from = xasprintf("%s/%s", dir, de->d_name);
		to = xasprintf("%s/cur/%s%s", md, de->d_name, info);
		CHECK_INT(rename(from, to), 0);
		free(from);
		free(to);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

static void
test_idempotent(void)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct maildir_batch batch = {0};
	struct maildir_delivery d = {0};
	const char *error = NULL;
	char *md = tpath("again/Maildir"), *p1 = NULL, *p2 = NULL, *sub,
	     *unique = maildir_unique(1700000000, 7, "0ABCDEFGHJKMNQ", 0, NULL),
	     *stale;
	int fd = make_source(msg, sizeof(msg) - 1);

	d.maildir = md;
	d.prefix = "Return-Path: <a@b>\n";
	d.src_fd = fd;
	d.off = TEST_SKIP;
	d.len = sizeof(msg) - 1;
	d.unique = unique;
	d.batch = &batch;
	CHECK_INT(maildir_deliver(&d, &p1, &error), MAILDIR_DELIVERED);
	/* A tmp/ file of a dead process with our pid does not stop us. */
	stale = xasprintf("%s/tmp/%s,P%ld", md, unique, (long)getpid());
	close(open(stale, O_WRONLY | O_CREAT, 0600));
	/* The retry after a crash: the same name, nothing stored. */
	CHECK_INT(maildir_deliver(&d, &p2, &error), MAILDIR_EXISTS);
	CHECK(p1 != NULL && p2 != NULL && strcmp(p1, p2) == 0);
	CHECK(p1 != NULL && strstr(p1, unique) != NULL &&
	      strstr(p1, ",S=36") != NULL);
	/* Both went through one new/ in the batch, synced once. */
	CHECK_INT(batch.count, 1);
	CHECK_INT(maildir_batch_sync(&batch, &error), 0);
	CHECK_INT(batch.count, 0);
	sub = xasprintf("%s/new", md);
	CHECK_INT(count_entries(sub), 1);
	free(sub);
	sub = xasprintf("%s/tmp", md);
	CHECK_INT(count_entries(sub), 0);
	free(sub);
	free(p1);
	free(p2);
	p1 = p2 = NULL;

	/* Read since: the copy is in cur/ with flags. Only the scan that
	 * a recovered delivery asks for finds it. */
	move_to_cur(md, ":2,S");
	d.batch = NULL;
	d.check_cur = 1;
	CHECK_INT(maildir_deliver(&d, &p1, &error), MAILDIR_EXISTS);
	sub = xasprintf("%s/new", md);
	CHECK_INT(count_entries(sub), 0);
	free(sub);
	/* Without the scan it is delivered again: new/ alone is checked. */
	d.check_cur = 0;
	CHECK_INT(maildir_deliver(&d, &p2, &error), MAILDIR_DELIVERED);
	free(p1);
	free(p2);
	/* A name merely starting like ours is another message. */
	d.check_cur = 1;
	free(unique);
	unique = maildir_unique(1700000000, 7, "0ABCDEFGHJKMNQ", 1, NULL);
	d.unique = unique;
	p1 = xasprintf("%s/cur/%s0,S=36:2,", md, unique);
	close(open(p1, O_WRONLY | O_CREAT, 0600));
	free(p1);
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	close(fd);
	free(stale);
	free(unique);
	free(md);
}

static void
test_quota_parse(void)
{
	static const struct {
		const char *text;
		uint64_t qbytes, qcount;
		long age;
		int ok;
		uint64_t bytes, count;
	} cases[] = {
	    {"1000S,10C\n100 1\n50 1\n", 1000, 10, 0, 1, 150, 2},
	    {"1000S\n100 1\n-40 -1\n", 1000, 0, 0, 1, 60, 0},
	    {"10C\n100 1\n", 0, 10, 0, 1, 100, 1},
	    {"1000S,10C\n100 1\n50 1", 1000, 10, 0, 1, 100, 1}, /* partial */
	    {"1000S,10C\n100 1\n", 2000, 10, 0, 0, 0, 0},       /* limits */
	    {"1000S,10C\n", 1000, 10, 0, 0, 0, 0},              /* no sums */
	    {"1000S,10C\n100 x\n", 1000, 10, 0, 0, 0, 0},
	    {"1000S,10C\n100\n", 1000, 10, 0, 0, 0, 0},
	    {"1000S,10C\n100 1\n-200 -1\n", 1000, 10, 0, 0, 0, 0},
	    {"1000X\n100 1\n", 1000, 0, 0, 0, 0, 0},
	    {"", 1000, 0, 0, 0, 0, 0},
	    /* Over quota: only a single fresh sum is believed. */
	    {"1000S\n2000 3\n", 1000, 0, 0, 1, 2000, 3},
	    {"1000S\n2000 3\n", 1000, 0, MAILDIR_SIZE_STALE + 1, 0, 0, 0},
	    {"1000S\n1000 3\n1000 1\n", 1000, 0, 0, 0, 0, 0},
	    {"5C\n10 5\n1 1\n", 0, 5, 0, 0, 0, 0},
	    {"0S\n10 5\n", 0, 0, 0, 1, 10, 5},
	    {"9223372036854775807 1\n", 0, 0, 0, 0, 0, 0},
	    {"0S\n9223372036854775807 1\n1 1\n", 0, 0, 0, 0, 0, 0},
	};
	struct maildir_usage u;
	struct maildir_quota q;
	char big[MAILDIR_SIZE_MAX + 1];
	size_t i;
	int got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q.bytes = cases[i].qbytes;
		q.count = cases[i].qcount;
		u.bytes = u.count = 0;
		got = maildir_quota_parse(cases[i].text, strlen(cases[i].text),
		    &q, 1000000 - cases[i].age, 1000000, &u);
		if (got != cases[i].ok ||
		    (got == 1 && (u.bytes != cases[i].bytes ||
		                     u.count != cases[i].count))) {
			printf("# case %zu: got %d %llu %llu\n", i, got,
			    (unsigned long long)u.bytes,
			    (unsigned long long)u.count);
			CHECK(0);
		}
	}
	/* Too large: recalculated, whatever it says. */
	memset(big, '\n', sizeof(big));
	memcpy(big, "0S\n1 1\n", 7);
	q.bytes = q.count = 0;
	CHECK_INT(maildir_quota_parse(big, MAILDIR_SIZE_MAX, &q, 0, 0, &u), 0);
	CHECK_INT(
	    maildir_quota_parse(big, MAILDIR_SIZE_MAX - 1, &q, 0, 0, &u), 0);
	/* NUL bytes. */
	CHECK_INT(maildir_quota_parse("0S\n1 1\n\0", 8, &q, 0, 0, &u), 0);
}

static void
test_quota_limits(void)
{
	static const struct {
		uint64_t bytes, count;
		const char *line;
	} cases[] = {
	    {0, 0, "0S"},
	    {1000, 0, "1000S"},
	    {0, 10, "10C"},
	    {1000, 10, "1000S,10C"},
	};
	char line[MAILDIR_QUOTA_LINE_SIZE];
	struct maildir_quota q;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		q.bytes = cases[i].bytes;
		q.count = cases[i].count;
		maildir_quota_format(&q, line, sizeof(line));
		CHECK_STR(line, cases[i].line);
		CHECK_INT(maildir_quota_parse_limits(line, &q), 0);
		CHECK_INT(q.bytes, cases[i].bytes);
		CHECK_INT(q.count, cases[i].count);
	}
	CHECK_INT(maildir_quota_parse_limits("10C,5S", &q), 0);
	CHECK_INT(q.bytes, 5);
	CHECK_INT(q.count, 10);
	CHECK_INT(maildir_quota_parse_limits("5", &q), -1);
	CHECK_INT(maildir_quota_parse_limits("S", &q), -1);
	CHECK_INT(maildir_quota_parse_limits("5Q", &q), -1);
	CHECK_INT(maildir_quota_parse_limits("-5S", &q), -1);
}

static void
put(const char *md, const char *name, size_t size)
{
	char *p = xasprintf("%s/%s", md, name), *data = xcalloc(1, size + 1);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, data, size), 0);
	close(fd);
	free(p);
	free(data);
}

static char *
read_text(const char *md, const char *name)
{
	char *p = xasprintf("%s/%s", md, name);
	const char *error;
	struct buf b;

	buf_init(&b, TEST_FILE_MAX);
	if (file_read_all(p, TEST_FILE_MAX, &b, &error) < 0) {
		buf_free(&b);
		free(p);
		return xstrdup("(unreadable)");
	}
	free(p);
	return buf_steal(&b);
}

static void
test_quota_recalc(void)
{
	struct maildir_quota q = {1000, 0};
	struct maildir_usage u;
	const char *error;
	char *md = tpath("scan/Maildir"), *sub, *text;

	CHECK_INT(maildir_create(md, &error), 0);
	put(md, "new/1.M1P1.h,S=10", 3); /* the name counts */
	put(md, "cur/2.M1P1.h,S=20:2,S", 3);
	put(md, "cur/3.M1P1.h,S=30,W=31:2,", 3);
	put(md, "cur/4.M1P1.h:2,", 7);      /* no S=: stat */
	put(md, "cur/5.M1P1.h,S=x1:2,", 9); /* bad S=: stat */
	put(md, "tmp/6.M1P1.h,S=100", 100); /* tmp/ never counts */
	sub = xasprintf("%s/.Sent", md);
	CHECK_INT(maildir_create(sub, &error), 0);
	free(sub);
	put(md, ".Sent/cur/7.M1P1.h,S=40:2,S", 1);
	sub = xasprintf("%s/cur/.hidden", md);
	CHECK_INT(mkdir(sub, 0700), 0);
	free(sub);
	CHECK_INT(maildir_quota_usage(md, &q, time(NULL), &u, &error), 0);
	CHECK_INT(u.bytes, 10 + 20 + 30 + 7 + 9 + 40);
	CHECK_INT(u.count, 6);
	text = read_text(md, MAILDIR_SIZE_FILE);
	CHECK_STR(text, "1000S\n116 6\n");
	free(text);
	/* Appends are summed without a scan... */
	CHECK_INT(maildir_quota_add(md, 100, 1), 0);
	put(md, "new/8.M1P1.h,S=1000", 1); /* unseen by the file */
	CHECK_INT(maildir_quota_usage(md, &q, time(NULL), &u, &error), 0);
	CHECK_INT(u.bytes, 216);
	CHECK_INT(u.count, 7);
	/* ...until the limits change: then the file is rebuilt. */
	q.count = 100;
	CHECK_INT(maildir_quota_usage(md, &q, time(NULL), &u, &error), 0);
	CHECK_INT(u.bytes, 1116);
	CHECK_INT(u.count, 7);
	text = read_text(md, MAILDIR_SIZE_FILE);
	CHECK_STR(text, "1000S,100C\n1116 7\n");
	free(text);
	/* Over quota and appended to: rescanned. */
	CHECK_INT(maildir_quota_add(md, 1, 0), 0);
	CHECK_INT(maildir_quota_usage(md, &q, time(NULL), &u, &error), 0);
	CHECK_INT(u.bytes, 1116);
	/* No file, no quota work: add does not create it. */
	sub = xasprintf("%s/%s", md, MAILDIR_SIZE_FILE);
	CHECK_INT(unlink(sub), 0);
	CHECK_INT(maildir_quota_add(md, 1, 1), 0);
	CHECK(access(sub, F_OK) < 0);
	free(sub);
	sub = xasprintf("%s/tmp", md);
	CHECK_INT(count_entries(sub), 1); /* the 6.M1P1 above only */
	free(sub);
	CHECK_INT(maildir_quota_exceeded(&q, &u, 0), 1);
	q.bytes = 2000;
	CHECK_INT(maildir_quota_exceeded(&q, &u, 884), 0);
	CHECK_INT(maildir_quota_exceeded(&q, &u, 885), 1);
	q.bytes = 0;
	q.count = 8;
	CHECK_INT(maildir_quota_exceeded(&q, &u, 1000000), 0);
	q.count = 7;
	CHECK_INT(maildir_quota_exceeded(&q, &u, 0), 1);
	q.count = 0;
	u.bytes = UINT64_MAX;
	q.bytes = 1;
	CHECK_INT(maildir_quota_exceeded(&q, &u, 2), 1);
	free(md);
}

static void
test_quota_deliver(void)
{
	static const char msg[] = "Subject: q\r\n\r\n0123456789\r\n";
	struct maildir_quota q = {0, 2};
	struct maildir_delivery d = {0};
	const char *error = NULL;
	char *md = tpath("quota/Maildir"), *u[4], *text, *sub, *path;
	int fd = make_source(msg, sizeof(msg) - 1), i;

	d.maildir = md;
	d.src_fd = fd;
	d.off = TEST_SKIP;
	d.len = sizeof(msg) - 1;
	d.quota = &q;
	for (i = 0; i < 4; i++)
		u[i] = maildir_unique(1700000000, i, "0ABCDEFGHJKMNR", 0, NULL);
	d.unique = u[0];
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	d.unique = u[1];
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	text = read_text(md, MAILDIR_SIZE_FILE);
	/* The first delivery's scan (of an empty maildir: the message is
	 * in tmp/ then), and a line per delivery. */
	CHECK_STR(text, "2C\n0 0\n23 1\n23 1\n");
	free(text);
	d.unique = u[2];
	path = (char *)"unset";
	CHECK_INT(maildir_deliver(&d, &path, &error), MAILDIR_FULL);
	CHECK(path == NULL);
	sub = xasprintf("%s/new", md);
	CHECK_INT(count_entries(sub), 2);
	free(sub);
	sub = xasprintf("%s/tmp", md);
	CHECK_INT(count_entries(sub), 0);
	free(sub);
	/* Full, but this message is there from an earlier attempt. */
	d.unique = u[1];
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_EXISTS);
	/* A raised limit lets the next one in. */
	q.count = 3;
	d.unique = u[2];
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	/* Bytes: 3 x 23 stored; 91 leaves room for none more. */
	q.count = 0;
	q.bytes = 91;
	d.unique = u[3];
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_FULL);
	q.bytes = 92;
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	text = read_text(md, MAILDIR_SIZE_FILE);
	CHECK_STR(text, "92S\n69 3\n23 1\n");
	free(text);
	for (i = 0; i < 4; i++)
		free(u[i]);
	close(fd);
	free(md);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_create), UNIT_CASE(test_simple),
    UNIT_CASE(test_chunks), UNIT_CASE(test_failures), UNIT_CASE(test_unique),
    UNIT_CASE(test_idempotent), UNIT_CASE(test_quota_parse),
    UNIT_CASE(test_quota_limits), UNIT_CASE(test_quota_recalc),
    UNIT_CASE(test_quota_deliver), UNIT_CASE(test_cleanup))
