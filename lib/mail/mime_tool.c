/* SPDX-License-Identifier: MIT */
/*
 * mime_tool FILE...: prints each message's ENVELOPE, BODY and
 * BODYSTRUCTURE as imapd sends them, one after another, each followed by
 * a newline (a literal's CRLF included as it is); one process for many
 * files, as a sanitizer build is slow to start and stop. For test/integration/test_mime.py,
 * which compares them with Dovecot's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "mail/mime.h"

/* Test messages are small; a bound all the same. */
#define TOOL_MESSAGE_MAX (64 * 1024 * 1024)
#define TOOL_OUT_MAX (256 * 1024 * 1024)

static int
one(const char *path)
{
	struct mime_message *m;
	struct buf out;
	struct stat st;
	char *msg;
	size_t len;
	FILE *f;
	int ret = 0;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > TOOL_MESSAGE_MAX) {
		fprintf(stderr, "%s: too large\n", path);
		fclose(f);
		return -1;
	}
	/* One more byte than the file has: a file that grew is refused. */
	msg = xmalloc((size_t)st.st_size + 1);
	len = fread(msg, 1, (size_t)st.st_size + 1, f);
	fclose(f);
	if (len > (size_t)st.st_size) {
		fprintf(stderr, "%s: changed while read\n", path);
		free(msg);
		return -1;
	}
	m = mime_parse(msg, len);
	buf_init(&out, TOOL_OUT_MAX);
	if (mime_envelope(&out, msg, m->root) < 0 || buf_putc(&out, '\n') < 0 ||
	    mime_bodystructure(&out, msg, m->root, 0) < 0 ||
	    buf_putc(&out, '\n') < 0 ||
	    mime_bodystructure(&out, msg, m->root, 1) < 0 ||
	    buf_putc(&out, '\n') < 0) {
		fprintf(stderr, "%s: output too large\n", path);
		ret = -1;
	} else {
		fwrite(out.data, 1, out.len, stdout);
	}
	buf_free(&out);
	mime_free(&m);
	free(msg);
	return ret;
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: mime_tool FILE...\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (one(argv[i]) < 0)
			return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
