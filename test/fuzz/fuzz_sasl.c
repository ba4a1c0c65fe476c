/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the server side of SASL PLAIN (RFC 4616) and LOGIN
 * (lib/mail/sasl.c) as smtpd, pop3d and imapd drive it: an optional
 * initial response, then one response per line until the exchange is
 * done or failed. Every outcome is checked against a model written from
 * the RFC: which responses succeed, which error category a failure gets
 * (cancelled, malformed, denied), the credentials a success yields, and
 * that a failure leaves no credentials behind; every challenge is valid
 * base64.
 *
 * Input: one byte (bit 0: LOGIN rather than PLAIN, bit 1: the first line
 * is an initial response), then the lines, separated by LF.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "mail/sasl.h"
#include "fuzz_util.h"

#define CFG_LOGIN       0x1
#define CFG_INITIAL     0x2
#define EMPTY_INITIAL   "="
#define CANCEL          "*"
/* "Username:" and "Password:" (draft-murchison-sasl-login). */
#define PROMPT_USER     "Username:"
#define PROMPT_PASSWORD "Password:"

/* What the model expects of one response. */
struct expect {
	enum sasl_status status;
	enum sasl_error error;
	struct buf user, password;
};

static int
field_ok(const char *p, size_t len, size_t max)
{
	return len > 0 && len <= max && memchr(p, '\0', len) == NULL;
}

static int
same_ci(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;
	char x, y;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++) {
		x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] - 'A' + 'a')
		                               : a[i];
		y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] - 'A' + 'a')
		                               : b[i];
		if (x != y)
			return 0;
	}
	return 1;
}

/* RFC 4616 2: [authzid] NUL authcid NUL passwd. */
static void
model_plain(const char *m, size_t len, struct expect *e)
{
	const char *nul1 = memchr(m, '\0', len), *nul2, *authc, *pass;
	size_t zlen, clen, plen;

	e->status = SASL_ERROR;
	e->error = SASL_ERROR_MALFORMED;
	if (nul1 == NULL)
		return;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - m));
	if (nul2 == NULL)
		return;
	zlen = (size_t)(nul1 - m);
	authc = nul1 + 1;
	clen = (size_t)(nul2 - authc);
	pass = nul2 + 1;
	plen = len - (size_t)(pass - m);
	if (!field_ok(authc, clen, SASL_USER_MAX) ||
	    !field_ok(pass, plen, SASL_PASSWORD_MAX) || zlen > SASL_USER_MAX)
		return;
	if (zlen > 0 && !same_ci(m, zlen, authc, clen)) {
		e->error = SASL_ERROR_DENIED;
		return;
	}
	e->status = SASL_DONE;
	e->error = SASL_ERROR_NONE;
	FUZZ_CHECK(buf_append(&e->user, authc, clen) == 0);
	FUZZ_CHECK(buf_append(&e->password, pass, plen) == 0);
}

/*
 * One response in state (the model's own count of LOGIN answers:
 * 0 user, 1 password), initial or not.
 */
static void
model(enum sasl_mech mech, int answer, int initial, const char *r, size_t len,
    struct expect *e)
{
	struct buf m;
	const char *err;

	buf_reset(&e->user);
	buf_reset(&e->password);
	e->status = SASL_ERROR;
	e->error = SASL_ERROR_MALFORMED;
	if (!initial && len == strlen(CANCEL) && memcmp(r, CANCEL, len) == 0) {
		e->error = SASL_ERROR_CANCELLED;
		return;
	}
	buf_init(&m, SASL_MESSAGE_MAX);
	if (initial && len == strlen(EMPTY_INITIAL) &&
	    memcmp(r, EMPTY_INITIAL, len) == 0)
		; /* an empty initial response */
	else if (len > SASL_RESPONSE_MAX ||
	         base64_decode(r, len, &m, &err) < 0) {
		buf_free(&m);
		return;
	}
	if (mech == SASL_MECH_PLAIN) {
		model_plain(buf_cstr(&m), m.len, e);
	} else if (answer == 0) {
		if (field_ok(buf_cstr(&m), m.len, SASL_USER_MAX)) {
			e->status = SASL_CHALLENGE;
			e->error = SASL_ERROR_NONE;
			FUZZ_CHECK(buf_append(&e->user, m.data, m.len) == 0);
		}
	} else if (field_ok(buf_cstr(&m), m.len, SASL_PASSWORD_MAX)) {
		e->status = SASL_DONE;
		e->error = SASL_ERROR_NONE;
		FUZZ_CHECK(buf_append(&e->password, m.data, m.len) == 0);
	}
	buf_free(&m);
}

static void
check_challenge(const struct sasl *s, enum sasl_mech mech, int answer)
{
	struct buf d;
	const char *err, *want;

	FUZZ_CHECK(s->challenge != NULL);
	buf_init(&d, SASL_MESSAGE_MAX);
	FUZZ_CHECK(
	    base64_decode(s->challenge, strlen(s->challenge), &d, &err) == 0);
	want = mech == SASL_MECH_PLAIN ? ""
	       : answer == 0           ? PROMPT_USER
	                               : PROMPT_PASSWORD;
	FUZZ_CHECK(strcmp(buf_cstr(&d), want) == 0);
	buf_free(&d);
}

static int
buf_same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len &&
	       memcmp(buf_cstr(a), buf_cstr(b), a->len) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *lf;
	enum sasl_status st;
	enum sasl_mech mech, parsed;
	struct expect e;
	struct buf login_user;
	struct sasl s;
	int initial, answer = 0, first = 1;
	size_t len;

	if (size < 1)
		return 0;
	mech = (data[0] & CFG_LOGIN) ? SASL_MECH_LOGIN : SASL_MECH_PLAIN;
	initial = (data[0] & CFG_INITIAL) != 0;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	buf_init(&e.user, SASL_USER_MAX);
	buf_init(&e.password, SASL_PASSWORD_MAX);
	buf_init(&login_user, SASL_USER_MAX);

	FUZZ_CHECK(sasl_mech_parse(sasl_mech_name(mech), &parsed) == 0);
	FUZZ_CHECK(parsed == mech);
	sasl_init(&s, mech);
	if (!initial) {
		st = sasl_start(&s, NULL, 0);
		FUZZ_CHECK(st == SASL_CHALLENGE);
		check_challenge(&s, mech, 0);
		first = 0;
	}
	for (;;) {
		lf = memchr(p, '\n', (size_t)(end - p));
		len = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		model(mech, answer, first, p, len, &e);
		st = first ? sasl_start(&s, p, len) : sasl_step(&s, p, len);
		first = 0;
		FUZZ_CHECK(st == e.status);
		if (st == SASL_ERROR) {
			FUZZ_CHECK(s.error == e.error);
			FUZZ_CHECK(
			    s.error_text != NULL && *s.error_text != '\0');
			FUZZ_CHECK(s.user.len == 0 && s.password.len == 0);
			break;
		}
		FUZZ_CHECK(s.error == SASL_ERROR_NONE);
		if (st == SASL_CHALLENGE) {
			/* LOGIN, after the user name. */
			FUZZ_CHECK(mech == SASL_MECH_LOGIN && answer == 0);
			answer = 1;
			check_challenge(&s, mech, answer);
			FUZZ_CHECK(buf_same(&s.user, &e.user));
			FUZZ_CHECK(buf_append(&login_user, e.user.data,
			               e.user.len) == 0);
		} else {
			FUZZ_CHECK(strlen(buf_cstr(&s.user)) == s.user.len);
			FUZZ_CHECK(
			    strlen(buf_cstr(&s.password)) == s.password.len);
			FUZZ_CHECK(buf_same(&s.user,
			    mech == SASL_MECH_PLAIN ? &e.user : &login_user));
			FUZZ_CHECK(buf_same(&s.password, &e.password));
			break;
		}
		if (lf == NULL)
			break;
		p = lf + 1;
	}
	sasl_free(&s);
	buf_free(&e.user);
	buf_free(&e.password);
	buf_free(&login_user);
	return 0;
}
