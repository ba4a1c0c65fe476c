/* SPDX-License-Identifier: MIT */
/*
 * The SMTP command line split into verb and argument, and the ESMTP
 * parameters of MAIL FROM and RCPT TO and the BDAT argument, parsed
 * without a session so the parsers can be tested and fuzzed alone:
 * SIZE (RFC 1870), BODY (RFC 6152, RFC 3030 BINARYMIME), SMTPUTF8 (RFC
 * 6531), RET and ENVID, NOTIFY and ORCPT (RFC 3461 DSN), AUTH (RFC 4954),
 * and xtext (RFC 3461 4). A parameter is accepted only when the extension
 * that defines it was offered (exts); every error carries the reply the
 * server sends, with its RFC 3463 enhanced status code.
 */
#ifndef TERN_SMTP_PARAM_H
#define TERN_SMTP_PARAM_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"

/* Extensions the server offered in this session. */
#define SMTP_EXT_SIZE		0x01
#define SMTP_EXT_8BITMIME	0x02
#define SMTP_EXT_BINARYMIME	0x04
#define SMTP_EXT_SMTPUTF8	0x08
#define SMTP_EXT_DSN		0x10
#define SMTP_EXT_AUTH		0x20

#define SMTP_ENVID_MAX	100	/* RFC 3461 4.4: the decoded ENVID */
#define SMTP_ORCPT_MAX	500	/* RFC 3461 4.2: the ORCPT parameter value */
#define SMTP_PARAMS_MAX	16	/* parameters on one command */
/* RFC 1870 size-value: 1*20DIGIT. */
#define SMTP_SIZE_DIGITS 20

enum smtp_body {
	SMTP_BODY_NONE,	/* not given (7BIT is the default) */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

/* A refused parameter: the reply, e.g. {501, "5.5.4", "Bad ...syntax"}. */
struct smtp_param_error {
	int code;
	const char *status;
	const char *text;	/* static; no client text in it */
};

struct smtp_mail_params {
	int has_size;
	uint64_t size;		/* UINT64_MAX: more digits than 64 bits */
	enum smtp_body body;
	int smtputf8;
	enum smtp_ret ret;
	char *envid;		/* xtext-decoded (printable ASCII), or NULL */
	char *auth;		/* AUTH= mailbox, xtext-decoded ("<>" kept) */
};

struct smtp_rcpt_params {
	unsigned notify;	/* QRCPT_NOTIFY_* mask (qfile.h); 0: not given */
	/* "addr-type;address", the address xtext-decoded to printable
	 * ASCII (RFC 3461 4.2), or for "utf-8" UTF-8 without controls as
	 * given (RFC 6533); NULL if absent. */
	char *orcpt;
};

/*
 * Splits an SMTP command line (RFC 5321 4.1.1: a verb, then its argument
 * after a space) in place. line holds len bytes and a NUL after them, as a
 * struct buf keeps it; trailing spaces are not part of the argument and
 * are overwritten with NULs. Returns 0 with *verb_len_r the length of the
 * verb at line[0] (it ends at the first space or at the end; the caller
 * compares it case-insensitively) and *arg_r pointing into line after the
 * verb and the spaces that follow it ("" when there is no argument); -1
 * for a line that is no command: empty, all spaces, starting with a space,
 * or holding a NUL byte anywhere (*verb_len_r and *arg_r untouched).
 */
int smtp_command_split(char *line, size_t len, size_t *verb_len_r,
    char **arg_r);

/*
 * Parses the parameters after the path (params as addr_parse_path
 * leaves them: space-separated keywords). 0, or -1 with *err_r; *p is
 * filled either way and must be released with the matching free.
 */
int smtp_mail_params_parse(const char *params, unsigned exts,
    struct smtp_mail_params *p, struct smtp_param_error *err_r);
void smtp_mail_params_free(struct smtp_mail_params *p);
int smtp_rcpt_params_parse(const char *params, unsigned exts,
    struct smtp_rcpt_params *p, struct smtp_param_error *err_r);
void smtp_rcpt_params_free(struct smtp_rcpt_params *p);

/*
 * RFC 3461 4: xtext. decode: 0 with the text appended to out, -1 for a
 * bad "+XX" (upper-case hex only), a byte outside "!".."~", "=" or "+"
 * unencoded, or out full. encode: -1 only when out is full.
 */
int xtext_decode(const char *in, size_t len, struct buf *out);
int xtext_encode(const char *in, size_t len, struct buf *out);

/*
 * "BDAT chunk-size [LAST]" arguments (RFC 3030): 0 with *size_r and
 * *last_r, or -1 for bad syntax (the caller cannot tell where the chunk
 * ends and closes the session). Sizes beyond 64 bits are syntax errors.
 */
int smtp_bdat_parse(const char *arg, uint64_t *size_r, int *last_r);

#endif
