# SPDX-License-Identifier: MIT
"""Sites that are not always online (issue 12): the backup-MX role and
outbound mail while the link is down.

Two tern instances on loopback and the harness's dnsmasq: the "office"
(127.0.0.3, the primary MX of office.test, preference 10) and the "ISP"
(127.0.0.2, its backup MX, preference 20), both on one SMTP port so that
each can reach the other through the MX records.

- Backup MX: with the office down, the ISP takes mail for office.test
  only for the recipients relay_recipient_maps lists (others get 550
  5.1.1 at RCPT), tries only the primary (never itself: the MX loop
  rule), keeps the mail past a maximal_queue_lifetime that bounces other
  mail at once (backup_queue_lifetime), and on the office's ETRN delivers
  it within seconds.
- Offline outbound: the office with defer_transports = smtp keeps its
  outbound mail deferred ("deferred transport", ternqueue -p) without a
  connection attempt; after tern flush the ISP has it.
"""

import os
import re
import shutil
import tempfile
import unittest
import uuid

import harness
from harness import make_message, run, smtp_send

OFFICE, ISP = "127.0.0.3", "127.0.0.2"
DNS = None
TMP = None
# Nothing listens here: mail for gone.test can only wait, or expire.
GONE = "127.0.0.4"
# Retries an hour away: only ETRN or a flush can bring the mail now.
OFFLINE = dict(minimal_backoff_time="1h", maximal_backoff_time="2h",
               queue_run_delay="1h")


def setUpModule():
    global DNS, TMP
    TMP = os.path.realpath(tempfile.mkdtemp(prefix="tern-backupmx-"))
    harness.record_for_cleanup("dir", TMP)
    os.chmod(TMP, 0o755)
    DNS = harness.DnsServer(TMP)
    DNS.mx("office.test", "mx.office.test", 10)
    DNS.mx("office.test", "mx.isp.test", 20)
    DNS.mx("isp.test", "mx.isp.test", 10)
    DNS.mx("gone.test", "mx.gone.test", 10)
    DNS.host("mx.office.test", OFFICE)
    DNS.host("mx.isp.test", ISP)
    DNS.host("mx.gone.test", GONE)
    DNS.start()


def tearDownModule():
    if DNS is not None:
        DNS.close()
    if TMP is not None and os.environ.get("TERN_KEEP") != "1":
        shutil.rmtree(TMP, ignore_errors=True)


def unique(tag, domain):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], domain)


def log_re(qid, rcpt, status):
    """A delivery log line; groups relay, dsn, text."""
    return (r"%s: to=<%s>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>\S+),"
            r"(?: conn_use=\d+,)? delay=[\d.]+,"
            r"(?: delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+,)? dsn=(?P<dsn>[\d.]+),"
            r" status=%s \((?P<text>.*)\)$" % (qid, re.escape(rcpt), status))


class SiteTest(harness.TwoSiteTestCase):
    """The ISP is the class instance; the office starts down (the first
    test brings it up, the second needs it up)."""

    isp_address, office_address = ISP, OFFICE

    @classmethod
    def configure_office(cls, office, base):
        office.conf_set(
            virtual_mailbox_domains="office.test",
            myhostname="mx.office.test", dns_servers=DNS.server,
            smtp_tcp_port=str(base + 25), mynetworks="127.0.0.1/32",
            defer_transports="smtp", **OFFLINE)

    @classmethod
    def configure(cls, t):
        # maximal_queue_lifetime 0 bounces other mail at its first
        # failure; the site's mail waits for backup_queue_lifetime.
        t.conf_set(myhostname="mx.isp.test", dns_servers=DNS.server,
                   smtp_tcp_port=str(t.smtp_port), mynetworks="127.0.0.1/32",
                   relay_domains="office.test",
                   virtual_mailbox_domains="isp.test",
                   maximal_queue_lifetime="0", **OFFLINE)
        cls.alice = unique("alice", "office.test")
        t.conf_set(relay_recipient_maps="inline:{ %s=ok }" % cls.alice)

    def office_up(self):
        if self.office.master_pid() is None:
            self.office.start()

    def test_backup_holds_then_releases_on_etrn(self):
        isp, office, alice = self.tern, self.office, self.alice
        office.add_user(alice, "Alice-pw-1")
        sender = "someone@example.org"

        # An unknown recipient is refused at RCPT: no backscatter later.
        nobody = unique("nobody", "office.test")
        with harness.SmtpConn(isp.smtp_port, host=ISP) as c:
            self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % sender)[0], 250)
            self.assertEqual(
                c.cmd("RCPT TO:<%s>" % nobody),
                (550, "5.1.1 <%s>: Recipient address rejected: User "
                      "unknown in relay recipient table" % nobody))
            self.assertEqual(c.cmd("RCPT TO:<%s>" % alice)[0], 250)
            c.cmd("QUIT")

        # The primary is down: the backup tries it, never itself.
        _, msg = make_message(sender, alice, subject="held at the ISP")
        qid = smtp_send(isp.smtp_port, sender, [alice], msg, host=ISP)
        primary = "mx.office.test[%s]:%d" % (OFFICE, isp.smtp_port)
        since = 0
        for _ in range(3):
            # A loaded machine's dnsmasq may fail a lookup (4.4.3): then
            # the message is retried now, as ternqueue -i does.
            m = isp.wait_for_log(log_re(qid, alice, "deferred"), since=since)
            isp.wait_for_log(r"%s: deferred" % qid, since=since)
            if m.group("dsn") != "4.4.3":
                break
            since = isp.log_size()
            run([isp.sbin("ternqueue"), "-c", isp.dir, "-i", qid])
        self.assertIn(primary, m.group("text"))
        self.assertNotIn("mx.isp.test[", isp.log())

        # Other relayed mail expires at once (maximal_queue_lifetime 0);
        # the site's stays queued.
        bob = unique("bob", "gone.test")
        _, other = make_message(sender, bob, subject="not a backup")
        other_qid = smtp_send(isp.smtp_port, sender, [bob], other, host=ISP)
        m = isp.wait_for_log(log_re(other_qid, bob, "expired"))
        self.assertEqual(m.group("dsn"), "5.4.7")
        self.assertIn(qid, isp.queue_files("deferred"))

        # The primary comes up and asks for its mail.
        self.office_up()
        since = isp.log_size()
        with harness.SmtpConn(isp.smtp_port, host=ISP, source=OFFICE) as c:
            self.assertEqual(c.cmd("EHLO mx.office.test")[0], 250)
            self.assertEqual(c.cmd("ETRN office.test"),
                             (250, "2.0.0 Queuing started"))
            c.cmd("QUIT")
        [got] = office.wait_for_maildir(office.virtual_maildir(alice), 1,
                                        timeout=harness.DELIVERY_TIMEOUT)
        with open(got, "rb") as f:
            self.assertTrue(f.read().endswith(msg))
        m = isp.wait_for_log(log_re(qid, alice, "sent"), since=since)
        self.assertEqual(m.group("relay"),
                         "mx.office.test[%s]:%d" % (OFFICE, isp.smtp_port))

    def test_offline_defer_transports_waits_for_flush(self):
        isp, office = self.tern, self.office
        carol = unique("carol", "isp.test")
        isp.add_user(carol, "Carol-pw-1")
        sender = unique("dave", "office.test")
        office.add_user(sender, "Dave-pw-1")
        self.office_up()
        since = office.log_size()
        _, msg = make_message(sender, carol, subject="written offline")
        qid = smtp_send(office.smtp_port, sender, [carol], msg, host=OFFICE)
        m = office.wait_for_log(log_re(qid, carol, "deferred"))
        self.assertEqual((m.group("relay"), m.group("dsn"), m.group("text")),
                         ("none", "4.3.2", "deferred transport"))
        office.wait_for_log(r"%s: deferred" % qid)
        res = run([office.sbin("ternqueue"), "-c", office.dir, "-p"])
        self.assertIn(qid, res.stdout)
        self.assertIn("deferred transport", res.stdout)
        # No connection was tried while the link is "down".
        self.assertNotRegex(office.log()[since:],
                            r"relay=mx\.isp\.test|connect to")
        self.assertEqual(harness.maildir_files(isp.virtual_maildir(carol)),
                         [])

        # The link is up: tern flush sends it.
        office.tern("flush")
        [got] = isp.wait_for_maildir(isp.virtual_maildir(carol), 1,
                                     timeout=harness.DELIVERY_TIMEOUT)
        with open(got, "rb") as f:
            self.assertTrue(f.read().endswith(msg))
        office.wait_for_log(log_re(qid, carol, "sent"))


if __name__ == "__main__":
    unittest.main()
