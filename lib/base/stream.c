/* SPDX-License-Identifier: MIT */
/*
 * Buffered protocol I/O with deadlines, after Postfix's smtp_stream: every
 * blocking read or write waits in poll(2) for at most the time left of its
 * per-call timeout, and every line has a hard length limit (RFC 5321
 * 4.5.3.1 sets 1000 octets for SMTP; callers pass their own). An over-long
 * line is swallowed through its LF and reported once, so the protocol stays
 * in step with the peer.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/stream.h"

/* Output queued but not yet flushed; more means a runaway writer. */
#define STREAM_WBUF_MAX (1024 * 1024)
#define MS_PER_SEC      1000
#define NS_PER_MS       1000000

void
stream_init(struct stream *st, int fd)
{
	st->fd = fd;
	st->rpos = st->rlen = 0;
	st->skipping = 0;
	st->eof = 0;
	buf_init(&st->wbuf, STREAM_WBUF_MAX);
}

void
stream_free(struct stream *st)
{
	buf_free(&st->wbuf);
	st->rpos = st->rlen = 0;
}

void
stream_close(struct stream *st)
{
	stream_free(st);
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
}

size_t
stream_buffered(const struct stream *st)
{
	return st->rlen - st->rpos;
}

static int64_t
stream_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

/*
 * Waits until fd is ready for events or the deadline (started at start_ms,
 * timeout_ms long; < 0 = none) passes: STREAM_OK, TIMEOUT or ERROR.
 */
static enum stream_result
stream_wait(int fd, short events, int timeout_ms, int64_t start_ms)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = -1;
		if (timeout_ms >= 0) {
			left = timeout_ms - (stream_now_ms() - start_ms);
			if (left < 0)
				left = 0;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return STREAM_OK; /* errors show up in read/write */
		if (n == 0)
			return STREAM_TIMEOUT;
		if (errno != EINTR)
			return STREAM_ERROR;
	}
}

enum stream_result
stream_fill(struct stream *st)
{
	ssize_t n;

	if (st->rpos == st->rlen) {
		st->rpos = st->rlen = 0;
	} else if (st->rpos > 0) {
		memmove(st->rbuf, st->rbuf + st->rpos, st->rlen - st->rpos);
		st->rlen -= st->rpos;
		st->rpos = 0;
	}
	if (st->rlen == sizeof(st->rbuf))
		return STREAM_OK; /* full: the caller must consume first */
	if (st->eof)
		return STREAM_EOF;
	do {
		n = read(
		    st->fd, st->rbuf + st->rlen, sizeof(st->rbuf) - st->rlen);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		st->rlen += (size_t)n;
		return STREAM_OK;
	}
	if (n == 0) {
		st->eof = 1;
		return STREAM_EOF;
	}
	return (errno == EAGAIN || errno == EWOULDBLOCK) ? STREAM_AGAIN
	                                                 : STREAM_ERROR;
}

/* Blocking fill: waits for input within the call's deadline. */
static enum stream_result
stream_fill_wait(struct stream *st, int timeout_ms, int64_t start_ms)
{
	enum stream_result r;

	for (;;) {
		if (!st->eof) {
			r = stream_wait(st->fd, POLLIN, timeout_ms, start_ms);
			if (r != STREAM_OK)
				return r;
		}
		/* AGAIN: a spurious wakeup on a non-blocking fd. */
		r = stream_fill(st);
		if (r != STREAM_AGAIN)
			return r;
	}
}

/*
 * Takes a line out of rbuf if a LF is there. With accumulate, a line that
 * does not fit rbuf is collected in line across fills (the blocking read
 * owns line for the whole call); otherwise it counts as too long. Returns
 * OK, TOOLONG (after its LF was consumed) or AGAIN (needs more input).
 */
static enum stream_result
stream_scan_line(struct stream *st, struct buf *line, size_t max, int *had_cr_r,
    int accumulate)
{
	char *start = st->rbuf + st->rpos;
	size_t avail = st->rlen - st->rpos, seg, keep;
	char *lf = memchr(start, '\n', avail);
	int cr = 0;

	if (st->skipping) {
		if (lf == NULL) {
			st->rpos = st->rlen;
			return STREAM_AGAIN;
		}
		st->rpos += (size_t)(lf - start) + 1;
		st->skipping = 0;
		return STREAM_TOOLONG;
	}
	if (lf != NULL) {
		seg = (size_t)(lf - start);
		st->rpos += seg + 1;
		if (seg > 0 && start[seg - 1] == '\r') {
			seg--;
			cr = 1;
		}
		if (!accumulate)
			buf_reset(line);
		if (line->len + seg > max || buf_append(line, start, seg) < 0) {
			buf_reset(line);
			return STREAM_TOOLONG;
		}
		if (had_cr_r != NULL)
			*had_cr_r = cr;
		return STREAM_OK;
	}
	/* No LF yet. max + 1 leaves room for the CR of a CRLF. */
	if (accumulate && avail == sizeof(st->rbuf)) {
		/* Keep a trailing CR back so CRLF is still seen as a pair. */
		keep = start[avail - 1] == '\r';
		if (line->len + avail - keep <= max &&
		    buf_append(line, start, avail - keep) == 0) {
			st->rpos += avail - keep;
			return STREAM_AGAIN;
		}
	} else if ((accumulate ? line->len : 0) + avail <= max + 1 &&
	           avail < sizeof(st->rbuf)) {
		return STREAM_AGAIN;
	}
	buf_reset(line);
	st->rpos = st->rlen;
	st->skipping = 1;
	return STREAM_AGAIN;
}

enum stream_result
stream_read_line(struct stream *st, struct buf *line, size_t max,
    int timeout_ms, int *line_had_cr_r)
{
	int64_t start_ms = stream_now_ms();
	enum stream_result r;

	buf_reset(line);
	for (;;) {
		r = stream_scan_line(st, line, max, line_had_cr_r, 1);
		if (r != STREAM_AGAIN)
			return r;
		if (st->eof) {
			/* A partial last line is not a line (header contract). */
			buf_reset(line);
			st->rpos = st->rlen;
			st->skipping = 0;
			return STREAM_EOF;
		}
		r = stream_fill_wait(st, timeout_ms, start_ms);
		if (r != STREAM_OK && r != STREAM_EOF)
			return r;
	}
}

enum stream_result
stream_next_line(
    struct stream *st, struct buf *line, size_t max, int *line_had_cr_r)
{
	enum stream_result r =
	    stream_scan_line(st, line, max, line_had_cr_r, 0);

	if (r == STREAM_AGAIN && st->eof) {
		st->rpos = st->rlen;
		st->skipping = 0;
		return STREAM_EOF;
	}
	return r;
}

enum stream_result
stream_read_exact(
    struct stream *st, struct buf *out, size_t len, int timeout_ms)
{
	int64_t start_ms = stream_now_ms();
	enum stream_result r;
	size_t n;

	buf_reset(out);
	if (len > out->max) {
		errno = EMSGSIZE;
		return STREAM_ERROR;
	}
	while (out->len < len) {
		n = stream_buffered(st);
		if (n > len - out->len)
			n = len - out->len;
		if (n > 0) {
			if (buf_append(out, st->rbuf + st->rpos, n) < 0) {
				errno = EMSGSIZE;
				return STREAM_ERROR;
			}
			st->rpos += n;
			continue;
		}
		r = stream_fill_wait(st, timeout_ms, start_ms);
		if (r == STREAM_EOF)
			return STREAM_EOF;
		if (r != STREAM_OK)
			return r;
	}
	return STREAM_OK;
}

int
stream_write(struct stream *st, const void *data, size_t len)
{
	if (buf_append(&st->wbuf, data, len) < 0) {
		errno = ENOBUFS;
		return -1;
	}
	return 0;
}

int
stream_puts(struct stream *st, const char *s)
{
	return stream_write(st, s, strlen(s));
}

int
stream_printf(struct stream *st, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = buf_vprintf(&st->wbuf, fmt, ap);
	va_end(ap);
	if (ret < 0)
		errno = ENOBUFS;
	return ret;
}

/*
 * One write that cannot block past the deadline even on a blocking fd:
 * sockets get MSG_DONTWAIT (and MSG_NOSIGNAL, so a vanished peer is an
 * error rather than SIGPIPE); other fds take at most PIPE_BUF bytes per
 * write, which poll(2) reporting POLLOUT guarantees to fit.
 */
static ssize_t
stream_send(int fd, const void *data, size_t len)
{
	ssize_t n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0 && errno == ENOTSOCK)
		n = write(fd, data, len < PIPE_BUF ? len : PIPE_BUF);
	return n;
}

enum stream_result
stream_flush(struct stream *st, int timeout_ms)
{
	int64_t start_ms = stream_now_ms();
	enum stream_result r = STREAM_OK;
	size_t off = 0;
	ssize_t n;

	while (off < st->wbuf.len) {
		r = stream_wait(st->fd, POLLOUT, timeout_ms, start_ms);
		if (r != STREAM_OK)
			break;
		n = stream_send(
		    st->fd, st->wbuf.data + off, st->wbuf.len - off);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno != EINTR && errno != EAGAIN &&
		           errno != EWOULDBLOCK) {
			r = STREAM_ERROR;
			break;
		}
	}
	buf_consume(&st->wbuf, off);
	return r;
}
