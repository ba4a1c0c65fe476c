/* SPDX-License-Identifier: MIT */
/*
 * Self-signed server certificates for `tern init`, so that STARTTLS works
 * from the first start (RFC 7435 opportunistic security: an unverified
 * certificate still keeps passive listeners out). The profile follows
 * RFC 5280 for an end-entity server certificate: v3, a random positive
 * serial (4.1.2.2), the host name in subjectAltName (RFC 6125 6.4.4 has
 * clients look there, not at the CN), CA:FALSE, and key usage matching
 * the key type (RFC 5246 7.4.2 needs keyEncipherment for RSA key
 * transport, which tern does not offer but old clients ask for).
 */
#include <errno.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/file.h"
#include "tls/tls_int.h"

/* RFC 5280 4.1.2.2: serials up to 20 octets; 159 random bits stay
 * positive in DER and leave no room for a guess. */
#define CERT_SERIAL_BITS 159
#define CERT_KEY_MODE    0600
#define CERT_CERT_MODE   0644
#define CERT_EC_CURVE    "P-256"
/* Upper bound on validity, so days * 86400 cannot overflow a long. */
#define CERT_DAYS_MAX    36500

static int
cert_hostname_ok(const char *host)
{
	size_t i, len = strlen(host);

	if (len == 0 || len > TLS_CN_MAX || host[0] == '.' || host[0] == '-')
		return 0;
	for (i = 0; i < len; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

static EVP_PKEY *
cert_make_key(enum tls_key_type type)
{
	if (type == TLS_KEY_RSA)
		return EVP_PKEY_Q_keygen(
		    NULL, NULL, "RSA", (size_t)TLS_RSA_BITS);
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", CERT_EC_CURVE);
}

/* Adds one extension given in OpenSSL's configuration syntax (value
 * never contains peer or user text). */
static int
cert_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int ok;

	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* subjectAltName DNS:host, built directly so no text is parsed. */
static int
cert_add_san(X509 *x, const char *host)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ok = 0;

	if (names != NULL && gn != NULL && ia5 != NULL &&
	    ASN1_STRING_set(ia5, host, (int)strlen(host)) == 1) {
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		ia5 = NULL;
		if (sk_GENERAL_NAME_push(names, gn) > 0) {
			gn = NULL;
			ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names,
			         0, X509V3_ADD_DEFAULT) == 1;
		}
	}
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return ok;
}

static int
cert_set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = 0;

	if (bn != NULL &&
	    BN_rand(bn, CERT_SERIAL_BITS, BN_RAND_TOP_ANY,
	        BN_RAND_BOTTOM_ANY) == 1 &&
	    !BN_is_zero(bn))
		ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

/* Fills in and signs x for key; 0 or -1 with *step_r naming the step. */
static int
cert_build(X509 *x, EVP_PKEY *key, const char *host, enum tls_key_type type,
    int days, const char **step_r)
{
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX v3;

	*step_r = "serial number";
	if (X509_set_version(x, X509_VERSION_3) != 1 || !cert_set_serial(x))
		return -1;
	*step_r = "validity";
	if (X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
		return -1;
	*step_r = "subject";
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	        (const unsigned char *)host, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1)
		return -1;
	*step_r = "extensions";
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (!cert_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    !cert_add_ext(x, &v3, NID_key_usage,
	        type == TLS_KEY_RSA
	            ? "critical,digitalSignature,keyEncipherment"
	            : "critical,digitalSignature") ||
	    !cert_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") ||
	    !cert_add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
	    !cert_add_san(x, host))
		return -1;
	*step_r = "signature";
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		return -1;
	return 0;
}

/* PEM of the key or the cert through file_write_atomic. The key's PEM
 * sits in a secure-memory BIO, cleared when freed. */
static int
cert_write(const char *path, EVP_PKEY *key, X509 *x, const char **error_r)
{
	const char *file_error;
	BIO *bio = BIO_new(key != NULL ? BIO_s_secmem() : BIO_s_mem());
	char *data;
	long len;
	int ok;

	if (bio == NULL)
		return tls_fail(error_r, "%s", path);
	if (key != NULL)
		ok = PEM_write_bio_PrivateKey(
		         bio, key, NULL, NULL, 0, NULL, NULL) == 1;
	else
		ok = PEM_write_bio_X509(bio, x) == 1;
	len = BIO_get_mem_data(bio, &data);
	if (!ok || len <= 0) {
		BIO_free(bio);
		return tls_fail(error_r, "%s: PEM encoding", path);
	}
	if (file_write_atomic(path, data, (size_t)len,
	        key != NULL ? CERT_KEY_MODE : CERT_CERT_MODE, (uid_t)-1,
	        (gid_t)-1, &file_error) < 0) {
		BIO_free(bio);
		return tls_fail(error_r, "%s", file_error);
	}
	BIO_free(bio);
	return 0;
}

int
tls_make_self_signed(const char *cert_path, const char *key_path,
    const char *hostname, enum tls_key_type type, int days,
    const char **error_r)
{
	const char *step = "allocation";
	EVP_PKEY *key;
	X509 *x;
	int ret;

	if (!cert_hostname_ok(hostname))
		return tls_fail(error_r,
		    "host name \"%s\": not a DNS name of 1 to %d characters",
		    hostname, TLS_CN_MAX);
	if (days <= 0 || days > CERT_DAYS_MAX)
		return tls_fail(error_r, "validity of %d days: 1 to %d allowed",
		    days, CERT_DAYS_MAX);
	if (type != TLS_KEY_RSA && type != TLS_KEY_EC)
		return tls_fail(error_r, "unknown key type %d", (int)type);
	ERR_clear_error();
	key = cert_make_key(type);
	if (key == NULL)
		return tls_fail(error_r, "key generation");
	x = X509_new();
	if (x == NULL || cert_build(x, key, hostname, type, days, &step) < 0)
		ret = tls_fail(error_r, "certificate %s", step);
	else if (cert_write(key_path, key, NULL, error_r) < 0 ||
	         cert_write(cert_path, NULL, x, error_r) < 0)
		ret = -1;
	else
		ret = 0;
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}
