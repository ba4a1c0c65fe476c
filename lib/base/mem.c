/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers that never return NULL. A daemon that runs out of
 * memory cannot do anything useful, so it logs and exits; master restarts
 * it. Callers therefore never carry allocation-failure paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/log.h"

static void *
check_alloc(void *p, size_t n)
{
	if (p == NULL)
		msg_fatal("out of memory allocating %zu bytes", n);
	return p;
}

void *
xmalloc(size_t n)
{
	/* malloc(0) may legally return NULL; ask for one byte instead. */
	return check_alloc(malloc(n ? n : 1), n);
}

void *
xcalloc(size_t nmemb, size_t size)
{
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	return check_alloc(calloc(nmemb, size), nmemb * size);
}

void *
xrealloc(void *p, size_t n)
{
	return check_alloc(realloc(p, n ? n : 1), n);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *p;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		msg_panic("xvasprintf: bad format \"%s\"", fmt);
	p = xmalloc((size_t)n + 1);
	va_copy(ap2, ap);
	vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}
