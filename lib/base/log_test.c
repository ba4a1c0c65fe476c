/* SPDX-License-Identifier: MIT */
/* Tests for logging: the stderr line format, levels, fatal/panic exits,
 * whole lines from many threads, and log_sanitize. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "unit.h"

#define CAPTURE_MAX    (256 * 1024)
#define LOG_THREADS    4
#define LOG_PER_THREAD 200
#define SANITIZE_BUFS  4

/* Runs fn with fd 2 redirected to a temporary file; returns what it got. */
static char *
capture_stderr(void (*fn)(void))
{
	FILE *f = tmpfile();
	int saved = dup(2);
	char *out = calloc(1, CAPTURE_MAX);
	size_t n;

	if (f == NULL || saved < 0 || out == NULL)
		abort();
	dup2(fileno(f), 2);
	fn();
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(out, 1, CAPTURE_MAX - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

/* Cuts the next line out of *p (like a bounded line iterator). */
static char *
next_line(char **p)
{
	char *line = *p, *lf;

	if (*line == '\0')
		return NULL;
	lf = strchr(line, '\n');
	if (lf != NULL) {
		*lf = '\0';
		*p = lf + 1;
	} else {
		*p = line + strlen(line);
	}
	return line;
}

/*
 * Checks "Mmm dd hh:mm:ss HOST tern/log_test[PID]: TEXT" and returns TEXT
 * (pointing into line), or NULL.
 */
static const char *
check_prefix(const char *line)
{
	char want[64];
	const char *p;

	if (strlen(line) < 16 || line[3] != ' ' || line[6] != ' ' ||
	    line[9] != ':' || line[12] != ':' || line[15] != ' ')
		return NULL;
	p = strchr(line + 16, ' ');
	if (p == NULL || p == line + 16)
		return NULL;
	snprintf(want, sizeof(want), " tern/log_test[%ld]: ", (long)getpid());
	if (strncmp(p, want, strlen(want)) != 0)
		return NULL;
	return p + strlen(want);
}

static void
log_levels(void)
{
	log_set_verbose(0);
	msg_debug("hidden");
	msg_info("info %d", 1);
	msg_warn("careful");
	msg_error("broken");
	log_set_verbose(1);
	msg_debug("shown");
	log_set_verbose(0);
	msg_info("two\nlines");
}

static void
test_log_format(void)
{
	static const char *const want[] = {"info 1", "warning: careful",
	    "error: broken", "shown", "two lines"};
	char *out, *line, *rest;
	const char *text;
	size_t i = 0;

	log_init("/usr/libexec/tern/log_test", LOG_DEST_STDERR);
	out = capture_stderr(log_levels);
	rest = out;
	for (; (line = next_line(&rest)) != NULL; i++) {
		text = check_prefix(line);
		CHECK(text != NULL);
		if (text == NULL || i >= sizeof(want) / sizeof(want[0])) {
			printf("#   unexpected line \"%s\"\n", line);
			continue;
		}
		CHECK_STR(text, want[i]);
	}
	CHECK_INT(i, sizeof(want) / sizeof(want[0]));
	CHECK_INT(log_verbose(), 0);
	free(out);
}

static void *
log_thread(void *arg)
{
	int i;

	for (i = 0; i < LOG_PER_THREAD; i++)
		msg_info("thread %ld line %d %s", (long)(size_t)arg, i,
		    "padding padding padding padding padding padding");
	return NULL;
}

static void
log_threads(void)
{
	pthread_t t[LOG_THREADS];
	size_t i;

	for (i = 0; i < LOG_THREADS; i++)
		pthread_create(&t[i], NULL, log_thread, (void *)i);
	for (i = 0; i < LOG_THREADS; i++)
		pthread_join(t[i], NULL);
}

static void
test_log_threads(void)
{
	char *out, *line, *rest;
	const char *text;
	int count = 0, good = 0;

	log_init("log_test", LOG_DEST_STDERR);
	out = capture_stderr(log_threads);
	rest = out;
	while ((line = next_line(&rest)) != NULL) {
		count++;
		text = check_prefix(line);
		good += text != NULL && strncmp(text, "thread ", 7) == 0 &&
		        strstr(text, "padding padding padding padding padding "
		                     "padding") != NULL;
	}
	CHECK_INT(count, LOG_THREADS * LOG_PER_THREAD);
	CHECK_INT(good, LOG_THREADS * LOG_PER_THREAD);
	free(out);
}

static void
die_fatal(void)
{
	msg_fatal("config %s is broken", "x");
}

static void
die_panic(void)
{
	msg_panic("bug %d", 7);
}

/* Runs fn in a child with stderr to a pipe; returns status and output. */
static int
run_child(void (*fn)(void), char *out, size_t n)
{
	int p[2], status = -1;
	ssize_t got, len = 0;
	pid_t pid;

	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		/* No core dump from the intended abort(). */
		signal(SIGABRT, SIG_DFL);
		dup2(p[1], 2);
		fn();
		_exit(0);
	}
	close(p[1]);
	while ((got = read(p[0], out + len, n - 1 - (size_t)len)) > 0)
		len += got;
	out[len] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void
test_log_fatal_panic(void)
{
	char out[1024];
	int status;

	log_init("log_test", LOG_DEST_STDERR);
	status = run_child(die_fatal, out, sizeof(out));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	/* The child's pid is in the line, so look at the text only. */
	CHECK(strstr(out, " tern/log_test[") != NULL);
	CHECK(strstr(out, "]: fatal: config x is broken\n") != NULL);

	status = run_child(die_panic, out, sizeof(out));
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(out, "]: panic: bug 7\n") != NULL);
}

static void
test_log_syslog(void)
{
	/* Only that switching works and nothing crashes. */
	log_init("log_test", LOG_DEST_SYSLOG);
	msg_info("log_test syslog line");
	log_init("log_test", LOG_DEST_STDERR);
}

static void
test_log_sanitize(void)
{
	static const struct {
		const char *in;
		size_t max;
		const char *out;
	} t[] = {
	    {"hello", 100, "hello"},
	    {"hello", 5, "hello"},
	    {"hello", 4, "hell..."},
	    {"", 10, ""},
	    {"a\r\nb\tc\x7f\xc3\xa9", 100, "a??b?c???"},
	    {"abc", 0, "..."},
	};
	const char *r[SANITIZE_BUFS];
	char big[LOG_SANITIZE_MAX * 2];
	const char *s;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_STR(log_sanitize(t[i].in, t[i].max), t[i].out);
	CHECK_STR(log_sanitize(NULL, 10), "");
	CHECK_STR(log_sanitize_n("a\0b", 3, 10), "a?b");
	CHECK_STR(log_sanitize_n("abcdef", 3, 10), "abc");
	CHECK_STR(log_sanitize_n("abcdef", 6, 2), "ab...");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = log_sanitize(big, sizeof(big));
	CHECK_INT(strlen(s), LOG_SANITIZE_MAX + 3);
	CHECK(strcmp(s + LOG_SANITIZE_MAX, "...") == 0);

	/* Four results stay valid at once (one log line, four fields). */
	r[0] = log_sanitize("one", 10);
	r[1] = log_sanitize("two", 10);
	r[2] = log_sanitize("three", 10);
	r[3] = log_sanitize("four", 10);
	CHECK_STR(r[0], "one");
	CHECK_STR(r[1], "two");
	CHECK_STR(r[2], "three");
	CHECK_STR(r[3], "four");
}

UNIT_MAIN(UNIT_CASE(test_log_format), UNIT_CASE(test_log_threads),
    UNIT_CASE(test_log_fatal_panic), UNIT_CASE(test_log_syslog),
    UNIT_CASE(test_log_sanitize))
