/* SPDX-License-Identifier: MIT */
/*
 * ternqueue: the queue command for users and admins (Postfix's
 * postqueue). -p lists the queue in mailq's format, -j as one JSON
 * object per message per line (postqueue -j's fields), -f asks for every
 * deferred message to be delivered now, -s domain for those with a
 * recipient in domain (what a part-time site's ETRN, RFC 1985, does
 * over SMTP), -i queue_id for one message.
 *
 * The queue is mail_owner's alone; everything goes through the showq
 * daemon's public/showq socket, which this program reaches because it is
 * installed setgid $setgid_group, and which decides what the user may
 * see and do from the socket's peer credentials (showq(8)). The setgid
 * group is used for that connect only. root runs as mail_owner from the
 * start (root never follows a path inside the queue), and root and
 * mail_owner list the queue themselves when showq cannot be reached (the
 * mail system is down), as postqueue does.
 *
 * Exit codes (sysexits.h): 0; EX_USAGE; EX_NOPERM (not authorized, or an
 * untrusted configuration directory while setgid); EX_CONFIG (the
 * configuration does not load); EX_UNAVAILABLE (the mail system is down);
 * EX_NOINPUT (-i: no such deferred message); EX_PROTOCOL (showq's answer
 * makes no sense); EX_IOERR (writing the output failed).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/priv.h"
#include "base/str.h"
#include "base/stream.h"
#include "mail/addr.h"
#include "mail/attr.h"
#include "mail/flush.h"
#include "mail/params.h"
#include "mail/queue.h"
#include "mail/queue_list.h"

#define TERNQUEUE_PROGNAME   "ternqueue"
/* showq is local: a connect, or a frame of the listing, that takes longer
 * than this means something is wrong with the mail system. */
#define TERNQUEUE_TIMEOUT_S  60
#define TERNQUEUE_MS_PER_SEC 1000
/* Postfix's mailq format (showq_compat.c), short queue ID columns. */
#define TQ_STRING_FORMAT     "%-11s %7s %-20s %s\n"
#define TQ_REASON_WIDTH      76
#define TQ_TIME_SIZE         64
#define TQ_ID_SIZE           (QUEUE_ID_SIZE + 2)

enum tq_action {
	TQ_NONE,
	TQ_LIST,
	TQ_JSON,
	TQ_FLUSH,
	TQ_SITE,
	TQ_DELIVER
};

/* The listing printer: one message at a time, recipients as they come. */
struct tq_out {
	int json;
	int in_msg;         /* a message's output is open */
	int nrcpt;          /* of the open message */
	char *saved_reason; /* -p: the last "(reason)" line printed */
	long long total;    /* bytes of content listed */
	long long count;    /* messages listed */
};

static void MTA_NORETURN
ternqueue_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c config_dir] -p | -j | -f | -s domain | -i queue_id\n",
	    TERNQUEUE_PROGNAME);
	exit(EX_USAGE);
}

static void MTA_PRINTF(2, 3)
    MTA_NORETURN ternqueue_die(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: fatal: ", TERNQUEUE_PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* Text from a queue file as a terminal may show it: control bytes and
 * anything that is not UTF-8 become '?' (Postfix's printable()). */
static void
tq_put_printable(const char *s)
{
	size_t len = strlen(s), i = 0, n;

	while (i < len) {
		n = str_utf8_seq(s + i, len - i);
		if (n == 0 || (n == 1 && ((unsigned char)s[i] < 0x20 ||
		                             (unsigned char)s[i] == 0x7f))) {
			putchar('?');
			i += n == 0 ? 1 : n;
		} else {
			fwrite(s + i, 1, n, stdout);
			i += n;
		}
	}
}

/* A JSON string (RFC 8259 7) for any bytes: UTF-8 kept, control
 * characters escaped, every byte that is not UTF-8 is U+FFFD. */
static void
tq_put_json(const char *s)
{
	size_t len = strlen(s), i = 0, n;
	unsigned char c;

	putchar('"');
	while (i < len) {
		c = (unsigned char)s[i];
		n = str_utf8_seq(s + i, len - i);
		if (n == 0) {
			fputs("\\ufffd", stdout);
			i++;
		} else if (c == '"' || c == '\\') {
			putchar('\\');
			putchar(c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			i++;
		} else {
			fwrite(s + i, 1, n, stdout);
			i += n;
		}
	}
	putchar('"');
}

static void
tq_end_message(struct tq_out *o)
{
	if (!o->in_msg)
		return;
	if (o->json)
		fputs("]}\n", stdout);
	o->in_msg = 0;
}

static void
tq_message(struct tq_out *o, const struct queue_list_msg *m)
{
	char when[TQ_TIME_SIZE], id[TQ_ID_SIZE];
	time_t t = (time_t)m->arrival;
	struct tm tm;

	tq_end_message(o);
	o->in_msg = 1;
	o->nrcpt = 0;
	free(o->saved_reason);
	o->saved_reason = xstrdup("");
	o->total += m->size;
	if (o->json) {
		fputs("{\"queue_name\": ", stdout);
		tq_put_json(m->queue);
		fputs(", \"queue_id\": ", stdout);
		tq_put_json(m->id);
		printf(", \"arrival_time\": %lld, \"message_size\": %lld, "
		       "\"forced_expire\": %s, \"sender\": ",
		    m->arrival, m->size, m->forced_expire ? "true" : "false");
		tq_put_json(m->sender);
		fputs(", \"recipients\": [", stdout);
		o->count++;
		return;
	}
	if (o->count++ > 0)
		putchar('\n');
	else
		printf(TQ_STRING_FORMAT, "-Queue ID-", "--Size--",
		    "----Arrival Time----", "-Sender/Recipient-------");
	snprintf(id, sizeof(id), "%s%s", log_sanitize(m->id, QUEUE_ID_LEN),
	    strcmp(m->queue, QUEUE_ACTIVE) == 0 ? "*"
	    : strcmp(m->queue, QUEUE_HOLD) == 0 ? "!"
	                                        : "");
	/* asctime()'s layout, which postqueue prints (cut at 20). */
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", m->arrival);
	printf("%-11s %7lld %20.20s ", id, m->size, when);
	if (!m->ready)
		fputs("(being submitted)", stdout);
	else if (*m->sender == '\0')
		fputs("MAILER-DAEMON", stdout);
	else
		tq_put_printable(m->sender);
	putchar('\n');
}

/* orig_address: the address of a DSN ORCPT of type rfc822, else as given. */
static const char *
tq_orig(const char *orcpt)
{
	static const char rfc822[] = "rfc822;";

	if (str_prefix_ci(orcpt, strlen(orcpt), rfc822))
		return orcpt + sizeof(rfc822) - 1;
	return orcpt;
}

static void
tq_rcpt(struct tq_out *o, const struct queue_list_rcpt *r)
{
	int pad;

	if (o->json) {
		fputs(o->nrcpt++ > 0 ? ", {" : "{", stdout);
		fputs("\"address\": ", stdout);
		tq_put_json(r->addr);
		if (*r->orcpt != '\0') {
			fputs(", \"orig_address\": ", stdout);
			tq_put_json(tq_orig(r->orcpt));
		}
		if (*r->reason != '\0') {
			fputs(", \"delay_reason\": ", stdout);
			tq_put_json(r->reason);
		}
		putchar('}');
		return;
	}
	o->nrcpt++;
	/* As postqueue: a "(reason)" line when it differs from the previous
	 * recipient's, "(reason unavailable)" after one that had a reason. */
	if (strcmp(o->saved_reason, r->reason) != 0) {
		free(o->saved_reason);
		o->saved_reason = xstrdup(r->reason);
		pad =
		    TQ_REASON_WIDTH -
		    (int)strlen(*r->reason ? r->reason : "reason unavailable");
		printf("%*s(", pad > 0 ? pad : 0, "");
		tq_put_printable(*r->reason ? r->reason : "reason unavailable");
		fputs(")\n", stdout);
	}
	printf("%-11s %7s %-20s ", "", "", "");
	tq_put_printable(r->addr);
	putchar('\n');
}

static void
tq_finish(struct tq_out *o)
{
	tq_end_message(o);
	if (!o->json) {
		if (o->count == 0)
			puts("Mail queue is empty");
		else
			printf("\n-- %lld Kbytes in %lld Request%s.\n",
			    o->total / 1024, o->count,
			    o->count == 1 ? "" : "s");
	}
	free(o->saved_reason);
	o->saved_reason = NULL;
	if (fflush(stdout) != 0 || ferror(stdout))
		ternqueue_die(
		    EX_IOERR, "write error on the output: %s", strerror(errno));
}

static int
tq_walk_message(const struct queue_list_msg *m, void *ctx)
{
	struct tq_out *o = ctx;
	int i;

	tq_message(o, m);
	for (i = 0; i < m->nrcpt; i++)
		tq_rcpt(o, &m->rcpts[i]);
	return 0;
}

/* Connects to public/showq, or -1 with errno. */
static int
tq_connect(void)
{
	struct timeval tv = {TERNQUEUE_TIMEOUT_S, 0};
	char *path = queue_path(QUEUE_PUBLIC, SHOWQ_SERVICE);
	struct sockaddr_un sun = {0};
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		free(path);
		errno = ENAMETOOLONG;
		return -1;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	free(path);
	/* SO_SNDTIMEO bounds a connect to a full listen queue too. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* The request and showq's answer; returns the exit code. */
static int
tq_ask(int fd, enum tq_action action, const char *arg)
{
	int timeout_ms = TERNQUEUE_TIMEOUT_S * TERNQUEUE_MS_PER_SEC;
	const char *type, *status, *reason, *err;
	struct tq_out out = {.json = action == TQ_JSON};
	struct queue_list_msg m;
	struct queue_list_rcpt r;
	struct attr_list l;
	struct stream st;
	struct buf frame;
	enum stream_result res;
	int ret = -1;

	buf_init(&frame, SHOWQ_REQUEST_MAX);
	attr_frame_begin(&frame);
	if (attr_put_str(&frame, "request",
	        action == TQ_LIST || action == TQ_JSON ? SHOWQ_REQ_LIST
	        : action == TQ_FLUSH                   ? SHOWQ_REQ_FLUSH
	        : action == TQ_SITE                    ? SHOWQ_REQ_FLUSH_SITE
	                            : SHOWQ_REQ_DELIVER) < 0 ||
	    (action == TQ_SITE &&
	        attr_put_str(&frame, FLUSH_ATTR_DOMAIN, arg) < 0) ||
	    (action == TQ_DELIVER &&
	        attr_put_str(&frame, "queue_id", arg) < 0) ||
	    attr_frame_end(&frame) < 0)
		msg_panic("request does not fit a frame");
	stream_init(&st, fd);
	attr_list_init(&l);
	if (attr_write(&st, &frame, timeout_ms) != STREAM_OK)
		ternqueue_die(EX_UNAVAILABLE,
		    "cannot send the request to showq: %s", strerror(errno));
	while (ret < 0) {
		res = attr_read(&st, &l, timeout_ms, &err);
		if (res != STREAM_OK)
			ternqueue_die(EX_PROTOCOL, "reading showq's answer: %s",
			    res == STREAM_EOF ? "the connection closed early"
			                      : err);
		type = attr_get(&l, "type");
		if (type == NULL)
			ternqueue_die(EX_PROTOCOL, "malformed showq answer");
		if (strcmp(type, SHOWQ_TYPE_MESSAGE) == 0 &&
		    (action == TQ_LIST || action == TQ_JSON) &&
		    queue_list_get_message(&l, &m) == 0) {
			tq_message(&out, &m);
		} else if (strcmp(type, SHOWQ_TYPE_RECIPIENT) == 0 &&
		           out.in_msg && queue_list_get_rcpt(&l, &r) == 0) {
			tq_rcpt(&out, &r);
		} else if (strcmp(type, SHOWQ_TYPE_END) == 0 &&
		           (status = attr_get(&l, "status")) != NULL) {
			reason = attr_get(&l, "reason");
			reason =
			    reason != NULL ? log_sanitize(reason, 256) : "";
			if (strcmp(status, SHOWQ_OK) == 0) {
				if (action == TQ_LIST || action == TQ_JSON)
					tq_finish(&out);
				ret = 0;
			} else if (strcmp(status, SHOWQ_DENIED) == 0) {
				ternqueue_die(EX_NOPERM,
				    "user %ld is not allowed to %s (%s)",
				    (long)getuid(),
				    action == TQ_LIST || action == TQ_JSON
				        ? "list the mail queue"
				        : "flush the mail queue",
				    reason);
			} else if (strcmp(status, SHOWQ_NOTFOUND) == 0) {
				ternqueue_die(EX_NOINPUT, "%s: %s",
				    log_sanitize(
				        arg != NULL ? arg : "", QUEUE_ID_LEN),
				    reason);
			} else if (strcmp(status, SHOWQ_UNAVAILABLE) == 0) {
				ternqueue_die(EX_UNAVAILABLE,
				    "cannot flush the mail queue: mail system "
				    "is down (%s)",
				    reason);
			} else {
				ternqueue_die(EX_SOFTWARE, "showq: %s", reason);
			}
		} else {
			ternqueue_die(EX_PROTOCOL, "malformed showq answer");
		}
	}
	attr_list_free(&l);
	stream_free(&st);
	buf_free(&frame);
	return ret;
}

int
main(int argc, char **argv)
{
	const char *config_dir = config_dir_default(), *arg = NULL, *err;
	enum tq_action action = TQ_NONE;
	uid_t uid = getuid();
	gid_t gid = getgid();
	int ch, fd, setgid_run = getegid() != gid, direct, rc;
	struct priv_user owner;
	struct tq_out out = {0};

	log_init(TERNQUEUE_PROGNAME, LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:fi:jps:")) != -1) {
		enum tq_action a = TQ_NONE;

		switch (ch) {
		case 'c':
			config_dir = optarg;
			break;
		case 'f':
			a = TQ_FLUSH;
			break;
		case 'i':
			a = TQ_DELIVER;
			arg = optarg;
			break;
		case 'j':
			a = TQ_JSON;
			break;
		case 'p':
			a = TQ_LIST;
			break;
		case 's':
			a = TQ_SITE;
			arg = optarg;
			break;
		default:
			ternqueue_usage();
		}
		if (a != TQ_NONE) {
			/* One action per run, as postqueue. */
			if (action != TQ_NONE)
				ternqueue_usage();
			action = a;
		}
	}
	if (optind != argc || action == TQ_NONE)
		ternqueue_usage();
	if (action == TQ_SITE && !flush_domain_valid(arg))
		ternqueue_die(EX_USAGE, "-s: bad domain \"%s\"",
		    log_sanitize(arg, ADDR_DOMAIN_MAX));
	if (action == TQ_DELIVER && !queue_id_valid(arg))
		ternqueue_die(EX_USAGE, "-i: bad queue ID \"%s\"",
		    log_sanitize(arg, ADDR_DOMAIN_MAX));
	/* A configuration the user chose would choose the socket, and so
	 * what the setgid group is used for. */
	if (setgid_run && !config_dir_trusted(config_dir, uid))
		ternqueue_die(EX_NOPERM,
		    "%s is not a configuration directory this setgid program "
		    "may use for uid %ld (it must be the default, or owned by "
		    "root and not writable by others)",
		    log_sanitize(config_dir, 256), (long)uid);
	if (config_load(config_dir, &err) < 0)
		ternqueue_die(EX_CONFIG, "%s", err);
	if (priv_lookup_user(var_mail_owner, &owner) < 0)
		ternqueue_die(
		    EX_CONFIG, "mail_owner %s does not exist", var_mail_owner);
	direct = uid == 0 || uid == owner.uid;
	/* root follows nothing inside the queue: it is mail_owner here. */
	if (uid == 0)
		priv_drop(owner.uid, owner.gid);
	fd = tq_connect();
	/* The setgid group was for the connect; nothing else needs it. */
	if (setgid_run && uid != 0 && setresgid(gid, gid, gid) < 0)
		ternqueue_die(EX_OSERR, "cannot drop the setgid group: %s",
		    strerror(errno));
	if (fd >= 0) {
		priv_user_free(&owner);
		rc = tq_ask(fd, action, arg);
		close(fd);
		return rc;
	}
	if (!direct || (action != TQ_LIST && action != TQ_JSON)) {
		ternqueue_die(EX_UNAVAILABLE,
		    "cannot %s: mail system is down (%s)",
		    action == TQ_LIST || action == TQ_JSON
		        ? "list the mail queue"
		        : "flush the mail queue",
		    strerror(errno));
	}
	fprintf(stderr,
	    "%s: warning: Mail system is down -- accessing queue directly\n",
	    TERNQUEUE_PROGNAME);
	out.json = action == TQ_JSON;
	queue_list_walk(owner.uid, tq_walk_message, &out);
	priv_user_free(&owner);
	tq_finish(&out);
	return 0;
}
