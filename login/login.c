/* SPDX-License-Identifier: MIT */
/*
 * login: the pre-login process of the login / session split
 * (lib/mail/login_proto.h), as Dovecot's pop3-login. It runs as
 * $login_user, chrooted to $login_directory, and serves many clients per
 * process from the event loop: the greeting, the pre-login commands,
 * STLS or implicit TLS (RFC 2595, RFC 8314), limits per client address
 * and per process. Connections per address are counted by the anvil of
 * $login_directory/anvil over every login process of the protocol, so
 * the limit holds however the kernel spreads clients over processes;
 * without that anvil, each process counts its own. A login attempt goes
 * to spawn with the client's descriptor (SCM_RIGHTS): spawn checks the
 * password with auth and starts the session as the mailbox owner. A
 * plaintext client is then forgotten here; a TLS client's connection
 * stays (its keys never reach a process of the mailbox owner) and its
 * plaintext is relayed to the session over a socketpair, both ways, with
 * bounded buffers, until either side ends.
 *
 * This file is the part every protocol shares; the POP3 dialogue is in
 * login_pop3.c, IMAP's in login_imap.c, behind struct login_protocol
 * (login.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/login_proto.h"
#include "mail/netlist.h"
#include "mail/params.h"
#include "mail/server.h"
#include "tls/tls.h"
#include "login.h"

/* Replies waiting for a client that does not read: commands stop being
 * taken above the mark, and a client past the maximum is dropped. */
#define LOGIN_OUT_HIGH		(16 * 1024)
#define LOGIN_OUT_MAX		(64 * 1024)
/* A client that reads none of its replies for this long is dropped. */
#define LOGIN_WRITE_TIMEOUT_MS	(60 * 1000)
/* One reply line as formatted. */
#define LOGIN_REPLY_MAX		1024
/* spawn's reply: status, user and a short text. */
#define LOGIN_SPAWN_REPLY_MAX	4096
/* Plaintext held for the other side of a relay before a side stops
 * being read. */
#define LOGIN_RELAY_HIGH	(64 * 1024)
/* A relay with no traffic either way for this long (or twice the
 * protocol's idle timeout, if longer) is cut: the session has a timeout
 * of its own, this one only catches what slipped past it. */
#define LOGIN_RELAY_IDLE_MS	(60 * 60 * 1000ULL)
/* anvil answers at once; a silent one must not hold greetings long. */
#define LOGIN_ANVIL_TIMEOUT_MS	5000
#define LOGIN_ANVIL_REPLY_MAX	1024
/* Text from the client in one log line. */
#define LOGIN_LOG_TEXT_MAX	128
#define MS_PER_SEC		1000

enum login_state {
	LOGIN_STATE_PRELOGIN,	/* the protocol's dialogue */
	LOGIN_STATE_SPAWN,	/* a login attempt is with spawn */
	LOGIN_STATE_RELAY,	/* logged in over TLS: relaying plaintext */
	LOGIN_STATE_COUNT,	/* waiting for anvil's count, not greeted */
};

struct login_client {
	struct login_client *prev, *next;
	struct event_loop *loop;
	void *proto;
	enum login_state state;
	int fd;
	struct stream st;
	struct event_fd *ev;
	struct event_timer *timer;
	struct buf line;
	char addr[INET6_ADDRSTRLEN], local_addr[INET6_ADDRSTRLEN];
	unsigned port, local_port;
	int trusted;
	int tls_active, tls_starting;
	int quit, close_now;
	/* Why login.c ends the connection, for the log; NULL: the client
	 * left or quit. */
	const char *reason;
	int bad_commands, attempts, failures;
	/* anvil counts this connection: it must hear when it ends. */
	int anvil_counted;
	uint64_t connect_ms, last_io_ms, write_ms;
	char *user, *method;	/* of the last attempt, for the log */
	/* LOGIN_STATE_SPAWN */
	int spawn_fd;
	struct event_fd *spawn_ev;
	struct buf spawn_out, spawn_in;
	size_t spawn_sent, spawn_input;
	int pass_fd;		/* the descriptor that goes to spawn */
	uint64_t spawn_ms;
	/* Plaintext: replies queued before the attempt go out first, or
	 * they would follow the session's greeting. */
	int spawn_hold;
	/* TLS clients after the login: our end of the socketpair */
	int relay_fd;
	struct stream relay;
	struct event_fd *relay_ev;
	int client_eof, relay_eof, relay_shut;
};

static const struct login_protocol *login_proto;
static struct tls_server *login_tls;
static struct netlist *login_trusted;
static char *login_spawn_path;
static struct attr_client *login_anvil;
static char *login_anvil_path;
/* Said once per outage of anvil, not once per connection. */
static int login_anvil_warned;
static struct login_client *clients;
static int client_count;

static const struct login_protocol *const login_protocols[] = {
    &login_pop3,
    &login_imap,
};

static void client_after(struct login_client *c);
static void client_close(struct login_client *c);
static void relay_pump(struct login_client *c);

void *
login_client_proto(struct login_client *c)
{
	return c->proto;
}

void
login_client_set_proto(struct login_client *c, void *proto)
{
	c->proto = proto;
}

int
login_client_tls_active(const struct login_client *c)
{
	return c->tls_active;
}

int
login_client_tls_available(const struct login_client *c)
{
	return login_tls != NULL && !c->tls_active && !c->tls_starting;
}

int
login_client_plaintext_allowed(const struct login_client *c)
{
	return !var_disable_plaintext_auth || c->tls_active || c->trusted;
}

int
login_client_failures(const struct login_client *c)
{
	return c->failures;
}

const char *
login_client_addr(const struct login_client *c)
{
	return c->addr;
}

const char *
login_client_log_fields(const struct login_client *c)
{
	static char text[LOGIN_REPLY_MAX];

	snprintf(text, sizeof(text), "user=<%s>, %s%s%srip=%s, lip=%s%s",
	    c->user != NULL ? log_sanitize(c->user, LOGIN_LOG_TEXT_MAX) : "",
	    c->method != NULL ? "method=" : "",
	    c->method != NULL ? c->method : "", c->method != NULL ? ", " : "",
	    c->addr, c->local_addr,
	    c->tls_active ? ", TLS" : (c->trusted ? ", secured" : ""));
	return text;
}

void
login_client_reply(struct login_client *c, const char *fmt, ...)
{
	struct buf *out = &c->st.wbuf;
	size_t start = out->len, i;
	va_list ap;
	int r;

	if (c->close_now)
		return;
	if (stream_unsent(&c->st) == 0)
		c->write_ms = event_now_ms(c->loop);
	va_start(ap, fmt);
	r = buf_vprintf(out, fmt, ap);
	va_end(ap);
	if (r == 0) {
		/* Client text echoed in a reply must not end the line. */
		for (i = start; i < out->len; i++)
			if ((unsigned char)out->data[i] < 0x20 ||
			    (unsigned char)out->data[i] == 0x7f)
				out->data[i] = '?';
		r = buf_append(out, "\r\n", 2);
	}
	if (r < 0 || stream_unsent(&c->st) > LOGIN_OUT_MAX) {
		buf_truncate(out, start);
		c->reason = "Client does not read its replies";
		c->close_now = 1;
	}
}

void
login_client_quit(struct login_client *c)
{
	c->quit = 1;
}

int
login_client_bad_command(struct login_client *c)
{
	if (++c->bad_commands < LOGIN_BAD_COMMANDS_MAX)
		return 0;
	c->reason = "Too many bad commands";
	return 1;
}

int
login_client_starttls(struct login_client *c)
{
	if (login_tls == NULL || c->tls_active)
		msg_panic("login_client_starttls without TLS to start");
	if (stream_buffered(&c->st) > 0 || stream_input_ready(&c->st)) {
		/* STLS (POP3) or STARTTLS (IMAP): the protocol's log name
		 * says which. */
		msg_info("%s: input pipelined after starting TLS: possible "
		         "command injection",
		    login_proto->log_name);
		c->reason = "Input pipelined after starting TLS";
		return -1;
	}
	c->tls_starting = 1;
	return 0;
}

/* ------------------------------------------------------------------ I/O */

/* For buffers that held a password. */
static void
buf_wipe(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->len);
}

static int
client_wants_input(const struct login_client *c)
{
	return c->state == LOGIN_STATE_PRELOGIN && !c->quit && !c->close_now &&
	       !c->tls_starting && stream_unsent(&c->st) < LOGIN_OUT_HIGH;
}

static void
client_write(struct login_client *c)
{
	size_t before = stream_unsent(&c->st);

	if (before == 0 || c->close_now)
		return;
	if (stream_try_flush(&c->st) == STREAM_ERROR) {
		c->reason = "Connection lost";
		c->close_now = 1;
		return;
	}
	if (stream_unsent(&c->st) < before)
		c->write_ms = event_now_ms(c->loop);
}

const char *
login_client_input(struct login_client *c, size_t *len_r)
{
	return stream_peek(&c->st, len_r);
}

void
login_client_input_consume(struct login_client *c, size_t n)
{
	stream_consume(&c->st, n);
}

/* A protocol that reads its input itself: while it takes some. */
static void
client_input_raw(struct login_client *c)
{
	size_t before;

	while (client_wants_input(c)) {
		before = stream_buffered(&c->st);
		if (before == 0) {
			if (c->st.eof)
				c->close_now = 1;
			return;
		}
		login_proto->input(c);
		if (stream_buffered(&c->st) == before) {
			/* It waits for more, which will never come. */
			if (c->st.eof && client_wants_input(c))
				c->close_now = 1;
			return;
		}
	}
}

/* Runs the complete lines buffered, while the dialogue takes them. */
static void
client_input(struct login_client *c)
{
	enum stream_result r;

	if (login_proto->input != NULL) {
		client_input_raw(c);
		return;
	}
	while (client_wants_input(c)) {
		r = stream_next_line(
		    &c->st, &c->line, login_proto->line_max, NULL);
		if (r == STREAM_AGAIN)
			return;
		if (r == STREAM_EOF || r == STREAM_ERROR) {
			c->close_now = 1;
			return;
		}
		if (r == STREAM_TOOLONG) {
			c->reason = "Line too long";
			login_proto->line_too_long(c);
		} else {
			login_proto->line(c, c->line.data, c->line.len);
		}
		/* The line may have held a password. */
		buf_wipe(&c->line);
		buf_reset(&c->line);
	}
}

/* The nearest deadline of the connection, 0 for none. */
static uint64_t
client_deadline(const struct login_client *c, const char **what_r)
{
	uint64_t at, idle = (uint64_t)login_proto->idle_timeout() * MS_PER_SEC;

	switch (c->state) {
	case LOGIN_STATE_SPAWN:
		*what_r = "spawn";
		return c->spawn_ms + LOGIN_SPAWN_TIMEOUT_MS;
	case LOGIN_STATE_RELAY:
		*what_r = "relay";
		return c->last_io_ms + (2 * idle > LOGIN_RELAY_IDLE_MS
		                               ? 2 * idle
		                               : LOGIN_RELAY_IDLE_MS);
	default:
		break;
	}
	*what_r = "Inactivity";
	at = c->last_io_ms + idle;
	if (stream_unsent(&c->st) > 0 &&
	    c->write_ms + LOGIN_WRITE_TIMEOUT_MS < at) {
		*what_r = "Client does not read its replies";
		at = c->write_ms + LOGIN_WRITE_TIMEOUT_MS;
	}
	return at;
}

static void client_timeout(struct event_timer *t, void *ctx);

static void
client_arm(struct login_client *c)
{
	const char *what;
	uint64_t at = client_deadline(c, &what), now = event_now_ms(c->loop);
	uint64_t ms = at > now ? at - now : 0;

	if (c->timer == NULL)
		c->timer = event_timer_add(c->loop, ms, client_timeout, c);
	else
		event_timer_reset(c->timer, ms);
}

/* The common tail of the dialogue's callbacks (c may be freed). */
static void
client_after(struct login_client *c)
{
	size_t before;

	if (c->state == LOGIN_STATE_RELAY) {
		relay_pump(c);
		return;
	}
	client_write(c);
	/* Input already decoded gets no new READ event: run it now that
	 * whatever held it up is over. */
	while (client_wants_input(c)) {
		before = stream_buffered(&c->st);
		if (before == 0) {
			if (!stream_input_ready(&c->st) ||
			    stream_fill(&c->st) != STREAM_OK)
				break;
			before = stream_buffered(&c->st);
		}
		client_input(c);
		client_write(c);
		if (c->state != LOGIN_STATE_PRELOGIN ||
		    stream_buffered(&c->st) == before)
			break;
	}
	if (c->state == LOGIN_STATE_RELAY) {
		relay_pump(c);
		return;
	}
	if (c->state == LOGIN_STATE_SPAWN && c->spawn_hold &&
	    stream_unsent(&c->st) == 0) {
		c->spawn_hold = 0;
		event_fd_set(c->spawn_ev, EVENT_WRITE);
	}
	/* STLS: the +OK went out in plaintext; what follows is TLS. */
	if (c->tls_starting && stream_unsent(&c->st) == 0 && !c->close_now) {
		tls_stream_server(&c->st, login_tls);
		c->tls_starting = 0;
		c->tls_active = 1;
	}
	if (c->close_now || (c->quit && stream_unsent(&c->st) == 0)) {
		client_close(c);
		return;
	}
	event_fd_set(c->ev, stream_events(&c->st,
	                        client_wants_input(c) && !c->st.eof));
	client_arm(c);
}

static void
client_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct login_client *c = ctx;
	enum stream_result r;
	const char *why;

	(void)ev;
	(void)fd;
	(void)events;
	if (c->state == LOGIN_STATE_RELAY) {
		relay_pump(c);
		return;
	}
	client_write(c);
	if (client_wants_input(c)) {
		r = stream_fill(&c->st);
		if (r == STREAM_OK) {
			c->last_io_ms = event_now_ms(c->loop);
		} else if (r == STREAM_ERROR) {
			why = c->tls_active ? tls_stream_error(&c->st) : NULL;
			if (why != NULL && !tls_stream_handshake_done(&c->st))
				msg_info("%s: TLS handshake failed: %s: rip=%s",
				    login_proto->log_name,
				    log_sanitize(why, LOGIN_REPLY_MAX), c->addr);
			c->reason = "Connection lost";
			c->close_now = 1;
		}
	}
	client_input(c);
	client_after(c);
}

static void spawn_done(struct login_client *c, enum login_result r,
    const struct attr_list *reply);
static void spawn_failed(struct login_client *c, enum login_result r,
    const char *text);

const char *
login_result_text(const char *const *texts, enum login_result r)
{
	if (r < LOGIN_RESULT_COUNT && texts[r] != NULL)
		return texts[r];
	return texts[LOGIN_RESULT_TEMPFAIL];
}

/* The protocol's last words before login.c closes by itself. */
static void
login_bye(struct login_client *c, enum login_bye why)
{
	const char *text = login_proto->bye_text[why];

	if (text != NULL)
		login_client_reply(c, "%s", text);
}

static void
client_timeout(struct event_timer *t, void *ctx)
{
	struct login_client *c = ctx;
	const char *what;
	uint64_t at = client_deadline(c, &what);

	(void)t;
	if (at > event_now_ms(c->loop)) {
		client_arm(c);
		return;
	}
	switch (c->state) {
	case LOGIN_STATE_SPAWN:
		msg_warn("%s: no answer from spawn within %d s: %s",
		    login_proto->log_name, LOGIN_SPAWN_TIMEOUT_MS / MS_PER_SEC,
		    login_client_log_fields(c));
		spawn_done(c, LOGIN_RESULT_UNAVAILABLE, NULL);
		return;
	case LOGIN_STATE_RELAY:
		msg_info("%s: relay idle, closing: %s", login_proto->log_name,
		    login_client_log_fields(c));
		client_close(c);
		return;
	default:
		break;
	}
	c->reason = what;
	if (stream_unsent(&c->st) > 0) {
		/* It reads nothing: more words would not reach it. */
		c->close_now = 1;
	} else {
		login_bye(c, LOGIN_BYE_TIMEOUT);
		login_client_quit(c);
		client_write(c);
		c->close_now = 1;
	}
	client_after(c);
}

/* ------------------------------------------------------- connections */

static void
client_log_disconnect(struct login_client *c)
{
	uint64_t secs = (event_now_ms(c->loop) - c->connect_ms) / MS_PER_SEC;
	char what[LOGIN_REPLY_MAX];

	if (c->failures > 0)
		snprintf(what, sizeof(what),
		    "auth failed, %d attempts in %llu secs", c->attempts,
		    (unsigned long long)secs);
	else if (c->attempts > 0)
		snprintf(what, sizeof(what), "%d attempts in %llu secs",
		    c->attempts, (unsigned long long)secs);
	else
		snprintf(what, sizeof(what), "no auth attempts in %llu secs",
		    (unsigned long long)secs);
	msg_info("Disconnected%s%s (%s): %s", c->reason != NULL ? ": " : "",
	    c->reason != NULL ? c->reason : "", what,
	    login_client_log_fields(c));
}

static void
spawn_end(struct login_client *c)
{
	event_fd_del(&c->spawn_ev);
	if (c->spawn_fd >= 0)
		close(c->spawn_fd);
	c->spawn_fd = -1;
	if (c->pass_fd >= 0 && c->pass_fd != c->fd)
		close(c->pass_fd);
	c->pass_fd = -1;
	/* The request held the password. */
	buf_wipe(&c->spawn_out);
	buf_free(&c->spawn_out);
	buf_free(&c->spawn_in);
}

/* anvil's count per address, over every login process of the protocol. */
static void
anvil_send(struct login_client *c, const char *request, attr_client_cb *cb)
{
	/* Without a callback, a notice: nobody waits for the answer. */
	struct buf *f = cb != NULL ? attr_client_frame(login_anvil)
	                           : attr_client_notice_frame(login_anvil);

	if (attr_put_str(f, "request", request) < 0 ||
	    attr_put_str(f, "service", login_proto->name) < 0 ||
	    attr_put_str(f, "ident", c->addr) < 0)
		msg_panic("anvil request does not fit a frame");
	attr_client_send(login_anvil, cb, cb != NULL ? c : NULL);
}

/* Logged in or gone: no longer a connection before login. */
static void
client_uncount(struct login_client *c)
{
	if (login_anvil != NULL)
		attr_client_cancel(login_anvil, c);
	/* Gone before the answer: the connect is on its way, and anvil
	 * takes requests of a connection in order. */
	if (c->state == LOGIN_STATE_COUNT)
		c->anvil_counted = 1;
	if (!c->anvil_counted)
		return;
	c->anvil_counted = 0;
	anvil_send(c, "disconnect", NULL);
}

static void
client_close(struct login_client *c)
{
	if (c->state != LOGIN_STATE_RELAY && c->state != LOGIN_STATE_COUNT &&
	    c->fd >= 0)
		client_log_disconnect(c);
	client_uncount(c);
	event_fd_del(&c->ev);
	event_fd_del(&c->relay_ev);
	event_timer_del(&c->timer);
	spawn_end(c);
	if (c->relay_fd >= 0) {
		/* The pair's stream exists only once relaying began. */
		if (c->state == LOGIN_STATE_RELAY)
			stream_close(&c->relay);
		else
			close(c->relay_fd);
		c->relay_fd = -1;
	}
	if (c->fd >= 0) {
		stream_close(&c->st);
		c->fd = -1;
	} else {
		stream_free(&c->st);
	}
	login_proto->free(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (client_count-- == var_login_client_limit)
		server_accept_pause(0);
	buf_wipe(&c->line);
	buf_free(&c->line);
	free(c->user);
	free(c->method);
	free(c);
	/* Counts toward max_use and starts the max_idle clock. */
	server_conn_done();
}

/* A bare address of a socket, IPv4-mapped IPv6 shown as IPv4. */
static void
sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t size,
    unsigned *port_r)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	struct in_addr v4;

	snprintf(out, size, "unknown");
	*port_r = 0;
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)size);
		*port_r = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(&v4, sin6->sin6_addr.s6_addr + 12, sizeof(v4));
			inet_ntop(AF_INET, &v4, out, (socklen_t)size);
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, out,
			    (socklen_t)size);
		}
		*port_r = ntohs(sin6->sin6_port);
	}
}

static void
client_addresses(struct login_client *c, const struct server_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!l->is_inet) {
		snprintf(c->addr, sizeof(c->addr), "127.0.0.1");
		snprintf(c->local_addr, sizeof(c->local_addr), "127.0.0.1");
		return;
	}
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	sockaddr_text(&ss, c->addr, sizeof(c->addr), &c->port);
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	sockaddr_text(&ss, c->local_addr, sizeof(c->local_addr),
	    &c->local_port);
}

/* Connections of addr in this process before login: what is counted
 * when anvil cannot be asked. */
static int
clients_from(const char *addr)
{
	struct login_client *c;
	int n = 0;

	for (c = clients; c != NULL; c = c->next)
		if (c->state != LOGIN_STATE_RELAY && strcmp(c->addr, addr) == 0)
			n++;
	return n;
}

/* Greets, or turns away a client past login_max_connections_per_ip
 * (count: its address's connections before login, this one included). */
static void
client_start(struct login_client *c, long long count)
{
	c->state = LOGIN_STATE_PRELOGIN;
	if (var_login_max_connections_per_ip > 0 &&
	    count > var_login_max_connections_per_ip) {
		msg_warn("%s: too many connections from %s: %lld (limit %lld)",
		    login_proto->log_name, c->addr, count,
		    var_login_max_connections_per_ip);
		c->reason = "Too many connections from the address";
		login_bye(c, LOGIN_BYE_TOO_MANY);
		login_client_quit(c);
	} else {
		login_proto->start(c);
	}
	client_after(c);
}

static void
client_count_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct login_client *c = ctx;
	long long count;

	if (reply == NULL || attr_get_int(reply, "count", &count) < 0) {
		/* The limit holds per process meanwhile. */
		if (!login_anvil_warned)
			msg_warn("anvil %s: %s; counting the connections of "
			         "this process only",
			    login_anvil_path,
			    error != NULL ? error : "malformed reply");
		login_anvil_warned = 1;
		count = clients_from(c->addr);
	} else {
		login_anvil_warned = 0;
		c->anvil_counted = 1;
	}
	client_start(c, count);
}

static void
login_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	struct login_client *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->fd = fd;
	file_tcp_nodelay(fd);
	c->spawn_fd = c->pass_fd = c->relay_fd = -1;
	client_addresses(c, l);
	c->trusted = login_trusted != NULL &&
	             netlist_match(login_trusted, c->addr) == 1;
	stream_init(&c->st, fd);
	/* The limit plus its CR (stream.h). */
	buf_init(&c->line, login_proto->line_max + 1);
	buf_init(&c->spawn_out, LOGIN_REQUEST_MAX);
	buf_init(&c->spawn_in, LOGIN_SPAWN_REPLY_MAX);
	c->connect_ms = c->last_io_ms = c->write_ms = event_now_ms(loop);
	c->ev = event_fd_add(loop, fd, 0, client_io, c);
	c->next = clients;
	if (clients != NULL)
		clients->prev = c;
	clients = c;
	/* Full: the other login processes take the next connections. */
	if (++client_count == var_login_client_limit)
		server_accept_pause(1);
	if (var_login_tls_wrappermode) {
		if (login_tls == NULL) {
			msg_warn("%s: login_tls_wrappermode without a "
			         "certificate: dropping rip=%s",
			    login_proto->log_name, c->addr);
			c->reason = "No TLS certificate";
			c->close_now = 1;
			client_after(c);
			return;
		}
		tls_stream_server(&c->st, login_tls);
		c->tls_active = 1;
	}
	if (var_login_max_connections_per_ip > 0) {
		/* Not greeted, not read, until anvil has counted it. */
		c->state = LOGIN_STATE_COUNT;
		anvil_send(c, "connect", client_count_reply);
		client_after(c);
		return;
	}
	client_start(c, 0);
}

/* ------------------------------------------------------ spawn request */

static enum login_result
spawn_status(const struct attr_list *reply)
{
	const char *s = attr_get(reply, LOGIN_ATTR_STATUS);

	if (s == NULL)
		return LOGIN_RESULT_UNAVAILABLE;
	if (strcmp(s, LOGIN_STATUS_OK) == 0)
		return LOGIN_RESULT_OK;
	if (strcmp(s, LOGIN_STATUS_FAIL) == 0)
		return LOGIN_RESULT_FAIL;
	if (strcmp(s, LOGIN_STATUS_LIMIT) == 0)
		return LOGIN_RESULT_LIMIT;
	if (strcmp(s, LOGIN_STATUS_DELAY) == 0)
		return LOGIN_RESULT_DELAY;
	return LOGIN_RESULT_TEMPFAIL;
}

/* Logged in over TLS: from now on plaintext goes through the pair. */
static void relay_io(struct event_fd *ev, int fd, int events, void *ctx);

static void
spawn_done(struct login_client *c, enum login_result r,
    const struct attr_list *reply)
{
	const char *user = reply != NULL ? attr_get(reply, LOGIN_ATTR_USER)
	                                 : NULL;
	const char *text = reply != NULL ? attr_get(reply, LOGIN_ATTR_TEXT)
	                                 : NULL;

	if (r == LOGIN_RESULT_OK && user != NULL && *user != '\0') {
		free(c->user);
		c->user = xstrdup(user);
	}
	spawn_end(c);
	if (r == LOGIN_RESULT_OK) {
		msg_info("Login: %s", login_client_log_fields(c));
		/* Its session is spawn's to count now. */
		client_uncount(c);
		if (!c->tls_active) {
			/* The session has the connection and greets. */
			event_fd_del(&c->ev);
			c->state = LOGIN_STATE_RELAY;
			c->relay_eof = c->client_eof = 1;
			client_close(c);
			return;
		}
		/* spawn got the input that came after the login command. */
		stream_consume(&c->st, c->spawn_input);
		c->state = LOGIN_STATE_RELAY;
		c->last_io_ms = event_now_ms(c->loop);
		stream_init(&c->relay, c->relay_fd);
		c->relay_ev =
		    event_fd_add(c->loop, c->relay_fd, 0, relay_io, c);
		relay_pump(c);
		return;
	}
	spawn_failed(c, r, text);
	client_after(c);
}

/* Back to the dialogue after a failed attempt; the caller resumes the
 * connection (client_after), unless it is inside the dialogue already. */
static void
spawn_failed(struct login_client *c, enum login_result r, const char *text)
{
	spawn_end(c);
	if (c->relay_fd >= 0) {
		close(c->relay_fd);
		c->relay_fd = -1;
	}
	/* spawn may have made the shared file description blocking. */
	if (file_set_nonblock(c->fd, 1) < 0)
		msg_warn("fcntl O_NONBLOCK: %m");
	if (r == LOGIN_RESULT_FAIL)
		c->failures++;
	else
		msg_info("%s: login %s%s%s: %s", login_proto->log_name,
		    r == LOGIN_RESULT_LIMIT   ? "refused (limit)"
		    : r == LOGIN_RESULT_DELAY ? "refused (login delay)"
		                              : "failed temporarily",
		    text != NULL ? ": " : "",
		    text != NULL ? log_sanitize(text, LOGIN_LOG_TEXT_MAX) : "",
		    login_client_log_fields(c));
	c->state = LOGIN_STATE_PRELOGIN;
	c->last_io_ms = event_now_ms(c->loop);
	login_proto->login_failed(c, r);
}

/* Sends what is left of the request; the descriptor rides on the
 * first byte. 1: all sent, 0: wait for writability, -1: failed. */
static int
spawn_send(struct login_client *c)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cmsg;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *h;
	ssize_t n;

	while (c->spawn_sent < c->spawn_out.len) {
		iov.iov_base = c->spawn_out.data + c->spawn_sent;
		iov.iov_len = c->spawn_out.len - c->spawn_sent;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (c->spawn_sent == 0) {
			memset(&cmsg, 0, sizeof(cmsg));
			msg.msg_control = cmsg.buf;
			msg.msg_controllen = sizeof(cmsg.buf);
			h = CMSG_FIRSTHDR(&msg);
			h->cmsg_level = SOL_SOCKET;
			h->cmsg_type = SCM_RIGHTS;
			h->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(h), &c->pass_fd, sizeof(int));
		}
		n = sendmsg(c->spawn_fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			msg_warn("%s: sending to spawn: %m",
			    login_proto->log_name);
			return -1;
		}
		c->spawn_sent += (size_t)n;
	}
	/* The descriptor is in the message: the pair's other end is
	 * spawn's now. */
	if (c->pass_fd >= 0 && c->pass_fd != c->fd)
		close(c->pass_fd);
	c->pass_fd = -1;
	return 1;
}

static void
spawn_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct login_client *c = ctx;
	struct attr_list reply;
	const char *err;
	size_t used;
	ssize_t n;
	char data[LOGIN_SPAWN_REPLY_MAX];
	int r;

	(void)ev;
	(void)fd;
	(void)events;
	if (c->spawn_sent < c->spawn_out.len || c->pass_fd >= 0) {
		r = spawn_send(c);
		if (r < 0) {
			spawn_done(c, LOGIN_RESULT_UNAVAILABLE, NULL);
			return;
		}
		event_fd_set(c->spawn_ev, r == 0 ? EVENT_WRITE : EVENT_READ);
		if (r == 0)
			return;
		/* The whole request is out: wipe it now. */
		buf_wipe(&c->spawn_out);
	}
	n = read(c->spawn_fd, data,
	    c->spawn_in.max - c->spawn_in.len < sizeof(data)
	        ? c->spawn_in.max - c->spawn_in.len
	        : sizeof(data));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		msg_warn("%s: spawn closed without an answer%s%s",
		    login_proto->log_name, n < 0 ? ": " : "",
		    n < 0 ? strerror(errno) : "");
		spawn_done(c, LOGIN_RESULT_UNAVAILABLE, NULL);
		return;
	}
	if (buf_append(&c->spawn_in, data, (size_t)n) < 0)
		msg_panic("spawn reply buffer overrun");
	attr_list_init(&reply);
	r = attr_decode_frame(
	    c->spawn_in.data, c->spawn_in.len, &used, &reply, &err);
	if (r == 0 && c->spawn_in.len == c->spawn_in.max) {
		r = -1;
		err = "reply too long";
	}
	if (r < 0) {
		msg_warn("%s: bad answer from spawn: %s", login_proto->log_name,
		    err);
		attr_list_free(&reply);
		spawn_done(c, LOGIN_RESULT_UNAVAILABLE, NULL);
		return;
	}
	if (r == 1)
		spawn_done(c, spawn_status(&reply), &reply);
	attr_list_free(&reply);
}

static int
spawn_frame(struct login_client *c, const struct login_request *r)
{
	struct buf *f = &c->spawn_out;
	size_t len;
	const char *input = stream_peek(&c->st, &len);

	if (len > LOGIN_INPUT_MAX) {
		/* A TLS session gets the rest through the relay; a passed
		 * socket cannot carry it. */
		if (!c->tls_active)
			return -1;
		len = LOGIN_INPUT_MAX;
	}
	c->spawn_input = len;
	buf_reset(f);
	attr_frame_begin(f);
	if (attr_put_str(f, LOGIN_ATTR_REQUEST, LOGIN_REQUEST_LOGIN) < 0 ||
	    attr_put_str(f, LOGIN_ATTR_SERVICE, login_proto->name) < 0 ||
	    attr_put_str(f, LOGIN_ATTR_MECH, r->mech) < 0 ||
	    attr_put_str(f, LOGIN_ATTR_USER, r->user) < 0 ||
	    (r->password != NULL &&
	        attr_put_str(f, LOGIN_ATTR_PASSWORD, r->password) < 0) ||
	    (r->apop_challenge != NULL &&
	        (attr_put_str(f, LOGIN_ATTR_APOP_CHALLENGE, r->apop_challenge) <
	                0 ||
	            attr_put_str(f, LOGIN_ATTR_APOP_DIGEST, r->apop_digest) <
	                0)) ||
	    attr_put_str(f, LOGIN_ATTR_CLIENT_ADDR, c->addr) < 0 ||
	    attr_put_int(f, LOGIN_ATTR_CLIENT_PORT, c->port) < 0 ||
	    attr_put_str(f, LOGIN_ATTR_LOCAL_ADDR, c->local_addr) < 0 ||
	    attr_put_int(f, LOGIN_ATTR_LOCAL_PORT, c->local_port) < 0 ||
	    attr_put_int(f, LOGIN_ATTR_TLS, c->tls_active) < 0 ||
	    attr_put_int(f, LOGIN_ATTR_SECURED, c->tls_active || c->trusted) <
	        0 ||
	    (r->tag != NULL && attr_put_str(f, LOGIN_ATTR_TAG, r->tag) < 0) ||
	    (len > 0 && attr_put(f, LOGIN_ATTR_INPUT, input, len) < 0) ||
	    attr_frame_end(f) < 0)
		return -1;
	return 0;
}

/* A connected, non-blocking socket to spawn, or -1 (logged). */
static int
spawn_connect(int *in_progress_r)
{
	struct sockaddr_un sun;
	int fd;

	*in_progress_r = 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(login_spawn_path) >= sizeof(sun.sun_path)) {
		msg_warn("spawn socket path too long: %s", login_spawn_path);
		return -1;
	}
	memcpy(sun.sun_path, login_spawn_path, strlen(login_spawn_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		msg_warn("socket: %m");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		*in_progress_r = 1;
		return fd;
	}
	/* EAGAIN: spawn's backlog is full, as good as down for now. */
	msg_warn("connect to spawn %s: %m", login_spawn_path);
	close(fd);
	return -1;
}

void
login_client_login(struct login_client *c, const struct login_request *r)
{
	int sp[2], in_progress;

	if (c->state != LOGIN_STATE_PRELOGIN)
		msg_panic("login_client_login in state %d", (int)c->state);
	c->attempts++;
	free(c->user);
	c->user = xstrdup(r->user);
	free(c->method);
	c->method = xstrdup(r->method);
	c->state = LOGIN_STATE_SPAWN;
	c->spawn_ms = event_now_ms(c->loop);
	c->spawn_sent = 0;
	buf_reset(&c->spawn_in);
	if (spawn_frame(c, r) < 0) {
		msg_warn("%s: login request does not fit (%zu bytes of "
		         "input after the command): %s",
		    login_proto->log_name, stream_buffered(&c->st),
		    login_client_log_fields(c));
		spawn_failed(c, LOGIN_RESULT_TEMPFAIL, NULL);
		return;
	}
	if (c->tls_active) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) <
		    0) {
			msg_warn("socketpair: %m");
			spawn_failed(c, LOGIN_RESULT_UNAVAILABLE, NULL);
			return;
		}
		c->relay_fd = sp[0];
		c->pass_fd = sp[1];
		if (file_set_nonblock(c->relay_fd, 1) < 0)
			msg_fatal("fcntl O_NONBLOCK: %m");
	} else {
		c->pass_fd = c->fd;
	}
	if ((c->spawn_fd = spawn_connect(&in_progress)) < 0) {
		spawn_failed(c, LOGIN_RESULT_UNAVAILABLE, NULL);
		return;
	}
	c->spawn_hold = !c->tls_active && stream_unsent(&c->st) > 0;
	/* connect() in progress ends in writability, as does room to send. */
	(void)in_progress;
	c->spawn_ev = event_fd_add(c->loop, c->spawn_fd,
	    c->spawn_hold ? 0 : EVENT_WRITE, spawn_io, c);
	/* Input waits for the answer; replies already queued still go. */
	event_fd_set(c->ev, stream_events(&c->st, 0));
	client_arm(c);
}

/* ----------------------------------------------------------- relay */

/* Moves what src has buffered into dst's output. 1 if anything moved. */
static int
relay_move(struct stream *src, struct stream *dst)
{
	size_t len;
	const char *data = stream_peek(src, &len);

	if (len == 0)
		return 0;
	if (stream_write(dst, data, len) < 0)
		msg_panic("relay buffer overrun");
	stream_consume(src, len);
	return 1;
}

/* One side's input: 1 progress, 0 nothing, -1 failed. */
static int
relay_read(struct stream *src, struct stream *dst, int *eof)
{
	enum stream_result r;

	if (*eof || stream_unsent(dst) >= LOGIN_RELAY_HIGH)
		return 0;
	if (stream_buffered(src) == 0) {
		r = stream_fill(src);
		if (r == STREAM_EOF) {
			*eof = 1;
			return 1;
		}
		if (r == STREAM_ERROR)
			return -1;
		if (r != STREAM_OK)
			return 0;
	}
	return relay_move(src, dst);
}

static void
relay_pump(struct login_client *c)
{
	int progress, a, b;
	size_t before;

	do {
		a = relay_read(&c->st, &c->relay, &c->client_eof);
		b = relay_read(&c->relay, &c->st, &c->relay_eof);
		if (a < 0 || b < 0)
			goto done;
		progress = a | b;
		before = stream_unsent(&c->st) + stream_unsent(&c->relay);
		if (stream_try_flush(&c->relay) == STREAM_ERROR ||
		    stream_try_flush(&c->st) == STREAM_ERROR)
			goto done;
		if (stream_unsent(&c->st) + stream_unsent(&c->relay) < before)
			progress = 1;
		if (progress)
			c->last_io_ms = event_now_ms(c->loop);
	} while (progress);
	/* The client is done sending: so is the session's input. */
	if (c->client_eof && !c->relay_shut && stream_unsent(&c->relay) == 0) {
		shutdown(c->relay_fd, SHUT_WR);
		c->relay_shut = 1;
	}
	/* The session ended: what it said last still goes out. */
	if (c->relay_eof && stream_unsent(&c->st) == 0)
		goto done;
	event_fd_set(c->ev, stream_events(&c->st,
	                        !c->client_eof &&
	                            stream_unsent(&c->relay) < LOGIN_RELAY_HIGH));
	event_fd_set(c->relay_ev,
	    stream_events(&c->relay,
	        !c->relay_eof && stream_unsent(&c->st) < LOGIN_RELAY_HIGH));
	client_arm(c);
	return;
done:
	client_close(c);
}

static void
relay_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	(void)ev;
	(void)fd;
	(void)events;
	relay_pump(ctx);
}

/* ------------------------------------------------------ the daemon */

/*
 * As root: the key is readable by root only. Without a certificate STLS
 * is not offered and the implicit-TLS port refuses connections; a
 * missing file is a set-up without TLS, a bad one a warning.
 */
static void
login_tls_init(void)
{
	unsigned char secret[TLS_TICKET_SECRET_MAX];
	struct tls_server_config cfg;
	const char *err;

	if (access(var_login_tls_cert_file, F_OK) < 0 ||
	    access(var_login_tls_key_file, F_OK) < 0) {
		msg_info("no TLS certificate (%s): STLS not offered%s",
		    var_login_tls_cert_file,
		    var_login_tls_wrappermode ? ", and implicit TLS "
		                                "connections are refused"
		                              : "");
		return;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.cert_file = var_login_tls_cert_file;
	cfg.key_file = var_login_tls_key_file;
	cfg.protocols = var_smtpd_tls_protocols;
	cfg.ciphers = var_smtpd_tls_ciphers;
	cfg.ciphersuites = var_smtpd_tls_ciphersuites;
	cfg.ticket_secret = secret;
	cfg.ticket_secret_len =
	    tls_ticket_secret_from_env(secret, sizeof(secret));
	cfg.ticket_lifetime = (unsigned)var_smtpd_tls_session_cache_timeout;
	if (tls_server_create(&cfg, &login_tls, &err) < 0) {
		msg_warn("TLS is not available: %s", err);
		login_tls = NULL;
	}
	explicit_bzero(secret, sizeof(secret));
}

static const struct login_protocol *
login_protocol_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(login_protocols) / sizeof(login_protocols[0]);
	     i++)
		if (strcmp(login_protocols[i]->name, name) == 0)
			return login_protocols[i];
	return NULL;
}

/* Before the chroot: the protocol, the key, the trusted networks (a
 * table among them may lie outside). */
static void
login_pre_drop(int argc, char **argv)
{
	char *err;

	if (argc < 1 || (login_proto = login_protocol_find(argv[0])) == NULL)
		msg_fatal("usage: login [options] pop3|imap (got %s)",
		    argc < 1 ? "no protocol" : argv[0]);
	log_init(login_proto->log_name,
	    *var_maillog_file == '\0' ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	tzset();
	login_tls_init();
	login_trusted = netlist_create(
	    var_login_trusted_networks, "login_trusted_networks", &err);
	if (login_trusted == NULL)
		msg_fatal("%s", err);
}

static void
login_init(struct event_loop *loop)
{
	/* After the chroot, $login_directory is "/" (server.c). */
	login_spawn_path = xasprintf("%s/%s", var_login_directory,
	    LOGIN_SPAWN_SOCKET);
	login_anvil_path = xasprintf("%s/%s", var_login_directory,
	    LOGIN_ANVIL_SOCKET);
	/* Never closed when idle: the counts live on the connection. */
	login_anvil = attr_client_create(loop, login_anvil_path, 0,
	    LOGIN_ANVIL_TIMEOUT_MS, LOGIN_ANVIL_REPLY_MAX, 0);
}

/* Best effort: the sockets are non-blocking and the process leaves.
 * Relayed sessions end with it (master restarts a login process only
 * when stopping or reloading a changed service). */
static void
login_shutdown(void)
{
	struct login_client *c, *next;

	for (c = clients; c != NULL; c = next) {
		next = c->next;
		if (c->state == LOGIN_STATE_PRELOGIN && !c->close_now) {
			c->reason = "Server shutting down";
			login_bye(c, LOGIN_BYE_SHUTDOWN);
			client_write(c);
		}
		client_close(c);
	}
	attr_client_free(&login_anvil);
	tls_server_free(&login_tls);
	netlist_free(&login_trusted);
	free(login_spawn_path);
	login_spawn_path = NULL;
	free(login_anvil_path);
	login_anvil_path = NULL;
}

static void
login_check(void)
{
	char *err;
	struct netlist *l = netlist_create(
	    var_login_trusted_networks, "login_trusted_networks", &err);

	if (l == NULL)
		msg_fatal("%s", err);
	netlist_free(&l);
}

/*
 * services.conf names the protocol before its options ("login pop3 -o
 * login_tls_wrappermode=yes"), but the skeleton's options end at the
 * first word that is not one: the protocol goes last, so every -o is
 * read as an option.
 */
static void
login_protocol_last(int argc, char **argv)
{
	char *word;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return;
		if (argv[i][0] == '-') {
			/* -c, -n, -o and -U take the next word (or the rest). */
			if (strchr("cnoRU", argv[i][1]) != NULL &&
			    argv[i][1] != '\0' && argv[i][2] == '\0')
				i++;
			continue;
		}
		word = argv[i];
		memmove(&argv[i], &argv[i + 1],
		    (size_t)(argc - i - 1) * sizeof(*argv));
		argv[argc - 1] = word;
		return;
	}
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "login",
	    .mode = SERVER_MULTI,
	    .pre_drop = login_pre_drop,
	    .init = login_init,
	    .accept = login_accept,
	    .shutdown = login_shutdown,
	    .check = login_check,
	};

	login_protocol_last(argc, argv);
	server_main(argc, argv, &ops);
}
