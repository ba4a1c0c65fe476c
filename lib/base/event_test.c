/* SPDX-License-Identifier: MIT */
/*
 * Tests for the event loop: descriptor readiness, idle handles, timer
 * order and re-arming, deleting handles from callbacks, and signals.
 * Every loop run has a guard timer so a broken loop fails instead of
 * hanging.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/event.h"
#include "unit.h"

#define GUARD_MS    5000
#define ORDER_MAX   8
#define REARMS      3
/* The heap stress test: timers, their spread in ms, and a fixed seed. */
#define MANY_TIMERS 3000
#define MANY_SPREAD 40
#define MANY_GUARD  300 /* ms after the last deadline */
#define MANY_SEED   12345u

struct state {
	struct event_loop *loop;
	struct event_fd *ev[2];
	struct event_timer *t[ORDER_MAX];
	int order[ORDER_MAX];
	int norder;
	int calls;
	int guard_fired;
};

static void
guard_cb(struct event_timer *t, void *ctx)
{
	struct state *s = ctx;

	(void)t;
	s->guard_fired = 1;
	event_loop_stop(s->loop);
}

/* Runs the loop with a guard timer; returns 0 unless the guard fired. */
static int
run_guarded(struct state *s)
{
	struct event_timer *guard =
	    event_timer_add(s->loop, GUARD_MS, guard_cb, s);

	s->guard_fired = 0;
	CHECK_INT(event_loop_run(s->loop), 0);
	event_timer_del(&guard);
	CHECK(guard == NULL);
	return s->guard_fired ? -1 : 0;
}

static void
pipe_read_cb(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct state *s = ctx;
	char c;

	(void)ev;
	CHECK(events & EVENT_READ);
	CHECK_INT(read(fd, &c, 1), 1);
	CHECK(c == 'x');
	s->calls++;
	event_loop_stop(s->loop);
}

static void
test_event_fd(void)
{
	struct state s;
	int p[2];

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	if (pipe(p) < 0)
		abort();
	s.ev[0] = event_fd_add(s.loop, p[0], EVENT_READ, pipe_read_cb, &s);
	CHECK_INT(write(p[1], "x", 1), 1);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.calls, 1);

	/* Idle (mask 0): readable data but no callback, even after HUP. */
	CHECK_INT(write(p[1], "x", 1), 1);
	close(p[1]);
	event_fd_set(s.ev[0], 0);
	event_timer_add(s.loop, 50, guard_cb, &s);
	CHECK_INT(event_loop_run(s.loop), 0);
	CHECK_INT(s.calls, 1);
	event_fd_set(s.ev[0], EVENT_READ);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.calls, 2);
	event_fd_del(&s.ev[0]);
	CHECK(s.ev[0] == NULL);
	event_fd_del(&s.ev[0]); /* NULL-safe */
	close(p[0]);
	event_loop_free(&s.loop); /* also frees the fired 50 ms timer */
	CHECK(s.loop == NULL);
}

static void
pipe_write_cb(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct state *s = ctx;

	(void)fd;
	CHECK(events & EVENT_WRITE);
	s->calls++;
	event_fd_del(&ev);
	event_loop_stop(s->loop);
}

static void
test_event_write(void)
{
	struct state s;
	int p[2];

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	if (pipe(p) < 0)
		abort();
	event_fd_add(s.loop, p[1], EVENT_WRITE, pipe_write_cb, &s);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.calls, 1);
	close(p[0]);
	close(p[1]);
	event_loop_free(&s.loop);
}

static void
order_cb(struct event_timer *t, void *ctx)
{
	struct state *s = ctx;
	int i;

	for (i = 0; i < ORDER_MAX; i++)
		if (s->t[i] == t)
			break;
	if (s->norder < ORDER_MAX)
		s->order[s->norder++] = i;
	/* Timer 0 pushes timer 1 behind timer 2. */
	if (i == 0)
		event_timer_reset(s->t[1], 60);
	if (s->norder == 4)
		event_loop_stop(s->loop);
}

static void
test_event_timer_order(void)
{
	static const int want[] = {3, 0, 2, 1};
	struct state s;
	uint64_t start;
	int i;

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	start = event_now_ms(s.loop);
	s.t[0] = event_timer_add(s.loop, 20, order_cb, &s);
	s.t[1] = event_timer_add(s.loop, 40, order_cb, &s);
	s.t[2] = event_timer_add(s.loop, 50, order_cb, &s);
	s.t[3] = event_timer_add(s.loop, 0, order_cb, &s);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.norder, 4);
	for (i = 0; i < 4; i++)
		CHECK_INT(s.order[i], want[i]);
	/* t[1] was re-armed at >= 20 ms for 60 ms more. */
	CHECK(event_now_ms(s.loop) - start >= 80);
	for (i = 0; i < 4; i++)
		event_timer_del(&s.t[i]);
	event_loop_free(&s.loop);
}

static void
equal_cb(struct event_timer *t, void *ctx)
{
	struct state *s = ctx;
	int i;

	for (i = 0; i < ORDER_MAX && s->t[i] != t; i++)
		;
	s->order[s->norder++] = i;
	event_timer_del(&s->t[i]); /* its own handle, inside its callback */
	if (s->norder == ORDER_MAX)
		event_loop_stop(s->loop);
}

/* Equal deadlines fire in the order they were armed. */
static void
test_event_timer_equal(void)
{
	struct state s;
	int i;

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	for (i = 0; i < ORDER_MAX; i++)
		s.t[i] = event_timer_add(s.loop, 10, equal_cb, &s);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.norder, ORDER_MAX);
	for (i = 0; i < ORDER_MAX; i++) {
		CHECK_INT(s.order[i], i);
		CHECK(s.t[i] == NULL);
	}
	event_loop_free(&s.loop);
}

static void
rearm_cb(struct event_timer *t, void *ctx)
{
	struct state *s = ctx;

	if (++s->calls < REARMS)
		event_timer_reset(t, 0); /* must not spin in one pass */
	else
		event_loop_stop(s->loop);
}

static void
test_event_timer_rearm(void)
{
	struct state s;

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	s.t[0] = event_timer_add(s.loop, 5, rearm_cb, &s);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.calls, REARMS);
	event_timer_del(&s.t[0]);
	event_loop_free(&s.loop);
}

/* Both pipes are readable in one batch; whoever runs first deletes
 * both handles, so exactly one callback may run. */
static void
del_both_cb(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct state *s = ctx;

	(void)ev;
	(void)fd;
	(void)events;
	s->calls++;
	event_fd_del(&s->ev[0]);
	event_fd_del(&s->ev[1]);
	event_timer_add(s->loop, 30, guard_cb, s);
}

static void
test_event_delete_in_callback(void)
{
	struct state s;
	int p[2], q[2];

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	if (pipe(p) < 0 || pipe(q) < 0)
		abort();
	CHECK_INT(write(p[1], "x", 1), 1);
	CHECK_INT(write(q[1], "x", 1), 1);
	s.ev[0] = event_fd_add(s.loop, p[0], EVENT_READ, del_both_cb, &s);
	s.ev[1] = event_fd_add(s.loop, q[0], EVENT_READ, del_both_cb, &s);
	/* Ends through the 30 ms timer added by the callback. */
	CHECK_INT(event_loop_run(s.loop), 0);
	CHECK_INT(s.calls, 1);
	CHECK(s.ev[0] == NULL && s.ev[1] == NULL);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	event_loop_free(&s.loop);
}

static void
signal_cb(int signo, void *ctx)
{
	struct state *s = ctx;

	CHECK_INT(signo, SIGUSR1);
	s->calls++;
	event_loop_stop(s->loop);
}

static void
test_event_signal(void)
{
	struct state s;

	memset(&s, 0, sizeof(s));
	s.loop = event_loop_create();
	CHECK_INT(event_signal_add(s.loop, SIGUSR1, signal_cb, &s), 0);
	CHECK_INT(event_signal_add(s.loop, SIGUSR2, signal_cb, &s), 0);
	CHECK_INT(event_signal_add(s.loop, 0, signal_cb, &s), -1);
	/* Blocked now, so it waits for the loop instead of killing us. */
	CHECK_INT(kill(getpid(), SIGUSR1), 0);
	CHECK_INT(run_guarded(&s), 0);
	CHECK_INT(s.calls, 1);
	event_loop_free(&s.loop);
}

struct many {
	struct event_loop *loop;
	struct event_timer *t[MANY_TIMERS];
	uint64_t deadline[MANY_TIMERS];
	int fired[MANY_TIMERS];
	int deleted[MANY_TIMERS];
	uint64_t last;
	int nfired, out_of_order, early;
	unsigned seed;
};

static void
many_cb(struct event_timer *t, void *ctx)
{
	struct many *m = ctx;
	int i, victim;

	for (i = 0; i < MANY_TIMERS && m->t[i] != t; i++)
		;
	if (i == MANY_TIMERS) {
		m->out_of_order++; /* a deleted or unknown timer fired */
		return;
	}
	m->fired[i]++;
	m->nfired++;
	if (m->deadline[i] < m->last)
		m->out_of_order++;
	m->last = m->deadline[i];
	if (event_now_ms(m->loop) < m->deadline[i])
		m->early++;
	event_timer_del(&m->t[i]);
	/* Every fifth callback also deletes some other pending timer. */
	victim = (int)((unsigned)rand_r(&m->seed) % MANY_TIMERS);
	if (m->nfired % 5 == 0 && m->t[victim] != NULL) {
		event_timer_del(&m->t[victim]);
		m->deleted[victim] = 1;
	}
}

static void
many_guard_cb(struct event_timer *t, void *ctx)
{
	struct many *m = ctx;

	(void)t;
	event_loop_stop(m->loop);
}

/*
 * Many timers with random deadlines, some deleted or re-armed before the
 * run and some deleted by other timers' callbacks: each survivor fires
 * exactly once, never early, in deadline order.
 */
static void
test_event_timer_heap(void)
{
	struct many *m = calloc(1, sizeof(*m));
	struct event_timer *guard;
	int i, expected = 0, lost = 0;
	uint64_t ms;

	if (m == NULL)
		abort();
	m->seed = MANY_SEED;
	m->loop = event_loop_create();
	for (i = 0; i < MANY_TIMERS; i++) {
		ms = (unsigned)rand_r(&m->seed) % MANY_SPREAD;
		m->t[i] = event_timer_add(m->loop, ms, many_cb, m);
		m->deadline[i] = event_now_ms(m->loop) + ms;
	}
	for (i = 0; i < MANY_TIMERS; i++) {
		switch ((unsigned)rand_r(&m->seed) % 3) {
		case 0:
			event_timer_del(&m->t[i]);
			m->deleted[i] = 1;
			break;
		case 1:
			ms = (unsigned)rand_r(&m->seed) % MANY_SPREAD;
			event_timer_reset(m->t[i], ms);
			m->deadline[i] = event_now_ms(m->loop) + ms;
			break;
		}
	}
	guard = event_timer_add(
	    m->loop, MANY_SPREAD + MANY_GUARD, many_guard_cb, m);
	CHECK_INT(event_loop_run(m->loop), 0);
	event_timer_del(&guard);
	for (i = 0; i < MANY_TIMERS; i++) {
		if (m->deleted[i] && !m->fired[i])
			continue;
		expected++;
		lost += m->fired[i] != 1;
	}
	CHECK_INT(lost, 0);
	CHECK_INT(m->nfired, expected);
	CHECK_INT(m->out_of_order, 0);
	CHECK_INT(m->early, 0);
	for (i = 0; i < MANY_TIMERS; i++)
		event_timer_del(&m->t[i]);
	event_loop_free(&m->loop);
	free(m);
}

UNIT_MAIN(UNIT_CASE(test_event_fd), UNIT_CASE(test_event_write),
    UNIT_CASE(test_event_timer_order), UNIT_CASE(test_event_timer_equal),
    UNIT_CASE(test_event_timer_rearm), UNIT_CASE(test_event_delete_in_callback),
    UNIT_CASE(test_event_signal), UNIT_CASE(test_event_timer_heap))
