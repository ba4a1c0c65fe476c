# SPDX-License-Identifier: MIT
"""IMAP UIDs and UIDVALIDITY that survive a switch between tern and a real
Dovecot 2.3 on the same maildirs, in both directions: mail that tern
delivered and Dovecot numbered keeps Dovecot's UIDs when tern numbers the
mailbox (lib/mail/maildir_uidlist.c, through the maildir_uidlist_tool
helper of the build, as pop3d calls it), mail that arrives later gets
UIDs that Dovecot then reports alike, and a maildir that tern numbered
first reads in Dovecot with tern's UIDs and UIDVALIDITY. Two copies of one
maildir of awkward names, one numbered by Dovecot and one by tern, get
the same UIDs: tern orders new mail as Dovecot does.

Dovecot runs as doveadm with a configuration file of this test (never the
system's service), as the mailbox owner, like tern's session processes.
"""

import os
import pwd
import re
import shutil
import subprocess
import uuid

import harness
from harness import TernTestCase

SENDER = "sender@client.example.org"
TOOL_TIMEOUT = 60
# Dovecot-style names whose order needs Dovecot's sort: seconds of unequal
# length, microseconds (M9 before M10), names without M, a name without a
# time, names already in cur/ with flags.
AWKWARD_NAMES = (
    ("new", "1700000001.M10P1.host,S=20"),
    ("new", "1700000001.M9P2.host,S=20"),
    ("cur", "1700000001.M9P1.host,S=20:2,S"),
    ("new", "999999999.M5P1.host"),
    ("new", "1700000000.M999999P1.host,S=20,W=21"),
    ("cur", "1700000001.P5.host:2,RS"),
    ("new", "1700000002.M0P1.host"),
    ("new", "abc"),
    ("cur", "1700000001.M9P3.host:2,"),
)


def tool_path():
    build = os.environ.get("TERN_BUILD_DIR") or os.path.join(
        harness.SRC_DIR, "_build")
    return os.path.join(build, "lib", "mail", "maildir_uidlist_tool")


def owner_of(path):
    return pwd.getpwuid(os.stat(path).st_uid)


def as_user(pw):
    """preexec_fn: become pw (when root), as a session process does."""
    def drop():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return drop


def run_as(pw, argv, env=None):
    try:
        res = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT,
                             preexec_fn=as_user(pw), env=env,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: no exit within %d s"
                             % (" ".join(argv), TOOL_TIMEOUT))
    out = res.stdout.decode("utf-8", "replace")
    err = res.stderr.decode("utf-8", "replace")
    harness.check_sanitizer_output(out + err, " ".join(argv))
    if res.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(argv),
                                                   res.returncode, out, err))
    return out


def tern_uids(maildir):
    """(uidvalidity, {base: uid}) as tern assigns them."""
    pw = owner_of(maildir)
    out = run_as(pw, [tool_path(), maildir]).splitlines()
    m = re.fullmatch(r"uidvalidity (\d+)", out[0])
    if not m:
        raise AssertionError("tool output: %r" % out)
    uids = {}
    for line in out[1:]:
        uid, base = line.split(" ", 1)
        uids[base] = int(uid)
    return int(m.group(1)), uids


class Dovecot:
    """doveadm on one maildir, with a configuration of its own."""

    def __init__(self, tmp, maildir):
        self.pw = owner_of(maildir)
        self.dir = os.path.join(tmp, "dovecot-%s" % uuid.uuid4().hex[:8])
        self.conf, self.env = harness.dovecot_config(self.dir, maildir,
                                                     self.pw)

    def doveadm(self, *args):
        argv = ["doveadm", "-c", self.conf] + list(args)
        try:
            res = subprocess.run(argv, capture_output=True,
                                 timeout=TOOL_TIMEOUT, env=self.env,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("doveadm: no exit within %d s"
                                 % TOOL_TIMEOUT)
        out = res.stdout.decode("utf-8", "replace")
        if res.returncode != 0:
            raise AssertionError("%s: exit %d\n%s%s" % (
                " ".join(argv), res.returncode, out,
                res.stderr.decode("utf-8", "replace")))
        return out

    def uids(self):
        """(uidvalidity, {base: uid}) as Dovecot reports them (the GUID of
        a maildir message is its base name)."""
        out = self.doveadm("mailbox", "status", "uidvalidity", "INBOX")
        m = re.search(r"uidvalidity=(\d+)", out)
        if not m:
            raise AssertionError("doveadm mailbox status: %r" % out)
        uids = {}
        for block in self.doveadm("fetch", "uid guid", "ALL").split("\f"):
            fields = dict(re.findall(r"^(\w+): (.*)$", block, re.M))
            if "uid" in fields:
                uids[fields["guid"]] = int(fields["uid"])
        return int(m.group(1)), uids


class UidlistTest(TernTestCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("doveadm") is None:
            raise harness.unittest.SkipTest("Dovecot (doveadm) is not "
                                            "installed")
        if not os.access(tool_path(), os.X_OK):
            raise harness.unittest.SkipTest(
                "no %s: build it with make -C _build" % tool_path())
        harness.skip_unless_root("Dovecot refuses root; the test runs it "
                                 "and tern as the mailbox owner")
        super().setUpClass()

    def deliver(self, addr, count, start=0):
        t = self.tern
        md = t.virtual_maildir(addr)
        for i in range(count):
            _, msg = harness.make_message(SENDER, addr,
                                          "uid test %d" % (start + i))
            harness.smtp_send(t.smtp_port, SENDER, [addr], msg)
        harness.wait_until(
            lambda: harness.maildir_count(md) >= start + count,
            harness.DELIVERY_TIMEOUT, "%d messages in %s" % (start + count,
                                                            md))
        return md

    def new_user(self, tag):
        addr = "%s-%s@%s" % (tag, uuid.uuid4().hex[:8],
                             harness.VIRTUAL_DOMAIN)
        self.tern.add_user(addr, "pw")
        return addr

    def test_tern_keeps_dovecot_uids_and_dovecot_reads_terns(self):
        addr = self.new_user("dc")
        md = self.deliver(addr, 5)
        dc = Dovecot(self.tern.tmp, md)
        dc_validity, dc_uids = dc.uids()
        self.assertEqual(sorted(dc_uids.values()), [1, 2, 3, 4, 5])

        # The user reads one (new/ to cur/ with a flag), deletes one,
        # two more arrive: tern keeps Dovecot's numbers, adds the next.
        names = sorted(os.listdir(os.path.join(md, "new")))
        os.rename(os.path.join(md, "new", names[0]),
                  os.path.join(md, "cur", names[0] + ":2,S"))
        os.unlink(os.path.join(md, "new", names[1]))
        self.deliver(addr, 2, start=4)
        validity, uids = tern_uids(md)
        self.assertEqual(validity, dc_validity)
        for base, uid in dc_uids.items():
            if base != names[1]:
                self.assertEqual(uids[base], uid, base)
        self.assertNotIn(names[1], uids)
        self.assertEqual(sorted(uids.values()), [1, 3, 4, 5, 6, 7])
        # The same again: nothing changes.
        self.assertEqual(tern_uids(md), (validity, uids))
        # Dovecot, with its index of the first five, agrees on all.
        self.assertEqual(dc.uids(), (validity, uids))
        with open(os.path.join(md, "dovecot-uidlist")) as f:
            text = f.read()
        self.assertNotIn(names[1], text)

    def test_dovecot_reads_a_maildir_tern_numbered_first(self):
        addr = self.new_user("tn")
        md = self.deliver(addr, 4)
        validity, uids = tern_uids(md)
        self.assertEqual(sorted(uids.values()), [1, 2, 3, 4])
        dc = Dovecot(self.tern.tmp, md)
        self.assertEqual(dc.uids(), (validity, uids))
        # More mail, numbered by Dovecot this time: tern agrees.
        self.deliver(addr, 2, start=4)
        dc_validity, dc_uids = dc.uids()
        self.assertEqual(dc_validity, validity)
        self.assertEqual(sorted(dc_uids.values()), [1, 2, 3, 4, 5, 6])
        self.assertEqual(tern_uids(md), (dc_validity, dc_uids))

    def test_new_mail_is_numbered_in_dovecots_order(self):
        # One maildir of tern deliveries and awkward names, copied: Dovecot
        # numbers one copy, tern the other.
        addr = self.new_user("ord")
        md = self.deliver(addr, 3)
        pw = owner_of(md)
        for sub, name in AWKWARD_NAMES:
            path = os.path.join(md, sub, name)
            with open(path, "w") as f:
                f.write("Subject: %s\n\nbody\n" % name)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        copy = os.path.join(os.path.dirname(md), "Maildir.copy")
        shutil.copytree(md, copy, symlinks=True)
        for root, dirs, files in os.walk(copy):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        os.chown(copy, pw.pw_uid, pw.pw_gid)
        _, dc_uids = Dovecot(self.tern.tmp, md).uids()
        _, uids = tern_uids(copy)
        self.assertEqual(len(uids), 3 + len(AWKWARD_NAMES))
        self.assertEqual(uids, dc_uids)
