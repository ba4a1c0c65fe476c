/* SPDX-License-Identifier: MIT */
/*
 * The tables written in the spec itself, in Postfix's syntax
 * (dict_inline.c, dict_static.c):
 *
 *   inline:{ key=value, key2=value2, { key3 = value, with commas } }
 *   static:value          static:{ value with spaces }
 *
 * Elements of inline: are separated by commas or whitespace; one in
 * braces may hold both, and blanks around its '=' are cut. Keys are
 * folded to lower case, and so is the key looked up. A duplicate key is
 * refused (Postfix warns and keeps one; a table in tern.conf with two
 * answers for one key is a mistake worth stopping for). No RFCs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/str.h"
#include "map/map_int.h"

#define INLINE_SEPS ", \t\r\n"

static int
inline_is_sep(char c)
{
	return c != '\0' && strchr(INLINE_SEPS, c) != NULL;
}

/*
 * Strips the outer "{ }" of s in place (blanks inside cut), so that
 * "{ a b }" becomes "a b". -1 if s does not start with '{' and end with
 * the matching '}'.
 */
static int
inline_unbrace(char *s, char **inner_r)
{
	size_t len = strlen(s), i;
	int depth = 0;

	if (len < 2 || s[0] != '{' || s[len - 1] != '}')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && --depth == 0 && i != len - 1)
			return -1;
	}
	if (depth != 0)
		return -1;
	s[len - 1] = '\0';
	*inner_r = str_trim(s + 1);
	return 0;
}

/*
 * The next element of an inline list: a run up to a separator outside
 * braces. 1 with *elem_r (NUL-terminated in place), 0 at the end, -1 on
 * unbalanced braces.
 */
static int
inline_next(char **p, char **elem_r)
{
	char *s = *p;
	int depth = 0;

	while (inline_is_sep(*s))
		s++;
	if (*s == '\0')
		return 0;
	*elem_r = s;
	for (; *s != '\0'; s++) {
		if (*s == '{')
			depth++;
		else if (*s == '}' && --depth < 0)
			return -1;
		else if (depth == 0 && inline_is_sep(*s))
			break;
	}
	if (depth != 0)
		return -1;
	if (*s != '\0')
		*s++ = '\0';
	*p = s;
	return 1;
}

static void
inline_free_value(void *v)
{
	free(v);
}

static void
inline_free(void *data)
{
	struct hash *h = data;

	hash_free(&h, inline_free_value);
}

static void *
inline_load(const char *name, struct map_file_id *id_r, char **error_r)
{
	char *copy = xstrdup(name), *list, *p, *elem, *eq, *key, *value;
	struct hash *h;
	int ret;

	(void)id_r;
	if (inline_unbrace(str_trim(copy), &list) < 0) {
		*error_r = xasprintf("inline:%s: expected inline:{ key=value, "
		                     "... }",
		    name);
		free(copy);
		return NULL;
	}
	h = hash_create();
	p = list;
	while ((ret = inline_next(&p, &elem)) > 0) {
		if (elem[0] == '{' && inline_unbrace(elem, &elem) < 0)
			ret = -1;
		if (ret < 0 || (eq = strchr(elem, '=')) == NULL) {
			*error_r = xasprintf("inline:%s: \"%s\": expected "
			                     "key=value",
			    name, elem);
			goto fail;
		}
		*eq = '\0';
		key = str_trim(elem);
		value = str_trim(eq + 1);
		if (*key == '\0') {
			*error_r = xasprintf("inline:%s: empty key", name);
			goto fail;
		}
		str_lower(key);
		if (hash_get(h, key) != NULL) {
			*error_r = xasprintf(
			    "inline:%s: duplicate key \"%s\"", name, key);
			goto fail;
		}
		hash_put(h, key, xstrdup(value));
	}
	if (ret < 0) {
		*error_r = xasprintf("inline:%s: unbalanced braces", name);
		goto fail;
	}
	free(copy);
	return h;
fail:
	inline_free(h);
	free(copy);
	return NULL;
}

static int
inline_lookup(void *data, const char *key, struct buf *value, char *error)
{
	char *folded = xstrdup(key);
	const char *v;

	str_lower(folded);
	v = hash_get(data, folded);
	free(folded);
	if (v == NULL)
		return 0;
	if (buf_puts(value, v) < 0) {
		/* Cannot happen: the spec itself is shorter. */
		snprintf(error, MAP_ERROR_MAX, "value too long");
		return -1;
	}
	return 1;
}

const struct map_ops map_inline_ops = {
    .type = "inline",
    .load = inline_load,
    .lookup = inline_lookup,
    .free = inline_free,
};

static void *
static_load(const char *name, struct map_file_id *id_r, char **error_r)
{
	char *copy = xstrdup(name), *inner;

	(void)id_r;
	if (copy[0] != '{')
		return copy;
	if (inline_unbrace(str_trim(copy), &inner) < 0) {
		*error_r = xasprintf("static:%s: unbalanced braces", name);
		free(copy);
		return NULL;
	}
	memmove(copy, inner, strlen(inner) + 1);
	return copy;
}

static int
static_lookup(void *data, const char *key, struct buf *value, char *error)
{
	(void)key;
	if (buf_puts(value, data) < 0) {
		snprintf(error, MAP_ERROR_MAX, "value too long");
		return -1;
	}
	return 1;
}

static void
static_free(void *data)
{
	free(data);
}

const struct map_ops map_static_ops = {
    .type = "static",
    .load = static_load,
    .lookup = static_lookup,
    .free = static_free,
};
