/* SPDX-License-Identifier: MIT */
/*
 * The user file that local delivery and the auth service read (auth
 * checks the passwords for smtpd, pop3d and imapd): Dovecot passwd-file
 * format, one user per line,
 *
 *   alice@example.test:{SHA512-CRYPT}$6$salt$hash::::::
 *
 * (name:password:uid:gid:gecos:home:shell:extra; tern writes name and
 * password and keeps the other fields of lines it did not write). Names
 * are full addresses, stored lower-case. Every change rewrites the file
 * atomically (file_write_atomic, mode 0640) and also rewrites the derived
 * address list (one address per line, mode 0644, no secrets), which smtpd
 * reads to accept or reject RCPT without ever seeing a hash.
 *
 * Loading skips blank lines and '#' comment lines, and a rewrite drops
 * them (the file is tern's; keep notes elsewhere). A name already in the
 * file must be one field without white space or control characters; a
 * malformed or duplicate line fails the load with its line number.
 */
#ifndef TERN_USERDB_H
#define TERN_USERDB_H

#include <sys/types.h>

#define USERDB_FILE_MAX	    (64u * 1024 * 1024)
#define USERDB_PASSWORD_MAX 1024
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets including "<>". */
#define USERDB_NAME_MAX	    254
/* root and $auth_user's group may read it (userdb_save's uid and gid). */
#define USERDB_FILE_MODE    0640

struct userdb_entry {
	char *name;
	char *password;	/* "{SCHEME}..." as stored */
	char *rest;	/* fields after the password, verbatim (may be "") */
};

struct userdb {
	struct userdb_entry *v;
	int count;
};

/* A missing file loads as empty. 0 or -1 with *error_r. */
int userdb_load(const char *path, struct userdb *db, const char **error_r);
void userdb_free(struct userdb *db);
const struct userdb_entry *userdb_find(const struct userdb *db,
    const char *name);
/*
 * Writes db to path and the address list to list_path, atomically.
 * uid/gid own the user file ((uid_t)-1 keeps the creator's).
 */
int userdb_save(const struct userdb *db, const char *path,
    const char *list_path, uid_t uid, gid_t gid, const char **error_r);
/*
 * Adds name with a fresh SHA512-CRYPT hash; -1 if it exists or is bad.
 * name must be user@domain (one '@', no white space, control characters,
 * ':', '/' or '\\', not starting a part with '.'); it is stored lower-case.
 * password: 1 to USERDB_PASSWORD_MAX bytes without CR or LF.
 */
int userdb_add(struct userdb *db, const char *name, const char *password,
    const char **error_r);
int userdb_del(struct userdb *db, const char *name, const char **error_r);
/*
 * 1 if password matches entry, 0 if not (constant-time compare). Only the
 * {SHA512-CRYPT} and {CRYPT} schemes are known; any other never matches.
 */
int userdb_verify(const struct userdb_entry *e, const char *password);

/*
 * The derived address list, for RCPT checks: reloads path when its mtime
 * or size changed since the last call (a stat per call). 1 if addr is
 * listed, 0 if not, -1 if the list cannot be read or is missing (caller
 * answers 451). Case-insensitive. One cache per process, not thread-safe.
 */
int userdb_list_contains(const char *path, const char *addr,
    const char **error_r);

#endif
