/* SPDX-License-Identifier: MIT */
/*
 * Server contexts: certificates and keys read once (as root, before the
 * privilege drop), protocol and cipher settings, the SNI hook, and
 * session resumption that works across the processes of a service.
 *
 * A service runs as many processes, each with its own context, and a
 * client comes back to whichever one accepts it; a per-process session
 * cache would miss almost every time, so it is off and resumption rests
 * on stateless session tickets (RFC 5077 for TLS 1.2, RFC 8446 4.6.1 for
 * TLS 1.3). Their keys are not random per process but derived from a
 * secret shared by the service and the current time window, so every
 * process encrypts and decrypts alike and keys still rotate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/bytes.h"
#include "tls/tls_int.h"

/* Sizes OpenSSL's ticket callback works with (SSL_CTX_set_tlsext_
 * ticket_key_evp_cb(3)): a 16-byte key name, then our AES-256-CBC key and
 * HMAC-SHA256 key. */
#define TICKET_NAME_LEN     16
#define TICKET_AES_LEN      32
#define TICKET_HMAC_LEN     32
#define TICKET_HASH_LEN     32 /* SHA-256 output */
/* The AES block; OpenSSL's iv buffer holds EVP_MAX_IV_LENGTH. */
#define TICKET_IV_LEN       16
/* Windows whose tickets are accepted: the current and the previous one. */
#define TICKET_WINDOWS      2
/* The 64-bit window number follows the label in the HMAC input. */
#define TICKET_WINDOW_BYTES 8
#define TICKET_LABEL_MAX    32

/* Return values of the ticket callback on decryption. */
#define TICKET_UNKNOWN 0 /* not ours (any more): full handshake */
#define TICKET_OK      1
#define TICKET_RENEW   2 /* accepted; issue a fresh one */

/* Labels keep the three keys of a window independent. */
#define TICKET_LABEL_NAME "tern ticket key name"
#define TICKET_LABEL_AES  "tern ticket aes-256-cbc key"
#define TICKET_LABEL_HMAC "tern ticket hmac-sha256 key"
_Static_assert(sizeof(TICKET_LABEL_NAME) - 1 <= TICKET_LABEL_MAX &&
                   sizeof(TICKET_LABEL_AES) - 1 <= TICKET_LABEL_MAX &&
                   sizeof(TICKET_LABEL_HMAC) - 1 <= TICKET_LABEL_MAX,
    "ticket labels fit the HMAC input");

/* Binds tickets to tern's server contexts (SSL_CTX_set_session_id_context
 * (3)); resumption with client certificates needs it set. */
#define SESSION_ID_CONTEXT "tern"

struct ticket_keys {
	unsigned char name[TICKET_NAME_LEN];
	unsigned char aes[TICKET_AES_LEN];
	unsigned char hmac[TICKET_HMAC_LEN];
};

/* The keys of the last windows derived, so that each is derived once per
 * window (three HMACs) rather than for every ticket. */
struct tls_ticket_cache {
	struct {
		int valid;
		uint64_t window;
		struct ticket_keys keys;
	} slot[TICKET_WINDOWS];
};

/* HMAC-SHA256(secret, label || window) into out (TICKET_HASH_LEN). */
static int
ticket_hmac(const struct tls_server *srv, const char *label, uint64_t window,
    unsigned char *out)
{
	unsigned char msg[TICKET_LABEL_MAX + TICKET_WINDOW_BYTES];
	size_t len = strlen(label);
	unsigned int outlen = 0;

	memcpy(msg, label, len);
	bytes_put_be32(msg + len, (uint32_t)(window >> 32));
	bytes_put_be32(msg + len + TICKET_WINDOW_BYTES / 2, (uint32_t)window);
	if (HMAC(EVP_sha256(), srv->ticket_secret, (int)srv->ticket_secret_len,
	        msg, len + TICKET_WINDOW_BYTES, out, &outlen) == NULL ||
	    outlen != TICKET_HASH_LEN)
		return -1;
	return 0;
}

/* The three keys of window, computed. */
static int
ticket_compute(
    const struct tls_server *srv, uint64_t window, struct ticket_keys *keys_r)
{
	unsigned char name[TICKET_HASH_LEN];
	int ok;

	ok = ticket_hmac(srv, TICKET_LABEL_NAME, window, name) == 0 &&
	     ticket_hmac(srv, TICKET_LABEL_AES, window, keys_r->aes) == 0 &&
	     ticket_hmac(srv, TICKET_LABEL_HMAC, window, keys_r->hmac) == 0;
	memcpy(keys_r->name, name, sizeof(keys_r->name));
	OPENSSL_cleanse(name, sizeof(name));
	return ok ? 0 : -1;
}

/* The three keys of window, from the cache when they were derived. */
static int
ticket_derive(
    const struct tls_server *srv, uint64_t window, struct ticket_keys *keys_r)
{
	struct tls_ticket_cache *c = srv->ticket_cache;
	size_t i = (size_t)(window % TICKET_WINDOWS);

	if (c == NULL)
		return ticket_compute(srv, window, keys_r);
	if (!c->slot[i].valid || c->slot[i].window != window) {
		c->slot[i].valid = 0;
		if (ticket_compute(srv, window, &c->slot[i].keys) < 0)
			return -1;
		c->slot[i].window = window;
		c->slot[i].valid = 1;
	}
	*keys_r = c->slot[i].keys;
	return 0;
}

static int
ticket_mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(
	    OSSL_MAC_PARAM_KEY, key, TICKET_HMAC_LEN);
	params[1] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

static int
ticket_encrypt(const struct tls_server *srv, uint64_t window,
    unsigned char *key_name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx)
{
	struct ticket_keys keys;
	int ok;

	ok = ticket_derive(srv, window, &keys) == 0 &&
	     RAND_bytes(iv, TICKET_IV_LEN) == 1 &&
	     EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, keys.aes, iv) ==
	         1 &&
	     ticket_mac_init(hctx, keys.hmac) == 0;
	memcpy(key_name, keys.name, TICKET_NAME_LEN);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return ok ? TICKET_OK : -1;
}

/* Finds the keys by the ticket's key name among the accepted windows. */
static int
ticket_decrypt(const struct tls_server *srv, uint64_t window,
    const unsigned char *key_name, const unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
	struct ticket_keys keys;
	int age, ret = TICKET_UNKNOWN;

	for (age = 0; age < TICKET_WINDOWS && (uint64_t)age <= window; age++) {
		if (ticket_derive(srv, window - (uint64_t)age, &keys) < 0) {
			ret = -1;
			break;
		}
		if (CRYPTO_memcmp(key_name, keys.name, TICKET_NAME_LEN) != 0)
			continue;
		if (EVP_DecryptInit_ex(
		        cctx, EVP_aes_256_cbc(), NULL, keys.aes, iv) == 1 &&
		    ticket_mac_init(hctx, keys.hmac) == 0)
			ret = age == 0 ? TICKET_OK : TICKET_RENEW;
		else
			ret = -1;
		break;
	}
	OPENSSL_cleanse(&keys, sizeof(keys));
	return ret;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb). */
static int
ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_conn *conn = SSL_get_app_data(ssl);
	const struct tls_server *srv = conn->srv;
	uint64_t window = (uint64_t)time(NULL) / srv->ticket_lifetime;

	if (enc)
		return ticket_encrypt(srv, window, key_name, iv, cctx, hctx);
	return ticket_decrypt(srv, window, key_name, iv, cctx, hctx);
}

/*
 * Records the name the client asked for. This is where a certificate
 * would be chosen by name (SSL_set_SSL_CTX); every name gets the default
 * one for now.
 */
static int
server_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_conn *conn = SSL_get_app_data(ssl);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	(void)arg;
	if (conn != NULL && name != NULL)
		snprintf(conn->sni, sizeof(conn->sni), "%s", name);
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Loads one cert/key pair into ctx. OpenSSL keeps one pair per key type;
 * other_type is the key type of a pair loaded before (EVP_PKEY_NONE for
 * none), which this one must not replace. *type_r is this pair's type.
 */
static int
server_load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file,
    int other_type, int *type_r, const char **error_r)
{
	EVP_PKEY *key;
	X509 *cert;
	BIO *bio;
	int ok;

	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		return tls_fail(error_r, "cert file %s", cert_file);
	cert = SSL_CTX_get0_certificate(ctx);
	if (cert == NULL || X509_get0_pubkey(cert) == NULL)
		return tls_fail(
		    error_r, "cert file %s: no public key", cert_file);
	*type_r = EVP_PKEY_get_base_id(X509_get0_pubkey(cert));
	if (*type_r == other_type)
		return tls_fail(error_r,
		    "cert file %s: the other pair has the same key type (%s)",
		    cert_file, OBJ_nid2sn(*type_r));
	bio = BIO_new_file(key_file, "r");
	if (bio == NULL)
		return tls_fail(error_r, "key file %s", key_file);
	key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_password, NULL);
	BIO_free(bio);
	if (key == NULL)
		return tls_fail(error_r, "key file %s", key_file);
	if (X509_check_private_key(cert, key) != 1) {
		EVP_PKEY_free(key);
		return tls_fail(error_r,
		    "key file %s does not match cert file %s", key_file,
		    cert_file);
	}
	ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
	     SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(key);
	if (!ok)
		return tls_fail(error_r, "key file %s", key_file);
	return 0;
}

static int
server_setup(struct tls_server *srv, const struct tls_server_config *cfg,
    const char **error_r)
{
	SSL_CTX *ctx = srv->ctx;
	const char *ciphers;
	int type = EVP_PKEY_NONE, ectype;

	if (tls_ctx_setup(ctx, cfg->protocols, error_r) < 0)
		return -1;
	/* Our cipher order, not the client's (TLS 1.2). */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* DHE suites get a group matching the certificate's strength. */
	SSL_CTX_set_dh_auto(ctx, 1);
	ciphers = cfg->ciphers != NULL && cfg->ciphers[0] != '\0'
	              ? cfg->ciphers
	              : TLS_CIPHERS_DEFAULT;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
		return tls_fail(error_r, "ciphers \"%s\"", ciphers);
	if (cfg->ciphersuites != NULL && cfg->ciphersuites[0] != '\0' &&
	    SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
		return tls_fail(
		    error_r, "ciphersuites \"%s\"", cfg->ciphersuites);
	if (server_load_pair(ctx, cfg->cert_file, cfg->key_file, EVP_PKEY_NONE,
	        &type, error_r) < 0)
		return -1;
	if (cfg->eccert_file != NULL &&
	    server_load_pair(ctx, cfg->eccert_file, cfg->eckey_file, type,
	        &ectype, error_r) < 0)
		return -1;

	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_session_id_context(ctx,
	        (const unsigned char *)SESSION_ID_CONTEXT,
	        sizeof(SESSION_ID_CONTEXT) - 1) != 1)
		return tls_fail(error_r, "session id context");
	if (srv->ticket_secret != NULL) {
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
		if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
			return tls_fail(error_r, "session tickets");
		/* One TLS 1.3 ticket per handshake (OpenSSL sends two): a
		 * mail client resumes one connection at a time. */
		if (SSL_CTX_set_num_tickets(ctx, 1) != 1)
			return tls_fail(error_r, "session tickets");
		srv->ticket_cache = xcalloc(1, sizeof(*srv->ticket_cache));
		/* A resumed session is never older than a ticket lives. */
		SSL_CTX_set_timeout(ctx, (long)srv->ticket_lifetime);
	} else {
		/*
		 * No tickets of either kind: TLS 1.3 with SSL_OP_NO_TICKET
		 * alone would issue stateful tickets for the cache that is
		 * off, which no client could ever use.
		 */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
			return tls_fail(error_r, "session tickets");
	}
	if (SSL_CTX_set_tlsext_servername_callback(ctx, server_sni_cb) != 1)
		return tls_fail(error_r, "servername callback");
	return 0;
}

int
tls_server_create(const struct tls_server_config *cfg,
    struct tls_server **srv_r, const char **error_r)
{
	struct tls_server *srv;

	*srv_r = NULL;
	if (cfg == NULL || cfg->cert_file == NULL || cfg->key_file == NULL ||
	    cfg->cert_file[0] == '\0' || cfg->key_file[0] == '\0')
		return tls_fail(error_r,
		    "no certificate: a cert file and a key file are required");
	if ((cfg->eccert_file == NULL) != (cfg->eckey_file == NULL) ||
	    (cfg->eccert_file != NULL &&
	        (cfg->eccert_file[0] == '\0' || cfg->eckey_file[0] == '\0')))
		return tls_fail(error_r,
		    "second pair: needs both a cert file and a key file");
	if (cfg->ticket_secret != NULL &&
	    cfg->ticket_secret_len < TLS_TICKET_SECRET_MIN)
		return tls_fail(error_r,
		    "ticket secret of %zu bytes: at least %d are required",
		    cfg->ticket_secret_len, TLS_TICKET_SECRET_MIN);
	if (cfg->ticket_lifetime > TLS_TICKET_LIFETIME_MAX)
		return tls_fail(error_r,
		    "ticket lifetime of %u seconds: at most %d are allowed",
		    cfg->ticket_lifetime, TLS_TICKET_LIFETIME_MAX);

	srv = xcalloc(1, sizeof(*srv));
	ERR_clear_error();
	srv->ctx = SSL_CTX_new(TLS_server_method());
	if (srv->ctx == NULL) {
		tls_fail(error_r, "SSL_CTX_new");
		tls_server_free(&srv);
		return -1;
	}
	if (cfg->ticket_secret != NULL) {
		srv->ticket_secret = xmalloc(cfg->ticket_secret_len);
		memcpy(srv->ticket_secret, cfg->ticket_secret,
		    cfg->ticket_secret_len);
		srv->ticket_secret_len = cfg->ticket_secret_len;
		srv->ticket_lifetime = cfg->ticket_lifetime != 0
		                           ? cfg->ticket_lifetime
		                           : TLS_TICKET_LIFETIME_DEFAULT;
	}
	if (server_setup(srv, cfg, error_r) < 0) {
		tls_server_free(&srv);
		return -1;
	}
	*srv_r = srv;
	return 0;
}

void
tls_server_free(struct tls_server **srv_r)
{
	struct tls_server *srv = *srv_r;

	if (srv == NULL)
		return;
	SSL_CTX_free(srv->ctx);
	if (srv->ticket_secret != NULL) {
		OPENSSL_cleanse(srv->ticket_secret, srv->ticket_secret_len);
		free(srv->ticket_secret);
	}
	if (srv->ticket_cache != NULL) {
		OPENSSL_cleanse(srv->ticket_cache, sizeof(*srv->ticket_cache));
		free(srv->ticket_cache);
	}
	free(srv);
	*srv_r = NULL;
}

size_t
tls_ticket_secret_from_env(unsigned char *out, size_t max)
{
	const char *hex = getenv(TLS_TICKET_ENV);
	size_t n = 0;
	unsigned hi, lo;

	if (hex == NULL)
		return 0;
	for (; hex[0] != '\0' && hex[1] != '\0' && n < max; hex += 2) {
		hi = (unsigned)(hex[0] <= '9' ? hex[0] - '0'
		                              : hex[0] - 'a' + 10);
		lo = (unsigned)(hex[1] <= '9' ? hex[1] - '0'
		                              : hex[1] - 'a' + 10);
		if (hi > 15 || lo > 15)
			return 0;
		out[n++] = (unsigned char)(hi << 4 | lo);
	}
	return n;
}
