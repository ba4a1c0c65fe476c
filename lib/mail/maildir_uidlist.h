/* SPDX-License-Identifier: MIT */
/*
 * Dovecot's dovecot-uidlist: the file in a maildir's top directory that
 * gives each message (by its file name before ':', the "base") an IMAP
 * UID, and the mailbox its UIDVALIDITY, next UID and GUID. tern reads and
 * writes it exactly as Dovecot 2.3 does, so that an admin can switch
 * between tern and Dovecot on the same maildirs, in either direction,
 * without clients downloading their mail again (POP3 UIDLs "%u%v" and IMAP
 * UIDs stay the same).
 *
 * Format version 3 (Dovecot 1.1 and later; version 1, Courier's
 * courierimapuiddb, is read too, never written):
 *
 *   3 V<uidvalidity> N<nextuid> G<guid, 32 hex digits>[ <key><value>...]
 *   <uid>[ <key><value>...] :<base>
 *
 * one record a line, UIDs ascending. Header and record fields other than
 * V, N and G (S<size>, W<vsize>, P<pop3 uidl>, O<pop3 order>, G<guid>,
 * ...) are kept as read and written back.
 *
 * Layers: a struct maildir_uidlist in memory (records sorted by UID, a
 * hash by base), its parser and formatter (no I/O; the parser is fuzzed),
 * the file's lock (Dovecot's dotlock), reading and writing the file, and
 * maildir_uidlist_assign on top for pop3d.
 */
#ifndef TERN_MAILDIR_UIDLIST_H
#define TERN_MAILDIR_UIDLIST_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define MAILDIR_UIDLIST_NAME      "dovecot-uidlist"
#define MAILDIR_UIDLIST_LOCK_NAME "dovecot-uidlist.lock"
#define MAILDIR_UIDLIST_TMP_NAME  "dovecot-uidlist.tmp"

/*
 * Bounds of what is read (and so of what is written): a file larger, a
 * line longer or more records make the operation fail with an error; the
 * file is then left alone, since Dovecot would read it and a rebuild
 * would cost every client a full download. 4 KiB lines hold a 255-byte
 * name with every extension Dovecot writes many times over.
 */
#define MAILDIR_UIDLIST_SIZE_MAX    (256u * 1024 * 1024)
#define MAILDIR_UIDLIST_LINE_MAX    4096
#define MAILDIR_UIDLIST_RECORDS_MAX 2000000

/* Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT: a lock that has not
 * changed for this long (and whose file has not either) is overridden. */
#define MAILDIR_UIDLIST_LOCK_STALE_SECS 120
/* How long maildir_uidlist_assign waits for the lock: Dovecot waits the
 * stale time plus 2 s, so that a stale lock is always overridden first. */
#define MAILDIR_UIDLIST_LOCK_WAIT_SECS  (MAILDIR_UIDLIST_LOCK_STALE_SECS + 2)

#define MAILDIR_UIDLIST_GUID_SIZE 16

struct maildir_uidlist_rec {
	uint32_t uid;
	char *base;
	/* Extension fields as read, each "<key><value>\0", the list ended
	 * by one more '\0'; NULL when there are none. */
	char *ext;
};

struct maildir_uidlist {
	unsigned version;     /* as read; a write makes it 3 */
	uint32_t uidvalidity; /* 0: none yet (a write picks one) */
	uint32_t next_uid;    /* at least 1, above every record's uid */
	unsigned char guid[MAILDIR_UIDLIST_GUID_SIZE];
	int have_guid;
	char *hdr_ext; /* other header fields, space-separated, or NULL */
	struct maildir_uidlist_rec **recs; /* ascending uid */
	size_t count, cap;
	struct hash *by_base;
	/* The parser found what Dovecot repairs by rewriting the file (a
	 * bad extension field dropped, a base listed under two UIDs). */
	int recreate;
};

/* An empty list (version 3, next_uid 1, no UIDVALIDITY). */
struct maildir_uidlist *maildir_uidlist_create(void);
void maildir_uidlist_free(struct maildir_uidlist **ul_r);

/*
 * Parses the text of a dovecot-uidlist (len bytes, NUL bytes allowed:
 * a line ends at its first NUL for the parser, as in Dovecot) into the
 * empty list ul, with Dovecot's rules:
 *  - lines end at LF, a CR before it is dropped, a last line without LF
 *    is ignored (a write in progress);
 *  - an extension field whose key is not A-Z is dropped (ul->recreate);
 *  - a base listed again under a higher UID keeps only the later UID
 *    (ul->recreate); the same line twice is harmless;
 *  - a record whose name has a CR is dropped (ul->recreate): Dovecot
 *    ignores such files, and it would not read back the same;
 *  - next_uid is raised above the highest UID read.
 * 1: parsed. 0: corrupt as Dovecot sees it (bad header or version, UIDVALIDITY or
 * next UID 0, a record without a UID or name, UIDs not ascending, a '/'
 * in a name, UID 4294967295, an empty file); Dovecot then deletes the
 * file and starts a new one with a new UIDVALIDITY, and so does
 * maildir_uidlist_assign. -1: over MAILDIR_UIDLIST_* bounds. On 0 and -1
 * *error_r says what and where, and ul keeps what was read before (its
 * uidvalidity among it, so that a new one can be chosen above it).
 */
int maildir_uidlist_parse(struct maildir_uidlist *ul, const char *text,
    size_t len, const char **error_r);

/*
 * The file's text (version 3, Dovecot's layout) appended to out. ul must
 * have a UIDVALIDITY and a GUID (maildir_uidlist_write gives them). 0, or
 * -1 when out's maximum is reached.
 */
int maildir_uidlist_format(const struct maildir_uidlist *ul, struct buf *out);

/* The record of base (a file name: its part before any ':'), or NULL. */
struct maildir_uidlist_rec *maildir_uidlist_lookup(
    const struct maildir_uidlist *ul, const char *base);
/* The record with that UID, or NULL. */
struct maildir_uidlist_rec *maildir_uidlist_lookup_uid(
    const struct maildir_uidlist *ul, uint32_t uid);
/* The value of extension field key of rec ('S', 'W', 'P', ...), or NULL. */
const char *maildir_uidlist_rec_ext(
    const struct maildir_uidlist_rec *rec, char key);

/*
 * Gives each of the n bases not yet listed a new UID, from next_uid up,
 * in Dovecot's order (maildir_uidlist_filename_cmp); a base given twice
 * gets one. Bases must be valid (maildir_uidlist_base_valid). 0, or -1
 * with *error_r when the UIDs or MAILDIR_UIDLIST_RECORDS_MAX would run
 * out (then nothing is added).
 */
int maildir_uidlist_add_new(struct maildir_uidlist *ul, char *const *bases,
    size_t n, const char **error_r);
/* As maildir_uidlist_add_new, and uids_r[i] gets the UID of bases[i]
 * (new, or the one it had). */
int maildir_uidlist_add_new_uids(struct maildir_uidlist *ul,
    char *const *bases, size_t n, uint32_t *uids_r, const char **error_r);
/* Removes base's record, if any. */
void maildir_uidlist_remove(struct maildir_uidlist *ul, const char *base);
/* Removes the records of the n bases (those listed), in one pass over
 * the records (an EXPUNGE of many messages). */
void maildir_uidlist_remove_bases(struct maildir_uidlist *ul,
    char *const *bases, size_t n);

/*
 * Dovecot's maildir filename sort (maildir_filename_sort_cmp): by the
 * leading decimal seconds, then the microseconds of an "M<usec>" in the
 * part after the first '.', then bytewise (as signed chars) from there
 * up to ':' or the end. <0, 0, >0.
 */
int maildir_uidlist_filename_cmp(const char *a, const char *b);
/* 1 if a file of that name can be listed: its base (the part before any
 * ':') is not empty and has no '/', CR or LF (Dovecot ignores files with
 * CR or LF; it renames those starting with ':'). */
int maildir_uidlist_base_valid(const char *base);

/*
 * Dovecot's dotlock on $maildir/dovecot-uidlist: dovecot-uidlist.lock
 * created with O_EXCL, holding "<pid>:<host>". A lock is overridden when
 * it is older than 2 s and names a process of this host that is gone, or
 * when neither it nor dovecot-uidlist changed for
 * MAILDIR_UIDLIST_LOCK_STALE_SECS. Waits up to wait_secs (0: one try).
 * 1 with *lock_r, 0 when still locked after wait_secs, -1 with *error_r.
 */
struct maildir_uidlist_lock;
int maildir_uidlist_lock(const char *maildir, int wait_secs,
    struct maildir_uidlist_lock **lock_r, const char **error_r);
/* The same with another staleness time than Dovecot's (for tests). */
int maildir_uidlist_lock_stale(const char *maildir, int wait_secs,
    int stale_secs, struct maildir_uidlist_lock **lock_r, const char **error_r);
/* Removes the lock file if it is still ours; NULL-safe. */
void maildir_uidlist_unlock(struct maildir_uidlist_lock **lock_r);

/*
 * Reads $maildir/dovecot-uidlist (a regular file, not followed if a
 * symbolic link) into a new list. 1 with *ul_r; 0 with *ul_r (empty, or
 * as far as parsed) and *error_r when the file is missing (*error_r NULL)
 * or corrupt (see maildir_uidlist_parse); -1 with *error_r on an I/O
 * error or a file over the bounds (*ul_r NULL).
 */
int maildir_uidlist_read(
    const char *maildir, struct maildir_uidlist **ul_r, const char **error_r);
/*
 * Writes ul as $maildir/dovecot-uidlist through dovecot-uidlist.tmp
 * (O_NOFOLLOW, the maildir's permission bits without x, fdatasync,
 * rename, then an fsync of the maildir), as Dovecot does; the caller
 * holds the lock. A list without UIDVALIDITY gets a fresh one (the time,
 * or one above old_uidvalidity when that is not below it) and one without
 * GUID a random one. 0, or -1 with *error_r.
 */
int maildir_uidlist_write(const char *maildir, struct maildir_uidlist *ul,
    uint32_t old_uidvalidity, const char **error_r);

/*
 * Gives bases[i] (file names before ":2," as found in new/ and cur/, any
 * order, n of them) its UID: from $maildir/dovecot-uidlist when listed,
 * else a new one, assigned in Dovecot's order (its maildir filename sort:
 * the time part, then the M<usec> part, then the rest), and writes the
 * file back (tmp + rename, as Dovecot does, under Dovecot's lock) when
 * anything was added; records of files no longer present are dropped on
 * rewrite, as Dovecot drops expunged ones (a record the caller did not
 * name is dropped only if new/ and cur/, listed again under the lock,
 * lack it too: the caller's listing may predate another process's
 * deliveries). A missing or corrupt file makes a new one with a fresh
 * UIDVALIDITY (time-based, as Dovecot) and GUID. An invalid base
 * (maildir_uidlist_base_valid) gets uid 0: Dovecot ignores such files.
 * 0 with uids_r[i] and *uidvalidity_r, or -1 with *error_r.
 */
int maildir_uidlist_assign(const char *maildir, char *const *bases, size_t n,
    uint32_t *uids_r, uint32_t *uidvalidity_r, const char **error_r);

#endif
