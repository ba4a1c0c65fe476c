/* SPDX-License-Identifier: MIT */
/*
 * Multidrop routing: tables of header sections as ISPs' MTAs write them
 * (Postfix, Exim, qmail, sendmail) and the recipients each must give:
 * the header order, several local users, skipped foreign addresses,
 * the top Received: only, rules in message order, the loop guard, the
 * recipient cap, the header size cap and junk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "mail/fetch_route.h"
#include "mail/map_list.h"
#include "mail/params.h"
#include "unit.h"

#define JOINED_MAX 4096

static const char *const default_headers[] = {"Delivered-To", "X-Original-To",
    "Envelope-To", "X-Envelope-To", "Received"};
#define NDEFAULT (sizeof(default_headers) / sizeof(default_headers[0]))

/* The office's domains, lower case as fetch_route hands them over. */
static int
office_local(const char *addr, void *ctx)
{
	const char *at = strrchr(addr, '@');

	(void)ctx;
	return at != NULL && (strcmp(at + 1, "office.example") == 0 ||
	                         strcmp(at + 1, "branch.office.example") == 0);
}

static struct fetch_route_config
config(void)
{
	struct fetch_route_config cfg = {
	    .headers = default_headers,
	    .nheaders = NDEFAULT,
	    .is_local = office_local,
	    .lost_recipient = "postmaster",
	    .loop_header_name = "X-Tern-Fetched",
	    .loop_header_value = "office.example isp-acct",
	};

	return cfg;
}

/* The recipients joined with '|'. */
static const char *
joined(const struct fetch_route_result *res)
{
	static char out[JOINED_MAX];
	size_t i, o = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < res->nrcpts && o < sizeof(out); i++) {
		n = snprintf(out + o, sizeof(out) - o, "%s%s", i ? "|" : "",
		    res->rcpts[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return out;
}

/* Routes msg (a C string) and checks recipients, how and (if given) a
 * piece of the detail. */
static void
check_route(const struct fetch_route_config *cfg, const char *msg,
    const char *want, enum fetch_route_how how, const char *detail)
{
	struct fetch_route_result res;
	const char *err = NULL;

	CHECK_INT(fetch_route(cfg, msg, strlen(msg), &res, &err), 0);
	CHECK_STR(joined(&res), want);
	CHECK_INT(res.how, how);
	CHECK(res.detail != NULL);
	if (detail != NULL && res.detail != NULL &&
	    strstr(res.detail, detail) == NULL) {
		printf("#   detail \"%s\" lacks \"%s\"\n", res.detail, detail);
		CHECK(0);
	}
	if (want[0] == '\0' || how == FETCH_ROUTE_LOST ||
	    how == FETCH_ROUTE_LOOP)
		CHECK(res.nrcpts > 0);
	fetch_route_result_free(&res);
	CHECK(res.rcpts == NULL && res.detail == NULL && res.nrcpts == 0);
}

static const struct {
	const char *msg;
	const char *want;
	enum fetch_route_how how;
	const char *detail;
} header_cases[] = {
    /* Postfix at the ISP: its own mailbox first, then the user's. */
    {"Delivered-To: isp-acct@isp.example\r\n"
     "Received: from mx.isp.example by pop.isp.example (Postfix)\r\n"
     "\twith ESMTP id 4F2A1C for <isp-acct@isp.example>; "
     "Tue, 1 Dec 2026 10:00:00 +0000\r\n"
     "Delivered-To: alice@office.example\r\n"
     "X-Original-To: alice@office.example\r\n"
     "From: x@y.example\r\n\r\nbody\r\n",
        "alice@office.example", FETCH_ROUTE_HEADER, "Delivered-To"},
    /* A Bcc to two users: one Delivered-To each, case kept in the
     * local part, the domain folded. */
    {"Delivered-To: alice@office.example\n"
     "Delivered-To: Bob@OFFICE.Example\n"
     "To: list@elsewhere.example\n\nhi\n",
        "alice@office.example|Bob@office.example", FETCH_ROUTE_HEADER, NULL},
    /* Duplicates, however spelled, count once (the first spelling). */
    {"Delivered-To: alice@office.example\n"
     "Delivered-To: ALICE@Office.Example\n"
     "Delivered-To: \"alice\"@office.example\n\n",
        "alice@office.example", FETCH_ROUTE_HEADER, NULL},
    /* Only foreign Delivered-To: the next header decides. */
    {"Delivered-To: isp-acct@isp.example\n"
     "X-Original-To: carol@branch.office.example\n\n",
        "carol@branch.office.example", FETCH_ROUTE_HEADER, "X-Original-To"},
    /* Exim's Envelope-to, a list. */
    {"Envelope-to: dave@office.example, erin@office.example,\n"
     " frank@isp.example\n"
     "Received: from a.example by b.example\n\n",
        "dave@office.example|erin@office.example", FETCH_ROUTE_HEADER,
        "Envelope-To"},
    /* X-Envelope-To with brackets, display name, encoded word, group,
     * comment. */
    {"X-Envelope-To: =?utf-8?q?Al=C3=AFce?= <alice@office.example>,\r\n"
     "  team: bob@office.example (Bob), <carol@office.example>;\r\n\r\n",
        "alice@office.example|bob@office.example|carol@office.example",
        FETCH_ROUTE_HEADER, NULL},
    /* The top Received:'s "for" only; lower hops are the sender's. */
    {"Received: from mx.isp.example (mx.isp.example [192.0.2.1])\r\n"
     "\tby pop.isp.example (Postfix) with ESMTP id 4F2A1C\r\n"
     "\tfor <dave@office.example>; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
     "Received: from evil.example by relay.example\r\n"
     "\tfor <erin@office.example>; Tue, 1 Dec 2026 09:59:00 +0000\r\n"
     "\r\n",
        "dave@office.example", FETCH_ROUTE_HEADER, "Received"},
    /* The top one names nobody: a lower one must not decide. */
    {"Received: from mx.isp.example by pop.isp.example with ESMTP id 1;\r\n"
     "\tTue, 1 Dec 2026 10:00:00 +0000\r\n"
     "Received: from evil.example by relay.example\r\n"
     "\tfor <erin@office.example>; Tue, 1 Dec 2026 09:59:00 +0000\r\n"
     "\r\n",
        "postmaster", FETCH_ROUTE_LOST, "no local recipient"},
    /* "for" in a comment or quoted string is not the clause; Exim
     * writes the mailbox without brackets; case of the keyword. */
    {"Received: from h (helo (for <x@office.example>) \"for y\")\n"
     " by isp.example with esmtp (Exim 4.96) id 1a-2b FOR\n"
     " gina@office.example; Tue, 1 Dec 2026 10:00:00 +0000\n\n",
        "gina@office.example", FETCH_ROUTE_HEADER, NULL},
    /* A host called "for" in the from part: the last clause counts. */
    {"Received: from for by isp.example for <hank@office.example>; d\n\n",
        "hank@office.example", FETCH_ROUTE_HEADER, NULL},
    /* Folded right after the colon. */
    {"Delivered-To:\r\n alice@office.example\r\n\r\n", "alice@office.example",
        FETCH_ROUTE_HEADER, NULL},
    /* No body, no final line end. */
    {"Delivered-To: alice@office.example", "alice@office.example",
        FETCH_ROUTE_HEADER, NULL},
    /* The body is not the header. */
    {"Subject: x\n\nDelivered-To: alice@office.example\n", "postmaster",
        FETCH_ROUTE_LOST, NULL},
    /* A line that is not a field starts the body, as in cleanup. */
    {"Subject: x\nnot a field\nDelivered-To: alice@office.example\n",
        "postmaster", FETCH_ROUTE_LOST, NULL},
    {" Delivered-To: alice@office.example\n", "postmaster", FETCH_ROUTE_LOST,
        NULL},
    {"Delivered-To : alice@office.example\n", "postmaster", FETCH_ROUTE_LOST,
        NULL},
    /* No domain, a bad domain, a bad local part, a foreign domain. */
    {"Delivered-To: alice\nDelivered-To: bob@office..example\n"
     "Delivered-To: a..b@office.example\n"
     "Delivered-To: carol@office.example.evil.example\n\n",
        "postmaster", FETCH_ROUTE_LOST, "no local recipient"},
    /* A quoted local part is kept as written. */
    {"Delivered-To: \"j doe\"@office.example\n\n", "\"j doe\"@office.example",
        FETCH_ROUTE_HEADER, NULL},
    /* Header names are case-insensitive. */
    {"DELIVERED-TO: alice@office.example\n\n", "alice@office.example",
        FETCH_ROUTE_HEADER, NULL},
    /* Our loop header (folded, other case): lost mail, never out. */
    {"X-Tern-Fetched: Office.Example\r\n   isp-acct\r\n"
     "Delivered-To: alice@office.example\r\n\r\n",
        "postmaster", FETCH_ROUTE_LOOP, "loop: X-Tern-Fetched:"},
    /* Another site's or account's: no loop. */
    {"X-Tern-Fetched: office.example other-acct\n"
     "Delivered-To: alice@office.example\n\n",
        "alice@office.example", FETCH_ROUTE_HEADER, NULL},
    /* Nothing at all. */
    {"", "postmaster", FETCH_ROUTE_LOST, NULL},
    {"\r\n\r\n", "postmaster", FETCH_ROUTE_LOST, NULL},
};

static void
test_headers(void)
{
	struct fetch_route_config cfg = config();
	size_t i;

	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		printf("# case %zu\n", i);
		check_route(&cfg, header_cases[i].msg, header_cases[i].want,
		    header_cases[i].how, header_cases[i].detail);
	}
}

/* The configured order decides, not the message's. */
static void
test_order(void)
{
	static const char *const order[] = {"X-Original-To:", " Delivered-To"};
	static const char msg[] = "Delivered-To: alice@office.example\n"
	                          "X-Original-To: bob@office.example\n\n";
	struct fetch_route_config cfg = config();

	check_route(&cfg, msg, "alice@office.example", FETCH_ROUTE_HEADER,
	    "Delivered-To");
	cfg.headers = order;
	cfg.nheaders = 2;
	check_route(&cfg, msg, "bob@office.example", FETCH_ROUTE_HEADER,
	    "X-Original-To");
	/* A custom header of the ISP's. */
	cfg.headers = (const char *const[]){"X-Rcpt-To"};
	cfg.nheaders = 1;
	check_route(&cfg, "X-Rcpt-To: <carol@office.example>\n\n",
	    "carol@office.example", FETCH_ROUTE_HEADER, "X-Rcpt-To");
	/* No header list, no is_local: only the lost recipient. */
	cfg.nheaders = 0;
	check_route(&cfg, msg, "postmaster", FETCH_ROUTE_LOST, NULL);
	cfg = config();
	cfg.is_local = NULL;
	check_route(&cfg, msg, "postmaster", FETCH_ROUTE_LOST, NULL);
}

/* The lost-mail recipient: configured, folded, or postmaster. */
static void
test_lost(void)
{
	struct fetch_route_config cfg = config();

	cfg.lost_recipient = "Lost+Mail@Office.EXAMPLE";
	check_route(&cfg, "Subject: x\n\n", "Lost+Mail@office.example",
	    FETCH_ROUTE_LOST, "no local recipient");
	cfg.lost_recipient = NULL;
	check_route(
	    &cfg, "Subject: x\n\n", "postmaster", FETCH_ROUTE_LOST, NULL);
	cfg.lost_recipient = "";
	check_route(
	    &cfg, "Subject: x\n\n", "postmaster", FETCH_ROUTE_LOST, NULL);
	/* A loop header without a value to match: any one is ours. */
	cfg = config();
	cfg.loop_header_value = NULL;
	check_route(&cfg,
	    "x-tern-fetched: whatever\n"
	    "Delivered-To: alice@office.example\n\n",
	    "postmaster", FETCH_ROUTE_LOOP, NULL);
	cfg.loop_header_name = NULL;
	check_route(&cfg,
	    "X-Tern-Fetched: whatever\n"
	    "Delivered-To: alice@office.example\n\n",
	    "alice@office.example", FETCH_ROUTE_HEADER, NULL);
}

/* More local addresses than FETCH_ROUTE_RCPTS_MAX: the first ones and
 * the lost-mail recipient, who gets the rest. */
static void
test_rcpt_cap(void)
{
	struct fetch_route_config cfg = config();
	struct fetch_route_result res;
	struct buf msg, want;
	const char *err;
	int i;

	buf_init(&msg, 1 << 20);
	buf_init(&want, 1 << 20);
	for (i = 0; i < FETCH_ROUTE_RCPTS_MAX + 10; i++) {
		CHECK(buf_printf(
		          &msg, "Delivered-To: u%d@office.example\n", i) == 0);
		if (i < FETCH_ROUTE_RCPTS_MAX - 1)
			CHECK(buf_printf(&want, "u%d@office.example|", i) == 0);
	}
	CHECK(buf_puts(&want, "postmaster") == 0);
	CHECK(buf_puts(&msg, "\n") == 0);
	CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
	CHECK_INT(res.nrcpts, FETCH_ROUTE_RCPTS_MAX);
	CHECK_STR(joined(&res), buf_cstr(&want));
	CHECK_INT(res.how, FETCH_ROUTE_HEADER);
	CHECK(strstr(res.detail, "11 went to lost mail") != NULL);
	fetch_route_result_free(&res);

	/* Exactly the maximum: everybody, nobody lost. */
	buf_reset(&msg);
	for (i = 0; i < FETCH_ROUTE_RCPTS_MAX; i++)
		CHECK(buf_printf(
		          &msg, "Envelope-To: u%d@office.example\n", i) == 0);
	CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
	CHECK_INT(res.nrcpts, FETCH_ROUTE_RCPTS_MAX);
	CHECK_STR(res.rcpts[FETCH_ROUTE_RCPTS_MAX - 1], "u49@office.example");
	CHECK_STR(res.detail, "Envelope-To");
	fetch_route_result_free(&res);
	buf_free(&msg);
	buf_free(&want);
}

#define SCRATCH_TEMPLATE "/tmp/fetch_route_test.XXXXXX"
static char scratch[sizeof(SCRATCH_TEMPLATE)];

/* A new scratch directory in scratch; 0 or -1. */
static int
scratch_make(void)
{
	memcpy(scratch, SCRATCH_TEMPLATE, sizeof(scratch));
	return mkdtemp(scratch) != NULL ? 0 : -1;
}

static struct map_list *
rules_open(const char *text)
{
	char *path = xasprintf("%s/rules.pcre", scratch);
	char *spec = xasprintf("pcre:%s", path);
	struct map_list *l;
	char *err = NULL;
	FILE *f;

	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK(fputs(text, f) >= 0);
		CHECK(fclose(f) == 0);
	}
	l = map_list_open("fetch_route_maps", spec, &err);
	if (l == NULL)
		printf("#   %s\n", err);
	CHECK(l != NULL);
	free(err);
	free(spec);
	free(path);
	return l;
}

static const char rules_text[] =
    "/^List-Id:.*<dev\\.lists\\.example>$/ alice@office.example, "
    "Bob@Office.Example\n"
    "/^From:.*@partner\\.example>?$/ carol\n"
    "/^Subject: drop/ DISCARD\n"
    "/^Subject: redirect/ REDIRECT alice@office.example\n"
    "/^X-Skip:/ DUNNO\n"
    "/^X-Bad:/ not@@valid\n"
    "/^X-Empty:/ ,\n"
    "/^X-Many:/ a0@o.example,a1@o.example,a2@o.example,a3@o.example,"
    "a4@o.example,a5@o.example,a6@o.example,a7@o.example,a8@o.example,"
    "a9@o.example,b0@o.example,b1@o.example,b2@o.example,b3@o.example,"
    "b4@o.example,b5@o.example,b6@o.example,b7@o.example,b8@o.example,"
    "b9@o.example,c0@o.example,c1@o.example,c2@o.example,c3@o.example,"
    "c4@o.example,c5@o.example,c6@o.example,c7@o.example,c8@o.example,"
    "c9@o.example,d0@o.example,d1@o.example,d2@o.example,d3@o.example,"
    "d4@o.example,d5@o.example,d6@o.example,d7@o.example,d8@o.example,"
    "d9@o.example,e0@o.example,e1@o.example,e2@o.example,e3@o.example,"
    "e4@o.example,e5@o.example,e6@o.example,e7@o.example,e8@o.example,"
    "e9@o.example,f0@o.example\n"
    "/^X-Nul: a b$/ nul@office.example\n";

static const struct {
	const char *msg;
	const char *want;
	enum fetch_route_how how;
	const char *detail;
} rule_cases[] = {
    /* A list message: no envelope header names anyone local. */
    {"Delivered-To: isp-acct@isp.example\n"
     "List-Id: Developers\n <dev.lists.example>\n"
     "From: someone@lists.example\n\n",
        "alice@office.example|Bob@office.example", FETCH_ROUTE_RULE,
        "rule: List-Id: Developers <dev.lists.example>"},
    /* An envelope header wins over every rule. */
    {"Delivered-To: dave@office.example\n"
     "List-Id: <dev.lists.example>\n\n",
        "dave@office.example", FETCH_ROUTE_HEADER, NULL},
    /* Message order: From: comes first here. */
    {"From: Partner <p@partner.example>\n"
     "List-Id: <dev.lists.example>\n\n",
        "carol", FETCH_ROUTE_RULE, "rule: From:"},
    /* DUNNO: this line decides nothing, the next one does. */
    {"X-Skip: yes\nList-Id: <dev.lists.example>\n\n",
        "alice@office.example|Bob@office.example", FETCH_ROUTE_RULE, NULL},
    /* Values that are no address list: lost mail, with the reason. */
    {"Subject: drop me\nList-Id: <dev.lists.example>\n\n", "postmaster",
        FETCH_ROUTE_LOST, "bad value \"DISCARD\""},
    {"Subject: redirect\n\n", "postmaster", FETCH_ROUTE_LOST, "never dropped"},
    {"X-Bad: 1\n\n", "postmaster", FETCH_ROUTE_LOST, "not an address"},
    {"X-Empty: 1\n\n", "postmaster", FETCH_ROUTE_LOST, "no address"},
    {"X-Many: 1\n\n", "postmaster", FETCH_ROUTE_LOST, "rule: X-Many: 1"},
    /* A NUL reaches the table as a space. */
    {"X-Nul: a\0b\n\n", "postmaster", FETCH_ROUTE_LOST, NULL},
    /* No rule matches. */
    {"Subject: hello\n\n", "postmaster", FETCH_ROUTE_LOST,
        "no local recipient"},
    /* The loop guard comes before the rules. */
    {"X-Tern-Fetched: office.example isp-acct\n"
     "List-Id: <dev.lists.example>\n\n",
        "postmaster", FETCH_ROUTE_LOOP, NULL},
};

static void
test_rules(void)
{
	struct fetch_route_config cfg = config();
	struct fetch_route_result res;
	static const char nul_msg[] = "X-Nul: a\0b\n\n";
	const char *err;
	size_t i;

	if (scratch_make() < 0) {
		CHECK(0);
		return;
	}
	cfg.rules = rules_open(rules_text);
	for (i = 0; cfg.rules != NULL &&
	            i < sizeof(rule_cases) / sizeof(rule_cases[0]);
	     i++) {
		printf("# rule case %zu\n", i);
		check_route(&cfg, rule_cases[i].msg, rule_cases[i].want,
		    rule_cases[i].how, rule_cases[i].detail);
	}
	/* The NUL case with its real length (strlen stops at the NUL). */
	CHECK_INT(
	    fetch_route(&cfg, nul_msg, sizeof(nul_msg) - 1, &res, &err), 0);
	CHECK_STR(joined(&res), "nul@office.example");
	CHECK_INT(res.how, FETCH_ROUTE_RULE);
	fetch_route_result_free(&res);
	map_list_free(&cfg.rules);
	/* An empty list is no rules. */
	cfg.rules = map_list_open("fetch_route_maps", "", NULL);
	CHECK(cfg.rules != NULL);
	check_route(&cfg, "List-Id: <dev.lists.example>\n\n", "postmaster",
	    FETCH_ROUTE_LOST, NULL);
	map_list_free(&cfg.rules);
	CHECK(unit_rmtree(scratch) == 0);
}

/* Only the first header_size_limit bytes are read: a field past or
 * across the limit does not count. */
static void
test_header_cap(void)
{
	struct fetch_route_config cfg = config();
	struct fetch_route_result res;
	struct buf msg;
	const char *err;
	size_t at;
	long long saved = var_header_size_limit;

	var_header_size_limit = 1024;
	buf_init(&msg, 1 << 20);
	CHECK(buf_puts(&msg, "X-Junk: ") == 0);
	while (msg.len < 1000)
		CHECK(buf_putc(&msg, 'j') == 0);
	CHECK(buf_puts(&msg, "\n") == 0);
	at = msg.len;
	CHECK(buf_puts(&msg, "Delivered-To: alice@office.example\n\n") == 0);
	/* Within the limit: found. */
	var_header_size_limit = (long long)msg.len;
	CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
	CHECK_STR(joined(&res), "alice@office.example");
	fetch_route_result_free(&res);
	/* Cut inside the field: not taken, even though the name fits. */
	var_header_size_limit = (long long)at + 30;
	CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
	CHECK_STR(joined(&res), "postmaster");
	CHECK_INT(res.how, FETCH_ROUTE_LOST);
	fetch_route_result_free(&res);
	/* Cut at its line end: it might go on past the limit. */
	var_header_size_limit = (long long)msg.len - 1;
	CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
	CHECK_STR(joined(&res), "postmaster");
	fetch_route_result_free(&res);
	var_header_size_limit = saved;
	buf_free(&msg);
}

/* Hostile sizes stay linear: a megabyte of header lines, of one
 * folded field, of unclosed comments in Received:, and of foreign
 * addresses, each routed in well under a second. */
static void
test_hostile(void)
{
	static const char *const units[] = {
	    "Delivered-To: x@isp.example\n",
	    " alice@office.example,\n",
	    "Received: ((((((((((for <a@office.example>\n",
	    "Envelope-To: a@isp.example, b@isp.example, c@isp.example\n",
	    "List-Id: <dev.lists.example>\n",
	};
	struct fetch_route_config cfg = config();
	struct fetch_route_result res;
	struct buf msg;
	const char *err;
	size_t i;
	long long saved = var_header_size_limit;
	clock_t t0;
	double secs;

	var_header_size_limit = 1 << 20;
	if (scratch_make() < 0) {
		CHECK(0);
		return;
	}
	cfg.rules = rules_open("/^X-No-Such:/ x@office.example\n");
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		buf_init(&msg, (1 << 20) + 64);
		if (i == 1)
			CHECK(buf_puts(&msg, "Delivered-To:") == 0);
		while (msg.len + strlen(units[i]) <= 1 << 20)
			CHECK(buf_puts(&msg, units[i]) == 0);
		t0 = clock();
		CHECK_INT(fetch_route(&cfg, msg.data, msg.len, &res, &err), 0);
		secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
		printf("# hostile %zu: %zu bytes in %.3f s, %zu rcpts\n", i,
		    msg.len, secs, res.nrcpts);
		/* Sanitizers make this slower; quadratic would be minutes. */
		CHECK(secs < 10.0);
		CHECK(res.nrcpts >= 1 && res.nrcpts <= FETCH_ROUTE_RCPTS_MAX);
		fetch_route_result_free(&res);
		buf_free(&msg);
	}
	map_list_free(&cfg.rules);
	CHECK(unit_rmtree(scratch) == 0);
	var_header_size_limit = saved;
}

UNIT_MAIN(UNIT_CASE(test_headers), UNIT_CASE(test_order), UNIT_CASE(test_lost),
    UNIT_CASE(test_rcpt_cap), UNIT_CASE(test_rules), UNIT_CASE(test_header_cap),
    UNIT_CASE(test_hostile))
