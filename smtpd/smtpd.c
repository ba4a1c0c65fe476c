/* SPDX-License-Identifier: MIT */
/*
 * smtpd: the SMTP receiver (RFC 5321). One event-driven process serves up
 * to smtpd_max_clients sessions at once, with cleanup in-process and queue
 * file commits in a small thread pool, so no message costs a fork, an
 * extra process hop or a blocked event loop. It never reads a password or
 * a user table itself: auth checks logins, proxymap answers recipient
 * lookups and anvil counts connections per client across processes, all
 * over private/ sockets, so smtpd can run chrooted. The TLS certificate is
 * loaded as root before the privilege drop. This file wires the service
 * into the server skeleton; the protocol lives in smtpd_session.c,
 * smtpd_cmd.c and smtpd_auth.c, the queue file in lib/mail/cleanup.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/auth_proto.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "smtpd.h"

/* Replies of anvil, proxymap and auth are small. */
#define SMTPD_IPC_REPLY_MAX   4096
/* A stuck service must not hold a session for ipc_timeout (an hour). */
#define SMTPD_IPC_TIMEOUT_MS  30000
/* auth delays failures on purpose, and queues checks behind a burst of
 * logins: it is allowed longer, at least AUTH_CLIENT_TIMEOUT_MS. */
#define SMTPD_AUTH_TIMEOUT_MS 120000
#define SMTPD_IPC_IDLE_MS     0
/*
 * ETRN waits for qmgr to take its flush: long enough to ride out a
 * qmgr restart by master, short against an SMTP client's patience; a
 * connection that is rarely used is not kept open to qmgr.
 */
#define SMTPD_QMGR_TIMEOUT_MS 10000
#define SMTPD_QMGR_IDLE_MS    10000
/* Hex of the ticket secret master passes (32 bytes). */

struct commit_pool *smtpd_commit_pool;
char *smtpd_incoming_dir;
char *smtpd_hold_dir;
enum cleanup_bare_policy smtpd_bare_newline;
struct tls_server *smtpd_tls;
struct attr_client *smtpd_anvil, *smtpd_proxymap, *smtpd_auth;
struct attr_client *smtpd_qmgr;

/*
 * As root: the key files are readable by root only. Without a
 * certificate STARTTLS is simply not offered (and the implicit-TLS port
 * refuses connections), with a warning that says why.
 */
static void
smtpd_tls_init(void)
{
	unsigned char secret[TLS_TICKET_SECRET_MAX];
	struct tls_server_config cfg;
	const char *err;

	if (strcmp(var_smtpd_tls_security_level, "none") == 0 &&
	    !var_smtpd_tls_wrappermode)
		return;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cert_file = var_smtpd_tls_cert_file;
	cfg.key_file = var_smtpd_tls_key_file;
	if (*var_smtpd_tls_eccert_file != '\0' &&
	    access(var_smtpd_tls_eccert_file, F_OK) == 0) {
		cfg.eccert_file = var_smtpd_tls_eccert_file;
		cfg.eckey_file = var_smtpd_tls_eckey_file;
	}
	cfg.protocols = var_smtpd_tls_protocols;
	cfg.ciphers = var_smtpd_tls_ciphers;
	cfg.ciphersuites = var_smtpd_tls_ciphersuites;
	cfg.ticket_secret = secret;
	cfg.ticket_secret_len =
	    tls_ticket_secret_from_env(secret, sizeof(secret));
	cfg.ticket_lifetime = (unsigned)var_smtpd_tls_session_cache_timeout;
	if (tls_server_create(&cfg, &smtpd_tls, &err) < 0) {
		msg_warn("TLS is not available: %s", err);
		if (strcmp(var_smtpd_tls_security_level, "encrypt") == 0)
			msg_warn("smtpd_tls_security_level = encrypt without "
			         "a usable certificate: no mail can be "
			         "received here");
		smtpd_tls = NULL;
	}
	explicit_bzero(secret, sizeof(secret));
}

/* Time zone data, key files and tables live outside a chroot: load them
 * first. */
static void
smtpd_pre_drop(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	tzset();
	smtpd_tls_init();
	/* Tables, like keys, may lie outside a chroot. */
	smtpd_check_init();
}

static struct attr_client *
smtpd_client(struct event_loop *loop, const char *service, uint64_t timeout,
    uint64_t idle)
{
	char *path = queue_path(QUEUE_PRIVATE, service);
	struct attr_client *c = attr_client_create(
	    loop, path, 0, timeout, SMTPD_IPC_REPLY_MAX, idle);

	free(path);
	return c;
}

/* smtpd_forbid_bare_newline; "yes" is Postfix's word for reject. */
static void
smtpd_bare_newline_init(void)
{
	const char *v = var_smtpd_forbid_bare_newline;

	if (strcmp(v, "normalize") == 0)
		smtpd_bare_newline = CLEANUP_BARE_NORMALIZE;
	else if (strcmp(v, "reject") == 0 || strcmp(v, "yes") == 0)
		smtpd_bare_newline = CLEANUP_BARE_REJECT;
	else if (strcmp(v, "no") == 0)
		smtpd_bare_newline = CLEANUP_BARE_KEEP;
	else
		msg_fatal("smtpd_forbid_bare_newline: bad value '%s' "
		          "(normalize, reject or no)",
		    v);
}

static void
smtpd_init(struct event_loop *loop)
{
	smtpd_bare_newline_init();
	smtpd_commit_pool =
	    commit_pool_create(loop, (int)var_smtpd_commit_threads);
	smtpd_incoming_dir = queue_path(QUEUE_INCOMING, NULL);
	smtpd_hold_dir = queue_path(QUEUE_HOLD, NULL);
	cleanup_notify_init(loop);
	smtpd_anvil = smtpd_client(
	    loop, "anvil", SMTPD_IPC_TIMEOUT_MS, SMTPD_IPC_IDLE_MS);
	smtpd_proxymap = smtpd_client(
	    loop, "proxymap", SMTPD_IPC_TIMEOUT_MS, SMTPD_IPC_IDLE_MS);
	smtpd_auth = smtpd_client(loop, "auth",
	    AUTH_CLIENT_TIMEOUT_MS(var_auth_failure_delay_max) >
	            SMTPD_AUTH_TIMEOUT_MS
	        ? AUTH_CLIENT_TIMEOUT_MS(var_auth_failure_delay_max)
	        : SMTPD_AUTH_TIMEOUT_MS,
	    SMTPD_IPC_IDLE_MS);
	smtpd_qmgr = smtpd_client(
	    loop, FLUSH_SERVICE, SMTPD_QMGR_TIMEOUT_MS, SMTPD_QMGR_IDLE_MS);
	smtpd_check_dns_init(loop);
}

static void
smtpd_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	smtpd_session_create(fd, l, loop);
}

/* Open tmp/ files go; commits already running finish (their clients get
 * the DATA reply, qmgr its notice) before the pool is gone. */
static void
smtpd_shutdown(void)
{
	smtpd_session_close_all();
	commit_pool_free(&smtpd_commit_pool);
	cleanup_notify_shutdown();
	attr_client_free(&smtpd_anvil);
	attr_client_free(&smtpd_proxymap);
	attr_client_free(&smtpd_auth);
	attr_client_free(&smtpd_qmgr);
	tls_server_free(&smtpd_tls);
	smtpd_check_shutdown();
	free(smtpd_incoming_dir);
	smtpd_incoming_dir = NULL;
	free(smtpd_hold_dir);
	smtpd_hold_dir = NULL;
}

/* smtpd -t (tern check): what smtpd_init would refuse, said now. */
static void
smtpd_config_check(void)
{
	smtpd_bare_newline_init();
	smtpd_check_init();
	smtpd_check_shutdown();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "smtpd",
	    .mode = SERVER_MULTI,
	    .pre_drop = smtpd_pre_drop,
	    .init = smtpd_init,
	    .accept = smtpd_accept,
	    .shutdown = smtpd_shutdown,
	    .check = smtpd_config_check,
	};

	server_main(argc, argv, &ops);
}
