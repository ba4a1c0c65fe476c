/* SPDX-License-Identifier: MIT */
/*
 * The POP3 client (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 8314
 * implicit TLS on 995): logs in with USER/PASS over TLS (plaintext only
 * with tls=none), or with AUTH LOGIN (RFC 5034) when CAPA offers that
 * SASL mechanism and not PLAIN (which USER/PASS stands for: Dovecot
 * with auth_mechanisms = login refuses USER/PASS), lists UIDL and LIST,
 * retrieves each message not yet queued (RETR), hands it to
 * fetch_inject and, once it is committed and recorded, marks it DELE
 * (unless keep=yes). The deletions take effect only at QUIT (the UPDATE
 * state), so a session that breaks deletes nothing, and the journal
 * skips what was queued at the next poll.
 * Every read waits at most $fetch_timeout (and the session's and the
 * message's deadlines, fetch_net.c); a poll takes at most
 * $fetch_max_messages messages (the rest waits for the next one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/str.h"
#include "mail/cleanup.h"
#include "mail/params.h"
#include "fetch.h"

struct fetch_pop3_item {
	unsigned long num;
	char *uidl;
	uint64_t size;
};

struct fetch_pop3 {
	struct fetch_account *a;
	struct fetch_conn *conn;
	struct fetch_state *state;
	struct buf line;
	struct fetch_pop3_item *items;
	size_t nitems, cap;
	struct fetch_summary *sum;
};

/* Reads a status line: 1 for +OK, 0 for -ERR, -1 for a broken session
 * (recorded in the summary). */
static int
fetch_pop3_status(struct fetch_pop3 *p, const char *what)
{
	enum stream_result r = fetch_conn_line(p->conn, &p->line);
	const char *s;

	if (r != STREAM_OK) {
		fetch_fail(p->sum, "%s after %s",
		    r == STREAM_TOOLONG ? "an over-long reply"
		                        : fetch_conn_why(p->conn,
		                              "connection lost"),
		    what);
		return -1;
	}
	s = buf_cstr(&p->line);
	if (strncmp(s, "+OK", 3) == 0)
		return 1;
	if (strncmp(s, "-ERR", 4) == 0)
		return 0;
	fetch_fail(p->sum, "not a POP3 reply: %s", s);
	return -1;
}

/* 1 and the next line of a multi-line reply (dot-unstuffed) in
 * p->line, 0 at its end, -1 on error. */
static int
fetch_pop3_multiline(struct fetch_pop3 *p)
{
	enum stream_result r = fetch_conn_line(p->conn, &p->line);

	if (r != STREAM_OK) {
		fetch_fail(p->sum, "%s", "a listing broke off");
		return -1;
	}
	if (p->line.len == 1 && p->line.data[0] == '.')
		return 0;
	if (p->line.len > 0 && p->line.data[0] == '.')
		buf_consume(&p->line, 1);
	return 1;
}

static int
fetch_pop3_item_cmp(const void *a, const void *b)
{
	unsigned long x = ((const struct fetch_pop3_item *)a)->num;
	unsigned long y = ((const struct fetch_pop3_item *)b)->num;

	return x < y ? -1 : x > y;
}

/* The item of message num (the items are sorted by number: a listing
 * of FETCH_LIST_MAX lines in any order costs no quadratic search). */
static struct fetch_pop3_item *
fetch_pop3_item(struct fetch_pop3 *p, unsigned long num)
{
	struct fetch_pop3_item key;

	if (p->nitems == 0)
		return NULL;
	key.num = num;
	return bsearch(&key, p->items, p->nitems, sizeof(*p->items),
	    fetch_pop3_item_cmp);
}

static int
fetch_pop3_uidl(struct fetch_pop3 *p)
{
	char *f[3] = {NULL, NULL, NULL};
	struct hash *seen;
	uint64_t num;
	int r;

	if (fetch_conn_cmd(p->conn, "UIDL") < 0)
		return -1;
	if ((r = fetch_pop3_status(p, "UIDL")) <= 0) {
		if (r == 0)
			fetch_fail(p->sum, "the server has no UIDL (%s): its "
					   "messages cannot be told apart safely",
			    buf_cstr(&p->line));
		return -1;
	}
	/* A UIDL the journal cannot store would be collected again after
	 * a restart; one listed twice would have the second message
	 * deleted as if it were the first, queued: both end the session. */
	seen = hash_create();
	while ((r = fetch_pop3_multiline(p)) > 0) {
		char *s = (char *)buf_cstr(&p->line);

		f[0] = NULL;
		if (str_split(s, " ", f, 3) != 2 ||
		    str_to_u64(f[0], 0xffffffffUL, &num) < 0 ||
		    !fetch_id_valid(f[1]) || p->nitems >= FETCH_LIST_MAX) {
			fetch_fail(p->sum, "bad UIDL line: %s",
			    f[0] != NULL ? f[0] : "");
			r = -1;
			break;
		}
		if (hash_put(seen, f[1], p) != NULL) {
			fetch_fail(p->sum, "UIDL %s is listed twice", f[1]);
			r = -1;
			break;
		}
		if (p->nitems == p->cap) {
		p->cap = p->cap > 0 ? p->cap * 2 : 16;
		p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
	}
		p->items[p->nitems].num = (unsigned long)num;
		p->items[p->nitems].uidl = xstrdup(f[1]);
		p->items[p->nitems].size = 0;
		p->nitems++;
	}
	hash_free(&seen, NULL);
	if (r == 0 && p->nitems > 1)
		qsort(p->items, p->nitems, sizeof(*p->items), fetch_pop3_item_cmp);
	return r;
}

static int
fetch_pop3_list(struct fetch_pop3 *p)
{
	struct fetch_pop3_item *it;
	char *f[3] = {NULL, NULL, NULL};
	uint64_t num, size;
	int r;

	if (fetch_conn_cmd(p->conn, "LIST") < 0)
		return -1;
	if ((r = fetch_pop3_status(p, "LIST")) <= 0) {
		if (r == 0)
			fetch_fail(p->sum, "LIST refused: %s", buf_cstr(&p->line));
		return -1;
	}
	while ((r = fetch_pop3_multiline(p)) > 0) {
		char *s = (char *)buf_cstr(&p->line);

		f[0] = NULL;
		if (str_split(s, " ", f, 3) < 2 ||
		    str_to_u64(f[0], 0xffffffffUL, &num) < 0 ||
		    str_to_u64(f[1], UINT64_MAX >> 1, &size) < 0) {
			fetch_fail(p->sum, "bad LIST line: %s",
			    f[0] != NULL ? f[0] : "");
			return -1;
		}
		if ((it = fetch_pop3_item(p, (unsigned long)num)) != NULL)
			it->size = size;
	}
	return r;
}

static void
fetch_pop3_emit(void *ctx, const char *data, size_t len)
{
	struct fetch_msg *m = ctx;

	if (!m->too_big && buf_append(&m->data, data, len) < 0)
		m->too_big = 1;
}

static int
fetch_pop3_retr_body(struct fetch_pop3 *p, const struct fetch_pop3_item *it,
    struct fetch_msg *m)
{
	struct cleanup_data parse;
	const char *data;
	size_t len, used;
	int r;

	if (fetch_conn_cmd(p->conn, "RETR %lu", it->num) < 0)
		return -1;
	if ((r = fetch_pop3_status(p, "RETR")) <= 0) {
		if (r == 0)
			fetch_fail(p->sum, "RETR refused: %s", buf_cstr(&p->line));
		return -1;
	}
	/* The content is dot-stuffed and ends in CRLF.CRLF, as SMTP's
	 * DATA: the same parser unstuffs it. */
	cleanup_data_init(&parse);
	while (parse.state != CLEANUP_DATA_END) {
		if (fetch_conn_wait(p->conn) != STREAM_OK) {
			fetch_fail(p->sum, "a message broke off: %s",
			    fetch_conn_why(p->conn, "connection lost"));
			return -1;
		}
		data = stream_peek(&p->conn->st, &len);
		used = cleanup_data_parse(&parse, data, len, fetch_pop3_emit, m);
		stream_consume(&p->conn->st, used);
	}
	return 0;
}

/* RETR into m within fetch_message_timeout: 0, or -1 with the session
 * broken. */
static int
fetch_pop3_retr(struct fetch_pop3 *p, const struct fetch_pop3_item *it,
    struct fetch_msg *m)
{
	int r;

	fetch_conn_message_begin(p->conn);
	r = fetch_pop3_retr_body(p, it, m);
	fetch_conn_message_end(p->conn);
	return r;
}

/* 1 if CAPA's SASL line names LOGIN and not PLAIN, 0 if not (or the
 * server has no CAPA), -1 on a broken session. */
static int
fetch_pop3_wants_auth_login(struct fetch_pop3 *p)
{
	int r, login = 0, plain = 0;
	const char *w, *end, *s;

	if (fetch_conn_cmd(p->conn, "CAPA") < 0 ||
	    (r = fetch_pop3_status(p, "CAPA")) < 0)
		return -1;
	if (r == 0)
		return 0;
	while ((r = fetch_pop3_multiline(p)) > 0) {
		s = buf_cstr(&p->line);
		if (strncasecmp(s, "SASL ", 5) != 0)
			continue;
		for (w = s + 5; *w != '\0'; w = end) {
			while (*w == ' ')
				w++;
			for (end = w; *end != '\0' && *end != ' '; end++)
				;
			login |= end - w == 5 && strncasecmp(w, "LOGIN", 5) == 0;
			plain |= end - w == 5 && strncasecmp(w, "PLAIN", 5) == 0;
		}
	}
	return r < 0 ? -1 : login && !plain;
}

/* AUTH LOGIN: the user name, then the password, each base64 after its
 * "+" challenge. 1 logged in, 0 refused, -1 broken. */
static int
fetch_pop3_auth_login(struct fetch_pop3 *p)
{
	const char *values[2] = {p->a->user, p->a->password};
	struct buf b64;
	int r = 1, i;

	if (fetch_conn_cmd(p->conn, "AUTH LOGIN") < 0)
		return -1;
	buf_init(&b64, FETCH_CMD_MAX);
	for (i = 0; i < 3; i++) {
		if (fetch_conn_line(p->conn, &p->line) != STREAM_OK) {
			fetch_fail(p->sum, "%s", "connection lost after AUTH");
			r = -1;
			break;
		}
		if (p->line.len < 1 || p->line.data[0] != '+' ||
		    (p->line.len >= 3 && strncmp(p->line.data, "+OK", 3) == 0)) {
			r = strncmp(buf_cstr(&p->line), "+OK", 3) == 0 ? 1 : 0;
			break;
		}
		if (i == 2) { /* a third challenge: LOGIN has two */
			(void)fetch_conn_cmd(p->conn, "*");
			fetch_fail(p->sum, "%s", "AUTH LOGIN: an unexpected "
						 "challenge");
			r = -1;
			break;
		}
		buf_reset(&b64);
		if (base64_encode(values[i], strlen(values[i]), &b64) < 0 ||
		    fetch_conn_cmd(p->conn, "%s", buf_cstr(&b64)) < 0) {
			fetch_fail(p->sum, "%s", "AUTH LOGIN: the user name or "
						 "password could not be sent");
			r = -1;
			break;
		}
	}
	explicit_bzero(b64.data, b64.len);
	buf_free(&b64);
	return r;
}

static int
fetch_pop3_login(struct fetch_pop3 *p)
{
	struct fetch_account *a = p->a;
	const char *err;
	int r;

	if (a->implicit_tls && fetch_conn_tls(p->conn, a, &err) < 0) {
		fetch_fail(p->sum, "%s", err);
		return -1;
	}
	if (fetch_pop3_status(p, "the greeting") <= 0) {
		fetch_fail(p->sum, "greeting: %s", buf_cstr(&p->line));
		return -1;
	}
	if (!a->implicit_tls && !a->tls_none) {
		if (fetch_conn_cmd(p->conn, "STLS") < 0 ||
		    (r = fetch_pop3_status(p, "STLS")) < 0)
			return -1;
		if (r == 0) {
			fetch_fail(p->sum, "the server refuses STLS (%s); no "
					   "login without TLS (tls=none allows "
					   "it)",
			    buf_cstr(&p->line));
			return -1;
		}
		if (fetch_conn_tls(p->conn, a, &err) < 0) {
			fetch_fail(p->sum, "%s", err);
			return -1;
		}
	}
	if ((r = fetch_pop3_wants_auth_login(p)) < 0)
		return -1;
	if (r > 0) {
		if ((r = fetch_pop3_auth_login(p)) < 0)
			return -1;
	} else if (fetch_conn_cmd(p->conn, "USER %s", a->user) < 0 ||
	           (r = fetch_pop3_status(p, "USER")) < 0) {
		return -1;
	} else if (r > 0) {
		if (fetch_conn_cmd(p->conn, "PASS %s", a->password) < 0 ||
		    (r = fetch_pop3_status(p, "PASS")) < 0)
			return -1;
	}
	if (r == 0) {
		fetch_fail(p->sum, "login refused: %s", buf_cstr(&p->line));
		return -1;
	}
	return 0;
}

/* Collects what the listing offers; 0, or -1 when the session broke
 * (nothing it marked is deleted then). */
static int
fetch_pop3_collect(struct fetch_pop3 *p, struct hash *listed)
{
	const struct fetch_entry *e;
	struct fetch_pop3_item *it;
	struct fetch_msg m;
	enum fetch_inject_result res;
	int taken = 0, dele, r;
	size_t i;

	for (i = 0; i < p->nitems; i++)
		hash_put(listed, p->items[i].uidl, p->items[i].uidl);
	p->sum->listed = (int)p->nitems;
	for (i = 0; i < p->nitems; i++) {
		it = &p->items[i];
		dele = 0;
		e = fetch_state_get(p->state, it->uidl);
		if (e != NULL && e->mark == FETCH_MARK_QUEUED) {
			p->sum->skipped++;
			dele = !p->a->keep;
		} else if (e != NULL) {
			/* A record that failed: wait for a restart to settle
			 * it rather than risk a duplicate. */
			p->sum->left++;
		} else if (taken >= var_fetch_max_messages) {
			p->sum->left++;
		} else if (it->size > (uint64_t)var_message_size_limit) {
			msg_warn("account %s: %s: %llu bytes, over "
				 "message_size_limit: left on the server",
			    p->a->name, log_sanitize(it->uidl, FETCH_UIDL_MAX),
			    (unsigned long long)it->size);
			p->sum->refused++;
		} else {
			taken++;
			memset(&m, 0, sizeof(m));
			m.id = it->uidl;
			buf_init(&m.data, (size_t)var_message_size_limit);
			if (fetch_pop3_retr(p, it, &m) < 0) {
				buf_free(&m.data);
				return -1;
			}
			res = fetch_inject(p->a, p->state, p->conn,
			    p->conn->tls ? "POP3S" : "POP3", &m);
			buf_free(&m.data);
			if (res == FETCH_INJECT_RETRY) {
				fetch_fail(p->sum, "%s",
				    "the queue did not take a message; "
				    "retrying at the next poll");
				return 0;
			}
			if (res == FETCH_INJECT_REFUSED)
				p->sum->refused++;
			else {
				p->sum->queued++;
				dele = !p->a->keep;
			}
		}
		if (dele) {
			if (fetch_conn_cmd(p->conn, "DELE %lu", it->num) < 0 ||
			    (r = fetch_pop3_status(p, "DELE")) < 0)
				return -1;
			if (r > 0)
				p->sum->deleted++;
		}
	}
	return 0;
}

void
fetch_pop3(struct fetch_account *a, struct fetch_state *state,
    struct fetch_conn *conn, struct fetch_summary *sum)
{
	struct fetch_pop3 p;
	struct hash *listed = hash_create();
	size_t i;
	int ok = 0;

	memset(&p, 0, sizeof(p));
	p.conn = conn;
	p.a = a;
	p.sum = sum;
	p.state = state;
	buf_init(&p.line, FETCH_LINE_MAX + 1);
	if (fetch_pop3_login(&p) < 0 || fetch_pop3_uidl(&p) < 0 ||
	    fetch_pop3_list(&p) < 0 || fetch_pop3_collect(&p, listed) < 0)
		goto out;
	/* The UPDATE state: only a QUIT answered +OK applied the DELEs. */
	if (fetch_conn_cmd(p.conn, "QUIT") == 0 &&
	    fetch_pop3_status(&p, "QUIT") > 0)
		ok = 1;
	else
		sum->deleted = 0;
out:
	if (ok)
		fetch_state_prune(state, listed);
	else if (sum->deleted > 0)
		sum->deleted = 0;
	fetch_conn_close(conn);
	for (i = 0; i < p.nitems; i++)
		free(p.items[i].uidl);
	free(p.items);
	buf_free(&p.line);
	hash_free(&listed, NULL);
}
