/* SPDX-License-Identifier: MIT */
/*
 * The per-message status log (layout in status_log.h): what qmgr learnt
 * about each recipient, kept durably beside the queue file so that a
 * crash between a delivery attempt and the recipient's mark never loses
 * the reason, and so that a notice can quote it days later. Records are
 * attr frames (attr.h) behind a magic and followed by a CRC, so that a
 * reader can step over a record cut short by a crash and still find
 * those appended after it. Values follow RFC 3464 (action, diagnostic
 * type) and RFC 3463 (status codes); the idea is Postfix's bounce and
 * defer logs, without a daemon in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/attr.h"
#include "mail/queue.h"
#include "mail/status_log.h"

#define SL_MAGIC         "\xff\xfeSL"
#define SL_MAGIC_LEN     4
#define SL_CRC_LEN       4
/* The frame of one record: seven attributes, the two long texts at their
 * maximum, the rest short. */
#define SL_FRAME_MAX     (STATUS_DIAG_MAX + STATUS_MTA_MAX + 512)
/* Magic, frame header and payload, CRC. */
#define SL_REC_MAX       (SL_MAGIC_LEN + ATTR_HEADER_LEN + SL_FRAME_MAX + SL_CRC_LEN)
/* Reader window: a read(2) fetches about this much at a time. */
#define SL_READ_CHUNK    (64 * 1024)
#define SL_ERR_SIZE      512
#define SL_CRC_POLY      0xedb88320u /* CRC-32 (IEEE 802.3), reflected */
#define SL_STATUS_DIGITS 3           /* RFC 3463: subject and detail 1*3digit */

struct status_log {
	int nrcpt;
	struct sl_entry **v; /* [nrcpt], NULL where nothing was logged */
	long long skipped;
};

struct sl_entry {
	struct status_rec rec;
	char *store; /* owns the record's strings */
};

static __thread char sl_err[SL_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define sl_error(...) str_format(sl_err, sizeof(sl_err), __VA_ARGS__)

/* Bitwise: records are small and rare, a table would not pay. */
static uint32_t
sl_crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	int k;

	while (n-- > 0) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (SL_CRC_POLY & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

static int
action_valid(const char *a)
{
	static const char *const actions[] = {STATUS_ACTION_FAILED,
	    STATUS_ACTION_DELAYED, STATUS_ACTION_DELIVERED,
	    STATUS_ACTION_RELAYED, STATUS_ACTION_EXPANDED};
	size_t i;

	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(a, actions[i]) == 0)
			return 1;
	return 0;
}

/* RFC 3463 2: class "." subject "." detail; class 2, 4 or 5. */
static int
status_valid(const char *s)
{
	size_t n;
	int part;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	if (s[1] != '.')
		return 0;
	s += 2;
	for (part = 0; part < 2; part++) {
		n = strspn(s, "0123456789");
		if (n == 0 || n > SL_STATUS_DIGITS)
			return 0;
		s += n;
		if (part == 0 && *s++ != '.')
			return 0;
	}
	return *s == '\0';
}

/* RFC 3464 2.3.6: diagnostic-type is an atom; tern's are [a-z0-9-]. */
static int
type_valid(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= STATUS_TYPE_MAX &&
	       strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/*
 * Copies at most max bytes of s into out: control characters (a CR or LF
 * would split a header field of a notice) become spaces, bytes that are
 * not UTF-8 become '?', and a cut never splits a character.
 */
static int
sanitize(struct buf *out, const char *s, size_t max)
{
	size_t len = s != NULL ? strlen(s) : 0, i = 0, seq;
	unsigned char c;

	buf_reset(out);
	while (i < len) {
		c = (unsigned char)s[i];
		if (c < 0x80) {
			seq = 1;
			c = c < ' ' || c == 0x7f ? ' ' : c;
		} else if ((seq = str_utf8_seq(s + i, len - i)) == 0) {
			seq = 1;
			c = '?';
		}
		if (out->len + seq > max)
			break;
		if (seq == 1 ? buf_putc(out, (char)c) < 0
		             : buf_append(out, s + i, seq) < 0)
			return -1;
		i += seq;
	}
	return 0;
}

/* Appends one whole record (magic, frame, CRC) to out. */
static void
put_record(struct buf *out, const struct status_rec *r, struct buf *frame,
    struct buf *tmp)
{
	unsigned char crc[SL_CRC_LEN];

	if (r->rcpt < 0 || r->action == NULL || !action_valid(r->action) ||
	    r->status == NULL || !status_valid(r->status) ||
	    r->diag_type == NULL || !type_valid(r->diag_type))
		msg_panic("status_log: bad record for recipient %d", r->rcpt);
	attr_frame_begin(frame);
	if (attr_put_int(frame, "rcpt", r->rcpt) < 0 ||
	    attr_put_str(frame, "action", r->action) < 0 ||
	    attr_put_str(frame, "status", r->status) < 0 ||
	    attr_put_str(frame, "diag_type", r->diag_type) < 0 ||
	    sanitize(tmp, r->diag, STATUS_DIAG_MAX) < 0 ||
	    attr_put(frame, "diag", buf_cstr(tmp), tmp->len) < 0 ||
	    sanitize(tmp, r->mta, STATUS_MTA_MAX) < 0 ||
	    attr_put(frame, "mta", buf_cstr(tmp), tmp->len) < 0 ||
	    attr_put_int(frame, "when", r->when) < 0 ||
	    attr_frame_end(frame) < 0)
		msg_panic("status_log: record over %d bytes", SL_FRAME_MAX);
	bytes_put_be32(
	    crc, sl_crc32((const unsigned char *)frame->data, frame->len));
	if (buf_append(out, SL_MAGIC, SL_MAGIC_LEN) < 0 ||
	    buf_append(out, frame->data, frame->len) < 0 ||
	    buf_append(out, crc, sizeof(crc)) < 0)
		msg_panic("status_log: batch buffer too small");
}

/* Opens status/ID for appending; *created_r when this call made it. */
static int
open_append(const char *path, int *created_r, const char **error_r)
{
	const int flags =
	    O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	struct stat st;
	int fd;

	*created_r = 0;
	fd = open(path, flags | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		*created_r = 1;
		return fd;
	}
	if (errno == EEXIST)
		fd = open(path, flags);
	if (fd < 0) {
		*error_r = sl_error("open %s: %s", path, strerror(errno));
		return -1;
	}
	/* A name someone linked or planted here is not our log. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		*error_r =
		    sl_error("%s: not a regular file with one link", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
status_log_append(
    const char *id, const struct status_rec *recs, int n, const char **error_r)
{
	struct buf out, frame, tmp;
	char *path, *dir;
	int fd, created, i, ret = -1;

	if (!queue_id_valid(id))
		msg_panic("status_log_append: bad queue ID");
	if (n <= 0)
		return 0;
	buf_init(&out, (size_t)n * SL_REC_MAX);
	buf_init(&frame, ATTR_HEADER_LEN + SL_FRAME_MAX);
	buf_init(&tmp, STATUS_DIAG_MAX);
	for (i = 0; i < n; i++)
		put_record(&out, &recs[i], &frame, &tmp);
	buf_free(&frame);
	buf_free(&tmp);
	path = queue_path(QUEUE_STATUS, id);
	if ((fd = open_append(path, &created, error_r)) < 0)
		goto out;
	/* One write: with O_APPEND a batch lands whole or is cut at its
	 * end by a crash, never interleaved with another writer's. */
	if (file_write_all(fd, out.data, out.len) < 0)
		*error_r = sl_error("write %s: %s", path, strerror(errno));
	else if (fsync(fd) < 0)
		*error_r = sl_error("fsync %s: %s", path, strerror(errno));
	else if (created) {
		dir = queue_path(QUEUE_STATUS, NULL);
		ret = file_fsync_dir(dir, error_r);
		free(dir);
	} else
		ret = 0;
	close(fd);
out:
	free(path);
	buf_free(&out);
	return ret;
}

/* Reading. */

static void
entry_free(struct sl_entry *e)
{
	if (e != NULL)
		free(e->store);
	free(e);
}

/*
 * Takes a checked frame payload apart. 1 and the record stored, 0 when
 * it is not a usable record (ignored like garbage).
 */
static int
take_record(struct status_log *l, const unsigned char *payload, size_t len)
{
	struct attr_list al;
	const char *err, *action, *status, *type, *diag, *mta;
	long long rcpt, when;
	size_t n_action, n_status, n_type, n_diag, n_mta;
	struct sl_entry *e;
	char *s;
	int ok = 0;

	attr_list_init(&al);
	if (attr_decode(payload, len, &al, &err) < 0 ||
	    attr_get_int(&al, "rcpt", &rcpt) < 0 ||
	    attr_get_int(&al, "when", &when) < 0 ||
	    (action = attr_get(&al, "action")) == NULL ||
	    (status = attr_get(&al, "status")) == NULL ||
	    (type = attr_get(&al, "diag_type")) == NULL ||
	    (diag = attr_get(&al, "diag")) == NULL ||
	    (mta = attr_get(&al, "mta")) == NULL || rcpt < 0 ||
	    rcpt > INT_MAX || !action_valid(action) || !status_valid(status) ||
	    !type_valid(type))
		goto out;
	ok = 1;
	if (rcpt >= l->nrcpt)
		goto out;
	n_action = strlen(action) + 1;
	n_status = strlen(status) + 1;
	n_type = strlen(type) + 1;
	n_diag = strlen(diag) + 1;
	n_mta = strlen(mta) + 1;
	e = xcalloc(1, sizeof(*e));
	s = e->store = xmalloc(n_action + n_status + n_type + n_diag + n_mta);
	e->rec.rcpt = (int)rcpt;
	e->rec.when = when;
	e->rec.action = memcpy(s, action, n_action);
	e->rec.status = memcpy(s += n_action, status, n_status);
	e->rec.diag_type = memcpy(s += n_status, type, n_type);
	e->rec.diag = memcpy(s += n_type, diag, n_diag);
	e->rec.mta = memcpy(s + n_diag, mta, n_mta);
	/* Later records win. */
	entry_free(l->v[rcpt]);
	l->v[rcpt] = e;
out:
	attr_list_free(&al);
	return ok;
}

/*
 * Length of the valid record at p (avail bytes), or 0 if p holds none.
 * Needs SL_REC_MAX bytes unless the file ends sooner.
 */
static size_t
record_at(struct status_log *l, const unsigned char *p, size_t avail)
{
	uint32_t flen, crc;
	size_t total;

	if (avail < SL_MAGIC_LEN + ATTR_HEADER_LEN ||
	    memcmp(p, SL_MAGIC, SL_MAGIC_LEN) != 0)
		return 0;
	flen = bytes_get_be32(p + SL_MAGIC_LEN);
	if (flen > SL_FRAME_MAX)
		return 0;
	total = SL_MAGIC_LEN + ATTR_HEADER_LEN + flen + SL_CRC_LEN;
	if (avail < total)
		return 0;
	crc = bytes_get_be32(p + total - SL_CRC_LEN);
	if (crc != sl_crc32(p + SL_MAGIC_LEN, ATTR_HEADER_LEN + flen))
		return 0;
	if (!take_record(l, p + SL_MAGIC_LEN + ATTR_HEADER_LEN, flen))
		return 0;
	return total;
}

/* Walks fd to its end (at most STATUS_LOG_FILE_MAX bytes). */
static int
scan(struct status_log *l, int fd, const char *path, const char **error_r)
{
	const size_t cap = SL_READ_CHUNK + SL_REC_MAX;
	unsigned char *win = xmalloc(cap), *next;
	size_t len = 0, pos = 0, rec;
	long long total = 0;
	ssize_t got;
	int eof = 0, ret = -1;

	for (;;) {
		/* Keep a whole record's worth ahead of pos, or the end. */
		if (!eof && len - pos < SL_REC_MAX) {
			memmove(win, win + pos, len - pos);
			len -= pos;
			pos = 0;
			while (!eof && len < cap) {
				got = read(fd, win + len, cap - len);
				if (got < 0 && errno == EINTR)
					continue;
				if (got < 0) {
					*error_r = sl_error("read %s: %s", path,
					    strerror(errno));
					goto out;
				}
				eof = got == 0;
				len += (size_t)got;
				total += got;
				if (total > STATUS_LOG_FILE_MAX) {
					*error_r = sl_error(
					    "%s: larger than %ld bytes", path,
					    STATUS_LOG_FILE_MAX);
					goto out;
				}
			}
		}
		if (pos == len)
			break;
		if ((rec = record_at(l, win + pos, len - pos)) > 0) {
			pos += rec;
			continue;
		}
		/* Not a record here: on to the next possible magic. */
		next = memchr(win + pos + 1, SL_MAGIC[0], len - pos - 1);
		rec = next != NULL ? (size_t)(next - (win + pos)) : len - pos;
		l->skipped += (long long)rec;
		pos += rec;
	}
	ret = 0;
out:
	free(win);
	return ret;
}

struct status_log *
status_log_read(const char *id, int nrcpt, const char **error_r)
{
	struct status_log *l;
	struct stat st;
	char *path;
	int fd;

	if (!queue_id_valid(id))
		msg_panic("status_log_read: bad queue ID");
	l = xcalloc(1, sizeof(*l));
	l->nrcpt = nrcpt > 0 ? nrcpt : 0;
	l->v = xcalloc(l->nrcpt > 0 ? (size_t)l->nrcpt : 1, sizeof(*l->v));
	path = queue_path(QUEUE_STATUS, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		free(path);
		return l;
	}
	if (fd < 0) {
		*error_r = sl_error("open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = sl_error("%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > STATUS_LOG_FILE_MAX) {
		*error_r = sl_error(
		    "%s: larger than %ld bytes", path, STATUS_LOG_FILE_MAX);
		goto fail;
	}
	if (scan(l, fd, path, error_r) < 0)
		goto fail;
	close(fd);
	free(path);
	return l;
fail:
	if (fd >= 0)
		close(fd);
	free(path);
	status_log_free(&l);
	return NULL;
}

const struct status_rec *
status_log_get(const struct status_log *l, int rcpt)
{
	if (l == NULL || rcpt < 0 || rcpt >= l->nrcpt || l->v[rcpt] == NULL)
		return NULL;
	return &l->v[rcpt]->rec;
}

long long
status_log_skipped(const struct status_log *l)
{
	return l->skipped;
}

void
status_log_free(struct status_log **lp)
{
	struct status_log *l = *lp;
	int i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nrcpt; i++)
		entry_free(l->v[i]);
	free(l->v);
	free(l);
	*lp = NULL;
}

int
status_log_remove(const char *id)
{
	char *path;
	int ret;

	if (!queue_id_valid(id))
		msg_panic("status_log_remove: bad queue ID");
	path = queue_path(QUEUE_STATUS, id);
	ret = unlink(path);
	free(path);
	if (ret < 0 && errno == ENOENT)
		ret = 0;
	return ret;
}
