/* SPDX-License-Identifier: MIT */
/*
 * A minimal unit-test harness with TAP output ("ok 3 - name"), read by
 * test/run-tests. Each *_test.c defines test functions and ends with
 *
 *   UNIT_MAIN(UNIT_CASE(test_buf_grow), UNIT_CASE(test_buf_max))
 *
 * CHECK() records a failure and continues; the process exits non-zero if
 * any case failed. Sanitizer reports also fail the binary.
 */
#ifndef TERN_UNIT_H
#define TERN_UNIT_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char *name;
	void (*fn)(void);
};

static int unit_case_failed;

static void
unit_fail(const char *file, int line, const char *what)
{
	printf("#   %s:%d: check failed: %s\n", file, line, what);
	unit_case_failed = 1;
}

#define CHECK(cond)                                           \
	do {                                                  \
		if (!(cond))                                  \
			unit_fail(__FILE__, __LINE__, #cond); \
	} while (0)

#define CHECK_STR(a, b)                                              \
	do {                                                         \
		const char *unit_a_ = (a), *unit_b_ = (b);           \
		if (unit_a_ == NULL || unit_b_ == NULL ||            \
		    strcmp(unit_a_, unit_b_) != 0) {                 \
			printf("#   got \"%s\", want \"%s\"\n",      \
			    unit_a_ ? unit_a_ : "(null)",            \
			    unit_b_ ? unit_b_ : "(null)");           \
			unit_fail(__FILE__, __LINE__, #a " == " #b); \
		}                                                    \
	} while (0)

#define CHECK_INT(a, b)                                                        \
	do {                                                                   \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);  \
		if (unit_a_ != unit_b_) {                                      \
			printf("#   got %lld, want %lld\n", unit_a_, unit_b_); \
			unit_fail(__FILE__, __LINE__, #a " == " #b);           \
		}                                                              \
	} while (0)

#define UNIT_CASE(f)  \
	{             \
#f, f \
	}

/* Descriptors nftw may hold open while removing a scratch tree. */
#define UNIT_NFTW_FDS 16

static inline int
unit_rm_entry(
    const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a test's scratch tree (not following symlinks); 0 or -1. */
static inline int
unit_rmtree(const char *path)
{
	return nftw(path, unit_rm_entry, UNIT_NFTW_FDS, FTW_DEPTH | FTW_PHYS);
}

static int
unit_run(const struct unit_case *cases, size_t n)
{
	size_t i;
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		unit_case_failed = 0;
		cases[i].fn();
		printf("%sok %zu - %s\n", unit_case_failed ? "not " : "", i + 1,
		    cases[i].name);
		failed |= unit_case_failed;
	}
	return failed ? 1 : 0;
}

#define UNIT_MAIN(...)                                                       \
	int main(void)                                                       \
	{                                                                    \
		static const struct unit_case unit_cases_[] = {__VA_ARGS__}; \
		return unit_run(unit_cases_,                                 \
		    sizeof(unit_cases_) / sizeof(unit_cases_[0]));           \
	}

#endif
