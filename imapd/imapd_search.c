/* SPDX-License-Identifier: MIT */
/*
 * SEARCH and UID SEARCH (RFC 9051 6.4.4): every search key of RFC 3501
 * 6.4.4 with CHARSET UTF-8 (header values RFC 2047-decoded, bodies
 * decoded from their transfer encoding, through lib/mail/mime), MODSEQ
 * (RFC 7162 3.1.5), ESEARCH results (RFC 4731: RETURN MIN MAX ALL COUNT)
 * and SAVE with "$" (SEARCHRES, RFC 5182). The keys are parsed into a
 * tree first (a bad key is a BAD before any work), then evaluated per
 * message, the message's file read only when a key needs its text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/mime.h"
#include "imapd.h"

/* NOT NOT NOT ... and nested lists: bounded recursion. */
#define SEARCH_DEPTH_MAX 100
#define SECONDS_PER_DAY 86400
/* A decoded header value or body kept for one comparison. */
#define SEARCH_TEXT_MAX (64 * 1024 * 1024)

enum skey_type {
	SK_ALL,
	SK_NONE,
	SK_SET, /* a sequence set or UID set: seqs */
	SK_FLAG,
	SK_NOFLAG,
	SK_NEW,
	SK_OLD,
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,
	SK_BODY,
	SK_TEXT,
	SK_MODSEQ,
	SK_NOT,
	SK_OR,
	SK_AND,
};

struct skey {
	enum skey_type type;
	struct skey *a, *b, *next;
	uint8_t flag;
	int kw;
	uint64_t num;
	int64_t day;
	char *field;
	const char *value;
	size_t vlen;
	struct imapd_seqs seqs;
};

/* What one SEARCH reuses from message to message. */
struct search_ctx {
	struct imapd_msgbuf mb;
	struct buf hc;  /* the message's MAILBOX_CACHE_HEADERS record */
	struct buf dec; /* a decoded header value or body part */
};

struct search_msg {
	uint32_t seq;
	const struct mailbox_msg *m;
	struct search_ctx *ctx;
	int fd, failed;
	int hc_state; /* 0 not looked at, 1 in ctx->hc, -1 unavailable */
	const char *map; /* ctx->mb: the header, or all when complete */
	size_t len, hdr_len;
	int complete;
	struct mime_message *mime;
};

struct search_parse {
	struct imapd_session *s;
	const struct imap_arg *args;
	size_t n, i;
	const char *error;
	int modseq_used;
};

static void
skey_free(struct skey *k)
{
	struct skey *next;

	while (k != NULL) {
		next = k->next;
		skey_free(k->a);
		skey_free(k->b);
		free(k->field);
		imapd_seqs_free(&k->seqs);
		free(k);
		k = next;
	}
}

static struct skey *parse_key(struct search_parse *p, int depth);

static const struct imap_arg *
next_arg(struct search_parse *p)
{
	if (p->i >= p->n) {
		p->error = "Missing search argument.";
		return NULL;
	}
	return &p->args[p->i++];
}

static int
arg_string(struct search_parse *p, struct skey *k)
{
	const struct imap_arg *a = next_arg(p);

	if (a == NULL)
		return 0;
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING &&
	    a->type != IMAP_ARG_LITERAL) {
		p->error = "Expected a string.";
		return 0;
	}
	k->value = a->str;
	k->vlen = a->len;
	return 1;
}

static int
arg_number(struct search_parse *p, uint64_t *n_r)
{
	const struct imap_arg *a = next_arg(p);
	char *end;

	if (a == NULL)
		return 0;
	errno = 0;
	if (a->type != IMAP_ARG_ATOM || a->str[0] < '0' || a->str[0] > '9' ||
	    (*n_r = strtoull(a->str, &end, 10), errno != 0) || *end != '\0') {
		p->error = "Expected a number.";
		return 0;
	}
	return 1;
}

static int
arg_date(struct search_parse *p, int64_t *day_r)
{
	const struct imap_arg *a = next_arg(p);
	const char *str;
	size_t len;

	if (a == NULL)
		return 0;
	if (!imap_arg_astring(a, &str, &len) || !imap_date_parse(str, day_r)) {
		p->error = "Invalid search date.";
		return 0;
	}
	return 1;
}

static const struct {
	const char *name;
	enum skey_type type;
	uint8_t flag;
} simple_keys[] = {
    {"ALL", SK_ALL, 0},
    {"ANSWERED", SK_FLAG, MAILBOX_F_ANSWERED},
    {"DELETED", SK_FLAG, MAILBOX_F_DELETED},
    {"DRAFT", SK_FLAG, MAILBOX_F_DRAFT},
    {"FLAGGED", SK_FLAG, MAILBOX_F_FLAGGED},
    {"RECENT", SK_FLAG, MAILBOX_F_RECENT},
    {"SEEN", SK_FLAG, MAILBOX_F_SEEN},
    {"UNANSWERED", SK_NOFLAG, MAILBOX_F_ANSWERED},
    {"UNDELETED", SK_NOFLAG, MAILBOX_F_DELETED},
    {"UNDRAFT", SK_NOFLAG, MAILBOX_F_DRAFT},
    {"UNFLAGGED", SK_NOFLAG, MAILBOX_F_FLAGGED},
    {"UNSEEN", SK_NOFLAG, MAILBOX_F_SEEN},
    {"NEW", SK_NEW, 0},
    {"OLD", SK_NOFLAG, MAILBOX_F_RECENT},
};

static const struct {
	const char *name;
	enum skey_type type;
} date_keys[] = {
    {"BEFORE", SK_BEFORE},
    {"ON", SK_ON},
    {"SINCE", SK_SINCE},
    {"SENTBEFORE", SK_SENTBEFORE},
    {"SENTON", SK_SENTON},
    {"SENTSINCE", SK_SENTSINCE},
};

static const char *const header_keys[] = {"FROM", "TO", "CC", "BCC",
    "SUBJECT"};

static int
parse_key_body(struct search_parse *p, struct skey *k,
    const struct imap_arg *a, int depth)
{
	const char *w = a->str, *err;
	const struct imap_arg *x;
	struct skey **tail;
	size_t i;

	if (a->type == IMAP_ARG_LIST) {
		struct search_parse sub = *p;

		k->type = SK_AND;
		sub.args = a->list;
		sub.n = a->count;
		sub.i = 0;
		if (a->count == 0) {
			p->error = "Empty search list.";
			return 0;
		}
		tail = &k->a;
		while (sub.i < sub.n) {
			*tail = parse_key(&sub, depth + 1);
			if (*tail == NULL) {
				p->error = sub.error;
				return 0;
			}
			tail = &(*tail)->next;
		}
		p->modseq_used |= sub.modseq_used;
		return 1;
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "Invalid search key.";
		return 0;
	}
	for (i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]); i++) {
		if (strcasecmp(w, simple_keys[i].name) == 0) {
			k->type = simple_keys[i].type;
			k->flag = simple_keys[i].flag;
			return 1;
		}
	}
	for (i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (strcasecmp(w, date_keys[i].name) == 0) {
			k->type = date_keys[i].type;
			return arg_date(p, &k->day);
		}
	}
	for (i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
		if (strcasecmp(w, header_keys[i]) == 0) {
			k->type = SK_HEADER;
			k->field = xstrdup(header_keys[i]);
			return arg_string(p, k);
		}
	}
	if (strcasecmp(w, "HEADER") == 0) {
		k->type = SK_HEADER;
		if (!arg_string(p, k))
			return 0;
		k->field = xstrndup(k->value, k->vlen);
		return arg_string(p, k);
	}
	if (strcasecmp(w, "BODY") == 0 || strcasecmp(w, "TEXT") == 0) {
		k->type = strcasecmp(w, "BODY") == 0 ? SK_BODY : SK_TEXT;
		return arg_string(p, k);
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		k->type = strcasecmp(w, "KEYWORD") == 0 ? SK_KEYWORD
		                                        : SK_UNKEYWORD;
		if (!arg_string(p, k))
			return 0;
		k->kw = mailbox_keyword_index(p->s->box, k->value, 0, &err);
		return 1;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		k->type = strcasecmp(w, "LARGER") == 0 ? SK_LARGER : SK_SMALLER;
		return arg_number(p, &k->num);
	}
	if (strcasecmp(w, "MODSEQ") == 0) {
		k->type = SK_MODSEQ;
		/* [entry-name entry-type]: per-flag modseqs are not kept;
		 * the message's one stands for all (RFC 7162 3.1.5). */
		if (p->i < p->n && p->args[p->i].type == IMAP_ARG_STRING)
			p->i += 2;
		p->modseq_used = 1;
		return arg_number(p, &k->num);
	}
	if (strcasecmp(w, "NOT") == 0) {
		k->type = SK_NOT;
		k->a = parse_key(p, depth + 1);
		return k->a != NULL;
	}
	if (strcasecmp(w, "OR") == 0) {
		k->type = SK_OR;
		k->a = parse_key(p, depth + 1);
		if (k->a == NULL)
			return 0;
		k->b = parse_key(p, depth + 1);
		return k->b != NULL;
	}
	if (strcasecmp(w, "UID") == 0) {
		x = next_arg(p);
		if (x == NULL)
			return 0;
		k->type = SK_SET;
		if (x->type != IMAP_ARG_ATOM ||
		    !imapd_seqs_resolve(p->s, x->str, 1, &k->seqs)) {
			p->error = "Invalid UID set.";
			return 0;
		}
		return 1;
	}
	if ((w[0] >= '0' && w[0] <= '9') || w[0] == '*' || w[0] == '$') {
		k->type = SK_SET;
		if (!imapd_seqs_resolve(p->s, w, 0, &k->seqs)) {
			p->error = "Invalid sequence set.";
			return 0;
		}
		return 1;
	}
	p->error = "Unknown search key.";
	return 0;
}

static struct skey *
parse_key(struct search_parse *p, int depth)
{
	const struct imap_arg *a;
	struct skey *k;

	if (depth > SEARCH_DEPTH_MAX) {
		p->error = "Search keys nested too deep.";
		return NULL;
	}
	a = next_arg(p);
	if (a == NULL)
		return NULL;
	k = xcalloc(1, sizeof(*k));
	if (!parse_key_body(p, k, a, depth)) {
		skey_free(k);
		return NULL;
	}
	return k;
}

/* ---- evaluation ---- */

/* Reads the message's header (or all of it) once per SEARCH of it. */
static int
msg_load(struct imapd_session *s, struct search_msg *sm, int header_only)
{
	struct imapd_msgbuf *mb = &sm->ctx->mb;
	const char *err;

	if (sm->failed)
		return 0;
	if (sm->map != NULL && (sm->complete || header_only))
		return 1;
	if (sm->fd < 0 &&
	    mailbox_msg_open(s->box, sm->seq, &sm->fd, &err) < 0) {
		sm->fd = -1;
		sm->failed = 1;
		return 0;
	}
	s->files_opened++;
	if (imapd_msgbuf_read(sm->fd, mb, header_only, SEARCH_TEXT_MAX) < 0) {
		sm->failed = 1;
		return 0;
	}
	sm->map = mb->data;
	sm->len = mb->len;
	sm->hdr_len = mb->hdr_len;
	sm->complete = mb->complete;
	return 1;
}

static void
msg_release(struct search_msg *sm)
{
	mime_free(&sm->mime);
	if (sm->fd >= 0)
		close(sm->fd);
}

/* The message's header record, from the cache, else made from its
 * header and put there: 1, or 0 when the file cannot be read. */
static int
hc_load(struct imapd_session *s, struct search_msg *sm)
{
	struct search_ctx *ctx = sm->ctx;
	const char *data;
	size_t len;

	if (sm->hc_state != 0)
		return sm->hc_state > 0;
	sm->hc_state = -1;
	buf_reset(&ctx->hc);
	if (mailbox_cache_get(s->box, sm->seq, MAILBOX_CACHE_HEADERS, &data,
	        &len) == 1 &&
	    imapd_hc_valid(data, len)) {
		imapd_bappend(&ctx->hc, data, len);
	} else {
		if (!msg_load(s, sm, 1))
			return 0;
		imapd_hc_build(&ctx->hc, &ctx->dec, sm->map, sm->hdr_len);
		mailbox_cache_put(s->box, sm->seq, MAILBOX_CACHE_HEADERS,
		    ctx->hc.data, ctx->hc.len);
	}
	sm->hc_state = 1;
	return 1;
}

/* Does a field of [hdr, hdr+len) named field (NULL: any) contain the
 * value, RFC 2047-decoded? */
static int
header_match(struct buf *dec, const char *hdr, size_t len,
    const char *field, const char *value, size_t vlen)
{
	const char *name, *v;
	size_t pos = 0, nlen, vl, start;
	int found = 0;

	while (!found && imapd_header_next(
	                     hdr, len, &pos, &name, &nlen, &v, &vl, &start)) {
		if (field != NULL && (strlen(field) != nlen ||
		                         strncasecmp(field, name, nlen) != 0))
			continue;
		buf_reset(dec);
		if (field == NULL)
			imapd_bappend(dec, name, nlen + 1);
		(void)mime_decode_words(dec, v, vl);
		found = imapd_contains(buf_cstr(dec), dec->len, value, vlen);
	}
	return found;
}

static int
body_match(struct buf *dec, const char *map, const struct mime_part *part,
    const char *value, size_t vlen, int depth)
{
	const struct mime_part *c;
	int found = 0;

	if (part == NULL || depth > MIME_DEPTH_MAX)
		return 0;
	if (part->is_multipart) {
		for (c = part->children; c != NULL && !found; c = c->next)
			found = body_match(dec, map, c, value, vlen, depth + 1);
		return found;
	}
	if (part->is_message_rfc822 && part->message != NULL) {
		const struct mime_part *m = part->message;

		return header_match(dec, map + m->hdr_off,
		           m->body_off - m->hdr_off, NULL, value, vlen) ||
		       body_match(dec, map, m, value, vlen, depth + 1);
	}
	if (part->type != NULL && strcasecmp(part->type, "text") != 0)
		return 0;
	buf_reset(dec);
	if (mime_body_decode(dec, map, part) == 1)
		return imapd_contains(buf_cstr(dec), dec->len, value, vlen);
	return imapd_contains(map + part->body_off,
	    part->end_off - part->body_off, value, vlen);
}

static int64_t
local_day(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	int64_t off = 0, d;

	if (localtime_r(&tt, &tm) != NULL)
		off = tm.tm_gmtoff;
	d = t + off;
	return (d >= 0 ? d / SECONDS_PER_DAY
	               : (d - SECONDS_PER_DAY + 1) / SECONDS_PER_DAY) *
	       SECONDS_PER_DAY;
}

static int
sent_day(struct imapd_session *s, struct search_msg *sm, int64_t *day_r)
{
	const char *v;
	size_t pos = 0, vl;
	int f;

	if (!hc_load(s, sm))
		return 0;
	while (imapd_hc_next(sm->ctx->hc.data, sm->ctx->hc.len, &pos, &f, &v,
	    &vl)) {
		if (f == IMAPD_HC_DATE && imapd_rfc822_day(v, vl, day_r))
			return 1;
	}
	*day_r = local_day(mailbox_msg_received(s->box, sm->seq));
	return 1;
}

/* HEADER field value from the header record: 1, 0, or -1 when the field
 * is not one the record keeps (or the file cannot be read). */
static int
hc_match(struct imapd_session *s, struct search_msg *sm, const char *field,
    const char *value, size_t vlen)
{
	const char *v;
	size_t pos = 0, vl;
	int want = imapd_hc_field(field, strlen(field)), f;

	if (want < 0 || !hc_load(s, sm))
		return -1;
	while (imapd_hc_next(sm->ctx->hc.data, sm->ctx->hc.len, &pos, &f, &v,
	    &vl)) {
		if (f == want && imapd_contains(v, vl, value, vlen))
			return 1;
	}
	return 0;
}

static int
in_set(const struct imapd_seqs *set, uint32_t seq)
{
	size_t lo = 0, hi = set->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (set->seqs[mid] == seq)
			return 1;
		if (set->seqs[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
eval(struct imapd_session *s, const struct skey *k, struct search_msg *sm)
{
	const struct mailbox_msg *m = sm->m;
	const struct skey *c;
	int64_t day;
	int r;

	switch (k->type) {
	case SK_ALL:
		return 1;
	case SK_NONE:
		return 0;
	case SK_SET:
		return in_set(&k->seqs, sm->seq);
	case SK_FLAG:
		return (m->flags & k->flag) != 0;
	case SK_NOFLAG:
		return (m->flags & k->flag) == 0;
	case SK_NEW:
		return (m->flags & MAILBOX_F_RECENT) &&
		       !(m->flags & MAILBOX_F_SEEN);
	case SK_OLD:
		return !(m->flags & MAILBOX_F_RECENT);
	case SK_KEYWORD:
		return k->kw >= 0 && (m->keywords & (1U << k->kw));
	case SK_UNKEYWORD:
		return k->kw < 0 || !(m->keywords & (1U << k->kw));
	case SK_LARGER:
		return m->size > k->num;
	case SK_SMALLER:
		return m->size < k->num;
	case SK_BEFORE:
		return local_day(mailbox_msg_received(s->box, sm->seq)) < k->day;
	case SK_ON:
		return local_day(mailbox_msg_received(s->box, sm->seq)) == k->day;
	case SK_SINCE:
		return local_day(mailbox_msg_received(s->box, sm->seq)) >= k->day;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (!sent_day(s, sm, &day))
			return 0;
		return k->type == SK_SENTBEFORE ? day < k->day
		       : k->type == SK_SENTON   ? day == k->day
		                                : day >= k->day;
	case SK_MODSEQ:
		return m->modseq >= k->num;
	case SK_HEADER:
		r = hc_match(s, sm, k->field, k->value, k->vlen);
		if (r >= 0)
			return r;
		if (!msg_load(s, sm, 1))
			return 0;
		return header_match(&sm->ctx->dec, sm->map, sm->hdr_len,
		    k->field, k->value, k->vlen);
	case SK_TEXT:
		if (!msg_load(s, sm, 1))
			return 0;
		if (header_match(&sm->ctx->dec, sm->map, sm->hdr_len, NULL,
		        k->value, k->vlen))
			return 1;
		/* FALLTHROUGH */
	case SK_BODY:
		if (!msg_load(s, sm, 0))
			return 0;
		if (sm->mime == NULL)
			sm->mime = mime_parse(sm->map, sm->len);
		if (sm->mime == NULL)
			return imapd_contains(sm->map + sm->hdr_len,
			    sm->len - sm->hdr_len, k->value, k->vlen);
		return body_match(&sm->ctx->dec, sm->map, sm->mime->root,
		    k->value, k->vlen, 0);
	case SK_NOT:
		return !eval(s, k->a, sm);
	case SK_OR:
		return eval(s, k->a, sm) || eval(s, k->b, sm);
	case SK_AND:
		for (c = k->a; c != NULL; c = c->next) {
			if (!eval(s, c, sm))
				return 0;
		}
		return 1;
	}
	return 0;
}

/* ---- the command ---- */

#define RET_MIN   0x01
#define RET_MAX   0x02
#define RET_ALL   0x04
#define RET_COUNT 0x08
#define RET_SAVE  0x10

static void
save_result(struct imapd_session *s, const uint32_t *seqs, size_t n,
    unsigned ret)
{
	size_t i;

	free(s->saved);
	s->saved = xmalloc((n > 0 ? n : 1) * sizeof(*s->saved));
	s->saved_count = 0;
	/* RFC 5182 2.4: with MIN or MAX alone, only those are saved. */
	if (n > 0 && (ret & (RET_MIN | RET_MAX)) &&
	    !(ret & (RET_ALL | RET_COUNT))) {
		if (ret & RET_MIN)
			s->saved[s->saved_count++] =
			    mailbox_msg(s->box, seqs[0])->uid;
		if ((ret & RET_MAX) && (n > 1 || !(ret & RET_MIN)))
			s->saved[s->saved_count++] =
			    mailbox_msg(s->box, seqs[n - 1])->uid;
		return;
	}
	for (i = 0; i < n; i++)
		s->saved[s->saved_count++] = mailbox_msg(s->box, seqs[i])->uid;
}

static uint32_t
num_of(struct imapd_session *s, int uid, uint32_t seq)
{
	return uid ? mailbox_msg(s->box, seq)->uid : seq;
}

int
imapd_search_run(struct imapd_session *s, const struct imap_arg *args,
    size_t count, uint32_t **hits_r, size_t *nhits_r, int *modseq_used_r,
    uint64_t *maxmod_r)
{
	struct search_parse p;
	struct skey *root = NULL, **tail = &root;
	struct search_msg sm;
	struct search_ctx ctx;
	uint32_t *hits, n = mailbox_count(s->box), seq;
	uint64_t maxmod = 0;
	size_t nhits = 0;

	memset(&p, 0, sizeof(p));
	p.s = s;
	p.args = args;
	p.n = count;
	p.i = 0;
	if (p.i >= p.n)
		p.error = "Missing search keys.";
	while (p.i < p.n) {
		*tail = parse_key(&p, 0);
		if (*tail == NULL)
			break;
		tail = &(*tail)->next;
	}
	if (p.error != NULL || root == NULL) {
		skey_free(root);
		imapd_tagged(s, "BAD", "%s",
		    p.error != NULL ? p.error : "Invalid search.");
		return 0;
	}
	if (p.modseq_used)
		s->enabled |= IMAPD_EN_CONDSTORE;
	hits = xmalloc(((size_t)n + 1) * sizeof(*hits));
	memset(&ctx, 0, sizeof(ctx));
	buf_init(&ctx.hc, SEARCH_TEXT_MAX);
	buf_init(&ctx.dec, SEARCH_TEXT_MAX);
	for (seq = 1; seq <= n && !s->broken; seq++) {
		const struct skey *key;
		int ok = 1;

		if (mailbox_msg_gone(s->box, seq))
			continue;
		memset(&sm, 0, sizeof(sm));
		sm.fd = -1;
		sm.ctx = &ctx;
		sm.seq = seq;
		sm.m = mailbox_msg(s->box, seq);
		for (key = root; key != NULL && ok; key = key->next)
			ok = eval(s, key, &sm);
		msg_release(&sm);
		if (ok) {
			hits[nhits++] = seq;
			if (sm.m->modseq > maxmod)
				maxmod = sm.m->modseq;
		}
	}
	imapd_msgbuf_free(&ctx.mb);
	buf_free(&ctx.hc);
	buf_free(&ctx.dec);
	skey_free(root);
	*hits_r = hits;
	*nhits_r = nhits;
	*modseq_used_r = p.modseq_used;
	*maxmod_r = maxmod;
	return 1;
}

void
imapd_cmd_search(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf out;
	uint32_t *hits, n = mailbox_count(s->box), *nums;
	uint64_t maxmod = 0;
	unsigned ret = 0;
	size_t i = 0, k, nhits = 0;
	int esearch = 0, modseq_used = 0;

	if (i < c->count && imap_arg_atom_is(&c->args[i], "RETURN")) {
		if (i + 1 >= c->count || c->args[i + 1].type != IMAP_ARG_LIST) {
			imapd_tagged(s, "BAD", "Invalid RETURN options.");
			return;
		}
		for (k = 0; k < c->args[i + 1].count; k++) {
			const struct imap_arg *o = &c->args[i + 1].list[k];

			if (imap_arg_atom_is(o, "MIN"))
				ret |= RET_MIN;
			else if (imap_arg_atom_is(o, "MAX"))
				ret |= RET_MAX;
			else if (imap_arg_atom_is(o, "ALL"))
				ret |= RET_ALL;
			else if (imap_arg_atom_is(o, "COUNT"))
				ret |= RET_COUNT;
			else if (imap_arg_atom_is(o, "SAVE"))
				ret |= RET_SAVE;
			else {
				imapd_tagged(s, "BAD", "Invalid RETURN option.");
				return;
			}
		}
		/* RFC 4731 3.1: RETURN () means ALL. */
		if ((ret & ~RET_SAVE) == 0 && c->args[i + 1].count == 0)
			ret |= RET_ALL;
		esearch = 1;
		i += 2;
	}
	if (i < c->count && imap_arg_atom_is(&c->args[i], "CHARSET")) {
		if (i + 1 >= c->count ||
		    (!imap_arg_atom_is(&c->args[i + 1], "UTF-8") &&
		        !imap_arg_atom_is(&c->args[i + 1], "US-ASCII") &&
		        !(c->args[i + 1].type == IMAP_ARG_STRING &&
		            (strcasecmp(c->args[i + 1].str, "UTF-8") == 0 ||
		                strcasecmp(c->args[i + 1].str, "US-ASCII") ==
		                    0)))) {
			imapd_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
			                      "Unsupported charset.");
			return;
		}
		i += 2;
	}
	if (s->enabled & IMAPD_EN_REV2) {
		esearch = 1;
		if (ret == 0)
			ret = RET_ALL;
	}
	if (!imapd_search_run(s, c->args + i, c->count - i, &hits, &nhits,
	        &modseq_used, &maxmod))
		return;
	if (ret & RET_SAVE)
		save_result(s, hits, nhits, ret);
	buf_init(&out, (size_t)n * 12 + IMAPD_RESP_SLACK);
	if (esearch && ret != RET_SAVE) {
		imapd_bputs(&out, "* ESEARCH (TAG ");
		(void)imap_append_string(&out, c->tag, strlen(c->tag), 0);
		imapd_bputc(&out, ')');
		if (c->uid)
			imapd_bputs(&out, " UID");
		if ((ret & RET_MIN) && nhits > 0)
			imapd_bprintf(
			    &out, " MIN %u", num_of(s, c->uid, hits[0]));
		if ((ret & RET_MAX) && nhits > 0)
			imapd_bprintf(&out, " MAX %u",
			    num_of(s, c->uid, hits[nhits - 1]));
		if (ret & RET_COUNT)
			imapd_bprintf(&out, " COUNT %zu", nhits);
		if ((ret & RET_ALL) && nhits > 0) {
			nums = xmalloc(nhits * sizeof(*nums));
			for (k = 0; k < nhits; k++)
				nums[k] = num_of(s, c->uid, hits[k]);
			imapd_bputs(&out, " ALL ");
			(void)imap_seqset_format(&out, nums, nhits);
			free(nums);
		}
		if (modseq_used && nhits > 0)
			imapd_bprintf(&out, " MODSEQ %llu",
			    (unsigned long long)maxmod);
		imapd_bputs(&out, "\r\n");
	} else if (!esearch) {
		imapd_bputs(&out, "* SEARCH");
		for (k = 0; k < nhits; k++)
			imapd_bprintf(
			    &out, " %u", num_of(s, c->uid, hits[k]));
		if (modseq_used && nhits > 0)
			imapd_bprintf(&out, " (MODSEQ %llu)",
			    (unsigned long long)maxmod);
		imapd_bputs(&out, "\r\n");
	}
	(void)imapd_send(s, out.data, out.len);
	buf_free(&out);
	free(hits);
	imapd_tagged(s, "OK", "Search completed.");
}
