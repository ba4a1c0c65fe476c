/* SPDX-License-Identifier: MIT */
/*
 * Tests of the auth service's success cache: keys that differ for every
 * user, password and process but not for the case of the user name, hits
 * until the ttl and none after, a flush, the cap with the oldest entry
 * going first, and a disabled cache that never hits.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "auth_cache.h"
#include "unit.h"

#define TTL_MS     (60 * 60 * 1000)
#define SMALL      3
#define FLOOD_KEYS 1000
#define NAME_SIZE  32

static void
test_keys(void)
{
	struct auth_cache *c = auth_cache_create(SMALL, TTL_MS);
	struct auth_cache *other = auth_cache_create(SMALL, TTL_MS);
	char a[AUTH_CACHE_KEY_SIZE], b[AUTH_CACHE_KEY_SIZE];

	auth_cache_key(c, "alice@example.test", "secret", a);
	CHECK_INT((int)strlen(a), AUTH_CACHE_KEY_SIZE - 1);
	CHECK(strspn(a, "0123456789abcdef") == AUTH_CACHE_KEY_SIZE - 1);
	auth_cache_key(c, "Alice@Example.TEST", "secret", b);
	CHECK_STR(a, b);
	auth_cache_key(c, "alice@example.test", "Secret", b);
	CHECK(strcmp(a, b) != 0);
	auth_cache_key(c, "alice@example.tes", "tsecret", b);
	CHECK(strcmp(a, b) != 0);
	auth_cache_key(c, "bob@example.test", "secret", b);
	CHECK(strcmp(a, b) != 0);
	/* Another process, another secret: the key tells nothing. */
	auth_cache_key(other, "alice@example.test", "secret", b);
	CHECK(strcmp(a, b) != 0);
	auth_cache_free(&c);
	auth_cache_free(&other);
	CHECK(c == NULL);
	auth_cache_free(&c);
}

static void
test_ttl_and_flush(void)
{
	struct auth_cache *c = auth_cache_create(SMALL, TTL_MS);
	char k[AUTH_CACHE_KEY_SIZE], j[AUTH_CACHE_KEY_SIZE];

	auth_cache_key(c, "alice@example.test", "secret", k);
	auth_cache_key(c, "bob@example.test", "secret", j);
	CHECK_INT(auth_cache_hit(c, k, 1000), 0);
	auth_cache_add(c, k, 1000);
	CHECK_INT(auth_cache_hit(c, k, 1000), 1);
	CHECK_INT(auth_cache_hit(c, j, 1000), 0);
	CHECK_INT(auth_cache_hit(c, k, 1000 + TTL_MS - 1), 1);
	CHECK_INT(auth_cache_hit(c, k, 1000 + TTL_MS), 0);
	CHECK_INT((int)auth_cache_size(c), 0);
	/* Added again, it lives a whole ttl from then. */
	auth_cache_add(c, k, 5000);
	auth_cache_add(c, j, 6000);
	auth_cache_add(c, k, 7000);
	CHECK_INT((int)auth_cache_size(c), 2);
	CHECK_INT(auth_cache_hit(c, k, 6000 + TTL_MS), 1);
	CHECK_INT(auth_cache_hit(c, j, 6000 + TTL_MS), 0);
	auth_cache_flush(c);
	CHECK_INT((int)auth_cache_size(c), 0);
	CHECK_INT(auth_cache_hit(c, k, 8000), 0);
	auth_cache_free(&c);
}

static void
test_cap(void)
{
	struct auth_cache *c = auth_cache_create(SMALL, TTL_MS);
	char keys[FLOOD_KEYS][AUTH_CACHE_KEY_SIZE], name[NAME_SIZE];
	int i;

	for (i = 0; i < FLOOD_KEYS; i++) {
		snprintf(name, sizeof(name), "u%d@example.test", i);
		auth_cache_key(c, name, "pw", keys[i]);
		auth_cache_add(c, keys[i], (uint64_t)i);
		CHECK((int)auth_cache_size(c) <= SMALL);
	}
	/* The newest SMALL remain; the oldest went first. */
	for (i = 0; i < FLOOD_KEYS - SMALL; i++)
		if (auth_cache_hit(c, keys[i], FLOOD_KEYS))
			break;
	CHECK_INT(i, FLOOD_KEYS - SMALL);
	for (i = FLOOD_KEYS - SMALL; i < FLOOD_KEYS; i++)
		CHECK_INT(auth_cache_hit(c, keys[i], FLOOD_KEYS), 1);
	auth_cache_free(&c);
}

static void
test_disabled(void)
{
	struct auth_cache *off[] = {
	    auth_cache_create(SMALL, 0), auth_cache_create(0, TTL_MS)};
	char k[AUTH_CACHE_KEY_SIZE];
	size_t i;

	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		auth_cache_key(off[i], "alice@example.test", "secret", k);
		auth_cache_add(off[i], k, 1000);
		CHECK_INT(auth_cache_hit(off[i], k, 1000), 0);
		CHECK_INT((int)auth_cache_size(off[i]), 0);
		auth_cache_free(&off[i]);
	}
}

UNIT_MAIN(UNIT_CASE(test_keys), UNIT_CASE(test_ttl_and_flush),
    UNIT_CASE(test_cap), UNIT_CASE(test_disabled))
