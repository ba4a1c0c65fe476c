/* SPDX-License-Identifier: MIT */
/*
 * master's children: one process per maxproc slot of every service in
 * services.conf, started up front (prefork). The event-driven daemons
 * (smtpd, qmgr) serve many sessions in each process, so maxproc counts
 * processes, not sessions. A child is exec'd with the lifeline pipe on
 * fd 3 and its service's sockets from fd 4 (lib/mail/server.h); it drops
 * its own privileges in server_main(). A dead child is restarted at once
 * if it ran for a while or exited 0 from a service with $max_use or
 * $max_idle (a planned retirement), else after a delay that doubles up to
 * $service_throttle_time, so a daemon that cannot start does not spin.
 * SIGHUP reloads tern.conf and services.conf and restarts only what
 * changed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/server.h"
#include "mail/services.h"
#include "master.h"

#define MASTER_CONF_MAX      (1024 * 1024)
/* Program, -c DIR, -n NAME, -U USER, -R DIR, -v, NULL around the args. */
#define MASTER_ARGV_EXTRA    12
#define MASTER_SERVICES_FILE "services.conf"
#define MASTER_CONF_FILE     "tern.conf"
#define MASTER_LISTEN_ENV    "TERN_LISTEN_FDS"
/* The secret every smtpd process derives its TLS ticket keys from. */
#define MASTER_TICKET_ENV    "TERN_TLS_TICKET_SECRET" /* lib/tls TLS_TICKET_ENV */
#define MASTER_TICKET_BYTES  32

static struct master_service *master_services;
/* tern.conf as last loaded: a reload that changes it restarts everything. */
static char *master_conf_text;

static char *
master_conf_read(void)
{
	char *path = xasprintf("%s/%s", master_config_dir, MASTER_CONF_FILE);
	const char *err;
	struct buf b;

	buf_init(&b, MASTER_CONF_MAX);
	if (file_read_all(path, MASTER_CONF_MAX, &b, &err) < 0)
		buf_reset(&b); /* missing: all defaults, same as config_load */
	free(path);
	return buf_steal(&b);
}

static void
master_def_copy(struct service_def *dst, const struct service_def *src)
{
	int i;

	*dst = *src;
	dst->name = xstrdup(src->name);
	dst->user = src->user != NULL ? xstrdup(src->user) : NULL;
	dst->chroot_dir =
	    src->chroot_dir != NULL ? xstrdup(src->chroot_dir) : NULL;
	dst->line = xstrdup(src->line);
	dst->argv = xcalloc((size_t)src->argc + 1, sizeof(*dst->argv));
	for (i = 0; i < src->argc; i++)
		dst->argv[i] = xstrdup(src->argv[i]);
}

static void
master_def_clear(struct service_def *def)
{
	int i;

	for (i = 0; i < def->argc; i++)
		free(def->argv[i]);
	free(def->argv);
	free(def->name);
	free(def->user);
	free(def->chroot_dir);
	free(def->line);
	memset(def, 0, sizeof(*def));
}

static void
master_service_set_def(struct master_service *sv, const struct service_def *def)
{
	master_def_clear(&sv->def);
	free(sv->path);
	master_def_copy(&sv->def, def);
	sv->path = def->argv[0][0] == '/'
	               ? xstrdup(def->argv[0])
	               : xasprintf("%s/%s", var_daemon_directory, def->argv[0]);
}

static void
master_service_close(struct master_service *sv)
{
	int i;

	for (i = 0; i < sv->nlisteners; i++)
		master_listener_free(&sv->listeners[i]);
	free(sv->listeners);
	sv->listeners = NULL;
	sv->nlisteners = 0;
}

/*
 * The daemon's environment: only what $import_environment names (NAME
 * copies ours when set, NAME=value sets it), as Postfix does, then entry
 * ("TERN_LISTEN_FDS=n"). Nothing else master inherited (LD_*, a shell's
 * secrets, locale surprises) reaches a daemon. Free with
 * master_child_env_free().
 */
/*
 * TLS session tickets must be accepted by any process of a service, so
 * they share keys derived from one secret, made fresh at each master
 * start (a restart ends resumption, as Postfix's tlsmgr would). It goes
 * to daemons in their environment, which only the same uid and root can
 * read: the same who could read it from the daemons' memory.
 */
static const char *
master_ticket_env(void)
{
	static char
	    env[sizeof(MASTER_TICKET_ENV) + 2 * MASTER_TICKET_BYTES + 1];
	unsigned char secret[MASTER_TICKET_BYTES];
	size_t i, off;

	if (env[0] != '\0')
		return env;
	if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret))
		msg_fatal("getrandom: %m");
	off = (size_t)snprintf(env, sizeof(env), "%s=", MASTER_TICKET_ENV);
	for (i = 0; i < sizeof(secret); i++)
		off += (size_t)snprintf(
		    env + off, sizeof(env) - off, "%02x", secret[i]);
	explicit_bzero(secret, sizeof(secret));
	return env;
}

static char **
master_child_env(char *entry)
{
	char **names = config_list(var_import_environment), **envp;
	const char *value;
	size_t count = 0, i, j = 0;

	while (names[count] != NULL)
		count++;
	envp = xcalloc(count + 3, sizeof(*envp));
	for (i = 0; i < count; i++) {
		if (strchr(names[i], '=') != NULL)
			envp[j++] = xstrdup(names[i]);
		else if (strcmp(names[i], MASTER_LISTEN_ENV) != 0 &&
		         strcmp(names[i], MASTER_TICKET_ENV) != 0 &&
		         (value = getenv(names[i])) != NULL)
			envp[j++] = xasprintf("%s=%s", names[i], value);
	}
	envp[j++] = xstrdup(master_ticket_env());
	envp[j] = xstrdup(entry);
	config_list_free(names);
	return envp;
}

static void
master_child_env_free(char **envp)
{
	size_t i;

	for (i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

static char **
master_child_argv(const struct master_service *sv)
{
	char **argv =
	    xcalloc((size_t)sv->def.argc + MASTER_ARGV_EXTRA, sizeof(*argv));
	int argc = 0, i;

	argv[argc++] = sv->path;
	argv[argc++] = "-c";
	argv[argc++] = (char *)master_config_dir;
	argv[argc++] = "-n";
	argv[argc++] = sv->def.name;
	if (sv->def.user != NULL) {
		argv[argc++] = "-U";
		argv[argc++] = sv->def.user;
	} else if (sv->def.unpriv)
		argv[argc++] = "-u";
	if (sv->def.chroot_dir != NULL) {
		argv[argc++] = "-R";
		argv[argc++] = sv->def.chroot_dir;
	} else if (sv->def.chroot)
		argv[argc++] = "-r";
	if (var_debug_level > 0)
		argv[argc++] = "-v";
	for (i = 1; i < sv->def.argc; i++)
		argv[argc++] = sv->def.argv[i];
	return argv;
}

/*
 * Starts the daemon with fd 3 = lifeline, fd 4.. = listeners, nothing else
 * above (fds 0-2 are inherited, 2 being the log). posix_spawn rather than
 * fork: the child shares our memory until exec, which keeps restarting a
 * whole service cheap even in a large (sanitizer) process. Returns 0 or
 * an errno value, exec failures included.
 */
static int
master_spawn(const struct master_service *sv, pid_t *pid_r)
{
	int n = sv->nlisteners, top = SERVER_LISTEN_FD0 + n, i, err = 0;
	int *src = xcalloc((size_t)n + 1, sizeof(*src));
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t set;
	char **argv, **envp, *listen_env;

	/* Copies above the target range, so that no dup2 clobbers a source. */
	for (i = 0; i <= n; i++) {
		src[i] =
		    fcntl(i < n ? sv->listeners[i]->fd : master_lifeline_rd,
		        F_DUPFD_CLOEXEC, top);
		if (src[i] < 0 && err == 0)
			err = errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	for (i = 0; err == 0 && i <= n; i++)
		err = posix_spawn_file_actions_adddup2(&fa, src[i],
		    i < n ? SERVER_LISTEN_FD0 + i : SERVER_LIFELINE_FD);
	if (err == 0)
		err = posix_spawn_file_actions_addclosefrom_np(&fa, top);
	/* Our signals arrive through signalfd, so they are blocked here. */
	sigemptyset(&set);
	if (err == 0)
		err = posix_spawnattr_setsigmask(&attr, &set);
	/* And no disposition master inherited (nohup, "&") may stick. */
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(&attr, &set);
	if (err == 0)
		err = posix_spawnattr_setflags(
		    &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (err == 0) {
		listen_env = xasprintf("%s=%d", MASTER_LISTEN_ENV, n);
		argv = master_child_argv(sv);
		envp = master_child_env(listen_env);
		err = posix_spawn(pid_r, sv->path, &fa, &attr, argv, envp);
		master_child_env_free(envp);
		free(argv);
		free(listen_env);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	for (i = 0; i <= n; i++)
		if (src[i] >= 0)
			close(src[i]);
	free(src);
	return err;
}

static void master_slot_timer(struct event_timer *t, void *ctx);

/* Schedules the next start after the current delay, then doubles it. */
static uint64_t
master_slot_delay(struct master_slot *s)
{
	uint64_t delay = s->backoff_ms;
	uint64_t throttle_ms = (uint64_t)var_service_throttle_time * 1000;

	s->timer = event_timer_add(master_loop, delay, master_slot_timer, s);
	s->backoff_ms = delay * 2 < throttle_ms ? delay * 2 : throttle_ms;
	return delay;
}

static void
master_slot_start(struct master_slot *s)
{
	pid_t pid;
	int err;

	event_timer_del(&s->timer);
	s->terminating = 0;
	s->start_ms = event_now_ms(master_loop);
	if ((err = master_spawn(s->serv, &pid)) != 0) {
		msg_error("service %s: cannot start %s: %s -- retrying in "
		          "%llu s",
		    s->serv->def.name, s->serv->path, strerror(err),
		    (unsigned long long)(s->backoff_ms / 1000));
		master_slot_delay(s);
		return;
	}
	s->pid = pid;
	msg_debug("service %s: started %s pid %ld", s->serv->def.name,
	    s->serv->path, (long)pid);
}

static void
master_slot_terminate(struct master_slot *s)
{
	event_timer_del(&s->timer);
	if (s->pid <= 0)
		return;
	s->terminating = 1;
	if (kill(s->pid, SIGTERM) < 0 && errno != ESRCH)
		msg_warn("kill %ld: %m", (long)s->pid);
	s->timer = event_timer_add(
	    master_loop, MASTER_KILL_DELAY_MS, master_slot_timer, s);
}

/* A delayed start is due, or a child ignored SIGTERM for too long. */
static void
master_slot_timer(struct event_timer *t, void *ctx)
{
	struct master_slot *s = ctx;

	event_timer_del(&t);
	s->timer = NULL;
	if (s->pid == 0) {
		master_slot_start(s);
		return;
	}
	msg_warn("process %s pid %ld did not stop after SIGTERM: killing it",
	    s->serv->path, (long)s->pid);
	kill(s->pid, SIGKILL);
}

static struct master_slot *
master_slot_new(struct master_service *sv)
{
	struct master_slot *s = xcalloc(1, sizeof(*s));

	s->serv = sv;
	s->backoff_ms = MASTER_BACKOFF_START_MS;
	sv->slots =
	    xrealloc(sv->slots, (size_t)(sv->nslots + 1) * sizeof(*sv->slots));
	sv->slots[sv->nslots++] = s;
	return s;
}

static void
master_service_free(struct master_service **sv_r)
{
	struct master_service *sv = *sv_r, **pp;
	int i;

	for (pp = &master_services; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == sv) {
			*pp = sv->next;
			break;
		}
	}
	for (i = 0; i < sv->nslots; i++) {
		event_timer_del(&sv->slots[i]->timer);
		free(sv->slots[i]);
	}
	free(sv->slots);
	master_service_close(sv);
	master_def_clear(&sv->def);
	free(sv->path);
	free(sv);
	*sv_r = NULL;
}

static int
master_service_live(const struct master_service *sv)
{
	int i, n = 0;

	for (i = 0; i < sv->nslots; i++)
		n += sv->slots[i]->pid > 0;
	return n;
}

/* Removes slot i (not running); frees a removed service left empty. */
static void
master_slot_remove(struct master_service *sv, int i)
{
	event_timer_del(&sv->slots[i]->timer);
	free(sv->slots[i]);
	memmove(&sv->slots[i], &sv->slots[i + 1],
	    (size_t)(sv->nslots - i - 1) * sizeof(*sv->slots));
	sv->nslots--;
	if (sv->removed && master_service_live(sv) == 0)
		master_service_free(&sv);
}

static struct master_service *
master_service_new(const struct service_def *def)
{
	struct master_service *sv = xcalloc(1, sizeof(*sv)), **pp;

	master_service_set_def(sv, def);
	for (pp = &master_services; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = sv; /* keep services.conf order */
	return sv;
}

int
master_services_init(struct service_def *defs, int count, const char **error_r)
{
	struct master_service *sv;
	int i;

	master_conf_text = master_conf_read();
	for (i = 0; i < count; i++) {
		sv = master_service_new(&defs[i]);
		if (master_listen_open(&defs[i], NULL, 0, &sv->listeners,
		        &sv->nlisteners, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Brings the number of slots to maxproc and starts the idle ones. */
static void
master_service_fill(struct master_service *sv)
{
	int i;

	while (sv->nslots < sv->def.maxproc)
		master_slot_new(sv);
	for (i = sv->nslots - 1; i >= sv->def.maxproc; i--) {
		if (sv->slots[i]->pid > 0)
			master_slot_terminate(sv->slots[i]);
		else
			master_slot_remove(sv, i);
	}
	for (i = 0; i < sv->nslots; i++)
		if (sv->slots[i]->pid == 0 && sv->slots[i]->timer == NULL)
			master_slot_start(sv->slots[i]);
}

void
master_services_spawn(void)
{
	struct master_service *sv;

	for (sv = master_services; sv != NULL; sv = sv->next)
		master_service_fill(sv);
}

/* The value of -o name=VALUE in the service's arguments, or NULL. */
static const char *
master_service_option(const struct master_service *sv, const char *name)
{
	size_t n = strlen(name);
	const char *value = NULL;
	int i;

	/* The last one wins, as in the daemon's own option loop. */
	for (i = 1; i + 1 < sv->def.argc; i++)
		if (strcmp(sv->def.argv[i], "-o") == 0 &&
		    strncmp(sv->def.argv[i + 1], name, n) == 0 &&
		    sv->def.argv[i + 1][n] == '=')
			value = sv->def.argv[i + 1] + n + 1;
	return value;
}

/*
 * 1 if the service's processes end by themselves after $max_use
 * connections or $max_idle idle time (tern.conf, or -o for the service):
 * their exit 0 is planned, so they are replaced at once. Anything else
 * that exits young, exit 0 included, is throttled as a failure.
 */
static int
master_service_retires(const struct master_service *sv)
{
	const char *names[] = {"max_use", "max_idle"};
	const long long globals[] = {var_max_use, var_max_idle};
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* A number, a time with a unit: nonzero if a digit 1-9
		 * comes before anything else. */
		if ((v = master_service_option(sv, names[i])) != NULL) {
			v += strspn(v, "0");
			if (*v >= '1' && *v <= '9')
				return 1;
		} else if (globals[i] > 0)
			return 1;
	}
	return 0;
}

static void
master_slot_exited(struct master_service *sv, int i, int status)
{
	struct master_slot *s = sv->slots[i];
	uint64_t ran = event_now_ms(master_loop) - s->start_ms;

	if (WIFSIGNALED(status) &&
	    !(s->terminating && WTERMSIG(status) == SIGTERM))
		msg_warn("process %s pid %ld killed by signal %d", sv->path,
		    (long)s->pid, WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		msg_warn("process %s pid %ld exit status %d", sv->path,
		    (long)s->pid, WEXITSTATUS(status));
	else
		msg_debug("process %s pid %ld exited", sv->path, (long)s->pid);
	event_timer_del(&s->timer);
	s->pid = 0;
	if (master_stopping) {
		if (master_services_nchildren() == 0)
			event_loop_stop(master_loop);
		return;
	}
	if (sv->removed || i >= sv->def.maxproc) {
		master_slot_remove(sv, i);
		return;
	}
	/* Exit 0 unasked from a service that retires its processes
	 * ($max_use, $max_idle): a planned end, not a crash. */
	if (s->terminating || ran >= MASTER_HEALTHY_RUN_MS ||
	    (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	        master_service_retires(sv))) {
		if (!s->terminating)
			s->backoff_ms = MASTER_BACKOFF_START_MS;
		master_slot_start(s);
		return;
	}
	msg_warn("%s: process died after %llu ms -- throttling restarts for "
	         "%llu s",
	    sv->path, (unsigned long long)ran,
	    (unsigned long long)(master_slot_delay(s) / 1000));
}

void
master_services_reap(void)
{
	struct master_service *sv;
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (sv = master_services; sv != NULL; sv = sv->next)
			for (i = 0; i < sv->nslots; i++)
				if (sv->slots[i]->pid == pid)
					goto found;
		continue;
found:
		master_slot_exited(sv, i, status);
	}
}

int
master_services_nchildren(void)
{
	struct master_service *sv;
	int n = 0;

	for (sv = master_services; sv != NULL; sv = sv->next)
		n += master_service_live(sv);
	return n;
}

void
master_services_stop(void)
{
	struct master_service *sv;
	int i;

	for (sv = master_services; sv != NULL; sv = sv->next)
		for (i = 0; i < sv->nslots; i++)
			master_slot_terminate(sv->slots[i]);
}

void
master_services_kill(void)
{
	struct master_service *sv;
	int i;

	for (sv = master_services; sv != NULL; sv = sv->next)
		for (i = 0; i < sv->nslots; i++)
			if (sv->slots[i]->pid > 0)
				kill(sv->slots[i]->pid, SIGKILL);
}

void
master_services_free(void)
{
	struct master_service *sv;

	while ((sv = master_services) != NULL)
		master_service_free(&sv);
	free(master_conf_text);
	master_conf_text = NULL;
}

static struct master_service *
master_service_find(const char *name)
{
	struct master_service *sv;

	for (sv = master_services; sv != NULL; sv = sv->next)
		if (!sv->removed && strcmp(sv->def.name, name) == 0)
			return sv;
	return NULL;
}

/* Gone from services.conf (or unusable): stop it and let it die out. */
static void
master_service_retire(struct master_service *sv)
{
	int i;

	sv->removed = 1;
	master_service_close(sv);
	for (i = 0; i < sv->nslots; i++)
		master_slot_terminate(sv->slots[i]);
	if (master_service_live(sv) == 0)
		master_service_free(&sv);
}

/* Gives every listener of the running services to one pool. */
static struct master_listener **
master_pool_collect(int *npool_r)
{
	struct master_listener **pool = NULL;
	struct master_service *sv;
	int n = 0, i;

	for (sv = master_services; sv != NULL; sv = sv->next) {
		pool = xrealloc(
		    pool, (size_t)(n + sv->nlisteners + 1) * sizeof(*pool));
		for (i = 0; i < sv->nlisteners; i++) {
			sv->listeners[i]->owner = sv;
			pool[n++] = sv->listeners[i];
		}
		free(sv->listeners);
		sv->listeners = NULL;
		sv->nlisteners = 0;
	}
	*npool_r = n;
	return pool;
}

/*
 * sv's new sockets cannot be opened (an address still in use, as when
 * inet_interfaces widens to "all"): it takes its old ones back from the
 * pool and runs on unchanged, rather than dying with no socket at all.
 */
static void
master_pool_return(
    struct master_service *sv, struct master_listener **pool, int npool)
{
	int i;

	for (i = 0; i < npool; i++) {
		if (pool[i] == NULL || pool[i]->owner != sv)
			continue;
		sv->listeners = xrealloc(sv->listeners,
		    (size_t)(sv->nlisteners + 1) * sizeof(*sv->listeners));
		sv->listeners[sv->nlisteners++] = pool[i];
		pool[i] = NULL;
	}
}

static void
master_reload_apply(struct service_def *defs, int count, int conf_changed)
{
	struct master_service *sv, *next, **keep;
	struct master_listener **pool;
	const char *err;
	int npool, i, j, changed, existed;

	pool = master_pool_collect(&npool);
	keep = xcalloc((size_t)count + 1, sizeof(*keep));
	for (i = 0; i < count; i++) {
		sv = master_service_find(defs[i].name);
		existed = sv != NULL;
		changed = !existed || conf_changed ||
		          strcmp(sv->def.line, defs[i].line) != 0;
		if (!existed)
			sv = master_service_new(&defs[i]);
		if (master_listen_open(&defs[i], pool, npool, &sv->listeners,
		        &sv->nlisteners, &err) < 0) {
			msg_error("reload: service %s: %s%s", defs[i].name, err,
			    existed ? "; keeping it as it was" : "");
			if (!existed)
				continue; /* not kept: retired below */
			master_pool_return(sv, pool, npool);
			keep[i] = sv;
			continue;
		}
		keep[i] = sv;
		if (!changed)
			continue;
		msg_info("reload: %s service %s",
		    sv->nslots > 0 ? "restarting" : "starting", defs[i].name);
		master_service_set_def(sv, &defs[i]);
		for (j = 0; j < sv->nslots; j++) {
			sv->slots[j]->backoff_ms = MASTER_BACKOFF_START_MS;
			if (sv->slots[j]->pid > 0)
				master_slot_terminate(sv->slots[j]);
			else
				event_timer_del(&sv->slots[j]->timer);
		}
	}
	for (sv = master_services; sv != NULL; sv = next) {
		next = sv->next;
		for (i = 0; i < count && keep[i] != sv; i++)
			;
		if (i == count && !sv->removed) {
			msg_info("reload: stopping service %s", sv->def.name);
			master_service_retire(sv);
		}
	}
	for (i = 0; i < npool; i++)
		master_listener_free(&pool[i]);
	free(pool);
	free(keep);
	for (sv = master_services; sv != NULL; sv = sv->next)
		if (!sv->removed)
			master_service_fill(sv);
}

void
master_services_reload(void)
{
	char *text = master_conf_read(), *path;
	struct service_def *defs;
	const char *err;
	int count, conf_changed;

	path = xasprintf("%s/%s", master_config_dir, MASTER_SERVICES_FILE);
	conf_changed = strcmp(text, master_conf_text) != 0;
	/* Check services.conf before tern.conf replaces the live values. */
	if (services_load(path, 1, &defs, &count, &err) < 0) {
		msg_error("reload: %s; keeping the old configuration", err);
		goto out;
	}
	services_free(&defs, count);
	/* config_load leaves the old values in place when it fails. */
	if (conf_changed && config_load(master_config_dir, &err) < 0) {
		msg_error("reload: %s; keeping the old configuration", err);
		goto out;
	}
	if (master_log_open(&err) < 0)
		msg_error("reload: %s", err);
	if (services_load(path, (int)var_default_process_limit, &defs, &count,
	        &err) < 0) {
		msg_error("reload: %s", err);
		goto out;
	}
	msg_info("reload -- version %s, configuration %s", PACKAGE_VERSION,
	    master_config_dir);
	free(master_conf_text);
	master_conf_text = text;
	text = NULL;
	master_reload_apply(defs, count, conf_changed);
	services_free(&defs, count);
out:
	free(text);
	free(path);
}
