/* SPDX-License-Identifier: MIT */
/*
 * tern: the control command of the mail system (Postfix's postfix
 * command). start checks the configuration and runs master, which
 * reports its own start-up errors back here before it detaches; stop,
 * reload and status find master through the lock it holds on
 * $queue_directory/pid/master.pid, so a stale pid file is never
 * mistaken for a running system.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "tern.h"

#define TERN_MASTER        "master"
#define TERN_PID_FILE      "master.pid"
/* master gives itself 30 s to start and its children 7 s to stop. */
#define TERN_START_WAIT_MS 35000
#define TERN_STOP_WAIT_MS  15000
/* After SIGKILL only the kernel has to act. */
#define TERN_KILL_WAIT_MS  5000
#define TERN_POLL_MS       50
#define TERN_PORT_BASE_MAX 64000 /* + 995 stays below 65536 */
#define TERN_PORT_BASE_EQ  "--port-base="

static void tern_vreport(const char *level, const char *fmt, va_list ap)
    MTA_PRINTF(2, 0);

static void
tern_vreport(const char *level, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", TERN_PROGNAME, level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
tern_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tern_vreport("error: ", fmt, ap);
	va_end(ap);
}

void
tern_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tern_vreport("warning: ", fmt, ap);
	va_end(ap);
}

static void tern_usage(void) MTA_NORETURN;

static void
tern_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] "
	    "start|stop|reload|status|check|flush [domain]|"
	    "fetch [account|now]|"
	    "init [--port-base N]\n",
	    TERN_PROGNAME);
	exit(2);
}

static void
tern_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * 1 and *pid_r when master holds its lock, 0 when nothing runs, -1 when
 * the pid file cannot be read.
 */
static int
tern_master_pid(pid_t *pid_r)
{
	char *dir = queue_path(QUEUE_PID, NULL);
	char *path = xasprintf("%s/%s", dir, TERN_PID_FILE);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd, ret = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			tern_error("open %s: %s", path, strerror(errno));
	} else if (fcntl(fd, F_GETLK, &fl) < 0) {
		tern_error("lock test %s: %s", path, strerror(errno));
	} else if (fl.l_type == F_UNLCK) {
		ret = 0;
	} else if (fl.l_pid <= 0) {
		/* Held from another pid namespace: kill(0) would hit us. */
		tern_error("%s is locked by a process that is not visible "
		           "here",
		    path);
	} else {
		ret = 1;
		*pid_r = fl.l_pid;
	}
	if (fd >= 0)
		close(fd);
	free(dir);
	free(path);
	return ret;
}

static int
tern_load(const char *config_dir)
{
	const char *err;

	if (config_load(config_dir, &err) < 0) {
		tern_error("%s", err);
		return -1;
	}
	return 0;
}

/*
 * Waits for child until deadline_ms (on tern_now_ms()'s clock): on a
 * pidfd where the kernel has them, so that the wait ends the moment the
 * child does (tern start and each configuration check used to lose up to
 * a poll interval to sleeping). tern_wait_child: for TERN_START_WAIT_MS;
 * also for master's start-up parent, which exits once master is ready.
 */
int
tern_wait_child_until(pid_t child, long deadline_ms, int *status_r)
{
	struct pollfd pfd;
	long left;
	pid_t r;
	int fd;

	fd = (int)syscall(SYS_pidfd_open, child, 0);
	for (;;) {
		if ((r = waitpid(child, status_r, WNOHANG)) == child)
			break;
		if (r < 0 && errno != EINTR)
			break;
		if ((left = deadline_ms - tern_now_ms()) <= 0) {
			r = -1;
			break;
		}
		if (fd >= 0) {
			pfd.fd = fd;
			pfd.events = POLLIN;
			(void)poll(&pfd, 1, (int)left);
		} else {
			tern_sleep_ms(left < TERN_POLL_MS ? left : TERN_POLL_MS);
		}
	}
	if (fd >= 0)
		close(fd);
	return r == child ? 0 : -1;
}

int
tern_wait_child(pid_t child, int *status_r)
{
	return tern_wait_child_until(
	    child, tern_now_ms() + TERN_START_WAIT_MS, status_r);
}

long
tern_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
tern_start(const char *config_dir)
{
	char *master;
	pid_t pid, child;
	int status, running;

	if (tern_check(config_dir) != 0)
		return 1;
	if ((running = tern_master_pid(&pid)) != 0) {
		if (running > 0)
			tern_error("the mail system is already running "
			           "(pid %ld)",
			    (long)pid);
		return 1;
	}
	master = xasprintf("%s/%s", var_daemon_directory, TERN_MASTER);
	fflush(NULL);
	if ((child = fork()) < 0) {
		tern_error("fork: %s", strerror(errno));
		return 1;
	}
	if (child == 0) {
		execl(master, master, "-c", config_dir, (char *)NULL);
		tern_error("cannot run %s: %s", master, strerror(errno));
		_exit(1);
	}
	if (tern_wait_child(child, &status) < 0) {
		tern_error("%s did not finish starting within %d s", master,
		    TERN_START_WAIT_MS / 1000);
		free(master);
		return 1;
	}
	free(master);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tern_error("the mail system did not start");
		return 1;
	}
	if (tern_master_pid(&pid) <= 0) {
		tern_error("master exited right after starting; see the log");
		return 1;
	}
	printf("%s: started (pid %ld)\n", TERN_PROGNAME, (long)pid);
	return 0;
}

/* The running master's pid, or an error saying why there is none. */
static int
tern_running(pid_t *pid_r)
{
	int running = tern_master_pid(pid_r);

	if (running == 0)
		printf("%s: not running\n", TERN_PROGNAME);
	return running > 0 ? 0 : -1;
}

/*
 * Sleeps ms, or less when the process of *pidfd (if >= 0) exits; then
 * the pidfd is closed (it stays readable) and later calls sleep.
 */
static void
tern_pause_ms(int *pidfd, long ms)
{
	struct pollfd pfd;

	if (*pidfd < 0) {
		tern_sleep_ms(ms);
		return;
	}
	pfd.fd = *pidfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)ms) != 0) {
		close(*pidfd);
		*pidfd = -1;
	}
}

static int
tern_stop(void)
{
	pid_t pid;
	long waited;
	int pidfd, ret = 1;

	if (tern_running(&pid) < 0)
		return 1;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (kill(pid, SIGTERM) < 0) {
		tern_error("kill %ld: %s", (long)pid, strerror(errno));
		goto out;
	}
	for (waited = 0; waited < TERN_STOP_WAIT_MS; waited += TERN_POLL_MS) {
		if (tern_master_pid(&pid) == 0) {
			printf("%s: stopped\n", TERN_PROGNAME);
			ret = 0;
			goto out;
		}
		tern_pause_ms(&pidfd, TERN_POLL_MS);
	}
	/*
	 * master is hung (stopped, stuck): kill it. Its daemons see the
	 * lifeline close and exit on their own.
	 */
	tern_warn("master pid %ld did not stop within %d s; killing it",
	    (long)pid, TERN_STOP_WAIT_MS / 1000);
	if (kill(pid, SIGKILL) < 0 && errno != ESRCH) {
		tern_error("kill %ld: %s", (long)pid, strerror(errno));
		goto out;
	}
	for (waited = 0; waited < TERN_KILL_WAIT_MS; waited += TERN_POLL_MS) {
		if (tern_master_pid(&pid) == 0) {
			printf("%s: stopped\n", TERN_PROGNAME);
			ret = 0;
			goto out;
		}
		tern_pause_ms(&pidfd, TERN_POLL_MS);
	}
	tern_error("master pid %ld is still running", (long)pid);
out:
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

static int
tern_reload(const char *config_dir)
{
	pid_t pid;

	/* master keeps the old configuration if the new one is broken. */
	if (tern_check(config_dir) != 0)
		return 1;
	if (tern_running(&pid) < 0)
		return 1;
	if (kill(pid, SIGHUP) < 0) {
		tern_error("kill %ld: %s", (long)pid, strerror(errno));
		return 1;
	}
	printf("%s: reloading (pid %ld)\n", TERN_PROGNAME, (long)pid);
	return 0;
}

static int
tern_status(void)
{
	pid_t pid;

	if (tern_running(&pid) < 0)
		return 1;
	printf("%s: running (pid %ld)\n", TERN_PROGNAME, (long)pid);
	return 0;
}

/* "init [--port-base N]" */
static int
tern_init_cmd(const char *config_dir, int argc, char **argv)
{
	const char *value = NULL;
	uint64_t base;
	int instance = strcmp(config_dir, TERN_CONFIG_DIR) != 0;

	if (argc == 3 && strcmp(argv[1], "--port-base") == 0)
		value = argv[2];
	else if (argc == 2 && strncmp(argv[1], TERN_PORT_BASE_EQ,
	                          strlen(TERN_PORT_BASE_EQ)) == 0)
		value = argv[1] + strlen(TERN_PORT_BASE_EQ);
	else if (argc != 1)
		tern_usage();
	if (value == NULL)
		return tern_init(config_dir, instance, -1);
	if (str_to_u64(value, TERN_PORT_BASE_MAX, &base) < 0) {
		tern_error("--port-base %s: want a number up to %d", value,
		    TERN_PORT_BASE_MAX);
		return 2;
	}
	return tern_init(config_dir, instance, (long)base);
}

/* Absolute: master and its children run from /. */
static char *
tern_config_dir(const char *dir)
{
	char cwd[PATH_MAX];
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (*dir == '/')
		return xstrndup(dir, len);
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		tern_error("getcwd: %s", strerror(errno));
		exit(1);
	}
	return xasprintf("%s/%.*s", cwd, (int)len, dir);
}

int
main(int argc, char **argv)
{
	const char *dir = config_dir_default(), *cmd;
	char *config_dir;
	int ch, ret;

	log_init(TERN_PROGNAME, LOG_DEST_STDERR);
	/* An inherited SIG_IGN would reap master's starter before we wait. */
	signal(SIGCHLD, SIG_DFL);
	while ((ch = getopt(argc, argv, "+c:")) != -1) {
		if (ch != 'c')
			tern_usage();
		dir = optarg;
	}
	if (optind >= argc)
		tern_usage();
	cmd = argv[optind];
	if (strcmp(cmd, "init") != 0 && optind + 1 != argc &&
	    !(strcmp(cmd, "flush") == 0 && optind + 2 == argc) &&
	    !(strcmp(cmd, "fetch") == 0 && optind + 2 == argc))
		tern_usage();
	config_dir = tern_config_dir(dir);
	if (strcmp(cmd, "init") == 0)
		ret = tern_init_cmd(config_dir, argc - optind, argv + optind);
	else if (strcmp(cmd, "check") == 0)
		ret = tern_check(config_dir);
	else if (strcmp(cmd, "start") == 0)
		ret = tern_start(config_dir);
	else if (strcmp(cmd, "reload") == 0)
		ret = tern_reload(config_dir);
	else if (strcmp(cmd, "stop") == 0)
		ret = tern_load(config_dir) < 0 ? 1 : tern_stop();
	else if (strcmp(cmd, "flush") == 0)
		ret = tern_load(config_dir) < 0
		          ? 1
		          : tern_flush(optind + 1 < argc ? argv[optind + 1] : NULL);
	else if (strcmp(cmd, "fetch") == 0)
		ret = tern_load(config_dir) < 0
		          ? 1
		          : tern_fetch(optind + 1 < argc ? argv[optind + 1] : NULL);
	else if (strcmp(cmd, "status") == 0)
		ret = tern_load(config_dir) < 0 ? 1 : tern_status();
	else
		tern_usage();
	free(config_dir);
	return ret;
}
