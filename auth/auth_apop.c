/* SPDX-License-Identifier: MIT */
/*
 * The APOP check of RFC 1939 7: the client proves it knows the password
 * by sending MD5(timestamp password) in hex, the timestamp being the
 * <...> of this session's greeting. Only a password stored as itself can
 * answer it. MD5 comes from OpenSSL's libcrypto, which auth alone links
 * for this.
 */
#include <string.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "mail/userdb.h"
#include "auth.h"

#define AUTH_MD5_LEN 16

int
auth_apop_match(const char *challenge, const char *password, const char *digest)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char want[2 * AUTH_MD5_LEN];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;
	size_t i;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, challenge, strlen(challenge)) == 1 &&
	     EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == AUTH_MD5_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return 0;
	for (i = 0; i < AUTH_MD5_LEN; i++) {
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 0xf];
	}
	ok = userdb_equal_ct(want, sizeof(want), digest, strlen(digest));
	explicit_bzero(md, sizeof(md));
	explicit_bzero(want, sizeof(want));
	return ok;
}
