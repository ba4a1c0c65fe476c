/* SPDX-License-Identifier: MIT */
/*
 * Tests for the per-message status log: round trip, later records win,
 * recipient indexes out of range, sanitised text, a tail torn at every
 * byte (with records appended after it still found), garbage files,
 * and files that are not ours to read.
 */
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
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/status_log.h"
#include "unit.h"

#define TEST_FILE_MAX (1024 * 1024)

static char test_root[] = "/tmp/status_log_test.XXXXXX";

static void
test_setup(void)
{
	const char *error;
	char *conf, *queue, *d;

	if (mkdtemp(test_root) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	conf = xasprintf("%s/conf", test_root);
	queue = xasprintf("%s/queue", test_root);
	CHECK_INT(mkdir(conf, 0700), 0);
	config_override("queue_directory", queue);
	if (config_load(conf, &error) < 0) {
		printf("# config_load: %s\n", error);
		exit(1);
	}
	d = queue_path(QUEUE_STATUS, NULL);
	CHECK_INT(
	    file_ensure_dir(d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error), 0);
	free(d);
	free(conf);
	free(queue);
}

static const char *
new_id(void)
{
	static char id[QUEUE_ID_SIZE];

	queue_id_new(id);
	return id;
}

static struct status_rec
rec(int rcpt, const char *action, const char *status, const char *diag)
{
	struct status_rec r;

	memset(&r, 0, sizeof(r));
	r.rcpt = rcpt;
	r.action = action;
	r.status = status;
	r.diag_type = STATUS_DIAG_TERN;
	r.diag = diag;
	r.mta = "";
	r.when = 1700000000;
	return r;
}

static void
read_file(const char *id, struct buf *out)
{
	const char *error;
	char *path = queue_path(QUEUE_STATUS, id);

	buf_reset(out);
	CHECK_INT(file_read_all(path, TEST_FILE_MAX, out, &error), 0);
	free(path);
}

static void
write_file(const char *id, const void *data, size_t len)
{
	char *path = queue_path(QUEUE_STATUS, id);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(file_write_all(fd, data, len), 0);
	close(fd);
	free(path);
}

static void
test_round_trip(void)
{
	const char *id = new_id(), *error;
	struct status_rec r[2];
	const struct status_rec *g;
	struct status_log *l;
	struct stat st;
	char *path;

	r[0] = rec(0, STATUS_ACTION_FAILED, "5.1.1", "user unknown");
	r[1] = rec(1, STATUS_ACTION_DELAYED, "4.4.1", "");
	r[1].diag_type = STATUS_DIAG_SMTP;
	r[1].diag = "451 4.4.1 <b@example.net>: try later";
	r[1].mta = "mx.example.net";
	r[1].when = 1700000123;
	CHECK_INT(status_log_append(id, r, 2, &error), 0);
	path = queue_path(QUEUE_STATUS, id);
	CHECK_INT(lstat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0600);
	free(path);

	l = status_log_read(id, 2, &error);
	CHECK(l != NULL);
	g = status_log_get(l, 0);
	CHECK(g != NULL);
	if (g != NULL) {
		CHECK_INT(g->rcpt, 0);
		CHECK_STR(g->action, "failed");
		CHECK_STR(g->status, "5.1.1");
		CHECK_STR(g->diag_type, "x-tern");
		CHECK_STR(g->diag, "user unknown");
		CHECK_STR(g->mta, "");
		CHECK_INT(g->when, 1700000000);
	}
	g = status_log_get(l, 1);
	CHECK(g != NULL);
	if (g != NULL) {
		CHECK_STR(g->action, "delayed");
		CHECK_STR(g->diag_type, "smtp");
		CHECK_STR(g->diag, "451 4.4.1 <b@example.net>: try later");
		CHECK_STR(g->mta, "mx.example.net");
		CHECK_INT(g->when, 1700000123);
	}
	CHECK_INT(status_log_skipped(l), 0);
	status_log_free(&l);
	CHECK(l == NULL);
	status_log_free(&l);

	CHECK_INT(status_log_remove(id), 0);
	CHECK_INT(status_log_remove(id), 0);
	/* A missing file is an empty log. */
	l = status_log_read(id, 2, &error);
	CHECK(l != NULL);
	CHECK(status_log_get(l, 0) == NULL);
	status_log_free(&l);
	CHECK_INT(status_log_append(id, r, 0, &error), 0);
}

static void
test_later_wins(void)
{
	const char *id = new_id(), *error;
	struct status_rec r[3];
	struct status_log *l;
	const struct status_rec *g;

	r[0] = rec(0, STATUS_ACTION_DELAYED, "4.3.0", "first");
	r[1] = rec(1, STATUS_ACTION_DELAYED, "4.3.0", "one");
	r[2] = rec(0, STATUS_ACTION_DELAYED, "4.3.0", "second");
	CHECK_INT(status_log_append(id, r, 3, &error), 0);
	r[0] = rec(0, STATUS_ACTION_FAILED, "5.1.1", "third");
	CHECK_INT(status_log_append(id, r, 1, &error), 0);
	l = status_log_read(id, 2, &error);
	CHECK(l != NULL);
	g = status_log_get(l, 0);
	CHECK(g != NULL && strcmp(g->diag, "third") == 0);
	CHECK(g != NULL && strcmp(g->action, "failed") == 0);
	g = status_log_get(l, 1);
	CHECK(g != NULL && strcmp(g->diag, "one") == 0);
	status_log_free(&l);
	CHECK_INT(status_log_remove(id), 0);
}

static void
test_range(void)
{
	const char *id = new_id(), *error;
	struct status_rec r[3];
	struct status_log *l;

	r[0] = rec(0, STATUS_ACTION_DELIVERED, "2.0.0", "ok");
	r[1] = rec(5, STATUS_ACTION_FAILED, "5.0.0", "five");
	r[2] = rec(2, STATUS_ACTION_RELAYED, "2.0.0", "two");
	CHECK_INT(status_log_append(id, r, 3, &error), 0);
	l = status_log_read(id, 3, &error);
	CHECK(l != NULL);
	CHECK(status_log_get(l, 0) != NULL);
	CHECK(status_log_get(l, 1) == NULL);
	CHECK(status_log_get(l, 2) != NULL);
	CHECK(status_log_get(l, 3) == NULL);
	CHECK(status_log_get(l, 5) == NULL);
	CHECK(status_log_get(l, -1) == NULL);
	/* Ignored, not garbage. */
	CHECK_INT(status_log_skipped(l), 0);
	status_log_free(&l);
	/* No recipients at all. */
	l = status_log_read(id, 0, &error);
	CHECK(l != NULL);
	CHECK(status_log_get(l, 0) == NULL);
	status_log_free(&l);
	CHECK(status_log_get(NULL, 0) == NULL);
	CHECK_INT(status_log_remove(id), 0);
}

static void
test_sanitize(void)
{
	const char *id = new_id(), *error;
	struct status_rec r;
	struct status_log *l;
	const struct status_rec *g;
	char *longer;

	r = rec(0, STATUS_ACTION_FAILED, "5.7.1",
	    "550 bad\r\nX-Forged: yes\t\x01 caf\xc3\xa9 \xff\xfeSL \xc3");
	r.mta = "mx\n.example";
	CHECK_INT(status_log_append(id, &r, 1, &error), 0);
	longer = xmalloc(STATUS_DIAG_MAX * 2);
	memset(longer, 'x', STATUS_DIAG_MAX * 2 - 1);
	longer[STATUS_DIAG_MAX * 2 - 1] = '\0';
	/* A two-byte character straddling the cut is dropped whole. */
	memcpy(longer + STATUS_DIAG_MAX - 1, "\xc3\xa9", 2);
	r = rec(1, STATUS_ACTION_FAILED, "5.0.0", longer);
	r.diag = longer;
	r.diag_type = STATUS_DIAG_SMTP;
	r.mta = NULL;
	CHECK_INT(status_log_append(id, &r, 1, &error), 0);
	l = status_log_read(id, 2, &error);
	CHECK(l != NULL);
	g = status_log_get(l, 0);
	CHECK(g != NULL);
	if (g != NULL) {
		CHECK_STR(
		    g->diag, "550 bad  X-Forged: yes   caf\xc3\xa9 ??SL ?");
		CHECK_STR(g->mta, "mx .example");
	}
	g = status_log_get(l, 1);
	CHECK(g != NULL);
	if (g != NULL) {
		CHECK_INT(strlen(g->diag), STATUS_DIAG_MAX - 1);
		CHECK_STR(g->mta, "");
	}
	status_log_free(&l);
	free(longer);
	CHECK_INT(status_log_remove(id), 0);
}

/*
 * A crash mid-append leaves any prefix of a record. Cut the second of
 * three records at every byte: the first stays, the cut one is skipped,
 * and a record appended afterwards is found again.
 */
static void
test_torn(void)
{
	const char *id = new_id(), *error;
	struct status_rec r[3];
	struct status_log *l;
	const struct status_rec *g;
	struct buf whole, one;
	size_t first, second, k;
	int bad = 0;

	buf_init(&whole, TEST_FILE_MAX);
	buf_init(&one, TEST_FILE_MAX);
	r[0] = rec(0, STATUS_ACTION_DELAYED, "4.3.0", "zero");
	r[1] = rec(1, STATUS_ACTION_FAILED, "5.1.1", "one");
	r[2] = rec(2, STATUS_ACTION_FAILED, "5.1.2", "two");
	CHECK_INT(status_log_append(id, &r[0], 1, &error), 0);
	read_file(id, &one);
	first = one.len;
	CHECK_INT(status_log_append(id, &r[1], 1, &error), 0);
	read_file(id, &whole);
	second = whole.len - first;
	for (k = 0; k < second; k++) {
		write_file(id, whole.data, first + k);
		l = status_log_read(id, 3, &error);
		if (l == NULL) {
			bad++;
			continue;
		}
		g = status_log_get(l, 0);
		if (g == NULL || strcmp(g->diag, "zero") != 0 ||
		    status_log_get(l, 1) != NULL ||
		    status_log_skipped(l) != (long long)k)
			bad++;
		status_log_free(&l);
		/* Appends after the torn bytes are still read. */
		CHECK_INT(status_log_append(id, &r[2], 1, &error), 0);
		l = status_log_read(id, 3, &error);
		if (l == NULL) {
			bad++;
			continue;
		}
		g = status_log_get(l, 2);
		if (g == NULL || strcmp(g->diag, "two") != 0 ||
		    status_log_get(l, 0) == NULL ||
		    status_log_get(l, 1) != NULL)
			bad++;
		status_log_free(&l);
	}
	CHECK_INT(bad, 0);
	buf_free(&whole);
	buf_free(&one);
	CHECK_INT(status_log_remove(id), 0);
}

static void
test_garbage(void)
{
	static const char text[] = "this is not a status log\n";
	/* Magic, then a frame length past the maximum, then a too short
	 * frame with a wrong CRC. */
	static const char fake[] = "\xff\xfeSL\x7f\xff\xff\xff"
	                           "\xff\xfeSL\0\0\0\1x\0\0\0\0";
	const char *id = new_id(), *error;
	struct status_rec r;
	struct status_log *l;
	struct buf good, mix;
	unsigned char noise[4096];
	size_t i;

	write_file(id, text, sizeof(text) - 1);
	l = status_log_read(id, 4, &error);
	CHECK(l != NULL);
	CHECK(status_log_get(l, 0) == NULL);
	CHECK_INT(status_log_skipped(l), sizeof(text) - 1);
	status_log_free(&l);

	/* Noise full of magic bytes around one good record. */
	for (i = 0; i < sizeof(noise); i++)
		noise[i] = i % 3 == 0   ? 0xff
		           : i % 3 == 1 ? 0xfe
		                        : (i * 31) & 0xff;
	r = rec(3, STATUS_ACTION_FAILED, "5.1.1", "good");
	CHECK_INT(status_log_append(id, &r, 1, &error), 0);
	buf_init(&good, TEST_FILE_MAX);
	buf_init(&mix, TEST_FILE_MAX);
	read_file(id, &good);
	CHECK(good.len > sizeof(text) - 1);
	CHECK_INT(buf_append(&mix, noise, sizeof(noise)), 0);
	CHECK_INT(buf_append(&mix, fake, sizeof(fake) - 1), 0);
	CHECK_INT(buf_append(&mix, good.data + sizeof(text) - 1,
	              good.len - (sizeof(text) - 1)),
	    0);
	CHECK_INT(buf_append(&mix, noise, sizeof(noise)), 0);
	write_file(id, mix.data, mix.len);
	l = status_log_read(id, 4, &error);
	CHECK(l != NULL);
	CHECK(status_log_get(l, 3) != NULL);
	CHECK_INT(status_log_skipped(l), 2 * sizeof(noise) + sizeof(fake) - 1);
	status_log_free(&l);
	buf_free(&good);
	buf_free(&mix);
	CHECK_INT(status_log_remove(id), 0);
}

static void
test_not_ours(void)
{
	const char *id = new_id(), *error;
	struct status_rec r = rec(0, STATUS_ACTION_FAILED, "5.1.1", "x");
	struct status_log *l;
	char *path = queue_path(QUEUE_STATUS, id), *other;
	int fd;

	other = xasprintf("%s/elsewhere", test_root);
	fd = open(other, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	/* A symbolic link is neither read nor written through. */
	CHECK_INT(symlink(other, path), 0);
	CHECK(status_log_read(id, 1, &error) == NULL);
	CHECK_INT(status_log_append(id, &r, 1, &error), -1);
	CHECK(strstr(error, "open") != NULL);
	CHECK_INT(unlink(path), 0);
	/* Nor a hard link to someone else's file. */
	CHECK_INT(link(other, path), 0);
	CHECK_INT(status_log_append(id, &r, 1, &error), -1);
	CHECK(strstr(error, "one link") != NULL);
	CHECK_INT(unlink(path), 0);
	/* Nor a directory. */
	CHECK_INT(mkdir(path, 0700), 0);
	CHECK(status_log_read(id, 1, &error) == NULL);
	CHECK_INT(rmdir(path), 0);
	/* Too large to read (sparse). */
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_INT(ftruncate(fd, STATUS_LOG_FILE_MAX + 1), 0);
	close(fd);
	l = status_log_read(id, 1, &error);
	CHECK(l == NULL);
	if (l == NULL)
		CHECK(strstr(error, "larger than") != NULL);
	status_log_free(&l);
	CHECK_INT(status_log_remove(id), 0);
	free(path);
	free(other);
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_round_trip),
    UNIT_CASE(test_later_wins), UNIT_CASE(test_range), UNIT_CASE(test_sanitize),
    UNIT_CASE(test_torn), UNIT_CASE(test_garbage), UNIT_CASE(test_not_ours),
    UNIT_CASE(test_cleanup))
