"""The tree a mount shows (DESIGN section 2): folders, names, bytes, dates,
modes, reserved names, hostile names, and what ordinary tools see. The server
side is read with imaplib, never through mailfs."""

import base64
import os
import re
import stat
import subprocess

from mailfs_testlib import (RESERVED, SLOW, check_name, date_of, dovecot as srvlib, dt,
                            expected_name, find_by_content, folder_dir, message_files,
                            populate_basic, server_flags_to_set, server_messages,
                            tree_identity, walk, wait_until)

SYNC = 10  # seconds an initial sync of a handful of messages may take


def wait_tree(mnt, expected, timeout=SYNC):
    """Wait until the mail files below mnt are exactly `expected`."""
    wait_until(lambda: message_files(mnt) == expected, timeout * SLOW,
               what="the mount shows exactly the server's messages")


def test_tree_matches_server(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)

    # the names, exactly, and every server message is one file with its bytes
    files = message_files(m.path)
    assert sorted(files) == sorted(expected)
    for folder, bodies in server_messages(c).items():
        d = folder_dir(folder)
        got = sorted(b for p, b in files.items() if os.path.dirname(p) == d)
        assert got == bodies, "folder %s differs from the server" % folder

    # directories: the folders, their parents, Conflicts/ (local, empty);
    # other reserved top-level trees may exist but hold no mail here
    entries = walk(m.path)
    dirs = {p for p, st in entries.items() if stat.S_ISDIR(st.st_mode)}
    want = {"Inbox", "Archive", "Archive/2025", "Sent", "Entwürfe", "Conflicts"}
    assert want <= dirs
    for extra in dirs - want:
        assert extra.split("/")[0] in RESERVED, "unexpected directory %r" % extra
    assert os.listdir(m / "Conflicts") == []

    uid, gid = os.getuid(), os.getgid()
    for rel, st in entries.items():
        check_name(os.path.basename(rel), stat.S_ISDIR(st.st_mode))
        assert (st.st_uid, st.st_gid) == (uid, gid), rel
        if stat.S_ISDIR(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o700, "%s: %o" % (rel, st.st_mode)
        else:
            assert stat.S_ISREG(st.st_mode), rel
            assert stat.S_IMODE(st.st_mode) == 0o600, "%s: %o" % (rel, st.st_mode)
            assert st.st_size == len(expected[rel]), rel
            assert int(st.st_mtime) == date_of(expected[rel]), rel
    root = os.stat(m.path)
    assert stat.S_IMODE(root.st_mode) == 0o700
    assert (root.st_uid, root.st_gid) == (uid, gid)


def test_flags_xattr(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    for folder in srvlib.list_folders(c):
        for uid, (flags, body) in srvlib.fetch_all(c, folder).items():
            (path,) = find_by_content(expected, body)
            got = os.getxattr(m / path, "user.mail.flags").decode()
            assert set(got.split()) == server_flags_to_set(flags), path
            assert got == got.strip() and "  " not in got and "\\" not in got
    r = subprocess.run(["getfattr", "--only-values", "-n", "user.mail.flags",
                        m / "Inbox" / expected_name("Grüße aus Köln", dt(2026, 1, 2, 3, 4))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == {"flagged", "$Forwarded"}
    # no flags: an empty value, not an error
    empty = os.getxattr(m / "Archive/2025" / expected_name("Invoice 2025-002",
                                                          dt(2025, 3, 3, 4, 5)),
                        "user.mail.flags")
    assert empty.strip() == b""


def test_ordinary_tools(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)

    def run(*argv):
        r = subprocess.run(list(argv), capture_output=True, timeout=30 * SLOW)
        assert r.returncode == 0, (argv, r.stderr)
        return r.stdout.decode()

    ls = run("ls", "-la", m / "Inbox")
    for name in ("Quarterly report", "Lunch?", "Grüße aus Köln"):
        assert name in ls
    assert sorted(run("ls", m / "Archive").splitlines()) == sorted(
        ["2025", expected_name("Old thread", dt(2019, 5, 6, 7, 8))])
    found = run("find", m.path, "-type", "f", "-name", "*.eml").splitlines()
    assert sorted(os.path.relpath(p, m.path) for p in found) == sorted(expected)
    for rel, body in expected.items():
        r = subprocess.run(["cat", m / rel], capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout == body, rel
    hit = run("grep", "-r", "-l", "UNIQUE-TOKEN-4", m.path).split("\n")[0]
    assert os.path.relpath(hit, m.path) == "Archive/2025/" + expected_name(
        "Invoice 2025-001", dt(2025, 2, 3, 4, 5))
    assert len(run("grep", "-r", "-l", "UNIQUE-TOKEN", m.path).splitlines()) == len(expected)
    rel = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
    st = run("stat", "-c", "%s %a %u %g %Y %F", m / rel).split()
    assert st[:5] == [str(len(expected[rel])), "600", str(os.getuid()), str(os.getgid()),
                      str(date_of(expected[rel]))]
    assert run("stat", "-c", "%a %F", m / "Archive/2025").split()[0] == "700"
    # copying out gives the same bytes
    out = os.path.join(os.path.dirname(m.path), "copied.eml")
    run("cp", m / rel, out)
    with open(out, "rb") as f:
        assert f.read() == expected[rel]


def test_non_ascii_subjects(account, mount):
    c = account.client()
    c.select("INBOX")
    cases = [
        # (Subject header as bytes, the name's subject part)
        (b"=?utf-8?b?" + base64.b64encode("Grüße aus Köln".encode()) + b"?=", "Grüße aus Köln"),
        (b"=?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=", "Café crème"),
        (b"=?iso-8859-1?q?Stra=DFe?=", "Straße"),
        (b"=?utf-8?b?5pel5pys6Kqe?= =?utf-8?b?44Gu44Oh44O844Or?=", "日本語のメール"),
        ("Ünïcødé raw".encode(), "Ünïcødé raw"),   # raw 8-bit UTF-8 in the header
        (b"Emoji =?utf-8?q?=F0=9F=93=A7?= inside", "Emoji 📧 inside"),
    ]
    expected = {}
    for i, (subj, shown) in enumerate(cases):
        date = dt(2025, 7, 1, 9, i)
        msg = srvlib.make_message(subj, date, "non-ascii %d\n" % i)
        srvlib.append(c, "INBOX", msg)
        expected["Inbox/" + expected_name(shown, date)] = msg
    m = mount()
    wait_tree(m.path, expected)


def test_non_ascii_folders(account, mount):
    c = account.client()
    c.select("INBOX")
    names = {"Entw&APw-rfe": "Entwürfe", "&ZeVnLIqe-": "日本語",
             "Gel&APY-scht/Unterordner &AOQ-": "Gelöscht/Unterordner ä"}
    expected = {}
    for i, (wire, shown) in enumerate(names.items()):
        if "/" in wire:
            assert c.create(wire.split("/")[0])[0] == "OK"
        assert c.create('"%s"' % wire)[0] == "OK"
        date = dt(2025, 8, 1, 10, i)
        msg = srvlib.make_message("in %s" % shown.split("/")[-1], date)
        srvlib.append(c, shown, msg)
        expected[shown + "/" + expected_name("in %s" % shown.split("/")[-1], date)] = msg
    m = mount()
    wait_tree(m.path, expected)
    assert sorted(os.listdir(m / "Gelöscht")) == ["Unterordner ä"]


def test_hostile_subjects(account, mount, tmp_path):
    c = account.client()
    c.select("INBOX")
    date = dt(2025, 9, 9, 9, 9)
    subjects = [
        b"a/b/../../../etc/passwd",
        b"..",
        b".",
        b"/",
        b"ctl \x01\x07\x1b[31m red\x7f end",
        b"tab\there",
        b"=?utf-8?b?" + base64.b64encode(b"nul\x00inside\r\nInjected: yes") + b"?=",
        b"x" * 400,
        "ü".encode() * 200,                              # 400 bytes, cut on a character
        "日本".encode() * 70,                            # 420 bytes of 3-byte characters
        "\u202egnp.exe".encode(),                       # right-to-left override
        b"=?utf-8?b?" + base64.b64encode("\u2066iso\u2069 \u200fmark".encode()) + b"?=",
        b"\xff\xfe invalid utf-8 \xc3",
        b"   padded   ",
        b"",
        None,                                           # no Subject at all
        b"=?utf-8?b?broken base64!!?=",
        b"name.eml",
        b"trailing dot.",
    ]
    msgs = []
    for i, s in enumerate(subjects):
        msg = srvlib.make_message(s, date, "hostile %d\n" % i)
        srvlib.append(c, "INBOX", msg)
        msgs.append(msg)
    # and one without a Date header
    nodate = srvlib.make_message(b"no date", None, "hostile no date\n")
    srvlib.append(c, "INBOX", nodate)
    msgs.append(nodate)

    parent = os.path.dirname(str(tmp_path / "mnt"))
    before = set(os.listdir(parent))
    m = mount()
    wait_until(lambda: len(os.listdir(m / "Inbox")) == len(msgs), SYNC * SLOW,
               what="every hostile message listed")
    files = message_files(m.path)
    assert len(files) == len(msgs)
    for msg in msgs:
        (path,) = find_by_content(files, msg)
        assert os.path.dirname(path) == "Inbox", path
    for rel, st in walk(m.path).items():
        check_name(os.path.basename(rel), stat.S_ISDIR(st.st_mode))
        real = os.path.realpath(os.path.join(m.path, rel))
        assert real.startswith(m.path + "/"), rel
    # every dated one (the long ones too: cut, not dropped) starts with its date
    for rel, body in files.items():
        if body != nodate:
            assert os.path.basename(rel).startswith("2025-09-09 09.09 "), rel
    ours = re.compile(r"^(mnt|mailfs-\d+\.stderr)$")  # the fixture's own
    assert {n for n in os.listdir(parent) if not ours.match(n)} == before, \
        "files appeared next to the mount point"


def test_same_subject_and_date_get_unique_names(account, mount):
    c = account.client()
    c.select("INBOX")
    date = dt(2025, 10, 10, 10, 10)
    msgs = [srvlib.make_message("Same", date, "copy %d\n" % i) for i in range(3)]
    for msg in msgs:
        srvlib.append(c, "INBOX", msg)
    m = mount()
    names = {expected_name("Same", date, n) for n in (1, 2, 3)}
    wait_until(lambda: set(os.listdir(m / "Inbox")) == names, SYNC * SLOW,
               what="three unique names")
    files = message_files(m.path)
    assert sorted(files.values()) == sorted(msgs)
    ident = tree_identity(m.path)
    m.unmount()
    m2 = mount()
    wait_until(lambda: tree_identity(m2.path) == ident, SYNC * SLOW,
               what="the same names, inodes and contents after a remount")


def test_reserved_folder_names(account, mount):
    c = account.client()
    c.select("INBOX")
    expected = {}
    for i, name in enumerate(RESERVED):
        assert c.create(name)[0] == "OK"
        date = dt(2025, 11, 1, 8, i)
        msg = srvlib.make_message("mail in %s" % name, date)
        srvlib.append(c, name, msg)
        expected["%s (mail)/%s" % (name, expected_name("mail in %s" % name, date))] = msg
    assert c.create("Calendar/Sub")[0] == "OK"
    sub = srvlib.make_message("sub", dt(2025, 11, 2, 8, 0))
    srvlib.append(c, "Calendar/Sub", sub)
    expected["Calendar (mail)/Sub/" + expected_name("sub", dt(2025, 11, 2, 8, 0))] = sub

    m = mount()
    wait_tree(m.path, expected)
    assert os.path.isdir(m / "Conflicts") and os.listdir(m / "Conflicts") == []
    ident = tree_identity(m.path)
    m.unmount()
    m2 = mount()
    wait_until(lambda: tree_identity(m2.path) == ident, SYNC * SLOW,
               what="the same names after a remount")


def test_hostile_folder_names(account, mount):
    """Folder names Dovecot accepts that are awkward as directory names: each
    folder's message must show up exactly once, in its own directory, with
    safe names throughout."""
    c = account.client()
    c.select("INBOX")
    folders = ["...", ".hidden", " lead", "trail ", "trail", "x\u2215y", "a\\b", 'q"uote',
               "*", "%", "name.eml", "\u202eevil", "a" * 200, "Conflicts",
               "Conflicts (mail)", "INBOX/sub"]
    msgs = {}
    for i, f in enumerate(folders):
        typ, data = c.create(srvlib.mailbox_arg(f))
        assert typ == "OK", (f, data)
        msg = srvlib.make_message("in folder %d" % i, dt(2025, 12, 1, 0, i))
        srvlib.append(c, f, msg)
        msgs[f] = msg
    m = mount()
    wait_until(lambda: len(message_files(m.path)) == len(folders), SYNC * SLOW,
               what="one file per folder")
    files = message_files(m.path)
    dirs = set()
    for f, msg in msgs.items():
        (path,) = find_by_content(files, msg)
        dirs.add(os.path.dirname(path))
    assert len(dirs) == len(folders), "two server folders share a directory"
    for rel, st in walk(m.path).items():
        check_name(os.path.basename(rel), stat.S_ISDIR(st.st_mode))
    # these are safe as they are and keep their names
    for f in ("...", ".hidden", "x\u2215y", "a\\b", 'q"uote', "*", "%", "a" * 200):
        assert os.path.isdir(m / f), f
    assert os.path.dirname(find_by_content(files, msgs["INBOX/sub"])[0]) == "Inbox/sub"
