/* SPDX-License-Identifier: MIT */
/*
 * SORT and UID SORT (RFC 5256 section 3: keys ARRIVAL, CC, DATE, FROM,
 * REVERSE, SIZE, SUBJECT, TO; RFC 5957 DISPLAYFROM, DISPLAYTO), ESORT
 * (RFC 5267 3.2: RETURN (MIN MAX ALL COUNT SAVE)), on the messages the
 * search keys of imapd_search.c select. Ties go to the next key, then to
 * the sequence number; REVERSE turns one key around, as in Dovecot.
 * Also the header reading SORT and THREAD share (imapd_sort.h): the
 * fields come from the folder's cache (MAILBOX_CACHE_SORT) when a
 * session already read them, so a second SORT reads no message file.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "mail/imap_sort.h"
#include "mail/mime.h"
#include "imapd_sort.h"

/* The cached record: this version octet, then per field a presence
 * octet, a 32-bit length and the value. */
#define SORT_CACHE_VERSION   1
#define SORT_CACHE_FIELD_HDR 5
/* Longest value kept of a field (a References field keeps its end). */
#define SORT_FIELD_MAX       (8 * 1024)
#define SORT_REFERENCES_MAX  (64 * 1024)
/* A response line per message: " 4294967295" */
#define SORT_NUM_WIDTH       11

static const char *const field_names[IMAPD_SORT_F_COUNT] = {
    [IMAPD_SORT_F_DATE] = "Date",
    [IMAPD_SORT_F_SUBJECT] = "Subject",
    [IMAPD_SORT_F_FROM] = "From",
    [IMAPD_SORT_F_TO] = "To",
    [IMAPD_SORT_F_CC] = "Cc",
    [IMAPD_SORT_F_MESSAGE_ID] = "Message-ID",
    [IMAPD_SORT_F_IN_REPLY_TO] = "In-Reply-To",
    [IMAPD_SORT_F_REFERENCES] = "References",
};

/* ------------------------------------------------------ header fields */

/* Cuts a value over its cap: at the end, or for References at the start
 * of an id, so that the last ids (the nearest ancestors) stay. */
static void
cap_value(char *v, enum imapd_sort_field f)
{
	size_t len = strlen(v), max, from;
	const char *lt;

	max =
	    f == IMAPD_SORT_F_REFERENCES ? SORT_REFERENCES_MAX : SORT_FIELD_MAX;
	if (len <= max)
		return;
	if (f != IMAPD_SORT_F_REFERENCES) {
		v[max] = '\0';
		return;
	}
	from = len - max;
	lt = strchr(v + from, '<');
	if (lt == NULL)
		lt = v + len;
	memmove(v, lt, strlen(lt) + 1);
}

static int
hdr_decode(const char *data, size_t len, char **vals)
{
	size_t pos = 1, f;
	uint32_t l;

	if (len < 1 || (unsigned char)data[0] != SORT_CACHE_VERSION)
		return 0;
	for (f = 0; f < IMAPD_SORT_F_COUNT; f++) {
		if (len - pos < SORT_CACHE_FIELD_HDR)
			return 0;
		memcpy(&l, data + pos + 1, sizeof(l));
		if (data[pos] == 0) {
			pos += SORT_CACHE_FIELD_HDR;
			continue;
		}
		pos += SORT_CACHE_FIELD_HDR;
		if (l > len - pos)
			return 0;
		vals[f] = xstrndup(data + pos, l);
		pos += l;
	}
	return pos == len;
}

static void
hdr_encode(struct buf *out, char *const *vals)
{
	size_t f;
	uint32_t l;
	char h[SORT_CACHE_FIELD_HDR];

	buf_reset(out);
	if (buf_putc(out, (char)SORT_CACHE_VERSION) < 0)
		return;
	for (f = 0; f < IMAPD_SORT_F_COUNT; f++) {
		l = vals[f] != NULL ? (uint32_t)strlen(vals[f]) : 0;
		h[0] = vals[f] != NULL;
		memcpy(h + 1, &l, sizeof(l));
		if (buf_append(out, h, sizeof(h)) < 0 ||
		    (l > 0 && buf_append(out, vals[f], l) < 0)) {
			buf_reset(out);
			return;
		}
	}
}

/* The fields of the message's file; none when it is gone. */
static void
hdr_read(struct imapd_session *s, uint32_t seq, char **vals)
{
	const char *err;
	struct stat st;
	size_t f, hend;
	void *map;
	int fd;

	if (mailbox_msg_open(s->box, seq, &fd, &err) < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return;
	hend = imapd_header_end(map, (size_t)st.st_size);
	for (f = 0; f < IMAPD_SORT_F_COUNT; f++) {
		vals[f] = mime_header_get(map, hend, field_names[f]);
		if (vals[f] != NULL)
			cap_value(vals[f], (enum imapd_sort_field)f);
	}
	munmap(map, (size_t)st.st_size);
}

static void
vals_free(char **vals)
{
	size_t f;

	for (f = 0; f < IMAPD_SORT_F_COUNT; f++) {
		free(vals[f]);
		vals[f] = NULL;
	}
}

static void
call_fn(size_t i, char **vals,
    void (*fn)(void *ctx, size_t i, const struct imapd_sort_hdr *h), void *ctx)
{
	struct imapd_sort_hdr h;
	size_t f;

	for (f = 0; f < IMAPD_SORT_F_COUNT; f++)
		h.v[f] = vals[f];
	fn(ctx, i, &h);
}

void
imapd_sort_headers(struct imapd_session *s, const uint32_t *seqs, size_t n,
    void (*fn)(void *ctx, size_t i, const struct imapd_sort_hdr *h), void *ctx)
{
	char *vals[IMAPD_SORT_F_COUNT] = {0};
	size_t i, nmiss = 0, *miss;
	const char *data;
	struct buf rec;
	size_t len;

	/* All lookups first, then all reads and stores: the cache sorts its
	 * list again after each store. */
	miss = xmalloc((n > 0 ? n : 1) * sizeof(*miss));
	for (i = 0; i < n; i++) {
		if (mailbox_cache_get(s->box, seqs[i], MAILBOX_CACHE_SORT,
		        &data, &len) == 1 &&
		    hdr_decode(data, len, vals))
			call_fn(i, vals, fn, ctx);
		else
			miss[nmiss++] = i;
		vals_free(vals);
	}
	buf_init(&rec,
	    IMAPD_SORT_F_COUNT * (SORT_REFERENCES_MAX + SORT_CACHE_FIELD_HDR) +
	        1);
	for (i = 0; i < nmiss && !s->broken; i++) {
		hdr_read(s, seqs[miss[i]], vals);
		call_fn(miss[i], vals, fn, ctx);
		if (!mailbox_msg_gone(s->box, seqs[miss[i]])) {
			hdr_encode(&rec, vals);
			if (rec.len > 0)
				mailbox_cache_put(s->box, seqs[miss[i]],
				    MAILBOX_CACHE_SORT, rec.data, rec.len);
		}
		vals_free(vals);
	}
	buf_free(&rec);
	free(miss);
}

int64_t
imapd_sort_date(struct mailbox *box, uint32_t seq, const char *date)
{
	uint32_t kept;
	int64_t t;

	/* Dovecot 2.3 keeps a sent date in 32 unsigned bits, 0 meaning
	 * "none": a date before 1970 wraps (to after 2038), and the one
	 * that wraps to 0 is none. Kept so, for the same order. */
	if (date == NULL || !imap_sent_date(date, &t))
		return mailbox_msg_received(box, seq);
	kept = (uint32_t)t;
	return kept == 0 ? mailbox_msg_received(box, seq) : (int64_t)kept;
}

int
imapd_sort_charset(struct imapd_session *s, const struct imap_arg *arg)
{
	const char *cs;
	size_t len;

	if (imap_arg_astring(arg, &cs, &len) &&
	    (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0))
		return 1;
	imapd_tagged(s, "NO",
	    "[BADCHARSET (UTF-8 US-ASCII)] "
	    "Unsupported charset.");
	return 0;
}

/* ------------------------------------------------------------- SORT */

enum sort_key {
	SORT_ARRIVAL,
	SORT_CC,
	SORT_DATE,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
	SORT_DISPLAYFROM,
	SORT_DISPLAYTO,
	SORT_KEYS
};

/* The string keys, in struct sort_rec's str[]. */
enum sort_str {
	STR_SUBJECT,
	STR_FROM,
	STR_TO,
	STR_CC,
	STR_DISPLAYFROM,
	STR_DISPLAYTO,
	STR_COUNT
};

static const struct {
	const char *name;
	enum sort_key key;
} sort_names[] = {
    {"ARRIVAL", SORT_ARRIVAL},
    {"CC", SORT_CC},
    {"DATE", SORT_DATE},
    {"FROM", SORT_FROM},
    {"SIZE", SORT_SIZE},
    {"SUBJECT", SORT_SUBJECT},
    {"TO", SORT_TO},
    {"DISPLAYFROM", SORT_DISPLAYFROM},
    {"DISPLAYTO", SORT_DISPLAYTO},
};

struct sort_crit {
	enum sort_key key;
	int reverse;
};

struct sort_rec {
	uint32_t seq;
	int64_t date;
	char *str[STR_COUNT]; /* "" when the key is not asked for */
};

struct sort_ctx {
	struct imapd_session *s;
	struct sort_rec *recs;
	struct sort_crit prog[SORT_KEYS];
	size_t nprog;
	unsigned want; /* bit per enum sort_key */
	size_t mem;
};

static int
str_of_key(enum sort_key k)
{
	switch (k) {
	case SORT_SUBJECT:
		return STR_SUBJECT;
	case SORT_FROM:
		return STR_FROM;
	case SORT_TO:
		return STR_TO;
	case SORT_CC:
		return STR_CC;
	case SORT_DISPLAYFROM:
		return STR_DISPLAYFROM;
	case SORT_DISPLAYTO:
		return STR_DISPLAYTO;
	default:
		return -1;
	}
}

static char *
addr_key(const char *v, int display)
{
	return v == NULL ? xstrdup("") : imap_sort_addr_key(v, display);
}

static void
sort_keys_of(void *vctx, size_t i, const struct imapd_sort_hdr *h)
{
	struct sort_ctx *x = vctx;
	struct sort_rec *r = &x->recs[i];
	size_t k;
	int fwd;

	if (x->mem > IMAPD_SORT_MEM_MAX)
		return;
	if (x->want & (1U << SORT_DATE))
		r->date = imapd_sort_date(x->s->box, r->seq,
		    h->v[IMAPD_SORT_F_DATE]);
	if (x->want & (1U << SORT_SUBJECT))
		r->str[STR_SUBJECT] =
		    h->v[IMAPD_SORT_F_SUBJECT] == NULL
		        ? xstrdup("")
		        : imap_base_subject(h->v[IMAPD_SORT_F_SUBJECT], &fwd);
	if (x->want & (1U << SORT_FROM))
		r->str[STR_FROM] = addr_key(h->v[IMAPD_SORT_F_FROM], 0);
	if (x->want & (1U << SORT_TO))
		r->str[STR_TO] = addr_key(h->v[IMAPD_SORT_F_TO], 0);
	if (x->want & (1U << SORT_CC))
		r->str[STR_CC] = addr_key(h->v[IMAPD_SORT_F_CC], 0);
	if (x->want & (1U << SORT_DISPLAYFROM))
		r->str[STR_DISPLAYFROM] = addr_key(h->v[IMAPD_SORT_F_FROM], 1);
	if (x->want & (1U << SORT_DISPLAYTO))
		r->str[STR_DISPLAYTO] = addr_key(h->v[IMAPD_SORT_F_TO], 1);
	for (k = 0; k < STR_COUNT; k++) {
		if (r->str[k] != NULL)
			x->mem += strlen(r->str[k]) + 1;
	}
}

/* qsort has no context argument in C99: the program being run. */
static const struct sort_ctx *sort_current;

static int
cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int
sort_cmp(const void *va, const void *vb)
{
	const struct sort_rec *a = va, *b = vb;
	const struct mailbox *box = sort_current->s->box;
	size_t i;
	int r = 0, k;

	for (i = 0; i < sort_current->nprog && r == 0; i++) {
		const struct sort_crit *c = &sort_current->prog[i];

		switch (c->key) {
		case SORT_ARRIVAL:
			r = cmp_num(mailbox_msg(box, a->seq)->received,
			    mailbox_msg(box, b->seq)->received);
			break;
		case SORT_DATE:
			r = cmp_num(a->date, b->date);
			break;
		case SORT_SIZE:
			r = mailbox_msg(box, a->seq)->size <
			            mailbox_msg(box, b->seq)->size
			        ? -1
			        : mailbox_msg(box, a->seq)->size >
			              mailbox_msg(box, b->seq)->size;
			break;
		default:
			k = str_of_key(c->key);
			r = strcmp(a->str[k], b->str[k]);
			r = r < 0 ? -1 : r > 0;
			break;
		}
		if (c->reverse)
			r = -r;
	}
	return r != 0 ? r : cmp_num(a->seq, b->seq);
}

/* The sort program: 1, or 0 after a BAD. */
static int
parse_program(
    struct imapd_session *s, const struct imap_arg *list, struct sort_ctx *x)
{
	const char *w;
	size_t i, k, len;
	int reverse = 0;

	if (list->type != IMAP_ARG_LIST) {
		imapd_tagged(s, "BAD", "Invalid sort argument.");
		return 0;
	}
	if (list->count == 0) {
		imapd_tagged(s, "BAD", "Empty sort program.");
		return 0;
	}
	for (i = 0; i < list->count; i++) {
		if (!imap_arg_astring(&list->list[i], &w, &len)) {
			imapd_tagged(s, "BAD", "Invalid sort list argument.");
			return 0;
		}
		if (strcasecmp(w, "REVERSE") == 0) {
			reverse = !reverse;
			continue;
		}
		for (k = 0; k < sizeof(sort_names) / sizeof(sort_names[0]);
		     k++) {
			if (strcasecmp(w, sort_names[k].name) == 0)
				break;
		}
		if (k == sizeof(sort_names) / sizeof(sort_names[0])) {
			imapd_tagged(s, "BAD", "Unknown sort argument.");
			return 0;
		}
		/* A key given twice: the second cannot change the order. */
		if (!(x->want & (1U << sort_names[k].key))) {
			x->want |= 1U << sort_names[k].key;
			x->prog[x->nprog].key = sort_names[k].key;
			x->prog[x->nprog].reverse = reverse;
			x->nprog++;
		}
		reverse = 0;
	}
	if (reverse) {
		imapd_tagged(s, "BAD", "Sort list ends with REVERSE.");
		return 0;
	}
	return 1;
}

#define RET_MIN   0x01
#define RET_MAX   0x02
#define RET_ALL   0x04
#define RET_COUNT 0x08
#define RET_SAVE  0x10

/* RETURN (...) of ESORT; 1, or 0 after a BAD. */
static int
parse_return(
    struct imapd_session *s, const struct imap_arg *list, unsigned *ret_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", RET_MIN}, {"MAX", RET_MAX}, {"ALL", RET_ALL},
	    {"COUNT", RET_COUNT}, {"SAVE", RET_SAVE}};
	size_t i, k;

	if (list->type != IMAP_ARG_LIST) {
		imapd_tagged(s, "BAD", "Invalid RETURN options.");
		return 0;
	}
	*ret_r = 0;
	for (i = 0; i < list->count; i++) {
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
			if (imap_arg_atom_is(&list->list[i], opts[k].name))
				break;
		}
		if (k == sizeof(opts) / sizeof(opts[0])) {
			imapd_tagged(s, "BAD", "Invalid RETURN option.");
			return 0;
		}
		*ret_r |= opts[k].bit;
	}
	/* RFC 4731 3.1: RETURN () means ALL. */
	if (*ret_r == 0)
		*ret_r = RET_ALL;
	return 1;
}

/* SEARCHRES (RFC 5182 2.4): the UIDs of the result, or with MIN / MAX
 * alone only those. */
static void
save_sorted(struct imapd_session *s, const struct sort_rec *recs, size_t n,
    unsigned ret)
{
	size_t i;

	free(s->saved);
	s->saved = xmalloc((n > 0 ? n : 1) * sizeof(*s->saved));
	s->saved_count = 0;
	if (n > 0 && (ret & (RET_MIN | RET_MAX)) &&
	    !(ret & (RET_ALL | RET_COUNT))) {
		if (ret & RET_MIN)
			s->saved[s->saved_count++] =
			    mailbox_msg(s->box, recs[0].seq)->uid;
		if ((ret & RET_MAX) && (n > 1 || !(ret & RET_MIN)))
			s->saved[s->saved_count++] =
			    mailbox_msg(s->box, recs[n - 1].seq)->uid;
	} else {
		for (i = 0; i < n; i++)
			s->saved[s->saved_count++] =
			    mailbox_msg(s->box, recs[i].seq)->uid;
	}
	/* kept ascending, as SEARCH keeps it */
	for (i = 1; i < s->saved_count; i++) {
		uint32_t u = s->saved[i];
		size_t j = i;

		for (; j > 0 && s->saved[j - 1] > u; j--)
			s->saved[j] = s->saved[j - 1];
		s->saved[j] = u;
	}
}

static uint32_t
num_of(struct imapd_session *s, int uid, uint32_t seq)
{
	return uid ? mailbox_msg(s->box, seq)->uid : seq;
}

/* ESORT's ALL: the result in sort order, runs of consecutive ascending
 * numbers as ranges (RFC 5267 3.2). */
static void
append_sorted_set(struct buf *out, const uint32_t *nums, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		j = i;
		while (j + 1 < n && nums[j + 1] == nums[j] + 1)
			j++;
		if (i > 0)
			imapd_bputc(out, ',');
		if (j > i)
			imapd_bprintf(out, "%u:%u", nums[i], nums[j]);
		else
			imapd_bprintf(out, "%u", nums[i]);
		i = j + 1;
	}
}

static void
send_result(struct imapd_session *s, struct imapd_cmd *c,
    const struct sort_rec *recs, size_t n, unsigned ret, int esort,
    int modseq_used)
{
	uint64_t maxmod = 0;
	uint32_t *nums;
	struct buf out;
	size_t i;

	nums = xmalloc((n > 0 ? n : 1) * sizeof(*nums));
	for (i = 0; i < n; i++) {
		const struct mailbox_msg *m = mailbox_msg(s->box, recs[i].seq);

		nums[i] = num_of(s, c->uid, recs[i].seq);
		if (m->modseq > maxmod)
			maxmod = m->modseq;
	}
	buf_init(&out, n * SORT_NUM_WIDTH * 2 + IMAPD_RESP_SLACK);
	if (!esort) {
		imapd_bputs(&out, "* SORT");
		for (i = 0; i < n; i++)
			imapd_bprintf(&out, " %u", nums[i]);
		if (modseq_used && n > 0)
			imapd_bprintf(
			    &out, " (MODSEQ %llu)", (unsigned long long)maxmod);
		imapd_bputs(&out, "\r\n");
	} else if (ret != RET_SAVE) {
		imapd_bputs(&out, "* ESEARCH (TAG ");
		(void)imap_append_string(&out, c->tag, strlen(c->tag), 0);
		imapd_bputc(&out, ')');
		if (c->uid)
			imapd_bputs(&out, " UID");
		if ((ret & RET_MIN) && n > 0)
			imapd_bprintf(&out, " MIN %u", nums[0]);
		if ((ret & RET_MAX) && n > 0)
			imapd_bprintf(&out, " MAX %u", nums[n - 1]);
		if ((ret & RET_ALL) && n > 0) {
			imapd_bputs(&out, " ALL ");
			append_sorted_set(&out, nums, n);
		}
		if (ret & RET_COUNT)
			imapd_bprintf(&out, " COUNT %zu", n);
		if (modseq_used && n > 0)
			imapd_bprintf(
			    &out, " MODSEQ %llu", (unsigned long long)maxmod);
		imapd_bputs(&out, "\r\n");
	}
	(void)imapd_send(s, out.data, out.len);
	buf_free(&out);
	free(nums);
}

void
imapd_cmd_sort(struct imapd_session *s, struct imapd_cmd *c)
{
	struct sort_ctx x;
	uint32_t *hits = NULL;
	uint64_t maxmod;
	unsigned ret = 0;
	size_t i = 0, k, nhits = 0;
	int esort = 0, modseq_used = 0;

	memset(&x, 0, sizeof(x));
	x.s = s;
	if (i < c->count && imap_arg_atom_is(&c->args[i], "RETURN")) {
		if (i + 1 >= c->count ||
		    !parse_return(s, &c->args[i + 1], &ret)) {
			if (i + 1 >= c->count)
				imapd_tagged(
				    s, "BAD", "Invalid RETURN options.");
			return;
		}
		esort = 1;
		i += 2;
	}
	if (i >= c->count) {
		imapd_tagged(s, "BAD", "Missing sort program.");
		return;
	}
	if (!parse_program(s, &c->args[i], &x))
		return;
	i++;
	if (i >= c->count) {
		imapd_tagged(s, "BAD", "Missing charset.");
		return;
	}
	if (!imapd_sort_charset(s, &c->args[i]))
		return;
	i++;
	if (!imapd_search_run(s, c->args + i, c->count - i, &hits, &nhits,
	        &modseq_used, &maxmod))
		return;
	x.recs = xcalloc(nhits > 0 ? nhits : 1, sizeof(*x.recs));
	for (k = 0; k < nhits; k++) {
		x.recs[k].seq = hits[k];
		/* read once here, not in the comparisons */
		if (x.want & (1U << SORT_ARRIVAL))
			(void)mailbox_msg_received(s->box, hits[k]);
	}
	/* ARRIVAL and SIZE are in the index; the rest is in the header */
	if (x.want & ~((1U << SORT_ARRIVAL) | (1U << SORT_SIZE)))
		imapd_sort_headers(s, hits, nhits, sort_keys_of, &x);
	free(hits);
	if (x.mem <= IMAPD_SORT_MEM_MAX) {
		for (k = 0; k < nhits; k++) {
			size_t f;

			for (f = 0; f < STR_COUNT; f++) {
				if (x.recs[k].str[f] == NULL)
					x.recs[k].str[f] = xstrdup("");
			}
		}
		sort_current = &x;
		qsort(x.recs, nhits, sizeof(*x.recs), sort_cmp);
		sort_current = NULL;
		if (ret & RET_SAVE)
			save_sorted(s, x.recs, nhits, ret);
		send_result(s, c, x.recs, nhits, ret, esort, modseq_used);
	}
	for (k = 0; k < nhits; k++) {
		size_t f;

		for (f = 0; f < STR_COUNT; f++)
			free(x.recs[k].str[f]);
	}
	free(x.recs);
	if (x.mem > IMAPD_SORT_MEM_MAX) {
		imapd_tagged(s, "NO", "[LIMIT] Too much to sort.");
		return;
	}
	imapd_tagged(s, "OK", "Sort completed.");
}
