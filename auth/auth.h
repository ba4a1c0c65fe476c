/* SPDX-License-Identifier: MIT */
/*
 * auth: the password checker of smtpd, pop3d and imapd, and the only
 * tern process that holds the password hashes. auth.c owns the process
 * and the protocol (lib/mail/auth_proto.h): requests, delayed failures,
 * logging; auth_db.c the user file; auth_fail.c the failure counts.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

enum auth_db_result {
	AUTH_DB_OK,		/* the password is right */
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
 * Checks a password, first reloading $user_file if it changed (a stat
 * per call: device, inode, size, mtime, ctime). An unknown user costs
 * one check against the dummy hash, the same work as a known one, so
 * the time taken does not tell which users exist. With AUTH_DB_OK and
 * AUTH_DB_MISMATCH, *canonical_r is the name as stored (valid until the
 * next call).
 */
enum auth_db_result auth_db_check(const char *user, const char *password,
    const char **canonical_r);
/*
 * The same for APOP (RFC 1939 7): AUTH_DB_OK when user's password is
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
