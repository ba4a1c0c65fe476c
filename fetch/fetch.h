/* SPDX-License-Identifier: MIT */
/*
 * The fetch daemon's parts: accounts (fetch_account.c), the per-account
 * state journal (fetch_state.c), the network under a protocol session
 * (fetch_net.c), the POP3 client (fetch_pop3.c), the way one message
 * goes into the queue (fetch_inject.c) and ETRN (fetch_etrn.c).
 */
#ifndef TERN_FETCH_H
#define TERN_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/stream.h"

struct tls_client;

/* Account names: the state file's name, so a short safe word. */
#define FETCH_NAME_MAX 64
/* One line of the accounts file. */
#define FETCH_ACCOUNT_LINE_MAX 4096
/* The accounts file as a whole. */
#define FETCH_ACCOUNTS_FILE_MAX (1024 * 1024)
#define FETCH_ACCOUNTS_MAX 256
/* RFC 1939 7: a UIDL is 1 to 70 characters 0x21..0x7E. */
#define FETCH_UIDL_MAX 70
/* A POP3 response line: RFC 2449 4 caps it at 512 octets with CRLF;
 * some servers send longer texts, which are cut (STREAM_TOOLONG). */
#define FETCH_LINE_MAX 1024
/* A command line we send (AUTHENTICATE PLAIN's base64 of a long user
 * name and password included). */
#define FETCH_CMD_MAX 8192
/* The most messages a server may list: more is a protocol error, not
 * memory we spend (fetch_max_messages bounds what one poll takes). */
#define FETCH_LIST_MAX 1000000

enum fetch_proto {
	FETCH_POP3,
	FETCH_IMAP,
};

struct fetch_account {
	char *name;
	enum fetch_proto proto;
	int implicit_tls;	/* pop3s/imaps */
	int tls_none;		/* tls=none: plaintext allowed */
	int tls_verify;		/* tls_verify=no turns it off */
	char *tls_ca_file;	/* NULL: the system's CAs */
	char *user, *host, *port;
	char *folder;		/* IMAP */
	char *password;
	char *to;		/* single-drop recipient */
	int multidrop;
	int keep;
	struct tls_client *tls;	/* made at the first TLS use */
};

struct fetch_accounts {
	struct fetch_account **v;
	size_t n;
};

/*
 * Reads the accounts file as root, before the privilege drop: it must
 * be a regular file (no symbolic link is followed), owned by root (by
 * the daemon's own user when not started as root) and closed to group
 * and others. 0 with *out filled (no accounts when the file is absent),
 * or -1 with *error_r (a line that does not parse names its number; the
 * file is then refused whole).
 */
int fetch_accounts_load(const char *path, struct fetch_accounts *out,
    char **error_r);
/* Parses one line (for the unit test too). 1 account, 0 blank or
 * comment, -1 with *error_r. */
int fetch_account_parse(const char *line, struct fetch_account **acct_r,
    char **error_r);
void fetch_account_free(struct fetch_account **a_r);
void fetch_accounts_free(struct fetch_accounts *a);

/* What happened to a message of an account, recorded durably. */
enum fetch_mark {
	/* Queue ID chosen and tmp/ID created; the commit may or may not
	 * have happened (see fetch_state.c). */
	FETCH_MARK_PENDING = 'p',
	/* In the queue: never collect it again. */
	FETCH_MARK_QUEUED = 'q',
	/* Not queued after all (refused, a write error): forget it. */
	FETCH_MARK_DROPPED = 'x',
};

struct fetch_entry {
	char qid[16];
	enum fetch_mark mark;
	long long when;
};

/* 1 if id can be a journal key: RFC 1939 7's UIDL, 1 to FETCH_UIDL_MAX
 * characters 0x21..0x7E (an IMAP "UIDVALIDITY.UID" is one too). */
int fetch_id_valid(const char *id);

/* One account's state: the remote IDs it already queued. */
struct fetch_state {
	char *path;
	int fd;			/* the journal, O_APPEND */
	struct hash *ids;	/* UIDL -> struct fetch_entry */
};

/*
 * Opens $fetch_state_directory/NAME (creating it), replays the journal
 * and settles pending entries (fetch_state.c explains how). 0, or -1
 * with *error_r.
 */
int fetch_state_open(struct fetch_state *s, const char *name,
    char **error_r);
/* Appends "ID QID MARK WHEN" and fdatasyncs. 0 or -1 (logged). */
int fetch_state_mark(struct fetch_state *s, const char *id, const char *qid,
    enum fetch_mark mark);
/* Forgets ids the server no longer lists (present[i] = 0) and rewrites
 * the journal compactly (tmp + fsync + rename). */
void fetch_state_prune(struct fetch_state *s, struct hash *listed);
const struct fetch_entry *fetch_state_get(const struct fetch_state *s,
    const char *id);
void fetch_state_close(struct fetch_state *s);

/* A connection to a server, TLS or not, with per-read deadlines. */
struct fetch_conn {
	int fd;
	struct stream st;
	int tls;		/* TLS is under st */
	char peer_addr[64];	/* numeric, for Received: and logs */
	char tls_desc[128];	/* "TLSv1.3 with cipher X" */
	int timeout_ms;		/* one wait: fetch_timeout */
	/* Monotonic ms: the session's end (fetch_session_timeout) and the
	 * current message's (fetch_message_timeout; 0 between messages).
	 * No wait goes past either. */
	uint64_t session_end, message_end;
	const char *why;	/* the last read's failure, for messages */
};

/* The resolver for host names (lib/dns, $dns_servers): made at start,
 * freed at shutdown. 0, or -1 with *error_r (static). */
int fetch_net_init(const char **error_r);
void fetch_net_shutdown(void);
/* Asks proxymap whether key is in table ("local_recipient",
 * "virtual_mailbox"), within fetch_timeout: 1 yes, 0 no, -1 failure. */
int fetch_table_lookup(const char *table, const char *key);
/* Resolves host (a name through DNS within fetch_timeout, or an
 * address) and connects to host:port within fetch_timeout; starts the
 * session's deadline. 0, or -1 with *error_r (static). */
int fetch_conn_open(struct fetch_conn *c, const char *host,
    const char *port, const char **error_r);
/* Starts TLS (implicit or after STLS/STARTTLS) and waits for the
 * handshake. 0, or -1 with *error_r (static). */
int fetch_conn_tls(struct fetch_conn *c, struct fetch_account *a,
    const char **error_r);
/* One line, without CRLF, at most FETCH_LINE_MAX (or max). STREAM_*
 * result. */
enum stream_result fetch_conn_line(struct fetch_conn *c, struct buf *line);
enum stream_result fetch_conn_line_max(struct fetch_conn *c, struct buf *line,
    size_t max);
/* Sends one command line (CRLF added). 0 or -1. */
int fetch_conn_cmd(struct fetch_conn *c, const char *fmt, ...)
    MTA_PRINTF(2, 3);
/* Waits until input is buffered. STREAM_OK, _TIMEOUT, _EOF, _ERROR. */
enum stream_result fetch_conn_wait(struct fetch_conn *c);
void fetch_conn_close(struct fetch_conn *c);
/* Starts and ends the deadline of one message's retrieval. */
void fetch_conn_message_begin(struct fetch_conn *c);
void fetch_conn_message_end(struct fetch_conn *c);
/* Why the last wait or read failed ("timeout", ...), or broke when
 * nothing more precise is known. */
const char *fetch_conn_why(const struct fetch_conn *c, const char *broke);

/* A message as it was read, unstuffed, CRLF line ends. */
struct fetch_msg {
	const char *id;		/* UIDL */
	struct buf data;	/* at most message_size_limit */
	int too_big;		/* the rest was read and dropped */
};

/* What the collection of one account did. */
struct fetch_summary {
	int listed;
	int queued;
	int skipped;		/* already queued before (keep=yes, a crash) */
	int deleted;
	int left;		/* left for the next poll (fetch_max_messages) */
	int refused;		/* kept on the server: too big, refused */
	char error[256];	/* the session's failure, "" when none */
};

enum fetch_inject_result {
	FETCH_INJECT_QUEUED,	/* committed: may be deleted remotely */
	FETCH_INJECT_REFUSED,	/* permanent: keep it remotely, go on */
	FETCH_INJECT_RETRY,	/* transient: stop this session */
};

/* Writes m through cleanup into incoming/, recorded in s before and
 * after the commit. */
enum fetch_inject_result fetch_inject(struct fetch_account *a,
    struct fetch_state *s, const struct fetch_conn *c, const char *proto,
    struct fetch_msg *m);
/* Table set-up for cleanup's checks (header_checks, virtual aliases):
 * 0, or -1 with *error_r. */
int fetch_inject_init(char **error_r);
void fetch_inject_free(void);

/* The account's open journal (fetch.c), or NULL when it failed. */
struct fetch_state *fetch_account_state(const struct fetch_account *a);
/* Collects one POP3 or IMAP account into the queue over conn, open
 * (fetch_conn_open, or a test's transport), with the account's journal;
 * closes conn. */
void fetch_pop3(struct fetch_account *a, struct fetch_state *state,
    struct fetch_conn *conn, struct fetch_summary *sum);
void fetch_imap(struct fetch_account *a, struct fetch_state *state,
    struct fetch_conn *conn, struct fetch_summary *sum);
/* Records the session's first failure in sum->error (sanitized: peer
 * text goes in it). */
void fetch_fail(struct fetch_summary *sum, const char *fmt, ...)
    MTA_PRINTF(2, 3);

/* Appends to a summary; what does not fit its cap is dropped. */
void fetch_printf(struct buf *out, const char *fmt, ...) MTA_PRINTF(2, 3);

/*
 * Sends ETRN for every domain of $fetch_etrn_domains to every host of
 * $fetch_etrn_hosts (RFC 1985); one line per host and domain into out.
 */
void fetch_etrn(struct buf *out);

#endif
