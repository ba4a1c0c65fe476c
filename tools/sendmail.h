/* SPDX-License-Identifier: MIT */
/*
 * What the parts of sendmail(1) share: the envelope handed to terndrop,
 * the reader of stdin, the line writer that folds long lines, and the
 * terndrop child.
 */
#ifndef TERN_SENDMAIL_H
#define TERN_SENDMAIL_H

#include <stddef.h>
#include <sys/types.h>

#define SENDMAIL_PROGNAME "sendmail"
/* RFC 5322 2.1.1: at most 998 octets per line before CRLF. */
#define SM_LINE_MAX	  998
/* Longest silence on stdin before giving up (a person may be typing). */
#define SM_STDIN_TIMEOUT_MS (3600 * 1000)
/* Recipients of one message: terndrop's own bound. */
#define SM_RCPT_MAX	  1000

/* Exit with status after a "sendmail: fatal: ..." line (kills terndrop). */
void sm_die(int status, const char *fmt, ...) MTA_PRINTF(2, 3) MTA_NORETURN;
void sm_warn(const char *fmt, ...) MTA_PRINTF(1, 2);

/* The envelope as terndrop takes it on its command line. */
struct sm_env {
	const char *config_dir;
	const char *sender;	/* NULL: terndrop's default (login name) */
	const char *fullname, *envid, *ret, *notify;	/* NULL: not given */
	char **rcpts;
	size_t nrcpt, cap;
};

/* Adds each address of text (parsed as a header's address list). */
void sm_env_add_rcpts(struct sm_env *e, const char *text, size_t len);
void sm_env_free_rcpts(struct sm_env *e);

/* The terndrop child: its stdin is our pipe, its stdout another. */
/*
 * The content goes to terndrop in frames: a u32 length (big endian) and
 * that many bytes, then a frame of length 0. terndrop keeps a message
 * only after the empty frame, so a sendmail killed mid-message (SIGKILL
 * gives no chance to stop terndrop) queues nothing instead of half a
 * message.
 */
#define SM_FRAME_MAX 65536

struct sm_drop {
	pid_t pid;
	int in_fd, out_fd;
	char frame[SM_FRAME_MAX];
	size_t nframe;
	unsigned long long written;
	int failed;	/* a write failed: the child went away */
	int too_big;	/* more than message_size_limit: not sent on */
};

/* Starts $command_directory/terndrop; fatal (EX_UNAVAILABLE) if it
 * cannot be run. */
void sm_drop_start(struct sm_drop *d, const struct sm_env *e);
/* Writes bytes; a failure is remembered and reported by sm_drop_finish. */
void sm_drop_write(struct sm_drop *d, const void *data, size_t len);
/*
 * Closes the pipe and waits: terndrop's exit status (EX_OK with the
 * queue ID in id, at most id_size - 1 characters), or EX_SOFTWARE when it
 * died of a signal.
 */
int sm_drop_finish(struct sm_drop *d, char *id, size_t id_size);
/* Stops the child (SIGTERM: it removes its partial file) and reaps it. */
void sm_drop_abort(struct sm_drop *d);

/* Reading stdin, bounded in time. */
struct sm_in {
	char buf[65536];
	size_t pos, len;
	int eof;
};
/* Next byte, or -1 at end of input; fatal on a read error or timeout. */
int sm_in_getc(struct sm_in *in);
/*
 * Reads one line into line (at most max bytes, without LF and without a
 * CR before it): 1 a line, 0 end of input before any byte, -1 the line
 * is longer than max (the rest of it is consumed and dropped).
 */
int sm_in_line(struct sm_in *in, char *line, size_t max, size_t *len_r);

/*
 * Writes one line of a message with CRLF, folded when longer than
 * SM_LINE_MAX: a header line at the last space or tab that fits, else
 * (and body lines always) by inserting CRLF SPACE, as Postfix's smtp
 * client does. Counts bytes toward message_size_limit in d->written.
 */
void sm_out_line(struct sm_drop *d, const char *line, size_t len,
    int header);

/* How a message read from stdin ends. */
enum sm_dot {
	SM_DOT_NONE,	/* at end of input only (-i, -oi) */
	SM_DOT_END,	/* also at a line holding only "." */
	SM_DOT_SMTP,	/* at "." (RFC 5321 4.5.2: a leading dot is removed) */
};

/*
 * Copies lines from in to d until the end dot_mode says (CRLF out,
 * folded as sm_out_line; header: the lines are headers until an empty
 * line). 1 if a dot line ended it, 0 at end of input.
 */
int sm_copy_lines(struct sm_in *in, struct sm_drop *d, enum sm_dot dot_mode,
    int header);

/*
 * The message from stdin (sendmail's default mode): From_ lines skipped,
 * LF or CRLF in, CRLF out, a lone "." the end with SM_DOT_END, long
 * lines folded, Bcc: and Resent-Bcc: removed, recipients taken from
 * the headers when extract is set (-t). Returns the exit status.
 */
int sm_enqueue(struct sm_env *e, enum sm_dot dot_mode, int extract,
    int verbose);

/* sendmail -bs: an SMTP session on stdin and stdout. Exit status. */
int sm_smtp(struct sm_env *e);

#endif
