/* SPDX-License-Identifier: MIT */
/*
 * What every TLS context of tern shares: the protocol range (TLS 1.2 and
 * TLS 1.3 only, RFC 8996 retired the older ones), the options that close
 * known holes (no compression: CRIME; no renegotiation: RFC 5746's
 * troubles and a DoS lever), the write modes a buffered stream needs, and
 * the turning of OpenSSL's per-thread error queue into one line of text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "base/str.h"
#include "tls/tls_int.h"

/* Words in a protocols setting, at most (six names, a few operators). */
#define TLS_PROTO_WORDS_MAX 16
#define TLS_PROTO_SEPS      " \t,:"

static __thread char tls_error_buf[TLS_ERROR_MAX];

/* Indices of tls_versions, oldest first (ranges rely on the order). */
enum tls_version_idx {
	TLS_V_SSL2,
	TLS_V_SSL3,
	TLS_V_1_0,
	TLS_V_1_1,
	TLS_V_1_2,
	TLS_V_1_3,
	TLS_NVERSIONS
};

static const struct {
	const char *name;
	int version;
} tls_versions[TLS_NVERSIONS] = {
    [TLS_V_SSL2] = {"SSLv2", SSL2_VERSION},
    [TLS_V_SSL3] = {"SSLv3", SSL3_VERSION},
    [TLS_V_1_0] = {"TLSv1", TLS1_VERSION},
    [TLS_V_1_1] = {"TLSv1.1", TLS1_1_VERSION},
    [TLS_V_1_2] = {"TLSv1.2", TLS1_2_VERSION},
    [TLS_V_1_3] = {"TLSv1.3", TLS1_3_VERSION},
};

#define TLS_ALL_MASK     ((1u << TLS_NVERSIONS) - 1)
/* What may ever be enabled, whatever a configuration says. */
#define TLS_ALLOWED_MASK ((1u << TLS_V_1_2) | (1u << TLS_V_1_3))

void
tls_error_text(char *out, size_t size)
{
	unsigned long e;
	const char *data, *reason;
	char code[TLS_ERROR_MAX];
	int flags;

	if (size == 0)
		return;
	out[0] = '\0';
	e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
	if (e != 0) {
		/* A failed system call carries its errno as the reason. */
		if (ERR_SYSTEM_ERROR(e))
			reason = strerror(ERR_GET_REASON(e));
		else
			reason = ERR_reason_error_string(e);
		if (reason == NULL) {
			ERR_error_string_n(e, code, sizeof(code));
			reason = code;
		}
		/* data is the context OpenSSL adds, e.g. the fopen() call. */
		if ((flags & ERR_TXT_STRING) != 0 && data != NULL &&
		    data[0] != '\0')
			snprintf(out, size, "%s (%s)", reason, data);
		else
			snprintf(out, size, "%s", reason);
	}
	/* Later entries only restate the first one at higher levels. */
	ERR_clear_error();
}

void
tls_append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strnlen(buf, size);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

int
tls_fail(const char **error_r, const char *fmt, ...)
{
	char reason[TLS_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tls_error_buf, sizeof(tls_error_buf), fmt, ap);
	va_end(ap);
	tls_error_text(reason, sizeof(reason));
	if (reason[0] != '\0')
		tls_append(
		    tls_error_buf, sizeof(tls_error_buf), ": %s", reason);
	if (error_r != NULL)
		*error_r = tls_error_buf;
	return -1;
}

/* Index in tls_versions of name, or -1. */
static int
tls_version_index(const char *name)
{
	size_t i;

	for (i = 0; i < TLS_NVERSIONS; i++) {
		if (str_eq_ci(name, tls_versions[i].name))
			return (int)i;
	}
	return -1;
}

/* Parses a protocols setting (tls.h) into a mask of tls_versions. */
static int
tls_protocols_mask(
    const char *protocols, unsigned *mask_r, const char **error_r)
{
	char *copy, *words[TLS_PROTO_WORDS_MAX];
	unsigned on = 0, off = 0, bits;
	int n, i, idx, enabling = 0, ret = 0;

	copy = xstrdup(protocols != NULL ? protocols : "");
	n = str_split(copy, TLS_PROTO_SEPS, words, TLS_PROTO_WORDS_MAX);
	if (n < 0) {
		free(copy);
		return tls_fail(
		    error_r, "protocols \"%s\": too many words", protocols);
	}
	for (i = 0; i < n && ret == 0; i++) {
		const char *w = words[i];
		char op = '\0';

		if (w[0] == '!') {
			op = '!';
			w++;
		} else if ((w[0] == '>' || w[0] == '<') && w[1] == '=') {
			op = w[0];
			w += 2;
		}
		idx = tls_version_index(w);
		if (idx < 0) {
			ret = tls_fail(error_r,
			    "protocols \"%s\": unknown protocol \"%s\"",
			    protocols, words[i]);
			break;
		}
		bits = 1u << idx;
		if (op == '>')
			bits = TLS_ALL_MASK & ~(bits - 1);
		else if (op == '<')
			bits = (bits << 1) - 1;
		if (op == '!') {
			off |= bits;
		} else {
			on |= bits;
			enabling = 1;
		}
	}
	free(copy);
	if (ret < 0)
		return -1;
	*mask_r = (enabling ? on : TLS_ALL_MASK) & ~off & TLS_ALLOWED_MASK;
	if (*mask_r == 0)
		return tls_fail(error_r,
		    "protocols \"%s\": leaves neither TLSv1.2 nor TLSv1.3",
		    protocols);
	return 0;
}

int
tls_ctx_setup(SSL_CTX *ctx, const char *protocols, const char **error_r)
{
	unsigned mask;
	int lo, hi;

	if (tls_protocols_mask(protocols, &mask, error_r) < 0)
		return -1;
	/* The allowed versions are adjacent, so the mask is a range. */
	for (lo = 0; (mask & (1u << lo)) == 0; lo++)
		;
	for (hi = (int)TLS_NVERSIONS - 1; (mask & (1u << hi)) == 0; hi--)
		;
	if (SSL_CTX_set_min_proto_version(ctx, tls_versions[lo].version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, tls_versions[hi].version) != 1)
		return tls_fail(error_r, "protocols \"%s\"", protocols);
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	/*
	 * The stream hands SSL_write_ex its whole pending output, which
	 * grows and moves between retries; partial writes let it drop what
	 * went out record by record.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

int
tls_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

const char *
tls_library_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
