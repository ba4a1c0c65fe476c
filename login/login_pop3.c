/* SPDX-License-Identifier: MIT */
/*
 * The POP3 dialogue before login (RFC 1939 AUTHORIZATION state), as
 * pop3-login speaks it: the greeting (with an APOP timestamp when
 * pop3_enable_apop), CAPA (RFC 2449) with the capabilities of the
 * session to come, STLS (RFC 2595), USER/PASS and APOP (RFC 1939), AUTH
 * with SASL PLAIN and LOGIN (RFC 5034, lib/mail/sasl.h) and QUIT.
 * Response codes (RFC 2449 8, RFC 3206): [AUTH] for refused credentials
 * and plaintext refused before TLS, [SYS/TEMP] when the login cannot be
 * done now, [LOGIN-DELAY]. A login is not answered here: the session
 * greets ("+OK Logged in.") once spawn has started it.
 *
 * Limits: LOGIN_BAD_COMMANDS_MAX unknown or malformed commands, and
 * LOGIN_AUTH_FAILURES_MAX failed logins, end the connection (the last
 * reply still goes out); a line is at most POP3_LINE_MAX octets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/login_proto.h"
#include "mail/params.h"
#include "mail/pop3_cmd.h"
#include "mail/sasl.h"
#include "login.h"

/* RFC 1939 7: an MD5 digest in hexadecimal. */
#define POP3_APOP_DIGEST_LEN	32
/* "<pid.random.time@host>": host is at most 255 octets. */
#define POP3_APOP_STAMP_MAX	320
#define SECONDS_PER_DAY		86400

static const char pop3_plaintext_refused[] =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
    "(SSL/TLS) connections.";

struct pop3_login {
	char *user;		/* from USER, until PASS */
	char apop[POP3_APOP_STAMP_MAX];	/* the greeting's timestamp */
	struct sasl *sasl;	/* AUTH under way */
};

static long long
pop3_idle_timeout(void)
{
	return var_pop3_idle_timeout;
}

static void
pop3_forget_user(struct pop3_login *p)
{
	if (p->user != NULL) {
		explicit_bzero(p->user, strlen(p->user));
		free(p->user);
		p->user = NULL;
	}
}

static void
pop3_sasl_end(struct pop3_login *p)
{
	if (p->sasl != NULL) {
		sasl_free(p->sasl);
		free(p->sasl);
		p->sasl = NULL;
	}
}

static void
pop3_start(struct login_client *c)
{
	struct pop3_login *p = xcalloc(1, sizeof(*p));
	unsigned rnd = 0;

	login_client_set_proto(c, p);
	if (!var_pop3_enable_apop) {
		login_client_reply(c, "+OK %s", var_login_greeting);
		return;
	}
	/* RFC 1939 7: unique per greeting; the random part keeps it from
	 * being guessed ahead (a replayed digest is worthless). */
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)clock();
	snprintf(p->apop, sizeof(p->apop), "<%ld.%u.%lld@%s>", (long)getpid(),
	    rnd, (long long)time(NULL), var_myhostname);
	login_client_reply(c, "+OK %s %s", var_login_greeting, p->apop);
}

static void
pop3_free(struct login_client *c)
{
	struct pop3_login *p = login_client_proto(c);

	if (p == NULL)
		return;
	pop3_forget_user(p);
	pop3_sasl_end(p);
	free(p);
	login_client_set_proto(c, NULL);
}

/* RFC 2449 5: what the client can count on, before and after login. */
static void
pop3_capa(struct login_client *c)
{
	login_client_reply(c, "+OK Capability list follows");
	login_client_reply(c, "CAPA");
	login_client_reply(c, "TOP");
	login_client_reply(c, "UIDL");
	login_client_reply(c, "RESP-CODES");
	login_client_reply(c, "AUTH-RESP-CODE");
	login_client_reply(c, "PIPELINING");
	if (login_client_plaintext_allowed(c)) {
		login_client_reply(c, "USER");
		login_client_reply(c, "SASL %s", SASL_MECHANISMS);
	}
	if (login_client_tls_available(c))
		login_client_reply(c, "STLS");
	/* RFC 2449 6.7, 6.8: the server-wide values may be announced
	 * before login; the session states them again after. */
	if (var_pop3_delete_after > 0)
		login_client_reply(c, "EXPIRE %lld",
		    var_pop3_delete_after / SECONDS_PER_DAY);
	if (var_pop3_login_delay > 0)
		login_client_reply(c, "LOGIN-DELAY %lld", var_pop3_login_delay);
	login_client_reply(c, "IMPLEMENTATION tern");
	login_client_reply(c, ".");
}

static void
pop3_bad(struct login_client *c, const char *reply)
{
	login_client_reply(c, "%s", reply);
	if (login_client_bad_command(c)) {
		login_client_reply(c, "-ERR Too many bad commands.");
		login_client_quit(c);
	}
}

static void
pop3_stls(struct login_client *c)
{
	if (login_client_tls_active(c)) {
		pop3_bad(c, "-ERR TLS is already active.");
		return;
	}
	if (!login_client_tls_available(c)) {
		pop3_bad(c, "-ERR TLS support isn't enabled.");
		return;
	}
	if (login_client_starttls(c) < 0) {
		login_client_reply(c, "-ERR STLS must be the last command "
		                      "of a pipelined group.");
		login_client_quit(c);
		return;
	}
	login_client_reply(c, "+OK Begin TLS negotiation now.");
}

static void
pop3_login(struct login_client *c, const char *method, const char *user,
    const char *password)
{
	struct login_request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.mech = LOGIN_MECH_PLAIN;
	r.user = user;
	r.password = password;
	login_client_login(c, &r);
}

static void
pop3_user(struct login_client *c, struct pop3_login *p,
    const struct pop3_cmd *cmd)
{
	if (cmd->argc != 1) {
		pop3_bad(c, "-ERR USER takes one argument.");
		return;
	}
	if (strlen(cmd->argv[0]) > SASL_USER_MAX) {
		pop3_bad(c, "-ERR [AUTH] User name too long.");
		return;
	}
	pop3_forget_user(p);
	p->user = xstrdup(cmd->argv[0]);
	login_client_reply(c, "+OK");
}

static void
pop3_pass(struct login_client *c, struct pop3_login *p,
    const struct pop3_cmd *cmd)
{
	char *user;

	if (p->user == NULL) {
		pop3_bad(c, "-ERR No username given.");
		return;
	}
	if (cmd->argc != 1 || cmd->argv[0][0] == '\0') {
		pop3_bad(c, "-ERR No password given.");
		return;
	}
	if (strlen(cmd->argv[0]) > SASL_PASSWORD_MAX) {
		pop3_forget_user(p);
		pop3_bad(c, "-ERR [AUTH] Authentication failed.");
		return;
	}
	/* RFC 1939 7: after PASS, right or wrong, USER starts over. */
	user = p->user;
	p->user = NULL;
	pop3_login(c, "PLAIN", user, cmd->argv[0]);
	free(user);
}

static int
pop3_hex_digest(char *s)
{
	size_t i;

	if (strlen(s) != POP3_APOP_DIGEST_LEN)
		return -1;
	for (i = 0; i < POP3_APOP_DIGEST_LEN; i++) {
		if (s[i] >= 'A' && s[i] <= 'F')
			s[i] = (char)(s[i] - 'A' + 'a');
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	}
	return 0;
}

static void
pop3_apop(struct login_client *c, struct pop3_login *p,
    const struct pop3_cmd *cmd)
{
	struct login_request r;

	if (cmd->argc != 2 || strlen(cmd->argv[0]) > SASL_USER_MAX ||
	    pop3_hex_digest(cmd->argv[1]) < 0) {
		pop3_bad(c, "-ERR Invalid APOP arguments.");
		return;
	}
	memset(&r, 0, sizeof(r));
	r.method = "APOP";
	r.mech = LOGIN_MECH_APOP;
	r.user = cmd->argv[0];
	r.apop_challenge = p->apop;
	r.apop_digest = cmd->argv[1];
	login_client_login(c, &r);
}

/* Where an AUTH exchange leads: a challenge, a login, an error. */
static void
pop3_auth_progress(struct login_client *c, struct pop3_login *p,
    enum sasl_status st)
{
	const char *mech;

	switch (st) {
	case SASL_CHALLENGE:
		/* RFC 5034 4: "+" and a space, even before nothing. */
		login_client_reply(c, "+ %s", p->sasl->challenge);
		return;
	case SASL_DONE:
		mech = sasl_mech_name(p->sasl->mech);
		pop3_login(c, mech, buf_cstr(&p->sasl->user),
		    buf_cstr(&p->sasl->password));
		pop3_sasl_end(p);
		return;
	case SASL_ERROR:
		break;
	}
	switch (p->sasl->error) {
	case SASL_ERROR_CANCELLED:
		login_client_reply(c, "-ERR Authentication aborted.");
		break;
	case SASL_ERROR_DENIED:
		login_client_reply(c, "-ERR [AUTH] Authentication failed.");
		break;
	default:
		pop3_bad(c, "-ERR Invalid AUTH data.");
		break;
	}
	pop3_sasl_end(p);
}

static void
pop3_auth(struct login_client *c, struct pop3_login *p,
    const struct pop3_cmd *cmd)
{
	enum sasl_mech mech;
	const char *initial;

	if (cmd->argc == 0) {
		/* The mechanisms, as most servers list them (RFC 1734). */
		login_client_reply(c, "+OK");
		login_client_reply(c, "PLAIN");
		login_client_reply(c, "LOGIN");
		login_client_reply(c, ".");
		return;
	}
	if (cmd->argc > 2) {
		pop3_bad(c, "-ERR Invalid AUTH arguments.");
		return;
	}
	if (sasl_mech_parse(cmd->argv[0], &mech) < 0) {
		pop3_bad(c, "-ERR Unsupported authentication mechanism.");
		return;
	}
	pop3_forget_user(p);
	p->sasl = xcalloc(1, sizeof(*p->sasl));
	sasl_init(p->sasl, mech);
	initial = cmd->argc == 2 ? cmd->argv[1] : NULL;
	pop3_auth_progress(c, p, sasl_start(p->sasl, initial,
	                             initial != NULL ? strlen(initial) : 0));
}

static void
pop3_line(struct login_client *c, char *line, size_t len)
{
	struct pop3_login *p = login_client_proto(c);
	struct pop3_cmd cmd;
	const char *err;

	if (p->sasl != NULL) {
		pop3_auth_progress(c, p, sasl_step(p->sasl, line, len));
		return;
	}
	if (pop3_cmd_parse(line, len, &cmd, &err) != POP3_PARSE_OK) {
		pop3_bad(c, "-ERR Unknown command.");
		return;
	}
	switch (cmd.id) {
	case POP3_CMD_CAPA:
		pop3_capa(c);
		return;
	case POP3_CMD_QUIT:
		login_client_reply(c, "+OK Logging out.");
		login_client_quit(c);
		return;
	case POP3_CMD_STLS:
		pop3_stls(c);
		return;
	case POP3_CMD_USER:
	case POP3_CMD_PASS:
	case POP3_CMD_AUTH:
		break;
	case POP3_CMD_APOP:
		if (var_pop3_enable_apop)
			break;
		/* FALLTHROUGH */
	default:
		pop3_bad(c, "-ERR Unknown command.");
		return;
	}
	if (!login_client_plaintext_allowed(c)) {
		pop3_forget_user(p);
		pop3_bad(c, pop3_plaintext_refused);
		return;
	}
	if (cmd.id == POP3_CMD_USER)
		pop3_user(c, p, &cmd);
	else if (cmd.id == POP3_CMD_PASS)
		pop3_pass(c, p, &cmd);
	else if (cmd.id == POP3_CMD_APOP)
		pop3_apop(c, p, &cmd);
	else
		pop3_auth(c, p, &cmd);
}

static void
pop3_line_too_long(struct login_client *c)
{
	login_client_reply(c, "-ERR Line too long.");
	login_client_quit(c);
}

/* RFC 2449 and RFC 3206 response codes, as Dovecot gives them. */
static const char *const pop3_failed_text[LOGIN_RESULT_COUNT] = {
    [LOGIN_RESULT_FAIL] = "-ERR [AUTH] Authentication failed.",
    [LOGIN_RESULT_TEMPFAIL] =
        "-ERR [SYS/TEMP] Temporary authentication failure.",
    [LOGIN_RESULT_LIMIT] = "-ERR [SYS/TEMP] Too many connections.",
    [LOGIN_RESULT_DELAY] =
        "-ERR [LOGIN-DELAY] Logged in too recently, try again later.",
    [LOGIN_RESULT_UNAVAILABLE] =
        "-ERR [SYS/TEMP] Login service unavailable, try again later.",
};

static void
pop3_login_failed(struct login_client *c, enum login_result r)
{
	login_client_reply(c, "%s", login_result_text(pop3_failed_text, r));
	if (r == LOGIN_RESULT_FAIL &&
	    login_client_failures(c) >= LOGIN_AUTH_FAILURES_MAX)
		login_client_quit(c);
}

static const char *const pop3_bye_text[LOGIN_BYE_COUNT] = {
    [LOGIN_BYE_TIMEOUT] = "-ERR Disconnected for inactivity.",
    [LOGIN_BYE_SHUTDOWN] = "-ERR [SYS/TEMP] Server shutting down.",
    [LOGIN_BYE_TOO_MANY] =
        "-ERR [SYS/TEMP] Too many connections from your address.",
};

const struct login_protocol login_pop3 = {
    .name = "pop3",
    .log_name = "pop3-login",
    .line_max = POP3_LINE_MAX,
    .idle_timeout = pop3_idle_timeout,
    .start = pop3_start,
    .line = pop3_line,
    .line_too_long = pop3_line_too_long,
    .login_failed = pop3_login_failed,
    .bye_text = pop3_bye_text,
    .free = pop3_free,
};
