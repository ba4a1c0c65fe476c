/* SPDX-License-Identifier: MIT */
/*
 * Tests of smtpd's cleanup: the DATA parser (dot-stuffing, the CRLF.CRLF
 * end, bare CR/LF), fed whole and one byte at a time, and whole queue
 * files written through cleanup_open/feed/finish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "base/buf.h"
#include "base/file.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "cleanup.h"

#define OUT_MAX 4096

struct data_case {
	const char *in;
	const char *out; /* content emitted */
	size_t consumed; /* 0: all of in */
	int done, bare;
};

static const struct data_case data_cases[] = {
    {".\r\n", "", 0, 1, 0},
    {"hello\r\n.\r\n", "hello\r\n", 0, 1, 0},
    {"\r\n.\r\n", "\r\n", 0, 1, 0},
    {"..x\r\n.\r\n", ".x\r\n", 0, 1, 0},
    {".x\r\n.\r\n", "x\r\n", 0, 1, 0},
    {"a\r\n..\r\n.\r\n", "a\r\n.\r\n", 0, 1, 0},
    {"a\r\n.\r\nQUIT\r\n", "a\r\n", 6, 1, 0},
    {"a.\r\n.\r\n", "a.\r\n", 0, 1, 0},
    {"long line without end", "long line without end", 0, 0, 0},
    {"a\r\n.", "a\r\n", 0, 0, 0},
    {"a\r\n.\r", "a\r\n", 0, 0, 0},
    /* bare LF and CR: flagged, never an end or a line start */
    {"a\nb\r\n.\r\n", "a\nb\r\n", 0, 1, 1},
    {"a\rb\r\n.\r\n", "a\rb\r\n", 0, 1, 1},
    {"a\r\r\n.\r\n", "a\r\r\n", 0, 1, 1},
    {"a\n.\n", "a\n.\n", 0, 0, 1},
    {"a\n.\r\n", "a\n.\r\n", 0, 0, 1},
    {"a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 0, 1, 1},
    {"a\r\n.\rx\r\n.\r\n", "a\r\n\rx\r\n", 0, 1, 1},
    {"a\r.\r\n", "a\r.\r\n", 0, 0, 1},
};

static void
emit_buf(void *ctx, const char *data, size_t len)
{
	struct buf *b = ctx;

	if (buf_append(b, data, len) < 0)
		abort();
}

static void
run_case(const struct data_case *c, int bytewise)
{
	struct cleanup_data p;
	struct buf out;
	size_t len = strlen(c->in), used = 0, step, n;
	int failed_before = unit_case_failed;

	unit_case_failed = 0;
	buf_init(&out, OUT_MAX);
	cleanup_data_init(&p);
	while (used < len && p.state != CLEANUP_DATA_END) {
		step = bytewise ? 1 : len - used;
		n = cleanup_data_parse(&p, c->in + used, step, emit_buf, &out);
		CHECK(n <= step);
		used += n;
		if (n < step)
			break;
	}
	CHECK_STR(buf_cstr(&out), c->out);
	CHECK_INT(used, c->consumed ? c->consumed : len);
	CHECK_INT(p.state == CLEANUP_DATA_END, c->done);
	CHECK_INT(p.bare, c->bare);
	if (unit_case_failed)
		printf("#   case %zu (%s)\n", (size_t)(c - data_cases),
		    bytewise ? "bytewise" : "whole");
	unit_case_failed |= failed_before;
	buf_free(&out);
}

static void
test_data_whole(void)
{
	size_t i;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++)
		run_case(&data_cases[i], 0);
}

static void
test_data_bytewise(void)
{
	size_t i;

	for (i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++)
		run_case(&data_cases[i], 1);
}

/* A queue directory in /tmp with the directories cleanup writes to. */
static char *
make_queue(void)
{
	char tmpl[] = "/tmp/cleanup_test.XXXXXX";
	char *dir, *sub;

	if (mkdtemp(tmpl) == NULL)
		abort();
	dir = strdup(tmpl);
	var_queue_directory = dir;
	var_myhostname = "mx.example.test";
	sub = queue_path(QUEUE_TMP, NULL);
	CHECK(mkdir(sub, 0700) == 0);
	free(sub);
	sub = queue_path(QUEUE_INCOMING, NULL);
	CHECK(mkdir(sub, 0700) == 0);
	free(sub);
	return dir;
}

static void
remove_queue(char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	free(dir);
}

static void
test_queue_file(void)
{
	static char *rcpts[] = {"user@example.test"};
	static const struct cleanup_envelope env = {"sender@example.org", rcpts,
	    1, "192.0.2.1", "192.0.2.1", "192.0.2.1", "client.example", "ESMTP",
	    "8BITMIME"};
	static const char body[] = "Subject: x\r\n\r\n..dot\r\n.\r\nNEXT";
	static const char received[] =
	    "Received: from client.example (192.0.2.1 [192.0.2.1])\r\n"
	    "\tby mx.example.test (tern) with ESMTP id ";
	char c_id[QUEUE_ID_SIZE];
	char *dir = make_queue(), *path, *content;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;

	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, body, strlen(body)), strlen(body) - 4);
	CHECK(cleanup_done(&c));
	CHECK_INT(cleanup_finish(&c, &error), 0);
	CHECK(qfile_commit(&c.w, QUEUE_INCOMING, &error) == 0);
	path = queue_path(QUEUE_INCOMING, c.w.id);
	memcpy(c_id, c.w.id, sizeof(c_id));
	cleanup_free(&c);
	CHECK(qfile_open(path, 0, (uid_t)-1, &q, &error) == 0);
	CHECK(q.complete);
	CHECK_STR(q.sender, "sender@example.org");
	CHECK_INT(q.nrcpt, 1);
	CHECK_STR(q.rcpts[0].addr, "user@example.test");
	CHECK_STR(qfile_attr(&q, "helo"), "client.example");
	CHECK_STR(qfile_attr(&q, "body"), "8BITMIME");
	CHECK_STR(qfile_attr(&q, "protocol"), "ESMTP");
	content = calloc(1, q.content_len + 1);
	CHECK(file_pread_all(q.fd, content, q.content_len, q.content_off) == 0);
	CHECK(strncmp(content, received, strlen(received)) == 0);
	CHECK(strncmp(content + strlen(received), c_id, QUEUE_ID_LEN) == 0);
	CHECK(strstr(content, "\r\n\tfor <user@example.test>; ") != NULL);
	CHECK(strstr(content, "\r\nSubject: x\r\n\r\n.dot\r\n") != NULL);
	CHECK_INT(strlen(content) - strlen(strstr(content, "Subject")) +
	              strlen("Subject: x\r\n\r\n.dot\r\n"),
	    q.content_len);
	free(content);
	qfile_close(&q);
	free(path);
	remove_queue(dir);
}

/* One mailbox spelled in several cases or quoted is one recipient. */
static void
test_duplicates(void)
{
	static char *rcpts[] = {"popBOx@EXAmple.test", "other@example.test",
	    "POPBOX@example.TEST", "\"popbox\"@example.test",
	    "Other@Example.Test", "third@example.test"};
	static const struct cleanup_envelope env = {"s@example.org", rcpts, 6,
	    "h", "192.0.2.1", "192.0.2.1", "h", "ESMTP", NULL};
	char *dir = make_queue(), *path;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;

	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "x\r\n.\r\n", 6), 6);
	CHECK_INT(cleanup_finish(&c, &error), 0);
	CHECK(qfile_commit(&c.w, QUEUE_INCOMING, &error) == 0);
	path = queue_path(QUEUE_INCOMING, c.w.id);
	cleanup_free(&c);
	CHECK(qfile_open(path, 0, (uid_t)-1, &q, &error) == 0);
	CHECK_INT(q.nrcpt, 3);
	if (q.nrcpt == 3) {
		/* The first spelling of each mailbox, in arrival order. */
		CHECK_STR(q.rcpts[0].addr, "popBOx@EXAmple.test");
		CHECK_STR(q.rcpts[1].addr, "other@example.test");
		CHECK_STR(q.rcpts[2].addr, "third@example.test");
	}
	qfile_close(&q);
	free(path);
	remove_queue(dir);
}

/* Refused content is read to its end and leaves no file behind. */
static void
test_refused(void)
{
	static char *rcpts[] = {"a@example.test", "b@example.test"};
	static const struct cleanup_envelope env = {
	    "", rcpts, 2, "h", "::1", "IPv6:::1", "h", "SMTP", NULL};
	char *dir = make_queue(), *tmp;
	struct cleanup c;
	const char *error = NULL;
	char big[2048];
	struct stat st;
	int i;

	var_message_size_limit = 1024;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	memset(big, 'x', sizeof(big));
	for (i = 0; i < 3; i++)
		CHECK_INT(cleanup_feed(&c, big, sizeof(big)), sizeof(big));
	CHECK_INT(cleanup_feed(&c, "\r\n.\r\n", 5), 5);
	CHECK(cleanup_done(&c));
	CHECK_INT(cleanup_finish(&c, &error), CLEANUP_STAT_SIZE);
	tmp = strdup(c.w.tmp_path);
	cleanup_free(&c);
	CHECK(stat(tmp, &st) < 0);
	free(tmp);

	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "a\nb\r\n.\r\n", 8), 8);
	CHECK_INT(cleanup_finish(&c, &error), CLEANUP_STAT_BARE);
	cleanup_free(&c);
	cleanup_free(&c); /* idempotent */
	remove_queue(dir);
}

UNIT_MAIN(UNIT_CASE(test_data_whole), UNIT_CASE(test_data_bytewise),
    UNIT_CASE(test_queue_file), UNIT_CASE(test_duplicates),
    UNIT_CASE(test_refused))
