/* SPDX-License-Identifier: MIT */
/*
 * Resolving a mail destination (RFC 5321 5.1): the MX lookup, then the
 * address lookups of every exchanger at once, then one ordered list of
 * targets. A request is a small state machine over dns_lookup() queries:
 * the MX query, and then up to two queries (AAAA, A) per exchanger,
 * counted in "pending"; the last answer to come builds the result and
 * calls back. A result decided without any lookup (an address literal)
 * is delivered from a 0 ms timer, so no callback ever runs inside
 * dns_mx_resolve().
 *
 * A request is a dns_child of its resolver: dns_free() drops it with
 * everything it holds, as dns.h promises for pending handles.
 *
 * RFC 5321 5.1 (MX, implicit MX, literals are no host names), RFC 7505
 * (null MX), RFC 3463 (the enhanced status codes), RFC 2308 (NXDOMAIN is
 * not NODATA).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/event.h"
#include "base/log.h"
#include "base/mem.h"
#include "dns/dns.h"
#include "dns/dns_mx.h"
#include "dns/dns_private.h"

/* Room for a result's reason: a fixed text and one or two names. */
#define MX_REASON_MAX (3 * DNS_NAME_MAX + 128)
/* The address queries of one exchanger: AAAA, then A. */
#define MX_LOOK_AAAA  0
#define MX_LOOK_A     1
#define MX_LOOKS      2
/* RFC 5321 4.1.3: "[IPv6:" before an IPv6 literal. */
#define MX_IPV6_TAG   "IPv6:"
/* splitmix64 (Steele, Lea, Flood 2014): shuffles, not secrets. */
#define MX_RNG_GAMMA  0x9e3779b97f4a7c15ull
#define MX_RNG_MUL1   0xbf58476d1ce4e5b9ull
#define MX_RNG_MUL2   0x94d049bb133111ebull
#define MX_RNG_SHIFT1 30
#define MX_RNG_SHIFT2 27
#define MX_RNG_SHIFT3 31

#define MX_CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct mx_host;

/* One address query of one exchanger. */
struct mx_look {
	struct mx_host *h;
	enum dns_type type;
	struct dns_query *q; /* NULL once answered */
};

struct mx_host {
	struct dns_mx_query *m;
	char name[DNS_NAME_MAX + 1];
	unsigned pref;
	struct mx_look look[MX_LOOKS];
	struct in6_addr *a6;
	int n6;
	struct in_addr *a4;
	int n4;
};

struct dns_mx_query {
	struct dns_child child;
	struct dns *d;
	char *domain;                /* as given */
	char name[DNS_NAME_MAX + 1]; /* for reasons: sanitized, no dot */
	int flags;
	enum dns_addr_pref pref;
	dns_mx_cb *cb;
	void *ctx;
	struct dns_query *mxq; /* the MX query, until answered */
	int implicit;          /* no MX: the domain is the exchanger */
	struct mx_host *hosts;
	int nhosts;
	int pending; /* address queries out */
	/* The failed address lookup the reason names: the last temporary
	 * one if any, else the last one. */
	int tempfail;
	char fail_name[DNS_NAME_MAX + 1];
	enum dns_type fail_type;
	struct event_timer *timer;    /* a result known without lookups */
	struct dns_mx_target literal; /* that result's one target */
	int in_cb;                    /* the callback is running */
	char reason[MX_REASON_MAX];
};

static __thread uint64_t mx_rng_state;
static __thread int mx_rng_seeded;

const char *
dns_mx_status_str(enum dns_mx_status status)
{
	switch (status) {
	case DNS_MX_OK:
		return "ok";
	case DNS_MX_NULL:
		return "null MX";
	case DNS_MX_NOTFOUND:
		return "not found";
	case DNS_MX_TEMPFAIL:
		return "temporary failure";
	}
	return "unknown status";
}

static uint64_t
mx_rng_next(void)
{
	uint64_t z;

	if (!mx_rng_seeded) {
		if (getrandom(&mx_rng_state, sizeof(mx_rng_state),
		        GRND_NONBLOCK) != (ssize_t)sizeof(mx_rng_state))
			mx_rng_state =
			    (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		mx_rng_seeded = 1;
	}
	z = (mx_rng_state += MX_RNG_GAMMA);
	z = (z ^ (z >> MX_RNG_SHIFT1)) * MX_RNG_MUL1;
	z = (z ^ (z >> MX_RNG_SHIFT2)) * MX_RNG_MUL2;
	return z ^ (z >> MX_RNG_SHIFT3);
}

static const char *
mx_type_str(enum dns_type type)
{
	switch (type) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_MX:
		return "MX";
	case DNS_T_TXT:
		return "TXT";
	}
	return "?";
}

/* A name for a reason: printable, no trailing dot. */
static void
mx_name_copy(char *out, size_t outsize, const char *name)
{
	size_t len;

	snprintf(out, outsize, "%s", log_sanitize(name, outsize - 1));
	len = strlen(out);
	if (len > 1 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

/* --- lifetime --- */

static void
mx_free(struct dns_mx_query *m)
{
	int i, j;

	dns_child_detach(&m->child);
	dns_cancel(&m->mxq);
	event_timer_del(&m->timer);
	for (i = 0; i < m->nhosts; i++) {
		for (j = 0; j < MX_LOOKS; j++)
			dns_cancel(&m->hosts[i].look[j].q);
		free(m->hosts[i].a6);
		free(m->hosts[i].a4);
	}
	free(m->hosts);
	free(m->domain);
	free(m);
}

/* dns_free() with m pending, or inside m's callback. */
static void
mx_drop(struct dns_child *c)
{
	struct dns_mx_query *m = MX_CONTAINER(c, struct dns_mx_query, child);

	if (!m->in_cb)
		mx_free(m);
	/* else mx_deliver() frees it when the callback returns */
}

/* Calls back with a result and frees m. */
static void
mx_deliver(struct dns_mx_query *m, enum dns_mx_status status, const char *dsn,
    const struct dns_mx_target *t, int n)
{
	struct dns_mx_result r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	r.dsn = status == DNS_MX_OK ? "" : dsn;
	r.reason = status == DNS_MX_OK ? "" : m->reason;
	r.domain = m->domain;
	r.n = status == DNS_MX_OK ? n : 0;
	r.t = r.n > 0 ? t : NULL;
	/* dns.c sorted the exchangers: the first is among the best. */
	r.best_pref = m->nhosts > 0 ? m->hosts[0].pref : 0;
	m->in_cb = 1;
	m->cb(&r, m->ctx);
	m->in_cb = 0;
	mx_free(m);
}

static void
mx_fail(struct dns_mx_query *m, enum dns_mx_status status, const char *dsn,
    const char *name, enum dns_type type)
{
	char n[DNS_NAME_MAX + 2];

	mx_name_copy(n, sizeof(n), name);
	snprintf(m->reason, sizeof(m->reason),
	    "Host or domain name not found. Name service error for name=%s "
	    "type=%s: Host not found%s",
	    n, mx_type_str(type),
	    status == DNS_MX_TEMPFAIL ? ", try again" : "");
	mx_deliver(m, status, dsn, NULL, 0);
}

/* --- addresses --- */

/* Appends h's addresses of the families asked to t[*n..max). */
static void
mx_host_targets(
    const struct mx_host *h, struct dns_mx_target *t, int *n, int max)
{
	struct sockaddr_in6 *sin6;
	struct sockaddr_in *sin;
	int i;

	for (i = 0; i < h->n6 && *n < max; i++, (*n)++) {
		memset(&t[*n], 0, sizeof(t[*n]));
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", h->name);
		t[*n].pref = h->pref;
		sin6 = (struct sockaddr_in6 *)&t[*n].addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = h->a6[i];
		t[*n].addrlen = sizeof(*sin6);
	}
	for (i = 0; i < h->n4 && *n < max; i++, (*n)++) {
		memset(&t[*n], 0, sizeof(t[*n]));
		snprintf(t[*n].host, sizeof(t[*n].host), "%s", h->name);
		t[*n].pref = h->pref;
		sin = (struct sockaddr_in *)&t[*n].addr;
		sin->sin_family = AF_INET;
		sin->sin_addr = h->a4[i];
		t[*n].addrlen = sizeof(*sin);
	}
}

/* Every address query has answered: the result. */
static void
mx_addresses_done(struct dns_mx_query *m)
{
	struct dns_mx_target *t;
	int total = 0, n = 0, i;

	for (i = 0; i < m->nhosts; i++)
		total += m->hosts[i].n6 + m->hosts[i].n4;
	if (total == 0) {
		if (m->tempfail)
			mx_fail(m, DNS_MX_TEMPFAIL, "4.4.3", m->fail_name,
			    m->fail_type);
		else if (m->implicit)
			/* neither MX nor address: no mail domain */
			mx_fail(m, DNS_MX_NOTFOUND, "5.1.2", m->fail_name,
			    m->fail_type);
		else if (m->flags & DNS_MX_NO_MX)
			mx_fail(m, DNS_MX_NOTFOUND, "5.4.4", m->fail_name,
			    m->fail_type);
		else {
			snprintf(m->reason, sizeof(m->reason),
			    "no MX host for %s has a valid address record",
			    m->name);
			mx_deliver(m, DNS_MX_NOTFOUND, "5.4.4", NULL, 0);
		}
		return;
	}
	if (total > DNS_MX_TARGETS_MAX)
		total = DNS_MX_TARGETS_MAX;
	t = xcalloc((size_t)total, sizeof(*t));
	for (i = 0; i < m->nhosts; i++)
		mx_host_targets(&m->hosts[i], t, &n, total);
	mx_deliver(m, DNS_MX_OK, "", t, n);
	free(t);
}

static void
mx_addr_cb(const struct dns_answer *a, void *ctx)
{
	struct mx_look *l = ctx;
	struct mx_host *h = l->h;
	struct dns_mx_query *m = h->m;
	int i;

	l->q = NULL;
	m->pending--;
	if (a->status == DNS_OK && a->type == DNS_T_AAAA && h->a6 == NULL) {
		h->a6 = xcalloc((size_t)a->n, sizeof(*h->a6));
		for (i = 0; i < a->n; i++)
			h->a6[i] = a->rr[i].aaaa;
		h->n6 = a->n;
	} else if (a->status == DNS_OK && a->type == DNS_T_A && h->a4 == NULL) {
		h->a4 = xcalloc((size_t)a->n, sizeof(*h->a4));
		for (i = 0; i < a->n; i++)
			h->a4[i] = a->rr[i].a;
		h->n4 = a->n;
	} else if (a->status != DNS_OK &&
	           (a->status == DNS_TEMPFAIL || !m->tempfail)) {
		/* the reason names a temporary failure over a permanent
		 * one: that is the one that makes it a deferral */
		if (a->status == DNS_TEMPFAIL)
			m->tempfail = 1;
		mx_name_copy(m->fail_name, sizeof(m->fail_name), h->name);
		m->fail_type = a->type;
	}
	if (m->pending == 0)
		mx_addresses_done(m);
}

/* Asks the address records of every host at once. */
static void
mx_ask_addresses(struct dns_mx_query *m)
{
	struct mx_host *h;
	int i, j;

	for (i = 0; i < m->nhosts; i++) {
		h = &m->hosts[i];
		h->m = m;
		h->look[MX_LOOK_AAAA].type = DNS_T_AAAA;
		h->look[MX_LOOK_A].type = DNS_T_A;
		for (j = 0; j < MX_LOOKS; j++) {
			h->look[j].h = h;
			if ((h->look[j].type == DNS_T_AAAA &&
			        m->pref == DNS_ADDR_IPV4) ||
			    (h->look[j].type == DNS_T_A &&
			        m->pref == DNS_ADDR_IPV6))
				continue;
			m->pending++;
			/* never answers from in here: pending stays > 0 */
			h->look[j].q = dns_lookup(m->d, h->name,
			    h->look[j].type, mx_addr_cb, &h->look[j]);
		}
	}
}

/* The domain is its own exchanger: implicit MX, or DNS_MX_NO_MX. */
static void
mx_self(struct dns_mx_query *m)
{
	size_t len = strlen(m->domain);

	m->hosts = xcalloc(1, sizeof(*m->hosts));
	m->nhosts = 1;
	if (len > 0 && m->domain[len - 1] == '.')
		len--;
	/* too long: left "", which dns_lookup() answers as a bad name */
	if (len <= DNS_NAME_MAX) {
		memcpy(m->hosts[0].name, m->domain, len);
		m->hosts[0].name[len] = '\0';
	}
	/* what the reason names if nothing is found */
	snprintf(m->fail_name, sizeof(m->fail_name), "%s", m->name);
	m->fail_type = m->pref == DNS_ADDR_IPV6 ? DNS_T_AAAA : DNS_T_A;
	mx_ask_addresses(m);
}

/* --- MX --- */

/* RFC 5321 5.1: an MX naming an address is not to be used as one. */
static int
mx_is_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1 ||
	       inet_pton(AF_INET6, host, &a6) == 1;
}

/* Shuffles each run of equal preference (Fisher-Yates). */
static void
mx_shuffle(struct mx_host *h, int n)
{
	struct mx_host tmp;
	int start, end, i, j;

	for (start = 0; start < n; start = end) {
		for (end = start + 1; end < n && h[end].pref == h[start].pref;
		     end++)
			;
		for (i = end - 1; i > start; i--) {
			j = start +
			    (int)(mx_rng_next() % (uint64_t)(i - start + 1));
			tmp = h[i];
			h[i] = h[j];
			h[j] = tmp;
		}
	}
}

static void
mx_answer_cb(const struct dns_answer *a, void *ctx)
{
	struct dns_mx_query *m = ctx;
	const char *host;
	int i, j, dup;

	m->mxq = NULL;
	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		if (!a->nxdomain) {
			/* RFC 5321 5.1: no MX, the domain's own address */
			m->implicit = 1;
			mx_self(m);
			return;
		}
		mx_fail(m, DNS_MX_NOTFOUND, "5.1.2", m->name, DNS_T_MX);
		return;
	case DNS_TEMPFAIL:
		mx_fail(m, DNS_MX_TEMPFAIL, "4.4.3", m->name, DNS_T_MX);
		return;
	case DNS_FAIL:
		mx_fail(m, DNS_MX_NOTFOUND, "5.1.2", m->name, DNS_T_MX);
		return;
	}
	/* RFC 7505 3: one MX of "." says the domain takes no mail */
	if (a->n == 1 && a->rr[0].mx_host[0] == '\0') {
		snprintf(m->reason, sizeof(m->reason),
		    "mail for %s is refused by a null MX (RFC 7505)", m->name);
		mx_deliver(m, DNS_MX_NULL, "5.1.10", NULL, 0);
		return;
	}
	m->hosts = xcalloc((size_t)a->n, sizeof(*m->hosts));
	for (i = 0; i < a->n; i++) {
		host = a->rr[i].mx_host;
		/* "." among other MX records: not an exchanger (RFC 7505
		 * 3 says it must stand alone); nor an address literal */
		if (host[0] == '\0' || mx_is_literal(host))
			continue;
		for (dup = 0, j = 0; j < m->nhosts && !dup; j++)
			dup = strcasecmp(m->hosts[j].name, host) == 0;
		if (dup)
			continue; /* the first, most preferred, counts */
		snprintf(m->hosts[m->nhosts].name,
		    sizeof(m->hosts[m->nhosts].name), "%s", host);
		m->hosts[m->nhosts].pref = a->rr[i].mx_pref;
		m->nhosts++;
	}
	if (m->nhosts == 0) {
		snprintf(m->reason, sizeof(m->reason),
		    "no MX host for %s has a valid address record", m->name);
		mx_deliver(m, DNS_MX_NOTFOUND, "5.4.4", NULL, 0);
		return;
	}
	/* dns.c sorted by preference: shuffle within each preference */
	mx_shuffle(m->hosts, m->nhosts);
	mx_ask_addresses(m);
}

/* --- literals --- */

/*
 * Fills t from an address literal ("1.2.3.4", "[1.2.3.4]",
 * "[IPv6:2001:db8::1]", "2001:db8::1"); 1 if domain is one, else 0.
 */
static int
mx_literal_target(const char *domain, struct dns_mx_target *t)
{
	char text[DNS_NAME_MAX + 1];
	const char *s = domain;
	size_t len = strnlen(domain, DNS_NAME_MAX + 1);
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
	int v6only = 0;

	if (len > DNS_NAME_MAX)
		return 0;
	if (s[0] == '[') {
		if (len < 2 || s[len - 1] != ']')
			return 0;
		s++;
		len -= 2;
		if (len > strlen(MX_IPV6_TAG) &&
		    strncasecmp(s, MX_IPV6_TAG, strlen(MX_IPV6_TAG)) == 0) {
			s += strlen(MX_IPV6_TAG);
			len -= strlen(MX_IPV6_TAG);
			v6only = 1;
		}
	}
	memcpy(text, s, len);
	text[len] = '\0';
	memset(t, 0, sizeof(*t));
	if (!v6only && inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		t->addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		t->addrlen = sizeof(*sin6);
	} else
		return 0;
	snprintf(t->host, sizeof(t->host), "%s", domain);
	return 1;
}

static void
mx_literal_cb(struct event_timer *timer, void *ctx)
{
	struct dns_mx_query *m = ctx;
	int family = m->literal.addr.ss_family;

	(void)timer;
	event_timer_del(&m->timer);
	if ((family == AF_INET && m->pref == DNS_ADDR_IPV6) ||
	    (family == AF_INET6 && m->pref == DNS_ADDR_IPV4)) {
		snprintf(m->reason, sizeof(m->reason),
		    "address %s is not of the address family in use", m->name);
		mx_deliver(m, DNS_MX_NOTFOUND, "5.4.4", NULL, 0);
		return;
	}
	mx_deliver(m, DNS_MX_OK, "", &m->literal, 1);
}

/* --- the interface --- */

struct dns_mx_query *
dns_mx_resolve(struct dns *d, const char *domain, int flags,
    enum dns_addr_pref pref, dns_mx_cb *cb, void *ctx)
{
	struct dns_mx_query *m = xcalloc(1, sizeof(*m));

	m->d = d;
	m->domain = xstrndup(domain, DNS_NAME_MAX + 1);
	mx_name_copy(m->name, sizeof(m->name), m->domain);
	m->flags = flags;
	m->pref = pref;
	m->cb = cb;
	m->ctx = ctx;
	m->child.drop = mx_drop;
	dns_child_attach(d, &m->child);
	if (mx_literal_target(domain, &m->literal)) {
		m->timer = event_timer_add(dns_loop(d), 0, mx_literal_cb, m);
		return m;
	}
	if (flags & DNS_MX_NO_MX) {
		mx_self(m);
		return m;
	}
	/* a bad name comes back as DNS_FAIL from the loop */
	m->mxq = dns_lookup(d, domain, DNS_T_MX, mx_answer_cb, m);
	return m;
}

void
dns_mx_cancel(struct dns_mx_query **q_r)
{
	struct dns_mx_query *m = *q_r;

	*q_r = NULL;
	if (m == NULL || m->in_cb)
		return;
	mx_free(m);
}
