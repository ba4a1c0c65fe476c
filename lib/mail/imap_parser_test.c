/* SPDX-License-Identifier: MIT */
/*
 * Tests of the IMAP command parser and its helpers: every argument type,
 * literals (synchronising, LITERAL+, LITERAL-, literal8), atoms with
 * [...], nesting and size limits, errors with and without a tag and
 * fatal ones; each input parsed whole and one octet at a time must give
 * the same results. Then strings as written, sequence sets, date-time
 * and date, and modified UTF-7 with RFC 3501's example.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "mail/imap_parser.h"
#include "unit.h"

#define OUT_MAX (1024 * 1024)
/* Appending to the test's own buffers never fails. */
#define PUT(x)  CHECK((x) == 0)

static const struct imap_parser_limits lim_default = {
    .max_line = 200,
    .max_literal = 64,
    .max_args = 20,
    .max_depth = 4,
    .literal_plus = 1,
    .literal_minus = 0,
};

static void
render_args(struct buf *out, const struct imap_arg *args, size_t count)
{
	size_t i, k;

	for (i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];

		if (i > 0)
			PUT(buf_putc(out, ' '));
		switch (a->type) {
		case IMAP_ARG_ATOM:
			PUT(buf_append(out, a->str, a->len));
			break;
		case IMAP_ARG_NIL:
			PUT(buf_puts(out, "<NIL>"));
			break;
		case IMAP_ARG_STRING:
			PUT(buf_printf(out, "\"%s\"", a->str));
			break;
		case IMAP_ARG_LITERAL:
		case IMAP_ARG_LITERAL8:
			PUT(buf_printf(out, "%s{%zu}",
			    a->type == IMAP_ARG_LITERAL8 ? "~" : "", a->len));
			for (k = 0; k < a->len; k++) {
				if (a->str[k] == '\0')
					PUT(buf_puts(out, "\\0"));
				else
					PUT(buf_putc(out, a->str[k]));
			}
			CHECK(a->str[a->len] == '\0');
			break;
		case IMAP_ARG_LIST:
			PUT(buf_putc(out, '('));
			render_args(out, a->list, a->count);
			PUT(buf_putc(out, ')'));
			break;
		}
	}
}

/*
 * Feeds in (len octets) in pieces of piece octets (0: all at once) and
 * writes what came out: commands as "tag name args", "+" for a
 * continuation request (answered by feeding on), errors as
 * "ERR tag|- [fatal] text"; results separated by '|'.
 */
static char *
run_pieces(const struct imap_parser_limits *lim, const char *in, size_t len,
    size_t piece)
{
	struct imap_parser *p = imap_parser_create(lim);
	const struct imap_command *cmd;
	const char *text, *tag;
	struct buf out;
	size_t pos = 0, avail, used;
	int fatal;

	buf_init(&out, OUT_MAX);
	while (pos < len) {
		avail = len - pos;
		if (piece > 0 && avail > piece)
			avail = piece;
		switch (imap_parser_feed(p, in + pos, avail, &used)) {
		case IMAP_PARSE_MORE:
			CHECK(used == avail);
			break;
		case IMAP_PARSE_COMMAND:
			cmd = imap_parser_command(p);
			CHECK(cmd != NULL);
			if (cmd == NULL)
				break;
			if (out.len > 0)
				PUT(buf_putc(&out, '|'));
			PUT(buf_printf(&out, "%s %s", cmd->tag, cmd->name));
			if (cmd->count > 0) {
				PUT(buf_putc(&out, ' '));
				render_args(&out, cmd->args, cmd->count);
			}
			break;
		case IMAP_PARSE_CONTINUE:
			if (out.len > 0)
				PUT(buf_putc(&out, '|'));
			PUT(buf_putc(&out, '+'));
			break;
		case IMAP_PARSE_ERROR:
			text = imap_parser_error(p, &tag, &fatal);
			if (out.len > 0)
				PUT(buf_putc(&out, '|'));
			PUT(buf_printf(&out, "ERR %s %s%s",
			    tag != NULL ? tag : "-", fatal ? "fatal " : "",
			    text));
			if (fatal) {
				pos = len;
				used = 0;
			}
			break;
		}
		CHECK(used <= avail);
		pos += used;
	}
	imap_parser_free(&p);
	CHECK(p == NULL);
	return buf_steal(&out);
}

/* Whole and byte by byte: the same, and as expected. */
static void
check_parse_len(const struct imap_parser_limits *lim, const char *in,
    size_t len, const char *want)
{
	char *whole = run_pieces(lim, in, len, 0);
	char *bytes = run_pieces(lim, in, len, 1);
	char *threes = run_pieces(lim, in, len, 3);

	CHECK_STR(whole, want);
	CHECK_STR(bytes, want);
	CHECK_STR(threes, want);
	free(whole);
	free(bytes);
	free(threes);
}

static void
check_parse(
    const struct imap_parser_limits *lim, const char *in, const char *want)
{
	check_parse_len(lim, in, strlen(in), want);
}

static void
test_simple(void)
{
	const struct imap_parser_limits *l = &lim_default;

	check_parse(l, "a1 NOOP\r\n", "a1 NOOP");
	check_parse(l, "a1 noop\n", "a1 noop");
	check_parse(l, "a NOOP\r\nb CAPABILITY\r\n", "a NOOP|b CAPABILITY");
	check_parse(l, "x] LOGOUT\r\n", "x] LOGOUT");
	check_parse(l, "a LOGIN user \"pa ss\\\"\\\\\"\r\n",
	    "a LOGIN user \"pa ss\"\\\"");
	check_parse(l, "a SELECT \"\"\r\n", "a SELECT \"\"");
	check_parse(l, "a X  b   c \r\n", "a X b c");
	check_parse(
	    l, "a X nil NIL \"NIL\" NILS\r\n", "a X <NIL> <NIL> \"NIL\" NILS");
	check_parse(l, "a LIST \"\" ~peter/*\r\n", "a LIST \"\" ~peter/*");
	check_parse(l, "a LIST \"\" ~\r\n", "a LIST \"\" ~");
	check_parse(l, "a STORE 1 +FLAGS (\\Seen \\Deleted)\r\n",
	    "a STORE 1 +FLAGS (\\Seen \\Deleted)");
	check_parse(l, "a STORE 1 FLAGS()\r\n", "a STORE 1 FLAGS ()");
	check_parse(l, "a X \"8bit \xc3\xa9\"\r\n", "a X \"8bit \xc3\xa9\"");
	check_parse(l, "a X \"tab\there\"\r\n", "a X \"tab\there\"");
}

static void
test_lists_and_sections(void)
{
	const struct imap_parser_limits *l = &lim_default;

	check_parse(l,
	    "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.2048>)\r\n",
	    "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.2048>)");
	check_parse(l, "a FETCH 1 BODY[]\r\n", "a FETCH 1 BODY[]");
	check_parse(l, "a FETCH 1 (BODY[1.2.MIME] BINARY[1]<0.5>)\r\n",
	    "a FETCH 1 (BODY[1.2.MIME] BINARY[1]<0.5>)");
	check_parse(l, "a X (a (b (c)) () d) e\r\n", "a X (a (b (c)) () d) e");
	check_parse(l, "a X ((()))\r\n", "a X ((()))");
	check_parse(l, "a X [a b] c\r\n", "a X [a b] c");
	check_parse(l, "a FETCH 1 BODY[HEADER\r\nb NOOP\r\n",
	    "ERR a Missing ']'.|b NOOP");
}

static void
test_tree(void)
{
	struct imap_parser *p = imap_parser_create(&lim_default);
	const char *in = "t1 X a (b \"c\" (d)) {1+}\r\ne\r\n";
	const struct imap_command *cmd;
	const char *s;
	size_t used, len;

	CHECK_INT(
	    imap_parser_feed(p, in, strlen(in), &used), IMAP_PARSE_COMMAND);
	CHECK_INT(used, strlen(in));
	cmd = imap_parser_command(p);
	CHECK(cmd != NULL);
	if (cmd == NULL) {
		imap_parser_free(&p);
		return;
	}
	CHECK_STR(cmd->tag, "t1");
	CHECK_STR(cmd->name, "X");
	CHECK_INT(cmd->count, 3);
	CHECK(imap_arg_atom_is(&cmd->args[0], "A"));
	CHECK(!imap_arg_atom_is(&cmd->args[0], "ab"));
	CHECK_INT(cmd->args[1].type, IMAP_ARG_LIST);
	CHECK_INT(cmd->args[1].count, 3);
	CHECK_INT(cmd->args[1].list[1].type, IMAP_ARG_STRING);
	CHECK(imap_arg_astring(&cmd->args[1].list[1], &s, &len));
	CHECK_STR(s, "c");
	CHECK(!imap_arg_astring(&cmd->args[1], &s, &len));
	CHECK_INT(cmd->args[1].list[2].list[0].len, 1);
	CHECK_INT(cmd->args[2].type, IMAP_ARG_LITERAL);
	CHECK(imap_arg_astring(&cmd->args[2], &s, &len));
	CHECK_INT(len, 1);
	CHECK_INT(imap_parser_literal_left(p), 0);
	imap_parser_free(&p);
	imap_parser_free(&p);
}

static void
test_literals(void)
{
	struct imap_parser_limits l = lim_default;

	check_parse(&l, "a LOGIN {4}\r\nuser {2}\r\npw\r\n",
	    "+|+|a LOGIN {4}user {2}pw");
	check_parse(
	    &l, "a LOGIN {4+}\r\nuser {2+}\r\npw\r\n", "a LOGIN {4}user {2}pw");
	check_parse(&l, "a X {0}\r\n {0+}\r\n\r\n", "+|a X {0} {0}");
	check_parse(&l, "a X {3}\n(b)\r\n", "+|a X {3}(b)");
	check_parse(&l, "a X ({2}\r\nab)\r\n", "+|a X ({2}ab)");
	check_parse(&l, "a X {2}\r\n\r\n\r\n", "+|a X {2}\r\n");
	/* literal8 (RFC 3516), with a NUL. */
	check_parse_len(
	    &l, "a APPEND B ~{3}\r\na\0b\r\n", 22, "+|a APPEND B ~{3}a\\0b");
	check_parse_len(
	    &l, "a APPEND B ~{3+}\r\na\0b\r\n", 23, "a APPEND B ~{3}a\\0b");
	/* "{n-}" is no literal (RFC 7888 writes LITERAL-'s "{n+}"). */
	check_parse(
	    &l, "a X {3-}\r\nb NOOP\r\n", "ERR a Invalid literal size.|b NOOP");
	check_parse(
	    &l, "a X {}\r\nb NOOP\r\n", "ERR a Invalid literal size.|b NOOP");
	check_parse(
	    &l, "a X {3x}\r\nb NOOP\r\n", "ERR a Invalid literal size.|b NOOP");
	check_parse(&l, "a X {99999999999999999999999}\r\nb NOOP\r\n",
	    "ERR a Literal size too large.|b NOOP");
	check_parse(&l, "a X {3}x\r\nb NOOP\r\n",
	    "ERR a Missing CRLF after literal size.|b NOOP");
	/* Over max_literal: synchronising is refused and the client sends
	 * nothing more; non-synchronising is fatal. */
	check_parse(&l, "a X {65}\r\nb NOOP\r\n",
	    "ERR a [TOOBIG] Literal too large.|b NOOP");
	check_parse(&l, "a X {64}\r\n", "+");
	check_parse(&l, "a X {65+}\r\nb NOOP\r\n",
	    "ERR a fatal [TOOBIG] Literal too large.");
	/* All literals of one command together: max_literals. */
	l.max_literals = 10;
	check_parse(&l, "a X {6+}\r\nabcdef {4}\r\n", "+");
	check_parse(&l, "a X {6+}\r\nabcdef {5}\r\nb NOOP\r\n",
	    "ERR a [TOOBIG] Literal too large.|b NOOP");
	check_parse(&l, "a X {6+}\r\nabcdef {5+}\r\nb NOOP\r\n",
	    "ERR a fatal [TOOBIG] Literal too large.");
	check_parse(&l, "a X {6+}\r\nabcdef\r\nb X {6+}\r\nabcdef\r\n",
	    "a X {6}abcdef|b X {6}abcdef");
	l.max_literals = 0;
	/* Without LITERAL+ and LITERAL-: {n+} is fatal. */
	l.literal_plus = 0;
	check_parse(&l, "a X {1+}\r\nb\r\n",
	    "ERR a fatal Non-synchronizing literals not allowed.");
	/* LITERAL- (RFC 7888 4): up to 4096 octets. */
	l.literal_minus = 1;
	l.max_literal = 8192;
	{
		char *in = malloc(5000), *want = malloc(5000);

		memcpy(in, "a X {4096+}\r\n", 13);
		memset(in + 13, 'x', 4096);
		memcpy(in + 13 + 4096, "\r\n", 3);
		memcpy(want, "a X {4096}", 10);
		memset(want + 10, 'x', 4096);
		want[10 + 4096] = '\0';
		check_parse(&l, in, want);
		free(in);
		free(want);
	}
	check_parse(&l, "a X {4097+}\r\n",
	    "ERR a fatal [TOOBIG] Non-synchronizing literal too large.");
}

static void
test_continue(void)
{
	struct imap_parser *p = imap_parser_create(&lim_default);
	const char *a = "a APPEND INBOX {5}\r\n";
	const struct imap_command *cmd;
	size_t used;

	CHECK(imap_parser_tag(p) == NULL);
	CHECK_INT(
	    imap_parser_feed(p, a, strlen(a), &used), IMAP_PARSE_CONTINUE);
	CHECK_INT(used, strlen(a));
	CHECK_STR(imap_parser_tag(p), "a");
	CHECK_STR(imap_parser_name(p), "APPEND");
	CHECK_INT(imap_parser_literal_left(p), 5);
	CHECK_INT(imap_parser_feed(p, "he", 2, &used), IMAP_PARSE_MORE);
	CHECK_INT(imap_parser_literal_left(p), 3);
	CHECK_INT(imap_parser_feed(p, "llo\r", 4, &used), IMAP_PARSE_MORE);
	CHECK_INT(imap_parser_literal_left(p), 0);
	CHECK_INT(imap_parser_feed(p, "\nb", 2, &used), IMAP_PARSE_COMMAND);
	CHECK_INT(used, 1);
	cmd = imap_parser_command(p);
	CHECK(cmd != NULL && cmd->count == 2 && cmd->args[1].len == 5);
	/* Refused: the client sends no literal, the next command follows. */
	CHECK_INT(
	    imap_parser_feed(p, a, strlen(a), &used), IMAP_PARSE_CONTINUE);
	CHECK(imap_parser_command(p) == NULL);
	imap_parser_skip_literal(p);
	CHECK_INT(imap_parser_literal_left(p), 0);
	CHECK_INT(
	    imap_parser_feed(p, "b NOOP\r\n", 8, &used), IMAP_PARSE_COMMAND);
	cmd = imap_parser_command(p);
	CHECK(cmd != NULL && strcmp(cmd->tag, "b") == 0 && cmd->count == 0);
	/* Reset drops a partial command. */
	CHECK_INT(
	    imap_parser_feed(p, "c LOGIN (x", 10, &used), IMAP_PARSE_MORE);
	imap_parser_reset(p);
	CHECK(imap_parser_tag(p) == NULL);
	CHECK_INT(
	    imap_parser_feed(p, "d NOOP\r\n", 8, &used), IMAP_PARSE_COMMAND);
	cmd = imap_parser_command(p);
	CHECK(cmd != NULL && strcmp(cmd->tag, "d") == 0);
	/* CRLF split across feeds. */
	CHECK_INT(imap_parser_feed(p, "e NOOP\r", 7, &used), IMAP_PARSE_MORE);
	CHECK_INT(imap_parser_feed(p, "\n", 1, &used), IMAP_PARSE_COMMAND);
	CHECK_INT(imap_parser_feed(p, "", 0, &used), IMAP_PARSE_MORE);
	CHECK_INT(used, 0);
	imap_parser_free(&p);
}

static void
test_errors(void)
{
	const struct imap_parser_limits *l = &lim_default;

	check_parse(l, "\r\na NOOP\r\n", "ERR - Empty command.|a NOOP");
	check_parse(l, "\n", "ERR - Empty command.");
	check_parse(l, "a\r\nb NOOP\r\n", "ERR a Missing command name.|b NOOP");
	check_parse(l, "a \r\n", "ERR a Missing command name.");
	check_parse(l, "+a NOOP\r\nb NOOP\r\n", "ERR - Invalid tag.|b NOOP");
	check_parse(l, "a* NOOP\r\n", "ERR - Invalid tag.");
	check_parse(l, " NOOP\r\n", "ERR - Invalid tag.");
	check_parse(l, "a NO\"OP\r\n", "ERR a Invalid command name.");
	check_parse(
	    l, "a NOOP )\r\nb NOOP\r\n", "ERR a Unexpected ')'.|b NOOP");
	check_parse(l, "a X (a\r\nb NOOP\r\n", "ERR a Missing ')'.|b NOOP");
	check_parse(l, "a X \"abc\r\nb NOOP\r\n", "ERR a Missing '\"'.|b NOOP");
	check_parse(l, "a X a\x01z\r\n", "ERR a Invalid characters in atom.");
	check_parse(l, "a X \x7f\r\n", "ERR a Invalid characters in command.");
	check_parse_len(l, "a X \"a\0\"\r\nb NOOP\r\n", 18,
	    "ERR a NUL in quoted string.|b NOOP");
	check_parse(
	    l, "a NOOP\rb NOOP\r\nc NOOP\r\n", "ERR a CR without LF.|c NOOP");
	/* A {n+} literal of a skipped line is skipped with it. */
	check_parse(l, "a X \x01 {6+}\r\nb NOOP\r\nc NOOP\r\n",
	    "ERR a Invalid characters in command.|c NOOP");
	check_parse(l, "a X \x01 {0+}\r\n b\r\nc NOOP\r\n",
	    "ERR a Invalid characters in command.|c NOOP");
	/* A synchronising one is not sent (the client waits for "+"). */
	check_parse(l, "a X \x01 {6}\r\nb NOOP\r\n",
	    "ERR a Invalid characters in command.|b NOOP");
}

static void
test_limits(void)
{
	struct imap_parser_limits l = lim_default;
	char big[512], tag[200];

	/* max_line (200): the tag is kept, the rest of the line skipped. */
	memset(big, 0, sizeof(big));
	memcpy(big, "a X ", 4);
	memset(big + 4, 'y', 300);
	memcpy(big + 304, "\r\nb NOOP\r\n", 10);
	check_parse(&l, big, "ERR a Too long command line.|b NOOP");
	/* Exactly max_line octets with CRLF is fine. */
	memset(big, 0, sizeof(big));
	memcpy(big, "a X ", 4);
	memset(big + 4, 'y', 194);
	memcpy(big + 198, "\r\n", 2);
	{
		char want[256];

		snprintf(want, sizeof(want), "a X %.194s", big + 4);
		check_parse(&l, big, want);
	}
	/* Literals do not count toward the line. */
	memset(big, 0, sizeof(big));
	memcpy(big, "a X {60+}\r\n", 11);
	memset(big + 11, 'z', 60);
	memcpy(big + 71, " {60+}\r\n", 8);
	memset(big + 79, 'z', 60);
	memcpy(big + 139, " {60+}\r\n", 8);
	memset(big + 147, 'z', 60);
	memcpy(big + 207, " {60+}\r\n", 8);
	memset(big + 215, 'z', 60);
	memcpy(big + 275, "\r\n", 2);
	{
		char *r = run_pieces(&l, big, strlen(big), 0);

		CHECK(strncmp(r, "a X {60}zzz", 11) == 0);
		free(r);
	}
	/* A tag too long. */
	memset(tag, 't', sizeof(tag));
	memcpy(tag + 150, " NOOP\r\nb NOOP\r\n", 16);
	check_parse(&l, tag, "ERR - Tag too long.|b NOOP");
	/* max_args (20) over every level, lists included. */
	check_parse(&l,
	    "a X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\r\n",
	    "a X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20");
	check_parse(&l,
	    "a X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\r\n"
	    "b NOOP\r\n",
	    "ERR a Too many arguments.|b NOOP");
	check_parse(&l,
	    "a X (1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)\r\n",
	    "ERR a Too many arguments.");
	check_parse(&l,
	    "a X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 \"20\" {1}\r\n"
	    "b NOOP\r\n",
	    "ERR a Too many arguments.|b NOOP");
	/* max_depth (4). */
	check_parse(&l, "a X ((((x))))\r\n", "a X ((((x))))");
	check_parse(&l, "a X (((((x)))))\r\nb NOOP\r\n",
	    "ERR a Too deep nesting of lists.|b NOOP");
}

/* ---- writers ---- */

static void
check_string(const char *s, size_t len, int utf8, const char *want)
{
	struct buf b;

	buf_init(&b, 1024);
	CHECK_INT(imap_append_string(&b, s, len, utf8), 0);
	CHECK_STR(buf_cstr(&b), want);
	buf_free(&b);
}

static void
test_strings(void)
{
	struct buf b;

	check_string("abc", 3, 0, "\"abc\"");
	check_string("", 0, 0, "\"\"");
	check_string("a\"b\\c", 5, 0, "\"a\\\"b\\\\c\"");
	check_string("caf\xc3\xa9", 5, 0, "{5}\r\ncaf\xc3\xa9");
	check_string("caf\xc3\xa9", 5, 1, "\"caf\xc3\xa9\"");
	check_string("caf\xe9", 4, 1, "{4}\r\ncaf\xe9");
	check_string("a\r\nb", 4, 0, "{4}\r\na\r\nb");
	buf_init(&b, 1024);
	CHECK_INT(imap_append_nstring(&b, NULL, 0, 0), 0);
	CHECK_INT(imap_append_nstring(&b, "x", 1, 0), 0);
	CHECK_STR(buf_cstr(&b), "NIL\"x\"");
	buf_free(&b);
	/* Full: nothing of it stays. */
	buf_init(&b, 6);
	CHECK_INT(buf_puts(&b, "ab"), 0);
	CHECK_INT(imap_append_string(&b, "abcd", 4, 0), -1);
	CHECK_STR(buf_cstr(&b), "ab");
	CHECK_INT(imap_append_string(&b, "a\nc", 3, 0), -1);
	CHECK_STR(buf_cstr(&b), "ab");
	CHECK_INT(imap_append_string(&b, "ab", 2, 0), 0);
	buf_free(&b);
}

/* ---- sequence sets ---- */

static void
test_seqset(void)
{
	struct imap_seqset set;
	int dollar = -1;
	struct buf b;
	static const uint32_t nums[] = {1, 2, 3, 4, 7, 9, 9, 10, 4294967295u};

	CHECK_INT(imap_seqset_parse("1:4,7,9:*", &set, 0, &dollar), 1);
	CHECK_INT(dollar, 0);
	CHECK_INT(set.count, 3);
	CHECK_INT(set.ranges[0].lo, 1);
	CHECK_INT(set.ranges[0].hi, 4);
	CHECK_INT(set.ranges[2].hi, UINT32_MAX);
	CHECK(imap_seqset_contains(&set, 3, 20));
	CHECK(!imap_seqset_contains(&set, 5, 20));
	CHECK(imap_seqset_contains(&set, 20, 20));
	CHECK(!imap_seqset_contains(&set, 21, 20));
	/* "9:*" with star 5 is "5:9". */
	CHECK(imap_seqset_contains(&set, 5, 5) == 1);
	imap_seqset_free(&set);
	CHECK(set.ranges == NULL);
	CHECK_INT(imap_seqset_parse("4:2", &set, 0, NULL), 1);
	CHECK_INT(set.ranges[0].lo, 2);
	CHECK_INT(set.ranges[0].hi, 4);
	imap_seqset_free(&set);
	CHECK_INT(imap_seqset_parse("*", &set, 0, NULL), 1);
	CHECK(imap_seqset_contains(&set, 7, 7));
	CHECK(!imap_seqset_contains(&set, 6, 7));
	imap_seqset_free(&set);
	CHECK_INT(imap_seqset_parse("4294967295", &set, 0, NULL), 1);
	imap_seqset_free(&set);
	CHECK_INT(imap_seqset_parse("$", &set, 1, &dollar), 1);
	CHECK_INT(dollar, 1);
	CHECK_INT(set.count, 0);
	CHECK_INT(imap_seqset_parse("$", &set, 0, &dollar), 0);
	CHECK_INT(imap_seqset_parse("", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("0", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1:0", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1:", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse(",1", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1,", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1,,2", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("4294967296", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1:2:3", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("1 ", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("-1", &set, 0, NULL), 0);
	CHECK_INT(imap_seqset_parse("$,1", &set, 1, NULL), 0);
	CHECK(set.ranges == NULL && set.count == 0);
	{
		/* IMAP_SEQSET_MAX ranges, and one more. */
		size_t n = IMAP_SEQSET_MAX + 1, i;
		char *s = malloc(n * 2 + 1);

		for (i = 0; i < n; i++) {
			s[2 * i] = '1';
			s[2 * i + 1] = ',';
		}
		s[2 * n - 1] = '\0';
		CHECK_INT(imap_seqset_parse(s, &set, 0, NULL), 0);
		s[2 * (n - 1) - 1] = '\0';
		CHECK_INT(imap_seqset_parse(s, &set, 0, NULL), 1);
		CHECK_INT(set.count, IMAP_SEQSET_MAX);
		imap_seqset_free(&set);
		free(s);
	}
	buf_init(&b, 1024);
	CHECK_INT(imap_seqset_format(&b, nums, 9), 0);
	CHECK_STR(buf_cstr(&b), "1:4,7,9:10,4294967295");
	buf_reset(&b);
	CHECK_INT(imap_seqset_format(&b, nums, 0), 0);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(imap_seqset_format(&b, nums + 4, 1), 0);
	CHECK_STR(buf_cstr(&b), "7");
	buf_free(&b);
	buf_init(&b, 5);
	CHECK_INT(imap_seqset_format(&b, nums, 9), -1);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
}

/* ---- dates ---- */

static void
test_dates(void)
{
	int64_t t = 0;
	int tz = 1;
	struct buf b;

	CHECK_INT(
	    imap_datetime_parse("17-Jul-1996 02:44:25 -0700", &t, &tz), 1);
	CHECK_INT(t, 837596665);
	CHECK_INT(tz, -7 * 3600);
	CHECK_INT(
	    imap_datetime_parse("\"17-jul-1996 09:44:25 +0000\"", &t, &tz), 1);
	CHECK_INT(t, 837596665);
	CHECK_INT(tz, 0);
	CHECK_INT(
	    imap_datetime_parse(" 7-Jul-1996 11:14:25 +0130", &t, &tz), 1);
	CHECK_INT(t, 837596665 - 10 * 86400);
	CHECK_INT(tz, 5400);
	CHECK_INT(imap_datetime_parse("7-Jul-1996 11:14:25 +0130", &t, &tz), 1);
	CHECK_INT(
	    imap_datetime_parse("29-Feb-1996 00:00:00 +0000", &t, &tz), 1);
	CHECK_INT(
	    imap_datetime_parse("29-Feb-1900 00:00:00 +0000", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("31-Apr-1996 00:00:00 +0000", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("17-Jux-1996 02:44:25 -0700", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("17-Jul-1996 24:44:25 -0700", &t, &tz), 0);
	CHECK_INT(imap_datetime_parse("17-Jul-1996 02:44:25 0700", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("17-Jul-1996 02:44:25 -0760", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("17-Jul-1996 02:44:25 -0700x", &t, &tz), 0);
	CHECK_INT(
	    imap_datetime_parse("\"17-Jul-1996 02:44:25 -0700", &t, &tz), 0);
	CHECK_INT(imap_datetime_parse("17-Jul-96 02:44:25 -0700", &t, &tz), 0);
	CHECK_INT(imap_datetime_parse("", &t, &tz), 0);
	CHECK_INT(imap_date_parse("1-Feb-1994", &t), 1);
	CHECK_INT(t, 760060800);
	CHECK_INT(imap_date_parse("\"01-FEB-1994\"", &t), 1);
	CHECK_INT(t, 760060800);
	CHECK_INT(imap_date_parse("1-Feb-1994 ", &t), 0);
	CHECK_INT(imap_date_parse("0-Feb-1994", &t), 0);
	CHECK_INT(imap_date_parse("123-Feb-1994", &t), 0);
	CHECK_INT(imap_date_parse("1-Feb", &t), 0);
	/* Written in the process's zone; POSIX TZ strings need no tzdata. */
	buf_init(&b, 64);
	setenv("TZ", "UTC0", 1);
	tzset();
	CHECK_INT(imap_datetime_append(&b, 837596665), 0);
	CHECK_STR(buf_cstr(&b), "\"17-Jul-1996 09:44:25 +0000\"");
	buf_reset(&b);
	setenv("TZ", "XYZ+7", 1);
	tzset();
	CHECK_INT(imap_datetime_append(&b, 837596665 - 10 * 86400), 0);
	CHECK_STR(buf_cstr(&b), "\"07-Jul-1996 02:44:25 -0700\"");
	buf_reset(&b);
	setenv("TZ", "XYZ-5:30", 1);
	tzset();
	CHECK_INT(imap_datetime_append(&b, 0), 0);
	CHECK_STR(buf_cstr(&b), "\"01-Jan-1970 05:30:00 +0530\"");
	CHECK_INT(imap_datetime_parse(buf_cstr(&b), &t, &tz), 1);
	CHECK_INT(t, 0);
	CHECK_INT(tz, 19800);
	buf_free(&b);
	unsetenv("TZ");
	tzset();
}

/* ---- modified UTF-7 ---- */

static void
check_utf7_pair(const char *utf8, const char *utf7)
{
	struct buf b;

	buf_init(&b, 1024);
	CHECK_INT(imap_utf8_to_utf7(utf8, strlen(utf8), &b), 1);
	CHECK_STR(buf_cstr(&b), utf7);
	buf_reset(&b);
	CHECK_INT(imap_utf7_to_utf8(utf7, strlen(utf7), &b), 1);
	CHECK_STR(buf_cstr(&b), utf8);
	buf_free(&b);
}

static void
check_utf7_bad(const char *utf7)
{
	struct buf b;

	buf_init(&b, 1024);
	CHECK_INT(buf_puts(&b, "x"), 0);
	CHECK_INT(imap_utf7_to_utf8(utf7, strlen(utf7), &b), 0);
	CHECK_STR(buf_cstr(&b), "x");
	buf_free(&b);
}

static void
test_utf7(void)
{
	struct buf b;

	/* RFC 3501 5.1.3's example. */
	check_utf7_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	                "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_utf7_pair("INBOX", "INBOX");
	check_utf7_pair("", "");
	check_utf7_pair("&", "&-");
	check_utf7_pair("&&", "&-&-");
	check_utf7_pair("Entw\xc3\xbc"
	                "rfe",
	    "Entw&APw-rfe");
	check_utf7_pair("\xc3\x84", "&AMQ-");
	/* Outside the BMP: a surrogate pair. */
	check_utf7_pair("a\xf0\x9f\x98\x80"
	                "b",
	    "a&2D3eAA-b");
	/* Control characters are encoded. */
	check_utf7_pair("tab\there", "tab&AAk-here");
	check_utf7_bad("&U,BTFw");   /* unterminated */
	check_utf7_bad("&AGE-");     /* 'a' encoded */
	check_utf7_bad("&Jjo!-");    /* not base64 */
	check_utf7_bad("&&-");       /* '&' inside */
	check_utf7_bad("&2D3-");     /* lone high surrogate */
	check_utf7_bad("&3gA-");     /* lone low surrogate */
	check_utf7_bad("&2D3eAA");   /* unterminated after a pair */
	check_utf7_bad("&AMR-");     /* padding bits not zero */
	check_utf7_bad("a\xc3\xa9"); /* 8-bit */
	check_utf7_bad("tab\there"); /* a control character */
	check_utf7_bad("&-&");       /* '&' at the end */
	buf_init(&b, 1024);
	CHECK_INT(imap_utf8_to_utf7("caf\xe9", 4, &b), 0);
	CHECK_INT(imap_utf8_to_utf7("\xed\xa0\x80", 3, &b), 0);
	CHECK_INT(imap_utf8_to_utf7("\xc0\xaf", 2, &b), 0);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
	/* Full: -1 and nothing appended. */
	buf_init(&b, 4);
	CHECK_INT(imap_utf8_to_utf7("\xc3\x84", 2, &b), -1);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(imap_utf7_to_utf8("abcde", 5, &b), -1);
	CHECK_STR(buf_cstr(&b), "");
	buf_free(&b);
}

UNIT_MAIN(UNIT_CASE(test_simple), UNIT_CASE(test_lists_and_sections),
    UNIT_CASE(test_tree), UNIT_CASE(test_literals), UNIT_CASE(test_continue),
    UNIT_CASE(test_errors), UNIT_CASE(test_limits), UNIT_CASE(test_strings),
    UNIT_CASE(test_seqset), UNIT_CASE(test_dates), UNIT_CASE(test_utf7))
