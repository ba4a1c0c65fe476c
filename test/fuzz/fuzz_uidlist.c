/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the dovecot-uidlist parser (lib/mail/maildir_uidlist.c),
 * which reads a file that Dovecot, other mail programs and the mailbox's
 * owner write. Checked against maildir_uidlist.h:
 * - the result is 1, 0 (corrupt) or -1 (bounds), with an error unless 1;
 * - a parsed list keeps its promises: UIDs ascending, none 0 or
 *   4294967295, next_uid above them all, a UIDVALIDITY, every record
 *   found by its base and by its UID, bases valid and without ':', extension
 *   fields with an A-Z key and no space;
 * - written back (maildir_uidlist_format) it parses to the same list and
 *   formats to the same bytes;
 * - new names added get UIDs from next_uid up, leaving the others alone.
 *
 * Input: the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/maildir_uidlist.h"
#include "fuzz_util.h"

#define FORMAT_MAX (2 * MAILDIR_UIDLIST_SIZE_MAX)
#define NEW_NAMES  3

static void
check_list(const struct maildir_uidlist *ul)
{
	const struct maildir_uidlist_rec *rec;
	const char *e;
	size_t i;

	FUZZ_CHECK(ul->uidvalidity != 0);
	FUZZ_CHECK(ul->next_uid != 0);
	FUZZ_CHECK(ul->version == 1 || ul->version == 3);
	for (i = 0; i < ul->count; i++) {
		rec = ul->recs[i];
		FUZZ_CHECK(rec->uid != 0 && rec->uid != 0xffffffffu);
		FUZZ_CHECK(i == 0 || ul->recs[i - 1]->uid < rec->uid);
		FUZZ_CHECK(rec->uid < ul->next_uid);
		FUZZ_CHECK(maildir_uidlist_base_valid(rec->base));
		FUZZ_CHECK(strchr(rec->base, ':') == NULL);
		FUZZ_CHECK(maildir_uidlist_lookup(ul, rec->base) == rec);
		FUZZ_CHECK(maildir_uidlist_lookup_uid(ul, rec->uid) == rec);
		for (e = rec->ext; e != NULL && *e != '\0';
		     e += strlen(e) + 1) {
			FUZZ_CHECK(*e >= 'A' && *e <= 'Z');
			FUZZ_CHECK(strchr(e, ' ') == NULL);
			FUZZ_CHECK(maildir_uidlist_rec_ext(rec, *e) != NULL);
		}
	}
	FUZZ_CHECK(maildir_uidlist_lookup_uid(ul, ul->next_uid) == NULL);
}

static int
same_ext(const char *a, const char *b)
{
	size_t n;

	if (a == NULL || b == NULL)
		return a == b;
	for (;;) {
		if (strcmp(a, b) != 0)
			return 0;
		if (*a == '\0')
			return 1;
		n = strlen(a) + 1;
		a += n;
		b += n;
	}
}

static void
check_same(const struct maildir_uidlist *a, const struct maildir_uidlist *b)
{
	size_t i;

	FUZZ_CHECK(a->uidvalidity == b->uidvalidity);
	FUZZ_CHECK(a->next_uid == b->next_uid);
	FUZZ_CHECK(
	    b->have_guid && memcmp(a->guid, b->guid, sizeof(a->guid)) == 0);
	FUZZ_CHECK((a->hdr_ext == NULL && b->hdr_ext == NULL) ||
	           (a->hdr_ext != NULL && b->hdr_ext != NULL &&
	               strcmp(a->hdr_ext, b->hdr_ext) == 0));
	FUZZ_CHECK(a->count == b->count);
	FUZZ_CHECK(!b->recreate);
	for (i = 0; i < a->count && i < b->count; i++) {
		FUZZ_CHECK(a->recs[i]->uid == b->recs[i]->uid);
		FUZZ_CHECK(strcmp(a->recs[i]->base, b->recs[i]->base) == 0);
		FUZZ_CHECK(same_ext(a->recs[i]->ext, b->recs[i]->ext));
	}
}

static void
check_round_trip(struct maildir_uidlist *ul)
{
	struct maildir_uidlist *again;
	const char *error;
	struct buf out, out2;
	int ret;

	/* Dovecot's own quirk: a header field after two spaces has the
	 * key ' ', and reads back as another field. */
	if (ul->hdr_ext != NULL && ul->hdr_ext[0] == ' ')
		return;
	if (!ul->have_guid) {
		memset(ul->guid, 0xab, sizeof(ul->guid));
		ul->have_guid = 1;
	}
	buf_init(&out, FORMAT_MAX);
	buf_init(&out2, FORMAT_MAX);
	FUZZ_CHECK(maildir_uidlist_format(ul, &out) == 0);
	again = maildir_uidlist_create();
	ret = maildir_uidlist_parse(again, buf_cstr(&out), out.len, &error);
	/* v1 lines grow by the ':' of v3 and may pass the line limit */
	FUZZ_CHECK(ret == 1 || (ret == -1 && ul->version == 1));
	if (ret == 1) {
		check_same(ul, again);
		FUZZ_CHECK(maildir_uidlist_format(again, &out2) == 0);
		FUZZ_CHECK(
		    out.len == out2.len &&
		    memcmp(buf_cstr(&out), buf_cstr(&out2), out.len) == 0);
	}
	maildir_uidlist_free(&again);
	buf_free(&out);
	buf_free(&out2);
}

static void
check_add(struct maildir_uidlist *ul)
{
	static char m1[] = "1700000001.M1P1.fuzz:2,S",
	            m2[] = "1700000001.M2P1.fuzz";
	static char x[] = "x";
	char *names[NEW_NAMES];
	uint32_t next = ul->next_uid, *before;
	size_t i, j, count = ul->count, fresh = 0;
	const char *error;
	int listed[NEW_NAMES];

	before = malloc((count + 1) * sizeof(*before));
	FUZZ_CHECK(before != NULL);
	for (i = 0; i < count; i++)
		before[i] = ul->recs[i]->uid;
	names[0] = m2;
	names[1] = m1;
	names[2] = count > 0 ? ul->recs[0]->base : x;
	for (i = 0; i < NEW_NAMES; i++) {
		listed[i] = maildir_uidlist_lookup(ul, names[i]) != NULL;
		for (j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				listed[i] = 1;
		fresh += !listed[i];
	}
	if (maildir_uidlist_add_new(ul, names, NEW_NAMES, &error) == 0) {
		FUZZ_CHECK(ul->count == count + fresh);
		FUZZ_CHECK(ul->next_uid == next + fresh);
		for (i = 0; i < count; i++)
			FUZZ_CHECK(ul->recs[i]->uid == before[i]);
		/* Dovecot's order: M1 before M2 when both are new */
		if (!listed[0] && !listed[1])
			FUZZ_CHECK(maildir_uidlist_lookup(ul, m1)->uid <
			           maildir_uidlist_lookup(ul, m2)->uid);
		check_list(ul);
	} else {
		FUZZ_CHECK(ul->count == count && ul->next_uid == next);
	}
	free(before);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildir_uidlist *ul = maildir_uidlist_create();
	const char *error = NULL;
	int ret;

	ret = maildir_uidlist_parse(ul, (const char *)data, size, &error);
	FUZZ_CHECK(ret == 1 || ret == 0 || ret == -1);
	FUZZ_CHECK(ret == 1 || (error != NULL && error[0] != '\0'));
	if (ret == 1) {
		check_list(ul);
		check_round_trip(ul);
		check_add(ul);
	}
	maildir_uidlist_free(&ul);
	return 0;
}
