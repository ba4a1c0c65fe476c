/* SPDX-License-Identifier: MIT */
/*
 * The success cache of auth (see auth_cache.h): a hash table by key, and
 * a list in order of addition (newest at the head) that makes expiry and
 * eviction O(1) per entry, since every entry lives for the same ttl. The
 * keys are HMACs under a secret the clients never see, so they cannot
 * aim entries at one bucket. No RFCs; HMAC is RFC 2104, from OpenSSL.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "auth_cache.h"

#define AUTH_CACHE_SECRET_BYTES 32
#define AUTH_CACHE_DIGEST_BYTES 32

struct auth_cache_entry {
	char key[AUTH_CACHE_KEY_SIZE];
	uint64_t added_ms;
	struct auth_cache_entry *newer, *older;
};

struct auth_cache {
	unsigned char secret[AUTH_CACHE_SECRET_BYTES];
	struct hash *entries; /* key -> entry */
	size_t max;
	uint64_t ttl_ms;
	struct auth_cache_entry *newest, *oldest;
};

struct auth_cache *
auth_cache_create(size_t max, uint64_t ttl_ms)
{
	struct auth_cache *c = xcalloc(1, sizeof(*c));

	if (getrandom(c->secret, sizeof(c->secret), 0) !=
	    (ssize_t)sizeof(c->secret))
		msg_fatal("getrandom: %m");
	c->entries = hash_create();
	c->max = ttl_ms > 0 ? max : 0;
	c->ttl_ms = ttl_ms;
	return c;
}

static void
auth_cache_unlink(struct auth_cache *c, struct auth_cache_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
auth_cache_remove(struct auth_cache *c, struct auth_cache_entry *e)
{
	if (hash_del(c->entries, e->key) != e)
		msg_panic("auth_cache: entry not in its table");
	auth_cache_unlink(c, e);
	free(e);
}

void
auth_cache_flush(struct auth_cache *c)
{
	while (c->oldest != NULL)
		auth_cache_remove(c, c->oldest);
}

void
auth_cache_free(struct auth_cache **c_r)
{
	struct auth_cache *c = *c_r;

	if (c == NULL)
		return;
	auth_cache_flush(c);
	hash_free(&c->entries, NULL);
	explicit_bzero(c->secret, sizeof(c->secret));
	free(c);
	*c_r = NULL;
}

void
auth_cache_key(const struct auth_cache *c, const char *user,
    const char *password, char key[AUTH_CACHE_KEY_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t ulen = strlen(user), plen = strlen(password), i;
	/* user NUL password: no pair runs into another. */
	unsigned char *msg = xmalloc(ulen + 1 + plen);

	for (i = 0; i < ulen; i++)
		msg[i] = (unsigned char)(user[i] >= 'A' && user[i] <= 'Z'
		                             ? user[i] - 'A' + 'a'
		                             : user[i]);
	msg[ulen] = '\0';
	memcpy(msg + ulen + 1, password, plen);
	if (HMAC(EVP_sha256(), c->secret, sizeof(c->secret), msg,
	        ulen + 1 + plen, md, &mdlen) == NULL ||
	    mdlen != AUTH_CACHE_DIGEST_BYTES)
		msg_fatal("auth_cache: HMAC-SHA256 failed");
	explicit_bzero(msg, ulen + 1 + plen);
	free(msg);
	for (i = 0; i < AUTH_CACHE_DIGEST_BYTES; i++) {
		key[2 * i] = hex[md[i] >> 4];
		key[2 * i + 1] = hex[md[i] & 0xf];
	}
	key[2 * AUTH_CACHE_DIGEST_BYTES] = '\0';
	explicit_bzero(md, sizeof(md));
}

static int
auth_cache_expired(const struct auth_cache *c,
    const struct auth_cache_entry *e, uint64_t now_ms)
{
	return now_ms < e->added_ms || now_ms - e->added_ms >= c->ttl_ms;
}

/* Drops, oldest first, every entry past its ttl. */
static void
auth_cache_expire(struct auth_cache *c, uint64_t now_ms)
{
	while (c->oldest != NULL && auth_cache_expired(c, c->oldest, now_ms))
		auth_cache_remove(c, c->oldest);
}

int
auth_cache_hit(struct auth_cache *c, const char *key, uint64_t now_ms)
{
	auth_cache_expire(c, now_ms);
	return hash_get(c->entries, key) != NULL;
}

void
auth_cache_add(struct auth_cache *c, const char *key, uint64_t now_ms)
{
	struct auth_cache_entry *e;

	if (c->max == 0)
		return;
	auth_cache_expire(c, now_ms);
	if ((e = hash_get(c->entries, key)) != NULL) {
		auth_cache_unlink(c, e);
	} else {
		if (hash_count(c->entries) >= c->max)
			auth_cache_remove(c, c->oldest);
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, key, AUTH_CACHE_KEY_SIZE);
		e->key[AUTH_CACHE_KEY_SIZE - 1] = '\0';
		hash_put(c->entries, e->key, e);
	}
	e->added_ms = now_ms;
	e->older = c->newest;
	if (c->newest != NULL)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

size_t
auth_cache_size(const struct auth_cache *c)
{
	return hash_count(c->entries);
}
