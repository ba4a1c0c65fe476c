/* SPDX-License-Identifier: MIT */
/*
 * Who a message collected from a multidrop mailbox is for
 * (fetch_route.h): the header section is split into fields once, the
 * way cleanup splits it (a line that is not "name:" starts the body),
 * then the loop guard, the envelope headers in the configured order,
 * the rule table and the lost-mail recipient are tried in turn. Every
 * pass is linear in the (capped) header section, so a hostile message
 * costs at most a few scans of header_size_limit bytes.
 *
 * RFC 5322 2.2 (fields, folding) and 3.4 (address lists, via
 * rfc822_addr), RFC 5321 4.4 (the "for" clause of Received:), 4.1.2
 * (the path syntax every recipient must have).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/fetch_route.h"
#include "mail/params.h"
#include "mail/rfc822_addr.h"

/* header_size_limit's default, for a caller that never loaded tern.conf
 * (var_header_size_limit is 0 then). */
#define FETCH_ROUTE_HEADER_DEFAULT 102400
/* How much of a header line or rule value goes into res->detail. */
#define FETCH_ROUTE_DETAIL_MAX     200
/* The fallback when the caller configured no lost-mail recipient: mail
 * must go somewhere. */
#define FETCH_ROUTE_LOST_DEFAULT   "postmaster"
/* The keyword of the Received: clause that names the recipient. */
#define FETCH_ROUTE_FOR            "for"

/* One header field; name and value point into the message. */
struct fr_field {
	const char *name;
	size_t name_len;
	const char *value; /* after the colon, folds included */
	size_t value_len;  /* without the line end of the last line */
};

struct fr_state {
	const struct fetch_route_config *cfg;
	struct fr_field *fields;
	size_t nfields, fields_cap;
	struct hash *seen; /* addr_fold() keys of rcpts */
	char **rcpts;
	size_t nrcpts;
	size_t over;     /* local addresses past FETCH_ROUTE_RCPTS_MAX */
	int bad;         /* a rule value did not parse */
	const char *why; /* ... and why (static text) */
	struct buf line; /* the unfolded line a rule sees */
};

/* RFC 5322 2.2: a field name is printable US-ASCII except ':'. */
static int
fr_ftext(unsigned char b)
{
	return b > ' ' && b < 0x7f && b != ':';
}

static void
fr_field_add(struct fr_state *st, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
	struct fr_field *f;

	if (st->nfields == st->fields_cap) {
		st->fields_cap = st->fields_cap ? st->fields_cap * 2 : 32;
		st->fields =
		    xrealloc(st->fields, st->fields_cap * sizeof(*st->fields));
	}
	f = &st->fields[st->nfields++];
	f->name = name;
	f->name_len = name_len;
	f->value = value;
	f->value_len = value_len;
}

/*
 * Splits the first len bytes of msg into fields. capped: msg goes on
 * past len, so a field that reaches len may be cut (or continued) and
 * is left out. An empty line, a line that is not "name:" and a
 * continuation line before any field end the section, as in cleanup,
 * so that the fields seen here are the ones cleanup stores.
 */
static void
fr_split(struct fr_state *st, const char *msg, size_t len, int capped)
{
	const char *lf;
	size_t start = 0, colon, end;

	while (start < len) {
		for (colon = start;
		     colon < len && fr_ftext((unsigned char)msg[colon]);
		     colon++)
			;
		if (colon == start || colon == len || msg[colon] != ':')
			return;
		/* The field ends before the next line that does not start
		 * with white space. */
		for (end = colon + 1;;) {
			lf = memchr(msg + end, '\n', len - end);
			if (lf == NULL) {
				end = len;
				break;
			}
			end = (size_t)(lf - msg) + 1;
			if (end == len || (msg[end] != ' ' && msg[end] != '\t'))
				break;
		}
		if (end == len && capped)
			return;
		fr_field_add(st, msg + start, colon - start, msg + colon + 1,
		    end - (colon + 1));
		start = end;
		if (msg[end - 1] == '\n') {
			st->fields[st->nfields - 1].value_len--;
			if (end - 1 > colon + 1 && msg[end - 2] == '\r')
				st->fields[st->nfields - 1].value_len--;
		}
	}
}

/* A configured header name without white space around it or a colon
 * after it ("Delivered-To:" means Delivered-To). */
static void
fr_name_trim(const char *name, const char **start_r, size_t *len_r)
{
	size_t len;

	while (*name == ' ' || *name == '\t')
		name++;
	len = strlen(name);
	while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t' ||
	                      name[len - 1] == ':'))
		len--;
	*start_r = name;
	*len_r = len;
}

static int
fr_name_is(const struct fr_field *f, const char *name, size_t len)
{
	/* name is not terminated at len: a configured "X-To:" is "X-To". */
	return len > 0 && f->name_len == len &&
	       strncasecmp(f->name, name, len) == 0;
}

/*
 * addr (len bytes, from a header or a rule) in the form the queue
 * takes: a valid RFC 5321 path (quoted local part kept as written,
 * domain lower-cased, UTF-8 allowed), malloc'd; NULL if it is none or,
 * with need_domain, has no domain (an envelope header always names
 * one: a bare word there is junk, not a local user).
 */
static char *
fr_normalize(const char *addr, size_t len, int need_domain)
{
	char *path, *parsed = NULL, *local, *domain, *out = NULL;
	const char *params, *err;

	if (len == 0 || strlen(addr) != len || len > ADDR_PATH_MAX)
		return NULL;
	path = xasprintf("<%s>", addr);
	if (addr_parse_path(path, ADDR_UTF8_OK, &parsed, &params, &err) < 0 ||
	    *params != '\0') {
		free(path);
		free(parsed);
		return NULL;
	}
	free(path);
	if (addr_split(parsed, &local, &domain) == 0 &&
	    (domain != NULL || !need_domain))
		out = domain != NULL ? xasprintf("%s@%s", local, domain)
		                     : xstrdup(local);
	free(parsed);
	free(local);
	free(domain);
	return out;
}

/*
 * Takes addr (malloc'd) as a recipient unless it is a duplicate; past
 * FETCH_ROUTE_RCPTS_MAX it is counted in st->over and dropped.
 */
static void
fr_rcpt_add(struct fr_state *st, char *addr)
{
	char *key = addr_fold(addr);

	if (hash_get(st->seen, key) != NULL) {
		free(addr);
	} else if (st->nrcpts >= FETCH_ROUTE_RCPTS_MAX) {
		st->over++;
		free(addr);
	} else {
		hash_put(st->seen, key, st);
		st->rcpts[st->nrcpts++] = addr;
	}
	free(key);
}

/* rfc822_addr_fn for envelope headers: local addresses only. */
static void
fr_header_addr(void *ctx, const char *addr, size_t len)
{
	struct fr_state *st = ctx;
	char *norm;

	if ((norm = fr_normalize(addr, len, 1)) == NULL)
		return;
	if (st->cfg->is_local == NULL ||
	    !st->cfg->is_local(norm, st->cfg->ctx)) {
		free(norm);
		return;
	}
	fr_rcpt_add(st, norm);
}

/* Skips a comment starting at v[i] == '(' (nested, RFC 5322 3.2.2);
 * an unterminated one runs to the end. */
static size_t
fr_skip_comment(const char *v, size_t len, size_t i)
{
	size_t depth = 0;

	for (; i < len; i++) {
		if (v[i] == '\\' && i + 1 < len)
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

static int
fr_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The recipient of the "for" clause of a Received: value (RFC 5321
 * 4.4: "for <path>" or, from some MTAs, a bare mailbox), outside
 * comments and quoted strings; the last one, as the clause comes late
 * and a host in the "from" part might be called "for": its start and
 * length, or 0.
 */
static size_t
fr_received_for(const char *v, size_t len, const char **addr_r)
{
	size_t i = 0, w, a, found = 0;

	while (i < len) {
		if (v[i] == '(') {
			i = fr_skip_comment(v, len, i);
			continue;
		}
		if (v[i] == '"') {
			for (i++; i < len && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (fr_wsp(v[i]) || v[i] == ';') {
			i++;
			continue;
		}
		for (w = i; i < len && !fr_wsp(v[i]) && v[i] != ';' &&
		            v[i] != '(' && v[i] != '"';
		     i++)
			;
		if (i - w != strlen(FETCH_ROUTE_FOR) ||
		    !str_prefix_ci(v + w, i - w, FETCH_ROUTE_FOR))
			continue;
		while (i < len && (fr_wsp(v[i]) || v[i] == '('))
			i = v[i] == '(' ? fr_skip_comment(v, len, i) : i + 1;
		a = i;
		if (i < len && v[i] == '<') {
			while (i < len && v[i] != '>' && v[i] != ';')
				i++;
			if (i < len && v[i] == '>')
				i++;
		} else {
			while (i < len && !fr_wsp(v[i]) && v[i] != ';' &&
			       v[i] != '(')
				i++;
		}
		if (i > a) {
			*addr_r = v + a;
			found = i - a;
		}
	}
	return found;
}

/* The local addresses of every field called name (the top Received:'s
 * "for" only, for FETCH_ROUTE_RECEIVED) into st->rcpts. */
static void
fr_try_header(struct fr_state *st, const char *name, size_t name_len)
{
	const struct fr_field *f;
	const char *addr, *err;
	size_t i, alen;
	int received = name_len == strlen(FETCH_ROUTE_RECEIVED) &&
	               str_prefix_ci(name, name_len, FETCH_ROUTE_RECEIVED);

	for (i = 0; i < st->nfields; i++) {
		f = &st->fields[i];
		if (!fr_name_is(f, name, name_len))
			continue;
		if (received) {
			/* Lower hops are the sender's side: forgeable. */
			alen = fr_received_for(f->value, f->value_len, &addr);
			if (alen > 0)
				(void)rfc822_addr_list(
				    addr, alen, 1, fr_header_addr, st, &err);
			return;
		}
		/* A list never has more addresses than bytes: only an
		 * overlong address stops it, after those before it. */
		(void)rfc822_addr_list(f->value, f->value_len, f->value_len + 1,
		    fr_header_addr, st, &err);
	}
}

/* The field as one line: folds removed, a NUL (only junk has one) a
 * space, so that a table sees a C string. */
static const char *
fr_unfold(struct fr_state *st, const struct fr_field *f)
{
	const char *p = f->name;
	size_t len = (size_t)(f->value - f->name) + f->value_len, i;
	char c;

	buf_reset(&st->line);
	for (i = 0; i < len; i++) {
		c = p[i];
		if (c == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue;
		if (c == '\n')
			continue;
		if (buf_putc(&st->line, c == '\0' ? ' ' : c) < 0)
			msg_panic("fetch_route: line longer than its field");
	}
	return buf_cstr(&st->line);
}

/* s (len bytes) with white space runs as one space and none at either
 * end, for comparing loop header values however they were folded. */
static char *
fr_squeeze(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t i, o = 0;
	int space = 0;

	for (i = 0; i < len; i++) {
		if (fr_wsp(s[i]) || s[i] == '\0') {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = 0;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* The field that shows this message was collected by us before. */
static const struct fr_field *
fr_loop(struct fr_state *st)
{
	const struct fetch_route_config *cfg = st->cfg;
	const struct fr_field *f, *hit = NULL;
	const char *name;
	size_t name_len, i;
	char *want, *got;

	if (cfg->loop_header_name == NULL)
		return NULL;
	fr_name_trim(cfg->loop_header_name, &name, &name_len);
	/* No value: any such header is ours. */
	want = cfg->loop_header_value == NULL
	           ? NULL
	           : fr_squeeze(cfg->loop_header_value,
	                 strlen(cfg->loop_header_value));
	for (i = 0; i < st->nfields && hit == NULL; i++) {
		f = &st->fields[i];
		if (!fr_name_is(f, name, name_len))
			continue;
		if (want == NULL)
			return f;
		got = fr_squeeze(f->value, f->value_len);
		/* Host and account names: case does not make another site. */
		if (str_eq_ci(got, want))
			hit = f;
		free(got);
	}
	free(want);
	return hit;
}

/* Postfix table actions: an admin may write them out of habit, but a
 * fetched message is never dropped, held or refused here. DUNNO is the
 * one that makes sense: this line decides nothing. */
static const char *const fr_actions[] = {"OK", "DISCARD", "REJECT", "DEFER",
    "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "HOLD", "IGNORE", "WARN", "INFO",
    "FILTER", "REDIRECT", "BCC", "PREPEND", "REPLACE", "PERMIT", "PASS"};
#define FR_DUNNO "DUNNO"

/* 1 if the value's first word is w (case as written: "Ok@x" is mail). */
static int
fr_first_word_is(const char *value, const char *w)
{
	size_t n = strlen(w);

	while (*value == ' ' || *value == '\t')
		value++;
	return strncmp(value, w, n) == 0 &&
	       (value[n] == '\0' || value[n] == ' ' || value[n] == '\t');
}

/* rfc822_addr_fn for rule values: any valid address, local or not. */
static void
fr_rule_addr(void *ctx, const char *addr, size_t len)
{
	struct fr_state *st = ctx;
	char *norm;

	if (st->bad)
		return;
	if ((norm = fr_normalize(addr, len, 0)) == NULL) {
		st->bad = 1;
		st->why = "not an address";
		return;
	}
	fr_rcpt_add(st, norm);
}

/* Parses a rule's value into st->rcpts; 0, or -1 with st->why. */
static int
fr_rule_value(struct fr_state *st, const char *value)
{
	const char *err;
	size_t i;
	int n;

	for (i = 0; i < sizeof(fr_actions) / sizeof(fr_actions[0]); i++) {
		if (fr_first_word_is(value, fr_actions[i])) {
			st->why = "an action, not an address "
			          "(fetched mail is never dropped)";
			return -1;
		}
	}
	n = rfc822_addr_list(value, strlen(value), FETCH_ROUTE_RCPTS_MAX,
	    fr_rule_addr, st, &err);
	if (n < 0) {
		st->why = err;
		return -1;
	}
	if (st->bad)
		return -1;
	if (st->nrcpts == 0) {
		st->why = "no address";
		return -1;
	}
	return 0;
}

static void
fr_rcpts_clear(struct fr_state *st)
{
	while (st->nrcpts > 0)
		free(st->rcpts[--st->nrcpts]);
	hash_free(&st->seen, NULL);
	st->seen = hash_create();
	st->over = 0;
}

/*
 * Looks the fields up in the rule table in message order: 1 a rule
 * decided (st->rcpts, or st->bad for a value that is no address list),
 * 0 none did, -1 the table failed (*error_r).
 */
static int
fr_rules(struct fr_state *st, char **detail_r, const char **error_r)
{
	const char *line, *value;
	size_t i;
	int r;

	if (map_list_empty(st->cfg->rules))
		return 0;
	for (i = 0; i < st->nfields; i++) {
		line = fr_unfold(st, &st->fields[i]);
		r = map_list_lookup(st->cfg->rules, line, &value, error_r);
		if (r < 0)
			return -1;
		if (r == 0 || fr_first_word_is(value, FR_DUNNO))
			continue;
		if (fr_rule_value(st, value) < 0) {
			fr_rcpts_clear(st);
			st->bad = 1;
			*detail_r = xasprintf("rule: %s: bad value \"%s\": %s",
			    log_sanitize(line, FETCH_ROUTE_DETAIL_MAX),
			    log_sanitize(value, FETCH_ROUTE_DETAIL_MAX),
			    st->why);
		} else {
			*detail_r = xasprintf("rule: %s",
			    log_sanitize(line, FETCH_ROUTE_DETAIL_MAX));
		}
		return 1;
	}
	return 0;
}

/* The lost-mail recipient, added last (a duplicate of one already
 * there is not added twice). */
static void
fr_add_lost(struct fr_state *st)
{
	const char *lost = st->cfg->lost_recipient;
	char *norm;

	if (lost == NULL || *lost == '\0')
		lost = FETCH_ROUTE_LOST_DEFAULT;
	/* The admin's setting: used as written if it is no valid path,
	 * so the queue's own check reports it. */
	norm = fr_normalize(lost, strlen(lost), 0);
	if (norm == NULL)
		norm = xstrdup(lost);
	if (st->nrcpts == FETCH_ROUTE_RCPTS_MAX) {
		/* Room for it: the last local one joins the rest. */
		free(st->rcpts[--st->nrcpts]);
		st->over++;
	}
	fr_rcpt_add(st, norm);
}

int
fetch_route(const struct fetch_route_config *cfg, const char *msg, size_t len,
    struct fetch_route_result *res, const char **error_r)
{
	struct fr_state st;
	const struct fr_field *loop;
	const char *name;
	size_t cap, i, name_len;
	char *detail = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.seen = hash_create();
	/* One more for the lost-mail recipient after a full list. */
	st.rcpts = xcalloc(FETCH_ROUTE_RCPTS_MAX + 1, sizeof(*st.rcpts));
	cap = var_header_size_limit > 0 ? (size_t)var_header_size_limit
	                                : FETCH_ROUTE_HEADER_DEFAULT;
	/* A line a rule sees is never longer than the section. */
	buf_init(&st.line, cap);
	fr_split(&st, msg, len < cap ? len : cap, len > cap);

	res->how = FETCH_ROUTE_LOST;
	if ((loop = fr_loop(&st)) != NULL) {
		res->how = FETCH_ROUTE_LOOP;
		detail = xasprintf("loop: %s",
		    log_sanitize(fr_unfold(&st, loop), FETCH_ROUTE_DETAIL_MAX));
	}
	for (i = 0; detail == NULL && i < cfg->nheaders; i++) {
		fr_name_trim(cfg->headers[i], &name, &name_len);
		fr_try_header(&st, name, name_len);
		if (st.nrcpts > 0) {
			res->how = FETCH_ROUTE_HEADER;
			detail = xstrndup(name, name_len);
		}
	}
	if (detail == NULL) {
		r = fr_rules(&st, &detail, error_r);
		if (r < 0) {
			fr_rcpts_clear(&st);
			hash_free(&st.seen, NULL);
			free(st.rcpts);
			free(st.fields);
			buf_free(&st.line);
			return -1;
		}
		if (r > 0 && !st.bad)
			res->how = FETCH_ROUTE_RULE;
	}
	if (detail == NULL)
		detail = xstrdup("no local recipient");
	if (res->how != FETCH_ROUTE_HEADER && res->how != FETCH_ROUTE_RULE)
		fr_add_lost(&st);
	else if (st.over > 0)
		fr_add_lost(&st);
	if (st.over > 0) {
		char *more = xasprintf("%s (more than %d local recipients: "
		                       "%zu went to lost mail)",
		    detail, FETCH_ROUTE_RCPTS_MAX, st.over);

		free(detail);
		detail = more;
	}
	res->rcpts = st.rcpts;
	res->nrcpts = st.nrcpts;
	res->detail = detail;
	hash_free(&st.seen, NULL);
	free(st.fields);
	buf_free(&st.line);
	return 0;
}

void
fetch_route_result_free(struct fetch_route_result *res)
{
	size_t i;

	for (i = 0; i < res->nrcpts; i++)
		free(res->rcpts[i]);
	free(res->rcpts);
	free(res->detail);
	memset(res, 0, sizeof(*res));
}
