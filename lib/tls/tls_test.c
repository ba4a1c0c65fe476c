/* SPDX-License-Identifier: MIT */
/*
 * Tests for lib/tls over socketpairs, without a network: certificates
 * made by tls_make_self_signed in a scratch directory; client and server
 * streams driven non-blocking in one thread, turn about, for a bounded
 * number of turns (and the blocking stream calls from two threads, with
 * deadlines); session resumption across server contexts that share a
 * ticket secret; refusals (old protocols, wrong keys, wrong names); peers
 * that vanish. A raw OpenSSL client stands in where tern's client cannot
 * (TLS 1.1, restricted signature algorithms).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/file.h"
#include "base/stream.h"
#include "tls/tls.h"
#include "unit.h"

#define HOST              "mail.example.test"
#define OTHER_HOST        "other.example.test"
#define CERT_DAYS         30
#define TURNS_MAX         20000 /* driven steps; a working exchange needs < 100 */
#define LINE_MAX_TEST     1000
#define BIG_LEN           (200 * 1024) /* more than 12 TLS records */
#define IN_MAX            (1024 * 1024)
#define TEST_TIMEOUT      5000 /* ms; only hit when the code is broken */
#define SHORT_TIMEOUT     100
#define SECRET_LEN        32
#define RECORD_MAX        16384 /* TLS plaintext record limit, RFC 8446 5.1 */
#define SMALL_LINE_LEN    100
/* The resumption-across-windows case waits for a window boundary. */
#define WINDOW_LIFETIME   4
#define WAIT_STEP_US      20000
#define WAIT_MAX_STEPS    500 /* 10 s at WAIT_STEP_US */
#define KEY_MODE          0600
#define CERT_MODE         0644
#define MODE_BITS         07777
#define MIN_CIPHER_BITS   128
/* A random 159-bit serial takes 20 octets; more than 8 rules out a
 * counter or a timestamp. */
#define MIN_SERIAL_OCTETS 9
#define JUNK_TEXT         "not a PEM file\n"
#define PLAIN_EHLO        "EHLO x\r\n"
#define VERSION_PREFIX    "OpenSSL "

struct fixture {
	char dir[PATH_MAX];
	char *rsa_cert, *rsa_key, *ec_cert, *ec_key, *rsa2_cert, *rsa2_key;
	char *junk;
	int made;
};

static struct fixture fx;

static void
fixture_cleanup(void)
{
	char **paths[] = {&fx.rsa_cert, &fx.rsa_key, &fx.ec_cert, &fx.ec_key,
	    &fx.rsa2_cert, &fx.rsa2_key, &fx.junk};
	size_t i;

	if (fx.dir[0] != '\0')
		unit_rmtree(fx.dir);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		free(*paths[i]);
		*paths[i] = NULL;
	}
}

static void
make_pair(char **cert_r, char **key_r, const char *name, enum tls_key_type type)
{
	const char *error = NULL;

	*cert_r = xasprintf("%s/%s.crt", fx.dir, name);
	*key_r = xasprintf("%s/%s.key", fx.dir, name);
	if (tls_make_self_signed(
	        *cert_r, *key_r, HOST, type, CERT_DAYS, &error) < 0) {
		printf("# tls_make_self_signed %s: %s\n", name, error);
		abort();
	}
}

/* The certificates every case uses, made once. */
static void
fixture(void)
{
	int fd;

	if (fx.made)
		return;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/tls_test.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		abort();
	atexit(fixture_cleanup);
	make_pair(&fx.rsa_cert, &fx.rsa_key, "rsa", TLS_KEY_RSA);
	make_pair(&fx.ec_cert, &fx.ec_key, "ec", TLS_KEY_EC);
	make_pair(&fx.rsa2_cert, &fx.rsa2_key, "rsa2", TLS_KEY_RSA);
	fx.junk = xasprintf("%s/junk.pem", fx.dir);
	fd = open(fx.junk, O_WRONLY | O_CREAT | O_EXCL, CERT_MODE);
	if (fd < 0 || file_write_all(fd, JUNK_TEXT, strlen(JUNK_TEXT)) < 0)
		abort();
	close(fd);
	fx.made = 1;
}

static const unsigned char secret_a[SECRET_LEN] =
    "0123456789abcdef0123456789abcdef";
static const unsigned char secret_b[SECRET_LEN] =
    "fedcba9876543210fedcba9876543210";

static void
server_config(struct tls_server_config *cfg, const char *protocols,
    const unsigned char *secret)
{
	fixture();
	memset(cfg, 0, sizeof(*cfg));
	cfg->cert_file = fx.rsa_cert;
	cfg->key_file = fx.rsa_key;
	cfg->protocols = protocols;
	cfg->ticket_secret = secret;
	cfg->ticket_secret_len = secret != NULL ? SECRET_LEN : 0;
}

static struct tls_server *
server_new(const struct tls_server_config *cfg)
{
	struct tls_server *srv = NULL;
	const char *error = NULL;

	if (tls_server_create(cfg, &srv, &error) < 0) {
		printf("#   tls_server_create: %s\n", error);
		CHECK(srv != NULL);
	}
	CHECK(ERR_peek_error() == 0);
	return srv;
}

static struct tls_client *
client_new(const char *ca_file, int verify, const char *protocols)
{
	struct tls_client_config cfg = {ca_file, verify, protocols};
	struct tls_client *cli = NULL;
	const char *error = NULL;

	if (tls_client_create(&cfg, &cli, &error) < 0) {
		printf("#   tls_client_create: %s\n", error);
		CHECK(cli != NULL);
	}
	return cli;
}

/* A connected pair of streams: c on sv[0], s on sv[1]. */
struct conn {
	int sv[2];
	struct stream c, s;
};

static void
conn_open(struct conn *cn)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, cn->sv) < 0 ||
	    file_set_nonblock(cn->sv[0], 1) < 0 ||
	    file_set_nonblock(cn->sv[1], 1) < 0)
		abort();
	stream_init(&cn->c, cn->sv[0]);
	stream_init(&cn->s, cn->sv[1]);
}

static void
conn_tls(struct conn *cn, struct tls_client *cli, const char *name,
    struct tls_server *srv)
{
	conn_open(cn);
	tls_stream_client(&cn->c, cli, name);
	tls_stream_server(&cn->s, srv);
}

static void
conn_close(struct conn *cn)
{
	stream_close(&cn->c);
	stream_close(&cn->s);
	CHECK(ERR_peek_error() == 0);
}

/* One stream of a driven exchange: what came in, what is expected. */
struct side {
	struct stream *st;
	struct buf in;
	size_t want;
	enum stream_result r; /* STREAM_OK until EOF or ERROR */
	int err;              /* errno of an ERROR */
};

static void
side_init(struct side *sd, struct stream *st, size_t want)
{
	sd->st = st;
	buf_init(&sd->in, IN_MAX);
	sd->want = want;
	sd->r = STREAM_OK;
	sd->err = 0;
}

/* One non-blocking turn: push pending output, take what arrived. */
static void
side_step(struct side *sd)
{
	enum stream_result r;
	const char *p;
	size_t len;

	if (sd->r != STREAM_OK)
		return;
	if (stream_unsent(sd->st) > 0 &&
	    stream_try_flush(sd->st) == STREAM_ERROR) {
		sd->r = STREAM_ERROR;
		sd->err = errno;
		return;
	}
	r = stream_fill(sd->st);
	if (r == STREAM_EOF || r == STREAM_ERROR) {
		sd->r = r;
		sd->err = r == STREAM_ERROR ? errno : 0;
	}
	p = stream_peek(sd->st, &len);
	if (len > 0) {
		if (buf_append(&sd->in, p, len) < 0)
			abort();
		stream_consume(sd->st, len);
	}
}

static int
side_done(const struct side *sd)
{
	return sd->r == STREAM_OK && stream_unsent(sd->st) == 0 &&
	       sd->in.len >= sd->want && tls_stream_handshake_done(sd->st);
}

/*
 * Alternates turns until both sides are done (returns 1), or both have
 * ended in EOF or ERROR, or TURNS_MAX passed (0).
 */
static int
drive(struct side *a, struct side *b)
{
	int i;

	for (i = 0; i < TURNS_MAX; i++) {
		side_step(a);
		side_step(b);
		if (side_done(a) && side_done(b))
			return 1;
		if (a->r != STREAM_OK && b->r != STREAM_OK)
			return 0;
	}
	printf("#   drive: no end after %d turns\n", TURNS_MAX);
	return 0;
}

static void
side_free(struct side *sd)
{
	buf_free(&sd->in);
}

/* A handshake and one line each way; 1 when all arrived intact. */
static int
exchange_lines(struct conn *cn)
{
	static const char to_s[] = "EHLO client.example.test\r\n";
	static const char to_c[] = "250 " HOST " at your service\r\n";
	struct side c, s;
	int ok;

	side_init(&c, &cn->c, sizeof(to_c) - 1);
	side_init(&s, &cn->s, sizeof(to_s) - 1);
	CHECK(stream_puts(&cn->c, to_s) == 0);
	CHECK(stream_puts(&cn->s, to_c) == 0);
	ok = drive(&c, &s);
	if (!ok)
		printf("#   exchange: client %d (%s), server %d (%s)\n",
		    (int)c.r,
		    tls_stream_error(&cn->c) ? tls_stream_error(&cn->c) : "-",
		    (int)s.r,
		    tls_stream_error(&cn->s) ? tls_stream_error(&cn->s) : "-");
	ok = ok && c.in.len == sizeof(to_c) - 1 &&
	     memcmp(c.in.data, to_c, c.in.len) == 0 &&
	     s.in.len == sizeof(to_s) - 1 &&
	     memcmp(s.in.data, to_s, s.in.len) == 0;
	side_free(&c);
	side_free(&s);
	return ok;
}

/* Drives a connection that must fail; returns the two sides' results. */
static void
expect_failure(
    struct conn *cn, enum stream_result *c_r, enum stream_result *s_r)
{
	struct side c, s;

	side_init(&c, &cn->c, 1);
	side_init(&s, &cn->s, 1);
	CHECK(drive(&c, &s) == 0);
	*c_r = c.r;
	*s_r = s.r;
	side_free(&c);
	side_free(&s);
}

static int
contains(const char *s, const char *part)
{
	if (s != NULL && strstr(s, part) != NULL)
		return 1;
	printf("#   \"%s\" does not contain \"%s\"\n", s ? s : "(null)", part);
	return 0;
}

/* Every name the scratch directory holds is a test file: no
 * temporary file survives tls_make_self_signed. */
static int
dir_has_temp_files(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	if (d == NULL)
		return 1;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".tmp.") != NULL)
			found = 1;
	}
	closedir(d);
	return found;
}

static X509 *
read_cert(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

static void
check_cert(const char *path, int key_base_id, int sig_nid, uint32_t ku)
{
	GENERAL_NAMES *sans;
	const GENERAL_NAME *gn;
	const ASN1_INTEGER *serial;
	char cn[TLS_CN_MAX + 1];
	int pday = 0, psec = 0;
	X509 *x = read_cert(path);

	CHECK(x != NULL);
	if (x == NULL)
		return;
	CHECK_INT(X509_get_version(x), X509_VERSION_3);
	CHECK_INT(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), key_base_id);
	if (key_base_id == EVP_PKEY_RSA)
		CHECK_INT(EVP_PKEY_get_bits(X509_get0_pubkey(x)), TLS_RSA_BITS);
	CHECK_INT(X509_get_signature_nid(x), sig_nid);
	CHECK(X509_verify(x, X509_get0_pubkey(x)) == 1); /* self-signed */
	CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	          NID_commonName, cn, sizeof(cn)) > 0);
	CHECK_STR(cn, HOST);
	CHECK(X509_NAME_cmp(
	          X509_get_subject_name(x), X509_get_issuer_name(x)) == 0);
	serial = X509_get0_serialNumber(x);
	CHECK(ASN1_STRING_length(serial) >= MIN_SERIAL_OCTETS);
	CHECK((ASN1_STRING_type(serial) & V_ASN1_NEG) == 0);
	/* CA:FALSE present, key usage and serverAuth as asked. */
	CHECK((X509_get_extension_flags(x) & EXFLAG_BCONS) != 0);
	CHECK((X509_get_extension_flags(x) & EXFLAG_CA) == 0);
	CHECK_INT(X509_get_key_usage(x), ku);
	CHECK_INT(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	CHECK(X509_check_host(x, HOST, 0, 0, NULL) == 1);
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	CHECK(sans != NULL && sk_GENERAL_NAME_num(sans) == 1);
	if (sans != NULL && sk_GENERAL_NAME_num(sans) == 1) {
		gn = sk_GENERAL_NAME_value(sans, 0);
		CHECK_INT(gn->type, GEN_DNS);
		CHECK_STR(
		    (const char *)ASN1_STRING_get0_data(gn->d.dNSName), HOST);
	}
	GENERAL_NAMES_free(sans);
	CHECK(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x),
	          X509_get0_notAfter(x)) == 1);
	CHECK_INT(pday, CERT_DAYS);
	CHECK(X509_cmp_current_time(X509_get0_notBefore(x)) <= 0);
	X509_free(x);
}

static void
test_self_signed(void)
{
	const char *error = NULL;
	struct stat sb;
	mode_t old_mask;
	X509 *a, *b;
	char *cert, *key;

	fixture();
	CHECK(
	    stat(fx.rsa_key, &sb) == 0 && (sb.st_mode & MODE_BITS) == KEY_MODE);
	CHECK(
	    stat(fx.ec_key, &sb) == 0 && (sb.st_mode & MODE_BITS) == KEY_MODE);
	CHECK(stat(fx.rsa_cert, &sb) == 0 &&
	      (sb.st_mode & MODE_BITS) == CERT_MODE);
	CHECK(stat(fx.ec_cert, &sb) == 0 &&
	      (sb.st_mode & MODE_BITS) == CERT_MODE);
	CHECK(!dir_has_temp_files(fx.dir));
	check_cert(fx.rsa_cert, EVP_PKEY_RSA, NID_sha256WithRSAEncryption,
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	check_cert(fx.ec_cert, EVP_PKEY_EC, NID_ecdsa_with_SHA256,
	    KU_DIGITAL_SIGNATURE);

	/* Serials are random. */
	a = read_cert(fx.rsa_cert);
	b = read_cert(fx.rsa2_cert);
	CHECK(a != NULL && b != NULL &&
	      ASN1_INTEGER_cmp(
	          X509_get0_serialNumber(a), X509_get0_serialNumber(b)) != 0);
	X509_free(a);
	X509_free(b);

	/* Rewriting keeps KEY_MODE whatever the umask, and replaces. */
	cert = xasprintf("%s/again.crt", fx.dir);
	key = xasprintf("%s/again.key", fx.dir);
	old_mask = umask(0);
	CHECK(
	    tls_make_self_signed(cert, key, HOST, TLS_KEY_EC, 1, &error) == 0);
	CHECK(
	    tls_make_self_signed(cert, key, HOST, TLS_KEY_EC, 1, &error) == 0);
	umask(old_mask);
	CHECK(stat(key, &sb) == 0 && (sb.st_mode & MODE_BITS) == KEY_MODE);
	CHECK(stat(cert, &sb) == 0 && (sb.st_mode & MODE_BITS) == CERT_MODE);
	CHECK(!dir_has_temp_files(fx.dir));

	/* Refusals. */
	CHECK(tls_make_self_signed(
	          cert, key, "bad host", TLS_KEY_RSA, 1, &error) < 0);
	CHECK(contains(error, "host name"));
	CHECK(tls_make_self_signed(cert, key, "", TLS_KEY_RSA, 1, &error) < 0);
	CHECK(tls_make_self_signed(cert, key,
	          "a-very-long-host-name-that-does-not-fit-into-a-common-name."
	          "example.test",
	          TLS_KEY_RSA, 1, &error) < 0);
	CHECK(tls_make_self_signed(
	          cert, key, "x,DNS:evil", TLS_KEY_RSA, 1, &error) < 0);
	CHECK(
	    tls_make_self_signed(cert, key, HOST, TLS_KEY_RSA, 0, &error) < 0);
	CHECK(contains(error, "days"));
	CHECK(tls_make_self_signed(cert, "/nonexistent/dir/x.key", HOST,
	          TLS_KEY_EC, 1, &error) < 0);
	CHECK(contains(error, "/nonexistent/dir/x.key"));
	CHECK(ERR_peek_error() == 0);
	free(cert);
	free(key);
}

/* tls_server_create must fail with an error containing each part. */
static void
expect_create_error(
    const struct tls_server_config *cfg, const char *part1, const char *part2)
{
	struct tls_server *srv = NULL;
	const char *error = NULL;

	CHECK(tls_server_create(cfg, &srv, &error) == -1);
	CHECK(srv == NULL);
	CHECK(contains(error, part1));
	if (part2 != NULL)
		CHECK(contains(error, part2));
	CHECK(ERR_peek_error() == 0);
}

static void
test_server_create_errors(void)
{
	struct tls_server_config cfg;
	char *missing;

	fixture();
	missing = xasprintf("%s/missing.pem", fx.dir);

	expect_create_error(NULL, "no certificate", NULL);
	server_config(&cfg, NULL, NULL);
	cfg.cert_file = NULL;
	expect_create_error(&cfg, "cert file", NULL);
	server_config(&cfg, NULL, NULL);
	cfg.key_file = "";
	expect_create_error(&cfg, "key file", NULL);

	server_config(&cfg, NULL, NULL);
	cfg.cert_file = missing;
	expect_create_error(&cfg, missing, "No such file");
	server_config(&cfg, NULL, NULL);
	cfg.key_file = missing;
	expect_create_error(&cfg, missing, "No such file");
	server_config(&cfg, NULL, NULL);
	cfg.cert_file = fx.junk;
	expect_create_error(&cfg, fx.junk, "no start line");
	server_config(&cfg, NULL, NULL);
	cfg.key_file = fx.junk;
	expect_create_error(&cfg, fx.junk, "key file");

	/* A key of the same type that is not the cert's, and one of the
	 * other type. */
	server_config(&cfg, NULL, NULL);
	cfg.key_file = fx.rsa2_key;
	expect_create_error(&cfg, "does not match", fx.rsa2_key);
	server_config(&cfg, NULL, NULL);
	cfg.key_file = fx.ec_key;
	expect_create_error(&cfg, "does not match", fx.rsa_cert);
	server_config(&cfg, NULL, NULL);
	cfg.eccert_file = fx.ec_cert;
	cfg.eckey_file = fx.rsa_key;
	expect_create_error(&cfg, "does not match", fx.ec_cert);

	/* Two pairs of one type would replace each other. */
	server_config(&cfg, NULL, NULL);
	cfg.eccert_file = fx.rsa2_cert;
	cfg.eckey_file = fx.rsa2_key;
	expect_create_error(&cfg, "same key type", fx.rsa2_cert);
	server_config(&cfg, NULL, NULL);
	cfg.eccert_file = fx.ec_cert;
	expect_create_error(&cfg, "second pair", NULL);

	server_config(&cfg, NULL, secret_a);
	cfg.ticket_secret_len = SECRET_LEN - 1;
	expect_create_error(&cfg, "ticket secret", NULL);
	server_config(&cfg, NULL, secret_a);
	cfg.ticket_lifetime = TLS_TICKET_LIFETIME_MAX + 1;
	expect_create_error(&cfg, "ticket lifetime", NULL);

	server_config(&cfg, "TLSv1.1", NULL);
	expect_create_error(&cfg, "TLSv1.1", "neither");
	server_config(&cfg, "TLSv1.2,!TLSv1.2", NULL);
	expect_create_error(&cfg, "neither", NULL);
	server_config(&cfg, "TLSv1.4", NULL);
	expect_create_error(&cfg, "unknown protocol", "TLSv1.4");
	server_config(&cfg, "=>TLSv1.2", NULL);
	expect_create_error(&cfg, "unknown protocol", NULL);
	server_config(&cfg, NULL, NULL);
	cfg.ciphers = "NO-SUCH-CIPHER";
	expect_create_error(&cfg, "ciphers", "NO-SUCH-CIPHER");
	server_config(&cfg, NULL, NULL);
	cfg.ciphersuites = "TLS_NO_SUCH_SUITE";
	expect_create_error(&cfg, "ciphersuites", NULL);
	free(missing);
}

static void
test_client_create_errors(void)
{
	struct tls_client_config cfg = {"/nonexistent/ca.pem", 1, NULL};
	struct tls_client *cli = NULL;
	const char *error = NULL;

	CHECK(tls_client_create(&cfg, &cli, &error) < 0);
	CHECK(cli == NULL);
	CHECK(contains(error, "/nonexistent/ca.pem"));
	cfg.ca_file = NULL;
	cfg.protocols = "SSLv3";
	CHECK(tls_client_create(&cfg, &cli, &error) < 0);
	CHECK(contains(error, "neither"));
	CHECK(ERR_peek_error() == 0);
	/* The frees are NULL-safe. */
	tls_client_free(&cli);
	tls_server_free(&(struct tls_server *){NULL});
	tls_session_free(&(struct tls_session *){NULL});
}

/* One handshake and a line each way, then the info of both sides. */
static void
run_handshake(const struct tls_server_config *cfg, const char *cli_protocols,
    const char *want_protocol)
{
	struct tls_server *srv = server_new(cfg);
	struct tls_client *cli = client_new(NULL, 0, cli_protocols);
	struct tls_info ci, si;
	struct conn cn;

	if (srv == NULL || cli == NULL)
		goto out;
	conn_tls(&cn, cli, HOST, srv);
	CHECK(tls_stream_info(&cn.c, &ci) == -1); /* not yet */
	CHECK(!tls_stream_handshake_done(&cn.s));
	CHECK(exchange_lines(&cn));
	CHECK(tls_stream_info(&cn.c, &ci) == 0);
	CHECK(tls_stream_info(&cn.s, &si) == 0);
	CHECK_STR(ci.protocol, want_protocol);
	CHECK_STR(si.protocol, want_protocol);
	CHECK(si.cipher[0] != '\0');
	CHECK_STR(ci.cipher, si.cipher);
	CHECK(si.bits >= MIN_CIPHER_BITS && si.alg_bits >= si.bits);
	CHECK_STR(si.sni, HOST);
	CHECK_STR(ci.sni, HOST);
	CHECK_STR(ci.peer_cn, HOST);
	CHECK_INT(ci.peer_verified, 0); /* self-signed, not trusted */
	CHECK_INT(ci.resumed, 0);
	CHECK_INT(si.resumed, 0);
	CHECK(tls_stream_error(&cn.c) == NULL);
	CHECK(tls_stream_error(&cn.s) == NULL);
	conn_close(&cn);
out:
	tls_server_free(&srv);
	tls_client_free(&cli);
	CHECK(srv == NULL && cli == NULL);
}

static void
test_handshake_rsa(void)
{
	struct tls_server_config cfg;

	server_config(&cfg, NULL, NULL);
	run_handshake(&cfg, NULL, "TLSv1.3");
	server_config(&cfg, "TLSv1.2", NULL);
	run_handshake(&cfg, NULL, "TLSv1.2");
	server_config(&cfg, "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3", NULL);
	run_handshake(&cfg, NULL, "TLSv1.2");
	server_config(&cfg, "<=TLSv1.2", NULL);
	run_handshake(&cfg, NULL, "TLSv1.2");
	server_config(&cfg, NULL, NULL);
	run_handshake(&cfg, "TLSv1.2", "TLSv1.2");
	server_config(&cfg, ">=TLSv1", NULL);
	run_handshake(&cfg, ">=TLSv1.3", "TLSv1.3");
	/* Ciphers of the config apply (TLS 1.2 and 1.3). */
	server_config(&cfg, "TLSv1.2", NULL);
	cfg.ciphers = "ECDHE-RSA-CHACHA20-POLY1305";
	run_handshake(&cfg, NULL, "TLSv1.2");
	server_config(&cfg, "TLSv1.3", NULL);
	cfg.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
	run_handshake(&cfg, NULL, "TLSv1.3");
}

static void
test_handshake_ecdsa(void)
{
	struct tls_server_config cfg;

	server_config(&cfg, NULL, NULL);
	cfg.cert_file = fx.ec_cert;
	cfg.key_file = fx.ec_key;
	run_handshake(&cfg, NULL, "TLSv1.3");
	cfg.protocols = "TLSv1.2";
	run_handshake(&cfg, NULL, "TLSv1.2");
	/* Both pairs, in either order. */
	server_config(&cfg, NULL, NULL);
	cfg.eccert_file = fx.ec_cert;
	cfg.eckey_file = fx.ec_key;
	run_handshake(&cfg, NULL, "TLSv1.3");
	cfg.cert_file = fx.ec_cert;
	cfg.key_file = fx.ec_key;
	cfg.eccert_file = fx.rsa_cert;
	cfg.eckey_file = fx.rsa_key;
	cfg.protocols = "TLSv1.2";
	run_handshake(&cfg, NULL, "TLSv1.2");
}

/* An OpenSSL client of the test's own, for what tern's client does not
 * do; it works the socket directly. */
struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
};

static void
raw_open(struct raw *rw, int fd, int min, int max, const char *sigalgs)
{
	rw->ctx = SSL_CTX_new(TLS_client_method());
	if (rw->ctx == NULL)
		abort();
	/* Old protocols need level 0 in OpenSSL 3. */
	SSL_CTX_set_security_level(rw->ctx, 0);
	if (SSL_CTX_set_min_proto_version(rw->ctx, min) != 1 ||
	    SSL_CTX_set_max_proto_version(rw->ctx, max) != 1 ||
	    SSL_CTX_set_cipher_list(rw->ctx, "DEFAULT:@SECLEVEL=0") != 1 ||
	    (sigalgs != NULL &&
	        SSL_CTX_set1_sigalgs_list(rw->ctx, sigalgs) != 1))
		abort();
	rw->ssl = SSL_new(rw->ctx);
	if (rw->ssl == NULL || SSL_set_fd(rw->ssl, fd) != 1)
		abort();
	SSL_set_connect_state(rw->ssl);
}

static void
raw_close(struct raw *rw)
{
	SSL_free(rw->ssl);
	SSL_CTX_free(rw->ctx);
	ERR_clear_error();
}

/* Handshakes rw against the server stream: 1 when both are done, 0 when
 * either failed; *s_r is the server's last result. */
static int
raw_drive(struct raw *rw, struct stream *s, enum stream_result *s_r)
{
	struct side sd;
	int i, r, raw_done = 0, err, ok = 0;

	side_init(&sd, s, 0);
	for (i = 0; i < TURNS_MAX; i++) {
		if (!raw_done) {
			r = SSL_do_handshake(rw->ssl);
			err = SSL_get_error(rw->ssl, r);
			if (r == 1)
				raw_done = 1;
			else if (err != SSL_ERROR_WANT_READ &&
			         err != SSL_ERROR_WANT_WRITE)
				break;
		}
		side_step(&sd);
		if (sd.r != STREAM_OK)
			break;
		if (raw_done && tls_stream_handshake_done(s)) {
			ok = 1;
			break;
		}
	}
	/* A failed raw side: let the server see its alert. */
	for (i = 0; !ok && sd.r == STREAM_OK && i < TURNS_MAX; i++)
		side_step(&sd);
	*s_r = sd.r;
	side_free(&sd);
	return ok;
}

/* A server with both pairs presents the one the client can check. */
static void
test_dual_pair_selection(void)
{
	static const struct {
		int version;
		const char *sigalgs;
		int key_id;
	} cases[] = {
	    {TLS1_3_VERSION, "ECDSA+SHA256", EVP_PKEY_EC},
	    {TLS1_3_VERSION, "RSA-PSS+SHA256", EVP_PKEY_RSA},
	    {TLS1_2_VERSION, "ECDSA+SHA256", EVP_PKEY_EC},
	    {TLS1_2_VERSION, "RSA+SHA256", EVP_PKEY_RSA},
	};
	struct tls_server_config cfg;
	struct tls_server *srv;
	enum stream_result sr;
	struct raw rw;
	struct conn cn;
	X509 *peer;
	size_t i;

	server_config(&cfg, NULL, NULL);
	cfg.eccert_file = fx.ec_cert;
	cfg.eckey_file = fx.ec_key;
	srv = server_new(&cfg);
	if (srv == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conn_open(&cn);
		tls_stream_server(&cn.s, srv);
		raw_open(&rw, cn.sv[0], cases[i].version, cases[i].version,
		    cases[i].sigalgs);
		CHECK(raw_drive(&rw, &cn.s, &sr) == 1);
		peer = SSL_get0_peer_certificate(rw.ssl);
		CHECK(peer != NULL);
		if (peer != NULL)
			CHECK_INT(EVP_PKEY_get_base_id(X509_get0_pubkey(peer)),
			    cases[i].key_id);
		raw_close(&rw);
		conn_close(&cn);
	}
	tls_server_free(&srv);
}

/* A client that offers nothing newer than TLS 1.1 is refused. */
static void
test_old_client_refused(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	struct tls_client *cli;
	enum stream_result sr, cr;
	struct raw rw;
	struct conn cn;

	server_config(&cfg, ">=TLSv1", NULL); /* asks for too much */
	srv = server_new(&cfg);
	if (srv == NULL)
		return;
	conn_open(&cn);
	tls_stream_server(&cn.s, srv);
	raw_open(&rw, cn.sv[0], TLS1_VERSION, TLS1_1_VERSION, NULL);
	CHECK(raw_drive(&rw, &cn.s, &sr) == 0);
	CHECK_INT(sr, STREAM_ERROR);
	CHECK(contains(tls_stream_error(&cn.s), "unsupported protocol"));
	CHECK(!tls_stream_handshake_done(&cn.s));
	CHECK(ERR_peek_error() == 0);
	/* The failure repeats, it does not reach OpenSSL again. */
	CHECK_INT(stream_fill(&cn.s), STREAM_ERROR);
	CHECK_INT(errno, EPROTO);
	raw_close(&rw);
	conn_close(&cn);
	tls_server_free(&srv);

	/* tern's client and server that share no version. */
	server_config(&cfg, "TLSv1.2", NULL);
	srv = server_new(&cfg);
	cli = client_new(NULL, 0, "TLSv1.3");
	if (srv != NULL && cli != NULL) {
		conn_tls(&cn, cli, HOST, srv);
		expect_failure(&cn, &cr, &sr);
		CHECK_INT(cr, STREAM_ERROR);
		CHECK_INT(sr, STREAM_ERROR);
		CHECK(tls_stream_error(&cn.c) != NULL);
		CHECK(contains(tls_stream_error(&cn.s), "protocol"));
		conn_close(&cn);
	}
	tls_server_free(&srv);
	tls_client_free(&cli);
}

/* A TLS 1.2 client that asks to renegotiate is told no. */
static void
test_no_renegotiation(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	enum stream_result sr;
	struct side sd;
	struct raw rw;
	struct conn cn;
	int i, r = 0, err = SSL_ERROR_NONE;

	server_config(&cfg, "TLSv1.2", NULL);
	srv = server_new(&cfg);
	if (srv == NULL)
		return;
	conn_open(&cn);
	tls_stream_server(&cn.s, srv);
	raw_open(&rw, cn.sv[0], TLS1_2_VERSION, TLS1_2_VERSION, NULL);
	CHECK(raw_drive(&rw, &cn.s, &sr) == 1);
	CHECK(SSL_renegotiate(rw.ssl) == 1);
	side_init(&sd, &cn.s, 0);
	for (i = 0; i < TURNS_MAX; i++) {
		r = SSL_do_handshake(rw.ssl);
		err = SSL_get_error(rw.ssl, r);
		if (r == 1 ||
		    (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE))
			break;
		side_step(&sd);
	}
	CHECK(r != 1);
	CHECK_INT(err, SSL_ERROR_SSL);
	CHECK_INT(ERR_GET_REASON(ERR_peek_error()), SSL_R_NO_RENEGOTIATION);
	side_free(&sd);
	raw_close(&rw);
	conn_close(&cn);
	tls_server_free(&srv);
}

/* Large data both ways at once, many records each. */
static void
test_large_transfer(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	struct tls_client *cli;
	struct side c, s;
	struct conn cn;
	char *up, *down;
	size_t i;

	server_config(&cfg, NULL, NULL);
	srv = server_new(&cfg);
	cli = client_new(NULL, 0, NULL);
	up = xmalloc(BIG_LEN);
	down = xmalloc(BIG_LEN);
	for (i = 0; i < BIG_LEN; i++) {
		up[i] = (char)(i * 7 + i / 251);
		down[i] = (char)(i * 13 + i / 241);
	}
	conn_tls(&cn, cli, HOST, srv);
	CHECK(stream_write(&cn.c, up, BIG_LEN) == 0);
	CHECK(stream_write(&cn.s, down, BIG_LEN) == 0);
	side_init(&c, &cn.c, BIG_LEN);
	side_init(&s, &cn.s, BIG_LEN);
	CHECK(drive(&c, &s));
	CHECK(c.in.len == BIG_LEN && memcmp(c.in.data, down, BIG_LEN) == 0);
	CHECK(s.in.len == BIG_LEN && memcmp(s.in.data, up, BIG_LEN) == 0);
	side_free(&c);
	side_free(&s);
	conn_close(&cn);
	free(up);
	free(down);
	tls_server_free(&srv);
	tls_client_free(&cli);
}

/* Plaintext decoded but not yet taken counts as input that is ready. */
static void
test_pending(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	struct tls_client *cli;
	struct conn cn;
	char *record;
	int i;

	server_config(&cfg, NULL, NULL);
	srv = server_new(&cfg);
	cli = client_new(NULL, 0, NULL);
	conn_tls(&cn, cli, HOST, srv);
	CHECK(exchange_lines(&cn));
	/* Two records: a small one, then a full one. */
	record = xmalloc(RECORD_MAX);
	memset(record, 'x', RECORD_MAX);
	CHECK(stream_write(&cn.s, record, SMALL_LINE_LEN) == 0);
	CHECK_INT(stream_try_flush(&cn.s), STREAM_OK);
	CHECK(stream_write(&cn.s, record, RECORD_MAX) == 0);
	CHECK_INT(stream_try_flush(&cn.s), STREAM_OK);
	/* The first fill takes the small record; the second cannot take
	 * all of the big one, so the rest waits decoded in OpenSSL. */
	CHECK_INT(stream_fill(&cn.c), STREAM_OK);
	CHECK_INT(stream_buffered(&cn.c), SMALL_LINE_LEN);
	CHECK_INT(stream_fill(&cn.c), STREAM_OK);
	CHECK_INT(stream_buffered(&cn.c), STREAM_RBUF_SIZE);
	stream_consume(&cn.c, STREAM_RBUF_SIZE);
	CHECK(stream_input_ready(&cn.c));
	CHECK_INT(stream_fill(&cn.c), STREAM_OK);
	CHECK_INT(stream_buffered(&cn.c), SMALL_LINE_LEN);
	stream_consume(&cn.c, SMALL_LINE_LEN);
	CHECK(!stream_input_ready(&cn.c));
	for (i = 0; i < 2; i++)
		CHECK_INT(stream_fill(&cn.c), STREAM_AGAIN);
	CHECK_INT(cn.c.read_want, STREAM_WANT_READ);
	free(record);
	conn_close(&cn);
	tls_server_free(&srv);
	tls_client_free(&cli);
}

static void
test_info_without_tls(void)
{
	struct tls_info info;
	struct stream st;

	stream_init(&st, -1);
	CHECK(tls_stream_info(&st, &info) == -1);
	CHECK(!tls_stream_handshake_done(&st));
	CHECK(tls_stream_error(&st) == NULL);
	CHECK(tls_stream_session_get(&st) == NULL);
	tls_stream_session_set(&st, NULL);
	stream_free(&st);
	CHECK(strncmp(tls_library_version(), VERSION_PREFIX,
	          strlen(VERSION_PREFIX)) == 0);
}

/*
 * One connection: lines both ways, offering *offer when not NULL; stores
 * the new session in *got_r (may be NULL) and whether it was resumed.
 */
static int
connect_once(struct tls_client *cli, struct tls_server *srv,
    struct tls_session *offer, struct tls_session **got_r, int *resumed_r)
{
	struct tls_info ci, si;
	struct conn cn;
	int ok;

	conn_tls(&cn, cli, HOST, srv);
	tls_stream_session_set(&cn.c, offer);
	ok = exchange_lines(&cn) && tls_stream_info(&cn.c, &ci) == 0 &&
	     tls_stream_info(&cn.s, &si) == 0;
	CHECK(ok);
	if (ok) {
		CHECK_INT(ci.resumed, si.resumed);
		CHECK_STR(si.sni, HOST);
		*resumed_r = si.resumed;
	}
	CHECK(tls_stream_session_get(&cn.s) == NULL); /* client side only */
	if (got_r != NULL)
		*got_r = tls_stream_session_get(&cn.c);
	conn_close(&cn);
	return ok;
}

static void
run_resumption(const char *protocols)
{
	struct tls_server_config cfg;
	struct tls_server *s1, *s2, *s3, *s4;
	struct tls_client *cli = client_new(NULL, 0, NULL);
	struct tls_session *sess = NULL, *sess2 = NULL, *none = NULL;
	int resumed = -1;

	/* Two processes of one service: separate contexts, one secret. */
	server_config(&cfg, protocols, secret_a);
	s1 = server_new(&cfg);
	s2 = server_new(&cfg);
	server_config(&cfg, protocols, secret_b);
	s3 = server_new(&cfg);
	server_config(&cfg, protocols, NULL);
	s4 = server_new(&cfg);
	if (s1 == NULL || s2 == NULL || s3 == NULL || s4 == NULL || cli == NULL)
		goto out;

	CHECK(connect_once(cli, s1, NULL, &sess, &resumed));
	CHECK_INT(resumed, 0);
	CHECK(sess != NULL);
	CHECK(connect_once(cli, s2, sess, &sess2, &resumed));
	CHECK_INT(resumed, 1);
	CHECK(sess2 != NULL);
	/* The first process takes the second one's ticket too. */
	CHECK(connect_once(cli, s1, sess2, NULL, &resumed));
	CHECK_INT(resumed, 1);
	/* Another secret: a full handshake, not a failure. */
	CHECK(connect_once(cli, s3, sess, NULL, &resumed));
	CHECK_INT(resumed, 0);
	/* No secret: no tickets, so nothing to resume. */
	CHECK(connect_once(cli, s4, NULL, &none, &resumed));
	CHECK_INT(resumed, 0);
	if (strcmp(protocols, "TLSv1.3") == 0)
		CHECK(none == NULL); /* not even a useless stateful one */
	if (none != NULL) {
		CHECK(connect_once(cli, s4, none, NULL, &resumed));
		CHECK_INT(resumed, 0);
	}
	CHECK(connect_once(cli, s4, sess, NULL, &resumed));
	CHECK_INT(resumed, 0);
out:
	tls_session_free(&sess);
	tls_session_free(&sess2);
	tls_session_free(&none);
	CHECK(sess == NULL);
	tls_server_free(&s1);
	tls_server_free(&s2);
	tls_server_free(&s3);
	tls_server_free(&s4);
	tls_client_free(&cli);
}

static void
test_resumption_tls13(void)
{
	run_resumption("TLSv1.3");
}

static void
test_resumption_tls12(void)
{
	run_resumption("TLSv1.2");
}

/* Waits until cond holds for time(NULL), at most WAIT_MAX_STEPS steps. */
static int
wait_for_second(int (*cond)(time_t, time_t), time_t arg)
{
	int i;

	for (i = 0; i < WAIT_MAX_STEPS; i++) {
		if (cond(time(NULL), arg))
			return 1;
		usleep(WAIT_STEP_US);
	}
	return 0;
}

static int
last_second_of_window(time_t now, time_t unused)
{
	(void)unused;
	return now % WINDOW_LIFETIME == WINDOW_LIFETIME - 1;
}

static int
window_passed(time_t now, time_t window)
{
	return now / WINDOW_LIFETIME > window;
}

/* A ticket of the previous key window is still taken, by another
 * process, and a fresh one is issued. */
static void
test_resumption_previous_window(void)
{
	struct tls_server_config cfg;
	struct tls_server *s1, *s2;
	struct tls_client *cli = client_new(NULL, 0, NULL);
	struct tls_session *sess = NULL, *renewed = NULL;
	int resumed = -1;
	time_t window;

	server_config(&cfg, "TLSv1.2", secret_a);
	cfg.ticket_lifetime = WINDOW_LIFETIME;
	s1 = server_new(&cfg);
	s2 = server_new(&cfg);
	if (s1 == NULL || s2 == NULL || cli == NULL)
		goto out;
	CHECK(wait_for_second(last_second_of_window, 0));
	window = time(NULL) / WINDOW_LIFETIME;
	CHECK(connect_once(cli, s1, NULL, &sess, &resumed));
	CHECK(wait_for_second(window_passed, window));
	CHECK(connect_once(cli, s2, sess, &renewed, &resumed));
	CHECK_INT(resumed, 1);
	CHECK(renewed != NULL);
	if (renewed != NULL) {
		CHECK(connect_once(cli, s1, renewed, NULL, &resumed));
		CHECK_INT(resumed, 1);
	}
out:
	tls_session_free(&sess);
	tls_session_free(&renewed);
	tls_server_free(&s1);
	tls_server_free(&s2);
	tls_client_free(&cli);
}

static void
test_verify(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	struct tls_client *good, *wrong_ca, *lax;
	enum stream_result cr, sr;
	struct tls_info ci, si;
	struct conn cn;

	server_config(&cfg, NULL, NULL);
	srv = server_new(&cfg);
	good = client_new(fx.rsa_cert, 1, NULL);
	wrong_ca = client_new(fx.ec_cert, 1, NULL);
	lax = client_new(fx.rsa_cert, 0, NULL);
	if (srv == NULL || good == NULL || wrong_ca == NULL || lax == NULL)
		goto out;

	/* The right name, trusted: verified. */
	conn_tls(&cn, good, HOST, srv);
	CHECK(exchange_lines(&cn));
	CHECK(tls_stream_info(&cn.c, &ci) == 0);
	CHECK_INT(ci.peer_verified, 1);
	CHECK_STR(ci.peer_cn, HOST);
	conn_close(&cn);

	/* A name the certificate does not carry. */
	conn_tls(&cn, good, OTHER_HOST, srv);
	expect_failure(&cn, &cr, &sr);
	CHECK_INT(cr, STREAM_ERROR);
	CHECK(contains(tls_stream_error(&cn.c), "hostname mismatch"));
	CHECK(sr == STREAM_ERROR || sr == STREAM_EOF);
	CHECK(!tls_stream_handshake_done(&cn.c));
	CHECK(tls_stream_info(&cn.c, &ci) == -1);
	/* Writes after the failure fail too. */
	CHECK(stream_puts(&cn.c, "QUIT\r\n") == 0);
	CHECK_INT(stream_try_flush(&cn.c), STREAM_ERROR);
	CHECK_INT(errno, EPROTO);
	conn_close(&cn);

	/* An address is checked as an address, and not sent as SNI. */
	conn_tls(&cn, good, "127.0.0.1", srv);
	expect_failure(&cn, &cr, &sr);
	CHECK_INT(cr, STREAM_ERROR);
	CHECK(contains(tls_stream_error(&cn.c), "IP address mismatch"));
	conn_close(&cn);
	conn_tls(&cn, lax, "127.0.0.1", srv);
	CHECK(exchange_lines(&cn));
	CHECK(tls_stream_info(&cn.s, &si) == 0);
	CHECK_STR(si.sni, "");
	CHECK(tls_stream_info(&cn.c, &ci) == 0);
	CHECK_INT(ci.peer_verified, 0);
	conn_close(&cn);

	/* No name to check against. */
	conn_tls(&cn, good, NULL, srv);
	CHECK_INT(stream_fill(&cn.c), STREAM_ERROR);
	CHECK_INT(errno, EPROTO);
	CHECK(contains(tls_stream_error(&cn.c), "no server name"));
	conn_close(&cn);

	/* A chain that does not lead to the trusted certificate. */
	conn_tls(&cn, wrong_ca, HOST, srv);
	expect_failure(&cn, &cr, &sr);
	CHECK_INT(cr, STREAM_ERROR);
	CHECK(contains(tls_stream_error(&cn.c), "certificate verify failed"));
	conn_close(&cn);

	/* Without verify the handshake goes on and says what it found. */
	conn_tls(&cn, lax, OTHER_HOST, srv);
	CHECK(exchange_lines(&cn));
	CHECK(tls_stream_info(&cn.c, &ci) == 0);
	CHECK_INT(ci.peer_verified, 0);
	CHECK_STR(ci.sni, OTHER_HOST);
	conn_close(&cn);
	conn_tls(&cn, lax, HOST, srv);
	CHECK(exchange_lines(&cn));
	CHECK(tls_stream_info(&cn.c, &ci) == 0);
	CHECK_INT(ci.peer_verified, 1);
	conn_close(&cn);
out:
	tls_server_free(&srv);
	tls_client_free(&good);
	tls_client_free(&wrong_ca);
	tls_client_free(&lax);
}

/* Peers that go away at every stage end in EOF or an error, never a
 * hang or a signal. */
static void
test_peer_vanishes(void)
{
	struct tls_server_config cfg;
	struct tls_server *srv;
	struct tls_client *cli;
	enum stream_result r;
	struct side sd;
	struct conn cn;
	int i;

	server_config(&cfg, NULL, NULL);
	srv = server_new(&cfg);
	cli = client_new(NULL, 0, NULL);
	if (srv == NULL || cli == NULL)
		goto out;

	/* The client closes after its ClientHello. */
	conn_tls(&cn, cli, HOST, srv);
	CHECK_INT(stream_fill(&cn.c), STREAM_AGAIN);
	stream_close(&cn.c);
	side_init(&sd, &cn.s, 1);
	for (i = 0; i < TURNS_MAX && sd.r == STREAM_OK; i++)
		side_step(&sd);
	CHECK(sd.r == STREAM_EOF || sd.r == STREAM_ERROR);
	CHECK(tls_stream_error(&cn.s) != NULL);
	side_free(&sd);
	stream_close(&cn.s);

	/* The client closes before saying anything. */
	conn_tls(&cn, cli, HOST, srv);
	stream_close(&cn.c);
	CHECK_INT(stream_fill(&cn.s), STREAM_EOF);
	CHECK(contains(tls_stream_error(&cn.s), "during the TLS handshake"));
	stream_close(&cn.s);

	/* The server closes without answering the ClientHello. */
	conn_tls(&cn, cli, HOST, srv);
	CHECK_INT(stream_fill(&cn.c), STREAM_AGAIN);
	stream_free(&cn.s); /* no close_notify before the handshake */
	close(cn.sv[1]);
	r = stream_fill(&cn.c);
	CHECK(r == STREAM_EOF || r == STREAM_ERROR);
	CHECK(tls_stream_error(&cn.c) != NULL);
	stream_close(&cn.c);

	/* Plain text where a handshake was due. */
	conn_tls(&cn, cli, HOST, srv);
	CHECK(write(cn.sv[0], PLAIN_EHLO, strlen(PLAIN_EHLO)) ==
	      (ssize_t)strlen(PLAIN_EHLO));
	CHECK_INT(stream_fill(&cn.s), STREAM_ERROR);
	CHECK_INT(errno, EPROTO);
	CHECK(tls_stream_error(&cn.s) != NULL);
	CHECK(ERR_peek_error() == 0);
	conn_close(&cn);

	/* After the handshake: a clean close_notify is EOF without error. */
	conn_tls(&cn, cli, HOST, srv);
	CHECK(exchange_lines(&cn));
	stream_close(&cn.c);
	CHECK_INT(stream_fill(&cn.s), STREAM_EOF);
	CHECK(tls_stream_error(&cn.s) == NULL);
	stream_close(&cn.s);

	/* A vanished peer (shutdown: the peer sees what a close shows, and
	 * the fd number stays ours) is EOF too, and says so... */
	conn_tls(&cn, cli, HOST, srv);
	CHECK(exchange_lines(&cn));
	CHECK(shutdown(cn.sv[0], SHUT_RDWR) == 0);
	CHECK_INT(stream_fill(&cn.s), STREAM_EOF);
	CHECK(contains(tls_stream_error(&cn.s), "without close_notify"));
	CHECK(stream_puts(&cn.s, "421 bye\r\n") == 0);
	CHECK_INT(stream_try_flush(&cn.s), STREAM_ERROR);
	CHECK_INT(errno, EPIPE);
	conn_close(&cn);

	/* ...and writing to it is EPIPE, not SIGPIPE. */
	conn_tls(&cn, cli, HOST, srv);
	CHECK(exchange_lines(&cn));
	CHECK(shutdown(cn.sv[0], SHUT_RDWR) == 0);
	CHECK(stream_puts(&cn.s, "421 bye\r\n") == 0);
	CHECK_INT(stream_try_flush(&cn.s), STREAM_ERROR);
	CHECK(errno == EPIPE || errno == ECONNRESET);
	CHECK(contains(tls_stream_error(&cn.s), "pipe"));
	CHECK_INT(stream_fill(&cn.s), STREAM_ERROR);
	conn_close(&cn);
out:
	tls_server_free(&srv);
	tls_client_free(&cli);
}

/* The server half of the blocking test, on its own thread. */
struct blocking_server {
	pthread_t thread;
	int fd;
	struct tls_server *srv;
	enum stream_result r_ehlo, r_big, r_end;
	int flushed, big_ok;
	char ehlo[LINE_MAX_TEST + 2];
	const char *big;
};

static void *
blocking_server_run(void *arg)
{
	struct blocking_server *bs = arg;
	struct buf line, big;
	struct stream st;

	buf_init(&line, LINE_MAX_TEST + 2);
	buf_init(&big, BIG_LEN);
	stream_init(&st, bs->fd);
	tls_stream_server(&st, bs->srv);
	/* The greeting goes out first: the write runs the handshake. */
	bs->flushed = stream_puts(&st, "220 " HOST " ESMTP\r\n") == 0 &&
	              stream_flush(&st, TEST_TIMEOUT) == STREAM_OK;
	bs->r_ehlo =
	    stream_read_line(&st, &line, LINE_MAX_TEST, TEST_TIMEOUT, NULL);
	snprintf(bs->ehlo, sizeof(bs->ehlo), "%s", buf_cstr(&line));
	bs->flushed = bs->flushed &&
	              stream_printf(&st, "250 hello %s\r\n", bs->ehlo) == 0 &&
	              stream_flush(&st, TEST_TIMEOUT) == STREAM_OK;
	bs->r_big = stream_read_exact(&st, &big, BIG_LEN, TEST_TIMEOUT);
	bs->big_ok =
	    big.len == BIG_LEN && memcmp(big.data, bs->big, BIG_LEN) == 0;
	bs->flushed = bs->flushed && stream_puts(&st, "250 ok\r\n") == 0 &&
	              stream_flush(&st, TEST_TIMEOUT) == STREAM_OK;
	bs->r_end =
	    stream_read_line(&st, &line, LINE_MAX_TEST, TEST_TIMEOUT, NULL);
	stream_close(&st);
	buf_free(&line);
	buf_free(&big);
	return NULL;
}

/* stream_read_line, stream_read_exact and stream_flush with deadlines,
 * over TLS, as implicit TLS (port 465) uses them: the client reads
 * first. The server's fd is left blocking. */
static void
test_blocking_calls(void)
{
	struct tls_server_config cfg;
	struct blocking_server bs;
	struct tls_client *cli;
	struct stream st;
	struct buf line;
	char *big;
	int sv[2];
	size_t i;

	memset(&bs, 0, sizeof(bs));
	server_config(&cfg, NULL, NULL);
	bs.srv = server_new(&cfg);
	cli = client_new(fx.rsa_cert, 1, NULL);
	if (bs.srv == NULL || cli == NULL)
		goto out;
	big = xmalloc(BIG_LEN);
	for (i = 0; i < BIG_LEN; i++)
		big[i] = (char)(i % 251);
	bs.big = big;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
	    file_set_nonblock(sv[0], 1) < 0)
		abort();
	bs.fd = sv[1];
	pthread_create(&bs.thread, NULL, blocking_server_run, &bs);

	buf_init(&line, LINE_MAX_TEST + 2);
	stream_init(&st, sv[0]);
	tls_stream_client(&st, cli, HOST);
	/* The client's first wait is for writability (its ClientHello). */
	CHECK_INT(stream_events(&st, 1), STREAM_WANT_WRITE);
	CHECK_INT(
	    stream_read_line(&st, &line, LINE_MAX_TEST, TEST_TIMEOUT, NULL),
	    STREAM_OK);
	CHECK_STR(buf_cstr(&line), "220 " HOST " ESMTP");
	CHECK(tls_stream_handshake_done(&st));
	CHECK(stream_puts(&st, "EHLO client.example.test\r\n") == 0);
	CHECK_INT(stream_flush(&st, TEST_TIMEOUT), STREAM_OK);
	CHECK_INT(
	    stream_read_line(&st, &line, LINE_MAX_TEST, TEST_TIMEOUT, NULL),
	    STREAM_OK);
	CHECK_STR(buf_cstr(&line), "250 hello EHLO client.example.test");
	CHECK(stream_write(&st, big, BIG_LEN) == 0);
	CHECK_INT(stream_flush(&st, TEST_TIMEOUT), STREAM_OK);
	CHECK_INT(
	    stream_read_line(&st, &line, LINE_MAX_TEST, TEST_TIMEOUT, NULL),
	    STREAM_OK);
	CHECK_STR(buf_cstr(&line), "250 ok");
	/* The server now waits: a deadline, not a hang. */
	CHECK_INT(
	    stream_read_line(&st, &line, LINE_MAX_TEST, SHORT_TIMEOUT, NULL),
	    STREAM_TIMEOUT);
	stream_close(&st); /* close_notify: the server reads EOF */
	pthread_join(bs.thread, NULL);
	CHECK(bs.flushed);
	CHECK_INT(bs.r_ehlo, STREAM_OK);
	CHECK_STR(bs.ehlo, "EHLO client.example.test");
	CHECK_INT(bs.r_big, STREAM_OK);
	CHECK(bs.big_ok);
	CHECK_INT(bs.r_end, STREAM_EOF);
	buf_free(&line);
	free(big);
out:
	tls_server_free(&bs.srv);
	tls_client_free(&cli);
}

UNIT_MAIN(UNIT_CASE(test_self_signed), UNIT_CASE(test_server_create_errors),
    UNIT_CASE(test_client_create_errors), UNIT_CASE(test_info_without_tls),
    UNIT_CASE(test_handshake_rsa), UNIT_CASE(test_handshake_ecdsa),
    UNIT_CASE(test_dual_pair_selection), UNIT_CASE(test_old_client_refused),
    UNIT_CASE(test_no_renegotiation), UNIT_CASE(test_large_transfer),
    UNIT_CASE(test_pending), UNIT_CASE(test_resumption_tls13),
    UNIT_CASE(test_resumption_tls12),
    UNIT_CASE(test_resumption_previous_window), UNIT_CASE(test_verify),
    UNIT_CASE(test_peer_vanishes), UNIT_CASE(test_blocking_calls))
