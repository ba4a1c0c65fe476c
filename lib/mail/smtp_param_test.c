/* SPDX-License-Identifier: MIT */
/*
 * Tables of command lines and how they split into verb and argument, and
 * of ESMTP parameters and the reply each gets: SIZE, BODY,
 * SMTPUTF8, DSN (RET, ENVID, NOTIFY, ORCPT), AUTH, xtext both ways, and
 * BDAT arguments; parameters of extensions that were not offered are
 * refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/qfile.h"
#include "mail/smtp_param.h"
#include "unit.h"

#define ALL_EXTS                                                   \
	(SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | \
	    SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN | SMTP_EXT_AUTH)

static void
test_command_split(void)
{
	static const struct {
		const char *in; /* as a buf holds it: len bytes, then NUL */
		size_t len;     /* 0: strlen(in) */
		int ret;
		const char *verb, *arg;
	} cases[] = {
	    {"QUIT", 0, 0, "QUIT", ""},
	    {"quit   ", 0, 0, "quit", ""},
	    {"MAIL FROM:<a@b> SIZE=10", 0, 0, "MAIL", "FROM:<a@b> SIZE=10"},
	    {"MAIL  FROM:<a@b>  ", 0, 0, "MAIL", "FROM:<a@b>"},
	    {"RCPT TO:<a@b>\t", 0, 0, "RCPT", "TO:<a@b>\t"},
	    {"HELO\tx", 0, 0, "HELO\tx", ""},
	    {"", 0, -1, NULL, NULL},
	    {"    ", 0, -1, NULL, NULL},
	    {" NOOP", 0, -1, NULL, NULL},
	    {"NO\0OP", 5, -1, NULL, NULL},
	    {"NOOP \0", 6, -1, NULL, NULL},
	};
	char line[64], *arg;
	size_t i, len, verb_len;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].in);
		memcpy(line, cases[i].in, len);
		line[len] = '\0';
		arg = NULL;
		verb_len = 0;
		r = smtp_command_split(line, len, &verb_len, &arg);
		if (r != cases[i].ret) {
			printf("#   case %zu: got %d\n", i, r);
			CHECK(!"command split");
		} else if (r == 0) {
			CHECK_INT(verb_len, strlen(cases[i].verb));
			CHECK(strncmp(line, cases[i].verb, verb_len) == 0);
			CHECK_STR(arg, cases[i].arg);
		}
	}
}

static void
test_mail(void)
{
	static const struct {
		const char *in;
		unsigned exts;
		int code; /* 0 = accepted */
		const char *envid;
		int body, ret, utf8;
	} cases[] = {
	    {"", ALL_EXTS, 0, NULL, SMTP_BODY_NONE, SMTP_RET_NONE, 0},
	    {"SIZE=1000 BODY=8BITMIME", ALL_EXTS, 0, NULL, SMTP_BODY_8BITMIME,
	        SMTP_RET_NONE, 0},
	    {"body=binarymime smtputf8", ALL_EXTS, 0, NULL,
	        SMTP_BODY_BINARYMIME, SMTP_RET_NONE, 1},
	    {"RET=HDRS ENVID=QQ314159", ALL_EXTS, 0, "QQ314159", SMTP_BODY_NONE,
	        SMTP_RET_HDRS, 0},
	    {"ENVID=a+2Bb+3Dc", ALL_EXTS, 0, "a+b=c", SMTP_BODY_NONE,
	        SMTP_RET_NONE, 0},
	    {"ret=full", ALL_EXTS, 0, NULL, SMTP_BODY_NONE, SMTP_RET_FULL, 0},
	    {"AUTH=<>", ALL_EXTS, 0, NULL, SMTP_BODY_NONE, SMTP_RET_NONE, 0},
	    {"SIZE=", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"SIZE=12x", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"SIZE=123456789012345678901", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"SIZE=1 SIZE=2", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"BODY=9BIT", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"BODY=BINARYMIME", SMTP_EXT_8BITMIME, 501, NULL, 0, 0, 0},
	    {"RET=ALL", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=a+2b", ALL_EXTS, 501, NULL, 0, 0, 0}, /* lower-case hex */
	    {"ENVID=a+2", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=a=b", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=a+00b", ALL_EXTS, 501, NULL, 0, 0, 0}, /* NUL */
	    /* RFC 3461 4.4: printable US-ASCII once decoded. */
	    {"ENVID=a+20b", ALL_EXTS, 0, "a b", SMTP_BODY_NONE, SMTP_RET_NONE,
	        0},
	    {"ENVID=QQ+0D+0AX-Injected:+20yes", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=a+09b", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=a+7Fb", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"ENVID=+C3+A9", ALL_EXTS, 501, NULL, 0, 0, 0},
	    {"SMTPUTF8=yes", ALL_EXTS, 555, NULL, 0, 0, 0},
	    {"RET=FULL", SMTP_EXT_SIZE, 555, NULL, 0, 0, 0},
	    {"SMTPUTF8", SMTP_EXT_DSN, 555, NULL, 0, 0, 0},
	    {"X=1", ALL_EXTS, 555, NULL, 0, 0, 0},
	    {"A B C D E F G H I J K L M N O P Q", ALL_EXTS, 501, NULL, 0, 0, 0},
	};
	struct smtp_mail_params p;
	struct smtp_param_error e;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = smtp_mail_params_parse(cases[i].in, cases[i].exts, &p, &e);
		if ((r == 0) != (cases[i].code == 0) ||
		    (r < 0 && e.code != cases[i].code)) {
			printf("#   case %zu \"%s\": got %d %d\n", i,
			    cases[i].in, r, r < 0 ? e.code : 0);
			CHECK(!"mail params");
		} else if (r == 0) {
			if (cases[i].envid != NULL)
				CHECK_STR(p.envid, cases[i].envid);
			else
				CHECK(p.envid == NULL);
			CHECK_INT(p.body, cases[i].body);
			CHECK_INT(p.ret, cases[i].ret);
			CHECK_INT(p.smtputf8, cases[i].utf8);
		} else {
			CHECK(e.status != NULL && e.text != NULL);
		}
		smtp_mail_params_free(&p);
	}
	CHECK_INT(smtp_mail_params_parse("SIZE=4096", ALL_EXTS, &p, &e), 0);
	CHECK_INT(p.has_size, 1);
	CHECK_INT(p.size, 4096);
	CHECK_INT(smtp_mail_params_parse(
	              "SIZE=99999999999999999999", ALL_EXTS, &p, &e),
	    0);
	CHECK(p.size == UINT64_MAX);
	CHECK_INT(smtp_mail_params_parse("AUTH=a+2Bb@x", ALL_EXTS, &p, &e), 0);
	CHECK_STR(p.auth, "a+b@x");
	smtp_mail_params_free(&p);
}

static void
test_rcpt(void)
{
	static const struct {
		const char *in;
		int code;
		unsigned notify;
		const char *orcpt;
	} cases[] = {
	    {"", 0, 0, NULL},
	    {"NOTIFY=NEVER", 0, QRCPT_NOTIFY_NEVER, NULL},
	    {"NOTIFY=SUCCESS,FAILURE", 0,
	        QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE, NULL},
	    {"notify=delay,success,failure", 0,
	        QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE |
	            QRCPT_NOTIFY_DELAY,
	        NULL},
	    {"ORCPT=rfc822;Bob+40Example.COM", 0, 0, "rfc822;Bob@Example.COM"},
	    {"ORCPT=utf-8;j\xc3\xb6s\xc3\xa9@example.test NOTIFY=FAILURE", 0,
	        QRCPT_NOTIFY_FAILURE, "utf-8;j\xc3\xb6s\xc3\xa9@example.test"},
	    {"NOTIFY=NEVER,SUCCESS", 501, 0, NULL},
	    {"NOTIFY=", 501, 0, NULL},
	    {"NOTIFY=SUCCESS,,DELAY", 501, 0, NULL},
	    {"NOTIFY=SUCCESS,", 501, 0, NULL},
	    {"NOTIFY=FAILURE,FAILURE", 501, 0, NULL},
	    {"NOTIFY=SOMETIMES", 501, 0, NULL},
	    {"NOTIFY=NEVER NOTIFY=NEVER", 501, 0, NULL},
	    {"ORCPT=bob@example.com", 501, 0, NULL},
	    {"ORCPT=rfc822;", 501, 0, NULL},
	    {"ORCPT=;bob", 501, 0, NULL},
	    {"ORCPT=rfc 822;bob", 501, 0, NULL},
	    {"ORCPT=rfc822;a+4", 501, 0, NULL},
	    {"ORCPT=utf-8;\xc3", 501, 0, NULL},
	    /* RFC 3461 4.2: printable US-ASCII once decoded. */
	    {"ORCPT=rfc822;a+20b@example.com", 0, 0, "rfc822;a b@example.com"},
	    {"ORCPT=rfc822;g+0Bx@example.org", 501, 0, NULL},
	    {"ORCPT=rfc822;a+0D+0Ab@example.com", 501, 0, NULL},
	    {"ORCPT=rfc822;+C3+A9@example.com", 501, 0, NULL},
	    {"FOO=bar", 555, 0, NULL},
	};
	struct smtp_rcpt_params p;
	struct smtp_param_error e;
	char *long_orcpt;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = smtp_rcpt_params_parse(cases[i].in, ALL_EXTS, &p, &e);
		if ((r == 0) != (cases[i].code == 0) ||
		    (r < 0 && e.code != cases[i].code)) {
			printf("#   case %zu \"%s\": got %d %d\n", i,
			    cases[i].in, r, r < 0 ? e.code : 0);
			CHECK(!"rcpt params");
		} else if (r == 0) {
			CHECK_INT(p.notify, cases[i].notify);
			if (cases[i].orcpt != NULL)
				CHECK_STR(p.orcpt, cases[i].orcpt);
			else
				CHECK(p.orcpt == NULL);
		}
		smtp_rcpt_params_free(&p);
	}
	/* DSN parameters without DSN offered. */
	CHECK_INT(
	    smtp_rcpt_params_parse("NOTIFY=NEVER", SMTP_EXT_SIZE, &p, &e), -1);
	CHECK_INT(e.code, 555);
	smtp_rcpt_params_free(&p);
	/* RFC 3461 4.2: 500 characters at most. */
	long_orcpt = calloc(1, 600);
	memcpy(long_orcpt, "ORCPT=rfc822;", 13);
	memset(long_orcpt + 13, 'a', 500);
	CHECK_INT(smtp_rcpt_params_parse(long_orcpt, ALL_EXTS, &p, &e), -1);
	smtp_rcpt_params_free(&p);
	free(long_orcpt);
}

static void
test_xtext(void)
{
	static const char raw[] = "a+b=c d\x01\xff~";
	struct buf enc, dec;

	buf_init(&enc, 256);
	buf_init(&dec, 256);
	CHECK_INT(xtext_encode(raw, strlen(raw), &enc), 0);
	CHECK_STR(buf_cstr(&enc), "a+2Bb+3Dc+20d+01+FF~");
	CHECK_INT(xtext_decode(enc.data, enc.len, &dec), 0);
	CHECK_STR(buf_cstr(&dec), raw);
	buf_reset(&dec);
	CHECK_INT(xtext_decode("+G0", 3, &dec), -1);
	CHECK_INT(xtext_decode("x y", 3, &dec), -1);
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_bdat(void)
{
	static const struct {
		const char *in;
		int ret;
		uint64_t size;
		int last;
	} cases[] = {
	    {"0", 0, 0, 0},
	    {"1000", 0, 1000, 0},
	    {"42 LAST", 0, 42, 1},
	    {"0 last", 0, 0, 1},
	    {"7  LAST", 0, 7, 1},
	    {"", -1, 0, 0},
	    {"-1", -1, 0, 0},
	    {"12a", -1, 0, 0},
	    {"12 FIRST", -1, 0, 0},
	    {"12 LAST x", -1, 0, 0},
	    {"123456789012345678901", -1, 0, 0},
	    {"99999999999999999999", -1, 0, 0},
	};
	uint64_t size;
	size_t i;
	int last;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size = 12345;
		last = -1;
		if (smtp_bdat_parse(cases[i].in, &size, &last) !=
		    cases[i].ret) {
			printf("#   case %zu \"%s\"\n", i, cases[i].in);
			CHECK(!"bdat");
		} else if (cases[i].ret == 0) {
			CHECK(size == cases[i].size);
			CHECK_INT(last, cases[i].last);
		}
	}
}

UNIT_MAIN(UNIT_CASE(test_command_split), UNIT_CASE(test_mail),
    UNIT_CASE(test_rcpt), UNIT_CASE(test_xtext), UNIT_CASE(test_bdat))
