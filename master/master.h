/* SPDX-License-Identifier: MIT */
/*
 * master: the root supervisor. master.c owns the process (options, lock,
 * logging, signals), master_listen.c the listening sockets and
 * master_service.c the children (spawn, reap, backoff, reload).
 */
#ifndef TERN_MASTER_H
#define TERN_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "base/event.h"
#include "mail/services.h"

/* A child that ran at least this long had a healthy start. */
#define MASTER_HEALTHY_RUN_MS   10000
/* First delay before restarting a child that died young; it doubles. */
#define MASTER_BACKOFF_START_MS 1000
/* How long a child may take to exit after SIGTERM before SIGKILL. */
#define MASTER_KILL_DELAY_MS    5000

/* One listening socket; shared by every process of its service. */
struct master_listener {
	int fd;
	char *key;  /* "inet:127.0.0.1:25", "unix:/q/private/qmgr" */
	char *path; /* unix socket to unlink when closed, else NULL */
	uid_t uid;  /* its owner, who unlinks it; -1 when not root */
	gid_t gid;
	/* During a reload: the service it came from (to give it back). */
	const struct master_service *owner;
};

struct master_service;

/* One process position of a service: maxproc of them, prefork. */
struct master_slot {
	struct master_service *serv;
	pid_t pid; /* 0: not running */
	uint64_t start_ms;
	uint64_t backoff_ms; /* next delay after a young death */
	int terminating;     /* master sent SIGTERM: no warning, no backoff */
	struct event_timer *timer; /* delayed start, or SIGKILL deadline */
};

struct master_service {
	struct service_def def; /* owned copy */
	char *path;             /* the program, absolute */
	struct master_listener **listeners;
	int nlisteners;
	struct master_slot **slots;
	int nslots;
	int removed; /* gone from services.conf: dies out */
	struct master_service *next;
};

/* master.c */
extern const char *master_config_dir;
extern struct event_loop *master_loop;
extern int master_lifeline_rd; /* becomes fd 3 in every child */
extern int master_stopping;
/* Re-opens maillog_file onto fd 2 (start-up and reload). */
int master_log_open(const char **error_r);

/* master_listen.c */
/*
 * Opens the sockets of def. Sockets whose key is in *pool are taken from
 * it (removed, kept open) instead of bound again. Returns 0 with a
 * malloc'd array, or -1 with *error_r (static) and nothing opened.
 */
int master_listen_open(const struct service_def *def,
    struct master_listener **pool, int npool, struct master_listener ***list_r,
    int *count_r, const char **error_r);
/* Closes (and unlinks a unix socket) and frees; NULL-safe. */
void master_listener_free(struct master_listener **l_r);

/* master_service.c */
/* Opens every listener; -1 with *error_r on the first failure. */
int master_services_init(
    struct service_def *defs, int count, const char **error_r);
void master_services_spawn(void);
/* SIGCHLD: reaps, logs and schedules restarts. */
void master_services_reap(void);
/* SIGHUP: re-reads tern.conf and services.conf. */
void master_services_reload(void);
/* SIGTERM to every child and no more restarts. */
void master_services_stop(void);
/* SIGKILL to every child that is left. */
void master_services_kill(void);
int master_services_nchildren(void);
/* Closes every listener (final exit). */
void master_services_free(void);

#endif
