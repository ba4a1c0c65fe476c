/* SPDX-License-Identifier: MIT */
/*
 * cleanup, run inside the receiving process (smtpd now, pickup for locally
 * submitted mail later): turns one transaction into a queue file in tmp/
 * (envelope records, the Received: header, the unstuffed content), and
 * tells qmgr about messages once they are committed into incoming/. It
 * knows nothing of the SMTP session: what it needs comes in struct
 * cleanup_envelope.
 */
#ifndef TERN_MAIL_CLEANUP_H
#define TERN_MAIL_CLEANUP_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"
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
	int bare; /* a CR or LF was not part of a CRLF pair (cleanup
		   * applies its own cleanup_bare_policy to the content) */
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
#define CLEANUP_STAT_BARE   0x1  /* bare CR or LF, CLEANUP_BARE_REJECT */
#define CLEANUP_STAT_SIZE   0x2  /* over message_size_limit */
#define CLEANUP_STAT_WRITE  0x4  /* the queue file could not be written */
#define CLEANUP_STAT_HEADER 0x8  /* header section over header_size_limit */
#define CLEANUP_STAT_HOPS   0x10 /* more Received: than hopcount_limit */
/* A header check said REJECT: c->reject_text is the reply. */
#define CLEANUP_STAT_REJECT 0x20
/* virtual_alias_maps could not expand a recipient (a table failure, a
 * loop, a limit, a value that is not an address): set by cleanup_open,
 * c->reject_text is the reply (451 4.3.0 or 550). */
#define CLEANUP_STAT_RCPT   0x40

/* What a header check decides about one header (Postfix's actions). */
enum cleanup_header_verdict {
	CLEANUP_HEADER_DUNNO,   /* keep it, look no further */
	CLEANUP_HEADER_IGNORE,  /* delete it from the stored message */
	CLEANUP_HEADER_WARN,    /* keep it, log it with the text */
	CLEANUP_HEADER_REJECT,  /* refuse the message: CLEANUP_STAT_REJECT */
	CLEANUP_HEADER_HOLD,    /* keep the message in hold/: c->hold */
	CLEANUP_HEADER_DISCARD, /* accept but drop the message: c->discard */
};

struct cleanup_header_action {
	enum cleanup_header_verdict verdict;
	/* NULL, or text for the log and, with REJECT, the reply
	 * ("550 5.7.1 TEXT"); read during the call only. */
	const char *text;
};

/*
 * A header check (header_checks): called with each complete logical
 * header of the client's header section, in order: header[0..len) is
 * the field name, the colon, the value and any continuation lines with
 * the line ends between them as stored (CRLF, or a bare LF kept by
 * CLEANUP_BARE_KEEP), without the line end of the last line; header[len]
 * is a NUL, but the value may hold other NULs and 8-bit bytes. The hook
 * fills *action_r, which comes zeroed (DUNNO, no text). The header that
 * cleanup adds (Received:) and the body are not checked; after the
 * first REJECT or DISCARD no further header is.
 */
typedef void cleanup_header_check_fn(void *ctx, const char *header, size_t len,
    struct cleanup_header_action *action_r);

/*
 * What becomes of a CR or LF that is not part of a CRLF in text content
 * (DATA, and BDAT without BODY=BINARYMIME). Whatever the policy, DATA
 * ends only at CRLF.CRLF, and a bare LF or CR never starts a line for
 * the dot-stuffing rules (the SMTP smuggling defence). The first one of
 * a message is logged: "ID: bare <LF> received from host[addr],
 * normalized|rejected|kept".
 */
enum cleanup_bare_policy {
	CLEANUP_BARE_NORMALIZE, /* stored as CRLF (the default) */
	CLEANUP_BARE_REJECT,    /* the message is refused: CLEANUP_STAT_BARE */
	CLEANUP_BARE_KEEP,      /* stored as received */
};

/* One recipient with its DSN parameters (RFC 3461). */
struct cleanup_rcpt {
	const char *addr;
	const char *orcpt; /* "type;address" or NULL */
	unsigned notify;   /* QRCPT_NOTIFY_* mask, 0 = not given */
};

/* What the receiver knows about the transaction when the content starts. */
struct cleanup_envelope {
	const char *sender; /* "" for <> */
	const struct cleanup_rcpt *rcpts;
	int nrcpt;
	const char *client_name;
	const char *client_addr;     /* for the queue file and logs */
	const char *client_rfc_addr; /* for Received: ("IPv6:..." form) */
	const char *helo;
	const char *protocol; /* "SMTP", "ESMTPSA", "UTF8SMTPS" (RFC 3848) */
	const char *body;     /* "7BIT", "8BITMIME", "BINARYMIME" or NULL */
	const char *envid;    /* DSN ENVID, decoded, or NULL */
	const char *ret;      /* "FULL", "HDRS" or NULL */
	int smtputf8;
	const char *tls;       /* "TLSv1.3 with cipher X (256/256 bits)" */
	const char *auth_user; /* SASL login, or NULL */
	int auth_header;       /* name auth_user in Received: */
	/* Submission: add Message-ID: and Date: when the message lacks
	 * them (RFC 6409 8). */
	int add_missing_headers;
	enum cleanup_bare_policy bare_newline;
	/* Decided before the content (access-map HOLD or DISCARD at RCPT
	 * time): as c->hold and c->discard. */
	int hold;
	int discard;

	/* Local submission and requeue (pickup). client_name, client_addr,
	 * client_rfc_addr and helo may be NULL: no such attributes. */
	const char *queue_id; /* the file's ID (tried once), or NULL */
	const char *arrival;  /* "SEC.USEC" to keep, or NULL: now */
	/* Local submission: Received: "by HOST (tern, from userid N)". */
	const char *submit_uid;
	int no_received; /* requeue: the content has its trace already */
	/* With add_missing_headers: add "From: NAME <sender>" (just the
	 * address when NAME is "") when the message has no From:. */
	int add_from;
	const char *from_fullname;
	/* More ATTR records, "name=value", NULL-terminated (or NULL). */
	const char *const *attrs;
};

/* Where the header scanner is in the current line. */
enum cleanup_header_state {
	CLEANUP_HEADER_NAME,  /* a line started: a field name, or the body */
	CLEANUP_HEADER_VALUE, /* after the colon, up to the LF */
	CLEANUP_HEADER_BOL,   /* a header line ended: continued, or the next */
};

/*
 * The client's header section (RFC 5322 2.2), taken one logical header
 * (a field and its continuation lines) at a time, so that each is seen
 * whole before it is stored. The body starts at the first line that is
 * not a field (the empty line, or text without "name:").
 */
struct cleanup_headers {
	int done; /* the body has started */
	enum cleanup_header_state state;
	struct buf buf;     /* the header (or the line) so far, at most
			   * header_size_limit bytes */
	uint64_t section;   /* bytes of the header section so far */
	long long received; /* Received: headers (loop detection) */
	int have_msgid, have_date, have_from;
};

struct cleanup {
	struct qfile_writer w;
	int open; /* w holds a file */
	struct cleanup_data data;
	struct cleanup_headers hdr;
	int add_missing_headers;
	char *add_from; /* the From: header to add when missing, or NULL */
	uint64_t size; /* content bytes, Received: included */
	uint64_t size_limit;
	unsigned status; /* CLEANUP_STAT_* seen so far */
	int raw;         /* BDAT: content as is, no dot-stuffing */
	int binary;      /* raw BINARYMIME: bare CR and LF allowed */
	enum cleanup_bare_policy bare_policy;
	int cr;        /* text content: a CR ended the last input */
	int bare_seen; /* a bare CR or LF was seen (and logged) */

	/* Set by the caller after cleanup_open, before the content: */
	cleanup_header_check_fn *header_check; /* NULL: none */
	void *header_check_ctx;

	/* The outcome besides the status bits. The caller may set hold
	 * or discard itself while the content comes. */
	/* Commit into hold/, not incoming/; no qmgr notice. */
	int hold;
	/* Answer as queued but commit nothing (the tmp file goes with
	 * cleanup_free); nothing more is stored. */
	int discard;
	char *reject_text; /* with CLEANUP_STAT_REJECT: the whole reply */

	/* For log lines: "name[addr]", and " from name[addr]; from=<s>
	 * to=<r> proto=P helo=<h>" as Postfix logs header actions. */
	char *client;
	char *log_context;
};

/*
 * Creates the queue file in tmp/ and writes the envelope and the
 * Received: header. Limits: message_size_limit (the content),
 * header_size_limit (the client's header section: CLEANUP_STAT_HEADER)
 * and hopcount_limit (the client's Received: headers, RFC 5321 6.3; the
 * one cleanup adds is not counted: CLEANUP_STAT_HOPS). Each recipient
 * goes through virtual_alias_maps first (virtual_alias.h): one that was
 * rewritten is replaced by what it expands into, each with the NOTIFY of
 * the original and its ORCPT, or "rfc822;ORIGINAL" when the client gave
 * none. Duplicate recipients (one mailbox in other spellings, addr_fold)
 * are written once, after the expansion. 0, or -1 with *error_r (nothing
 * left to free). A recipient that cannot be expanded gives 0 with
 * c->status = CLEANUP_STAT_RCPT and no file: the caller refuses the
 * message with c->reject_text (the content, if read, is not stored) and
 * calls cleanup_free.
 */
int cleanup_open(struct cleanup *c, const struct cleanup_envelope *env,
    const char **error_r);
/* Feeds DATA bytes; same return as cleanup_data_parse. */
size_t cleanup_feed(struct cleanup *c, const char *in, size_t len);
/* Feeds BDAT bytes (RFC 3030): no dot-stuffing, all are taken. Bare CR
 * and LF follow the envelope's bare_newline policy, except with binary
 * (BODY=BINARYMIME), where any byte is stored as it is. */
void cleanup_feed_raw(
    struct cleanup *c, const char *in, size_t len, int binary);
/* 1 once the end of the DATA content was seen. */
int cleanup_done(const struct cleanup *c);
/*
 * Completes the file (no fsync). Returns the CLEANUP_STAT_* bits; with
 * CLEANUP_STAT_WRITE *error_r says why and *errno_r (may be NULL) holds
 * the errno of the failed write (ENOSPC: a full disk). On 0 the caller
 * commits c->w.fd / c->w.tmp_path (then qfile_writer_committed) into
 * incoming/, or hold/ when c->hold, before cleanup_free; with c->discard
 * it answers as for a queued message and commits nothing.
 */
unsigned cleanup_finish(struct cleanup *c, const char **error_r, int *errno_r);
/* Closes and, unless committed, unlinks the tmp file; frees what c holds.
 * Idempotent, and safe on a zeroed struct. */
void cleanup_free(struct cleanup *c);

/*
 * An RFC 5322 3.3 date-time for when, in local time with its offset
 * ("Tue, 1 Jul 2025 10:00:00 +0200"), into out; CLEANUP_DATE_SIZE bytes
 * always hold it. Also used for the dates of delivery status notices.
 */
#define CLEANUP_DATE_SIZE 64
void cleanup_date(char *out, size_t n, time_t when);

/*
 * The qmgr notice (request=new, queue_id=ID on private/qmgr). Never
 * blocks and never fails the caller: a notice that cannot be sent is
 * dropped (qmgr also scans incoming/), and the next one reconnects.
 */
void cleanup_notify_init(struct event_loop *loop);
void cleanup_notify_qmgr(const char *queue_id);
void cleanup_notify_shutdown(void);

#endif
