/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: envelope addresses (lib/mail/addr.c): the <path>
 * argument of MAIL FROM and RCPT TO with every combination of
 * ADDR_EMPTY_OK and ADDR_UTF8_OK (RFC 5321 4.1.2, RFC 6531), source
 * routes, quoted local parts and address literals; then addr_split,
 * addr_fold, addr_local_fold and addr_domain_valid on the same text,
 * parsed or not (smtpd folds a SASL user name as well). The invariants
 * are in fuzz_check.c.
 *
 * Input: one byte of flags (ADDR_*), then the text after "FROM:".
 */
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "fuzz_check.h"
#include "fuzz_util.h"

#define CFG_FLAGS_MASK (ADDR_EMPTY_OK | ADDR_UTF8_OK)
/* "<x@" and ">" around a domain. */
#define WRAP_LEN       4

static void
check_domain(const char *s)
{
	const char *params;
	char *path, *lower, *addr, *p;
	int valid = addr_domain_valid(s);

	/* Validity does not depend on case. */
	lower = xstrdup(s);
	for (p = lower; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	FUZZ_CHECK(addr_domain_valid(lower) == valid);
	free(lower);
	/* A valid domain is one in a path too. */
	if (valid && strlen(s) + WRAP_LEN <= ADDR_PATH_MAX) {
		path = xasprintf("<x@%s>", s);
		FUZZ_CHECK(fuzz_check_path(path, 0, &addr, &params) == 0);
		FUZZ_CHECK(strcmp(addr + 2, s) == 0);
		free(addr);
		free(path);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *params;
	unsigned flags;
	char *s, *addr;

	if (size < 1)
		return 0;
	flags = data[0] & CFG_FLAGS_MASK;
	s = fuzz_cstr(data + 1, size - 1);
	if (fuzz_check_path(s, flags, &addr, &params) == 0)
		free(addr);
	fuzz_check_fold(s);
	check_domain(s);
	free(s);
	return 0;
}
