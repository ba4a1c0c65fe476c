/* SPDX-License-Identifier: MIT */
/*
 * The SMTP commands smtpd understands, as one table {name, handler,
 * flags}, and the transaction rules around them: RFC 5321 (HELO, EHLO,
 * MAIL, RCPT, DATA, RSET, NOOP, VRFY, EXPN, HELP, QUIT and their order)
 * with the extensions advertised in EHLO and really implemented:
 * PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
 * ENHANCEDSTATUSCODES (RFC 2034; every reply carries an RFC 3463 code),
 * DSN (RFC 3461), SMTPUTF8 (RFC 6531), CHUNKING and BINARYMIME (RFC
 * 3030), STARTTLS (RFC 3207), AUTH (RFC 4954, in smtpd_auth.c) and
 * ETRN (RFC 1985: a part-time site asks for its deferred mail now).
 *
 * HELO, MAIL and RCPT run the restrictions of smtpd_check.c (relay
 * control among them); then RCPT expands the recipient by
 * virtual_alias_maps as cleanup will (an alias makes it known), looks
 * virtual_mailbox_maps and relay_recipient_maps (a backup MX's valid
 * recipients) up in-process, and asks proxymap whether a system user or
 * a listed virtual mailbox exists, so no slow lookup ever blocks the
 * event loop.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"
#include "smtpd.h"

#define SMTPD_CMD_FLAG_NOARG   0x1 /* takes no argument */
#define SMTPD_CMD_FLAG_HELO    0x2 /* needs HELO/EHLO first */
#define SMTPD_CMD_FLAG_MAIL    0x4 /* needs a MAIL transaction */
#define SMTPD_CMD_FLAG_PRE_TLS 0x8 /* allowed before a required STARTTLS */

/* Handler results: the reply is queued in every case. */
#define SMTPD_CMD_OK       0
#define SMTPD_CMD_ERROR    (-1)
#define SMTPD_CMD_PENDING  1 /* the outcome comes later (content, lookup) */
/* cmd_rcpt_alias: no alias decides, the mailbox check does. */
#define SMTPD_RCPT_MAILBOX 2

/* Client text echoed back in a reply. */
#define SMTPD_ECHO_MAX     64
#define MAIL_FROM          "FROM:"
#define RCPT_TO            "TO:"
#define PREFIX_LEN(p)      (sizeof(p) - 1)
/* Longest command name in the table, for counter names. */
#define SMTPD_CMD_NAME_MAX 10
/* RFC 5321 4.5.1: every domain we accept mail for has this mailbox. */
#define SMTPD_POSTMASTER   "postmaster"
/* Postfix's rule: without queue_minfree, keep room for 1.5 messages. */
#define SMTPD_MINFREE_NUM  3
#define SMTPD_MINFREE_DEN  2

static int cmd_tls_required(const struct smtpd_session *s);

struct smtpd_cmd {
	const char *name;
	int (*handler)(struct smtpd_session *s, const char *arg);
	unsigned flags;
};

static void
cmd_free_rcpts(struct smtpd_session *s)
{
	int i;

	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i].addr);
		free(s->rcpts[i].orcpt);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->rcpt_alloc = s->rcpt_tried = 0;
}

void
smtpd_cmd_reset(struct smtpd_session *s)
{
	free(s->sender);
	s->sender = NULL;
	smtp_mail_params_free(&s->mail);
	memset(&s->mail, 0, sizeof(s->mail));
	cmd_free_rcpts(s);
	free(s->pending_rcpt);
	s->pending_rcpt = NULL;
	resolve_free(&s->pending_route);
	smtp_rcpt_params_free(&s->pending_params);
	s->bdat = 0;
	s->bdat_size = 0;
	s->data_start_ms = 0;
	s->tx_hold = s->tx_discard = 0;
	cleanup_free(&s->cleanup);
}

static void
cmd_etrn_forget(struct smtpd_session *s)
{
	free(s->etrn_domain);
	s->etrn_domain = NULL;
	s->etrn_subdomains = 0;
}

void
smtpd_cmd_free(struct smtpd_session *s)
{
	smtpd_cmd_reset(s);
	cmd_etrn_forget(s);
	smtpd_auth_free(s);
}

/* RFC 3207 4.2 and RFC 4954: a greeting forgets the transaction. */
static void
cmd_forget_greeting(struct smtpd_session *s)
{
	smtpd_cmd_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->ext = 0;
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
	cmd_forget_greeting(s);
	s->helo = xstrdup(arg);
	s->esmtp = esmtp;
	smtpd_set_state(s, SMTPD_STATE_HELO);
	return SMTPD_CMD_OK;
}

static int
cmd_tls_offered(const struct smtpd_session *s)
{
	return smtpd_tls != NULL && !s->tls_active &&
	       strcmp(var_smtpd_tls_security_level, "none") != 0;
}

static void
cmd_greet_reply(struct smtpd_session *s)
{
	if (!s->esmtp) {
		smtpd_reply(s, "250 %s", var_myhostname);
		return;
	}
	s->ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME |
	         SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN;
	smtpd_reply(s, "250-%s", var_myhostname);
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %lld", var_message_size_limit);
	smtpd_reply(s, "250-ETRN");
	if (cmd_tls_offered(s))
		smtpd_reply(s, "250-STARTTLS");
	if (smtpd_auth_offered(s)) {
		s->ext |= SMTP_EXT_AUTH;
		smtpd_reply(s, "250-AUTH PLAIN LOGIN");
	}
	smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250-DSN");
	smtpd_reply(s, "250-SMTPUTF8");
	smtpd_reply(s, "250-BINARYMIME");
	smtpd_reply(s, "250 CHUNKING");
}

/* A rejected greeting leaves the session as if none had come. */
static void
cmd_greet_refused(struct smtpd_session *s)
{
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	smtpd_set_state(s, SMTPD_STATE_CONNECTED);
}

static void
cmd_greet_checked(struct smtpd_session *s, int result)
{
	s->waiting = 0;
	if (result == SMTPD_CHECK_PASS) {
		cmd_greet_reply(s);
		smtpd_cmd_ok(s, s->esmtp ? "EHLO" : "HELO");
	} else {
		cmd_greet_refused(s);
		s->errors++;
	}
	smtpd_session_resume(s);
}

static int
cmd_greet_check(struct smtpd_session *s)
{
	switch (smtpd_check(s, SMTPD_CHECK_HELO, cmd_greet_checked)) {
	case SMTPD_CHECK_PASS:
		cmd_greet_reply(s);
		return SMTPD_CMD_OK;
	case SMTPD_CHECK_PENDING:
		s->waiting = 1;
		return SMTPD_CMD_PENDING;
	default:
		cmd_greet_refused(s);
		return SMTPD_CMD_ERROR;
	}
}

static int
cmd_helo(struct smtpd_session *s, const char *arg)
{
	if (cmd_greet(s, arg, 0) < 0)
		return SMTPD_CMD_ERROR;
	return cmd_greet_check(s);
}

static int
cmd_ehlo(struct smtpd_session *s, const char *arg)
{
	if (cmd_greet(s, arg, 1) < 0)
		return SMTPD_CMD_ERROR;
	return cmd_greet_check(s);
}

/* 1 if s has a byte outside ASCII. */
static int
cmd_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/*
 * Postfix's smtpd_check_queue: refuse mail early when the queue file
 * system cannot take it, instead of after the whole body (RFC 5321
 * 4.5.3.1.10: 452 4.3.1). Only the announced SIZE is known yet.
 */
static int
cmd_queue_space(struct smtpd_session *s, uint64_t size)
{
	struct statvfs fs;
	uint64_t avail, need;
	const char *dir =
	    *var_queue_directory != '\0' ? var_queue_directory : "/";

	if (statvfs(dir, &fs) < 0) {
		msg_warn("statvfs %s: %m", dir);
		return 0; /* the write will tell */
	}
	avail = (uint64_t)fs.f_bavail * fs.f_frsize;
	need = (uint64_t)var_message_size_limit * SMTPD_MINFREE_NUM /
	       SMTPD_MINFREE_DEN;
	if ((uint64_t)var_queue_minfree > need)
		need = (uint64_t)var_queue_minfree;
	if (avail >= need && avail - need >= size)
		return 0;
	msg_warn("not enough space in the queue file system: %llu bytes "
	         "free, %llu needed",
	    (unsigned long long)avail, (unsigned long long)(need + size));
	smtpd_reject(s, "MAIL", NULL, "452 4.3.1 Insufficient system storage");
	return -1;
}

/* The last steps of MAIL: accept, or refuse and forget the sender. */
static void
cmd_mail_end(struct smtpd_session *s, int ok)
{
	if (ok) {
		smtpd_set_state(s, SMTPD_STATE_MAIL);
		smtpd_reply(s, "250 2.1.0 Ok");
	} else {
		smtpd_cmd_reset(s);
	}
}

static void
cmd_mail_checked(struct smtpd_session *s, int result)
{
	s->waiting = 0;
	cmd_mail_end(s, result == SMTPD_CHECK_PASS);
	if (result == SMTPD_CHECK_PASS)
		smtpd_cmd_ok(s, "MAIL");
	else
		s->errors++;
	smtpd_session_resume(s);
}

/* Sender restrictions, when they are not delayed to RCPT. */
static int
cmd_mail_check(struct smtpd_session *s)
{
	switch (smtpd_check(s, SMTPD_CHECK_MAIL, cmd_mail_checked)) {
	case SMTPD_CHECK_PASS:
		cmd_mail_end(s, 1);
		return SMTPD_CMD_OK;
	case SMTPD_CHECK_PENDING:
		s->waiting = 1;
		return SMTPD_CMD_PENDING;
	default:
		cmd_mail_end(s, 0);
		return SMTPD_CMD_ERROR;
	}
}

/* anvil's count of this client's messages in the time unit. */
static void
cmd_mail_rate_done(const struct attr_list *reply, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	long long rate = 0;
	int r;

	s->waiting = 0;
	if (reply == NULL || attr_get_int(reply, "rate", &rate) < 0)
		msg_warn("anvil: %s; not limiting the message rate of %s",
		    error != NULL ? error : "malformed reply", s->addr);
	if (rate > var_smtpd_client_message_rate_limit) {
		msg_warn("message rate limit exceeded by %s[%s]: %lld in %llds "
		         "(limit %lld)",
		    s->name, s->addr, rate, var_anvil_rate_time_unit,
		    var_smtpd_client_message_rate_limit);
		smtpd_reject(s, "MAIL", NULL,
		    "450 4.7.1 Error: too much mail from %s", s->addr);
		smtpd_cmd_reset(s);
		s->errors++;
	} else if ((r = cmd_mail_check(s)) != SMTPD_CMD_PENDING) {
		if (r == SMTPD_CMD_OK)
			smtpd_cmd_ok(s, "MAIL");
		else
			s->errors++;
	}
	smtpd_session_resume(s);
}

/* smtpd_client_message_rate_limit, counted by anvil over processes. */
static int
cmd_mail_rate(struct smtpd_session *s)
{
	if (var_smtpd_client_message_rate_limit == 0 || !s->is_inet ||
	    smtpd_check_event_exempt(s->addr))
		return cmd_mail_check(s);
	smtpd_anvil_request(s, "message", cmd_mail_rate_done);
	return SMTPD_CMD_PENDING;
}

static int
cmd_mail(struct smtpd_session *s, const char *arg)
{
	struct smtp_param_error perr;
	const char *params, *error;
	unsigned flags = ADDR_EMPTY_OK;

	if (s->state == SMTPD_STATE_MAIL) {
		smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
		return SMTPD_CMD_ERROR;
	}
	if (var_smtpd_auth_required && s->auth_user == NULL) {
		smtpd_reject(
		    s, "MAIL", NULL, "530 5.7.0 Authentication required");
		return SMTPD_CMD_ERROR;
	}
	if (!str_prefix_ci(arg, strlen(arg), MAIL_FROM)) {
		smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return SMTPD_CMD_ERROR;
	}
	if (s->ext & SMTP_EXT_SMTPUTF8)
		flags |= ADDR_UTF8_OK;
	if (addr_parse_path(arg + PREFIX_LEN(MAIL_FROM), flags, &s->sender,
	        &params, &error) < 0) {
		if (error == addr_err_needs_utf8)
			smtpd_reply(s, "553 5.6.7 Error: non-ASCII sender "
			               "address needs SMTPUTF8");
		else
			smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
		return SMTPD_CMD_ERROR;
	}
	if (smtp_mail_params_parse(
	        params, s->esmtp ? s->ext : 0, &s->mail, &perr) < 0) {
		smtpd_reply(s, "%d %s %s", perr.code, perr.status, perr.text);
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	}
	if (!s->mail.smtputf8 && cmd_8bit(s->sender)) {
		smtpd_reply(s,
		    "553 5.6.7 Error: non-ASCII sender address needs SMTPUTF8");
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	}
	if (s->mail.has_size &&
	    s->mail.size > (uint64_t)var_message_size_limit) {
		smtpd_reject(s, "MAIL", NULL,
		    "552 5.3.4 Message size exceeds fixed limit");
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	}
	/* Submission hygiene: an authenticated client sends as itself or
	 * as what smtpd_sender_login_maps gives its login. */
	switch (smtpd_check_sender_login(s)) {
	case 0:
		smtpd_reject(s, "MAIL", NULL,
		    "553 5.7.1 <%s>: Sender address rejected: not owned by "
		    "user %s",
		    s->sender, s->auth_user);
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	case -1:
		smtpd_reject(s, "MAIL", NULL,
		    "451 4.3.0 <%s>: Temporary lookup failure", s->sender);
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	}
	if (cmd_queue_space(s, s->mail.has_size ? s->mail.size : 0) < 0) {
		smtpd_cmd_reset(s);
		return SMTPD_CMD_ERROR;
	}
	return cmd_mail_rate(s);
}

/* Takes the pending recipient into the transaction. */
static void
cmd_rcpt_accept(struct smtpd_session *s)
{
	struct smtpd_rcpt *r;

	/* Duplicates (also in another case) are removed by cleanup. */
	if (s->nrcpt == s->rcpt_alloc) {
		s->rcpt_alloc = s->rcpt_alloc ? 2 * s->rcpt_alloc : 8;
		s->rcpts = xrealloc(
		    s->rcpts, (size_t)s->rcpt_alloc * sizeof(*s->rcpts));
	}
	r = &s->rcpts[s->nrcpt++];
	r->addr = s->pending_rcpt;
	r->orcpt = s->pending_params.orcpt;
	r->notify = s->pending_params.notify;
	s->pending_rcpt = NULL;
	resolve_free(&s->pending_route);
	s->pending_params.orcpt = NULL;
	smtpd_reply(s, "250 2.1.5 Ok");
}

static void
cmd_rcpt_drop(struct smtpd_session *s)
{
	free(s->pending_rcpt);
	s->pending_rcpt = NULL;
	resolve_free(&s->pending_route);
	smtp_rcpt_params_free(&s->pending_params);
	s->errors++;
}

/* proxymap's answer about the pending recipient. */
static void
cmd_rcpt_lookup_done(
    const struct attr_list *reply, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	const char *status = reply != NULL ? attr_get(reply, "status") : NULL;
	const char *addr = s->pending_rcpt;

	s->waiting = 0;
	if (status != NULL && strcmp(status, "found") == 0) {
		cmd_rcpt_accept(s);
		smtpd_cmd_ok(s, "RCPT");
	} else if (status != NULL && strcmp(status, "notfound") == 0) {
		smtpd_reject(s, "RCPT", addr,
		    "550 5.1.1 <%s>: Recipient address rejected: User unknown "
		    "in %s",
		    addr, s->pending_table);
		cmd_rcpt_drop(s);
	} else {
		msg_warn("recipient lookup: %s",
		    error != NULL ? error : "lookup failure");
		smtpd_reject(s, "RCPT", addr,
		    "451 4.3.0 <%s>: Temporary lookup failure", addr);
		cmd_rcpt_drop(s);
	}
	smtpd_session_resume(s);
}

/* Asks proxymap about table/key; the answer resumes the session. */
static int
cmd_rcpt_lookup(struct smtpd_session *s, const char *table, const char *key,
    const char *what)
{
	struct buf *f = attr_client_frame(smtpd_proxymap);

	if (attr_put_str(f, "request", "lookup") < 0 ||
	    attr_put_str(f, "table", table) < 0 ||
	    attr_put_str(f, "key", key) < 0) {
		/* An address is at most 256 bytes: this is a bug. */
		msg_panic("proxymap request does not fit a frame");
	}
	s->pending_table = what;
	s->waiting = 1;
	attr_client_send(smtpd_proxymap, cmd_rcpt_lookup_done, s);
	return SMTPD_CMD_PENDING;
}

/* smtpd_reject_unlisted_recipient, or reject_unlisted_recipient named. */
static int
cmd_rcpt_unlisted(const struct smtpd_session *s)
{
	return var_smtpd_reject_unlisted_recipient || s->check_unlisted;
}

/*
 * virtual_alias_maps, as cleanup will apply them (Postfix's
 * check_rcpt_maps: an alias makes any recipient known, whatever its
 * domain's mailboxes; an alias domain has nothing else). A recipient
 * whose expansion fails is refused here, so cleanup never refuses a
 * whole message for it. SMTPD_CMD_OK (accepted), SMTPD_CMD_ERROR
 * (refused), or SMTPD_RCPT_MAILBOX: the mailbox check decides.
 */
static int
cmd_rcpt_alias(struct smtpd_session *s)
{
	const struct resolve_result *r = &s->pending_route;
	const char *addr = s->pending_rcpt, *error;
	struct virtual_alias_expansion x;
	int ret = SMTPD_RCPT_MAILBOX;
	char *reply;

	if (!virtual_alias_active() && r->class != RESOLVE_ALIAS)
		return SMTPD_RCPT_MAILBOX;
	virtual_alias_expand(addr, &x);
	if (x.status != VIRTUAL_ALIAS_OK) {
		msg_warn("virtual alias expansion of <%s>: %s",
		    log_sanitize(addr, SMTPD_ECHO_MAX), x.detail);
		reply = virtual_alias_reply(addr, &x);
		smtpd_reject(s, "RCPT", addr, "%s", reply);
		free(reply);
		cmd_rcpt_drop(s);
		ret = SMTPD_CMD_ERROR;
	} else if (x.aliased ||
	           (r->class == RESOLVE_ALIAS && !cmd_rcpt_unlisted(s))) {
		cmd_rcpt_accept(s);
		ret = SMTPD_CMD_OK;
	} else if (r->class == RESOLVE_ALIAS) {
		/* The resolver takes a domain table failure for an alias
		 * domain: a temporary answer then, not "unknown". */
		if (virtual_alias_domain(r->domain, &error) < 0)
			smtpd_reject(s, "RCPT", addr,
			    "451 4.3.0 <%s>: Temporary lookup failure", addr);
		else
			smtpd_reject(s, "RCPT", addr,
			    "550 5.1.1 <%s>: Recipient address rejected: User "
			    "unknown in virtual alias table",
			    addr);
		cmd_rcpt_drop(s);
		ret = SMTPD_CMD_ERROR;
	}
	virtual_alias_expansion_free(&x);
	return ret;
}

/* virtual_mailbox_maps, looked up in-process like the restriction
 * tables (opened before any chroot). */
static int
cmd_rcpt_mailbox_map(struct smtpd_session *s, const char *key)
{
	const char *addr = s->pending_rcpt, *error;
	char *maildir = NULL, *top = NULL;
	int tempfail, r;

	r = virtual_mailbox_find(key, &maildir, &top, &tempfail, &error);
	free(maildir);
	free(top);
	if (r > 0) {
		cmd_rcpt_accept(s);
		return SMTPD_CMD_OK;
	}
	if (r == 0) {
		smtpd_reject(s, "RCPT", addr,
		    "550 5.1.1 <%s>: Recipient address rejected: User unknown "
		    "in virtual mailbox table",
		    addr);
	} else {
		msg_warn("%s", error);
		/* A mailbox path local could not use: the admin's to fix,
		 * the sender's to retry. */
		smtpd_reject(s, "RCPT", addr,
		    tempfail ? "451 4.3.0 <%s>: Temporary lookup failure"
		             : "451 4.3.5 <%s>: Recipient address rejected: "
		               "Server configuration error",
		    addr);
	}
	cmd_rcpt_drop(s);
	return SMTPD_CMD_ERROR;
}

/* A relay domain's recipient: relay_recipient_maps decide (in-process,
 * like the restriction tables). */
static int
cmd_rcpt_relay(struct smtpd_session *s)
{
	const char *addr = s->pending_rcpt, *error = NULL;
	int r = smtpd_check_relay_recipient(addr, &error);

	if (r > 0) {
		cmd_rcpt_accept(s);
		return SMTPD_CMD_OK;
	}
	if (r == 0) {
		smtpd_reject(s, "RCPT", addr,
		    "550 5.1.1 <%s>: Recipient address rejected: User unknown "
		    "in relay recipient table",
		    addr);
	} else {
		msg_warn("relay_recipient_maps: %s",
		    error != NULL ? error : "lookup failure");
		smtpd_reject(s, "RCPT", addr,
		    "451 4.3.0 <%s>: Temporary lookup failure", addr);
	}
	cmd_rcpt_drop(s);
	return SMTPD_CMD_ERROR;
}

/* After the restrictions: does the mailbox exist? Replies now or later. */
static int
cmd_rcpt_exists(struct smtpd_session *s)
{
	const struct resolve_result *r = &s->pending_route;
	char *key;
	int ret;

	if ((ret = cmd_rcpt_alias(s)) != SMTPD_RCPT_MAILBOX)
		return ret;
	if (r->class == RESOLVE_RELAY && cmd_rcpt_unlisted(s))
		return cmd_rcpt_relay(s);
	if ((r->class != RESOLVE_LOCAL && r->class != RESOLVE_VIRTUAL) ||
	    strcmp(r->local, SMTPD_POSTMASTER) == 0 || !cmd_rcpt_unlisted(s)) {
		/* RFC 5321 4.5.1: postmaster is always accepted; relayed
		 * recipients passed smtpd_relay_restrictions. */
		cmd_rcpt_accept(s);
		return SMTPD_CMD_OK;
	}
	if (r->class == RESOLVE_LOCAL)
		return cmd_rcpt_lookup(
		    s, "local_recipient", r->local, "local recipient table");
	key = xasprintf("%s@%s", r->local, r->domain);
	if (virtual_mailbox_active())
		ret = cmd_rcpt_mailbox_map(s, key);
	else
		ret = cmd_rcpt_lookup(
		    s, "virtual_mailbox", key, "virtual mailbox table");
	free(key);
	return ret;
}

static void
cmd_rcpt_checked(struct smtpd_session *s, int result)
{
	s->waiting = 0;
	if (result != SMTPD_CHECK_PASS)
		cmd_rcpt_drop(s);
	else if (cmd_rcpt_exists(s) == SMTPD_CMD_OK)
		smtpd_cmd_ok(s, "RCPT");
	smtpd_session_resume(s);
}

/* The restrictions, then the mailbox. */
static int
cmd_rcpt_check(struct smtpd_session *s)
{
	if (resolve_address(s->pending_rcpt, &s->pending_route) < 0) {
		smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
		cmd_rcpt_drop(s);
		return SMTPD_CMD_ERROR;
	}
	s->check_unlisted = 0;
	switch (smtpd_check(s, SMTPD_CHECK_RCPT, cmd_rcpt_checked)) {
	case SMTPD_CHECK_PASS:
		return cmd_rcpt_exists(s);
	case SMTPD_CHECK_PENDING:
		s->waiting = 1;
		return SMTPD_CMD_PENDING;
	default:
		cmd_rcpt_drop(s);
		return SMTPD_CMD_ERROR;
	}
}

static int
cmd_rcpt(struct smtpd_session *s, const char *arg)
{
	struct smtp_param_error perr;
	const char *params, *error;
	unsigned flags = s->mail.smtputf8 ? ADDR_UTF8_OK : 0;
	char *addr;

	if (s->bdat) {
		smtpd_reply(s, "503 5.5.1 Error: BDAT transaction in progress");
		return SMTPD_CMD_ERROR;
	}
	if (!str_prefix_ci(arg, strlen(arg), RCPT_TO)) {
		smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return SMTPD_CMD_ERROR;
	}
	if (addr_parse_path(
	        arg + PREFIX_LEN(RCPT_TO), flags, &addr, &params, &error) < 0) {
		if (error == addr_err_needs_utf8)
			smtpd_reply(s, "553 5.6.7 Error: non-ASCII recipient "
			               "address needs SMTPUTF8");
		else
			smtpd_reply(
			    s, "501 5.1.3 Bad recipient address syntax");
		return SMTPD_CMD_ERROR;
	}
	if (smtp_rcpt_params_parse(
	        params, s->esmtp ? s->ext : 0, &s->pending_params, &perr) < 0) {
		smtpd_reply(s, "%d %s %s", perr.code, perr.status, perr.text);
		smtp_rcpt_params_free(&s->pending_params);
		free(addr);
		return SMTPD_CMD_ERROR;
	}
	s->rcpt_tried++;
	s->pending_rcpt = addr;
	if (s->nrcpt >= var_smtpd_recipient_limit) {
		smtpd_reject(
		    s, "RCPT", addr, "452 4.5.3 Error: too many recipients");
		cmd_rcpt_drop(s);
		return SMTPD_CMD_ERROR;
	}
	return cmd_rcpt_check(s);
}

static int
cmd_data(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	if (s->bdat) {
		smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return SMTPD_CMD_ERROR;
	}
	if (s->nrcpt == 0) {
		if (s->rcpt_tried > 0)
			smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
		else
			smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
		return SMTPD_CMD_ERROR;
	}
	if (s->mail.body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 3: binary content only comes in BDAT. */
		smtpd_reply(s, "503 5.5.1 Error: BODY=BINARYMIME needs BDAT");
		return SMTPD_CMD_ERROR;
	}
	if (smtpd_session_open_file(s) < 0)
		return SMTPD_CMD_ERROR;
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_set_state(s, SMTPD_STATE_DATA);
	smtpd_session_content(s);
	return SMTPD_CMD_PENDING;
}

/*
 * BDAT size [LAST] (RFC 3030). The chunk follows the command at once and
 * is read whatever the reply, so a refused BDAT still has its bytes taken
 * (and dropped) to stay in step. A size that cannot be parsed, or one no
 * message could have, ends the session: where the chunk ends is unknown,
 * or reading it would only burn time.
 */
static int
cmd_bdat(struct smtpd_session *s, const char *arg)
{
	uint64_t size;
	int last, refused = 1;

	if (smtp_bdat_parse(arg, &size, &last) < 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
		smtpd_set_state(s, SMTPD_STATE_QUIT);
		return SMTPD_CMD_ERROR;
	}
	if (size > (uint64_t)var_message_size_limit ||
	    s->bdat_size + size > (uint64_t)var_message_size_limit) {
		smtpd_reject(s, "BDAT", NULL,
		    "552 5.3.4 Message size exceeds fixed limit");
		smtpd_set_state(s, SMTPD_STATE_QUIT);
		return SMTPD_CMD_ERROR;
	}
	/* The checks of the dispatcher, here: the chunk is read anyway. */
	if (s->state == SMTPD_STATE_CONNECTED)
		smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (cmd_tls_required(s))
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	else if (s->state != SMTPD_STATE_MAIL)
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
	else if (s->nrcpt == 0)
		smtpd_reply(s, s->rcpt_tried > 0
		                   ? "554 5.5.1 Error: no valid recipients"
		                   : "503 5.5.1 Error: need RCPT command");
	else if (s->bdat || smtpd_session_open_file(s) == 0)
		refused = 0;
	s->bdat_left = size;
	s->bdat_skip = refused;
	s->bdat_resume = s->state;
	if (!refused) {
		s->bdat = 1;
		s->bdat_last = last;
		s->bdat_size += size;
	}
	smtpd_set_state(s, SMTPD_STATE_BDAT);
	smtpd_session_content(s);
	return refused ? SMTPD_CMD_ERROR : SMTPD_CMD_PENDING;
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

/* Recognised, not offered (RFC 5321 4.2.4: 502). */
static int
cmd_unimplemented(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_reply(s, "502 5.5.1 Error: command not implemented");
	return SMTPD_CMD_ERROR;
}

/* qmgr's answer to the flush: it has the request, or it is not there. */
static void
cmd_etrn_done(const struct attr_list *reply, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	const char *status =
	    reply != NULL ? attr_get(reply, FLUSH_ATTR_STATUS) : NULL;

	s->waiting = 0;
	if (status != NULL && strcmp(status, FLUSH_STATUS_OK) == 0) {
		smtpd_reply(s, "250 2.0.0 Queuing started");
		smtpd_cmd_ok(s, "ETRN");
	} else {
		msg_warn("qmgr: %s; ETRN %s from %s[%s] not queued",
		    error != NULL ? error : "malformed reply", s->etrn_domain,
		    s->name, s->addr);
		smtpd_reply(s,
		    "458 4.3.0 Unable to queue messages for node <%s>",
		    s->etrn_domain);
		s->errors++;
	}
	cmd_etrn_forget(s);
	smtpd_session_resume(s);
}

/*
 * The restrictions let it pass: fast_flush_domains decides (RFC 1985
 * 459: node not allowed), then qmgr is asked and its answer replies.
 */
static int
cmd_etrn_flush(struct smtpd_session *s)
{
	struct buf *f;

	if (!resolve_domain_listed(var_fast_flush_domains, s->etrn_domain)) {
		smtpd_reply(
		    s, "459 4.7.1 <%s>: service unavailable", s->etrn_domain);
		cmd_etrn_forget(s);
		return SMTPD_CMD_ERROR;
	}
	f = attr_client_frame(smtpd_qmgr);
	if (flush_frame_put(f, s->etrn_domain, s->etrn_subdomains) < 0)
		msg_panic("ETRN: flush request does not fit a frame");
	s->waiting = 1;
	attr_client_send(smtpd_qmgr, cmd_etrn_done, s);
	return SMTPD_CMD_PENDING;
}

static void
cmd_etrn_checked(struct smtpd_session *s, int result)
{
	int r = SMTPD_CMD_ERROR;

	s->waiting = 0;
	if (result == SMTPD_CHECK_PASS)
		r = cmd_etrn_flush(s);
	else
		cmd_etrn_forget(s);
	if (r == SMTPD_CMD_ERROR)
		s->errors++;
	if (r != SMTPD_CMD_PENDING)
		smtpd_session_resume(s);
}

/*
 * ETRN domain | @domain | #queue (RFC 1985 5): deferred mail for the
 * domain (with '@' also below it) is delivered now. As in Postfix a
 * queue name is taken for a domain, and ETRN inside a mail transaction
 * is refused rather than mixed into it.
 */
static int
cmd_etrn(struct smtpd_session *s, const char *arg)
{
	const char *domain = arg;
	int subdomains = 0;

	if (s->state == SMTPD_STATE_MAIL) {
		smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return SMTPD_CMD_ERROR;
	}
	if (*arg == '\0') {
		smtpd_reply(s, "501 5.5.4 Syntax: ETRN domain");
		return SMTPD_CMD_ERROR;
	}
	if (*domain == '@' || *domain == '#') {
		subdomains = *domain == '@';
		domain++;
	}
	if (!flush_domain_valid(domain)) {
		smtpd_reply(s, "501 5.5.4 Error: invalid parameter syntax");
		return SMTPD_CMD_ERROR;
	}
	msg_info("ETRN %s from %s[%s]", log_sanitize(arg, ADDR_PATH_MAX),
	    s->name, s->addr);
	cmd_etrn_forget(s);
	s->etrn_domain = xstrdup(domain);
	s->etrn_subdomains = subdomains;
	switch (smtpd_check(s, SMTPD_CHECK_ETRN, cmd_etrn_checked)) {
	case SMTPD_CHECK_PASS:
		return cmd_etrn_flush(s);
	case SMTPD_CHECK_PENDING:
		s->waiting = 1;
		return SMTPD_CMD_PENDING;
	default:
		cmd_etrn_forget(s);
		return SMTPD_CMD_ERROR;
	}
}

static int
cmd_help(struct smtpd_session *s, const char *arg)
{
	(void)arg;
	smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	               "RSET NOOP VRFY ETRN HELP QUIT STARTTLS AUTH");
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

/*
 * STARTTLS (RFC 3207). Anything the client sent behind the command in
 * plaintext is thrown away, never taken as if it came inside TLS (the
 * CVE-2011-0411 command injection), and the session starts over: the
 * client must greet again (4.2).
 */
static int
cmd_starttls(struct smtpd_session *s, const char *arg)
{
	size_t junk = stream_buffered(&s->st);

	(void)arg;
	if (s->tls_active) {
		smtpd_reply(s, "554 5.5.1 Error: TLS already active");
		return SMTPD_CMD_ERROR;
	}
	if (!cmd_tls_offered(s)) {
		smtpd_reply(s, "502 5.5.1 Error: command not implemented");
		return SMTPD_CMD_ERROR;
	}
	if (junk > 0) {
		msg_warn("%s[%s]: discarding %zu bytes of plaintext sent "
		         "after STARTTLS",
		    s->name, s->addr, junk);
		stream_consume(&s->st, junk);
	}
	smtpd_reply(s, "220 2.0.0 Ready to start TLS");
	cmd_forget_greeting(s);
	smtpd_auth_free(s);
	smtpd_set_state(s, SMTPD_STATE_CONNECTED);
	s->tls_starting = 1;
	return SMTPD_CMD_OK;
}

static const struct smtpd_cmd smtpd_cmds[] = {
    {"HELO", cmd_helo, SMTPD_CMD_FLAG_PRE_TLS},
    {"EHLO", cmd_ehlo, SMTPD_CMD_FLAG_PRE_TLS},
    {"STARTTLS", cmd_starttls,
        SMTPD_CMD_FLAG_HELO | SMTPD_CMD_FLAG_NOARG | SMTPD_CMD_FLAG_PRE_TLS},
    {"AUTH", smtpd_auth_cmd, SMTPD_CMD_FLAG_HELO},
    {"MAIL", cmd_mail, SMTPD_CMD_FLAG_HELO},
    {"RCPT", cmd_rcpt, SMTPD_CMD_FLAG_MAIL},
    {"DATA", cmd_data, SMTPD_CMD_FLAG_MAIL | SMTPD_CMD_FLAG_NOARG},
    {"BDAT", cmd_bdat, SMTPD_CMD_FLAG_PRE_TLS},
    {"RSET", cmd_rset, SMTPD_CMD_FLAG_NOARG | SMTPD_CMD_FLAG_PRE_TLS},
    {"NOOP", cmd_noop, SMTPD_CMD_FLAG_PRE_TLS},
    {"VRFY", cmd_vrfy, 0},
    {"EXPN", cmd_unimplemented, 0},
    {"ETRN", cmd_etrn, SMTPD_CMD_FLAG_HELO},
    {"TURN", cmd_unimplemented, 0},
    {"HELP", cmd_help, SMTPD_CMD_FLAG_PRE_TLS},
    {"QUIT", cmd_quit, SMTPD_CMD_FLAG_NOARG | SMTPD_CMD_FLAG_PRE_TLS},
};
#define SMTPD_NCMDS       (sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]))
#define SMTPD_CMD_UNKNOWN SMTPD_NCMDS /* counter of unknown commands */

_Static_assert(SMTPD_NCMDS < SMTPD_CMD_COUNTERS, "too few counters");

/* RFC 3207 4: with TLS required, mail waits for it. */
static int
cmd_tls_required(const struct smtpd_session *s)
{
	return !s->tls_active &&
	       strcmp(var_smtpd_tls_security_level, "encrypt") == 0;
}

void
smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len)
{
	const struct smtpd_cmd *cmd = NULL;
	size_t i, name_len;
	char *arg = NULL;
	int ret;

	if (smtp_command_split(line, len, &name_len, &arg) < 0)
		name_len = 0; /* no command at all: nothing in the table */
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
	s->last_cmd = cmd->name;
	s->cmd_total[i]++;
	if (s->access_denied && cmd->handler != cmd_quit) {
		smtpd_reply(s, "503 5.7.0 Error: access denied for %s[%s]",
		    s->name, s->addr);
		ret = SMTPD_CMD_ERROR;
	} else if ((cmd->flags & SMTPD_CMD_FLAG_HELO) &&
	    s->state == SMTPD_STATE_CONNECTED) {
		smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		ret = SMTPD_CMD_ERROR;
	} else if (!(cmd->flags & SMTPD_CMD_FLAG_PRE_TLS) &&
	           cmd_tls_required(s)) {
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
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
smtpd_cmd_ok(struct smtpd_session *s, const char *name)
{
	size_t i;

	for (i = 0; i < SMTPD_NCMDS; i++)
		if (strcmp(smtpd_cmds[i].name, name) == 0)
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
