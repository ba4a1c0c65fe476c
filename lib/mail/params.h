/* SPDX-License-Identifier: MIT */
/*
 * The parameter table and the configuration loader. params.def generates
 * one global var_<name> per parameter, the table behind ternconf, and the
 * range checks. tern.conf syntax: "name = value" lines, '#' comments,
 * lines starting with white space continue the previous line, $name and
 * ${name} expand (recursively, loops are errors).
 */
#ifndef TERN_PARAMS_H
#define TERN_PARAMS_H

#include <stddef.h>
#include <sys/types.h>

enum param_type { PARAM_STR, PARAM_INT, PARAM_BOOL, PARAM_TIME, PARAM_SIZE };

#define PARAM_CTYPE_STR	 char *
#define PARAM_CTYPE_INT	 long long
#define PARAM_CTYPE_BOOL int
#define PARAM_CTYPE_TIME long long
#define PARAM_CTYPE_SIZE long long

#define PARAM(type, name, def, min, max, doc) \
	extern PARAM_CTYPE_##type var_##name;
#include "mail/params.def"
#undef PARAM

struct param_def {
	enum param_type type;
	const char *name;
	const char *defval;	/* unexpanded, as in params.def */
	long long min, max;
	const char *doc;
	void *var;		/* &var_<name> */
};

extern const struct param_def param_table[];
extern const size_t param_count;

const struct param_def *param_find(const char *name);

/*
 * Sets a value that wins over tern.conf (master's -o name=value, tern -c).
 * Call before config_load. Copies both strings.
 */
void config_override(const char *name, const char *value);
/*
 * Reads CONFIG_DIR/tern.conf (a missing file means all defaults), applies
 * overrides, expands, converts and range-checks every parameter, and fills
 * the var_<name> globals; var_config_directory = config_dir. Unknown names
 * are logged with msg_warn. Returns 0, or -1 with *error_r like
 * "/etc/tern/tern.conf:12: smtpd_timeout: bad time value 'x'"
 * (static storage, valid until the next call). May be called again
 * (reload); previous string values are freed.
 */
int config_load(const char *config_dir, const char **error_r);
/*
 * The configuration directory of a command run without -c: $TERN_CONFIG
 * when set and not empty, else the compiled-in TERN_CONFIG_DIR. Every
 * command finds its instance this way (-c DIR wins over both). A setgid
 * program must still decide whether to trust what this returns
 * (config_dir_trusted).
 */
#define CONFIG_DIR_ENV "TERN_CONFIG"
const char *config_dir_default(void);
/*
 * 1 if a setgid program run by real uid `uid` may use config_dir: uid 0,
 * the compiled-in directory, or a directory that is owned by root and not
 * writable by group or others and whose tern.conf (if any) is the same.
 * Anything else would let a user choose the limits and checks the
 * program enforces on them.
 */
int config_dir_trusted(const char *config_dir, uid_t uid);
/* The expanded value of any parameter as text, NULL if unknown. */
const char *config_value(const char *name);
/* 1 if name was set in tern.conf or by override. */
int config_is_set(const char *name);
/* Raw (unexpanded) text from tern.conf, NULL if not set there. */
const char *config_raw(const char *name);
/* Names set in tern.conf that are not parameters (for tern check). */
typedef void config_name_cb(const char *name, const char *value, void *ctx);
void config_foreach_unknown(config_name_cb *cb, void *ctx);
/* Expands $name / ${name} in s using current values; caller frees. */
char *config_expand(const char *s, const char **error_r);
/*
 * Sets name = value in CONFIG_DIR/tern.conf, replacing an existing line or
 * appending one; rewrites the file atomically (file_write_atomic).
 */
int config_edit(const char *config_dir, const char *name, const char *value,
    const char **error_r);
/*
 * Takes every entry that sets name (with its continuation lines) out of
 * CONFIG_DIR/tern.conf (ternconf -X), or comments it out with '#' at the
 * start of each of its lines (comment_out, ternconf -#); the file is
 * rewritten as config_edit() does, and left alone when name is not set.
 * 1 when an entry was there, 0 when not, -1 with *error_r set.
 */
int config_unset(const char *config_dir, const char *name, int comment_out,
    const char **error_r);
/*
 * Splits a list value ("a, b c") into a NULL-terminated array of copies;
 * a brace group ("inline:{ a=b, c=d }") stays one word. Free with
 * config_list_free.
 */
char **config_list(const char *value);
void config_list_free(char **list);

#endif
