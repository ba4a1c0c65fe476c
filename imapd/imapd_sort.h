/* SPDX-License-Identifier: MIT */
/*
 * What SORT (imapd_sort.c) and THREAD (imapd_thread.c) share: the header
 * fields their keys come from, read once per message through the folder's
 * cache (MAILBOX_CACHE_SORT), and the RFC 5256 sent date.
 */
#ifndef TERN_IMAPD_SORT_H
#define TERN_IMAPD_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "imapd.h"

/* Keys kept in memory for one command (sort strings, message ids):
 * beyond this the command fails with [LIMIT] instead of growing. */
#define IMAPD_SORT_MEM_MAX (256u * 1024 * 1024)

enum imapd_sort_field {
	IMAPD_SORT_F_DATE,
	IMAPD_SORT_F_SUBJECT,
	IMAPD_SORT_F_FROM,
	IMAPD_SORT_F_TO,
	IMAPD_SORT_F_CC,
	IMAPD_SORT_F_MESSAGE_ID,
	IMAPD_SORT_F_IN_REPLY_TO,
	IMAPD_SORT_F_REFERENCES,
	IMAPD_SORT_F_COUNT
};

/* The first field of each name, unfolded, NUL-terminated; NULL when the
 * message has none. Values longer than a cap are cut (References keeps
 * its last ids: the parent is the last one). */
struct imapd_sort_hdr {
	const char *v[IMAPD_SORT_F_COUNT];
};

/*
 * Calls fn(ctx, i, hdr) for each seqs[i] (i in no particular order),
 * from the cache where it has the fields, else from the message file
 * (then cached). A message whose file is gone has no fields. hdr is
 * valid during the call only.
 */
void imapd_sort_headers(struct imapd_session *s, const uint32_t *seqs, size_t n,
    void (*fn)(void *ctx, size_t i, const struct imapd_sort_hdr *h), void *ctx);

/* RFC 5256 2.2 sent date: the Date: field's time, else (absent or
 * unparsable) the INTERNALDATE; the time taken modulo 2^32 as Dovecot 2.3
 * stores it (a 1960 date sorts as 2096). */
int64_t imapd_sort_date(struct mailbox *box, uint32_t seq, const char *date);

/* 1 if the charset argument of SORT/THREAD is one imapd searches in;
 * else 0 after a NO [BADCHARSET]. */
int imapd_sort_charset(struct imapd_session *s, const struct imap_arg *arg);

#endif
