/* SPDX-License-Identifier: MIT */
/*
 * Tests of queue IDs (format, validity, uniqueness, time order) and of the
 * queue layout helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "base/mem.h"
#include "mail/params.h"
#include "mail/queue.h"

#define UNIQUE_COUNT 10000

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_format(void)
{
	char id[QUEUE_ID_SIZE];
	time_t now = time(NULL);
	unsigned long long secs = 0;
	int i;

	queue_id_new(id);
	CHECK_INT(strlen(id), QUEUE_ID_LEN);
	CHECK_INT(queue_id_valid(id), 1);
	CHECK_INT(strspn(id, QUEUE_ID_ALPHABET), QUEUE_ID_LEN);
	/* the first seven characters are the seconds, 5 bits each */
	for (i = 0; i < 7; i++)
		secs = secs << 5 |
		       (unsigned long long)(strchr(QUEUE_ID_ALPHABET, id[i]) -
		                            QUEUE_ID_ALPHABET);
	CHECK(secs + 2 >= (unsigned long long)now &&
	      secs <= (unsigned long long)now + 2);
}

static void
test_valid(void)
{
	static const struct {
		const char *s;
		int valid;
	} cases[] = {
	    {"0123456789ABCD", 1},
	    {"ZZZZZZZZZZZZZZ", 1},
	    {"0123456789ABC", 0},
	    {"0123456789ABCDE", 0},
	    {"0123456789abcd", 0},
	    {"0123456789ABCI", 0}, /* I, L, O, U are not in the alphabet */
	    {"0123456789ABCL", 0},
	    {"0123456789ABCO", 0},
	    {"0123456789ABCU", 0},
	    {"../../etc/pass", 0},
	    {"0123456789ABC/", 0},
	    {"", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (queue_id_valid(cases[i].s) != cases[i].valid) {
			printf("# case %zu: %s\n", i, cases[i].s);
			CHECK(!"queue_id_valid");
		}
}

static void
test_unique(void)
{
	char(*ids)[QUEUE_ID_SIZE] = xcalloc(UNIQUE_COUNT, QUEUE_ID_SIZE);
	int i, sorted = 1, dups = 0;

	for (i = 0; i < UNIQUE_COUNT; i++) {
		queue_id_new(ids[i]);
		if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
			sorted = 0;
	}
	/* one process hands them out in strictly increasing order */
	CHECK(sorted);
	qsort(ids, UNIQUE_COUNT, QUEUE_ID_SIZE, cmp_id);
	for (i = 1; i < UNIQUE_COUNT; i++)
		dups += strcmp(ids[i - 1], ids[i]) == 0;
	CHECK_INT(dups, 0);
	free(ids);
}

static void
test_order(void)
{
	char a[QUEUE_ID_SIZE], b[QUEUE_ID_SIZE], c[QUEUE_ID_SIZE];

	queue_id_new(a);
	usleep(10);
	queue_id_new(b);
	CHECK(strcmp(a, b) < 0);
	sleep(1);
	queue_id_new(c);
	CHECK(strcmp(b, c) < 0);
	CHECK(memcmp(b, c, 7) < 0); /* the seconds part moved */
}

/* A child has another pid: its IDs differ even in the same microsecond
 * as the parent's. */
static void
test_fork(void)
{
	char mine[QUEUE_ID_SIZE], theirs[QUEUE_ID_SIZE + 1] = "";
	int fd[2], status;
	pid_t pid;

	CHECK_INT(pipe(fd), 0);
	pid = fork();
	if (pid == 0) {
		queue_id_new(mine);
		_exit(write(fd[1], mine, QUEUE_ID_LEN) == QUEUE_ID_LEN ? 0 : 1);
	}
	queue_id_new(mine);
	CHECK(read(fd[0], theirs, QUEUE_ID_LEN) == QUEUE_ID_LEN);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(strcmp(mine, theirs) != 0);
	CHECK(memcmp(mine + 11, theirs + 11, 3) != 0 ||
	      memcmp(mine, theirs, 11) != 0);
	close(fd[0]);
	close(fd[1]);
}

static void
test_specs(void)
{
	static const char *const want[] = {QUEUE_TMP, QUEUE_INCOMING,
	    QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
	    QUEUE_STATUS, QUEUE_MAILDROP, QUEUE_PRIVATE,
	    QUEUE_PUBLIC, QUEUE_PID};
	const struct queue_dir_spec *s;
	size_t i, n = 0;
	int found;

	for (s = queue_dir_specs; s->name != NULL; s++) {
		n++;
		if (strcmp(s->name, QUEUE_MAILDROP) == 0) {
			CHECK_INT(s->mode, 01730);
			CHECK_INT(s->owner, QUEUE_OWNER_MAIL_SETGID);
		} else if (strcmp(s->name, QUEUE_PUBLIC) == 0) {
			CHECK_INT(s->mode, 0710);
			CHECK_INT(s->owner, QUEUE_OWNER_MAIL_SETGID);
		} else if (strcmp(s->name, QUEUE_PID) == 0) {
			CHECK_INT(s->mode, 0755);
			CHECK_INT(s->owner, QUEUE_OWNER_ROOT);
		} else {
			CHECK_INT(s->mode, 0700);
			CHECK_INT(s->owner, QUEUE_OWNER_MAIL);
		}
	}
	CHECK_INT(n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		found = 0;
		for (s = queue_dir_specs; s->name != NULL; s++)
			found |= strcmp(s->name, want[i]) == 0;
		CHECK(found);
	}
}

static void
test_path(void)
{
	char *p;

	var_queue_directory = "/var/q";
	p = queue_path(QUEUE_INCOMING, "0123456789ABCD");
	CHECK_STR(p, "/var/q/incoming/0123456789ABCD");
	free(p);
	p = queue_path(QUEUE_ACTIVE, NULL);
	CHECK_STR(p, "/var/q/active");
	free(p);
	var_queue_directory = NULL;
}

UNIT_MAIN(UNIT_CASE(test_format), UNIT_CASE(test_valid), UNIT_CASE(test_unique),
    UNIT_CASE(test_order), UNIT_CASE(test_fork), UNIT_CASE(test_specs),
    UNIT_CASE(test_path))
