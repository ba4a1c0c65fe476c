/* SPDX-License-Identifier: MIT */
/*
 * Invariants of the envelope parsers, shared by the targets that reach
 * them (fuzz_addr, fuzz_smtp_param and fuzz_smtp_command, which runs
 * them the way smtpd does). Each function runs the parser itself, checks
 * what it returned against the contract in its header and the RFCs, and
 * aborts on a violation.
 */
#ifndef TERN_FUZZ_CHECK_H
#define TERN_FUZZ_CHECK_H

#include <stdint.h>

/*
 * addr_parse_path(s, flags) plus: the address is within the limits and
 * the character rules, parses again alone to itself, splits into the
 * parts it was parsed from, folds consistently, and case does not change
 * what is accepted. Returns its result; *addr_r (malloc'd) and *params_r
 * as addr_parse_path sets them.
 */
int fuzz_check_path(const char *s, unsigned flags, char **addr_r,
    const char **params_r);
/* addr_split, addr_local_fold and addr_fold on any string (smtpd folds
 * the SASL user name too): no crash, lower case, case-blind. */
void fuzz_check_fold(const char *s);
/*
 * The MAIL / RCPT parameter parsers: a parameter only with its
 * extension, values within their grammar and limits (RFC 3461 4.2 and
 * 4.4: decoded ORCPT and ENVID are printable US-ASCII), and the parsed
 * result written back canonically parses to the same result.
 */
int fuzz_check_mail_params(const char *params, unsigned exts);
int fuzz_check_rcpt_params(const char *params, unsigned exts);
/* smtp_bdat_parse, and its result written back parses the same. */
int fuzz_check_bdat(const char *arg);

#endif
