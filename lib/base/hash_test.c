/* SPDX-License-Identifier: MIT */
/*
 * The string hash table: put, replace, get, delete, growth past many
 * doublings, and an iteration that sees every entry exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "unit.h"

#define MANY 5000

static void
test_hash_basic(void)
{
	struct hash *h = hash_create();
	int a = 1, b = 2;

	CHECK(hash_get(h, "x") == NULL);
	CHECK(hash_put(h, "x", &a) == NULL);
	CHECK(hash_get(h, "x") == &a);
	CHECK(hash_put(h, "x", &b) == &a);
	CHECK(hash_get(h, "x") == &b);
	CHECK(hash_get(h, "X") == NULL);
	CHECK(hash_put(h, "", &a) == NULL);
	CHECK_INT(hash_count(h), 2);
	CHECK(hash_del(h, "x") == &b);
	CHECK(hash_del(h, "x") == NULL);
	CHECK_INT(hash_count(h), 1);
	hash_free(&h, NULL);
	CHECK(h == NULL);
	hash_free(&h, NULL);
}

static void
test_hash_many(void)
{
	struct hash *h = hash_create();
	char key[32], *seen = xcalloc(MANY, 1);
	const char *k;
	void *v;
	size_t pos = 0;
	int i, n = 0;

	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		CHECK(hash_put(h, key, xstrdup(key)) == NULL);
	}
	CHECK_INT(hash_count(h), MANY);
	for (i = 0; i < MANY; i += 7) {
		snprintf(key, sizeof(key), "key-%d", i);
		CHECK(hash_get(h, key) != NULL &&
		      strcmp(hash_get(h, key), key) == 0);
	}
	while ((k = hash_iter(h, &pos, &v)) != NULL) {
		CHECK(strcmp(k, v) == 0);
		i = (int)strtol(k + 4, NULL, 10);
		CHECK(i >= 0 && i < MANY && !seen[i]);
		if (i >= 0 && i < MANY)
			seen[i] = 1;
		n++;
	}
	CHECK_INT(n, MANY);
	CHECK(hash_iter(h, &pos, NULL) == NULL);
	free(seen);
	hash_free(&h, free);
}

UNIT_MAIN(UNIT_CASE(test_hash_basic), UNIT_CASE(test_hash_many))
