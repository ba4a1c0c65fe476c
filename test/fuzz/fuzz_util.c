/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the libFuzzer targets (fuzz_util.h): the aborting check,
 * the PRNG that picks piece sizes, and the memory stream transport.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

/* splitmix64 (Steele, Lea, Flood 2014) and FNV-1a 64 for the seed. */
#define FUZZ_SM_GAMMA    0x9e3779b97f4a7c15ULL
#define FUZZ_SM_MUL1     0xbf58476d1ce4e5b9ULL
#define FUZZ_SM_MUL2     0x94d049bb133111ebULL
#define FUZZ_FNV_BASIS   0xcbf29ce484222325ULL
#define FUZZ_FNV_PRIME   0x100000001b3ULL
/* Out of FUZZ_PIECE_KINDS draws: 1 byte, a few, or anything up to max. */
#define FUZZ_PIECE_KINDS 8
#define FUZZ_PIECE_FEW   16
/* One read in FUZZ_AGAIN_ODDS reports EAGAIN (when enabled). */
#define FUZZ_AGAIN_ODDS  5

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	abort();
}

void
fuzz_rng_init(struct fuzz_rng *r, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = FUZZ_FNV_BASIS;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= FUZZ_FNV_PRIME;
	}
	r->state = h;
}

uint64_t
fuzz_rng_next(struct fuzz_rng *r)
{
	uint64_t z = (r->state += FUZZ_SM_GAMMA);

	z = (z ^ (z >> 30)) * FUZZ_SM_MUL1;
	z = (z ^ (z >> 27)) * FUZZ_SM_MUL2;
	return z ^ (z >> 31);
}

size_t
fuzz_piece(struct fuzz_rng *r, size_t max)
{
	uint64_t v = fuzz_rng_next(r);
	size_t n;

	if (max <= 1)
		return 1;
	switch (v % FUZZ_PIECE_KINDS) {
	case 0:
	case 1:
		n = 1;
		break;
	case 2:
	case 3:
	case 4:
		n = 1 + (size_t)(v >> 8) % FUZZ_PIECE_FEW;
		break;
	default:
		n = 1 + (size_t)((v >> 8) % max);
		break;
	}
	return n < max ? n : max;
}

static ssize_t
fuzz_read(void *ctx, int fd, void *data, size_t len, int *want_r)
{
	struct fuzz_mem *m = ctx;
	size_t n;

	(void)fd;
	*want_r = STREAM_WANT_READ;
	if (m->again && !m->last_again &&
	    fuzz_rng_next(&m->rng) % FUZZ_AGAIN_ODDS == 0) {
		m->last_again = 1;
		errno = EAGAIN;
		return -1;
	}
	m->last_again = 0;
	if (m->pos == m->len)
		return 0;
	n = fuzz_piece(&m->rng, m->max_piece);
	if (n > len)
		n = len;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(data, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static ssize_t
fuzz_write(void *ctx, int fd, const void *data, size_t len, int *want_r)
{
	(void)ctx;
	(void)fd;
	(void)data;
	(void)len;
	*want_r = STREAM_WANT_WRITE;
	errno = EPIPE;
	return -1;
}

static size_t
fuzz_pending(void *ctx)
{
	struct fuzz_mem *m = ctx;

	return m->len - m->pos + 1;
}

static void
fuzz_free(void *ctx)
{
	(void)ctx;
}

const struct stream_transport fuzz_transport = {
    fuzz_read, fuzz_write, fuzz_pending, fuzz_free};

void
fuzz_mem_init(struct fuzz_mem *m, const void *data, size_t len, uint64_t seed,
    int again, size_t max_piece)
{
	m->data = data;
	m->len = len;
	m->pos = 0;
	m->rng.state = seed;
	m->again = again;
	m->last_again = 0;
	m->max_piece = max_piece > 0 ? max_piece : 1;
}

char *
fuzz_cstr(const uint8_t *data, size_t len)
{
	return xstrndup((const char *)data, len);
}

char *
fuzz_upper(const char *s)
{
	char *u = xstrdup(s), *p;

	for (p = u; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return u;
}
