# SPDX-License-Identifier: MIT
"""ETRN (RFC 1985) and ternqueue -f / -s: mail held for a part-time site
(deferred, its retry an hour away) is delivered within seconds of the
site's ETRN, and only that site's mail; the refusals (syntax, order,
restrictions, fast_flush_domains, qmgr down) get the RFC's codes; a
client repeating ETRN does not make qmgr scan the queue in a loop.

Mail waits through transport_maps routing its domain to retry: (qmgr
defers it with the retry time an hour away); the site "comes online" when
the route is removed, and then only a flush brings the mail."""

import os
import re
import smtplib
import uuid

import harness
from harness import (SmtpConn, TernTestCase, make_message, run, smtp_send,
                     wait_until)

HELD = "example.test"           # the part-time site (harness.VIRTUAL_DOMAIN)
SUB = "sub.example.test"        # below it: ETRN @example.test
CONTROL = "control.test"        # another site: must stay deferred
FLOOD = "flood.test"            # a listed site without mail
PROBE = "probe.test"            # always online: makes qmgr route
OFFLINE = dict(minimal_backoff_time="1h", maximal_backoff_time="2h",
               queue_run_delay="1h")
# qmgr's QMGR_FLUSH_INTERVAL_MS, in seconds.
FLUSH_INTERVAL = 5


def new_addr(tag, domain):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], domain)


def ternqueue(tern, *args, check=True):
    return run([tern.sbin("ternqueue"), "-c", tern.dir] + list(args),
               check=check)


def etrn(port, arg, ehlo=True):
    """(code, text) of ETRN arg in a new session (smtplib's docmd)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=harness.SMTP_TIMEOUT) as s:
        if ehlo:
            s.ehlo("site.example.net")
        code, text = s.docmd("ETRN", arg)
        return code, text.decode("utf-8", "replace")


def configure_sites(tern):
    tern.conf_set(
        virtual_mailbox_domains=" ".join([HELD, SUB, CONTROL, PROBE]),
        fast_flush_domains=" ".join([HELD, CONTROL, FLOOD]), **OFFLINE)


class EtrnDeliveryTest(TernTestCase):
    """Held mail arrives after ETRN or ternqueue; other sites' mail stays
    deferred."""

    @classmethod
    def configure(cls, tern):
        configure_sites(tern)
        cls.table = os.path.join(tern.dir, "transport.pcre")
        cls.offline(tern, [HELD, SUB, CONTROL])
        tern.conf_set(transport_maps="pcre:" + cls.table)

    @classmethod
    def offline(cls, tern, domains):
        """Routes domains to retry: (the sites are offline), or none."""
        with open(cls.table + ".new", "w") as f:
            f.write("# sites that are offline\n")
            for d in domains:
                f.write("/@%s$/ retry:4.4.1 site is offline\n"
                        % re.escape(d))
        os.rename(cls.table + ".new", cls.table)

    def setUp(self):
        super().setUp()
        self.route([HELD, SUB, CONTROL])

    def route(self, offline):
        """Makes the offline sites offline, the others online. qmgr looks
        at a changed table at its first lookup a second (MAP_RECHECK_MS)
        after the last one: probe messages make it look until it says it
        reloaded the table."""
        t = self.tern
        since = t.log_size()
        self.offline(t, offline)
        probe = "probe@" + PROBE
        if not os.path.isdir(t.virtual_maildir(probe)):
            t.add_user(probe, "pw")
        _, msg = make_message("sender@example.org", probe, subject="probe")
        reloaded = re.compile(r"qmgr\[\d+\]: pcre:%s: reloaded"
                              % re.escape(self.table))

        def seen():
            smtp_send(t.smtp_port, "sender@example.org", [probe], msg)
            return reloaded.search(t.log()[since:])
        wait_until(seen, 10, "qmgr to reload %s" % self.table,
                   interval=0.3)

    def online(self):
        """Every site is reachable now."""
        self.route([])

    def hold(self, domain, tag="held"):
        """A message for a new user of domain, deferred: (rcpt, qid)."""
        t = self.tern
        rcpt = new_addr(tag, domain)
        t.add_user(rcpt, "pw")
        _, msg = make_message("sender@example.org", rcpt,
                              subject="for %s" % domain)
        qid = smtp_send(t.smtp_port, "sender@example.org", [rcpt], msg)
        t.wait_for_log(r"%s: deferred" % qid)
        return rcpt, qid

    def assertStillDeferred(self, rcpt, qid):
        t = self.tern
        self.assertIn(qid, t.queue_files("deferred"))
        self.assertEqual(harness.maildir_files(t.virtual_maildir(rcpt)), [])

    def test_etrn_delivers_the_site_mail_only(self):
        t = self.tern
        rcpt, qid = self.hold(HELD)
        other, other_qid = self.hold(CONTROL, "control")
        self.online()  # both sites are reachable now
        since = t.log_size()
        code, text = etrn(t.smtp_port, HELD)
        self.assertEqual((code, text), (250, "2.0.0 Queuing started"))
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1, timeout=15)
        t.wait_for_log(r"%s: removed" % qid)
        t.wait_for_log(r"ETRN %s from [^ ]*\[127\.0\.0\.1\]"
                       % re.escape(HELD), since=since)
        t.wait_for_log(r"flush %s: 1 deferred" % re.escape(HELD),
                       since=since)
        # The other site did not ask: its mail waits for its retry time.
        self.assertStillDeferred(other, other_qid)
        # ... until it asks in turn, here through its admin.
        ternqueue(t, "-s", CONTROL)
        t.wait_for_maildir(t.virtual_maildir(other), 1, timeout=15)

    def test_queue_name_form(self):
        """ETRN #name takes the queue name for a domain (Postfix)."""
        t = self.tern
        rcpt, qid = self.hold(CONTROL, "hash")
        self.online()
        self.assertEqual(etrn(t.smtp_port, "#" + CONTROL)[0], 250)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1, timeout=15)

    def test_etrn_at_domain_includes_subdomains(self):
        t = self.tern
        sub, sub_qid = self.hold(SUB, "sub")
        self.online()
        since = t.log_size()
        # ETRN example.test is that domain alone.
        self.assertEqual(etrn(t.smtp_port, HELD)[0], 250)
        t.wait_for_log(r"flush %s: \d+ deferred" % re.escape(HELD),
                       since=since)
        self.assertStillDeferred(sub, sub_qid)
        # ETRN @example.test is the domain and every name below it.
        self.assertEqual(etrn(t.smtp_port, "@" + HELD)[0], 250)
        t.wait_for_log(r"flush @%s: 1 deferred" % re.escape(HELD),
                       since=since)
        t.wait_for_maildir(t.virtual_maildir(sub), 1, timeout=15)

    def test_ternqueue_f_flushes_every_site(self):
        t = self.tern
        a, _ = self.hold(HELD, "all")
        b, _ = self.hold(CONTROL, "all")
        self.online()
        res = ternqueue(t, "-f")
        self.assertEqual(res.returncode, 0)
        self.assertEqual(res.output, "")
        t.wait_for_maildir(t.virtual_maildir(a), 1, timeout=15)
        t.wait_for_maildir(t.virtual_maildir(b), 1, timeout=15)

    def test_ternqueue_s_is_one_site(self):
        t = self.tern
        rcpt, _ = self.hold(HELD, "site")
        other, other_qid = self.hold(SUB, "notsite")
        self.online()
        since = t.log_size()
        ternqueue(t, "-s", HELD)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1, timeout=15)
        t.wait_for_log(r"flush %s: \d+ deferred" % re.escape(HELD),
                       since=since)
        self.assertStillDeferred(other, other_qid)

    def test_a_flood_of_etrn_costs_two_scans(self):
        """Every ETRN is answered, but qmgr scans deferred/ once now and
        once when the interval is over, however many come."""
        t = self.tern
        since = t.log_size()
        with smtplib.SMTP("127.0.0.1", t.smtp_port,
                          timeout=harness.SMTP_TIMEOUT) as s:
            s.ehlo("site.example.net")
            for _ in range(50):
                self.assertEqual(s.docmd("ETRN", FLOOD)[0], 250)
        scan = re.compile(r"flush %s: \d+ deferred" % re.escape(FLOOD))

        def scans():
            return len(scan.findall(t.log()[since:]))
        wait_until(lambda: scans() >= 2, FLUSH_INTERVAL * 3,
                   "the coalesced second scan")
        self.assertEqual(scans(), 2, t.log_tail())
        t.wait_for_log(r"flush %s: the last scan was \d+ ms ago; next one "
                       r"in \d+ ms" % re.escape(FLOOD), since=since)


class EtrnProtocolTest(TernTestCase):
    """What each kind of ETRN is answered."""

    @classmethod
    def configure(cls, tern):
        configure_sites(tern)

    def test_ehlo_advertises_etrn(self):
        with smtplib.SMTP("127.0.0.1", self.tern.smtp_port,
                          timeout=harness.SMTP_TIMEOUT) as s:
            s.ehlo("site.example.net")
            self.assertTrue(s.has_extn("etrn"), s.esmtp_features)

    def test_site_not_in_fast_flush_domains(self):
        self.assertEqual(etrn(self.tern.smtp_port, "elsewhere.example"),
                         (459, "4.7.1 <elsewhere.example>: service "
                               "unavailable"))
        # A subdomain of a listed site is listed, as with relay_domains.
        self.assertEqual(etrn(self.tern.smtp_port, "mx." + FLOOD)[0], 250)

    def test_syntax(self):
        t = self.tern
        for arg in ("", "[192.0.2.1]", "two words", "user@" + HELD,
                    "bad_name.example", "@", "#", "-x.example",
                    "a" * 300 + ".example"):
            code, text = etrn(t.smtp_port, arg)
            self.assertEqual(code, 501, arg)
            self.assertTrue(text.startswith("5.5.4 "), (arg, text))

    def test_before_ehlo(self):
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.cmd("ETRN " + HELD),
                             (503, "5.5.1 Error: send HELO/EHLO first"))

    def test_inside_a_mail_transaction(self):
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.cmd("EHLO site.example.net")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<s@example.org>")[0], 250)
            self.assertEqual(c.cmd("ETRN " + HELD),
                             (503, "5.5.1 Error: MAIL transaction in "
                                   "progress"))
            # The transaction goes on; after RSET ETRN is fine.
            self.assertEqual(c.cmd("RSET")[0], 250)
            self.assertEqual(c.cmd("ETRN " + HELD)[0], 250)

    def test_helo_is_enough(self):
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.cmd("HELO site.example.net")[0], 250)
            self.assertEqual(c.cmd("ETRN " + HELD),
                             (250, "2.0.0 Queuing started"))

    def test_refusals_count_as_errors(self):
        """ETRN errors count toward smtpd_hard_error_limit (20)."""
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.cmd("EHLO site.example.net")[0], 250)
            codes = []
            for _ in range(30):
                code, _ = c.cmd("ETRN elsewhere.example")
                codes.append(code)
                if code == 421:
                    break
            self.assertEqual(codes[-1], 421, codes)
            self.assertTrue(c.closed_by_peer())


class EtrnRestrictionsTest(TernTestCase):
    """smtpd_etrn_restrictions refuse a client with the list's reply."""

    @classmethod
    def configure(cls, tern):
        configure_sites(tern)
        tern.conf_set(smtpd_etrn_restrictions=(
            "permit_sasl_authenticated, check_client_access "
            "inline:{127.0.0.2=OK}, reject"))

    def test_stranger_refused(self):
        t = self.tern
        since = t.log_size()
        self.assertEqual(etrn(t.smtp_port, HELD),
                         (554, "5.7.1 <%s>: Etrn command rejected: Access "
                               "denied" % HELD))
        t.wait_for_log(r"NOQUEUE: reject: ETRN from [^ ]*\[127\.0\.0\.1\]: "
                       r"554 5\.7\.1", since=since)

    def test_listed_client_permitted(self):
        with SmtpConn(self.tern.smtp_port, source="127.0.0.2") as c:
            self.assertEqual(c.cmd("EHLO site.example.net")[0], 250)
            self.assertEqual(c.cmd("ETRN " + HELD),
                             (250, "2.0.0 Queuing started"))

    def test_check_refuses_an_unknown_restriction(self):
        t = self.tern
        old = t.conf_get("smtpd_etrn_restrictions")
        t.conf_set(smtpd_etrn_restrictions="permit_nobody")
        try:
            res = t.check()
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("smtpd_etrn_restrictions", res.output)
        finally:
            t.conf_set(smtpd_etrn_restrictions=old)


class EtrnQmgrDownTest(TernTestCase):
    """Without qmgr the request cannot be delivered: ETRN gets 458, and
    ternqueue says the mail system is down."""

    @classmethod
    def configure(cls, tern):
        configure_sites(tern)
        path = tern.services_path()
        with open(path) as f:
            lines = f.read().split("\n")
        # No qmgr service: private/qmgr does not exist.
        lines = ["#" + ln if ln.split()[:1] == ["qmgr"] else ln
                 for ln in lines]
        with open(path + ".new", "w") as f:
            f.write("\n".join(lines))
        os.rename(path + ".new", path)

    def test_etrn_458(self):
        t = self.tern
        since = t.log_size()
        self.assertEqual(etrn(t.smtp_port, HELD),
                         (458, "4.3.0 Unable to queue messages for node "
                               "<%s>" % HELD))
        t.wait_for_log(r"ETRN %s from .* not queued" % re.escape(HELD),
                       since=since)

    def test_ternqueue_mail_system_down(self):
        for args in (["-f"], ["-s", HELD]):
            res = ternqueue(self.tern, *args, check=False)
            self.assertEqual(res.returncode, 69, res.output)  # EX_UNAVAILABLE
            self.assertIn("ternqueue: fatal: cannot flush the mail queue: "
                          "mail system is down", res.stderr)


class TernqueueUsageTest(TernTestCase):
    """Usage errors exit 64 (EX_USAGE) before anything is sent."""

    start_instance = False

    def test_usage_errors(self):
        t = self.tern
        for args in ([], ["-p", "-j"], ["-i", "ABC"], ["-f", "-s", HELD],
                     ["-f", "extra"], ["-s"], ["-s", "a@b.example"],
                     ["-s", "[192.0.2.1]"], ["-s", "x", "-s", "y"]):
            res = ternqueue(t, *args, check=False)
            self.assertEqual(res.returncode, 64, (args, res.output))
            self.assertIn("ternqueue", res.stderr, args)
