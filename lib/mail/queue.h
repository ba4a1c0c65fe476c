/* SPDX-License-Identifier: MIT */
/*
 * Queue layout and queue IDs. queue_directory holds one directory per
 * state; a message is one file named by its queue ID and moves between
 * states by rename(2) only. tmp/ holds files being written: they are not
 * messages until renamed into incoming/ (the commit point).
 *
 * A queue ID is QUEUE_ID_LEN characters from QUEUE_ID_ALPHABET (ascending
 * ASCII, so IDs sort by time):
 * 7 for the seconds, 4 for the microseconds, 3 from pid and a counter.
 * Uniqueness is finally guaranteed by O_EXCL creation in tmp/.
 */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <sys/types.h>

#define QUEUE_ID_ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"	/* 32 */
#define QUEUE_ID_LEN	  14
#define QUEUE_ID_SIZE	  (QUEUE_ID_LEN + 1)

/* Writes a new ID and its NUL into id. */
void queue_id_new(char id[QUEUE_ID_SIZE]);
/* 1 if s is a well-formed queue ID (only then may it name a file). */
int queue_id_valid(const char *s);

#define QUEUE_TMP	"tmp"
#define QUEUE_INCOMING	"incoming"
#define QUEUE_ACTIVE	"active"
#define QUEUE_DEFERRED	"deferred"
#define QUEUE_HOLD	"hold"
#define QUEUE_CORRUPT	"corrupt"
#define QUEUE_STATUS	"status"	/* per-message delivery status logs */
#define QUEUE_MAILDROP	"maildrop"
#define QUEUE_PRIVATE	"private"
#define QUEUE_PUBLIC	"public"
#define QUEUE_PID	"pid"

/*
 * Attributes of locally submitted mail (pickup(8)): the maildrop file the
 * message came from, which qmgr unlinks before the message can be
 * delivered if pickup did not, and the submitter's uid (the maildrop
 * file's owner), which tells a user's own messages in the queue listing.
 */
#define QUEUE_ATTR_MAILDROP_ID "maildrop_id"
#define QUEUE_ATTR_UID	       "uid"

enum queue_owner { QUEUE_OWNER_ROOT, QUEUE_OWNER_MAIL, QUEUE_OWNER_MAIL_SETGID };

struct queue_dir_spec {
	const char *name;
	mode_t mode;
	/*
 * Attributes of locally submitted mail (pickup(8)): the maildrop file the
 * message came from, which qmgr unlinks before the message can be
 * delivered if pickup did not, and the submitter's uid (the maildrop
 * file's owner), which tells a user's own messages in the queue listing.
 */
#define QUEUE_ATTR_MAILDROP_ID "maildrop_id"
#define QUEUE_ATTR_UID	       "uid"

enum queue_owner owner;	/* ROOT: root:root; MAIL: mail_owner's uid
				 * and gid; MAIL_SETGID: mail_owner, group
				 * setgid_group */
};

/* Every directory under queue_directory, for tern check; NULL-terminated. */
extern const struct queue_dir_spec queue_dir_specs[];

/* "$queue_directory/STATE/ID" (or ".../STATE" when id is NULL); caller frees. */
char *queue_path(const char *state, const char *id);

#endif
