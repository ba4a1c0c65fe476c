#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks a delivery status notice with python3's email package, as a
mail reader would see it (run by lib/mail/dsn_test).

  dsn_check.py NOTICE EXPECT_JSON

NOTICE is the notice's content (CRLF lines), EXPECT_JSON a file with
{"subject", "report_type", "envid" (or null), "original" (content type of
the third part), "original_subject", "body_included", "rcpts": [{field:
value (null: must be absent, "*": any date)}]}. Exit 0 when everything
matches, else 1 with the differences on stdout.
"""

import email
import email.policy
import email.utils
import json
import re
import sys

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def unfold(value):
    # RFC 5322 2.2.3: unfolding removes the CRLF, keeps the white space.
    return re.sub(r"\r?\n(?=[ \t])", "", value) if value is not None else None


def is_date(value):
    try:
        return email.utils.parsedate_to_datetime(unfold(value)) is not None
    except (TypeError, ValueError):
        return False


def walk_defects(msg, where):
    for part in msg.walk():
        check(not part.defects,
              "%s: defects %r in %s" % (where, part.defects,
                                        part.get_content_type()))


def main():
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    with open(sys.argv[2]) as f:
        want = json.load(f)
    check(b"\n" not in raw.replace(b"\r\n", b""), "bare LF in the notice")
    check(all(len(line) <= 998 for line in raw.split(b"\r\n")),
          "a line over 998 octets")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    walk_defects(msg, "notice")
    check(msg.get_content_type() == "multipart/report",
          "top type %s" % msg.get_content_type())
    check(msg.get_param("report-type") == want["report_type"],
          "report-type %s" % msg.get_param("report-type"))
    check(msg["Subject"] == want["subject"], "Subject %r" % msg["Subject"])
    check(msg["Auto-Submitted"] == "auto-replied", "Auto-Submitted")
    name, addr = email.utils.parseaddr(msg["From"])
    check(name == "Mail Delivery System" and
          addr.startswith("MAILER-DAEMON@"), "From %r" % msg["From"])
    check(is_date(msg["Date"]), "Date %r" % msg["Date"])
    check(re.fullmatch(r"<[0-9A-Z]+@[^>]+>", msg["Message-ID"] or ""),
          "Message-ID %r" % msg["Message-ID"])
    parts = msg.get_payload()
    check(len(parts) == 3, "%d parts" % len(parts))
    if len(parts) != 3:
        return
    text, report, original = parts
    check(text.get_content_type() == "text/plain", "first part type")
    check(report.get_content_type() == "message/" + want["report_type"],
          "second part type %s" % report.get_content_type())
    if want["report_type"] == "delivery-status":
        # The parser makes one block of fields per paragraph.
        blocks = report.get_payload()
    else:
        # The parser reads message/global-delivery-status as one
        # message: take the part's body from the raw notice instead.
        delim = b"\r\n--" + msg.get_boundary().encode()
        seg = [s for s in raw.split(delim)
               if b"message/global-delivery-status" in s][-1]
        body = seg.split(b"\r\n\r\n", 1)[1].decode("utf-8")
        blocks = [email.message_from_string(p + "\r\n",
                                            policy=email.policy.compat32)
                  for p in re.split(r"\r\n\r\n", body.strip("\r\n"))]
    check(len(blocks) == 1 + len(want["rcpts"]),
          "%d field blocks, want %d" % (len(blocks),
                                         1 + len(want["rcpts"])))
    per_msg = blocks[0]
    check(unfold(per_msg["Reporting-MTA"] or "").startswith("dns; "),
          "Reporting-MTA %r" % per_msg["Reporting-MTA"])
    check(unfold(per_msg["Original-Envelope-Id"]) == want["envid"],
          "Original-Envelope-Id %r" % per_msg["Original-Envelope-Id"])
    check(is_date(per_msg["Arrival-Date"]), "Arrival-Date")
    for i, (block, fields) in enumerate(zip(blocks[1:], want["rcpts"])):
        for name, value in fields.items():
            got = unfold(block[name])
            if value == "*":
                check(is_date(got), "rcpt %d: %s %r not a date"
                      % (i, name, got))
            else:
                check(got == value, "rcpt %d: %s is %r, want %r"
                      % (i, name, got, value))
    check(original.get_content_type() == want["original"],
          "third part type %s" % original.get_content_type())
    if want["original"] in ("message/rfc822", "message/global"):
        inner = original.get_payload(0)
        check(inner["Subject"] == want["original_subject"],
              "returned Subject %r" % inner["Subject"])
        check(want["body_included"], "body returned though not wanted")
    else:
        headers = original.get_payload(decode=True).decode("utf-8")
        check(("Subject: %s" % want["original_subject"]) in headers,
              "returned headers lack the Subject")
        check("\r\n\r\n" not in headers.rstrip("\r\n"),
              "returned headers include a body")


main()
for p in problems:
    print("# dsn_check: " + p)
sys.exit(1 if problems else 0)
