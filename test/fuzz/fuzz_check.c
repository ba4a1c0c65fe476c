/* SPDX-License-Identifier: MIT */
/*
 * Invariants of the envelope parsers (fuzz_check.h): RFC 5321 4.1.2
 * paths and the limits of 4.5.3.1, RFC 6531 UTF-8 addresses, the ESMTP
 * parameters of RFC 1870, 6152, 3030, 3461 and 4954, checked against
 * what each header promises and by writing the result back and parsing
 * it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/qfile.h"
#include "mail/smtp_param.h"
#include "fuzz_check.h"
#include "fuzz_util.h"

/* Room for a parameter line written back: far above any parsed one. */
#define FUZZ_PARAMS_MAX     (64 * 1024)
#define FUZZ_ORCPT_TYPE_MAX 32 /* smtp_param.c: ORCPT_TYPE_MAX */
#define FUZZ_UTF8_TYPE      "utf-8"
#define FUZZ_NOTIFY_SFD \
	(QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE | QRCPT_NOTIFY_DELAY)

static int
has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static int
has_upper(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 1;
	return 0;
}

/* RFC 3461 4.2 and 4.4: "printable (graphic and white space) characters
 * from the US-ASCII repertoire" once xtext is decoded. */
static int
printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
			return 0;
	return 1;
}

static int
eq_ci(const char *a, const char *b)
{
	char *ua = fuzz_upper(a), *ub = fuzz_upper(b);
	int eq = strcmp(ua, ub) == 0;

	free(ua);
	free(ub);
	return eq;
}

void
fuzz_check_fold(const char *s)
{
	char *f1, *f2, *u, *lf, *local, *domain;
	size_t llen;

	f1 = addr_fold(s);
	u = fuzz_upper(s);
	f2 = addr_fold(u);
	FUZZ_CHECK(!has_upper(f1));
	FUZZ_CHECK(strcmp(f1, f2) == 0);
	lf = addr_local_fold(s);
	FUZZ_CHECK(strlen(lf) <= strlen(s));
	FUZZ_CHECK(!has_upper(lf));
	if (addr_split(s, &local, &domain) == 0) {
		llen = strlen(local);
		FUZZ_CHECK(llen > 0 && llen <= ADDR_LOCAL_MAX);
		FUZZ_CHECK(memcmp(s, local, llen) == 0);
		if (domain == NULL) {
			FUZZ_CHECK(s[llen] == '\0');
		} else {
			FUZZ_CHECK(s[llen] == '@');
			FUZZ_CHECK(*domain != '\0' &&
			           strlen(domain) <= ADDR_DOMAIN_MAX);
			FUZZ_CHECK(!has_upper(domain));
			FUZZ_CHECK(eq_ci(s + llen + 1, domain));
		}
	} else {
		FUZZ_CHECK(local == NULL && domain == NULL);
	}
	free(local);
	free(domain);
	free(lf);
	free(u);
	free(f1);
	free(f2);
}

/* A parsed address alone, or with every flag, parses to itself. */
static void
check_reparse(const char *addr, unsigned flags)
{
	unsigned all = flags | ADDR_EMPTY_OK | ADDR_UTF8_OK;
	const char *params, *error;
	char *wrapped = xasprintf("<%s>", addr), *again;

	FUZZ_CHECK(
	    addr_parse_path(wrapped, flags, &again, &params, &error) == 0);
	FUZZ_CHECK(strcmp(again, addr) == 0 && *params == '\0');
	free(again);
	FUZZ_CHECK(addr_parse_path(wrapped, all, &again, &params, &error) == 0);
	FUZZ_CHECK(strcmp(again, addr) == 0 && *params == '\0');
	free(again);
	free(wrapped);
}

static void
check_addr(const char *addr, unsigned flags)
{
	size_t len = strlen(addr), llen, i;
	char *local, *domain;
	unsigned char c;

	FUZZ_CHECK(len + 2 <= ADDR_PATH_MAX);
	FUZZ_CHECK(len > 0 || (flags & ADDR_EMPTY_OK));
	for (i = 0; i < len; i++) {
		c = (unsigned char)addr[i];
		FUZZ_CHECK(c >= ' ' && c != 0x7f);
		FUZZ_CHECK(c < 0x80 || (flags & ADDR_UTF8_OK));
	}
	FUZZ_CHECK(str_utf8_valid(addr, len));
	check_reparse(addr, flags);
	if (len == 0)
		return;
	/* addr_split finds the parts the parser saw. */
	FUZZ_CHECK(addr_split(addr, &local, &domain) == 0);
	llen = strlen(local);
	FUZZ_CHECK(memcmp(addr, local, llen) == 0);
	if (domain == NULL) {
		FUZZ_CHECK(llen == len);
	} else {
		FUZZ_CHECK(addr[llen] == '@');
		FUZZ_CHECK(eq_ci(addr + llen + 1, domain));
		if (!has_8bit(domain))
			FUZZ_CHECK(addr_domain_valid(domain));
	}
	free(local);
	free(domain);
	fuzz_check_fold(addr);
}

int
fuzz_check_path(
    const char *s, unsigned flags, char **addr_r, const char **params_r)
{
	const char *params = NULL, *error = NULL, *params2, *error2;
	char *addr = NULL, *u, *addr2, *ua;
	int r, r2;

	r = addr_parse_path(s, flags, &addr, &params, &error);
	/* Case changes nothing but the case of what comes out. */
	u = fuzz_upper(s);
	addr2 = NULL;
	params2 = error2 = NULL;
	r2 = addr_parse_path(u, flags, &addr2, &params2, &error2);
	FUZZ_CHECK(r2 == r);
	if (r < 0) {
		FUZZ_CHECK(error != NULL && *error != '\0');
		FUZZ_CHECK(strcmp(error, error2) == 0);
		if (error == addr_err_needs_utf8)
			FUZZ_CHECK(!(flags & ADDR_UTF8_OK) && has_8bit(s));
		free(u);
		*addr_r = NULL;
		*params_r = NULL;
		return -1;
	}
	FUZZ_CHECK(addr != NULL && params != NULL);
	FUZZ_CHECK(params >= s && params <= s + strlen(s));
	FUZZ_CHECK(*params != ' ');
	ua = fuzz_upper(addr);
	FUZZ_CHECK(strcmp(addr2, ua) == 0);
	FUZZ_CHECK(params2 - u == params - s);
	free(ua);
	free(addr2);
	free(u);
	check_addr(addr, flags);
	*addr_r = addr;
	*params_r = params;
	return 0;
}

static void
put_xtext(struct buf *out, const char *s)
{
	FUZZ_CHECK(xtext_encode(s, strlen(s), out) == 0);
}

static void
check_param_error(const struct smtp_param_error *e)
{
	FUZZ_CHECK(e->code == 501 || e->code == 555);
	FUZZ_CHECK(e->status != NULL && strcmp(e->status, "5.5.4") == 0);
	FUZZ_CHECK(e->text != NULL && *e->text != '\0');
}

static const char *
body_name(enum smtp_body body)
{
	switch (body) {
	case SMTP_BODY_7BIT:
		return "7BIT";
	case SMTP_BODY_8BITMIME:
		return "8BITMIME";
	case SMTP_BODY_BINARYMIME:
		return "BINARYMIME";
	default:
		return NULL;
	}
}

static int
str_same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

int
fuzz_check_mail_params(const char *params, unsigned exts)
{
	struct smtp_mail_params p, p2;
	struct smtp_param_error e;
	struct buf b;
	const char *body;

	if (smtp_mail_params_parse(params, exts, &p, &e) < 0) {
		check_param_error(&e);
		smtp_mail_params_free(&p);
		return -1;
	}
	FUZZ_CHECK(p.has_size ? (exts & SMTP_EXT_SIZE) != 0 : p.size == 0);
	switch (p.body) {
	case SMTP_BODY_NONE:
		break;
	case SMTP_BODY_7BIT:
		FUZZ_CHECK(exts & (SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME));
		break;
	case SMTP_BODY_8BITMIME:
		FUZZ_CHECK(exts & SMTP_EXT_8BITMIME);
		break;
	case SMTP_BODY_BINARYMIME:
		FUZZ_CHECK(exts & SMTP_EXT_BINARYMIME);
		break;
	default:
		FUZZ_CHECK(!"bad body");
	}
	FUZZ_CHECK(!p.smtputf8 || (exts & SMTP_EXT_SMTPUTF8));
	FUZZ_CHECK((p.ret == SMTP_RET_NONE && p.envid == NULL) ||
	           (exts & SMTP_EXT_DSN));
	FUZZ_CHECK(p.auth == NULL || ((exts & SMTP_EXT_AUTH) && *p.auth));
	if (p.envid != NULL) {
		FUZZ_CHECK(*p.envid != '\0');
		FUZZ_CHECK(strlen(p.envid) <= SMTP_ENVID_MAX);
		FUZZ_CHECK(printable_ascii(p.envid));
	}

	/* Written back in the canonical spelling, it parses the same. */
	buf_init(&b, FUZZ_PARAMS_MAX);
	if (p.has_size)
		FUZZ_CHECK(buf_printf(&b, " SIZE=%llu",
		               (unsigned long long)p.size) == 0);
	if ((body = body_name(p.body)) != NULL)
		FUZZ_CHECK(buf_printf(&b, " BODY=%s", body) == 0);
	if (p.smtputf8)
		FUZZ_CHECK(buf_puts(&b, " SMTPUTF8") == 0);
	if (p.ret != SMTP_RET_NONE)
		FUZZ_CHECK(
		    buf_puts(&b, p.ret == SMTP_RET_FULL ? " RET=FULL"
		                                        : " RET=HDRS") == 0);
	if (p.envid != NULL) {
		FUZZ_CHECK(buf_puts(&b, " ENVID=") == 0);
		put_xtext(&b, p.envid);
	}
	if (p.auth != NULL) {
		FUZZ_CHECK(buf_puts(&b, " AUTH=") == 0);
		put_xtext(&b, p.auth);
	}
	FUZZ_CHECK(smtp_mail_params_parse(buf_cstr(&b), exts, &p2, &e) == 0);
	FUZZ_CHECK(p2.has_size == p.has_size && p2.size == p.size);
	FUZZ_CHECK(p2.body == p.body && p2.smtputf8 == p.smtputf8);
	FUZZ_CHECK(p2.ret == p.ret);
	FUZZ_CHECK(str_same(p2.envid, p.envid) && str_same(p2.auth, p.auth));
	smtp_mail_params_free(&p2);
	smtp_mail_params_free(&p);
	buf_free(&b);
	return 0;
}

/* RFC 3461 4.2 "addr-type ; xtext", and RFC 6533 utf-8 kept as given. */
static void
check_orcpt(const char *orcpt)
{
	const char *semi = strchr(orcpt, ';'), *addr;
	size_t tlen, i;
	char c;

	FUZZ_CHECK(semi != NULL);
	tlen = (size_t)(semi - orcpt);
	FUZZ_CHECK(tlen > 0 && tlen <= FUZZ_ORCPT_TYPE_MAX);
	for (i = 0; i < tlen; i++) {
		c = orcpt[i];
		FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-');
	}
	addr = semi + 1;
	FUZZ_CHECK(*addr != '\0');
	if (tlen == strlen(FUZZ_UTF8_TYPE) &&
	    str_prefix_ci(orcpt, tlen, FUZZ_UTF8_TYPE)) {
		FUZZ_CHECK(str_utf8_valid(addr, strlen(addr)));
		for (i = 0; addr[i] != '\0'; i++)
			FUZZ_CHECK((unsigned char)addr[i] > ' ' &&
			           (unsigned char)addr[i] != 0x7f);
	} else {
		FUZZ_CHECK(printable_ascii(addr));
	}
}

int
fuzz_check_rcpt_params(const char *params, unsigned exts)
{
	static const struct {
		unsigned bit;
		const char *name;
	} notify[] = {
	    {QRCPT_NOTIFY_NEVER, "NEVER"},
	    {QRCPT_NOTIFY_SUCCESS, "SUCCESS"},
	    {QRCPT_NOTIFY_FAILURE, "FAILURE"},
	    {QRCPT_NOTIFY_DELAY, "DELAY"},
	};
	struct smtp_rcpt_params p, p2;
	struct smtp_param_error e;
	const char *semi, *sep = "";
	struct buf b;
	size_t i, tlen;

	if (smtp_rcpt_params_parse(params, exts, &p, &e) < 0) {
		check_param_error(&e);
		smtp_rcpt_params_free(&p);
		return -1;
	}
	FUZZ_CHECK((p.notify == 0 && p.orcpt == NULL) || (exts & SMTP_EXT_DSN));
	FUZZ_CHECK(p.notify == 0 || p.notify == QRCPT_NOTIFY_NEVER ||
	           (p.notify & ~(unsigned)FUZZ_NOTIFY_SFD) == 0);
	if (p.orcpt != NULL)
		check_orcpt(p.orcpt);

	buf_init(&b, FUZZ_PARAMS_MAX);
	if (p.notify != 0) {
		FUZZ_CHECK(buf_puts(&b, "NOTIFY=") == 0);
		for (i = 0; i < sizeof(notify) / sizeof(notify[0]); i++) {
			if (p.notify & notify[i].bit) {
				FUZZ_CHECK(buf_printf(&b, "%s%s", sep,
				               notify[i].name) == 0);
				sep = ",";
			}
		}
	}
	if (p.orcpt != NULL) {
		semi = strchr(p.orcpt, ';');
		tlen = (size_t)(semi - p.orcpt);
		FUZZ_CHECK(
		    buf_printf(&b, " ORCPT=%.*s;", (int)tlen, p.orcpt) == 0);
		if (tlen == strlen(FUZZ_UTF8_TYPE) &&
		    str_prefix_ci(p.orcpt, tlen, FUZZ_UTF8_TYPE))
			FUZZ_CHECK(buf_puts(&b, semi + 1) == 0);
		else
			put_xtext(&b, semi + 1);
	}
	FUZZ_CHECK(smtp_rcpt_params_parse(buf_cstr(&b), exts, &p2, &e) == 0);
	FUZZ_CHECK(p2.notify == p.notify && str_same(p2.orcpt, p.orcpt));
	smtp_rcpt_params_free(&p2);
	smtp_rcpt_params_free(&p);
	buf_free(&b);
	return 0;
}

int
fuzz_check_bdat(const char *arg)
{
	uint64_t size, size2;
	int last, last2;
	char text[64];

	if (smtp_bdat_parse(arg, &size, &last) < 0)
		return -1;
	FUZZ_CHECK(last == 0 || last == 1);
	FUZZ_CHECK(strspn(arg, "0123456789") <= SMTP_SIZE_DIGITS);
	snprintf(text, sizeof(text), "%llu%s", (unsigned long long)size,
	    last ? " LAST" : "");
	FUZZ_CHECK(smtp_bdat_parse(text, &size2, &last2) == 0);
	FUZZ_CHECK(size2 == size && last2 == last);
	return 0;
}
