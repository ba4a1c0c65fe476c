/* SPDX-License-Identifier: MIT */
/*
 * sendmail's default mode: one message from stdin to terndrop. The
 * header section is read first, whole and bounded by header_size_limit
 * (RFC 5322 2.2: fields, continuation lines start with white space), so
 * that -t can take the recipients from To:, Cc: and Bcc: - or from
 * Resent-To:, Resent-Cc: and Resent-Bcc: alone when the message has any
 * (RFC 5322 3.6.6) - before terndrop is started with the envelope on its
 * command line. Bcc: and Resent-Bcc: never leave this program, as with
 * Postfix's local submission. Then the body is streamed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"
#include "sendmail.h"

/* A mbox "From " line that some callers leave in front. */
#define SM_FROM_LINE "From "

/* One header field: [start, start + len) of the header buffer, LF
 * between its physical lines. */
struct sm_field {
	size_t start, len;
};

struct sm_headers {
	struct buf text;
	struct sm_field *f;
	size_t n, cap;
};

/* The length of a field name followed by ':', or 0 (RFC 5322 2.2:
 * printable ASCII but ':'; Postfix also allows spaces before ':'). */
static size_t
sm_field_name(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (line[i] == ':')
			return i;
		if ((unsigned char)line[i] <= ' ' || (unsigned char)line[i] > '~')
			break;
	}
	return 0;
}

static int
sm_field_is(const struct sm_headers *h, const struct sm_field *f,
    const char *name)
{
	size_t n = strlen(name);

	return f->len > n && h->text.data[f->start + n] == ':' &&
	    str_prefix_ci(h->text.data + f->start, n, name);
}

static void
sm_header_append(struct sm_headers *h, const char *line, size_t len,
    int continuation)
{
	if ((continuation && buf_putc(&h->text, '\n') < 0) ||
	    buf_append(&h->text, line, len) < 0)
		sm_die(EX_DATAERR,
		    "message header too big (header_size_limit is %lld bytes)",
		    var_header_size_limit);
	if (continuation) {
		h->f[h->n - 1].len = h->text.len - h->f[h->n - 1].start;
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap == 0 ? 16 : h->cap * 2;
		h->f = xrealloc(h->f, h->cap * sizeof(*h->f));
	}
	h->f[h->n].start = h->text.len - len;
	h->f[h->n].len = len;
	h->n++;
}

enum sm_hdr_end {
	SM_HDR_EOF,	/* input ended (or a dot line did) */
	SM_HDR_BLANK,	/* an empty line ended the headers */
	SM_HDR_BODY,	/* a line that is no header: the body's first */
};

/* Reads the header section into h; the first body line into line. */
static enum sm_hdr_end
sm_read_headers(struct sm_in *in, struct sm_headers *h, enum sm_dot dot_mode,
    char *line, size_t max, size_t *len_r)
{
	int r, first = 1;
	size_t len;

	for (;;) {
		r = sm_in_line(in, line, max, &len);
		if (r == 0)
			return SM_HDR_EOF;
		if (r < 0)
			sm_die(EX_DATAERR, "message header too big "
			    "(header_size_limit is %lld bytes)",
			    var_header_size_limit);
		if (dot_mode == SM_DOT_END && len == 1 && line[0] == '.')
			return SM_HDR_EOF;
		if (first && len >= strlen(SM_FROM_LINE) &&
		    strncmp(line + strspn(line, ">"), SM_FROM_LINE,
		        strlen(SM_FROM_LINE)) == 0)
			continue;
		first = 0;
		if (len == 0)
			return SM_HDR_BLANK;
		if ((line[0] == ' ' || line[0] == '\t') && h->n > 0)
			sm_header_append(h, line, len, 1);
		else if (sm_field_name(line, len) > 0)
			sm_header_append(h, line, len, 0);
		else {
			*len_r = len;
			return SM_HDR_BODY;
		}
	}
}

/* -t: the recipients of the headers (Resent- ones win when present). */
static void
sm_extract(struct sm_env *e, const struct sm_headers *h)
{
	static const char *const plain[] = {"to", "cc", "bcc"};
	static const char *const resent[] = {
	    "resent-to", "resent-cc", "resent-bcc"};
	const char *const *names = plain;
	const struct sm_field *f;
	size_t i, k, n;

	for (i = 0; i < h->n; i++)
		if (str_prefix_ci(h->text.data + h->f[i].start, h->f[i].len,
		        "resent-"))
			for (k = 0; k < 3; k++)
				if (sm_field_is(h, &h->f[i], resent[k]))
					names = resent;
	for (i = 0; i < h->n; i++) {
		f = &h->f[i];
		for (k = 0; k < 3; k++) {
			if (!sm_field_is(h, f, names[k]))
				continue;
			n = strlen(names[k]) + 1;
			sm_env_add_rcpts(
			    e, h->text.data + f->start + n, f->len - n);
		}
	}
}

/* Each header line, Bcc: and Resent-Bcc: left out. */
static void
sm_write_headers(struct sm_drop *d, const struct sm_headers *h)
{
	const struct sm_field *f;
	const char *p, *end, *nl;
	size_t i;

	for (i = 0; i < h->n; i++) {
		f = &h->f[i];
		if (sm_field_is(h, f, "bcc") || sm_field_is(h, f, "resent-bcc"))
			continue;
		p = h->text.data + f->start;
		end = p + f->len;
		while (p <= end) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			sm_out_line(d, p, (size_t)(nl - p), 1);
			p = nl + 1;
		}
	}
}

int
sm_enqueue(struct sm_env *e, enum sm_dot dot_mode, int extract, int verbose)
{
	static struct sm_in in;
	struct sm_headers h;
	struct sm_drop d;
	enum sm_hdr_end end;
	size_t max = (size_t)var_header_size_limit, len = 0;
	char *line = xmalloc(max + 2), id[64];
	int status;

	memset(&h, 0, sizeof(h));
	buf_init(&h.text, max);
	end = sm_read_headers(&in, &h, dot_mode, line, max, &len);
	if (extract)
		sm_extract(e, &h);
	if (e->nrcpt == 0)
		sm_die(EX_USAGE, extract ? "no recipient addresses found in "
		                           "the message header"
		                         : "no recipients specified");
	sm_drop_start(&d, e);
	sm_write_headers(&d, &h);
	if (end == SM_HDR_BLANK)
		sm_drop_write(&d, "\r\n", 2);
	else if (end == SM_HDR_BODY)
		sm_out_line(&d, line, len, 0);
	if (end != SM_HDR_EOF)
		(void)sm_copy_lines(&in, &d,
		    dot_mode == SM_DOT_END ? SM_DOT_END : SM_DOT_NONE, 0);
	free(line);
	buf_free(&h.text);
	free(h.f);
	if (d.too_big)
		sm_die(EX_DATAERR,
		    "message file too big (message_size_limit is %lld bytes)",
		    var_message_size_limit);
	status = sm_drop_finish(&d, id, sizeof(id));
	/* terndrop said why on stderr. */
	if (status == EX_OK && verbose)
		fprintf(stderr, "%s: queued as %s\n", SENDMAIL_PROGNAME, id);
	return status;
}
