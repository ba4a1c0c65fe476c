/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <strings.h>

#include "mail/pop3_cmd.h"

static const char *const pop3_cmd_names[POP3_CMD_LAST] = {
	[POP3_CMD_UNKNOWN] = "",
	[POP3_CMD_USER] = "USER",
	[POP3_CMD_PASS] = "PASS",
	[POP3_CMD_APOP] = "APOP",
	[POP3_CMD_AUTH] = "AUTH",
	[POP3_CMD_CAPA] = "CAPA",
	[POP3_CMD_STLS] = "STLS",
	[POP3_CMD_QUIT] = "QUIT",
	[POP3_CMD_STAT] = "STAT",
	[POP3_CMD_LIST] = "LIST",
	[POP3_CMD_RETR] = "RETR",
	[POP3_CMD_DELE] = "DELE",
	[POP3_CMD_NOOP] = "NOOP",
	[POP3_CMD_RSET] = "RSET",
	[POP3_CMD_TOP] = "TOP",
	[POP3_CMD_UIDL] = "UIDL",
	[POP3_CMD_UTF8] = "UTF8",
};

const char *
pop3_cmd_name(enum pop3_cmd_id id)
{
	if ((unsigned)id >= POP3_CMD_LAST)
		return "";
	return pop3_cmd_names[id];
}

static enum pop3_cmd_id
pop3_cmd_lookup(const char *name)
{
	int i;

	for (i = 1; i < POP3_CMD_LAST; i++)
		if (strcasecmp(name, pop3_cmd_names[i]) == 0)
			return (enum pop3_cmd_id)i;
	return POP3_CMD_UNKNOWN;
}

static int
pop3_is_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int
pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd,
    const char **error_r)
{
	size_t i, klen;
	char *p, *end = line + len;

	memset(cmd, 0, sizeof(*cmd));
	if (len > POP3_LINE_MAX) {
		*error_r = "Line too long";
		return POP3_PARSE_BAD;
	}
	/* NUL and control characters are never part of a command; a
	 * password may hold any other octet (UTF-8 included). */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f) {
			*error_r = "Invalid character in command";
			return POP3_PARSE_BAD;
		}
	}
	p = line;
	while (p < end && *p == ' ')
		p++;
	if (p == end) {
		*error_r = "Empty command";
		return POP3_PARSE_EMPTY;
	}
	for (klen = 0; p + klen < end && p[klen] != ' '; klen++)
		if (!pop3_is_letter(p[klen]) || klen >= 4) {
			*error_r = "Unknown command";
			return POP3_PARSE_BAD;
		}
	if (klen < 3) {
		*error_r = "Unknown command";
		return POP3_PARSE_BAD;
	}
	memcpy(cmd->name, p, klen);
	cmd->name[klen] = '\0';
	cmd->id = pop3_cmd_lookup(cmd->name);
	p += klen;
	if (p == end)
		return POP3_PARSE_OK;
	/* p points at the space after the keyword. */
	*p++ = '\0';
	if (cmd->id == POP3_CMD_PASS) {
		/* The whole rest, as sent: one space after PASS, then the
		 * password (which may start with or contain spaces). */
		cmd->argv[cmd->argc++] = p;
		*end = '\0';
		return POP3_PARSE_OK;
	}
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		if (cmd->argc == POP3_ARGS_MAX) {
			*error_r = "Too many arguments";
			return POP3_PARSE_BAD;
		}
		cmd->argv[cmd->argc++] = p;
		while (p < end && *p != ' ')
			p++;
		if (p == end)
			break;
		*p++ = '\0';
	}
	*end = '\0';
	return POP3_PARSE_OK;
}

int
pop3_cmd_number(const char *s, unsigned long max, unsigned long *n_r)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 10)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n > max)
		return -1;
	*n_r = n;
	return 0;
}
