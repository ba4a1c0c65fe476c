/* SPDX-License-Identifier: MIT */
/*
 * auth: the password checker of smtpd, pop3d and imapd, and the only
 * tern process that holds the password hashes. auth.c owns the process
 * and the protocol (lib/mail/auth_proto.h): requests, the queue of
 * checks for the hashing threads, delayed failures, logging; auth_db.c
 * the user file; auth_fail.c the failure counts; auth_cache.c the
 * success cache.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdint.h>
#include "mail/userdb.h"

enum auth_db_result {
	AUTH_DB_OK,		/* the password is right (find: the user exists) */
	AUTH_DB_MISMATCH,	/* the user exists, the password is wrong */
	AUTH_DB_UNKNOWN,	/* no such user */
	AUTH_DB_UNAVAILABLE,	/* the user file is missing or unreadable */
};

/*
 * After the privilege drop: makes the dummy hash that unknown users are
 * checked against, and loads $user_file (logging why, if it cannot).
 */
void auth_db_init(void);
/*
 * Finds user, first reloading $user_file if it changed (a stat per call:
 * device, inode, size, mtime, ctime). AUTH_DB_OK: *e_r is the user's
 * entry; AUTH_DB_UNKNOWN: *e_r is the dummy entry, whose check costs the
 * same as a real one, so the time taken does not tell which users exist;
 * both valid until the next call. Else AUTH_DB_UNAVAILABLE.
 */
enum auth_db_result auth_db_find(const char *user,
    const struct userdb_entry **e_r);
/* Changes with every reload or drop of the user file's copy. */
uint64_t auth_db_generation(void);
/*
 * Checks an APOP digest (RFC 1939 7), reloading the file as
 * auth_db_find does: AUTH_DB_OK when user's password is
 * stored in a plaintext scheme and auth_apop_match() holds; a hashed
 * password is AUTH_DB_MISMATCH. Unknown users cost the same digest.
 */
enum auth_db_result auth_db_check_apop(const char *user,
    const char *challenge, const char *digest, const char **canonical_r);
void auth_db_shutdown(void);

/*
 * 1 if digest is MD5(challenge password) in lower-case hex (32 digits),
 * compared in constant time; else 0.
 */
int auth_apop_match(const char *challenge, const char *password,
    const char *digest);

#endif
