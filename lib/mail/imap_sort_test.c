/* SPDX-License-Identifier: MIT */
/*
 * Tests of the SORT/THREAD keys: base subjects (RFC 5256 2.1 with its
 * examples and the corner cases of each step, as Dovecot 2.3 reads them),
 * message ids (quick and tokenised forms, invalid ones skipped), Date:
 * values (zones, 2-digit years, leap seconds, invalid ones) and the
 * address keys of FROM/TO/CC and DISPLAYFROM/DISPLAYTO.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/imap_sort.h"
#include "unit.h"

#define ID_MAX 1024

static const struct {
	const char *in, *base;
	int fwd;
} subjects[] = {
    {"", "", 0},
    {"Hello", "HELLO", 0},
    {"hello   world\t again", "HELLO WORLD AGAIN", 0},
    {"Re: hello", "HELLO", 1},
    {"RE: Re: re: hello", "HELLO", 1},
    {"Re:hello", "HELLO", 1},
    {"Re : hello", "HELLO", 1},
    {"Fwd: hello", "HELLO", 1},
    {"Fw: hello", "HELLO", 1},
    {"FWD : hello", "HELLO", 1},
    {"Re[2]: hello", "HELLO", 1},
    {"Re [2]: hello", "HELLO", 1},
    {"[list] Re: hello", "HELLO", 1},
    {"Re: [list] hello", "HELLO", 1},
    {"[list] hello", "HELLO", 0},
    {"[list][other] hello", "HELLO", 0},
    /* a blob alone is the subject */
    {"[list]", "[LIST]", 0},
    {"Re: [list]", "[LIST]", 1},
    {"hello (fwd)", "HELLO", 1},
    {"hello (fwd) (FWD)  ", "HELLO", 1},
    {"hello(fwd)", "HELLO", 1},
    {"[fwd: hello]", "HELLO", 1},
    {"[Fwd: Re: [list] hello (fwd)]", "HELLO", 1},
    {"[fwd: [fwd: hello]]", "HELLO", 1},
    /* no closing bracket: neither a blob nor a subj-fwd */
    {"[fwd: hello", "[FWD: HELLO", 0},
    {"Reply: hello", "REPLY: HELLO", 0},
    {"Re hello", "RE HELLO", 0},
    {"Re: ", "", 1},
    {"   Re:   hello  ", "HELLO", 1},
    {"=?utf-8?q?Re=3A_caf=C3=A9?=", "CAF\xc3\xa9", 1},
    {"=?iso-8859-1?q?h=E9llo?= (fwd)", "H\xc3\xa9LLO", 1},
    {"[unterminated hello", "[UNTERMINATED HELLO", 0},
    {"Re: Re[3]: [a] [b] Fwd: x", "X", 1},
};

static void
test_base_subject(void)
{
	size_t i;
	char *b;
	int fwd;

	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		b = imap_base_subject(subjects[i].in, &fwd);
		printf("# \"%s\"\n", subjects[i].in);
		CHECK_STR(b, subjects[i].base);
		CHECK_INT(fwd, subjects[i].fwd);
		free(b);
	}
}

static void
check_ids(const char *value, const char *const *want)
{
	struct buf out;
	size_t pos = 0, n = 0;

	buf_init(&out, ID_MAX);
	printf("# %s\n", value);
	while (imap_msgid_next(value, &pos, &out)) {
		CHECK(want[n] != NULL);
		if (want[n] == NULL)
			break;
		CHECK_STR(buf_cstr(&out), want[n]);
		n++;
	}
	CHECK(want[n] == NULL);
	buf_free(&out);
}

static void
test_msgid(void)
{
	static const char *const a[] = {"foo@bar", NULL};
	static const char *const b[] = {"foo@bar", "foo2@bar2", NULL};
	static const char *const c[] = {"foo 2@bar", NULL};
	static const char *const d[] = {"a@b", "c@d", "e@f", NULL};
	static const char *const none[] = {NULL};

	check_ids("<foo@bar>", a);
	check_ids("<foo@bar>,skipped,<foo2@bar2>", b);
	check_ids("(c) < (c) foo (c) @ (c) bar (c) > (c)", a);
	check_ids("<\"foo 2\"@bar>", c);
	check_ids(" <a@b>\n\t<nope> <c@d>  <e\n @f>", d);
	check_ids("", none);
	check_ids("no ids at all", none);
	check_ids("<unterminated@x", none);
	check_ids("<x>", none);
}

static const struct {
	const char *in;
	int ok;
	int64_t t;
} dates[] = {
    {"Thu, 01 Jan 1970 01:59:59 +0200", 1, -1},
    {"Wed, 07 Nov 2007 01:07:20 +0200", 1, 1194390440},
    {"Wed, 07 Nov 2007 01:07:20", 1, 1194397640},
    {"7 Nov 2007 01:07:20 GMT", 1, 1194397640},
    {"Wed, 7 Nov 07 01:07 EST", 1, 1194397620 + 5 * 3600},
    {"Wed, 07 Nov 2007 01.07.20 PDT", 1, 1194397640 + 7 * 3600},
    {"Wed, 07 Nov 2007 01:07:20 XYZ", 1, 1194397640},
    {"Tue, 19 Jan 2038 03:14:07 +0000", 1, 2147483647},
    {"Tue, 30 Jun 2015 23:59:60 +0300", 1, 1435697999},
    {"Sat, 31 Dec 2016 23:59:59 +0200", 1, 1483221599},
    {"Thu, 1 Jan 70 00:00:00 +0000", 1, 0},
    {"Wed, 07 Nov 2007 01:07:20 +0200 (CEST)", 1, 1194390440},
    {"Tue, 19 Jan 2038", 0, 0},
    {"Wednesday, 07 Nov 2007 01:07:20", 0, 0},
    {"31 Feb 2007 01:07:20", 0, 0},
    {"07 Nov 2007 24:00:00", 0, 0},
    {"07 Nov 207 01:00:00", 0, 0},
    {"07 Foo 2007 01:00:00", 0, 0},
    {"", 0, 0},
    {"garbage", 0, 0},
};

static void
test_sent_date(void)
{
	size_t i;
	int64_t t;

	for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		t = 0;
		printf("# %s\n", dates[i].in);
		CHECK_INT(imap_sent_date(dates[i].in, &t), dates[i].ok);
		if (dates[i].ok)
			CHECK_INT(t, dates[i].t);
	}
}

static const struct {
	const char *in, *mailbox, *display;
} addrs[] = {
    {"", "", ""},
    {"alice@example.org", "ALICE", "ALICE@EXAMPLE.ORG"},
    {"Bob Smith <bob@example.org>, carol@x", "BOB", "BOB SMITH"},
    {"\"Zed, Z.\" <zed@example.org>", "ZED", "ZED, Z."},
    {"=?utf-8?q?J=C3=B6rg?= <jorg@example.org>", "JORG", "J\xc3\xb6RG"},
    {"dave@example.org (Dave D)", "DAVE", "DAVE D"},
    {"undisclosed-recipients:;", "UNDISCLOSED-RECIPIENTS",
        "UNDISCLOSED-RECIPIENTS"},
    {"team: erin@example.org;", "TEAM", "TEAM"},
    {"<>", "MISSING_MAILBOX", "MISSING_MAILBOX@MISSING_DOMAIN"},
    {"frank", "FRANK", "FRANK@MISSING_DOMAIN"},
};

static void
test_addr_key(void)
{
	size_t i;
	char *k;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		printf("# %s\n", addrs[i].in);
		k = imap_sort_addr_key(addrs[i].in, 0);
		CHECK_STR(k, addrs[i].mailbox);
		free(k);
		k = imap_sort_addr_key(addrs[i].in, 1);
		CHECK_STR(k, addrs[i].display);
		free(k);
	}
}

UNIT_MAIN(UNIT_CASE(test_base_subject), UNIT_CASE(test_msgid),
    UNIT_CASE(test_sent_date), UNIT_CASE(test_addr_key))
