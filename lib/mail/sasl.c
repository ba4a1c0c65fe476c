/* SPDX-License-Identifier: MIT */
/*
 * SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login-00) for
 * the servers that face the network: smtpd (RFC 4954), pop3d (RFC 5034)
 * and imapd (RFC 3501 6.2.2, RFC 4959). Each mechanism is a state machine
 * fed one client line at a time, so the protocol code only moves lines
 * and maps the outcome to its reply codes. Everything a client sends is
 * bounded before it is decoded, decoded strictly (lib/base/base64), and
 * checked field by field; a proxy login (a PLAIN authzid naming another
 * user) is refused, since nothing in tern could authorise one.
 */
#include <string.h>

#include "base/log.h"
#include "base/str.h"
#include "mail/sasl.h"

/* draft-murchison-sasl-login: base64 of "Username:" and "Password:". */
#define SASL_LOGIN_USER_PROMPT     "VXNlcm5hbWU6"
#define SASL_LOGIN_PASSWORD_PROMPT "UGFzc3dvcmQ6"
/* RFC 4954 4 and RFC 4959: the empty initial response. */
#define SASL_EMPTY_INITIAL         "="
/* RFC 4954 4, RFC 5034 4, RFC 3501 6.2.2: the client gives up. */
#define SASL_CANCEL                "*"

static const char *const sasl_mech_names[] = {
    [SASL_MECH_PLAIN] = "PLAIN",
    [SASL_MECH_LOGIN] = "LOGIN",
};

static const char *const sasl_state_names[] = {
    [SASL_STATE_START] = "start",
    [SASL_STATE_PLAIN] = "plain",
    [SASL_STATE_LOGIN_USER] = "login-user",
    [SASL_STATE_LOGIN_PASSWORD] = "login-password",
    [SASL_STATE_DONE] = "done",
    [SASL_STATE_FAILED] = "failed",
};

#define SASL_NMECHS (sizeof(sasl_mech_names) / sizeof(sasl_mech_names[0]))

int
sasl_mech_parse(const char *name, enum sasl_mech *mech_r)
{
	size_t i;

	for (i = 0; i < SASL_NMECHS; i++) {
		if (str_eq_ci(name, sasl_mech_names[i])) {
			*mech_r = (enum sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

const char *
sasl_mech_name(enum sasl_mech mech)
{
	if ((size_t)mech >= SASL_NMECHS)
		msg_panic("sasl_mech_name: bad mechanism %d", (int)mech);
	return sasl_mech_names[mech];
}

static void
sasl_set_state(struct sasl *s, enum sasl_state state)
{
	msg_debug("sasl %s: %s -> %s", sasl_mech_names[s->mech],
	    sasl_state_names[s->state], sasl_state_names[state]);
	s->state = state;
}

/* Overwrites what the buffer held (a password may be in it). */
static void
sasl_wipe(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->len);
	buf_reset(b);
}

void
sasl_init(struct sasl *s, enum sasl_mech mech)
{
	memset(s, 0, sizeof(*s));
	s->mech = mech;
	s->state = SASL_STATE_START;
	s->challenge = "";
	buf_init(&s->user, SASL_USER_MAX);
	buf_init(&s->password, SASL_PASSWORD_MAX);
	buf_init(&s->decoded, SASL_MESSAGE_MAX);
}

void
sasl_free(struct sasl *s)
{
	sasl_wipe(&s->user);
	sasl_wipe(&s->password);
	sasl_wipe(&s->decoded);
	buf_free(&s->user);
	buf_free(&s->password);
	buf_free(&s->decoded);
}

static enum sasl_status
sasl_fail(struct sasl *s, enum sasl_error error, const char *text)
{
	sasl_wipe(&s->user);
	sasl_wipe(&s->password);
	sasl_wipe(&s->decoded);
	s->error = error;
	s->error_text = text;
	s->challenge = "";
	sasl_set_state(s, SASL_STATE_FAILED);
	return SASL_ERROR;
}

static enum sasl_status
sasl_challenge(struct sasl *s, enum sasl_state next, const char *challenge)
{
	s->challenge = challenge;
	sasl_set_state(s, next);
	return SASL_CHALLENGE;
}

static enum sasl_status
sasl_done(struct sasl *s)
{
	sasl_wipe(&s->decoded);
	s->challenge = "";
	sasl_set_state(s, SASL_STATE_DONE);
	return SASL_DONE;
}

/* Decodes one response into s->decoded; NULL or the reason it is bad. */
static const char *
sasl_decode(struct sasl *s, const char *in, size_t len)
{
	const char *err;

	sasl_wipe(&s->decoded);
	if (len > SASL_RESPONSE_MAX)
		return "response too long";
	if (base64_decode(in, len, &s->decoded, &err) < 0)
		return err;
	return NULL;
}

/* The reasons a credential field is refused. */
struct sasl_field_errors {
	const char *empty;
	const char *too_long;
};

static const struct sasl_field_errors sasl_user_errors = {
    "empty user name", "user name too long"};
static const struct sasl_field_errors sasl_password_errors = {
    "empty password", "password too long"};

/* Sets one credential field; NULL or the reason it is not acceptable. */
static const char *
sasl_field(struct buf *to, const char *p, size_t len,
    const struct sasl_field_errors *errors)
{
	if (len == 0)
		return errors->empty;
	if (memchr(p, '\0', len) != NULL)
		return "NUL byte inside a field";
	sasl_wipe(to);
	if (buf_append(to, p, len) < 0)
		return errors->too_long;
	return NULL;
}

/*
 * RFC 4616 2: message = [authzid] NUL authcid NUL passwd. A third NUL
 * would be inside the password, which the grammar forbids.
 */
static enum sasl_status
sasl_plain(struct sasl *s)
{
	const char *m = s->decoded.data != NULL ? s->decoded.data : "";
	const char *nul1, *nul2, *err;
	size_t len = s->decoded.len, zlen, clen;

	nul1 = memchr(m, '\0', len);
	nul2 = nul1 != NULL
	           ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - m))
	           : NULL;
	if (nul2 == NULL)
		return sasl_fail(s, SASL_ERROR_MALFORMED,
		    "PLAIN message without two NUL separators");
	zlen = (size_t)(nul1 - m);
	clen = (size_t)(nul2 - nul1 - 1);
	if ((err = sasl_field(&s->user, nul1 + 1, clen, &sasl_user_errors)) !=
	        NULL ||
	    (err = sasl_field(&s->password, nul2 + 1,
	         len - (size_t)(nul2 + 1 - m), &sasl_password_errors)) != NULL)
		return sasl_fail(s, SASL_ERROR_MALFORMED, err);
	if (zlen > SASL_USER_MAX)
		return sasl_fail(
		    s, SASL_ERROR_MALFORMED, "authorization identity too long");
	/* Names compare without case, as the user file does. */
	if (zlen > 0 &&
	    (zlen != clen || !str_prefix_ci(m, zlen, buf_cstr(&s->user))))
		return sasl_fail(s, SASL_ERROR_DENIED,
		    "authorization identity differs from the user name");
	return sasl_done(s);
}

/* One LOGIN answer: the user name, then the password. */
static enum sasl_status
sasl_login(struct sasl *s)
{
	const char *p = s->decoded.data != NULL ? s->decoded.data : "";
	const char *err;

	if (s->state != SASL_STATE_LOGIN_PASSWORD) {
		if ((err = sasl_field(&s->user, p, s->decoded.len,
		         &sasl_user_errors)) != NULL)
			return sasl_fail(s, SASL_ERROR_MALFORMED, err);
		return sasl_challenge(
		    s, SASL_STATE_LOGIN_PASSWORD, SASL_LOGIN_PASSWORD_PROMPT);
	}
	if ((err = sasl_field(&s->password, p, s->decoded.len,
	         &sasl_password_errors)) != NULL)
		return sasl_fail(s, SASL_ERROR_MALFORMED, err);
	return sasl_done(s);
}

/* A decoded response in s->decoded, for the mechanism's current state. */
static enum sasl_status
sasl_answer(struct sasl *s)
{
	return s->mech == SASL_MECH_PLAIN ? sasl_plain(s) : sasl_login(s);
}

enum sasl_status
sasl_start(struct sasl *s, const char *initial, size_t len)
{
	const char *err;

	if (s->state != SASL_STATE_START)
		msg_panic("sasl_start: exchange in state %s",
		    sasl_state_names[s->state]);
	if (initial == NULL) {
		/* RFC 4616 2: PLAIN asks with an empty challenge. */
		return s->mech == SASL_MECH_PLAIN
		           ? sasl_challenge(s, SASL_STATE_PLAIN, "")
		           : sasl_challenge(s, SASL_STATE_LOGIN_USER,
		                 SASL_LOGIN_USER_PROMPT);
	}
	sasl_set_state(s, s->mech == SASL_MECH_PLAIN ? SASL_STATE_PLAIN
	                                             : SASL_STATE_LOGIN_USER);
	if (len == strlen(SASL_EMPTY_INITIAL) &&
	    memcmp(initial, SASL_EMPTY_INITIAL, len) == 0)
		sasl_wipe(&s->decoded);
	else if ((err = sasl_decode(s, initial, len)) != NULL)
		return sasl_fail(s, SASL_ERROR_MALFORMED, err);
	return sasl_answer(s);
}

enum sasl_status
sasl_step(struct sasl *s, const char *response, size_t len)
{
	const char *err;

	if (s->state != SASL_STATE_PLAIN && s->state != SASL_STATE_LOGIN_USER &&
	    s->state != SASL_STATE_LOGIN_PASSWORD)
		msg_panic("sasl_step: no challenge outstanding (state %s)",
		    sasl_state_names[s->state]);
	if (len == strlen(SASL_CANCEL) &&
	    memcmp(response, SASL_CANCEL, len) == 0)
		return sasl_fail(s, SASL_ERROR_CANCELLED,
		    "authentication cancelled by the client");
	if ((err = sasl_decode(s, response, len)) != NULL)
		return sasl_fail(s, SASL_ERROR_MALFORMED, err);
	return sasl_answer(s);
}
