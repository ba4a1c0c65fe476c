/* SPDX-License-Identifier: MIT */
/*
 * A parameter that names several tables ("hash:/etc/tern/a, pcre:/b"),
 * searched in order: the first table that knows a key answers, as
 * Postfix's maps(3). transport_maps, smtp_tls_policy_maps and
 * smtp_sasl_password_maps are such lists.
 */
#ifndef TERN_MAP_LIST_H
#define TERN_MAP_LIST_H

#include "map/map.h"

/* Tables one list may name; more is a configuration mistake. */
#define MAP_LIST_MAX 16

struct map_list;

/*
 * Opens every table of value (a config_list: commas or white space
 * between tables, braces keep an inline: table whole; "" gives an empty list that finds nothing). param names the
 * parameter in errors. NULL with *error_r (allocated, caller frees).
 */
struct map_list *map_list_open(const char *param, const char *value,
    char **error_r);
void map_list_free(struct map_list **l_r);	/* NULL-safe */
/* 1 when the list names no table. */
int map_list_empty(const struct map_list *l);
/*
 * 1 found (*value_r valid until the next lookup on l), 0 not found in
 * any table, -1 a table could not answer (*error_r, same lifetime).
 */
int map_list_lookup(struct map_list *l, const char *key,
    const char **value_r, const char **error_r);

#endif
