/* SPDX-License-Identifier: MIT */
/*
 * Group commit: makes a finished temporary file durable under its final
 * name without blocking the event loop. A small pool of threads does
 * fsync(file) -> rename(tmp, final) -> fsync(final's directory), where one
 * directory fsync covers every rename finished before it started, so
 * messages arriving together share one directory sync. The completion
 * callback runs later in the event loop's thread.
 */
#ifndef TERN_COMMIT_H
#define TERN_COMMIT_H

#include <stdint.h>
#include "base/event.h"

struct commit_pool;

/*
 * result: 0 when the file is durable under its final name; else minus
 * the errno value of the failed step (-ENOSPC: a full disk) and
 * error is a message with the failed step and errno text (valid only
 * during the call). The fd is not closed by the pool.
 */
typedef void commit_done_cb(int result, const char *error, void *ctx);

struct commit_pool *commit_pool_create(struct event_loop *loop, int nthreads);
/*
 * Waits for queued work to finish and joins the threads; callbacks of
 * commits not yet reported run before it returns.
 */
void commit_pool_free(struct commit_pool **pool_r);
/*
 * Queues one commit. final_dir is the directory of final_path (its fd is
 * cached per pool; several directories may be used).
 */
void commit_submit(struct commit_pool *pool, int fd, const char *tmp_path,
    const char *final_path, const char *final_dir, commit_done_cb *cb,
    void *ctx);
/*
 * Directory fsyncs done so far by this pool (each covers one or more
 * renames); lets tests and statistics see that group commit happens.
 */
uint64_t commit_pool_dir_syncs(struct commit_pool *pool);

#endif
