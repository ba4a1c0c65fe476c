/* SPDX-License-Identifier: MIT */
/*
 * Tests for the queue file writer and reader: round trips, in-place
 * recipient marks, and a reader that never accepts a cut or damaged file
 * as complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "unit.h"

#define TEST_NRCPT       300
#define TEST_BIG_CONTENT (200 * 1024)
#define TEST_FILE_MAX    (1024 * 1024)

static char test_root[] = "/tmp/qfile_test.XXXXXX";

static void
setup(void)
{
	const char *error;
	char *conf, *queue, *d;

	if (mkdtemp(test_root) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	conf = xasprintf("%s/conf", test_root);
	queue = xasprintf("%s/queue", test_root);
	if (mkdir(conf, 0700) < 0) {
		perror("mkdir");
		exit(1);
	}
	config_override("queue_directory", queue);
	if (config_load(conf, &error) < 0) {
		printf("# config_load: %s\n", error);
		exit(1);
	}
	d = queue_path(QUEUE_TMP, NULL);
	if (file_ensure_dir(d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error) < 0)
		exit(1);
	free(d);
	d = queue_path(QUEUE_INCOMING, NULL);
	if (file_ensure_dir(d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error) < 0)
		exit(1);
	free(d);
	free(conf);
	free(queue);
}

static char *
make_content(size_t len)
{
	char *c = xmalloc(len);
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 80 == 78)
			c[i] = '\r';
		else if (i % 80 == 79)
			c[i] = '\n';
		else
			c[i] = (char)(i * 7 % 256); /* NUL and 0xff too */
	}
	return c;
}

/* Writes a whole queue file into incoming/; returns its ID (static). */
static const char *
write_message(const char *sender, int nrcpt, const char *content, size_t len)
{
	static char id[QUEUE_ID_SIZE];
	struct qfile_writer w;
	const char *error;
	char addr[64], orcpt[80];
	size_t off, n;
	int i;

	CHECK_INT(qfile_create(&w, &error), 0);
	qfile_put_sender(&w, sender);
	qfile_put_attr(&w, "client_addr", "127.0.0.1");
	qfile_put_attr(&w, "helo", "x=y.example");
	qfile_put_attr(&w, "envid", "");
	for (i = 0; i < nrcpt; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.test", i);
		snprintf(orcpt, sizeof(orcpt), i % 2 ? "rfc822;%s" : "", addr);
		qfile_put_rcpt(&w, addr, orcpt, (unsigned)(i % 16));
	}
	qfile_content_begin(&w);
	/* Uneven pieces cross the flush threshold in every way. */
	for (off = 0; off < len; off += n) {
		n = (off / 7 + 1) * 1013 % 70000 + 1;
		if (n > len - off)
			n = len - off;
		qfile_content_write(&w, content + off, n);
	}
	CHECK_INT(qfile_finish(&w, &error), 0);
	CHECK_INT(qfile_commit(&w, QUEUE_INCOMING, &error), 0);
	memcpy(id, w.id, sizeof(id));
	qfile_writer_free(&w);
	return id;
}

static char *
incoming(const char *id)
{
	return queue_path(QUEUE_INCOMING, id);
}

static void
check_message(const char *id, const char *sender, int nrcpt,
    const char *content, size_t len)
{
	struct qfile q;
	const char *error;
	char *path = incoming(id), *got, addr[64], orcpt[80];
	int i;

	CHECK_INT(qfile_open(path, 0, (uid_t)-1, &q, &error), 0);
	CHECK_STR(q.id, id);
	CHECK_INT(q.complete, 1);
	CHECK_STR(q.sender, sender);
	CHECK(q.arrival_sec > 1000000000LL);
	CHECK(q.arrival_usec >= 0 && q.arrival_usec < 1000000);
	CHECK_INT(q.nattr, 3);
	CHECK_STR(qfile_attr(&q, "client_addr"), "127.0.0.1");
	CHECK_STR(qfile_attr(&q, "helo"), "x=y.example");
	CHECK_STR(qfile_attr(&q, "envid"), "");
	CHECK(qfile_attr(&q, "nope") == NULL);
	CHECK_INT(q.nrcpt, nrcpt);
	for (i = 0; i < q.nrcpt && i < nrcpt; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.test", i);
		snprintf(orcpt, sizeof(orcpt), i % 2 ? "rfc822;%s" : "", addr);
		CHECK_STR(q.rcpts[i].addr, addr);
		CHECK_STR(q.rcpts[i].orcpt, orcpt);
		CHECK_INT(q.rcpts[i].notify, i % 16);
		CHECK_INT(q.rcpts[i].status, QREC_RCPT);
	}
	CHECK_INT(qfile_pending(&q), nrcpt);
	CHECK_INT(q.content_len, len);
	got = xmalloc(len + 1);
	CHECK_INT(file_pread_all(q.fd, got, len, q.content_off), 0);
	CHECK(memcmp(got, content, len) == 0);
	free(got);
	qfile_close(&q);
	CHECK_INT(q.fd, -1);
	free(path);
}

static void
test_round_trip(void)
{
	static const char small[] = "Subject: x\r\n\r\nhello\r\n";
	char *big = make_content(TEST_BIG_CONTENT);
	const char *id;

	id = write_message("alice@example.test", 2, small, sizeof(small) - 1);
	check_message(id, "alice@example.test", 2, small, sizeof(small) - 1);
	id = write_message("", TEST_NRCPT, big, TEST_BIG_CONTENT);
	check_message(id, "", TEST_NRCPT, big, TEST_BIG_CONTENT);
	id = write_message("b@x", 1, "", 0);
	check_message(id, "b@x", 1, "", 0);
	free(big);
}

static void
test_marks(void)
{
	static const char body[] = "x\r\n";
	struct qfile q;
	const char *error;
	const char *id = write_message("s@x", 5, body, 3);
	char *path = incoming(id);

	CHECK_INT(qfile_open(path, 1, (uid_t)-1, &q, &error), 0);
	CHECK_INT(qfile_pending(&q), 5);
	CHECK_INT(qfile_mark(&q, 0, QREC_RCPT_DONE, &error), 0);
	CHECK_INT(qfile_mark(&q, 3, QREC_RCPT_FAILED, &error), 0);
	CHECK_INT(qfile_mark(&q, 4, QREC_RCPT_DONE, &error), 0);
	CHECK_INT(qfile_mark(&q, 4, QREC_RCPT, &error), 0);
	CHECK_INT(qfile_sync(&q, &error), 0);
	CHECK_INT(qfile_pending(&q), 3);
	qfile_close(&q);

	CHECK_INT(qfile_open(path, 0, (uid_t)-1, &q, &error), 0);
	CHECK_INT(q.complete, 1);
	CHECK_INT(q.rcpts[0].status, QREC_RCPT_DONE);
	CHECK_INT(q.rcpts[1].status, QREC_RCPT);
	CHECK_INT(q.rcpts[3].status, QREC_RCPT_FAILED);
	CHECK_INT(q.rcpts[4].status, QREC_RCPT);
	CHECK_INT(qfile_pending(&q), 3);
	CHECK_STR(q.rcpts[3].addr, "user3@example.test");
	/* A read-only open cannot mark. */
	CHECK_INT(qfile_mark(&q, 1, QREC_RCPT_DONE, &error), -1);
	CHECK_INT(q.rcpts[1].status, QREC_RCPT);
	qfile_close(&q);
	free(path);
}

static void
load_file(const char *path, struct buf *b)
{
	const char *error;

	buf_init(b, TEST_FILE_MAX);
	CHECK_INT(file_read_all(path, TEST_FILE_MAX, b, &error), 0);
}

static char *
store(const char *name, const void *data, size_t len)
{
	char *path = xasprintf("%s/%s", test_root, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, data, len), 0);
	close(fd);
	return path;
}

/* Opens data as a queue file: -1, 0 (incomplete) or 1 (complete). */
static int
open_data(const void *data, size_t len)
{
	struct qfile q;
	const char *error = NULL;
	char *path = store("probe", data, len);
	int ret;

	ret = qfile_open(path, 0, (uid_t)-1, &q, &error);
	if (ret == 0) {
		ret = q.complete;
		CHECK(q.sender != NULL);
		qfile_close(&q);
	} else {
		CHECK(error != NULL);
	}
	free(path);
	return ret;
}

static void
test_truncation(void)
{
	static const char body[] = "a\r\n\r\nb\r\n";
	const char *id = write_message("s@x", 3, body, sizeof(body) - 1);
	char *path = incoming(id);
	struct buf b;
	size_t n;
	int r, incomplete = 0;

	load_file(path, &b);
	CHECK_INT(open_data(b.data, b.len), 1);
	for (n = 0; n < b.len; n++) {
		r = open_data(b.data, n);
		if (r != 0 && r != -1) {
			printf("# cut at %zu of %zu: complete\n", n, b.len);
			CHECK(0);
		}
		incomplete += r == 0;
	}
	/* Every cut of a valid file is merely incomplete. */
	CHECK_INT(incomplete, b.len);
	buf_free(&b);
	free(path);
}

static void
rec(struct buf *b, char type, const void *p, size_t len)
{
	unsigned char h[QFILE_HDR_LEN];

	h[0] = (unsigned char)type;
	h[1] = (unsigned char)(len >> 24);
	h[2] = (unsigned char)(len >> 16);
	h[3] = (unsigned char)(len >> 8);
	h[4] = (unsigned char)len;
	CHECK_INT(buf_append(b, h, sizeof(h)), 0);
	CHECK_INT(buf_append(b, p, len), 0);
}

#define REC(b, t, s) rec(b, t, s, sizeof(s) - 1)

/* Builds a file from a description: one char per record (see below). */
static void
build(struct buf *b, const char *shape)
{
	buf_init(b, TEST_FILE_MAX);
	for (; *shape != '\0'; shape++) {
		switch (*shape) {
		case 'V':
			REC(b, QREC_MAGIC, "TERNQ1");
			break;
		case 'v':
			REC(b, QREC_MAGIC, "TERNQ2");
			break;
		case 'T':
			REC(b, QREC_TIME, "1700000000.000123");
			break;
		case 't':
			REC(b, QREC_TIME, "1700000000.12");
			break;
		case 'S':
			REC(b, QREC_SENDER, "a@b");
			break;
		case 's':
			REC(b, QREC_SENDER, "a\0b");
			break;
		case 'A':
			REC(b, QREC_ATTR, "helo=x");
			break;
		case 'a':
			REC(b, QREC_ATTR, "=x");
			break;
		case 'R':
			REC(b, QREC_RCPT,
			    "r@x\0\0"
			    "6");
			break;
		case 'D':
			REC(b, QREC_RCPT_DONE,
			    "r@x\0rfc822;r@x\0"
			    "0");
			break;
		case 'r':
			REC(b, QREC_RCPT,
			    "r@x\0"
			    "6");
			break;
		case 'n':
			REC(b, QREC_RCPT,
			    "r@x\0\0"
			    "16");
			break;
		case 'e':
			REC(b, QREC_RCPT,
			    "\0\0"
			    "0");
			break;
		case 'M':
			REC(b, QREC_CONTENT, "x\r\n");
			break;
		case 'E':
			REC(b, QREC_END, "");
			break;
		case 'x':
			REC(b, QREC_END, "x");
			break;
		case 'G':
			CHECK_INT(buf_putc(b, 'G'), 0);
			break;
		default:
			CHECK(0);
		}
	}
}

static void
test_shapes(void)
{
	static const struct {
		const char *shape;
		int want; /* 1 complete, 0 incomplete, -1 corrupt */
	} cases[] = {
	    {"VTSARDME", 1},
	    {"VTSME", 1},
	    {"VTSAAME", 1},
	    {"VTSRRME", 1},
	    {"", 0},
	    {"VTS", 0},
	    {"VTSARM", 0},
	    {"vTSME", -1},
	    {"VtSME", -1},
	    {"VTsME", -1},
	    {"VTSaME", -1},
	    {"VTSrME", -1},
	    {"VTSnME", -1},
	    {"VTSeME", -1},
	    {"VTSMx", -1},
	    {"TVSME", -1},
	    {"VSTME", -1},
	    {"VTME", -1},
	    {"VTSRAME", -1},
	    {"VTSE", -1},
	    {"VTSMME", -1},
	    {"VTSMEE", -1},
	    {"VTSMEG", -1},
	    {"VVTSME", -1},
	    {"G", -1},
	};
	struct buf b;
	size_t i;
	int got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&b, cases[i].shape);
		got = open_data(b.data, b.len);
		if (got != cases[i].want) {
			printf("# shape \"%s\": got %d want %d\n",
			    cases[i].shape, got, cases[i].want);
			CHECK(0);
		}
		buf_free(&b);
	}
}

static void
test_lengths(void)
{
	struct buf b;
	size_t sender_len_off = 2 * QFILE_HDR_LEN + 6 + 17;
	size_t content_off;

	/* A record length over the limit is corrupt even if cut. */
	build(&b, "VTSME");
	b.data[sender_len_off + 1] = 0x01; /* 3 -> 0x01000003 */
	CHECK_INT(open_data(b.data, b.len), -1);
	CHECK_INT(open_data(b.data, sender_len_off + 3), 0);
	CHECK_INT(open_data(b.data, sender_len_off + QFILE_HDR_LEN), -1);
	buf_free(&b);

	/* Content longer than the file: the file ends early. */
	build(&b, "VTSME");
	content_off = b.len - 2 * QFILE_HDR_LEN - 3;
	b.data[content_off + 4] = 9;
	CHECK_INT(open_data(b.data, b.len), 0);
	/* Shorter: END is looked for inside the content. */
	b.data[content_off + 4] = 1;
	CHECK_INT(open_data(b.data, b.len), -1);
	buf_free(&b);

	/* Payload length smaller than the real payload. */
	build(&b, "VTSME");
	b.data[QFILE_HDR_LEN - 1] = 5;
	CHECK_INT(open_data(b.data, b.len), -1);
	buf_free(&b);
}

static void
test_errors(void)
{
	struct qfile_writer w;
	struct qfile q;
	const char *error;
	char *big, *path, *tmp;
	struct stat st;

	/* An oversized envelope record fails at finish; free unlinks. */
	big = xmalloc(QFILE_RECORD_MAX + 2);
	memset(big, 'a', QFILE_RECORD_MAX + 1);
	big[QFILE_RECORD_MAX + 1] = '\0';
	CHECK_INT(qfile_create(&w, &error), 0);
	tmp = xstrdup(w.tmp_path);
	CHECK_INT(stat(tmp, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	qfile_put_sender(&w, big);
	qfile_content_begin(&w);
	CHECK_INT(qfile_finish(&w, &error), -1);
	CHECK(strstr(error, "too long") != NULL);
	CHECK_INT(qfile_commit(&w, QUEUE_INCOMING, &error), -1);
	qfile_writer_free(&w);
	CHECK_INT(stat(tmp, &st), -1);
	free(tmp);
	free(big);

	/* Missing file. */
	path = incoming("00000000000000");
	CHECK_INT(qfile_open(path, 0, (uid_t)-1, &q, &error), -1);
	CHECK(strstr(error, "No such file") != NULL);
	CHECK_INT(q.fd, -1);
	free(path);
}

/* Planted names: a symlink, a FIFO, a file of the wrong owner. */
static void
test_planted(void)
{
	struct qfile_writer w;
	struct qfile q;
	const char *error;
	char *good, *link, *fifo;

	CHECK_INT(qfile_create(&w, &error), 0);
	qfile_put_sender(&w, "s@example.org");
	qfile_put_rcpt(&w, "r@example.test", "", 0);
	qfile_content_begin(&w);
	qfile_content_write(&w, "x\r\n", 3);
	CHECK_INT(qfile_finish(&w, &error), 0);
	CHECK_INT(qfile_commit(&w, QUEUE_INCOMING, &error), 0);
	good = incoming(w.id);
	qfile_writer_free(&w);

	link = incoming("11111111111111");
	CHECK_INT(symlink(good, link), 0);
	CHECK_INT(qfile_open(link, 0, (uid_t)-1, &q, &error), -1);
	CHECK(strstr(error, "Too many levels of symbolic links") != NULL);
	CHECK_INT(q.fd, -1);

	/* Opening a FIFO without a writer must not wait for one. */
	fifo = incoming("22222222222222");
	CHECK_INT(mkfifo(fifo, 0600), 0);
	CHECK_INT(qfile_open(fifo, 0, (uid_t)-1, &q, &error), -1);
	CHECK(strstr(error, "not a regular file") != NULL);

	CHECK_INT(qfile_open(good, 0, geteuid() + 1, &q, &error), -1);
	CHECK(strstr(error, "owned by uid") != NULL);
	CHECK_INT(qfile_open(good, 0, geteuid(), &q, &error), 0);
	CHECK_INT(q.complete, 1);
	qfile_close(&q);
	free(good);
	free(link);
	free(fifo);
}

/* An open descriptor: a memfd holding a real file, and a pipe. */
static void
test_open_fd(void)
{
	static const char content[] = "Subject: fd\r\n\r\nbody\r\n";
	struct qfile_writer w;
	struct qfile q;
	const char *error;
	struct buf data;
	char *path;
	int fd, p[2];

	CHECK_INT(qfile_create(&w, &error), 0);
	qfile_put_sender(&w, "s@example.org");
	qfile_put_rcpt(&w, "r@example.test", "rfc822;r@example.test",
	    QRCPT_NOTIFY_FAILURE);
	qfile_content_begin(&w);
	qfile_content_write(&w, content, strlen(content));
	CHECK_INT(qfile_finish(&w, &error), 0);
	CHECK_INT(qfile_commit(&w, QUEUE_INCOMING, &error), 0);
	path = incoming(w.id);
	qfile_writer_free(&w);
	buf_init(&data, TEST_FILE_MAX);
	CHECK_INT(file_read_all(path, TEST_FILE_MAX, &data, &error), 0);

	fd = memfd_create("qfile_test", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, data.data, data.len), 0);
	CHECK_INT(qfile_open_fd(fd, "mem/ABCDEF", geteuid(), &q, &error), 0);
	CHECK_INT(q.complete, 1);
	CHECK_STR(q.id, "ABCDEF");
	CHECK_STR(q.sender, "s@example.org");
	CHECK_INT(q.nrcpt, 1);
	CHECK_INT(q.content_len, strlen(content));
	CHECK_INT(q.fd, fd);
	/* Written through the descriptor's own mode (memfds are O_RDWR). */
	CHECK_INT(qfile_mark(&q, 0, QREC_RCPT_DONE, &error), 0);
	qfile_close(&q);

	CHECK_INT(pipe(p), 0);
	CHECK_INT(qfile_open_fd(p[0], "pipe", (uid_t)-1, &q, &error), -1);
	CHECK(strstr(error, "pipe: not a regular file") != NULL);
	CHECK_INT(errno, EINVAL);
	CHECK_INT(q.fd, -1);
	/* The descriptor was taken over and closed. */
	CHECK_INT(fcntl(p[0], F_GETFD), -1);
	close(p[1]);
	buf_free(&data);
	free(path);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

static void
test_setup(void)
{
	setup();
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_round_trip),
    UNIT_CASE(test_marks), UNIT_CASE(test_truncation), UNIT_CASE(test_shapes),
    UNIT_CASE(test_lengths), UNIT_CASE(test_errors), UNIT_CASE(test_planted),
    UNIT_CASE(test_open_fd), UNIT_CASE(test_cleanup))
