/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/header_checks.h"
#include "map/map.h"

/* Room for an action word ("DISCARD") and the text after it. */
#define HEADER_CHECKS_WORD_MAX 16
#define HEADER_CHECKS_TEXT_MAX 512
#define HEADER_CHECKS_LOG_MAX  100

struct header_checks {
	struct map *map;
	char *key;	 /* the header as the table sees it */
	size_t key_size;
	char text[HEADER_CHECKS_TEXT_MAX];
};

struct header_checks *
header_checks_create(const char *spec, char **error_r)
{
	struct map *m = map_open(spec, error_r);
	struct header_checks *h;

	if (m == NULL)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->map = m;
	return h;
}

void
header_checks_free(struct header_checks **h_r)
{
	struct header_checks *h = *h_r;

	if (h == NULL)
		return;
	map_free(&h->map);
	free(h->key);
	free(h);
	*h_r = NULL;
}

/* CRLF between lines becomes LF, and a NUL (only binary junk has one)
 * a space: the table takes a C string. */
static const char *
header_checks_key(struct header_checks *h, const char *header, size_t len)
{
	size_t i, n = 0;

	if (len + 1 > h->key_size) {
		h->key_size = len + 1;
		h->key = xrealloc(h->key, h->key_size);
	}
	for (i = 0; i < len; i++) {
		if (header[i] == '\r' && i + 1 < len && header[i + 1] == '\n')
			continue;
		h->key[n++] = header[i] == '\0' ? ' ' : header[i];
	}
	h->key[n] = '\0';
	return h->key;
}

void
header_checks_hook(void *ctx, const char *header, size_t len,
    struct cleanup_header_action *action_r)
{
	static const struct {
		const char *word;
		enum cleanup_header_verdict verdict;
	} actions[] = {
	    {"REJECT", CLEANUP_HEADER_REJECT},
	    {"HOLD", CLEANUP_HEADER_HOLD},
	    {"DISCARD", CLEANUP_HEADER_DISCARD},
	    {"WARN", CLEANUP_HEADER_WARN},
	    {"IGNORE", CLEANUP_HEADER_IGNORE},
	    {"DUNNO", CLEANUP_HEADER_DUNNO},
	    {"OK", CLEANUP_HEADER_DUNNO},
	};
	struct header_checks *h = ctx;
	const char *key = header_checks_key(h, header, len);
	const char *value, *error, *text;
	char word[HEADER_CHECKS_WORD_MAX];
	size_t i, n;
	int r;

	r = map_lookup(h->map, key, &value, &error);
	if (r < 0) {
		/* A broken table must not lose mail: the header passes. */
		msg_warn("%s: lookup failed: %s", map_spec(h->map), error);
		return;
	}
	if (r == 0)
		return;
	value += strspn(value, " \t");
	n = strcspn(value, " \t");
	text = value + n;
	text += strspn(text, " \t");
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (n == strlen(actions[i].word) &&
		    str_prefix_ci(value, n, actions[i].word)) {
			action_r->verdict = actions[i].verdict;
			if (*text != '\0') {
				snprintf(h->text, sizeof(h->text), "%s", text);
				action_r->text = h->text;
			}
			return;
		}
	}
	snprintf(word, sizeof(word), "%.*s", (int)(n < sizeof(word) ? n : sizeof(word) - 1),
	    value);
	msg_warn("%s: unsupported header_checks action \"%s\" for header "
	         "\"%s\"",
	    map_spec(h->map), log_sanitize(word, sizeof(word)),
	    log_sanitize(key, HEADER_CHECKS_LOG_MAX));
}
