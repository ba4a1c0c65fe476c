/* SPDX-License-Identifier: MIT */
/*
 * Maildir++ quota, as Courier specified it
 * (https://www.courier-mta.org/imap/README.maildirquota.html) and Dovecot
 * keeps it (src/plugins/quota/quota-maildir.c): the maildir's top
 * directory holds "maildirsize", whose first line is the limits
 * ("<bytes>S,<count>C") and whose other lines are "<bytes> <count>" sums,
 * one appended per delivery (negative ones per expunge). The usage is
 * their sum; the file is rebuilt by a scan of every folder's new/ and cur/
 * when it is missing, too large, malformed, written for other limits, or
 * says "over quota" without being a fresh single sum. Everything here
 * runs as the mailbox owner.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/maildir.h"

#define QUOTA_FILE_MODE 0600
#define QUOTA_ERR_SIZE  (PATH_MAX + 256)
/* "-9223372036854775808 -9223372036854775808\n" and a NUL. */
#define QUOTA_SUM_SIZE  48

static __thread char quota_err[QUOTA_ERR_SIZE];

void
maildir_quota_format(const struct maildir_quota *q, char *out, size_t size)
{
	/* As Dovecot writes it: "0S" rather than an empty line. */
	if (q->bytes != 0 || q->count == 0)
		snprintf(out, size, "%lluS", (unsigned long long)q->bytes);
	else
		out[0] = '\0';
	if (q->count != 0)
		snprintf(out + strlen(out), size - strlen(out), "%s%lluC",
		    out[0] != '\0' ? "," : "", (unsigned long long)q->count);
}

int
maildir_quota_parse_limits(const char *line, struct maildir_quota *q)
{
	const char *p = line, *end;
	uint64_t v;
	int ret = 0;

	q->bytes = q->count = 0;
	while (*p != '\0') {
		end = p + strcspn(p, ",");
		if (end - p < 2 ||
		    str_to_u64_n(p, (size_t)(end - p - 1), UINT64_MAX, &v) < 0)
			ret = -1;
		else if (end[-1] == 'S')
			q->bytes = v;
		else if (end[-1] == 'C')
			q->count = v;
		else
			ret = -1;
		p = *end == ',' ? end + 1 : end;
	}
	return ret;
}

/* A signed decimal of [s, end); 0 or -1. */
static int
parse_signed(const char *s, const char *end, int64_t *v_r)
{
	int neg = s < end && *s == '-';
	uint64_t v;

	if (neg)
		s++;
	if (s >= end ||
	    str_to_u64_n(s, (size_t)(end - s), (uint64_t)INT64_MAX, &v) < 0)
		return -1;
	*v_r = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int
maildir_quota_parse(const char *text, size_t len, const struct maildir_quota *q,
    time_t mtime, time_t now, struct maildir_usage *u)
{
	struct maildir_quota file;
	int64_t bytes = 0, count = 0, b, c;
	const char *p, *nl, *sp, *end;
	char line[MAILDIR_QUOTA_LINE_SIZE];
	int sums = 0;

	if (len >= MAILDIR_SIZE_MAX || memchr(text, '\0', len) != NULL)
		return 0;
	/* A last line without its LF is an append in progress. */
	while (len > 0 && text[len - 1] != '\n')
		len--;
	end = text + len;
	nl = memchr(text, '\n', len);
	if (nl == NULL || (size_t)(nl - text) >= sizeof(line))
		return 0;
	memcpy(line, text, (size_t)(nl - text));
	line[nl - text] = '\0';
	if (maildir_quota_parse_limits(line, &file) < 0 ||
	    file.bytes != q->bytes || file.count != q->count)
		return 0;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp == NULL || parse_signed(p, sp, &b) < 0 ||
		    parse_signed(sp + 1, nl, &c) < 0 ||
		    __builtin_add_overflow(bytes, b, &bytes) ||
		    __builtin_add_overflow(count, c, &count))
			return 0;
		sums++;
	}
	if (sums == 0 || bytes < 0 || count < 0)
		return 0;
	u->bytes = (uint64_t)bytes;
	u->count = (uint64_t)count;
	/*
	 * Over quota, only a fresh recalculation is believed: sums appended
	 * since may count messages twice or miss expunges (Maildir++).
	 */
	if (((q->bytes != 0 && u->bytes > q->bytes) ||
	        (q->count != 0 && u->count > q->count)) &&
	    (sums > 1 || mtime < now - MAILDIR_SIZE_STALE))
		return 0;
	return 1;
}

int
maildir_quota_exceeded(
    const struct maildir_quota *q, const struct maildir_usage *u, uint64_t size)
{
	uint64_t total;

	if (q->bytes != 0 && (__builtin_add_overflow(u->bytes, size, &total) ||
	                         total > q->bytes))
		return 1;
	return q->count != 0 && u->count >= q->count;
}

/* The size in a name's ",S=<digits>" (ended by ',', ':' or its end). */
static int
name_size(const char *name, uint64_t *size_r)
{
	const char *p = strstr(name, ",S="), *e;

	if (p == NULL)
		return -1;
	p += 3;
	e = p + strspn(p, "0123456789");
	if (*e != '\0' && *e != ':' && *e != ',')
		return -1;
	return str_to_u64_n(p, (size_t)(e - p), UINT64_MAX, size_r);
}

/* Adds the messages of dir (new/ or cur/ of a folder). */
static int
sum_dir(const char *dir, struct maildir_usage *u, const char **error_r)
{
	struct dirent *de;
	struct stat st;
	uint64_t size;
	DIR *d;

	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		snprintf(quota_err, sizeof(quota_err), "opendir %s: %s", dir,
		    strerror(errno));
		*error_r = quota_err;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (name_size(de->d_name, &size) < 0) {
			if (fstatat(dirfd(d), de->d_name, &st,
			        AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			size = (uint64_t)st.st_size;
		}
		u->bytes += size;
		u->count++;
	}
	closedir(d);
	return 0;
}

/* new/ and cur/ of the folder at dir. */
static int
sum_folder(const char *dir, struct maildir_usage *u, const char **error_r)
{
	char *sub = xasprintf("%s/new", dir);
	int ret = sum_dir(sub, u, error_r);

	free(sub);
	if (ret < 0)
		return -1;
	sub = xasprintf("%s/cur", dir);
	ret = sum_dir(sub, u, error_r);
	free(sub);
	return ret;
}

/* The INBOX and each Maildir++ folder (".Name" directories). */
static int
scan(const char *maildir, struct maildir_usage *u, const char **error_r)
{
	struct dirent *de;
	char *sub;
	DIR *d;
	int ret = 0;

	u->bytes = u->count = 0;
	if (sum_folder(maildir, u, error_r) < 0)
		return -1;
	d = opendir(maildir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(quota_err, sizeof(quota_err), "opendir %s: %s",
		    maildir, strerror(errno));
		*error_r = quota_err;
		return -1;
	}
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		sub = xasprintf("%s/%s", maildir, de->d_name);
		ret = sum_folder(sub, u, error_r);
		free(sub);
	}
	closedir(d);
	return ret;
}

int
maildir_quota_recalc(const char *maildir, const struct maildir_quota *q,
    struct maildir_usage *u, const char **error_r)
{
	char limits[MAILDIR_QUOTA_LINE_SIZE], text[2 * QUOTA_SUM_SIZE];
	char *tmp, *path;
	int fd, n;

	if (scan(maildir, u, error_r) < 0)
		return -1;
	maildir_quota_format(q, limits, sizeof(limits));
	n = snprintf(text, sizeof(text), "%s\n%llu %llu\n", limits,
	    (unsigned long long)u->bytes, (unsigned long long)u->count);
	/* A file written under tmp/ and renamed: readers see one or the
	 * other. Failing to write it only costs the next delivery a scan. */
	tmp = xasprintf(
	    "%s/tmp/%s.%ld", maildir, MAILDIR_SIZE_FILE, (long)getpid());
	path = xasprintf("%s/%s", maildir, MAILDIR_SIZE_FILE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    QUOTA_FILE_MODE);
	if (fd >= 0) {
		if (file_write_all(fd, text, (size_t)n) < 0 || close(fd) < 0 ||
		    rename(tmp, path) < 0)
			(void)unlink(tmp);
	}
	free(tmp);
	free(path);
	return 0;
}

int
maildir_quota_usage(const char *maildir, const struct maildir_quota *q,
    time_t now, struct maildir_usage *u, const char **error_r)
{
	char *path = xasprintf("%s/%s", maildir, MAILDIR_SIZE_FILE);
	char text[MAILDIR_SIZE_MAX];
	struct stat st;
	size_t len = 0;
	ssize_t got = 1;
	int fd, ok = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	free(path);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		while (len < sizeof(text) && got > 0) {
			got = read(fd, text + len, sizeof(text) - len);
			if (got > 0)
				len += (size_t)got;
			else if (got < 0 && errno == EINTR)
				got = 1;
		}
		ok = got >= 0 && maildir_quota_parse(
		                     text, len, q, st.st_mtime, now, u) == 1;
	}
	if (fd >= 0)
		close(fd);
	return ok ? 0 : maildir_quota_recalc(maildir, q, u, error_r);
}

int
maildir_quota_add(const char *maildir, int64_t bytes, int64_t count)
{
	char *path = xasprintf("%s/%s", maildir, MAILDIR_SIZE_FILE);
	char line[QUOTA_SUM_SIZE];
	int fd, n, ret = 0;

	fd = open(
	    path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOENT ? 0 : -1;
	} else {
		n = snprintf(line, sizeof(line), "%lld %lld\n",
		    (long long)bytes, (long long)count);
		/* One write: O_APPEND keeps concurrent lines whole. */
		if (write(fd, line, (size_t)n) != n)
			ret = -1;
		if (close(fd) < 0)
			ret = -1;
	}
	if (ret < 0)
		(void)unlink(path);
	free(path);
	return ret;
}
