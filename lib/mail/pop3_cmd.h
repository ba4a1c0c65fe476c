/* SPDX-License-Identifier: MIT */
/*
 * One POP3 command line (RFC 1939 3, RFC 2449 3) split into its keyword
 * and arguments, for the login process and the pop3d session alike, so
 * the grammar is parsed in one place and fuzzed alone.
 *
 * A command is a case-insensitive keyword of 3 or 4 printable letters,
 * then arguments separated by single spaces (RFC 1939 3; a run of spaces
 * is accepted as one, as Dovecot does). PASS is special: its one argument
 * is the rest of the line after "PASS ", spaces included (RFC 1939 7
 * allows a password with spaces). A line holds at most POP3_LINE_MAX
 * octets without its CRLF: the limit leaves room for an AUTH command
 * with an initial response of SASL_RESPONSE_MAX characters (RFC 5034 4).
 * RFC 2449 limits arguments to 40 octets; tern allows longer user names
 * (full addresses, SASL_USER_MAX) and checks the lengths that matter per
 * command.
 */
#ifndef TERN_POP3_CMD_H
#define TERN_POP3_CMD_H

#include <stddef.h>

#define POP3_LINE_MAX  4096
#define POP3_ARGS_MAX  4

enum pop3_cmd_id {
	POP3_CMD_UNKNOWN,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_CAPA,
	POP3_CMD_STLS,
	POP3_CMD_QUIT,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_UTF8,
	POP3_CMD_LAST,
};

struct pop3_cmd {
	enum pop3_cmd_id id;
	/* The keyword as sent (for logs: sanitize), NUL-terminated. */
	char name[5];
	int argc;
	/* NUL-terminated pointers into the parsed line. */
	char *argv[POP3_ARGS_MAX];
};

/* Results of pop3_cmd_parse. */
#define POP3_PARSE_OK     0
#define POP3_PARSE_EMPTY  (-1)	/* "" or only spaces */
#define POP3_PARSE_BAD    (-2)	/* keyword not 3-4 letters, a control
				 * character, NUL, too many arguments */

/*
 * Parses line (len octets, without CRLF, with room for a NUL at
 * line[len], as a struct buf has; modified in place and must stay alive
 * while cmd is used). An unknown but well-formed keyword gives
 * POP3_PARSE_OK with id POP3_CMD_UNKNOWN. More than POP3_ARGS_MAX
 * arguments is POP3_PARSE_BAD. *error_r: a short reason for -ERR.
 */
int pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd,
    const char **error_r);

/* The keyword of id in upper case ("RETR"). */
const char *pop3_cmd_name(enum pop3_cmd_id id);

/*
 * A message number or line count (RFC 1939: a decimal number): 1 to 10
 * digits, no sign, no leading space; value at most max. 0 and *n_r, or -1.
 */
int pop3_cmd_number(const char *s, unsigned long max, unsigned long *n_r);

#endif
