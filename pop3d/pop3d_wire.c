/* SPDX-License-Identifier: MIT */
/*
 * A stored message as POP3 sends it (RFC 1939 3 and 11): CRLF line ends
 * whatever the file has (LF or CRLF lines), a '.' doubled at the start
 * of a line, and for TOP (RFC 1939 7) the header, the empty line and
 * the first lines of the body. Incremental, so a message goes out in
 * chunks and never sits whole in memory; the same code counts the sizes
 * LIST and STAT give, so they match what RETR sends.
 */
#include <string.h>

#include "pop3d.h"

void
pop3d_wire_init(struct pop3d_wire *w, long long body_lines)
{
	memset(w, 0, sizeof(*w));
	w->last = '\n';
	w->bol = 1;
	w->body_left = body_lines;
}

size_t
pop3d_wire_convert(struct pop3d_wire *w, const char *in, size_t n, char *out)
{
	size_t i, o = 0;
	char c;

	for (i = 0; i < n && !w->done; i++) {
		c = in[i];
		if (c != '\n') {
			if (w->bol && c == '.') {
				out[o++] = '.';
				w->stuffed++;
			}
			out[o++] = c;
			w->bol = 0;
			w->line_len++;
			w->last = c;
			continue;
		}
		if (w->last != '\r')
			out[o++] = '\r';
		out[o++] = '\n';
		if (!w->in_body) {
			/* "" or "\r": the header ends (RFC 5322 2.1). */
			if (w->line_len == 0 ||
			    (w->line_len == 1 && w->last == '\r')) {
				w->in_body = 1;
				if (w->body_left == 0)
					w->done = 1;
			}
		} else if (w->body_left > 0 && --w->body_left == 0) {
			w->done = 1;
		}
		w->bol = 1;
		w->line_len = 0;
		w->last = c;
	}
	return o;
}

const char *
pop3d_wire_end(const struct pop3d_wire *w, size_t *len_r)
{
	static const char crlf_dot[] = "\r\n.\r\n";

	/* A last line without LF gets its CRLF before the ".". */
	if (!w->bol) {
		*len_r = sizeof(crlf_dot) - 1;
		return crlf_dot;
	}
	*len_r = sizeof(crlf_dot) - 3;
	return crlf_dot + 2;
}
