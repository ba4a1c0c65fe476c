/* SPDX-License-Identifier: MIT */
/*
 * ternconf: prints and edits tern.conf parameters and shows the services
 * table (Postfix's postconf). Values print as written in tern.conf, or as
 * the default when not set there ($name references unexpanded unless
 * -x); -d prints each default with its one-line description from the
 * parameter table; -n only what tern.conf sets; -h the values alone;
 * -M the entries of services.conf, one normalised line each. The edits
 * (-e name=value, -X name, -# name) rewrite tern.conf after checking the
 * new values the way every daemon will load them, holding an flock on
 * CONFIG_DIR/ternconf.lock, so that concurrent edits of different names
 * all land (each one reads the file the previous one wrote). No RFCs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/services.h"

/* The longest value config_edit() writes (half a tern.conf line). */
#define TERNCONF_VALUE_MAX     4096
/* The lock file of the edits, in the configuration directory. */
#define TERNCONF_LOCK_FILE     "ternconf.lock"
#define TERNCONF_LOCK_MODE     0600
/* How long an edit waits for another one before giving up. */
#define TERNCONF_LOCK_WAIT_MS  30000
#define TERNCONF_LOCK_POLL_MS  10
#define TERNCONF_NS_PER_MS     1000000
#define TERNCONF_MS_PER_S      1000
#define TERNCONF_SERVICES_FILE "services.conf"
/* Where postconf -M puts the columns of a master.cf line (tern has no
 * wakeup column: the command takes its place). */
static const int ternconf_columns[] = {0, 11, 17, 25, 33, 41, 49};

enum ternconf_mode {
	TERNCONF_CURRENT,  /* effective values */
	TERNCONF_DEFAULTS, /* -d */
	TERNCONF_SET,      /* -n */
	TERNCONF_EDIT,     /* -e */
	TERNCONF_REMOVE,   /* -X */
	TERNCONF_COMMENT,  /* -# */
	TERNCONF_SERVICES, /* -M */
};

static void MTA_NORETURN
ternconf_usage(void)
{
	fprintf(stderr,
	    "usage: ternconf [-c config_dir] [-d | -n] [-h] [-x] [name ...]\n"
	    "       ternconf [-c config_dir] -e name=value ...\n"
	    "       ternconf [-c config_dir] -X | -# name ...\n"
	    "       ternconf [-c config_dir] -M [service[/type] ...]\n");
	exit(1);
}

/*
 * The value to show. A default without $name is printed as loaded, so
 * computed defaults (myhostname, config_directory from -c) show their
 * real value.
 */
static const char *
ternconf_value(const struct param_def *p, int expand)
{
	const char *raw = config_raw(p->name);

	if (expand)
		return config_value(p->name);
	if (raw != NULL)
		return raw;
	if (strchr(p->defval, '$') == NULL)
		return config_value(p->name);
	return p->defval;
}

static void
ternconf_print(const struct param_def *p, enum ternconf_mode mode, int expand,
    int value_only)
{
	if (mode == TERNCONF_DEFAULTS && value_only)
		printf("%s\n", p->defval);
	else if (mode == TERNCONF_DEFAULTS)
		printf("# %s\n%s = %s\n", p->doc, p->name, p->defval);
	else if (mode == TERNCONF_CURRENT || config_raw(p->name) != NULL)
		printf("%s%s%s\n", value_only ? "" : p->name,
		    value_only ? "" : " = ", ternconf_value(p, expand));
}

/* Parameters that name a file or directory: daemons chdir and chroot. */
static const char *const ternconf_paths[] = {
    "config_directory",
    "queue_directory",
    "daemon_directory",
    "command_directory",
    "virtual_mailbox_base",
    "user_file",
    "virtual_mailbox_list",
    "maillog_file",
};
/* Parameters that name an account. */
static const char *const ternconf_accounts[] = {
    "mail_owner",
    "setgid_group",
    "vmail_user",
    "auth_user",
};

static int
ternconf_in(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

/*
 * What the typed check of config_load() lets through but no daemon can
 * use: a relative or empty path (only maillog_file may be empty: syslog),
 * an empty account name, a home_mailbox outside the home directory.
 */
static void
ternconf_check_value(const char *name)
{
	const char *v = config_value(name);

	if (ternconf_in(name, ternconf_paths,
	        sizeof(ternconf_paths) / sizeof(ternconf_paths[0]))) {
		if (v[0] != '/' &&
		    !(v[0] == '\0' && strcmp(name, "maillog_file") == 0))
			msg_die("%s: '%s' is not an absolute path", name, v);
	} else if (ternconf_in(name, ternconf_accounts,
	               sizeof(ternconf_accounts) /
	                   sizeof(ternconf_accounts[0]))) {
		if (v[0] == '\0' || strpbrk(v, " \t:/") != NULL)
			msg_die("%s: '%s' is not an account name", name, v);
	} else if (strcmp(name, "home_mailbox") == 0) {
		if (v[0] == '\0' || v[0] == '/')
			msg_die("%s: '%s' must be a path relative to the "
			        "home directory",
			    name, v);
	}
}

static int64_t
ternconf_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		msg_panic("clock_gettime(CLOCK_MONOTONIC): %m");
	return (int64_t)ts.tv_sec * TERNCONF_MS_PER_S +
	       ts.tv_nsec / TERNCONF_NS_PER_MS;
}

/*
 * Takes the edit lock; the descriptor stays open (and the lock held)
 * until exit. The lock file is never removed: a removed lock file lets
 * two edits hold "the" lock on two different files.
 */
static void
ternconf_lock(const char *config_dir)
{
	const struct timespec poll = {
	    0, TERNCONF_LOCK_POLL_MS * TERNCONF_NS_PER_MS};
	int64_t deadline = ternconf_now_ms() + TERNCONF_LOCK_WAIT_MS;
	char *path = xasprintf("%s/%s", config_dir, TERNCONF_LOCK_FILE);
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    TERNCONF_LOCK_MODE);
	if (fd < 0)
		msg_die("open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		msg_die("%s: not a regular file", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			msg_die("flock %s: %s", path, strerror(errno));
		if (ternconf_now_ms() >= deadline)
			msg_die("%s: another edit holds the lock for more "
			        "than %d s",
			    path, TERNCONF_LOCK_WAIT_MS / TERNCONF_MS_PER_S);
		nanosleep(&poll, NULL);
	}
	free(path);
}

static void
ternconf_edit(const char *config_dir, int argc, char **argv)
{
	char **names = xcalloc((size_t)argc, sizeof(char *));
	char **values = xcalloc((size_t)argc, sizeof(char *));
	const char *err;
	char *eq;
	int i;

	for (i = 0; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL)
			msg_die("-e %s: expected name=value", argv[i]);
		*eq = '\0';
		names[i] = str_trim(argv[i]);
		values[i] = str_trim(eq + 1);
		if (param_find(names[i]) == NULL)
			msg_die("%s: unknown parameter", names[i]);
		/* Caught before the first edit, so none is half applied. */
		if (strpbrk(values[i], "\r\n") != NULL)
			msg_die("%s: a value is one line", names[i]);
		if (strlen(values[i]) > TERNCONF_VALUE_MAX)
			msg_die("%s: value longer than %d bytes", names[i],
			    TERNCONF_VALUE_MAX);
		config_override(names[i], values[i]);
	}
	/* The check reads tern.conf too: it must see the latest edit. */
	ternconf_lock(config_dir);
	/* Check the new values as the daemons will load them. */
	if (config_load(config_dir, &err) < 0)
		msg_die("%s", err);
	for (i = 0; i < argc; i++)
		ternconf_check_value(names[i]);
	for (i = 0; i < argc; i++)
		if (config_edit(config_dir, names[i], values[i], &err) < 0)
			msg_die("%s", err);
	free(names);
	free(values);
}

/* -X and -#: each name's entries out of tern.conf, or commented out. */
static int
ternconf_unset(const char *config_dir, int argc, char **argv, int comment)
{
	const char *err;
	int i, ret;

	for (i = 0; i < argc; i++)
		if (param_find(argv[i]) == NULL)
			msg_die("%s: unknown parameter", argv[i]);
	ternconf_lock(config_dir);
	for (i = 0; i < argc; i++) {
		if ((ret = config_unset(config_dir, argv[i], comment, &err)) <
		    0)
			msg_die("%s", err);
		if (ret == 0)
			msg_debug("%s: not set in tern.conf", argv[i]);
	}
	return 0;
}

/* One entry as postconf -M shows it: the columns aligned, one line. */
static void
ternconf_print_service(const struct service_def *s)
{
	const int ncol =
	    (int)(sizeof(ternconf_columns) / sizeof(ternconf_columns[0]));
	const char *p = s->line;
	int field = 0, col = 0;
	size_t n;

	/* The normalised line has one space between fields. */
	while (*p != '\0') {
		n = strcspn(p, " ");
		if (field > 0) {
			do {
				putchar(' ');
				col++;
			} while (field < ncol && col < ternconf_columns[field]);
		}
		fwrite(p, 1, n, stdout);
		col += (int)n;
		field++;
		p += n;
		p += strspn(p, " ");
	}
	putchar('\n');
}

/* 1 if the -M argument "name" or "name/type" selects s. */
static int
ternconf_service_match(const struct service_def *s, const char *arg)
{
	const char *slash = strchr(arg, '/');
	const char *type = s->type == SERVICE_INET ? "inet" : "unix";
	size_t n = slash != NULL ? (size_t)(slash - arg) : strlen(arg);

	if (strlen(s->name) != n || strncmp(s->name, arg, n) != 0)
		return 0;
	return slash == NULL || strcmp(slash + 1, type) == 0;
}

static int
ternconf_services(const char *config_dir, int argc, char **argv)
{
	char *path = xasprintf("%s/%s", config_dir, TERNCONF_SERVICES_FILE);
	struct service_def *defs = NULL;
	const char *err;
	int count = 0, i, j, found, status = 0;

	if (services_load(
	        path, (int)var_default_process_limit, &defs, &count, &err) < 0)
		msg_die("%s", err);
	if (argc == 0)
		for (j = 0; j < count; j++)
			ternconf_print_service(&defs[j]);
	for (i = 0; i < argc; i++) {
		found = 0;
		for (j = 0; j < count; j++)
			if (ternconf_service_match(&defs[j], argv[i])) {
				ternconf_print_service(&defs[j]);
				found = 1;
			}
		if (!found) {
			fprintf(stderr,
			    "ternconf: warning: %s: no such "
			    "service in %s\n",
			    argv[i], path);
			status = 1;
		}
	}
	services_free(&defs, count);
	free(path);
	return status;
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	enum ternconf_mode mode = TERNCONF_CURRENT;
	const struct param_def *p;
	int ch, expand = 0, value_only = 0, status = 0, i;
	size_t j;

	log_init("ternconf", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:dnehxMX#")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'd':
		case 'n':
		case 'e':
		case 'M':
		case 'X':
		case '#':
			if (mode != TERNCONF_CURRENT)
				ternconf_usage();
			mode = ch == 'd'   ? TERNCONF_DEFAULTS
			       : ch == 'n' ? TERNCONF_SET
			       : ch == 'e' ? TERNCONF_EDIT
			       : ch == 'M' ? TERNCONF_SERVICES
			       : ch == 'X' ? TERNCONF_REMOVE
			                   : TERNCONF_COMMENT;
			break;
		case 'h':
			value_only = 1;
			break;
		case 'x':
			expand = 1;
			break;
		default:
			ternconf_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (mode == TERNCONF_EDIT || mode == TERNCONF_REMOVE ||
	    mode == TERNCONF_COMMENT) {
		if (argc == 0 || expand || value_only)
			ternconf_usage();
		if (mode == TERNCONF_EDIT)
			ternconf_edit(config_dir, argc, argv);
		else
			ternconf_unset(
			    config_dir, argc, argv, mode == TERNCONF_COMMENT);
		return 0;
	}
	if ((mode == TERNCONF_DEFAULTS && expand) ||
	    (mode == TERNCONF_SERVICES && (expand || value_only)))
		ternconf_usage();
	if (mode != TERNCONF_DEFAULTS && config_load(config_dir, &err) < 0)
		msg_die("%s", err);
	if (mode == TERNCONF_SERVICES)
		status = ternconf_services(config_dir, argc, argv);
	else if (argc == 0) {
		for (j = 0; j < param_count; j++)
			ternconf_print(
			    &param_table[j], mode, expand, value_only);
	}
	for (i = 0; mode != TERNCONF_SERVICES && i < argc; i++) {
		if ((p = param_find(argv[i])) == NULL) {
			/* postconf's words, and it goes on with the rest. */
			fprintf(stderr,
			    "ternconf: warning: %s: unknown parameter\n",
			    argv[i]);
			status = 1;
			continue;
		}
		ternconf_print(p, mode, expand, value_only);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		msg_die("write error on standard output");
	return status;
}
