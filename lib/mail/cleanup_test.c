/* SPDX-License-Identifier: MIT */
/*
 * Tests of cleanup: the DATA parser (dot-stuffing, the CRLF.CRLF
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
#include "base/mem.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/virtual_alias.h"
#include "mail/cleanup.h"

#define OUT_MAX      4096
/* The defaults of params.def. */
#define HEADER_LIMIT 102400
#define HOP_LIMIT    50

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
	var_header_size_limit = HEADER_LIMIT;
	var_hopcount_limit = HOP_LIMIT;
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
	static const struct cleanup_rcpt rcpts[] = {
	    {"user@example.test", "rfc822;User@Example.TEST",
	        QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE}};
	static const struct cleanup_envelope env = {
	    .sender = "sender@example.org",
	    .rcpts = rcpts,
	    .nrcpt = 1,
	    .client_name = "192.0.2.1",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "client.example",
	    .protocol = "ESMTP",
	    .body = "8BITMIME"};
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
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	CHECK(qfile_commit(&c.w, QUEUE_INCOMING, &error) == 0);
	path = queue_path(QUEUE_INCOMING, c.w.id);
	memcpy(c_id, c.w.id, sizeof(c_id));
	cleanup_free(&c);
	CHECK(qfile_open(path, 0, (uid_t)-1, &q, &error) == 0);
	CHECK(q.complete);
	CHECK_STR(q.sender, "sender@example.org");
	CHECK_INT(q.nrcpt, 1);
	CHECK_STR(q.rcpts[0].addr, "user@example.test");
	CHECK_STR(q.rcpts[0].orcpt, "rfc822;User@Example.TEST");
	CHECK_INT(
	    q.rcpts[0].notify, QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE);
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
	static const struct cleanup_rcpt rcpts[] = {
	    {"popBOx@EXAmple.test", NULL, 0}, {"other@example.test", NULL, 0},
	    {"POPBOX@example.TEST", NULL, 0},
	    {"\"popbox\"@example.test", NULL, 0},
	    {"Other@Example.Test", NULL, 0}, {"third@example.test", NULL, 0}};
	static const struct cleanup_envelope env = {.sender = "s@example.org",
	    .rcpts = rcpts,
	    .nrcpt = 6,
	    .client_name = "h",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTP",
	    .body = NULL};
	char *dir = make_queue(), *path;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;

	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "x\r\n.\r\n", 6), 6);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
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

/* Commits c and returns the stored content (malloc'd, NUL-terminated). */
static char *
commit_content(struct cleanup *c, struct qfile *q)
{
	const char *error = NULL;
	char *path, *content;

	CHECK(qfile_commit(&c->w, QUEUE_INCOMING, &error) == 0);
	path = queue_path(QUEUE_INCOMING, c->w.id);
	cleanup_free(c);
	CHECK(qfile_open(path, 0, (uid_t)-1, q, &error) == 0);
	free(path);
	content = calloc(1, q->content_len + 1);
	CHECK(file_pread_all(q->fd, content, q->content_len, q->content_off) ==
	      0);
	return content;
}

/*
 * Submission (RFC 6409 8): Message-ID: and Date: are added right before
 * the body when missing, and not when present in any case; the Received:
 * header names the TLS session and the login.
 */
static void
test_submission_headers(void)
{
	static const struct cleanup_rcpt rcpts[] = {
	    {"a@example.test", NULL, 0}};
	struct cleanup_envelope env = {.sender = "a@example.test",
	    .rcpts = rcpts,
	    .nrcpt = 1,
	    .client_name = "h",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTPSA",
	    .body = NULL};
	static const char *const bodies[] = {
	    "Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "message-id: <a@b>\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n\tfolded\r\nnot a header line\r\n.\r\n",
	    "Subject: only headers\r\n.\r\n",
	};
	char *dir = make_queue(), *content, *body;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;
	size_t i, len;

	var_message_size_limit = 10240;
	env.tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
	env.auth_user = "a@example.test";
	env.auth_header = 1;
	env.add_missing_headers = 1;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		CHECK(cleanup_open(&c, &env, &error) == 0);
		len = strlen(bodies[i]);
		/* Byte by byte: the scanner keeps its place across calls. */
		for (size_t j = 0; j < len; j++)
			CHECK_INT(cleanup_feed(&c, bodies[i] + j, 1), 1);
		CHECK(cleanup_done(&c));
		CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
		content = commit_content(&c, &q);
		CHECK(strstr(content, "\r\n\t(using TLSv1.3 with cipher "
		                      "TLS_AES_256_GCM_SHA384 (256/256 "
		                      "bits))\r\n\t(Authenticated sender: "
		                      "a@example.test)\r\n\tby mx.example.test "
		                      "(tern) with ESMTPSA id ") != NULL);
		body = strstr(content, "Subject:");
		if (i == 1) {
			CHECK(strstr(content, "Message-ID: <") == NULL);
			CHECK(strstr(content, "\r\nDate: ") == NULL);
		} else {
			CHECK(strstr(content, "\r\nMessage-ID: <") != NULL);
			CHECK(strstr(content, "@mx.example.test>\r\nDate: ") !=
			      NULL);
		}
		if (i == 0)
			CHECK(body != NULL &&
			      strstr(body, "Subject: x\r\nMessage-ID: <") ==
			          body);
		if (i == 0)
			CHECK(strstr(content, "\r\n\r\nbody\r\n") != NULL);
		if (i == 2)
			CHECK(strstr(content, "\tfolded\r\nMessage-ID: ") !=
			          NULL &&
			      strstr(content, "\r\nnot a header line\r\n") !=
			          NULL);
		if (i == 3)
			CHECK(strstr(content,
			          "Subject: only headers\r\nMessage-ID: ") !=
			      NULL);
		free(content);
		qfile_close(&q);
	}
	/* Not a submission: nothing added. */
	env.add_missing_headers = 0;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(
	    cleanup_feed(&c, bodies[0], strlen(bodies[0])), strlen(bodies[0]));
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(strstr(content, "Message-ID") == NULL);
	free(content);
	qfile_close(&q);
	remove_queue(dir);
}

/* BDAT content is stored as it comes; bare CR/LF only in BINARYMIME
 * (the policy here: reject; test_bare has the others). */
static void
test_raw(void)
{
	static const struct cleanup_rcpt rcpts[] = {
	    {"a@example.test", NULL, 0}};
	static const struct cleanup_envelope env = {.sender = "",
	    .rcpts = rcpts,
	    .nrcpt = 1,
	    .client_name = "h",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTP",
	    .body = "BINARYMIME",
	    .bare_newline = CLEANUP_BARE_REJECT};
	static const char bin[] = "Subject: b\r\n\r\n\x00\x01\n.\r\n\r";
	char *dir = make_queue(), *content;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;

	var_message_size_limit = 10240;
	/* Split across chunks, a CRLF too. */
	CHECK(cleanup_open(&c, &env, &error) == 0);
	cleanup_feed_raw(&c, "Subject: t\r", 11, 0);
	cleanup_feed_raw(&c, "\n\r\n.dot\r\n", 9, 0);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(strstr(content, "Subject: t\r\n\r\n.dot\r\n") != NULL);
	free(content);
	qfile_close(&q);
	/* A bare LF, or a lone CR at the end, is refused as text. */
	CHECK(cleanup_open(&c, &env, &error) == 0);
	cleanup_feed_raw(&c, "a\nb\r\n", 5, 0);
	CHECK_INT(cleanup_finish(&c, &error, NULL), CLEANUP_STAT_BARE);
	cleanup_free(&c);
	CHECK(cleanup_open(&c, &env, &error) == 0);
	cleanup_feed_raw(&c, "a\r\nb\r", 5, 0);
	CHECK_INT(cleanup_finish(&c, &error, NULL), CLEANUP_STAT_BARE);
	cleanup_free(&c);
	/* BINARYMIME: any byte. */
	CHECK(cleanup_open(&c, &env, &error) == 0);
	cleanup_feed_raw(&c, bin, sizeof(bin) - 1, 1);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(q.content_len > sizeof(bin) - 1 &&
	      memcmp(content + q.content_len - (sizeof(bin) - 1), bin,
	          sizeof(bin) - 1) == 0);
	free(content);
	qfile_close(&q);
	remove_queue(dir);
}

/* Refused content is read to its end and leaves no file behind. */
static void
test_refused(void)
{
	static const struct cleanup_rcpt rcpts[] = {
	    {"a@example.test", NULL, 0}, {"b@example.test", NULL, 0}};
	static const struct cleanup_envelope env = {.sender = "",
	    .rcpts = rcpts,
	    .nrcpt = 2,
	    .client_name = "h",
	    .client_addr = "::1",
	    .client_rfc_addr = "IPv6:::1",
	    .helo = "h",
	    .protocol = "SMTP",
	    .body = NULL,
	    .bare_newline = CLEANUP_BARE_REJECT};
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
	CHECK_INT(cleanup_finish(&c, &error, NULL), CLEANUP_STAT_SIZE);
	tmp = strdup(c.w.tmp_path);
	cleanup_free(&c);
	CHECK(stat(tmp, &st) < 0);
	free(tmp);

	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "a\nb\r\n.\r\n", 8), 8);
	CHECK_INT(cleanup_finish(&c, &error, NULL), CLEANUP_STAT_BARE);
	cleanup_free(&c);
	cleanup_free(&c); /* idempotent */
	remove_queue(dir);
}

static const struct cleanup_rcpt one_rcpt[] = {{"a@example.test", NULL, 0}};
static const struct cleanup_envelope plain_env = {.sender = "s@example.org",
    .rcpts = one_rcpt,
    .nrcpt = 1,
    .client_name = "client.example",
    .client_addr = "192.0.2.1",
    .client_rfc_addr = "192.0.2.1",
    .helo = "h",
    .protocol = "ESMTP",
    .body = "8BITMIME"};

/* What a message's run left besides the status and the content. */
struct outcome {
	int hold, discard;
	char reject_text[256];
	int tmp_left; /* the tmp file still existed after cleanup_free */
};

/*
 * One message through cleanup as DATA content (in ends with CRLF.CRLF),
 * fed whole or one byte at a time; setup (may be NULL) prepares c after
 * cleanup_open. Returns the cleanup_finish bits and fills *out (may be
 * NULL); on 0 without discard, *content_r (may be NULL) gets the stored
 * content after cleanup's Received: header (malloc'd, *len_r bytes plus
 * a NUL).
 */
static unsigned
run_message(const struct cleanup_envelope *env, const char *in, size_t len,
    int bytewise, void (*setup)(struct cleanup *), struct outcome *out,
    char **content_r, size_t *len_r)
{
	struct cleanup c;
	struct qfile q;
	struct stat st;
	const char *error = NULL, *body;
	char *content, *tmp;
	size_t used = 0, step, n;
	unsigned status;

	if (content_r != NULL)
		*content_r = NULL;
	CHECK(cleanup_open(&c, env, &error) == 0);
	if (setup != NULL)
		setup(&c);
	while (used < len && !cleanup_done(&c)) {
		step = bytewise ? 1 : len - used;
		n = cleanup_feed(&c, in + used, step);
		CHECK(n <= step);
		used += n;
		if (n < step)
			break;
	}
	CHECK(cleanup_done(&c));
	CHECK_INT(used, len);
	status = cleanup_finish(&c, &error, NULL);
	if (out != NULL) {
		memset(out, 0, sizeof(*out));
		out->hold = c.hold;
		out->discard = c.discard;
		if (c.reject_text != NULL)
			snprintf(out->reject_text, sizeof(out->reject_text),
			    "%s", c.reject_text);
	}
	if (status != 0 || c.discard || content_r == NULL) {
		tmp = strdup(c.w.tmp_path);
		cleanup_free(&c);
		if (out != NULL)
			out->tmp_left = stat(tmp, &st) == 0;
		free(tmp);
		return status;
	}
	content = commit_content(&c, &q);
	/* The client's content starts after the Received: header's date. */
	body = strstr(content, "; ");
	body = body != NULL ? strstr(body, "\r\n") : NULL;
	CHECK(body != NULL);
	if (body != NULL) {
		body += 2;
		*len_r = q.content_len - (size_t)(body - content);
		*content_r = malloc(*len_r + 1);
		memcpy(*content_r, body, *len_r + 1);
	}
	free(content);
	qfile_close(&q);
	return status;
}

/* Appends n copies of s to b. */
static void
repeat(struct buf *b, const char *s, int n)
{
	while (n-- > 0)
		CHECK(buf_puts(b, s) == 0);
}

/* Headers are buffered one at a time but stored byte for byte. */
static void
test_header_buffering(void)
{
	static const char *const msgs[] = {
	    "Subject: a\r\n b\r\n\tc\r\nX-A: 1\r\n\r\nbody\r\n",
	    "Subject: a\r\nnot a header\r\nX: y\r\n",
	    "Subject: x\r\n",
	    "Subject: x\r\n \r\n\r\n",
	    " leading white space\r\nX: y\r\n",
	    ":no name\r\n",
	    "",
	};
	char *dir = make_queue(), *content, *in;
	size_t i, len;
	int bytewise;

	var_message_size_limit = 10240;
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		for (bytewise = 0; bytewise < 2; bytewise++) {
			in = xasprintf("%s.\r\n", msgs[i]);
			CHECK_INT(run_message(&plain_env, in, strlen(in),
			              bytewise, NULL, NULL, &content, &len),
			    0);
			CHECK(content != NULL && len == strlen(msgs[i]) &&
			      memcmp(content, msgs[i], len) == 0);
			if (unit_case_failed)
				printf("#   message %zu (%s)\n", i,
				    bytewise ? "bytewise" : "whole");
			free(content);
			free(in);
		}
	}
	remove_queue(dir);
}

/* header_size_limit counts the client's header section, not the body. */
static void
test_header_limit(void)
{
	char *dir = make_queue();
	struct buf in;
	int bytewise;
	size_t line = strlen("X-Filler: 0123456789012345678901\r\n");

	var_message_size_limit = 102400;
	var_header_size_limit = 1024;
	buf_init(&in, 65536);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		/* Exactly the limit, a big body: accepted. */
		buf_reset(&in);
		repeat(&in, "X-Filler: 0123456789012345678901\r\n",
		    (int)(1024 / line));
		repeat(&in, "x", 1024 - (int)(1024 / line * line) - 3);
		repeat(&in, ":\r\n", 1);
		CHECK_INT(in.len, 1024);
		repeat(&in, "\r\n", 1);
		repeat(&in, "body line\r\n", 1000);
		repeat(&in, ".\r\n", 1);
		CHECK_INT(run_message(&plain_env, in.data, in.len, bytewise,
		              NULL, NULL, NULL, NULL),
		    0);
		/* One byte more, in one folded header: refused, all read. */
		buf_reset(&in);
		repeat(&in, "Subject: x\r\n", 1);
		repeat(&in, " 0123456789012345678901234567890\r\n", 29);
		repeat(&in, " 012345678901234567890123\r\n", 1);
		CHECK_INT(in.len, 1025);
		repeat(&in, "\r\nbody\r\n.\r\n", 1);
		CHECK_INT(run_message(&plain_env, in.data, in.len, bytewise,
		              NULL, NULL, NULL, NULL),
		    CLEANUP_STAT_HEADER);
	}
	buf_free(&in);
	var_header_size_limit = HEADER_LIMIT;
	remove_queue(dir);
}

/* hopcount_limit Received: headers pass, one more is a loop. */
static void
test_hopcount(void)
{
	char *dir = make_queue();
	struct buf in;
	int bytewise;

	var_message_size_limit = 102400;
	buf_init(&in, 65536);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		buf_reset(&in);
		repeat(&in, "Received: from a by b; date\r\n", HOP_LIMIT - 1);
		repeat(&in, "rECEIVED: from a\r\n\tby b; date\r\n", 1);
		repeat(&in, "X-Received: not one\r\n", 5);
		repeat(&in, "\r\nReceived: in the body\r\n.\r\n", 1);
		CHECK_INT(run_message(&plain_env, in.data, in.len, bytewise,
		              NULL, NULL, NULL, NULL),
		    0);
		buf_reset(&in);
		repeat(&in, "Received: from a by b; date\r\n", HOP_LIMIT + 1);
		repeat(&in, "\r\nbody\r\n.\r\n", 1);
		CHECK_INT(run_message(&plain_env, in.data, in.len, bytewise,
		              NULL, NULL, NULL, NULL),
		    CLEANUP_STAT_HOPS);
	}
	buf_free(&in);
	remove_queue(dir);
}

/* The test's header_checks: the first rule whose prefix a header has. */
struct rule {
	const char *prefix;
	enum cleanup_header_verdict verdict;
	const char *text;
};

struct checks {
	const struct rule *rules;
	struct buf seen; /* every header the hook saw, each followed by '|' */
};

static struct checks checks;

static void
check_header(void *ctx, const char *header, size_t len,
    struct cleanup_header_action *action_r)
{
	struct checks *k = ctx;
	const struct rule *r;

	CHECK(action_r->verdict == CLEANUP_HEADER_DUNNO &&
	      action_r->text == NULL);
	CHECK(header[len] == '\0');
	CHECK(buf_append(&k->seen, header, len) == 0 &&
	      buf_putc(&k->seen, '|') == 0);
	for (r = k->rules; r->prefix != NULL; r++) {
		if (strncmp(header, r->prefix, strlen(r->prefix)) == 0) {
			action_r->verdict = r->verdict;
			action_r->text = r->text;
			return;
		}
	}
}

static void
setup_checks(struct cleanup *c)
{
	c->header_check = check_header;
	c->header_check_ctx = &checks;
}

/*
 * The header-check hook sees each logical header whole (folded lines
 * with their CRLFs, no final CRLF) and its verdict is applied: IGNORE
 * deletes the header, WARN and DUNNO keep it, REJECT refuses the
 * message with its text, HOLD keeps it for hold/, DISCARD accepts it
 * without a file; nothing is checked after a REJECT or DISCARD.
 */
static void
test_header_checks(void)
{
	static const struct rule rules[] = {
	    {"X-Drop:", CLEANUP_HEADER_IGNORE, NULL},
	    {"X-Warn:", CLEANUP_HEADER_WARN, "looks odd"},
	    {"X-Reject:", CLEANUP_HEADER_REJECT, NULL},
	    {"X-Reject-Text:", CLEANUP_HEADER_REJECT, "no \x01thanks"},
	    {"X-Hold:", CLEANUP_HEADER_HOLD, "look at it"},
	    {"X-Discard:", CLEANUP_HEADER_DISCARD, NULL},
	    {"Date:", CLEANUP_HEADER_IGNORE, NULL},
	    {NULL, CLEANUP_HEADER_DUNNO, NULL}};
	static const struct {
		const char *in;
		unsigned status;
		int hold, discard;
		const char *stored; /* NULL: nothing stored */
		const char *seen;
		const char *reply;
	} cases[] = {
	    {"Subject: a\r\n\tb \x80\r\nX-Drop: x\r\n y\r\nX-Warn: w\r\n"
	     "\r\nX-Drop: body\r\n",
	        0, 0, 0,
	        "Subject: a\r\n\tb \x80\r\nX-Warn: w\r\n\r\nX-Drop: body\r\n",
	        "Subject: a\r\n\tb \x80|X-Drop: x\r\n y|X-Warn: w|", NULL},
	    {"X-Drop: last\r\n", 0, 0, 0, "", "X-Drop: last|", NULL},
	    {"A: 1\r\nX-Reject: r\r\nB: 2\r\n\r\nbody\r\n", CLEANUP_STAT_REJECT,
	        0, 0, NULL, "A: 1|X-Reject: r|",
	        "550 5.7.1 message content rejected"},
	    {"X-Reject-Text: r\r\n\r\n", CLEANUP_STAT_REJECT, 0, 0, NULL,
	        "X-Reject-Text: r|", "550 5.7.1 no \x01thanks"},
	    {"X-Hold: h\r\nB: 2\r\n\r\nbody\r\n", 0, 1, 0,
	        "X-Hold: h\r\nB: 2\r\n\r\nbody\r\n", "X-Hold: h|B: 2|", NULL},
	    {"A: 1\r\nX-Discard: d\r\nX-Reject: r\r\n\r\nbody\r\n", 0, 0, 1,
	        NULL, "A: 1|X-Discard: d|", NULL},
	    {"X-Hold: h\r\nX-Reject: r\r\n", CLEANUP_STAT_REJECT, 1, 0, NULL,
	        "X-Hold: h|X-Reject: r|", "550 5.7.1 message content rejected"},
	};
	char *dir = make_queue(), *content, *in;
	struct outcome out;
	size_t i, len;
	int bytewise;
	unsigned status;

	var_message_size_limit = 10240;
	checks.rules = rules;
	buf_init(&checks.seen, OUT_MAX);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (bytewise = 0; bytewise < 2; bytewise++) {
			buf_reset(&checks.seen);
			in = xasprintf("%s.\r\n", cases[i].in);
			status = run_message(&plain_env, in, strlen(in),
			    bytewise, setup_checks, &out, &content, &len);
			CHECK_INT(status, cases[i].status);
			CHECK_INT(out.hold, cases[i].hold);
			CHECK_INT(out.discard, cases[i].discard);
			CHECK_STR(buf_cstr(&checks.seen), cases[i].seen);
			if (cases[i].stored != NULL)
				CHECK(
				    content != NULL &&
				    len == strlen(cases[i].stored) &&
				    memcmp(content, cases[i].stored, len) == 0);
			else
				CHECK(content == NULL && !out.tmp_left);
			CHECK_STR(out.reject_text,
			    cases[i].reply != NULL ? cases[i].reply : "");
			if (unit_case_failed)
				printf("#   case %zu (%s)\n", i,
				    bytewise ? "bytewise" : "whole");
			free(content);
			free(in);
		}
	}
	buf_free(&checks.seen);
	remove_queue(dir);
}

/* A submission whose Date: a check deletes gets one added. */
static void
test_header_checks_missing(void)
{
	static const struct rule rules[] = {
	    {"Date:", CLEANUP_HEADER_IGNORE, NULL},
	    {NULL, CLEANUP_HEADER_DUNNO, NULL}};
	static const char in[] =
	    "Date: old\r\nMessage-ID: <a@b>\r\n\r\nb\r\n.\r\n";
	struct cleanup_envelope env = plain_env;
	char *dir = make_queue(), *content;
	size_t len;

	var_message_size_limit = 10240;
	env.add_missing_headers = 1;
	checks.rules = rules;
	buf_init(&checks.seen, OUT_MAX);
	CHECK_INT(run_message(&env, in, strlen(in), 0, setup_checks, NULL,
	              &content, &len),
	    0);
	CHECK(content != NULL && strstr(content, "Date: old") == NULL &&
	      strncmp(content, "Message-ID: <a@b>\r\nDate: ", 25) == 0 &&
	      strstr(content, "Message-ID: <2") == NULL);
	free(content);
	buf_free(&checks.seen);
	remove_queue(dir);
}

/* HOLD or DISCARD decided before the content (an access map at RCPT). */
static void
test_envelope_actions(void)
{
	static const char in[] = "Subject: x\r\n\r\nbody\r\n.\r\n";
	struct cleanup_envelope env = plain_env;
	struct outcome out;
	char *dir = make_queue(), *content;
	size_t len;

	var_message_size_limit = 10240;
	env.hold = 1;
	CHECK_INT(
	    run_message(&env, in, strlen(in), 0, NULL, &out, &content, &len),
	    0);
	CHECK(out.hold && !out.discard && content != NULL &&
	      strcmp(content, "Subject: x\r\n\r\nbody\r\n") == 0);
	free(content);
	env.hold = 0;
	env.discard = 1;
	CHECK_INT(
	    run_message(&env, in, strlen(in), 1, NULL, &out, &content, &len),
	    0);
	CHECK(out.discard && content == NULL && !out.tmp_left);
	remove_queue(dir);
}

/*
 * smtpd_forbid_bare_newline: a bare LF or CR in text content is stored
 * as CRLF (normalize), refused (reject) or kept (no), in DATA and in BDAT
 * without BINARYMIME, headers included; the end of DATA is CRLF.CRLF
 * only, whatever the policy.
 */
static void
test_bare(void)
{
	static const struct {
		const char *in; /* DATA, ended by the last CRLF.CRLF */
		const char *normalized;
	} cases[] = {
	    {"Subject: a\nX: b\r\n\r\nx\ry\r\n",
	        "Subject: a\r\nX: b\r\n\r\nx\r\ny\r\n"},
	    {"S: a\n b\r\n\nbody\n\r\n", "S: a\r\n b\r\n\r\nbody\r\n\r\n"},
	    /* No end at LF.CRLF or LF.LF: the smuggling defence. */
	    {"S: a\r\n\r\na\n.\r\nMAIL FROM:<x>\r\nx\n.\nb\r\n",
	        "S: a\r\n\r\na\r\n.\r\nMAIL FROM:<x>\r\nx\r\n.\r\nb\r\n"},
	    {"S: a\r\n\r\na\r\r\n\r\r\r\n",
	        "S: a\r\n\r\na\r\n\r\n\r\n\r\n\r\n"},
	};
	struct cleanup_envelope env = plain_env;
	char *dir = make_queue(), *content, *in;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;
	size_t i, len, j;
	int bytewise;

	var_message_size_limit = 10240;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		in = xasprintf("%s.\r\n", cases[i].in);
		for (bytewise = 0; bytewise < 2; bytewise++) {
			env.bare_newline = CLEANUP_BARE_NORMALIZE;
			CHECK_INT(run_message(&env, in, strlen(in), bytewise,
			              NULL, NULL, &content, &len),
			    0);
			CHECK(content != NULL &&
			      strcmp(content, cases[i].normalized) == 0);
			free(content);
			env.bare_newline = CLEANUP_BARE_KEEP;
			CHECK_INT(run_message(&env, in, strlen(in), bytewise,
			              NULL, NULL, &content, &len),
			    0);
			CHECK(content != NULL &&
			      strcmp(content, cases[i].in) == 0);
			free(content);
			env.bare_newline = CLEANUP_BARE_REJECT;
			CHECK_INT(run_message(&env, in, strlen(in), bytewise,
			              NULL, NULL, NULL, NULL),
			    CLEANUP_STAT_BARE);
			/* BDAT without BINARYMIME: the same, in any split. */
			env.bare_newline = CLEANUP_BARE_NORMALIZE;
			CHECK(cleanup_open(&c, &env, &error) == 0);
			len = strlen(cases[i].in);
			for (j = 0; j < len; j += bytewise ? 1 : len)
				cleanup_feed_raw(
				    &c, cases[i].in + j, bytewise ? 1 : len, 0);
			CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
			content = commit_content(&c, &q);
			CHECK(strstr(content, cases[i].normalized) != NULL);
			free(content);
			qfile_close(&q);
			if (unit_case_failed)
				printf("#   case %zu (%s)\n", i,
				    bytewise ? "bytewise" : "whole");
		}
		free(in);
	}
	/* BDAT that ends in a lone CR. */
	env.bare_newline = CLEANUP_BARE_NORMALIZE;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	cleanup_feed_raw(&c, "S: a\r\n\r\nb\r", 10, 0);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(strstr(content, "S: a\r\n\r\nb\r\n") != NULL);
	free(content);
	qfile_close(&q);
	remove_queue(dir);
}

/* 8-bit content is stored byte for byte, in headers and body, as DATA
 * (whole and byte by byte) and as BDAT. */
/*
 * A message a header check refused gets that reply however its bytes
 * arrive: a bare CR later in the same read used to add the bare-newline
 * refusal when the content came whole, and not when it came byte by
 * byte (found by fuzz_cleanup).
 */
static void
test_reject_then_bare(void)
{
	static const struct rule rules[] = {
	    {"X-Reject:", CLEANUP_HEADER_REJECT, NULL},
	    {NULL, CLEANUP_HEADER_DUNNO, NULL}};
	static const char in[] = "X-Reject: r\r\nY: z\rq\r\n\r\n.\r\n";
	struct cleanup_envelope env = plain_env;
	char *dir = make_queue();
	int bytewise;

	var_message_size_limit = 10240;
	env.bare_newline = CLEANUP_BARE_REJECT;
	checks.rules = rules;
	buf_init(&checks.seen, OUT_MAX);
	for (bytewise = 0; bytewise < 2; bytewise++)
		CHECK_INT(run_message(&env, in, strlen(in), bytewise,
		              setup_checks, NULL, NULL, NULL),
		    CLEANUP_STAT_REJECT);
	buf_free(&checks.seen);
	remove_queue(dir);
}

static void
test_8bit(void)
{
	struct buf in, expect;
	char *dir = make_queue(), *content;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;
	size_t len;
	int b, bytewise;

	var_message_size_limit = 10240;
	buf_init(&in, OUT_MAX);
	CHECK(buf_puts(&in, "Subject: ") == 0);
	for (b = 0x80; b <= 0xff; b++)
		CHECK(buf_putc(&in, (char)b) == 0);
	CHECK(buf_puts(&in, "\r\n\t") == 0);
	for (b = 0xff; b >= 0x80; b--)
		CHECK(buf_putc(&in, (char)b) == 0);
	CHECK(buf_puts(&in, "\r\n\r\n") == 0);
	for (b = 0x80; b <= 0xff; b++)
		CHECK(buf_putc(&in, (char)b) == 0);
	CHECK(buf_puts(&in, "\r\n") == 0);
	buf_init(&expect, OUT_MAX);
	CHECK(buf_append(&expect, in.data, in.len) == 0);
	CHECK(buf_puts(&in, ".\r\n") == 0);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		CHECK_INT(run_message(&plain_env, in.data, in.len, bytewise,
		              NULL, NULL, &content, &len),
		    0);
		CHECK(content != NULL && len == expect.len &&
		      memcmp(content, expect.data, len) == 0);
		free(content);
	}
	CHECK(cleanup_open(&c, &plain_env, &error) == 0);
	cleanup_feed_raw(&c, expect.data, expect.len, 0);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(q.content_len > expect.len &&
	      memcmp(content + q.content_len - expect.len, expect.data,
	          expect.len) == 0);
	free(content);
	qfile_close(&q);
	buf_free(&in);
	buf_free(&expect);
	remove_queue(dir);
}

/* Parameters a virtual_alias_maps test needs (no config_load here). */
static void
virtual_setup(char *maps)
{
	var_virtual_alias_maps = maps;
	var_virtual_alias_domains = "";
	var_virtual_mailbox_maps = "";
	var_mydestination = "";
	var_virtual_mailbox_domains = "";
	var_relay_domains = "";
	var_myorigin = "origin.test";
	var_virtual_alias_expansion_limit = 1000;
	var_virtual_alias_recursion_limit = 1000;
}

/*
 * virtual_alias_maps: a rewritten recipient becomes its addresses, each
 * with the client's NOTIFY and ORCPT, or the address the client wrote as
 * ORCPT; duplicates go after the expansion; Received: names the one
 * recipient the client gave.
 */
static void
test_virtual_alias(void)
{
	static const struct cleanup_rcpt rcpts[] = {
	    {"Group@ex.test", NULL, QRCPT_NOTIFY_SUCCESS},
	    {"plain@ex.test", "rfc822;Plain@ex.test", 0},
	    {"fan@ex.test", "rfc822;orig@x.test", QRCPT_NOTIFY_FAILURE}};
	struct cleanup_envelope env = {.sender = "s@example.org",
	    .rcpts = rcpts,
	    .nrcpt = 3,
	    .client_name = "h",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTP"};
	char *dir = make_queue(), *content;
	struct cleanup c;
	struct qfile q;
	const char *error = NULL;

	virtual_setup("inline:{ {group@ex.test = alice@virt.test, "
	              "bob@virt.test}, {fan@ex.test = carol@virt.test, "
	              "alice@virt.test plain@ex.test} }");
	var_message_size_limit = 10240;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "x\r\n.\r\n", 6), 6);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(strstr(content, "\tfor <") == NULL);
	free(content);
	CHECK_INT(q.nrcpt, 4);
	if (q.nrcpt == 4) {
		CHECK_STR(q.rcpts[0].addr, "alice@virt.test");
		CHECK_STR(q.rcpts[0].orcpt, "rfc822;Group@ex.test");
		CHECK_INT(q.rcpts[0].notify, QRCPT_NOTIFY_SUCCESS);
		CHECK_STR(q.rcpts[1].addr, "bob@virt.test");
		CHECK_STR(q.rcpts[1].orcpt, "rfc822;Group@ex.test");
		CHECK_INT(q.rcpts[1].notify, QRCPT_NOTIFY_SUCCESS);
		CHECK_STR(q.rcpts[2].addr, "plain@ex.test");
		CHECK_STR(q.rcpts[2].orcpt, "rfc822;Plain@ex.test");
		CHECK_INT(q.rcpts[2].notify, 0);
		CHECK_STR(q.rcpts[3].addr, "carol@virt.test");
		CHECK_STR(q.rcpts[3].orcpt, "rfc822;orig@x.test");
		CHECK_INT(q.rcpts[3].notify, QRCPT_NOTIFY_FAILURE);
	}
	qfile_close(&q);

	/* One recipient, expanded: Received: still names it. */
	env.nrcpt = 1;
	CHECK(cleanup_open(&c, &env, &error) == 0);
	CHECK_INT(cleanup_feed(&c, "x\r\n.\r\n", 6), 6);
	CHECK_INT(cleanup_finish(&c, &error, NULL), 0);
	content = commit_content(&c, &q);
	CHECK(strstr(content, "\tfor <Group@ex.test>; ") != NULL);
	CHECK_INT(q.nrcpt, 2);
	free(content);
	qfile_close(&q);
	virtual_setup(NULL);
	virtual_alias_tables_free();
	remove_queue(dir);
}

/* A recipient that cannot be expanded refuses the message before any
 * file exists; the content is read and dropped. */
static void
test_virtual_alias_refused(void)
{
	static const struct {
		const char *rcpt, *reply;
	} cases[] = {
	    {"loop@ex.test", "550 5.4.6 <loop@ex.test>: "},
	    {"cmd@ex.test", "550 5.1.3 <cmd@ex.test>: "},
	};
	struct cleanup_rcpt rcpt = {NULL, NULL, 0};
	struct cleanup_envelope env = {.sender = "s@example.org",
	    .rcpts = &rcpt,
	    .nrcpt = 1,
	    .client_name = "h",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTP"};
	char *dir = make_queue(), *tmp;
	const char *error = NULL;
	struct cleanup c;
	size_t i;

	virtual_setup("inline:{ loop@ex.test=loop2@ex.test, "
	              "loop2@ex.test=loop@ex.test, {cmd@ex.test = "
	              "ok@ex.test, |/bin/sh} }");
	tmp = queue_path(QUEUE_TMP, NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rcpt.addr = cases[i].rcpt;
		CHECK(cleanup_open(&c, &env, &error) == 0);
		CHECK_INT(c.status, CLEANUP_STAT_RCPT);
		CHECK(c.reject_text != NULL &&
		      strncmp(c.reject_text, cases[i].reply,
		          strlen(cases[i].reply)) == 0);
		CHECK(!c.open);
		CHECK_INT(cleanup_feed(&c, "x\r\n.\r\n", 6), 6);
		CHECK_INT(cleanup_finish(&c, &error, NULL), CLEANUP_STAT_RCPT);
		cleanup_free(&c);
		CHECK(rmdir(tmp) == 0 && mkdir(tmp, 0700) == 0);
	}
	free(tmp);
	virtual_setup(NULL);
	virtual_alias_tables_free();
	remove_queue(dir);
}

UNIT_MAIN(UNIT_CASE(test_data_whole), UNIT_CASE(test_data_bytewise),
    UNIT_CASE(test_queue_file), UNIT_CASE(test_duplicates),
    UNIT_CASE(test_submission_headers), UNIT_CASE(test_raw),
    UNIT_CASE(test_refused), UNIT_CASE(test_header_buffering),
    UNIT_CASE(test_header_limit), UNIT_CASE(test_hopcount),
    UNIT_CASE(test_header_checks), UNIT_CASE(test_header_checks_missing),
    UNIT_CASE(test_envelope_actions), UNIT_CASE(test_bare),
    UNIT_CASE(test_reject_then_bare),
    UNIT_CASE(test_8bit), UNIT_CASE(test_virtual_alias),
    UNIT_CASE(test_virtual_alias_refused))
