#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The mail and the client of bench/imap-bench.sh (see bench/README.md).

    imap_client.py generate DIR MESSAGES SMALL
        DIR/big and DIR/small: maildirs of MESSAGES and SMALL messages,
        deterministic, as a delivery agent writes them; DIR/expected.json.
    imap_client.py run NAME PORT MASTER_PID EXPECTED_JSON OUT_JSON \\
            PASSWORD DOMAIN USERS FETCH_N SECONDS SESSIONS,... IDLE BIG_MAILDIR
        Every measurement against one server; the figures to OUT_JSON.
    imap_client.py report OUT_JSON...
        The table: each figure for each server and the ratio.

One program for both servers: raw sockets, every read bounded (a
timeout on each socket, a cap on each line), the same commands.
"""
import asyncio
import base64
import json
import os
import random
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import cpu_seconds, pss_kb, settled  # noqa: E402

TIMEOUT = 120
MAX_LINE = 1 << 20

# --- the mail -----------------------------------------------------------------

# Searched for: each in some subjects (SUBJECT_WORD) or some text bodies
# (BODY_WORD) only, and no other word contains either.
SUBJECT_WORD = "quokka"
BODY_WORD = "zephyr"

WORDS = """the of and to in is that for it as was with be by on not he this are
or his from at which but have an they you were her she there been one all
we their has would when if so no will more can who out about up them some
could what into only its time than other then two these may first any new
like our over such after also most made many before must through back
years where much your way well down should because each just those people
how too little state good very make world still own see men work long get
here between both life being under never day same another know while last
might great old year off come since against go came right used take three
meeting report budget quarter invoice project review draft schedule team
update release server backup network office holiday travel contract order
shipment delivery account payment reminder agenda minutes notes proposal
design plan launch customer support ticket issue feature change request
""".split()
FIRST = """Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj
Olivia Peggy Rupert Sybil Trent Victor Walter Yolanda Zoe Amir Bea Chen
Dmitri Elena Farid Greta Hiro Ines Jonas Kemal Lena Mateo Nadia Oskar
Priya Quentin Rosa Sven Tomas Ursula Vera Wen Ximena Yusuf""".split()
LAST = """Smith Jones Brown Garcia Miller Davis Martin Bernard Dubois Moreau
Muller Schmidt Schneider Rossi Russo Ferrari Silva Santos Novak Horvat
Kowalski Nowak Jensen Hansen Larsen Virtanen Tanaka Suzuki Kim Lee
Nguyen Singh Patel Cohen Levi Okafor Mensah Haddad Karimi Petrov""".split()
DOMAINS = """example.org example.net mail.example.com lists.example.org
corp.example partner.example university.example shop.example""".split()
# Non-ASCII subjects, sent as RFC 2047 encoded words.
UNICODE = ["Réunion de l'équipe", "Grüße aus München", "Año nuevo, vida nueva",
           "Čeština a slovenčina", "Καλημέρα", "会議の議事録", "Ημερήσια διάταξη",
           "Smörgåsbord på fredag"]

for _w in WORDS + FIRST + LAST + UNICODE:
    assert SUBJECT_WORD not in _w.lower() and BODY_WORD not in _w.lower()


def address(rng, people):
    first, last, dom = people[rng.randrange(len(people))]
    return "%s %s <%s.%s@%s>" % (first, last, first.lower(), last.lower(), dom)


def phrase(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def paragraphs(rng, lines, word=None):
    """Text of about LINES lines under 72 characters (no soft line breaks
    in quoted-printable), WORD somewhere in it."""
    out = []
    for _ in range(lines):
        out.append((phrase(rng, 4, 11).capitalize() + ".")[:64])
    if word:
        i = rng.randrange(len(out))
        out[i] = "%s, %s" % (word.capitalize(), out[i])
    return "\n".join(out) + "\n"


def attachment(rng, size):
    """Random bytes as base64 lines, without either search word in any
    case (a server might search an undecoded part)."""
    while True:
        raw = rng.randbytes(size)
        b64 = base64.encodebytes(raw).decode()
        low = b64.lower()
        if SUBJECT_WORD not in low and BODY_WORD not in low:
            return b64


def make_message(rng, i, when, people, msgids, rcpt):
    """One message (LF line ends) and whether it has the subject word and
    the body word."""
    subj_hit = rng.random() < 0.01
    body_hit = rng.random() < 0.02
    sender = address(rng, people)
    if not subj_hit and rng.random() < 0.05:
        text = rng.choice(UNICODE)
        subject = "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()
    else:
        subject = phrase(rng, 2, 8).capitalize()
        if subj_hit:
            words = subject.split(" ")
            words.insert(rng.randrange(len(words) + 1), SUBJECT_WORD.capitalize())
            subject = " ".join(words)
    head = []
    head.append("Return-Path: <%s>" % sender.split("<")[1][:-1])
    head.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.example.test"
                " (tern) with ESMTPS id %08X\n\tfor <%s>; %s"
                % (i % 7, DOMAINS[i % len(DOMAINS)], i % 7, DOMAINS[i % len(DOMAINS)],
                   i % 250 + 1, rng.getrandbits(32), rcpt, date_header(when)))
    head.append("From: %s" % sender)
    tos = [rcpt] + [address(rng, people) for _ in range(rng.choice((0, 0, 0, 1, 3)))]
    head.append("To: %s" % ",\n ".join(tos))
    if rng.random() < 0.2:
        head.append("Cc: %s" % address(rng, people))
    reply = bool(msgids) and rng.random() < 0.25
    if reply:
        parent = msgids[rng.randrange(max(0, len(msgids) - 50), len(msgids))]
        subject = "Re: " + subject
    head.append("Subject: %s" % subject)
    head.append("Date: %s" % date_header(when))
    msgid = "<%d.%08x@%s>" % (i, rng.getrandbits(32), sender.split("@")[1][:-1])
    msgids.append(msgid)
    head.append("Message-ID: %s" % msgid)
    if reply:
        head.append("In-Reply-To: %s" % parent)
        head.append("References: %s" % parent)
    head.append("MIME-Version: 1.0")
    word = BODY_WORD if body_hit else None
    kind = rng.random()
    if kind < 0.55:
        if rng.random() < 0.3:
            head.append("Content-Type: text/plain; charset=utf-8")
            head.append("Content-Transfer-Encoding: quoted-printable")
            body = paragraphs(rng, rng.randint(3, 40), word) + "Caf=C3=A9 =E2=82=AC 10\n"
        else:
            head.append("Content-Type: text/plain; charset=us-ascii; format=flowed")
            head.append("Content-Transfer-Encoding: 7bit")
            body = paragraphs(rng, rng.randint(3, 60), word)
    else:
        bnd = "=_bench_%d_%08x" % (i, rng.getrandbits(32))
        text = paragraphs(rng, rng.randint(3, 30), word)
        alt = ("Content-Type: text/plain; charset=us-ascii\n\n%s\n"
               "--%sa\nContent-Type: text/html; charset=us-ascii\n\n"
               "<html><body><p>%s</p></body></html>\n\n--%sa--\n"
               % (text, bnd, text.replace("\n", "<br>\n"), bnd))
        if kind < 0.75:
            head.append('Content-Type: multipart/alternative; boundary="%sa"' % bnd)
            body = "This is a multi-part message in MIME format.\n\n--%sa\n%s" % (bnd, alt)
        else:
            ext, ctype = rng.choice((("pdf", "application/pdf"), ("png", "image/png"),
                                     ("zip", "application/zip")))
            name = "%s-%d.%s" % (rng.choice(WORDS), i, ext)
            if rng.random() < 0.2:
                disp = "attachment; filename*=utf-8''r%%C3%%A9sum%%C3%%A9-%d.%s" % (i, ext)
            else:
                disp = 'attachment; filename="%s"' % name
            size = rng.choice((2000, 5000, 10000, 25000, 60000))
            head.append('Content-Type: multipart/mixed; boundary="%sm"' % bnd)
            if kind < 0.9:
                first = "Content-Type: text/plain; charset=us-ascii\n\n%s" % text
            else:
                first = ('Content-Type: multipart/alternative; boundary="%sa"\n\n--%sa\n%s'
                         % (bnd, bnd, alt))
            body = ("This is a multi-part message in MIME format.\n\n--%sm\n%s\n"
                    "--%sm\nContent-Type: %s; name=\"%s\"\n"
                    "Content-Disposition: %s\nContent-Transfer-Encoding: base64\n\n%s\n"
                    "--%sm--\n" % (bnd, first, bnd, ctype, name, disp,
                                   attachment(rng, size), bnd))
    data = ("\n".join(head) + "\n\n" + body).encode()
    return data, subj_hit, body_hit


def date_header(t):
    tz = (0, 60, 120, -300, -420, 330, 540)[int(t) % 7]
    lt = time.gmtime(t + tz * 60)
    return "%s %s%02d%02d" % (time.strftime("%a, %d %b %Y %H:%M:%S", lt),
                              "+" if tz >= 0 else "-", abs(tz) // 60, abs(tz) % 60)


def fill(maildir, count, seed, rcpt):
    rng = random.Random(seed)
    people = [(rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)) for _ in range(300)]
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    msgids = []
    start = 1704067200  # 2024-01-01: two years of mail, oldest first
    step = 2 * 365 * 86400 // max(count, 1)
    subj = body = total = 0
    for i in range(count):
        when = start + i * step + rng.randrange(max(step, 1))
        data, s, b = make_message(rng, i, when, people, msgids, rcpt)
        subj += s
        body += b
        # As a delivery agent names it: time, unique part, host, Dovecot's
        # S= (size) and W= (size with CRLF line ends, RFC822.SIZE).
        wsize = len(data) + data.count(b"\n")
        total += wsize
        name = "%d.M%06dP%d.bench.example.test,S=%d,W=%d" % (when, i % 1000000, 4242,
                                                              len(data), wsize)
        path = os.path.join(maildir, "new", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (when, when))
    return {"messages": count, "subject_hits": subj, "body_hits": body,
            "bytes": total}


def generate(out, n, small):
    exp = {"subject_word": SUBJECT_WORD, "body_word": BODY_WORD,
           "big": fill(os.path.join(out, "big"), n, 11, "big@example.test"),
           "small": fill(os.path.join(out, "small"), small, 12, "user@example.test")}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(exp, f)

# --- the server's processes -------------------------------------------------------


# --- one session, blocking ----------------------------------------------------------


LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = bytearray()
        self.pos = 0
        self.tags = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise ValueError("greeting %r" % greeting[:100])

    def fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed (pending %r)"
                                  % bytes(self.buf[self.pos:self.pos + 100]))
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            if len(self.buf) - self.pos > MAX_LINE:
                raise ValueError("line longer than %d" % MAX_LINE)
            self.fill()

    def literal(self, n):
        while len(self.buf) - self.pos < n:
            self.fill()
        self.pos += n

    def response(self):
        """One response: its lines (the text between its literals) and the
        sizes of its literals (skipped)."""
        parts, lits = [], []
        while True:
            l = self.line()
            parts.append(l)
            m = LITERAL.search(l) if l.endswith(b"}") else None
            if not m:
                return parts, lits
            n = int(m.group(1))
            lits.append(n)
            self.literal(n)

    def command(self, text, untagged=None):
        self.tags += 1
        tag = b"b%d" % self.tags
        self.s.sendall(tag + b" " + text + b"\r\n")
        while True:
            parts, lits = self.response()
            if parts[0].startswith(tag + b" "):
                if not parts[0].startswith(tag + b" OK"):
                    raise ValueError("%s: %r" % (text[:40], parts[0][:200]))
                return
            if untagged:
                untagged(parts, lits)

    def login(self, user, pw):
        self.command(b'LOGIN "%s" "%s"' % (user.encode(), pw.encode()))

    def logout(self):
        self.command(b"LOGOUT")
        self.s.close()


def timed(master, f):
    c0 = cpu_seconds(master)
    t0 = time.monotonic()
    f()
    secs = time.monotonic() - t0
    return secs, cpu_seconds(master) - c0


FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def select(c, res, key, master, expect):
    exists = []

    def untagged(parts, lits):
        m = re.match(rb"\* (\d+) EXISTS", parts[0])
        if m:
            exists.append(int(m.group(1)))
    res[key] = timed(master, lambda: c.command(b"SELECT INBOX", untagged))
    if not exists or exists[-1] != expect:
        raise ValueError("SELECT: EXISTS %r, not %d" % (exists[-1:], expect))


def fetch_meta(c, res, key, master, expect):
    sizes = {}

    def untagged(parts, lits):
        m = re.match(rb"\* (\d+) FETCH ", parts[0])
        if not m:
            return
        for p in parts:
            s = FETCH_SIZE.search(p)
            if s:
                sizes[int(m.group(1))] = int(s.group(1))
                break
    res[key] = timed(master, lambda: c.command(
        b"UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)", untagged))
    if len(sizes) != expect["messages"] or sum(sizes.values()) != expect["bytes"]:
        raise ValueError("UID FETCH: %d messages of %d bytes, not %d of %d"
                         % (len(sizes), sum(sizes.values()), expect["messages"],
                            expect["bytes"]))
    return sizes


def search(c, res, key, master, what, expect):
    hits = []

    def untagged(parts, lits):
        if parts[0].startswith(b"* SEARCH"):
            hits.extend(parts[0].split()[2:])
    res[key] = timed(master, lambda: c.command(what, untagged))
    if len(hits) != expect:
        raise ValueError("%s: %d hits, not %d" % (what.decode(), len(hits), expect))


def fetch_bodies(c, res, master, n, sizes):
    got = {}

    def untagged(parts, lits):
        m = re.match(rb"\* (\d+) FETCH ", parts[0])
        if m and lits:
            got[int(m.group(1))] = lits[-1]
    res["fetch_body"] = timed(master, lambda: c.command(
        b"FETCH 1:%d BODY.PEEK[]" % n, untagged))
    want = {i: sizes[i] for i in range(1, n + 1)}
    if got != want:
        bad = [i for i in want if got.get(i) != want[i]][:3]
        raise ValueError("FETCH BODY.PEEK[]: sizes differ from RFC822.SIZE at %r" % bad)
    res["fetch_body_bytes"] = sum(got.values())

# --- many sessions, asyncio ------------------------------------------------------------


class AImap:
    async def open(self, port):
        self.r, self.w = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, limit=MAX_LINE), TIMEOUT)
        self.tags = 0
        greeting = await self.line()
        if not greeting.startswith(b"* OK"):
            raise ValueError("greeting %r" % greeting[:100])

    async def line(self):
        l = await asyncio.wait_for(self.r.readuntil(b"\r\n"), TIMEOUT)
        return l[:-2]

    async def command(self, text):
        """Sends TEXT; returns the number of untagged FETCH responses."""
        self.tags += 1
        tag = b"a%d" % self.tags
        self.w.write(tag + b" " + text + b"\r\n")
        fetched = 0
        while True:
            first = l = await self.line()
            while l.endswith(b"}"):
                m = LITERAL.search(l)
                if not m:
                    break
                await asyncio.wait_for(self.r.readexactly(int(m.group(1))), TIMEOUT)
                l = await self.line()
            if first.startswith(tag + b" "):
                if not first.startswith(tag + b" OK"):
                    raise ValueError("%s: %r" % (text[:40], first[:200]))
                return fetched
            if re.match(rb"\* \d+ FETCH ", first):
                fetched += 1

    async def close(self):
        self.w.close()
        try:
            await asyncio.wait_for(self.w.wait_closed(), TIMEOUT)
        except (ConnectionError, OSError):
            pass


async def one_round(port, user, pw, small):
    c = AImap()
    await c.open(port)
    await c.command(b'LOGIN "%s" "%s"' % (user.encode(), pw.encode()))
    await c.command(b"SELECT INBOX")
    n = await c.command(b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])")
    if n != small:
        raise ValueError("%s: FETCH gave %d messages, not %d" % (user, n, small))
    await c.command(b"LOGOUT")
    await c.close()


async def rounds(port, users, pw, small, sessions, seconds):
    """SESSIONS clients, each as its own user, doing rounds until the
    deadline (SECONDS = 0: each user once). Returns the number of rounds."""
    counts = [0] * sessions
    deadline = time.monotonic() + seconds

    async def worker(i):
        if seconds == 0:
            for u in users[i::sessions]:
                await one_round(port, u, pw, small)
                counts[i] += 1
            return
        while time.monotonic() < deadline:
            await one_round(port, users[i % len(users)], pw, small)
            counts[i] += 1
    results = await asyncio.gather(*(worker(i) for i in range(sessions)),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise ValueError("%d of %d sessions failed, e.g. %r" % (len(errors), sessions, errors[0]))
    return sum(counts)

# --- the run --------------------------------------------------------------------------


def say(name, text):
    print("==> %s: %s" % (name, text), file=sys.stderr, flush=True)


def index_files(maildir):
    return sorted(n for n in os.listdir(maildir)
                  if n.startswith(("tern.index", "dovecot.index")))


def run(name, port, master, exp_path, out_path, pw, domain, nusers, fetch_n,
        seconds, sessions_list, nidle, maildir):
    with open(exp_path) as f:
        exp = json.load(f)
    big, small = exp["big"], exp["small"]
    users = ["u%d@%s" % (i, domain) for i in range(1, nusers + 1)]
    res = {"name": name, "messages": big["messages"], "fetch_n": fetch_n,
           "seconds": seconds, "idle": nidle}

    say(name, "(a, b) cold: first SELECT and UID FETCH of %d messages (no index yet)"
        % big["messages"])
    c = Imap(port)
    c.login("big@" + domain, pw)
    settled(master)
    # Cold is the first SELECT of a folder the server never indexed: not
    # so if the login did it.
    res["indexed_before_select"] = index_files(maildir)
    select(c, res, "select_cold", master, big["messages"])
    fetch_meta(c, res, "fetch_cold", master, big)
    c.logout()
    settled(master)

    say(name, "(a, b, c, d) warm: SELECT, UID FETCH, SEARCH, FETCH BODY[] in a new session")
    c = Imap(port)
    c.login("big@" + domain, pw)
    settled(master)
    select(c, res, "select_warm", master, big["messages"])
    sizes = fetch_meta(c, res, "fetch_warm", master, big)
    search(c, res, "search_subject", master,
           b"SEARCH SUBJECT " + exp["subject_word"].encode(), big["subject_hits"])
    search(c, res, "search_body", master,
           b"SEARCH BODY " + exp["body_word"].encode(), big["body_hits"])
    res["fetch_n"] = min(fetch_n, big["messages"])
    fetch_bodies(c, res, master, res["fetch_n"], sizes)
    c.logout()

    say(name, "warm-up: each of %d users logs in and reads its INBOX once" % nusers)
    asyncio.run(rounds(port, users, pw, small["messages"], min(20, nusers), 0))

    for n in sessions_list:
        say(name, "(e) %d concurrent sessions: login/SELECT/FETCH headers/LOGOUT for %g s"
            % (n, seconds))
        settled(master)
        c0 = cpu_seconds(master)
        t0 = time.monotonic()
        done = asyncio.run(rounds(port, users, pw, small["messages"], n, seconds))
        secs = time.monotonic() - t0
        # The sessions' exits, with their time, reaped into their parents'.
        settled(master)
        res["rounds_%d" % n] = (done, secs, cpu_seconds(master) - c0)

    say(name, "(f) %d idle sessions, logged in and selected" % nidle)
    settled(master)
    base = pss_kb(master)
    conns = []
    for u in users[:nidle]:
        c = Imap(port)
        c.login(u, pw)
        c.command(b"SELECT INBOX")
        conns.append(c)
    settled(master)
    res["idle_pss"] = (base, pss_kb(master))
    for c in conns:
        c.logout()

    with open(out_path, "w") as f:
        json.dump(res, f)

# --- the report -------------------------------------------------------------------------


def report(paths):
    rows = {}
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        rows[r["name"]] = r
    names = [n for n in ("tern", "dovecot") if n in rows]
    any_ = rows[names[0]]
    both = len(names) == 2
    figures = []   # (label, {name: value}, higher is better)

    def fig(label, f, higher=False):
        figures.append((label, {n: f(rows[n]) for n in names}, higher))
    for key, label in (("select", "(a) SELECT INBOX (%d messages)" % any_["messages"]),):
        for when in ("cold", "warm"):
            fig("%s, %s: ms" % (label, when), lambda r, k="%s_%s" % (key, when): 1e3 * r[k][0])
            fig("    server CPU ms", lambda r, k="%s_%s" % (key, when): 1e3 * r[k][1])
    for when in ("cold", "warm"):
        fig("(b) UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), %s: s" % when,
            lambda r, k="fetch_" + when: r[k][0])
        fig("    server CPU s", lambda r, k="fetch_" + when: r[k][1])
    for key, label in (("search_subject", "(c) SEARCH SUBJECT"),
                       ("search_body", "(c) SEARCH BODY")):
        fig(label + ": ms", lambda r, k=key: 1e3 * r[k][0])
        fig("    server CPU ms", lambda r, k=key: 1e3 * r[k][1])
    fig("(d) FETCH 1:%d BODY.PEEK[]: s" % any_["fetch_n"], lambda r: r["fetch_body"][0])
    fig("    MB/s", lambda r: r["fetch_body_bytes"] / r["fetch_body"][0] / 1e6, True)
    fig("    server CPU s", lambda r: r["fetch_body"][1])
    for k in sorted((k for k in any_ if k.startswith("rounds_")), key=lambda k: int(k[7:])):
        fig("(e) %s sessions, %g s: rounds/s" % (k[7:], any_["seconds"]),
            lambda r, k=k: r[k][0] / r[k][1], True)
        fig("    server CPU ms per round", lambda r, k=k: 1e3 * r[k][2] / max(r[k][0], 1))
    fig("(f) PSS KiB per idle selected session (%d)" % any_["idle"],
        lambda r: (r["idle_pss"][1] - r["idle_pss"][0]) / r["idle"])
    print()
    print("%-58s" % "IMAP" + "".join("%10s" % n for n in names)
          + ("%13s" % "tern better" if both else ""))
    for label, vals, higher in figures:
        line = "%-58s" % label + "".join(
            ("%10.2f" if vals[n] >= 1 else "%10.3f") % vals[n] for n in names)
        if both:
            a, b = vals["tern"], vals["dovecot"]
            if not higher:
                a, b = b, a
            line += "%12.2fx" % (a / b) if a > 0 and b > 0 else "%13s" % "-"
        print(line)
    for n in names:
        if rows[n]["indexed_before_select"]:
            print("WARNING: %s's cold SELECT was not cold: %s existed after LOGIN"
                  % (n, ", ".join(rows[n]["indexed_before_select"])))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "generate":
        generate(args[0], int(args[1]), int(args[2]))
    elif cmd == "run":
        run(args[0], int(args[1]), int(args[2]), args[3], args[4], args[5], args[6],
            int(args[7]), int(args[8]), float(args[9]),
            [int(x) for x in args[10].split(",") if x], int(args[11]), args[12])
    elif cmd == "report":
        report(args)
    else:
        sys.exit("usage: see the docstring")


if __name__ == "__main__":
    main()
