/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: one SMTP command line end to end, as smtpd takes it
 * (RFC 5321 4.1.1): smtp_command_split, then for MAIL FROM: and RCPT TO:
 * the path (addr_parse_path) and the ESMTP parameters, for BDAT its
 * argument (RFC 3030). The split is checked against a model written
 * here; the parsers through fuzz_check.c.
 *
 * Input: one byte of session state (the extensions offered, EHLO or
 * HELO, SMTPUTF8 on the MAIL), then the line as the stream hands it over
 * (without CRLF; it may hold any byte, NUL included).
 */
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "mail/addr.h"
#include "mail/smtp_param.h"
#include "fuzz_check.h"
#include "fuzz_util.h"

#define CFG_EXTS_MASK 0x3f /* SMTP_EXT_* */
#define CFG_ESMTP     0x40 /* EHLO, not HELO: parameters allowed */
#define CFG_MAIL_UTF8 0x80 /* the MAIL had SMTPUTF8: RCPT takes UTF-8 */
#define MAIL_FROM     "FROM:"
#define RCPT_TO       "TO:"

/* The split the way RFC 5321 and smtpd_cmd_dispatch had it inline. */
static void
check_split(const char *orig, size_t len, const char *line, int r,
    size_t verb_len, const char *arg)
{
	size_t end = len, verb, a;

	while (end > 0 && orig[end - 1] == ' ')
		end--;
	if (end == 0 || memchr(orig, '\0', end) != NULL) {
		FUZZ_CHECK(r == -1);
		return;
	}
	for (verb = 0; verb < end && orig[verb] != ' '; verb++)
		;
	if (verb == 0) {
		FUZZ_CHECK(r == -1);
		return;
	}
	for (a = verb; a < end && orig[a] == ' '; a++)
		;
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(verb_len == verb);
	FUZZ_CHECK(arg == line + a);
	FUZZ_CHECK(strlen(arg) == end - a);
	/* In place: the text is unchanged, trailing spaces are NULs. */
	FUZZ_CHECK(memcmp(line, orig, end) == 0);
	for (a = end; a < len; a++)
		FUZZ_CHECK(line[a] == '\0');
}

static int
verb_is(const char *line, size_t verb_len, const char *name)
{
	return strlen(name) == verb_len && str_prefix_ci(line, verb_len, name);
}

static void
command(const char *line, size_t verb_len, const char *arg, unsigned cfg)
{
	unsigned exts = (cfg & CFG_ESMTP) ? cfg & CFG_EXTS_MASK : 0;
	unsigned flags;
	const char *params;
	char *addr;

	/* As cmd_mail and cmd_rcpt in smtpd_cmd.c. */
	if (verb_is(line, verb_len, "MAIL") &&
	    str_prefix_ci(arg, strlen(arg), MAIL_FROM)) {
		flags = ADDR_EMPTY_OK;
		if (exts & SMTP_EXT_SMTPUTF8)
			flags |= ADDR_UTF8_OK;
		if (fuzz_check_path(
		        arg + strlen(MAIL_FROM), flags, &addr, &params) == 0) {
			(void)fuzz_check_mail_params(params, exts);
			free(addr);
		}
	} else if (verb_is(line, verb_len, "RCPT") &&
	           str_prefix_ci(arg, strlen(arg), RCPT_TO)) {
		flags = (cfg & CFG_MAIL_UTF8) ? ADDR_UTF8_OK : 0;
		if (fuzz_check_path(
		        arg + strlen(RCPT_TO), flags, &addr, &params) == 0) {
			(void)fuzz_check_rcpt_params(params, exts);
			free(addr);
		}
	} else if (verb_is(line, verb_len, "BDAT")) {
		(void)fuzz_check_bdat(arg);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, verb_len = 0;
	char *line, *orig, *arg = NULL;
	unsigned cfg;
	int r;

	if (size < 1)
		return 0;
	cfg = data[0];
	len = size - 1;
	/* As a struct buf holds the line: len bytes and a NUL. */
	line = xmalloc(len + 1);
	memcpy(line, data + 1, len);
	line[len] = '\0';
	orig = xmalloc(len + 1);
	memcpy(orig, line, len + 1);
	r = smtp_command_split(line, len, &verb_len, &arg);
	check_split(orig, len, line, r, verb_len, arg);
	if (r == 0)
		command(line, verb_len, arg, cfg);
	free(orig);
	free(line);
	return 0;
}
