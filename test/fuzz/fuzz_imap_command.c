/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: IMAP commands as the login process and imapd take
 * them (lib/mail/imap_parser.c; RFC 3501 9, RFC 9051 9, RFC 7888, RFC
 * 3516 literal8). The input is parsed twice, whole and in irregular
 * pieces, and both runs must give the same results (the parser is
 * incremental); every result is checked: a command's tag and name are
 * well-formed, its tree respects the limits and every string is
 * NUL-terminated at its length; an error has a text; a fatal error stops
 * the parser. A synchronising literal is accepted or refused
 * (imap_parser_skip_literal) depending on its size, the same in both
 * runs. Every atom and string also goes through the helpers: sequence
 * sets, dates, modified UTF-7 (decoding and re-encoding agree, UTF-8
 * round-trips), and imap_append_string's output parses back to the same
 * bytes.
 *
 * Input: byte 0 picks the limits (bits 0-1: max_line 16, 64, 1000 or
 * 65536; bit 2: LITERAL+; bit 3: LITERAL-; bits 4-5: max_literal 0, 8,
 * 100 or 5000; bit 6: max_depth 1 instead of 10; bit 7: max_args 3
 * instead of 100); then the bytes a client sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "mail/imap_parser.h"
#include "fuzz_util.h"

#define OUT_MAX    (4 * 1024 * 1024)
#define HELPER_MAX 4096
/* A literal is refused when its size modulo this is REFUSE_REM. */
#define REFUSE_MOD 3
#define REFUSE_REM 2
/* A zone offset stays within a day. */
#define ZONE_MAX   86400

static const size_t line_max[] = {16, 64, 1000, 65536};
static const size_t literal_max[] = {0, 8, 100, 5000};

static void
put(struct buf *b, int r)
{
	(void)b;
	FUZZ_CHECK(r == 0);
}

static int
is_tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

/* Checks the helpers on one atom or string. */
static void
check_helpers(const char *s, size_t len)
{
	struct imap_seqset set;
	struct imap_parser_limits lim;
	struct imap_parser *p;
	const struct imap_command *cmd;
	struct buf a, b, c;
	int64_t t;
	int tz, dollar, r;
	size_t i, used, pos;

	if (len > HELPER_MAX || memchr(s, '\0', len) != NULL)
		return;
	if (imap_seqset_parse(s, &set, 1, &dollar) == 1) {
		FUZZ_CHECK(dollar ? set.count == 0 : set.count > 0);
		for (i = 0; i < set.count; i++) {
			FUZZ_CHECK(set.ranges[i].lo >= 1);
			FUZZ_CHECK(set.ranges[i].lo <= set.ranges[i].hi);
			FUZZ_CHECK(imap_seqset_contains(
			    &set, set.ranges[i].lo, UINT32_MAX));
		}
		imap_seqset_free(&set);
	}
	FUZZ_CHECK(set.ranges == NULL);
	if (imap_datetime_parse(s, &t, &tz) == 1)
		FUZZ_CHECK(tz > -ZONE_MAX && tz < ZONE_MAX);
	(void)imap_date_parse(s, &t);

	buf_init(&a, OUT_MAX);
	buf_init(&b, OUT_MAX);
	buf_init(&c, OUT_MAX);
	/* mUTF-7 decoded, encoded again, decoded again: the same UTF-8. */
	if (imap_utf7_to_utf8(s, len, &a) == 1) {
		FUZZ_CHECK(str_utf8_valid(a.data == NULL ? "" : a.data, a.len));
		FUZZ_CHECK(imap_utf8_to_utf7(buf_cstr(&a), a.len, &b) == 1);
		FUZZ_CHECK(imap_utf7_to_utf8(buf_cstr(&b), b.len, &c) == 1);
		FUZZ_CHECK(c.len == a.len &&
		           memcmp(buf_cstr(&c), buf_cstr(&a), a.len) == 0);
	} else {
		FUZZ_CHECK(a.len == 0);
	}
	buf_reset(&a);
	buf_reset(&b);
	/* UTF-8 encoded and decoded: itself. */
	r = imap_utf8_to_utf7(s, len, &a);
	FUZZ_CHECK(r == str_utf8_valid(s, len));
	if (r == 1) {
		FUZZ_CHECK(imap_utf7_to_utf8(buf_cstr(&a), a.len, &b) == 1);
		FUZZ_CHECK(b.len == len && memcmp(buf_cstr(&b), s, len) == 0);
	}
	/* Written as an IMAP string and parsed back: the same bytes. */
	buf_reset(&a);
	put(&a, buf_puts(&a, "t X "));
	FUZZ_CHECK(imap_append_string(&a, s, len, (len & 1) != 0) == 0);
	put(&a, buf_puts(&a, "\r\n"));
	memset(&lim, 0, sizeof(lim));
	lim.max_line = OUT_MAX;
	lim.max_literal = OUT_MAX;
	lim.max_args = 1;
	lim.max_depth = 1;
	p = imap_parser_create(&lim);
	for (pos = 0;; pos += used) {
		r = imap_parser_feed(p, a.data + pos, a.len - pos, &used);
		if (r != IMAP_PARSE_CONTINUE)
			break;
	}
	FUZZ_CHECK(r == IMAP_PARSE_COMMAND);
	FUZZ_CHECK(pos + used == a.len);
	cmd = imap_parser_command(p);
	FUZZ_CHECK(cmd != NULL && cmd->count == 1);
	FUZZ_CHECK(cmd->args[0].type == IMAP_ARG_STRING ||
	           cmd->args[0].type == IMAP_ARG_LITERAL);
	FUZZ_CHECK(
	    cmd->args[0].len == len && memcmp(cmd->args[0].str, s, len) == 0);
	imap_parser_free(&p);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

static void
render_args(struct buf *out, const struct imap_parser_limits *lim,
    const struct imap_arg *args, size_t count, unsigned depth, size_t *nargs,
    int helpers)
{
	size_t i;

	FUZZ_CHECK(count == 0 || args != NULL);
	for (i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		const char *s;
		size_t len;

		(*nargs)++;
		FUZZ_CHECK(*nargs <= lim->max_args);
		put(out, buf_printf(out, " %d", (int)a->type));
		if (a->type == IMAP_ARG_LIST) {
			FUZZ_CHECK(depth < lim->max_depth);
			FUZZ_CHECK(a->str == NULL);
			put(out, buf_putc(out, '('));
			render_args(out, lim, a->list, a->count, depth + 1,
			    nargs, helpers);
			put(out, buf_putc(out, ')'));
			continue;
		}
		FUZZ_CHECK(a->str != NULL && a->str[a->len] == '\0');
		FUZZ_CHECK(a->list == NULL && a->count == 0);
		put(out, buf_printf(out, ":%zu:", a->len));
		put(out, buf_append(out, a->str, a->len));
		switch (a->type) {
		case IMAP_ARG_LITERAL:
		case IMAP_ARG_LITERAL8:
			FUZZ_CHECK(a->len <= lim->max_literal);
			break;
		case IMAP_ARG_NIL:
			FUZZ_CHECK(a->len == 3);
			break;
		case IMAP_ARG_ATOM:
		case IMAP_ARG_STRING:
			FUZZ_CHECK(a->len < lim->max_line);
			FUZZ_CHECK(memchr(a->str, '\0', a->len) == NULL);
			FUZZ_CHECK(memchr(a->str, '\n', a->len) == NULL);
			if (a->type == IMAP_ARG_ATOM)
				FUZZ_CHECK(a->len > 0);
			break;
		case IMAP_ARG_LIST:
			break;
		}
		if (imap_arg_astring(a, &s, &len))
			FUZZ_CHECK(s == a->str && len == a->len &&
			           a->type != IMAP_ARG_LITERAL8);
		if (helpers)
			check_helpers(a->str, a->len);
	}
}

/* Parses data in pieces (whole when rng is NULL) and writes what came
 * out to out. */
static void
run(const struct imap_parser_limits *lim, const char *data, size_t size,
    struct fuzz_rng *rng, struct buf *out)
{
	struct imap_parser *p = imap_parser_create(lim);
	const struct imap_command *cmd;
	const char *text, *tag;
	size_t pos = 0, avail, used, nargs, i;
	uint64_t left;
	int fatal;

	while (pos < size) {
		avail = size - pos;
		if (rng != NULL)
			avail = fuzz_piece(rng, avail);
		switch (imap_parser_feed(p, data + pos, avail, &used)) {
		case IMAP_PARSE_MORE:
			FUZZ_CHECK(used == avail);
			break;
		case IMAP_PARSE_COMMAND:
			cmd = imap_parser_command(p);
			FUZZ_CHECK(cmd != NULL);
			FUZZ_CHECK(*cmd->tag != '\0' && *cmd->name != '\0');
			for (i = 0; cmd->tag[i] != '\0'; i++)
				FUZZ_CHECK(
				    is_tag_char((unsigned char)cmd->tag[i]));
			FUZZ_CHECK(strcmp(imap_parser_tag(p), cmd->tag) == 0);
			put(out,
			    buf_printf(out, "C %s %s", cmd->tag, cmd->name));
			nargs = 0;
			render_args(out, lim, cmd->args, cmd->count, 0, &nargs,
			    rng == NULL);
			put(out, buf_putc(out, '\n'));
			break;
		case IMAP_PARSE_CONTINUE:
			FUZZ_CHECK(imap_parser_command(p) == NULL);
			FUZZ_CHECK(imap_parser_tag(p) != NULL);
			FUZZ_CHECK(imap_parser_name(p) != NULL);
			left = imap_parser_literal_left(p);
			FUZZ_CHECK(left <= lim->max_literal);
			put(out, buf_printf(out, "+ %llu\n",
			             (unsigned long long)left));
			if (left % REFUSE_MOD == REFUSE_REM)
				imap_parser_skip_literal(p);
			break;
		case IMAP_PARSE_ERROR:
			text = imap_parser_error(p, &tag, &fatal);
			FUZZ_CHECK(text != NULL && *text != '\0');
			FUZZ_CHECK(imap_parser_command(p) == NULL);
			put(out, buf_printf(out, "E %s %d %s\n",
			             tag != NULL ? tag : "*", fatal, text));
			if (fatal) {
				FUZZ_CHECK(imap_parser_feed(p, "a", 1, &used) ==
				           IMAP_PARSE_ERROR);
				FUZZ_CHECK(used == 0);
				imap_parser_free(&p);
				return;
			}
			break;
		}
		FUZZ_CHECK(used <= avail);
		pos += used;
	}
	imap_parser_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim;
	struct fuzz_rng rng;
	struct buf whole, pieces;

	if (size < 1)
		return 0;
	memset(&lim, 0, sizeof(lim));
	lim.max_line = line_max[data[0] & 0x3];
	lim.literal_plus = (data[0] & 0x4) != 0;
	lim.literal_minus = (data[0] & 0x8) != 0;
	lim.max_literal = literal_max[(data[0] >> 4) & 0x3];
	lim.max_depth = (data[0] & 0x40) != 0 ? 1 : 10;
	lim.max_args = (data[0] & 0x80) != 0 ? 3 : 100;
	buf_init(&whole, OUT_MAX);
	buf_init(&pieces, OUT_MAX);
	fuzz_rng_init(&rng, data, size);
	run(&lim, (const char *)data + 1, size - 1, NULL, &whole);
	run(&lim, (const char *)data + 1, size - 1, &rng, &pieces);
	FUZZ_CHECK(whole.len == pieces.len &&
	           memcmp(buf_cstr(&whole), buf_cstr(&pieces), whole.len) == 0);
	buf_free(&whole);
	buf_free(&pieces);
	return 0;
}
