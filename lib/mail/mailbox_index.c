/* SPDX-License-Identifier: MIT */
/*
 * tern's per-folder files, which Dovecot ignores: the index tern.index (a
 * snapshot of every message's uid, flags, keywords, size, internal date,
 * modseq and file name, and of the new/ and cur/ mtimes it reflects), the
 * change log tern.index.log that sessions append to and read from where
 * they last stopped, and the helpers for Maildir file names (flags after
 * ":2,", Dovecot's ",S=" and ",W=" sizes).
 *
 * Both files are a cache of what dovecot-uidlist, dovecot-keywords and
 * the file names hold: a damaged or missing one costs a rescan, never a
 * UID, a flag or a keyword. They are in host byte order (a maildir is
 * read by the host that writes it). Log records are length-framed and
 * checksummed, so a writer killed in the middle leaves a tail that
 * readers ignore and the next writer truncates.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/mailbox_private.h"

#define INDEX_MAGIC   "TERNIDX1"
#define LOG_MAGIC     "TERNLOG1"
#define MAGIC_SIZE    8
#define FNV64_OFFSET  14695981039346656037ull
#define FNV64_PRIME   1099511628211ull
/* frame: u32 payload length, u64 checksum */
#define FRAME_SIZE    12
#define SET_FIXED     35 /* type + fields before the name */
#define EXPUNGE_SIZE  13
#define DIRS_SIZE     41
#define IDX_HDR_SIZE  (MAGIC_SIZE + 4 + 4 + 8 + 8 + 8 + 4 * 8 + 4)
#define IDX_REC_FIXED 36
#define IDX_SIZE_MAX  (1024u * 1024 * 1024)
#define IDX_RECS_MAX  4000000u
#define IDX_ERR_SIZE  (PATH_MAX + 128)

struct mailbox_stats mailbox_stats;

static __thread char idx_err[IDX_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define idx_error(...) str_format(idx_err, sizeof(idx_err), __VA_ARGS__)

uint64_t
mailbox_checksum(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = FNV64_OFFSET;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV64_PRIME;
	return h;
}

/* Fixed-width fields, native order. */
static void
put(struct buf *b, const void *v, size_t n)
{
	if (buf_append(b, v, n) < 0)
		msg_panic("mailbox: index buffer full");
}

static void
put8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void
put32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}

static void
put64(struct buf *b, uint64_t v)
{
	put(b, &v, 8);
}

static uint32_t
get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t
get64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void
put_ts(struct buf *b, const struct timespec *ts)
{
	put64(b, (uint64_t)ts->tv_sec);
	put64(b, (uint64_t)ts->tv_nsec);
}

static void
get_ts(const char *p, struct timespec *ts)
{
	ts->tv_sec = (time_t)get64(p);
	ts->tv_nsec = (long)get64(p + 8);
}

void
mailbox_log_header(char *hdr, uint64_t gen)
{
	memcpy(hdr, LOG_MAGIC, MAGIC_SIZE);
	memcpy(hdr + MAGIC_SIZE, &gen, 8);
}

int
mailbox_log_header_parse(const char *hdr, uint64_t *gen_r)
{
	if (memcmp(hdr, LOG_MAGIC, MAGIC_SIZE) != 0)
		return -1;
	*gen_r = get64(hdr + MAGIC_SIZE);
	return 0;
}

void
mailbox_log_encode(struct buf *out, const struct mailbox_log_rec *r)
{
	struct buf p;
	size_t flen;

	buf_init(&p, MAILBOX_LOG_REC_MAX);
	put8(&p, r->type);
	switch (r->type) {
	case MAILBOX_LOG_SET:
		flen = strlen(r->rec.fname);
		if (flen + SET_FIXED > MAILBOX_LOG_REC_MAX)
			msg_panic("mailbox: file name too long for the log");
		put32(&p, r->rec.uid);
		put8(&p, r->rec.flags);
		put8(&p, r->rec.in_new);
		put32(&p, r->rec.keywords);
		put64(&p, r->rec.modseq);
		put64(&p, r->rec.size);
		put64(&p, (uint64_t)r->rec.received);
		put(&p, r->rec.fname, flen);
		break;
	case MAILBOX_LOG_EXPUNGE:
		put32(&p, r->uid);
		put64(&p, r->modseq);
		break;
	case MAILBOX_LOG_DIRS:
		put_ts(&p, &r->new_mtime);
		put_ts(&p, &r->cur_mtime);
		put32(&p, r->uidvalidity);
		put32(&p, r->uidnext);
		break;
	default:
		msg_panic("mailbox: log record type %u", r->type);
	}
	put32(out, (uint32_t)p.len);
	put64(out, mailbox_checksum(p.data, p.len));
	put(out, p.data, p.len);
	buf_free(&p);
}

ssize_t
mailbox_log_decode(const char *data, size_t len, struct mailbox_log_rec *r_r)
{
	const char *p;
	uint32_t plen;

	if (len < FRAME_SIZE)
		return 0;
	plen = get32(data);
	if (plen == 0 || plen > MAILBOX_LOG_REC_MAX)
		return -1;
	if (len < FRAME_SIZE + (size_t)plen)
		return 0;
	p = data + FRAME_SIZE;
	if (mailbox_checksum(p, plen) != get64(data + 4))
		return -1;
	memset(r_r, 0, sizeof(*r_r));
	r_r->type = (uint8_t)p[0];
	switch (r_r->type) {
	case MAILBOX_LOG_SET:
		/* the name runs to the end of the payload, which ends in a
		 * NUL-free name followed by the next frame: callers copy */
		if (plen <= SET_FIXED)
			return -1;
		r_r->rec.uid = get32(p + 1);
		r_r->rec.flags = (uint8_t)p[5] & MAILBOX_F_STORED;
		r_r->rec.in_new = (uint8_t)p[6];
		r_r->rec.keywords = get32(p + 7);
		r_r->rec.modseq = get64(p + 11);
		r_r->rec.size = get64(p + 19);
		r_r->rec.received = (int64_t)get64(p + 27);
		r_r->rec.fname = xstrndup(p + SET_FIXED, plen - SET_FIXED);
		if (strlen(r_r->rec.fname) != plen - SET_FIXED ||
		    r_r->rec.uid == 0) {
			free(r_r->rec.fname);
			r_r->rec.fname = NULL;
			return -1;
		}
		break;
	case MAILBOX_LOG_EXPUNGE:
		if (plen != EXPUNGE_SIZE)
			return -1;
		r_r->uid = get32(p + 1);
		r_r->modseq = get64(p + 5);
		break;
	case MAILBOX_LOG_DIRS:
		if (plen != DIRS_SIZE)
			return -1;
		get_ts(p + 1, &r_r->new_mtime);
		get_ts(p + 17, &r_r->cur_mtime);
		r_r->uidvalidity = get32(p + 33);
		r_r->uidnext = get32(p + 37);
		break;
	default:
		return -1;
	}
	return (ssize_t)(FRAME_SIZE + plen);
}

void
mailbox_index_free(struct mailbox_index *idx)
{
	uint32_t i;

	for (i = 0; i < idx->count; i++)
		free(idx->recs[i].fname);
	free(idx->recs);
	memset(idx, 0, sizeof(*idx));
}

static int
index_parse(
    const char *d, size_t len, struct mailbox_index *idx, int keep_names)
{
	const char *p, *end;
	uint32_t i, count, prev = 0;
	struct mailbox_rec *r;
	uint16_t flen;

	/* An empty file reads as d NULL: no arithmetic on d before this. */
	if (len < IDX_HDR_SIZE + 8)
		return 0;
	end = d + len - 8;
	if (memcmp(d, INDEX_MAGIC, MAGIC_SIZE) != 0 ||
	    mailbox_checksum(d, len - 8) != get64(end))
		return 0;
	p = d + MAGIC_SIZE;
	idx->uidvalidity = get32(p);
	idx->uidnext = get32(p + 4);
	idx->highestmodseq = get64(p + 8);
	idx->log_gen = get64(p + 16);
	idx->log_off = get64(p + 24);
	get_ts(p + 32, &idx->new_mtime);
	get_ts(p + 48, &idx->cur_mtime);
	count = get32(p + 64);
	p = d + IDX_HDR_SIZE;
	if (count > IDX_RECS_MAX || count > len / IDX_REC_FIXED)
		return 0;
	idx->recs = xcalloc(count + 1, sizeof(*idx->recs));
	for (i = 0; i < count; i++) {
		if (end - p < IDX_REC_FIXED)
			return 0;
		r = &idx->recs[i];
		r->uid = get32(p);
		r->flags = (uint8_t)p[4] & MAILBOX_F_STORED;
		r->in_new = (uint8_t)p[5];
		memcpy(&flen, p + 6, 2);
		r->keywords = get32(p + 8);
		r->modseq = get64(p + 12);
		r->size = get64(p + 20);
		r->received = (int64_t)get64(p + 28);
		p += IDX_REC_FIXED;
		if (r->uid <= prev || flen == 0 || end - p < flen)
			return 0;
		prev = r->uid;
		idx->count = i + 1;
		if (keep_names) {
			r->fname = xstrndup(p, flen);
			if (strlen(r->fname) != flen)
				return 0;
		} else {
			if (flen > MAILBOX_LOG_REC_MAX ||
			    memchr(p, '\0', flen) != NULL)
				return 0;
			r->fname_off = (uint32_t)(p - d);
			r->fname_len = flen;
		}
		p += flen;
	}
	return p == end;
}

static int
index_read(const char *dir, struct mailbox_index *idx_r, int *fd_r,
    const char **error_r)
{
	char *path = xasprintf("%s/%s", dir, MAILBOX_INDEX_NAME), *data;
	size_t len = 0, cap;
	struct stat st;
	ssize_t n;
	int fd, ret = -1;

	memset(idx_r, 0, sizeof(*idx_r));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			ret = 0;
		else
			*error_r =
			    idx_error("open %s: %s", path, strerror(errno));
		free(path);
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > IDX_SIZE_MAX) {
		close(fd);
		free(path);
		return 0;
	}
	/* straight into one buffer, not through a chunk on the stack (a
	 * session's stack pages stay its own); one byte more than the file
	 * to see it grow, which a file renamed into place does not */
	cap = (size_t)st.st_size + 1;
	data = xmalloc(cap);
	for (;;) {
		n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			n = 0;
			len = 0; /* not ours: rebuilt */
			break;
		}
	}
	if (fd_r == NULL || n < 0)
		close(fd);
	if (n < 0) {
		*error_r = idx_error("read %s: %s", path, strerror(errno));
		free(data);
		free(path);
		return -1;
	}
	mailbox_stats.index_reads++;
	ret = index_parse(data, len, idx_r, fd_r == NULL);
	if (ret == 0)
		mailbox_index_free(idx_r);
	if (fd_r != NULL) {
		if (ret > 0)
			*fd_r = fd;
		else
			close(fd);
	}
	free(data);
	free(path);
	return ret;
}

int
mailbox_index_read(
    const char *dir, struct mailbox_index *idx_r, const char **error_r)
{
	return index_read(dir, idx_r, NULL, error_r);
}

int
mailbox_index_read_fd(const char *dir, struct mailbox_index *idx_r, int *fd_r,
    const char **error_r)
{
	*fd_r = -1;
	return index_read(dir, idx_r, fd_r, error_r);
}

static int
index_write(const char *dir, const struct mailbox_index *idx,
    struct mailbox_rec *offs, int *fd_r, const char **error_r)
{
	char *path = xasprintf("%s/%s", dir, MAILBOX_INDEX_NAME);
	const struct mailbox_rec *r;
	char hdr[IDX_HDR_SIZE];
	struct stat st;
	struct buf b;
	uint16_t flen;
	uint32_t i;
	int ret;

	buf_init(&b, IDX_SIZE_MAX);
	/* a record per message: its name and fixed fields (~100 bytes) */
	(void)buf_reserve(&b, (size_t)idx->count * 100);
	put(&b, INDEX_MAGIC, MAGIC_SIZE);
	put32(&b, idx->uidvalidity);
	put32(&b, idx->uidnext);
	put64(&b, idx->highestmodseq);
	put64(&b, idx->log_gen);
	put64(&b, idx->log_off);
	put_ts(&b, &idx->new_mtime);
	put_ts(&b, &idx->cur_mtime);
	put32(&b, idx->count);
	for (i = 0; i < idx->count; i++) {
		r = &idx->recs[i];
		flen = (uint16_t)strlen(r->fname);
		put32(&b, r->uid);
		put8(&b, r->flags);
		put8(&b, r->in_new);
		put(&b, &flen, 2);
		put32(&b, r->keywords);
		put64(&b, r->modseq);
		put64(&b, r->size);
		put64(&b, (uint64_t)r->received);
		if (offs != NULL) {
			offs[i].fname_off = (uint32_t)b.len;
			offs[i].fname_len = flen;
		}
		put(&b, r->fname, flen);
	}
	put64(&b, mailbox_checksum(b.data, b.len));
	/*
	 * Not fsync'd: a torn or lost tern.index fails its checksum or its
	 * log generation and is rebuilt by a scan, and an older one still
	 * matches the log, which only grows. A cold SELECT of a large
	 * folder then syncs only dovecot-uidlist, as Dovecot's does.
	 */
	ret = file_write_atomic_nosync(
	    path, b.data, b.len, MAILBOX_FILE_MODE, error_r);
	if (ret == 0 && fd_r != NULL) {
		/* the file written, unless it is not what we wrote */
		*fd_r =
		    open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (*fd_r >= 0 &&
		    (fstat(*fd_r, &st) < 0 || !S_ISREG(st.st_mode) ||
		        (uint64_t)st.st_size != b.len ||
		        file_pread_all(*fd_r, hdr, sizeof(hdr), 0) < 0 ||
		        memcmp(hdr, b.data, sizeof(hdr)) != 0)) {
			close(*fd_r);
			*fd_r = -1;
		}
	}
	buf_free(&b);
	free(path);
	return ret;
}

int
mailbox_index_write(
    const char *dir, const struct mailbox_index *idx, const char **error_r)
{
	return index_write(dir, idx, NULL, NULL, error_r);
}

int
mailbox_index_write_fd(
    const char *dir, struct mailbox_index *idx, int *fd_r, const char **error_r)
{
	*fd_r = -1;
	return index_write(dir, idx, idx->recs, fd_r, error_r);
}

/* Maildir file names. */

static const struct {
	char c;
	uint8_t flag;
} flag_letters[] = {
    /* ASCII order, as Maildir wants them written */
    {'D', MAILBOX_F_DRAFT},
    {'F', MAILBOX_F_FLAGGED},
    {'R', MAILBOX_F_ANSWERED},
    {'S', MAILBOX_F_SEEN},
    {'T', MAILBOX_F_DELETED},
};

void
mailbox_fname_flags(const char *fname, uint8_t *flags_r, uint32_t *keywords_r)
{
	const char *p = strstr(fname, ":2,");
	size_t i;

	*flags_r = 0;
	*keywords_r = 0;
	if (p == NULL)
		return;
	for (p += 3; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z') {
			*keywords_r |= 1u << (*p - 'a');
			continue;
		}
		for (i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]);
		     i++)
			if (*p == flag_letters[i].c)
				*flags_r |= flag_letters[i].flag;
	}
}

char *
mailbox_fname_with_flags(const char *fname, uint8_t flags, uint32_t keywords)
{
	size_t blen = strcspn(fname, ":"), i, o = 0;
	char letters[64];
	const char *p;
	int k;

	/* Letters Maildir knows but IMAP does not (P: passed) are kept. */
	p = strstr(fname, ":2,");
	for (i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]); i++) {
		if (flag_letters[i].c > 'P' && p != NULL &&
		    strchr(p + 3, 'P') != NULL &&
		    (o == 0 || letters[o - 1] < 'P'))
			letters[o++] = 'P';
		if ((flags & flag_letters[i].flag) != 0)
			letters[o++] = flag_letters[i].c;
	}
	if (p != NULL && strchr(p + 3, 'P') != NULL &&
	    memchr(letters, 'P', o) == NULL)
		letters[o++] = 'P';
	for (k = 0; k < MAILBOX_KEYWORDS_MAX; k++)
		if ((keywords & (1u << k)) != 0)
			letters[o++] = (char)('a' + k);
	letters[o] = '\0';
	return xasprintf("%.*s:2,%s", (int)blen, fname, letters);
}

int
mailbox_fname_size(const char *fname, char key, uint64_t *v_r)
{
	size_t blen = strcspn(fname, ":");
	const char *p = fname;
	uint64_t v;

	while ((p = memchr(p, ',', blen - (size_t)(p - fname))) != NULL) {
		p++;
		if (p + 2 <= fname + blen && p[0] == key && p[1] == '=' &&
		    p[2] >= '0' && p[2] <= '9') {
			v = 0;
			for (p += 2; *p >= '0' && *p <= '9'; p++) {
				if (v > (UINT64_MAX - 9) / 10)
					return 0;
				v = v * 10 + (uint64_t)(*p - '0');
			}
			*v_r = v;
			return 1;
		}
	}
	return 0;
}
