/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the files of lib/tls: the per-connection state that
 * sits under a stream, the server context (for its callbacks), and the
 * helpers every context needs. Nothing outside lib/tls includes this.
 */
#ifndef TERN_TLS_INT_H
#define TERN_TLS_INT_H

#include <openssl/ssl.h>
#include "base/mem.h"
#include "tls/tls.h"

struct tls_server {
	SSL_CTX *ctx;
	/*
	 * Certificate selection by SNI name plugs in here: a table of
	 * {name, SSL_CTX} that the servername callback searches before it
	 * calls SSL_set_SSL_CTX(); for now every name gets ctx.
	 */
	unsigned char *ticket_secret;	/* NULL: no tickets */
	size_t ticket_secret_len;
	unsigned ticket_lifetime;	/* seconds, > 0 */
	/* Keys derived for the windows in use, so that a handshake costs no
	 * HMAC derivation (tls_server.c); one thread uses a server. */
	struct tls_ticket_cache *ticket_cache;
};

struct tls_client {
	SSL_CTX *ctx;
	int verify;
};

/* One TLS session under a stream (the transport's ctx). */
struct tls_conn {
	SSL *ssl;			/* owns the BIO */
	int fd;				/* the stream's fd, for the BIO */
	int eof;			/* the BIO read end of input */
	int handshake_done;		/* once seen complete, kept */
	const struct tls_server *srv;	/* server side; NULL for a client */
	/* Set after a fatal result: OpenSSL must not be called again. The
	 * same result is repeated: errno, or 0 for end of input. */
	int failed;
	int failed_errno;
	char sni[TLS_SNI_MAX + 1];	/* asked for (server), sent (client) */
	int name_checked;		/* client: a name or address to check */
	char error[TLS_ERROR_MAX];	/* last failure, "" if none */
};

/*
 * Formats fmt, then ": " and OpenSSL's reason for the oldest queued error
 * (when there is one), into the thread's error buffer, points *error_r at
 * it and empties the error queue. Returns -1.
 */
int tls_fail(const char **error_r, const char *fmt, ...) MTA_PRINTF(2, 3);
/* Appends to the string in buf (of size bytes), cutting at the end. */
void tls_append(char *buf, size_t size, const char *fmt, ...) MTA_PRINTF(3, 4);
/* The oldest queued OpenSSL error as text into out ("" when the queue is
 * empty); the queue is emptied. */
void tls_error_text(char *out, size_t size);
/*
 * Settings every context shares: the protocol range of protocols (see
 * tls.h), no compression, no renegotiation, partial writes with a
 * buffer that may move between retries, buffers released when idle.
 */
int tls_ctx_setup(SSL_CTX *ctx, const char *protocols, const char **error_r);
/* For PEM reads: an encrypted key fails instead of prompting on a tty. */
int tls_no_password(char *buf, int size, int rwflag, void *arg);

/* Makes the connection state and puts it under st. */
struct tls_conn *tls_conn_attach(struct stream *st, SSL_CTX *ctx,
    const struct tls_server *srv);
/* Marks conn failed before any I/O: its first read or write fails with
 * errno EPROTO, and tls_stream_error gives error and OpenSSL's reason. */
void tls_conn_fail_early(struct tls_conn *conn, const char *error);

#endif
