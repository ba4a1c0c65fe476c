/* SPDX-License-Identifier: MIT */
/*
 * The attribute frames tern daemons exchange over UNIX sockets: named,
 * length-prefixed values (see attr.h for the layout). Every length is
 * checked against what is left of the payload before it is used, so a
 * hostile or broken peer can cause an error but never an overrun. No RFC
 * applies; the idea is Postfix's attr_print/attr_scan and OpenSMTPD's
 * bounds-checked imsg.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "base/bytes.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/attr.h"

#define ATTR_VLEN_LEN  4
#define ATTR_NLEN_LEN  1
#define ATTR_INT_SIZE  24
#define ATTR_ERROR_MAX 256
#define MS_PER_SEC     1000
#define NS_PER_MS      1000000

static int
name_valid(const char *name, size_t n)
{
	size_t i;

	if (n == 0 || n > ATTR_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		        (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return 0;
	return 1;
}

void
attr_frame_begin(struct buf *frame)
{
	static const char header[ATTR_HEADER_LEN];

	buf_reset(frame);
	if (buf_append(frame, header, sizeof(header)) < 0)
		msg_panic("attr_frame_begin: buffer max %zu below header",
		    frame->max);
}

int
attr_put(struct buf *frame, const char *name, const void *value, size_t len)
{
	size_t nlen = strlen(name), old = frame->len, need;
	unsigned char vlen[ATTR_VLEN_LEN];
	unsigned char nl = (unsigned char)nlen;

	if (frame->len < ATTR_HEADER_LEN)
		msg_panic("attr_put: frame not begun");
	if (!name_valid(name, nlen))
		return -1;
	need = ATTR_NLEN_LEN + nlen + ATTR_VLEN_LEN;
	if (len > ATTR_FRAME_MAX ||
	    frame->len - ATTR_HEADER_LEN + need > ATTR_FRAME_MAX - len)
		return -1;
	bytes_put_be32(vlen, (uint32_t)len);
	if (buf_append(frame, &nl, sizeof(nl)) < 0 ||
	    buf_append(frame, name, nlen) < 0 ||
	    buf_append(frame, vlen, sizeof(vlen)) < 0 ||
	    buf_append(frame, value, len) < 0) {
		buf_truncate(frame, old);
		return -1;
	}
	return 0;
}

int
attr_put_str(struct buf *frame, const char *name, const char *value)
{
	return attr_put(frame, name, value, strlen(value));
}

int
attr_put_int(struct buf *frame, const char *name, long long value)
{
	char text[ATTR_INT_SIZE];
	int n = snprintf(text, sizeof(text), "%lld", value);

	return attr_put(frame, name, text, (size_t)n);
}

int
attr_frame_end(struct buf *frame)
{
	size_t plen;

	if (frame->len < ATTR_HEADER_LEN)
		msg_panic("attr_frame_end: frame not begun");
	plen = frame->len - ATTR_HEADER_LEN;
	if (plen > ATTR_FRAME_MAX)
		return -1;
	bytes_put_be32((unsigned char *)frame->data, (uint32_t)plen);
	return 0;
}

void
attr_list_init(struct attr_list *l)
{
	memset(l, 0, sizeof(*l));
}

void
attr_list_free(struct attr_list *l)
{
	free(l->v);
	free(l->store);
	memset(l, 0, sizeof(*l));
}

/*
 * Two passes: the first checks every length and counts, the second copies
 * into one store where each name and value gets its own NUL. The store
 * needs len + count bytes: each attribute loses its 5 length bytes and
 * gains 2 NULs.
 */
int
attr_decode(
    const void *payload, size_t len, struct attr_list *l, const char **error_r)
{
	const unsigned char *p = payload, *end = len > 0 ? p + len : p;
	size_t nlen, vlen, count = 0;
	char *s;
	int i;

	free(l->store);
	l->store = NULL;
	l->count = 0;
	if (len > ATTR_FRAME_MAX) {
		*error_r = "attribute frame too large";
		return -1;
	}
	while (p < end) {
		nlen = *p++;
		if ((size_t)(end - p) < nlen + ATTR_VLEN_LEN) {
			*error_r = "attribute name runs past the payload";
			return -1;
		}
		if (!name_valid((const char *)p, nlen)) {
			*error_r = "bad attribute name";
			return -1;
		}
		p += nlen;
		vlen = bytes_get_be32(p);
		p += ATTR_VLEN_LEN;
		if ((size_t)(end - p) < vlen) {
			*error_r = "attribute value runs past the payload";
			return -1;
		}
		p += vlen;
		count++;
	}
	if (count > (size_t)l->alloc) {
		l->v = xrealloc(l->v, count * sizeof(*l->v));
		l->alloc = (int)count;
	}
	s = l->store = xmalloc(len + count + 1);
	for (p = payload, i = 0; (size_t)i < count; i++) {
		nlen = *p++;
		memcpy(s, p, nlen);
		s[nlen] = '\0';
		l->v[i].name = s;
		s += nlen + 1;
		p += nlen;
		vlen = bytes_get_be32(p);
		p += ATTR_VLEN_LEN;
		memcpy(s, p, vlen);
		s[vlen] = '\0';
		l->v[i].value = s;
		l->v[i].len = vlen;
		s += vlen + 1;
		p += vlen;
	}
	l->count = (int)count;
	return 0;
}

int
attr_decode_frame(const void *data, size_t len, size_t *consumed_r,
    struct attr_list *l, const char **error_r)
{
	uint32_t plen;

	if (len < ATTR_HEADER_LEN)
		return 0;
	plen = bytes_get_be32(data);
	if (plen > ATTR_FRAME_MAX) {
		*error_r = "attribute frame too large";
		return -1;
	}
	if (len - ATTR_HEADER_LEN < plen)
		return 0;
	if (attr_decode(
	        (const char *)data + ATTR_HEADER_LEN, plen, l, error_r) < 0)
		return -1;
	*consumed_r = ATTR_HEADER_LEN + plen;
	return 1;
}

/* 1 if a frame of payload length plen fits acc (and ATTR_FRAME_MAX). */
static int
frame_fits(const struct buf *acc, uint32_t plen)
{
	return plen <= ATTR_FRAME_MAX && acc->max >= ATTR_HEADER_LEN &&
	       plen <= acc->max - ATTR_HEADER_LEN;
}

int
attr_frame_take(struct stream *st, struct buf *acc, struct attr_list *l,
    const char **error_r)
{
	const char *data;
	size_t len, used, want;
	uint32_t plen;
	int r;

	data = stream_peek(st, &len);
	if (acc->len == 0) {
		/*
		 * The common case: the whole frame is in the read buffer.
		 * acc's maximum bounds it all the same (a server's request
		 * limit must not depend on how the bytes arrived).
		 */
		if (len >= ATTR_HEADER_LEN &&
		    !frame_fits(
		        acc, bytes_get_be32((const unsigned char *)data))) {
			*error_r = "attribute frame too large";
			return -1;
		}
		r = attr_decode_frame(data, len, &used, l, error_r);
		if (r != 0) {
			if (r > 0)
				stream_consume(st, used);
			return r;
		}
	}
	/* Collect the header, then exactly the rest of this frame. */
	for (;;) {
		want = ATTR_HEADER_LEN;
		if (acc->len >= ATTR_HEADER_LEN) {
			plen = bytes_get_be32((const unsigned char *)acc->data);
			if (!frame_fits(acc, plen)) {
				*error_r = "attribute frame too large";
				return -1;
			}
			want += plen;
			if (acc->len == want)
				break;
		}
		if (len == 0)
			return 0;
		used = want - acc->len < len ? want - acc->len : len;
		if (buf_append(acc, data, used) < 0) {
			*error_r = "attribute frame too large";
			return -1;
		}
		stream_consume(st, used);
		data = stream_peek(st, &len);
	}
	r = attr_decode(
	    acc->data + ATTR_HEADER_LEN, want - ATTR_HEADER_LEN, l, error_r);
	buf_reset(acc);
	return r < 0 ? -1 : 1;
}

int
attr_reply_begin(struct buf *frame, const struct attr_list *req)
{
	const struct attr *id = NULL;
	int i;

	for (i = 0; i < req->count && id == NULL; i++)
		if (strcmp(req->v[i].name, "id") == 0)
			id = &req->v[i];
	attr_frame_begin(frame);
	return id != NULL ? attr_put(frame, "id", id->value, id->len) : 0;
}

const struct attr *
attr_find(const struct attr_list *l, const char *name)
{
	int i;

	for (i = 0; i < l->count; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

const char *
attr_get(const struct attr_list *l, const char *name)
{
	const struct attr *a = attr_find(l, name);

	return a != NULL ? a->value : NULL;
}

int
attr_get_int(const struct attr_list *l, const char *name, long long *out_r)
{
	const struct attr *a = attr_find(l, name);
	uint64_t u;
	int neg;

	/* An embedded NUL would make the text stop early: refuse it. */
	if (a == NULL || strlen(a->value) != a->len)
		return -1;
	neg = a->value[0] == '-';
	if (str_to_u64(
	        a->value + neg, (uint64_t)LLONG_MAX + (uint64_t)neg, &u) < 0)
		return -1;
	*out_r = neg ? (long long)(0 - u) : (long long)u;
	return 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

static const char *
stream_error(enum stream_result r)
{
	static char text[ATTR_ERROR_MAX];

	switch (r) {
	case STREAM_EOF:
		return "connection closed";
	case STREAM_TIMEOUT:
		return "timeout";
	default:
		snprintf(text, sizeof(text), "read error: %s", strerror(errno));
		return text;
	}
}

static int
ms_left(long long deadline)
{
	long long left = deadline - now_ms();

	return left > 0 ? (left < INT_MAX ? (int)left : INT_MAX) : 0;
}

enum stream_result
attr_read(struct stream *st, struct attr_list *l, int timeout_ms,
    const char **error_r)
{
	long long deadline = now_ms() + timeout_ms;
	enum stream_result r;
	struct buf b;
	uint32_t plen;

	buf_init(&b, ATTR_FRAME_MAX);
	r = stream_read_exact(st, &b, ATTR_HEADER_LEN, timeout_ms);
	if (r != STREAM_OK)
		goto fail;
	plen = bytes_get_be32((const unsigned char *)buf_cstr(&b));
	if (plen > ATTR_FRAME_MAX) {
		*error_r = "attribute frame too large";
		errno = EPROTO;
		r = STREAM_ERROR;
		goto done;
	}
	r = stream_read_exact(
	    st, &b, plen, timeout_ms < 0 ? timeout_ms : ms_left(deadline));
	if (r == STREAM_EOF) {
		/* A close inside a frame is a broken peer, not a clean end. */
		*error_r = "truncated attribute frame";
		errno = EPROTO;
		r = STREAM_ERROR;
		goto done;
	}
	if (r != STREAM_OK)
		goto fail;
	if (attr_decode(buf_cstr(&b), plen, l, error_r) < 0) {
		errno = EPROTO;
		r = STREAM_ERROR;
	}
	goto done;
fail:
	*error_r = stream_error(r);
done:
	buf_free(&b);
	return r;
}

/* A frame may be larger than the stream's output buffer: feed it in
 * pieces, flushing in between, all within one deadline. */
enum stream_result
attr_write(struct stream *st, const struct buf *frame, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	enum stream_result r;
	size_t off = 0, n;

	if (frame->len < ATTR_HEADER_LEN)
		msg_panic("attr_write: frame not begun");
	while (off < frame->len) {
		n = st->wbuf.max - st->wbuf.len;
		if (n == 0) {
			r = stream_flush(st,
			    timeout_ms < 0 ? timeout_ms : ms_left(deadline));
			if (r != STREAM_OK)
				return r;
			continue;
		}
		if (n > frame->len - off)
			n = frame->len - off;
		if (stream_write(st, frame->data + off, n) < 0)
			return STREAM_ERROR;
		off += n;
	}
	return stream_flush(
	    st, timeout_ms < 0 ? timeout_ms : ms_left(deadline));
}

int
attr_notice_send(const char *path, const struct buf *frame, int timeout_s,
    const char **error_r)
{
	static char why[256];
	struct timeval tv = {timeout_s, 0};
	struct sockaddr_un sun;
	int fd, ret = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, sizeof(why), "%s: socket path too long", path);
		*error_r = why;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    file_write_all(fd, frame->data, frame->len) < 0)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else
		ret = 0;
	if (fd >= 0)
		close(fd);
	*error_r = why;
	return ret;
}
