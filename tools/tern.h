/* SPDX-License-Identifier: MIT */
/*
 * The tern control command: tern.c runs start/stop/reload/status,
 * tern_check.c checks the configuration and repairs the queue,
 * tern_init.c creates a new configuration directory.
 */
#ifndef TERN_TOOLS_TERN_H
#define TERN_TOOLS_TERN_H

#include "base/mem.h"

#define TERN_PROGNAME "tern"

/* "tern: error: ..." on stderr. */
void tern_error(const char *fmt, ...) MTA_PRINTF(1, 2);
void tern_warn(const char *fmt, ...) MTA_PRINTF(1, 2);

/*
 * Loads tern.conf and services.conf from config_dir, reports problems and
 * creates or repairs the queue directories. Returns 0 when the mail
 * system can start, 1 otherwise.
 */
int tern_check(const char *config_dir);
/* tern flush [domain]: deferred mail is due now. Exit code. */
int tern_flush(const char *domain);
/* tern fetch [account | now]: the fetch daemon's summary (tern_fetch.c). */
int tern_fetch(const char *arg);
/* Waits (bounded) for a child to exit; 0 with its status, -1 if it did
 * not exit in time. */
int tern_wait_child(pid_t child, int *status_r);
/* The same until deadline_ms of tern_now_ms() (a monotonic clock). */
int tern_wait_child_until(pid_t child, long deadline_ms, int *status_r);
long tern_now_ms(void);

/*
 * Creates config_dir with templates from the data directory. instance:
 * a private instance (queue, mail store and log below config_dir), else
 * the system instance in the standard places. port_base < 0: keep the
 * standard ports. Returns the exit status.
 */
int tern_init(const char *config_dir, int instance, long port_base);

#endif
