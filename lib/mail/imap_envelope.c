/* SPDX-License-Identifier: MIT */
/*
 * IMAP's ENVELOPE, BODY and BODYSTRUCTURE of a parsed message (RFC 3501
 * 7.4.2, RFC 9051 7.5.2), written as Dovecot 2.3 writes them: clients
 * cache these strings, so a mailbox moved between the two servers must
 * show the same bytes. Hence Dovecot's choices below: quoted strings
 * unless they hold CR, LF, 8-bit or more than four quote characters
 * (then literals), names and subjects with white space runs collapsed,
 * the last Date/Subject/Message-ID/In-Reply-To but every From/To/...
 * header's addresses, Sender and Reply-To defaulting to From, "charset"
 * "us-ascii" added to text parts, "7bit" when there is no encoding, and
 * parts the limits cut short shown as application/octet-stream.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "mail/mime_int.h"

/* More quote characters than this make a literal (cheaper by then). */
#define QUOTED_MAX_ESCAPES 4
#define DEFAULT_CHARSET "us-ascii"
#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL " \
	"\"7bit\" 0 0)"
#define EMPTY_BODYSTRUCTURE "(\"text\" \"plain\" (\"charset\" \"us-ascii\") " \
	"NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
#define EMPTY_ENVELOPE "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL"

static void
append_literal(struct mstr *o, const char *s, size_t len)
{
	char n[32];

	snprintf(n, sizeof(n), "{%zu}\r\n", len);
	mstr_adds(o, n);
	mstr_add(o, s, len);
}

static void
append_quoted(struct mstr *o, const char *s)
{
	mstr_addc(o, '"');
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n' || (unsigned char)*s >= 0x80)
			continue;
		if (*s == '"' || *s == '\\')
			mstr_addc(o, '\\');
		mstr_addc(o, *s);
	}
	mstr_addc(o, '"');
}

static void
append_nstring(struct mstr *o, const char *s)
{
	unsigned escapes = 0;
	size_t i;

	if (s == NULL) {
		mstr_adds(o, "NIL");
		return;
	}
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			if (escapes++ < QUOTED_MAX_ESCAPES)
				continue;
		} else if (c != '\r' && c != '\n' && c < 0x80) {
			continue;
		}
		append_literal(o, s, strlen(s));
		return;
	}
	append_quoted(o, s);
}

/* The same with CR and LF dropped (a space where a line did not start
 * with white space): Date, Message-ID, Content-ID and the like. */
static void
append_nstring_nolf(struct mstr *o, const char *s)
{
	struct mstr t = {0};
	size_t i;

	if (s == NULL || strpbrk(s, "\r\n") == NULL) {
		append_nstring(o, s);
		return;
	}
	for (i = 0; s[i] != '\0'; i++) {
		char n = s[i + 1];

		if (s[i] != '\r' && s[i] != '\n')
			mstr_addc(&t, s[i]);
		else if (n != ' ' && n != '\t' && n != '\r' && n != '\n' &&
		    n != '\0')
			mstr_addc(&t, ' ');
	}
	append_nstring(o, mstr_c(&t));
	mstr_free(&t);
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Display names and subjects: white space runs become one space, none at
 * either end, NUL becomes 0x80; a quoted string when nothing changes. */
static void
append_for_humans(struct mstr *o, const char *src, size_t size)
{
	size_t i, removed = 0, start;
	int prefix = 1, last_lwsp = 1, modify = 0;
	char n[32];

	for (i = 0; i < size; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == 0) {
			last_lwsp = 0;
			modify = 1;
		} else if (is_space(c)) {
			if (c != ' ')
				modify = 1;
			if (last_lwsp) {
				modify = 1;
				removed++;
			}
			last_lwsp = 1;
		} else {
			if (c == '"' || c == '\\' || c >= 0x80)
				modify = 1;
			last_lwsp = 0;
		}
		if (!last_lwsp)
			prefix = 0;
	}
	if (last_lwsp && i > 0 && !prefix) {
		modify = 1;
		removed++;
	}
	if (!modify) {
		mstr_addc(o, '"');
		mstr_add(o, src, size);
		mstr_addc(o, '"');
		return;
	}
	if (size == removed) {
		mstr_adds(o, "\"\"");
		return;
	}
	snprintf(n, sizeof(n), "{%zu}\r\n", size - removed);
	mstr_adds(o, n);
	start = o->len;
	last_lwsp = 1;
	prefix = 1;
	for (i = 0; i < size; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == 0) {
			mstr_addc(o, (char)0x80);
			last_lwsp = 0;
		} else if (is_space(c)) {
			if (!last_lwsp)
				mstr_addc(o, ' ');
			last_lwsp = 1;
		} else {
			last_lwsp = 0;
			mstr_addc(o, (char)c);
		}
		if (!last_lwsp)
			prefix = 0;
	}
	if (last_lwsp && i > 0 && !prefix)
		mstr_trunc(o, o->len - 1);
	(void)start;
}

/* ---- ENVELOPE ---- */

struct envelope {
	const char *date, *subject, *in_reply_to, *message_id;
	struct mime_addr *from, *sender, *reply_to, *to, *cc, *bcc;
};

static struct mime_addr **
addr_tail(struct mime_addr **head)
{
	while (*head != NULL)
		head = &(*head)->next;
	return head;
}

static void
envelope_header(struct envelope *e, struct mime_arena *a,
    const struct mime_hdr *h)
{
	static const struct {
		const char *name;
		size_t off;
		int addr;
	} fields[] = {
		{"Date", offsetof(struct envelope, date), 0},
		{"Subject", offsetof(struct envelope, subject), 0},
		{"In-Reply-To", offsetof(struct envelope, in_reply_to), 0},
		{"Message-ID", offsetof(struct envelope, message_id), 0},
		{"From", offsetof(struct envelope, from), 1},
		{"Sender", offsetof(struct envelope, sender), 1},
		{"Reply-To", offsetof(struct envelope, reply_to), 1},
		{"To", offsetof(struct envelope, to), 1},
		{"Cc", offsetof(struct envelope, cc), 1},
		{"Bcc", offsetof(struct envelope, bcc), 1},
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *field = (char *)e + fields[i].off;

		if (!mime_hdr_name_is(h, fields[i].name))
			continue;
		if (fields[i].addr) {
			/* Several From (or To...) headers are one list, as
			 * Dovecot merges them, so that no client shows one
			 * while a filter checked another. */
			struct mime_addr **tail =
			    addr_tail((struct mime_addr **)(void *)field);

			mime_addr_parse(a, h->value.d, h->value.len, &tail);
		} else {
			/* the last one counts, as in Dovecot */
			*(const char **)(void *)field =
			    mime_header_strdup(a, h->value.d, h->value.len);
		}
		return;
	}
}

static void
write_addresses(struct mstr *o, const struct mime_addr *a)
{
	if (a == NULL) {
		mstr_adds(o, "NIL");
		return;
	}
	mstr_addc(o, '(');
	for (; a != NULL; a = a->next) {
		mstr_addc(o, '(');
		if (a->name == NULL)
			mstr_adds(o, "NIL");
		else
			append_for_humans(o, a->name, strlen(a->name));
		mstr_addc(o, ' ');
		append_nstring(o, a->route);
		mstr_addc(o, ' ');
		append_nstring(o, a->mailbox);
		mstr_addc(o, ' ');
		append_nstring(o, a->domain);
		mstr_addc(o, ')');
	}
	mstr_addc(o, ')');
}

static void
write_envelope(struct mstr *o, const char *msg, const struct mime_part *part)
{
	struct mime_hdr_reader r;
	struct mime_hdr h = {0};
	struct envelope e;
	struct mime_arena a = {0};
	int blank, any = 0;

	memset(&e, 0, sizeof(e));
	r.p = msg + part->hdr_off;
	r.end = msg + part->body_off;
	r.eoh = 0;
	while (mime_hdr_next_line(&r, &h, &blank) > 0) {
		envelope_header(&e, &a, &h);
		any = 1;
	}
	mstr_free(&h.value);
	if (!any) {
		mstr_adds(o, EMPTY_ENVELOPE);
		mime_arena_free(&a);
		return;
	}
	append_nstring_nolf(o, e.date);
	mstr_addc(o, ' ');
	if (e.subject == NULL)
		mstr_adds(o, "NIL");
	else
		append_for_humans(o, e.subject, strlen(e.subject));
	mstr_addc(o, ' ');
	write_addresses(o, e.from);
	mstr_addc(o, ' ');
	write_addresses(o, e.sender != NULL ? e.sender : e.from);
	mstr_addc(o, ' ');
	write_addresses(o, e.reply_to != NULL ? e.reply_to : e.from);
	mstr_addc(o, ' ');
	write_addresses(o, e.to);
	mstr_addc(o, ' ');
	write_addresses(o, e.cc);
	mstr_addc(o, ' ');
	write_addresses(o, e.bcc);
	mstr_addc(o, ' ');
	append_nstring_nolf(o, e.in_reply_to);
	mstr_addc(o, ' ');
	append_nstring_nolf(o, e.message_id);
	mime_arena_free(&a);
}

static int
flush(struct buf *out, struct mstr *o)
{
	int ret = buf_append(out, mstr_c(o), o->len);

	mstr_free(o);
	return ret < 0 ? -1 : 0;
}

int
mime_envelope(struct buf *out, const char *msg, const struct mime_part *part)
{
	struct mstr o = {0};

	write_envelope(&o, msg, part);
	return flush(out, &o);
}

/* ---- BODY, BODYSTRUCTURE ---- */

static const struct mime_ipart *
ip(const struct mime_part *p)
{
	return (const struct mime_ipart *)p;
}

static void
write_params(struct mstr *o, const struct mime_param *params, size_t n,
    int default_charset)
{
	size_t i;
	int seen_charset = 0;

	if (!default_charset && n == 0) {
		mstr_adds(o, "NIL");
		return;
	}
	mstr_addc(o, '(');
	for (i = 0; i < n; i++) {
		if (i > 0)
			mstr_addc(o, ' ');
		if (default_charset && strcasecmp(params[i].name,
		    "charset") == 0)
			seen_charset = 1;
		append_nstring(o, params[i].name);
		mstr_addc(o, ' ');
		append_nstring(o, params[i].value);
	}
	if (default_charset && !seen_charset) {
		if (i > 0)
			mstr_addc(o, ' ');
		mstr_adds(o, "\"charset\" \"" DEFAULT_CHARSET "\"");
	}
	mstr_addc(o, ')');
}

static void
write_common(struct mstr *o, const struct mime_data *d)
{
	mstr_addc(o, ' ');
	if (d->disposition == NULL) {
		mstr_adds(o, "NIL");
	} else {
		mstr_addc(o, '(');
		append_nstring(o, d->disposition);
		mstr_addc(o, ' ');
		write_params(o, d->disp_params, d->n_disp_params, 0);
		mstr_addc(o, ')');
	}
	mstr_addc(o, ' ');
	if (d->language == NULL) {
		mstr_adds(o, "NIL");
	} else {
		const char *const *l;

		mstr_addc(o, '(');
		for (l = d->language; *l != NULL; l++) {
			if (l != d->language)
				mstr_addc(o, ' ');
			append_nstring(o, *l);
		}
		mstr_addc(o, ')');
	}
	mstr_addc(o, ' ');
	append_nstring_nolf(o, d->location);
}

static void write_part(struct mstr *o, const char *msg,
    const struct mime_part *part, int extended);

static void
write_multipart(struct mstr *o, const char *msg, const struct mime_part *part,
    int extended)
{
	const struct mime_data *d = &ip(part)->data;
	const struct mime_part *c;

	if (part->children == NULL)
		mstr_adds(o, extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
	for (c = part->children; c != NULL; c = c->next) {
		mstr_addc(o, '(');
		write_part(o, msg, c, extended);
		mstr_addc(o, ')');
	}
	mstr_addc(o, ' ');
	append_nstring(o, d->subtype != NULL ? d->subtype : "");
	if (!extended)
		return;
	mstr_addc(o, ' ');
	write_params(o, d->type_params, d->n_type_params, 0);
	write_common(o, d);
}

/* A message/rfc822 or multipart that the limits left a leaf, or a
 * digest's part that should have been a message. */
static int
part_truncated(const struct mime_part *part)
{
	const struct mime_data *d = &ip(part)->data;

	if (d->type != NULL) {
		if (strcasecmp(d->type, "message") == 0 &&
		    strcasecmp(d->subtype, "rfc822") == 0)
			return 1;
		return strcasecmp(d->type, "multipart") == 0;
	}
	return part->parent != NULL &&
	    (ip(part->parent)->flags & MIME_F_DIGEST);
}

static void
write_leaf(struct mstr *o, const char *msg, const struct mime_part *part,
    int extended)
{
	const struct mime_data *d = &ip(part)->data;
	char n[48];
	int text = 0;

	if (ip(part)->flags & MIME_F_RFC822) {
		mstr_adds(o, "\"message\" \"rfc822\"");
	} else if (part_truncated(part)) {
		mstr_adds(o, "\"application\" \"octet-stream\"");
	} else if (d->type == NULL) {
		text = 1;
		mstr_adds(o, "\"text\" \"plain\"");
	} else {
		text = strcasecmp(d->type, "text") == 0;
		append_nstring(o, d->type);
		mstr_addc(o, ' ');
		append_nstring(o, d->subtype);
	}
	mstr_addc(o, ' ');
	write_params(o, d->type_params, d->n_type_params, text);
	mstr_addc(o, ' ');
	append_nstring_nolf(o, d->id);
	mstr_addc(o, ' ');
	append_nstring_nolf(o, d->description);
	mstr_addc(o, ' ');
	if (d->encoding != NULL)
		append_nstring(o, d->encoding);
	else
		mstr_adds(o, "\"7bit\"");
	snprintf(n, sizeof(n), " %llu", (unsigned long long)part->body_size);
	mstr_adds(o, n);
	if (text) {
		snprintf(n, sizeof(n), " %llu",
		    (unsigned long long)part->body_lines);
		mstr_adds(o, n);
	} else if ((ip(part)->flags & MIME_F_RFC822) &&
	    part->message != NULL) {
		mstr_adds(o, " (");
		write_envelope(o, msg, part->message);
		mstr_adds(o, ") (");
		write_part(o, msg, part->message, extended);
		snprintf(n, sizeof(n), ") %llu",
		    (unsigned long long)part->body_lines);
		mstr_adds(o, n);
	}
	if (!extended)
		return;
	mstr_addc(o, ' ');
	append_nstring_nolf(o, d->md5);
	write_common(o, d);
}

static void
write_part(struct mstr *o, const char *msg, const struct mime_part *part,
    int extended)
{
	if (ip(part)->flags & MIME_F_MULTIPART)
		write_multipart(o, msg, part, extended);
	else
		write_leaf(o, msg, part, extended);
}

int
mime_bodystructure(struct buf *out, const char *msg,
    const struct mime_part *part, int extended)
{
	struct mstr o = {0};

	write_part(&o, msg, part, extended);
	return flush(out, &o);
}
