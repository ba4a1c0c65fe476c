/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: cleanup's message path past the DATA parser (what
 * fuzz_data covers): each logical header taken whole, header_size_limit
 * and hopcount_limit, a header-check hook acting on the headers, and the
 * bare CR/LF policies, all writing a real queue file. The content is fed
 * whole and in irregular pieces; both must give the same status, the
 * same actions and the same stored content. With the normalize policy
 * the stored content holds no bare CR or LF.
 *
 * Input: byte 0 chooses the bare-newline policy (bits 0-1) and whether
 * the hook runs (bit 2); the rest is the content after the 354 reply,
 * completed with CRLF "." CRLF when it has no end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "mail/cleanup.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "fuzz_util.h"

#define END_MARKER "\r\n.\r\n"
/* Small limits, so that inputs reach them. */
#define FUZZ_HEADER_LIMIT 1024
#define FUZZ_HOP_LIMIT    3
#define FUZZ_SIZE_LIMIT   65536

/* In the working directory: libFuzzer ends without atexit handlers, and
 * test/run-tests runs each target in a directory it removes. */
static char queue_dir[] = "fuzz_cleanup.XXXXXX";

struct run {
	unsigned status;
	int hold, discard;
	char *reject_text;
	char *content; /* stored content, when the message was kept */
	uint64_t content_len;
};

static void
remove_queue(void)
{
	char *tmp = queue_path(QUEUE_TMP, NULL);

	rmdir(tmp);
	free(tmp);
	rmdir(queue_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *tmp;

	(void)argc;
	(void)argv;
	if (mkdtemp(queue_dir) == NULL)
		abort();
	var_queue_directory = queue_dir;
	var_myhostname = "mx.example.test";
	var_header_size_limit = FUZZ_HEADER_LIMIT;
	var_hopcount_limit = FUZZ_HOP_LIMIT;
	var_message_size_limit = FUZZ_SIZE_LIMIT;
	tmp = queue_path(QUEUE_TMP, NULL);
	if (mkdir(tmp, 0700) < 0)
		abort();
	free(tmp);
	atexit(remove_queue);
	return 0;
}

/* Acts on a header by its first letter, so inputs can reach each one. */
static void
hook(void *ctx, const char *header, size_t len,
    struct cleanup_header_action *action_r)
{
	(void)ctx;
	FUZZ_CHECK(len > 0 && header[len] == '\0');
	switch (header[0]) {
	case 'I':
		action_r->verdict = CLEANUP_HEADER_IGNORE;
		break;
	case 'W':
		action_r->verdict = CLEANUP_HEADER_WARN;
		action_r->text = "watched";
		break;
	case 'R':
		action_r->verdict = CLEANUP_HEADER_REJECT;
		action_r->text = len > 2 ? "no" : NULL;
		break;
	case 'H':
		action_r->verdict = CLEANUP_HEADER_HOLD;
		break;
	case 'D':
		action_r->verdict = CLEANUP_HEADER_DISCARD;
		break;
	default:
		break;
	}
}

/* The stored content, read back from the tmp file. */
static void
read_content(struct cleanup *c, struct run *r)
{
	struct qfile q;
	const char *error;

	FUZZ_CHECK(qfile_open(c->w.tmp_path, 0, (uid_t)-1, &q, &error) == 0);
	FUZZ_CHECK(q.complete);
	r->content_len = q.content_len;
	r->content = xmalloc(q.content_len + 1);
	FUZZ_CHECK(file_pread_all(q.fd, r->content, q.content_len,
	               q.content_off) == 0);
	r->content[q.content_len] = '\0';
	qfile_close(&q);
}

static void
run_once(const char *in, size_t len, unsigned mode, int pieces,
    struct fuzz_rng *rng, struct run *r)
{
	static const struct cleanup_rcpt rcpt[] = {{"a@example.test", NULL, 0}};
	struct cleanup_envelope env = {.sender = "s@example.org",
	    .rcpts = rcpt,
	    .nrcpt = 1,
	    .client_name = "client.example",
	    .client_addr = "192.0.2.1",
	    .client_rfc_addr = "192.0.2.1",
	    .helo = "h",
	    .protocol = "ESMTP",
	    .body = "8BITMIME"};
	struct cleanup c;
	const char *error;
	size_t used = 0, n, k;

	env.bare_newline = (enum cleanup_bare_policy)(mode % 3);
	memset(r, 0, sizeof(*r));
	FUZZ_CHECK(cleanup_open(&c, &env, &error) == 0);
	if (mode & 4)
		c.header_check = hook;
	while (used < len && !cleanup_done(&c)) {
		n = pieces ? fuzz_piece(rng, len - used) : len - used;
		k = cleanup_feed(&c, in + used, n);
		FUZZ_CHECK(k <= n);
		FUZZ_CHECK(k == n || cleanup_done(&c));
		used += k;
	}
	if (!cleanup_done(&c))
		(void)cleanup_feed(&c, END_MARKER, strlen(END_MARKER));
	FUZZ_CHECK(cleanup_done(&c));
	r->status = cleanup_finish(&c, &error, NULL);
	FUZZ_CHECK(!(r->status & CLEANUP_STAT_WRITE));
	FUZZ_CHECK(!(r->status & CLEANUP_STAT_REJECT) || c.reject_text != NULL);
	r->hold = c.hold;
	r->discard = c.discard;
	if (c.reject_text != NULL)
		r->reject_text = xstrdup(c.reject_text);
	if (r->status == 0 && !c.discard)
		read_content(&c, r);
	cleanup_free(&c);
}

/* The client's part: after the Received: header, whose ID and date
 * differ from run to run. */
static const char *
client_part(const struct run *r, size_t *len_r)
{
	const char *p = strstr(r->content, "; ");

	p = p != NULL ? strstr(p, "\r\n") : NULL;
	FUZZ_CHECK(p != NULL);
	p += 2;
	*len_r = r->content_len - (size_t)(p - r->content);
	return p;
}

static void
run_free(struct run *r)
{
	free(r->reject_text);
	free(r->content);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rng rng;
	struct run whole, split;
	const char *a, *b;
	size_t alen, blen, i;
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0];
	fuzz_rng_init(&rng, data, size);
	run_once((const char *)data + 1, size - 1, mode, 0, &rng, &whole);
	run_once((const char *)data + 1, size - 1, mode, 1, &rng, &split);
	if (whole.status != split.status)
		fprintf(stderr, "status whole %#x split %#x\n", whole.status,
		    split.status);
	FUZZ_CHECK(whole.status == split.status);
	FUZZ_CHECK(whole.hold == split.hold && whole.discard == split.discard);
	FUZZ_CHECK((whole.reject_text == NULL) == (split.reject_text == NULL));
	FUZZ_CHECK(whole.reject_text == NULL ||
	           strcmp(whole.reject_text, split.reject_text) == 0);
	FUZZ_CHECK((whole.content == NULL) == (split.content == NULL));
	if (whole.content != NULL) {
		a = client_part(&whole, &alen);
		b = client_part(&split, &blen);
		FUZZ_CHECK(alen == blen && memcmp(a, b, alen) == 0);
		if ((enum cleanup_bare_policy)(mode % 3) ==
		    CLEANUP_BARE_NORMALIZE) {
			for (i = 0; i < whole.content_len; i++) {
				if (whole.content[i] == '\r')
					FUZZ_CHECK(i + 1 < whole.content_len &&
					           whole.content[i + 1] == '\n');
				if (whole.content[i] == '\n')
					FUZZ_CHECK(i > 0 &&
					           whole.content[i - 1] == '\r');
			}
		}
	}
	run_free(&whole);
	run_free(&split);
	return 0;
}
