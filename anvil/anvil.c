/* SPDX-License-Identifier: MIT */
/*
 * anvil: counts what a per-client limit needs across every process of a
 * service (Postfix's anvil(8) idea), so that smtpd_client_connection_limit
 * holds however the kernel spreads connections over smtpd processes. Each
 * smtpd keeps one connection here and sends
 *
 *   {request=connect, service, ident}    -> {count, rate}: concurrent
 *                                           connections and connections
 *                                           in this time unit, this one
 *                                           included
 *   {request=disconnect, service, ident} -> {count}
 *   {request=message, service, ident}    -> {rate}: messages in this time
 *                                           unit, this one included
 *
 * Rates count events in a fixed window of $anvil_rate_time_unit that
 * starts at a client's first event (Postfix's anvil does the same); a
 * timer forgets clients whose window ended, so the rate table stays as
 * small as the set of recently active clients.
 *
 * Counts are kept per client connection as well as in total, so when an
 * smtpd process dies (its connection closes) everything it counted is
 * taken back: a crash never leaves a client locked out. The tables are
 * bounded; past the bound a new ident is not counted (count 0: the
 * limit fails open rather than refuse mail). No RFCs; see anvil(8).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/event.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/attr.h"
#include "mail/attr_server.h"
#include "mail/params.h"
#include "mail/server.h"

/* Distinct (service, ident) pairs counted at once. */
#define ANVIL_KEYS_MAX    100000
/* service + ident, e.g. "smtpd" and an IPv6 address. */
#define ANVIL_KEY_MAX     256
#define ANVIL_REQUEST_MAX 1024
#define ANVIL_CONNS_MAX   1024
#define ANVIL_TOKEN_LOG   64
#define ANVIL_MS_PER_SEC  1000ULL

/* Total per key, over every client connection. */
static struct hash *anvil_totals;
static long long anvil_keys;

/* Events per key in the current window. */
struct anvil_rate {
	uint64_t start_ms;
	long long conns, msgs;
};

static struct hash *anvil_rates;
static struct event_loop *anvil_loop;
static struct event_timer *anvil_purge_timer;

struct anvil_count {
	long long n;
};

static void
anvil_count_free(void *p)
{
	free(p);
}

static long long
anvil_total_add(const char *key, long long delta)
{
	struct anvil_count *c = hash_get(anvil_totals, key);

	if (c == NULL) {
		if (delta <= 0)
			return 0;
		c = xcalloc(1, sizeof(*c));
		hash_put(anvil_totals, key, c);
		anvil_keys++;
	}
	c->n += delta;
	if (c->n > 0)
		return c->n;
	free(hash_del(anvil_totals, key));
	anvil_keys--;
	return 0;
}

/* The per-connection table: what this client process counted. */
static struct hash *
anvil_mine(struct attr_conn *conn)
{
	struct hash *h = attr_conn_data(conn);

	if (h == NULL) {
		h = hash_create();
		attr_conn_set_data(conn, h);
	}
	return h;
}

static long long
anvil_connect(struct attr_conn *conn, const char *key)
{
	struct hash *mine = anvil_mine(conn);
	struct anvil_count *c = hash_get(mine, key);

	if (c == NULL && hash_get(anvil_totals, key) == NULL &&
	    anvil_keys >= ANVIL_KEYS_MAX) {
		msg_warn("more than %d clients counted; not counting %s",
		    ANVIL_KEYS_MAX, log_sanitize(key, ANVIL_TOKEN_LOG));
		return 0;
	}
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		hash_put(mine, key, c);
	}
	c->n++;
	return anvil_total_add(key, 1);
}

static long long
anvil_disconnect(struct attr_conn *conn, const char *key)
{
	struct hash *mine = anvil_mine(conn);
	struct anvil_count *c = hash_get(mine, key);

	/* Only what this process counted can be taken back. */
	if (c == NULL)
		return anvil_total_add(key, 0);
	if (--c->n == 0)
		free(hash_del(mine, key));
	return anvil_total_add(key, -1);
}

static uint64_t
anvil_unit_ms(void)
{
	return (uint64_t)var_anvil_rate_time_unit * ANVIL_MS_PER_SEC;
}

/* The window of key, restarted if it ended; NULL past the table bound. */
static struct anvil_rate *
anvil_rate(const char *key)
{
	uint64_t now = event_now_ms(anvil_loop);
	struct anvil_rate *r = hash_get(anvil_rates, key);

	if (r == NULL) {
		if (hash_count(anvil_rates) >= ANVIL_KEYS_MAX) {
			msg_warn("more than %d clients rated; not rating %s",
			    ANVIL_KEYS_MAX, log_sanitize(key, ANVIL_TOKEN_LOG));
			return NULL;
		}
		r = xcalloc(1, sizeof(*r));
		r->start_ms = now;
		hash_put(anvil_rates, key, r);
	} else if (now - r->start_ms >= anvil_unit_ms()) {
		memset(r, 0, sizeof(*r));
		r->start_ms = now;
	}
	return r;
}

static void
anvil_purge(struct event_timer *t, void *ctx)
{
	uint64_t now = event_now_ms(anvil_loop);
	struct hash *keep = hash_create();
	const char *key;
	size_t pos = 0;
	void *v;

	(void)ctx;
	/* hash_iter forbids deleting while iterating: copy what lives. */
	while ((key = hash_iter(anvil_rates, &pos, &v)) != NULL) {
		struct anvil_rate *r = v;

		if (now - r->start_ms < anvil_unit_ms())
			hash_put(keep, key, r);
		else
			free(r);
	}
	hash_free(&anvil_rates, NULL);
	anvil_rates = keep;
	event_timer_reset(t, anvil_unit_ms());
}

static int
anvil_request(struct attr_conn *conn, const struct attr_list *req)
{
	const char *what = attr_get(req, "request");
	const char *service = attr_get(req, "service");
	const char *ident = attr_get(req, "ident");
	char key[ANVIL_KEY_MAX];
	struct buf *reply;
	struct anvil_rate *r;
	long long count, rate = 0;
	int n;

	if (what == NULL || service == NULL || ident == NULL ||
	    strchr(service, ':') != NULL) {
		msg_warn("malformed request");
		return -1;
	}
	n = snprintf(key, sizeof(key), "%s:%s", service, ident);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		msg_warn("request key too long");
		return -1;
	}
	if (strcmp(what, "connect") == 0) {
		count = anvil_connect(conn, key);
		if ((r = anvil_rate(key)) != NULL)
			rate = ++r->conns;
	} else if (strcmp(what, "message") == 0) {
		count = 0;
		if ((r = anvil_rate(key)) != NULL)
			rate = ++r->msgs;
	} else if (strcmp(what, "disconnect") == 0)
		count = anvil_disconnect(conn, key);
	else {
		msg_warn("unknown request '%s'",
		    log_sanitize(what, ANVIL_TOKEN_LOG));
		return -1;
	}
	msg_debug("%s %s: count=%lld rate=%lld", what, key, count, rate);
	reply = attr_conn_reply_begin(conn, req);
	if (attr_put_int(reply, "count", count) < 0 ||
	    attr_put_int(reply, "rate", rate) < 0)
		msg_panic("anvil: reply does not fit");
	attr_conn_reply_end(conn);
	return 0;
}

/* A client process went away: take back everything it counted. */
static void
anvil_closed(struct attr_conn *conn)
{
	struct hash *mine = attr_conn_data(conn);
	struct anvil_count *c;
	const char *key;
	size_t pos = 0;
	void *v;

	if (mine == NULL)
		return;
	while ((key = hash_iter(mine, &pos, &v)) != NULL) {
		c = v;
		anvil_total_add(key, -c->n);
	}
	hash_free(&mine, anvil_count_free);
	attr_conn_set_data(conn, NULL);
}

static const struct attr_server_ops anvil_ops = {
    .request = anvil_request,
    .closed = anvil_closed,
};

static void
anvil_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	/* No idle close: the counts of a quiet smtpd live on its connection
	 * and would be lost with it. */
	const struct attr_server_limits lim = {
	    .request_max = ANVIL_REQUEST_MAX,
	    .conns_max = ANVIL_CONNS_MAX,
	    .idle_ms = 0,
	};

	(void)l;
	attr_server_accept(fd, loop, &anvil_ops, &lim);
}

static void
anvil_init(struct event_loop *loop)
{
	anvil_loop = loop;
	anvil_totals = hash_create();
	anvil_rates = hash_create();
	anvil_purge_timer =
	    event_timer_add(loop, anvil_unit_ms(), anvil_purge, NULL);
}

static void
anvil_shutdown(void)
{
	attr_server_close_all();
	hash_free(&anvil_totals, anvil_count_free);
	hash_free(&anvil_rates, anvil_count_free);
	event_timer_del(&anvil_purge_timer);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
	    .name = "anvil",
	    .mode = SERVER_MULTI,
	    .init = anvil_init,
	    .accept = anvil_accept,
	    .shutdown = anvil_shutdown,
	};

	server_main(argc, argv, &ops);
}
