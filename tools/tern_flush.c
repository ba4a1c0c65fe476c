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
#include <unistd.h>

#include "base/buf.h"
#include "base/priv.h"
#include "base/log.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "tern.h"

#define TERN_FLUSH_TIMEOUT_S 10
/* Longer than any domain name (RFC 1035: 255). */
#define TERN_FLUSH_DOMAIN_MAX 255

int
tern_flush(const char *domain)
{
	char *path = queue_path(QUEUE_PRIVATE, "qmgr");
	int root = geteuid() == 0, ret = 1;
	struct priv_user owner;
	struct buf frame;
	const char *err;

	if (domain != NULL && (strlen(domain) > TERN_FLUSH_DOMAIN_MAX ||
	                          strpbrk(domain, "@ \t\r\n") != NULL)) {
		tern_error("flush: bad domain \"%s\"", domain);
		free(path);
		return 2;
	}
	buf_init(&frame, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", "flush") < 0 ||
	    (domain != NULL && attr_put_str(&frame, "domain", domain) < 0) ||
	    attr_frame_end(&frame) < 0)
		msg_panic("flush: request does not fit a frame");
	/* The socket is in a directory tern owns: follow it as mail_owner. */
	if (root && priv_lookup_user(var_mail_owner, &owner) < 0) {
		tern_error("mail_owner %s does not exist", var_mail_owner);
	} else if (root && priv_become(owner.uid, owner.gid) < 0) {
		tern_error("cannot switch to %s: %s", var_mail_owner,
		    strerror(errno));
		priv_user_free(&owner);
	} else {
		if (attr_notice_send(path, &frame, TERN_FLUSH_TIMEOUT_S, &err) < 0)
			tern_error("flush: %s (is tern running?)", err);
		else
			ret = 0;
		if (root) {
			priv_user_free(&owner);
			if (priv_restore() < 0) {
				tern_error("cannot return to root: %s",
				    strerror(errno));
				exit(1);
			}
		}
	}
	buf_free(&frame);
	free(path);
	return ret;
}
