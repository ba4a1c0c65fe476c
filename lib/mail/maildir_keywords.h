/* SPDX-License-Identifier: MIT */
/*
 * Dovecot's dovecot-keywords: the names of a Maildir folder's keywords,
 * one "<index> <name>" line each, index 0..25 standing for the letter
 * 'a' + index after ":2," in a message's file name. Read as Dovecot reads
 * it (a line without a space, a bad index, an empty or repeated name is
 * skipped; names compare case-insensitively), written as Dovecot writes
 * it: under the folder's dovecot-uidlist lock, through
 * dovecot-keywords.lock renamed over the file, with an mtime that grows
 * on every write (readers reread on an mtime change).
 */
#ifndef TERN_MAILDIR_KEYWORDS_H
#define TERN_MAILDIR_KEYWORDS_H

#include <stddef.h>
#include <time.h>

#define MAILDIR_KEYWORDS_NAME      "dovecot-keywords"
#define MAILDIR_KEYWORDS_LOCK_NAME "dovecot-keywords.lock"
#define MAILDIR_KEYWORDS_MAX       26
/* A larger file is not Dovecot's (26 names of at most a line each). */
#define MAILDIR_KEYWORDS_SIZE_MAX  (64 * 1024)
#define MAILDIR_KEYWORDS_NAME_MAX  1024

struct maildir_keywords {
	char *names[MAILDIR_KEYWORDS_MAX]; /* NULL: the index is free */
	struct timespec mtime;             /* of the file as last read */
	int exists;
};

/* Empties kw (frees its names); kw stays usable. */
void maildir_keywords_clear(struct maildir_keywords *kw);

/* Parses the file's text into kw (cleared first). Never fails. */
void maildir_keywords_parse(
    struct maildir_keywords *kw, const char *text, size_t len);

/*
 * Rereads $dir/dovecot-keywords into kw when its mtime differs from what
 * kw last read (a missing file is an empty list). 1 if kw changed, 0 if
 * not, -1 with *error_r.
 */
int maildir_keywords_refresh(
    const char *dir, struct maildir_keywords *kw, const char **error_r);

/* The index of name (case-insensitive) or -1. */
int maildir_keywords_lookup(
    const struct maildir_keywords *kw, const char *name);

/*
 * Adds name at the lowest free index and writes the file; the caller
 * holds the folder's dovecot-uidlist lock (maildir_uidlist_lock), as
 * Dovecot's writers do, and has refreshed kw under it. The index (an
 * existing one if the name is there already), or -1 with *error_r, or
 * -2 when all 26 are taken.
 */
int maildir_keywords_add(const char *dir, struct maildir_keywords *kw,
    const char *name, const char **error_r);

#endif
