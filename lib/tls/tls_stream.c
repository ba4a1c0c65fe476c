/* SPDX-License-Identifier: MIT */
/*
 * A TLS session as a stream transport (base/stream.h), after Dovecot's
 * ssl-iostream: the stream calls read and write as if on a non-blocking
 * socket, and this file maps OpenSSL's answers onto read(2)'s: bytes,
 * 0 for the end of input, -1 with EAGAIN and the readiness the session
 * waits for (a read may need to write during a handshake, and a write may
 * need to read), or -1 with an errno and the reason kept as text.
 *
 * The session reads and writes the fd through a small BIO of its own
 * rather than OpenSSL's socket BIO: recv/send with MSG_DONTWAIT, so no
 * call blocks even if the fd was left blocking, and MSG_NOSIGNAL, so a
 * vanished peer is EPIPE and never SIGPIPE.
 *
 * OpenSSL's error queue is per thread and must be empty before each call
 * for SSL_get_error() to be right; every entry point clears it before and
 * drains it after, so nothing is left for other code of the thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "tls/tls_int.h"

struct tls_session {
	SSL_SESSION *sess;
};

static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static int
tls_bio_write(BIO *bio, const char *data, size_t len, size_t *written_r)
{
	struct tls_conn *conn = BIO_get_data(bio);
	ssize_t n;

	BIO_clear_retry_flags(bio);
	do {
		n = send(conn->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(bio);
		return 0;
	}
	*written_r = (size_t)n;
	return 1;
}

static int
tls_bio_read(BIO *bio, char *data, size_t len, size_t *read_r)
{
	struct tls_conn *conn = BIO_get_data(bio);
	ssize_t n;

	BIO_clear_retry_flags(bio);
	do {
		n = recv(conn->fd, data, len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(bio);
		return 0;
	}
	if (n == 0) {
		conn->eof = 1;
		return 0;
	}
	*read_r = (size_t)n;
	return 1;
}

static long
tls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct tls_conn *conn = BIO_get_data(bio);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* nothing is buffered here */
	case BIO_CTRL_EOF:
		/* Lets OpenSSL tell an unexpected EOF from a failed call. */
		return conn->eof;
	default:
		return 0;
	}
}

static void
tls_bio_init(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern fd");
	if (m == NULL || BIO_meth_set_write_ex(m, tls_bio_write) != 1 ||
	    BIO_meth_set_read_ex(m, tls_bio_read) != 1 ||
	    BIO_meth_set_ctrl(m, tls_bio_ctrl) != 1)
		msg_fatal("TLS: cannot make the fd BIO method");
	tls_bio_method = m;
}

static ssize_t tls_tr_read(void *, int, void *, size_t, int *);
static ssize_t tls_tr_write(void *, int, const void *, size_t, int *);
static size_t tls_tr_pending(void *);
static void tls_tr_free(void *);

static const struct stream_transport tls_transport = {
    tls_tr_read,
    tls_tr_write,
    tls_tr_pending,
    tls_tr_free,
};

/* st's TLS session, or NULL when st has none. */
static struct tls_conn *
tls_conn_of(const struct stream *st)
{
	return st->tr == &tls_transport ? st->tr_ctx : NULL;
}

struct tls_conn *
tls_conn_attach(struct stream *st, SSL_CTX *ctx, const struct tls_server *srv)
{
	char reason[TLS_ERROR_MAX];
	struct tls_conn *conn;
	BIO *bio;

	pthread_once(&tls_bio_once, tls_bio_init);
	conn = xcalloc(1, sizeof(*conn));
	conn->fd = st->fd;
	conn->srv = srv;
	ERR_clear_error();
	conn->ssl = SSL_new(ctx);
	bio = conn->ssl != NULL ? BIO_new(tls_bio_method) : NULL;
	if (bio == NULL) {
		/* Only memory can run out here; as xmalloc, that is fatal. */
		tls_error_text(reason, sizeof(reason));
		msg_fatal("TLS: cannot make a session: %s", reason);
	}
	BIO_set_data(bio, conn);
	BIO_set_init(bio, 1);
	SSL_set_bio(conn->ssl, bio, bio);
	SSL_set_app_data(conn->ssl, conn);
	stream_set_transport(st, &tls_transport, conn);
	return conn;
}

void
tls_conn_fail_early(struct tls_conn *conn, const char *error)
{
	char reason[TLS_ERROR_MAX];

	tls_error_text(reason, sizeof(reason));
	snprintf(conn->error, sizeof(conn->error), "%s", error);
	if (reason[0] != '\0')
		tls_append(conn->error, sizeof(conn->error), ": %s", reason);
	conn->failed = 1;
	conn->failed_errno = EPROTO;
}

/* Repeats a fatal result: reads see it again, writes see EPIPE for EOF. */
static ssize_t
tls_conn_failed(const struct tls_conn *conn, int writing)
{
	if (conn->failed_errno == 0 && !writing)
		return 0;
	errno = conn->failed_errno != 0 ? conn->failed_errno : EPIPE;
	return -1;
}

/* Keeps the queued OpenSSL reason, with the verification result when
 * that is what failed, as the session's error text. */
static void
tls_conn_keep_reason(struct tls_conn *conn)
{
	long verify = SSL_get_verify_result(conn->ssl);

	tls_error_text(conn->error, sizeof(conn->error));
	if (conn->error[0] == '\0')
		snprintf(
		    conn->error, sizeof(conn->error), "TLS protocol error");
	if (conn->srv == NULL && verify != X509_V_OK)
		tls_append(conn->error, sizeof(conn->error), ": %s",
		    X509_verify_cert_error_string(verify));
}

/*
 * Remembers a completed handshake. After a fatal error OpenSSL's state
 * machine reads as "in init" again, so its own answer cannot serve for
 * logs or for deciding about close_notify.
 */
static void
tls_conn_note_done(struct tls_conn *conn)
{
	if (!conn->handshake_done && SSL_is_init_finished(conn->ssl))
		conn->handshake_done = 1;
}

/*
 * The peer closed the connection without close_notify: the end of input
 * (SMTP and POP3 frame their own data, so a truncation cannot pass for a
 * whole message), with the text kept for the log.
 */
static ssize_t
tls_conn_lost(struct tls_conn *conn, int writing)
{
	conn->failed = 1;
	conn->failed_errno = 0;
	snprintf(conn->error, sizeof(conn->error), "%s",
	    conn->handshake_done
	        ? "connection closed without close_notify"
	        : "connection closed during the TLS handshake");
	return tls_conn_failed(conn, writing);
}

/*
 * Maps a failed SSL_read_ex/SSL_write_ex (ret, and errno just after it)
 * onto the transport's contract.
 */
static ssize_t
tls_conn_result(
    struct tls_conn *conn, int ret, int saved_errno, int writing, int *want_r)
{
	unsigned long e;

	switch (SSL_get_error(conn->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		ERR_clear_error();
		*want_r = STREAM_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		*want_r = STREAM_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify: the end of input; the session stays usable
		 * for a close_notify of our own. */
		ERR_clear_error();
		if (!writing)
			return 0;
		errno = EPIPE;
		return -1;
	case SSL_ERROR_SYSCALL:
		conn->failed = 1;
		if (saved_errno != 0) {
			ERR_clear_error();
			snprintf(conn->error, sizeof(conn->error), "%s",
			    strerror(saved_errno));
			conn->failed_errno = saved_errno;
			return tls_conn_failed(conn, writing);
		}
		if (ERR_peek_error() != 0)
			break;
		/* No errno, no reason: the peer closed the connection. */
		return tls_conn_lost(conn, writing);
	case SSL_ERROR_SSL:
		conn->failed = 1;
		/* OpenSSL 3 reports the same vanished peer this way. */
		e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return tls_conn_lost(conn, writing);
		}
		break;
	default:
		conn->failed = 1;
		break;
	}
	tls_conn_keep_reason(conn);
	conn->failed_errno = EPROTO;
	return tls_conn_failed(conn, writing);
}

/* One SSL_read_ex (wdata NULL) or SSL_write_ex, mapped. */
static ssize_t
tls_conn_io(struct tls_conn *conn, int fd, void *rdata, const void *wdata,
    size_t len, int *want_r)
{
	int writing = wdata != NULL, ret, saved;
	size_t n = 0;

	if (conn->failed)
		return tls_conn_failed(conn, writing);
	conn->fd = fd;
	ERR_clear_error();
	errno = 0;
	ret = writing ? SSL_write_ex(conn->ssl, wdata, len, &n)
	              : SSL_read_ex(conn->ssl, rdata, len, &n);
	saved = errno;
	tls_conn_note_done(conn);
	if (ret == 1) {
		ERR_clear_error();
		return (ssize_t)n;
	}
	return tls_conn_result(conn, ret, saved, writing, want_r);
}

static ssize_t
tls_tr_read(void *ctx, int fd, void *data, size_t len, int *want_r)
{
	return tls_conn_io(ctx, fd, data, NULL, len, want_r);
}

static ssize_t
tls_tr_write(void *ctx, int fd, const void *data, size_t len, int *want_r)
{
	return tls_conn_io(ctx, fd, NULL, data, len, want_r);
}

static size_t
tls_tr_pending(void *ctx)
{
	struct tls_conn *conn = ctx;
	int n;

	if (conn->failed)
		return 0;
	n = SSL_pending(conn->ssl);
	return n > 0 ? (size_t)n : 0;
}

static void
tls_tr_free(void *ctx)
{
	struct tls_conn *conn = ctx;

	/*
	 * Best effort: one non-blocking attempt at close_notify, which
	 * OpenSSL forbids after a fatal error and which means nothing
	 * before the handshake is done. Nobody waits for the peer's.
	 */
	ERR_clear_error();
	if (!conn->failed && conn->handshake_done)
		(void)SSL_shutdown(conn->ssl);
	ERR_clear_error();
	SSL_free(conn->ssl);
	free(conn);
}

void
tls_stream_server(struct stream *st, struct tls_server *srv)
{
	struct tls_conn *conn = tls_conn_attach(st, srv->ctx, srv);

	SSL_set_accept_state(conn->ssl);
}

int
tls_stream_handshake_done(const struct stream *st)
{
	const struct tls_conn *conn = tls_conn_of(st);

	return conn != NULL && conn->handshake_done;
}

const char *
tls_stream_error(const struct stream *st)
{
	const struct tls_conn *conn = tls_conn_of(st);

	return conn != NULL && conn->error[0] != '\0' ? conn->error : NULL;
}

/* The CN of cert's subject into out ("" when there is none). */
static void
tls_cert_cn(X509 *cert, char *out, size_t size)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	const X509_NAME_ENTRY *entry;
	unsigned char *utf8 = NULL;
	int idx, len;

	out[0] = '\0';
	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return;
	entry = X509_NAME_get_entry(name, idx);
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
	if (len >= 0)
		snprintf(out, size, "%.*s", len, (const char *)utf8);
	OPENSSL_free(utf8);
	ERR_clear_error();
}

int
tls_stream_info(const struct stream *st, struct tls_info *out)
{
	const struct tls_conn *conn = tls_conn_of(st);
	const SSL_CIPHER *cipher;
	X509 *peer;

	if (conn == NULL || !conn->handshake_done)
		return -1;
	memset(out, 0, sizeof(*out));
	snprintf(out->protocol, sizeof(out->protocol), "%s",
	    SSL_get_version(conn->ssl));
	cipher = SSL_get_current_cipher(conn->ssl);
	if (cipher != NULL) {
		snprintf(out->cipher, sizeof(out->cipher), "%s",
		    SSL_CIPHER_get_name(cipher));
		out->bits = SSL_CIPHER_get_bits(cipher, &out->alg_bits);
	}
	snprintf(out->sni, sizeof(out->sni), "%s", conn->sni);
	out->resumed = SSL_session_reused(conn->ssl);
	if (conn->srv == NULL) {
		peer = SSL_get0_peer_certificate(conn->ssl);
		if (peer != NULL) {
			tls_cert_cn(peer, out->peer_cn, sizeof(out->peer_cn));
			out->peer_verified =
			    conn->name_checked &&
			    SSL_get_verify_result(conn->ssl) == X509_V_OK;
		}
	}
	return 0;
}

struct tls_session *
tls_stream_session_get(const struct stream *st)
{
	const struct tls_conn *conn = tls_conn_of(st);
	struct tls_session *s;
	SSL_SESSION *sess;

	if (conn == NULL || conn->srv != NULL)
		return NULL;
	sess = SSL_get1_session(conn->ssl);
	if (sess == NULL)
		return NULL;
	if (!SSL_SESSION_is_resumable(sess)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	s = xmalloc(sizeof(*s));
	s->sess = sess;
	return s;
}

void
tls_stream_session_set(struct stream *st, struct tls_session *sess)
{
	struct tls_conn *conn = tls_conn_of(st);

	if (conn == NULL || conn->srv != NULL || sess == NULL)
		return;
	ERR_clear_error();
	/* A session that does not fit (another protocol) is just not
	 * offered; the handshake is then a full one. */
	(void)SSL_set_session(conn->ssl, sess->sess);
	ERR_clear_error();
}

void
tls_session_free(struct tls_session **sess_r)
{
	struct tls_session *s = *sess_r;

	if (s == NULL)
		return;
	SSL_SESSION_free(s->sess);
	free(s);
	*sess_r = NULL;
}
