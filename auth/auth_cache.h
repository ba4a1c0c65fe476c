/* SPDX-License-Identifier: MIT */
/*
 * The auth service's memory of recent successful logins (Dovecot's
 * auth_cache, saslauthd -c): a (user, password) pair that verified is
 * remembered as an HMAC-SHA256 under a random key made at start and never
 * stored, so a later login with the same pair skips the slow hash until
 * the entry is ttl_ms old. Never a failure: a wrong password always pays
 * its hash and its delay. At most max entries; when full the oldest goes.
 * The caller flushes the whole cache when the user file changes. The key
 * (a digest in hex) also names identical requests in flight.
 */
#ifndef TERN_AUTH_CACHE_H
#define TERN_AUTH_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* A digest as text: 64 hex digits and the NUL. */
#define AUTH_CACHE_KEY_SIZE 65

struct auth_cache;

/* max == 0 or ttl_ms == 0: nothing is ever remembered (hits never). */
struct auth_cache *auth_cache_create(size_t max, uint64_t ttl_ms);
/* Frees the entries and the secret; sets *c_r to NULL; NULL-safe. */
void auth_cache_free(struct auth_cache **c_r);
/*
 * The key of (user, password): user compared without case, as the user
 * file does. Depends on the cache's secret: the same pair gives another
 * key in another process.
 */
void auth_cache_key(const struct auth_cache *c, const char *user,
    const char *password, char key[AUTH_CACHE_KEY_SIZE]);
/* 1 if key was added less than ttl_ms before now_ms; else 0. */
int auth_cache_hit(struct auth_cache *c, const char *key, uint64_t now_ms);
/* Remembers key from now_ms (again, if it was there). */
void auth_cache_add(struct auth_cache *c, const char *key, uint64_t now_ms);
/* Forgets every entry. */
void auth_cache_flush(struct auth_cache *c);
size_t auth_cache_size(const struct auth_cache *c);

#endif
