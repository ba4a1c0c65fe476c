/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash table (hash.h): FNV-1a over the key, separate
 * chaining, the bucket array doubled when the load passes one entry per
 * bucket. Iteration walks buckets in order; its position encodes the
 * bucket and the place in the chain. No RFCs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"

#define HASH_INITIAL  16
#define FNV_OFFSET    2166136261u
#define FNV_PRIME     16777619u
/* Iteration position: bucket in the high bits, chain index below. */
#define HASH_POS_BITS 20
#define HASH_POS_MASK ((1u << HASH_POS_BITS) - 1)

struct hash_entry {
	void *value;
	struct hash_entry *next;
	uint32_t hv; /* hash_key(key): growth and chain walks skip it */
	char key[];  /* in the entry's allocation: one malloc per entry */
};

struct hash {
	struct hash_entry **buckets;
	size_t size; /* a power of two */
	size_t count;
};

static uint32_t
hash_key(const char *key)
{
	uint32_t h = FNV_OFFSET;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= FNV_PRIME;
	}
	return h;
}

struct hash *
hash_create(void)
{
	struct hash *h = xcalloc(1, sizeof(*h));

	h->size = HASH_INITIAL;
	h->buckets = xcalloc(h->size, sizeof(*h->buckets));
	return h;
}

void
hash_free(struct hash **h_r, void (*free_value)(void *value))
{
	struct hash *h = *h_r;
	struct hash_entry *e, *next;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->size; i++) {
		for (e = h->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (free_value != NULL)
				free_value(e->value);
			free(e);
		}
	}
	free(h->buckets);
	free(h);
	*h_r = NULL;
}

static struct hash_entry **
hash_slot(const struct hash *h, const char *key, uint32_t hv)
{
	struct hash_entry **pp = &h->buckets[hv & (h->size - 1)];

	while (*pp != NULL &&
	       ((*pp)->hv != hv || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

void *
hash_get(const struct hash *h, const char *key)
{
	struct hash_entry *e = *hash_slot(h, key, hash_key(key));

	return e != NULL ? e->value : NULL;
}

static void
hash_grow(struct hash *h)
{
	struct hash_entry **old = h->buckets, *e, *next;
	size_t old_size = h->size, i, b;

	h->size *= 2;
	h->buckets = xcalloc(h->size, sizeof(*h->buckets));
	for (i = 0; i < old_size; i++) {
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			b = e->hv & (h->size - 1);
			e->next = h->buckets[b];
			h->buckets[b] = e;
		}
	}
	free(old);
}

void *
hash_put(struct hash *h, const char *key, void *value)
{
	uint32_t hv = hash_key(key);
	struct hash_entry **pp = hash_slot(h, key, hv), *e;
	void *old;
	size_t len;

	if (*pp != NULL) {
		old = (*pp)->value;
		(*pp)->value = value;
		return old;
	}
	len = strlen(key);
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->next = NULL;
	e->hv = hv;
	e->value = value;
	*pp = e;
	h->count++;
	if (h->count > h->size)
		hash_grow(h);
	return NULL;
}

void *
hash_del(struct hash *h, const char *key)
{
	struct hash_entry **pp = hash_slot(h, key, hash_key(key)), *e = *pp;
	void *value;

	if (e == NULL)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	h->count--;
	return value;
}

size_t
hash_count(const struct hash *h)
{
	return h->count;
}

const char *
hash_iter(const struct hash *h, size_t *pos, void **value_r)
{
	size_t b = *pos >> HASH_POS_BITS, n = *pos & HASH_POS_MASK, i;
	struct hash_entry *e;

	for (; b < h->size; b++, n = 0) {
		for (e = h->buckets[b], i = 0; e != NULL && i < n; i++)
			e = e->next;
		if (e != NULL) {
			*pos = (b << HASH_POS_BITS) | (n + 1);
			if (value_r != NULL)
				*value_r = e->value;
			return e->key;
		}
	}
	*pos = b << HASH_POS_BITS;
	return NULL;
}
