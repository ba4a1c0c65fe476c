/* SPDX-License-Identifier: MIT */
/*
 * Reading a message file into a buffer the session reuses (the header
 * alone when that is all a command needs), and the folder cache's
 * MAILBOX_CACHE_HEADERS record: the RFC 2047-decoded values of the
 * fields SEARCH asks most (FROM, TO, CC, BCC, SUBJECT) and the Date:
 * value, so that a SEARCH on them reads no message file once the record
 * is there (FETCH ENVELOPE writes it too, as Dovecot fills its cache).
 *
 * The record: 'H', then per field occurrence in header order one octet
 * (enum imapd_hc), a 4-octet length (host order, as the cache's own
 * headers) and the value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "mail/mime.h"
#include "imapd.h"

#define HC_VERSION 'H'
/* A header read grows by this much until its blank line is in. */
#define READ_CHUNK (16 * 1024)

static const char *const hc_names[IMAPD_HC_COUNT] = {
    "From", "To", "Cc", "Bcc", "Subject", "Date"};

void
imapd_msgbuf_free(struct imapd_msgbuf *mb)
{
	free(mb->data);
	memset(mb, 0, sizeof(*mb));
}

static void
reserve(struct imapd_msgbuf *mb, size_t n)
{
	if (mb->cap >= n + 1)
		return;
	mb->cap = mb->cap == 0 ? READ_CHUNK * 2 : mb->cap;
	while (mb->cap < n + 1)
		mb->cap *= 2;
	mb->data = xrealloc(mb->data, mb->cap);
}

/* Reads [mb->len, want) of the file; the file may be shorter. */
static int
read_to(int fd, struct imapd_msgbuf *mb, size_t want)
{
	ssize_t n;

	reserve(mb, want);
	while (mb->len < want) {
		n = pread(
		    fd, mb->data + mb->len, want - mb->len, (off_t)mb->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		mb->len += (size_t)n;
	}
	mb->data[mb->len] = '\0';
	return 0;
}

int
imapd_msgbuf_read(int fd, struct imapd_msgbuf *mb, int header_only, size_t max)
{
	struct stat st;
	size_t size, want;

	mb->len = mb->hdr_len = 0;
	mb->complete = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	size = (size_t)st.st_size;
	/* a header is read up to max, whatever the file's size */
	if ((uint64_t)st.st_size > max) {
		if (!header_only)
			return -1;
		size = max;
	}
	if (!header_only) {
		if (read_to(fd, mb, size) < 0)
			return -1;
		mb->complete = 1;
		mb->hdr_len = imapd_header_end(mb->data, mb->len);
		return 0;
	}
	/* The header: chunks until its blank line is in (a chunk holds
	 * most headers whole). */
	for (want = READ_CHUNK;; want *= 2) {
		if (want > size)
			want = size;
		if (read_to(fd, mb, want) < 0)
			return -1;
		mb->hdr_len = imapd_header_end(mb->data, mb->len);
		if (mb->len < want || want >= size) {
			mb->complete = mb->len < want ||
			               (uint64_t)want >= (uint64_t)st.st_size;
			return 0;
		}
		if (mb->hdr_len < mb->len)
			return 0;
	}
}

int
imapd_hc_field(const char *name, size_t len)
{
	int i;

	for (i = 0; i < IMAPD_HC_DATE; i++) {
		if (strlen(hc_names[i]) == len &&
		    strncasecmp(hc_names[i], name, len) == 0)
			return i;
	}
	return -1;
}

static void
put_entry(struct buf *out, int field, const char *v, size_t len)
{
	uint32_t l = (uint32_t)len;

	imapd_bputc(out, (char)field);
	imapd_bappend(out, &l, sizeof(l));
	imapd_bappend(out, v, len);
}

void
imapd_hc_build(
    struct buf *out, struct buf *scratch, const char *hdr, size_t len)
{
	const char *name, *v;
	size_t pos = 0, nlen, vl, start;
	char *date;
	int f;

	buf_reset(out);
	imapd_bputc(out, HC_VERSION);
	while (
	    imapd_header_next(hdr, len, &pos, &name, &nlen, &v, &vl, &start)) {
		f = imapd_hc_field(name, nlen);
		if (f < 0)
			continue;
		/* decoded exactly as a SEARCH of the file decodes it */
		buf_reset(scratch);
		(void)mime_decode_words(scratch, v, vl);
		put_entry(out, f, buf_cstr(scratch), scratch->len);
	}
	date = mime_header_get(hdr, len, hc_names[IMAPD_HC_DATE]);
	if (date != NULL) {
		put_entry(out, IMAPD_HC_DATE, date, strlen(date));
		free(date);
	}
}

int
imapd_hc_next(const char *rec, size_t len, size_t *pos, int *field_r,
    const char **value_r, size_t *vlen_r)
{
	uint32_t l;
	size_t p = *pos;

	if (p == 0) {
		if (len == 0 || rec[0] != HC_VERSION)
			return 0;
		p = 1;
	}
	if (p + 1 + sizeof(l) > len)
		return 0;
	memcpy(&l, rec + p + 1, sizeof(l));
	if (l > len - p - 1 - sizeof(l))
		return 0;
	*field_r = (unsigned char)rec[p];
	*value_r = rec + p + 1 + sizeof(l);
	*vlen_r = l;
	*pos = p + 1 + sizeof(l) + l;
	return 1;
}

int
imapd_hc_valid(const char *rec, size_t len)
{
	return len > 0 && rec[0] == HC_VERSION;
}
