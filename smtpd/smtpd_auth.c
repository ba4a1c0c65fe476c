/* SPDX-License-Identifier: MIT */
/*
 * SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms:
 * offered only inside TLS (smtpd_tls_auth_only), the exchange decoded by
 * lib/mail/sasl, the password checked by the auth service, which alone
 * reads the user file; smtpd never sees a hash. auth delays failures
 * itself (growing per client address and per user), so a wrong password
 * and an unknown user take the same time; other sessions go on
 * meanwhile. An authenticated client may relay and must send as its own
 * address (smtpd_cmd.c); its Received: says ESMTPA (RFC 3848).
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/auth_proto.h"
#include "mail/params.h"
#include "smtpd.h"

#define SMTPD_AUTH_LOG_MAX 256

int
smtpd_auth_offered(const struct smtpd_session *s)
{
	return var_smtpd_sasl_auth_enable &&
	       (s->tls_active || !var_smtpd_tls_auth_only);
}

void
smtpd_auth_free(struct smtpd_session *s)
{
	if (s->sasl != NULL) {
		sasl_free(s->sasl);
		free(s->sasl);
		s->sasl = NULL;
	}
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->sasl_mech);
	s->sasl_mech = NULL;
}

/* The exchange is over: forget the credentials. */
static void
auth_end(struct smtpd_session *s)
{
	sasl_free(s->sasl);
	free(s->sasl);
	s->sasl = NULL;
}

static void
auth_reply_done(const struct attr_list *reply, const char *error, void *ctx)
{
	struct smtpd_session *s = ctx;
	const char *status = reply != NULL ? attr_get(reply, "status") : NULL;
	const char *user = reply != NULL ? attr_get(reply, "user") : NULL;
	const char *text = reply != NULL ? attr_get(reply, "text") : error;

	s->waiting = 0;
	if (status != NULL && strcmp(status, AUTH_STATUS_OK) == 0 &&
	    user != NULL && *user != '\0') {
		s->auth_user = xstrdup(user);
		msg_info("%s[%s]: sasl_method=%s, sasl_username=%s", s->name,
		    s->addr, s->sasl_mech,
		    log_sanitize(user, SMTPD_AUTH_LOG_MAX));
		smtpd_reply(s, "235 2.7.0 Authentication successful");
		smtpd_cmd_ok(s, "AUTH");
	} else if (status != NULL && strcmp(status, AUTH_STATUS_FAIL) == 0) {
		msg_warn("%s[%s]: SASL %s authentication failed: %s", s->name,
		    s->addr, s->sasl_mech,
		    log_sanitize(text != NULL ? text : "", SMTPD_AUTH_LOG_MAX));
		smtpd_reply(s,
		    "535 5.7.8 Error: authentication failed: credentials "
		    "invalid");
		s->errors++;
	} else {
		msg_warn("%s[%s]: SASL %s authentication: %s", s->name, s->addr,
		    s->sasl_mech,
		    log_sanitize(text != NULL ? text : "no answer from auth",
		        SMTPD_AUTH_LOG_MAX));
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
	}
	auth_end(s);
	smtpd_session_resume(s);
}

/* Where an exchange leads: a challenge, a question to auth, an error. */
static void
auth_progress(struct smtpd_session *s, enum sasl_status st)
{
	struct buf *f;

	switch (st) {
	case SASL_CHALLENGE:
		smtpd_reply(s, "334 %s", s->sasl->challenge);
		return;
	case SASL_DONE:
		f = attr_client_frame(smtpd_auth);
		if (attr_put_str(f, AUTH_ATTR_REQUEST, AUTH_REQUEST_AUTH) < 0 ||
		    attr_put_str(f, AUTH_ATTR_SERVICE, AUTH_PROTO_SMTP) < 0 ||
		    attr_put_str(f, AUTH_ATTR_USER, buf_cstr(&s->sasl->user)) <
		        0 ||
		    attr_put_str(f, AUTH_ATTR_PASSWORD,
		        buf_cstr(&s->sasl->password)) < 0 ||
		    attr_put_str(f, AUTH_ATTR_CLIENT, s->addr) < 0)
			msg_panic("auth request does not fit a frame");
		s->waiting = 1;
		attr_client_send(smtpd_auth, auth_reply_done, s);
		/* The frame held the password: wipe it now. */
		explicit_bzero(f->data, f->len);
		return;
	case SASL_ERROR:
		break;
	}
	switch (s->sasl->error) {
	case SASL_ERROR_CANCELLED:
		smtpd_reply(s, "501 5.0.0 Authentication aborted");
		break;
	case SASL_ERROR_DENIED:
		smtpd_reply(s, "535 5.7.8 Error: authentication failed: %s",
		    s->sasl->error_text);
		break;
	default:
		smtpd_reply(s, "501 5.5.2 Error: %s", s->sasl->error_text);
		break;
	}
	s->errors++;
	auth_end(s);
}

int
smtpd_auth_cmd(struct smtpd_session *s, const char *arg)
{
	enum sasl_mech mech;
	char *copy, *initial;

	if (!var_smtpd_sasl_auth_enable) {
		smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
		return -1;
	}
	if (!smtpd_auth_offered(s)) {
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return -1;
	}
	if (s->auth_user != NULL) {
		smtpd_reply(s, "503 5.5.1 Error: already authenticated");
		return -1;
	}
	if (s->state == SMTPD_STATE_MAIL) {
		smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	copy = xstrdup(arg);
	initial = strchr(copy, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
	}
	if (*copy == '\0' || sasl_mech_parse(copy, &mech) < 0) {
		smtpd_reply(s, "504 5.5.4 Error: unsupported authentication "
		               "mechanism");
		free(copy);
		return -1;
	}
	free(s->sasl_mech);
	s->sasl_mech = xstrdup(sasl_mech_name(mech));
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	sasl_init(s->sasl, mech);
	auth_progress(s, sasl_start(s->sasl, initial,
	                     initial != NULL ? strlen(initial) : 0));
	if (initial != NULL)
		explicit_bzero(initial, strlen(initial));
	free(copy);
	/* Like DATA: the outcome (235, 535, 454) is counted when it comes. */
	return 1;
}

void
smtpd_auth_response(struct smtpd_session *s, const char *line)
{
	auth_progress(s, sasl_step(s->sasl, line, strlen(line)));
}
