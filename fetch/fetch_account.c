/* SPDX-License-Identifier: MIT */
/*
 * The accounts file (fetch_accounts(5)): one remote mailbox per line,
 *
 *   NAME URL [option=value ...]
 *
 * URL is scheme://[user@]host[:port][/folder] with scheme pop3, pop3s,
 * imap or imaps (RFC 2384 and RFC 5092 in shape, without their
 * escapes: the user is everything before the last '@'). It holds
 * passwords, so it is read as root before the privilege drop, the way
 * Postfix's smtp reads sasl_passwd, and refused unless it is a regular
 * file that root owns and only root can read or write: a password file
 * anybody else could change would let them point tern at their server.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "fetch.h"

#define FETCH_FIELDS_MAX 32

/* An error text naming a piece of the line (a macro: fmt stays a
 * literal the compiler checks). */
#define fetch_err(fmt, arg) xasprintf(fmt, log_sanitize(arg, 200))

/* A name that can be a file name and a log word. */
static int
fetch_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FETCH_NAME_MAX || *s == '.' || *s == '-')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		        *s == '.'))
			return 0;
	return 1;
}

/* No white space or controls (the accounts line's own separators) and
 * nothing a protocol line could be split at. */
static int
fetch_word_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int
fetch_url_parse(struct fetch_account *a, const char *url, char **error_r)
{
	const char *p, *host, *at, *slash, *colon, *end;
	struct {
		const char *scheme;
		enum fetch_proto proto;
		int tls;
		const char *port;
	} schemes[] = {
	    {"pop3://", FETCH_POP3, 0, "110"},
	    {"pop3s://", FETCH_POP3, 1, "995"},
	    {"imap://", FETCH_IMAP, 0, "143"},
	    {"imaps://", FETCH_IMAP, 1, "993"},
	};
	size_t i;
	uint64_t port;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (str_prefix_ci(url, strlen(url), schemes[i].scheme))
			break;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		*error_r = fetch_err("URL \"%s\": the scheme must be pop3, "
				     "pop3s, imap or imaps",
		    url);
		return -1;
	}
	a->proto = schemes[i].proto;
	a->implicit_tls = schemes[i].tls;
	p = url + strlen(schemes[i].scheme);
	end = p + strlen(p);
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = end;
	/* The user may hold '@' (isp-user@isp.example): the last one
	 * before the path ends it. */
	at = NULL;
	for (host = p; host < slash; host++)
		if (*host == '@')
			at = host;
	if (at == NULL) {
		*error_r = fetch_err("URL \"%s\": no user name", url);
		return -1;
	}
	a->user = xstrndup(p, (size_t)(at - p));
	host = at + 1;
	colon = NULL;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(slash - host));

		if (rb == NULL) {
			*error_r = fetch_err("URL \"%s\": bad address", url);
			return -1;
		}
		a->host = xstrndup(host + 1, (size_t)(rb - host - 1));
		if (rb + 1 < slash && rb[1] == ':')
			colon = rb + 1;
		else if (rb + 1 != slash) {
			*error_r = fetch_err("URL \"%s\": bad address", url);
			return -1;
		}
	} else {
		colon = memchr(host, ':', (size_t)(slash - host));
		a->host = xstrndup(host,
		    (size_t)((colon != NULL ? colon : slash) - host));
	}
	if (colon != NULL) {
		a->port = xstrndup(colon + 1, (size_t)(slash - colon - 1));
		if (str_to_u64(a->port, 65535, &port) < 0 || port == 0) {
			*error_r = fetch_err("URL \"%s\": bad port", url);
			return -1;
		}
	} else
		a->port = xstrdup(schemes[i].port);
	if (*a->user == '\0' || *a->host == '\0') {
		*error_r = fetch_err("URL \"%s\": no user or host", url);
		return -1;
	}
	if (*slash == '/' && slash[1] != '\0') {
		if (a->proto != FETCH_IMAP) {
			*error_r = fetch_err(
			    "URL \"%s\": a folder is for IMAP only", url);
			return -1;
		}
		a->folder = xstrdup(slash + 1);
	} else if (a->proto == FETCH_IMAP)
		a->folder = xstrdup("INBOX");
	return 0;
}

static int
fetch_bool(const char *name, const char *v, int *out, char **error_r)
{
	if (str_to_bool(v, out) < 0) {
		*error_r = fetch_err("%s: yes or no", name);
		return -1;
	}
	return 0;
}

static int
fetch_option(struct fetch_account *a, char *opt, char **error_r)
{
	char *eq = strchr(opt, '='), *v;
	int tls_verify;

	if (eq == NULL) {
		*error_r = fetch_err("option \"%s\" has no value", opt);
		return -1;
	}
	*eq = '\0';
	v = eq + 1;
	if (strcmp(opt, "password") == 0) {
		free(a->password);
		a->password = xstrdup(v);
	} else if (strcmp(opt, "to") == 0) {
		if (strchr(v, '@') == NULL && !fetch_word_valid(v)) {
			*error_r = fetch_err("to=%s: not an address", v);
			return -1;
		}
		free(a->to);
		a->to = xstrdup(v);
	} else if (strcmp(opt, "multidrop") == 0)
		return fetch_bool(opt, v, &a->multidrop, error_r);
	else if (strcmp(opt, "keep") == 0)
		return fetch_bool(opt, v, &a->keep, error_r);
	else if (strcmp(opt, "tls_verify") == 0) {
		if (fetch_bool(opt, v, &tls_verify, error_r) < 0)
			return -1;
		a->tls_verify = tls_verify;
	} else if (strcmp(opt, "tls") == 0) {
		if (strcmp(v, "none") == 0)
			a->tls_none = 1;
		else if (strcmp(v, "required") == 0)
			a->tls_none = 0;
		else {
			*error_r = fetch_err("tls=%s: none or required", v);
			return -1;
		}
	} else if (strcmp(opt, "tls_ca_file") == 0) {
		free(a->tls_ca_file);
		a->tls_ca_file = xstrdup(v);
	} else if (strcmp(opt, "folder") == 0) {
		if (a->proto != FETCH_IMAP) {
			*error_r = fetch_err("folder=%s: for IMAP only", v);
			return -1;
		}
		free(a->folder);
		a->folder = xstrdup(v);
	} else {
		*error_r = fetch_err("unknown option \"%s\"", opt);
		return -1;
	}
	return 0;
}

int
fetch_account_parse(const char *line, struct fetch_account **acct_r,
    char **error_r)
{
	char *copy = xstrdup(line), *f[FETCH_FIELDS_MAX], *s;
	struct fetch_account *a;
	int n, i;

	*acct_r = NULL;
	s = str_trim(copy);
	if (*s == '\0' || *s == '#') {
		free(copy);
		return 0;
	}
	if ((n = str_split(s, " \t", f, FETCH_FIELDS_MAX)) < 0) {
		free(copy);
		*error_r = xstrdup("too many options");
		return -1;
	}
	if (n < 2) {
		free(copy);
		*error_r = xstrdup("expected NAME URL [option=value ...]");
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->tls_verify = 1;
	if (!fetch_name_valid(f[0]))
		*error_r = fetch_err("bad account name \"%s\" (letters, "
				     "digits, '-', '_', '.')",
		    f[0]);
	else if (fetch_url_parse(a, f[1], error_r) == 0) {
		a->name = xstrdup(f[0]);
		for (i = 2; i < n; i++)
			if (fetch_option(a, f[i], error_r) < 0)
				break;
		if (i == n) {
			if (a->password == NULL)
				*error_r = xstrdup("no password=");
			else if (a->multidrop && a->to != NULL)
				*error_r = xstrdup(
				    "to= and multidrop=yes exclude each other");
			else if (!a->multidrop && a->to == NULL)
				*error_r = xstrdup(
				    "no to= recipient (or multidrop=yes)");
			else if (!fetch_word_valid(a->user) ||
			         !fetch_word_valid(a->password))
				*error_r = xstrdup("user or password with "
						   "white space or controls");
			else {
				free(copy);
				*acct_r = a;
				return 1;
			}
		}
	}
	free(copy);
	fetch_account_free(&a);
	return -1;
}

void
fetch_account_free(struct fetch_account **a_r)
{
	struct fetch_account *a = *a_r;

	if (a == NULL)
		return;
	free(a->name);
	free(a->tls_ca_file);
	free(a->user);
	free(a->host);
	free(a->port);
	free(a->folder);
	if (a->password != NULL) {
		explicit_bzero(a->password, strlen(a->password));
		free(a->password);
	}
	free(a->to);
	free(a);
	*a_r = NULL;
}

void
fetch_accounts_free(struct fetch_accounts *as)
{
	size_t i;

	for (i = 0; i < as->n; i++)
		fetch_account_free(&as->v[i]);
	free(as->v);
	as->v = NULL;
	as->n = 0;
}

/* The file's content, if its owner and mode let it hold passwords. */
static int
fetch_accounts_read(const char *path, struct buf *out, char **error_r)
{
	struct stat st;
	ssize_t n;
	char chunk[8192];
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("%s: %s%s", path, strerror(errno),
		    errno == ELOOP ? " (a symbolic link: refused)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file: refused", path);
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		*error_r = xasprintf("%s: holds passwords, so it must be owned "
				     "by %s with mode 0600 (it is uid %lu mode "
				     "%04o): refused, no account is collected",
		    path, geteuid() == 0 ? "root" : "the daemon's user",
		    (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(out, chunk, (size_t)n) < 0) {
			*error_r = xasprintf("%s: larger than %d bytes", path,
			    FETCH_ACCOUNTS_FILE_MAX);
			close(fd);
			return -1;
		}
	close(fd);
	if (n < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
fetch_accounts_load(const char *path, struct fetch_accounts *out,
    char **error_r)
{
	struct fetch_account *a;
	struct buf text;
	char *line, *next, *err = NULL;
	int lineno = 0, ret = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	buf_init(&text, FETCH_ACCOUNTS_FILE_MAX);
	if (fetch_accounts_read(path, &text, error_r) < 0) {
		buf_free(&text);
		return -1;
	}
	if (text.len == 0) {
		buf_free(&text);
		return 0;
	}
	line = (char *)buf_cstr(&text);
	for (; line != NULL && ret == 0; line = next) {
		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strlen(line) > FETCH_ACCOUNT_LINE_MAX) {
			*error_r = xasprintf("%s, line %d: longer than %d "
					     "bytes",
			    path, lineno, FETCH_ACCOUNT_LINE_MAX);
			ret = -1;
			break;
		}
		switch (fetch_account_parse(line, &a, &err)) {
		case 0:
			break;
		case 1:
			for (i = 0; i < out->n; i++)
				if (strcmp(out->v[i]->name, a->name) == 0)
					break;
			if (i < out->n || out->n >= FETCH_ACCOUNTS_MAX) {
				*error_r = xasprintf("%s, line %d: %s", path,
				    lineno,
				    i < out->n ? "a second account of that "
				                 "name"
				               : "too many accounts");
				fetch_account_free(&a);
				ret = -1;
				break;
			}
			out->v = xrealloc(
			    out->v, (out->n + 1) * sizeof(*out->v));
			out->v[out->n++] = a;
			break;
		default:
			*error_r = xasprintf("%s, line %d: %s", path, lineno,
			    err);
			free(err);
			ret = -1;
		}
	}
	explicit_bzero(text.data, text.len);
	buf_free(&text);
	if (ret < 0)
		fetch_accounts_free(out);
	return ret;
}
