/* SPDX-License-Identifier: MIT */
/*
 * sendmail: the Sendmail-compatible command line (Postfix's sendmail(1)
 * options), also run as mailq (= -bp) and newaliases (= -bi) through
 * links. Not set-id: a message goes to the setgid terndrop, which writes
 * it into maildrop/ for the pickup daemon, so submission works while the
 * mail system is stopped. The other modes run other commands: -bp and
 * -q ternqueue, -bi newaliases, -bd tern start; -bs speaks SMTP on stdin
 * and stdout (sendmail_smtp.c); -bv tells how each address would be
 * routed. Options Postfix accepts and ignores are accepted and ignored.
 * Exit codes from <sysexits.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/rfc822_addr.h"
#include "mail/route.h"
#include "mail/smtp_param.h"
#include "sendmail.h"

/* Postfix's option letters, with -c taking the configuration directory
 * as tern's other commands do; '+': options end at the first operand. */
#define SM_GETOPT "+A:B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:p:r:q:tvx"
#define SM_CONF_FILE "tern.conf"
#define SM_ARGV_MAX 16

enum sm_mode {
	SM_MODE_ENQUEUE,	/* read a message (-bm, the default) */
	SM_MODE_NEWALIAS,	/* -bi, -I, newaliases */
	SM_MODE_MAILQ,		/* -bp, mailq */
	SM_MODE_FLUSHQ,		/* -q */
	SM_MODE_DAEMON,		/* -bd, -bl */
	SM_MODE_USER,		/* -bs */
	SM_MODE_IGNORE,		/* -bh, -bH, -q<interval> */
};

static void MTA_NORETURN
sm_usage(const char *name)
{
	sm_die(EX_USAGE, "usage: %s [options] [--] [recipient ...] "
	    "(see sendmail(1))", name);
}

/* Runs $command_directory/prog with -c config_dir and args; no return. */
static void MTA_NORETURN
sm_exec(const char *config_dir, const char *prog, const char *a1,
    const char *a2, int verbose)
{
	const char *argv[SM_ARGV_MAX];
	char *path = xasprintf("%s/%s", var_command_directory, prog);
	int n = 0;

	argv[n++] = prog;
	argv[n++] = "-c";
	argv[n++] = config_dir;
	while (verbose-- > 0 && n < SM_ARGV_MAX - 3)
		argv[n++] = "-v";
	if (a1 != NULL)
		argv[n++] = a1;
	if (a2 != NULL)
		argv[n++] = a2;
	argv[n] = NULL;
	fflush(stdout);
	execv(path, (char *const *)argv);
	sm_die(EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}

/* -N: "never" or success, delay, failure (RFC 3461 4.1); NULL if bad. */
static const char *
sm_notify_ok(const char *s)
{
	char *copy = xstrdup(s), *p, *w;
	int never = 0, other = 0, bad = 0;

	for (p = copy; (w = strsep(&p, ",")) != NULL;) {
		w = str_trim(w);
		if (str_eq_ci(w, "never"))
			never = 1;
		else if (str_eq_ci(w, "success") || str_eq_ci(w, "delay") ||
		    str_eq_ci(w, "failure"))
			other = 1;
		else
			bad = 1;
	}
	free(copy);
	return bad || never == other ? NULL : s;
}

static int
sm_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
			return 0;
	return 1;
}

struct sm_first {
	char *addr;
	int count;
};

static void
sm_first_addr(void *ctx, const char *addr, size_t len)
{
	struct sm_first *f = ctx;

	(void)len;
	if (f->count++ == 0)
		f->addr = xstrdup(addr);
}

/* -f: the address of "Name <addr>" and the like, "<>" for none. */
static char *
sm_sender(const char *arg)
{
	struct sm_first f = {NULL, 0};
	const char *err;

	if (rfc822_addr_list(arg, strlen(arg), 1, sm_first_addr, &f, &err) <
	        0 &&
	    f.addr == NULL)
		sm_die(EX_USAGE, "-f: %s", err);
	if (f.count > 1)
		sm_warn("-f option specified malformed sender: %s",
		    log_sanitize(arg, ADDR_PATH_MAX));
	return f.addr != NULL ? f.addr : xstrdup("<>");
}

/* -bv: how each recipient would be routed (transport and nexthop). */
static int
sm_verify(struct sm_env *e)
{
	struct route r;
	const char *err;
	char *init_err = NULL, *addr;
	int status = EX_OK, rc;
	size_t i;

	if (route_init(&init_err) < 0)
		sm_die(EX_CONFIG, "%s", init_err);
	for (i = 0; i < e->nrcpt; i++) {
		addr = strchr(e->rcpts[i], '@') != NULL
		    ? xstrdup(e->rcpts[i])
		    : xasprintf("%s@%s", e->rcpts[i], var_myorigin);
		rc = route_address(addr, &r, &err);
		if (rc == -1) {
			printf("%s... undeliverable: bad address syntax\n",
			    log_sanitize(addr, ADDR_PATH_MAX));
			status = EX_NOUSER;
		} else if (rc < 0) {
			printf("%s... deferred: %s\n",
			    log_sanitize(addr, ADDR_PATH_MAX), err);
			if (status == EX_OK)
				status = EX_TEMPFAIL;
		} else {
			if (strcmp(r.transport, "error") == 0) {
				printf("%s... undeliverable: %s\n",
				    log_sanitize(addr, ADDR_PATH_MAX),
				    r.nexthop);
				status = EX_NOUSER;
			} else if (strcmp(r.transport, "retry") == 0) {
				printf("%s... deferred: %s\n",
				    log_sanitize(addr, ADDR_PATH_MAX),
				    r.nexthop);
			} else {
				printf("%s... deliverable: mailer %s, host "
				       "%s\n",
				    log_sanitize(addr, ADDR_PATH_MAX),
				    r.transport, r.nexthop);
			}
			route_free(&r);
		}
		free(addr);
	}
	route_shutdown();
	return status;
}

/* -C/-c: a directory, or the tern.conf in it. */
static char *
sm_config_dir(const char *arg)
{
	const char *slash = strrchr(arg, '/');
	const char *base = slash != NULL ? slash + 1 : arg;

	if (strcmp(base, SM_CONF_FILE) == 0)
		return slash == NULL ? xstrdup(".")
		    : slash == arg   ? xstrdup("/")
		                     : xstrndup(arg, (size_t)(slash - arg));
	return xstrdup(arg);
}

int
main(int argc, char **argv)
{
	struct sm_env env;
	const char *name, *err, *site = NULL, *qid = NULL, *fullname;
	char *config_dir = NULL, *sender_arg = NULL;
	enum sm_mode mode = SM_MODE_ENQUEUE;
	enum sm_dot dot_mode = SM_DOT_END;
	int ch, extract = 0, verbose = 0, verify = 0, fd, status, i;
	int qtime = 0;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 &&
		    open("/dev/null", O_RDWR) != fd)
			return EX_OSERR;
	umask(022);
	memset(&env, 0, sizeof(env));
	name = strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1
	                                     : argv[0];
	log_init(SENDMAIL_PROGNAME, LOG_DEST_STDERR);
	if (strcmp(name, "mailq") == 0)
		mode = SM_MODE_MAILQ;
	else if (strcmp(name, "newaliases") == 0)
		mode = SM_MODE_NEWALIAS;

	while (optind < argc) {
		/* -q alone is no getopt option ("q:" takes an argument). */
		if (strcmp(argv[optind], "-q") == 0) {
			mode = SM_MODE_FLUSHQ;
			optind++;
			continue;
		}
		/* Postfix 2.2's -V (VERP) forms: -V xy and -Vxy. */
		if (strcmp(argv[optind], "-V") == 0 && optind + 1 < argc &&
		    strlen(argv[optind + 1]) == 2) {
			sm_warn("option -V is deprecated; specify -XV instead");
			optind += 2;
			continue;
		}
		if (strcmp(argv[optind], "-XV") == 0 ||
		    (strncmp(argv[optind], "-V", 2) == 0 &&
		        strlen(argv[optind]) == 4)) {
			/* VERP: not supported, ignored as Postfix's -XV
			 * without delimiters would change nothing here. */
			optind++;
			continue;
		}
		if ((ch = getopt(argc, argv, SM_GETOPT)) == -1)
			break;
		switch (ch) {
		case 'C':
		case 'c':
			free(config_dir);
			config_dir = sm_config_dir(optarg);
			break;
		case 'n':
			sm_die(EX_USAGE, "-n option not supported");
		case 'B':
			if (strcmp(optarg, "8BITMIME") != 0 &&
			    strcmp(optarg, "7BIT") != 0)
				sm_die(EX_USAGE,
				    "-B option needs 8BITMIME or 7BIT");
			break;
		case 'F':
			env.fullname = optarg;
			break;
		case 'I':
			mode = SM_MODE_NEWALIAS;
			break;
		case 'N':
			if ((env.notify = sm_notify_ok(optarg)) == NULL)
				sm_warn("bad -N option value: '%s' -- ignored",
				    log_sanitize(optarg, 64));
			break;
		case 'R':
			if (str_eq_ci(optarg, "full") ||
			    str_eq_ci(optarg, "hdrs"))
				env.ret = optarg;
			else
				sm_warn("bad -R option value -- ignored");
			break;
		case 'V':
			if (strlen(optarg) > SMTP_ENVID_MAX)
				sm_warn("too long -V option value -- ignored");
			else if (!sm_printable(optarg))
				sm_warn("bad syntax in -V option value -- "
				        "ignored");
			else
				env.envid = optarg;
			break;
		case 'X':
			if (*optarg != 'V')
				sm_die(EX_USAGE, "unsupported: -X%c", *optarg);
			break;
		case 'b':
			switch (*optarg) {
			case 'd':
			case 'l':
				mode = SM_MODE_DAEMON;
				break;
			case 'h':
			case 'H':
				mode = SM_MODE_IGNORE;
				break;
			case 'i':
				mode = SM_MODE_NEWALIAS;
				break;
			case 'm':
				mode = SM_MODE_ENQUEUE;
				break;
			case 'p':
				mode = SM_MODE_MAILQ;
				break;
			case 's':
				mode = SM_MODE_USER;
				break;
			case 'v':
				verify = 1;
				break;
			default:
				sm_die(EX_USAGE, "unsupported: -b%c", *optarg);
			}
			break;
		case 'f':
		case 'r':
			sender_arg = optarg;
			break;
		case 'i':
			dot_mode = SM_DOT_NONE;
			break;
		case 'o':
			/* -oi as -i; -oA, -o7, -o8, -om, -oe*, -od* and
			 * the rest of the legacy -o options are ignored:
			 * delivery always goes through the queue. */
			if (optarg[0] == 'i')
				dot_mode = SM_DOT_NONE;
			else if (optarg[0] == 'A')
				sm_warn("-oA ignored: newaliases builds "
				        "alias_database");
			break;
		case 'q':
			if (optarg[0] >= '0' && optarg[0] <= '9')
				qtime = 1;
			else if (optarg[0] == 'R' && optarg[1] != '\0')
				site = optarg + 1;
			else if (optarg[0] == 'I' && optarg[1] != '\0')
				qid = optarg + 1;
			else {
				/* -qS (by sender) and other selections of
				 * sendmail 8: what Postfix's manual advises
				 * instead, a flush of the whole queue. */
				sm_warn("-q%.1s: selects nothing in tern; "
					"delivering all deferred mail",
				    optarg);
				mode = SM_MODE_FLUSHQ;
			}
			break;
		case 't':
			extract = 1;
			break;
		case 'v':
			verbose++;
			break;
		case '?':
			sm_usage(name);
		default:
			/* -A, -G, -L, -O, -U, -e, -h, -m, -p, -x: accepted
			 * and ignored, as Postfix does. */
			break;
		}
	}

	if (extract && mode != SM_MODE_ENQUEUE)
		sm_die(EX_USAGE, "-t can be used only in delivery mode");
	if ((site != NULL || qid != NULL) && mode != SM_MODE_ENQUEUE)
		sm_die(EX_USAGE, "-qR and -qI can be used only in delivery mode");
	if (verify && (extract || env.notify != NULL || env.ret != NULL))
		sm_die(EX_USAGE, "-t, -N and -R cannot be used with -bv");
	if (config_dir == NULL)
		config_dir = xstrdup(config_dir_default());
	env.config_dir = config_dir;
	if (config_load(config_dir, &err) < 0)
		sm_die(EX_CONFIG, "%s", err);
	log_set_verbose(verbose > 1 ? verbose - 1 : 0);
	if (qtime && mode != SM_MODE_DAEMON)
		return EX_OK;
	if (mode != SM_MODE_ENQUEUE && optind < argc)
		sm_die(EX_USAGE, "this mode takes no recipients");

	switch (mode) {
	case SM_MODE_MAILQ:
		sm_exec(config_dir, "ternqueue", "-p", NULL, 0);
	case SM_MODE_FLUSHQ:
		sm_exec(config_dir, "ternqueue", "-f", NULL, 0);
	case SM_MODE_NEWALIAS:
		sm_exec(config_dir, "newaliases", NULL, NULL, verbose);
	case SM_MODE_DAEMON:
		sm_exec(config_dir, "tern", "start", NULL, 0);
	case SM_MODE_IGNORE:
		return EX_OK;
	case SM_MODE_USER:
		env.fullname = NULL;
		status = sm_smtp(&env);
		free(config_dir);
		return status;
	case SM_MODE_ENQUEUE:
		break;
	}
	if (site != NULL) {
		if (optind < argc)
			sm_die(EX_USAGE, "flush site requires no recipient");
		sm_exec(config_dir, "ternqueue", "-s", site, 0);
	}
	if (qid != NULL) {
		if (optind < argc)
			sm_die(EX_USAGE, "flush queue_id requires no recipient");
		sm_exec(config_dir, "ternqueue", "-i", qid, 0);
	}
	/* Each argument may be a list ("a, b", "Name <a>"), as Postfix's
	 * sendmail reads them. */
	for (i = optind; i < argc; i++)
		sm_env_add_rcpts(&env, argv[i], strlen(argv[i]));
	if (verify) {
		if (env.nrcpt == 0)
			sm_die(EX_USAGE, "no recipients specified");
		status = sm_verify(&env);
	} else {
		if (sender_arg != NULL)
			env.sender = sm_sender(sender_arg);
		fullname = getenv("NAME");
		if (env.fullname == NULL && fullname != NULL &&
		    *fullname != '\0')
			env.fullname = fullname;
		status = sm_enqueue(&env, dot_mode, extract, verbose);
	}
	free((char *)env.sender);
	sm_env_free_rcpts(&env);
	free(config_dir);
	return status;
}
