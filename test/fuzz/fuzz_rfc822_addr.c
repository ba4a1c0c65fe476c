/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: address lists of message headers
 * (lib/mail/rfc822_addr.c, RFC 5322 3.4), what sendmail -t parses from
 * the To, Cc and Bcc headers of anyone's message. Invariants: every
 * address is a non-empty C string within RFC822_ADDR_LEN_MAX on one
 * line that does not start with white space, the count returned is the number of
 * calls, never more than the maximum, and a list never yields more
 * addresses than it has bytes.
 *
 * Input: one byte for the maximum number of addresses, then the value.
 */
#include <string.h>

#include "mail/rfc822_addr.h"
#include "fuzz_util.h"

struct fuzz_ctx {
	size_t calls;
};

static void
fuzz_addr_cb(void *ctx, const char *addr, size_t len)
{
	struct fuzz_ctx *c = ctx;

	c->calls++;
	FUZZ_CHECK(len > 0 && len <= RFC822_ADDR_LEN_MAX);
	FUZZ_CHECK(strlen(addr) == len);
	/* Folding is gone: an address is one line. */
	FUZZ_CHECK(memchr(addr, '\r', len) == NULL);
	FUZZ_CHECK(memchr(addr, '\n', len) == NULL);
	/* White space outside quotes and literals never starts one. */
	FUZZ_CHECK(addr[0] != ' ' && addr[0] != '\t');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_ctx c = {0};
	const char *err = NULL;
	size_t max;
	int n;

	if (size < 1)
		return 0;
	max = data[0];
	n = rfc822_addr_list((const char *)data + 1, size - 1, max,
	    fuzz_addr_cb, &c, &err);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n == c.calls);
		FUZZ_CHECK((size_t)n <= max && (size_t)n <= size - 1);
	} else {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(c.calls <= max);
	}
	return 0;
}
