/* SPDX-License-Identifier: MIT */
/*
 * tern fetch [account | now]: asks the fetch daemon (private/fetch) to
 * collect the remote accounts now (one, or all) and prints its summary,
 * a line per account; `now` first sends ETRN to $fetch_etrn_hosts, for
 * a link-up hook (fetch(8)). The socket is mail_owner's: as root the
 * connection is made as mail_owner, as flush_send does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/priv.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "tern.h"

/* A poll of every account may take a while: fetch_max_messages each. */
#define TERN_FETCH_TIMEOUT_S 1800
#define TERN_FETCH_NAME_MAX 64
#define TERN_FETCH_SERVICE "fetch"

static int
tern_fetch_connect(const char **error_r)
{
	static char why[256];
	struct sockaddr_un sun;
	struct priv_user owner;
	char *path = queue_path(QUEUE_PRIVATE, TERN_FETCH_SERVICE);
	int fd = -1, root = geteuid() == 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	*error_r = why;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, sizeof(why), "%s: path too long", path);
		free(path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (root && priv_lookup_user(var_mail_owner, &owner) < 0) {
		snprintf(why, sizeof(why), "mail_owner %s does not exist",
		    var_mail_owner);
		free(path);
		return -1;
	}
	/* The socket is in a directory tern owns: follow it as mail_owner. */
	if (root && priv_become(owner.uid, owner.gid) < 0) {
		snprintf(why, sizeof(why), "cannot switch to %s: %s",
		    var_mail_owner, strerror(errno));
		priv_user_free(&owner);
		free(path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (root) {
		priv_user_free(&owner);
		if (priv_restore() < 0)
			msg_fatal("cannot return to root: %m");
	}
	free(path);
	return fd;
}

int
tern_fetch(const char *arg)
{
	int timeout_ms = TERN_FETCH_TIMEOUT_S * 1000, fd, etrn;
	const char *err, *status, *summary;
	struct attr_list l;
	struct stream st;
	struct buf frame;
	int ret = 1;

	etrn = arg != NULL && strcmp(arg, "now") == 0;
	if (arg != NULL && !etrn && strlen(arg) > TERN_FETCH_NAME_MAX) {
		tern_error("fetch: bad account name");
		return 2;
	}
	if ((fd = tern_fetch_connect(&err)) < 0) {
		tern_error("fetch: %s (is tern running with the fetch "
			   "service?)",
		    err);
		return 1;
	}
	buf_init(&frame, ATTR_FRAME_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", "fetch") < 0 ||
	    (arg != NULL && !etrn &&
	        attr_put_str(&frame, "account", arg) < 0) ||
	    (etrn && attr_put_str(&frame, "etrn", "1") < 0) ||
	    attr_frame_end(&frame) < 0)
		msg_panic("fetch: request does not fit a frame");
	stream_init(&st, fd);
	attr_list_init(&l);
	if (attr_write(&st, &frame, timeout_ms) != STREAM_OK)
		tern_error("fetch: cannot send the request: %s",
		    strerror(errno));
	else if (attr_read(&st, &l, timeout_ms, &err) != STREAM_OK)
		tern_error("fetch: no answer from the fetch daemon%s%s",
		    err != NULL ? ": " : "", err != NULL ? err : "");
	else {
		status = attr_get(&l, "status");
		summary = attr_get(&l, "summary");
		if (summary != NULL)
			fputs(summary, stdout);
		ret = status != NULL && strcmp(status, "ok") == 0 ? 0 : 1;
	}
	attr_list_free(&l);
	stream_close(&st);
	buf_free(&frame);
	return ret;
}
