/* SPDX-License-Identifier: MIT */
/*
 * TLS for the SMTP client: the policy of a destination and STARTTLS
 * (RFC 3207). The level comes from smtp_tls_security_level, or from
 * smtp_tls_policy_maps for the nexthop (Postfix's syntax: "verify",
 * "encrypt", "may", "none", "secure", optionally "match=name:name");
 * smtp_policy() is the one place that decides it, so DANE (RFC 7672)
 * and MTA-STS (RFC 8461) can later raise a destination's level there.
 *
 *   none     plaintext
 *   may      STARTTLS when offered; a failed handshake retries in
 *            plaintext (a broken TLS stack should not stop mail)
 *   encrypt  TLS required, any certificate
 *   verify   TLS required, a chain to smtp_tls_CAfile (or the system
 *            store) naming the exchanger (or a match= name)
 *   secure   the same, naming the nexthop domain (not the MX name,
 *            which an attacker on the DNS path could choose)
 *
 * Each established session is logged as Postfix does: "Trusted TLS
 * connection established to host[addr]:port: TLSv1.3 with cipher X
 * (256/256 bits)" (Untrusted: not verified; Anonymous: no certificate).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "tls/tls.h"
#include "smtp.h"

#define SMTP_POLICY_WORDS 8
/* Client TLS sessions kept per process for resumption (RFC 8446 2.2). */
#define SMTP_TLS_SESSIONS 16
#define SMTP_TLS_KEY_MAX  (SMTP_RELAY_MAX + DNS_NAME_MAX + 8)

/*
 * A session is resumed only with the same peer address, the same name
 * asked for and the same context (verified or not): a session that was
 * accepted without a check must not stand in for a verified one.
 */
struct smtp_tls_cached {
	char key[SMTP_TLS_KEY_MAX];
	struct tls_session *sess;
	unsigned long used;
};

static struct smtp_tls_cached smtp_tls_cache[SMTP_TLS_SESSIONS];
static unsigned long smtp_tls_clock;
static struct map_list *smtp_policy_maps;
static struct tls_client *smtp_tls_any;    /* may, encrypt */
static struct tls_client *smtp_tls_verify; /* verify, secure */

static int
smtp_tls_level_parse(const char *s, enum smtp_tls_level *level_r)
{
	static const char *names[] = {"none", "may", "encrypt", "verify",
	    "secure"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_eq_ci(s, names[i])) {
			*level_r = (enum smtp_tls_level)i;
			return 0;
		}
	return -1;
}

/*
 * The client contexts are made at the first STARTTLS of the process, not
 * at start: loading a CA store costs more than the rest of the process's
 * start, and most processes of a quiet site never need it. So the CA
 * file is read as mail_owner (trust anchors are public; tern check reads
 * it too). -1 when the context cannot be made.
 */
static struct tls_client *
smtp_tls_context(int verify)
{
	struct tls_client_config cfg;
	struct tls_client **cli = verify ? &smtp_tls_verify : &smtp_tls_any;
	const char *err;

	if (*cli != NULL)
		return *cli;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ca_file = *var_smtp_tls_CAfile != '\0' ? var_smtp_tls_CAfile : NULL;
	cfg.protocols = var_smtp_tls_protocols;
	cfg.verify = verify;
	if (tls_client_create(&cfg, cli, &err) < 0) {
		msg_warn("smtp TLS: %s", err);
		return NULL;
	}
	return *cli;
}

int
smtp_tls_check(void)
{
	return smtp_tls_context(0) != NULL && smtp_tls_context(1) != NULL ? 0
	                                                                 : -1;
}

int
smtp_tls_init(void)
{
	enum smtp_tls_level level;
	char *merr = NULL;

	if (smtp_tls_level_parse(var_smtp_tls_security_level, &level) < 0) {
		msg_error("smtp_tls_security_level: unknown level '%s' "
		          "(none, may, encrypt, verify, secure)",
		    var_smtp_tls_security_level);
		return -1;
	}
	smtp_policy_maps = map_list_open("smtp_tls_policy_maps",
	    var_smtp_tls_policy_maps, &merr);
	if (smtp_policy_maps == NULL) {
		msg_error("%s", merr);
		free(merr);
		return -1;
	}
	return 0;
}

static struct smtp_tls_cached *
smtp_tls_cache_find(const char *key)
{
	int i;

	for (i = 0; i < SMTP_TLS_SESSIONS; i++)
		if (smtp_tls_cache[i].sess != NULL &&
		    strcmp(smtp_tls_cache[i].key, key) == 0)
			return &smtp_tls_cache[i];
	return NULL;
}

/* Keeps st's session for key, in the least recently used slot. */
static void
smtp_tls_cache_put(const char *key, const struct stream *st)
{
	struct tls_session *sess = tls_stream_session_get(st);
	struct smtp_tls_cached *c = smtp_tls_cache_find(key);
	int i;

	if (sess == NULL)
		return;
	/* The key's own slot, else an empty one, else the least recent. */
	for (i = 0; c == NULL && i < SMTP_TLS_SESSIONS; i++)
		if (smtp_tls_cache[i].sess == NULL)
			c = &smtp_tls_cache[i];
	if (c == NULL) {
		c = &smtp_tls_cache[0];
		for (i = 1; i < SMTP_TLS_SESSIONS; i++)
			if (smtp_tls_cache[i].used < c->used)
				c = &smtp_tls_cache[i];
	}
	tls_session_free(&c->sess);
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->sess = sess;
	c->used = ++smtp_tls_clock;
}

void
smtp_tls_shutdown(void)
{
	int i;

	for (i = 0; i < SMTP_TLS_SESSIONS; i++)
		tls_session_free(&smtp_tls_cache[i].sess);
	tls_client_free(&smtp_tls_any);
	tls_client_free(&smtp_tls_verify);
	map_list_free(&smtp_policy_maps);
}

/* "level [match=a:b]" from a policy table. 0, or -1 when malformed. */
static int
smtp_policy_apply(struct smtp_policy *p, const char *value)
{
	char *copy = xstrdup(value), *w[SMTP_POLICY_WORDS + 1];
	int n, i, ret = 0;

	n = str_split(copy, " \t,", w, SMTP_POLICY_WORDS + 1);
	if (n < 1 || n > SMTP_POLICY_WORDS ||
	    smtp_tls_level_parse(w[0], &p->level) < 0)
		ret = -1;
	for (i = 1; i < n && ret == 0; i++) {
		if (strncmp(w[i], "match=", 6) == 0)
			snprintf(p->match, sizeof(p->match), "%s", w[i] + 6);
		/* Other attributes (protocols=, ciphers=) are Postfix's;
		 * not supported yet, and ignored rather than fatal. */
	}
	free(copy);
	return ret;
}

void
smtp_policy(struct smtp_msg *m)
{
	const char *keys[3] = {m->nexthop, m->domain, NULL};
	const char *value, *err, *d;
	int i, rc;

	memset(&m->policy, 0, sizeof(m->policy));
	(void)smtp_tls_level_parse(var_smtp_tls_security_level,
	    &m->policy.level);
	/* The nexthop as written ("[host]:port"), its domain, its parents. */
	for (i = 0; keys[i] != NULL; i++) {
		rc = map_list_lookup(smtp_policy_maps, keys[i], &value, &err);
		if (rc == 0)
			continue;
		if (rc < 0 || smtp_policy_apply(&m->policy, value) < 0) {
			msg_warn("smtp_tls_policy_maps: %s for %s: using "
			         "\"encrypt\"",
			    rc < 0 ? err : "bad policy", keys[i]);
			m->policy.level = SMTP_TLS_ENCRYPT;
		}
		return;
	}
	for (d = strchr(m->domain, '.'); d != NULL; d = strchr(d + 1, '.')) {
		rc = map_list_lookup(smtp_policy_maps, d, &value, &err);
		if (rc != 0) {
			if (rc < 0 || smtp_policy_apply(&m->policy, value) < 0)
				m->policy.level = SMTP_TLS_ENCRYPT;
			return;
		}
	}
}

static void
smtp_tls_log(struct smtp_sess *s)
{
	struct tls_info ti;

	if (tls_stream_info(&s->st, &ti) < 0)
		return;
	msg_info("%s TLS connection established to %s: %s with cipher %s "
	         "(%d/%d bits)%s",
	    ti.peer_verified        ? "Trusted"
	    : ti.peer_cn[0] != '\0' ? "Untrusted"
	                            : "Anonymous",
	    s->relay, ti.protocol, ti.cipher, ti.bits, ti.alg_bits,
	    ti.resumed ? ", session resumed" : "");
}

enum smtp_sess_result
smtp_tls_start(struct smtp_sess *s, struct smtp_msg *m, int no_tls)
{
	enum smtp_tls_level level = m->policy.level;
	int required = level >= SMTP_TLS_ENCRYPT, verify = level >= SMTP_TLS_VERIFY;
	struct tls_client *cli;
	struct smtp_tls_cached *cached;
	char key[SMTP_TLS_KEY_MAX];
	const char *name, *err;
	int code;

	if (level == SMTP_TLS_NONE || (no_tls && !required))
		return SMTP_SESS_OK;
	if (!(s->ehlo.ext & SMTP_EHLO_STARTTLS)) {
		if (!required)
			return SMTP_SESS_OK;
		smtp_sess_fail(s, "4.7.4",
		    "TLS is required, but was not offered by host %s",
		    s->relay_short);
		return SMTP_SESS_NEXT;
	}
	if ((cli = smtp_tls_context(verify)) == NULL) {
		smtp_sess_fail(s, "4.7.5", "cannot make a TLS client context "
		                           "(see the warning above)");
		if (required)
			return SMTP_SESS_NEXT;
		return SMTP_SESS_OK;
	}
	if (smtp_cmd(s, "STARTTLS") < 0 ||
	    smtp_flush(s, "sending STARTTLS", var_smtp_starttls_timeout) < 0 ||
	    (code = smtp_read(s, "sending STARTTLS", var_smtp_starttls_timeout)) <
	        0)
		return SMTP_SESS_NEXT;
	if (code / 100 != 2) {
		if (!required)
			return SMTP_SESS_OK;
		smtp_sess_fail_reply(s, "STARTTLS");
		return SMTP_SESS_NEXT;
	}
	/* RFC 3207 5: nothing the peer sent before TLS may count after. */
	if (stream_buffered(&s->st) > 0) {
		smtp_sess_fail(s, "4.5.0",
		    "host %s sent data after its STARTTLS reply", s->relay_short);
		return SMTP_SESS_NEXT;
	}
	if (level == SMTP_TLS_SECURE)
		name = m->policy.match[0] != '\0' ? m->policy.match : m->domain;
	else if (level == SMTP_TLS_VERIFY && m->policy.match[0] != '\0')
		name = m->policy.match;
	else
		name = s->t.host;
	tls_stream_client(&s->st, cli, name);
	snprintf(key, sizeof(key), "%s|%s|%d", s->relay, name, verify);
	if ((cached = smtp_tls_cache_find(key)) != NULL) {
		tls_stream_session_set(&s->st, cached->sess);
		cached->used = ++smtp_tls_clock;
	}
	s->tls = 1;
	/* The handshake runs inside this EHLO's write and read. */
	if (smtp_hello(s, var_smtp_starttls_timeout) < 0) {
		if (tls_stream_handshake_done(&s->st))
			return SMTP_SESS_NEXT;
		err = tls_stream_error(&s->st);
		smtp_sess_fail(s, verify ? "4.7.5" : "4.7.0",
		    "TLS handshake with %s failed: %s", s->relay_short,
		    err != NULL ? err : "connection lost");
		s->reusable = 0;
		return required ? SMTP_SESS_NEXT : SMTP_SESS_RETRY_PLAIN;
	}
	smtp_tls_log(s);
	/* After a read: TLS 1.3 tickets come after the handshake. */
	smtp_tls_cache_put(key, &s->st);
	return SMTP_SESS_OK;
}
