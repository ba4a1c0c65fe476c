/* SPDX-License-Identifier: MIT */
/*
 * The commands that change mail: STORE (RFC 9051 6.4.6, UNCHANGEDSINCE
 * of RFC 7162 3.1.3), COPY with COPYUID (RFC 4315), MOVE (RFC 6851),
 * EXPUNGE and UID EXPUNGE, APPEND with APPENDUID (RFC 4315) within the
 * message size limit and the quota ([TOOBIG], [OVERQUOTA] of RFC 5530 /
 * RFC 9208), and the read side of QUOTA (RFC 9208: GETQUOTA,
 * GETQUOTAROOT; SETQUOTA is the administrator's, through ternuser).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "imapd.h"

/* RFC 9208 5.1: STORAGE counts units of 1024 octets. */
#define QUOTA_KIB 1024

/* ---- STORE ---- */

enum store_mode {
	STORE_REPLACE,
	STORE_ADD,
	STORE_REMOVE,
};

void
imapd_cmd_store(struct imapd_session *s, struct imapd_cmd *c)
{
	struct imap_arg list;
	struct imapd_seqs set;
	struct buf out, modified;
	const char *item, *err = NULL;
	enum store_mode mode;
	uint64_t unchangedsince = 0, modseq;
	uint32_t kw = 0, nkw, *mod_nums;
	uint8_t fl = 0, nfl;
	size_t i = 1, k, nmod = 0;
	char *end;
	int silent, created = 0, r, failed = 0;

	if (c->count >= 2 && c->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &c->args[1];

		if (m->count != 2 ||
		    !imap_arg_atom_is(&m->list[0], "UNCHANGEDSINCE") ||
		    m->list[1].type != IMAP_ARG_ATOM) {
			imapd_tagged(s, "BAD", "Invalid STORE modifier.");
			return;
		}
		errno = 0;
		unchangedsince = strtoull(m->list[1].str, &end, 10);
		if (errno != 0 || *end != '\0') {
			imapd_tagged(s, "BAD", "Invalid UNCHANGEDSINCE.");
			return;
		}
		s->enabled |= IMAPD_EN_CONDSTORE;
		i = 2;
	}
	if (c->count < i + 2 || c->args[0].type != IMAP_ARG_ATOM ||
	    c->args[i].type != IMAP_ARG_ATOM) {
		imapd_tagged(s, "BAD", "Usage: STORE sequence-set item flags");
		return;
	}
	item = c->args[i].str;
	mode = STORE_REPLACE;
	if (*item == '+' || *item == '-') {
		mode = *item == '+' ? STORE_ADD : STORE_REMOVE;
		item++;
	}
	if (strcasecmp(item, "FLAGS") == 0)
		silent = 0;
	else if (strcasecmp(item, "FLAGS.SILENT") == 0)
		silent = 1;
	else {
		imapd_tagged(s, "BAD", "Invalid STORE item.");
		return;
	}
	if (s->readonly) {
		imapd_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	/* Flags as one list, or as atoms one after another. */
	if (c->count == i + 2 && c->args[i + 1].type == IMAP_ARG_LIST) {
		list = c->args[i + 1];
	} else {
		memset(&list, 0, sizeof(list));
		list.type = IMAP_ARG_LIST;
		list.list = &c->args[i + 1];
		list.count = c->count - i - 1;
	}
	/* \Recent is the server's (RFC 3501 2.3.2): a BAD, as Dovecot
	 * answers, not an OK that changed nothing. */
	for (k = 0; k < list.count; k++) {
		if (imap_arg_atom_is(&list.list[k], "\\Recent")) {
			imapd_tagged(s, "BAD", "Invalid system flag \\Recent.");
			return;
		}
	}
	r = imapd_parse_flags(
	    s->box, &list, mode != STORE_REMOVE, &fl, &kw, &created, &err);
	if (r <= 0) {
		if (created)
			imapd_send_flags(s);
		if (r < 0)
			imapd_tagged_error(s, r, err);
		else
			imapd_tagged(s, "BAD", "%s", err);
		return;
	}
	if (!imapd_seqs_resolve(s, c->args[0].str, c->uid, &set)) {
		imapd_tagged(s, "BAD", "Invalid sequence set.");
		return;
	}
	if (created)
		imapd_send_flags(s);
	mod_nums = xmalloc((set.count + 1) * sizeof(*mod_nums));
	buf_init(&out, IMAPD_LINE_MAX);
	for (k = 0; k < set.count && !s->broken; k++) {
		uint32_t seq = set.seqs[k];
		const struct mailbox_msg *m = mailbox_msg(s->box, seq);
		int changed = 0;

		if (mailbox_msg_gone(s->box, seq))
			continue;
		nfl = m->flags & MAILBOX_F_STORED;
		nkw = m->keywords;
		if (mode == STORE_REPLACE) {
			nfl = fl;
			nkw = kw;
		} else if (mode == STORE_ADD) {
			nfl |= fl;
			nkw |= kw;
		} else {
			nfl &= (uint8_t)~fl;
			nkw &= ~kw;
		}
		if (unchangedsince > 0 && m->modseq > unchangedsince) {
			mod_nums[nmod++] = c->uid ? m->uid : seq;
			continue;
		}
		if (nfl != (m->flags & MAILBOX_F_STORED) || nkw != m->keywords) {
			r = mailbox_store(s->box, seq, nfl, nkw, unchangedsince,
			    &modseq, &err);
			if (r == MAILBOX_ERR_MODIFIED) {
				mod_nums[nmod++] = c->uid ? m->uid : seq;
				continue;
			}
			if (r == MAILBOX_ERR_EXPUNGED)
				continue;
			if (r < 0) {
				failed = r;
				break;
			}
			m = mailbox_msg(s->box, seq);
			changed = 1;
		}
		/* RFC 7162 3.1.3 (its example 6) and 3.2: under CONDSTORE
		 * .SILENT still reports the new MODSEQ of what it changed,
		 * without FLAGS; Dovecot does so with or without
		 * UNCHANGEDSINCE. */
		if (silent && (!changed || !(s->enabled & IMAPD_EN_CONDSTORE)))
			continue;
		buf_reset(&out);
		imapd_bprintf(&out, "* %u FETCH (", seq);
		if (c->uid || (s->enabled & IMAPD_EN_QRESYNC))
			imapd_bprintf(&out, "UID %u ", m->uid);
		if (!silent) {
			imapd_bputs(&out, "FLAGS (");
			(void)imapd_append_flags(&out, s->box,
			    IMAPD_SHOWN_FLAGS(s, m->flags), m->keywords);
			imapd_bputs(&out, ") ");
		}
		if (s->enabled & IMAPD_EN_CONDSTORE)
			imapd_bprintf(&out, "MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
		else
			buf_truncate(&out, out.len - 1);
		imapd_bputs(&out, ")\r\n");
		(void)imapd_send(s, out.data, out.len);
	}
	buf_free(&out);
	imapd_seqs_free(&set);
	if (failed < 0) {
		free(mod_nums);
		imapd_tagged_error(s, failed, err);
		return;
	}
	if (nmod > 0) {
		buf_init(&modified, nmod * 24 + 64);
		(void)imap_seqset_format(&modified, mod_nums, nmod);
		imapd_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed.",
		    buf_cstr(&modified));
		buf_free(&modified);
	} else {
		imapd_tagged(s, "OK", "Store completed.");
	}
	free(mod_nums);
}

/* ---- COPY, MOVE ---- */

static void
copy_or_move(struct imapd_session *s, struct imapd_cmd *c, int move)
{
	struct imapd_seqs set;
	struct buf name, codes;
	uint32_t uidvalidity = 0, *src, *dst;
	const char *err;
	size_t k;
	int r;

	if (c->count != 2 || c->args[0].type != IMAP_ARG_ATOM) {
		imapd_tagged(s, "BAD", "Usage: %s sequence-set mailbox",
		    move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->readonly) {
		imapd_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	buf_init(&name, MAILBOX_NAME_MAX * 4 + 1);
	if (imapd_arg_mailbox(s, &c->args[1], &name) < 0) {
		buf_free(&name);
		return;
	}
	if (!imapd_seqs_resolve(s, c->args[0].str, c->uid, &set)) {
		buf_free(&name);
		imapd_tagged(s, "BAD", "Invalid sequence set.");
		return;
	}
	/* Deferred expunges cannot be copied: leave them out. */
	for (k = 0; k < set.count;) {
		if (mailbox_msg_gone(s->box, set.seqs[k]))
			memmove(&set.seqs[k], &set.seqs[k + 1],
			    (set.count - k - 1) * sizeof(*set.seqs)),
			    set.count--;
		else
			k++;
	}
	if (set.count == 0) {
		buf_free(&name);
		imapd_seqs_free(&set);
		imapd_tagged(s, "OK", "No messages found.");
		return;
	}
	src = xmalloc(set.count * sizeof(*src));
	dst = xmalloc(set.count * sizeof(*dst));
	for (k = 0; k < set.count; k++)
		src[k] = mailbox_msg(s->box, set.seqs[k])->uid;
	r = mailbox_copy(s->box, set.seqs, set.count, buf_cstr(&name),
	    &uidvalidity, dst, &err);
	if (r == MAILBOX_ERR_NONEXISTENT) {
		imapd_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist.");
	} else if (r < 0) {
		imapd_tagged_error(s, r, err);
	} else {
		buf_init(&codes, set.count * 24 + 64);
		imapd_bprintf(&codes, "COPYUID %u ", uidvalidity);
		(void)imap_seqset_format(&codes, src, set.count);
		imapd_bputc(&codes, ' ');
		(void)imap_seqset_format(&codes, dst, set.count);
		if (!move) {
			imapd_tagged(s, "OK", "[%s] Copy completed.",
			    buf_cstr(&codes));
		} else {
			/* RFC 6851 4.3: COPYUID untagged, before the
			 * expunges. */
			imapd_untagged(s, "OK [%s] Moved UIDs.",
			    buf_cstr(&codes));
			r = mailbox_expunge(s->box, src, set.count, &err);
			if (r < 0)
				imapd_tagged_error(s, r, err);
			else
				imapd_tagged(s, "OK", "Move completed.");
		}
		buf_free(&codes);
	}
	free(src);
	free(dst);
	buf_free(&name);
	imapd_seqs_free(&set);
}

void
imapd_cmd_copy(struct imapd_session *s, struct imapd_cmd *c)
{
	copy_or_move(s, c, 0);
}

void
imapd_cmd_move(struct imapd_session *s, struct imapd_cmd *c)
{
	copy_or_move(s, c, 1);
}

/* ---- EXPUNGE ---- */

void
imapd_cmd_expunge(struct imapd_session *s, struct imapd_cmd *c)
{
	struct imapd_seqs set;
	uint32_t *uids, n = mailbox_count(s->box), seq;
	const char *err;
	size_t k = 0, j;
	int r = 0;

	if (s->readonly) {
		imapd_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	memset(&set, 0, sizeof(set));
	if (c->uid) {
		if (c->count != 1 || c->args[0].type != IMAP_ARG_ATOM ||
		    !imapd_seqs_resolve(s, c->args[0].str, 1, &set)) {
			imapd_tagged(s, "BAD", "Usage: UID EXPUNGE uid-set");
			return;
		}
	} else if (c->count != 0) {
		imapd_tagged(s, "BAD", "EXPUNGE takes no arguments.");
		return;
	}
	uids = xmalloc(((size_t)n + 1) * sizeof(*uids));
	if (c->uid) {
		for (j = 0; j < set.count; j++) {
			const struct mailbox_msg *m =
			    mailbox_msg(s->box, set.seqs[j]);

			if (m->flags & MAILBOX_F_DELETED)
				uids[k++] = m->uid;
		}
	} else {
		for (seq = 1; seq <= n; seq++) {
			const struct mailbox_msg *m = mailbox_msg(s->box, seq);

			if (m->flags & MAILBOX_F_DELETED)
				uids[k++] = m->uid;
		}
	}
	if (k > 0)
		r = mailbox_expunge(s->box, uids, k, &err);
	free(uids);
	imapd_seqs_free(&set);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Expunge completed.");
}

/* ---- APPEND ---- */

void
imapd_cmd_append(struct imapd_session *s, struct imapd_cmd *c)
{
	const struct imap_arg *msg, *a;
	const char *kwnames[MAILBOX_KEYWORDS_MAX], *err = NULL, *date;
	struct buf name;
	uint32_t uidvalidity = 0, uid = 0;
	int64_t received = 0;
	uint8_t flags = 0, bit;
	size_t i, nkw = 0, dlen;
	int tz, r;

	if (c->count < 2 || c->count > 4) {
		imapd_tagged(s, "BAD", "Usage: APPEND mailbox [(flags)] "
		                       "[date-time] literal");
		return;
	}
	msg = &c->args[c->count - 1];
	if (msg->type != IMAP_ARG_LITERAL && msg->type != IMAP_ARG_LITERAL8) {
		imapd_tagged(s, "BAD", "APPEND needs the message as a literal.");
		return;
	}
	for (i = 1; i + 1 < c->count; i++) {
		a = &c->args[i];
		if (a->type == IMAP_ARG_LIST && i == 1) {
			size_t k;

			for (k = 0; k < a->count; k++) {
				const struct imap_arg *f = &a->list[k];

				if (f->type != IMAP_ARG_ATOM)
					goto bad_flags;
				if (f->str[0] == '\\') {
					if (!imapd_flag_bit(f->str, f->len,
					        &bit) ||
					    bit == MAILBOX_F_RECENT)
						goto bad_flags;
					flags |= bit;
				} else if (f->len > MAILBOX_KEYWORD_LEN_MAX ||
				           strpbrk(f->str, "(){%*\"\\] ") !=
				               NULL) {
					goto bad_flags;
				} else if (nkw == MAILBOX_KEYWORDS_MAX) {
					/* Valid, but Maildir has 26 letters
					 * (STORE answers the same). */
					imapd_tagged(s, "NO", "[LIMIT] Too many "
					                      "keywords.");
					return;
				} else {
					kwnames[nkw++] = f->str;
				}
			}
		} else if (a->type == IMAP_ARG_STRING) {
			if (!imap_arg_astring(a, &date, &dlen) ||
			    !imap_datetime_parse(date, &received, &tz)) {
				imapd_tagged(s, "BAD", "Invalid date-time.");
				return;
			}
		} else {
			imapd_tagged(s, "BAD", "Invalid APPEND arguments.");
			return;
		}
	}
	if (msg->len > (size_t)var_message_size_limit) {
		imapd_tagged(s, "NO", "[TOOBIG] Message is too large.");
		return;
	}
	if (msg->len == 0) {
		imapd_tagged(s, "NO", "Can't save a zero byte message.");
		return;
	}
	buf_init(&name, MAILBOX_NAME_MAX * 4 + 1);
	if (imapd_arg_mailbox(s, &c->args[0], &name) < 0) {
		buf_free(&name);
		return;
	}
	r = mailbox_append(s->user, buf_cstr(&name), msg->str, msg->len, flags,
	    kwnames, nkw, received, &uidvalidity, &uid, &err);
	buf_free(&name);
	if (r == MAILBOX_ERR_NONEXISTENT)
		imapd_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist.");
	else if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "[APPENDUID %u %u] Append completed.",
		    uidvalidity, uid);
	return;
bad_flags:
	imapd_tagged(s, "BAD", "Invalid flags.");
}

/* ---- QUOTA ---- */

/* "* QUOTA "" (...)"; 0, or a mailbox error with *err_r. */
static int
send_quota(struct imapd_session *s, const char **err_r)
{
	struct maildir_usage used;
	struct maildir_quota limit;
	const char *sep = "";
	char line[IMAPD_LINE_MAX];
	size_t n = 0;
	int r;

	/* No limits: no resource to report, and no maildirsize to read. */
	if (s->quota.bytes == 0 && s->quota.count == 0) {
		imapd_untagged(s, "QUOTA \"\" ()");
		return 0;
	}
	r = mailbox_quota_get(s->user, &used, &limit, err_r);
	if (r < 0)
		return r;
	n += (size_t)snprintf(line + n, sizeof(line) - n, "QUOTA \"\" (");
	if (limit.bytes > 0) {
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    "STORAGE %llu %llu",
		    (unsigned long long)((used.bytes + QUOTA_KIB - 1) /
		                         QUOTA_KIB),
		    (unsigned long long)(limit.bytes / QUOTA_KIB));
		sep = " ";
	}
	if (limit.count > 0)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    "%sMESSAGE %llu %llu", sep,
		    (unsigned long long)used.count,
		    (unsigned long long)limit.count);
	imapd_untagged(s, "%s)", line);
	return 0;
}

void
imapd_cmd_getquotaroot(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf name, b;
	const char *err;
	int r;

	if (c->count != 1) {
		imapd_tagged(s, "BAD", "Usage: GETQUOTAROOT mailbox");
		return;
	}
	buf_init(&name, MAILBOX_NAME_MAX * 4 + 1);
	if (imapd_arg_mailbox(s, &c->args[0], &name) < 0) {
		buf_free(&name);
		return;
	}
	buf_init(&b, IMAPD_LINE_MAX);
	imapd_bputs(&b, "* QUOTAROOT ");
	(void)imapd_append_mailbox(s, &b, buf_cstr(&name));
	imapd_bputs(&b, " \"\"\r\n");
	(void)imapd_send(s, b.data, b.len);
	buf_free(&b);
	buf_free(&name);
	r = send_quota(s, &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Getquotaroot completed.");
}

void
imapd_cmd_getquota(struct imapd_session *s, struct imapd_cmd *c)
{
	const char *root, *err;
	size_t len;
	int r;

	if (c->count != 1 || !imap_arg_astring(&c->args[0], &root, &len)) {
		imapd_tagged(s, "BAD", "Usage: GETQUOTA root");
		return;
	}
	if (len != 0) {
		imapd_tagged(s, "NO", "[NONEXISTENT] No such quota root.");
		return;
	}
	r = send_quota(s, &err);
	if (r < 0)
		imapd_tagged_error(s, r, err);
	else
		imapd_tagged(s, "OK", "Getquota completed.");
}

void
imapd_cmd_setquota(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator.");
}
