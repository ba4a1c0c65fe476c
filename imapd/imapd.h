/* SPDX-License-Identifier: MIT */
/*
 * imapd: one IMAP session after login, shared between the files of the
 * program (imapd.c the loop and the small commands, imapd_select.c the
 * selected state and its untagged updates, imapd_list.c the folder tree,
 * imapd_fetch.c, imapd_search.c, imapd_store.c STORE/COPY/MOVE/EXPUNGE/
 * APPEND/QUOTA, imapd_util.c helpers without I/O, unit-tested alone).
 */
#ifndef TERN_IMAPD_H
#define TERN_IMAPD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/stream.h"
#include "mail/imap_parser.h"
#include "mail/mailbox.h"
#include "mail/maildir.h"

/* Longest text line of a response built with imapd_untagged (the long
 * ones, FETCH and SEARCH, are built in a buf and sent in pieces). */
#define IMAPD_LINE_MAX 8192
/* A response (one FETCH of one message, one SEARCH result) is built in a
 * buf of at most this many bytes beyond the message itself. */
#define IMAPD_RESP_SLACK (1024 * 1024)
/* A LIST pattern longer than this matches nothing (names are at most
 * MAILBOX_NAME_MAX octets; mUTF-7 makes them longer on the wire). */
#define IMAPD_PATTERN_MAX (4 * MAILBOX_NAME_MAX)

enum imapd_state {
	IMAPD_STATE_AUTH,
	IMAPD_STATE_SELECTED,
	IMAPD_STATE_LOGOUT,
};

/* ENABLE (RFC 5161) and what a command enabled implicitly. */
#define IMAPD_EN_REV2      0x01
#define IMAPD_EN_CONDSTORE 0x02
#define IMAPD_EN_QRESYNC   0x04
#define IMAPD_EN_UTF8      0x08

struct imapd_session {
	enum imapd_state state;
	struct stream st;
	struct imap_parser *parser;
	struct mailbox_user *user;
	struct mailbox *box;
	struct maildir_quota quota;
	int readonly;
	int timeout_ms;
	int broken; /* the client is gone or too slow: no more output */
	/* The selected folder was deleted under the session: BYE sent. */
	int box_deleted;
	int bad_commands;
	unsigned enabled;
	/* The command being run: its tag and how a sync may report. */
	const char *tag;
	unsigned sync_flags;
	/* QRESYNC: UIDs one sync expunged, sent as one VANISHED. */
	uint32_t *vanished;
	size_t vanished_count, vanished_cap;
	/* SEARCHRES (RFC 5182): the saved result as UIDs. */
	uint32_t *saved;
	size_t saved_count;
	/* Scratch for responses. */
	struct buf resp;
	uint64_t fetched_bytes;
	/* Message files FETCH opened: metadata from the cache opens none
	 * (logged at logout, and tested). */
	unsigned long files_opened;
};

struct imapd_cmd {
	const char *tag, *name;
	const struct imap_arg *args;
	size_t count;
	int uid; /* UID FETCH and the like */
};

/* The flags a response shows of a message: IMAP4rev2 has no \Recent
 * (RFC 9051 2.3.2, Appendix E). */
#define IMAPD_SHOWN_FLAGS(s, f)                                               \
	((uint8_t)((s)->enabled & IMAPD_EN_REV2 ? (f) & ~MAILBOX_F_RECENT      \
	                                        : (f)))

/* ---- imapd.c: the session ---- */

/*
 * Serves one client as user on maildir (parameters loaded): the greeting
 * (the tagged OK of $TERN_SESSION_TAG's login, else PREAUTH, after
 * $TERN_SESSION_INPUT's pipelined bytes), then commands until LOGOUT,
 * the end of input or an error. The client is fd, through tr (with
 * tr_ctx) unless NULL; fd is closed and tr_ctx freed. 0, or 1 when the
 * mailbox could not be opened.
 */
int imapd_run(const char *user, const char *maildir, int fd,
    const struct stream_transport *tr, void *tr_ctx);

/* ---- imapd.c: output ---- */

/* Queues bytes to the client, pushing them out past a threshold. 0 or
 * -1 (the connection is broken). */
int imapd_send(struct imapd_session *s, const void *data, size_t len);
/* "* text\r\n". */
void imapd_untagged(struct imapd_session *s, const char *fmt, ...)
    MTA_PRINTF(2, 3);
/* The tagged answer of the command: a sync first (untagged updates)
 * when a folder is selected and status is not BAD. */
void imapd_tagged(struct imapd_session *s, const char *status,
    const char *fmt, ...) MTA_PRINTF(3, 4);
/* The NO for a mailbox_* failure, with its response code. */
void imapd_tagged_error(struct imapd_session *s, int err, const char *text);
void imapd_log(int priority, const char *fmt, ...) MTA_PRINTF(2, 3);
/* Pushes everything queued; -1 if the client is gone. */
int imapd_flush(struct imapd_session *s);
/* Waits for client input (and extra_fd, if >= 0, readable: STREAM_AGAIN
 * with *extra_ready_r) at most timeout_ms, flushing output first. */
int imapd_wait_input(struct imapd_session *s, int extra_fd, int timeout_ms,
    int *extra_ready_r);
/* The capability list, without "* CAPABILITY ". */
const char *imapd_capabilities(void);

/* ---- imapd_select.c ---- */
void imapd_cmd_select(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_close(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_unselect(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_idle(struct imapd_session *s, struct imapd_cmd *c);
/* Reports changes to the client with s->sync_flags. */
void imapd_sync(struct imapd_session *s, unsigned flags);
void imapd_close_box(struct imapd_session *s);
/* "* VANISHED (EARLIER) ..." for the UIDs of set (a UID set) below
 * UIDNEXT that are not in the view (RFC 7162 3.2.5.1, 3.2.6). */
void imapd_send_vanished_earlier(
    struct imapd_session *s, const struct imap_seqset *set);
/* "* FLAGS" and "* OK [PERMANENTFLAGS ...]". */
void imapd_send_flags(struct imapd_session *s);

/* ---- imapd_list.c ---- */
void imapd_cmd_list(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_lsub(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_status(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_create(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_delete(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_rename(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_subscribe(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_unsubscribe(struct imapd_session *s, struct imapd_cmd *c);
/* The folder name argument as UTF-8 (mUTF-7 decoded unless UTF-8 is
 * enabled, INBOX in capitals) into out; 0, or -1 after a BAD/NO. */
int imapd_arg_mailbox(struct imapd_session *s, const struct imap_arg *arg,
    struct buf *out);
/* Appends name as the client wants it (mUTF-7 or UTF-8), quoted. */
int imapd_append_mailbox(struct imapd_session *s, struct buf *out,
    const char *name);

/* ---- imapd_fetch.c ---- */
void imapd_cmd_fetch(struct imapd_session *s, struct imapd_cmd *c);

/* ---- imapd_search.c ---- */
void imapd_cmd_search(struct imapd_session *s, struct imapd_cmd *c);
/*
 * The search keys args[0..count) (RFC 9051 6.4.4 search-key list, no
 * CHARSET) evaluated on the view, for SORT and THREAD too: 1 with the
 * matching sequence numbers ascending in *hits_r (to free), whether a
 * MODSEQ key was given and the highest modseq of the hits; 0 after a
 * BAD sent for malformed keys.
 */
int imapd_search_run(struct imapd_session *s, const struct imap_arg *args,
    size_t count, uint32_t **hits_r, size_t *nhits_r, int *modseq_used_r,
    uint64_t *maxmod_r);

/* ---- imapd_sort.c, imapd_thread.c (RFC 5256, RFC 5267 ESORT) ---- */
void imapd_cmd_sort(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_thread(struct imapd_session *s, struct imapd_cmd *c);

/* ---- imapd_store.c ---- */
void imapd_cmd_store(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_copy(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_move(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_expunge(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_append(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_getquota(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_getquotaroot(struct imapd_session *s, struct imapd_cmd *c);
void imapd_cmd_setquota(struct imapd_session *s, struct imapd_cmd *c);

/* ---- imapd_util.c: no I/O ---- */

/* Appends to a response buffer sized for what it holds (a line, or a
 * message's worth): a full buffer shows as a short response, which the
 * callers that can overflow check by the result of their last append. */
void imapd_bputs(struct buf *b, const char *s);
void imapd_bputc(struct buf *b, char c);
void imapd_bappend(struct buf *b, const void *data, size_t len);
void imapd_bprintf(struct buf *b, const char *fmt, ...) MTA_PRINTF(2, 3);

/* A set of sequence numbers of the view, ascending, without repeats. */
struct imapd_seqs {
	uint32_t *seqs;
	size_t count;
};
void imapd_seqs_free(struct imapd_seqs *set);
/*
 * Resolves a sequence set (uid: of UIDs; "$": the saved result) against
 * the view. 1, or 0 when malformed (or, without uid, a number beyond the
 * view: RFC 9051 6.4.*: BAD).
 */
int imapd_seqs_resolve(struct imapd_session *s, const char *str, int uid,
    struct imapd_seqs *out);
/* The first sequence number whose UID is >= uid (count+1 if none). */
uint32_t imapd_seq_lower(struct mailbox *box, uint32_t uid);

/* Appends "\Seen \Flagged kw1" (no parentheses). */
int imapd_append_flags(struct buf *out, struct mailbox *box, uint8_t flags,
    uint32_t keywords);
/* A flag list (or one flag): 1 with the system flags and keywords, 0
 * after a malformed one (*error_r), or the mailbox error (MAILBOX_ERR_
 * LIMIT: the 27th keyword) when a keyword could not be created. Keywords
 * are created when create, else unknown ones are ignored (they match
 * nothing). */
int imapd_parse_flags(struct mailbox *box, const struct imap_arg *arg,
    int create, uint8_t *flags_r, uint32_t *keywords_r, int *created_r,
    const char **error_r);
/* 1 if the system flag name (\Seen) is known, with its bit. */
int imapd_flag_bit(const char *name, size_t len, uint8_t *bit_r);

/* Ends of a stored header: the offset of the body (after the blank
 * line), or len when there is no blank line. */
size_t imapd_header_end(const char *msg, size_t len);
/* Copies [src, src+len) to dst, which has room for 2 * len, with each
 * LF that no CR precedes made CRLF (prev_cr: the octet before src is a
 * CR); the length written. */
size_t imapd_crlf_copy(char *dst, const char *src, size_t len, int prev_cr);
/* The octets imapd_crlf_copy adds to [src, src+len): its bare LFs. */
size_t imapd_crlf_extra(const char *src, size_t len, int prev_cr);
/* The next header field of [*pos, len): its name and whole unfolded
 * extent; 1, or 0 at the end. */
int imapd_header_next(const char *hdr, size_t len, size_t *pos,
    const char **name_r, size_t *name_len_r, const char **value_r,
    size_t *value_len_r, size_t *field_start_r);
/* The date of an RFC 5322 Date: value as midnight UTC of its day as
 * written: 1, or 0 when unparsable. */
int imapd_rfc822_day(const char *s, size_t len, int64_t *day_r);
/* Case-insensitive (ASCII) substring search. */
int imapd_contains(const char *hay, size_t hlen, const char *needle,
    size_t nlen);
/* Pattern matching of LIST (RFC 3501 6.3.8): '*' anything, '%' anything
 * but the separator. 1 if name matches. */
int imapd_list_match(const char *pattern, const char *name, char sep);

/* ---- imapd_cache.c: message files read once, the header cache ---- */

/* A message file read into memory the session reuses from message to
 * message (no per-message map or allocation). */
struct imapd_msgbuf {
	char *data; /* NUL after len */
	size_t len, cap;
	size_t hdr_len;  /* the header, its blank line included */
	int complete;    /* the whole file is in */
};
/* Reads the file (the header alone when header_only: complete stays 0
 * if more follows), at most max octets: 0, -1 (I/O, too large). */
int imapd_msgbuf_read(int fd, struct imapd_msgbuf *mb, int header_only,
    size_t max);
void imapd_msgbuf_free(struct imapd_msgbuf *mb);

/* Fields of the MAILBOX_CACHE_HEADERS record. */
enum imapd_hc {
	IMAPD_HC_FROM,
	IMAPD_HC_TO,
	IMAPD_HC_CC,
	IMAPD_HC_BCC,
	IMAPD_HC_SUBJECT,
	IMAPD_HC_DATE, /* the first Date: value, unfolded, not decoded */
	IMAPD_HC_COUNT
};
/* The decoded field a header name is kept as, -1 if none (Date: is kept
 * for SENT* only, not for HEADER DATE). */
int imapd_hc_field(const char *name, size_t len);
/* The record of a header [hdr, hdr+len) into out (reset first). */
void imapd_hc_build(struct buf *out, struct buf *scratch, const char *hdr,
    size_t len);
/* 1 if rec is a record of this format. */
int imapd_hc_valid(const char *rec, size_t len);
/* The next field occurrence from *pos (0 at first): 1, 0 at the end. */
int imapd_hc_next(const char *rec, size_t len, size_t *pos, int *field_r,
    const char **value_r, size_t *vlen_r);

#endif
