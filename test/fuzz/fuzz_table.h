/* SPDX-License-Identifier: MIT */
/*
 * What fuzz_pcre_table and fuzz_cidr_table share: the input is a table
 * file, optionally followed by a line "%%" and keys to look up, one per
 * line; without keys a few fixed ones are tried. The parser must either
 * give a table or an error that starts with the file name and a line
 * number; a lookup must answer 1 with a value within MAP_VALUE_MAX, or
 * 0, or (where allowed) -1 naming file and line, and answer the same
 * when asked again.
 */
#ifndef TERN_FUZZ_TABLE_H
#define TERN_FUZZ_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "map/map_int.h"

typedef void *fuzz_table_parse_fn(
    const char *name, const char *text, size_t len, char **error_r);

/* may_fail: lookups may return -1 (pcre: match limits). */
void fuzz_table_run(const uint8_t *data, size_t size,
    fuzz_table_parse_fn *parse, const struct map_ops *ops,
    const char *const *keys, int may_fail);

#endif
