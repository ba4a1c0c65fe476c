/* SPDX-License-Identifier: MIT */
/*
 * smtpd internals: one struct smtpd_session per SMTP connection, all
 * driven by one event loop. smtpd.c owns the process (listeners, the
 * clients of other services, TLS); smtpd_session.c the I/O, deadlines,
 * message content and commit; smtpd_cmd.c the command table and the
 * transaction rules; smtpd_auth.c SMTP AUTH.
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <netinet/in.h>
#include <stdint.h>
#include "base/buf.h"
#include "base/commit.h"
#include "base/event.h"
#include "base/stream.h"
#include "dns/dns.h"
#include "mail/attr_client.h"
#include "mail/resolve.h"
#include "mail/sasl.h"
#include "mail/server.h"
#include "mail/smtp_param.h"
#include "tls/tls.h"
#include "mail/cleanup.h"

/* Protocol state (RFC 5321 4.1.4 command order); see smtpd_set_state(). */
enum smtpd_state {
	SMTPD_STATE_START,     /* connected, the client's count is checked */
	SMTPD_STATE_PREGREET,  /* greeting held back: talking now is early */
	SMTPD_STATE_CONNECTED, /* greeting sent, no HELO/EHLO yet */
	SMTPD_STATE_HELO,      /* greeted, no transaction */
	SMTPD_STATE_MAIL,      /* MAIL accepted; RCPTs collect */
	SMTPD_STATE_DATA,      /* reading DATA content */
	SMTPD_STATE_BDAT,      /* reading a BDAT chunk (RFC 3030) */
	SMTPD_STATE_COMMIT,    /* content complete, input paused until the
				 * queue file is durable */
	SMTPD_STATE_QUIT,      /* last reply queued; close once flushed */
};

/* The service name under which anvil counts smtpd's clients. */
#define SMTPD_ANVIL_SERVICE "smtpd"

/* Per-command counters for the disconnect log line (Postfix style). */
#define SMTPD_CMD_COUNTERS 20

#define SMTPD_ADDR_SIZE     INET6_ADDRSTRLEN
/* "IPv6:" + address, RFC 5321 4.1.3 address literal form. */
#define SMTPD_RFC_ADDR_SIZE (INET6_ADDRSTRLEN + sizeof("IPv6:"))
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
#define SMTPD_TLS_TEXT_SIZE 160

struct smtpd_rcpt {
	char *addr;
	char *orcpt; /* DSN ORCPT "type;address", or NULL */
	unsigned notify;
};

struct smtpd_session {
	struct event_loop *loop;
	int fd;
	int is_inet;
	struct event_fd *ev;
	struct event_timer *timer;
	struct stream st;
	struct buf line; /* current command line */
	enum smtpd_state state;

	char addr[SMTPD_ADDR_SIZE];         /* client address, for logs */
	char rfc_addr[SMTPD_RFC_ADDR_SIZE]; /* same for Received: */
	char *name; /* client name (the address: no DNS yet) */
	char *helo;
	int esmtp;    /* EHLO (not HELO) was used */
	unsigned ext; /* SMTP_EXT_* offered in the last EHLO */

	/* TLS: STARTTLS answered, the session goes under TLS once the
	 * 220 is out; then active. */
	int tls_starting;
	int tls_active;
	char tls_text[SMTPD_TLS_TEXT_SIZE];

	/* SMTP AUTH (RFC 4954) */
	char *auth_user;     /* the login, once authenticated */
	struct sasl *sasl;   /* an exchange in progress */
	char *sasl_mech;
	int auth_failures;

	/* The transaction (RFC 5321 3.3), reset after DATA, RSET, HELO. */
	char *sender;
	struct smtp_mail_params mail;
	struct smtpd_rcpt *rcpts;
	int nrcpt, rcpt_alloc;
	int rcpt_tried;    /* RCPT commands, accepted or not */
	char *pending_rcpt; /* RCPT waiting for its lookup */
	struct resolve_result pending_route; /* where pending_rcpt goes */
	const char *pending_table; /* its table, for the 550 text */
	struct smtp_rcpt_params pending_params;
	struct cleanup cleanup;
	char *commit_path; /* incoming/ID (or hold/ID) while the commit runs */
	int bdat;	   /* this transaction's content comes in BDAT */
	uint64_t bdat_left; /* bytes of the current chunk still to come */
	int bdat_last;
	int bdat_skip; /* the chunk is read and thrown away */
	enum smtpd_state bdat_resume; /* the state after a skipped chunk */
	uint64_t bdat_size; /* this transaction's content so far */

	/* ETRN (RFC 1985): the domain while its restrictions and qmgr's
	 * answer are out. */
	char *etrn_domain;
	int etrn_subdomains; /* ETRN @domain */

	/* Restrictions (smtpd_check.c). */
	struct smtpd_check_state *check;
	struct smtpd_dns_cache *dns; /* smtpd_dns.c */
	int check_unlisted; /* reject_unlisted_recipient named explicitly */
	int tx_hold, tx_discard; /* HOLD / DISCARD from an access table */
	int access_denied; /* the client list refused it at connect */

	/* A question to another service is out: input waits for it. */
	int waiting;
	int anvil_counted; /* anvil counts this connection */

	/* Deadlines (event loop ms). */
	uint64_t connect_ms, last_io_ms, cmd_start_ms, data_start_ms;
	int commands; /* complete command lines so far */

	const char *last_cmd; /* for "timeout after X" log lines */
	int errors;           /* toward smtpd_hard_error_limit */
	int pipelining_logged;
	unsigned cmd_ok[SMTPD_CMD_COUNTERS], cmd_total[SMTPD_CMD_COUNTERS];
	int close_now;     /* tear down when back in the event callback */
	int dead;          /* connection gone; freed when the commit ends */
	struct smtpd_session *prev, *next; /* every session of the process */
};

/* smtpd.c */
extern struct commit_pool *smtpd_commit_pool;
extern char *smtpd_incoming_dir; /* $queue_directory/incoming */
extern char *smtpd_hold_dir;     /* $queue_directory/hold */
extern enum cleanup_bare_policy smtpd_bare_newline;
extern struct tls_server *smtpd_tls; /* NULL: no certificate */
extern struct attr_client *smtpd_anvil, *smtpd_proxymap, *smtpd_auth;
/* ETRN's flush requests, answered by qmgr (mail/flush.h). */
extern struct attr_client *smtpd_qmgr;

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
/* Starts reading message content: DATA (after the 354) or a BDAT chunk. */
void smtpd_session_content(struct smtpd_session *s);
/* An asynchronous answer arrived: run what input waits, write replies. */
void smtpd_session_resume(struct smtpd_session *s);
/* The transfer protocol name for Received: (RFC 3848, RFC 6531). */
const char *smtpd_protocol(const struct smtpd_session *s);
/*
 * Asks anvil {request, service=smtpd, ident=client address}; with cb the
 * session waits for the answer, without it the request is a notice.
 */
void smtpd_anvil_request(
    struct smtpd_session *s, const char *request, attr_client_cb *cb);
/* Opens the queue file for the transaction; 0, or -1 after replying. */
int smtpd_session_open_file(struct smtpd_session *s);

/* smtpd_cmd.c */
/* Runs one command line (modified in place); counts it and its errors. */
void smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len);
/* The command that returned pending (DATA, BDAT) ended in a 250. */
void smtpd_cmd_ok(struct smtpd_session *s, const char *name);
/* Forgets sender, recipients and any queue file (RFC 5321 4.1.1.5). */
void smtpd_cmd_reset(struct smtpd_session *s);
/* Appends " ehlo=1 mail=1 rcpt=0/1 ..." for the disconnect line. */
void smtpd_cmd_counts(const struct smtpd_session *s, struct buf *out);
/* Frees what a session's commands hold (at the end of the session). */
void smtpd_cmd_free(struct smtpd_session *s);

/* smtpd_check.c: Postfix-style restrictions. */
enum smtpd_check_stage {
	SMTPD_CHECK_CONNECT, /* the client list (no smtpd_delay_reject) */
	SMTPD_CHECK_HELO, /* client and HELO lists (no smtpd_delay_reject) */
	SMTPD_CHECK_MAIL, /* and the sender list (no smtpd_delay_reject) */
	SMTPD_CHECK_RCPT, /* every list, for s->pending_rcpt */
	SMTPD_CHECK_ETRN, /* smtpd_etrn_restrictions alone, for s->etrn_domain */
};
#define SMTPD_CHECK_PASS    0
#define SMTPD_CHECK_REJECT  (-1) /* the reply is queued and logged */
#define SMTPD_CHECK_PENDING 1    /* done() comes from the event loop */
typedef void smtpd_check_done_fn(struct smtpd_session *s, int result);
/* Parses the lists and opens their tables (before any chroot); fatal on
 * a bad config. Then the resolver, if a list asks DNS. */
void smtpd_check_init(void);
void smtpd_check_dns_init(struct event_loop *loop);
void smtpd_check_shutdown(void);
int smtpd_check(struct smtpd_session *s, enum smtpd_check_stage stage,
    smtpd_check_done_fn *done);
/* What the restrictions decided for the message (HOLD, DISCARD, the
 * bare newline exclusions), before cleanup_open. */
void smtpd_check_envelope(struct smtpd_session *s, struct cleanup_envelope *env);
/* header_checks on the content, after cleanup_open. */
void smtpd_check_content(struct smtpd_session *s);
/* Drops a DNS question in flight and the session's answers. */
void smtpd_check_session_free(struct smtpd_session *s);
/* $mynetworks; $smtpd_client_event_limit_exceptions. */
int smtpd_check_trusted(const char *addr);
/* relay_recipient_maps: 1 listed (or no tables), 0 not, -1 a table
 * failed (*error_r). */
int smtpd_check_relay_recipient(const char *addr, const char **error_r);
int smtpd_check_event_exempt(const char *addr);
/* May the login use s->sender? 1 yes, 0 no, -1 table failure. */
int smtpd_check_sender_login(struct smtpd_session *s);

/* smtpd_dns.c: the DNS answers of a session's restrictions. */
struct smtpd_dns_entry {
	char *name;
	enum dns_type type;
	enum dns_status status;
	/* A: the addresses, space-separated; TXT: the first string; MX: "."
	 * for a null MX (RFC 7505), else "". */
	char *text;
};
void smtpd_dns_init(struct event_loop *loop);
void smtpd_dns_shutdown(void);
/*
 * 1 with *e_r when the session knows the answer; 0 when the question went
 * out: the session must wait, and resume(s) runs once it is answered.
 * One question at a time per session.
 */
int smtpd_dns_answer(struct smtpd_session *s, const char *name,
    enum dns_type type, void (*resume)(struct smtpd_session *s),
    const struct smtpd_dns_entry **e_r);
void smtpd_dns_session_free(struct smtpd_session *s);

/* smtpd_auth.c */
/* AUTH mechanism [initial-response] (RFC 4954). */
int smtpd_auth_cmd(struct smtpd_session *s, const char *arg);
/* A line that answers a SASL challenge (the session is in an exchange). */
void smtpd_auth_response(struct smtpd_session *s, const char *line);
/* 1 when AUTH may be offered now. */
int smtpd_auth_offered(const struct smtpd_session *s);
void smtpd_auth_free(struct smtpd_session *s);

#endif
