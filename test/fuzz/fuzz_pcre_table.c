/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the pcre: table parser (lib/map/map_pcre.c) on a
 * table file, then lookups (fuzz_table.h). Checked: a syntax error names
 * file and line; a lookup answers found, not found, or an error naming
 * the rule's line (a match limit), the same every time; $n
 * substitution stays within MAP_VALUE_MAX.
 *
 * Input: the table file, optionally "\n%%\n" and keys, one per line.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_table.h"
#include "fuzz_util.h"

static const char *const keys[] = {
    "localhost",
    "mail.example.org",
    "[192.0.2.1]",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    "",
    NULL,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_table_run(data, size, map_pcre_parse, &map_pcre_ops, keys, 1);
	return 0;
}
