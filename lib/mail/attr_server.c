/* SPDX-License-Identifier: MIT */
/*
 * Event-driven server connections of the attribute protocol (see
 * attr_server.h): one stream per connection, frames taken as they arrive
 * (attr_frame_take), replies queued on the stream and written as the
 * socket takes them. A connection stays in memory while references for
 * delayed replies exist. No RFCs: this is tern's own IPC.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/attr_server.h"

struct attr_conn {
	struct event_loop *loop;
	const struct attr_server_ops *ops;
	struct attr_server_limits lim;
	struct stream st;
	struct event_fd *ev;
	struct event_timer *idle;
	struct buf in;    /* a request larger than the stream buffer */
	struct buf reply; /* the reply being built */
	int reply_drop;   /* its request was a notice: nothing is sent */
	struct attr_list req;
	void *data;
	int alive;
	int refs;
	int in_request;
	struct attr_conn *prev, *next;
};

static struct attr_conn *attr_conns;
static int attr_nconns;

static void
attr_conn_destroy(struct attr_conn *c)
{
	buf_free(&c->in);
	buf_free(&c->reply);
	attr_list_free(&c->req);
	free(c);
}

/* Ends the connection; the memory lives on while references exist. */
static void
attr_conn_close(struct attr_conn *c)
{
	if (!c->alive)
		return;
	c->alive = 0;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		attr_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	attr_nconns--;
	event_fd_del(&c->ev);
	event_timer_del(&c->idle);
	stream_close(&c->st);
	if (c->ops->closed != NULL)
		c->ops->closed(c);
	attr_conn_unref(&c);
}

static void
attr_conn_update(struct attr_conn *c)
{
	/* A client that does not take its replies gets no new requests
	 * read until it does. */
	event_fd_set(c->ev,
	    stream_events(&c->st, stream_unsent(&c->st) < STREAM_WBUF_MAX / 2));
}

static void
attr_conn_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct attr_conn *c = ctx;
	enum stream_result r = STREAM_AGAIN;
	const char *err = NULL;
	int got;

	(void)ev;
	(void)fd;
	(void)events;
	if (stream_try_flush(&c->st) == STREAM_ERROR) {
		attr_conn_close(c);
		return;
	}
	attr_conn_ref(c);
	do {
		if (stream_unsent(&c->st) >= STREAM_WBUF_MAX / 2)
			break;
		r = stream_fill(&c->st);
		if (r == STREAM_EOF || r == STREAM_ERROR) {
			attr_conn_close(c);
			break;
		}
		while (c->alive && (got = attr_frame_take(
		                        &c->st, &c->in, &c->req, &err)) != 0) {
			if (got < 0) {
				msg_warn("service connection: %s", err);
				attr_conn_close(c);
				break;
			}
			if (c->idle != NULL)
				event_timer_reset(c->idle, c->lim.idle_ms);
			c->in_request = 1;
			if (c->ops->request(c, &c->req) < 0)
				attr_conn_close(c);
			c->in_request = 0;
		}
	} while (c->alive && r == STREAM_OK);
	if (c->alive)
		attr_conn_update(c);
	attr_conn_unref(&c);
}

static void
attr_conn_idle(struct event_timer *t, void *ctx)
{
	(void)t;
	msg_debug("closing an idle service connection");
	attr_conn_close(ctx);
}

void
attr_server_accept(int fd, struct event_loop *loop,
    const struct attr_server_ops *ops, const struct attr_server_limits *lim)
{
	struct attr_conn *c;

	if (attr_nconns >= lim->conns_max) {
		msg_warn("too many service connections (%d), refusing one",
		    lim->conns_max);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->ops = ops;
	c->lim = *lim;
	c->alive = 1;
	c->refs = 1; /* the connection's own */
	stream_init(&c->st, fd);
	buf_init(&c->in, ATTR_HEADER_LEN + lim->request_max);
	buf_init(&c->reply, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	attr_list_init(&c->req);
	c->ev = event_fd_add(loop, fd, EVENT_READ, attr_conn_io, c);
	if (lim->idle_ms > 0)
		c->idle =
		    event_timer_add(loop, lim->idle_ms, attr_conn_idle, c);
	c->next = attr_conns;
	if (c->next != NULL)
		c->next->prev = c;
	attr_conns = c;
	attr_nconns++;
}

void
attr_server_close_all(void)
{
	while (attr_conns != NULL)
		attr_conn_close(attr_conns);
}

void
attr_conn_set_data(struct attr_conn *conn, void *data)
{
	conn->data = data;
}

void *
attr_conn_data(const struct attr_conn *conn)
{
	return conn->data;
}

struct buf *
attr_conn_reply_begin(struct attr_conn *conn, const struct attr_list *req)
{
	if (attr_reply_begin(&conn->reply, req) < 0)
		msg_panic("attr_conn_reply_begin: reply buffer too small");
	conn->reply_drop = attr_find(req, "id") == NULL;
	return &conn->reply;
}

void
attr_conn_reply_end(struct attr_conn *conn)
{
	if (attr_frame_end(&conn->reply) < 0)
		msg_panic("attr_conn_reply_end: reply over its maximum");
	if (!conn->alive || conn->reply_drop)
		return;
	if (stream_write(&conn->st, conn->reply.data, conn->reply.len) < 0) {
		msg_warn("service connection: client does not read replies");
		attr_conn_close(conn);
		return;
	}
	if (stream_try_flush(&conn->st) == STREAM_ERROR) {
		if (!conn->in_request)
			attr_conn_close(conn);
		return; /* the read loop sees the broken connection */
	}
	if (!conn->in_request)
		attr_conn_update(conn);
}

int
attr_conn_alive(const struct attr_conn *conn)
{
	return conn->alive;
}

void
attr_conn_ref(struct attr_conn *conn)
{
	conn->refs++;
}

void
attr_conn_unref(struct attr_conn **conn_r)
{
	struct attr_conn *c = *conn_r;

	*conn_r = NULL;
	if (c != NULL && --c->refs == 0)
		attr_conn_destroy(c);
}
