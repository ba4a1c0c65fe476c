/* SPDX-License-Identifier: MIT */
/*
 * Client contexts and client sessions, for the outbound SMTP client and
 * the fetch service: trust anchors, the protocol range, and per
 * connection the name sent as SNI (RFC 6066 3: never an IP address) and
 * checked against the certificate (RFC 6125, no partial wildcards).
 * Client-side session reuse is left to the caller through
 * tls_stream_session_get/set; a cache keyed by destination can come with
 * the outbound client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

int
tls_client_create(const struct tls_client_config *cfg,
    struct tls_client **cli_r, const char **error_r)
{
	struct tls_client *cli;
	int ok;

	*cli_r = NULL;
	if (cfg == NULL)
		return tls_fail(error_r, "no client configuration");
	cli = xcalloc(1, sizeof(*cli));
	cli->verify = cfg->verify != 0;
	ERR_clear_error();
	cli->ctx = SSL_CTX_new(TLS_client_method());
	if (cli->ctx == NULL) {
		tls_fail(error_r, "SSL_CTX_new");
		tls_client_free(&cli);
		return -1;
	}
	if (tls_ctx_setup(cli->ctx, cfg->protocols, error_r) < 0) {
		tls_client_free(&cli);
		return -1;
	}
	if (cfg->ca_file != NULL)
		ok = SSL_CTX_load_verify_file(cli->ctx, cfg->ca_file) == 1;
	else
		ok = SSL_CTX_set_default_verify_paths(cli->ctx) == 1;
	if (!ok) {
		tls_fail(error_r, "CA file %s",
		    cfg->ca_file != NULL ? cfg->ca_file : "(system default)");
		tls_client_free(&cli);
		return -1;
	}
	/* Without verify the chain is still checked, and tls_info says how
	 * it went. */
	SSL_CTX_set_verify(
	    cli->ctx, cli->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	*cli_r = cli;
	return 0;
}

void
tls_client_free(struct tls_client **cli_r)
{
	struct tls_client *cli = *cli_r;

	if (cli == NULL)
		return;
	SSL_CTX_free(cli->ctx);
	free(cli);
	*cli_r = NULL;
}

static int
tls_is_ip_address(const char *name)
{
	struct in6_addr addr; /* room for either family */

	return inet_pton(AF_INET, name, &addr) == 1 ||
	       inet_pton(AF_INET6, name, &addr) == 1;
}

/* Sets the name to send and to check; 0 or -1 with conn->error. */
static int
client_set_name(struct tls_conn *conn, const char *servername, int verify)
{
	SSL *ssl = conn->ssl;
	int ok;

	if (servername == NULL || servername[0] == '\0') {
		if (!verify)
			return 0;
		tls_conn_fail_early(
		    conn, "no server name to verify the certificate against");
		return -1;
	}
	if (tls_is_ip_address(servername)) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(
		         SSL_get0_param(ssl), servername) == 1;
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set_tlsext_host_name(ssl, servername) == 1 &&
		     SSL_set1_host(ssl, servername) == 1;
		if (ok)
			snprintf(
			    conn->sni, sizeof(conn->sni), "%s", servername);
	}
	conn->name_checked = ok;
	if (!ok) {
		tls_conn_fail_early(conn, "server name not usable");
		return -1;
	}
	return 0;
}

void
tls_stream_client(
    struct stream *st, struct tls_client *cli, const char *servername)
{
	struct tls_conn *conn = tls_conn_attach(st, cli->ctx, NULL);

	SSL_set_connect_state(conn->ssl);
	(void)client_set_name(conn, servername, cli->verify);
	/*
	 * The client speaks first: a blocking read must not wait for input
	 * before the ClientHello is out. The socket is writable, so the
	 * first wait returns at once and the read sends it.
	 */
	st->read_want = STREAM_WANT_WRITE;
}
