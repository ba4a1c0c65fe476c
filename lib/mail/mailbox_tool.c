/* SPDX-License-Identifier: MIT */
/*
 * mailbox_tool ROOT COMMAND [ARGS]: the mail store of mailbox.h driven
 * from the command line, for test/integration/test_store_dovecot.py,
 * which compares what it prints with what Dovecot's doveadm says about
 * the same maildirs. Built by make check, not installed.
 *
 *   list                       "folder NAME ATTRS..." per folder
 *   show FOLDER                "uidvalidity N", "uidnext N", then
 *                              "msg UID FLAG..." (IMAP flags, keywords)
 *   create NAME | delete NAME | subscribe NAME | unsubscribe NAME
 *   rename FROM TO
 *   append FOLDER [FLAG...]    the message on stdin; prints "uid N"
 *   store FOLDER UID [FLAG...] sets exactly these flags
 *   expunge FOLDER UID...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/mailbox.h"

#define TOOL_MSG_MAX (64 * 1024 * 1024)

static const struct {
	const char *name;
	uint8_t flag;
} flag_names[] = {
    {"\\Answered", MAILBOX_F_ANSWERED},
    {"\\Flagged", MAILBOX_F_FLAGGED},
    {"\\Deleted", MAILBOX_F_DELETED},
    {"\\Seen", MAILBOX_F_SEEN},
    {"\\Draft", MAILBOX_F_DRAFT},
    {"\\Recent", MAILBOX_F_RECENT},
};
#define FLAG_COUNT (sizeof(flag_names) / sizeof(flag_names[0]))

static int
fail(const char *what, int ret, const char *error)
{
	fprintf(stderr, "mailbox_tool: %s: %d %s\n", what, ret,
	    error != NULL ? error : "");
	return 1;
}

/* Flags and keyword names of argv. */
static void
parse_flags(
    char **argv, int argc, uint8_t *flags_r, const char **kws, size_t *nkw_r)
{
	size_t i;
	int a;

	*flags_r = 0;
	*nkw_r = 0;
	for (a = 0; a < argc; a++) {
		for (i = 0; i < FLAG_COUNT; i++)
			if (strcasecmp(argv[a], flag_names[i].name) == 0)
				break;
		if (i < FLAG_COUNT)
			*flags_r |= flag_names[i].flag;
		else if (*nkw_r < MAILBOX_KEYWORDS_MAX)
			kws[(*nkw_r)++] = argv[a];
	}
}

static int
cmd_list(struct mailbox_user *user)
{
	static const struct {
		unsigned bit;
		const char *name;
	} attrs[] = {
	    {MAILBOX_LIST_NOSELECT, "\\Noselect"},
	    {MAILBOX_LIST_NONEXISTENT, "\\NonExistent"},
	    {MAILBOX_LIST_CHILDREN, "\\HasChildren"},
	    {MAILBOX_LIST_NOCHILDREN, "\\HasNoChildren"},
	    {MAILBOX_LIST_SUBSCRIBED, "\\Subscribed"},
	};
	struct mailbox_info *infos;
	const char *error = NULL;
	size_t n, i, k;
	int ret;

	ret = mailbox_list(user, &infos, &n, &error);
	if (ret < 0)
		return fail("list", ret, error);
	for (i = 0; i < n; i++) {
		printf("folder %s", infos[i].name);
		for (k = 0; k < sizeof(attrs) / sizeof(attrs[0]); k++)
			if ((infos[i].attrs & attrs[k].bit) != 0)
				printf(" %s", attrs[k].name);
		printf("\n");
	}
	mailbox_list_free(infos, n);
	return 0;
}

static int
cmd_show(struct mailbox_user *user, const char *name)
{
	const struct mailbox_msg *m;
	struct mailbox_status st;
	struct mailbox *box;
	const char *error = NULL, *kw;
	uint32_t seq;
	size_t i;
	int ret;

	ret = mailbox_open(user, name, MAILBOX_OPEN_READONLY, &box, &error);
	if (ret < 0)
		return fail("open", ret, error);
	mailbox_view_status(box, &st);
	printf("uidvalidity %u\nuidnext %u\nhighestmodseq %llu\n",
	    st.uidvalidity, st.uidnext, (unsigned long long)st.highestmodseq);
	for (seq = 1; seq <= mailbox_count(box); seq++) {
		m = mailbox_msg(box, seq);
		printf("msg %u", m->uid);
		for (i = 0; i < FLAG_COUNT; i++)
			if ((m->flags & flag_names[i].flag &
			        MAILBOX_F_STORED) != 0)
				printf(" %s", flag_names[i].name);
		for (i = 0; i < MAILBOX_KEYWORDS_MAX; i++) {
			kw = mailbox_keyword_name(box, (unsigned)i);
			if ((m->keywords & (1u << i)) != 0 && kw != NULL)
				printf(" %s", kw);
		}
		printf("\n");
	}
	mailbox_close(&box);
	return 0;
}

static int
cmd_append(struct mailbox_user *user, const char *name, char **argv, int argc)
{
	const char *kws[MAILBOX_KEYWORDS_MAX], *error = NULL;
	uint32_t uv, uid;
	uint8_t flags;
	size_t nkw;
	struct buf b;
	char chunk[8192];
	ssize_t n;
	int ret;

	buf_init(&b, TOOL_MSG_MAX);
	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (buf_append(&b, chunk, (size_t)n) < 0)
			return fail("append", -1, "message too large");
	parse_flags(argv, argc, &flags, kws, &nkw);
	ret = mailbox_append(user, name, buf_cstr(&b), b.len, flags, kws, nkw,
	    0, &uv, &uid, &error);
	buf_free(&b);
	if (ret < 0)
		return fail("append", ret, error);
	printf("uid %u\n", uid);
	return 0;
}

static int
cmd_store(struct mailbox_user *user, const char *name, uint32_t uid,
    char **argv, int argc, int expunge)
{
	const char *kws[MAILBOX_KEYWORDS_MAX], *error = NULL;
	struct mailbox *box;
	uint32_t bits = 0, seq;
	uint64_t modseq;
	uint8_t flags;
	size_t nkw, i;
	int ret, idx;

	ret = mailbox_open(user, name, 0, &box, &error);
	if (ret < 0)
		return fail("open", ret, error);
	seq = mailbox_seq(box, uid);
	if (seq == 0) {
		mailbox_close(&box);
		return fail("store", 0, "no such UID");
	}
	if (expunge) {
		ret = mailbox_expunge(box, &uid, 1, &error);
	} else {
		parse_flags(argv, argc, &flags, kws, &nkw);
		for (i = 0; i < nkw; i++) {
			idx = mailbox_keyword_index(box, kws[i], 1, &error);
			if (idx < 0) {
				mailbox_close(&box);
				return fail("keyword", idx, error);
			}
			bits |= 1u << idx;
		}
		ret = mailbox_store(box, seq, flags & MAILBOX_F_STORED, bits, 0,
		    &modseq, &error);
	}
	mailbox_close(&box);
	return ret < 0 ? fail("store", ret, error) : 0;
}

int
main(int argc, char **argv)
{
	struct mailbox_user *user = NULL;
	const char *error = NULL, *cmd;
	int ret, i;

	if (argc < 3) {
		fprintf(stderr, "usage: mailbox_tool ROOT COMMAND [ARGS]\n");
		return 2;
	}
	ret = mailbox_user_open(argv[1], NULL, &user, &error);
	if (ret < 0)
		return fail("open", ret, error);
	cmd = argv[2];
	if (strcmp(cmd, "list") == 0) {
		ret = cmd_list(user);
	} else if (strcmp(cmd, "show") == 0 && argc == 4) {
		ret = cmd_show(user, argv[3]);
	} else if (strcmp(cmd, "create") == 0 && argc == 4) {
		ret = mailbox_create(user, argv[3], &error);
		ret = ret < 0 ? fail(cmd, ret, error) : 0;
	} else if (strcmp(cmd, "delete") == 0 && argc == 4) {
		ret = mailbox_delete(user, argv[3], &error);
		ret = ret < 0 ? fail(cmd, ret, error) : 0;
	} else if (strcmp(cmd, "rename") == 0 && argc == 5) {
		ret = mailbox_rename(user, argv[3], argv[4], &error);
		ret = ret < 0 ? fail(cmd, ret, error) : 0;
	} else if ((strcmp(cmd, "subscribe") == 0 ||
	               strcmp(cmd, "unsubscribe") == 0) &&
	           argc == 4) {
		ret = mailbox_subscribe(user, argv[3], cmd[0] == 's', &error);
		ret = ret < 0 ? fail(cmd, ret, error) : 0;
	} else if (strcmp(cmd, "append") == 0 && argc >= 4) {
		ret = cmd_append(user, argv[3], argv + 4, argc - 4);
	} else if (strcmp(cmd, "store") == 0 && argc >= 5) {
		ret = cmd_store(user, argv[3],
		    (uint32_t)strtoul(argv[4], NULL, 10), argv + 5, argc - 5,
		    0);
	} else if (strcmp(cmd, "expunge") == 0 && argc >= 5) {
		ret = 0;
		for (i = 4; i < argc && ret == 0; i++)
			ret = cmd_store(user, argv[3],
			    (uint32_t)strtoul(argv[i], NULL, 10), NULL, 0, 1);
	} else {
		fprintf(stderr, "mailbox_tool: bad command\n");
		ret = 2;
	}
	mailbox_user_close(&user);
	return ret;
}
