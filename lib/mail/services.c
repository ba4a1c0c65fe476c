/* SPDX-License-Identifier: MIT */
/*
 * services.conf, the table master reads to know which daemons to run and
 * where they listen (the Postfix master.cf idea). Every entry is checked
 * here, so master only ever sees well-formed names, flags and limits. No
 * RFC applies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"
#include "mail/services.h"

#define SERVICES_FILE_MAX    (1024 * 1024)
#define SERVICES_LINE_MAX    8192 /* one entry with its continuations */
#define SERVICES_FIELDS_MAX  128
#define SERVICES_MAXPROC_MAX 10000
#define SERVICES_NAME_MAX    64
#define SERVICES_PORT_MAX    65535
#define SERVICES_ERROR_MAX   1024
/* useradd(8)'s limit; POSIX leaves it to the system. */
#define SERVICES_USER_MAX    32
/* POSIX 3.437: the portable filename characters, no leading '-'. */
#define USER_NAME_CHARS                                        \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789._-"
#define UNIX_NAME_CHARS                                        \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789_.-"
#define PORT_NAME_CHARS                                        \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789-"
#define HOST_CHARS                                             \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789.-_"
#define V6_CHARS "0123456789abcdefABCDEF:."
#define CHROOT_DIR_CHARS                                       \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789._-+/"
/* Far below PATH_MAX, and room for a socket name below it. */
#define SERVICES_CHROOT_MAX 512

/* The columns of an entry; the command and its arguments come last. */
enum service_field {
	FIELD_NAME,
	FIELD_TYPE,
	FIELD_PRIVATE,
	FIELD_UNPRIV,
	FIELD_CHROOT,
	FIELD_MAXPROC,
	FIELD_COMMAND,
};

static char services_error[SERVICES_ERROR_MAX];

static int services_fail(const char *name, int lineno, const char *fmt, ...)
    MTA_PRINTF(3, 4);

static int
services_fail(const char *name, int lineno, const char *fmt, ...)
{
	int off;
	va_list ap;

	off = snprintf(
	    services_error, sizeof(services_error), "%s:%d: ", name, lineno);
	if (off < 0 || (size_t)off >= sizeof(services_error))
		return -1;
	va_start(ap, fmt);
	vsnprintf(services_error + off, sizeof(services_error) - (size_t)off,
	    fmt, ap);
	va_end(ap);
	return -1;
}

/* A port is a number 1..65535 or a name for getservbyname() ("smtp"). */
static int
port_valid(const char *s)
{
	uint64_t port;

	if (*s >= '0' && *s <= '9')
		return str_to_u64(s, SERVICES_PORT_MAX, &port) == 0 && port > 0;
	return *s != '\0' && s[strspn(s, PORT_NAME_CHARS)] == '\0';
}

/* PORT, HOST:PORT or [IPv6]:PORT. */
static int
inet_name_valid(const char *s)
{
	const char *colon, *close;
	size_t n;

	if (*s == '[') {
		close = strchr(s, ']');
		n = strspn(s + 1, V6_CHARS);
		return close != NULL && n > 0 && s + 1 + n == close &&
		       close[1] == ':' && port_valid(close + 2);
	}
	if ((colon = strchr(s, ':')) == NULL)
		return port_valid(s);
	n = strspn(s, HOST_CHARS);
	return n > 0 && s + n == colon && port_valid(colon + 1);
}

static int
unix_name_valid(const char *s)
{
	size_t n;

	/* login/NAME: a socket in $login_directory (services.h). */
	if (strncmp(s, SERVICES_LOGIN_PREFIX, strlen(SERVICES_LOGIN_PREFIX)) ==
	    0)
		s += strlen(SERVICES_LOGIN_PREFIX);
	n = strspn(s, UNIX_NAME_CHARS);

	return n > 0 && s[n] == '\0' && n <= SERVICES_NAME_MAX &&
	       strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int
flag_parse(const char *s, int def, int *out_r)
{
	if (strcmp(s, "-") == 0)
		*out_r = def;
	else if (strcmp(s, "y") == 0)
		*out_r = 1;
	else if (strcmp(s, "n") == 0)
		*out_r = 0;
	else
		return -1;
	return 0;
}

/* A user name as POSIX allows it on every system (3.437). */
static int
user_name_valid(const char *s)
{
	size_t n = strspn(s, USER_NAME_CHARS);

	return n > 0 && s[n] == '\0' && n <= SERVICES_USER_MAX && *s != '-';
}

/*
 * The unpriv column: y, n, - or a user name, which may be written as
 * $name (a tern.conf parameter such as $auth_user) and is expanded here.
 */
static int
unpriv_parse(
    struct service_def *s, const char *field, const char *file, int lineno)
{
	const char *err;
	char *user;

	if (flag_parse(field, 1, &s->unpriv) == 0)
		return 0;
	if ((user = config_expand(field, &err)) == NULL)
		return services_fail(
		    file, lineno, "bad unpriv value '%s': %s", field, err);
	if (!user_name_valid(user)) {
		if (strcmp(user, field) != 0)
			services_fail(file, lineno,
			    "bad unpriv value '%s' (expands to '%s'; want y, "
			    "n, - or a user name)",
			    field, user);
		else
			services_fail(file, lineno,
			    "bad unpriv value '%s' (want y, n, - or a user "
			    "name)",
			    field);
		free(user);
		return -1;
	}
	s->unpriv = 1;
	s->user = user;
	return 0;
}

/*
 * An absolute directory without "." or ".." components, in the characters
 * a path name of an admin's would use: master hands it to a root process
 * as an option, so nothing in it may be read as anything else.
 */
static int
chroot_dir_valid(const char *s)
{
	const char *p;
	size_t n;

	if (*s != '/' || strlen(s) > SERVICES_CHROOT_MAX ||
	    s[strspn(s, CHROOT_DIR_CHARS)] != '\0')
		return 0;
	for (p = s; *p != '\0'; p += n) {
		p += strspn(p, "/");
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
	}
	return 1;
}

/*
 * The chroot column: y (queue_directory), n, - (n) or a directory, which
 * may be written as $name (e.g. $login_directory) and is expanded here.
 */
static int
chroot_parse(
    struct service_def *s, const char *field, const char *file, int lineno)
{
	const char *err;
	char *dir;

	if (flag_parse(field, 0, &s->chroot) == 0)
		return 0;
	if ((dir = config_expand(field, &err)) == NULL)
		return services_fail(
		    file, lineno, "bad chroot value '%s': %s", field, err);
	if (!chroot_dir_valid(dir)) {
		services_fail(file, lineno,
		    "bad chroot value '%s' (expands to '%s'; want y, n, - or "
		    "an absolute directory)",
		    field, dir);
		free(dir);
		return -1;
	}
	s->chroot = 1;
	s->chroot_dir = dir;
	return 0;
}

static void
service_clear(struct service_def *s)
{
	int i;

	for (i = 0; i < s->argc; i++)
		free(s->argv[i]);
	free(s->argv);
	free(s->name);
	free(s->user);
	free(s->chroot_dir);
	free(s->line);
}

/* Parses one logical entry (continuations joined) into *s. */
static int
service_parse(char *text, const char *file, int lineno, int default_maxproc,
    struct service_def *s)
{
	static const char *const flag_names[] = {"private"};
	static const int flag_fields[] = {FIELD_PRIVATE};
	static const int flag_defaults[] = {1};
	int *flags[] = {&s->private};
	const int nflags = (int)(sizeof(flag_names) / sizeof(flag_names[0]));
	char *f[SERVICES_FIELDS_MAX];
	uint64_t maxproc;
	struct buf line;
	int nf, i;

	memset(s, 0, sizeof(*s));
	nf = str_split(text, " \t", f, SERVICES_FIELDS_MAX);
	if (nf < 0)
		return services_fail(file, lineno, "too many fields");
	if (nf <= FIELD_COMMAND)
		return services_fail(file, lineno,
		    "want: name type private unpriv chroot maxproc command");
	s->lineno = lineno;
	if (strcmp(f[FIELD_TYPE], "inet") == 0)
		s->type = SERVICE_INET;
	else if (strcmp(f[FIELD_TYPE], "unix") == 0)
		s->type = SERVICE_UNIX;
	else
		return services_fail(
		    file, lineno, "unknown type '%s'", f[FIELD_TYPE]);
	if (s->type == SERVICE_INET ? !inet_name_valid(f[FIELD_NAME])
	                            : !unix_name_valid(f[FIELD_NAME]))
		return services_fail(file, lineno, "bad %s service name '%s'",
		    f[FIELD_TYPE], f[FIELD_NAME]);
	for (i = 0; i < nflags; i++)
		if (flag_parse(f[flag_fields[i]], flag_defaults[i], flags[i]) <
		    0)
			return services_fail(file, lineno,
			    "bad %s value '%s' (want y, n or -)", flag_names[i],
			    f[flag_fields[i]]);
	if (unpriv_parse(s, f[FIELD_UNPRIV], file, lineno) < 0 ||
	    chroot_parse(s, f[FIELD_CHROOT], file, lineno) < 0)
		return -1;
	if (strcmp(f[FIELD_MAXPROC], "-") == 0)
		s->maxproc = default_maxproc;
	else if (str_to_u64(f[FIELD_MAXPROC], SERVICES_MAXPROC_MAX, &maxproc) <
	             0 ||
	         maxproc == 0)
		return services_fail(file, lineno,
		    "bad maxproc '%s' (want 1..%d or -)", f[FIELD_MAXPROC],
		    SERVICES_MAXPROC_MAX);
	else
		s->maxproc = (int)maxproc;
	for (i = FIELD_COMMAND; i < nf; i++)
		if (strcmp(f[i], "-o") == 0 &&
		    (i + 1 == nf || strchr(f[i + 1], '=') == NULL ||
		        *f[i + 1] == '='))
			return services_fail(
			    file, lineno, "-o needs name=value");
	s->name = xstrdup(f[FIELD_NAME]);
	s->argc = nf - FIELD_COMMAND;
	s->argv = xcalloc((size_t)s->argc + 1, sizeof(*s->argv));
	buf_init(&line, SERVICES_LINE_MAX);
	for (i = 0; i < nf; i++) {
		if (i >= FIELD_COMMAND)
			s->argv[i - FIELD_COMMAND] = xstrdup(f[i]);
		/* The joined fields are never longer than the entry. */
		if ((i > 0 && buf_putc(&line, ' ') < 0) ||
		    buf_puts(&line, f[i]) < 0)
			msg_panic(
			    "services: entry of %s outgrew its line", s->name);
	}
	s->line = buf_steal(&line);
	return 0;
}

/* Parses one collected entry and appends it, rejecting duplicates. */
static int
services_add(struct buf *entry, const char *file, int lineno,
    int default_maxproc, struct service_def **list, int *count)
{
	struct service_def s;
	int i;

	if (entry->len == 0)
		return 0;
	if (service_parse(entry->data, file, lineno, default_maxproc, &s) < 0) {
		service_clear(&s);
		return -1;
	}
	buf_reset(entry);
	for (i = 0; i < *count; i++)
		if (strcmp((*list)[i].name, s.name) == 0 &&
		    (*list)[i].type == s.type) {
			services_fail(file, lineno,
			    "duplicate service '%s' (first at line %d)", s.name,
			    (*list)[i].lineno);
			service_clear(&s);
			return -1;
		}
	*list = xrealloc(*list, ((size_t)*count + 1) * sizeof(**list));
	(*list)[(*count)++] = s;
	return 0;
}

int
services_parse(const char *text, const char *name, int default_maxproc,
    struct service_def **list_r, int *count_r, const char **error_r)
{
	struct service_def *list = NULL;
	int count = 0, lineno = 0, start = 0, ret = 0;
	const char *p = text, *line, *nl;
	struct buf entry;
	size_t n, ws;

	buf_init(&entry, SERVICES_LINE_MAX);
	while (*p != '\0' && ret == 0) {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		line = p;
		p += n + (nl != NULL);
		lineno++;
		/* CRLF files, and any stray CRs before the LF. */
		while (n > 0 && line[n - 1] == '\r')
			n--;
		ws = strspn(line, " \t");
		if (ws >= n || line[ws] == '#')
			continue;
		if (ws == 0) {
			ret = services_add(&entry, name, start, default_maxproc,
			    &list, &count);
			start = lineno;
		} else if (entry.len == 0)
			ret = services_fail(name, lineno,
			    "continuation line without a service");
		if (ret == 0 && ((entry.len > 0 && buf_putc(&entry, ' ') < 0) ||
		                    buf_append(&entry, line + ws, n - ws) < 0))
			ret = services_fail(name, lineno, "entry too long");
	}
	if (ret == 0)
		ret = services_add(
		    &entry, name, start, default_maxproc, &list, &count);
	buf_free(&entry);
	if (ret < 0) {
		services_free(&list, count);
		*error_r = services_error;
		return -1;
	}
	*list_r = list;
	*count_r = count;
	return 0;
}

int
services_load(const char *path, int default_maxproc,
    struct service_def **list_r, int *count_r, const char **error_r)
{
	struct buf text;
	const char *err;
	int ret;

	buf_init(&text, SERVICES_FILE_MAX);
	if (file_read_all(path, SERVICES_FILE_MAX, &text, &err) < 0) {
		snprintf(services_error, sizeof(services_error), "%s", err);
		*error_r = services_error;
		ret = -1;
	} else if (memchr(buf_cstr(&text), '\0', text.len) != NULL) {
		snprintf(services_error, sizeof(services_error),
		    "%s: NUL byte in file", path);
		*error_r = services_error;
		ret = -1;
	} else
		ret = services_parse(buf_cstr(&text), path, default_maxproc,
		    list_r, count_r, error_r);
	buf_free(&text);
	return ret;
}

void
services_free(struct service_def **list_r, int count)
{
	int i;

	if (*list_r == NULL)
		return;
	for (i = 0; i < count; i++)
		service_clear(&(*list_r)[i]);
	free(*list_r);
	*list_r = NULL;
}

const char *
services_login_name(const struct service_def *def)
{
	size_t n = strlen(SERVICES_LOGIN_PREFIX);

	if (def->type != SERVICE_UNIX ||
	    strncmp(def->name, SERVICES_LOGIN_PREFIX, n) != 0)
		return NULL;
	return def->name + n;
}
