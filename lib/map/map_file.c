/* SPDX-License-Identifier: MIT */
/*
 * Reading the text table files (pcre:, cidr:, the source of hash:): the
 * whole file with a size cap and the identity of what was read, split
 * into Postfix's logical lines (comments, blank lines, continuation
 * lines), with errors that name file and line. No RFCs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "map/map_int.h"

#define MAP_READ_CHUNK 8192

void
map_file_id_set(struct map_file_id *id_r, const struct stat *st)
{
	memset(id_r, 0, sizeof(*id_r));
	id_r->dev = st->st_dev;
	id_r->ino = st->st_ino;
	id_r->size = st->st_size;
	id_r->mtime = st->st_mtim;
}

int
map_file_id_eq(const struct map_file_id *a, const struct map_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

char *
map_line_error(const char *name, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *text, *msg;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	msg = xasprintf("%s, line %u: %s", name, line, text);
	free(text);
	return msg;
}

int
map_file_read(const char *path, size_t max, struct buf *out, struct stat *st_r,
    char **error_r)
{
	char chunk[MAP_READ_CHUNK];
	struct stat st;
	ssize_t n;
	int fd;

	buf_reset(out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* A FIFO or device would block a daemon or never end. */
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r =
			    xasprintf("read %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max ||
		    buf_append(out, chunk, (size_t)n) < 0) {
			*error_r =
			    xasprintf("%s: larger than %zu bytes", path, max);
			close(fd);
			return -1;
		}
	}
	close(fd);
	*st_r = st;
	return 0;
}

void
map_lines_init(
    struct map_lines *l, const char *name, const char *text, size_t len)
{
	l->name = name;
	l->p = text;
	l->end = text + len;
	l->next_line = 1;
	l->line = 0;
	buf_init(&l->buf, MAP_LINE_MAX);
}

void
map_lines_free(struct map_lines *l)
{
	buf_free(&l->buf);
}

/*
 * The next physical line: *start_r and *len_r without the newline and
 * without trailing blanks. 0 at the end of the text.
 */
static int
map_lines_physical(struct map_lines *l, const char **start_r, size_t *len_r)
{
	const char *nl, *s;
	size_t len;

	if (l->p >= l->end)
		return 0;
	s = l->p;
	nl = memchr(s, '\n', (size_t)(l->end - s));
	len = nl != NULL ? (size_t)(nl - s) : (size_t)(l->end - s);
	l->p = nl != NULL ? nl + 1 : l->end;
	while (len > 0 &&
	       (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	*start_r = s;
	*len_r = len;
	return 1;
}

int
map_lines_next(struct map_lines *l, char **error_r)
{
	const char *s, *save_p;
	unsigned save_line;
	size_t len, i;

	buf_reset(&l->buf);
	for (;;) {
		save_p = l->p;
		save_line = l->next_line;
		if (!map_lines_physical(l, &s, &len))
			break;
		l->next_line++;
		if (memchr(s, '\0', len) != NULL) {
			*error_r = map_line_error(
			    l->name, save_line, "NUL byte in line");
			return -1;
		}
		for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
			;
		/* Comments and blank lines do not end a logical line. */
		if (i == len || s[i] == '#')
			continue;
		if (i == 0 && l->buf.len > 0) {
			/* The start of the next logical line: read again. */
			l->p = save_p;
			l->next_line = save_line;
			break;
		}
		if (i > 0 && l->buf.len == 0) {
			*error_r = map_line_error(l->name, save_line,
			    "continuation line (starts with whitespace) "
			    "without a line to continue");
			return -1;
		}
		if (l->buf.len == 0)
			l->line = save_line;
		if (buf_append(&l->buf, s, len) < 0) {
			*error_r = map_line_error(l->name, l->line,
			    "line longer than %d bytes", MAP_LINE_MAX);
			return -1;
		}
	}
	return l->buf.len > 0 ? 1 : 0;
}

int
map_keyword(const char *s, const char *kw, const char **rest_r)
{
	size_t n = strlen(kw);

	if (strncasecmp(s, kw, n) != 0)
		return 0;
	if (s[n] != '\0' && s[n] != ' ' && s[n] != '\t')
		return 0;
	s += n;
	while (*s == ' ' || *s == '\t')
		s++;
	*rest_r = s;
	return 1;
}

void *
map_file_load_text(const char *name, struct map_file_id *id_r,
    map_text_parse_fn *parse, char **error_r)
{
	struct buf text;
	struct stat st;
	void *t;

	buf_init(&text, MAP_FILE_MAX);
	if (map_file_read(name, MAP_FILE_MAX, &text, &st, error_r) < 0) {
		buf_free(&text);
		return NULL;
	}
	map_file_id_set(id_r, &st);
	t = parse(name, buf_cstr(&text), text.len, error_r);
	buf_free(&text);
	return t;
}
