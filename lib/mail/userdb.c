/* SPDX-License-Identifier: MIT */
/*
 * The virtual user file (Dovecot passwd-file format) and the address list
 * derived from it. ternuser edits the user file; local delivery and, later,
 * the auth process read it; smtpd reads only the list, so the process that
 * faces the network never holds a password hash. Passwords are stored as
 * SHA512-CRYPT ("$6$", glibc crypt_r) with a 16-character salt from
 * getrandom(2) and checked in constant time. Names are RFC 5321 mailbox
 * addresses (user@domain), which also become maildir path components, so
 * anything that could leave the mail store ('/', a leading '.') is refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <crypt.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/userdb.h"

#define USERDB_SALT_LEN      16
#define USERDB_SCHEME_SHA512 "{SHA512-CRYPT}"
#define USERDB_SCHEME_CRYPT  "{CRYPT}"
#define USERDB_SHA512_PREFIX "$6$"
/* The fields after the password that tern writes (uid:gid:gecos:home:shell:extra). */
#define USERDB_EMPTY_REST    ":::::"
#define USERDB_LIST_MODE     0644
#define USERDB_ERR_SIZE      512

static const char salt_chars[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static __thread char userdb_err[USERDB_ERR_SIZE];

static const char *userdb_error(const char *fmt, ...) MTA_PRINTF(1, 2);

static const char *
userdb_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(userdb_err, sizeof(userdb_err), fmt, ap);
	va_end(ap);
	return userdb_err;
}

static int
is_ctl_or_space(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

/* Loose check for names already in a file: one field, printable. */
static int
name_sane(const char *s)
{
	if (*s == '\0' || *s == '#')
		return 0;
	for (; *s != '\0'; s++) {
		if (is_ctl_or_space((unsigned char)*s) || *s == ':')
			return 0;
	}
	return 1;
}

/* Strict check for names tern adds: user@domain, safe as path parts. */
static int
name_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (!name_sane(s) || strlen(s) > USERDB_NAME_MAX || at == NULL ||
	    at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    strchr(s, '/') != NULL || strchr(s, '\\') != NULL || s[0] == '.' ||
	    at[1] == '.')
		return 0;
	return 1;
}

static void
entry_free(struct userdb_entry *e)
{
	free(e->name);
	free(e->password);
	free(e->rest);
}

static void
entry_add(struct userdb *db, char *name, char *password, char *rest)
{
	struct userdb_entry *e;

	db->v = xrealloc(db->v, sizeof(*db->v) * (size_t)(db->count + 1));
	e = &db->v[db->count++];
	e->name = name;
	e->password = password;
	e->rest = rest;
}

void
userdb_free(struct userdb *db)
{
	int i;

	for (i = 0; i < db->count; i++)
		entry_free(&db->v[i]);
	free(db->v);
	db->v = NULL;
	db->count = 0;
}

const struct userdb_entry *
userdb_find(const struct userdb *db, const char *name)
{
	int i;

	for (i = 0; i < db->count; i++) {
		if (str_eq_ci(db->v[i].name, name))
			return &db->v[i];
	}
	return NULL;
}

/* One line "name:password[:rest]"; 0 or -1. */
static int
parse_line(struct userdb *db, char *line)
{
	char *c1, *c2, *name;

	c1 = strchr(line, ':');
	if (c1 == NULL)
		return -1;
	*c1 = '\0';
	c2 = strchr(c1 + 1, ':');
	if (c2 != NULL)
		*c2 = '\0';
	if (!name_sane(line) || strlen(c1 + 1) > USERDB_PASSWORD_MAX)
		return -1;
	name = xstrdup(line);
	str_lower(name);
	if (userdb_find(db, name) != NULL) {
		free(name);
		return -1;
	}
	entry_add(db, name, xstrdup(c1 + 1), xstrdup(c2 != NULL ? c2 + 1 : ""));
	return 0;
}

int
userdb_load(const char *path, struct userdb *db, const char **error_r)
{
	struct buf b;
	char *p, *nl;
	size_t len;
	int lineno = 0;

	db->v = NULL;
	db->count = 0;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	buf_init(&b, USERDB_FILE_MAX);
	if (file_read_all(path, USERDB_FILE_MAX, &b, error_r) < 0) {
		buf_free(&b);
		return -1;
	}
	if (b.len == 0) {
		buf_free(&b);
		return 0;
	}
	if (memchr(b.data, '\0', b.len) != NULL) {
		*error_r = userdb_error("%s: NUL byte in file", path);
		buf_free(&b);
		return -1;
	}
	for (p = b.data; p != NULL && *p != '\0'; p = nl) {
		lineno++;
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		len = strlen(p);
		/* CRLF files, and any stray CRs before the LF. */
		while (len > 0 && p[len - 1] == '\r')
			p[--len] = '\0';
		if (len == 0 || p[0] == '#')
			continue;
		if (parse_line(db, p) < 0) {
			*error_r = userdb_error("%s:%d: malformed or duplicate "
			                        "user line",
			    path, lineno);
			userdb_free(db);
			buf_free(&b);
			return -1;
		}
	}
	buf_free(&b);
	return 0;
}

int
userdb_save(const struct userdb *db, const char *path, const char *list_path,
    uid_t uid, gid_t gid, const char **error_r)
{
	struct buf users, list;
	int i, ret = -1;

	buf_init(&users, USERDB_FILE_MAX);
	buf_init(&list, USERDB_FILE_MAX);
	for (i = 0; i < db->count; i++) {
		const struct userdb_entry *e = &db->v[i];

		if (buf_printf(&users, "%s:%s%s%s\n", e->name, e->password,
		        e->rest[0] != '\0' ? ":" : "", e->rest) < 0 ||
		    buf_printf(&list, "%s\n", e->name) < 0) {
			*error_r =
			    userdb_error("%s: user file too large", path);
			goto out;
		}
	}
	if (file_write_atomic(path, users.data, users.len, USERDB_FILE_MODE,
	        uid, gid, error_r) < 0 ||
	    file_write_atomic(list_path, list.data, list.len, USERDB_LIST_MODE,
	        (uid_t)-1, (gid_t)-1, error_r) < 0)
		goto out;
	ret = 0;
out:
	buf_free(&users);
	buf_free(&list);
	return ret;
}

int
userdb_add(struct userdb *db, const char *name, const char *password,
    const char **error_r)
{
	unsigned char rnd[USERDB_SALT_LEN];
	char salt[sizeof(USERDB_SHA512_PREFIX) + USERDB_SALT_LEN];
	struct crypt_data *cd;
	const char *hash;
	char *lname;
	size_t i, plen = strlen(password);

	if (!name_valid(name)) {
		*error_r = "user name must be an address user@domain without "
		           "white space, control characters, ':' or '/'";
		return -1;
	}
	if (userdb_find(db, name) != NULL) {
		*error_r = "user already exists";
		return -1;
	}
	if (plen == 0 || plen > USERDB_PASSWORD_MAX ||
	    strpbrk(password, "\r\n") != NULL) {
		*error_r = "password must be 1 to 1024 characters, one line";
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*error_r = userdb_error("getrandom: %s", strerror(errno));
		return -1;
	}
	memcpy(salt, USERDB_SHA512_PREFIX, strlen(USERDB_SHA512_PREFIX));
	for (i = 0; i < USERDB_SALT_LEN; i++) /* 64 symbols: unbiased */
		salt[strlen(USERDB_SHA512_PREFIX) + i] =
		    salt_chars[rnd[i] & 63];
	salt[sizeof(salt) - 1] = '\0';
	cd = xcalloc(1, sizeof(*cd));
	hash = crypt_r(password, salt, cd);
	if (hash == NULL || strncmp(hash, USERDB_SHA512_PREFIX,
	                        strlen(USERDB_SHA512_PREFIX)) != 0) {
		*error_r = userdb_error(
		    "crypt: %s", hash == NULL ? strerror(errno)
		                              : "SHA512-CRYPT unsupported");
		free(cd);
		return -1;
	}
	lname = xstrdup(name);
	str_lower(lname);
	entry_add(db, lname, xasprintf(USERDB_SCHEME_SHA512 "%s", hash),
	    xstrdup(USERDB_EMPTY_REST));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return 0;
}

int
userdb_del(struct userdb *db, const char *name, const char **error_r)
{
	const struct userdb_entry *e = userdb_find(db, name);
	int i;

	if (e == NULL) {
		*error_r = "no such user";
		return -1;
	}
	i = (int)(e - db->v);
	entry_free(&db->v[i]);
	memmove(&db->v[i], &db->v[i + 1],
	    sizeof(*db->v) * (size_t)(db->count - i - 1));
	db->count--;
	return 0;
}

int
userdb_verify(const struct userdb_entry *e, const char *password)
{
	struct crypt_data *cd;
	const char *stored = e->password, *hash;
	size_t i, len;
	unsigned char diff = 0;

	if (str_prefix_ci(stored, strlen(stored), USERDB_SCHEME_SHA512)) {
		stored += strlen(USERDB_SCHEME_SHA512);
		if (strncmp(stored, USERDB_SHA512_PREFIX,
		        strlen(USERDB_SHA512_PREFIX)) != 0)
			return 0;
	} else if (str_prefix_ci(stored, strlen(stored), USERDB_SCHEME_CRYPT)) {
		stored += strlen(USERDB_SCHEME_CRYPT);
	} else {
		return 0;
	}
	if (*stored == '\0')
		return 0;
	cd = xcalloc(1, sizeof(*cd));
	hash = crypt_r(password, stored, cd);
	len = strlen(stored);
	/* The length is no secret: a wrong one is a damaged or foreign hash. */
	if (hash == NULL || hash[0] == '*' || strlen(hash) != len) {
		diff = 1;
	} else {
		for (i = 0; i < len; i++)
			diff |= (unsigned char)(hash[i] ^ stored[i]);
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return diff == 0;
}

/*
 * The list cache: smtpd asks once per RCPT, so the list is parsed only
 * when the file changes (a rename by file_write_atomic changes the inode).
 */
static struct {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	char **addrs; /* sorted, lower-case */
	size_t count;
	char *storage; /* the file text the entries point into */
} list_cache;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
list_cache_clear(void)
{
	free(list_cache.path);
	free(list_cache.addrs);
	free(list_cache.storage);
	memset(&list_cache, 0, sizeof(list_cache));
}

static int
list_cache_load(const char *path, const struct stat *st, const char **error_r)
{
	struct buf b;
	char *p, *nl, *line;
	size_t n = 0, max = 1;

	buf_init(&b, USERDB_FILE_MAX);
	if (file_read_all(path, USERDB_FILE_MAX, &b, error_r) < 0) {
		buf_free(&b);
		return -1;
	}
	list_cache_clear();
	list_cache.storage = buf_steal(&b);
	for (p = list_cache.storage; *p != '\0'; p++)
		max += *p == '\n';
	list_cache.addrs = xcalloc(max, sizeof(char *));
	for (p = list_cache.storage; p != NULL && *p != '\0'; p = nl) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		line = str_trim(p);
		if (*line == '\0' || *line == '#')
			continue;
		str_lower(line);
		list_cache.addrs[n++] = line;
	}
	list_cache.count = n;
	qsort(list_cache.addrs, n, sizeof(char *), cmp_str);
	list_cache.path = xstrdup(path);
	list_cache.dev = st->st_dev;
	list_cache.ino = st->st_ino;
	list_cache.size = st->st_size;
	list_cache.mtime = st->st_mtim;
	return 0;
}

int
userdb_list_contains(const char *path, const char *addr, const char **error_r)
{
	struct stat st;
	char *key;
	int found;

	if (stat(path, &st) < 0) {
		*error_r = userdb_error("stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (list_cache.path == NULL || strcmp(list_cache.path, path) != 0 ||
	    list_cache.dev != st.st_dev || list_cache.ino != st.st_ino ||
	    list_cache.size != st.st_size ||
	    list_cache.mtime.tv_sec != st.st_mtim.tv_sec ||
	    list_cache.mtime.tv_nsec != st.st_mtim.tv_nsec) {
		if (list_cache_load(path, &st, error_r) < 0)
			return -1;
	}
	key = xstrdup(addr);
	str_lower(key);
	found = bsearch(&key, list_cache.addrs, list_cache.count,
	            sizeof(char *), cmp_str) != NULL;
	free(key);
	return found;
}
