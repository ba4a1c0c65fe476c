/* SPDX-License-Identifier: MIT */
/*
 * cleanup, run in the receiving process itself (smtpd; pickup will share
 * it) so that a message costs no extra process hop: it writes the queue file for one transaction
 * (envelope, a Received: header per RFC 5321 4.4, then the content), with
 * the DATA body parsed incrementally as it arrives: dot-stuffing removed
 * (RFC 5321 4.5.2), the end only at CRLF.CRLF whatever comes before
 * (the SMTP smuggling defence), and any bare CR or LF in text content
 * stored as CRLF, kept, or refused, as the receiver's policy says
 * (Postfix's smtpd_forbid_bare_newline). The client's headers are taken
 * one logical header at a time (RFC 5322 2.2) for the header section
 * limit, the hop count (RFC 5321 6.3) and the header-check hook; 8-bit
 * bytes pass untouched everywhere. Long lines are stored as they
 * came; only the total size is limited. It also sends qmgr its "new
 * message" notices without ever blocking the event loop.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/attr_client.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/virtual_alias.h"
#include "mail/cleanup.h"

/* "20211122050249" for Message-ID. */
#define CLEANUP_STAMP_SIZE     32
/* Received: header text before the client's strings are added. */
#define CLEANUP_HEADER_MAX     (4 * QFILE_RECORD_MAX)
/* Client strings and header text in one log line (Postfix: 200). */
#define CLEANUP_LOG_TEXT_MAX   200
/* Bytes of a sender's full name kept in a From: cleanup adds. */
#define CLEANUP_FULLNAME_MAX   256
/* A header check's text in the reply (RFC 5321 4.5.3.1.5: 512 a line). */
#define CLEANUP_REPLY_TEXT_MAX 400
#define CLEANUP_REJECT_DEFAULT "message content rejected"
#define NOTIFY_SERVICE         "qmgr"
#define NOTIFY_MS_PER_SEC      1000

void
cleanup_data_init(struct cleanup_data *p)
{
	p->state = CLEANUP_DATA_BOL;
	p->bare = 0;
}

size_t
cleanup_data_parse(struct cleanup_data *p, const char *in, size_t len,
    cleanup_emit_fn *emit, void *ctx)
{
	size_t i = 0, run = 0; /* in[run..i) is content not yet emitted */

#define EMIT_RUN()                                    \
	do {                                          \
		if (i > run)                          \
			emit(ctx, in + run, i - run); \
	} while (0)

	while (i < len && p->state != CLEANUP_DATA_END) {
		switch (p->state) {
		case CLEANUP_DATA_BOL:
			if (in[i] == '.') {
				EMIT_RUN();
				run = ++i;
				p->state = CLEANUP_DATA_DOT;
			} else {
				p->state = CLEANUP_DATA_TEXT;
			}
			break;
		case CLEANUP_DATA_TEXT:
			while (i < len && in[i] != '\r' && in[i] != '\n')
				i++;
			if (i == len)
				break;
			if (in[i] == '\n') {
				p->bare = 1;
				i++;
			} else if (i + 1 == len) {
				/* Whether this CR ends the line shows later. */
				EMIT_RUN();
				run = ++i;
				p->state = CLEANUP_DATA_CR;
			} else if (in[i + 1] == '\n') {
				i += 2;
				p->state = CLEANUP_DATA_BOL;
			} else {
				p->bare = 1;
				i++;
			}
			break;
		case CLEANUP_DATA_CR:
			if (in[i] == '\n') {
				emit(ctx, "\r\n", 2);
				run = ++i;
				p->state = CLEANUP_DATA_BOL;
			} else {
				emit(ctx, "\r", 1);
				p->bare = 1;
				p->state = CLEANUP_DATA_TEXT;
			}
			break;
		case CLEANUP_DATA_DOT:
			if (in[i] == '\r') {
				run = ++i;
				p->state = CLEANUP_DATA_DOT_CR;
			} else {
				/* The dot was stuffing: drop it, keep the rest. */
				p->state = CLEANUP_DATA_TEXT;
			}
			break;
		case CLEANUP_DATA_DOT_CR:
			if (in[i] == '\n') {
				run = ++i;
				p->state = CLEANUP_DATA_END;
			} else {
				emit(ctx, "\r", 1);
				p->bare = 1;
				p->state = CLEANUP_DATA_TEXT;
			}
			break;
		case CLEANUP_DATA_END:
			break;
		}
	}
	EMIT_RUN();
#undef EMIT_RUN
	return i;
}

/* Stores content bytes, counting them against the size limit. */
static void
cleanup_store(struct cleanup *c, const char *data, size_t len)
{
	if (len == 0 || c->status != 0 || c->discard)
		return;
	c->size += len;
	if (c->size > c->size_limit) {
		c->status |= CLEANUP_STAT_SIZE;
		return;
	}
	qfile_content_write(&c->w, data, len);
}

void
cleanup_date(char *out, size_t n, time_t when)
{
	static const char days[][4] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	long off;
	char sign = '+';

	localtime_r(&when, &tm);
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	snprintf(out, n, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
	    off % 60);
}

/* Message-ID:, Date: (RFC 6409 8) and, for local submissions, From: for
 * a submission that lacks them. */
static void
cleanup_missing_headers(struct cleanup *c)
{
	char date[CLEANUP_DATE_SIZE], stamp[CLEANUP_STAMP_SIZE];
	time_t now = time(NULL);
	struct tm tm;
	struct buf hdr;

	buf_init(&hdr, CLEANUP_HEADER_MAX);
	if (!c->hdr.have_from && c->add_from != NULL &&
	    buf_printf(&hdr, "From: %s\r\n", c->add_from) < 0)
		msg_panic("cleanup: From over %d bytes", CLEANUP_HEADER_MAX);
	if (!c->hdr.have_msgid) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		if (buf_printf(&hdr, "Message-ID: <%s.%s@%s>\r\n", stamp,
		        c->w.id, var_myhostname) < 0)
			msg_panic("cleanup: Message-ID over %d bytes",
			    CLEANUP_HEADER_MAX);
		msg_info("%s: message-id=<%s.%s@%s>", c->w.id, stamp, c->w.id,
		    var_myhostname);
	}
	if (!c->hdr.have_date) {
		cleanup_date(date, sizeof(date), now);
		if (buf_printf(&hdr, "Date: %s\r\n", date) < 0)
			msg_panic(
			    "cleanup: Date over %d bytes", CLEANUP_HEADER_MAX);
	}
	cleanup_store(c, hdr.data, hdr.len);
	buf_free(&hdr);
}

/* The headers are over: add what is missing, then the line in hand
 * (the start of the body). */
static void
cleanup_headers_end(struct cleanup *c)
{
	struct cleanup_headers *h = &c->hdr;

	h->done = 1;
	if (c->add_missing_headers)
		cleanup_missing_headers(c);
	cleanup_store(c, h->buf.data, h->buf.len);
	buf_free(&h->buf);
}

/* 1 if the header in h->buf has the field name (any case). */
static int
cleanup_header_is(const struct cleanup_headers *h, const char *name)
{
	size_t n = strlen(name);

	return h->buf.len > n && h->buf.data[n] == ':' &&
	       str_prefix_ci(h->buf.data, n, name);
}

/* Logs a header check's action as Postfix does: "ID: reject: header
 * Subject: cheap pills from host[addr]; from=<s> to=<r> proto=P helo=<h>:
 * text". */
static void
cleanup_header_log(struct cleanup *c, const char *action, const char *header,
    size_t len, const char *text)
{
	msg_info("%s: %s: header %s%s%s%s", c->w.id, action,
	    log_sanitize_n(header, len, CLEANUP_LOG_TEXT_MAX), c->log_context,
	    text != NULL ? ": " : "",
	    text != NULL ? log_sanitize(text, CLEANUP_LOG_TEXT_MAX) : "");
}

/*
 * Runs the header check on the header in h->buf; returns 0 when the
 * header is to be deleted. The first REJECT or DISCARD decides the
 * message; nothing after it is checked (or stored).
 */
static int
cleanup_header_check(struct cleanup *c)
{
	struct cleanup_headers *h = &c->hdr;
	struct cleanup_header_action act = {CLEANUP_HEADER_DUNNO, NULL};
	size_t len = h->buf.len;
	const char *text;
	char end;

	if (c->header_check == NULL)
		return 1;
	/* The hook sees the header without its last line end. */
	if (len > 0 && h->buf.data[len - 1] == '\n')
		len--;
	if (len > 0 && h->buf.data[len - 1] == '\r')
		len--;
	end = h->buf.data[len];
	h->buf.data[len] = '\0';
	c->header_check(c->header_check_ctx, h->buf.data, len, &act);
	h->buf.data[len] = end;
	switch (act.verdict) {
	case CLEANUP_HEADER_DUNNO:
		break;
	case CLEANUP_HEADER_IGNORE:
		return 0;
	case CLEANUP_HEADER_WARN:
		cleanup_header_log(c, "warning", h->buf.data, len, act.text);
		break;
	case CLEANUP_HEADER_REJECT:
		text = act.text != NULL && act.text[0] != '\0'
		           ? act.text
		           : CLEANUP_REJECT_DEFAULT;
		c->status |= CLEANUP_STAT_REJECT;
		c->reject_text =
		    xasprintf("550 5.7.1 %.*s", CLEANUP_REPLY_TEXT_MAX, text);
		cleanup_header_log(
		    c, "reject", h->buf.data, len, c->reject_text);
		return 0;
	case CLEANUP_HEADER_HOLD:
		c->hold = 1;
		cleanup_header_log(c, "hold", h->buf.data, len, act.text);
		break;
	case CLEANUP_HEADER_DISCARD:
		c->discard = 1;
		cleanup_header_log(c, "discard", h->buf.data, len, act.text);
		return 0;
	default:
		msg_panic("cleanup: header check verdict %d", act.verdict);
	}
	return 1;
}

/*
 * One complete logical header is in h->buf: count it, check it, store
 * it. Received: headers are counted before the check, so that deleting
 * them cannot hide a loop.
 */
static void
cleanup_header_done(struct cleanup *c)
{
	struct cleanup_headers *h = &c->hdr;

	if (cleanup_header_is(h, "received") &&
	    ++h->received > var_hopcount_limit)
		c->status |= CLEANUP_STAT_HOPS;
	if (c->status != 0 || !cleanup_header_check(c)) {
		buf_reset(&h->buf);
		return;
	}
	if (cleanup_header_is(h, "message-id"))
		h->have_msgid = 1;
	else if (cleanup_header_is(h, "date"))
		h->have_date = 1;
	else if (cleanup_header_is(h, "from"))
		h->have_from = 1;
	cleanup_store(c, h->buf.data, h->buf.len);
	buf_reset(&h->buf);
}

/* Adds header bytes to h->buf; 0 once the section is over its limit. */
static int
cleanup_header_take(struct cleanup *c, const char *data, size_t len)
{
	struct cleanup_headers *h = &c->hdr;

	h->section += len;
	if (h->section > (uint64_t)var_header_size_limit) {
		/* The rest is read to its end but not stored. */
		c->status |= CLEANUP_STAT_HEADER;
		buf_free(&h->buf);
		return 0;
	}
	if (buf_append(&h->buf, data, len) < 0)
		msg_panic("cleanup: header buffer under header_size_limit");
	return 1;
}

/* RFC 5322 2.2: a field name is printable US-ASCII except ':'. */
static int
cleanup_ftext(unsigned char b)
{
	return b > ' ' && b < 0x7f && b != ':';
}

/*
 * Content on its way to the file. The client's headers are collected one
 * logical header at a time in h->buf (a header is complete when the next
 * line does not start with white space), so that each is checked whole;
 * the body streams through. A line that is not "name:" ends the headers
 * and starts the body, so that Message-ID: and Date: go in before the
 * first body line even when a message has no empty line after its
 * headers. Line ends are LF (after CR, if any), so this also works for
 * content kept with bare LFs or in BINARYMIME.
 */
static void
cleanup_content(struct cleanup *c, const char *data, size_t len)
{
	struct cleanup_headers *h = &c->hdr;
	const char *lf;
	size_t i = 0, n;

	if (h->done) {
		cleanup_store(c, data, len);
		return;
	}
	while (i < len && c->status == 0 && !c->discard) {
		switch (h->state) {
		case CLEANUP_HEADER_BOL:
			if (data[i] == ' ' || data[i] == '\t') {
				h->state = CLEANUP_HEADER_VALUE;
				break;
			}
			cleanup_header_done(c);
			h->state = CLEANUP_HEADER_NAME;
			break;
		case CLEANUP_HEADER_NAME:
			for (n = i;
			     n < len && cleanup_ftext((unsigned char)data[n]);
			     n++)
				;
			if (!cleanup_header_take(c, data + i, n - i))
				return;
			i = n;
			if (i == len)
				break;
			if (data[i] != ':' || h->buf.len == 0) {
				/* Not a field: the body starts with this line. */
				cleanup_headers_end(c);
				cleanup_store(c, data + i, len - i);
				return;
			}
			if (!cleanup_header_take(c, data + i, 1))
				return;
			i++;
			h->state = CLEANUP_HEADER_VALUE;
			break;
		case CLEANUP_HEADER_VALUE:
			lf = memchr(data + i, '\n', len - i);
			n = lf != NULL ? (size_t)(lf - data) + 1 : len;
			if (!cleanup_header_take(c, data + i, n - i))
				return;
			i = n;
			if (lf != NULL)
				h->state = CLEANUP_HEADER_BOL;
			break;
		}
	}
}

/* The content ended inside the headers: the last one is complete. */
static void
cleanup_headers_finish(struct cleanup *c)
{
	struct cleanup_headers *h = &c->hdr;

	if (h->state != CLEANUP_HEADER_NAME)
		cleanup_header_done(c);
	if (c->status == 0)
		cleanup_headers_end(c);
}

/*
 * A bare CR or LF: logged once a message, refused or stored. Not once the
 * message is refused or discarded (the content before it, in the same
 * read, may just have decided that): the outcome must not depend on how
 * the bytes were split.
 */
static void
cleanup_bare(struct cleanup *c, const char *what, const char *as_is)
{
	static const char *const done[] = {
	    [CLEANUP_BARE_NORMALIZE] = "normalized",
	    [CLEANUP_BARE_REJECT] = "rejected",
	    [CLEANUP_BARE_KEEP] = "kept",
	};

	if (c->status != 0 || c->discard)
		return;

	if (!c->bare_seen) {
		c->bare_seen = 1;
		msg_info("%s: bare <%s> received from %s, %s", c->w.id, what,
		    c->client, done[c->bare_policy]);
	}
	if (c->bare_policy == CLEANUP_BARE_REJECT)
		c->status |= CLEANUP_STAT_BARE;
	else if (c->bare_policy == CLEANUP_BARE_KEEP)
		cleanup_content(c, as_is, strlen(as_is));
	else
		cleanup_content(c, "\r\n", 2);
}

/*
 * Text content (unstuffed DATA, or BDAT without BINARYMIME): CRLF pairs
 * pass in runs, a bare CR or LF goes to cleanup_bare. A CR at the end of
 * the input waits for the next byte.
 */
static void
cleanup_text(struct cleanup *c, const char *data, size_t len)
{
	size_t i = 0, run = 0; /* data[run..i) is to be passed on */

	while (i < len && c->status == 0) {
		if (c->cr) {
			c->cr = 0;
			if (data[i] == '\n') {
				cleanup_content(c, "\r\n", 2);
				run = ++i;
			} else {
				cleanup_bare(c, "CR", "\r");
			}
			continue;
		}
		if (data[i] == '\r') {
			if (i + 1 < len && data[i + 1] == '\n') {
				i += 2;
				continue;
			}
			cleanup_content(c, data + run, i - run);
			if (i + 1 == len)
				c->cr = 1;
			else
				cleanup_bare(c, "CR", "\r");
			run = ++i;
		} else if (data[i] == '\n') {
			cleanup_content(c, data + run, i - run);
			cleanup_bare(c, "LF", "\n");
			run = ++i;
		} else {
			i++;
		}
	}
	if (c->status == 0)
		cleanup_content(c, data + run, i - run);
}

/* DATA content from the parser. */
static void
cleanup_emit(void *ctx, const char *data, size_t len)
{
	struct cleanup *c = ctx;

	/* A refused or discarded message is read to its end but not
	 * stored. */
	if (c->status != 0 || c->discard)
		return;
	cleanup_text(c, data, len);
}

/* Client text that goes into a header: no control or 8-bit bytes. */
static char *
cleanup_header_text(const char *s)
{
	char *out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return out;
}

/*
 * RFC 5321 4.4 trace header, with the TLS session and the SASL login in
 * comments as Postfix writes them; "for" only when it names the one
 * recipient. It goes straight to the file: it is not the client's header.
 */
static void
cleanup_received(
    struct cleanup *c, const struct cleanup_envelope *env, const char *only)
{
	char date[CLEANUP_DATE_SIZE];
	char *helo = cleanup_header_text(env->helo != NULL ? env->helo : "");
	char *name = cleanup_header_text(
	    env->client_name != NULL ? env->client_name : "");
	char *rcpt = only != NULL ? cleanup_header_text(only) : NULL;
	char *user =
	    env->auth_user != NULL ? cleanup_header_text(env->auth_user) : NULL;
	struct buf hdr;
	int err;

	cleanup_date(date, sizeof(date), time(NULL));
	buf_init(&hdr, CLEANUP_HEADER_MAX);
	if (env->client_addr == NULL) {
		/* Local submission: who, not where from (Postfix's form). */
		err = buf_printf(&hdr,
		    "Received: by %s (tern, from userid %s)\r\n\tid %s",
		    var_myhostname,
		    env->submit_uid != NULL ? env->submit_uid : "unknown",
		    c->w.id);
		goto tail;
	}
	err = buf_printf(&hdr, "Received: from %s (%s [%s])", helo, name,
	    env->client_rfc_addr);
	if (err == 0 && env->tls != NULL)
		err = buf_printf(&hdr, "\r\n\t(using %s)", env->tls);
	if (err == 0 && user != NULL && env->auth_header)
		err =
		    buf_printf(&hdr, "\r\n\t(Authenticated sender: %s)", user);
	if (err == 0)
		err = buf_printf(&hdr, "\r\n\tby %s (tern) with %s id %s",
		    var_myhostname, env->protocol, c->w.id);
tail:
	if (err == 0 && rcpt != NULL)
		err = buf_printf(&hdr, "\r\n\tfor <%s>", rcpt);
	if (err == 0)
		err = buf_printf(&hdr, "; %s\r\n", date);
	if (err != 0)
		msg_panic("cleanup: Received: header over %d bytes",
		    CLEANUP_HEADER_MAX);
	cleanup_store(c, hdr.data, hdr.len);
	buf_free(&hdr);
	free(helo);
	free(name);
	free(rcpt);
	free(user);
}

struct cleanup_key {
	char *key;
	int index;
};

static int
cleanup_key_cmp(const void *a, const void *b)
{
	const struct cleanup_key *x = a, *y = b;
	int d = strcmp(x->key, y->key);

	return d != 0 ? d : (x->index > y->index) - (x->index < y->index);
}

/*
 * The address an "type;address" ORCPT names, for the duplicate key:
 * xtext and utf-8-addr escapes are left alone, since one sender's one
 * spelling is what the key needs to match.
 */
static const char *
cleanup_orcpt_addr(const char *orcpt)
{
	const char *semi = orcpt != NULL ? strchr(orcpt, ';') : NULL;

	return semi != NULL && semi[1] != '\0' ? semi + 1 : NULL;
}

/*
 * Sets keep[i] for the first recipient of each mailbox: addresses that
 * differ only in case or quoting are one mailbox, as Postfix's cleanup
 * folds them, so 200 spellings of one address give one copy. With
 * by_original (enable_original_recipient), recipients that were rewritten
 * from different addresses stay apart, as in Postfix: each copy then says
 * which address it was sent to (X-Original-To), which is what a
 * domain-wide mailbox's collector routes by. Returns how many are kept.
 * O(n log n) for smtpd_recipient_limit-sized lists.
 */
static int
cleanup_dedup(const struct cleanup_rcpt *rcpts, int n, int by_original,
    unsigned char *keep)
{
	struct cleanup_key *keys = xcalloc((size_t)n, sizeof(*keys));
	const char *orig;
	char *a, *o;
	int i, kept = 0;

	for (i = 0; i < n; i++) {
		orig = by_original ? cleanup_orcpt_addr(rcpts[i].orcpt) : NULL;
		a = addr_fold(rcpts[i].addr);
		o = orig != NULL ? addr_fold(orig) : NULL;
		if (o == NULL || strcmp(o, a) == 0) {
			keys[i].key = a;
		} else {
			keys[i].key = xasprintf("%s\n%s", a, o);
			free(a);
		}
		free(o);
		keys[i].index = i;
	}
	qsort(keys, (size_t)n, sizeof(*keys), cleanup_key_cmp);
	for (i = 0; i < n; i++) {
		keep[keys[i].index] =
		    i == 0 || strcmp(keys[i].key, keys[i - 1].key) != 0;
		kept += keep[keys[i].index];
	}
	for (i = 0; i < n; i++)
		free(keys[i].key);
	free(keys);
	return kept;
}

/* The client and transaction for log lines, sanitized once. */
static void
cleanup_log_context(struct cleanup *c, const struct cleanup_envelope *env)
{
	const char *rcpt = env->nrcpt > 0 ? env->rcpts[0].addr : "";
	char *from = xstrdup(log_sanitize(env->sender, CLEANUP_LOG_TEXT_MAX));
	char *to = xstrdup(log_sanitize(rcpt, CLEANUP_LOG_TEXT_MAX));

	if (env->client_addr == NULL)
		c->client = xstrdup("local");
	else
		c->client = xasprintf("%s[%s]",
		    log_sanitize(env->client_name, CLEANUP_LOG_TEXT_MAX),
		    env->client_addr);
	c->log_context = xasprintf(
	    " from %s; from=<%s> to=<%s> proto=%s helo=<%s>", c->client, from,
	    to, env->protocol,
	    log_sanitize(env->helo != NULL ? env->helo : "",
	        CLEANUP_LOG_TEXT_MAX));
	free(from);
	free(to);
}

/* Recipients after virtual_alias_maps: owned copies. */
struct cleanup_rcpts {
	struct cleanup_rcpt *v;
	char **owned; /* what v's strings point to, freed together */
	int n, alloc, nowned;
};

static const char *
cleanup_own(struct cleanup_rcpts *l, char *s)
{
	l->owned = xrealloc(l->owned, (size_t)(l->nowned + 1) * sizeof(char *));
	l->owned[l->nowned++] = s;
	return s;
}

static void
cleanup_rcpts_add(struct cleanup_rcpts *l, const char *addr, const char *orcpt,
    unsigned notify)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 8;
		l->v = xrealloc(l->v, (size_t)l->alloc * sizeof(*l->v));
	}
	l->v[l->n].addr = addr;
	l->v[l->n].orcpt = orcpt;
	l->v[l->n].notify = notify;
	l->n++;
}

static void
cleanup_rcpts_free(struct cleanup_rcpts *l)
{
	int i;

	for (i = 0; i < l->nowned; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* 1 if s has a byte outside ASCII. */
static int
cleanup_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/*
 * virtual_alias_maps on every recipient (Postfix's cleanup_map1n). A
 * rewritten recipient keeps the client's ORCPT, or gets the address the
 * client wrote as its ORCPT (RFC 3461 4.2; "utf-8" type for a non-ASCII
 * address, RFC 6533), so a DSN names what the sender wrote; NOTIFY is
 * inherited. 0, or -1 with c->status and c->reject_text set (a table
 * failure, a loop, a limit or a bad value: the message is refused).
 */
static int
cleanup_virtual(struct cleanup *c, const struct cleanup_envelope *env,
    struct cleanup_rcpts *out)
{
	struct virtual_alias_expansion x;
	const char *orcpt;
	int i, j;

	for (i = 0; i < env->nrcpt; i++) {
		const struct cleanup_rcpt *r = &env->rcpts[i];

		virtual_alias_expand(r->addr, &x);
		if (x.status != VIRTUAL_ALIAS_OK) {
			msg_warn("virtual alias expansion of <%s>: %s",
			    log_sanitize(r->addr, CLEANUP_LOG_TEXT_MAX),
			    x.detail);
			c->status |= CLEANUP_STAT_RCPT;
			c->reject_text = virtual_alias_reply(r->addr, &x);
			virtual_alias_expansion_free(&x);
			return -1;
		}
		orcpt = r->orcpt;
		if (x.aliased && orcpt == NULL)
			orcpt = cleanup_own(
			    out, xasprintf("%s;%s",
			             cleanup_8bit(r->addr) ? "utf-8" : "rfc822",
			             r->addr));
		for (j = 0; j < x.naddr; j++) {
			cleanup_rcpts_add(out, cleanup_own(out, x.addrs[j]),
			    orcpt, r->notify);
			x.addrs[j] = NULL;
		}
		virtual_alias_expansion_free(&x);
	}
	return 0;
}

/*
 * "Full Name <sender>" (RFC 5322 3.4): the name as a quoted-string when it
 * holds anything but atext and spaces; control bytes dropped. <> has no
 * address to name: MAILER-DAEMON, as Postfix writes.
 */
static char *
cleanup_from_header(const struct cleanup_envelope *env)
{
	const char *name = env->from_fullname != NULL ? env->from_fullname : "";
	const char *addr = *env->sender != '\0' ? env->sender : "MAILER-DAEMON";
	char out[2 * CLEANUP_FULLNAME_MAX + 3];
	size_t n = 0;
	const char *p;
	int quote = 0;

	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != ' ' &&
		    strchr("!#$%&'*+-/=?^_`{|}~", *p) == NULL &&
		    (unsigned char)*p < 0x80)
			quote = 1;
	if (*name == '\0')
		return xasprintf("<%s>", addr);
	if (quote)
		out[n++] = '"';
	for (p = name; *p != '\0' && p - name < CLEANUP_FULLNAME_MAX; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (quote && (*p == '"' || *p == '\\'))
			out[n++] = '\\';
		out[n++] = *p;
	}
	if (quote)
		out[n++] = '"';
	return xasprintf("%.*s <%s>", (int)n, out, addr);
}

int
cleanup_open(
    struct cleanup *c, const struct cleanup_envelope *env, const char **error_r)
{
	struct cleanup_rcpts expanded;
	struct qfile_create_opts copts = {NULL, 0, NULL, NULL};
	const char *const *a;
	const struct cleanup_rcpt *rcpts = env->rcpts;
	unsigned char *keep;
	const char *only = NULL;
	int i, nrcpt = env->nrcpt;

	memset(c, 0, sizeof(*c));
	memset(&expanded, 0, sizeof(expanded));
	if (virtual_alias_active()) {
		/* Refused before any file exists: nothing to commit. */
		if (cleanup_virtual(c, env, &expanded) < 0) {
			cleanup_rcpts_free(&expanded);
			return 0;
		}
		rcpts = expanded.v;
		nrcpt = expanded.n;
	}
	copts.id = env->queue_id;
	copts.arrival = env->arrival;
	if (qfile_create_opts(&c->w, &copts, error_r) < 0) {
		cleanup_rcpts_free(&expanded);
		return -1;
	}
	c->open = 1;
	if (env->add_from)
		c->add_from = cleanup_from_header(env);
	c->size_limit = (uint64_t)var_message_size_limit;
	cleanup_data_init(&c->data);
	c->add_missing_headers = env->add_missing_headers;
	if (env->bare_newline > CLEANUP_BARE_KEEP)
		msg_panic("cleanup: bare newline policy %d", env->bare_newline);
	c->bare_policy = env->bare_newline;
	c->hold = env->hold;
	c->discard = env->discard;
	cleanup_log_context(c, env);
	c->hdr.state = CLEANUP_HEADER_NAME;
	buf_init(&c->hdr.buf, (size_t)var_header_size_limit);
	qfile_put_sender(&c->w, env->sender);
	if (env->client_addr != NULL)
		qfile_put_attr(&c->w, "client_addr", env->client_addr);
	if (env->client_name != NULL)
		qfile_put_attr(&c->w, "client_name", env->client_name);
	if (env->helo != NULL)
		qfile_put_attr(&c->w, "helo", env->helo);
	qfile_put_attr(&c->w, "protocol", env->protocol);
	if (env->body != NULL)
		qfile_put_attr(&c->w, "body", env->body);
	if (env->smtputf8)
		qfile_put_attr(&c->w, "smtputf8", "1");
	if (env->envid != NULL)
		qfile_put_attr(&c->w, "envid", env->envid);
	if (env->ret != NULL)
		qfile_put_attr(&c->w, "ret", env->ret);
	if (env->auth_user != NULL)
		qfile_put_attr(&c->w, "sasl_username", env->auth_user);
	for (a = env->attrs; a != NULL && *a != NULL; a++) {
		const char *eq = strchr(*a, '=');
		char *name;

		if (eq == NULL)
			msg_panic("cleanup: attribute '%s' without '='", *a);
		name = xstrndup(*a, (size_t)(eq - *a));
		qfile_put_attr(&c->w, name, eq + 1);
		free(name);
	}
	/* Received: names the recipient the client gave, when it gave
	 * one, as Postfix's smtpd does, whatever it expanded into. */
	keep = xcalloc(env->nrcpt > 0 ? (size_t)env->nrcpt : 1, 1);
	if (cleanup_dedup(env->rcpts, env->nrcpt, 0, keep) == 1)
		for (i = 0; i < env->nrcpt && only == NULL; i++)
			if (keep[i])
				only = env->rcpts[i].addr;
	free(keep);
	keep = xcalloc(nrcpt > 0 ? (size_t)nrcpt : 1, 1);
	cleanup_dedup(rcpts, nrcpt, var_enable_original_recipient, keep);
	for (i = 0; i < nrcpt; i++) {
		if (!keep[i])
			continue;
		qfile_put_rcpt(&c->w, rcpts[i].addr,
		    rcpts[i].orcpt != NULL ? rcpts[i].orcpt : "",
		    rcpts[i].notify);
	}
	free(keep);
	qfile_content_begin(&c->w);
	if (!env->no_received)
		cleanup_received(c, env, only);
	cleanup_rcpts_free(&expanded);
	return 0;
}

size_t
cleanup_feed(struct cleanup *c, const char *in, size_t len)
{
	return cleanup_data_parse(&c->data, in, len, cleanup_emit, c);
}

void
cleanup_feed_raw(struct cleanup *c, const char *in, size_t len, int binary)
{
	c->raw = 1;
	c->binary = binary;
	if (c->status != 0 || c->discard)
		return;
	/* Outside BINARYMIME the content is text, under the same policy
	 * as DATA. */
	if (binary)
		cleanup_content(c, in, len);
	else
		cleanup_text(c, in, len);
}

int
cleanup_done(const struct cleanup *c)
{
	return c->data.state == CLEANUP_DATA_END;
}

unsigned
cleanup_finish(struct cleanup *c, const char **error_r, int *errno_r)
{
	if (c->cr && c->status == 0 && !c->discard) {
		/* BDAT content that ended in a lone CR. */
		c->cr = 0;
		cleanup_bare(c, "CR", "\r");
	}
	/* Headers that ended with the content: add what is missing. */
	if (c->status == 0 && !c->discard && !c->hdr.done)
		cleanup_headers_finish(c);
	/* A refused or discarded file is removed: no point in completing
	 * it. */
	if (c->status == 0 && !c->discard && qfile_finish(&c->w, error_r) < 0) {
		c->status |= CLEANUP_STAT_WRITE;
		if (errno_r != NULL)
			*errno_r = c->w.failed;
	}
	return c->status;
}

void
cleanup_free(struct cleanup *c)
{
	buf_free(&c->hdr.buf);
	free(c->reject_text);
	c->reject_text = NULL;
	free(c->add_from);
	c->add_from = NULL;
	free(c->client);
	c->client = NULL;
	free(c->log_context);
	c->log_context = NULL;
	if (!c->open)
		return;
	qfile_writer_free(&c->w);
	c->open = 0;
}

/* --- qmgr notices --- */

static struct attr_client *notify;

void
cleanup_notify_init(struct event_loop *loop)
{
	char *path = queue_path(QUEUE_PRIVATE, NOTIFY_SERVICE);

	notify = attr_client_create(loop, path, ATTR_CLIENT_NOREPLY,
	    (uint64_t)var_ipc_timeout * NOTIFY_MS_PER_SEC, 0, 0);
	free(path);
}

void
cleanup_notify_qmgr(const char *queue_id)
{
	struct buf *f = attr_client_frame(notify);

	if (attr_put_str(f, "request", "new") < 0 ||
	    attr_put_str(f, "queue_id", queue_id) < 0)
		msg_panic("qmgr notice: frame too small");
	attr_client_send(notify, NULL, NULL);
}

void
cleanup_notify_shutdown(void)
{
	attr_client_free(&notify);
}
