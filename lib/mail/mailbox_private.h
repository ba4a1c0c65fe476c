/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by mailbox*.c (the mail store of mailbox.h): the user,
 * a folder's records as the index and the change log hold them, and the
 * index, log and cache files (mailbox_index.c).
 */
#ifndef TERN_MAILBOX_PRIVATE_H
#define TERN_MAILBOX_PRIVATE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/buf.h"
#include "mail/mailbox.h"
#include "mail/maildir_keywords.h"

#define MAILBOX_INDEX_NAME "tern.index"
#define MAILBOX_LOG_NAME   "tern.index.log"
#define MAILBOX_CACHE_NAME "tern.index.cache"
#define MAILBOX_SUBS_NAME  "subscriptions"
#define MAILBOX_DIR_MODE   0700
#define MAILBOX_FILE_MODE  0600

struct mailbox_user {
	char *root;
	struct maildir_quota quota;
	int have_quota;
};

/* A message as the index and the log record it. */
struct mailbox_rec {
	uint32_t uid;
	uint8_t flags;  /* MAILBOX_F_STORED bits */
	uint8_t in_new; /* the file is in new/ (else cur/) */
	uint32_t keywords;
	uint64_t modseq;
	uint64_t size;
	int64_t received;
	char *fname; /* name in new/ or cur/ */
	/* Where the name is in the index file (mailbox_index_read_fd,
	 * mailbox_index_write_fd), so that a view need not keep it. */
	uint32_t fname_off;
	uint16_t fname_len;
};

/* Log record types. */
#define MAILBOX_LOG_SET     1 /* a message's state, new or changed */
#define MAILBOX_LOG_EXPUNGE 2
#define MAILBOX_LOG_DIRS \
	3 /* mtimes of new/ and cur/ that the state
			       * reflects, UIDVALIDITY, UIDNEXT */

struct mailbox_log_rec {
	uint8_t type;
	struct mailbox_rec rec; /* SET (fname points into the buffer) */
	uint32_t uid;           /* EXPUNGE */
	uint64_t modseq;        /* EXPUNGE */
	struct timespec new_mtime, cur_mtime; /* DIRS */
	uint32_t uidvalidity, uidnext;        /* DIRS */
};

#define MAILBOX_LOG_HDR_SIZE 16
/* A record larger than this is corruption (a name is < 256 bytes). */
#define MAILBOX_LOG_REC_MAX  1024

/* Appends the framed record to out. */
void mailbox_log_encode(struct buf *out, const struct mailbox_log_rec *r);
/*
 * Decodes the framed record at data (len bytes available): its size,
 * 0 when incomplete, -1 when corrupt (a torn or damaged tail).
 */
ssize_t mailbox_log_decode(
    const char *data, size_t len, struct mailbox_log_rec *r_r);
/* The log's header for generation gen (MAILBOX_LOG_HDR_SIZE bytes). */
void mailbox_log_header(char *hdr, uint64_t gen);
/* 0 and *gen_r, or -1 when hdr is not a log header. */
int mailbox_log_header_parse(const char *hdr, uint64_t *gen_r);

/* The index: a snapshot of the folder as of (log_gen, log_off). */
struct mailbox_index {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint64_t log_gen, log_off;
	struct timespec new_mtime, cur_mtime;
	struct mailbox_rec *recs; /* ascending uid */
	uint32_t count;
};

/* 1 read, 0 missing or unusable (a rebuild from the maildir follows),
 * -1 on an I/O error. */
int mailbox_index_read(
    const char *dir, struct mailbox_index *idx_r, const char **error_r);
/* Written through a temporary file renamed over it (not fsync'd: it is
 * a cache of what the maildir holds). */
int mailbox_index_write(
    const char *dir, const struct mailbox_index *idx, const char **error_r);
void mailbox_index_free(struct mailbox_index *idx);
/* As mailbox_index_read, but the names stay in the file: each fname is
 * NULL, fname_off and fname_len locate it in *fd_r (open on the file read,
 * the caller's to close; -1 unless 1 is returned). A name is then at most
 * MAILBOX_LOG_REC_MAX bytes. */
int mailbox_index_read_fd(const char *dir, struct mailbox_index *idx_r,
    int *fd_r, const char **error_r);
/* As mailbox_index_write; sets each fname_off and fname_len, and *fd_r to
 * the written file opened for reading (-1 if it could not be: the
 * caller holds the log lock, so no one else renamed a file over it). */
int mailbox_index_write_fd(const char *dir, struct mailbox_index *idx,
    int *fd_r, const char **error_r);

/* 64-bit FNV-1a: detects torn and damaged records. */
uint64_t mailbox_checksum(const void *data, size_t len);

/* Maildir file names. */
/* Flags and keyword bits of a name (after ":2,"). */
void mailbox_fname_flags(
    const char *fname, uint8_t *flags_r, uint32_t *keywords_r);
/* The name with these flags: base ":2," letters (ASCII order). */
char *mailbox_fname_with_flags(
    const char *fname, uint8_t flags, uint32_t keywords);
/* The value of ",key=" in the base, 1 with *v_r, or 0. */
int mailbox_fname_size(const char *fname, char key, uint64_t *v_r);

/* Paths. */
/* The folder's directory for a UTF-8 name (INBOX: the root), malloc'd,
 * or NULL with *error_r (MAILBOX_ERR_BADNAME) when the name is invalid;
 * *norm_r (may be NULL) gets the name with "INBOX" in capitals. */
char *mailbox_folder_path(const struct mailbox_user *user, const char *name,
    char **norm_r, int *err_r, const char **error_r);
/* 1 if name is INBOX (case-insensitive). */
int mailbox_is_inbox(const char *name);

/* Test-only counters (mailbox_test.c): directory scans done. */
struct mailbox_stats {
	unsigned long scans;       /* readdir passes over a folder */
	unsigned long index_reads; /* tern.index loaded */
	unsigned long log_records; /* log records applied */
	unsigned long msg_reads;   /* message files a scan read for a size */
};
extern struct mailbox_stats mailbox_stats;
/* The heap a view holds for its messages, names and cache entries
 * (tests pin it per message). */
size_t mailbox_view_bytes(const struct mailbox *box);
/* Log size that makes the next index write start a new log (tests lower
 * it). */
extern uint64_t mailbox_log_rotate;
/* Called (when set) between a change and the stat of its DIRS record:
 * tests deliver there, as a concurrent delivery would. */
extern void (*mailbox_test_before_dirs_record)(struct mailbox *box);

#endif
