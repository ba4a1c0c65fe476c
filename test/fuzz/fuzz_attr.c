/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the IPC attribute frames daemons exchange
 * (lib/mail/attr.c). The input is both one payload for attr_decode and
 * a byte stream of frames. Checked: a decoded payload encodes back to
 * exactly the same bytes (the encoding is canonical), attr_get finds the
 * first of a name, attr_get_int agrees with strtoll, and
 * attr_frame_take over a stream that delivers the bytes in irregular
 * pieces (and now and then EAGAIN) yields the same frames, and fails at
 * the same frame, as a model that sees the whole input at once: a
 * frame is refused when its header announces more than the collecting
 * buffer's maximum, however the bytes arrive.
 *
 * Input: one byte choosing that maximum, then the bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "base/stream.h"
#include "mail/attr.h"
#include "fuzz_util.h"

/* Maxima of the collecting buffer, as the servers use them (anvil 1 KiB,
 * proxymap and qmgr 4 KiB) and around the stream's read buffer. */
static const size_t acc_payload_max[] = {0, 16, 64, 1024, 4096,
    STREAM_RBUF_SIZE - ATTR_HEADER_LEN, STREAM_RBUF_SIZE, ATTR_FRAME_MAX};
#define ACC_CHOICES    (sizeof(acc_payload_max) / sizeof(acc_payload_max[0]))
#define FRAME_BUF_MAX  (ATTR_HEADER_LEN + ATTR_FRAME_MAX)
/* Stream reads: at most this many steps per input byte (no livelock). */
#define STEPS_PER_BYTE 8
#define STEPS_MIN      64

/* The payload l was decoded from, written back with attr_put. */
static void
check_encodes_to(const struct attr_list *l, const void *payload, size_t len)
{
	struct buf frame;
	int i;

	buf_init(&frame, FRAME_BUF_MAX);
	attr_frame_begin(&frame);
	for (i = 0; i < l->count; i++)
		FUZZ_CHECK(attr_put(&frame, l->v[i].name, l->v[i].value,
		               l->v[i].len) == 0);
	FUZZ_CHECK(attr_frame_end(&frame) == 0);
	FUZZ_CHECK(frame.len == ATTR_HEADER_LEN + len);
	FUZZ_CHECK(bytes_get_be32((const unsigned char *)frame.data) == len);
	FUZZ_CHECK(memcmp(frame.data + ATTR_HEADER_LEN, payload, len) == 0);
	buf_free(&frame);
}

static void
check_lookups(const struct attr_list *l)
{
	const struct attr *a;
	long long v;
	char *end;
	int i, j, first;

	for (i = 0; i < l->count; i++) {
		a = &l->v[i];
		FUZZ_CHECK(a->value[a->len] == '\0');
		for (first = 0; strcmp(l->v[first].name, a->name) != 0; first++)
			;
		FUZZ_CHECK(attr_get(l, a->name) == l->v[first].value);
		if (first != i)
			continue;
		if (attr_get_int(l, a->name, &v) < 0)
			continue;
		/* Digits with an optional '-', within long long. */
		FUZZ_CHECK(a->len > 0);
		for (j = a->value[0] == '-'; (size_t)j < a->len; j++)
			FUZZ_CHECK(a->value[j] >= '0' && a->value[j] <= '9');
		errno = 0;
		FUZZ_CHECK(strtoll(a->value, &end, 10) == v && errno == 0 &&
		           *end == '\0');
	}
}

/* What the stream must produce, from the whole input at once. */
enum event {
	EV_FRAME,
	EV_ERROR,
	EV_END
};

static enum event
model_next(const unsigned char *in, size_t len, size_t *pos, size_t acc_max,
    const unsigned char **payload_r, size_t *plen_r)
{
	struct attr_list l;
	const char *error;
	uint32_t plen;
	int r;

	if (len - *pos < ATTR_HEADER_LEN)
		return EV_END;
	plen = bytes_get_be32(in + *pos);
	if (plen > ATTR_FRAME_MAX || plen > acc_max - ATTR_HEADER_LEN)
		return EV_ERROR;
	if (len - *pos - ATTR_HEADER_LEN < plen)
		return EV_END;
	attr_list_init(&l);
	r = attr_decode(in + *pos + ATTR_HEADER_LEN, plen, &l, &error);
	attr_list_free(&l);
	if (r < 0)
		return EV_ERROR;
	*payload_r = in + *pos + ATTR_HEADER_LEN;
	*plen_r = plen;
	*pos += ATTR_HEADER_LEN + plen;
	return EV_FRAME;
}

static void
check_stream(const unsigned char *in, size_t len, size_t acc_max)
{
	static struct stream st;
	const unsigned char *payload = NULL;
	struct attr_list l;
	struct fuzz_mem mem;
	struct buf acc;
	const char *error;
	size_t pos = 0, plen = 0, steps, max_steps;
	enum stream_result fr;
	enum event ev;
	int r;

	stream_init(&st, -1);
	fuzz_mem_init(&mem, in, len, 0, 1, STREAM_RBUF_SIZE);
	fuzz_rng_init(&mem.rng, in, len);
	stream_set_transport(&st, &fuzz_transport, &mem);
	buf_init(&acc, acc_max);
	attr_list_init(&l);
	max_steps = STEPS_MIN + STEPS_PER_BYTE * len;
	for (steps = 0;; steps++) {
		FUZZ_CHECK(steps < max_steps);
		r = attr_frame_take(&st, &acc, &l, &error);
		if (r == 0) {
			fr = stream_fill(&st);
			FUZZ_CHECK(fr != STREAM_ERROR);
			if (fr == STREAM_EOF)
				break;
			continue;
		}
		ev = model_next(in, len, &pos, acc_max, &payload, &plen);
		if (r < 0) {
			FUZZ_CHECK(ev == EV_ERROR);
			FUZZ_CHECK(error != NULL);
			break;
		}
		FUZZ_CHECK(ev == EV_FRAME);
		check_encodes_to(&l, payload, plen);
	}
	if (r == 0)
		FUZZ_CHECK(model_next(in, len, &pos, acc_max, &payload,
		               &plen) == EV_END);
	attr_list_free(&l);
	buf_free(&acc);
	stream_free(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attr_list l;
	struct buf reply;
	const char *error;
	size_t acc_max, used;

	if (size < 1)
		return 0;
	acc_max = ATTR_HEADER_LEN + acc_payload_max[data[0] % ACC_CHOICES];
	data++;
	size--;

	/* The whole input as one payload. */
	attr_list_init(&l);
	if (attr_decode(data, size, &l, &error) == 0) {
		check_encodes_to(&l, data, size);
		check_lookups(&l);
		buf_init(&reply, FRAME_BUF_MAX);
		FUZZ_CHECK(attr_reply_begin(&reply, &l) == 0);
		buf_free(&reply);
	} else {
		FUZZ_CHECK(error != NULL);
	}
	/* As a frame. */
	if (attr_decode_frame(data, size, &used, &l, &error) == 1) {
		FUZZ_CHECK(used >= ATTR_HEADER_LEN && used <= size);
		check_encodes_to(
		    &l, data + ATTR_HEADER_LEN, used - ATTR_HEADER_LEN);
	}
	attr_list_free(&l);

	check_stream(data, size, acc_max);
	return 0;
}
