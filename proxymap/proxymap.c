/* SPDX-License-Identifier: MIT */
/*
 * proxymap: answers lookups for processes that must not do them
 * themselves (Postfix's proxymap(8) idea). smtpd asks here whether a
 * recipient exists instead of calling getpwnam() inside its event loop,
 * where a slow NSS backend would stall every session of the process; and
 * because nothing outside the queue directory is read by smtpd any more,
 * smtpd can run chrooted. One request per frame:
 *
 *   {request=lookup, table, key} -> {status=found|notfound|tempfail, text}
 *
 * Tables (fixed names; the lookup tables of lib/map plug in here later):
 *   local_recipient   key: a folded local part; a system account
 *   virtual_mailbox   key: a folded address; $virtual_mailbox_list
 * Every request is answered in order on its connection; a slow lookup
 * holds up only the smtpd processes connected to this proxymap process.
 * No RFCs; see proxymap(8).
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/attr_server.h"
#include "mail/params.h"
#include "mail/server.h"
#include "mail/userdb.h"

#define PROXYMAP_REQUEST_MAX 4096
#define PROXYMAP_CONNS_MAX   1024
#define PROXYMAP_TOKEN_LOG   64
#define PROXYMAP_MS_PER_SEC  1000

enum lookup_status {
	LOOKUP_FOUND,
	LOOKUP_NOTFOUND,
	LOOKUP_TEMPFAIL
};

static const char *const status_names[] = {
    [LOOKUP_FOUND] = "found",
    [LOOKUP_NOTFOUND] = "notfound",
    [LOOKUP_TEMPFAIL] = "tempfail",
};

/* getpwnam() tells "no such user" by NULL with one of these errnos. */
static int
proxymap_no_such_user(int err)
{
	return err == 0 || err == ENOENT || err == ESRCH || err == EBADF ||
	       err == EPERM;
}

static enum lookup_status
lookup_local(const char *key, const char **text_r)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(key);
	if (pw != NULL)
		return LOOKUP_FOUND;
	if (proxymap_no_such_user(errno))
		return LOOKUP_NOTFOUND;
	*text_r = strerror(errno);
	msg_warn("getpwnam %s: %s", log_sanitize(key, ADDR_LOCAL_MAX), *text_r);
	return LOOKUP_TEMPFAIL;
}

static enum lookup_status
lookup_virtual(const char *key, const char **text_r)
{
	int found = userdb_list_contains(var_virtual_mailbox_list, key, text_r);

	if (found < 0) {
		msg_warn("%s", *text_r);
		return LOOKUP_TEMPFAIL;
	}
	return found ? LOOKUP_FOUND : LOOKUP_NOTFOUND;
}

static int
proxymap_request(struct attr_conn *conn, const struct attr_list *req)
{
	const char *what = attr_get(req, "request");
	const char *table = attr_get(req, "table");
	const char *key = attr_get(req, "key");
	const char *text = "";
	enum lookup_status st;
	struct buf *reply;

	if (what == NULL || strcmp(what, "lookup") != 0 || table == NULL ||
	    key == NULL) {
		msg_warn("malformed request");
		return -1;
	}
	if (strcmp(table, "local_recipient") == 0)
		st = lookup_local(key, &text);
	else if (strcmp(table, "virtual_mailbox") == 0)
		st = lookup_virtual(key, &text);
	else {
		msg_warn("unknown table '%s'",
		    log_sanitize(table, PROXYMAP_TOKEN_LOG));
		return -1;
	}
	reply = attr_conn_reply_begin(conn, req);
	if (attr_put_str(reply, "status", status_names[st]) < 0 ||
	    attr_put_str(reply, "text", text) < 0)
		msg_panic("proxymap: reply does not fit");
	attr_conn_reply_end(conn);
	return 0;
}

static const struct attr_server_ops proxymap_ops = {
    .request = proxymap_request,
};

static void
proxymap_accept(
    int fd, const struct server_listener *l, struct event_loop *loop)
{
	const struct attr_server_limits lim = {
	    .request_max = PROXYMAP_REQUEST_MAX,
	    .conns_max = PROXYMAP_CONNS_MAX,
	    .idle_ms = (uint64_t)var_ipc_timeout * PROXYMAP_MS_PER_SEC,
	};

	(void)l;
	attr_server_accept(fd, loop, &proxymap_ops, &lim);
}

static void
proxymap_shutdown(void)
{
	attr_server_close_all();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "proxymap",
	    .mode = SERVER_MULTI,
	    .accept = proxymap_accept,
	    .shutdown = proxymap_shutdown,
	};

	server_main(argc, argv, &ops);
}
