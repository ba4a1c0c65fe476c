/* SPDX-License-Identifier: MIT */
/*
 * The outbound SMTP delivery agent (smtp.c). One request from the queue
 * manager is one message for one destination (a nexthop) with one or
 * more recipients; it is delivered over one SMTP session at a time, to
 * the destination's exchangers in turn (smtp_connect.c), with the
 * protocol of smtp_proto.c. A session that delivered stays open for
 * smtp_connection_reuse_time, for the next request to the same nexthop.
 */
#ifndef TERN_SMTP_AGENT_H
#define TERN_SMTP_AGENT_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/stream.h"
#include "dns/dns.h"
#include "mail/qfile.h"
#include "mail/smtp_reply.h"

#define SMTP_DSN_MAX    16
/* "host[addr]:port" of the longest host and IPv6 address. */
#define SMTP_RELAY_MAX  (DNS_NAME_MAX + INET6_ADDRSTRLEN + 16)
/* Exchanger addresses tried for one request. */
#define SMTP_TARGETS_MAX 64

enum smtp_tls_level {
	SMTP_TLS_NONE,
	SMTP_TLS_MAY,     /* opportunistic: STARTTLS if offered, plain if it fails */
	SMTP_TLS_ENCRYPT, /* TLS required, certificate not checked */
	SMTP_TLS_VERIFY,  /* TLS required, certificate must name the MX host */
	SMTP_TLS_SECURE,  /* TLS required, certificate must name the nexthop */
};

/*
 * What a destination's TLS must be. One place decides it (smtp_policy
 * in smtp_tls.c), so DANE and MTA-STS can later raise it per
 * destination without the protocol code changing.
 */
struct smtp_policy {
	enum smtp_tls_level level;
	/* Names a verified certificate may have (verify/secure); "" = the
	 * exchanger's name. */
	char match[DNS_NAME_MAX + 1];
};

/* Where one attempt goes. */
struct smtp_target {
	char host[DNS_NAME_MAX + 1]; /* the exchanger, or the nexthop host */
	unsigned pref;
	struct sockaddr_storage sa;
	socklen_t salen;
	char addr[INET6_ADDRSTRLEN];
	unsigned port;
};

enum smtp_rcpt_state {
	SMTP_RCPT_PENDING, /* no final answer yet */
	SMTP_RCPT_DONE,    /* sent, bounced or deferred for good */
};

struct smtp_rcpt {
	int index;            /* in the queue file */
	const struct qrcpt *q;
	enum smtp_rcpt_state state;
	int accepted;         /* 2xx to RCPT in the current transaction */
	const char *result;   /* "sent", "bounce", "defer" */
	char dsn[SMTP_DSN_MAX];
	char *text;           /* the peer's reply or our reason */
	char *log_text;       /* as logged: "host X said: ... (in reply to ...)" */
	const char *diag_type; /* "smtp" or "x-tern" */
	char *mta;            /* the exchanger that answered, or "" */
	char relay[SMTP_RELAY_MAX];
	int dsn_passed;       /* the peer took over DSN (RFC 3461 NOTIFY) */
	const char *action;   /* "relayed" without DSN support, else "" */
};

/* One request: a message and its recipients for one nexthop. */
struct smtp_msg {
	struct qfile q;
	const char *id;
	const char *sender;
	const char *nexthop;
	char domain[DNS_NAME_MAX + 1]; /* nexthop without brackets and port */
	unsigned port;
	int no_mx;            /* [host] or an address literal */
	const char *body;     /* "8BITMIME", "7BIT" or "" */
	int smtputf8;
	const char *envid, *ret;
	struct smtp_rcpt *r;
	int n;
	struct smtp_policy policy;
	/* Timing for delays=a/b/c/d. */
	double t_arrival, t_active, t_request, t_conn, t_sent;
	/* The last failure that deferred everything, for the final reply. */
	char last_dsn[SMTP_DSN_MAX];
	char *last_text;
	char last_relay[SMTP_RELAY_MAX];
	int any_connected;    /* some exchanger answered at all */
};

/* One SMTP session with a peer. */
struct smtp_sess {
	int open;
	struct stream st;
	struct smtp_target t;
	char relay[SMTP_RELAY_MAX];       /* host[addr]:port */
	char relay_short[SMTP_RELAY_MAX]; /* host[addr] */
	char *dest;           /* nexthop it was opened for (reuse key) */
	struct smtp_ehlo ehlo;
	int tls;
	int reusable;         /* between transactions, in step with the peer */
	int secret;           /* AUTH in progress: commands are not logged */
	double idle_since;
	struct smtp_reply reply;
	struct buf why;       /* the last failure, for logs and DSNs */
	char dsn[SMTP_DSN_MAX];
};

/* smtp.c */
double smtp_now(void);
void smtp_rcpt_set(struct smtp_msg *m, struct smtp_rcpt *r,
    const char *result, const char *dsn, const char *mta,
    const char *diag_type, const char *relay, const char *text,
    const char *log_text);
int smtp_pending(const struct smtp_msg *m);

/* smtp_connect.c: targets, connections, the loop over exchangers. */
int smtp_connect_init(void);
void smtp_connect_shutdown(void);
void smtp_deliver(struct smtp_msg *m);
/* The cached idle session closes (QUIT) when too old, or now (force). */
void smtp_cache_expire(int force);
/* Milliseconds until the cached session expires, or -1 for none. */
int smtp_cache_ms_left(void);

/* smtp_proto.c: one session. */
enum smtp_sess_result {
	SMTP_SESS_OK,          /* done what it could; see the recipients */
	SMTP_SESS_NEXT,        /* this exchanger failed (why): try the next */
	SMTP_SESS_RETRY_PLAIN, /* TLS handshake failed under "may" */
	SMTP_SESS_STOP,        /* every recipient it could decide is decided */
};
void smtp_sess_open(struct smtp_sess *s, const struct smtp_msg *m,
    const struct smtp_target *t, int fd);
/* Greeting, EHLO, STARTTLS, AUTH. */
enum smtp_sess_result smtp_sess_setup(struct smtp_sess *s, struct smtp_msg *m,
    int no_tls);
/* One transaction for the pending recipients. */
enum smtp_sess_result smtp_sess_mail(struct smtp_sess *s, struct smtp_msg *m);
/* QUIT first when quit is set and the session is in step. */
void smtp_sess_close(struct smtp_sess *s, int quit);
void smtp_sess_fail(struct smtp_sess *s, const char *dsn, const char *fmt, ...)
    MTA_PRINTF(3, 4);
void smtp_sess_fail_reply(struct smtp_sess *s, const char *cmd);
int smtp_cmd(struct smtp_sess *s, const char *fmt, ...) MTA_PRINTF(2, 3);
int smtp_flush(struct smtp_sess *s, const char *stage, long long timeout);
int smtp_read(struct smtp_sess *s, const char *stage, long long timeout);
int smtp_hello(struct smtp_sess *s, long long timeout);

/* smtp_tls.c */
int smtp_tls_init(void);
/* Makes the TLS contexts now (tern check): 0 or -1. */
int smtp_tls_check(void);
void smtp_tls_shutdown(void);
/* Decides m->policy for m->nexthop. */
void smtp_policy(struct smtp_msg *m);
enum smtp_sess_result smtp_tls_start(struct smtp_sess *s, struct smtp_msg *m,
    int no_tls);

/* smtp_sasl.c */
int smtp_sasl_init(void);
void smtp_sasl_shutdown(void);
enum smtp_sess_result smtp_sasl_auth(struct smtp_sess *s, struct smtp_msg *m);

#endif
