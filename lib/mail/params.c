/* SPDX-License-Identifier: MIT */
/*
 * Configuration: the parameter table generated from params.def, the
 * tern.conf reader and $name expansion (the Postfix main.cf idea). A load
 * builds a complete new snapshot and replaces the current one only when
 * every parameter expanded, converted and passed its range check, so a
 * bad reload leaves the running values untouched. No RFC applies; the
 * syntax follows Postfix main.cf.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "mail/params.h"

#define CONFIG_FILE_NAME    "tern.conf"
#define CONFIG_FILE_MAX     (1024 * 1024)
#define CONFIG_LINE_MAX     8192  /* one physical line */
#define CONFIG_VALUE_MAX    65536 /* a value after joining or expansion */
#define CONFIG_NAME_MAX     64
#define CONFIG_EXPAND_DEPTH 32
#define CONFIG_ERROR_MAX    1024
#define CONFIG_NEW_MODE     0644
#define CONFIG_MODE_MASK    07777
#define NUM_TEXT_SIZE       24
#define HOSTNAME_MAX        255
#define MYDOMAIN_FALLBACK   "localdomain"
#define LIST_SEPARATORS     ", \t\r\n"
#define NAME_CHARS                                             \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789_"

/* Where a value came from, for error messages. */
#define ORIGIN_DEFAULT  (-1)
#define ORIGIN_OVERRIDE 0

#define PARAM(type, name, def, min, max, doc) PARAM_CTYPE_##type var_##name;
#include "mail/params.def"
#undef PARAM

enum {
#define PARAM(type, name, def, min, max, doc) PARAM_IDX_##name,
#include "mail/params.def"
#undef PARAM
	PARAM_N
};

const struct param_def param_table[] = {
#define PARAM(type, name, def, min, max, doc) \
	{PARAM_##type, #name, def, min, max, doc, &var_##name},
#include "mail/params.def"
#undef PARAM
};
const size_t param_count = PARAM_N;

/* A name with its raw text, expanded on demand during a load. */
struct node {
	char *name;
	char *raw;
	int lineno;  /* > 0: line of tern.conf; or ORIGIN_* */
	char *value; /* expanded, owned; NULL until expanded */
	int busy;    /* on the expansion stack */
};

struct config {
	char *path;
	struct node *entries; /* tern.conf, last definition wins; owned */
	size_t nentries;
	struct node params[PARAM_N]; /* name and raw borrowed */
};

struct override {
	char *name;
	char *value;
};

struct expansion {
	struct config *c;
	int loading; /* params resolve via the snapshot, not the vars */
	struct node *stack[CONFIG_EXPAND_DEPTH];
	int depth;
};

static struct config *cur;
static struct override *overrides;
static size_t noverrides;
static char config_error[CONFIG_ERROR_MAX];
static char num_text[PARAM_N][NUM_TEXT_SIZE];

const struct param_def *
param_find(const char *name)
{
	size_t i;

	for (i = 0; i < PARAM_N; i++)
		if (strcmp(param_table[i].name, name) == 0)
			return &param_table[i];
	return NULL;
}

static int
name_valid(const char *s)
{
	size_t n = strspn(s, NAME_CHARS);

	return n > 0 && s[n] == '\0' && n <= CONFIG_NAME_MAX;
}

/* Formats "WHERE: message" into config_error; always returns -1. */
static int config_fail(const struct config *c, const struct node *n,
    const char *fmt, ...) MTA_PRINTF(3, 4);

static int
config_fail(const struct config *c, const struct node *n, const char *fmt, ...)
{
	size_t size = sizeof(config_error);
	int off = 0;
	va_list ap;

	if (n != NULL && n->lineno > 0 && c != NULL)
		off =
		    snprintf(config_error, size, "%s:%d: ", c->path, n->lineno);
	else if (n != NULL && n->lineno == ORIGIN_OVERRIDE)
		off = snprintf(config_error, size, "override of %s: ", n->name);
	else if (n != NULL)
		off = snprintf(config_error, size, "default of %s: ", n->name);
	if (off < 0 || (size_t)off >= size)
		return -1;
	va_start(ap, fmt);
	vsnprintf(config_error + off, size - (size_t)off, fmt, ap);
	va_end(ap);
	return -1;
}

static struct node *
entry_find(const struct config *c, const char *name)
{
	size_t i;

	if (c == NULL)
		return NULL;
	for (i = 0; i < c->nentries; i++)
		if (strcmp(c->entries[i].name, name) == 0)
			return &c->entries[i];
	return NULL;
}

static const struct override *
override_find(const char *name)
{
	size_t i;

	for (i = 0; i < noverrides; i++)
		if (strcmp(overrides[i].name, name) == 0)
			return &overrides[i];
	return NULL;
}

void
config_override(const char *name, const char *value)
{
	struct override *o = (struct override *)override_find(name);

	if (o != NULL) {
		free(o->value);
		o->value = xstrdup(value);
		return;
	}
	overrides = xrealloc(overrides, (noverrides + 1) * sizeof(*overrides));
	overrides[noverrides].name = xstrdup(name);
	overrides[noverrides].value = xstrdup(value);
	noverrides++;
}

static void
config_free(struct config **cp)
{
	struct config *c = *cp;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nentries; i++) {
		free(c->entries[i].name);
		free(c->entries[i].raw);
		free(c->entries[i].value);
	}
	for (i = 0; i < PARAM_N; i++)
		free(c->params[i].value);
	free(c->entries);
	free(c->path);
	free(c);
	*cp = NULL;
}

/*
 * Parses tern.conf text into c->entries. Comment and blank lines are
 * skipped anywhere, so they may sit between an entry and its
 * continuation lines, as in Postfix.
 */
static int
config_parse(struct config *c, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;
	struct node *last = NULL, *e;
	struct node where = {NULL, NULL, 0, NULL, 0};
	char *line, *s, *eq, *name, *value, *joined;
	size_t n;
	int ret = 0;

	while (p < end && ret == 0) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		where.lineno++;
		if (n > CONFIG_LINE_MAX)
			return config_fail(c, &where, "line too long");
		if (memchr(p, '\0', n) != NULL)
			return config_fail(c, &where, "NUL byte in line");
		line = xstrndup(p, n);
		p = nl != NULL ? nl + 1 : end;
		/* CRLF files, and any stray CRs before the LF. */
		while (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#') {
			free(line);
			continue;
		}
		if (s != line) {
			if (last == NULL)
				ret = config_fail(c, &where,
				    "continuation line without a parameter");
			else if (strlen(last->raw) + strlen(s) + 1 >
			         CONFIG_VALUE_MAX)
				ret = config_fail(c, &where, "value too long");
			else {
				joined = xasprintf("%s%s%s", last->raw,
				    *last->raw != '\0' ? " " : "", str_trim(s));
				free(last->raw);
				last->raw = joined;
			}
			free(line);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			ret = config_fail(c, &where, "missing '=' after name");
			free(line);
			continue;
		}
		*eq = '\0';
		name = str_trim(s);
		value = str_trim(eq + 1);
		if (!name_valid(name)) {
			ret = config_fail(
			    c, &where, "bad parameter name '%s'", name);
			free(line);
			continue;
		}
		if ((e = entry_find(c, name)) == NULL) {
			c->entries = xrealloc(c->entries,
			    (c->nentries + 1) * sizeof(*c->entries));
			e = &c->entries[c->nentries++];
			e->name = xstrdup(name);
			e->value = NULL;
			e->busy = 0;
		} else
			free(e->raw);
		e->raw = xstrdup(value);
		e->lineno = where.lineno;
		last = e;
		free(line);
	}
	return ret;
}

static int config_expand_text(
    struct expansion *x, const char *s, struct buf *out);

static char *
computed_hostname(void)
{
	char h[HOSTNAME_MAX + 1];

	memset(h, 0, sizeof(h));
	if (gethostname(h, HOSTNAME_MAX) < 0 || h[0] == '\0')
		return xstrdup("localhost");
	return xstrdup(h);
}

static int node_expand(struct expansion *x, struct node *n);

/* Value of $name: during a load from the snapshot, afterwards from the
 * vars (which the caller may have changed). */
static int
lookup(struct expansion *x, const char *name, const char **value_r)
{
	const struct param_def *p = param_find(name);
	struct node *n;

	if (p != NULL && !x->loading) {
		*value_r = config_value(name);
		return 0;
	}
	n = p != NULL ? &x->c->params[p - param_table] : entry_find(x->c, name);
	if (n == NULL) {
		msg_warn(
		    "undefined parameter $%s expands to an empty value", name);
		*value_r = "";
		return 0;
	}
	if (n->value == NULL && node_expand(x, n) < 0)
		return -1;
	*value_r = n->value;
	return 0;
}

static int
loop_error(struct expansion *x, const struct node *n)
{
	char chain[CONFIG_ERROR_MAX] = "";
	size_t off = 0;
	int i = x->depth - 1;

	while (i > 0 && x->stack[i] != n)
		i--;
	for (; i < x->depth && off < sizeof(chain); i++)
		off += (size_t)snprintf(chain + off, sizeof(chain) - off,
		    "%s -> ", x->stack[i]->name);
	return config_fail(x->c, x->stack[x->depth - 1],
	    "parameter expansion loop: %s%s", chain, n->name);
}

static int
node_expand(struct expansion *x, struct node *n)
{
	struct config *c = x->c;
	const char *dom, *host;
	struct buf b;
	int r;

	if (n->busy)
		return loop_error(x, n);
	if (x->depth == CONFIG_EXPAND_DEPTH)
		return config_fail(c, n, "parameter expansion too deep");
	n->busy = 1;
	x->stack[x->depth++] = n;
	buf_init(&b, CONFIG_VALUE_MAX);
	r = config_expand_text(x, n->raw, &b);
	if (r == 0 && b.len == 0 && n == &c->params[PARAM_IDX_myhostname]) {
		n->value = computed_hostname();
	} else if (r == 0 && b.len == 0 &&
	           n == &c->params[PARAM_IDX_mydomain]) {
		r = lookup(x, "myhostname", &host);
		if (r == 0) {
			dom = strchr(host, '.');
			n->value = xstrdup(dom != NULL && dom[1] != '\0'
			                       ? dom + 1
			                       : MYDOMAIN_FALLBACK);
		}
	} else if (r == 0)
		n->value = buf_steal(&b);
	buf_free(&b);
	x->depth--;
	n->busy = 0;
	return r;
}

static int
config_expand_text(struct expansion *x, const char *s, struct buf *out)
{
	const struct node *top = x->depth > 0 ? x->stack[x->depth - 1] : NULL;
	char name[CONFIG_NAME_MAX + 1];
	const char *value, *start;
	size_t n;
	int braced;

	while (*s != '\0') {
		n = strcspn(s, "$");
		if (buf_append(out, s, n) < 0)
			return config_fail(x->c, top, "value too long");
		s += n;
		if (*s == '\0')
			break;
		s++;
		if (*s == '$' || (*s != '{' && strspn(s, NAME_CHARS) == 0)) {
			/* "$$" is a literal '$', and so is a lone one. */
			if (buf_putc(out, '$') < 0)
				return config_fail(x->c, top, "value too long");
			if (*s == '$')
				s++;
			continue;
		}
		braced = *s == '{';
		start = s + braced;
		n = strspn(start, NAME_CHARS);
		if (braced && start[n] != '}')
			return config_fail(x->c, top, "bad ${name} syntax");
		if (n == 0 || n > CONFIG_NAME_MAX)
			return config_fail(x->c, top, "bad $name syntax");
		memcpy(name, start, n);
		name[n] = '\0';
		s = start + n + braced;
		if (lookup(x, name, &value) < 0)
			return -1;
		if (buf_puts(out, value) < 0)
			return config_fail(x->c, top, "value too long");
	}
	return 0;
}

char *
config_expand(const char *s, const char **error_r)
{
	struct expansion x = {cur, 0, {NULL}, 0};
	struct buf b;

	buf_init(&b, CONFIG_VALUE_MAX);
	if (config_expand_text(&x, s, &b) < 0) {
		buf_free(&b);
		*error_r = config_error;
		return NULL;
	}
	return buf_steal(&b);
}

/* Converts and range-checks one expanded value. */
static int
param_convert(struct config *c, size_t i, long long *out_r)
{
	const struct param_def *p = &param_table[i];
	const struct node *n = &c->params[i];
	const char *what = "numeric";
	uint64_t u = 0;
	int b, r = -1;

	switch (p->type) {
	case PARAM_STR:
		return 0;
	case PARAM_BOOL:
		if (str_to_bool(n->value, &b) < 0)
			return config_fail(c, n, "%s: bad boolean value '%s'",
			    p->name, n->value);
		*out_r = b;
		return 0;
	case PARAM_INT:
		r = str_to_u64(n->value, (uint64_t)LLONG_MAX, &u);
		break;
	case PARAM_TIME:
		what = "time";
		r = str_to_seconds(n->value, 1, &u);
		break;
	case PARAM_SIZE:
		what = "size";
		r = str_to_size(n->value, &u);
		break;
	default:
		msg_panic("param %s: bad type %d", p->name, (int)p->type);
	}
	if (r < 0)
		return config_fail(
		    c, n, "%s: bad %s value '%s'", p->name, what, n->value);
	if (u > (uint64_t)LLONG_MAX ||
	    ((p->min != 0 || p->max != 0) &&
	        ((long long)u < p->min || (long long)u > p->max)))
		return config_fail(c, n,
		    "%s: value '%s' out of range %lld..%lld", p->name, n->value,
		    p->min, p->max);
	*out_r = (long long)u;
	return 0;
}

static void
param_assign(size_t i, char *s, long long v)
{
	void *var = param_table[i].var;

	switch (param_table[i].type) {
	case PARAM_STR:
		*(char **)var = s;
		break;
	case PARAM_BOOL:
		*(int *)var = (int)v;
		break;
	default:
		*(long long *)var = v;
		break;
	}
}

int
config_load(const char *config_dir, const char **error_r)
{
	struct config *c = xcalloc(1, sizeof(*c));
	struct expansion x = {c, 1, {NULL}, 0};
	long long nums[PARAM_N];
	const struct override *o;
	const char *err;
	struct node *n, *e;
	struct stat st;
	struct buf text;
	size_t i;

	c->path = xasprintf("%s/%s", config_dir, CONFIG_FILE_NAME);
	buf_init(&text, CONFIG_FILE_MAX);
	if (stat(c->path, &st) == 0) {
		if (file_read_all(c->path, CONFIG_FILE_MAX, &text, &err) < 0) {
			config_fail(NULL, NULL, "%s", err);
			goto fail;
		}
		if (config_parse(c, buf_cstr(&text), text.len) < 0)
			goto fail;
	} else if (errno != ENOENT) {
		config_fail(NULL, NULL, "%s: %s", c->path, strerror(errno));
		goto fail;
	}
	for (i = 0; i < c->nentries; i++)
		if (param_find(c->entries[i].name) == NULL)
			msg_warn("%s:%d: unknown parameter %s", c->path,
			    c->entries[i].lineno, c->entries[i].name);
	for (i = 0; i < noverrides; i++)
		if (param_find(overrides[i].name) == NULL)
			msg_warn("override of unknown parameter %s",
			    overrides[i].name);
	for (i = 0; i < PARAM_N; i++) {
		n = &c->params[i];
		n->name = (char *)param_table[i].name;
		if (i == PARAM_IDX_config_directory) {
			n->raw = (char *)config_dir;
			n->lineno = ORIGIN_OVERRIDE;
		} else if ((o = override_find(n->name)) != NULL) {
			n->raw = o->value;
			n->lineno = ORIGIN_OVERRIDE;
		} else if ((e = entry_find(c, n->name)) != NULL) {
			n->raw = e->raw;
			n->lineno = e->lineno;
		} else {
			n->raw = (char *)param_table[i].defval;
			n->lineno = ORIGIN_DEFAULT;
		}
	}
	for (i = 0; i < PARAM_N; i++) {
		nums[i] = 0;
		if (c->params[i].value == NULL &&
		    node_expand(&x, &c->params[i]) < 0)
			goto fail;
		if (param_convert(c, i, &nums[i]) < 0)
			goto fail;
	}
	for (i = 0; i < PARAM_N; i++)
		param_assign(i, c->params[i].value, nums[i]);
	config_free(&cur);
	cur = c;
	buf_free(&text);
	return 0;
fail:
	buf_free(&text);
	config_free(&c);
	*error_r = config_error;
	return -1;
}

const char *
config_value(const char *name)
{
	const struct param_def *p = param_find(name);
	size_t i;

	if (p == NULL)
		return NULL;
	i = (size_t)(p - param_table);
	switch (p->type) {
	case PARAM_STR:
		return *(char **)p->var != NULL ? *(char **)p->var : "";
	case PARAM_BOOL:
		return *(int *)p->var ? "yes" : "no";
	default:
		snprintf(num_text[i], sizeof(num_text[i]), "%lld",
		    *(long long *)p->var);
		return num_text[i];
	}
}

int
config_is_set(const char *name)
{
	return override_find(name) != NULL || entry_find(cur, name) != NULL;
}

const char *
config_raw(const char *name)
{
	const struct node *e = entry_find(cur, name);

	return e != NULL ? e->raw : NULL;
}

void
config_foreach_unknown(config_name_cb *cb, void *ctx)
{
	size_t i;

	for (i = 0; cur != NULL && i < cur->nentries; i++)
		if (param_find(cur->entries[i].name) == NULL)
			cb(cur->entries[i].name, cur->entries[i].raw, ctx);
}

/* The name an entry line defines, or 0 for other lines. */
static int
line_defines(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name), i;

	if (len <= n || memcmp(line, name, n) != 0)
		return 0;
	for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return i < len && line[i] == '=';
}

/*
 * Rewrites tern.conf with every entry that sets name (continuation lines
 * included) replaced by one "name = value" line (value != NULL),
 * dropped, or commented out. *found_r says whether there was one.
 */
static int
config_rewrite(const char *config_dir, const char *name, const char *value,
    int comment_out, int *found_r, const char **error_r)
{
	char *path = xasprintf("%s/%s", config_dir, CONFIG_FILE_NAME);
	const char *p, *end, *nl, *err;
	struct buf in, out;
	mode_t mode = CONFIG_NEW_MODE;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int replaced = 0, skipping = 0, keep, ret = -1;
	struct stat st;
	size_t n, ws;

	buf_init(&in, CONFIG_FILE_MAX);
	buf_init(&out, CONFIG_FILE_MAX + CONFIG_LINE_MAX);
	if (!name_valid(name)) {
		config_fail(NULL, NULL, "bad parameter name '%s'", name);
		goto done;
	}
	if (value != NULL && (strpbrk(value, "\r\n") != NULL ||
	                         strlen(value) > CONFIG_LINE_MAX / 2)) {
		config_fail(NULL, NULL, "%s: bad value for tern.conf", name);
		goto done;
	}
	if (stat(path, &st) == 0) {
		mode = st.st_mode & CONFIG_MODE_MASK;
		if (geteuid() == 0) {
			uid = st.st_uid;
			gid = st.st_gid;
		}
		if (file_read_all(path, CONFIG_FILE_MAX, &in, &err) < 0) {
			config_fail(NULL, NULL, "%s", err);
			goto done;
		}
	} else if (errno != ENOENT) {
		config_fail(NULL, NULL, "%s: %s", path, strerror(errno));
		goto done;
	}
	p = buf_cstr(&in);
	end = p + in.len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		ws = strspn(p, " \t");
		if (ws >= n || p[ws] == '#' || p[ws] == '\r')
			keep = 1; /* blank and comment lines stay */
		else if (ws > 0)
			keep = !skipping; /* continuation */
		else {
			/* later definitions would win: drop them too */
			skipping = line_defines(p, n, name);
			keep = !skipping;
			if (skipping && !replaced++ && value != NULL &&
			    buf_printf(&out, "%s = %s\n", name, value) < 0)
				goto toolong;
		}
		if (!keep && comment_out && buf_putc(&out, '#') < 0)
			goto toolong;
		if ((keep || comment_out) &&
		    (buf_append(&out, p, n) < 0 || buf_putc(&out, '\n') < 0))
			goto toolong;
		p = nl != NULL ? nl + 1 : end;
	}
	*found_r = replaced > 0;
	if (!replaced && value != NULL &&
	    buf_printf(&out, "%s = %s\n", name, value) < 0)
		goto toolong;
	/* Nothing to take away: the file stays as it is. */
	if (!replaced && value == NULL) {
		ret = 0;
		goto cleanup;
	}
	ret =
	    file_write_atomic(path, out.data, out.len, mode, uid, gid, error_r);
	goto cleanup;
toolong:
	config_fail(NULL, NULL, "%s: file too large", path);
done:
	*error_r = config_error;
cleanup:
	buf_free(&in);
	buf_free(&out);
	free(path);
	return ret;
}

int
config_edit(const char *config_dir, const char *name, const char *value,
    const char **error_r)
{
	int found;

	return config_rewrite(config_dir, name, value, 0, &found, error_r);
}

int
config_unset(const char *config_dir, const char *name, int comment_out,
    const char **error_r)
{
	int found = 0;

	if (config_rewrite(
	        config_dir, name, NULL, comment_out, &found, error_r) < 0)
		return -1;
	return found;
}

/*
 * A word ends at a separator outside braces, so that a table spec such as
 * "inline:{ a=b, c=d }" stays one word (Postfix's rule); an unbalanced
 * brace runs to the end of the value and the table parser reports it.
 */
static size_t
config_word_len(const char *s)
{
	size_t n = 0;
	int depth = 0;

	for (; s[n] != '\0'; n++) {
		if (s[n] == '{')
			depth++;
		else if (s[n] == '}' && depth > 0)
			depth--;
		else if (depth == 0 && strchr(LIST_SEPARATORS, s[n]) != NULL)
			break;
	}
	return n;
}

char **
config_list(const char *value)
{
	char **list = xmalloc(sizeof(*list));
	size_t count = 0, n;
	const char *s = value != NULL ? value : "";

	for (;;) {
		s += strspn(s, LIST_SEPARATORS);
		if (*s == '\0')
			break;
		n = config_word_len(s);
		list = xrealloc(list, (count + 2) * sizeof(*list));
		list[count++] = xstrndup(s, n);
		s += n;
	}
	list[count] = NULL;
	return list;
}

void
config_list_free(char **list)
{
	size_t i;

	for (i = 0; list != NULL && list[i] != NULL; i++)
		free(list[i]);
	free(list);
}

const char *
config_dir_default(void)
{
	/* Plain getenv, also in setgid programs (where secure_getenv would
	 * hide it): they check the result with config_dir_trusted. */
	const char *dir = getenv(CONFIG_DIR_ENV);

	return dir != NULL && *dir != '\0' ? dir : TERN_CONFIG_DIR;
}

/* Owned by root, not writable by group or others; a missing file is
 * fine (defaults). */
static int
config_path_root_safe(const char *path, int must_exist)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return !must_exist && errno == ENOENT;
	return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

int
config_dir_trusted(const char *config_dir, uid_t uid)
{
	char *conf;
	int ok;

	if (uid == 0 || strcmp(config_dir, TERN_CONFIG_DIR) == 0)
		return 1;
	if (!config_path_root_safe(config_dir, 1))
		return 0;
	conf = xasprintf("%s/tern.conf", config_dir);
	ok = config_path_root_safe(conf, 0);
	free(conf);
	return ok;
}
