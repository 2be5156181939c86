"""Writes through the mount, one operation at a time (issue 3, DESIGN
section 3): create, overwrite and edit (the save patterns of editors), rm,
mv between folders (MOVE and its fallbacks), rename inside a folder (local
only), folders (mkdir, mkdir -p, rmdir, mv), flags, and the names mailfs
refuses. Every result is checked on the server with imaplib."""

import errno
import os
import re
import subprocess
import time

import pytest

from mailfs_testlib import (ALL_EXTENSIONS, SLOW, crlf, changing_commands, dovecot as srvlib, dt,
                            expected_name, folder_bodies, folder_flags, message_files,
                            populate_basic, server_state, wait_server, wait_until, while_alive,
                            xattr)

SYNC = 10   # s: the initial sync of the small account
PUSH = 10   # s: a local change on the server (the contract says about 1 s)

QUARTERLY = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
LUNCH = "Inbox/" + expected_name("Lunch?", dt(2026, 11, 25, 12, 30))
GRUSSE = "Inbox/" + expected_name("Grüße aus Köln", dt(2026, 1, 2, 3, 4))
OLD_THREAD = "Archive/" + expected_name("Old thread", dt(2019, 5, 6, 7, 8))
RE_LUNCH = "Sent/" + expected_name("Re: Lunch?", dt(2026, 11, 25, 12, 45))


def start(account, mount, **kw):
    """populate_basic on the server, mount, wait for the initial sync.
    Returns (imaplib client, {path: bytes} expected, Mount)."""
    c = account.client()
    expected = populate_basic(c)
    m = mount(**kw)
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    return c, expected, m


def sync(run_mailfs, m):
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, "mailfs sync failed: %s" % err


def run(*argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=60 * SLOW, **kw)
    assert r.returncode == 0, "%s: exit %d: %s" % (" ".join(map(str, argv)), r.returncode,
                                                   r.stderr)
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def errno_of(fn, *args):
    """The errno fn(*args) fails with, or None when it succeeds."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return None


def wait_state(m, path, want, timeout=PUSH):
    wait_until(while_alive(m, lambda: xattr(path, "user.sync.state") == want), timeout * SLOW,
               what="user.sync.state of %s is %r" % (os.path.basename(str(path)), want))


# --- create --------------------------------------------------------------------------

def test_create_by_cp_and_redirect(account, mount, tmp_path):
    c, expected, m = start(account, mount)
    inbox = folder_bodies(c, "INBOX")
    # bare LF line ends, as a text editor writes them
    copied = srvlib.make_message("Copied in", dt(2026, 12, 1, 9, 0),
                                 "Written with bare LF.\nSecond line.\n").replace(b"\r\n", b"\n")
    redirected = srvlib.make_message("Redirected", dt(2026, 12, 2, 9, 0),
                                     "From a shell.\n").replace(b"\r\n", b"\n")
    src = tmp_path / "copied.eml"
    src.write_bytes(copied)
    src2 = tmp_path / "redirected.eml"
    src2.write_bytes(redirected)

    names = {"cp": "Inbox/Notiz für Bob & co.eml",
             "redirect": "Inbox/redirected message.eml",
             "pieces": "Inbox/no extension",
             "archive": "Archive/2025/copied too.eml"}
    run("cp", src, m / names["cp"])
    run("sh", "-c", 'cat "$1" > "$2"', "sh", src2, m / names["redirect"])
    # a redirect that writes in several pieces, through one descriptor
    run("sh", "-c", '{ printf "Subject: pieces\\n"; printf "Message-ID: <pieces@t>\\n\\n"; '
        'printf "one\\n"; printf "two\\n"; } > "$1"', "sh", m / names["pieces"])
    run("cp", src, m / names["archive"])
    pieces = b"Subject: pieces\nMessage-ID: <pieces@t>\n\none\ntwo\n"

    # durable before the call returned: the state says so at once
    for rel in names.values():
        assert xattr(m / rel, "user.sync.state") in ("pending", "synced")
    want_inbox = inbox + [crlf(copied), crlf(redirected), crlf(pieces)]
    wait_server(c, "INBOX", want_inbox, PUSH * SLOW, mount=m)
    wait_server(c, "Archive/2025", [b for p, b in expected.items()
                                    if p.startswith("Archive/2025/")] + [crlf(copied)],
                PUSH * SLOW, mount=m)

    # the names are the user's; the files show what the server holds (CRLF)
    assert set(os.listdir(m / "Inbox")) >= {os.path.basename(names[k])
                                            for k in ("cp", "redirect", "pieces")}
    for key, body in (("cp", copied), ("redirect", redirected), ("pieces", pieces),
                      ("archive", copied)):
        p = m / names[key]
        wait_state(m, p, "synced")
        assert read(p) == crlf(body), key
        assert os.stat(p).st_size == len(crlf(body)), key

    # names and content stay across a remount
    m.unmount()
    m = mount()
    for key, body in (("cp", copied), ("redirect", redirected), ("pieces", pieces)):
        assert read(m / names[key]) == crlf(body)
        assert xattr(m / names[key], "user.sync.state") == "synced"
    assert folder_bodies(c, "INBOX") == sorted(want_inbox)


# --- overwrite and edit ----------------------------------------------------------------

OLD_LINE = b"Message 0 in INBOX."
NEW_LINE = b"Edited: message 0 in INBOX, now longer than before."


def edit_truncate(path, tmp_path):
    data = read(path).replace(OLD_LINE, NEW_LINE)
    with open(path, "wb") as f:     # O_TRUNC, then write
        f.write(data)


def edit_redirect(path, tmp_path):
    src = tmp_path / "new.eml"
    src.write_bytes(read(path).replace(OLD_LINE, NEW_LINE))
    run("sh", "-c", 'cat "$1" > "$2"', "sh", src, path)


def edit_in_place(path, tmp_path):
    # an editor that writes over the bytes without truncating: same length
    data = read(path)
    off = data.index(b"UNIQUE-TOKEN-0")
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"EDITED-TOKEN-0", off)
        os.fsync(fd)
    finally:
        os.close(fd)


def edit_append(path, tmp_path):
    with open(path, "ab") as f:
        f.write(b"P.S. appended.\r\n")


def edit_sed(path, tmp_path):
    # sed -i writes a temporary file beside the original and renames it over
    run("sed", "-i", "s/%s/%s/" % (OLD_LINE.decode(), NEW_LINE.decode()), path)


def edit_temp_rename(path, tmp_path):
    # the atomic save of many editors: write a temporary file, fsync, rename
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".swp~")
    data = read(path).replace(OLD_LINE, NEW_LINE)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def vim(backupcopy):
    def edit(path, tmp_path):
        # vim itself (swap file, backup file, its own write), no vimrc
        run("vim", "-u", "NONE", "-i", "NONE", "-N", "-es",
            "-c", "set backupcopy=%s writebackup nobackup" % backupcopy,
            "-c", "%%s/%s/%s/" % (OLD_LINE.decode(), NEW_LINE.decode()),
            "-c", "wq", path, env=dict(os.environ, HOME=str(tmp_path)))
    return edit


EDITS = {
    "truncate": (edit_truncate, True),
    "redirect": (edit_redirect, True),
    "in-place": (edit_in_place, True),
    "append": (edit_append, True),
    "sed-i": (edit_sed, False),
    "temp-rename": (edit_temp_rename, False),
    # backupcopy=no: the original is renamed to a backup and a new file written
    "vim-rename": (vim("no"), False),
    # backupcopy=yes: a backup copy is made and the original overwritten
    "vim-overwrite": (vim("yes"), True),
}


def expected_edit(kind, old):
    if kind == "in-place":
        return old.replace(b"UNIQUE-TOKEN-0", b"EDITED-TOKEN-0")
    if kind == "append":
        return old + b"P.S. appended.\r\n"
    return old.replace(OLD_LINE, NEW_LINE)


@pytest.mark.parametrize("kind", list(EDITS))
def test_overwrite(kind, account, mount, tmp_path):
    c, expected, m = start(account, mount)
    path = m / QUARTERLY
    old = expected[QUARTERLY]
    new = expected_edit(kind, old)
    assert new != old
    before = folder_bodies(c, "INBOX")
    edit, same_item = EDITS[kind]
    edit(str(path), tmp_path)
    assert read(path) == new

    # one message with the new content, the old one gone, no other change
    want = sorted([b for b in before if b != old] + [new])
    wait_server(c, "INBOX", want, PUSH * SLOW, what="INBOX holds the edited message only", mount=m)
    wait_state(m, path, "synced")
    assert sorted(os.listdir(m / "Inbox")) == sorted(os.path.basename(p) for p in expected
                                                     if p.startswith("Inbox/"))
    assert read(path) == new
    if same_item:
        # an edit of the file itself keeps the message's flags
        assert folder_flags(c, "INBOX")[new] == {"seen"}
    for folder in ("Archive", "Archive/2025", "Sent", "Entwürfe"):
        assert folder_bodies(c, folder) == sorted(b for p, b in expected.items()
                                                  if os.path.dirname(p) == folder)
    # and it stays that way (no late duplicate, no late deletion)
    m.unmount()
    m = mount()
    assert read(m / QUARTERLY) == new
    assert folder_bodies(c, "INBOX") == want


# --- rm and mv -------------------------------------------------------------------------

def test_rm(account, mount, run_mailfs):
    c, expected, m = start(account, mount)
    state = server_state(c)
    run("rm", m / LUNCH)
    run("rm", "-f", m / OLD_THREAD)
    assert not os.path.exists(m / LUNCH)
    wait_server(c, "INBOX", [b for p, b in expected.items() if p.startswith("Inbox/")
                             and p != LUNCH], PUSH * SLOW, mount=m)
    wait_server(c, "Archive", [], PUSH * SLOW, mount=m)
    sync(run_mailfs, m)
    after = server_state(c)
    state["INBOX"] = [x for x in state["INBOX"] if x[1] != expected[LUNCH]]
    state["Archive"] = []
    assert after == state
    assert os.path.basename(LUNCH) not in os.listdir(m / "Inbox")


@pytest.mark.parametrize("dovecot", [
    {},
    {"hide_capabilities": ("MOVE",)},
    {"hide_capabilities": ("MOVE", "UIDPLUS")},
], ids=["move", "copy-uidplus", "copy-no-uidplus"], indirect=True)
def test_mv_between_folders(dovecot, mailfs_env, mount, recorder, run_mailfs):
    c = dovecot.client()
    expected = populate_basic(c)
    # another client's message, marked \Deleted but not expunged: no fallback
    # may expunge it
    other = srvlib.make_message("Marked deleted by another client", dt(2026, 3, 3, 3, 3))
    srvlib.append(c, "INBOX", other, flags=("\\Deleted",))
    rec = recorder(dovecot)
    mailfs_env.configure(dovecot, port=rec.port)
    m = mount()
    wait_until(lambda: len(message_files(m.path)) == len(expected) + 1, SYNC * SLOW,
               what="initial sync")
    moved = expected[QUARTERLY]
    mark = rec.mark()
    run("mv", m / QUARTERLY, m / "Archive/")
    target = m / "Archive" / os.path.basename(QUARTERLY)
    assert read(target) == moved
    assert not os.path.exists(m / QUARTERLY)

    wait_server(c, "Archive", [expected[OLD_THREAD], moved], PUSH * SLOW,
                what="the message arrived in Archive (once)", mount=m)
    assert folder_flags(c, "Archive")[moved] == {"seen"}

    def inbox_settled():
        msgs = srvlib.fetch_all(c, "INBOX")
        left = [fl for fl, b in msgs.values() if b == moved]
        # gone, or (without UIDPLUS, beside another client's \Deleted
        # message) left marked \Deleted for the next expunge
        if dovecot.hide_capabilities == ("MOVE", "UIDPLUS"):
            return all("\\Deleted" in fl for fl in left)
        return not left
    wait_until(while_alive(m, inbox_settled), PUSH * SLOW, what="the original left INBOX")
    inbox = srvlib.fetch_all(c, "INBOX")
    assert [fl for fl, b in inbox.values() if b == other] == [("\\Deleted",)], \
        "another client's \\Deleted message was expunged"
    for p in (LUNCH, GRUSSE):
        assert [b for _, b in inbox.values()].count(expected[p]) == 1
    wait_state(m, target, "synced")
    sync(run_mailfs, m)
    assert read(target) == moved

    cmds = changing_commands(rec.since(mark))
    verbs = [line.split()[1:3] for line in cmds]
    if "MOVE" in dovecot.hide_capabilities:
        assert ["UID", "COPY"] in verbs, cmds
        assert ["UID", "MOVE"] not in verbs, cmds
    else:
        assert ["UID", "MOVE"] in verbs, cmds
    assert not any(v[0] == "APPEND" for v in verbs), "the move uploaded the message: %r" % cmds
    if "UIDPLUS" in dovecot.hide_capabilities:
        assert ["EXPUNGE"] not in [v[:1] for v in verbs], \
            "EXPUNGE sent although another message was marked \\Deleted: %r" % cmds


def test_rename_in_folder_is_local(dovecot, mailfs_env, mount, recorder, run_mailfs):
    c = dovecot.client()
    expected = populate_basic(c)
    rec = recorder(dovecot)
    mailfs_env.configure(dovecot, port=rec.port)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    sync(run_mailfs, m)
    state = server_state(c)
    mark = rec.mark()
    new = m / "Inbox/the quarterly report, renamed.eml"
    run("mv", m / QUARTERLY, new)
    os.rename(m / "Archive/2025" / os.path.basename(list(
        p for p in expected if p.startswith("Archive/2025/"))[0]),
        m / "Archive/2025/invoice one.eml")
    assert read(new) == expected[QUARTERLY]
    wait_until(while_alive(m, lambda: xattr(new, "user.sync.state") == "synced"), PUSH * SLOW)
    sync(run_mailfs, m)
    sync(run_mailfs, m)
    cmds = changing_commands(rec.since(mark))
    assert cmds == [], "a rename inside a folder changed the server: %r" % cmds
    assert server_state(c) == state
    m.unmount()
    m = mount()
    assert read(m / "Inbox/the quarterly report, renamed.eml") == expected[QUARTERLY]
    assert os.path.basename(QUARTERLY) not in os.listdir(m / "Inbox")
    assert os.path.exists(m / "Archive/2025/invoice one.eml")


# --- folders ---------------------------------------------------------------------------

def test_folders(account, mount, run_mailfs):
    c, expected, m = start(account, mount)

    def folders():
        return set(srvlib.list_folders(c))

    base = folders()
    os.mkdir(m / "Projects")
    run("mkdir", "-p", m / "Projects/a/b/c")
    made = {"Projects", "Projects/a", "Projects/a/b", "Projects/a/b/c"}
    wait_until(while_alive(m, lambda: folders() == base | made),
               PUSH * SLOW, what="mkdir and mkdir -p on the server")
    os.rmdir(m / "Projects/a/b/c")
    wait_until(while_alive(m, lambda: "Projects/a/b/c" not in folders()), PUSH * SLOW,
               what="rmdir")

    # non-empty folders stay, here and there
    for rel in ("Archive", "Archive/2025", "Projects/a"):
        assert errno_of(os.rmdir, m / rel) == errno.ENOTEMPTY, rel
    r = subprocess.run(["rmdir", m / "Sent"], capture_output=True)
    assert r.returncode != 0 and os.path.isdir(m / "Sent")

    # rename, and a move under another folder: children and messages follow
    os.rename(m / "Projects", m / "Work")
    run("mv", m / "Sent", m / "Archive/")
    want = (base - {"Sent"}) | {"Work", "Work/a", "Work/a/b", "Archive/Sent"}
    wait_until(while_alive(m, lambda: folders() == want), PUSH * SLOW,
               what="folder renames on the server")
    assert folder_bodies(c, "Archive/Sent") == [expected[RE_LUNCH]]
    assert folder_bodies(c, "Archive") == [expected[OLD_THREAD]]
    assert folder_bodies(c, "Archive/2025") == sorted(
        b for p, b in expected.items() if p.startswith("Archive/2025/"))
    moved = m / "Archive/Sent" / os.path.basename(RE_LUNCH)
    assert read(moved) == expected[RE_LUNCH]
    assert sorted(os.listdir(m / "Work")) == ["a"]

    # a folder made here takes messages, then moves with them
    os.mkdir(m / "Work/a/b/notes")
    note = b"Subject: a note\r\nMessage-ID: <note@t>\r\n\r\nin a new folder\r\n"
    (m / "Work/a/b/notes/note.eml").write_bytes(note)
    wait_server(c, "Work/a/b/notes", [note], PUSH * SLOW, mount=m)
    os.rename(m / "Work", m / "Archive/Work")
    want = (want - {"Work", "Work/a", "Work/a/b"}) | {
        "Archive/Work", "Archive/Work/a", "Archive/Work/a/b", "Archive/Work/a/b/notes"}
    wait_until(while_alive(m, lambda: folders() == want), PUSH * SLOW,
               what="folder moved with its children")
    assert folder_bodies(c, "Archive/Work/a/b/notes") == [note]
    sync(run_mailfs, m)
    assert folders() == want
    assert read(m / "Archive/Work/a/b/notes/note.eml") == note
    for rel in ("Projects", "Work", "Sent"):
        assert not os.path.exists(m / rel)

    # and an empty folder made and removed before it was sent costs nothing
    m.unmount()
    m = mount()
    assert read(m / "Archive/Work/a/b/notes/note.eml") == note
    assert read(m / "Archive/Sent" / os.path.basename(RE_LUNCH)) == expected[RE_LUNCH]


@pytest.mark.parametrize("renamed", ["selected", "parent"])
@pytest.mark.parametrize("dovecot", [{"hide_capabilities": ALL_EXTENSIONS}],
                         ids=["bare-imap4rev1"], indirect=True)
def test_rename_selected_folder(renamed, dovecot, mailfs_env, mount, run_mailfs):
    """A folder renamed while the sync thread has it (or a folder below it)
    selected -- a server without IDLE leaves the last folder it synced
    selected -- with more changes right behind: Dovecot ends a session whose
    selected mailbox was renamed under it, so the sync must leave it first."""
    mailfs_env.configure(dovecot)
    c, expected, m = start(dovecot, mount)
    sync(run_mailfs, m)
    rc, out, err = run_mailfs("sync", m.path, "Archive/2025")  # now selected
    assert rc == 0, err
    log_mark = len(m.stderr())
    if renamed == "selected":
        os.rename(m / "Archive/2025", m / "Archive/2025 done")
        want = {"Archive/2025 done"}
    else:
        os.rename(m / "Archive", m / "Old archive")
        want = {"Old archive", "Old archive/2025"}
    os.mkdir(m / "New")
    new = srvlib.make_message("Behind a rename", dt(2026, 10, 1))
    (m / "New/behind.eml").write_bytes(new)
    wait_server(c, "New", [new], PUSH * SLOW, mount=m)
    wait_until(while_alive(m, lambda: want <= set(srvlib.list_folders(c))), PUSH * SLOW,
               what="the rename on the server")
    sync(run_mailfs, m)
    lost = [ln for ln in m.stderr()[log_mark:].splitlines()
            if re.search(r"(?i)connection .* lost|inconsistent", ln)]
    assert lost == [], "renaming a folder cost the connection:\n" + "\n".join(lost)


# --- flags -----------------------------------------------------------------------------

@pytest.mark.parametrize("dovecot", [
    {},
    {"hide_capabilities": ("CONDSTORE", "QRESYNC")},
], ids=["condstore", "no-condstore"], indirect=True)
def test_flags(dovecot, mailfs_env, mount, recorder, run_mailfs):
    c = dovecot.client()
    expected = populate_basic(c)
    rec = recorder(dovecot)
    mailfs_env.configure(dovecot, port=rec.port)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    mark = rec.mark()

    run("setfattr", "-n", "user.mail.flags", "-v", "seen flagged $Label", m / LUNCH)
    assert set(xattr(m / LUNCH, "user.mail.flags").split()) == {"seen", "flagged", "$Label"}
    wait_until(while_alive(m, lambda: folder_flags(c, "INBOX")[expected[LUNCH]] ==
               {"seen", "flagged", "$Label"}), PUSH * SLOW, what="flags on the server")
    # replace, not add: what is not named goes
    run("setfattr", "-n", "user.mail.flags", "-v", "answered", m / GRUSSE)
    os.setxattr(m / QUARTERLY, "user.mail.flags", b"")
    wait_until(while_alive(m, lambda: folder_flags(c, "INBOX")[expected[GRUSSE]] ==
                           {"answered"} and
                           folder_flags(c, "INBOX")[expected[QUARTERLY]] == set()),
               PUSH * SLOW, what="flags replaced on the server")
    # IMAP spellings are accepted too
    os.setxattr(m / OLD_THREAD, "user.mail.flags", b"\\Seen \\Flagged")
    wait_until(while_alive(m, lambda: folder_flags(c, "Archive")[expected[OLD_THREAD]] ==
                           {"seen", "flagged"}),
               PUSH * SLOW, what="IMAP-spelled flags")
    for p in (LUNCH, GRUSSE, QUARTERLY, OLD_THREAD):
        wait_state(m, m / p, "synced")
    sync(run_mailfs, m)
    state = server_state(c)

    # bad values: EINVAL, and nothing changes (values with several keywords
    # are in test_flags_several_keywords)
    bad = [b"\\Recent", b"\\Bogus", b"seen (flagged)", b"gr\xc3\xbcn", b"sp*ce",
           b"a\x01b", b"seen\x00flagged", b" ".join([b"seen"] * 65),
           b"k" * 129, b'quote"d', b"br]acket"]
    for value in bad:
        assert errno_of(os.setxattr, m / LUNCH, "user.mail.flags", value) == errno.EINVAL, value
    assert errno_of(os.setxattr, m / LUNCH, "user.sync.state", b"synced") in (
        errno.EPERM, errno.EACCES, errno.ENOTSUP)
    assert errno_of(os.setxattr, m / LUNCH, "user.mail.nonsense", b"x") == errno.ENOTSUP
    assert set(xattr(m / LUNCH, "user.mail.flags").split()) == {"seen", "flagged", "$Label"}
    sync(run_mailfs, m)
    assert server_state(c) == state

    cmds = [x for x in changing_commands(rec.since(mark))]
    stores = [x for x in cmds if re.search(r"(?i)\bSTORE\b", x)]
    assert stores and all(x.split()[1:3] == ["UID", "STORE"] for x in stores), cmds
    if "CONDSTORE" in dovecot.hide_capabilities:
        assert not any("UNCHANGEDSINCE" in x.upper() for x in stores), stores
    else:
        assert all("UNCHANGEDSINCE" in x.upper() for x in stores), stores
    assert not [x for x in cmds if not re.search(r"(?i)\bSTORE\b", x)], \
        "flag changes sent more than STORE: %r" % cmds


def test_flags_several_keywords(account, mount, run_mailfs):
    """Keywords beside each other: from the server, set through the mount,
    and refused values that hold several (they are parsed before they are
    refused)."""
    c, expected, m = start(account, mount)
    c.select("INBOX")
    uid = [u for u, (_, b) in srvlib.fetch_all(c, "INBOX").items()
           if b == expected[LUNCH]][0]
    c.select("INBOX")
    c.uid("STORE", str(uid), "+FLAGS", "($Work $Later)")
    wait_until(while_alive(m, lambda: set(xattr(m / LUNCH, "user.mail.flags").split()) ==
               {"$Later", "$Work"}), PUSH * SLOW, what="two keywords from the server")

    os.setxattr(m / GRUSSE, "user.mail.flags", b"seen $Zeta $Alpha $Zeta")
    assert xattr(m / GRUSSE, "user.mail.flags") == "seen $Alpha $Zeta"
    wait_until(while_alive(m, lambda: folder_flags(c, "INBOX")[expected[GRUSSE]] ==
               {"seen", "$Alpha", "$Zeta"}), PUSH * SLOW, what="two keywords on the server")
    sync(run_mailfs, m)
    state = server_state(c)
    for value in (b" ".join(b"k%d" % i for i in range(65)), b"$ok $fine b(ad"):
        assert errno_of(os.setxattr, m / QUARTERLY, "user.mail.flags", value) == \
            errno.EINVAL, value
    assert xattr(m / QUARTERLY, "user.mail.flags") == "seen"
    sync(run_mailfs, m)
    assert server_state(c) == state


def test_flags_after_edit_and_move(account, mount, run_mailfs):
    """Flags set on a message that was edited (a new message on the server)
    or moved (a new UID in another folder) after those reached the server:
    the base the flag change carries must be the new message's."""
    c, expected, m = start(account, mount)
    edited = expected[QUARTERLY].replace(b"Message 0", b"Edited message 0")
    (m / QUARTERLY).write_bytes(edited)
    wait_server(c, "INBOX", [b for p, b in expected.items() if p.startswith("Inbox/")
                             and p != QUARTERLY] + [edited], PUSH * SLOW, mount=m)
    moved = m / "Archive" / os.path.basename(LUNCH)
    os.rename(m / LUNCH, moved)
    wait_server(c, "Archive", [expected[OLD_THREAD], expected[LUNCH]], PUSH * SLOW, mount=m)
    for p in (m / QUARTERLY, moved):
        wait_state(m, p, "synced")
    sync(run_mailfs, m)

    os.setxattr(m / QUARTERLY, "user.mail.flags", b"flagged")
    os.setxattr(moved, "user.mail.flags", b"answered $Done")
    sync(run_mailfs, m)  # sends the journal first, then syncs every folder
    assert folder_flags(c, "INBOX")[edited] == {"flagged"}, \
        "the flags of the edited message did not reach the server"
    assert folder_flags(c, "Archive")[expected[LUNCH]] == {"answered", "$Done"}, \
        "the flags of the moved message did not reach the server"
    assert xattr(m / QUARTERLY, "user.mail.flags") == "flagged"
    assert xattr(moved, "user.mail.flags") == "answered $Done"


def test_flags_right_after_cp(account, mount, run_mailfs):
    """Flags set on a new file while its upload is prepared and sent (the
    sync thread lets a burst settle for about 150 ms, then reads the items
    of a batch, marks the uploads in flight and sends them; a large message
    behind the small one makes that take a while): swept over that moment,
    every flag change reaches the server and stays on its file."""
    c, expected, m = start(account, mount)
    big = srvlib.make_message("Big", dt(2026, 4, 30), ("z" * 76 + "\n") * 50000)
    lost = []
    for i in range(10):
        delay = 0.13 + 0.01 * i
        msg = srvlib.make_message("Flag race %d" % i, dt(2026, 4, 1 + i))
        path = m / ("Inbox/race %02d.eml" % i)
        path.write_bytes(msg)
        (m / ("Inbox/big %02d.eml" % i)).write_bytes(big)
        time.sleep(delay)
        os.setxattr(path, "user.mail.flags", b"flagged $Race")
        sync(run_mailfs, m)
        local = set(xattr(path, "user.mail.flags").split())
        server = folder_flags(c, "INBOX").get(msg)
        if local != {"flagged", "$Race"} or server != {"flagged", "$Race"}:
            lost.append("set %.3f s after the copy: the file shows %r, the server %r"
                        % (delay, sorted(local), sorted(server or ())))
    assert lost == [], "flag changes lost:\n" + "\n".join(lost)


# --- names -----------------------------------------------------------------------------

def test_names(account, mount, run_mailfs):
    c, expected, m = start(account, mount)
    msg = b"Subject: named\r\nMessage-ID: <named@t>\r\n\r\nbody\r\n"

    def create(path, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
        fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, msg)
        finally:
            os.close(fd)

    inbox = str(m / "Inbox")
    ok = "n" * 251 + ".eml"          # 255 bytes: allowed
    assert len(ok) == 255
    create(os.path.join(inbox, ok))
    long = "n" * 252 + ".eml"        # 256 bytes
    assert errno_of(create, os.path.join(inbox, long)) == errno.ENAMETOOLONG
    long_utf8 = "ü" * 126 + ".eml"   # 256 bytes in 130 characters
    assert errno_of(create, os.path.join(inbox, long_utf8)) == errno.ENAMETOOLONG
    assert errno_of(os.mkdir, m / ("d" * 256)) == errno.ENAMETOOLONG
    assert errno_of(os.rename, m / LUNCH, os.path.join(inbox, long)) == errno.ENAMETOOLONG

    # an existing name
    assert errno_of(create, str(m / QUARTERLY)) == errno.EEXIST
    assert errno_of(os.mkdir, m / "Archive/2025") == errno.EEXIST
    assert read(m / QUARTERLY) == expected[QUARTERLY]

    # names that are not valid UTF-8 or hold control characters
    inbox_b = os.fsencode(inbox)
    for bad in (b"\xff\xfe.eml", b"caf\xe9.eml", b"a\x01b.eml", b"tab\there.eml",
                b"new\nline.eml", b"del\x7f.eml"):
        assert errno_of(create, inbox_b + b"/" + bad) == errno.EINVAL, bad
        assert errno_of(os.mkdir, os.fsencode(str(m / "Archive")) + b"/" + bad) == \
            errno.EINVAL, bad
        assert errno_of(os.rename, os.fsencode(str(m / GRUSSE)), inbox_b + b"/" + bad) == \
            errno.EINVAL, bad
    assert read(m / GRUSSE) == expected[GRUSSE]

    # rename over an existing file replaces it: the target's message goes
    os.rename(m / LUNCH, m / QUARTERLY)
    assert read(m / QUARTERLY) == expected[LUNCH]
    assert not os.path.exists(m / LUNCH)
    # ... also from another folder
    os.rename(m / OLD_THREAD, m / GRUSSE)
    assert read(m / GRUSSE) == expected[OLD_THREAD]

    want = [expected[LUNCH], expected[OLD_THREAD], crlf(msg)]
    wait_server(c, "INBOX", want, PUSH * SLOW, what="renames over files replaced them", mount=m)
    wait_server(c, "Archive", [], PUSH * SLOW, mount=m)
    sync(run_mailfs, m)
    assert folder_bodies(c, "INBOX") == sorted(want)
    assert sorted(os.listdir(inbox)) == sorted([ok, os.path.basename(QUARTERLY),
                                                os.path.basename(GRUSSE)])
    assert os.listdir(m / "Archive") == ["2025"]
