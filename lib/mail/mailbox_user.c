/* SPDX-License-Identifier: MIT */
/*
 * A user's mail store opened for a session: the root maildir (INBOX)
 * created when missing, the special-use folders of RFC 6154 created and
 * subscribed on the first login (no subscriptions file yet), STATUS of a
 * folder that is not selected (RFC 3501 6.3.10) and the Maildir++ quota
 * (RFC 9208) as local delivery keeps it in maildirsize.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"
#include "mail/mailbox_private.h"

/* mailbox_list.c */
int mailbox_subs_init(struct mailbox_user *user, const char *const *names,
    size_t n, const char **error_r);

static const char *const special_folders[] = {
    "Sent",
    "Drafts",
    "Trash",
    "Junk",
    "Archive",
};
#define SPECIAL_COUNT (sizeof(special_folders) / sizeof(special_folders[0]))

int
mailbox_user_open(const char *root, const struct maildir_quota *quota,
    struct mailbox_user **user_r, const char **error_r)
{
	const char *subs[SPECIAL_COUNT + 1];
	struct mailbox_user *user;
	char *path;
	size_t i;
	int ret;

	*user_r = NULL;
	if (root[0] != '/') {
		*error_r = "mail root is not an absolute path";
		return MAILBOX_ERR_TEMP;
	}
	if (maildir_create(root, error_r) < 0)
		return MAILBOX_ERR_TEMP;
	user = xcalloc(1, sizeof(*user));
	user->root = xstrdup(root);
	if (quota != NULL && (quota->bytes != 0 || quota->count != 0)) {
		user->quota = *quota;
		user->have_quota = 1;
	}
	path = xasprintf("%s/%s", root, MAILBOX_SUBS_NAME);
	ret = access(path, F_OK);
	free(path);
	if (ret < 0 && errno == ENOENT) {
		subs[0] = "INBOX";
		for (i = 0; i < SPECIAL_COUNT; i++) {
			ret = mailbox_create(user, special_folders[i], error_r);
			if (ret < 0 && ret != MAILBOX_ERR_EXISTS) {
				mailbox_user_close(&user);
				return ret;
			}
			subs[i + 1] = special_folders[i];
		}
		ret = mailbox_subs_init(user, subs, SPECIAL_COUNT + 1, error_r);
		if (ret < 0) {
			mailbox_user_close(&user);
			return ret;
		}
	}
	*user_r = user;
	return 0;
}

void
mailbox_user_close(struct mailbox_user **user_r)
{
	struct mailbox_user *user = *user_r;

	if (user == NULL)
		return;
	free(user->root);
	free(user);
	*user_r = NULL;
}

int
mailbox_status_get(struct mailbox_user *user, const char *name,
    struct mailbox_status *status_r, const char **error_r)
{
	struct mailbox *box;
	int ret;

	ret = mailbox_open(user, name, MAILBOX_OPEN_READONLY, &box, error_r);
	if (ret < 0)
		return ret;
	mailbox_view_status(box, status_r);
	status_r->first_unseen = 0;
	mailbox_close(&box);
	return 0;
}

int
mailbox_quota_get(struct mailbox_user *user, struct maildir_usage *used_r,
    struct maildir_quota *limit_r, const char **error_r)
{
	/* No limits is a quota of zeros (maildir_quota_usage needs one). */
	memset(limit_r, 0, sizeof(*limit_r));
	if (user->have_quota)
		*limit_r = user->quota;
	if (maildir_quota_usage(user->root, limit_r, time(NULL), used_r,
	        error_r) < 0)
		return MAILBOX_ERR_TEMP;
	return 0;
}
