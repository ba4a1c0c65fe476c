/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the fuzz targets into DIR/TARGET/ (run it
 * with DIR = test/fuzz/corpus and commit the result): real SMTP command
 * lines and parameters (RFC 5321, the DSN examples of RFC 3461 6, RFC
 * 4954 AUTH=, RFC 6531 UTF-8 addresses), DATA bodies, SASL exchanges,
 * attribute frames made by attr_put, and queue files made by the real
 * writer, whole, cut and marked. Every seed starts with the target's
 * configuration byte(s) where it takes them (see each fuzz_*.c). The
 * queue files get a fixed arrival time so that the output is the same
 * on every run.
 *
 *   gen_seeds DIR
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "mail/attr.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"

#define FILE_MAX    (1024 * 1024)
#define FIXED_TIME  "1700000000.000000"
#define TIME_OFFSET (QFILE_HDR_LEN + sizeof(QFILE_MAGIC) - 1)
#define ALL         "\xff" /* every extension, EHLO, SMTPUTF8 MAIL */
#define EXTS        "\x3f" /* every extension (fuzz_smtp_param) */
#define HELO        "\x00" /* no extension, HELO */
#define BIG_VALUE   2000
#define NFTW_FDS    16
/* More than the queue-file reader's 64 KiB window. */
#define BIG_CONTENT (70 * 1024)

static const char *out_dir;

static void
seed(const char *target, const char *name, const void *data, size_t len)
{
	char *dir = xasprintf("%s/%s", out_dir, target);
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		msg_die("mkdir %s: %m", dir);
	if ((f = fopen(path, "wb")) == NULL)
		msg_die("%s: %m", path);
	if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
		msg_die("write %s: %m", path);
	free(path);
	free(dir);
}

/* A seed of a literal (sizeof: embedded NULs kept, final NUL not). */
#define SEED(t, n, lit) seed(t, n, lit, sizeof(lit) - 1)

static void
smtp_seeds(void)
{
	const char *t = "fuzz_smtp_command";

	SEED(t, "mail-size-body", ALL "MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME");
	/* RFC 3461 6.1 and 6.2. */
	SEED(t, "dsn-mail",
	    ALL "MAIL FROM:<Alice@Example.ORG> RET=HDRS "
	        "ENVID=QQ314159");
	SEED(t, "dsn-rcpt-success",
	    ALL "RCPT TO:<Bob@Example.COM> "
	        "NOTIFY=SUCCESS "
	        "ORCPT=rfc822;Bob@Example.COM");
	SEED(t, "dsn-rcpt-both",
	    ALL "RCPT TO:<Dana@Ivory.EDU> "
	        "NOTIFY=SUCCESS,FAILURE "
	        "ORCPT=rfc822;Dana@Ivory.EDU");
	SEED(t, "dsn-rcpt-never",
	    ALL "RCPT TO:<Fred@Bombs.AF.MIL> NOTIFY=NEVER");
	SEED(t, "dsn-orcpt-xtext",
	    ALL "RCPT TO:<g@example.org> "
	        "ORCPT=rfc822;g+2Bx@example.org");
	SEED(t, "auth-param",
	    ALL "MAIL FROM:<e=mc2@example.com> "
	        "AUTH=e+3Dmc2@example.com");
	SEED(t, "auth-empty", ALL "MAIL FROM:<> AUTH=<>");
	SEED(t, "utf8-mail",
	    ALL "MAIL FROM:<j\xc3\xb6s\xc3\xa9@b\xc3\xbc"
	        "cher.example> SMTPUTF8 BODY=8BITMIME");
	SEED(t, "utf8-orcpt",
	    ALL "RCPT TO:<\xe5\x8d\xb0@example.test> "
	        "ORCPT=utf-8;\xe5\x8d\xb0@example.test");
	SEED(t, "utf8-needed", HELO "RCPT TO:<j\xc3\xb6s\xc3\xa9@example.org>");
	SEED(t, "source-route",
	    ALL "RCPT TO:<@relay1.example,@relay2.example:"
	        "user@example.org>");
	SEED(t, "quoted-literal", ALL "RCPT TO:<\"quoted local\"@[192.0.2.1]>");
	SEED(t, "ipv6-literal", ALL "rcpt to:<u@[IPv6:2001:db8::1]>");
	SEED(t, "postmaster", HELO "RCPT TO:<Postmaster>");
	SEED(t, "binarymime", ALL "MAIL FROM:<a@b> BODY=BINARYMIME SIZE=123");
	SEED(t, "bdat-last", ALL "BDAT 1000 LAST");
	SEED(t, "bdat", ALL "BDAT 0");
	SEED(t, "ehlo", ALL "EHLO client.example.org");
	SEED(t, "trailing-spaces", HELO "mail from:<A@B>   ");
	SEED(t, "nul", ALL "NOOP\0x");
	SEED(t, "blank", ALL "   ");
	SEED(t, "quit", ALL "QUIT");
	SEED(t, "helo-params", HELO "MAIL FROM:<a@b> SIZE=10");
}

static void
param_seeds(void)
{
	const char *t = "fuzz_smtp_param";

	SEED(t, "size-body", EXTS "SIZE=10 BODY=8BITMIME");
	SEED(t, "dsn-mail", EXTS "RET=HDRS ENVID=QQ314159");
	SEED(t, "dsn-rcpt",
	    EXTS "NOTIFY=SUCCESS,FAILURE "
	         "ORCPT=rfc822;Dana@Ivory.EDU");
	SEED(t, "orcpt-utf8",
	    EXTS "ORCPT=utf-8;j\xc3\xb6s\xc3\xa9@example.test");
	SEED(t, "binarymime", EXTS "BODY=BINARYMIME SMTPUTF8");
	SEED(t, "auth", EXTS "AUTH=e+3Dmc2@example.com");
	SEED(t, "bdat", EXTS "123 LAST");
	SEED(t, "xtext", EXTS "a+2Bb+3Dc+20d");
	SEED(t, "size-huge", EXTS "SIZE=99999999999999999999");
	SEED(t, "none",
	    "\x00"
	    "SIZE=10");
}

static void
addr_seeds(void)
{
	const char *t = "fuzz_addr";

	SEED(t, "params",
	    "\x01"
	    " <a@b.example> SIZE=1");
	SEED(t, "empty",
	    "\x01"
	    "<>");
	SEED(t, "route",
	    "\x00"
	    "<@a.example,@b.example:c@d.example>");
	SEED(t, "quoted",
	    "\x00"
	    "<\"a b\\\"c\"@example.org>");
	SEED(t, "quoted-quotes",
	    "\x00"
	    "<\"\\\"x\\\"\"@d.example>");
	SEED(t, "ipv4",
	    "\x00"
	    "<x@[192.0.2.1]>");
	SEED(t, "ipv6",
	    "\x00"
	    "<x@[IPv6:::ffff:192.0.2.1]>");
	SEED(t, "utf8",
	    "\x02"
	    "<j\xc3\xb6s\xc3\xa9@b\xc3\xbc"
	    "cher.example>");
	SEED(t, "utf8-quoted",
	    "\x02"
	    "<\"\xe5\x8d\xb0 x\"@example.test>");
	SEED(t, "local-only",
	    "\x00"
	    "<postmaster>");
	SEED(t, "local-64",
	    "\x00"
	    "<0123456789012345678901234567890123456789"
	    "012345678901234567890123@x.example>");
	SEED(t, "label-63",
	    "\x00"
	    "<a@012345678901234567890123456789012345678"
	    "901234567890123456789012.example>");
	SEED(t, "domain",
	    "\x00"
	    "Mail.Example.COM");
	SEED(t, "fold",
	    "\x00"
	    "\"Alice\"@Example.ORG");
}

static void
data_seeds(void)
{
	const char *t = "fuzz_data";

	SEED(t, "plain", "Subject: x\r\n\r\nbody\r\n.\r\n");
	SEED(t, "stuffed", "..leading dot\r\n.x\r\n.\r\n");
	SEED(t, "bare-lf", "a\nb\r\n.\r\n");
	SEED(t, "smuggle", "a\r\n\n.\n\r\nMAIL FROM:<x@y>\r\n.\r\n");
	SEED(t, "pipelined", "x\r\n.\r\nMAIL FROM:<a@b>\r\n");
	SEED(t, "empty", ".\r\n");
	SEED(t, "cut-dot-cr", "abc\r\n.\r");
	SEED(t, "cr-dot", "\r.\r\n.\r\n");
	SEED(t, "dot-cr-x", ".\rx\r\n.\r\n");
}

/* Byte 0: bare-newline policy (0 normalize, 1 reject, 2 keep) | 4 hook. */
static void
cleanup_seeds(void)
{
	const char *t = "fuzz_cleanup";

	SEED(t, "plain", "\x04Subject: x\r\nX-A: 1\r\n\r\nbody\r\n.\r\n");
	SEED(t, "folded",
	    "\x04Subject: a\r\n b\r\n\tc\r\nIgnore: me\r\n\r\nb\r\n.\r\n");
	SEED(t, "actions",
	    "\x04Warn: w\r\nHold: h\r\nReject: r\r\n\r\nb\r\n.\r\n");
	SEED(t, "discard", "\x04Discard: d\r\nX: y\r\n\r\n.\r\n");
	SEED(t, "hops",
	    "\x00Received: a\r\nReceived: b\r\nReceived: c\r\n"
	    "received: d\r\n\r\n.\r\n");
	SEED(t, "bare-normalize", "\x00Subject: x\nY: z\r\n\nb\rc\r\n.\r\n");
	SEED(t, "bare-reject", "\x01a\nb\r\n.\r\n");
	SEED(t, "bare-keep", "\x02Subject: x\n\r\nb\n.\n\r\n.\r\n");
	SEED(t, "no-header", "\x04not a header\r\nX: y\r\n.\r\n");
	SEED(t, "no-end", "\x04Subject: x\r\n\r\nbody");
}

static void
base64_seeds(void)
{
	const char *t = "fuzz_base64";

	SEED(t, "plain",
	    "\x40"
	    "AGFsaWNlAHNlY3JldA==");
	SEED(t, "test",
	    "\x40"
	    "dGVzdA==");
	SEED(t, "empty", "\x40");
	SEED(t, "foobar",
	    "\x03"
	    "Zm9vYmFy");
	SEED(t, "one",
	    "\x40"
	    "Zg==");
	SEED(t, "spare-bits",
	    "\x40"
	    "Zh==");
	SEED(t, "short-pad",
	    "\x40"
	    "Zg=");
	SEED(t, "after-pad",
	    "\x40"
	    "Zg==Zg==");
	SEED(t, "newline",
	    "\x40"
	    "YWJj\n");
	SEED(t, "binary",
	    "\x40"
	    "\x00\xff\x01\xfe");
}

static void
sasl_seeds(void)
{
	const char *t = "fuzz_sasl";

	/* PLAIN: \0alice\0secret, alice\0alice\0secret, bob\0alice\0secret. */
	SEED(t, "plain-initial",
	    "\x02"
	    "AGFsaWNlAHNlY3JldA==");
	SEED(t, "plain-authzid",
	    "\x02"
	    "YWxpY2UAYWxpY2UAc2VjcmV0");
	SEED(t, "plain-denied",
	    "\x02"
	    "Ym9iAGFsaWNlAHNlY3JldA==");
	SEED(t, "plain-challenge",
	    "\x00"
	    "AGFsaWNlAHNlY3JldA==");
	SEED(t, "plain-cancel",
	    "\x00"
	    "*");
	SEED(t, "plain-empty",
	    "\x02"
	    "=");
	/* LOGIN: alice, secret. */
	SEED(t, "login",
	    "\x01"
	    "YWxpY2U=\nc2VjcmV0");
	SEED(t, "login-initial",
	    "\x03"
	    "YWxpY2U=\nc2VjcmV0");
	SEED(t, "login-cancel",
	    "\x01"
	    "YWxpY2U=\n*");
	SEED(t, "login-nul",
	    "\x01"
	    "YQBi\nc2VjcmV0");
}

static void
stream_seeds(void)
{
	const char *t = "fuzz_stream_line";

	/* limit index, options, text (stream_line.c: ESC n c = runs). */
	SEED(t, "smtp",
	    "\x07\x00"
	    "HELO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
	SEED(t, "again",
	    "\x07\x01"
	    "EHLO x\r\nRSET\nNOOP\r\n");
	SEED(t, "too-long",
	    "\x07\x00"
	    "\xff\x07"
	    "a\r\nQUIT\r\n");
	SEED(t, "over-rbuf",
	    "\x0b\x04"
	    "\xff\x80"
	    "b\nnext\n");
	SEED(t, "at-limit",
	    "\x04\x02"
	    "0123456789012345678901234567890123456789"
	    "012345678901234567890123\r\n"
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678901234\r\n");
	SEED(t, "empty-lines",
	    "\x00\x00"
	    "\r\n\n\r\r\n");
	SEED(t, "no-final-lf",
	    "\x07\x05"
	    "line\r\nno newline at the end");
	SEED(t, "huge",
	    "\x0e\x04"
	    "\xff\xff"
	    "c\xff\xff"
	    "d\r\n");
}

static void
attr_frame(struct buf *all, const char *const *kv, size_t n)
{
	struct buf f;
	size_t i;

	buf_init(&f, ATTR_HEADER_LEN + ATTR_FRAME_MAX);
	attr_frame_begin(&f);
	for (i = 0; i + 1 < n; i += 2)
		if (attr_put_str(&f, kv[i], kv[i + 1]) < 0)
			msg_die("attr_put %s", kv[i]);
	if (attr_frame_end(&f) < 0 || buf_append(all, f.data, f.len) < 0)
		msg_die("attr frame");
	buf_free(&f);
}

static void
attr_seeds(void)
{
	static const char *const lookup[] = {"id", "7", "request", "lookup",
	    "table", "local_recipient", "key", "alice"};
	static const char *const found[] = {"id", "7", "status", "found"};
	static const char *const notice[] = {
	    "request", "new", "queue_id", "4F2A1C03B7"};
	static const char *const count[] = {
	    "n", "-12", "n", "x", "big", "9223372036854775807"};
	const char *t = "fuzz_attr";
	struct buf b;
	char *big;

	/* The first byte picks the collecting buffer's maximum. */
	buf_init(&b, FILE_MAX);
	if (buf_putc(&b, '\x03') < 0)
		msg_die("buf");
	attr_frame(&b, lookup, 8);
	seed(t, "lookup", b.data, b.len);
	attr_frame(&b, found, 4);
	attr_frame(&b, notice, 4);
	seed(t, "three-frames", b.data, b.len);
	seed(t, "cut", b.data, b.len - 3);
	buf_truncate(&b, 1);
	attr_frame(&b, NULL, 0);
	attr_frame(&b, count, 6);
	seed(t, "empty-and-ints", b.data, b.len);
	/* A value larger than a short read. */
	buf_truncate(&b, 1);
	b.data[0] = '\x04';
	big = xmalloc(BIG_VALUE + 1);
	memset(big, 'v', BIG_VALUE);
	big[BIG_VALUE] = '\0';
	{
		const char *kv[] = {"value", big};

		attr_frame(&b, kv, 2);
	}
	seed(t, "big-value", b.data, b.len);
	free(big);
	buf_free(&b);
	SEED(t, "bad-name",
	    "\x03"
	    "\x00\x00\x00\x07"
	    "\x02"
	    "A!"
	    "\x00\x00\x00\x00");
	SEED(t, "too-large",
	    "\x00"
	    "\x7f\xff\xff\xff");
}

/* Reads the committed file and makes its arrival time fixed. */
static void
qfile_read(const char *id, struct buf *out)
{
	char *path = queue_path(QUEUE_INCOMING, id);
	const char *error;

	buf_reset(out);
	if (file_read_all(path, FILE_MAX, out, &error) < 0)
		msg_die("%s", error);
	if (out->len < TIME_OFFSET + QFILE_HDR_LEN + strlen(FIXED_TIME) ||
	    out->data[TIME_OFFSET] != QREC_TIME)
		msg_die("%s: no TIME record where expected", path);
	memcpy(out->data + TIME_OFFSET + QFILE_HDR_LEN, FIXED_TIME,
	    strlen(FIXED_TIME));
	free(path);
}

static const char *
qfile_write(const char *sender, int nrcpt, int attrs, const char *content)
{
	static char id[QUEUE_ID_SIZE];
	struct qfile_writer w;
	const char *error;
	char addr[64];
	int i;

	if (qfile_create(&w, &error) < 0)
		msg_die("%s", error);
	qfile_put_sender(&w, sender);
	if (attrs) {
		qfile_put_attr(&w, "client_addr", "192.0.2.7");
		qfile_put_attr(&w, "helo", "client.example.org");
		qfile_put_attr(&w, "protocol", "ESMTP");
		qfile_put_attr(&w, "envid", "QQ314159");
		qfile_put_attr(&w, "ret", "HDRS");
	}
	for (i = 0; i < nrcpt; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.test", i);
		qfile_put_rcpt(&w, addr, i % 2 ? "rfc822;Orig@Example.COM" : "",
		    (unsigned)(i % 5 == 4 ? QRCPT_NOTIFY_NEVER : i % 8));
	}
	qfile_content_begin(&w);
	qfile_content_write(&w, content, strlen(content));
	if (qfile_finish(&w, &error) < 0 ||
	    qfile_commit(&w, QUEUE_INCOMING, &error) < 0)
		msg_die("%s", error);
	memcpy(id, w.id, sizeof(id));
	qfile_writer_free(&w);
	return id;
}

static void
qfile_seeds(const char *tmp)
{
	static const char body[] = "Received: from client.example.org\r\n"
	                           "Subject: seed\r\n\r\nHello.\r\n";
	const char *t = "fuzz_qfile", *error, *id;
	char *conf = xasprintf("%s/conf", tmp);
	char *queue = xasprintf("%s/queue", tmp), *d, *big;
	struct qfile q;
	struct buf f;

	if (mkdir(conf, 0700) < 0)
		msg_die("mkdir %s: %m", conf);
	config_override("queue_directory", queue);
	if (config_load(conf, &error) < 0)
		msg_die("%s", error);
	d = queue_path(QUEUE_TMP, NULL);
	if (file_ensure_dir(d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error) < 0)
		msg_die("%s", error);
	free(d);
	d = queue_path(QUEUE_INCOMING, NULL);
	if (file_ensure_dir(d, 0700, (uid_t)-1, (gid_t)-1, NULL, &error) < 0)
		msg_die("%s", error);
	free(d);
	buf_init(&f, FILE_MAX);

	qfile_read(qfile_write("s@example.org", 1, 0, body), &f);
	seed(t, "simple", f.data, f.len);
	qfile_read(qfile_write("", 3, 1, body), &f);
	seed(t, "bounce-dsn", f.data, f.len);
	seed(t, "cut-in-content", f.data, f.len - 12);
	seed(t, "cut-in-end", f.data, f.len - 2);
	id = qfile_write("Alice@Example.ORG", 12, 1, "x\r\n");
	qfile_read(id, &f);
	seed(t, "many-rcpts", f.data, f.len);
	seed(t, "cut-in-rcpt", f.data, f.len / 2);
	seed(t, "cut-in-header", f.data, 3);
	/* Marked in place, as qmgr does after deliveries. */
	d = queue_path(QUEUE_INCOMING, id);
	if (qfile_open(d, 1, (uid_t)-1, &q, &error) < 0 ||
	    qfile_mark(&q, 0, QREC_RCPT_DONE, &error) < 0 ||
	    qfile_mark(&q, 3, QREC_RCPT_FAILED, &error) < 0)
		msg_die("%s", error);
	qfile_close(&q);
	free(d);
	qfile_read(id, &f);
	seed(t, "marked", f.data, f.len);
	qfile_read(qfile_write("s@example.org", 1, 0, ""), &f);
	seed(t, "empty-content", f.data, f.len);
	/* Past the reader's window: the END record is read anew. */
	big = xmalloc(BIG_CONTENT + 1);
	memset(big, 'x', BIG_CONTENT);
	big[BIG_CONTENT] = '\0';
	qfile_read(qfile_write("s@example.org", 2, 0, big), &f);
	seed(t, "big-content", f.data, f.len);
	free(big);
	buf_free(&f);
	free(conf);
	free(queue);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Table files as tern_tables(5) shows them, some with keys after "%%". */
/*
 * fuzz_dns_packet: answers as dnsmasq sends them (authoritative ones
 * carry an SOA in the authority section), after the byte that picks the
 * type asked (0 A, 2 MX).
 */
static void
dns_seeds(void)
{
	const char *t = "fuzz_dns_packet";

	SEED(t, "nxdomain-soa",
	    "\x00\xb2\xc8\x85\x03\x00\x01\x00\x00\x00\x01\x00\x00\x06\x6e\x6f"
	    "\x73\x75\x63\x68\x04\x74\x65\x73\x74\x00\x00\x01\x00\x01\x04\x74"
	    "\x65\x73\x74\x00\x00\x06\x00\x01\x00\x00\x01\x2c\x00\x31\x02\x6e"
	    "\x73\x04\x74\x65\x73\x74\x00\x0a\x68\x6f\x73\x74\x6d\x61\x73\x74"
	    "\x65\x72\x02\x6e\x73\x04\x74\x65\x73\x74\x00\x6b\x0f\x1c\xd0\x00"
	    "\x00\x04\xb0\x00\x00\x00\xb4\x00\x12\x75\x00\x00\x00\x01\x2c");
	SEED(t, "nodata-soa",
	    "\x02\x82\x6b\x85\x00\x00\x01\x00\x00\x00\x01\x00\x00\x04\x6d\x61"
	    "\x69\x6c\x04\x74\x65\x73\x74\x00\x00\x0f\x00\x01\x04\x74\x65\x73"
	    "\x74\x00\x00\x06\x00\x01\x00\x00\x01\x2c\x00\x31\x02\x6e\x73\x04"
	    "\x74\x65\x73\x74\x00\x0a\x68\x6f\x73\x74\x6d\x61\x73\x74\x65\x72"
	    "\x02\x6e\x73\x04\x74\x65\x73\x74\x00\x6b\x0f\x1c\xd0\x00\x00\x04"
	    "\xb0\x00\x00\x00\xb4\x00\x12\x75\x00\x00\x00\x01\x2c");
	SEED(t, "mx-auth",
	    "\x02\x19\x8d\x85\x00\x00\x01\x00\x01\x00\x01\x00\x00\x07\x65\x78"
	    "\x61\x6d\x70\x6c\x65\x04\x74\x65\x73\x74\x00\x00\x0f\x00\x01\xc0"
	    "\x0c\x00\x0f\x00\x01\x00\x00\x01\x2c\x00\x0c\x00\x0a\x03\x6d\x78"
	    "\x31\x04\x74\x65\x73\x74\x00\x04\x74\x65\x73\x74\x00\x00\x02\x00"
	    "\x01\x00\x00\x01\x2c\x00\x09\x02\x6e\x73\x04\x74\x65\x73\x74\x00");
	SEED(t, "cname-a",
	    "\x00\xf8\x19\x85\x00\x00\x01\x00\x02\x00\x01\x00\x00\x05\x61\x6c"
	    "\x69\x61\x73\x04\x74\x65\x73\x74\x00\x00\x01\x00\x01\xc0\x0c\x00"
	    "\x05\x00\x01\x00\x00\x01\x2c\x00\x0b\x04\x6d\x61\x69\x6c\x04\x74"
	    "\x65\x73\x74\x00\xc0\x28\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04"
	    "\xc0\x00\x02\x0a\x04\x74\x65\x73\x74\x00\x00\x02\x00\x01\x00\x00"
	    "\x01\x2c\x00\x09\x02\x6e\x73\x04\x74\x65\x73\x74\x00");
	SEED(t, "cname-mx-nodata",
	    "\x02\x6f\xd5\x85\x00\x00\x01\x00\x01\x00\x01\x00\x00\x05\x61\x6c"
	    "\x69\x61\x73\x04\x74\x65\x73\x74\x00\x00\x0f\x00\x01\xc0\x0c\x00"
	    "\x05\x00\x01\x00\x00\x01\x2c\x00\x0b\x04\x6d\x61\x69\x6c\x04\x74"
	    "\x65\x73\x74\x00\x04\x74\x65\x73\x74\x00\x00\x02\x00\x01\x00\x00"
	    "\x01\x2c\x00\x09\x02\x6e\x73\x04\x74\x65\x73\x74\x00");
	SEED(t, "null-mx",
	    "\x02\x21\x4b\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00\x06\x6e\x75"
	    "\x6c\x6c\x6d\x78\x04\x74\x65\x73\x74\x00\x00\x0f\x00\x01\xc0\x0c"
	    "\x00\x0f\x00\x01\x00\x00\x01\x2c\x00\x03\x00\x00\x00");
	SEED(t, "mx-literal",
	    "\x02\xb6\x53\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00\x05\x6c\x69"
	    "\x74\x6d\x78\x04\x74\x65\x73\x74\x00\x00\x0f\x00\x01\xc0\x0c\x00"
	    "\x0f\x00\x01\x00\x00\x01\x2c\x00\x0b\x00\x0a\x01\x31\x01\x32\x01"
	    "\x33\x01\x34\x00");
	SEED(t, "refused",
	    "\x00\x0d\x99\x81\x05\x00\x01\x00\x00\x00\x00\x00\x00\x05\x6f\x74"
	    "\x68\x65\x72\x04\x7a\x6f\x6e\x65\x00\x00\x01\x00\x01");
}

static void
table_seeds(void)
{
	const char *p = "fuzz_pcre_table", *c = "fuzz_cidr_table";

	SEED(p, "helo",
	    "# HELO checks\n"
	    "/^localhost$/                 REJECT you are not me\n"
	    "/^\\[?[0-9.]+\\]?$/             REJECT a name, please\n"
	    "/^([^.]+)\\.example\\.org$/     OK internal host $1\n"
	    "if /\\.test$/\n"
	    "!/^mail\\./                    REJECT test hosts\n"
	    "endif\n");
	SEED(p, "flags-subst",
	    "/^(a)(b)?(c)$/i  ${1}-$2-$(3) $$\n"
	    "|x/y|msx  other delimiter\n"
	    "/a\\/b/AEU  escaped\n"
	    "/^multi/\n"
	    "  continued result\n"
	    "\n%%\nABC\nac\nx/y\nmulti\n");
	SEED(p, "nested-if",
	    "if /a/\nif !/b/\n/c/ one\nendif\n/./ two\nendif\n"
	    "\n%%\nac\nabc\nz\n");
	SEED(p, "backtrack",
	    "/^(a|a)+$/ slow\n\n%%\naaaaaaaaaaaaaaaaaaaaaaaaab\n");
	SEED(p, "bad-delimiter", "/a/ ok\n/abc reject\n");
	SEED(c, "clients",
	    "# clients\n"
	    "192.0.2.0/24        net24\n"
	    "198.51.100.7        one\n"
	    "if 10.0.0.0/8\n"
	    "!10.1.0.0/16        outside\n"
	    "endif\n"
	    "2001:db8::/32       v6net\n"
	    "[2001:db8:1::1]     v6one\n"
	    "[2001:db9::]/32     v6bracket\n"
	    "::/0                v6any\n"
	    "0.0.0.0/0           any4\n");
	SEED(c, "keys",
	    "203.0.113.128/25 high\nif !172.16.0.0/12\n0.0.0.0/1 low\nendif\n"
	    "\n%%\n203.0.113.200\n172.16.0.1\n1.2.3.4\nfe80::1\n");
	SEED(c, "host-bits", "192.0.2.1/24 r\n");
}

static void
reply_seeds(void)
{
	const char *t = "fuzz_smtp_reply";

	SEED(t, "greeting", "220 mx.example.net ESMTP\r\n");
	SEED(t, "ehlo",
	    "250-mx.example.net Hello [192.0.2.1]\r\n"
	    "250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
	    "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
	    "250-SMTPUTF8\r\n250-BINARYMIME\r\n250 CHUNKING\r\n");
	SEED(t, "pipelined",
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550 5.1.1 <x@example.net>: Recipient address rejected\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: queued as 4F2A1C03B7\r\n221 2.0.0 Bye\r\n");
	SEED(t, "gmail-style",
	    "550-5.1.1 The email account that you tried to reach does\r\n"
	    "550-5.1.1 not exist. Please try double-checking the\r\n"
	    "550 5.1.1 recipient's email address.\r\n");
	SEED(t, "code-change", "250-a\r\n251 b\r\n250 ok\r\n");
	SEED(t, "wrong-class", "450 5.7.1 mismatch\r\n250\r\n");
	SEED(t, "garbage", "HTTP/1.1 400 Bad Request\r\n\r\n250 ok\n");
	SEED(t, "no-end", "421-a\r\n421-b\r\n421-c");
}

static void
mime_seeds(void)
{
	const char *t = "fuzz_mime_7bit";

	SEED(t, "plain-8bit",
	    "From: a@example.org\r\nSubject: x\r\n\r\n"
	    "caf\xc3\xa9 = 1 \r\n\tend\r\n");
	SEED(t, "7bit", "From: a@example.org\r\n\r\nhello\r\n");
	SEED(t, "multipart",
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"=_b 1\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "preamble\r\n--=_b 1\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "gr\xc3\xbc\xc3\x9f\r\n--=_b 1\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
	    "--=_b 1--\r\nepilogue\r\n");
	SEED(t, "rfc822",
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n"
	    "\r\n--o\r\nContent-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "From: c@d\r\nContent-Type: multipart/alternative;\r\n"
	    " boundary=i\r\n\r\n--i\r\n\r\nna\xc3\xafve\r\n--i--\r\n"
	    "--o--\r\n");
	SEED(t, "digest",
	    "Content-Type: multipart/digest; boundary=d\r\n\r\n"
	    "--d\r\n\r\nSubject: m\r\n\r\n\xe9\r\n--d\r\n\r\nx\r\n--d--\r\n");
	SEED(t, "header-8bit", "Subject: \xe9\r\n\r\nbody\r\n");
	SEED(t, "binary",
	    "Content-Transfer-Encoding: binary\r\n\r\n\xe9\x00\r\r\n");
}

/* fuzz_pop3_command: byte 0 picks pop3_cmd_number's maximum (3: the
 * largest); then lines as a POP3 client sends them before and after
 * login, and SASL exchanges (RFC 5034) as login drives them. */
static void
pop3_seeds(void)
{
	const char *t = "fuzz_pop3_command";

	SEED(t, "session",
	    "\x03"
	    "CAPA\r\nUSER alice@example.test\r\nPASS sec ret \r\nSTAT\r\n"
	    "LIST\r\nLIST 1\r\nRETR 1\r\nTOP 1 0\r\nUIDL\r\nDELE 1\r\n"
	    "NOOP\r\nRSET\r\nQUIT\r\n");
	SEED(t, "apop",
	    "\x02"
	    "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
	SEED(t, "stls-utf8", "\x01stls\r\nUtf8\r\n  noop  \r\n\r\n");
	SEED(t, "numbers",
	    "\x02"
	    "TOP 4294967295 0\r\nLIST 4294967296\r\nRETR +1\r\n"
	    "DELE 00000000001\r\nTOP 1 2 3 4 5\r\n");
	/* \0alice\0secret with the command, and after a "+ " challenge. */
	SEED(t, "auth-plain-initial",
	    "\x00"
	    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n");
	SEED(t, "auth-plain",
	    "\x00"
	    "AUTH plain\r\nAGFsaWNlAHNlY3JldA==\r\nQUIT\r\n");
	SEED(t, "auth-login",
	    "\x00"
	    "AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nSTAT\r\n");
	SEED(t, "auth-login-initial-cancel",
	    "\x00"
	    "AUTH LOGIN YWxpY2U=\r\n*\r\nAUTH\r\n");
	SEED(t, "bad",
	    "\x00"
	    "US\r\nUSERS x\r\nUS3R\r\nUSER \x01\r\nX\x00Y\r\n");
}

/* fuzz_imap_command: byte 0 picks the limits (0x3f: long lines, LITERAL+
 * and LITERAL-, 5000-octet literals, deep lists, many arguments); then
 * what IMAP clients send before and after login. */
static void
imap_seeds(void)
{
	const char *t = "fuzz_imap_command";

	SEED(t, "login",
	    "\x3f"
	    "a1 CAPABILITY\r\na2 ID (\"name\" \"imaplib\" \"version\" NIL)\r\n"
	    "a3 LOGIN alice \"sec \\\"ret\\\\\"\r\na4 NOOP\r\na5 LOGOUT\r\n");
	SEED(t, "login-literals",
	    "\x3f"
	    "a LOGIN {5}\r\nalice {6+}\r\nsecret\r\nb STARTTLS\r\n");
	SEED(t, "authenticate",
	    "\x3f"
	    "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"
	    "b AUTHENTICATE LOGIN\r\n*\r\nc ENABLE IMAP4rev2 UTF8=ACCEPT\r\n");
	SEED(t, "fetch",
	    "\x3f"
	    "a SELECT INBOX (CONDSTORE)\r\n"
	    "b UID FETCH 1:*,$ (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.2048> "
	    "BINARY[1.2]<0.5> BODYSTRUCTURE) (CHANGEDSINCE 12345)\r\n"
	    "c STORE 4:2,7 +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n"
	    "d SEARCH CHARSET UTF-8 SINCE 1-Feb-1994 SUBJECT {4+}\r\nt\xc3\xa9t\r\n");
	SEED(t, "append",
	    "\x3f"
	    "a APPEND Sent (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {12}\r\n"
	    "Subject: x\r\n\r\n"
	    "b APPEND Drafts ~{3+}\r\na\x00"
	    "b\r\n");
	SEED(t, "mailboxes",
	    "\x3f"
	    "a LIST \"\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n"
	    "b CREATE Entw&APw-rfe\r\nc RENAME &-x a&2D3eAA-b\r\n"
	    "d LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (STATUS (MESSAGES))\r\n");
	SEED(t, "bad",
	    "\x3f"
	    "\r\n+a NOOP\r\na\r\nb X (a\r\nc X \"abc\r\nd X )\r\n"
	    "e X \x01 {3+}\r\nabc\r\nf X {3-}\r\ng X {99999999999999999999}\r\n"
	    "h NOOP\rx\r\n");
	SEED(t, "limits",
	    "\xc0"
	    "a X (((x)))\r\nb X 1 2 3 4\r\nc X {9}\r\nd X {9+}\r\n");
	SEED(t, "small-lines",
	    "\x00"
	    "a NOOP\r\nb LOGIN averyveryverylongusername password\r\n"
	    "c NOOP\r\n");
}

/* fuzz_imapd_session: whole sessions after login, on the target's
 * fixture (four messages in INBOX, one in Archive, keywords $Forwarded
 * and work). */
static void
imapd_session_seeds(void)
{
	const char *t = "fuzz_imapd_session";

	SEED(t, "select-fetch",
	    "a CAPABILITY\r\nb ENABLE CONDSTORE\r\n"
	    "c SELECT INBOX\r\n"
	    "d FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
	    "BODYSTRUCTURE BODY MODSEQ)\r\n"
	    "e FETCH 2 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] "
	    "BODY.PEEK[HEADER.FIELDS.NOT (TO)] BODY[1.MIME] BODY[3.1.2]<2.5> "
	    "BINARY.PEEK[2] BINARY.SIZE[1] BODY[3.HEADER] BODY[3.TEXT] "
	    "BODY[]<0.100> RFC822.HEADER RFC822.TEXT)\r\n"
	    "f UID FETCH 1:* (FAST) (CHANGEDSINCE 1)\r\n"
	    "g FETCH 4 RFC822\r\nh FETCH * ALL\r\ni FETCH 1,3:2 FULL\r\n"
	    "j LOGOUT\r\n");
	SEED(t, "search",
	    "a SELECT INBOX\r\n"
	    "b SEARCH OR (FROM alice SUBJECT lunch) NOT (SEEN UNKEYWORD work) "
	    "SINCE 1-Nov-2023 BEFORE 1-Jan-2030 LARGER 10 SMALLER 100000\r\n"
	    "c UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 "
	    "BODY caf TEXT midi HEADER Message-ID example\r\n"
	    "d FETCH $ FLAGS\r\ne SEARCH $ OR 1:2 UID 3:* SENTON 15-Nov-2023 "
	    "SENTSINCE 1-Jan-2000 SENTBEFORE 1-Jan-2100 ON 14-Nov-2023\r\n"
	    "f SEARCH MODSEQ 1 ANSWERED DELETED FLAGGED RECENT NEW OLD "
	    "UNANSWERED UNDELETED UNDRAFT DRAFT UNFLAGGED UNSEEN KEYWORD "
	    "$Forwarded CC carol BCC x TO bob ALL\r\n"
	    "g SEARCH CHARSET KOI8-R ALL\r\nh SEARCH ((((NOT ALL))))\r\n"
	    "i SEARCH SUBJECT {4+}\r\nt\xc3\xa9t\r\n");
	SEED(t, "store-expunge",
	    "a SELECT INBOX (CONDSTORE)\r\n"
	    "b STORE 1:* +FLAGS (\\Seen \\Deleted $Junk work)\r\n"
	    "c UID STORE 2 -FLAGS.SILENT (\\Seen)\r\n"
	    "d STORE 3 (UNCHANGEDSINCE 1) FLAGS ($Forwarded \\Answered)\r\n"
	    "e STORE 1 FLAGS \\Draft\r\nf FETCH 1:* (FLAGS MODSEQ)\r\n"
	    "g UID EXPUNGE 1:2\r\nh EXPUNGE\r\ni NOOP\r\nj CHECK\r\n"
	    "k CLOSE\r\n");
	SEED(t, "copy-move",
	    "a SELECT INBOX\r\nb COPY 1:2 Archive\r\nc UID COPY 1:* Trash\r\n"
	    "d MOVE 1 Archive.2026\r\ne UID MOVE 2:* Nowhere\r\n"
	    "f STATUS Archive (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN "
	    "SIZE HIGHESTMODSEQ DELETED)\r\n"
	    "g EXAMINE Archive\r\nh FETCH 1:* (UID BODY[TEXT])\r\n"
	    "i STORE 1 +FLAGS (\\Seen)\r\nj UNSELECT\r\n");
	SEED(t, "sort-thread",
	    "a SELECT INBOX\r\n"
	    "b SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL\r\n"
	    "c UID SORT (FROM TO CC DATE SIZE DISPLAYFROM DISPLAYTO) UTF-8 "
	    "UNDELETED\r\n"
	    "d SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) US-ASCII SEEN\r\n"
	    "e THREAD REFERENCES UTF-8 ALL\r\n"
	    "f UID THREAD ORDEREDSUBJECT UTF-8 OR SEEN FLAGGED\r\n"
	    "g SORT (ARRIVAL) UTF-8 ALL\r\n");
	SEED(t, "list",
	    "a LIST \"\" \"\"\r\nb LIST \"\" *\r\nc LIST \"\" %\r\n"
	    "d LIST Archive. %\r\ne LSUB \"\" *\r\n"
	    "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (* Arch%) "
	    "RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
	    "g LIST (SPECIAL-USE) \"\" *\r\n"
	    "h CREATE Entw&APw-rfe.sub\r\ni RENAME Archive Old\r\n"
	    "j SUBSCRIBE Old.2026\r\nk UNSUBSCRIBE Gone\r\n"
	    "l DELETE Entw&APw-rfe\r\nm LIST \"\" *&APw-*\r\n"
	    "n NAMESPACE\r\no GETQUOTAROOT INBOX\r\np GETQUOTA \"\"\r\n");
	SEED(t, "append",
	    "a APPEND INBOX (\\Seen $Junk) \"17-Jul-1996 02:44:25 -0700\" "
	    "{42}\r\n"
	    "Subject: appended\r\nFrom: x@example.org\r\n\r\n"
	    "\r\n"
	    "b APPEND Archive {10+}\r\nline one\r\n\r\n"
	    "c APPEND Drafts (\\Draft) ~{5}\r\na\x00"
	    "bc\r\n"
	    "d APPEND Nowhere {1+}\r\nx\r\n"
	    "e SELECT INBOX\r\nf FETCH 5 (FLAGS INTERNALDATE BODY[])\r\n");
	SEED(t, "qresync-idle",
	    "a ENABLE QRESYNC IMAP4rev2 UTF8=ACCEPT\r\n"
	    "b SELECT INBOX (QRESYNC (1 1 1:4 (1:4 1:4)))\r\n"
	    "c UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n"
	    "d IDLE\r\nDONE\r\ne STORE 1 +FLAGS \\Deleted\r\n"
	    "f UID EXPUNGE 1\r\ng EXAMINE INBOX (CONDSTORE)\r\n"
	    "h ID (\"name\" \"fuzz\")\r\ni SEARCH UNDELETED\r\n");
	/* \x01: a change by another process (fuzz_imapd_session.c). */
	SEED(t, "others",
	    "a SELECT INBOX (CONDSTORE)\r\n\x01n\r\n\x01" "fFS\r\n"
	    "b NOOP\r\n\x01x\r\nc FETCH 1:* (UID FLAGS ENVELOPE)\r\n"
	    "d IDLE\r\n\x01n\r\nDONE\r\n"
	    "e SORT RETURN (SAVE COUNT) (DATE) UTF-8 ALL\r\n"
	    "f FETCH $ (BODY.PEEK[HEADER] BODY[TEXT]<0.8>)\r\n"
	    "\x01w1 garbage\r\ng STATUS INBOX (MESSAGES UIDNEXT)\r\n"
	    "\x01" "a2xx\r\nh FETCH 1:* ENVELOPE\r\n\x01t36\r\n"
	    "i SELECT INBOX\r\n\x01w3 3 V1 2 0\r\nj NOOP\r\n"
	    "\x01t04\r\n\x01w0\r\nk SEARCH SENTSINCE 1-Jan-2000 "
	    "SENTBEFORE 1-Jan-2030 NOT SENTON 1-Jan-2001\r\n");
	SEED(t, "others-qresync",
	    "a ENABLE QRESYNC\r\nb SELECT INBOX\r\n"
	    "c STORE 1 +FLAGS.SILENT (\\Seen)\r\n\x01x\r\n\x01n\r\n"
	    "d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"
	    "e CLOSE\r\n\x01x\r\n\x01" "fSa\r\n"
	    "f SELECT INBOX (QRESYNC (1796190613 1 1:9))\r\n"
	    "g THREAD REFERENCES UTF-8 ALL\r\n");
	SEED(t, "bad",
	    "a FETCH 1 FLAGS\r\nb SELECT\r\nc SELECT INBOX\r\n"
	    "d FETCH 0 FLAGS\r\ne FETCH 99 FLAGS\r\nf FETCH 1 BODY[0]\r\n"
	    "g FETCH 1 BODY[HEADER.FIELDS ()]\r\nh FETCH 1 BODY[]<5.0>\r\n"
	    "i STORE 1 FLAGS (\\Recent)\r\nj SEARCH NOT\r\nk SEARCH OR ALL\r\n"
	    "l SORT () UTF-8 ALL\r\nm THREAD X UTF-8 ALL\r\n"
	    "n UID SORT (SUBJECT) X ALL\r\no STATUS INBOX (BOGUS)\r\n"
	    "p UID FOO\r\nq LIST\r\nr ENABLE\r\ns COPY 1:* \"\"\r\n");
}

int
main(int argc, char **argv)
{
	char tmp[] = "/tmp/gen_seeds.XXXXXX";

	log_init("gen_seeds", LOG_DEST_STDERR);
	if (argc != 2)
		msg_die("usage: gen_seeds DIR (e.g. test/fuzz/corpus)");
	out_dir = argv[1];
	if (mkdtemp(tmp) == NULL)
		msg_die("mkdtemp: %m");
	smtp_seeds();
	param_seeds();
	addr_seeds();
	data_seeds();
	cleanup_seeds();
	base64_seeds();
	sasl_seeds();
	stream_seeds();
	attr_seeds();
	table_seeds();
	dns_seeds();
	reply_seeds();
	mime_seeds();
	pop3_seeds();
	imap_seeds();
	imapd_session_seeds();
	qfile_seeds(tmp);
	if (nftw(tmp, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0)
		msg_die("could not remove %s", tmp);
	return 0;
}
