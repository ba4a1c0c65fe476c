# SPDX-License-Identifier: MIT
"""The mail store of imapd (lib/mail/mailbox*.c, through the mailbox_tool
helper of the build) and a real Dovecot 2.3 on the same Maildir++ store,
in both directions: folders (mUTF-7 directory names, '.' hierarchy),
subscriptions, UIDs, UIDVALIDITY, flags and keywords that one writes, the
other reads alike, so that an admin can switch between them without
clients downloading again.

Dovecot runs as doveadm with a configuration file of this test (never the
system's service), as the mailbox owner, like tern's session processes.
"""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid

import harness
from harness import TernTestCase

TOOL_TIMEOUT = 60
MESSAGE = (b"From: a@example.org\nTo: b@example.org\nSubject: %d\n\n"
           b"body %d\n")


def tool_path():
    build = os.environ.get("TERN_BUILD_DIR") or os.path.join(
        harness.SRC_DIR, "_build")
    return os.path.join(build, "lib", "mail", "mailbox_tool")


def as_user(pw):
    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def run_as(pw, argv, env=None, input=None, sanitizers=True):
    try:
        res = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT,
                             preexec_fn=as_user(pw), env=env, input=input)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: no exit within %d s"
                             % (" ".join(argv), TOOL_TIMEOUT))
    out = res.stdout.decode("utf-8", "replace")
    err = res.stderr.decode("utf-8", "replace")
    if sanitizers:
        harness.check_sanitizer_output(out + err, " ".join(argv))
    if res.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(argv),
                                                   res.returncode, out, err))
    return out


def clean_flags(words):
    return frozenset(w for w in words if w != "\\Recent")


class Store:
    """One user's Maildir++ store, driven by tern's tool and by doveadm."""

    def __init__(self, tmp, pw):
        self.pw = pw
        self.dir = os.path.join(tmp, "store-%s" % uuid.uuid4().hex[:8])
        self.root = os.path.join(self.dir, "Maildir")
        self.conf, self.env = harness.dovecot_config(self.dir, self.root, pw)
        os.makedirs(self.root)
        os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def doveadm(self, *args, input=None):
        return run_as(self.pw, ["doveadm", "-c", self.conf] + list(args),
                      env=self.env, input=input, sanitizers=False)

    def tern(self, *args, input=None):
        return run_as(self.pw, [tool_path(), self.root] + list(args),
                      input=input)

    # --- what each says

    def dovecot_messages(self, folder):
        """(uidvalidity, {uid: flags})"""
        out = self.doveadm("mailbox", "status", "uidvalidity", folder)
        uidvalidity = int(re.search(r"uidvalidity=(\d+)", out).group(1))
        msgs = {}
        out = self.doveadm("fetch", "uid flags", "mailbox", folder, "ALL")
        for block in out.split("\f"):
            fields = dict(re.findall(r"^(\w+): ?(.*)$", block, re.M))
            if "uid" in fields:
                msgs[int(fields["uid"])] = clean_flags(
                    fields["flags"].split())
        return uidvalidity, msgs

    def tern_messages(self, folder):
        lines = self.tern("show", folder).splitlines()
        uidvalidity = int(lines[0].split()[1])
        msgs = {}
        for line in lines:
            words = line.split()
            if words[0] == "msg":
                msgs[int(words[1])] = clean_flags(words[2:])
        return uidvalidity, msgs

    def dovecot_folders(self, subscribed=False):
        args = ["mailbox", "list"] + (["-s"] if subscribed else [])
        return set(self.doveadm(*args).split("\n")) - {""}

    def tern_folders(self):
        """{name: set of attributes}"""
        folders = {}
        for line in self.tern("list").splitlines():
            words = line.split(" ")
            folders[words[1]] = set(words[2:])
        return folders


class StoreDovecotTest(TernTestCase):

    class_instance = False

    @classmethod
    def setUpClass(cls):
        if shutil.which("doveadm") is None:
            raise harness.unittest.SkipTest("Dovecot (doveadm) is not "
                                            "installed")
        if not os.access(tool_path(), os.X_OK):
            raise harness.unittest.SkipTest(
                "no %s: build it with make -C _build check" % tool_path())
        harness.skip_unless_root("Dovecot refuses root; the test runs it "
                                 "and tern as the mailbox owner")
        harness.ensure_system_users()
        super().setUpClass()
        cls.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-test-"))
        os.chmod(cls.tmp, 0o755)
        cls.pw = pwd.getpwnam("vmail")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("TERN_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def test_tern_reads_what_dovecot_wrote(self):
        s = Store(self.tmp, self.pw)
        s.doveadm("mailbox", "create", "Café.Sub", "Archive.2026", "Sent")
        s.doveadm("mailbox", "subscribe", "Café.Sub", "INBOX", "Sent")
        for i in range(4):
            s.doveadm("save", "-m", "INBOX", input=MESSAGE % (i, i))
        s.doveadm("save", "-m", "Café.Sub", input=MESSAGE % (9, 9))
        s.doveadm("flags", "add", "\\Seen $Forwarded Junk", "mailbox",
                  "INBOX", "uid", "1")
        s.doveadm("flags", "add", "\\Flagged NonJunk", "mailbox", "INBOX",
                  "uid", "2")
        s.doveadm("flags", "add", "\\Answered \\Draft", "mailbox",
                  "Café.Sub", "uid", "1")
        s.doveadm("expunge", "mailbox", "INBOX", "uid", "3")
        for folder in ("INBOX", "Café.Sub"):
            self.assertEqual(s.tern_messages(folder),
                             s.dovecot_messages(folder), folder)
        folders = s.tern_folders()
        for name in s.dovecot_folders():
            self.assertIn(name, folders)
        self.assertNotIn("\\Noselect", folders["Café.Sub"])
        self.assertIn("\\Noselect", folders["Café"])
        subscribed = {n for n, a in folders.items() if "\\Subscribed" in a}
        self.assertEqual(subscribed, s.dovecot_folders(subscribed=True))

        # Back to Dovecot after tern changed things: Dovecot agrees.
        s.tern("store", "INBOX", "2", "\\Seen", "NonJunk", "Later")
        s.tern("expunge", "INBOX", "4")
        uid = int(s.tern("append", "INBOX", "\\Flagged", "Junk",
                         input=MESSAGE % (7, 7)).split()[1])
        self.assertEqual(uid, 5)
        self.assertEqual(s.dovecot_messages("INBOX"),
                         s.tern_messages("INBOX"))
        self.assertEqual(
            s.tern_messages("INBOX")[1],
            {1: {"\\Seen", "$Forwarded", "Junk"},
             2: {"\\Seen", "NonJunk", "Later"},
             5: {"\\Flagged", "Junk"}})

    def test_dovecot_reads_what_tern_wrote(self):
        s = Store(self.tmp, self.pw)
        # The first open makes the special-use folders, subscribed.
        folders = s.tern_folders()
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertIn("\\Subscribed", folders[name])
        s.tern("create", "Résumé.2026")
        s.tern("create", "Tea")
        s.tern("subscribe", "Résumé.2026")
        s.tern("rename", "Tea", "Coffee")
        for i in range(3):
            s.tern("append", "INBOX", *(["\\Seen"] if i == 0 else []),
                   input=MESSAGE % (i, i))
        s.tern("append", "Résumé.2026", "\\Draft", "$Label1",
               input=MESSAGE % (5, 5))
        s.tern("store", "INBOX", "2", "\\Flagged", "NonJunk")
        s.tern("expunge", "INBOX", "3")
        self.assertTrue(os.path.isdir(os.path.join(
            s.root, ".R&AOk-sum&AOk-.2026", "cur")))
        self.assertEqual(s.dovecot_folders(),
                         {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                          "Archive", "Résumé", "Résumé.2026", "Coffee"})
        self.assertEqual(s.dovecot_folders(subscribed=True),
                         {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                          "Archive", "Résumé.2026"})
        for folder in ("INBOX", "Résumé.2026"):
            self.assertEqual(s.dovecot_messages(folder),
                             s.tern_messages(folder), folder)
        self.assertEqual(s.dovecot_messages("INBOX")[1],
                         {1: {"\\Seen"}, 2: {"\\Flagged", "NonJunk"}})
        # Dovecot changes flags and adds mail; tern sees it all.
        s.doveadm("flags", "remove", "\\Flagged", "mailbox", "INBOX",
                  "uid", "2")
        s.doveadm("flags", "add", "$Forwarded", "mailbox", "INBOX",
                  "uid", "1")
        s.doveadm("save", "-m", "INBOX", input=MESSAGE % (8, 8))
        self.assertEqual(s.tern_messages("INBOX"),
                         s.dovecot_messages("INBOX"))
