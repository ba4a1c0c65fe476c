/* SPDX-License-Identifier: MIT */
/*
 * What every libFuzzer target of test/fuzz shares: the entry points
 * libFuzzer calls, an invariant check that aborts (so the fuzzer keeps a
 * logic error as a crash, not only memory errors), a small PRNG seeded
 * from the input (piece sizes must be the same on every run of an input,
 * or a crash would not reproduce), and a stream transport that hands out
 * bytes from memory in irregular pieces, with an occasional EAGAIN.
 */
#ifndef TERN_FUZZ_UTIL_H
#define TERN_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"
#include "base/mem.h"
#include "base/stream.h"

/* Defined by each target (LLVMFuzzerInitialize only where needed). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A violated invariant: reported on stderr, then abort(). */
#define FUZZ_CHECK(cond)                                      \
	do {                                                  \
		if (!(cond))                                  \
			fuzz_fail(__FILE__, __LINE__, #cond); \
	} while (0)
void fuzz_fail(const char *file, int line, const char *what) MTA_NORETURN;

/* splitmix64 over a hash of the input: deterministic per input. */
struct fuzz_rng {
	uint64_t state;
};

void fuzz_rng_init(struct fuzz_rng *r, const void *data, size_t len);
uint64_t fuzz_rng_next(struct fuzz_rng *r);
/* A piece size in 1..max: mostly a few bytes, sometimes up to max. */
size_t fuzz_piece(struct fuzz_rng *r, size_t max);

/* The memory a fuzz_transport reads from. */
struct fuzz_mem {
	const char *data;
	size_t len, pos;
	struct fuzz_rng rng;
	int again;	/* 1: some reads fail with EAGAIN first */
	int last_again;	/* never two EAGAINs in a row: progress */
	size_t max_piece;
};

/*
 * read hands out the next piece (0 at the end), write fails with EPIPE,
 * pending reports what is left plus one (so blocking reads never poll
 * the fd: the end comes as a read of 0), free does nothing: the
 * fuzz_mem belongs to the caller.
 */
extern const struct stream_transport fuzz_transport;
void fuzz_mem_init(struct fuzz_mem *m, const void *data, size_t len,
    uint64_t seed, int again, size_t max_piece);

/* A copy of data[0..len) as a C string, cut at the first NUL. */
char *fuzz_cstr(const uint8_t *data, size_t len);
/* ASCII letters upper-cased (malloc'd copy). */
char *fuzz_upper(const char *s);

#endif
