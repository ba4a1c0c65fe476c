/* SPDX-License-Identifier: MIT */
/*
 * One collected message into the queue, through the cleanup code smtpd
 * and pickup share (same header_checks, virtual aliases, size, header
 * and hop-count limits). Before the content it carries a Received:
 * header (from the server, by $myhostname, with POP3 or IMAP, for the
 * recipient: cleanup writes it) and the loop header X-Tern-Fetched:
 * (fetch_route.h's guard). The journal (fetch_state.c) records the
 * queue ID before the commit and the commit after it; only then may the
 * caller delete the message remotely. Mail cleanup refuses is never
 * deleted: it stays on the server and the refusal is logged at each
 * poll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/cleanup.h"
#include "mail/fetch_route.h"
#include "mail/header_checks.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"
#include "fetch.h"

/* The header this site adds to every collected message. */
#define FETCH_LOOP_HEADER "X-Tern-Fetched"

static struct header_checks *fetch_headers;
/* Multidrop routing: $fetch_recipient_headers, $fetch_route_maps. */
static char **fetch_rcpt_headers;
static size_t fetch_nrcpt_headers;
static struct map_list *fetch_rules;

int
fetch_inject_init(char **error_r)
{
	if (*var_header_checks != '\0' &&
	    (fetch_headers = header_checks_create(var_header_checks,
	         error_r)) == NULL)
		return -1;
	fetch_rcpt_headers = config_list(var_fetch_recipient_headers);
	for (fetch_nrcpt_headers = 0; fetch_rcpt_headers[fetch_nrcpt_headers];
	     fetch_nrcpt_headers++)
		;
	if (*var_fetch_route_maps != '\0' &&
	    (fetch_rules = map_list_open("fetch_route_maps",
	         var_fetch_route_maps, error_r)) == NULL)
		return -1;
	return virtual_alias_tables_init(error_r);
}

void
fetch_inject_free(void)
{
	header_checks_free(&fetch_headers);
	if (fetch_rcpt_headers != NULL)
		config_list_free(fetch_rcpt_headers);
	fetch_rcpt_headers = NULL;
	map_list_free(&fetch_rules);
	virtual_alias_tables_free();
}

/* The end of the header section (the empty line), or len. */
static size_t
fetch_header_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++)
		if (s[i] == '\n' && (s[i + 1] == '\n' ||
		                        (s[i + 1] == '\r' && i + 2 < len &&
		                            s[i + 2] == '\n')))
			return i + 1;
	return len;
}

/*
 * The envelope sender: the ISP's Return-Path: (the sender it got), or
 * <> when there is none or it is not an address, so that a bounce of a
 * collected message never goes to a guess.
 */
static char *
fetch_sender(const struct fetch_msg *m)
{
	const char *s = m->data.data, *p, *end, *params, *err;
	size_t hlen = fetch_header_len(s, m->data.len), n;
	char *value, *addr = NULL;

	for (p = s; p < s + hlen;) {
		end = memchr(p, '\n', (size_t)(s + hlen - p));
		n = end != NULL ? (size_t)(end - p) : (size_t)(s + hlen - p);
		if (str_prefix_ci(p, n, "Return-Path:")) {
			value = xstrndup(p + 12, n - 12);
			if (addr_parse_path(str_trim(value), ADDR_UTF8_OK, &addr,
			        &params, &err) < 0 ||
			    *params != '\0') {
				free(addr);
				addr = NULL;
			}
			free(value);
			return addr != NULL ? addr : xstrdup("");
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return xstrdup("");
}

static char *
fetch_qualify(const char *to)
{
	return strchr(to, '@') != NULL ? xstrdup(to)
	                               : xasprintf("%s@%s", to, var_myorigin);
}

/*
 * Is addr a recipient of this site, as smtpd would accept it at RCPT: a
 * virtual alias, a relay domain's address, postmaster, or a local or
 * virtual mailbox that exists. A header naming a user the site does not
 * have must not win over the rules and lost mail (it would bounce). A
 * failed lookup counts as yes: delivery decides then, nothing is lost.
 */
static int
fetch_is_local(const char *addr, void *ctx)
{
	struct virtual_alias_expansion x;
	struct resolve_result r;
	char *key = NULL, *maildir = NULL, *top = NULL;
	const char *err;
	int yes = 0, tempfail, found;

	(void)ctx;
	if (resolve_address(addr, &r) < 0)
		return 0;
	if (r.class == RESOLVE_REMOTE)
		goto out;
	memset(&x, 0, sizeof(x));
	if (virtual_alias_active() || r.class == RESOLVE_ALIAS) {
		virtual_alias_expand(addr, &x);
		yes = x.aliased || x.status != VIRTUAL_ALIAS_OK;
		virtual_alias_expansion_free(&x);
		if (yes || r.class == RESOLVE_ALIAS)
			goto out;
	}
	if (r.class == RESOLVE_RELAY || str_eq_ci(r.local, "postmaster")) {
		yes = 1;
		goto out;
	}
	if (r.class == RESOLVE_LOCAL) {
		yes = fetch_table_lookup("local_recipient", r.local) != 0;
		goto out;
	}
	key = xasprintf("%s@%s", r.local, r.domain);
	if (virtual_mailbox_active()) {
		found = virtual_mailbox_find(key, &maildir, &top, &tempfail, &err);
		yes = found != 0;
	} else
		yes = fetch_table_lookup("virtual_mailbox", key) != 0;
out:
	free(key);
	free(maildir);
	free(top);
	resolve_free(&r);
	return yes;
}

/* The recipients: to= (single-drop), or what fetch_route decides. */
static int
fetch_rcpts(struct fetch_account *a, struct fetch_msg *m, char *loop_value,
    char ***rcpts_r, size_t *n_r, char **why_r)
{
	struct fetch_route_config cfg;
	struct fetch_route_result res;
	const char *err;
	size_t i;

	if (!a->multidrop) {
		*rcpts_r = xcalloc(1, sizeof(char *));
		(*rcpts_r)[0] = fetch_qualify(a->to);
		*n_r = 1;
		return 0;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.headers = (const char *const *)fetch_rcpt_headers;
	cfg.nheaders = fetch_nrcpt_headers;
	cfg.is_local = fetch_is_local;
	cfg.rules = fetch_rules;
	cfg.lost_recipient = var_fetch_lost_recipient;
	cfg.loop_header_name = FETCH_LOOP_HEADER;
	cfg.loop_header_value = loop_value;
	if (fetch_route(&cfg, m->data.data, m->data.len, &res, &err) < 0) {
		*why_r = xasprintf("routing: %s", err);
		return -1;
	}
	if (res.how == FETCH_ROUTE_LOST || res.how == FETCH_ROUTE_LOOP)
		msg_warn("account %s: %s: %s: to the lost-mail recipient %s",
		    a->name, m->id,
		    log_sanitize(res.detail != NULL ? res.detail : "", 200),
		    log_sanitize(res.rcpts[0], 200));
	else
		msg_info("account %s: %s: routed (%s)", a->name, m->id,
		    log_sanitize(res.detail != NULL ? res.detail : "", 200));
	*rcpts_r = xcalloc(res.nrcpts, sizeof(char *));
	for (i = 0; i < res.nrcpts; i++)
		(*rcpts_r)[i] = fetch_qualify(res.rcpts[i]);
	*n_r = res.nrcpts;
	fetch_route_result_free(&res);
	return 0;
}

static const char *
fetch_refusal(const struct cleanup *c, unsigned status)
{
	if ((status & (CLEANUP_STAT_REJECT | CLEANUP_STAT_RCPT)) &&
	    c->reject_text != NULL)
		return c->reject_text;
	if (status & CLEANUP_STAT_SIZE)
		return "larger than message_size_limit";
	if (status & CLEANUP_STAT_HEADER)
		return "header section larger than header_size_limit";
	if (status & CLEANUP_STAT_HOPS)
		return "too many hops: mail forwarding loop";
	return "message content refused";
}

enum fetch_inject_result
fetch_inject(struct fetch_account *a, struct fetch_state *s,
    const struct fetch_conn *conn, const char *proto, struct fetch_msg *m)
{
	enum fetch_inject_result res = FETCH_INJECT_QUEUED;
	struct cleanup_envelope env;
	struct cleanup_rcpt *crcpts = NULL;
	struct cleanup c;
	char **rcpts = NULL, *sender = NULL, *why = NULL, *loop_value;
	char *loop_hdr, *rfc_addr, *attrs[3];
	const char *err;
	size_t n = 0, i;
	unsigned status;
	int eno = 0, pending = 0;

	memset(&c, 0, sizeof(c));
	loop_value = xasprintf("%s %s", var_myhostname, a->name);
	rfc_addr = strchr(conn->peer_addr, ':') != NULL
	               ? xasprintf("IPv6:%s", conn->peer_addr)
	               : xstrdup(conn->peer_addr);
	attrs[0] = xasprintf("fetch_account=%s", a->name);
	attrs[1] = xasprintf("fetch_id=%s", m->id);
	attrs[2] = NULL;
	if (m->too_big) {
		msg_warn("account %s: %s: larger than message_size_limit "
			 "(%lld): left on the server",
		    a->name, m->id, (long long)var_message_size_limit);
		res = FETCH_INJECT_REFUSED;
		goto out;
	}
	if (fetch_rcpts(a, m, loop_value, &rcpts, &n, &why) < 0) {
		msg_warn("account %s: %s: %s: left on the server", a->name,
		    m->id, why);
		res = FETCH_INJECT_RETRY;
		goto out;
	}
	crcpts = xcalloc(n, sizeof(*crcpts));
	for (i = 0; i < n; i++)
		crcpts[i].addr = rcpts[i];
	sender = fetch_sender(m);
	memset(&env, 0, sizeof(env));
	env.sender = sender;
	env.rcpts = crcpts;
	env.nrcpt = (int)n;
	env.client_name = a->host;
	env.client_addr = conn->peer_addr;
	env.client_rfc_addr = rfc_addr;
	env.helo = a->host;
	env.protocol = proto;
	env.tls = conn->tls ? conn->tls_desc : NULL;
	env.bare_newline = CLEANUP_BARE_NORMALIZE;
	env.attrs = (const char *const *)attrs;
	if (cleanup_open(&c, &env, &err) < 0) {
		msg_warn("account %s: %s: %s", a->name, m->id, err);
		res = FETCH_INJECT_RETRY;
		goto out;
	}
	if (c.status == CLEANUP_STAT_RCPT) {
		msg_warn("account %s: %s: %s: left on the server", a->name,
		    m->id, fetch_refusal(&c, c.status));
		res = c.reject_text != NULL && c.reject_text[0] == '4'
		          ? FETCH_INJECT_RETRY
		          : FETCH_INJECT_REFUSED;
		goto out;
	}
	/* tmp/ID exists and is locked: from here on a crash is settled
	 * by the journal (fetch_state.c). */
	if (fetch_state_mark(s, m->id, c.w.id, FETCH_MARK_PENDING) < 0) {
		res = FETCH_INJECT_RETRY;
		goto out;
	}
	pending = 1;
	if (fetch_headers != NULL) {
		c.header_check = header_checks_hook;
		c.header_check_ctx = fetch_headers;
	}
	loop_hdr = xasprintf("%s: %s\r\n", FETCH_LOOP_HEADER, loop_value);
	cleanup_feed_raw(&c, loop_hdr, strlen(loop_hdr), 0);
	free(loop_hdr);
	if (m->data.len > 0)
		cleanup_feed_raw(&c, m->data.data, m->data.len, 0);
	status = cleanup_finish(&c, &err, &eno);
	if (status & CLEANUP_STAT_WRITE) {
		msg_warn("%s: account %s: %s: %s", c.w.id, a->name, m->id, err);
		res = FETCH_INJECT_RETRY;
	} else if (status != 0) {
		msg_warn("%s: account %s: %s: refused: %s: left on the server",
		    c.w.id, a->name, m->id, fetch_refusal(&c, status));
		res = FETCH_INJECT_REFUSED;
	} else if (c.discard) {
		msg_info("%s: account %s: %s: discarded", c.w.id, a->name,
		    m->id);
	} else if (qfile_commit(&c.w, c.hold ? QUEUE_HOLD : QUEUE_INCOMING,
	               &err) < 0) {
		msg_warn("%s: account %s: %s: %s", c.w.id, a->name, m->id, err);
		res = FETCH_INJECT_RETRY;
	} else {
		msg_info("%s: account=%s id=%s from=<%s> size=%zu nrcpt=%zu",
		    c.w.id, a->name, log_sanitize(m->id, FETCH_UIDL_MAX),
		    log_sanitize(sender, ADDR_PATH_MAX), m->data.len, n);
		if (!c.hold)
			cleanup_notify_qmgr(c.w.id);
	}
	if (res == FETCH_INJECT_QUEUED) {
		/* A failed record leaves "pending": the message stays on the
		 * server until a restart settles it. */
		if (fetch_state_mark(s, m->id, c.w.id, FETCH_MARK_QUEUED) < 0)
			res = FETCH_INJECT_RETRY;
	} else if (pending)
		(void)fetch_state_mark(s, m->id, c.w.id, FETCH_MARK_DROPPED);
out:
	cleanup_free(&c);
	for (i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
	free(crcpts);
	free(sender);
	free(why);
	free(loop_value);
	free(rfc_addr);
	free(attrs[0]);
	free(attrs[1]);
	return res;
}
