/* SPDX-License-Identifier: MIT */
/*
 * Postfix-style restrictions (Postfix's smtpd_check.c idea): five lists,
 *
 *   smtpd_client_restrictions, smtpd_helo_restrictions,
 *   smtpd_sender_restrictions, smtpd_relay_restrictions,
 *   smtpd_recipient_restrictions,
 *
 * and a sixth, smtpd_etrn_restrictions, that only the ETRN command runs
 * (RFC 1985; alone, whatever smtpd_delay_reject says, as in Postfix),
 *
 * each a sequence of restrictions evaluated in order. In a list the first
 * restriction that permits ends that list (the next one runs), the first
 * that rejects ends everything; a list that runs out permits. With
 * smtpd_delay_reject (the default) every list runs at RCPT TO, so a
 * reject names the recipient and a client can authenticate first;
 * without it the client and HELO lists run at HELO/EHLO and the sender
 * list at MAIL FROM as well. Relay control is a list like the others, and
 * the configuration must contain a rule that refuses unauthorized
 * destinations, or smtpd refuses to start: tern is never an open relay.
 *
 * Lookups in tables are local and fast (lib/map); a DNSBL question
 * (reject_rbl_client, permit_dnswl_client) goes out through lib/dns and
 * suspends only this session: the evaluation resumes at the same
 * restriction when the answer (or the timeout) arrives. Answers are kept
 * for the rest of the session.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "dns/dns.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/header_checks.h"
#include "map/map.h"
#include "mail/map_list.h"
#include "mail/netlist.h"
#include "mail/virtual_alias.h"
#include "smtpd.h"

/* Access-table nesting: a table result may be a restriction list, whose
 * entries may not look up tables again (no loops through tables). */
#define CHECK_REPLY_MAX   512
#define CHECK_ZONE_MAX    253
#define CHECK_REASON_MAX  200 /* TXT reason quoted in a reply */
#define CHECK_TEXT_LOG    200

enum check_op {
	OP_PERMIT,
	OP_REJECT,
	OP_DEFER,
	OP_PERMIT_MYNETWORKS,
	OP_PERMIT_SASL,
	OP_REJECT_UNAUTH_DEST,
	OP_DEFER_UNAUTH_DEST,
	OP_PERMIT_AUTH_DEST,
	OP_CLIENT_ACCESS,
	OP_HELO_ACCESS,
	OP_SENDER_ACCESS,
	OP_RECIPIENT_ACCESS,
	OP_REJECT_RBL,
	OP_PERMIT_DNSWL,
	OP_REJECT_INVALID_HELO,
	OP_REJECT_NON_FQDN_HELO,
	OP_REJECT_NON_FQDN_SENDER,
	OP_REJECT_NON_FQDN_RCPT,
	OP_REJECT_UNLISTED_RCPT,
	OP_REJECT_LOGIN_MISMATCH,
	OP_REJECT_AUTH_LOGIN_MISMATCH,
	OP_REJECT_UNAUTH_LOGIN_MISMATCH,
	OP_REJECT_PLAINTEXT,
	OP_REJECT_UNKNOWN_SENDER_DOMAIN,
	OP_REJECT_UNKNOWN_RCPT_DOMAIN,
};

/* What a restriction needs to be meaningful; without it, it is skipped. */
#define NEED_HELO   0x1
#define NEED_SENDER 0x2
#define NEED_RCPT   0x4
#define ARG_TABLE   0x8  /* next word: a type:table */
#define ARG_ZONE    0x10 /* next word: a DNS zone[=address] */
/* Refuses unauthorized destinations: the open-relay guard. */
#define RELAY_GUARD 0x20
#define NEED_DNS    0x40 /* asks DNS: smtpd_dns.c */

static const struct check_def {
	const char *name;
	enum check_op op;
	unsigned flags;
} check_defs[] = {
    {"permit", OP_PERMIT, 0},
    {"reject", OP_REJECT, RELAY_GUARD},
    {"defer", OP_DEFER, RELAY_GUARD},
    {"permit_mynetworks", OP_PERMIT_MYNETWORKS, 0},
    {"permit_sasl_authenticated", OP_PERMIT_SASL, 0},
    {"reject_unauth_destination", OP_REJECT_UNAUTH_DEST,
        NEED_RCPT | RELAY_GUARD},
    {"defer_unauth_destination", OP_DEFER_UNAUTH_DEST,
        NEED_RCPT | RELAY_GUARD},
    {"permit_auth_destination", OP_PERMIT_AUTH_DEST, NEED_RCPT},
    {"check_client_access", OP_CLIENT_ACCESS, ARG_TABLE},
    {"check_helo_access", OP_HELO_ACCESS, ARG_TABLE | NEED_HELO},
    {"check_sender_access", OP_SENDER_ACCESS, ARG_TABLE | NEED_SENDER},
    {"check_recipient_access", OP_RECIPIENT_ACCESS, ARG_TABLE | NEED_RCPT},
    {"reject_rbl_client", OP_REJECT_RBL, ARG_ZONE | NEED_DNS},
    {"permit_dnswl_client", OP_PERMIT_DNSWL, ARG_ZONE | NEED_DNS},
    {"reject_unknown_sender_domain", OP_REJECT_UNKNOWN_SENDER_DOMAIN,
        NEED_SENDER | NEED_DNS},
    {"reject_unknown_recipient_domain", OP_REJECT_UNKNOWN_RCPT_DOMAIN,
        NEED_RCPT | NEED_DNS},
    {"reject_invalid_helo_hostname", OP_REJECT_INVALID_HELO, NEED_HELO},
    {"reject_non_fqdn_helo_hostname", OP_REJECT_NON_FQDN_HELO, NEED_HELO},
    {"reject_non_fqdn_sender", OP_REJECT_NON_FQDN_SENDER, NEED_SENDER},
    {"reject_non_fqdn_recipient", OP_REJECT_NON_FQDN_RCPT, NEED_RCPT},
    {"reject_unlisted_recipient", OP_REJECT_UNLISTED_RCPT, NEED_RCPT},
    {"reject_sender_login_mismatch", OP_REJECT_LOGIN_MISMATCH, NEED_SENDER},
    {"reject_authenticated_sender_login_mismatch",
        OP_REJECT_AUTH_LOGIN_MISMATCH, NEED_SENDER},
    {"reject_unauthenticated_sender_login_mismatch",
        OP_REJECT_UNAUTH_LOGIN_MISMATCH, NEED_SENDER},
    {"reject_plaintext_session", OP_REJECT_PLAINTEXT, 0},
};

struct check_item {
	const struct check_def *def;
	struct map *map; /* ARG_TABLE (shared, owned by check_maps) */
	char *zone;      /* ARG_ZONE */
	char *want;      /* ARG_ZONE: the answer that counts ("zone=a.b.c.d") */
};

enum check_list_id {
	LIST_CLIENT,
	LIST_HELO,
	LIST_SENDER,
	LIST_RELAY,
	LIST_RECIPIENT,
	LIST_ETRN, /* after the others: no mail stage runs it */
	LIST_COUNT
};

struct check_list {
	const char *param;
	const char *what; /* for the plain reject/defer text */
	struct check_item *items;
	size_t n;
};

static struct check_list check_lists[LIST_COUNT] = {
    [LIST_CLIENT] = {"smtpd_client_restrictions", "Client host", NULL, 0},
    [LIST_HELO] = {"smtpd_helo_restrictions", "Helo command", NULL, 0},
    [LIST_SENDER] = {"smtpd_sender_restrictions", "Sender address", NULL, 0},
    [LIST_RELAY] = {"smtpd_relay_restrictions", "Recipient address", NULL, 0},
    [LIST_RECIPIENT] = {"smtpd_recipient_restrictions", "Recipient address",
        NULL, 0},
    [LIST_ETRN] = {"smtpd_etrn_restrictions", "Etrn command", NULL, 0},
};

/* Every table opened once, by spec, whatever refers to it. */
static struct hash *check_maps;
static struct netlist *check_mynetworks, *check_exceptions;
static struct netlist *check_bare_exclusions;
static struct header_checks *check_headers;
static struct map *check_login_map;
static struct map_list *check_relay_rcpts;

enum verdict { V_DUNNO, V_PERMIT, V_REJECT, V_PENDING };

struct smtpd_check_state {
	enum smtpd_check_stage stage;
	int list;
	size_t item;
	smtpd_check_done_fn *done;
};

static void
check_map_free(void *p)
{
	struct map *m = p;

	map_free(&m);
}

static struct map *
check_map(const char *spec, const char *param)
{
	struct map *m = hash_get(check_maps, spec);
	char *error;

	if (m != NULL)
		return m;
	if ((m = map_open(spec, &error)) == NULL)
		msg_fatal("%s: %s", param, error);
	hash_put(check_maps, spec, m);
	return m;
}

static const struct check_def *
check_def_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(check_defs) / sizeof(check_defs[0]); i++)
		if (strcmp(check_defs[i].name, name) == 0)
			return &check_defs[i];
	return NULL;
}

static int
check_parse_list(struct check_list *l, const char *value)
{
	char **words = config_list(value);
	const struct check_def *def;
	struct check_item *it;
	char *eq;
	size_t i, n;
	int guard = 0;

	for (n = 0; words[n] != NULL; n++)
		;
	l->items = xcalloc(n + 1, sizeof(*l->items));
	for (i = 0; words[i] != NULL; i++) {
		if ((def = check_def_find(words[i])) == NULL)
			msg_fatal("%s: unknown restriction \"%s\"", l->param,
			    log_sanitize(words[i], CHECK_TEXT_LOG));
		it = &l->items[l->n++];
		it->def = def;
		if (def->flags & RELAY_GUARD)
			guard = 1;
		if (!(def->flags & (ARG_TABLE | ARG_ZONE)))
			continue;
		if (words[++i] == NULL)
			msg_fatal("%s: %s needs %s", l->param, def->name,
			    def->flags & ARG_TABLE ? "a type:table argument"
			                           : "a DNS zone argument");
		if (def->flags & ARG_TABLE) {
			it->map = check_map(words[i], l->param);
			continue;
		}
		it->zone = xstrdup(words[i]);
		if ((eq = strchr(it->zone, '=')) != NULL) {
			*eq = '\0';
			it->want = xstrdup(eq + 1);
		}
		if (strlen(it->zone) > CHECK_ZONE_MAX - 80 ||
		    !addr_domain_valid(it->zone))
			msg_fatal("%s: %s: bad DNS zone \"%s\"", l->param,
			    def->name, log_sanitize(it->zone, CHECK_TEXT_LOG));
	}
	config_list_free(words);
	return guard;
}

static struct netlist *
check_netlist(const char *value, const char *param)
{
	struct netlist *nl;
	char *error;

	if ((nl = netlist_create(value, param, &error)) == NULL)
		msg_fatal("%s", error);
	return nl;
}

static int
check_uses_dns(void)
{
	size_t i, j;

	for (i = 0; i < LIST_COUNT; i++)
		for (j = 0; j < check_lists[i].n; j++)
			if (check_lists[i].items[j].def->flags & NEED_DNS)
				return 1;
	return 0;
}

void
smtpd_check_init(void)
{
	const char *values[LIST_COUNT] = {
	    [LIST_CLIENT] = var_smtpd_client_restrictions,
	    [LIST_HELO] = var_smtpd_helo_restrictions,
	    [LIST_SENDER] = var_smtpd_sender_restrictions,
	    [LIST_RELAY] = var_smtpd_relay_restrictions,
	    [LIST_RECIPIENT] = var_smtpd_recipient_restrictions,
	    [LIST_ETRN] = var_smtpd_etrn_restrictions,
	};
	int guard = 0, i;
	char *merr;

	check_maps = hash_create();
	for (i = 0; i < LIST_COUNT; i++) {
		int g = check_parse_list(&check_lists[i], values[i]);

		if (i == LIST_RELAY || i == LIST_RECIPIENT)
			guard |= g;
	}
	/* Postfix's rule: without one of these, anyone may relay. */
	if (!guard)
		msg_fatal("smtpd_relay_restrictions and "
		          "smtpd_recipient_restrictions: specify at least one "
		          "of reject_unauth_destination, "
		          "defer_unauth_destination, reject or defer");
	check_mynetworks = check_netlist(var_mynetworks, "mynetworks");
	check_exceptions = check_netlist(var_smtpd_client_event_limit_exceptions,
	    "smtpd_client_event_limit_exceptions");
	check_bare_exclusions =
	    check_netlist(var_smtpd_forbid_bare_newline_exclusions,
	        "smtpd_forbid_bare_newline_exclusions");
	if (*var_header_checks != '\0' &&
	    (check_headers = header_checks_create(var_header_checks, &merr)) ==
	        NULL)
		msg_fatal("header_checks: %s", merr);
	if (*var_smtpd_sender_login_maps != '\0')
		check_login_map =
		    check_map(var_smtpd_sender_login_maps, "smtpd_sender_login_maps");
	if (*var_relay_recipient_maps != '\0' &&
	    (check_relay_rcpts = map_list_open("relay_recipient_maps",
	         var_relay_recipient_maps, &merr)) == NULL)
		msg_fatal("%s", merr);
	/* RCPT asks them, and cleanup rewrites recipients by them. */
	if (virtual_alias_tables_init(&merr) < 0)
		msg_fatal("%s", merr);
}

void
smtpd_check_dns_init(struct event_loop *loop)
{
	if (check_uses_dns())
		smtpd_dns_init(loop);
}

void
smtpd_check_shutdown(void)
{
	size_t i, j;

	for (i = 0; i < LIST_COUNT; i++) {
		for (j = 0; j < check_lists[i].n; j++) {
			free(check_lists[i].items[j].zone);
			free(check_lists[i].items[j].want);
		}
		free(check_lists[i].items);
		check_lists[i].items = NULL;
		check_lists[i].n = 0;
	}
	netlist_free(&check_mynetworks);
	netlist_free(&check_exceptions);
	netlist_free(&check_bare_exclusions);
	header_checks_free(&check_headers);
	check_login_map = NULL;
	map_list_free(&check_relay_rcpts);
	hash_free(&check_maps, check_map_free);
	virtual_alias_tables_free();
	smtpd_dns_shutdown();
}

/*
 * relay_recipient_maps as Postfix reads them: the address, then
 * user@domain without its extension, then @domain; the value does not
 * matter. A backup MX that takes mail for anyone at a relay domain would
 * bounce what the primary refuses to senders who never sent it.
 */
int
smtpd_check_relay_recipient(const char *addr, const char **error_r)
{
	char *key, *base;
	const char *value, *at;
	int r;

	if (check_relay_rcpts == NULL)
		return 1;
	key = addr_fold(addr);
	r = map_list_lookup(check_relay_rcpts, key, &value, error_r);
	if (r == 0 && (base = addr_strip_extension(key)) != NULL) {
		r = map_list_lookup(check_relay_rcpts, base, &value, error_r);
		free(base);
	}
	if (r == 0 && (at = strrchr(key, '@')) != NULL)
		r = map_list_lookup(check_relay_rcpts, at, &value, error_r);
	free(key);
	return r;
}

int
smtpd_check_trusted(const char *addr)
{
	return netlist_match(check_mynetworks, addr);
}

int
smtpd_check_event_exempt(const char *addr)
{
	return netlist_match(check_exceptions, addr);
}

void
smtpd_check_envelope(struct smtpd_session *s, struct cleanup_envelope *env)
{
	env->hold = s->tx_hold;
	env->discard = s->tx_discard;
	if (env->bare_newline == CLEANUP_BARE_REJECT &&
	    netlist_match(check_bare_exclusions, s->addr))
		env->bare_newline = CLEANUP_BARE_NORMALIZE;
}

void
smtpd_check_content(struct smtpd_session *s)
{
	if (check_headers == NULL)
		return;
	s->cleanup.header_check = header_checks_hook;
	s->cleanup.header_check_ctx = check_headers;
}

void
smtpd_check_session_free(struct smtpd_session *s)
{
	smtpd_dns_session_free(s);
	free(s->check);
	s->check = NULL;
}

static struct smtpd_check_state *
check_state(struct smtpd_session *s)
{
	if (s->check == NULL)
		s->check = xcalloc(1, sizeof(*s->check));
	return s->check;
}

static const char *
check_cmd(const struct smtpd_session *s)
{
	switch (s->check->stage) {
	case SMTPD_CHECK_CONNECT:
		break;
	case SMTPD_CHECK_HELO:
		return s->esmtp ? "EHLO" : "HELO";
	case SMTPD_CHECK_MAIL:
		return "MAIL";
	case SMTPD_CHECK_RCPT:
		return "RCPT";
	case SMTPD_CHECK_ETRN:
		return "ETRN";
	}
	return "CONNECT";
}

static const char *
check_rcpt(const struct smtpd_session *s)
{
	return s->check->stage == SMTPD_CHECK_RCPT ? s->pending_rcpt : NULL;
}

/* Has the session what the restriction looks at (else it is skipped)? */
static int
check_applies(const struct smtpd_session *s, const struct check_def *def)
{
	return !((def->flags & NEED_HELO) && s->helo == NULL) &&
	       !((def->flags & NEED_SENDER) && s->sender == NULL) &&
	       !((def->flags & NEED_RCPT) && check_rcpt(s) == NULL);
}

/* Replies code + enhanced status + "<subject>: what rejected: text". */
static enum verdict
check_reject(struct smtpd_session *s, int code, const char *dsn,
    const char *text)
{
	smtpd_reject(s, check_cmd(s), check_rcpt(s), "%d %s %s", code, dsn,
	    text);
	return V_REJECT;
}

/*
 * An access-table result (Postfix's access(5)): OK, REJECT [text], DEFER
 * [text], DUNNO, HOLD [text], DISCARD [text], WARN text, 4NN/5NN text, or
 * a list of simple restrictions. subject is "<...>: Sender address".
 */
static enum verdict check_simple(struct smtpd_session *s, const char *name,
    const char *subject);

static enum verdict
check_access_result(struct smtpd_session *s, const char *spec,
    const char *key, const char *value, const char *subject)
{
	char reply[CHECK_REPLY_MAX], word[32];
	const char *text, *p = value;
	size_t n;
	enum verdict v;
	char **words;
	int i;

	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n >= sizeof(word))
		n = sizeof(word) - 1;
	memcpy(word, p, n);
	word[n] = '\0';
	text = p + n;
	text += strspn(text, " \t");
	if (str_eq_ci(word, "OK") ||
	    (n > 0 && strspn(word, "0123456789") == n && *text == '\0'))
		return V_PERMIT;
	if (str_eq_ci(word, "DUNNO"))
		return V_DUNNO;
	if (str_eq_ci(word, "REJECT") || str_eq_ci(word, "DEFER")) {
		int defer = str_eq_ci(word, "DEFER");

		snprintf(reply, sizeof(reply), "%s rejected: %s", subject,
		    *text != '\0' ? text : "Access denied");
		return check_reject(
		    s, defer ? 450 : 554, defer ? "4.7.1" : "5.7.1", reply);
	}
	if (str_eq_ci(word, "HOLD") || str_eq_ci(word, "DISCARD") ||
	    str_eq_ci(word, "WARN")) {
		str_lower(word);
		msg_info("NOQUEUE: %s: %s from %s[%s]: %s triggers %s%s%s; "
		         "from=<%s>",
		    word, check_cmd(s), s->name, s->addr,
		    log_sanitize(key, CHECK_TEXT_LOG), spec,
		    *text != '\0' ? ": " : "", log_sanitize(text, CHECK_TEXT_LOG),
		    s->sender != NULL ? log_sanitize(s->sender, CHECK_TEXT_LOG)
		                      : "");
		if (strcmp(word, "hold") == 0)
			s->tx_hold = 1;
		if (strcmp(word, "discard") != 0)
			return V_DUNNO;
		s->tx_discard = 1;
		return V_PERMIT;
	}
	if (n == 3 && (word[0] == '4' || word[0] == '5') &&
	    isdigit((unsigned char)word[1]) && isdigit((unsigned char)word[2])) {
		/* "5NN 5.x.y text" keeps its status; else N.7.1 (RFC 3463). */
		char dsn[16];
		size_t dl = strcspn(text, " \t");

		if (dl > 4 && dl < sizeof(dsn) && text[0] == word[0] &&
		    text[1] == '.') {
			memcpy(dsn, text, dl);
			dsn[dl] = '\0';
			text += dl;
			text += strspn(text, " \t");
		} else {
			snprintf(dsn, sizeof(dsn), "%c.7.1", word[0]);
		}
		snprintf(reply, sizeof(reply), "%s rejected: %s", subject,
		    *text != '\0' ? text : "Access denied");
		return check_reject(s, (word[0] - '0') * 100 +
		                           (word[1] - '0') * 10 + (word[2] - '0'),
		    dsn, reply);
	}
	/* A restriction list: its simple restrictions, in order. */
	words = config_list(value);
	v = V_DUNNO;
	for (i = 0; words[i] != NULL && v == V_DUNNO; i++)
		v = check_simple(s, words[i], subject);
	config_list_free(words);
	return v;
}

/* Looks key up in m; found: the result's verdict, else DUNNO. */
static enum verdict
check_lookup(struct smtpd_session *s, struct map *m, const char *key,
    const char *subject, int *found_r)
{
	const char *value, *error;
	char reply[CHECK_REPLY_MAX];
	int r = map_lookup(m, key, &value, &error);

	*found_r = r != 0;
	if (r < 0) {
		msg_warn("%s: lookup of %s failed: %s", map_spec(m),
		    log_sanitize(key, CHECK_TEXT_LOG), error);
		snprintf(reply, sizeof(reply), "%s rejected: Temporary lookup "
		         "failure", subject);
		return check_reject(s, 451, "4.3.0", reply);
	}
	if (r == 0)
		return V_DUNNO;
	return check_access_result(s, map_spec(m), key, value, subject);
}

/* A domain, then its parents ("a.b.example" finds "example" entries:
 * parent_domain_matches_subdomains, Postfix's default for access maps). */
static enum verdict
check_domain_keys(struct smtpd_session *s, struct map *m, const char *domain,
    const char *subject, int *found_r)
{
	const char *d = domain;
	enum verdict v;

	while (*d != '\0') {
		v = check_lookup(s, m, d, subject, found_r);
		if (*found_r)
			return v;
		if ((d = strchr(d, '.')) == NULL)
			break;
		d++;
	}
	return V_DUNNO;
}

/* Postfix's check_mail_access: user@domain, domain and parents, user@. */
static enum verdict
check_addr_access(struct smtpd_session *s, struct map *m, const char *addr,
    const char *what)
{
	char subject[CHECK_REPLY_MAX], *local = NULL, *domain = NULL, *key;
	const char *k = addr;
	enum verdict v;
	int found;

	if (*addr == '\0')
		k = var_smtpd_null_access_lookup_key;
	snprintf(subject, sizeof(subject), "<%s>: %s", addr, what);
	v = check_lookup(s, m, k, subject, &found);
	if (found || map_is_pattern(m) || *addr == '\0' ||
	    addr_split(addr, &local, &domain) < 0)
		return v;
	v = V_DUNNO;
	found = 0;
	if (domain != NULL)
		v = check_domain_keys(s, m, domain, subject, &found);
	if (!found) {
		key = xasprintf("%s@", local);
		v = check_lookup(s, m, key, subject, &found);
		free(key);
	}
	free(local);
	free(domain);
	return v;
}

/* Postfix's check_namadr_access: name and parents, address, then the
 * address with its last octets (IPv4) or 16-bit groups (IPv6) removed. */
static enum verdict
check_client_access(struct smtpd_session *s, struct map *m)
{
	char subject[CHECK_REPLY_MAX], key[SMTPD_ADDR_SIZE];
	enum verdict v;
	int found = 0;
	char *cut, sep;

	snprintf(subject, sizeof(subject), "<%s[%s]>: Client host", s->name,
	    s->addr);
	if (strcmp(s->name, s->addr) != 0 && !map_is_pattern(m)) {
		v = check_domain_keys(s, m, s->name, subject, &found);
		if (found)
			return v;
	}
	v = check_lookup(s, m, s->addr, subject, &found);
	if (found || map_is_pattern(m))
		return v;
	snprintf(key, sizeof(key), "%s", s->addr);
	sep = strchr(key, ':') != NULL ? ':' : '.';
	while ((cut = strrchr(key, sep)) != NULL && cut != key) {
		*cut = '\0';
		/* "2001:db8:" leftovers of "::" are not networks. */
		if (cut[-1] == sep)
			continue;
		v = check_lookup(s, m, key, subject, &found);
		if (found)
			return v;
	}
	return V_DUNNO;
}

static enum verdict
check_helo_access(struct smtpd_session *s, struct map *m)
{
	char subject[CHECK_REPLY_MAX];
	int found;

	snprintf(subject, sizeof(subject), "<%s>: Helo command", s->helo);
	if (map_is_pattern(m) || s->helo[0] == '[')
		return check_lookup(s, m, s->helo, subject, &found);
	return check_domain_keys(s, m, s->helo, subject, &found);
}

/*
 * 1 if addr goes to a domain this host serves or relays for. The pending
 * recipient was resolved once by RCPT; other addresses (a sender) here.
 */
static int
check_auth_destination(const struct smtpd_session *s, const char *addr)
{
	struct resolve_result own;
	const struct resolve_result *r = &s->pending_route;
	int ok;

	if (addr != s->pending_rcpt) {
		if (resolve_address(addr, &own) < 0)
			return 0;
		r = &own;
	}
	/*
	 * Sender-specified routing ("a%b@relayed", "b!a@relayed") could make
	 * the next hop of a relay domain relay further (Postfix's
	 * allow_untrusted_routing=no). Local and virtual mailboxes take such
	 * characters literally: the mailbox lookup decides.
	 */
	ok = r->class != RESOLVE_REMOTE &&
	     (r->class != RESOLVE_RELAY || strpbrk(r->local, "@%!") == NULL);
	if (r == &own)
		resolve_free(&own);
	return ok;
}

static int
check_fqdn_addr(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return *addr == '\0' ||
	       (at != NULL && (at[1] == '[' || strchr(at + 1, '.') != NULL));
}

/* 1 if login may use sender: its own address, or a login the table
 * lists for the address or for "@domain". */
static int
check_login_owns(const char *login, const char *sender, int *tempfail_r)
{
	const char *value, *error, *at;
	char *a, *b, *key;
	char **owners;
	int same, r, i;

	*tempfail_r = 0;
	a = addr_fold(sender);
	b = addr_fold(login);
	same = strcmp(a, b) == 0;
	free(b);
	if (same || check_login_map == NULL) {
		free(a);
		return same;
	}
	r = map_lookup(check_login_map, a, &value, &error);
	if (r == 0 && !map_is_pattern(check_login_map) &&
	    (at = strrchr(a, '@')) != NULL) {
		key = xstrdup(at);
		r = map_lookup(check_login_map, key, &value, &error);
		free(key);
	}
	free(a);
	if (r < 0) {
		msg_warn("%s: lookup failed: %s", map_spec(check_login_map),
		    error);
		*tempfail_r = 1;
		return 0;
	}
	if (r == 0)
		return 0;
	owners = config_list(value);
	for (i = 0, same = 0; owners[i] != NULL && !same; i++)
		same = str_eq_ci(owners[i], login);
	config_list_free(owners);
	return same;
}

/* 1 if the table names an owner for sender (an unauthenticated client
 * using a sender that belongs to a login). */
static int
check_sender_has_owner(const char *sender)
{
	const char *value, *error;
	char *a;
	int r;

	if (check_login_map == NULL || *sender == '\0')
		return 0;
	a = addr_fold(sender);
	r = map_lookup(check_login_map, a, &value, &error);
	free(a);
	return r > 0;
}

int
smtpd_check_sender_login(struct smtpd_session *s)
{
	int tempfail;

	if (s->auth_user == NULL || *s->sender == '\0')
		return 1;
	if (check_login_owns(s->auth_user, s->sender, &tempfail))
		return 1;
	return tempfail ? -1 : 0;
}

static enum verdict
check_login_mismatch(struct smtpd_session *s, int auth, int unauth)
{
	char reply[CHECK_REPLY_MAX];
	int r;

	if (s->auth_user != NULL && auth) {
		r = smtpd_check_sender_login(s);
		if (r < 0)
			return check_reject(s, 451, "4.3.0",
			    "Temporary lookup failure");
		if (r == 0) {
			snprintf(reply, sizeof(reply),
			    "<%s>: Sender address rejected: not owned by user "
			    "%s",
			    s->sender, s->auth_user);
			return check_reject(s, 553, "5.7.1", reply);
		}
	} else if (s->auth_user == NULL && unauth &&
	           check_sender_has_owner(s->sender)) {
		snprintf(reply, sizeof(reply),
		    "<%s>: Sender address rejected: not logged in", s->sender);
		return check_reject(s, 553, "5.7.1", reply);
	}
	return V_DUNNO;
}

/*
 * A restriction that needs no table and no DNS: also what an access
 * table's result may name. subject is for plain reject/defer.
 */
static enum verdict
check_simple_op(struct smtpd_session *s, const struct check_def *def,
    const char *subject)
{
	const char *rcpt = check_rcpt(s);
	char reply[CHECK_REPLY_MAX];

	if (!check_applies(s, def))
		return V_DUNNO;
	switch (def->op) {
	case OP_PERMIT:
		return V_PERMIT;
	case OP_REJECT:
	case OP_DEFER:
		snprintf(reply, sizeof(reply), "%s rejected: Access denied",
		    subject);
		return def->op == OP_REJECT
		           ? check_reject(s, 554, "5.7.1", reply)
		           : check_reject(s, 450, "4.7.1", reply);
	case OP_PERMIT_MYNETWORKS:
		return smtpd_check_trusted(s->addr) ? V_PERMIT : V_DUNNO;
	case OP_PERMIT_SASL:
		return s->auth_user != NULL ? V_PERMIT : V_DUNNO;
	case OP_REJECT_UNAUTH_DEST:
	case OP_DEFER_UNAUTH_DEST:
		if (check_auth_destination(s, rcpt))
			return V_DUNNO;
		snprintf(reply, sizeof(reply), "<%s>: Relay access denied",
		    rcpt);
		return def->op == OP_REJECT_UNAUTH_DEST
		           ? check_reject(s, 554, "5.7.1", reply)
		           : check_reject(s, 450, "4.7.1", reply);
	case OP_PERMIT_AUTH_DEST:
		return check_auth_destination(s, rcpt) ? V_PERMIT : V_DUNNO;
	case OP_REJECT_INVALID_HELO:
		if (addr_domain_valid(s->helo))
			return V_DUNNO;
		snprintf(reply, sizeof(reply),
		    "<%s>: Helo command rejected: Invalid name", s->helo);
		return check_reject(s, 501, "5.5.2", reply);
	case OP_REJECT_NON_FQDN_HELO:
		if (s->helo[0] == '[' || (strchr(s->helo, '.') != NULL &&
		                             addr_domain_valid(s->helo)))
			return V_DUNNO;
		snprintf(reply, sizeof(reply),
		    "<%s>: Helo command rejected: need fully-qualified "
		    "hostname",
		    s->helo);
		return check_reject(s, 504, "5.5.2", reply);
	case OP_REJECT_NON_FQDN_SENDER:
	case OP_REJECT_NON_FQDN_RCPT: {
		const char *a =
		    def->op == OP_REJECT_NON_FQDN_SENDER ? s->sender : rcpt;

		if (check_fqdn_addr(a))
			return V_DUNNO;
		snprintf(reply, sizeof(reply),
		    "<%s>: %s rejected: need fully-qualified address", a,
		    def->op == OP_REJECT_NON_FQDN_SENDER ? "Sender address"
		                                        : "Recipient address");
		return check_reject(s, 504, "5.5.2", reply);
	}
	case OP_REJECT_UNLISTED_RCPT:
		s->check_unlisted = 1;
		return V_DUNNO;
	case OP_REJECT_LOGIN_MISMATCH:
		return check_login_mismatch(s, 1, 1);
	case OP_REJECT_AUTH_LOGIN_MISMATCH:
		return check_login_mismatch(s, 1, 0);
	case OP_REJECT_UNAUTH_LOGIN_MISMATCH:
		return check_login_mismatch(s, 0, 1);
	case OP_REJECT_PLAINTEXT:
		if (s->tls_active)
			return V_DUNNO;
		return check_reject(
		    s, 450, "4.7.1", "Session encryption is required");
	default:
		break;
	}
	msg_panic("check_simple_op: op %d", (int)def->op);
}

static enum verdict
check_simple(struct smtpd_session *s, const char *name, const char *subject)
{
	const struct check_def *def = check_def_find(name);

	if (def == NULL || (def->flags & (ARG_TABLE | ARG_ZONE | NEED_DNS))) {
		msg_warn("access table result names \"%s\", which is not a "
		         "restriction an access table may use",
		    log_sanitize(name, CHECK_TEXT_LOG));
		return check_reject(
		    s, 451, "4.3.5", "Server configuration error");
	}
	return check_simple_op(s, def, subject);
}

/* ---- DNS ---- */

static void check_resume(struct smtpd_session *s);

/*
 * 1 if one of the A answers (space-separated) lists the client: exactly
 * want when given, else any in 127.0.0.0/8 but 127.255.255.0/24, which
 * lists answer for refused queries and is no verdict on the client
 * (RFC 5782 2.1).
 */
static int
check_rbl_listed(const char *answers, const char *want, char *hit,
    size_t hit_size)
{
	const char *p = answers;
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, " ");
		if (n < hit_size) {
			memcpy(hit, p, n);
			hit[n] = '\0';
			if (want != NULL ? strcmp(hit, want) == 0
			                 : strncmp(hit, "127.", 4) == 0 &&
			                       strncmp(hit, "127.255.255.", 12) != 0)
				return 1;
		}
		p += n;
		p += strspn(p, " ");
	}
	return 0;
}

/* reject_rbl_client / permit_dnswl_client: V_PENDING while asking. */
static enum verdict
check_rbl(struct smtpd_session *s, const struct check_item *it)
{
	const struct smtpd_dns_entry *a, *txt;
	char reply[CHECK_REPLY_MAX], name[CHECK_ZONE_MAX + 1];
	char hit[INET6_ADDRSTRLEN];

	if (dns_reverse_name(s->addr, it->zone, name, sizeof(name)) < 0)
		return V_DUNNO;
	if (!smtpd_dns_answer(s, name, DNS_T_A, check_resume, &a))
		return V_PENDING;
	/* A failed lookup counts as not listed: mail flows. */
	if (a->status != DNS_OK ||
	    !check_rbl_listed(a->text, it->want, hit, sizeof(hit)))
		return V_DUNNO;
	if (it->def->op == OP_PERMIT_DNSWL)
		return V_PERMIT;
	/* The list's reason, when it gives one, goes to the client. */
	if (!smtpd_dns_answer(s, name, DNS_T_TXT, check_resume, &txt))
		return V_PENDING;
	msg_info("%s[%s] listed by %s (%s)", s->name, s->addr, it->zone, hit);
	snprintf(reply, sizeof(reply),
	    "Service unavailable; Client host [%s] blocked using %s%s%.*s",
	    s->addr, it->zone, txt->text[0] != '\0' ? "; " : "",
	    CHECK_REASON_MAX, log_sanitize(txt->text, CHECK_REASON_MAX));
	return check_reject(s, 554, "5.7.1", reply);
}

/*
 * reject_unknown_sender_domain / reject_unknown_recipient_domain: the
 * domain must have an MX, or else an A or AAAA record (RFC 5321 5.1).
 * Postfix's codes: 450 4.1.8 / 4.1.2 when it has none (the default
 * unknown_address_reject_code), 450 with a temporary failure, and a null
 * MX (RFC 7505 4.2) refuses mail at once.
 */
static enum verdict
check_domain_exists(struct smtpd_session *s, const char *addr, int sender)
{
	static const enum dns_type types[] = {DNS_T_MX, DNS_T_A, DNS_T_AAAA};
	const struct smtpd_dns_entry *e;
	const char *what = sender ? "Sender address" : "Recipient address";
	const char *domain = strrchr(addr, '@');
	char reply[CHECK_REPLY_MAX];
	int tempfail = 0;
	size_t i;

	/* The null sender, an address literal or a local domain: no DNS. */
	if (domain == NULL || domain[1] == '[' || check_auth_destination(s, addr))
		return V_DUNNO;
	domain++;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!smtpd_dns_answer(s, domain, types[i], check_resume, &e))
			return V_PENDING;
		if (e->status == DNS_OK && i == 0 && strcmp(e->text, ".") == 0) {
			snprintf(reply, sizeof(reply),
			    "<%s>: %s rejected: Domain %s does not accept mail "
			    "(nullMX)",
			    addr, what, domain);
			return check_reject(s, sender ? 550 : 556,
			    sender ? "5.7.27" : "5.1.10", reply);
		}
		if (e->status == DNS_OK)
			return V_DUNNO;
		if (e->status == DNS_TEMPFAIL)
			tempfail = 1;
	}
	snprintf(reply, sizeof(reply), "<%s>: %s rejected: %s", addr, what,
	    tempfail ? "Domain not found (temporary failure)"
	             : "Domain not found");
	return check_reject(s, 450, sender ? "4.1.8" : "4.1.2", reply);
}

/* ---- evaluation ---- */

static enum verdict
check_item_run(struct smtpd_session *s, int list, const struct check_item *it)
{
	const char *rcpt = check_rcpt(s);
	const struct check_def *def = it->def;
	char subject[CHECK_REPLY_MAX];

	if (!check_applies(s, def))
		return V_DUNNO;
	switch (def->op) {
	case OP_CLIENT_ACCESS:
		return check_client_access(s, it->map);
	case OP_HELO_ACCESS:
		return check_helo_access(s, it->map);
	case OP_SENDER_ACCESS:
		return check_addr_access(s, it->map, s->sender, "Sender address");
	case OP_RECIPIENT_ACCESS:
		return check_addr_access(s, it->map, rcpt, "Recipient address");
	case OP_REJECT_RBL:
	case OP_PERMIT_DNSWL:
		return check_rbl(s, it);
	case OP_REJECT_UNKNOWN_SENDER_DOMAIN:
		return check_domain_exists(s, s->sender, 1);
	case OP_REJECT_UNKNOWN_RCPT_DOMAIN:
		return check_domain_exists(s, rcpt, 0);
	default:
		break;
	}
	/* Plain reject/defer name what the list is about. */
	switch (list) {
	case LIST_CLIENT:
		snprintf(subject, sizeof(subject), "<%s[%s]>: %s", s->name,
		    s->addr, check_lists[list].what);
		break;
	case LIST_HELO:
		snprintf(subject, sizeof(subject), "<%s>: %s",
		    s->helo != NULL ? s->helo : "", check_lists[list].what);
		break;
	case LIST_SENDER:
		snprintf(subject, sizeof(subject), "<%s>: %s",
		    s->sender != NULL ? s->sender : "", check_lists[list].what);
		break;
	case LIST_ETRN:
		snprintf(subject, sizeof(subject), "<%s>: %s",
		    s->etrn_domain != NULL ? s->etrn_domain : "",
		    check_lists[list].what);
		break;
	default:
		snprintf(subject, sizeof(subject), "<%s>: %s",
		    rcpt != NULL ? rcpt : "", check_lists[list].what);
		break;
	}
	return check_simple_op(s, def, subject);
}

/* The lists a stage evaluates: [first, last]. */
static int
check_first_list(enum smtpd_check_stage stage)
{
	return stage == SMTPD_CHECK_ETRN ? LIST_ETRN : LIST_CLIENT;
}

static int
check_last_list(enum smtpd_check_stage stage)
{
	switch (stage) {
	case SMTPD_CHECK_ETRN:
		return LIST_ETRN;
	case SMTPD_CHECK_HELO:
		return LIST_HELO;
	case SMTPD_CHECK_MAIL:
		return LIST_SENDER;
	case SMTPD_CHECK_RCPT:
		return LIST_RECIPIENT;
	default:
		return LIST_CLIENT;
	}
}

/* Runs from the cursor; PASS, REJECT or PENDING (cursor kept). */
static int
check_run(struct smtpd_session *s)
{
	struct smtpd_check_state *st = s->check;
	int last = check_last_list(st->stage);
	enum verdict v;

	for (; st->list <= last; st->list++, st->item = 0) {
		const struct check_list *l = &check_lists[st->list];

		for (; st->item < l->n; st->item++) {
			v = check_item_run(s, st->list, &l->items[st->item]);
			if (v == V_PENDING)
				return SMTPD_CHECK_PENDING;
			if (v == V_REJECT)
				return SMTPD_CHECK_REJECT;
			if (v == V_PERMIT)
				break;
		}
	}
	return SMTPD_CHECK_PASS;
}

static void
check_resume(struct smtpd_session *s)
{
	struct smtpd_check_state *st = s->check;
	int r = check_run(s);

	if (r != SMTPD_CHECK_PENDING)
		st->done(s, r);
}

int
smtpd_check(struct smtpd_session *s, enum smtpd_check_stage stage,
    smtpd_check_done_fn *done)
{
	struct smtpd_check_state *st;

	/* Without delay_reject, the client list runs at connect, and HELO
	 * and MAIL run the lists up to theirs when the command comes; RCPT
	 * runs them all either way (a permit in an earlier list must not
	 * let a reject in a later one pass). */
	if (stage != SMTPD_CHECK_RCPT && stage != SMTPD_CHECK_ETRN &&
	    var_smtpd_delay_reject)
		return SMTPD_CHECK_PASS;
	st = check_state(s);
	st->stage = stage;
	st->list = check_first_list(stage);
	st->item = 0;
	st->done = done;
	return check_run(s);
}
