/* SPDX-License-Identifier: MIT */
/*
 * The lookup-table front: parses "type:name", hands the work to the
 * type's ops (map_hash.c, map_pcre.c, map_cidr.c, map_inline.c), and
 * keeps file tables current: at most once per MAP_RECHECK_MS (on the
 * monotonic clock, so a clock step changes nothing) a lookup stats the
 * file, and when its identity (device, inode, size, mtime) differs from
 * what was loaded the table is loaded again. A new version that fails to
 * load is logged once and the old contents stay in use, so a typo in a
 * table never takes a daemon's policy away. Postfix's dict_open() and
 * its dict_*_lookup() "table changed" checks are the model. No RFCs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/log.h"
#include "map/map.h"
#include "map/map_int.h"

#define MAP_NS_PER_MS 1000000
#define MAP_MS_PER_S  1000

struct map {
	char *spec;
	const struct map_ops *ops;
	char *name; /* after "type:" */
	char *path; /* the file to watch (name + suffix), file tables */
	void *data;
	struct map_file_id id;        /* version loaded */
	struct map_file_id failed_id; /* version that failed to load */
	int have_failed;
	int64_t last_check_ms;
	int check_now;
	struct buf value;
	char error[MAP_ERROR_MAX];
};

static const struct map_ops *const map_types[] = {
    &map_hash_ops,
    &map_pcre_ops,
    &map_cidr_ops,
    &map_inline_ops,
    &map_static_ops,
};

static int64_t
map_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		msg_panic("clock_gettime(CLOCK_MONOTONIC): %m");
	return (int64_t)ts.tv_sec * MAP_MS_PER_S + ts.tv_nsec / MAP_NS_PER_MS;
}

struct map *
map_open(const char *spec, char **error_r)
{
	const struct map_ops *ops = NULL;
	const char *colon;
	struct map *m;
	size_t i, tlen;

	if ((colon = strchr(spec, ':')) == NULL) {
		*error_r = xasprintf("%s: expected type:name", spec);
		return NULL;
	}
	tlen = (size_t)(colon - spec);
	for (i = 0; i < sizeof(map_types) / sizeof(map_types[0]); i++)
		if (strlen(map_types[i]->type) == tlen &&
		    strncmp(map_types[i]->type, spec, tlen) == 0)
			ops = map_types[i];
	if (ops == NULL) {
		*error_r = xasprintf("%s: unknown table type \"%.*s\" "
		                     "(hash, pcre, cidr, inline, static)",
		    spec, (int)tlen, spec);
		return NULL;
	}
	if (ops->file && colon[1] == '\0') {
		*error_r = xasprintf("%s: no file name", spec);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->spec = xstrdup(spec);
	m->ops = ops;
	m->name = xstrdup(colon + 1);
	if (ops->file)
		m->path = xasprintf("%s%s", m->name, ops->suffix);
	buf_init(&m->value, MAP_VALUE_MAX);
	if ((m->data = ops->load(m->name, &m->id, error_r)) == NULL) {
		map_free(&m);
		return NULL;
	}
	m->last_check_ms = map_now_ms();
	return m;
}

void
map_free(struct map **m_r)
{
	struct map *m = *m_r;

	if (m == NULL)
		return;
	if (m->data != NULL)
		m->ops->free(m->data);
	buf_free(&m->value);
	free(m->spec);
	free(m->name);
	free(m->path);
	free(m);
	*m_r = NULL;
}

/*
 * The stat-and-reload step. The identity compared is that of the file
 * the load itself read, so a replacement between stat and load is seen
 * at the next check.
 */
static void
map_recheck(struct map *m)
{
	struct map_file_id cur, loaded;
	struct stat st;
	char *err;
	void *data;

	if (stat(m->path, &st) < 0) {
		/* Gone or unreadable: keep what we have, say so once. */
		memset(&cur, 0, sizeof(cur));
		cur.ino = (ino_t)errno;
		if (!m->have_failed || !map_file_id_eq(&cur, &m->failed_id))
			msg_warn("%s: stat %s: %s; keeping the table loaded "
			         "before",
			    m->spec, m->path, strerror(errno));
		m->failed_id = cur;
		m->have_failed = 1;
		return;
	}
	map_file_id_set(&cur, &st);
	if (map_file_id_eq(&cur, &m->id))
		return;
	if (m->have_failed && map_file_id_eq(&cur, &m->failed_id))
		return;
	if ((data = m->ops->load(m->name, &loaded, &err)) == NULL) {
		msg_warn(
		    "%s: keeping the table loaded before: %s", m->spec, err);
		free(err);
		m->failed_id = cur;
		m->have_failed = 1;
		return;
	}
	m->ops->free(m->data);
	m->data = data;
	m->id = loaded;
	m->have_failed = 0;
	msg_info("%s: reloaded %s", m->spec, m->path);
}

int
map_lookup(
    struct map *m, const char *key, const char **value_r, const char **error_r)
{
	int64_t now;
	int ret;

	if (m->ops->file) {
		now = map_now_ms();
		if (m->check_now || now - m->last_check_ms >= MAP_RECHECK_MS) {
			m->check_now = 0;
			m->last_check_ms = now;
			map_recheck(m);
		}
	}
	buf_reset(&m->value);
	m->error[0] = '\0';
	ret = m->ops->lookup(m->data, key, &m->value, m->error);
	if (ret > 0)
		*value_r = buf_cstr(&m->value);
	else if (ret < 0)
		*error_r = m->error;
	return ret;
}

const char *
map_spec(const struct map *m)
{
	return m->spec;
}

int
map_is_pattern(const struct map *m)
{
	return m->ops->pattern;
}

void
map_recheck_now(struct map *m)
{
	m->check_now = 1;
}
