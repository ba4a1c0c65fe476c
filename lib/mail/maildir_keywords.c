/* SPDX-License-Identifier: MIT */
/*
 * Dovecot's dovecot-keywords file (src/lib-storage/index/maildir/
 * maildir-keywords.c in Dovecot 2.3): keyword names of a Maildir folder
 * by the letter a..z they get in file names. tern reads and writes it as
 * Dovecot does, so that a keyword set by one is the same keyword for the
 * other.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir_keywords.h"

#define KW_ERR_SIZE  (PATH_MAX + 256)
#define KW_FILE_MODE 0600

static __thread char kw_err[KW_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define kw_error(...) str_format(kw_err, sizeof(kw_err), __VA_ARGS__)

void
maildir_keywords_clear(struct maildir_keywords *kw)
{
	unsigned i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++) {
		free(kw->names[i]);
		kw->names[i] = NULL;
	}
}

int
maildir_keywords_lookup(const struct maildir_keywords *kw, const char *name)
{
	unsigned i;

	for (i = 0; i < MAILDIR_KEYWORDS_MAX; i++)
		if (kw->names[i] != NULL && strcasecmp(kw->names[i], name) == 0)
			return (int)i;
	return -1;
}

void
maildir_keywords_parse(
    struct maildir_keywords *kw, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl, *sp;
	unsigned idx;
	char *name;
	size_t n, i;

	maildir_keywords_clear(kw);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		sp = memchr(p, ' ', n);
		/* Dovecot's str_to_uint: digits only, then the name */
		idx = MAILDIR_KEYWORDS_MAX;
		if (sp != NULL && sp > p && sp - p <= 2) {
			idx = 0;
			for (i = 0; p + i < sp; i++) {
				if (p[i] < '0' || p[i] > '9') {
					idx = MAILDIR_KEYWORDS_MAX;
					break;
				}
				idx = idx * 10 + (unsigned)(p[i] - '0');
			}
		}
		if (idx < MAILDIR_KEYWORDS_MAX && sp + 1 < p + n &&
		    kw->names[idx] == NULL) {
			name = xstrndup(sp + 1, (size_t)(p + n - sp - 1));
			if (strlen(name) == (size_t)(p + n - sp - 1) &&
			    maildir_keywords_lookup(kw, name) < 0)
				kw->names[idx] = name;
			else
				free(name);
		}
		p += n + (nl != NULL);
	}
}

int
maildir_keywords_refresh(
    const char *dir, struct maildir_keywords *kw, const char **error_r)
{
	char *path = xasprintf("%s/%s", dir, MAILDIR_KEYWORDS_NAME);
	struct stat st;
	struct buf b;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			*error_r =
			    kw_error("open %s: %s", path, strerror(errno));
			free(path);
			return -1;
		}
		free(path);
		ret = kw->exists;
		for (fd = 0; fd < MAILDIR_KEYWORDS_MAX; fd++)
			if (kw->names[fd] != NULL)
				ret = 1;
		maildir_keywords_clear(kw);
		kw->exists = 0;
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = kw_error("%s: not a regular file", path);
		goto out;
	}
	if (kw->exists && st.st_mtim.tv_sec == kw->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == kw->mtime.tv_nsec) {
		ret = 0;
		goto out;
	}
	buf_init(&b, MAILDIR_KEYWORDS_SIZE_MAX);
	for (;;) {
		char chunk[4096];

		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			n = -1;
			errno = EFBIG;
			break;
		}
	}
	if (n < 0) {
		*error_r = kw_error("read %s: %s", path, strerror(errno));
		buf_free(&b);
		goto out;
	}
	maildir_keywords_parse(kw, buf_cstr(&b), b.len);
	buf_free(&b);
	kw->mtime = st.st_mtim;
	kw->exists = 1;
	ret = 1;
out:
	close(fd);
	free(path);
	return ret;
}

int
maildir_keywords_add(const char *dir, struct maildir_keywords *kw,
    const char *name, const char **error_r)
{
	char *path = NULL, *lock = NULL;
	struct timespec ts[2];
	struct stat st;
	struct buf b;
	unsigned i;
	int fd = -1, idx;

	idx = maildir_keywords_lookup(kw, name);
	if (idx >= 0)
		return idx;
	for (i = 0; i < MAILDIR_KEYWORDS_MAX && kw->names[i] != NULL; i++)
		;
	if (i == MAILDIR_KEYWORDS_MAX)
		return -2;
	if (strlen(name) > MAILDIR_KEYWORDS_NAME_MAX ||
	    name[strcspn(name, " \r\n")] != '\0' || name[0] == '\0') {
		*error_r = "invalid keyword name";
		return -1;
	}
	kw->names[i] = xstrdup(name);
	buf_init(&b, MAILDIR_KEYWORDS_SIZE_MAX);
	for (idx = 0; idx < MAILDIR_KEYWORDS_MAX; idx++)
		if (kw->names[idx] != NULL &&
		    buf_printf(&b, "%d %s\n", idx, kw->names[idx]) < 0)
			break;
	path = xasprintf("%s/%s", dir, MAILDIR_KEYWORDS_NAME);
	lock = xasprintf("%s/%s", dir, MAILDIR_KEYWORDS_LOCK_NAME);
	/* Under the uidlist lock a leftover lock file is a dead writer's,
	 * as Dovecot decides too. */
	(void)unlink(lock);
	fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    KW_FILE_MODE);
	if (fd < 0 ||
	    file_write_all(fd, b.data != NULL ? b.data : "", b.len) < 0 ||
	    fstat(fd, &st) < 0) {
		*error_r = kw_error("write %s: %s", lock, strerror(errno));
		goto fail;
	}
	/* Readers reread on an mtime change: it must grow even within the
	 * same clock tick. */
	if (kw->exists && (st.st_mtim.tv_sec < kw->mtime.tv_sec ||
	                      (st.st_mtim.tv_sec == kw->mtime.tv_sec &&
	                          st.st_mtim.tv_nsec <= kw->mtime.tv_nsec))) {
		ts[0] = st.st_atim;
		ts[1].tv_sec = kw->mtime.tv_sec + 1;
		ts[1].tv_nsec = 0;
		if (futimens(fd, ts) < 0 || fstat(fd, &st) < 0) {
			*error_r =
			    kw_error("utime %s: %s", lock, strerror(errno));
			goto fail;
		}
	}
	if (fsync(fd) < 0 || rename(lock, path) < 0) {
		*error_r = kw_error("rename %s: %s", lock, strerror(errno));
		goto fail;
	}
	close(fd);
	kw->mtime = st.st_mtim;
	kw->exists = 1;
	buf_free(&b);
	free(path);
	free(lock);
	return (int)i;
fail:
	if (fd >= 0) {
		close(fd);
		(void)unlink(lock);
	}
	free(kw->names[i]);
	kw->names[i] = NULL;
	buf_free(&b);
	free(path);
	free(lock);
	return -1;
}
