# SPDX-License-Identifier: MIT
"""virtual_alias_maps, virtual_alias_domains and virtual_mailbox_maps, as
a sender and a mailbox owner see them: one address fans out to three
virtual users, a catch-all @domain collects the rest of its domain, an
alias domain refuses an address without an alias at RCPT (550 5.1.1), a
chain of aliases is followed, a loop is refused at once (550 5.4.6), a
"|command" value is refused as a bad address and never run, a rewritten
recipient keeps NOTIFY and gets the address the client wrote as its
ORCPT in the queue file (held by a header_checks HOLD to read it), and
virtual_mailbox_maps (a hash: table built by ternmap) decides which
virtual addresses exist and where their maildirs are."""

import os
import smtplib

import harness
from harness import SmtpConn, TernTestCase, run, wait_until

DOMAIN = harness.VIRTUAL_DOMAIN
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
SENDER = "sender@example.org"
LISTS = "lists.test"  # an alias domain, by a "lists.test x" table line
CATCH = "catch.test"  # another, with a catch-all
SHORT = 15


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def ternmap(t, *args):
    return run([t.sbin("ternmap"), "-c", t.dir] + list(args))


def rcpt(t, to, params=""):
    """(code, text) of RCPT TO:<to> in a fresh session."""
    with SmtpConn(t.smtp_port, timeout=SHORT) as c:
        assert c.cmd("EHLO client.example.org")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
        return c.cmd(("RCPT TO:<%s> %s" % (to, params)).strip())


def copies(t, addr, mid):
    """Messages in addr's virtual maildir that carry Message-ID mid."""
    n = 0
    for data in harness.read_maildir(t.virtual_maildir(addr)):
        n += mid.encode() in data
    return n


def send(t, rcpts, extra=b""):
    """Sends a fresh message to rcpts; returns (queue ID, Message-ID)."""
    mid, msg = harness.make_message(SENDER, rcpts[0])
    qid = harness.smtp_send(t.smtp_port, SENDER, rcpts, extra + msg)
    return qid, mid


class VirtualAliasTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        for user in (ALICE, BOB, CAROL):
            tern.add_user(user, "Secret-pw-42")
        cls.marker = os.path.join(tern.tmp, "pipe-ran")
        table = os.path.join(tern.dir, "virtual")
        write(table,
              "# alias domains (virtual_alias_domains = $virtual_alias_maps)\n"
              "%(l)s anything\n%(c)s anything\n"
              "group@%(l)s %(a)s, %(b)s,\n  %(ca)s\n"
              "@%(c)s %(ca)s\n"
              "chain1@%(l)s chain2@%(l)s\n"
              "chain2@%(l)s <chain3@%(l)s>\n"
              "chain3@%(l)s %(b)s\n"
              "loop1@%(l)s loop2@%(l)s\n"
              "loop2@%(l)s loop1@%(l)s\n"
              "pipe@%(l)s %(a)s, |/usr/bin/touch %(m)s\n"
              "file@%(l)s %(m)s\n"
              "pair@%(l)s %(a)s %(b)s\n"
              "dup@%(l)s group@%(l)s, %(a)s\n"
              % {"l": LISTS, "c": CATCH, "a": ALICE, "b": BOB, "ca": CAROL,
                 "m": cls.marker})
        ternmap(tern, "hash:" + table)
        checks = os.path.join(tern.dir, "header_checks.pcre")
        write(checks, "/^X-Hold:/ HOLD held for the test\n")
        tern.conf_set(virtual_alias_maps="hash:" + table,
                      header_checks="pcre:" + checks)

    def assertRefused(self, to, code, status, text):
        got_code, got = rcpt(self.tern, to)
        self.assertEqual(got_code, code, got)
        self.assertEqual(got, "%s <%s>: Recipient address rejected: %s"
                         % (status, to, text))

    def test_one_address_to_three_users(self):
        t = self.tern
        _, mid = send(t, ["group@" + LISTS])
        for user in (ALICE, BOB, CAROL):
            t.wait_for_maildir(t.virtual_maildir(user), 1)
            wait_until(lambda u=user: copies(t, u, mid) == 1, SHORT,
                       "the message in %s's maildir" % user)

    def test_catch_all_domain(self):
        t = self.tern
        _, mid = send(t, ["Whoever@" + CATCH.upper()])
        wait_until(lambda: copies(t, CAROL, mid) == 1, SHORT,
                   "the catch-all's message in carol's maildir")

    def test_alias_domain_without_alias_refused_at_rcpt(self):
        self.assertRefused("nobody@" + LISTS, 550, "5.1.1",
                           "User unknown in virtual alias table")
        # The domain is ours: no relay question, no mailbox question.
        self.assertEqual(rcpt(self.tern, "group@" + LISTS)[0], 250)

    def test_recursive_chain(self):
        t = self.tern
        _, mid = send(t, ["chain1@" + LISTS])
        wait_until(lambda: copies(t, BOB, mid) == 1, SHORT,
                   "the chain's message in bob's maildir")

    def test_loop_refused_without_hanging(self):
        t = self.tern
        since = t.log_size()
        with SmtpConn(t.smtp_port, timeout=SHORT) as c:
            self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            code, text = c.cmd("RCPT TO:<loop1@%s>" % LISTS)
            self.assertEqual(code, 550, text)
            self.assertEqual(text, "5.4.6 <loop1@%s>: Recipient address "
                             "rejected: Virtual alias loop" % LISTS)
            # The session goes on.
            self.assertEqual(c.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        t.wait_for_log(r"warning: virtual alias expansion of "
                       r"<loop1@lists\.test>: a loop", since=since)

    def test_command_and_file_values_never_used(self):
        t = self.tern
        since = t.log_size()
        for name in ("pipe", "file"):
            self.assertRefused("%s@%s" % (name, LISTS), 550, "5.1.3",
                               "Virtual alias table gives a bad "
                               "destination address")
        t.wait_for_log(r"maps <pipe@lists\.test> to \"\|/usr/bin/touch\", "
                       r"which is not an address", since=since)
        self.assertFalse(os.path.exists(self.marker))

    def test_duplicates_removed_after_expansion(self):
        """One copy per mailbox and original recipient (Postfix's
        enable_original_recipient): alice, reached through dup@ and by
        her own address, gets one copy for each, the rewritten one with
        X-Original-To; bob and carol, reached twice through dup@, get
        one."""
        t = self.tern
        qid, mid = send(t, ["dup@" + LISTS, ALICE.upper()])
        for user in (BOB, CAROL):
            wait_until(lambda u=user: copies(t, u, mid) == 1, SHORT,
                       "the message in %s's maildir" % user)
        t.wait_queue_empty()
        self.assertEqual(copies(t, BOB, mid), 1)
        mine = [d for d in harness.read_maildir(t.virtual_maildir(ALICE))
                if mid.encode() in d]
        # After Return-Path: the header naming the rewritten address, or
        # none for the copy sent to alice's own address.
        self.assertEqual(sorted(d.split(b"\n")[1][:14] for d in mine),
                         [b"Received: from", b"X-Original-To:"])
        self.assertIn(b"\nX-Original-To: dup@%s\nReceived: " % LISTS.encode(),
                      b"".join(mine))

    def test_one_copy_per_mailbox_without_original_recipient(self):
        t = self.new_instance(configure=lambda i: (
            self.configure(i), i.conf_set(enable_original_recipient="no")))
        _, mid = send(t, ["dup@" + LISTS, ALICE.upper()])
        for user in (ALICE, BOB, CAROL):
            wait_until(lambda u=user: copies(t, u, mid) == 1, SHORT,
                       "the message in %s's maildir" % user)
        t.wait_queue_empty()
        self.assertEqual(copies(t, ALICE, mid), 1)

    def test_orcpt_and_notify_in_queue_file(self):
        t = self.tern
        mid, msg = harness.make_message(SENDER, "pair@" + LISTS)
        with smtplib.SMTP("127.0.0.1", t.smtp_port, timeout=SHORT) as s:
            s.ehlo("client.example.org")
            self.assertEqual(s.mail(SENDER)[0], 250)
            self.assertEqual(s.rcpt("Pair@" + LISTS,
                                    ["NOTIFY=SUCCESS,FAILURE"])[0], 250)
            self.assertEqual(s.rcpt("group@" + LISTS,
                                    ["ORCPT=rfc822;Someone+40Else.test"]
                                    )[0], 250)
            code, text = s.data(harness.to_crlf(b"X-Hold: yes\n" + msg))
            self.assertEqual(code, 250, text)
        qid = harness.queue_id_of(text.decode())
        path = os.path.join(t.queue_dir, "hold", qid)
        wait_until(lambda: os.path.exists(path), SHORT, "%s in hold/" % qid)
        with open(path, "rb") as f:
            recs = harness.queue_file_records(f.read())
        rcpts = [p.split(b"\0") for kind, p in recs if kind == "R"]
        # qfile.h: address NUL orcpt NUL notify (1 success, 2 failure).
        # pair's two users keep what the client wrote and its NOTIFY;
        # group's users keep its ORCPT, and alice and bob are not
        # duplicates of pair's: they were sent to another address.
        self.assertEqual(rcpts, [
            [ALICE.encode(), b"rfc822;Pair@" + LISTS.encode(), b"3"],
            [BOB.encode(), b"rfc822;Pair@" + LISTS.encode(), b"3"],
            [ALICE.encode(), b"rfc822;Someone@Else.test", b"0"],
            [BOB.encode(), b"rfc822;Someone@Else.test", b"0"],
            [CAROL.encode(), b"rfc822;Someone@Else.test", b"0"]])
        content = [p for kind, p in recs if kind == "M"][0]
        self.assertIn(mid.encode(), content)


class VirtualMailboxMapsTest(TernTestCase):
    """virtual_mailbox_maps instead of the mailbox list."""

    @classmethod
    def configure(cls, tern):
        table = os.path.join(tern.dir, "vmailbox")
        write(table,
              "mapped@%(d)s %(d)s/mapped-box/\n"
              "@maps.test maps.test/everyone/\n"
              "mbox@%(d)s %(d)s/mbox\n"
              "escape@%(d)s %(d)s/../../escape/\n" % {"d": DOMAIN})
        ternmap(tern, "hash:" + table)
        aliases = os.path.join(tern.dir, "virtual")
        write(aliases, "info@%s mapped@%s\n" % (DOMAIN, DOMAIN))
        ternmap(tern, "hash:" + aliases)
        tern.conf_set(virtual_mailbox_domains=DOMAIN + " maps.test",
                      virtual_mailbox_maps="hash:" + table,
                      virtual_alias_maps="hash:" + aliases)

    def maildir(self, path):
        return os.path.join(self.tern.vmail_base, path)

    def test_delivered_to_the_table_path(self):
        t = self.tern
        _, mid = send(t, ["Mapped@" + DOMAIN])
        maildir = self.maildir(DOMAIN + "/mapped-box")

        def mine():
            for path in harness.maildir_files(maildir):
                with open(path, "rb") as f:
                    if mid.encode() in f.read():
                        return path
            return None
        path = wait_until(mine, SHORT, "the message in %s" % maildir)
        if harness.is_root():
            self.assertEqual(harness.uid_name(os.stat(path).st_uid),
                             t.conf_get("vmail_user"))

    def test_catch_all_and_alias_into_a_mapped_mailbox(self):
        t = self.tern
        send(t, ["anyone@maps.test"])
        t.wait_for_maildir(self.maildir("maps.test/everyone"), 1)
        # An alias makes info known without a mailbox of its own.
        _, mid = send(t, ["info@" + DOMAIN])
        wait_until(lambda: any(
            mid.encode() in d for d in harness.read_maildir(
                self.maildir(DOMAIN + "/mapped-box"))), SHORT,
            "info's message in mapped's maildir")

    def test_unlisted_and_unusable_mailboxes_refused(self):
        t = self.tern
        code, text = rcpt(t, "unlisted@" + DOMAIN)
        self.assertEqual((code, text), (550, "5.1.1 <unlisted@%s>: "
                                        "Recipient address rejected: User "
                                        "unknown in virtual mailbox table"
                                        % DOMAIN))
        since = t.log_size()
        for name in ("mbox", "escape"):
            code, text = rcpt(t, "%s@%s" % (name, DOMAIN))
            self.assertEqual(code, 451, text)
            self.assertEqual(text, "4.3.5 <%s@%s>: Recipient address "
                             "rejected: Server configuration error"
                             % (name, DOMAIN))
        t.wait_for_log(r"mailbox \"example\.test/mbox\" of "
                       r"<mbox@example\.test> is not a maildir", since=since)
        self.assertFalse(os.path.exists(
            os.path.join(os.path.dirname(t.vmail_base), "escape")))
