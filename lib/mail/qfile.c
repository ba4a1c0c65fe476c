/* SPDX-License-Identifier: MIT */
/*
 * The queue file (format in qfile.h): the writer used by smtpd's cleanup
 * and the tools, and the strict reader used by qmgr, local delivery and
 * terncat. The writer keeps syscalls few by buffering records and content
 * in one struct buf; the reader checks every record's type, order, length
 * and payload so that a damaged file is recognised (and moved to corrupt/)
 * instead of being half-delivered. Envelope fields carry RFC 5321 paths
 * and RFC 3461 DSN parameters (ORCPT, NOTIFY, ENVID, RET) as opaque text.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/qfile.h"
#include "mail/queue.h"

/* Writer: flush the buffer once it holds this much. */
#define QFILE_FLUSH_SIZE   (64 * 1024)
/* Hard maximum of the writer buffer: a full flush plus one largest record. */
#define QFILE_WBUF_MAX     (QFILE_FLUSH_SIZE + QFILE_HDR_LEN + QFILE_RECORD_MAX)
/* Reader: bytes fetched per pread when the window has to move. */
#define QFILE_RBUF_SIZE    (QFILE_HDR_LEN + QFILE_RECORD_MAX)
/* Attempts at finding an unused queue ID in tmp/. */
#define QFILE_CREATE_TRIES 5
#define QFILE_USEC_PER_SEC 1000000L
#define QFILE_USEC_DIGITS  6
#define QFILE_CONTENT_MAX  UINT32_MAX
#define QFILE_NOTIFY_MASK                                                   \
	(QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY | \
	    QRCPT_NOTIFY_NEVER)
#define QFILE_ERR_SIZE 512

static __thread char qfile_err[QFILE_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define qfile_error(...) str_format(qfile_err, sizeof(qfile_err), __VA_ARGS__)

/* Writer. */

static void
writer_flush(struct qfile_writer *w)
{
	if (w->out.len == 0)
		return;
	if (!w->failed && file_write_all(w->fd, w->out.data, w->out.len) < 0)
		w->failed = errno != 0 ? errno : EIO;
	if (!w->failed)
		w->pos += (off_t)w->out.len;
	buf_reset(&w->out);
}

/* Appends raw bytes through the buffer; large pieces bypass it. */
static void
writer_bytes(struct qfile_writer *w, const void *data, size_t len)
{
	if (w->failed)
		return;
	if (w->out.len + len > QFILE_FLUSH_SIZE)
		writer_flush(w);
	if (len >= QFILE_FLUSH_SIZE) {
		if (w->failed)
			return;
		if (file_write_all(w->fd, data, len) < 0)
			w->failed = errno != 0 ? errno : EIO;
		else
			w->pos += (off_t)len;
		return;
	}
	if (buf_append(&w->out, data, len) < 0)
		msg_panic("qfile: write buffer overflow");
}

static void
writer_record(struct qfile_writer *w, char type, const void *p1, size_t n1,
    const void *p2, size_t n2)
{
	unsigned char hdr[QFILE_HDR_LEN];

	if (w->content_hdr_off >= 0)
		msg_panic("qfile: record '%c' after content", type);
	if (n1 + n2 > QFILE_RECORD_MAX) {
		if (!w->failed)
			w->failed = EMSGSIZE;
		return;
	}
	hdr[0] = (unsigned char)type;
	bytes_put_be32(hdr + 1, (uint32_t)(n1 + n2));
	writer_bytes(w, hdr, sizeof(hdr));
	writer_bytes(w, p1, n1);
	if (n2 > 0)
		writer_bytes(w, p2, n2);
}

int
qfile_create_opts(struct qfile_writer *w, const struct qfile_create_opts *o,
    const char **error_r)
{
	const char *state = o->state != NULL ? o->state : QUEUE_TMP;
	mode_t mode = o->mode != 0 ? o->mode : 0600;
	struct timespec ts;
	char tbuf[64];
	int n, i;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->content_hdr_off = -1;
	buf_init(&w->out, QFILE_WBUF_MAX);
	for (i = 0; i < QFILE_CREATE_TRIES; i++) {
		if (o->id != NULL) {
			if (!queue_id_valid(o->id))
				msg_panic("qfile: bad queue ID '%s'", o->id);
			memcpy(w->id, o->id, QUEUE_ID_SIZE);
		} else
			queue_id_new(w->id);
		free(w->tmp_path);
		w->tmp_path = queue_path(state, w->id);
		w->fd = open(w->tmp_path,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		/* A chosen ID is tried once: its owner decides what next. */
		if (w->fd >= 0 || errno != EEXIST || o->id != NULL)
			break;
	}
	/* The lock says "someone is writing this": qmgr removes only
	 * unlocked files from tmp/ (qfile_tmp_stale). */
	if (w->fd >= 0 && flock(w->fd, LOCK_EX | LOCK_NB) < 0)
		msg_warn("flock %s: %m", w->tmp_path);
	/* The umask must not decide a queue file's mode. */
	if (w->fd >= 0 && fchmod(w->fd, mode) < 0)
		msg_warn("fchmod %s: %m", w->tmp_path);
	if (w->fd < 0) {
		*error_r =
		    qfile_error("create %s: %s", w->tmp_path, strerror(errno));
		free(w->tmp_path);
		w->tmp_path = NULL;
		return -1;
	}
	if (o->arrival != NULL)
		n = snprintf(tbuf, sizeof(tbuf), "%s", o->arrival);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(tbuf, sizeof(tbuf), "%lld.%06ld",
		    (long long)ts.tv_sec, ts.tv_nsec / 1000);
	}
	if (n < 0 || (size_t)n >= sizeof(tbuf))
		msg_panic("qfile: arrival time '%s' too long", o->arrival);
	writer_record(w, QREC_MAGIC, QFILE_MAGIC, strlen(QFILE_MAGIC), NULL, 0);
	writer_record(w, QREC_TIME, tbuf, (size_t)n, NULL, 0);
	writer_record(w, QREC_WARN, "", 0, NULL, 0);
	return 0;
}

int
qfile_create_in(struct qfile_writer *w, const char *state, mode_t mode,
    const char **error_r)
{
	struct qfile_create_opts o = {state, mode, NULL, NULL};

	return qfile_create_opts(w, &o, error_r);
}

int
qfile_create(struct qfile_writer *w, const char **error_r)
{
	return qfile_create_in(w, QUEUE_TMP, 0600, error_r);
}

void
qfile_put_sender(struct qfile_writer *w, const char *sender)
{
	writer_record(w, QREC_SENDER, sender, strlen(sender), NULL, 0);
}

void
qfile_put_attr(struct qfile_writer *w, const char *name, const char *value)
{
	char *s = xasprintf("%s=%s", name, value);

	writer_record(w, QREC_ATTR, s, strlen(s), NULL, 0);
	free(s);
}

void
qfile_put_rcpt(struct qfile_writer *w, const char *addr, const char *orcpt,
    unsigned notify)
{
	char nbuf[16];
	size_t alen = strlen(addr), olen = strlen(orcpt);
	char *p;
	int n;

	n = snprintf(nbuf, sizeof(nbuf), "%u", notify);
	p = xmalloc(alen + olen + 2);
	memcpy(p, addr, alen + 1);
	memcpy(p + alen + 1, orcpt, olen + 1);
	writer_record(w, QREC_RCPT, p, alen + olen + 2, nbuf, (size_t)n);
	free(p);
}

void
qfile_content_begin(struct qfile_writer *w)
{
	unsigned char hdr[QFILE_HDR_LEN];

	if (w->content_hdr_off >= 0)
		msg_panic("qfile: content begun twice");
	w->content_hdr_off = w->pos + (off_t)w->out.len;
	w->content_len = 0;
	hdr[0] = QREC_CONTENT;
	bytes_put_be32(hdr + 1, 0);
	writer_bytes(w, hdr, sizeof(hdr));
}

void
qfile_content_write(struct qfile_writer *w, const void *data, size_t len)
{
	if (w->content_hdr_off < 0)
		msg_panic("qfile: content written before qfile_content_begin");
	w->content_len += len;
	if (w->content_len > QFILE_CONTENT_MAX) {
		if (!w->failed)
			w->failed = EFBIG;
		return;
	}
	writer_bytes(w, data, len);
}

int
qfile_finish(struct qfile_writer *w, const char **error_r)
{
	unsigned char hdr[QFILE_HDR_LEN], len[4];

	if (w->content_hdr_off < 0)
		msg_panic("qfile: finish without content");
	hdr[0] = QREC_END;
	bytes_put_be32(hdr + 1, 0);
	/* END is appended directly: writer_record refuses after content. */
	writer_bytes(w, hdr, sizeof(hdr));
	writer_flush(w);
	if (!w->failed) {
		bytes_put_be32(len, (uint32_t)w->content_len);
		if (file_pwrite_all(
		        w->fd, len, sizeof(len), w->content_hdr_off + 1) < 0)
			w->failed = errno != 0 ? errno : EIO;
	}
	if (w->failed) {
		*error_r = qfile_error("write %s: %s", w->tmp_path,
		    w->failed == EMSGSIZE ? "envelope record too long"
		                          : strerror(w->failed));
		return -1;
	}
	return 0;
}

int
qfile_commit(struct qfile_writer *w, const char *state, const char **error_r)
{
	char *final, *dir;
	int ret = -1;

	if (w->failed || w->tmp_path == NULL) {
		*error_r =
		    qfile_error("commit %s: queue file not written", w->id);
		return -1;
	}
	if (fsync(w->fd) < 0) {
		*error_r =
		    qfile_error("fsync %s: %s", w->tmp_path, strerror(errno));
		return -1;
	}
	final = queue_path(state, w->id);
	dir = queue_path(state, NULL);
	/* Never over another message of the same ID (that would lose
	 * it): pickup, for one, commits under an ID it did not make. */
	if (file_rename_noreplace(AT_FDCWD, w->tmp_path, AT_FDCWD, final) < 0) {
		*error_r = qfile_error(
		    "rename %s to %s: %s", w->tmp_path, final, strerror(errno));
	} else {
		qfile_writer_committed(w);
		ret = file_fsync_dir(dir, error_r);
	}
	free(final);
	free(dir);
	return ret;
}

void
qfile_writer_committed(struct qfile_writer *w)
{
	free(w->tmp_path);
	w->tmp_path = NULL;
}

void
qfile_writer_free(struct qfile_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp_path != NULL)
		(void)unlink(w->tmp_path);
	free(w->tmp_path);
	w->tmp_path = NULL;
	buf_free(&w->out);
}

/* Reader. */

struct qreader {
	int fd;
	off_t size; /* file size at open */
	unsigned char *buf;
	off_t buf_off; /* file offset of buf[0] */
	size_t buf_len;
};

/*
 * Makes [off, off + n) available; returns a pointer to it, or NULL if the
 * file ends first (*eof_r = 1) or on a read error (*eof_r = 0).
 */
static const unsigned char *
reader_get(struct qreader *r, off_t off, size_t n, int *eof_r)
{
	ssize_t got;
	size_t want;

	*eof_r = 0;
	if (off + (off_t)n > r->size) {
		*eof_r = 1;
		return NULL;
	}
	if (off >= r->buf_off &&
	    off + (off_t)n <= r->buf_off + (off_t)r->buf_len)
		return r->buf + (off - r->buf_off);
	want = QFILE_RBUF_SIZE;
	if ((off_t)want > r->size - off)
		want = (size_t)(r->size - off);
	r->buf_off = off;
	r->buf_len = 0;
	while (r->buf_len < want) {
		got = pread(r->fd, r->buf + r->buf_len, want - r->buf_len,
		    off + (off_t)r->buf_len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return NULL;
		if (got == 0)
			break;
		r->buf_len += (size_t)got;
	}
	if (r->buf_len < n) {
		/* Shrunk under us: treat like a truncated file. */
		*eof_r = 1;
		return NULL;
	}
	return r->buf;
}

static int
parse_time(const char *p, size_t len, struct qfile *q)
{
	const char *dot = memchr(p, '.', len);
	uint64_t sec, usec;
	size_t slen;

	if (dot == NULL)
		return -1;
	slen = (size_t)(dot - p);
	if (len - slen - 1 != QFILE_USEC_DIGITS ||
	    str_to_u64_n(p, slen, LLONG_MAX, &sec) < 0 ||
	    str_to_u64_n(
	        dot + 1, QFILE_USEC_DIGITS, QFILE_USEC_PER_SEC - 1, &usec) < 0)
		return -1;
	q->arrival_sec = (long long)sec;
	q->arrival_usec = (long)usec;
	return 0;
}

static int
parse_attr(const char *p, size_t len, struct qfile *q)
{
	const char *eq = memchr(p, '=', len);

	if (eq == NULL || eq == p || memchr(p, '\0', len) != NULL)
		return -1;
	q->attr_names =
	    xrealloc(q->attr_names, sizeof(char *) * (size_t)(q->nattr + 1));
	q->attr_values =
	    xrealloc(q->attr_values, sizeof(char *) * (size_t)(q->nattr + 1));
	q->attr_names[q->nattr] = xstrndup(p, (size_t)(eq - p));
	q->attr_values[q->nattr] = xstrndup(eq + 1, len - (size_t)(eq - p) - 1);
	q->nattr++;
	return 0;
}

static int
parse_rcpt(const char *p, size_t len, char type, off_t off, struct qfile *q)
{
	const char *nul1, *nul2, *num;
	struct qrcpt *r;
	uint64_t notify;

	nul1 = memchr(p, '\0', len);
	if (nul1 == NULL || nul1 == p)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p));
	if (nul2 == NULL)
		return -1;
	num = nul2 + 1;
	if (str_to_u64_n(
	        num, len - (size_t)(num - p), QFILE_NOTIFY_MASK, &notify) < 0)
		return -1;
	q->rcpts =
	    xrealloc(q->rcpts, sizeof(*q->rcpts) * (size_t)(q->nrcpt + 1));
	r = &q->rcpts[q->nrcpt++];
	r->addr = xstrdup(p);
	r->orcpt = xstrdup(nul1 + 1);
	r->notify = (unsigned)notify;
	r->status = type;
	r->status_off = off;
	return 0;
}

enum qfile_expect {
	EXPECT_MAGIC,
	EXPECT_TIME,
	EXPECT_WARN, /* the optional WARN record, or SENDER */
	EXPECT_SENDER,
	EXPECT_ATTR, /* ATTR, RCPT or CONTENT */
	EXPECT_RCPT, /* RCPT or CONTENT */
	EXPECT_END,
	EXPECT_EOF,
};

/* 1 if type may come now, advancing *state; 0 if out of order. */
static int
record_allowed(enum qfile_expect *state, char type)
{
	int in_envelope = *state == EXPECT_ATTR || *state == EXPECT_RCPT;
	enum qfile_expect next;
	int ok;

	switch (type) {
	case QREC_MAGIC:
		ok = *state == EXPECT_MAGIC;
		next = EXPECT_TIME;
		break;
	case QREC_TIME:
		ok = *state == EXPECT_TIME;
		next = EXPECT_WARN;
		break;
	case QREC_WARN:
	case QREC_WARN_SENT:
		ok = *state == EXPECT_WARN;
		next = EXPECT_SENDER;
		break;
	case QREC_SENDER:
		ok = *state == EXPECT_SENDER || *state == EXPECT_WARN;
		next = EXPECT_ATTR;
		break;
	case QREC_ATTR:
		ok = *state == EXPECT_ATTR;
		next = EXPECT_ATTR;
		break;
	case QREC_RCPT:
	case QREC_RCPT_DONE:
	case QREC_RCPT_FAILED:
		ok = in_envelope;
		next = EXPECT_RCPT;
		break;
	case QREC_CONTENT:
		ok = in_envelope;
		next = EXPECT_END;
		break;
	case QREC_END:
		ok = *state == EXPECT_END;
		next = EXPECT_EOF;
		break;
	default:
		return 0;
	}
	if (ok)
		*state = next;
	return ok;
}

/* Parses one record's payload; 0 or -1 (malformed). */
static int
record_parse(struct qfile *q, char type, const char *p, size_t len, off_t off)
{
	switch (type) {
	case QREC_MAGIC:
		if (len != strlen(QFILE_MAGIC) ||
		    memcmp(p, QFILE_MAGIC, len) != 0)
			return -1;
		return 0;
	case QREC_TIME:
		return parse_time(p, len, q);
	case QREC_SENDER:
		if (memchr(p, '\0', len) != NULL)
			return -1;
		free(q->sender);
		q->sender = xstrndup(p, len);
		return 0;
	case QREC_ATTR:
		return parse_attr(p, len, q);
	case QREC_END:
		return len == 0 ? 0 : -1;
	case QREC_WARN:
	case QREC_WARN_SENT:
		q->warn_off = off;
		q->warned = type == QREC_WARN_SENT;
		return len == 0 ? 0 : -1;
	default:
		return parse_rcpt(p, len, type, off, q);
	}
}

static void
qfile_reset(struct qfile *q)
{
	int i;

	if (q->fd >= 0)
		close(q->fd);
	free(q->sender);
	for (i = 0; i < q->nattr; i++) {
		free(q->attr_names[i]);
		free(q->attr_values[i]);
	}
	free(q->attr_names);
	free(q->attr_values);
	for (i = 0; i < q->nrcpt; i++) {
		free(q->rcpts[i].addr);
		free(q->rcpts[i].orcpt);
	}
	free(q->rcpts);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}

/*
 * Walks the records. Returns 0 with q->complete set, or -1 with *error_r.
 * Running out of file at any point (inside a header, a payload or the
 * content) is "incomplete", not "corrupt".
 */
static int
qfile_scan(
    struct qfile *q, struct qreader *r, const char *path, const char **error_r)
{
	enum qfile_expect state = EXPECT_MAGIC;
	const unsigned char *h, *p;
	off_t off = 0;
	uint32_t len;
	char type;
	int eof = 0;

	while (off < r->size) {
		/* The type byte alone already tells garbage from truncation. */
		if ((h = reader_get(r, off, 1, &eof)) == NULL)
			break;
		type = (char)h[0];
		if (!record_allowed(&state, type)) {
			*error_r =
			    state == EXPECT_EOF
			        ? qfile_error(
			              "%s: offset %lld: data after end record",
			              path, (long long)off)
			        : qfile_error(
			              "%s: offset %lld: unexpected record "
			              "type 0x%02x",
			              path, (long long)off, h[0]);
			return -1;
		}
		if ((h = reader_get(r, off, QFILE_HDR_LEN, &eof)) == NULL)
			break;
		len = bytes_get_be32(h + 1);
		if (type == QREC_CONTENT) {
			q->content_off = off + QFILE_HDR_LEN;
			q->content_len = len;
			if ((off_t)len > r->size - q->content_off)
				return 0;
			off = q->content_off + (off_t)len;
			continue;
		}
		if (len > QFILE_RECORD_MAX) {
			*error_r = qfile_error("%s: offset %lld: record length "
			                       "%lu too large",
			    path, (long long)off, (unsigned long)len);
			return -1;
		}
		if ((p = reader_get(r, off + QFILE_HDR_LEN, len, &eof)) == NULL)
			break;
		if (record_parse(q, type, (const char *)p, len, off) < 0) {
			*error_r = qfile_error("%s: offset %lld: malformed "
			                       "record type '%c'",
			    path, (long long)off, type);
			return -1;
		}
		off += QFILE_HDR_LEN + (off_t)len;
	}
	if (off < r->size && !eof) {
		*error_r = qfile_error("read %s: %s", path, strerror(errno));
		return -1;
	}
	/* The state moves at a type byte; only a whole END completes. */
	q->complete = state == EXPECT_EOF && off == r->size;
	return 0;
}

int
qfile_open_fd(int fd, const char *name, uid_t owner, struct qfile *q,
    const char **error_r)
{
	struct qreader r;
	struct stat st;
	const char *base;
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = fd;
	if (fstat(q->fd, &st) < 0) {
		*error_r = qfile_error("fstat %s: %s", name, strerror(errno));
		qfile_reset(q);
		return -1;
	}
	if (!S_ISREG(st.st_mode) ||
	    (owner != (uid_t)-1 && st.st_uid != owner)) {
		*error_r = !S_ISREG(st.st_mode)
		               ? qfile_error("%s: not a regular file", name)
		               : qfile_error("%s: owned by uid %ld, not %ld",
		                     name, (long)st.st_uid, (long)owner);
		qfile_reset(q);
		errno = EINVAL;
		return -1;
	}
	base = strrchr(name, '/');
	base = base != NULL ? base + 1 : name;
	snprintf(q->id, sizeof(q->id), "%s", base);
	memset(&r, 0, sizeof(r));
	r.fd = q->fd;
	r.size = st.st_size;
	r.buf = xmalloc(QFILE_RBUF_SIZE);
	ret = qfile_scan(q, &r, name, error_r);
	free(r.buf);
	if (ret < 0) {
		qfile_reset(q);
		return -1;
	}
	if (q->sender == NULL)
		q->sender = xstrdup("");
	return 0;
}

int
qfile_open(const char *path, int writable, uid_t owner, struct qfile *q,
    const char **error_r)
{
	int fd;

	/* Never a symlink, and never a wait on a FIFO planted in its place. */
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW |
	                    O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		memset(q, 0, sizeof(*q));
		q->fd = -1;
		*error_r = qfile_error("open %s: %s", path, strerror(errno));
		return -1;
	}
	return qfile_open_fd(fd, path, owner, q, error_r);
}

const char *
qfile_attr(const struct qfile *q, const char *name)
{
	int i;

	for (i = 0; i < q->nattr; i++) {
		if (strcmp(q->attr_names[i], name) == 0)
			return q->attr_values[i];
	}
	return NULL;
}

int
qfile_pending(const struct qfile *q)
{
	int i, n = 0;

	for (i = 0; i < q->nrcpt; i++)
		n += q->rcpts[i].status == QREC_RCPT;
	return n;
}

int
qfile_mark(struct qfile *q, int i, char status, const char **error_r)
{
	if (i < 0 || i >= q->nrcpt)
		msg_panic("qfile_mark: recipient %d out of range", i);
	if (status != QREC_RCPT && status != QREC_RCPT_DONE &&
	    status != QREC_RCPT_FAILED)
		msg_panic(
		    "qfile_mark: bad status 0x%02x", (unsigned char)status);
	if (file_pwrite_all(q->fd, &status, 1, q->rcpts[i].status_off) < 0) {
		*error_r = qfile_error(
		    "%s: mark recipient: %s", q->id, strerror(errno));
		return -1;
	}
	q->rcpts[i].status = status;
	return 0;
}

int
qfile_mark_warned(struct qfile *q, const char **error_r)
{
	char type = QREC_WARN_SENT;

	if (q->warn_off == 0)
		msg_panic("qfile_mark_warned: %s has no warning record", q->id);
	if (file_pwrite_all(q->fd, &type, 1, q->warn_off) < 0) {
		*error_r = qfile_error(
		    "%s: mark the delay warning: %s", q->id, strerror(errno));
		return -1;
	}
	q->warned = 1;
	return 0;
}

int
qfile_sync(struct qfile *q, const char **error_r)
{
	if (fsync(q->fd) < 0) {
		*error_r = qfile_error("%s: fsync: %s", q->id, strerror(errno));
		return -1;
	}
	return 0;
}

void
qfile_close(struct qfile *q)
{
	qfile_reset(q);
}

int
qfile_tmp_stale(int dirfd, const char *name, time_t min_age)
{
	struct stat st;
	int fd, stale = 0;

	fd =
	    openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_mtime + min_age <= time(NULL) &&
	    flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* Nobody holds it and it is not fresh: its writer died. */
		stale = unlinkat(dirfd, name, 0) == 0;
	}
	close(fd);
	return stale;
}

void
qfile_delay(const struct qfile *q, char *out, size_t n)
{
	struct timeval now;
	double d;

	gettimeofday(&now, NULL);
	d = (double)(now.tv_sec - q->arrival_sec) +
	    (double)(now.tv_usec - q->arrival_usec) / 1e6;
	if (d < 0.01)
		snprintf(out, n, "0");
	else if (d < 1)
		snprintf(out, n, "%.2f", d);
	else if (d < 10)
		snprintf(out, n, "%.1f", d);
	else
		snprintf(out, n, "%.0f", d);
}
