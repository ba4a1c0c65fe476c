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
#include "map/map.h"

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

/* alias_maps, opened as root before the privileges go (as local's). */
#define PROXYMAP_ALIAS_MAPS_MAX 16
static struct map *alias_maps[PROXYMAP_ALIAS_MAPS_MAX];
static int alias_nmaps;
/* A table that would not open: local recipients get a temporary error. */
static char *alias_broken;

/* 1 found in alias_maps, 0 not, -1 a table could not answer. */
static int
lookup_alias(const char *key, const char **text_r)
{
	const char *value;
	int i, rc;

	if (alias_broken != NULL) {
		*text_r = alias_broken;
		return -1;
	}
	for (i = 0; i < alias_nmaps; i++) {
		/* One stat: mail sent right after newaliases sees the new
		 * table, as local does. */
		map_recheck_now(alias_maps[i]);
		rc = map_lookup(alias_maps[i], key, &value, text_r);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * A local recipient exists when local delivery would take it: an alias
 * (with or without its address extension), or a system user named by
 * the part before recipient_delimiter.
 */
static enum lookup_status
lookup_local(const char *full, const char **text_r)
{
	size_t n = *var_recipient_delimiter != '\0'
	               ? strcspn(full, var_recipient_delimiter)
	               : strlen(full);
	struct passwd *pw;
	char *key;
	int rc;

	rc = lookup_alias(full, text_r);
	key = xstrndup(full, n);
	if (rc == 0 && n < strlen(full) && n > 0)
		rc = lookup_alias(key, text_r);
	if (rc != 0) {
		free(key);
		if (rc > 0)
			return LOOKUP_FOUND;
		msg_warn("alias lookup of %s: %s",
		    log_sanitize(full, ADDR_LOCAL_MAX), *text_r);
		return LOOKUP_TEMPFAIL;
	}

	errno = 0;
	pw = n > 0 ? getpwnam(key) : NULL;
	if (pw != NULL) {
		free(key);
		return LOOKUP_FOUND;
	}
	if (proxymap_no_such_user(errno)) {
		free(key);
		return LOOKUP_NOTFOUND;
	}
	*text_r = strerror(errno);
	msg_warn("getpwnam %s: %s", log_sanitize(key, ADDR_LOCAL_MAX), *text_r);
	free(key);
	return LOOKUP_TEMPFAIL;
}

static enum lookup_status
lookup_virtual(const char *key, const char **text_r)
{
	int found = userdb_list_contains(var_virtual_mailbox_list, key, text_r);
	char *base;

	/* user+ext@domain is user@domain's mailbox (local delivers it so). */
	if (found == 0 && (base = addr_strip_extension(key)) != NULL) {
		found = userdb_list_contains(var_virtual_mailbox_list, base,
		    text_r);
		free(base);
	}

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
proxymap_pre_drop(int argc, char **argv)
{
	char **list = config_list(var_alias_maps);
	char *err;
	int i;

	(void)argc;
	(void)argv;
	for (i = 0; list[i] != NULL; i++) {
		if (alias_nmaps == PROXYMAP_ALIAS_MAPS_MAX)
			msg_fatal("alias_maps: more than %d tables",
			    PROXYMAP_ALIAS_MAPS_MAX);
		if ((alias_maps[alias_nmaps] = map_open(list[i], &err)) == NULL) {
			msg_warn("alias_maps: %s", err);
			free(alias_broken);
			alias_broken = err;
		} else
			alias_nmaps++;
	}
	config_list_free(list);
}

static void
proxymap_shutdown(void)
{
	attr_server_close_all();
	while (alias_nmaps > 0)
		map_free(&alias_maps[--alias_nmaps]);
	free(alias_broken);
	alias_broken = NULL;
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "proxymap",
	    .mode = SERVER_MULTI,
	    .pre_drop = proxymap_pre_drop,
	    .accept = proxymap_accept,
	    .shutdown = proxymap_shutdown,
	};

	server_main(argc, argv, &ops);
}
