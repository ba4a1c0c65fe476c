/* SPDX-License-Identifier: MIT */
/*
 * "tern check": everything master needs before it can start, checked
 * from the command line where the person can see it (Postfix's
 * "postfix check"): tern.conf and services.conf parse, the programs in
 * services.conf exist, the users and groups exist (when run as root),
 * every queue directory exists with its mode and owner, and only root
 * and the auth service's group can read the user file. The queue is
 * created or repaired here, never by the daemons; so is a self-signed TLS
 * certificate where none is configured yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "base/file.h"
#include "base/mem.h"
#include "base/priv.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/services.h"
#include "mail/userdb.h"
#include "tls/tls.h"
#include "tern.h"

#define TERN_QUEUE_ROOT_MODE   0755
#define TERN_SERVICES_FILE     "services.conf"
/* The daemons' configuration checks, all of them together. */
#define TERN_CHECK_WAIT_MS     35000
#define TERN_DIR_NAME_MAX      4096
#define TERN_TLS_DIR_MODE      0755
#define TERN_SETGID_MODE       02755
/* Self-signed certificates: ten years, to be replaced by a real one. */
#define TERN_TLS_DAYS          3650
#define TERN_TLS_FALLBACK_NAME "localhost"

/* Numeric identities of the queue owners; all -1 when not root. */
struct tern_ids {
	uid_t mail_uid;
	gid_t mail_gid;
	gid_t setgid_gid;
	gid_t auth_gid; /* the group that may read the user file */
};

/*
 * The auth service's user: its group alone may read the password hashes,
 * so it must be neither mail_owner nor share mail_owner's group, whose
 * processes face the network.
 */
static int
tern_check_auth_user(struct tern_ids *ids)
{
	struct priv_user u;
	int errors = 0;

	if (priv_lookup_user(var_auth_user, &u) < 0) {
		tern_error("auth_user '%s' does not exist; create it with: "
		           "useradd -r -U -d /nonexistent -s /usr/sbin/nologin "
		           "%s",
		    var_auth_user, var_auth_user);
		return 1;
	}
	if (u.uid == 0 || u.uid == ids->mail_uid || u.gid == 0 ||
	    u.gid == ids->mail_gid) {
		tern_error("auth_user '%s' (uid %ld, gid %ld) must have a user "
		           "and group of its own, not root's or mail_owner's",
		    var_auth_user, (long)u.uid, (long)u.gid);
		errors++;
	} else
		ids->auth_gid = u.gid;
	priv_user_free(&u);
	return errors;
}

static int
tern_check_ids(struct tern_ids *ids)
{
	struct priv_user u;
	int errors = 0;

	ids->mail_uid = (uid_t)-1;
	ids->mail_gid = ids->setgid_gid = ids->auth_gid = (gid_t)-1;
	/* As an ordinary user everything runs as, and is owned by, that user. */
	if (geteuid() != 0) {
		ids->mail_uid = geteuid();
		return 0;
	}
	if (priv_lookup_user(var_mail_owner, &u) < 0) {
		tern_error("mail_owner user '%s' does not exist; create it "
		           "with: useradd -r -U %s",
		    var_mail_owner, var_mail_owner);
		errors++;
	} else {
		ids->mail_uid = u.uid;
		ids->mail_gid = u.gid;
		priv_user_free(&u);
	}
	if (priv_lookup_group(var_setgid_group, &ids->setgid_gid) < 0) {
		tern_error("setgid_group '%s' does not exist; create it with: "
		           "groupadd -r %s",
		    var_setgid_group, var_setgid_group);
		errors++;
	}
	if (priv_lookup_user(var_vmail_user, &u) < 0) {
		tern_error("vmail_user '%s' does not exist; create it with: "
		           "useradd -r -U %s",
		    var_vmail_user, var_vmail_user);
		errors++;
	} else {
		priv_user_free(&u);
	}
	return errors + tern_check_auth_user(ids);
}

/*
 * A service's own user (services.conf unpriv column) must exist when
 * root starts the mail system, and must not be root in disguise: the
 * daemon would refuse to start.
 */
static int
tern_check_service_user(const char *path, const struct service_def *def)
{
	struct priv_user u;
	int errors = 0;

	/* $auth_user has a check of its own (tern_check_auth_user). */
	if (geteuid() != 0 || def->user == NULL ||
	    strcmp(def->user, var_auth_user) == 0)
		return 0;
	if (priv_lookup_user(def->user, &u) < 0) {
		tern_error("%s:%d: service %s: user '%s' does not exist; "
		           "create it with: useradd -r -U -d /nonexistent "
		           "-s /usr/sbin/nologin %s",
		    path, def->lineno, def->name, def->user, def->user);
		return 1;
	}
	if (u.uid == 0) {
		tern_error("%s:%d: service %s: user '%s' has uid 0; use n in "
		           "the unpriv column to run a service as root",
		    path, def->lineno, def->name, def->user);
		errors++;
	}
	priv_user_free(&u);
	return errors;
}

/*
 * Runs "PROGRAM -c config_dir -t ARGS" (server.h) for the programs of
 * daemon_directory (an absolute command may be anything): each checks
 * the configuration it would run with, its services.conf options
 * included, and says on stderr what it would refuse at start (an open
 * relay, a table that does not parse...).
 */
/*
 * The daemons whose server_ops have a check (the others would only load
 * tern.conf again, which costs a process start per service and tells
 * nothing new). Absolute commands may be anything and are never run.
 */
static int
tern_daemon_checks(const char *command)
{
	static const char *const checked[] = {"smtpd", "qmgr", "smtp"};
	size_t i;

	for (i = 0; i < sizeof(checked) / sizeof(checked[0]); i++)
		if (strcmp(command, checked[i]) == 0)
			return 1;
	return 0;
}

/*
 * One daemon's check, started by tern_check_daemon_start: its stderr
 * goes to a memory file, shown in services.conf's order once it ended,
 * so that the checks run side by side (each is a process start, under
 * sanitizers a slow one) and still read as if one after the other.
 */
struct tern_daemon_check {
	const struct service_def *def;
	pid_t pid;
	int out;
};

static void
tern_check_daemon_start(const char *config_dir,
    const struct service_def *def, const char *prog,
    struct tern_daemon_check *c)
{
	char **argv = xcalloc((size_t)def->argc + 4, sizeof(*argv));
	int i;

	c->def = def;
	c->pid = -1;
	c->out = memfd_create("tern-check", MFD_CLOEXEC);
	argv[0] = (char *)prog;
	argv[1] = (char *)"-c";
	argv[2] = (char *)config_dir;
	argv[3] = (char *)"-t";
	for (i = 1; i < def->argc; i++)
		argv[3 + i] = def->argv[i];
	fflush(NULL);
	c->pid = fork();
	if (c->pid == 0) {
		if (c->out >= 0 && dup2(c->out, STDERR_FILENO) < 0)
			_exit(127);
		execv(prog, argv);
		_exit(127);
	}
	free(argv);
	if (c->pid < 0)
		tern_warn("fork: %s", strerror(errno));
}

/* Waits for the check (until deadline_ms), shows its output; 1 if the
 * daemon refused the configuration or did not finish. */
static int
tern_check_daemon_finish(
    const char *path, struct tern_daemon_check *c, long deadline_ms)
{
	char buf[4096];
	int status = 0, failed = 0;
	ssize_t n;

	if (c->pid < 0)
		goto out;
	if (tern_wait_child_until(c->pid, deadline_ms, &status) < 0) {
		kill(c->pid, SIGKILL);
		(void)waitpid(c->pid, &status, 0);
		failed = 2;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		failed = 1;
	}
	if (c->out >= 0 && lseek(c->out, 0, SEEK_SET) == 0) {
		fflush(stderr);
		while ((n = read(c->out, buf, sizeof(buf))) > 0)
			if (write(STDERR_FILENO, buf, (size_t)n) != n)
				break;
	}
	if (failed == 2)
		tern_error("%s:%d: service %s: %s -t did not finish", path,
		    c->def->lineno, c->def->name, c->def->argv[0]);
	else if (failed)
		tern_error("%s:%d: service %s: %s refuses this configuration "
		           "(see above)",
		    path, c->def->lineno, c->def->name, c->def->argv[0]);
out:
	if (c->out >= 0)
		close(c->out);
	return failed != 0;
}

/*
 * A transport the default routes name with no unix service of that name
 * (a services.conf kept from before the service existed, say): its mail
 * would only wait in the queue, so say so. The built-ins need none.
 */
static void
tern_check_transports(const char *path, const struct service_def *defs,
    int count)
{
	const char *params[] = {"default_transport", "relay_transport",
	    "local_transport", "virtual_transport"};
	const char *value, *colon;
	size_t i, len;
	int k, found;

	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		if ((value = config_value(params[i])) == NULL)
			continue;
		colon = strchr(value, ':');
		len = colon != NULL ? (size_t)(colon - value) : strlen(value);
		if (len == 0 || (len == 5 && strncmp(value, "error", 5) == 0) ||
		    (len == 5 && strncmp(value, "retry", 5) == 0) ||
		    (len == 7 && strncmp(value, "discard", 7) == 0))
			continue;
		for (k = 0, found = 0; k < count && !found; k++)
			found = defs[k].type == SERVICE_UNIX &&
			        strlen(defs[k].name) == len &&
			        strncmp(defs[k].name, value, len) == 0;
		if (!found)
			tern_warn("%s: no unix service \"%.*s\" for %s: its mail "
			          "will wait in the queue (add the line from the "
			          "services.conf that tern installs)",
			    path, (int)len, value, params[i]);
	}
}

/*
 * $login_user, when a service uses it (a login/NAME socket's group, or a
 * service chrooted to $login_directory): it must exist and have a user
 * and group of its own, since its group may connect to spawn, which runs
 * as root, and its processes parse everything the network sends.
 */
static int
tern_check_login_user(
    const char *path, const struct service_def *defs, int count)
{
	struct priv_user u, owner;
	int i, used = 0, errors = 0;

	for (i = 0; i < count && !used; i++)
		used = services_login_name(&defs[i]) != NULL ||
		       (defs[i].chroot_dir != NULL &&
		           strcmp(defs[i].chroot_dir, var_login_directory) == 0) ||
		       (defs[i].user != NULL &&
		           strcmp(defs[i].user, var_login_user) == 0);
	if (!used || geteuid() != 0)
		return 0;
	if (priv_lookup_user(var_login_user, &u) < 0) {
		tern_error("%s: login_user '%s' does not exist; create it with: "
		           "useradd -r -U -d /nonexistent -s /usr/sbin/nologin "
		           "%s",
		    path, var_login_user, var_login_user);
		return 1;
	}
	if (priv_lookup_user(var_mail_owner, &owner) < 0)
		owner.uid = 0, owner.gid = 0, owner.name = owner.home = NULL;
	if (u.uid == 0 || u.gid == 0 || u.uid == owner.uid ||
	    u.gid == owner.gid) {
		tern_error("login_user '%s' (uid %ld, gid %ld) must have a user "
		           "and group of its own, not root's or mail_owner's",
		    var_login_user, (long)u.uid, (long)u.gid);
		errors++;
	}
	priv_user_free(&owner);
	priv_user_free(&u);
	return errors;
}

static int
tern_check_services(const char *config_dir)
{
	char *path = xasprintf("%s/%s", config_dir, TERN_SERVICES_FILE), *prog;
	struct service_def *defs;
	struct tern_daemon_check *checks;
	const char *err;
	int count, i, nchecks = 0, errors = 0;
	long deadline;

	if (services_load(path, (int)var_default_process_limit, &defs, &count,
	        &err) < 0) {
		tern_error("%s", err);
		free(path);
		return 1;
	}
	checks = xcalloc((size_t)count + 1, sizeof(*checks));
	for (i = 0; i < count; i++) {
		prog = defs[i].argv[0][0] == '/'
		           ? xstrdup(defs[i].argv[0])
		           : xasprintf("%s/%s", var_daemon_directory,
		                 defs[i].argv[0]);
		/* Not fatal: master retries, and the program may come later. */
		if (access(prog, X_OK) < 0)
			tern_warn("%s:%d: service %s: %s: %s", path,
			    defs[i].lineno, defs[i].name, prog,
			    strerror(errno));
		else if (tern_daemon_checks(defs[i].argv[0]))
			tern_check_daemon_start(config_dir, &defs[i], prog,
			    &checks[nchecks++]);
		free(prog);
	}
	deadline = tern_now_ms() + TERN_CHECK_WAIT_MS;
	for (i = 0; i < nchecks; i++)
		errors += tern_check_daemon_finish(path, &checks[i], deadline);
	free(checks);
	for (i = 0; i < count; i++)
		errors += tern_check_service_user(path, &defs[i]);
	tern_check_transports(path, defs, count);
	errors += tern_check_login_user(path, defs, count);
	services_free(&defs, count);
	free(path);
	return errors;
}

static int
tern_check_dir(const char *dir, mode_t mode, uid_t uid, gid_t gid)
{
	const char *err;
	struct stat st;
	int changed;

	/* Only root can give a directory away; say so instead of EPERM. */
	if (geteuid() != 0 && lstat(dir, &st) == 0 && st.st_uid != uid) {
		tern_error("%s is owned by uid %ld, not by uid %ld that runs "
		           "the mail system; run tern as root or as its owner",
		    dir, (long)st.st_uid, (long)uid);
		return 1;
	}
	if (file_ensure_dir(dir, mode, uid, gid, &changed, &err) < 0) {
		tern_error("%s", err);
		return 1;
	}
	if (changed)
		printf("%s: created or fixed %s\n", TERN_PROGNAME, dir);
	return 0;
}

static int
tern_check_queue(const struct tern_ids *ids)
{
	const struct queue_dir_spec *q;
	uid_t root = geteuid(); /* the invoking user when not root */
	gid_t root_gid = root == 0 ? 0 : (gid_t)-1;
	uid_t uid;
	gid_t gid;
	char *path;
	int errors;

	errors = tern_check_dir(
	    var_queue_directory, TERN_QUEUE_ROOT_MODE, root, root_gid);
	for (q = queue_dir_specs; errors == 0 && q->name != NULL; q++) {
		switch (q->owner) {
		case QUEUE_OWNER_ROOT:
			uid = root;
			gid = root_gid;
			break;
		case QUEUE_OWNER_MAIL:
			uid = ids->mail_uid;
			gid = ids->mail_gid;
			break;
		default:
			uid = ids->mail_uid;
			gid = ids->setgid_gid;
			break;
		}
		path = queue_path(q->name, NULL);
		errors += tern_check_dir(path, q->mode, uid, gid);
		free(path);
	}
	return errors;
}

/*
 * TLS out of the box: where no certificate and no key exist yet at the
 * configured paths, a self-signed pair is made for $myhostname (RSA for
 * smtpd_tls_cert_file, ECDSA for smtpd_tls_eccert_file), so STARTTLS and
 * port 465 work from the first start. An existing file is never touched:
 * the admin puts a real certificate in its place.
 */
static int
tern_check_tls_pair(const char *cert, const char *key, enum tls_key_type type)
{
	char dir[TERN_DIR_NAME_MAX];
	const char *err, *host = var_myhostname;

	if (*cert == '\0' || *key == '\0' || access(cert, F_OK) == 0 ||
	    access(key, F_OK) == 0)
		return 0;
	file_dirname(cert, dir, sizeof(dir));
	if (file_ensure_dir(
	        dir, TERN_TLS_DIR_MODE, (uid_t)-1, (gid_t)-1, NULL, &err) < 0) {
		tern_error("%s", err);
		return 1;
	}
	/* A certificate names a DNS host; an odd hostname gets a fallback. */
	if (strlen(host) > TLS_CN_MAX || !addr_domain_valid(host))
		host = TERN_TLS_FALLBACK_NAME;
	if (tls_make_self_signed(cert, key, host, type, TERN_TLS_DAYS, &err) <
	    0) {
		tern_error("%s", err);
		return 1;
	}
	printf("%s: created a self-signed %s certificate for %s in %s; put a "
	       "real one there for clients that verify\n",
	    TERN_PROGNAME, type == TLS_KEY_RSA ? "RSA" : "ECDSA", host, cert);
	return 0;
}

static int
tern_check_tls(void)
{
	return tern_check_tls_pair(var_smtpd_tls_cert_file,
	           var_smtpd_tls_key_file, TLS_KEY_RSA) +
	       tern_check_tls_pair(var_smtpd_tls_eccert_file,
	           var_smtpd_tls_eckey_file, TLS_KEY_EC);
}

/*
 * As root, the user file belongs to root and $auth_user's group, mode
 * 0640, whoever made it: fixed through a descriptor, never by name, and
 * never through a symbolic link (file_fix_file). A missing file is fine:
 * ternuser creates it with the first user.
 */
static int
tern_check_user_file(const struct tern_ids *ids)
{
	const char *err;
	struct stat st;
	int changed;

	if (geteuid() != 0 || ids->auth_gid == (gid_t)-1 ||
	    (lstat(var_user_file, &st) < 0 && errno == ENOENT))
		return 0;
	if (file_fix_file(var_user_file, USERDB_FILE_MODE, 0, ids->auth_gid,
	        &changed, &err) < 0) {
		tern_error("user_file %s", err);
		return 1;
	}
	if (changed)
		printf("%s: fixed the mode and owner of %s\n", TERN_PROGNAME,
		    var_user_file);
	return 0;
}

/* master opens the log before anything else; its directory must exist. */
static int
tern_check_log(void)
{
	char dir[TERN_DIR_NAME_MAX];
	struct stat st;

	if (*var_maillog_file == '\0')
		return 0;
	file_dirname(var_maillog_file, dir, sizeof(dir));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tern_error("maillog_file %s: directory %s does not exist",
		    var_maillog_file, dir);
		return 1;
	}
	return 0;
}

/*
 * The commands that must reach maildrop/ and public/ as $setgid_group
 * (Postfix's postdrop and postqueue): as root, make them root:GROUP mode
 * 2755 when they are root's files in a directory only root can change
 * (a group created after "make install" ran is fixed here). Through a
 * descriptor, in two steps because a chown clears the setgid bit.
 */
static int
tern_check_setgid(const struct tern_ids *ids)
{
	static const char *const progs[] = {"terndrop", "ternqueue", NULL};
	const char *err;
	struct stat st;
	char *path;
	int i, changed, any, errors = 0;

	if (geteuid() != 0 || ids->setgid_gid == (gid_t)-1)
		return 0;
	if (stat(var_command_directory, &st) < 0 || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return 0;
	for (i = 0; progs[i] != NULL; i++) {
		path = xasprintf("%s/%s", var_command_directory, progs[i]);
		/* Already right: no change (a running sendmail may be
		 * starting terndrop right now). */
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != 0 ||
		    (st.st_gid == ids->setgid_gid &&
		        (st.st_mode & 07777) == TERN_SETGID_MODE)) {
			free(path);
			continue;
		}
		any = 0;
		if (file_fix_file(path, TERN_SETGID_MODE & 0777, 0,
		        ids->setgid_gid, &changed, &err) < 0 ||
		    (any = changed,
		        file_fix_file(path, TERN_SETGID_MODE, (uid_t)-1,
		            (gid_t)-1, &changed, &err)) < 0) {
			tern_error("%s", err);
			errors++;
		} else if (any || changed)
			printf("%s: made %s setgid %s\n", TERN_PROGNAME, path,
			    var_setgid_group);
		free(path);
	}
	return errors;
}

int
tern_check(const char *config_dir)
{
	struct tern_ids ids;
	const char *err;
	int errors;

	/* config_load warns about unknown parameter names itself. */
	if (config_load(config_dir, &err) < 0) {
		tern_error("%s", err);
		return 1;
	}
	errors = tern_check_services(config_dir);
	errors += tern_check_log();
	errors += tern_check_tls();
	errors += tern_check_ids(&ids);
	if (errors == 0)
		errors += tern_check_queue(&ids);
	if (errors == 0)
		errors += tern_check_user_file(&ids);
	if (errors == 0)
		errors += tern_check_setgid(&ids);
	return errors > 0;
}
