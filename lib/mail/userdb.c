/* SPDX-License-Identifier: MIT */
/*
 * The virtual user file (Dovecot passwd-file format) and the address list
 * derived from it. ternuser edits the user file; the auth process reads
 * it; smtpd, proxymap and local read only the list (addresses and their
 * quota), so no process that faces the network or stores mail holds a
 * password hash. Passwords are stored as yescrypt ("{CRYPT}$y$", from
 * libxcrypt's crypt_gensalt) where libcrypt has it, else as SHA512-CRYPT
 * ("$6$") with a 16-character salt from getrandom(2), and checked in
 * constant time; both, and other crypt(3) hashes under {CRYPT}, verify.
 * On request a password is stored in clear ("{PLAIN}"), for the users
 * who log in with APOP (RFC 1939 7). Names are RFC 5321 mailbox
 * addresses (user@domain), which also become maildir path components, so
 * anything that could leave the mail store ('/', a leading '.') is refused.
 */
#include <errno.h>
#include <stdint.h>
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
#include "mail/maildir.h"
#include "mail/userdb.h"

#define USERDB_SALT_LEN        16
/* Random bytes behind a salt (yescrypt takes up to 64). */
#define USERDB_SALT_RANDOM     32
#define USERDB_SALT_SIZE       128
#define USERDB_SCHEME_SHA512   "{SHA512-CRYPT}"
#define USERDB_SCHEME_PLAIN    "{PLAIN}"
#define USERDB_SCHEME_CRYPT    "{CRYPT}"
#define USERDB_SHA512_PREFIX   "$6$"
#define USERDB_YESCRYPT_PREFIX "$y$"
/* The fields after the password that tern writes (uid:gid:gecos:home:shell:extra). */
#define USERDB_EMPTY_REST      ":::::"
#define USERDB_LIST_MODE       0644
/* Fields before the extra fields in what follows the password. */
#define USERDB_REST_FIELDS     5
/* Dovecot's passwd-file marks userdb fields with this prefix. */
#define USERDB_FIELD_PREFIX    "userdb_"
#define USERDB_RULE_KEY        "userdb_quota_rule"
#define USERDB_LIST_QUOTA      "quota="
#define USERDB_KIB             1024u
#define USERDB_NUM_SIZE        32
/* One user line as ternuser writes it. */
#define USERDB_LINE_MAX        (64 * 1024)
#define USERDB_ERR_SIZE        512

static const char salt_chars[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static __thread char userdb_err[USERDB_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define userdb_error(...) str_format(userdb_err, sizeof(userdb_err), __VA_ARGS__)

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

/* The list's form of limits: "\tquota=<bytes>S,<count>C", parts not set
 * left out; "" when neither is set. */
static void
list_quota(const struct userdb_limits *l, char *out, size_t size)
{
	out[0] = '\0';
	if (l->bytes < 0 && l->count < 0)
		return;
	snprintf(out, size, "\t%s", USERDB_LIST_QUOTA);
	if (l->bytes >= 0)
		snprintf(out + strlen(out), size - strlen(out), "%lldS",
		    (long long)l->bytes);
	if (l->count >= 0)
		snprintf(out + strlen(out), size - strlen(out), "%s%lldC",
		    l->bytes >= 0 ? "," : "", (long long)l->count);
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

		struct userdb_limits l;
		char quota[USERDB_NUM_SIZE * 2 + 16];

		userdb_entry_limits(e, &l);
		list_quota(&l, quota, sizeof(quota));
		if (buf_printf(&users, "%s:%s%s%s\n", e->name, e->password,
		        e->rest[0] != '\0' ? ":" : "", e->rest) < 0 ||
		    buf_printf(&list, "%s%s\n", e->name, quota) < 0) {
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

/*
 * The stored form of password: "{CRYPT}$y$..." (yescrypt) where
 * libxcrypt makes it, else "{SHA512-CRYPT}$6$..." with a 16-character
 * salt from getrandom(2). Caller frees; NULL with *error_r.
 */
static char *
userdb_hash(const char *password, const char **error_r)
{
	unsigned char rnd[USERDB_SALT_RANDOM];
	char salt[USERDB_SALT_SIZE];
	struct crypt_data *cd;
	const char *hash = NULL, *scheme = USERDB_SCHEME_SHA512;
	char *stored = NULL;
	size_t i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*error_r = userdb_error("getrandom: %s", strerror(errno));
		return NULL;
	}
	cd = xcalloc(1, sizeof(*cd));
#ifdef CRYPT_GENSALT_OUTPUT_SIZE
	/* libxcrypt: yescrypt at its default cost, where it is built in. */
	if (crypt_gensalt_rn(USERDB_YESCRYPT_PREFIX, 0, (const char *)rnd,
	        (int)sizeof(rnd), salt, (int)sizeof(salt)) != NULL) {
		hash = crypt_r(password, salt, cd);
		if (hash != NULL && strncmp(hash, USERDB_YESCRYPT_PREFIX,
		                        strlen(USERDB_YESCRYPT_PREFIX)) == 0)
			scheme = USERDB_SCHEME_CRYPT;
		else
			hash = NULL;
	}
#endif
	if (hash == NULL) {
		memcpy(
		    salt, USERDB_SHA512_PREFIX, strlen(USERDB_SHA512_PREFIX));
		for (i = 0; i < USERDB_SALT_LEN; i++) /* 64 symbols: unbiased */
			salt[strlen(USERDB_SHA512_PREFIX) + i] =
			    salt_chars[rnd[i] & 63];
		salt[strlen(USERDB_SHA512_PREFIX) + USERDB_SALT_LEN] = '\0';
		hash = crypt_r(password, salt, cd);
		if (hash == NULL || strncmp(hash, USERDB_SHA512_PREFIX,
		                        strlen(USERDB_SHA512_PREFIX)) != 0) {
			*error_r = userdb_error("crypt: %s",
			    hash == NULL ? strerror(errno)
			                 : "SHA512-CRYPT unsupported");
			hash = NULL;
		}
	}
	if (hash != NULL)
		stored = xasprintf("%s%s", scheme, hash);
	explicit_bzero(cd, sizeof(*cd));
	explicit_bzero(rnd, sizeof(rnd));
	free(cd);
	return stored;
}

/* The password field for password stored as scheme says; caller frees,
 * NULL with *error_r. */
static char *
userdb_stored(const char *password, enum userdb_scheme scheme,
    const char **error_r)
{
	size_t plen = strlen(password);

	if (plen == 0 || plen > USERDB_PASSWORD_MAX ||
	    strpbrk(password, "\r\n") != NULL) {
		*error_r = "password must be 1 to 1024 characters, one line";
		return NULL;
	}
	if (scheme == USERDB_HASHED)
		return userdb_hash(password, error_r);
	/* In clear, the field ends at the next ':' (Dovecot's too). */
	if (strchr(password, ':') != NULL ||
	    plen + strlen(USERDB_SCHEME_PLAIN) > USERDB_PASSWORD_MAX) {
		*error_r = userdb_error("a password stored in clear must "
		                        "not contain ':' and may have at "
		                        "most %zu characters",
		    USERDB_PASSWORD_MAX - strlen(USERDB_SCHEME_PLAIN));
		return NULL;
	}
	return xasprintf("%s%s", USERDB_SCHEME_PLAIN, password);
}

int
userdb_add(struct userdb *db, const char *name, const char *password,
    enum userdb_scheme scheme, const char **error_r)
{
	char *lname, *stored;

	if (!name_valid(name)) {
		*error_r = "user name must be an address user@domain without "
		           "white space, control characters, ':' or '/'";
		return -1;
	}
	if (userdb_find(db, name) != NULL) {
		*error_r = "user already exists";
		return -1;
	}
	if ((stored = userdb_stored(password, scheme, error_r)) == NULL)
		return -1;
	lname = xstrdup(name);
	str_lower(lname);
	entry_add(db, lname, stored, xstrdup(USERDB_EMPTY_REST));
	return 0;
}

int
userdb_set_password(struct userdb *db, const char *name, const char *password,
    enum userdb_scheme scheme, const char **error_r)
{
	struct userdb_entry *e = (struct userdb_entry *)userdb_find(db, name);
	char *stored;

	if (e == NULL) {
		*error_r = "no such user";
		return -1;
	}
	if ((stored = userdb_stored(password, scheme, error_r)) == NULL)
		return -1;
	explicit_bzero(e->password, strlen(e->password));
	free(e->password);
	e->password = stored;
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

/* Dovecot's passwd-file names for a password stored as itself. */
static const char *const userdb_plain_schemes[] = {
    USERDB_SCHEME_PLAIN,
    "{CLEAR}",
    "{CLEARTEXT}",
};

const char *
userdb_plaintext(const struct userdb_entry *e)
{
	const char *stored = e->password;
	size_t i, n;

	for (i = 0; i < sizeof(userdb_plain_schemes) /
	                    sizeof(userdb_plain_schemes[0]);
	     i++) {
		n = strlen(userdb_plain_schemes[i]);
		if (str_prefix_ci(stored, strlen(stored),
		        userdb_plain_schemes[i]))
			return stored + n;
	}
	return NULL;
}

int
userdb_equal_ct(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = alen != blen;
	size_t i;

	/* Time depends on alen (the secret's length, fixed per user), never
	 * on where the bytes differ. */
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)(x[i] ^ (blen > 0 ? y[i % blen] : 0));
	return diff == 0;
}

int
userdb_verify(const struct userdb_entry *e, const char *password)
{
	struct crypt_data *cd;
	const char *stored = e->password, *hash, *plain;
	size_t i, len;
	unsigned char diff = 0;

	if ((plain = userdb_plaintext(e)) != NULL)
		return *plain != '\0' &&
		       userdb_equal_ct(
		           plain, strlen(plain), password, strlen(password));
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

/* 1 if key (up to '=') is quota_rule, quota_rule2, ... with or without
 * Dovecot's "userdb_" prefix. */
static int
is_quota_rule_key(const char *tok, size_t klen)
{
	static const char *const prefixes[] = {
	    USERDB_RULE_KEY, &USERDB_RULE_KEY[sizeof(USERDB_FIELD_PREFIX) - 1]};
	size_t i, plen, j;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		plen = strlen(prefixes[i]);
		if (klen < plen || strncmp(tok, prefixes[i], plen) != 0)
			continue;
		for (j = plen; j < klen; j++) {
			if (tok[j] < '0' || tok[j] > '9')
				break;
		}
		if (j == klen)
			return 1;
	}
	return 0;
}

/* A size as Dovecot reads one: digits, then B K M G T (case-insensitive). */
static int
parse_dovecot_size(
    const char *s, size_t len, uint64_t default_unit, int64_t *v_r)
{
	static const char units[] = "bkmgt";
	uint64_t v, unit = default_unit;
	size_t digits = 0;
	const char *u;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0 || digits + 1 < len ||
	    str_to_u64_n(s, digits, (uint64_t)INT64_MAX, &v) < 0)
		return -1;
	if (digits + 1 == len) {
		u = strchr(units, s[digits] | 0x20);
		if (u == NULL || *u == '\0')
			return -1;
		for (unit = 1; u > units; u--)
			unit *= USERDB_KIB;
	}
	if (v != 0 && unit > (uint64_t)INT64_MAX / v)
		return -1;
	*v_r = (int64_t)(v * unit);
	return 0;
}

/*
 * One rule "MASK:name=value[:name=value]..." into *l. Only the whole
 * mailbox's rules ('*', or '?' that Dovecot uses as a default) count;
 * relative (+/-) and percentage limits are ignored.
 */
static void
parse_rule(const char *rule, size_t len, struct userdb_limits *l)
{
	const char *end = rule + len, *p, *e, *eq;
	int64_t v;

	if (len < 2 || (rule[0] != '*' && rule[0] != '?') || rule[1] != ':')
		return;
	for (p = rule + 2; p < end; p = e + 1) {
		e = memchr(p, ':', (size_t)(end - p));
		if (e == NULL)
			e = end;
		eq = memchr(p, '=', (size_t)(e - p));
		if (eq == NULL)
			continue;
		if ((size_t)(eq - p) == strlen("storage") &&
		    strncmp(p, "storage", (size_t)(eq - p)) == 0 &&
		    parse_dovecot_size(
		        eq + 1, (size_t)(e - eq - 1), USERDB_KIB, &v) == 0)
			l->bytes = v; /* Dovecot: storage is in KiB */
		else if ((size_t)(eq - p) == strlen("bytes") &&
		         strncmp(p, "bytes", (size_t)(eq - p)) == 0 &&
		         parse_dovecot_size(
		             eq + 1, (size_t)(e - eq - 1), 1, &v) == 0)
			l->bytes = v;
		else if ((size_t)(eq - p) == strlen("messages") &&
		         strncmp(p, "messages", (size_t)(eq - p)) == 0 &&
		         parse_dovecot_size(
		             eq + 1, (size_t)(e - eq - 1), 1, &v) == 0)
			l->count = v;
	}
}

/*
 * Where the extra fields of rest (after uid:gid:gecos:home:shell) start,
 * or -1 when rest has fewer fields.
 */
static long
extra_offset(const char *rest)
{
	const char *p = rest;
	int i;

	for (i = 0; i < USERDB_REST_FIELDS; i++) {
		p = strchr(p, ':');
		if (p == NULL)
			return -1;
		p++;
	}
	return (long)(p - rest);
}

void
userdb_entry_limits(const struct userdb_entry *e, struct userdb_limits *l)
{
	long off = extra_offset(e->rest);
	const char *p = off < 0 ? "" : e->rest + off, *end, *eq;

	l->bytes = l->count = -1;
	for (; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = p + strcspn(p, " ");
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL && is_quota_rule_key(p, (size_t)(eq - p)))
			parse_rule(eq + 1, (size_t)(end - eq - 1), l);
	}
}

/* "100M", "12345B", "0": a byte count in the largest exact unit. */
static void
format_storage(int64_t bytes, char *out, size_t size)
{
	static const char units[] = "KMGT";
	uint64_t v = (uint64_t)bytes;
	int u = -1;

	if (v == 0) {
		snprintf(out, size, "0");
		return;
	}
	while (u + 1 < (int)strlen(units) && v % USERDB_KIB == 0) {
		v /= USERDB_KIB;
		u++;
	}
	snprintf(
	    out, size, "%llu%c", (unsigned long long)v, u < 0 ? 'B' : units[u]);
}

/* Appends " key=value" for rule number n (1: no number, as Dovecot). */
static int
put_rule(struct buf *b, int n, const char *value, size_t len)
{
	char num[USERDB_NUM_SIZE] = "";

	if (n > 1)
		snprintf(num, sizeof(num), "%d", n);
	return buf_printf(
	    b, " %s%s=%.*s", USERDB_RULE_KEY, num, (int)len, value);
}

int
userdb_set_limits(struct userdb *db, const char *name,
    const struct userdb_limits *l, const char **error_r)
{
	struct userdb_entry *e = (struct userdb_entry *)userdb_find(db, name);
	char size[USERDB_NUM_SIZE], rule[2 * USERDB_NUM_SIZE];
	const char *p, *end, *eq, *extra;
	struct buf fields, others, out;
	long off;
	int n = 0, bad = 0, colons = 0;

	if (e == NULL) {
		*error_r = "no such user";
		return -1;
	}
	buf_init(&fields, USERDB_LINE_MAX);
	buf_init(&others, USERDB_LINE_MAX);
	buf_init(&out, USERDB_LINE_MAX);
	if (l->bytes >= 0) {
		format_storage(l->bytes, size, sizeof(size));
		snprintf(rule, sizeof(rule), "*:storage=%s", size);
		bad |= put_rule(&fields, ++n, rule, strlen(rule)) < 0;
	}
	if (l->count >= 0) {
		snprintf(
		    rule, sizeof(rule), "*:messages=%lld", (long long)l->count);
		bad |= put_rule(&fields, ++n, rule, strlen(rule)) < 0;
	}
	/* The whole mailbox's old rules give way; other rules keep their
	 * order, renumbered after ours (Dovecot stops at a gap). */
	off = extra_offset(e->rest);
	extra = off < 0 ? "" : e->rest + off;
	for (p = extra; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		end = p + strcspn(p, " ");
		eq = memchr(p, '=', (size_t)(end - p));
		if (end == p)
			continue;
		if (eq != NULL && is_quota_rule_key(p, (size_t)(eq - p))) {
			if (end - eq > 2 && (eq[1] == '*' || eq[1] == '?') &&
			    eq[2] == ':')
				continue;
			bad |= put_rule(&fields, ++n, eq + 1,
			           (size_t)(end - eq - 1)) < 0;
		} else {
			bad |=
			    buf_printf(&others, " %.*s", (int)(end - p), p) < 0;
		}
	}
	if (others.len > 0)
		bad |= buf_append(&fields, others.data, others.len) < 0;
	/* uid:gid:gecos:home:shell as they were, padded to five fields. */
	if (off < 0) {
		bad |= buf_printf(&out, "%s", e->rest) < 0;
		for (p = e->rest; *p != '\0'; p++)
			colons += *p == ':';
		for (; colons < USERDB_REST_FIELDS; colons++)
			bad |= buf_append(&out, ":", 1) < 0;
	} else {
		bad |= buf_append(&out, e->rest, (size_t)off) < 0;
	}
	if (fields.len > 0)
		bad |= buf_append(&out, fields.data + 1, fields.len - 1) < 0;
	if (!bad) {
		free(e->rest);
		e->rest = xstrdup(buf_cstr(&out));
	} else {
		*error_r = "user line too long";
	}
	buf_free(&fields);
	buf_free(&others);
	buf_free(&out);
	return bad ? -1 : 0;
}

/*
 * The list cache: smtpd asks once per RCPT, so the list is parsed only
 * when the file changes (a rename by file_write_atomic changes the inode).
 */
struct list_entry {
	char *addr; /* lower-case, into storage */
	struct userdb_limits limits;
};

static struct {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct list_entry *v; /* sorted by addr */
	size_t count;
	char *storage; /* the file text the entries point into */
} list_cache;

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->addr,
	    ((const struct list_entry *)b)->addr);
}

static void
list_cache_clear(void)
{
	free(list_cache.path);
	free(list_cache.v);
	free(list_cache.storage);
	memset(&list_cache, 0, sizeof(list_cache));
}

/* "addr[<white space>name=value]...": unknown names are skipped, so that
 * later fields do not break an older reader. */
static void
list_parse_line(char *line, struct list_entry *e)
{
	struct maildir_quota q;
	char *p, *tok;

	e->limits.bytes = e->limits.count = -1;
	p = line + strcspn(line, " \t");
	if (*p != '\0')
		*p++ = '\0';
	str_lower(line);
	e->addr = line;
	while (*p != '\0') {
		p += strspn(p, " \t");
		tok = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		if (strncmp(
		        tok, USERDB_LIST_QUOTA, strlen(USERDB_LIST_QUOTA)) != 0)
			continue;
		tok += strlen(USERDB_LIST_QUOTA);
		if (maildir_quota_parse_limits(tok, &q) < 0)
			continue;
		/* parse_limits gives 0 for a part left out: look again. */
		if (strchr(tok, 'S') != NULL)
			e->limits.bytes = (int64_t)q.bytes;
		if (strchr(tok, 'C') != NULL)
			e->limits.count = (int64_t)q.count;
	}
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
	list_cache.v = xcalloc(max, sizeof(*list_cache.v));
	for (p = list_cache.storage; p != NULL && *p != '\0'; p = nl) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		line = str_trim(p);
		if (*line == '\0' || *line == '#')
			continue;
		list_parse_line(line, &list_cache.v[n++]);
	}
	list_cache.count = n;
	qsort(list_cache.v, n, sizeof(*list_cache.v), cmp_entry);
	list_cache.path = xstrdup(path);
	list_cache.dev = st->st_dev;
	list_cache.ino = st->st_ino;
	list_cache.size = st->st_size;
	list_cache.mtime = st->st_mtim;
	return 0;
}

int
userdb_list_lookup(const char *path, const char *addr,
    struct userdb_limits *limits_r, const char **error_r)
{
	struct list_entry key, *found;
	struct stat st;

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
	key.addr = xstrdup(addr);
	str_lower(key.addr);
	found = bsearch(&key, list_cache.v, list_cache.count,
	    sizeof(*list_cache.v), cmp_entry);
	free(key.addr);
	if (found != NULL && limits_r != NULL)
		*limits_r = found->limits;
	return found != NULL;
}

int
userdb_list_contains(const char *path, const char *addr, const char **error_r)
{
	return userdb_list_lookup(path, addr, NULL, error_r);
}
