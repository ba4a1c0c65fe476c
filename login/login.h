/* SPDX-License-Identifier: MIT */
/*
 * The pre-login process (login_proto.h): login.c is the part every
 * protocol shares (connections, TLS, limits, the spawn request with the
 * descriptor passed on, the TLS relay after a login); a protocol adds one
 * struct login_protocol (login_pop3.c, login_imap.c) that
 * speaks the greeting-stage dialogue through the functions below.
 */
#ifndef TERN_LOGIN_H
#define TERN_LOGIN_H

#include <stddef.h>

#include "base/mem.h"

/* Bad commands before a connection is closed, and failed logins (the
 * protocol closes after the reply to the last one). */
#define LOGIN_BAD_COMMANDS_MAX	10
#define LOGIN_AUTH_FAILURES_MAX	3

struct login_client;

/* What spawn answered to a login attempt (login_proto.h), or why no
 * answer came. */
enum login_result {
	LOGIN_RESULT_OK,
	LOGIN_RESULT_FAIL,	/* wrong credentials: the client may retry */
	LOGIN_RESULT_TEMPFAIL,	/* auth, mailbox or owner unavailable */
	LOGIN_RESULT_LIMIT,	/* too many sessions of the user or address */
	LOGIN_RESULT_DELAY,	/* RFC 2449 LOGIN-DELAY not yet over */
	LOGIN_RESULT_UNAVAILABLE,	/* spawn unreachable or silent */
	LOGIN_RESULT_COUNT
};

/* texts[r], a protocol's reply to a failed login, indexed by enum
 * login_result (LOGIN_RESULT_COUNT entries); TEMPFAIL's for a result
 * the table has no text for. */
const char *login_result_text(const char *const *texts, enum login_result r);

/* Why the generic part ends a connection by itself, for the protocol's
 * last words (login_protocol.bye_text). */
enum login_bye {
	LOGIN_BYE_TIMEOUT,	/* idle for the protocol's timeout */
	LOGIN_BYE_SHUTDOWN,	/* the process is stopping */
	LOGIN_BYE_TOO_MANY,	/* login_max_connections_per_ip */
	LOGIN_BYE_NO_TLS,	/* implicit TLS without a certificate: nothing
				 * can be said, the connection just closes */
	LOGIN_BYE_COUNT
};

struct login_protocol {
	const char *name;	/* "pop3": the first argument, service= */
	const char *log_name;	/* "pop3-login": the name in the log */
	/* The longest command line, without CRLF. */
	size_t line_max;
	/* Seconds of silence after which a client is dropped. */
	long long (*idle_timeout)(void);
	/* Makes the protocol state (login_client_proto) and greets. */
	void (*start)(struct login_client *c);
	/* One complete line of input, without CRLF (len octets, with a NUL
	 * at line[len]; modifiable). */
	void (*line)(struct login_client *c, char *line, size_t len);
	/* A line over line_max was received (and discarded). */
	void (*line_too_long)(struct login_client *c);
	/* Instead of line and line_too_long, for a protocol that is not
	 * line-based (IMAP: literals): called while input is buffered; it
	 * takes what it can through login_client_input and
	 * login_client_input_consume, consuming nothing when it needs more
	 * (at most STREAM_RBUF_SIZE octets are ever buffered). */
	void (*input)(struct login_client *c);
	/* The answer to login_client_login, anything but LOGIN_RESULT_OK
	 * (the session greets after an OK). */
	void (*login_failed)(struct login_client *c, enum login_result r);
	/* The last reply before login.c closes the connection, by enum
	 * login_bye; NULL: nothing is said. */
	const char *const *bye_text;
	/* Frees the protocol state (wiping credentials). */
	void (*free)(struct login_client *c);
};

extern const struct login_protocol login_pop3;
extern const struct login_protocol login_imap;

/* The protocol's state, set by its start. */
void *login_client_proto(struct login_client *c);
void login_client_set_proto(struct login_client *c, void *proto);

/*
 * Queues one reply line (CRLF added; control characters in it become
 * '?'). A client that lets more than LOGIN_OUT_MAX bytes pile up is
 * dropped.
 */
void login_client_reply(struct login_client *c, const char *fmt, ...)
    MTA_PRINTF(2, 3);
/* The input buffered and not consumed yet (protocol->input). Consume a
 * command before acting on it: a login sends spawn what follows it. */
const char *login_client_input(struct login_client *c, size_t *len_r);
void login_client_input_consume(struct login_client *c, size_t n);

/* Closes the connection once the queued replies are written. */
void login_client_quit(struct login_client *c);
/* Counts a bad command; returns 1 when the limit is reached (the caller
 * says so and calls login_client_quit). */
int login_client_bad_command(struct login_client *c);

/* 1 if TLS is active on the connection. */
int login_client_tls_active(const struct login_client *c);
/* 1 if STLS / STARTTLS can be offered now (a certificate, no TLS yet). */
int login_client_tls_available(const struct login_client *c);
/* 1 if a password may be sent now: TLS, a trusted network, or
 * disable_plaintext_auth = no. */
int login_client_plaintext_allowed(const struct login_client *c);
/*
 * Starts TLS once the replies queued so far are written. Returns 0, or
 * -1 when the client already sent more input after the command (RFC 2595
 * 4 / RFC 3207 5: it would be taken as sent inside TLS): the caller
 * refuses and quits.
 */
int login_client_starttls(struct login_client *c);

/* A login attempt (login_proto.h). */
struct login_request {
	const char *method;	/* for the log: "PLAIN", "LOGIN", "APOP" */
	const char *mech;	/* LOGIN_MECH_PLAIN or LOGIN_MECH_APOP */
	const char *user;
	const char *password;	/* plain */
	const char *apop_challenge, *apop_digest;	/* apop */
	const char *tag;	/* IMAP: the command's, for the session */
};

/*
 * Sends the attempt to spawn with the client's connection; input stops
 * until the answer. OK: the session owns the client from then on (the
 * protocol hears nothing more); anything else: protocol->login_failed,
 * and the dialogue goes on (or the protocol quits). The request's
 * strings are copied (and the copies wiped) here.
 */
void login_client_login(struct login_client *c, const struct login_request *r);
/* Failed attempts so far (LOGIN_RESULT_FAIL answers). */
int login_client_failures(const struct login_client *c);

/* Log text: the client's address, and "user=<U>, method=M, rip=A,
 * lip=B[, TLS]" (static, valid until the next call). */
const char *login_client_addr(const struct login_client *c);
const char *login_client_log_fields(const struct login_client *c);

#endif
