/* SPDX-License-Identifier: MIT */
/*
 * The IMAP client (RFC 9051 and RFC 3501, which servers still speak;
 * RFC 8314 implicit TLS on 993, STARTTLS otherwise; RFC 4616 PLAIN with
 * RFC 4959's initial response when offered, LOGIN when PLAIN is not).
 * It SELECTs the account's folder, lists UID and RFC822.SIZE of every
 * message and takes each one it has not queued yet with UID FETCH
 * BODY.PEEK[] (PEEK: a message that cannot be queued stays unseen).
 * Once the message is committed and recorded, it is marked \Deleted and
 * expunged by UID (RFC 4315 UIDPLUS), or with one EXPUNGE at the end
 * when the server lacks UIDPLUS; keep=yes marks it \Seen instead.
 *
 * The journal key of a message is "UIDVALIDITY.UID": UIDs name a
 * message only within one UIDVALIDITY (RFC 9051 2.3.1.1), so after a
 * change nothing is skipped (a possible duplicate of kept mail rather
 * than a loss), and the change is logged.
 *
 * What the server sends is bounded: a response line is at most
 * FETCH_IMAP_LINE_MAX, a message literal at most message_size_limit (a
 * larger one is read and dropped, the message left on the server), and
 * every wait ends at the connection's deadlines (fetch_net.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/params.h"
#include "fetch.h"

/* A response line: CAPABILITY, FLAGS and FETCH lines of real servers
 * are far shorter (Dovecot's own limit for a command is 64k). */
#define FETCH_IMAP_LINE_MAX (64 * 1024)
/* "UIDVALIDITY.UID" with two 32-bit numbers. */
#define FETCH_IMAP_ID_MAX 24

#define FETCH_IMAP_CAP_AUTH_PLAIN    0x01
#define FETCH_IMAP_CAP_SASL_IR       0x02
#define FETCH_IMAP_CAP_LOGINDISABLED 0x04
#define FETCH_IMAP_CAP_UIDPLUS       0x08
#define FETCH_IMAP_CAP_AUTH_LOGIN    0x10

struct fetch_imap_item {
	uint64_t uid;
	uint64_t size;
	char id[FETCH_IMAP_ID_MAX];
};

struct fetch_imap {
	struct fetch_account *a;
	struct fetch_conn *conn;
	struct fetch_state *state;
	struct buf line;
	struct fetch_summary *sum;
	unsigned tagn;
	char tag[16];
	unsigned caps;
	int caps_seen;		/* a CAPABILITY list came since the reset */
	uint64_t uidvalidity;
	int selected;		/* UIDVALIDITY is fixed until the session ends */
	int validity_changed;	/* ... and a response said otherwise */
	uint64_t exists;
	struct fetch_imap_item *items;
	size_t nitems, cap;
	size_t to_expunge;	/* \Deleted, waiting for the final EXPUNGE */
};

/* What a FETCH response line holds of what we asked. */
struct fetch_imap_fetch {
	int have_uid, have_size, have_body;
	uint64_t uid, size;
	/* BODY[]: a literal of body_len bytes follows the line, or the
	 * value is a quoted string at line[body_off..] (or NIL). */
	int body_literal;
	uint64_t body_len;
	size_t body_off;
};

/* ---- reading responses --------------------------------------------- */

/* The size of a literal that ends the line ("{123}", "{123+}"), or -1. */
static int64_t
fetch_imap_literal_len(const struct buf *line)
{
	const char *s = line->data;
	size_t n = line->len, end, start;
	uint64_t v;

	if (n < 3 || s[n - 1] != '}')
		return -1;
	end = n - 1;
	if (s[end - 1] == '+')
		end--;
	for (start = end; start > 0 && s[start - 1] >= '0' &&
	                  s[start - 1] <= '9';
	     start--)
		;
	if (start == end || start == 0 || s[start - 1] != '{' ||
	    str_to_u64_n(s + start, end - start, UINT64_MAX >> 2, &v) < 0)
		return -1;
	return (int64_t)v;
}

/* Reads len bytes of a literal into out (NULL: dropped; what does not
 * fit out sets *too_big). 0, or -1 when the connection broke. */
static int
fetch_imap_literal(struct fetch_imap *p, uint64_t len, struct buf *out,
    int *too_big)
{
	const char *data;
	size_t have, take;

	while (len > 0) {
		if (fetch_conn_wait(p->conn) != STREAM_OK) {
			fetch_fail(p->sum, "%s while a literal was read",
			    fetch_conn_why(p->conn, "the connection broke"));
			return -1;
		}
		data = stream_peek(&p->conn->st, &have);
		take = have < len ? have : (size_t)len;
		if (out != NULL && !*too_big && buf_append(out, data, take) < 0)
			*too_big = 1;
		stream_consume(&p->conn->st, take);
		len -= take;
	}
	return 0;
}

static int
fetch_imap_line(struct fetch_imap *p, const char *what)
{
	enum stream_result r;

	r = fetch_conn_line_max(p->conn, &p->line, FETCH_IMAP_LINE_MAX);
	/* RFC 9051 4: no NUL outside a literal8. The line is parsed as a C
	 * string but its literal announcement by length: a NUL would make
	 * the two disagree. */
	if (r == STREAM_OK && p->line.len > 0 &&
	    memchr(p->line.data, '\0', p->line.len) != NULL) {
		fetch_fail(p->sum, "a NUL in a response after %s", what);
		return -1;
	}
	if (r == STREAM_OK)
		return 0;
	if (r == STREAM_TOOLONG)
		fetch_fail(p->sum, "a response over %d bytes after %s",
		    FETCH_IMAP_LINE_MAX, what);
	else
		fetch_fail(p->sum, "%s after %s",
		    fetch_conn_why(p->conn, "connection lost"), what);
	return -1;
}

/* Skips the literals a line we do not use ends in (and the lines they
 * continue into); bounded like a message. 0 or -1. */
static int
fetch_imap_skip(struct fetch_imap *p, const char *what)
{
	int64_t n;
	int dummy = 0;

	while ((n = fetch_imap_literal_len(&p->line)) >= 0) {
		if ((uint64_t)n > (uint64_t)var_message_size_limit) {
			fetch_fail(p->sum, "a literal of %lld bytes after %s",
			    (long long)n, what);
			return -1;
		}
		if (fetch_imap_literal(p, (uint64_t)n, NULL, &dummy) < 0 ||
		    fetch_imap_line(p, what) < 0)
			return -1;
	}
	return 0;
}

/* A CAPABILITY list in s (untagged, or a response code): replaces
 * what we knew. */
static void
fetch_imap_caps(struct fetch_imap *p, const char *s)
{
	static const struct {
		const char *name;
		unsigned bit;
	} known[] = {
	    {"AUTH=PLAIN", FETCH_IMAP_CAP_AUTH_PLAIN},
	    {"AUTH=LOGIN", FETCH_IMAP_CAP_AUTH_LOGIN},
	    {"SASL-IR", FETCH_IMAP_CAP_SASL_IR},
	    {"LOGINDISABLED", FETCH_IMAP_CAP_LOGINDISABLED},
	    {"UIDPLUS", FETCH_IMAP_CAP_UIDPLUS},
	};
	const char *w, *end;
	size_t n, i;

	p->caps = 0;
	p->caps_seen = 1;
	for (w = s; *w != '\0' && *w != ']';) {
		while (*w == ' ')
			w++;
		for (end = w; *end != '\0' && *end != ' ' && *end != ']'; end++)
			;
		n = (size_t)(end - w);
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (n == strlen(known[i].name) &&
			    str_prefix_ci(w, n, known[i].name))
				p->caps |= known[i].bit;
		w = end;
	}
}

/* What every response line may carry: capabilities, UIDVALIDITY and
 * EXISTS (which SELECT sends, and any command may). */
static void
fetch_imap_common(struct fetch_imap *p, const char *s)
{
	const char *code = strchr(s, '[');
	uint64_t v;
	char *end;

	if (str_prefix_ci(s, strlen(s), "* CAPABILITY "))
		fetch_imap_caps(p, s + 13);
	else if (code != NULL &&
	         str_prefix_ci(code, strlen(code), "[CAPABILITY "))
		fetch_imap_caps(p, code + 12);
	else if (code != NULL &&
	         str_prefix_ci(code, strlen(code), "[UIDVALIDITY ")) {
		v = strtoull(code + 13, &end, 10);
		if (end != code + 13 && *end == ']' && v > 0 &&
		    v <= 0xffffffffULL) {
			/* A change after SELECT makes the UIDs listed name
			 * other messages (RFC 9051 2.3.1.1): collection stops
			 * before anything more is stored or deleted. */
			if (p->selected && v != p->uidvalidity)
				p->validity_changed = 1;
			else if (!p->selected)
				p->uidvalidity = v;
		}
	} else if (s[0] == '*' && s[1] == ' ' && s[2] >= '0' && s[2] <= '9') {
		v = strtoull(s + 2, &end, 10);
		if (str_eq_ci(end, " EXISTS") && v <= 0xffffffffULL)
			p->exists = v;
	}
}

/*
 * Reads responses to the command tagged p->tag. Each untagged line goes
 * to untagged (when not NULL), which returns 1 when it took the line
 * (and any literal in it), 0 when not, -1 on a broken session. Returns 1
 * for a tagged OK, 0 for NO or BAD (the line stays in p->line), 2 for a
 * continuation request ("+"), -1 for a broken session.
 */
static int
fetch_imap_reply(struct fetch_imap *p, const char *what,
    int (*untagged)(struct fetch_imap *, void *), void *ctx)
{
	size_t tlen = strlen(p->tag);
	const char *s;
	int r;

	for (;;) {
		if (fetch_imap_line(p, what) < 0)
			return -1;
		s = buf_cstr(&p->line);
		fetch_imap_common(p, s);
		if (s[0] == '+' && (s[1] == ' ' || s[1] == '\0'))
			return 2;
		if (strncmp(s, p->tag, tlen) == 0 && s[tlen] == ' ') {
			s += tlen + 1;
			if (str_prefix_ci(s, strlen(s), "OK"))
				return 1;
			if (str_prefix_ci(s, strlen(s), "NO") ||
			    str_prefix_ci(s, strlen(s), "BAD"))
				return 0;
			fetch_fail(p->sum, "not an IMAP reply to %s: %s", what,
			    buf_cstr(&p->line));
			return -1;
		}
		if (s[0] != '*' || s[1] != ' ') {
			fetch_fail(p->sum, "not an IMAP response after %s: %s",
			    what, s);
			return -1;
		}
		r = untagged != NULL ? untagged(p, ctx) : 0;
		if (r < 0 || (r == 0 && fetch_imap_skip(p, what) < 0))
			return -1;
	}
}

/* Sends a tagged command. 0 or -1 (recorded). */
static int MTA_PRINTF(2, 3)
fetch_imap_cmd(struct fetch_imap *p, const char *fmt, ...)
{
	char text[FETCH_CMD_MAX];
	va_list ap;
	int n, r;

	snprintf(p->tag, sizeof(p->tag), "t%u", ++p->tagn);
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r = n < 0 || (size_t)n >= sizeof(text)
	        ? -1
	        : fetch_conn_cmd(p->conn, "%s %s", p->tag, text);
	explicit_bzero(text, sizeof(text));
	if (r < 0)
		fetch_fail(p->sum, "%s", "cannot send a command");
	return r;
}

/* A command and its completion: 1 OK, 0 NO/BAD (logged into the
 * summary as "what refused: text" when refused_fails), -1 broken. */
static int
fetch_imap_simple(struct fetch_imap *p, const char *what, int refused_fails,
    int (*untagged)(struct fetch_imap *, void *), void *ctx)
{
	int r = fetch_imap_reply(p, what, untagged, ctx);

	if (r == 2) {
		fetch_fail(p->sum, "an unexpected continuation after %s", what);
		return -1;
	}
	if (r == 0 && refused_fails)
		fetch_fail(p->sum, "%s refused: %s", what, buf_cstr(&p->line));
	return r;
}

/* Appends s as an IMAP quoted string. */
static void
fetch_imap_quote(struct buf *out, const char *s)
{
	int r = buf_putc(out, '"');

	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			r |= buf_putc(out, '\\');
		r |= buf_putc(out, *s);
	}
	r |= buf_putc(out, '"');
	if (r < 0)
		msg_panic("an IMAP string over its buffer");
}

/* ---- FETCH responses ---------------------------------------------- */

/* Skips one value (atom, number, NIL, quoted string, nested list);
 * the position after it, or NULL for a malformed one. */
static const char *
fetch_imap_skip_value(const char *s)
{
	int depth = 0;

	do {
		if (*s == '(') {
			depth++;
			s++;
		} else if (*s == ')') {
			if (depth == 0)
				return NULL;
			depth--;
			s++;
		} else if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\\' && s[1] != '\0')
					s++;
				if (*s == '\0')
					return NULL;
			}
			s++;
		} else if (*s == ' ') {
			s++;
		} else if (*s == '\0' || *s == '{') {
			return NULL;
		} else {
			while (*s != '\0' && *s != ' ' && *s != '(' &&
			       *s != ')' && *s != '"')
				s++;
		}
	} while (depth > 0);
	return s;
}

/*
 * Parses "* N FETCH (NAME VALUE ...)" in p->line into f: UID,
 * RFC822.SIZE and BODY[]. 1 for a FETCH line, 0 for another response,
 * -1 for a malformed FETCH (the session is not trusted further).
 */
static int
fetch_imap_parse_fetch(struct fetch_imap *p, struct fetch_imap_fetch *f)
{
	const char *s = buf_cstr(&p->line), *name, *next, *brace;
	char *end;
	size_t nlen;
	int64_t lit;

	memset(f, 0, sizeof(*f));
	if (s[0] != '*' || s[1] != ' ' || s[2] < '0' || s[2] > '9')
		return 0;
	(void)strtoull(s + 2, &end, 10);
	if (!str_prefix_ci(end, strlen(end), " FETCH ("))
		return 0;
	s = end + 8;
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == ')' || *s == '\0')
			return 1;
		/* A name may hold a bracketed section with spaces. */
		name = s;
		while (*s != '\0' && *s != ' ') {
			if (*s == '[' && (next = strchr(s, ']')) != NULL)
				s = next;
			s++;
		}
		nlen = (size_t)(s - name);
		while (*s == ' ')
			s++;
		if (nlen == 3 && str_prefix_ci(name, 3, "UID")) {
			f->uid = strtoull(s, &end, 10);
			if (end == s || f->uid == 0 || f->uid > 0xffffffffULL)
				goto bad;
			f->have_uid = 1;
			s = end;
		} else if (nlen == 11 && str_prefix_ci(name, 11, "RFC822.SIZE")) {
			f->size = strtoull(s, &end, 10);
			if (end == s)
				goto bad;
			f->have_size = 1;
			s = end;
		} else if (nlen == 6 && str_prefix_ci(name, 6, "BODY[]")) {
			f->have_body = 1;
			if (*s == '{') {
				lit = fetch_imap_literal_len(&p->line);
				if (lit < 0 || (brace = strchr(s, '}')) == NULL ||
				    brace[1] != '\0')
					goto bad;
				f->body_literal = 1;
				f->body_len = (uint64_t)lit;
				return 1;
			}
			f->body_off = (size_t)(s - buf_cstr(&p->line));
			if ((next = fetch_imap_skip_value(s)) == NULL)
				goto bad;
			s = next;
		} else {
			/* A literal of another item ends the part we read; the
			 * caller skips it. */
			if (*s == '{')
				return 1;
			if ((next = fetch_imap_skip_value(s)) == NULL)
				goto bad;
			s = next;
		}
	}
bad:
	fetch_fail(p->sum, "a malformed FETCH response: %s",
	    buf_cstr(&p->line));
	return -1;
}

static int
fetch_imap_list_line(struct fetch_imap *p, void *ctx)
{
	struct fetch_imap_fetch f;
	struct fetch_imap_item *it;
	int r;

	(void)ctx;
	if ((r = fetch_imap_parse_fetch(p, &f)) <= 0)
		return r;
	/* A FETCH without both is an unsolicited flag update. */
	if (!f.have_uid || !f.have_size)
		return 0;
	if (p->nitems >= FETCH_LIST_MAX) {
		fetch_fail(p->sum, "more than %d messages listed",
		    FETCH_LIST_MAX);
		return -1;
	}
	if (p->nitems == p->cap) {
		p->cap = p->cap > 0 ? p->cap * 2 : 16;
		p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
	}
	it = &p->items[p->nitems++];
	it->uid = f.uid;
	it->size = f.size;
	snprintf(it->id, sizeof(it->id), "%llu.%llu",
	    (unsigned long long)p->uidvalidity, (unsigned long long)f.uid);
	return 0;
}

struct fetch_imap_body {
	struct fetch_msg *m;
	uint64_t uid;
	int got;
};

/* Appends a quoted string's content (the value at off) to out. */
static void
fetch_imap_unquote(const char *s, struct fetch_msg *m)
{
	if (*s != '"')
		return;		/* NIL: an empty message */
	for (s++; *s != '\0' && *s != '"'; s++) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		if (!m->too_big && buf_putc(&m->data, *s) < 0)
			m->too_big = 1;
	}
}

static int
fetch_imap_body_line(struct fetch_imap *p, void *ctx)
{
	struct fetch_imap_body *b = ctx;
	struct fetch_imap_fetch f;
	int r;

	if ((r = fetch_imap_parse_fetch(p, &f)) <= 0)
		return r;
	if (!f.have_body || (f.have_uid && f.uid != b->uid) || b->got)
		return 0;
	b->got = 1;
	if (!f.body_literal) {
		fetch_imap_unquote(buf_cstr(&p->line) + f.body_off, b->m);
		return 1;
	}
	/* Read and dropped when it is too big: the session stays in step
	 * and its deadline bounds the time. */
	if (f.body_len > (uint64_t)var_message_size_limit)
		b->m->too_big = 1;
	if (fetch_imap_literal(p, f.body_len, &b->m->data, &b->m->too_big) < 0 ||
	    fetch_imap_line(p, "a message") < 0 ||
	    fetch_imap_skip(p, "a message") < 0)
		return -1;
	return 1;
}

/* ---- the session --------------------------------------------------- */

static int
fetch_imap_auth_plain(struct fetch_imap *p)
{
	struct fetch_account *a = p->a;
	struct buf cred, b64;
	int r = -1;

	buf_init(&cred, FETCH_CMD_MAX);
	buf_init(&b64, FETCH_CMD_MAX);
	if (buf_putc(&cred, '\0') < 0 || buf_puts(&cred, a->user) < 0 ||
	    buf_putc(&cred, '\0') < 0 || buf_puts(&cred, a->password) < 0 ||
	    base64_encode(cred.data, cred.len, &b64) < 0) {
		fetch_fail(p->sum, "%s", "the user name and password are too "
					 "long for AUTHENTICATE");
		goto out;
	}
	if (p->caps & FETCH_IMAP_CAP_SASL_IR) {
		if (fetch_imap_cmd(p, "AUTHENTICATE PLAIN %s", buf_cstr(&b64)) < 0)
			goto out;
		r = fetch_imap_reply(p, "AUTHENTICATE", NULL, NULL);
	} else {
		if (fetch_imap_cmd(p, "AUTHENTICATE PLAIN") < 0)
			goto out;
		r = fetch_imap_reply(p, "AUTHENTICATE", NULL, NULL);
		if (r == 2) {
			r = fetch_conn_cmd(p->conn, "%s", buf_cstr(&b64)) < 0
			        ? -1
			        : fetch_imap_reply(p, "AUTHENTICATE", NULL, NULL);
		}
	}
	if (r == 2) {
		/* A second challenge PLAIN does not have: cancel. */
		(void)fetch_conn_cmd(p->conn, "*");
		fetch_fail(p->sum, "%s", "AUTHENTICATE PLAIN: an unexpected "
					 "challenge");
		r = -1;
	}
out:
	explicit_bzero(cred.data, cred.len);
	explicit_bzero(b64.data, b64.len);
	buf_free(&cred);
	buf_free(&b64);
	return r;
}

/*
 * AUTHENTICATE LOGIN, for servers that offer no other way in (Dovecot
 * with auth_mechanisms = login says LOGINDISABLED and AUTH=LOGIN): the
 * user name, then the password, each in base64 after its challenge.
 */
static int
fetch_imap_auth_login(struct fetch_imap *p)
{
	const char *values[2] = {p->a->user, p->a->password};
	struct buf b64;
	int r, i;

	if (fetch_imap_cmd(p, "AUTHENTICATE LOGIN") < 0)
		return -1;
	r = fetch_imap_reply(p, "AUTHENTICATE", NULL, NULL);
	buf_init(&b64, FETCH_CMD_MAX);
	for (i = 0; i < 2 && r == 2; i++) {
		buf_reset(&b64);
		if (base64_encode(values[i], strlen(values[i]), &b64) < 0) {
			(void)fetch_conn_cmd(p->conn, "*");
			fetch_fail(p->sum, "%s", "the user name or password is "
						 "too long for AUTHENTICATE");
			r = -1;
			break;
		}
		r = fetch_conn_cmd(p->conn, "%s", buf_cstr(&b64)) < 0
		        ? -1
		        : fetch_imap_reply(p, "AUTHENTICATE", NULL, NULL);
	}
	if (r == 2) {
		(void)fetch_conn_cmd(p->conn, "*");
		fetch_fail(p->sum, "%s", "AUTHENTICATE LOGIN: an unexpected "
					 "challenge");
		r = -1;
	}
	explicit_bzero(b64.data, b64.len);
	buf_free(&b64);
	return r;
}

static int
fetch_imap_login(struct fetch_imap *p)
{
	struct fetch_account *a = p->a;
	struct buf cmd;
	const char *err, *s;
	int r, preauth;

	if (a->implicit_tls && fetch_conn_tls(p->conn, a, &err) < 0) {
		fetch_fail(p->sum, "%s", err);
		return -1;
	}
	if (fetch_imap_line(p, "the greeting") < 0)
		return -1;
	s = buf_cstr(&p->line);
	fetch_imap_common(p, s);
	preauth = str_prefix_ci(s, strlen(s), "* PREAUTH");
	if (!preauth && !str_prefix_ci(s, strlen(s), "* OK")) {
		fetch_fail(p->sum, "greeting: %s", s);
		return -1;
	}
	if (!a->implicit_tls && !a->tls_none) {
		if (preauth) {
			fetch_fail(p->sum, "%s", "the server says PREAUTH before "
						 "TLS; no session without TLS "
						 "(tls=none allows it)");
			return -1;
		}
		if (fetch_imap_cmd(p, "STARTTLS") < 0 ||
		    (r = fetch_imap_simple(p, "STARTTLS", 0, NULL, NULL)) < 0)
			return -1;
		if (r == 0) {
			fetch_fail(p->sum, "the server refuses STARTTLS (%s); "
					   "no login without TLS (tls=none "
					   "allows it)",
			    buf_cstr(&p->line));
			return -1;
		}
		if (fetch_conn_tls(p->conn, a, &err) < 0) {
			fetch_fail(p->sum, "%s", err);
			return -1;
		}
		/* RFC 9051 6.2.1: what was said before TLS is forgotten. */
		p->caps_seen = 0;
	}
	if (preauth)
		return 0;
	if (!p->caps_seen &&
	    (fetch_imap_cmd(p, "CAPABILITY") < 0 ||
	        fetch_imap_simple(p, "CAPABILITY", 1, NULL, NULL) <= 0))
		return -1;
	p->caps_seen = 0;
	if (p->caps & FETCH_IMAP_CAP_AUTH_PLAIN)
		r = fetch_imap_auth_plain(p);
	else if ((p->caps & FETCH_IMAP_CAP_LOGINDISABLED) &&
	         (p->caps & FETCH_IMAP_CAP_AUTH_LOGIN))
		r = fetch_imap_auth_login(p);
	else if (p->caps & FETCH_IMAP_CAP_LOGINDISABLED) {
		fetch_fail(p->sum, "%s", "the server offers neither AUTH=PLAIN, "
					 "AUTH=LOGIN nor LOGIN");
		return -1;
	} else {
		buf_init(&cmd, FETCH_CMD_MAX);
		if (buf_puts(&cmd, "LOGIN ") < 0)
			msg_panic("LOGIN");
		fetch_imap_quote(&cmd, a->user);
		if (buf_putc(&cmd, ' ') < 0)
			msg_panic("LOGIN");
		fetch_imap_quote(&cmd, a->password);
		r = fetch_imap_cmd(p, "%s", buf_cstr(&cmd)) < 0
		        ? -1
		        : fetch_imap_simple(p, "LOGIN", 0, NULL, NULL);
		explicit_bzero(cmd.data, cmd.len);
		buf_free(&cmd);
	}
	if (r == 0)
		fetch_fail(p->sum, "login refused: %s", buf_cstr(&p->line));
	if (r <= 0)
		return -1;
	/* Capabilities may grow at login (UIDPLUS is asked for below). */
	if (!p->caps_seen &&
	    (fetch_imap_cmd(p, "CAPABILITY") < 0 ||
	        fetch_imap_simple(p, "CAPABILITY", 1, NULL, NULL) <= 0))
		return -1;
	return 0;
}

/* Logs a UIDVALIDITY change once: the journal still holds keys of
 * another UIDVALIDITY of this account. */
static void
fetch_imap_check_validity(struct fetch_imap *p)
{
	char prefix[FETCH_IMAP_ID_MAX];
	const char *id;
	size_t pos = 0, plen;
	void *v;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%llu.",
	    (unsigned long long)p->uidvalidity);
	while ((id = hash_iter(p->state->ids, &pos, &v)) != NULL)
		if (strncmp(id, prefix, plen) != 0) {
			msg_warn("account %s: the UIDVALIDITY of %s changed "
				 "(now %llu; the journal has %.*s): every "
				 "message in it is collected as new%s",
			    p->a->name, log_sanitize(p->a->folder, 200),
			    (unsigned long long)p->uidvalidity,
			    (int)strcspn(id, "."), id,
			    p->a->keep ? ", kept ones again" : "");
			return;
		}
}

static int
fetch_imap_select(struct fetch_imap *p)
{
	struct buf cmd;
	int r;

	buf_init(&cmd, FETCH_CMD_MAX);
	if (buf_puts(&cmd, "SELECT ") < 0)
		msg_panic("SELECT");
	fetch_imap_quote(&cmd, p->a->folder);
	p->uidvalidity = 0;
	p->exists = 0;
	r = fetch_imap_cmd(p, "%s", buf_cstr(&cmd)) < 0
	        ? -1
	        : fetch_imap_simple(p, "SELECT", 1, NULL, NULL);
	buf_free(&cmd);
	if (r <= 0)
		return -1;
	if (p->uidvalidity == 0) {
		fetch_fail(p->sum, "%s", "SELECT gave no UIDVALIDITY: the "
					 "messages cannot be told apart safely");
		return -1;
	}
	fetch_imap_check_validity(p);
	p->selected = 1;
	if (p->exists == 0)
		return 0;
	if (fetch_imap_cmd(p, "UID FETCH 1:* (UID RFC822.SIZE)") < 0 ||
	    fetch_imap_simple(p, "UID FETCH", 1, fetch_imap_list_line,
	        NULL) <= 0)
		return -1;
	return 0;
}

/* UID FETCH BODY.PEEK[] into m: 0, or -1 with the session broken. */
static int
fetch_imap_body(struct fetch_imap *p, const struct fetch_imap_item *it,
    struct fetch_msg *m)
{
	struct fetch_imap_body b;
	int r;

	memset(&b, 0, sizeof(b));
	b.m = m;
	b.uid = it->uid;
	fetch_conn_message_begin(p->conn);
	r = fetch_imap_cmd(p, "UID FETCH %llu (BODY.PEEK[])",
	        (unsigned long long)it->uid) < 0
	        ? -1
	        : fetch_imap_simple(p, "UID FETCH BODY.PEEK[]", 1,
	              fetch_imap_body_line, &b);
	fetch_conn_message_end(p->conn);
	if (r <= 0)
		return -1;
	if (!b.got) {
		/* Expunged by another client since the listing. */
		fetch_fail(p->sum, "UID %llu has no content (expunged?)",
		    (unsigned long long)it->uid);
		return -1;
	}
	return 0;
}

/* After the commit: \Deleted and expunged (or \Seen for keep=yes). */
static int
fetch_imap_done_with(struct fetch_imap *p, const struct fetch_imap_item *it,
    int keep)
{
	unsigned long long uid = (unsigned long long)it->uid;

	if (keep) {
		if (fetch_imap_cmd(p, "UID STORE %llu +FLAGS.SILENT (\\Seen)",
		        uid) < 0)
			return -1;
		return fetch_imap_simple(p, "UID STORE", 1, NULL, NULL) > 0
		           ? 0
		           : -1;
	}
	if (fetch_imap_cmd(p, "UID STORE %llu +FLAGS.SILENT (\\Deleted)",
	        uid) < 0 ||
	    fetch_imap_simple(p, "UID STORE", 1, NULL, NULL) <= 0)
		return -1;
	if (!(p->caps & FETCH_IMAP_CAP_UIDPLUS)) {
		p->to_expunge++;
		return 0;
	}
	if (fetch_imap_cmd(p, "UID EXPUNGE %llu", uid) < 0 ||
	    fetch_imap_simple(p, "UID EXPUNGE", 1, NULL, NULL) <= 0)
		return -1;
	p->sum->deleted++;
	return 0;
}

/* True, with the poll failed, when UIDs no longer name what was listed. */
static int
fetch_imap_validity_lost(struct fetch_imap *p)
{
	if (p->validity_changed)
		fetch_fail(p->sum, "%s", "the UIDVALIDITY changed during the "
					 "session; retrying at the next poll");
	return p->validity_changed;
}

static int
fetch_imap_collect(struct fetch_imap *p, struct hash *listed)
{
	const struct fetch_entry *e;
	struct fetch_imap_item *it;
	struct fetch_msg m;
	enum fetch_inject_result res;
	int taken = 0;
	size_t i;

	for (i = 0; i < p->nitems; i++)
		hash_put(listed, p->items[i].id, p->items[i].id);
	p->sum->listed = (int)p->nitems;
	for (i = 0; i < p->nitems; i++) {
		it = &p->items[i];
		if (fetch_imap_validity_lost(p))
			return 0;
		e = fetch_state_get(p->state, it->id);
		if (e != NULL && e->mark == FETCH_MARK_QUEUED) {
			p->sum->skipped++;
			/* Queued before, but not deleted (a broken session):
			 * kept messages are \Seen already. */
			if (!p->a->keep && fetch_imap_done_with(p, it, 0) < 0)
				return -1;
			continue;
		}
		if (e != NULL || taken >= var_fetch_max_messages) {
			p->sum->left++;
			continue;
		}
		if (it->size > (uint64_t)var_message_size_limit) {
			msg_warn("account %s: UID %llu: %llu bytes, over "
				 "message_size_limit: left on the server",
			    p->a->name, (unsigned long long)it->uid,
			    (unsigned long long)it->size);
			p->sum->refused++;
			continue;
		}
		taken++;
		memset(&m, 0, sizeof(m));
		m.id = it->id;
		buf_init(&m.data, (size_t)var_message_size_limit);
		if (fetch_imap_body(p, it, &m) < 0) {
			buf_free(&m.data);
			return -1;
		}
		if (fetch_imap_validity_lost(p)) {
			buf_free(&m.data);
			return 0;
		}
		res = fetch_inject(p->a, p->state, p->conn,
		    p->conn->tls ? "IMAPS" : "IMAP", &m);
		buf_free(&m.data);
		if (res == FETCH_INJECT_RETRY) {
			fetch_fail(p->sum, "%s", "the queue did not take a "
						 "message; retrying at the "
						 "next poll");
			return 0;
		}
		if (res == FETCH_INJECT_REFUSED) {
			p->sum->refused++;
			continue;
		}
		p->sum->queued++;
		if (fetch_imap_done_with(p, it, p->a->keep) < 0)
			return -1;
	}
	return 0;
}

void
fetch_imap(struct fetch_account *a, struct fetch_state *state,
    struct fetch_conn *conn, struct fetch_summary *sum)
{
	struct fetch_imap p;
	struct hash *listed = hash_create();
	int ok = 0;

	memset(&p, 0, sizeof(p));
	p.conn = conn;
	p.a = a;
	p.sum = sum;
	p.state = state;
	buf_init(&p.line, FETCH_IMAP_LINE_MAX + 1);
	if (fetch_imap_login(&p) < 0 || fetch_imap_select(&p) < 0)
		goto out;
	/* The listing is complete: what it lacks is gone from the server
	 * and may leave the journal, whatever happens next. */
	ok = 1;
	if (fetch_imap_collect(&p, listed) < 0 || sum->error[0] != '\0')
		goto out;
	if (p.to_expunge > 0) {
		if (fetch_imap_cmd(&p, "EXPUNGE") < 0 ||
		    fetch_imap_simple(&p, "EXPUNGE", 1, NULL, NULL) <= 0)
			goto out;
		sum->deleted += (int)p.to_expunge;
	}
	if (fetch_imap_cmd(&p, "LOGOUT") == 0)
		(void)fetch_imap_simple(&p, "LOGOUT", 0, NULL, NULL);
out:
	if (ok)
		fetch_state_prune(p.state, listed);
	fetch_conn_close(conn);
	free(p.items);
	buf_free(&p.line);
	hash_free(&listed, NULL);
}
