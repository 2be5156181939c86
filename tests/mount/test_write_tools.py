"""Ordinary tools writing through the mount (issue 3, "What tools expect"):
cp -r of a tree of messages, mkdir -p, mv of many files, rm -r of a folder
with messages and subfolders, rsync -a into and out of the mount (a second
run sends nothing), cp -p keeping mtime. The server is checked with imaplib."""

import os
import subprocess

from mailfs_testlib import (SLOW, dovecot as srvlib, dt, expected_name, folder_bodies,
                            message_files, populate_basic, wait_server, wait_until,
                            while_alive, xattr)

SYNC = 10
PUSH = 10


def start(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    return c, expected, m


def run(*argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=120 * SLOW, **kw)
    assert r.returncode == 0, "%s: exit %d: %s" % (" ".join(map(str, argv)), r.returncode,
                                                   r.stderr)
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_tree(root, layout, mtime0=1700000000):
    """Write {relative path: message bytes} below root: files 0600 and
    directories 0700 (the modes mailfs shows), each file with its own mtime.
    Returns {relative path: mtime}."""
    mtimes = {}
    for i, (rel, body) in enumerate(sorted(layout.items())):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        with open(p, "wb") as f:
            f.write(body)
        os.chmod(p, 0o600)
        mtimes[rel] = mtime0 + 3600 * i
        os.utime(p, (mtimes[rel], mtimes[rel]))
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        os.chmod(dirpath, 0o700)
        os.utime(dirpath, (mtime0 - 86400, mtime0 - 86400))  # an old tree
    return mtimes


def messages(tag, n, folder_names=("",)):
    """{relative path: CRLF message} spread over the given subdirectories."""
    out = {}
    for i in range(n):
        sub = folder_names[i % len(folder_names)]
        body = "%s message %d.\nX-UNIQUE %s-%d\n" % (tag, i, tag, i)
        msg = srvlib.make_message("%s %d" % (tag, i), dt(2025, 6, 1 + i % 28, 8, i % 60), body)
        out[os.path.join(sub, "%s-%02d.eml" % (tag, i))] = msg
    return out


def server_folders(c):
    return set(srvlib.list_folders(c))


def test_cp_r_tree(account, mount, tmp_path):
    c, expected, m = start(account, mount)
    src = tmp_path / "import"
    layout = messages("tree", 9, ("", "sub", "sub/deeper"))
    # a message with bare LF line ends, as a tool may have written it
    layout["sub/lf.eml"] = srvlib.make_message("LF ends", dt(2025, 1, 1), "x\ny\n") \
        .replace(b"\r\n", b"\n")
    make_tree(src, layout)
    run("cp", "-r", src, m / "Archive/")
    want = {"Archive/import", "Archive/import/sub", "Archive/import/sub/deeper"}
    wait_until(while_alive(m, lambda: server_folders(c) >= want), PUSH * SLOW,
               what="cp -r made the folders on the server")
    for sub in ("", "sub", "sub/deeper"):
        folder = "Archive/import" + ("/" + sub if sub else "")
        bodies = [b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                  for rel, b in layout.items() if os.path.dirname(rel) == sub]
        wait_server(c, folder, bodies, PUSH * SLOW, mount=m)
        names = sorted(os.path.basename(rel) for rel in layout if os.path.dirname(rel) == sub)
        local = sorted(n for n in os.listdir(m / folder) if not os.path.isdir(m / folder / n))
        assert local == names, folder
    assert folder_bodies(c, "Archive") == [expected["Archive/" + expected_name(
        "Old thread", dt(2019, 5, 6, 7, 8))]]


def test_mkdir_p_mv_rm_r(account, mount, run_mailfs):
    c, expected, m = start(account, mount)
    run("mkdir", "-p", m / "Projects/2026/Q1")
    inbox = [b for p, b in expected.items() if p.startswith("Inbox/")]
    run("sh", "-c", 'mv "$1"/Inbox/*.eml "$1"/Projects/2026/Q1/', "sh", m.path)
    assert os.listdir(m / "Inbox") == []
    wait_server(c, "Projects/2026/Q1", inbox, PUSH * SLOW, mount=m)
    wait_server(c, "INBOX", [], PUSH * SLOW, mount=m)
    assert {"Projects", "Projects/2026", "Projects/2026/Q1"} <= server_folders(c)

    # rm -r: the messages and the folders go, and nothing else
    gone = [b for p, b in expected.items() if p.startswith("Archive/")]
    assert len(gone) == 3
    run("rm", "-r", m / "Archive")
    assert not os.path.exists(m / "Archive")
    wait_until(while_alive(m, lambda: not {"Archive", "Archive/2025"} & server_folders(c)),
               PUSH * SLOW, what="rm -r removed the folders on the server")
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    everything = [b for f in srvlib.list_folders(c) for b in folder_bodies(c, f)]
    assert not set(gone) & set(everything)
    assert sorted(everything) == sorted(b for p, b in expected.items()
                                        if not p.startswith("Archive/"))
    assert message_files(m.path) == {
        p.replace("Inbox/", "Projects/2026/Q1/"): b for p, b in expected.items()
        if not p.startswith("Archive/")}


def itemize(src, dst):
    """What a further `rsync -a --itemize-changes` reports: (lines about
    files, lines about directories)."""
    r = run("rsync", "-a", "--itemize-changes", src, dst)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    return ([ln for ln in lines if not ln[1:2] == "d"], [ln for ln in lines if ln[1:2] == "d"])


def assert_nothing_to_do(src, dst, what):
    files, dirs = itemize(src, dst)
    assert files == [], "%s: rsync -a sent files again:\n%s" % (what, "\n".join(files))
    assert dirs == [], "%s: rsync -a changes directories again (their times are not " \
        "kept):\n%s" % (what, "\n".join(dirs))


def test_rsync_both_ways(account, mount, run_mailfs, tmp_path):
    c, expected, m = start(account, mount)
    src = tmp_path / "src"
    layout = messages("rsync", 8, ("", "sub"))
    make_tree(src, layout)
    run("rsync", "-a", str(src) + "/", str(m / "Archive/Synced") + "/")
    for sub in ("", "sub"):
        folder = "Archive/Synced" + ("/" + sub if sub else "")
        wait_server(c, folder, [b for rel, b in layout.items()
                                if os.path.dirname(rel) == sub], PUSH * SLOW, mount=m)
    for rel, body in layout.items():
        p = m / "Archive/Synced" / rel
        wait_until(while_alive(m, lambda: xattr(p, "user.sync.state") == "synced"),
                   PUSH * SLOW, what="%s synced" % rel)
        assert read(p) == body
    # rsync's temporary files never became messages
    assert sorted(os.listdir(m / "Archive/Synced")) == sorted(
        [os.path.basename(r) for r in layout if os.path.dirname(r) == ""] + ["sub"])

    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    for sub in ("", "sub"):
        folder = "Archive/Synced" + ("/" + sub if sub else "")
        assert folder_bodies(c, folder) == sorted(b for rel, b in layout.items()
                                                  if os.path.dirname(rel) == sub)

    # out of the mount
    out_dir = tmp_path / "out"
    run("rsync", "-a", str(m.path) + "/", str(out_dir) + "/")
    files = message_files(str(out_dir))
    assert files == message_files(m.path)
    for rel in files:
        assert os.stat(out_dir / rel).st_mtime == os.stat(m / rel).st_mtime
    assert_nothing_to_do(str(m.path) + "/", str(out_dir) + "/", "out of the mount")
    # a second run into the mount sends nothing either
    assert_nothing_to_do(str(src) + "/", str(m / "Archive/Synced") + "/", "into the mount")
    for sub in ("", "sub"):
        folder = "Archive/Synced" + ("/" + sub if sub else "")
        assert folder_bodies(c, folder) == sorted(b for rel, b in layout.items()
                                                  if os.path.dirname(rel) == sub)


def test_cp_p_keeps_mtime(account, mount, run_mailfs, tmp_path):
    c, expected, m = start(account, mount)
    src = tmp_path / "kept.eml"
    body = srvlib.make_message("Kept time", dt(2026, 2, 2, 2, 2))
    src.write_bytes(body)
    when = 1600000000  # not the Date header's time
    os.utime(src, (when, when))
    run("cp", "-p", src, m / "Inbox/kept.eml")
    assert int(os.stat(m / "Inbox/kept.eml").st_mtime) == when
    wait_server(c, "INBOX", [b for p, b in expected.items() if p.startswith("Inbox/")] +
                [body], PUSH * SLOW, mount=m)
    wait_until(while_alive(m, lambda: xattr(m / "Inbox/kept.eml", "user.sync.state") ==
                           "synced"), PUSH * SLOW, what="synced")
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    assert int(os.stat(m / "Inbox/kept.eml").st_mtime) == when
    m.unmount()
    m = mount()
    assert int(os.stat(m / "Inbox/kept.eml").st_mtime) == when
    assert read(m / "Inbox/kept.eml") == body
