/* SPDX-License-Identifier: MIT */
/*
 * Where a message goes and the loop over its exchangers (RFC 5321 5.1):
 * the nexthop ("domain", "[host]", "host:port", "[host]:port", as
 * Postfix writes them) becomes an ordered list of addresses through
 * lib/dns (MX, with random order among equal preferences, or the
 * host's own addresses for "[host]"), minus this host and anything it
 * prefers less (the MX loop rule); then each address in turn until one
 * answers for every recipient, then smtp_fallback_relay. A refused or
 * timed-out connection, a 4xx or 5xx greeting, a lost session and a 4xx
 * to MAIL or DATA move on to the next address; what is still pending at
 * the end is deferred with the last reason.
 *
 * One idle session is kept (smtp_cache) for smtp_connection_reuse_time:
 * the queue manager gives a process the next request for the destination
 * it last served, so a burst to one site runs over one connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/event.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "dns/dns.h"
#include "dns/dns_mx.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/services.h"
#include "smtp.h"

#define SMTP_MS_PER_SEC  1000
/* Addresses this host listens on (inet_interfaces, services.conf). */
#define SMTP_SELF_MAX    256
#define SMTP_WHY_MAX     1024

static struct event_loop *smtp_dns_loop;
static struct dns *smtp_dns;
static struct sockaddr_storage smtp_self[SMTP_SELF_MAX];
static int smtp_nself;
static int smtp_self_all; /* inet_interfaces = all: every local address */
static struct smtp_sess smtp_cache;

/* ---- this host's addresses --------------------------------------- */

static void
smtp_self_add_sa(const struct sockaddr *sa)
{
	size_t len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                      : sizeof(struct sockaddr_in6);

	if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    smtp_nself == SMTP_SELF_MAX)
		return;
	memset(&smtp_self[smtp_nself], 0, sizeof(smtp_self[0]));
	memcpy(&smtp_self[smtp_nself++], sa, len);
}

/* An address literal, optionally in brackets; names are not resolved. */
static void
smtp_self_add_text(const char *s)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']' &&
	    len - 2 < sizeof(tmp)) {
		memcpy(tmp, s + 1, len - 2);
		tmp[len - 2] = '\0';
		s = tmp;
	}
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, s, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		smtp_self_add_sa((struct sockaddr *)&sin);
	} else if (inet_pton(AF_INET6, s, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		smtp_self_add_sa((struct sockaddr *)&sin6);
	}
}

static void
smtp_self_add_list(const char *value)
{
	char **list = config_list(value);
	int i;

	for (i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], "all") == 0)
			smtp_self_all = 1;
		else if (strcmp(list[i], "loopback-only") == 0) {
			smtp_self_add_text("127.0.0.1");
			smtp_self_add_text("::1");
		} else
			smtp_self_add_text(list[i]);
	}
	config_list_free(list);
}

/* HOST of the HOST:PORT inet services in services.conf. */
static void
smtp_self_add_services(void)
{
	char *path = xasprintf("%s/services.conf", var_config_directory);
	struct service_def *list;
	const char *err, *colon;
	char *host;
	int n, i;

	if (services_load(path, (int)var_default_process_limit, &list, &n,
	        &err) < 0) {
		msg_warn("%s: listening addresses there are not known", err);
		free(path);
		return;
	}
	for (i = 0; i < n; i++) {
		if (list[i].type != SERVICE_INET ||
		    (colon = strrchr(list[i].name, ':')) == NULL)
			continue;
		host = xstrndup(list[i].name, (size_t)(colon - list[i].name));
		smtp_self_add_text(host);
		free(host);
	}
	services_free(&list, n);
	free(path);
}

static void
smtp_self_add_interfaces(void)
{
	struct ifaddrs *ifs, *i;

	if (getifaddrs(&ifs) < 0) {
		msg_warn("getifaddrs: %m");
		return;
	}
	for (i = ifs; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL)
			smtp_self_add_sa(i->ifa_addr);
	freeifaddrs(ifs);
}

static int
smtp_sa_same_addr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a,
	                          *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return memcmp(&a6->sin6_addr, &b6->sin6_addr,
	           sizeof(a6->sin6_addr)) == 0;
}

static int
smtp_is_self(const struct smtp_target *t)
{
	int i;

	if (str_eq_ci(t->host, var_myhostname))
		return 1;
	for (i = 0; i < smtp_nself; i++)
		if (smtp_sa_same_addr(&t->sa, &smtp_self[i]))
			return 1;
	return 0;
}

/* ---- set-up ------------------------------------------------------- */

int
smtp_connect_init(void)
{
	const char *err;

	if (strcmp(var_smtp_address_preference, "any") != 0 &&
	    strcmp(var_smtp_address_preference, "ipv4") != 0 &&
	    strcmp(var_smtp_address_preference, "ipv6") != 0) {
		msg_error("smtp_address_preference: '%s' is not any, ipv4 or "
		          "ipv6",
		    var_smtp_address_preference);
		return -1;
	}
	smtp_nself = 0;
	smtp_self_all = 0;
	smtp_self_add_list(var_inet_interfaces);
	smtp_self_add_list(var_proxy_interfaces);
	smtp_self_add_services();
	if (smtp_self_all)
		smtp_self_add_interfaces();
	if (smtp_dns == NULL) {
		smtp_dns_loop = event_loop_create();
		smtp_dns = dns_create(smtp_dns_loop, var_dns_servers,
		    (unsigned)(var_dns_lookup_timeout * SMTP_MS_PER_SEC), &err);
		if (smtp_dns == NULL) {
			msg_error("dns_servers: %s", err);
			event_loop_free(&smtp_dns_loop);
			return -1;
		}
	}
	return 0;
}

void
smtp_connect_shutdown(void)
{
	dns_free(&smtp_dns);
	event_loop_free(&smtp_dns_loop);
}

/* ---- nexthop and DNS ------------------------------------------------ */

/*
 * Splits nexthop into m->domain, m->port and m->no_mx. "[host]" and
 * address literals are not looked up as MX. 0, or -1 for a bad one.
 */
static int
smtp_nexthop_parse(struct smtp_msg *m, const char *nexthop)
{
	const char *p = nexthop, *end, *colon;
	uint64_t port = (uint64_t)var_smtp_tcp_port;
	size_t len;

	m->no_mx = 0;
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return -1;
		m->no_mx = 1;
		len = (size_t)(end - p - 1);
		p++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(p, ':');
		len = colon != NULL ? (size_t)(colon - p) : strlen(p);
	}
	if (colon != NULL && str_to_u64(colon + 1, 65535, &port) < 0)
		return -1;
	if (len == 0 || len >= sizeof(m->domain) || port == 0)
		return -1;
	memcpy(m->domain, p, len);
	m->domain[len] = '\0';
	if (len > 5 && str_prefix_ci(m->domain, 5, "ipv6:"))
		memmove(m->domain, m->domain + 5, len - 4);
	m->port = (unsigned)port;
	return 0;
}

struct smtp_lookup {
	int done;
	enum dns_mx_status status;
	char dsn[SMTP_DSN_MAX];
	char *reason;
	struct smtp_target *t;
	int n;
	unsigned port;
	unsigned best_pref; /* dns_mx_result.best_pref */
};

static void
smtp_lookup_done(const struct dns_mx_result *r, void *ctx)
{
	struct smtp_lookup *l = ctx;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	int i;

	l->done = 1;
	l->status = r->status;
	snprintf(l->dsn, sizeof(l->dsn), "%s", r->dsn);
	l->reason = xstrdup(r->reason != NULL ? r->reason : "");
	l->best_pref = r->best_pref;
	for (i = 0; r->status == DNS_MX_OK && i < r->n &&
	            l->n < SMTP_TARGETS_MAX;
	     i++) {
		struct smtp_target *t = &l->t[l->n++];

		memset(t, 0, sizeof(*t));
		snprintf(t->host, sizeof(t->host), "%s", r->t[i].host);
		t->pref = r->t[i].pref;
		memcpy(&t->sa, &r->t[i].addr, r->t[i].addrlen);
		t->salen = r->t[i].addrlen;
		t->port = l->port;
		if (t->sa.ss_family == AF_INET) {
			sin = (struct sockaddr_in *)&t->sa;
			sin->sin_port = htons((uint16_t)l->port);
			inet_ntop(AF_INET, &sin->sin_addr, t->addr,
			    sizeof(t->addr));
		} else {
			sin6 = (struct sockaddr_in6 *)&t->sa;
			sin6->sin6_port = htons((uint16_t)l->port);
			inet_ntop(AF_INET6, &sin6->sin6_addr, t->addr,
			    sizeof(t->addr));
		}
	}
	event_loop_stop(smtp_dns_loop);
}

/*
 * smtp_address_preference as Postfix means it: among exchangers of equal
 * preference, which family is tried first (any: as DNS gave them, a
 * host's IPv6 addresses before its IPv4 ones). Stable, so the random
 * order of equal MX hosts stays.
 */
static void
smtp_order_family(struct smtp_lookup *l)
{
	int family, i, j, start, k;
	struct smtp_target *tmp;

	if (strcmp(var_smtp_address_preference, "ipv4") == 0)
		family = AF_INET;
	else if (strcmp(var_smtp_address_preference, "ipv6") == 0)
		family = AF_INET6;
	else
		return;
	tmp = xcalloc(SMTP_TARGETS_MAX, sizeof(*tmp));
	for (start = 0; start < l->n; start = j) {
		for (j = start; j < l->n && l->t[j].pref == l->t[start].pref; j++)
			;
		k = 0;
		for (i = start; i < j; i++)
			if (l->t[i].sa.ss_family == family)
				tmp[k++] = l->t[i];
		for (i = start; i < j; i++)
			if (l->t[i].sa.ss_family != family)
				tmp[k++] = l->t[i];
		memcpy(&l->t[start], tmp, (size_t)k * sizeof(*tmp));
	}
	free(tmp);
}

/* Blocking: the targets of one nexthop, through the process's loop. */
static void
smtp_lookup(struct smtp_lookup *l, const char *domain, int no_mx,
    unsigned port)
{
	struct dns_mx_query *q;

	memset(l, 0, sizeof(*l));
	l->t = xcalloc(SMTP_TARGETS_MAX, sizeof(*l->t));
	l->port = port;
	q = dns_mx_resolve(smtp_dns, domain, no_mx ? DNS_MX_NO_MX : 0,
	    DNS_ADDR_ANY, smtp_lookup_done, l);
	while (!l->done)
		if (event_loop_run(smtp_dns_loop) < 0) {
			msg_warn("event loop: %m");
			dns_mx_cancel(&q);
			l->status = DNS_MX_TEMPFAIL;
			snprintf(l->dsn, sizeof(l->dsn), "4.4.3");
			l->reason = xstrdup("local DNS failure");
			l->done = 1;
		}
	smtp_order_family(l);
}

static void
smtp_lookup_free(struct smtp_lookup *l)
{
	free(l->reason);
	free(l->t);
}

/* What the MX loop rule left of a lookup. */
enum smtp_trim {
	SMTP_TRIM_OK,      /* exchangers better than this host remain */
	SMTP_TRIM_LOOP,    /* this host is the best: mail would loop */
	SMTP_TRIM_PRIMARY  /* the better ones have no address (now) */
};

/*
 * The MX loop rule (RFC 5321 5.1): when this host is one of the
 * exchangers, only those it prefers more may get the mail (never itself,
 * nor an equal or worse one, which would send it back here).
 */
static enum smtp_trim
smtp_trim_self(struct smtp_lookup *l)
{
	unsigned self_pref = 0;
	int i, k, self = 0;

	for (i = 0; i < l->n; i++)
		if (smtp_is_self(&l->t[i]) && (!self || l->t[i].pref < self_pref)) {
			self = 1;
			self_pref = l->t[i].pref;
		}
	if (!self)
		return SMTP_TRIM_OK;
	for (i = k = 0; i < l->n; i++)
		if (l->t[i].pref < self_pref)
			l->t[k++] = l->t[i];
	l->n = k;
	if (k > 0)
		return SMTP_TRIM_OK;
	/* A better exchanger whose address lookup failed is still the
	 * primary: this host is a backup that must wait (Postfix). */
	return l->best_pref < self_pref ? SMTP_TRIM_PRIMARY : SMTP_TRIM_LOOP;
}

/* ---- connections -------------------------------------------------- */

/* A connected socket, or -1 with why. */
static int
smtp_connect_addr(const struct smtp_target *t, char *why, size_t whylen)
{
	struct pollfd p;
	struct addrinfo hints, *ai = NULL;
	int fd, err = 0, rc;
	socklen_t len = sizeof(err);

	fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		snprintf(why, whylen, "cannot make a socket: %s",
		    strerror(errno));
		return -1;
	}
	if (*var_smtp_bind_address != '\0' && t->sa.ss_family == AF_INET) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET;
		hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
		if (getaddrinfo(var_smtp_bind_address, NULL, &hints, &ai) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			snprintf(why, whylen, "cannot bind to %s: %s",
			    var_smtp_bind_address,
			    ai == NULL ? "not an IPv4 address" : strerror(errno));
			if (ai != NULL)
				freeaddrinfo(ai);
			close(fd);
			return -1;
		}
		freeaddrinfo(ai);
	}
	if (connect(fd, (const struct sockaddr *)&t->sa, t->salen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	p.fd = fd;
	p.events = POLLOUT;
	do
		rc = poll(&p, 1, (int)(var_smtp_connect_timeout * SMTP_MS_PER_SEC));
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		close(fd);
		snprintf(why, whylen, "connect to %s[%s]:%u: Connection timed out",
		    t->host, t->addr, t->port);
		return -1;
	}
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0)
		return fd;
fail:
	close(fd);
	snprintf(why, whylen, "connect to %s[%s]:%u: %s", t->host, t->addr,
	    t->port, strerror(err));
	return -1;
}

/* ---- the session cache -------------------------------------------- */

int
smtp_cache_ms_left(void)
{
	double left;

	if (!smtp_cache.open)
		return -1;
	left = smtp_cache.idle_since + (double)var_smtp_connection_reuse_time -
	       smtp_now();
	return left <= 0 ? 0 : (int)(left * SMTP_MS_PER_SEC) + 1;
}

void
smtp_cache_expire(int force)
{
	if (smtp_cache.open && (force || smtp_cache_ms_left() == 0))
		smtp_sess_close(&smtp_cache, 1);
}

/* ---- delivery ----------------------------------------------------- */

/*
 * After a session decided what it could: kept for the next message to
 * this nexthop when it is in step and nothing is left for elsewhere,
 * else closed. 1 when the request is settled.
 */
static int
smtp_sess_done(struct smtp_sess *s, const struct smtp_msg *m)
{
	if (!s->reusable || smtp_pending(m) > 0 ||
	    var_smtp_connection_reuse_time == 0)
		smtp_sess_close(s, 1);
	else
		s->idle_since = smtp_now();
	return smtp_pending(m) == 0;
}

/* Every pending recipient gets the same answer. */
static void
smtp_all(struct smtp_msg *m, const char *result, const char *dsn,
    const char *relay, const char *text)
{
	int i;

	for (i = 0; i < m->n; i++)
		smtp_rcpt_set(m, &m->r[i], result, dsn, "", "x-tern", relay,
		    text, NULL);
}

static void
smtp_note_failure(struct smtp_msg *m, const char *dsn, const char *relay,
    const char *why)
{
	snprintf(m->last_dsn, sizeof(m->last_dsn), "%s", dsn);
	/* Only deferrals are made of it: another try may work. */
	m->last_dsn[0] = '4';
	snprintf(m->last_relay, sizeof(m->last_relay), "%s", relay);
	free(m->last_text);
	m->last_text = xstrdup(why);
}

/*
 * One target: connect, set up and run the transaction; on the way a
 * failed STARTTLS under "may" gets one plain retry. 1 when the request
 * is settled (nothing left to try elsewhere), else 0.
 */
static int
smtp_try_target(struct smtp_msg *m, const struct smtp_target *t)
{
	char why[SMTP_WHY_MAX], relay[SMTP_RELAY_MAX];
	enum smtp_sess_result r;
	struct smtp_sess *s = &smtp_cache;
	int fd, no_tls = 0, attempt;

	snprintf(relay, sizeof(relay), "%s[%s]:%u", t->host, t->addr, t->port);
	for (attempt = 0; attempt < 2; attempt++) {
		fd = smtp_connect_addr(t, why, sizeof(why));
		if (fd < 0) {
			msg_info("%s: %s", m->id, why);
			smtp_note_failure(m, "4.4.1", "", why);
			break;
		}
		m->any_connected = 1;
		smtp_sess_open(s, m, t, fd);
		r = smtp_sess_setup(s, m, no_tls);
		if (r == SMTP_SESS_OK) {
			m->t_conn = smtp_now();
			r = smtp_sess_mail(s, m);
		}
		if (r == SMTP_SESS_RETRY_PLAIN) {
			msg_info("%s: %s; trying without TLS", m->id,
			    buf_cstr(&s->why));
			smtp_sess_close(s, 0);
			no_tls = 1;
			continue;
		}
		if (r == SMTP_SESS_NEXT) {
			msg_info("%s: %s", m->id, buf_cstr(&s->why));
			smtp_note_failure(m, s->dsn, relay, buf_cstr(&s->why));
			smtp_sess_close(s, 0);
			break;
		}
		return smtp_sess_done(s, m);
	}
	return 0;
}

/* The cached session, if it serves this nexthop: 1 settled, else 0. */
static int
smtp_try_cached(struct smtp_msg *m)
{
	struct smtp_sess *s = &smtp_cache;
	enum smtp_sess_result r;

	if (!s->open)
		return 0;
	if (strcmp(s->dest, m->nexthop) != 0 || smtp_cache_ms_left() == 0) {
		smtp_sess_close(s, 1);
		return 0;
	}
	m->any_connected = 1;
	m->t_conn = smtp_now();
	r = smtp_sess_mail(s, m);
	if (r == SMTP_SESS_NEXT) {
		/* A peer that dropped an idle session is no failure. */
		msg_debug("%s: cached session: %s", m->id, buf_cstr(&s->why));
		smtp_sess_close(s, 0);
		m->t_conn = 0;
		return 0;
	}
	return smtp_sess_done(s, m);
}

/* Tries the targets of one nexthop. 1 settled, else 0. */
static int
smtp_try_nexthop(struct smtp_msg *m, int fallback)
{
	struct smtp_lookup l;
	char text[SMTP_WHY_MAX];
	enum smtp_trim trim;
	int i, settled = 0;

	smtp_lookup(&l, m->domain, m->no_mx, m->port);
	switch (l.status) {
	case DNS_MX_OK:
		break;
	case DNS_MX_TEMPFAIL:
		smtp_note_failure(m, l.dsn, "", l.reason);
		smtp_lookup_free(&l);
		return 0;
	default:
		/* Null MX, no such domain, no exchanger address. */
		if (fallback) {
			smtp_note_failure(m, l.dsn, "", l.reason);
			smtp_lookup_free(&l);
			return 0;
		}
		smtp_all(m, "bounce", l.dsn, "none", l.reason);
		smtp_lookup_free(&l);
		return 1;
	}
	trim = !m->no_mx && !fallback ? smtp_trim_self(&l) : SMTP_TRIM_OK;
	if (trim == SMTP_TRIM_PRIMARY) {
		snprintf(text, sizeof(text), "unable to find primary relay for %s",
		    m->domain);
		smtp_note_failure(m, "4.4.4", "", text);
		smtp_lookup_free(&l);
		return 0;
	}
	if (trim == SMTP_TRIM_LOOP) {
		snprintf(text, sizeof(text), "mail for %s loops back to myself",
		    m->domain);
		/*
		 * Postfix bounces (5.4.6). A backup MX of a relay domain that
		 * finds itself the best MX sees a DNS change in progress or a
		 * mistake its admin can fix: it keeps the site's mail for
		 * backup_queue_lifetime rather than return all of it. Either
		 * way no fallback relay gets it: that would make it worse.
		 */
		if (resolve_domain_listed(var_relay_domains, m->domain))
			smtp_all(m, "defer", "4.4.6", "none", text);
		else
			smtp_all(m, "bounce", "5.4.6", "none", text);
		smtp_lookup_free(&l);
		return 1;
	}
	for (i = 0; i < l.n && !settled; i++)
		settled = smtp_try_target(m, &l.t[i]);
	smtp_lookup_free(&l);
	return settled;
}

void
smtp_deliver(struct smtp_msg *m)
{
	char **relays;
	int i, settled;

	if (smtp_nexthop_parse(m, m->nexthop) < 0) {
		smtp_all(m, "defer", "4.3.5", "none",
		    "bad nexthop in the transport configuration");
		return;
	}
	smtp_policy(m);
	settled = smtp_try_cached(m);
	if (!settled)
		settled = smtp_try_nexthop(m, 0);
	relays = config_list(var_smtp_fallback_relay);
	for (i = 0; !settled && relays[i] != NULL; i++) {
		if (smtp_nexthop_parse(m, relays[i]) < 0) {
			msg_warn("smtp_fallback_relay: bad entry '%s'",
			    relays[i]);
			continue;
		}
		settled = smtp_try_nexthop(m, 1);
	}
	config_list_free(relays);
	if (!settled)
		smtp_all(m, "defer", m->last_dsn[0] != '\0' ? m->last_dsn : "4.4.1",
		    m->last_relay,
		    m->last_text != NULL ? m->last_text
		                         : "no exchanger could be reached");
}
