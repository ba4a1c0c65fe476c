/* SPDX-License-Identifier: MIT */
/*
 * Flush requests to the queue manager (flush.h): the frame every sender
 * builds, the domain check, and the blocking sender of the commands
 * (tern flush, ternqueue). smtpd sends the same frame through its
 * event-driven attr_client instead. RFC 1985 (ETRN) is what the domain
 * forms serve; the syntax of the command itself is smtpd's business.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/priv.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/queue.h"

/* A flush frame is under 300 bytes; this leaves room and bounds it. */
#define FLUSH_FRAME_MAX 1024
#define FLUSH_ERROR_MAX 512

int
flush_domain_valid(const char *domain)
{
	return domain != NULL && domain[0] != '[' && addr_domain_valid(domain);
}

int
flush_frame_put(struct buf *frame, const char *domain, int subdomains)
{
	if (attr_put_str(frame, "request", FLUSH_REQUEST) < 0)
		return -1;
	if (domain == NULL)
		return 0;
	if (attr_put_str(frame, FLUSH_ATTR_DOMAIN, domain) < 0)
		return -1;
	if (subdomains && attr_put_str(frame, FLUSH_ATTR_SUBDOMAINS, "1") < 0)
		return -1;
	return 0;
}

/* Sends a finished frame to qmgr's socket, as mail_owner when root. */
static int
flush_send_frame(const struct buf *frame, int timeout_s, const char **error_r)
{
	static char why[FLUSH_ERROR_MAX];
	char *path = queue_path(QUEUE_PRIVATE, FLUSH_SERVICE);
	int root = geteuid() == 0, ret = -1;
	struct priv_user owner;
	const char *err;

	/* The socket is in a directory tern owns: follow it as mail_owner. */
	if (root && priv_lookup_user(var_mail_owner, &owner) < 0) {
		snprintf(why, sizeof(why), "mail_owner %s does not exist",
		    var_mail_owner);
	} else if (root && priv_become(owner.uid, owner.gid) < 0) {
		snprintf(why, sizeof(why), "cannot switch to %s: %s",
		    var_mail_owner, strerror(errno));
		priv_user_free(&owner);
	} else {
		if (attr_notice_send(path, frame, timeout_s, &err) < 0)
			snprintf(why, sizeof(why), "%s", err);
		else
			ret = 0;
		if (root) {
			priv_user_free(&owner);
			if (priv_restore() < 0)
				msg_fatal("cannot return to root: %m");
		}
	}
	free(path);
	*error_r = why;
	return ret;
}

int
flush_send(
    const char *domain, int subdomains, int timeout_s, const char **error_r)
{
	struct buf frame;
	int ret;

	buf_init(&frame, FLUSH_FRAME_MAX);
	attr_frame_begin(&frame);
	if (flush_frame_put(&frame, domain, subdomains) < 0 ||
	    attr_frame_end(&frame) < 0)
		msg_panic("flush: request does not fit a frame");
	ret = flush_send_frame(&frame, timeout_s, error_r);
	buf_free(&frame);
	return ret;
}

int
flush_send_id(const char *queue_id, int timeout_s, const char **error_r)
{
	struct buf frame;
	int ret;

	if (!queue_id_valid(queue_id))
		msg_panic("flush: bad queue ID");
	buf_init(&frame, FLUSH_FRAME_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", FLUSH_REQUEST) < 0 ||
	    attr_put_str(&frame, FLUSH_ATTR_QUEUE_ID, queue_id) < 0 ||
	    attr_frame_end(&frame) < 0)
		msg_panic("flush: request does not fit a frame");
	ret = flush_send_frame(&frame, timeout_s, error_r);
	buf_free(&frame);
	return ret;
}
