/* SPDX-License-Identifier: MIT */
/*
 * ternuser: manages the virtual mailbox users. It edits $user_file (the
 * Dovecot passwd-file that the auth service reads, root:$auth_user 0640),
 * which also rewrites $virtual_mailbox_list (the addresses smtpd accepts
 * and their quotas, which local delivery applies), creates each new
 * user's maildir in $virtual_mailbox_base owned by $vmail_user, changes
 * passwords and quotas, and deletes users (their mail too with --purge,
 * removed as $vmail_user without following links). Passwords come from
 * a terminal without echo, from standard input, or from -p, and are
 * stored hashed, or in clear with -s PLAIN for a user who logs in with
 * APOP (RFC 1939 7). User names are RFC 5321 mailbox addresses.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/userdb.h"

/* Virtual store and domain directories: traversable, not listable. */
#define TERNUSER_DIR_MODE     0711
/* A password line: the password, CR LF and the NUL. */
#define TERNUSER_LINE_MAX     (USERDB_PASSWORD_MAX + 3)
/* How long to wait for another ternuser's lock, polled every few ms. */
#define TERNUSER_LOCK_WAIT_MS 10000
#define TERNUSER_LOCK_POLL_MS 20
#define TERNUSER_NS_PER_MS    1000000L
#define TERNUSER_LOCK_MODE    0600
/* Directory levels --purge descends into a mailbox before giving up. */
#define TERNUSER_PURGE_DEPTH  64
/* Arguments a command takes besides its options. */
#define TERNUSER_ARGS_MAX     3

static void MTA_NORETURN
ternuser_usage(void)
{
	fprintf(stderr,
	    "usage: ternuser [-c config_dir] add [-s CRYPT|PLAIN] [-p PASSWORD] "
	    "USER@DOMAIN [-]\n"
	    "       ternuser [-c config_dir] passwd [-s CRYPT|PLAIN] "
	    "[-p PASSWORD] USER@DOMAIN [-]\n"
	    "       ternuser [-c config_dir] del [--purge] USER@DOMAIN\n"
	    "       ternuser [-c config_dir] list\n"
	    "       ternuser [-c config_dir] quota USER@DOMAIN SIZE|- "
	    "[COUNT|-]\n");
	exit(1);
}

/* Splits USER@DOMAIN; the domain comes back lower-case. */
static void
ternuser_split(const char *name, char **local_r, char **domain_r)
{
	if (addr_split(name, local_r, domain_r) < 0 || *domain_r == NULL)
		msg_die("%s: expected USER@DOMAIN", name);
}

/* One line from f without its CR LF; NULL at EOF. Caller frees. */
static char *
ternuser_read_line(FILE *f)
{
	char line[TERNUSER_LINE_MAX], *pw;
	size_t len;

	if (fgets(line, sizeof(line), f) == NULL)
		return NULL;
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	else if (!feof(f))
		msg_die(
		    "password longer than %u characters", USERDB_PASSWORD_MAX);
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	pw = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return pw;
}

/* The terminal's settings while echo is off, for a signal to restore. */
static struct termios ternuser_tty;
static volatile sig_atomic_t ternuser_echo_off;

static void
ternuser_restore_echo(int sig)
{
	if (ternuser_echo_off)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &ternuser_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Prompts on the terminal with echo off; caller frees. */
static char *
ternuser_prompt(const char *prompt)
{
	struct termios quiet;
	char *pw;

	if (tcgetattr(STDIN_FILENO, &ternuser_tty) < 0)
		msg_die("terminal: %s", strerror(errno));
	quiet = ternuser_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	signal(SIGINT, ternuser_restore_echo);
	signal(SIGTERM, ternuser_restore_echo);
	signal(SIGHUP, ternuser_restore_echo);
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	ternuser_echo_off = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
		msg_die("terminal: %s", strerror(errno));
	pw = ternuser_read_line(stdin);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &ternuser_tty);
	ternuser_echo_off = 0;
	fprintf(stderr, "\n");
	if (pw == NULL)
		msg_die("no password given");
	return pw;
}

/*
 * The new password: -p's argument (cleared from argv), else one line of
 * standard input when it is not a terminal or "-" was given, else asked
 * twice on the terminal without echo. Caller frees.
 */
static char *
ternuser_password(char *arg, int from_stdin)
{
	char *pw, *again;

	if (arg != NULL) {
		pw = xstrdup(arg);
		explicit_bzero(arg, strlen(arg));
		return pw;
	}
	if (from_stdin || !isatty(STDIN_FILENO)) {
		if ((pw = ternuser_read_line(stdin)) == NULL)
			msg_die("no password on standard input");
		return pw;
	}
	pw = ternuser_prompt("New password: ");
	again = ternuser_prompt("Retype new password: ");
	if (strcmp(pw, again) != 0)
		msg_die("the passwords differ; nothing changed");
	explicit_bzero(again, strlen(again));
	free(again);
	return pw;
}

/*
 * Every change loads, edits and rewrites the user file and the address
 * list: two ternuser runs at once would lose one's change, or leave the
 * two files disagreeing. $user_file.lock serialises them; the lock is
 * held until exit (the descriptor is never closed).
 */
static void
ternuser_lock(void)
{
	struct timespec poll = {0, TERNUSER_LOCK_POLL_MS * TERNUSER_NS_PER_MS};
	char *path = xasprintf("%s.lock", var_user_file);
	int fd, waited = 0;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    TERNUSER_LOCK_MODE);
	if (fd < 0)
		msg_die("open %s: %s", path, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			msg_die("lock %s: %s", path, strerror(errno));
		if (waited >= TERNUSER_LOCK_WAIT_MS)
			msg_die("%s: another ternuser has held it for %d "
			        "ms; try again later",
			    path, TERNUSER_LOCK_WAIT_MS);
		nanosleep(&poll, NULL);
		waited += TERNUSER_LOCK_POLL_MS;
	}
	free(path);
}

/*
 * Creates the maildir as $vmail_user, and the store and domain
 * directories above it when missing (mode 0711, owned by $vmail_user).
 * Inside a store that $vmail_user owns, the domain directory is made as
 * $vmail_user too: root must not mkdir and chmod by name in a directory
 * that another user could swap a symlink into between the two calls.
 */
static void
ternuser_mailbox(const char *domain, const char *maildir)
{
	struct priv_user vmail = {0};
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int root = geteuid() == 0, rc = 0, as_vmail;
	char *domain_dir = xasprintf("%s/%s", var_virtual_mailbox_base, domain);
	const char *err;
	struct stat st;

	if (root) {
		if (priv_lookup_user(var_vmail_user, &vmail) < 0)
			msg_die("vmail_user %s does not exist", var_vmail_user);
		uid = vmail.uid;
		gid = vmail.gid;
	}
	if (stat(var_virtual_mailbox_base, &st) < 0) {
		if (file_ensure_dir(var_virtual_mailbox_base, TERNUSER_DIR_MODE,
		        uid, gid, NULL, &err) < 0)
			msg_die("%s", err);
		st.st_uid = uid;
	}
	as_vmail = root && st.st_uid != 0;
	if (!as_vmail && stat(domain_dir, &st) < 0 &&
	    file_ensure_dir(
	        domain_dir, TERNUSER_DIR_MODE, uid, gid, NULL, &err) < 0)
		msg_die("%s", err);
	if (root && priv_become(uid, gid) < 0)
		msg_die(
		    "cannot switch to %s: %s", var_vmail_user, strerror(errno));
	if (as_vmail && stat(domain_dir, &st) < 0)
		rc = file_ensure_dir(domain_dir, TERNUSER_DIR_MODE, (uid_t)-1,
		    (gid_t)-1, NULL, &err);
	if (rc == 0)
		rc = maildir_create(maildir, &err);
	if (root && priv_restore() < 0)
		msg_die("cannot return to root: %s", strerror(errno));
	if (rc < 0)
		msg_die("%s", err);
	priv_user_free(&vmail);
	free(domain_dir);
}

static int
ternuser_domain_listed(const char *domain)
{
	char **list = config_list(var_virtual_mailbox_domains);
	int i, found = 0;

	for (i = 0; list[i] != NULL && !found; i++)
		found = str_eq_ci(list[i], domain);
	config_list_free(list);
	return found;
}

static void
ternuser_save(const struct userdb *db)
{
	/*
	 * Root gives the hashes to root and $auth_user's group (mode 0640):
	 * the auth service reads them, local delivery (root) too, and no
	 * process of $mail_owner can. Without that user the file keeps
	 * whatever owner it was given (tern init), else root's.
	 */
	uid_t uid = geteuid() == 0 ? 0 : (uid_t)-1;
	gid_t gid = geteuid() == 0 ? 0 : (gid_t)-1;
	struct priv_user auth;
	const char *err;
	struct stat st;

	if (geteuid() == 0 && priv_lookup_user(var_auth_user, &auth) == 0) {
		gid = auth.gid;
		priv_user_free(&auth);
	} else if (geteuid() == 0 && stat(var_user_file, &st) == 0) {
		uid = st.st_uid;
		gid = st.st_gid;
	}

	if (userdb_save(db, var_user_file, var_virtual_mailbox_list, uid, gid,
	        &err) < 0)
		msg_die("%s", err);
}

/* Loads the user file under the lock, for a change. */
static void
ternuser_load_locked(struct userdb *db)
{
	const char *err;

	ternuser_lock();
	if (userdb_load(var_user_file, db, &err) < 0)
		msg_die("%s", err);
}

/* -s: Dovecot's scheme names for what userdb stores. */
static enum userdb_scheme
ternuser_scheme(const char *arg)
{
	if (arg == NULL || str_eq_ci(arg, "CRYPT"))
		return USERDB_HASHED;
	if (str_eq_ci(arg, "PLAIN")) {
		/* Said every time: the admin must know what the file holds. */
		fprintf(stderr, "ternuser: the password is stored in clear "
		                "(for APOP): keep the user file unreadable "
		                "to all but root and the auth service\n");
		return USERDB_PLAIN;
	}
	msg_die("-s %s: expected CRYPT (a hash, the default) or PLAIN (in "
	        "clear, for APOP)",
	    arg);
}

static void
ternuser_add(const char *name, char *password_arg, int from_stdin,
    enum userdb_scheme scheme)
{
	char *local, *domain, *lname = xstrdup(name), *maildir, *password;
	struct userdb db;
	const char *err;

	str_lower(lname);
	ternuser_split(lname, &local, &domain);
	if (!ternuser_domain_listed(domain))
		msg_die("domain %s is not listed in "
		        "virtual_mailbox_domains",
		    domain);
	if ((maildir = resolve_virtual_maildir(local, domain)) == NULL)
		msg_die("%s: not usable as a mailbox name", name);
	/* Asked before the lock: a slow typist must not block others. */
	password = ternuser_password(password_arg, from_stdin);
	ternuser_load_locked(&db);
	if (userdb_add(&db, lname, password, scheme, &err) < 0)
		msg_die("%s: %s", lname, err);
	explicit_bzero(password, strlen(password));
	free(password);
	/* The mailbox first: a user never exists without one. */
	ternuser_mailbox(domain, maildir);
	ternuser_save(&db);
	userdb_free(&db);
	free(maildir);
	free(local);
	free(domain);
	free(lname);
}

static void
ternuser_passwd(const char *name, char *password_arg, int from_stdin,
    enum userdb_scheme scheme)
{
	struct userdb db;
	const char *err;
	char *password = ternuser_password(password_arg, from_stdin);

	ternuser_load_locked(&db);
	if (userdb_set_password(&db, name, password, scheme, &err) < 0)
		msg_die("%s: %s", name, err);
	explicit_bzero(password, strlen(password));
	free(password);
	ternuser_save(&db);
	userdb_free(&db);
}

/*
 * Removes name inside the directory dirfd and everything below it,
 * without following a symbolic link anywhere (they are removed as
 * links). 0, or -1 with errno.
 */
static int
ternuser_rmtree_at(int parent, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0, saved;

	if (unlinkat(parent, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno == ENOENT ? 0 : -1;
	if (depth >= TERNUSER_PURGE_DEPTH) {
		errno = ELOOP;
		return -1;
	}
	fd = openat(
	    parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		ret = ternuser_rmtree_at(dirfd(d), de->d_name, depth + 1);
	}
	saved = errno;
	closedir(d);
	if (ret < 0) {
		errno = saved;
		return -1;
	}
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1
	                                                                   : 0;
}

/*
 * Removes the user's directory ($virtual_mailbox_base/DOMAIN/USER, which
 * holds Maildir/) as $vmail_user: root never removes by name in a tree
 * that another user can change. 0, or -1 with errno.
 */
static int
ternuser_purge(const char *local, const char *domain)
{
	char *domain_dir = xasprintf("%s/%s", var_virtual_mailbox_base, domain);
	struct priv_user vmail = {0};
	int root = geteuid() == 0, fd, rc = -1, saved = 0;

	if (root) {
		if (priv_lookup_user(var_vmail_user, &vmail) < 0)
			msg_die("vmail_user %s does not exist", var_vmail_user);
		if (priv_become(vmail.uid, vmail.gid) < 0)
			msg_die("cannot switch to %s: %s", var_vmail_user,
			    strerror(errno));
	}
	fd = open(domain_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		rc = ternuser_rmtree_at(fd, local, 0);
		saved = errno;
		close(fd);
	} else if (errno == ENOENT) {
		rc = 0;
	} else {
		saved = errno;
	}
	if (root && priv_restore() < 0)
		msg_die("cannot return to root: %s", strerror(errno));
	priv_user_free(&vmail);
	free(domain_dir);
	errno = saved;
	return rc;
}

static void
ternuser_del(const char *name, int purge)
{
	char *local, *domain, *maildir, why[PATH_MAX];
	struct userdb db;
	const char *err;

	ternuser_split(name, &local, &domain);
	str_lower(local);
	maildir = resolve_virtual_maildir(local, domain);
	ternuser_load_locked(&db);
	if (userdb_del(&db, name, &err) < 0)
		msg_die("%s: %s", name, err);
	/* The user goes first: smtpd then refuses new mail for it. */
	ternuser_save(&db);
	userdb_free(&db);
	if (purge && maildir != NULL) {
		if (ternuser_purge(local, domain) < 0) {
			/* Freed first: LeakSanitizer checks the exit. */
			snprintf(why, sizeof(why), "%s", maildir);
			err = strerror(errno);
			free(maildir);
			free(local);
			free(domain);
			msg_die("removed %s, but not all of its mail in %s: %s",
			    name, why, err);
		}
		printf("ternuser: removed %s and its mail\n", name);
	} else if (maildir != NULL) {
		printf("ternuser: removed %s; its mail is kept in %s\n", name,
		    maildir);
	}
	free(maildir);
	free(local);
	free(domain);
}

/* "-": not set (the defaults apply); else a number, for SIZE with an
 * optional k, m or g suffix (powers of 1024). */
static int64_t
ternuser_limit(const char *arg, int size)
{
	uint64_t v;
	int bad;

	if (strcmp(arg, "-") == 0)
		return -1;
	bad = size ? str_to_size(arg, &v) : str_to_u64(arg, INT64_MAX, &v);
	if (bad < 0 || v > INT64_MAX)
		msg_die("%s: expected a %s or -", arg,
		    size ? "size in bytes (k, m, g suffixes)" : "number");
	return (int64_t)v;
}

static void
ternuser_quota(const char *name, const char *size, const char *count)
{
	struct userdb_limits l;
	const struct userdb_entry *e;
	struct userdb db;
	const char *err;
	int64_t bytes = ternuser_limit(size, 1);

	ternuser_load_locked(&db);
	if ((e = userdb_find(&db, name)) == NULL)
		msg_die("%s: no such user", name);
	userdb_entry_limits(e, &l);
	l.bytes = bytes;
	if (count != NULL)
		l.count = ternuser_limit(count, 0);
	if (userdb_set_limits(&db, name, &l, &err) < 0)
		msg_die("%s: %s", name, err);
	ternuser_save(&db);
	userdb_free(&db);
}

static void
ternuser_list(void)
{
	struct userdb_limits l;
	struct userdb db;
	const char *err;
	int i;

	if (userdb_load(var_user_file, &db, &err) < 0)
		msg_die("%s", err);
	for (i = 0; i < db.count; i++) {
		userdb_entry_limits(&db.v[i], &l);
		printf("%s", db.v[i].name);
		if (l.bytes >= 0)
			printf("\tstorage=%lld", (long long)l.bytes);
		if (l.count >= 0)
			printf("\tmessages=%lld", (long long)l.count);
		printf("\n");
	}
	userdb_free(&db);
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err, *cmd;
	char *password = NULL, *scheme = NULL, *args[TERNUSER_ARGS_MAX];
	int ch, i, n = 0, from_stdin = 0, purge = 0;

	log_init("ternuser", LOG_DEST_STDERR);
	/* '+': options end at the command, which has its own. */
	while ((ch = getopt(argc, argv, "+c:p:s:")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'p':
			password = optarg;
			break;
		case 's':
			scheme = optarg;
			break;
		default:
			ternuser_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		ternuser_usage();
	cmd = argv[0];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
			password = argv[++i];
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			scheme = argv[++i];
		else if (strcmp(argv[i], "--purge") == 0)
			purge = 1;
		else if (strcmp(argv[i], "-") == 0 && n == 1 &&
		         strcmp(cmd, "quota") != 0)
			from_stdin = 1;
		else if (n < TERNUSER_ARGS_MAX && (argv[i][0] != '-' || n > 0))
			args[n++] = argv[i];
		else
			ternuser_usage();
	}
	if (config_load(config_dir, &err) < 0)
		msg_die("%s", err);
	if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "passwd") == 0) && n == 2)
		msg_die("a password on the command line shows in ps(1): give "
		        "it with -p, or on standard input with -");
	if ((password != NULL || from_stdin || scheme != NULL) &&
	    strcmp(cmd, "add") != 0 && strcmp(cmd, "passwd") != 0)
		ternuser_usage();
	if (purge && strcmp(cmd, "del") != 0)
		ternuser_usage();
	if (strcmp(cmd, "add") == 0 && n == 1)
		ternuser_add(
		    args[0], password, from_stdin, ternuser_scheme(scheme));
	else if (strcmp(cmd, "passwd") == 0 && n == 1)
		ternuser_passwd(
		    args[0], password, from_stdin, ternuser_scheme(scheme));
	else if (strcmp(cmd, "del") == 0 && n == 1)
		ternuser_del(args[0], purge);
	else if (strcmp(cmd, "list") == 0 && n == 0)
		ternuser_list();
	else if (strcmp(cmd, "quota") == 0 && (n == 2 || n == 3))
		ternuser_quota(args[0], args[1], n == 3 ? args[2] : NULL);
	else
		ternuser_usage();
	if (fflush(stdout) != 0 || ferror(stdout))
		msg_die("write error on standard output");
	return 0;
}
