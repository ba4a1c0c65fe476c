/* SPDX-License-Identifier: MIT */
/*
 * auth: checks passwords for smtpd, pop3d and imapd over the private
 * socket private/auth (protocol: lib/mail/auth_proto.h), as the only tern
 * process that reads the user file, under a user of its own
 * ($auth_user) so that no process of mail_owner can read or trace it (the
 * login/auth split of Dovecot). One event-driven process serves every
 * client connection.
 *
 * A password hash (yescrypt: tens of milliseconds of CPU) is never
 * computed in the event loop: checks wait in a FIFO queue, bounded in
 * entries and in time, for $auth_worker_count threads (lib/base/workpool,
 * Dovecot's auth-worker processes), and their results come back to the
 * loop. A check that waited AUTH_QUEUE_WAIT_MS is answered tempfail
 * without a hash: clients wait at least that long and more (auth_proto.h),
 * so the answer still finds them. Identical requests (same user and
 * password) in flight share one check. A success is remembered for
 * $auth_cache_ttl (auth_cache.c), so a client that logs in again and
 * again pays the hash once; failures always pay it.
 *
 * A failed login is answered only after a delay that doubles with each
 * recent failure from the same address or for the same user (Dovecot's
 * auth_failure_delay, Postfix's anvil counts): a timer, so other
 * requests go on meanwhile and a right password is answered at once,
 * overtaking the failures before it on the same connection. Unknown users
 * cost the same hash computation as known ones, and get the same
 * answer and delay. The password itself is never logged or kept. No
 * RFCs here; the SASL mechanisms that bring the passwords are in
 * lib/mail/sasl.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/workpool.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/attr_server.h"
#include "mail/auth_proto.h"
#include "mail/params.h"
#include "mail/server.h"
#include "mail/userdb.h"
#include "auth.h"
#include "auth_cache.h"
#include "auth_fail.h"

/* smtpd, pop3d and imapd keep a connection or two per process. */
#define AUTH_CLIENTS_MAX     512
/* Failures waiting for their answer; beyond, tempfail without a check. */
#define AUTH_DELAYED_MAX     4096
/* Addresses and users whose failures are remembered (each table). */
#define AUTH_FAIL_KEYS_MAX   10000
#define AUTH_MS_PER_SEC      1000
/* Bytes of a client's user name or address that reach the log. */
#define AUTH_LOG_FIELD_MAX   100
/* IPv6 clients are counted per /64: one site, one count. */
#define AUTH_IP6_PREFIX_BITS 64
#define AUTH_BITS_PER_BYTE   8
/* Text of the address key: an IPv6 address and "/64". */
#define AUTH_ADDR_KEY_SIZE   (INET6_ADDRSTRLEN + sizeof("/128"))

#define AUTH_TEXT_OK      "authenticated"
#define AUTH_TEXT_FAILED  "authentication failed"
#define AUTH_TEXT_UNAVAIL "user file unavailable"
#define AUTH_TEXT_BUSY    "too many failed logins waiting"
#define AUTH_TEXT_QUEUE   "too many logins waiting for a check"
#define AUTH_TEXT_LATE    "waited too long for a check"
/* Requests waiting for a check or in one; beyond, tempfail at once. */
#define AUTH_QUEUE_MAX    4096
/* Hashing threads when $auth_worker_count asks for one per CPU. */
#define AUTH_WORKERS_AUTO_MAX 16

static const char *const auth_services[] = {
    AUTH_PROTO_SMTP,
    AUTH_PROTO_POP3,
    AUTH_PROTO_IMAP,
};

/* A failure whose answer waits for its timer. */
struct auth_delayed {
	struct attr_conn *conn; /* referenced */
	struct attr id;         /* the request's id; value NULL if none */
	struct event_timer *timer;
	struct auth_delayed *prev, *next;
};

/* A request whose answer waits for a check. */
struct auth_waiter {
	struct attr_conn *conn; /* referenced */
	struct attr id;         /* the request's id; value NULL if none */
	struct attr user;       /* as sent (a copy) */
	char *addr;
	char addr_key[AUTH_ADDR_KEY_SIZE];
	const char *service;
	struct auth_waiter *next;
};

enum auth_check_result {
	AUTH_CHECK_OK,
	AUTH_CHECK_MISMATCH,
	AUTH_CHECK_LATE, /* not checked: queued too long, or shutting down */
};

/* One password hash, for every waiter with the same user and password. */
struct auth_check {
	char key[AUTH_CACHE_KEY_SIZE];
	/* Copies: a reload of the user file frees the entry found. */
	struct userdb_entry entry;
	char *password;
	int known; /* 0: checked against the dummy entry */
	uint64_t queued_ms;
	uint64_t generation; /* of the user file that entry came from */
	enum auth_check_result result;
	struct auth_waiter *waiters;
};

static struct event_loop *auth_loop;
static struct auth_fail_table *auth_fail_addrs, *auth_fail_users;
static struct auth_delayed *auth_delayed_list;
static int auth_ndelayed;
static struct workpool *auth_workers;
static struct auth_cache *auth_cache;
static uint64_t auth_cache_generation;
/* Checks queued or running, by key; and the requests waiting for them. */
static struct hash *auth_checks;
static int auth_nwaiting;
/* Set once shutting down: threads skip the hashes still queued. */
static atomic_int auth_stopping;

/* One request as received, checked for presence and shape. */
struct auth_req {
	const struct attr_list *attrs;
	const char *service;
	int apop;
	const struct attr *user, *password; /* apop: the digest */
	const struct attr *challenge;       /* apop only */
	const char *addr;
	char addr_key[AUTH_ADDR_KEY_SIZE];
};

static void
auth_reply(struct attr_conn *conn, const struct attr_list *req,
    const char *status, const char *user, const char *text)
{
	struct buf *f = attr_conn_reply_begin(conn, req);

	if (attr_put_str(f, AUTH_ATTR_STATUS, status) < 0 ||
	    (user != NULL && attr_put_str(f, AUTH_ATTR_USER, user) < 0) ||
	    attr_put_str(f, AUTH_ATTR_TEXT, text) < 0)
		msg_panic("auth: reply outgrew its frame");
	attr_conn_reply_end(conn);
}

static void
auth_delayed_free(struct auth_delayed *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		auth_delayed_list = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	auth_ndelayed--;
	event_timer_del(&d->timer);
	attr_conn_unref(&d->conn);
	free((char *)d->id.value);
	free(d);
}

/* The delay is over: the failure is answered (if the client is there). */
static void
auth_delayed_fire(struct event_timer *t, void *ctx)
{
	struct auth_delayed *d = ctx;
	struct attr_list id = {.v = &d->id, .count = d->id.value != NULL};

	(void)t;
	auth_reply(d->conn, &id, AUTH_STATUS_FAIL, NULL, AUTH_TEXT_FAILED);
	auth_delayed_free(d);
}

/* Answers fail after delay_ms, keeping only the request's id. */
static void
auth_delay(
    struct attr_conn *conn, const struct attr_list *req, uint64_t delay_ms)
{
	struct auth_delayed *d = xcalloc(1, sizeof(*d));
	const struct attr *id = attr_find(req, ATTR_ID);

	d->conn = conn;
	attr_conn_ref(conn);
	if (id != NULL) {
		d->id.name = ATTR_ID;
		d->id.value = xmalloc(id->len + 1);
		memcpy((char *)d->id.value, id->value, id->len + 1);
		d->id.len = id->len;
	}
	d->timer = event_timer_add(auth_loop, delay_ms, auth_delayed_fire, d);
	d->next = auth_delayed_list;
	if (d->next != NULL)
		d->next->prev = d;
	auth_delayed_list = d;
	auth_ndelayed++;
}

/*
 * The key that counts an address's failures: the address in its one
 * canonical spelling, IPv4-mapped IPv6 as IPv4, other IPv6 cut to its
 * /64; anything else (no address) as given.
 */
static void
auth_addr_key(const char *addr, char *key, size_t size)
{
	struct in6_addr a6;
	struct in_addr a4;
	size_t keep = AUTH_IP6_PREFIX_BITS / AUTH_BITS_PER_BYTE;

	if (inet_pton(AF_INET, addr, &a4) == 1) {
		inet_ntop(AF_INET, &a4, key, (socklen_t)size);
		return;
	}
	if (inet_pton(AF_INET6, addr, &a6) != 1) {
		snprintf(key, size, "%s", addr);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[sizeof(a6.s6_addr) - sizeof(a4)],
		    sizeof(a4));
		inet_ntop(AF_INET, &a4, key, (socklen_t)size);
		return;
	}
	memset(&a6.s6_addr[keep], 0, sizeof(a6.s6_addr) - keep);
	inet_ntop(AF_INET6, &a6, key, (socklen_t)size);
	snprintf(
	    key + strlen(key), size - strlen(key), "/%d", AUTH_IP6_PREFIX_BITS);
}

/* A text attribute: present, without NUL, at most max bytes. */
static int
auth_text_ok(const struct attr *a, size_t max)
{
	return a != NULL && a->len > 0 && a->len <= max &&
	       memchr(a->value, '\0', a->len) == NULL;
}

/*
 * Fills r from the frame; -1 for a protocol violation (logged): the
 * sender is a tern daemon with a bug, not a client to answer.
 */
static int
auth_req_parse(const struct attr_list *attrs, struct auth_req *r)
{
	const char *what = attr_get(attrs, AUTH_ATTR_REQUEST);
	const struct attr *service = attr_find(attrs, AUTH_ATTR_SERVICE);
	const struct attr *addr = attr_find(attrs, AUTH_ATTR_CLIENT);
	size_t i;

	memset(r, 0, sizeof(*r));
	r->attrs = attrs;
	if (what != NULL && strcmp(what, AUTH_REQUEST_APOP) == 0)
		r->apop = 1;
	else if (what == NULL || strcmp(what, AUTH_REQUEST_AUTH) != 0) {
		msg_warn("protocol error: unknown request '%s'",
		    log_sanitize(what != NULL ? what : "", AUTH_LOG_FIELD_MAX));
		return -1;
	}
	for (i = 0; service != NULL &&
	            i < sizeof(auth_services) / sizeof(auth_services[0]);
	     i++)
		if (strcmp(service->value, auth_services[i]) == 0 &&
		    service->len == strlen(auth_services[i]))
			r->service = auth_services[i];
	if (r->service == NULL) {
		msg_warn("protocol error: unknown service '%s'",
		    service != NULL ? log_sanitize_n(service->value,
		                          service->len, AUTH_LOG_FIELD_MAX)
		                    : "");
		return -1;
	}
	r->user = attr_find(attrs, AUTH_ATTR_USER);
	r->password = attr_find(
	    attrs, r->apop ? AUTH_ATTR_APOP_DIGEST : AUTH_ATTR_PASSWORD);
	if (r->apop)
		r->challenge = attr_find(attrs, AUTH_ATTR_APOP_CHALLENGE);
	if (r->user == NULL || r->password == NULL || addr == NULL ||
	    (r->apop && r->challenge == NULL)) {
		msg_warn("protocol error: request without %s",
		    r->user == NULL       ? AUTH_ATTR_USER
		    : r->password == NULL ? (r->apop ? AUTH_ATTR_APOP_DIGEST
		                                     : AUTH_ATTR_PASSWORD)
		    : addr == NULL        ? AUTH_ATTR_CLIENT
		                          : AUTH_ATTR_APOP_CHALLENGE);
		return -1;
	}
	if (addr->len > 0 && !auth_text_ok(addr, AUTH_ADDR_MAX)) {
		msg_warn("protocol error: bad %s '%s'", AUTH_ATTR_CLIENT,
		    log_sanitize_n(addr->value, addr->len, AUTH_LOG_FIELD_MAX));
		return -1;
	}
	r->addr = addr->value;
	auth_addr_key(r->addr, r->addr_key, sizeof(r->addr_key));
	return 0;
}

/* The user name as the client sent it, safe for the log. */
static const char *
auth_log_user(const struct auth_req *r)
{
	return log_sanitize_n(r->user->value, r->user->len, AUTH_LOG_FIELD_MAX);
}

static const char *
auth_log_addr(const struct auth_req *r)
{
	return *r->addr != '\0' ? r->addr : "none";
}

/*
 * Counts the failure against the address and, when there is one, the
 * user key, and answers after the delay the larger count earns.
 */
static void
auth_failed(struct attr_conn *conn, const struct auth_req *r,
    const char *user_key, const char *why)
{
	uint64_t now = event_now_ms(auth_loop), delay;
	unsigned n, u;

	n = auth_fail_add(auth_fail_addrs, r->addr_key, now);
	if (user_key != NULL &&
	    (u = auth_fail_add(auth_fail_users, user_key, now)) > n)
		n = u;
	delay =
	    auth_fail_delay((uint64_t)var_auth_failure_delay * AUTH_MS_PER_SEC,
	        (uint64_t)var_auth_failure_delay_max * AUTH_MS_PER_SEC, n);
	msg_info("failed: user=<%s>, rip=%s, service=%s, failures=%u, "
	         "delay=%llu.%03llus (%s)",
	    auth_log_user(r), auth_log_addr(r), r->service, n,
	    (unsigned long long)(delay / AUTH_MS_PER_SEC),
	    (unsigned long long)(delay % AUTH_MS_PER_SEC), why);
	auth_delay(conn, r->attrs, delay);
}

static void
auth_tempfail(
    struct attr_conn *conn, const struct auth_req *r, const char *text)
{
	msg_warn("tempfail: user=<%s>, rip=%s, service=%s (%s)",
	    auth_log_user(r), auth_log_addr(r), r->service, text);
	auth_reply(conn, r->attrs, AUTH_STATUS_TEMPFAIL, NULL, text);
}

static void
auth_succeeded(struct attr_conn *conn, const struct auth_req *r,
    const char *canonical, const char *how)
{
	/* A success forgets the user's failures, not the address's. */
	auth_fail_clear(auth_fail_users, canonical);
	msg_info("ok: user=<%s>, rip=%s, service=%s%s", canonical,
	    auth_log_addr(r), r->service, how);
	auth_reply(conn, r->attrs, AUTH_STATUS_OK, canonical, AUTH_TEXT_OK);
}

/* An unknown user's failures count under the name as the file would
 * hold it. */
static void
auth_failed_unknown(struct attr_conn *conn, const struct auth_req *r)
{
	char key[USERDB_NAME_MAX + 1];

	memcpy(key, r->user->value, r->user->len + 1);
	str_lower(key);
	auth_failed(conn, r, key, "unknown user");
}

/* APOP is an MD5 digest, cheap: checked at once in the loop. */
static void
auth_apop(struct attr_conn *conn, const struct auth_req *r)
{
	const char *canonical = NULL;

	switch (auth_db_check_apop(r->user->value, r->challenge->value,
	    r->password->value, &canonical)) {
	case AUTH_DB_OK:
		auth_succeeded(conn, r, canonical, ", method=APOP");
		break;
	case AUTH_DB_MISMATCH:
		auth_failed(conn, r, canonical, "password mismatch");
		break;
	case AUTH_DB_UNKNOWN:
		auth_failed_unknown(conn, r);
		break;
	case AUTH_DB_UNAVAILABLE:
		auth_tempfail(conn, r, AUTH_TEXT_UNAVAIL);
		break;
	}
}

/* In a hashing thread: touches nothing but the check. */
static void
auth_check_run(void *arg)
{
	struct auth_check *c = arg;

	/* The client has given up, or is about to: no hash for it. */
	if (atomic_load(&auth_stopping) ||
	    event_clock_ms() - c->queued_ms >= AUTH_QUEUE_WAIT_MS) {
		c->result = AUTH_CHECK_LATE;
		return;
	}
	c->result = userdb_verify(&c->entry, c->password) ? AUTH_CHECK_OK
	                                                  : AUTH_CHECK_MISMATCH;
}

static void
auth_waiter_answer(const struct auth_waiter *w, const struct auth_check *c)
{
	struct attr_list id = {
	    .v = (struct attr *)&w->id, .count = w->id.value != NULL};
	struct auth_req r = {
	    .attrs = &id,
	    .service = w->service,
	    .user = &w->user,
	    .addr = w->addr,
	};

	memcpy(r.addr_key, w->addr_key, sizeof(r.addr_key));
	if (c->result == AUTH_CHECK_LATE)
		auth_tempfail(w->conn, &r, AUTH_TEXT_LATE);
	else if (!c->known)
		auth_failed_unknown(w->conn, &r);
	else if (c->result == AUTH_CHECK_OK)
		auth_succeeded(w->conn, &r, c->entry.name, "");
	else
		auth_failed(w->conn, &r, c->entry.name, "password mismatch");
}

static void
auth_check_free(struct auth_check *c)
{
	struct auth_waiter *w;

	while ((w = c->waiters) != NULL) {
		c->waiters = w->next;
		attr_conn_unref(&w->conn);
		free((char *)w->id.value);
		free((char *)w->user.value);
		free(w->addr);
		free(w);
		auth_nwaiting--;
	}
	free(c->entry.name);
	free(c->entry.password);
	explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c);
}

/* In the loop: the check is done; its waiters get their answers. */
static void
auth_check_done(void *arg)
{
	struct auth_check *c = arg;
	const struct auth_waiter *w;

	if (hash_get(auth_checks, c->key) == c)
		(void)hash_del(auth_checks, c->key);
	if (!atomic_load(&auth_stopping)) {
		/* Only what the current user file says may be remembered. */
		if (c->known && c->result == AUTH_CHECK_OK &&
		    c->generation == auth_cache_generation)
			auth_cache_add(
			    auth_cache, c->key, event_now_ms(auth_loop));
		for (w = c->waiters; w != NULL; w = w->next)
			auth_waiter_answer(w, c);
	}
	auth_check_free(c);
}

static char *
auth_strndup(const char *s, size_t len)
{
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* The request waits for c's result. */
static void
auth_check_wait(
    struct auth_check *c, struct attr_conn *conn, const struct auth_req *r)
{
	struct auth_waiter *w = xcalloc(1, sizeof(*w));
	const struct attr *id = attr_find(r->attrs, ATTR_ID);

	w->conn = conn;
	attr_conn_ref(conn);
	if (id != NULL) {
		w->id.name = ATTR_ID;
		w->id.value = auth_strndup(id->value, id->len);
		w->id.len = id->len;
	}
	w->user.name = AUTH_ATTR_USER;
	w->user.value = auth_strndup(r->user->value, r->user->len);
	w->user.len = r->user->len;
	w->addr = xstrdup(r->addr);
	memcpy(w->addr_key, r->addr_key, sizeof(w->addr_key));
	w->service = r->service;
	w->next = c->waiters;
	c->waiters = w;
	auth_nwaiting++;
}

/*
 * A password: answered at once from the cache, else joins the check in
 * flight for the same user and password, else queues a new one.
 */
static void
auth_password(struct attr_conn *conn, const struct auth_req *r)
{
	const struct userdb_entry *e;
	enum auth_db_result found = auth_db_find(r->user->value, &e);
	char key[AUTH_CACHE_KEY_SIZE];
	struct auth_check *c;

	if (found == AUTH_DB_UNAVAILABLE) {
		auth_tempfail(conn, r, AUTH_TEXT_UNAVAIL);
		return;
	}
	/* A password changed or a user removed: nothing learnt before
	 * holds. */
	if (auth_db_generation() != auth_cache_generation) {
		auth_cache_flush(auth_cache);
		auth_cache_generation = auth_db_generation();
	}
	auth_cache_key(auth_cache, r->user->value, r->password->value, key);
	if (found == AUTH_DB_OK &&
	    auth_cache_hit(auth_cache, key, event_now_ms(auth_loop))) {
		auth_succeeded(conn, r, e->name, ", cached");
		return;
	}
	if (auth_nwaiting >= AUTH_QUEUE_MAX) {
		auth_tempfail(conn, r, AUTH_TEXT_QUEUE);
		return;
	}
	c = hash_get(auth_checks, key);
	if (c == NULL || c->generation != auth_cache_generation) {
		c = xcalloc(1, sizeof(*c));
		memcpy(c->key, key, sizeof(c->key));
		c->entry.name = xstrdup(e->name);
		c->entry.password = xstrdup(e->password);
		c->entry.rest = NULL;
		c->password = xstrdup(r->password->value);
		c->known = found == AUTH_DB_OK;
		c->queued_ms = event_now_ms(auth_loop);
		c->generation = auth_cache_generation;
		/* An older check of the same key still runs, for the
		 * previous user file; this one takes the name. */
		(void)hash_put(auth_checks, c->key, c);
		workpool_submit(
		    auth_workers, auth_check_run, auth_check_done, c);
	}
	auth_check_wait(c, conn, r);
}

static int
auth_request(struct attr_conn *conn, const struct attr_list *attrs)
{
	struct auth_req r;

	if (auth_req_parse(attrs, &r) < 0)
		return -1;
	/* Memory for waiting failures is bounded; the check is skipped,
	 * so a flood learns nothing from these answers. */
	if (auth_ndelayed >= AUTH_DELAYED_MAX) {
		auth_tempfail(conn, &r, AUTH_TEXT_BUSY);
		return 0;
	}
	if (!auth_text_ok(r.user, USERDB_NAME_MAX)) {
		auth_failed(conn, &r, NULL, "malformed user name");
		return 0;
	}
	if (!auth_text_ok(r.password, USERDB_PASSWORD_MAX)) {
		auth_failed(conn, &r, NULL, "malformed password");
		return 0;
	}
	if (r.apop && (r.password->len != AUTH_APOP_DIGEST_LEN ||
	                  !auth_text_ok(r.challenge, AUTH_APOP_CHALLENGE_MAX))) {
		auth_failed(conn, &r, NULL, "malformed APOP digest");
		return 0;
	}
	if (r.apop)
		auth_apop(conn, &r);
	else
		auth_password(conn, &r);
	return 0;
}

static const struct attr_server_ops auth_server_ops = {
    .request = auth_request,
};

static void
auth_accept(int fd, const struct server_listener *l, struct event_loop *loop)
{
	const struct attr_server_limits lim = {
	    .request_max = AUTH_REQUEST_MAX,
	    .conns_max = AUTH_CLIENTS_MAX,
	    .idle_ms = (uint64_t)var_ipc_timeout * AUTH_MS_PER_SEC,
	};

	(void)l;
	attr_server_accept(fd, loop, &auth_server_ops, &lim);
}

/* $auth_worker_count, or one per online CPU for 0. */
static int
auth_worker_count(void)
{
	long n = var_auth_worker_count;

	if (n == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
		if (n > AUTH_WORKERS_AUTO_MAX)
			n = AUTH_WORKERS_AUTO_MAX;
	}
	return (int)n;
}

static void
auth_init(struct event_loop *loop)
{
	uint64_t window_ms =
	    (uint64_t)var_auth_failure_window * AUTH_MS_PER_SEC;

	auth_loop = loop;
	auth_fail_addrs = auth_fail_create(AUTH_FAIL_KEYS_MAX, window_ms);
	auth_fail_users = auth_fail_create(AUTH_FAIL_KEYS_MAX, window_ms);
	auth_db_init();
	auth_cache = auth_cache_create((size_t)var_auth_cache_size,
	    (uint64_t)var_auth_cache_ttl * AUTH_MS_PER_SEC);
	auth_cache_generation = auth_db_generation();
	auth_checks = hash_create();
	auth_workers = workpool_create(loop, auth_worker_count());
	msg_debug("hashing threads: %d", workpool_threads(auth_workers));
}

/*
 * Failures still waiting are dropped, not answered early: their clients
 * see the connection close, which they take as a temporary failure.
 */
static void
auth_shutdown(void)
{
	/* Checks not started are skipped; their requests go unanswered,
	 * like the delayed failures. */
	atomic_store(&auth_stopping, 1);
	workpool_free(&auth_workers);
	hash_free(&auth_checks, NULL);
	auth_cache_free(&auth_cache);
	while (auth_delayed_list != NULL)
		auth_delayed_free(auth_delayed_list);
	attr_server_close_all();
	auth_db_shutdown();
	auth_fail_free(&auth_fail_addrs);
	auth_fail_free(&auth_fail_users);
}

static const struct server_ops auth_ops = {
    .name = "auth",
    .mode = SERVER_MULTI,
    .init = auth_init,
    .accept = auth_accept,
    .shutdown = auth_shutdown,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &auth_ops);
}
