/* SPDX-License-Identifier: MIT */
/*
 * The local delivery agent: takes requests from the queue manager over
 * private/local ({request=deliver, queue_id, queue_file=active/ID,
 * rcpt_index...}), opens the queue file read-only itself, and delivers
 * each recipient. A recipient of a $mydestination domain goes through
 * Postfix local(8)'s steps: $alias_maps (user+ext, then user), the
 * user's .forward files ($forward_path), then the mailbox
 * (~/$home_mailbox); targets may be addresses (resubmitted as one new
 * queue message), files, commands and :include: files (local_alias.c,
 * local_file.c, local_command.c, local_resubmit.c). A virtual user's
 * mailbox is under $virtual_mailbox_base, written as $vmail_user. It runs
 * as root only to take those identities for the duration of one
 * delivery, and never delivers anything as uid 0; started by an ordinary
 * user it delivers as that user. It prepends the Return-Path header
 * (RFC 5321 4.4) and, for local domains, Delivered-To (bouncing mail
 * whose header already names the recipient there: a forwarding loop),
 * answers one reply frame per request with a result, an enhanced status
 * code (RFC 3463) and an action (RFC 3464 2.3.3) per recipient, and logs
 * a status line per delivery (the queue manager does not repeat it).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/priv.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/mailbox_locate.h"
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/userdb.h"
#include "mail/virtual_alias.h"
#include "local.h"

/* Recipients per request (qmgr sends at most 50); bounds the reply. */
#define LOCAL_RCPT_MAX         1000
/* Virtual store and domain directories: traversable, not listable. */
#define LOCAL_VIRTUAL_DIR_MODE 0711
/* Bytes of a bad protocol token that are logged. */
#define LOCAL_TOKEN_LOG_MAX    64
#define LOCAL_DELIVERED_TO_NAME "Delivered-To"
/*
 * Bytes of the header section read to find Delivered-To headers. Local
 * prepends them, so a loop shows at the top however long the section.
 */
#define LOCAL_HEADER_READ_MAX  (256 * 1024)
/* Delivered-To headers remembered per message (a loop needs one). */
#define LOCAL_DELIVERED_TO_MAX 1000
/* Targets one recipient may expand to, over aliases and includes. */
#define LOCAL_SEEN_MAX         1000
/* The ORCPT address type that names an RFC 5321 address. */
#define LOCAL_ORCPT_RFC822     "rfc822;"
/* The end of a virtual maildir path (resolve_virtual_maildir). */
#define LOCAL_VIRTUAL_TAIL     "/Maildir/"

int local_root;
/* Owner every queue file must have; (uid_t)-1 when not root. */
static uid_t local_queue_owner = (uid_t)-1;
static struct priv_user local_vmail;
static int local_vmail_known;

void
local_set(struct local_result *res, const char *result, const char *dsn,
    const char *fmt, ...)
{
	va_list ap;

	res->result = result;
	res->dsn = dsn;
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/* A control byte in an address must not start a header. */
static void
local_no_controls(char *p)
{
	for (; *p != '\0'; p++)
		if (iscntrl((unsigned char)*p))
			*p = '?';
}

/* "name: value\n", with control bytes of the value made harmless. */
static char *
local_header(const char *name, const char *value)
{
	char *s = xasprintf("%s: %s\n", name, value);
	size_t end = strlen(s) - 1;

	/* The final LF is ours; only the value is cleaned. */
	s[end] = '\0';
	local_no_controls(s + strlen(name) + 2);
	s[end] = '\n';
	return s;
}

static char *
local_return_path(const char *sender)
{
	char *v = xasprintf("<%s>", sender);
	char *s = local_header("Return-Path", v);

	free(v);
	return s;
}

/* The address of an "rfc822;addr" ORCPT, when it is not addr itself. */
static char *
local_orig_to(const struct qrcpt *rcpt, const char *addr)
{
	size_t n = strlen(LOCAL_ORCPT_RFC822);

	if (rcpt->orcpt == NULL ||
	    strncasecmp(rcpt->orcpt, LOCAL_ORCPT_RFC822, n) != 0 ||
	    rcpt->orcpt[n] == '\0' || str_eq_ci(rcpt->orcpt + n, addr))
		return NULL;
	return xstrdup(rcpt->orcpt + n);
}

/*
 * What goes before the content: Return-Path, X-Original-To when the
 * recipient was rewritten (Postfix's order and header: a domain-wide
 * mailbox's collector needs the address the mail was sent to, fetch(8)),
 * and Delivered-To for local-domain deliveries (NULL: none).
 */
static char *
local_prefix(const char *return_path, const char *orig_to,
    const char *delivered_to)
{
	char *xo = orig_to != NULL ? local_header("X-Original-To", orig_to)
	                           : xstrdup("");
	char *dt = delivered_to != NULL
	               ? local_header(LOCAL_DELIVERED_TO_NAME, delivered_to)
	               : xstrdup("");
	char *s = xasprintf("%s%s%s", return_path, xo, dt);

	free(xo);
	free(dt);
	return s;
}

/*
 * The delivery in hand, for local_store: which recipient of the queue
 * file it is (so that every attempt gives the maildir file the same name,
 * and a repeated one stores nothing), whether qmgr says it may have been
 * delivered before, and the new/ directories to fsync before the reply.
 * local_request sets it per recipient with local_current_set() and ends
 * the request with local_current_end().
 */
static struct {
	int rcpt_index;
	int recovered;
	struct maildir_batch batch;
} local_current;

/*
 * The identity local_store acts as. Between deliveries root keeps the
 * last mailbox owner's group ids (root needs none), so that a delivery to
 * the same owner as the last one switches the effective uid there and
 * back after a getegid(): three system calls instead of priv_become's and
 * priv_restore's eight. Code that switches with priv_become or
 * priv_restore sets groups and gid together, so getegid() tells whether
 * the kept ones are still in place.
 */
static gid_t local_kept_gid;
static int local_kept;

static void
local_current_set(const struct attr_list *req, int rcpt_index)
{
	const char *recovered = attr_get(req, "recovered");

	local_current.rcpt_index = rcpt_index;
	local_current.recovered =
	    recovered != NULL && strcmp(recovered, "1") == 0;
}

/*
 * Makes every new/ written for this request durable before the reply. A
 * failure exits without replying: qmgr retries, and the retry finds the
 * files by their names instead of storing them twice.
 */
static void
local_current_end(void)
{
	const char *err;

	if (maildir_batch_sync(&local_current.batch, &err) < 0)
		msg_fatal("%s; exiting without a reply", err);
}

static int
local_become(uid_t uid, gid_t gid)
{
	if (!local_root)
		return 0;
	if (local_kept && local_kept_gid == gid && getegid() == gid)
		return seteuid(uid);
	local_kept = 0;
	if (priv_become(uid, gid) < 0)
		return -1;
	local_kept = 1;
	local_kept_gid = gid;
	return 0;
}

/* Back to root for whatever comes next (the group ids stay). */
static void
local_unbecome(void)
{
	if (local_root && seteuid(0) < 0)
		msg_fatal("cannot return to root privileges: %m");
}

/*
 * The limits for maildir: its virtual user's own ones from the mailbox
 * list (a mailbox at $virtual_mailbox_base/DOMAIN/USER/Maildir/ is that
 * of USER@DOMAIN), else $mailbox_size_limit and $mailbox_message_limit.
 */
static void
local_limits(const char *maildir, struct maildir_quota *quota)
{
	size_t blen = strlen(var_virtual_mailbox_base);
	struct userdb_limits own = {-1, -1};
	const char *rel, *slash1, *slash2, *err;
	char *addr;

	quota->bytes = (uint64_t)var_mailbox_size_limit;
	quota->count = (uint64_t)var_mailbox_message_limit;
	if (strncmp(maildir, var_virtual_mailbox_base, blen) != 0 ||
	    maildir[blen] != '/')
		return;
	rel = maildir + blen + 1;
	slash1 = strchr(rel, '/');
	slash2 = slash1 != NULL ? strchr(slash1 + 1, '/') : NULL;
	if (slash1 == NULL || slash2 == NULL ||
	    strcmp(slash2, LOCAL_VIRTUAL_TAIL) != 0)
		return;
	addr = xasprintf("%.*s@%.*s", (int)(slash2 - slash1 - 1), slash1 + 1,
	    (int)(slash1 - rel), rel);
	if (userdb_list_lookup(var_virtual_mailbox_list, addr, &own, &err) ==
	    1) {
		if (own.bytes >= 0)
			quota->bytes = (uint64_t)own.bytes;
		if (own.count >= 0)
			quota->count = (uint64_t)own.count;
	}
	free(addr);
}

/* Stores the message as uid/gid (when root) into maildir. */
void
local_store(const struct qfile *q, const char *prefix, const char *maildir,
    uid_t uid, gid_t gid, struct local_result *res)
{
	struct maildir_delivery d = {0};
	struct maildir_quota quota;
	const char *err = NULL;
	char *path = NULL, *unique;
	int rc;

	local_limits(maildir, &quota);
	unique = maildir_unique(q->arrival_sec, q->arrival_usec, q->id,
	    local_current.rcpt_index, NULL);
	d.maildir = maildir;
	d.prefix = prefix;
	d.src_fd = q->fd;
	d.off = q->content_off;
	d.len = q->content_len;
	d.unique = unique;
	d.check_cur = local_current.recovered;
	d.quota = &quota;
	d.batch = &local_current.batch;
	if (local_become(uid, gid) < 0) {
		local_set(res, "defer", "4.3.0", "cannot switch to uid %ld: %s",
		    (long)uid, strerror(errno));
		if (priv_restore() < 0)
			msg_fatal("cannot return to root privileges: %m");
		local_kept = 0;
		free(unique);
		return;
	}
	rc = maildir_deliver(&d, &path, &err);
	local_unbecome();
	if (rc == MAILDIR_ERROR) {
		local_set(res, "defer", "4.3.0", "%s", err);
	} else if (rc == MAILDIR_FULL) {
		if (var_quota_full_tempfail)
			local_set(res, "defer", "4.2.2", "mailbox full");
		else
			local_set(res, "bounce", "5.2.2", "mailbox full");
		res->where = xstrdup(maildir);
	} else {
		local_set(res, "sent", "2.0.0", "%s",
		    rc == MAILDIR_EXISTS ? "already delivered to maildir"
		                         : "delivered to maildir");
		res->where = xstrdup(maildir);
		msg_debug("%s: %s %s", q->id,
		    rc == MAILDIR_EXISTS ? "found earlier copy" : "stored as",
		    path);
	}
	free(path);
	free(unique);
}

/* getpwnam() tells "no such user" by NULL with one of these errnos. */
static int
local_pw_absent(int err)
{
	return err == 0 || err == ENOENT || err == ESRCH || err == EBADF ||
	       err == EPERM;
}

static void
local_ident_fill(const struct passwd *pw, struct local_ident *id_r)
{
	id_r->uid = pw->pw_uid;
	id_r->gid = pw->pw_gid;
	id_r->user = xstrdup(pw->pw_name);
	id_r->home = xstrdup(pw->pw_dir != NULL ? pw->pw_dir : "");
	id_r->shell = xstrdup(pw->pw_shell != NULL ? pw->pw_shell : "");
}

int
local_ident_user(const char *name, struct local_ident *id_r)
{
	struct passwd *pw;

	memset(id_r, 0, sizeof(*id_r));
	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
		return local_pw_absent(errno) ? 0 : -1;
	local_ident_fill(pw, id_r);
	return 1;
}

int
local_ident_uid(uid_t uid, struct local_ident *id_r)
{
	struct passwd *pw;

	memset(id_r, 0, sizeof(*id_r));
	errno = 0;
	if ((pw = getpwuid(uid)) == NULL)
		return local_pw_absent(errno) ? 0 : -1;
	local_ident_fill(pw, id_r);
	return 1;
}

void
local_ident_free(struct local_ident *id)
{
	free(id->user);
	free(id->home);
	free(id->shell);
	id->user = id->home = id->shell = NULL;
}

int
local_first_time(struct local_rcpt *lr, const char *kind, const char *value)
{
	char *key = xasprintf("%s:%s", kind, value);
	int i;

	for (i = 0; i < lr->nseen; i++) {
		if (strcmp(lr->seen[i], key) == 0) {
			free(key);
			return 0;
		}
	}
	if (lr->nseen == LOCAL_SEEN_MAX) {
		free(key);
		return -1;
	}
	lr->seen = xrealloc(
	    lr->seen, ((size_t)lr->nseen + 1) * sizeof(*lr->seen));
	lr->seen[lr->nseen++] = key;
	return 1;
}

static int
local_rank(const char *result)
{
	if (result == NULL)
		return -1;
	if (strcmp(result, "defer") == 0)
		return 2;
	return strcmp(result, "bounce") == 0 ? 1 : 0;
}

/* The log's word for a result, as Postfix logs it. */
static const char *
local_status_word(const char *result)
{
	if (strcmp(result, "sent") == 0)
		return "sent";
	return strcmp(result, "bounce") == 0 ? "bounced" : "deferred";
}

void
local_leaf_done(struct local_rcpt *lr, const struct local_result *res)
{
	char delay[QFILE_DELAY_SIZE];
	char orig[ADDR_PATH_MAX + sizeof(", orig_to=<>")] = "";

	lr->leaves++;
	qfile_delay(lr->msg->q, delay, sizeof(delay));
	if (lr->orig_to != NULL)
		snprintf(orig, sizeof(orig), ", orig_to=<%s>",
		    log_sanitize(lr->orig_to, ADDR_PATH_MAX));
	msg_info("%s: to=<%s>%s, relay=local, delay=%s, dsn=%s, status=%s "
	         "(%s%s%s)",
	    lr->msg->id, log_sanitize(lr->addr, ADDR_PATH_MAX), orig, delay,
	    res->dsn, local_status_word(res->result), res->text,
	    res->where != NULL ? " " : "",
	    res->where != NULL ? res->where : "");
	if (local_rank(res->result) > local_rank(lr->res->result)) {
		lr->res->result = res->result;
		lr->res->dsn = res->dsn;
		snprintf(lr->res->text, sizeof(lr->res->text), "%s", res->text);
	}
}

void
local_mailbox(struct local_rcpt *lr, const char *name)
{
	struct local_result res;
	struct local_ident id;
	char *maildir;
	int found, first;

	/* alice: alice, \alice and a .forward naming alice: one copy. */
	if ((first = local_first_time(lr, "mailbox", name)) == 0)
		return;
	memset(&res, 0, sizeof(res));
	found = local_ident_user(name, &id);
	if (first < 0)
		local_set(&res, "bounce", "5.3.0",
		    "too many targets in the expansion");
	else if (found < 0)
		local_set(&res, "defer", "4.3.0", "user lookup: %s",
		    strerror(errno));
	else if (found == 0)
		local_set(&res, "bounce", "5.1.1", "user unknown");
	else if (id.home[0] != '/')
		local_set(&res, "defer", "4.3.0",
		    "home directory of %s is not absolute", name);
	else if (id.uid == 0) {
		/* Mail for root is read as root: never written as root. */
		msg_warn("%s: refusing to deliver to the mailbox of %s (uid "
		         "0): add an alias for it to a user in %s",
		    lr->msg->id, id.user, var_alias_maps);
		local_set(&res, "defer", "4.3.0",
		    "refusing to deliver to root's mailbox: alias root to a "
		    "user");
	} else {
		maildir = xasprintf("%s/%s", id.home, var_home_mailbox);
		local_store(
		    lr->msg->q, lr->prefix, maildir, id.uid, id.gid, &res);
		free(maildir);
	}
	local_leaf_done(lr, &res);
	free(res.where);
	local_ident_free(&id);
}

/*
 * Creates $virtual_mailbox_base and its DOMAIN directory when missing.
 * Inside a store that $vmail_user owns, the DOMAIN directory is made as
 * $vmail_user: root must not mkdir and chmod by name in a directory that
 * another user could swap a symlink into between the two calls.
 */
static int
local_virtual_dirs(const char *domain_dir, const char **error_r)
{
	static char why[LOCAL_TEXT_MAX];
	uid_t uid = local_root ? local_vmail.uid : (uid_t)-1;
	gid_t gid = local_root ? local_vmail.gid : (gid_t)-1;
	struct stat st;
	int rc, as_vmail;

	if (stat(domain_dir, &st) == 0)
		return 0;
	if (stat(var_virtual_mailbox_base, &st) < 0) {
		if (file_ensure_dir(var_virtual_mailbox_base,
		        LOCAL_VIRTUAL_DIR_MODE, uid, gid, NULL, error_r) < 0)
			return -1;
		st.st_uid = uid;
	}
	as_vmail = local_root && st.st_uid != 0;
	if (!as_vmail)
		return file_ensure_dir(domain_dir, LOCAL_VIRTUAL_DIR_MODE, uid,
		    gid, NULL, error_r);
	if (priv_become(uid, gid) < 0) {
		snprintf(why, sizeof(why), "cannot switch to uid %ld: %s",
		    (long)uid, strerror(errno));
		*error_r = why;
		rc = -1;
	} else {
		rc = file_ensure_dir(domain_dir, LOCAL_VIRTUAL_DIR_MODE,
		    (uid_t)-1, (gid_t)-1, NULL, error_r);
	}
	if (priv_restore() < 0)
		msg_fatal("cannot return to root privileges: %m");
	return rc;
}

/*
 * Where a virtual address's mail goes: virtual_mailbox_maps when set,
 * else the mailbox list and base/DOMAIN/USER/Maildir/. 1 with *maildir_r
 * and *top_r (the directory to make like a DOMAIN directory), or 0 with
 * res set.
 */
static int
local_virtual_mailbox(const struct resolve_result *r, const char *addr,
    char **maildir_r, char **top_r, struct local_result *res)
{
	char *base, *local, *domain;
	const char *err;
	int found, tempfail = 1;

	/* Without the table: the address list, never the user file (only
	 * auth holds hashes). */
	if (virtual_mailbox_active())
		found = mailbox_virtual_path(addr, r->local, r->domain,
		    maildir_r, top_r, &tempfail, &err);
	else {
		found =
		    userdb_list_contains(var_virtual_mailbox_list, addr, &err);
		/* user+ext@domain goes to user@domain's mailbox. */
		if (found == 0 && (base = addr_strip_extension(addr)) != NULL) {
			found = userdb_list_contains(
			    var_virtual_mailbox_list, base, &err);
			if (found > 0 && addr_split(base, &local, &domain) == 0) {
				*maildir_r = resolve_virtual_maildir(local, domain);
				*top_r = xasprintf("%s/%s",
				    var_virtual_mailbox_base, domain);
				free(local);
				free(domain);
				if (*maildir_r == NULL) {
					free(*top_r);
					*top_r = NULL;
					found = -2;
				}
			}
			free(base);
		}
	}
	if (found == -2) {
		local_set(res, "bounce", "5.1.3", "unusable mailbox name");
		return 0;
	}
	if (found < 0) {
		/* A table's mailbox path that cannot be used is the
		 * admin's to fix: the mail waits. */
		local_set(
		    res, "defer", tempfail ? "4.3.0" : "4.3.5", "%s", err);
		return 0;
	}
	if (found == 0) {
		local_set(res, "bounce", "5.1.1", "user unknown");
		return 0;
	}
	if (*maildir_r != NULL)
		return 1;
	/* The same path spawn gives a POP3 session (mailbox_locate.h). */
	if (mailbox_virtual_path(addr, r->local, r->domain, maildir_r, top_r,
	        &tempfail, &err) <= 0) {
		local_set(res, "bounce", "5.1.3", "unusable mailbox name");
		return 0;
	}
	return 1;
}

static void
local_virtual(const struct qfile *q, const char *return_path,
    const struct qrcpt *rcpt, const struct resolve_result *r,
    struct local_result *res)
{
	char *addr = xasprintf("%s@%s", r->local, r->domain);
	char *maildir = NULL, *domain_dir = NULL, *orig_to, *prefix;
	const char *err;

	str_lower(addr);
	orig_to = local_orig_to(rcpt, addr);
	prefix = local_prefix(return_path, orig_to, NULL);
	free(orig_to);
	if (!local_virtual_mailbox(r, addr, &maildir, &domain_dir, res)) {
		/* res says why. */
	} else if (local_root && !local_vmail_known) {
		local_set(res, "defer", "4.3.0", "vmail_user %s does not exist",
		    var_vmail_user);
	} else {
		if (local_virtual_dirs(domain_dir, &err) < 0)
			local_set(res, "defer", "4.3.0", "%s", err);
		else
			local_store(q, prefix, maildir, local_vmail.uid,
			    local_vmail.gid, res);
	}
	free(addr);
	free(prefix);
	free(maildir);
	free(domain_dir);
}

/* Adds the value of one Delivered-To header (unfolded) to m. */
static void
local_msg_add_delivered_to(struct local_msg *m, const char *v, size_t len)
{
	char *s, *t;

	if (m->ndelivered_to == LOCAL_DELIVERED_TO_MAX)
		return;
	s = xmalloc(len + 1);
	memcpy(s, v, len);
	s[len] = '\0';
	t = str_trim(s);
	memmove(s, t, strlen(t) + 1);
	/* "<a@b>" as some forwarders write it is the same address. */
	if (s[0] == '<' && strlen(s) > 1 && s[strlen(s) - 1] == '>') {
		memmove(s, s + 1, strlen(s) - 2);
		s[strlen(s) - 2] = '\0';
	}
	str_lower(s);
	m->delivered_to = xrealloc(m->delivered_to,
	    ((size_t)m->ndelivered_to + 1) * sizeof(*m->delivered_to));
	m->delivered_to[m->ndelivered_to++] = s;
}

/*
 * Reads the top of the header section once per message and collects
 * the Delivered-To values (Postfix's delivered_hdr.c). Content has CRLF
 * line endings; a header's continuation lines start with a blank.
 */
static int
local_msg_headers(struct local_msg *m)
{
	const struct qfile *q = m->q;
	size_t want = q->content_len < LOCAL_HEADER_READ_MAX
	                  ? (size_t)q->content_len
	                  : LOCAL_HEADER_READ_MAX;
	char *text, *p, *end, *eol, *line, *c;
	size_t name_len = strlen(LOCAL_DELIVERED_TO_NAME);
	struct buf value;
	int over;

	if (m->headers_read)
		return m->headers_error != NULL ? -1 : 0;
	m->headers_read = 1;
	text = xmalloc(want + 1);
	if (want > 0 && file_pread_all(q->fd, text, want, q->content_off) < 0) {
		m->headers_error = xasprintf(
		    "read queue file: %s", errno ? strerror(errno) : "short");
		free(text);
		return -1;
	}
	text[want] = '\0';
	buf_init(&value, LOCAL_HEADER_READ_MAX);
	for (p = text, end = text + want; p < end; p = eol) {
		line = p;
		eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol != NULL ? eol + 1 : end;
		if (line[0] == '\r' || line[0] == '\n')
			break; /* the empty line: end of the header section */
		if ((size_t)(eol - line) <= name_len ||
		    strncasecmp(line, LOCAL_DELIVERED_TO_NAME, name_len) != 0 ||
		    line[name_len] != ':')
			continue;
		buf_reset(&value);
		over = buf_append(&value, line + name_len + 1,
		    (size_t)(eol - line) - name_len - 1) < 0;
		while (eol < end && (*eol == ' ' || *eol == '\t')) {
			line = eol;
			eol = memchr(line, '\n', (size_t)(end - line));
			eol = eol != NULL ? eol + 1 : end;
			over |= buf_append(&value, line,
			            (size_t)(eol - line)) < 0;
		}
		for (c = value.data; !over && c < value.data + value.len; c++)
			if (*c == '\r' || *c == '\n')
				*c = ' ';
		if (!over && value.len > 0)
			local_msg_add_delivered_to(m, value.data, value.len);
	}
	buf_free(&value);
	free(text);
	return 0;
}

static void
local_msg_free(struct local_msg *m)
{
	int i;

	for (i = 0; i < m->ndelivered_to; i++)
		free(m->delivered_to[i]);
	free(m->delivered_to);
	free(m->headers_error);
	free(m->return_path);
}

static void
local_rcpt_free(struct local_rcpt *lr)
{
	int i;

	for (i = 0; i < lr->nseen; i++)
		free(lr->seen[i]);
	free(lr->seen);
	for (i = 0; i < lr->nfwd; i++)
		free(lr->fwd[i]);
	free(lr->fwd);
	free(lr->addr);
	free(lr->orig_to);
	free(lr->local);
	free(lr->user);
	free(lr->ext);
	free(lr->domain);
	free(lr->prefix);
}

/* Splits local at the first recipient_delimiter character. */
static void
local_split_ext(struct local_rcpt *lr)
{
	size_t n = *var_recipient_delimiter != '\0'
	               ? strcspn(lr->local, var_recipient_delimiter)
	               : strlen(lr->local);

	/* "+x" alone is a user name, not an empty one with an extension. */
	if (n == 0 || lr->local[n] == '\0') {
		lr->user = xstrdup(lr->local);
		return;
	}
	lr->user = xstrndup(lr->local, n);
	lr->ext = xstrdup(lr->local + n + 1);
}

/*
 * A recipient of a $mydestination domain, Postfix local(8)'s order:
 * the forwarding loop check, aliases, .forward, the mailbox; then the
 * addresses the expansion produced, resubmitted as one message.
 */
static void
local_deliver_local(struct local_msg *m, const struct qrcpt *rcpt,
    const struct resolve_result *r, struct local_result *res)
{
	struct local_result leaf;
	struct local_rcpt lr;
	int i, loop = 0;

	memset(&lr, 0, sizeof(lr));
	lr.msg = m;
	lr.rcpt = rcpt;
	lr.res = res;
	lr.local = xstrdup(r->local);
	lr.domain = xstrdup(r->domain);
	lr.addr = *r->domain != '\0' ? xasprintf("%s@%s", r->local, r->domain)
	                             : xstrdup(r->local);
	str_lower(lr.addr);
	lr.orig_to = local_orig_to(rcpt, lr.addr);
	local_split_ext(&lr);
	lr.prefix = local_prefix(m->return_path, lr.orig_to, lr.addr);
	memset(&leaf, 0, sizeof(leaf));
	if (local_msg_headers(m) < 0) {
		local_set(&leaf, "defer", "4.3.0", "%s", m->headers_error);
		local_leaf_done(&lr, &leaf);
		goto out;
	}
	for (i = 0; i < m->ndelivered_to && !loop; i++)
		loop = strcmp(m->delivered_to[i], lr.addr) == 0;
	if (loop) {
		/* RFC 5321 6.3: a message that came back is not sent on. */
		local_set(&leaf, "bounce", "5.4.6",
		    "mail forwarding loop for %s", lr.addr);
		local_leaf_done(&lr, &leaf);
		goto out;
	}
	if (local_expand(&lr) == 0)
		local_mailbox(&lr, lr.user);
	if (lr.nfwd > 0 && local_rank(res->result) == 2) {
		/* The retry expands again: resubmitting now would duplicate. */
		msg_info("%s: to=<%s>: not forwarding to %d address(es) "
		         "while a target is deferred",
		    m->id, log_sanitize(lr.addr, ADDR_PATH_MAX), lr.nfwd);
	} else if (lr.nfwd > 0) {
		local_resubmit(&lr, &leaf);
		local_leaf_done(&lr, &leaf);
	}
	if (res->result == NULL) {
		/* Every target was a duplicate of one already handled. */
		local_set(
		    &leaf, "sent", "2.0.0", "alias expanded to nothing new");
		local_leaf_done(&lr, &leaf);
	}
out:
	lr.expanded |= lr.leaves > 1 || lr.nfwd > 0;
	res->action = strcmp(res->result, "sent") != 0 ? ""
	              : lr.expanded                    ? "expanded"
	                                               : "delivered";
	local_rcpt_free(&lr);
}

static void
local_rcpt(struct local_msg *m, int i, struct local_result *res)
{
	const char *addr = m->q->rcpts[i].addr;
	char delay[QFILE_DELAY_SIZE];
	struct resolve_result r;

	if (resolve_address(addr, &r) == 0 && r.class == RESOLVE_LOCAL) {
		/* Logs a line per target itself. */
		local_deliver_local(m, &m->q->rcpts[i], &r, res);
		resolve_free(&r);
		return;
	}
	if (r.local == NULL)
		local_set(res, "bounce", "5.1.3", "bad address syntax");
	else if (r.class == RESOLVE_VIRTUAL)
		local_virtual(m->q, m->return_path, &m->q->rcpts[i], &r, res);
	else
		local_set(res, "defer", "4.3.5",
		    "remote delivery is not available yet");
	resolve_free(&r);
	res->action = strcmp(res->result, "sent") == 0 ? "delivered" : "";
	qfile_delay(m->q, delay, sizeof(delay));
	msg_info("%s: to=<%s>, relay=local, delay=%s, dsn=%s, status=%s "
	         "(%s%s%s)",
	    m->id, log_sanitize(addr, ADDR_PATH_MAX), delay, res->dsn,
	    local_status_word(res->result), res->text,
	    res->where != NULL ? " " : "",
	    res->where != NULL ? res->where : "");
}

/*
 * Checks one request and delivers it, building the reply in *reply.
 * -1 for a request that breaks the protocol (the connection is closed).
 */
static int
local_request(const struct attr_list *req, struct buf *reply)
{
	const char *request = attr_get(req, "request");
	const char *id = attr_get(req, "queue_id");
	const char *file = attr_get(req, "queue_file");
	char want[sizeof(QUEUE_ACTIVE) + QUEUE_ID_SIZE],
	    open_err[LOCAL_TEXT_MAX];
	struct local_result res;
	struct local_msg m;
	struct qfile q;
	const char *err;
	char *path;
	int *idx, n = 0, i, ok = 0, bad = 0;
	uint64_t v;

	if (request == NULL || strcmp(request, "deliver") != 0) {
		msg_warn("unknown request '%s'",
		    log_sanitize(
		        request != NULL ? request : "", LOCAL_TOKEN_LOG_MAX));
		return -1;
	}
	/* Only a queue file named by a valid ID in active/ may be opened. */
	if (id != NULL && queue_id_valid(id))
		snprintf(want, sizeof(want), "%s/%s", QUEUE_ACTIVE, id);
	if (id == NULL || !queue_id_valid(id) || file == NULL ||
	    strcmp(file, want) != 0) {
		msg_warn("bad queue_id or queue_file in request");
		return -1;
	}
	idx = xcalloc(LOCAL_RCPT_MAX, sizeof(*idx));
	for (i = 0; i < req->count && !bad; i++) {
		if (strcmp(req->v[i].name, "rcpt_index") != 0)
			continue;
		bad = n == LOCAL_RCPT_MAX ||
		      str_to_u64(req->v[i].value, INT_MAX, &v) < 0;
		if (!bad)
			idx[n++] = (int)v;
	}
	if (bad || n == 0) {
		msg_warn("%s: bad recipient list in request", id);
		free(idx);
		return -1;
	}
	path = queue_path(QUEUE_ACTIVE, id);
	if (qfile_open(path, 0, local_queue_owner, &q, &err) < 0)
		snprintf(open_err, sizeof(open_err), "%s", err);
	else if (!q.complete)
		snprintf(open_err, sizeof(open_err), "%s: incomplete", path);
	else
		ok = 1;
	for (i = 0; i < n && ok && !bad; i++)
		bad = idx[i] >= q.nrcpt;
	if (bad)
		msg_warn("%s: recipient index out of range in request", id);
	else if (!ok)
		msg_warn("%s: %s", id, open_err);
	memset(&m, 0, sizeof(m));
	m.q = &q;
	m.id = id;
	if (ok && !bad) {
		m.return_path = local_return_path(q.sender);
		local_alias_recheck();
	}
	/* The reply carries the request's id back (attr_client.h). */
	if (attr_reply_begin(reply, req) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	for (i = 0; i < n && !bad; i++) {
		memset(&res, 0, sizeof(res));
		/* The recipient's maildir name and batch (local_store). */
		local_current_set(req, idx[i]);
		if (ok)
			local_rcpt(&m, idx[i], &res);
		else
			local_set(&res, "defer", "4.3.0", "%s", open_err);
		if (attr_put_int(reply, "rcpt_index", idx[i]) < 0 ||
		    attr_put_str(reply, "result", res.result) < 0 ||
		    attr_put_str(reply, "dsn", res.dsn) < 0 ||
		    attr_put_str(reply, "text", res.text) < 0 ||
		    attr_put_str(reply, "action",
		        res.action != NULL ? res.action : "") < 0)
			msg_panic("%s: reply does not fit a frame", id);
		free(res.where);
	}
	local_current_end(); /* new/ fsync'd before the reply (local_store) */
	if (!bad && attr_frame_end(reply) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	qfile_close(&q);
	local_msg_free(&m);
	free(path);
	free(idx);
	return bad ? -1 : 0;
}

static void
local_serve(int fd, const struct server_listener *l)
{
	(void)l;
	server_serve_requests(fd, local_request, NULL);
}

static void
local_init(struct event_loop *loop)
{
	struct priv_user owner;

	(void)loop;
	local_root = geteuid() == 0;
	/* Tables are opened once, as root; they reload when they change. */
	(void)local_alias_init();
	if (local_resubmit_init() < 0)
		msg_fatal(
		    "mail_owner user '%s' does not exist", var_mail_owner);
	if (!local_root)
		return;
	/* Root opens queue files that mail_owner wrote, and no others. */
	if (priv_lookup_user(var_mail_owner, &owner) < 0)
		msg_fatal(
		    "mail_owner user '%s' does not exist", var_mail_owner);
	local_queue_owner = owner.uid;
	priv_user_free(&owner);
	local_vmail_known = priv_lookup_user(var_vmail_user, &local_vmail) == 0;
	/* Once now, not per message: names carry the host name. */
	free(maildir_unique(0, 0, "", 0, NULL));
	if (!local_vmail_known)
		msg_warn("vmail_user %s does not exist: virtual mail will be "
		         "deferred",
		    var_vmail_user);
}

static void
local_shutdown(void)
{
	local_alias_free();
}

static const struct server_ops local_ops = {
    .name = "local",
    .mode = SERVER_SINGLE,
    .init = local_init,
    .serve = local_serve,
    .shutdown = local_shutdown,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &local_ops);
}
