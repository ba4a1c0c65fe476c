/* SPDX-License-Identifier: MIT */
/*
 * Private to lib/mail/mime*.c and imap_envelope.c: the arena parts live
 * in, a growing string, the header line reader, the RFC 822 tokenizer,
 * RFC 2231 parameters, address lists and each part's Content-* data.
 * The rules are Dovecot 2.3's (lib-mail), so that ENVELOPE and
 * BODYSTRUCTURE come out byte for byte as Dovecot's.
 */
#ifndef TERN_MIME_INT_H
#define TERN_MIME_INT_H

#include <stddef.h>
#include <stdint.h>

#include "mail/mime.h"

/* ---- arena: freed all at once ---- */
struct mime_arena {
	struct mime_chunk *chunks;
};
void *mime_arena_alloc(struct mime_arena *a, size_t n);
char *mime_arena_strndup(struct mime_arena *a, const char *s, size_t n);
void mime_arena_free(struct mime_arena *a);

/* ---- a growing string, always NUL-terminated; out of memory is fatal
 * (its size is bounded by the message it is built from) ---- */
struct mstr {
	char *d;
	size_t len, cap;
};
void mstr_add(struct mstr *s, const void *p, size_t n);
void mstr_addc(struct mstr *s, char c);
void mstr_adds(struct mstr *s, const char *p);
void mstr_trunc(struct mstr *s, size_t n);
const char *mstr_c(struct mstr *s);
void mstr_free(struct mstr *s);

/* ---- header lines (Dovecot's message-header-parser with
 * SKIP_INITIAL_LWSP and DROP_CR) ---- */
struct mime_hdr_reader {
	const char *p, *end;
	int eoh;
};
struct mime_hdr {
	/* name: "" for a line without ':' (or a name over 1000 octets) */
	const char *name;
	size_t name_len;
	/* the unfolded value: continuation lines joined with "\n" */
	struct mstr value;
	int has_nuls;
};
/* 1: a header in h (reusing h->value), 0: the blank line that ends the
 * header was read (or the data ended). Reads at most up to r->end; a line
 * that starts at r->p is assumed to start a header line. */
int mime_hdr_next_line(struct mime_hdr_reader *r, struct mime_hdr *h,
    int *blank_r);
int mime_hdr_name_is(const struct mime_hdr *h, const char *name);

/* ---- RFC 822 tokens over a NUL-terminated buffer ---- */
struct rfc822_ctx {
	const unsigned char *data, *end;
	struct mstr *last_comment; /* NULL: comments not kept */
	const char *nul_replacement;
};
extern const unsigned char mime_atext[256];
#define MIME_IS_ATEXT(c) (mime_atext[(unsigned char)(c)] != 0)
#define MIME_IS_TOKEN(c) ((mime_atext[(unsigned char)(c)] & 3) != 0)
#define MIME_NUL_REPLACEMENT "\xef\xbf\xbd"

void rfc822_init(struct rfc822_ctx *c, const char *data, size_t len);
int rfc822_skip_lwsp(struct rfc822_ctx *c);
int rfc822_parse_mime_token(struct rfc822_ctx *c, struct mstr *s);
int rfc822_parse_atom(struct rfc822_ctx *c, struct mstr *s);
/* At '"': the string's contents unquoted; at atext: atoms joined by '.'
 * (imap_sort.c reads message ids with them). */
int rfc822_parse_quoted_string(struct rfc822_ctx *c, struct mstr *s);
int rfc822_parse_dot_atom(struct rfc822_ctx *c, struct mstr *s);
int rfc822_parse_content_type(struct rfc822_ctx *c, struct mstr *s);

/* ---- parameters ---- */
struct mime_param {
	const char *name, *value;
};
/* RFC 2231 parameters after a content type or disposition, into the
 * arena; *count_r of them. */
struct mime_param *mime_params_parse(struct rfc822_ctx *c,
    struct mime_arena *a, size_t *count_r);

/* ---- each part's Content-* header data ---- */
struct mime_data {
	const char *type, *subtype; /* NULL: no Content-Type */
	struct mime_param *type_params;
	size_t n_type_params;
	const char *encoding, *id, *description, *disposition, *md5,
	    *location;
	struct mime_param *disp_params;
	size_t n_disp_params;
	const char *const *language; /* NULL-terminated, or NULL */
};

/* Flags as Dovecot's message_part flags. */
#define MIME_F_MULTIPART 0x01
#define MIME_F_RFC822 0x02
#define MIME_F_DIGEST 0x04
#define MIME_F_IS_MIME 0x08
#define MIME_F_TEXT 0x10

struct mime_ipart {
	struct mime_part pub;
	unsigned flags;
	struct mime_data data;
	struct mime_part *last_child;
	uint64_t hdr_lines;
};

/* Takes one complete header into d (Content-* names only). */
void mime_data_header(struct mime_data *d, struct mime_arena *a,
    const struct mime_hdr *h);

/* ---- addresses (Dovecot's message-address with FILL_MISSING) ---- */
struct mime_addr {
	struct mime_addr *next;
	const char *name, *route, *mailbox, *domain;
};
/* Appends the addresses of value (len octets, NUL after them) at *tail_r. */
void mime_addr_parse(struct mime_arena *a, const char *value, size_t len,
    struct mime_addr ***tail_r);

/* NUL bytes replaced by U+FFFD, as Dovecot's message_header_strdup. */
char *mime_header_strdup(struct mime_arena *a, const char *s, size_t len);

#endif
