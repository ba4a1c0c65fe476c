/* SPDX-License-Identifier: MIT */
/*
 * Tests for delivery status notices: a queue file with ENVID, RET and
 * ORCPT gets a failure notice (whole message), a delay notice (headers,
 * Will-Retry-Until), a RET=HDRS failure, one about a message too large
 * to return, a success notice, a double bounce and an SMTPUTF8 (RFC
 * 6533) notice. Each is read back with qfile_open, its fields checked in
 * C and, when python3 is there, parsed by python3's email package
 * (test/dsn_check.py) as a mail reader would.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/dsn.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/status_log.h"
#include "unit.h"

#ifndef TERN_TEST_DIR
#define TERN_TEST_DIR "test"
#endif
#define TEST_HOST       "mx.example.test"
#define TEST_ARRIVAL    1700000000LL
#define TEST_NOTICE_MAX (1024 * 1024)
#define TEST_LINE_MAX   998
#define TEST_BODY_MARK  "BODY-MARKER-7f3a"
#define TEST_SUBJECT    "quarterly report"
#define TEST_LINE       "0123456789012345678901234567890123456789\r\n"

static char test_root[] = "/tmp/dsn_test.XXXXXX";
static int have_python = -1;

static void
test_setup(void)
{
	static const char *const dirs[] = {
	    QUEUE_TMP, QUEUE_INCOMING, QUEUE_STATUS};
	const char *error;
	char *conf, *queue, *d;
	size_t i;

	if (mkdtemp(test_root) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	conf = xasprintf("%s/conf", test_root);
	queue = xasprintf("%s/queue", test_root);
	CHECK_INT(mkdir(conf, 0700), 0);
	config_override("queue_directory", queue);
	config_override("myhostname", TEST_HOST);
	config_override("bounce_size_limit", "4096");
	if (config_load(conf, &error) < 0) {
		printf("# config_load: %s\n", error);
		exit(1);
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		d = queue_path(dirs[i], NULL);
		CHECK_INT(file_ensure_dir(
		              d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error),
		    0);
		free(d);
	}
	free(conf);
	free(queue);
}

struct msg_spec {
	const char *sender;
	const char *ret; /* NULL: absent */
	int smtputf8;
	size_t body_size; /* extra body bytes */
};

/* Writes a message with three recipients; opens it into q. */
static void
make_message(const struct msg_spec *m, struct qfile *q)
{
	struct qfile_writer w;
	const char *error;
	char *path, *hdr;
	size_t i;

	CHECK_INT(qfile_create(&w, &error), 0);
	qfile_put_sender(&w, m->sender);
	qfile_put_attr(&w, "protocol", "ESMTP");
	qfile_put_attr(&w, "envid", "ENV-1234+x");
	if (m->ret != NULL)
		qfile_put_attr(&w, "ret", m->ret);
	if (m->smtputf8)
		qfile_put_attr(&w, "smtputf8", "1");
	qfile_put_rcpt(&w,
	    m->smtputf8 ? "b\xc3\xb6"
	                  "b@example.net"
	                : "bob@example.net",
	    "rfc822;Bob@Example.NET", QRCPT_NOTIFY_FAILURE);
	qfile_put_rcpt(&w, "carol@example.net", "", 0);
	qfile_put_rcpt(&w, "dave@example.net", "rfc822;dave@example.net",
	    QRCPT_NOTIFY_SUCCESS);
	qfile_content_begin(&w);
	hdr = xasprintf("Received: from client by " TEST_HOST "\r\n"
	                "From: <%s>\r\n"
	                "To: bob@example.net\r\n"
	                "Subject: " TEST_SUBJECT "\r\n"
	                "Message-ID: <orig@example.org>\r\n"
	                "\r\n"
	                "Hello,\r\n" TEST_BODY_MARK "\r\n"
	                "--fake-boundary\r\n",
	    m->sender);
	qfile_content_write(&w, hdr, strlen(hdr));
	free(hdr);
	for (i = 0; i < m->body_size / (sizeof(TEST_LINE) - 1); i++)
		qfile_content_write(&w, TEST_LINE, sizeof(TEST_LINE) - 1);
	CHECK_INT(qfile_finish(&w, &error), 0);
	CHECK_INT(qfile_commit(&w, QUEUE_INCOMING, &error), 0);
	path = queue_path(QUEUE_INCOMING, w.id);
	qfile_writer_free(&w);
	CHECK_INT(qfile_open(path, 0, (uid_t)-1, q, &error), 0);
	CHECK_INT(q->complete, 1);
	free(path);
}

static void
log_records(const struct qfile *q, int delayed)
{
	struct status_rec r[3];
	const char *error;

	memset(r, 0, sizeof(r));
	r[0].rcpt = 0;
	r[0].action = delayed ? STATUS_ACTION_DELAYED : STATUS_ACTION_FAILED;
	r[0].status = delayed ? "4.4.1" : "5.1.1";
	r[0].diag_type = STATUS_DIAG_SMTP;
	r[0].diag = delayed ? "451 4.4.1 try again later"
	                    : "550 5.1.1 <bob@example.net>: no such user";
	r[0].mta = "mx.example.net";
	r[0].when = TEST_ARRIVAL + 60;
	r[1].rcpt = 1;
	r[1].action = STATUS_ACTION_FAILED;
	r[1].status = "5.1.1";
	r[1].diag_type = STATUS_DIAG_TERN;
	r[1].diag = "user unknown";
	r[1].mta = "";
	r[1].when = TEST_ARRIVAL + 61;
	r[2].rcpt = 2;
	r[2].action = STATUS_ACTION_DELIVERED;
	r[2].status = "2.0.0";
	r[2].diag_type = STATUS_DIAG_TERN;
	r[2].diag = "delivered to maildir";
	r[2].mta = "";
	r[2].when = TEST_ARRIVAL + 62;
	CHECK_INT(status_log_append(q->id, r, 3, &error), 0);
}

/* Opens the notice, checks its envelope, returns its content. */
static char *
read_notice(const char *id, const char *notice, const char *to, int utf8,
    struct qfile *n)
{
	const char *error, *v;
	char *path = queue_path(QUEUE_INCOMING, id), *content = NULL;

	CHECK_INT(qfile_open(path, 0, (uid_t)-1, n, &error), 0);
	free(path);
	CHECK_INT(n->complete, 1);
	CHECK_STR(n->sender, "");
	CHECK_INT(n->nrcpt, 1);
	if (n->nrcpt == 1)
		CHECK_STR(n->rcpts[0].addr, to);
	CHECK_STR(qfile_attr(n, DSN_ATTR_NOTICE), notice);
	CHECK_STR(qfile_attr(n, "protocol"), "local");
	v = qfile_attr(n, "smtputf8");
	CHECK(utf8 ? v != NULL : v == NULL);
	CHECK(n->content_len < TEST_NOTICE_MAX);
	content = xcalloc(1, (size_t)n->content_len + 1);
	CHECK_INT(file_pread_all(
	              n->fd, content, (size_t)n->content_len, n->content_off),
	    0);
	return content;
}

/* Every line ends in CRLF and none is longer than RFC 5322 allows. */
static void
check_lines(const char *c)
{
	const char *p = c, *nl;

	while ((nl = strchr(p, '\n')) != NULL) {
		CHECK(nl > p && nl[-1] == '\r');
		CHECK(nl - p - 1 <= TEST_LINE_MAX);
		p = nl + 1;
	}
	CHECK(*p == '\0');
	CHECK(strchr(c, '\r') == NULL || strstr(c, "\r\r") == NULL);
}

#define CHECK_HAS(c, s)                                           \
	do {                                                      \
		if (strstr((c), (s)) == NULL) {                   \
			printf("#   missing: %s\n", (s));         \
			unit_fail(__FILE__, __LINE__, "has " #s); \
		}                                                 \
	} while (0)
#define CHECK_LACKS(c, s)                                           \
	do {                                                        \
		if (strstr((c), (s)) != NULL) {                     \
			printf("#   present: %s\n", (s));           \
			unit_fail(__FILE__, __LINE__, "lacks " #s); \
		}                                                   \
	} while (0)

/* Runs test/dsn_check.py over the content, with the expectations. */
static void
python_check(const char *content, const char *expect_json)
{
	char *notice = xasprintf("%s/notice.eml", test_root);
	char *expect = xasprintf("%s/expect.json", test_root);
	char *cmd;
	const char *error;
	int status;

	if (have_python < 0)
		have_python =
		    system("python3 -c 'import email, json' >/dev/null 2>&1") ==
		    0;
	if (!have_python) {
		printf("# python3 missing: email package check skipped\n");
		goto out;
	}
	CHECK_INT(file_write_atomic(notice, content, strlen(content), 0600,
	              (uid_t)-1, (gid_t)-1, &error),
	    0);
	CHECK_INT(file_write_atomic(expect, expect_json, strlen(expect_json),
	              0600, (uid_t)-1, (gid_t)-1, &error),
	    0);
	cmd = xasprintf("python3 '%s/dsn_check.py' '%s' '%s'", TERN_TEST_DIR,
	    notice, expect);
	fflush(stdout);
	status = system(cmd);
	CHECK_INT(status, 0);
	free(cmd);
out:
	free(notice);
	free(expect);
}

static void
free_notice(struct qfile *n, char *content)
{
	char *path = queue_path(QUEUE_INCOMING, n->id);

	CHECK_INT(unlink(path), 0);
	free(path);
	qfile_close(n);
	free(content);
}

static void
test_failure_full(void)
{
	static const struct msg_spec m = {"alice@example.org", NULL, 0, 0};
	static const int rcpts[] = {0, 1};
	struct qfile q, n;
	struct status_log *log;
	char id[QUEUE_ID_SIZE], *c;
	const char *error;

	make_message(&m, &q);
	log_records(&q, 0);
	log = status_log_read(q.id, q.nrcpt, &error);
	CHECK(log != NULL);
	CHECK_INT(
	    dsn_write(&q, DSN_FAILED, rcpts, 2, log, q.sender, id, &error), 0);
	CHECK(queue_id_valid(id));
	c = read_notice(id, DSN_NOTICE_BOUNCE, "alice@example.org", 0, &n);
	check_lines(c);
	CHECK(strncmp(c,
	          "From: Mail Delivery System <MAILER-DAEMON@" TEST_HOST
	          ">\r\nTo: <alice@example.org>\r\n",
	          strlen("From: Mail Delivery System <MAILER-DAEMON@" TEST_HOST
	                 ">\r\nTo: <alice@example.org>\r\n")) == 0);
	CHECK_HAS(c, "\r\nSubject: Undelivered Mail Returned to Sender\r\n");
	CHECK_HAS(c, "\r\nAuto-Submitted: auto-replied\r\n");
	CHECK_HAS(c, "\r\nContent-Type: multipart/report; "
	             "report-type=delivery-status;\r\n");
	CHECK_HAS(c, "\r\nReporting-MTA: dns; " TEST_HOST "\r\n");
	CHECK_HAS(c, "\r\nOriginal-Envelope-Id: ENV-1234+x\r\n");
	CHECK_HAS(c, "\r\nX-Tern-Sender: rfc822; alice@example.org\r\n");
	CHECK_HAS(c, "\r\nArrival-Date: ");
	CHECK_HAS(c, "\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\n"
	             "Original-Recipient: rfc822; Bob@Example.NET\r\n"
	             "Action: failed\r\nStatus: 5.1.1\r\n"
	             "Remote-MTA: dns; mx.example.net\r\n"
	             "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no "
	             "such user\r\nLast-Attempt-Date: ");
	CHECK_HAS(c, "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\n"
	             "Action: failed\r\nStatus: 5.1.1\r\n"
	             "Diagnostic-Code: x-tern; user unknown\r\n");
	/* Folded for people, at a space. */
	CHECK_HAS(c, "<bob@example.net>: host mx.example.net said: 550 "
	             "5.1.1 <bob@example.net>: no\r\n    such user\r\n");
	CHECK_HAS(c, "<carol@example.net>: user unknown\r\n");
	CHECK_HAS(c, "\r\nContent-Type: message/rfc822\r\n");
	CHECK_HAS(c, TEST_BODY_MARK);
	CHECK_LACKS(c, "dave@example.net");
	CHECK_LACKS(c, "Will-Retry-Until");
	python_check(c,
	    "{\"subject\": \"Undelivered Mail Returned to Sender\","
	    " \"report_type\": \"delivery-status\", \"envid\": \"ENV-1234+x\","
	    " \"original\": \"message/rfc822\", \"original_subject\": \"" TEST_SUBJECT
	    "\", \"body_included\": true, \"rcpts\": ["
	    "{\"Final-Recipient\": \"rfc822; bob@example.net\","
	    " \"Original-Recipient\": \"rfc822; Bob@Example.NET\","
	    " \"Action\": \"failed\", \"Status\": \"5.1.1\","
	    " \"Remote-MTA\": \"dns; mx.example.net\","
	    " \"Diagnostic-Code\": \"smtp; 550 5.1.1 <bob@example.net>: no "
	    "such user\", \"Last-Attempt-Date\": \"*\","
	    " \"Will-Retry-Until\": null},"
	    "{\"Final-Recipient\": \"rfc822; carol@example.net\","
	    " \"Original-Recipient\": null, \"Remote-MTA\": null,"
	    " \"Action\": \"failed\", \"Status\": \"5.1.1\","
	    " \"Diagnostic-Code\": \"x-tern; user unknown\"}]}");
	free_notice(&n, c);
	status_log_free(&log);
	CHECK_INT(status_log_remove(q.id), 0);
	qfile_close(&q);
}

static void
test_delay(void)
{
	static const struct msg_spec m = {"alice@example.org", "FULL", 0, 0};
	static const int rcpts[] = {0};
	struct qfile q, n;
	struct status_log *log;
	char id[QUEUE_ID_SIZE], *c;
	const char *error;

	make_message(&m, &q);
	log_records(&q, 1);
	log = status_log_read(q.id, q.nrcpt, &error);
	CHECK_INT(
	    dsn_write(&q, DSN_DELAYED, rcpts, 1, log, q.sender, id, &error), 0);
	c = read_notice(id, DSN_NOTICE_DELAY, "alice@example.org", 0, &n);
	check_lines(c);
	CHECK_HAS(c, "\r\nSubject: Delayed Mail (still being retried)\r\n");
	CHECK_HAS(c, "Action: delayed\r\nStatus: 4.4.1\r\n");
	CHECK_HAS(c, "\r\nWill-Retry-Until: ");
	CHECK_HAS(c, "\r\nContent-Type: text/rfc822-headers\r\n");
	CHECK_HAS(c, "\r\nSubject: " TEST_SUBJECT "\r\n");
	/* Headers only, even with RET=FULL. */
	CHECK_LACKS(c, TEST_BODY_MARK);
	python_check(c,
	    "{\"subject\": \"Delayed Mail (still being retried)\","
	    " \"report_type\": \"delivery-status\", \"envid\": \"ENV-1234+x\","
	    " \"original\": \"text/rfc822-headers\", \"original_subject\": \"" TEST_SUBJECT
	    "\", \"body_included\": false, \"rcpts\": ["
	    "{\"Final-Recipient\": \"rfc822; bob@example.net\","
	    " \"Original-Recipient\": \"rfc822; Bob@Example.NET\","
	    " \"Action\": \"delayed\", \"Status\": \"4.4.1\","
	    " \"Remote-MTA\": \"dns; mx.example.net\","
	    " \"Diagnostic-Code\": \"smtp; 451 4.4.1 try again later\","
	    " \"Last-Attempt-Date\": \"*\", \"Will-Retry-Until\": \"*\"}]}");
	free_notice(&n, c);
	status_log_free(&log);
	CHECK_INT(status_log_remove(q.id), 0);
	qfile_close(&q);
}

/* RET=HDRS, and a message larger than bounce_size_limit: headers only. */
static void
test_headers_only(void)
{
	static const struct msg_spec hdrs = {"alice@example.org", "HDRS", 0, 0};
	static const struct msg_spec big = {"alice@example.org", NULL, 0, 8192};
	static const int rcpts[] = {1};
	const struct msg_spec *specs[] = {&hdrs, &big};
	struct qfile q, n;
	char id[QUEUE_ID_SIZE], *c;
	const char *error;
	size_t i;

	for (i = 0; i < 2; i++) {
		make_message(specs[i], &q);
		/* No status log at all: generic status of the kind. */
		CHECK_INT(dsn_write(&q, DSN_FAILED, rcpts, 1, NULL, q.sender,
		              id, &error),
		    0);
		c = read_notice(
		    id, DSN_NOTICE_BOUNCE, "alice@example.org", 0, &n);
		check_lines(c);
		CHECK_HAS(c, "Final-Recipient: rfc822; carol@example.net\r\n"
		             "Action: failed\r\nStatus: 5.0.0\r\n\r\n--");
		CHECK_HAS(c, "<carol@example.net>: no reason was recorded");
		CHECK_HAS(c, "\r\nContent-Type: text/rfc822-headers\r\n");
		CHECK_HAS(c, "\r\nSubject: " TEST_SUBJECT "\r\n");
		CHECK_LACKS(c, TEST_BODY_MARK);
		CHECK(n.content_len < 4096 + 4096);
		python_check(c,
		    "{\"subject\": \"Undelivered Mail Returned to Sender\","
		    " \"report_type\": \"delivery-status\","
		    " \"envid\": \"ENV-1234+x\","
		    " \"original\": \"text/rfc822-headers\","
		    " \"original_subject\": \"" TEST_SUBJECT "\","
		    " \"body_included\": false, \"rcpts\": ["
		    "{\"Final-Recipient\": \"rfc822; carol@example.net\","
		    " \"Action\": \"failed\", \"Status\": \"5.0.0\","
		    " \"Diagnostic-Code\": null,"
		    " \"Last-Attempt-Date\": null}]}");
		free_notice(&n, c);
		qfile_close(&q);
	}
}

static void
test_success_and_double_bounce(void)
{
	static const struct msg_spec m = {"alice@example.org", NULL, 0, 0};
	static const struct msg_spec null = {"", NULL, 0, 0};
	static const int two[] = {2};
	struct qfile q, n;
	struct status_log *log;
	char id[QUEUE_ID_SIZE], *c;
	const char *error;

	make_message(&m, &q);
	log_records(&q, 0);
	log = status_log_read(q.id, q.nrcpt, &error);
	CHECK_INT(
	    dsn_write(&q, DSN_SUCCESS, two, 1, log, q.sender, id, &error), 0);
	c = read_notice(id, DSN_NOTICE_SUCCESS, "alice@example.org", 0, &n);
	check_lines(c);
	CHECK_HAS(c, "\r\nSubject: Successful Mail Delivery Report\r\n");
	CHECK_HAS(c, "Final-Recipient: rfc822; dave@example.net\r\n"
	             "Original-Recipient: rfc822; dave@example.net\r\n"
	             "Action: delivered\r\nStatus: 2.0.0\r\n"
	             "Diagnostic-Code: x-tern; delivered to maildir\r\n");
	CHECK_HAS(c, "\r\nContent-Type: text/rfc822-headers\r\n");
	CHECK_LACKS(c, TEST_BODY_MARK);
	python_check(c,
	    "{\"subject\": \"Successful Mail Delivery Report\","
	    " \"report_type\": \"delivery-status\", \"envid\": \"ENV-1234+x\","
	    " \"original\": \"text/rfc822-headers\", \"original_subject\": \"" TEST_SUBJECT
	    "\", \"body_included\": false, \"rcpts\": ["
	    "{\"Final-Recipient\": \"rfc822; dave@example.net\","
	    " \"Action\": \"delivered\", \"Status\": \"2.0.0\"}]}");
	free_notice(&n, c);
	status_log_free(&log);
	CHECK_INT(status_log_remove(q.id), 0);
	qfile_close(&q);

	/* A failed message with the null sender: to the postmaster. */
	make_message(&null, &q);
	CHECK_INT(
	    dsn_write(&q, DSN_FAILED, two, 1, NULL, "postmaster", id, &error),
	    0);
	c = read_notice(id, DSN_NOTICE_2BOUNCE, "postmaster", 0, &n);
	check_lines(c);
	CHECK_HAS(c, "\r\nTo: <postmaster@" TEST_HOST ">\r\n");
	CHECK_HAS(c, "\r\nSubject: Postmaster Copy: Undelivered Mail\r\n");
	CHECK_LACKS(c, "X-Tern-Sender");
	CHECK_HAS(c, TEST_BODY_MARK);
	free_notice(&n, c);
	qfile_close(&q);
}

static void
test_smtputf8(void)
{
	static const struct msg_spec m = {
	    "\xc3\xa4lice@example.org", NULL, 1, 0};
	static const int rcpts[] = {0, 1};
	struct qfile q, n;
	char id[QUEUE_ID_SIZE], *c;
	const char *error;

	make_message(&m, &q);
	CHECK_INT(
	    dsn_write(&q, DSN_FAILED, rcpts, 2, NULL, q.sender, id, &error), 0);
	c = read_notice(
	    id, DSN_NOTICE_BOUNCE, "\xc3\xa4lice@example.org", 1, &n);
	check_lines(c);
	CHECK_HAS(c, "report-type=global-delivery-status;");
	CHECK_HAS(c, "\r\nContent-Type: message/global-delivery-status\r\n");
	CHECK_HAS(c, "\r\nFinal-Recipient: utf-8; b\xc3\xb6"
	             "b@example.net\r\n");
	CHECK_HAS(c, "\r\nContent-Type: message/global\r\n");
	CHECK_HAS(c, "\r\nContent-Transfer-Encoding: 8bit\r\n");
	CHECK_STR(qfile_attr(&n, "body"), "8BITMIME");
	python_check(c,
	    "{\"subject\": \"Undelivered Mail Returned to Sender\","
	    " \"report_type\": \"global-delivery-status\","
	    " \"envid\": \"ENV-1234+x\", \"original\": \"message/global\","
	    " \"original_subject\": \"" TEST_SUBJECT "\","
	    " \"body_included\": true, \"rcpts\": ["
	    "{\"Final-Recipient\": \"utf-8; b\xc3\xb6"
	    "b@example.net\","
	    " \"Action\": \"failed\"},"
	    "{\"Final-Recipient\": \"rfc822; carol@example.net\"}]}");
	free_notice(&n, c);
	qfile_close(&q);
}

/*
 * Long diagnostics: with spaces they are folded at a space (unfolding
 * gives the text back), without they are cut below 998 octets. A CR or
 * LF from the peer never reaches the notice (the log sanitises it).
 */
static void
test_long_diag(void)
{
	static const struct msg_spec m = {"alice@example.org", NULL, 0, 0};
	static const int rcpts[] = {0, 1};
	struct status_rec r[2];
	struct qfile q, n;
	struct status_log *log;
	char id[QUEUE_ID_SIZE], *c, *words, *solid;
	const char *error;
	size_t i;

	make_message(&m, &q);
	words = xmalloc(STATUS_DIAG_MAX);
	solid = xmalloc(STATUS_DIAG_MAX);
	for (i = 0; i < STATUS_DIAG_MAX - 1; i++) {
		words[i] = i % 10 == 9 ? ' ' : 'w';
		solid[i] = 's';
	}
	words[i] = solid[i] = '\0';
	memcpy(words, "550\r\nX-Injected: yes ", 21);
	memset(r, 0, sizeof(r));
	r[0].rcpt = 0;
	r[0].action = STATUS_ACTION_FAILED;
	r[0].status = "5.0.0";
	r[0].diag_type = STATUS_DIAG_SMTP;
	r[0].diag = words;
	r[0].mta = "mx.example.net";
	r[1] = r[0];
	r[1].rcpt = 1;
	r[1].diag = solid;
	CHECK_INT(status_log_append(q.id, r, 2, &error), 0);
	log = status_log_read(q.id, q.nrcpt, &error);
	CHECK_INT(
	    dsn_write(&q, DSN_FAILED, rcpts, 2, log, q.sender, id, &error), 0);
	c = read_notice(id, DSN_NOTICE_BOUNCE, "alice@example.org", 0, &n);
	check_lines(c);
	CHECK_LACKS(c, "\nX-Injected");
	CHECK_HAS(c, "Diagnostic-Code: smtp; 550  X-Injected: yes ");
	CHECK_HAS(c, "\r\n sssss");
	free_notice(&n, c);
	free(words);
	free(solid);
	status_log_free(&log);
	CHECK_INT(status_log_remove(q.id), 0);
	qfile_close(&q);
}

static void
test_errors(void)
{
	static const int rcpts[] = {0};
	struct qfile q;
	char id[QUEUE_ID_SIZE];
	const char *error;
	char *tmp;
	int count = 0;
	DIR *d;

	memset(&q, 0, sizeof(q));
	q.fd = -1;
	q.sender = (char *)"a@example.org";
	q.nrcpt = 1;
	q.complete = 0;
	snprintf(q.id, sizeof(q.id), "%s", "ABCDEFGHJKMNPQ");
	CHECK_INT(dsn_write(&q, DSN_FAILED, rcpts, 1, NULL, "a@example.org", id,
	              &error),
	    -1);
	CHECK(strstr(error, "incomplete") != NULL);
	q.complete = 1;
	CHECK_INT(
	    dsn_write(&q, DSN_FAILED, rcpts, 1, NULL, "", id, &error), -1);
	/* Nothing left behind in tmp/. */
	tmp = queue_path(QUEUE_TMP, NULL);
	d = opendir(tmp);
	CHECK(d != NULL);
	while (d != NULL && readdir(d) != NULL)
		count++;
	if (d != NULL)
		closedir(d);
	CHECK_INT(count, 2);
	free(tmp);
}

static void
test_notify_wants(void)
{
	static const struct {
		unsigned notify;
		int failed, delayed, success;
	} cases[] = {
	    {0, 1, 1, 0},
	    {QRCPT_NOTIFY_NEVER, 0, 0, 0},
	    {QRCPT_NOTIFY_SUCCESS, 0, 0, 1},
	    {QRCPT_NOTIFY_FAILURE, 1, 0, 0},
	    {QRCPT_NOTIFY_DELAY, 0, 1, 0},
	    {QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY,
	        1, 1, 1},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(dsn_notify_wants(cases[i].notify, DSN_FAILED),
		    cases[i].failed);
		CHECK_INT(dsn_notify_wants(cases[i].notify, DSN_DELAYED),
		    cases[i].delayed);
		CHECK_INT(dsn_notify_wants(cases[i].notify, DSN_SUCCESS),
		    cases[i].success);
	}
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_failure_full),
    UNIT_CASE(test_delay), UNIT_CASE(test_headers_only),
    UNIT_CASE(test_success_and_double_bounce), UNIT_CASE(test_smtputf8),
    UNIT_CASE(test_long_diag), UNIT_CASE(test_errors),
    UNIT_CASE(test_notify_wants), UNIT_CASE(test_cleanup))
