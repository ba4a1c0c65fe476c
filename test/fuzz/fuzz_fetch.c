/* SPDX-License-Identifier: MIT */
/*
 * The fetch daemon's POP3 or IMAP client session (fetch_pop3 and
 * fetch_imap of fetch/libfetch.a) against a server whose every
 * byte is the fuzzer's: the input is handed out in irregular pieces
 * (sometimes after an EAGAIN, as TLS does), whatever the client sent,
 * and ends in EOF. The fd under the stream is /dev/null, which poll(2)
 * finds ready, so no wait ever blocks. The account's journal is real
 * (fetch_state.c in a private directory); fetch_inject is replaced by a
 * recorder that marks the message pending, then queued, in the journal
 * as the real one does (or refuses it, or fails transiently, as byte 0
 * chooses).
 *
 * Checked, whatever the server says:
 *   - every command is one CRLF-terminated line of printable ASCII (no
 *     server byte smuggles a CR, LF or control into a command);
 *   - a message is deleted (POP3 DELE, IMAP UID STORE \Deleted and UID
 *     EXPUNGE) only when this session queued that very message: the
 *     journal starts empty, so nothing else may go;
 *   - what goes to the queue has an ID the journal can store (RFC 1939
 *     7: 1 to 70 characters 0x21..0x7E; IMAP "UIDVALIDITY.UID") and at
 *     most message_size_limit bytes, and follows a retrieval command;
 *   - the summary adds up, and its error text is printable;
 *   - the journal, read again, still knows every message queued (else
 *     the next poll would collect it twice).
 * Work per input is bounded by the input: every read ends at its end.
 *
 * Byte 0: bit 0 keep=yes; bit 1 EAGAIN before some reads; bits 2-3
 * message_size_limit (1 KiB, 4 KiB, 64 KiB, 64 KiB); bits 4-5
 * fetch_max_messages (1, 2, 5, 1000); bit 6 every third message is
 * refused by the queue; bit 7 the fourth fails transiently.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "fuzz_fetch.h"
#include "fuzz_util.h"

/* Large pieces too: a whole listing may arrive at once. */
#define PIECE_MAX 4096
/* A command line we keep while it is incomplete (FETCH_CMD_MAX and CRLF). */
#define CMD_LINE_MAX (FETCH_CMD_MAX + 2)
#define NUM_MAX 24

static char base_dir[] = "/dev/shm/tern-fuzz-fetch.XXXXXX";
static char *state_dir;

struct fetch_io {
	struct fuzz_mem mem;	/* the server's bytes */
	enum fetch_proto proto;
	struct buf cmd;		/* an incomplete command line */
	char current[NUM_MAX];	/* the message being retrieved, "" none */
	struct hash *queued_nums; /* POP3 numbers or IMAP UIDs queued */
	struct hash *queued_ids;  /* journal IDs queued */
	struct fetch_state *state;
	unsigned opts;
	int injects, queued;
};

/* The session under way, for the fetch_inject stub. */
static struct fetch_io *cur;

/* ------------------------------------------------------------ commands */

/* The number after prefix in line, copied into num; 0 if not that
 * command. */
static int
cmd_number(const char *line, const char *prefix, const char *suffix,
    char num[NUM_MAX])
{
	size_t n = strlen(prefix), d;

	if (strncmp(line, prefix, n) != 0)
		return 0;
	line += n;
	d = strspn(line, "0123456789");
	if (d == 0 || d >= NUM_MAX || strcmp(line + d, suffix) != 0)
		return 0;
	memcpy(num, line, d);
	num[d] = '\0';
	return 1;
}

static void
check_command(struct fetch_io *io, const char *line)
{
	char num[NUM_MAX];
	const char *sp;

	if (io->proto == FETCH_IMAP) {
		/* An AUTHENTICATE response line or its cancel has no tag;
		 * a tag is ours: "t" and a number. */
		if ((sp = strchr(line, ' ')) == NULL)
			return;
		FUZZ_CHECK(line[0] == 't');
		line = sp + 1;
		if (cmd_number(line, "UID FETCH ", " (BODY.PEEK[])", num))
			memcpy(io->current, num, sizeof(num));
		else if (cmd_number(line, "UID STORE ",
		             " +FLAGS.SILENT (\\Deleted)", num) ||
		         cmd_number(line, "UID EXPUNGE ", "", num))
			FUZZ_CHECK(hash_get(io->queued_nums, num) != NULL);
		return;
	}
	if (cmd_number(line, "RETR ", "", num))
		memcpy(io->current, num, sizeof(num));
	else if (cmd_number(line, "DELE ", "", num))
		FUZZ_CHECK(hash_get(io->queued_nums, num) != NULL);
}

/* Takes what the client sends, line by line. */
static ssize_t
io_write(void *ctx, int fd, const void *data, size_t len, int *want_r)
{
	struct fetch_io *io = ctx;
	const char *p = data;
	char *line;
	size_t i;

	(void)fd;
	(void)want_r;
	for (i = 0; i < len; i++) {
		FUZZ_CHECK(p[i] == '\r' || p[i] == '\n' ||
		    (p[i] >= 0x20 && p[i] <= 0x7e));
		if (p[i] != '\n') {
			FUZZ_CHECK(buf_putc(&io->cmd, p[i]) == 0);
			continue;
		}
		FUZZ_CHECK(io->cmd.len > 0 &&
		    io->cmd.data[io->cmd.len - 1] == '\r');
		line = xstrndup(io->cmd.data, io->cmd.len - 1);
		FUZZ_CHECK(strlen(line) == io->cmd.len - 1 &&
		    strchr(line, '\r') == NULL);
		check_command(io, line);
		free(line);
		buf_reset(&io->cmd);
	}
	return (ssize_t)len;
}

/* ------------------------------------------------------------- server */

/* The server: fuzz_util's memory transport (irregular pieces, EAGAIN
 * when asked; pending never 0, so the end comes as a read of 0 and no
 * wait polls the fd). */
static ssize_t
io_read(void *ctx, int fd, void *data, size_t len, int *want_r)
{
	struct fetch_io *io = ctx;

	return fuzz_transport.read(&io->mem, fd, data, len, want_r);
}

static size_t
io_pending(void *ctx)
{
	struct fetch_io *io = ctx;

	return fuzz_transport.pending(&io->mem);
}

static void
io_free(void *ctx)
{
	(void)ctx;
}

static const struct stream_transport io_transport = {
    io_read, io_write, io_pending, io_free};

/* -------------------------------------------------------------- stubs */

enum fetch_inject_result
fetch_inject(struct fetch_account *a, struct fetch_state *s,
    const struct fetch_conn *c, const char *proto, struct fetch_msg *m)
{
	struct fetch_io *io = cur;
	char qid[QUEUE_ID_SIZE];
	size_t dots;

	(void)a;
	(void)c;
	(void)proto;
	FUZZ_CHECK(io != NULL && s == io->state);
	FUZZ_CHECK(io->current[0] != '\0');
	FUZZ_CHECK(fetch_id_valid(m->id));
	if (io->proto == FETCH_IMAP) {
		dots = strspn(m->id, "0123456789");
		FUZZ_CHECK(dots > 0 && m->id[dots] == '.' &&
		    strspn(m->id + dots + 1, "0123456789") ==
		        strlen(m->id + dots + 1));
	}
	FUZZ_CHECK(m->data.len <= (size_t)var_message_size_limit);
	io->injects++;
	if (m->too_big)
		return FETCH_INJECT_REFUSED;
	if ((io->opts & 0x40) && io->injects % 3 == 0)
		return FETCH_INJECT_REFUSED;
	if ((io->opts & 0x80) && io->injects == 4)
		return FETCH_INJECT_RETRY;
	queue_id_new(qid);
	FUZZ_CHECK(fetch_state_mark(s, m->id, qid, FETCH_MARK_PENDING) == 0);
	FUZZ_CHECK(fetch_state_mark(s, m->id, qid, FETCH_MARK_QUEUED) == 0);
	hash_put(io->queued_nums, io->current, io);
	hash_put(io->queued_ids, m->id, io);
	io->queued++;
	return FETCH_INJECT_QUEUED;
}

/* ------------------------------------------------------------- driver */

/* The journal and its directories, after every input: libFuzzer ends
 * with _exit() when its time is up, which runs no atexit handler. */
static void
remove_base(void)
{
	char *path;

	path = xasprintf("%s/fuzz", state_dir);
	(void)unlink(path);
	free(path);
	(void)rmdir(state_dir);
	(void)rmdir(base_dir);
}

void
fuzz_fetch_init(void)
{
	const char *err;

	if (mkdtemp(base_dir) == NULL) {
		memcpy(base_dir, "/tmp", 4);
		if (mkdtemp(base_dir) == NULL)
			abort();
	}
	state_dir = xasprintf("%s/state", base_dir);
	remove_base();
	config_override("fetch_state_directory", state_dir);
	config_override("queue_directory", base_dir);
	if (config_load(base_dir, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
}

static void
check_summary(const struct fetch_io *io, const struct fetch_summary *sum)
{
	const char *p;

	FUZZ_CHECK(memchr(sum->error, '\0', sizeof(sum->error)) != NULL);
	for (p = sum->error; *p != '\0'; p++)
		FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e);
	FUZZ_CHECK(sum->listed >= 0 && sum->queued >= 0 && sum->skipped >= 0 &&
	    sum->deleted >= 0 && sum->left >= 0 && sum->refused >= 0);
	FUZZ_CHECK(sum->queued == io->queued);
	FUZZ_CHECK(sum->queued + sum->skipped + sum->left + sum->refused <=
	    sum->listed);
	FUZZ_CHECK(sum->deleted <= sum->queued + sum->skipped);
	/* A poll takes at most fetch_max_messages. */
	FUZZ_CHECK(io->injects <= var_fetch_max_messages);
}

/* The journal as the next poll reads it holds every queued message. */
static void
check_journal(struct fetch_io *io, struct fetch_state *state)
{
	const struct fetch_entry *e;
	const char *id;
	char *error = NULL;
	size_t pos = 0;

	fetch_state_close(state);
	FUZZ_CHECK(fetch_state_open(state, "fuzz", &error) == 0);
	while ((id = hash_iter(io->queued_ids, &pos, NULL)) != NULL) {
		e = fetch_state_get(state, id);
		FUZZ_CHECK(e != NULL && e->mark == FETCH_MARK_QUEUED);
	}
}

void
fuzz_fetch_run(const uint8_t *data, size_t size, enum fetch_proto proto,
    fuzz_fetch_session_fn *session)
{
	static const long long size_limits[] = {1024, 4096, 65536, 65536};
	static const long long max_messages[] = {1, 2, 5, 1000};
	char user[] = "user@example.org", pass[] = "pa\"ss\\word";
	char host[] = "mail.example.net", port[] = "110", name[] = "fuzz";
	char folder[] = "INBOX", to[] = "rcpt@example.com";
	struct fetch_account a;
	struct fetch_summary sum;
	struct fetch_state state;
	struct fetch_conn conn;
	struct fetch_io io;
	struct fuzz_rng rng;
	char *error = NULL;
	int fd;

	if (size < 1)
		return;
	memset(&io, 0, sizeof(io));
	io.opts = data[0];
	fuzz_rng_init(&rng, data, size);
	fuzz_mem_init(&io.mem, data + 1, size - 1, fuzz_rng_next(&rng),
	    (io.opts & 0x02) != 0, PIECE_MAX);
	io.proto = proto;
	buf_init(&io.cmd, CMD_LINE_MAX);
	io.queued_nums = hash_create();
	io.queued_ids = hash_create();
	var_message_size_limit = size_limits[(io.opts >> 2) & 3];
	var_fetch_max_messages = max_messages[(io.opts >> 4) & 3];

	memset(&a, 0, sizeof(a));
	a.name = name;
	a.proto = proto;
	a.tls_none = 1;
	a.user = user;
	a.password = pass;
	a.host = host;
	a.port = port;
	a.folder = folder;
	a.to = to;
	a.keep = io.opts & 0x01;

	/* fetch_state_open makes the state directory, not its parent. */
	if (mkdir(base_dir, 0700) < 0)
		abort();
	if (fetch_state_open(&state, "fuzz", &error) < 0) {
		fprintf(stderr, "%s\n", error);
		abort();
	}
	io.state = &state;

	memset(&conn, 0, sizeof(conn));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		abort();
	conn.fd = fd;
	conn.timeout_ms = 1000;
	snprintf(conn.peer_addr, sizeof(conn.peer_addr), "192.0.2.1");
	stream_init(&conn.st, fd);
	stream_set_transport(&conn.st, &io_transport, &io);

	memset(&sum, 0, sizeof(sum));
	cur = &io;
	session(&a, &state, &conn, &sum);
	cur = NULL;
	FUZZ_CHECK(conn.fd < 0);

	check_summary(&io, &sum);
	check_journal(&io, &state);
	fetch_state_close(&state);
	remove_base();
	buf_free(&io.cmd);
	hash_free(&io.queued_nums, NULL);
	hash_free(&io.queued_ids, NULL);
}
