/* SPDX-License-Identifier: MIT */
/*
 * imapd's main(): the configuration, the identity check and the session's
 * environment, then imapd_run() on fd 0. Apart from the rest of imapd so
 * that test/fuzz/fuzz_imapd_session.c can drive a whole session from
 * memory.
 */
#include <signal.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "mail/login_proto.h"
#include "mail/params.h"
#include "imapd.h"

static const char *
need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		msg_fatal("%s is not set: imapd is started by spawn after a "
		          "login",
		    name);
	return v;
}

int
main(int argc, char **argv)
{
	const char *config_dir = TERN_CONFIG_DIR, *err, *user, *id, *maildir;
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
	log_init("imapd",
	    *var_maillog_file == '\0' ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	if (verbose < var_debug_level)
		verbose = (int)var_debug_level;
	log_set_verbose(verbose);
	/* Mail is read as its owner: root would read anyone's. */
	if (getuid() == 0 || geteuid() == 0)
		msg_fatal("refusing to run as root: spawn starts imapd as the "
		          "mailbox owner");
	signal(SIGPIPE, SIG_IGN);
	file_tcp_nodelay(0);
	user = need_env(LOGIN_ENV_USER);
	maildir = need_env(LOGIN_ENV_MAILDIR);
	id = getenv(LOGIN_ENV_ID);
	imapd_set_log_name(user, id);
	if (maildir[0] != '/') {
		imapd_log(LOG_ERR, "%s: not an absolute path",
		    LOGIN_ENV_MAILDIR);
		return 1;
	}
	return imapd_run(user, maildir, 0, NULL, NULL);
}
