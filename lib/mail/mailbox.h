/* SPDX-License-Identifier: MIT */
/*
 * A user's mail store as imapd sees it: Maildir++ folders in the layout
 * Dovecot 2.3 uses by default, so that an admin can switch between tern
 * and Dovecot on the same maildirs in either direction and clients keep
 * their UIDs, flags and keywords:
 *
 *   ROOT/                 INBOX (cur/ new/ tmp/), dovecot-uidlist,
 *                         dovecot-keywords, subscriptions, maildirsize
 *   ROOT/.Sent/           the folder "Sent" (same layout, plus an empty
 *                         "maildirfolder" file, as Maildir++ wants)
 *   ROOT/.Archive.2026/   "Archive.2026": '.' is the hierarchy separator
 *                         (Dovecot's default for Maildir++); the parent
 *                         "Archive" exists only if .Archive/ does (else
 *                         it is listed \NonExistent / \NoSelect)
 *
 * Folder names are UTF-8 here; on disk they are modified UTF-7, as
 * Dovecot writes them. "INBOX" is case-insensitive. Message flags live
 * in the file names (":2," then the letters in ASCII order: D draft,
 * F flagged, P passed, R replied, S seen, T deleted; 'a'..'z' keywords,
 * numbered by the folder's dovecot-keywords file); UIDs in the folder's
 * dovecot-uidlist (maildir_uidlist.h).
 *
 * tern's own per-folder index (files named tern.index*, which Dovecot
 * ignores) keeps uid, flags, keywords, size, internal date and modseq of
 * each message, a log of changes that sessions read from where they last
 * were (so a sync costs O(changes), not O(messages), when only tern
 * sessions changed the folder), and a cache of computed ENVELOPE /
 * BODYSTRUCTURE. A change made by anything else (local delivery, pop3d,
 * Dovecot, a user's shell) shows in the mtimes of new/ and cur/ and
 * costs one directory scan.
 *
 * Every function acts as the calling identity (the mailbox owner: imapd
 * runs as that uid); nothing here follows a symbolic link.
 *
 * Errors: functions return 0 (or what they document) on success and a
 * negative enum mailbox_error on failure, with *error_r a text for the
 * client's NO (never a path of another user: it is the user's own
 * store) or for the log.
 */
#ifndef TERN_MAILBOX_H
#define TERN_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/maildir.h"

#define MAILBOX_SEP '.'
#define MAILBOX_NAME_MAX 512      /* octets of a UTF-8 name */
#define MAILBOX_DEPTH_MAX 16      /* levels of a name */
#define MAILBOX_FOLDERS_MAX 10000 /* folders per user */
#define MAILBOX_KEYWORDS_MAX 26   /* Maildir keyword letters a..z */
#define MAILBOX_KEYWORD_LEN_MAX 128

/* The answer's IMAP response code (RFC 5530) follows from the error. */
enum mailbox_error {
	MAILBOX_ERR_TEMP = -1,      /* [SERVERBUG] / [UNAVAILABLE]: I/O */
	MAILBOX_ERR_NONEXISTENT = -2,
	MAILBOX_ERR_EXISTS = -3,    /* [ALREADYEXISTS] */
	MAILBOX_ERR_NOPERM = -4,    /* e.g. deleting INBOX */
	MAILBOX_ERR_BADNAME = -5,   /* [CANNOT]: bad UTF-8, empty level,
				     * too long or deep, '/' or a name
				     * Maildir++ cannot hold */
	MAILBOX_ERR_LIMIT = -6,     /* [LIMIT]: folders, keywords */
	MAILBOX_ERR_OVERQUOTA = -7, /* [OVERQUOTA] */
	MAILBOX_ERR_INUSE = -8,     /* [INUSE]: a lock stayed taken */
	MAILBOX_ERR_EXPUNGED = -9,  /* [EXPUNGEISSUED]: the file is gone */
	MAILBOX_ERR_MODIFIED = -10, /* CONDSTORE UNCHANGEDSINCE failed */
};

/* System flags (IMAP); MAILBOX_F_RECENT is per view, never stored. */
#define MAILBOX_F_ANSWERED 0x01
#define MAILBOX_F_FLAGGED  0x02
#define MAILBOX_F_DELETED  0x04
#define MAILBOX_F_SEEN     0x08
#define MAILBOX_F_DRAFT    0x10
#define MAILBOX_F_RECENT   0x20
#define MAILBOX_F_STORED   0x1f

/* SPECIAL-USE (RFC 6154) of a folder, from its name: "Sent", "Drafts",
 * "Trash", "Junk", "Archive" (the folders created on first login). */
#define MAILBOX_USE_SENT    0x01
#define MAILBOX_USE_DRAFTS  0x02
#define MAILBOX_USE_TRASH   0x04
#define MAILBOX_USE_JUNK    0x08
#define MAILBOX_USE_ARCHIVE 0x10

struct mailbox_user;

/*
 * Opens the store at root (TERN_SESSION_MAILDIR), creating root and
 * INBOX when missing, and on the first open (no "subscriptions" file
 * yet) the special-use folders, subscribed. quota: the user's limits
 * (NULL: none), kept in maildirsize as local delivery keeps it.
 */
int mailbox_user_open(const char *root, const struct maildir_quota *quota,
    struct mailbox_user **user_r, const char **error_r);
void mailbox_user_close(struct mailbox_user **user_r);

/* ---- the folder tree ---- */

/* Attributes of a listed folder (LIST-EXTENDED, CHILDREN, SPECIAL-USE). */
#define MAILBOX_LIST_NOSELECT     0x01 /* a parent with no folder of its own */
#define MAILBOX_LIST_NONEXISTENT  0x02 /* subscribed but gone, or a parent */
#define MAILBOX_LIST_CHILDREN     0x04
#define MAILBOX_LIST_NOCHILDREN   0x08
#define MAILBOX_LIST_SUBSCRIBED   0x10
#define MAILBOX_LIST_NOINFERIORS  0x20

struct mailbox_info {
	char *name;          /* UTF-8; "INBOX" for the inbox */
	unsigned attrs;      /* MAILBOX_LIST_* */
	unsigned special_use; /* MAILBOX_USE_* */
};

/* Every folder and every subscription, sorted by name (INBOX first), with
 * the parents that exist only as levels of a deeper name. The session
 * matches LIST / LSUB patterns itself. Caller frees with
 * mailbox_list_free. */
int mailbox_list(struct mailbox_user *user, struct mailbox_info **infos_r,
    size_t *count_r, const char **error_r);
void mailbox_list_free(struct mailbox_info *infos, size_t count);

int mailbox_create(struct mailbox_user *user, const char *name,
    const char **error_r);
/* Refuses INBOX (MAILBOX_ERR_NOPERM), and a folder with children
 * (MAILBOX_ERR_NOPERM "has children": Maildir++ has no folder without
 * messages of its own), as Dovecot's Maildir++ layout does. */
int mailbox_delete(struct mailbox_user *user, const char *name,
    const char **error_r);
/* Renames the folder and its children. Renaming INBOX moves all of its
 * messages to a new folder and leaves INBOX empty (RFC 3501 6.3.5). */
int mailbox_rename(struct mailbox_user *user, const char *from,
    const char *to, const char **error_r);
/* Dovecot's "subscriptions" file (written atomically). A name need not
 * exist. */
int mailbox_subscribe(struct mailbox_user *user, const char *name,
    int subscribe, const char **error_r);

struct mailbox_status {
	uint32_t messages;
	uint32_t recent;
	uint32_t unseen;      /* messages without \Seen */
	uint32_t first_unseen; /* sequence number of the first, 0 if none
				* (views only) */
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint64_t highestmodseq;
	uint64_t size;        /* RFC 8438 STATUS SIZE: sum of sizes */
	uint32_t deleted;     /* messages with \Deleted (RFC 9051 STATUS) */
};

/* STATUS of a folder that need not be open, from its index when it is
 * up to date (no message file is read). */
int mailbox_status_get(struct mailbox_user *user, const char *name,
    struct mailbox_status *status_r, const char **error_r);

/* The user's quota: used and limits (RFC 9208 STORAGE in KiB and
 * MESSAGE), from maildirsize. */
int mailbox_quota_get(struct mailbox_user *user, struct maildir_usage *used_r,
    struct maildir_quota *limit_r, const char **error_r);

/* ---- an open folder (a view, as one IMAP session selected it) ---- */

struct mailbox_msg {
	uint32_t uid;
	uint8_t flags;     /* MAILBOX_F_*, \Recent for this view */
	/* The store's own (mailbox.c), in what would be padding: a view
	 * holds one of these per message and nothing else. */
	uint8_t priv_in_new : 1, priv_gone : 1, priv_changed : 1,
	    priv_arena : 1;
	uint16_t priv_name_len;
	uint32_t keywords; /* bit i: the folder's keyword i */
	uint32_t priv_name;
	uint64_t modseq;   /* CONDSTORE: >= 1 */
	uint64_t size;     /* RFC822.SIZE: the message with CRLF line ends */
	int64_t received;  /* INTERNALDATE: the file's mtime, as Dovecot,
			    * or MAILBOX_RECEIVED_UNKNOWN: read it with
			    * mailbox_msg_received */
};
/* A scan names a message without a stat when its name carries ",W=" (a
 * cold SELECT of a delivered folder reads no inode); the mtime is read
 * on first use and kept in the folder's cache. */
#define MAILBOX_RECEIVED_UNKNOWN INT64_MIN

struct mailbox;

#define MAILBOX_OPEN_READONLY 0x01 /* EXAMINE: no \Recent taken, no
				    * flag is changed by this view */

int mailbox_open(struct mailbox_user *user, const char *name,
    unsigned open_flags, struct mailbox **box_r, const char **error_r);
/* Writes back what the view cached, frees. NULL-safe. */
void mailbox_close(struct mailbox **box_r);

const char *mailbox_name(const struct mailbox *box);
/* The view's status (first_unseen included); cheap. */
void mailbox_view_status(const struct mailbox *box,
    struct mailbox_status *status_r);

/* Messages in the view, numbered 1..count (IMAP sequence numbers). They
 * change only inside mailbox_sync and mailbox_sync's callbacks, so a
 * session's numbers stay what its client knows between syncs. */
uint32_t mailbox_count(const struct mailbox *box);
const struct mailbox_msg *mailbox_msg(const struct mailbox *box,
    uint32_t seq);
/* The sequence number of uid, 0 if not in the view. O(log n). */
uint32_t mailbox_seq(const struct mailbox *box, uint32_t uid);

/* Keywords of the folder (dovecot-keywords): the index of name (case-
 * insensitive), creating it when create (MAILBOX_ERR_LIMIT beyond 26),
 * else -1 when unknown. */
int mailbox_keyword_index(struct mailbox *box, const char *name, int create,
    const char **error_r);
/* One above the highest index in use; an index below it may be free (a
 * hole Dovecot left in dovecot-keywords): its name is then NULL. */
size_t mailbox_keyword_count(const struct mailbox *box);
const char *mailbox_keyword_name(const struct mailbox *box, unsigned idx);

/*
 * What changed since the view's last sync, reported through ops (each
 * may be NULL) and applied to the view:
 *   expunged(seq, uid): called once per vanished message, highest
 *       sequence number first, the view shrinking after each call (so seq
 *       is right for an untagged EXPUNGE as sent in that order);
 *   changed(seq): flags, keywords or modseq changed by someone else;
 *   keywords(): a keyword was defined (send FLAGS / PERMANENTFLAGS);
 *   exists(count, recent): the new total, after new messages came.
 * With MAILBOX_SYNC_NO_EXPUNGE (during FETCH, STORE, SEARCH: RFC 3501
 * 7.4.1) vanished messages stay in the view, marked by mailbox_msg_gone,
 * until a later sync without the flag.
 */
struct mailbox_sync_ops {
	void (*expunged)(void *ctx, uint32_t seq, uint32_t uid);
	void (*changed)(void *ctx, uint32_t seq);
	void (*keywords)(void *ctx);
	void (*exists)(void *ctx, uint32_t count, uint32_t recent);
};
#define MAILBOX_SYNC_NO_EXPUNGE 0x01
/* MAILBOX_ERR_NONEXISTENT when the folder has been deleted under the
 * view (its cur/ is gone): the view can show nothing more. */
int mailbox_sync(struct mailbox *box, unsigned sync_flags,
    const struct mailbox_sync_ops *ops, void *ctx, const char **error_r);
/* 1 if the message's file is gone (a deferred expunge). */
int mailbox_msg_gone(const struct mailbox *box, uint32_t seq);
/* INTERNALDATE (seconds since the epoch): the file's mtime, read once and
 * cached when the scan did not; 0 for a message whose file is gone. */
int64_t mailbox_msg_received(struct mailbox *box, uint32_t seq);

/*
 * Sets the message's stored flags and keywords to exactly these (the
 * session computes FLAGS / +FLAGS / -FLAGS), renaming its file, and gives
 * it a new modseq (*modseq_r) when anything changed. unchangedsince
 * (0: none) fails with MAILBOX_ERR_MODIFIED when the message's modseq is
 * above it (CONDSTORE). The view sees the change at once; others at
 * their next sync.
 */
int mailbox_store(struct mailbox *box, uint32_t seq, uint8_t flags,
    uint32_t keywords, uint64_t unchangedsince, uint64_t *modseq_r,
    const char **error_r);

/* Removes the messages whose UIDs are given (the session picks those
 * with \Deleted). The view keeps them until the next mailbox_sync,
 * which reports them through expunged(). */
int mailbox_expunge(struct mailbox *box, const uint32_t *uids, size_t n,
    const char **error_r);

/* A read-only descriptor of the message's file (LF or CRLF line ends as
 * stored; the session sends CRLF). MAILBOX_ERR_EXPUNGED if it is gone. */
int mailbox_msg_open(struct mailbox *box, uint32_t seq, int *fd_r,
    const char **error_r);

/*
 * APPEND: stores data (len octets, CRLF or LF lines; stored with LF, as
 * local delivery stores) in the folder name with the flags (no \Recent),
 * keyword names, and the internal date received (0: now), durably
 * (fsync of the file and of new/ or cur/), within the quota. The folder
 * need not be open; if this session has it open the message appears at
 * its next sync. *uidvalidity_r and *uid_r for APPENDUID.
 */
int mailbox_append(struct mailbox_user *user, const char *name,
    const char *data, size_t len, uint8_t flags,
    const char *const *keywords, size_t keyword_count, int64_t received,
    uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r);

/*
 * COPY: the messages seqs[0..n) of the view into the folder dest (hard
 * links where possible, as Dovecot; flags and keywords kept, \Recent
 * not), within the quota; all or none. *uidvalidity_r and uids_r[i] (the
 * new UID of seqs[i]) for COPYUID. MOVE is COPY then mailbox_expunge.
 */
int mailbox_copy(struct mailbox *box, const uint32_t *seqs, size_t n,
    const char *dest, uint32_t *uidvalidity_r, uint32_t *uids_r,
    const char **error_r);

/* Data computed from a message and kept in the folder's cache. */
enum mailbox_cache_field {
	MAILBOX_CACHE_ENVELOPE,
	MAILBOX_CACHE_BODYSTRUCTURE,
	MAILBOX_CACHE_BODY,
	MAILBOX_CACHE_SORT, /* imapd's SORT/THREAD header fields */
	MAILBOX_CACHE_HEADERS, /* imapd's SEARCH header values, decoded */
	MAILBOX_CACHE_RECEIVED, /* mailbox_msg_received's: 8 bytes */
	MAILBOX_CACHE_FIELDS
};
/* 1 with the cached bytes (valid until the next call on box), 0 if not
 * cached. */
int mailbox_cache_get(struct mailbox *box, uint32_t seq,
    enum mailbox_cache_field field, const char **data_r, size_t *len_r);
/* Remembers data for the message (written by the next sync or close). */
void mailbox_cache_put(struct mailbox *box, uint32_t seq,
    enum mailbox_cache_field field, const char *data, size_t len);

/* A descriptor (inotify) that becomes readable when the folder may have
 * changed (delivery, another session, Dovecot): IDLE waits on it with
 * the client's socket, then calls mailbox_sync. */
int mailbox_watch_fd(struct mailbox *box);

#endif
