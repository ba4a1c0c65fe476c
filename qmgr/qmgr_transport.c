/* SPDX-License-Identifier: MIT */
/*
 * Transports, destinations and entries (qmgr.h), after Postfix's
 * qmgr_transport / qmgr_queue / qmgr_entry. A transport is a delivery
 * agent's socket, private/NAME, with at most as many connections as
 * services.conf gives its service processes (an agent serves one
 * connection at a time). A destination is (transport, nexthop): its
 * entries wait in arrival order, and it has at most `window` requests in
 * flight. The window starts at initial_destination_concurrency, grows by
 * 1/window per request that reached the destination and shrinks by as
 * much per request the agent reports as a destination failure (a host
 * that refused, say); at 1, destination_concurrency_failed_cohort_limit
 * failures in a row make the destination dead: its waiting entries are
 * deferred with the failure's reason, and so is new mail for it, until a
 * backoff that doubles from minimal_backoff_time to maximal_backoff_time
 * ends. A transport that cannot be reached at all is down for
 * transport_retry_time and its mail is deferred meanwhile.
 *
 * Requests ({request=deliver, queue_id, queue_file=active/ID, nexthop,
 * recovered, rcpt_index...}) carry one entry: every recipient of one
 * message for one destination, up to the transport's recipient limit.
 * The reply has per recipient {rcpt_index, result=sent|defer|bounce,
 * dsn, text[, action][, mta][, diag_type]}, then optionally
 * {dest_status=fail}. The built-in transports error, retry and discard
 * answer without a request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/services.h"
#include "qmgr.h"

/* An unused connection is closed so the agent process can move on. */
#define QMGR_IDLE_MS     60000
#define QMGR_MS_PER_SEC  1000
/* Length of an enhanced status code with its separator: "5.1.1 ". */
#define QMGR_DSN_MAX     16
/* Transports (names) a configuration can use; more is a mistake. */
#define QMGR_TRANSPORTS_MAX 64

enum qmgr_builtin { QMGR_AGENT, QMGR_ERROR, QMGR_RETRY, QMGR_DISCARD };

struct qmgr_transport;

struct qmgr_dest {
	struct qmgr_transport *t;
	char *nexthop;
	struct qmgr_entry *head, *tail;
	int busy;            /* requests in flight */
	double window;       /* concurrency window */
	int fail_streak;     /* failures in a row at window 1 */
	time_t dead_until;   /* 0: alive */
	long long backoff;   /* the next dead period */
	char *dead_reason;
	struct event_timer *revive;
	/* Rate delay: no request starts before next_start (loop ms). */
	uint64_t next_start;
	struct event_timer *rate_wait;
	int ready;           /* on the transport's ready list */
	struct qmgr_dest *ready_next;
};

struct qmgr_conn {
	struct qmgr_transport *t;
	struct attr_client *client;
	struct qmgr_entry *entry; /* busy: the request's entry */
	/* The agent's last destination: an smtp agent may still hold a
	 * session there, so the next request for it prefers this one. */
	char *last_nexthop;
	struct qmgr_conn *next;
};

struct qmgr_transport {
	char *name, *path;
	enum qmgr_builtin builtin;
	int procs;       /* connections at most */
	int dest_limit;  /* window ceiling */
	int rcpt_limit;  /* recipients per request */
	uint64_t rate_delay_ms; /* between request starts per destination */
	struct qmgr_conn *conns;
	int nconns;
	struct hash *dests;
	struct qmgr_dest *ready_head, *ready_tail;
	struct event_timer *down;
	char *down_reason;
};

static struct hash *qmgr_transports;
static struct service_def *qmgr_services;
static int qmgr_nservices;
/* Shutting down: no new requests; the loop ends when none is in flight. */
static struct event_loop *qmgr_draining;

static void qmgr_pump(struct qmgr_transport *t);
static int qmgr_dest_room(struct qmgr_dest *d);
static void qmgr_reply(
    const struct attr_list *reply, const char *error, void *ctx);

void
qmgr_transport_init(void)
{
	char *path = xasprintf("%s/services.conf", var_config_directory);
	const char *err;

	qmgr_transports = hash_create();
	/* Without it every transport gets one connection: still correct. */
	if (services_load(path, (int)var_default_process_limit,
	        &qmgr_services, &qmgr_nservices, &err) < 0) {
		msg_warn("%s; each transport gets one connection", err);
		qmgr_services = NULL;
		qmgr_nservices = 0;
	}
	free(path);
}

static int
qmgr_service_procs(const char *name)
{
	int i;

	for (i = 0; i < qmgr_nservices; i++)
		if (qmgr_services[i].type == SERVICE_UNIX &&
		    strcmp(qmgr_services[i].name, name) == 0)
			return qmgr_services[i].maxproc;
	return 1;
}

static struct qmgr_transport *
qmgr_transport_get(const char *name)
{
	struct qmgr_transport *t = hash_get(qmgr_transports, name);
	int local;

	if (t != NULL)
		return t;
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(name);
	t->dests = hash_create();
	if (strcmp(name, "error") == 0)
		t->builtin = QMGR_ERROR;
	else if (strcmp(name, "retry") == 0)
		t->builtin = QMGR_RETRY;
	else if (strcmp(name, "discard") == 0)
		t->builtin = QMGR_DISCARD;
	if (t->builtin == QMGR_AGENT) {
		/* A name is a socket below private/; nothing else may be. */
		if (strchr(name, '/') != NULL || name[0] == '.' ||
		    hash_count(qmgr_transports) >= QMGR_TRANSPORTS_MAX) {
			t->down_reason = xasprintf(
			    "unusable mail transport name \"%s\"", name);
			t->procs = 0;
		} else {
			t->path = queue_path(QUEUE_PRIVATE, name);
			t->procs = qmgr_service_procs(name);
		}
		local = strcmp(name, "local") == 0;
		t->dest_limit = (int)(local ? var_local_destination_concurrency_limit
		                            : var_default_destination_concurrency_limit);
		t->rcpt_limit = (int)(local ? var_local_destination_recipient_limit
		                            : var_default_destination_recipient_limit);
		/* Postfix's default_destination_rate_delay, for remote sites
		 * that throttle senders; local needs none. */
		t->rate_delay_ms = local ? 0
		                         : (uint64_t)var_default_destination_rate_delay *
		                               QMGR_MS_PER_SEC;
	}
	hash_put(qmgr_transports, name, t);
	return t;
}

static struct qmgr_dest *
qmgr_dest_get(struct qmgr_transport *t, const char *nexthop)
{
	struct qmgr_dest *d = hash_get(t->dests, nexthop);

	if (d != NULL)
		return d;
	d = xcalloc(1, sizeof(*d));
	d->t = t;
	d->nexthop = xstrdup(nexthop);
	d->window = (double)var_initial_destination_concurrency;
	if (d->window > t->dest_limit)
		d->window = t->dest_limit;
	hash_put(t->dests, nexthop, d);
	return d;
}

/* "4.1.1 text" into a status of the wanted class and the text. */
static void
qmgr_split_dsn(const char *in, char cls, char *dsn, size_t n,
    const char **text_r)
{
	const char *p = in;

	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.' &&
	    strspn(p + 2, "0123456789") > 0) {
		p += 2 + strspn(p + 2, "0123456789");
		if (*p == '.' && strspn(p + 1, "0123456789") > 0) {
			p += 1 + strspn(p + 1, "0123456789");
			if (*p == ' ' || *p == '\0') {
				snprintf(dsn, n, "%c%.*s", cls,
				    (int)(p - in - 1), in + 1);
				*text_r = *p == ' ' ? p + 1 : p;
				return;
			}
		}
	}
	snprintf(dsn, n, "%c.0.0", cls);
	*text_r = in;
}

static void
qmgr_builtin(struct qmgr_msg *m, int rcpt, struct qmgr_transport *t,
    const char *nexthop)
{
	char dsn[QMGR_DSN_MAX];
	const char *text;

	switch (t->builtin) {
	case QMGR_ERROR:
		qmgr_split_dsn(nexthop, '5', dsn, sizeof(dsn), &text);
		qmgr_message_answer(m, rcpt, QREC_RCPT_FAILED, dsn, text, "");
		break;
	case QMGR_RETRY:
		qmgr_split_dsn(nexthop, '4', dsn, sizeof(dsn), &text);
		qmgr_message_answer(m, rcpt, 0, dsn, text, "");
		break;
	default:
		text = *nexthop != '\0' ? nexthop : "discarded";
		qmgr_message_answer(
		    m, rcpt, QREC_RCPT_DONE, "2.0.0", text, "delivered");
		break;
	}
}

void
qmgr_transport_add(struct qmgr_msg *m, int rcpt, const char *transport,
    const char *nexthop)
{
	struct qmgr_transport *t = qmgr_transport_get(transport);
	struct qmgr_dest *d;
	struct qmgr_entry *e;

	if (t->builtin != QMGR_AGENT) {
		qmgr_builtin(m, rcpt, t, nexthop);
		return;
	}
	if (t->procs == 0 || t->down != NULL) {
		qmgr_message_answer(m, rcpt, 0, "4.3.0", t->down_reason, "");
		return;
	}
	d = qmgr_dest_get(t, nexthop);
	if (d->dead_until != 0) {
		qmgr_message_answer(m, rcpt, 0, "4.4.1", d->dead_reason, "");
		return;
	}
	/* This message's open entry for d, if any and not full. */
	for (e = m->routing; e != NULL; e = e->msg_next)
		if (e->dest == d && e->n < t->rcpt_limit)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->msg = m;
		e->dest = d;
		e->msg_next = m->routing;
		m->routing = e;
		m->entries++;
	}
	if (e->n == e->cap) {
		e->cap = e->cap == 0 ? 4 : e->cap * 2;
		e->rcpts = xrealloc(e->rcpts, (size_t)e->cap * sizeof(int));
	}
	e->rcpts[e->n++] = rcpt;
}

static void
qmgr_ready_push(struct qmgr_dest *d)
{
	struct qmgr_transport *t = d->t;

	if (d->ready)
		return;
	d->ready = 1;
	d->ready_next = NULL;
	if (t->ready_tail != NULL)
		t->ready_tail->ready_next = d;
	else
		t->ready_head = d;
	t->ready_tail = d;
}

static struct qmgr_dest *
qmgr_ready_pop(struct qmgr_transport *t)
{
	struct qmgr_dest *d = t->ready_head;

	t->ready_head = d->ready_next;
	if (t->ready_head == NULL)
		t->ready_tail = NULL;
	d->ready = 0;
	d->ready_next = NULL;
	return d;
}

/* d has nothing left to send: off the ready list (qmgr_pump takes the
 * head entry of every destination it pops). */
static void
qmgr_ready_remove(struct qmgr_dest *d)
{
	struct qmgr_transport *t = d->t;
	struct qmgr_dest **pp, *prev = NULL;

	if (!d->ready)
		return;
	for (pp = &t->ready_head; *pp != d; pp = &(*pp)->ready_next)
		prev = *pp;
	*pp = d->ready_next;
	if (t->ready_tail == d)
		t->ready_tail = prev;
	d->ready = 0;
	d->ready_next = NULL;
}

static void
qmgr_dest_rate_ready(struct event_timer *tm, void *ctx)
{
	struct qmgr_dest *d = ctx;

	(void)tm;
	event_timer_del(&d->rate_wait);
	if (qmgr_dest_room(d))
		qmgr_ready_push(d);
	qmgr_pump(d->t);
}

/*
 * With a rate delay a destination takes one request at a time, each
 * starting rate_delay after the one before; until then a timer stands
 * in for the room it will have.
 */
static int
qmgr_dest_room(struct qmgr_dest *d)
{
	int limit = (int)d->window;
	uint64_t now;

	if (limit < 1)
		limit = 1;
	if (d->t->rate_delay_ms > 0)
		limit = 1;
	if (d->head == NULL || d->dead_until != 0 || d->busy >= limit)
		return 0;
	if (d->t->rate_delay_ms > 0 &&
	    (now = event_now_ms(qmgr_loop)) < d->next_start) {
		if (d->rate_wait == NULL)
			d->rate_wait = event_timer_add(qmgr_loop,
			    d->next_start - now, qmgr_dest_rate_ready, d);
		return 0;
	}
	return 1;
}

void
qmgr_transport_commit(struct qmgr_msg *m)
{
	struct qmgr_entry *e;
	struct qmgr_dest *d;

	while ((e = m->routing) != NULL) {
		m->routing = e->msg_next;
		e->msg_next = NULL;
		d = e->dest;
		e->next = NULL;
		if (d->tail != NULL)
			d->tail->next = e;
		else
			d->head = e;
		d->tail = e;
		if (qmgr_dest_room(d))
			qmgr_ready_push(d);
		qmgr_pump(d->t);
	}
}

static void
qmgr_entry_free(struct qmgr_entry *e)
{
	struct qmgr_msg *m = e->msg;

	free(e->rcpts);
	free(e);
	qmgr_message_entry_done(m);
}

/* Every waiting entry of d is deferred with why. */
static void
qmgr_dest_defer_all(struct qmgr_dest *d, const char *dsn, const char *why)
{
	struct qmgr_entry *e;
	int i;

	while ((e = d->head) != NULL) {
		d->head = e->next;
		if (d->head == NULL)
			d->tail = NULL;
		for (i = 0; i < e->n; i++) {
			qmgr_message_answer(e->msg, e->rcpts[i], 0, dsn, why, "");
		}
		qmgr_entry_free(e);
	}
}

static void
qmgr_dest_revive(struct event_timer *tm, void *ctx)
{
	struct qmgr_dest *d = ctx;

	(void)tm;
	event_timer_del(&d->revive);
	d->dead_until = 0;
	d->window = 1;
	d->fail_streak = 0;
	msg_info("%s:%s: destination alive again", d->t->name, d->nexthop);
}

static void
qmgr_dest_feedback(struct qmgr_dest *d, int failed, const char *why)
{
	time_t now = time(NULL);

	if (!failed) {
		d->window += 1.0 / d->window;
		if (d->window > d->t->dest_limit)
			d->window = d->t->dest_limit;
		d->fail_streak = 0;
		d->backoff = 0;
		return;
	}
	d->window -= 1.0 / d->window;
	if (d->window >= 1)
		return;
	d->window = 1;
	if (++d->fail_streak < var_destination_concurrency_failed_cohort_limit ||
	    d->dead_until != 0)
		return;
	d->backoff = d->backoff == 0 ? var_minimal_backoff_time : d->backoff * 2;
	if (d->backoff > var_maximal_backoff_time)
		d->backoff = var_maximal_backoff_time;
	d->dead_until = now + (time_t)d->backoff;
	free(d->dead_reason);
	d->dead_reason = xasprintf("delivery temporarily suspended: %s", why);
	msg_info("%s:%s: destination dead for %llds: %s", d->t->name,
	    d->nexthop, d->backoff, why);
	d->revive = event_timer_add(qmgr_loop,
	    (uint64_t)d->backoff * QMGR_MS_PER_SEC, qmgr_dest_revive, d);
	qmgr_dest_defer_all(d, "4.4.1", d->dead_reason);
}

static void
qmgr_transport_up(struct event_timer *tm, void *ctx)
{
	struct qmgr_transport *t = ctx;

	(void)tm;
	event_timer_del(&t->down);
	msg_debug("trying transport %s again", t->name);
	qmgr_pump(t);
}

/* The agent cannot be reached: its waiting mail is deferred. */
static void
qmgr_transport_down(struct qmgr_transport *t, const char *why)
{
	struct qmgr_dest *d;
	size_t pos = 0;

	if (t->down != NULL)
		return;
	free(t->down_reason);
	t->down_reason = xasprintf("mail transport unavailable: %s", why);
	msg_warn("transport %s: %s", t->name, why);
	t->down = event_timer_add(qmgr_loop,
	    (uint64_t)var_transport_retry_time * QMGR_MS_PER_SEC,
	    qmgr_transport_up, t);
	while (hash_iter(t->dests, &pos, (void **)&d) != NULL)
		qmgr_dest_defer_all(d, "4.3.0", t->down_reason);
	t->ready_head = t->ready_tail = NULL;
	pos = 0;
	while (hash_iter(t->dests, &pos, (void **)&d) != NULL)
		d->ready = 0;
}

static void
qmgr_request(struct qmgr_conn *c, struct qmgr_entry *e)
{
	struct qmgr_msg *m = e->msg;
	char file[sizeof(QUEUE_ACTIVE) + QUEUE_ID_SIZE], active_at[32];
	struct buf *f;
	int i, bad;

	snprintf(file, sizeof(file), "%s/%s", QUEUE_ACTIVE, m->q.id);
	snprintf(active_at, sizeof(active_at), "%.6f", m->active_at);
	f = attr_client_frame(c->client);
	bad = attr_put_str(f, "request", "deliver") < 0 ||
	      attr_put_str(f, "queue_id", m->q.id) < 0 ||
	      attr_put_str(f, "queue_file", file) < 0 ||
	      attr_put_str(f, "nexthop", e->dest->nexthop) < 0 ||
	      attr_put_int(f, "recovered", m->recovered) < 0 ||
	      attr_put_str(f, "active_at", active_at) < 0;
	for (i = 0; i < e->n && !bad; i++)
		bad = attr_put_int(f, "rcpt_index", e->rcpts[i]) < 0;
	if (bad)
		msg_panic("%s: delivery request does not fit a frame", m->q.id);
	c->entry = e;
	if (c->last_nexthop == NULL ||
	    strcmp(c->last_nexthop, e->dest->nexthop) != 0) {
		free(c->last_nexthop);
		c->last_nexthop = xstrdup(e->dest->nexthop);
	}
	e->dest->busy++;
	msg_debug("%s: %d recipient(s) to %s:%s", m->q.id, e->n, c->t->name,
	    e->dest->nexthop);
	attr_client_send(c->client, qmgr_reply, c);
}

static void
qmgr_pump(struct qmgr_transport *t)
{
	struct qmgr_conn *c, *idle;
	struct qmgr_dest *d;
	struct qmgr_entry *e;

	while (t->ready_head != NULL && qmgr_draining == NULL &&
	       t->down == NULL) {
		idle = NULL;
		d = t->ready_head;
		for (c = t->conns; c != NULL; c = c->next) {
			if (c->entry != NULL)
				continue;
			if (idle == NULL)
				idle = c;
			if (c->last_nexthop != NULL &&
			    strcmp(c->last_nexthop, d->nexthop) == 0) {
				idle = c;
				break;
			}
		}
		if (idle == NULL) {
			if (t->nconns >= t->procs)
				return;
			idle = xcalloc(1, sizeof(*idle));
			idle->t = t;
			idle->client = attr_client_create(qmgr_loop, t->path, 0,
			    (uint64_t)var_ipc_timeout * QMGR_MS_PER_SEC,
			    ATTR_FRAME_MAX, QMGR_IDLE_MS);
			idle->next = t->conns;
			t->conns = idle;
			t->nconns++;
		}
		d = qmgr_ready_pop(t);
		if (t->rate_delay_ms > 0)
			d->next_start = event_now_ms(qmgr_loop) + t->rate_delay_ms;
		e = d->head;
		d->head = e->next;
		if (d->head == NULL)
			d->tail = NULL;
		e->next = NULL;
		qmgr_request(idle, e);
		/* Round robin over destinations, then over messages. */
		if (qmgr_dest_room(d))
			qmgr_ready_push(d);
	}
}

/*
 * Checks the whole reply before acting on it, so a malformed one changes
 * nothing. Fills res (one per recipient of e, in order). 0 or -1.
 */
static int
qmgr_reply_parse(const struct qmgr_entry *e, const struct attr_list *reply,
    struct qmgr_result *res, int *dest_fail_r, const char **why_r)
{
	const struct attr *a;
	uint64_t idx;
	int i = 0, k, n = -1;

	*dest_fail_r = 0;
	for (k = 0; k < reply->count; k++) {
		a = &reply->v[k];
		if (strcmp(a->name, ATTR_ID) == 0 && k == 0)
			continue;
		if (strcmp(a->name, "rcpt_index") == 0) {
			if (++n >= e->n ||
			    str_to_u64(a->value, (uint64_t)e->msg->q.nrcpt,
			        &idx) < 0 ||
			    (int)idx != e->rcpts[n]) {
				*why_r = "reply for the wrong recipient";
				return -1;
			}
			memset(&res[n], 0, sizeof(res[n]));
			res[n].rcpt = (int)idx;
			res[n].status = -1;
			res[n].dsn = res[n].text = res[n].action = "";
			res[n].mta = "";
			res[n].diag_type = "x-tern";
			continue;
		}
		if (strcmp(a->name, "dest_status") == 0) {
			*dest_fail_r = strcmp(a->value, "fail") == 0;
			continue;
		}
		if (n < 0) {
			*why_r = "unexpected attribute in reply";
			return -1;
		}
		if (strcmp(a->name, "result") == 0) {
			if (strcmp(a->value, "sent") == 0)
				res[n].status = QREC_RCPT_DONE;
			else if (strcmp(a->value, "bounce") == 0)
				res[n].status = QREC_RCPT_FAILED;
			else if (strcmp(a->value, "defer") == 0)
				res[n].status = 0;
		} else if (strcmp(a->name, "dsn") == 0)
			res[n].dsn = a->value;
		else if (strcmp(a->name, "text") == 0)
			res[n].text = a->value;
		else if (strcmp(a->name, "action") == 0)
			res[n].action = a->value;
		else if (strcmp(a->name, "mta") == 0)
			res[n].mta = a->value;
		else if (strcmp(a->name, "diag_type") == 0)
			res[n].diag_type = a->value;
		else if (strcmp(a->name, "dsn_passed") == 0)
			res[n].dsn_passed = strcmp(a->value, "1") == 0;
		else {
			*why_r = "unexpected attribute in reply";
			return -1;
		}
	}
	if (n + 1 != e->n) {
		*why_r = "wrong number of results";
		return -1;
	}
	for (i = 0; i < e->n; i++)
		if (res[i].status == -1 || strlen(res[i].dsn) < 5 ||
		    (res[i].dsn[0] != '2' && res[i].dsn[0] != '4' &&
		        res[i].dsn[0] != '5')) {
			*why_r = "incomplete result";
			return -1;
		}
	return 0;
}

static void
qmgr_check_drained(void)
{
	if (qmgr_draining != NULL && qmgr_transport_busy() == 0)
		event_loop_stop(qmgr_draining);
}

static void
qmgr_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct qmgr_conn *c = ctx;
	struct qmgr_entry *e = c->entry;
	struct qmgr_dest *d = e->dest;
	struct qmgr_transport *t = c->t;
	struct qmgr_result *res;
	const char *why = error;
	int dest_fail = 0, i;

	c->entry = NULL;
	d->busy--;
	res = xcalloc((size_t)e->n, sizeof(*res));
	if (reply == NULL || qmgr_reply_parse(e, reply, res, &dest_fail,
	                         &why) < 0) {
		msg_warn("%s: request to %s failed (%s); will retry", e->msg->q.id,
		    t->name, why);
		qmgr_message_lost(e->msg, e->rcpts, e->n, why);
		if (reply == NULL && strncmp(why, "connect to ", 11) == 0)
			qmgr_transport_down(t, why);
	} else {
		qmgr_message_results(e->msg, res, e->n);
		why = "";
		for (i = 0; i < e->n && dest_fail; i++)
			if (res[i].status == 0)
				why = res[i].text;
		qmgr_dest_feedback(d, dest_fail, why);
	}
	free(res);
	qmgr_entry_free(e);
	if (qmgr_dest_room(d))
		qmgr_ready_push(d);
	qmgr_check_drained();
	qmgr_pump(t);
}

void
qmgr_transport_withdraw(struct qmgr_msg *m)
{
	struct qmgr_transport *t;
	struct qmgr_entry *e, **pp;
	struct qmgr_dest *d;
	size_t tp = 0, dp;
	int i;

	/* A walk over every waiting entry: administrators' requests are
	 * rare, and a message keeps no list of its queued entries. */
	while (hash_iter(qmgr_transports, &tp, (void **)&t) != NULL) {
		dp = 0;
		while (hash_iter(t->dests, &dp, (void **)&d) != NULL) {
			pp = &d->head;
			while ((e = *pp) != NULL) {
				if (e->msg != m) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				if (d->tail == e)
					d->tail = NULL;
				for (i = 0; i < e->n; i++)
					m->state[e->rcpts[i]] = QMGR_RCPT_DEFERRED;
				qmgr_entry_free(e);
			}
			/* The tail was the last entry kept, if any. */
			if (d->tail == NULL)
				for (e = d->head; e != NULL; e = e->next)
					d->tail = e;
			if (d->head == NULL)
				qmgr_ready_remove(d);
		}
	}
}

void
qmgr_transport_revive_all(void)
{
	struct qmgr_transport *t;
	struct qmgr_dest *d;
	size_t tp = 0, dp;

	while (hash_iter(qmgr_transports, &tp, (void **)&t) != NULL) {
		if (t->down != NULL)
			qmgr_transport_up(t->down, t);
		dp = 0;
		while (hash_iter(t->dests, &dp, (void **)&d) != NULL)
			if (d->dead_until != 0)
				qmgr_dest_revive(d->revive, d);
	}
}

int
qmgr_transport_busy(void)
{
	struct qmgr_transport *t;
	struct qmgr_conn *c;
	size_t pos = 0;
	int n = 0;

	if (qmgr_transports == NULL)
		return 0;
	while (hash_iter(qmgr_transports, &pos, (void **)&t) != NULL)
		for (c = t->conns; c != NULL; c = c->next)
			n += c->entry != NULL;
	return n;
}

static void
qmgr_drain_timeout(struct event_timer *tm, void *ctx)
{
	(void)tm;
	msg_warn("stopping with %d delivery request(s) unanswered",
	    qmgr_transport_busy());
	event_loop_stop(ctx);
}

void
qmgr_transport_drain(struct event_loop *loop, uint64_t max_ms)
{
	struct event_timer *tm;

	if (qmgr_transport_busy() == 0)
		return;
	qmgr_draining = loop;
	tm = event_timer_add(loop, max_ms, qmgr_drain_timeout, loop);
	if (event_loop_run(loop) < 0)
		msg_warn("event loop: %m");
	event_timer_del(&tm);
}

static void
qmgr_dest_free(void *v)
{
	struct qmgr_dest *d = v;
	struct qmgr_entry *e;

	/* Their messages are freed with the active set; files stay put. */
	while ((e = d->head) != NULL) {
		d->head = e->next;
		free(e->rcpts);
		free(e);
	}
	event_timer_del(&d->revive);
	event_timer_del(&d->rate_wait);
	free(d->dead_reason);
	free(d->nexthop);
	free(d);
}

static void
qmgr_transport_free(void *v)
{
	struct qmgr_transport *t = v;
	struct qmgr_conn *c;

	while ((c = t->conns) != NULL) {
		t->conns = c->next;
		attr_client_free(&c->client);
		if (c->entry != NULL) {
			free(c->entry->rcpts);
			free(c->entry);
		}
		free(c->last_nexthop);
		free(c);
	}
	hash_free(&t->dests, qmgr_dest_free);
	event_timer_del(&t->down);
	free(t->down_reason);
	free(t->name);
	free(t->path);
	free(t);
}

void
qmgr_transport_shutdown(void)
{
	hash_free(&qmgr_transports, qmgr_transport_free);
	services_free(&qmgr_services, qmgr_nservices);
	qmgr_nservices = 0;
}
