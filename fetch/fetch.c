/* SPDX-License-Identifier: MIT */
/*
 * fetch: collects mail from remote POP3 and IMAP accounts (the ISP's mailbox of a
 * site that is not always online) into the queue, every $fetch_interval
 * and when `tern fetch` asks over private/fetch. One process (services
 * .conf maxproc 1), unprivileged: the accounts file, which holds
 * passwords, is read as root before the drop (fetch_account.c); the
 * per-account journals and the queue are mail_owner's. Requests:
 *
 *   {request=fetch [, account=NAME] [, etrn=1]}
 *     -> {status=ok|error, summary=TEXT}
 *
 * where TEXT has one line per account ("NAME: N queued, ...") and, with
 * etrn=1 (`tern fetch now`), first one line per ETRN sent. No RFCs
 * here; see fetch_pop3.c, fetch_imap.c and fetch_etrn.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/priv.h"
#include "mail/attr.h"
#include "mail/cleanup.h"
#include "mail/params.h"
#include "mail/server.h"
#include "tls/tls.h"
#include "fetch.h"

#define FETCH_MS_PER_SEC 1000
#define FETCH_REQUEST_MAX 4096
#define FETCH_SUMMARY_MAX (256 * 1024)

static struct fetch_accounts fetch_accts;
static struct fetch_state *fetch_states; /* per account; NULL path: none */
static char *fetch_load_error;
static struct event_timer *fetch_timer;

void
fetch_printf(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(out, fmt, ap) < 0)
		msg_warn("a summary is over %d bytes: cut", FETCH_SUMMARY_MAX);
	va_end(ap);
}

struct fetch_state *
fetch_account_state(const struct fetch_account *a)
{
	size_t i;

	for (i = 0; i < fetch_accts.n; i++)
		if (fetch_accts.v[i] == a)
			return fetch_states[i].path != NULL ? &fetch_states[i]
			                                    : NULL;
	return NULL;
}

static void
fetch_one(struct fetch_account *a, struct buf *out)
{
	struct fetch_state *state = fetch_account_state(a);
	struct fetch_summary sum;
	struct fetch_conn conn;
	const char *err;

	memset(&sum, 0, sizeof(sum));
	if (state == NULL)
		fetch_fail(&sum, "%s", "its state file cannot be used");
	else if (fetch_conn_open(&conn, a->host, a->port, &err) < 0)
		fetch_fail(&sum, "%s", err);
	else if (a->proto == FETCH_IMAP)
		fetch_imap(a, state, &conn, &sum);
	else
		fetch_pop3(a, state, &conn, &sum);
	msg_info("account %s: %d listed, %d queued, %d skipped, %d deleted, "
		 "%d left, %d refused%s%s",
	    a->name, sum.listed, sum.queued, sum.skipped, sum.deleted, sum.left,
	    sum.refused, sum.error[0] != '\0' ? "; error: " : "", sum.error);
	fetch_printf(out,
	    "%s: %d queued, %d skipped, %d deleted, %d left, %d refused, "
	    "%d listed%s%s\n",
	    a->name, sum.queued, sum.skipped, sum.deleted, sum.left,
	    sum.refused, sum.listed, sum.error[0] != '\0' ? "; error: " : "",
	    sum.error);
}

/* Collects account name (every account when NULL); 0, or -1 when there
 * is no such account. */
static int
fetch_run(const char *name, struct buf *out)
{
	size_t i;
	int found = 0;

	if (fetch_load_error != NULL) {
		fetch_printf(out, "error: %s\n", fetch_load_error);
		return -1;
	}
	for (i = 0; i < fetch_accts.n; i++) {
		if (name != NULL && strcmp(fetch_accts.v[i]->name, name) != 0)
			continue;
		found = 1;
		fetch_one(fetch_accts.v[i], out);
	}
	if (!found) {
		if (name != NULL)
			fetch_printf(out, "error: no account %s in %s\n",
			    log_sanitize(name, FETCH_NAME_MAX), var_fetch_accounts);
		else
			fetch_printf(out, "no accounts in %s\n",
			    var_fetch_accounts);
		return name != NULL ? -1 : 0;
	}
	return 0;
}

static void
fetch_poll(struct event_timer *t, void *ctx)
{
	struct buf out;

	(void)ctx;
	buf_init(&out, FETCH_SUMMARY_MAX);
	(void)fetch_run(NULL, &out);
	buf_free(&out);
	event_timer_reset(t, (uint64_t)var_fetch_interval * FETCH_MS_PER_SEC);
}

static void
fetch_serve(int fd, const struct server_listener *l)
{
	int timeout_ms = (int)(var_ipc_timeout * FETCH_MS_PER_SEC);
	struct attr_list req;
	struct stream st;
	struct buf out, frame;
	const char *err, *v, *name;
	int ret;

	(void)l;
	stream_init(&st, fd);
	attr_list_init(&req);
	buf_init(&out, FETCH_SUMMARY_MAX);
	buf_init(&frame, ATTR_HEADER_LEN + FETCH_SUMMARY_MAX + FETCH_REQUEST_MAX);
	if (attr_read(&st, &req, timeout_ms, &err) != STREAM_OK) {
		msg_warn("reading a request: %s", err != NULL ? err : "EOF");
		goto out;
	}
	v = attr_get(&req, "request");
	if (v == NULL || strcmp(v, "fetch") != 0) {
		msg_warn("unknown request");
		goto out;
	}
	name = attr_get(&req, "account");
	if (name != NULL && *name == '\0')
		name = NULL;
	server_hold_signals(1);
	v = attr_get(&req, "etrn");
	if (v != NULL && strcmp(v, "1") == 0)
		fetch_etrn(&out);
	ret = fetch_run(name, &out);
	server_hold_signals(0);
	attr_frame_begin(&frame);
	if (attr_reply_begin(&frame, &req) < 0 ||
	    attr_put_str(&frame, "status", ret < 0 ? "error" : "ok") < 0 ||
	    attr_put_str(&frame, "summary", buf_cstr(&out)) < 0 ||
	    attr_frame_end(&frame) < 0)
		msg_warn("the summary does not fit a reply");
	else if (attr_write(&st, &frame, timeout_ms) != STREAM_OK)
		msg_warn("cannot send the summary: %m");
out:
	stream_free(&st);
	attr_list_free(&req);
	buf_free(&out);
	buf_free(&frame);
}

/*
 * The journals' directory sits in the queue directory, which is root's:
 * root makes it for mail_owner (nobody else can rename anything in a
 * root-owned directory, so this follows no path tern controls).
 */
static void
fetch_state_dir_init(void)
{
	struct priv_user owner;
	const char *err;

	if (geteuid() != 0)
		return;
	if (priv_lookup_user(var_mail_owner, &owner) < 0)
		msg_fatal("mail_owner %s does not exist", var_mail_owner);
	if (file_ensure_dir(var_fetch_state_directory, 0700, owner.uid,
	        owner.gid, NULL, &err) < 0)
		msg_warn("%s", err);
	priv_user_free(&owner);
}

/* As root: the passwords are read before the drop. */
static void
fetch_pre_drop(int argc, char **argv)
{
	char *err = NULL;

	(void)argc;
	(void)argv;
	if (fetch_accounts_load(var_fetch_accounts, &fetch_accts, &err) < 0) {
		msg_warn("fetch_accounts %s", err);
		fetch_load_error = err;
	}
	fetch_state_dir_init();
}

static void
fetch_init(struct event_loop *loop)
{
	char *err = NULL;
	const char *nerr;
	size_t i;

	if (fetch_inject_init(&err) < 0)
		msg_fatal("%s", err);
	if (fetch_net_init(&nerr) < 0)
		msg_fatal("dns_servers: %s", nerr);
	cleanup_notify_init(loop);
	/* Settle what a crash left pending at once: fetch_state.c's rule
	 * holds only for a few seconds after the crash. */
	fetch_states = xcalloc(fetch_accts.n + 1, sizeof(*fetch_states));
	for (i = 0; i < fetch_accts.n; i++) {
		if (fetch_state_open(&fetch_states[i], fetch_accts.v[i]->name,
		        &err) < 0) {
			msg_warn("account %s: %s: it is not collected",
			    fetch_accts.v[i]->name, err);
			free(err);
			fetch_state_close(&fetch_states[i]);
		}
	}
	if (fetch_accts.n > 0 && var_fetch_interval > 0)
		fetch_timer = event_timer_add(loop,
		    (uint64_t)var_fetch_interval * FETCH_MS_PER_SEC, fetch_poll,
		    NULL);
}

static void
fetch_shutdown(void)
{
	size_t i;

	event_timer_del(&fetch_timer);
	for (i = 0; i < fetch_accts.n; i++) {
		fetch_state_close(&fetch_states[i]);
		tls_client_free(&fetch_accts.v[i]->tls);
	}
	free(fetch_states);
	fetch_accounts_free(&fetch_accts);
	free(fetch_load_error);
	cleanup_notify_shutdown();
	fetch_inject_free();
	fetch_net_shutdown();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "fetch",
	    .mode = SERVER_SINGLE,
	    .pre_drop = fetch_pre_drop,
	    .init = fetch_init,
	    .serve = fetch_serve,
	    .shutdown = fetch_shutdown,
	};

	server_main(argc, argv, &ops);
}
