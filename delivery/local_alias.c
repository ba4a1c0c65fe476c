/* SPDX-License-Identifier: MIT */
/*
 * Expansion of a local recipient, Postfix local(8)'s rules (alias.c,
 * dotforward.c, include.c, token.c): $alias_maps first (the local part
 * with its extension, then without), then the first of the user's
 * $forward_path files that exists, read as the user and ignored unless
 * the user owns it and no one else may write it. Targets are addresses
 * (collected for one resubmitted message), \user (that user's mailbox,
 * no further expansion), |command, /file (a maildir when it ends in '/')
 * and :include:/file (read as the current identity; its targets run as
 * the file's owner unless that is root). Commands and files are allowed
 * where $allow_mail_to_commands and $allow_mail_to_files say, run as
 * $default_privs for aliases and as the user for .forward, and never as
 * root. An alias naming itself (alice: alice, bob) means the mailbox.
 * Duplicates are dropped, :include: nesting is bounded.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "map/map.h"
#include "local.h"

/* :include: files within :include: files, as deep as this. */
#define LOCAL_INCLUDE_DEPTH 10
/* A .forward or :include: file larger than this is refused. */
#define LOCAL_FILE_MAX      (1024 * 1024)
/* One target (an address, a path, a command line). */
#define LOCAL_TARGET_MAX    4096
#define LOCAL_INCLUDE       ":include:"
/* Group- or world-writable: anyone else could redirect the user's mail. */
#define LOCAL_UNSAFE_MODE   022

struct local_alias_map {
	char *spec;
	struct map *map; /* NULL until it opens */
};

static struct local_alias_map *alias_maps;
static int alias_nmaps;

int
local_alias_init(void)
{
	char **list = config_list(var_alias_maps), *err = NULL;
	int i, ret = 0;

	for (i = 0; list[i] != NULL; i++)
		;
	alias_maps = xcalloc((size_t)i + 1, sizeof(*alias_maps));
	for (i = 0; list[i] != NULL; i++) {
		alias_maps[i].spec = xstrdup(list[i]);
		alias_maps[i].map = map_open(list[i], &err);
		if (alias_maps[i].map == NULL) {
			/* Tried again per delivery; mail defers meanwhile. */
			msg_warn("alias_maps: %s", err);
			free(err);
			err = NULL;
			ret = -1;
		}
	}
	alias_nmaps = i;
	config_list_free(list);
	return ret;
}

void
local_alias_free(void)
{
	int i;

	for (i = 0; i < alias_nmaps; i++) {
		map_free(&alias_maps[i].map);
		free(alias_maps[i].spec);
	}
	free(alias_maps);
	alias_maps = NULL;
	alias_nmaps = 0;
}

void
local_alias_recheck(void)
{
	int i;

	for (i = 0; i < alias_nmaps; i++)
		if (alias_maps[i].map != NULL)
			map_recheck_now(alias_maps[i].map);
}

/*
 * 1 with *value_r (allocated) and *spec_r, 0 not found, -1 with
 * *error_r (allocated): a table that cannot answer defers the mail.
 */
static int
local_alias_lookup(
    const char *name, char **value_r, const char **spec_r, char **error_r)
{
	const char *value, *err;
	char *oerr = NULL;
	int i, r;

	for (i = 0; i < alias_nmaps; i++) {
		if (alias_maps[i].map == NULL &&
		    (alias_maps[i].map = map_open(alias_maps[i].spec, &oerr)) ==
		        NULL) {
			*error_r = xasprintf("alias_maps: %s", oerr);
			free(oerr);
			return -1;
		}
		r = map_lookup(alias_maps[i].map, name, &value, &err);
		if (r < 0) {
			*error_r = xasprintf(
			    "alias_maps %s: %s", alias_maps[i].spec, err);
			return -1;
		}
		if (r > 0) {
			*value_r = xstrdup(value);
			*spec_r = alias_maps[i].spec;
			return 1;
		}
	}
	return 0;
}

/* --- target lists --- */

int
local_targets_split(const char *value, char ***targets_r)
{
	const char *p = value;
	char **v = NULL, *t;
	struct buf cur;
	int n = 0, quoted, any;

	buf_init(&cur, LOCAL_TARGET_MAX);
	while (*p != '\0') {
		buf_reset(&cur);
		quoted = 0;
		any = 0;
		/* A comma inside double quotes is part of the target. */
		for (; *p != '\0' && (quoted || *p != ','); p++) {
			if (*p == '"') {
				quoted = !quoted;
				continue;
			}
			if (*p == '\\' && quoted && p[1] != '\0')
				p++;
			if (buf_putc(&cur, *p) < 0)
				any = -1;
		}
		if (*p == ',')
			p++;
		if (any < 0)
			continue; /* over-long: dropped, the rest stays */
		t = str_trim(cur.data != NULL ? (char *)buf_cstr(&cur) : "");
		if (*t == '\0')
			continue;
		v = xrealloc(v, ((size_t)n + 1) * sizeof(*v));
		v[n++] = xstrdup(t);
	}
	buf_free(&cur);
	*targets_r = v;
	return n;
}

void
local_targets_free(char **targets, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
}

/* --- identities and permissions --- */

static const char *const local_source_name[] = {
    [LOCAL_SRC_ALIAS] = "alias",
    [LOCAL_SRC_FORWARD] = "forward",
    [LOCAL_SRC_INCLUDE] = "include",
};

static int
local_allowed(const char *list_value, enum local_source src)
{
	char **list = config_list(list_value);
	int i, found = 0;

	for (i = 0; list[i] != NULL && !found; i++)
		found = str_eq_ci(list[i], local_source_name[src]);
	config_list_free(list);
	return found;
}

/*
 * The identity for targets of alias_maps: $default_privs, or the user
 * local runs as when it is not root. user NULL when it does not exist.
 */
static void
local_alias_ident(struct local_ident *id_r)
{
	if (!local_root)
		(void)local_ident_uid(geteuid(), id_r);
	else
		(void)local_ident_user(var_default_privs, id_r);
}

/* 0 when id may deliver a file or command target, else -1 with res. */
static int
local_ident_usable(const struct local_ident *id, struct local_result *res)
{
	if (id->user == NULL) {
		local_set(res, "defer", "4.3.0",
		    "default_privs user %s does not exist", var_default_privs);
		return -1;
	}
	if (id->uid == 0) {
		local_set(res, "defer", "4.3.0",
		    "refusing to deliver to a file or command as root (%s)",
		    id->user);
		return -1;
	}
	return 0;
}

/*
 * Reads path (at most LOCAL_FILE_MAX) as id: not as root, following no
 * symbolic link at the end, never blocking on a FIFO. 1 with text and
 * *st_r, 0 when it does not exist, -1 with errno.
 */
static int
local_read_as(const char *path, const struct local_ident *id, struct buf *text,
    struct stat *st_r)
{
	int fd = -1, ret = -1, saved;
	char chunk[4096];
	ssize_t n;

	if (local_root && (id->uid == 0 || priv_become(id->uid, id->gid) < 0)) {
		if (id->uid == 0)
			errno = EPERM;
		saved = errno;
		goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		ret = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		goto out;
	}
	if (fstat(fd, st_r) < 0) {
		saved = errno;
		goto out;
	}
	if (!S_ISREG(st_r->st_mode)) {
		saved = EINVAL;
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			goto out;
		}
		if (n == 0)
			break;
		if (text->len + (size_t)n > LOCAL_FILE_MAX ||
		    buf_append(text, chunk, (size_t)n) < 0) {
			saved = EFBIG;
			goto out;
		}
	}
	ret = 1;
	saved = 0;
out:
	if (fd >= 0)
		close(fd);
	if (local_root && priv_restore() < 0)
		msg_fatal("cannot return to root privileges: %m");
	errno = saved;
	return ret;
}

/* --- targets --- */

static void local_include(struct local_rcpt *lr, const char *path,
    enum local_source src, const struct local_ident *id, const char *self);

static void local_leaf(struct local_rcpt *lr, const char *result,
    const char *dsn, const char *fmt, ...) MTA_PRINTF(4, 5);

static void
local_leaf(struct local_rcpt *lr, const char *result, const char *dsn,
    const char *fmt, ...)
{
	struct local_result res;
	va_list ap;

	memset(&res, 0, sizeof(res));
	res.result = result;
	res.dsn = dsn;
	va_start(ap, fmt);
	vsnprintf(res.text, sizeof(res.text), fmt, ap);
	va_end(ap);
	local_leaf_done(lr, &res);
}

/* Adds an address to the resubmission, once. */
static void
local_forward_addr(struct local_rcpt *lr, const char *addr)
{
	int first = local_first_time(lr, "address", addr);

	if (first < 0) {
		local_leaf(
		    lr, "bounce", "5.3.0", "too many targets in the expansion");
		return;
	}
	if (first == 0)
		return;
	lr->fwd = xrealloc(lr->fwd, ((size_t)lr->nfwd + 1) * sizeof(*lr->fwd));
	lr->fwd[lr->nfwd++] = xstrdup(addr);
}

/*
 * An address target. self: the name being expanded (the alias key or
 * the .forward owner), whose own address means its mailbox.
 */
static void
local_target_addr(struct local_rcpt *lr, const char *t, const char *self)
{
	struct resolve_result r;
	char *full, *addr;

	full = strchr(t, '@') != NULL ? xstrdup(t)
	                              : xasprintf("%s@%s", t, var_myorigin);
	if (strlen(full) > ADDR_PATH_MAX || resolve_address(full, &r) < 0) {
		local_leaf(lr, "bounce", "5.1.3",
		    "bad address syntax in the expansion: %s",
		    log_sanitize(t, ADDR_PATH_MAX));
		free(full);
		return;
	}
	if (r.class == RESOLVE_LOCAL && strcmp(r.local, self) == 0) {
		local_mailbox(lr, self);
	} else {
		addr = r.class == RESOLVE_LOCAL || r.class == RESOLVE_VIRTUAL
		           ? xasprintf("%s@%s", r.local, r.domain)
		           : xstrdup(full);
		local_forward_addr(lr, addr);
		free(addr);
	}
	resolve_free(&r);
	free(full);
}

static void
local_target(struct local_rcpt *lr, const char *t, enum local_source src,
    const struct local_ident *id, const char *self)
{
	struct local_result res;
	char *name;
	int first;

	memset(&res, 0, sizeof(res));
	if (t[0] == '\\') {
		name = addr_local_fold(t + 1);
		local_mailbox(lr, name);
		free(name);
	} else if (strncasecmp(t, LOCAL_INCLUDE, strlen(LOCAL_INCLUDE)) == 0) {
		local_include(lr, t + strlen(LOCAL_INCLUDE), src, id, self);
	} else if (t[0] == '|' || t[0] == '/') {
		if (!local_allowed(t[0] == '|' ? var_allow_mail_to_commands
		                               : var_allow_mail_to_files,
		        src)) {
			local_leaf(lr, "bounce", "5.7.1",
			    "mail to %s is restricted in %s targets",
			    t[0] == '|' ? "command" : "file",
			    local_source_name[src]);
			return;
		}
		first =
		    local_first_time(lr, t[0] == '|' ? "command" : "file", t);
		if (first == 0)
			return;
		if (first < 0)
			local_set(&res, "bounce", "5.3.0",
			    "too many targets in the expansion");
		else if (local_ident_usable(id, &res) == 0 && t[0] == '|')
			local_command(lr, id, t + 1, &res);
		else if (res.result == NULL)
			local_file(lr, id, t, &res);
		local_leaf_done(lr, &res);
		free(res.where);
	} else {
		local_target_addr(lr, t, self);
	}
}

/* Each non-comment line of a .forward or :include: file is a list. */
static int
local_file_targets(struct local_rcpt *lr, const char *text,
    enum local_source src, const struct local_ident *id, const char *self)
{
	const char *p = text, *nl;
	char *line, **v;
	int n, i, total = 0;

	for (; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		line = xstrndup(p, (size_t)(nl - p));
		if (*str_trim(line) != '#') {
			n = local_targets_split(line, &v);
			for (i = 0; i < n; i++)
				local_target(lr, v[i], src, id, self);
			local_targets_free(v, n);
			total += n;
		}
		free(line);
	}
	return total;
}

static void
local_include(struct local_rcpt *lr, const char *path, enum local_source src,
    const struct local_ident *id, const char *self)
{
	struct local_result res;
	struct local_ident owner;
	struct buf text;
	struct stat st;
	int r, first;

	(void)src;
	if (path[0] != '/') {
		local_leaf(lr, "bounce", "5.3.0",
		    ":include: needs an absolute path: %s",
		    log_sanitize(path, LOCAL_TEXT_MAX / 2));
		return;
	}
	if (lr->depth >= LOCAL_INCLUDE_DEPTH) {
		local_leaf(lr, "bounce", "5.4.6",
		    "mail forwarding loop: :include: nested deeper than %d "
		    "at %s",
		    LOCAL_INCLUDE_DEPTH,
		    log_sanitize(path, LOCAL_TEXT_MAX / 2));
		return;
	}
	/* An include of itself, or twice in one list: read once. */
	if ((first = local_first_time(lr, "include", path)) <= 0) {
		if (first < 0)
			local_leaf(lr, "bounce", "5.3.0",
			    "too many targets in the expansion");
		return;
	}
	memset(&res, 0, sizeof(res));
	if (local_ident_usable(id, &res) < 0) {
		local_leaf_done(lr, &res);
		return;
	}
	buf_init(&text, LOCAL_FILE_MAX + 1);
	r = local_read_as(path, id, &text, &st);
	if (r <= 0) {
		local_leaf(lr,
		    r == 0 || errno == ELOOP || errno == EINVAL ? "bounce"
		                                                : "defer",
		    r == 0 || errno == ELOOP || errno == EINVAL ? "5.3.0"
		                                                : "4.3.0",
		    "cannot read include file %s: %s",
		    log_sanitize(path, LOCAL_TEXT_MAX / 2),
		    r == 0            ? "no such file"
		    : errno == EINVAL ? "not a regular file"
		                      : strerror(errno));
		buf_free(&text);
		return;
	}
	/* Its targets run as its owner, unless root owns it (Postfix). */
	memset(&owner, 0, sizeof(owner));
	if (st.st_uid != 0 && st.st_uid != id->uid) {
		if (local_ident_uid(st.st_uid, &owner) <= 0) {
			owner.uid = st.st_uid;
			owner.gid = st.st_gid;
			owner.user = xasprintf("#%ld", (long)st.st_uid);
			owner.home = xstrdup("/");
			owner.shell = xstrdup("");
		}
	}
	lr->expanded = 1;
	lr->depth++;
	if (local_file_targets(lr, buf_cstr(&text), LOCAL_SRC_INCLUDE,
	        owner.user != NULL ? &owner : id, self) == 0)
		local_leaf(lr, "bounce", "5.1.1", "include file %s is empty",
		    log_sanitize(path, LOCAL_TEXT_MAX / 2));
	lr->depth--;
	local_ident_free(&owner);
	buf_free(&text);
}

/* --- aliases --- */

static void
local_alias_expand(struct local_rcpt *lr, const char *name, const char *value)
{
	struct local_ident id;
	char **v;
	int n, i;

	lr->expanded = 1;
	n = local_targets_split(value, &v);
	if (n == 0) {
		local_leaf(
		    lr, "bounce", "5.1.1", "alias %s has no targets", name);
		return;
	}
	local_alias_ident(&id);
	for (i = 0; i < n; i++)
		local_target(lr, v[i], LOCAL_SRC_ALIAS, &id, name);
	local_targets_free(v, n);
	local_ident_free(&id);
}

/* --- .forward --- */

/*
 * One $forward_path entry for lr: $name and ${name} of home, user,
 * local, extension, domain, recipient_delimiter. NULL when it names
 * the extension or its delimiter and the address has none (Postfix
 * skips such entries).
 */
static char *
local_forward_expand(
    const struct local_rcpt *lr, const struct local_ident *id, const char *spec)
{
	char delim[2] = {0, 0}, name[32];
	const char *p = spec, *v;
	struct buf out;
	size_t n;
	int braced;

	if (lr->ext != NULL)
		delim[0] = lr->local[strlen(lr->user)];
	buf_init(&out, LOCAL_TARGET_MAX);
	while (*p != '\0') {
		if (*p != '$') {
			if (buf_putc(&out, *p++) < 0)
				goto fail;
			continue;
		}
		p++;
		braced = *p == '{';
		p += braced;
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		if (n == 0 || n >= sizeof(name) || (braced && p[n] != '}'))
			goto fail;
		memcpy(name, p, n);
		name[n] = '\0';
		p += n + braced;
		if (strcmp(name, "home") == 0)
			v = id->home;
		else if (strcmp(name, "user") == 0)
			v = id->user;
		else if (strcmp(name, "local") == 0)
			v = lr->local;
		else if (strcmp(name, "domain") == 0)
			v = lr->domain;
		else if (strcmp(name, "extension") == 0)
			v = lr->ext;
		else if (strcmp(name, "recipient_delimiter") == 0)
			v = lr->ext != NULL ? delim : NULL;
		else
			goto fail;
		if (v == NULL || buf_puts(&out, v) < 0)
			goto fail;
	}
	return buf_steal(&out);
fail:
	buf_free(&out);
	return NULL;
}

/* 1 when a usable .forward file gave targets. */
static int
local_forward(struct local_rcpt *lr, const struct local_ident *id)
{
	char **list = config_list(var_forward_path), *path;
	struct buf text;
	struct stat st;
	int i, r, done = 0;

	for (i = 0; list[i] != NULL && !done; i++) {
		if ((path = local_forward_expand(lr, id, list[i])) == NULL)
			continue;
		buf_init(&text, LOCAL_FILE_MAX + 1);
		r = local_read_as(path, id, &text, &st);
		if (r < 0)
			msg_info("%s: to=<%s>: ignoring %s: %s", lr->msg->id,
			    log_sanitize(lr->addr, ADDR_PATH_MAX), path,
			    errno == EINVAL ? "not a regular file"
			                    : strerror(errno));
		else if (r > 0 && st.st_uid != id->uid)
			msg_info("%s: to=<%s>: ignoring %s: not owned by %s",
			    lr->msg->id, log_sanitize(lr->addr, ADDR_PATH_MAX),
			    path, id->user);
		else if (r > 0 && (st.st_mode & LOCAL_UNSAFE_MODE) != 0)
			msg_info("%s: to=<%s>: ignoring %s: writable by group "
			         "or others",
			    lr->msg->id, log_sanitize(lr->addr, ADDR_PATH_MAX),
			    path);
		else if (r > 0) {
			lr->expanded = 1;
			/* An empty .forward means the mailbox. */
			done = local_file_targets(lr, buf_cstr(&text),
			           LOCAL_SRC_FORWARD, id, id->user) > 0;
		}
		buf_free(&text);
		free(path);
	}
	config_list_free(list);
	return done;
}

int
local_expand(struct local_rcpt *lr)
{
	const char *spec, *key = lr->local;
	char *value = NULL, *err = NULL;
	struct local_ident id;
	int r, found;

	r = local_alias_lookup(key, &value, &spec, &err);
	if (r == 0 && lr->ext != NULL) {
		key = lr->user;
		r = local_alias_lookup(key, &value, &spec, &err);
	}
	if (r < 0) {
		local_leaf(lr, "defer", "4.3.0", "%s", err);
		free(err);
		return 1;
	}
	if (r > 0) {
		msg_debug("%s: %s: alias %s", lr->msg->id, spec, value);
		local_alias_expand(lr, key, value);
		free(value);
		return 1;
	}
	/* .forward of a system user that is not root. */
	found = local_ident_user(lr->user, &id);
	if (found <= 0 || id.uid == 0 || id.home[0] != '/') {
		local_ident_free(&id);
		return 0;
	}
	if (!local_root && id.uid != geteuid()) {
		local_ident_free(&id);
		return 0;
	}
	r = local_forward(lr, &id);
	local_ident_free(&id);
	return r;
}
