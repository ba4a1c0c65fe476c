/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the cidr: table parser (lib/map/map_cidr.c) on a
 * table file, then lookups (fuzz_table.h). Checked: a syntax error names
 * file and line; a lookup answers found or not found, never an error,
 * the same every time.
 *
 * Input: the table file, optionally "\n%%\n" and keys, one per line.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_table.h"
#include "fuzz_util.h"

static const char *const keys[] = {
    "192.0.2.1",
    "10.1.2.3",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "::ffff:192.0.2.1",
    "::",
    "not-an-address",
    NULL,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_table_run(data, size, map_cidr_parse, &map_cidr_ops, keys, 0);
	return 0;
}
