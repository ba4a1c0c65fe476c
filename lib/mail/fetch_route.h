/* SPDX-License-Identifier: MIT */
/*
 * Who a message collected from a domain-wide ("multidrop") mailbox is
 * for. The ISP's mailbox holds mail for a whole domain, and the
 * envelope recipient survives only in headers the ISP adds: an ordered
 * list of them is tried (Delivered-To, X-Original-To, Envelope-To,
 * X-Envelope-To, the `for <...>` clause of the top Received:, custom
 * ones), keeping only addresses in the site's local domains; several
 * local addresses mean one delivery to each. When no header names a
 * local recipient, a rule table keyed by header lines (List-Id:,
 * From:, ...) decides; what still has no owner goes to the lost-mail
 * recipient. A message that already carries this site's loop header
 * was collected before (it came back through the ISP) and goes to the
 * lost-mail recipient too, never back out. The fetch daemon calls this
 * before cleanup; it reads only the header section. No I/O, no
 * allocation kept after fetch_route_result_free().
 *
 * The details, as an admin would expect them:
 * - Fields are what cleanup takes as the header: it ends at an empty
 *   line or at the first line that is not "name:" (a continuation line
 *   first, a space before the colon); only the first header_size_limit
 *   bytes are read and a field that reaches that limit is left out.
 * - Envelope headers are parsed as address lists (rfc822_addr.h:
 *   display names, comments, groups, folding); an address must be a
 *   valid RFC 5321 path with a domain (a bare "alice" there is junk)
 *   and is_local() must accept it. The local part is kept as written,
 *   the domain lower-cased; duplicates are those addr_fold() makes
 *   equal, the first spelling is kept. Header names in the list match
 *   case-insensitively, a trailing colon is ignored.
 * - Received: the last "for" clause outside comments and quoted
 *   strings of the topmost Received: only ("for <a@b>" or Exim's bare
 *   "for a@b"); when that one names nobody, no lower one is read.
 * - Past FETCH_ROUTE_RCPTS_MAX local recipients the first
 *   FETCH_ROUTE_RCPTS_MAX - 1 are kept and the lost-mail recipient is
 *   added last (nrcpts never exceeds the maximum); detail counts them.
 * - Rule lines are the field unfolded (line ends removed, white space
 *   kept, a NUL as a space), "Name: value" exactly as in the message.
 *   A value is a comma-separated address list (rfc822_addr syntax, at
 *   most FETCH_ROUTE_RCPTS_MAX, a domain not required: cleanup
 *   qualifies it); DUNNO means "this line decides nothing". Any other
 *   Postfix action word (DISCARD, REJECT, OK, HOLD, REDIRECT, ...) or a
 *   value that is no address list sends the message to lost mail with
 *   how FETCH_ROUTE_LOST and the rule in detail: mail is never dropped.
 * - The loop guard compares values with white space runs as one space
 *   and case ignored; loop_header_value NULL means any value.
 * - lost_recipient NULL or "" means postmaster: mail must go somewhere.
 */
#ifndef TERN_FETCH_ROUTE_H
#define TERN_FETCH_ROUTE_H

#include <stddef.h>

#include "mail/map_list.h"

/* More local recipients than this in one message: the rest are lost
 * mail's (logged), so a hostile header cannot fan one message out. */
#define FETCH_ROUTE_RCPTS_MAX 50

/* A name in the header list that means the top Received:'s `for`. */
#define FETCH_ROUTE_RECEIVED "Received"

enum fetch_route_how {
	FETCH_ROUTE_HEADER, /* an envelope header named the recipients */
	FETCH_ROUTE_RULE,   /* a rule of the table decided */
	FETCH_ROUTE_LOST,   /* nobody found: the lost-mail recipient */
	FETCH_ROUTE_LOOP,   /* carries our loop header: lost mail */
};

struct fetch_route_config {
	/* Header names tried in order; the first that yields at least
	 * one local address decides (all its local addresses, over every
	 * occurrence of that header, deduplicated case-insensitively). */
	const char *const *headers;
	size_t nheaders;
	/* Is this address one of the site's (local domains, virtual
	 * domains, relay domains it serves)? 1 yes, 0 no. */
	int (*is_local)(const char *addr, void *ctx);
	void *ctx;
	/* Rules: looked up with each unfolded header line "Name: value"
	 * in message order; the first line with a result gives the
	 * recipient(s) (comma-separated addresses). NULL: no rules. */
	struct map_list *rules;
	const char *lost_recipient; /* e.g. "postmaster" */
	/* The header the fetch daemon adds to what it injects, e.g.
	 * "X-Tern-Fetched: <site> <account>"; NULL disables the guard. */
	const char *loop_header_name;
	const char *loop_header_value;
};

struct fetch_route_result {
	char **rcpts; /* addresses, lower-cased domain; at least one */
	size_t nrcpts;
	enum fetch_route_how how;
	/* For the log: the header or rule line that decided, or why the
	 * mail is lost ("no local recipient", "loop", "rule: ..."). */
	char *detail;
};

/*
 * Routes the message whose header section starts msg (len bytes; the
 * header ends at the first empty line, LF or CRLF; a message without
 * a body is fine). 0 with *res filled (release with
 * fetch_route_result_free), or -1 with *error_r for a rule table
 * lookup failure (temporary: the caller retries later and deletes
 * nothing remotely).
 */
int fetch_route(const struct fetch_route_config *cfg, const char *msg,
    size_t len, struct fetch_route_result *res, const char **error_r);
void fetch_route_result_free(struct fetch_route_result *res);

#endif
