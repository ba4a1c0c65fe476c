/* SPDX-License-Identifier: MIT */
/*
 * smtpd's in-process cleanup: turns one SMTP transaction into a queue file
 * in tmp/ (envelope records, the Received: header, the unstuffed content),
 * and tells qmgr about messages once they are committed into incoming/.
 */
#ifndef TERN_SMTPD_CLEANUP_H
#define TERN_SMTPD_CLEANUP_H

#include <stddef.h>
#include <stdint.h>
#include "base/event.h"
#include "mail/qfile.h"

/* Where the DATA parser is between two bytes (RFC 5321 4.5.2). */
enum cleanup_data_state {
	CLEANUP_DATA_BOL,    /* at the start of a line (after CRLF) */
	CLEANUP_DATA_TEXT,   /* inside a line */
	CLEANUP_DATA_CR,     /* a CR ended the last input, not yet emitted */
	CLEANUP_DATA_DOT,    /* a leading dot, dropped (stuffing or end) */
	CLEANUP_DATA_DOT_CR, /* leading dot and CR: the end if LF follows */
	CLEANUP_DATA_END,    /* CRLF.CRLF seen */
};

struct cleanup_data {
	enum cleanup_data_state state;
	int bare; /* a CR or LF was not part of a CRLF pair */
};

typedef void cleanup_emit_fn(void *ctx, const char *data, size_t len);

/* Resets p to the start of a message body (just after the DATA line). */
void cleanup_data_init(struct cleanup_data *p);
/*
 * Parses message bytes as they arrive: removes dot-stuffing and stops
 * right after the CRLF.CRLF end marker (the only end: a bare LF or CR
 * never ends or starts a line, it only sets p->bare). Every content byte
 * (CRLF kept, end marker excluded) is passed to emit, in runs. Returns the
 * number of bytes consumed: all of len, or fewer when the end was reached
 * (p->state == CLEANUP_DATA_END; the rest belongs to the next command).
 */
size_t cleanup_data_parse(struct cleanup_data *p, const char *in, size_t len,
    cleanup_emit_fn *emit, void *ctx);

/* cleanup_finish() result bits; 0 means the file is ready to commit. */
#define CLEANUP_STAT_BARE  0x1 /* bare CR or LF in the content */
#define CLEANUP_STAT_SIZE  0x2 /* over message_size_limit */
#define CLEANUP_STAT_WRITE 0x4 /* the queue file could not be written */

/* What smtpd knows about the transaction when DATA starts. */
struct cleanup_envelope {
	const char *sender; /* "" for <> */
	char *const *rcpts;
	int nrcpt;
	const char *client_name;
	const char *client_addr;     /* for the queue file and logs */
	const char *client_rfc_addr; /* for Received: ("IPv6:..." form) */
	const char *helo;
	const char *protocol; /* "SMTP" or "ESMTP" */
	const char *body;     /* "7BIT", "8BITMIME" or NULL */
};

struct cleanup {
	struct qfile_writer w;
	int open; /* w holds a file */
	struct cleanup_data data;
	uint64_t size; /* content bytes, Received: included */
	uint64_t size_limit;
	unsigned status; /* CLEANUP_STAT_* seen so far */
};

/*
 * Creates the queue file in tmp/ and writes the envelope and the
 * Received: header; the limit is message_size_limit. 0, or -1 with
 * *error_r (nothing left to free).
 */
int cleanup_open(struct cleanup *c, const struct cleanup_envelope *env,
    const char **error_r);
/* Feeds message bytes; same return as cleanup_data_parse. */
size_t cleanup_feed(struct cleanup *c, const char *in, size_t len);
/* 1 once the end of the data was seen. */
int cleanup_done(const struct cleanup *c);
/*
 * Completes the file (no fsync). Returns the CLEANUP_STAT_* bits; with
 * CLEANUP_STAT_WRITE *error_r says why. On 0 the caller commits c->w.fd /
 * c->w.tmp_path (then qfile_writer_committed) before cleanup_free.
 */
unsigned cleanup_finish(struct cleanup *c, const char **error_r);
/* Closes and, unless committed, unlinks the tmp file. NULL-safe, idempotent. */
void cleanup_free(struct cleanup *c);

/*
 * The qmgr notice (request=new, queue_id=ID on private/qmgr). Never
 * blocks and never fails the caller: a notice that cannot be sent is
 * dropped (qmgr also scans incoming/), and the next one reconnects.
 */
void cleanup_notify_init(struct event_loop *loop);
void cleanup_notify_qmgr(const char *queue_id);
void cleanup_notify_shutdown(void);

#endif
