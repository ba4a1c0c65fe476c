# SPDX-License-Identifier: MIT
"""A server's processes as the benches count them: the tree under its
master, their CPU time and their memory (PSS). Shared by imap_client.py
and pop3-bench.sh's client, so both count alike (and as bench/lib.sh's
cpu_ticks)."""

import os
import time

HZ = os.sysconf("SC_CLK_TCK")


def tree(master):
    """master and its live descendants, sorted."""
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    procs[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out = []
    for pid in procs:
        p, hops = pid, 0
        while p not in (master, 0, 1) and p in procs and hops < 64:
            p, hops = procs[p], hops + 1
        if p == master:
            out.append(pid)
    return sorted(out)


def cpu_ticks(master):
    """utime, stime, cutime and cstime of the tree, in clock ticks."""
    total = 0
    for pid in tree(master):
        try:
            with open("/proc/%d/stat" % pid) as f:
                total += sum(int(x) for x in
                             f.read().rsplit(")", 1)[1].split()[11:15])
        except (OSError, ValueError):
            pass
    return total


def cpu_seconds(master):
    """CPU time of the tree (schedstat: nanoseconds, so that a 5 ms
    SELECT shows), plus the time of the children they reaped (cutime,
    cstime: where a finished session's time goes)."""
    total = 0.0
    for pid in tree(master):
        try:
            with open("/proc/%d/schedstat" % pid) as f:
                ns = int(f.read().split()[0])
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += ns / 1e9 + (int(fields[13]) + int(fields[14])) / HZ
        except (OSError, ValueError, IndexError):
            pass
    return total


def pss_kb(master):
    total = 0
    for pid in tree(master):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def settled(master, timeout=30):
    """Waits (bounded) until the server's process set has not changed for
    a second: Dovecot's login processes exit after handing a connection
    on, sessions exit after LOGOUT."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = tree(master)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.0:
            return
        time.sleep(0.1)
