/* SPDX-License-Identifier: MIT */
/*
 * THREAD and UID THREAD (RFC 5256 section 4): ORDEREDSUBJECT (messages
 * grouped by base subject, threads in order of their first message's
 * sent date) and REFERENCES (section 4 steps 1-5: parent/child links from
 * References or In-Reply-To with loops refused, a root set, dummies
 * pruned, siblings in sent-date order, root threads gathered by base
 * subject), on the messages the search keys of imapd_search.c select.
 *
 * Where RFC 5256 leaves a choice, the choices are Dovecot 2.3's
 * (lib-storage index-thread*.c), so a folder threads alike in both: a
 * message without References and In-Reply-To loses the parent another
 * message's References gave it; a root dummy with one child is replaced
 * by the child only when the roots are sorted; dummies count in step 5
 * by their oldest child.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "mail/imap_sort.h"
#include "imapd_sort.h"

/* A message id is at most this long (RFC 5322 lines are 998 octets). */
#define THREAD_ID_MAX    1000
/* "(4294967295 " and its closing parenthesis, per message */
#define THREAD_NUM_WIDTH 16
#define HASH_MIN         64
#define FNV_OFFSET       2166136261u
#define FNV_PRIME        16777619u
#define NO_NODE          0

/* ------------------------------------------------ per message data */

struct thread_msg {
	uint32_t seq;
	int64_t date;  /* RFC 5256 sent date */
	char *subject; /* base subject, NULL when no Subject field */
	int reply;     /* the subject had Re: / Fwd: markers */
	char *msgid;   /* NULL: none valid */
	char **refs;   /* References ids, else the first In-Reply-To one */
	size_t nrefs;
};

struct thread_ctx {
	struct imapd_session *s;
	struct thread_msg *msgs;
	size_t nmsgs;
	size_t mem;
	int refs_wanted;
};

static void
collect(void *vctx, size_t i, const struct imapd_sort_hdr *h)
{
	struct thread_ctx *x = vctx;
	struct thread_msg *t = &x->msgs[i];
	const char *v;
	struct buf id;
	size_t pos, cap = 0;

	t->date = imapd_sort_date(x->s->box, t->seq, h->v[IMAPD_SORT_F_DATE]);
	if (x->mem > IMAPD_SORT_MEM_MAX)
		return;
	if (h->v[IMAPD_SORT_F_SUBJECT] != NULL) {
		t->subject =
		    imap_base_subject(h->v[IMAPD_SORT_F_SUBJECT], &t->reply);
		x->mem += strlen(t->subject) + 1;
	}
	if (!x->refs_wanted)
		return;
	buf_init(&id, THREAD_ID_MAX);
	pos = 0;
	v = h->v[IMAPD_SORT_F_MESSAGE_ID];
	if (v != NULL && imap_msgid_next(v, &pos, &id)) {
		t->msgid = xstrdup(buf_cstr(&id));
		x->mem += id.len + 1;
	}
	/* References when it holds a valid id, else In-Reply-To's first
	 * (RFC 5256 4 (1)(A)), as Dovecot reads them */
	v = h->v[IMAPD_SORT_F_REFERENCES];
	pos = 0;
	while (v != NULL && imap_msgid_next(v, &pos, &id)) {
		if (t->nrefs == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			t->refs = xrealloc(t->refs, cap * sizeof(*t->refs));
		}
		t->refs[t->nrefs++] = xstrdup(buf_cstr(&id));
		x->mem += id.len + 1 + sizeof(char *);
	}
	v = h->v[IMAPD_SORT_F_IN_REPLY_TO];
	pos = 0;
	if (t->nrefs == 0 && v != NULL && imap_msgid_next(v, &pos, &id)) {
		t->refs = xmalloc(sizeof(*t->refs));
		t->refs[t->nrefs++] = xstrdup(buf_cstr(&id));
		x->mem += id.len + 1;
	}
	buf_free(&id);
}

static void
msgs_free(struct thread_ctx *x)
{
	size_t i, k;

	for (i = 0; i < x->nmsgs; i++) {
		free(x->msgs[i].subject);
		free(x->msgs[i].msgid);
		for (k = 0; k < x->msgs[i].nrefs; k++)
			free(x->msgs[i].refs[k]);
		free(x->msgs[i].refs);
	}
	free(x->msgs);
}

/* --------------------------------------------------- ORDEREDSUBJECT */

static int
cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static const char *
subject_of(const struct thread_msg *m)
{
	return m->subject != NULL ? m->subject : "";
}

static int
ordered_cmp(const void *va, const void *vb)
{
	const struct thread_msg *a = va, *b = vb;
	int r = strcmp(subject_of(a), subject_of(b));

	if (r != 0)
		return r < 0 ? -1 : 1;
	if ((r = cmp_i64(a->date, b->date)) != 0)
		return r;
	return cmp_i64(a->seq, b->seq);
}

struct subject_thread {
	size_t first, count; /* a run of msgs */
};

static const struct thread_msg *group_msgs;

static int
group_cmp(const void *va, const void *vb)
{
	const struct subject_thread *a = va, *b = vb;
	int r = cmp_i64(group_msgs[a->first].date, group_msgs[b->first].date);

	return r != 0 ? r
	              : cmp_i64(
	                    group_msgs[a->first].seq, group_msgs[b->first].seq);
}

static uint32_t
num_of(struct imapd_session *s, int uid, uint32_t seq)
{
	return uid ? mailbox_msg(s->box, seq)->uid : seq;
}

static void
ordered_subject(struct thread_ctx *x, int uid, struct buf *out)
{
	struct subject_thread *g;
	size_t i, k, ng = 0;

	qsort(x->msgs, x->nmsgs, sizeof(*x->msgs), ordered_cmp);
	g = xmalloc((x->nmsgs > 0 ? x->nmsgs : 1) * sizeof(*g));
	for (i = 0; i < x->nmsgs; i++) {
		if (ng > 0 && strcmp(subject_of(&x->msgs[i]),
		                  subject_of(&x->msgs[g[ng - 1].first])) == 0) {
			g[ng - 1].count++;
			continue;
		}
		g[ng].first = i;
		g[ng].count = 1;
		ng++;
	}
	group_msgs = x->msgs;
	qsort(g, ng, sizeof(*g), group_cmp);
	group_msgs = NULL;
	/* (1), (1 2), (1 (2)(3)): the first message is the parent of the
	 * others (RFC 5256 section 4) */
	for (i = 0; i < ng; i++) {
		const struct thread_msg *m = &x->msgs[g[i].first];

		imapd_bprintf(out, "(%u", num_of(x->s, uid, m[0].seq));
		if (g[i].count == 2)
			imapd_bprintf(out, " %u", num_of(x->s, uid, m[1].seq));
		else if (g[i].count > 2) {
			imapd_bputc(out, ' ');
			for (k = 1; k < g[i].count; k++)
				imapd_bprintf(
				    out, "(%u)", num_of(x->s, uid, m[k].seq));
		}
		imapd_bputc(out, ')');
	}
	free(g);
}

/* -------------------------------------------------------- REFERENCES */

struct tnode {
	uint32_t msg;    /* 1 + index in msgs; 0 for a dummy */
	uint32_t parent; /* NO_NODE: a root */
	/* the tree after step 3 ("shadow" links, as Dovecot names them) */
	uint32_t first_child, next_sibling;
};

struct troot {
	uint32_t node;
	uint32_t msg; /* message sorted by: itself, a dummy's oldest child */
	int64_t date;
	uint32_t seq;
	uint32_t idx1, parent_idx1; /* step 5 (B): 1 + index in roots */
	int dummy, ignore, reply;
};

struct refs_ctx {
	struct thread_ctx *x;
	struct tnode *nodes;
	size_t nnodes, cnodes;
	/* message id -> node: open addressing, ids owned by the table */
	uint32_t *slots;
	char **slot_ids;
	size_t nslots, used;
	struct troot *roots;
	size_t nroots, croots;
};

static uint32_t
node_new(struct refs_ctx *r)
{
	if (r->nnodes == r->cnodes) {
		r->cnodes = r->cnodes == 0 ? 64 : r->cnodes * 2;
		r->nodes = xrealloc(r->nodes, r->cnodes * sizeof(*r->nodes));
	}
	memset(&r->nodes[r->nnodes], 0, sizeof(r->nodes[0]));
	return (uint32_t)r->nnodes++;
}

static uint32_t
hash_str(const char *s)
{
	uint32_t h = FNV_OFFSET;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * FNV_PRIME;
	return h;
}

static void
hash_grow(struct refs_ctx *r)
{
	uint32_t *old = r->slots;
	char **old_ids = r->slot_ids;
	size_t n = r->nslots, i, j;

	r->nslots = n == 0 ? HASH_MIN : n * 2;
	r->slots = xcalloc(r->nslots, sizeof(*r->slots));
	r->slot_ids = xcalloc(r->nslots, sizeof(*r->slot_ids));
	for (i = 0; i < n; i++) {
		if (old_ids[i] == NULL)
			continue;
		j = hash_str(old_ids[i]) & (r->nslots - 1);
		while (r->slot_ids[j] != NULL)
			j = (j + 1) & (r->nslots - 1);
		r->slots[j] = old[i];
		r->slot_ids[j] = old_ids[i];
	}
	free(old);
	free(old_ids);
}

/* The node of a message id, made (as a dummy) when new. */
static uint32_t
node_of_id(struct refs_ctx *r, const char *id)
{
	size_t j;

	if ((r->used + 1) * 2 > r->nslots)
		hash_grow(r);
	j = hash_str(id) & (r->nslots - 1);
	while (r->slot_ids[j] != NULL) {
		if (strcmp(r->slot_ids[j], id) == 0)
			return r->slots[j];
		j = (j + 1) & (r->nslots - 1);
	}
	r->slot_ids[j] = xstrdup(id);
	r->slots[j] = node_new(r);
	r->used++;
	return r->slots[j];
}

/* Is anc the node itself or one of its ancestors? */
static int
has_ancestor(const struct refs_ctx *r, uint32_t node, uint32_t anc)
{
	while (node != anc) {
		if (r->nodes[node].parent == NO_NODE)
			return 0;
		node = r->nodes[node].parent;
	}
	return 1;
}

/* Step 1 (A): links parent -> child unless the child has a parent
 * already or the link would make a loop. */
static void
link_ref(struct refs_ctx *r, uint32_t parent, uint32_t child)
{
	if (has_ancestor(r, parent, child))
		return;
	if (r->nodes[child].parent == NO_NODE)
		r->nodes[child].parent = parent;
}

static void
add_message(struct refs_ctx *r, size_t i)
{
	const struct thread_msg *m = &r->x->msgs[i];
	uint32_t node, parent = NO_NODE, c;
	size_t k;

	/* RFC 5256 4 (1): a duplicate id gets a node of its own */
	node = m->msgid != NULL ? node_of_id(r, m->msgid) : node_new(r);
	if (r->nodes[node].msg != 0)
		node = node_new(r);
	r->nodes[node].msg = (uint32_t)i + 1;
	if (m->nrefs > 0) {
		parent = node_of_id(r, m->refs[0]);
		for (k = 1; k < m->nrefs; k++) {
			c = node_of_id(r, m->refs[k]);
			link_ref(r, parent, c);
			parent = c;
		}
	}
	/* (1)(B): the message's own references decide its parent */
	if (r->nodes[node].parent != parent)
		r->nodes[node].parent = NO_NODE;
	if (parent != NO_NODE)
		link_ref(r, parent, node);
}

static void
add_child(struct refs_ctx *r, uint32_t parent, uint32_t child)
{
	r->nodes[child].next_sibling = r->nodes[parent].first_child;
	r->nodes[parent].first_child = child;
}

static struct troot *
root_new(struct refs_ctx *r)
{
	if (r->nroots == r->croots) {
		r->croots = r->croots == 0 ? 64 : r->croots * 2;
		r->roots = xrealloc(r->roots, r->croots * sizeof(*r->roots));
	}
	memset(&r->roots[r->nroots], 0, sizeof(r->roots[0]));
	return &r->roots[r->nroots++];
}

/* Steps 2 and 3: the roots, and each message under its nearest
 * ancestor that is a message (or under its root dummy). */
static void
make_tree(struct refs_ctx *r)
{
	uint32_t n, p;
	struct troot *t;

	for (n = 1; n < r->nnodes; n++) {
		if (r->nodes[n].parent == NO_NODE) {
			t = root_new(r);
			t->node = n;
			t->dummy = r->nodes[n].msg == 0;
			continue;
		}
		if (r->nodes[n].msg == 0)
			continue;
		p = r->nodes[n].parent;
		while (r->nodes[p].msg == 0 && r->nodes[p].parent != NO_NODE)
			p = r->nodes[p].parent;
		add_child(r, p, n);
	}
}

static const struct thread_msg *sort_msgs;

static int
node_msg_cmp(const void *va, const void *vb)
{
	const struct thread_msg *a = &sort_msgs[*(const uint32_t *)va - 1];
	const struct thread_msg *b = &sort_msgs[*(const uint32_t *)vb - 1];
	int c = cmp_i64(a->date, b->date);

	return c != 0 ? c : cmp_i64(a->seq, b->seq);
}

/* The children of node sorted by sent date, then number (step 4), into
 * *nodes_r (to free); their count. */
static size_t
sorted_children(struct refs_ctx *r, uint32_t node, uint32_t **nodes_r)
{
	uint32_t c, *keys, *nodes;
	size_t n = 0, i;

	for (c = r->nodes[node].first_child; c != NO_NODE;
	     c = r->nodes[c].next_sibling)
		n++;
	/* pairs (message, node) sorted by message: sort keys with the
	 * node packed after them */
	keys = xmalloc((n > 0 ? n : 1) * 2 * sizeof(*keys));
	i = 0;
	for (c = r->nodes[node].first_child; c != NO_NODE;
	     c = r->nodes[c].next_sibling) {
		keys[2 * i] = r->nodes[c].msg;
		keys[2 * i + 1] = c;
		i++;
	}
	sort_msgs = r->x->msgs;
	qsort(keys, n, 2 * sizeof(*keys), node_msg_cmp);
	sort_msgs = NULL;
	nodes = xmalloc((n > 0 ? n : 1) * sizeof(*nodes));
	for (i = 0; i < n; i++)
		nodes[i] = keys[2 * i + 1];
	free(keys);
	*nodes_r = nodes;
	return n;
}

static void
root_fill(struct refs_ctx *r, struct troot *t, uint32_t msg)
{
	t->msg = msg;
	t->date = r->x->msgs[msg - 1].date;
	t->seq = r->x->msgs[msg - 1].seq;
}

static int
root_cmp(const void *va, const void *vb)
{
	const struct troot *a = va, *b = vb;
	int c = cmp_i64(a->date, b->date);

	return c != 0 ? c : cmp_i64(a->seq, b->seq);
}

/* Step 4 for the roots: a dummy sorts as its oldest child, and one with
 * a single child is replaced by it (step 3's deferred case). */
static void
sort_roots(struct refs_ctx *r)
{
	uint32_t *kids;
	size_t i, n;

	for (i = 0; i < r->nroots; i++) {
		struct troot *t = &r->roots[i];

		if (t->ignore)
			continue;
		if (!t->dummy) {
			root_fill(r, t, r->nodes[t->node].msg);
			continue;
		}
		if (r->nodes[t->node].first_child == NO_NODE) {
			t->ignore = 1;
			continue;
		}
		n = sorted_children(r, t->node, &kids);
		if (n == 1) {
			t->node = kids[0];
			t->dummy = 0;
		}
		root_fill(r, t, r->nodes[kids[0]].msg);
		free(kids);
	}
	qsort(r->roots, r->nroots, sizeof(*r->roots), root_cmp);
}

/* Step 5 (A)-(B): the subject table, root by root in date order. */
static void
gather_subjects(struct refs_ctx *r)
{
	uint32_t *table;
	size_t nslots = HASH_MIN, i, j;
	const struct thread_msg *m;

	while (nslots < r->nroots * 2)
		nslots *= 2;
	table = xcalloc(nslots, sizeof(*table)); /* 1 + index in roots */
	for (i = 0; i < r->nroots; i++) {
		struct troot *t = &r->roots[i], *h;

		t->idx1 = (uint32_t)i + 1;
		/* a dummy counts as its oldest child: sort_roots put that
		 * child in t->msg */
		if (t->ignore)
			continue;
		m = &r->x->msgs[t->msg - 1];
		/* (ii) no subject, or an empty one: not gathered */
		if (m->subject == NULL || m->subject[0] == '\0')
			continue;
		j = hash_str(m->subject) & (nslots - 1);
		while (table[j] != 0) {
			const struct thread_msg *hm;

			h = &r->roots[table[j] - 1];
			hm = &r->x->msgs[h->msg - 1];
			if (strcmp(hm->subject, m->subject) == 0)
				break;
			j = (j + 1) & (nslots - 1);
		}
		if (table[j] == 0) {
			/* (iv) the first root with this subject */
			table[j] = t->idx1;
		} else {
			h = &r->roots[table[j] - 1];
			/* (v): a dummy, or a non-reply, is the better holder */
			if (!h->dummy &&
			    (t->dummy || (h->reply && !m->reply))) {
				h->parent_idx1 = t->idx1;
				table[j] = t->idx1;
			} else
				t->parent_idx1 = h->idx1;
		}
		t->reply = m->reply;
	}
	free(table);
}

/* Step 5 (C) for one root whose subject another root holds. */
static void
merge_root(struct refs_ctx *r, size_t cur_i)
{
	struct troot *cur = &r->roots[cur_i], *top = cur, *t;
	uint32_t c, next, dummy;

	do
		top = &r->roots[top->parent_idx1 - 1];
	while (top->parent_idx1 != 0);
	if (cur->dummy) {
		/* both dummies: the children become siblings */
		for (c = r->nodes[cur->node].first_child; c != NO_NODE;
		     c = next) {
			next = r->nodes[c].next_sibling;
			add_child(r, top->node, c);
		}
		r->nodes[cur->node].first_child = NO_NODE;
		cur->ignore = 1;
	} else if (top->dummy || (cur->reply && !top->reply)) {
		add_child(r, top->node, cur->node);
		cur->ignore = 1;
	} else {
		/* neither: a new dummy holds both */
		size_t top_i = (size_t)(top - r->roots);

		dummy = node_new(r);
		t = root_new(r); /* may move the array */
		cur = &r->roots[cur_i];
		top = &r->roots[top_i];
		t->node = dummy;
		t->dummy = 1;
		t->idx1 = (uint32_t)r->nroots;
		add_child(r, dummy, top->node);
		add_child(r, dummy, cur->node);
		top->parent_idx1 = t->idx1;
		top->ignore = 1;
		cur->ignore = 1;
	}
}

static int
merge_subjects(struct refs_ctx *r)
{
	size_t i, n = r->nroots;
	int changed = 0;

	for (i = 0; i < n; i++) {
		if (r->roots[i].parent_idx1 != 0 && !r->roots[i].ignore) {
			merge_root(r, i);
			changed = 1;
		}
	}
	return changed;
}

/* Writing a tree without recursion: a thread can be a chain as long
 * as the folder. */
struct wframe {
	uint32_t *kids;
	size_t n, pos;
	int close; /* the list item that opened this frame wants a ')' */
};

/* The children of node (it has some), and theirs: "n" alone when a node
 * has one child, else "(n ...)" each (RFC 5256 section 4). */
static void
write_children(struct refs_ctx *r, uint32_t node, int uid, struct buf *out)
{
	struct wframe *st = NULL, *f;
	size_t depth = 0, cap = 0;
	uint32_t k, num;
	int close = 1, kids;

	for (;;) {
		if (node != NO_NODE) {
			if (depth == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				st = xrealloc(st, cap * sizeof(*st));
			}
			st[depth].n = sorted_children(r, node, &st[depth].kids);
			st[depth].pos = 0;
			st[depth].close = close;
			depth++;
			node = NO_NODE;
		}
		if (depth == 0)
			break;
		f = &st[depth - 1];
		if (f->pos == f->n) {
			if (f->close)
				imapd_bputc(out, ')');
			free(f->kids);
			depth--;
			continue;
		}
		k = f->kids[f->pos++];
		num = num_of(r->x->s, uid, r->x->msgs[r->nodes[k].msg - 1].seq);
		kids = r->nodes[k].first_child != NO_NODE;
		if (f->n == 1) {
			imapd_bprintf(out, "%u", num);
			if (kids) {
				imapd_bputc(out, ' ');
				node = k;
				close = 0;
			}
		} else if (!kids) {
			imapd_bprintf(out, "(%u)", num);
		} else {
			imapd_bprintf(out, "(%u ", num);
			node = k;
			close = 1;
		}
	}
	free(st);
}

static void
references(struct thread_ctx *x, int uid, struct buf *out)
{
	struct refs_ctx r;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.x = x;
	(void)node_new(&r); /* index 0 is NO_NODE */
	for (i = 0; i < x->nmsgs; i++)
		add_message(&r, i);
	make_tree(&r);
	sort_roots(&r);
	gather_subjects(&r);
	if (merge_subjects(&r))
		sort_roots(&r);
	for (i = 0; i < r.nroots; i++) {
		const struct troot *t = &r.roots[i];
		int kids = r.nodes[t->node].first_child != NO_NODE;

		if (t->ignore || (t->dummy && !kids))
			continue;
		if (!kids) {
			imapd_bprintf(out, "(%u)",
			    num_of(x->s, uid, x->msgs[t->msg - 1].seq));
			continue;
		}
		imapd_bputc(out, '(');
		if (!t->dummy)
			imapd_bprintf(out, "%u ",
			    num_of(x->s, uid, x->msgs[t->msg - 1].seq));
		write_children(&r, t->node, uid, out);
	}
	for (i = 0; i < r.nslots; i++)
		free(r.slot_ids[i]);
	free(r.slot_ids);
	free(r.slots);
	free(r.nodes);
	free(r.roots);
}

void
imapd_cmd_thread(struct imapd_session *s, struct imapd_cmd *c)
{
	struct thread_ctx x;
	uint32_t *hits;
	uint64_t maxmod;
	size_t nhits, i;
	struct buf out;
	int modseq_used, refs;

	if (c->count < 2) {
		imapd_tagged(s, "BAD", "Missing thread algorithm or charset.");
		return;
	}
	if (imap_arg_atom_is(&c->args[0], "REFERENCES"))
		refs = 1;
	else if (imap_arg_atom_is(&c->args[0], "ORDEREDSUBJECT"))
		refs = 0;
	else {
		imapd_tagged(s, "BAD", "Unknown thread algorithm.");
		return;
	}
	if (!imapd_sort_charset(s, &c->args[1]))
		return;
	if (!imapd_search_run(s, c->args + 2, c->count - 2, &hits, &nhits,
	        &modseq_used, &maxmod))
		return;
	memset(&x, 0, sizeof(x));
	x.s = s;
	x.refs_wanted = refs;
	x.nmsgs = nhits;
	x.msgs = xcalloc(nhits > 0 ? nhits : 1, sizeof(*x.msgs));
	for (i = 0; i < nhits; i++)
		x.msgs[i].seq = hits[i];
	imapd_sort_headers(s, hits, nhits, collect, &x);
	free(hits);
	if (x.mem > IMAPD_SORT_MEM_MAX) {
		msgs_free(&x);
		imapd_tagged(s, "NO", "[LIMIT] Too many messages to thread.");
		return;
	}
	buf_init(&out, nhits * THREAD_NUM_WIDTH + IMAPD_RESP_SLACK);
	imapd_bputs(&out, "* THREAD");
	if (nhits > 0) {
		imapd_bputc(&out, ' ');
		if (refs)
			references(&x, c->uid, &out);
		else
			ordered_subject(&x, c->uid, &out);
	}
	imapd_bputs(&out, "\r\n");
	(void)imapd_send(s, out.data, out.len);
	buf_free(&out);
	msgs_free(&x);
	imapd_tagged(s, "OK", "Thread completed.");
}
