"""Online and offline (issue 6, DESIGN section 5): the four ways to switch,
offline lasting across remounts, not one byte on the network while offline
(a counting proxy sits between mailfs and Dovecot), every kind of change
made offline reaching the server in order once online (checked with
imaplib), the folder in use syncing first, a server that cannot be reached
(nothing blocks, changes queue, the reason shows, catch-up by itself),
`mailfs status`, and the time to replay a 1,000-change journal."""

import os
import re
import shutil
import subprocess
import time

import pytest

from mailfs_testlib import (SLOW, appends, changing_commands, crlf, dovecot as srvlib, dt, expected_name,
                            folder_bodies, folder_flags, imap_commands, message_files,
                            mime_mixed, populate_basic, server_state, setxattr_errno, timed,
                            wait_server, wait_until, while_alive, xattr)

SYNC = 20   # s: initial sync of a small account
PUSH = 15   # s: queued changes on the server once reachable
PROMPT = 1.0  # s: what "returns promptly" means for one FUSE call

QUARTERLY = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
LUNCH = "Inbox/" + expected_name("Lunch?", dt(2026, 11, 25, 12, 30))
GRUSSE = "Inbox/" + expected_name("Grüße aus Köln", dt(2026, 1, 2, 3, 4))
OLD_THREAD = "Archive/" + expected_name("Old thread", dt(2019, 5, 6, 7, 8))
INVOICE1 = "Archive/2025/" + expected_name("Invoice 2025-001", dt(2025, 2, 3, 4, 5))
ENTWURF = "Entwürfe/" + expected_name("Entwurf: Angebot", dt(2026, 6, 7, 8, 9))


def mode(m):
    return xattr(m.path, "user.mailfs.mode")


def conn(m):
    return xattr(m.path, "user.mailfs.connection")


def set_online(m, online):
    os.setxattr(m.path, "user.mailfs.mode", b"online" if online else b"offline")


def wait_connected(m, timeout=SYNC):
    wait_until(while_alive(m, lambda: conn(m) == "connected"), timeout * SLOW,
               what="user.mailfs.connection reads connected")


def wait_idle_proxy(proxy, timeout=10):
    """Until no connection is open through the proxy."""
    wait_until(lambda: proxy.stats()["active"] == 0, timeout * SLOW,
               what="no connection open through the proxy")


def start(dovecot, mailfs_env, mount, proxy=None, **kw):
    """populate_basic, mount (through proxy when given), initial sync."""
    mailfs_env.configure(dovecot, port=proxy.port if proxy else None, **kw)
    c = dovecot.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="initial sync")
    return c, expected, m


def status_lines(text):
    return dict(line.split(": ", 1) for line in text.splitlines()
                if ": " in line and not line.startswith(" "))


def folder_line(text, folder):
    for line in text.splitlines():
        if line.startswith("  ") and line.split()[0] == folder:
            return line
    raise AssertionError("no line for folder %s in:\n%s" % (folder, text))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# --- switching, and offline lasting ------------------------------------------------------

@pytest.mark.time_limit(180)
def test_offline_four_ways_and_sticky(dovecot, mailfs_env, mount, run_mailfs, faultproxy):
    proxy = faultproxy(dovecot)
    c, expected, m = start(dovecot, mailfs_env, mount, proxy)
    assert mode(m) == "online"
    wait_connected(m)

    # 1. setfattr on the root
    set_online(m, False)
    assert mode(m) == "offline" and conn(m) == "offline"
    wait_idle_proxy(proxy)
    m.unmount()
    n0 = proxy.stats()["connections"]
    m = mount()
    assert mode(m) == "offline" and conn(m) == "offline", "offline did not last a remount"
    assert message_files(m.path) == expected
    time.sleep(1.5)
    assert proxy.stats()["connections"] == n0, "an offline mount connected"

    # 2. mailfs online MOUNTPOINT, 3. mailfs offline MOUNTPOINT
    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    assert mode(m) == "online"
    wait_connected(m)
    assert proxy.stats()["connections"] > n0
    rc, out, err = run_mailfs("offline", m.path)
    assert rc == 0, err
    assert mode(m) == "offline" and conn(m) == "offline"
    wait_idle_proxy(proxy)
    # by account name, while mounted: the running mount is told
    rc, out, err = run_mailfs("online", "test")
    assert rc == 0, err
    assert mode(m) == "online"
    wait_connected(m)
    rc, out, err = run_mailfs("offline", "test")
    assert rc == 0, err
    assert mode(m) == "offline" and conn(m) == "offline"
    wait_idle_proxy(proxy)
    m.unmount()

    # 4. not mounted: mailfs online|offline ACCOUNT waits in the store
    rc, out, err = run_mailfs("status", "test")
    assert rc == 0, err
    assert status_lines(out)["mode"] == "offline", out
    rc, out, err = run_mailfs("online", "test")
    assert rc == 0, err
    rc, out, err = run_mailfs("status", "test")
    assert status_lines(out)["mode"] == "online", out
    m = mount()
    assert mode(m) == "online"
    wait_connected(m)
    m.unmount()
    rc, out, err = run_mailfs("offline", "test")
    assert rc == 0, err
    n1 = proxy.stats()["connections"]
    m = mount()
    assert mode(m) == "offline"
    time.sleep(1)
    assert proxy.stats()["connections"] == n1
    set_online(m, True)
    wait_connected(m)
    m.unmount()

    # 5. -o offline, then a plain mount: still offline until set online
    n2 = proxy.stats()["connections"]
    m = mount(options=["offline"])
    assert mode(m) == "offline" and conn(m) == "offline"
    assert message_files(m.path) == expected
    time.sleep(1)
    m.unmount()
    m = mount()
    assert mode(m) == "offline", "-o offline did not last"
    time.sleep(1)
    assert proxy.stats()["connections"] == n2, "offline mounts connected"
    set_online(m, True)
    wait_connected(m)
    assert mode(m) == "online"
    m.unmount()
    m = mount()
    assert mode(m) == "online"
    wait_connected(m)


def test_first_mount_offline_without_server(dovecot, mailfs_env, mount):
    """-o offline on an account with no store yet: mounts without asking
    the server (which is down), an empty tree that takes changes."""
    mailfs_env.configure(dovecot)
    dovecot.stop()
    m = mount(options=["offline"])
    assert mode(m) == "offline" and conn(m) == "offline"
    assert sorted(os.listdir(m.path)) == ["Conflicts"]
    m.unmount()
    dovecot.start()


# --- offline: not one byte, then everything in order ---------------------------------------

@pytest.mark.time_limit(240)
def test_offline_no_traffic_then_everything_in_order(dovecot, mailfs_env, mount, faultproxy,
                                                     tmp_path):
    proxy = faultproxy(dovecot)
    c, expected, m = start(dovecot, mailfs_env, mount, proxy)
    wait_connected(m)
    set_online(m, False)
    wait_idle_proxy(proxy)
    time.sleep(0.3)
    s0 = proxy.stats()

    # every kind of change, offline, for 10 s
    made = []  # subjects of the messages appended by the user, in order
    new1 = srvlib.make_message("Project plan", dt(2026, 12, 1, 9, 0))
    new2 = srvlib.make_message("Draft one", dt(2026, 12, 1, 9, 5))
    new2b = srvlib.make_message("Draft one edited", dt(2026, 12, 1, 9, 5), "Better.\n")
    inv = open(m / INVOICE1, "rb").read()
    inv_edit = inv.replace(b"Message 4 in Archive/2025.", b"Message 4, corrected.")
    assert inv_edit != inv
    os.mkdir(m / "Projects")
    os.rename(m / "Projects", m / "Projects 2025")       # rename a folder
    write(m / "Projects 2025/plan.eml", new1)
    made.append("Project plan")
    write(m / "Inbox/draft.eml", new2)
    write(m / "Inbox/draft.eml", new2b)                  # edit before it was ever sent
    made.append("Draft one edited")
    os.rename(m / QUARTERLY, m / "Archive" / os.path.basename(QUARTERLY))   # mv
    os.unlink(m / LUNCH)                                 # rm
    os.mkdir(m / "Tmp")
    os.rmdir(m / "Tmp")
    os.setxattr(m / OLD_THREAD, "user.mail.flags", b"seen flagged")
    write(m / INVOICE1, inv_edit)                        # edit a message from the server
    made.append("Invoice 2025-001")
    os.mkdir(m / "Scratch")
    os.unlink(m / ENTWURF)
    os.rmdir(m / "Entwürfe")
    loops, kept_loops, i = {}, [], 0
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end:
        msg = srvlib.make_message("Loop %02d" % i, dt(2026, 12, 2, 10, i % 60))
        loops[i] = msg
        write(m / ("Inbox/loop %02d.eml" % i), msg)
        if i % 2 == 1:
            os.unlink(m / ("Inbox/loop %02d.eml" % (i - 1)))
        os.setxattr(m / GRUSSE, "user.mail.flags",
                    b"seen flagged" if i % 2 == 0 else b"flagged $Forwarded")
        i += 1
        time.sleep(0.25)
    last_flags = {"seen", "flagged"} if (i - 1) % 2 == 0 else {"flagged", "$Forwarded"}
    for k in loops:
        if k % 2 == 1 or k == i - 1:
            kept_loops.append(k)
            made.append("Loop %02d" % k)
    # reads, listings, attributes: all from the store
    assert message_files(m.path)
    # the folder in use when going online: Sent (with news on the server)
    srvlib.append(c, "Sent", srvlib.make_message("Sent meanwhile", dt(2026, 12, 3, 1, 1)))
    srvlib.append(c, "INBOX", srvlib.make_message("Arrived meanwhile", dt(2026, 12, 3, 1, 2)))
    os.listdir(m / "Sent")
    assert conn(m) == "offline"
    s1 = proxy.stats()
    assert (s1["connections"], s1["bytes_up"], s1["bytes_down"]) == \
        (s0["connections"], s0["bytes_up"], s0["bytes_down"]), \
        "network traffic while offline: %r -> %r" % (s0, s1)
    assert int(xattr(m / "Inbox", "user.sync.pending")) > 0

    mark = proxy.mark()
    set_online(m, True)
    want = {
        "INBOX": [b for p, b in expected.items() if p == GRUSSE] + [new2b] +
                 [loops[k] for k in kept_loops],
        "Archive": [expected[OLD_THREAD], expected[QUARTERLY]],
        "Archive/2025": [inv_edit] + [b for p, b in expected.items()
                                      if p.startswith("Archive/2025/") and p != INVOICE1],
        "Sent": [b for p, b in expected.items() if p.startswith("Sent/")],
        "Projects 2025": [new1],
        "Scratch": [],
    }

    diff = []

    def subjects(bodies):
        return sorted(re.search(rb"^Subject: (.*)\r$", b, re.M).group(1).decode()
                      for b in bodies)

    def converged():
        diff[:] = []
        folders = srvlib.list_folders(c)
        if set(folders) != set(want) | {"INBOX"}:
            diff.append("folders %r" % sorted(folders))
        for f, bodies in want.items():
            have = folder_bodies(c, f)
            if f == "INBOX":
                have = [b for b in have if b"Arrived meanwhile" not in b]
            elif f == "Sent":
                have = [b for b in have if b"Sent meanwhile" not in b]
            if have != sorted(bodies):
                diff.append("%s: has %r, want %r" % (f, subjects(have), subjects(bodies)))
        return not diff

    try:
        wait_until(while_alive(m, converged), PUSH * SLOW, interval=0.2,
                   what="the server holds every change made offline")
    except AssertionError as e:
        sent = [line for st in proxy.since(mark) for line in changing_commands([st])]
        raise AssertionError("%s\n%s\nchanging commands sent after going online:\n  %s"
                             % (e, "\n".join(diff), "\n  ".join(sent)))
    for d in ("Inbox", "Archive", "Archive/2025", "Sent", "Projects 2025", "Scratch"):
        wait_until(while_alive(m, lambda: xattr(m / d, "user.sync.pending") == "0"),
                   PUSH * SLOW, what="%s pending 0" % d)
    assert folder_flags(c, "Archive")[expected[OLD_THREAD]] == {"seen", "flagged"}
    assert folder_flags(c, "INBOX")[expected[GRUSSE]] == last_flags
    assert "Tmp" not in srvlib.list_folders(c) and "Entwürfe" not in srvlib.list_folders(c)
    wait_until(lambda: "Arrived meanwhile" in " ".join(os.listdir(m / "Inbox")), PUSH * SLOW,
               what="news from the server in Inbox")
    wait_until(lambda: "Sent meanwhile" in " ".join(os.listdir(m / "Sent")), PUSH * SLOW,
               what="news from the server in Sent")

    # in order: the messages reached the server in the order they were made,
    # and none that was removed before it was sent went out
    streams = proxy.since(mark)
    sent = []
    for s in streams:
        for box, lit in appends(s):
            subj = re.search(rb"^Subject: (.*)\r$", lit, re.M)
            sent.append(subj.group(1).decode() if subj else "?")
    order = [x for x in sent if x in made]
    assert order == [x for x in made if x in order], "APPENDs out of order: %r" % sent
    assert set(made) <= set(sent), "not sent: %r" % (set(made) - set(sent))
    wasted = [x for x in sent if x.startswith("Loop") and int(x.split()[1]) not in kept_loops]
    print("APPENDs: %d; messages removed before they were sent yet sent: %d"
          % (len(sent), len(wasted)))

    # the folder in use syncs first after the journal: the first mailbox
    # selected after the pass's LIST is Sent
    cmds = []
    for s in streams:
        cmds += [line for tag, name, line in imap_commands(s)]
    lists = [k for k, line in enumerate(cmds) if re.match(r"^\S+ LIST", line)]
    assert lists, cmds
    after = [line for line in cmds[lists[0]:] if re.match(r"^\S+ (SELECT|EXAMINE) ", line)]
    assert after and "Sent" in after[0], "first folder synced after going online: %r" % after[:3]


def test_offline_append_then_rename_folder(dovecot, mailfs_env, mount, tmp_path):
    """Offline: a message copied into a folder, then the folder renamed
    (a new folder, and one the server has). Online, the server must end
    with the messages in the renamed folders."""
    c, expected, m = start(dovecot, mailfs_env, mount)
    wait_connected(m)
    set_online(m, False)
    plan = srvlib.make_message("Project plan", dt(2026, 12, 1, 9, 0))
    note = srvlib.make_message("Archived note", dt(2026, 12, 1, 9, 1))
    os.mkdir(m / "Projects")
    write(m / "Projects/plan.eml", plan)
    os.rename(m / "Projects", m / "Projects 2025")
    write(m / "Archive/2025/note.eml", note)
    os.rename(m / "Archive/2025", m / "Archive/Y2025")
    set_online(m, True)
    old_2025 = [b for p, b in expected.items() if p.startswith("Archive/2025/")]
    wait_server(c, "Projects 2025", [plan], PUSH * SLOW, mount=m)
    wait_server(c, "Archive/Y2025", old_2025 + [note], PUSH * SLOW, mount=m)
    assert "Projects" not in srvlib.list_folders(c)
    assert "Archive/2025" not in srvlib.list_folders(c)
    for p in (m / "Projects 2025/plan.eml", m / "Archive/Y2025/note.eml"):
        wait_until(while_alive(m, lambda: xattr(p, "user.sync.state") == "synced"),
                   PUSH * SLOW, what="%s synced" % p)


# --- online, but the server cannot be reached ---------------------------------------------

def prompt(what, fn, *args):
    took, r = timed(fn, *args)
    assert took < PROMPT * SLOW, "%s took %.2f s while the server was unreachable" % (what, took)
    return r


def run(*argv):
    r = subprocess.run([str(a) for a in argv], capture_output=True, timeout=60)
    assert r.returncode == 0, (argv, r.stderr)
    return r.stdout


@pytest.mark.time_limit(240)
def test_unreachable_nothing_blocks_then_catch_up(dovecot, mailfs_env, mount, faultproxy,
                                                  tmp_path):
    proxy = faultproxy(dovecot)
    c, expected, m = start(dovecot, mailfs_env, mount, proxy)
    wait_connected(m)
    proxy.set_mode("drop")
    wait_until(while_alive(m, lambda: conn(m).startswith("reconnecting")), 10 * SLOW,
               what="user.mailfs.connection says reconnecting")
    why = conn(m)
    assert re.match(r"^reconnecting( in \d+ s)?: \S", why), why
    assert mode(m) == "online"

    new = srvlib.make_message("Written while unreachable", dt(2026, 12, 5, 5, 5))
    (tmp_path / "new.eml").write_bytes(new)
    for round_ in range(3):
        prompt("ls", run, "ls", "-l", m / "Inbox")
        prompt("cat", run, "cat", m / GRUSSE)
        prompt("stat", os.stat, m / OLD_THREAD)
        prompt("getfattr", xattr, m.path, "user.mailfs.connection")
        prompt("find", run, "find", m.path)
        time.sleep(0.5)
    prompt("cp", run, "cp", tmp_path / "new.eml", m / "Inbox/new.eml")
    prompt("setfattr flags", run, "setfattr", "-n", "user.mail.flags", "-v", "seen",
           m / LUNCH)
    prompt("rm", os.unlink, m / OLD_THREAD)
    prompt("mkdir", os.mkdir, m / "Later")
    prompt("setfattr mode", run, "setfattr", "-n", "user.sync.mode", "-v", "full",
           m / "Sent")
    assert int(xattr(m / "Inbox", "user.sync.pending")) == 2
    assert int(xattr(m / "Archive", "user.sync.pending")) == 1
    assert xattr(m / "Inbox/new.eml", "user.sync.state") == "pending"
    time.sleep(2)
    assert conn(m).startswith("reconnecting"), conn(m)
    assert mode(m) == "online"
    assert folder_bodies(c, "Archive") == [expected[OLD_THREAD]]

    # back: the same catch-up as going online, by itself
    proxy.set_mode("pass")
    wait_server(c, "INBOX", [b for p, b in expected.items() if p.startswith("Inbox/")] + [new],
                60 * SLOW, mount=m)
    wait_server(c, "Archive", [], 10 * SLOW, mount=m)
    wait_until(lambda: "Later" in srvlib.list_folders(c), 10 * SLOW, what="Later created")
    assert folder_flags(c, "INBOX")[expected[LUNCH]] == {"seen"}
    for d in ("Inbox", "Archive"):
        wait_until(while_alive(m, lambda: xattr(m / d, "user.sync.pending") == "0"),
                   PUSH * SLOW, what="%s pending 0" % d)
    wait_connected(m)
    assert mode(m) == "online"
    # and new mail flows again
    srvlib.append(c, "INBOX", srvlib.make_message("After the outage", dt(2026, 12, 6, 6, 6)))
    wait_until(lambda: any("After the outage" in n for n in os.listdir(m / "Inbox")),
               PUSH * SLOW, what="new mail after the outage")


def test_partial_read_while_unreachable(dovecot, mailfs_env, mount, faultproxy, tmp_path):
    """A message kept in part, read while online but unreachable: the read
    waits a few seconds at most, and stat, cat and cp agree."""
    proxy = faultproxy(dovecot)
    mailfs_env.configure(dovecot, port=proxy.port)
    c = dovecot.client()
    c.select("INBOX")
    assert c.create("Archive")[0] == "OK"
    big = mime_mixed("Kept in part", dt(2026, 12, 7, 7, 7), attach_size=100_000)
    srvlib.append(c, "Archive", big)
    m = mount()
    wait_until(while_alive(m, lambda: os.path.isdir(m / "Archive") and
                           len(os.listdir(m / "Archive")) == 1 and
                           xattr(m / "Archive", "user.sync.last") != "never"),
               SYNC * SLOW, what="Archive synced")
    p = m / "Archive" / os.listdir(m / "Archive")[0]
    assert xattr(p, "user.sync.state") == "partial"
    proxy.set_mode("drop")
    wait_until(while_alive(m, lambda: conn(m).startswith("reconnecting")), 10 * SLOW,
               what="reconnecting")
    size0 = os.stat(p).st_size
    t = time.monotonic()
    data = run("cat", p)
    took = time.monotonic() - t
    out = tmp_path / "copy.eml"
    run("cp", p, out)
    size1 = os.stat(p).st_size
    print("unreachable: stat %d, cat %d bytes in %.2f s, cp %d, stat after %d"
          % (size0, len(data), took, out.stat().st_size, size1))
    assert took < 6 * SLOW, "the read waited %.1f s" % took
    assert size0 == len(data) == out.stat().st_size == size1, \
        "stat %d, cat %d, cp %d, stat after %d" % (size0, len(data), out.stat().st_size, size1)


# --- mailfs status -------------------------------------------------------------------------

def test_status_command(dovecot, mailfs_env, mount, run_mailfs):
    c, expected, m = start(dovecot, mailfs_env, mount)
    wait_connected(m)
    os.setxattr(m / "Sent", "user.sync.mode", b"off")
    for target in (m.path, "test"):
        rc, out, err = run_mailfs("status", target)
        assert rc == 0, err
        h = status_lines(out)
        assert h["account"] == "test", out
        assert h["mode"] == "online" and h["connection"] == "connected", out
        assert h["pending changes"] == "0" and h["conflicts"] == "0", out
        for folder, fmode, items in (("Inbox", "full", 3), ("Archive", "headers", 1),
                                     ("Archive/2025", "headers", 2), ("Sent", "off", 1),
                                     ("Entwürfe", "headers", 1)):
            line = folder_line(out, folder)
            w = line.split()
            assert w[1] == fmode and w[2] == str(items) and w[3] == "items", line
            assert re.search(r"last sync \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line), line
            assert re.search(r"pending 0 ", line), line
        assert "Conflicts" not in [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ")]
    # offline, with changes waiting
    set_online(m, False)
    os.unlink(m / LUNCH)
    os.setxattr(m / GRUSSE, "user.mail.flags", b"seen")
    rc, out, err = run_mailfs("status", m.path)
    assert rc == 0, err
    h = status_lines(out)
    assert h["mode"] == "offline" and h["connection"] == "offline", out
    assert h["pending changes"] == "2", out
    assert re.search(r"pending 2 ", folder_line(out, "Inbox")), out
    m.unmount()
    # not mounted: from the store alone
    rc, out, err = run_mailfs("status", "test")
    assert rc == 0, err
    h = status_lines(out)
    assert h["mode"] == "offline" and h["connection"] == "not mounted", out
    assert h["pending changes"] == "2", out
    assert folder_line(out, "Sent").split()[1] == "off"
    assert folder_line(out, "Archive").split()[1] == "headers"
    assert folder_line(out, "Inbox").split()[2] == "2"
    # an account with no store
    rc, out, err = run_mailfs("status", "nosuch")
    assert rc != 0


# --- the closing measurement: replaying 1,000 changes -------------------------------------

@pytest.mark.time_limit(300)
def test_measure_journal_replay(dovecot, mailfs_env, mount, run_mailfs, tmp_path):
    """Prints the time from `mailfs online` to every change on the server,
    for 1,000 changes made offline: 400 new messages, 300 flag changes,
    300 deletions."""
    mailfs_env.configure(dovecot)
    release = os.environ.get("MAILFS_RELEASE_BIN")
    if release and os.access(release, os.X_OK):
        mount.binary = release  # a timing: the optimised build
    c = dovecot.client()
    c.select("INBOX")
    assert c.create("Archive")[0] == "OK"
    old = {f: [srvlib.make_message("%s old %03d" % (f, i), dt(2025, 1, 1 + i // 60, 0, i % 60))
               for i in range(300)] for f in ("INBOX", "Archive")}
    for f, msgs in old.items():
        dovecot.append_many(f, msgs)
    m = mount()
    for d in ("Inbox", "Archive"):
        wait_until(while_alive(m, lambda: os.path.isdir(m / d) and
                               len(os.listdir(m / d)) == 300), SYNC * SLOW,
                   what="%s synced" % d)
    wait_connected(m)
    set_online(m, False)
    names = {d: sorted(os.listdir(m / d)) for d in ("Inbox", "Archive")}
    kept = {d: [open(m / d / n, "rb").read() for n in names[d][:150]]
            for d in ("Inbox", "Archive")}
    t = time.monotonic()
    new = {"INBOX": [], "Archive": []}
    for i in range(400):
        f, d = (("INBOX", "Inbox"), ("Archive", "Archive"))[i % 2]
        msg = srvlib.make_message("New %03d" % i, dt(2026, 1, 1 + i // 60, 1, i % 60))
        new[f].append(msg)
        write(m / d / ("new %03d.eml" % i), msg)
    for i in range(150):
        for d in ("Inbox", "Archive"):
            os.setxattr(m / d / names[d][i], "user.mail.flags", b"seen flagged")
    gone = {"Inbox": names["Inbox"][150:300], "Archive": names["Archive"][150:300]}
    for d, ns in gone.items():
        for n in ns:
            os.unlink(m / d / n)
    made = time.monotonic() - t
    pending = int(xattr(m / "Inbox", "user.sync.pending")) + \
        int(xattr(m / "Archive", "user.sync.pending"))
    assert pending == 1000, pending
    # on the server in the end: the 150 old ones flagged, none of the
    # deleted ones, every new one once
    want = {f: sorted(kept[d] + new[f]) for f, d in (("INBOX", "Inbox"),
                                                      ("Archive", "Archive"))}
    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    t0 = time.monotonic()

    def done():
        if any(xattr(m / d, "user.sync.pending") != "0" for d in ("Inbox", "Archive")):
            return False
        return all(srvlib.count(c, f) == 150 + 200 for f in ("INBOX", "Archive"))

    wait_until(while_alive(m, done), 240 * SLOW, interval=0.1, what="journal replayed")
    took = time.monotonic() - t0
    for f in ("INBOX", "Archive"):
        assert folder_bodies(c, f) == want[f], "%s on the server" % f
        flags = folder_flags(c, f)
        assert sum(1 for fl in flags.values() if {"seen", "flagged"} <= fl) == 150
    print("\n1,000 offline changes (400 cp, 300 flag changes, 300 rm): made in %.2f s; "
          "replayed in %.2f s after `mailfs online` (%s)" % (made, took, mount.binary))
