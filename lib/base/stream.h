/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams for protocol I/O, over a file descriptor and an
 * optional transport (TLS lives in lib/tls and plugs in here, so lib/base
 * knows nothing of OpenSSL and the protocol code never sees it).
 *
 * One read path and one write path serve both kinds of users:
 * - event-driven code calls stream_fill() when the fd is readable,
 *   stream_next_line() / stream_peek() to parse what arrived, queues
 *   output with stream_write() and pushes it with stream_try_flush(); it
 *   asks stream_events() which fd readiness to wait for, because a TLS
 *   transport may need to write to read or read to write;
 * - blocking code calls stream_read_line(), stream_read_exact() and
 *   stream_flush(), which wait in poll(2) for at most the time left of
 *   their per-call timeout (STREAM_TIMEOUT when it expires).
 *
 * Line reads have a hard length limit and report STREAM_TOOLONG once per
 * over-long line (its rest is discarded through its LF, so the stream
 * stays in step with the peer). Lines may be longer than the read
 * buffer: they collect in the caller's line buffer across fills.
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

/* fd readiness a blocked transport call waits for; equal to EVENT_READ
 * and EVENT_WRITE of base/event.h. */
#define STREAM_WANT_READ  0x1
#define STREAM_WANT_WRITE 0x2

#define STREAM_RBUF_SIZE 16384

/*
 * A transport between the stream and its fd. read and write behave like
 * read(2) and write(2) on a non-blocking descriptor: bytes moved, 0 for
 * end of input (read only), or -1 with errno; on EAGAIN *want_r says
 * which readiness unblocks the call. pending: bytes already decoded that
 * read would return without touching the fd. free releases ctx (not the
 * fd); close_notify may be sent there.
 */
struct stream_transport {
	ssize_t (*read)(void *ctx, int fd, void *data, size_t len, int *want_r);
	ssize_t (*write)(void *ctx, int fd, const void *data, size_t len,
	    int *want_r);
	size_t (*pending)(void *ctx);
	void (*free)(void *ctx);
};

struct stream {
	int fd;
	const struct stream_transport *tr;	/* NULL: the plain fd */
	void *tr_ctx;
	char rbuf[STREAM_RBUF_SIZE];
	size_t rpos, rlen;	/* unread bytes are rbuf[rpos..rlen) */
	int skipping;		/* discarding the tail of an over-long line */
	int partial;		/* the caller's line holds a line's start */
	int eof;
	int read_want;		/* STREAM_WANT_* of a read that would block */
	int write_want;		/* same for the pending output */
	struct buf wbuf;	/* pending output */
};

/* Does not take ownership of fd; stream_close() does close it. */
void stream_init(struct stream *st, int fd);
/* Puts tr under the stream (ctx is freed by stream_free). Input already
 * buffered stays: the caller decides what it means (STARTTLS refuses it). */
void stream_set_transport(struct stream *st,
    const struct stream_transport *tr, void *ctx);
void stream_free(struct stream *st);	/* frees buffers, not fd */
void stream_close(struct stream *st);	/* frees and closes fd */

/*
 * Reads one line ending in LF; the line is stored in *line without the
 * terminating LF and without a CR just before it. *line_had_cr_r (may be
 * NULL) says whether the CR was present. max is the limit of the line
 * without terminator; line's own maximum must leave room for max + 1.
 * timeout_ms < 0 waits forever (not for network use). After AGAIN or
 * TIMEOUT the same line buffer must be passed again: it holds the start.
 */
enum stream_result stream_read_line(struct stream *st, struct buf *line,
    size_t max, int timeout_ms, int *line_had_cr_r);
/* Reads exactly len bytes into line (appended after reset). */
enum stream_result stream_read_exact(struct stream *st, struct buf *out,
    size_t len, int timeout_ms);

/* Non-blocking: one transport read into the buffer. STREAM_OK if bytes
 * arrived (or the buffer is full), STREAM_AGAIN, STREAM_EOF, STREAM_ERROR. */
enum stream_result stream_fill(struct stream *st);
/* Non-blocking: a complete line from what is buffered, else STREAM_AGAIN
 * (its start is kept in line), or STREAM_EOF once eof was seen and no
 * whole line is left. Same limit rules as stream_read_line. */
enum stream_result stream_next_line(struct stream *st, struct buf *line,
    size_t max, int *line_had_cr_r);
/* Bytes already buffered and not yet consumed. */
size_t stream_buffered(const struct stream *st);
/* The buffered bytes, to parse in place; stream_consume(st, n) drops n. */
const char *stream_peek(const struct stream *st, size_t *len_r);
void stream_consume(struct stream *st, size_t n);
/* 1 if input can be had without waiting for the fd: buffered bytes or
 * plaintext the transport already decoded. */
int stream_input_ready(const struct stream *st);

/* Output is buffered (at most STREAM_WBUF_MAX); -1 with errno ENOBUFS
 * when it would not fit. */
int stream_write(struct stream *st, const void *data, size_t len);
int stream_puts(struct stream *st, const char *s);
int stream_printf(struct stream *st, const char *fmt, ...) MTA_PRINTF(2, 3);
/* Bytes queued and not yet written. */
size_t stream_unsent(const struct stream *st);
/*
 * What is queued, then data (len octets), in one sendmsg that does not
 * wait and does not copy data into the queue: for large pieces a caller
 * holds (a message body). The octets of data sent (0: the socket is
 * full; queue the rest with stream_write), or -1 with errno:
 * EOPNOTSUPP (a transport such as TLS is under the stream) or ENOTSOCK
 * (a pipe): use stream_write; anything else: the peer is gone.
 */
ssize_t stream_send_direct(struct stream *st, const void *data, size_t len);
/* Non-blocking: writes what the transport takes. STREAM_OK when all is
 * out, STREAM_AGAIN when some is left, STREAM_ERROR. */
enum stream_result stream_try_flush(struct stream *st);
/* Blocking: writes everything within timeout_ms. */
enum stream_result stream_flush(struct stream *st, int timeout_ms);
/*
 * The STREAM_WANT_* mask to wait for: the readiness input needs when
 * want_input, plus what pending output needs. A transport may turn a
 * read into a wait for writability and back.
 */
int stream_events(const struct stream *st, int want_input);

#define STREAM_WBUF_MAX (1024 * 1024)

#endif
