/* SPDX-License-Identifier: MIT */
/*
 * Dovecot's dovecot-uidlist (format version 3, reading version 1 too),
 * read and written as Dovecot 2.3 does (src/lib-storage/index/maildir/
 * maildir-uidlist.c, maildir-filename.c, src/lib/file-dotlock.c), so that
 * tern and Dovecot give every message of a maildir the same IMAP UID and
 * the mailbox the same UIDVALIDITY (RFC 3501 2.3.1.1), whichever of them
 * saw the message first. pop3d builds its UIDLs (RFC 1939 7) from them,
 * as Dovecot's pop3_uidl_format "%08Xu%08Xv" does.
 *
 * The file is never locked for reading: writers hold the dotlock
 * dovecot-uidlist.lock, write dovecot-uidlist.tmp and rename it over the
 * file, so a reader sees an old or a new file, whole. New UIDs go to new
 * files in Dovecot's maildir filename order (delivery time, then
 * microseconds), so that two programs syncing the same new mail would
 * number it alike.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir_uidlist.h"

#define UIDLIST_VERSION     3
#define UIDLIST_ERR_SIZE    (PATH_MAX + 256)
/* The highest UID Dovecot gives: (uint32_t)-1 is its "no UID yet". */
#define UIDLIST_UID_LIMIT   0xffffffffu
/* Dovecot's STALE_PID_CHECK_SECS: a younger lock's PID is not checked. */
#define LOCK_PID_CHECK_SECS 2
/* Bytes of "<pid>:<host>" read back from a lock (Dovecot reads 511). */
#define LOCK_CONTENT_MAX    511
/* Pause between attempts at the lock, and after overriding one so that
 * another process overriding it at the same moment does not remove ours
 * (Dovecot sleeps 0.1 to 0.2 s). */
#define LOCK_RETRY_MS       100
#define LOCK_OVERRIDE_MS    150
#define HOST_MAX            256
/* Growth of the record array. */
#define RECS_INITIAL        64
/* Bytes read per read(2) of the file. */
#define READ_CHUNK          (64 * 1024)

struct maildir_uidlist_lock {
	char *path;
	dev_t dev;
	ino_t ino;
	/* with dev and ino: a reused inode is not ours */
	struct timespec mtime;
};

static __thread char uidlist_err[UIDLIST_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define uidlist_error(...) str_format(uidlist_err, sizeof(uidlist_err), __VA_ARGS__)

/* The base of a file name: up to its first ':' (malloc'd). */
static char *
base_dup(const char *name)
{
	return xstrndup(name, strcspn(name, ":"));
}

int
maildir_uidlist_base_valid(const char *base)
{
	size_t n = strcspn(base, ":");

	return n > 0 && base[strcspn(base, "/\r\n")] == '\0';
}

struct maildir_uidlist *
maildir_uidlist_create(void)
{
	struct maildir_uidlist *ul = xcalloc(1, sizeof(*ul));

	ul->version = UIDLIST_VERSION;
	ul->next_uid = 1;
	ul->by_base = hash_create();
	return ul;
}

static void
rec_free(struct maildir_uidlist_rec *rec)
{
	if (rec == NULL)
		return;
	free(rec->base);
	free(rec->ext);
	free(rec);
}

void
maildir_uidlist_free(struct maildir_uidlist **ul_r)
{
	struct maildir_uidlist *ul = *ul_r;
	size_t i;

	if (ul == NULL)
		return;
	for (i = 0; i < ul->count; i++)
		rec_free(ul->recs[i]);
	free(ul->recs);
	hash_free(&ul->by_base, NULL);
	free(ul->hdr_ext);
	free(ul);
	*ul_r = NULL;
}

struct maildir_uidlist_rec *
maildir_uidlist_lookup(const struct maildir_uidlist *ul, const char *base)
{
	struct maildir_uidlist_rec *rec;
	char *b;

	if (strchr(base, ':') == NULL)
		return hash_get(ul->by_base, base);
	b = base_dup(base);
	rec = hash_get(ul->by_base, b);
	free(b);
	return rec;
}

/* Index of the first record with a uid >= uid. */
static size_t
rec_search(const struct maildir_uidlist *ul, uint32_t uid)
{
	size_t lo = 0, hi = ul->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ul->recs[mid]->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct maildir_uidlist_rec *
maildir_uidlist_lookup_uid(const struct maildir_uidlist *ul, uint32_t uid)
{
	size_t i = rec_search(ul, uid);

	return i < ul->count && ul->recs[i]->uid == uid ? ul->recs[i] : NULL;
}

const char *
maildir_uidlist_rec_ext(const struct maildir_uidlist_rec *rec, char key)
{
	const char *p;

	if (rec->ext == NULL)
		return NULL;
	for (p = rec->ext; *p != '\0'; p += strlen(p) + 1)
		if (*p == key)
			return p + 1;
	return NULL;
}

static void
recs_reserve(struct maildir_uidlist *ul, size_t more)
{
	size_t cap = ul->cap == 0 ? RECS_INITIAL : ul->cap;

	while (cap < ul->count + more)
		cap *= 2;
	if (cap != ul->cap) {
		ul->recs = xrealloc(ul->recs, cap * sizeof(*ul->recs));
		ul->cap = cap;
	}
}

/* Removes the record at index i from the array (not from the hash). */
static void
recs_delete(struct maildir_uidlist *ul, size_t i)
{
	memmove(ul->recs + i, ul->recs + i + 1,
	    (ul->count - i - 1) * sizeof(*ul->recs));
	ul->count--;
}

void
maildir_uidlist_remove(struct maildir_uidlist *ul, const char *base)
{
	struct maildir_uidlist_rec *rec = maildir_uidlist_lookup(ul, base);
	size_t i;

	if (rec == NULL)
		return;
	i = rec_search(ul, rec->uid);
	if (i >= ul->count || ul->recs[i] != rec)
		msg_panic("maildir_uidlist: record %u out of order", rec->uid);
	hash_del(ul->by_base, rec->base);
	recs_delete(ul, i);
	rec_free(rec);
}

void
maildir_uidlist_remove_bases(struct maildir_uidlist *ul, char *const *bases,
    size_t n)
{
	struct maildir_uidlist_rec *rec;
	size_t i, o, removed = 0;

	for (i = 0; i < n; i++) {
		rec = maildir_uidlist_lookup(ul, bases[i]);
		if (rec == NULL)
			continue;
		hash_del(ul->by_base, rec->base);
		/* marked for the pass below: no record has uid 0 */
		rec->uid = 0;
		removed++;
	}
	if (removed == 0)
		return;
	for (i = o = 0; i < ul->count; i++) {
		if (ul->recs[i]->uid == 0) {
			rec_free(ul->recs[i]);
			continue;
		}
		ul->recs[o++] = ul->recs[i];
	}
	ul->count = o;
}

/*
 * Parsing. A line is a NUL-terminated copy (the parser, as Dovecot's,
 * sees a line up to its first NUL byte).
 */

/* Dovecot's str_to_uint: one or more digits, no sign, at most UINT_MAX. */
static int
parse_uint32(const char *s, size_t len, uint32_t *out_r)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out_r = (uint32_t)v;
	return 0;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
parse_guid(const char *s, size_t len, unsigned char *guid)
{
	size_t i;
	int hi, lo;

	if (len != 2 * MAILDIR_UIDLIST_GUID_SIZE)
		return -1;
	for (i = 0; i < MAILDIR_UIDLIST_GUID_SIZE; i++) {
		hi = hex_value(s[2 * i]);
		lo = hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		guid[i] = (unsigned char)(hi * 16 + lo);
	}
	return 0;
}

static void
hdr_ext_add(struct maildir_uidlist *ul, const char *field, size_t len)
{
	size_t old = ul->hdr_ext == NULL ? 0 : strlen(ul->hdr_ext);
	char *s = xmalloc(old + 1 + len + 1);

	if (old > 0) {
		memcpy(s, ul->hdr_ext, old);
		s[old++] = ' ';
	}
	memcpy(s + old, field, len);
	s[old + len] = '\0';
	free(ul->hdr_ext);
	ul->hdr_ext = s;
}

/* "3 V<uidvalidity> N<nextuid> G<guid> ...": 1 or 0 (corrupt). */
static int
parse_v3_header(struct maildir_uidlist *ul, const char *line,
    uint32_t *uidvalidity_r, uint32_t *next_uid_r, const char **error_r)
{
	const char *field, *value;
	size_t vlen;
	char key;

	while (*line != '\0') {
		field = line;
		key = *line++;
		value = line;
		while (*line != '\0' && *line != ' ')
			line++;
		vlen = (size_t)(line - value);
		switch (key) {
		case 'V':
			if (parse_uint32(value, vlen, uidvalidity_r) < 0) {
				*error_r = "invalid UIDVALIDITY";
				return 0;
			}
			break;
		case 'N':
			if (parse_uint32(value, vlen, next_uid_r) < 0) {
				*error_r = "invalid next UID";
				return 0;
			}
			break;
		case 'G':
			if (parse_guid(value, vlen, ul->guid) < 0) {
				*error_r = "invalid mailbox GUID";
				return 0;
			}
			ul->have_guid = 1;
			break;
		default:
			/* a CR (before a NUL) would not read back the same */
			if (memchr(field, '\r', (size_t)(line - field)) == NULL)
				hdr_ext_add(ul, field, (size_t)(line - field));
			break;
		}
		while (*line == ' ')
			line++;
	}
	return 1;
}

static int
parse_header(struct maildir_uidlist *ul, const char *line, const char **error_r)
{
	uint32_t uidvalidity = 0, next_uid = 0;
	const char *p, *start;
	int ret;

	if (*line < '0' || *line > '9' || line[1] != ' ') {
		*error_r = "invalid version number";
		return 0;
	}
	ul->version = (unsigned)(*line - '0');
	line += 2;
	if (ul->version == 1) {
		/* "1 <uidvalidity> <nextuid>", as sscanf("%u %u") reads it */
		p = line;
		while (*p == ' ')
			p++;
		for (start = p; *p >= '0' && *p <= '9'; p++)
			;
		ret = parse_uint32(start, (size_t)(p - start), &uidvalidity);
		while (*p == ' ')
			p++;
		for (start = p; ret == 0 && *p >= '0' && *p <= '9'; p++)
			;
		if (ret < 0 ||
		    parse_uint32(start, (size_t)(p - start), &next_uid) < 0) {
			*error_r = "corrupt version 1 header";
			return 0;
		}
	} else if (ul->version == UIDLIST_VERSION) {
		if (parse_v3_header(
		        ul, line, &uidvalidity, &next_uid, error_r) == 0) {
			ul->uidvalidity = uidvalidity;
			return 0;
		}
	} else {
		*error_r = "unsupported version";
		return 0;
	}
	ul->uidvalidity = uidvalidity;
	if (uidvalidity == 0 || next_uid == 0) {
		*error_r = "UIDVALIDITY or next UID 0";
		return 0;
	}
	ul->next_uid = next_uid;
	return 1;
}

/*
 * The extension fields of a v3 record, up to " :": valid ones (key A-Z)
 * into *ext_r as "<field>\0...\0", others dropped. Returns the name after
 * ':' or NULL when there is none.
 */
static const char *
parse_ext(struct maildir_uidlist *ul, const char *line, char **ext_r)
{
	const char *start;
	size_t used = 0, n;
	char *ext = NULL;

	*ext_r = NULL;
	while (*line != '\0' && *line != ':') {
		start = line;
		while (*line != ' ' && *line != '\0')
			line++;
		n = (size_t)(line - start);
		if (*start >= 'A' && *start <= 'Z') {
			/* a line is shorter than MAILDIR_UIDLIST_LINE_MAX */
			ext = xrealloc(ext, used + n + 2);
			memcpy(ext + used, start, n);
			ext[used + n] = '\0';
			used += n + 1;
		} else {
			ul->recreate = 1;
		}
		while (*line == ' ')
			line++;
	}
	if (ext != NULL) {
		ext[used] = '\0';
		*ext_r = ext;
	}
	if (*line == ':')
		line++;
	if (*line == '\0') {
		free(ext);
		*ext_r = NULL;
		return NULL;
	}
	return line;
}

/* One record line: 1, or 0 (corrupt) with *error_r. */
static int
parse_record(struct maildir_uidlist *ul, const char *line, uint32_t *prev_uid,
    const char **error_r)
{
	struct maildir_uidlist_rec *rec, *old;
	const char *name;
	uint32_t uid = 0;
	char *ext = NULL;
	size_t i;

	/* Dovecot's uid*10 + digit wraps as uint32_t arithmetic does. */
	while (*line >= '0' && *line <= '9')
		uid = uid * 10 + (uint32_t)(*line++ - '0');
	if (uid == 0 || *line != ' ') {
		*error_r = "invalid data";
		return 0;
	}
	if (uid <= *prev_uid) {
		*error_r = "UIDs not ordered";
		return 0;
	}
	if (uid == UIDLIST_UID_LIMIT) {
		*error_r = "UID too high";
		return 0;
	}
	*prev_uid = uid;
	if (ul->version == 1 && uid >= ul->next_uid) {
		*error_r = "UID larger than next UID";
		return 0;
	}
	while (*line == ' ')
		line++;
	if (ul->version == UIDLIST_VERSION) {
		name = parse_ext(ul, line, &ext);
		if (name == NULL) {
			*error_r = "invalid extended fields";
			return 0;
		}
	} else {
		name = line;
	}
	if (*name == '\0' || *name == ':' || strchr(name, '/') != NULL) {
		free(ext);
		*error_r = "broken file name";
		return 0;
	}
	if (name[strcspn(name, "\r")] != '\0') {
		/* Names no file can have for Dovecot (it ignores files with
		 * CR) and that would not read back the same once written. */
		free(ext);
		ul->recreate = 1;
		return 1;
	}
	rec = xcalloc(1, sizeof(*rec));
	rec->uid = uid;
	rec->base = base_dup(name);
	rec->ext = ext;
	old = hash_get(ul->by_base, rec->base);
	if (old != NULL) {
		/* An expunged file moved back and listed again: the later
		 * UID wins and the file is rewritten (Dovecot warns). */
		i = rec_search(ul, old->uid);
		recs_delete(ul, i);
		hash_del(ul->by_base, old->base);
		rec_free(old);
		ul->recreate = 1;
	}
	recs_reserve(ul, 1);
	ul->recs[ul->count++] = rec;
	hash_put(ul->by_base, rec->base, rec);
	return 1;
}

int
maildir_uidlist_parse(struct maildir_uidlist *ul, const char *text, size_t len,
    const char **error_r)
{
	const char *p = text, *end = text + len, *nl, *what = NULL;
	char line[MAILDIR_UIDLIST_LINE_MAX + 1];
	uint32_t prev_uid = 0;
	unsigned long lineno = 0;
	size_t n;
	int ret = 1;

	if (len > MAILDIR_UIDLIST_SIZE_MAX) {
		*error_r = uidlist_error(
		    "larger than %u bytes", MAILDIR_UIDLIST_SIZE_MAX);
		return -1;
	}
	while (ret > 0 && p < end &&
	       (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n = (size_t)(nl - p);
		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > MAILDIR_UIDLIST_LINE_MAX) {
			*error_r =
			    uidlist_error("line %lu longer than %d bytes",
			        lineno, MAILDIR_UIDLIST_LINE_MAX);
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (lineno == 1) {
			ret = parse_header(ul, line, &what);
		} else if (ul->count >= MAILDIR_UIDLIST_RECORDS_MAX) {
			*error_r = uidlist_error("more than %d records",
			    MAILDIR_UIDLIST_RECORDS_MAX);
			return -1;
		} else {
			ret = parse_record(ul, line, &prev_uid, &what);
		}
	}
	if (lineno == 0) {
		ret = 0;
		what = "no header";
	}
	if (ret == 0) {
		*error_r =
		    uidlist_error("corrupt at line %lu: %s", lineno, what);
		return 0;
	}
	if (ul->next_uid <= prev_uid)
		ul->next_uid = prev_uid + 1;
	return 1;
}

int
maildir_uidlist_format(const struct maildir_uidlist *ul, struct buf *out)
{
	const struct maildir_uidlist_rec *rec;
	const char *e;
	size_t i;

	if (ul->uidvalidity == 0 || !ul->have_guid)
		msg_panic("maildir_uidlist_format: no UIDVALIDITY or GUID");
	if (buf_printf(out, "%d V%u N%u G", UIDLIST_VERSION, ul->uidvalidity,
	        ul->next_uid) < 0)
		return -1;
	for (i = 0; i < MAILDIR_UIDLIST_GUID_SIZE; i++)
		if (buf_printf(out, "%02x", ul->guid[i]) < 0)
			return -1;
	if (ul->hdr_ext != NULL && ul->hdr_ext[0] != '\0' &&
	    (buf_putc(out, ' ') < 0 || buf_puts(out, ul->hdr_ext) < 0))
		return -1;
	if (buf_putc(out, '\n') < 0)
		return -1;
	for (i = 0; i < ul->count; i++) {
		rec = ul->recs[i];
		if (buf_printf(out, "%u", rec->uid) < 0)
			return -1;
		for (e = rec->ext; e != NULL && *e != '\0'; e += strlen(e) + 1)
			if (buf_putc(out, ' ') < 0 || buf_puts(out, e) < 0)
				return -1;
		if (buf_puts(out, " :") < 0 || buf_puts(out, rec->base) < 0 ||
		    buf_putc(out, '\n') < 0)
			return -1;
	}
	return 0;
}

/*
 * Dovecot's order of new files. Its arithmetic is kept (time_t seconds
 * and int microseconds that wrap, a difference cut to int, chars that are
 * signed) so that even odd names sort as Dovecot sorts them.
 */
static int
fname_usecs(const char *s, uint32_t *usecs_r)
{
	uint32_t usecs = 0;

	if (*s != '.')
		return 0;
	s++;
	while (*s != '\0' && *s != '.' && *s != ':') {
		if (*s++ == 'M') {
			while (*s >= '0' && *s <= '9')
				usecs = usecs * 10 + (uint32_t)(*s++ - '0');
			*usecs_r = usecs;
			return 1;
		}
	}
	return 0;
}

int
maildir_uidlist_filename_cmp(const char *a, const char *b)
{
	uint64_t secs_a = 0, secs_b = 0;
	uint32_t usecs_a, usecs_b;
	int ret;

	for (; *a >= '0' && *a <= '9'; a++)
		secs_a = secs_a * 10 + (uint64_t)(*a - '0');
	for (; *b >= '0' && *b <= '9'; b++)
		secs_b = secs_b * 10 + (uint64_t)(*b - '0');
	ret = (int)(int32_t)(uint32_t)(secs_a - secs_b);
	if (ret != 0)
		return ret;
	if (fname_usecs(a, &usecs_a) && fname_usecs(b, &usecs_b))
		ret = (int)(int32_t)(usecs_a - usecs_b);
	if (ret != 0)
		return ret;
	while (*a == *b && *a != ':' && *a != '\0') {
		a++;
		b++;
	}
	if ((*a == '\0' || *a == ':') && (*b == '\0' || *b == ':'))
		return 0;
	return (int)(signed char)*a - (int)(signed char)*b;
}

static int
new_cmp(const void *x, const void *y)
{
	const char *a = *(char *const *)x, *b = *(char *const *)y;
	int ret = maildir_uidlist_filename_cmp(a, b);

	/* Only names Dovecot's arithmetic cannot tell apart get here. */
	return ret != 0 ? ret : strcmp(a, b);
}

/* A base to add and where it was in the caller's array. */
struct new_base {
	char *base; /* first: new_cmp compares it */
	size_t index;
};

int
maildir_uidlist_add_new_uids(struct maildir_uidlist *ul,
    char *const *bases, size_t n, uint32_t *uids_r, const char **error_r)
{
	struct maildir_uidlist_rec *rec;
	struct new_base *fresh = xmalloc((n + 1) * sizeof(*fresh));
	const char *prev = NULL;
	size_t i, k = 0, uniq = 0;
	char *b;
	int ret = 0;

	for (i = 0; i < n; i++) {
		if (!maildir_uidlist_base_valid(bases[i]))
			msg_panic("maildir_uidlist_add_new: invalid base");
		b = base_dup(bases[i]);
		if (ul->count > 0 && (rec = hash_get(ul->by_base, b)) != NULL) {
			free(b);
			if (uids_r != NULL)
				uids_r[i] = rec->uid;
			continue;
		}
		fresh[k].base = b;
		fresh[k].index = i;
		k++;
	}
	/* A base given twice sorts next to itself (new_cmp is 0 only for
	 * equal strings): it gets one UID, where a hash of every name would
	 * cost a 20,000-message first scan more. */
	if (k > 1)
		qsort(fresh, k, sizeof(*fresh), new_cmp);
	for (i = 0; i < k; i++)
		uniq += i == 0 || strcmp(fresh[i - 1].base, fresh[i].base) != 0;
	if (uniq > MAILDIR_UIDLIST_RECORDS_MAX - ul->count ||
	    uniq > UIDLIST_UID_LIMIT - ul->next_uid) {
		*error_r = uidlist_error("%s run out",
		    uniq > MAILDIR_UIDLIST_RECORDS_MAX - ul->count ? "records"
		                                                   : "UIDs");
		for (i = 0; i < k; i++)
			free(fresh[i].base);
		ret = -1;
		goto out;
	}
	recs_reserve(ul, uniq);
	for (i = 0; i < k; i++) {
		if (prev != NULL && strcmp(prev, fresh[i].base) == 0) {
			free(fresh[i].base);
		} else {
			rec = xcalloc(1, sizeof(*rec));
			rec->uid = ul->next_uid++;
			rec->base = fresh[i].base;
			prev = rec->base;
			ul->recs[ul->count++] = rec;
			hash_put(ul->by_base, rec->base, rec);
		}
		if (uids_r != NULL)
			uids_r[fresh[i].index] = ul->next_uid - 1;
	}
out:
	free(fresh);
	return ret;
}

int
maildir_uidlist_add_new(struct maildir_uidlist *ul, char *const *bases,
    size_t n, const char **error_r)
{
	return maildir_uidlist_add_new_uids(ul, bases, n, NULL, error_r);
}

/*
 * The lock.
 */

static const char *
my_hostname(void)
{
	static char host[HOST_MAX];

	if (host[0] == '\0' &&
	    (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0'))
		snprintf(host, sizeof(host), "localhost");
	return host;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The PID a lock names if it is of this host, else -1. */
static long
lock_read_pid(const char *path)
{
	char buf[LOCK_CONTENT_MAX + 1], *host;
	uint64_t pid;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	if (buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	host = strchr(buf, ':');
	if (host == NULL)
		return -1;
	*host++ = '\0';
	if (strcmp(host, my_hostname()) != 0 ||
	    str_to_u64(buf, INT_MAX, &pid) < 0 || pid == 0)
		return -1;
	return (long)pid;
}

/* Dovecot's file_change_info: when a file was last seen to change. */
struct change_info {
	dev_t dev;
	ino_t ino;
	off_t size;
	time_t ctime, mtime;
	int seen;
};

static void
change_update(const struct stat *st, struct change_info *c, time_t now,
    time_t *last_change)
{
	time_t t = now;

	if (c->seen && c->ino == st->st_ino && c->dev == st->st_dev &&
	    c->ctime == st->st_ctime && c->mtime == st->st_mtime &&
	    c->size == st->st_size)
		return;
	if (!c->seen)
		/* first look: the file's own time (mtime may be set by
		 * hand, so only when not in the future) */
		t = st->st_mtime <= now && st->st_mtime > st->st_ctime
		        ? st->st_mtime
		        : st->st_ctime;
	if (*last_change < t)
		*last_change = t;
	c->seen = 1;
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	c->size = st->st_size;
	c->ctime = st->st_ctime;
	c->mtime = st->st_mtime;
}

/* Removes a lock found stale if it is still the one looked at. */
static int
lock_override(const char *path, const struct stat *seen)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (st.st_ino != seen->st_ino || st.st_dev != seen->st_dev ||
	    st.st_mtime != seen->st_mtime)
		return 0;
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	sleep_ms(LOCK_OVERRIDE_MS);
	return 0;
}

/*
 * Is the existing lock stale? Overrides it if so (1), else 0; -1 on an
 * error.
 */
static int
lock_check(const char *path, const char *file, time_t now, int stale_secs,
    struct change_info *lock_ci, struct change_info *file_ci,
    time_t *last_change)
{
	struct stat st, fst;
	long pid;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 1 : -1;
	change_update(&st, lock_ci, now, last_change);
	if (st.st_mtime < now - LOCK_PID_CHECK_SECS &&
	    (pid = lock_read_pid(path)) > 0) {
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
			if (pid != (long)getpid())
				return 0;
		}
		/* its process is gone (or it is a stale lock of ours) */
		return lock_override(path, &st) < 0 ? -1 : 1;
	}
	if (now > *last_change + stale_secs) {
		if (stat(file, &fst) == 0)
			change_update(&fst, file_ci, now, last_change);
		else if (errno != ENOENT)
			return -1;
	}
	if (now > *last_change + stale_secs)
		return lock_override(path, &st) < 0 ? -1 : 1;
	return 0;
}

int
maildir_uidlist_lock_stale(const char *maildir, int wait_secs, int stale_secs,
    struct maildir_uidlist_lock **lock_r, const char **error_r)
{
	struct change_info lock_ci = {0}, file_ci = {0};
	struct maildir_uidlist_lock *lock;
	time_t start = time(NULL), now, last_change = 0;
	char *path, *file, *content;
	struct stat st;
	int fd, ret;

	path = xasprintf("%s/%s", maildir, MAILDIR_UIDLIST_LOCK_NAME);
	file = xasprintf("%s/%s", maildir, MAILDIR_UIDLIST_NAME);
	for (;;) {
		fd = open(path,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST) {
			*error_r =
			    uidlist_error("open %s: %s", path, strerror(errno));
			ret = -1;
			goto out;
		}
		now = time(NULL);
		ret = lock_check(path, file, now, stale_secs, &lock_ci,
		    &file_ci, &last_change);
		if (ret < 0) {
			*error_r = uidlist_error(
			    "checking %s: %s", path, strerror(errno));
			goto out;
		}
		if (ret > 0) {
			/* a new lock file is a new lock to judge */
			memset(&lock_ci, 0, sizeof(lock_ci));
			last_change = 0;
			continue;
		}
		if (now - start >= wait_secs) {
			*error_r = uidlist_error("%s: locked by another "
			                         "process",
			    path);
			ret = 0;
			goto out;
		}
		sleep_ms(LOCK_RETRY_MS);
	}
	content = xasprintf("%ld:%s", (long)getpid(), my_hostname());
	/* Without its content the lock is judged by age alone (Dovecot
	 * leaves it empty too when the write fails). */
	if (file_write_all(fd, content, strlen(content)) < 0 &&
	    ftruncate(fd, 0) < 0) {
		/* nothing more to do: an empty lock is still a lock */
	}
	free(content);
	if (fstat(fd, &st) < 0) {
		*error_r = uidlist_error("fstat %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		ret = -1;
		goto out;
	}
	close(fd);
	lock = xcalloc(1, sizeof(*lock));
	lock->path = path;
	lock->dev = st.st_dev;
	lock->ino = st.st_ino;
	lock->mtime = st.st_mtim;
	path = NULL;
	*lock_r = lock;
	ret = 1;
out:
	free(path);
	free(file);
	return ret;
}

int
maildir_uidlist_lock(const char *maildir, int wait_secs,
    struct maildir_uidlist_lock **lock_r, const char **error_r)
{
	return maildir_uidlist_lock_stale(maildir, wait_secs,
	    MAILDIR_UIDLIST_LOCK_STALE_SECS, lock_r, error_r);
}

void
maildir_uidlist_unlock(struct maildir_uidlist_lock **lock_r)
{
	struct maildir_uidlist_lock *lock = *lock_r;
	struct stat st;

	if (lock == NULL)
		return;
	/* Overridden as stale meanwhile: the file is another's lock now. */
	if (lstat(lock->path, &st) == 0 && st.st_ino == lock->ino &&
	    st.st_dev == lock->dev && st.st_mtim.tv_sec == lock->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == lock->mtime.tv_nsec)
		unlink(lock->path);
	free(lock->path);
	free(lock);
	*lock_r = NULL;
}

/*
 * The file.
 */

int
maildir_uidlist_read(
    const char *maildir, struct maildir_uidlist **ul_r, const char **error_r)
{
	struct maildir_uidlist *ul;
	char what[UIDLIST_ERR_SIZE];
	const char *why;
	struct stat st;
	struct buf b;
	char *path;
	ssize_t n;
	int fd, ret;

	*ul_r = NULL;
	path = xasprintf("%s/%s", maildir, MAILDIR_UIDLIST_NAME);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			free(path);
			*ul_r = maildir_uidlist_create();
			*error_r = NULL;
			return 0;
		}
		*error_r = uidlist_error("open %s: %s", path,
		    errno == ELOOP ? "is a symbolic link" : strerror(errno));
		free(path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = uidlist_error("fstat %s: %s", path, strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = uidlist_error("%s: not a regular file", path);
		close(fd);
		free(path);
		return -1;
	}
	buf_init(&b, MAILDIR_UIDLIST_SIZE_MAX);
	if (st.st_size > 0 && st.st_size <= MAILDIR_UIDLIST_SIZE_MAX)
		(void)buf_reserve(&b, (size_t)st.st_size);
	ret = 0;
	for (;;) {
		char chunk[READ_CHUNK];

		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r =
			    uidlist_error("read %s: %s", path, strerror(errno));
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			*error_r = uidlist_error("%s: larger than %u bytes",
			    path, MAILDIR_UIDLIST_SIZE_MAX);
			ret = -1;
			break;
		}
	}
	close(fd);
	if (ret == 0) {
		ul = maildir_uidlist_create();
		ret = maildir_uidlist_parse(ul, buf_cstr(&b), b.len, &why);
		if (ret <= 0) {
			/* why may be in uidlist_err itself */
			snprintf(what, sizeof(what), "%s", why);
			*error_r = uidlist_error("%s: %s", path, what);
		}
		if (ret < 0)
			maildir_uidlist_free(&ul);
		else
			*ul_r = ul;
	}
	buf_free(&b);
	free(path);
	return ret;
}

static uint32_t
fresh_uidvalidity(uint32_t old)
{
	uint32_t uv = (uint32_t)time(NULL);

	if (old != 0 && uv <= old)
		uv = old + 1;
	return uv == 0 ? 1 : uv;
}

int
maildir_uidlist_write(const char *maildir, struct maildir_uidlist *ul,
    uint32_t old_uidvalidity, const char **error_r)
{
	char *tmp = NULL, *path = NULL;
	struct stat dst;
	struct buf b;
	int fd = -1, ret = -1;

	if (ul->uidvalidity == 0)
		ul->uidvalidity = fresh_uidvalidity(old_uidvalidity);
	if (!ul->have_guid) {
		if (getrandom(ul->guid, sizeof(ul->guid), 0) !=
		    (ssize_t)sizeof(ul->guid)) {
			*error_r =
			    uidlist_error("getrandom: %s", strerror(errno));
			return -1;
		}
		ul->have_guid = 1;
	}
	ul->version = UIDLIST_VERSION;
	buf_init(&b, MAILDIR_UIDLIST_SIZE_MAX);
	/* a line per record: UID, base, a few fields (~100 bytes) */
	(void)buf_reserve(&b, ul->count * 100);
	if (maildir_uidlist_format(ul, &b) < 0) {
		*error_r = uidlist_error("%s/%s: would be larger than %u bytes",
		    maildir, MAILDIR_UIDLIST_NAME, MAILDIR_UIDLIST_SIZE_MAX);
		goto out;
	}
	/* Dovecot gives its files the maildir's permission bits. */
	if (stat(maildir, &dst) < 0) {
		*error_r =
		    uidlist_error("stat %s: %s", maildir, strerror(errno));
		goto out;
	}
	tmp = xasprintf("%s/%s", maildir, MAILDIR_UIDLIST_TMP_NAME);
	path = xasprintf("%s/%s", maildir, MAILDIR_UIDLIST_NAME);
	/* Under the lock no one else writes tmp: a leftover is ours to
	 * remove, and a fresh file cannot be a link to another. */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		*error_r = uidlist_error("unlink %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = uidlist_error("open %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, dst.st_mode & 0666 & ~(mode_t)0111) < 0 ||
	    file_write_all(fd, b.data != NULL ? b.data : "", b.len) < 0 ||
	    fdatasync(fd) < 0) {
		*error_r = uidlist_error("write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		*error_r = uidlist_error(
		    "rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	/* New UIDs handed out must survive a crash, or they would be
	 * handed out again to other files. */
	if (file_fsync_dir(maildir, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(path);
	buf_free(&b);
	return ret;
}

/*
 * Adds the base of every file in $maildir/new and cur to present; 0 or -1.
 */
static int
scan_present(const char *maildir, struct hash *present, const char **error_r)
{
	static const char *const subdirs[] = {"new", "cur"};
	struct dirent *de;
	char *dir, *b;
	size_t i, entries = 0;
	DIR *d;

	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		dir = xasprintf("%s/%s", maildir, subdirs[i]);
		d = opendir(dir);
		if (d == NULL) {
			if (errno == ENOENT) {
				free(dir);
				continue;
			}
			*error_r = uidlist_error(
			    "opendir %s: %s", dir, strerror(errno));
			free(dir);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (++entries >
			    2 * (size_t)MAILDIR_UIDLIST_RECORDS_MAX) {
				*error_r =
				    uidlist_error("%s: too many files", dir);
				closedir(d);
				free(dir);
				return -1;
			}
			b = base_dup(de->d_name);
			hash_put(present, b, present);
			free(b);
		}
		closedir(d);
		free(dir);
	}
	return 0;
}

/*
 * Drops the records of files neither in given (the caller's names) nor,
 * listed again now, in new/ or cur/.
 */
static int
drop_gone(const char *maildir, struct maildir_uidlist *ul,
    const struct hash *given, const char **error_r)
{
	struct hash *present = NULL;
	size_t i, o;

	for (i = 0; i < ul->count; i++)
		if (hash_get(given, ul->recs[i]->base) == NULL)
			break;
	if (i == ul->count)
		return 0;
	present = hash_create();
	if (scan_present(maildir, present, error_r) < 0) {
		hash_free(&present, NULL);
		return -1;
	}
	for (i = o = 0; i < ul->count; i++) {
		if (hash_get(given, ul->recs[i]->base) != NULL ||
		    hash_get(present, ul->recs[i]->base) != NULL) {
			ul->recs[o++] = ul->recs[i];
			continue;
		}
		hash_del(ul->by_base, ul->recs[i]->base);
		rec_free(ul->recs[i]);
	}
	ul->count = o;
	hash_free(&present, NULL);
	return 0;
}

/* uids_r from ul; 1 if every valid base was listed, else 0. */
static int
fill_uids(const struct maildir_uidlist *ul, char *const *bases, size_t n,
    uint32_t *uids_r)
{
	const struct maildir_uidlist_rec *rec;
	int all = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		uids_r[i] = 0;
		if (!maildir_uidlist_base_valid(bases[i]))
			continue;
		rec = maildir_uidlist_lookup(ul, bases[i]);
		if (rec == NULL)
			all = 0;
		else
			uids_r[i] = rec->uid;
	}
	return all;
}

/* Under the lock: reads, adds, drops, writes. 0 or -1. */
static int
assign_locked(const char *maildir, char *const *bases, size_t n,
    uint32_t *uids_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct maildir_uidlist *ul = NULL;
	struct hash *given = NULL;
	char **valid = NULL, *b;
	uint32_t old_uidvalidity = 0;
	const char *why;
	size_t i, k = 0;
	int ret, write = 0;

	ret = maildir_uidlist_read(maildir, &ul, &why);
	if (ret < 0) {
		*error_r = why;
		return -1;
	}
	if (ret == 0) {
		/* Missing, or corrupt: Dovecot deletes a corrupt file and
		 * starts again with a new UIDVALIDITY, above the old one. */
		if (why != NULL)
			msg_warn("%s; making a new one", why);
		old_uidvalidity = ul->uidvalidity;
		maildir_uidlist_free(&ul);
		ul = maildir_uidlist_create();
		write = 1;
	}
	if (fill_uids(ul, bases, n, uids_r) == 0)
		write = 1;
	if (!write) {
		*uidvalidity_r = ul->uidvalidity;
		maildir_uidlist_free(&ul);
		return 0;
	}
	given = hash_create();
	valid = xmalloc((n + 1) * sizeof(*valid));
	for (i = 0; i < n; i++) {
		if (!maildir_uidlist_base_valid(bases[i]))
			continue;
		valid[k++] = bases[i];
		b = base_dup(bases[i]);
		hash_put(given, b, given);
		free(b);
	}
	ret = -1;
	if (maildir_uidlist_add_new(ul, valid, k, error_r) < 0 ||
	    drop_gone(maildir, ul, given, error_r) < 0 ||
	    maildir_uidlist_write(maildir, ul, old_uidvalidity, error_r) < 0)
		goto out;
	(void)fill_uids(ul, bases, n, uids_r);
	*uidvalidity_r = ul->uidvalidity;
	ret = 0;
out:
	free(valid);
	hash_free(&given, NULL);
	maildir_uidlist_free(&ul);
	return ret;
}

int
maildir_uidlist_assign(const char *maildir, char *const *bases, size_t n,
    uint32_t *uids_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct maildir_uidlist_lock *lock = NULL;
	struct maildir_uidlist *ul = NULL;
	const char *why;
	int ret;

	if (n > MAILDIR_UIDLIST_RECORDS_MAX) {
		*error_r = uidlist_error("%s: more than %d messages", maildir,
		    MAILDIR_UIDLIST_RECORDS_MAX);
		return -1;
	}
	/* Usually every message is listed: no lock, no write. */
	ret = maildir_uidlist_read(maildir, &ul, &why);
	if (ret < 0) {
		*error_r = why;
		return -1;
	}
	if (ret > 0 && fill_uids(ul, bases, n, uids_r)) {
		*uidvalidity_r = ul->uidvalidity;
		maildir_uidlist_free(&ul);
		return 0;
	}
	maildir_uidlist_free(&ul);
	ret = maildir_uidlist_lock(
	    maildir, MAILDIR_UIDLIST_LOCK_WAIT_SECS, &lock, error_r);
	if (ret <= 0)
		return -1;
	ret = assign_locked(maildir, bases, n, uids_r, uidvalidity_r, error_r);
	maildir_uidlist_unlock(&lock);
	return ret;
}
