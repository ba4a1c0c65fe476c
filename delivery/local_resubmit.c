/* SPDX-License-Identifier: MIT */
/*
 * Address targets of an alias or .forward file go back into the queue as
 * one new message per expanded recipient (Postfix's local/forward.c,
 * which hands them to cleanup): the original envelope sender and DSN
 * envelope attributes, every address of the expansion with the ORCPT of
 * the original recipient (its own, or rfc822;ADDRESS when it had none)
 * and its NOTIFY (RFC 3461 6.2.7: what an alias expansion passes on),
 * and the content with a Delivered-To header for the original recipient
 * prepended. The file is written as $mail_owner through the queue file
 * writer, committed into incoming/, and qmgr is told with a "new"
 * notice (it also scans incoming/ every few seconds, so a lost notice
 * only delays the mail).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "local.h"

#define LOCAL_QMGR_SERVICE   "qmgr"
/* The notice is a courtesy: never wait long for qmgr to take it. */
#define LOCAL_NOTIFY_TIMEOUT 1
#define LOCAL_NOTIFY_MAX     256
#define LOCAL_COPY_CHUNK     (64 * 1024)

/* Envelope attributes a forwarded copy keeps (DSN and body type). */
static const char *const local_keep_attrs[] = {
    "envid", "ret", "body", "smtputf8", NULL};

static uid_t owner_uid;
static gid_t owner_gid;

int
local_resubmit_init(void)
{
	struct priv_user u;

	if (!local_root)
		return 0;
	if (priv_lookup_user(var_mail_owner, &u) < 0)
		return -1;
	owner_uid = u.uid;
	owner_gid = u.gid;
	priv_user_free(&u);
	return 0;
}

/* {request=new, queue_id} to private/qmgr, as cleanup_notify_qmgr. */
static void
local_notify_qmgr(const char *id)
{
	char *path = queue_path(QUEUE_PRIVATE, LOCAL_QMGR_SERVICE);
	const char *err;
	struct buf frame;

	buf_init(&frame, LOCAL_NOTIFY_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request", "new") < 0 ||
	    attr_put_str(&frame, "queue_id", id) < 0 ||
	    attr_frame_end(&frame) < 0)
		msg_panic("qmgr notice: frame too small");
	if (attr_notice_send(path, &frame, LOCAL_NOTIFY_TIMEOUT, &err) < 0)
		msg_debug("cannot tell qmgr about %s: %s", id, err);
	buf_free(&frame);
	free(path);
}

/* Copies the content (CRLF endings already) behind the new header. */
static int
local_copy_content(const struct qfile *q, struct qfile_writer *w)
{
	char *chunk = xmalloc(LOCAL_COPY_CHUNK);
	uint64_t done = 0;
	size_t want;
	int ret = 0;

	while (done < q->content_len && ret == 0) {
		want = q->content_len - done < LOCAL_COPY_CHUNK
		           ? (size_t)(q->content_len - done)
		           : LOCAL_COPY_CHUNK;
		if (file_pread_all(
		        q->fd, chunk, want, q->content_off + (off_t)done) < 0)
			ret = -1;
		else
			qfile_content_write(w, chunk, want);
		done += want;
	}
	free(chunk);
	return ret;
}

/* Writes and commits the new message; NULL or why not. */
static const char *
local_resubmit_write(
    struct local_rcpt *lr, struct qfile_writer *w, int *created_r)
{
	const struct qfile *q = lr->msg->q;
	const char *err = NULL, *v;
	char *orcpt, *hdr;
	int i;

	if (qfile_create(w, &err) < 0)
		return err;
	*created_r = 1;
	qfile_put_sender(w, q->sender);
	for (i = 0; local_keep_attrs[i] != NULL; i++)
		if ((v = qfile_attr(q, local_keep_attrs[i])) != NULL)
			qfile_put_attr(w, local_keep_attrs[i], v);
	orcpt = lr->rcpt->orcpt != NULL && *lr->rcpt->orcpt != '\0'
	            ? xstrdup(lr->rcpt->orcpt)
	            : xasprintf("rfc822;%s", lr->rcpt->addr);
	for (i = 0; i < lr->nfwd; i++)
		qfile_put_rcpt(w, lr->fwd[i], orcpt, lr->rcpt->notify);
	free(orcpt);
	qfile_content_begin(w);
	hdr = xasprintf("Delivered-To: %s\r\n", lr->addr);
	qfile_content_write(w, hdr, strlen(hdr));
	free(hdr);
	if (local_copy_content(q, w) < 0)
		return "read queue file: I/O error";
	if (qfile_finish(w, &err) < 0 ||
	    qfile_commit(w, QUEUE_INCOMING, &err) < 0)
		return err;
	return NULL;
}

void
local_resubmit(struct local_rcpt *lr, struct local_result *res)
{
	struct qfile_writer w;
	const char *why;
	int created = 0;

	memset(res, 0, sizeof(*res));
	if (local_root && priv_become(owner_uid, owner_gid) < 0) {
		local_set(res, "defer", "4.3.0", "cannot switch to uid %ld: %s",
		    (long)owner_uid, strerror(errno));
		if (priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
		return;
	}
	why = local_resubmit_write(lr, &w, &created);
	if (why != NULL && created && w.tmp_path == NULL) {
		/* Renamed into incoming/: only its durability is in doubt,
		 * and it will be delivered; deferring would send it twice. */
		msg_warn("%s: %s", lr->msg->id, why);
		why = NULL;
	}
	if (why != NULL)
		local_set(res, "defer", "4.3.0", "cannot forward: %s", why);
	else {
		local_set(res, "sent", "2.0.0", "forwarded as %s", w.id);
		local_notify_qmgr(w.id);
	}
	/* Unlinks an uncommitted tmp/ file: as mail_owner, like its writer. */
	if (created)
		qfile_writer_free(&w);
	if (local_root && priv_restore() < 0)
		msg_fatal("cannot return to root privileges: %m");
}
