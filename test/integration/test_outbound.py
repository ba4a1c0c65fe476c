# SPDX-License-Identifier: MIT
"""Outbound delivery: tern's smtp client against real parts. A dnsmasq on
loopback serves the test domains' MX, A, CNAME, null MX and failing
records (dns_servers points tern at it); the exchangers are real servers
on other 127.0.0.x addresses, all on one port (smtp_tcp_port): scripted
Python peers (peer.ScriptedPeer) that answer 4xx/5xx on command or
misbehave, Postfix's smtp-sink as a foreign implementation, and, in the
ETRN test, a second tern instance.

Each class starts one tern instance; tests use their own domains and
peer addresses so that one test's deferrals (and the destination backoff
they cause) never touch another's.
"""

import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import ssl
import tempfile
import time
import unittest
import uuid

import harness
import peer
from harness import TernTestCase, make_message, smtp_send, to_crlf

# Each test's sender is a user of the instance (notices land there).
SENDER_PW = "Snd-pw-42"

DNS = None          # the module's DnsServer
PORT = None         # the port every peer listens on (smtp_tcp_port)
TMP = None          # certificates, smtp-sink's dumps, the DNS log

# Short per-stage timeouts for the classes with peers that hang.
SHORT_TIMEOUTS = {name: "2" for name in (
    "smtp_connect_timeout", "smtp_greeting_timeout", "smtp_helo_timeout",
    "smtp_mail_timeout", "smtp_rcpt_timeout", "smtp_data_init_timeout",
    "smtp_data_xfer_timeout", "smtp_data_done_timeout",
    "smtp_quit_timeout")}

# Test domains -> [(preference, exchanger)], and exchangers' addresses.
# Nothing listens where no test starts a peer.
MX = {
    # MxFallbackTest: 127.0.0.1x
    "fb.test": [(10, "mx1.fb.test"), (20, "mx2.fb.test")],
    "greet.test": [(10, "mx1.greet.test"), (20, "mx2.greet.test")],
    "down.test": [(10, "mx1.down.test"), (20, "mx2.down.test")],
    "rcpt.test": [(10, "mx.rcpt.test")],
    "bounce.test": [(10, "mx.rcpt.test")],
    # DnsTest: 127.0.0.2x
    "loop.test": [(10, "self.loop.test")],
    "cn.test": [(10, "alias.cn.test")],
    # TlsTest: 127.0.0.3x
    "tls.test": [(10, "mx.tls.test")],
    "tlsv.test": [(10, "mx.tlsv.test")],
    "tlsok.test": [(10, "mx.tlsok.test")],
    "tlsbad.test": [(10, "mx.tlsbad.test")],
    # ProtocolTest: 127.0.0.4x
    "7bit.test": [(10, "mx.7bit.test")],
    "size.test": [(10, "mx.size.test")],
    "pipe.test": [(10, "mx.pipe.test")],
    "reuse.test": [(10, "mx.reuse.test")],
    "dsn.test": [(10, "mx.dsn.test")],
    "nodsn.test": [(10, "mx.nodsn.test")],
    "unreach.test": [(10, "mx.unreach.test")],
    "helo.test": [(10, "mx.helo.test")],
    "bdat.test": [(10, "mx.bdat.test")],
    "utf8.test": [(10, "mx.utf8.test")],
    "viamx.test": [(10, "mx.viamx.test")],
    "enc.test": [(10, "mx.enc.test")],
    "resume.test": [(10, "mx.resume.test")],
    "rate.test": [(10, "mx.rate.test")],
    "kill.test": [(10, "mx.kill.test")],
    # BrokenPeerTest: 127.0.0.6x
    "silent.test": [(10, "mx.silent.test")],
    "garbage.test": [(10, "mx.garbage.test")],
    "overlong.test": [(10, "mx.overlong.test")],
    "endless.test": [(10, "mx.endless.test")],
    "dropdata.test": [(10, "mx.dropdata.test")],
    "data250.test": [(10, "mx.data250.test")],
    # EtrnTest: instance B on 127.0.0.3
    "b.test": [(10, "mx.b.test")],
}
HOSTS = {
    "mx1.fb.test": "127.0.0.11", "mx2.fb.test": "127.0.0.12",
    "mx1.greet.test": "127.0.0.13", "mx2.greet.test": "127.0.0.14",
    "mx1.down.test": "127.0.0.15", "mx2.down.test": "127.0.0.16",
    "mx.rcpt.test": "127.0.0.17",
    "mx1.eq.test": "127.0.0.18", "mx2.eq.test": "127.0.0.19",
    "amx.test": "127.0.0.21",               # no MX: its A is used
    "self.loop.test": "127.0.0.1",          # where the instance listens
    "target.cn.test": "127.0.0.22",
    "mx.tls.test": "127.0.0.31", "mx.tlsv.test": "127.0.0.32",
    "mx.tlsok.test": "127.0.0.33", "mx.tlsbad.test": "127.0.0.34",
    "mx.7bit.test": "127.0.0.41", "mx.size.test": "127.0.0.42",
    "mx.pipe.test": "127.0.0.43", "mx.reuse.test": "127.0.0.44",
    "mx.dsn.test": "127.0.0.45", "mx.nodsn.test": "127.0.0.46",
    "mx.unreach.test": "127.0.0.48",        # down; smtp_fallback_relay
    "mx.helo.test": "127.0.0.53", "mx.bdat.test": "127.0.0.54",
    "mx.utf8.test": "127.0.0.55", "mx.viamx.test": "127.0.0.56",
    "mx.enc.test": "127.0.0.35", "mx.resume.test": "127.0.0.36",
    "mx.rate.test": "127.0.0.57",
    "mx.kill.test": "127.0.0.58",
    "mx.silent.test": "127.0.0.61", "mx.garbage.test": "127.0.0.62",
    "mx.overlong.test": "127.0.0.63", "mx.endless.test": "127.0.0.64",
    "mx.dropdata.test": "127.0.0.65", "mx.data250.test": "127.0.0.66",
    "mx.b.test": "127.0.0.3",
}
# Equal preferences: EQ_DOMAINS domains, each with both exchangers at 10
# (one domain per message: a reused connection would follow the first).
EQ_DOMAINS = 30
FALLBACK_RELAY = "127.0.0.47"
SINK_ADDR = "127.0.0.49"


def setUpModule():
    global DNS, PORT, TMP
    agent = os.path.join(harness.DAEMON_DIR, "smtp")
    if not os.access(agent, os.X_OK) or harness.run(
            [harness.TernInstance.sbin("ternconf"), "-d", "smtp_tcp_port"],
            check=False).returncode != 0:
        raise unittest.SkipTest("the smtp delivery agent is not built "
                                "(no %s or no smtp_tcp_port)" % agent)
    TMP = os.path.realpath(tempfile.mkdtemp(prefix="tern-outbound-"))
    harness.record_for_cleanup("dir", TMP)
    os.chmod(TMP, 0o755)
    DNS = harness.DnsServer(TMP)
    for domain, mxes in MX.items():
        for pref, host in mxes:
            DNS.mx(domain, host, pref)
    for i in range(EQ_DOMAINS):
        DNS.mx("eq%d.test" % i, "mx1.eq.test", 10)
        DNS.mx("eq%d.test" % i, "mx2.eq.test", 10)
    for host, addr in HOSTS.items():
        DNS.host(host, addr)
    DNS.cname("alias.cn.test", "target.cn.test")
    DNS.null_mx("nullmx.test")
    DNS.servfail("broken.test")
    DNS.start()
    # One port free on every address the peers use (127.0.0.1 stands in
    # for them: a wildcard listener would take it there too).
    PORT = harness.find_free_port()


def tearDownModule():
    if DNS is not None:
        DNS.close()
    if TMP is not None and os.environ.get("TERN_KEEP") != "1":
        shutil.rmtree(TMP, ignore_errors=True)


def log_re(qid, rcpt, status):
    """A delivery log line (Postfix's shape); groups relay, dsn, text.
    delays= is optional: qmgr's own lines (relay=none) have none."""
    return (r"%s: to=<%s>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>\S+),"
            r"(?: conn_use=\d+,)? delay=[\d.]+,"
            r"(?: delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+,)? dsn=(?P<dsn>\d\.\d{1,3}"
            r"\.\d{1,3}), status=%s \((?P<text>.*)\)$"
            % (qid, re.escape(rcpt), status))


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def notice_fields(notice):
    """The per-recipient fields (lower-case names) of a DSN."""
    assert notice.get_content_type() == "multipart/report", \
        notice.get_content_type()
    status = notice.get_payload()[1]
    groups = status.get_payload()
    return [{k.lower(): v for k, v in g.items()} for g in groups[1:]]


def unique(tag, domain):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], domain)


class OutboundCase(TernTestCase):
    """An instance that relays for 127.0.0.1 (mynetworks), resolves with
    the module's dnsmasq and connects to PORT; a local sender gets the
    notices. Subclasses add settings in conf()."""

    @classmethod
    def conf(cls, tern):
        """Hook: more settings for the class instance."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(dns_servers=DNS.server, smtp_tcp_port=str(PORT),
                      mynetworks="127.0.0.1/32",
                      myhostname="tern-out.test")
        cls.conf(tern)

    def setUp(self):
        super().setUp()
        self.sender = unique("snd", harness.VIRTUAL_DOMAIN)
        self.tern.add_user(self.sender, SENDER_PW)

    def peer(self, addr, **kw):
        """A ScriptedPeer on addr:PORT, stopped after the test."""
        p = peer.ScriptedPeer(addr, PORT, **kw)
        p.start()
        self.addCleanup(p.stop)
        return p

    def send(self, rcpts, subject="outbound", body=b"hello\n.one dot\n"
             b"..two dots\n", sender=None):
        """Submits a message from 127.0.0.1 (relay by mynetworks);
        returns (queue ID, the message as sent, LF endings)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        sender = sender or self.sender
        _, msg = make_message(sender, rcpts[0], subject=subject, body=body)
        qid = smtp_send(self.tern.smtp_port, sender, rcpts, msg)
        return qid, msg

    def got(self, p, n=1):
        """p.wait_messages(n), with the instance's log when it fails."""
        try:
            return p.wait_messages(n)
        except AssertionError as e:
            raise AssertionError("%s\n--- log tail ---\n%s"
                                 % (e, self.tern.log()[-6000:])) from None

    def wait_log(self, qid, rcpt, status, timeout=harness.DELIVERY_TIMEOUT):
        return self.tern.wait_for_log(log_re(qid, rcpt, status),
                                      timeout=timeout)

    def assertRelayed(self, tx, msg):
        """tx carries msg whole after tern's own Received header: headers
        and body unchanged, dot-stuffing undone by the peer."""
        self.assertTrue(tx.data.startswith(b"Received: "), tx.data[:200])
        self.assertTrue(tx.data.endswith(to_crlf(msg)),
                        "peer got %r, sent %r" % (tx.data[-300:], msg))

    def assertQueued(self, qid):
        # smtp logs the status before qmgr has moved the file out of
        # active/: the move follows, within the delivery's bound.
        harness.wait_until(
            lambda: qid in self.tern.queue_files("deferred"),
            harness.DELIVERY_TIMEOUT, "%s in deferred/" % qid)

    def notices(self, count):
        files = self.tern.wait_for_maildir(
            self.tern.virtual_maildir(self.sender), count)
        out = []
        for p in files:
            with open(p, "rb") as f:
                out.append(parse(f.read()))
        return out


class MxFallbackTest(OutboundCase):
    """Exchangers in preference order, spread among equals, all down
    then back, and per-recipient answers."""

    def test_primary_down_secondary_takes_it(self):
        p2 = self.peer("127.0.0.12")
        rcpt = unique("u", "fb.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p2, 1)
        self.assertEqual(tx.mail_from, self.sender)
        self.assertEqual(tx.rcpt_addrs, [rcpt])
        self.assertRelayed(tx, msg)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertEqual(m.group("relay"),
                         "mx2.fb.test[127.0.0.12]:%d" % PORT)
        self.assertEqual(m.group("dsn"), "2.0.0")
        self.assertRegex(m.group("text"),
                         r"^250 2\.0\.0 Ok: queued as PEER\d+$")
        self.tern.wait_for_log(r"%s: removed" % qid)

    def test_421_greeting_moves_to_the_next(self):
        p1 = self.peer("127.0.0.13")
        p1.rule("CONNECT", "421 4.3.2 busy, try another")
        p2 = self.peer("127.0.0.14")
        rcpt = unique("u", "greet.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p2, 1)
        self.assertRelayed(tx, msg)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertTrue(m.group("relay").startswith("mx2.greet.test["))
        self.assertEqual(p1.transactions, [])

    def test_equal_preferences_spread_over_both(self):
        p1 = self.peer("127.0.0.18")
        p2 = self.peer("127.0.0.19")
        # Each exchanger first with odds 1/2 per message: both have
        # some within EQ_DOMAINS messages unless the order is not random
        # (a chance of 2^-29 otherwise).
        for i in range(EQ_DOMAINS):
            self.send(unique("u", "eq%d.test" % i))
            harness.wait_until(
                lambda: len(p1.transactions) + len(p2.transactions) > i,
                harness.DELIVERY_TIMEOUT, "message %d delivered" % i)
            if p1.transactions and p2.transactions:
                break
        self.assertTrue(p1.transactions and p2.transactions,
                        "%d messages all went to one exchanger: %d and %d"
                        % (i + 1, len(p1.transactions),
                           len(p2.transactions)))

    def test_all_down_deferred_then_flushed_after_they_come_back(self):
        rcpt = unique("u", "down.test")
        qid, msg = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "deferred")
        self.assertEqual(m.group("relay"), "none")
        self.assertTrue(m.group("dsn").startswith("4."), m.group("dsn"))
        # The last reason: the second exchanger's.
        self.assertIn("127.0.0.16", m.group("text"))
        self.tern.wait_for_log(r"%s: deferred" % qid)
        self.assertQueued(qid)
        p2 = self.peer("127.0.0.16")
        since = self.tern.log_size()
        self.tern.tern("flush")
        [tx] = self.got(p2, 1)
        self.assertRelayed(tx, msg)
        self.tern.wait_for_log(log_re(qid, rcpt, "sent"), since=since)
        self.tern.wait_for_log(r"%s: removed" % qid, since=since)
        self.assertNotIn(qid, self.tern.queue_files("deferred"))

    def test_4xx_for_one_recipient_defers_only_it(self):
        p = self.peer("127.0.0.17")
        good, later = unique("ok", "rcpt.test"), unique("later", "rcpt.test")
        p.rule("RCPT", "450 4.2.1 mailbox busy, try later", match=later)
        qid, msg = self.send([good, later])
        [tx] = self.got(p, 1)
        self.assertEqual(tx.rcpt_addrs, [good])
        self.wait_log(qid, good, "sent")
        m = self.wait_log(qid, later, "deferred")
        self.assertEqual(m.group("dsn"), "4.2.1")
        self.assertIn("450 4.2.1 mailbox busy, try later", m.group("text"))
        self.assertEqual(m.group("relay"), "mx.rcpt.test[127.0.0.17]:%d"
                         % PORT)
        self.tern.wait_for_log(r"%s: deferred" % qid)
        self.assertQueued(qid)
        with open(os.path.join(self.tern.queue_dir, "deferred", qid),
                  "rb") as f:
            rcpts = harness.queue_file_recipients(f.read())
        self.assertEqual(rcpts, {good: "D", later: "R"})

    def test_5xx_bounces_with_a_notice_to_the_sender(self):
        p = self.peer("127.0.0.17")
        gone = unique("gone", "bounce.test")
        p.rule("RCPT", "550 5.1.1 <%s>: no such user here" % gone,
               match=gone)
        qid, msg = self.send(gone, subject="to the void")
        m = self.wait_log(qid, gone, "bounced")
        self.assertEqual(m.group("dsn"), "5.1.1")
        self.assertIn("550 5.1.1", m.group("text"))
        [n] = self.notices(1)
        [r] = notice_fields(n)
        self.assertEqual(r["final-recipient"], "rfc822; " + gone)
        self.assertEqual(r["action"], "failed")
        self.assertEqual(r["status"], "5.1.1")
        self.assertEqual(r["remote-mta"], "dns; mx.rcpt.test")
        self.assertRegex(r["diagnostic-code"],
                         r"^smtp; ?550 5\.1\.1 <%s>: no such user here"
                         % re.escape(gone))
        self.assertEqual(p.transactions, [])
        self.tern.wait_for_log(r"%s: removed" % qid)


class DnsTest(OutboundCase):
    """What DNS answers decide: null MX, implicit MX, NXDOMAIN,
    SERVFAIL, CNAME, and an exchanger that is this instance."""

    def test_null_mx_bounces_at_once(self):
        rcpt = unique("u", "nullmx.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "bounced")
        self.assertEqual(m.group("dsn"), "5.1.10")
        self.assertEqual(m.group("relay"), "none")
        self.tern.wait_for_log(r"%s: removed" % qid)

    def test_no_mx_uses_the_domains_address(self):
        p = self.peer("127.0.0.21")
        rcpt = unique("u", "amx.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertRelayed(tx, msg)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertEqual(m.group("relay"), "amx.test[127.0.0.21]:%d" % PORT)

    def test_nxdomain_bounces_5_1_2(self):
        rcpt = unique("u", "nosuchdomain.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "bounced")
        self.assertEqual(m.group("dsn"), "5.1.2")
        self.assertEqual(m.group("relay"), "none")
        [n] = self.notices(1)
        [r] = notice_fields(n)
        self.assertEqual(r["status"], "5.1.2")

    def test_servfail_defers(self):
        rcpt = unique("u", "broken.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "deferred")
        self.assertTrue(m.group("dsn").startswith("4."), m.group("dsn"))
        self.tern.wait_for_log(r"%s: deferred" % qid)
        self.assertQueued(qid)

    def test_cname_of_the_exchanger_is_followed(self):
        p = self.peer("127.0.0.22")
        rcpt = unique("u", "cn.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertRelayed(tx, msg)
        self.wait_log(qid, rcpt, "sent")

    def test_mx_pointing_back_here_bounces_5_4_6(self):
        rcpt = unique("u", "loop.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "bounced")
        self.assertEqual(m.group("dsn"), "5.4.6")
        self.assertIn("mail for loop.test loops back to myself",
                      m.group("text"))


class TlsTest(OutboundCase):
    """STARTTLS under the security levels, the certificate's status in
    the log, per-destination policy."""

    @classmethod
    def conf(cls, tern):
        cls.certs = os.path.join(TMP, "certs")
        cls.cert, cls.key = peer.make_cert(cls.certs, "mx.tls.test")
        cls.vcert, cls.vkey = peer.make_cert(cls.certs, "mx.tlsv.test")
        cls.okcert, cls.okkey = peer.make_cert(cls.certs, "mx.tlsok.test")
        tern.conf_set(
            smtp_tls_CAfile=cls.okcert,
            smtp_tls_policy_maps="inline:{ tlsv.test=verify, "
                                 "tlsok.test=verify, enc.test=encrypt }",
            # A connection per message: the handshakes are the subject.
            smtp_connection_reuse_time="0")

    def test_second_connection_resumes_the_tls_session(self):
        p = self.peer("127.0.0.36", cert=self.cert, key=self.key)
        line = (r"Untrusted TLS connection established to "
                r"mx\.resume\.test\[127\.0\.0\.36\]:%d: \S+ with cipher "
                r"\S+ \(\d+/\d+ bits\)" % PORT)
        since = self.tern.log_size()
        qid, _ = self.send(unique("u", "resume.test"))
        self.got(p, 1)
        first = self.tern.wait_for_log(line + "$", since=since)
        self.assertIsNotNone(first)
        since = self.tern.log_size()
        self.send(unique("u", "resume.test"))
        self.got(p, 2)
        self.tern.wait_for_log(line + ", session resumed$", since=since)
        self.assertEqual(p.connections, 2)

    def test_encrypt_refuses_a_peer_without_starttls(self):
        p = self.peer("127.0.0.35")
        rcpt = unique("u", "enc.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "deferred")
        self.assertEqual(m.group("dsn"), "4.7.4")
        self.assertIn("TLS is required, but was not offered", m.group("text"))
        self.assertEqual(p.transactions, [])
        self.assertNotIn("MAIL", [v for v, _ in p.commands])
        self.assertQueued(qid)

    def test_self_signed_under_may_is_used_and_logged_untrusted(self):
        p = self.peer("127.0.0.31", cert=self.cert, key=self.key)
        rcpt = unique("u", "tls.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertIsNotNone(tx.tls)
        self.assertRelayed(tx, msg)
        self.tern.wait_for_log(
            r"Untrusted TLS connection established to "
            r"mx\.tls\.test\[127\.0\.0\.31\]:%d: TLSv1\.[23] with cipher "
            r"\S+ \(\d+/\d+ bits\)" % PORT)
        self.wait_log(qid, rcpt, "sent")

    def test_self_signed_under_verify_is_refused(self):
        p = self.peer("127.0.0.32", cert=self.vcert, key=self.vkey)
        rcpt = unique("u", "tlsv.test")
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "deferred")
        self.assertRegex(m.group("text"), r"(?i)verif")
        self.assertEqual(p.transactions, [])
        self.tern.wait_for_log(r"%s: deferred" % qid)
        self.assertQueued(qid)

    def test_verify_passes_with_the_ca_and_the_name(self):
        p = self.peer("127.0.0.33", cert=self.okcert, key=self.okkey)
        rcpt = unique("u", "tlsok.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertIsNotNone(tx.tls)
        self.tern.wait_for_log(
            r"(Trusted|Verified) TLS connection established to "
            r"mx\.tlsok\.test\[127\.0\.0\.33\]:%d" % PORT)
        self.wait_log(qid, rcpt, "sent")

    def test_failed_handshake_under_may_retries_in_plaintext(self):
        # STARTTLS offered, 220, then no TLS at all.
        p = self.peer("127.0.0.34", extensions=list(
            peer.ScriptedPeer.DEFAULT_EXTENSIONS) + ["STARTTLS"])
        p.rule("STARTTLS", "220 2.0.0 go ahead")
        rcpt = unique("u", "tlsbad.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertIsNone(tx.tls)
        self.assertRelayed(tx, msg)
        self.wait_log(qid, rcpt, "sent")


class ProtocolTest(OutboundCase):
    """What the client does with the peer's extensions: 8BITMIME
    conversion, SIZE, PIPELINING, DSN, connection reuse; a fallback
    relay; smtp-sink as a foreign server."""

    @classmethod
    def conf(cls, tern):
        tern.conf_set(smtp_connection_reuse_time="30",
                      smtp_fallback_relay="[%s]" % FALLBACK_RELAY,
                      transport_maps="inline:{ sink.test=smtp:[%s], "
                      "routed.test=smtp:viamx.test }" % SINK_ADDR)

    def test_helo_when_ehlo_is_refused(self):
        p = self.peer("127.0.0.53")
        p.rule("EHLO", "502 5.5.2 EHLO not implemented")
        rcpt = unique("u", "helo.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertFalse(tx.esmtp)
        self.assertEqual(tx.helo, "tern-out.test")
        self.assertEqual(tx.mail_params, {})
        self.assertRelayed(tx, msg)
        self.wait_log(qid, rcpt, "sent")

    def test_bdat_when_chunking_is_offered(self):
        p = self.peer("127.0.0.54", extensions=list(
            peer.ScriptedPeer.DEFAULT_EXTENSIONS) + ["CHUNKING"])
        rcpt = unique("u", "bdat.test")
        qid, msg = self.send(rcpt, body=b".leading dot\n\n.\nend\n")
        [tx] = self.got(p, 1)
        self.assertTrue(tx.bdat)
        self.assertNotIn("DATA", [v for v, _ in p.commands])
        self.assertRelayed(tx, msg)
        self.wait_log(qid, rcpt, "sent")

    def test_utf8_address_to_a_peer_without_smtputf8_bounces_5_6_7(self):
        p = self.peer("127.0.0.55")
        rcpt = "j\u00fcrgen-%s@utf8.test" % unique("x", "d").split("@")[0]
        _, msg = make_message(self.sender, "someone@utf8.test",
                              subject="utf8")
        with smtplib.SMTP("127.0.0.1", self.tern.smtp_port,
                          timeout=harness.SMTP_TIMEOUT) as c:
            c.sendmail(self.sender, [rcpt], to_crlf(msg),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        # The log shows non-ASCII bytes as "?" (one per byte).
        logged = re.escape(rcpt).replace("\u00fc", r"\?\?")
        m = self.tern.wait_for_log(
            r"to=<%s>, relay=\S+, .*dsn=5\.6\.7, status=bounced "
            r"\(SMTPUTF8 is required, but was not offered" % logged)
        self.assertIsNotNone(m)
        self.assertEqual(p.transactions, [])

    def test_transport_nexthop_without_brackets_is_looked_up_as_mx(self):
        p = self.peer("127.0.0.56")
        rcpt = unique("u", "routed.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertEqual(tx.rcpt_addrs, [rcpt])
        m = self.wait_log(qid, rcpt, "sent")
        self.assertEqual(m.group("relay"),
                         "mx.viamx.test[127.0.0.56]:%d" % PORT)

    def test_8bit_to_a_7bit_peer_is_converted_to_quoted_printable(self):
        p = self.peer("127.0.0.41", extensions=["PIPELINING",
                                                "ENHANCEDSTATUSCODES"])
        rcpt = unique("u", "7bit.test")
        text = ("Grüße aus Köln, ça va? " * 6 + "\nZweite Zeile: "
                "Übergrößenträger ñ € 😀\n").encode()
        _, msg = make_message(self.sender, rcpt, subject="8bit")
        head, _, _ = msg.partition(b"\n\n")
        msg = head + (b"\nMIME-Version: 1.0\nContent-Type: text/plain; "
                      b"charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n") \
            + text
        qid = smtp_send(self.tern.smtp_port, self.sender, [rcpt], msg)
        [tx] = self.got(p, 1)
        self.assertNotIn("BODY", tx.mail_params)
        self.assertTrue(all(b < 128 for b in tx.data),
                        "8-bit octets sent to a 7-bit peer")
        got = parse(tx.data)
        self.assertEqual(got["Content-Transfer-Encoding"].strip().lower(),
                         "quoted-printable")
        self.assertEqual(got["Subject"], "8bit")
        self.assertEqual(
            got.get_payload(decode=True).replace(b"\r\n", b"\n"), text)
        self.wait_log(qid, rcpt, "sent")

    def test_too_big_for_the_peer_bounces_before_data(self):
        p = self.peer("127.0.0.42", extensions=[
            "PIPELINING", "SIZE 2000", "8BITMIME", "ENHANCEDSTATUSCODES"],
            size_limit=2000)
        rcpt = unique("u", "size.test")
        qid, _ = self.send(rcpt, body=b"0123456789abcdef\n" * 300)
        m = self.wait_log(qid, rcpt, "bounced")
        self.assertEqual(m.group("dsn"), "5.3.4")
        verbs = [v for v, _ in p.commands]
        self.assertNotIn("DATA", verbs)
        self.assertNotIn("BDAT", verbs)
        self.assertEqual(p.transactions, [])

    def test_pipelining_when_offered(self):
        p = self.peer("127.0.0.43")
        a, b = unique("a", "pipe.test"), unique("b", "pipe.test")
        qid, msg = self.send([a, b])
        [tx] = self.got(p, 1)
        self.assertEqual(sorted(tx.rcpt_addrs), sorted([a, b]))
        self.assertTrue(tx.pipelined, "RCPT waited for the MAIL reply")
        self.assertIn("SIZE", tx.mail_params)
        self.assertRelayed(tx, msg)

    def test_kill_9_of_the_agent_mid_delivery_loses_nothing(self):
        # The peer takes the message but never answers the final dot:
        # the agent waits (smtp_data_done_timeout) and is killed there.
        p = self.peer("127.0.0.58")
        p.rule("DOT", peer.SILENT, times=1)
        rcpt = unique("u", "kill.test")
        qid, msg = self.send(rcpt)
        harness.wait_until(lambda: ("BDAT" in [v for v, _ in p.commands] or
                            "DATA" in [v for v, _ in p.commands]),
                   harness.DELIVERY_TIMEOUT, "the agent to send the body")
        qmgr = self.tern.pids("qmgr")
        since = self.tern.log_size()
        # Every agent process: the one in the session among them.
        for pid in self.tern.pids("smtp"):
            os.kill(pid, signal.SIGKILL)
        self.tern.wait_for_log(r"%s: .*delivery agent failed" % qid,
                               since=since)
        self.tern.tern("flush")
        [tx] = self.got(p, 1)
        self.assertRelayed(tx, msg)
        self.wait_log(qid, rcpt, "sent")
        self.assertEqual(self.tern.pids("qmgr"), qmgr)

    def test_connection_reused_for_the_next_message(self):
        p = self.peer("127.0.0.44")
        n = 3
        for i in range(n):
            self.send(unique("u", "reuse.test"))
            self.got(p, i + 1)
        self.assertLess(p.connections, n,
                        "%d messages in a row over %d connections"
                        % (n, p.connections))

    def test_dsn_parameters_of_a_submission_reach_a_dsn_peer(self):
        p = self.peer("127.0.0.45", extensions=list(
            peer.ScriptedPeer.DEFAULT_EXTENSIONS) + ["DSN"])
        rcpt = unique("u", "dsn.test")
        _, msg = make_message(self.sender, rcpt, subject="with dsn")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", self.tern.submission_port,
                          timeout=harness.SMTP_TIMEOUT) as s:
            s.ehlo("client.example.org")
            s.starttls(context=ctx)
            s.ehlo("client.example.org")
            s.login(self.sender, SENDER_PW)
            code, _ = s.mail(self.sender, ["RET=HDRS", "ENVID=env-42"])
            self.assertEqual(code, 250)
            code, _ = s.rcpt(rcpt, ["NOTIFY=SUCCESS,DELAY",
                                    "ORCPT=rfc822;orig@dsn.test"])
            self.assertEqual(code, 250)
            code, _ = s.data(to_crlf(msg))
            self.assertEqual(code, 250)
        [tx] = self.got(p, 1)
        self.assertEqual(tx.mail_params.get("RET"), "HDRS")
        self.assertEqual(tx.mail_params.get("ENVID"), "env-42")
        [(addr, params)] = tx.rcpts
        self.assertEqual(addr, rcpt)
        self.assertEqual(params.get("NOTIFY"), "SUCCESS,DELAY")
        self.assertEqual(params.get("ORCPT", "").lower(),
                         "rfc822;orig@dsn.test")

    def test_notify_success_to_a_peer_without_dsn_gets_relayed_notice(self):
        p = self.peer("127.0.0.46")
        rcpt = unique("u", "nodsn.test")
        _, msg = make_message(self.sender, rcpt, subject="tell me")
        with smtplib.SMTP("127.0.0.1", self.tern.smtp_port,
                          timeout=harness.SMTP_TIMEOUT) as s:
            s.ehlo("client.example.org")
            s.mail(self.sender)
            self.assertEqual(s.rcpt(rcpt, ["NOTIFY=SUCCESS"])[0], 250)
            self.assertEqual(s.data(to_crlf(msg))[0], 250)
        [tx] = self.got(p, 1)
        self.assertNotIn("NOTIFY", tx.rcpts[0][1])
        [n] = self.notices(1)
        [r] = notice_fields(n)
        self.assertEqual(r["action"], "relayed")
        self.assertEqual(r["final-recipient"], "rfc822; " + rcpt)

    def test_unreachable_exchanger_goes_to_the_fallback_relay(self):
        p = self.peer(FALLBACK_RELAY)
        rcpt = unique("u", "unreach.test")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertRelayed(tx, msg)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertIn("[%s]:%d" % (FALLBACK_RELAY, PORT), m.group("relay"))

    def test_smtp_sink_receives_a_message(self):
        if not peer.have_smtp_sink():
            self.skipTest("smtp-sink (package postfix) is not installed")
        sink = peer.SmtpSink(SINK_ADDR, PORT,
                             os.path.join(TMP, "sink-%s"
                                          % uuid.uuid4().hex[:6]))
        sink.start()
        self.addCleanup(sink.stop)
        rcpt = unique("u", "sink.test")
        qid, msg = self.send(rcpt, subject="to a foreign server")
        [dump] = self.got(sink, 1)
        self.assertIn(b"X-Mail-Args: <%s>" % self.sender.encode(), dump)
        self.assertIn(b"X-Rcpt-Args: <%s>" % rcpt.encode(), dump)
        self.assertIn(b"\nSubject: to a foreign server\n", dump)
        self.assertIn(b"\n.one dot\n..two dots\n", dump)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertIn("[%s]:%d" % (SINK_ADDR, PORT), m.group("relay"))


class RelayhostTest(OutboundCase):
    """relayhost = [host]:port with AUTH over STARTTLS; no password in
    plaintext (smtp_sasl_tls_only); transport_maps smtp:[host]:port."""

    RELAY = "127.0.0.51"
    PLAIN = "127.0.0.52"
    BIND = "127.0.0.9"

    @classmethod
    def conf(cls, tern):
        cls.cert, cls.key = peer.make_cert(os.path.join(TMP, "relaycert"),
                                           "relay.test")
        pw = os.path.join(tern.dir, "sasl_passwd")
        with open(pw, "w") as f:
            f.write("[%s]:%d relayuser:s3cret-pw\n" % (cls.RELAY, PORT))
            f.write("[%s]:%d plainuser:plain-pw\n" % (cls.PLAIN, PORT))
        harness.run([tern.sbin("ternmap"), "-c", tern.dir, "hash:" + pw])
        tern.conf_set(relayhost="[%s]:%d" % (cls.RELAY, PORT),
                      smtp_bind_address=cls.BIND,
                      smtp_sasl_auth_enable="yes",
                      smtp_sasl_password_maps="hash:" + pw,
                      transport_maps="inline:{ plain.test=smtp:[%s]:%d }"
                      % (cls.PLAIN, PORT))

    def test_relayhost_with_auth_over_starttls(self):
        p = self.peer(self.RELAY, cert=self.cert, key=self.key,
                      auth=("relayuser", "s3cret-pw"))
        rcpt = unique("u", "far-away.example")
        qid, msg = self.send(rcpt)
        [tx] = self.got(p, 1)
        self.assertIsNotNone(tx.tls)
        self.assertEqual(tx.auth, "relayuser")
        self.assertEqual(tx.client, self.BIND)  # smtp_bind_address
        self.assertEqual(tx.rcpt_addrs, [rcpt])
        self.assertRelayed(tx, msg)
        m = self.wait_log(qid, rcpt, "sent")
        self.assertIn("[%s]:%d" % (self.RELAY, PORT), m.group("relay"))

    def test_no_password_over_plaintext(self):
        p = self.peer(self.PLAIN, auth=("plainuser", "plain-pw"),
                      auth_tls_only=False)
        rcpt = unique("u", "plain.test")
        qid, _ = self.send(rcpt)
        self.tern.wait_for_log(r"%s: to=<%s>.* status=(sent|deferred)"
                               % (qid, re.escape(rcpt)))
        self.assertEqual(p.auth_attempts, [])


class RateTest(OutboundCase):
    """default_destination_rate_delay: one delivery at a time to a
    destination, each starting the delay after the one before."""

    @classmethod
    def conf(cls, tern):
        tern.conf_set(default_destination_rate_delay="1")

    def test_deliveries_to_one_site_are_spaced_by_the_delay(self):
        p = self.peer("127.0.0.57")
        started = time.monotonic()
        qids = [self.send(unique("u", "rate.test"))[0] for _ in range(3)]
        self.got(p, 3)
        elapsed = time.monotonic() - started
        # Starts at 0, 1 and 2 s; without the delay all three take well
        # under a second.
        self.assertGreaterEqual(elapsed, 1.9)
        for qid in qids:
            self.tern.wait_for_log(r"%s: to=<[^>]*@rate\.test>.* "
                                   r"status=sent" % qid)


class BrokenPeerTest(OutboundCase):
    """Peers that hang, lie or break: each a deferral with a reason, the
    message still queued, no crash (the log's sanitizer check)."""

    @classmethod
    def conf(cls, tern):
        tern.conf_set(**SHORT_TIMEOUTS)

    def deferred(self, addr, domain, stage, action):
        p = self.peer(addr)
        p.rule(stage, action)
        if stage == "EHLO":
            p.rule("HELO", action)
        rcpt = unique("u", domain)
        qid, _ = self.send(rcpt)
        m = self.wait_log(qid, rcpt, "deferred")
        self.assertTrue(m.group("dsn").startswith("4."), m.group("dsn"))
        self.assertTrue(m.group("text").strip(), "no reason given")
        self.tern.wait_for_log(r"%s: deferred" % qid)
        self.assertQueued(qid)
        self.assertEqual(p.transactions, [])
        return m.group("text")

    def test_no_greeting(self):
        text = self.deferred("127.0.0.61", "silent.test", "CONNECT",
                             peer.SILENT)
        self.assertRegex(text, r"(?i)tim(ed|e) ?out|greeting")

    def test_garbage_greeting(self):
        self.deferred("127.0.0.62", "garbage.test", "CONNECT", peer.GARBAGE)

    def test_overlong_reply_line(self):
        self.deferred("127.0.0.63", "overlong.test", "MAIL", peer.OVERLONG)

    def test_multiline_reply_that_never_ends(self):
        self.deferred("127.0.0.64", "endless.test", "EHLO", peer.ENDLESS)

    def test_connection_dropped_mid_data(self):
        self.deferred("127.0.0.65", "dropdata.test", "BODY", peer.DROP)

    def test_250_to_data(self):
        self.deferred("127.0.0.66", "data250.test", "DATA",
                      "250 2.0.0 sure, whatever")


class EtrnTest(TernTestCase):
    """Two instances: A (127.0.0.2) relays b.test to B (127.0.0.3, its
    MX), holds the mail while B is down, and sends it when B asks with
    ETRN, long before its own retry."""

    class_instance = False

    def test_held_mail_arrives_after_etrn(self):
        b = self.new_instance(start=False, address="127.0.0.3")
        b.conf_set(virtual_mailbox_domains="b.test")
        user = unique("u", "b.test")
        b.add_user(user, "User-pw-1")

        def conf_a(a):
            a.conf_set(dns_servers=DNS.server, smtp_tcp_port=str(b.smtp_port),
                       relay_domains="b.test", mynetworks="127.0.0.3/32",
                       myhostname="a.test",
                       minimal_backoff_time="1h", maximal_backoff_time="2h",
                       queue_run_delay="1h")
        a = self.new_instance(configure=conf_a, address="127.0.0.2")
        _, msg = make_message("someone@example.org", user, subject="held")
        qid = smtp_send(a.smtp_port, "someone@example.org", [user], msg,
                        host="127.0.0.2")
        a.wait_for_log(log_re(qid, user, "deferred"))
        a.wait_for_log(r"%s: deferred" % qid)
        b.start()
        since = a.log_size()
        with harness.SmtpConn(a.smtp_port, host="127.0.0.2",
                              source="127.0.0.3") as c:
            self.assertEqual(c.cmd("EHLO mx.b.test")[0], 250)
            code, text = c.cmd("ETRN b.test")
            self.assertEqual(code, 250, text)
            c.cmd("QUIT")
        [got] = b.wait_for_maildir(b.virtual_maildir(user), 1, timeout=10)
        with open(got, "rb") as f:
            data = f.read()
        self.assertTrue(data.endswith(msg), data[-300:])
        m = a.wait_for_log(log_re(qid, user, "sent"), since=since)
        self.assertEqual(m.group("relay"),
                         "mx.b.test[127.0.0.3]:%d" % b.smtp_port)
