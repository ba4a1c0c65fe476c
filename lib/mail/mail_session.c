/* SPDX-License-Identifier: MIT */
/*
 * The shared start of pop3d and imapd (mail_session.h). No RFCs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "mail/login_proto.h"
#include "mail/mail_session.h"
#include "mail/params.h"

/* Bytes of the user name and of the session id in the prefix. */
#define MAIL_SESSION_NAME_MAX 256
#define MAIL_SESSION_ID_MAX   32
#define MAIL_SESSION_LINE_MAX 1024

static char mail_session_who[MAIL_SESSION_NAME_MAX + MAIL_SESSION_ID_MAX + 32] =
    "session";

void
mail_session_set_log_name(
    const char *log_name, const char *user, const char *id)
{
	snprintf(mail_session_who, sizeof(mail_session_who), "%s(%s)%s%s%s",
	    log_name, log_sanitize(user, MAIL_SESSION_NAME_MAX),
	    id != NULL ? "<" : "",
	    id != NULL ? log_sanitize(id, MAIL_SESSION_ID_MAX) : "",
	    id != NULL ? ">" : "");
}

void
mail_session_vlog(int priority, const char *fmt, va_list ap)
{
	char text[MAIL_SESSION_LINE_MAX];

	vsnprintf(text, sizeof(text), fmt, ap);
	switch (priority) {
	case LOG_DEBUG:
		msg_debug("%s: %s", mail_session_who, text);
		break;
	case LOG_INFO:
		msg_info("%s: %s", mail_session_who, text);
		break;
	case LOG_WARNING:
		msg_warn("%s: %s", mail_session_who, text);
		break;
	default:
		msg_error("%s: %s", mail_session_who, text);
		break;
	}
}

void
mail_session_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mail_session_vlog(priority, fmt, ap);
	va_end(ap);
}

void
mail_session_init(const char *prog, int verbose)
{
	log_init(prog,
	    *var_maillog_file == '\0' ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	if (verbose < var_debug_level)
		verbose = (int)var_debug_level;
	log_set_verbose(verbose);
	if (getuid() == 0 || geteuid() == 0)
		msg_fatal("refusing to run as root: spawn starts %s as the "
		          "mailbox owner",
		    prog);
	signal(SIGPIPE, SIG_IGN);
	/* Answers go out in pieces: no wait for the client's delayed ACK. */
	file_tcp_nodelay(0);
}

static const char *
need_env(const char *prog, const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		msg_fatal("%s is not set: %s is started by spawn after a "
		          "login",
		    name, prog);
	return v;
}

void
mail_session_env(
    const char *prog, const char *log_name, struct mail_session_env *env)
{
	env->user = need_env(prog, LOGIN_ENV_USER);
	env->maildir = need_env(prog, LOGIN_ENV_MAILDIR);
	env->id = getenv(LOGIN_ENV_ID);
	mail_session_set_log_name(log_name, env->user, env->id);
	if (env->maildir[0] != '/')
		msg_fatal("%s: %s: not an absolute path", mail_session_who,
		    LOGIN_ENV_MAILDIR);
}
