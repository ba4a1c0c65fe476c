/* SPDX-License-Identifier: MIT */
/*
 * Tests of the auth service's failure counts: the delay curve as a table
 * of {base, cap, n, delay}, counting and clearing, the window, eviction
 * of the least recently failed key, the saturating count, and a flood of
 * distinct keys that must stay within the table's maximum.
 */
#include <stdio.h>
#include <stdint.h>

#include "auth.h"
#include "auth_fail.h"
#include "unit.h"

#define NELEM(a)      (sizeof(a) / sizeof((a)[0]))
#define WINDOW_MS     (15 * 60 * 1000)
#define SMALL_TABLE   3
#define FLOOD_TABLE   100
#define FLOOD_KEYS    20000
#define KEY_TEXT_SIZE 32

static void
test_delay(void)
{
	static const struct {
		uint64_t base, max;
		unsigned n;
		uint64_t delay;
	} t[] = {
	    {2000, 15000, 0, 0},
	    {2000, 15000, 1, 2000},
	    {2000, 15000, 2, 4000},
	    {2000, 15000, 3, 8000},
	    {2000, 15000, 4, 15000},
	    {2000, 15000, 5, 15000},
	    {2000, 15000, AUTH_FAIL_COUNT_MAX, 15000},
	    {1000, 3000, 1, 1000},
	    {1000, 3000, 2, 2000},
	    {1000, 3000, 3, 3000},
	    {1000, 3000, 4, 3000},
	    /* A base above the cap is cut to it. */
	    {20000, 15000, 1, 15000},
	    {1000, 1000, 7, 1000},
	    /* Doubling never wraps around. */
	    {UINT64_MAX / 3, UINT64_MAX, 3, UINT64_MAX},
	    {UINT64_MAX, UINT64_MAX, 1000, UINT64_MAX},
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		CHECK(
		    auth_fail_delay(t[i].base, t[i].max, t[i].n) == t[i].delay);
		if (auth_fail_delay(t[i].base, t[i].max, t[i].n) != t[i].delay)
			printf("#   case %zu\n", i);
	}
}

static void
test_count_and_clear(void)
{
	struct auth_fail_table *t = auth_fail_create(SMALL_TABLE, WINDOW_MS);

	CHECK_INT(auth_fail_count(t, "192.0.2.1", 0), 0);
	CHECK_INT(auth_fail_add(t, "192.0.2.1", 0), 1);
	CHECK_INT(auth_fail_add(t, "192.0.2.1", 10), 2);
	CHECK_INT(auth_fail_add(t, "192.0.2.2", 10), 1);
	CHECK_INT(auth_fail_count(t, "192.0.2.1", 20), 2);
	CHECK_INT(auth_fail_size(t), 2);
	auth_fail_clear(t, "192.0.2.1");
	CHECK_INT(auth_fail_count(t, "192.0.2.1", 20), 0);
	CHECK_INT(auth_fail_count(t, "192.0.2.2", 20), 1);
	CHECK_INT(auth_fail_size(t), 1);
	auth_fail_clear(t, "never.failed");
	CHECK_INT(auth_fail_size(t), 1);
	auth_fail_free(&t);
	CHECK(t == NULL);
	auth_fail_free(&t);
}

/* A count lives while failures come; a quiet window ends it. */
static void
test_window(void)
{
	struct auth_fail_table *t = auth_fail_create(SMALL_TABLE, WINDOW_MS);

	CHECK_INT(auth_fail_add(t, "a", 1000), 1);
	CHECK_INT(auth_fail_add(t, "a", 1000 + WINDOW_MS - 1), 2);
	CHECK_INT(auth_fail_count(t, "a", 1000 + 2 * WINDOW_MS - 2), 2);
	CHECK_INT(auth_fail_count(t, "a", 1000 + 2 * WINDOW_MS - 1), 0);
	CHECK_INT(auth_fail_size(t), 0);
	CHECK_INT(auth_fail_add(t, "a", 1000 + 2 * WINDOW_MS), 1);
	/* A clock that seems to go back does not expire anything. */
	CHECK_INT(auth_fail_count(t, "a", 0), 1);
	auth_fail_free(&t);
}

static void
test_eviction(void)
{
	struct auth_fail_table *t = auth_fail_create(SMALL_TABLE, WINDOW_MS);

	auth_fail_add(t, "a", 1);
	auth_fail_add(t, "b", 2);
	auth_fail_add(t, "c", 3);
	auth_fail_add(t, "d", 4);
	CHECK_INT(auth_fail_size(t), SMALL_TABLE);
	CHECK_INT(auth_fail_count(t, "a", 4), 0);
	CHECK_INT(auth_fail_count(t, "b", 4), 1);
	/* A new failure of b makes c the least recent. */
	CHECK_INT(auth_fail_add(t, "b", 5), 2);
	auth_fail_add(t, "e", 6);
	CHECK_INT(auth_fail_count(t, "c", 6), 0);
	CHECK_INT(auth_fail_count(t, "b", 6), 2);
	CHECK_INT(auth_fail_count(t, "d", 6), 1);
	CHECK_INT(auth_fail_count(t, "e", 6), 1);
	/* Clearing the newest and the oldest keeps the order right. */
	auth_fail_clear(t, "e");
	auth_fail_clear(t, "d");
	auth_fail_add(t, "f", 7);
	auth_fail_add(t, "g", 8);
	auth_fail_add(t, "h", 9);
	CHECK_INT(auth_fail_count(t, "b", 9), 0);
	CHECK_INT(auth_fail_size(t), SMALL_TABLE);
	auth_fail_free(&t);
}

static void
test_saturation(void)
{
	struct auth_fail_table *t = auth_fail_create(SMALL_TABLE, WINDOW_MS);
	unsigned i;

	for (i = 0; i < 2 * AUTH_FAIL_COUNT_MAX; i++)
		auth_fail_add(t, "x", i);
	CHECK_INT(auth_fail_count(t, "x", i), AUTH_FAIL_COUNT_MAX);
	auth_fail_free(&t);
}

/* Distinct keys from an attacker stay within the maximum. */
static void
test_flood(void)
{
	struct auth_fail_table *t = auth_fail_create(FLOOD_TABLE, WINDOW_MS);
	char key[KEY_TEXT_SIZE];
	unsigned i;

	for (i = 0; i < FLOOD_KEYS; i++) {
		snprintf(key, sizeof(key), "user%u@example.test", i);
		CHECK_INT(auth_fail_add(t, key, i), 1);
	}
	CHECK_INT(auth_fail_size(t), FLOOD_TABLE);
	snprintf(key, sizeof(key), "user%u@example.test", FLOOD_KEYS - 1);
	CHECK_INT(auth_fail_count(t, key, FLOOD_KEYS), 1);
	CHECK_INT(auth_fail_count(t, "user0@example.test", FLOOD_KEYS), 0);
	auth_fail_free(&t);
}

/* RFC 1939 7's example, and what must not match. */
static void
test_apop(void)
{
	static const struct {
		const char *challenge, *password, *digest;
		int ok;
	} t[] = {
	    {"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
	        "c4c9334bac560ecc979e58001b3e22fb", 1},
	    /* Upper-case hex is not what RFC 1939 sends. */
	    {"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
	        "C4C9334BAC560ECC979E58001B3E22FB", 0},
	    {"<1896.697170952@dbc.mtview.ca.us>", "tanstaaF",
	        "c4c9334bac560ecc979e58001b3e22fb", 0},
	    {"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf",
	        "c4c9334bac560ecc979e58001b3e22f", 0},
	    {"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf", "", 0},
	    {"<other@x>", "tanstaaf", "c4c9334bac560ecc979e58001b3e22fb", 0},
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		CHECK_INT(auth_apop_match(t[i].challenge, t[i].password,
		              t[i].digest),
		    t[i].ok);
	}
}

UNIT_MAIN(UNIT_CASE(test_apop), UNIT_CASE(test_delay), UNIT_CASE(test_count_and_clear),
    UNIT_CASE(test_window), UNIT_CASE(test_eviction),
    UNIT_CASE(test_saturation), UNIT_CASE(test_flood))
