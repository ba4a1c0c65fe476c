/* SPDX-License-Identifier: MIT */
/*
 * smtpd internals: one struct smtpd_session per SMTP connection, all
 * driven by one event loop; smtpd_session.c owns I/O, timers and the
 * DATA/commit path, smtpd_cmd.c the command table and transaction rules.
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <netinet/in.h>
#include "base/buf.h"
#include "base/commit.h"
#include "base/event.h"
#include "base/stream.h"
#include "mail/server.h"
#include "cleanup.h"

/* Protocol state (RFC 5321 4.1.4 command order); see smtpd_set_state(). */
enum smtpd_state {
	SMTPD_STATE_CONNECTED, /* greeting sent, no HELO/EHLO yet */
	SMTPD_STATE_HELO,      /* greeted, no transaction */
	SMTPD_STATE_MAIL,      /* MAIL accepted; RCPTs collect */
	SMTPD_STATE_DATA,      /* reading the message content */
	SMTPD_STATE_COMMIT,    /* content complete, input paused until the
				 * queue file is durable */
	SMTPD_STATE_QUIT,      /* last reply queued; close once flushed */
};

/* Per-command counters for the disconnect log line (Postfix style). */
#define SMTPD_CMD_COUNTERS 16

#define SMTPD_ADDR_SIZE     INET6_ADDRSTRLEN
/* "IPv6:" + address, RFC 5321 4.1.3 address literal form. */
#define SMTPD_RFC_ADDR_SIZE (INET6_ADDRSTRLEN + sizeof("IPv6:"))

struct smtpd_session {
	struct event_loop *loop;
	int fd;
	struct event_fd *ev;
	struct event_timer *timer;
	struct stream in;
	struct buf line; /* current command line */
	struct buf out;  /* replies not yet written */
	enum smtpd_state state;

	char addr[SMTPD_ADDR_SIZE];         /* client address, for logs */
	char rfc_addr[SMTPD_RFC_ADDR_SIZE]; /* same for Received: */
	char *name; /* client name (the address: no DNS yet) */
	char *helo;
	int esmtp; /* EHLO (not HELO) was used */

	/* The transaction (RFC 5321 3.3), reset after DATA, RSET, HELO. */
	char *sender;
	char **rcpts;
	int nrcpt, rcpt_alloc;
	int rcpt_tried;   /* RCPT commands, accepted or not */
	const char *body; /* "7BIT", "8BITMIME" or NULL */
	struct cleanup cleanup;
	char *commit_path; /* incoming/ID while the commit runs */

	const char *last_cmd; /* for "timeout after X" log lines */
	int errors;           /* toward smtpd_hard_error_limit */
	unsigned cmd_ok[SMTPD_CMD_COUNTERS], cmd_total[SMTPD_CMD_COUNTERS];
	int input_blocked; /* input waits for replies to drain */
	int close_now;     /* tear down when back in the event callback */
	int dead;          /* connection gone; freed when the commit ends */
	struct smtpd_session *prev, *next; /* every session of the process */
};

/* smtpd.c */
extern struct commit_pool *smtpd_commit_pool;
extern char *smtpd_incoming_dir; /* $queue_directory/incoming */

/* smtpd_session.c */
void smtpd_session_create(
    int fd, const struct server_listener *l, struct event_loop *loop);
int smtpd_session_count(void);
/*
 * Shutdown: every connection gets 421 and is dropped, open tmp/ files are
 * removed; one whose commit runs is ended when the commit reports.
 */
void smtpd_session_close_all(void);
/* The one state setter; traces "old -> new" at debug level. */
void smtpd_set_state(struct smtpd_session *s, enum smtpd_state state);
/* Queues one reply line (CRLF added); overflow closes the session. */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    MTA_PRINTF(2, 3);
/*
 * Replies and logs "ID|NOQUEUE: reject: CMD from host[addr]: REPLY;
 * from=<s> to=<r> proto=P helo=<h>" (rcpt may be NULL).
 */
void smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt,
    const char *fmt, ...) MTA_PRINTF(4, 5);

/* smtpd_cmd.c */
/* Runs one command line (modified in place); counts it and its errors. */
void smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len);
/* The DATA command that returned pending ended with its 250. */
void smtpd_cmd_data_ok(struct smtpd_session *s);
/* Forgets sender, recipients and any queue file (RFC 5321 4.1.1.5). */
void smtpd_cmd_reset(struct smtpd_session *s);
/* Appends " ehlo=1 mail=1 rcpt=0/1 ..." for the disconnect line. */
void smtpd_cmd_counts(const struct smtpd_session *s, struct buf *out);

#endif
