/* SPDX-License-Identifier: MIT */
/*
 * imapd: one IMAP session after login (RFC 3501 IMAP4rev1, RFC 9051
 * IMAP4rev2 through ENABLE, and the extensions clients expect: IDLE
 * RFC 2177, UIDPLUS RFC 4315, LITERAL+ RFC 7888, NAMESPACE RFC 2342,
 * ENABLE RFC 5161, ID RFC 2971, UNSELECT RFC 3691, CHILDREN RFC 3348,
 * LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154,
 * MOVE RFC 6851, CONDSTORE/QRESYNC RFC 7162, ESEARCH RFC 4731,
 * SEARCHRES RFC 5182, BINARY RFC 3516, QUOTA RFC 9208, UTF8=ACCEPT
 * RFC 6855, SORT and THREAD RFC 5256, SORT=DISPLAY RFC 5957, ESORT
 * RFC 5267), started by spawn as the mailbox owner with the client on fd
 * 0 and the TERN_SESSION_* environment (lib/mail/login_proto.h), as
 * Dovecot's imap-login hands a client to imap. One client, one process,
 * blocking writes with deadlines, poll(2) on the client (and during IDLE
 * on the folder's inotify descriptor).
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/stream.h"
#include "mail/imap_parser.h"
#include "mail/login_proto.h"
#include "mail/mail_session.h"
#include "mail/mailbox.h"
#include "mail/params.h"
#include "mail/userdb.h"
#include "imapd.h"

#ifndef LOGIN_ENV_TAG
/* The tag of the client's LOGIN / AUTHENTICATE: imapd answers it. */
#define LOGIN_ENV_TAG "TERN_SESSION_TAG"
#endif

/* Dovecot closes after this many BADs in a row: a client out of step. */
#define IMAPD_BAD_COMMANDS_MAX 20
/* Queued output is pushed to the client past this many bytes. */
#define IMAPD_FLUSH_AT (64 * 1024)
/* Bytes a caller holds, from this many on, go to the socket from where
 * they are, behind the queue in the same sendmsg, not copied into the
 * queue first (a message body of FETCH). */
#define IMAPD_DIRECT_MIN (16 * 1024)
#define IMAPD_LOG_LINE_MAX 1024
#define IMAPD_ECHO_MAX 40
/* Parser bounds besides the line: arguments over all levels (a SEARCH
 * or a FETCH of many header fields) and list nesting. */
#define IMAPD_ARGS_MAX 10000
#define IMAPD_DEPTH_MAX 32
#define IMAPD_MS_PER_SEC 1000
/* The virtual mailbox layout local delivery uses: BASE/DOMAIN/USER/Maildir */
#define IMAPD_VIRTUAL_TAIL "/Maildir"

static const char *const imapd_state_names[] = {
    [IMAPD_STATE_AUTH] = "AUTHENTICATED",
    [IMAPD_STATE_SELECTED] = "SELECTED",
    [IMAPD_STATE_LOGOUT] = "LOGOUT",
};

void
imapd_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mail_session_vlog(priority, fmt, ap);
	va_end(ap);
}

static void
set_state(struct imapd_session *s, enum imapd_state state)
{
	imapd_log(LOG_DEBUG, "state %s -> %s", imapd_state_names[s->state],
	    imapd_state_names[state]);
	s->state = state;
}

const char *
imapd_capabilities(void)
{
	return "IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE IDLE NAMESPACE ID "
	       "UIDPLUS UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED "
	       "LIST-STATUS MOVE CONDSTORE QRESYNC ESEARCH SEARCHRES "
	       "UTF8=ACCEPT BINARY QUOTA QUOTA=RES-STORAGE "
	       "QUOTA=RES-MESSAGE STATUS=SIZE SORT SORT=DISPLAY ESORT "
	       "THREAD=REFERENCES THREAD=ORDEREDSUBJECT";
}

/* ------------------------------------------------------------ output */

int
imapd_flush(struct imapd_session *s)
{
	if (s->broken)
		return -1;
	if (stream_flush(&s->st, s->timeout_ms) != STREAM_OK) {
		s->broken = 1;
		return -1;
	}
	return 0;
}

/* The client is a pipe (a test's) or TLS: stream_send_direct is not
 * for it. */
static int send_direct_off;

int
imapd_send(struct imapd_session *s, const void *data, size_t len)
{
	const char *p = data;
	ssize_t taken;
	size_t n;

	while (len > 0) {
		if (s->broken)
			return -1;
		if (len >= IMAPD_DIRECT_MIN && !send_direct_off) {
			taken = stream_send_direct(&s->st, p, len);
			if (taken < 0 && (errno == ENOTSOCK ||
			                     errno == EOPNOTSUPP)) {
				send_direct_off = 1;
			} else if (taken < 0) {
				s->broken = 1;
				return -1;
			}
			if (taken > 0) {
				p += taken;
				len -= (size_t)taken;
				continue;
			}
		}
		/* Queued, and pushed out with the deadline: the socket
		 * is full, or small pieces are gathered into one write. */
		n = len < IMAPD_FLUSH_AT ? len : IMAPD_FLUSH_AT;
		if (stream_write(&s->st, p, n) < 0) {
			s->broken = 1;
			return -1;
		}
		p += n;
		len -= n;
		if (stream_unsent(&s->st) >= IMAPD_FLUSH_AT &&
		    imapd_flush(s) < 0)
			return -1;
	}
	return 0;
}

static void send_line(struct imapd_session *s, const char *prefix,
    const char *fmt, va_list ap) MTA_PRINTF(3, 0);

static void
send_line(struct imapd_session *s, const char *prefix, const char *fmt,
    va_list ap)
{
	char text[IMAPD_LINE_MAX];
	size_t plen = strlen(prefix);
	int n;

	if (plen > sizeof(text) / 2)
		plen = sizeof(text) / 2;
	memcpy(text, prefix, plen);
	n = vsnprintf(text + plen, sizeof(text) - plen - 2, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(text) - plen - 3)
		n = (int)(sizeof(text) - plen - 3);
	n += (int)plen;
	text[n++] = '\r';
	text[n++] = '\n';
	(void)imapd_send(s, text, (size_t)n);
}

void
imapd_untagged(struct imapd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_line(s, "* ", fmt, ap);
	va_end(ap);
}

void
imapd_tagged(struct imapd_session *s, const char *status, const char *fmt,
    ...)
{
	char prefix[IMAPD_LOG_LINE_MAX];
	va_list ap;

	if (s->state == IMAPD_STATE_SELECTED && strcmp(status, "BAD") != 0)
		imapd_sync(s, s->sync_flags);
	snprintf(prefix, sizeof(prefix), "%s %s ",
	    s->tag != NULL ? s->tag : "*", status);
	va_start(ap, fmt);
	send_line(s, prefix, fmt, ap);
	va_end(ap);
	if (strcmp(status, "BAD") == 0)
		s->bad_commands++;
	else
		s->bad_commands = 0;
}

void
imapd_tagged_error(struct imapd_session *s, int err, const char *text)
{
	const char *code;

	switch (err) {
	case MAILBOX_ERR_NONEXISTENT:
		code = "[NONEXISTENT] ";
		break;
	case MAILBOX_ERR_EXISTS:
		code = "[ALREADYEXISTS] ";
		break;
	case MAILBOX_ERR_NOPERM:
		code = "[NOPERM] ";
		break;
	case MAILBOX_ERR_BADNAME:
		code = "[CANNOT] ";
		break;
	case MAILBOX_ERR_LIMIT:
		code = "[LIMIT] ";
		break;
	case MAILBOX_ERR_OVERQUOTA:
		code = "[OVERQUOTA] ";
		break;
	case MAILBOX_ERR_INUSE:
		code = "[INUSE] ";
		break;
	case MAILBOX_ERR_EXPUNGED:
		code = "[EXPUNGEISSUED] ";
		break;
	case MAILBOX_ERR_MODIFIED:
		code = "[MODIFIED] ";
		break;
	default:
		code = "[UNAVAILABLE] ";
		imapd_log(LOG_ERR, "%s", text != NULL ? text : "storage error");
		text = "Internal error occurred. Refer to server log for more "
		       "information.";
		break;
	}
	imapd_tagged(s, "NO", "%s%s", code,
	    text != NULL ? log_sanitize(text, IMAPD_LOG_LINE_MAX / 2)
	                 : "Failed.");
}

/* ---------------------------------------------------- small commands */

static void
cmd_capability(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_untagged(s, "CAPABILITY %s", imapd_capabilities());
	imapd_tagged(s, "OK", "Capability completed.");
}

static void
cmd_noop(struct imapd_session *s, struct imapd_cmd *c)
{
	imapd_tagged(s, "OK", "%s completed.",
	    strcasecmp(c->name, "CHECK") == 0 ? "Check" : "NOOP");
}

static void
cmd_logout(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_untagged(s, "BYE Logging out");
	/* The folder is left as it is: no implicit expunge (RFC 3501
	 * 6.1.3), but the view's cache is written back. */
	imapd_close_box(s);
	imapd_tagged(s, "OK", "Logout completed.");
	set_state(s, IMAPD_STATE_LOGOUT);
}

static void
cmd_enable(struct imapd_session *s, struct imapd_cmd *c)
{
	static const struct {
		const char *name;
		unsigned bits;
	} exts[] = {
	    {"IMAP4rev2", IMAPD_EN_REV2},
	    {"CONDSTORE", IMAPD_EN_CONDSTORE},
	    {"QRESYNC", IMAPD_EN_QRESYNC | IMAPD_EN_CONDSTORE},
	    {"UTF8=ACCEPT", IMAPD_EN_UTF8},
	};
	struct buf out;
	size_t i, k;

	if (c->count == 0) {
		imapd_tagged(s, "BAD", "ENABLE needs arguments.");
		return;
	}
	buf_init(&out, IMAPD_LINE_MAX);
	for (i = 0; i < c->count; i++) {
		for (k = 0; k < sizeof(exts) / sizeof(exts[0]); k++) {
			if (!imap_arg_atom_is(&c->args[i], exts[k].name) ||
			    (s->enabled & exts[k].bits) == exts[k].bits)
				continue;
			s->enabled |= exts[k].bits;
			imapd_bprintf(&out, " %s", exts[k].name);
		}
	}
	imapd_untagged(s, "ENABLED%s", buf_cstr(&out));
	buf_free(&out);
	imapd_tagged(s, "OK", "Enabled.");
}

static void
cmd_id(struct imapd_session *s, struct imapd_cmd *c)
{
	if (c->count != 1 || (c->args[0].type != IMAP_ARG_NIL &&
	                         c->args[0].type != IMAP_ARG_LIST)) {
		imapd_tagged(s, "BAD", "ID needs a list or NIL.");
		return;
	}
	imapd_untagged(s, "ID (\"name\" \"tern\")");
	imapd_tagged(s, "OK", "ID completed.");
}

static void
cmd_namespace(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_untagged(s, "NAMESPACE ((\"\" \"%c\")) NIL NIL", MAILBOX_SEP);
	imapd_tagged(s, "OK", "Namespace completed.");
}

static void
cmd_already(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_tagged(s, "BAD", "Already logged in.");
}

#define CMD_SELECTED 0x01 /* only in the selected state */
#define CMD_UID      0x02 /* has a UID variant */
#define CMD_NOEXP    0x04 /* no EXPUNGE while answering (RFC 3501 7.4.1) */

static const struct imapd_cmd_def {
	const char *name;
	void (*handler)(struct imapd_session *, struct imapd_cmd *);
	unsigned flags;
} imapd_cmds[] = {
    {"CAPABILITY", cmd_capability, 0},
    {"NOOP", cmd_noop, 0},
    {"LOGOUT", cmd_logout, 0},
    {"ENABLE", cmd_enable, 0},
    {"ID", cmd_id, 0},
    {"NAMESPACE", cmd_namespace, 0},
    {"LOGIN", cmd_already, 0},
    {"AUTHENTICATE", cmd_already, 0},
    {"STARTTLS", cmd_already, 0},
    {"SELECT", imapd_cmd_select, 0},
    {"EXAMINE", imapd_cmd_select, 0},
    {"CREATE", imapd_cmd_create, 0},
    {"DELETE", imapd_cmd_delete, 0},
    {"RENAME", imapd_cmd_rename, 0},
    {"SUBSCRIBE", imapd_cmd_subscribe, 0},
    {"UNSUBSCRIBE", imapd_cmd_unsubscribe, 0},
    {"LIST", imapd_cmd_list, 0},
    {"LSUB", imapd_cmd_lsub, 0},
    {"STATUS", imapd_cmd_status, 0},
    {"APPEND", imapd_cmd_append, 0},
    {"IDLE", imapd_cmd_idle, 0},
    {"GETQUOTA", imapd_cmd_getquota, 0},
    {"GETQUOTAROOT", imapd_cmd_getquotaroot, 0},
    {"SETQUOTA", imapd_cmd_setquota, 0},
    {"CHECK", cmd_noop, CMD_SELECTED},
    {"CLOSE", imapd_cmd_close, CMD_SELECTED},
    {"UNSELECT", imapd_cmd_unselect, CMD_SELECTED},
    {"EXPUNGE", imapd_cmd_expunge, CMD_SELECTED | CMD_UID},
    {"SEARCH", imapd_cmd_search, CMD_SELECTED | CMD_UID | CMD_NOEXP},
    {"SORT", imapd_cmd_sort, CMD_SELECTED | CMD_UID | CMD_NOEXP},
    {"THREAD", imapd_cmd_thread, CMD_SELECTED | CMD_UID | CMD_NOEXP},
    {"FETCH", imapd_cmd_fetch, CMD_SELECTED | CMD_UID | CMD_NOEXP},
    {"STORE", imapd_cmd_store, CMD_SELECTED | CMD_UID | CMD_NOEXP},
    {"COPY", imapd_cmd_copy, CMD_SELECTED | CMD_UID},
    {"MOVE", imapd_cmd_move, CMD_SELECTED | CMD_UID},
};

static const struct imapd_cmd_def *
find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(imapd_cmds) / sizeof(imapd_cmds[0]); i++) {
		if (strcasecmp(imapd_cmds[i].name, name) == 0)
			return &imapd_cmds[i];
	}
	return NULL;
}

static void
run_command(struct imapd_session *s, const struct imap_command *ic)
{
	/* A command without arguments has args NULL from the parser, and
	 * handlers take c->args + i for i <= count (SEARCH's keys after
	 * RETURN and CHARSET): pointer arithmetic on NULL is undefined. */
	static const struct imap_arg no_args[1];
	const struct imapd_cmd_def *def;
	struct imapd_cmd c;

	c.tag = ic->tag;
	c.name = ic->name;
	c.args = ic->args != NULL ? ic->args : no_args;
	c.count = ic->count;
	c.uid = 0;
	s->tag = ic->tag;
	s->sync_flags = 0;
	if (strcasecmp(ic->name, "UID") == 0) {
		if (ic->count == 0 || ic->args[0].type != IMAP_ARG_ATOM) {
			imapd_tagged(s, "BAD", "UID needs a command.");
			return;
		}
		c.name = ic->args[0].str;
		c.args = ic->args + 1;
		c.count = ic->count - 1;
		c.uid = 1;
	}
	def = find_cmd(c.name);
	if (def == NULL || (c.uid && !(def->flags & CMD_UID))) {
		imapd_tagged(s, "BAD", "Unknown command %s%s.",
		    c.uid ? "UID " : "", log_sanitize(c.name, IMAPD_ECHO_MAX));
		return;
	}
	if ((def->flags & CMD_SELECTED) && s->state != IMAPD_STATE_SELECTED) {
		imapd_tagged(s, "BAD", "No mailbox selected.");
		return;
	}
	if ((def->flags & CMD_NOEXP) && !c.uid)
		s->sync_flags = MAILBOX_SYNC_NO_EXPUNGE;
	imapd_log(LOG_DEBUG, "command %s%s", c.uid ? "UID " : "",
	    log_sanitize(c.name, IMAPD_ECHO_MAX));
	def->handler(s, &c);
}

/* ----------------------------------------------------------- session */

static int
preload_input(struct imapd_session *s)
{
	const char *b64 = getenv(LOGIN_ENV_INPUT), *err;
	struct buf in;

	if (b64 == NULL || *b64 == '\0')
		return 0;
	buf_init(&in, LOGIN_INPUT_MAX);
	if (base64_decode(b64, strlen(b64), &in, &err) < 0 ||
	    in.len > sizeof(s->st.rbuf)) {
		imapd_log(LOG_ERR, "%s: bad value: %s", LOGIN_ENV_INPUT,
		    in.len > sizeof(s->st.rbuf) ? "too long" : err);
		buf_free(&in);
		return -1;
	}
	memcpy(s->st.rbuf, in.data, in.len);
	s->st.rpos = 0;
	s->st.rlen = in.len;
	buf_free(&in);
	return 0;
}

/* The user's quota, as local delivery computes it: a virtual user's own
 * limits from the mailbox list, else the global ones. */
static void
user_quota(const char *user, const char *maildir, struct maildir_quota *q)
{
	size_t blen = strlen(var_virtual_mailbox_base);
	struct userdb_limits own = {-1, -1};
	const char *err;

	q->bytes = (uint64_t)var_mailbox_size_limit;
	q->count = (uint64_t)var_mailbox_message_limit;
	if (blen == 0 || strncmp(maildir, var_virtual_mailbox_base, blen) != 0 ||
	    maildir[blen] != '/')
		return;
	if (strlen(maildir) < strlen(IMAPD_VIRTUAL_TAIL) ||
	    strcmp(maildir + strlen(maildir) - strlen(IMAPD_VIRTUAL_TAIL),
	        IMAPD_VIRTUAL_TAIL) != 0)
		return;
	if (userdb_list_lookup(var_virtual_mailbox_list, user, &own, &err) ==
	    1) {
		if (own.bytes >= 0)
			q->bytes = (uint64_t)own.bytes;
		if (own.count >= 0)
			q->count = (uint64_t)own.count;
	}
}

int
imapd_wait_input(struct imapd_session *s, int extra_fd, int timeout_ms,
    int *extra_ready_r)
{
	struct pollfd pfd[2];
	enum stream_result r;
	int n;
#ifdef __GLIBC__
	int trimmed = 0;
#endif

	*extra_ready_r = 0;
	for (;;) {
		if (stream_buffered(&s->st) > 0)
			return STREAM_OK;
		/* Plaintext the transport decoded ahead (TLS) wakes no poll:
		 * it must be read now, or the caller, finding nothing
		 * buffered, would ask again at once, forever. */
		if (stream_input_ready(&s->st)) {
			r = stream_fill(&s->st);
			if (r == STREAM_AGAIN)
				continue;
			return r;
		}
		if (imapd_flush(s) < 0)
			return STREAM_ERROR;
#ifdef __GLIBC__
		/* About to sleep: what the last command freed (FETCH's
		 * buffers, a parse) goes back rather than staying in the
		 * middle of the heap for as long as the client is idle. */
		if (!trimmed) {
			malloc_trim(0);
			trimmed = 1;
		}
#endif
		pfd[0].fd = s->st.fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = extra_fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		n = poll(pfd, extra_fd >= 0 ? 2 : 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return STREAM_ERROR;
		if (n == 0)
			return STREAM_TIMEOUT;
		if (extra_fd >= 0 && pfd[1].revents != 0) {
			*extra_ready_r = 1;
			if (pfd[0].revents == 0)
				return STREAM_AGAIN;
		}
		if (pfd[0].revents != 0) {
			r = stream_fill(&s->st);
			if (r == STREAM_AGAIN)
				continue;
			return r;
		}
	}
}

static void
serve(struct imapd_session *s, const char *login_tag)
{
	const struct imap_command *cmd;
	enum imap_parse_result pr;
	enum stream_result r;
	const char *data, *text, *etag;
	size_t len, consumed;
	int fatal, extra;

	if (login_tag != NULL)
		(void)imapd_send(s, login_tag, strlen(login_tag));
	else
		(void)imapd_send(s, "*", 1);
	(void)imapd_send(s, login_tag != NULL ? " OK [CAPABILITY " :
	                                         " PREAUTH [CAPABILITY ",
	    login_tag != NULL ? 16 : 21);
	(void)imapd_send(s, imapd_capabilities(), strlen(imapd_capabilities()));
	(void)imapd_send(s, "] Logged in\r\n", 13);
	while (s->state != IMAPD_STATE_LOGOUT && !s->broken) {
		if (stream_buffered(&s->st) == 0) {
			r = imapd_wait_input(s, -1, s->timeout_ms, &extra);
			if (r == STREAM_TIMEOUT) {
				imapd_untagged(s, "BYE Disconnected for "
				                  "inactivity.");
				imapd_log(LOG_INFO, "Disconnected: Inactivity");
				break;
			}
			if (r != STREAM_OK) {
				imapd_log(LOG_INFO, "Disconnected: %s",
				    r == STREAM_EOF ? "Connection closed"
				                    : "Connection error");
				break;
			}
		}
		data = stream_peek(&s->st, &len);
		pr = imap_parser_feed(s->parser, data, len, &consumed);
		stream_consume(&s->st, consumed);
		switch (pr) {
		case IMAP_PARSE_MORE:
			break;
		case IMAP_PARSE_COMMAND:
			cmd = imap_parser_command(s->parser);
			run_command(s, cmd);
			s->tag = NULL;
			break;
		case IMAP_PARSE_CONTINUE:
			/* The parser refused literals over the limit (APPEND's
			 * message_size_limit) before asking. */
			(void)imapd_send(s, "+ OK\r\n", 6);
			(void)imapd_flush(s);
			break;
		case IMAP_PARSE_ERROR:
			text = imap_parser_error(s->parser, &etag, &fatal);
			s->tag = etag;
			if (fatal) {
				imapd_untagged(s, "BYE %s",
				    log_sanitize(text, IMAPD_ECHO_MAX * 4));
				imapd_log(LOG_INFO, "Disconnected: %s",
				    log_sanitize(text, IMAPD_ECHO_MAX * 4));
				/* The BYE goes out before the session ends:
				 * nothing is flushed once it is broken. */
				(void)imapd_flush(s);
				s->broken = 1;
				break;
			}
			/* RFC 7888 4: a literal over the limit is NO [TOOBIG]. */
			if (strncmp(text, "[TOOBIG]", 8) == 0)
				imapd_tagged(s, "NO", "%s",
				    log_sanitize(text, IMAPD_ECHO_MAX * 4));
			else
				imapd_tagged(s, "BAD", "Error in IMAP command: %s",
				    log_sanitize(text, IMAPD_ECHO_MAX * 4));
			s->tag = NULL;
			break;
		}
		if (s->bad_commands >= IMAPD_BAD_COMMANDS_MAX) {
			imapd_untagged(s, "BYE Too many invalid IMAP commands.");
			imapd_log(LOG_INFO, "Disconnected: Too many invalid "
			                    "commands");
			break;
		}
	}
	if (s->state == IMAPD_STATE_LOGOUT)
		imapd_log(LOG_INFO, "Disconnected: Logged out fetched=%llu "
		                    "files=%lu",
		    (unsigned long long)s->fetched_bytes, s->files_opened);
	if (!s->broken)
		(void)imapd_flush(s);
}

int
imapd_run(const char *user, const char *maildir, int fd,
    const struct stream_transport *tr, void *tr_ctx)
{
	struct imap_parser_limits lim;
	struct imapd_session s;
	const char *err, *tag;
	int ret = 0;

	memset(&s, 0, sizeof(s));
	s.state = IMAPD_STATE_AUTH;
	s.timeout_ms = (int)(var_imap_idle_timeout * IMAPD_MS_PER_SEC);
	stream_init(&s.st, fd);
	if (tr != NULL)
		stream_set_transport(&s.st, tr, tr_ctx);
	buf_init(&s.resp, IMAPD_LINE_MAX);
	memset(&lim, 0, sizeof(lim));
	lim.max_line = (size_t)var_imap_max_line_length;
	lim.max_literal = (size_t)var_message_size_limit;
	/* One message (APPEND) and a line's worth of small literals: a
	 * command of many literals gets no more. */
	lim.max_literals = lim.max_literal + lim.max_line;
	lim.max_args = IMAPD_ARGS_MAX;
	lim.max_depth = IMAPD_DEPTH_MAX;
	lim.literal_plus = 1;
	s.parser = imap_parser_create(&lim);
	user_quota(user, maildir, &s.quota);
	tag = getenv(LOGIN_ENV_TAG);
	if (tag != NULL && *tag == '\0')
		tag = NULL;
	if (preload_input(&s) < 0) {
		imapd_untagged(&s, "BYE [UNAVAILABLE] Internal error.");
		ret = 1;
	} else if (mailbox_user_open(maildir, &s.quota, &s.user, &err) < 0) {
		imapd_log(LOG_ERR, "%s", err);
		imapd_untagged(&s, "BYE [UNAVAILABLE] Couldn't open the "
		                   "mailbox.");
		ret = 1;
	} else {
		serve(&s, tag);
	}
	if (s.broken && s.state != IMAPD_STATE_LOGOUT && !s.box_deleted)
		imapd_log(LOG_INFO, "Disconnected: Write failed or timed out");
	else if (!s.broken)
		(void)imapd_flush(&s);
	imapd_close_box(&s);
	mailbox_user_close(&s.user);
	imap_parser_free(&s.parser);
	buf_free(&s.resp);
	free(s.vanished);
	free(s.saved);
	stream_close(&s.st);
	return ret;
}
