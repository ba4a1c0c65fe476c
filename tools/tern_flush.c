/* SPDX-License-Identifier: MIT */
/*
 * tern flush [domain]: asks the queue manager to retry deferred mail now
 * (all of it, or the messages with a pending recipient in domain) and to
 * give dead destinations another chance, as Postfix's `postqueue -f` and
 * `-s site` do. One notice frame to private/qmgr (lib/mail/flush.c, which
 * ternqueue shares); qmgr does the work.
 */
#include <stdio.h>
#include <sys/types.h>

#include "base/log.h"
#include "mail/addr.h"
#include "mail/flush.h"
#include "tern.h"

#define TERN_FLUSH_TIMEOUT_S 10

int
tern_flush(const char *domain)
{
	const char *err;

	if (domain != NULL && !flush_domain_valid(domain)) {
		tern_error("flush: bad domain \"%s\"",
		    log_sanitize(domain, ADDR_DOMAIN_MAX));
		return 2;
	}
	if (flush_send(domain, 0, TERN_FLUSH_TIMEOUT_S, &err) < 0) {
		tern_error("flush: %s (is tern running?)", err);
		return 1;
	}
	return 0;
}
