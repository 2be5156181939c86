"""Per-folder sync modes (issue 5, DESIGN sections 4 and 5): user.sync.mode
and its defaults, config sync_mode, what headers mode keeps (checked part by
part against the server's BODY[HEADER] and BODY[n]), the whole message
fetched on a read while online and the partial one served offline (cat, cp
and stat agreeing at every moment), the transitions between modes, the
recursive setting, the values refused, the status attributes, and which
folder syncs first. The server is checked with imaplib."""

import datetime
import email
import email.policy
import errno
import os
import re
import shutil
import subprocess
import time

import pytest

from mailfs_testlib import (ASAN, MAILFS_BIN, SLOW, cpu_seconds, dovecot as srvlib, dt,
                            expected_name, folder_bodies, message_files, mime_alternative,
                            mime_html_attachment, mime_mixed, mime_signed, mime_single_pdf,
                            populate_basic, server_fetch, server_state, server_uid_by_mid,
                            message_id, setxattr_errno, wait_server, wait_until, while_alive,
                            xattr)

SYNC = 20   # s: an initial sync of a small account
PUSH = 10   # s: a local change on the server
MAIL_DIRS = ("Inbox", "Archive", "Archive/2025", "Sent", "Entwürfe")


# --- helpers ---------------------------------------------------------------------------

def read(path):
    with open(path, "rb") as f:
        return f.read()


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


def mode(m, rel):
    return xattr(m / rel, "user.sync.mode")


def state(path):
    return xattr(path, "user.sync.state")


def file_of(m, folder, subject):
    """The path of the one file in folder whose name holds subject."""
    names = [n for n in os.listdir(m / folder) if subject in n]
    assert len(names) == 1, "%r in %s: %r" % (subject, folder, os.listdir(m / folder))
    return m / folder / names[0]


def emls(path):
    """The message files of a directory (names ending .eml)."""
    return [n for n in os.listdir(path) if n.endswith(".eml")]


def wait_folder_synced(m, rel, count=None, timeout=SYNC):
    """Until the folder has been synced once (user.sync.last is a time)
    and, with count, holds that many files."""
    def done():
        if xattr(m / rel, "user.sync.last") == "never":
            return False
        return count is None or len(emls(m / rel)) == count
    wait_until(while_alive(m, done), timeout * SLOW, interval=0.05,
               what="folder %s synced%s" % (rel, "" if count is None else " with %d files" % count))


def set_online(m, online):
    os.setxattr(m.path, "user.mailfs.mode", b"online" if online else b"offline")


def agree(path, tmp_path, first="cat"):
    """stat, then read with cat and cp (`first` reads first), then stat
    again: every size and both contents must agree. Returns the bytes."""
    size0 = os.stat(path).st_size
    out = tmp_path / ("cp-" + os.path.basename(str(path)))

    def by_cat():
        r = subprocess.run(["cat", str(path)], capture_output=True, timeout=60 * SLOW)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def by_cp():
        r = subprocess.run(["cp", str(path), str(out)], capture_output=True, timeout=60 * SLOW)
        assert r.returncode == 0, r.stderr
        data = out.read_bytes()
        out.unlink()
        return data

    if first == "cat":
        a = by_cat()
        b = by_cp()
    else:
        b = by_cp()
        a = by_cat()
    size1 = os.stat(path).st_size
    name = os.path.basename(str(path))
    assert len(a) == size0, "%s: stat said %d bytes before the read, cat gave %d" % (
        name, size0, len(a))
    assert a == b, "%s: cat gave %d bytes, cp %d" % (name, len(a), len(b))
    assert size1 == len(a), "%s: stat says %d after the read, cat gave %d" % (
        name, size1, len(a))
    return a


def server_parts(c, folder, msg, sections):
    """{section: bytes} of the server's copy of msg (found by Message-ID),
    plus "SIZE" (RFC822.SIZE), "HEADER" and "" (BODY[])."""
    uid = server_uid_by_mid(c, folder)[message_id(msg)]
    out = {"SIZE": server_fetch(c, folder, uid, "RFC822.SIZE"),
           "HEADER": server_fetch(c, folder, uid, "BODY.PEEK[HEADER]"),
           "": server_fetch(c, folder, uid, "BODY.PEEK[]")}
    for s in sections:
        out[s] = server_fetch(c, folder, uid, "BODY.PEEK[%s]" % s)
    return out


def parsed(data):
    """The message parsed by Python's email package; fails on defects."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    bad = [(p.get_content_type(), p.defects) for p in msg.walk() if p.defects]
    assert not bad, "the file is not a valid MIME message: %r" % bad
    return msg


def header_without_content_fields(header):
    """A header block without its Content-Type and Content-Transfer-Encoding
    fields (folded lines included) and without the blank line."""
    out, skipping = [], False
    for line in header.split(b"\r\n"):
        if line == b"":
            break
        if line[:1] not in (b" ", b"\t"):
            skipping = re.match(rb"(?i)content-(type|transfer-encoding):", line) is not None
        if not skipping:
            out.append(line + b"\r\n")
    return b"".join(out)


def make_folder(c, name):
    assert c.create(srvlib.mailbox_arg(name))[0] == "OK"


# --- defaults and the config ---------------------------------------------------------

def test_default_modes(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    assert mode(m, "Inbox") == "full"
    for d in ("Archive", "Archive/2025", "Sent", "Entwürfe"):
        assert mode(m, d) == "headers", d
    assert mode(m, "Conflicts") == "off"
    # a folder made here is a mail folder like the others
    os.mkdir(m / "Made here")
    assert mode(m, "Made here") == "headers"
    # listed, readable; the root has no folder attributes
    for d in ("Inbox", "Archive"):
        names = set(os.listxattr(m / d))
        assert {"user.sync.mode", "user.sync.state", "user.sync.last",
                "user.sync.pending"} <= names, names
    assert errno_of(os.getxattr, m.path, "user.sync.mode") == errno.ENODATA
    # small messages are whole in every mode
    for rel in expected:
        assert state(m / rel) == "synced", rel


@pytest.mark.parametrize("cfg", ["full", "headers", "off"])
def test_config_sync_mode(dovecot, mailfs_env, mount, run_mailfs, cfg):
    mailfs_env.configure(dovecot, sync_mode=cfg)
    c = dovecot.client()
    expected = populate_basic(c)
    big = mime_mixed("Big one", dt(2026, 3, 3, 3, 3))
    srvlib.append(c, "Sent", big)
    m = mount()
    if cfg == "off":
        wait_until(lambda: all(os.path.isdir(m / d) for d in MAIL_DIRS), SYNC * SLOW,
                   what="folders listed")
        rc, out, err = run_mailfs("sync", m.path)
        assert rc == 0, err
        assert message_files(m.path) == {}, "sync_mode = off downloaded messages"
    else:
        for d in MAIL_DIRS:
            want = len([p for p in expected if os.path.dirname(p) == d]) + (d == "Sent")
            wait_folder_synced(m, d, want)
        big_path = file_of(m, "Sent", "Big one")
        # (read nothing before this: a read while online fetches it whole)
        assert state(big_path) == ("synced" if cfg == "full" else "partial")
        for rel in expected:
            assert state(m / rel) == "synced", rel  # small ones: whole in every mode
    # set: every mail folder, Inbox too; the effective mode is what reads
    for d in MAIL_DIRS:
        assert mode(m, d) == cfg, d
    assert mode(m, "Conflicts") == "off"
    # a folder's own setting beats the config, and lasts
    other = "headers" if cfg != "headers" else "full"
    os.setxattr(m / "Sent", "user.sync.mode", other.encode())
    assert mode(m, "Sent") == other
    m.unmount()
    mailfs_env.configure(dovecot)  # sync_mode unset again
    m = mount()
    assert mode(m, "Sent") == other
    assert mode(m, "Inbox") == "full" and mode(m, "Archive") == "headers"


def test_config_sync_mode_bad_value(dovecot, mailfs_env, mount):
    mailfs_env.configure(dovecot, sync_mode="fullx")
    rc, text = mount.expect_failure()
    assert "sync_mode" in text and mailfs_env.config_path in text, text


# --- what headers mode keeps -----------------------------------------------------------

def test_headers_mode_content(account, mount, tmp_path):
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    msgs = {
        "mixed": mime_mixed("Report with attachment", dt(2026, 5, 1, 9, 0)),
        "alternative": mime_alternative("Newsletter", dt(2026, 5, 2, 9, 0)),
        "pdf": mime_single_pdf("Scanned document", dt(2026, 5, 3, 9, 0)),
        "html": mime_html_attachment("Photos", dt(2026, 5, 4, 9, 0)),
        "signed": mime_signed("Signed statement", dt(2026, 5, 5, 9, 0)),
        "small": srvlib.make_message("Small note", dt(2026, 5, 6, 9, 0), "Just a line.\n"),
    }
    subjects = {"mixed": "Report with attachment", "alternative": "Newsletter",
                "pdf": "Scanned document", "html": "Photos", "signed": "Signed statement",
                "small": "Small note"}
    for k, msg in msgs.items():
        srvlib.append(c, "Archive", msg)
    before = server_state(c)
    srv = {
        "mixed": server_parts(c, "Archive", msgs["mixed"], ["1.1", "1.1.MIME"]),
        "alternative": server_parts(c, "Archive", msgs["alternative"], ["1", "1.MIME"]),
        "pdf": server_parts(c, "Archive", msgs["pdf"], []),
        "html": server_parts(c, "Archive", msgs["html"], ["1", "1.MIME"]),
        "signed": server_parts(c, "Archive", msgs["signed"], []),
        "small": server_parts(c, "Archive", msgs["small"], []),
    }
    assert srv["signed"]["SIZE"] > 16 << 10, "the signed message must be big to mean anything"

    m = mount()
    wait_folder_synced(m, "Archive", len(msgs))
    assert mode(m, "Archive") == "headers"
    path = {k: file_of(m, "Archive", s) for k, s in subjects.items()}
    partial = ("mixed", "alternative", "pdf", "html")
    for k in partial:
        assert state(path[k]) == "partial", k
    assert state(path["signed"]) == "synced", "a signed message is kept whole"
    assert state(path["small"]) == "synced", "a message under 16 KiB is kept whole"
    # online: the whole size (what a read gives then), no read needed
    for k in msgs:
        assert os.stat(path[k]).st_size == srv[k]["SIZE"], k

    # offline: what is kept here, byte for byte what the server has of it
    set_online(m, False)
    assert xattr(m.path, "user.mailfs.mode") == "offline"
    got = {k: agree(path[k], tmp_path) for k in msgs}
    for k in partial:
        assert state(path[k]) == "partial", k
        assert len(got[k]) < srv[k]["SIZE"], k

    # mixed: header, the plain part (1.1) with its MIME header, a note naming
    # the attachment; nothing of the attachment itself
    data, s = got["mixed"], srv["mixed"]
    assert data.startswith(s["HEADER"]), "the header is not the server's BODY[HEADER]"
    rest = data[len(s["HEADER"]):]
    assert rest.startswith(b"--outer=_1\r\n" + s["1.1.MIME"] + s["1.1"] + b"\r\n--outer=_1\r\n"), \
        "the text part is not the server's BODY[1.1]:\n%r" % rest[:600]
    msg = parsed(data)
    parts = msg.get_payload()
    assert msg.get_content_type() == "multipart/mixed" and len(parts) == 2
    assert parts[0].get_content_type() == "text/plain"
    assert parts[0].get_payload(decode=True) == s["1.1"]
    note = parts[1].get_payload(decode=True)
    assert parts[1].get_content_type() == "text/plain"
    assert b"report.pdf" in note, note
    assert b"text/html" in note.lower() or b"TEXT/HTML" in note, note
    assert data.rstrip(b"\r\n").endswith(b"--outer=_1--")
    assert len(data) < 4000, "attachment bytes downloaded in headers mode"

    # alternative: the plain alternative kept, the HTML one left out
    data, s = got["alternative"], srv["alternative"]
    assert data == (s["HEADER"] + b"--alt=_3\r\n" + s["1.MIME"] + s["1"] + b"\r\n"
                    b"--alt=_3--\r\n"), data[:2000]
    msg = parsed(data)
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain"]

    # single part PDF: the header (without its content fields) and a note
    data, s = got["pdf"], srv["pdf"]
    msg = parsed(data)
    assert msg.get_content_type() == "text/plain"
    head, _, body = data.partition(b"\r\n\r\n")
    assert header_without_content_fields(s["HEADER"]) == \
        header_without_content_fields(head + b"\r\n\r\n"), "header fields changed"
    assert b"scan.pdf" in body and b"pdf" in body.lower(), body
    assert len(data) < 4000

    # HTML only: the HTML part is the text kept, the zip is named
    data, s = got["html"], srv["html"]
    assert data.startswith(s["HEADER"] + b"--mix=_4\r\n" + s["1.MIME"] + s["1"] +
                           b"\r\n--mix=_4\r\n"), data[:2000]
    msg = parsed(data)
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/html", "text/plain"]
    assert b"photos.zip" in parts[1].get_payload(decode=True)

    # kept whole
    assert got["signed"] == srv["signed"][""]
    assert got["small"] == srv["small"][""]

    # online again: the whole size at once; the first read fetches it whole
    set_online(m, True)
    assert xattr(m.path, "user.mailfs.mode") == "online"
    for k in msgs:
        assert os.stat(path[k]).st_size == srv[k]["SIZE"], \
            "%s: size right after going online" % k
    for k in partial:
        t = time.monotonic()
        data = agree(path[k], tmp_path, first="cp" if k in ("mixed", "html") else "cat")
        took = time.monotonic() - t
        assert data == srv[k][""], "%s: read while online is not the whole message" % k
        assert state(path[k]) == "synced", k
        assert took < 6 * SLOW, "%s: the read waited %.1f s" % (k, took)
    # kept whole from now on, also offline
    set_online(m, False)
    for k in msgs:
        assert state(path[k]) == "synced", k
        assert agree(path[k], tmp_path) == srv[k][""], k
    set_online(m, True)
    # nothing changed on the server (no \Seen from the reads, nothing added)
    assert server_state(c) == before


def test_sizes_agree_right_after_switching(account, mount, tmp_path):
    """Many partial messages: right after each switch every file's stat
    agrees with what a read gives (the kernel's cached sizes and pages of
    every partial message are dropped before the switch returns)."""
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    msgs = [mime_mixed("Batch %02d" % i, dt(2026, 6, 1, 8, i), attach_size=24_000)
            for i in range(40)]
    account.append_many("Archive", msgs)
    m = mount()
    wait_folder_synced(m, "Archive", len(msgs))
    names = sorted(os.listdir(m / "Archive"))
    whole = {message_id(x): x for x in msgs}
    for n in names:
        assert state(m / "Archive" / n) == "partial", n
    # fill the kernel's caches with the whole sizes
    sizes_online = {n: os.stat(m / "Archive" / n).st_size for n in names}
    set_online(m, False)
    bad = []
    for n in names:
        p = m / "Archive" / n
        st = os.stat(p).st_size
        data = read(p)
        if st != len(data) or st == sizes_online[n]:
            bad.append("%s: stat %d, read %d (whole %d)" % (n, st, len(data), sizes_online[n]))
    assert not bad, "right after going offline:\n" + "\n".join(bad)
    # now the partial pages are cached too; back online
    set_online(m, True)
    bad = []
    for n in names[:10]:
        p = m / "Archive" / n
        st = os.stat(p).st_size
        data = read(p)
        want = whole[message_id(data)] if message_id(data) in whole else None
        if st != len(data) or data != want:
            bad.append("%s: stat %d, read %d, whole %d" % (n, st, len(data),
                                                          len(want or b"")))
    assert not bad, "right after going online:\n" + "\n".join(bad)


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_append_to_partial_message(account, mount, online):
    """`echo ... >> file` on a message kept in part: the server must never
    lose the parts it has that are not here (the attachment), nor get
    bytes nobody wrote. Online the whole message is what is appended to;
    offline the write may be refused, or must end up on the whole one."""
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    msg = mime_mixed("Edit me", dt(2026, 6, 2, 8, 0), attach_size=60_000)
    srvlib.append(c, "Archive", msg)
    m = mount()
    wait_folder_synced(m, "Archive", 1)
    p = file_of(m, "Archive", "Edit me")
    assert state(p) == "partial"
    if not online:
        set_online(m, False)
    extra = b"P.S. added by hand\r\n"
    try:
        with open(p, "ab") as f:
            f.write(extra)
        refused = None
    except OSError as e:
        refused = e.errno
    if not online:
        set_online(m, True)
    time.sleep(1)
    wait_until(while_alive(m, lambda: xattr(m / "Archive", "user.sync.pending") == "0"),
               PUSH * SLOW, what="nothing pending")
    on_server = folder_bodies(c, "Archive")
    assert len(on_server) == 1, "%d messages on the server" % len(on_server)
    if refused is not None:
        assert not online, "a write to a message online was refused: errno %d" % refused
        assert on_server == [msg], "the write was refused, yet the server changed"
        return
    got = on_server[0]
    assert b"\0" not in got, "the server got NUL bytes nobody wrote (%d of %d)" % (
        got.count(b"\0"), len(got))
    assert got == msg + extra, ("the server's message is not the whole one plus the "
                                "appended line: %d bytes, attachment %s"
                                % (len(got), "kept" if b"report.pdf" in got and
                                   len(got) > 60_000 else "lost"))
    assert read(p) == got


def test_uidvalidity_change_in_headers_folder(account, mount, run_mailfs):
    """The folder is made again on the server with the same messages: the
    ones kept in part keep their names and inodes, once each."""
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    msgs = [mime_mixed("Again %d" % i, dt(2026, 6, 3, 8, i), attach_size=40_000)
            for i in range(3)] + [srvlib.make_message("Small again", dt(2026, 6, 3, 9, 0))]
    for x in msgs:
        srvlib.append(c, "Archive", x)
    m = mount()
    wait_folder_synced(m, "Archive", len(msgs))
    before = {n: os.stat(m / "Archive" / n).st_ino for n in emls(m / "Archive")}
    states = {n: state(m / "Archive" / n) for n in before}
    assert sorted(states.values()) == ["partial"] * 3 + ["synced"]
    uidv = lambda: int(re.search(rb"UIDVALIDITY (\d+)",  # noqa: E731
                                 c.status('"Archive"', "(UIDVALIDITY)")[1][0]).group(1))
    v1 = uidv()
    c.select("INBOX")
    assert c.delete('"Archive"')[0] == "OK"
    assert c.create('"Archive"')[0] == "OK"
    for x in msgs:
        srvlib.append(c, "Archive", x)
    assert uidv() != v1
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    rc, out, err = run_mailfs("sync", m.path, "Archive")
    assert rc == 0, err
    after = {n: os.stat(m / "Archive" / n).st_ino for n in emls(m / "Archive")}
    assert after == before, "names or inodes changed: %r -> %r" % (before, after)
    assert {n: state(m / "Archive" / n) for n in after} == states
    assert srvlib.count(c, "Archive") == len(msgs)


# --- transitions -------------------------------------------------------------------------

def _partial_setup(account, mount, folders=("Archive",), n=3):
    c = account.client()
    c.select("INBOX")
    msgs = {}
    for f in folders:
        make_folder(c, f)
        msgs[f] = [mime_mixed("%s %d" % (f, i), dt(2026, 7, 1, 10, i), attach_size=60_000)
                   for i in range(n)]
        account.append_many(f, msgs[f])
    m = mount()
    for f in folders:
        wait_folder_synced(m, f, n)
        for name in os.listdir(m / f):
            assert state(m / f / name) == "partial", name
    return c, m, msgs


def _wait_all_whole(m, folder, timeout=8):
    def whole():
        return all(state(m / folder / n) == "synced" for n in os.listdir(m / folder))
    wait_until(while_alive(m, whole), timeout * SLOW,
               what="every message in %s whole, without being read" % folder)


def _check_whole_offline(m, folder, msgs, tmp_path):
    set_online(m, False)
    try:
        want = sorted(msgs)
        got = sorted(agree(m / folder / n, tmp_path) for n in os.listdir(m / folder))
        assert got == want, "%s offline is not the whole messages" % folder
    finally:
        set_online(m, True)


def test_headers_to_full_downloads_missing(account, mount, tmp_path):
    c, m, msgs = _partial_setup(account, mount)
    os.setxattr(m / "Archive", "user.sync.mode", b"full")
    assert mode(m, "Archive") == "full"
    _wait_all_whole(m, "Archive")
    _check_whole_offline(m, "Archive", msgs["Archive"], tmp_path)


def test_headers_to_full_recursive_from_root(account, mount, tmp_path):
    c, m, msgs = _partial_setup(account, mount, folders=("Archive", "Sent"), n=2)
    os.setxattr(m.path, "user.sync.mode.recursive", b"full")
    for f in ("Archive", "Sent", "Inbox"):
        assert mode(m, f) == "full"
    for f in ("Archive", "Sent"):
        _wait_all_whole(m, f)
        _check_whole_offline(m, f, msgs[f], tmp_path)


def test_headers_to_full_set_while_offline(account, mount, tmp_path):
    c, m, msgs = _partial_setup(account, mount)
    set_online(m, False)
    os.setxattr(m / "Archive", "user.sync.mode", b"full")
    time.sleep(0.5)
    for n in os.listdir(m / "Archive"):
        assert state(m / "Archive" / n) == "partial", "offline, yet downloaded"
    # back online: the catch-up brings what the new mode asks for
    set_online(m, True)
    _wait_all_whole(m, "Archive")
    _check_whole_offline(m, "Archive", msgs["Archive"], tmp_path)


def test_full_to_headers_keeps_whole(account, mount, run_mailfs, tmp_path):
    c = account.client()
    c.select("INBOX")
    old = [mime_mixed("Inbox %d" % i, dt(2026, 8, 1, 10, i), attach_size=60_000)
           for i in range(2)]
    account.append_many("INBOX", old)
    m = mount()
    wait_folder_synced(m, "Inbox", 2)
    for n in os.listdir(m / "Inbox"):
        assert state(m / "Inbox" / n) == "synced"
    os.setxattr(m / "Inbox", "user.sync.mode", b"headers")
    assert mode(m, "Inbox") == "headers"
    new = mime_mixed("Inbox new", dt(2026, 8, 2, 10, 0), attach_size=60_000)
    srvlib.append(c, "INBOX", new)
    rc, out, err = run_mailfs("sync", m.path, "Inbox")
    assert rc == 0, err
    wait_until(lambda: len(os.listdir(m / "Inbox")) == 3, PUSH * SLOW, what="new message")
    new_path = file_of(m, "Inbox", "Inbox new")
    assert state(new_path) == "partial", "a new message in a headers folder"
    set_online(m, False)
    for i, msg in enumerate(old):
        p = file_of(m, "Inbox", "Inbox %d" % i)
        assert state(p) == "synced", "a whole message became partial"
        assert agree(p, tmp_path) == msg
    assert len(agree(new_path, tmp_path)) < len(new)


def test_off_mode(account, mount, run_mailfs, tmp_path):
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    kept = [srvlib.make_message("Kept %d" % i, dt(2026, 9, 1, 10, i)) for i in range(3)]
    account.append_many("Archive", kept)
    m = mount()
    wait_folder_synced(m, "Archive", 3)
    os.setxattr(m / "Archive", "user.sync.mode", b"off")
    assert mode(m, "Archive") == "off"
    # new on the server: never comes, whatever syncs
    late = srvlib.make_message("Late arrival", dt(2026, 9, 2, 10, 0))
    srvlib.append(c, "Archive", late)
    for args in (("sync", m.path), ("sync", m.path, "Archive")):
        rc, out, err = run_mailfs(*args)
        assert rc == 0, err
    time.sleep(2 * 1.5)  # two polls
    names = os.listdir(m / "Archive")
    assert len(names) == 3 and not any("Late arrival" in n for n in names), names
    # what was here stays, readable
    assert sorted(read(m / "Archive" / n) for n in names) == sorted(kept)
    # local changes still go out
    mine = srvlib.make_message("Written in an off folder", dt(2026, 9, 3, 10, 0))
    src = tmp_path / "mine.eml"
    src.write_bytes(mine)
    subprocess.run(["cp", str(src), str(m / "Archive" / "mine.eml")], check=True)
    os.unlink(file_of(m, "Archive", "Kept 0"))
    wait_server(c, "Archive", kept[1:] + [late, mine], PUSH * SLOW, mount=m)
    wait_until(lambda: xattr(m / "Archive", "user.sync.pending") == "0", PUSH * SLOW,
               what="pending 0")
    names = os.listdir(m / "Archive")
    assert not any("Late arrival" in n for n in names), names
    # and after a remount it is still off
    m.unmount()
    m = mount()
    time.sleep(2)
    assert mode(m, "Archive") == "off"
    assert not any("Late arrival" in n for n in os.listdir(m / "Archive"))


def test_inbox_off_is_quiet(account, mount):
    """Inbox off: no new mail comes in, and the daemon does not spin."""
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    srvlib.append(c, "INBOX", srvlib.make_message("First", dt(2026, 9, 5, 1, 0)))
    m = mount()
    wait_folder_synced(m, "Inbox", 1)
    wait_folder_synced(m, "Archive", 0)
    os.setxattr(m / "Inbox", "user.sync.mode", b"off")
    time.sleep(1)
    srvlib.append(c, "INBOX", srvlib.make_message("Second", dt(2026, 9, 5, 2, 0)))
    # another folder changes: its sync leaves it selected on the connection
    srvlib.append(c, "Archive", srvlib.make_message("Elsewhere", dt(2026, 9, 5, 3, 0)))
    wait_folder_synced(m, "Archive", 1, timeout=PUSH)
    time.sleep(1)
    cpu0, t0 = cpu_seconds(m.pid), time.monotonic()
    time.sleep(4)
    cpu = cpu_seconds(m.pid) - cpu0
    wall = time.monotonic() - t0
    assert len(os.listdir(m / "Inbox")) == 1, "new mail came into an off Inbox"
    assert cpu < 0.25 * wall, "the idle daemon used %.1f s of CPU in %.1f s" % (cpu, wall)


# --- the recursive setting -----------------------------------------------------------------

def test_recursive(account, mount, run_mailfs):
    c = account.client()
    c.select("INBOX")
    for f in ("Projects", "Projects/A", "Projects/A/deep", "Projects/B", "Other"):
        make_folder(c, f)
        srvlib.append(c, f, srvlib.make_message("In " + f, dt(2026, 10, 1, 1, 1)))
    m = mount()
    for f in ("Projects/A/deep", "Other"):
        wait_folder_synced(m, f, 1)
    under = ("Projects", "Projects/A", "Projects/A/deep", "Projects/B")
    os.setxattr(m / "Projects", "user.sync.mode.recursive", b"off")
    for f in under:
        assert mode(m, f) == "off", f
    assert mode(m, "Other") == "headers" and mode(m, "Inbox") == "full"
    # write only
    assert errno_of(os.getxattr, m / "Projects", "user.sync.mode.recursive") == errno.ENODATA
    # a folder made later gets the default
    make_folder(c, "Projects/C")
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    wait_until(lambda: os.path.isdir(m / "Projects/C"), PUSH * SLOW, what="Projects/C listed")
    assert mode(m, "Projects/C") == "headers"
    assert mode(m, "Projects") == "off"
    # on the root: every folder
    os.setxattr(m.path, "user.sync.mode.recursive", b"full")
    for f in under + ("Projects/C", "Other", "Inbox"):
        assert mode(m, f) == "full", f
    assert mode(m, "Conflicts") == "off"
    os.setxattr(m.path, "user.sync.mode.recursive", b"headers")  # mail folders only
    for f in under + ("Projects/C", "Other", "Inbox"):
        assert mode(m, f) == "headers", f
    assert mode(m, "Conflicts") == "off"
    # the root itself is not a folder
    e = setxattr_errno(m.path, "user.sync.mode", "full")
    assert e in (errno.ENOTSUP, errno.EINVAL), e
    assert mode(m, "Inbox") == "headers"
    # headers (or any mode) on the local-only Conflicts
    assert setxattr_errno(m / "Conflicts", "user.sync.mode", "headers") == errno.EINVAL
    assert setxattr_errno(m / "Conflicts", "user.sync.mode.recursive", "headers") == errno.EINVAL
    assert mode(m, "Conflicts") == "off"
    # kept in the store
    os.setxattr(m / "Projects/A", "user.sync.mode.recursive", b"off")
    m.unmount()
    m = mount()
    assert mode(m, "Projects/A") == "off" and mode(m, "Projects/A/deep") == "off"
    assert mode(m, "Projects") == "headers" and mode(m, "Projects/B") == "headers"
    assert mode(m, "Inbox") == "headers"


# --- refusals ------------------------------------------------------------------------------

def test_bad_values_and_names(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    item = m / sorted(p for p in expected if p.startswith("Archive/"))[0]

    def snapshot():
        return {d: mode(m, d) for d in MAIL_DIRS + ("Conflicts",)}, \
            xattr(m.path, "user.mailfs.mode")

    before = snapshot()
    bad = [b"", b"Full", b"full\n", b"fullx", b" full", b"full\0", b"f" * 300, b"FULL"]
    for v in bad:
        for name in ("user.sync.mode", "user.sync.mode.recursive"):
            assert setxattr_errno(m / "Archive", name, v) == errno.EINVAL, (name, v)
        assert setxattr_errno(m.path, "user.sync.mode.recursive", v) == errno.EINVAL, v
        assert setxattr_errno(m.path, "user.mailfs.mode", v) == errno.EINVAL, v
    for v in (b"Offline", b"offline\n", b"on", b"off"):
        assert setxattr_errno(m.path, "user.mailfs.mode", v) == errno.EINVAL, v
    assert setxattr_errno(m / "Conflicts", "user.sync.mode", b"headers") == errno.EINVAL
    assert snapshot() == before

    # unknown names
    for target in (m / "Archive", m.path, item):
        for name in ("user.sync.bogus", "user.sync.mode2", "user.mailfs.bogus"):
            assert setxattr_errno(target, name, b"full") == errno.ENOTSUP, (target, name)
            assert errno_of(os.getxattr, target, name) == errno.ENODATA, (target, name)
        # other namespaces are not kept at all: "not supported", so that
        # ls -l stops asking for every file (SELinux label, ACLs)
        for name in ("security.selinux", "system.posix_acl_access", "trusted.x"):
            assert errno_of(os.getxattr, target, name) == errno.ENOTSUP, (target, name)
    # a folder attribute on a message
    assert setxattr_errno(item, "user.sync.mode", b"full") == errno.ENOTSUP

    # read-only attributes: refused, unchanged
    ro = [(m / "Archive", "user.sync.state"), (m / "Archive", "user.sync.last"),
          (m / "Archive", "user.sync.pending"), (item, "user.sync.state"),
          (m.path, "user.mailfs.connection")]
    values = {(str(p), n): xattr(p, n) for p, n in ro}
    for p, n in ro:
        e = setxattr_errno(p, n, b"idle")
        assert e == errno.EPERM, (p, n, e)
        assert errno_of(os.removexattr, p, n) in (errno.EPERM, errno.ENOTSUP), (p, n)
    for p, n in ro:
        v = xattr(p, n)
        if n != "user.sync.state" or p != m / "Archive":
            assert v == values[(str(p), n)], (p, n)
    assert snapshot() == before


# --- status attributes ----------------------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def iso_time(text):
    assert ISO.match(text), "user.sync.last is not ISO 8601: %r" % text
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.time_limit(180)
def test_sync_state_progress(account, mount):
    c = account.client()
    c.select("INBOX")
    n = 3000
    t0 = dt(2024, 1, 1)
    msgs = [srvlib.make_message("Bulk %04d" % i, t0 + datetime.timedelta(minutes=i),
                                "Body %d\n%s\n" % (i, "x" * 1500)) for i in range(n)]
    account.append_many("INBOX", msgs)
    m = mount()
    wait_until(while_alive(m, lambda: os.path.isdir(m / "Inbox")), SYNC * SLOW,
               what="Inbox listed")
    seen = []
    deadline = time.monotonic() + 120 * SLOW
    while time.monotonic() < deadline:
        v = xattr(m / "Inbox", "user.sync.state")
        if not seen or seen[-1] != v:
            seen.append(v)
        if v == "idle" and xattr(m / "Inbox", "user.sync.last") != "never":
            break
        time.sleep(0.002)
    progress = [v for v in seen if v.startswith("syncing")]
    for v in progress:
        mm = re.match(r"^syncing (\d+)/(\d+)$", v)
        assert mm, "user.sync.state %r" % v
        assert int(mm.group(1)) <= int(mm.group(2)), v
    assert any(re.match(r"^syncing ([1-9]\d*)/%d$" % n, v) and int(v.split()[1].split("/")[0]) < n
               for v in progress), "no progress seen while %d messages downloaded: %r" % (n, seen)
    assert seen[-1] == "idle", seen
    wait_until(lambda: len(os.listdir(m / "Inbox")) == n, 30 * SLOW, what="all listed")
    print("user.sync.state seen on Inbox: %s" % seen)


def test_sync_last(account, mount, run_mailfs):
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    srvlib.append(c, "Archive", srvlib.make_message("Archived", dt(2026, 1, 1, 1, 1)))
    srvlib.append(c, "INBOX", srvlib.make_message("First", dt(2026, 1, 1, 1, 2)))
    start = time.time()
    m = mount()
    wait_folder_synced(m, "Inbox", 1)
    wait_folder_synced(m, "Archive", 1)
    # ISO 8601, now-ish, moving forward with every sync
    last = {d: iso_time(xattr(m / d, "user.sync.last")) for d in ("Inbox", "Archive")}
    for d, t in last.items():
        assert start - 2 <= t <= time.time() + 1, (d, t, start)
    time.sleep(1.2)
    srvlib.append(c, "INBOX", srvlib.make_message("One more", dt(2026, 2, 2, 2, 2)))
    wait_until(lambda: iso_time(xattr(m / "Inbox", "user.sync.last")) > last["Inbox"],
               PUSH * SLOW, what="Inbox's last sync moved after new mail")
    rc, out, err = run_mailfs("sync", m.path, "Archive")
    assert rc == 0, err
    a1 = iso_time(xattr(m / "Archive", "user.sync.last"))
    assert a1 > last["Archive"], "`mailfs sync MNT Archive` did not move user.sync.last"


def test_sync_last_after_sync_without_changes(account, mount, run_mailfs):
    """`mailfs sync MNT` checks every folder: a folder found unchanged has
    been synced then too (user.sync.last: "the last completed sync")."""
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    srvlib.append(c, "Archive", srvlib.make_message("Archived", dt(2026, 1, 1, 1, 1)))
    m = mount()
    wait_folder_synced(m, "Archive", 1)
    time.sleep(1.2)
    t_req = time.time()
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    for d in ("Archive", "Inbox"):
        a2 = iso_time(xattr(m / d, "user.sync.last"))
        assert a2 >= int(t_req), ("after `mailfs sync MNT` (nothing changed) %s's "
                                  "user.sync.last still reads %s (asked at %s)"
                                  % (d, xattr(m / d, "user.sync.last"),
                                     time.strftime("%H:%M:%S", time.gmtime(t_req))))


def test_sync_pending(account, mount, tmp_path):
    c = account.client()
    c.select("INBOX")
    make_folder(c, "Archive")
    srvlib.append(c, "Archive", srvlib.make_message("Archived", dt(2026, 1, 1, 1, 1)))
    inbox = [srvlib.make_message("In %d" % i, dt(2026, 1, 2, 1, i)) for i in range(3)]
    account.append_many("INBOX", inbox)
    m = mount()
    wait_folder_synced(m, "Inbox", 3)
    wait_folder_synced(m, "Archive", 1)
    n = 3
    assert xattr(m / "Archive", "user.sync.pending") == "0"
    set_online(m, False)
    new = srvlib.make_message("Offline copy", dt(2026, 3, 3, 3, 3))
    (tmp_path / "new.eml").write_bytes(new)
    shutil.copy(tmp_path / "new.eml", m / "Archive" / "new.eml")
    arch = file_of(m, "Archive", "Archived")
    os.setxattr(arch, "user.mail.flags", b"seen flagged")
    inbox_victim = m / "Inbox" / sorted(os.listdir(m / "Inbox"))[0]
    os.unlink(inbox_victim)
    assert xattr(m / "Archive", "user.sync.pending") == "2"
    assert xattr(m / "Inbox", "user.sync.pending") == "1"
    assert xattr(m / "Archive/new.eml", "user.sync.state") == "pending"
    time.sleep(1.5)
    assert xattr(m / "Archive", "user.sync.pending") == "2", "offline, yet sent"
    set_online(m, True)
    for d in ("Archive", "Inbox"):
        wait_until(while_alive(m, lambda: xattr(m / d, "user.sync.pending") == "0"),
                   PUSH * SLOW, what="%s pending 0" % d)
    fl = {b: f for f, b in srvlib.fetch_all(c, "Archive").values()}
    assert new in fl
    assert {"\\Seen", "\\Flagged"} <= set(fl[[b for b in fl if b"Archived" in b][0]])
    assert srvlib.count(c, "INBOX") == n - 1
    assert xattr(m / "Archive/new.eml", "user.sync.state") == "synced"


# --- which folder syncs first ---------------------------------------------------------------

@pytest.mark.time_limit(300)
def test_opened_folder_syncs_first(account, mount):
    nf, per = 20, 500
    folders = ["F%02d" % i for i in range(nf)]
    c = account.client()
    c.select("INBOX")
    t0 = dt(2023, 1, 1)
    for f in folders:
        make_folder(c, f)
        account.append_many(f, [srvlib.make_message("%s %03d" % (f, i),
                                                    t0 + datetime.timedelta(minutes=i),
                                                    "Body %s %d\n" % (f, i))
                                for i in range(per)])
    m = mount()
    # ls the 18th folder as soon as it exists
    wait_until(while_alive(m, lambda: os.path.isdir(m / "F17")), SYNC * SLOW,
               what="F17 listed")
    os.listdir(m / "F17")
    done = {}
    n17 = None
    t_start = time.monotonic()
    deadline = t_start + 240 * SLOW
    while len(done) < nf and time.monotonic() < deadline:
        for f in folders:
            if f not in done and xattr(m / f, "user.sync.last") != "never":
                done[f] = time.monotonic() - t_start
        if "F17" in done and n17 is None:
            n17 = len(os.listdir(m / "F17"))
        time.sleep(0.01)
    assert len(done) == nf, "not every folder synced: %r" % done
    order = sorted(done, key=done.get)
    print("first mount, completion order: %s" % " ".join(
        "%s@%.2f" % (f, done[f]) for f in order))
    assert n17 == per, "F17 was marked synced with %r of %d files" % (n17, per)
    later = [f for f in folders if f != "F17" and done[f] > done["F17"]]
    assert len(later) >= nf - 4, "F17 (opened) completed after %d other folders: %s" % (
        nf - 1 - len(later), order)
    for f in folders:
        assert len(os.listdir(m / f)) == per, f

    # F09 is the folder opened last in this session: the next mount syncs it first
    os.listdir(m / "F09")
    before = {f: xattr(m / f, "user.sync.last") for f in folders}
    m.unmount()
    time.sleep(1.1)  # user.sync.last has a resolution of one second
    for f in folders:
        account.append_many(f, [srvlib.make_message("%s new %03d" % (f, k),
                                                    t0 + datetime.timedelta(days=1, minutes=k),
                                                    "New %s %d\n" % (f, k))
                                for k in range(100)])
    m = mount()
    done = {}
    t_start = time.monotonic()
    deadline = t_start + 120 * SLOW
    while len(done) < nf and time.monotonic() < deadline:
        for f in folders:
            if f not in done and xattr(m / f, "user.sync.last") != before[f]:
                done[f] = time.monotonic() - t_start
        time.sleep(0.01)
    assert len(done) == nf, "not every folder synced after the remount: %r" % done
    order = sorted(done, key=done.get)
    print("second mount, completion order: %s" % " ".join(
        "%s@%.2f" % (f, done[f]) for f in order))
    earlier = [f for f in folders if f != "F09" and done[f] < done["F09"]]
    assert not earlier, "F09 (opened last) was not first: %s" % order
    for f in folders:
        assert len(os.listdir(m / f)) == per + 100, f


# --- the closing measurement: headers mode beside full mode ------------------------------

RELEASE_BIN = os.environ.get("MAILFS_RELEASE_BIN")


def _one_shot(binary, mailfs_env, account_name):
    env = dict(mailfs_env.env)
    env["MAILFS_LOG"] = "info"
    t = time.monotonic()
    r = subprocess.run([binary, "--config", mailfs_env.config_path, "sync", account_name],
                       capture_output=True, text=True, timeout=600, env=env,
                       cwd=mailfs_env.cwd)
    wall = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    got = [int(x) for x in re.findall(r"\((\d+) bytes received\)", r.stderr)]
    return wall, sum(got)


@pytest.mark.time_limit(300)
def test_measure_headers_vs_full(dovecot, mailfs_env, mount):
    """Prints time and bytes received of a one-shot `mailfs sync` of a
    10,000-message mix, headers mode beside full mode (nothing asserted
    but that both finish)."""
    import random
    rnd = random.Random(5)
    folders = ["INBOX", "Archive", "Sent", "Lists", "Projects"]
    c = dovecot.client()
    c.select("INBOX")
    for f in folders[1:]:
        make_folder(c, f)
    t0 = dt(2022, 1, 1)
    total = 0
    for fi, f in enumerate(folders):
        batch = []
        for i in range(2000):
            date = t0 + datetime.timedelta(minutes=fi * 10000 + i)
            if rnd.random() < 0.05:
                msg = mime_mixed("%s att %d" % (f, i), date,
                                 attach_size=rnd.randint(50_000, 200_000))
            else:
                msg = srvlib.make_message("%s %d" % (f, i), date,
                                          "Text %d\n%s\n" % (i, "lorem ipsum " * rnd.randint(
                                              5, 500)))
            batch.append(msg)
            total += len(msg)
        dovecot.append_many(f, batch)
    accounts = {"full": mailfs_env.account_for(dovecot, sync_mode="full"),
                "hdr": mailfs_env.account_for(dovecot, sync_mode="headers")}
    mailfs_env.write_config(accounts)
    binary = RELEASE_BIN if RELEASE_BIN and os.access(RELEASE_BIN, os.X_OK) else MAILFS_BIN
    res = {}
    for name in ("full", "hdr"):
        res[name] = _one_shot(binary, mailfs_env, name)
    print("\n10,000 messages, %.1f MB on the server, %s build:" % (
        total / 1e6, "release" if binary == RELEASE_BIN else "test"))
    for name, label in (("full", "full mode   "), ("hdr", "headers mode")):
        print("  %s: %.2f s, %.1f MB received" % (label, res[name][0], res[name][1] / 1e6))
    print("  headers/full: time %.2fx, bytes %.2fx" % (res["hdr"][0] / res["full"][0],
                                                        res["hdr"][1] / max(res["full"][1], 1)))
    assert res["full"][1] > 0 and res["hdr"][1] > 0
