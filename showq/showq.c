/* SPDX-License-Identifier: MIT */
/*
 * showq: lists the mail queue for ternqueue (Postfix's showq(8)), and
 * passes its flush requests on to the queue manager. The queue
 * directories are mail_owner's alone (mode 0700); ternqueue is setgid
 * $setgid_group, which reaches public/showq and nothing else, and this
 * daemon, as mail_owner, does the reading. One request per connection
 * (the protocol is in lib/mail/queue_list.h):
 *
 *   {request=list}                 the queue, one frame per message and
 *                                  per pending recipient, then {type=end}
 *   {request=flush}                every deferred message now
 *   {request=flush_site, domain}   those with a recipient in domain
 *   {request=deliver, queue_id}    that one message now
 *
 * Who asks is the peer's uid from SO_PEERCRED, never anything the client
 * says. root and mail_owner may do everything; other users are looked up
 * by login name in authorized_mailq_users (list) and
 * authorized_flush_users (the three flushes). A user the list does not
 * authorize still gets a listing, of the messages they submitted
 * locally themselves (pickup's uid= attribute, a maildrop file's owner)
 * and of nothing else.
 *
 * Bounds: one request frame (attr.h's limit) read within the deadline;
 * each reply frame written within it, so a client that stops reading is
 * dropped; the walk holds one queue file at a time. No RFCs;
 * see showq(8).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/stream.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/server.h"
#include "map/map.h"

/* A user waits at a terminal: a client that takes longer than this for
 * one frame is gone (or stuck in a pager) and loses its listing. */
#define SHOWQ_CLIENT_TIMEOUT_S 60
#define SHOWQ_MS_PER_SEC       1000
#define SHOWQ_TOKEN_LOG        64
#define SHOWQ_ACL_MAX          16
#define SHOWQ_PW_BUF           16384

/*
 * authorized_mailq_users and authorized_flush_users, Postfix's form: a
 * list of login names and type:table lookup tables; a name is authorized
 * when it is in the list or a table finds it (static:anyone finds
 * everybody). A table that cannot answer authorizes nobody.
 */
struct showq_acl {
	const char *param;
	char **names;
	struct map *maps[SHOWQ_ACL_MAX];
	int nmaps;
	int broken; /* a table would not open: refuse everybody */
};

static struct showq_acl showq_mailq_acl = {.param = "authorized_mailq_users"};
static struct showq_acl showq_flush_acl = {.param = "authorized_flush_users"};
static uid_t showq_owner_uid;

static void
showq_acl_open(struct showq_acl *acl, const char *value)
{
	char **list = config_list(value), *err;
	int i, n = 0;

	for (i = 0; list[i] != NULL; i++)
		;
	acl->names = xcalloc((size_t)i + 1, sizeof(*acl->names));
	for (i = 0; list[i] != NULL; i++) {
		if (strchr(list[i], ':') == NULL) {
			acl->names[n++] = xstrdup(list[i]);
		} else if (acl->nmaps == SHOWQ_ACL_MAX) {
			msg_warn("%s: more than %d tables; refusing every user",
			    acl->param, SHOWQ_ACL_MAX);
			acl->broken = 1;
		} else if ((acl->maps[acl->nmaps] = map_open(list[i], &err)) ==
		           NULL) {
			msg_warn(
			    "%s: %s; refusing every user", acl->param, err);
			free(err);
			acl->broken = 1;
		} else {
			acl->nmaps++;
		}
	}
	config_list_free(list);
}

static void
showq_acl_free(struct showq_acl *acl)
{
	int i;

	for (i = 0; acl->names != NULL && acl->names[i] != NULL; i++)
		free(acl->names[i]);
	free(acl->names);
	acl->names = NULL;
	while (acl->nmaps > 0)
		map_free(&acl->maps[--acl->nmaps]);
}

static int
showq_acl_match(struct showq_acl *acl, const char *login)
{
	const char *value, *err;
	int i, rc;

	if (acl->broken)
		return 0;
	for (i = 0; acl->names[i] != NULL; i++)
		if (strcmp(acl->names[i], login) == 0)
			return 1;
	for (i = 0; i < acl->nmaps; i++) {
		rc = map_lookup(acl->maps[i], login, &value, &err);
		if (rc > 0)
			return 1;
		if (rc < 0) {
			msg_warn("%s: %s: %s", acl->param,
			    map_spec(acl->maps[i]), err);
			return 0;
		}
	}
	return 0;
}

/* 1 when uid may do what acl guards. */
static int
showq_authorized(struct showq_acl *acl, uid_t uid)
{
	char pwbuf[SHOWQ_PW_BUF];
	struct passwd pw, *res = NULL;

	if (uid == 0 || uid == showq_owner_uid)
		return 1;
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
	    res == NULL)
		return 0; /* no login name: no name a list can hold */
	return showq_acl_match(acl, pw.pw_name);
}

struct showq_client {
	struct stream st;
	struct buf frame;
	uid_t uid;
	int all;    /* may see every message */
	int failed; /* a write failed: the client is gone */
	int timeout_ms;
	long long shown;
};

static int
showq_send(struct showq_client *c)
{
	if (attr_frame_end(&c->frame) < 0)
		msg_panic("showq: reply does not fit a frame");
	if (attr_write(&c->st, &c->frame, c->timeout_ms) != STREAM_OK) {
		c->failed = 1;
		return -1;
	}
	return 0;
}

static void
showq_end(struct showq_client *c, const char *status, const char *reason)
{
	attr_frame_begin(&c->frame);
	if (queue_list_put_end(&c->frame, status, reason) < 0)
		msg_panic("showq: reply does not fit a frame");
	(void)showq_send(c);
}

static int
showq_message(const struct queue_list_msg *m, void *ctx)
{
	struct showq_client *c = ctx;
	int i;

	if (!c->all && (m->uid < 0 || (uid_t)m->uid != c->uid))
		return 0;
	attr_frame_begin(&c->frame);
	if (queue_list_put_message(&c->frame, m) < 0)
		msg_panic("showq: reply does not fit a frame");
	if (showq_send(c) < 0)
		return -1;
	for (i = 0; i < m->nrcpt; i++) {
		attr_frame_begin(&c->frame);
		if (queue_list_put_rcpt(&c->frame, &m->rcpts[i]) < 0)
			msg_panic("showq: reply does not fit a frame");
		if (showq_send(c) < 0)
			return -1;
	}
	c->shown++;
	return 0;
}

/*
 * deliver: only a deferred message waits for anything; one in incoming/
 * or active/ is being taken care of already, and one on hold stays there
 * until ternsuper -H releases it.
 */
static void
showq_deliver(struct showq_client *c, const char *id)
{
	static const char *const queues[] = {
	    QUEUE_DEFERRED, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_HOLD};
	const char *err, *where = NULL;
	struct stat st;
	char *path;
	size_t i;

	if (id == NULL || !queue_id_valid(id)) {
		showq_end(c, SHOWQ_NOTFOUND, "not a queue ID");
		return;
	}
	for (i = 0; where == NULL && i < sizeof(queues) / sizeof(queues[0]);
	     i++) {
		path = queue_path(queues[i], id);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			where = queues[i];
		free(path);
	}
	if (where == NULL) {
		showq_end(c, SHOWQ_NOTFOUND, "no such message in the queue");
	} else if (strcmp(where, QUEUE_HOLD) == 0) {
		showq_end(c, SHOWQ_NOTFOUND,
		    "the message is on hold (ternsuper -H releases it)");
	} else if (strcmp(where, QUEUE_DEFERRED) != 0) {
		showq_end(c, SHOWQ_OK, "the message is being delivered");
	} else if (flush_send_id(id, SHOWQ_CLIENT_TIMEOUT_S, &err) < 0) {
		msg_warn("deliver %s: %s", id, err);
		showq_end(c, SHOWQ_UNAVAILABLE, "the queue manager is down");
	} else {
		msg_info("deliver %s: requested by uid %ld", id, (long)c->uid);
		showq_end(c, SHOWQ_OK, "");
	}
}

static void
showq_flush(struct showq_client *c, const char *domain)
{
	const char *err;

	if (flush_send(domain, 0, SHOWQ_CLIENT_TIMEOUT_S, &err) < 0) {
		msg_warn("flush: %s", err);
		showq_end(c, SHOWQ_UNAVAILABLE, "the queue manager is down");
		return;
	}
	msg_info("flush%s%s: requested by uid %ld", domain != NULL ? " " : "",
	    domain != NULL ? domain : "", (long)c->uid);
	showq_end(c, SHOWQ_OK, "");
}

static void
showq_request(struct showq_client *c, const struct attr_list *req)
{
	const char *what = attr_get(req, "request");
	const char *domain = attr_get(req, FLUSH_ATTR_DOMAIN);

	if (what == NULL) {
		showq_end(c, SHOWQ_ERROR, "no request");
		return;
	}
	if (strcmp(what, SHOWQ_REQ_LIST) == 0) {
		c->all = showq_authorized(&showq_mailq_acl, c->uid);
		if (queue_list_walk(showq_owner_uid, showq_message, c) == 0)
			showq_end(c, SHOWQ_OK, "");
		if (c->failed)
			msg_warn("list for uid %ld: the client went away after "
			         "%lld message(s)",
			    (long)c->uid, c->shown);
		return;
	}
	if (strcmp(what, SHOWQ_REQ_FLUSH) != 0 &&
	    strcmp(what, SHOWQ_REQ_FLUSH_SITE) != 0 &&
	    strcmp(what, SHOWQ_REQ_DELIVER) != 0) {
		msg_warn("unknown request '%s' from uid %ld",
		    log_sanitize(what, SHOWQ_TOKEN_LOG), (long)c->uid);
		showq_end(c, SHOWQ_ERROR, "unknown request");
		return;
	}
	if (!showq_authorized(&showq_flush_acl, c->uid)) {
		msg_warn("%s refused: uid %ld is not in authorized_flush_users",
		    what, (long)c->uid);
		showq_end(c, SHOWQ_DENIED, "not in authorized_flush_users");
	} else if (strcmp(what, SHOWQ_REQ_FLUSH) == 0) {
		showq_flush(c, NULL);
	} else if (strcmp(what, SHOWQ_REQ_FLUSH_SITE) == 0) {
		if (domain == NULL || !flush_domain_valid(domain))
			showq_end(c, SHOWQ_ERROR, "bad domain");
		else
			showq_flush(c, domain);
	} else {
		showq_deliver(c, attr_get(req, "queue_id"));
	}
}

static void
showq_serve(int fd, const struct server_listener *l)
{
	struct showq_client c = {0};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct attr_list req;
	const char *err;
	enum stream_result r;

	(void)l;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    len != sizeof(cred)) {
		msg_warn("cannot tell who is asking (SO_PEERCRED): %m");
		return;
	}
	c.uid = cred.uid;
	c.timeout_ms = SHOWQ_CLIENT_TIMEOUT_S * SHOWQ_MS_PER_SEC;
	if (var_ipc_timeout < SHOWQ_CLIENT_TIMEOUT_S)
		c.timeout_ms = (int)(var_ipc_timeout * SHOWQ_MS_PER_SEC);
	stream_init(&c.st, fd);
	buf_init(&c.frame, SHOWQ_REPLY_MAX);
	attr_list_init(&req);
	r = attr_read(&c.st, &req, c.timeout_ms, &err);
	if (r == STREAM_OK)
		showq_request(&c, &req);
	else if (r != STREAM_EOF)
		msg_warn(
		    "reading a request from uid %ld: %s", (long)c.uid, err);
	attr_list_free(&req);
	buf_free(&c.frame);
	stream_free(&c.st);
}

static void
showq_init(struct event_loop *loop)
{
	struct priv_user owner;

	(void)loop;
	if (priv_lookup_user(var_mail_owner, &owner) < 0)
		msg_fatal("mail_owner %s does not exist", var_mail_owner);
	showq_owner_uid = owner.uid;
	priv_user_free(&owner);
	showq_acl_open(&showq_mailq_acl, var_authorized_mailq_users);
	showq_acl_open(&showq_flush_acl, var_authorized_flush_users);
}

static void
showq_shutdown(void)
{
	showq_acl_free(&showq_mailq_acl);
	showq_acl_free(&showq_flush_acl);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "showq",
	    .mode = SERVER_SINGLE,
	    .init = showq_init,
	    .serve = showq_serve,
	    .shutdown = showq_shutdown,
	};

	server_main(argc, argv, &ops);
}
