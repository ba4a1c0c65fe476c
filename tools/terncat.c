/* SPDX-License-Identifier: MIT */
/*
 * terncat: prints queue files (Postfix's postcat).
 *
 *   terncat [-c dir] [-e] [-h] [-b] [-v] ID|path ...
 *
 * -e the envelope (arrival time, sender, attributes, each recipient with
 * its status, ORCPT and NOTIFY), -h the header section, -b the body
 * (from the empty line that ends the headers); no flag is all three,
 * between Postfix-style "*** ... ***" lines. Content is printed with LF
 * line ends and otherwise the bytes as stored; envelope text has its
 * control characters shown as '?'.
 *
 * An ID is looked for in every queue (incoming, active, deferred, hold,
 * corrupt, maildrop); an argument with a '/' is a path. Files are opened
 * without following a symlink and must be regular files of mail_owner,
 * except in corrupt/ and maildrop/ (where a file may be anyone's). The
 * records are printed as they are read, so a malformed file shows what
 * comes before the break, then where and why it broke (qfile's reader
 * decides that, as for qmgr).
 *
 * Run by root, terncat switches to mail_owner for good right after
 * loading the configuration; other users but mail_owner are refused.
 * Exit codes (sysexits.h): 0; EX_NOINPUT (a message not found or not
 * readable), EX_DATAERR (a malformed or incomplete file), EX_USAGE,
 * EX_NOPERM, EX_CONFIG.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"

#define CAT_PROGNAME "terncat"
#define CAT_ENVELOPE 0x1
#define CAT_HEADER   0x2
#define CAT_BODY     0x4
/* Content is copied in pieces of this size. */
#define CAT_CHUNK    65536
#define CAT_PATH_MAX 4096

static const char *const cat_queues[] = {QUEUE_INCOMING, QUEUE_ACTIVE,
    QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, QUEUE_MAILDROP, NULL};

static struct priv_user cat_owner;

static void MTA_NORETURN
cat_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] [-e] [-h] [-b] [-v] queue_id|path ...\n",
	    CAT_PROGNAME);
	exit(EX_USAGE);
}

/* Envelope text: as stored, but a control byte never reaches the
 * terminal (a sender or header can carry them). */
static void
cat_text(const char *p, size_t len)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)p[i];
		putchar(c < 0x20 || c == 0x7f ? '?' : c);
	}
}

static void
cat_notify(unsigned mask)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{QRCPT_NOTIFY_SUCCESS, "SUCCESS"},
	    {QRCPT_NOTIFY_FAILURE, "FAILURE"}, {QRCPT_NOTIFY_DELAY, "DELAY"},
	    {QRCPT_NOTIFY_NEVER, "NEVER"}};
	size_t i;
	int n = 0;

	if (mask == 0) {
		fputs("default", stdout);
		return;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (mask & names[i].bit)
			printf("%s%s", n++ > 0 ? "," : "", names[i].name);
}

/* A recipient record: address NUL orcpt NUL notify. 0 or -1. */
static int
cat_rcpt(char type, const char *p, size_t len)
{
	const char *nul1 = memchr(p, '\0', len), *nul2;
	uint64_t notify;

	if (nul1 == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p));
	if (nul2 == NULL ||
	    str_to_u64_n(nul2 + 1, len - (size_t)(nul2 + 1 - p), UINT32_MAX,
	        &notify) < 0)
		return -1;
	fputs("recipient: ", stdout);
	cat_text(p, (size_t)(nul1 - p));
	printf(" (status: %s",
	    type == QREC_RCPT_DONE     ? "delivered"
	    : type == QREC_RCPT_FAILED ? "failed"
	                               : "pending");
	if (nul2 > nul1 + 1) {
		fputs("; orcpt: ", stdout);
		cat_text(nul1 + 1, (size_t)(nul2 - nul1 - 1));
	}
	fputs("; notify: ", stdout);
	cat_notify((unsigned)notify);
	fputs(")\n", stdout);
	return 0;
}

/* One envelope record; 0 or -1 (its payload does not parse). */
static int
cat_envelope_record(char type, const char *p, size_t len)
{
	char tbuf[64];
	uint64_t sec;
	const char *dot;
	struct tm tm;
	time_t t;

	switch (type) {
	case QREC_MAGIC:
		return len == strlen(QFILE_MAGIC) &&
		               memcmp(p, QFILE_MAGIC, len) == 0
		           ? 0
		           : -1;
	case QREC_TIME:
		dot = memchr(p, '.', len);
		if (dot == NULL ||
		    str_to_u64_n(p, (size_t)(dot - p), INT32_MAX * 64ULL, &sec) < 0)
			return -1;
		t = (time_t)sec;
		localtime_r(&t, &tm);
		strftime(tbuf, sizeof(tbuf), "%a %b %e %H:%M:%S %Y", &tm);
		printf("message_arrival_time: %s\n", tbuf);
		return 0;
	case QREC_WARN:
	case QREC_WARN_SENT:
		printf("delay_warning: %s\n",
		    type == QREC_WARN_SENT ? "sent" : "not sent");
		return 0;
	case QREC_SENDER:
		fputs("sender: ", stdout);
		cat_text(p, len);
		putchar('\n');
		return 0;
	case QREC_ATTR:
		fputs("named_attribute: ", stdout);
		cat_text(p, len);
		putchar('\n');
		return 0;
	case QREC_RCPT:
	case QREC_RCPT_DONE:
	case QREC_RCPT_FAILED:
		return cat_rcpt(type, p, len);
	default:
		return 0;
	}
}

/* Where the content printer is: which section, and at a line start. */
struct cat_section {
	int flags;
	int in_body;
	int line_start;
};

/* One byte of the content after CRLF became LF. */
static void
cat_emit(struct cat_section *s, char c)
{
	/* The empty line ends the headers and starts the body (postcat). */
	if (!s->in_body && s->line_start && c == '\n')
		s->in_body = 1;
	if (s->flags & (s->in_body ? CAT_BODY : CAT_HEADER))
		putchar(c);
	s->line_start = c == '\n';
}

/*
 * The content (CRLF lines as stored) with LF ends: the header section
 * for -h, the empty line and what follows it for -b. A CR is held back
 * until the next byte shows whether it ends a line. 0, or -1 when the
 * file is shorter than its record says.
 */
static int
cat_content(int fd, off_t off, uint64_t len, int flags)
{
	struct cat_section s = {.flags = flags, .line_start = 1};
	char *buf = xmalloc(CAT_CHUNK);
	uint64_t left = len;
	int cr = 0, ret = 0;
	size_t n, i;
	ssize_t got;

	while (left > 0) {
		n = left < CAT_CHUNK ? (size_t)left : CAT_CHUNK;
		got = pread(fd, buf, n, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			ret = -1;
			break;
		}
		for (i = 0; i < (size_t)got; i++) {
			if (cr) {
				cr = 0;
				if (buf[i] == '\n') {
					cat_emit(&s, '\n');
					continue;
				}
				cat_emit(&s, '\r');
			}
			if (buf[i] == '\r')
				cr = 1;
			else
				cat_emit(&s, buf[i]);
		}
		off += got;
		left -= (uint64_t)got;
	}
	if (cr)
		cat_emit(&s, '\r');
	free(buf);
	return ret;
}

/*
 * Walks the records of fd, printing as it goes; stops at the first one
 * that cannot be read whole. 1 when it reached END, 0 otherwise.
 */
static int
cat_walk(int fd, const char *name, int flags)
{
	int env = (flags & CAT_ENVELOPE) != 0, end = 0;
	unsigned char hdr[QFILE_HDR_LEN];
	char *payload = xmalloc(QFILE_RECORD_MAX);
	struct stat st;
	off_t off = 0;
	uint32_t len;
	char type;

	if (fstat(fd, &st) < 0)
		st.st_size = 0;
	if (env)
		printf("*** ENVELOPE RECORDS %s ***\n", name);
	while (off < st.st_size && !end) {
		if (file_pread_all(fd, hdr, sizeof(hdr), off) < 0)
			break;
		type = (char)hdr[0];
		len = bytes_get_be32(hdr + 1);
		if (type == QREC_CONTENT) {
			if ((off_t)len > st.st_size - off - QFILE_HDR_LEN)
				break;
			if (env)
				printf("message_size: %lu\n*** MESSAGE CONTENTS %s ***\n",
				    (unsigned long)len, name);
			if (cat_content(fd, off + QFILE_HDR_LEN, len, flags) < 0)
				break;
			off += QFILE_HDR_LEN + (off_t)len;
			continue;
		}
		if (len > QFILE_RECORD_MAX ||
		    file_pread_all(fd, payload, len, off + QFILE_HDR_LEN) < 0)
			break;
		if (type == QREC_END) {
			end = len == 0;
			break;
		}
		if (strchr("VTwWSARDF", type) == NULL || type == '\0')
			break;
		if (env && cat_envelope_record(type, payload, len) < 0)
			break;
		off += QFILE_HDR_LEN + (off_t)len;
	}
	if (env && end)
		printf("*** MESSAGE FILE END %s ***\n", name);
	free(payload);
	return end;
}

/* Prints the file at path (opened by the caller as fd). 0 or exit code. */
static int
cat_fd(int fd, const char *path, uid_t owner, int flags)
{
	struct qfile q;
	struct stat st;
	const char *err = NULL;
	int dup_fd, whole, ret = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (owner != (uid_t)-1 && st.st_uid != owner)) {
		fprintf(stderr, "%s: %s: not a regular file of %s\n", CAT_PROGNAME,
		    path, var_mail_owner);
		close(fd);
		return EX_NOINPUT;
	}
	/* qfile's strict reader says whether and where the file is broken. */
	if ((dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", CAT_PROGNAME, path, strerror(errno));
		close(fd);
		return EX_OSERR;
	}
	if (qfile_open_fd(dup_fd, path, owner, &q, &err) < 0) {
		ret = EX_DATAERR;
	} else {
		if (!q.complete) {
			err = "the file ends before its end record";
			ret = EX_DATAERR;
		}
		qfile_close(&q);
	}
	whole = cat_walk(fd, path, flags);
	fflush(stdout);
	if (ret != 0) {
		fprintf(stderr, "%s: %s: malformed queue file: %s\n", CAT_PROGNAME,
		    path, err);
		if (flags & CAT_ENVELOPE)
			printf("*** BROKEN QUEUE FILE %s: %s ***\n", path, err);
	} else if (!whole) {
		/* The file changed between the two reads (a mark, a move). */
		fprintf(stderr, "%s: %s: changed while being read\n",
		    CAT_PROGNAME, path);
		ret = EX_TEMPFAIL;
	}
	close(fd);
	return ret;
}

static int
cat_open(const char *path)
{
	return open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

/* An owner check except where a file may be anyone's. */
static uid_t
cat_owner_for(const char *queue)
{
	return strcmp(queue, QUEUE_CORRUPT) == 0 ||
	               strcmp(queue, QUEUE_MAILDROP) == 0
	           ? (uid_t)-1
	           : cat_owner.uid;
}

static int
cat_id(const char *id, int flags)
{
	char *path;
	int i, fd;

	if (!queue_id_valid(id)) {
		fprintf(stderr, "%s: %s: not a queue ID (a path needs a '/')\n",
		    CAT_PROGNAME, log_sanitize(id, QUEUE_ID_SIZE * 4));
		return EX_USAGE;
	}
	for (i = 0; cat_queues[i] != NULL; i++) {
		path = queue_path(cat_queues[i], id);
		fd = cat_open(path);
		if (fd >= 0) {
			i = cat_fd(fd, path, cat_owner_for(cat_queues[i]), flags);
			free(path);
			return i;
		}
		if (errno != ENOENT) {
			fprintf(stderr, "%s: open %s: %s\n", CAT_PROGNAME, path,
			    strerror(errno));
			free(path);
			return EX_NOINPUT;
		}
		free(path);
	}
	fprintf(stderr, "%s: %s: no such message in the queue\n", CAT_PROGNAME,
	    id);
	return EX_NOINPUT;
}

/* A path: the owner check applies unless it is in corrupt/ or maildrop/
 * of this instance's queue. */
static int
cat_path(const char *path, int flags)
{
	char dir[CAT_PATH_MAX], *q;
	uid_t owner = cat_owner.uid;
	int fd, i;

	fd = cat_open(path);
	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", CAT_PROGNAME, path,
		    strerror(errno));
		return EX_NOINPUT;
	}
	file_dirname(path, dir, sizeof(dir));
	for (i = 0; cat_queues[i] != NULL; i++) {
		q = queue_path(cat_queues[i], NULL);
		if (strcmp(q, dir) == 0)
			owner = cat_owner_for(cat_queues[i]);
		free(q);
	}
	return cat_fd(fd, path, owner, flags);
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	int ch, flags = 0, verbose = 0, ret = 0, r, i;

	log_init(CAT_PROGNAME, LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "bc:ehv")) != -1) {
		switch (ch) {
		case 'b':
			flags |= CAT_BODY;
			break;
		case 'c':
			config_dir = optarg;
			break;
		case 'e':
			flags |= CAT_ENVELOPE;
			break;
		case 'h':
			flags |= CAT_HEADER;
			break;
		case 'v':
			verbose++;
			break;
		default:
			cat_usage();
		}
	}
	if (optind == argc)
		cat_usage();
	if (flags == 0)
		flags = CAT_ENVELOPE | CAT_HEADER | CAT_BODY;
	log_set_verbose(verbose);
	if (config_load(config_dir, &err) < 0) {
		fprintf(stderr, "%s: fatal: %s\n", CAT_PROGNAME, err);
		exit(EX_CONFIG);
	}
	if (priv_lookup_user(var_mail_owner, &cat_owner) < 0) {
		fprintf(stderr, "%s: fatal: mail_owner %s does not exist\n",
		    CAT_PROGNAME, var_mail_owner);
		exit(EX_CONFIG);
	}
	if (getuid() == 0) {
		/* Queue paths are tern's: followed by tern's user only. */
		priv_drop(cat_owner.uid, cat_owner.gid);
	} else if (getuid() != cat_owner.uid) {
		fprintf(stderr,
		    "%s: fatal: only root and %s may read queue files\n",
		    CAT_PROGNAME, var_mail_owner);
		exit(EX_NOPERM);
	}
	for (i = optind; i < argc; i++) {
		r = strchr(argv[i], '/') != NULL ? cat_path(argv[i], flags)
		                                 : cat_id(argv[i], flags);
		if (r != 0 && ret == 0)
			ret = r;
	}
	fflush(stdout);
	priv_user_free(&cat_owner);
	return ret;
}
