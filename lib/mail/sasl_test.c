/* SPDX-License-Identifier: MIT */
/*
 * Tests of the SASL state machines: a table of exchanges (the client's
 * lines, the challenges expected before each, the outcome), each run as
 * written and, where the first line can be one, again with that line as
 * the initial response (SASL-IR), which must not change the outcome;
 * then the length limits at and past each boundary.
 */
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/mem.h"
#include "mail/sasl.h"
#include "unit.h"

#define NELEM(a)      (sizeof(a) / sizeof((a)[0]))
#define TEST_LINE_MAX (2 * SASL_RESPONSE_MAX)
#define MAX_LINES     3

/* A client line: B64() is encoded by the test, LIT() sent as written. */
struct line {
	const char *s; /* NULL: no line */
	size_t len;
	int literal;
};

#define B64(str)                        \
	{                               \
		str, sizeof(str) - 1, 0 \
	}
#define LIT(str)                        \
	{                               \
		str, sizeof(str) - 1, 1 \
	}
#define NONE               \
	{                  \
		NULL, 0, 0 \
	}

#define LOGIN_USER     "VXNlcm5hbWU6"
#define LOGIN_PASSWORD "UGFzc3dvcmQ6"

struct sasl_case {
	const char *mech;
	struct line initial;               /* NONE: the command had none */
	struct line lines[MAX_LINES];      /* answers, until NONE */
	const char *challenges[MAX_LINES]; /* sent before each answer */
	enum sasl_status status;
	enum sasl_error error;
	const char *user, *password; /* SASL_DONE */
	const char *why;             /* part of error_text */
};

static const struct sasl_case cases[] = {
    /* PLAIN, RFC 4616 2 */
    {"PLAIN", NONE, {B64("\0alice@example.test\0secret")}, {""}, SASL_DONE,
        SASL_ERROR_NONE, "alice@example.test", "secret", NULL},
    {"plain", B64("\0alice\0pw"), {NONE}, {NULL}, SASL_DONE, SASL_ERROR_NONE,
        "alice", "pw", NULL},
    {"PLAIN", NONE, {B64("alice\0alice\0pw")}, {""}, SASL_DONE, SASL_ERROR_NONE,
        "alice", "pw", NULL},
    {"PLAIN", NONE, {B64("Alice@Example.TEST\0alice@example.test\0p w")}, {""},
        SASL_DONE, SASL_ERROR_NONE, "alice@example.test", "p w", NULL},
    /* Passwords are bytes: 8-bit and ':' are fine. */
    {"PLAIN", NONE, {B64("\0u\0\303\251t\303\251:x")}, {""}, SASL_DONE,
        SASL_ERROR_NONE, "u", "\303\251t\303\251:x", NULL},
    {"PLAIN", NONE, {B64("bob\0alice\0pw")}, {""}, SASL_ERROR,
        SASL_ERROR_DENIED, NULL, NULL, "authorization identity differs"},
    {"PLAIN", NONE, {B64("alic\0alice\0pw")}, {""}, SASL_ERROR,
        SASL_ERROR_DENIED, NULL, NULL, "differs"},
    {"PLAIN", NONE, {B64("alicex\0alice\0pw")}, {""}, SASL_ERROR,
        SASL_ERROR_DENIED, NULL, NULL, "differs"},
    {"PLAIN", NONE, {B64("\0\0pw")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED,
        NULL, NULL, "empty user name"},
    {"PLAIN", NONE, {B64("\0alice\0")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED,
        NULL, NULL, "empty password"},
    {"PLAIN", NONE, {B64("alice\0pw")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED,
        NULL, NULL, "two NUL"},
    {"PLAIN", NONE, {B64("alicepw")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED,
        NULL, NULL, "two NUL"},
    {"PLAIN", NONE, {B64("\0alice\0pw\0x")}, {""}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "NUL byte inside"},
    {"PLAIN", NONE, {B64("")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED, NULL,
        NULL, "two NUL"},
    {"PLAIN", NONE, {LIT("*")}, {""}, SASL_ERROR, SASL_ERROR_CANCELLED, NULL,
        NULL, "cancelled"},
    /* "=" is the empty initial response only, not an answer. */
    {"PLAIN", LIT("="), {NONE}, {NULL}, SASL_ERROR, SASL_ERROR_MALFORMED, NULL,
        NULL, "two NUL"},
    {"PLAIN", NONE, {LIT("=")}, {""}, SASL_ERROR, SASL_ERROR_MALFORMED, NULL,
        NULL, "padding"},
    {"PLAIN", LIT("*"), {NONE}, {NULL}, SASL_ERROR, SASL_ERROR_MALFORMED, NULL,
        NULL, "invalid base64"},
    {"PLAIN", NONE, {LIT("AGFsaWNlAHB3=")}, {""}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "padding"},
    {"PLAIN", NONE, {LIT("AGFs aWNlAHB3")}, {""}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "invalid base64"},
    {"PLAIN", NONE, {LIT("AGFsaWNlAHB3\r")}, {""}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "invalid base64"},
    {"PLAIN", NONE, {LIT("AGFsaWNlAHB")}, {""}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "truncated"},

    /* LOGIN, draft-murchison-sasl-login */
    {"LOGIN", NONE, {B64("alice@example.test"), B64("secret")},
        {LOGIN_USER, LOGIN_PASSWORD}, SASL_DONE, SASL_ERROR_NONE,
        "alice@example.test", "secret", NULL},
    {"login", B64("alice"), {B64("pw")}, {LOGIN_PASSWORD}, SASL_DONE,
        SASL_ERROR_NONE, "alice", "pw", NULL},
    {"LOGIN", NONE, {LIT("*")}, {LOGIN_USER}, SASL_ERROR, SASL_ERROR_CANCELLED,
        NULL, NULL, "cancelled"},
    {"LOGIN", NONE, {B64("alice"), LIT("*")}, {LOGIN_USER, LOGIN_PASSWORD},
        SASL_ERROR, SASL_ERROR_CANCELLED, NULL, NULL, "cancelled"},
    {"LOGIN", NONE, {B64("")}, {LOGIN_USER}, SASL_ERROR, SASL_ERROR_MALFORMED,
        NULL, NULL, "empty user name"},
    {"LOGIN", LIT("="), {NONE}, {NULL}, SASL_ERROR, SASL_ERROR_MALFORMED, NULL,
        NULL, "empty user name"},
    {"LOGIN", NONE, {B64("alice"), B64("")}, {LOGIN_USER, LOGIN_PASSWORD},
        SASL_ERROR, SASL_ERROR_MALFORMED, NULL, NULL, "empty password"},
    {"LOGIN", NONE, {B64("al\0ice")}, {LOGIN_USER}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "NUL byte"},
    {"LOGIN", NONE, {B64("alice"), B64("p\0w")}, {LOGIN_USER, LOGIN_PASSWORD},
        SASL_ERROR, SASL_ERROR_MALFORMED, NULL, NULL, "NUL byte"},
    {"LOGIN", NONE, {B64("alice"), LIT("cHc=\n")}, {LOGIN_USER, LOGIN_PASSWORD},
        SASL_ERROR, SASL_ERROR_MALFORMED, NULL, NULL, "after the padding"},
    {"LOGIN", NONE, {LIT("YWxpY2U")}, {LOGIN_USER}, SASL_ERROR,
        SASL_ERROR_MALFORMED, NULL, NULL, "truncated"},
};

/* The line as the client sends it (a B64 line encoded). */
static void
line_text(const struct line *l, struct buf *out)
{
	buf_reset(out);
	if (l->literal)
		CHECK_INT(buf_append(out, l->s, l->len), 0);
	else
		CHECK_INT(base64_encode(l->s, l->len, out), 0);
}

/* Runs c; with_ir moves its first answer into the initial response. */
static void
run_case(const struct sasl_case *c, size_t index, int with_ir)
{
	const struct line *first = with_ir ? &c->lines[0] : &c->initial;
	size_t i = with_ir ? 1 : 0, challenge = i;
	enum sasl_status st;
	enum sasl_mech mech;
	struct buf text;
	struct sasl s;

	buf_init(&text, TEST_LINE_MAX);
	CHECK_INT(sasl_mech_parse(c->mech, &mech), 0);
	sasl_init(&s, mech);
	if (first->s == NULL)
		st = sasl_start(&s, NULL, 0);
	else {
		line_text(first, &text);
		/* An empty answer is "=" as an initial response. */
		if (with_ir && text.len == 0)
			CHECK_INT(buf_puts(&text, "="), 0);
		st = sasl_start(&s, buf_cstr(&text), text.len);
	}
	for (; i < MAX_LINES && c->lines[i].s != NULL; i++, challenge++) {
		CHECK_INT(st, SASL_CHALLENGE);
		if (st != SASL_CHALLENGE)
			break;
		CHECK_STR(s.challenge, c->challenges[challenge]);
		line_text(&c->lines[i], &text);
		st = sasl_step(&s, buf_cstr(&text), text.len);
	}
	CHECK_INT(st, c->status);
	CHECK_INT(s.error, c->error);
	if (c->status == SASL_DONE) {
		CHECK_STR(buf_cstr(&s.user), c->user);
		CHECK_STR(buf_cstr(&s.password), c->password);
	} else {
		CHECK(s.error_text != NULL && c->why != NULL &&
		      strstr(s.error_text, c->why) != NULL);
		/* Nothing of a failed exchange is left to use. */
		CHECK_INT(s.user.len, 0);
		CHECK_INT(s.password.len, 0);
	}
	if (unit_case_failed)
		printf("#   case %zu (%s)%s: error_text \"%s\"\n", index,
		    c->mech, with_ir ? " as initial response" : "",
		    s.error_text != NULL ? s.error_text : "");
	sasl_free(&s);
	buf_free(&text);
}

static void
test_exchanges(void)
{
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		run_case(&cases[i], i, 0);
		/* "*" cancels an exchange; as an initial response it is
		 * just bad base64, so those rows run only as written. */
		if (cases[i].initial.s == NULL && cases[i].lines[0].s != NULL &&
		    !(cases[i].lines[0].literal &&
		        strcmp(cases[i].lines[0].s, "*") == 0) &&
		    !(cases[i].lines[0].literal &&
		        strcmp(cases[i].lines[0].s, "=") == 0))
			run_case(&cases[i], i, 1);
	}
}

static void
test_mechanisms(void)
{
	static const struct {
		const char *name;
		int ret;
		enum sasl_mech mech;
	} t[] = {
	    {"PLAIN", 0, SASL_MECH_PLAIN},
	    {"plain", 0, SASL_MECH_PLAIN},
	    {"Login", 0, SASL_MECH_LOGIN},
	    {"CRAM-MD5", -1, SASL_MECH_PLAIN},
	    {"PLAINX", -1, SASL_MECH_PLAIN},
	    {"PLAI", -1, SASL_MECH_PLAIN},
	    {"", -1, SASL_MECH_PLAIN},
	};
	enum sasl_mech mech;
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		mech = SASL_MECH_PLAIN;
		CHECK_INT(sasl_mech_parse(t[i].name, &mech), t[i].ret);
		CHECK_INT(mech, t[i].mech);
	}
	CHECK_STR(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
	CHECK_STR(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
	CHECK_STR(SASL_MECHANISMS, "PLAIN LOGIN");
}

/*
 * One PLAIN exchange of a message made of fields of the given lengths
 * ('a' for names, 'p' for the password); returns the status and the
 * error text.
 */
static enum sasl_status
plain_sized(size_t authzid, size_t authcid, size_t passwd, const char **why_r)
{
	size_t len = authzid + authcid + passwd + 2;
	char *m = xmalloc(len);
	enum sasl_status st;
	struct buf text;
	struct sasl s;

	memset(m, 'a', authzid);
	m[authzid] = '\0';
	memset(m + authzid + 1, 'a', authcid);
	m[authzid + 1 + authcid] = '\0';
	memset(m + authzid + authcid + 2, 'p', passwd);
	buf_init(&text, TEST_LINE_MAX);
	CHECK_INT(base64_encode(m, len, &text), 0);
	sasl_init(&s, SASL_MECH_PLAIN);
	st = sasl_start(&s, buf_cstr(&text), text.len);
	*why_r = s.error_text != NULL ? s.error_text : "";
	if (st == SASL_DONE) {
		CHECK_INT(s.user.len, authcid);
		CHECK_INT(s.password.len, passwd);
	}
	sasl_free(&s);
	buf_free(&text);
	free(m);
	return st;
}

static void
test_limits(void)
{
	static const struct {
		size_t authzid, authcid, passwd;
		enum sasl_status st;
		const char *why;
	} t[] = {
	    {0, SASL_USER_MAX, SASL_PASSWORD_MAX, SASL_DONE, ""},
	    /* The longest message there is: exactly SASL_RESPONSE_MAX. */
	    {SASL_USER_MAX, SASL_USER_MAX, SASL_PASSWORD_MAX, SASL_DONE, ""},
	    {0, SASL_USER_MAX + 1, 1, SASL_ERROR, "user name too long"},
	    {0, 1, SASL_PASSWORD_MAX + 1, SASL_ERROR, "password too long"},
	    {SASL_USER_MAX + 1, 1, 1, SASL_ERROR, "authorization identity"},
	    {SASL_USER_MAX + 1, SASL_USER_MAX, SASL_PASSWORD_MAX, SASL_ERROR,
	        "response too long"},
	};
	const char *why;
	size_t i;

	CHECK_INT(SASL_RESPONSE_MAX, BASE64_ENCODED_LEN(SASL_MESSAGE_MAX));
	for (i = 0; i < NELEM(t); i++) {
		CHECK_INT(
		    plain_sized(t[i].authzid, t[i].authcid, t[i].passwd, &why),
		    t[i].st);
		CHECK(strstr(why, t[i].why) != NULL);
		if (unit_case_failed)
			printf("#   limit case %zu: \"%s\"\n", i, why);
	}
}

/* LOGIN fields have the same limits as PLAIN's. */
static void
test_login_limits(void)
{
	char user[SASL_USER_MAX + 2], password[SASL_PASSWORD_MAX + 2];
	struct buf text;
	struct sasl s;

	memset(user, 'u', sizeof(user));
	memset(password, 'p', sizeof(password));
	buf_init(&text, TEST_LINE_MAX);

	sasl_init(&s, SASL_MECH_LOGIN);
	CHECK_INT(base64_encode(user, SASL_USER_MAX, &text), 0);
	CHECK_INT(sasl_start(&s, buf_cstr(&text), text.len), SASL_CHALLENGE);
	buf_reset(&text);
	CHECK_INT(base64_encode(password, SASL_PASSWORD_MAX, &text), 0);
	CHECK_INT(sasl_step(&s, buf_cstr(&text), text.len), SASL_DONE);
	sasl_free(&s);

	sasl_init(&s, SASL_MECH_LOGIN);
	buf_reset(&text);
	CHECK_INT(base64_encode(user, SASL_USER_MAX + 1, &text), 0);
	CHECK_INT(sasl_start(&s, buf_cstr(&text), text.len), SASL_ERROR);
	CHECK_INT(s.error, SASL_ERROR_MALFORMED);
	sasl_free(&s);

	sasl_init(&s, SASL_MECH_LOGIN);
	CHECK_INT(sasl_start(&s, NULL, 0), SASL_CHALLENGE);
	CHECK_INT(sasl_step(&s, "dQ==", strlen("dQ==")), SASL_CHALLENGE);
	buf_reset(&text);
	CHECK_INT(base64_encode(password, SASL_PASSWORD_MAX + 1, &text), 0);
	CHECK_INT(sasl_step(&s, buf_cstr(&text), text.len), SASL_ERROR);
	CHECK_STR(s.error_text, "password too long");
	sasl_free(&s);
	buf_free(&text);
}

UNIT_MAIN(UNIT_CASE(test_exchanges), UNIT_CASE(test_mechanisms),
    UNIT_CASE(test_limits), UNIT_CASE(test_login_limits))
