/* SPDX-License-Identifier: MIT */
/*
 * The one buffer type: length-counted, binary-safe, always NUL-kept
 * (data[len] == 0), growing up to a hard maximum fixed at init. Appending
 * past the maximum fails and leaves the buffer unchanged.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stddef.h>
#include <stdarg.h>
#include "base/mem.h"

struct buf {
	char *data;	/* NULL until first append; buf_cstr() never NULL */
	size_t len;
	size_t cap;
	size_t max;	/* hard maximum of len */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);	/* frees data, keeps max, len = 0 */
void buf_reset(struct buf *b);	/* len = 0, keeps memory */
/* Room for extra more bytes (one allocation for what would otherwise
 * grow piecemeal); -1 if that would exceed max. */
int buf_reserve(struct buf *b, size_t extra);
/* 0 on success, -1 if len would exceed max (buffer unchanged). */
int buf_append(struct buf *b, const void *data, size_t len) MTA_NODISCARD;
int buf_puts(struct buf *b, const char *s) MTA_NODISCARD;
int buf_putc(struct buf *b, char c) MTA_NODISCARD;
int buf_printf(struct buf *b, const char *fmt, ...) MTA_PRINTF(2, 3) MTA_NODISCARD;
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) MTA_PRINTF(2, 0) MTA_NODISCARD;
/* Drops the first n bytes (n > len drops all). */
void buf_consume(struct buf *b, size_t n);
/* Cuts to n bytes if n < len. */
void buf_truncate(struct buf *b, size_t n);
/* Pointer to NUL-terminated contents ("" when empty). */
const char *buf_cstr(const struct buf *b);
/* Hands the storage to the caller (xstrdup("") if empty); b becomes empty. */
char *buf_steal(struct buf *b);

#endif
