/* SPDX-License-Identifier: MIT */
/*
 * The resolver: c-ares driven by the event loop. c-ares tells us through
 * its socket-state callback which sockets to watch; the loop hands their
 * readiness back with ares_process_fd(), and one loop timer follows
 * ares_timeout() for retransmissions. On top of that every query has a
 * deadline timer of its own, so one query stuck on a dead server reports
 * DNS_TEMPFAIL in time and never holds up another.
 *
 * c-ares calls back from inside its own functions (ares_process_fd(),
 * ares_query(), ares_destroy()), where calling back into c-ares is unsafe.
 * So its callback only parses the packet and puts the query on a "done"
 * list; the user's callbacks run from that list once c-ares has returned:
 * right after ares_process_fd(), or from a 0 ms timer when the answer came
 * inside dns_lookup(). That makes dns_lookup(), dns_cancel() and
 * dns_free() safe in any user callback, and dns_lookup() never calls back
 * before it returns.
 *
 * c-ares 1.18 cannot cancel one query, so a cancelled or timed-out query
 * stays allocated (marked finished) until c-ares lets go of it.
 *
 * c-ares 1.18 reports neither the TTL of MX and TXT records nor the SOA
 * of a negative answer; dns_packet.c reads both from the raw packet. With
 * them answers go into a small cache: a hash of (lower-cased name, type)
 * with the entries also on a list in the order stored, so that the
 * oldest goes first when it is full. A cache hit is a query that is done
 * at once, delivered from the done list like any other answer.
 *
 * RFC 1035 (names, RR types, 7.3 caching), RFC 2308 (negative caching),
 * RFC 3596 (AAAA), RFC 7505 (null MX), RFC 5782 (DNSBL names, in
 * dns_reverse.c).
 */
#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/event.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "dns/dns.h"
#include "dns/dns_packet.h"
#include "dns/dns_private.h"

/* RFC 1035 3.2.4: class IN. */
#define DNS_CLASS_IN         1
/* RFC 1035 2.3.4: a label is at most 63 octets. */
#define DNS_LABEL_MAX        63
#define DNS_PORT_MAX         65535
/*
 * c-ares sends to each server DNS_ARES_TRIES times and doubles its per-try
 * timeout every round: with tries of deadline/3 and 2*deadline/3, one
 * server's two tries end at the deadline. DNS_ARES_SLACK_MS on each try
 * makes c-ares give up just after the query's own timer has answered, so
 * a dead server always reads as "timeout" at the deadline, and c-ares lets
 * go of the query soon after. With more servers c-ares keeps trying after
 * the deadline; it only holds memory until it gives up.
 */
#define DNS_ARES_TRIES       2
#define DNS_ARES_SHARES      3
#define DNS_ARES_SLACK_MS    10
/* The longest server list text accepted by dns_create(). */
#define DNS_SERVERS_TEXT_MAX 1024
/* How much of a bad server entry an error message quotes. */
#define DNS_QUOTE_MAX        64
#define MS_PER_SEC           1000
#define US_PER_MS            1000
#define NS_PER_MS            1000000
/* Hash buckets of the cache: a power of two, about DNS_CACHE_MAX. */
#define DNS_CACHE_BUCKETS    1024
/* FNV-1a, 32 bits. */
#define DNS_FNV_OFFSET       2166136261u
#define DNS_FNV_PRIME        16777619u

/* One cached answer. */
struct dns_cache_entry {
	char *name; /* lower-cased, no trailing dot */
	enum dns_type type;
	uint32_t hash;
	uint64_t stored_ms, expires_ms;
	enum dns_status status; /* DNS_OK or DNS_NOTFOUND */
	const char *error;      /* static text */
	int nxdomain;
	struct dns_rr *rr;
	int n;
	int truncated;
	struct dns_cache_entry *hnext;         /* bucket chain */
	struct dns_cache_entry *older, *newer; /* order stored */
};

/* One socket c-ares asked us to watch. */
struct dns_watch {
	int fd;
	struct event_fd *ev;
	struct dns_watch *next;
};

struct dns_query {
	struct dns *d;
	char *name;
	enum dns_type type;
	dns_cb *cb;
	void *ctx;
	struct event_timer *deadline;
	int ares_busy; /* c-ares holds us as a callback argument */
	int finished;  /* delivered or cancelled: the callback never (again) */
	int queued;    /* on d's done list */
	int in_cb;     /* its callback is running */
	/* The result, from c-ares' callback until delivery. */
	enum dns_status status;
	const char *error;
	struct dns_rr *rr;
	int n;
	int truncated;
	int nxdomain;
	uint32_t ttl;
	int cached;
	struct dns_query *prev, *next; /* d->queries: every allocated query */
	struct dns_query *done_next;   /* d->done_head list */
};

struct dns {
	struct event_loop *loop;
	ares_channel channel;
	unsigned timeout_ms;
	struct dns_watch *watches;
	struct event_timer *ares_timer;    /* c-ares' next retransmission */
	struct event_timer *deliver_timer; /* answers that came in dns_lookup */
	struct dns_query *queries;
	struct dns_query *done_head, *done_tail;
	size_t ndone;
	int *freed_r; /* set to 1 by dns_free() inside a user callback */
	struct dns_child *children; /* dns_mx queries and the like */
	struct dns_cache_entry *buckets[DNS_CACHE_BUCKETS];
	struct dns_cache_entry *oldest, *newest;
	size_t ncache;
};

static __thread char dns_error_buf[DNS_ERROR_MAX];

const char *
dns_status_str(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_NOTFOUND:
		return "not found";
	case DNS_TEMPFAIL:
		return "temporary failure";
	case DNS_FAIL:
		return "permanent failure";
	}
	return "unknown status";
}

/* --- queries: lifetime --- */

static void
dns_rrs_free(struct dns_rr *rr, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free((char *)rr[i].mx_host);
		free((char *)rr[i].txt);
	}
	free(rr);
}

static void
dns_rr_free(struct dns_query *q)
{
	dns_rrs_free(q->rr, q->n);
	q->rr = NULL;
	q->n = 0;
}

/* A deep copy of n records, each TTL less age seconds. */
static struct dns_rr *
dns_rrs_copy(const struct dns_rr *rr, int n, uint32_t age)
{
	struct dns_rr *copy;
	int i;

	if (n == 0)
		return NULL;
	copy = xcalloc((size_t)n, sizeof(*copy));
	for (i = 0; i < n; i++) {
		copy[i] = rr[i];
		copy[i].ttl = rr[i].ttl > age ? rr[i].ttl - age : 0;
		if (rr[i].mx_host != NULL)
			copy[i].mx_host = xstrdup(rr[i].mx_host);
		if (rr[i].txt != NULL) {
			copy[i].txt = xmalloc(rr[i].txt_len + 1);
			memcpy(
			    (char *)copy[i].txt, rr[i].txt, rr[i].txt_len + 1);
		}
	}
	return copy;
}

static void
dns_query_unlink(struct dns_query *q)
{
	struct dns *d = q->d;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (d != NULL)
		d->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	q->d = NULL;
}

static void
dns_query_destroy(struct dns_query *q)
{
	dns_query_unlink(q);
	event_timer_del(&q->deadline);
	dns_rr_free(q);
	free(q->name);
	free(q);
}

/* Frees q once nobody can reach it any more. */
static void
dns_query_release(struct dns_query *q)
{
	if (q->finished && !q->ares_busy && !q->queued && !q->in_cb)
		dns_query_destroy(q);
}

static void
dns_query_fail(struct dns_query *q, enum dns_status status, const char *error)
{
	dns_rr_free(q);
	q->status = status;
	q->error = error;
	q->truncated = 0;
	q->nxdomain = 0;
	q->ttl = 0;
}

/*
 * Runs q's callback and then frees q if c-ares is done with it. Returns
 * 0, or -1 if the callback freed the resolver (then d must not be used).
 */
static int
dns_deliver(struct dns_query *q)
{
	struct dns *d = q->d;
	struct dns_answer a;
	int *outer = d->freed_r;
	int freed = 0;

	memset(&a, 0, sizeof(a));
	a.status = q->status;
	a.error = q->status == DNS_OK ? "" : q->error;
	a.name = q->name;
	a.type = q->type;
	a.n = q->status == DNS_OK ? q->n : 0;
	a.rr = a.n > 0 ? q->rr : NULL;
	a.truncated = q->truncated;
	a.nxdomain = q->status == DNS_NOTFOUND ? q->nxdomain : 0;
	a.ttl = q->ttl;
	a.cached = q->cached;

	event_timer_del(&q->deadline);
	q->finished = 1;
	q->in_cb = 1;
	d->freed_r = &freed;
	q->cb(&a, q->ctx);
	if (freed) {
		/* dns_free() left this one to us; an outer delivery learns too */
		if (outer != NULL)
			*outer = 1;
		q->in_cb = 0;
		dns_query_destroy(q);
		return -1;
	}
	d->freed_r = outer;
	q->in_cb = 0;
	dns_query_release(q);
	return 0;
}

static void dns_deliver_cb(struct event_timer *t, void *ctx);

static void
dns_enqueue(struct dns *d, struct dns_query *q)
{
	q->queued = 1;
	q->done_next = NULL;
	if (d->done_tail != NULL)
		d->done_tail->done_next = q;
	else
		d->done_head = q;
	d->done_tail = q;
	d->ndone++;
}

/* Delivers the answers on the done list from the next loop iteration. */
static void
dns_arm_deliver(struct dns *d)
{
	if (d->deliver_timer != NULL)
		event_timer_reset(d->deliver_timer, 0);
	else
		d->deliver_timer =
		    event_timer_add(d->loop, 0, dns_deliver_cb, d);
}

/*
 * Delivers the answers that are on the done list now; ones that callbacks
 * add meanwhile wait for the next iteration, so a callback that keeps
 * looking up bad names cannot starve the loop.
 */
static void
dns_drain(struct dns *d)
{
	size_t n = d->ndone;
	struct dns_query *q;

	while (n-- > 0 && (q = d->done_head) != NULL) {
		d->done_head = q->done_next;
		if (d->done_head == NULL)
			d->done_tail = NULL;
		d->ndone--;
		q->queued = 0;
		if (q->finished) { /* cancelled while queued */
			dns_query_release(q);
			continue;
		}
		if (dns_deliver(q) < 0)
			return;
	}
	if (d->done_head != NULL)
		dns_arm_deliver(d);
}

static void
dns_deliver_cb(struct event_timer *t, void *ctx)
{
	(void)t;
	dns_drain(ctx);
}

/* --- answers --- */

static enum dns_status
dns_status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return DNS_NOTFOUND;
	case ARES_EFORMERR:
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
	case ARES_EBADFAMILY:
		return DNS_FAIL;
	default:
		/* timeouts, SERVFAIL, REFUSED, NOTIMP, refused connections,
		 * bad packets, out of memory: another try may do better */
		return DNS_TEMPFAIL;
	}
}

static int
dns_parse_a(struct dns_query *q, const unsigned char *abuf, int alen)
{
	/* one more than kept, to see that some were dropped */
	struct ares_addrttl ttl[DNS_RR_MAX + 1];
	int n = DNS_RR_MAX + 1, status, i;

	status = ares_parse_a_reply(abuf, alen, NULL, ttl, &n);
	if (status != ARES_SUCCESS)
		return status;
	if (n <= 0)
		return ARES_ENODATA;
	q->truncated = n > DNS_RR_MAX;
	q->n = q->truncated ? DNS_RR_MAX : n;
	q->rr = xcalloc((size_t)q->n, sizeof(*q->rr));
	for (i = 0; i < q->n; i++) {
		q->rr[i].a = ttl[i].ipaddr;
		q->rr[i].ttl = ttl[i].ttl < 0 ? 0 : (uint32_t)ttl[i].ttl;
	}
	return ARES_SUCCESS;
}

static int
dns_parse_aaaa(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_addr6ttl ttl[DNS_RR_MAX + 1];
	int n = DNS_RR_MAX + 1, status, i;

	status = ares_parse_aaaa_reply(abuf, alen, NULL, ttl, &n);
	if (status != ARES_SUCCESS)
		return status;
	if (n <= 0)
		return ARES_ENODATA;
	q->truncated = n > DNS_RR_MAX;
	q->n = q->truncated ? DNS_RR_MAX : n;
	q->rr = xcalloc((size_t)q->n, sizeof(*q->rr));
	for (i = 0; i < q->n; i++) {
		memcpy(&q->rr[i].aaaa, &ttl[i].ip6addr, sizeof(q->rr[i].aaaa));
		q->rr[i].ttl = ttl[i].ttl < 0 ? 0 : (uint32_t)ttl[i].ttl;
	}
	return ARES_SUCCESS;
}

/*
 * c-ares takes the records of the type asked from the answer section in
 * order, as dns_packet_scan() does: the i-th record's TTL is pk->ttl[i].
 */
static uint32_t
dns_rr_ttl(const struct dns_packet *pk, int i)
{
	return pk != NULL && i < pk->n ? pk->ttl[i] : 0;
}

static int
dns_parse_mx(struct dns_query *q, const unsigned char *abuf, int alen,
    const struct dns_packet *pk)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct dns_rr tmp;
	int status, n = 0, i, j;

	status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status != ARES_SUCCESS)
		return status;
	for (m = mx; m != NULL; m = m->next)
		n++;
	if (n == 0) {
		ares_free_data(mx);
		return ARES_ENODATA;
	}
	q->truncated = n > DNS_RR_MAX;
	q->rr =
	    xcalloc((size_t)(q->truncated ? DNS_RR_MAX : n), sizeof(*q->rr));
	for (m = mx; m != NULL && q->n < DNS_RR_MAX; m = m->next) {
		q->rr[q->n].mx_pref = m->priority;
		q->rr[q->n].ttl = dns_rr_ttl(pk, q->n);
		q->rr[q->n].mx_host = xstrndup(m->host, DNS_NAME_MAX + 1);
		q->n++;
	}
	ares_free_data(mx);
	/* Insertion sort: stable, so equal preferences keep answer order
	 * for the client to shuffle (RFC 5321 5.1); n is small. */
	for (i = 1; i < q->n; i++) {
		tmp = q->rr[i];
		for (j = i; j > 0 && q->rr[j - 1].mx_pref > tmp.mx_pref; j--)
			q->rr[j] = q->rr[j - 1];
		q->rr[j] = tmp;
	}
	return ARES_SUCCESS;
}

/* Appends len bytes of s to one TXT record, capped at DNS_TXT_MAX. */
static void
dns_txt_append(
    struct dns_rr *rr, char *text, const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && rr->txt_len < DNS_TXT_MAX; i++)
		text[rr->txt_len++] = s[i] == '\0' ? '?' : (char)s[i];
	text[rr->txt_len] = '\0';
}

static int
dns_parse_txt(struct dns_query *q, const unsigned char *abuf, int alen,
    const struct dns_packet *pk)
{
	struct ares_txt_ext *txt = NULL, *t;
	struct dns_rr *rr = NULL;
	char *text = NULL;
	int status, n = 0;

	status = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (status != ARES_SUCCESS)
		return status;
	for (t = txt; t != NULL; t = t->next)
		if (t->record_start || t == txt)
			n++;
	if (n == 0) {
		ares_free_data(txt);
		return ARES_ENODATA;
	}
	q->truncated = n > DNS_RR_MAX;
	q->rr =
	    xcalloc((size_t)(q->truncated ? DNS_RR_MAX : n), sizeof(*q->rr));
	/* A record is one or more character-strings (RFC 1035 3.3.14);
	 * c-ares marks the first of each. */
	for (t = txt; t != NULL; t = t->next) {
		if (t->record_start || t == txt) {
			if (q->n == DNS_RR_MAX)
				break;
			rr = &q->rr[q->n];
			rr->ttl = dns_rr_ttl(pk, q->n);
			q->n++;
			text = xmalloc(DNS_TXT_MAX + 1);
			text[0] = '\0';
			rr->txt = text;
		}
		dns_txt_append(rr, text, t->txt, t->length);
	}
	ares_free_data(txt);
	return ARES_SUCCESS;
}

/* --- the cache --- */

static uint64_t
dns_now_ms(void)
{
	struct timespec ts;

	/* not the loop's cached clock: dns_lookup() may come from outside
	 * the loop, long after its last iteration */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MS_PER_SEC +
	       (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* The cache key of a valid name: lower-cased, without a trailing dot. */
static void
dns_cache_key(const char *name, char key[DNS_NAME_MAX + 1])
{
	size_t len = strnlen(name, DNS_NAME_MAX + 1), i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len > DNS_NAME_MAX)
		len = DNS_NAME_MAX;
	for (i = 0; i < len; i++)
		key[i] = (char)(name[i] >= 'A' && name[i] <= 'Z'
		                    ? name[i] - 'A' + 'a'
		                    : name[i]);
	key[len] = '\0';
}

static uint32_t
dns_cache_hash(const char *key, enum dns_type type)
{
	uint32_t h = DNS_FNV_OFFSET;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * DNS_FNV_PRIME;
	return (h ^ (uint32_t)type) * DNS_FNV_PRIME;
}

static void
dns_cache_remove(struct dns *d, struct dns_cache_entry *e)
{
	struct dns_cache_entry **ep;

	for (ep = &d->buckets[e->hash % DNS_CACHE_BUCKETS]; *ep != e;
	     ep = &(*ep)->hnext)
		;
	*ep = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		d->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		d->newest = e->older;
	d->ncache--;
	dns_rrs_free(e->rr, e->n);
	free(e->name);
	free(e);
}

/* The live entry for (key, type), dropping an expired one; or NULL. */
static struct dns_cache_entry *
dns_cache_find(struct dns *d, const char *key, enum dns_type type,
    uint32_t hash, uint64_t now)
{
	struct dns_cache_entry *e;

	for (e = d->buckets[hash % DNS_CACHE_BUCKETS]; e != NULL;
	     e = e->hnext) {
		if (e->hash != hash || e->type != type ||
		    strcmp(e->name, key) != 0)
			continue;
		if (now >= e->expires_ms) {
			dns_cache_remove(d, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Keeps q's answer for q->ttl seconds, if it is worth keeping. */
static void
dns_cache_put(struct dns *d, const struct dns_query *q)
{
	char key[DNS_NAME_MAX + 1];
	struct dns_cache_entry *e;
	uint64_t now = dns_now_ms();
	uint32_t hash;

	if (q->ttl == 0 || (q->status != DNS_OK && q->status != DNS_NOTFOUND))
		return;
	dns_cache_key(q->name, key);
	hash = dns_cache_hash(key, q->type);
	if ((e = dns_cache_find(d, key, q->type, hash, now)) != NULL)
		dns_cache_remove(d, e); /* a newer answer replaces it */
	while (d->ncache >= DNS_CACHE_MAX && d->oldest != NULL)
		dns_cache_remove(d, d->oldest);
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(key);
	e->type = q->type;
	e->hash = hash;
	e->stored_ms = now;
	e->expires_ms = now + (uint64_t)q->ttl * MS_PER_SEC;
	e->status = q->status;
	e->error = q->error;
	e->nxdomain = q->nxdomain;
	e->rr = dns_rrs_copy(q->rr, q->n, 0);
	e->n = q->n;
	e->truncated = q->truncated;
	e->hnext = d->buckets[hash % DNS_CACHE_BUCKETS];
	d->buckets[hash % DNS_CACHE_BUCKETS] = e;
	e->older = d->newest;
	if (d->newest != NULL)
		d->newest->newer = e;
	else
		d->oldest = e;
	d->newest = e;
	d->ncache++;
}

/* Fills q from the cache; 1 on a hit, else 0. */
static int
dns_cache_get(struct dns *d, struct dns_query *q)
{
	char key[DNS_NAME_MAX + 1];
	struct dns_cache_entry *e;
	uint64_t now = dns_now_ms();
	uint32_t age;

	dns_cache_key(q->name, key);
	e = dns_cache_find(d, key, q->type, dns_cache_hash(key, q->type), now);
	if (e == NULL)
		return 0;
	age = (uint32_t)((now - e->stored_ms) / MS_PER_SEC);
	q->status = e->status;
	q->error = e->error;
	q->nxdomain = e->nxdomain;
	q->rr = dns_rrs_copy(e->rr, e->n, age);
	q->n = e->n;
	q->truncated = e->truncated;
	/* rounded up: an entry still here has at least a second left */
	q->ttl =
	    (uint32_t)((e->expires_ms - now + MS_PER_SEC - 1) / MS_PER_SEC);
	q->cached = 1;
	return 1;
}

static void
dns_cache_free(struct dns *d)
{
	while (d->oldest != NULL)
		dns_cache_remove(d, d->oldest);
}

/*
 * How long q's answer may be kept (RFC 1035 7.3, RFC 2308 5): a positive
 * one for the smallest TTL of its records, CNAMEs included; a negative
 * one for the SOA's negative TTL (and no longer than a CNAME that led to
 * it), and not at all without an SOA; failures never.
 */
static uint32_t
dns_answer_ttl(const struct dns_query *q, const struct dns_packet *pk)
{
	uint32_t ttl = 0;
	int i;

	if (q->status == DNS_OK) {
		for (i = 0; i < q->n; i++)
			if (i == 0 || q->rr[i].ttl < ttl)
				ttl = q->rr[i].ttl;
		if (pk != NULL && pk->answers > 0 && pk->answer_ttl < ttl)
			ttl = pk->answer_ttl;
	} else if (q->status == DNS_NOTFOUND && pk != NULL && pk->has_soa) {
		ttl = pk->neg_ttl;
		if (pk->answers > 0 && pk->answer_ttl < ttl)
			ttl = pk->answer_ttl;
	}
	return ttl > DNS_CACHE_TTL_MAX ? DNS_CACHE_TTL_MAX : ttl;
}

/* c-ares' callback: runs inside c-ares, so it never calls the user. */
static void
dns_ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_packet packet, *pk = NULL;
	int nxdomain;

	(void)timeouts;
	q->ares_busy = 0;
	if (status == ARES_EDESTRUCTION)
		return; /* dns_free() frees everything after ares_destroy() */
	if (q->finished) { /* cancelled, or its deadline answered */
		dns_query_release(q);
		return;
	}
	/* ares_query() maps RCODE NXDOMAIN to ARES_ENOTFOUND, and NOERROR
	 * without answers to ARES_ENODATA; both pass the packet on */
	nxdomain = status == ARES_ENOTFOUND;
	if (abuf != NULL && alen > 0 &&
	    dns_packet_scan(abuf, (size_t)alen, (unsigned)q->type, &packet) ==
	        0)
		pk = &packet;
	if (status == ARES_SUCCESS && abuf != NULL) {
		switch (q->type) {
		case DNS_T_A:
			status = dns_parse_a(q, abuf, alen);
			break;
		case DNS_T_AAAA:
			status = dns_parse_aaaa(q, abuf, alen);
			break;
		case DNS_T_MX:
			status = dns_parse_mx(q, abuf, alen, pk);
			break;
		case DNS_T_TXT:
			status = dns_parse_txt(q, abuf, alen, pk);
			break;
		}
	} else if (status == ARES_SUCCESS)
		status = ARES_EBADRESP;
	if (status == ARES_SUCCESS) {
		q->status = DNS_OK;
		q->error = "";
	} else {
		dns_query_fail(q, dns_status_of(status), ares_strerror(status));
		q->nxdomain = nxdomain;
	}
	q->ttl = dns_answer_ttl(q, pk);
	dns_cache_put(q->d, q);
	event_timer_del(&q->deadline);
	dns_enqueue(q->d, q);
}

/* --- c-ares and the loop --- */

static void dns_ares_timer_cb(struct event_timer *t, void *ctx);

/* Arms the loop timer for c-ares' next retransmission, if any. */
static void
dns_rearm(struct dns *d)
{
	struct timeval tv, *tvp;
	uint64_t ms;

	tvp = ares_timeout(d->channel, NULL, &tv);
	if (tvp == NULL) {
		event_timer_del(&d->ares_timer);
		return;
	}
	/* Round up, and one more: the loop's clock is whole milliseconds
	 * cached per iteration, and waking before c-ares' time only spins. */
	ms = (uint64_t)tvp->tv_sec * MS_PER_SEC +
	     ((uint64_t)tvp->tv_usec + US_PER_MS - 1) / US_PER_MS + 1;
	if (d->ares_timer != NULL)
		event_timer_reset(d->ares_timer, ms);
	else
		d->ares_timer =
		    event_timer_add(d->loop, ms, dns_ares_timer_cb, d);
}

/* Lets c-ares do its work, then delivers what it finished. */
static void
dns_process(struct dns *d, ares_socket_t rfd, ares_socket_t wfd)
{
	ares_process_fd(d->channel, rfd, wfd);
	dns_rearm(d);
	dns_drain(d); /* last: a callback may free d */
}

static void
dns_ares_timer_cb(struct event_timer *t, void *ctx)
{
	(void)t;
	dns_process(ctx, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void
dns_fd_cb(struct event_fd *ev, int fd, int events, void *ctx)
{
	(void)ev;
	dns_process(ctx, (events & EVENT_READ) ? fd : ARES_SOCKET_BAD,
	    (events & EVENT_WRITE) ? fd : ARES_SOCKET_BAD);
}

/* c-ares opened, changed or (both 0) is about to close a socket. */
static void
dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_watch **wp, *w;
	int mask = (readable ? EVENT_READ : 0) | (writable ? EVENT_WRITE : 0);

	for (wp = &d->watches; (w = *wp) != NULL; wp = &w->next)
		if (w->fd == fd)
			break;
	if (mask == 0) {
		if (w != NULL) {
			*wp = w->next;
			event_fd_del(&w->ev);
			free(w);
		}
		return;
	}
	if (w != NULL) {
		event_fd_set(w->ev, mask);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->ev = event_fd_add(d->loop, fd, mask, dns_fd_cb, d);
	w->next = d->watches;
	d->watches = w;
}

/* --- the interface --- */

static void
dns_deadline_cb(struct event_timer *t, void *ctx)
{
	struct dns_query *q = ctx;

	(void)t;
	event_timer_del(&q->deadline);
	dns_query_fail(q, DNS_TEMPFAIL, "timeout");
	/* c-ares keeps q (ares_busy) until it gives up itself */
	(void)dns_deliver(q);
}

/* RFC 1035 2.3.4 lengths; printable ASCII without space or backslash,
 * which c-ares would read as an escape. */
static int
dns_name_valid(const char *name)
{
	size_t len = strnlen(name, DNS_NAME_MAX + 2), label = 0, i;
	unsigned char c;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || c == '\\')
			return 0;
		if (++label > DNS_LABEL_MAX)
			return 0;
	}
	return 1;
}

struct dns_query *
dns_lookup(
    struct dns *d, const char *name, enum dns_type type, dns_cb *cb, void *ctx)
{
	struct dns_query *q;

	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
	case DNS_T_MX:
	case DNS_T_TXT:
		break;
	default:
		msg_panic("dns_lookup: unknown type %d", (int)type);
	}
	q = xcalloc(1, sizeof(*q));
	q->d = d;
	/* enough to show in a log that a name was too long */
	q->name = xstrndup(name, DNS_NAME_MAX + 1);
	q->type = type;
	q->cb = cb;
	q->ctx = ctx;
	q->next = d->queries;
	if (q->next != NULL)
		q->next->prev = q;
	d->queries = q;

	if (!dns_name_valid(name)) {
		dns_query_fail(q, DNS_FAIL, "bad name");
		dns_enqueue(d, q);
		dns_arm_deliver(d);
		return q;
	}
	if (dns_cache_get(d, q)) {
		dns_enqueue(d, q); /* delivered from the loop all the same */
		dns_arm_deliver(d);
		return q;
	}
	q->deadline =
	    event_timer_add(d->loop, d->timeout_ms, dns_deadline_cb, q);
	q->ares_busy = 1;
	/* ares_query() never searches; c-ares may answer from in here (no
	 * server, bad name): that lands on the done list like any answer. */
	ares_query(d->channel, name, DNS_CLASS_IN, (int)type, dns_ares_cb, q);
	dns_rearm(d);
	if (d->done_head != NULL)
		dns_arm_deliver(d);
	return q;
}

void
dns_cancel(struct dns_query **q_r)
{
	struct dns_query *q = *q_r;

	*q_r = NULL;
	if (q == NULL || q->in_cb)
		return;
	q->finished = 1;
	event_timer_del(&q->deadline);
	/* queued: dns_drain() frees it; ares_busy: dns_ares_cb() does */
	dns_query_release(q);
}

/* Parses one server entry into node; 0, or -1 if malformed. */
static int
dns_parse_server(char *s, struct ares_addr_port_node *node)
{
	char *addr = s, *port = NULL, *end, *colon;
	uint64_t num = 0;

	if (*s == '[') {
		addr = s + 1;
		if ((end = strchr(addr, ']')) == NULL)
			return -1;
		*end++ = '\0';
		if (*end == ':')
			port = end + 1;
		else if (*end != '\0')
			return -1;
		if (inet_pton(AF_INET6, addr, &node->addr.addr6) != 1)
			return -1;
		node->family = AF_INET6;
	} else if ((colon = strchr(s, ':')) != NULL &&
	           strchr(colon + 1, ':') == NULL) {
		*colon = '\0'; /* one colon: ipv4:port */
		port = colon + 1;
		if (inet_pton(AF_INET, addr, &node->addr.addr4) != 1)
			return -1;
		node->family = AF_INET;
	} else if (colon != NULL) {
		if (inet_pton(AF_INET6, addr, &node->addr.addr6) != 1)
			return -1;
		node->family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, addr, &node->addr.addr4) != 1)
			return -1;
		node->family = AF_INET;
	}
	if (port != NULL &&
	    (str_to_u64(port, DNS_PORT_MAX, &num) < 0 || num == 0))
		return -1;
	/* 0 is c-ares' "the default port" */
	node->udp_port = node->tcp_port = (int)num;
	return 0;
}

/* Sets the channel's servers from a dns_create() list; 0 or -1. */
static int
dns_set_servers(struct dns *d, const char *list, const char **error_r)
{
	struct ares_addr_port_node nodes[DNS_SERVERS_MAX];
	char copy[DNS_SERVERS_TEXT_MAX + 1], *fields[DNS_SERVERS_MAX];
	char orig[DNS_QUOTE_MAX + 1];
	size_t len = strnlen(list, DNS_SERVERS_TEXT_MAX + 1);
	int n, i, status;

	if (len > DNS_SERVERS_TEXT_MAX) {
		*error_r = "DNS server list too long";
		return -1;
	}
	memcpy(copy, list, len + 1);
	n = str_split(copy, ", \t", fields, DNS_SERVERS_MAX);
	if (n < 0) {
		snprintf(dns_error_buf, sizeof(dns_error_buf),
		    "more than %d DNS servers", DNS_SERVERS_MAX);
		*error_r = dns_error_buf;
		return -1;
	}
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < n; i++) {
		snprintf(orig, sizeof(orig), "%s", fields[i]);
		if (dns_parse_server(fields[i], &nodes[i]) < 0) {
			snprintf(dns_error_buf, sizeof(dns_error_buf),
			    "bad DNS server \"%s\" (want ip, ip:port or "
			    "[ipv6]:port)",
			    log_sanitize(orig, DNS_QUOTE_MAX));
			*error_r = dns_error_buf;
			return -1;
		}
		nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
	}
	if (n == 0)
		return 0; /* only separators: as if empty */
	status = ares_set_servers_ports(d->channel, nodes);
	if (status != ARES_SUCCESS) {
		snprintf(dns_error_buf, sizeof(dns_error_buf),
		    "setting DNS servers: %s", ares_strerror(status));
		*error_r = dns_error_buf;
		return -1;
	}
	return 0;
}

struct dns *
dns_create(struct event_loop *loop, const char *servers, unsigned timeout_ms,
    const char **error_r)
{
	struct ares_options opts;
	struct dns *d;
	int status;

	if (timeout_ms < DNS_TIMEOUT_MIN_MS ||
	    timeout_ms > DNS_TIMEOUT_MAX_MS) {
		snprintf(dns_error_buf, sizeof(dns_error_buf),
		    "DNS timeout %u ms out of range %d..%d", timeout_ms,
		    DNS_TIMEOUT_MIN_MS, DNS_TIMEOUT_MAX_MS);
		*error_r = dns_error_buf;
		return NULL;
	}
	status = ares_library_init(ARES_LIB_INIT_ALL);
	if (status != ARES_SUCCESS) {
		snprintf(dns_error_buf, sizeof(dns_error_buf),
		    "c-ares init: %s", ares_strerror(status));
		*error_r = dns_error_buf;
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->timeout_ms = timeout_ms;

	memset(&opts, 0, sizeof(opts));
	/* NOSEARCH and NOALIASES matter only to ares_search() and
	 * ares_gethostbyname(); set so that no later change starts
	 * treating our absolute names as relative ones. */
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.timeout = (int)(timeout_ms / DNS_ARES_SHARES) + DNS_ARES_SLACK_MS;
	opts.tries = DNS_ARES_TRIES;
	opts.sock_state_cb = dns_sock_state_cb;
	opts.sock_state_cb_data = d;
	status = ares_init_options(&d->channel, &opts,
	    ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	        ARES_OPT_SOCK_STATE_CB);
	if (status != ARES_SUCCESS) {
		snprintf(dns_error_buf, sizeof(dns_error_buf),
		    "c-ares init: %s", ares_strerror(status));
		*error_r = dns_error_buf;
		free(d);
		ares_library_cleanup();
		return NULL;
	}
	if (servers != NULL && *servers != '\0' &&
	    dns_set_servers(d, servers, error_r) < 0) {
		dns_free(&d);
		return NULL;
	}
	return d;
}

void
dns_free(struct dns **d_r)
{
	struct dns *d = *d_r;
	struct dns_watch *w;
	struct dns_query *q;
	struct dns_child *c;

	if (d == NULL)
		return;
	*d_r = NULL;
	if (d->freed_r != NULL)
		*d->freed_r = 1;
	/* First the requests built on queries, while they can still
	 * cancel them and the loop is theirs to use. */
	while ((c = d->children) != NULL) {
		dns_child_detach(c);
		c->drop(c);
	}
	/* Calls dns_ares_cb() with ARES_EDESTRUCTION for every pending
	 * query and closes the sockets through dns_sock_state_cb(). */
	ares_destroy(d->channel);
	while ((w = d->watches) != NULL) {
		d->watches = w->next;
		event_fd_del(&w->ev);
		free(w);
	}
	event_timer_del(&d->ares_timer);
	event_timer_del(&d->deliver_timer);
	while ((q = d->queries) != NULL) {
		if (q->in_cb) {
			/* dns_deliver() frees it when its callback returns */
			dns_query_unlink(q);
			continue;
		}
		dns_query_destroy(q);
	}
	dns_cache_free(d);
	free(d);
	ares_library_cleanup();
}

void
dns_child_attach(struct dns *d, struct dns_child *c)
{
	c->d = d;
	c->prev = NULL;
	c->next = d->children;
	if (c->next != NULL)
		c->next->prev = c;
	d->children = c;
}

void
dns_child_detach(struct dns_child *c)
{
	if (c->d == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->d->children = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->d = NULL;
}

struct event_loop *
dns_loop(struct dns *d)
{
	return d->loop;
}
