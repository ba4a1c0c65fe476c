/* SPDX-License-Identifier: MIT */
/*
 * The SMTP client's view of a server reply (RFC 5321 4.2, 4.5.3.1.5):
 * one or more lines "NNN-text" ending with "NNN text", parsed one line
 * at a time by a pure parser (smtp_reply_feed, fuzzed) or read whole
 * from a stream under one deadline (smtp_reply_read); the RFC 3463
 * enhanced status code of the first line; and the EHLO keywords of a
 * 250 reply to EHLO (RFC 5321 4.1.1.1, with the extensions the
 * delivery agent uses).
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"
#include "base/stream.h"

/* RFC 5321 4.5.3.1.5 allows 512 bytes with the CRLF; a longer line than
 * this means a broken peer. */
#define SMTP_REPLY_LINE_MAX   2048
/* A multi-line reply that never ends is cut here. */
#define SMTP_REPLY_LINES_MAX  100
/* r->text is cut near this length (then "..." follows). */
#define SMTP_REPLY_TEXT_MAX   1024
/* Room for "X.YYY.ZZZ" (RFC 3463: 1*3digit subject and detail). */
#define SMTP_REPLY_DSN_SIZE   16
/* The error text of a bad line: a reason and the line, sanitized. */
#define SMTP_REPLY_ERROR_SIZE 160

/*
 * Results. smtp_reply_feed returns MORE, OK (the reply is complete) or
 * BAD; smtp_reply_read returns anything but MORE.
 */
enum smtp_reply_status {
	SMTP_REPLY_OK = 0, /* a complete reply */
	SMTP_REPLY_MORE,   /* feed: a continuation line; feed the next */
	SMTP_REPLY_BAD,    /* not an SMTP reply; *error_r says why */
	SMTP_REPLY_TIMEOUT,
	SMTP_REPLY_EOF,     /* connection closed, also in mid-reply */
	SMTP_REPLY_TOOLONG, /* a line over SMTP_REPLY_LINE_MAX */
	SMTP_REPLY_ERROR,   /* read error; errno is set */
};

struct smtp_reply {
	int code; /* 200..599 once complete; that of the first line */
	/* The enhanced status code "X.Y.Z" of the first line if it had
	 * one whose class digit equals the first digit of code, else "". */
	char dsn[SMTP_REPLY_DSN_SIZE];
	/*
	 * The whole reply for logs and DSNs: "550 5.1.1 <a@b>: unknown",
	 * the code, then each line's text joined by " " (a continuation
	 * line's repeat of the enhanced status code left out), control
	 * and 8-bit bytes replaced by '?', cut after about
	 * SMTP_REPLY_TEXT_MAX bytes with "...".
	 */
	struct buf text;
	int nlines;    /* lines fed so far */
	int done;      /* 1 after OK, -1 after BAD: reset before feeding */
	int truncated; /* text was cut */
	/* Each line's text after "NNN-" or "NNN " as received (for the
	 * EHLO keywords), NUL-terminated, one after the other in lines;
	 * line_off[i] is where line i starts. */
	struct buf lines;
	size_t line_off[SMTP_REPLY_LINES_MAX];
	struct buf line; /* smtp_reply_read's line buffer */
	char error[SMTP_REPLY_ERROR_SIZE];
};

void smtp_reply_init(struct smtp_reply *r);
/* Empties r for the next reply (keeps its memory). */
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/*
 * The pure parser step: one line without its CRLF (len bytes; NULs and
 * any byte allowed). Returns SMTP_REPLY_MORE after a continuation line
 * ("NNN-..."), SMTP_REPLY_OK after the last line ("NNN ..." or "NNN"
 * alone), or SMTP_REPLY_BAD with *error_r (text in r, valid until the
 * next reset) starting with one of "malformed reply line" (not three
 * digits, the first 2 to 5, then ' ', '-' or the end), "reply code
 * changed inside a multi-line reply", "reply has too many lines" (over
 * SMTP_REPLY_LINES_MAX) or "reply line too long" (over
 * SMTP_REPLY_LINE_MAX). After OK or BAD, smtp_reply_reset must come
 * before the next feed (feeding a finished reply is a bug: panic).
 */
enum smtp_reply_status smtp_reply_feed(
    struct smtp_reply *r, const char *line, size_t len, const char **error_r);

/*
 * Blocking: resets r and reads one complete reply from st, with one
 * deadline of timeout_ms for all its lines (each stream_read_line gets
 * the time left). A line may end in LF alone. Returns SMTP_REPLY_OK,
 * or TIMEOUT, EOF (the peer closed, also in mid-reply), TOOLONG, BAD,
 * ERROR (errno set), each with *error_r, a short reason (static, or in
 * r until the next reset) for the log and the DSN. After anything but
 * OK the session is out of step with the peer: the caller ends it.
 */
enum smtp_reply_status smtp_reply_read(struct stream *st, struct smtp_reply *r,
    int timeout_ms, const char **error_r);

/* Line i's text after the code and separator, 0 <= i < r->nlines (""
 * for "250" alone); it ends at a NUL the peer sent, if any. */
const char *smtp_reply_line(const struct smtp_reply *r, int i);

/*
 * EHLO keywords (RFC 5321 4.1.1.1). These are the client's flags,
 * named apart from smtp_param.h's SMTP_EXT_* (what smtpd offers), as a
 * delivery agent includes both.
 */
#define SMTP_EHLO_PIPELINING          0x001 /* RFC 2920 */
#define SMTP_EHLO_SIZE                0x002 /* RFC 1870 */
#define SMTP_EHLO_8BITMIME            0x004 /* RFC 6152 */
#define SMTP_EHLO_SMTPUTF8            0x008 /* RFC 6531 */
#define SMTP_EHLO_DSN                 0x010 /* RFC 3461 */
#define SMTP_EHLO_CHUNKING            0x020 /* RFC 3030 */
#define SMTP_EHLO_BINARYMIME          0x040 /* RFC 3030 */
#define SMTP_EHLO_STARTTLS            0x080 /* RFC 3207 */
#define SMTP_EHLO_AUTH                0x100 /* RFC 4954 */
#define SMTP_EHLO_ENHANCEDSTATUSCODES 0x200 /* RFC 2034 */

/* Bytes of the mechanism list, with its NUL. */
#define SMTP_EHLO_AUTH_SIZE 256
/* RFC 4422 3.1: a mechanism name is at most 20 characters. */
#define SMTP_EHLO_MECH_MAX  20

struct smtp_ehlo {
	unsigned ext;      /* SMTP_EHLO_* */
	uint64_t size_max; /* "SIZE n"; 0: no number (or not valid) */
	/* SASL mechanisms, upper case, space-separated, each once, from
	 * "AUTH a b" and the old "AUTH=a b"; names that are not RFC 4422
	 * mechanism names, or do not fit, are left out. */
	char auth[SMTP_EHLO_AUTH_SIZE];
};

/*
 * Fills e from a complete 250 reply to EHLO: every line but the first
 * (the server's name and greeting) is a keyword and its parameters,
 * compared case-insensitively; unknown keywords are ignored. Any other
 * code leaves e empty (ext 0).
 */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);
/* 1 if the server offered SASL mechanism mech (case-insensitive). */
int smtp_ehlo_has_auth(const struct smtp_ehlo *e, const char *mech);

#endif
