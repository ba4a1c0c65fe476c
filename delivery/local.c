/* SPDX-License-Identifier: MIT */
/*
 * The local delivery agent: takes requests from the queue manager over
 * private/local ({request=deliver, queue_id, queue_file=active/ID,
 * rcpt_index...}), opens the queue file read-only itself, and stores the
 * message in each recipient's maildir: a system user's ~/$home_mailbox
 * with that user's identity, or a virtual user's mailbox under
 * $virtual_mailbox_base with $vmail_user's. It runs as root only to take
 * those identities for the duration of one delivery; started by an
 * ordinary user it delivers as that user. It prepends the Return-Path
 * header (RFC 5321 4.4), answers one reply frame per request with a
 * result and an enhanced status code (RFC 3463) per recipient, and logs
 * each recipient's status line (the queue manager does not repeat it).
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
#include "mail/maildir.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/userdb.h"

/* Recipients per request (qmgr sends at most 50); bounds the reply. */
#define LOCAL_RCPT_MAX         1000
/* Reason text per recipient in the reply and the log. */
#define LOCAL_TEXT_MAX         512
/* Virtual store and domain directories: traversable, not listable. */
#define LOCAL_VIRTUAL_DIR_MODE 0711
/* Bytes of a bad protocol token that are logged. */
#define LOCAL_TOKEN_LOG_MAX    64
#define LOCAL_MS_PER_SEC       1000
#define LOCAL_DELAY_MIN        0.01
#define LOCAL_DELAY_WIDE       10.0
#define LOCAL_DELAY_SIZE       32
#define LOCAL_USEC_PER_SEC     1e6
#define LOCAL_RETURN_PATH      "Return-Path: <"
/* The end of a virtual maildir path (resolve_virtual_maildir). */
#define LOCAL_VIRTUAL_TAIL     "/Maildir/"

struct local_result {
	const char *result; /* sent, defer, bounce */
	const char *dsn;
	char text[LOCAL_TEXT_MAX];
	char *where; /* maildir, for the log (owned) */
};

static int local_root;
/* Owner every queue file must have; (uid_t)-1 when not root. */
static uid_t local_queue_owner = (uid_t)-1;
static struct priv_user local_vmail;
static int local_vmail_known;

static void local_set(struct local_result *res, const char *result,
    const char *dsn, const char *fmt, ...) MTA_PRINTF(4, 5);

static void
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

/* Postfix-style delay: "0.04", "1.2", "37". */
static void
local_delay(const struct qfile *q, char *out, size_t n)
{
	struct timeval now;
	double d;

	gettimeofday(&now, NULL);
	d = (double)(now.tv_sec - q->arrival_sec) +
	    (double)(now.tv_usec - q->arrival_usec) / LOCAL_USEC_PER_SEC;
	if (d < LOCAL_DELAY_MIN)
		snprintf(out, n, "0");
	else if (d < 1)
		snprintf(out, n, "%.2f", d);
	else if (d < LOCAL_DELAY_WIDE)
		snprintf(out, n, "%.1f", d);
	else
		snprintf(out, n, "%.0f", d);
}

/* The header line; a control byte in the sender must not start a header. */
static char *
local_return_path(const char *sender)
{
	char *s = xasprintf(LOCAL_RETURN_PATH "%s>\n", sender);
	char *p, *end = s + strlen(s) - 1;

	for (p = s + strlen(LOCAL_RETURN_PATH); p < end; p++)
		if (iscntrl((unsigned char)*p))
			*p = '?';
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
static void
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

static void
local_system(const struct qfile *q, const char *prefix,
    const struct resolve_result *r, struct local_result *res)
{
	char *name = xstrdup(r->local), *maildir;
	struct passwd *pw;

	/* Login names are lower case; mail to Alice is mail to alice. */
	str_lower(name);
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL && errno != 0 && errno != ENOENT && errno != ESRCH &&
	    errno != EBADF && errno != EPERM)
		local_set(
		    res, "defer", "4.3.0", "user lookup: %s", strerror(errno));
	else if (pw == NULL)
		local_set(res, "bounce", "5.1.1", "user unknown");
	else if (pw->pw_dir == NULL || pw->pw_dir[0] != '/')
		local_set(res, "defer", "4.3.0",
		    "home directory of %s is not absolute", name);
	else {
		maildir = xasprintf("%s/%s", pw->pw_dir, var_home_mailbox);
		local_store(q, prefix, maildir, pw->pw_uid, pw->pw_gid, res);
		free(maildir);
	}
	free(name);
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

static void
local_virtual(const struct qfile *q, const char *prefix,
    const struct resolve_result *r, struct local_result *res)
{
	char *addr = xasprintf("%s@%s", r->local, r->domain);
	char *maildir = NULL, *domain_dir = NULL;
	const char *err;
	int found;

	str_lower(addr);
	/* The address list, never the user file: only auth holds hashes. */
	found = userdb_list_contains(var_virtual_mailbox_list, addr, &err);
	if (found < 0) {
		local_set(res, "defer", "4.3.0", "%s", err);
	} else if (found == 0) {
		local_set(res, "bounce", "5.1.1", "user unknown");
	} else if ((maildir = resolve_virtual_maildir(r->local, r->domain)) ==
	           NULL) {
		local_set(res, "bounce", "5.1.3", "unusable mailbox name");
	} else if (local_root && !local_vmail_known) {
		local_set(res, "defer", "4.3.0", "vmail_user %s does not exist",
		    var_vmail_user);
	} else {
		domain_dir =
		    xasprintf("%s/%s", var_virtual_mailbox_base, r->domain);
		if (local_virtual_dirs(domain_dir, &err) < 0)
			local_set(res, "defer", "4.3.0", "%s", err);
		else
			local_store(q, prefix, maildir, local_vmail.uid,
			    local_vmail.gid, res);
	}
	free(addr);
	free(maildir);
	free(domain_dir);
}

/* The log's word for a result, as Postfix logs it. */
static const char *
local_status_word(const char *result)
{
	if (strcmp(result, "sent") == 0)
		return "sent";
	return strcmp(result, "bounce") == 0 ? "bounced" : "deferred";
}

static void
local_rcpt(const struct qfile *q, const char *id, const char *prefix, int i,
    struct local_result *res)
{
	const char *addr = q->rcpts[i].addr;
	char delay[LOCAL_DELAY_SIZE];
	struct resolve_result r;

	if (resolve_address(addr, &r) < 0)
		local_set(res, "bounce", "5.1.3", "bad address syntax");
	else if (r.class == RESOLVE_LOCAL)
		local_system(q, prefix, &r, res);
	else if (r.class == RESOLVE_VIRTUAL)
		local_virtual(q, prefix, &r, res);
	else
		local_set(res, "defer", "4.3.5",
		    "remote delivery is not available yet");
	resolve_free(&r);
	local_delay(q, delay, sizeof(delay));
	msg_info("%s: to=<%s>, relay=local, delay=%s, dsn=%s, status=%s "
	         "(%s%s%s)",
	    id, log_sanitize(addr, ADDR_PATH_MAX), delay, res->dsn,
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
	struct qfile q;
	const char *err;
	char *path, *prefix = NULL;
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
	else
		prefix = local_return_path(q.sender);
	/* The reply carries the request's id back (attr_client.h). */
	if (attr_reply_begin(reply, req) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	for (i = 0; i < n && !bad; i++) {
		memset(&res, 0, sizeof(res));
		/* The recipient's maildir name and batch (local_store). */
		local_current_set(req, idx[i]);
		if (ok)
			local_rcpt(&q, id, prefix, idx[i], &res);
		else
			local_set(&res, "defer", "4.3.0", "%s", open_err);
		if (attr_put_int(reply, "rcpt_index", idx[i]) < 0 ||
		    attr_put_str(reply, "result", res.result) < 0 ||
		    attr_put_str(reply, "dsn", res.dsn) < 0 ||
		    attr_put_str(reply, "text", res.text) < 0)
			msg_panic("%s: reply does not fit a frame", id);
		free(res.where);
	}
	local_current_end(); /* new/ fsync'd before the reply (local_store) */
	if (!bad && attr_frame_end(reply) < 0)
		msg_panic("%s: reply does not fit a frame", id);
	qfile_close(&q);
	free(prefix);
	free(path);
	free(idx);
	return bad ? -1 : 0;
}

static void
local_serve(int fd, const struct server_listener *l)
{
	int timeout_ms = (int)(var_ipc_timeout * LOCAL_MS_PER_SEC);
	struct attr_list req;
	struct stream st;
	struct buf reply;
	enum stream_result r;
	const char *err = NULL;

	(void)l;
	stream_init(&st, fd);
	attr_list_init(&req);
	buf_init(&reply, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	for (;;) {
		r = attr_read(&st, &req, timeout_ms, &err);
		if (r == STREAM_EOF)
			break;
		if (r != STREAM_OK) {
			msg_warn("reading request: %s", err);
			break;
		}
		/*
		 * A stop must not fall between a delivery and its reply:
		 * qmgr would deliver the message again after the restart.
		 */
		server_hold_signals(1);
		if (local_request(&req, &reply) < 0) {
			server_hold_signals(0);
			break;
		}
		r = attr_write(&st, &reply, timeout_ms);
		server_hold_signals(0);
		if (r != STREAM_OK) {
			msg_warn("cannot send the reply: %m");
			break;
		}
	}
	buf_free(&reply);
	attr_list_free(&req);
	stream_free(&st);
}

static void
local_init(struct event_loop *loop)
{
	struct priv_user owner;

	(void)loop;
	local_root = geteuid() == 0;
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

static const struct server_ops local_ops = {
    .name = "local",
    .mode = SERVER_SINGLE,
    .init = local_init,
    .serve = local_serve,
};

int
main(int argc, char **argv)
{
	server_main(argc, argv, &local_ops);
}
