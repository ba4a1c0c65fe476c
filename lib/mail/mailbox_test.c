/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/mailbox.h"
#include "mail/mailbox_private.h"
#include "mail/maildir.h"
#include "mail/maildir_keywords.h"
#include "unit.h"

static char test_root[] = "/tmp/tern-mailbox-test-XXXXXX";
static const char msg_text[] =
    "From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n";

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", test_root, name);
}

static char *
get_file(const char *path)
{
	struct buf b;
	const char *error;
	char *s;

	buf_init(&b, 1 << 20);
	if (file_read_all(path, 1 << 20, &b, &error) < 0) {
		buf_free(&b);
		return NULL;
	}
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static char *
read_rel(const char *name)
{
	char *p = tpath(name), *s = get_file(p);

	free(p);
	return s;
}

static struct mailbox_user *
user_open(const char *name)
{
	struct mailbox_user *user = NULL;
	const char *error = NULL;
	char *root = tpath(name);

	CHECK_INT(mailbox_user_open(root, NULL, &user, &error), 0);
	free(root);
	return user;
}

/* Sets the mtime of user's INBOX sub/ to now + ahead seconds. */
static void
dir_mtime_ahead(const char *user, const char *sub, long ahead)
{
	char *p = xasprintf("%s/%s/%s", test_root, user, sub);
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += ahead;
	ts[1] = ts[0];
	CHECK_INT(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static void
test_setup(void)
{
	CHECK(mkdtemp(test_root) != NULL);
}

static void
test_fname(void)
{
	uint8_t flags;
	uint32_t kw;
	uint64_t v;
	char *s;

	mailbox_fname_flags("1.M2P3.h,S=5:2,FRSac", &flags, &kw);
	CHECK_INT(
	    flags, MAILBOX_F_FLAGGED | MAILBOX_F_ANSWERED | MAILBOX_F_SEEN);
	CHECK_INT(kw, 5);
	s = mailbox_fname_with_flags(
	    "1.M2P3.h,S=5:2,PS", MAILBOX_F_DELETED | MAILBOX_F_DRAFT, 2);
	CHECK_STR(s, "1.M2P3.h,S=5:2,DPTb");
	free(s);
	s = mailbox_fname_with_flags("x", 0, 0);
	CHECK_STR(s, "x:2,");
	free(s);
	CHECK_INT(mailbox_fname_size("1.h,S=5,W=7:2,S", 'W', &v), 1);
	CHECK_INT(v, 7);
	CHECK_INT(mailbox_fname_size("1.h:2,S", 'S', &v), 0);
}

static void
test_keywords_file(void)
{
	struct maildir_keywords kw;
	const char *error;
	char *dir = tpath("kw");

	memset(&kw, 0, sizeof(kw));
	maildir_keywords_parse(&kw,
	    "0 $Forwarded\nbad\n2 Junk\n30 x\n"
	    "3 junk\n1 \n",
	    40);
	CHECK_STR(kw.names[0], "$Forwarded");
	CHECK(kw.names[1] == NULL);
	CHECK_STR(kw.names[2], "Junk");
	CHECK(kw.names[3] == NULL);
	CHECK_INT(maildir_keywords_lookup(&kw, "JUNK"), 2);
	CHECK_INT(mkdir(dir, 0700), 0);
	CHECK_INT(maildir_keywords_add(dir, &kw, "NonJunk", &error), 1);
	maildir_keywords_clear(&kw);
	memset(&kw, 0, sizeof(kw));
	CHECK_INT(maildir_keywords_refresh(dir, &kw, &error), 1);
	CHECK_STR(kw.names[1], "NonJunk");
	CHECK_INT(maildir_keywords_refresh(dir, &kw, &error), 0);
	maildir_keywords_clear(&kw);
	free(dir);
}

static void
test_folders(void)
{
	struct mailbox_user *user = user_open("u1");
	struct mailbox_info *infos;
	const char *error;
	size_t n, i;
	char *s;
	struct stat st;

	s = read_rel("u1/subscriptions");
	CHECK(s != NULL && strncmp(s, "V\t2\n\n", 5) == 0);
	CHECK(s != NULL && strstr(s, "\nSent\n") != NULL);
	free(s);
	CHECK_INT(mailbox_create(user, "Café.Sub", &error), 0);
	s = tpath("u1/.Caf&AOk-.Sub/maildirfolder");
	CHECK_INT(stat(s, &st), 0);
	free(s);
	CHECK_INT(mailbox_create(user, "Café.Sub", &error), MAILBOX_ERR_EXISTS);
	CHECK_INT(mailbox_create(user, "inbox", &error), MAILBOX_ERR_EXISTS);
	CHECK_INT(mailbox_create(user, "a..b", &error), MAILBOX_ERR_BADNAME);
	CHECK_INT(mailbox_create(user, "a/b", &error), MAILBOX_ERR_BADNAME);
	CHECK_INT(mailbox_create(user, ".a", &error), MAILBOX_ERR_BADNAME);
	CHECK_INT(mailbox_subscribe(user, "Café.Sub", 1, &error), 0);
	CHECK_INT(mailbox_subscribe(user, "Gone", 1, &error), 0);
	s = read_rel("u1/subscriptions");
	CHECK(s != NULL && strstr(s, "\nCaf&AOk-\tSub\n") != NULL);
	free(s);
	CHECK_INT(mailbox_list(user, &infos, &n, &error), 0);
	CHECK(n >= 9);
	CHECK_STR(infos[0].name, "INBOX");
	for (i = 0; i < n; i++) {
		if (strcmp(infos[i].name, "Café") == 0)
			CHECK_INT(infos[i].attrs,
			    MAILBOX_LIST_NOSELECT | MAILBOX_LIST_CHILDREN);
		if (strcmp(infos[i].name, "Café.Sub") == 0)
			CHECK_INT(infos[i].attrs,
			    MAILBOX_LIST_SUBSCRIBED | MAILBOX_LIST_NOCHILDREN);
		if (strcmp(infos[i].name, "Gone") == 0)
			CHECK_INT(infos[i].attrs, MAILBOX_LIST_SUBSCRIBED |
			                              MAILBOX_LIST_NONEXISTENT |
			                              MAILBOX_LIST_NOSELECT |
			                              MAILBOX_LIST_NOCHILDREN);
		if (strcmp(infos[i].name, "Sent") == 0)
			CHECK_INT(infos[i].special_use, MAILBOX_USE_SENT);
	}
	mailbox_list_free(infos, n);
	CHECK_INT(
	    mailbox_delete(user, "Café", &error), MAILBOX_ERR_NONEXISTENT);
	CHECK_INT(mailbox_delete(user, "INBOX", &error), MAILBOX_ERR_NOPERM);
	CHECK_INT(mailbox_create(user, "Café", &error), 0);
	/* Its child stays; Café is their \Noselect parent now. */
	CHECK_INT(mailbox_delete(user, "Café", &error), 0);
	s = tpath("u1/.Caf&AOk-");
	CHECK_INT(stat(s, &st), -1);
	free(s);
	s = tpath("u1/.Caf&AOk-.Sub/cur");
	CHECK_INT(stat(s, &st), 0);
	free(s);
	CHECK_INT(
	    mailbox_delete(user, "Café", &error), MAILBOX_ERR_NONEXISTENT);
	CHECK_INT(mailbox_create(user, "Café", &error), 0);
	CHECK_INT(mailbox_rename(user, "Café", "Tea", &error), 0);
	s = tpath("u1/.Tea.Sub/cur");
	CHECK_INT(stat(s, &st), 0);
	free(s);
	CHECK_INT(
	    mailbox_rename(user, "Tea", "Sent", &error), MAILBOX_ERR_EXISTS);
	CHECK_INT(mailbox_delete(user, "Tea.Sub", &error), 0);
	CHECK_INT(mailbox_delete(user, "Tea", &error), 0);
	/* A parent that exists only through its child (\Noselect). */
	CHECK_INT(mailbox_create(user, "Proj.2026", &error), 0);
	CHECK_INT(mailbox_create(user, "Other.2026", &error), 0);
	CHECK_INT(mailbox_rename(user, "Proj", "Work", &error), 0);
	s = tpath("u1/.Work.2026/cur");
	CHECK_INT(stat(s, &st), 0);
	free(s);
	s = tpath("u1/.Work");
	CHECK_INT(stat(s, &st), -1);
	free(s);
	CHECK_INT(
	    mailbox_rename(user, "Proj", "Tea", &error), MAILBOX_ERR_NONEXISTENT);
	CHECK_INT(
	    mailbox_rename(user, "Work", "Other", &error), MAILBOX_ERR_EXISTS);
	CHECK_INT(mailbox_delete(user, "Work.2026", &error), 0);
	CHECK_INT(mailbox_delete(user, "Other.2026", &error), 0);
	CHECK_INT(mailbox_subscribe(user, "Gone", 0, &error), 0);
	s = read_rel("u1/subscriptions");
	CHECK(s != NULL && strstr(s, "Gone") == NULL);
	free(s);
	mailbox_user_close(&user);
}

struct events {
	char log[4096];
};

static void
ev_expunged(void *ctx, uint32_t seq, uint32_t uid)
{
	struct events *e = ctx;
	size_t l = strlen(e->log);

	snprintf(e->log + l, sizeof(e->log) - l, "X%u/%u ", seq, uid);
}

static void
ev_changed(void *ctx, uint32_t seq)
{
	struct events *e = ctx;
	size_t l = strlen(e->log);

	snprintf(e->log + l, sizeof(e->log) - l, "C%u ", seq);
}

static void
ev_keywords(void *ctx)
{
	struct events *e = ctx;
	size_t l = strlen(e->log);

	snprintf(e->log + l, sizeof(e->log) - l, "K ");
}

static void
ev_exists(void *ctx, uint32_t count, uint32_t recent)
{
	struct events *e = ctx;
	size_t l = strlen(e->log);

	snprintf(e->log + l, sizeof(e->log) - l, "E%u/%u ", count, recent);
}

static const struct mailbox_sync_ops ev_ops = {
    ev_expunged,
    ev_changed,
    ev_keywords,
    ev_exists,
};

static const char *
sync_log(struct mailbox *box, unsigned flags)
{
	static struct events e;
	const char *error;

	memset(&e, 0, sizeof(e));
	CHECK_INT(mailbox_sync(box, flags, &ev_ops, &e, &error), 0);
	return e.log;
}

static void
append_n(struct mailbox_user *user, const char *folder, int n, uint8_t flags)
{
	const char *kws[] = {"$Forwarded"};
	uint32_t uv, uid;
	const char *error;
	int i;

	for (i = 0; i < n; i++)
		CHECK_INT(
		    mailbox_append(user, folder, msg_text, strlen(msg_text),
		        flags, kws, i % 2, 0, &uv, &uid, &error),
		    0);
}

static void
test_view(void)
{
	struct mailbox_user *user = user_open("u2");
	struct mailbox *a = NULL, *b = NULL;
	struct mailbox_status st;
	const char *error;
	uint64_t modseq, m1;
	uint32_t uids[2], seqs[2], cuids[2], uv;
	int fd;

	append_n(user, "INBOX", 4, 0);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(mailbox_open(user, "inbox", 0, &b, &error), 0);
	CHECK_INT(mailbox_count(a), 4);
	CHECK_INT(mailbox_count(b), 4);
	CHECK_INT(mailbox_msg(a, 1)->uid, 1);
	CHECK_INT(mailbox_msg(a, 4)->uid, 4);
	CHECK_INT(mailbox_msg(a, 1)->size, strlen(msg_text));
	CHECK_INT(mailbox_msg(a, 2)->keywords, 1);
	CHECK_STR(mailbox_keyword_name(a, 0), "$Forwarded");
	CHECK_INT(mailbox_seq(a, 3), 3);
	mailbox_view_status(a, &st);
	CHECK_INT(st.uidnext, 5);
	CHECK_INT(st.unseen, 4);
	CHECK(st.uidvalidity != 0);
	/* a stores; b sees it as a change */
	m1 = mailbox_msg(b, 2)->modseq;
	CHECK_INT(mailbox_store(a, 2, MAILBOX_F_SEEN | MAILBOX_F_FLAGGED, 1, 0,
	              &modseq, &error),
	    0);
	CHECK(modseq > m1);
	CHECK_INT(mailbox_msg(a, 2)->flags & MAILBOX_F_STORED,
	    MAILBOX_F_SEEN | MAILBOX_F_FLAGGED);
	CHECK_INT(mailbox_store(b, 2, MAILBOX_F_SEEN, 0, m1, &modseq, &error),
	    MAILBOX_ERR_MODIFIED);
	CHECK_STR(sync_log(a, 0), "");
	CHECK_STR(sync_log(b, 0), "C2 ");
	CHECK_INT(mailbox_msg(b, 2)->flags & MAILBOX_F_STORED,
	    MAILBOX_F_SEEN | MAILBOX_F_FLAGGED);
	CHECK_INT(mailbox_msg_open(b, 2, &fd, &error), 0);
	close(fd);
	/* a expunges 2 and 4: b gets them highest first */
	uids[0] = 2;
	uids[1] = 4;
	CHECK_INT(mailbox_expunge(a, uids, 2, &error), 0);
	CHECK_INT(mailbox_count(a), 4);
	CHECK_STR(sync_log(b, MAILBOX_SYNC_NO_EXPUNGE), "");
	CHECK_INT(mailbox_msg_gone(b, 4), 1);
	CHECK_INT(mailbox_msg_open(b, 4, &fd, &error), MAILBOX_ERR_EXPUNGED);
	CHECK_STR(sync_log(b, 0), "X4/4 X2/2 ");
	CHECK_STR(sync_log(a, 0), "X4/4 X2/2 ");
	CHECK_INT(mailbox_count(b), 2);
	/* append and copy seen by b */
	append_n(user, "INBOX", 1, MAILBOX_F_SEEN);
	seqs[0] = 1;
	seqs[1] = 2;
	CHECK_INT(mailbox_copy(a, seqs, 2, "Trash", &uv, cuids, &error), 0);
	CHECK_INT(cuids[0], 1);
	CHECK_INT(cuids[1], 2);
	CHECK_INT(mailbox_copy(a, seqs, 2, "INBOX", &uv, cuids, &error), 0);
	CHECK_INT(cuids[0], 6);
	CHECK_STR(sync_log(b, 0), "E5/0 ");
	CHECK_INT(mailbox_msg(b, 3)->uid, 5);
	CHECK_INT(mailbox_msg(b, 3)->flags, MAILBOX_F_SEEN);
	CHECK_INT(mailbox_msg(b, 4)->keywords, 0);
	mailbox_close(&a);
	mailbox_close(&b);
	CHECK_INT(mailbox_status_get(user, "Trash", &st, &error), 0);
	CHECK_INT(st.messages, 2);
	/* RENAME INBOX: its messages move, INBOX stays, empty */
	CHECK_INT(mailbox_rename(user, "INBOX", "Old", &error), 0);
	CHECK_INT(mailbox_status_get(user, "Old", &st, &error), 0);
	CHECK_INT(st.messages, 5);
	CHECK_INT(mailbox_status_get(user, "INBOX", &st, &error), 0);
	CHECK_INT(st.messages, 0);
	CHECK(st.uidnext >= 8);
	CHECK_INT(mailbox_status_get(user, "Nope", &st, &error),
	    MAILBOX_ERR_NONEXISTENT);
	mailbox_user_close(&user);
}

/* Moves the first file of from/ to to/ with the flags suffix, as pop3d
 * (new/ -> cur/) or Dovecot (a flag change) would. */
static void
rename_first(
    const char *md, const char *from, const char *to, const char *suffix)
{
	char *dir = xasprintf("%s/%s", md, from), *src, *dst;
	struct dirent *de;
	DIR *d = opendir(dir);

	CHECK(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		src = xasprintf("%s/%s", dir, de->d_name);
		dst = xasprintf("%s/%s/%.*s%s", md, to,
		    (int)strcspn(de->d_name, ":"), de->d_name, suffix);
		CHECK_INT(rename(src, dst), 0);
		free(src);
		free(dst);
		break;
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

static void
deliver(const char *md)
{
	struct maildir_delivery d;
	const char *error;
	char *path = xasprintf("%s/msg", test_root);
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_INT(file_write_all(fd, msg_text, strlen(msg_text)), 0);
	memset(&d, 0, sizeof(d));
	d.maildir = md;
	d.src_fd = fd;
	d.len = strlen(msg_text);
	CHECK_INT(maildir_deliver(&d, NULL, &error), MAILDIR_DELIVERED);
	close(fd);
	free(path);
}

static void
test_others(void)
{
	struct mailbox_user *user = user_open("u3");
	struct mailbox *a = NULL, *ro = NULL;
	char *md = tpath("u3/.Archive");
	struct pollfd pfd;
	const char *error;

	deliver(md);
	CHECK_INT(
	    mailbox_open(user, "Archive", MAILBOX_OPEN_READONLY, &ro, &error),
	    0);
	CHECK_INT(mailbox_count(ro), 1);
	/* EXAMINE leaves it in new/: pop3d moves it to cur/ with \Seen */
	rename_first(md, "new", "cur", ":2,S");
	CHECK_STR(sync_log(ro, 0), "C1 ");
	CHECK_INT(mailbox_msg(ro, 1)->flags, MAILBOX_F_SEEN);
	CHECK_INT(mailbox_open(user, "Archive", 0, &a, &error), 0);
	pfd.fd = mailbox_watch_fd(a);
	pfd.events = POLLIN;
	CHECK(pfd.fd >= 0);
	CHECK_INT(poll(&pfd, 1, 0), 0);
	deliver(md);
	CHECK_INT(poll(&pfd, 1, 1000), 1);
	deliver(md);
	CHECK_STR(sync_log(a, 0), "E3/2 ");
	CHECK_INT(mailbox_msg(a, 2)->flags, MAILBOX_F_RECENT);
	CHECK_STR(sync_log(ro, 0), "E3/0 ");
	/* Dovecot changes flags by renaming in cur/ */
	rename_first(md, "cur", "cur", ":2,FS");
	{
		char *seen = xstrdup(sync_log(a, 0));

		CHECK(strlen(seen) == 3 && seen[0] == 'C');
		CHECK_STR(sync_log(ro, 0), seen);
		free(seen);
	}
	/* a keyword defined by another */
	CHECK_INT(mailbox_keyword_index(a, "Junk", 1, &error), 0);
	CHECK_STR(sync_log(ro, 0), "K ");
	mailbox_close(&a);
	mailbox_close(&ro);
	free(md);
	mailbox_user_close(&user);
}

static void
test_crash_and_rebuild(void)
{
	struct mailbox_user *user = user_open("u4");
	struct mailbox *a = NULL;
	const char *error;
	uint64_t modseq, hms;
	struct mailbox_status st;
	char *p;
	int fd;

	append_n(user, "Drafts", 3, MAILBOX_F_DRAFT);
	CHECK_INT(mailbox_open(user, "Drafts", 0, &a, &error), 0);
	CHECK_INT(
	    mailbox_store(a, 3, MAILBOX_F_SEEN, 1, 0, &modseq, &error), 0);
	mailbox_view_status(a, &st);
	hms = st.highestmodseq;
	mailbox_close(&a);
	/* a writer killed in the middle of a record */
	p = tpath("u4/.Drafts/tern.index.log");
	fd = open(p, O_WRONLY | O_APPEND);
	CHECK_INT(file_write_all(fd, "\x20\0\0\0garbage", 11), 0);
	close(fd);
	free(p);
	CHECK_INT(mailbox_open(user, "Drafts", 0, &a, &error), 0);
	CHECK_INT(mailbox_count(a), 3);
	CHECK_INT(
	    mailbox_store(a, 1, MAILBOX_F_SEEN, 0, 0, &modseq, &error), 0);
	mailbox_close(&a);
	CHECK_INT(mailbox_open(user, "Drafts", 0, &a, &error), 0);
	CHECK_INT(mailbox_msg(a, 1)->flags, MAILBOX_F_SEEN);
	mailbox_view_status(a, &st);
	hms = st.highestmodseq;
	mailbox_close(&a);
	/* an empty index (reads as no bytes at all) is no index */
	p = tpath("u4/.Drafts/tern.index");
	CHECK_INT(truncate(p, 0), 0);
	free(p);
	CHECK_INT(mailbox_open(user, "Drafts", 0, &a, &error), 0);
	CHECK_INT(mailbox_count(a), 3);
	CHECK_INT(mailbox_msg(a, 1)->flags, MAILBOX_F_SEEN);
	mailbox_close(&a);
	/* the index is a cache */
	p = tpath("u4/.Drafts/tern.index");
	CHECK_INT(unlink(p), 0);
	free(p);
	p = tpath("u4/.Drafts/tern.index.log");
	CHECK_INT(unlink(p), 0);
	free(p);
	CHECK_INT(mailbox_open(user, "Drafts", 0, &a, &error), 0);
	CHECK_INT(mailbox_count(a), 3);
	CHECK_INT(mailbox_msg(a, 1)->uid, 1);
	CHECK_INT(mailbox_msg(a, 1)->flags, MAILBOX_F_SEEN);
	CHECK_INT(mailbox_msg(a, 2)->flags, MAILBOX_F_DRAFT);
	CHECK_INT(mailbox_msg(a, 2)->keywords, 1);
	CHECK_INT(mailbox_msg(a, 3)->keywords, 1);
	CHECK_STR(mailbox_keyword_name(a, 0), "$Forwarded");
	mailbox_view_status(a, &st);
	CHECK(st.highestmodseq > hms);
	mailbox_close(&a);
	mailbox_user_close(&user);
}

static void
test_log_rotation(void)
{
	struct mailbox_user *user = user_open("u6");
	struct mailbox *a = NULL, *b = NULL;
	const char *error;
	uint64_t modseq, saved = mailbox_log_rotate;
	unsigned long scans;
	struct stat st;
	char *p;
	int i;

	mailbox_log_rotate = 512;
	append_n(user, "INBOX", 3, 0);
	/* changed long ago: a scan trusts what it sees (else one that ran
	 * in the tick of the last append leaves the next sync to scan) */
	dir_mtime_ahead("u6", "new", -3600);
	dir_mtime_ahead("u6", "cur", -3600);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &b, &error), 0);
	scans = mailbox_stats.scans;
	for (i = 0; i < 40; i++) {
		CHECK_INT(mailbox_store(a, 1 + i % 3,
		              i % 2 ? MAILBOX_F_SEEN : MAILBOX_F_FLAGGED, 0, 0,
		              &modseq, &error),
		    0);
		if (i % 7 == 0) {
			/* a session that stopped reading for a while */
			mailbox_close(&a);
			CHECK_INT(
			    mailbox_open(user, "INBOX", 0, &a, &error), 0);
		}
	}
	CHECK(strlen(sync_log(b, 0)) > 0);
	CHECK_INT(mailbox_msg(b, 1)->flags & MAILBOX_F_STORED,
	    mailbox_msg(a, 1)->flags & MAILBOX_F_STORED);
	CHECK_INT(mailbox_msg(b, 2)->modseq, mailbox_msg(a, 2)->modseq);
	CHECK_INT(mailbox_msg(b, 3)->modseq, mailbox_msg(a, 3)->modseq);
	CHECK_INT(mailbox_stats.scans, scans);
	mailbox_close(&a);
	mailbox_close(&b);
	p = tpath("u6/tern.index.log");
	CHECK_INT(stat(p, &st), 0);
	CHECK(st.st_size < 2048);
	free(p);
	mailbox_log_rotate = saved;
	mailbox_user_close(&user);
}

static void
test_cache(void)
{
	struct mailbox_user *user = user_open("u5");
	struct mailbox *a = NULL;
	const char *error, *data;
	size_t len;

	append_n(user, "INBOX", 2, 0);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(
	    mailbox_cache_get(a, 1, MAILBOX_CACHE_ENVELOPE, &data, &len), 0);
	mailbox_cache_put(a, 1, MAILBOX_CACHE_ENVELOPE, "(env1)", 6);
	mailbox_cache_put(a, 2, MAILBOX_CACHE_BODY, "(body2)", 7);
	mailbox_close(&a);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK(mailbox_watch_fd(a) >= 0);
	CHECK_INT(
	    mailbox_cache_get(a, 1, MAILBOX_CACHE_ENVELOPE, &data, &len), 1);
	CHECK_INT(len, 6);
	CHECK(memcmp(data, "(env1)", 6) == 0);
	CHECK_INT(mailbox_cache_get(a, 2, MAILBOX_CACHE_BODY, &data, &len), 1);
	CHECK(memcmp(data, "(body2)", 7) == 0);
	CHECK_INT(
	    mailbox_cache_get(a, 2, MAILBOX_CACHE_ENVELOPE, &data, &len), 0);
	mailbox_close(&a);
	mailbox_user_close(&user);
}

/* Records put in any order, several per message, one overwritten, one
 * larger than a write batch: each get answers the last put, before the
 * batch is written and after, in this view and in the next. */
static void
test_cache_batch(void)
{
	struct mailbox_user *user = user_open("u6");
	struct mailbox *a = NULL;
	const char *error, *data;
	char want[64], *big;
	size_t len, bigl = 700 * 1024;
	uint32_t seq, n = 40;
	int pass;

	append_n(user, "INBOX", n, 0);
	big = xmalloc(bigl);
	memset(big, 'x', bigl);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	for (seq = 1; seq <= n; seq++) {
		snprintf(want, sizeof(want), "env%u", seq);
		mailbox_cache_put(a, seq, MAILBOX_CACHE_ENVELOPE, want,
		    strlen(want));
	}
	for (seq = n; seq >= 1; seq--) {
		snprintf(want, sizeof(want), "body%u", seq);
		mailbox_cache_put(a, seq, MAILBOX_CACHE_BODY, want,
		    strlen(want));
	}
	mailbox_cache_put(a, 5, MAILBOX_CACHE_ENVELOPE, "env5b", 5);
	mailbox_cache_put(a, 7, MAILBOX_CACHE_BODYSTRUCTURE, big, bigl);
	for (pass = 0; pass < 2; pass++) {
		for (seq = 1; seq <= n; seq++) {
			CHECK_INT(mailbox_cache_get(a, seq,
			              MAILBOX_CACHE_ENVELOPE, &data, &len), 1);
			snprintf(want, sizeof(want), seq == 5 ? "env5b" : "env%u",
			    seq);
			CHECK_INT(len, strlen(want));
			CHECK_STR(data, want);
			CHECK_INT(mailbox_cache_get(a, seq, MAILBOX_CACHE_BODY,
			              &data, &len), 1);
			snprintf(want, sizeof(want), "body%u", seq);
			CHECK_STR(data, want);
		}
		CHECK_INT(mailbox_cache_get(a, 7, MAILBOX_CACHE_BODYSTRUCTURE,
		              &data, &len), 1);
		CHECK(len == bigl && memcmp(data, big, bigl) == 0);
		CHECK_INT(mailbox_cache_get(a, 8, MAILBOX_CACHE_BODYSTRUCTURE,
		              &data, &len), 0);
		mailbox_close(&a);
		CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	}
	mailbox_close(&a);
	free(big);
	mailbox_user_close(&user);
}

/* A delivery into INBOX's new/ of user u9, as local makes one. */
static void
deliver_u9(struct mailbox *box)
{
	static unsigned n;
	char *p = xasprintf("%s/u9/new/1800000000.M%uP9.host,S=10,W=12",
	    test_root, n++);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);

	(void)box;
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, "a\nb\nc\n", 6) == 6);
		close(fd);
	}
	free(p);
}

/*
 * Mail delivered while this view renames a file for STORE (or appends,
 * or expunges from cur/) is found by the next sync: the change's record
 * must not take new/'s mtime after the delivery for its own.
 */
static void
test_delivery_during_store(void)
{
	struct mailbox_user *user = user_open("u9");
	struct mailbox *a = NULL;
	const char *error;
	uint64_t modseq;
	uint32_t uid;
	struct events ev;

	append_n(user, "INBOX", 3, 0);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(mailbox_count(a), 3);
	mailbox_test_before_dirs_record = deliver_u9;
	CHECK_INT(mailbox_store(a, 1, MAILBOX_F_SEEN, 0, 0, &modseq, &error),
	    0);
	mailbox_test_before_dirs_record = NULL;
	memset(&ev, 0, sizeof(ev));
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &ev, &error), 0);
	CHECK_INT(mailbox_count(a), 4);
	/* the same for an append and an expunge */
	mailbox_test_before_dirs_record = deliver_u9;
	CHECK_INT(mailbox_append(user, "INBOX", "x\n", 2, 0, NULL, 0, 0, &uid,
	              &uid, &error),
	    0);
	mailbox_test_before_dirs_record = NULL;
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &ev, &error), 0);
	CHECK_INT(mailbox_count(a), 6);
	uid = mailbox_msg(a, 2)->uid;
	mailbox_test_before_dirs_record = deliver_u9;
	CHECK_INT(mailbox_expunge(a, &uid, 1, &error), 0);
	mailbox_test_before_dirs_record = NULL;
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &ev, &error), 0);
	CHECK_INT(mailbox_count(a), 6);
	mailbox_close(&a);
	mailbox_user_close(&user);
}

/*
 * A scan does not trust an mtime the clock has not passed yet (a file
 * added in the same tick would leave it unchanged): the next sync scans
 * again, and finds what came. One the clock has passed is trusted.
 */
static void
test_scan_of_an_unsettled_directory(void)
{
	struct mailbox_user *user = user_open("u10");
	struct mailbox *a = NULL;
	const char *error;
	unsigned long scans;
	char *p;
	int fd;

	append_n(user, "INBOX", 2, 0);
	dir_mtime_ahead("u10", "new", 3600);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	scans = mailbox_stats.scans;
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &(struct events){{0}}, &error),
	    0);
	CHECK_INT(mailbox_stats.scans, scans + 1);
	/* a file that came "in the same tick": new/'s mtime as it was */
	p = xasprintf("%s/u10/new/1800000001.M1P10.host,S=2,W=3", test_root);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	free(p);
	dir_mtime_ahead("u10", "new", 3600);
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &(struct events){{0}}, &error),
	    0);
	CHECK_INT(mailbox_count(a), 3);
	/* settled (the scan moved the file: cur/ changed too): trusted, no
	 * scan without a change */
	dir_mtime_ahead("u10", "new", -3600);
	dir_mtime_ahead("u10", "cur", -3600);
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &(struct events){{0}}, &error),
	    0);
	scans = mailbox_stats.scans;
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &(struct events){{0}}, &error),
	    0);
	CHECK_INT(mailbox_stats.scans, scans);
	mailbox_close(&a);
	mailbox_user_close(&user);
}

/* A FIFO named like a message (the scan no longer stats names with W=)
 * gives an error when opened, never a session hung in open(). */
static void
test_fifo_named_like_a_message(void)
{
	struct mailbox_user *user = user_open("u11");
	struct mailbox *a = NULL;
	const char *error;
	char *p;
	int fd;

	append_n(user, "INBOX", 1, 0);
	p = xasprintf("%s/u11/cur/1700000000.M1P11.host,S=5,W=6:2,",
	    test_root);
	CHECK_INT(mkfifo(p, 0600), 0);
	free(p);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(mailbox_count(a), 2);
	/* the appended message has UID 1, the FIFO the next */
	CHECK_INT(mailbox_msg_open(a, 2, &fd, &error), MAILBOX_ERR_TEMP);
	CHECK_INT(mailbox_msg_received(a, 2), 0);
	CHECK_INT(mailbox_msg_open(a, 1, &fd, &error), 0);
	close(fd);
	mailbox_close(&a);
	mailbox_user_close(&user);
}

static off_t
cache_size(const char *user)
{
	char *p = xasprintf("%s/%s/tern.index.cache", test_root, user);
	struct stat st;
	off_t size = stat(p, &st) == 0 ? st.st_size : -1;

	free(p);
	return size;
}

static void
check_env(struct mailbox *box, uint32_t seq, size_t len)
{
	const char *data;
	size_t got;

	CHECK_INT(mailbox_cache_get(box, seq, MAILBOX_CACHE_ENVELOPE, &data,
	              &got),
	    1);
	CHECK_INT(got, len);
	CHECK_INT(data[0], 'a' + (int)(mailbox_msg(box, seq)->uid % 26));
	CHECK_INT(data[len - 1], 'a' + (int)(mailbox_msg(box, seq)->uid % 26));
}

/*
 * A cache mostly of expunged messages' records is rewritten with the live
 * ones when a view first reads it: it does not grow with every message
 * the folder ever held, and what it keeps still answers.
 */
static void
test_cache_compact(void)
{
	struct mailbox_user *user = user_open("u8");
	struct mailbox *a = NULL;
	const char *error;
	uint32_t seq, n = 200, keep = 10, uids[200];
	size_t len = 8000;
	char *rec = xmalloc(len);
	struct events ev;

	append_n(user, "INBOX", (int)n, 0);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	for (seq = 1; seq <= n; seq++) {
		memset(rec, 'a' + (int)(mailbox_msg(a, seq)->uid % 26), len);
		mailbox_cache_put(a, seq, MAILBOX_CACHE_ENVELOPE, rec, len);
	}
	for (seq = keep + 1; seq <= n; seq++)
		uids[seq - keep - 1] = mailbox_msg(a, seq)->uid;
	CHECK_INT(mailbox_expunge(a, uids, n - keep, &error), 0);
	memset(&ev, 0, sizeof(ev));
	CHECK_INT(mailbox_sync(a, 0, &ev_ops, &ev, &error), 0);
	CHECK_INT(mailbox_count(a), keep);
	mailbox_close(&a);
	CHECK(cache_size("u8") > (off_t)(n * len));

	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	check_env(a, 1, len);
	CHECK(cache_size("u8") < (off_t)((keep + 1) * (len + 64)));
	for (seq = 1; seq <= keep; seq++)
		check_env(a, seq, len);
	mailbox_cache_put(a, 3, MAILBOX_CACHE_BODY, "(body)", 6);
	mailbox_close(&a);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	for (seq = 1; seq <= keep; seq++)
		check_env(a, seq, len);
	{
		const char *data;
		size_t got;

		CHECK_INT(mailbox_cache_get(a, 3, MAILBOX_CACHE_BODY, &data,
		              &got),
		    1);
		CHECK_INT(got, 6);
	}
	mailbox_close(&a);
	free(rec);
	mailbox_user_close(&user);
}

static double
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

/* n files in INBOX's cur/, written directly (a delivery's names). */
static void
fill(const char *root, unsigned n)
{
	char *p;
	unsigned i;
	int fd;

	for (i = 0; i < n; i++) {
		p = xasprintf("%s/cur/%u.M%uP1.host,S=%zu,W=%zu:2,%s", root,
		    1700000000 + i, i, strlen(msg_text) - 3, strlen(msg_text),
		    i % 3 == 0 ? "S" : "");
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
		free(p);
	}
}

/*
 * A first SELECT of delivered mail: the files move from new/ to cur/ and
 * are this view's \Recent (found again by inode and base after the move,
 * not by a hash of every name), and no message file is read when its
 * name carries W= (RFC822.SIZE); one without W= is read for its size.
 */
#define COLD_MTIME(i) (1600000000 + (int64_t)(i) * 86400)

static void
test_cold_scan(void)
{
	struct mailbox_user *user = user_open("cold");
	struct mailbox *a = NULL, *b = NULL;
	struct mailbox_status st;
	const char *error;
	char *root = tpath("cold"), *p;
	unsigned long reads;
	unsigned i, n = 300;
	uint32_t seq;
	int fd, ret;

	for (i = 0; i < n + 2; i++) {
		if (i < n)
			p = xasprintf("%s/new/%u.M%uP7.host,S=%zu,W=%zu", root,
			    1700000000 + i, i, strlen(msg_text) - 3,
			    strlen(msg_text));
		else /* no W=, and one already in cur/, seen */
			p = xasprintf(i == n ? "%s/new/%u.M%uP7.host"
			                     : "%s/cur/%u.M%uP7.host:2,S",
			    root, 1700000000 + i, i);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		CHECK(fd >= 0);
		if (fd >= 0) {
			CHECK(write(fd, msg_text, strlen(msg_text) - 3) > 0);
			close(fd);
		}
		/* INTERNALDATE: the delivery's time, days apart */
		CHECK_INT(utimensat(AT_FDCWD, p, (struct timespec[2]){
		    {COLD_MTIME(i), 0}, {COLD_MTIME(i), 0}}, 0), 0);
		free(p);
	}
	reads = mailbox_stats.msg_reads;
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	CHECK_INT(mailbox_stats.msg_reads - reads, 2);
	CHECK_INT(mailbox_count(a), n + 2);
	mailbox_view_status(a, &st);
	CHECK_INT(st.recent, n + 1);
	for (seq = 1; seq <= n + 2; seq++) {
		ret = (mailbox_msg(a, seq)->flags & MAILBOX_F_RECENT) != 0;
		CHECK_INT(ret, seq <= n + 1);
		if (seq <= n)
			CHECK_INT(mailbox_msg(a, seq)->size, strlen(msg_text));
	}
	/* all in cur/ now; a second view takes no \Recent */
	for (i = 0; i <= n; i += n / 3) {
		if (i < n)
			p = xasprintf("%s/new/%u.M%uP7.host,S=%zu,W=%zu", root,
			    1700000000 + i, i, strlen(msg_text) - 3,
			    strlen(msg_text));
		else
			p = xasprintf(
			    "%s/new/%u.M%uP7.host", root, 1700000000 + i, i);
		CHECK(access(p, F_OK) < 0);
		free(p);
	}
	/* No inode was read for a name with W=: the mtime is read on first
	 * use; the file read for its size has it already. */
	for (seq = 1; seq <= n + 2; seq++) {
		CHECK_INT(mailbox_msg(a, seq)->received ==
		        MAILBOX_RECEIVED_UNKNOWN,
		    seq <= n);
		CHECK_INT(mailbox_msg_received(a, seq), COLD_MTIME(seq - 1));
		CHECK_INT(mailbox_msg(a, seq)->received, COLD_MTIME(seq - 1));
	}
	CHECK_INT(mailbox_open(user, "INBOX", 0, &b, &error), 0);
	mailbox_view_status(b, &st);
	CHECK_INT(st.recent, 0);
	CHECK_INT(st.messages, n + 2);
	mailbox_close(&a);
	mailbox_close(&b);
	/* Remembered (the cache) once read: a later view does not stat the
	 * file again, so a changed mtime does not change INTERNALDATE. */
	p = xasprintf("%s/cur/%u.M%uP7.host,S=%zu,W=%zu:2,", root, 1700000000,
	    0, strlen(msg_text) - 3, strlen(msg_text));
	CHECK_INT(utimensat(AT_FDCWD, p, (struct timespec[2]){{5, 0}, {5, 0}},
	              0),
	    0);
	free(p);
	CHECK_INT(mailbox_open(user, "INBOX", 0, &b, &error), 0);
	CHECK_INT(mailbox_msg_received(b, 1), COLD_MTIME(0));
	CHECK_INT(mailbox_msg_received(b, n / 2), COLD_MTIME(n / 2 - 1));
	mailbox_close(&b);
	free(root);
	mailbox_user_close(&user);
}

/* A view's heap per message, at most (mailbox_view_bytes). */
#define VIEW_BYTES_PER_MSG 48

static void
open_large(const char *tag, unsigned n)
{
	struct mailbox_user *user = user_open(tag);
	struct mailbox *a = NULL, *b = NULL;
	const char *error;
	char *root = tpath(tag);
	unsigned long scans;
	uint64_t modseq;
	double t0, t1, t2, t3;
	int fd, i;

	fill(root, n);
	t0 = now_ms();
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	t1 = now_ms();
	CHECK_INT(mailbox_count(a), n);
	/* the view keeps about a struct mailbox_msg per message (the names
	 * stay in the index file): 56 bytes and a name each before */
	CHECK(mailbox_view_bytes(a) <= (size_t)n * VIEW_BYTES_PER_MSG);
	CHECK_INT(mailbox_msg_open(a, n, &fd, &error), 0);
	close(fd);
	mailbox_close(&a);
	scans = mailbox_stats.scans;
	t2 = now_ms();
	CHECK_INT(mailbox_open(user, "INBOX", 0, &a, &error), 0);
	t3 = now_ms();
	/* unchanged: the index and the log, no readdir */
	CHECK_INT(mailbox_stats.scans, scans);
	CHECK_INT(mailbox_count(a), n);
	CHECK_INT(mailbox_msg(a, n)->uid, n);
	CHECK(mailbox_view_bytes(a) <= (size_t)n * VIEW_BYTES_PER_MSG);
	/* a tern session's change costs the other no scan either */
	CHECK_INT(mailbox_open(user, "INBOX", 0, &b, &error), 0);
	CHECK_INT(
	    mailbox_store(a, n / 2, MAILBOX_F_FLAGGED, 0, 0, &modseq, &error),
	    0);
	CHECK(strncmp(sync_log(b, 0), "C", 1) == 0);
	/* both find the renamed file: a by the name it logged, b by the
	 * log's */
	CHECK_INT(mailbox_msg_open(a, n / 2, &fd, &error), 0);
	close(fd);
	CHECK_INT(mailbox_msg_open(b, n / 2, &fd, &error), 0);
	close(fd);
	printf("# %u messages: first open (scan) %.1f ms, second open %.1f ms"
	       ", scans %lu\n",
	    n, t1 - t0, t3 - t2, mailbox_stats.scans - scans);
	CHECK_INT(mailbox_stats.scans, scans);
	/* names a view changed many times: the arena is compacted */
	for (i = 0; i < 1500; i++)
		CHECK_INT(mailbox_store(a, 1, i % 2 ? MAILBOX_F_FLAGGED : 0, 0,
		              0, &modseq, &error),
		    0);
	CHECK(mailbox_view_bytes(a) <=
	      (size_t)n * VIEW_BYTES_PER_MSG + 256 * 1024);
	CHECK_INT(mailbox_msg_open(a, 1, &fd, &error), 0);
	close(fd);
	CHECK_INT(mailbox_msg_open(a, 2, &fd, &error), 0);
	close(fd);
	sync_log(b, 0);
	CHECK_INT(mailbox_msg_open(b, 1, &fd, &error), 0);
	close(fd);
	mailbox_close(&a);
	mailbox_close(&b);
	free(root);
	mailbox_user_close(&user);
}

static void
test_large_folder(void)
{
	const char *env = getenv("TERN_MAILBOX_BENCH");

	open_large("big", 10000);
	if (env != NULL)
		open_large("bench", (unsigned)strtoul(env, NULL, 10));
}

static void
test_cleanup(void)
{
	CHECK_INT(unit_rmtree(test_root), 0);
}

UNIT_MAIN(UNIT_CASE(test_setup), UNIT_CASE(test_fname),
    UNIT_CASE(test_keywords_file), UNIT_CASE(test_folders),
    UNIT_CASE(test_view), UNIT_CASE(test_others),
    UNIT_CASE(test_crash_and_rebuild), UNIT_CASE(test_log_rotation),
    UNIT_CASE(test_cache), UNIT_CASE(test_cache_batch),
    UNIT_CASE(test_cache_compact), UNIT_CASE(test_delivery_during_store),
    UNIT_CASE(test_scan_of_an_unsettled_directory),
    UNIT_CASE(test_fifo_named_like_a_message),
    UNIT_CASE(test_cold_scan), UNIT_CASE(test_large_folder),
    UNIT_CASE(test_cleanup))
