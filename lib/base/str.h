/* SPDX-License-Identifier: MIT */
/*
 * Bounded parsing helpers: every function takes explicit lengths or
 * NUL-terminated input and cannot read past it. Return 0 on success, -1 on
 * malformed or out-of-range input, never touching *out_r on failure.
 */
#ifndef TERN_STR_H
#define TERN_STR_H

#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"

/* Decimal, no sign, no spaces, whole string, value <= max. */
int str_to_u64(const char *s, uint64_t max, uint64_t *out_r);
int str_to_u64_n(const char *s, size_t len, uint64_t max, uint64_t *out_r);
/* yes/no/true/false/1/0/on/off, case-insensitive. */
int str_to_bool(const char *s, int *out_r);
/* Number with optional unit s m h d w (default unit given as seconds). */
int str_to_seconds(const char *s, uint64_t default_unit, uint64_t *out_r);
/* Number with optional k/m/g suffix (powers of 1024). */
int str_to_size(const char *s, uint64_t *out_r);

/* Case-insensitive ASCII compare helpers. */
int str_eq_ci(const char *a, const char *b);
/* 1 if s (of length len) starts with prefix, case-insensitively. */
int str_prefix_ci(const char *s, size_t len, const char *prefix);
void str_lower(char *s);
/* Trims ASCII space and tab in place from both ends; returns s moved. */
char *str_trim(char *s);
/* snprintf into buf, returning buf: the error texts modules keep in a
 * buffer of their own (truncated to size, always terminated). */
const char *str_format(char *buf, size_t size, const char *fmt, ...)
    MTA_PRINTF(3, 4);

/*
 * Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) starting at s[0] within len bytes,
 * or 0 if there is none. ASCII bytes are sequences of one.
 */
size_t str_utf8_seq(const char *s, size_t len);
/* 1 if s[0..len) is entirely valid UTF-8. */
int str_utf8_valid(const char *s, size_t len);

/*
 * Splits s in place at any byte of seps (runs count as one), storing up to
 * max pointers. Returns the count, or -1 if there were more than max fields.
 */
int str_split(char *s, const char *seps, char **fields, int max);

#endif
