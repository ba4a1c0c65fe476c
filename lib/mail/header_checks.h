/* SPDX-License-Identifier: MIT */
/*
 * header_checks (Postfix's header_checks(5)): a table, usually pcre:,
 * looked up with each logical header of a message as cleanup takes it
 * in, continuation lines included (with "\n" between them, so a pattern
 * sees what Postfix's sees). The result is an action:
 *
 *   REJECT [text]   the message is refused (550 5.7.1 text)
 *   HOLD [text]     the message goes to hold/
 *   DISCARD [text]  accepted and dropped
 *   WARN [text]     logged
 *   IGNORE          the header is removed
 *   DUNNO, OK       nothing
 *
 * Other Postfix actions (PREPEND, REPLACE, FILTER, REDIRECT...) are
 * logged as unsupported and do nothing.
 */
#ifndef TERN_HEADER_CHECKS_H
#define TERN_HEADER_CHECKS_H

#include <stddef.h>
#include "mail/cleanup.h"

struct header_checks;

/* NULL with *error_r (allocated) if the table cannot be opened. */
struct header_checks *header_checks_create(const char *spec, char **error_r);
void header_checks_free(struct header_checks **h_r);
/* A cleanup_header_check_fn; ctx is the struct header_checks. */
void header_checks_hook(void *ctx, const char *header, size_t len,
    struct cleanup_header_action *action_r);

#endif
