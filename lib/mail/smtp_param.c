/* SPDX-License-Identifier: MIT */
/*
 * The SMTP command line (RFC 5321 4.1.1) and ESMTP parameters
 * (smtp_param.h): RFC 5321 4.1.2 esmtp-param syntax,
 * SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531),
 * RET/ENVID/NOTIFY/ORCPT (RFC 3461), AUTH (RFC 4954 5) and the xtext
 * encoding (RFC 3461 4). Keywords compare case-insensitively; every
 * value is checked against its grammar and length before it is kept,
 * and a parameter given twice is an error. Nothing here echoes client
 * text: the reply texts are constants.
 */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "mail/qfile.h"
#include "mail/smtp_param.h"

#define HEX_UPPER       "0123456789ABCDEF"
#define DIGITS          "0123456789"
#define XTEXT_MIN       '!'
#define XTEXT_MAX       '~'
/* RFC 3461 4.2 addr-type is an atom; "rfc822" and RFC 6533 "utf-8". */
#define ORCPT_TYPE_MAX  32
#define PARAM_VALUE_MAX 1024
#define BDAT_LAST       "LAST"
#define KEY(k)          k, sizeof(k) - 1

enum param_id {
	PARAM_SIZE,
	PARAM_BODY,
	PARAM_SMTPUTF8,
	PARAM_RET,
	PARAM_ENVID,
	PARAM_AUTH,
	PARAM_NOTIFY,
	PARAM_ORCPT,
};

struct param_spec {
	const char *key; /* with '=' when it takes a value */
	size_t len;
	unsigned ext; /* offered when any of these is */
	enum param_id id;
};

int
smtp_command_split(char *line, size_t len, size_t *verb_len_r, char **arg_r)
{
	size_t verb_len;
	char *arg;

	/* Trailing spaces are not part of the last argument. */
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	/* A NUL byte is never a command (nor the end of one). */
	if (len == 0 || memchr(line, '\0', len) != NULL)
		return -1;
	verb_len = strcspn(line, " ");
	if (verb_len == 0)
		return -1;
	for (arg = line + verb_len; *arg == ' '; arg++)
		;
	*verb_len_r = verb_len;
	*arg_r = arg;
	return 0;
}

static void
param_error(
    struct smtp_param_error *e, int code, const char *status, const char *text)
{
	e->code = code;
	e->status = status;
	e->text = text;
}

/* Value of an upper-case hex digit (RFC 3461 4: HEXCHAR), or -1. */
static int
hex_value(char c)
{
	const char *p = c != '\0' ? strchr(HEX_UPPER, c) : NULL;

	return p != NULL ? (int)(p - HEX_UPPER) : -1;
}

int
xtext_decode(const char *in, size_t len, struct buf *out)
{
	size_t i;
	int c, hi, lo;

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '+') {
			if (len - i < 3 || (hi = hex_value(in[i + 1])) < 0 ||
			    (lo = hex_value(in[i + 2])) < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (c < XTEXT_MIN || c > XTEXT_MAX || c == '=') {
			return -1;
		}
		if (buf_putc(out, (char)c) < 0)
			return -1;
	}
	return 0;
}

int
xtext_encode(const char *in, size_t len, struct buf *out)
{
	size_t i;
	int c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c < XTEXT_MIN || c > XTEXT_MAX || c == '+' || c == '=') {
			if (buf_printf(out, "+%c%c", HEX_UPPER[c >> 4],
			        HEX_UPPER[c & 0xf]) < 0)
				return -1;
		} else if (buf_putc(out, (char)c) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Decodes xtext into a malloc'd string of at most max bytes; NULL if bad
 * (or with a NUL inside, which no envelope text may carry). */
static char *
xtext_dup(const char *in, size_t max)
{
	struct buf b;

	buf_init(&b, max);
	if (xtext_decode(in, strlen(in), &b) < 0 ||
	    memchr(buf_cstr(&b), '\0', b.len) != NULL) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/*
 * RFC 3461 4.2 and 4.4: an ORCPT address and an ENVID, once xtext is
 * decoded, "MUST consist entirely of printable (graphic and white space)
 * characters from the US-ASCII repertoire": both are copied into the
 * header fields of a delivery status notification (RFC 3464), where a
 * control character or a line break would break or forge a field.
 */
static int
printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
			return 0;
	return 1;
}

/*
 * Matches field against the table: the spec, and *value_r after '=' (or
 * NULL for a keyword without one). NULL if no keyword matches.
 */
static const struct param_spec *
param_find(const struct param_spec *specs, size_t n, const char *field,
    const char **value_r)
{
	size_t i, flen = strlen(field);

	for (i = 0; i < n; i++) {
		if (specs[i].key[specs[i].len - 1] == '=') {
			if (str_prefix_ci(field, flen, specs[i].key)) {
				*value_r = field + specs[i].len;
				return &specs[i];
			}
		} else if (str_eq_ci(field, specs[i].key)) {
			*value_r = NULL;
			return &specs[i];
		}
	}
	return NULL;
}

/*
 * Splits params at spaces into fields[] (a malloc'd copy in *copy_r).
 * -1 when there are too many.
 */
static int
param_split(const char *params, char **copy_r, char **fields)
{
	*copy_r = xstrdup(params);
	return str_split(*copy_r, " ", fields, SMTP_PARAMS_MAX);
}

static const struct param_spec mail_specs[] = {
    {KEY("SIZE="), SMTP_EXT_SIZE, PARAM_SIZE},
    {KEY("BODY="), SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, PARAM_BODY},
    {KEY("SMTPUTF8"), SMTP_EXT_SMTPUTF8, PARAM_SMTPUTF8},
    {KEY("RET="), SMTP_EXT_DSN, PARAM_RET},
    {KEY("ENVID="), SMTP_EXT_DSN, PARAM_ENVID},
    {KEY("AUTH="), SMTP_EXT_AUTH, PARAM_AUTH},
};
#define MAIL_SPECS (sizeof(mail_specs) / sizeof(mail_specs[0]))

static int
mail_size(const char *v, struct smtp_mail_params *p, struct smtp_param_error *e)
{
	/* All digits but too big for 64 bits is a size over any limit,
	 * not bad syntax. */
	if (*v == '\0' || strlen(v) > SMTP_SIZE_DIGITS ||
	    v[strspn(v, DIGITS)] != '\0') {
		param_error(e, 501, "5.5.4", "Bad message size syntax");
		return -1;
	}
	if (str_to_u64(v, UINT64_MAX, &p->size) < 0)
		p->size = UINT64_MAX;
	p->has_size = 1;
	return 0;
}

static int
mail_body(const char *v, unsigned exts, struct smtp_mail_params *p,
    struct smtp_param_error *e)
{
	if (str_eq_ci(v, "7BIT"))
		p->body = SMTP_BODY_7BIT;
	else if (str_eq_ci(v, "8BITMIME") && (exts & SMTP_EXT_8BITMIME))
		p->body = SMTP_BODY_8BITMIME;
	else if (str_eq_ci(v, "BINARYMIME") && (exts & SMTP_EXT_BINARYMIME))
		p->body = SMTP_BODY_BINARYMIME;
	else {
		param_error(e, 501, "5.5.4", "Unsupported BODY parameter");
		return -1;
	}
	return 0;
}

static int
mail_param(const struct param_spec *spec, const char *v, unsigned exts,
    void *ctx, struct smtp_param_error *e)
{
	struct smtp_mail_params *p = ctx;

	switch (spec->id) {
	case PARAM_SIZE:
		return mail_size(v, p, e);
	case PARAM_BODY:
		return mail_body(v, exts, p, e);
	case PARAM_SMTPUTF8:
		p->smtputf8 = 1;
		return 0;
	case PARAM_RET:
		if (str_eq_ci(v, "FULL"))
			p->ret = SMTP_RET_FULL;
		else if (str_eq_ci(v, "HDRS"))
			p->ret = SMTP_RET_HDRS;
		else {
			param_error(
			    e, 501, "5.5.4", "Bad RET parameter syntax");
			return -1;
		}
		return 0;
	case PARAM_ENVID:
		if (*v == '\0' ||
		    (p->envid = xtext_dup(v, SMTP_ENVID_MAX)) == NULL ||
		    !printable_ascii(p->envid)) {
			free(p->envid);
			p->envid = NULL;
			param_error(
			    e, 501, "5.5.4", "Bad ENVID parameter syntax");
			return -1;
		}
		return 0;
	default:
		if (*v == '\0' ||
		    (p->auth = xtext_dup(v, PARAM_VALUE_MAX)) == NULL) {
			param_error(
			    e, 501, "5.5.4", "Bad AUTH parameter syntax");
			return -1;
		}
		return 0;
	}
}

/* One parameter, its spec found and not a duplicate; 0 or -1. */
typedef int param_fn(const struct param_spec *spec, const char *value,
    unsigned exts, void *ctx, struct smtp_param_error *e);

/*
 * The loop both commands share: split, find each keyword among specs
 * (offered extensions only), refuse a repeat, hand the rest to fn.
 */
static int
params_parse(const char *params, const struct param_spec *specs, size_t nspecs,
    unsigned exts, const char *unsupported, const char *duplicate, param_fn *fn,
    void *ctx, struct smtp_param_error *err_r)
{
	const struct param_spec *spec;
	char *copy, *fields[SMTP_PARAMS_MAX];
	const char *value;
	unsigned seen = 0, bit;
	int n, i;

	n = param_split(params, &copy, fields);
	if (n < 0) {
		param_error(err_r, 501, "5.5.4", "Error: too many parameters");
		free(copy);
		return -1;
	}
	for (i = 0; i < n; i++) {
		spec = param_find(specs, nspecs, fields[i], &value);
		if (spec == NULL || (spec->ext & exts) == 0) {
			param_error(err_r, 555, "5.5.4", unsupported);
			break;
		}
		bit = 1u << spec->id;
		if (seen & bit) {
			param_error(err_r, 501, "5.5.4", duplicate);
			break;
		}
		seen |= bit;
		if (fn(spec, value, exts, ctx, err_r) < 0)
			break;
	}
	free(copy);
	return i < n ? -1 : 0;
}

int
smtp_mail_params_parse(const char *params, unsigned exts,
    struct smtp_mail_params *p, struct smtp_param_error *err_r)
{
	memset(p, 0, sizeof(*p));
	return params_parse(params, mail_specs, MAIL_SPECS, exts,
	    "Unsupported MAIL parameter", "Duplicate MAIL parameter",
	    mail_param, p, err_r);
}

void
smtp_mail_params_free(struct smtp_mail_params *p)
{
	free(p->envid);
	free(p->auth);
	p->envid = p->auth = NULL;
}

static const struct param_spec rcpt_specs[] = {
    {KEY("NOTIFY="), SMTP_EXT_DSN, PARAM_NOTIFY},
    {KEY("ORCPT="), SMTP_EXT_DSN, PARAM_ORCPT},
};
#define RCPT_SPECS (sizeof(rcpt_specs) / sizeof(rcpt_specs[0]))

/* RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
static int
rcpt_notify(const char *v, unsigned *notify_r)
{
	char *copy = xstrdup(v), *words[4];
	unsigned mask = 0, bit;
	int n, i, ret = 0;

	n = *v != '\0' && v[strlen(v) - 1] != ',' && v[0] != ',' &&
	            strstr(v, ",,") == NULL
	        ? str_split(copy, ",", words, 4)
	        : -1;
	for (i = 0; i < n && ret == 0; i++) {
		if (str_eq_ci(words[i], "NEVER"))
			bit = QRCPT_NOTIFY_NEVER;
		else if (str_eq_ci(words[i], "SUCCESS"))
			bit = QRCPT_NOTIFY_SUCCESS;
		else if (str_eq_ci(words[i], "FAILURE"))
			bit = QRCPT_NOTIFY_FAILURE;
		else if (str_eq_ci(words[i], "DELAY"))
			bit = QRCPT_NOTIFY_DELAY;
		else
			bit = 0;
		if (bit == 0 || (mask & bit))
			ret = -1;
		mask |= bit;
	}
	if (n <= 0 ||
	    ((mask & QRCPT_NOTIFY_NEVER) && mask != QRCPT_NOTIFY_NEVER))
		ret = -1;
	free(copy);
	if (ret == 0)
		*notify_r = mask;
	return ret;
}

/* RFC 3461 4.2 "addr-type ; xtext"; RFC 6533 utf-8 addresses are kept
 * as given once they are valid UTF-8 without controls. */
static char *
rcpt_orcpt(const char *v)
{
	const char *semi = strchr(v, ';');
	size_t tlen, i;
	char *addr, *out;

	if (semi == NULL || strlen(v) > SMTP_ORCPT_MAX)
		return NULL;
	tlen = (size_t)(semi - v);
	if (tlen == 0 || tlen > ORCPT_TYPE_MAX)
		return NULL;
	for (i = 0; i < tlen; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') ||
		        (v[i] >= 'A' && v[i] <= 'Z') ||
		        (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return NULL;
	if (str_prefix_ci(v, tlen, "utf-8") && tlen == strlen("utf-8")) {
		for (i = tlen + 1; v[i] != '\0'; i++)
			if ((unsigned char)v[i] < 0x21 ||
			    (unsigned char)v[i] == 0x7f)
				return NULL;
		if (v[tlen + 1] == '\0' ||
		    !str_utf8_valid(v + tlen + 1, strlen(v + tlen + 1)))
			return NULL;
		return xstrdup(v);
	}
	addr = xtext_dup(semi + 1, SMTP_ORCPT_MAX);
	if (addr == NULL || *addr == '\0' || !printable_ascii(addr)) {
		free(addr);
		return NULL;
	}
	out = xasprintf("%.*s;%s", (int)tlen, v, addr);
	free(addr);
	return out;
}

static int
rcpt_param_fn(const struct param_spec *spec, const char *value, unsigned exts,
    void *ctx, struct smtp_param_error *e)
{
	struct smtp_rcpt_params *p = ctx;

	(void)exts;
	if (spec->id == PARAM_NOTIFY && rcpt_notify(value, &p->notify) < 0) {
		param_error(e, 501, "5.5.4", "Bad NOTIFY parameter syntax");
		return -1;
	}
	if (spec->id == PARAM_ORCPT && (p->orcpt = rcpt_orcpt(value)) == NULL) {
		param_error(e, 501, "5.5.4", "Bad ORCPT parameter syntax");
		return -1;
	}
	return 0;
}

int
smtp_rcpt_params_parse(const char *params, unsigned exts,
    struct smtp_rcpt_params *p, struct smtp_param_error *err_r)
{
	memset(p, 0, sizeof(*p));
	return params_parse(params, rcpt_specs, RCPT_SPECS, exts,
	    "Unsupported RCPT parameter", "Duplicate RCPT parameter",
	    rcpt_param_fn, p, err_r);
}

void
smtp_rcpt_params_free(struct smtp_rcpt_params *p)
{
	free(p->orcpt);
	p->orcpt = NULL;
}

int
smtp_bdat_parse(const char *arg, uint64_t *size_r, int *last_r)
{
	size_t n = strspn(arg, DIGITS);
	const char *rest = arg + n;

	if (n == 0 || n > SMTP_SIZE_DIGITS ||
	    str_to_u64_n(arg, n, UINT64_MAX, size_r) < 0)
		return -1;
	if (*rest == '\0') {
		*last_r = 0;
		return 0;
	}
	if (*rest != ' ')
		return -1;
	while (*rest == ' ')
		rest++;
	if (!str_eq_ci(rest, BDAT_LAST))
		return -1;
	*last_r = 1;
	return 0;
}
