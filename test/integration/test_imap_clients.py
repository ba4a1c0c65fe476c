# SPDX-License-Identifier: MIT
"""Real IMAP clients and a real Dovecot against a started instance (login
imap on 143 and 993, spawn, imapd): mbsync (isync) synchronising a
1,000-message account both ways with flags, deletions and an upload;
mutt in batch mode reading a folder over IMAPS; a maildir that Dovecot
2.3 wrote served by tern with Dovecot's UIDs, UIDVALIDITY, flags and
keywords, and mail delivered and changed through tern read by Dovecot's
own imap with the same UIDs and flags: an admin can switch servers
either way without clients downloading again.

Dovecot runs from this test's own configuration file as the mailbox
owner (never the system's service)."""

import email
import email.policy
import os
import pwd
import re
import shutil
import subprocess
import time
import unittest
import uuid

import harness
from harness import TernTestCase, ca_bundle, wait_until
from test_imap import (PASSWORD, ImapHelpers, cert_host, crlf, fetch_map,
                       flags_of, ok, uid_of)

TOOL_TIMEOUT = 120
# The account mbsync synchronises.
ACCOUNT_SIZE = 1000
DOVECOT_IMAP = "/usr/lib/dovecot/imap"


def as_owner(st):
    def drop():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(st.st_gid)
            os.setuid(st.st_uid)
    return drop


def run_tool(argv, env=None, input=None, cwd=None, preexec_fn=None,
             timeout=TOOL_TIMEOUT):
    """A foreign client (not sanitized): its output; fails on exit != 0."""
    try:
        res = subprocess.run(argv, capture_output=True, timeout=timeout,
                             env=env, input=input, cwd=cwd,
                             preexec_fn=preexec_fn,
                             stdin=None if input is not None
                             else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s: no exit within %d s: %r %r"
                             % (argv[0], timeout, e.stdout, e.stderr))
    if res.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s"
                             % (" ".join(argv), res.returncode,
                                res.stdout.decode("utf-8", "replace"),
                                res.stderr.decode("utf-8", "replace")))
    return res


def local_messages(maildir):
    """{Subject: flag letters} of a local maildir (mbsync's Near side)."""
    out = {}
    for sub in ("new", "cur"):
        for path in harness.maildir_files(maildir, sub):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(
                    f, policy=email.policy.compat32)
            letters = os.path.basename(path).partition(":2,")[2]
            out[msg["Subject"]] = letters
    return out


class ImapClientsTest(ImapHelpers, TernTestCase):

    instance_options = {"mail_access": True}

    def setUp(self):
        super().setUp()
        t = self.tern
        wait_until(lambda: not harness.port_free(t.imaps_port), 20,
                   "IMAPS listening")

    def owner_of(self, maildir):
        return os.stat(maildir)

    # ----- helpers

    def fill_maildir(self, user, count, subject="m"):
        """count messages written into user's INBOX as delivery writes
        them (tmp/, then a rename into new/, as the mailbox owner), which
        is what 1,000 deliveries would leave, minus their time."""
        self.deliver(user, 1, subject="first")
        maildir = self.tern.virtual_maildir(user)
        st = os.stat(maildir)
        host = "tern-test"
        now = int(time.time())
        for i in range(count):
            name = "%d.M%dP%d.%s" % (now, i, os.getpid(), host)
            tmp = os.path.join(maildir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(b"Return-Path: <%s>\nFrom: <%s>\nTo: <%s>\n"
                        b"Subject: %s %d\nMessage-ID: <%s.%d@example.org>\n"
                        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n"
                        b"message %d\n"
                        % (b"sender@example.org", b"sender@example.org",
                           user.encode(), subject.encode(), i,
                           uuid.uuid4().hex.encode(), i, i))
            if os.geteuid() == 0:
                os.chown(tmp, st.st_uid, st.st_gid)
            os.rename(tmp, os.path.join(maildir, "new", name))
        return maildir

    def imap_messages(self, m, box="INBOX"):
        """{Subject: (uid, flags without \\Recent)} of box over IMAP."""
        ok(m.select(box, readonly=True))
        out = {}
        for item in ok(m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS "
                                      "(SUBJECT)])")):
            if not isinstance(item, tuple):
                continue
            subject = item[1].decode().strip()
            self.assertTrue(subject.startswith("Subject: "), item)
            out[subject[len("Subject: "):]] = (
                uid_of(item[0]), flags_of(item[0] + b")") - {"\\Recent"})
        return out

    # ----- mbsync

    def mbsync_conf(self, user, local):
        t = self.tern
        path = os.path.join(local, "mbsyncrc")
        with open(path, "w") as f:
            f.write('IMAPAccount tern\nHost 127.0.0.1\nPort %d\nUser %s\n'
                    'Pass "%s"\nSSLType IMAPS\nCertificateFile %s\n'
                    'AuthMechs PLAIN\n\n'
                    'IMAPStore far\nAccount tern\n\n'
                    'MaildirStore near\nPath %s/\nInbox %s/INBOX\n'
                    'SubFolders Verbatim\n\n'
                    'Channel all\nFar :far:\nNear :near:\nPatterns *\n'
                    'Create Both\nExpunge Both\nSyncState *\n'
                    % (t.imaps_port, user, PASSWORD, ca_bundle(t),
                       os.path.join(local, "mail"),
                       os.path.join(local, "mail")))
        return path

    def mbsync(self, conf):
        return run_tool(["mbsync", "-c", conf, "-a"],
                        env=harness.foreign_env(HOME=os.path.dirname(conf)))

    def test_mbsync_1000_messages_both_ways(self):
        if shutil.which("mbsync") is None:
            raise unittest.SkipTest("mbsync (isync) is not installed")
        t = self.tern
        user = self.add_user("mbsync")
        self.fill_maildir(user, ACCOUNT_SIZE - 1)
        local = os.path.join(t.tmp, "mbsync-" + uuid.uuid4().hex[:6])
        os.makedirs(os.path.join(local, "mail"))
        conf = self.mbsync_conf(user, local)
        # tern -> local: everything.
        self.mbsync(conf)
        inbox = os.path.join(local, "mail", "INBOX")
        near = local_messages(inbox)
        self.assertEqual(len(near), ACCOUNT_SIZE)
        self.assertEqual(set(near), {"first 0"} |
                         {"m %d" % i for i in range(ACCOUNT_SIZE - 1)})
        for box in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertTrue(os.path.isdir(os.path.join(local, "mail", box,
                                                       "cur")), box)
        m = self.login(user)
        far = self.imap_messages(m)
        self.assertEqual(set(far), set(near))
        uids = {s: u for s, (u, _) in far.items()}

        # Local changes: flags on two messages, one deleted, one new.
        files = {}
        for sub in ("new", "cur"):
            for path in harness.maildir_files(inbox, sub):
                with open(path, "rb") as f:
                    subj = email.message_from_binary_file(
                        f, policy=email.policy.compat32)["Subject"]
                files[subj] = path

        def set_letters(subj, letters):
            path = files[subj]
            base = os.path.basename(path).partition(":2,")[0]
            os.rename(path, os.path.join(inbox, "cur",
                                         base + ":2," + letters))
        set_letters("m 10", "FS")
        set_letters("m 11", "RS")
        os.unlink(files["m 20"])
        new_name = "%d.local1.near" % int(time.time())
        with open(os.path.join(inbox, "new", new_name), "wb") as f:
            f.write(b"From: <%s>\nTo: <%s>\nSubject: written locally\n"
                    b"Message-ID: <local1@example.org>\n\nfrom the laptop\n"
                    % (user.encode(), user.encode()))
        # Far changes at the same time: a flag and an expunge on tern.
        ok(m.select("INBOX"))
        ok(m.uid("STORE", str(uids["m 30"]), "+FLAGS", "(\\Answered)"))
        ok(m.uid("STORE", str(uids["m 40"]), "+FLAGS", "(\\Deleted)"))
        ok(m.expunge())
        ok(m.close())

        self.mbsync(conf)
        far = self.imap_messages(m)
        self.assertEqual(len(far), ACCOUNT_SIZE - 2 + 1)
        self.assertNotIn("m 20", far)
        self.assertNotIn("m 40", far)
        self.assertEqual(far["m 10"][1], {"\\Flagged", "\\Seen"})
        self.assertEqual(far["m 11"][1], {"\\Answered", "\\Seen"})
        self.assertEqual(far["m 12"][1], set())
        self.assertEqual(far["written locally"][0], max(uids.values()) + 1)
        for subj, (uid, _) in far.items():
            if subj != "written locally":
                self.assertEqual(uid, uids[subj], subj)
        ok(m.select("INBOX", readonly=True))
        body = ok(m.uid("FETCH", str(far["written locally"][0]),
                        "(BODY.PEEK[TEXT])"))
        self.assertEqual(body[0][1], b"from the laptop\r\n")
        near = local_messages(inbox)
        self.assertEqual(set(near), set(far))
        self.assertEqual(near["m 30"], "R")
        self.assertEqual(near["m 10"], "FS")
        # A third run: nothing left to do, nothing changes.
        self.mbsync(conf)
        self.assertEqual(self.imap_messages(m), far)
        self.logout(m, user)

    # ----- mutt

    def run_mutt(self, user, keys, read_only=True):
        """mutt on user's INBOX over IMAPS, keys pushed once the folder
        is open (a push from -e runs before, where <limit> has no index
        to work on)."""
        if shutil.which("mutt") is None:
            raise unittest.SkipTest("mutt is not installed")
        t = self.tern
        home = os.path.join(t.tmp, "mutt-" + uuid.uuid4().hex[:6])
        # ~/Mail exists: mutt asks to create it otherwise.
        os.makedirs(os.path.join(home, "Mail"))
        muttrc = os.path.join(home, "muttrc")
        with open(muttrc, "w") as f:
            f.write('set imap_user="%s"\nset imap_pass="%s"\n'
                    'set certificate_file="%s"\nset ssl_verify_host=no\n'
                    'set ssl_force_tls=yes\nset header_cache=""\n'
                    'set message_cachedir=""\nset mail_check_stats=no\n'
                    'set pipe_decode=no\nset wait_key=no\n'
                    'set sort=date\nset delete=yes\nset quit=yes\n'
                    # No "Old" keyword, no moving on after a command.
                    'set mark_old=no\nset resolve=no\n'
                    'set read_only=%s\n'
                    'folder-hook . "push \\"%s\\""\n'
                    % (user, PASSWORD, ca_bundle(t),
                       "yes" if read_only else "no", keys))
        folder = "imaps://%s@127.0.0.1:%d/INBOX" % (user.replace(
            "@", "%40"), t.imaps_port)
        # mutt wants a terminal: script(1) gives it one.
        run_tool(["script", "-qec", "mutt -n -F %s %s-f '%s'"
                  % (muttrc, "-R " if read_only else "", folder),
                  "/dev/null"],
                 env=harness.foreign_env(HOME=home, TERM="vt100"), cwd=home,
                 timeout=60)
        return home

    def test_mutt_reads_a_folder_over_imaps(self):
        user = self.add_user("mutt")
        self.deliver(user, 2, subject="ordinary")
        self.deliver(user, 1, subject="the one for mutt",
                     body=b"read by mutt\n")
        out = os.path.join(self.tern.tmp, "mutt-out-" + uuid.uuid4().hex)
        # Limit to the message, pipe it raw into a file, leave.
        self.run_mutt(user, "<limit>~s mutt<enter>"
                            "<pipe-message>cat > %s<enter><exit>" % out)
        with open(out, "rb") as f:
            got = f.read()
        self.assertIn(b"Subject: the one for mutt 0\n", got)
        self.assertTrue(got.endswith(b"\n\nread by mutt\n"), got[-80:])
        # Read-only: no \Seen was set.
        m = self.login(user)
        msgs = self.imap_messages(m)
        self.assertEqual({s: f for s, (_, f) in msgs.items()},
                         {"ordinary 0": set(), "ordinary 1": set(),
                          "the one for mutt 0": set()})
        self.logout(m, user)

    def test_mutt_flags_and_deletes(self):
        user = self.add_user("mutw")
        self.deliver(user, 4, subject="mutt")
        # Flag the first, read the second, delete the third, sync, quit.
        self.run_mutt(user, "<first-entry><flag-message>"
                            "<next-entry><display-message><exit>"
                            "<next-entry><delete-message>"
                            "<sync-mailbox><quit>", read_only=False)
        m = self.login(user)
        msgs = self.imap_messages(m)
        self.assertEqual({s: f for s, (_, f) in msgs.items()},
                         {"mutt 0": {"\\Flagged"}, "mutt 1": {"\\Seen"},
                          "mutt 3": set()})
        self.assertEqual([u for u, _ in msgs.values()], [1, 2, 4])
        self.logout(m, user)

    # ----- fetchmail

    def test_fetchmail_over_imap_starttls(self):
        if shutil.which("fetchmail") is None:
            raise unittest.SkipTest("fetchmail is not installed")
        t = self.tern
        user = self.add_user("fm")
        self.deliver(user, 30, subject="fetchmail", body=b"x\n.dot\n")
        maildir = t.virtual_maildir(user)
        stored = sorted(harness.read_maildir(maildir))
        work = os.path.join(t.tmp, "fetchmail-" + uuid.uuid4().hex[:6])
        out_dir = os.path.join(work, "out")
        os.makedirs(out_dir)
        mda = os.path.join(work, "mda.sh")
        with open(mda, "w") as f:
            f.write("#!/bin/sh\nf=$(mktemp %s/msg.XXXXXXXX) && "
                    "exec cat >\"$f\"\n" % out_dir)
        os.chmod(mda, 0o755)
        rc = os.path.join(work, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no syslog\nset invisible\n'
                    'poll 127.0.0.1 protocol imap port %d\n'
                    '  user "%s" password "%s"\n'
                    '  sslproto tls1.2+ sslcertck sslcertfile "%s" '
                    'sslcommonname "%s"\n'
                    '  fetchall nokeep no rewrite\n  mda "%s"\n'
                    % (t.imap_port, user, PASSWORD, ca_bundle(t),
                       cert_host(t), mda))
        os.chmod(rc, 0o600)
        res = subprocess.run(
            ["fetchmail", "-f", rc, "--nodetach", "-v", "--timeout", "30"],
            capture_output=True, timeout=TOOL_TIMEOUT,
            env=harness.foreign_env(HOME=work, FETCHMAILHOME=work))
        log = (res.stdout + res.stderr).decode("utf-8", "replace")
        self.assertEqual(res.returncode, 0, log[-3000:])
        self.assertIn("STARTTLS", log)
        got = []
        for name in os.listdir(out_dir):
            with open(os.path.join(out_dir, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(sorted(got), stored)
        # nokeep: \Deleted and expunged on tern.
        m = self.login(user)
        self.assertEqual(ok(m.select("INBOX")), [b"0"])
        self.logout(m, user)

    # ----- Dovecot, both ways

    def dovecot(self, maildir):
        """(conf path, env) for Dovecot on maildir, as its owner."""
        d = os.path.join(self.tern.tmp, "dovecot-" + uuid.uuid4().hex[:6])
        return harness.dovecot_config(
            d, maildir, pwd.getpwuid(os.stat(maildir).st_uid))

    def doveadm(self, maildir, *args, input=None):
        conf, env = self.dovecot(maildir)
        return run_tool(["doveadm", "-c", conf] + list(args), env=env,
                        input=input,
                        preexec_fn=as_owner(os.stat(maildir))
                        ).stdout.decode()

    def dovecot_imap(self, maildir, commands):
        """Dovecot's own imap (PREAUTH) fed commands; its output."""
        conf, env = self.dovecot(maildir)
        script = "".join("x%d %s\r\n" % (i, c)
                         for i, c in enumerate(commands + ["LOGOUT"]))
        res = run_tool([DOVECOT_IMAP, "-c", conf], env=env,
                       input=script.encode(),
                       preexec_fn=as_owner(os.stat(maildir)))
        return res.stdout.decode()

    def need_dovecot(self):
        if shutil.which("doveadm") is None or \
                not os.access(DOVECOT_IMAP, os.X_OK):
            raise unittest.SkipTest("Dovecot (doveadm, imap) is not "
                                    "installed")
        harness.skip_unless_root("Dovecot refuses root: it runs as the "
                                 "mailbox owner")

    def test_tern_serves_what_dovecot_wrote(self):
        self.need_dovecot()
        user = self.add_user("dvw")
        # The maildir delivery makes (and its owner), then Dovecot's.
        self.deliver(user, 1, subject="delivered")
        maildir = self.tern.virtual_maildir(user)
        dv = lambda *a, **k: self.doveadm(maildir, *a, **k)
        dv("mailbox", "create", "Work", "Work.2026")
        for i in range(4):
            dv("save", "-m", "INBOX", input=crlf(
                b"From: a@example.org\nSubject: saved %d\n\nbody %d\n"
                % (i, i)))
        dv("save", "-m", "Work.2026", input=b"Subject: filed\n\nx\n")
        dv("flags", "add", "\\Seen $Forwarded Project", "mailbox",
           "INBOX", "uid", "2")
        dv("flags", "add", "\\Flagged \\Answered", "mailbox", "INBOX",
           "uid", "3")
        dv("flags", "add", "\\Draft Later", "mailbox", "Work.2026",
           "uid", "1")
        dv("expunge", "mailbox", "INBOX", "uid", "4")
        want = {}
        for box in ("INBOX", "Work.2026"):
            out = dv("mailbox", "status", "uidvalidity uidnext", box)
            uidvalidity = int(re.search(r"uidvalidity=(\d+)", out).group(1))
            uidnext = int(re.search(r"uidnext=(\d+)", out).group(1))
            msgs = {}
            for block in dv("fetch", "uid flags", "mailbox", box,
                            "ALL").split("\f"):
                fields = dict(re.findall(r"^(\w+): ?(.*)$", block, re.M))
                if "uid" in fields:
                    msgs[int(fields["uid"])] = set(
                        fields["flags"].split()) - {"\\Recent"}
            want[box] = (uidvalidity, uidnext, msgs)
        self.assertEqual(sorted(want["INBOX"][2]), [1, 2, 3, 5])
        # tern, over IMAP.
        m = self.login(user, "ssl")
        names = set()
        for line in ok(m.list()):
            names.add(re.match(rb'\([^)]*\) "\." "?([^"]*)"?$',
                               line).group(1).decode())
        self.assertTrue({"INBOX", "Work", "Work.2026"} <= names, names)
        for box, (uidvalidity, uidnext, msgs) in want.items():
            ok(m.select(box, readonly=True))
            self.assertEqual(int(m.untagged_responses["UIDVALIDITY"][0]),
                             uidvalidity, box)
            self.assertEqual(int(m.untagged_responses["UIDNEXT"][0]),
                             uidnext, box)
            got = {uid_of(x): flags_of(x) - {"\\Recent"}
                   for x in fetch_map(ok(m.fetch("1:*", "(UID FLAGS)")))
                   .values()}
            self.assertEqual(got, msgs, box)
        ok(m.select("INBOX"))
        data = ok(m.uid("FETCH", "3", "(BODY.PEEK[])"))
        self.assertEqual(data[0][1], crlf(b"From: a@example.org\n"
                                          b"Subject: saved 2\n\nbody 2\n"))
        # A change by tern is Dovecot's too.
        ok(m.uid("STORE", "5", "+FLAGS", "(Project)"))
        self.logout(m, user)
        out = dv("fetch", "flags", "mailbox", "INBOX", "uid", "5")
        self.assertIn("Project", out.split())

    def test_dovecot_serves_what_tern_wrote(self):
        self.need_dovecot()
        user = self.add_user("tdw")
        self.deliver(user, 4, subject="via tern")
        maildir = self.tern.virtual_maildir(user)
        m = self.login(user)
        ok(m.select("INBOX"))
        ok(m.store("1", "+FLAGS", "(\\Seen)"))
        ok(m.store("2", "+FLAGS", "(\\Flagged $Important Later)"))
        ok(m.store("3", "+FLAGS", "(\\Deleted)"))
        ok(m.expunge())
        ok(m.copy("1", "Sent"))
        # A folder in a new parent, then the parent (\Noselect: it exists
        # through its child only) renamed, as clients offer it.
        ok(m.create("Projects.2026"))
        ok(m.rename("Projects", "Work"))
        typ, data = m.append("Sent", "(\\Seen \\Answered)", None,
                             crlf(b"Subject: sent by tern\n\nhi\n"))
        self.assertEqual(typ, "OK", data)
        tern_view = {}
        for box in ("INBOX", "Sent"):
            ok(m.select(box, readonly=True))
            tern_view[box] = (
                int(m.untagged_responses["UIDVALIDITY"][0]),
                {uid_of(x): flags_of(x) - {"\\Recent"}
                 for x in fetch_map(ok(m.fetch("1:*", "(UID FLAGS)")))
                 .values()})
        self.logout(m, user)
        self.assertEqual(sorted(tern_view["INBOX"][1]), [1, 2, 4])
        self.assertEqual(tern_view["INBOX"][1][2],
                         {"\\Flagged", "$Important", "Later"})
        # Dovecot's imap on the same maildir.
        for box, (uidvalidity, msgs) in tern_view.items():
            out = self.dovecot_imap(maildir, ["SELECT %s" % box,
                                              "UID FETCH 1:* (FLAGS)"])
            self.assertIn("* OK [UIDVALIDITY %d]" % uidvalidity, out)
            got = {}
            for mm in re.finditer(r"^\* \d+ FETCH \((.*)\)\r$", out, re.M):
                text = mm.group(1).encode()
                got[uid_of(text)] = flags_of(text) - {"\\Recent"}
            self.assertEqual(got, msgs, "%s:\n%s" % (box, out))
        out = self.dovecot_imap(maildir, ['LIST "" "*"'])
        for box in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive",
                    "Work", "Work.2026"):
            self.assertRegex(out, r'\* LIST \([^)]*\) "\." "?%s"?\r\n'
                             % box)
        self.assertNotIn("Projects", out)
        # And back: tern still agrees after Dovecot's visit (its index
        # files in the maildir are no mail).
        m = self.login(user)
        ok(m.select("INBOX", readonly=True))
        self.assertEqual(int(m.untagged_responses["UIDVALIDITY"][0]),
                         tern_view["INBOX"][0])
        self.assertEqual(ok(m.uid("SEARCH", "ALL")), [b"1 2 4"])
        self.logout(m, user)
