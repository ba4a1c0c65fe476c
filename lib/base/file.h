/* SPDX-License-Identifier: MIT */
/*
 * Safe file helpers. Durability rule of tern: data is ours only after
 * write -> fsync(file) -> rename -> fsync(directory).
 * Functions return 0 on success, -1 on failure with *error_r set to a
 * static or thread-local message (errno text included); the caller logs.
 */
#ifndef TERN_FILE_H
#define TERN_FILE_H

#include <stddef.h>
#include <sys/types.h>
#include "base/buf.h"

/* write(2) the whole buffer, retrying on EINTR and short writes. */
int file_write_all(int fd, const void *data, size_t len);
/* pread/pwrite until complete; -1 on error or early EOF (pread). */
int file_pread_all(int fd, void *data, size_t len, off_t off);
int file_pwrite_all(int fd, const void *data, size_t len, off_t off);
/*
 * renameat that never replaces: -1 with errno EEXIST when to exists. One
 * renameat2(RENAME_NOREPLACE) call; a file system without it gets link
 * and unlink (on an unlink failure the new link is taken back). 0 or -1
 * with errno.
 */
int file_rename_noreplace(int fromfd, const char *from, int tofd,
    const char *to);
/* Opens the directory (O_DIRECTORY|O_RDONLY) and fsyncs it. */
int file_fsync_dir(const char *dir, const char **error_r);
/* Directory part of path ("." when none) into a buffer of size n. */
void file_dirname(const char *path, char *out, size_t n);

/*
 * Replaces path atomically and durably: writes path.tmp.PID.XXXXXX (mkostemp: never an existing
 * file) with mode,
 * fsyncs, renames over path, fsyncs the directory. uid/gid of (uid_t)-1
 * keep the creator's.
 */
int file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, uid_t uid, gid_t gid, const char **error_r);
/* The same without the fsyncs: atomic (readers see the old file or the
 * new one) but not durable, for a file whose loss or tearing its readers
 * detect and rebuild (imapd's tern.index). */
int file_write_atomic_nosync(const char *path, const void *data, size_t len,
    mode_t mode, const char **error_r);
/* Reads a whole file (up to max bytes, else fails) into out. */
int file_read_all(const char *path, size_t max, struct buf *out,
    const char **error_r);
/*
 * Creates dir if missing (parents too), then enforces mode and, where
 * uid/gid are not (uid_t)-1, ownership. *changed_r (may be NULL) is set when
 * anything was created or fixed.
 */
int file_ensure_dir(const char *dir, mode_t mode, uid_t uid, gid_t gid,
    int *changed_r, const char **error_r);
/*
 * Enforces mode and, where uid/gid are not (uid_t)-1, ownership of the
 * existing regular file path, through a descriptor: the open follows no
 * symbolic link (O_NOFOLLOW), waits on no FIFO, and a file with other
 * hard links is refused, so root never changes a file that someone who
 * can write the directory swapped in. *changed_r (may be NULL) is set
 * when anything was fixed. -1 with *error_r (errno set) when path is
 * missing, a symbolic link, not a regular file, linked elsewhere, or the
 * change fails.
 */
int file_fix_file(const char *path, mode_t mode, uid_t uid, gid_t gid,
    int *changed_r, const char **error_r);
/* Sets FD_CLOEXEC / O_NONBLOCK; returns 0 or -1. */
int file_set_cloexec(int fd, int on);
int file_set_nonblock(int fd, int on);
/*
 * Turns off Nagle's algorithm on a TCP socket (anything else is left
 * alone): a session that answers in more than one write() would else
 * wait for the client's delayed ACK, some 40 ms, before the last piece.
 */
void file_tcp_nodelay(int fd);

#endif
