/* SPDX-License-Identifier: MIT */
/*
 * ternconf: prints and edits tern.conf parameters (the postconf idea).
 * Values print as written in tern.conf, or as the default when not set
 * there ($name references unexpanded unless -x); -d prints each default
 * with its one-line description from the parameter table; -n only what
 * tern.conf sets; -e name=value... rewrites tern.conf after checking the
 * new values the way every daemon will load them. No RFCs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"

/* The longest value config_edit() writes (half a tern.conf line). */
#define TERNCONF_VALUE_MAX 4096

enum ternconf_mode {
	TERNCONF_CURRENT,  /* effective values */
	TERNCONF_DEFAULTS, /* -d */
	TERNCONF_SET,      /* -n */
	TERNCONF_EDIT,     /* -e */
};

static void MTA_NORETURN
ternconf_usage(void)
{
	fprintf(stderr,
	    "usage: ternconf [-c config_dir] [-d | -n] [-x] [name ...]\n"
	    "       ternconf [-c config_dir] -e name=value ...\n");
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
ternconf_print(const struct param_def *p, enum ternconf_mode mode, int expand)
{
	if (mode == TERNCONF_DEFAULTS)
		printf("# %s\n%s = %s\n", p->doc, p->name, p->defval);
	else if (mode == TERNCONF_CURRENT || config_raw(p->name) != NULL)
		printf("%s = %s\n", p->name, ternconf_value(p, expand));
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
			msg_die("unknown parameter: %s", names[i]);
		/* Caught before the first edit, so none is half applied. */
		if (strpbrk(values[i], "\r\n") != NULL)
			msg_die("%s: a value is one line", names[i]);
		if (strlen(values[i]) > TERNCONF_VALUE_MAX)
			msg_die("%s: value longer than %d bytes", names[i],
			    TERNCONF_VALUE_MAX);
		config_override(names[i], values[i]);
	}
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

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	enum ternconf_mode mode = TERNCONF_CURRENT;
	const struct param_def *p;
	int ch, expand = 0, status = 0, i;
	size_t j;

	log_init("ternconf", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:dnex")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'd':
		case 'n':
		case 'e':
			if (mode != TERNCONF_CURRENT)
				ternconf_usage();
			mode = ch == 'd'   ? TERNCONF_DEFAULTS
			       : ch == 'n' ? TERNCONF_SET
			                   : TERNCONF_EDIT;
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
	if (mode == TERNCONF_EDIT) {
		if (argc == 0 || expand)
			ternconf_usage();
		ternconf_edit(config_dir, argc, argv);
		return 0;
	}
	if (mode == TERNCONF_DEFAULTS && expand)
		ternconf_usage();
	if (mode != TERNCONF_DEFAULTS && config_load(config_dir, &err) < 0)
		msg_die("%s", err);
	if (argc == 0) {
		for (j = 0; j < param_count; j++)
			ternconf_print(&param_table[j], mode, expand);
	}
	for (i = 0; i < argc; i++) {
		if ((p = param_find(argv[i])) == NULL) {
			fprintf(stderr, "ternconf: unknown parameter: %s\n",
			    argv[i]);
			status = 1;
			continue;
		}
		ternconf_print(p, mode, expand);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		msg_die("write error on standard output");
	return status;
}
