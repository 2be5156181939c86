"""Hostile folder names and message data from a scripted server (DESIGN
section 2: every name safe, stable and unique; section 3: the bytes as the
server has them). Real servers refuse to hold most of these; the scripted
one answers LIST and FETCH with them as they are."""

import base64
import os

import pytest

from imapserver import astring
from mailfs_testlib import (check_name, dovecot as srvlib, dt, message_files,
                            tree_identity, wait_until)
from protolib import (SYNC, Sandbox, assert_alive, assert_safe_tree, assert_store_paths,
                      paths_of, wait_contents)

DATE = dt(2025, 6, 1, 12, 0)

# Folder names as the server sends them (bytes, decoded from the wire form),
# how LIST encodes them (None: the server's choice of atom, quoted string or
# literal) and the delimiter.
HOSTILE_FOLDERS = [
    (b"..", None),
    (b".", None),
    (b"../../etc", None),
    (b"a/../../b", None),
    (b"/abs/path", None),
    (b"ctl\x01char", "quoted"),           # a control character in a quoted string
    (b"cr\rand\nlf", "literal"),           # CR and LF can only come as a literal
    (b"tab\tname\x7f", "literal"),
    (b"x" * 1000, None),
    (b"   ", None),                        # only spaces
    (b"&Jjo!", None),                      # invalid modified UTF-7
    (b"&AGEAYgBj-", None),                 # mUTF-7 that hides plain ASCII ("abc")
    (b"Calendar", None),
    (b"conflicts", None),
    (b"Conflicts", None),
    (b"dup\x01x", "quoted"),               # these three sanitize to one name
    (b"dup\x02x", "quoted"),
    (b"dup x", None),
    (b"raw 8-bit \xe9t\xe9", "literal"),   # Latin-1, not UTF-8 nor mUTF-7
    (b"bidi \xe2\x80\xaeevil", "literal"),  # raw UTF-8 with a right-to-left override
    (b"name.eml", None),
]


def add_hostile_folders(server, delim):
    """Every hostile folder (with delimiter delim) holding one message;
    returns {folder name: message}."""
    msgs = {}
    for i, (name, form) in enumerate(HOSTILE_FOLDERS):
        wire = None if form is None else astring(name, force=form)
        server.add_folder(name, delim=delim, wire=wire)
        msg = srvlib.make_message("hostile folder %d" % i, DATE, "folder %r\n" % name)
        server.append(name, msg)
        msgs[name] = msg
    return msgs


def add_good_folders(server):
    """INBOX and Good/Child, each with a message: {path in the mount: msg}."""
    server.add_folder("Good")
    server.add_folder("Good/Child")
    good = {}
    for folder, path in (("INBOX", "Inbox"), ("Good/Child", "Good/Child")):
        msg = srvlib.make_message("good in %s" % folder, DATE, "good %s\n" % folder)
        server.append(folder, msg)
        good[path] = msg
    return good


@pytest.mark.parametrize("delim", ["/", "."])
def test_hostile_folder_names(server, mount, mailfs_env, tmp_path, delim):
    msgs = add_hostile_folders(server, delim)
    good = add_good_folders(server)
    store = mailfs_env.store()
    mnt = tmp_path / "mnt"
    os.makedirs(mnt)
    sandbox = Sandbox(tmp_path, mnt, store)
    m = mount()

    # the good folders sync, and every hostile folder's message arrives once
    everything = list(msgs.values()) + list(good.values())
    files = wait_contents(m.path, everything, SYNC,
                          what="every message of every folder, each once")
    for path, msg in good.items():
        assert os.path.dirname(paths_of(files, msg)[0]) == path
    dirs = {}
    for name, msg in msgs.items():
        (p,) = paths_of(files, msg)
        dirs.setdefault(os.path.dirname(p), []).append(name)
    shared = {d: n for d, n in dirs.items() if len(n) > 1}
    assert not shared, "server folders share a directory: %r" % shared

    assert_safe_tree(m.path)
    assert os.listdir(m / "Conflicts") == [], "server mail landed in the local Conflicts/"
    assert_alive(m)
    sandbox.assert_unchanged()
    assert_store_paths(store)

    # stable across a remount
    ident = tree_identity(m.path)
    m.unmount()
    assert_store_paths(store)
    m2 = mount()
    wait_until(lambda: tree_identity(m2.path) == ident, SYNC,
               what="the same names, inodes and contents after a remount")
    assert server.writes() == []


def test_nul_in_folder_name(server, mount):
    """A NUL cannot be in a file name nor in a command mailfs sends: the
    folder may be left out, but nothing else suffers."""
    server.add_folder(b"nul\x00name", wire=b"{8}\r\nnul\x00name")
    server.append(b"nul\x00name", srvlib.make_message("in the NUL folder", DATE))
    good = add_good_folders(server)
    m = mount()
    files = wait_until(lambda: (lambda f: f if all(paths_of(f, b) for b in good.values())
                                else None)(message_files(m.path)),
                       SYNC, what="the good folders")
    assert_safe_tree(m.path)
    assert len(files) <= 3
    assert_alive(m)


@pytest.mark.parametrize("delim_wire, names", [
    (b"NIL", [b"nil/delim", b"nil.delim"]),
    (b'"::"', [b"multi::byte", b"multi"]),          # a delimiter must be one character
    (b'"\\\\"', [b"back\\slash", b"back"]),          # a backslash delimiter, escaped
    (b'"\xff"', [b"odd\xffchild", b"odd"]),          # an 8-bit delimiter
    (b'"&"', [b"amp&AOk-x", b"amp"]),                # the mUTF-7 shift character
])
def test_odd_delimiters(server, mount, delim_wire, names):
    msgs = {}
    for i, name in enumerate(names):
        server.add_folder(name, delim=None, delim_wire=delim_wire,
                          wire=astring(name, force="literal") if b"\xff" in name else None)
        msgs[name] = srvlib.make_message("odd delimiter %d" % i, DATE)
        server.append(name, msgs[name])
    inbox = srvlib.make_message("inbox", DATE)
    server.append("INBOX", inbox)
    m = mount()
    files = wait_contents(m.path, list(msgs.values()) + [inbox])
    dirs = [os.path.dirname(paths_of(files, msg)[0]) for msg in msgs.values()]
    assert len(set(dirs)) == len(dirs), "two folders share a directory: %r" % dirs
    assert_safe_tree(m.path)
    assert_alive(m)


# --- message data ------------------------------------------------------------------

def hostile_messages():
    every_ctl = bytes(c for c in range(0x20) if c != 0x0a) + b"\x7f"
    subjects = [
        b"every control: " + every_ctl + b" end",
        b"a/b/../../../etc/passwd",
        b"..",
        b"/",
        b"x" * 10240,                                               # a 10 KB subject
        b"=?utf-8?q?unterminated encoded word",
        b"=?utf-8?b?!!!not base64!!!?=",
        b"=?no-such-charset?q?abc?=",
        b"=?utf-8?b?" + base64.b64encode(b"\xff\xfe\x00bad utf-8\xc3") + b"?=",
        b"=?utf-8?q?nul=00and=0D=0Anewline?=",
        "Café Straße raw Latin-1".encode("latin-1"),
        b"=?utf-8?b?" + base64.b64encode("\u202egnp.exe".encode()) + b"?=",
    ]
    msgs = [srvlib.make_message(s, dt(2025, 6, 2, 8, i), "hostile subject %d\n" % i)
            for i, s in enumerate(subjects)]
    # NUL bytes, bare CR and 8-bit in the body
    msgs.append(srvlib.make_message("nul body", DATE, b"a\x00b\x00\x00c\r\rd\xff\n" * 50))
    # a header that never ends (no empty line) and no Date
    msgs.append(b"Subject: header only\r\nX-Weird: \x00\x01")
    # bare LF line ends throughout
    msgs.append(b"Subject: bare LF\nDate: Mon, 2 Jun 2025 09:00:00 +0000\n\nbody\n")
    # empty message (FETCH literal {0})
    msgs.append(b"")
    # a Date header far out of range
    msgs.append(srvlib.make_message("far future", "Fri, 31 Dec 99999 23:59:59 +9999"))
    return msgs


def test_hostile_message_data(server, mount, mailfs_env, tmp_path):
    msgs = hostile_messages()
    for msg in msgs:
        server.append("INBOX", msg)
    store = mailfs_env.store()
    mnt = tmp_path / "mnt"
    os.makedirs(mnt)
    sandbox = Sandbox(tmp_path, mnt, store)
    m = mount()
    files = wait_contents(m.path, msgs, what="every hostile message, byte for byte")
    for msg in msgs:
        (p,) = paths_of(files, msg)
        assert os.path.dirname(p) == "Inbox", p
        assert os.stat(m / p).st_size == len(msg), p
    assert_safe_tree(m.path)
    for p in files:
        check_name(os.path.basename(p), False)
    assert_alive(m)
    sandbox.assert_unchanged()
    assert_store_paths(store)
    ident = tree_identity(m.path)
    m.unmount()
    m2 = mount()
    wait_until(lambda: tree_identity(m2.path) == ident, SYNC,
               what="the same names and inodes after a remount")


def test_lying_rfc822_size(server, mount):
    """RFC822.SIZE is only a hint: the files have the size of what came."""
    lies = [0, 10, 4000000000, b"99999999999", b"-1", b"NIL"]
    msgs = []
    for i, lie in enumerate(lies):
        msg = srvlib.make_message("size lie %d" % i, dt(2025, 6, 3, 8, i), "x" * (100 * i))
        server.append("INBOX", msg, size=lie)
        msgs.append(msg)
    m = mount()
    files = wait_contents(m.path, msgs)
    for p, body in files.items():
        assert os.stat(m / p).st_size == len(body), p
        with open(m / p, "rb") as f:
            assert f.read() == body
    assert_alive(m)
