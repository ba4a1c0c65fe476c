/* SPDX-License-Identifier: MIT */
/*
 * The pop3d session's mailbox (pop3d_mbox.c), its UIDL format
 * (pop3d_uidl.c) and the names of a maildir it reads (Dovecot's
 * conventions: "BASE:2,FLAGS", ",S=" stored and ",W=" wire sizes in
 * BASE, the arrival time leading BASE).
 */
#ifndef TERN_POP3D_H
#define TERN_POP3D_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

/* Entries read from one of cur/ and new/; more are left for a later
 * session (a client cannot list more in any useful time anyway). */
#define POP3D_MESSAGES_MAX 1000000
/* Longest file name considered a message (NAME_MAX of Linux). */
#define POP3D_NAME_MAX     255

/* Files in the maildir's top directory, beside Dovecot's. */
#define POP3D_LOCK_FILE      "tern-pop3.lock"
#define POP3D_SIZES_FILE     "tern-pop3-sizes"
#define POP3D_RETRIEVED_FILE "tern-pop3-retrieved"

/* The caches are a few dozen bytes per message: anything larger than
 * this is not one of ours and is rebuilt (sizes) or left alone. */
#define POP3D_STATE_FILE_MAX (64 * 1024 * 1024)

/* RFC 2449 EXPIRE counts days; pop3_delete_after is a time. */
#define POP3D_SECONDS_PER_DAY 86400

struct pop3d_msg {
	char *name;             /* the file's name in cur/ (or new/, in_new) */
	size_t base_len;        /* name[0..base_len) is the base, before ':' */
	uint64_t size;          /* on the wire: CRLF lines, before stuffing */
	long long sec;          /* arrival time from the name (sorting) */
	long usec;              /* its "M" microseconds, -1 if none */
	uint32_t uid;           /* IMAP UID when the UIDL format needs it */
	unsigned in_new : 1;    /* could not be moved to cur/ */
	unsigned deleted : 1;   /* DELE, until RSET */
	unsigned retrieved : 1; /* RETR: \Seen and retention at QUIT */
};

struct pop3d_mbox {
	char *path;
	int dirfd, curfd, newfd;
	int lockfd; /* -1: no session lock */
	struct pop3d_msg *msgs;
	size_t count;
	uint32_t uidvalidity;
	/* Sizes computed by reading a file this session, and files whose
	 * size could not be read (S= or the file size stands in). */
	size_t sizes_computed, sizes_unknown;
};

/*
 * Opens the maildir path (created if missing) as the calling user and
 * takes the session lock when lock is set. 0, or -1 with *error_r
 * (static), and *busy_r set when another session holds the lock.
 */
int pop3d_mbox_open(struct pop3d_mbox *mb, const char *path, int lock,
    int *busy_r, const char **error_r);
/*
 * Moves new/ to cur/ (":2," appended, never replacing), reads cur/ and
 * sorts the messages in arrival order as Dovecot's pop3 does. Sizes come
 * from ",W=" of the names, the sizes cache, or one read of the file
 * (then cached). 0, or -1 with *error_r.
 */
int pop3d_mbox_scan(struct pop3d_mbox *mb, const char **error_r);
/*
 * Gives the scanned messages their IMAP UIDs and the mailbox its
 * UIDVALIDITY from dovecot-uidlist (maildir_uidlist_assign: read, or
 * added and written as Dovecot would) and lists them in UID order, as
 * Dovecot's pop3 does. 0, or -1 with *error_r.
 */
int pop3d_mbox_uids(struct pop3d_mbox *mb, const char **error_r);
void pop3d_mbox_close(struct pop3d_mbox *mb);

/*
 * A read-only descriptor of m's file. A name gone since the scan (IMAP
 * or another session changed its flags) is looked up again by its
 * base; -1 with errno ENOENT when the message is gone (expunged).
 */
int pop3d_mbox_open_msg(struct pop3d_mbox *mb, struct pop3d_msg *m);

/*
 * The UPDATE state (RFC 1939 6): unlinks deleted messages (and takes
 * them off maildirsize), adds \Seen to retrieved ones unless
 * no_flag_updates, fsyncs cur/, and with delete_after > 0 appends
 * the retrieved messages to the retention list. *deleted_r: messages
 * removed. 0, or -1 with *error_r (what could be done is done).
 */
int pop3d_mbox_commit(struct pop3d_mbox *mb, int no_flag_updates,
    long long delete_after, time_t now, size_t *deleted_r,
    const char **error_r);

/*
 * Retention (pop3_delete_after): removes from maildir the messages its
 * retention list names that arrived more than max_age seconds before now,
 * and
 * rewrites the list without the messages that are gone. The caller holds
 * the session lock or has none to hold. *removed_r: messages unlinked.
 * 0, or -1 with *error_r.
 */
int pop3d_expire_maildir(const char *maildir, long long max_age, time_t now,
    size_t *removed_r, const char **error_r);
/*
 * pop3d -E: pop3d_expire_maildir on every directory at most
 * POP3D_EXPIRE_DEPTH levels below base that holds a retention list,
 * skipping a maildir whose session lock is held. Never follows a
 * symbolic link. Returns the number of maildirs that failed.
 */
#define POP3D_EXPIRE_DEPTH 4
int pop3d_expire_tree(const char *base, long long max_age, time_t now);

/*
 * Names. pop3d_name_time: the arrival time leading name ("SEC." and the
 * "M<usec>" of the unique part, *usec_r -1 without); 0, or -1 when the
 * name does not start with digits and a '.'. pop3d_name_field: the
 * number of ",<key>=<digits>" in the base; 0, or -1 when absent.
 * pop3d_name_cmp: Dovecot's order (time, microseconds, then the base).
 */
int pop3d_name_time(const char *name, long long *sec_r, long *usec_r);
int pop3d_name_field(const char *name, char key, uint64_t *value_r);
int pop3d_name_cmp(const char *a, const char *b);
/* The name with flag added to its ":2," flags (kept in ASCII order, as
 * Dovecot writes them); NULL if it is there already. Caller frees. */
char *pop3d_name_add_flag(const char *name, char flag);

/*
 * pop3_uidl_format, Dovecot's syntax: %f (%{filename}) the base name,
 * %g (%{guid}) the same for a maildir, %u (%{uid}) the IMAP UID, %v
 * (%{uidvalidity}) the UIDVALIDITY, %% a '%'; each with Dovecot's
 * [-][0]<width> (pad with zeros, or cut) and the L, U, X (hex), R
 * (reverse) modifiers. pop3d_uidl_check: 0 (*needs_uid_r set when %u or
 * %v occur), or -1 with *error_r for what Dovecot's pop3 would refuse or
 * tern cannot give (%m, other modifiers, an unknown variable, an empty
 * result). pop3d_uidl_expand appends the UIDL to out: 0, or -1 when it
 * would not fit (out's max). RFC 1939 7 wants at most 70 characters; as
 * in Dovecot, %f of a long host name gives more, which clients accept.
 */
#define POP3D_UIDL_MAX 1024
int pop3d_uidl_check(
    const char *format, int *needs_uid_r, const char **error_r);
int pop3d_uidl_expand(const char *format, const char *base, size_t base_len,
    uint32_t uid, uint32_t uidvalidity, struct buf *out);

/*
 * The wire form of a message (pop3d_wire.c). pop3d_wire_init: body_lines
 * -1 for RETR, else TOP's line count. pop3d_wire_convert converts the
 * next n stored bytes into out (room for 2n) and returns the bytes of
 * out; once w->done (TOP's end) it takes no more. pop3d_wire_end: what
 * ends the response (the CRLF a last line lacks, and ".\r\n").
 * The wire size of a message (LIST, STAT) is the output of a whole
 * RETR without w->stuffed and the final ".\r\n".
 */
struct pop3d_wire {
	char last;           /* the last byte read ('\n' at the start) */
	int bol;             /* at the start of a line */
	int in_body;         /* past the empty line after the header */
	int done;            /* TOP has sent its lines */
	size_t line_len;     /* bytes of this line so far */
	long long body_left; /* body lines still to send; -1: all */
	uint64_t stuffed;    /* dots added */
};
void pop3d_wire_init(struct pop3d_wire *w, long long body_lines);
size_t pop3d_wire_convert(
    struct pop3d_wire *w, const char *in, size_t n, char *out);
const char *pop3d_wire_end(const struct pop3d_wire *w, size_t *len_r);

#endif
