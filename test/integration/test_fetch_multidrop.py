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
"""

import contextlib
import os
import re
import shutil
import tempfile
import uuid

import harness
from harness import TernTestCase, make_message, run, smtp_send

OFFICE, ISP = "127.0.0.3", "127.0.0.2"
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


def common_port_base():
    """A port base free on both addresses (each MX is asked on one
    port, smtp_tcp_port)."""
    def free():
        base = harness.pick_port_base(OFFICE)
        ports = (base + 25, base + 587, base + 110, base + 143,
                 base + 993, base + 995)
        return base if all(harness.port_free(p, ISP) for p in ports) \
            else None
    return harness.wait_until(free, 10, "a port base free on both")


class SiteTest(TernTestCase):
    """The ISP is the class instance; the office starts down."""

    office = None

    @classmethod
    def setUpClass(cls):
        base = common_port_base()
        cls.instance_options = {"address": ISP, "port_base": base}
        super().setUpClass()
        try:
            cls.office = harness.TernInstance(address=OFFICE, port_base=base)
            cls.office.conf_set(
                virtual_mailbox_domains="office.test",
                myhostname="mx.office.test", dns_servers=DNS.server,
                smtp_tcp_port=str(base + 25), fetch_interval="0",
                fetch_etrn_hosts="mx.isp.test:%d" % (base + 25),
                fetch_etrn_domains="office.test", **OFFLINE)
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        office, cls.office = cls.office, None
        try:
            if office is not None:
                office.close()
        finally:
            super().tearDownClass()

    @classmethod
    def configure(cls, t):
        t.conf_set(myhostname="mx.isp.test", dns_servers=DNS.server,
                   smtp_tcp_port=str(t.smtp_port), mynetworks="127.0.0.1/32",
                   relay_domains="office.test",
                   virtual_mailbox_domains="isp.test", **OFFLINE)
        cls.alice = "alice%s@office.test" % uuid.uuid4().hex[:8]
        t.conf_set(relay_recipient_maps="inline:{ %s=ok }" % cls.alice)

    def setUp(self):
        super().setUp()
        self.instances.append(self.office)

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
        office.start()
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
