/* SPDX-License-Identifier: MIT */
/*
 * TLS for tern: the one place that knows OpenSSL. A TLS session goes
 * under a struct stream (base/stream.h) as its transport, so the protocol
 * code keeps calling stream_read_line() and stream_flush() and never sees
 * a handshake, a record or an OpenSSL error queue; "want read / want
 * write" and decoded plaintext are the stream's business.
 *
 * Contexts (struct tls_server, struct tls_client) are made once per
 * process, before the privilege drop when they read keys; streams are
 * put under them per connection. Only TLS 1.2 and TLS 1.3 are ever
 * negotiated, whatever a configuration asks for.
 *
 * Functions that can fail return 0 or -1 and set *error_r to a message in
 * a thread-local buffer, valid until the next tls_* call in the same
 * thread; the caller logs it. Text that came from the peer (the SNI name,
 * the peer's CN) must go through log_sanitize() before it is logged.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stddef.h>
#include "base/stream.h"

struct tls_server;
struct tls_client;
struct tls_session;

/* The longest host name (RFC 1035 2.3.4 caps a name at 255 octets). */
#define TLS_SNI_MAX		255
/* X.520 ub-common-name: a CN holds at most 64 characters (RFC 5280 A.1). */
#define TLS_CN_MAX		64
#define TLS_PROTOCOL_MAX	16	/* "TLSv1.3" and room to spare */
#define TLS_CIPHER_MAX		64	/* longest suite name is < 50 */
/* Room for one failure text (OpenSSL reason plus file names). */
#define TLS_ERROR_MAX		512

/* Shortest ticket_secret accepted: a 256-bit key. */
#define TLS_TICKET_SECRET_MIN	32
/* The environment variable in which master hands every TLS server
 * process (smtpd, login) the same ticket secret, hex-encoded, and the
 * most bytes of it that are used. */
#define TLS_TICKET_ENV		"TERN_TLS_TICKET_SECRET"
#define TLS_TICKET_SECRET_MAX	64
/* ticket_lifetime of 0 means this (seconds). */
#define TLS_TICKET_LIFETIME_DEFAULT 3600
/* RFC 8446 4.6.1: a ticket lives at most seven days. */
#define TLS_TICKET_LIFETIME_MAX	(7 * 86400)

/* TLS 1.2 cipher list used when tls_server_config.ciphers is NULL or "":
 * forward-secret AEAD and CBC suites, nothing anonymous or export-grade. */
#define TLS_CIPHERS_DEFAULT						\
	"HIGH:!aNULL:!eNULL:!kRSA:!DSS:!PSK:!SRP:!MD5:!RC4:!3DES:"	\
	"!CAMELLIA:!ARIA"

/*
 * Protocol lists (server and client "protocols"): NULL or "" for TLS 1.2
 * and 1.3; else words separated by spaces, commas or colons, each one of
 * "TLSv1.2", "TLSv1.3" (enable), ">=V", "<=V" (a range) or "!V"
 * (exclude), where V is SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3
 * (Postfix's "!SSLv2, !SSLv3" reads as it does there); names
 * are case-insensitive. Without an enabling word everything starts
 * enabled. The result is cut down to TLS 1.2 and 1.3, and it is an error
 * when nothing is left ("TLSv1.1") or a word is unknown.
 */

struct tls_server_config {
	/* A pair, RSA or ECDSA, in PEM; the cert file may hold the chain
	 * (leaf first). Required. */
	const char *cert_file, *key_file;
	/* Optional second pair of the other key type, so that RSA and ECDSA
	 * clients are both served; NULL when unused. */
	const char *eccert_file, *eckey_file;
	const char *protocols;		/* see above */
	/* TLS 1.2 cipher list in OpenSSL syntax, and TLS 1.3 suites; NULL
	 * or "" for TLS_CIPHERS_DEFAULT and OpenSSL's default suites. */
	const char *ciphers;
	const char *ciphersuites;
	/* Shared by every process of a service, so that a session ticket
	 * issued by one is accepted by another. NULL: no tickets. At least
	 * TLS_TICKET_SECRET_MIN bytes. */
	const unsigned char *ticket_secret;
	size_t ticket_secret_len;
	/* Seconds, at most TLS_TICKET_LIFETIME_MAX; 0: the default. */
	unsigned ticket_lifetime;
};

/*
 * Makes a server context: reads and checks the certificates and keys
 * (call as root, before the privilege drop), sets protocols and ciphers,
 * turns off the per-process session cache and, with a ticket secret, turns
 * on stateless session tickets whose keys every process derives alike:
 * for the time window now / ticket_lifetime, the key name, AES-256 key and
 * HMAC-SHA256 key are HMAC-SHA256(secret, label || window); tickets of the
 * current and the previous window are accepted (the previous ones are
 * renewed), and a resumed session is at most ticket_lifetime old.
 * Returns 0 with *srv_r set, or -1 with *error_r (naming the file and
 * OpenSSL's reason: missing or unreadable file, key not matching its
 * cert, two pairs of one key type, bad protocols or cipher list, a
 * short ticket secret or too long a lifetime).
 */
/*
 * The secret that lets every server process of an instance resume every
 * other one's TLS sessions (master makes a fresh one at each start):
 * $TLS_TICKET_ENV decoded into out (at most max bytes). Its length, or 0
 * when it is absent or not lower-case hex (then no tickets are issued).
 */
size_t tls_ticket_secret_from_env(unsigned char *out, size_t max);

int tls_server_create(const struct tls_server_config *cfg,
    struct tls_server **srv_r, const char **error_r);
/* Frees and sets *srv_r to NULL; NULL-safe. Streams put under the server
 * must be freed first. */
void tls_server_free(struct tls_server **srv_r);

struct tls_client_config {
	const char *ca_file;	/* trust anchors (PEM); NULL: system store */
	/* 1: the handshake fails unless the chain is valid and the cert
	 * matches the servername; 0: it goes on, and tls_info says whether
	 * the peer was verified (opportunistic TLS). */
	int verify;
	const char *protocols;	/* see above */
};

/* Makes a client context; 0, or -1 with *error_r (bad CA file,
 * protocols). */
int tls_client_create(const struct tls_client_config *cfg,
    struct tls_client **cli_r, const char **error_r);
void tls_client_free(struct tls_client **cli_r);	/* NULL-safe */

/*
 * Puts a server-side TLS session under st, whose fd should be a
 * non-blocking socket (TLS never blocks or raises SIGPIPE on it either
 * way). The handshake runs inside the stream's first reads and writes;
 * a failed handshake shows as STREAM_ERROR (errno EPROTO, or the errno
 * of a failed system call such as ECONNRESET; details in
 * tls_stream_error) or STREAM_EOF when the peer went away. Input the
 * stream already buffered stays in front of the TLS data: for STARTTLS
 * the caller refuses it before calling (RFC 3207 5, command injection).
 * The session is freed by stream_free()/stream_close(), which first
 * send a best-effort close_notify on st's fd, so the fd must still be
 * open then (stream_close() does it in that order). A peer that closes
 * without close_notify reads as STREAM_EOF as well (tls_stream_error
 * says so). srv must outlive st's session.
 */
void tls_stream_server(struct stream *st, struct tls_server *srv);
/*
 * The same for a client: servername is sent as SNI (unless it is an IP
 * address) and is the name the certificate must match when cli verifies;
 * NULL sends none and, with verify, fails the handshake. The stream's
 * first read is set to wait for writability, so a blocking
 * stream_read_line() sends the ClientHello itself (implicit TLS).
 * Client-side session caching is the caller's, through
 * tls_stream_session_get/set below (no cache is kept here yet).
 */
void tls_stream_client(struct stream *st, struct tls_client *cli,
    const char *servername);

struct tls_info {
	char protocol[TLS_PROTOCOL_MAX];	/* "TLSv1.2", "TLSv1.3" */
	char cipher[TLS_CIPHER_MAX];		/* "TLS_AES_256_GCM_SHA384" */
	int bits;				/* secret bits of the cipher */
	int alg_bits;				/* bits the algorithm uses */
	/* Server: the name the client asked for (SNI), "" for none; client:
	 * the name it sent. Peer text: sanitize before logging. */
	char sni[TLS_SNI_MAX + 1];
	int resumed;				/* 1: abbreviated handshake */
	/* Client side only: the CN of the peer's certificate ("" if none;
	 * peer text) and whether its chain and name were verified. */
	char peer_cn[TLS_CN_MAX + 1];
	int peer_verified;
};

/* Fills *out and returns 0 once st's handshake is done; -1 before that
 * or when st has no TLS under it. */
int tls_stream_info(const struct stream *st, struct tls_info *out);
/* 1 when st has TLS under it and its handshake is complete, else 0. */
int tls_stream_handshake_done(const struct stream *st);
/* The text of st's last TLS failure (OpenSSL's reason, a verification
 * failure, a lost connection during the handshake), or NULL when none
 * or st has no TLS. Valid until st's session is freed. */
const char *tls_stream_error(const struct stream *st);

/*
 * Client-side session reuse. tls_stream_session_get returns a reference
 * to st's session when it can be resumed (TLS 1.3 tickets arrive after
 * the handshake, so only once some data was read), else NULL; the caller
 * frees it with tls_session_free. tls_stream_session_set offers sess for
 * resumption in st's coming handshake (call right after
 * tls_stream_client, before any I/O); st takes its own reference.
 */
struct tls_session *tls_stream_session_get(const struct stream *st);
void tls_stream_session_set(struct stream *st, struct tls_session *sess);
void tls_session_free(struct tls_session **sess_r);	/* NULL-safe */

enum tls_key_type {
	TLS_KEY_RSA,	/* RSA, TLS_RSA_BITS bits */
	TLS_KEY_EC,	/* ECDSA on P-256 */
};

#define TLS_RSA_BITS 2048

/*
 * Makes a self-signed server certificate for `tern init`: a new key of
 * type, X.509 v3, random serial, subject CN=hostname, subjectAltName
 * DNS:hostname, valid from now for days days, CA:FALSE, key usage
 * digitalSignature (+ keyEncipherment for RSA), extended key usage
 * serverAuth, signed with SHA-256. The key file is written with mode 0600
 * and the cert with 0644, each through a fresh temporary file renamed
 * over the path, so a reader never sees half a key. hostname must be a
 * DNS name of at most TLS_CN_MAX characters. 0, or -1 with *error_r.
 */
int tls_make_self_signed(const char *cert_path, const char *key_path,
    const char *hostname, enum tls_key_type type, int days,
    const char **error_r);

/* "OpenSSL 3.0.19 27 Jan 2026" (the library in use, for logs). */
const char *tls_library_version(void);

#endif
