/* SPDX-License-Identifier: MIT */
/*
 * Buffered protocol I/O with deadlines, after Postfix's smtp_stream and
 * Dovecot's iostreams: one read path and one write path, over the plain fd
 * or a transport (TLS) that may want the other direction to make
 * progress. Every blocking read or write waits in poll(2) for at most the
 * time left of its per-call timeout, and every line has a hard length
 * limit (RFC 5321 4.5.3.1 sets 1000 octets for SMTP; callers pass their
 * own). An over-long line is swallowed through its LF and reported once,
 * so the protocol stays in step with the peer.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/stream.h"

#define MS_PER_SEC 1000
#define NS_PER_MS  1000000

/* The plain fd: read(2), and send(2) that never raises SIGPIPE. */
static ssize_t
plain_read(int fd, void *data, size_t len, int *want_r)
{
	ssize_t n;

	do {
		n = read(fd, data, len);
	} while (n < 0 && errno == EINTR);
	*want_r = STREAM_WANT_READ;
	return n;
}

/*
 * One write that cannot block past the deadline even on a blocking fd:
 * sockets get MSG_DONTWAIT (and MSG_NOSIGNAL, so a vanished peer is an
 * error rather than SIGPIPE); other fds take at most PIPE_BUF bytes per
 * write, which poll(2) reporting POLLOUT guarantees to fit.
 */
static ssize_t
plain_write(int fd, const void *data, size_t len, int *want_r)
{
	ssize_t n;

	do {
		n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, data, len < PIPE_BUF ? len : PIPE_BUF);
	} while (n < 0 && errno == EINTR);
	*want_r = STREAM_WANT_WRITE;
	return n;
}

void
stream_init(struct stream *st, int fd)
{
	st->fd = fd;
	st->tr = NULL;
	st->tr_ctx = NULL;
	st->rpos = st->rlen = 0;
	st->skipping = 0;
	st->partial = 0;
	st->eof = 0;
	st->read_want = st->write_want = 0;
	buf_init(&st->wbuf, STREAM_WBUF_MAX);
}

void
stream_set_transport(
    struct stream *st, const struct stream_transport *tr, void *ctx)
{
	if (st->tr != NULL)
		st->tr->free(st->tr_ctx);
	st->tr = tr;
	st->tr_ctx = ctx;
	st->read_want = st->write_want = 0;
}

void
stream_free(struct stream *st)
{
	if (st->tr != NULL)
		st->tr->free(st->tr_ctx);
	st->tr = NULL;
	st->tr_ctx = NULL;
	buf_free(&st->wbuf);
	st->rpos = st->rlen = 0;
	st->partial = 0;
}

void
stream_close(struct stream *st)
{
	stream_free(st);
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
}

static ssize_t
stream_tr_read(struct stream *st, void *data, size_t len, int *want_r)
{
	if (st->tr == NULL)
		return plain_read(st->fd, data, len, want_r);
	return st->tr->read(st->tr_ctx, st->fd, data, len, want_r);
}

static ssize_t
stream_tr_write(struct stream *st, const void *data, size_t len, int *want_r)
{
	if (st->tr == NULL)
		return plain_write(st->fd, data, len, want_r);
	return st->tr->write(st->tr_ctx, st->fd, data, len, want_r);
}

size_t
stream_buffered(const struct stream *st)
{
	return st->rlen - st->rpos;
}

const char *
stream_peek(const struct stream *st, size_t *len_r)
{
	*len_r = st->rlen - st->rpos;
	return st->rbuf + st->rpos;
}

void
stream_consume(struct stream *st, size_t n)
{
	if (n > st->rlen - st->rpos)
		n = st->rlen - st->rpos;
	st->rpos += n;
}

int
stream_input_ready(const struct stream *st)
{
	return st->rpos < st->rlen ||
	       (st->tr != NULL && st->tr->pending(st->tr_ctx) > 0);
}

static int64_t
stream_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

/*
 * Waits until fd is ready for want (STREAM_WANT_*) or the deadline
 * (started at start_ms, timeout_ms long; < 0 = none) passes: STREAM_OK,
 * TIMEOUT or ERROR.
 */
static enum stream_result
stream_wait(int fd, int want, int timeout_ms, int64_t start_ms)
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
		pfd.events =
		    (short)(((want & STREAM_WANT_READ) ? POLLIN : 0) |
		            ((want & STREAM_WANT_WRITE) ? POLLOUT : 0));
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
	int want = STREAM_WANT_READ;

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
	n = stream_tr_read(
	    st, st->rbuf + st->rlen, sizeof(st->rbuf) - st->rlen, &want);
	if (n > 0) {
		st->rlen += (size_t)n;
		st->read_want = 0;
		return STREAM_OK;
	}
	if (n == 0) {
		st->eof = 1;
		return STREAM_EOF;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		st->read_want = want;
		return STREAM_AGAIN;
	}
	return STREAM_ERROR;
}

/* Blocking fill: waits for input within the call's deadline. */
static enum stream_result
stream_fill_wait(struct stream *st, int timeout_ms, int64_t start_ms)
{
	enum stream_result r;

	for (;;) {
		/* Poll first: the fd may be blocking. Decoded plaintext needs
		 * no wait (and no poll would wake for it). */
		if (!st->eof &&
		    !(st->tr != NULL && st->tr->pending(st->tr_ctx) > 0)) {
			r = stream_wait(st->fd,
			    st->read_want != 0 ? st->read_want
			                       : STREAM_WANT_READ,
			    timeout_ms, start_ms);
			if (r != STREAM_OK)
				return r;
		}
		/* AGAIN: a spurious wakeup, or a transport that wants more. */
		r = stream_fill(st);
		if (r != STREAM_AGAIN)
			return r;
	}
}

/*
 * Takes a line out of rbuf, collecting its start in line across calls
 * (st->partial) when no LF has come yet. Returns OK, TOOLONG (after its
 * LF was consumed) or AGAIN (needs more input).
 */
static enum stream_result
stream_scan_line(struct stream *st, struct buf *line, size_t max, int *had_cr_r)
{
	char *start = st->rbuf + st->rpos;
	size_t avail = st->rlen - st->rpos, seg;
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
	if (!st->partial)
		buf_reset(line);
	seg = lf != NULL ? (size_t)(lf - start) : avail;
	/* max + 1 leaves room for the CR of a CRLF. */
	if (line->len + seg > max + 1 || buf_append(line, start, seg) < 0) {
		buf_reset(line);
		st->partial = 0;
		if (lf == NULL) {
			st->rpos = st->rlen;
			st->skipping = 1;
			return STREAM_AGAIN;
		}
		st->rpos += seg + 1;
		return STREAM_TOOLONG;
	}
	if (lf == NULL) {
		st->rpos = st->rlen;
		st->partial = 1;
		return STREAM_AGAIN;
	}
	st->rpos += seg + 1;
	st->partial = 0;
	if (line->len > 0 && line->data[line->len - 1] == '\r') {
		buf_truncate(line, line->len - 1);
		cr = 1;
	}
	if (line->len > max) {
		buf_reset(line);
		return STREAM_TOOLONG;
	}
	if (had_cr_r != NULL)
		*had_cr_r = cr;
	return STREAM_OK;
}

/* A partial last line is not a line (header contract). */
static enum stream_result
stream_at_eof(struct stream *st, struct buf *line)
{
	buf_reset(line);
	st->rpos = st->rlen;
	st->skipping = 0;
	st->partial = 0;
	return STREAM_EOF;
}

enum stream_result
stream_read_line(struct stream *st, struct buf *line, size_t max,
    int timeout_ms, int *line_had_cr_r)
{
	int64_t start_ms = stream_now_ms();
	enum stream_result r;

	for (;;) {
		r = stream_scan_line(st, line, max, line_had_cr_r);
		if (r != STREAM_AGAIN)
			return r;
		if (st->eof)
			return stream_at_eof(st, line);
		r = stream_fill_wait(st, timeout_ms, start_ms);
		if (r != STREAM_OK && r != STREAM_EOF)
			return r;
	}
}

enum stream_result
stream_next_line(
    struct stream *st, struct buf *line, size_t max, int *line_had_cr_r)
{
	enum stream_result r = stream_scan_line(st, line, max, line_had_cr_r);

	if (r == STREAM_AGAIN && st->eof)
		return stream_at_eof(st, line);
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

size_t
stream_unsent(const struct stream *st)
{
	return st->wbuf.len;
}

enum stream_result
stream_try_flush(struct stream *st)
{
	ssize_t n;
	int want = STREAM_WANT_WRITE;

	while (st->wbuf.len > 0) {
		n = stream_tr_write(st, st->wbuf.data, st->wbuf.len, &want);
		if (n > 0) {
			buf_consume(&st->wbuf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			st->write_want = want;
			return STREAM_AGAIN;
		}
		if (n == 0)
			errno = EPIPE;
		return STREAM_ERROR;
	}
	st->write_want = 0;
	return STREAM_OK;
}

enum stream_result
stream_flush(struct stream *st, int timeout_ms)
{
	int64_t start_ms = stream_now_ms();
	enum stream_result r;

	for (;;) {
		r = stream_try_flush(st);
		if (r != STREAM_AGAIN)
			return r;
		r = stream_wait(st->fd, st->write_want, timeout_ms, start_ms);
		if (r != STREAM_OK)
			return r;
	}
}

int
stream_events(const struct stream *st, int want_input)
{
	int mask = 0;

	if (want_input)
		mask |= st->read_want != 0 ? st->read_want : STREAM_WANT_READ;
	if (st->wbuf.len > 0)
		mask |=
		    st->write_want != 0 ? st->write_want : STREAM_WANT_WRITE;
	return mask;
}

ssize_t
stream_send_direct(struct stream *st, const void *data, size_t len)
{
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;
	size_t head;

	if (st->tr != NULL) {
		errno = EOPNOTSUPP;
		return -1;
	}
	iov[0].iov_base = st->wbuf.data;
	iov[0].iov_len = st->wbuf.len;
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = st->wbuf.len > 0 ? iov : iov + 1;
	mh.msg_iovlen = st->wbuf.len > 0 ? 2 : 1;
	do {
		n = sendmsg(st->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = EPIPE;
		return -1;
	}
	head = (size_t)n < st->wbuf.len ? (size_t)n : st->wbuf.len;
	buf_consume(&st->wbuf, head);
	return n - (ssize_t)head;
}
