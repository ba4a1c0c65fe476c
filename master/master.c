/* SPDX-License-Identifier: MIT */
/*
 * master, the root supervisor of tern (Postfix's master): takes the
 * instance lock $queue_directory/pid/master.pid, opens the log file that
 * every child inherits on fd 2, binds every listening socket, then runs
 * the services of services.conf and keeps them running. SIGHUP reloads,
 * SIGTERM stops the children and exits. Everything that can fail at
 * start-up (configuration, lock, bind) fails before the process detaches,
 * and the reason reaches whoever started it ("tern start") through a pipe,
 * so a broken start is reported on the terminal, not only in the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/services.h"
#include "master.h"

#define MASTER_PROGNAME         "master"
#define MASTER_PID_FILE         "master.pid"
#define MASTER_SERVICES_FILE    "services.conf"
#define MASTER_PID_MODE         0644
#define MASTER_LOG_MODE         0640
#define MASTER_UMASK            022
/* Start-up of the detached master (config, lock, bind) must end by then. */
#define MASTER_READY_TIMEOUT_MS 30000
/* After SIGTERM: children get MASTER_KILL_DELAY_MS, then SIGKILL. */
#define MASTER_STOP_GRACE_MS    (MASTER_KILL_DELAY_MS + 2000)
#define MASTER_REAP_TRIES       100
#define MASTER_REAP_PAUSE_US    10000
#define MASTER_STATUS_MAX       1024
#define MASTER_READY_BYTE       '+'
#define MASTER_PID_TEXT_SIZE    32

const char *master_config_dir;
struct event_loop *master_loop;
int master_lifeline_rd = -1;
int master_stopping;

/* Where start-up errors go besides the log: tern start, or a terminal. */
static int master_status_fd = -1;
static int master_log_redirected;
static int master_lifeline_wr = -1;
static int master_pid_fd = -1;
static int master_verbose; /* -v count; debug_level may raise it */

static void master_usage(void) MTA_NORETURN;

static void
master_usage(void)
{
	msg_fatal("usage: %s [-c config_dir] [-f] [-v]", MASTER_PROGNAME);
}

/*
 * Once fd 2 is the log file, a start-up failure is also written to the
 * status pipe so that the person starting the mail system sees it.
 */
static void master_startup_fatal(const char *fmt, ...) MTA_PRINTF(1, 2)
    MTA_NORETURN;

static void
master_startup_fatal(const char *fmt, ...)
{
	char text[MASTER_STATUS_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (master_status_fd >= 0 && master_log_redirected)
		dprintf(
		    master_status_fd, "%s: fatal: %s\n", MASTER_PROGNAME, text);
	msg_fatal("%s", text);
}

int
master_log_open(const char **error_r)
{
	static char error[MASTER_STATUS_MAX];
	int fd, level = (int)var_debug_level;

	log_set_verbose(master_verbose > level ? master_verbose : level);
	if (*var_maillog_file == '\0') {
		log_init(MASTER_PROGNAME, LOG_DEST_SYSLOG);
		return 0;
	}
	fd = open(var_maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    MASTER_LOG_MODE);
	if (fd < 0) {
		snprintf(error, sizeof(error), "open %s: %s", var_maillog_file,
		    strerror(errno));
		*error_r = error;
		return -1;
	}
	/* dup2 clears close-on-exec: every child inherits the log as fd 2. */
	if (fd != STDERR_FILENO) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	} else {
		file_set_cloexec(fd, 0);
	}
	log_init(MASTER_PROGNAME, LOG_DEST_STDERR);
	master_log_redirected = 1;
	return 0;
}

/* The parent of a detaching master: report the child's start-up. */
static void master_wait_ready(int fd, pid_t child) MTA_NORETURN;

static void
master_wait_ready(int fd, pid_t child)
{
	char text[MASTER_STATUS_MAX];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t len = 0;
	ssize_t n;
	int rc;

	/* One timeout for the whole start-up: the child writes only once. */
	while (len < sizeof(text)) {
		if ((rc = poll(&p, 1, MASTER_READY_TIMEOUT_MS)) < 0 &&
		    errno == EINTR)
			continue;
		if (rc <= 0) {
			dprintf(STDERR_FILENO,
			    "%s: fatal: pid %ld: no start-up "
			    "report within %d s\n",
			    MASTER_PROGNAME, (long)child,
			    MASTER_READY_TIMEOUT_MS / 1000);
			exit(1);
		}
		if ((n = read(fd, text + len, sizeof(text) - len)) < 0 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len > 0 && text[0] == MASTER_READY_BYTE)
		exit(0);
	/* The child wrote its reason, or printed it before the log opened. */
	if (len > 0)
		file_write_all(STDERR_FILENO, text, len);
	exit(1);
}

static void
master_detach(void)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		msg_fatal("pipe: %m");
	if ((pid = fork()) < 0)
		msg_fatal("fork: %m");
	if (pid > 0) {
		close(fds[1]);
		master_wait_ready(fds[0], pid);
	}
	close(fds[0]);
	master_status_fd = fds[1];
	if (setsid() < 0)
		msg_fatal("setsid: %m");
}

/* Start-up is over: release the starter, leave the terminal. */
static void
master_ready(int foreground)
{
	char ready = MASTER_READY_BYTE;
	int fd;

	if (!foreground)
		file_write_all(master_status_fd, &ready, 1);
	close(master_status_fd);
	master_status_fd = -1;
	if (foreground)
		return;
	if ((fd = open("/dev/null", O_RDWR)) < 0)
		msg_fatal("open /dev/null: %m");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (!master_log_redirected)
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/*
 * Held for the life of the process; fcntl locks die with it. The path is
 * on the stack: a start-up failure exits at once, with nothing to leak.
 */
static void
master_lock(void)
{
	char *dir = queue_path(QUEUE_PID, NULL);
	char path[PATH_MAX], text[MASTER_PID_TEXT_SIZE];
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, MASTER_PID_FILE);
	free(dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		master_startup_fatal("%s: path too long", MASTER_PID_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, MASTER_PID_MODE);
	if (fd < 0)
		master_startup_fatal(
		    "open %s: %s (run \"tern check\")", path, strerror(errno));
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		if (errno != EACCES && errno != EAGAIN)
			master_startup_fatal(
			    "lock %s: %s", path, strerror(errno));
		fl.l_type = F_WRLCK;
		if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
			fl.l_pid = 0;
		master_startup_fatal("the mail system is already running "
		                     "(pid %ld)",
		    (long)fl.l_pid);
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || file_write_all(fd, text, (size_t)n) < 0)
		master_startup_fatal("write %s: %s", path, strerror(errno));
	master_pid_fd = fd;
}

static void
master_sigchld(int signo, void *ctx)
{
	(void)signo;
	(void)ctx;
	master_services_reap();
}

static void
master_sighup(int signo, void *ctx)
{
	(void)signo;
	(void)ctx;
	if (!master_stopping)
		master_services_reload();
}

static void
master_stop_timeout(struct event_timer *t, void *ctx)
{
	(void)ctx;
	event_timer_del(&t);
	event_loop_stop(master_loop);
}

static void
master_sigterm(int signo, void *ctx)
{
	(void)ctx;
	if (master_stopping)
		return;
	msg_info("terminating on signal %d", signo);
	master_stopping = 1;
	master_services_stop();
	if (master_services_nchildren() == 0)
		event_loop_stop(master_loop);
	else
		event_timer_add(master_loop, MASTER_STOP_GRACE_MS,
		    master_stop_timeout, NULL);
}

/* Children that outlived the grace period: kill and collect, bounded. */
static void
master_collect(void)
{
	int i;

	master_services_kill();
	for (i = 0; i < MASTER_REAP_TRIES && master_services_nchildren() > 0;
	     i++) {
		master_services_reap();
		if (master_services_nchildren() > 0)
			usleep(MASTER_REAP_PAUSE_US);
	}
}

static void
master_setup_loop(void)
{
	int fds[2];

	/* The read end is fd 3 of every child; EOF tells them we are gone. */
	if (pipe2(fds, O_CLOEXEC) < 0)
		master_startup_fatal("pipe: %s", strerror(errno));
	master_lifeline_rd = fds[0];
	master_lifeline_wr = fds[1];
	signal(SIGPIPE, SIG_IGN);
	if ((master_loop = event_loop_create()) == NULL)
		master_startup_fatal(
		    "cannot create the event loop: %s", strerror(errno));
	/* Before the first fork, so that no child exit goes unnoticed. */
	if (event_signal_add(master_loop, SIGCHLD, master_sigchld, NULL) < 0 ||
	    event_signal_add(master_loop, SIGHUP, master_sighup, NULL) < 0 ||
	    event_signal_add(master_loop, SIGTERM, master_sigterm, NULL) < 0 ||
	    event_signal_add(master_loop, SIGINT, master_sigterm, NULL) < 0)
		master_startup_fatal("signalfd: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	const char *config_dir = TERN_CONFIG_DIR, *err;
	char *services_path, resolved[PATH_MAX];
	struct service_def *defs;
	int ch, foreground = 0, count, ret;

	/* Whatever the starter left open is not ours to pass on. */
	close_range(STDERR_FILENO + 1, ~0U, 0);
	/*
	 * An inherited SIG_IGN for SIGCHLD makes the kernel reap our children
	 * itself: no SIGCHLD, waitpid finds nothing, nothing is restarted.
	 */
	signal(SIGCHLD, SIG_DFL);
	log_init(MASTER_PROGNAME, LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			master_verbose++;
			break;
		default:
			master_usage();
		}
	}
	if (optind != argc)
		master_usage();
	umask(MASTER_UMASK);
	/* Children get this path, and the detached master lives in /. */
	if (realpath(config_dir, resolved) == NULL)
		msg_fatal("configuration directory %s: %m", config_dir);
	master_config_dir = resolved;

	if (foreground) {
		if ((master_status_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC,
		         STDERR_FILENO + 1)) < 0)
			msg_fatal("dup: %m");
	} else {
		master_detach();
	}
	if (chdir("/") < 0)
		msg_fatal("chdir /: %m");
	if (config_load(master_config_dir, &err) < 0)
		master_startup_fatal("%s", err);
	if (master_log_open(&err) < 0)
		master_startup_fatal("%s", err);
	master_lock();
	services_path =
	    xasprintf("%s/%s", master_config_dir, MASTER_SERVICES_FILE);
	ret = services_load(
	    services_path, (int)var_default_process_limit, &defs, &count, &err);
	free(services_path);
	if (ret < 0)
		master_startup_fatal("%s", err);
	master_setup_loop();
	ret = master_services_init(defs, count, &err);
	services_free(&defs, count);
	if (ret < 0)
		master_startup_fatal("%s", err);

	msg_info("daemon started -- version %s, configuration %s",
	    PACKAGE_VERSION, master_config_dir);
	master_ready(foreground);
	master_services_spawn();
	if (event_loop_run(master_loop) < 0)
		msg_fatal("event loop: %m");

	master_collect();
	master_services_free();
	if (ftruncate(master_pid_fd, 0) < 0)
		msg_warn("truncate pid file: %m");
	close(master_lifeline_wr);
	close(master_lifeline_rd);
	event_loop_free(&master_loop);
	exit(0);
}
