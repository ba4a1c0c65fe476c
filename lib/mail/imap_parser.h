/* SPDX-License-Identifier: MIT */
/*
 * The IMAP command grammar (RFC 3501 9, RFC 9051 9, RFC 7888 literals),
 * parsed in one place for the login process and the imapd session alike,
 * and fuzzed alone (test/fuzz/fuzz_imap_command.c).
 *
 * The parser is incremental: the caller feeds it whatever bytes it has
 * read, and it says how many it consumed and whether a whole command is
 * there, more input is needed, or a synchronising literal wants its
 * "+ " continuation. A command is
 *
 *   tag SP name [SP args] CRLF
 *
 * where args are atoms, quoted strings, literals ({n}, and {n+} of
 * LITERAL+ and LITERAL- alike, as RFC 7888 writes both: "{n-}" is
 * malformed; ~{n} literal8 of BINARY), NIL, and
 * parenthesised lists of these nested at most limits->max_depth deep.
 * An atom that contains '[' extends to the matching ']' whatever is in
 * between (spaces and parentheses included) and then on to the next
 * space, ')' or CRLF: "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.2048>" is one
 * atom, as Dovecot parses it; the session splits such fetch atoms itself.
 *
 * Bounds (the caller's limits): the command line without its literals is
 * at most max_line octets; each literal at most max_literal octets (the
 * session passes $message_size_limit for APPEND; the login process a few
 * KiB); at most max_args arguments counted over all nesting levels.
 * Over a bound the parser answers IMAP_PARSE_ERROR with fatal set when
 * the stream cannot be resynchronised (a non-synchronising literal too
 * large: its bytes are on their way; the caller says BAD and disconnects),
 * or not fatal when the rest of the command can be skipped (the parser
 * then skips to the end of the line by itself on the next feed: the
 * caller answers "tag BAD ..." and feeds on).
 */
#ifndef TERN_IMAP_PARSER_H
#define TERN_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING,   /* quoted string, unescaped */
	IMAP_ARG_LITERAL,  /* {n} {n+} {n-} */
	IMAP_ARG_LITERAL8, /* ~{n} (RFC 3516) */
	IMAP_ARG_NIL,      /* the atom NIL, any case */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, STRING, LITERAL, LITERAL8: the bytes (len of them, NUL
	 * added after them; a literal may hold NULs). */
	const char *str;
	size_t len;
	/* LIST: its elements. */
	const struct imap_arg *list;
	size_t count;
};

struct imap_command {
	const char *tag;  /* 1..128 chars of ASTRING-CHAR without '+' */
	const char *name; /* the command name as sent (an atom) */
	const struct imap_arg *args;
	size_t count;
};

struct imap_parser_limits {
	size_t max_line;    /* octets of the line(s), literals excluded */
	size_t max_literal; /* octets of one literal */
	size_t max_literals; /* octets of all of a command's literals
			      * (0: no limit but max_literal each) */
	size_t max_args;    /* arguments, all levels */
	unsigned max_depth; /* list nesting */
	/* Accept {n+} (LITERAL+; with literal_minus only up to 4096
	 * octets: LITERAL-). */
	int literal_plus;
	int literal_minus;
};

/* Results of imap_parser_feed. */
enum imap_parse_result {
	IMAP_PARSE_MORE,     /* everything consumed, no command yet */
	IMAP_PARSE_COMMAND,  /* imap_parser_command() holds one */
	IMAP_PARSE_CONTINUE, /* a synchronising literal: the caller sends
			      * "+ OK\r\n" (or refuses with "tag NO/BAD"
			      * after imap_parser_skip_literal) and feeds
			      * the literal's bytes */
	IMAP_PARSE_ERROR,    /* imap_parser_error(): the text, whether it is
			      * fatal, and the tag when one was read */
};

struct imap_parser;

struct imap_parser *imap_parser_create(const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser **parser_r);

/*
 * Parses from data (len bytes); *consumed_r says how many it took. A
 * command, a continuation request or an error stops the parse there: the
 * caller acts and feeds the rest. A command stays valid until the next
 * feed or reset.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser,
    const char *data, size_t len, size_t *consumed_r);

const struct imap_command *imap_parser_command(
    const struct imap_parser *parser);

/* After IMAP_PARSE_ERROR: what was wrong (for "tag BAD <text>"), the tag
 * if one was read (else NULL: answer "* BAD"), and whether the
 * connection must be closed. */
const char *imap_parser_error(const struct imap_parser *parser,
    const char **tag_r, int *fatal_r);

/* After IMAP_PARSE_CONTINUE, instead of "+ OK": the literal is refused
 * (the client sends nothing more of this command); the parser drops
 * the command and waits for the next. */
void imap_parser_skip_literal(struct imap_parser *parser);

/* Forgets any partial command (after STARTTLS, AUTHENTICATE), and wipes
 * the bytes of the last one (a LOGIN's password); free wipes too. */
void imap_parser_reset(struct imap_parser *parser);

/* The tag and the command name of the command being read (after
 * IMAP_PARSE_CONTINUE: to refuse its literal with "tag NO ..." or to
 * allow literals only to some commands), NULL while not read yet.
 * Valid until the next feed or reset. */
const char *imap_parser_tag(const struct imap_parser *parser);
const char *imap_parser_name(const struct imap_parser *parser);

/* Octets of literal bytes announced but not yet fed, 0 if none: lets
 * APPEND's caller bound its reads. */
uint64_t imap_parser_literal_left(const struct imap_parser *parser);

/* ---- helpers for arguments ---- */

/* 1 if arg is an atom (NIL included: RFC 3501's astring allows a
 * mailbox or user named NIL), string or literal (an IMAP astring), with
 * *s_r and *len_r. A string with a NUL byte is refused (0). */
int imap_arg_astring(const struct imap_arg *arg, const char **s_r,
    size_t *len_r);
/* 1 if arg is an atom equal to word, case-insensitively. */
int imap_arg_atom_is(const struct imap_arg *arg, const char *word);

/* ---- writing IMAP data ----
 * The writers return 0, or -1 when out's maximum was reached. */

/* Appends s as an IMAP string: an atom never, a quoted string when it
 * has only 7-bit text without CR, LF, NUL (quote and backslash escaped),
 * else a literal {n}CRLF... . utf8: the session may send 8-bit text
 * quoted (IMAP4rev2 / UTF8=ACCEPT). */
int imap_append_string(struct buf *out, const char *s, size_t len,
    int utf8);
/* The same, NIL when s is NULL. */
int imap_append_nstring(struct buf *out, const char *s, size_t len,
    int utf8);

/* ---- sequence sets (RFC 9051 9: sequence-set) ---- */

/* A parsed "1:4,7,9:*": ranges with lo <= hi, '*' as UINT32_MAX. */
struct imap_seqset {
	struct imap_range {
		uint32_t lo, hi;
	} *ranges;
	size_t count;
};

/* Parses s (also "$" of SEARCHRES when allow_dollar, giving count 0 and
 * *dollar_r 1). 1, or 0 when malformed (numbers 0 or > 2^32-1, empty
 * parts). At most IMAP_SEQSET_MAX ranges. */
#define IMAP_SEQSET_MAX 100000
int imap_seqset_parse(const char *s, struct imap_seqset *set,
    int allow_dollar, int *dollar_r);
void imap_seqset_free(struct imap_seqset *set);
/* 1 if n is in set, with '*' meaning star (the largest number in use). */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
    uint32_t star);
/* Appends "1:4,7" for the sorted numbers (n of them), ranges merged. */
int imap_seqset_format(struct buf *out, const uint32_t *nums, size_t n);

/* ---- dates ---- */

/* "17-Jul-1996 02:44:25 -0700" (date-time, quoted or not): 1 with the
 * time and the zone offset in seconds east, or 0. */
int imap_datetime_parse(const char *s, int64_t *time_r, int *tz_r);
/* Appends date-time in quotes, with the local zone offset of t. */
int imap_datetime_append(struct buf *out, int64_t t);
/* "1-Feb-1994" (SEARCH's date): 1 with the day's midnight UTC, or 0. */
int imap_date_parse(const char *s, int64_t *day_r);

/* ---- mailbox names: modified UTF-7 (RFC 3501 5.1.3) ---- */

/* Appends the UTF-8 form of the mUTF-7 name: 1, 0 when malformed, -1
 * when out is full. */
int imap_utf7_to_utf8(const char *in, size_t len, struct buf *out);
/* Appends the mUTF-7 form of the UTF-8 name: 1, 0 when not UTF-8, -1
 * when out is full. */
int imap_utf8_to_utf7(const char *in, size_t len, struct buf *out);

#endif
