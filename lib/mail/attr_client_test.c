/* SPDX-License-Identifier: MIT */
/*
 * attr_client and attr_server together in one event loop over a real
 * UNIX socket: replies matched by id when the server answers out of
 * order, large frames, NOREPLY notices, callbacks never run inside send,
 * a missing service, a server that closes, and a reply that never comes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/event.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/attr_client.h"
#include "mail/attr_server.h"
#include "unit.h"

#define TEST_TIMEOUT_MS 5000
#define SHORT_MS        200
#define BIG_VALUE       (100 * 1024)
#define NREQ            5
#define TICK_MS         10

static struct event_loop *loop;
static char sock_path[256];
static int listen_fd = -1;
static struct event_fd *listen_ev;

/* Server side: "echo" replies at once, "later" after a timer, "close"
 * drops the connection, "silent" never answers. */
static struct attr_conn *held_conn;
static struct attr_list held_req;
static int notices;

static void
reply_echo(struct attr_conn *conn, const struct attr_list *req)
{
	struct buf *f = attr_conn_reply_begin(conn, req);
	const char *v = attr_get(req, "value");

	if (attr_put_str(f, "echo", v != NULL ? v : "") < 0)
		abort();
	attr_conn_reply_end(conn);
}

static void
later_fire(struct event_timer *t, void *ctx)
{
	(void)ctx;
	event_timer_del(&t);
	reply_echo(held_conn, &held_req);
	attr_conn_unref(&held_conn);
}

static int
serve(struct attr_conn *conn, const struct attr_list *req)
{
	const char *what = attr_get(req, "what");

	if (what == NULL)
		return -1;
	if (strcmp(what, "echo") == 0) {
		reply_echo(conn, req);
	} else if (strcmp(what, "later") == 0) {
		/* Keep a copy of the request for the delayed reply. */
		struct buf f;
		const char *err;

		buf_init(&f, ATTR_FRAME_MAX);
		attr_frame_begin(&f);
		for (int i = 0; i < req->count; i++)
			if (attr_put(&f, req->v[i].name, req->v[i].value,
			        req->v[i].len) < 0)
				abort();
		if (attr_frame_end(&f) < 0 ||
		    attr_decode(f.data + ATTR_HEADER_LEN,
		        f.len - ATTR_HEADER_LEN, &held_req, &err) < 0)
			abort();
		buf_free(&f);
		attr_conn_ref(conn);
		held_conn = conn;
		event_timer_add(loop, SHORT_MS, later_fire, NULL);
	} else if (strcmp(what, "notice") == 0) {
		notices++;
	} else if (strcmp(what, "close") == 0) {
		return -1;
	}
	/* "silent": nothing */
	return 0;
}

static const struct attr_server_ops ops = {.request = serve};
static const struct attr_server_limits limits = {
    .request_max = 4 * BIG_VALUE, .conns_max = 8, .idle_ms = 60000};

static void
on_listen(struct event_fd *ev, int fd, int events, void *ctx)
{
	int c;

	(void)ev;
	(void)events;
	(void)ctx;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		attr_server_accept(c, loop, &ops, &limits);
}

static void
server_start(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sock_path, sizeof(sock_path), "/tmp/attr_client_test.%d",
	    (int)getpid());
	unlink(sock_path);
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (listen_fd < 0 ||
	    bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(listen_fd, 16) < 0)
		abort();
	listen_ev = event_fd_add(loop, listen_fd, EVENT_READ, on_listen, NULL);
}

static void
server_stop(void)
{
	attr_server_close_all();
	event_fd_del(&listen_ev);
	close(listen_fd);
	unlink(sock_path);
}

/* Client side: what each callback saw, in order of arrival. */
struct result {
	int done;
	int ok;
	char echo[64];
	size_t echo_len;
	int order;
};

static int arrivals, in_send;

static void
on_reply(const struct attr_list *reply, const char *error, void *ctx)
{
	struct result *r = ctx;
	const char *e;

	CHECK(!in_send);
	r->done = 1;
	r->order = arrivals++;
	r->ok = reply != NULL;
	if (reply == NULL) {
		CHECK(error != NULL && *error != '\0');
	} else if ((e = attr_get(reply, "echo")) != NULL) {
		r->echo_len = strlen(e);
		snprintf(r->echo, sizeof(r->echo), "%s", e);
	}
}

static void
send_one(struct attr_client *c, const char *what, const char *value,
    struct result *r)
{
	struct buf *f = attr_client_frame(c);

	CHECK(attr_put_str(f, "what", what) == 0);
	if (value != NULL)
		CHECK(attr_put_str(f, "value", value) == 0);
	in_send = 1;
	attr_client_send(c, on_reply, r);
	in_send = 0;
}

static void
stop_loop(struct event_timer *t, void *ctx)
{
	(void)ctx;
	event_timer_del(&t);
	event_loop_stop(loop);
}

/* Runs the loop for about ms. */
static void
run_for(uint64_t ms)
{
	event_timer_add(loop, ms, stop_loop, NULL);
	event_loop_run(loop);
}

/* Runs the loop until every result is done (or the deadline). */
static void
run_until(struct result *rs, int n)
{
	int i, all, turns;

	for (turns = 0; turns < TEST_TIMEOUT_MS / TICK_MS; turns++) {
		for (i = 0, all = 1; i < n; i++)
			all &= rs[i].done;
		if (all)
			return;
		run_for(TICK_MS);
	}
}

static void
test_out_of_order(void)
{
	struct attr_client *c = attr_client_create(
	    loop, sock_path, 0, TEST_TIMEOUT_MS, ATTR_FRAME_MAX, 0);
	struct result rs[NREQ];
	char *big = xmalloc(BIG_VALUE + 1);

	memset(rs, 0, sizeof(rs));
	memset(big, 'b', BIG_VALUE);
	big[BIG_VALUE] = '\0';
	arrivals = 0;
	send_one(c, "later", "first", &rs[0]);
	send_one(c, "echo", "second", &rs[1]);
	send_one(c, "echo", big, &rs[2]); /* larger than any read buffer */
	send_one(c, "echo", "fourth", &rs[3]);
	CHECK_INT(attr_client_pending(c), 4);
	run_until(rs, 4);
	CHECK(rs[0].ok && strcmp(rs[0].echo, "first") == 0);
	CHECK(rs[1].ok && strcmp(rs[1].echo, "second") == 0);
	CHECK(rs[2].ok && rs[2].echo_len == BIG_VALUE);
	CHECK(rs[3].ok && strcmp(rs[3].echo, "fourth") == 0);
	/* The delayed one came last, the others in order. */
	CHECK_INT(rs[0].order, 3);
	CHECK_INT(rs[1].order, 0);
	CHECK_INT(attr_client_pending(c), 0);
	attr_list_free(&held_req);
	attr_client_free(&c);
	free(big);
}

static void
test_noreply(void)
{
	struct attr_client *c = attr_client_create(
	    loop, sock_path, ATTR_CLIENT_NOREPLY, TEST_TIMEOUT_MS, 0, 0);
	struct result r = {0};
	struct attr_client *probe = attr_client_create(
	    loop, sock_path, 0, TEST_TIMEOUT_MS, ATTR_FRAME_MAX, 0);
	int i;

	notices = 0;
	for (i = 0; i < NREQ; i++) {
		struct buf *f = attr_client_frame(c);
		CHECK(attr_put_str(f, "what", "notice") == 0);
		attr_client_send(c, NULL, NULL);
	}
	CHECK_INT(attr_client_pending(c), 0);
	/* A request on another connection that is answered after them. */
	send_one(probe, "echo", "x", &r);
	run_until(&r, 1);
	for (i = 0; i < TEST_TIMEOUT_MS / TICK_MS && notices < NREQ; i++)
		run_for(TICK_MS);
	CHECK_INT(notices, NREQ);
	attr_client_free(&c);
	attr_client_free(&probe);
}

static void
test_failures(void)
{
	struct attr_client *c =
	    attr_client_create(loop, sock_path, 0, SHORT_MS, ATTR_FRAME_MAX, 0);
	struct attr_client *none = attr_client_create(loop,
	    "/nonexistent/attr_client_test", 0, SHORT_MS, ATTR_FRAME_MAX, 0);
	struct result rs[3];

	memset(rs, 0, sizeof(rs));
	/* No such service: reported from the loop, not inside send. */
	send_one(none, "echo", "x", &rs[0]);
	CHECK(!rs[0].done);
	run_until(rs, 1);
	CHECK(rs[0].done && !rs[0].ok);
	/* The server drops the connection: every request on it fails. */
	send_one(c, "close", NULL, &rs[1]);
	run_until(&rs[1], 1);
	CHECK(rs[1].done && !rs[1].ok);
	/* No reply within the timeout; the client recovers afterwards. */
	memset(rs, 0, sizeof(rs));
	send_one(c, "silent", NULL, &rs[0]);
	run_until(rs, 1);
	CHECK(rs[0].done && !rs[0].ok);
	send_one(c, "echo", "again", &rs[1]);
	run_until(&rs[1], 1);
	CHECK(rs[1].ok && strcmp(rs[1].echo, "again") == 0);
	/* A cancelled caller's callback is never run. */
	send_one(c, "later", "gone", &rs[2]);
	attr_client_cancel(c, &rs[2]);
	run_for(3 * SHORT_MS);
	CHECK(!rs[2].done);
	attr_client_free(&c);
	attr_client_free(&none);
	/* Let the held reply fire into a closed connection. */
	{
		struct result idle = {0};
		struct attr_client *p = attr_client_create(
		    loop, sock_path, 0, TEST_TIMEOUT_MS, ATTR_FRAME_MAX, 0);
		send_one(p, "later", "after", &idle);
		run_until(&idle, 1);
		CHECK(idle.ok);
		attr_client_free(&p);
	}
	attr_list_free(&held_req);
}

static void
test_setup(void)
{
	loop = event_loop_create();
	CHECK(loop != NULL);
	attr_list_init(&held_req);
	server_start();
}

static void
test_cleanup(void)
{
	server_stop();
	event_loop_free(&loop);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_out_of_order),
    UNIT_CASE(test_noreply), UNIT_CASE(test_failures), UNIT_CASE(test_cleanup))
