/* SPDX-License-Identifier: MIT */
/*
 * What fuzz_fetch_pop3 and fuzz_fetch_imap share (fuzz_fetch.c): the
 * fetch daemon's client session (fetch/libfetch.a) run over a
 * connection whose server side is the fuzzer's input, with a real
 * journal and fetch_inject replaced by a recorder, and the checks that
 * hold whatever the server says.
 */
#ifndef TERN_FUZZ_FETCH_H
#define TERN_FUZZ_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "../../fetch/fetch.h"

typedef void fuzz_fetch_session_fn(struct fetch_account *a,
    struct fetch_state *state, struct fetch_conn *conn,
    struct fetch_summary *sum);

/* Config in a private directory, the journal's directory in it. */
void fuzz_fetch_init(void);

/*
 * Byte 0 of data chooses the account and limits (fuzz_fetch.c); the
 * rest is what the server sends, in irregular pieces, whatever the
 * client says. Checks every command the client sends and what it
 * hands the queue, deletes or records.
 */
void fuzz_fetch_run(const uint8_t *data, size_t size, enum fetch_proto proto,
    fuzz_fetch_session_fn *session);

#endif
