/* SPDX-License-Identifier: MIT */
/*
 * Logging to syslog (facility mail) or to stderr / a file, every line
 * prefixed with the program name and pid. Log lines about a message start
 * with its queue ID ("4F2A1C03B7: to=<...>, status=sent"); the caller puts
 * it in the format. Thread-safe: one write(2) per line.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include "base/mem.h"

enum log_dest {
	LOG_DEST_STDERR,	/* "Nov 22 05:02:49 host tern/smtpd[123]: text\n" on fd 2 */
	LOG_DEST_SYSLOG,	/* openlog(progname, LOG_PID|LOG_NDELAY, LOG_MAIL) */
};

/*
 * progname is copied, shown as "tern/<progname>". May be called again
 * (e.g. after config load switches the destination).
 */
void log_init(const char *progname, enum log_dest dest);
/* 0 = info and up; 1 or more enables msg_debug. */
void log_set_verbose(int level);
int log_verbose(void);

void msg_debug(const char *fmt, ...) MTA_PRINTF(1, 2);
void msg_info(const char *fmt, ...) MTA_PRINTF(1, 2);
void msg_warn(const char *fmt, ...) MTA_PRINTF(1, 2);
void msg_error(const char *fmt, ...) MTA_PRINTF(1, 2);
/* Broken environment or config: log "fatal: ..." and exit(1). */
void msg_fatal(const char *fmt, ...) MTA_PRINTF(1, 2) MTA_NORETURN;
/*
 * For command-line tools talking to a person: "PROG: text" on stderr (the
 * name given to log_init, no timestamp, not syslog), then exit(1).
 */
void msg_die(const char *fmt, ...) MTA_PRINTF(1, 2) MTA_NORETURN;
/* A bug: log "panic: ..." and abort(). */
void msg_panic(const char *fmt, ...) MTA_PRINTF(1, 2) MTA_NORETURN;
void msg_vlog(int priority, const char *fmt, va_list ap) MTA_PRINTF(2, 0);

/*
 * Network text made safe to log: at most max bytes of s, control and
 * non-ASCII bytes replaced by '?', "..." appended when cut. Returns one of
 * a few thread-local rotating buffers, valid until four more calls in the
 * same thread. LOG_SANITIZE_MAX caps max.
 */
#define LOG_SANITIZE_MAX 1024
const char *log_sanitize(const char *s, size_t max);
/* Same for a length-counted, possibly non-NUL-terminated input. */
const char *log_sanitize_n(const char *s, size_t len, size_t max);

#endif
