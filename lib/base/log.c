/* SPDX-License-Identifier: MIT */
/*
 * Logging for every tern program: syslog facility mail (RFC 5424 keeps the
 * traditional BSD facility numbers) or one line per write(2) on stderr in
 * the classic syslog layout, so a maillog file written by master looks the
 * same as /var/log/mail.log. Severity prefixes follow Postfix ("warning: ",
 * "fatal: ") because operators grep for them. Also turns network text into
 * something safe to put in a log line (log_sanitize).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* Longest log line; longer text is cut (one write(2) must stay atomic). */
#define LOG_LINE_MAX      4096
#define LOG_PROGNAME_MAX  64
#define LOG_HOSTNAME_MAX  256
#define LOG_IDENT_PREFIX  "tern/"
#define LOG_SANITIZE_BUFS 4
#define LOG_ELLIPSIS      "..."

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static char log_progname[LOG_PROGNAME_MAX] = "tern";
/* openlog() keeps the pointer, so the ident must live forever. */
static char log_ident[sizeof(LOG_IDENT_PREFIX) + LOG_PROGNAME_MAX] =
    "tern/tern";
static char log_hostname[LOG_HOSTNAME_MAX] = "localhost";
static enum log_dest log_destination = LOG_DEST_STDERR;
static int log_verbose_level;
/* getpid() is a system call on every line otherwise (glibc stopped
 * caching it); a forked child starts over. */
static pid_t log_pid;

static void
log_lock_take(void)
{
	pthread_mutex_lock(&log_lock);
}

static void
log_lock_give(void)
{
	pthread_mutex_unlock(&log_lock);
}

static void
log_child(void)
{
	log_pid = 0;
	pthread_mutex_unlock(&log_lock);
}

/* A child forked while another thread was logging must not inherit a
 * lock that nobody will ever release. */
static void
log_setup_fork(void)
{
	pthread_atfork(log_lock_take, log_lock_give, log_child);
}

void
log_init(const char *progname, enum log_dest dest)
{
	const char *slash = strrchr(progname, '/');
	char host[LOG_HOSTNAME_MAX];
	char *dot;

	if (slash != NULL)
		progname = slash + 1;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* syslog shows the short host name; do the same on stderr. */
	if ((dot = strchr(host, '.')) != NULL && dot != host)
		*dot = '\0';

	pthread_once(&log_once, log_setup_fork);
	pthread_mutex_lock(&log_lock);
	snprintf(log_progname, sizeof(log_progname), "%s", progname);
	snprintf(
	    log_ident, sizeof(log_ident), LOG_IDENT_PREFIX "%s", log_progname);
	snprintf(log_hostname, sizeof(log_hostname), "%s", host);
	if (log_destination == LOG_DEST_SYSLOG)
		closelog();
	log_destination = dest;
	if (dest == LOG_DEST_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_verbose(int level)
{
	log_verbose_level = level;
}

int
log_verbose(void)
{
	return log_verbose_level;
}

static const char *
log_level_prefix(int priority)
{
	switch (priority) {
	case LOG_WARNING:
		return "warning: ";
	case LOG_ERR:
		return "error: ";
	case LOG_CRIT:
		return "fatal: ";
	case LOG_ALERT:
	case LOG_EMERG:
		return "panic: ";
	default:
		return "";
	}
}

/* Appends to line at *pos, never past LOG_LINE_MAX - 1 (room for LF). */
static void log_append(char *line, size_t *pos, const char *fmt, va_list ap)
    MTA_PRINTF(3, 0);

static void
log_append(char *line, size_t *pos, const char *fmt, va_list ap)
{
	size_t room = LOG_LINE_MAX - 1 - *pos;
	int n = vsnprintf(line + *pos, room, fmt, ap);

	if (n < 0)
		return;
	*pos += (size_t)n < room ? (size_t)n : room - 1;
}

static void log_appendf(char *line, size_t *pos, const char *fmt, ...)
    MTA_PRINTF(3, 4);

static void
log_appendf(char *line, size_t *pos, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_append(line, pos, fmt, ap);
	va_end(ap);
}

static void
log_write_stderr(const char *line, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to complain */
		line += n;
		len -= (size_t)n;
	}
}

void
msg_vlog(int priority, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t pos = 0, text, i;
	struct tm tm;
	time_t now;
	int saved_errno = errno;

	if (priority == LOG_DEBUG && log_verbose_level <= 0)
		return;
	pthread_once(&log_once, log_setup_fork);
	pthread_mutex_lock(&log_lock);
	if (log_destination == LOG_DEST_STDERR) {
		now = time(NULL);
		localtime_r(&now, &tm);
		pos = strftime(line, sizeof(line), "%b %e %H:%M:%S", &tm);
		if (log_pid == 0)
			log_pid = getpid();
		log_appendf(line, &pos, " %s %s[%ld]: ", log_hostname,
		    log_ident, (long)log_pid);
	}
	text = pos;
	log_appendf(line, &pos, "%s", log_level_prefix(priority));
	errno = saved_errno; /* keep %m meaningful */
	log_append(line, &pos, fmt, ap);
	/* A line break inside the text would forge a second log record. */
	for (i = text; i < pos; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	if (log_destination == LOG_DEST_SYSLOG) {
		line[pos] = '\0';
		syslog(priority, "%s", line);
	} else {
		line[pos++] = '\n';
		log_write_stderr(line, pos);
	}
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}

#define LOG_DEFINE(name, priority)           \
	void name(const char *fmt, ...)      \
	{                                    \
		va_list ap;                  \
		va_start(ap, fmt);           \
		msg_vlog(priority, fmt, ap); \
		va_end(ap);                  \
	}

LOG_DEFINE(msg_debug, LOG_DEBUG)
LOG_DEFINE(msg_info, LOG_INFO)
LOG_DEFINE(msg_warn, LOG_WARNING)
LOG_DEFINE(msg_error, LOG_ERR)

void
msg_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void
msg_die(const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s: ", log_progname);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write, as every other log line; nothing more to do if it fails. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		exit(1);
	exit(1);
}

void
msg_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vlog(LOG_ALERT, fmt, ap);
	va_end(ap);
	abort();
}

const char *
log_sanitize_n(const char *s, size_t len, size_t max)
{
	static __thread char bufs[LOG_SANITIZE_BUFS]
	                         [LOG_SANITIZE_MAX + sizeof(LOG_ELLIPSIS)];
	static __thread unsigned int next;
	char *out = bufs[next++ % LOG_SANITIZE_BUFS];
	size_t i, n;

	if (s == NULL)
		len = 0;
	if (max > LOG_SANITIZE_MAX)
		max = LOG_SANITIZE_MAX;
	n = len < max ? len : max;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(out + n, LOG_ELLIPSIS, sizeof(LOG_ELLIPSIS));
	} else {
		out[n] = '\0';
	}
	return out;
}

const char *
log_sanitize(const char *s, size_t max)
{
	size_t cap = max > LOG_SANITIZE_MAX ? LOG_SANITIZE_MAX : max;

	/* Look one byte past the cap so a cut is noticed without strlen. */
	return log_sanitize_n(s, s == NULL ? 0 : strnlen(s, cap + 1), max);
}
