"""Faults on the way to the server (issue 6, DESIGN section 5): the
connection reset in the middle of a FETCH (full and headers mode) and of an
APPEND, a server that stalls, Dovecot restarted in the middle of a sync.
A fault-injecting proxy (tests/tools/faultproxy.py) sits between mailfs and
Dovecot. Each time: nothing lost, nothing twice (Message-IDs counted on the
server with imaplib and in the mount), the mount answers at once
throughout, and everything converges."""

import collections
import datetime
import os
import random
import re
import time

import pytest

from mailfs_testlib import (SLOW, appends, dovecot as srvlib, dt, imap_commands, message_id,
                            mime_mixed, server_message_ids, timed, wait_server, wait_until,
                            while_alive, xattr)

CONVERGE = 60  # s, scaled: everything in place after a fault
PROMPT = 1.0   # s, scaled: one FUSE call while the network misbehaves


def big_text(i, size):
    rnd = random.Random(i)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    out, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(words) for _ in range(12))
        out.append(line)
        n += len(line) + 2
    return "\n".join(out) + "\n"


def big_messages(prefix, n, size):
    t0 = dt(2026, 4, 1)
    return [srvlib.make_message("%s %02d" % (prefix, i), t0 + datetime.timedelta(hours=i),
                                big_text(i, size)) for i in range(n)]


def emls(path):
    return sorted(n for n in os.listdir(path) if n.endswith(".eml"))


def check_prompt(m, rel):
    """A few FUSE calls, each answered at once."""
    for what, fn, args in (("ls", os.listdir, (m / rel,)),
                           ("getfattr", xattr, (m.path, "user.mailfs.connection")),
                           ("statfs", os.statvfs, (m.path,))):
        took, _ = timed(fn, *args)
        assert took < PROMPT * SLOW, "%s took %.2f s during a fault" % (what, took)
    names = emls(m / rel)
    if names:
        took, _ = timed(os.stat, m / rel / names[0])
        assert took < PROMPT * SLOW, "stat took %.2f s during a fault" % took


def mount_mids(m, rel):
    """Message-IDs of the files of a folder (read: the mount must be
    offline or the files whole)."""
    out = []
    for n in emls(m / rel):
        with open(m / rel / n, "rb") as f:
            out.append(message_id(f.read()))
    return out


def no_repeats(mids, where):
    twice = [k for k, v in collections.Counter(mids).items() if v > 1]
    assert not twice, "twice in %s: %r" % (where, twice)


def cut_commands(proxy):
    """The last command each reset connection had sent when it was cut."""
    out = []
    streams = proxy.since()
    for _, text in proxy.events:
        mm = re.match(r"connection (\d+) reset", text)
        if mm:
            cmds = imap_commands(streams[int(mm.group(1))])
            out.append(cmds[-1][2] if cmds else "")
    return out


def converge(m, what, pred, timeout=CONVERGE, during=None):
    """wait_until pred, calling during() (prompt checks) on the way."""
    def step():
        if during:
            during()
        return pred()
    wait_until(while_alive(m, step), timeout * SLOW, interval=0.1, what=what)


# --- the connection reset mid-FETCH -------------------------------------------------------

@pytest.mark.time_limit(240)
def test_reset_mid_fetch_full(dovecot, mailfs_env, mount, faultproxy):
    proxy = faultproxy(dovecot)
    mailfs_env.configure(dovecot, port=proxy.port)
    msgs = big_messages("Large", 16, 300_000)
    dovecot.append_many("INBOX", msgs)
    c = dovecot.client()
    server_before = server_message_ids(c, "INBOX")
    # cut twice in the middle of the bodies, then let it through
    proxy.reset_after(down=1_000_000, times=2)
    m = mount()

    def complete():
        return os.path.isdir(m / "Inbox") and len(emls(m / "Inbox")) == len(msgs) and \
            xattr(m / "Inbox", "user.sync.state") == "idle"
    converge(m, "Inbox complete after two resets", complete,
             during=lambda: os.path.isdir(m / "Inbox") and check_prompt(m, "Inbox"))
    assert proxy.stats()["resets"] == 2, proxy.events
    cut = cut_commands(proxy)
    assert all("BODY.PEEK[]" in x for x in cut), "not cut in the middle of a FETCH: %r" % cut
    got = [open(m / "Inbox" / n, "rb").read() for n in emls(m / "Inbox")]
    assert sorted(got) == sorted(msgs), "a message differs from the server's after the resets"
    no_repeats([message_id(b) for b in got], "the mount")
    assert server_message_ids(c, "INBOX") == server_before
    for n in emls(m / "Inbox"):
        assert xattr(m / "Inbox" / n, "user.sync.state") == "synced"


@pytest.mark.time_limit(240)
def test_reset_mid_fetch_headers(dovecot, mailfs_env, mount, faultproxy):
    proxy = faultproxy(dovecot)
    mailfs_env.configure(dovecot, port=proxy.port)
    c = dovecot.client()
    c.select("INBOX")
    assert c.create("Archive")[0] == "OK"
    t0 = dt(2026, 4, 2)
    mixed = [mime_mixed("Mixed %02d" % i, t0 + datetime.timedelta(hours=i),
                        attach_size=150_000) for i in range(12)]
    plain = [srvlib.make_message("Plain %02d" % i, t0 + datetime.timedelta(days=1, hours=i),
                                 big_text(100 + i, 4000)) for i in range(12)]
    dovecot.append_many("Archive", mixed + plain)
    server_before = server_message_ids(c, "Archive")
    # one cut in each round: in the small ones fetched whole, in the
    # BODYSTRUCTURE and HEADER round, in the text parts
    proxy.reset_after(down=[20_000, 3_000, 1_000],
                      after=[rb"BODY\.PEEK\[\]", rb"BODYSTRUCTURE", rb"BODY\.PEEK\[1\.1\]"])
    m = mount()

    def complete():
        return os.path.isdir(m / "Archive") and len(emls(m / "Archive")) == 24 and \
            xattr(m / "Archive", "user.sync.last") != "never" and \
            xattr(m / "Archive", "user.sync.state") == "idle"
    converge(m, "Archive complete after three resets", complete,
             during=lambda: os.path.isdir(m / "Archive") and check_prompt(m, "Archive"))
    assert proxy.stats()["resets"] == 3, proxy.events
    cut = cut_commands(proxy)
    print("cut while these were in flight: %r" % cut)
    assert "BODY.PEEK[]" in cut[0] and "BODYSTRUCTURE" in cut[1] and \
        "BODY.PEEK[1.1]" in cut[2], "not cut in each of the headers-mode rounds: %r" % cut
    states = {n: xattr(m / "Archive" / n, "user.sync.state") for n in emls(m / "Archive")}
    assert sorted(states.values()) == ["partial"] * 12 + ["synced"] * 12, states
    os.setxattr(m.path, "user.mailfs.mode", b"offline")
    mids = mount_mids(m, "Archive")
    no_repeats(mids, "the mount")
    assert sorted(mids) == sorted(message_id(b) for b in mixed + plain)
    whole = {message_id(b): b for b in plain}
    for n in emls(m / "Archive"):
        data = open(m / "Archive" / n, "rb").read()
        assert os.stat(m / "Archive" / n).st_size == len(data)
        if message_id(data) in whole:
            assert data == whole[message_id(data)]
        else:
            assert b"report.pdf" in data and len(data) < 4000, n
    assert server_message_ids(c, "Archive") == server_before


# --- the connection reset mid-APPEND -------------------------------------------------------

@pytest.mark.time_limit(180)
def test_reset_mid_append(dovecot, mailfs_env, mount, faultproxy, tmp_path):
    proxy = faultproxy(dovecot)
    mailfs_env.configure(dovecot, port=proxy.port)
    c = dovecot.client()
    c.select("INBOX")
    first = srvlib.make_message("Already there", dt(2026, 4, 3, 1, 0))
    srvlib.append(c, "INBOX", first)
    m = mount()
    wait_until(while_alive(m, lambda: os.path.isdir(m / "Inbox") and
                           len(emls(m / "Inbox")) == 1), 20 * SLOW, what="initial sync")
    wait_until(lambda: xattr(m.path, "user.mailfs.connection") == "connected", 20 * SLOW,
               what="connected")
    big = srvlib.make_message("One megabyte", dt(2026, 4, 3, 2, 0), big_text(7, 1_000_000))
    assert len(big) > 1_000_000
    (tmp_path / "big.eml").write_bytes(big)
    # cut after a third of the literal has gone up
    proxy.reset_after(up=350_000)
    took, _ = timed(os.system, "cp '%s' '%s'" % (tmp_path / "big.eml", m / "Inbox/big.eml"))
    assert took < 5 * SLOW
    wait_server(c, "INBOX", [first, big], CONVERGE * SLOW, mount=m)
    assert proxy.stats()["resets"] == 1, proxy.events
    cut = [appends(proxy.since()[int(re.match(r"connection (\d+)", t).group(1))])
           for _, t in proxy.events if "reset" in t]
    assert cut and cut[0] and len(cut[0][-1][1]) < len(big), \
        "the reset did not cut the APPEND's literal: %r" % [(b, len(x)) for b, x in cut[0]]
    wait_until(while_alive(m, lambda: xattr(m / "Inbox/big.eml", "user.sync.state") == "synced"),
               20 * SLOW, what="big.eml synced")
    time.sleep(2)  # and no second copy later
    ids = server_message_ids(c, "INBOX")
    no_repeats(ids, "INBOX on the server")
    assert sorted(ids) == sorted([message_id(first), message_id(big)])
    assert open(m / "Inbox/big.eml", "rb").read() == big
    assert len(emls(m / "Inbox")) == 2, emls(m / "Inbox")


# --- a server that stalls --------------------------------------------------------------------

@pytest.mark.time_limit(180)
def test_server_stall_mid_fetch(dovecot, mailfs_env, mount, faultproxy, tmp_path):
    proxy = faultproxy(dovecot, record=False)
    mailfs_env.configure(dovecot, port=proxy.port)
    msgs = big_messages("Slow", 16, 300_000)
    dovecot.append_many("INBOX", msgs)
    c = dovecot.client()
    proxy.stall_after(down=1_500_000, seconds=5)
    m = mount()
    wait_until(lambda: proxy.stats()["mode"] == "stall", 20 * SLOW, what="the stall")
    wait_until(while_alive(m, lambda: os.path.isdir(m / "Inbox")), 5 * SLOW, what="Inbox")
    # the mount answers while the server says nothing
    mine = srvlib.make_message("Written during the stall", dt(2026, 4, 4, 4, 4))
    (tmp_path / "mine.eml").write_bytes(mine)
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end and proxy.stats()["mode"] == "stall":
        check_prompt(m, "Inbox")
        time.sleep(0.2)
    took, _ = timed(os.system, "cp '%s' '%s'" % (tmp_path / "mine.eml", m / "Inbox/mine.eml"))
    assert took < PROMPT * SLOW, "cp took %.2f s during a stall" % took
    converge(m, "Inbox complete after the stall",
             lambda: len(emls(m / "Inbox")) == len(msgs) + 1 and
             xattr(m / "Inbox", "user.sync.pending") == "0")
    wait_server(c, "INBOX", msgs + [mine], CONVERGE * SLOW, mount=m)
    got = [open(m / "Inbox" / n, "rb").read() for n in emls(m / "Inbox")]
    assert sorted(got) == sorted(msgs + [mine])
    no_repeats(server_message_ids(c, "INBOX"), "INBOX on the server")


# --- Dovecot restarted during a sync --------------------------------------------------------

@pytest.mark.time_limit(240)
def test_dovecot_restart_during_sync(dovecot, mailfs_env, mount, tmp_path):
    mailfs_env.configure(dovecot)
    n = 1000
    t0 = dt(2024, 6, 1)
    msgs = [srvlib.make_message("Many %04d" % i, t0 + datetime.timedelta(minutes=i),
                                "Body %d\n%s\n" % (i, big_text(i, 20_000))) for i in range(n)]
    dovecot.append_many("INBOX", msgs)
    c = dovecot.client()
    before = server_message_ids(c, "INBOX")
    c.logout()
    m = mount()
    # (the daemon's log is the only place that tells the download began)
    wait_until(while_alive(m, lambda: "folder Inbox: downloading" in m.stderr()),
               30 * SLOW, interval=0.002, what="the download under way")
    at = xattr(m / "Inbox", "user.sync.state")
    # down at once, as in a crash or `systemctl restart dovecot` (a plain
    # stop lets imap processes serve their client half a second more)
    for pid in dovecot.pids():
        if srvlib._comm(pid) == "imap":
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    dovecot.stop()
    # while it is down, the mount works and takes a change
    mine = srvlib.make_message("Written while the server restarts", dt(2026, 4, 5, 5, 5))
    (tmp_path / "mine.eml").write_bytes(mine)
    took, _ = timed(os.system, "cp '%s' '%s'" % (tmp_path / "mine.eml", m / "Inbox/mine.eml"))
    assert took < PROMPT * SLOW
    check_prompt(m, "Inbox")
    time.sleep(1)
    dovecot.start()
    c = dovecot.client()
    converge(m, "Inbox complete after the restart (stopped at %s)" % at,
             lambda: len(emls(m / "Inbox")) == n + 1 and
             xattr(m / "Inbox", "user.sync.pending") == "0" and
             xattr(m / "Inbox", "user.sync.state") == "idle")
    ids = server_message_ids(c, "INBOX")
    no_repeats(ids, "INBOX on the server")
    assert sorted(ids, key=str) == sorted(before + [message_id(mine)], key=str)
    mids = mount_mids(m, "Inbox")
    no_repeats(mids, "the mount")
    assert sorted(mids, key=str) == sorted(ids, key=str)
    # the restart did hit the download: it started again afterwards
    log = m.stderr()
    assert len(re.findall(r"folder Inbox: downloading \d+ messages", log)) >= 2, \
        "the restart came after the download: nothing was interrupted"

