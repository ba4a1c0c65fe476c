/* SPDX-License-Identifier: MIT */
/*
 * The SMTP commands smtpd understands, as one table {name, handler,
 * flags}, and the transaction rules around them: RFC 5321 (HELO, EHLO,
 * MAIL, RCPT, DATA, RSET, NOOP, VRFY, HELP, QUIT and their order), with
 * the extensions advertised in EHLO and really implemented: PIPELINING
 * (RFC 2920; the buffered session design answers a batch in order),
 * SIZE (RFC 1870), 8BITMIME (RFC 6152) and ENHANCEDSTATUSCODES (RFC 2034;
 * every reply carries an RFC 3463 code). RCPT is checked against the
 * recipient classes of resolve.h: remote is relaying (refused), local
 * needs a system user, virtual needs an entry in the mailbox list.
 */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/userdb.h"
#include "smtpd.h"

#define SMTPD_CMD_FLAG_NOARG 0x1 /* takes no argument */
#define SMTPD_CMD_FLAG_HELO  0x2 /* needs HELO/EHLO first */
#define SMTPD_CMD_FLAG_MAIL  0x4 /* needs a MAIL transaction */

/* Handler results: the reply is queued in every case. */
#define SMTPD_CMD_OK      0
#define SMTPD_CMD_ERROR   (-1)
#define SMTPD_CMD_PENDING 1 /* DATA: the outcome comes after the content */

/* ESMTP parameters on one MAIL command (RFC 1870, 6152, later 3461). */
#define SMTPD_PARAMS_MAX   16
/* Client text echoed back in a reply. */
#define SMTPD_ECHO_MAX     64
#define MAIL_FROM          "FROM:"
#define RCPT_TO            "TO:"
#define PARAM_SIZE         "SIZE="
/* RFC 1870 size-value: 1*20DIGIT. */
#define SIZE_VALUE_DIGITS  20
#define DIGITS             "0123456789"
#define PREFIX_LEN(p)      (sizeof(p) - 1)
/* Longest command name in the table, for counter names. */
#define SMTPD_CMD_NAME_MAX 8
/* RFC 5321 4.5.1: every domain we accept mail for has this mailbox. */
#define SMTPD_POSTMASTER   "postmaster"

struct smtpd_cmd {
	const char *name;
	int (*handler)(struct smtpd_session *s, const char *arg);
	unsigned flags;
};

void
smtpd_cmd_reset(struct smtpd_session *s)
{
	int i;

	free(s->sender);
	s->sender = NULL;
	for (i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->rcpt_alloc = s->rcpt_tried = 0;
	s->body = NULL;
	cleanup_free(&s->cleanup);
}

static int
cmd_greet(struct smtpd_session *s, const char *arg, int esmtp)
{
	if (*arg == '\0') {
		smtpd_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return SMTPD_CMD_ERROR;
	}
	/* RFC 5321 4.1.4: a new greeting ends any transaction. */
	smtpd_cmd_reset(s);
	free(s->helo);
	s->helo = xstrdup(arg);
	s->esmtp = esmtp;
	smtpd_set_state(s, SMTPD_STATE_HELO);
	return SMTPD_CMD_OK;
}

static int
cmd_helo(struct smtpd_session *s, const char *arg)
{
	if (cmd_greet(s, arg, 0) < 0)
		return SMTPD_CMD_ERROR;
	smtpd_reply(s, "250 %s", var_myhostname);
	return SMTPD_CMD_OK;
}

static int
cmd_ehlo(struct smtpd_session *s, const char *arg)
{
	if (cmd_greet(s, arg, 1) < 0)
		return SMTPD_CMD_ERROR;
	smtpd_reply(s, "250-%s", var_myhostname);
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %lld", var_message_size_limit);
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250 ENHANCEDSTATUSCODES");
	return SMTPD_CMD_OK;
}

/* One MAIL parameter (RFC 5321 4.1.2 esmtp-param). */
static int
cmd_mail_param(struct smtpd_session *s, const char *param)
{
	const char *value;
	uint64_t size;

	if (s->esmtp && str_prefix_ci(param, strlen(param), PARAM_SIZE)) {
		value = param + PREFIX_LEN(PARAM_SIZE);
		/* RFC 1870 size-value is 1*20DIGIT: all digits but too big
		 * for 64 bits is a size over the limit, not bad syntax. */
		if (str_to_u64(value, UINT64_MAX, &size) < 0) {
			if (*value == '\0' ||
			    strlen(value) > SIZE_VALUE_DIGITS ||
			    value[strspn(value, DIGITS)] != '\0') {
				smtpd_reply(
				    s, "501 5.5.4 Bad message size syntax");
				return SMTPD_CMD_ERROR;
			}
			size = UINT64_MAX;
		}
		if (size > (uint64_t)var_message_size_limit) {
			smtpd_reject(s, "MAIL", NULL,
			    "552 5.3.4 Message size exceeds fixed limit");
			return SMTPD_CMD_ERROR;
		}
		return SMTPD_CMD_OK;
	}
	if (s->esmtp && str_eq_ci(param, "BODY=8BITMIME")) {
		s->body = "8BITMIME";
		return SMTPD_CMD_OK;
	}
	if (s->esmtp && str_eq_ci(param, "BODY=7BIT")) {
		s->body = "7BIT";
		return SMTPD_CMD_OK;
	}
	smtpd_reply(
	    s, "555 5.5.4 Unsupported option: %.*s", SMTPD_ECHO_MAX, param);
	return SMTPD_CMD_ERROR;
}

static int
cmd_mail(struct smtpd_session *s, const char *arg)
{
	char *fields[SMTPD_PARAMS_MAX], *copy;
	const char *params, *error;
	int n, i, ret = SMTPD_CMD_OK;

	if (s->state == SMTPD_STATE_MAIL) {
		smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
		return SMTPD_CMD_ERROR;
	}
	if (!str_prefix_ci(arg, strlen(arg), MAIL_FROM)) {
		smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return SMTPD_CMD_ERROR;
	}
	if (addr_parse_path(arg + PREFIX_LEN(MAIL_FROM), 1, &s->sender, &params,
	        &error) < 0) {
		smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
		return SMTPD_CMD_ERROR;
	}
	copy = xstrdup(params);
	n = str_split(copy, " ", fields, SMTPD_PARAMS_MAX);
	if (n < 0) {
		smtpd_reply(s, "501 5.5.4 Error: too many parameters");
		ret = SMTPD_CMD_ERROR;
	}
	for (i = 0; i < n && ret == SMTPD_CMD_OK; i++)
		ret = cmd_mail_param(s, fields[i]);
	free(copy);
	if (ret != SMTPD_CMD_OK) {
		smtpd_cmd_reset(s);
		return ret;
	}
	smtpd_set_state(s, SMTPD_STATE_MAIL);
	smtpd_reply(s, "250 2.1.0 Ok");
	return SMTPD_CMD_OK;
}

/* getpwnam() tells "no such user" by NULL with one of these errnos. */
static int
cmd_no_such_user(int err)
{
	return err == 0 || err == ENOENT || err == ESRCH || err == EBADF ||
	       err == EPERM;
}

/* May addr receive mail here? Replies itself when not. */
static int
cmd_rcpt_check(struct smtpd_session *s, const char *addr)
{
	struct resolve_result r;
	const char *error;
	char *key;
	int ret = SMTPD_CMD_ERROR, found;

	if (resolve_address(addr, &r) < 0) {
		smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
		return SMTPD_CMD_ERROR;
	}
	switch (r.class) {
	case RESOLVE_REMOTE:
		smtpd_reject(s, "RCPT", addr,
		    "554 5.7.1 <%s>: Relay access denied", addr);
		break;
	case RESOLVE_LOCAL:
		/* RFC 5321 4.5.1: postmaster is always accepted. */
		if (strcmp(r.local, SMTPD_POSTMASTER) == 0) {
			ret = SMTPD_CMD_OK;
			break;
		}
		errno = 0;
		if (getpwnam(r.local) != NULL) {
			ret = SMTPD_CMD_OK;
		} else if (cmd_no_such_user(errno)) {
			smtpd_reject(s, "RCPT", addr,
			    "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table",
			    addr);
		} else {
			msg_warn("getpwnam %s: %s",
			    log_sanitize(r.local, ADDR_LOCAL_MAX),
			    strerror(errno));
			smtpd_reject(s, "RCPT", addr,
			    "451 4.3.0 Error: temporary lookup failure");
		}
		break;
	case RESOLVE_VIRTUAL:
		if (strcmp(r.local, SMTPD_POSTMASTER) == 0) {
			ret = SMTPD_CMD_OK;
			break;
		}
		key = xasprintf("%s@%s", r.local, r.domain);
		found =
		    userdb_list_contains(var_virtual_mailbox_list, key, &error);
		free(key);
		if (found > 0) {
			ret = SMTPD_CMD_OK;
		} else if (found == 0) {
			smtpd_reject(s, "RCPT", addr,
			    "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table",
			    addr);
		} else {
			msg_warn("%s", error);
			smtpd_reject(s, "RCPT", addr,
			    "451 4.3.0 Error: temporary lookup failure");
		}
		break;
	}
	resolve_free(&r);
	return ret;
}

static int
cmd_rcpt(struct smtpd_session *s, const char *arg)
{
	const char *params, *error;
	char *addr;

	if (!str_prefix_ci(arg, strlen(arg), RCPT_TO)) {
		smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return SMTPD_CMD_ERROR;
	}
	if (addr_parse_path(
	        arg + PREFIX_LEN(RCPT_TO), 0, &addr, &params, &error) < 0) {
		smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
		return SMTPD_CMD_ERROR;
	}
	if (*params != '\0') {
		smtpd_reply(s, "555 5.5.4 Unsupported option: %.*s",
		    SMTPD_ECHO_MAX, params);
		free(addr);
		return SMTPD_CMD_ERROR;
	}
	s->rcpt_tried++;
	if (s->nrcpt >= var_smtpd_recipient_limit) {
		smtpd_reject(
		    s, "RCPT", addr, "452 4.5.3 Error: too many recipients");
		free(addr);
		return SMTPD_CMD_ERROR;
	}
	if (cmd_rcpt_check(s, addr) < 0) {
		free(addr);
		return SMTPD_CMD_ERROR;
	}
	/* Duplicates (also in another case) are removed by cleanup. */
	if (s->nrcpt == s->rcpt_alloc) {
		s->rcpt_alloc = s->rcpt_alloc ? 2 * s->rcpt_alloc : 8;
		s->rcpts = xrealloc(
		    s->rcpts, (size_t)s->rcpt_alloc * sizeof(*s->rcpts));
	}
	s->rcpts[s->nrcpt++] = addr;
	smtpd_reply(s, "250 2.1.5 Ok");
	return SMTPD_CMD_OK;
}

static int
cmd_data(struct smtpd_session *s, const char *arg)
{
	struct cleanup_envelope env;
	const char *error;

	(void)arg;
	if (s->nrcpt == 0) {
		if (s->rcpt_tried > 0)
			smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
		else
			smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
		return SMTPD_CMD_ERROR;
	}
	env.sender = s->sender;
	env.rcpts = s->rcpts;
	env.nrcpt = s->nrcpt;
	env.client_name = s->name;
	env.client_addr = s->addr;
	env.client_rfc_addr = s->rfc_addr;
	env.helo = s->helo;
	env.protocol = s->esmtp ? "ESMTP" : "SMTP";
	env.body = s->body;
	if (cleanup_open(&s->cleanup, &env, &error) < 0) {
		msg_error("%s", error);
		smtpd_reply(s, "451 4.3.0 Error: queue file write error");
		return SMTPD_CMD_ERROR;
	}
	msg_info("%s: client=%s[%s]", s->cleanup.w.id, s->name, s->addr);
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_set_state(s, SMTPD_STATE_DATA);
	return SMTPD_CMD_PENDING;
}

static int
cmd_rset(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_cmd_reset(s);
	if (s->state != SMTPD_STATE_CONNECTED)
		smtpd_set_state(s, SMTPD_STATE_HELO);
	smtpd_reply(s, "250 2.0.0 Ok");
	return SMTPD_CMD_OK;
}

static int
cmd_noop(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_reply(s, "250 2.0.0 Ok");
	return SMTPD_CMD_OK;
}

static int
cmd_vrfy(struct smtpd_session *s, const char *arg)
{
	if (*arg == '\0') {
		smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
		return SMTPD_CMD_ERROR;
	}
	smtpd_reply(
	    s, "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery");
	return SMTPD_CMD_OK;
}

static int
cmd_help(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_reply(s,
	    "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
	return SMTPD_CMD_OK;
}

static int
cmd_quit(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_reply(s, "221 2.0.0 Bye");
	smtpd_set_state(s, SMTPD_STATE_QUIT);
	return SMTPD_CMD_OK;
}

static const struct smtpd_cmd smtpd_cmds[] = {
    {"HELO", cmd_helo, 0},
    {"EHLO", cmd_ehlo, 0},
    {"MAIL", cmd_mail, SMTPD_CMD_FLAG_HELO},
    {"RCPT", cmd_rcpt, SMTPD_CMD_FLAG_MAIL},
    {"DATA", cmd_data, SMTPD_CMD_FLAG_MAIL | SMTPD_CMD_FLAG_NOARG},
    {"RSET", cmd_rset, SMTPD_CMD_FLAG_NOARG},
    {"NOOP", cmd_noop, 0},
    {"VRFY", cmd_vrfy, 0},
    {"HELP", cmd_help, 0},
    {"QUIT", cmd_quit, SMTPD_CMD_FLAG_NOARG},
};
#define SMTPD_NCMDS       (sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]))
#define SMTPD_CMD_UNKNOWN SMTPD_NCMDS /* counter of unknown commands */

_Static_assert(SMTPD_NCMDS < SMTPD_CMD_COUNTERS, "too few counters");

void
smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len)
{
	const struct smtpd_cmd *cmd = NULL;
	size_t i, name_len;
	char *arg;
	int ret;

	/* Trailing spaces are not part of the last argument. */
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	name_len = len > 0 ? strcspn(line, " ") : 0;
	if (memchr(line, '\0', len) != NULL)
		name_len = 0; /* a NUL byte is never a command */
	for (i = 0; i < SMTPD_NCMDS && name_len > 0; i++) {
		if (strlen(smtpd_cmds[i].name) == name_len &&
		    strncasecmp(line, smtpd_cmds[i].name, name_len) == 0) {
			cmd = &smtpd_cmds[i];
			break;
		}
	}
	if (cmd == NULL) {
		s->last_cmd = "UNKNOWN";
		s->cmd_total[SMTPD_CMD_UNKNOWN]++;
		s->errors++;
		smtpd_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	for (arg = line + name_len; *arg == ' '; arg++)
		;
	s->last_cmd = cmd->name;
	s->cmd_total[i]++;
	if ((cmd->flags & SMTPD_CMD_FLAG_HELO) &&
	    s->state == SMTPD_STATE_CONNECTED) {
		smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		ret = SMTPD_CMD_ERROR;
	} else if ((cmd->flags & SMTPD_CMD_FLAG_MAIL) &&
	           s->state != SMTPD_STATE_MAIL) {
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
		ret = SMTPD_CMD_ERROR;
	} else if ((cmd->flags & SMTPD_CMD_FLAG_NOARG) && *arg != '\0') {
		smtpd_reply(s, "501 5.5.4 Syntax: %s", cmd->name);
		ret = SMTPD_CMD_ERROR;
	} else {
		ret = cmd->handler(s, arg);
	}
	if (ret == SMTPD_CMD_OK)
		s->cmd_ok[i]++;
	else if (ret == SMTPD_CMD_ERROR)
		s->errors++;
}

void
smtpd_cmd_data_ok(struct smtpd_session *s)
{
	size_t i;

	for (i = 0; i < SMTPD_NCMDS; i++)
		if (smtpd_cmds[i].handler == cmd_data)
			s->cmd_ok[i]++;
}

/* "name=N", or "name=ok/total" when some failed, like Postfix. */
static void
cmd_count(struct buf *out, const char *name, unsigned ok, unsigned total)
{
	char lower[SMTPD_CMD_NAME_MAX];
	size_t i;
	int r;

	if (total == 0)
		return;
	for (i = 0; i + 1 < sizeof(lower) && name[i] != '\0'; i++)
		lower[i] = (char)(name[i] | 0x20);
	lower[i] = '\0';
	if (ok == total)
		r = buf_printf(out, " %s=%u", lower, total);
	else
		r = buf_printf(out, " %s=%u/%u", lower, ok, total);
	if (r < 0)
		msg_panic("smtpd: command counters over %zu bytes", out->max);
}

void
smtpd_cmd_counts(const struct smtpd_session *s, struct buf *out)
{
	size_t i;

	for (i = 0; i < SMTPD_NCMDS; i++)
		cmd_count(
		    out, smtpd_cmds[i].name, s->cmd_ok[i], s->cmd_total[i]);
	cmd_count(out, "UNKNOWN", 0, s->cmd_total[SMTPD_CMD_UNKNOWN]);
}
