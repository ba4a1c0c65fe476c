/* SPDX-License-Identifier: MIT */
/*
 * The server side of the SASL mechanisms PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), shared by smtpd (AUTH, RFC 4954), pop3d
 * (AUTH, RFC 5034) and imapd (AUTHENTICATE, RFC 3501 6.2.2 and SASL-IR,
 * RFC 4959). The three protocols frame the exchange alike: challenges and
 * responses are base64 text, one per line; an initial response may come
 * with the command, "=" standing for an empty one; a client cancels with
 * "*". This module takes and gives that text without the protocol's
 * framing ("334 ", "+ ", CRLF) and never checks a password: it yields
 * the user name and password that the caller then sends to the auth
 * service.
 *
 *   struct sasl s;
 *
 *   sasl_init(&s, mech);
 *   st = sasl_start(&s, initial, initial_len);  (initial NULL: none)
 *   while (st == SASL_CHALLENGE) {
 *           send s.challenge, read one line;
 *           st = sasl_step(&s, line, line_len);
 *   }
 *   SASL_DONE: s.user and s.password are set.
 *   SASL_ERROR: s.error says which reply to give, s.error_text why.
 *   sasl_free(&s);  (also wipes the password)
 *
 * Replies for each error (RFC 4954 4, RFC 5034 4, RFC 3501 6.2.2):
 * SASL_ERROR_CANCELLED: SMTP 501 5.0.0, POP3 -ERR, IMAP BAD;
 * SASL_ERROR_MALFORMED: SMTP 501 5.5.2, POP3 -ERR, IMAP BAD;
 * SASL_ERROR_DENIED:    SMTP 535 5.7.8, POP3 -ERR, IMAP NO.
 *
 * Limits: a response line (base64, without CRLF) is at most
 * SASL_RESPONSE_MAX characters; a user name at most SASL_USER_MAX bytes
 * (RFC 4616 2: servers must take 255), a password at most
 * SASL_PASSWORD_MAX. Neither may be empty or contain a NUL byte.
 * Protocol line limits must leave room for an initial response of
 * SASL_RESPONSE_MAX characters after the command word (RFC 4954 4 allows
 * 12288 octets for an AUTH line).
 */
#ifndef TERN_SASL_H
#define TERN_SASL_H

#include <stddef.h>
#include "base/base64.h"
#include "base/buf.h"
#include "mail/userdb.h"

#define SASL_USER_MAX	  255
#define SASL_PASSWORD_MAX USERDB_PASSWORD_MAX
/* The longest PLAIN message: authzid NUL authcid NUL passwd. */
#define SASL_MESSAGE_MAX  (2 * SASL_USER_MAX + SASL_PASSWORD_MAX + 2)
#define SASL_RESPONSE_MAX BASE64_ENCODED_LEN(SASL_MESSAGE_MAX)
/* What EHLO, CAPA and CAPABILITY offer. */
#define SASL_MECHANISMS	  "PLAIN LOGIN"

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_status {
	SASL_CHALLENGE,	/* send s.challenge, then pass the answer to step */
	SASL_DONE,	/* s.user and s.password hold the credentials */
	SASL_ERROR,	/* the exchange is over; see s.error */
};

enum sasl_error {
	SASL_ERROR_NONE,
	SASL_ERROR_CANCELLED,	/* the client answered "*" */
	SASL_ERROR_MALFORMED,	/* bad base64, fields, lengths */
	SASL_ERROR_DENIED,	/* well-formed, but asks to log in as
				 * someone else (a PLAIN authzid) */
};

/* Internal; exposed only for the debug trace and tests. */
enum sasl_state {
	SASL_STATE_START,
	SASL_STATE_PLAIN,		/* waiting for the PLAIN message */
	SASL_STATE_LOGIN_USER,		/* "Username:" sent */
	SASL_STATE_LOGIN_PASSWORD,	/* "Password:" sent */
	SASL_STATE_DONE,
	SASL_STATE_FAILED,
};

struct sasl {
	enum sasl_mech mech;
	enum sasl_state state;
	/* With SASL_CHALLENGE: base64 text to send, possibly ""; static. */
	const char *challenge;
	/* With SASL_ERROR: the category and a static reason for logs. */
	enum sasl_error error;
	const char *error_text;
	/* With SASL_DONE: NUL-terminated, no NUL inside, not empty. */
	struct buf user;	/* the authentication identity as sent */
	struct buf password;
	struct buf decoded;	/* private: the last response decoded */
};

/*
 * Mechanism by name (case-insensitive, as RFC 4422 3.1 names are
 * compared): 0 and *mech_r, or -1 for a mechanism tern does not offer.
 */
int sasl_mech_parse(const char *name, enum sasl_mech *mech_r);
/* "PLAIN" or "LOGIN". */
const char *sasl_mech_name(enum sasl_mech mech);

void sasl_init(struct sasl *s, enum sasl_mech mech);
/*
 * Begins the exchange. initial: the initial response exactly as the
 * client sent it with the command (base64, or "=" for an empty one), or
 * NULL when it sent none. Returns SASL_CHALLENGE, SASL_DONE or
 * SASL_ERROR. Called once, first.
 */
enum sasl_status sasl_start(struct sasl *s, const char *initial, size_t len);
/*
 * The client's answer to s.challenge: one line without its CRLF (base64,
 * "" for an empty answer, "*" to cancel). Only after SASL_CHALLENGE;
 * any other call is the caller's bug (msg_panic).
 */
enum sasl_status sasl_step(struct sasl *s, const char *response, size_t len);
/* Wipes the credentials and frees; s may be initialised again. */
void sasl_free(struct sasl *s);

#endif
