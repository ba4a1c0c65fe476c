/* SPDX-License-Identifier: MIT */
/*
 * smtp-load: the benchmark's load generator, smtp-source's job plus
 * STARTTLS (which smtp-source cannot do): S threads share M messages of L
 * bytes. As smtp-source does, each message goes over a connection of its
 * own (greeting, EHLO, with -t STARTTLS and EHLO again, one transaction
 * without pipelining, QUIT), as mail from the internet arrives; with -d a
 * thread keeps its connection for all its messages. Every reply must be
 * the expected 2xx/3xx, else it exits 1. It uses tern's own stream and
 * TLS client (lib/tls), without certificate verification: the servers
 * under test present self-signed certificates. RFC 5321, RFC 3207.
 *
 *   smtp-load [-d] [-t] [-s sessions] [-m messages] [-l bytes] -f from
 *             -r rcpt host:port
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/stream.h"
#include "tls/tls.h"

#define LOAD_TIMEOUT_MS   60000
#define LOAD_LINE_MAX     4096
#define LOAD_SESSIONS_MAX 1000
#define LOAD_SIZE_MAX     (64 * 1024 * 1024)
#define LOAD_LINE_LEN     76 /* body line length before CRLF */
#define LOAD_HOST_MAX     256

static struct {
	const char *host, *port, *from, *rcpt;
	int tls;
	int keep; /* -d: one connection per thread, not per message */
	uint64_t sessions, messages, size;
	struct tls_client *cli;
	char *body; /* the message, CRLF, dot-stuffed (no line starts '.') */
	size_t body_len;
	atomic_ulong next; /* messages handed out */
	atomic_int failed;
} load;

static void
load_fail(const char *what, const char *detail)
{
	fprintf(stderr, "smtp-load: %s: %s\n", what, detail);
	atomic_store(&load.failed, 1);
}

/* Reads one reply (multi-line too); 0 if its code is want's class. */
static int
load_reply(struct stream *st, struct buf *line, int want)
{
	enum stream_result r;

	do {
		r = stream_read_line(
		    st, line, LOAD_LINE_MAX, LOAD_TIMEOUT_MS, NULL);
		if (r != STREAM_OK) {
			load_fail("read", r == STREAM_TIMEOUT ? "timeout"
			                  : r == STREAM_EOF
			                      ? "connection closed"
			                      : strerror(errno));
			return -1;
		}
	} while (line->len > 3 && line->data[3] == '-');
	if (line->len < 3 || line->data[0] != '0' + want / 100) {
		load_fail("unexpected reply", buf_cstr(line));
		return -1;
	}
	return 0;
}

static int load_cmd(struct stream *st, struct buf *line, int want,
    const char *fmt, ...) MTA_PRINTF(4, 5);

static int
load_cmd(struct stream *st, struct buf *line, int want, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(&st->wbuf, fmt, ap);
	va_end(ap);
	if (r < 0 || stream_write(st, "\r\n", 2) < 0 ||
	    stream_flush(st, LOAD_TIMEOUT_MS) != STREAM_OK) {
		load_fail("write", strerror(errno));
		return -1;
	}
	return load_reply(st, line, want);
}

static int
load_connect(void)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, err;

	hints.ai_socktype = SOCK_STREAM;
	if ((err = getaddrinfo(load.host, load.port, &hints, &res)) != 0) {
		load_fail("getaddrinfo", gai_strerror(err));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		load_fail("connect", strerror(errno));
	return fd;
}

/* Greets, and with -t goes under TLS and greets again; 0 or -1. */
static int
load_open(struct stream *st, struct buf *line)
{
	int fd = load_connect();

	if (fd < 0)
		return -1;
	stream_init(st, fd);
	if (load_reply(st, line, 220) < 0 ||
	    load_cmd(st, line, 250, "EHLO load.example") < 0)
		return -1;
	if (!load.tls)
		return 0;
	if (load_cmd(st, line, 220, "STARTTLS") < 0)
		return -1;
	if (file_set_nonblock(fd, 1) < 0) {
		load_fail("fcntl", strerror(errno));
		return -1;
	}
	tls_stream_client(st, load.cli, NULL);
	return load_cmd(st, line, 250, "EHLO load.example");
}

static int
load_message(struct stream *st, struct buf *line)
{
	if (load_cmd(st, line, 250, "MAIL FROM:<%s>", load.from) < 0 ||
	    load_cmd(st, line, 250, "RCPT TO:<%s>", load.rcpt) < 0 ||
	    load_cmd(st, line, 354, "DATA") < 0)
		return -1;
	if (stream_write(st, load.body, load.body_len) < 0) {
		load_fail("write", "message larger than the buffer");
		return -1;
	}
	return load_cmd(st, line, 250, ".");
}

static void *
load_session(void *arg)
{
	struct stream st;
	struct buf line;
	int open = 0;

	(void)arg;
	st.fd = -1;
	buf_init(&line, LOAD_LINE_MAX + 1);
	while (!atomic_load(&load.failed) &&
	       atomic_fetch_add(&load.next, 1) < load.messages) {
		if (!open && load_open(&st, &line) < 0)
			break;
		open = 1;
		if (load_message(&st, &line) < 0)
			break;
		if (!load.keep) {
			load_cmd(&st, &line, 221, "QUIT");
			stream_close(&st);
			open = 0;
		}
	}
	if (open && !atomic_load(&load.failed))
		load_cmd(&st, &line, 221, "QUIT");
	if (st.fd >= 0)
		stream_close(&st);
	buf_free(&line);
	return NULL;
}

/* A message of about size bytes: a few headers, then text lines. */
static void
load_make_body(void)
{
	struct buf b;
	size_t n;

	buf_init(&b, load.size + LOAD_LINE_MAX);
	if (buf_printf(&b,
	        "From: <%s>\r\nTo: <%s>\r\nSubject: smtp-load\r\n\r\n",
	        load.from, load.rcpt) < 0)
		msg_die("body: too large");
	while (b.len < load.size) {
		n = load.size - b.len < LOAD_LINE_LEN + 2 ? load.size - b.len
		                                          : LOAD_LINE_LEN + 2;
		if (n < 3)
			n = 3;
		while (n-- > 2)
			if (buf_putc(&b, 'x') < 0)
				msg_die("body: too large");
		if (buf_puts(&b, "\r\n") < 0)
			msg_die("body: too large");
	}
	load.body_len = b.len;
	load.body = buf_steal(&b);
}

static void
load_usage(void)
{
	msg_die("usage: smtp-load [-d] [-t] [-s sessions] [-m messages] "
	        "[-l bytes] -f from -r rcpt host:port");
}

int
main(int argc, char **argv)
{
	struct tls_client_config cfg = {0};
	pthread_t *threads;
	struct timespec t0, t1;
	const char *err;
	char *colon;
	uint64_t i;
	int ch;

	log_init("smtp-load", LOG_DEST_STDERR);
	load.sessions = 20;
	load.messages = 1000;
	load.size = 1024;
	while ((ch = getopt(argc, argv, "df:l:m:r:s:t")) != -1) {
		switch (ch) {
		case 'd':
			load.keep = 1;
			break;
		case 'f':
			load.from = optarg;
			break;
		case 'r':
			load.rcpt = optarg;
			break;
		case 's':
			if (str_to_u64(optarg, LOAD_SESSIONS_MAX,
			        &load.sessions) < 0 ||
			    load.sessions == 0)
				load_usage();
			break;
		case 'm':
			if (str_to_u64(optarg, UINT32_MAX, &load.messages) < 0)
				load_usage();
			break;
		case 'l':
			if (str_to_u64(optarg, LOAD_SIZE_MAX, &load.size) < 0)
				load_usage();
			break;
		case 't':
			load.tls = 1;
			break;
		default:
			load_usage();
		}
	}
	if (optind + 1 != argc || load.from == NULL || load.rcpt == NULL ||
	    (colon = strrchr(argv[optind], ':')) == NULL)
		load_usage();
	*colon = '\0';
	load.host = argv[optind];
	load.port = colon + 1;
	if (load.tls && tls_client_create(&cfg, &load.cli, &err) < 0)
		msg_die("%s", err);
	load_make_body();
	threads = xcalloc(load.sessions, sizeof(*threads));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < load.sessions; i++)
		if (pthread_create(&threads[i], NULL, load_session, NULL) != 0)
			msg_die("pthread_create: %s", strerror(errno));
	for (i = 0; i < load.sessions; i++)
		pthread_join(threads[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(threads);
	free(load.body);
	tls_client_free(&load.cli);
	if (atomic_load(&load.failed))
		return 1;
	printf("%llu messages in %.3f s\n", (unsigned long long)load.messages,
	    (double)(t1.tv_sec - t0.tv_sec) +
	        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
