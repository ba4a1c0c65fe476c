/* SPDX-License-Identifier: MIT */
/*
 * The login / session split of pop3d (and imapd later), as Dovecot
 * splits pop3-login from pop3:
 *
 *   client --TCP--> login (user $login_user, chrooted to
 *                   $login_directory, event-driven, many clients per
 *                   process): greeting, CAPA, STLS / implicit TLS, the
 *                   login commands; never root, never reads the user file.
 *   login --$login_directory/spawn--> spawn (root, one process): checks
 *                   the credentials with the auth service, finds the
 *                   mailbox and its owner, counts sessions per user and
 *                   per client address, forks and execs the session.
 *   session (pop3d, as the mailbox owner: a system user or $vmail_user):
 *                   serves the client on the descriptor it was given.
 *
 * A plaintext client's socket itself is passed on (SCM_RIGHTS), so the
 * login process is out of the path after the login. A TLS client's
 * session state cannot move to another process (OpenSSL cannot export a
 * live connection, and kernel TLS is not there on every host or for every
 * record type), so login keeps the TLS connection and passes one end of
 * a socketpair; it then relays plaintext between the two until either
 * side closes, as Dovecot's login processes do. The TLS keys thus never
 * reach a process that runs as a mailbox owner.
 *
 * Why the password goes to spawn and not straight to auth: spawn must
 * know that the login really succeeded before it starts a session as
 * the mailbox owner, and a login process must be assumed compromised
 * (it parses everything the network sends before login). Asking auth
 * itself, spawn needs no ticket scheme that a login process could abuse.
 *
 * Protocol on $login_directory/spawn (SOCK_STREAM): one connection per
 * login attempt, made by login; one request frame (attr.h), sent with
 * sendmsg() carrying exactly one descriptor (SCM_RIGHTS) with the frame's
 * first byte; one reply frame; then spawn closes. A request without a
 * descriptor, with more than one, or over LOGIN_REQUEST_MAX bytes ends
 * the connection without a reply. The login process waits for the reply
 * at most LOGIN_SPAWN_TIMEOUT_MS (longer than $auth_failure_delay_max).
 *
 *   request: request=login
 *            service=pop3|imap
 *            mech=plain|apop
 *            user                 (as the client gave it)
 *            password             (mech=plain)
 *            apop_challenge, apop_digest   (mech=apop: the greeting's
 *                                 <...> timestamp, 32 lower-case hex)
 *            client_addr, client_port, local_addr, local_port
 *            tls=0|1              (1: the descriptor is login's proxy
 *                                 socketpair, the client talks TLS)
 *            secured=0|1          (TLS, or $login_trusted_networks)
 *            tag                  (service=imap: the tag of the LOGIN or
 *                                 AUTHENTICATE command, 1 to 128
 *                                 printable characters; the session
 *                                 answers it "tag OK ... Logged in")
 *            input                (bytes the client sent after the login
 *                                 command, to be read first by the
 *                                 session; at most LOGIN_INPUT_MAX; may
 *                                 be absent)
 *   reply:   status=ok|fail|tempfail|limit|delay
 *            user                 (ok: the canonical name, for login's log)
 *            text                 (for login's log, never for the client)
 *
 * ok: a session process now owns the connection; it greets the client
 * ("+OK Logged in." in POP3) or refuses it ("-ERR [IN-USE] ..."), so
 * login writes nothing more to the client itself (a TLS login relays).
 * fail: wrong credentials (after auth's delay): POP3 "-ERR [AUTH]
 * Authentication failed.", the client may try again. tempfail: auth,
 * the mailbox or the owner cannot be reached now: "-ERR [SYS/TEMP] ...".
 * limit: $login_max_user_connections sessions of that user, or
 * $login_max_ip_connections sessions from that address, are running:
 * "-ERR [SYS/TEMP] Too many connections." (the client may retry later).
 * delay: the user logged in less than $pop3_login_delay seconds ago
 * (RFC 2449 LOGIN-DELAY): "-ERR [LOGIN-DELAY] ...".
 *
 * The session (pop3d, or imapd for service=imap) is started by spawn as
 *
 *   pop3d -c CONFIG_DIR [-v]      (imapd -c CONFIG_DIR [-v])
 *
 * with uid, gid and supplementary groups of the mailbox owner (never
 * uid 0: spawn refuses), the working directory "/", fd 0 the client
 * connection (blocking, not close-on-exec), fd 1 /dev/null, fd 2 what
 * spawn has (master's log), and this environment besides
 * $import_environment:
 *
 *   TERN_SESSION_USER     the canonical user name (alice@example.test)
 *   TERN_SESSION_MAILDIR  the maildir (absolute, ends without '/';
 *                         the session creates it when missing)
 *   TERN_SESSION_CLIENT   client_addr, TERN_SESSION_CLIENT_PORT
 *   TERN_SESSION_LOCAL    local_addr,  TERN_SESSION_LOCAL_PORT
 *   TERN_SESSION_TLS      "0" or "1"
 *   TERN_SESSION_INPUT    the request's input, base64 (absent: none)
 *   TERN_SESSION_ID       a short id for log lines (spawn's)
 *   TERN_SESSION_TAG      imapd only: the request's tag; imapd's first
 *                         words are "TAG OK [CAPABILITY ...] Logged in"
 *
 * spawn reaps its sessions and takes back their counts when they exit.
 */
#ifndef TERN_LOGIN_PROTO_H
#define TERN_LOGIN_PROTO_H

/* spawn's socket name in $login_directory. */
#define LOGIN_SPAWN_SOCKET	"spawn"
/* The socket of the anvil that counts the login processes' clients
 * (login/anvil in services.conf), in $login_directory. */
#define LOGIN_ANVIL_SOCKET	"anvil"

#define LOGIN_ATTR_REQUEST	"request"
#define LOGIN_ATTR_SERVICE	"service"
#define LOGIN_ATTR_MECH		"mech"
#define LOGIN_ATTR_USER		"user"
#define LOGIN_ATTR_PASSWORD	"password"
#define LOGIN_ATTR_APOP_CHALLENGE "apop_challenge"
#define LOGIN_ATTR_APOP_DIGEST	"apop_digest"
#define LOGIN_ATTR_CLIENT_ADDR	"client_addr"
#define LOGIN_ATTR_CLIENT_PORT	"client_port"
#define LOGIN_ATTR_LOCAL_ADDR	"local_addr"
#define LOGIN_ATTR_LOCAL_PORT	"local_port"
#define LOGIN_ATTR_TLS		"tls"
#define LOGIN_ATTR_SECURED	"secured"
#define LOGIN_ATTR_INPUT	"input"
#define LOGIN_ATTR_TAG		"tag"
#define LOGIN_ATTR_STATUS	"status"
#define LOGIN_ATTR_TEXT		"text"

#define LOGIN_REQUEST_LOGIN	"login"
#define LOGIN_MECH_PLAIN	"plain"
#define LOGIN_MECH_APOP		"apop"

#define LOGIN_STATUS_OK		"ok"
#define LOGIN_STATUS_FAIL	"fail"
#define LOGIN_STATUS_TEMPFAIL	"tempfail"
#define LOGIN_STATUS_LIMIT	"limit"
#define LOGIN_STATUS_DELAY	"delay"

#define LOGIN_REQUEST_MAX	16384
#define LOGIN_INPUT_MAX		8192
#define LOGIN_SPAWN_TIMEOUT_MS	60000

#define LOGIN_ENV_USER		"TERN_SESSION_USER"
#define LOGIN_ENV_MAILDIR	"TERN_SESSION_MAILDIR"
#define LOGIN_ENV_CLIENT	"TERN_SESSION_CLIENT"
#define LOGIN_ENV_CLIENT_PORT	"TERN_SESSION_CLIENT_PORT"
#define LOGIN_ENV_LOCAL		"TERN_SESSION_LOCAL"
#define LOGIN_ENV_LOCAL_PORT	"TERN_SESSION_LOCAL_PORT"
#define LOGIN_ENV_TLS		"TERN_SESSION_TLS"
#define LOGIN_ENV_INPUT		"TERN_SESSION_INPUT"
#define LOGIN_ENV_ID		"TERN_SESSION_ID"
#define LOGIN_ENV_TAG		"TERN_SESSION_TAG"

#endif
