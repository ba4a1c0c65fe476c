/* SPDX-License-Identifier: MIT */
/*
 * ternqueue: the queue command for users and admins (Postfix's
 * postqueue). For now its two flush forms: -f asks the queue manager to
 * retry every deferred message now, -s domain the messages with a
 * pending recipient in domain (what a part-time site's ETRN, RFC 1985,
 * does over SMTP). Both send one notice to private/qmgr through
 * lib/mail/flush.c, as `tern flush` does. Listing (-p), JSON (-j) and
 * the like come with the sendmail issue; they are usage errors until
 * then.
 *
 * Exit codes: 0; 1 when the request cannot be delivered (the mail
 * system is down, the configuration does not load); EX_USAGE (64) for a
 * usage error, as sendmail-style commands do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/addr.h"
#include "mail/flush.h"
#include "mail/params.h"

#define TERNQUEUE_PROGNAME  "ternqueue"
/* qmgr's socket is local: a connect or write that takes longer than this
 * means something is wrong with the mail system. */
#define TERNQUEUE_TIMEOUT_S 10

static void MTA_NORETURN
ternqueue_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] -f\n"
	    "       %s [-c config_dir] -s domain\n",
	    TERNQUEUE_PROGNAME, TERNQUEUE_PROGNAME);
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *site = NULL, *err;
	int ch, all = 0;

	log_init(TERNQUEUE_PROGNAME, LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:fs:")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'f':
			all = 1;
			break;
		case 's':
			if (site != NULL)
				ternqueue_usage();
			site = optarg;
			break;
		default:
			ternqueue_usage();
		}
	}
	/* One action: -f and -s together would be two requests. */
	if (optind != argc || all == (site != NULL))
		ternqueue_usage();
	if (site != NULL && !flush_domain_valid(site)) {
		fprintf(stderr, "%s: error: -s: bad domain \"%s\"\n",
		    TERNQUEUE_PROGNAME, log_sanitize(site, ADDR_DOMAIN_MAX));
		exit(EX_USAGE);
	}
	if (config_load(config_dir, &err) < 0) {
		fprintf(stderr, "%s: error: %s\n", TERNQUEUE_PROGNAME, err);
		exit(1);
	}
	if (flush_send(site, 0, TERNQUEUE_TIMEOUT_S, &err) < 0) {
		fprintf(stderr,
		    "%s: error: cannot flush the mail queue: mail system is "
		    "down (%s)\n",
		    TERNQUEUE_PROGNAME, err);
		exit(1);
	}
	return 0;
}
