# SPDX-License-Identifier: MIT
"""ternmap as an admin and a user run it, postmap's options: building a
hash: table while another process queries it (no failed lookup), -q
with keys from stdin, -d and -i editing in place (a new file each time,
concurrent edits all landing), -a, case folding and -f, -F (base64 of
files), -N/-n, -r/-w, -u, exit codes, and, run as root, the work done as
the owner of the source. No daemon runs: only a configuration
directory is needed."""

import base64
import os
import subprocess
import threading
import time

import harness
from harness import TernTestCase, run

ENTRIES = 20000
REBUILDS = 4
# The reader must get this many answers while the table is rebuilt, and
# the rebuilds may take at most this long.
MIN_QUERIES = 5
RACE_TIMEOUT = 240


def write(path, text, mode=0o644):
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    os.chmod(path, mode)


class TernmapTest(TernTestCase):
    start_instance = False

    def setUp(self):
        super().setUp()
        self.d = os.path.join(self.tern.tmp, "maps-%s" % self.id().rsplit(
            ".", 1)[-1])
        os.mkdir(self.d)
        os.chmod(self.d, 0o755)

    def ternmap(self, *args, check=True, input=None):
        return run([self.tern.sbin("ternmap"), "-c", self.tern.dir]
                   + list(args), check=check, input=input)

    def table(self, name, text, mode=0o644):
        path = os.path.join(self.d, name)
        write(path, text, mode)
        self.ternmap(path)
        return path

    def test_rebuild_while_another_process_queries(self):
        src = os.path.join(self.d, "big")
        tmp = src + ".new"

        def generate(gen):
            with open(tmp, "w") as f:
                for i in range(ENTRIES):
                    f.write("key%d@example.org gen%d-%d\n" % (i, gen, i))
            os.rename(tmp, src)

        generate(0)
        self.ternmap("hash:" + src)
        stop = threading.Event()
        failures, answers = [], [0]

        def reader():
            i = 0
            while not stop.is_set():
                i = (i * 7919 + 13) % ENTRIES
                r = subprocess.run(
                    [self.tern.sbin("ternmap"), "-c", self.tern.dir, "-q",
                     "KEY%d@example.org" % i, "hash:" + src],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    timeout=harness.COMMAND_TIMEOUT)
                out = r.stdout.decode().strip()
                if r.returncode != 0 or not (
                        out.startswith("gen") and
                        out.endswith("-%d" % i)):
                    failures.append((i, r.returncode, out,
                                     r.stderr.decode()[-300:]))
                answers[0] += 1

        t = threading.Thread(target=reader)
        t.start()
        deadline = time.monotonic() + RACE_TIMEOUT
        try:
            for gen in range(1, REBUILDS + 1):
                generate(gen)
                self.ternmap("hash:" + src)
                self.assertLess(time.monotonic(), deadline)
            during = answers[0]
        finally:
            stop.set()
            t.join(harness.COMMAND_TIMEOUT)
        self.assertFalse(t.is_alive())
        self.assertEqual(failures, [])
        # The reader raced with the rebuilds, it did not idle.
        self.assertGreaterEqual(during, MIN_QUERIES)
        out = self.ternmap("-q", "key5@example.org", src).stdout
        self.assertEqual(out, "gen%d-5\n" % REBUILDS)
        self.assertEqual(sorted(os.listdir(self.d)), ["big", "big.db"])

    def test_query_keys_from_stdin(self):
        a = self.table("a", "alpha@example.org one\nshared from-a\n")
        b = self.table("b", "beta@example.org two\nshared from-b\n")
        r = self.ternmap("-q", "-", a, "hash:" + b,
                         input=b"Alpha@Example.ORG\nnone\nbeta@example.org\n"
                               b"shared\n")
        self.assertEqual(r.stdout, "Alpha@Example.ORG\tone\n"
                                   "beta@example.org\ttwo\n"
                                   "shared\tfrom-a\n")
        r = self.ternmap("-q", "-", a, input=b"none\nother\n", check=False)
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        # Other table types answer -q as the daemons read them.
        self.assertEqual(self.ternmap("-q", "x", "inline:{ X=y }").stdout,
                         "y\n")

    def test_delete_in_place(self):
        path = self.table("access", "a@x OK\nb@x REJECT\nc@x OK\nd@x OK\n",
                          mode=0o640)
        db = path + ".db"
        before = os.stat(db)
        self.assertEqual(self.ternmap("-d", "A@X", path).returncode, 0)
        after = os.stat(db)
        # A new file renamed in place, with the old one's mode.
        self.assertNotEqual(before.st_ino, after.st_ino)
        self.assertEqual(after.st_mode & 0o7777, 0o640)
        self.assertEqual(self.ternmap("-q", "a@x", path,
                                      check=False).returncode, 1)
        self.assertEqual(self.ternmap("-q", "b@x", path).stdout, "REJECT\n")
        r = self.ternmap("-d", "-", path, input=b"b@x\nnone@x\n")
        self.assertEqual(r.returncode, 0)
        r = self.ternmap("-d", "none@x", path, check=False)
        self.assertEqual(r.returncode, 1)
        r = self.ternmap("-d", "-", path, input=b"none@x\n", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(self.ternmap("-s", path).stdout.splitlines()),
                         ["c@x\tOK", "d@x\tOK"])
        r = self.ternmap("-d", "x", os.path.join(self.d, "missing"),
                         check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.db", r.stderr)
        r = self.ternmap("-d", "x", "cidr:" + path, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(sorted(os.listdir(self.d)), ["access", "access.db"])

    def test_incremental_adds_and_keeps_like_postmap(self):
        path = self.table("t", "keep old\n")
        r = self.ternmap("-i", path, input=b"New@Example.org v1\n"
                                           b"keep changed\n")
        self.assertRegex(r.stderr, r'warning: stdin, line 2: duplicate key '
                                   r'"keep": keeping the first one')
        self.assertEqual(self.ternmap("-q", "keep", path).stdout, "old\n")
        self.assertEqual(self.ternmap("-q", "new@example.org", path).stdout,
                         "v1\n")
        r = self.ternmap("-r", "-i", path, input=b"keep changed\n")
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.ternmap("-q", "keep", path).stdout,
                         "changed\n")
        r = self.ternmap("-w", "-i", path, input=b"keep again\n")
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.ternmap("-q", "keep", path).stdout,
                         "changed\n")
        # A bad line: nothing changes, the error names stdin and the line.
        r = self.ternmap("-i", path, input=b"fine value\nbroken\n",
                         check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("stdin, line 2:", r.stderr)
        self.assertEqual(self.ternmap("-q", "fine", path,
                                      check=False).returncode, 1)
        # -i creates a missing table.
        new = os.path.join(self.d, "fresh")
        self.ternmap("-i", new, input=b"k v\n")
        self.assertEqual(self.ternmap("-q", "k", new).stdout, "v\n")

    def test_concurrent_edits_all_land(self):
        path = self.table("shared", "seed value\n")
        procs = [subprocess.Popen(
            [self.tern.sbin("ternmap"), "-c", self.tern.dir, "-i", path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE) for _ in range(10)]
        for n, p in enumerate(procs):
            p.stdin.write(b"key%d value%d\n" % (n, n))
            p.stdin.close()
        for p in procs:
            self.assertEqual(p.wait(harness.COMMAND_TIMEOUT), 0,
                             p.stderr.read())
            p.stdout.close()
            p.stderr.close()
        lines = sorted(self.ternmap("-s", path).stdout.splitlines())
        self.assertEqual(lines, sorted(["seed\tvalue"] + [
            "key%d\tvalue%d" % (n, n) for n in range(10)]))

    def test_aliases_format_for_every_mode(self):
        path = os.path.join(self.d, "aliases")
        write(path, "Postmaster: root\n\"odd name\": a, b\n")
        self.ternmap("-a", path)
        self.assertEqual(self.ternmap("-a", "-q", "POSTMASTER", path).stdout,
                         "root\n")
        self.ternmap("-a", "-i", path, input=b"staff: x, y\n")
        self.assertEqual(self.ternmap("-q", "staff", path).stdout, "x, y\n")
        self.ternmap("-a", "-d", "odd name", path)
        self.assertEqual(sorted(self.ternmap("-a", "-s", path)
                                .stdout.splitlines()),
                         ["postmaster\troot", "staff\tx, y"])

    def test_case_folding_as_postfix(self):
        path = self.table("fold", "MiXed@Example.ORG ok\n")
        self.assertEqual(self.ternmap("-q", "mixed@EXAMPLE.org", path).stdout,
                         "ok\n")
        write(path, "MiXed@Example.ORG ok\n")
        self.ternmap("-f", path)
        self.assertEqual(self.ternmap("-f", "-q", "MiXed@Example.ORG",
                                      path).stdout, "ok\n")
        self.assertEqual(self.ternmap("-q", "MiXed@Example.ORG", path,
                                      check=False).returncode, 1)
        self.assertEqual(self.ternmap("-f", "-q", "mixed@example.org", path,
                                      check=False).returncode, 1)
        # Pattern tables get the key as given, never folded.
        pcre = os.path.join(self.d, "p.pcre")
        write(pcre, "/^(.*)$/ got $1\n")
        self.assertEqual(self.ternmap("-q", "AbC", "pcre:" + pcre).stdout,
                         "got AbC\n")

    def test_values_from_files_base64(self):
        cert = os.path.join(self.d, "cert.pem")
        key = os.path.join(self.d, "key.pem")
        write(cert, "CERT\n")
        write(key, "KEY\n")
        path = os.path.join(self.d, "sni")
        write(path, "mail.example.org %s, %s\nbad %s/none\n"
              % (key, cert, self.d))
        r = self.ternmap("-F", path)
        self.assertIn("skipping this entry", r.stderr)
        raw = self.ternmap("-q", "mail.example.org", path).stdout.strip()
        self.assertEqual(base64.b64decode(raw), b"KEY\n\nCERT\n")
        self.assertEqual(self.ternmap("-F", "-q", "mail.example.org",
                                      path).stdout, "KEY\n\nCERT\n\n")
        self.assertEqual(self.ternmap("-F", "-s", path).stdout,
                         "mail.example.org\tKEY\n\nCERT\n\n")
        self.assertEqual(self.ternmap("-q", "bad", path,
                                      check=False).returncode, 1)

    def test_nul_duplicates_and_utf8(self):
        path = os.path.join(self.d, "opts")
        write(path, "k v\n")
        self.ternmap("-n", path)
        self.assertEqual(self.ternmap("-n", "-q", "k", path).stdout, "v\n")
        self.assertEqual(self.ternmap("-N", "-q", "k", path,
                                      check=False).returncode, 1)
        self.assertEqual(self.ternmap("-q", "k", path).stdout, "v\n")

        write(path, "dup first\ndup second\n")
        r = self.ternmap(path)
        self.assertIn('line 2: duplicate key "dup"', r.stderr)
        self.assertEqual(self.ternmap("-q", "dup", path).stdout, "first\n")
        r = self.ternmap("-r", path)
        self.assertEqual((r.stderr, self.ternmap("-q", "dup", path).stdout),
                         ("", "second\n"))
        r = self.ternmap("-w", path)
        self.assertEqual((r.stderr, self.ternmap("-q", "dup", path).stdout),
                         ("", "first\n"))

        write(path, b"ok caf\xc3\xa9\nlatin caf\xe9\n")
        r = self.ternmap(path)
        self.assertIn("line 2: not UTF-8", r.stderr)
        self.assertEqual(self.ternmap("-q", "latin", path,
                                      check=False).returncode, 1)
        self.ternmap("-u", path)
        r = run([self.tern.sbin("ternmap"), "-c", self.tern.dir, "-q",
                 "latin", path])
        self.assertEqual(r.returncode, 0)

    def test_permissions_and_exit_codes(self):
        path = os.path.join(self.d, "secret")
        write(path, "k v\n", mode=0o600)
        self.ternmap(path)
        self.assertEqual(os.stat(path + ".db").st_mode & 0o7777, 0o600)
        self.ternmap("-p", path)
        self.assertEqual(os.stat(path + ".db").st_mode & 0o7777, 0o644)
        r = self.ternmap("-q", "k", os.path.join(self.d, "nothere"),
                         check=False)
        self.assertEqual(r.returncode, 2)
        for args in (["-q", "k", "-s", path], ["-i", path, path], ["-q"],
                     ["-d", "k", "-i", path], ["-Z", path]):
            r = self.ternmap(*args, check=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage", r.stderr)

    def test_root_works_as_the_source_owner(self):
        harness.skip_unless_root("switching to the owner of a table")
        pw = self.tern.create_system_user()
        d = os.path.join(pw.pw_dir, "maps")
        os.mkdir(d, 0o755)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        secret = os.path.join(self.d, "root-only")
        write(secret, "SECRET\n", mode=0o600)
        src = os.path.join(d, "sni")
        write(src, "host %s\n" % secret, mode=0o640)
        os.chown(src, pw.pw_uid, pw.pw_gid)
        # As the owner, the root-only file cannot be read into the table.
        r = self.ternmap("-F", src)
        self.assertIn("skipping this entry", r.stderr)
        st = os.stat(src + ".db")
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                         (pw.pw_uid, pw.pw_gid, 0o640))
        self.assertEqual(self.ternmap("-q", "host", src,
                                      check=False).returncode, 1)
        # -o: root stays root (and still gives the table the owner).
        self.ternmap("-o", "-F", src)
        st = os.stat(src + ".db")
        self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid))
        self.assertEqual(self.ternmap("-F", "-q", "host", src).stdout,
                         "SECRET\n\n")
        # Edits of the user's table run as the user and keep its owner.
        self.ternmap("-i", src, input=b"other value\n")
        st = os.stat(src + ".db")
        self.assertEqual((st.st_uid, st.st_mode & 0o7777),
                         (pw.pw_uid, 0o640))

    def test_ordinary_user_builds_and_edits_own_table(self):
        harness.skip_unless_root("creating an ordinary user to run as")
        pw = self.tern.create_system_user()
        ternmap = self.tern.sbin("ternmap")
        if as_user(pw, "test", "-x", ternmap, check=False).returncode:
            self.skipTest("%s is not reachable by an ordinary user"
                          % ternmap)
        d = os.path.join(pw.pw_dir, "tables")
        as_user(pw, "mkdir", d)
        src = os.path.join(d, "virtual")
        as_user(pw, "sh", "-c", "printf 'a@example.test x\\n' > %s" % src)
        # Config from the compiled-in default may not exist: an empty one.
        conf = os.path.join(pw.pw_dir, "conf")
        as_user(pw, "mkdir", conf)
        as_user(pw, ternmap, "-c", conf, src)
        as_user(pw, ternmap, "-c", conf, "-i", src, input=b"b@example.test y\n")
        as_user(pw, ternmap, "-c", conf, "-d", "a@example.test", src)
        r = as_user(pw, ternmap, "-c", conf, "-q", "-", src,
                    input=b"a@example.test\nb@example.test\n")
        self.assertEqual(r.stdout, "b@example.test\ty\n")
        self.assertEqual(os.stat(src + ".db").st_uid, pw.pw_uid)


def as_user(pw, *argv, check=True, input=None):
    cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
           "--init-groups", "--reset-env"]
    env = {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}
    env.update(HOME=pw.pw_dir, USER=pw.pw_name, PATH="/usr/bin:/bin")
    return run(cmd + list(argv), check=check, input=input, env=env)
