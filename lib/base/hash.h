/* SPDX-License-Identifier: MIT */
/*
 * A hash table of NUL-terminated string keys (copied) to caller-owned
 * values, chained, growing by doubling. Used where a daemon counts things
 * per client, per user or per key (anvil, auth, caches); callers bound the
 * number of entries themselves.
 */
#ifndef TERN_HASH_H
#define TERN_HASH_H

#include <stddef.h>

struct hash;

struct hash *hash_create(void);
/* Frees the table and its keys; free_value (may be NULL) gets each value. */
void hash_free(struct hash **h_r, void (*free_value)(void *value));
/* The value stored under key, or NULL. */
void *hash_get(const struct hash *h, const char *key);
/* Stores value under key (replacing and returning the old value, or
 * NULL). value must not be NULL. */
void *hash_put(struct hash *h, const char *key, void *value);
/* Removes key; returns its value, or NULL if absent. */
void *hash_del(struct hash *h, const char *key);
size_t hash_count(const struct hash *h);

/*
 * Iteration: start with *pos = 0; each call returns the next key (and
 * *value_r, which may be NULL) or NULL at the end. The table must not
 * change meanwhile.
 */
const char *hash_iter(const struct hash *h, size_t *pos, void **value_r);

#endif
