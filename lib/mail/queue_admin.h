/* SPDX-License-Identifier: MIT */
/*
 * An administrator's request about one message of the active queue,
 * from ternsuper to qmgr over private/qmgr (the socket flush.h uses).
 * The active queue belongs to qmgr while it works on a message: a file
 * removed or moved under it would be delivered by requests already on
 * their way, or be taken back by a later pass. So ternsuper asks, and
 * qmgr acts when the message's deliveries in flight are back:
 *
 *   {id, request=delete|hold|requeue, queue_id=ID}
 *   -> {id, status=done}     applied now
 *      {status=later}        applied when its deliveries come back
 *      {status=absent}       no active/ID (it moved, or was finished)
 *
 * delete unlinks the file and its status log; hold renames it into
 * hold/; requeue renames it into maildrop/ (pickup runs it through
 * cleanup again) and removes its status log. Recipients delivered
 * meanwhile are marked first, so a held or requeued message keeps only
 * what is still to be done.
 */
#ifndef TERN_QUEUE_ADMIN_H
#define TERN_QUEUE_ADMIN_H

#define QUEUE_ADMIN_DELETE      "delete"
#define QUEUE_ADMIN_HOLD        "hold"
#define QUEUE_ADMIN_REQUEUE     "requeue"
#define QUEUE_ADMIN_ATTR_ID     "queue_id"
#define QUEUE_ADMIN_ATTR_STATUS "status"
#define QUEUE_ADMIN_DONE        "done"
#define QUEUE_ADMIN_LATER       "later"
#define QUEUE_ADMIN_ABSENT      "absent"

/*
 * The mode of a requeued file in maildrop/: owner-execute is pickup's
 * "complete" mark (terndrop sets it last on a user's file); a rename
 * brings a whole file, so it is set before.
 */
#define QUEUE_ADMIN_REQUEUE_MODE 0700

#endif
