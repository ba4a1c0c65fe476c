/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the DATA content parser of cleanup
 * (cleanup_data_parse, RFC 5321 4.5.2): dot-unstuffing, the end only at
 * CRLF.CRLF, bare CR and LF flagged. The bytes a socket delivers arrive
 * in any split, so the input is fed whole, one byte at a time and in
 * irregular pieces, and each must give the same content, the same end
 * and the same bare flag as a model that reads the whole input line by
 * line. When the input holds no end marker, it is completed with CRLF
 * "." CRLF as a client would. The content, dot-stuffed again and ended,
 * parses back to itself.
 *
 * Input: the bytes after the 354 reply.
 */
#include <string.h>

#include "base/buf.h"
#include "mail/cleanup.h"
#include "fuzz_util.h"

#define END_MARKER "\r\n.\r\n"
#define END_LEN    (sizeof(END_MARKER) - 1)
/* Stuffing adds at most one dot per line: twice the input is plenty. */
#define OUT_MAX(n) (2 * (n) + END_LEN + 1)

struct result {
	struct buf out;
	size_t consumed;
	int done, bare;
};

static void
emit(void *ctx, const char *data, size_t len)
{
	struct buf *out = ctx;

	FUZZ_CHECK(len > 0);
	FUZZ_CHECK(buf_append(out, data, len) == 0);
}

/* Feeds in[0..len) in pieces (step 0: random sizes), then the end marker
 * if the input did not end the content. */
static void
run(const char *in, size_t len, size_t step, struct fuzz_rng *rng,
    struct result *res)
{
	struct cleanup_data p;
	size_t used = 0, n, k;

	buf_init(&res->out, OUT_MAX(len));
	cleanup_data_init(&p);
	while (used < len && p.state != CLEANUP_DATA_END) {
		n = step != 0 ? step : fuzz_piece(rng, len);
		if (n > len - used)
			n = len - used;
		k = cleanup_data_parse(&p, in + used, n, emit, &res->out);
		FUZZ_CHECK(k <= n);
		FUZZ_CHECK(k == n || p.state == CLEANUP_DATA_END);
		used += k;
	}
	res->consumed = used;
	res->done = p.state == CLEANUP_DATA_END;
	if (!res->done) {
		k = cleanup_data_parse(
		    &p, END_MARKER, END_LEN, emit, &res->out);
		FUZZ_CHECK(p.state == CLEANUP_DATA_END);
		FUZZ_CHECK(k > 0 && k <= END_LEN);
	}
	res->bare = p.bare;
}

/*
 * The model: lines end at CRLF only; a line "." ends the content, a
 * leading dot is dropped; any CR or LF outside a CRLF pair is bare.
 * in must hold an end marker. Returns the bytes consumed.
 */
static size_t
model(const char *in, size_t len, struct buf *out, int *bare_r)
{
	size_t i = 0, end, j;

	*bare_r = 0;
	for (;;) {
		for (end = i; end + 1 < len; end++)
			if (in[end] == '\r' && in[end + 1] == '\n')
				break;
		FUZZ_CHECK(end + 1 < len);
		if (end == i + 1 && in[i] == '.')
			return end + 2;
		j = i < end && in[i] == '.' ? i + 1 : i;
		FUZZ_CHECK(buf_append(out, in + j, end + 2 - j) == 0);
		for (; j < end; j++)
			if (in[j] == '\r' || in[j] == '\n')
				*bare_r = 1;
		i = end + 2;
	}
}

/* Dot-stuffs content that ends in CRLF (or is empty) and ends it. */
static void
stuff(const char *c, size_t len, struct buf *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (c[i] == '.' && (i == 0 || (i >= 2 && c[i - 2] == '\r' &&
		                                  c[i - 1] == '\n')))
			FUZZ_CHECK(buf_putc(out, '.') == 0);
		FUZZ_CHECK(buf_putc(out, c[i]) == 0);
	}
	FUZZ_CHECK(buf_puts(out, ".\r\n") == 0);
}

/* 1 if b holds exactly p[0..len). */
static int
holds(const struct buf *b, const char *p, size_t len)
{
	return b->len == len && memcmp(buf_cstr(b), p, len) == 0;
}

static void
same(const struct result *a, const struct result *b)
{
	FUZZ_CHECK(a->done == b->done && a->consumed == b->consumed);
	FUZZ_CHECK(a->bare == b->bare);
	FUZZ_CHECK(holds(&a->out, buf_cstr(&b->out), b->out.len));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct result whole, bytes, pieces, back;
	struct fuzz_rng rng;
	struct buf full, expect, stuffed;
	size_t consumed, total;
	int bare;

	fuzz_rng_init(&rng, data, size);
	run(in, size, size > 0 ? size : 1, &rng, &whole);
	run(in, size, 1, &rng, &bytes);
	run(in, size, 0, &rng, &pieces);
	same(&whole, &bytes);
	same(&whole, &pieces);

	/* The model on the input as the parser completed it. */
	buf_init(&full, size + END_LEN + 1);
	FUZZ_CHECK(buf_append(&full, in, size) == 0);
	FUZZ_CHECK(buf_append(&full, END_MARKER, END_LEN) == 0);
	buf_init(&expect, OUT_MAX(full.len));
	consumed = model(full.data, full.len, &expect, &bare);
	FUZZ_CHECK(whole.done == (consumed <= size));
	if (whole.done)
		FUZZ_CHECK(whole.consumed == consumed);
	FUZZ_CHECK(whole.bare == bare);
	FUZZ_CHECK(holds(&whole.out, buf_cstr(&expect), expect.len));

	/* Stuffed and ended again, the content parses back to itself. */
	total = whole.out.len;
	FUZZ_CHECK(
	    total == 0 || (total >= 2 && whole.out.data[total - 2] == '\r' &&
	                      whole.out.data[total - 1] == '\n'));
	buf_init(&stuffed, OUT_MAX(total));
	stuff(buf_cstr(&whole.out), total, &stuffed);
	run(stuffed.data, stuffed.len, stuffed.len, &rng, &back);
	FUZZ_CHECK(back.done && back.consumed == stuffed.len);
	FUZZ_CHECK(back.bare == whole.bare);
	FUZZ_CHECK(holds(&back.out, buf_cstr(&whole.out), total));

	buf_free(&whole.out);
	buf_free(&bytes.out);
	buf_free(&pieces.out);
	buf_free(&back.out);
	buf_free(&full);
	buf_free(&expect);
	buf_free(&stuffed);
	return 0;
}
