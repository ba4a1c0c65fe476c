/* SPDX-License-Identifier: MIT */
/*
 * AUTH to a smarthost (RFC 4954): with smtp_sasl_auth_enable, the
 * credentials of smtp_sasl_password_maps ("user:password", looked up by
 * the nexthop as written, e.g. "[mail.isp.example]:587", then its
 * domain, then the exchanger's name, as Postfix does) are sent with
 * PLAIN (RFC 4616) or LOGIN, and only over TLS unless smtp_sasl_tls_only
 * is off: a password must not cross the network in the clear. A peer
 * that does not offer AUTH gets the mail without it. A refused login
 * moves on to the next exchanger and at worst defers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "smtp.h"

#define SMTP_SASL_MAX 1024

static struct map_list *smtp_sasl_maps;

int
smtp_sasl_init(void)
{
	char *err = NULL;

	smtp_sasl_maps = map_list_open("smtp_sasl_password_maps",
	    var_smtp_sasl_password_maps, &err);
	if (smtp_sasl_maps == NULL) {
		msg_error("%s", err);
		free(err);
		return -1;
	}
	return 0;
}

void
smtp_sasl_shutdown(void)
{
	map_list_free(&smtp_sasl_maps);
}

/* "user:password" for this session, or NULL. */
static char *
smtp_sasl_creds(const struct smtp_sess *s, const struct smtp_msg *m)
{
	const char *keys[] = {m->nexthop, m->domain, s->t.host, NULL};
	const char *value, *err;
	int i, rc;

	for (i = 0; keys[i] != NULL; i++) {
		rc = map_list_lookup(smtp_sasl_maps, keys[i], &value, &err);
		if (rc < 0)
			msg_warn("smtp_sasl_password_maps: %s", err);
		if (rc > 0)
			return xstrdup(value);
	}
	return NULL;
}

/* Sends base64(data) as one line; -1 on a write failure. */
static int
smtp_sasl_send(struct smtp_sess *s, const char *prefix, const char *data,
    size_t len)
{
	struct buf b;
	int rc;

	buf_init(&b, SMTP_SASL_MAX * 2);
	rc = base64_encode(data, len, &b);
	if (rc == 0)
		rc = smtp_cmd(s, "%s%s", prefix, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

static int
smtp_sasl_step(struct smtp_sess *s)
{
	if (smtp_flush(s, "performing AUTH", var_smtp_helo_timeout) < 0)
		return -1;
	return smtp_read(s, "performing AUTH", var_smtp_helo_timeout);
}

enum smtp_sess_result
smtp_sasl_auth(struct smtp_sess *s, struct smtp_msg *m)
{
	char *creds, *colon, plain[SMTP_SASL_MAX];
	enum smtp_sess_result res = SMTP_SESS_NEXT;
	int code = -1, n;

	if (!var_smtp_sasl_auth_enable || (creds = smtp_sasl_creds(s, m)) == NULL)
		return SMTP_SESS_OK;
	if ((colon = strchr(creds, ':')) == NULL) {
		msg_warn("smtp_sasl_password_maps: no ':' in the entry for %s",
		    m->nexthop);
		free(creds);
		return SMTP_SESS_OK;
	}
	*colon = '\0';
	if (!(s->ehlo.ext & SMTP_EHLO_AUTH)) {
		free(creds);
		return SMTP_SESS_OK;
	}
	if (!s->tls && var_smtp_sasl_tls_only) {
		smtp_sess_fail(s, "4.7.0",
		    "not sending the password to %s without TLS "
		    "(smtp_sasl_tls_only)",
		    s->relay_short);
		free(creds);
		return SMTP_SESS_NEXT;
	}
	s->secret = 1;
	if (smtp_ehlo_has_auth(&s->ehlo, "PLAIN")) {
		/* authzid NUL authcid NUL password */
		n = snprintf(plain, sizeof(plain), "%c%s%c%s", 0, creds, 0,
		    colon + 1);
		if (n > 0 && (size_t)n < sizeof(plain) &&
		    smtp_sasl_send(s, "AUTH PLAIN ", plain, (size_t)n) == 0)
			code = smtp_sasl_step(s);
	} else if (smtp_ehlo_has_auth(&s->ehlo, "LOGIN")) {
		if (smtp_cmd(s, "AUTH LOGIN") == 0 &&
		    (code = smtp_sasl_step(s)) == 334 &&
		    smtp_sasl_send(s, "", creds, strlen(creds)) == 0 &&
		    (code = smtp_sasl_step(s)) == 334 &&
		    smtp_sasl_send(s, "", colon + 1, strlen(colon + 1)) == 0)
			code = smtp_sasl_step(s);
	} else {
		msg_warn("%s offers no SASL mechanism tern has (PLAIN, LOGIN): "
		         "sending without AUTH",
		    s->relay_short);
		s->secret = 0;
		res = SMTP_SESS_OK;
		goto out;
	}
	s->secret = 0;
	explicit_bzero(plain, sizeof(plain));
	if (code / 100 == 2) {
		res = SMTP_SESS_OK;
	} else if (code >= 0) {
		smtp_sess_fail(s, "4.7.0",
		    "SASL authentication failed; server %s said: %s",
		    s->relay_short, buf_cstr(&s->reply.text));
		s->reusable = 0;
	}
out:
	explicit_bzero(creds, strlen(creds) + strlen(colon + 1) + 1);
	free(creds);
	return res;
}
