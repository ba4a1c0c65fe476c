/* SPDX-License-Identifier: MIT */
/*
 * The mailbox of an address and its owner (mailbox_locate.h), shared by
 * local delivery and spawn, so that POP3 and IMAP read where delivery
 * writes. No RFCs: the rules are tern's (Postfix's local and virtual
 * agents).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/mailbox_locate.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"

#define MAILBOX_ERROR_MAX 256

static char mailbox_error[MAILBOX_ERROR_MAX];

static int mailbox_fail(int ret, const char **error_r, const char *fmt, ...)
    MTA_PRINTF(3, 4);

static int
mailbox_fail(int ret, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mailbox_error, sizeof(mailbox_error), fmt, ap);
	va_end(ap);
	*error_r = mailbox_error;
	return ret;
}

/* A maildir path as a session wants it: without trailing slashes. */
static char *
mailbox_trim(char *path)
{
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	return path;
}

int
mailbox_virtual_path(const char *addr, const char *local, const char *domain,
    char **maildir_r, char **top_r, int *tempfail_r, const char **error_r)
{
	int found;

	*maildir_r = *top_r = NULL;
	*tempfail_r = 0;
	if (virtual_mailbox_active()) {
		*tempfail_r = 1;
		found = virtual_mailbox_find(
		    addr, maildir_r, top_r, tempfail_r, error_r);
		return found;
	}
	if ((*maildir_r = resolve_virtual_maildir(local, domain)) == NULL)
		return mailbox_fail(
		    -1, error_r, "unusable mailbox name <%s>", addr);
	*top_r = xasprintf("%s/%s", var_virtual_mailbox_base, domain);
	return 1;
}

static int
mailbox_virtual(const char *addr, const struct resolve_result *r,
    struct mailbox_location *loc, const char **error_r)
{
	char *maildir, *top;
	struct passwd *pw;
	int found, tempfail;

	found = mailbox_virtual_path(
	    addr, r->local, r->domain, &maildir, &top, &tempfail, error_r);
	free(top);
	if (found < 0)
		return tempfail ? -1 : 0;
	if (found == 0)
		return mailbox_fail(0, error_r,
		    "<%s> is not in virtual_mailbox_maps", addr);
	errno = 0;
	if ((pw = getpwnam(var_vmail_user)) == NULL) {
		free(maildir);
		return mailbox_fail(-1, error_r, "vmail_user %s: %s",
		    var_vmail_user,
		    errno != 0 ? strerror(errno) : "no such user");
	}
	if (pw->pw_uid == 0) {
		free(maildir);
		return mailbox_fail(
		    0, error_r, "vmail_user %s has uid 0", var_vmail_user);
	}
	loc->owner = xstrdup(pw->pw_name);
	loc->uid = pw->pw_uid;
	loc->gid = pw->pw_gid;
	loc->is_virtual = 1;
	loc->maildir = mailbox_trim(maildir);
	return 1;
}

/* getpwnam() tells "no such user" by NULL with one of these errnos. */
static int
mailbox_pw_absent(int err)
{
	return err == 0 || err == ENOENT || err == ESRCH || err == EBADF ||
	       err == EPERM;
}

static int
mailbox_system(const struct resolve_result *r, struct mailbox_location *loc,
    const char **error_r)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(r->local)) == NULL) {
		if (mailbox_pw_absent(errno))
			return mailbox_fail(
			    0, error_r, "no system user %s", r->local);
		return mailbox_fail(-1, error_r, "user lookup %s: %s",
		    r->local, strerror(errno));
	}
	if (pw->pw_uid == 0)
		return mailbox_fail(0, error_r,
		    "refusing the mailbox of %s (uid 0)", pw->pw_name);
	if (pw->pw_dir == NULL || pw->pw_dir[0] != '/')
		return mailbox_fail(0, error_r,
		    "home directory of %s is not absolute", pw->pw_name);
	loc->owner = xstrdup(pw->pw_name);
	loc->uid = pw->pw_uid;
	loc->gid = pw->pw_gid;
	loc->is_virtual = 0;
	loc->maildir = mailbox_trim(
	    xasprintf("%s/%s", pw->pw_dir, var_home_mailbox));
	return 1;
}

int
mailbox_locate(
    const char *addr, struct mailbox_location *loc, const char **error_r)
{
	struct resolve_result r;
	int ret;

	memset(loc, 0, sizeof(*loc));
	if (resolve_address(addr, &r) < 0)
		return mailbox_fail(0, error_r, "bad address <%s>", addr);
	switch (r.class) {
	case RESOLVE_VIRTUAL:
		ret = mailbox_virtual(addr, &r, loc, error_r);
		break;
	case RESOLVE_LOCAL:
		ret = mailbox_system(&r, loc, error_r);
		break;
	default:
		ret = mailbox_fail(0, error_r,
		    "<%s> is not in a local or virtual mailbox domain", addr);
		break;
	}
	resolve_free(&r);
	return ret;
}

void
mailbox_location_free(struct mailbox_location *loc)
{
	free(loc->owner);
	free(loc->maildir);
	loc->owner = loc->maildir = NULL;
}
