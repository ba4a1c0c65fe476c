/* SPDX-License-Identifier: MIT */
/*
 * Recent login failures of the auth service, counted per key (a client
 * address or a user name) in a table with a hard maximum of entries: a
 * key's count lives while failures keep coming, and ends once a whole
 * window passes without one. When the table is full, the key that failed
 * least recently makes room, so an attacker who cycles through names or
 * addresses costs bounded memory and pushes out only stale entries.
 * Keys are compared as strings in a balanced tree (tsearch): no hash an
 * attacker could flood. Times are milliseconds of a monotonic clock.
 */
#ifndef TERN_AUTH_FAIL_H
#define TERN_AUTH_FAIL_H

#include <stddef.h>
#include <stdint.h>

/* A count stops growing here; the delay reached its cap long before. */
#define AUTH_FAIL_COUNT_MAX 64

struct auth_fail_table;

/* max: entries at most (>= 1); window_ms: a count's lifetime after its
 * last failure. */
struct auth_fail_table *auth_fail_create(size_t max, uint64_t window_ms);
/* Frees every entry and the table; sets *t_r to NULL; NULL-safe. */
void auth_fail_free(struct auth_fail_table **t_r);
/* Failures of key still within the window at now_ms; 0 for none. */
unsigned auth_fail_count(struct auth_fail_table *t, const char *key,
    uint64_t now_ms);
/* Records one failure of key (copied) at now_ms; returns its new count. */
unsigned auth_fail_add(struct auth_fail_table *t, const char *key,
    uint64_t now_ms);
/* Forgets key's failures (a successful login). */
void auth_fail_clear(struct auth_fail_table *t, const char *key);
/* Entries held now. */
size_t auth_fail_size(const struct auth_fail_table *t);

/*
 * The delay before the answer to the n-th failure in a row:
 * base_ms * 2^(n-1), at most max_ms; 0 for n == 0. Never overflows.
 */
uint64_t auth_fail_delay(uint64_t base_ms, uint64_t max_ms, unsigned n);

#endif
