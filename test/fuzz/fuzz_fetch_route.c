/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: multidrop routing (lib/mail/fetch_route.c), whose
 * input is the header section of mail anyone may send to a domain that
 * an ISP collects for. Input: the message. The configuration is fixed:
 * the default header list and a custom one, two local domains, a pcre:
 * rule table (written at start into a scratch directory, removed at
 * exit) and a loop header.
 *
 * Invariants: 0 with 1..FETCH_ROUTE_RCPTS_MAX recipients and a detail,
 * or -1 (a pcre: match limit) with an error and nothing to free; every
 * recipient is one line of printable text, no two are the same mailbox;
 * recipients from headers are local (but for the lost-mail recipient
 * last when there were too many); lost mail and loops go to the
 * lost-mail recipient alone; routing the same input twice gives the
 * same answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/addr.h"
#include "mail/fetch_route.h"
#include "mail/map_list.h"
#include "fuzz_util.h"

#define FUZZ_ROUTE_LOST "lost@office.example"

static const char *const fuzz_headers[] = {"Delivered-To", "X-Original-To",
    "Envelope-To", "X-Envelope-To", "Received", "X-Rcpt-To:"};

static const char fuzz_rules[] =
    "/^List-Id:.*<dev\\.lists\\.example>/ alice@office.example, bob\n"
    "/^From:.*@partner\\.example/ carol@branch.office.example\n"
    "/^Subject:.*drop/ DISCARD\n"
    "/^X-Skip:/ DUNNO\n"
    "/^X-Bad:/ not@@valid\n"
    "/^X-Empty:/ ,\n"
    "/^X-To: (.+)$/ $1\n";

static char fuzz_dir[] = "/tmp/fuzz_fetch_route.XXXXXX";
static char *fuzz_rules_path;
static struct map_list *fuzz_maps;
static struct fetch_route_config fuzz_cfg;

static int
fuzz_local(const char *addr, void *ctx)
{
	const char *at = strrchr(addr, '@');

	(void)ctx;
	return at != NULL && (strcmp(at + 1, "office.example") == 0 ||
	                         strcmp(at + 1, "branch.office.example") == 0);
}

static void
fuzz_cleanup_files(void)
{
	map_list_free(&fuzz_maps);
	if (fuzz_rules_path != NULL)
		(void)unlink(fuzz_rules_path);
	(void)rmdir(fuzz_dir);
	free(fuzz_rules_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *spec, *err = NULL;
	FILE *f;

	(void)argc;
	(void)argv;
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	fuzz_rules_path = xasprintf("%s/rules.pcre", fuzz_dir);
	atexit(fuzz_cleanup_files);
	if ((f = fopen(fuzz_rules_path, "w")) == NULL ||
	    fputs(fuzz_rules, f) < 0 || fclose(f) != 0)
		abort();
	spec = xasprintf("pcre:%s", fuzz_rules_path);
	if ((fuzz_maps = map_list_open("fetch_route_maps", spec, &err)) ==
	    NULL) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	free(spec);
	fuzz_cfg.headers = fuzz_headers;
	fuzz_cfg.nheaders = sizeof(fuzz_headers) / sizeof(fuzz_headers[0]);
	fuzz_cfg.is_local = fuzz_local;
	fuzz_cfg.rules = fuzz_maps;
	fuzz_cfg.lost_recipient = FUZZ_ROUTE_LOST;
	fuzz_cfg.loop_header_name = "X-Tern-Fetched";
	fuzz_cfg.loop_header_value = "office.example isp-acct";
	return 0;
}

static void
fuzz_check_rcpt(const char *r)
{
	const unsigned char *p;

	FUZZ_CHECK(r != NULL && r[0] != '\0');
	FUZZ_CHECK(strlen(r) <= ADDR_PATH_MAX);
	for (p = (const unsigned char *)r; *p != '\0'; p++)
		FUZZ_CHECK(*p >= ' ' && *p != 0x7f);
}

static void
fuzz_check_result(const struct fetch_route_result *res)
{
	size_t i, j;
	char *a, *b;

	FUZZ_CHECK(res->nrcpts >= 1 && res->nrcpts <= FETCH_ROUTE_RCPTS_MAX);
	FUZZ_CHECK(res->detail != NULL);
	FUZZ_CHECK(
	    res->how == FETCH_ROUTE_HEADER || res->how == FETCH_ROUTE_RULE ||
	    res->how == FETCH_ROUTE_LOST || res->how == FETCH_ROUTE_LOOP);
	for (i = 0; i < res->nrcpts; i++) {
		fuzz_check_rcpt(res->rcpts[i]);
		a = addr_fold(res->rcpts[i]);
		for (j = 0; j < i; j++) {
			b = addr_fold(res->rcpts[j]);
			FUZZ_CHECK(strcmp(a, b) != 0);
			free(b);
		}
		free(a);
		if (res->how == FETCH_ROUTE_HEADER &&
		    strcmp(res->rcpts[i], FUZZ_ROUTE_LOST) != 0)
			FUZZ_CHECK(fuzz_local(res->rcpts[i], NULL));
	}
	if (res->how == FETCH_ROUTE_LOST || res->how == FETCH_ROUTE_LOOP) {
		FUZZ_CHECK(res->nrcpts == 1);
		FUZZ_CHECK(strcmp(res->rcpts[0], FUZZ_ROUTE_LOST) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetch_route_result res, again;
	const char *err = NULL, *err2 = NULL;
	size_t i;
	int r, r2;

	r = fetch_route(&fuzz_cfg, (const char *)data, size, &res, &err);
	FUZZ_CHECK(r == 0 || r == -1);
	if (r < 0) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(
		    res.rcpts == NULL && res.nrcpts == 0 && res.detail == NULL);
	} else {
		fuzz_check_result(&res);
	}
	r2 = fetch_route(&fuzz_cfg, (const char *)data, size, &again, &err2);
	FUZZ_CHECK(r2 == r);
	if (r == 0) {
		FUZZ_CHECK(again.how == res.how && again.nrcpts == res.nrcpts);
		for (i = 0; i < res.nrcpts; i++)
			FUZZ_CHECK(strcmp(res.rcpts[i], again.rcpts[i]) == 0);
		FUZZ_CHECK(strcmp(res.detail, again.detail) == 0);
	}
	fetch_route_result_free(&res);
	fetch_route_result_free(&again);
	return 0;
}
