/* SPDX-License-Identifier: MIT */
/*
 * The connection under a POP3 or IMAP client session: a non-blocking
 * socket in a struct stream, TLS from lib/tls under it (implicit, or
 * after STLS/STARTTLS, RFC 2595 and RFC 8314), and blocking calls that
 * each wait at most $fetch_timeout for the peer, and never past the
 * session's deadline ($fetch_session_timeout from the connect) or the
 * current message's ($fetch_message_timeout from its command): a server
 * that trickles a byte now and then cannot hold the daemon, which
 * serves every account and `tern fetch` one after the other. Host names
 * are resolved through lib/dns ($dns_servers, within $fetch_timeout;
 * getaddrinfo has no deadline of its own), addresses need no lookup.
 * The certificate is
 * verified against the system's CAs or the account's tls_ca_file and
 * must name the host of the URL, unless the account says tls_verify=no.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/event.h"
#include "base/file.h"
#include "base/log.h"
#include "base/str.h"
#include "dns/dns.h"
#include "dns/dns_mx.h"
#include "mail/attr_client.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "tls/tls.h"
#include "fetch.h"

#define FETCH_MS_PER_SEC 1000
#define FETCH_ERROR_MAX 512

static char fetch_net_error[FETCH_ERROR_MAX];

/* A private loop for the blocking daemon's asynchronous clients: the
 * resolver and proxymap (the recipient tables). */
static struct event_loop *fetch_dns_loop;
static struct dns *fetch_dns;
static struct attr_client *fetch_proxymap;
/* A table answer is a few words. */
#define FETCH_PROXYMAP_REPLY_MAX 4096

static uint64_t
fetch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * FETCH_MS_PER_SEC +
	       (uint64_t)ts.tv_nsec / 1000000;
}

/* What one wait may take: fetch_timeout, less when a deadline is
 * nearer (0 once one has passed); sets why for the error text. */
static int
fetch_conn_budget(struct fetch_conn *c)
{
	uint64_t now = fetch_now_ms(), t = (uint64_t)c->timeout_ms;

	c->why = "timeout";
	if (c->message_end != 0 && (c->message_end <= now ||
	                               c->message_end - now < t)) {
		t = c->message_end > now ? c->message_end - now : 0;
		c->why = "a message took longer than fetch_message_timeout";
	}
	if (c->session_end != 0 && (c->session_end <= now ||
	                               c->session_end - now < t)) {
		t = c->session_end > now ? c->session_end - now : 0;
		c->why = "the session took longer than fetch_session_timeout";
	}
	return (int)t;
}

int
fetch_net_init(const char **error_r)
{
	unsigned ms = (unsigned)var_fetch_timeout * FETCH_MS_PER_SEC;

	if (ms > DNS_TIMEOUT_MAX_MS)
		ms = DNS_TIMEOUT_MAX_MS;
	fetch_dns_loop = event_loop_create();
	fetch_dns = dns_create(fetch_dns_loop, var_dns_servers, ms, error_r);
	if (fetch_dns == NULL) {
		event_loop_free(&fetch_dns_loop);
		return -1;
	}
	return 0;
}

struct fetch_table_wait {
	int done;
	int status;
};

static void
fetch_table_done(const struct attr_list *reply, const char *error,
    void *ctx)
{
	struct fetch_table_wait *w = ctx;
	const char *status = reply != NULL ? attr_get(reply, "status") : NULL;

	w->done = 1;
	if (status != NULL && strcmp(status, "found") == 0)
		w->status = 1;
	else if (status != NULL && strcmp(status, "notfound") == 0)
		w->status = 0;
	else {
		msg_warn("proxymap lookup: %s",
		    error != NULL ? error : "lookup failure");
		w->status = -1;
	}
	event_loop_stop(fetch_dns_loop);
}

int
fetch_table_lookup(const char *table, const char *key)
{
	struct fetch_table_wait w = {0, -1};
	struct buf *f;
	char *path;

	if (fetch_proxymap == NULL) {
		path = queue_path(QUEUE_PRIVATE, "proxymap");
		fetch_proxymap = attr_client_create(fetch_dns_loop, path, 0,
		    (uint64_t)var_fetch_timeout * FETCH_MS_PER_SEC,
		    FETCH_PROXYMAP_REPLY_MAX, 0);
		free(path);
	}
	f = attr_client_frame(fetch_proxymap);
	if (attr_put_str(f, "request", "lookup") < 0 ||
	    attr_put_str(f, "table", table) < 0 ||
	    attr_put_str(f, "key", key) < 0)
		return -1;
	attr_client_send(fetch_proxymap, fetch_table_done, &w);
	while (!w.done)
		if (event_loop_run(fetch_dns_loop) < 0) {
			attr_client_cancel(fetch_proxymap, &w);
			return -1;
		}
	return w.status;
}

void
fetch_net_shutdown(void)
{
	attr_client_free(&fetch_proxymap);
	dns_free(&fetch_dns);
	event_loop_free(&fetch_dns_loop);
}

struct fetch_lookup {
	int done;
	struct sockaddr_storage addr[DNS_MX_TARGETS_MAX];
	socklen_t addrlen[DNS_MX_TARGETS_MAX];
	int n;
};

static void
fetch_lookup_done(const struct dns_mx_result *r, void *ctx)
{
	struct fetch_lookup *l = ctx;
	int i;

	l->done = 1;
	if (r->status == DNS_MX_OK)
		for (i = 0; i < r->n && l->n < DNS_MX_TARGETS_MAX; i++) {
			memcpy(&l->addr[l->n], &r->t[i].addr, r->t[i].addrlen);
			l->addrlen[l->n++] = r->t[i].addrlen;
		}
	else
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "cannot resolve %s: %s", log_sanitize(r->domain, 255),
		    r->reason);
	event_loop_stop(fetch_dns_loop);
}

/* host's addresses with port set: an address as it is, a name through
 * the resolver (whose every query ends within fetch_timeout). 0 or -1
 * (fetch_net_error). */
static int
fetch_resolve(const char *host, unsigned port, struct fetch_lookup *l)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr[0];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr[0];
	struct dns_mx_query *q;
	int i;

	memset(l, 0, sizeof(*l));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		l->addrlen[0] = sizeof(*sin);
		l->n = 1;
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		l->addrlen[0] = sizeof(*sin6);
		l->n = 1;
	} else {
		if (fetch_dns == NULL)
			msg_panic("fetch_resolve before fetch_net_init");
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "cannot resolve %s", log_sanitize(host, 255));
		q = dns_mx_resolve(fetch_dns, host, DNS_MX_NO_MX, DNS_ADDR_ANY,
		    fetch_lookup_done, l);
		while (!l->done)
			if (event_loop_run(fetch_dns_loop) < 0) {
				dns_mx_cancel(&q);
				snprintf(fetch_net_error, sizeof(fetch_net_error),
				    "cannot resolve %s: event loop: %s",
				    log_sanitize(host, 255), strerror(errno));
				return -1;
			}
		if (l->n == 0)
			return -1;
	}
	for (i = 0; i < l->n; i++) {
		if (l->addr[i].ss_family == AF_INET)
			((struct sockaddr_in *)&l->addr[i])->sin_port =
			    htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&l->addr[i])->sin6_port =
			    htons((uint16_t)port);
	}
	return 0;
}

/* Connects one address within the deadline; the fd or -1. */
static int
fetch_connect_addr(const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, salen) == 0)
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
	struct fetch_lookup *l;
	uint64_t portn;
	int i, fd = -1, err = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = (int)(var_fetch_timeout * FETCH_MS_PER_SEC);
	c->session_end = fetch_now_ms() +
	                 (uint64_t)var_fetch_session_timeout * FETCH_MS_PER_SEC;
	*error_r = fetch_net_error;
	if (str_to_u64(port, 65535, &portn) < 0 || portn == 0) {
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "bad port %s", log_sanitize(port, 16));
		return -1;
	}
	l = xmalloc(sizeof(*l));
	if (fetch_resolve(host, (unsigned)portn, l) < 0) {
		free(l);
		return -1;
	}
	for (i = 0; i < l->n && fd < 0; i++) {
		fd = fetch_connect_addr((struct sockaddr *)&l->addr[i],
		    l->addrlen[i], fetch_conn_budget(c));
		if (fd < 0)
			err = errno;
		else if (getnameinfo((struct sockaddr *)&l->addr[i],
		             l->addrlen[i], c->peer_addr, sizeof(c->peer_addr),
		             NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
	}
	free(l);
	if (fd < 0) {
		snprintf(fetch_net_error, sizeof(fetch_net_error),
		    "cannot connect to %s port %s: %s", log_sanitize(host, 255),
		    port, strerror(err));
		return -1;
	}
	c->fd = fd;
	stream_init(&c->st, fd);
	return 0;
}

void
fetch_conn_message_begin(struct fetch_conn *c)
{
	c->message_end = fetch_now_ms() +
	                 (uint64_t)var_fetch_message_timeout * FETCH_MS_PER_SEC;
}

void
fetch_conn_message_end(struct fetch_conn *c)
{
	c->message_end = 0;
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
		n = poll(&pfd, 1, fetch_conn_budget(c));
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

void
fetch_fail(struct fetch_summary *sum, const char *fmt, ...)
{
	char text[sizeof(sum->error)];
	va_list ap;

	if (sum->error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(sum->error, sizeof(sum->error), "%s",
	    log_sanitize(text, sizeof(text) - 1));
}

/* Keeps the budget's reason for a timeout (fetch_conn_budget). */
static void
fetch_conn_note(struct fetch_conn *c, enum stream_result r)
{
	if (r != STREAM_TIMEOUT)
		c->why = r == STREAM_EOF ? "the server closed the connection"
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
		n = poll(&pfd, 1, fetch_conn_budget(c));
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
	r = stream_read_line(&c->st, line, max, fetch_conn_budget(c), NULL);
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
	return stream_flush(&c->st, fetch_conn_budget(c)) == STREAM_OK ? 0 : -1;
}

void
fetch_conn_close(struct fetch_conn *c)
{
	if (c->fd >= 0)
		stream_close(&c->st);
	c->fd = -1;
}
