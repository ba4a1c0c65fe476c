/* SPDX-License-Identifier: MIT */
/*
 * The user file that local delivery and the auth service read (auth
 * checks the passwords for smtpd, pop3d and imapd): Dovecot passwd-file
 * format, one user per line,
 *
 *   alice@example.test:{CRYPT}$y$j9T$salt$hash:::::userdb_quota_rule=*:storage=100M
 *
 * (name:password:uid:gid:gecos:home:shell:extra; tern writes name,
 * password and the quota rules among the extra fields, and keeps the
 * other fields of lines it did not write). Names are full addresses,
 * stored lower-case. Every change rewrites the file atomically
 * (file_write_atomic, mode 0640) and also rewrites the derived address
 * list (mode 0644, no secrets), which smtpd and proxymap read to accept
 * or reject RCPT and local reads for quotas, without ever seeing a hash:
 *
 *   alice@example.test<TAB>quota=104857600S,1000C
 *   bob@example.test
 *
 * one address per line, then optional name=value fields (readers skip
 * names they do not know). quota= has the Maildir++ form; a part left out
 * is not set for that user (the defaults apply), 0 is no limit.
 *
 * Loading skips blank lines and '#' comment lines, and a rewrite drops
 * them (the file is tern's; keep notes elsewhere). A name already in the
 * file must be one field without white space or control characters; a
 * malformed or duplicate line fails the load with its line number.
 */
#ifndef TERN_USERDB_H
#define TERN_USERDB_H

#include <stdint.h>
#include <sys/types.h>

#define USERDB_FILE_MAX     (64u * 1024 * 1024)
#define USERDB_PASSWORD_MAX 1024
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets including "<>". */
#define USERDB_NAME_MAX     254
/* root and $auth_user's group may read it (userdb_save's uid and gid). */
#define USERDB_FILE_MODE    0640

struct userdb_entry {
	char *name;
	char *password; /* "{SCHEME}..." as stored */
	char *rest;     /* fields after the password, verbatim (may be "") */
};

struct userdb {
	struct userdb_entry *v;
	int count;
};

/* A missing file loads as empty. 0 or -1 with *error_r. */
int userdb_load(const char *path, struct userdb *db, const char **error_r);
void userdb_free(struct userdb *db);
const struct userdb_entry *userdb_find(
    const struct userdb *db, const char *name);
/*
 * Writes db to path and the address list to list_path, atomically.
 * uid/gid own the user file ((uid_t)-1 keeps the creator's).
 */
int userdb_save(const struct userdb *db, const char *path,
    const char *list_path, uid_t uid, gid_t gid, const char **error_r);
/* How a password is stored. */
enum userdb_scheme {
	/* "{CRYPT}$y$..." yescrypt where libxcrypt has it, else
	 * "{SHA512-CRYPT}$6$..." */
	USERDB_HASHED,
	/* "{PLAIN}password", as Dovecot's passwd-file: only for users who
	 * log in with APOP, which needs the secret itself */
	USERDB_PLAIN,
};

/*
 * Adds name with the password stored as scheme says (a fresh hash, or in
 * clear); -1 if it exists or is bad.
 * name must be user@domain (one '@', no white space, control characters,
 * ':', '/' or '\\', not starting a part with '.'); it is stored lower-case.
 * password: 1 to USERDB_PASSWORD_MAX bytes without CR or LF.
 */
int userdb_add(struct userdb *db, const char *name, const char *password,
    enum userdb_scheme scheme, const char **error_r);
/* Replaces name's password, stored as userdb_add stores it. */
int userdb_set_password(struct userdb *db, const char *name,
    const char *password, enum userdb_scheme scheme, const char **error_r);
int userdb_del(struct userdb *db, const char *name, const char **error_r);
/*
 * 1 if password matches entry, 0 if not (constant-time compare). The
 * schemes known: {SHA512-CRYPT} and {CRYPT} (any crypt(3) hash: $y$,
 * $6$...), and the plaintext ones Dovecot's passwd-file allows, {PLAIN},
 * {CLEAR} and {CLEARTEXT} (case-insensitive; an empty stored password
 * never matches); any other never matches.
 */
int userdb_verify(const struct userdb_entry *e, const char *password);
/*
 * The stored password itself when e keeps it in a plaintext scheme
 * ({PLAIN}, {CLEAR}, {CLEARTEXT}: what APOP needs), pointing into e;
 * NULL for a hash.
 */
const char *userdb_plaintext(const struct userdb_entry *e);
/* 1 if a (alen bytes, the secret) equals b, in time that depends only on
 * alen. */
int userdb_equal_ct(const void *a, size_t alen, const void *b, size_t blen);

/* A mailbox's own limits: -1 not set (the defaults apply), 0 no limit. */
struct userdb_limits {
	int64_t bytes;
	int64_t count;
};

/*
 * The limits in e's extra fields, read as Dovecot reads them:
 * userdb_quota_rule, userdb_quota_rule2, ... (or without "userdb_") with
 * a rule for the whole mailbox ('*' or '?'): "*:storage=100M" (storage in
 * KiB unless a unit B K M G T follows), "*:bytes=N", "*:messages=N",
 * several joined by ':'. Rules for single folders are not applied.
 */
void userdb_entry_limits(const struct userdb_entry *e, struct userdb_limits *l);
/*
 * Sets name's limits: "userdb_quota_rule=*:storage=<size>" and
 * "userdb_quota_rule2=*:messages=<n>" for the parts that are set (>= 0),
 * replacing older whole-mailbox rules and keeping every other field.
 */
int userdb_set_limits(struct userdb *db, const char *name,
    const struct userdb_limits *l, const char **error_r);

/*
 * The derived address list, for RCPT checks: reloads path when its mtime
 * or size changed since the last call (a stat per call). 1 if addr is
 * listed, 0 if not, -1 if the list cannot be read or is missing (caller
 * answers 451). Case-insensitive. One cache per process, not thread-safe.
 */
int userdb_list_contains(
    const char *path, const char *addr, const char **error_r);
/* The same, also giving a listed address's limits (if limits_r). */
int userdb_list_lookup(const char *path, const char *addr,
    struct userdb_limits *limits_r, const char **error_r);

#endif
