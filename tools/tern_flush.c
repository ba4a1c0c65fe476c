/* SPDX-License-Identifier: MIT */
/*
 * tern flush [domain]: asks the queue manager to retry deferred mail now
 * (all of it, or the messages with a pending recipient in domain) and to
 * give dead destinations another chance, as Postfix's `postqueue -f` and
 * `-s site` do. One notice frame to private/qmgr; qmgr does the work.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/priv.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "tern.h"

#define TERN_FLUSH_TIMEOUT_MS 10000
/* Longer than any domain name (RFC 1035: 255). */
#define TERN_FLUSH_DOMAIN_MAX 255

/* Connects to private/qmgr; as mail_owner when root (a tern-owned path). */
static int
tern_flush_connect(const char *path)
{
	struct sockaddr_un sun;
	struct priv_user owner;
	int fd, rc, root = geteuid() == 0, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		tern_error("%s: path too long", path);
		return -1;
	}
	if (root && priv_lookup_user(var_mail_owner, &owner) < 0) {
		tern_error("mail_owner %s does not exist", var_mail_owner);
		return -1;
	}
	if (root && priv_become(owner.uid, owner.gid) < 0) {
		tern_error("cannot switch to %s: %s", var_mail_owner,
		    strerror(errno));
		priv_user_free(&owner);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	err = errno;
	if (root) {
		priv_user_free(&owner);
		if (priv_restore() < 0) {
			tern_error("cannot return to root: %s", strerror(errno));
			exit(1);
		}
	}
	if (rc < 0) {
		tern_error("connect to %s: %s (is tern running?)", path,
		    strerror(err));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
tern_flush(const char *domain)
{
	char *path = queue_path(QUEUE_PRIVATE, "qmgr");
	struct stream st;
	struct buf frame;
	int fd, ret = 1;

	if (domain != NULL && (strlen(domain) > TERN_FLUSH_DOMAIN_MAX ||
	                          strpbrk(domain, "@ \t\r\n") != NULL)) {
		tern_error("flush: bad domain \"%s\"", domain);
		free(path);
		return 2;
	}
	if ((fd = tern_flush_connect(path)) < 0) {
		free(path);
		return 1;
	}
	buf_init(&frame, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", "flush") < 0 ||
	    (domain != NULL && attr_put_str(&frame, "domain", domain) < 0) ||
	    attr_frame_end(&frame) < 0) {
		tern_error("flush: request too large");
	} else {
		stream_init(&st, fd);
		if (attr_write(&st, &frame, TERN_FLUSH_TIMEOUT_MS) != STREAM_OK)
			tern_error("flush: cannot write to %s", path);
		else
			ret = 0;
		stream_free(&st);
	}
	buf_free(&frame);
	close(fd);
	free(path);
	return ret;
}
