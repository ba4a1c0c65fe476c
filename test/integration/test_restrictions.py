# SPDX-License-Identifier: MIT
"""Relay control and Postfix-style restrictions, seen by clients on other
addresses of 127.0.0.0/8: a stranger may not relay (554 5.7.1) while
mynetworks and authenticated clients may, relay_domains are open to
everyone, unknown local users get 550 5.1.1 at RCPT; access tables of
every type (hash: built by ternmap, also while smtpd serves; pcre:,
cidr:, inline:) decide in Postfix's order, the first match winning;
DNSBL answers come from a dnsmasq the test starts on loopback, and a
DNSBL that never answers holds up only the sessions that ask it;
connection and message rates are counted across two smtpd processes;
smtpd_sender_login_maps says which senders a login may use; and a
configuration that would make an open relay does not start."""

import contextlib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import SmtpConn, TernTestCase, run, wait_until

USER = "alice@example.test"
PASSWORD = "Alice-pw-42"
OTHER = "bob@example.test"
REMOTE = "someone@elsewhere.example"
SHORT = 15


def session(t, source, helo="client.example.org", sender="s@example.org",
            port=None):
    """A raw session from source that has sent EHLO and MAIL."""
    c = SmtpConn(port or t.smtp_port, source=source)
    code, _ = c.cmd("EHLO " + helo)
    assert code == 250, code
    code, text = c.cmd("MAIL FROM:<%s>" % sender)
    assert code == 250, (code, text)
    return c


def rcpt(t, source, to, **kw):
    """(code, text) of RCPT TO:<to> in a fresh session from source."""
    with session(t, source, **kw) as c:
        return c.cmd("RCPT TO:<%s>" % to)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def ternmap(t, *args, check=True):
    return run([t.sbin("ternmap"), "-c", t.dir] + list(args), check=check)


class RelayTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.add_user(USER, PASSWORD)
        tern.add_user(OTHER, "Bob-pw-42")
        tern.conf_set(mynetworks="127.0.0.1/32, [::1]/128",
                      relay_domains="relayed.example")

    def assertReply(self, reply, code, dsn, text=None):
        self.assertEqual(reply[0], code, reply)
        self.assertTrue(reply[1].startswith(dsn), reply)
        if text is not None:
            self.assertIn(text, reply[1])

    def test_stranger_may_not_relay(self):
        self.assertReply(rcpt(self.tern, "127.0.0.2", REMOTE), 554, "5.7.1",
                         "<%s>: Relay access denied" % REMOTE)
        # Nor through a relay domain with sender-specified routing.
        for to in ("someone%elsewhere.example@relayed.example",
                   '"someone@elsewhere.example"@relayed.example',
                   "elsewhere.example!someone@relayed.example"):
            self.assertReply(rcpt(self.tern, "127.0.0.2", to),
                             554, "5.7.1", "Relay access denied")
        # A local domain takes them literally: no such mailbox.
        self.assertReply(rcpt(self.tern, "127.0.0.2",
                              "someone%elsewhere.example@example.test"),
                         550, "5.1.1")
        log = self.tern.wait_for_log(
            r"NOQUEUE: reject: RCPT from 127\.0\.0\.2\[127\.0\.0\.2\]: "
            r"554 5\.7\.1 <%s>" % REMOTE)
        self.assertTrue(log)

    def test_swaks_stranger_refused(self):
        r = run(["swaks", "--server", "127.0.0.1:%d" % self.tern.smtp_port,
                 "--local-interface", "127.0.0.2", "--from", "s@example.org",
                 "--to", REMOTE, "--quit-after", "RCPT"], check=False)
        self.assertIn("<** 554 5.7.1 <%s>: Relay access denied" % REMOTE,
                      r.stdout)

    def test_mynetworks_may_relay(self):
        self.assertReply(rcpt(self.tern, "127.0.0.1", REMOTE), 250, "2.1.5")

    def test_relay_domains_open_to_everyone(self):
        self.assertReply(rcpt(self.tern, "127.0.0.2", "x@relayed.example"),
                         250, "2.1.5")
        self.assertReply(rcpt(self.tern, "127.0.0.2",
                              "x@mx.sub.relayed.example"), 250, "2.1.5")
        self.assertReply(rcpt(self.tern, "127.0.0.2",
                              "x@notrelayed.example"), 554, "5.7.1")

    def test_authenticated_client_may_relay(self):
        t = self.tern
        s = smtplib.SMTP("127.0.0.1", t.smtp_port,
                         source_address=("127.0.0.2", 0), timeout=SHORT)
        self.addCleanup(s.close)
        s.ehlo("client.example.org")
        ctx = ssl.create_default_context(
            cafile=t.conf_get("smtpd_tls_cert_file"))
        ctx.load_verify_locations(cafile=t.conf_get("smtpd_tls_eccert_file"))
        ctx.check_hostname = False
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        self.assertEqual(s.mail(USER)[0], 250)
        # Not logged in yet: a stranger.
        code, text = s.rcpt(REMOTE)
        self.assertEqual((code, text[:5]), (554, b"5.7.1"))
        s.rset()
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        self.assertEqual(s.mail(USER)[0], 250)
        self.assertEqual(s.rcpt(REMOTE)[0], 250)

    def test_unknown_local_recipient_550_at_rcpt(self):
        self.assertReply(rcpt(self.tern, "127.0.0.2", "nobody@example.test"),
                         550, "5.1.1", "User unknown")
        self.assertReply(rcpt(self.tern, "127.0.0.2", OTHER), 250, "2.1.5")


class OrderTest(TernTestCase):
    """Postfix's order: client, helo, sender, relay, recipient lists; in
    a list the first permit or reject decides; a permit ends only its
    own list."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(OTHER, "Bob-pw-42")
        tern.add_user("held@example.test", "Held-pw-42")
        tern.conf_set(
            smtpd_client_restrictions="check_client_access "
            "inline:{ 127.0.0.3=OK, 127.0.0.4=REJECT, "
            "{ 127.0.0.6 = 521 5.7.9 go away } }, permit, reject",
            smtpd_sender_restrictions="check_sender_access "
            "inline:{ bad@example.org=REJECT, good@example.org=OK }, "
            "check_sender_access inline:{ bad@example.org=OK, "
            "{ example.org = DEFER later please } }",
            smtpd_recipient_restrictions="check_recipient_access "
            "inline:{ held@example.test=HOLD }")

    def test_client_permit_does_not_skip_sender_list(self):
        t = self.tern
        self.assertEqual(rcpt(t, "127.0.0.3", OTHER,
                              sender="good@example.org")[0], 250)
        code, text = rcpt(t, "127.0.0.3", OTHER, sender="bad@example.org")
        self.assertEqual(code, 554, text)
        self.assertIn("<bad@example.org>: Sender address rejected: "
                      "Access denied", text)

    def test_first_match_wins_within_a_list(self):
        t = self.tern
        # 127.0.0.5 is in no table: "permit" comes before "reject".
        self.assertEqual(rcpt(t, "127.0.0.5", OTHER,
                              sender="good@example.org")[0], 250)
        code, text = rcpt(t, "127.0.0.4", OTHER, sender="good@example.org")
        self.assertEqual(code, 554, text)
        self.assertIn("<127.0.0.4[127.0.0.4]>: Client host rejected: "
                      "Access denied", text)
        # The first table's REJECT wins over the second table's OK.
        code, text = rcpt(t, "127.0.0.5", OTHER, sender="bad@example.org")
        self.assertEqual(code, 554, text)
        # A domain entry, with its text, when the address has none.
        code, text = rcpt(t, "127.0.0.5", OTHER, sender="x@example.org")
        self.assertEqual(code, 450, text)
        self.assertEqual(text, "4.7.1 <x@example.org>: Sender address "
                         "rejected: later please")

    def test_numeric_result_with_own_status(self):
        code, text = rcpt(self.tern, "127.0.0.6", OTHER,
                          sender="good@example.org")
        self.assertEqual(code, 521, text)
        self.assertEqual(text, "5.7.9 <127.0.0.6[127.0.0.6]>: Client host "
                         "rejected: go away")

    def test_hold_action_puts_message_in_hold(self):
        t = self.tern
        qid = harness.smtp_send(t.smtp_port, "good@example.org",
                                ["held@example.test"],
                                harness.make_message("good@example.org",
                                                     "held@example.test")[1])
        wait_until(lambda: os.path.exists(
            os.path.join(t.queue_dir, "hold", qid)), SHORT,
            "%s in hold/" % qid)
        self.assertFalse(os.path.exists(
            os.path.join(t.queue_dir, "incoming", qid)))


class TablesTest(TernTestCase):
    """hash: (built by ternmap), pcre: and cidr: tables from files."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(OTHER, "Bob-pw-42")
        d = tern.dir
        write(os.path.join(d, "sender_access"),
              "# senders\nspammer@bad.test REJECT\n"
              "bad2.test 553 5.7.2 domain refused\n"
              "friend@bad2.test OK\n")
        ternmap(tern, "hash:" + os.path.join(d, "sender_access"))
        write(os.path.join(d, "helo.pcre"),
              "/^bad\\.helo\\./ REJECT bad helo\n"
              "/^[0-9.]+$/ REJECT naked address\n")
        write(os.path.join(d, "clients.cidr"),
              "127.0.0.7/32 REJECT\n127.0.0.8 550 5.7.1 no thanks\n")
        tern.conf_set(
            smtpd_client_restrictions="check_client_access cidr:"
            + os.path.join(d, "clients.cidr"),
            smtpd_helo_restrictions="check_helo_access pcre:"
            + os.path.join(d, "helo.pcre"),
            smtpd_sender_restrictions="check_sender_access hash:"
            + os.path.join(d, "sender_access"))

    def test_hash_sender_access(self):
        t = self.tern
        code, text = rcpt(t, "127.0.0.2", OTHER, sender="Spammer@bad.test")
        self.assertEqual(code, 554, text)
        self.assertIn("Sender address rejected: Access denied", text)
        code, text = rcpt(t, "127.0.0.2", OTHER, sender="x@mail.bad2.test")
        self.assertEqual((code, text), (553, "5.7.2 <x@mail.bad2.test>: "
                                        "Sender address rejected: domain "
                                        "refused"))
        self.assertEqual(rcpt(t, "127.0.0.2", OTHER,
                              sender="friend@bad2.test")[0], 250)
        self.assertEqual(rcpt(t, "127.0.0.2", OTHER,
                              sender="x@good.test")[0], 250)

    def test_ternmap_query(self):
        t = self.tern
        spec = "hash:" + os.path.join(t.dir, "sender_access")
        out = ternmap(t, "-q", "SPAMMER@bad.test", spec)
        self.assertEqual(out.stdout.strip(), "REJECT")
        self.assertEqual(ternmap(t, "-q", "nobody@x", spec,
                                 check=False).returncode, 1)

    def test_pcre_helo(self):
        t = self.tern
        code, text = rcpt(t, "127.0.0.2", OTHER, helo="bad.helo.example")
        self.assertEqual(code, 554, text)
        self.assertIn("<bad.helo.example>: Helo command rejected: bad helo",
                      text)
        code, text = rcpt(t, "127.0.0.2", OTHER, helo="10.1.2.3")
        self.assertIn("naked address", text)
        self.assertEqual(rcpt(t, "127.0.0.2", OTHER,
                              helo="good.helo.example")[0], 250)

    def test_cidr_client(self):
        t = self.tern
        code, text = rcpt(t, "127.0.0.7", OTHER)
        self.assertEqual(code, 554, text)
        self.assertIn("Client host rejected", text)
        self.assertEqual(rcpt(t, "127.0.0.8", OTHER),
                         (550, "5.7.1 <127.0.0.8[127.0.0.8]>: Client host "
                          "rejected: no thanks"))
        self.assertEqual(rcpt(t, "127.0.0.9", OTHER)[0], 250)

    def test_rebuilt_while_serving(self):
        """ternmap replaces the table by rename while sessions run: no
        lookup fails, and the new content is used."""
        t = self.tern
        src = os.path.join(t.dir, "sender_access")
        spec = "hash:" + src
        codes = []
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                with session(t, "127.0.0.2",
                             sender="flip@rebuilt.test") as c:
                    # Fewer rejects than smtpd_hard_error_limit.
                    for _ in range(5):
                        codes.append(c.cmd("RCPT TO:<%s>" % OTHER)[0])
                    c.cmd("QUIT")

        th = threading.Thread(target=hammer)
        th.start()
        try:
            with open(src) as f:
                base = f.read()
            for i in range(10):
                write(src, base + "flip@rebuilt.test %s\n"
                      % ("REJECT" if i % 2 == 0 else "OK"))
                ternmap(t, spec)
            write(src, base + "flip@rebuilt.test REJECT\n")
            ternmap(t, spec)
            # The last version rejects; smtpd notices within its recheck.
            wait_until(lambda: rcpt(t, "127.0.0.2", OTHER,
                                    sender="flip@rebuilt.test")[0] == 554,
                       SHORT, "the rebuilt table to reject")
        finally:
            stop.set()
            th.join(SHORT * 2)
        self.assertGreater(len(codes), 0)
        self.assertEqual(set(codes) - {250, 554}, set())
        self.assertNotIn("Temporary lookup failure",
                         t.log()[t.log_checked:])

    def test_bad_table_named_with_line(self):
        t = self.tern
        bad = os.path.join(t.dir, "bad.cidr")
        write(bad, "127.0.0.0/8 OK\n127.0.0.1/8 REJECT\n")
        r = ternmap(t, "cidr:" + bad, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s, line 2" % bad, r.stderr)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dnsmasq:
    """dnsmasq on 127.0.0.1 answering the test zones (Debian's dnsmasq,
    installed by test.sh), with slow.test forwarded to a socket that
    never answers."""

    def __init__(self, tmp, extra=()):
        exe = shutil.which("dnsmasq")
        if exe is None:
            raise unittest_skip("dnsmasq is not installed")
        self.port = free_udp_port()
        self.blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.blackhole.bind(("127.0.0.1", 0))
        self.proc = subprocess.Popen(
            [exe, "--no-daemon", "--no-resolv", "--no-hosts",
             "--bind-interfaces", "--listen-address=127.0.0.1",
             "--port=%d" % self.port, "--user=root",
             "--pid-file=" + os.path.join(tmp, "dnsmasq.pid"),
             "--local=/bl.test/",
             "--address=/2.0.0.127.bl.test/127.0.0.2",
             "--txt-record=2.0.0.127.bl.test,listed for testing",
             "--server=/slow.test/127.0.0.1#%d"
             % self.blackhole.getsockname()[1]] + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self.answers, SHORT, "dnsmasq to answer")

    def answers(self):
        """A real query: does dnsmasq answer 2.0.0.127.bl.test?"""
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq exited: %r"
                                 % self.proc.stderr.read())
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x012\x010\x010\x03127\x02bl\x04test\x00\x00\x01\x00\x01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.sendto(q, ("127.0.0.1", self.port))
            try:
                data = s.recv(512)
            except socket.timeout:
                return False
            return data[:2] == b"\x12\x34" and data[7] >= 1

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(SHORT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(SHORT)
        self.proc.stderr.close()
        self.blackhole.close()


def unittest_skip(why):
    import unittest
    return unittest.SkipTest(why)


class DnsblTest(TernTestCase):
    class_instance = False
    TIMEOUT = 4

    def setUp(self):
        super().setUp()
        self.dns = Dnsmasq(harness.tempfile.gettempdir())
        self.addCleanup(self.dns.close)

        def configure(t):
            t.add_user(OTHER, "Bob-pw-42")
            t.conf_set(
                dns_servers="127.0.0.1:%d" % self.dns.port,
                dns_lookup_timeout="%ds" % self.TIMEOUT,
                smtpd_client_restrictions="reject_rbl_client bl.test, "
                "check_client_access inline:{ 127.0.0.9=OK }, "
                "reject_rbl_client slow.test")
        self.t = self.new_instance(configure=configure)

    def test_listed_client_rejected_unlisted_accepted(self):
        t = self.t
        code, text = rcpt(t, "127.0.0.2", OTHER)
        self.assertEqual(code, 554, text)
        self.assertIn("Client host [127.0.0.2] blocked using bl.test; "
                      "listed for testing", text)
        # 127.0.0.9: not in bl.test, and OK before slow.test is asked.
        self.assertEqual(rcpt(t, "127.0.0.9", OTHER)[0], 250)

    def test_timeout_blocks_only_its_session(self):
        t = self.t
        slow = session(t, "127.0.0.3")
        self.addCleanup(slow.close)
        start = time.monotonic()
        slow.send(b"RCPT TO:<%s>\r\n" % OTHER.encode())
        # Meanwhile another client is served at once.
        t0 = time.monotonic()
        self.assertEqual(rcpt(t, "127.0.0.9", OTHER)[0], 250)
        self.assertLess(time.monotonic() - t0, 2.0)
        # The slow one is answered after the DNS deadline: not listed.
        code, text = slow.reply()
        waited = time.monotonic() - start
        self.assertEqual(code, 250, text)
        self.assertGreaterEqual(waited, self.TIMEOUT - 1)
        t.wait_for_log(r"DNS lookup of 3\.0\.0\.127\.slow\.test for "
                       r"127\.0\.0\.3\[127\.0\.0\.3\]: timeout")


class DnsDomainTest(TernTestCase):
    """reject_unknown_sender_domain and reject_unknown_recipient_domain
    against domains the test's dnsmasq knows: an MX, only an A record,
    NXDOMAIN, and a null MX (RFC 7505)."""

    class_instance = False

    def setUp(self):
        super().setUp()
        self.dns = Dnsmasq(harness.tempfile.gettempdir(), extra=(
            "--local=/nx.test/", "--mx-host=mx.test,mail.mx.test,10",
            "--local=/mx.test/", "--address=/a-only.test/192.0.2.1",
            "--mx-host=nullmx.test,.,0", "--local=/nullmx.test/"))
        self.addCleanup(self.dns.close)

        def configure(t):
            t.add_user(OTHER, "Bob-pw-42")
            t.conf_set(
                dns_servers="127.0.0.1:%d" % self.dns.port,
                mynetworks="127.0.0.1/32",
                smtpd_sender_restrictions="reject_unknown_sender_domain",
                smtpd_recipient_restrictions="reject_unknown_recipient_"
                "domain")
        self.t = self.new_instance(configure=configure)

    def test_sender_domains(self):
        t = self.t
        for sender in ("a@mx.test", "a@a-only.test", ""):
            self.assertEqual(rcpt(t, "127.0.0.2", OTHER,
                                  sender=sender)[0], 250, sender)
        code, text = rcpt(t, "127.0.0.2", OTHER, sender="a@nx.test")
        self.assertEqual((code, text), (450, "4.1.8 <a@nx.test>: Sender "
                                        "address rejected: Domain not "
                                        "found"))
        code, text = rcpt(t, "127.0.0.2", OTHER, sender="a@nullmx.test")
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.27 <a@nullmx.test>: Sender address rejected: "
                      "Domain nullmx.test does not accept mail", text)

    def test_recipient_domains(self):
        t = self.t
        # Relaying for mynetworks, to domains that exist.
        self.assertEqual(rcpt(t, "127.0.0.1", "x@mx.test",
                              sender="a@mx.test")[0], 250)
        code, text = rcpt(t, "127.0.0.1", "x@nx.test", sender="a@mx.test")
        self.assertEqual((code, text), (450, "4.1.2 <x@nx.test>: Recipient "
                                        "address rejected: Domain not "
                                        "found"))
        code, text = rcpt(t, "127.0.0.1", "x@nullmx.test",
                          sender="a@mx.test")
        self.assertEqual((code, text[:6]), (556, "5.1.10"))
        # Local domains are not asked about.
        self.assertEqual(rcpt(t, "127.0.0.2", OTHER,
                              sender="a@mx.test")[0], 250)


class RateTest(TernTestCase):
    """Two smtpd processes of one session each: the counts are anvil's,
    shared by both."""

    class_instance = False

    def instance(self, **conf):
        def configure(t):
            t.add_user(OTHER, "Bob-pw-42")
            t.conf_set(smtpd_max_clients="1",
                       smtpd_client_event_limit_exceptions="", **conf)
            with open(t.services_path()) as f:
                lines = f.read().splitlines()
            out = []
            for line in lines:
                f = line.split()
                if f and f[0].endswith(":%d" % t.smtp_port):
                    f[4] = "2"  # maxproc
                    line = " ".join(f)
                out.append(line)
            write(t.services_path(), "\n".join(out) + "\n")
        t = self.new_instance(configure=configure)
        wait_until(lambda: len(t.pids("smtpd")) >= 2, SHORT,
                   "two smtpd processes")
        return t

    def two_sessions(self, t):
        """One session in each smtpd process (a full process leaves the
        next connection to its sibling)."""
        a = SmtpConn(t.smtp_port, source="127.0.0.2")
        b = SmtpConn(t.smtp_port, source="127.0.0.2")
        return a, b

    def test_connection_rate_across_processes(self):
        t = self.instance(smtpd_client_connection_rate_limit="3")
        a, b = self.two_sessions(t)
        for c in (a, b):
            self.assertEqual(c.banner[0], 220)
            c.cmd("QUIT")
            c.close()
        with SmtpConn(t.smtp_port, source="127.0.0.2") as c:
            self.assertEqual(c.banner[0], 220)
        with SmtpConn(t.smtp_port, source="127.0.0.2") as c:
            self.assertEqual(c.banner[0], 421, c.banner)
            self.assertTrue(c.banner[1].startswith("4.7.0 "), c.banner)
            self.assertIn("too many connections from 127.0.0.2",
                          c.banner[1])
        # Another client is not affected.
        with SmtpConn(t.smtp_port, source="127.0.0.3") as c:
            self.assertEqual(c.banner[0], 220)
        pids = set(m for m in
                   __import__("re").findall(
                       r"smtpd\[(\d+)\]: connect from 127\.0\.0\.2",
                       t.log()))
        self.assertEqual(len(pids), 2, pids)

    def test_message_rate_across_processes(self):
        t = self.instance(smtpd_client_message_rate_limit="2")
        a, b = self.two_sessions(t)
        with a, b:
            for c in (a, b):
                c.cmd("EHLO client.example.org")
                self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
                c.cmd("RSET")
            code, text = a.cmd("MAIL FROM:<s@example.org>")
            self.assertEqual((code, text), (450, "4.7.1 Error: too much "
                                            "mail from 127.0.0.2"))


class SenderLoginTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.add_user(USER, PASSWORD)
        tern.add_user(OTHER, "Bob-pw-42")
        tern.conf_set(
            smtpd_sender_login_maps="inline:{ boss@example.test="
            "alice@example.test, @shared.example=alice@example.test, "
            "{ team@example.test = bob@example.test, alice@example.test } }",
            smtpd_sender_restrictions="reject_unauthenticated_sender_"
            "login_mismatch")

    def login(self):
        t = self.tern
        ctx = ssl.create_default_context(
            cafile=t.conf_get("smtpd_tls_cert_file"))
        ctx.load_verify_locations(cafile=t.conf_get("smtpd_tls_eccert_file"))
        ctx.check_hostname = False
        s = smtplib.SMTP("127.0.0.1", t.submission_port, timeout=SHORT)
        self.addCleanup(s.close)
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        return s

    def test_login_may_use_its_senders(self):
        s = self.login()
        for sender in (USER, "Boss@example.test", "x@shared.example",
                       "team@example.test", ""):
            self.assertEqual(s.mail(sender)[0], 250, sender)
            s.rset()

    def test_other_senders_553(self):
        s = self.login()
        for sender in (OTHER, "boss@other.example", "x@sub.shared.example"):
            code, text = s.mail(sender)
            self.assertEqual((code, text[:5]), (553, b"5.7.1"), sender)
            self.assertIn(b"not owned by user " + USER.encode(), text)

    def test_unauthenticated_client_may_not_use_a_login_sender(self):
        code, text = rcpt(self.tern, "127.0.0.2", OTHER,
                          sender="boss@example.test")
        self.assertEqual((code, text[:5]), (553, "5.7.1"))
        self.assertIn("not logged in", text)


class OpenRelayConfigTest(TernTestCase):
    class_instance = False

    def test_no_relay_guard_refuses_to_start(self):
        def configure(t):
            t.conf_set(smtpd_relay_restrictions="permit_mynetworks",
                       smtpd_recipient_restrictions="permit")
        t = self.new_instance(start=False, configure=configure)
        r = t.tern("start", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("smtpd_relay_restrictions and "
                      "smtpd_recipient_restrictions: specify at least one",
                      r.stderr)
        self.assertIsNone(t.master_pid())
        # Nor with a table that does not parse.
        bad = os.path.join(t.dir, "bad.pcre")
        write(bad, "/unclosed REJECT\n")
        t.conf_set(smtpd_relay_restrictions="reject_unauth_destination",
                   smtpd_recipient_restrictions="",
                   header_checks="pcre:" + bad)
        r = t.tern("check", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s, line 1" % bad, r.stderr)


class HeaderChecksTest(TernTestCase):
    """header_checks = pcre:... with Postfix's actions, on real mail."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(OTHER, "Bob-pw-42")
        path = os.path.join(tern.dir, "header_checks.pcre")
        write(path, "/^Subject:.*viagra/ REJECT no spam here\n"
                    "/^Subject: hold me/ HOLD\n"
                    "/^X-Drop:/ DISCARD\n"
                    "/^X-Secret:/ IGNORE\n"
                    "/^X-Watch:/ WARN watched\n")
        tern.conf_set(header_checks="pcre:" + path)

    def send(self, extra_headers, subject="hello"):
        msg = ("From: <s@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n%s"
               "\r\nbody\r\n" % (OTHER, subject, extra_headers)).encode()
        with smtplib.SMTP("127.0.0.1", self.tern.smtp_port,
                          timeout=SHORT) as s:
            s.ehlo("client.example.org")
            s.mail("s@example.org")
            s.rcpt(OTHER)
            return s.data(msg)

    def test_reject(self):
        code, text = self.send("", subject="cheap VIAGRA now")
        self.assertEqual((code, text), (550, b"5.7.1 no spam here"))
        self.tern.wait_for_log(r"reject: header Subject: cheap VIAGRA now "
                               r"from .*: 550 5\.7\.1 no spam here")

    def test_hold(self):
        t = self.tern
        code, text = self.send("", subject="hold me please")
        self.assertEqual(code, 250, text)
        qid = harness.queue_id_of(text.decode())
        wait_until(lambda: os.path.exists(
            os.path.join(t.queue_dir, "hold", qid)), SHORT,
            "%s in hold/" % qid)
        self.assertFalse(os.path.exists(
            os.path.join(t.queue_dir, "incoming", qid)))

    def test_discard_ignore_warn(self):
        t = self.tern
        maildir = t.virtual_maildir(OTHER)
        before = harness.maildir_count(maildir)
        code, text = self.send("X-Drop: yes\r\n")
        self.assertEqual(code, 250, text)
        t.wait_for_log(r"%s: discard: " % harness.queue_id_of(text.decode()))
        code, text = self.send("X-Secret: s3cret\r\nX-Watch: this\r\n")
        self.assertEqual(code, 250, text)
        files = t.wait_for_maildir(maildir, before + 1)
        with open(files[-1], "rb") as f:
            stored = f.read()
        self.assertNotIn(b"X-Secret", stored)
        self.assertIn(b"X-Watch: this", stored)
        self.assertEqual(harness.maildir_count(maildir), before + 1)
        t.wait_for_log(r"warning: header X-Watch: this .*: watched")


class DelayRejectTest(TernTestCase):
    """smtpd_delay_reject = no: HELO and sender lists answer their own
    commands."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(OTHER, "Bob-pw-42")
        tern.conf_set(
            smtpd_delay_reject="no",
            smtpd_client_restrictions="check_client_access "
            "inline:{ 127.0.0.66=REJECT }",
            smtpd_helo_restrictions="check_helo_access "
            "inline:{ bad.example=REJECT }",
            smtpd_sender_restrictions="check_sender_access "
            "inline:{ bad@example.org=REJECT }")

    def test_helo_and_mail_rejected_when_they_come(self):
        with SmtpConn(self.tern.smtp_port, source="127.0.0.2") as c:
            code, text = c.cmd("EHLO mx.bad.example")
            self.assertEqual((code, text), (554, "5.7.1 <mx.bad.example>: "
                                            "Helo command rejected: Access "
                                            "denied"))
            self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 503)
            self.assertEqual(c.cmd("EHLO good.example")[0], 250)
            code, text = c.cmd("MAIL FROM:<bad@example.org>")
            self.assertEqual(code, 554, text)
            self.assertIn("Sender address rejected", text)
            self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % OTHER)[0], 250)

    def test_client_rejected_at_connect(self):
        with SmtpConn(self.tern.smtp_port, source="127.0.0.66") as c:
            self.assertEqual(c.banner, (554, "5.7.1 <127.0.0.66[127.0.0.66]>: "
                                        "Client host rejected: Access "
                                        "denied"))
            self.assertEqual(c.cmd("EHLO client.example.org"),
                             (503, "5.7.0 Error: access denied for "
                              "127.0.0.66[127.0.0.66]"))
            self.assertEqual(c.cmd("QUIT")[0], 221)
        self.tern.wait_for_log(r"NOQUEUE: reject: CONNECT from "
                               r"127\.0\.0\.66\[127\.0\.0\.66\]: 554 5\.7\.1")
