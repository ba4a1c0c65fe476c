/* SPDX-License-Identifier: MIT */
/*
 * Allocation that never returns NULL: running out of memory is fatal
 * (msg_fatal), and master restarts the daemon.
 */
#ifndef TERN_MEM_H
#define TERN_MEM_H

#include <stddef.h>
#include <stdarg.h>

#define MTA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MTA_NORETURN	 __attribute__((noreturn))
#define MTA_NODISCARD	 __attribute__((warn_unused_result))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies at most n bytes of s and always NUL-terminates. */
char *xstrndup(const char *s, size_t n);
/* Returns a freshly allocated formatted string (vsnprintf, never sprintf). */
char *xasprintf(const char *fmt, ...) MTA_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) MTA_PRINTF(1, 0);

#endif
