/* SPDX-License-Identifier: MIT */
/*
 * Tests for privilege handling. The identity changes need root; as an
 * ordinary user those parts only check that nothing happens. Changes are
 * made in forked children so the test process keeps its identity.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/priv.h"
#include "unit.h"

#define NOBODY 65534

/* Runs fn in a child; true when it exited 0. */
static int
in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn() == 0 ? 0 : 1);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void
test_priv_lookup(void)
{
	struct priv_user u;
	gid_t gid = 1;

	CHECK_INT(priv_lookup_user("root", &u), 0);
	CHECK_INT(u.uid, 0);
	CHECK_INT(u.gid, 0);
	CHECK_STR(u.name, "root");
	CHECK(u.home != NULL && u.home[0] == '/');
	priv_user_free(&u);
	CHECK(u.name == NULL && u.home == NULL);
	CHECK_INT(priv_lookup_user("no-such-tern-user", &u), -1);
	CHECK_INT(priv_lookup_group("root", &gid), 0);
	CHECK_INT(gid, 0);
	CHECK_INT(priv_lookup_group("no-such-tern-group", &gid), -1);
}

static int
drop_and_try_back(void)
{
	priv_drop(NOBODY, NOBODY);
	if (getuid() != NOBODY || geteuid() != NOBODY || getgid() != NOBODY ||
	    getegid() != NOBODY)
		return -1;
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1)
		return -1;
	return getgroups(0, NULL) == 1 ? 0 : -1;
}

static int
become_and_restore(void)
{
	gid_t groups[2];

	if (priv_become(NOBODY, NOBODY) < 0 || geteuid() != NOBODY ||
	    getegid() != NOBODY || getuid() != 0)
		return -1;
	if (getgroups(2, groups) != 1 || groups[0] != NOBODY)
		return -1;
	if (priv_restore() < 0 || geteuid() != 0 || getegid() != 0)
		return -1;
	/* Back to root means able to switch again. */
	if (priv_become(1, 1) < 0 || geteuid() != 1 || priv_restore() < 0)
		return -1;
	return 0;
}

static int
unprivileged_noop(void)
{
	uid_t uid = getuid(), euid = geteuid();

	priv_drop(NOBODY, NOBODY); /* not root: nothing happens */
	if (getuid() != uid || geteuid() != euid)
		return -1;
	if (priv_become(euid, getegid()) < 0 || priv_restore() < 0)
		return -1;
	return priv_become(0, 0) == -1 && errno == EPERM ? 0 : -1;
}

static void
test_priv_drop(void)
{
	if (geteuid() != 0) {
		printf("# skipped: not root\n");
		CHECK(in_child(unprivileged_noop));
		return;
	}
	CHECK(in_child(drop_and_try_back));
	CHECK(in_child(become_and_restore));
	CHECK_INT(geteuid(), 0);
}

UNIT_MAIN(UNIT_CASE(test_priv_lookup), UNIT_CASE(test_priv_drop))
