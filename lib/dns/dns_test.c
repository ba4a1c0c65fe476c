/* SPDX-License-Identifier: MIT */
/*
 * Tests for lib/dns against a real DNS server: dnsmasq on 127.0.0.1 and an
 * unused port, serving fixed records (A, AAAA, MX, TXT, CNAME, null MX, a
 * name with more records than DNS_RR_MAX, a zone forwarded to a server
 * that never answers). It answers negatives without an SOA (nothing to
 * cache); the cache cases start dnsmasq instances of their own that are
 * authoritative for "test" (an SOA in every negative answer) with a TTL
 * of their choice, and stop them to see what the cache still answers.
 * dns_mx cases resolve mail destinations against the main one. Without dnsmasq the whole program is skipped
 * (exit 77, automake's "skipped"); DNSMASQ=path names the binary. The
 * timeout case points one resolver at a UDP socket of our own that never
 * answers while another resolver asks dnsmasq. Every loop run has a
 * guard timer, so a broken resolver fails instead of hanging, and
 * dnsmasq dies with the test (an atexit handler, and PR_SET_PDEATHSIG if
 * the test itself crashes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/event.h"
#include "dns/dns.h"
#include "dns/dns_mx.h"
#include "unit.h"

#define GUARD_MS         5000
/* dnsmasq start: tries (another port if one was taken), and how long one
 * start may take to answer, polled every READY_POLL_MS. */
#define DNSMASQ_STARTS   3
#define READY_MS         5000
#define READY_POLL_MS    50
#define READY_TIMEOUT_MS 200
/* The resolvers' deadline in the ordinary cases. */
#define TIMEOUT_MS       2000
/* The timeout case: the dead server's deadline and the slack allowed
 * for a loaded machine running under the sanitizers. */
#define DEAD_TIMEOUT_MS  500
#define DEAD_EARLY_MS    20
#define DEAD_LATE_MS     700
#define PROMPT_MS        400
/* After the last callback, how long the cancel cases wait for a stray one. */
#define SETTLE_MS        150
#define TTL              300
#define MANY             (DNS_RR_MAX + 6)
#define TXT_STRING_LEN   255 /* the longest character-string */
#define MS_PER_SEC       1000
#define NS_PER_MS        1000000
#define HOST_MAX         (DNS_NAME_MAX + 1)
#define RESULT_RR_MAX    DNS_RR_MAX
#define ERROR_TEXT_MAX   128
/* The cache cases: a long TTL, a short one to wait out (polled every
 * EXPIRY_POLL_MS for at most EXPIRY_WAIT_MS), and the early margin
 * allowed for the expiry (the server's second rounds nothing up). */
#define LONG_TTL         300
#define SHORT_TTL        1
#define EXPIRY_POLL_MS   50
#define EXPIRY_WAIT_MS   5000
#define EXPIRY_EARLY_MS  100
/* Cache cap case: names asked at once per batch (a UDP socket buffer
 * holds a few hundred queries). */
#define CAP_BATCH        100
/* Equal preferences: resolutions until both orders have been seen. */
#define SHUFFLE_TRIES    50
#define MX_TARGETS_KEPT  DNS_MX_TARGETS_MAX
#define ADDR_TEXT_MAX    INET6_ADDRSTRLEN

static pid_t dnsmasq_pid = -1;
static char dnsmasq_server[64]; /* "127.0.0.1:port" */
static const char *dnsmasq_path;
/* For the next dnsmasq_start(): authoritative with this TTL (0: the main
 * instance's setup), on this port (0: a free one). */
static int dnsmasq_auth_ttl;
static int dnsmasq_fixed_port;
/* A UDP port that is bound and never read: dnsmasq forwards dead.test
 * there, and gets no answer. */
static int silent_fd = -1;
static int silent_port;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MS_PER_SEC +
	       (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* --- one query's result, copied out of the callback --- */

struct result {
	struct event_loop *loop;
	int calls;
	int stop; /* stop the loop on the callback */
	uint64_t at_ms;
	enum dns_status status;
	char error[ERROR_TEXT_MAX];
	char name[HOST_MAX + 1];
	int n;
	int truncated;
	int nxdomain;
	uint32_t ttl;
	int cached;
	struct dns_rr rr[RESULT_RR_MAX];
	char host[RESULT_RR_MAX][HOST_MAX];
	char txt[RESULT_RR_MAX][DNS_TXT_MAX + 1];
};

static void
result_cb(const struct dns_answer *a, void *ctx)
{
	struct result *r = ctx;
	int i;

	r->calls++;
	r->at_ms = now_ms();
	r->status = a->status;
	snprintf(r->error, sizeof(r->error), "%s", a->error);
	snprintf(r->name, sizeof(r->name), "%s", a->name);
	r->n = a->n;
	r->truncated = a->truncated;
	r->nxdomain = a->nxdomain;
	r->ttl = a->ttl;
	r->cached = a->cached;
	for (i = 0; i < a->n && i < RESULT_RR_MAX; i++) {
		r->rr[i] = a->rr[i];
		r->rr[i].mx_host = NULL;
		r->rr[i].txt = NULL;
		if (a->rr[i].mx_host != NULL)
			snprintf(r->host[i], HOST_MAX, "%s", a->rr[i].mx_host);
		if (a->rr[i].txt != NULL)
			memcpy(r->txt[i], a->rr[i].txt, a->rr[i].txt_len + 1);
	}
	if (r->stop)
		event_loop_stop(r->loop);
}

static void
guard_cb(struct event_timer *t, void *ctx)
{
	int *fired = ctx;

	(void)t;
	*fired = 1;
}

static void
stop_cb(struct event_timer *t, void *ctx)
{
	(void)t;
	event_loop_stop(ctx);
}

/* Runs loop until something stops it or ms pass; 0, or -1 on timeout. */
static int
run_for(struct event_loop *loop, uint64_t ms)
{
	int fired = 0;
	struct event_timer *guard;
	struct event_timer *stop;

	guard = event_timer_add(loop, ms, guard_cb, &fired);
	/* the guard stops the loop one iteration later */
	stop = event_timer_add(loop, ms, stop_cb, loop);
	CHECK_INT(event_loop_run(loop), 0);
	event_timer_del(&guard);
	event_timer_del(&stop);
	return fired ? -1 : 0;
}

/* One lookup to completion; the result is in r. */
static void
lookup(struct dns *d, struct event_loop *loop, const char *name,
    enum dns_type type, struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->stop = 1;
	(void)dns_lookup(d, name, type, result_cb, r);
	CHECK_INT(r->calls, 0); /* never before dns_lookup returns */
	CHECK_INT(run_for(loop, GUARD_MS), 0);
	CHECK_INT(r->calls, 1);
}

static struct dns *
make_dns(struct event_loop *loop, const char *servers, unsigned timeout_ms)
{
	const char *error = NULL;
	struct dns *d = dns_create(loop, servers, timeout_ms, &error);

	if (d == NULL) {
		printf("# dns_create(%s): %s\n", servers, error);
		exit(1);
	}
	return d;
}

/* --- dnsmasq --- */

static const char *
dnsmasq_find(void)
{
	static const char *paths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq",
	    "/usr/local/sbin/dnsmasq", "/usr/bin/dnsmasq"};
	const char *env = getenv("DNSMASQ");
	size_t i;

	/* DNSMASQ=path picks one (and an unusable one skips the test) */
	if (env != NULL && *env != '\0')
		return access(env, X_OK) == 0 ? env : NULL;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static void
dnsmasq_stop(void)
{
	if (dnsmasq_pid <= 0)
		return;
	kill(dnsmasq_pid, SIGKILL);
	while (waitpid(dnsmasq_pid, NULL, 0) < 0 && errno == EINTR)
		;
	dnsmasq_pid = -1;
}

/* A port nobody had bound a moment ago (dnsmasq may still lose a race:
 * dnsmasq_start() then tries another). */
static int
free_port(int type)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
dnsmasq_exec(const char *path, int port)
{
	char a_port[32], a_long[3 * (TXT_STRING_LEN + 1) + 32];
	char a_many[MANY][64], a_dead[64], a_ttl[2][32];
	const char *argv[64 + MANY];
	int n = 0, i, fd;
	size_t off;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	dup2(2, 1); /* stdout is the TAP stream */
	snprintf(a_port, sizeof(a_port), "--port=%d", port);
	off =
	    (size_t)snprintf(a_long, sizeof(a_long), "--txt-record=long.test");
	for (i = 0; i < 3; i++) {
		a_long[off++] = ',';
		memset(a_long + off, 'a' + i, TXT_STRING_LEN);
		off += TXT_STRING_LEN;
	}
	a_long[off] = '\0';
	argv[n++] = "dnsmasq";
	argv[n++] = "--no-daemon";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = a_port;
	argv[n++] = "--pid-file=";
	argv[n++] = "--log-facility=-";
	if (dnsmasq_auth_ttl > 0) {
		/* authoritative for "test": an SOA with every negative
		 * answer, whose TTL and MINIMUM are the --auth-ttl */
		snprintf(a_ttl[0], sizeof(a_ttl[0]), "--auth-ttl=%d",
		    dnsmasq_auth_ttl);
		snprintf(a_ttl[1], sizeof(a_ttl[1]), "--local-ttl=%d",
		    dnsmasq_auth_ttl);
		argv[n++] = a_ttl[0];
		argv[n++] = a_ttl[1];
		argv[n++] = "--auth-server=ns.test,127.0.0.1";
		argv[n++] = "--auth-zone=test";
		argv[n++] = "--host-record=mail.test,192.0.2.10";
		argv[n++] = "--mx-host=example.test,mail.test,10";
		argv[n] = NULL;
		execv(path, (char *const *)argv);
		_exit(127);
	}
	argv[n++] = "--local-ttl=300";
	argv[n++] = "--local=/test/";
	argv[n++] = "--host-record=mail.test,192.0.2.10,2001:db8::10";
	argv[n++] = "--host-record=v4only.test,192.0.2.11";
	argv[n++] = "--host-record=2.0.0.127.rbl.test,127.0.0.2";
	argv[n++] = "--txt-record=2.0.0.127.rbl.test,Listed at rbl.test";
	argv[n++] = "--txt-record=multi.test,abc,def";
	argv[n++] = a_long;
	argv[n++] = "--mx-host=example.test,mx2.test,20";
	argv[n++] = "--mx-host=example.test,mx1.test,10";
	/* for dns_mx */
	argv[n++] = "--mx-host=pref.test,v4only.test,20";
	argv[n++] = "--mx-host=pref.test,mail.test,10";
	argv[n++] = "--mx-host=eq.test,eqa.test,10";
	argv[n++] = "--mx-host=eq.test,eqb.test,10";
	argv[n++] = "--mx-host=eq.test,mail.test,20";
	argv[n++] = "--host-record=eqa.test,192.0.2.21";
	argv[n++] = "--host-record=eqb.test,192.0.2.22";
	/* RFC 7505: preference 0, the root name */
	argv[n++] = "--dns-rr=nullmx.test,15,000000";
	argv[n++] = "--mx-host=cnmx.test,alias.test,10";
	argv[n++] = "--cname=alias.test,mail.test";
	argv[n++] = "--mx-host=partial.test,noaddr.test,10";
	argv[n++] = "--mx-host=partial.test,mail.test,20";
	argv[n++] = "--mx-host=v6mx.test,v6only.test,10";
	argv[n++] = "--host-record=v6only.test,2001:db8::20";
	argv[n++] = "--mx-host=litmx.test,192.0.2.99,10";
	argv[n++] = "--mx-host=litmx.test,mail.test,20";
	argv[n++] = "--mx-host=tfmx.test,host.dead.test,10";
	argv[n++] = "--mx-host=tfmx2.test,host.dead.test,10";
	argv[n++] = "--mx-host=tfmx2.test,mail.test,20";
	snprintf(a_dead, sizeof(a_dead), "--server=/dead.test/127.0.0.1#%d",
	    silent_port);
	argv[n++] = a_dead;
	for (i = 0; i < MANY; i++) {
		snprintf(a_many[i], sizeof(a_many[i]),
		    "--address=/many.test/192.0.2.%d", i + 1);
		argv[n++] = a_many[i];
	}
	argv[n] = NULL;
	execv(path, (char *const *)argv);
	_exit(127);
}

struct ready {
	struct event_loop *loop;
	struct dns *d;
	struct result r;
	int done; /* 1 answered, -1 dnsmasq exited or deadline */
	uint64_t deadline;
	struct event_timer *poll;
};

static void ready_poll_cb(struct event_timer *t, void *ctx);

static void
ready_cb(const struct dns_answer *a, void *ctx)
{
	struct ready *rd = ctx;

	if (a->status == DNS_OK) {
		rd->done = 1;
		event_loop_stop(rd->loop);
		return;
	}
	/* not listening yet: ask again shortly */
	rd->poll = event_timer_add(rd->loop, READY_POLL_MS, ready_poll_cb, rd);
}

static void
ready_poll_cb(struct event_timer *t, void *ctx)
{
	struct ready *rd = ctx;

	(void)t;
	event_timer_del(&rd->poll);
	if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
		dnsmasq_pid = -1;
		rd->done = -1;
	} else if (now_ms() > rd->deadline)
		rd->done = -1;
	if (rd->done != 0) {
		event_loop_stop(rd->loop);
		return;
	}
	(void)dns_lookup(rd->d, "mail.test", DNS_T_A, ready_cb, rd);
}

/* Asks dnsmasq until it answers, it exits or READY_MS pass; 0 or -1. */
static int
dnsmasq_wait_ready(void)
{
	struct ready rd;

	memset(&rd, 0, sizeof(rd));
	rd.loop = event_loop_create();
	rd.d = make_dns(rd.loop, dnsmasq_server, READY_TIMEOUT_MS);
	rd.deadline = now_ms() + READY_MS;
	rd.poll = event_timer_add(rd.loop, 0, ready_poll_cb, &rd);
	(void)run_for(rd.loop, READY_MS + READY_TIMEOUT_MS);
	event_timer_del(&rd.poll);
	dns_free(&rd.d);
	event_loop_free(&rd.loop);
	return rd.done == 1 ? 0 : -1;
}

static int
dnsmasq_start(const char *path)
{
	int i, port;

	for (i = 0; i < DNSMASQ_STARTS; i++) {
		port = dnsmasq_fixed_port;
		if (port == 0 && (port = free_port(SOCK_DGRAM)) < 0)
			return -1;
		snprintf(dnsmasq_server, sizeof(dnsmasq_server), "127.0.0.1:%d",
		    port);
		dnsmasq_pid = fork();
		if (dnsmasq_pid < 0)
			return -1;
		if (dnsmasq_pid == 0)
			dnsmasq_exec(path, port);
		if (dnsmasq_wait_ready() == 0)
			return 0;
		dnsmasq_stop();
	}
	return -1;
}

/* --- cases --- */

struct fixture {
	struct event_loop *loop;
	struct dns *d;
};

static void
fixture_init(struct fixture *f)
{
	f->loop = event_loop_create();
	f->d = make_dns(f->loop, dnsmasq_server, TIMEOUT_MS);
}

static void
fixture_free(struct fixture *f)
{
	dns_free(&f->d);
	CHECK(f->d == NULL);
	event_loop_free(&f->loop);
}

static void
test_dns_a(void)
{
	struct fixture f;
	struct result r;
	char text[INET_ADDRSTRLEN];

	fixture_init(&f);
	lookup(f.d, f.loop, "mail.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_STR(r.error, "");
	CHECK_INT(r.n, 1);
	CHECK_INT(r.truncated, 0);
	inet_ntop(AF_INET, &r.rr[0].a, text, sizeof(text));
	CHECK_STR(text, "192.0.2.10");
	CHECK_INT(r.rr[0].ttl, TTL);
	/* a trailing dot is the same absolute name */
	lookup(f.d, f.loop, "mail.test.", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	fixture_free(&f);
}

static void
test_dns_aaaa(void)
{
	struct fixture f;
	struct result r;
	char text[INET6_ADDRSTRLEN];

	fixture_init(&f);
	lookup(f.d, f.loop, "mail.test", DNS_T_AAAA, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	inet_ntop(AF_INET6, &r.rr[0].aaaa, text, sizeof(text));
	CHECK_STR(text, "2001:db8::10");
	CHECK_INT(r.rr[0].ttl, TTL);
	/* the name exists, with no AAAA */
	lookup(f.d, f.loop, "v4only.test", DNS_T_AAAA, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.n, 0);
	CHECK(r.error[0] != '\0');
	fixture_free(&f);
}

static void
test_dns_nxdomain(void)
{
	struct fixture f;
	struct result r;

	fixture_init(&f);
	lookup(f.d, f.loop, "nosuch.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.n, 0);
	lookup(f.d, f.loop, "3.0.0.127.rbl.test", DNS_T_TXT, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	fixture_free(&f);
}

static void
test_dns_mx(void)
{
	struct fixture f;
	struct result r;

	fixture_init(&f);
	lookup(f.d, f.loop, "example.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 2);
	/* sorted by preference, whatever order the server sent */
	CHECK_INT(r.rr[0].mx_pref, 10);
	CHECK_STR(r.host[0], "mx1.test");
	CHECK_INT(r.rr[1].mx_pref, 20);
	CHECK_STR(r.host[1], "mx2.test");
	lookup(f.d, f.loop, "mail.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	fixture_free(&f);
}

static void
test_dns_txt(void)
{
	struct fixture f;
	struct result r;
	size_t i;
	int ok = 1;

	fixture_init(&f);
	lookup(f.d, f.loop, "2.0.0.127.rbl.test", DNS_T_TXT, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.txt[0], "Listed at rbl.test");
	CHECK_INT(r.rr[0].txt_len, strlen("Listed at rbl.test"));
	/* one record of two character-strings reads as one text */
	lookup(f.d, f.loop, "multi.test", DNS_T_TXT, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.txt[0], "abcdef");
	/* three strings of 255 bytes, cut at DNS_TXT_MAX (over TCP: the
	 * answer does not fit a 512-byte UDP reply) */
	lookup(f.d, f.loop, "long.test", DNS_T_TXT, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 1);
	CHECK_INT(r.rr[0].txt_len, DNS_TXT_MAX);
	CHECK_INT(strlen(r.txt[0]), DNS_TXT_MAX);
	for (i = 0; i < DNS_TXT_MAX; i++)
		if (r.txt[0][i] != (i < TXT_STRING_LEN          ? 'a'
		                       : i < 2 * TXT_STRING_LEN ? 'b'
		                                                : 'c'))
			ok = 0;
	CHECK(ok);
	fixture_free(&f);
}

static void
test_dns_many(void)
{
	struct fixture f;
	struct result r;

	fixture_init(&f);
	lookup(f.d, f.loop, "many.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, DNS_RR_MAX);
	CHECK_INT(r.truncated, 1);
	fixture_free(&f);
}

/* A name of len characters under .test, labels of 63 and the rest. */
static void
test_name(char *name, size_t len)
{
	size_t i, body = len - strlen(".test");

	memset(name, 'a', body);
	for (i = 63; i < body; i += 64)
		name[i] = '.';
	snprintf(name + body, strlen(".test") + 1, ".test");
}

static void
test_dns_bad_name(void)
{
	static const char *bad[] = {"", ".", "a..test", ".a.test", "a b.test",
	    "a\\.test", "caf\xc3\xa9.test", "a.test..", "a\n.test"};
	char name[DNS_NAME_MAX + 8];
	struct fixture f;
	struct result r;
	size_t i;

	fixture_init(&f);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lookup(f.d, f.loop, bad[i], DNS_T_A, &r);
		CHECK_INT(r.status, DNS_FAIL);
	}
	/* 63 is the longest label, 253 the longest name */
	memset(name, 'a', 64);
	snprintf(name + 64, sizeof(name) - 64, ".test");
	lookup(f.d, f.loop, name, DNS_T_A, &r);
	CHECK_INT(r.status, DNS_FAIL);
	snprintf(name + 63, sizeof(name) - 63, ".test");
	lookup(f.d, f.loop, name, DNS_T_A, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	test_name(name, DNS_NAME_MAX); /* the longest: asked */
	lookup(f.d, f.loop, name, DNS_T_A, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(strlen(r.name), DNS_NAME_MAX);
	snprintf(name + DNS_NAME_MAX, sizeof(name) - DNS_NAME_MAX, ".");
	lookup(f.d, f.loop, name, DNS_T_A, &r); /* and the root's dot */
	CHECK_INT(r.status, DNS_NOTFOUND);
	test_name(name, DNS_NAME_MAX + 1);
	lookup(f.d, f.loop, name, DNS_T_A, &r);
	CHECK_INT(r.status, DNS_FAIL);
	fixture_free(&f);
}

/* Cancelling from inside a callback: whichever answer comes first
 * cancels the other, which must then never be called. */
struct pair {
	struct event_loop *loop;
	struct dns_query *q[2];
	int calls[2];
};

static void
pair_cb(const struct dns_answer *a, void *ctx, int me)
{
	struct pair *p = ctx;

	(void)a;
	p->calls[me]++;
	p->q[me] = NULL; /* gone once its callback runs */
	dns_cancel(&p->q[1 - me]);
	CHECK(p->q[1 - me] == NULL);
}

static void
pair_cb0(const struct dns_answer *a, void *ctx)
{
	pair_cb(a, ctx, 0);
}

static void
pair_cb1(const struct dns_answer *a, void *ctx)
{
	pair_cb(a, ctx, 1);
}

static void
test_dns_cancel(void)
{
	struct fixture f;
	struct result r1, r2;
	struct dns_query *q;
	struct pair p;

	fixture_init(&f);
	q = NULL;
	dns_cancel(&q); /* NULL-safe */

	/* cancelled at once: never called, its sibling is */
	memset(&r1, 0, sizeof(r1));
	r1.loop = f.loop;
	q = dns_lookup(f.d, "mail.test", DNS_T_A, result_cb, &r1);
	dns_cancel(&q);
	CHECK(q == NULL);
	/* a bad name's answer is queued at once: cancel that too */
	q = dns_lookup(f.d, "a..test", DNS_T_A, result_cb, &r1);
	dns_cancel(&q);
	lookup(f.d, f.loop, "mail.test", DNS_T_AAAA, &r2);
	CHECK_INT(r2.status, DNS_OK);
	(void)run_for(f.loop, SETTLE_MS);
	CHECK_INT(r1.calls, 0);

	/* cancelled from a callback: exactly one of the two is called */
	memset(&p, 0, sizeof(p));
	p.loop = f.loop;
	p.q[0] = dns_lookup(f.d, "mail.test", DNS_T_A, pair_cb0, &p);
	p.q[1] = dns_lookup(f.d, "example.test", DNS_T_MX, pair_cb1, &p);
	(void)run_for(f.loop, SETTLE_MS * 2);
	CHECK_INT(p.calls[0] + p.calls[1], 1);
	fixture_free(&f);
}

/* dns_free() with queries pending, and from inside a callback. */
struct freer {
	struct dns *d;
	int calls;
};

static void
freer_cb(const struct dns_answer *a, void *ctx)
{
	struct freer *fr = ctx;

	(void)a;
	fr->calls++;
	dns_free(&fr->d);
}

static void
test_dns_free_pending(void)
{
	struct event_loop *loop = event_loop_create();
	struct result r;
	struct freer fr;

	/* pending, never run: no callback, no leak */
	memset(&r, 0, sizeof(r));
	fr.d = make_dns(loop, dnsmasq_server, TIMEOUT_MS);
	(void)dns_lookup(fr.d, "mail.test", DNS_T_A, result_cb, &r);
	(void)dns_lookup(fr.d, "a..test", DNS_T_A, result_cb, &r);
	dns_free(&fr.d);
	(void)run_for(loop, SETTLE_MS);
	CHECK_INT(r.calls, 0);

	/* the first callback frees the resolver: the rest never come */
	fr.d = make_dns(loop, dnsmasq_server, TIMEOUT_MS);
	fr.calls = 0;
	(void)dns_lookup(fr.d, "mail.test", DNS_T_A, freer_cb, &fr);
	(void)dns_lookup(fr.d, "mail.test", DNS_T_AAAA, freer_cb, &fr);
	(void)dns_lookup(fr.d, "example.test", DNS_T_MX, freer_cb, &fr);
	(void)run_for(loop, SETTLE_MS * 2);
	CHECK_INT(fr.calls, 1);
	CHECK(fr.d == NULL);
	event_loop_free(&loop);
}

/* A callback that starts the next lookup: MX, then the A of the MX. */
struct chain {
	struct dns *d;
	struct result a;
	int mx_calls;
};

static void
chain_mx_cb(const struct dns_answer *a, void *ctx)
{
	struct chain *c = ctx;

	c->mx_calls++;
	CHECK_INT(a->status, DNS_OK);
	CHECK_STR(a->name, "example.test");
	CHECK_INT(a->type, DNS_T_MX);
	(void)dns_lookup(c->d, "mail.test", DNS_T_A, result_cb, &c->a);
	CHECK_INT(c->a.calls, 0);
}

static void
test_dns_chain(void)
{
	struct fixture f;
	struct chain c;

	fixture_init(&f);
	memset(&c, 0, sizeof(c));
	c.d = f.d;
	c.a.loop = f.loop;
	c.a.stop = 1;
	(void)dns_lookup(f.d, "example.test", DNS_T_MX, chain_mx_cb, &c);
	CHECK_INT(run_for(f.loop, GUARD_MS), 0);
	CHECK_INT(c.mx_calls, 1);
	CHECK_INT(c.a.calls, 1);
	CHECK_INT(c.a.status, DNS_OK);
	fixture_free(&f);
}

static void
test_dns_timeout(void)
{
	struct event_loop *loop = event_loop_create();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct result dead, live;
	struct dns *d_dead, *d_live;
	char server[64];
	uint64_t t0;
	int fd;

	/* a UDP socket that is bound (no ICMP "port unreachable") and
	 * never read */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_INT(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_INT(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
	d_dead = make_dns(loop, server, DEAD_TIMEOUT_MS);
	d_live = make_dns(loop, dnsmasq_server, TIMEOUT_MS);

	memset(&dead, 0, sizeof(dead));
	memset(&live, 0, sizeof(live));
	dead.loop = live.loop = loop;
	dead.stop = 1;
	t0 = now_ms();
	(void)dns_lookup(d_dead, "mail.test", DNS_T_A, result_cb, &dead);
	(void)dns_lookup(d_live, "mail.test", DNS_T_A, result_cb, &live);
	CHECK_INT(run_for(loop, GUARD_MS), 0);

	CHECK_INT(live.calls, 1);
	CHECK_INT(live.status, DNS_OK);
	CHECK(live.at_ms - t0 < PROMPT_MS);
	CHECK_INT(dead.calls, 1);
	CHECK_INT(dead.status, DNS_TEMPFAIL);
	CHECK_STR(dead.error, "timeout");
	CHECK(dead.at_ms - t0 >= DEAD_TIMEOUT_MS - DEAD_EARLY_MS);
	CHECK(dead.at_ms - t0 <= DEAD_TIMEOUT_MS + DEAD_LATE_MS);
	CHECK(live.at_ms < dead.at_ms);
	printf("# live answer after %llu ms, dead server's timeout after "
	       "%llu ms\n",
	    (unsigned long long)(live.at_ms - t0),
	    (unsigned long long)(dead.at_ms - t0));

	/* c-ares may still hold the timed-out query: freed with it */
	dns_free(&d_dead);
	dns_free(&d_live);
	close(fd);
	event_loop_free(&loop);
}

static void
test_dns_create(void)
{
	static const char *good[] = {"127.0.0.1", "127.0.0.1:53",
	    " 127.0.0.1:5353, [::1]:53 ::1\t[::1]", ",", "192.0.2.1,192.0.2.2"};
	static const char *bad[] = {"localhost", "127.0.0.1:", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]x",
	    "[::1]:", "[127.0.0.1]", "::1:53:x", "1.2.3.4.5", "127.0.0.1:+53"};
	struct event_loop *loop = event_loop_create();
	char many[DNS_SERVERS_MAX * 16 + 16];
	const char *error;
	struct dns *d;
	size_t i, off = 0;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		error = NULL;
		d = dns_create(loop, good[i], TIMEOUT_MS, &error);
		if (d == NULL)
			printf("# \"%s\": %s\n", good[i], error);
		CHECK(d != NULL);
		dns_free(&d);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		d = dns_create(loop, bad[i], TIMEOUT_MS, &error);
		if (d != NULL)
			printf("# \"%s\" accepted\n", bad[i]);
		CHECK(d == NULL);
		CHECK(error != NULL);
		dns_free(&d);
	}
	/* DNS_SERVERS_MAX servers, then one more */
	for (i = 0; i < DNS_SERVERS_MAX; i++)
		off += (size_t)snprintf(
		    many + off, sizeof(many) - off, "127.0.0.%zu ", i + 1);
	d = dns_create(loop, many, TIMEOUT_MS, &error);
	CHECK(d != NULL);
	dns_free(&d);
	snprintf(many + off, sizeof(many) - off, "192.0.2.1");
	CHECK(dns_create(loop, many, TIMEOUT_MS, &error) == NULL);
	CHECK(dns_create(loop, NULL, DNS_TIMEOUT_MIN_MS - 1, &error) == NULL);
	CHECK(dns_create(loop, NULL, DNS_TIMEOUT_MAX_MS + 1, &error) == NULL);
	d = dns_create(loop, NULL, TIMEOUT_MS, &error);
	CHECK(d != NULL); /* /etc/resolv.conf, or c-ares' default */
	dns_free(&d);
	dns_free(&d); /* NULL-safe */
	event_loop_free(&loop);
}

static void
test_dns_reverse(void)
{
	static const struct {
		const char *addr, *zone, *want;
	} cases[] = {
	    {"127.0.0.2", "zen.example", "2.0.0.127.zen.example"},
	    {"192.0.2.10", "in-addr.arpa.", "10.2.0.192.in-addr.arpa."},
	    {"192.0.2.10", NULL, "10.2.0.192"},
	    {"192.0.2.10", "", "10.2.0.192"},
	    {"::ffff:127.0.0.2", "rbl.test", "2.0.0.127.rbl.test"},
	    {"2001:db8:1:2:3:4:567:89ab", "ip6.arpa",
	        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0."
	        "2.ip6.arpa"},
	    {"::1", "rbl.test",
	        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	        "0.rbl.test"},
	};
	static const char *bad[] = {
	    "", "127.0.0", "127.0.0.256", "host", "::g", "127.0.0.1 "};
	char out[DNS_NAME_MAX + 2], small[12], zone[DNS_NAME_MAX];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(dns_reverse_name(
		              cases[i].addr, cases[i].zone, out, sizeof(out)),
		    0);
		CHECK_STR(out, cases[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(
		    dns_reverse_name(bad[i], "rbl.test", out, sizeof(out)), -1);
	/* "10.2.0.192" fits in 12 bytes, "10.2.0.192.x" does not */
	CHECK_INT(
	    dns_reverse_name("192.0.2.10", NULL, small, sizeof(small)), 0);
	CHECK_INT(
	    dns_reverse_name("192.0.2.10", "x", small, sizeof(small)), -1);
	CHECK_STR(small, "");
	/* 63 + 1 + 190 = 254 characters: longer than a name may be */
	memset(zone, 'a', 190);
	zone[190] = '\0';
	CHECK_INT(dns_reverse_name("::1", zone, out, sizeof(out)), -1);
	zone[189] = '\0';
	CHECK_INT(dns_reverse_name("::1", zone, out, sizeof(out)), 0);
	CHECK_INT(strlen(out), DNS_NAME_MAX);
}

/* --- answers' TTLs and NXDOMAIN --- */

static void
test_dns_ttl_nxdomain(void)
{
	struct fixture f;
	struct result r;

	fixture_init(&f);
	/* c-ares does not report these: read from the packet */
	lookup(f.d, f.loop, "example.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.rr[0].ttl, TTL);
	CHECK_INT(r.rr[1].ttl, TTL);
	lookup(f.d, f.loop, "multi.test", DNS_T_TXT, &r);
	CHECK_INT(r.rr[0].ttl, TTL);
	/* a positive answer is cached; the copy says so */
	lookup(f.d, f.loop, "Example.Test.", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.n, 2);
	CHECK_STR(r.host[0], "mx1.test");
	CHECK_STR(r.name, "Example.Test.");

	lookup(f.d, f.loop, "nosuch.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 1);
	lookup(f.d, f.loop, "mail.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 0);
	lookup(f.d, f.loop, "v4only.test", DNS_T_AAAA, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 0);
	/* this server sends no SOA: negative answers are not kept */
	CHECK_INT(r.ttl, 0);
	lookup(f.d, f.loop, "v4only.test", DNS_T_AAAA, &r);
	CHECK_INT(r.cached, 0);
	fixture_free(&f);
}

/* --- the cache, against instances of our own --- */

struct aux {
	pid_t pid;
	char server[64];
};

static int
aux_start(struct aux *x, int ttl, int port)
{
	pid_t main_pid = dnsmasq_pid;
	char main_server[sizeof(dnsmasq_server)];
	int rc;

	memcpy(main_server, dnsmasq_server, sizeof(main_server));
	dnsmasq_auth_ttl = ttl;
	dnsmasq_fixed_port = port;
	dnsmasq_pid = -1;
	rc = dnsmasq_start(dnsmasq_path);
	x->pid = dnsmasq_pid;
	memcpy(x->server, dnsmasq_server, sizeof(x->server));
	dnsmasq_pid = main_pid;
	memcpy(dnsmasq_server, main_server, sizeof(dnsmasq_server));
	dnsmasq_auth_ttl = 0;
	dnsmasq_fixed_port = 0;
	return rc;
}

static void
aux_stop(struct aux *x)
{
	if (x->pid <= 0)
		return;
	kill(x->pid, SIGKILL);
	while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
		;
	x->pid = -1;
}

/* One dns_mx_resolve() to completion, copied out. */
struct mx_result {
	struct event_loop *loop;
	int calls;
	enum dns_mx_status status;
	char dsn[16];
	char reason[ERROR_TEXT_MAX * 4];
	int n;
	char host[MX_TARGETS_KEPT][HOST_MAX];
	unsigned pref[MX_TARGETS_KEPT];
	char addr[MX_TARGETS_KEPT][ADDR_TEXT_MAX];
	int port_zero;
};

static void
mx_result_cb(const struct dns_mx_result *res, void *ctx)
{
	struct mx_result *r = ctx;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	int i;

	r->calls++;
	r->status = res->status;
	snprintf(r->dsn, sizeof(r->dsn), "%s", res->dsn);
	snprintf(r->reason, sizeof(r->reason), "%s", res->reason);
	r->n = res->n;
	r->port_zero = 1;
	for (i = 0; i < res->n && i < MX_TARGETS_KEPT; i++) {
		snprintf(r->host[i], HOST_MAX, "%s", res->t[i].host);
		r->pref[i] = res->t[i].pref;
		if (res->t[i].addr.ss_family == AF_INET) {
			sin = (const struct sockaddr_in *)&res->t[i].addr;
			CHECK_INT(res->t[i].addrlen, sizeof(*sin));
			inet_ntop(
			    AF_INET, &sin->sin_addr, r->addr[i], ADDR_TEXT_MAX);
			r->port_zero &= sin->sin_port == 0;
		} else {
			sin6 = (const struct sockaddr_in6 *)&res->t[i].addr;
			CHECK_INT(res->t[i].addr.ss_family, AF_INET6);
			CHECK_INT(res->t[i].addrlen, sizeof(*sin6));
			inet_ntop(AF_INET6, &sin6->sin6_addr, r->addr[i],
			    ADDR_TEXT_MAX);
			r->port_zero &= sin6->sin6_port == 0;
		}
	}
	event_loop_stop(r->loop);
}

static void
mx(struct dns *d, struct event_loop *loop, const char *domain, int flags,
    enum dns_addr_pref pref, struct mx_result *r)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	(void)dns_mx_resolve(d, domain, flags, pref, mx_result_cb, r);
	CHECK_INT(r->calls, 0); /* never before dns_mx_resolve returns */
	CHECK_INT(run_for(loop, GUARD_MS), 0);
	CHECK_INT(r->calls, 1);
}

static void
test_dns_cache_hit(void)
{
	struct event_loop *loop = event_loop_create();
	struct aux x;
	struct dns *d;
	struct result r;
	struct mx_result m;

	CHECK_INT(aux_start(&x, LONG_TTL, 0), 0);
	d = make_dns(loop, x.server, TIMEOUT_MS);
	lookup(d, loop, "mail.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.ttl, LONG_TTL);
	CHECK_INT(r.cached, 0);
	lookup(d, loop, "example.test", DNS_T_MX, &r);
	CHECK_INT(r.ttl, LONG_TTL);
	lookup(d, loop, "nosuch.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 1);
	CHECK_INT(r.ttl, LONG_TTL); /* the SOA's */
	lookup(d, loop, "mail.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 0);
	CHECK_INT(r.ttl, LONG_TTL);
	aux_stop(&x);

	/* the server is gone: the cache answers, whatever the case */
	lookup(d, loop, "MAIL.test.", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.cached, 1);
	CHECK_STR(r.name, "MAIL.test.");
	CHECK_INT(r.n, 1);
	CHECK(r.rr[0].ttl > LONG_TTL - 5 && r.rr[0].ttl <= LONG_TTL);
	lookup(d, loop, "nosuch.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 1);
	CHECK_INT(r.cached, 1);
	lookup(d, loop, "mail.test", DNS_T_MX, &r);
	CHECK_INT(r.status, DNS_NOTFOUND);
	CHECK_INT(r.nxdomain, 0);
	CHECK_INT(r.cached, 1);
	/* what was never asked is not there */
	lookup(d, loop, "mail.test", DNS_T_AAAA, &r);
	CHECK_INT(r.status, DNS_TEMPFAIL);
	/* dns_mx from the cache alone: MX, then the exchanger's A and
	 * the AAAA that failed (not cached) */
	mx(d, loop, "example.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.host[0], "mail.test");
	CHECK_STR(m.addr[0], "192.0.2.10");
	dns_free(&d);
	event_loop_free(&loop);
}

static void
test_dns_cache_tempfail(void)
{
	struct event_loop *loop = event_loop_create();
	char server[64];
	struct aux x;
	struct dns *d;
	struct result r;
	int port = free_port(SOCK_DGRAM);

	/* nothing there yet: refused at once, a failure never kept */
	CHECK(port > 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	d = make_dns(loop, server, TIMEOUT_MS);
	lookup(d, loop, "mail.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_TEMPFAIL);
	CHECK_INT(r.ttl, 0);
	if (aux_start(&x, LONG_TTL, port) < 0) {
		/* someone took the port meanwhile: nothing to show */
		printf("# port %d taken, case skipped\n", port);
		dns_free(&d);
		event_loop_free(&loop);
		return;
	}
	lookup(d, loop, "mail.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.cached, 0);
	aux_stop(&x);
	dns_free(&d);
	event_loop_free(&loop);
}

static void
test_dns_cache_expiry(void)
{
	struct event_loop *loop = event_loop_create();
	struct aux x;
	struct dns *d;
	struct result r, neg;
	uint64_t t0, waited;

	CHECK_INT(aux_start(&x, SHORT_TTL, 0), 0);
	d = make_dns(loop, x.server, TIMEOUT_MS);
	lookup(d, loop, "mail.test", DNS_T_A, &r);
	t0 = now_ms();
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.ttl, SHORT_TTL);
	lookup(d, loop, "nosuch.test", DNS_T_A, &neg);
	CHECK_INT(neg.nxdomain, 1);
	CHECK_INT(neg.ttl, SHORT_TTL);
	aux_stop(&x);
	lookup(d, loop, "mail.test", DNS_T_A, &r);
	lookup(d, loop, "nosuch.test", DNS_T_A, &neg);
	if (now_ms() - t0 < SHORT_TTL * MS_PER_SEC - EXPIRY_EARLY_MS) {
		CHECK_INT(r.cached, 1);
		CHECK_INT(neg.cached, 1);
	}
	/* wait it out: asked again until the (dead) server is */
	do {
		(void)run_for(loop, EXPIRY_POLL_MS);
		lookup(d, loop, "mail.test", DNS_T_A, &r);
	} while (r.status == DNS_OK && now_ms() - t0 < EXPIRY_WAIT_MS);
	waited = now_ms() - t0;
	printf("# a TTL of %d s expired after %llu ms\n", SHORT_TTL,
	    (unsigned long long)waited);
	CHECK_INT(r.status, DNS_TEMPFAIL);
	CHECK(waited >= SHORT_TTL * MS_PER_SEC - EXPIRY_EARLY_MS);
	lookup(d, loop, "nosuch.test", DNS_T_A, &neg);
	CHECK_INT(neg.status, DNS_TEMPFAIL);
	dns_free(&d);
	event_loop_free(&loop);
}

/* DNS_CACHE_MAX + 1 names: the first one asked is the one dropped. */
struct cap {
	struct event_loop *loop;
	int pending, notfound;
};

static void
cap_cb(const struct dns_answer *a, void *ctx)
{
	struct cap *c = ctx;

	if (a->status == DNS_NOTFOUND && a->nxdomain && a->ttl > 0)
		c->notfound++;
	if (--c->pending == 0)
		event_loop_stop(c->loop);
}

static void
test_dns_cache_cap(void)
{
	struct event_loop *loop = event_loop_create();
	char name[64];
	struct aux x;
	struct dns *d;
	struct result r;
	struct cap c;
	int i, j;

	CHECK_INT(aux_start(&x, LONG_TTL, 0), 0);
	d = make_dns(loop, x.server, TIMEOUT_MS);
	memset(&c, 0, sizeof(c));
	c.loop = loop;
	for (i = 0; i <= DNS_CACHE_MAX; i += CAP_BATCH) {
		for (j = i; j < i + CAP_BATCH && j <= DNS_CACHE_MAX; j++) {
			snprintf(name, sizeof(name), "n%d.test", j);
			c.pending++;
			(void)dns_lookup(d, name, DNS_T_A, cap_cb, &c);
		}
		CHECK_INT(run_for(loop, GUARD_MS), 0);
	}
	CHECK_INT(c.notfound, DNS_CACHE_MAX + 1);
	aux_stop(&x);
	lookup(d, loop, "n0.test", DNS_T_A, &r);
	CHECK_INT(r.status, DNS_TEMPFAIL);
	snprintf(name, sizeof(name), "n%d.test", DNS_CACHE_MAX);
	lookup(d, loop, name, DNS_T_A, &r);
	CHECK_INT(r.cached, 1);
	lookup(d, loop, "n1.test", DNS_T_A, &r);
	CHECK_INT(r.cached, 1);
	dns_free(&d);
	event_loop_free(&loop);
}

/* --- dns_mx --- */

static void
test_mx_order(void)
{
	struct fixture f;
	struct mx_result m;

	fixture_init(&f);
	mx(f.d, f.loop, "pref.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_STR(m.dsn, "");
	CHECK_STR(m.reason, "");
	CHECK_INT(m.n, 3);
	CHECK_STR(m.host[0], "mail.test");
	CHECK_INT(m.pref[0], 10);
	CHECK_STR(m.addr[0], "2001:db8::10"); /* IPv6 first */
	CHECK_STR(m.host[1], "mail.test");
	CHECK_STR(m.addr[1], "192.0.2.10");
	CHECK_STR(m.host[2], "v4only.test");
	CHECK_INT(m.pref[2], 20);
	CHECK_STR(m.addr[2], "192.0.2.11");
	CHECK(m.port_zero);
	mx(f.d, f.loop, "pref.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.n, 2);
	CHECK_STR(m.addr[0], "192.0.2.10");
	CHECK_STR(m.addr[1], "192.0.2.11");
	mx(f.d, f.loop, "pref.test.", 0, DNS_ADDR_IPV6, &m);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.addr[0], "2001:db8::10");
	fixture_free(&f);
}

static void
test_mx_equal(void)
{
	struct fixture f;
	struct mx_result m;
	int i, a_first = 0, b_first = 0;

	fixture_init(&f);
	for (i = 0; i < SHUFFLE_TRIES && !(a_first && b_first); i++) {
		mx(f.d, f.loop, "eq.test", 0, DNS_ADDR_IPV4, &m);
		CHECK_INT(m.status, DNS_MX_OK);
		CHECK_INT(m.n, 3);
		if (strcmp(m.host[0], "eqa.test") == 0) {
			a_first++;
			CHECK_STR(m.host[1], "eqb.test");
		} else {
			b_first++;
			CHECK_STR(m.host[0], "eqb.test");
			CHECK_STR(m.host[1], "eqa.test");
		}
		CHECK_STR(m.host[2], "mail.test"); /* 20 after both 10s */
	}
	printf("# equal preferences: eqa first %d, eqb first %d times\n",
	    a_first, b_first);
	CHECK(a_first > 0 && b_first > 0);
	fixture_free(&f);
}

static void
test_mx_null_nxdomain(void)
{
	struct fixture f;
	struct mx_result m;

	fixture_init(&f);
	mx(f.d, f.loop, "nullmx.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NULL);
	CHECK_STR(m.dsn, "5.1.10");
	CHECK_STR(m.reason,
	    "mail for nullmx.test is refused by a null MX (RFC 7505)");
	CHECK_INT(m.n, 0);
	mx(f.d, f.loop, "nosuch.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.1.2");
	CHECK_STR(m.reason,
	    "Host or domain name not found. Name service error for "
	    "name=nosuch.test type=MX: Host not found");
	mx(f.d, f.loop, "bad..test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.1.2");
	fixture_free(&f);
}

static void
test_mx_implicit(void)
{
	struct fixture f;
	struct mx_result m;

	fixture_init(&f);
	/* no MX: the domain's own addresses, preference 0 */
	mx(f.d, f.loop, "mail.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 2);
	CHECK_STR(m.host[0], "mail.test");
	CHECK_INT(m.pref[0], 0);
	CHECK_STR(m.addr[0], "2001:db8::10");
	CHECK_STR(m.addr[1], "192.0.2.10");
	/* neither MX nor address: no mail domain */
	mx(f.d, f.loop, "multi.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.1.2");
	CHECK(strstr(m.reason, "name=multi.test type=") != NULL);
	/* [host]: no MX lookup, even where there is an MX */
	mx(f.d, f.loop, "mail.test", DNS_MX_NO_MX, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.addr[0], "192.0.2.10");
	mx(f.d, f.loop, "pref.test", DNS_MX_NO_MX, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.4.4");
	/* address literals: their own target, no DNS */
	mx(f.d, f.loop, "[192.0.2.7]", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.addr[0], "192.0.2.7");
	CHECK_STR(m.host[0], "[192.0.2.7]");
	mx(f.d, f.loop, "[IPv6:2001:db8::7]", DNS_MX_NO_MX, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_STR(m.addr[0], "2001:db8::7");
	mx(f.d, f.loop, "[IPv6:2001:db8::7]", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	fixture_free(&f);
}

static void
test_mx_exchangers(void)
{
	struct fixture f;
	struct mx_result m;

	fixture_init(&f);
	/* an exchanger that is a CNAME: its target's addresses */
	mx(f.d, f.loop, "cnmx.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 2);
	CHECK_STR(m.host[0], "alias.test");
	CHECK_STR(m.addr[0], "2001:db8::10");
	CHECK_STR(m.addr[1], "192.0.2.10");
	/* one exchanger without address: skipped */
	mx(f.d, f.loop, "partial.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.host[0], "mail.test");
	CHECK_INT(m.pref[0], 20);
	/* none has one */
	mx(f.d, f.loop, "example.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.4.4");
	CHECK_STR(
	    m.reason, "no MX host for example.test has a valid address record");
	/* AAAA only, IPv4 asked */
	mx(f.d, f.loop, "v6mx.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_NOTFOUND);
	CHECK_STR(m.dsn, "5.4.4");
	mx(f.d, f.loop, "v6mx.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.addr[0], "2001:db8::20");
	/* an MX naming an address is no exchanger (RFC 5321 5.1) */
	mx(f.d, f.loop, "litmx.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.host[0], "mail.test");
	fixture_free(&f);
}

/* A DNS server that answers every query with SERVFAIL. */
static void
servfail_cb(struct event_fd *ev, int fd, int events, void *ctx)
{
	unsigned char buf[512];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	(void)ev;
	(void)events;
	(void)ctx;
	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
	    (struct sockaddr *)&from, &fromlen);
	if (n < 12)
		return;
	buf[2] |= 0x80;                              /* QR */
	buf[3] = (unsigned char)(buf[3] & 0xf0) | 2; /* SERVFAIL */
	(void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
}

static void
test_mx_tempfail(void)
{
	struct event_loop *loop = event_loop_create();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct event_fd *ev;
	struct mx_result m;
	struct dns *d;
	char server[64];
	int fd;

	/* SERVFAIL on the MX query */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_INT(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_INT(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ev = event_fd_add(loop, fd, EVENT_READ, servfail_cb, NULL);
	snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(sin.sin_port));
	d = make_dns(loop, server, TIMEOUT_MS);
	mx(d, loop, "example.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_TEMPFAIL);
	CHECK_STR(m.dsn, "4.4.3");
	CHECK_STR(m.reason,
	    "Host or domain name not found. Name service error for "
	    "name=example.test type=MX: Host not found, try again");
	dns_free(&d);
	event_fd_del(&ev);
	close(fd);

	/* the only exchanger's lookups time out (dead.test is forwarded
	 * to a server that never answers) */
	d = make_dns(loop, dnsmasq_server, DEAD_TIMEOUT_MS);
	mx(d, loop, "tfmx.test", 0, DNS_ADDR_ANY, &m);
	CHECK_INT(m.status, DNS_MX_TEMPFAIL);
	CHECK_STR(m.dsn, "4.4.3");
	CHECK(strstr(m.reason, "name=host.dead.test") != NULL);
	/* another exchanger has an address: that one */
	mx(d, loop, "tfmx2.test", 0, DNS_ADDR_IPV4, &m);
	CHECK_INT(m.status, DNS_MX_OK);
	CHECK_INT(m.n, 1);
	CHECK_STR(m.host[0], "mail.test");
	dns_free(&d);
	event_loop_free(&loop);
}

/* Cancel and free, pending and from inside callbacks. */
struct mx_pair {
	struct dns *d;
	struct dns_mx_query *q[2];
	int calls[2];
	int free_d;
};

static void
mx_pair_cb(const struct dns_mx_result *r, void *ctx, int me)
{
	struct mx_pair *p = ctx;

	(void)r;
	p->calls[me]++;
	p->q[me] = NULL;
	dns_mx_cancel(&p->q[1 - me]);
	if (p->free_d)
		dns_free(&p->d);
}

static void
mx_pair_cb0(const struct dns_mx_result *r, void *ctx)
{
	mx_pair_cb(r, ctx, 0);
}

static void
mx_pair_cb1(const struct dns_mx_result *r, void *ctx)
{
	mx_pair_cb(r, ctx, 1);
}

static void
test_mx_cancel_free(void)
{
	struct event_loop *loop = event_loop_create();
	struct mx_result m;
	struct dns_mx_query *q;
	struct mx_pair p;
	int free_d;

	memset(&m, 0, sizeof(m));
	q = NULL;
	dns_mx_cancel(&q);
	for (free_d = 0; free_d <= 1; free_d++) {
		/* one answers, cancels the other (and maybe frees all) */
		memset(&p, 0, sizeof(p));
		p.free_d = free_d;
		p.d = make_dns(loop, dnsmasq_server, TIMEOUT_MS);
		p.q[0] = dns_mx_resolve(
		    p.d, "pref.test", 0, DNS_ADDR_ANY, mx_pair_cb0, &p);
		p.q[1] = dns_mx_resolve(
		    p.d, "[192.0.2.1]", 0, DNS_ADDR_ANY, mx_pair_cb1, &p);
		(void)run_for(loop, SETTLE_MS * 2);
		CHECK_INT(p.calls[0] + p.calls[1], 1);
		CHECK((p.d == NULL) == free_d);
		dns_free(&p.d);
	}
	/* cancelled at once, in every state; then freed pending */
	p.d = make_dns(loop, dnsmasq_server, TIMEOUT_MS);
	q = dns_mx_resolve(p.d, "pref.test", 0, DNS_ADDR_ANY, mx_result_cb, &m);
	dns_mx_cancel(&q);
	CHECK(q == NULL);
	q = dns_mx_resolve(
	    p.d, "[192.0.2.1]", 0, DNS_ADDR_ANY, mx_result_cb, &m);
	dns_mx_cancel(&q);
	q = dns_mx_resolve(
	    p.d, "mail.test", DNS_MX_NO_MX, DNS_ADDR_ANY, mx_result_cb, &m);
	dns_mx_cancel(&q);
	(void)dns_mx_resolve(p.d, "eq.test", 0, DNS_ADDR_ANY, mx_result_cb, &m);
	(void)dns_mx_resolve(
	    p.d, "[192.0.2.1]", 0, DNS_ADDR_ANY, mx_result_cb, &m);
	(void)dns_mx_resolve(
	    p.d, "mail.test", DNS_MX_NO_MX, DNS_ADDR_ANY, mx_result_cb, &m);
	dns_free(&p.d);
	(void)run_for(loop, SETTLE_MS);
	CHECK_INT(m.calls, 0);
	event_loop_free(&loop);
}

int
main(void)
{
	static const struct unit_case cases[] = {
	    UNIT_CASE(test_dns_reverse),
	    UNIT_CASE(test_dns_create),
	    UNIT_CASE(test_dns_a),
	    UNIT_CASE(test_dns_aaaa),
	    UNIT_CASE(test_dns_nxdomain),
	    UNIT_CASE(test_dns_mx),
	    UNIT_CASE(test_dns_txt),
	    UNIT_CASE(test_dns_many),
	    UNIT_CASE(test_dns_bad_name),
	    UNIT_CASE(test_dns_cancel),
	    UNIT_CASE(test_dns_free_pending),
	    UNIT_CASE(test_dns_chain),
	    UNIT_CASE(test_dns_timeout),
	    UNIT_CASE(test_dns_ttl_nxdomain),
	    UNIT_CASE(test_dns_cache_hit),
	    UNIT_CASE(test_dns_cache_tempfail),
	    UNIT_CASE(test_dns_cache_expiry),
	    UNIT_CASE(test_dns_cache_cap),
	    UNIT_CASE(test_mx_order),
	    UNIT_CASE(test_mx_equal),
	    UNIT_CASE(test_mx_null_nxdomain),
	    UNIT_CASE(test_mx_implicit),
	    UNIT_CASE(test_mx_exchangers),
	    UNIT_CASE(test_mx_tempfail),
	    UNIT_CASE(test_mx_cancel_free),
	};
	const char *path;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((path = dnsmasq_find()) == NULL) {
		printf("1..0 # SKIP dnsmasq not installed "
		       "(apt-get install dnsmasq-base)\n");
		return 77;
	}
	dnsmasq_path = path;
	silent_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (silent_fd < 0 ||
	    bind(silent_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(silent_fd, (struct sockaddr *)&sin, &len) < 0) {
		printf("1..1\nnot ok 1 - a UDP socket on 127.0.0.1\n");
		return 1;
	}
	silent_port = ntohs(sin.sin_port);
	atexit(dnsmasq_stop);
	if (dnsmasq_start(path) < 0) {
		printf("1..1\nnot ok 1 - dnsmasq %s did not start and answer\n",
		    path);
		return 1;
	}
	return unit_run(cases, sizeof(cases) / sizeof(cases[0]));
}
