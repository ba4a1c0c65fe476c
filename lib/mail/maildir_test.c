/* SPDX-License-Identifier: MIT */
/*
 * Tests for maildir delivery: byte-exact CRLF -> LF conversion across read
 * chunks, the ",S=" size, unique names, creating missing maildirs, and
 * failures that leave nothing behind.
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

/* Delivers and checks the stored bytes and the name. */
static char *
deliver_check(
    const char *maildir, const char *prefix, const char *data, size_t len)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	char *want = xmalloc(plen + len + 1), *path = NULL, *s, size[32];
	const char *error = NULL;
	struct buf got;
	size_t wlen;
	int fd = make_source(data, len);

	if (plen > 0)
		memcpy(want, prefix, plen);
	wlen = plen + crlf_to_lf(data, len, want + plen);
	CHECK_INT(
	    maildir_deliver(maildir, prefix, fd, TEST_SKIP, len, &path, &error),
	    0);
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
	snprintf(size, sizeof(size), ",S=%zu", wlen);
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
	CHECK(p4 != NULL && strstr(p4, ",S=16") != NULL);
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
	    maildir_deliver(md, "P: x\n", fd, TEST_SKIP, 10, &path, &error),
	    -1);
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
		    maildir_deliver(md, "", fd, TEST_SKIP, 5, &path, &error),
		    -1);
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
	CHECK_INT(maildir_deliver(md, "", fd, TEST_SKIP, 5, &path, &error), -1);
	CHECK(error != NULL && strstr(error, strerror(ENOTDIR)) != NULL);
	close(fd);
	free(md);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_create), UNIT_CASE(test_simple),
    UNIT_CASE(test_chunks), UNIT_CASE(test_failures), UNIT_CASE(test_cleanup))
