/* SPDX-License-Identifier: MIT */
/*
 * "tern init": a new configuration directory from the templates in the
 * data directory. A private instance (tern -c DIR init) keeps its queue,
 * mail store and log below DIR, and --port-base N moves the standard mail
 * ports to N+port so several instances (tests, benchmarks) can run side
 * by side on 127.0.0.1. The queue itself is created by the check that
 * runs last.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/userdb.h"
#include "map/map_build.h"
#include "tern.h"

#define TERN_DATA_ENV        "TERN_DATA_DIR"
#define TERN_TEMPLATE_MAX    (256 * 1024)
#define TERN_CONF_MODE       0644
#define TERN_DIR_MODE        0755
#define TERN_MAILSTORE_MODE  0711
#define TERN_MAILBOXES_MODE  0644
#define TERN_LOG_NAME_MAX    4096
#define TERN_LOOPBACK_PREFIX "127.0.0.1:"
#define TERN_SYSTEM_LOG      "/var/log/tern.log"
#define TERN_TEST_DOMAIN     "example.test"
#define TERN_INET            "inet"
#define TERN_PORT_TEXT_SIZE  24 /* a long in decimal with sign */
#define TERN_ALIASES_MODE    0644
#define TERN_HASH_PREFIX     "hash:"
/* Characters of a login name that may go into the aliases file as is. */
#define TERN_LOGIN_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* The standard ports that --port-base moves (SMTP, submission, POP, IMAP). */
static const unsigned tern_std_ports[] = {25, 587, 465, 110, 143, 993, 995};

/* The port a services.conf name stands for, if --port-base moves it. */
static int
tern_std_port(const char *name, size_t len, unsigned *port_r)
{
	uint64_t port;
	size_t i;

	if (str_to_u64_n(name, len, UINT16_MAX, &port) < 0)
		return 0;
	for (i = 0; i < sizeof(tern_std_ports) / sizeof(tern_std_ports[0]);
	     i++) {
		if (port == tern_std_ports[i]) {
			*port_r = (unsigned)port;
			return 1;
		}
	}
	return 0;
}

/*
 * Rewrites one services.conf line, commented out or not, if its name is
 * a standard port (optionally 127.0.0.1:PORT) of an inet service. The
 * longer name eats into the blanks after it so the columns stay aligned.
 */
static int
tern_port_line(struct buf *out, const char *line, size_t len, long base)
{
	size_t i = 0, name, name_end, port_at, old_len, new_len;
	char num[TERN_PORT_TEXT_SIZE];
	unsigned port;

	while (i < len && (line[i] == '#' || line[i] == ' ' || line[i] == '\t'))
		i++;
	name = i;
	while (i < len && line[i] != ' ' && line[i] != '\t')
		i++;
	name_end = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	port_at = name;
	if (name_end - name > strlen(TERN_LOOPBACK_PREFIX) &&
	    strncmp(line + name, TERN_LOOPBACK_PREFIX,
	        strlen(TERN_LOOPBACK_PREFIX)) == 0)
		port_at += strlen(TERN_LOOPBACK_PREFIX);
	if (len - i < strlen(TERN_INET) ||
	    strncmp(line + i, TERN_INET, strlen(TERN_INET)) != 0 ||
	    !tern_std_port(line + port_at, name_end - port_at, &port))
		return buf_append(out, line, len);
	snprintf(num, sizeof(num), "%ld", base + (long)port);
	old_len = name_end - port_at;
	new_len = strlen(num);
	/* Keep one blank at least; tabs are left alone. */
	while (new_len > old_len && name_end + 1 < i && line[name_end] == ' ' &&
	       line[name_end + 1] == ' ') {
		name_end++;
		old_len++;
	}
	if (buf_append(out, line, port_at) < 0 || buf_puts(out, num) < 0)
		return -1;
	return buf_append(out, line + name_end, len - name_end);
}

static int
tern_port_rewrite(struct buf *in, long base)
{
	struct buf out;
	const char *p = buf_cstr(in), *end = p + in->len, *nl;

	buf_init(&out, TERN_TEMPLATE_MAX);
	for (; p < end; p = nl) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		if (tern_port_line(&out, p, (size_t)(nl - p), base) < 0) {
			buf_free(&out);
			return -1;
		}
	}
	buf_free(in);
	*in = out;
	return 0;
}

static int
tern_copy_template(const char *data_dir, const char *config_dir,
    const char *name, long port_base)
{
	char *from = xasprintf("%s/%s", data_dir, name);
	char *to = xasprintf("%s/%s", config_dir, name);
	const char *err;
	struct buf text;
	int ret = -1;

	buf_init(&text, TERN_TEMPLATE_MAX);
	if (file_read_all(from, TERN_TEMPLATE_MAX, &text, &err) < 0)
		tern_error("%s (set %s to the directory of the templates)", err,
		    TERN_DATA_ENV);
	else if (port_base >= 0 && tern_port_rewrite(&text, port_base) < 0)
		tern_error("%s: too long after rewriting ports", from);
	else if (file_write_atomic(to, text.data != NULL ? text.data : "",
	             text.len, TERN_CONF_MODE, (uid_t)-1, (gid_t)-1, &err) < 0)
		tern_error("%s", err);
	else
		ret = 0;
	buf_free(&text);
	free(from);
	free(to);
	return ret;
}

static int
tern_set(const char *config_dir, const char *name, const char *value)
{
	const char *err;

	if (config_edit(config_dir, name, value, &err) < 0) {
		tern_error("%s", err);
		return -1;
	}
	return 0;
}

/*
 * A directory unless one is there. An existing one is the admin's (the
 * configuration or log directory may be /tmp or /var/log): its mode and
 * owner are left alone.
 */
static int
tern_make_dir(const char *dir, const char **error_r)
{
	struct stat st;

	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return file_ensure_dir(
	    dir, TERN_DIR_MODE, (uid_t)-1, (gid_t)-1, NULL, error_r);
}

/* An empty file unless one is there; never touches an existing one. */
static int
tern_touch(const char *path, mode_t mode)
{
	const char *err;

	if (access(path, F_OK) == 0)
		return 0;
	if (file_write_atomic(path, "", 0, mode, (uid_t)-1, (gid_t)-1, &err) <
	    0) {
		tern_error("%s", err);
		return -1;
	}
	return 0;
}

/*
 * The log directory, the mail store, an empty mailbox list (smtpd
 * answers 451 while the list is missing) and an empty user file (auth
 * answers tempfail while it is missing; tern check then gives it to
 * root and $auth_user's group).
 */
static int
tern_init_files(void)
{
	char logdir[TERN_LOG_NAME_MAX];
	struct priv_user u;
	uid_t vuid = (uid_t)-1;
	gid_t vgid = (gid_t)-1;
	const char *err = NULL;

	if (geteuid() == 0) {
		if (priv_lookup_user(var_vmail_user, &u) < 0) {
			tern_error("vmail_user '%s' does not exist; create it "
			           "with: useradd -r -U %s",
			    var_vmail_user, var_vmail_user);
			return -1;
		}
		vuid = u.uid;
		vgid = u.gid;
		priv_user_free(&u);
	}
	if (*var_maillog_file != '\0') {
		file_dirname(var_maillog_file, logdir, sizeof(logdir));
		if (tern_make_dir(logdir, &err) < 0)
			goto fail;
	}
	if (file_ensure_dir(var_virtual_mailbox_base, TERN_MAILSTORE_MODE, vuid,
	        vgid, NULL, &err) < 0)
		goto fail;
	if (tern_touch(var_virtual_mailbox_list, TERN_MAILBOXES_MODE) < 0)
		return -1;
	return tern_touch(var_user_file, USERDB_FILE_MODE);
fail:
	tern_error("%s", err);
	return -1;
}

/*
 * The administrator who ran tern init through sudo, who should read
 * root's mail: local never writes a mailbox as root.
 */
static const char *
tern_init_admin(void)
{
	const char *u = getenv("SUDO_USER");
	struct priv_user pu;

	if (u == NULL || *u == '\0' || strcmp(u, "root") == 0 ||
	    strspn(u, TERN_LOGIN_CHARS) != strlen(u) ||
	    priv_lookup_user(u, &pu) < 0)
		return NULL;
	if (pu.uid == 0)
		u = NULL;
	priv_user_free(&pu);
	return u;
}

/*
 * The aliases file of the first hash: table of $alias_database, unless
 * one is there, and its table (newaliases' job, so that local finds it
 * from the first start).
 */
static int
tern_init_aliases(void)
{
	char **list = config_list(var_alias_database), *path = NULL, *text;
	const char *admin = tern_init_admin(), *err;
	char *berr = NULL;
	int i, ret = 0;

	for (i = 0; list[i] != NULL && path == NULL; i++)
		if (strncmp(list[i], TERN_HASH_PREFIX,
		        strlen(TERN_HASH_PREFIX)) == 0)
			path = xstrdup(list[i] + strlen(TERN_HASH_PREFIX));
	config_list_free(list);
	if (path == NULL)
		return 0;
	if (access(path, F_OK) != 0) {
		text = xasprintf(
		    "# aliases(5): \"name: target, target...\" per line; run "
		    "newaliases after a change.\n"
		    "# A target is a user, an address, /file, |command or "
		    ":include:/file.\n"
		    "postmaster: root\n"
		    "MAILER-DAEMON: postmaster\n"
		    "abuse: postmaster\n"
		    "# tern never writes a mailbox as root: name the user who "
		    "reads root's mail\n"
		    "# (mail to root is deferred until then).\n"
		    "%s%s\n",
		    admin != NULL ? "root: " : "# root: ",
		    admin != NULL ? admin : "you");
		if (file_write_atomic(path, text, strlen(text),
		        TERN_ALIASES_MODE, (uid_t)-1, (gid_t)-1, &err) < 0) {
			tern_error("%s", err);
			ret = -1;
		}
		free(text);
	}
	if (ret == 0 && map_build_aliases(path, 0, &berr) < 0) {
		tern_error("%s", berr);
		free(berr);
		ret = -1;
	}
	free(path);
	return ret;
}

int
tern_init(const char *config_dir, int instance, long port_base)
{
	const char *data_dir = getenv(TERN_DATA_ENV), *err;
	char *conf = xasprintf("%s/tern.conf", config_dir), *path;
	int ret = 1, i;
	static const char *const instance_dirs[][2] = {
	    {"queue_directory", "queue"},
	    {"virtual_mailbox_base", "mail"},
	    {"maillog_file", "log/maillog"},
	};

	if (data_dir == NULL || *data_dir == '\0')
		data_dir = TERN_DATA_DIR;
	if (access(conf, F_OK) == 0) {
		tern_error("%s already exists; not overwriting it", conf);
		goto out;
	}
	if (tern_make_dir(config_dir, &err) < 0) {
		tern_error("%s", err);
		goto out;
	}
	if (tern_copy_template(
	        data_dir, config_dir, "services.conf", port_base) < 0 ||
	    tern_copy_template(data_dir, config_dir, "tern.conf", -1) < 0)
		goto out;
	if (instance) {
		for (i = 0; i < (int)(sizeof(instance_dirs) /
		                      sizeof(instance_dirs[0]));
		     i++) {
			path =
			    xasprintf("%s/%s", config_dir, instance_dirs[i][1]);
			if (tern_set(config_dir, instance_dirs[i][0], path) <
			    0) {
				free(path);
				goto out;
			}
			free(path);
		}
		if (tern_set(config_dir, "virtual_mailbox_domains",
		        TERN_TEST_DOMAIN) < 0)
			goto out;
	} else if (tern_set(config_dir, "maillog_file", TERN_SYSTEM_LOG) < 0) {
		goto out;
	}
	if (config_load(config_dir, &err) < 0) {
		tern_error("%s", err);
		goto out;
	}
	if (tern_init_files() < 0 || tern_init_aliases() < 0 ||
	    tern_check(config_dir) != 0)
		goto out;
	printf("%s: initialized %s; start it with: %s -c %s start\n",
	    TERN_PROGNAME, config_dir, TERN_PROGNAME, config_dir);
	ret = 0;
out:
	free(conf);
	return ret;
}
