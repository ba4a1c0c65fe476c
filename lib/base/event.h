/* SPDX-License-Identifier: MIT */
/*
 * Single-threaded event loop over epoll(7): fd readiness, one-shot timers
 * (monotonic clock, millisecond resolution) and signals (signalfd). All
 * callbacks run in the loop's thread. Handles may be deleted from inside
 * any callback, including their own.
 */
#ifndef TERN_EVENT_H
#define TERN_EVENT_H

#include <stdint.h>

#define EVENT_READ  0x1
#define EVENT_WRITE 0x2

struct event_loop;
struct event_fd;
struct event_timer;

/* events: the EVENT_* bits that are ready; EPOLLHUP/ERR show as READ. */
typedef void event_fd_cb(struct event_fd *ev, int fd, int events, void *ctx);
typedef void event_timer_cb(struct event_timer *t, void *ctx);
typedef void event_signal_cb(int signo, void *ctx);

struct event_loop *event_loop_create(void);
void event_loop_free(struct event_loop **loop_r);
/* Runs until event_loop_stop(); returns 0, or -1 on an epoll error. */
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop);
/* Milliseconds of the monotonic clock, cached per loop iteration. */
uint64_t event_now_ms(struct event_loop *loop);
/* The same clock read now, uncached: for threads outside the loop. */
uint64_t event_clock_ms(void);

/* Watches fd for the given EVENT_* mask (0 = registered but idle). */
struct event_fd *event_fd_add(struct event_loop *loop, int fd, int mask,
    event_fd_cb *cb, void *ctx);
void event_fd_set(struct event_fd *ev, int mask);
/* Unregisters (does not close fd) and sets *ev_r to NULL; NULL-safe. */
void event_fd_del(struct event_fd **ev_r);

struct event_timer *event_timer_add(struct event_loop *loop, uint64_t ms,
    event_timer_cb *cb, void *ctx);
/* Re-arms to fire ms from now (also after it fired). */
void event_timer_reset(struct event_timer *t, uint64_t ms);
void event_timer_del(struct event_timer **t_r);

/* Blocks signo with sigprocmask and delivers it through the loop. */
int event_signal_add(struct event_loop *loop, int signo, event_signal_cb *cb,
    void *ctx);

#endif
