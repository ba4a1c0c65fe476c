/* SPDX-License-Identifier: MIT */
/*
 * The server side of the attribute protocol for event-driven services
 * (qmgr's notices, auth, anvil, proxymap): each accepted connection reads
 * request frames through a stream and hands each to the service; the
 * service answers at once or later (auth delays failures), in any order,
 * each reply carrying the request's id (attr_client.h). Every connection
 * has a cap on its request size, on replies not yet taken by the client
 * and an idle deadline, and the set of connections has a cap.
 */
#ifndef TERN_ATTR_SERVER_H
#define TERN_ATTR_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"
#include "base/event.h"
#include "mail/attr.h"

struct attr_conn;

struct attr_server_ops {
	/* One request. Reply with attr_conn_reply_begin/_end, now or later
	 * (hold a reference with attr_conn_ref meanwhile). Returning -1
	 * closes the connection (a protocol violation). */
	int (*request)(struct attr_conn *conn, const struct attr_list *req);
	/* Optional: the connection is closed; attr_conn_data may be freed. */
	void (*closed)(struct attr_conn *conn);
};

struct attr_server_limits {
	size_t request_max;	/* largest request frame */
	int conns_max;		/* connections at once */
	uint64_t idle_ms;	/* closed after this long without a request
				 * (0: never; for state kept per connection) */
};

/* Adopts fd (from the server skeleton's accept). */
void attr_server_accept(int fd, struct event_loop *loop,
    const struct attr_server_ops *ops, const struct attr_server_limits *lim);
/* Closes every connection (shutdown). */
void attr_server_close_all(void);

void attr_conn_set_data(struct attr_conn *conn, void *data);
void *attr_conn_data(const struct attr_conn *conn);

/*
 * The reply frame to fill (begun with req's id); attr_conn_reply_end sends
 * it. A request without an id is a notice (attr_client.h): its reply is
 * built and not sent. After the connection closed these still work and
 * send nothing.
 */
struct buf *attr_conn_reply_begin(struct attr_conn *conn,
    const struct attr_list *req);
void attr_conn_reply_end(struct attr_conn *conn);
/* 1 while the client is still connected. */
int attr_conn_alive(const struct attr_conn *conn);
/* A reference keeps the memory (not the connection) for a later reply. */
void attr_conn_ref(struct attr_conn *conn);
void attr_conn_unref(struct attr_conn **conn_r);

#endif
