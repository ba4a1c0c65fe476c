# SPDX-License-Identifier: MIT
"""The queue as a real queue: routing through transport_maps and the
built-in transports, delivery status notifications (RFC 3464) for
failures, delays and successes, lifetimes, double bounces, corrupt files
and flush. Every notice is read back from the sender's mailbox with
python3's email package, as a user's mail client would read it."""

import email
import email.policy
import os
import re
import smtplib
import uuid

import harness
from harness import (TernTestCase, make_message, place_queue_file,
                     queue_file, smtp_send, to_crlf, wait_until)

FAST_RETRY = dict(minimal_backoff_time="1", maximal_backoff_time="2",
                  queue_run_delay="1")


def new_addr(tag):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def send(port, sender, rcpts, msg, rcpt_options=(), mail_options=()):
    """smtplib with DSN parameters; returns the queue ID."""
    with smtplib.SMTP("127.0.0.1", port, timeout=harness.SMTP_TIMEOUT) as s:
        s.ehlo("client.example.org")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, (r, code, text)
        code, text = s.data(to_crlf(msg))
        assert code == 250, (code, text)
        return harness.queue_id_of(text.decode())


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def report_parts(msg):
    """(human text, per-message fields, [per-recipient fields], original
    part) of a multipart/report; fields as dicts of lower-case names."""
    assert msg.get_content_type() == "multipart/report", \
        msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    human, status = parts[0], parts[1]
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() in ("message/delivery-status",
                                         "message/global-delivery-status")
    groups = status.get_payload()
    fields = [{k.lower(): v for k, v in g.items()} for g in groups]
    return (human.get_payload(decode=True).decode(), fields[0], fields[1:],
            parts[2] if len(parts) > 2 else None)


def notices(tern, addr, count, timeout=harness.DELIVERY_TIMEOUT):
    files = tern.wait_for_maildir(tern.virtual_maildir(addr), count,
                                  timeout=timeout)
    out = []
    for p in files:
        with open(p, "rb") as f:
            out.append(parse(f.read()))
    return out


class RoutingTest(TernTestCase):
    """transport_maps and the built-in error, retry and discard
    transports; a transport without a service defers."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(
            transport_maps="inline:{ { gone.test = error:5.1.2 this domain "
                           "is gone }, junk.test=discard:dropped, "
                           "{ later.test = retry:4.4.5 try later }, "
                           "remote.test=nosuch:[127.0.0.1]:9 }",
            relay_domains="gone.test junk.test later.test remote.test",
            **FAST_RETRY)

    def test_error_transport_bounces_with_its_text(self):
        t = self.tern
        sender = new_addr("snd")
        t.add_user(sender, "pw")
        _, msg = make_message(sender, "x@gone.test", subject="to gone")
        qid = send(t.smtp_port, sender, ["x@gone.test"], msg,
                   mail_options=["RET=HDRS", "ENVID=env-" + "42"])
        t.wait_for_log(r"%s: to=<x@gone.test>, relay=none.*dsn=5\.1\.2, "
                       r"status=bounced \(this domain is gone\)" % qid)
        [n] = notices(t, sender, 1)
        self.assertEqual(n["Subject"], "Undelivered Mail Returned to Sender")
        self.assertIn(n["Auto-Submitted"], ("auto-replied",
                                            "auto-generated"))
        human, per_msg, [rcpt], orig = report_parts(n)
        self.assertIn("x@gone.test", human)
        self.assertEqual(per_msg.get("original-envelope-id"), "env-42")
        self.assertIn("reporting-mta", per_msg)
        self.assertIn("arrival-date", per_msg)
        self.assertEqual(rcpt["final-recipient"], "rfc822; x@gone.test")
        self.assertEqual(rcpt["action"], "failed")
        self.assertEqual(rcpt["status"], "5.1.2")
        self.assertIn("this domain is gone", rcpt["diagnostic-code"])
        self.assertIn("last-attempt-date", rcpt)
        # RET=HDRS: the headers only.
        self.assertEqual(orig.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: to gone", orig.get_payload())
        self.assertNotIn("hello", orig.get_payload())
        t.wait_queue_empty(("incoming", "active", "deferred"))

    def test_discard_transport_delivers_nothing(self):
        t = self.tern
        _, msg = make_message("s@example.org", "x@junk.test")
        qid = smtp_send(t.smtp_port, "", ["x@junk.test"], msg)
        t.wait_for_log(r"%s: to=<x@junk.test>, relay=none.*status=sent "
                       r"\(dropped\)" % qid)
        t.wait_for_log(r"%s: removed" % qid)

    def test_retry_transport_defers(self):
        t = self.tern
        _, msg = make_message("s@example.org", "x@later.test")
        qid = smtp_send(t.smtp_port, "", ["x@later.test"], msg)
        t.wait_for_log(r"%s: to=<x@later.test>.*dsn=4\.4\.5, "
                       r"status=deferred \(try later\)" % qid)
        wait_until(lambda: qid in t.queue_files("deferred"),
                   harness.DELIVERY_TIMEOUT, "%s deferred" % qid)

    def test_missing_transport_defers(self):
        t = self.tern
        _, msg = make_message("s@example.org", "x@remote.test")
        qid = smtp_send(t.smtp_port, "", ["x@remote.test"], msg)
        t.wait_for_log(r"%s: to=<x@remote.test>.*status=deferred "
                       r"\(mail transport unavailable" % qid)


class NoticeTest(TernTestCase):
    """Failure and success notices from local delivery, NOTIFY honoured,
    one notice per message, the original returned per RET."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(smtpd_reject_unlisted_recipient="no", **FAST_RETRY)

    def test_unknown_user_bounces_full_message(self):
        t = self.tern
        sender, good = new_addr("snd"), new_addr("good")
        bad1, bad2 = new_addr("nobody"), new_addr("nobody")
        t.add_user(sender, "pw")
        t.add_user(good, "pw")
        _, msg = make_message(sender, good, subject="partly bad")
        qid = send(t.smtp_port, sender, [good, bad1, bad2], msg,
                   rcpt_options=[])
        t.wait_for_maildir(t.virtual_maildir(good), 1)
        [n] = notices(t, sender, 1)
        human, per_msg, rcpts, orig = report_parts(n)
        self.assertEqual(sorted(r["final-recipient"] for r in rcpts),
                         sorted("rfc822; " + a for a in (bad1, bad2)))
        for r in rcpts:
            self.assertEqual(r["action"], "failed")
            self.assertEqual(r["status"], "5.1.1")
            self.assertIn("user unknown", r["diagnostic-code"])
        self.assertNotIn("original-envelope-id", per_msg)
        self.assertEqual(orig.get_content_type(), "message/rfc822")
        inner = orig.get_payload()[0]
        self.assertEqual(inner["Subject"], "partly bad")
        t.wait_for_log(r"%s: removed" % qid)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(good)), 1)

    def test_orcpt_is_original_recipient(self):
        t = self.tern
        sender, bad = new_addr("snd"), new_addr("nobody")
        t.add_user(sender, "pw")
        _, msg = make_message(sender, bad)
        send(t.smtp_port, sender, [bad], msg,
             rcpt_options=["ORCPT=rfc822;orig+2Bbox@example.org"])
        [n] = notices(t, sender, 1)
        _, _, [r], _ = report_parts(n)
        # Decoded from xtext (RFC 3461 6.3).
        self.assertRegex(r["original-recipient"],
                         r"^rfc822; ?orig\+box@example\.org$")

    def test_notify_never_gets_no_notice(self):
        t = self.tern
        sender, bad = new_addr("snd"), new_addr("nobody")
        t.add_user(sender, "pw")
        _, msg = make_message(sender, bad)
        qid = send(t.smtp_port, sender, [bad], msg,
                   rcpt_options=["NOTIFY=NEVER"])
        t.wait_for_log(r"%s: to=<%s>.*status=bounced" % (qid, re.escape(bad)))
        t.wait_for_log(r"%s: removed" % qid)
        self.assertNotRegex(t.log(), r"%s: sender non-delivery" % qid)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(sender)), 0)

    def test_notify_success_gets_delivered_notice(self):
        t = self.tern
        sender, good = new_addr("snd"), new_addr("good")
        t.add_user(sender, "pw")
        t.add_user(good, "pw")
        _, msg = make_message(sender, good, subject="tell me")
        send(t.smtp_port, sender, [good], msg,
             rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        t.wait_for_maildir(t.virtual_maildir(good), 1)
        [n] = notices(t, sender, 1)
        self.assertEqual(n["Subject"], "Successful Mail Delivery Report")
        _, _, [r], orig = report_parts(n)
        self.assertEqual(r["action"], "delivered")
        self.assertTrue(r["status"].startswith("2."), r["status"])
        self.assertEqual(r["final-recipient"], "rfc822; " + good)
        self.assertEqual(orig.get_content_type(), "text/rfc822-headers")

    def test_failed_recipient_of_two_keeps_the_good_delivery(self):
        """A recipient that fails after acceptance is reported and the
        file removed; the other recipient got the message once."""
        t = self.tern
        sender, good, gone = new_addr("snd"), new_addr("good"), \
            new_addr("gone")
        for a in (sender, good, gone):
            t.add_user(a, "pw")
        t.ternuser("del", gone)
        _, msg = make_message(sender, good)
        qid = smtp_send(t.smtp_port, sender, [good, gone], msg)
        t.wait_for_log(r"%s: to=<%s>.*dsn=5\.1\.1, status=bounced"
                       % (qid, re.escape(gone)))
        t.wait_for_log(r"%s: sender non-delivery notification: " % qid)
        t.wait_for_log(r"%s: removed" % qid)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(good)), 1)
        self.assertNotIn(qid, t.queue_files("hold"))


class DoubleBounceTest(TernTestCase):
    """A null-sender message that fails goes to postmaster; a notice that
    cannot be delivered there is dropped, not looped."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(smtpd_reject_unlisted_recipient="no", **FAST_RETRY)

    def test_null_sender_failure_reaches_postmaster(self):
        t = self.tern
        pm = "postmaster@" + harness.VIRTUAL_DOMAIN
        t.add_user(pm, "pw")
        t.conf_set(**{"2bounce_notice_recipient": pm})
        t.reload()
        bad = new_addr("nobody")
        _, msg = make_message("", bad)
        qid = smtp_send(t.smtp_port, "", [bad], msg)
        t.wait_for_log(r"%s: postmaster non-delivery notification: " % qid)
        [n] = notices(t, pm, 1)
        _, _, [r], _ = report_parts(n)
        self.assertEqual(r["final-recipient"], "rfc822; " + bad)

    def test_undeliverable_double_bounce_is_dropped(self):
        t = self.tern
        t.conf_set(**{"2bounce_notice_recipient": new_addr("nopm")})
        t.reload()
        bad = new_addr("nobody")
        _, msg = make_message("", bad)
        qid = smtp_send(t.smtp_port, "", [bad], msg)
        m = t.wait_for_log(r"%s: postmaster non-delivery notification: "
                           r"([0-9A-Z]+)" % qid)
        notice = m.group(1)
        t.wait_for_log(r"%s: undeliverable double bounce discarded" % notice)
        t.wait_for_log(r"%s: removed" % notice)


class LifetimeTest(TernTestCase):
    """delay_warning_time and maximal_queue_lifetime in seconds: one
    "delayed" notice, then a failure notice with 5.4.7, then nothing."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(
            transport_maps="inline:{ { slow.test = retry:4.4.1 host is "
                           "slow } }",
            relay_domains="slow.test", delay_warning_time="2",
            maximal_queue_lifetime="7", **FAST_RETRY)

    def test_warning_then_expiry(self):
        t = self.tern
        sender = new_addr("snd")
        t.add_user(sender, "pw")
        _, msg = make_message(sender, "x@slow.test", subject="slow one")
        qid = send(t.smtp_port, sender, ["x@slow.test"], msg,
                   mail_options=["ENVID=slow1"])
        [warn] = notices(t, sender, 1, timeout=30)
        self.assertEqual(warn["Subject"], "Delayed Mail (still being retried)")
        _, per_msg, [r], orig = report_parts(warn)
        self.assertEqual(r["action"], "delayed")
        self.assertEqual(r["status"], "4.4.1")
        self.assertIn("host is slow", r["diagnostic-code"])
        self.assertIn("will-retry-until", r)
        self.assertEqual(orig.get_content_type(), "text/rfc822-headers")
        t.wait_for_log(r"%s: removed" % qid, timeout=40)
        msgs = notices(t, sender, 2)
        self.assertEqual(len(msgs), 2, "exactly one warning and one bounce")
        fail = [m for m in msgs if m["Subject"].startswith("Undelivered")]
        self.assertEqual(len(fail), 1)
        _, per_msg, [r], _ = report_parts(fail[0])
        self.assertEqual(r["action"], "failed")
        self.assertEqual(r["status"], "5.4.7")
        self.assertIn("host is slow", r["diagnostic-code"])
        self.assertEqual(per_msg["original-envelope-id"], "slow1")


class RetryTest(TernTestCase):
    """A deferred message is delivered once the cause is fixed; tern
    flush makes it due at once, for one domain too."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(minimal_backoff_time="1h", maximal_backoff_time="2h",
                      queue_run_delay="1h")

    def test_fixed_cause_then_flush_delivers(self):
        t = self.tern
        table = os.path.join(t.dir, "transport.pcre")
        rcpt = new_addr("late")
        with open(table, "w") as f:
            f.write("/^%s$/ retry:4.3.2 not yet\n" % re.escape(rcpt))
        t.conf_set(transport_maps="pcre:" + table)
        t.reload()
        t.add_user(rcpt, "pw")
        _, msg = make_message("s@example.org", rcpt)
        qid = smtp_send(t.smtp_port, "s@example.org", [rcpt], msg)
        t.wait_for_log(r"%s: deferred" % qid)
        with open(table, "w") as f:
            f.write("# fixed\n")
        # Another domain's flush leaves it alone (retry an hour away).
        since = t.log_size()
        t.tern("flush", "other.example")
        t.wait_for_log(r"flush other.example: 0 deferred", since=since)
        t.tern("flush", harness.VIRTUAL_DOMAIN)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1)
        t.wait_for_log(r"%s: removed" % qid)


class ClockStepTest(TernTestCase):
    """A retry time further ahead than maximal_backoff_time can only come
    from a clock stepped backwards: such a message is due at once instead
    of waiting for the clock to catch up."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(**FAST_RETRY)

    def test_retry_time_from_before_a_clock_step_is_due(self):
        t = self.tern
        rcpt = new_addr("step")
        t.add_user(rcpt, "pw")
        data = queue_file("s@example.org", [(rcpt, b"R")],
                          b"Subject: step\r\n\r\nbody\r\n")
        qid = place_queue_file(t, "deferred", data)
        later = os.path.getmtime(os.path.join(t.queue_dir, "deferred", qid))
        later += 10 * 86400
        os.utime(os.path.join(t.queue_dir, "deferred", qid), (later, later))
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1)
        t.wait_for_log(r"%s: removed" % qid)


class CheckTest(TernTestCase):
    """tern check refuses backoff times that contradict each other."""

    def test_minimal_backoff_above_maximal_is_refused(self):
        t = self.tern
        t.conf_set(minimal_backoff_time="2h", maximal_backoff_time="1h")
        try:
            r = t.check()
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("minimal_backoff_time", r.stderr)
        finally:
            t.conf_set(minimal_backoff_time="300",
                       maximal_backoff_time="4000")
        self.assertEqual(t.check().returncode, 0)


class CorruptTest(TernTestCase):
    """Files that cannot be messages go to corrupt/, with a log line."""

    def test_truncated_incoming_file(self):
        t = self.tern
        rcpt = new_addr("c")
        data = queue_file("s@example.org", [(rcpt, b"R")],
                          b"Subject: x\r\n\r\nbody\r\n")
        qid = place_queue_file(t, "incoming", data[:-5])
        wait_until(lambda: qid in t.queue_files("corrupt"),
                   harness.DELIVERY_TIMEOUT, "%s in corrupt/" % qid)
        t.wait_for_log(r"%s: corrupt queue file \(no end record\)" % qid)


if __name__ == "__main__":
    import unittest
    unittest.main()
