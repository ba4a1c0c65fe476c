/* SPDX-License-Identifier: MIT */
/*
 * The DNS answers a session's restrictions need (DNSBL names, sender and
 * recipient domains), each asked once per session through lib/dns and
 * kept in a small per-session cache. A restriction asks
 * smtpd_dns_answer(): a known answer comes back at once; otherwise the
 * question goes out, the session waits, and the caller's resume function
 * runs when the answer (or lib/dns's deadline, as DNS_TEMPFAIL) arrives,
 * after which the same question finds the answer. Only that session
 * waits; the process serves the others.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "smtpd.h"

/* Answers kept per session: a few zones and domains. */
#define SMTPD_DNS_CACHE_MAX 16
/* A records joined as text: 64 of "255.255.255.255 ". */
#define SMTPD_DNS_TEXT_MAX  (DNS_RR_MAX * 16 + DNS_TXT_MAX)
#define SMTPD_DNS_MS_PER_SEC 1000

struct smtpd_dns_cache {
	struct smtpd_dns_entry e[SMTPD_DNS_CACHE_MAX];
	int n;
	struct dns_query *query;
	void (*resume)(struct smtpd_session *s);
	/* The question out: its answer is filed under these. */
	char *name;
	enum dns_type type;
};

static struct dns *smtpd_dns;

void
smtpd_dns_init(struct event_loop *loop)
{
	const char *error;

	smtpd_dns = dns_create(loop, var_dns_servers,
	    (unsigned)var_dns_lookup_timeout * SMTPD_DNS_MS_PER_SEC, &error);
	if (smtpd_dns == NULL)
		msg_fatal("DNS resolver: %s", error);
}

void
smtpd_dns_shutdown(void)
{
	dns_free(&smtpd_dns);
}

static void
dns_entry_clear(struct smtpd_dns_entry *e)
{
	free(e->name);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

void
smtpd_dns_session_free(struct smtpd_session *s)
{
	struct smtpd_dns_cache *c = s->dns;
	int i;

	if (c == NULL)
		return;
	dns_cancel(&c->query);
	for (i = 0; i < c->n; i++)
		dns_entry_clear(&c->e[i]);
	free(c->name);
	free(c);
	s->dns = NULL;
}

/* What a restriction needs of an answer, as text (cut at the buffer's
 * bound, which DNS_RR_MAX and DNS_TXT_MAX keep out of reach). */
static char *
dns_answer_text(const struct dns_answer *a)
{
	struct buf b;
	char addr[INET6_ADDRSTRLEN];
	char *text;
	int i, r = 0;

	buf_init(&b, SMTPD_DNS_TEXT_MAX);
	for (i = 0; a->status == DNS_OK && i < a->n && r == 0; i++) {
		if (a->type == DNS_T_A) {
			inet_ntop(AF_INET, &a->rr[i].a, addr, sizeof(addr));
			r = buf_printf(&b, "%s%s", i ? " " : "", addr);
		} else if (a->type == DNS_T_TXT && i == 0) {
			/* The first string is the reason (RFC 5782 2.1). */
			r = buf_append(&b, a->rr[i].txt, a->rr[i].txt_len);
		} else if (a->type == DNS_T_MX && a->n == 1 &&
		           a->rr[0].mx_host[0] == '\0') {
			/* RFC 7505: one MX of "." says no mail. */
			r = buf_puts(&b, ".");
		}
	}
	text = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return text;
}

static void
smtpd_dns_answered(const struct dns_answer *a, void *ctx)
{
	struct smtpd_session *s = ctx;
	struct smtpd_dns_cache *c = s->dns;
	struct smtpd_dns_entry *e;

	c->query = NULL;
	if (c->n == SMTPD_DNS_CACHE_MAX) {
		/* Forget the oldest: a question may be asked again. */
		dns_entry_clear(&c->e[0]);
		memmove(&c->e[0], &c->e[1], (c->n - 1) * sizeof(c->e[0]));
		memset(&c->e[c->n - 1], 0, sizeof(c->e[0]));
		c->n--;
	}
	e = &c->e[c->n++];
	e->name = c->name;
	c->name = NULL;
	e->type = c->type;
	e->status = a->status;
	e->text = dns_answer_text(a);
	if (a->status == DNS_TEMPFAIL || a->status == DNS_FAIL)
		msg_warn("DNS lookup of %s for %s[%s]: %s", e->name, s->name,
		    s->addr, a->error != NULL ? a->error : "failed");
	c->resume(s);
}

int
smtpd_dns_answer(struct smtpd_session *s, const char *name,
    enum dns_type type, void (*resume)(struct smtpd_session *s),
    const struct smtpd_dns_entry **e_r)
{
	struct smtpd_dns_cache *c = s->dns;
	int i;

	if (c == NULL)
		c = s->dns = xcalloc(1, sizeof(*c));
	for (i = 0; i < c->n; i++) {
		if (c->e[i].type == type && strcmp(c->e[i].name, name) == 0) {
			*e_r = &c->e[i];
			return 1;
		}
	}
	if (c->query != NULL)
		msg_panic("smtpd_dns_answer: a question is already out");
	free(c->name);
	c->name = xstrdup(name);
	c->type = type;
	c->resume = resume;
	c->query = dns_lookup(smtpd_dns, name, type, smtpd_dns_answered, s);
	return 0;
}
