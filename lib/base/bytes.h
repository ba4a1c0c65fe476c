/* SPDX-License-Identifier: MIT */
/*
 * Fixed-width big-endian integers in byte buffers, for the length fields
 * of on-disk and on-socket records (queue files, IPC frames). The caller
 * guarantees four readable or writable bytes at p.
 */
#ifndef TERN_BYTES_H
#define TERN_BYTES_H

#include <stdint.h>

static inline void
bytes_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint32_t
bytes_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

#endif
