/* SPDX-License-Identifier: MIT */
/*
 * ternuser: manages the virtual mailbox users. It edits $user_file (the
 * Dovecot passwd-file that local delivery and the auth service read,
 * root:$auth_user 0640), which also rewrites $virtual_mailbox_list (the
 * addresses smtpd accepts), and creates each new user's maildir in
 * $virtual_mailbox_base owned by $vmail_user. Deleting a user keeps the
 * mail. No RFCs; user names are RFC 5321 mailbox addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void MTA_NORETURN
ternuser_usage(void)
{
	fprintf(stderr,
	    "usage: ternuser [-c config_dir] add USER@DOMAIN PASSWORD|-\n"
	    "       ternuser [-c config_dir] del USER@DOMAIN\n"
	    "       ternuser [-c config_dir] list\n");
	exit(1);
}

/* Splits USER@DOMAIN; the domain comes back lower-case. */
static void
ternuser_split(const char *name, char **local_r, char **domain_r)
{
	if (addr_split(name, local_r, domain_r) < 0 || *domain_r == NULL)
		msg_die("%s: expected USER@DOMAIN", name);
}

/* "-" reads one line from stdin, so the password stays out of ps(1). */
static char *
ternuser_password(char *arg)
{
	char line[TERNUSER_LINE_MAX], *pw;
	size_t len;

	if (strcmp(arg, "-") != 0) {
		pw = xstrdup(arg);
		explicit_bzero(arg, strlen(arg));
		return pw;
	}
	if (fgets(line, sizeof(line), stdin) == NULL)
		msg_die("no password on standard input");
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	else if (!feof(stdin))
		msg_die(
		    "password longer than %u characters", USERDB_PASSWORD_MAX);
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	pw = xstrdup(line);
	explicit_bzero(line, sizeof(line));
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

static void
ternuser_add(const char *name, char *password_arg)
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
	password = ternuser_password(password_arg);
	ternuser_lock();
	if (userdb_load(var_user_file, &db, &err) < 0)
		msg_die("%s", err);
	if (userdb_add(&db, lname, password, &err) < 0)
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
ternuser_del(const char *name)
{
	char *local, *domain, *maildir;
	struct userdb db;
	const char *err;

	ternuser_split(name, &local, &domain);
	ternuser_lock();
	if (userdb_load(var_user_file, &db, &err) < 0)
		msg_die("%s", err);
	if (userdb_del(&db, name, &err) < 0)
		msg_die("%s: %s", name, err);
	ternuser_save(&db);
	userdb_free(&db);
	maildir = resolve_virtual_maildir(local, domain);
	if (maildir != NULL)
		printf("ternuser: removed %s; its mail is kept in %s\n", name,
		    maildir);
	free(maildir);
	free(local);
	free(domain);
}

static void
ternuser_list(void)
{
	struct userdb db;
	const char *err;
	int i;

	if (userdb_load(var_user_file, &db, &err) < 0)
		msg_die("%s", err);
	for (i = 0; i < db.count; i++)
		printf("%s\n", db.v[i].name);
	userdb_free(&db);
}

int
main(int argc, char **argv)
{
	const char *config_dir = TERN_CONFIG_DIR, *err;
	int ch;

	log_init("ternuser", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		default:
			ternuser_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		ternuser_usage();
	if (config_load(config_dir, &err) < 0)
		msg_die("%s", err);
	if (strcmp(argv[0], "add") == 0 && argc == 3)
		ternuser_add(argv[1], argv[2]);
	else if (strcmp(argv[0], "del") == 0 && argc == 2)
		ternuser_del(argv[1]);
	else if (strcmp(argv[0], "list") == 0 && argc == 1)
		ternuser_list();
	else
		ternuser_usage();
	if (fflush(stdout) != 0 || ferror(stdout))
		msg_die("write error on standard output");
	return 0;
}
