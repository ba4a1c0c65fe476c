/* SPDX-License-Identifier: MIT */
/*
 * Tests of base64: the RFC 4648 section 10 vectors both ways, a table of
 * inputs the strict decoder must refuse (with the reason), every case fed
 * whole and one byte at a time, the output maximum, and a round trip
 * over every byte value.
 */
#include <string.h>

#include "base/base64.h"
#include "unit.h"

#define NELEM(a)       (sizeof(a) / sizeof((a)[0]))
#define TEST_MAX       4096
#define ROUNDTRIP_MAX  300
#define BYTE_VALUES    256
/* A multiplier that walks through every byte value in some order. */
#define ROUNDTRIP_STEP 37

struct decode_case {
	const char *in;
	size_t in_len;   /* 0: strlen(in) */
	const char *out; /* NULL: must fail */
	size_t out_len;
	const char *error; /* expected text when failing */
};

/* RFC 4648 section 10, plus bytes at both ends of the alphabet. */
static const struct {
	const char *raw;
	size_t len;
	const char *b64;
} vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    {"\0\0\0", 3, "AAAA"},
    {"\377\377\377", 3, "////"},
    {"\373\377", 2, "+/8="},
    {"\0", 1, "AA=="},
    {"\0user\0pass", 10, "AHVzZXIAcGFzcw=="},
};

static const struct decode_case bad[] = {
    {"Zg", 0, NULL, 0, "truncated"},
    {"Zg=", 0, NULL, 0, "truncated"},
    {"Zm9vY", 0, NULL, 0, "truncated"},
    {"Z===", 0, NULL, 0, "misplaced padding"},
    {"=Zg=", 0, NULL, 0, "misplaced padding"},
    {"====", 0, NULL, 0, "misplaced padding"},
    {"Zg=a", 0, NULL, 0, "misplaced padding"},
    {"Zm9v=", 0, NULL, 0, "misplaced padding"},
    {"Zg==Zg==", 0, NULL, 0, "data after the padding"},
    {"Zg===", 0, NULL, 0, "data after the padding"},
    {"Zm8=\r\n", 0, NULL, 0, "data after the padding"},
    {"Zm9v\r\n", 0, NULL, 0, "invalid base64 character"},
    {"Zm9v\n", 0, NULL, 0, "invalid base64 character"},
    {"Zm 9v", 0, NULL, 0, "invalid base64 character"},
    {" Zm9v", 0, NULL, 0, "invalid base64 character"},
    {"Zm9v\t", 0, NULL, 0, "invalid base64 character"},
    {"Zm9v\0AAA", 8, NULL, 0, "invalid base64 character"},
    {"-_8=", 0, NULL, 0, "invalid base64 character"},
    {"Zm9v.", 0, NULL, 0, "invalid base64 character"},
    {"Zm9v\303\251", 0, NULL, 0, "invalid base64 character"},
    /* One value per spelling: the spare bits must be zero. */
    {"Zh==", 0, NULL, 0, "non-zero bits"},
    {"Zm9=", 0, NULL, 0, "non-zero bits"},
    {"AB==", 0, NULL, 0, "non-zero bits"},
    {"AAB=", 0, NULL, 0, "non-zero bits"},
};

/* Decodes c whole or byte by byte; 0 or -1 with *error_r. */
static int
decode(const struct decode_case *c, int bytewise, struct buf *out,
    const char **error_r)
{
	size_t len = c->in_len != 0 ? c->in_len : strlen(c->in), i;
	struct base64_decoder d;

	if (!bytewise)
		return base64_decode(c->in, len, out, error_r);
	base64_decode_init(&d);
	for (i = 0; i < len; i++)
		if (base64_decode_more(&d, c->in + i, 1, out, error_r) < 0)
			return -1;
	return base64_decode_finish(&d, error_r);
}

static void
check_decode(const struct decode_case *c)
{
	const char *err;
	struct buf out;
	int bytewise, r;

	buf_init(&out, TEST_MAX);
	for (bytewise = 0; bytewise <= 1; bytewise++) {
		buf_reset(&out);
		err = NULL;
		r = decode(c, bytewise, &out, &err);
		if (c->out != NULL) {
			CHECK_INT(r, 0);
			CHECK_INT(out.len, c->out_len);
			CHECK(out.len == c->out_len &&
			      memcmp(out.data != NULL ? out.data : "", c->out,
			          c->out_len) == 0);
		} else {
			CHECK_INT(r, -1);
			CHECK(err != NULL && strstr(err, c->error) != NULL);
			/* The whole-buffer call leaves out as it was. */
			if (!bytewise)
				CHECK_INT(out.len, 0);
		}
		if (unit_case_failed)
			printf("#   input \"%s\" %s\n", c->in,
			    bytewise ? "byte by byte" : "whole");
	}
	buf_free(&out);
}

static void
test_vectors(void)
{
	struct decode_case c;
	struct buf out;
	size_t i;

	buf_init(&out, TEST_MAX);
	for (i = 0; i < NELEM(vectors); i++) {
		buf_reset(&out);
		CHECK_INT(
		    base64_encode(vectors[i].raw, vectors[i].len, &out), 0);
		CHECK_STR(buf_cstr(&out), vectors[i].b64);
		CHECK_INT(out.len, BASE64_ENCODED_LEN(vectors[i].len));
		c.in = vectors[i].b64;
		c.in_len = 0;
		c.out = vectors[i].raw;
		c.out_len = vectors[i].len;
		c.error = NULL;
		check_decode(&c);
	}
	buf_free(&out);
}

static void
test_bad(void)
{
	size_t i;

	for (i = 0; i < NELEM(bad); i++)
		check_decode(&bad[i]);
}

/* An error is sticky: nothing decodes after it, and finish fails too. */
static void
test_sticky(void)
{
	struct base64_decoder d;
	const char *err = NULL;
	struct buf out;

	buf_init(&out, TEST_MAX);
	base64_decode_init(&d);
	CHECK_INT(base64_decode_more(&d, "Zm*v", 4, &out, &err), -1);
	CHECK(err != NULL && strstr(err, "invalid") != NULL);
	err = NULL;
	CHECK_INT(base64_decode_more(&d, "Zm9v", 4, &out, &err), -1);
	CHECK(err != NULL && strstr(err, "invalid") != NULL);
	CHECK_INT(base64_decode_finish(&d, &err), -1);
	CHECK_INT(out.len, 0);
	buf_free(&out);
}

/* Output stops at the buffer's maximum, in both directions. */
static void
test_limits(void)
{
	const char *err = NULL;
	struct buf out;

	buf_init(&out, 5);
	CHECK_INT(base64_encode("foo", 3, &out), 0);
	CHECK_INT(base64_encode("f", 1, &out), -1);
	CHECK_STR(buf_cstr(&out), "Zm9v");
	buf_free(&out);

	buf_init(&out, 5);
	CHECK_INT(base64_decode("Zm9vYmFy", 8, &out, &err), -1);
	CHECK(err != NULL && strstr(err, "too long") != NULL);
	CHECK_INT(out.len, 0);
	CHECK_INT(base64_decode("Zm9vYg==", 8, &out, &err), 0);
	CHECK_STR(buf_cstr(&out), "foob");
	buf_free(&out);
	CHECK_INT(BASE64_DECODED_MAX(BASE64_ENCODED_LEN(1536)), 1536);
}

static void
test_roundtrip(void)
{
	unsigned char raw[ROUNDTRIP_MAX];
	struct buf enc, dec;
	const char *err;
	size_t len, i;

	for (i = 0; i < ROUNDTRIP_MAX; i++)
		raw[i] = (unsigned char)((i * ROUNDTRIP_STEP) % BYTE_VALUES);
	buf_init(&enc, TEST_MAX);
	buf_init(&dec, TEST_MAX);
	for (len = 0; len <= ROUNDTRIP_MAX; len++) {
		buf_reset(&enc);
		buf_reset(&dec);
		CHECK_INT(base64_encode(raw, len, &enc), 0);
		CHECK_INT(base64_decode(enc.data != NULL ? enc.data : "",
		              enc.len, &dec, &err),
		    0);
		CHECK_INT(dec.len, len);
		CHECK(dec.len == len &&
		      (len == 0 || memcmp(dec.data, raw, len) == 0));
	}
	buf_free(&enc);
	buf_free(&dec);
}

UNIT_MAIN(UNIT_CASE(test_vectors), UNIT_CASE(test_bad), UNIT_CASE(test_sticky),
    UNIT_CASE(test_limits), UNIT_CASE(test_roundtrip))
