/* SPDX-License-Identifier: MIT */
/*
 * Privilege changes. Daemons give up root for good right after start-up
 * (priv_drop), and prove it by trying to get it back; local delivery,
 * which must write as each recipient, switches only its effective ids for
 * one file operation at a time (priv_become / priv_restore).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/priv.h"
#include "base/log.h"
#include "base/mem.h"

int
priv_lookup_user(const char *name, struct priv_user *u)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL)
		return -1;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->name = xstrdup(pw->pw_name);
	u->home = xstrdup(pw->pw_dir != NULL ? pw->pw_dir : "/");
	return 0;
}

void
priv_user_free(struct priv_user *u)
{
	free(u->name);
	free(u->home);
	u->name = NULL;
	u->home = NULL;
}

int
priv_lookup_group(const char *name, gid_t *gid_r)
{
	struct group *gr = getgrnam(name);

	if (gr == NULL)
		return -1;
	*gid_r = gr->gr_gid;
	return 0;
}

void
priv_drop(uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		return;
	if (setgroups(1, &gid) < 0)
		msg_fatal("setgroups(%ld): %m", (long)gid);
	if (setgid(gid) < 0)
		msg_fatal("setgid(%ld): %m", (long)gid);
	if (setuid(uid) < 0)
		msg_fatal("setuid(%ld): %m", (long)uid);
	/* A drop that can be undone is no drop at all. */
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		msg_fatal(
		    "privileges could be regained after dropping to uid %ld",
		    (long)uid);
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid)
		msg_fatal("privilege drop to %ld:%ld did not take effect",
		    (long)uid, (long)gid);
}

void
priv_chroot(const char *dir)
{
	if (chroot(dir) < 0)
		msg_fatal("chroot %s: %m", dir);
	if (chdir("/") < 0)
		msg_fatal("chdir / in chroot %s: %m", dir);
}

int
priv_become(uid_t uid, gid_t gid)
{
	/* Not root: nothing can change, acting as ourselves is fine. */
	if (getuid() != 0 && geteuid() != 0) {
		if (uid == geteuid())
			return 0;
		errno = EPERM;
		return -1;
	}
	/* Groups first: once the euid is not 0 they cannot change. */
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0 || seteuid(uid) < 0)
		return -1;
	return 0;
}

int
priv_restore(void)
{
	gid_t root_gid = 0;

	if (getuid() != 0)
		return 0; /* never was root: nothing to restore */
	/* uid first: only root may reset the group ids. */
	if (seteuid(0) < 0 || setegid(root_gid) < 0 ||
	    setgroups(1, &root_gid) < 0)
		return -1;
	return 0;
}
