/* SPDX-License-Identifier: MIT */
/*
 * The folder tree of a user's Maildir++ store as Dovecot 2.3 lays it out
 * (its default "maildir++" layout, '.' the hierarchy separator): folder
 * "A.B" is the directory ROOT/.A.B with its name's levels in modified
 * UTF-7 (RFC 3501 5.1.3), INBOX the root itself. The subscriptions file
 * is Dovecot's (src/lib-storage/list/subscription-file.c): "V\t2\n\n",
 * then one name a line, its levels (mUTF-7) separated by TABs and
 * tab-escaped, written through subscriptions.lock renamed over it.
 * RFC 3501 6.3.3-6.3.7 (CREATE, DELETE, RENAME, SUBSCRIBE), RFC 6154
 * (SPECIAL-USE), RFC 5258 (LIST-EXTENDED attributes).
 */
#include <dirent.h>
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
#include "base/hash.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/imap_parser.h"
#include "mail/mailbox_private.h"

#define LIST_ERR_SIZE   (PATH_MAX + 256)
#define SUBS_HEADER     "V\t2\n\n"
#define SUBS_LOCK_NAME  "subscriptions.lock"
/* Dovecot's SUBSCRIPTION_FILE_CHANGE_TIMEOUT: an older lock is stale. */
#define SUBS_LOCK_STALE 30
#define SUBS_LOCK_WAIT  10
#define SUBS_RETRY_US   50000
#define SUBS_SIZE_MAX   (4u * 1024 * 1024)
#define SUBS_MAX        MAILBOX_FOLDERS_MAX
/* mUTF-7 is at most 8/3 of UTF-8 and a few octets per run. */
#define UTF7_MAX        (MAILBOX_NAME_MAX * 3 + 16)
/* A folder holds cur/ new/ tmp/ and files: nothing deeper. */
#define RMTREE_DEPTH    3

static __thread char list_err[LIST_ERR_SIZE];
/* Error texts stay valid until the module's next error in the thread. */
#define list_error(...) str_format(list_err, sizeof(list_err), __VA_ARGS__)

int
mailbox_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* The name with a first level "inbox" in any case as "INBOX", or NULL
 * with *err_r when it cannot be a folder's name. */
static char *
name_normalize(const char *name, int *err_r, const char **error_r)
{
	size_t len = strlen(name), i, depth = 1;
	char *norm;

	*err_r = MAILBOX_ERR_BADNAME;
	if (len == 0 || len > MAILBOX_NAME_MAX) {
		*error_r = "Invalid mailbox name length";
		return NULL;
	}
	if (name[0] == MAILBOX_SEP || name[len - 1] == MAILBOX_SEP) {
		*error_r = "Empty level in mailbox name";
		return NULL;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f ||
		    name[i] == '/' || (name[i] == '~' && i == 0)) {
			*error_r = "Invalid character in mailbox name";
			return NULL;
		}
		if (name[i] == MAILBOX_SEP) {
			if (name[i + 1] == MAILBOX_SEP) {
				*error_r = "Empty level in mailbox name";
				return NULL;
			}
			depth++;
		}
	}
	if (depth > MAILBOX_DEPTH_MAX) {
		*error_r = "Mailbox name too deep";
		return NULL;
	}
	norm = xstrdup(name);
	if (strncasecmp(norm, "INBOX", 5) == 0 &&
	    (norm[5] == '\0' || norm[5] == MAILBOX_SEP))
		memcpy(norm, "INBOX", 5);
	return norm;
}

/* The on-disk (mUTF-7) form of a UTF-8 name, or NULL. */
static char *
name_to_disk(const char *name)
{
	struct buf b;

	buf_init(&b, UTF7_MAX);
	if (imap_utf8_to_utf7(name, strlen(name), &b) != 1) {
		buf_free(&b);
		return NULL;
	}
	if (buf_putc(&b, '\0') < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* The UTF-8 form of an on-disk name, or NULL when it is not mUTF-7. */
static char *
name_from_disk(const char *disk, size_t len)
{
	struct buf b;

	buf_init(&b, UTF7_MAX);
	if (imap_utf7_to_utf8(disk, len, &b) != 1 || buf_putc(&b, '\0') < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

char *
mailbox_folder_path(const struct mailbox_user *user, const char *name,
    char **norm_r, int *err_r, const char **error_r)
{
	char *norm, *disk, *path;

	if (norm_r != NULL)
		*norm_r = NULL;
	norm = name_normalize(name, err_r, error_r);
	if (norm == NULL)
		return NULL;
	if (strcmp(norm, "INBOX") == 0) {
		path = xstrdup(user->root);
	} else {
		disk = name_to_disk(norm);
		if (disk == NULL) {
			*err_r = MAILBOX_ERR_BADNAME;
			*error_r = "Mailbox name is not valid UTF-8";
			free(norm);
			return NULL;
		}
		path = xasprintf("%s/.%s", user->root, disk);
		free(disk);
	}
	if (norm_r != NULL)
		*norm_r = norm;
	else
		free(norm);
	return path;
}

static int
is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- subscriptions ---- */

/* Dovecot's str_append_tabescaped / str_tabunescape. */
static int
tab_escape(struct buf *b, const char *s, size_t n)
{
	size_t i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		switch (s[i]) {
		case '\001':
			r = buf_puts(b, "\0011");
			break;
		case '\t':
			r = buf_puts(b, "\001t");
			break;
		case '\r':
			r = buf_puts(b, "\001r");
			break;
		case '\n':
			r = buf_puts(b, "\001n");
			break;
		default:
			r = buf_putc(b, s[i]);
			break;
		}
	}
	return r;
}

/* A subscriptions line (version 2) as a UTF-8 name, or NULL. */
static char *
subs_line_name(const char *line, size_t n, int version)
{
	struct buf disk;
	size_t i;
	char *name;
	int r = 0;

	if (version < 2)
		return name_from_disk(line, n);
	buf_init(&disk, UTF7_MAX);
	for (i = 0; i < n && r == 0; i++) {
		if (line[i] == '\t') {
			r = buf_putc(&disk, MAILBOX_SEP);
		} else if (line[i] == '\001' && i + 1 < n) {
			i++;
			r = buf_putc(&disk, line[i] == '1'   ? '\001'
			                    : line[i] == 't' ? '\t'
			                    : line[i] == 'r' ? '\r'
			                    : line[i] == 'n' ? '\n'
			                                     : line[i]);
		} else {
			r = buf_putc(&disk, line[i]);
		}
	}
	name = r == 0 ? name_from_disk(buf_cstr(&disk), disk.len) : NULL;
	buf_free(&disk);
	return name;
}

/* The subscribed names (UTF-8), as a hash name -> name; -1 on error.
 * *exists_r: the file is there. */
static int
subs_read(const struct mailbox_user *user, struct hash *subs, int *exists_r,
    const char **error_r)
{
	char *path = xasprintf("%s/%s", user->root, MAILBOX_SUBS_NAME);
	const char *p, *end, *nl;
	int version = 1, fd;
	char *name;
	struct buf b;
	ssize_t n = 0;

	*exists_r = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		free(path);
		if (errno == ENOENT)
			return 0;
		*error_r =
		    list_error("open subscriptions: %s", strerror(errno));
		return -1;
	}
	*exists_r = 1;
	buf_init(&b, SUBS_SIZE_MAX);
	for (;;) {
		char chunk[8192];

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
	close(fd);
	free(path);
	if (n < 0) {
		*error_r =
		    list_error("read subscriptions: %s", strerror(errno));
		buf_free(&b);
		return -1;
	}
	p = buf_cstr(&b);
	end = p + b.len;
	if (b.len >= strlen(SUBS_HEADER) &&
	    memcmp(p, SUBS_HEADER, strlen(SUBS_HEADER)) == 0) {
		version = 2;
		p += strlen(SUBS_HEADER);
	}
	while (p < end && hash_count(subs) < SUBS_MAX) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl > p) {
			name = subs_line_name(p, (size_t)(nl - p), version);
			if (name != NULL) {
				if (mailbox_is_inbox(name))
					memcpy(name, "INBOX", 5);
				if (hash_get(subs, name) == NULL)
					hash_put(subs, name, name);
				else
					free(name);
			}
		}
		p = nl + 1;
	}
	buf_free(&b);
	return 0;
}

/* One line of the file for a UTF-8 name. */
static int
subs_line(struct buf *b, const char *name)
{
	char *disk = name_to_disk(name);
	const char *p, *dot;

	if (disk == NULL)
		return 0;
	for (p = disk;; p = dot + 1) {
		dot = strchr(p, MAILBOX_SEP);
		if (tab_escape(
		        b, p, dot != NULL ? (size_t)(dot - p) : strlen(p)) < 0)
			break;
		if (dot == NULL)
			break;
		if (buf_putc(b, '\t') < 0)
			break;
	}
	free(disk);
	return buf_putc(b, '\n');
}

static int
subs_lock(const struct mailbox_user *user, char **lock_r, const char **error_r)
{
	char *lock = xasprintf("%s/%s", user->root, SUBS_LOCK_NAME);
	time_t start = time(NULL);
	struct stat st;
	int fd;

	for (;;) {
		fd = open(lock,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    MAILBOX_FILE_MODE);
		if (fd >= 0)
			break;
		if (errno != EEXIST) {
			*error_r = list_error(
			    "create subscriptions lock: %s", strerror(errno));
			free(lock);
			return -1;
		}
		if (lstat(lock, &st) == 0 &&
		    st.st_mtime < time(NULL) - SUBS_LOCK_STALE) {
			(void)unlink(lock);
			continue;
		}
		if (time(NULL) - start >= SUBS_LOCK_WAIT) {
			*error_r = "Timeout waiting for subscription file lock";
			free(lock);
			return MAILBOX_ERR_INUSE;
		}
		usleep(SUBS_RETRY_US);
	}
	*lock_r = lock;
	return fd;
}

/* Rewrites the file with names (hash of UTF-8 names) in the order of
 * lines, Dovecot's version 2 format. */
static int
subs_write(const struct mailbox_user *user, char *const *names, size_t n,
    const char **error_r)
{
	char *lock = NULL, *path;
	struct buf b;
	size_t i;
	int fd, ret = MAILBOX_ERR_TEMP;

	fd = subs_lock(user, &lock, error_r);
	if (fd < 0)
		return fd == MAILBOX_ERR_INUSE ? fd : MAILBOX_ERR_TEMP;
	buf_init(&b, SUBS_SIZE_MAX);
	if (buf_puts(&b, SUBS_HEADER) < 0)
		goto out;
	for (i = 0; i < n; i++)
		if (subs_line(&b, names[i]) < 0) {
			*error_r = "Too many subscriptions";
			goto out;
		}
	path = xasprintf("%s/%s", user->root, MAILBOX_SUBS_NAME);
	if (file_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0 ||
	    rename(lock, path) < 0) {
		*error_r =
		    list_error("write subscriptions: %s", strerror(errno));
		free(path);
		goto out;
	}
	free(path);
	free(lock);
	lock = NULL;
	ret = 0;
out:
	close(fd);
	if (lock != NULL) {
		(void)unlink(lock);
		free(lock);
	}
	buf_free(&b);
	return ret;
}

static int
str_ptr_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	int xi = strcmp(x, "INBOX") == 0, yi = strcmp(y, "INBOX") == 0;

	if (xi != yi)
		return yi - xi;
	return strcmp(x, y);
}

/* Names of a hash (keys), sorted; caller frees the array only. */
static char **
hash_names(const struct hash *h, size_t *n_r)
{
	char **v = xcalloc(hash_count(h) + 1, sizeof(*v));
	size_t pos = 0, n = 0;
	const char *k;

	while ((k = hash_iter(h, &pos, NULL)) != NULL)
		v[n++] = (char *)k;
	qsort(v, n, sizeof(*v), str_ptr_cmp);
	*n_r = n;
	return v;
}

static void
free_value(void *v)
{
	free(v);
}

int
mailbox_subscribe(struct mailbox_user *user, const char *name, int subscribe,
    const char **error_r)
{
	struct hash *subs = hash_create();
	char *norm, **names;
	int err, exists, ret;
	size_t n;

	norm = name_normalize(name, &err, error_r);
	if (norm == NULL) {
		hash_free(&subs, NULL);
		return err;
	}
	ret = subs_read(user, subs, &exists, error_r);
	if (ret == 0) {
		if (subscribe && hash_get(subs, norm) == NULL) {
			if (hash_count(subs) >= SUBS_MAX) {
				*error_r = "Too many subscriptions";
				ret = MAILBOX_ERR_LIMIT;
			} else {
				hash_put(subs, norm, xstrdup(norm));
			}
		} else if (!subscribe) {
			free(hash_del(subs, norm));
		}
	} else {
		ret = MAILBOX_ERR_TEMP;
	}
	if (ret == 0) {
		names = hash_names(subs, &n);
		ret = subs_write(user, names, n, error_r);
		free(names);
	}
	hash_free(&subs, free_value);
	free(norm);
	return ret;
}

/* For mailbox_user_open: subscribes names unless the file exists. */
int mailbox_subs_init(struct mailbox_user *user, const char *const *names,
    size_t n, const char **error_r);

int
mailbox_subs_init(struct mailbox_user *user, const char *const *names, size_t n,
    const char **error_r)
{
	return subs_write(user, (char *const *)names, n, error_r);
}

/* ---- the tree ---- */

static struct mailbox_info *
info_get(struct hash *all, const char *name)
{
	struct mailbox_info *info = hash_get(all, name);

	if (info == NULL) {
		info = xcalloc(1, sizeof(*info));
		info->name = xstrdup(name);
		info->attrs = MAILBOX_LIST_NONEXISTENT | MAILBOX_LIST_NOSELECT;
		hash_put(all, name, info);
	}
	return info;
}

static unsigned
special_use(const char *name)
{
	static const struct {
		const char *name;
		unsigned use;
	} uses[] = {
	    {"Sent", MAILBOX_USE_SENT},
	    {"Drafts", MAILBOX_USE_DRAFTS},
	    {"Trash", MAILBOX_USE_TRASH},
	    {"Junk", MAILBOX_USE_JUNK},
	    {"Archive", MAILBOX_USE_ARCHIVE},
	};
	size_t i;

	for (i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcmp(name, uses[i].name) == 0)
			return uses[i].use;
	return 0;
}

/* The UTF-8 names of the folders on disk (hash name -> name). */
static int
folders_read(
    const struct mailbox_user *user, struct hash *names, const char **error_r)
{
	struct dirent *de;
	char *name, *path;
	DIR *d;

	d = opendir(user->root);
	if (d == NULL) {
		*error_r = list_error("opendir: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		/* "..X" is Dovecot's (and tern's) folder being deleted */
		if (de->d_name[0] != '.' || de->d_name[1] == '.' ||
		    de->d_name[1] == '\0')
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (de->d_type == DT_UNKNOWN) {
			path = xasprintf("%s/%s", user->root, de->d_name);
			if (!is_dir(path)) {
				free(path);
				continue;
			}
			free(path);
		}
		name = name_from_disk(de->d_name + 1, strlen(de->d_name + 1));
		if (name == NULL || mailbox_is_inbox(name) ||
		    hash_count(names) >= MAILBOX_FOLDERS_MAX) {
			free(name);
			continue;
		}
		if (hash_get(names, name) == NULL)
			hash_put(names, name, name);
		else
			free(name);
	}
	closedir(d);
	return 0;
}

int
mailbox_list(struct mailbox_user *user, struct mailbox_info **infos_r,
    size_t *count_r, const char **error_r)
{
	struct hash *folders = hash_create(), *subs = hash_create(),
	            *all = hash_create();
	struct mailbox_info *infos, *info;
	size_t pos, n, i, j, plen;
	const char *k;
	char **names, *parent, *dot;
	int exists, ret = MAILBOX_ERR_TEMP;

	*infos_r = NULL;
	*count_r = 0;
	if (folders_read(user, folders, error_r) < 0 ||
	    subs_read(user, subs, &exists, error_r) < 0)
		goto out;
	info = info_get(all, "INBOX");
	info->attrs = 0;
	pos = 0;
	while ((k = hash_iter(folders, &pos, NULL)) != NULL) {
		info = info_get(all, k);
		info->attrs = 0;
	}
	pos = 0;
	while ((k = hash_iter(subs, &pos, NULL)) != NULL) {
		info = info_get(all, k);
		info->attrs |= MAILBOX_LIST_SUBSCRIBED;
	}
	/* the parents of every name, as levels of it */
	names = hash_names(all, &n);
	for (i = 0; i < n; i++) {
		parent = xstrdup(names[i]);
		while ((dot = strrchr(parent, MAILBOX_SEP)) != NULL) {
			*dot = '\0';
			(void)info_get(all, parent);
		}
		free(parent);
	}
	free(names);
	names = hash_names(all, &n);
	infos = xcalloc(n + 1, sizeof(*infos));
	for (i = 0; i < n; i++) {
		info = hash_get(all, names[i]);
		plen = strlen(info->name);
		/* children follow the name in sort order, after names that
		 * share the prefix with a byte below '.' */
		for (j = i + 1; j < n; j++) {
			if (strncmp(names[j], info->name, plen) != 0)
				break;
			if (names[j][plen] == MAILBOX_SEP)
				break;
		}
		if (j < n && strncmp(names[j], info->name, plen) == 0 &&
		    names[j][plen] == MAILBOX_SEP)
			info->attrs |= MAILBOX_LIST_CHILDREN;
		else
			info->attrs |= MAILBOX_LIST_NOCHILDREN;
		if ((info->attrs & MAILBOX_LIST_NONEXISTENT) != 0 &&
		    (info->attrs & MAILBOX_LIST_CHILDREN) != 0)
			/* a level of deeper names: it is there as a parent */
			info->attrs &= ~MAILBOX_LIST_NONEXISTENT;
		info->special_use = special_use(info->name);
		infos[i] = *info;
		free(info);
	}
	free(names);
	hash_free(&all, NULL);
	*infos_r = infos;
	*count_r = n;
	ret = 0;
out:
	hash_free(&all, NULL);
	hash_free(&folders, free_value);
	hash_free(&subs, free_value);
	return ret;
}

void
mailbox_list_free(struct mailbox_info *infos, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(infos[i].name);
	free(infos);
}

static int
folder_count(const struct mailbox_user *user, const char **error_r)
{
	struct hash *names = hash_create();
	int n = -1;

	if (folders_read(user, names, error_r) == 0)
		n = (int)hash_count(names);
	hash_free(&names, free_value);
	return n;
}

int
mailbox_create(
    struct mailbox_user *user, const char *name, const char **error_r)
{
	char *path, *norm, *sub;
	int err, n, fd;

	path = mailbox_folder_path(user, name, &norm, &err, error_r);
	if (path == NULL)
		return err;
	if (strcmp(norm, "INBOX") == 0 || is_dir(path)) {
		*error_r = "Mailbox already exists";
		err = MAILBOX_ERR_EXISTS;
		goto out;
	}
	n = folder_count(user, error_r);
	if (n < 0 || n >= MAILBOX_FOLDERS_MAX) {
		if (n >= 0)
			*error_r = "Too many mailboxes";
		err = n < 0 ? MAILBOX_ERR_TEMP : MAILBOX_ERR_LIMIT;
		goto out;
	}
	if (mkdir(path, MAILBOX_DIR_MODE) < 0) {
		err = errno == EEXIST ? MAILBOX_ERR_EXISTS : MAILBOX_ERR_TEMP;
		*error_r = errno == EEXIST
		               ? "Mailbox already exists"
		               : list_error("mkdir: %s", strerror(errno));
		goto out;
	}
	if (maildir_create(path, error_r) < 0) {
		err = MAILBOX_ERR_TEMP;
		goto out;
	}
	/* Maildir++: the folder is one (Dovecot and Courier create it) */
	sub = xasprintf("%s/maildirfolder", path);
	fd = open(sub, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    MAILBOX_FILE_MODE);
	free(sub);
	if (fd >= 0)
		close(fd);
	err = 0;
out:
	free(norm);
	free(path);
	return err;
}

/* Removes the directory at dirfd/name and what it holds. */
static int
rmtree_at(int dirfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(
	    dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return unlinkat(dirfd, name, 0);
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) < 0 &&
		    (errno == EISDIR || errno == EPERM) && depth > 0)
			(void)rmtree_at(fd, de->d_name, depth - 1);
	}
	closedir(d);
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* 1 if some folder is a child of disk name ".X" (prefix ".X."). */
static int
has_children(const struct mailbox_user *user, const char *dotname)
{
	size_t len = strlen(dotname);
	struct dirent *de;
	int found = 0;
	DIR *d;

	d = opendir(user->root);
	if (d == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL)
		found = strncmp(de->d_name, dotname, len) == 0 &&
		        de->d_name[len] == MAILBOX_SEP;
	closedir(d);
	return found;
}

int
mailbox_delete(
    struct mailbox_user *user, const char *name, const char **error_r)
{
	static unsigned long counter;
	char *path, *norm, *trash;
	int err;

	path = mailbox_folder_path(user, name, &norm, &err, error_r);
	if (path == NULL)
		return err;
	if (strcmp(norm, "INBOX") == 0) {
		*error_r = "INBOX can't be deleted";
		err = MAILBOX_ERR_NOPERM;
		goto out;
	}
	if (!is_dir(path)) {
		*error_r = "Mailbox doesn't exist";
		err = MAILBOX_ERR_NONEXISTENT;
		goto out;
	}
	/* Children stay (RFC 9051 6.3.5: DELETE must not remove inferior
	 * names): the name lives on as their \Noselect parent, as Dovecot's
	 * Maildir++ leaves it. */
	/* Out of sight first (Dovecot's ..DOVECOT-TRASH idea): a crash in
	 * the middle leaves no half folder listed. */
	trash = xasprintf(
	    "%s/..tern-trash.%ld.%lu", user->root, (long)getpid(), ++counter);
	if (rename(path, trash) < 0) {
		*error_r = list_error("rename: %s", strerror(errno));
		err = errno == ENOENT ? MAILBOX_ERR_NONEXISTENT
		                      : MAILBOX_ERR_TEMP;
		free(trash);
		goto out;
	}
	(void)rmtree_at(AT_FDCWD, trash, RMTREE_DEPTH);
	free(trash);
	err = 0;
out:
	free(norm);
	free(path);
	return err;
}

/* Moves every file of from/sub into to/sub (INBOX rename). */
static int
move_files(
    const char *from, const char *to, const char *sub, const char **error_r)
{
	char *fdir = xasprintf("%s/%s", from, sub),
	     *tdir = xasprintf("%s/%s", to, sub);
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir(fdir);
	if (d == NULL) {
		free(fdir);
		free(tdir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		char *dst;

		if (de->d_name[0] == '.')
			continue;
		dst = xasprintf("%s/%s", tdir, de->d_name);
		if (renameat(dirfd(d), de->d_name, AT_FDCWD, dst) < 0 &&
		    errno != ENOENT) {
			*error_r = list_error("rename: %s", strerror(errno));
			ret = -1;
		}
		free(dst);
		if (ret < 0)
			break;
	}
	closedir(d);
	free(fdir);
	free(tdir);
	return ret;
}

int
mailbox_rename(struct mailbox_user *user, const char *from, const char *to,
    const char **error_r)
{
	char *fpath = NULL, *tpath = NULL, *fnorm = NULL, *tnorm = NULL;
	char *fdot, *tdot, *src, *dst;
	size_t flen;
	struct dirent *de;
	DIR *d;
	int err, own;

	fpath = mailbox_folder_path(user, from, &fnorm, &err, error_r);
	if (fpath == NULL)
		return err;
	tpath = mailbox_folder_path(user, to, &tnorm, &err, error_r);
	if (tpath == NULL)
		goto out;
	fdot = strrchr(fpath, '/') + 1;
	tdot = strrchr(tpath, '/') + 1;
	/* A target that exists only through its children would take the
	 * renamed children half-way. */
	if (strcmp(tnorm, "INBOX") == 0 || is_dir(tpath) ||
	    has_children(user, tdot)) {
		*error_r = "Target mailbox already exists";
		err = MAILBOX_ERR_EXISTS;
		goto out;
	}
	if (strcmp(fnorm, "INBOX") == 0) {
		err = mailbox_create(user, tnorm, error_r);
		if (err == 0 &&
		    (move_files(fpath, tpath, "cur", error_r) < 0 ||
		        move_files(fpath, tpath, "new", error_r) < 0))
			err = MAILBOX_ERR_TEMP;
		goto out;
	}
	/* A \Noselect parent ("Foo" of ".Foo.Bar") renames its children,
	 * as Dovecot does: clients rename what LIST shows. */
	own = is_dir(fpath);
	if (!own && !has_children(user, fdot)) {
		*error_r = "Mailbox doesn't exist";
		err = MAILBOX_ERR_NONEXISTENT;
		goto out;
	}
	flen = strlen(fnorm);
	if (strncmp(tnorm, fnorm, flen) == 0 && tnorm[flen] == MAILBOX_SEP) {
		*error_r = "Can't rename mailbox under itself";
		err = MAILBOX_ERR_BADNAME;
		goto out;
	}
	if (own &&
	    file_rename_noreplace(AT_FDCWD, fpath, AT_FDCWD, tpath) < 0) {
		err = errno == EEXIST ? MAILBOX_ERR_EXISTS : MAILBOX_ERR_TEMP;
		*error_r = list_error("rename: %s", strerror(errno));
		goto out;
	}
	/* the children: ".From.x" -> ".To.x" */
	flen = strlen(fdot);
	err = 0;
	d = opendir(user->root);
	if (d == NULL) {
		*error_r = list_error("opendir: %s", strerror(errno));
		err = MAILBOX_ERR_TEMP;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, fdot, flen) != 0 ||
		    de->d_name[flen] != MAILBOX_SEP)
			continue;
		src = xasprintf("%s/%s", user->root, de->d_name);
		dst = xasprintf("%s/%s%s", user->root, tdot, de->d_name + flen);
		if (file_rename_noreplace(AT_FDCWD, src, AT_FDCWD, dst) < 0) {
			*error_r =
			    list_error("rename child: %s", strerror(errno));
			err = MAILBOX_ERR_TEMP;
		}
		free(src);
		free(dst);
	}
	closedir(d);
out:
	free(fpath);
	free(tpath);
	free(fnorm);
	free(tnorm);
	return err;
}
