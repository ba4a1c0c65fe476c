/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the strict queue-file reader (lib/mail/qfile.c)
 * through qfile_open_fd on a memfd, so no file is written to disk per
 * input (a memfd is a regular file: the reader's checks pass). Checked
 * against the contract in qfile.h:
 * - what is parsed lies in the file (status bytes at their offsets, a
 *   complete file ends with the content and END);
 * - every cut of a file that opens, at any byte, opens too, incomplete,
 *   with a prefix of its recipients;
 * - qfile_mark rewrites exactly one status byte, and the file opens
 *   again with only that recipient changed;
 * - a complete file written back record by record opens to the same.
 *
 * Input: the file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "base/file.h"
#include "mail/qfile.h"
#include "fuzz_util.h"

#define FUZZ_QFILE_NAME "fuzz/0123456789ABCD"
#define FUZZ_QFILE_ID   "0123456789ABCD"
/* Cuts tried per input: every byte of small files, else evenly spread
 * ones plus the record boundaries of the first recipients. */
#define CUTS_ALL        64
#define CUTS_SPREAD     24
#define CUTS_RCPTS      16
#define USEC_PER_SEC    1000000L
#define NOTIFY_MASK     0xf
#define WRITE_BUF_MAX   (16 * 1024 * 1024)

static int memfd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz_qfile", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

static void
load(const void *data, size_t len)
{
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(file_pwrite_all(memfd, data, len, 0) == 0);
}

/* The memfd as a queue file (the descriptor is a dup: qfile owns it). */
static int
open_mem(struct qfile *q, const char **error_r)
{
	int fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0);
	return qfile_open_fd(fd, FUZZ_QFILE_NAME, (uid_t)-1, q, error_r);
}

static void
check_parsed(const struct qfile *q, const unsigned char *data, size_t len)
{
	const unsigned char *hdr;
	int i;

	FUZZ_CHECK(q->fd >= 0);
	FUZZ_CHECK(strcmp(q->id, FUZZ_QFILE_ID) == 0);
	FUZZ_CHECK(q->sender != NULL);
	FUZZ_CHECK(q->arrival_sec >= 0);
	FUZZ_CHECK(q->arrival_usec >= 0 && q->arrival_usec < USEC_PER_SEC);
	for (i = 0; i < q->nattr; i++) {
		FUZZ_CHECK(*q->attr_names[i] != '\0');
		FUZZ_CHECK(strchr(q->attr_names[i], '=') == NULL);
		FUZZ_CHECK(qfile_attr(q, q->attr_names[i]) != NULL);
	}
	for (i = 0; i < q->nrcpt; i++) {
		FUZZ_CHECK(*q->rcpts[i].addr != '\0');
		FUZZ_CHECK(q->rcpts[i].orcpt != NULL);
		FUZZ_CHECK(q->rcpts[i].notify <= NOTIFY_MASK);
		FUZZ_CHECK(q->rcpts[i].status_off >= 0 &&
		           (size_t)q->rcpts[i].status_off < len);
		FUZZ_CHECK(data[q->rcpts[i].status_off] == q->rcpts[i].status);
		FUZZ_CHECK(q->rcpts[i].status == QREC_RCPT ||
		           q->rcpts[i].status == QREC_RCPT_DONE ||
		           q->rcpts[i].status == QREC_RCPT_FAILED);
	}
	FUZZ_CHECK(qfile_pending(q) <= q->nrcpt);
	if (q->content_off > 0) {
		FUZZ_CHECK(q->content_off >= QFILE_HDR_LEN &&
		           (size_t)q->content_off <= len);
		hdr = data + q->content_off - QFILE_HDR_LEN;
		FUZZ_CHECK(hdr[0] == QREC_CONTENT);
		FUZZ_CHECK(bytes_get_be32(hdr + 1) == q->content_len);
	}
	if (q->complete)
		FUZZ_CHECK(
		    q->content_off > 0 &&
		    (size_t)q->content_off + q->content_len + QFILE_HDR_LEN ==
		        len);
}

static int
same_rcpt(const struct qrcpt *a, const struct qrcpt *b)
{
	return strcmp(a->addr, b->addr) == 0 &&
	       strcmp(a->orcpt, b->orcpt) == 0 && a->notify == b->notify &&
	       a->status == b->status;
}

/* The same envelope and content length (offsets aside). */
static void
check_same(const struct qfile *a, const struct qfile *b)
{
	int i;

	FUZZ_CHECK(a->complete == b->complete);
	FUZZ_CHECK(a->arrival_sec == b->arrival_sec &&
	           a->arrival_usec == b->arrival_usec);
	FUZZ_CHECK(strcmp(a->sender, b->sender) == 0);
	FUZZ_CHECK(a->nattr == b->nattr && a->nrcpt == b->nrcpt);
	for (i = 0; i < a->nattr; i++) {
		FUZZ_CHECK(strcmp(a->attr_names[i], b->attr_names[i]) == 0);
		FUZZ_CHECK(strcmp(a->attr_values[i], b->attr_values[i]) == 0);
	}
	for (i = 0; i < a->nrcpt; i++)
		FUZZ_CHECK(same_rcpt(&a->rcpts[i], &b->rcpts[i]));
	FUZZ_CHECK(a->content_len == b->content_len);
}

/* A cut file opens, incomplete, with a prefix of what the whole had. */
static void
check_cut(const struct qfile *whole, size_t cut)
{
	struct qfile q;
	const char *error;
	int i;

	FUZZ_CHECK(ftruncate(memfd, (off_t)cut) == 0);
	FUZZ_CHECK(open_mem(&q, &error) == 0);
	FUZZ_CHECK(!q.complete);
	FUZZ_CHECK(q.nattr <= whole->nattr && q.nrcpt <= whole->nrcpt);
	FUZZ_CHECK(*q.sender == '\0' || strcmp(q.sender, whole->sender) == 0);
	for (i = 0; i < q.nattr; i++) {
		FUZZ_CHECK(strcmp(q.attr_names[i], whole->attr_names[i]) == 0);
		FUZZ_CHECK(
		    strcmp(q.attr_values[i], whole->attr_values[i]) == 0);
	}
	for (i = 0; i < q.nrcpt; i++)
		FUZZ_CHECK(same_rcpt(&q.rcpts[i], &whole->rcpts[i]));
	qfile_close(&q);
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void
check_cuts(const struct qfile *whole, size_t len)
{
	size_t cuts[CUTS_ALL + CUTS_SPREAD + CUTS_RCPTS + 2], n = 0, i;
	int r;

	if (len <= CUTS_ALL) {
		for (i = 0; i < len; i++)
			cuts[n++] = i;
	} else {
		for (i = 0; i < CUTS_SPREAD; i++)
			cuts[n++] = len * i / CUTS_SPREAD;
		for (r = 0; r < whole->nrcpt && r < CUTS_RCPTS; r++)
			cuts[n++] = (size_t)whole->rcpts[r].status_off;
		if (whole->content_off > 0)
			cuts[n++] = (size_t)whole->content_off;
		cuts[n++] = len - 1;
	}
	/* Longest first: each cut only shrinks the memfd. */
	qsort(cuts, n, sizeof(cuts[0]), cmp_size);
	for (i = 0; i < n; i++)
		check_cut(whole, cuts[i]);
}

/* qfile_mark changes one byte, and only that recipient's status. */
static void
check_mark(struct qfile *q, const unsigned char *data, size_t len)
{
	static const char next[] = {
	    QREC_RCPT_DONE, QREC_RCPT_FAILED, QREC_RCPT};
	struct qfile again;
	const char *error;
	unsigned char byte;
	char old, status;
	int i;

	i = (int)(data[len - 1] % (unsigned)q->nrcpt);
	old = q->rcpts[i].status;
	status = old == QREC_RCPT        ? next[0]
	         : old == QREC_RCPT_DONE ? next[1]
	                                 : next[2];
	FUZZ_CHECK(qfile_mark(q, i, status, &error) == 0);
	FUZZ_CHECK(q->rcpts[i].status == status);
	FUZZ_CHECK(
	    file_pread_all(memfd, &byte, 1, q->rcpts[i].status_off) == 0);
	FUZZ_CHECK(byte == (unsigned char)status);
	FUZZ_CHECK(open_mem(&again, &error) == 0);
	check_same(q, &again);
	qfile_close(&again);
	FUZZ_CHECK(qfile_mark(q, i, old, &error) == 0);
}

static void
put_record(struct buf *b, char type, const void *p, size_t n)
{
	unsigned char hdr[QFILE_HDR_LEN];

	hdr[0] = (unsigned char)type;
	bytes_put_be32(hdr + 1, (uint32_t)n);
	FUZZ_CHECK(buf_append(b, hdr, sizeof(hdr)) == 0);
	FUZZ_CHECK(buf_append(b, p, n) == 0);
}

/* A complete file written back canonically opens to the same. */
static void
check_rewrite(const struct qfile *q, const unsigned char *data)
{
	struct qfile again;
	const char *error;
	struct buf b, rec;
	int i;

	buf_init(&b, WRITE_BUF_MAX);
	buf_init(&rec, WRITE_BUF_MAX);
	put_record(&b, QREC_MAGIC, QFILE_MAGIC, strlen(QFILE_MAGIC));
	FUZZ_CHECK(buf_printf(&rec, "%lld.%06ld", q->arrival_sec,
	               q->arrival_usec) == 0);
	put_record(&b, QREC_TIME, rec.data, rec.len);
	put_record(&b, QREC_SENDER, q->sender, strlen(q->sender));
	for (i = 0; i < q->nattr; i++) {
		buf_reset(&rec);
		FUZZ_CHECK(buf_printf(&rec, "%s=%s", q->attr_names[i],
		               q->attr_values[i]) == 0);
		put_record(&b, QREC_ATTR, rec.data, rec.len);
	}
	for (i = 0; i < q->nrcpt; i++) {
		buf_reset(&rec);
		FUZZ_CHECK(buf_append(&rec, q->rcpts[i].addr,
		               strlen(q->rcpts[i].addr) + 1) == 0);
		FUZZ_CHECK(buf_append(&rec, q->rcpts[i].orcpt,
		               strlen(q->rcpts[i].orcpt) + 1) == 0);
		FUZZ_CHECK(buf_printf(&rec, "%u", q->rcpts[i].notify) == 0);
		put_record(&b, q->rcpts[i].status, rec.data, rec.len);
	}
	put_record(
	    &b, QREC_CONTENT, data + q->content_off, (size_t)q->content_len);
	put_record(&b, QREC_END, "", 0);
	load(b.data, b.len);
	FUZZ_CHECK(open_mem(&again, &error) == 0);
	check_same(q, &again);
	qfile_close(&again);
	buf_free(&rec);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qfile q;
	const char *error = NULL;

	load(data, size);
	if (open_mem(&q, &error) < 0) {
		FUZZ_CHECK(error != NULL && q.fd == -1);
		return 0;
	}
	check_parsed(&q, data, size);
	if (q.nrcpt > 0)
		check_mark(&q, data, size);
	check_cuts(&q, size);
	if (q.complete)
		check_rewrite(&q, data);
	qfile_close(&q);
	return 0;
}
