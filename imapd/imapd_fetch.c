/* SPDX-License-Identifier: MIT */
/*
 * FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2): FLAGS, UID, INTERNALDATE,
 * RFC822.SIZE, RFC822, RFC822.HEADER, RFC822.TEXT, ENVELOPE, BODY,
 * BODYSTRUCTURE, BODY[section]<partial> with HEADER, HEADER.FIELDS(.NOT),
 * MIME and TEXT, BODY.PEEK, BINARY[.PEEK] and BINARY.SIZE (RFC 3516),
 * MODSEQ and the CHANGEDSINCE / VANISHED modifiers (RFC 7162). \Seen is
 * set by the non-PEEK forms. ENVELOPE, BODY and BODYSTRUCTURE come from
 * the folder's cache when they are there, so a second FETCH of them reads
 * no message file. Stored mail has LF line ends; what is sent has CRLF,
 * with the sizes the store reports (RFC822.SIZE) to match.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/mime.h"
#include "mail/params.h"
#include "imapd.h"

/* Items in one FETCH, and header fields in one HEADER.FIELDS. */
#define FETCH_ITEMS_MAX 100
#define FETCH_FIELDS_MAX 200
#define FETCH_FIELD_LEN_MAX 256
/* Longest section text echoed back ("1.2.HEADER.FIELDS (...)"). */
#define FETCH_SECTION_MAX 4096

enum fetch_kind {
	FK_FLAGS,
	FK_UID,
	FK_INTERNALDATE,
	FK_SIZE,
	FK_ENVELOPE,
	FK_BODY,
	FK_BODYSTRUCTURE,
	FK_MODSEQ,
	FK_SECTION,     /* BODY[...] and the RFC822 forms */
	FK_BINARY,      /* BINARY[...] */
	FK_BINARY_SIZE, /* BINARY.SIZE[...] */
};

enum fetch_sec {
	SEC_ALL,
	SEC_HEADER,
	SEC_TEXT,
	SEC_MIME,
	SEC_FIELDS,
	SEC_FIELDS_NOT,
};

struct fetch_item {
	enum fetch_kind kind;
	int peek;
	char *name; /* the response's item name, <origin> left out */
	char *numbers;
	enum fetch_sec sec;
	char **fields;
	size_t nfields;
	int partial;
	uint64_t p_off, p_len;
};

struct fetch_req {
	struct fetch_item items[FETCH_ITEMS_MAX];
	size_t n;
	uint64_t changedsince;
	int vanished;
	int needs_file, sets_seen;
	int structure; /* BODY or BODYSTRUCTURE: the whole file is parsed */
};

/* A message's file, read or mapped, and its MIME tree when one was
 * needed. */
struct fetch_msg {
	int fd;
	const char *map;
	size_t len;
	int mapped;
	struct mime_message *mime;
	/* The whole message with CRLF line ends (fetch_conv), made once
	 * for the items that send it all: measured, then sent. */
	const char *conv;
	size_t conv_len;
};

/* Messages up to this size are read, not mapped: an munmap per message
 * (its TLB shootdown) cost more than the copy in a FETCH of many. */
#define FETCH_READ_MAX (1024 * 1024)

/* Memory a FETCH keeps from message to message (no allocation per
 * message), freed when the command ends. */
struct fetch_mem {
	char *data;
	size_t cap;
};

#define FETCH_MEM_STEP (64 * 1024)

/* The files read, and the whole messages converted. */
static struct fetch_mem fetch_file, fetch_conv;

static char *
mem_reserve(struct fetch_mem *m, size_t n)
{
	/* grown in steps of FETCH_MEM_STEP: few reallocations, and no
	 * more than a step beyond the largest message */
	if (m->cap < n) {
		free(m->data);
		m->cap = (n + FETCH_MEM_STEP - 1) / FETCH_MEM_STEP * FETCH_MEM_STEP;
		m->data = xmalloc(m->cap);
	}
	return m->data;
}

static void
mem_free(struct fetch_mem *m)
{
	free(m->data);
	m->data = NULL;
	m->cap = 0;
}

static void
req_free(struct fetch_req *r)
{
	size_t i, k;

	for (i = 0; i < r->n; i++) {
		free(r->items[i].name);
		free(r->items[i].numbers);
		for (k = 0; k < r->items[i].nfields; k++)
			free(r->items[i].fields[k]);
		free(r->items[i].fields);
	}
	r->n = 0;
}

static struct fetch_item *
add_item(struct fetch_req *r, enum fetch_kind kind, const char *name)
{
	struct fetch_item *it;

	if (r->n >= FETCH_ITEMS_MAX)
		return NULL;
	it = &r->items[r->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->name = xstrdup(name);
	it->numbers = xstrdup("");
	return it;
}

/* "HEADER.FIELDS (A B)" etc. after the section numbers. 1 or 0. */
static int
parse_section_text(struct fetch_item *it, const char *s, int allow_mime)
{
	const char *p, *e;

	if (*s == '\0') {
		it->sec = SEC_ALL;
		return 1;
	}
	if (strcasecmp(s, "HEADER") == 0) {
		it->sec = SEC_HEADER;
		return 1;
	}
	if (strcasecmp(s, "TEXT") == 0) {
		it->sec = SEC_TEXT;
		return 1;
	}
	if (strcasecmp(s, "MIME") == 0 && allow_mime) {
		it->sec = SEC_MIME;
		return 1;
	}
	if (strncasecmp(s, "HEADER.FIELDS.NOT ", 18) == 0) {
		it->sec = SEC_FIELDS_NOT;
		p = s + 18;
	} else if (strncasecmp(s, "HEADER.FIELDS ", 14) == 0) {
		it->sec = SEC_FIELDS;
		p = s + 14;
	} else {
		return 0;
	}
	if (*p != '(')
		return 0;
	p++;
	it->fields = xcalloc(FETCH_FIELDS_MAX, sizeof(*it->fields));
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == ')')
			break;
		if (*p == '"') {
			e = strchr(p + 1, '"');
			if (e == NULL)
				return 0;
			p++;
		} else {
			e = p + strcspn(p, " )");
		}
		if (e == p || e - p > FETCH_FIELD_LEN_MAX ||
		    it->nfields >= FETCH_FIELDS_MAX)
			return 0;
		it->fields[it->nfields++] = xstrndup(p, (size_t)(e - p));
		p = *e == '"' ? e + 1 : e;
	}
	return it->nfields > 0 && p[1] == '\0';
}

/* "BODY[1.2.TEXT]<0.100>" and its kin; 1, or 0 when malformed. */
static int
parse_body_item(struct fetch_req *r, const char *atom)
{
	const char *open = strchr(atom, '['), *close, *p;
	struct fetch_item *it;
	enum fetch_kind kind;
	struct buf name;
	char *sec, *end;
	size_t plen = (size_t)(open - atom), nlen;
	int peek = 0, ok;

	if ((plen == 4 && strncasecmp(atom, "BODY", 4) == 0)) {
		kind = FK_SECTION;
	} else if (plen == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0) {
		kind = FK_SECTION;
		peek = 1;
	} else if (plen == 6 && strncasecmp(atom, "BINARY", 6) == 0) {
		kind = FK_BINARY;
	} else if (plen == 11 && strncasecmp(atom, "BINARY.PEEK", 11) == 0) {
		kind = FK_BINARY;
		peek = 1;
	} else if (plen == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0) {
		kind = FK_BINARY_SIZE;
		peek = 1;
	} else {
		return 0;
	}
	close = strrchr(open, ']');
	if (close == NULL || close - open - 1 > FETCH_SECTION_MAX)
		return 0;
	sec = xstrndup(open + 1, (size_t)(close - open - 1));
	it = add_item(r, kind, "");
	if (it == NULL) {
		free(sec);
		return 0;
	}
	it->peek = peek;
	/* Section numbers: "1.2.3" then maybe ".TEXT" and the like. */
	p = sec;
	while (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p != '.')
			break;
		if (p[1] >= '1' && p[1] <= '9')
			p++;
		else
			break;
	}
	nlen = (size_t)(p - sec);
	free(it->numbers);
	it->numbers = xstrndup(sec, nlen);
	ok = 1;
	if (nlen > 0 && *p == '.')
		ok = *++p != '\0';
	else if (nlen > 0 && *p != '\0')
		ok = 0;
	if (ok)
		ok = kind == FK_SECTION ? parse_section_text(it, p, nlen > 0)
		                        : *p == '\0';
	/* The response names the item as asked, without .PEEK. */
	buf_init(&name, FETCH_SECTION_MAX + 32);
	imapd_bprintf(&name, "%s[%s]",
	    kind == FK_SECTION ? "BODY"
	                       : (kind == FK_BINARY ? "BINARY" : "BINARY.SIZE"),
	    sec);
	free(it->name);
	it->name = buf_steal(&name);
	buf_free(&name);
	free(sec);
	if (!ok)
		return 0;
	p = close + 1;
	if (*p == '\0')
		return 1;
	if (*p != '<' || kind == FK_BINARY_SIZE)
		return 0;
	errno = 0;
	it->p_off = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || *end != '.')
		return 0;
	p = end + 1;
	it->p_len = strtoull(p, &end, 10);
	if (errno != 0 || end == p || it->p_len == 0 || strcmp(end, ">") != 0)
		return 0;
	it->partial = 1;
	return 1;
}

static int
parse_item(struct fetch_req *r, const struct imap_arg *a)
{
	struct fetch_item *it;
	const char *s = a->str;

	if (a->type != IMAP_ARG_ATOM)
		return 0;
	if (strchr(s, '[') != NULL)
		return parse_body_item(r, s);
	if (strcasecmp(s, "FLAGS") == 0)
		return add_item(r, FK_FLAGS, "FLAGS") != NULL;
	if (strcasecmp(s, "UID") == 0)
		return add_item(r, FK_UID, "UID") != NULL;
	if (strcasecmp(s, "INTERNALDATE") == 0)
		return add_item(r, FK_INTERNALDATE, "INTERNALDATE") != NULL;
	if (strcasecmp(s, "RFC822.SIZE") == 0)
		return add_item(r, FK_SIZE, "RFC822.SIZE") != NULL;
	if (strcasecmp(s, "ENVELOPE") == 0)
		return add_item(r, FK_ENVELOPE, "ENVELOPE") != NULL;
	if (strcasecmp(s, "BODY") == 0)
		return add_item(r, FK_BODY, "BODY") != NULL;
	if (strcasecmp(s, "BODYSTRUCTURE") == 0)
		return add_item(r, FK_BODYSTRUCTURE, "BODYSTRUCTURE") != NULL;
	if (strcasecmp(s, "MODSEQ") == 0)
		return add_item(r, FK_MODSEQ, "MODSEQ") != NULL;
	if (strcasecmp(s, "RFC822") == 0) {
		it = add_item(r, FK_SECTION, "RFC822");
		return it != NULL;
	}
	if (strcasecmp(s, "RFC822.HEADER") == 0) {
		it = add_item(r, FK_SECTION, "RFC822.HEADER");
		if (it != NULL) {
			it->sec = SEC_HEADER;
			it->peek = 1;
		}
		return it != NULL;
	}
	if (strcasecmp(s, "RFC822.TEXT") == 0) {
		it = add_item(r, FK_SECTION, "RFC822.TEXT");
		if (it != NULL)
			it->sec = SEC_TEXT;
		return it != NULL;
	}
	return 0;
}

static int
parse_items(struct imapd_session *s, const struct imap_arg *a,
    struct fetch_req *r)
{
	size_t i;

	(void)s;
	if (a->type == IMAP_ARG_ATOM && strchr(a->str, '[') == NULL) {
		if (strcasecmp(a->str, "ALL") == 0 ||
		    strcasecmp(a->str, "FAST") == 0 ||
		    strcasecmp(a->str, "FULL") == 0) {
			(void)add_item(r, FK_FLAGS, "FLAGS");
			(void)add_item(r, FK_INTERNALDATE, "INTERNALDATE");
			(void)add_item(r, FK_SIZE, "RFC822.SIZE");
			if (strcasecmp(a->str, "FAST") != 0)
				(void)add_item(r, FK_ENVELOPE, "ENVELOPE");
			if (strcasecmp(a->str, "FULL") == 0)
				(void)add_item(r, FK_BODY, "BODY");
			return 1;
		}
	}
	if (a->type != IMAP_ARG_LIST)
		return parse_item(r, a);
	if (a->count == 0)
		return 0;
	for (i = 0; i < a->count; i++) {
		if (!parse_item(r, &a->list[i]))
			return 0;
	}
	return 1;
}

/* (CHANGEDSINCE n [VANISHED]) */
static int
parse_modifiers(struct imapd_session *s, struct imapd_cmd *c,
    const struct imap_arg *a, struct fetch_req *r)
{
	char *end;
	size_t i;

	for (i = 0; i < a->count; i++) {
		if (imap_arg_atom_is(&a->list[i], "CHANGEDSINCE") &&
		    i + 1 < a->count && a->list[i + 1].type == IMAP_ARG_ATOM) {
			errno = 0;
			r->changedsince =
			    strtoull(a->list[i + 1].str, &end, 10);
			if (errno != 0 || *end != '\0' || r->changedsince == 0)
				return 0;
			i++;
		} else if (imap_arg_atom_is(&a->list[i], "VANISHED") &&
		           c->uid && (s->enabled & IMAPD_EN_QRESYNC)) {
			r->vanished = 1;
		} else {
			return 0;
		}
	}
	/* RFC 7162 3.2.6: VANISHED only with CHANGEDSINCE. */
	return !r->vanished || r->changedsince > 0;
}

/* ---- the message ---- */

static void
msg_release(struct fetch_msg *fm)
{
	mime_free(&fm->mime);
	if (fm->mapped)
		munmap((void *)fm->map, fm->len);
	if (fm->fd >= 0)
		close(fm->fd);
	memset(fm, 0, sizeof(*fm));
	fm->fd = -1;
}

/* Maps the message; 0, or the mailbox error. */
static int
msg_load(struct imapd_session *s, uint32_t seq, struct fetch_msg *fm,
    const char **err_r)
{
	struct stat st;
	void *p;
	int r;

	if (fm->map != NULL)
		return 0;
	r = mailbox_msg_open(s->box, seq, &fm->fd, err_r);
	if (r < 0) {
		fm->fd = -1;
		return r;
	}
	s->files_opened++;
	if (fstat(fm->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*err_r = "cannot stat the message file";
		return MAILBOX_ERR_TEMP;
	}
	if (st.st_size == 0) {
		fm->map = "";
		fm->len = 0;
		return 0;
	}
	if (st.st_size <= FETCH_READ_MAX) {
		p = mem_reserve(&fetch_file, (size_t)st.st_size + 1);
		if (file_pread_all(fm->fd, p, (size_t)st.st_size, 0) < 0) {
			*err_r = "cannot read the message file";
			return MAILBOX_ERR_TEMP;
		}
		((char *)p)[st.st_size] = '\0';
		fm->map = p;
		fm->len = (size_t)st.st_size;
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fm->fd, 0);
	if (p == MAP_FAILED) {
		*err_r = "cannot map the message file";
		return MAILBOX_ERR_TEMP;
	}
	fm->map = p;
	fm->len = (size_t)st.st_size;
	fm->mapped = 1;
	return 0;
}

/* fm->conv made: 1, or 0 for a message too large to hold twice (it
 * is converted in pieces instead). */
static int
msg_conv(struct fetch_msg *fm)
{
	char *p;

	if (fm->conv != NULL)
		return 1;
	if (fm->len > FETCH_READ_MAX)
		return 0;
	p = mem_reserve(&fetch_conv, fm->len * 2 + 1);
	fm->conv_len = imapd_crlf_copy(p, fm->map, fm->len, 0);
	fm->conv = p;
	return 1;
}

static int
msg_mime(struct fetch_msg *fm)
{
	if (fm->mime == NULL)
		fm->mime = mime_parse(fm->map, fm->len);
	return fm->mime != NULL ? 0 : -1;
}

/* The header of a message whose file this FETCH does not otherwise read
 * (ENVELOPE alone): read, not mapped, into memory kept from message to
 * message. */
static struct imapd_msgbuf fetch_hdr;

/* ENVELOPE from the header alone (it needs nothing else: no MIME parse
 * of the body), and the header record SEARCH uses, both put in the
 * cache. */
static int
envelope_compute(struct imapd_session *s, uint32_t seq, struct fetch_msg *fm,
    int whole, struct buf *tmp, const char **err_r)
{
	struct mime_part part;
	struct buf hc, scratch;
	const char *hdr;
	size_t hlen;
	int fd, r;

	/* BODYSTRUCTURE will map the file: one open for both */
	if (fm->map == NULL && whole) {
		r = msg_load(s, seq, fm, err_r);
		if (r < 0)
			return r;
	}
	if (fm->map != NULL) {
		hdr = fm->map;
		hlen = fm->mime != NULL ? fm->mime->root->body_off
		                        : imapd_header_end(fm->map, fm->len);
	} else {
		r = mailbox_msg_open(s->box, seq, &fd, err_r);
		if (r < 0)
			return r;
		s->files_opened++;
		r = imapd_msgbuf_read(fd, &fetch_hdr, 1, SIZE_MAX / 4);
		close(fd);
		if (r < 0) {
			*err_r = "cannot read the message file";
			return MAILBOX_ERR_TEMP;
		}
		hdr = fetch_hdr.data;
		hlen = fetch_hdr.hdr_len;
	}
	memset(&part, 0, sizeof(part));
	part.body_off = part.end_off = hlen;
	if (mime_envelope(tmp, hdr, &part) < 0)
		return -1;
	mailbox_cache_put(s->box, seq, MAILBOX_CACHE_ENVELOPE, tmp->data,
	    tmp->len);
	buf_init(&hc, hlen * 2 + IMAPD_RESP_SLACK);
	buf_init(&scratch, hlen * 2 + IMAPD_RESP_SLACK);
	imapd_hc_build(&hc, &scratch, hdr, hlen);
	mailbox_cache_put(s->box, seq, MAILBOX_CACHE_HEADERS, hc.data, hc.len);
	buf_free(&hc);
	buf_free(&scratch);
	return 0;
}

/* ENVELOPE, BODY, BODYSTRUCTURE: from the cache, else computed and put
 * there. */
static int
append_cached(struct imapd_session *s, const struct fetch_req *req,
    uint32_t seq, struct fetch_msg *fm, enum mailbox_cache_field field,
    struct buf *out, const char **err_r)
{
	struct buf tmp;
	const char *data;
	size_t len;
	int r;

	/* lib/mail/mime writes (and the cache keeps) the value inside the
	 * parentheses, as Dovecot's cache does. */
	if (mailbox_cache_get(s->box, seq, field, &data, &len) == 1) {
		if (buf_putc(out, '(') < 0 || buf_append(out, data, len) < 0)
			return -1;
		return buf_putc(out, ')');
	}
	if (field == MAILBOX_CACHE_ENVELOPE) {
		buf_init(&tmp, IMAPD_RESP_SLACK * 4);
		r = envelope_compute(s, seq, fm, req->structure, &tmp, err_r);
		if (r == 0 && (buf_putc(out, '(') < 0 ||
		                  buf_append(out, tmp.data, tmp.len) < 0 ||
		                  buf_putc(out, ')') < 0))
			r = -1;
		buf_free(&tmp);
		return r;
	}
	r = msg_load(s, seq, fm, err_r);
	if (r < 0)
		return r;
	if (msg_mime(fm) < 0) {
		*err_r = "out of memory parsing MIME";
		return MAILBOX_ERR_TEMP;
	}
	buf_init(&tmp, fm->len * 2 + IMAPD_RESP_SLACK);
	r = mime_bodystructure(&tmp, fm->map, fm->mime->root,
	    field == MAILBOX_CACHE_BODYSTRUCTURE);
	if (r == 0) {
		mailbox_cache_put(s->box, seq, field, tmp.data, tmp.len);
		if (buf_putc(out, '(') < 0 || buf_append(out, tmp.data, tmp.len) < 0 ||
		    buf_putc(out, ')') < 0)
			r = -1;
	}
	buf_free(&tmp);
	return r < 0 ? -1 : 0;
}

/*
 * Literals are streamed from the message in memory: each producer below
 * runs twice over the same bytes, once counting (the literal's length
 * comes first on the wire, and the count of a <partial> window stops at
 * the window's end) and once sending through the session's bounded
 * output. The whole message (BODY[], RFC822, BINARY[]) is the exception,
 * converted once into fetch_conv, which both runs then take as it is. A
 * BINARY part is decoded in pieces of FETCH_PIECE octets both times.
 */
#define FETCH_PIECE (64 * 1024)
/* Source octets of one piece of CRLF conversion (twice that out). */
#define FETCH_CRLF_PIECE (32 * 1024)
/* A decoded piece is at most twice its source (a quoted-printable LF
 * becomes CRLF) unless a long line leaves no cut (mime.h). */
#define FETCH_PIECE_BUF_MIN (2 * FETCH_PIECE + 1024)

struct fetch_sink {
	struct imapd_session *s; /* NULL: count only */
	uint64_t skip, end;      /* the window [skip, end) of the whole */
	uint64_t total;          /* octets produced so far */
	uint64_t sent;           /* octets of the window sent */
	int want_nul;            /* BINARY: look for a NUL when counting */
	int nul;                 /* a NUL inside the window (literal8) */
};

/* 1 when the window is complete: the producer may stop. */
static int
sink_done(const struct fetch_sink *k)
{
	return k->total >= k->end;
}

/* -1 when the client is gone. */
static int
sink_put(struct fetch_sink *k, const char *data, size_t len)
{
	uint64_t from = k->total, to = k->total + len;

	k->total = to;
	if (to <= k->skip || from >= k->end)
		return 0;
	if (from < k->skip) {
		data += k->skip - from;
		from = k->skip;
	}
	if (to > k->end)
		to = k->end;
	len = (size_t)(to - from);
	if (k->s == NULL) {
		if (k->want_nul && !k->nul && memchr(data, '\0', len) != NULL)
			k->nul = 1;
		return 0;
	}
	k->sent += len;
	return imapd_send(k->s, data, len);
}

/* [data, data+len) with bare LF made CRLF: counted without a copy when
 * only the length is wanted, else converted and passed on in pieces. */
static int
sink_crlf(struct fetch_sink *k, const char *data, size_t len)
{
	static char piece[2 * FETCH_CRLF_PIECE];
	size_t off = 0, n;

	if (k->s == NULL && !k->want_nul) {
		k->total += len + imapd_crlf_extra(data, len, 0);
		return 0;
	}
	while (off < len && !sink_done(k)) {
		n = len - off < FETCH_CRLF_PIECE ? len - off : FETCH_CRLF_PIECE;
		if (sink_put(k, piece,
		        imapd_crlf_copy(piece, data + off, n,
		            off > 0 && data[off - 1] == '\r')) < 0)
			return -1;
		off += n;
	}
	return 0;
}

/* The header fields of [hdr, hdr+len) named (not, when negate) among
 * names, then the blank line. */
static int
sink_header_filter(struct fetch_sink *k, const char *hdr, size_t len,
    char *const *names, size_t n, int negate)
{
	const char *name, *value;
	size_t pos = 0, nlen, vlen, start, i;
	int match;

	while (!sink_done(k) && imapd_header_next(hdr, len, &pos, &name,
	                            &nlen, &value, &vlen, &start)) {
		match = 0;
		for (i = 0; i < n && !match; i++)
			match = strlen(names[i]) == nlen &&
			        strncasecmp(names[i], name, nlen) == 0;
		if (match == negate)
			continue;
		if (sink_crlf(k, hdr + start, pos - start) < 0)
			return -1;
		if (pos == len && hdr[len - 1] != '\n' &&
		    sink_put(k, "\r\n", 2) < 0)
			return -1;
	}
	return sink_put(k, "\r\n", 2);
}

/* A part's body decoded: 1, 0 (unknown encoding), -1. */
static int
sink_decoded(struct fetch_sink *k, const char *map,
    const struct mime_part *part)
{
	struct buf piece;
	size_t pos = 0, blen = part->end_off - part->body_off;
	int r = 1;

	buf_init(&piece, blen * 2 + FETCH_PIECE_BUF_MIN);
	do {
		buf_reset(&piece);
		r = mime_body_decode_piece(&piece, map, part, &pos, FETCH_PIECE);
		if (r <= 0)
			break;
		if (sink_put(k, piece.data != NULL ? piece.data : "",
		        piece.len) < 0)
			r = -1;
	} while (r > 0 && pos < blen && !sink_done(k));
	buf_free(&piece);
	return r;
}

/* The bytes of a BODY[...] item. 0, -1. */
static int
section_produce(const struct fetch_item *it, struct fetch_msg *fm,
    struct fetch_sink *k)
{
	const struct mime_part *part = NULL, *msg;
	const char *map = fm->map;
	size_t hstart, hend, bend;

	if (it->numbers[0] == '\0') {
		/* the whole message (too large for fetch_conv) needs no
		 * look at its header */
		if (it->sec == SEC_ALL)
			return sink_crlf(k, map, fm->len);
		hstart = 0;
		hend = imapd_header_end(map, fm->len);
		bend = fm->len;
	} else {
		if (msg_mime(fm) < 0)
			return -1;
		part = mime_section(fm->mime, it->numbers);
		if (part == NULL)
			return 0; /* no such part: empty, as Dovecot */
		if (it->sec == SEC_MIME)
			return sink_crlf(k, map + part->hdr_off,
			    part->body_off - part->hdr_off);
		if (it->sec == SEC_ALL)
			return sink_crlf(k, map + part->body_off,
			    part->end_off - part->body_off);
		msg = part->message;
		if (!part->is_message_rfc822 || msg == NULL)
			return 0;
		hstart = msg->hdr_off;
		hend = msg->body_off;
		bend = msg->end_off;
	}
	switch (it->sec) {
	case SEC_ALL:
		return sink_crlf(k, map, fm->len);
	case SEC_HEADER:
		return sink_crlf(k, map + hstart, hend - hstart);
	case SEC_TEXT:
		return sink_crlf(k, map + hend, bend - hend);
	case SEC_FIELDS:
	case SEC_FIELDS_NOT:
		return sink_header_filter(k, map + hstart, hend - hstart,
		    it->fields, it->nfields, it->sec == SEC_FIELDS_NOT);
	case SEC_MIME:
		break;
	}
	return 0;
}

/* BINARY[...]: 1, 0 for an unknown encoding, -1. */
static int
binary_produce(const struct fetch_item *it, struct fetch_msg *fm,
    struct fetch_sink *k)
{
	const struct mime_part *part;

	if (it->numbers[0] == '\0')
		return sink_crlf(k, fm->map, fm->len) < 0 ? -1 : 1;
	if (msg_mime(fm) < 0)
		return -1;
	part = mime_section(fm->mime, it->numbers);
	if (part == NULL)
		return 1;
	if (part->is_multipart || part->is_message_rfc822)
		return sink_crlf(k, fm->map + part->body_off,
		           part->end_off - part->body_off) < 0
		           ? -1
		           : 1;
	return sink_decoded(k, fm->map, part);
}

static int
item_produce(const struct fetch_item *it, struct fetch_msg *fm,
    struct fetch_sink *k)
{
	/* BODY[], RFC822, BINARY[] (a whole message is never decoded):
	 * the same octets, converted once for all */
	if (it->numbers[0] == '\0' && it->sec == SEC_ALL && msg_conv(fm))
		return sink_put(k, fm->conv, fm->conv_len) < 0 ? -1 : 1;
	if (it->kind == FK_SECTION)
		return section_produce(it, fm, k) < 0 ? -1 : 1;
	return binary_produce(it, fm, k);
}

static void
sink_init(struct fetch_sink *k, const struct fetch_item *it,
    struct imapd_session *s)
{
	memset(k, 0, sizeof(*k));
	k->s = s;
	k->end = UINT64_MAX;
	k->want_nul = it->kind == FK_BINARY;
	if (it->partial && it->kind != FK_BINARY_SIZE) {
		k->skip = it->p_off;
		k->end = it->p_off + it->p_len < it->p_off
		             ? UINT64_MAX
		             : it->p_off + it->p_len;
	}
}

/* Counts a literal item: its length on the wire (the <partial> window)
 * into *len_r. 1, 0 for an unknown encoding, -1. */
static int
item_measure(const struct fetch_item *it, struct fetch_msg *fm,
    uint64_t *len_r, int *nul_r)
{
	struct fetch_sink k;
	int r;

	sink_init(&k, it, NULL);
	r = item_produce(it, fm, &k);
	if (r <= 0)
		return r;
	if (it->kind == FK_BINARY_SIZE)
		*len_r = k.total;
	else
		*len_r = k.total <= k.skip ? 0
		         : k.total < k.end ? k.total - k.skip
		                           : k.end - k.skip;
	*nul_r = k.nul;
	return 1;
}

/* Per message: what item_measure found, for the literal items. */
struct fetch_lit {
	uint64_t len;
	int nul;
};

/* The FETCH response of one message, sent as it is made. 0, a mailbox
 * error, or 1 when a BINARY part has an unknown encoding (nothing of the
 * message is sent before these are known). */
static int
fetch_one(struct imapd_session *s, struct imapd_cmd *c, struct fetch_req *r,
    uint32_t seq, struct buf *out, const char **err_r)
{
	const struct mailbox_msg *m = mailbox_msg(s->box, seq);
	struct fetch_lit lits[FETCH_ITEMS_MAX];
	struct fetch_sink k;
	struct fetch_msg fm;
	uint64_t modseq;
	size_t i;
	int rc = 0, set_seen, sp = 0, flags_sent = 0, modseq_sent = 0;
	int started = 0;

	memset(&fm, 0, sizeof(fm));
	fm.fd = -1;
	/* A message expunged meanwhile (kept in the view until the next
	 * sync that may report it) still has its flags and its cached
	 * data; only its file is gone (RFC 2180 4.1.1). */
	if (r->needs_file) {
		rc = msg_load(s, seq, &fm, err_r);
		if (rc < 0) {
			msg_release(&fm);
			return rc;
		}
	}
	for (i = 0; i < r->n; i++) {
		const struct fetch_item *it = &r->items[i];

		if (it->kind != FK_SECTION && it->kind != FK_BINARY &&
		    it->kind != FK_BINARY_SIZE)
			continue;
		rc = item_measure(it, &fm, &lits[i].len, &lits[i].nul);
		if (rc <= 0) {
			msg_release(&fm);
			if (rc == 0)
				return 1;
			*err_r = "out of memory";
			return MAILBOX_ERR_TEMP;
		}
		rc = 0;
	}
	set_seen = r->sets_seen && !s->readonly && !(m->flags & MAILBOX_F_SEEN);
	if (set_seen) {
		rc = mailbox_store(s->box, seq, m->flags | MAILBOX_F_SEEN,
		    m->keywords, 0, &modseq, err_r);
		if (rc < 0) {
			msg_release(&fm);
			return rc;
		}
		m = mailbox_msg(s->box, seq);
	}
	imapd_bprintf(out, "* %u FETCH (", seq);
#define SP() (sp++ ? buf_putc(out, ' ') : 0)
	if (c->uid) {
		(void)SP();
		imapd_bprintf(out, "UID %u", m->uid);
	}
	for (i = 0; i < r->n && rc >= 0 && !s->broken; i++) {
		struct fetch_item *it = &r->items[i];

		switch (it->kind) {
		case FK_UID:
			if (!c->uid) {
				(void)SP();
				imapd_bprintf(out, "UID %u", m->uid);
			}
			break;
		case FK_FLAGS:
			(void)SP();
			imapd_bputs(out, "FLAGS (");
			(void)imapd_append_flags(out, s->box,
			    IMAPD_SHOWN_FLAGS(s, m->flags), m->keywords);
			imapd_bputc(out, ')');
			flags_sent = 1;
			break;
		case FK_INTERNALDATE:
			(void)SP();
			imapd_bputs(out, "INTERNALDATE ");
			(void)imap_datetime_append(out, mailbox_msg_received(s->box, seq));
			break;
		case FK_SIZE:
			(void)SP();
			imapd_bprintf(out, "RFC822.SIZE %llu",
			    (unsigned long long)m->size);
			break;
		case FK_MODSEQ:
			(void)SP();
			imapd_bprintf(out, "MODSEQ (%llu)",
			    (unsigned long long)m->modseq);
			modseq_sent = 1;
			break;
		case FK_ENVELOPE:
		case FK_BODY:
		case FK_BODYSTRUCTURE:
			(void)SP();
			imapd_bprintf(out, "%s ", it->name);
			rc = append_cached(s, r, seq, &fm,
			    it->kind == FK_ENVELOPE ? MAILBOX_CACHE_ENVELOPE
			    : it->kind == FK_BODY   ? MAILBOX_CACHE_BODY
			                            : MAILBOX_CACHE_BODYSTRUCTURE,
			    out, err_r);
			break;
		case FK_BINARY_SIZE:
			(void)SP();
			imapd_bprintf(out, "%s %llu", it->name,
			    (unsigned long long)lits[i].len);
			break;
		case FK_SECTION:
		case FK_BINARY:
			(void)SP();
			if (it->partial)
				imapd_bprintf(out, "%s<%llu> ", it->name,
				    (unsigned long long)it->p_off);
			else
				imapd_bprintf(out, "%s ", it->name);
			if (buf_printf(out, "%s{%llu}\r\n",
			        it->kind == FK_BINARY && lits[i].nul ? "~" : "",
			        (unsigned long long)lits[i].len) < 0 ||
			    imapd_send(s, out->data, out->len) < 0)
				break;
			started = 1;
			buf_reset(out);
			sink_init(&k, it, s);
			if (item_produce(it, &fm, &k) < 0 && !s->broken) {
				*err_r = "out of memory";
				rc = MAILBOX_ERR_TEMP;
			}
			/* The literal's length is sent: anything else than
			 * that many octets puts the client out of step. */
			if (k.sent != lits[i].len && !s->broken) {
				imapd_log(LOG_ERR, "FETCH: message %u changed "
				                   "while sent", m->uid);
				s->broken = 1;
			}
			s->fetched_bytes += k.sent;
			break;
		}
	}
	/* RFC 3501 6.4.5: a \Seen the FETCH set is reported with it. */
	if (set_seen && !flags_sent && rc == 0) {
		(void)SP();
		imapd_bputs(out, "FLAGS (");
		(void)imapd_append_flags(out, s->box,
		    IMAPD_SHOWN_FLAGS(s, m->flags), m->keywords);
		imapd_bputc(out, ')');
	}
	if (!modseq_sent && rc == 0 &&
	    (r->changedsince > 0 ||
	        (set_seen && (s->enabled & IMAPD_EN_CONDSTORE)))) {
		(void)SP();
		imapd_bprintf(
		    out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
	}
#undef SP
	if (buf_puts(out, ")\r\n") < 0 && rc == 0) {
		*err_r = "response too large";
		rc = MAILBOX_ERR_TEMP;
	}
	if (rc == 0)
		(void)imapd_send(s, out->data, out->len);
	else if (started && !s->broken) {
		/* Half a response is out and cannot be taken back. */
		imapd_log(LOG_ERR, "FETCH: message %u: %s", m->uid, *err_r);
		s->broken = 1;
	}
	buf_reset(out);
	msg_release(&fm);
	return rc;
}

void
imapd_cmd_fetch(struct imapd_session *s, struct imapd_cmd *c)
{
	struct fetch_req *r;
	struct imapd_seqs set;
	struct imap_seqset uidset;
	struct buf out;
	const char *err = NULL;
	size_t i, k;
	int rc, expunged = 0, failed = 0, unknown_cte = 0, dollar;

	if (c->count < 2 || c->count > 3 ||
	    c->args[0].type != IMAP_ARG_ATOM ||
	    (c->count == 3 && c->args[2].type != IMAP_ARG_LIST)) {
		imapd_tagged(s, "BAD", "Usage: FETCH sequence-set items");
		return;
	}
	r = xcalloc(1, sizeof(*r));
	if (!parse_items(s, &c->args[1], r) ||
	    (c->count == 3 && !parse_modifiers(s, c, &c->args[2], r))) {
		req_free(r);
		free(r);
		imapd_tagged(s, "BAD", "Invalid FETCH items.");
		return;
	}
	if (!imapd_seqs_resolve(s, c->args[0].str, c->uid, &set)) {
		req_free(r);
		free(r);
		imapd_tagged(s, "BAD", "Invalid sequence set.");
		return;
	}
	if (r->changedsince > 0)
		s->enabled |= IMAPD_EN_CONDSTORE;
	for (k = 0; k < r->n; k++) {
		struct fetch_item *it = &r->items[k];

		if (it->kind == FK_SECTION || it->kind == FK_BINARY ||
		    it->kind == FK_BINARY_SIZE)
			r->needs_file = 1;
		if ((it->kind == FK_SECTION || it->kind == FK_BINARY) &&
		    !it->peek)
			r->sets_seen = 1;
		if (it->kind == FK_MODSEQ)
			s->enabled |= IMAPD_EN_CONDSTORE;
		if (it->kind == FK_BODY || it->kind == FK_BODYSTRUCTURE)
			r->structure = 1;
	}
	if (r->vanished) {
		memset(&uidset, 0, sizeof(uidset));
		if (imap_seqset_parse(c->args[0].str, &uidset, 0, &dollar)) {
			imapd_send_vanished_earlier(s, &uidset);
			imap_seqset_free(&uidset);
		}
	}
	buf_init(&out, IMAPD_RESP_SLACK);
	for (i = 0; i < set.count && !s->broken; i++) {
		const struct mailbox_msg *m = mailbox_msg(s->box, set.seqs[i]);
		uint64_t room = m->size * 2 * (r->n + 1) + IMAPD_RESP_SLACK;

		if (r->changedsince > 0 && m->modseq <= r->changedsince)
			continue;
		/* one buffer for all, its memory kept: no allocation per
		 * message */
		buf_reset(&out);
		out.max = room > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)room;
		rc = fetch_one(s, c, r, set.seqs[i], &out, &err);
		if (rc == MAILBOX_ERR_EXPUNGED) {
			expunged = 1;
			continue;
		}
		if (rc == 1) {
			unknown_cte = 1;
			break;
		}
		if (rc < 0) {
			failed = rc;
			break;
		}
	}
	buf_free(&out);
	imapd_msgbuf_free(&fetch_hdr);
	mem_free(&fetch_file);
	mem_free(&fetch_conv);
	imapd_seqs_free(&set);
	req_free(r);
	free(r);
	if (unknown_cte)
		imapd_tagged(s, "NO", "[UNKNOWN-CTE] Unknown "
		                      "Content-Transfer-Encoding.");
	else if (failed < 0)
		imapd_tagged_error(s, failed, err);
	else if (expunged)
		imapd_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were "
		                      "expunged.");
	else
		imapd_tagged(s, "OK", "Fetch completed.");
}
