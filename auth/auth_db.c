/* SPDX-License-Identifier: MIT */
/*
 * The auth service's copy of the user file (lib/mail/userdb, Dovecot
 * passwd-file format): loaded at start and again whenever the file is
 * not the one loaded, which ternuser's atomic rename always makes so.
 * A file that is missing, unreadable or malformed gives tempfail, not
 * fail, and the previous copy is dropped rather than kept: a user just
 * removed must not keep logging in. The problem is logged once per
 * state of the file, not once per request. No RFCs.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/log.h"
#include "mail/params.h"
#include "mail/userdb.h"
#include "auth.h"

/* Random bytes behind the dummy password. */
#define AUTH_DUMMY_BYTES 16
#define AUTH_DUMMY_NAME  "nobody@dummy.invalid"

enum auth_db_state {
	AUTH_DB_STATE_NONE,   /* nothing tried yet, or no file (stat failed) */
	AUTH_DB_STATE_LOADED, /* db holds the file with stamp */
	AUTH_DB_STATE_BROKEN, /* the file with stamp could not be loaded */
};

/* What identifies one version of the file. */
struct auth_db_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

static struct {
	enum auth_db_state state;
	struct auth_db_stamp stamp;
	int stat_errno; /* with STATE_NONE: the failure last logged */
	/* Counts the changes of db (loaded, dropped): what was learnt from
	 * one version, like a cached login, is not trusted in another. */
	uint64_t generation;
	struct userdb db;
	/* One entry: a SHA512-CRYPT hash, made like a real one, of a
	 * random password nobody knows. */
	struct userdb dummy;
} auth_db;

static void
auth_db_stamp(struct auth_db_stamp *s, const struct stat *st)
{
	memset(s, 0, sizeof(*s));
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
}

static int
auth_db_stamp_eq(const struct auth_db_stamp *a, const struct auth_db_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void
auth_db_dummy(void)
{
	unsigned char rnd[AUTH_DUMMY_BYTES];
	const char *err;
	struct buf pw;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		msg_fatal("getrandom: %m");
	/* Text without CR or LF, as userdb_add wants a password. */
	buf_init(&pw, BASE64_ENCODED_LEN(sizeof(rnd)));
	if (base64_encode(rnd, sizeof(rnd), &pw) < 0)
		msg_panic("auth: dummy password outgrew its buffer");
	/* userdb_add hashes exactly as ternuser does: the same cost. */
	if (userdb_add(&auth_db.dummy, AUTH_DUMMY_NAME, buf_cstr(&pw),
	        USERDB_HASHED, &err) < 0)
		msg_fatal("cannot make the dummy hash: %s", err);
	explicit_bzero(pw.data, pw.len);
	explicit_bzero(rnd, sizeof(rnd));
	buf_free(&pw);
}

/* Makes auth_db.db the current file; 0, or -1 when it is unusable. */
static int
auth_db_refresh(void)
{
	struct auth_db_stamp now;
	struct userdb fresh;
	const char *err;
	struct stat st;

	if (stat(var_user_file, &st) < 0) {
		if (auth_db.state != AUTH_DB_STATE_NONE ||
		    auth_db.stat_errno != errno)
			msg_error("user file %s: %m; answering tempfail",
			    var_user_file);
		auth_db.stat_errno = errno;
		if (auth_db.state != AUTH_DB_STATE_NONE)
			auth_db.generation++;
		userdb_free(&auth_db.db);
		auth_db.state = AUTH_DB_STATE_NONE;
		return -1;
	}
	auth_db.stat_errno = 0;
	auth_db_stamp(&now, &st);
	if (auth_db.state != AUTH_DB_STATE_NONE &&
	    auth_db_stamp_eq(&now, &auth_db.stamp))
		return auth_db.state == AUTH_DB_STATE_LOADED ? 0 : -1;
	userdb_free(&auth_db.db);
	auth_db.generation++;
	auth_db.stamp = now;
	/* Never open a FIFO or a device: the read would block or worse. */
	if (!S_ISREG(st.st_mode)) {
		msg_error("user file %s is not a regular file; answering "
		          "tempfail",
		    var_user_file);
		auth_db.state = AUTH_DB_STATE_BROKEN;
		return -1;
	}
	if (userdb_load(var_user_file, &fresh, &err) < 0) {
		msg_error("%s; answering tempfail until the file changes", err);
		auth_db.state = AUTH_DB_STATE_BROKEN;
		return -1;
	}
	auth_db.db = fresh;
	auth_db.state = AUTH_DB_STATE_LOADED;
	msg_info("loaded %s: users=%d", var_user_file, fresh.count);
	return 0;
}

void
auth_db_init(void)
{
	auth_db_dummy();
	(void)auth_db_refresh();
}

enum auth_db_result
auth_db_find(const char *user, const struct userdb_entry **e_r)
{
	if (auth_db_refresh() < 0)
		return AUTH_DB_UNAVAILABLE;
	if ((*e_r = userdb_find(&auth_db.db, user)) == NULL) {
		*e_r = &auth_db.dummy.v[0];
		return AUTH_DB_UNKNOWN;
	}
	return AUTH_DB_OK;
}

uint64_t
auth_db_generation(void)
{
	return auth_db.generation;
}

enum auth_db_result
auth_db_check_apop(const char *user, const char *challenge, const char *digest,
    const char **canonical_r)
{
	const struct userdb_entry *e;
	const char *plain;

	if (auth_db_refresh() < 0)
		return AUTH_DB_UNAVAILABLE;
	if ((e = userdb_find(&auth_db.db, user)) == NULL) {
		(void)auth_apop_match(challenge, AUTH_DUMMY_NAME, digest);
		return AUTH_DB_UNKNOWN;
	}
	*canonical_r = e->name;
	if ((plain = userdb_plaintext(e)) == NULL || *plain == '\0') {
		(void)auth_apop_match(challenge, AUTH_DUMMY_NAME, digest);
		return AUTH_DB_MISMATCH;
	}
	return auth_apop_match(challenge, plain, digest) ? AUTH_DB_OK
	                                                 : AUTH_DB_MISMATCH;
}

void
auth_db_shutdown(void)
{
	userdb_free(&auth_db.db);
	userdb_free(&auth_db.dummy);
	auth_db.state = AUTH_DB_STATE_NONE;
}
