/* SPDX-License-Identifier: MIT */
/*
 * The folder tree: LIST with '*' and '%' (RFC 9051 6.3.9) and its
 * extensions LIST-EXTENDED (RFC 5258: selection SUBSCRIBED, SPECIAL-USE,
 * RECURSIVEMATCH; return SUBSCRIBED, CHILDREN, SPECIAL-USE), LIST-STATUS
 * (RFC 5819), SPECIAL-USE (RFC 6154), CHILDREN (RFC 3348); LSUB, STATUS
 * (RFC 9051 6.3.11, STATUS=SIZE RFC 8438), CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE. Names travel as modified UTF-7 (RFC 3501
 * 5.1.3) unless UTF-8 is enabled (IMAP4rev2, UTF8=ACCEPT RFC 6855).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "imapd.h"

#define LIST_SEL_SUBSCRIBED  0x01
#define LIST_SEL_SPECIAL_USE 0x02
#define LIST_SEL_RECURSIVE   0x04
#define LIST_RET_SUBSCRIBED  0x01
#define LIST_RET_CHILDREN    0x02
#define LIST_RET_SPECIAL_USE 0x04
#define LIST_RET_STATUS      0x08
/* Patterns of one LIST (RFC 5258 3: a parenthesised list of them). */
#define LIST_PATTERNS_MAX 64

static int
utf8_mode(const struct imapd_session *s)
{
	return (s->enabled & (IMAPD_EN_REV2 | IMAPD_EN_UTF8)) != 0;
}

/* The wire form of a name (or a pattern) as UTF-8. 1, or 0. */
static int
name_from_wire(const struct imapd_session *s, const char *in, size_t len,
    struct buf *out)
{
	buf_reset(out);
	if (utf8_mode(s) || memchr(in, '&', len) == NULL) {
		if (buf_append(out, in, len) < 0)
			return 0;
	} else if (imap_utf7_to_utf8(in, len, out) != 1) {
		return 0;
	}
	/* INBOX in any case is the inbox (RFC 3501 5.1), also as the
	 * first level of a deeper name. */
	if (out->len >= 5 && strncasecmp(out->data, "INBOX", 5) == 0 &&
	    (out->len == 5 || out->data[5] == MAILBOX_SEP))
		memcpy(out->data, "INBOX", 5);
	return 1;
}

int
imapd_arg_mailbox(struct imapd_session *s, const struct imap_arg *arg,
    struct buf *out)
{
	const char *str;
	size_t len;

	if (!imap_arg_astring(arg, &str, &len)) {
		imapd_tagged(s, "BAD", "Invalid mailbox name.");
		return -1;
	}
	if (!name_from_wire(s, str, len, out)) {
		imapd_tagged(s, "NO", "[CANNOT] Invalid mailbox name.");
		return -1;
	}
	return 0;
}

int
imapd_append_mailbox(struct imapd_session *s, struct buf *out,
    const char *name)
{
	struct buf tmp;
	int r;

	if (utf8_mode(s))
		return imap_append_string(out, name, strlen(name), 1);
	buf_init(&tmp, MAILBOX_NAME_MAX * 4 + 16);
	if (imap_utf8_to_utf7(name, strlen(name), &tmp) != 1) {
		buf_free(&tmp);
		return imap_append_string(out, name, strlen(name), 0);
	}
	r = imap_append_string(out, buf_cstr(&tmp), tmp.len, 0);
	buf_free(&tmp);
	return r;
}

/* ---- STATUS ---- */

/* "* STATUS name (items)" for the items list; 0, or -1 with the error
 * of the store (*err_r), or -2 for a bad item. */
static int
send_status(struct imapd_session *s, const char *name,
    const struct imap_arg *items, int *merr_r, const char **err_r)
{
	struct mailbox_status st;
	struct buf b;
	const char *sep = "";
	size_t i;
	int r;

	for (i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];

		if (!imap_arg_atom_is(a, "MESSAGES") &&
		    !imap_arg_atom_is(a, "RECENT") &&
		    !imap_arg_atom_is(a, "UIDNEXT") &&
		    !imap_arg_atom_is(a, "UIDVALIDITY") &&
		    !imap_arg_atom_is(a, "UNSEEN") &&
		    !imap_arg_atom_is(a, "HIGHESTMODSEQ") &&
		    !imap_arg_atom_is(a, "SIZE") &&
		    !imap_arg_atom_is(a, "DELETED"))
			return -2;
	}
	r = mailbox_status_get(s->user, name, &st, err_r);
	if (r < 0) {
		*merr_r = r;
		return -1;
	}
	buf_init(&b, IMAPD_LINE_MAX);
	imapd_bputs(&b, "* STATUS ");
	(void)imapd_append_mailbox(s, &b, name);
	imapd_bputs(&b, " (");
	for (i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];

		if (imap_arg_atom_is(a, "MESSAGES"))
			imapd_bprintf(&b, "%sMESSAGES %u", sep, st.messages);
		else if (imap_arg_atom_is(a, "RECENT"))
			imapd_bprintf(&b, "%sRECENT %u", sep, st.recent);
		else if (imap_arg_atom_is(a, "UIDNEXT"))
			imapd_bprintf(&b, "%sUIDNEXT %u", sep, st.uidnext);
		else if (imap_arg_atom_is(a, "UIDVALIDITY"))
			imapd_bprintf(
			    &b, "%sUIDVALIDITY %u", sep, st.uidvalidity);
		else if (imap_arg_atom_is(a, "UNSEEN"))
			imapd_bprintf(&b, "%sUNSEEN %u", sep, st.unseen);
		else if (imap_arg_atom_is(a, "HIGHESTMODSEQ"))
			imapd_bprintf(&b, "%sHIGHESTMODSEQ %llu", sep,
			    (unsigned long long)st.highestmodseq);
		else if (imap_arg_atom_is(a, "SIZE"))
			imapd_bprintf(&b, "%sSIZE %llu", sep,
			    (unsigned long long)st.size);
		else if (imap_arg_atom_is(a, "DELETED"))
			imapd_bprintf(&b, "%sDELETED %u", sep, st.deleted);
		sep = " ";
	}
	imapd_bputs(&b, ")\r\n");
	(void)imapd_send(s, b.data, b.len);
	buf_free(&b);
	return 0;
}

void
imapd_cmd_status(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf name;
	const char *err = NULL;
	int r, merr = 0;

	if (c->count != 2 || c->args[1].type != IMAP_ARG_LIST ||
	    c->args[1].count == 0) {
		imapd_tagged(s, "BAD", "Usage: STATUS mailbox (items)");
		return;
	}
	buf_init(&name, MAILBOX_NAME_MAX + 1);
	if (imapd_arg_mailbox(s, &c->args[0], &name) < 0) {
		buf_free(&name);
		return;
	}
	r = send_status(s, buf_cstr(&name), &c->args[1], &merr, &err);
	if (r == -2)
		imapd_tagged(s, "BAD", "Invalid STATUS item.");
	else if (r < 0)
		imapd_tagged_error(s, merr, err);
	else
		imapd_tagged(s, "OK", "Status completed.");
	buf_free(&name);
}

/* ---- LIST, LSUB ---- */

struct list_req {
	unsigned sel, ret;
	const struct imap_arg *status_items;
	char *patterns[LIST_PATTERNS_MAX];
	size_t npatterns;
	int extended, lsub;
};

static void
list_req_free(struct list_req *q)
{
	size_t i;

	for (i = 0; i < q->npatterns; i++)
		free(q->patterns[i]);
}

/* reference + pattern as one UTF-8 pattern. 1, or 0. */
static int
add_pattern(struct imapd_session *s, struct list_req *q, const char *ref,
    size_t rlen, const struct imap_arg *a)
{
	struct buf wire, utf8;
	const char *p;
	size_t plen;
	int ok;

	if (!imap_arg_astring(a, &p, &plen) || q->npatterns >= LIST_PATTERNS_MAX)
		return 0;
	buf_init(&wire, IMAPD_PATTERN_MAX * 2);
	buf_init(&utf8, IMAPD_PATTERN_MAX * 2);
	/* A pattern that starts at the top ignores the reference's
	 * trailing level (RFC 3501 6.3.8 leaves it to the server; this is
	 * Dovecot's reading). */
	ok = buf_append(&wire, ref, rlen) == 0 &&
	     buf_append(&wire, p, plen) == 0 &&
	     name_from_wire(s, wire.data != NULL ? wire.data : "", wire.len,
	         &utf8);
	if (ok)
		q->patterns[q->npatterns++] = xstrdup(buf_cstr(&utf8));
	buf_free(&wire);
	buf_free(&utf8);
	return ok;
}

static int
parse_list(struct imapd_session *s, struct imapd_cmd *c, struct list_req *q)
{
	const struct imap_arg *a = c->args, *r;
	const char *ref;
	size_t n = c->count, i = 0, k, rlen;

	if (n > 0 && a[0].type == IMAP_ARG_LIST && !q->lsub) {
		q->extended = 1;
		for (k = 0; k < a[0].count; k++) {
			if (imap_arg_atom_is(&a[0].list[k], "SUBSCRIBED"))
				q->sel |= LIST_SEL_SUBSCRIBED;
			else if (imap_arg_atom_is(&a[0].list[k], "SPECIAL-USE"))
				q->sel |= LIST_SEL_SPECIAL_USE;
			else if (imap_arg_atom_is(
			             &a[0].list[k], "RECURSIVEMATCH"))
				q->sel |= LIST_SEL_RECURSIVE;
			else if (!imap_arg_atom_is(&a[0].list[k], "REMOTE"))
				return 0;
		}
		/* RFC 5258 3.1: RECURSIVEMATCH needs another option. */
		if (q->sel == LIST_SEL_RECURSIVE)
			return 0;
		i = 1;
	}
	if (i + 2 > n || !imap_arg_astring(&a[i], &ref, &rlen))
		return 0;
	i++;
	if (a[i].type == IMAP_ARG_LIST && !q->lsub) {
		q->extended = 1;
		for (k = 0; k < a[i].count; k++) {
			if (!add_pattern(s, q, ref, rlen, &a[i].list[k]))
				return 0;
		}
	} else if (!add_pattern(s, q, ref, rlen, &a[i])) {
		return 0;
	}
	i++;
	if (i == n)
		return 1;
	if (q->lsub || i + 2 != n || !imap_arg_atom_is(&a[i], "RETURN") ||
	    a[i + 1].type != IMAP_ARG_LIST)
		return 0;
	q->extended = 1;
	r = &a[i + 1];
	for (k = 0; k < r->count; k++) {
		if (imap_arg_atom_is(&r->list[k], "SUBSCRIBED"))
			q->ret |= LIST_RET_SUBSCRIBED;
		else if (imap_arg_atom_is(&r->list[k], "CHILDREN"))
			q->ret |= LIST_RET_CHILDREN;
		else if (imap_arg_atom_is(&r->list[k], "SPECIAL-USE"))
			q->ret |= LIST_RET_SPECIAL_USE;
		else if (imap_arg_atom_is(&r->list[k], "STATUS") &&
		         k + 1 < r->count &&
		         r->list[k + 1].type == IMAP_ARG_LIST) {
			q->ret |= LIST_RET_STATUS;
			q->status_items = &r->list[++k];
		} else {
			return 0;
		}
	}
	return 1;
}

static int
matches(const struct list_req *q, const char *name)
{
	size_t i;

	for (i = 0; i < q->npatterns; i++) {
		if (imapd_list_match(q->patterns[i], name, MAILBOX_SEP))
			return 1;
	}
	return 0;
}

static const struct {
	unsigned bit;
	const char *name;
} special_uses[] = {
    {MAILBOX_USE_SENT, "\\Sent"},
    {MAILBOX_USE_DRAFTS, "\\Drafts"},
    {MAILBOX_USE_TRASH, "\\Trash"},
    {MAILBOX_USE_JUNK, "\\Junk"},
    {MAILBOX_USE_ARCHIVE, "\\Archive"},
};

/* subscribed_below()'s marks. */
#define BELOW_SUBSCRIBED 0x01 /* a subscribed descendant */
#define BELOW_UNMATCHED  0x02 /* one the patterns do not match */

/*
 * Marks (in the returned array, one byte per info, to free) the folders
 * with subscribed descendants, for RFC 5258 3.5 RECURSIVEMATCH's
 * CHILDINFO and LSUB's '%' parents (RFC 3501 6.3.9). Dovecot's reading,
 * which the RFC leaves open: a folder that is subscribed itself gets
 * CHILDINFO for any subscribed descendant; one that is not is listed
 * only for a descendant the patterns do not match (one they match is
 * answered on its own line).
 */
static unsigned char *
subscribed_below(const struct list_req *q, const struct mailbox_info *infos,
    size_t count)
{
	struct hash *byname = hash_create();
	const struct mailbox_info *up;
	unsigned char *marks = xcalloc(count + 1, 1), mark;
	char *parent, *dot;
	size_t i;

	for (i = 0; i < count; i++)
		(void)hash_put(byname, infos[i].name, (void *)&infos[i]);
	for (i = 0; i < count; i++) {
		if (!(infos[i].attrs & MAILBOX_LIST_SUBSCRIBED))
			continue;
		mark = BELOW_SUBSCRIBED;
		if (!matches(q, infos[i].name))
			mark |= BELOW_UNMATCHED;
		parent = xstrdup(infos[i].name);
		while ((dot = strrchr(parent, MAILBOX_SEP)) != NULL) {
			*dot = '\0';
			up = hash_get(byname, parent);
			if (up != NULL)
				marks[up - infos] |= mark;
		}
		free(parent);
	}
	hash_free(&byname, NULL);
	return marks;
}

static void
list_one(struct imapd_session *s, const struct list_req *q,
    const struct mailbox_info *info, int childinfo)
{
	struct buf *b = &s->resp;
	const char *sep = "", *err;
	size_t k;
	int merr;

	buf_reset(b);
	imapd_bprintf(b, "* %s (", q->lsub ? "LSUB" : "LIST");
#define ATTR(text)                                                            \
	do {                                                                  \
		imapd_bprintf(b, "%s%s", sep, text);                       \
		sep = " ";                                                    \
	} while (0)
	if (q->lsub) {
		/* Dovecot's LSUB: () for a subscription, whether the folder
		 * is there or not, \Noselect for a level shown only for a
		 * subscription below it. */
		if (!(info->attrs & MAILBOX_LIST_SUBSCRIBED))
			ATTR("\\Noselect");
	} else if (info->attrs & MAILBOX_LIST_NONEXISTENT)
		ATTR(q->extended ? "\\NonExistent" : "\\Noselect");
	else if (info->attrs & MAILBOX_LIST_NOSELECT)
		ATTR("\\Noselect");
	if (!q->lsub) {
		if (info->attrs & MAILBOX_LIST_NOINFERIORS)
			ATTR("\\NoInferiors");
		if (info->attrs & MAILBOX_LIST_CHILDREN)
			ATTR("\\HasChildren");
		else if (!(info->attrs & MAILBOX_LIST_NOINFERIORS))
			ATTR("\\HasNoChildren");
		if ((info->attrs & MAILBOX_LIST_SUBSCRIBED) &&
		    ((q->sel & LIST_SEL_SUBSCRIBED) ||
		        (q->ret & LIST_RET_SUBSCRIBED)))
			ATTR("\\Subscribed");
		for (k = 0; k < sizeof(special_uses) / sizeof(special_uses[0]);
		     k++) {
			if (info->special_use & special_uses[k].bit)
				ATTR(special_uses[k].name);
		}
	}
#undef ATTR
	imapd_bprintf(b, ") \"%c\" ", MAILBOX_SEP);
	(void)imapd_append_mailbox(s, b, info->name);
	if (childinfo)
		imapd_bputs(b, " (CHILDINFO (\"SUBSCRIBED\"))");
	imapd_bputs(b, "\r\n");
	(void)imapd_send(s, b->data, b->len);
	if ((q->ret & LIST_RET_STATUS) &&
	    !(info->attrs & (MAILBOX_LIST_NOSELECT | MAILBOX_LIST_NONEXISTENT)))
		(void)send_status(s, info->name, q->status_items, &merr, &err);
}

static void
do_list(struct imapd_session *s, struct imapd_cmd *c, int lsub)
{
	struct mailbox_info *infos = NULL;
	struct list_req q;
	unsigned char *below = NULL;
	const char *err;
	size_t count = 0, i;
	int r, childinfo;

	memset(&q, 0, sizeof(q));
	q.lsub = lsub;
	if (!parse_list(s, c, &q)) {
		list_req_free(&q);
		imapd_tagged(s, "BAD", "Invalid %s arguments.",
		    lsub ? "LSUB" : "LIST");
		return;
	}
	if (lsub)
		q.sel = LIST_SEL_SUBSCRIBED;
	/* RFC 3501 6.3.8: "" asks for the separator and the root. */
	if (!q.extended && q.npatterns == 1 && q.patterns[0][0] == '\0') {
		if (!lsub)
			imapd_untagged(s, "LIST (\\Noselect) \"%c\" \"\"",
			    MAILBOX_SEP);
		list_req_free(&q);
		imapd_tagged(s, "OK", "List completed.");
		return;
	}
	r = mailbox_list(s->user, &infos, &count, &err);
	if (r < 0) {
		list_req_free(&q);
		imapd_tagged_error(s, r, err);
		return;
	}
	if (lsub || ((q.sel & LIST_SEL_SUBSCRIBED) &&
	                (q.sel & LIST_SEL_RECURSIVE)))
		below = subscribed_below(&q, infos, count);
	for (i = 0; i < count && !s->broken; i++) {
		const struct mailbox_info *info = &infos[i];

		childinfo = 0;
		if (below != NULL)
			childinfo = below[i] & (info->attrs & MAILBOX_LIST_SUBSCRIBED
			                               ? BELOW_SUBSCRIBED
			                               : BELOW_UNMATCHED);
		if ((q.sel & LIST_SEL_SUBSCRIBED) &&
		    !(info->attrs & MAILBOX_LIST_SUBSCRIBED) && !childinfo)
			continue;
		if (!(q.sel & LIST_SEL_SUBSCRIBED) &&
		    (info->attrs & MAILBOX_LIST_NONEXISTENT) &&
		    !(info->attrs & MAILBOX_LIST_CHILDREN))
			continue; /* a subscription of a folder that is gone */
		if ((q.sel & LIST_SEL_SPECIAL_USE) && info->special_use == 0)
			continue;
		if (!matches(&q, info->name))
			continue;
		list_one(s, &q, info, childinfo && !lsub);
	}
	free(below);
	mailbox_list_free(infos, count);
	list_req_free(&q);
	imapd_tagged(s, "OK", "%s completed.", lsub ? "Lsub" : "List");
}

void
imapd_cmd_list(struct imapd_session *s, struct imapd_cmd *c)
{
	do_list(s, c, 0);
}

void
imapd_cmd_lsub(struct imapd_session *s, struct imapd_cmd *c)
{
	do_list(s, c, 1);
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE ---- */

static int
one_name(struct imapd_session *s, struct imapd_cmd *c, size_t nargs,
    struct buf *name)
{
	if (c->count != nargs) {
		imapd_tagged(s, "BAD", "Usage: %s mailbox%s",
		    log_sanitize(c->name, 16), nargs == 2 ? " newname" : "");
		return -1;
	}
	buf_init(name, MAILBOX_NAME_MAX * 4 + 1);
	if (imapd_arg_mailbox(s, &c->args[0], name) < 0) {
		buf_free(name);
		return -1;
	}
	return 0;
}

void
imapd_cmd_create(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf name;
	const char *err;
	int r;

	if (one_name(s, c, 1, &name) < 0)
		return;
	/* RFC 3501 6.3.3: "foo." names the level it will hold. */
	if (name.len > 1 && name.data[name.len - 1] == MAILBOX_SEP)
		buf_truncate(&name, name.len - 1);
	r = mailbox_create(s->user, buf_cstr(&name), &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Create completed.");
	buf_free(&name);
}

void
imapd_cmd_delete(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf name;
	const char *err;
	int r;

	if (one_name(s, c, 1, &name) < 0)
		return;
	if (s->box != NULL && strcmp(mailbox_name(s->box), buf_cstr(&name)) == 0) {
		/* Dovecot's answer too: the client unselects first. */
		imapd_tagged(s, "NO", "[INUSE] Can't delete the selected "
		                      "mailbox.");
		buf_free(&name);
		return;
	}
	r = mailbox_delete(s->user, buf_cstr(&name), &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Delete completed.");
	buf_free(&name);
}

void
imapd_cmd_rename(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf from, to;
	const char *err;
	int r;

	if (one_name(s, c, 2, &from) < 0)
		return;
	buf_init(&to, MAILBOX_NAME_MAX * 4 + 1);
	if (imapd_arg_mailbox(s, &c->args[1], &to) < 0) {
		buf_free(&from);
		buf_free(&to);
		return;
	}
	r = mailbox_rename(s->user, buf_cstr(&from), buf_cstr(&to), &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Rename completed.");
	buf_free(&from);
	buf_free(&to);
}

static void
do_subscribe(struct imapd_session *s, struct imapd_cmd *c, int on)
{
	struct buf name;
	const char *err;
	int r;

	if (one_name(s, c, 1, &name) < 0)
		return;
	r = mailbox_subscribe(s->user, buf_cstr(&name), on, &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "%s completed.",
		    on ? "Subscribe" : "Unsubscribe");
	buf_free(&name);
}

void
imapd_cmd_subscribe(struct imapd_session *s, struct imapd_cmd *c)
{
	do_subscribe(s, c, 1);
}

void
imapd_cmd_unsubscribe(struct imapd_session *s, struct imapd_cmd *c)
{
	do_subscribe(s, c, 0);
}
