/* SPDX-License-Identifier: MIT */
/*
 * The virtual tables, as Postfix's cleanup(8) and trivial-rewrite(8) use
 * them (cleanup_map1n.c, virtual(5)): virtual_alias_maps rewrites a
 * recipient into one or more addresses, recursively;
 * virtual_alias_domains says which domains exist only through those
 * aliases; virtual_mailbox_maps gives a virtual user's maildir.
 *
 * The expansion is a depth-first walk from the recipient: the result is
 * every address reachable through the tables that has no entry of its
 * own or maps to itself (Postfix's way to end a recursion). Each distinct
 * address is expanded once: one met again (a duplicate, or an address
 * that leads back to one being expanded) adds nothing new, so a table
 * shaped like a lattice costs its size, not its number of paths, and a
 * cycle ends at once instead of running to virtual_alias_recursion_limit
 * as in Postfix. A recipient whose every path ends in a cycle (a -> b,
 * b -> a) has no address left: that is the loop, and it is refused. No RFCs beyond the address
 * syntax (RFC 5321 4.1.2, via addr.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "map/map.h"
#include "mail/addr.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "mail/virtual_alias.h"

/* Table text quoted in log details. */
#define VA_LOG_MAX     100
/* Room for an error text kept until the next call. */
#define VA_ERROR_MAX   512
/* A virtual_mailbox_maps value: a path below the base, not a novel. */
#define VA_MAILBOX_MAX 1024
#define VA_INCLUDE     ":include:"

struct va_list_maps {
	struct map **maps;
	size_t n;
};

/* Every table is opened once per spec, whichever parameter names it. */
struct va_tables {
	int open;
	/* The parameter values the tables were opened from: a changed
	 * value (a test, a reload) reopens them. */
	char *alias_spec, *domains_spec, *mailbox_spec;
	struct va_list_maps alias, domain_maps, mailbox;
	char **domain_names;  /* literal names of virtual_alias_domains */
	struct hash *by_spec; /* spec -> struct map * */
};

static struct va_tables vt;
static char va_error[VA_ERROR_MAX];
/* The value of every set kept in a struct hash (which wants non-NULL). */
static char va_mark;

static const char *
va_str(const char *s)
{
	return s != NULL ? s : "";
}

static void
va_map_free(void *p)
{
	struct map *m = p;

	map_free(&m);
}

void
virtual_alias_tables_free(void)
{
	size_t i;

	if (vt.domain_names != NULL) {
		for (i = 0; vt.domain_names[i] != NULL; i++)
			free(vt.domain_names[i]);
	}
	free(vt.domain_names);
	free(vt.alias.maps);
	free(vt.domain_maps.maps);
	free(vt.mailbox.maps);
	free(vt.alias_spec);
	free(vt.domains_spec);
	free(vt.mailbox_spec);
	hash_free(&vt.by_spec, va_map_free);
	memset(&vt, 0, sizeof(vt));
}

/* A list word that names a table ("type:name"), not a domain. */
static int
va_is_table(const char *word)
{
	return word[0] != '[' && strchr(word, ':') != NULL;
}

static int
va_open_map(
    const char *param, const char *spec, struct va_list_maps *l, char **error_r)
{
	struct map *m = hash_get(vt.by_spec, spec);
	char *err;

	if (m == NULL) {
		if ((m = map_open(spec, &err)) == NULL) {
			*error_r = xasprintf("%s: %s", param, err);
			free(err);
			return -1;
		}
		hash_put(vt.by_spec, spec, m);
	}
	l->maps = xrealloc(l->maps, (l->n + 1) * sizeof(*l->maps));
	l->maps[l->n++] = m;
	return 0;
}

/* A parameter whose words are all tables. */
static int
va_open_tables(const char *param, const char *value, struct va_list_maps *l,
    char **error_r)
{
	char **words = config_list(value);
	int ret = 0;
	size_t i;

	for (i = 0; words[i] != NULL && ret == 0; i++) {
		if (!va_is_table(words[i])) {
			*error_r = xasprintf("%s: \"%s\" is not a type:table",
			    param, log_sanitize(words[i], VA_LOG_MAX));
			ret = -1;
		} else {
			ret = va_open_map(param, words[i], l, error_r);
		}
	}
	config_list_free(words);
	return ret;
}

/* virtual_alias_domains: names and tables (Postfix's domain list,
 * without its /file and !negation forms). */
static int
va_open_domains(const char *value, char **error_r)
{
	static const char param[] = "virtual_alias_domains";
	char **words = config_list(value);
	size_t i, n = 0;
	int ret = 0;

	for (i = 0; words[i] != NULL; i++)
		;
	vt.domain_names = xcalloc(i + 1, sizeof(*vt.domain_names));
	for (i = 0; words[i] != NULL && ret == 0; i++) {
		if (va_is_table(words[i])) {
			ret = va_open_map(
			    param, words[i], &vt.domain_maps, error_r);
		} else if (words[i][0] == '/' || words[i][0] == '!') {
			*error_r = xasprintf("%s: \"%s\": file names and "
			                     "negation are not supported; "
			                     "use domain names or tables",
			    param, log_sanitize(words[i], VA_LOG_MAX));
			ret = -1;
		} else {
			vt.domain_names[n] = xstrdup(words[i]);
			str_lower(vt.domain_names[n++]);
		}
	}
	config_list_free(words);
	return ret;
}

static int
va_changed(const char *saved, const char *now)
{
	return strcmp(va_str(saved), va_str(now)) != 0;
}

int
virtual_alias_tables_init(char **error_r)
{
	if (vt.open && !va_changed(vt.alias_spec, var_virtual_alias_maps) &&
	    !va_changed(vt.domains_spec, var_virtual_alias_domains) &&
	    !va_changed(vt.mailbox_spec, var_virtual_mailbox_maps))
		return 0;
	virtual_alias_tables_free();
	vt.by_spec = hash_create();
	vt.alias_spec = xstrdup(va_str(var_virtual_alias_maps));
	vt.domains_spec = xstrdup(va_str(var_virtual_alias_domains));
	vt.mailbox_spec = xstrdup(va_str(var_virtual_mailbox_maps));
	if (va_open_tables(
	        "virtual_alias_maps", vt.alias_spec, &vt.alias, error_r) < 0 ||
	    va_open_domains(vt.domains_spec, error_r) < 0 ||
	    va_open_tables("virtual_mailbox_maps", vt.mailbox_spec, &vt.mailbox,
	        error_r) < 0) {
		virtual_alias_tables_free();
		return -1;
	}
	vt.open = 1;
	return 0;
}

static void
va_exit(void)
{
	virtual_alias_tables_free();
}

/*
 * The tables, opened on first use by processes that did not ask (qmgr,
 * local through resolve_address), and closed at exit for them: Berkeley
 * DB keeps memory that only closing returns (LeakSanitizer sees it).
 */
static void
va_ensure(void)
{
	static int registered;
	char *err;

	if (virtual_alias_tables_init(&err) < 0)
		msg_fatal("%s", err);
	if (!registered &&
	    (vt.alias.n > 0 || vt.domain_maps.n > 0 || vt.mailbox.n > 0)) {
		registered = 1;
		atexit(va_exit);
	}
}

int
virtual_alias_active(void)
{
	va_ensure();
	return vt.alias.n > 0;
}

int
virtual_mailbox_active(void)
{
	va_ensure();
	return vt.mailbox.n > 0;
}

int
virtual_alias_domain(const char *domain, const char **error_r)
{
	const char *value, *err;
	size_t i;
	int r;

	va_ensure();
	for (i = 0; vt.domain_names[i] != NULL; i++)
		if (str_eq_ci(vt.domain_names[i], domain))
			return 1;
	for (i = 0; i < vt.domain_maps.n; i++) {
		r = map_lookup(vt.domain_maps.maps[i], domain, &value, &err);
		if (r < 0) {
			snprintf(va_error, sizeof(va_error), "%s: %s",
			    map_spec(vt.domain_maps.maps[i]), err);
			*error_r = va_error;
			return -1;
		}
		if (r > 0)
			return 1;
	}
	return 0;
}

/*
 * Looks key up in each table of l in order (whole keys only in pattern
 * tables when partial). 1 with *value_r (allocated) and *map_r, 0, or -1
 * with *error_r (va_error).
 */
static int
va_find(const struct va_list_maps *l, const char *key, int partial,
    char **value_r, const struct map **map_r, const char **error_r)
{
	const char *value, *err;
	size_t i;
	int r;

	for (i = 0; i < l->n; i++) {
		if (partial && map_is_pattern(l->maps[i]))
			continue;
		r = map_lookup(l->maps[i], key, &value, &err);
		if (r < 0) {
			snprintf(va_error, sizeof(va_error),
			    "%s: lookup of %s failed: %s", map_spec(l->maps[i]),
			    log_sanitize(key, VA_LOG_MAX), err);
			*error_r = va_error;
			return -1;
		}
		if (r > 0) {
			*value_r = xstrdup(value);
			*map_r = l->maps[i];
			return 1;
		}
	}
	return 0;
}

/*
 * Postfix's mail_addr_find order: user@domain, user (a $mydestination
 * domain only), @domain. 1, 0 or -1 as va_find.
 */
static int
va_lookup(const struct va_list_maps *l, const char *addr, char **value_r,
    const struct map **map_r, const char **error_r)
{
	struct resolve_result r;
	char *key = addr_fold(addr);
	int found;

	found = va_find(l, key, 0, value_r, map_r, error_r);
	free(key);
	if (found != 0 || resolve_address(addr, &r) < 0)
		return found;
	if (r.class == RESOLVE_LOCAL && r.domain[0] != '\0')
		found = va_find(l, r.local, 1, value_r, map_r, error_r);
	if (found == 0 && r.domain[0] != '\0') {
		key = xasprintf("@%s", r.domain);
		found = va_find(l, key, 1, value_r, map_r, error_r);
		free(key);
	}
	resolve_free(&r);
	return found;
}

/* ---- the expansion ---- */

/* One address being expanded: its targets and the next to take. */
struct va_frame {
	char *key; /* addr_fold form */
	char **targets;
	size_t n, next;
};

struct va_walk {
	struct virtual_alias_expansion *x;
	struct hash *path;  /* keys of the frames on the stack */
	struct hash *done;  /* keys expanded completely */
	struct hash *final; /* keys of x->addrs */
	struct va_frame *stack;
	size_t depth, alloc;
	int addr_alloc;
	int cycled; /* some address led back to one being expanded */
};

static int va_fail(struct va_walk *w, enum virtual_alias_status status,
    const char *fmt, ...) MTA_PRINTF(3, 4);

static int
va_fail(
    struct va_walk *w, enum virtual_alias_status status, const char *fmt, ...)
{
	va_list ap;

	w->x->status = status;
	va_start(ap, fmt);
	w->x->detail = xvasprintf(fmt, ap);
	va_end(ap);
	return -1;
}

/* Adds a final address (a duplicate is dropped). 0, or -1 over the
 * limit. */
static int
va_final(struct va_walk *w, const char *addr, const char *key)
{
	struct virtual_alias_expansion *x = w->x;

	if (hash_get(w->final, key) != NULL)
		return 0;
	if (x->naddr >= var_virtual_alias_expansion_limit)
		return va_fail(w, VIRTUAL_ALIAS_TOO_MANY,
		    "it expands into more than %lld addresses "
		    "(virtual_alias_expansion_limit)",
		    var_virtual_alias_expansion_limit);
	if (x->naddr == w->addr_alloc) {
		w->addr_alloc = w->addr_alloc ? 2 * w->addr_alloc : 8;
		x->addrs = xrealloc(
		    x->addrs, (size_t)w->addr_alloc * sizeof(*x->addrs));
	}
	x->addrs[x->naddr++] = xstrdup(addr);
	hash_put(w->final, key, &va_mark);
	return 0;
}

/* 1 if token (from a table value) may be a virtual alias target. */
static int
va_target_ok(const char *t)
{
	char *local, *domain;
	const char *p;
	int ok;

	if (*t == '\0' || *t == '|' || *t == '/' ||
	    strncmp(t, VA_INCLUDE, strlen(VA_INCLUDE)) == 0 ||
	    strlen(t) > ADDR_PATH_MAX || !str_utf8_valid(t, strlen(t)))
		return 0;
	for (p = t; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return 0;
	if (addr_split(t, &local, &domain) < 0)
		return 0;
	ok = domain == NULL || addr_domain_valid(domain);
	free(local);
	free(domain);
	return ok;
}

/*
 * Splits a table value into addresses: separated by commas or white
 * space outside double quotes, "<...>" brackets removed, an unqualified
 * address given @$myorigin. -1 (x->detail set) for a value that holds
 * anything but addresses.
 */
static int
va_targets(struct va_walk *w, const char *from, const char *value,
    const struct map *m, struct va_frame *f)
{
	const char *p = value, *start;
	size_t alloc = 0, len;
	char *t, *local = NULL, *domain = NULL;
	int quoted;

	for (;;) {
		p += strspn(p, ", \t\r\n");
		if (*p == '\0')
			return 0;
		for (start = p, quoted = 0;
		     *p != '\0' && (quoted || strchr(", \t\r\n", *p) == NULL);
		     p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '\\' && quoted && p[1] != '\0')
				p++;
		}
		len = (size_t)(p - start);
		if (len >= 2 && start[0] == '<' && start[len - 1] == '>') {
			start++;
			len -= 2;
		}
		t = xstrndup(start, len);
		if (!va_target_ok(t)) {
			va_fail(w, VIRTUAL_ALIAS_BAD,
			    "%s maps <%s> to \"%s\", which is not an address "
			    "(virtual aliases are addresses only)",
			    map_spec(m), from, log_sanitize(t, VA_LOG_MAX));
			free(t);
			return -1;
		}
		/* Checked by va_target_ok: it splits. */
		if (addr_split(t, &local, &domain) == 0 && domain == NULL) {
			free(t);
			t = xasprintf("%s@%s", local,
			    *var_myorigin != '\0' ? var_myorigin
			                          : var_myhostname);
		}
		free(local);
		free(domain);
		if (f->n == alloc) {
			alloc = alloc ? 2 * alloc : 4;
			f->targets =
			    xrealloc(f->targets, alloc * sizeof(char *));
		}
		f->targets[f->n++] = t;
	}
}

static void
va_frame_free(struct va_frame *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->targets[i]);
	free(f->targets);
	free(f->key);
}

/*
 * addr has an entry (value, from m): push its frame. A target that is
 * the address itself is final at once, whatever its position among the
 * targets, so that "a -> b, a" with "b -> a" ends as Postfix ends it.
 */
static int
va_push(struct va_walk *w, const char *addr, char *key, const char *value,
    const struct map *m)
{
	struct va_frame *f;
	char *tkey;
	size_t i;

	if (w->depth >= (size_t)var_virtual_alias_recursion_limit) {
		free(key);
		return va_fail(w, VIRTUAL_ALIAS_LOOP,
		    "nesting deeper than %lld at <%s> "
		    "(virtual_alias_recursion_limit)",
		    var_virtual_alias_recursion_limit, addr);
	}
	if (w->depth == w->alloc) {
		w->alloc = w->alloc ? 2 * w->alloc : 8;
		w->stack = xrealloc(w->stack, w->alloc * sizeof(*w->stack));
	}
	f = &w->stack[w->depth++];
	memset(f, 0, sizeof(*f));
	f->key = key;
	hash_put(w->path, key, &va_mark);
	if (va_targets(w, addr, value, m, f) < 0)
		return -1;
	for (i = 0; i < f->n; i++) {
		tkey = addr_fold(f->targets[i]);
		if (strcmp(tkey, key) == 0 &&
		    va_final(w, f->targets[i], tkey) < 0) {
			free(tkey);
			return -1;
		}
		free(tkey);
	}
	return 0;
}

/* Takes the next target of the top frame. 0, or -1 when x failed. */
static int
va_step(struct va_walk *w)
{
	struct va_frame *f = &w->stack[w->depth - 1];
	const struct map *m;
	const char *t, *err;
	char *key, *value;
	int r;

	if (f->next == f->n) {
		hash_del(w->path, f->key);
		hash_put(w->done, f->key, &va_mark);
		va_frame_free(f);
		w->depth--;
		return 0;
	}
	t = f->targets[f->next++];
	key = addr_fold(t);
	/* Final already (a duplicate, or an address that maps to itself),
	 * expanded already, or being expanded (a cycle): whatever it
	 * leads to is in the result or on its way there. */
	if (hash_get(w->path, key) != NULL)
		w->cycled = 1;
	if (hash_get(w->final, key) != NULL || hash_get(w->done, key) != NULL ||
	    hash_get(w->path, key) != NULL) {
		free(key);
		return 0;
	}
	r = va_lookup(&vt.alias, t, &value, &m, &err);
	if (r < 0) {
		free(key);
		return va_fail(w, VIRTUAL_ALIAS_TEMPFAIL, "%s", err);
	}
	if (r == 0) {
		r = va_final(w, t, key);
		free(key);
		return r;
	}
	r = va_push(w, t, key, value, m);
	free(value);
	return r;
}

void
virtual_alias_expand(const char *addr, struct virtual_alias_expansion *x)
{
	struct va_walk w;
	const struct map *m;
	const char *err;
	char *value;
	int r, i;

	memset(x, 0, sizeof(*x));
	memset(&w, 0, sizeof(w));
	w.x = x;
	va_ensure();
	r = vt.alias.n > 0 ? va_lookup(&vt.alias, addr, &value, &m, &err) : 0;
	if (r < 0) {
		va_fail(&w, VIRTUAL_ALIAS_TEMPFAIL, "%s", err);
		return;
	}
	if (r == 0) {
		x->addrs = xcalloc(1, sizeof(*x->addrs));
		x->addrs[0] = xstrdup(addr);
		x->naddr = 1;
		return;
	}
	x->aliased = 1;
	w.path = hash_create();
	w.done = hash_create();
	w.final = hash_create();
	r = va_push(&w, addr, addr_fold(addr), value, m);
	free(value);
	while (r == 0 && w.depth > 0)
		r = va_step(&w);
	if (r == 0 && x->naddr == 0)
		r = w.cycled ? va_fail(&w, VIRTUAL_ALIAS_LOOP,
		                   "a loop: every address it expands into "
		                   "leads back to it")
		             : va_fail(&w, VIRTUAL_ALIAS_BAD,
		                   "the table maps it to no address");
	while (w.depth > 0)
		va_frame_free(&w.stack[--w.depth]);
	free(w.stack);
	hash_free(&w.path, NULL);
	hash_free(&w.done, NULL);
	hash_free(&w.final, NULL);
	if (r < 0) {
		/* A partial list must not be used by mistake. */
		for (i = 0; i < x->naddr; i++)
			free(x->addrs[i]);
		free(x->addrs);
		x->addrs = NULL;
		x->naddr = 0;
	}
}

void
virtual_alias_expansion_free(struct virtual_alias_expansion *x)
{
	int i;

	for (i = 0; i < x->naddr; i++)
		free(x->addrs[i]);
	free(x->addrs);
	free(x->detail);
	memset(x, 0, sizeof(*x));
}

char *
virtual_alias_reply(const char *addr, const struct virtual_alias_expansion *x)
{
	switch (x->status) {
	case VIRTUAL_ALIAS_TEMPFAIL:
		return xasprintf(
		    "451 4.3.0 <%s>: Temporary lookup failure", addr);
	case VIRTUAL_ALIAS_LOOP:
		/* RFC 3463 X.4.6: routing loop detected. */
		return xasprintf("550 5.4.6 <%s>: Recipient address rejected: "
		                 "Virtual alias loop",
		    addr);
	case VIRTUAL_ALIAS_TOO_MANY:
		return xasprintf("550 5.5.3 <%s>: Recipient address rejected: "
		                 "Virtual alias expands to too many recipients",
		    addr);
	case VIRTUAL_ALIAS_BAD:
		return xasprintf("550 5.1.3 <%s>: Recipient address rejected: "
		                 "Virtual alias table gives a bad destination "
		                 "address",
		    addr);
	case VIRTUAL_ALIAS_OK:
		break;
	}
	msg_panic("virtual_alias_reply: status %d", (int)x->status);
}

/* ---- virtual_mailbox_maps ---- */

/* A maildir path relative to the store: "a/b/", no ".", "..", "//". */
static int
va_mailbox_ok(const char *v, const char **why_r)
{
	const char *p, *c;
	size_t len = strlen(v), n;

	if (len == 0 || len > VA_MAILBOX_MAX) {
		*why_r = "empty or too long";
		return 0;
	}
	if (v[0] == '/') {
		*why_r = "an absolute path (it must be relative to "
		         "virtual_mailbox_base)";
		return 0;
	}
	if (v[len - 1] != '/') {
		*why_r = "not a maildir (a maildir ends in /; mbox is not "
		         "supported)";
		return 0;
	}
	for (p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < ' ' || *p == 0x7f) {
			*why_r = "a control character";
			return 0;
		}
	}
	for (c = v; *c != '\0'; c += n + 1) {
		n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.')) {
			*why_r = "an empty, . or .. path component";
			return 0;
		}
	}
	return 1;
}

int
virtual_mailbox_find(const char *addr, char **maildir_r, char **top_r,
    int *tempfail_r, const char **error_r)
{
	const struct map *m;
	const char *err, *why, *at;
	char *key = addr_fold(addr), *value = NULL, *v, *base;
	size_t first;
	int r;

	*tempfail_r = 0;
	va_ensure();
	r = va_find(&vt.mailbox, key, 0, &value, &m, &err);
	/* user+ext@domain: user@domain's mailbox, before the catch-all. */
	if (r == 0 && (base = addr_strip_extension(key)) != NULL) {
		r = va_find(&vt.mailbox, base, 0, &value, &m, &err);
		free(base);
	}
	if (r == 0 && (at = strrchr(key, '@')) != NULL)
		r = va_find(&vt.mailbox, at, 1, &value, &m, &err);
	free(key);
	if (r < 0) {
		*tempfail_r = 1;
		*error_r = err;
		return -1;
	}
	if (r == 0)
		return 0;
	v = str_trim(value);
	if (!va_mailbox_ok(v, &why)) {
		snprintf(va_error, sizeof(va_error),
		    "%s: mailbox \"%s\" of <%s> is %s", map_spec(m),
		    log_sanitize(v, VA_LOG_MAX), addr, why);
		*error_r = va_error;
		free(value);
		return -1;
	}
	*maildir_r = xasprintf("%s/%s", var_virtual_mailbox_base, v);
	/* One component: the maildir is right below the base. */
	first = strcspn(v, "/");
	if (v[first + 1] == '\0')
		*top_r = xstrdup(var_virtual_mailbox_base);
	else
		*top_r = xasprintf(
		    "%s/%.*s", var_virtual_mailbox_base, (int)first, v);
	free(value);
	return 1;
}
