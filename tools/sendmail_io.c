/* SPDX-License-Identifier: MIT */
/*
 * sendmail's plumbing: stdin read with a deadline, message lines written
 * with CRLF and folded at RFC 5322 2.1.1's 998 octets, and the terndrop
 * child that gets the envelope on its command line and the content
 * through a pipe. A signal that stops sendmail stops terndrop too
 * (SIGTERM: it removes its partial file), so an interrupted submission
 * never queues half a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/rfc822_addr.h"
#include "sendmail.h"

#define SM_TERNDROP	 "terndrop"
/* terndrop's answer: a queue ID and a newline. */
#define SM_ID_READ_MAX	 64
#define SM_ID_TIMEOUT_MS 60000
/* argv of terndrop besides the recipients. */
#define SM_DROP_ARGS	 20

static volatile pid_t sm_child = -1;

void
sm_warn(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", SENDMAIL_PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
sm_die(int status, const char *fmt, ...)
{
	va_list ap;

	if (sm_child > 0) {
		kill(sm_child, SIGTERM);
		(void)waitpid(sm_child, NULL, 0);
	}
	fflush(stdout);
	fprintf(stderr, "%s: fatal: ", SENDMAIL_PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void
sm_signal(int sig)
{
	(void)sig;
	if (sm_child > 0)
		kill(sm_child, SIGTERM);
	_exit(EX_TEMPFAIL);
}

static void
sm_env_add_one(void *ctx, const char *addr, size_t len)
{
	struct sm_env *e = ctx;

	(void)len;
	if (e->nrcpt >= SM_RCPT_MAX)
		sm_die(EX_USAGE, "too many recipients (at most %d)",
		    SM_RCPT_MAX);
	if (e->nrcpt == e->cap) {
		e->cap = e->cap == 0 ? 8 : e->cap * 2;
		e->rcpts = xrealloc(e->rcpts, e->cap * sizeof(*e->rcpts));
	}
	e->rcpts[e->nrcpt++] = xstrdup(addr);
}

void
sm_env_add_rcpts(struct sm_env *e, const char *text, size_t len)
{
	const char *err;

	if (rfc822_addr_list(text, len, SM_RCPT_MAX, sm_env_add_one, e, &err) <
	    0)
		sm_die(EX_DATAERR, "recipient list: %s", err);
}

void
sm_env_free_rcpts(struct sm_env *e)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++)
		free(e->rcpts[i]);
	free(e->rcpts);
	e->rcpts = NULL;
	e->nrcpt = e->cap = 0;
}

static void
sm_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sm_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	/* A terndrop that exits early shows up as a write error. */
	signal(SIGPIPE, SIG_IGN);
}

void
sm_drop_start(struct sm_drop *d, const struct sm_env *e)
{
	const char *argv[SM_DROP_ARGS + SM_RCPT_MAX + 1];
	char *prog = xasprintf("%s/%s", var_command_directory, SM_TERNDROP);
	int in[2], out[2], n = 0;
	size_t i;
	pid_t pid;

	memset(d, 0, sizeof(*d));
	argv[n++] = SM_TERNDROP;
	argv[n++] = "-v";
	argv[n++] = "-c";
	argv[n++] = e->config_dir;
#define SM_ARG(opt, val)                     \
	do {                                 \
		if ((val) != NULL) {         \
			argv[n++] = (opt);   \
			argv[n++] = (val);   \
		}                            \
	} while (0)
	SM_ARG("-f", e->sender);
	SM_ARG("-F", e->fullname);
	SM_ARG("-N", e->notify);
	SM_ARG("-R", e->ret);
	SM_ARG("-V", e->envid);
#undef SM_ARG
	argv[n++] = "--";
	for (i = 0; i < e->nrcpt; i++)
		argv[n++] = e->rcpts[i];
	argv[n] = NULL;
	sm_signals();
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		sm_die(EX_OSERR, "pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		sm_die(EX_OSERR, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(EX_OSERR);
		execv(prog, (char *const *)argv);
		fprintf(stderr, "%s: fatal: cannot run %s: %s\n",
		    SENDMAIL_PROGNAME, prog, strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
	free(prog);
	close(in[0]);
	close(out[1]);
	d->pid = pid;
	sm_child = pid;
	d->in_fd = in[1];
	d->out_fd = out[0];
}

/* Sends what is buffered as one frame (an empty one ends the message). */
static void
sm_drop_frame(struct sm_drop *d)
{
	unsigned char hdr[4];

	bytes_put_be32(hdr, (uint32_t)d->nframe);
	if (!d->failed && (file_write_all(d->in_fd, hdr, sizeof(hdr)) < 0 ||
	                      file_write_all(d->in_fd, d->frame, d->nframe) < 0))
		d->failed = 1;
	d->nframe = 0;
}

void
sm_drop_write(struct sm_drop *d, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	d->written += len;
	if (d->written > (unsigned long long)var_message_size_limit)
		d->too_big = 1;
	if (d->failed || d->too_big)
		return;
	while (len > 0) {
		n = sizeof(d->frame) - d->nframe;
		if (n > len)
			n = len;
		memcpy(d->frame + d->nframe, p, n);
		d->nframe += n;
		p += n;
		len -= n;
		if (d->nframe == sizeof(d->frame))
			sm_drop_frame(d);
	}
}

/* terndrop's stdout: the queue ID (bounded in size and time). */
static void
sm_drop_read_id(struct sm_drop *d, char *id, size_t id_size)
{
	struct pollfd pfd = {.fd = d->out_fd, .events = POLLIN};
	char buf[SM_ID_READ_MAX];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf) - 1 && poll(&pfd, 1, SM_ID_TIMEOUT_MS) > 0) {
		n = read(d->out_fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(id, id_size, "%s", buf);
}

int
sm_drop_finish(struct sm_drop *d, char *id, size_t id_size)
{
	int status;

	/* The rest, then the end: without it terndrop keeps nothing (a
	 * message over the limit is cut short on purpose and refused). */
	if (!d->too_big) {
		if (d->nframe > 0)
			sm_drop_frame(d);
		sm_drop_frame(d);
	}
	close(d->in_fd);
	d->in_fd = -1;
	sm_drop_read_id(d, id, id_size);
	close(d->out_fd);
	d->out_fd = -1;
	while (waitpid(d->pid, &status, 0) < 0)
		if (errno != EINTR)
			sm_die(EX_OSERR, "waitpid: %s", strerror(errno));
	sm_child = -1;
	d->pid = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return EX_SOFTWARE;
}

void
sm_drop_abort(struct sm_drop *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	if (d->in_fd >= 0)
		close(d->in_fd);
	if (d->out_fd >= 0)
		close(d->out_fd);
	(void)waitpid(d->pid, NULL, 0);
	sm_child = -1;
	d->pid = -1;
	d->in_fd = d->out_fd = -1;
}

int
sm_in_getc(struct sm_in *in)
{
	struct pollfd pfd = {.fd = 0, .events = POLLIN};
	ssize_t n;
	int pr;

	while (in->pos == in->len) {
		if (in->eof)
			return -1;
		pr = poll(&pfd, 1, SM_STDIN_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			sm_die(EX_TEMPFAIL, "timeout reading standard input");
		n = read(0, in->buf, sizeof(in->buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			sm_die(EX_IOERR, "read standard input: %s",
			    strerror(errno));
		if (n == 0) {
			in->eof = 1;
			return -1;
		}
		in->pos = 0;
		in->len = (size_t)n;
	}
	return (unsigned char)in->buf[in->pos++];
}

int
sm_in_line(struct sm_in *in, char *line, size_t max, size_t *len_r)
{
	size_t len = 0;
	int c, any = 0, toolong = 0;

	while ((c = sm_in_getc(in)) >= 0) {
		any = 1;
		if (c == '\n')
			break;
		/* One more than max: room for the CR of a CRLF. */
		if (len < max + 1)
			line[len++] = (char)c;
		else
			toolong = 1;
	}
	if (!any)
		return 0;
	if (len > 0 && line[len - 1] == '\r' && !toolong)
		len--;
	if (toolong || len > max)
		return -1;
	line[len] = '\0';
	*len_r = len;
	return 1;
}

/* Where a header line of len > SM_LINE_MAX may break: before the last
 * space or tab within the limit (not the first byte), else 0. */
static size_t
sm_header_break(const char *line, size_t len)
{
	size_t i = len > SM_LINE_MAX ? SM_LINE_MAX : len;

	for (; i > 0; i--)
		if (line[i] == ' ' || line[i] == '\t')
			return i;
	return 0;
}

void
sm_out_line(struct sm_drop *d, const char *line, size_t len, int header)
{
	size_t cut;
	int cont = 0;

	while (len + (size_t)cont > SM_LINE_MAX) {
		if (cont)
			sm_drop_write(d, " ", 1);
		cut = header && !cont ? sm_header_break(line, len) : 0;
		if (cut > 0) {
			/* The white space starts the continuation line. */
			sm_drop_write(d, line, cut);
			sm_drop_write(d, "\r\n", 2);
			line += cut;
			len -= cut;
			continue;
		}
		cut = SM_LINE_MAX - (size_t)cont;
		sm_drop_write(d, line, cut);
		sm_drop_write(d, "\r\n", 2);
		line += cut;
		len -= cut;
		cont = 1;
	}
	if (cont)
		sm_drop_write(d, " ", 1);
	sm_drop_write(d, line, len);
	sm_drop_write(d, "\r\n", 2);
}

/* One output line being collected: full means SM_LINE_MAX + 2 bytes. */
struct sm_copy {
	char buf[SM_LINE_MAX + 2];
	size_t len;
	int cont;		/* a continuation made by folding */
	int leading_dot;	/* SMTP: a first "." held back */
	int header;
};

/* The buffer is full: write what fits and keep the rest. */
static void
sm_copy_fold(struct sm_drop *d, struct sm_copy *c)
{
	size_t cut = c->header ? sm_header_break(c->buf, c->len) : 0;

	if (cut > 0) {
		sm_drop_write(d, c->buf, cut);
		sm_drop_write(d, "\r\n", 2);
		memmove(c->buf, c->buf + cut, c->len - cut);
		c->len -= cut;
		return;
	}
	sm_drop_write(d, c->buf, SM_LINE_MAX);
	sm_drop_write(d, "\r\n", 2);
	c->buf[0] = ' ';
	memmove(c->buf + 1, c->buf + SM_LINE_MAX, c->len - SM_LINE_MAX);
	c->len = c->len - SM_LINE_MAX + 1;
	c->cont = 1;
}

int
sm_copy_lines(struct sm_in *in, struct sm_drop *d, enum sm_dot dot_mode,
    int header)
{
	struct sm_copy c;
	int ch, bol = 1;

	memset(&c, 0, sizeof(c));
	c.header = header;
	while ((ch = sm_in_getc(in)) >= 0) {
		if (ch != '\n') {
			if (bol && ch == '.' && dot_mode == SM_DOT_SMTP) {
				c.leading_dot = 1;
				bol = 0;
				continue;
			}
			bol = 0;
			c.buf[c.len++] = (char)ch;
			if (c.len == sizeof(c.buf))
				sm_copy_fold(d, &c);
			continue;
		}
		if (c.len > 0 && c.buf[c.len - 1] == '\r')
			c.len--;
		if (!c.cont && ((dot_mode == SM_DOT_SMTP && c.leading_dot &&
		                    c.len == 0) ||
		                   (dot_mode == SM_DOT_END && c.len == 1 &&
		                       c.buf[0] == '.')))
			return 1;
		if (c.header && c.len == 0 && !c.cont)
			c.header = 0;
		sm_drop_write(d, c.buf, c.len);
		sm_drop_write(d, "\r\n", 2);
		c.len = 0;
		c.cont = c.leading_dot = 0;
		bol = 1;
	}
	/* A last line without LF. */
	if (c.len > 0 || c.leading_dot) {
		if (c.len > 0 && c.buf[c.len - 1] == '\r')
			c.len--;
		sm_drop_write(d, c.buf, c.len);
		sm_drop_write(d, "\r\n", 2);
	}
	return 0;
}
