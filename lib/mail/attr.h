/* SPDX-License-Identifier: MIT */
/*
 * The IPC encoding between tern daemons over UNIX sockets: named,
 * length-prefixed attributes, no free-form parsing. A frame is
 *
 *   u32 payload length (big endian, <= ATTR_FRAME_MAX)
 *   payload: { u8 name length (1..ATTR_NAME_MAX), name bytes,
 *              u32 value length (big endian), value bytes }*
 *
 * Names are [a-z0-9_]. Values are binary-safe; a name may repeat (e.g. one
 * "rcpt" per recipient) and order is kept. A decoder rejects any length
 * that runs past the payload, a bad name, or a frame over the maximum.
 */
#ifndef TERN_ATTR_H
#define TERN_ATTR_H

#include <stddef.h>
#include "base/buf.h"
#include "base/stream.h"

#define ATTR_FRAME_MAX	(4u * 1024 * 1024)
#define ATTR_NAME_MAX	64
#define ATTR_HEADER_LEN 4

struct attr {
	const char *name;	/* NUL-terminated, points into the list */
	const char *value;	/* NUL-terminated copy (may contain NULs) */
	size_t len;		/* value length without the added NUL */
};

struct attr_list {
	struct attr *v;
	int count;
	int alloc;
	char *store;		/* owns names and values */
};

/* Building: attr_frame_begin reserves the header, attr_frame_end fills it.
 * Puts return 0 or -1 when the frame would exceed the buffer's max or
 * ATTR_FRAME_MAX, or the name is invalid. */
void attr_frame_begin(struct buf *frame);
int attr_put(struct buf *frame, const char *name, const void *value,
    size_t len) MTA_NODISCARD;
int attr_put_str(struct buf *frame, const char *name, const char *value) MTA_NODISCARD;
int attr_put_int(struct buf *frame, const char *name, long long value) MTA_NODISCARD;
int attr_frame_end(struct buf *frame) MTA_NODISCARD;

void attr_list_init(struct attr_list *l);
void attr_list_free(struct attr_list *l);
/* Decodes one payload (without header) into l (reset first). 0 or -1. */
int attr_decode(const void *payload, size_t len, struct attr_list *l,
    const char **error_r);
/*
 * Incremental: if data holds a complete frame, decodes it, sets
 * *consumed_r and returns 1; returns 0 when more bytes are needed, -1 on a
 * malformed or over-size frame.
 */
int attr_decode_frame(const void *data, size_t len, size_t *consumed_r,
    struct attr_list *l, const char **error_r);
/* First value of name, or NULL. */
const char *attr_get(const struct attr_list *l, const char *name);
/* First attribute of name, or NULL: its len tells a value with a NUL
 * byte inside (which attr_get would cut short) from a plain one. */
const struct attr *attr_find(const struct attr_list *l, const char *name);
/* 0 and *out_r if present and a decimal number (leading '-' allowed). */
int attr_get_int(const struct attr_list *l, const char *name, long long *out_r);

/*
 * Non-blocking: takes one frame out of what st has buffered, collecting
 * a frame larger than the stream's buffer in acc. acc's max bounds every
 * frame, header included, however its bytes arrive: one announcing more
 * is refused as soon as its header is seen. 1 with l filled, 0 when more
 * input is needed, -1 for a malformed or over-size frame.
 */
int attr_frame_take(struct stream *st, struct buf *acc, struct attr_list *l,
    const char **error_r);
/*
 * Begins a reply to req: the frame starts with req's "id" attribute
 * (attr_client.h), when it has one. 0 or -1 (frame too small).
 */
int attr_reply_begin(struct buf *frame, const struct attr_list *req) MTA_NODISCARD;

/* Blocking I/O with a deadline over a stream. */
enum stream_result attr_read(struct stream *st, struct attr_list *l,
    int timeout_ms, const char **error_r);
/* Writes and flushes a finished frame. STREAM_OK or the failure. */
enum stream_result attr_write(struct stream *st, const struct buf *frame,
    int timeout_ms);

/*
 * Blocking, for commands and single-connection agents: connects to the
 * UNIX socket path, writes frame (a notice: no reply is read) within
 * timeout_s seconds, closes. The caller runs as whoever may follow path
 * (never root inside the queue). 0, or -1 with *error_r.
 */
int attr_notice_send(const char *path, const struct buf *frame,
    int timeout_s, const char **error_r);

#endif
