/* SPDX-License-Identifier: MIT */
/*
 * Queue IDs and the queue directory layout. An ID encodes the arrival
 * time most significant digit first, so a directory listing sorts by
 * time, and is made unique within a process by never handing out the
 * same microsecond twice; across processes the pid bits separate IDs and
 * O_EXCL creation in tmp/ is the final guarantee. No RFC applies.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/queue.h"

#define QUEUE_ID_BITS     5 /* one character of the 32-letter alphabet */
#define QUEUE_ID_SEC_LEN  7 /* 35 bits of seconds: beyond the year 3000 */
#define QUEUE_ID_USEC_LEN 4 /* 20 bits hold 0..999999 */
#define QUEUE_ID_PROC_LEN 3 /* 15 bits: pid and counter */
#define QUEUE_ID_PID_BITS 10
#define QUEUE_ID_CTR_BITS 5
#define USEC_PER_SEC      1000000

_Static_assert(
    QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN + QUEUE_ID_PROC_LEN == QUEUE_ID_LEN,
    "queue ID fields must fill QUEUE_ID_LEN");
_Static_assert(
    QUEUE_ID_PID_BITS + QUEUE_ID_CTR_BITS == QUEUE_ID_PROC_LEN * QUEUE_ID_BITS,
    "pid and counter fill their field");

const struct queue_dir_spec queue_dir_specs[] = {
    {QUEUE_TMP, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_INCOMING, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_ACTIVE, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_DEFERRED, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_HOLD, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_CORRUPT, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_STATUS, 0700, QUEUE_OWNER_MAIL},
    /* sticky and group-writable: terndrop drops files in, never out */
    {QUEUE_MAILDROP, 01730, QUEUE_OWNER_MAIL_SETGID},
    {QUEUE_PRIVATE, 0700, QUEUE_OWNER_MAIL},
    {QUEUE_PUBLIC, 0710, QUEUE_OWNER_MAIL_SETGID},
    {QUEUE_PID, 0755, QUEUE_OWNER_ROOT},
    {NULL, 0, QUEUE_OWNER_ROOT},
};

static pthread_mutex_t queue_id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t queue_id_last; /* last time handed out, in microseconds */
static unsigned queue_id_counter;

static void
encode(char *out, int len, uint64_t v)
{
	while (len-- > 0) {
		out[len] = QUEUE_ID_ALPHABET[v & ((1u << QUEUE_ID_BITS) - 1)];
		v >>= QUEUE_ID_BITS;
	}
}

void
queue_id_new(char id[QUEUE_ID_SIZE])
{
	struct timeval tv;
	uint64_t t;
	unsigned proc;

	gettimeofday(&tv, NULL);
	t = (uint64_t)tv.tv_sec * USEC_PER_SEC + (uint64_t)tv.tv_usec;
	pthread_mutex_lock(&queue_id_lock);
	/* Same or earlier (clock step) time: take the next microsecond. */
	if (t <= queue_id_last)
		t = queue_id_last + 1;
	queue_id_last = t;
	proc = ((unsigned)getpid() & ((1u << QUEUE_ID_PID_BITS) - 1))
	           << QUEUE_ID_CTR_BITS |
	       (queue_id_counter++ & ((1u << QUEUE_ID_CTR_BITS) - 1));
	pthread_mutex_unlock(&queue_id_lock);
	encode(id, QUEUE_ID_SEC_LEN, t / USEC_PER_SEC);
	encode(id + QUEUE_ID_SEC_LEN, QUEUE_ID_USEC_LEN, t % USEC_PER_SEC);
	encode(
	    id + QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN, QUEUE_ID_PROC_LEN, proc);
	id[QUEUE_ID_LEN] = '\0';
}

int
queue_id_valid(const char *s)
{
	size_t n = strspn(s, QUEUE_ID_ALPHABET);

	return n == QUEUE_ID_LEN && s[n] == '\0';
}

char *
queue_path(const char *state, const char *id)
{
	if (var_queue_directory == NULL)
		msg_panic("queue_path: configuration not loaded");
	if (id == NULL)
		return xasprintf("%s/%s", var_queue_directory, state);
	return xasprintf("%s/%s/%s", var_queue_directory, state, id);
}
