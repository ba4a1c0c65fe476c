/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams over a file descriptor, for protocol I/O. Blocking
 * calls take a per-call timeout and fail with STREAM_TIMEOUT when it
 * expires (poll(2) based, so the fd may be non-blocking). Line reads have a
 * hard length limit and report STREAM_TOOLONG (the rest of the over-long
 * line is discarded up to and including its newline, so the stream stays
 * in sync). The non-blocking half (stream_fill/stream_next_line) lets an
 * event-driven server parse what has arrived without waiting.
 */
#ifndef TERN_STREAM_H
#define TERN_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include "base/buf.h"

enum stream_result {
	STREAM_OK = 0,
	STREAM_EOF,	/* peer closed (no partial line returned) */
	STREAM_TIMEOUT,
	STREAM_TOOLONG,	/* line exceeded the limit; it was discarded */
	STREAM_AGAIN,	/* non-blocking: nothing complete yet */
	STREAM_ERROR,	/* errno is set */
};

#define STREAM_RBUF_SIZE 16384

struct stream {
	int fd;
	char rbuf[STREAM_RBUF_SIZE];
	size_t rpos, rlen;	/* unread bytes are rbuf[rpos..rlen) */
	int skipping;		/* discarding the tail of an over-long line */
	int eof;
	struct buf wbuf;	/* pending output */
};

/* Does not take ownership of fd; stream_close() does close it. */
void stream_init(struct stream *st, int fd);
void stream_free(struct stream *st);	/* frees buffers, not fd */
void stream_close(struct stream *st);	/* frees and closes fd */

/*
 * Reads one line ending in LF; the line is stored in *line without the
 * terminating LF and without a CR just before it. *line_had_cr_r (may be
 * NULL) says whether the CR was present. max is the limit of the line
 * without terminator. timeout_ms < 0 waits forever (not for network use).
 */
enum stream_result stream_read_line(struct stream *st, struct buf *line,
    size_t max, int timeout_ms, int *line_had_cr_r);
/* Reads exactly len bytes into line (appended after reset). */
enum stream_result stream_read_exact(struct stream *st, struct buf *out,
    size_t len, int timeout_ms);

/* Non-blocking: one read(2) into the buffer. STREAM_OK if bytes arrived,
 * STREAM_AGAIN on EAGAIN, STREAM_EOF, STREAM_ERROR. */
enum stream_result stream_fill(struct stream *st);
/* Non-blocking: a complete buffered line, else STREAM_AGAIN (or STREAM_EOF
 * once eof was seen and the buffer is empty). Same limit rules, except
 * that a line must also fit the read buffer (STREAM_RBUF_SIZE - 2 bytes
 * without CRLF): longer ones are STREAM_TOOLONG whatever max says. */
enum stream_result stream_next_line(struct stream *st, struct buf *line,
    size_t max, int *line_had_cr_r);
/* Bytes already buffered and not yet consumed. */
size_t stream_buffered(const struct stream *st);

/* Output is buffered; stream_flush writes it all within timeout_ms. */
int stream_write(struct stream *st, const void *data, size_t len);
int stream_puts(struct stream *st, const char *s);
int stream_printf(struct stream *st, const char *fmt, ...) MTA_PRINTF(2, 3);
enum stream_result stream_flush(struct stream *st, int timeout_ms);

#endif
