/* SPDX-License-Identifier: MIT */
/*
 * Failure counts for the auth service's growing delays (see auth_fail.h):
 * a tsearch(3) tree finds a key in O(log n) whatever the keys are, and a
 * list in order of the last failure (oldest at the tail) makes expiry and
 * eviction O(1) per entry. Every failure moves its entry to the head, so
 * the tail is always the entry that failed least recently. No RFCs; the
 * idea is Dovecot's auth_failure_delay and Postfix's anvil.
 */
#include <search.h> /* tdestroy: a GNU extension, config.h asks for it */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "auth_fail.h"

struct auth_fail_entry {
	char *key;
	unsigned count;
	uint64_t last_ms;
	struct auth_fail_entry *newer, *older;
};

struct auth_fail_table {
	void *root; /* tsearch tree of entries, by key */
	size_t size, max;
	uint64_t window_ms;
	struct auth_fail_entry *newest, *oldest;
};

static int
auth_fail_cmp(const void *a, const void *b)
{
	const struct auth_fail_entry *x = a, *y = b;

	return strcmp(x->key, y->key);
}

struct auth_fail_table *
auth_fail_create(size_t max, uint64_t window_ms)
{
	struct auth_fail_table *t = xcalloc(1, sizeof(*t));

	if (max == 0)
		msg_panic("auth_fail_create: a table of no entries");
	t->max = max;
	t->window_ms = window_ms;
	return t;
}

static void
auth_fail_unlink(struct auth_fail_table *t, struct auth_fail_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
auth_fail_push(struct auth_fail_table *t, struct auth_fail_entry *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void
auth_fail_remove(struct auth_fail_table *t, struct auth_fail_entry *e)
{
	if (tdelete(e, &t->root, auth_fail_cmp) == NULL)
		msg_panic("auth_fail: entry '%s' not in its tree", e->key);
	auth_fail_unlink(t, e);
	t->size--;
	free(e->key);
	free(e);
}

static int
auth_fail_expired(const struct auth_fail_table *t,
    const struct auth_fail_entry *e, uint64_t now_ms)
{
	return now_ms >= e->last_ms && now_ms - e->last_ms >= t->window_ms;
}

/* Drops, oldest first, every entry whose window has passed. */
static void
auth_fail_expire(struct auth_fail_table *t, uint64_t now_ms)
{
	while (t->oldest != NULL && auth_fail_expired(t, t->oldest, now_ms))
		auth_fail_remove(t, t->oldest);
}

static struct auth_fail_entry *
auth_fail_find(struct auth_fail_table *t, const char *key)
{
	struct auth_fail_entry probe = {.key = (char *)key};
	void **found = tfind(&probe, &t->root, auth_fail_cmp);

	return found != NULL ? *found : NULL;
}

unsigned
auth_fail_count(struct auth_fail_table *t, const char *key, uint64_t now_ms)
{
	struct auth_fail_entry *e;

	auth_fail_expire(t, now_ms);
	e = auth_fail_find(t, key);
	return e != NULL ? e->count : 0;
}

unsigned
auth_fail_add(struct auth_fail_table *t, const char *key, uint64_t now_ms)
{
	struct auth_fail_entry *e;

	auth_fail_expire(t, now_ms);
	if ((e = auth_fail_find(t, key)) != NULL) {
		if (e->count < AUTH_FAIL_COUNT_MAX)
			e->count++;
		auth_fail_unlink(t, e);
	} else {
		/* Full: the entry that failed least recently goes. */
		if (t->size >= t->max)
			auth_fail_remove(t, t->oldest);
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->count = 1;
		if (tsearch(e, &t->root, auth_fail_cmp) == NULL)
			msg_fatal("auth_fail: out of memory");
		t->size++;
	}
	e->last_ms = now_ms;
	auth_fail_push(t, e);
	return e->count;
}

void
auth_fail_clear(struct auth_fail_table *t, const char *key)
{
	struct auth_fail_entry *e = auth_fail_find(t, key);

	if (e != NULL)
		auth_fail_remove(t, e);
}

size_t
auth_fail_size(const struct auth_fail_table *t)
{
	return t->size;
}

static void
auth_fail_free_entry(void *p)
{
	struct auth_fail_entry *e = p;

	free(e->key);
	free(e);
}

void
auth_fail_free(struct auth_fail_table **t_r)
{
	struct auth_fail_table *t = *t_r;

	if (t == NULL)
		return;
	tdestroy(t->root, auth_fail_free_entry);
	free(t);
	*t_r = NULL;
}

uint64_t
auth_fail_delay(uint64_t base_ms, uint64_t max_ms, unsigned n)
{
	uint64_t d = base_ms;
	unsigned i;

	if (n == 0)
		return 0;
	for (i = 1; i < n && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	return d < max_ms ? d : max_ms;
}
