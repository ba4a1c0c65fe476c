/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the header-derived keys of SORT and THREAD
 * (lib/mail/imap_sort.c, RFC 5256), on any header value a sender writes:
 * the base subject, Message-ID/References reading, the Date: reading and
 * the address keys. The sort program itself is parsed inside a session
 * (imapd_sort.c): fuzz_imapd_session's seeds carry malformed ones.
 *
 * Invariants: the base subject and the address keys hold no lower-case
 * ASCII letter (the i;ascii-casemap form they are compared in), the base
 * subject has no space at either end nor two in a row, and is never
 * longer than the decoded value can be; every message id found has an
 * '@' and no '>' or line end, each one further on in the value.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/imap_sort.h"
#include "fuzz_util.h"

/* imap_msgid_next's output buffer, as imapd gives it. */
#define MSGID_MAX 1024
/* An RFC 2047 word decodes to at most 3 UTF-8 octets per input octet
 * (a replacement character for one undecodable octet). */
#define DECODE_GROWTH 3

static void
check_upper(const char *s)
{
	for (; *s != '\0'; s++)
		FUZZ_CHECK(!(*s >= 'a' && *s <= 'z'));
}

static void
check_subject(const char *value, size_t len)
{
	char *base;
	size_t blen, i;
	int reply = -1;

	base = imap_base_subject(value, &reply);
	FUZZ_CHECK(base != NULL);
	FUZZ_CHECK(reply == 0 || reply == 1);
	check_upper(base);
	blen = strlen(base);
	FUZZ_CHECK(blen <= len * DECODE_GROWTH);
	if (blen > 0) {
		FUZZ_CHECK(base[0] != ' ' && base[blen - 1] != ' ');
		for (i = 1; i < blen; i++)
			FUZZ_CHECK(!(base[i] == ' ' && base[i - 1] == ' '));
	}
	free(base);
}

static void
check_msgids(const char *value, size_t len)
{
	struct buf id;
	size_t pos = 0, last = 0, n = 0;

	buf_init(&id, MSGID_MAX);
	while (imap_msgid_next(value, &pos, &id)) {
		FUZZ_CHECK(pos > last && pos <= len);
		FUZZ_CHECK(++n <= len);
		last = pos;
		FUZZ_CHECK(id.len > 0 && memchr(id.data, '@', id.len) != NULL);
		/* A quoted local part keeps its spaces, and Dovecot's
		 * fallback for an id that does not parse keeps a '<'. */
		FUZZ_CHECK(memchr(id.data, '>', id.len) == NULL &&
		    memchr(id.data, '\r', id.len) == NULL &&
		    memchr(id.data, '\n', id.len) == NULL);
	}
	buf_free(&id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = fuzz_cstr(data, size), *key;
	size_t len = strlen(value);
	int64_t t;
	int display, r;

	check_subject(value, len);
	check_msgids(value, len);
	r = imap_sent_date(value, &t);
	FUZZ_CHECK(r == 0 || r == 1);
	for (display = 0; display <= 1; display++) {
		key = imap_sort_addr_key(value, display);
		FUZZ_CHECK(key != NULL);
		check_upper(key);
		free(key);
	}
	free(value);
	return 0;
}
