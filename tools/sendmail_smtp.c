/* SPDX-License-Identifier: MIT */
/*
 * sendmail -bs: a small SMTP server on stdin and stdout (RFC 5321) for
 * programs that speak SMTP to a local command. Each message goes
 * through terndrop, so the same checks apply as to sendmail's other
 * modes, and 250 is sent only after terndrop has the message safely in
 * maildrop/. Replies carry RFC 3463 enhanced status codes (RFC 2034).
 * Commands are bounded by smtpd_command_line_limit, the session by
 * smtpd_timeout per read and smtpd_hard_error_limit errors.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/smtp_param.h"
#include "sendmail.h"

#define SM_SMTP_EXTS (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN)

enum sm_smtp_state {
	SM_SMTP_IDLE,	/* no transaction */
	SM_SMTP_MAIL,	/* MAIL given */
	SM_SMTP_RCPT,	/* at least one RCPT */
};

struct sm_smtp {
	enum sm_smtp_state state;
	struct sm_env *env;
	char *sender, *envid, *ret;
	char notify[64];
	int notify_set;
	int errors;
	struct sm_in in;
};

struct sm_smtp_cmd {
	const char *name;
	void (*fn)(struct sm_smtp *s, char *arg);
};

static void MTA_PRINTF(1, 2)
sm_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	if (fflush(stdout) != 0)
		exit(EX_IOERR);
}

static void
sm_smtp_set_state(struct sm_smtp *s, enum sm_smtp_state st)
{
	msg_debug("smtp state %d -> %d", (int)s->state, (int)st);
	s->state = st;
}

static void
sm_smtp_reset(struct sm_smtp *s)
{
	free(s->sender);
	free(s->envid);
	s->sender = s->envid = NULL;
	s->ret = NULL;
	s->notify_set = 0;
	sm_env_free_rcpts(s->env);
	sm_smtp_set_state(s, SM_SMTP_IDLE);
}

static void
sm_smtp_error(struct sm_smtp *s)
{
	if (++s->errors >= var_smtpd_hard_error_limit) {
		sm_reply("421 4.7.0 %s Error: too many errors", var_myhostname);
		exit(EX_PROTOCOL);
	}
}

static void
cmd_helo(struct sm_smtp *s, char *arg)
{
	(void)arg;
	sm_smtp_reset(s);
	sm_reply("250 %s", var_myhostname);
}

static void
cmd_ehlo(struct sm_smtp *s, char *arg)
{
	(void)arg;
	sm_smtp_reset(s);
	sm_reply("250-%s\r\n250-SIZE %lld\r\n250-8BITMIME\r\n250-DSN\r\n"
	         "250 ENHANCEDSTATUSCODES",
	    var_myhostname, var_message_size_limit);
}

static void
cmd_mail(struct sm_smtp *s, char *arg)
{
	struct smtp_mail_params mp;
	struct smtp_param_error perr;
	const char *params, *err;
	char *addr;

	if (s->state != SM_SMTP_IDLE) {
		sm_reply("503 5.5.1 Error: nested MAIL command");
		sm_smtp_error(s);
		return;
	}
	if (!str_prefix_ci(arg, strlen(arg), "FROM:")) {
		sm_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
		sm_smtp_error(s);
		return;
	}
	if (addr_parse_path(arg + 5, ADDR_EMPTY_OK | ADDR_UTF8_OK, &addr,
	        &params, &err) < 0) {
		sm_reply("501 5.1.7 Bad sender address syntax (%s)", err);
		sm_smtp_error(s);
		return;
	}
	if (smtp_mail_params_parse(params, SM_SMTP_EXTS, &mp, &perr) < 0) {
		sm_reply("%d %s %s", perr.code, perr.status, perr.text);
		smtp_mail_params_free(&mp);
		free(addr);
		sm_smtp_error(s);
		return;
	}
	if (mp.has_size && mp.size > (uint64_t)var_message_size_limit) {
		sm_reply("552 5.3.4 Message size exceeds fixed limit");
		smtp_mail_params_free(&mp);
		free(addr);
		return;
	}
	s->sender = addr;
	s->envid = mp.envid;
	mp.envid = NULL;
	s->ret = mp.ret == SMTP_RET_FULL   ? "full"
	    : mp.ret == SMTP_RET_HDRS ? "hdrs"
	                              : NULL;
	smtp_mail_params_free(&mp);
	sm_smtp_set_state(s, SM_SMTP_MAIL);
	sm_reply("250 2.1.0 Ok");
}

/* terndrop's -N form of a NOTIFY mask. */
static void
sm_notify_text(unsigned mask, char *out, size_t n)
{
	snprintf(out, n, "%s%s%s%s",
	    (mask & QRCPT_NOTIFY_NEVER) ? "never" : "",
	    (mask & QRCPT_NOTIFY_SUCCESS) ? "success," : "",
	    (mask & QRCPT_NOTIFY_DELAY) ? "delay," : "",
	    (mask & QRCPT_NOTIFY_FAILURE) ? "failure," : "");
	n = strlen(out);
	if (n > 0 && out[n - 1] == ',')
		out[n - 1] = '\0';
}

static void
cmd_rcpt(struct sm_smtp *s, char *arg)
{
	struct smtp_rcpt_params rp;
	struct smtp_param_error perr;
	const char *params, *err;
	char *addr, notify[64] = "";

	if (s->state == SM_SMTP_IDLE) {
		sm_reply("503 5.5.1 Error: need MAIL command");
		sm_smtp_error(s);
		return;
	}
	if (!str_prefix_ci(arg, strlen(arg), "TO:")) {
		sm_reply("501 5.5.4 Syntax: RCPT TO:<address>");
		sm_smtp_error(s);
		return;
	}
	if (addr_parse_path(arg + 3, ADDR_UTF8_OK, &addr, &params, &err) < 0) {
		sm_reply("501 5.1.3 Bad recipient address syntax (%s)", err);
		sm_smtp_error(s);
		return;
	}
	if (smtp_rcpt_params_parse(params, SM_SMTP_EXTS, &rp, &perr) < 0) {
		sm_reply("%d %s %s", perr.code, perr.status, perr.text);
		smtp_rcpt_params_free(&rp);
		free(addr);
		sm_smtp_error(s);
		return;
	}
	if (rp.notify != 0)
		sm_notify_text(rp.notify, notify, sizeof(notify));
	smtp_rcpt_params_free(&rp);
	/* terndrop takes one NOTIFY for the whole message. */
	if (s->state == SM_SMTP_RCPT && strcmp(notify, s->notify) != 0) {
		sm_reply("452 4.5.3 Error: one NOTIFY value per message here; "
		         "send the rest in another");
		free(addr);
		return;
	}
	if (s->env->nrcpt >= SM_RCPT_MAX) {
		sm_reply("452 4.5.3 Error: too many recipients");
		free(addr);
		return;
	}
	snprintf(s->notify, sizeof(s->notify), "%s", notify);
	s->notify_set = notify[0] != '\0';
	sm_env_add_rcpts(s->env, addr, strlen(addr));
	free(addr);
	sm_smtp_set_state(s, SM_SMTP_RCPT);
	sm_reply("250 2.1.5 Ok");
}

static void
cmd_data(struct sm_smtp *s, char *arg)
{
	struct sm_drop d;
	char id[64];
	int status, ended;

	(void)arg;
	if (s->state != SM_SMTP_RCPT) {
		sm_reply(s->state == SM_SMTP_IDLE
		        ? "503 5.5.1 Error: need MAIL command"
		        : "554 5.5.1 Error: no valid recipients");
		sm_smtp_error(s);
		return;
	}
	s->env->sender = s->sender[0] != '\0' ? s->sender : "<>";
	s->env->envid = s->envid;
	s->env->ret = s->ret;
	s->env->notify = s->notify_set ? s->notify : NULL;
	sm_drop_start(&d, s->env);
	sm_reply("354 End data with <CR><LF>.<CR><LF>");
	ended = sm_copy_lines(&s->in, &d, SM_DOT_SMTP, 1);
	if (!ended) {
		sm_drop_abort(&d);
		exit(EX_PROTOCOL);
	}
	if (d.too_big) {
		sm_drop_abort(&d);
		sm_reply("552 5.3.4 Error: message file too big");
	} else {
		status = sm_drop_finish(&d, id, sizeof(id));
		if (status == EX_OK)
			sm_reply("250 2.0.0 Ok: queued as %s", id);
		else if (status == EX_NOPERM)
			sm_reply("550 5.7.1 Error: not authorized (see "
			         "terndrop's message)");
		else if (status == EX_DATAERR)
			sm_reply("554 5.6.0 Error: message refused (see "
			         "terndrop's message)");
		else
			sm_reply("451 4.3.0 Error: queue file write error");
	}
	s->env->sender = s->env->envid = s->env->ret = s->env->notify = NULL;
	sm_smtp_reset(s);
}

static void
cmd_rset(struct sm_smtp *s, char *arg)
{
	(void)arg;
	sm_smtp_reset(s);
	sm_reply("250 2.0.0 Ok");
}

static void
cmd_noop(struct sm_smtp *s, char *arg)
{
	(void)s;
	(void)arg;
	sm_reply("250 2.0.0 Ok");
}

static void
cmd_vrfy(struct sm_smtp *s, char *arg)
{
	(void)s;
	(void)arg;
	sm_reply("252 2.0.0 Send some mail, I'll try my best");
}

static void
cmd_help(struct sm_smtp *s, char *arg)
{
	(void)s;
	(void)arg;
	sm_reply("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP "
	         "VRFY HELP QUIT");
}

static void
cmd_quit(struct sm_smtp *s, char *arg)
{
	(void)arg;
	sm_smtp_reset(s);
	sm_reply("221 2.0.0 Bye");
	exit(EX_OK);
}

static const struct sm_smtp_cmd sm_smtp_cmds[] = {
    {"HELO", cmd_helo},
    {"EHLO", cmd_ehlo},
    {"MAIL", cmd_mail},
    {"RCPT", cmd_rcpt},
    {"DATA", cmd_data},
    {"RSET", cmd_rset},
    {"NOOP", cmd_noop},
    {"VRFY", cmd_vrfy},
    {"HELP", cmd_help},
    {"QUIT", cmd_quit},
    {NULL, NULL},
};

int
sm_smtp(struct sm_env *e)
{
	static struct sm_smtp s;
	const struct sm_smtp_cmd *c;
	size_t max = (size_t)var_smtpd_command_line_limit, len, vlen;
	char *line = xmalloc(max + 2), *arg;
	int r;

	s.env = e;
	sm_reply("220 %s ESMTP tern (sendmail -bs)", var_myhostname);
	for (;;) {
		r = sm_in_line(&s.in, line, max, &len);
		if (r == 0)
			break;
		if (r < 0) {
			sm_reply("500 5.5.2 Error: line too long");
			sm_smtp_error(&s);
			continue;
		}
		if (smtp_command_split(line, len, &vlen, &arg) < 0) {
			sm_reply("500 5.5.2 Error: bad syntax");
			sm_smtp_error(&s);
			continue;
		}
		for (c = sm_smtp_cmds; c->name != NULL; c++)
			if (vlen == strlen(c->name) &&
			    str_prefix_ci(line, vlen, c->name))
				break;
		if (c->name == NULL) {
			sm_reply("500 5.5.2 Error: command not recognized");
			sm_smtp_error(&s);
			continue;
		}
		c->fn(&s, arg);
	}
	sm_smtp_reset(&s);
	free(line);
	return EX_OK;
}
