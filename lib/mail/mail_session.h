/* SPDX-License-Identifier: MIT */
/*
 * The start of a mail session process (pop3d, imapd): spawn execs it as
 * the mailbox owner after a login, with the client on fd 0 and the
 * login's facts in the environment (lib/mail/login_proto.h). What the
 * two share: the process set-up after the configuration is loaded, the
 * environment they cannot run without, and the log prefix
 * "NAME(user)<session id>" that Dovecot's session lines have too.
 */
#ifndef TERN_MAIL_SESSION_H
#define TERN_MAIL_SESSION_H

#include <stdarg.h>

#include "base/mem.h"

/* What spawn said about the login. */
struct mail_session_env {
	const char *user;
	const char *maildir; /* absolute */
	const char *id;      /* NULL when spawn gave none */
};

/*
 * After config_load(): logging to the configured destination at the
 * larger of verbose and $debug_level, fatal when run as root (root would
 * read anyone's mail), SIGPIPE ignored, TCP_NODELAY on the client.
 */
void mail_session_init(const char *prog, int verbose);

/*
 * Fills env from the environment, fatal when spawn did not set it (the
 * program was started by hand) or the maildir is not absolute, and sets
 * the log prefix to "log_name(user)<id>".
 */
void mail_session_env(
    const char *prog, const char *log_name, struct mail_session_env *env);

/* The prefix of every mail_session_log line; also for drivers (fuzz). */
void mail_session_set_log_name(
    const char *log_name, const char *user, const char *id);

/* A line "PREFIX: text" at LOG_DEBUG, LOG_INFO, LOG_WARNING or worse. */
void mail_session_log(int priority, const char *fmt, ...) MTA_PRINTF(2, 3);
void mail_session_vlog(int priority, const char *fmt, va_list ap)
    MTA_PRINTF(2, 0);

#endif
