/* SPDX-License-Identifier: MIT */
/*
 * The one event-driven client of a tern service that speaks the attribute
 * protocol (attr.h) over a UNIX socket: smtpd's notices to qmgr, its
 * questions to auth, anvil and proxymap, and qmgr's delivery requests all
 * go through it. Requests are queued and written through one stream; the
 * client adds an "id" attribute to each, and the server's reply carries it
 * back (attr_reply_begin), so a server may answer out of order: auth
 * delays a failed login without holding up the others on the connection.
 *
 * The connection is opened on the first request (non-blocking) and again
 * after it broke. Every request gets its callback exactly once, from the
 * event loop and never from inside attr_client_send: with the reply, or
 * with NULL and a reason when the connection cannot be made, breaks, or
 * the reply does not come within the client's timeout (the connection is
 * then dropped, failing every request on it).
 *
 * A notice is a frame without an id: the service does not answer it, it
 * is done once written, and it is dropped (with a debug log) when it
 * cannot be written. With ATTR_CLIENT_NOREPLY every frame is a notice
 * (qmgr's "new message"); attr_client_notice_frame makes one on a client
 * that otherwise expects replies (anvil's "disconnect"): it goes on the
 * same connection, in order with the requests.
 */
#ifndef TERN_ATTR_CLIENT_H
#define TERN_ATTR_CLIENT_H

#include <stdint.h>
#include <sys/types.h>
#include "base/buf.h"
#include "base/event.h"
#include "mail/attr.h"

#define ATTR_CLIENT_NOREPLY 0x1

/* The attribute that pairs a reply with its request. */
#define ATTR_ID "id"

struct attr_client;

/* reply is NULL on failure (error says why); both valid during the call. */
typedef void attr_client_cb(const struct attr_list *reply, const char *error,
    void *ctx);

/*
 * path: the service's socket. timeout_ms: the longest wait for a reply
 * (and for the connect). reply_max: the largest reply frame accepted.
 * idle_ms: the connection is closed after that long without requests
 * (0: kept open).
 */
struct attr_client *attr_client_create(struct event_loop *loop,
    const char *path, unsigned flags, uint64_t timeout_ms, size_t reply_max,
    uint64_t idle_ms);
void attr_client_free(struct attr_client **c_r);
/*
 * A root process (spawn) connecting to a socket below a directory that a
 * tern user owns must not follow that path as root: with this, each
 * connect() runs with effective uid and gid (groups: gid alone) switched
 * to these (priv_become) and switched back at once (priv_restore; failing
 * that is fatal). Without root it changes nothing.
 */
void attr_client_set_ids(struct attr_client *c, uid_t uid, gid_t gid);

/* The next request's frame: begun, the id already in it; add attributes
 * (a failed put is the caller's bug: the frame is bounded by
 * ATTR_FRAME_MAX), then attr_client_send. */
struct buf *attr_client_frame(struct attr_client *c);
/* A notice's frame: begun, without an id. */
struct buf *attr_client_notice_frame(struct attr_client *c);
/* Ends the frame and queues it; cb(ctx) runs later, exactly once. For a
 * notice cb must be NULL. */
void attr_client_send(struct attr_client *c, attr_client_cb *cb, void *ctx);
/* The caller behind ctx is going away: its requests stay in flight but
 * their callbacks are forgotten. */
void attr_client_cancel(struct attr_client *c, void *ctx);
/* Requests sent and not yet answered (notices do not count). */
int attr_client_pending(const struct attr_client *c);

#endif
