/* SPDX-License-Identifier: MIT */
/*
 * terndrop: the only privileged step of local mail submission (Postfix's
 * postdrop). Installed setgid $setgid_group, it writes one message into
 * $queue_directory/maildrop/ (mode 1730: the group may create files,
 * nobody may list or open them by name) for the pickup daemon:
 *
 *   terndrop [-c DIR] [-v] [-f sender] [-F fullname] [-N notify]
 *            [-R ret] [-V envid] -- rcpt...
 *
 * The envelope comes from the command line, the content (final form:
 * CRLF line ends, not dot-stuffed) from stdin in sendmail's frames (u32
 * length and bytes, an empty frame at the end: sendmail.h), so a
 * sendmail killed mid-message leaves nothing behind. The file is a
 * queue file (lib/mail/qfile.h) created 0600 by the submitting user;
 * when it is complete and synced it becomes 0544, the owner-execute
 * bit meaning "ready", and the user has no way back to it (no search
 * permission on maildrop/ without this program's group). Whatever goes
 * wrong - a refused sender, a read error, a signal - removes the file.
 *
 * Checks, as Postfix's postdrop: authorized_submit_users (who may
 * submit at all) and local_login_sender_maps (which envelope senders a
 * login may claim), both by the real uid's login name; address syntax
 * (RFC 5321 4.1.2 paths), a bounded recipient count and
 * message_size_limit. A configuration directory that a setgid program
 * cannot trust (config_dir_trusted) costs the privilege: the program
 * continues as the plain user, which still works in an instance the
 * user owns. Exit codes from <sysexits.h>.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/addr.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/smtp_param.h"

#define TERNDROP_PROGNAME     "terndrop"
/* Recipients of one submission: the envelope travels on a command line,
 * which the kernel bounds too (MAX_ARG_STRLEN, ARG_MAX). */
#define TERNDROP_RCPT_MAX     1000
/* A full name is a display name, not a document. */
#define TERNDROP_FULLNAME_MAX 256
/* Longest silence on stdin: sendmail feeds us as fast as it reads. */
#define TERNDROP_READ_TIMEOUT_MS (3600 * 1000)
#define TERNDROP_CHUNK        65536
/* The "ready" mode: the owner-execute bit tells pickup it is complete. */
#define TERNDROP_MODE_READY   0544
#define TERNDROP_MODE_WRITING 0600
/* local_login_sender_maps patterns (Postfix 3.6). */
#define LOGIN_SENDER_ANY      "*"
#define LOGIN_SENDER_NULL     "<>"
#define LOGIN_SENDER_DEFAULT  "static:*"
#define STATIC_PREFIX         "static:"

/* The partial file, for the signal handler (async-signal-safe unlink). */
static char terndrop_partial[4096];

/*
 * exit(), except in a sanitizer build while set-group-id: LeakSanitizer's
 * check at exit ptraces the process, which the kernel refuses for a
 * set-id one, and reports that as a fatal error. Test builds only; leaks
 * are still checked when terndrop runs without the privilege.
 */
static void MTA_NORETURN
terndrop_exit(int status)
{
#ifdef __SANITIZE_ADDRESS__
	if (getegid() != getgid()) {
		fflush(stdout);
		fflush(stderr);
		_exit(status);
	}
#endif
	exit(status);
}

static void MTA_PRINTF(2, 3) MTA_NORETURN
terndrop_die(int status, const char *fmt, ...)
{
	va_list ap;

	if (terndrop_partial[0] != '\0')
		(void)unlink(terndrop_partial);
	fprintf(stderr, "%s: fatal: ", TERNDROP_PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	terndrop_exit(status);
}

static void
terndrop_signal(int sig)
{
	(void)sig;
	if (terndrop_partial[0] != '\0')
		(void)unlink(terndrop_partial);
	_exit(EX_TEMPFAIL);
}

static void MTA_NORETURN
terndrop_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] [-v] [-f sender] [-F fullname] "
	    "[-N notify] [-R full|hdrs] [-V envid] -- recipient...\n",
	    TERNDROP_PROGNAME);
	terndrop_exit(EX_USAGE);
}

/* "never", or a comma list of success, delay, failure (RFC 3461 4.1). */
static unsigned
terndrop_notify(const char *s)
{
	char *copy = xstrdup(s), *p, *word;
	unsigned mask = 0;

	for (p = copy; (word = strsep(&p, ",")) != NULL;) {
		word = str_trim(word);
		if (str_eq_ci(word, "never"))
			mask |= QRCPT_NOTIFY_NEVER;
		else if (str_eq_ci(word, "success"))
			mask |= QRCPT_NOTIFY_SUCCESS;
		else if (str_eq_ci(word, "delay"))
			mask |= QRCPT_NOTIFY_DELAY;
		else if (str_eq_ci(word, "failure"))
			mask |= QRCPT_NOTIFY_FAILURE;
		else
			mask = ~0U;
	}
	free(copy);
	if (mask == 0 || mask == ~0U ||
	    ((mask & QRCPT_NOTIFY_NEVER) && mask != QRCPT_NOTIFY_NEVER))
		terndrop_die(EX_USAGE, "-N: bad value \"%s\"",
		    log_sanitize(s, 64));
	return mask;
}

/* Printable ASCII without controls (RFC 3461 4.4 for ENVID). */
static int
terndrop_printable(const char *s, size_t max, int space_ok)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if ((unsigned char)*s < (space_ok ? ' ' : '!') ||
		    (unsigned char)*s == 0x7f || n >= max)
			return 0;
	return 1;
}

/* 1 if addr is a valid path (RFC 5321 4.1.2); "" only with empty_ok. */
static int
terndrop_addr_ok(const char *addr, int empty_ok)
{
	char *path = xasprintf("<%s>", addr), *parsed = NULL;
	const char *params, *err;
	int ok;

	if (strlen(addr) > ADDR_PATH_MAX)
		ok = 0;
	else
		ok = addr_parse_path(path,
		         ADDR_UTF8_OK | (empty_ok ? ADDR_EMPTY_OK : 0),
		         &parsed, &params, &err) == 0 &&
		    *params == '\0' && strcmp(parsed, addr) == 0;
	free(parsed);
	free(path);
	return ok;
}

/*
 * authorized_submit_users: "static:..." lets everyone in (Postfix's
 * shortcut); otherwise each element is a table (type:name, found =
 * allowed), a login name, or either after '!' (found = refused); the
 * first element that matches decides, and no match refuses.
 */
static int
terndrop_submit_allowed(const char *login)
{
	char **list, *err = NULL;
	const char *elem, *value, *lerr;
	struct map_list *ml;
	int i, neg, hit, allowed = 0, decided = 0;

	if (strncmp(var_authorized_submit_users, STATIC_PREFIX,
	        strlen(STATIC_PREFIX)) == 0)
		return 1;
	list = config_list(var_authorized_submit_users);
	for (i = 0; !decided && list[i] != NULL; i++) {
		elem = list[i];
		neg = *elem == '!';
		elem += neg;
		if (strchr(elem, ':') == NULL) {
			hit = strcmp(elem, login) == 0;
		} else {
			ml = map_list_open("authorized_submit_users", elem,
			    &err);
			if (ml == NULL)
				terndrop_die(EX_CONFIG, "%s", err);
			hit = map_list_lookup(ml, login, &value, &lerr);
			if (hit < 0)
				terndrop_die(EX_TEMPFAIL,
				    "authorized_submit_users: %s", lerr);
			map_list_free(&ml);
		}
		if (hit) {
			allowed = !neg;
			decided = 1;
		}
	}
	config_list_free(list);
	return allowed;
}

/* One local_login_sender_maps pattern against the sender. */
static int
terndrop_sender_pattern(const char *pat, const char *sender,
    const char *stripped)
{
	const char *at;

	if (*pat == '@') {
		at = strrchr(sender, '@');
		return at != NULL && str_eq_ci(pat, at);
	}
	if (strcmp(pat, LOGIN_SENDER_ANY) == 0)
		return 1;
	if (strcmp(pat, LOGIN_SENDER_NULL) == 0)
		return *sender == '\0';
	return *sender != '\0' && str_eq_ci(pat, stripped);
}

/*
 * local_login_sender_maps (Postfix 3.6): tables searched by login name
 * give the sender patterns that login may use, separated by commas or
 * spaces: "*" any, "<>" the null sender, "@domain" any address in
 * domain, else an address compared case-insensitively without its
 * extension. No entry refuses. No user is exempt (root too needs an
 * entry once the default changes), as in Postfix.
 */
static int
terndrop_sender_allowed(const char *login, const char *sender)
{
	struct map_list *ml;
	const char *value, *lerr;
	char *err = NULL, *stripped, *copy, *p, *pat;
	int r, ok = 0;

	if (strcmp(var_local_login_sender_maps, LOGIN_SENDER_DEFAULT) == 0)
		return 1;
	ml = map_list_open("local_login_sender_maps",
	    var_local_login_sender_maps, &err);
	if (ml == NULL)
		terndrop_die(EX_CONFIG, "%s", err);
	r = map_list_lookup(ml, login, &value, &lerr);
	if (r < 0)
		terndrop_die(EX_TEMPFAIL, "local_login_sender_maps: %s", lerr);
	if (r > 0) {
		stripped = addr_strip_extension(sender);
		copy = xstrdup(value);
		for (p = copy; !ok && (pat = strsep(&p, ", \t")) != NULL;)
			if (*pat != '\0')
				ok = terndrop_sender_pattern(pat, sender,
				    stripped != NULL ? stripped : sender);
		free(copy);
		free(stripped);
	}
	map_list_free(&ml);
	return ok;
}

/* Drops setgid for good (saved id too). */
static void
terndrop_unprivileged(void)
{
	gid_t g = getgid();

	if (setresgid(g, g, g) < 0)
		terndrop_die(EX_OSERR, "setresgid: %s", strerror(errno));
}

/* Reads exactly n bytes of stdin: n, or fewer at end of input. */
static size_t
terndrop_read(void *buf, size_t n)
{
	struct pollfd pfd = {.fd = 0, .events = POLLIN};
	size_t got = 0;
	ssize_t r;
	int pr;

	while (got < n) {
		pr = poll(&pfd, 1, TERNDROP_READ_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			terndrop_die(EX_TEMPFAIL, "timeout reading the message");
		r = read(0, (char *)buf + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			terndrop_die(EX_IOERR, "read the message: %s",
			    strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/*
 * Reads the content frames sendmail sends (sendmail.h: u32 length and
 * bytes, an empty frame at the end) into the content record; the size in
 * bytes. Input that ends before the empty frame is a sendmail that died
 * mid-message: nothing is kept.
 */
static unsigned long long
terndrop_copy(struct qfile_writer *w)
{
	static char chunk[TERNDROP_CHUNK];
	unsigned long long total = 0;
	unsigned char hdr[4];
	uint32_t len;

	for (;;) {
		if (terndrop_read(hdr, sizeof(hdr)) != sizeof(hdr))
			terndrop_die(EX_NOINPUT,
			    "the message ended before its end mark (did "
			    "sendmail die?); nothing queued");
		len = bytes_get_be32(hdr);
		if (len == 0)
			return total;
		if (len > TERNDROP_CHUNK)
			terndrop_die(EX_DATAERR,
			    "malformed input: a frame of %lu bytes (this "
			    "program is run by sendmail, see terndrop(1))",
			    (unsigned long)len);
		if (terndrop_read(chunk, len) != len)
			terndrop_die(EX_NOINPUT,
			    "the message ended before its end mark (did "
			    "sendmail die?); nothing queued");
		total += len;
		if (total > (unsigned long long)var_message_size_limit)
			terndrop_die(EX_DATAERR,
			    "message file too big (message_size_limit is "
			    "%lld bytes)",
			    var_message_size_limit);
		qfile_content_write(w, chunk, len);
	}
}

/* Best effort: a directory only this group may write into is often not
 * readable by it, and open(O_RDONLY) then fails. */
static void
terndrop_sync_dir(void)
{
	char *dir = queue_path(QUEUE_MAILDROP, NULL);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

static void
terndrop_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = terndrop_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *err;
	const char *sender = NULL, *fullname = NULL, *envid = NULL;
	const char *ret = NULL;
	unsigned notify = 0;
	int ch, verbose = 0, privileged, nrcpt, i, fd;
	struct qfile_writer w;
	struct passwd *pw;
	sigset_t all, old;
	char login[64];
	uid_t uid = getuid();

	/* Files this program creates are for the group, never others. */
	umask(077);
	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 &&
		    open("/dev/null", O_RDWR) != fd)
			return EX_OSERR;
	log_init(TERNDROP_PROGNAME, LOG_DEST_STDERR);
	privileged = getegid() != getgid();

	while ((ch = getopt(argc, argv, "c:vf:F:N:R:V:")) != -1) {
		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'f':
			sender = optarg;
			break;
		case 'F':
			fullname = optarg;
			break;
		case 'N':
			notify = terndrop_notify(optarg);
			break;
		case 'R':
			if (str_eq_ci(optarg, "full"))
				ret = "FULL";
			else if (str_eq_ci(optarg, "hdrs"))
				ret = "HDRS";
			else
				terndrop_die(EX_USAGE,
				    "-R: bad value (full or hdrs)");
			break;
		case 'V':
			envid = optarg;
			break;
		default:
			terndrop_usage();
		}
	}
	nrcpt = argc - optind;
	if (nrcpt <= 0)
		terndrop_die(EX_USAGE, "no recipients specified");
	if (nrcpt > TERNDROP_RCPT_MAX)
		terndrop_die(EX_USAGE, "too many recipients (at most %d)",
		    TERNDROP_RCPT_MAX);
	if (fullname != NULL &&
	    !terndrop_printable(fullname, TERNDROP_FULLNAME_MAX, 1))
		terndrop_die(EX_USAGE, "-F: control characters or too long");
	if (envid != NULL && !terndrop_printable(envid, SMTP_ENVID_MAX, 0))
		terndrop_die(EX_USAGE,
		    "-V: not printable ASCII or longer than %d", SMTP_ENVID_MAX);
	/* A directory the user may write would let them pick the limits
	 * and checks enforced on them: no privilege for it. */
	if (privileged && !config_dir_trusted(config_dir, uid)) {
		terndrop_unprivileged();
		privileged = -1;
	}
	if (config_load(config_dir, &err) < 0)
		terndrop_die(EX_CONFIG, "%s", err);
	log_set_verbose(verbose > 1 ? verbose - 1 : 0);

	pw = getpwuid(uid);
	if (pw != NULL && strlen(pw->pw_name) < sizeof(login))
		snprintf(login, sizeof(login), "%s", pw->pw_name);
	else
		snprintf(login, sizeof(login), "uid:%ld", (long)uid);
	if (!terndrop_submit_allowed(pw != NULL ? login : "unknown"))
		terndrop_die(EX_NOPERM, "%s(%ld): not authorized to submit mail",
		    login, (long)uid);
	if (sender == NULL) {
		if (pw == NULL)
			terndrop_die(EX_OSERR, "no login name for uid %ld",
			    (long)uid);
		sender = login;
	}
	if (strcmp(sender, "<>") == 0)
		sender = "";
	if (!terndrop_addr_ok(sender, 1))
		terndrop_die(EX_DATAERR, "bad sender address syntax: %s",
		    log_sanitize(sender, ADDR_PATH_MAX));
	for (i = optind; i < argc; i++)
		if (!terndrop_addr_ok(argv[i], 0))
			terndrop_die(EX_DATAERR,
			    "bad recipient address syntax: %s",
			    log_sanitize(argv[i], ADDR_PATH_MAX));
	if (!terndrop_sender_allowed(login, sender))
		terndrop_die(EX_NOPERM, "%s(%ld): not authorized to use sender "
		    "<%s> (local_login_sender_maps)",
		    login, (long)uid, log_sanitize(sender, ADDR_PATH_MAX));

	/* From here on a signal or an error removes the partial file; the
	 * name is recorded with every signal blocked. */
	terndrop_signals();
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if (qfile_create_in(&w, QUEUE_MAILDROP, TERNDROP_MODE_WRITING, &err) <
	    0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (privileged < 0 && errno == EACCES)
			terndrop_die(EX_NOPERM,
			    "%s: a setgid program trusts only a configuration "
			    "directory owned by root and not writable by "
			    "others; without privileges: %s",
			    config_dir, err);
		terndrop_die(EX_CANTCREAT, "%s", err);
	}
	if (strlen(w.tmp_path) >= sizeof(terndrop_partial)) {
		qfile_writer_free(&w);
		sigprocmask(SIG_SETMASK, &old, NULL);
		terndrop_die(EX_CANTCREAT, "queue path too long");
	}
	memcpy(terndrop_partial, w.tmp_path, strlen(w.tmp_path) + 1);
	sigprocmask(SIG_SETMASK, &old, NULL);

	qfile_put_sender(&w, sender);
	if (fullname != NULL)
		qfile_put_attr(&w, "fullname", fullname);
	if (envid != NULL)
		qfile_put_attr(&w, "envid", envid);
	if (ret != NULL)
		qfile_put_attr(&w, "ret", ret);
	for (i = optind; i < argc; i++)
		qfile_put_rcpt(&w, argv[i], "", notify);
	qfile_content_begin(&w);
	(void)terndrop_copy(&w);
	if (qfile_finish(&w, &err) < 0)
		terndrop_die(EX_TEMPFAIL, "%s", err);
	/* Complete only once the bytes are on disk: then the ready bit,
	 * itself synced, so pickup never sees it on a partial file. */
	if (fsync(w.fd) < 0 || fchmod(w.fd, TERNDROP_MODE_READY) < 0 ||
	    fsync(w.fd) < 0)
		terndrop_die(EX_TEMPFAIL, "%s: %s", w.tmp_path,
		    strerror(errno));
	terndrop_sync_dir();
	sigprocmask(SIG_BLOCK, &all, &old);
	terndrop_partial[0] = '\0';
	qfile_writer_committed(&w);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (verbose)
		printf("%s\n", w.id);
	qfile_writer_free(&w);
	terndrop_exit(fflush(stdout) != 0 ? EX_IOERR : EX_OK);
}
