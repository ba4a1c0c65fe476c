/* SPDX-License-Identifier: MIT */
/*
 * The shared body of the table-parser fuzz targets (fuzz_table.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "fuzz_table.h"
#include "fuzz_util.h"

#define FUZZ_TABLE_NAME     "fuzz.table"
#define FUZZ_TABLE_SEP      "\n%%\n"
/* Lookups per input: each may run every rule of the table. */
#define FUZZ_TABLE_KEYS_MAX 8
#define FUZZ_TABLE_KEY_LEN  256

/* 1 if err is "fuzz.table, line N: ..." with N > 0. */
static int
fuzz_table_error_ok(const char *err)
{
	const char *p;
	size_t n = strlen(FUZZ_TABLE_NAME ", line ");

	if (strncmp(err, FUZZ_TABLE_NAME ", line ", n) != 0)
		return 0;
	p = err + n;
	if (*p < '1' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return strncmp(p, ": ", 2) == 0;
}

static void
fuzz_table_lookup(
    const struct map_ops *ops, void *t, const char *key, int may_fail)
{
	char error[MAP_ERROR_MAX], error2[MAP_ERROR_MAX];
	struct buf v1, v2;
	int r1, r2;

	buf_init(&v1, MAP_VALUE_MAX);
	buf_init(&v2, MAP_VALUE_MAX);
	error[0] = error2[0] = '\0';
	r1 = ops->lookup(t, key, &v1, error);
	FUZZ_CHECK(r1 == 1 || r1 == 0 || (may_fail && r1 == -1));
	if (r1 == -1)
		FUZZ_CHECK(fuzz_table_error_ok(error));
	if (r1 == 0)
		FUZZ_CHECK(v1.len == 0);
	FUZZ_CHECK(v1.len <= MAP_VALUE_MAX);
	/* Deterministic: match data and buffers hold no state over. */
	r2 = ops->lookup(t, key, &v2, error2);
	FUZZ_CHECK(r2 == r1);
	if (r1 == 1)
		FUZZ_CHECK(v1.len == v2.len &&
		           memcmp(buf_cstr(&v1), buf_cstr(&v2), v1.len) == 0);
	buf_free(&v1);
	buf_free(&v2);
}

void
fuzz_table_run(const uint8_t *data, size_t size, fuzz_table_parse_fn *parse,
    const struct map_ops *ops, const char *const *keys, int may_fail)
{
	const char *text = (const char *)data, *sep, *k, *end, *nl;
	char key[FUZZ_TABLE_KEY_LEN];
	size_t tlen = size, klen;
	char *err = NULL;
	void *t;
	int n;

	sep = memmem(text, size, FUZZ_TABLE_SEP, strlen(FUZZ_TABLE_SEP));
	if (sep != NULL)
		tlen = (size_t)(sep - text) + 1;
	t = parse(FUZZ_TABLE_NAME, text, tlen, &err);
	if (t == NULL) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(fuzz_table_error_ok(err));
		free(err);
		return;
	}
	FUZZ_CHECK(err == NULL);
	if (sep == NULL) {
		for (n = 0; keys[n] != NULL; n++)
			fuzz_table_lookup(ops, t, keys[n], may_fail);
	} else {
		k = sep + strlen(FUZZ_TABLE_SEP);
		end = text + size;
		for (n = 0; n < FUZZ_TABLE_KEYS_MAX && k < end; n++) {
			nl = memchr(k, '\n', (size_t)(end - k));
			klen =
			    nl != NULL ? (size_t)(nl - k) : (size_t)(end - k);
			/* Keys are C strings: cut at a NUL, and capped. */
			if (klen >= sizeof(key))
				klen = sizeof(key) - 1;
			memcpy(key, k, klen);
			key[klen] = '\0';
			fuzz_table_lookup(ops, t, key, may_fail);
			if (nl == NULL)
				break;
			k = nl + 1;
		}
	}
	ops->free(t);
}
