/* SPDX-License-Identifier: MIT */
/*
 * What the files of the local delivery agent share: the result of one
 * delivery, the per-message state (the queue file, the headers local
 * prepends, the Delivered-To addresses already in the message), the
 * expansion of one recipient (aliases, .forward and :include: targets,
 * the addresses to resubmit) and the identity a target is delivered as.
 */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H

#include <stdint.h>
#include <sys/types.h>

#include "base/mem.h"
#include "mail/qfile.h"

/* Reason text per recipient in the reply and the log. */
#define LOCAL_TEXT_MAX 512

struct local_result {
	const char *result; /* sent, defer, bounce */
	const char *dsn;
	char text[LOCAL_TEXT_MAX];
	char *where; /* maildir, for the log (owned) */
	/* delivered, expanded, "" (RFC 3464 2.3.3, reply to qmgr) */
	const char *action;
};

/* One message being delivered (one request). */
struct local_msg {
	const struct qfile *q;
	const char *id;
	char *return_path; /* "Return-Path: <sender>\n" */
	/* Delivered-To values in the message's header, lower case. */
	char **delivered_to;
	int ndelivered_to;
	int headers_read;
	/* The header section could not be read: every local rcpt defers. */
	char *headers_error;
};

/* Where a target came from: what allow_mail_to_* names. */
enum local_source {
	LOCAL_SRC_ALIAS,
	LOCAL_SRC_FORWARD,
	LOCAL_SRC_INCLUDE
};

/* The identity a file or command target is delivered as. */
struct local_ident {
	uid_t uid;
	gid_t gid;
	char *user;
	char *home;
	char *shell;
};

/* One original recipient of a local domain and what it expanded to. */
struct local_rcpt {
	struct local_msg *msg;
	const struct qrcpt *rcpt;
	char *addr;    /* folded local@domain: Delivered-To and logs */
	char *orig_to; /* the ORCPT address when it differs, else NULL */
	char *local;   /* folded local part, extension included */
	char *user;    /* local part without the extension */
	char *ext;     /* extension or NULL */
	char *domain;
	char *prefix; /* Return-Path + Delivered-To, LF endings */
	/* Worst result so far: defer > bounce > sent; its text. */
	struct local_result *res;
	int leaves;   /* targets delivered or attempted */
	int expanded; /* went through an alias or .forward */
	/* Targets already handled, "kind:value", for duplicates. */
	char **seen;
	int nseen;
	/* Addresses to resubmit in one new message. */
	char **fwd;
	int nfwd;
	int depth; /* :include: nesting */
};

/* local.c */
extern int local_root;
void local_set(struct local_result *res, const char *result, const char *dsn,
    const char *fmt, ...) MTA_PRINTF(4, 5);
/* Stores the message as uid/gid (when root) into maildir. */
void local_store(const struct qfile *q, const char *prefix, const char *maildir,
    uid_t uid, gid_t gid, struct local_result *res);
/*
 * One target's outcome: logs its status line (to=<rcpt>, orig_to,
 * relay=local, ...) and folds it into the recipient's result.
 */
void local_leaf_done(struct local_rcpt *lr, const struct local_result *res);
/* Delivers to the maildir of system user name (no alias, no .forward). */
void local_mailbox(struct local_rcpt *lr, const char *name);
/* 1 and remembers key when it was not yet seen in this expansion. */
int local_first_time(
    struct local_rcpt *lr, const char *kind, const char *value);
/* An identity from a passwd entry of name, or from uid (name NULL). */
int local_ident_user(const char *name, struct local_ident *id_r);
int local_ident_uid(uid_t uid, struct local_ident *id_r);
void local_ident_free(struct local_ident *id);

/* local_alias.c: aliases, .forward, :include: and target dispatch. */
int local_alias_init(void);
/* Closes the tables (at exit: Berkeley DB's memory is not otherwise
 * reachable, and LeakSanitizer would call it lost). */
void local_alias_free(void);
/*
 * Makes the next lookups check whether newaliases replaced a table: one
 * stat(2) per request, so mail sent right after newaliases sees it.
 */
void local_alias_recheck(void);
/* 1 when the recipient was handled by an alias or a .forward file, 0
 * when it goes to the user's mailbox. */
int local_expand(struct local_rcpt *lr);
/* Splits a target list ("a, \"|cmd, x\", /f") into trimmed, unquoted
 * targets; returns their count; free with local_targets_free. */
int local_targets_split(const char *value, char ***targets_r);
void local_targets_free(char **targets, int n);

/* local_command.c */
void local_command(struct local_rcpt *lr, const struct local_ident *id,
    const char *command, struct local_result *res);

/* local_file.c: mbox append (or maildir for a path ending in '/'). */
void local_file(struct local_rcpt *lr, const struct local_ident *id,
    const char *path, struct local_result *res);

/* local_resubmit.c: one new queue message for lr->fwd. */
void local_resubmit(struct local_rcpt *lr, struct local_result *res);
int local_resubmit_init(void);

/*
 * The message content converted from CRLF to LF, chunk by chunk, with
 * mbox quoting (">From ") when asked.
 */
struct local_reader {
	const struct qfile *q;
	uint64_t done;
	int pending_cr;
	int bol; /* at the start of a line */
	int mbox;
	int last_nl; /* the last byte produced was LF */
	const char *error;
};

void local_reader_init(struct local_reader *r, const struct qfile *q, int mbox);
/* Bytes put into out (at most max, max >= 2 * LOCAL_READ_CHUNK + 2);
 * 0 at the end; -1 on a read error (r->error). */
#define LOCAL_READ_CHUNK (32 * 1024)
ssize_t local_reader_next(struct local_reader *r, char *out, size_t max);

#endif
