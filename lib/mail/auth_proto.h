/* SPDX-License-Identifier: MIT */
/*
 * The protocol of the auth service (auth(8)), which checks passwords for
 * smtpd, pop3d and imapd: attribute frames (attr.h) over the UNIX socket
 * $queue_directory/private/auth, one request per frame, as many requests
 * on one connection as the client likes. Replies may come in any order
 * (a failure is answered late), each carrying its request's "id", which
 * attr_client adds and matches; a request without an id is a notice and
 * gets no answer (attr_server.h).
 *
 *   request: id, request=auth, service=smtp|pop3|imap, user, password,
 *            client_addr
 *   reply:   id, status=ok|fail|tempfail, user (with ok only), text
 *
 * user, password: as the client gave them (sasl.h), not empty, no NUL
 * byte, at most USERDB_NAME_MAX and USERDB_PASSWORD_MAX bytes; anything
 * else is answered fail. client_addr: the client's IP address as text
 * ("192.0.2.1", "2001:db8::1"), "" when there is none; failures are
 * counted per address (per /64 for IPv6) and per user. A frame without
 * request=auth, a known service and all of these attributes, or over
 * AUTH_REQUEST_MAX bytes, is a protocol violation: the connection is
 * closed and every request on it goes unanswered.
 *
 * ok: the password is right; the reply's user is the name as stored in
 * the user file (lower case), which the caller uses from then on.
 * fail: unknown user, wrong password or malformed credentials, answered
 * only after a delay that grows with recent failures from that address
 * and for that user, up to $auth_failure_delay_max: a client's reply
 * timeout must be longer. Map to SMTP 535 5.7.8, POP3 -ERR [AUTH],
 * IMAP NO [AUTHENTICATIONFAILED].
 * tempfail: the user file is missing or unreadable, or auth has too many
 * failures or checks waiting (answered at once), or the request waited
 * AUTH_QUEUE_WAIT_MS for a hashing thread (answered then, without a
 * check). Map to SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP], IMAP NO
 * [UNAVAILABLE].
 *
 * Deadlines: auth answers every request within AUTH_QUEUE_WAIT_MS of
 * waiting, one check, and the failure delay; a client waits at least
 * AUTH_CLIENT_TIMEOUT_MS($auth_failure_delay_max), so that a burst of
 * logins queued in a healthy auth is answered, never cut off by its
 * client (whose timeout would drop every request on the connection).
 * text: a short reason for the caller's log, never for the client; it
 * does not say whether a user exists.
 *
 * APOP (RFC 1939 7), asked by spawn for a POP3 login:
 *
 *   request: id, request=apop, service=pop3, user, apop_challenge,
 *            apop_digest, client_addr
 *   reply:   as above
 *
 * apop_challenge: the greeting's timestamp, "<...>" (1 to
 * AUTH_APOP_CHALLENGE_MAX printable bytes); apop_digest: 32 hex digits.
 * ok when the user's stored password is in a plaintext scheme ({PLAIN},
 * {CLEAR}, {CLEARTEXT}) and MD5(challenge password) in lower-case hex
 * is the digest (compared in constant time); fail otherwise (a hashed
 * password cannot answer APOP), with the same delays and counts as auth.
 */
#ifndef TERN_AUTH_PROTO_H
#define TERN_AUTH_PROTO_H

/* The socket's name under private/ (services.conf). */
#define AUTH_SERVICE_NAME    "auth"

#define AUTH_ATTR_REQUEST    "request"
#define AUTH_ATTR_SERVICE    "service"
#define AUTH_ATTR_USER	     "user"
#define AUTH_ATTR_PASSWORD   "password"
#define AUTH_ATTR_CLIENT     "client_addr"
#define AUTH_ATTR_STATUS     "status"
#define AUTH_ATTR_TEXT	     "text"

#define AUTH_REQUEST_AUTH    "auth"
#define AUTH_REQUEST_APOP    "apop"
#define AUTH_ATTR_APOP_CHALLENGE "apop_challenge"
#define AUTH_ATTR_APOP_DIGEST "apop_digest"
/* RFC 1939 7: a msg-id; longer than any real greeting's timestamp. */
#define AUTH_APOP_CHALLENGE_MAX 512
/* MD5 in hex. */
#define AUTH_APOP_DIGEST_LEN 32

#define AUTH_PROTO_SMTP	     "smtp"
#define AUTH_PROTO_POP3	     "pop3"
#define AUTH_PROTO_IMAP	     "imap"

#define AUTH_STATUS_OK	     "ok"
#define AUTH_STATUS_FAIL     "fail"
#define AUTH_STATUS_TEMPFAIL "tempfail"

/* Room for the largest valid request with its id; larger is abuse. */
#define AUTH_REQUEST_MAX     4096
/* client_addr: an IPv6 address with a zone fits with room to spare. */
#define AUTH_ADDR_MAX	     64

/* The longest a request waits in auth's queue for a hashing thread. */
#define AUTH_QUEUE_WAIT_MS   25000
/* Room for the check itself and scheduling on a loaded machine. */
#define AUTH_CHECK_MARGIN_MS 10000
/* The least a client waits for an answer (delay_max_s: seconds). */
#define AUTH_CLIENT_TIMEOUT_MS(delay_max_s) \
	(AUTH_QUEUE_WAIT_MS + (uint64_t)(delay_max_s) * 1000 + \
	    AUTH_CHECK_MARGIN_MS)

#endif
