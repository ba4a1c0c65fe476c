/* SPDX-License-Identifier: MIT */
/*
 * services.conf: one line per service, the master.cf idea:
 *
 *   # name        type  private unpriv chroot maxproc command + args
 *   smtp          inet  n       y      n      2       smtpd
 *   127.0.0.1:2525 inet n       y      n      -       smtpd -o smtpd_banner=x
 *   qmgr          unix  y       y      n      1       qmgr
 *   local         unix  y       n      n      4       local
 *   auth          unix  y       $auth_user n   1       auth
 *
 * '-' selects the default (private y, unpriv y, chroot n, maxproc
 * $default_process_limit). unpriv is y (run as $mail_owner), n (stay
 * root) or a user name to run as, with its primary group only: POSIX
 * portable characters ([A-Za-z0-9._-], no leading '-'), at most 32, and
 * $name / ${name} expanded from tern.conf when the file is parsed (so
 * call config_load first). Lines starting with white space continue the
 * previous one; '#' starts a comment line. inet names are PORT or
 * HOST:PORT ([v6addr]:PORT); a bare PORT binds every $inet_interfaces
 * address. unix names are socket names under queue_directory/private/ or
 * public/ depending on the private column, or login/NAME: the socket
 * $login_directory/NAME (root-owned directory; the socket is root's,
 * mode 0660, group $login_user's primary group; the private column is
 * ignored). chroot is y ($queue_directory), n, - (n) or an absolute
 * directory, $name expanded ($login_directory): no "." or ".."
 * components, at most 512 bytes of [A-Za-z0-9._+/-]. "-o name=value"
 * arguments are passed on to the daemon, which applies them as config
 * overrides.
 */
#ifndef TERN_SERVICES_H
#define TERN_SERVICES_H

enum service_type { SERVICE_INET, SERVICE_UNIX };

/* A unix service named login/NAME listens on $login_directory/NAME. */
#define SERVICES_LOGIN_PREFIX "login/"

struct service_def {
	char *name;
	enum service_type type;
	int private;
	int unpriv;	/* 1: the daemon drops root */
	char *user;	/* ... to this user (expanded), or NULL for
			 * $mail_owner */
	int chroot;
	char *chroot_dir; /* with chroot: the directory (expanded), or NULL
			   * for $queue_directory */
	int maxproc;
	int argc;
	char **argv;	/* NULL-terminated: command (relative to
			 * daemon_directory unless absolute) then args */
	char *line;	/* normalised text of the whole entry; equal text means
			 * an unchanged service on reload */
	int lineno;
};

/*
 * Parses path. Returns 0 with a malloc'd array (free with services_free),
 * or -1 with *error_r "services.conf:7: unknown type 'tcp'" (static, valid
 * until next call). Duplicate names are errors. default_maxproc fills '-'.
 */
int services_load(const char *path, int default_maxproc,
    struct service_def **list_r, int *count_r, const char **error_r);
/* Same, from a string (for tests); name is used in error messages. */
int services_parse(const char *text, const char *name, int default_maxproc,
    struct service_def **list_r, int *count_r, const char **error_r);
void services_free(struct service_def **list_r, int count);
/* For a unix service login/NAME: NAME (inside def->name); else NULL. */
const char *services_login_name(const struct service_def *def);

#endif
