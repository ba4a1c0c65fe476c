/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: line reads of lib/base/stream.c with their hard
 * limit (the read side of every protocol), over a memory transport that
 * hands the input out in irregular pieces with EAGAIN in between. Lines
 * may be far longer than the 16 KiB read buffer: they collect across
 * fills, and an over-long one is reported once as STREAM_TOOLONG and
 * skipped through its LF. Both stream_next_line (event-driven) and
 * stream_read_line (blocking) must give exactly what a model that splits
 * the whole input at LF says: each line without its LF and one CR before
 * it, TOOLONG for a line over the limit, nothing for a last line
 * without LF, then EOF for good.
 *
 * Input: a byte choosing the limit, a byte of options, then the bytes,
 * where ESC n c stands for (n + 1) * RUN_UNIT copies of c, so that
 * short inputs make long lines.
 */
#include <string.h>

#include "base/buf.h"
#include "base/stream.h"
#include "fuzz_util.h"

/* Around SMTP's 1000 (RFC 5321 4.5.3.1), the read buffer, the SASL line. */
static const size_t limits[] = {0, 1, 2, 3, 64, 510, 998, 1000, 4096,
    STREAM_RBUF_SIZE - 2, STREAM_RBUF_SIZE - 1, STREAM_RBUF_SIZE,
    STREAM_RBUF_SIZE + 1, 20000, 65536};
#define LIMITS (sizeof(limits) / sizeof(limits[0]))

#define OPT_AGAIN       0x1 /* reads fail with EAGAIN now and then */
#define OPT_ROOMY       0x2 /* the line buffer is larger than needed */
#define OPT_BIG_READS   0x4 /* pieces up to the whole buffer, not 1 KiB */
#define SMALL_PIECE     1024
#define ROOM_EXTRA      4096
#define ESC             0xff
#define RUN_UNIT        128
/* Lines up to a few times the read buffer and the largest limit. */
#define EXPANDED_MAX    (256 * 1024)
#define STEPS_PER_BYTE  4
#define STEPS_MIN       64
#define READ_TIMEOUT_MS 1000

/* The input with its runs expanded (up to the buffer's maximum). */
static void
expand(const uint8_t *in, size_t len, struct buf *out)
{
	static char run[(ESC + 1) * RUN_UNIT];
	size_t i, n;

	for (i = 0; i < len; i++) {
		if (in[i] == ESC && i + 2 < len) {
			n = (size_t)(in[i + 1] + 1) * RUN_UNIT;
			memset(run, in[i + 2], n);
			if (buf_append(out, run, n) < 0)
				break;
			i += 2;
		} else if (buf_putc(out, (char)in[i]) < 0) {
			break;
		}
	}
}

/* The model: the next line of in[*pos..len), as stream.h promises. */
static enum stream_result
model_next(const char *in, size_t len, size_t *pos, size_t max,
    const char **line_r, size_t *len_r, int *cr_r)
{
	const char *lf = memchr(in + *pos, '\n', len - *pos);
	size_t n;

	if (lf == NULL)
		return STREAM_EOF;
	*line_r = in + *pos;
	n = (size_t)(lf - *line_r);
	*pos += n + 1;
	*cr_r = n > 0 && (*line_r)[n - 1] == '\r';
	if (*cr_r)
		n--;
	*len_r = n;
	return n > max ? STREAM_TOOLONG : STREAM_OK;
}

static void
check_line(enum stream_result r, const struct buf *line, int had_cr,
    const char *in, size_t len, size_t *pos, size_t max)
{
	const char *want;
	size_t want_len;
	int want_cr;

	FUZZ_CHECK(
	    r == model_next(in, len, pos, max, &want, &want_len, &want_cr));
	if (r == STREAM_OK) {
		FUZZ_CHECK(line->len == want_len && had_cr == want_cr);
		FUZZ_CHECK(memcmp(buf_cstr(line), want, want_len) == 0);
		FUZZ_CHECK(buf_cstr(line)[line->len] == '\0');
	}
}

static void
run(const char *in, size_t len, size_t max, unsigned opts,
    struct fuzz_rng *seed, int blocking)
{
	static struct stream st;
	struct fuzz_mem mem;
	struct buf line;
	enum stream_result r, fr;
	size_t pos = 0, steps, max_steps;
	int had_cr;

	stream_init(&st, -1);
	fuzz_mem_init(&mem, in, len, fuzz_rng_next(seed), opts & OPT_AGAIN,
	    (opts & OPT_BIG_READS) ? STREAM_RBUF_SIZE : SMALL_PIECE);
	stream_set_transport(&st, &fuzz_transport, &mem);
	buf_init(&line, max + 1 + ((opts & OPT_ROOMY) ? ROOM_EXTRA : 0));
	max_steps = STEPS_MIN + STEPS_PER_BYTE * len;
	for (steps = 0;; steps++) {
		FUZZ_CHECK(steps < max_steps);
		had_cr = -1;
		if (blocking) {
			r = stream_read_line(
			    &st, &line, max, READ_TIMEOUT_MS, &had_cr);
		} else {
			r = stream_next_line(&st, &line, max, &had_cr);
			if (r == STREAM_AGAIN) {
				fr = stream_fill(&st);
				FUZZ_CHECK(fr == STREAM_OK ||
				           fr == STREAM_AGAIN ||
				           fr == STREAM_EOF);
				continue;
			}
		}
		FUZZ_CHECK(
		    r == STREAM_OK || r == STREAM_TOOLONG || r == STREAM_EOF);
		check_line(r, &line, had_cr, in, len, &pos, max);
		if (r == STREAM_EOF)
			break;
	}
	/* The end is for good. */
	FUZZ_CHECK(stream_next_line(&st, &line, max, &had_cr) == STREAM_EOF);
	FUZZ_CHECK(line.len == 0);
	buf_free(&line);
	stream_free(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Kept across inputs: big fresh buffers would cost page faults. */
	static struct buf in = {NULL, 0, 0, EXPANDED_MAX};
	struct fuzz_rng seed;
	unsigned opts;
	size_t max;

	if (size < 2)
		return 0;
	max = limits[data[0] % LIMITS];
	opts = data[1];
	fuzz_rng_init(&seed, data, size);
	buf_reset(&in);
	expand(data + 2, size - 2, &in);
	run(buf_cstr(&in), in.len, max, opts, &seed, 0);
	run(buf_cstr(&in), in.len, max, opts, &seed, 1);
	return 0;
}
