/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous client of the attribute protocol (attr_client.h): one
 * non-blocking UNIX-socket connection per client, a FIFO of requests in
 * flight with their callbacks, replies matched by id, and one deadline
 * timer for the oldest request. Failures are reported from a zero-delay
 * timer so that no callback ever runs inside attr_client_send. No RFCs:
 * this is tern's own IPC.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/attr_client.h"

#define ATTR_CLIENT_ERROR_MAX 256
/* Decimal request ids. */
#define ATTR_CLIENT_ID_MAX    24

struct attr_request {
	uint64_t id;
	uint64_t deadline; /* event loop ms */
	attr_client_cb *cb;
	void *ctx;
	struct attr_request *next;
};

struct attr_client {
	struct event_loop *loop;
	char *path;
	unsigned flags;
	uint64_t timeout_ms, idle_ms;
	int fd; /* -1: not connected */
	int connecting;
	struct stream st;
	struct event_fd *ev;
	struct event_timer *timer;  /* oldest request's deadline, or idle */
	struct event_timer *failer; /* reports failures out of line */
	struct buf frame;           /* the request being built */
	struct buf in;              /* a reply frame larger than the stream */
	struct attr_list reply;
	struct attr_request *head, *tail; /* sent, waiting */
	struct attr_request *failed;      /* to report from failer */
	char failed_why[ATTR_CLIENT_ERROR_MAX];
	int npending;
	uint64_t next_id;
	int frame_has_id; /* the frame being built wants a reply */
	int in_callback;  /* freeing is deferred while a callback runs */
	int free_me;
	int as_ids; /* connect as uid/gid (attr_client_set_ids) */
	uid_t uid;
	gid_t gid;
};

static void attr_client_arm(struct attr_client *c);

static void attr_client_destroy(struct attr_client *c);

static void
attr_client_report(struct event_timer *t, void *ctx)
{
	struct attr_client *c = ctx;
	struct attr_request *r, *list = c->failed;
	char why[ATTR_CLIENT_ERROR_MAX];

	(void)t;
	event_timer_del(&c->failer);
	/* Detached: a callback that sends again and fails is reported by a
	 * later round, never in this loop. */
	c->failed = NULL;
	snprintf(why, sizeof(why), "%s", c->failed_why);
	c->in_callback++;
	while ((r = list) != NULL) {
		list = r->next;
		if (r->cb != NULL && !c->free_me)
			r->cb(NULL, why, r->ctx);
		free(r);
	}
	c->in_callback--;
	if (c->free_me && c->in_callback == 0)
		attr_client_destroy(c);
}

static void
attr_client_failer(struct attr_client *c, const char *why)
{
	snprintf(c->failed_why, sizeof(c->failed_why), "%s", why);
	if (c->failed != NULL && c->failer == NULL)
		c->failer = event_timer_add(c->loop, 0, attr_client_report, c);
}

/* Moves every waiting request to the failed list, reported soon. */
static void
attr_client_fail_all(struct attr_client *c, const char *why)
{
	if (c->head != NULL) {
		c->tail->next = c->failed;
		c->failed = c->head;
		c->head = c->tail = NULL;
	}
	c->npending = 0;
	attr_client_failer(c, why);
}

static void
attr_client_disconnect(struct attr_client *c, const char *why)
{
	if (c->fd >= 0) {
		if (why != NULL)
			msg_debug("%s: %s", c->path, why);
		event_fd_del(&c->ev);
		stream_close(&c->st);
		c->fd = -1;
	}
	c->connecting = 0;
	buf_reset(&c->in);
	attr_client_fail_all(c, why != NULL ? why : "connection closed");
	attr_client_arm(c);
}

static void
attr_client_update(struct attr_client *c)
{
	int mask;

	if (c->fd < 0)
		return;
	if (c->connecting)
		mask = EVENT_WRITE;
	else
		/* Always read: a reply, or the server going away. */
		mask = stream_events(&c->st, 1);
	event_fd_set(c->ev, mask);
}

/* The request a reply names, taken out of the list; NULL if none. */
static struct attr_request *
attr_client_take(struct attr_client *c, uint64_t id)
{
	struct attr_request **pp, *r, *prev = NULL;

	for (pp = &c->head; (r = *pp) != NULL; prev = r, pp = &r->next) {
		if (r->id != id)
			continue;
		*pp = r->next;
		if (c->tail == r)
			c->tail = prev;
		c->npending--;
		return r;
	}
	return NULL;
}

/* Takes every complete reply; 0, or -1 when the connection went. */
static int
attr_client_replies(struct attr_client *c)
{
	struct attr_request *r;
	const char *err = NULL;
	long long id;
	int got;

	for (;;) {
		got = attr_frame_take(&c->st, &c->in, &c->reply, &err);
		if (got == 0)
			return 0;
		if (got < 0) {
			attr_client_disconnect(c, err);
			return -1;
		}
		if (attr_get_int(&c->reply, ATTR_ID, &id) < 0 || id < 0 ||
		    (r = attr_client_take(c, (uint64_t)id)) == NULL) {
			attr_client_disconnect(c, "reply to no request");
			return -1;
		}
		if (r->cb != NULL) {
			c->in_callback++;
			r->cb(&c->reply, NULL, r->ctx);
			c->in_callback--;
		}
		free(r);
		if (c->free_me) {
			if (c->in_callback == 0)
				attr_client_destroy(c);
			return -1;
		}
		if (c->fd < 0)
			return -1;
	}
}

static void
attr_client_io(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct attr_client *c = ctx;
	enum stream_result r;
	char why[ATTR_CLIENT_ERROR_MAX];
	socklen_t len = sizeof(int);
	int err = 0;

	(void)ev;
	(void)events;
	if (c->connecting) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			snprintf(why, sizeof(why), "connect to %s: %s", c->path,
			    strerror(err));
			attr_client_disconnect(c, why);
			return;
		}
		c->connecting = 0;
	}
	if (stream_unsent(&c->st) > 0 &&
	    stream_try_flush(&c->st) == STREAM_ERROR) {
		snprintf(why, sizeof(why), "write to %s: %s", c->path,
		    strerror(errno));
		attr_client_disconnect(c, why);
		return;
	}
	do {
		r = stream_fill(&c->st);
		if (r == STREAM_EOF || r == STREAM_ERROR) {
			snprintf(why, sizeof(why), "%s: %s", c->path,
			    r == STREAM_EOF ? "connection closed"
			                    : strerror(errno));
			attr_client_disconnect(c, why);
			return;
		}
		if ((c->flags & ATTR_CLIENT_NOREPLY) &&
		    stream_buffered(&c->st) > 0) {
			attr_client_disconnect(c, "unexpected data");
			return;
		}
		if (attr_client_replies(c) < 0)
			return;
	} while (r == STREAM_OK);
	attr_client_arm(c);
	attr_client_update(c);
}

static void
attr_client_timeout(struct event_timer *t, void *ctx)
{
	struct attr_client *c = ctx;
	char why[ATTR_CLIENT_ERROR_MAX];

	(void)t;
	event_timer_del(&c->timer);
	if (c->head == NULL) {
		/* Idle long enough: let the server process move on. */
		attr_client_disconnect(c, NULL);
		return;
	}
	snprintf(why, sizeof(why), "%s: no reply within %llu ms", c->path,
	    (unsigned long long)c->timeout_ms);
	msg_warn("%s", why);
	attr_client_disconnect(c, why);
}

/* One timer: the oldest request's deadline, else the idle close. */
static void
attr_client_arm(struct attr_client *c)
{
	uint64_t now = event_now_ms(c->loop), when;

	event_timer_del(&c->timer);
	if (c->head != NULL)
		when = c->head->deadline;
	else if (c->fd >= 0 && c->idle_ms > 0)
		when = now + c->idle_ms;
	else
		return;
	c->timer = event_timer_add(
	    c->loop, when > now ? when - now : 0, attr_client_timeout, c);
}

static int
attr_client_connect(struct attr_client *c, const char **why_r)
{
	static char why[ATTR_CLIENT_ERROR_MAX];
	struct sockaddr_un sun;
	int fd, rc, switched, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(c->path) >= sizeof(sun.sun_path)) {
		snprintf(why, sizeof(why), "socket path too long: %s", c->path);
		*why_r = why;
		return -1;
	}
	memcpy(sun.sun_path, c->path, strlen(c->path));
	switched = c->as_ids && geteuid() == 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && switched && priv_become(c->uid, c->gid) < 0) {
		snprintf(why, sizeof(why), "connect to %s: cannot switch to "
		    "uid %ld: %s", c->path, (long)c->uid, strerror(errno));
		*why_r = why;
		close(fd);
		if (priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
		return -1;
	}
	rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (fd >= 0 && switched) {
		saved = errno;
		if (priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
		errno = saved;
	}
	/* EAGAIN on a UNIX socket is a full listen queue, not progress. */
	if (rc < 0 && (fd < 0 || errno != EINPROGRESS)) {
		snprintf(why, sizeof(why), "connect to %s: %s", c->path,
		    strerror(errno));
		*why_r = why;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	c->connecting = rc < 0;
	c->fd = fd;
	stream_init(&c->st, fd);
	c->ev = event_fd_add(c->loop, fd, 0, attr_client_io, c);
	return 0;
}

struct attr_client *
attr_client_create(struct event_loop *loop, const char *path, unsigned flags,
    uint64_t timeout_ms, size_t reply_max, uint64_t idle_ms)
{
	struct attr_client *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->path = xstrdup(path);
	c->flags = flags;
	c->timeout_ms = timeout_ms;
	c->idle_ms = idle_ms;
	c->fd = -1;
	c->next_id = 1;
	buf_init(&c->frame, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	buf_init(&c->in, ATTR_HEADER_LEN + reply_max);
	attr_list_init(&c->reply);
	return c;
}

static void
attr_client_destroy(struct attr_client *c)
{
	struct attr_request *r;

	if (c->fd >= 0) {
		event_fd_del(&c->ev);
		stream_close(&c->st);
	}
	event_timer_del(&c->timer);
	event_timer_del(&c->failer);
	while ((r = c->head) != NULL) {
		c->head = r->next;
		free(r);
	}
	while ((r = c->failed) != NULL) {
		c->failed = r->next;
		free(r);
	}
	buf_free(&c->frame);
	buf_free(&c->in);
	attr_list_free(&c->reply);
	free(c->path);
	free(c);
}

void
attr_client_set_ids(struct attr_client *c, uid_t uid, gid_t gid)
{
	c->as_ids = 1;
	c->uid = uid;
	c->gid = gid;
}

void
attr_client_free(struct attr_client **c_r)
{
	struct attr_client *c = *c_r;

	if (c == NULL)
		return;
	*c_r = NULL;
	if (c->in_callback > 0)
		c->free_me = 1; /* finished when the callback returns */
	else
		attr_client_destroy(c);
}

struct buf *
attr_client_frame(struct attr_client *c)
{
	char id[ATTR_CLIENT_ID_MAX];

	attr_frame_begin(&c->frame);
	c->frame_has_id = !(c->flags & ATTR_CLIENT_NOREPLY);
	if (!c->frame_has_id)
		return &c->frame;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->next_id);
	if (attr_put_str(&c->frame, ATTR_ID, id) < 0)
		msg_panic("attr_client: frame buffer too small");
	return &c->frame;
}

struct buf *
attr_client_notice_frame(struct attr_client *c)
{
	attr_frame_begin(&c->frame);
	c->frame_has_id = 0;
	return &c->frame;
}

/* Connects if needed and queues the frame: 0, or -1 with *why_r. */
static int
attr_client_put(struct attr_client *c, const char **why_r)
{
	if (c->fd < 0 && attr_client_connect(c, why_r) < 0)
		return -1;
	if (stream_write(&c->st, c->frame.data, c->frame.len) < 0) {
		*why_r = "the service is not reading requests";
		return -1;
	}
	return 0;
}

/* Writes what the socket takes now; the loop does the rest. */
static void
attr_client_push(struct attr_client *c)
{
	if (!c->connecting && stream_try_flush(&c->st) == STREAM_ERROR) {
		/* Reported from the loop, like every failure. */
		attr_client_disconnect(c, "write failed");
		return;
	}
	attr_client_arm(c);
	attr_client_update(c);
}

void
attr_client_send(struct attr_client *c, attr_client_cb *cb, void *ctx)
{
	struct attr_request *r;
	const char *why = NULL;

	if (attr_frame_end(&c->frame) < 0)
		msg_panic("attr_client: request frame over its maximum");
	if (!c->frame_has_id) {
		/* A notice: done once written, dropped when it cannot be. */
		if (cb != NULL)
			msg_panic("attr_client: a notice has no callback");
		if (attr_client_put(c, &why) < 0)
			msg_debug("%s: notice dropped: %s", c->path, why);
		else
			attr_client_push(c);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = c->next_id++;
	r->deadline = event_now_ms(c->loop) + c->timeout_ms;
	r->cb = cb;
	r->ctx = ctx;
	if (attr_client_put(c, &why) < 0) {
		r->next = c->failed;
		c->failed = r;
		attr_client_failer(c, why);
		return;
	}
	if (c->tail != NULL)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->npending++;
	attr_client_push(c);
}

void
attr_client_cancel(struct attr_client *c, void *ctx)
{
	struct attr_request *r;

	for (r = c->head; r != NULL; r = r->next)
		if (r->ctx == ctx)
			r->cb = NULL;
	for (r = c->failed; r != NULL; r = r->next)
		if (r->ctx == ctx)
			r->cb = NULL;
}

int
attr_client_pending(const struct attr_client *c)
{
	return c->npending;
}
