/* SPDX-License-Identifier: MIT */
/*
 * Privilege handling. priv_drop() is permanent: setgroups to the one
 * group, setgid, setuid, then verifies that neither uid 0 nor the old
 * ids can be regained, and exits with msg_fatal if they can.
 */
#ifndef TERN_PRIV_H
#define TERN_PRIV_H

#include <sys/types.h>

struct priv_user {
	uid_t uid;
	gid_t gid;
	char *name;
	char *home;
};

/* 0 and fills *u (free with priv_user_free), -1 if no such user. */
int priv_lookup_user(const char *name, struct priv_user *u);
void priv_user_free(struct priv_user *u);
/* Group by name: 0 and *gid_r, -1 if none. */
int priv_lookup_group(const char *name, gid_t *gid_r);

/* Fatal on any failure; a no-op when not running as root. */
void priv_drop(uid_t uid, gid_t gid);
/* chroot(dir) + chdir("/"); fatal on failure. Needs root. */
void priv_chroot(const char *dir);

/*
 * Temporary identity for one file operation by a root process (local
 * delivery): sets effective gid and uid (and supplementary groups to gid).
 * priv_restore() returns to root. Both return 0 or -1 (errno set).
 */
int priv_become(uid_t uid, gid_t gid);
int priv_restore(void);

#endif
