/* SPDX-License-Identifier: MIT */
/*
 * Maildir delivery (https://cr.yp.to/proto/maildir.html, and Dovecot's
 * reading of it): write tmp/UNIQUE, fsync, link/rename into new/UNIQUE,
 * fsync new/. UNIQUE is "SEC.M<usec>P<pid>Q<n>.HOST,S=<size>" with size
 * the byte count stored. Stored mail has LF line endings.
 */
#ifndef TERN_MAILDIR_H
#define TERN_MAILDIR_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Creates maildir and its cur/ new/ tmp/ (parents too) with mode 0700 as
 * the calling identity. 0, or -1 with *error_r.
 */
int maildir_create(const char *maildir, const char **error_r);

/*
 * Delivers prefix (header lines, LF endings, may be empty) followed by
 * len bytes of src_fd at offset off, converting CRLF to LF, into maildir
 * (created if missing). Runs as the calling identity (the caller has
 * switched to the mailbox owner). On success returns 0 and, if
 * path_r is not NULL, the new file's path (caller frees). On failure
 * returns -1 with *error_r, and no file is left in new/ or tmp/.
 */
int maildir_deliver(const char *maildir, const char *prefix, int src_fd,
    off_t off, uint64_t len, char **path_r, const char **error_r);

#endif
