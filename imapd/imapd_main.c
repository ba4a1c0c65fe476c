/* SPDX-License-Identifier: MIT */
/*
 * imapd's main(): the configuration and the session's start
 * (lib/mail/mail_session.h), then imapd_run() on fd 0. Apart from the
 * rest of imapd so that test/fuzz/fuzz_imapd_session.c can drive a
 * whole session from memory.
 */
#include <unistd.h>

#include "base/log.h"
#include "mail/mail_session.h"
#include "mail/params.h"
#include "imapd.h"

int
main(int argc, char **argv)
{
	const char *config_dir = TERN_CONFIG_DIR, *err;
	struct mail_session_env env;
	int ch, verbose = 0, check = 0;

	log_init("imapd", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:tv")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			msg_fatal("usage: imapd [-c config_dir] [-t] [-v]");
		}
	}
	if (config_load(config_dir, &err) < 0)
		msg_fatal("%s", err);
	if (check)
		return 0;
	mail_session_init("imapd", verbose);
	mail_session_env("imapd", "imap", &env);
	return imapd_run(env.user, env.maildir, 0, NULL, NULL);
}
