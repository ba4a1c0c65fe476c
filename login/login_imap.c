/* SPDX-License-Identifier: MIT */
/*
 * The IMAP dialogue before login (RFC 9051 and RFC 3501, not
 * authenticated state), as Dovecot's imap-login speaks it: the greeting
 * with the capabilities, CAPABILITY, NOOP, LOGOUT, ID (RFC 2971),
 * STARTTLS (RFC 9051 6.2.1; input pipelined after it is refused, RFC
 * 3207 5's rule), LOGIN (atoms, quoted strings, literals, LITERAL+ of RFC
 * 7888) and AUTHENTICATE PLAIN and LOGIN (lib/mail/sasl.h) with SASL-IR
 * (RFC 4959) and "*" to cancel. LOGINDISABLED, and no AUTH=, before TLS
 * unless plaintext is allowed (disable_plaintext_auth,
 * login_trusted_networks). Response codes of RFC 5530:
 * [AUTHENTICATIONFAILED], [PRIVACYREQUIRED], [UNAVAILABLE]. A login is
 * not answered here: spawn starts imapd with the command's tag, and
 * imapd answers "tag OK [CAPABILITY ...] Logged in".
 *
 * Input is not line-based (literals), so this protocol takes raw input
 * (login_protocol.input) through lib/mail/imap_parser.h, except the
 * lines of an AUTHENTICATE exchange, which are read here.
 *
 * Limits: a command line of IMAP_LOGIN_LINE_MAX octets (as Dovecot's
 * imap-login, a fixed bound: nothing before login needs more than an
 * AUTHENTICATE with an initial response), literals of
 * IMAP_LOGIN_LITERAL_MAX, LOGIN_BAD_COMMANDS_MAX bad commands and
 * LOGIN_AUTH_FAILURES_MAX failed logins, $imap_login_timeout of silence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/imap_parser.h"
#include "mail/login_proto.h"
#include "mail/params.h"
#include "mail/sasl.h"
#include "login.h"

/* Room for AUTHENTICATE with an initial response, or LOGIN with a user
 * name and a password quoted with every octet escaped. */
#define IMAP_LOGIN_LINE_MAX    8192
/* A literal holds a user name or a password. */
#define IMAP_LOGIN_LITERAL_MAX SASL_PASSWORD_MAX
/* ID (RFC 2971 3.3: at most 30 field-value pairs) is the command with
 * the most arguments. */
#define IMAP_LOGIN_ARGS_MAX    64
#define IMAP_LOGIN_DEPTH_MAX   2
/* RFC 2971 3.3: fields of at most 30 octets, values of 1024. */
#define IMAP_ID_FIELD_MAX      30
#define IMAP_ID_VALUE_MAX      1024
#define IMAP_ID_PAIRS_MAX      30
/* A line of an AUTHENTICATE exchange: the response and its CRLF. */
#define IMAP_AUTH_LINE_MAX     (SASL_RESPONSE_MAX + 2)

_Static_assert(IMAP_LOGIN_LINE_MAX >
                   SASL_RESPONSE_MAX + 2 * (SASL_USER_MAX + SASL_PASSWORD_MAX),
    "a LOGIN or an AUTHENTICATE must fit on a line");

/* The capabilities every client sees (RFC 9051 7.2.2), and those
 * imapd adds after login. */
#define IMAP_CAPS_BASE "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE"

static const char imap_plaintext_refused[] =
    "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
    "non-secure (SSL/TLS) connections.";

struct imap_login {
	struct imap_parser *parser;
	struct sasl *sasl; /* AUTHENTICATE under way */
	/* The tag of the login or AUTHENTICATE in progress. */
	char *tag;
};

static long long
imap_idle_timeout(void)
{
	return var_imap_login_timeout;
}

static void
imap_tag_set(struct imap_login *p, const char *tag)
{
	if (tag == p->tag)
		return;
	free(p->tag);
	p->tag = tag != NULL ? xstrdup(tag) : NULL;
}

static void
imap_sasl_end(struct imap_login *p)
{
	if (p->sasl != NULL) {
		sasl_free(p->sasl);
		free(p->sasl);
		p->sasl = NULL;
	}
}

/* The capability list for this connection now. */
static const char *
imap_caps(struct login_client *c)
{
	static char caps[256];

	snprintf(caps, sizeof(caps), "%s%s%s", IMAP_CAPS_BASE,
	    login_client_tls_available(c) ? " STARTTLS" : "",
	    login_client_plaintext_allowed(c) ? " AUTH=PLAIN AUTH=LOGIN"
	                                      : " LOGINDISABLED");
	return caps;
}

static void
imap_start(struct login_client *c)
{
	struct imap_login *p = xcalloc(1, sizeof(*p));
	struct imap_parser_limits lim;

	memset(&lim, 0, sizeof(lim));
	lim.max_line = IMAP_LOGIN_LINE_MAX;
	lim.max_literal = IMAP_LOGIN_LITERAL_MAX;
	lim.max_args = IMAP_LOGIN_ARGS_MAX;
	lim.max_depth = IMAP_LOGIN_DEPTH_MAX;
	lim.literal_plus = 1;
	p->parser = imap_parser_create(&lim);
	login_client_set_proto(c, p);
	login_client_reply(
	    c, "* OK [CAPABILITY %s] %s", imap_caps(c), var_login_greeting);
}

static void
imap_free(struct login_client *c)
{
	struct imap_login *p = login_client_proto(c);

	if (p == NULL)
		return;
	imap_parser_free(&p->parser);
	imap_sasl_end(p);
	free(p->tag);
	free(p);
	login_client_set_proto(c, NULL);
}

/* A bad command: answered, counted; too many end the connection. */
static void
imap_bad(struct login_client *c, const char *tag, const char *text)
{
	login_client_reply(c, "%s BAD %s", tag != NULL ? tag : "*", text);
	if (login_client_bad_command(c)) {
		login_client_reply(c, "* BYE Too many invalid IMAP commands.");
		login_client_quit(c);
	}
}

static void
imap_login(struct login_client *c, struct imap_login *p, const char *tag,
    const char *method, const char *user, const char *password)
{
	struct login_request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.mech = LOGIN_MECH_PLAIN;
	r.user = user;
	r.password = password;
	r.tag = tag;
	imap_tag_set(p, tag);
	login_client_login(c, &r);
}

/* RFC 2971: "ID NIL" or "ID (field value ...)"; the answer names tern. */
static void
imap_id(struct login_client *c, const struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->args;
	size_t i;

	if (cmd->count != 1 ||
	    (a->type != IMAP_ARG_NIL && a->type != IMAP_ARG_LIST)) {
		imap_bad(c, cmd->tag, "Invalid ID arguments.");
		return;
	}
	if (a->type == IMAP_ARG_LIST) {
		if (a->count % 2 != 0 || a->count > 2 * IMAP_ID_PAIRS_MAX) {
			imap_bad(c, cmd->tag, "Invalid ID arguments.");
			return;
		}
		for (i = 0; i < a->count; i++) {
			const struct imap_arg *e = &a->list[i];

			if (e->type != IMAP_ARG_STRING &&
			    e->type != IMAP_ARG_LITERAL &&
			    (i % 2 == 0 || e->type != IMAP_ARG_NIL)) {
				imap_bad(c, cmd->tag, "Invalid ID arguments.");
				return;
			}
			if (e->len > (i % 2 == 0 ? IMAP_ID_FIELD_MAX
			                         : IMAP_ID_VALUE_MAX)) {
				imap_bad(c, cmd->tag, "Invalid ID arguments.");
				return;
			}
		}
	}
	login_client_reply(c, "* ID (\"name\" \"tern\")");
	login_client_reply(c, "%s OK ID completed.", cmd->tag);
}

static void
imap_starttls(struct login_client *c, struct imap_login *p,
    const struct imap_command *cmd)
{
	if (login_client_tls_active(c)) {
		imap_bad(c, cmd->tag, "TLS is already active.");
		return;
	}
	if (!login_client_tls_available(c)) {
		imap_bad(c, cmd->tag, "TLS support isn't enabled.");
		return;
	}
	if (login_client_starttls(c) < 0) {
		login_client_reply(c,
		    "%s BAD STARTTLS must be the last "
		    "command of a pipelined group.",
		    cmd->tag);
		login_client_quit(c);
		return;
	}
	login_client_reply(c, "%s OK Begin TLS negotiation now.", cmd->tag);
	imap_parser_reset(p->parser);
}

/* LOGIN userid password: astrings, of the sizes SASL allows. */
static void
imap_cmd_login(struct login_client *c, struct imap_login *p,
    const struct imap_command *cmd)
{
	const char *user, *password;
	size_t ulen, plen;

	if (cmd->count != 2 || !imap_arg_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_astring(&cmd->args[1], &password, &plen)) {
		imap_bad(c, cmd->tag, "Invalid arguments.");
		return;
	}
	if (!login_client_plaintext_allowed(c)) {
		login_client_reply(
		    c, "%s %s", cmd->tag, imap_plaintext_refused);
		return;
	}
	if (ulen == 0 || ulen > SASL_USER_MAX || plen == 0 ||
	    plen > SASL_PASSWORD_MAX) {
		/* As a wrong password: auth would refuse it alike. */
		login_client_reply(c,
		    "%s NO [AUTHENTICATIONFAILED] Authentication failed.",
		    cmd->tag);
		return;
	}
	imap_login(c, p, cmd->tag, "PLAIN", user, password);
}

/* Where an AUTHENTICATE exchange leads: a challenge, a login, an error. */
static void
imap_auth_progress(
    struct login_client *c, struct imap_login *p, enum sasl_status st)
{
	const char *tag = p->tag != NULL ? p->tag : "*";

	switch (st) {
	case SASL_CHALLENGE:
		/* RFC 9051 7.5: "+" and a space, even before nothing. */
		login_client_reply(c, "+ %s", p->sasl->challenge);
		return;
	case SASL_DONE:
		imap_login(c, p, tag, sasl_mech_name(p->sasl->mech),
		    buf_cstr(&p->sasl->user), buf_cstr(&p->sasl->password));
		imap_sasl_end(p);
		return;
	case SASL_ERROR:
		break;
	}
	switch (p->sasl->error) {
	case SASL_ERROR_CANCELLED:
		login_client_reply(
		    c, "%s BAD Authentication aborted by client.", tag);
		break;
	case SASL_ERROR_DENIED:
		login_client_reply(c,
		    "%s NO [AUTHENTICATIONFAILED] Authentication failed.", tag);
		break;
	default:
		imap_bad(c, tag, "Invalid base64 data in continued response.");
		break;
	}
	imap_sasl_end(p);
}

static void
imap_authenticate(struct login_client *c, struct imap_login *p,
    const struct imap_command *cmd)
{
	enum sasl_mech mech;
	const char *initial = NULL;
	size_t len = 0;

	if (cmd->count < 1 || cmd->count > 2 ||
	    cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->count == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_bad(c, cmd->tag, "Invalid arguments.");
		return;
	}
	if (!login_client_plaintext_allowed(c)) {
		login_client_reply(
		    c, "%s %s", cmd->tag, imap_plaintext_refused);
		return;
	}
	if (sasl_mech_parse(cmd->args[0].str, &mech) < 0) {
		login_client_reply(
		    c, "%s NO Unsupported authentication mechanism.", cmd->tag);
		return;
	}
	if (cmd->count == 2) {
		initial = cmd->args[1].str;
		len = cmd->args[1].len;
	}
	imap_tag_set(p, cmd->tag);
	p->sasl = xcalloc(1, sizeof(*p->sasl));
	sasl_init(p->sasl, mech);
	imap_auth_progress(c, p, sasl_start(p->sasl, initial, len));
}

static void
imap_command(struct login_client *c, struct imap_login *p,
    const struct imap_command *cmd)
{
	const char *name = cmd->name;

	if (str_eq_ci(name, "CAPABILITY")) {
		if (cmd->count != 0) {
			imap_bad(c, cmd->tag, "CAPABILITY takes no arguments.");
			return;
		}
		login_client_reply(c, "* CAPABILITY %s", imap_caps(c));
		login_client_reply(c,
		    "%s OK Pre-login capabilities listed, post-login "
		    "capabilities have more.",
		    cmd->tag);
	} else if (str_eq_ci(name, "NOOP")) {
		login_client_reply(c, "%s OK NOOP completed.", cmd->tag);
	} else if (str_eq_ci(name, "LOGOUT")) {
		login_client_reply(c, "* BYE Logging out");
		login_client_reply(c, "%s OK Logout completed.", cmd->tag);
		login_client_quit(c);
	} else if (str_eq_ci(name, "ID")) {
		imap_id(c, cmd);
	} else if (str_eq_ci(name, "STARTTLS")) {
		imap_starttls(c, p, cmd);
	} else if (str_eq_ci(name, "LOGIN")) {
		imap_cmd_login(c, p, cmd);
	} else if (str_eq_ci(name, "AUTHENTICATE")) {
		imap_authenticate(c, p, cmd);
	} else {
		imap_bad(c, cmd->tag, "Unknown command.");
	}
}

/* One line of an AUTHENTICATE exchange, when a whole one is there. */
static void
imap_auth_input(struct login_client *c, struct imap_login *p)
{
	const char *data, *lf;
	size_t len, n;

	data = login_client_input(c, &len);
	lf = memchr(
	    data, '\n', len < IMAP_AUTH_LINE_MAX ? len : IMAP_AUTH_LINE_MAX);
	if (lf == NULL) {
		if (len >= IMAP_AUTH_LINE_MAX) {
			imap_sasl_end(p);
			login_client_reply(c, "%s BAD Response too long.",
			    p->tag != NULL ? p->tag : "*");
			login_client_quit(c);
		}
		return;
	}
	n = (size_t)(lf - data);
	{
		char line[IMAP_AUTH_LINE_MAX + 1];
		size_t l = n > 0 && data[n - 1] == '\r' ? n - 1 : n;

		memcpy(line, data, l);
		line[l] = '\0';
		login_client_input_consume(c, n + 1);
		imap_auth_progress(c, p, sasl_step(p->sasl, line, l));
		explicit_bzero(line, sizeof(line));
	}
}

static void
imap_input(struct login_client *c)
{
	struct imap_login *p = login_client_proto(c);
	const char *data, *text, *tag;
	size_t len, used;
	int fatal;

	if (p->sasl != NULL) {
		imap_auth_input(c, p);
		return;
	}
	data = login_client_input(c, &len);
	switch (imap_parser_feed(p->parser, data, len, &used)) {
	case IMAP_PARSE_MORE:
		login_client_input_consume(c, used);
		return;
	case IMAP_PARSE_CONTINUE:
		login_client_input_consume(c, used);
		login_client_reply(c, "+ OK");
		return;
	case IMAP_PARSE_ERROR:
		login_client_input_consume(c, used);
		text = imap_parser_error(p->parser, &tag, &fatal);
		if (fatal) {
			login_client_reply(
			    c, "%s BAD %s", tag != NULL ? tag : "*", text);
			login_client_reply(c, "* BYE %s", text);
			login_client_quit(c);
			return;
		}
		imap_bad(c, tag, text);
		return;
	case IMAP_PARSE_COMMAND:
		/* Consumed first: a login hands spawn what follows. */
		login_client_input_consume(c, used);
		imap_command(c, p, imap_parser_command(p->parser));
		/* The command may have held a password. */
		imap_parser_reset(p->parser);
		return;
	}
}

/* RFC 5530 response codes, as Dovecot gives them. */
static const char *const imap_failed_text[LOGIN_RESULT_COUNT] = {
    [LOGIN_RESULT_FAIL] = "NO [AUTHENTICATIONFAILED] Authentication failed.",
    [LOGIN_RESULT_TEMPFAIL] =
        "NO [UNAVAILABLE] Temporary authentication failure.",
    [LOGIN_RESULT_LIMIT] =
        "NO [UNAVAILABLE] Maximum number of connections exceeded.",
    [LOGIN_RESULT_DELAY] =
        "NO [UNAVAILABLE] Logged in too recently, try again later.",
    [LOGIN_RESULT_UNAVAILABLE] =
        "NO [UNAVAILABLE] Login service unavailable, try again later.",
};

static void
imap_login_failed(struct login_client *c, enum login_result r)
{
	struct imap_login *p = login_client_proto(c);

	login_client_reply(c, "%s %s", p->tag != NULL ? p->tag : "*",
	    login_result_text(imap_failed_text, r));
	if (r == LOGIN_RESULT_FAIL &&
	    login_client_failures(c) >= LOGIN_AUTH_FAILURES_MAX) {
		login_client_reply(c, "* BYE Too many authentication failures.");
		login_client_quit(c);
	}
	imap_tag_set(p, NULL);
}

static const char *const imap_bye_text[LOGIN_BYE_COUNT] = {
    [LOGIN_BYE_TIMEOUT] = "* BYE Disconnected for inactivity.",
    [LOGIN_BYE_SHUTDOWN] = "* BYE Server shutting down.",
    [LOGIN_BYE_TOO_MANY] = "* BYE Too many connections from your address.",
};

const struct login_protocol login_imap = {
    .name = "imap",
    .log_name = "imap-login",
    .line_max = IMAP_LOGIN_LINE_MAX,
    .idle_timeout = imap_idle_timeout,
    .start = imap_start,
    .input = imap_input,
    .login_failed = imap_login_failed,
    .bye_text = imap_bye_text,
    .free = imap_free,
};
