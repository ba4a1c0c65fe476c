/* SPDX-License-Identifier: MIT */
/*
 * The selected state: SELECT and EXAMINE (RFC 9051 6.3.2, with RFC 7162
 * CONDSTORE and QRESYNC parameters), CLOSE, UNSELECT (RFC 3691), IDLE
 * (RFC 2177), and the untagged updates another session's changes cause
 * (EXISTS, RECENT, EXPUNGE or VANISHED, FETCH FLAGS), sent when RFC 9051
 * 7 allows: before a tagged answer, never an EXPUNGE while answering
 * FETCH, STORE or SEARCH (RFC 3501 7.4.1).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "imapd.h"

/* A folder is looked at during IDLE at least this often, for changes
 * inotify cannot see (an NFS-mounted store), as Dovecot's
 * mailbox_idle_check_interval. */
#define IMAPD_IDLE_CHECK_MS (30 * 1000)
#define IMAPD_MS_PER_SEC 1000
/* "DONE" and some slack: a longer line ends the IDLE as a BAD. */
#define IMAPD_IDLE_LINE_MAX 64

void
imapd_send_flags(struct imapd_session *s)
{
	struct buf *b = &s->resp;

	buf_reset(b);
	imapd_bputs(b, "* FLAGS (");
	(void)imapd_append_flags(b, s->box, MAILBOX_F_STORED, 0xffffffffU);
	imapd_bputs(b, ")\r\n* OK [PERMANENTFLAGS (");
	if (s->readonly) {
		imapd_bputs(b, ")] Read-only mailbox.\r\n");
	} else {
		(void)imapd_append_flags(b, s->box, MAILBOX_F_STORED,
		    0xffffffffU);
		if (mailbox_keyword_count(s->box) < MAILBOX_KEYWORDS_MAX)
			imapd_bputs(b, " \\*");
		imapd_bputs(b, ")] Flags permitted.\r\n");
	}
	(void)imapd_send(s, b->data, b->len);
}

/* ---- sync ---- */

static void
sync_expunged(void *ctx, uint32_t seq, uint32_t uid)
{
	struct imapd_session *s = ctx;

	if (s->enabled & IMAPD_EN_QRESYNC) {
		if (s->vanished_count == s->vanished_cap) {
			s->vanished_cap = s->vanished_cap * 2 + 64;
			s->vanished = xrealloc(s->vanished,
			    s->vanished_cap * sizeof(*s->vanished));
		}
		s->vanished[s->vanished_count++] = uid;
		return;
	}
	imapd_untagged(s, "%u EXPUNGE", seq);
}

static void
sync_changed(void *ctx, uint32_t seq)
{
	struct imapd_session *s = ctx;
	const struct mailbox_msg *m = mailbox_msg(s->box, seq);
	struct buf *b = &s->resp;

	buf_reset(b);
	imapd_bprintf(b, "* %u FETCH (", seq);
	/* RFC 7162 3.2.4: with QRESYNC the UID is always there. */
	if (s->enabled & IMAPD_EN_QRESYNC)
		imapd_bprintf(b, "UID %u ", m->uid);
	imapd_bputs(b, "FLAGS (");
	(void)imapd_append_flags(
	    b, s->box, IMAPD_SHOWN_FLAGS(s, m->flags), m->keywords);
	imapd_bputc(b, ')');
	if (s->enabled & IMAPD_EN_CONDSTORE)
		imapd_bprintf(b, " MODSEQ (%llu)",
		    (unsigned long long)m->modseq);
	imapd_bputs(b, ")\r\n");
	(void)imapd_send(s, b->data, b->len);
}

static void
sync_keywords(void *ctx)
{
	imapd_send_flags(ctx);
}

static void
sync_exists(void *ctx, uint32_t count, uint32_t recent)
{
	struct imapd_session *s = ctx;

	imapd_untagged(s, "%u EXISTS", count);
	if (!(s->enabled & IMAPD_EN_REV2))
		imapd_untagged(s, "%u RECENT", recent);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* "* VANISHED [(EARLIER) ]1:4,7" for n sorted UIDs. */
static void
send_vanished(struct imapd_session *s, uint32_t *uids, size_t n, int earlier)
{
	struct buf b;

	if (n == 0)
		return;
	qsort(uids, n, sizeof(*uids), cmp_u32);
	buf_init(&b, (size_t)n * 24 + 64);
	imapd_bprintf(&b, "* VANISHED %s", earlier ? "(EARLIER) " : "");
	(void)imap_seqset_format(&b, uids, n);
	imapd_bputs(&b, "\r\n");
	(void)imapd_send(s, b.data, b.len);
	buf_free(&b);
}

void
imapd_sync(struct imapd_session *s, unsigned flags)
{
	static const struct mailbox_sync_ops ops = {
	    sync_expunged,
	    sync_changed,
	    sync_keywords,
	    sync_exists,
	};
	const char *err;
	int ret;

	if (s->box == NULL)
		return;
	s->vanished_count = 0;
	ret = mailbox_sync(s->box, flags, &ops, s, &err);
	if (ret == MAILBOX_ERR_NONEXISTENT) {
		/* Dovecot's answer: the session has nothing left to show, and
		 * a tagged NO would leave the client in a dead folder. */
		imapd_untagged(
		    s, "BYE Selected mailbox was deleted, have to disconnect.");
		imapd_log(LOG_INFO,
		    "Disconnected: Selected mailbox %s was deleted",
		    log_sanitize(mailbox_name(s->box), MAILBOX_NAME_MAX));
		(void)imapd_flush(s);
		s->box_deleted = 1;
		s->broken = 1;
		return;
	}
	if (ret < 0)
		imapd_log(LOG_ERR, "sync %s: %s",
		    log_sanitize(mailbox_name(s->box), MAILBOX_NAME_MAX), err);
	send_vanished(s, s->vanished, s->vanished_count, 0);
	s->vanished_count = 0;
}

void
imapd_close_box(struct imapd_session *s)
{
	if (s->box == NULL)
		return;
	mailbox_close(&s->box);
	s->box = NULL;
	s->saved_count = 0;
	if (s->state == IMAPD_STATE_SELECTED) {
		imapd_log(LOG_DEBUG, "state SELECTED -> AUTHENTICATED");
		s->state = IMAPD_STATE_AUTH;
	}
}

/* ---- SELECT / EXAMINE ---- */

/* Appends to b the UIDs of [lo, hi] not in the view, as ranges. */
static void
append_missing(struct imapd_session *s, struct buf *b, uint32_t lo,
    uint32_t hi, int *first)
{
	uint32_t seq = imapd_seq_lower(s->box, lo), n = mailbox_count(s->box);
	uint32_t next = lo, u;

	for (; next <= hi && next != 0; seq++) {
		u = seq <= n ? mailbox_msg(s->box, seq)->uid : UINT32_MAX;
		if (u > hi)
			u = hi == UINT32_MAX ? hi : hi + 1;
		if (u > next) {
			imapd_bprintf(b, "%s%u", *first ? "" : ",", next);
			if (u - 1 > next)
				imapd_bprintf(b, ":%u", u - 1);
			*first = 0;
		}
		if (u == UINT32_MAX || u > hi)
			break;
		next = u + 1;
	}
}

void
imapd_send_vanished_earlier(
    struct imapd_session *s, const struct imap_seqset *set)
{
	struct mailbox_status st;
	struct buf b;
	uint32_t lo, hi, t;
	size_t i;
	int first = 1;

	mailbox_view_status(s->box, &st);
	buf_init(&b, IMAPD_RESP_SLACK);
	imapd_bputs(&b, "* VANISHED (EARLIER) ");
	for (i = 0; i < set->count; i++) {
		lo = set->ranges[i].lo;
		hi = set->ranges[i].hi;
		if (lo > hi) {
			t = lo;
			lo = hi;
			hi = t;
		}
		/* UIDs never given out cannot have vanished. */
		if (hi >= st.uidnext)
			hi = st.uidnext - 1;
		if (lo > hi || lo == 0)
			continue;
		append_missing(s, &b, lo, hi, &first);
	}
	if (!first) {
		imapd_bputs(&b, "\r\n");
		(void)imapd_send(s, b.data, b.len);
	}
	buf_free(&b);
}

/*
 * (QRESYNC (uidvalidity modseq [known-uids [seq-match]])) of RFC 7162
 * 3.2.5: 1 with the values, 0 when absent, -1 after a BAD.
 */
static int
parse_select_params(struct imapd_session *s, const struct imap_arg *list,
    uint32_t *uidvalidity_r, uint64_t *modseq_r, struct imap_seqset *known,
    int *condstore_r)
{
	const struct imap_arg *q;
	char *end;
	size_t i;
	int have = 0, dollar;

	*condstore_r = 0;
	for (i = 0; i < list->count; i++) {
		if (imap_arg_atom_is(&list->list[i], "CONDSTORE")) {
			*condstore_r = 1;
			continue;
		}
		if (!imap_arg_atom_is(&list->list[i], "QRESYNC") ||
		    i + 1 >= list->count ||
		    list->list[i + 1].type != IMAP_ARG_LIST) {
			imapd_tagged(s, "BAD", "Unknown SELECT parameter.");
			return -1;
		}
		if (!(s->enabled & IMAPD_EN_QRESYNC)) {
			imapd_tagged(s, "BAD", "QRESYNC is not enabled.");
			return -1;
		}
		q = &list->list[++i];
		if (q->count < 2 || q->list[0].type != IMAP_ARG_ATOM ||
		    q->list[1].type != IMAP_ARG_ATOM) {
			imapd_tagged(s, "BAD", "Invalid QRESYNC parameters.");
			return -1;
		}
		errno = 0;
		*uidvalidity_r = (uint32_t)strtoul(q->list[0].str, &end, 10);
		if (errno != 0 || *end != '\0')
			goto bad;
		*modseq_r = strtoull(q->list[1].str, &end, 10);
		if (errno != 0 || *end != '\0')
			goto bad;
		if (q->count >= 3 && (q->list[2].type != IMAP_ARG_ATOM ||
		                         !imap_seqset_parse(q->list[2].str,
		                             known, 0, &dollar)))
			goto bad;
		have = 1;
	}
	return have;
bad:
	imapd_tagged(s, "BAD", "Invalid QRESYNC parameters.");
	return -1;
}

void
imapd_cmd_select(struct imapd_session *s, struct imapd_cmd *c)
{
	struct mailbox_status st;
	struct imap_seqset known;
	struct buf name;
	const char *err;
	uint64_t modseq = 0;
	uint32_t uidvalidity = 0, seq, n;
	int examine = strcasecmp(c->name, "EXAMINE") == 0, r, qr = 0, cs = 0;

	memset(&known, 0, sizeof(known));
	if (c->count < 1 || c->count > 2 ||
	    (c->count == 2 && c->args[1].type != IMAP_ARG_LIST)) {
		imapd_tagged(s, "BAD", "Usage: %s mailbox [(parameters)]",
		    examine ? "EXAMINE" : "SELECT");
		return;
	}
	if (c->count == 2) {
		qr = parse_select_params(
		    s, &c->args[1], &uidvalidity, &modseq, &known, &cs);
		if (qr < 0) {
			imap_seqset_free(&known);
			return;
		}
	}
	buf_init(&name, MAILBOX_NAME_MAX + 1);
	if (imapd_arg_mailbox(s, &c->args[0], &name) < 0) {
		buf_free(&name);
		imap_seqset_free(&known);
		return;
	}
	if (s->box != NULL) {
		imapd_close_box(s);
		/* RFC 7162 3.2.11, RFC 9051 7.1: the old one is gone. */
		imapd_untagged(s, "OK [CLOSED] Previous mailbox closed.");
	}
	if (cs)
		s->enabled |= IMAPD_EN_CONDSTORE;
	r = mailbox_open(s->user, buf_cstr(&name),
	    examine ? MAILBOX_OPEN_READONLY : 0, &s->box, &err);
	if (r < 0) {
		s->box = NULL;
		imapd_tagged_error(s, r, err);
		buf_free(&name);
		imap_seqset_free(&known);
		return;
	}
	s->readonly = examine;
	s->saved_count = 0;
	imapd_log(LOG_DEBUG, "state AUTHENTICATED -> SELECTED");
	s->state = IMAPD_STATE_SELECTED;
	mailbox_view_status(s->box, &st);
	imapd_send_flags(s);
	imapd_untagged(s, "%u EXISTS", st.messages);
	if (!(s->enabled & IMAPD_EN_REV2)) {
		imapd_untagged(s, "%u RECENT", st.recent);
		if (st.first_unseen != 0)
			imapd_untagged(s, "OK [UNSEEN %u] First unseen.",
			    st.first_unseen);
	}
	imapd_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", st.uidvalidity);
	imapd_untagged(s, "OK [UIDNEXT %u] Predicted next UID", st.uidnext);
	imapd_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
	    (unsigned long long)st.highestmodseq);
	if (s->enabled & IMAPD_EN_REV2) {
		buf_reset(&s->resp);
		imapd_bputs(&s->resp, "* LIST () \".\" ");
		(void)imapd_append_mailbox(s, &s->resp, buf_cstr(&name));
		imapd_bputs(&s->resp, "\r\n");
		(void)imapd_send(s, s->resp.data, s->resp.len);
	}
	if (qr > 0 && uidvalidity == st.uidvalidity) {
		/* RFC 7162 3.2.5.1: what vanished, then what changed. */
		if (known.count == 0) {
			known.ranges = xmalloc(sizeof(*known.ranges));
			known.ranges[0].lo = 1;
			known.ranges[0].hi = UINT32_MAX;
			known.count = 1;
		}
		imapd_send_vanished_earlier(s, &known);
		n = mailbox_count(s->box);
		for (seq = 1; seq <= n; seq++) {
			const struct mailbox_msg *m = mailbox_msg(s->box, seq);

			if (m->modseq <= modseq)
				continue;
			buf_reset(&s->resp);
			imapd_bprintf(&s->resp, "* %u FETCH (UID %u FLAGS (",
			    seq, m->uid);
			(void)imapd_append_flags(
			    &s->resp, s->box,
			    IMAPD_SHOWN_FLAGS(s, m->flags), m->keywords);
			imapd_bprintf(&s->resp, ") MODSEQ (%llu))\r\n",
			    (unsigned long long)m->modseq);
			(void)imapd_send(s, s->resp.data, s->resp.len);
		}
	}
	imap_seqset_free(&known);
	buf_free(&name);
	imapd_tagged(s, "OK", "[%s] %s completed",
	    examine ? "READ-ONLY" : "READ-WRITE", examine ? "Examine" : "Select");
}

/* ---- CLOSE, UNSELECT ---- */

void
imapd_cmd_close(struct imapd_session *s, struct imapd_cmd *c)
{
	uint32_t *uids, n = mailbox_count(s->box), seq;
	const char *err;
	size_t k = 0;

	(void)c;
	if (!s->readonly && n > 0) {
		uids = xmalloc((size_t)n * sizeof(*uids));
		for (seq = 1; seq <= n; seq++) {
			const struct mailbox_msg *m = mailbox_msg(s->box, seq);

			if (m->flags & MAILBOX_F_DELETED)
				uids[k++] = m->uid;
		}
		/* RFC 3501 6.4.2: silently; a failure still closes. */
		if (k > 0 && mailbox_expunge(s->box, uids, k, &err) < 0)
			imapd_log(LOG_ERR, "CLOSE: expunge: %s", err);
		free(uids);
	}
	imapd_close_box(s);
	imapd_tagged(s, "OK", "Close completed.");
}

void
imapd_cmd_unselect(struct imapd_session *s, struct imapd_cmd *c)
{
	(void)c;
	imapd_close_box(s);
	imapd_tagged(s, "OK", "Unselect completed.");
}

/* ---- IDLE ---- */

void
imapd_cmd_idle(struct imapd_session *s, struct imapd_cmd *c)
{
	struct buf line;
	enum stream_result r;
	int64_t left_ms = (int64_t)var_imap_idle_timeout * IMAPD_MS_PER_SEC;
	int watch = -1, ready, wait_ms;
	struct pollfd pfd;
	char drain[4096];

	(void)c;
	if (s->state == IMAPD_STATE_SELECTED) {
		imapd_sync(s, 0);
		if (s->broken)
			return;
		watch = mailbox_watch_fd(s->box);
	}
	(void)imapd_send(s, "+ idling\r\n", 10);
	buf_init(&line, IMAPD_IDLE_LINE_MAX + 1);
	for (;;) {
		wait_ms = left_ms < IMAPD_IDLE_CHECK_MS ? (int)left_ms
		                                        : IMAPD_IDLE_CHECK_MS;
		r = stream_next_line(&s->st, &line, IMAPD_IDLE_LINE_MAX, NULL);
		if (r == STREAM_OK || r == STREAM_TOOLONG)
			break;
		if (r == STREAM_EOF || r == STREAM_ERROR) {
			s->broken = 1;
			imapd_log(LOG_INFO, "Disconnected in IDLE");
			buf_free(&line);
			return;
		}
		r = imapd_wait_input(s, watch, wait_ms, &ready);
		if (r == STREAM_EOF || r == STREAM_ERROR) {
			s->broken = 1;
			imapd_log(LOG_INFO, "Disconnected in IDLE");
			buf_free(&line);
			return;
		}
		if (r == STREAM_TIMEOUT) {
			left_ms -= wait_ms;
			if (left_ms <= 0) {
				imapd_untagged(s, "BYE Disconnected for "
				                  "inactivity in IDLE.");
				imapd_log(LOG_INFO, "Disconnected: Inactivity "
				                    "in IDLE");
				s->broken = 1;
				buf_free(&line);
				return;
			}
		}
		if (s->state == IMAPD_STATE_SELECTED &&
		    (ready || r == STREAM_TIMEOUT)) {
			imapd_sync(s, 0);
			if (s->broken) {
				/* The folder went (BYE said) or the client. */
				buf_free(&line);
				return;
			}
			/* The store reads the events in its sync; what is
			 * left is dropped so that poll does not spin. */
			pfd.fd = watch;
			pfd.events = POLLIN;
			if (watch >= 0 && poll(&pfd, 1, 0) > 0)
				(void)read(watch, drain, sizeof(drain));
			(void)imapd_flush(s);
		}
	}
	if (r == STREAM_OK && line.len == 4 &&
	    strncasecmp(line.data, "DONE", 4) == 0)
		imapd_tagged(s, "OK", "Idle completed.");
	else
		imapd_tagged(s, "BAD", "Expected DONE.");
	buf_free(&line);
}
