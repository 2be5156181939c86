"""Crash safety, first way (issue 3, STYLE convention 10): a scripted
scenario of local changes made while the server is down -- adds with and
without a Message-ID, a replace, deletes, a move between folders, a flag
change, a folder rename, a new folder with a message -- then replayed to the
server by `mailfs sync`. With MAILFS_CRASH_AT=N the daemon exits right after
its N-th durable step, for every N from 1 to the last step of the scenario.
After each crash: unmount, remount without the switch, redo what failed
(the scenario is a list of idempotent "ensure" steps), sync, and the server
(and the tree) must be exactly what the uninterrupted run left; a further
sync through a recording proxy must send nothing that changes the server.

Each iteration starts from the same server and store, restored from copies
taken once (the server's home directory with its Maildir and indexes, and
the store directory), so every run sees the same UIDVALIDITYs and UIDs."""

import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from mailfs_testlib import (ACCOUNT, ALL_EXTENSIONS, SLOW, changing_commands, crlf,
                            dovecot as srvlib, dt, expected_name, is_mounted, message_files,
                            server_state)

SYNC = 10
CRASH_EXIT = 86


def msg(subject, date, body, message_id=True):
    m = srvlib.make_message(subject, date, body)
    if not message_id:
        m = re.sub(rb"Message-ID: [^\r]*\r\n", b"", m)
    return m


A = msg("Alpha", dt(2026, 1, 1, 10, 0), "alpha, moved to Archive\n")
B = msg("Bravo", dt(2026, 1, 2, 10, 0), "bravo, replaced\n")
C = msg("Charlie", dt(2026, 1, 3, 10, 0), "charlie, deleted\n")
D = msg("Delta", dt(2026, 1, 4, 10, 0), "delta, flagged\n")
E = msg("Echo", dt(2026, 1, 5, 10, 0), "echo, deleted from Sent\n")
F = msg("Foxtrot", dt(2026, 1, 6, 10, 0), "foxtrot, in a folder that is renamed\n")
G = msg("Golf", dt(2026, 1, 7, 10, 0), "golf, left alone\n")
SERVER = {"INBOX": [A, B, C, G], "Archive": [D], "Sent": [E], "Old": [F]}

N1 = msg("New with id", dt(2026, 2, 1, 8, 0), "added, with a Message-ID\n")
N2 = msg("New without id", dt(2026, 2, 2, 8, 0), "added, without a Message-ID\n",
         message_id=False)
N3 = msg("In a new folder", dt(2026, 2, 3, 8, 0), "added to a folder made offline\n")
N4 = msg("New then moved", dt(2026, 2, 4, 8, 0), "added, then moved to another folder\n")
B2 = B.replace(b"bravo, replaced", b"bravo, the new version (longer than the old)")
G2 = G.replace(b"golf, left alone", b"golf, edited and then moved to Sent")


def name(subject, date):
    return expected_name(subject, date)


NAME_A = name("Alpha", dt(2026, 1, 1, 10, 0))
NAME_B = name("Bravo", dt(2026, 1, 2, 10, 0))
NAME_C = name("Charlie", dt(2026, 1, 3, 10, 0))
NAME_D = name("Delta", dt(2026, 1, 4, 10, 0))
NAME_E = name("Echo", dt(2026, 1, 5, 10, 0))
NAME_G = name("Golf", dt(2026, 1, 7, 10, 0))


# --- the scenario: idempotent steps ------------------------------------------------------

def read(path):
    with open(path, "rb") as f:
        return f.read()


def ensure_content(path, data):
    if os.path.exists(path) and read(path) == crlf(data):
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def ensure_absent(path):
    if os.path.exists(path):
        os.unlink(path)


def ensure_moved(src, dst):
    if os.path.exists(src):
        os.rename(src, dst)


def ensure_flags(path, flags):
    if os.getxattr(path, "user.mail.flags").decode() != flags:
        os.setxattr(path, "user.mail.flags", flags.encode())


def ensure_dir_renamed(src, dst):
    if os.path.isdir(src):
        os.rename(src, dst)


def ensure_dir(path):
    if not os.path.isdir(path):
        os.mkdir(path)


def ensure_written_moved(src, dst, data):
    """Write data to src, then move it to dst (an edit or an add, then mv)."""
    if os.path.exists(dst):
        ensure_content(dst, data)
        return
    ensure_content(src, data)
    os.rename(src, dst)


def scenario(root):
    """The local changes, as (what, function, args)."""
    j = os.path.join
    return [
        ("add with Message-ID", ensure_content, (j(root, "Inbox/new with id.eml"), N1)),
        ("add without Message-ID", ensure_content, (j(root, "Archive/no id.eml"), N2)),
        ("replace", ensure_content, (j(root, "Inbox", NAME_B), B2)),
        ("delete", ensure_absent, (j(root, "Inbox", NAME_C),)),
        ("delete in Sent", ensure_absent, (j(root, "Sent", NAME_E),)),
        ("move", ensure_moved, (j(root, "Inbox", NAME_A), j(root, "Archive", NAME_A))),
        ("flags", ensure_flags, (j(root, "Archive", NAME_D), "seen flagged $Label")),
        ("rename folder", ensure_dir_renamed, (j(root, "Old"), j(root, "Renamed"))),
        ("new folder", ensure_dir, (j(root, "Fresh"),)),
        ("add to new folder", ensure_content, (j(root, "Fresh/inside.eml"), N3)),
        ("flags of a new message", ensure_flags, (j(root, "Inbox/new with id.eml"), "flagged")),
        ("edit then move", ensure_written_moved,
         (j(root, "Inbox", NAME_G), j(root, "Sent", NAME_G), G2)),
        ("add then move", ensure_written_moved,
         (j(root, "Inbox/to move.eml"), j(root, "Renamed/moved.eml"), N4)),
    ]


def apply(root, proc=None):
    """Run the scenario; stop at the first failing step (the daemon died).
    Returns the number of steps that succeeded."""
    for i, (what, fn, args) in enumerate(scenario(root)):
        if proc is not None and proc.poll() is not None:
            return i
        try:
            fn(*args)
        except OSError as e:
            if proc is None:
                raise AssertionError("%s failed: %s" % (what, e))
            return i
    return len(scenario(root))


# --- the harness -------------------------------------------------------------------------

def copy_store(src, dst):
    """Copy a store directory (leaving out the control socket)."""
    if os.path.exists(dst):
        shutil.rmtree(dst)

    def ignore(d, names):
        return [n for n in names if not (os.path.isdir(os.path.join(d, n)) or
                                         stat.S_ISREG(os.lstat(os.path.join(d, n)).st_mode))]
    shutil.copytree(src, dst, ignore=ignore)


def restore_home(srv, snap):
    home = os.path.join(srv.home_root, "alice")
    shutil.rmtree(home)
    subprocess.run(["cp", "-a", snap, home], check=True)


def cleanup_crashed(m):
    """The daemon exited on its own: detach its dead mount point."""
    rc = m.proc.wait(30 * SLOW)
    if is_mounted(m.path):
        subprocess.run(["fusermount3", "-uz", m.path], capture_output=True, timeout=30)
    m.unmounted = True
    return rc


def steps_of(text):
    return [(int(n), what) for n, what in re.findall(r"durable step (\d+): ([^\n]*)", text)]


@pytest.mark.time_limit(600)
@pytest.mark.parametrize("dovecot", [{}, {"hide_capabilities": ALL_EXTENSIONS}],
                         ids=["extensions", "bare-imap4rev1"], indirect=True)
def test_crash_at_every_step(dovecot, mailfs_env, mount, run_mailfs, recorder, tmp_path):
    srv = dovecot
    mailfs_env.configure(srv)
    c = srv.client()
    c.select("INBOX")
    for folder, msgs in SERVER.items():
        if folder != "INBOX":
            assert c.create(srvlib.mailbox_arg(folder))[0] == "OK"
        for body in msgs:
            srvlib.append(c, folder, body)
    c.logout()
    rc, out, err = run_mailfs("sync", ACCOUNT)
    assert rc == 0, err
    store = mailfs_env.store()
    srv.stop()
    home_snap = str(tmp_path / "home-snapshot")
    subprocess.run(["cp", "-a", os.path.join(srv.home_root, "alice"), home_snap], check=True)
    store_snap = str(tmp_path / "store-snapshot")
    copy_store(store, store_snap)

    # a second config for the final check: the same account through a
    # recording proxy
    rec = recorder(srv)
    proxied = str(tmp_path / "proxied.conf")
    mailfs_env.write_config({ACCOUNT: mailfs_env.account_for(srv, port=rec.port)}, path=proxied)

    def reset():
        if srv.running():
            srv.stop()
        restore_home(srv, home_snap)
        copy_store(store_snap, store)

    def final_check(label):
        c = srv.client()
        try:
            got = server_state(c)
        finally:
            c.logout()
        mark = rec.mark()
        for attempt in range(3):
            rc, out, err = run_mailfs("sync", ACCOUNT, config=proxied)
            # a loopback connection through the proxy now and then meets the
            # proxy's own TIME_WAIT and is reset before the greeting: that
            # is the harness, not mailfs; try again
            if rc == 0 or "cannot reach" not in err:
                break
        assert rc == 0, "%s: the sync after recovery failed: %s" % (label, err)
        sent = changing_commands(rec.since(mark))
        return got, sent

    # the uninterrupted run, counting the durable steps
    reset()
    m = mount(env={"MAILFS_CRASH_TRACE": "1"})
    assert apply(m.path) == len(scenario(m.path))
    local_steps = steps_of(m.stderr())
    srv.start()
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    tree = message_files(m.path)
    time.sleep(0.3)
    steps = steps_of(m.stderr())
    m.unmount()
    assert [n for n, _ in steps] == list(range(1, len(steps) + 1)), steps
    reference, sent = final_check("uninterrupted run")
    assert sent == [], "the uninterrupted run left changes to send: %r" % sent
    # the reference itself is right: every change is on the server
    want = {
        "INBOX": sorted([crlf(N1), B2]),
        "Archive": sorted([D, crlf(N2), A]),
        "Sent": [G2],
        "Renamed": sorted([F, N4]),
        "Fresh": [crlf(N3)],
    }
    assert {f: sorted(b for _, b in v) for f, v in reference.items()} == want
    assert [fl for fl, b in reference["Archive"] if b == D] == [
        tuple(sorted(("\\Seen", "\\Flagged", "$Label")))]
    assert [fl for fl, b in reference["INBOX"] if b == crlf(N1)] == [("\\Flagged",)]
    total = len(steps)
    print("\ncrash test: %d durable steps (%d in the local changes, %d in the replay): %s"
          % (total, len(local_steps), total - len(local_steps),
             ", ".join(w for _, w in steps)))

    problems = []
    crashed = 0
    t0 = time.monotonic()
    for n in range(1, total + 1):
        label = "MAILFS_CRASH_AT=%d (%s)" % (n, steps[n - 1][1])
        reset()
        m = mount(env={"MAILFS_CRASH_AT": str(n), "MAILFS_CRASH_TRACE": "1"})
        done = apply(m.path, m.proc)
        if m.proc.poll() is None:
            srv.start()
            run_mailfs("sync", m.path)
        try:
            m.proc.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            pass
        if m.proc.poll() is None:
            problems.append("%s: the daemon did not stop at that step" % label)
            m.unmount()
        else:
            rc = cleanup_crashed(m)
            if rc != CRASH_EXIT:
                problems.append("%s: the daemon exited with %r, not %d:\n%s"
                                % (label, rc, CRASH_EXIT, m.stderr()[-3000:]))
            else:
                crashed += 1
        if not srv.running():
            srv.start()
        # recover: remount, redo what failed, sync
        m = mount()
        try:
            apply(m.path)
            rc, out, err = run_mailfs("sync", m.path)
            if rc != 0:
                # a failure, but see whether the state still converges
                problems.append("%s: the sync after the crash failed: %s" % (label, err))
                rc, out, err = run_mailfs("sync", m.path)
                assert rc == 0, "a second sync after the crash failed too: %s" % err
            got_tree = message_files(m.path)
        except AssertionError as e:
            problems.append("%s: %s" % (label, e))
            m.unmount()
            continue
        m.unmount()
        got, sent = final_check(label)
        if got != reference:
            problems.append("%s (%d local steps done before it): server differs from the "
                            "uninterrupted run:\n  got  %r\n  want %r"
                            % (label, done, summarize(got), summarize(reference)))
        if got_tree != tree:
            problems.append("%s: the tree differs from the uninterrupted run:\n  got  %r\n"
                            "  want %r" % (label, sorted(got_tree), sorted(tree)))
        if sent:
            problems.append("%s: a second sync still changed the server: %r" % (label, sent))
    print("crash test: %d kill points, %d crashed as asked, %.1f s (%.2f s each)"
          % (total, crashed, time.monotonic() - t0, (time.monotonic() - t0) / total))
    assert problems == [], "\n".join(problems)


def summarize(state):
    """{folder: [(flags, first words of the body)]} for messages."""
    out = {}
    for f, msgs in state.items():
        out[f] = [(fl, re.sub(rb"(?s).*?\r\n\r\n", b"", b, count=1)[:40]) for fl, b in msgs]
    return out
