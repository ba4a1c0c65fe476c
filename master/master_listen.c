/* SPDX-License-Identifier: MIT */
/*
 * master's listening sockets. master binds every socket itself, as root,
 * and hands them to its children, so daemons never need privileges to
 * bind port 25 and a restarted child loses no queued connections. inet
 * services bind PORT on each $inet_interfaces address ("all": 0.0.0.0 and
 * ::), or the HOST:PORT they name; unix services bind
 * $queue_directory/private/NAME or public/NAME, or $login_directory/NAME
 * for a service named login/NAME. A socket is identified by
 * a key (family, address, port or path) so a reload keeps the ones whose
 * key did not change instead of binding them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "master.h"

#define MASTER_LISTEN_BACKLOG 1024
#define MASTER_LISTEN_MAX     64 /* per service; server.c has the same */
#define MASTER_ERROR_MAX      512
#define MASTER_PRIVATE_MODE   0600
#define MASTER_PUBLIC_MODE    0660
/* $login_directory/NAME: root's, and the group of $login_user. */
#define MASTER_LOGIN_MODE     0660
#define MASTER_LOGIN_DIR_MODE 0755
#define MASTER_ALL_INTERFACES "all"

static char master_listen_error[MASTER_ERROR_MAX];

struct master_listen_set {
	struct master_listener **list;
	int count;
	int from_pool[MASTER_LISTEN_MAX];
};

static int master_listen_fail(const char **error_r, const char *fmt, ...)
    MTA_PRINTF(2, 3);

static int
master_listen_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(master_listen_error, sizeof(master_listen_error), fmt, ap);
	va_end(ap);
	*error_r = master_listen_error;
	return -1;
}

void
master_listener_free(struct master_listener **l_r)
{
	struct master_listener *l = *l_r;

	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	/* As the socket's owner: root touches no name in private/. */
	if (l->path != NULL) {
		if (l->uid != (uid_t)-1 && priv_become(l->uid, l->gid) < 0)
			msg_warn("unlink %s: cannot switch to uid %ld: %m",
			    l->path, (long)l->uid);
		else if (unlink(l->path) < 0 && errno != ENOENT)
			msg_warn("unlink %s: %m", l->path);
		if (l->uid != (uid_t)-1 && priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
	}
	free(l->key);
	free(l->path);
	free(l);
	*l_r = NULL;
}

/* Takes the listener with this key out of the pool, if there is one. */
static struct master_listener *
master_pool_take(struct master_listener **pool, int npool, const char *key)
{
	struct master_listener *l;
	int i;

	for (i = 0; i < npool; i++) {
		if (pool[i] != NULL && strcmp(pool[i]->key, key) == 0) {
			l = pool[i];
			pool[i] = NULL;
			return l;
		}
	}
	return NULL;
}

/* 1 if the set already has key (one address listed twice). */
static int
master_set_has(const struct master_listen_set *set, const char *key)
{
	int i;

	for (i = 0; i < set->count; i++)
		if (strcmp(set->list[i]->key, key) == 0)
			return 1;
	return 0;
}

static int
master_set_add(struct master_listen_set *set, struct master_listener *l,
    int from_pool, const char **error_r)
{
	if (set->count >= MASTER_LISTEN_MAX) {
		master_listener_free(&l);
		return master_listen_fail(
		    error_r, "more than %d sockets", MASTER_LISTEN_MAX);
	}
	set->list =
	    xrealloc(set->list, (size_t)(set->count + 1) * sizeof(*set->list));
	set->from_pool[set->count] = from_pool;
	set->list[set->count++] = l;
	return 0;
}

/* Failure: pooled sockets go back to the pool, new ones are closed. */
static void
master_set_undo(
    struct master_listen_set *set, struct master_listener **pool, int npool)
{
	int i, j;

	for (i = 0; i < set->count; i++) {
		if (!set->from_pool[i]) {
			master_listener_free(&set->list[i]);
			continue;
		}
		for (j = 0; j < npool && pool[j] != NULL; j++)
			;
		if (j < npool)
			pool[j] = set->list[i];
		else
			master_listener_free(&set->list[i]);
	}
	free(set->list);
	set->list = NULL;
	set->count = 0;
}

static struct master_listener *
master_listener_new(int fd, char *key, const char *path, uid_t uid, gid_t gid)
{
	struct master_listener *l = xcalloc(1, sizeof(*l));

	l->fd = fd;
	l->key = key;
	l->path = path != NULL ? xstrdup(path) : NULL;
	l->uid = uid;
	l->gid = gid;
	return l;
}

static int
master_inet_bind(const struct addrinfo *ai, const char *text, int *fd_r,
    const char **error_r)
{
	int fd, on = 1, saved;

	fd = socket(
	    ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		saved = errno;
		master_listen_fail(
		    error_r, "socket %s: %s", text, strerror(saved));
		errno = saved; /* the caller skips a missing family */
		return -1;
	}
	/* A restarted master must not wait for TIME_WAIT to expire. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (ai->ai_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) <
	            0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		master_listen_fail(
		    error_r, "bind %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

/*
 * Binds host (NULL: wildcard of family) and port, adding every address it
 * resolves to. optional: the family may be missing (:: without IPv6).
 */
static int
master_inet_host(struct master_listen_set *set, const char *host,
    const char *port, int family, int optional, struct master_listener **pool,
    int npool, const char **error_r)
{
	struct addrinfo hints = {0}, *res, *ai;
	char addr[NI_MAXHOST], serv[NI_MAXSERV], *key;
	struct master_listener *l;
	int err, fd;

	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0) {
		if (optional)
			return 0;
		return master_listen_fail(error_r, "%s port %s: %s",
		    host != NULL ? host : "*", port, gai_strerror(err));
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
		        serv, sizeof(serv),
		        NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			continue;
		key = xasprintf(
		    ai->ai_family == AF_INET6 ? "inet:[%s]:%s" : "inet:%s:%s",
		    addr, serv);
		if (master_set_has(set, key)) {
			free(key);
			continue;
		}
		if ((l = master_pool_take(pool, npool, key)) != NULL) {
			free(key);
			if (master_set_add(set, l, 1, error_r) < 0)
				goto fail;
			continue;
		}
		if (master_inet_bind(ai, key + strlen("inet:"), &fd, error_r) <
		    0) {
			free(key);
			if (optional && errno == EAFNOSUPPORT)
				continue;
			goto fail;
		}
		if (master_set_add(set,
		        master_listener_new(
		            fd, key, NULL, (uid_t)-1, (gid_t)-1),
		        0, error_r) < 0)
			goto fail;
	}
	freeaddrinfo(res);
	return 0;
fail:
	freeaddrinfo(res);
	return -1;
}

/* Splits PORT, HOST:PORT or [V6]:PORT; host is NULL for a bare port. */
static void
master_inet_split(const char *name, char **host_r, char **port_r)
{
	const char *colon;

	*host_r = NULL;
	if (*name == '[' && (colon = strstr(name, "]:")) != NULL) {
		*host_r = xstrndup(name + 1, (size_t)(colon - name - 1));
		*port_r = xstrdup(colon + 2);
	} else if ((colon = strrchr(name, ':')) != NULL) {
		*host_r = xstrndup(name, (size_t)(colon - name));
		*port_r = xstrdup(colon + 1);
	} else {
		*port_r = xstrdup(name);
	}
}

static int
master_inet_open(struct master_listen_set *set, const char *name,
    struct master_listener **pool, int npool, const char **error_r)
{
	char *host, *port, **ifaces;
	int i, ret = 0;

	master_inet_split(name, &host, &port);
	if (host != NULL) {
		ret = master_inet_host(
		    set, host, port, AF_UNSPEC, 0, pool, npool, error_r);
	} else {
		ifaces = config_list(var_inet_interfaces);
		if (ifaces[0] == NULL)
			ret = master_listen_fail(
			    error_r, "inet_interfaces is empty");
		for (i = 0; ret == 0 && ifaces[i] != NULL; i++) {
			if (strcmp(ifaces[i], MASTER_ALL_INTERFACES) != 0)
				ret = master_inet_host(set, ifaces[i], port,
				    AF_UNSPEC, 0, pool, npool, error_r);
			else if ((ret = master_inet_host(set, NULL, port,
			              AF_INET, 0, pool, npool, error_r)) == 0)
				ret = master_inet_host(set, NULL, port,
				    AF_INET6, 1, pool, npool, error_r);
		}
		config_list_free(ifaces);
	}
	free(host);
	free(port);
	return ret;
}

/* mail_owner's uid and the socket's group; -1s when not root. */
static int
master_unix_owner(int private, uid_t *uid_r, gid_t *gid_r, const char **error_r)
{
	struct priv_user u;

	*uid_r = (uid_t)-1;
	*gid_r = (gid_t)-1;
	if (geteuid() != 0)
		return 0;
	if (priv_lookup_user(var_mail_owner, &u) < 0)
		return master_listen_fail(error_r,
		    "mail_owner user '%s' does not exist", var_mail_owner);
	*uid_r = u.uid;
	*gid_r = u.gid;
	priv_user_free(&u);
	if (!private && priv_lookup_group(var_setgid_group, gid_r) < 0)
		return master_listen_fail(error_r,
		    "setgid_group '%s' does not exist", var_setgid_group);
	return 0;
}

/*
 * Creates the socket file as mail_owner (egid: its group, or setgid_group
 * for public/) with a umask that leaves exactly mode: private/ and
 * public/ belong to mail_owner, so root never chmods, chowns or unlinks a
 * name there (a tern process could have swapped in a symlink). Postfix's
 * master does the same. Returns the listening fd or -1 with errno.
 */
static int
master_unix_bind(
    const struct sockaddr_un *sun, uid_t uid, gid_t gid, mode_t mode)
{
	mode_t old_umask = umask(~mode & 0777);
	int fd = -1, err = 0;

	if (uid != (uid_t)-1 && priv_become(uid, gid) < 0) {
		err = errno;
		goto out;
	}
	/* We hold the master lock: whatever is there is stale. */
	if (unlink(sun->sun_path) < 0 && errno != ENOENT)
		err = errno;
	else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		err = errno;
	else if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0 ||
	         listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		err = errno;
		close(fd);
		fd = -1;
	}
out:
	if (uid != (uid_t)-1 && priv_restore() < 0)
		msg_fatal("cannot return to root privileges: %m");
	umask(old_umask);
	errno = err;
	return fd;
}

/*
 * $login_directory, opened (never through a symlink) and checked by
 * descriptor: it becomes the login processes' root and holds spawn's
 * socket, so nobody but root may have placed or may change anything in
 * it. Made (root:root 0755) when missing; not root, it is ours. Returns
 * the directory's fd, or -1 with *error_r.
 */
static int
master_login_dir(const char **error_r)
{
	const char *dir = var_login_directory;
	struct stat st;
	int fd;

	if (*dir != '/')
		return master_listen_fail(
		    error_r, "login_directory '%s' is not absolute", dir);
	if (mkdir(dir, MASTER_LOGIN_DIR_MODE) == 0)
		msg_info("created login_directory %s", dir);
	else if (errno != EEXIST)
		return master_listen_fail(error_r, "mkdir %s: %s", dir,
		    strerror(errno));
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
	    0)
		return master_listen_fail(error_r,
		    "login_directory %s: %s (it must be a directory, not a "
		    "symlink)",
		    dir, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		close(fd);
		return master_listen_fail(error_r,
		    "login_directory %s must belong to %s and not be writable "
		    "by group or others (owner uid %ld, mode %04o)",
		    dir, geteuid() == 0 ? "root" : "the user running tern",
		    (long)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	return fd;
}

/*
 * login/NAME: the socket is made inside the checked directory (bound by
 * a name relative to it, so the path cannot lead elsewhere), as root,
 * mode 0660, group $login_user's: the login processes (and root) may
 * connect, nobody else. No one but root can write in that directory, so
 * root changing the owner of a name there is safe.
 */
static int
master_login_bind(const char *name, const char *path, const char **error_r)
{
	struct sockaddr_un sun = {0};
	mode_t old_umask;
	struct priv_user u;
	gid_t gid = (gid_t)-1;
	int dfd, cwd, fd = -1, err = 0;

	if (geteuid() == 0) {
		if (priv_lookup_user(var_login_user, &u) < 0)
			return master_listen_fail(error_r,
			    "login_user '%s' does not exist (the group of %s)",
			    var_login_user, path);
		gid = u.gid;
		priv_user_free(&u);
	}
	if (strlen(name) >= sizeof(sun.sun_path))
		return master_listen_fail(error_r, "socket name too long: %s",
		    name);
	if ((dfd = master_login_dir(error_r)) < 0)
		return -1;
	if ((cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		close(dfd);
		return master_listen_fail(error_r, "open .: %s", strerror(errno));
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, name, strlen(name) + 1);
	old_umask = umask(~MASTER_LOGIN_MODE & 0777);
	if (fchdir(dfd) < 0)
		err = errno;
	else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		err = errno;
	else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		err = errno;
	else if (bind(fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	         (gid != (gid_t)-1 &&
	             fchownat(dfd, name, 0, gid, AT_SYMLINK_NOFOLLOW) < 0) ||
	         listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		err = errno;
		close(fd);
		fd = -1;
	}
	umask(old_umask);
	if (fchdir(cwd) < 0)
		msg_fatal("cannot return to the working directory: %m");
	close(cwd);
	close(dfd);
	if (fd < 0)
		master_listen_fail(error_r, "bind %s: %s", path, strerror(err));
	return fd;
}

static int
master_login_open(struct master_listen_set *set, const char *name,
    struct master_listener **pool, int npool, const char **error_r)
{
	struct master_listener *l;
	char *path, *key;
	int fd;

	path = xasprintf("%s/%s", var_login_directory, name);
	key = xasprintf("unix:%s", path);
	if ((l = master_pool_take(pool, npool, key)) != NULL) {
		free(key);
		free(path);
		return master_set_add(set, l, 1, error_r);
	}
	if ((fd = master_login_bind(name, path, error_r)) < 0) {
		free(key);
		free(path);
		return -1;
	}
	/* Unlinked as root: the directory is root's alone. */
	l = master_listener_new(fd, key, path, (uid_t)-1, (gid_t)-1);
	free(path);
	return master_set_add(set, l, 0, error_r);
}

static int
master_unix_open(struct master_listen_set *set, const struct service_def *def,
    struct master_listener **pool, int npool, const char **error_r)
{
	struct sockaddr_un sun = {0};
	struct master_listener *l;
	char *path, *key;
	mode_t mode = def->private ? MASTER_PRIVATE_MODE : MASTER_PUBLIC_MODE;
	uid_t uid;
	gid_t gid;
	int fd, ret = -1;

	path =
	    queue_path(def->private ? QUEUE_PRIVATE : QUEUE_PUBLIC, def->name);
	key = xasprintf("unix:%s", path);
	if ((l = master_pool_take(pool, npool, key)) != NULL) {
		free(key);
		free(path);
		return master_set_add(set, l, 1, error_r);
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		master_listen_fail(error_r, "socket path too long: %s", path);
		goto out;
	}
	if (master_unix_owner(def->private, &uid, &gid, error_r) < 0)
		goto out;
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = master_unix_bind(&sun, uid, gid, mode)) < 0) {
		master_listen_fail(
		    error_r, "bind %s: %s", path, strerror(errno));
		goto out;
	}
	ret = master_set_add(
	    set, master_listener_new(fd, key, path, uid, gid), 0, error_r);
	key = NULL;
out:
	free(key);
	free(path);
	return ret;
}

int
master_listen_open(const struct service_def *def, struct master_listener **pool,
    int npool, struct master_listener ***list_r, int *count_r,
    const char **error_r)
{
	struct master_listen_set set = {0};
	const char *login = services_login_name(def);
	int ret, dfd;

	/* A service chrooted to $login_directory finds it made and sound. */
	if (def->chroot_dir != NULL &&
	    strcmp(def->chroot_dir, var_login_directory) == 0) {
		if ((dfd = master_login_dir(error_r)) < 0)
			return -1;
		close(dfd);
	}
	if (def->type == SERVICE_INET)
		ret = master_inet_open(&set, def->name, pool, npool, error_r);
	else if (login != NULL)
		ret = master_login_open(&set, login, pool, npool, error_r);
	else
		ret = master_unix_open(&set, def, pool, npool, error_r);
	if (ret < 0) {
		master_set_undo(&set, pool, npool);
		return -1;
	}
	*list_r = set.list;
	*count_r = set.count;
	return 0;
}
