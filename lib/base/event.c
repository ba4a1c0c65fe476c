/* SPDX-License-Identifier: MIT */
/*
 * The event loop of the multi-connection daemons: epoll(7) for descriptor
 * readiness, a binary min-heap of one-shot timers on the monotonic clock,
 * and signalfd(2) so signals arrive as ordinary loop events instead of
 * interrupting code at random points. Descriptor handles deleted while the
 * loop is dispatching are only unlinked; their memory is freed after the
 * current batch, so a stale epoll entry never reaches freed memory.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/event.h"
#include "base/log.h"
#include "base/mem.h"

/* Readiness events taken from the kernel per epoll_wait(2). */
#define EVENT_BATCH       64
#define EVENT_HEAP_INIT   16
#define EVENT_SIGINFO_MAX 16
#define MS_PER_SEC        1000
#define NS_PER_MS         1000000

struct event_fd {
	struct event_loop *loop;
	int fd;
	int mask;
	int registered; /* in the epoll set (mask != 0) */
	int dead;
	event_fd_cb *cb;
	void *ctx;
	struct event_fd *prev, *next; /* live list, or dead list via next */
};

struct event_timer {
	struct event_loop *loop;
	uint64_t deadline;
	uint64_t seq;    /* orders equal deadlines by arming time */
	size_t heap_idx; /* EVENT_NOT_ARMED when not queued */
	event_timer_cb *cb;
	void *ctx;
	struct event_timer *prev, *next; /* every timer of the loop */
};

#define EVENT_NOT_ARMED SIZE_MAX

struct event_signal {
	event_signal_cb *cb;
	void *ctx;
};

struct event_loop {
	int epfd;
	int stop;
	uint64_t now;
	struct event_fd *fds;  /* live descriptor handles */
	struct event_fd *dead; /* deleted, freed after dispatch */
	struct event_timer *timers;
	struct event_timer **heap;
	size_t nheap, heap_cap;
	uint64_t timer_seq;
	int sigfd;
	sigset_t sigmask;
	struct event_fd *sig_ev;
	struct event_signal signals[_NSIG];
};

uint64_t
event_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MS_PER_SEC +
	       (uint64_t)ts.tv_nsec / NS_PER_MS;
}

struct event_loop *
event_loop_create(void)
{
	struct event_loop *loop = xcalloc(1, sizeof(*loop));

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		msg_fatal("epoll_create1: %m");
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->now = event_clock_ms();
	return loop;
}

static void
event_free_dead(struct event_loop *loop)
{
	struct event_fd *ev;

	while ((ev = loop->dead) != NULL) {
		loop->dead = ev->next;
		free(ev);
	}
}

void
event_loop_free(struct event_loop **loop_r)
{
	struct event_loop *loop = *loop_r;
	struct event_timer *t;
	struct event_fd *ev;

	if (loop == NULL)
		return;
	while ((ev = loop->fds) != NULL) {
		loop->fds = ev->next;
		free(ev);
	}
	event_free_dead(loop);
	while ((t = loop->timers) != NULL) {
		loop->timers = t->next;
		free(t);
	}
	free(loop->heap);
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop);
	*loop_r = NULL;
}

uint64_t
event_now_ms(struct event_loop *loop)
{
	return loop->now;
}

void
event_loop_stop(struct event_loop *loop)
{
	loop->stop = 1;
}

/* --- timers: min-heap ordered by (deadline, seq) --- */

static int
timer_before(const struct event_timer *a, const struct event_timer *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

static void
heap_place(struct event_loop *loop, size_t i, struct event_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void
heap_sift_up(struct event_loop *loop, size_t i)
{
	struct event_timer *t = loop->heap[i];

	while (i > 0 && timer_before(t, loop->heap[(i - 1) / 2])) {
		heap_place(loop, i, loop->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_place(loop, i, t);
}

static void
heap_sift_down(struct event_loop *loop, size_t i)
{
	struct event_timer *t = loop->heap[i];
	size_t child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= loop->nheap)
			break;
		if (child + 1 < loop->nheap &&
		    timer_before(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop->heap[child], t))
			break;
		heap_place(loop, i, loop->heap[child]);
		i = child;
	}
	heap_place(loop, i, t);
}

static void
heap_remove(struct event_loop *loop, struct event_timer *t)
{
	size_t i = t->heap_idx;
	struct event_timer *last;

	if (i == EVENT_NOT_ARMED)
		return;
	t->heap_idx = EVENT_NOT_ARMED;
	last = loop->heap[--loop->nheap];
	if (last == t)
		return;
	heap_place(loop, i, last);
	heap_sift_down(loop, i);
	heap_sift_up(loop, last->heap_idx);
}

static void
heap_insert(struct event_loop *loop, struct event_timer *t)
{
	if (loop->nheap == loop->heap_cap) {
		loop->heap_cap =
		    loop->heap_cap ? loop->heap_cap * 2 : EVENT_HEAP_INIT;
		loop->heap =
		    xrealloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
	}
	heap_place(loop, loop->nheap++, t);
	heap_sift_up(loop, t->heap_idx);
}

struct event_timer *
event_timer_add(
    struct event_loop *loop, uint64_t ms, event_timer_cb *cb, void *ctx)
{
	struct event_timer *t = xcalloc(1, sizeof(*t));

	t->loop = loop;
	t->cb = cb;
	t->ctx = ctx;
	t->heap_idx = EVENT_NOT_ARMED;
	t->next = loop->timers;
	if (t->next != NULL)
		t->next->prev = t;
	loop->timers = t;
	event_timer_reset(t, ms);
	return t;
}

void
event_timer_reset(struct event_timer *t, uint64_t ms)
{
	struct event_loop *loop = t->loop;

	heap_remove(loop, t);
	t->deadline = ms > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + ms;
	t->seq = loop->timer_seq++;
	heap_insert(loop, t);
}

void
event_timer_del(struct event_timer **t_r)
{
	struct event_timer *t = *t_r;

	if (t == NULL)
		return;
	/* Fired timers are off the heap and unreferenced: free at once. */
	heap_remove(t->loop, t);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->loop->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	free(t);
	*t_r = NULL;
}

/* Fires due timers armed before this pass, so a callback re-arming itself
 * with 0 ms waits for the next iteration instead of spinning here. */
static void
event_run_timers(struct event_loop *loop)
{
	uint64_t seq_limit = loop->timer_seq;
	struct event_timer *t;

	while (loop->nheap > 0 && !loop->stop) {
		t = loop->heap[0];
		if (t->deadline > loop->now || t->seq >= seq_limit)
			break;
		heap_remove(loop, t);
		t->cb(t, t->ctx);
	}
}

static int
event_timeout(struct event_loop *loop)
{
	uint64_t left;

	if (loop->nheap == 0)
		return -1;
	if (loop->heap[0]->deadline <= loop->now)
		return 0;
	left = loop->heap[0]->deadline - loop->now;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* --- descriptors --- */

static uint32_t
event_epoll_mask(int mask)
{
	return ((mask & EVENT_READ) ? EPOLLIN : 0) |
	       ((mask & EVENT_WRITE) ? EPOLLOUT : 0);
}

/* Idle handles leave the epoll set: EPOLLHUP would otherwise spin. */
static void
event_fd_apply(struct event_fd *ev, int mask)
{
	struct epoll_event e;
	int op;

	memset(&e, 0, sizeof(e));
	e.events = event_epoll_mask(mask);
	e.data.ptr = ev;
	if (mask == 0)
		op = ev->registered ? EPOLL_CTL_DEL : -1;
	else
		op = ev->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (op >= 0 && epoll_ctl(ev->loop->epfd, op, ev->fd, &e) < 0 &&
	    op != EPOLL_CTL_DEL)
		msg_panic("epoll_ctl fd %d: %m", ev->fd);
	ev->registered = mask != 0;
	ev->mask = mask;
}

struct event_fd *
event_fd_add(
    struct event_loop *loop, int fd, int mask, event_fd_cb *cb, void *ctx)
{
	struct event_fd *ev = xcalloc(1, sizeof(*ev));

	ev->loop = loop;
	ev->fd = fd;
	ev->cb = cb;
	ev->ctx = ctx;
	ev->next = loop->fds;
	if (ev->next != NULL)
		ev->next->prev = ev;
	loop->fds = ev;
	event_fd_apply(ev, mask);
	return ev;
}

void
event_fd_set(struct event_fd *ev, int mask)
{
	if (!ev->dead && mask != ev->mask)
		event_fd_apply(ev, mask);
}

void
event_fd_del(struct event_fd **ev_r)
{
	struct event_fd *ev = *ev_r;
	struct event_loop *loop;

	if (ev == NULL)
		return;
	loop = ev->loop;
	event_fd_apply(ev, 0);
	if (ev->prev != NULL)
		ev->prev->next = ev->next;
	else
		loop->fds = ev->next;
	if (ev->next != NULL)
		ev->next->prev = ev->prev;
	ev->dead = 1;
	ev->next = loop->dead;
	loop->dead = ev;
	*ev_r = NULL;
}

/* --- signals --- */

static void
event_signal_read(struct event_fd *ev, int fd, int events, void *ctx)
{
	struct event_loop *loop = ctx;
	struct signalfd_siginfo si[EVENT_SIGINFO_MAX];
	struct event_signal *s;
	ssize_t n;
	size_t i;

	(void)ev;
	(void)events;
	while ((n = read(fd, si, sizeof(si))) > 0) {
		for (i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			if (si[i].ssi_signo >= _NSIG)
				continue;
			s = &loop->signals[si[i].ssi_signo];
			if (s->cb != NULL)
				s->cb((int)si[i].ssi_signo, s->ctx);
		}
	}
}

int
event_signal_add(
    struct event_loop *loop, int signo, event_signal_cb *cb, void *ctx)
{
	sigset_t one;
	int fd;

	if (signo <= 0 || signo >= _NSIG) {
		errno = EINVAL;
		return -1;
	}
	sigemptyset(&one);
	sigaddset(&one, signo);
	/* Only this thread: pool threads are created with signals blocked. */
	if ((errno = pthread_sigmask(SIG_BLOCK, &one, NULL)) != 0)
		return -1;
	sigaddset(&loop->sigmask, signo);
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	loop->signals[signo].cb = cb;
	loop->signals[signo].ctx = ctx;
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		loop->sig_ev =
		    event_fd_add(loop, fd, EVENT_READ, event_signal_read, loop);
	}
	return 0;
}

/* --- the loop --- */

static void
event_dispatch(const struct epoll_event *e)
{
	struct event_fd *ev = e->data.ptr;
	int events = 0;

	if (ev->dead)
		return;
	if (e->events & EPOLLIN)
		events |= EVENT_READ;
	if (e->events & EPOLLOUT)
		events |= EVENT_WRITE;
	if (e->events & (EPOLLHUP | EPOLLERR))
		events |= EVENT_READ | (ev->mask & EVENT_WRITE);
	ev->cb(ev, ev->fd, events, ev->ctx);
}

int
event_loop_run(struct event_loop *loop)
{
	struct epoll_event events[EVENT_BATCH];
	int n, i;

	loop->stop = 0;
	while (!loop->stop) {
		loop->now = event_clock_ms();
		n = epoll_wait(
		    loop->epfd, events, EVENT_BATCH, event_timeout(loop));
		if (n < 0 && errno != EINTR)
			return -1;
		loop->now = event_clock_ms();
		for (i = 0; i < n && !loop->stop; i++)
			event_dispatch(&events[i]);
		event_run_timers(loop);
		event_free_dead(loop);
	}
	return 0;
}
