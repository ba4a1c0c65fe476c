/* SPDX-License-Identifier: MIT */
/*
 * Flush requests, rate-limited. A flush reads every file of deferred/
 * that could match, so one request is cheap and a stream of them is not:
 * any client that may send ETRN (RFC 1985) could otherwise keep qmgr
 * scanning. Each flush (everything, a domain, a domain and its
 * subdomains, one queue ID: ternqueue -i) runs at most once per
 * QMGR_FLUSH_INTERVAL_MS: the first request runs at once, later ones
 * within the interval become one scan at its end. Nothing is lost that way: every message the later
 * requests wanted is still found by that scan. The set of flushes
 * remembered is bounded; when it is full of recent ones, a new domain
 * joins the flush of everything, which covers it.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "qmgr.h"

/* A part-time site sends ETRN once per connection; a few seconds keep
 * it prompt and bound the scans a flood costs to one per interval. */
#define QMGR_FLUSH_INTERVAL_MS 5000
/* Distinct flushes remembered (each is a domain name and a timer). */
#define QMGR_FLUSH_KEYS_MAX    64

struct qmgr_flush {
	char *domain;   /* lower case; NULL: everything (or queue_id) */
	char *queue_id; /* ternqueue -i: that message only */
	int subdomains;
	uint64_t last_ms;          /* its last scan */
	struct event_timer *timer; /* a coalesced scan is due */
	struct qmgr_flush *next;
};

static struct qmgr_flush *qmgr_flushes;
static int qmgr_nflushes;

static void
qmgr_flush_run(struct qmgr_flush *f)
{
	f->last_ms = event_now_ms(qmgr_loop);
	if (f->queue_id != NULL)
		qmgr_queue_flush_id(f->queue_id);
	else
		qmgr_queue_flush(f->domain, f->subdomains);
}

static void
qmgr_flush_due(struct event_timer *t, void *ctx)
{
	struct qmgr_flush *f = ctx;

	(void)t;
	event_timer_del(&f->timer);
	qmgr_flush_run(f);
}

static void
qmgr_flush_free(struct qmgr_flush *f)
{
	event_timer_del(&f->timer);
	free(f->domain);
	free(f->queue_id);
	free(f);
}

/* Forgets flushes whose interval is over and that wait for nothing. */
static void
qmgr_flush_expire(uint64_t now)
{
	struct qmgr_flush **pp = &qmgr_flushes, *f;

	while ((f = *pp) != NULL) {
		if (f->timer == NULL &&
		    now - f->last_ms >= QMGR_FLUSH_INTERVAL_MS) {
			*pp = f->next;
			qmgr_flush_free(f);
			qmgr_nflushes--;
		} else {
			pp = &f->next;
		}
	}
}

static struct qmgr_flush *
qmgr_flush_find(const char *domain, int subdomains, const char *id)
{
	struct qmgr_flush *f;

	for (f = qmgr_flushes; f != NULL; f = f->next)
		if (id != NULL || f->queue_id != NULL) {
			if (id != NULL && f->queue_id != NULL &&
			    strcmp(id, f->queue_id) == 0)
				return f;
		} else if (domain == NULL ? f->domain == NULL
		                          : f->domain != NULL &&
		                                f->subdomains == subdomains &&
		                                strcmp(f->domain, domain) == 0)
			return f;
	return NULL;
}

static void qmgr_flush_add(const char *domain, int subdomains, const char *id);

void
qmgr_flush_request(const char *domain, int subdomains)
{
	qmgr_flush_add(domain, subdomains, NULL);
}

void
qmgr_flush_request_id(const char *id)
{
	qmgr_flush_add(NULL, 0, id);
}

static void
qmgr_flush_add(const char *domain, int subdomains, const char *id)
{
	uint64_t now = event_now_ms(qmgr_loop), wait;
	struct qmgr_flush *f;
	char *lower = NULL;

	if (domain != NULL && *domain == '\0')
		domain = NULL;
	if (domain != NULL) {
		lower = xstrdup(domain);
		str_lower(lower);
	}
	qmgr_flush_expire(now);
	f = qmgr_flush_find(lower, domain != NULL && subdomains, id);
	if (f == NULL && qmgr_nflushes >= QMGR_FLUSH_KEYS_MAX &&
	    (f = qmgr_flush_find(NULL, 0, NULL)) == NULL) {
		/* Full of recent flushes, and none of everything yet: the
		 * oldest entry becomes it (it covers every domain). */
		for (f = qmgr_flushes; f->next != NULL; f = f->next)
			;
		free(f->domain);
		f->domain = NULL;
		free(f->queue_id);
		f->queue_id = NULL;
		f->subdomains = 0;
		msg_warn("flush: more than %d different flushes in %d ms; "
		         "flushing everything instead",
		    QMGR_FLUSH_KEYS_MAX, QMGR_FLUSH_INTERVAL_MS);
	}
	if (f == NULL) {
		f = xcalloc(1, sizeof(*f));
		f->domain = lower;
		lower = NULL;
		f->queue_id = id != NULL ? xstrdup(id) : NULL;
		f->subdomains = f->domain != NULL && subdomains;
		f->next = qmgr_flushes;
		qmgr_flushes = f;
		qmgr_nflushes++;
		qmgr_flush_run(f);
	} else if (f->timer == NULL) {
		if (now - f->last_ms >= QMGR_FLUSH_INTERVAL_MS) {
			qmgr_flush_run(f);
		} else {
			wait = QMGR_FLUSH_INTERVAL_MS - (now - f->last_ms);
			f->timer =
			    event_timer_add(qmgr_loop, wait, qmgr_flush_due, f);
			msg_info("flush%s%s: the last scan was %llu ms ago; "
			         "next one in %llu ms",
			    f->queue_id != NULL ? " "
			    : f->domain == NULL ? ""
			    : f->subdomains     ? " @"
			                        : " ",
			    f->queue_id != NULL ? f->queue_id
			    : f->domain != NULL
			        ? log_sanitize(f->domain, ADDR_DOMAIN_MAX)
			        : "",
			    (unsigned long long)(now - f->last_ms),
			    (unsigned long long)wait);
		}
	}
	/* else: a scan is already due; this request rides on it. */
	free(lower);
}

void
qmgr_flush_shutdown(void)
{
	struct qmgr_flush *f;

	while ((f = qmgr_flushes) != NULL) {
		qmgr_flushes = f->next;
		qmgr_flush_free(f);
	}
	qmgr_nflushes = 0;
}
