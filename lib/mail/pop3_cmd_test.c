/* SPDX-License-Identifier: MIT */
/*
 * Tests of the POP3 command splitter: keywords in any case, arguments
 * split on spaces, PASS keeping its spaces, the bad lines (short or long
 * keywords, control characters, too many arguments, too long), and the
 * message numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/pop3_cmd.h"
#include "unit.h"

static int
parse(const char *text, struct pop3_cmd *cmd, char *buf, size_t size)
{
	const char *err = NULL;
	size_t len = strlen(text);

	snprintf(buf, size, "%s", text);
	return pop3_cmd_parse(buf, len, cmd, &err);
}

static void
test_keywords(void)
{
	struct pop3_cmd c;
	char b[POP3_LINE_MAX + 2];

	CHECK_INT(parse("stat", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.id, POP3_CMD_STAT);
	CHECK_INT(c.argc, 0);
	CHECK_INT(parse("ReTr 12", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.id, POP3_CMD_RETR);
	CHECK_INT(c.argc, 1);
	CHECK_STR(c.argv[0], "12");
	CHECK_INT(parse("TOP 1  0", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.id, POP3_CMD_TOP);
	CHECK_INT(c.argc, 2);
	CHECK_STR(c.argv[1], "0");
	CHECK_INT(parse("XTND x", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.id, POP3_CMD_UNKNOWN);
	CHECK_STR(c.name, "XTND");
	CHECK_INT(parse("LIST ", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.argc, 0);
	CHECK_STR(pop3_cmd_name(POP3_CMD_UIDL), "UIDL");
}

static void
test_pass(void)
{
	struct pop3_cmd c;
	char b[64];

	CHECK_INT(parse("PASS  my secret ", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.id, POP3_CMD_PASS);
	CHECK_INT(c.argc, 1);
	CHECK_STR(c.argv[0], " my secret ");
	CHECK_INT(parse("pass", &c, b, sizeof(b)), POP3_PARSE_OK);
	CHECK_INT(c.argc, 0);
}

static void
test_bad(void)
{
	struct pop3_cmd c;
	char b[POP3_LINE_MAX + 16];
	char *big;

	CHECK_INT(parse("", &c, b, sizeof(b)), POP3_PARSE_EMPTY);
	CHECK_INT(parse("   ", &c, b, sizeof(b)), POP3_PARSE_EMPTY);
	CHECK_INT(parse("RE", &c, b, sizeof(b)), POP3_PARSE_BAD);
	CHECK_INT(parse("RETRY 1", &c, b, sizeof(b)), POP3_PARSE_BAD);
	CHECK_INT(parse("RE1R", &c, b, sizeof(b)), POP3_PARSE_BAD);
	CHECK_INT(parse("RETR\t1", &c, b, sizeof(b)), POP3_PARSE_BAD);
	CHECK_INT(parse("USER a\x7f", &c, b, sizeof(b)), POP3_PARSE_BAD);
	CHECK_INT(parse("TOP 1 2 3 4 5", &c, b, sizeof(b)), POP3_PARSE_BAD);
	big = malloc(POP3_LINE_MAX + 2);
	memset(big, 'a', POP3_LINE_MAX + 1);
	memcpy(big, "USER ", 5);
	big[POP3_LINE_MAX + 1] = '\0';
	CHECK_INT(parse(big, &c, b, sizeof(b)), POP3_PARSE_BAD);
	big[POP3_LINE_MAX] = '\0';
	CHECK_INT(parse(big, &c, b, sizeof(b)), POP3_PARSE_OK);
	free(big);
	/* A NUL inside the line. */
	memcpy(b, "RETR 1\0002", 8);
	{
		const char *err;

		CHECK_INT(pop3_cmd_parse(b, 8, &c, &err), POP3_PARSE_BAD);
	}
}

static void
test_numbers(void)
{
	unsigned long n = 7;

	CHECK_INT(pop3_cmd_number("1", 100, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(pop3_cmd_number("0", 100, &n), 0);
	CHECK_INT(pop3_cmd_number("100", 100, &n), 0);
	CHECK_INT(pop3_cmd_number("101", 100, &n), -1);
	CHECK_INT(pop3_cmd_number("", 100, &n), -1);
	CHECK_INT(pop3_cmd_number("-1", 100, &n), -1);
	CHECK_INT(pop3_cmd_number("+1", 100, &n), -1);
	CHECK_INT(pop3_cmd_number("1a", 100, &n), -1);
	CHECK_INT(pop3_cmd_number("99999999999", ~0UL, &n), -1);
	CHECK_INT(pop3_cmd_number("9999999999", ~0UL, &n), 0);
}

UNIT_MAIN(UNIT_CASE(test_keywords), UNIT_CASE(test_pass), UNIT_CASE(test_bad),
    UNIT_CASE(test_numbers))
