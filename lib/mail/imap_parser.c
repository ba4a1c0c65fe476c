/* SPDX-License-Identifier: MIT */
/*
 * The IMAP command parser of imap_parser.h: a state machine that takes
 * one octet at a time (literal data in runs), so a command split
 * anywhere across reads parses exactly as when it comes whole. It
 * implements the command grammar of RFC 3501 9 and RFC 9051 9 (tag,
 * atoms, quoted strings, literals, NIL, parenthesised lists), RFC 7888
 * (LITERAL+ and LITERAL-) and RFC 3516's literal8 (~{n}). Where the
 * grammar is stricter than real clients, it is as lenient as Dovecot's
 * src/lib-imap/imap-parser.c: a run of spaces between arguments, bare
 * LF line ends, atoms with 8-bit octets, any escaped octet in a quoted
 * string.
 *
 * The bytes of a command (tag, name, every argument NUL-terminated) are
 * kept in one buffer, the arguments as a flat list of nodes in the order
 * they came, each naming its enclosing list; when the line ends, the
 * nodes become the struct imap_arg tree the caller reads, with the
 * elements of each list side by side.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/imap_parser.h"

/* Longest tag: clients use a few characters; a bound keeps the tag echoed
 * in "tag BAD" short. */
#define IMAP_TAG_MAX           128
/* Longest command name: the longest IMAP command (UNSUBSCRIBE,
 * AUTHENTICATE) with room for extensions. */
#define IMAP_NAME_MAX          64
/* RFC 7888 4: LITERAL- allows non-synchronising literals up to this. */
#define IMAP_LITERAL_MINUS_MAX 4096
/* The buffer of one command is bounded by the checks on lines and
 * literals; this is only the buffer's own safety net. */
#define IMAP_STORE_MAX         (SIZE_MAX / 4)
#define NO_PARENT              SIZE_MAX

enum imap_pstate {
	PS_TAG,
	PS_NAME,
	PS_ARG, /* between arguments */
	PS_ATOM,
	PS_ATOM_BRACKET, /* inside [...] of an atom */
	PS_QUOTED,
	PS_QUOTED_ESC,
	PS_TILDE,    /* '~': literal8 or an atom */
	PS_LIT_SIZE, /* after '{' */
	PS_LIT_PLUS, /* after '{n+' */
	PS_LIT_CR,   /* after '}' */
	PS_LIT_LF,   /* after '}' CR */
	PS_LIT_DATA,
	PS_CR,       /* CR at the end of the line */
	PS_SKIP,     /* after an error: to the end of the line */
	PS_SKIP_LIT, /* after an error: a {n+} literal's bytes */
	PS_FATAL,
};

/* The skipper's view of the end of a line: "{n+}" CRLF announces n
 * octets that are on their way and belong to the skipped command. */
enum imap_skip_lit {
	SKIP_LIT_NONE,
	SKIP_LIT_DIGITS,
	SKIP_LIT_PLUS,
	SKIP_LIT_CLOSED,
	SKIP_LIT_CR,
};

struct imap_node {
	enum imap_arg_type type;
	size_t off, len; /* in store */
	size_t parent;   /* a node index, or NO_PARENT */
	size_t count;    /* LIST: its elements */
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum imap_pstate state;

	struct buf store;
	struct imap_node *nodes;
	size_t nnodes, nodes_cap;
	size_t cur_list; /* the open list, or NO_PARENT */
	unsigned depth;
	size_t line_len;

	size_t tok_off; /* start of the token being read */
	size_t tag_len; /* 0 until the tag is complete */
	size_t name_off, name_len;
	int have_name;

	uint64_t lit_size, lit_left;
	uint64_t lit_total; /* octets of the command's literals so far */
	int lit_digits, lit8, lit_sync;

	/* After a command or an error was returned: cleared on next feed. */
	int returned;

	enum imap_skip_lit skip_lit;
	uint64_t skip_size;

	const char *error;
	int error_has_tag, fatal;

	/* The command handed out, and the arrays that build it. */
	struct imap_command cmd;
	struct imap_arg *args;
	size_t *start, *fill;
	size_t build_cap;
};

/* RFC 3501 9: ATOM-CHAR is any CHAR but atom-specials. */
static int
is_atom_special(unsigned char c)
{
	return c == '(' || c == ')' || c == '{' || c == ' ' || c < 0x20 ||
	       c == 0x7f || c == '%' || c == '*' || c == '"' || c == '\\' ||
	       c == ']';
}

/* A tag: ASTRING-CHAR except '+', 7-bit only. */
static int
is_tag_char(unsigned char c)
{
	if (c >= 0x80 || c == '+')
		return 0;
	return c == ']' || !is_atom_special(c);
}

/* A command name: atom characters. */
static int
is_name_char(unsigned char c)
{
	return c < 0x80 && !is_atom_special(c);
}

/* Octets never allowed on a command line outside a literal. */
static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void
clear_command(struct imap_parser *p)
{
	buf_reset(&p->store);
	p->nnodes = 0;
	p->cur_list = NO_PARENT;
	p->depth = 0;
	p->line_len = 0;
	p->tok_off = 0;
	p->tag_len = 0;
	p->name_off = p->name_len = 0;
	p->have_name = 0;
	p->lit_size = p->lit_left = 0;
	p->lit_total = 0;
	p->lit_digits = p->lit8 = p->lit_sync = 0;
	p->error = NULL;
	p->error_has_tag = 0;
	p->returned = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
}

/* The command's bytes may have held a password (LOGIN). */
static void
wipe_store(struct imap_parser *p)
{
	if (p->store.data != NULL)
		explicit_bzero(p->store.data, p->store.len);
}

struct imap_parser *
imap_parser_create(const struct imap_parser_limits *lim)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->lim = *lim;
	buf_init(&p->store, IMAP_STORE_MAX);
	clear_command(p);
	p->state = PS_TAG;
	return p;
}

void
imap_parser_free(struct imap_parser **parser_r)
{
	struct imap_parser *p = *parser_r;

	if (p == NULL)
		return;
	wipe_store(p);
	buf_free(&p->store);
	free(p->nodes);
	free(p->args);
	free(p->start);
	free(p->fill);
	free(p);
	*parser_r = NULL;
}

void
imap_parser_reset(struct imap_parser *p)
{
	wipe_store(p);
	clear_command(p);
	p->fatal = 0;
	p->skip_lit = SKIP_LIT_NONE;
	p->skip_size = 0;
	p->state = PS_TAG;
}

void
imap_parser_skip_literal(struct imap_parser *p)
{
	/* The client sends no more of this command: the next octet starts
	 * a new one. */
	p->returned = 1;
	p->state = PS_TAG;
}

uint64_t
imap_parser_literal_left(const struct imap_parser *p)
{
	return p->state == PS_LIT_DATA ? p->lit_left : 0;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->tag_len > 0 ? p->store.data : NULL;
}

const char *
imap_parser_name(const struct imap_parser *p)
{
	return p->have_name ? p->store.data + p->name_off : NULL;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return p->cmd.name != NULL ? &p->cmd : NULL;
}

const char *
imap_parser_error(const struct imap_parser *p, const char **tag_r, int *fatal_r)
{
	if (tag_r != NULL)
		*tag_r =
		    p->error != NULL && p->error_has_tag ? p->store.data : NULL;
	if (fatal_r != NULL)
		*fatal_r = p->fatal;
	return p->error != NULL ? p->error : "";
}

/*
 * Records an error. ended: the octet that caused it ended the line, so
 * the next octet starts a new command; else the rest of the line is
 * skipped first.
 */
static enum imap_parse_result
fail(struct imap_parser *p, const char *text, int ended)
{
	p->error = text;
	p->error_has_tag = p->tag_len > 0;
	p->returned = 1;
	p->skip_lit = SKIP_LIT_NONE;
	p->state = ended ? PS_TAG : PS_SKIP;
	return IMAP_PARSE_ERROR;
}

static enum imap_parse_result
fail_fatal(struct imap_parser *p, const char *text)
{
	(void)fail(p, text, 0);
	p->fatal = 1;
	p->state = PS_FATAL;
	return IMAP_PARSE_ERROR;
}

/* Appends to the command's bytes; the checks on lines and literals keep
 * this far below the buffer's maximum. */
static void
store(struct imap_parser *p, const void *data, size_t len)
{
	if (buf_append(&p->store, data, len) < 0)
		msg_panic("imap_parser: command buffer overflow");
}

static void
store_c(struct imap_parser *p, unsigned char c)
{
	char ch = (char)c;

	store(p, &ch, 1);
}

/* Begins an argument token: NULL when there are too many. */
static int
begin_arg(struct imap_parser *p)
{
	if (p->nnodes >= p->lim.max_args)
		return 0;
	p->tok_off = p->store.len;
	return 1;
}

static void
add_node(struct imap_parser *p, enum imap_arg_type type, size_t off, size_t len)
{
	struct imap_node *n;

	if (p->nnodes == p->nodes_cap) {
		p->nodes_cap = p->nodes_cap == 0 ? 8 : p->nodes_cap * 2;
		p->nodes = xrealloc(p->nodes, p->nodes_cap * sizeof(*p->nodes));
	}
	n = &p->nodes[p->nnodes++];
	n->type = type;
	n->off = off;
	n->len = len;
	n->parent = p->cur_list;
	n->count = 0;
	if (p->cur_list != NO_PARENT)
		p->nodes[p->cur_list].count++;
}

/* Ends the token begun at tok_off as an argument of type. */
static void
end_token(struct imap_parser *p, enum imap_arg_type type)
{
	size_t len = p->store.len - p->tok_off;

	store_c(p, '\0');
	if (type == IMAP_ARG_ATOM && len == 3 &&
	    strncasecmp(p->store.data + p->tok_off, "NIL", 3) == 0)
		type = IMAP_ARG_NIL;
	add_node(p, type, p->tok_off, len);
}

/* Turns the nodes into the tree of struct imap_arg: the elements of the
 * command, then of each list in the order the lists opened. */
static void
build_command(struct imap_parser *p)
{
	size_t n = p->nnodes, i, parent, next, place;

	if (n + 1 > p->build_cap) {
		p->build_cap = n + 1;
		p->args = xrealloc(p->args, p->build_cap * sizeof(*p->args));
		p->start = xrealloc(p->start, p->build_cap * sizeof(size_t));
		p->fill = xrealloc(p->fill, p->build_cap * sizeof(size_t));
	}
	/* Slot n stands for the command itself. */
	next = 0;
	p->start[n] = 0;
	p->fill[n] = 0;
	for (i = 0; i < n; i++)
		if (p->nodes[i].parent == NO_PARENT)
			next++;
	for (i = 0; i < n; i++) {
		p->fill[i] = 0;
		if (p->nodes[i].type == IMAP_ARG_LIST) {
			p->start[i] = next;
			next += p->nodes[i].count;
		}
	}
	for (i = 0; i < n; i++) {
		const struct imap_node *nd = &p->nodes[i];
		struct imap_arg *a;

		parent = nd->parent == NO_PARENT ? n : nd->parent;
		place = p->start[parent] + p->fill[parent]++;
		a = &p->args[place];
		memset(a, 0, sizeof(*a));
		a->type = nd->type;
		if (nd->type == IMAP_ARG_LIST) {
			a->count = nd->count;
			a->list = nd->count > 0 ? &p->args[p->start[i]] : NULL;
		} else {
			a->str = p->store.data + nd->off;
			a->len = nd->len;
		}
	}
	p->cmd.tag = p->store.data;
	p->cmd.name = p->store.data + p->name_off;
	p->cmd.count = p->fill[n];
	p->cmd.args = p->cmd.count > 0 ? p->args : NULL;
}

/* The line ended (its LF consumed). */
static enum imap_parse_result
end_line(struct imap_parser *p)
{
	if (p->tag_len == 0)
		return fail(p, "Empty command.", 1);
	if (!p->have_name)
		return fail(p, "Missing command name.", 1);
	if (p->depth > 0)
		return fail(p, "Missing ')'.", 1);
	build_command(p);
	p->returned = 1;
	p->state = PS_TAG;
	return IMAP_PARSE_COMMAND;
}

/* The literal's size and its CRLF are read: start taking its data. */
static enum imap_parse_result
start_literal(struct imap_parser *p)
{
	/* Each literal within its limit, many literals could still make
	 * one command as large as the client likes. */
	int too_big = p->lit_size > p->lim.max_literal ||
	              (p->lim.max_literals > 0 &&
	                  p->lit_total + p->lit_size > p->lim.max_literals);

	if (!p->lit_sync) {
		if (!p->lim.literal_plus &&
		    !(p->lim.literal_minus &&
		        p->lit_size <= IMAP_LITERAL_MINUS_MAX))
			return fail_fatal(
			    p, p->lim.literal_minus
			           ? "[TOOBIG] Non-synchronizing literal too "
			             "large."
			           : "Non-synchronizing literals not allowed.");
		if (too_big)
			return fail_fatal(p, "[TOOBIG] Literal too large.");
	} else if (too_big) {
		/* The client waits for "+": it sends nothing more. */
		return fail(p, "[TOOBIG] Literal too large.", 1);
	}
	if (!begin_arg(p)) {
		if (!p->lit_sync)
			return fail_fatal(p, "Too many arguments.");
		return fail(p, "Too many arguments.", 1);
	}
	p->lit_left = p->lit_size;
	p->lit_total += p->lit_size;
	p->state = PS_LIT_DATA;
	return p->lit_sync ? IMAP_PARSE_CONTINUE : IMAP_PARSE_MORE;
}

/* An octet between arguments (also the one that ended an atom). */
static enum imap_parse_result
step_arg(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		return IMAP_PARSE_MORE;
	case '\r':
		p->state = PS_CR;
		return IMAP_PARSE_MORE;
	case '\n':
		return end_line(p);
	case '(':
		if (p->depth >= p->lim.max_depth)
			return fail(p, "Too deep nesting of lists.", 0);
		if (!begin_arg(p))
			return fail(p, "Too many arguments.", 0);
		add_node(p, IMAP_ARG_LIST, 0, 0);
		p->cur_list = p->nnodes - 1;
		p->depth++;
		return IMAP_PARSE_MORE;
	case ')':
		if (p->depth == 0)
			return fail(p, "Unexpected ')'.", 0);
		p->depth--;
		p->cur_list = p->nodes[p->cur_list].parent;
		return IMAP_PARSE_MORE;
	case '"':
		if (!begin_arg(p))
			return fail(p, "Too many arguments.", 0);
		p->state = PS_QUOTED;
		return IMAP_PARSE_MORE;
	case '{':
		p->lit8 = 0;
		goto literal;
	case '~':
		p->state = PS_TILDE;
		return IMAP_PARSE_MORE;
	}
	if (is_ctl(c) || c == '\t')
		return fail(p, "Invalid characters in command.", 0);
	if (!begin_arg(p))
		return fail(p, "Too many arguments.", 0);
	store_c(p, c);
	p->state = c == '[' ? PS_ATOM_BRACKET : PS_ATOM;
	return IMAP_PARSE_MORE;
literal:
	p->lit_size = 0;
	p->lit_digits = 0;
	p->lit_sync = 1;
	p->state = PS_LIT_SIZE;
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
step_atom(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case '[':
		store_c(p, c);
		p->state = PS_ATOM_BRACKET;
		return IMAP_PARSE_MORE;
	case ' ':
	case '\r':
	case '\n':
	case '(':
	case ')':
	case '"':
	case '{':
		/* These end the atom and are read again between arguments,
		 * as Dovecot reads "FLAGS(\Seen)". */
		end_token(p, IMAP_ARG_ATOM);
		p->state = PS_ARG;
		return step_arg(p, c);
	}
	if (is_ctl(c) || c == '\t')
		return fail(p, "Invalid characters in atom.", 0);
	store_c(p, c);
	return IMAP_PARSE_MORE;
}

static enum imap_parse_result
step_literal_size(struct imap_parser *p, unsigned char c)
{
	if (c >= '0' && c <= '9') {
		if (p->lit_size > (UINT64_MAX - 9) / 10)
			return fail(p, "Literal size too large.", 0);
		p->lit_size = p->lit_size * 10 + (uint64_t)(c - '0');
		p->lit_digits++;
		return IMAP_PARSE_MORE;
	}
	if (p->lit_digits == 0)
		return fail(p, "Invalid literal size.", c == '\n');
	if (c == '+') {
		p->lit_sync = 0;
		p->state = PS_LIT_PLUS;
		return IMAP_PARSE_MORE;
	}
	if (c == '}') {
		p->state = PS_LIT_CR;
		return IMAP_PARSE_MORE;
	}
	/* RFC 7888 writes LITERAL-'s literals "{n+}" too: "{n-}" is none. */
	return fail(p, "Invalid literal size.", c == '\n');
}

/* One octet outside literal data. */
static enum imap_parse_result
step(struct imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case PS_TAG:
		if (c == '\r' && p->store.len == 0) {
			p->state = PS_CR;
			return IMAP_PARSE_MORE;
		}
		if (c == '\n' && p->store.len == 0)
			return end_line(p);
		if ((c == ' ' || c == '\r' || c == '\n') && p->store.len > 0) {
			store_c(p, '\0');
			p->tag_len = p->store.len - 1;
			p->name_off = p->store.len;
			p->state = PS_NAME;
			if (c != ' ')
				return fail(
				    p, "Missing command name.", c == '\n');
			return IMAP_PARSE_MORE;
		}
		if (!is_tag_char(c))
			return fail(p, "Invalid tag.", c == '\n');
		if (p->store.len >= IMAP_TAG_MAX)
			return fail(p, "Tag too long.", 0);
		store_c(p, c);
		return IMAP_PARSE_MORE;
	case PS_NAME:
		if (c == ' ' || c == '\r' || c == '\n') {
			if (p->store.len == p->name_off)
				return fail(
				    p, "Missing command name.", c == '\n');
			p->name_len = p->store.len - p->name_off;
			store_c(p, '\0');
			p->have_name = 1;
			p->state = PS_ARG;
			return step_arg(p, c);
		}
		if (!is_name_char(c))
			return fail(p, "Invalid command name.", 0);
		if (p->store.len - p->name_off >= IMAP_NAME_MAX)
			return fail(p, "Command name too long.", 0);
		store_c(p, c);
		return IMAP_PARSE_MORE;
	case PS_ARG:
		return step_arg(p, c);
	case PS_ATOM:
		return step_atom(p, c);
	case PS_ATOM_BRACKET:
		if (c == '\r' || c == '\n')
			return fail(p, "Missing ']'.", c == '\n');
		if (is_ctl(c))
			return fail(p, "Invalid characters in atom.", 0);
		store_c(p, c);
		if (c == ']')
			p->state = PS_ATOM;
		return IMAP_PARSE_MORE;
	case PS_QUOTED:
		if (c == '"') {
			end_token(p, IMAP_ARG_STRING);
			p->state = PS_ARG;
		} else if (c == '\\') {
			p->state = PS_QUOTED_ESC;
		} else if (c == '\r' || c == '\n') {
			return fail(p, "Missing '\"'.", c == '\n');
		} else if (c == '\0') {
			return fail(p, "NUL in quoted string.", 0);
		} else {
			store_c(p, c);
		}
		return IMAP_PARSE_MORE;
	case PS_QUOTED_ESC:
		if (c == '\r' || c == '\n')
			return fail(p, "Missing '\"'.", c == '\n');
		if (c == '\0')
			return fail(p, "NUL in quoted string.", 0);
		store_c(p, c);
		p->state = PS_QUOTED;
		return IMAP_PARSE_MORE;
	case PS_TILDE:
		if (c == '{') {
			p->lit8 = 1;
			p->lit_size = 0;
			p->lit_digits = 0;
			p->lit_sync = 1;
			p->state = PS_LIT_SIZE;
			return IMAP_PARSE_MORE;
		}
		/* An atom that starts with '~' ("~peter/mail"). */
		if (!begin_arg(p))
			return fail(p, "Too many arguments.", 0);
		store_c(p, '~');
		p->state = PS_ATOM;
		return step_atom(p, c);
	case PS_LIT_SIZE:
		return step_literal_size(p, c);
	case PS_LIT_PLUS:
		if (c != '}')
			return fail(p, "Invalid literal size.", c == '\n');
		p->state = PS_LIT_CR;
		return IMAP_PARSE_MORE;
	case PS_LIT_CR:
		if (c == '\r') {
			p->state = PS_LIT_LF;
			return IMAP_PARSE_MORE;
		}
		if (c == '\n')
			return start_literal(p);
		return fail(p, "Missing CRLF after literal size.", 0);
	case PS_LIT_LF:
		if (c == '\n')
			return start_literal(p);
		return fail(p, "Missing CRLF after literal size.", 0);
	case PS_CR:
		if (c == '\n')
			return end_line(p);
		return fail(p, "CR without LF.", 0);
	case PS_LIT_DATA:
	case PS_SKIP:
	case PS_SKIP_LIT:
	case PS_FATAL:
		break;
	}
	msg_panic("imap_parser: step in state %d", (int)p->state);
}

/* Skips the rest of a line after an error; a "{n+}" at its end
 * announces octets that are skipped too. 1 when the line ended. */
static int
skip_octet(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		if (p->skip_lit == SKIP_LIT_CLOSED ||
		    p->skip_lit == SKIP_LIT_CR) {
			/* The command goes on after the literal. */
			p->skip_lit = SKIP_LIT_NONE;
			if (p->skip_size > 0)
				p->state = PS_SKIP_LIT;
			return 0;
		}
		p->skip_lit = SKIP_LIT_NONE;
		return 1;
	}
	switch (c) {
	case '{':
		p->skip_lit = SKIP_LIT_DIGITS;
		p->skip_size = 0;
		return 0;
	case '+':
		p->skip_lit = p->skip_lit == SKIP_LIT_DIGITS ? SKIP_LIT_PLUS
		                                             : SKIP_LIT_NONE;
		return 0;
	case '}':
		p->skip_lit = p->skip_lit == SKIP_LIT_PLUS ? SKIP_LIT_CLOSED
		                                           : SKIP_LIT_NONE;
		return 0;
	case '\r':
		p->skip_lit = p->skip_lit == SKIP_LIT_CLOSED ? SKIP_LIT_CR
		                                             : SKIP_LIT_NONE;
		return 0;
	}
	if (c >= '0' && c <= '9' && p->skip_lit == SKIP_LIT_DIGITS &&
	    p->skip_size <= (UINT64_MAX - 9) / 10) {
		p->skip_size = p->skip_size * 10 + (uint64_t)(c - '0');
		return 0;
	}
	p->skip_lit = SKIP_LIT_NONE;
	return 0;
}

enum imap_parse_result
imap_parser_feed(
    struct imap_parser *p, const char *data, size_t len, size_t *consumed_r)
{
	enum imap_parse_result r;
	size_t i = 0, n;
	unsigned char c;

	if (p->state == PS_FATAL) {
		*consumed_r = 0;
		return IMAP_PARSE_ERROR;
	}
	if (p->returned)
		clear_command(p);
	for (;;) {
		if (p->state == PS_LIT_DATA) {
			n = len - i;
			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			store(p, data + i, n);
			i += n;
			p->lit_left -= n;
			if (p->lit_left > 0)
				break;
			end_token(
			    p, p->lit8 ? IMAP_ARG_LITERAL8 : IMAP_ARG_LITERAL);
			p->state = PS_ARG;
			continue;
		}
		if (i == len)
			break;
		if (p->state == PS_SKIP_LIT) {
			n = len - i;
			if (n > p->skip_size)
				n = (size_t)p->skip_size;
			i += n;
			p->skip_size -= n;
			if (p->skip_size == 0)
				p->state = PS_SKIP;
			continue;
		}
		c = (unsigned char)data[i++];
		if (p->state == PS_SKIP) {
			if (skip_octet(p, c))
				p->state = PS_TAG;
			continue;
		}
		if (++p->line_len > p->lim.max_line) {
			r = fail(p, "Too long command line.", c == '\n');
		} else {
			r = step(p, c);
		}
		if (r != IMAP_PARSE_MORE) {
			*consumed_r = i;
			return r;
		}
	}
	*consumed_r = i;
	return IMAP_PARSE_MORE;
}

int
imap_arg_astring(const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL: /* "NIL" is an atom too: a mailbox may be NIL */
	case IMAP_ARG_STRING:
	case IMAP_ARG_LITERAL:
		if (memchr(arg->str, '\0', arg->len) != NULL)
			return 0;
		*s_r = arg->str;
		*len_r = arg->len;
		return 1;
	case IMAP_ARG_LITERAL8:
	case IMAP_ARG_LIST:
		break;
	}
	return 0;
}

int
imap_arg_atom_is(const struct imap_arg *arg, const char *word)
{
	size_t n = strlen(word);

	return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       arg->len == n && strncasecmp(arg->str, word, n) == 0;
}
