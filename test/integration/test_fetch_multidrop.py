# SPDX-License-Identifier: MIT
"""A site that is not always online and its ISP (issue 12), with the
harness's DNS server: the office (127.0.0.3, primary MX of office.test)
and the ISP (127.0.0.2, its backup MX), both on one SMTP port so that
each reaches the other through the MX records.

- `tern fetch now` on the office, the link-up hook of fetch(8), sends
  ETRN for fetch_etrn_domains to fetch_etrn_hosts (a host name the
  office resolves through its dns_servers, lib/dns): the ISP, which
  held the office's mail while the office was down, delivers it within
  seconds.
- Multidrop: the ISP keeps all mail for branch.test in one domain-wide
  mailbox (virtual_alias_maps @branch.test -> catchall@isp.test), which
  the office collects over POP3 and over IMAP. A Bcc recipient (only in
  the envelope: the ISP's Received "for"), a mailing list's mail sent to
  the mailbox's own address (a fetch_route_maps pcre: rule on List-Id),
  an unknown user (fetch_lost_recipient), one message for two users
  (the ISP's copy per user, each with X-Original-To), a message an Exim ISP stored
  once for two users (Envelope-to) and a collected message that came
  back (the loop header) each land in the right maildir, once.
"""

import contextlib
import email
import email.policy
import os
import re
import shutil
import tempfile
import uuid

import harness
from harness import make_message, run, smtp_send

OFFICE, ISP = "127.0.0.3", "127.0.0.2"
PW = "Catch-all-pw-1"
DNS = None
TMP = None
# Retries an hour away: only ETRN or a flush can bring the mail now.
OFFLINE = dict(minimal_backoff_time="1h", maximal_backoff_time="2h",
               queue_run_delay="1h")


def setUpModule():
    global DNS, TMP
    TMP = os.path.realpath(tempfile.mkdtemp(prefix="tern-fetchsite-"))
    harness.record_for_cleanup("dir", TMP)
    os.chmod(TMP, 0o755)
    DNS = harness.DnsServer(TMP)
    DNS.mx("office.test", "mx.office.test", 10)
    DNS.mx("office.test", "mx.isp.test", 20)
    DNS.host("mx.office.test", OFFICE)
    DNS.host("mx.isp.test", ISP)
    DNS.start()


def tearDownModule():
    if DNS is not None:
        DNS.close()
    if TMP is not None and os.environ.get("TERN_KEEP") != "1":
        shutil.rmtree(TMP, ignore_errors=True)


class SiteTest(harness.TwoSiteTestCase):
    """The ISP is the class instance; the office starts down."""

    isp_address, office_address = ISP, OFFICE
    isp_options = {"mail_access": True}

    @classmethod
    def configure_office(cls, office, base):
        route = os.path.join(TMP, "fetch_route.pcre")
        with open(route, "w") as f:
            f.write("/^List-Id:.*<dev\\.lists\\.example\\.org>/ "
                    "carol@branch.test\n")
        os.chmod(route, 0o644)
        office.conf_set(
            virtual_mailbox_domains="office.test, branch.test",
            myhostname="mx.office.test", dns_servers=DNS.server,
            smtp_tcp_port=str(base + 25), fetch_interval="0",
            fetch_etrn_hosts="mx.isp.test:%d" % (base + 25),
            fetch_etrn_domains="office.test",
            fetch_route_maps="pcre:" + route,
            fetch_lost_recipient="lost@branch.test", **OFFLINE)
        accounts = os.path.join(office.dir, "fetch_accounts")
        with open(accounts, "w") as f:
            f.write("allpop pop3s://catchall@isp.test@%s:%d password=%s "
                    "multidrop=yes tls_verify=no\n"
                    "allimap imaps://catchall@isp.test@%s:%d "
                    "password=%s multidrop=yes tls_verify=no\n"
                    % (ISP, cls.tern.pop3s_port, PW, ISP,
                       cls.tern.imaps_port, PW))
        os.chmod(accounts, 0o600)

    @classmethod
    def configure(cls, t):
        t.conf_set(myhostname="mx.isp.test", dns_servers=DNS.server,
                   smtp_tcp_port=str(t.smtp_port), mynetworks="127.0.0.1/32",
                   relay_domains="office.test",
                   virtual_mailbox_domains="isp.test", **OFFLINE)
        cls.alice = "alice%s@office.test" % uuid.uuid4().hex[:8]
        t.conf_set(relay_recipient_maps="inline:{ %s=ok }" % cls.alice,
                   virtual_alias_domains="branch.test",
                   virtual_alias_maps="inline:{ @branch.test=catchall@isp.test "
                                      "}")
        t.add_user("catchall@isp.test", PW)

    def office_up(self):
        if self.office.master_pid() is None:
            self.office.start()
        for user in ("alice", "bob", "carol", "lost"):
            addr = user + "@branch.test"
            if not os.path.isdir(os.path.dirname(
                    self.office.virtual_maildir(addr))):
                self.office.add_user(addr, "Office-pw-1")

    def isp_send(self, rcpts, subject, extra=""):
        msg = ("From: Sender <sender@example.org>\n"
               "To: someone@example.org\n"
               "Subject: %s\n"
               "Message-ID: <%s@example.org>\n%s"
               "\n"
               "body of %s\n" % (subject, uuid.uuid4().hex, extra, subject)
               ).encode()
        smtp_send(self.tern.smtp_port, "sender@example.org", rcpts, msg,
                  host=ISP)

    def isp_store(self, name, text):
        """A message as another ISP's delivery left it in the mailbox."""
        md = self.tern.virtual_maildir("catchall@isp.test")
        st = os.stat(md)
        path = os.path.join(md, "new", "1700000000.%s.isp" % name)
        with open(path, "w") as f:
            f.write(text.replace("\n", "\r\n"))
        os.chown(path, st.st_uid, st.st_gid)

    def subjects(self, user, count):
        md = self.office.virtual_maildir(user + "@branch.test")
        self.office.wait_for_maildir(md, count)
        return sorted(
            email.message_from_bytes(d, policy=email.policy.compat32)
            ["Subject"] for d in harness.read_maildir(md))

    def test_multidrop_routes_bcc_list_unknown_and_loops_once_each(self):
        isp, office = self.tern, self.office
        self.office_up()
        catchall = isp.virtual_maildir("catchall@isp.test")
        self.isp_send(["alice@branch.test"], "bcc for alice")
        self.isp_send(["catchall@isp.test"], "list mail",
                      "List-Id: Developers <dev.lists.example.org>\n")
        self.isp_send(["nobody@branch.test"], "for nobody")
        # One message for two users: the ISP keeps a copy per user, each
        # with X-Original-To (enable_original_recipient).
        self.isp_send(["alice@branch.test", "bob@branch.test"],
                      "bcc for alice and bob")
        isp.wait_for_maildir(catchall, 5)
        self.isp_store("exim", "Envelope-to: alice@branch.test, "
                       "bob@branch.test\n"
                       "From: sender@example.org\n"
                       "Subject: for alice and bob\n\nbody\n")
        self.isp_store("loop", "X-Tern-Fetched: mx.office.test allpop\n"
                       "Envelope-to: alice@branch.test\n"
                       "From: sender@example.org\n"
                       "Subject: came back\n\nbody\n")
        r = office.tern("fetch", "allpop")
        self.assertRegex(r.stdout, r"^allpop: 7 queued, 0 skipped, "
                         r"7 deleted, 0 left, 0 refused, 7 listed\n$")
        self.assertEqual(harness.maildir_count(catchall), 0)

        # Over IMAP, from the same mailbox.
        self.isp_send(["bob@branch.test"], "bcc for bob")
        self.isp_send(["ghost@branch.test"], "for ghost")
        isp.wait_for_maildir(catchall, 2)
        r = office.tern("fetch", "allimap")
        self.assertRegex(r.stdout, r"^allimap: 2 queued, 0 skipped, "
                         r"2 deleted, 0 left, 0 refused, 2 listed\n$")

        self.assertEqual(self.subjects("alice", 3),
                         ["bcc for alice", "bcc for alice and bob",
                          "for alice and bob"])
        self.assertEqual(self.subjects("bob", 3),
                         ["bcc for alice and bob", "bcc for bob",
                          "for alice and bob"])
        self.assertEqual(self.subjects("carol", 1), ["list mail"])
        self.assertEqual(self.subjects("lost", 3),
                         ["came back", "for ghost", "for nobody"])
        office.wait_queue_empty()
        for user, n in (("alice", 3), ("bob", 3), ("carol", 1), ("lost", 3)):
            self.assertEqual(harness.maildir_count(office.virtual_maildir(
                user + "@branch.test")), n, user)
        office.wait_for_log(r"account allpop: \S+: loop.*to the lost-mail "
                            r"recipient lost@branch\.test")

    def test_fetch_now_sends_etrn_and_the_backup_releases(self):
        isp, office, alice = self.tern, self.office, self.alice
        sender = "someone@example.org"
        _, msg = make_message(sender, alice, subject="held for fetch now")
        qid = smtp_send(isp.smtp_port, sender, [alice], msg, host=ISP)
        since = 0
        for _ in range(3):
            # A loaded machine's dnsmasq may fail a lookup (4.4.3): then
            # the message is retried now, as ternqueue -i does.
            m = isp.wait_for_log(r"%s: to=<%s>,.* dsn=(?P<dsn>[\d.]+), "
                                 r"status=deferred" % (qid, re.escape(alice)),
                                 since=since)
            isp.wait_for_log(r"%s: deferred" % qid, since=since)
            if m.group("dsn") != "4.4.3":
                break
            since = isp.log_size()
            run([isp.sbin("ternqueue"), "-c", isp.dir, "-i", qid])
        self.assertIn(qid, isp.queue_files("deferred"))

        # The link comes up: the hook's tern fetch now.
        self.office_up()
        office.add_user(alice, "Alice-pw-1")
        md = office.virtual_maildir(alice)
        for attempt in range(3):
            r = office.tern("fetch", "now")
            self.assertIn("etrn mx.isp.test:%d office.test: 250 2.0.0 "
                          "Queuing started\n" % isp.smtp_port, r.stdout)
            # A loaded machine's dnsmasq may fail the ISP's MX lookup
            # (deferred again): the hook is simply run again.
            if harness.maildir_files(md) or attempt == 2:
                break
            with contextlib.suppress(AssertionError):
                office.wait_for_maildir(md, 1,
                                        timeout=harness.DELIVERY_TIMEOUT / 2)
        [got] = office.wait_for_maildir(md, 1,
                                        timeout=harness.DELIVERY_TIMEOUT)
        with open(got, "rb") as f:
            self.assertTrue(f.read().endswith(msg))
        isp.wait_for_log(r"%s: to=<%s>,.*relay=mx\.office\.test\[%s\]:%d,"
                         r".* status=sent" % (qid, re.escape(alice),
                                              re.escape(OFFICE),
                                              isp.smtp_port))


if __name__ == "__main__":
    import unittest
    unittest.main()
