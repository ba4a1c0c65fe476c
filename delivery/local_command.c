/* SPDX-License-Identifier: MIT */
/*
 * |command targets (Postfix's local/command.c and pipe_command.c): the
 * command runs as the target's identity (never root) under /bin/sh -c in
 * its own session, in the home directory (or /), with a fixed
 * environment (SENDER RECIPIENT LOCAL EXTENSION DOMAIN USER LOGNAME HOME
 * SHELL ORIGINAL_RECIPIENT PATH), the message with Return-Path and
 * Delivered-To and LF line endings on standard input, and at most
 * LOCAL_OUTPUT_MAX bytes of its output kept for the reason text. After
 * $command_time_limit the whole session is killed. The exit status reads
 * as sysexits.h says: 0 delivered, EX_TEMPFAIL or a signal defers
 * (4.3.0), anything else bounces (5.3.0, or EX_NOUSER 5.1.1, EX_NOPERM
 * 5.7.1). No RFCs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "local.h"

/* Output of the command kept for the reason text (Postfix keeps 1 KB). */
#define LOCAL_OUTPUT_MAX   1024
#define LOCAL_SHELL        "/bin/sh"
#define LOCAL_PATH         "PATH=/usr/bin:/bin"
#define LOCAL_ENV_MAX      16
#define LOCAL_MS_PER_S     1000
#define LOCAL_NS_PER_MS    1000000
/* After the kill, how long to wait for the child to be reaped. */
#define LOCAL_REAP_MS      5000
#define LOCAL_WAIT_STEP_MS 10

static long long
local_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * LOCAL_MS_PER_S +
	       ts.tv_nsec / LOCAL_NS_PER_MS;
}

/* In the child: become id for good, set up fds and exec. Never returns. */
static void MTA_NORETURN
local_child(const struct local_ident *id, const char *command, int in_fd,
    int out_fd, char **env)
{
	sigset_t none;

	(void)setsid();
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(EX_TEMPFAIL);
	(void)close_range(STDERR_FILENO + 1, ~0U, 0);
	if (local_root && (setgroups(1, &id->gid) < 0 || setgid(id->gid) < 0 ||
	                      setuid(id->uid) < 0))
		_exit(EX_TEMPFAIL);
	/* Never root, whatever went wrong above. */
	if (getuid() == 0 || geteuid() == 0 || id->uid == 0)
		_exit(EX_TEMPFAIL);
	if (id->home[0] != '/' || chdir(id->home) < 0)
		(void)chdir("/");
	execle(LOCAL_SHELL, "sh", "-c", command, (char *)NULL, env);
	_exit(EX_TEMPFAIL);
}

static void
local_env_add(char **env, int *n, const char *name, const char *value)
{
	char *p;

	if (*n >= LOCAL_ENV_MAX - 1)
		msg_panic("local_env_add: too many variables");
	env[*n] = xasprintf("%s=%s", name, value != NULL ? value : "");
	/* A line end in a value would confuse naive scripts: blank it. */
	for (p = env[*n] + strlen(name) + 1; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	(*n)++;
	env[*n] = NULL;
}

/* The output as one line of printable text. */
static void
local_output_clean(char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] == 0x7f)
			s[i] = ' ';
	s[len] = '\0';
	while (len > 0 && s[len - 1] == ' ')
		s[--len] = '\0';
}

struct local_feed {
	struct local_reader rd;
	const char *prefix;
	size_t prefix_off;
	char *buf;
	size_t off, len;
};

/* Refills the pending input; 0 at the end, -1 on a read error. */
static int
local_feed_fill(struct local_feed *f)
{
	ssize_t n;

	if (f->off < f->len)
		return 1;
	f->off = f->len = 0;
	if (f->prefix[f->prefix_off] != '\0') {
		f->len = strlen(f->prefix + f->prefix_off);
		memcpy(f->buf, f->prefix + f->prefix_off, f->len);
		f->prefix_off += f->len;
		return 1;
	}
	n = local_reader_next(&f->rd, f->buf, 2 * LOCAL_READ_CHUNK + 2);
	if (n < 0)
		return -1;
	f->len = (size_t)n;
	return n > 0;
}

void
local_command(struct local_rcpt *lr, const struct local_ident *id,
    const char *command, struct local_result *res)
{
	char *env[LOCAL_ENV_MAX], output[LOCAL_OUTPUT_MAX + 1], junk[4096];
	const struct qfile *q = lr->msg->q;
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	int nenv = 0, i, status = 0, timed_out = 0, read_err = 0, reaped = 0;
	size_t outlen = 0;
	long long deadline, left;
	struct local_feed feed;
	struct pollfd pfd[2];
	int npfd, r;
	ssize_t n;
	pid_t pid;

	env[0] = NULL;
	local_env_add(env, &nenv, "SENDER", q->sender);
	local_env_add(env, &nenv, "RECIPIENT", lr->addr);
	local_env_add(env, &nenv, "LOCAL", lr->local);
	local_env_add(env, &nenv, "EXTENSION", lr->ext);
	local_env_add(env, &nenv, "DOMAIN", lr->domain);
	local_env_add(env, &nenv, "USER", id->user);
	local_env_add(env, &nenv, "LOGNAME", id->user);
	local_env_add(env, &nenv, "HOME", id->home);
	local_env_add(env, &nenv, "SHELL", id->shell);
	local_env_add(env, &nenv, "ORIGINAL_RECIPIENT",
	    lr->orig_to != NULL ? lr->orig_to : lr->addr);
	env[nenv++] = xstrdup(LOCAL_PATH);
	env[nenv] = NULL;
	memset(&feed, 0, sizeof(feed));
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		local_set(res, "defer", "4.3.0", "pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		local_set(res, "defer", "4.3.0", "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		local_child(id, command, in[0], out[1], env);
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	(void)file_set_nonblock(in[1], 1);
	(void)file_set_nonblock(out[0], 1);
	feed.prefix = lr->prefix;
	feed.buf = xmalloc(2 * LOCAL_READ_CHUNK + 2);
	local_reader_init(&feed.rd, q, 0);
	deadline = local_now_ms() + var_command_time_limit * LOCAL_MS_PER_S;
	while (in[1] >= 0 || out[0] >= 0) {
		left = deadline - local_now_ms();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		npfd = 0;
		if (in[1] >= 0)
			pfd[npfd++] = (struct pollfd){in[1], POLLOUT, 0};
		if (out[0] >= 0)
			pfd[npfd++] = (struct pollfd){out[0], POLLIN, 0};
		r = poll(pfd, (nfds_t)npfd,
		    (int)(left < INT32_MAX ? left : INT32_MAX));
		if (r < 0 && errno != EINTR)
			break;
		for (i = 0; i < npfd && r > 0; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == in[1]) {
				r = local_feed_fill(&feed);
				read_err |= r < 0;
				n = r > 0 ? write(in[1], feed.buf + feed.off,
				                feed.len - feed.off)
				          : -1;
				if (n > 0)
					feed.off += (size_t)n;
				/* Done, or the command stopped reading. */
				if (r <= 0 || (n < 0 && errno != EAGAIN &&
				                  errno != EINTR)) {
					close(in[1]);
					in[1] = -1;
				}
			} else {
				n = read(out[0], junk, sizeof(junk));
				if (n > 0 && outlen < LOCAL_OUTPUT_MAX) {
					size_t k =
					    (size_t)n <
					            LOCAL_OUTPUT_MAX - outlen
					        ? (size_t)n
					        : LOCAL_OUTPUT_MAX - outlen;
					memcpy(output + outlen, junk, k);
					outlen += k;
				}
				if (n == 0 || (n < 0 && errno != EAGAIN &&
				                  errno != EINTR)) {
					close(out[0]);
					out[0] = -1;
				}
			}
			r = 1;
		}
	}
	/* Output closed; the command may still run: wait, bounded. */
	while (!timed_out && !reaped) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			reaped = 1;
		else if (local_now_ms() >= deadline)
			timed_out = 1;
		else
			(void)poll(NULL, 0, LOCAL_WAIT_STEP_MS);
	}
	if (timed_out || read_err) {
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		deadline = local_now_ms() + LOCAL_REAP_MS;
		while (!reaped && local_now_ms() < deadline) {
			r = waitpid(pid, &status, WNOHANG);
			if (r == pid || (r < 0 && errno != EINTR))
				reaped = 1;
			else
				(void)poll(NULL, 0, LOCAL_WAIT_STEP_MS);
		}
	}
	local_output_clean(output, outlen);
	if (read_err)
		local_set(res, "defer", "4.3.0", "%s", feed.rd.error);
	else if (timed_out)
		local_set(res, "defer", "4.3.0",
		    "command timed out after %lld seconds: %s",
		    var_command_time_limit, output);
	else if (!reaped)
		local_set(
		    res, "defer", "4.3.0", "waitpid: %s", strerror(errno));
	else if (WIFSIGNALED(status))
		local_set(res, "defer", "4.3.0",
		    "command died with signal %d: %s", WTERMSIG(status),
		    output);
	else if (WEXITSTATUS(status) == 0)
		local_set(
		    res, "sent", "2.0.0", "delivered to command: %s", command);
	else if (WEXITSTATUS(status) == EX_TEMPFAIL)
		local_set(res, "defer", "4.3.0",
		    "command exited with status %d: %s", EX_TEMPFAIL, output);
	else
		local_set(res, "bounce",
		    WEXITSTATUS(status) == EX_NOUSER   ? "5.1.1"
		    : WEXITSTATUS(status) == EX_NOPERM ? "5.7.1"
		                                       : "5.3.0",
		    "command exited with status %d: %s", WEXITSTATUS(status),
		    output);
	/* A kill that did not reap leaves a zombie for the next waitpid. */
	if (!reaped)
		msg_warn("%s: command of %s did not exit after SIGKILL",
		    lr->msg->id, lr->addr);
out:
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	free(feed.buf);
	for (i = 0; i < nenv; i++)
		free(env[i]);
}
