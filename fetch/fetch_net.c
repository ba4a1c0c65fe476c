/* SPDX-License-Identifier: MIT */
/*
 * The connection under a POP3 or IMAP client session: a non-blocking
 * socket in a struct stream, TLS from lib/tls under it (implicit, or
 * after STLS/STARTTLS, RFC 2595 and RFC 8314), and blocking calls that
 * each wait at most $fetch_timeout for the peer. The certificate is
 * verified against the system's CAs or the account's tls_ca_file and
 * must name the host of the URL, unless the account says tls_verify=no.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "mail/params.h"
#include "tls/tls.h"
#include "fetch.h"

#define FETCH_MS_PER_SEC 1000
#define FETCH_ERROR_MAX 512

static char fetch_net_error[FETCH_ERROR_MAX];

/* Connects one address within the deadline; the fd or -1. */
static int
fetch_connect_addr(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		close(fd);
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		close(fd);
		errno = err != 0 ? err : EIO;
		return -1;
	}
	return fd;
}

int
fetch_conn_open(struct fetch_conn *c, const char *host, const char *port,
    const char **error_r)
{
	struct addrinfo hints, *res = NULL, *ai;
	int r, fd = -1, err = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = (int)(var_fetch_timeout * FETCH_MS_PER_SEC);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	/* getaddrinfo has no deadline of its own; the system resolver's
	 * timeouts (resolv.conf) bound it. */
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "cannot resolve %s: %s", log_sanitize(host, 255),
		    gai_strerror(r));
		*error_r = fetch_net_error;
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = fetch_connect_addr(ai, c->timeout_ms);
		if (fd < 0)
			err = errno;
		else if (getnameinfo(ai->ai_addr, ai->ai_addrlen, c->peer_addr,
		             sizeof(c->peer_addr), NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "cannot connect to %s port %s: %s", log_sanitize(host, 255),
		    port, strerror(err));
		*error_r = fetch_net_error;
		return -1;
	}
	c->fd = fd;
	stream_init(&c->st, fd);
	return 0;
}

/* Drives the handshake until it is done (no application data needs
 * to follow: after STLS the server waits for us). */
static int
fetch_conn_handshake(struct fetch_conn *c)
{
	struct pollfd pfd;
	enum stream_result r;
	int ev, n;

	while (!tls_stream_handshake_done(&c->st)) {
		r = stream_fill(&c->st);
		if (r == STREAM_OK)
			continue;
		if (r != STREAM_AGAIN)
			return -1;
		ev = stream_events(&c->st, 1);
		pfd.fd = c->fd;
		pfd.events = (short)(((ev & STREAM_WANT_READ) ? POLLIN : 0) |
		                     ((ev & STREAM_WANT_WRITE) ? POLLOUT : 0));
		n = poll(&pfd, 1, c->timeout_ms);
		if (n == 0 || (n < 0 && errno != EINTR))
			return -1;
	}
	return 0;
}

int
fetch_conn_tls(struct fetch_conn *c, struct fetch_account *a,
    const char **error_r)
{
	struct tls_client_config cfg;
	struct tls_info info;
	const char *err;

	if (a->tls == NULL) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.ca_file = a->tls_ca_file;
		cfg.verify = a->tls_verify;
		if (tls_client_create(&cfg, &a->tls, &err) < 0) {
			snprintf(fetch_net_error, sizeof(fetch_net_error),
			    "TLS set-up: %s", err);
			*error_r = fetch_net_error;
			return -1;
		}
	}
	/* RFC 2595 / 3207: nothing the server sent before the handshake
	 * may count as protected. */
	if (stream_buffered(&c->st) > 0) {
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "the server sent data before the TLS handshake");
		*error_r = fetch_net_error;
		return -1;
	}
	tls_stream_client(&c->st, a->tls, a->host);
	c->tls = 1;
	/* The handshake runs inside the first read: wait for it here so a
	 * bad certificate is reported as such. */
	(void)fetch_conn_handshake(c);
	if (!tls_stream_handshake_done(&c->st) ||
	    tls_stream_info(&c->st, &info) < 0) {
		err = tls_stream_error(&c->st);
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "TLS handshake with %s failed: %s",
		    log_sanitize(a->host, 255),
		    err != NULL ? err : "the connection closed");
		*error_r = fetch_net_error;
		return -1;
	}
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s with cipher %s (%d/%d bits)",
	    info.protocol, info.cipher, info.bits, info.alg_bits);
	msg_info("account %s: TLS %s, %s, peer CN=%s, %s", a->name,
	    info.protocol, info.cipher, log_sanitize(info.peer_cn, TLS_CN_MAX),
	    info.peer_verified ? "verified" : "not verified (tls_verify=no)");
	return 0;
}

static void
fetch_conn_note(struct fetch_conn *c, enum stream_result r)
{
	c->why = r == STREAM_TIMEOUT ? "timeout"
	       : r == STREAM_EOF     ? "the server closed the connection"
	                             : NULL;
}

enum stream_result
fetch_conn_wait(struct fetch_conn *c)
{
	struct pollfd pfd;
	enum stream_result r;
	int ev, n;

	for (;;) {
		if (stream_buffered(&c->st) > 0)
			return STREAM_OK;
		if (stream_input_ready(&c->st)) {
			r = stream_fill(&c->st);
			if (r == STREAM_AGAIN)
				continue;
			return r;
		}
		ev = stream_events(&c->st, 1);
		pfd.fd = c->fd;
		pfd.events = (short)(((ev & STREAM_WANT_READ) ? POLLIN : 0) |
		                     ((ev & STREAM_WANT_WRITE) ? POLLOUT : 0));
		n = poll(&pfd, 1, c->timeout_ms);
		if (n == 0) {
			fetch_conn_note(c, STREAM_TIMEOUT);
			return STREAM_TIMEOUT;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return STREAM_ERROR;
		}
		if (stream_unsent(&c->st) > 0 &&
		    stream_try_flush(&c->st) == STREAM_ERROR)
			return STREAM_ERROR;
		r = stream_fill(&c->st);
		if (r != STREAM_OK && r != STREAM_AGAIN) {
			fetch_conn_note(c, r);
			return r;
		}
	}
}

enum stream_result
fetch_conn_line_max(struct fetch_conn *c, struct buf *line, size_t max)
{
	enum stream_result r;

	buf_reset(line);
	r = stream_read_line(&c->st, line, max, c->timeout_ms, NULL);
	fetch_conn_note(c, r);
	return r;
}

enum stream_result
fetch_conn_line(struct fetch_conn *c, struct buf *line)
{
	return fetch_conn_line_max(c, line, FETCH_LINE_MAX);
}

const char *
fetch_conn_why(const struct fetch_conn *c, const char *broke)
{
	return c->why != NULL ? c->why : broke;
}

int
fetch_conn_cmd(struct fetch_conn *c, const char *fmt, ...)
{
	va_list ap;
	char line[FETCH_CMD_MAX];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 >= sizeof(line))
		return -1;
	if (stream_write(&c->st, line, (size_t)n) < 0 ||
	    stream_write(&c->st, "\r\n", 2) < 0)
		return -1;
	explicit_bzero(line, sizeof(line));
	return stream_flush(&c->st, c->timeout_ms) == STREAM_OK ? 0 : -1;
}

void
fetch_conn_close(struct fetch_conn *c)
{
	if (c->fd >= 0)
		stream_close(&c->st);
	c->fd = -1;
}
