/* SPDX-License-Identifier: MIT */
/*
 * `tern fetch now`'s wake-up call: ETRN (RFC 1985) for each domain of
 * $fetch_etrn_domains to each host of $fetch_etrn_hosts, so that an ISP
 * that holds this site's mail as a backup MX sends it now that the link
 * is up. Plain SMTP: the command carries no secret, and the mail itself
 * comes over the ISP's own (TLS) delivery. Every read waits at most
 * $fetch_timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/str.h"
#include "mail/params.h"
#include "fetch.h"

#define FETCH_ETRN_MAX 64 /* hosts, and domains */
#define FETCH_SMTP_PORT "25"

/* The last line of a reply into line; its code, or -1. */
static int
fetch_smtp_reply(struct fetch_conn *c, struct buf *line)
{
	const char *s;

	for (;;) {
		if (fetch_conn_line(c, line) != STREAM_OK || line->len < 3)
			return -1;
		s = buf_cstr(line);
		if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
		    s[2] < '0' || s[2] > '9')
			return -1;
		if (line->len == 3 || s[3] != '-')
			return (s[0] - '0') * 100 + (s[1] - '0') * 10 +
			       (s[2] - '0');
	}
}

static void
fetch_etrn_host(const char *spec, char **domains, int ndomains,
    struct buf *out)
{
	struct fetch_conn c;
	struct buf line;
	const char *err;
	char *host = xstrdup(spec), *port = FETCH_SMTP_PORT, *colon;
	int i;

	/* host:port; an IPv6 literal in brackets. */
	if (*host == '[' && (colon = strchr(host, ']')) != NULL) {
		*colon = '\0';
		memmove(host, host + 1, strlen(host + 1) + 1);
		if (colon[1] == ':')
			port = colon + 2;
	} else if ((colon = strrchr(host, ':')) != NULL &&
	           strchr(host, ':') == colon) {
		*colon = '\0';
		port = colon + 1;
	}
	buf_init(&line, FETCH_LINE_MAX + 1);
	if (fetch_conn_open(&c, host, port, &err) < 0) {
		fetch_printf(out, "etrn %s: %s\n", spec, err);
		msg_warn("etrn %s: %s", spec, err);
		goto out;
	}
	if (fetch_smtp_reply(&c, &line) != 220 ||
	    fetch_conn_cmd(&c, "EHLO %s", var_myhostname) < 0 ||
	    fetch_smtp_reply(&c, &line) != 250) {
		fetch_printf(out, "etrn %s: no SMTP session: %s\n", spec,
		    log_sanitize(buf_cstr(&line), 200));
		msg_warn("etrn %s: no SMTP session: %s", spec,
		    log_sanitize(buf_cstr(&line), 200));
		goto out;
	}
	for (i = 0; i < ndomains; i++) {
		int code = fetch_conn_cmd(&c, "ETRN %s", domains[i]) < 0
		               ? -1
		               : fetch_smtp_reply(&c, &line);

		fetch_printf(out, "etrn %s %s: %s\n", spec, domains[i],
		    code < 0 ? "no reply" : log_sanitize(buf_cstr(&line), 200));
		msg_info("etrn %s %s: %s", spec, domains[i],
		    code < 0 ? "no reply" : log_sanitize(buf_cstr(&line), 200));
		if (code < 0)
			goto out;
	}
	if (fetch_conn_cmd(&c, "QUIT") == 0)
		(void)fetch_smtp_reply(&c, &line);
out:
	fetch_conn_close(&c);
	buf_free(&line);
	free(host);
}

void
fetch_etrn(struct buf *out)
{
	char *hosts = xstrdup(var_fetch_etrn_hosts);
	char *domains = xstrdup(var_fetch_etrn_domains);
	char *h[FETCH_ETRN_MAX], *d[FETCH_ETRN_MAX];
	int nh, nd, i;

	nh = str_split(hosts, " ,\t", h, FETCH_ETRN_MAX);
	nd = str_split(domains, " ,\t", d, FETCH_ETRN_MAX);
	if (nh < 0 || nd < 0)
		fetch_printf(out, "etrn: more than %d hosts or domains\n",
		    FETCH_ETRN_MAX);
	else if (nh == 0)
		fetch_printf(out, "etrn: no fetch_etrn_hosts\n");
	else
		for (i = 0; i < nh; i++)
			fetch_etrn_host(h[i], d, nd, out);
	free(hosts);
	free(domains);
}
