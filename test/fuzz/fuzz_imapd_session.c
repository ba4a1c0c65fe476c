/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a whole imapd session after login (imapd/libimapd.a:
 * everything of imapd but main), as a client drives it. The grammar has
 * its own target (fuzz_imap_command); this one reaches what imapd makes
 * of parsed commands: SEARCH keys and their evaluation, FETCH attributes
 * (BODY[section]<partial>, BINARY, HEADER.FIELDS), STORE flag lists,
 * sequence sets and $, LIST patterns, SORT and THREAD criteria, STATUS
 * items, ENABLE and SELECT's CONDSTORE/QRESYNC parameters, APPEND's
 * flags, dates and literals, COPY, MOVE, EXPUNGE, IDLE, and the folder
 * tree.
 *
 * Each input runs on a fresh maildir: a few messages (plain, multipart
 * with base64 and quoted-printable parts, an attached message/rfc822,
 * encoded words, a thread), keywords, a subfolder, under a small quota
 * so that COPY 1:* cannot double the folder forever. The client's bytes
 * come from memory in irregular pieces (a PRNG seeded with the input);
 * the fd under the stream is /dev/null, which poll(2) always finds
 * readable, so the session never waits. What the server writes is kept
 * and checked: it opens with the PREAUTH greeting, every response line
 * ends in CRLF with no bare CR, LF or NUL, and every literal it announces
 * ({n} or ~{n}) is followed by exactly n bytes and the rest of its line
 * (FETCH counts its literals before it streams them).
 *
 * Another process changes the maildir too (delivery, pop3d, Dovecot, a
 * crash mid-write): a line starting with CHANGE_MARK is not sent but
 * done to the maildir once the session has read everything before it
 * (the transport hands out no byte past it until then), so the store's
 * sync, the untagged updates (EXPUNGE, FETCH, VANISHED) and the readers
 * of its own files (index, log, cache, uidlist, keywords) meet it:
 *   \x01n          a new message in INBOX new/
 *   \x01f FLAGS    the first message file of INBOX cur/ gets these
 *                  Maildir flag letters
 *   \x01x          the first message file of INBOX cur/ is removed
 *   \x01w N BYTES  file N of change_files is replaced by BYTES
 *   \x01a N BYTES  BYTES are appended to it (a torn write)
 *   \x01t N D      it is cut to D tenths of its size
 * (N and D one digit each; BYTES up to the end of the line.)
 *
 * Input: what the client sends, cut after INPUT_LINES_MAX lines.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "mail/mail_session.h"
#include "mail/params.h"
#include "../../imapd/imapd.h"
#include "fuzz_util.h"

/* Bounded work per input: commands (lines, literals included). */
#define INPUT_LINES_MAX 64
/* Larger pieces than the parser's tests: whole commands arrive too. */
#define PIECE_MAX 512
/* Output past this is counted but not kept (nor checked). */
#define OUT_KEEP_MAX (8 * 1024 * 1024)
#define NFTW_FDS 16
/* The fixture's files get this mtime (internal date): 2023-11-14. */
#define FIXTURE_TIME 1700000000
/* A line starting with this is a change by another process. */
#define CHANGE_MARK '\x01'
#define PATH_MAX_LEN 4096

static char base_dir[] = "/dev/shm/tern-fuzz-imapd.XXXXXX";
static char *maildir;

struct session_io {
	const char *data;
	size_t len, pos;
	struct fuzz_rng rng;
	unsigned delivered;
	struct buf out;
	size_t out_total;
};

/* The files of INBOX that \x01w, \x01a and \x01t change, by digit. */
static const char *const change_files[] = {"tern.index", "tern.index.log",
    "tern.index.cache", "dovecot-uidlist", "dovecot-keywords",
    "subscriptions", "maildirsize"};

/* ------------------------------------------------------------ fixture */

struct fixture_msg {
	const char *folder; /* "" for INBOX, else ".Name" */
	const char *sub;    /* "cur" or "new" */
	const char *name;
	const char *text;
};

static const struct fixture_msg fixture[] = {
    {"", "cur", "1700000001.M1P1.fuzz:2,S",
        "Return-Path: <alice@example.org>\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0100\n"
        "From: Alice <alice@example.org>\n"
        "To: Bob <bob@example.com>, undisclosed-recipients:;\n"
        "Subject: Lunch\n"
        "Message-ID: <1@example.org>\n"
        "\n"
        "Shall we have lunch?\n"},
    {"", "cur", "1700000002.M2P1.fuzz:2,RSa",
        "Date: Wed, 15 Nov 2023 08:00:00 -0500\n"
        "From: =?UTF-8?B?QsO2Yg==?= <bob@example.com>\n"
        "To: alice@example.org\n"
        "Cc: \"Carol, C.\" <carol@example.net>\n"
        "Subject: Re: =?ISO-8859-1?Q?Lunch_=E0_midi?=\n"
        "Message-ID: <2@example.com>\n"
        "In-Reply-To: <1@example.org>\n"
        "References: <1@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\n"
        "\n"
        "preamble\n"
        "--b1\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Yes, =C3=A0 midi. A long line that is soft=\n"
        " broken.\n"
        "--b1\n"
        "Content-Type: application/octet-stream; name=\"a.bin\"\n"
        "Content-Disposition: attachment; filename=\"a.bin\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "AAECAwQFBgcICQoLDA0ODxAREhM=\n"
        "--b1\n"
        "Content-Type: message/rfc822\n"
        "\n"
        "From: Dave <dave@example.net>\n"
        "Subject: inner\n"
        "Content-Type: multipart/alternative; boundary=b2\n"
        "\n"
        "--b2\n"
        "Content-Type: text/plain\n"
        "\n"
        "inner text\n"
        "--b2\n"
        "Content-Type: text/html\n"
        "\n"
        "<p>inner</p>\n"
        "--b2--\n"
        "--b1--\n"
        "epilogue\n"},
    {"", "cur", "1700000003.M3P1.fuzz:2,FTb",
        "Date: Thu, 16 Nov 2023 12:00:00 +0000\n"
        "From: carol@example.net\n"
        "To: alice@example.org\n"
        "Subject: Fwd: Re: Lunch\n"
        "Message-ID: <3@example.net>\n"
        "References: <1@example.org> <2@example.com>\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "caf\xe9\n"},
    {"", "new", "1700000004.M4P1.fuzz",
        "From: nobody\n"
        "Subject: no date, no body\n"},
    {".Archive", "cur", "1700000005.M5P1.fuzz:2,S",
        "Date: 1 Jan 2020 00:00:00 GMT\n"
        "From: old@example.org\n"
        "Subject: old\n"
        "\n"
        "old\n"},
};

static const char *const fixture_folders[] = {"", ".Archive", ".Archive.2026"};

static int
write_file(const char *path, const char *text)
{
	struct timespec times[2] = {{FIXTURE_TIME, 0}, {FIXTURE_TIME, 0}};
	size_t len = strlen(text);
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	ok = write(fd, text, len) == (ssize_t)len;
	(void)futimens(fd, times);
	close(fd);
	return ok ? 0 : -1;
}

static void
fixture_file(const char *path, const char *text)
{
	if (write_file(path, text) < 0)
		abort();
}

static void
make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0)
		abort();
}

static void
fixture_build(void)
{
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(fixture_folders) / sizeof(fixture_folders[0]);
	     i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, fixture_folders[i]);
		if (i > 0)
			make_dir(path);
		snprintf(path, sizeof(path), "%s/%s/cur", maildir,
		    fixture_folders[i]);
		make_dir(path);
		snprintf(path, sizeof(path), "%s/%s/new", maildir,
		    fixture_folders[i]);
		make_dir(path);
		snprintf(path, sizeof(path), "%s/%s/tmp", maildir,
		    fixture_folders[i]);
		make_dir(path);
		if (i > 0) {
			snprintf(path, sizeof(path), "%s/%s/maildirfolder",
			    maildir, fixture_folders[i]);
			fixture_file(path, "");
		}
	}
	snprintf(path, sizeof(path), "%s/dovecot-keywords", maildir);
	fixture_file(path, "0 $Forwarded\n1 work\n");
	snprintf(path, sizeof(path), "%s/subscriptions", maildir);
	fixture_file(path, "V\t2\n\nINBOX\nArchive\nGone\n");
	for (i = 0; i < sizeof(fixture) / sizeof(fixture[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s/%s", maildir,
		    fixture[i].folder, fixture[i].sub, fixture[i].name);
		fixture_file(path, fixture[i].text);
	}
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 ? -1 : 0;
	return unlink(path) < 0 ? -1 : 0;
}

static void
remove_tree(const char *path)
{
	if (access(path, F_OK) == 0 &&
	    nftw(path, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0)
		abort();
}

static void
remove_base(void)
{
	remove_tree(base_dir);
}

/* ---------------------------------------------------------- transport */

/* The name of the first message file of INBOX cur/ (in name order, so
 * that a run is repeatable), or 0 when there is none. */
static int
first_message(char *path, size_t size)
{
	struct dirent **names;
	int i, n, found = 0;

	snprintf(path, size, "%s/cur", maildir);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!found && names[i]->d_name[0] != '.') {
			snprintf(path, size, "%s/cur/%s", maildir,
			    names[i]->d_name);
			found = 1;
		}
		free(names[i]);
	}
	free(names);
	return found;
}

static void
change_flags(const char *arg, size_t len)
{
	char from[PATH_MAX_LEN], to[PATH_MAX_LEN];
	char *colon;
	size_t n, i;

	if (!first_message(from, sizeof(from)))
		return;
	memcpy(to, from, sizeof(to));
	colon = strrchr(to, ':');
	if (colon == NULL || colon < strrchr(to, '/'))
		colon = to + strlen(to);
	n = (size_t)(colon - to);
	if (n + 4 + len >= sizeof(to))
		return;
	memcpy(colon, ":2,", 3);
	n += 3;
	for (i = 0; i < len; i++) {
		if ((arg[i] >= 'A' && arg[i] <= 'Z') ||
		    (arg[i] >= 'a' && arg[i] <= 'z'))
			to[n++] = arg[i];
	}
	to[n] = '\0';
	(void)rename(from, to);
}

static void
change_file(char op, const char *arg, size_t len)
{
	char path[PATH_MAX_LEN];
	struct stat st;
	size_t which;
	int fd;

	if (len < 1 || arg[0] < '0' || arg[0] > '9')
		return;
	which = (size_t)(arg[0] - '0');
	if (which >= sizeof(change_files) / sizeof(change_files[0]))
		return;
	snprintf(path, sizeof(path), "%s/%s", maildir, change_files[which]);
	arg++;
	len--;
	if (op == 't') {
		if (len < 1 || arg[0] < '0' || arg[0] > '9' ||
		    stat(path, &st) < 0)
			return;
		(void)truncate(path, st.st_size * (arg[0] - '0') / 10);
		return;
	}
	fd = open(path,
	    O_WRONLY | O_CREAT | O_NOFOLLOW | (op == 'a' ? O_APPEND : O_TRUNC),
	    0600);
	if (fd < 0)
		return;
	if (write(fd, arg, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Does the change of the line at io->pos (its CHANGE_MARK), and steps
 * over the line. */
static void
change(struct session_io *io)
{
	const char *line = io->data + io->pos + 1, *end;
	char path[PATH_MAX_LEN];
	size_t len;

	end = memchr(line, '\n', io->len - io->pos - 1);
	len = end != NULL ? (size_t)(end - line) : io->len - io->pos - 1;
	io->pos += 1 + len + (end != NULL);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return;
	switch (line[0]) {
	case 'n':
		snprintf(path, sizeof(path), "%s/new/1800000000.M%uP2.other",
		    maildir, io->delivered++);
		(void)write_file(path, fixture[io->delivered % 4].text);
		break;
	case 'f':
		change_flags(line + 1, len - 1);
		break;
	case 'x':
		if (first_message(path, sizeof(path)))
			(void)unlink(path);
		break;
	case 'w':
	case 'a':
	case 't':
		change_file(line[0], line + 1, len - 1);
		break;
	}
}

/* Irregular pieces, never past a change line: the session has read
 * (and so run) everything before it when the change is made. */
static ssize_t
session_read(void *ctx, int fd, void *data, size_t len, int *want_r)
{
	struct session_io *io = ctx;
	const char *mark;
	size_t n, avail;

	(void)fd;
	*want_r = STREAM_WANT_READ;
	while (io->pos < io->len && io->data[io->pos] == CHANGE_MARK &&
	    (io->pos == 0 || io->data[io->pos - 1] == '\n'))
		change(io);
	avail = io->len - io->pos;
	mark = memmem(io->data + io->pos, avail, "\n\x01", 2);
	if (mark != NULL)
		avail = (size_t)(mark - (io->data + io->pos)) + 1;
	if (avail == 0)
		return 0;
	n = fuzz_piece(&io->rng, PIECE_MAX);
	if (n > len)
		n = len;
	if (n > avail)
		n = avail;
	memcpy(data, io->data + io->pos, n);
	io->pos += n;
	return (ssize_t)n;
}

static ssize_t
session_write(void *ctx, int fd, const void *data, size_t len, int *want_r)
{
	struct session_io *io = ctx;
	size_t room = OUT_KEEP_MAX - io->out.len;

	(void)fd;
	(void)want_r;
	if (io->out_total == io->out.len &&
	    buf_append(&io->out, data, len < room ? len : room) < 0)
		abort();
	io->out_total += len;
	return (ssize_t)len;
}

/* Nothing is ever decoded ahead: input is read when the fd polls
 * readable, and /dev/null always does. */
static size_t
session_pending(void *ctx)
{
	(void)ctx;
	return 0;
}

static void
session_free(void *ctx)
{
	(void)ctx;
}

static const struct stream_transport session_transport = {
    session_read, session_write, session_pending, session_free};

/* ------------------------------------------------------------- checks */

/* A literal announced at the end of a response line: its size, or -1. */
static long long
literal_at_end(const char *line, size_t len)
{
	size_t i = len;
	long long n = 0, scale = 1;

	if (len < 3 || line[len - 1] != '}')
		return -1;
	for (i = len - 1; i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9';
	     i--) {
		if (scale > 1000000000000LL)
			return -1;
		n += (line[i - 1] - '0') * scale;
		scale *= 10;
	}
	if (i == len - 1 || i == 0 || line[i - 1] != '{')
		return -1;
	return n;
}

/* Status responses echo client text, which may end in "{5}". */
static int
may_have_literals(const char *line, size_t len)
{
	static const char *const status[] = {"OK", "NO", "BAD", "BYE",
	    "PREAUTH"};
	size_t i, n;

	if (len < 2 || line[0] != '*' || line[1] != ' ')
		return 0;
	for (i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
		n = strlen(status[i]);
		if (len >= 2 + n && memcmp(line + 2, status[i], n) == 0 &&
		    (len == 2 + n || line[2 + n] == ' '))
			return 0;
	}
	return 1;
}

static void
check_output(const char *out, size_t len)
{
	size_t pos = 0, start, end;
	long long lit;
	int in_untagged = 0;

	FUZZ_CHECK(len >= 10 && memcmp(out, "* PREAUTH ", 10) == 0);
	start = 0;
	while (pos < len) {
		/* One piece of a response: up to CRLF. */
		end = pos;
		while (end < len && out[end] != '\n') {
			FUZZ_CHECK(out[end] != '\0');
			FUZZ_CHECK(out[end] != '\r' ||
			    (end + 1 < len && out[end + 1] == '\n'));
			end++;
		}
		FUZZ_CHECK(end < len && end > pos && out[end - 1] == '\r');
		if (pos == start)
			in_untagged = may_have_literals(out + pos, end - 1 - pos);
		lit = in_untagged ? literal_at_end(out + pos, end - 1 - pos)
		                  : -1;
		pos = end + 1;
		if (lit < 0) {
			start = pos;
			continue;
		}
		/* The literal's bytes, then the line goes on. */
		FUZZ_CHECK((unsigned long long)lit <= len - pos);
		pos += (size_t)lit;
		FUZZ_CHECK(pos < len);
	}
}

/* ------------------------------------------------------------ driver */

int
LLVMFuzzerInitialize(int *argc, char **argv[])
{
	const char *err;

	(void)argc;
	(void)argv;
	if (mkdtemp(base_dir) == NULL) {
		memcpy(base_dir, "/tmp", 4);
		if (mkdtemp(base_dir) == NULL)
			abort();
	}
	atexit(remove_base);
	/* Defaults, but small: APPEND's literals, and a quota that stops
	 * COPY 1:* from doubling the folder at every command. */
	config_override("message_size_limit", "65536");
	config_override("mailbox_size_limit", "262144");
	config_override("mailbox_message_limit", "40");
	if (config_load(base_dir, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	if (asprintf(&maildir, "%s/Maildir", base_dir) < 0)
		abort();
	unsetenv("TERN_SESSION_TAG");
	unsetenv("TERN_SESSION_INPUT");
	mail_session_set_log_name("imap", "fuzz", NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_io io;
	size_t len, lines = 0;
	int fd;

	for (len = 0; len < size && lines < INPUT_LINES_MAX; len++) {
		if (data[len] == '\n')
			lines++;
	}
	remove_tree(maildir);
	make_dir(maildir);
	fixture_build();
	io.data = (const char *)data;
	io.len = len;
	io.pos = 0;
	io.delivered = 0;
	fuzz_rng_init(&io.rng, data, size);
	buf_init(&io.out, OUT_KEEP_MAX);
	io.out_total = 0;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		abort();
	FUZZ_CHECK(imapd_run("fuzz", maildir, fd, &session_transport, &io) ==
	    0);
	/* To see what the seeds reach: FUZZ_IMAPD_SHOW=1 TARGET FILE. */
	if (getenv("FUZZ_IMAPD_SHOW") != NULL)
		(void)fwrite(io.out.data, 1, io.out.len, stderr);
	if (io.out_total == io.out.len)
		check_output(io.out.data, io.out.len);
	buf_free(&io.out);
	return 0;
}
