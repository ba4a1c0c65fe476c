/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: POP3 command lines as the login process and pop3d
 * take them (lib/mail/pop3_cmd.c, RFC 1939 3, RFC 2449 3): each line is
 * split by pop3_cmd_parse and checked against a model of the grammar
 * (the result, the keyword, its id, the arguments, PASS's whole rest);
 * every argument goes through pop3_cmd_number, checked against a model
 * of a message number. An AUTH line starts a SASL exchange (RFC 5034)
 * as login runs it: the mechanism by sasl_mech_parse, the initial
 * response from the second argument, then the following lines are the
 * client's responses until the exchange is done or failed; a challenge
 * is always there to send, credentials are whole and bounded, a failure
 * says why and leaves none.
 *
 * Input: one byte (the maximum for pop3_cmd_number: bits 0-1 choose
 * 0, 1, 4294967295 or ULONG_MAX), then the lines, separated by LF (a CR
 * before the LF is cut, as the stream does).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/pop3_cmd.h"
#include "mail/sasl.h"
#include "fuzz_util.h"

static const unsigned long number_max[] = {0, 1, 4294967295UL, ULONG_MAX};

/* What the model makes of one line. */
struct model {
	int result;
	char name[5];
	enum pop3_cmd_id id;
	int argc;
	const char *argv[POP3_ARGS_MAX];
	size_t arglen[POP3_ARGS_MAX];
};

static int
is_letter(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void
model_line(const char *s, size_t len, struct model *m)
{
	size_t i, k, start;
	int id;

	memset(m, 0, sizeof(*m));
	m->result = POP3_PARSE_BAD;
	if (len > POP3_LINE_MAX)
		return;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return;
	for (i = 0; i < len && s[i] == ' '; i++)
		;
	if (i == len) {
		m->result = POP3_PARSE_EMPTY;
		return;
	}
	for (k = 0; i + k < len && s[i + k] != ' '; k++)
		if (!is_letter(s[i + k]) || k >= 4)
			return;
	if (k < 3)
		return;
	memcpy(m->name, s + i, k);
	m->id = POP3_CMD_UNKNOWN;
	for (id = 1; id < POP3_CMD_LAST; id++)
		if (strcasecmp(m->name, pop3_cmd_name((enum pop3_cmd_id)id)) ==
		    0)
			m->id = (enum pop3_cmd_id)id;
	i += k;
	m->result = POP3_PARSE_OK;
	if (i == len)
		return;
	i++; /* the space after the keyword */
	if (m->id == POP3_CMD_PASS) {
		m->argc = 1;
		m->argv[0] = s + i;
		m->arglen[0] = len - i;
		return;
	}
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return;
		if (m->argc == POP3_ARGS_MAX) {
			m->result = POP3_PARSE_BAD;
			return;
		}
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		m->argv[m->argc] = s + start;
		m->arglen[m->argc++] = i - start;
	}
}

/* RFC 1939: 1 to 10 decimal digits, no sign, at most max. */
static void
check_number(const char *s, unsigned long max)
{
	size_t len = strlen(s), i;
	unsigned long long v = 0;
	unsigned long n = 0;
	int ok = len >= 1 && len <= 10;

	for (i = 0; ok && i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			ok = 0;
		else
			v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (ok && v > max)
		ok = 0;
	if (ok) {
		FUZZ_CHECK(pop3_cmd_number(s, max, &n) == 0);
		FUZZ_CHECK(n == v);
	} else {
		FUZZ_CHECK(pop3_cmd_number(s, max, &n) == -1);
	}
}

static void
check_cmd(const char *orig, size_t len, unsigned long max)
{
	char *line = xmalloc(len + 1);
	struct pop3_cmd cmd;
	struct model m;
	const char *err = NULL;
	int r, i;

	memcpy(line, orig, len);
	line[len] = '\0';
	model_line(orig, len, &m);
	r = pop3_cmd_parse(line, len, &cmd, &err);
	FUZZ_CHECK(r == m.result);
	if (r != POP3_PARSE_OK) {
		FUZZ_CHECK(err != NULL && *err != '\0');
		free(line);
		return;
	}
	FUZZ_CHECK(strcmp(cmd.name, m.name) == 0);
	FUZZ_CHECK(cmd.id == m.id);
	FUZZ_CHECK(cmd.id == POP3_CMD_UNKNOWN ||
	           strcasecmp(pop3_cmd_name(cmd.id), cmd.name) == 0);
	FUZZ_CHECK(cmd.argc == m.argc);
	for (i = 0; i < cmd.argc; i++) {
		FUZZ_CHECK(strlen(cmd.argv[i]) == m.arglen[i]);
		FUZZ_CHECK(memcmp(cmd.argv[i], m.argv[i], m.arglen[i]) == 0);
		/* Inside the line: nothing was copied or lost. */
		FUZZ_CHECK(cmd.argv[i] >= line && cmd.argv[i] <= line + len);
		check_number(cmd.argv[i], max);
	}
	free(line);
}

/* An AUTH line as login takes it: a started exchange, or NULL. */
static struct sasl *
auth_start(const char *orig, size_t len, enum sasl_status *st_r)
{
	char *line = xmalloc(len + 1);
	struct pop3_cmd cmd;
	struct sasl *s = NULL;
	enum sasl_mech mech;
	const char *err, *initial;

	memcpy(line, orig, len);
	line[len] = '\0';
	if (pop3_cmd_parse(line, len, &cmd, &err) == POP3_PARSE_OK &&
	    cmd.id == POP3_CMD_AUTH && (cmd.argc == 1 || cmd.argc == 2) &&
	    sasl_mech_parse(cmd.argv[0], &mech) == 0) {
		s = xcalloc(1, sizeof(*s));
		sasl_init(s, mech);
		initial = cmd.argc == 2 ? cmd.argv[1] : NULL;
		*st_r = sasl_start(
		    s, initial, initial != NULL ? strlen(initial) : 0);
	}
	free(line);
	return s;
}

/* After each step: the invariants login relies on. 1: still going. */
static int
check_sasl(struct sasl *s, enum sasl_status st)
{
	switch (st) {
	case SASL_CHALLENGE:
		FUZZ_CHECK(s->challenge != NULL);
		FUZZ_CHECK(strchr(s->challenge, '\r') == NULL &&
		           strchr(s->challenge, '\n') == NULL);
		return 1;
	case SASL_DONE:
		FUZZ_CHECK(s->user.len > 0 && s->user.len <= SASL_USER_MAX);
		FUZZ_CHECK(s->password.len > 0 &&
		           s->password.len <= SASL_PASSWORD_MAX);
		FUZZ_CHECK(strlen(buf_cstr(&s->user)) == s->user.len);
		FUZZ_CHECK(strlen(buf_cstr(&s->password)) == s->password.len);
		return 0;
	case SASL_ERROR:
		FUZZ_CHECK(s->error != SASL_ERROR_NONE);
		FUZZ_CHECK(s->error_text != NULL && *s->error_text != '\0');
		FUZZ_CHECK(s->user.len == 0 && s->password.len == 0);
		return 0;
	}
	FUZZ_CHECK(0);
	return 0;
}

static void
sasl_end(struct sasl **s_r)
{
	if (*s_r != NULL) {
		sasl_free(*s_r);
		free(*s_r);
		*s_r = NULL;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *lf;
	struct sasl *s = NULL;
	enum sasl_status st = SASL_ERROR;
	unsigned long max;
	size_t len;

	if (size < 1)
		return 0;
	max = number_max[data[0] & 0x3];
	p = (const char *)data + 1;
	end = (const char *)data + size;
	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		len = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		if (lf != NULL && len > 0 && p[len - 1] == '\r')
			len--;
		if (s != NULL) {
			if (!check_sasl(s, sasl_step(s, p, len)))
				sasl_end(&s);
		} else {
			check_cmd(p, len, max);
			s = auth_start(p, len, &st);
			if (s != NULL && !check_sasl(s, st))
				sasl_end(&s);
		}
		if (lf == NULL)
			break;
		p = lf + 1;
	}
	sasl_end(&s);
	return 0;
}
