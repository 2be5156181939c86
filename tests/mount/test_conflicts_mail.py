"""Conflicts of mail (issue 7, DESIGN section 6), end to end against a real
Dovecot (CONDSTORE and QRESYNC on), the server side read with imaplib:

- flags changed here and on the server: the server's flags stand, the
  message with the user's flags is in Conflicts/, a notice in Inbox/; a
  restore sets the user's flags on the same UID;
- a message edited here while deleted on the server: the deletion stands,
  the user's version is in Conflicts/; a restore uploads it;
- a message edited here while its flags changed on the server: the
  server's version comes back in place, the user's is in Conflicts/; a
  restore replaces the server's message with the user's;
- a message deleted here while its flags changed on the server: it comes
  back, with a notice;
- a folder removed on the server, or renamed on both sides, with changes
  inside: the server's side stands, the changes are in Conflicts/;
- the notice: local only (never on the server, whatever the user does to
  it), survives a remount; copies survive a remount and `mailfs reset`;
- 100 flag conflicts at once.

Each clash is made two ways: offline (`mailfs offline`, the server changed
by imaplib, the local change, `mailfs online`), and racing the server while
online (poll = 3600 and a folder without IDLE, so the server's change is
seen first by the push, not by a sync)."""

import errno
import os
import time

import pytest

from mailfs_testlib import (SLOW, create_folder, dovecot as srvlib, dt, expected_name,
                            folder_bodies, folder_flags, server_flags_to_set, wait_server,
                            wait_until, xattr)
from conflict_env import (assert_no_notice_on_server, check_copy, check_notice, copies,
                          errno_of, notices, offline, online, parse_notice, read, run_in_mount,
                          state, sync, wait_copies, wait_for, wait_notice, write)

HOWS = ("offline", "racing")
PUSH = 15  # s: a restore on the server (the contract says about a second)

SUBJECTS = [("Quarterly report", dt(2026, 11, 24, 10, 0)),
            ("Lunch", dt(2026, 11, 25, 12, 30)),
            ("Budget", dt(2026, 11, 26, 9, 15))]


class Account:
    """A Dovecot account with the three SUBJECTS messages in INBOX and in
    Work (sync_mode = full), mounted and synced."""

    def __init__(self, dovecot, mailfs_env, mount, run_mailfs, how="offline", poll=1,
                 extra_folders=()):
        self.how = how
        self.run_mailfs = run_mailfs
        mailfs_env.configure(dovecot, poll=3600 if how == "racing" else poll,
                             sync_mode="full")
        self.server = dovecot
        self.c = dovecot.client()
        self.c.select("INBOX")
        for f in ("Work",) + tuple(extra_folders):
            create_folder(self.c, f)
        self.msgs = {}  # (folder, subject) -> bytes
        for folder in ("INBOX", "Work"):
            for i, (subject, date) in enumerate(SUBJECTS):
                msg = srvlib.make_message(subject, date, "Body %d of %s in %s.\n"
                                          % (i, subject, folder))
                srvlib.append(self.c, folder, msg, date_time=date)
                self.msgs[(folder, subject)] = msg
        self.m = mount()
        sync(run_mailfs, self.m)
        for folder in ("Inbox", "Work"):
            for subject, date in SUBJECTS:
                p = self.path(folder, subject)
                wait_for(self.m, lambda: os.path.isfile(p), "initial sync: %s" % p)

    # where a clash happens: INBOX offline; racing, Work (polled only: IDLE
    # would show INBOX's change to the sync first)
    @property
    def folder(self):
        return "Inbox" if self.how == "offline" else "Work"

    @property
    def server_folder(self):
        return "INBOX" if self.how == "offline" else "Work"

    def path(self, folder, subject):
        date = dict(SUBJECTS)[subject]
        return os.path.join(self.m.path, folder, expected_name(subject, date))

    def name(self, subject):
        return expected_name(subject, dict(SUBJECTS)[subject])

    def original(self, subject, folder=None):
        return self.msgs[(folder or self.server_folder, subject)]

    def uid(self, folder, msg):
        for uid, (flags, body) in srvlib.fetch_all(self.c, folder).items():
            if body == msg:
                return uid
        return None

    def server_flags(self, folder, msg):
        for uid, (flags, body) in srvlib.fetch_all(self.c, folder).items():
            if body == msg:
                return server_flags_to_set(flags)
        return None

    def store(self, folder, msg, op, flags):
        uid = self.uid(folder, msg)
        assert uid, "message not on the server"
        self.c.select(srvlib.mailbox_arg(folder))
        typ, data = self.c.uid("STORE", str(uid), op, flags)
        assert typ == "OK", data
        self.c.close()

    def expunge(self, folder, msg):
        uid = self.uid(folder, msg)
        assert uid, "message not on the server"
        self.c.select(srvlib.mailbox_arg(folder))
        typ, data = self.c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        assert typ == "OK", data
        assert self.c.expunge()[0] == "OK"
        self.c.close()

    def clash(self, server_change, local_change):
        """Both changes, made offline or racing the sync."""
        if self.how == "offline":
            offline(self.run_mailfs, self.m)
            server_change()
            local_change()
            online(self.run_mailfs, self.m)
        else:
            server_change()
            local_change()


def edited(msg):
    """The user's version of a message: a line added to the body."""
    return msg + b"A line the user added.\r\n"


# --- 5. flags on both sides -------------------------------------------------------------

@pytest.mark.parametrize("how", HOWS)
def test_flags_both_sides(dovecot, mailfs_env, mount, run_mailfs, how):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Quarterly report")
    item = a.path(a.folder, "Quarterly report")
    name = a.name("Quarterly report")
    uid0 = a.uid(a.server_folder, msg)
    count0 = srvlib.count(c, a.server_folder)

    a.clash(lambda: a.store(a.server_folder, msg, "+FLAGS", "(\\Flagged)"),
            lambda: os.setxattr(item, "user.mail.flags", b"seen $Mine"))

    wait_copies(m, 1)
    check_copy(m, name, "%s/%s" % (a.folder, name), content=msg, flags="seen $Mine")
    # the server's flags stand, on the server and in the item
    wait_for(m, lambda: set(xattr(item, "user.mail.flags").split()) == {"flagged"},
             "the server's flags on %s (now %r)" % (name, xattr(item, "user.mail.flags")))
    assert read(item) == msg
    assert a.server_flags(a.server_folder, msg) == {"flagged"}, \
        "the server's flags were overwritten: %r" % a.server_flags(a.server_folder, msg)
    n = wait_notice(m, name, a.folder)
    body, mv, rm = check_notice(m, n, name, a.folder, copy=name,
                                happened="flags were changed on the server")
    assert_no_notice_on_server(c)

    # the notice's own command restores: the user's flags on the same UID
    run_in_mount(m, mv)
    # the file is there at once, with the user's flags (a flags-only restore
    # merges the copy into the message: the name must not lead to the copy)
    stale = errno_of(os.stat, item)  # checked last, so the rest is checked too
    if stale:
        # (the name stays broken until the directory is read again)
        time.sleep(1)
        stale_after_1s = errno_of(os.stat, item)
        os.listdir(os.path.dirname(item))
    wait_for(m, lambda: os.stat(item) and os.path.isfile(item), "%s reachable again" % item, 5)
    assert set(xattr(item, "user.mail.flags").split()) == {"seen", "$Mine"}
    assert copies(m) == [], "Conflicts/ after the restore: %r" % copies(m)
    wait_for(m, lambda: a.server_flags(a.server_folder, msg) == {"seen", "$Mine"},
             "the user's flags restored on the server (now %r)"
             % a.server_flags(a.server_folder, msg), PUSH)
    assert a.uid(a.server_folder, msg) == uid0, "a flags-only restore made a new message"
    assert srvlib.count(c, a.server_folder) == count0
    assert set(xattr(item, "user.mail.flags").split()) == {"seen", "$Mine"}
    wait_for(m, lambda: state(item) == "synced", "the restored message synced (%s)"
             % state(item))
    assert_no_notice_on_server(c)
    assert stale is None, ("right after `%s`, stat of %s failed with %s (and %s a second "
                           "later; only a readdir of the folder mends it): the name still "
                           "leads to the copy's inode, which the flags-only restore removed"
                           % (mv, item, errno.errorcode[stale],
                              errno.errorcode.get(stale_after_1s, "success")))


# --- 6. edited here, deleted on the server ------------------------------------------------

@pytest.mark.parametrize("how", HOWS)
def test_edit_vs_server_delete(dovecot, mailfs_env, mount, run_mailfs, how):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Lunch")
    mine = edited(msg)
    item = a.path(a.folder, "Lunch")
    name = a.name("Lunch")
    others = [a.original(s) for s, _ in SUBJECTS if s != "Lunch"]

    a.clash(lambda: a.expunge(a.server_folder, msg), lambda: write(item, mine))

    wait_copies(m, 1)
    check_copy(m, name, "%s/%s" % (a.folder, name), content=mine)
    wait_for(m, lambda: not os.path.exists(item), "%s gone (the deletion stands)" % name)
    n = wait_notice(m, name, a.folder)
    body, mv, rm = check_notice(m, n, name, a.folder, copy=name, happened="deleted on the server")
    sync(a.run_mailfs, m)
    assert folder_bodies(c, a.server_folder) == sorted(others), \
        "the server's folder changed: the deletion must stand and nothing be uploaded"
    assert not os.path.exists(item)
    assert_no_notice_on_server(c)

    # restore: the user's version goes to the server
    run_in_mount(m, mv)
    assert copies(m) == []
    wait_server(c, a.server_folder, others + [mine], PUSH * SLOW, mount=m,
                what="the restored message on the server")
    wait_for(m, lambda: state(item) == "synced", "the restored message synced (%s)"
             % state(item))
    assert read(item) == mine


# --- 7. edited here, flags changed on the server ---------------------------------------------

@pytest.mark.parametrize("how", HOWS)
def test_edit_vs_server_flags(dovecot, mailfs_env, mount, run_mailfs, how):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Budget")
    mine = edited(msg)
    item = a.path(a.folder, "Budget")
    name = a.name("Budget")
    others = [a.original(s) for s, _ in SUBJECTS if s != "Budget"]
    uid0 = a.uid(a.server_folder, msg)

    a.clash(lambda: a.store(a.server_folder, msg, "+FLAGS", "(\\Answered)"),
            lambda: write(item, mine))

    wait_copies(m, 1)
    check_copy(m, name, "%s/%s" % (a.folder, name), content=mine)
    n = wait_notice(m, name, a.folder)
    body, mv, rm = check_notice(m, n, name, a.folder, copy=name)
    # the server's version in place: its bytes (read online fetches them) and flags
    wait_for(m, lambda: read(item) == msg, "the server's version of %s back in place "
             "(now %d bytes, state %s)" % (name, len(read(item)), state(item)))
    wait_for(m, lambda: set(xattr(item, "user.mail.flags").split()) == {"answered"},
             "the server's flags on %s (now %r)" % (name, xattr(item, "user.mail.flags")))
    sync(a.run_mailfs, m)
    assert read(item) == msg
    assert folder_bodies(c, a.server_folder) == sorted(others + [msg]), \
        "the server's folder changed: its version must stand, ours not be uploaded"
    assert a.uid(a.server_folder, msg) == uid0
    assert a.server_flags(a.server_folder, msg) == {"answered"}
    assert_no_notice_on_server(c)

    # restore: the user's message on the server, the server's old one gone
    run_in_mount(m, mv)
    assert copies(m) == []
    wait_server(c, a.server_folder, others + [mine], PUSH * SLOW, mount=m,
                what="the user's version replaced the server's")
    wait_for(m, lambda: state(item) == "synced", "the restored message synced (%s)"
             % state(item))
    assert read(item) == mine


# --- 8. deleted here, flags changed on the server ----------------------------------------------

@pytest.mark.parametrize("how", HOWS)
def test_delete_vs_server_flags(dovecot, mailfs_env, mount, run_mailfs, how):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Lunch")
    item = a.path(a.folder, "Lunch")
    name = a.name("Lunch")
    all_msgs = sorted(a.original(s) for s, _ in SUBJECTS)

    a.clash(lambda: a.store(a.server_folder, msg, "+FLAGS", "(\\Flagged)"),
            lambda: os.unlink(item))

    n = wait_notice(m, name, a.folder)
    check_notice(m, n, name, a.folder, happened="comes back")
    sync(a.run_mailfs, m)
    wait_for(m, lambda: os.path.isfile(item), "%s back after a sync" % name)
    sync(a.run_mailfs, m)
    assert read(item) == msg
    assert set(xattr(item, "user.mail.flags").split()) == {"flagged"}
    assert folder_bodies(c, a.server_folder) == all_msgs, "the message was deleted on the server"
    assert a.server_flags(a.server_folder, msg) == {"flagged"}
    assert copies(m) == [], "nothing to keep, yet Conflicts/ holds %r" % copies(m)
    assert_no_notice_on_server(c)


# --- 9. a folder removed on the server with changes inside ------------------------------------

@pytest.mark.parametrize("how", HOWS)
def test_folder_removed_on_server(dovecot, mailfs_env, mount, run_mailfs, how):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Lunch", "Work")
    mine = edited(msg)
    item = a.path("Work", "Lunch")
    name = a.name("Lunch")
    new = srvlib.make_message("Written offline", dt(2026, 11, 27, 8, 0), "New here.\n")
    new_path = os.path.join(m.path, "Work", "mine.eml")

    def local():
        write(item, mine)
        write(new_path, new)

    a.clash(lambda: c.delete("Work"), local)
    if how == "racing":
        # the push meets a folder that is gone; the next list drops it
        time.sleep(1)
        sync(a.run_mailfs, m)

    wait_for(m, lambda: not os.path.exists(os.path.join(m.path, "Work")), "Work/ gone")
    wait_copies(m, 2)
    got = copies(m)
    assert sorted(got) == sorted([name, "mine.eml"]), \
        "Conflicts/ should hold the two changed items only, holds %r" % got
    check_copy(m, name, "Work/" + name, content=mine)
    check_copy(m, "mine.eml", "Work/mine.eml", content=new)
    n = wait_notice(m, "Work", "")
    check_notice(m, n, "Work", "")
    sync(a.run_mailfs, m)
    assert "Work" not in srvlib.list_folders(c), "the folder removed on the server came back"
    assert not os.path.exists(os.path.join(m.path, "Work"))
    assert_no_notice_on_server(c)


# --- 10. a folder renamed here, and renamed or removed on the server ---------------------------

@pytest.mark.parametrize("how,server_side", [("offline", "renamed"), ("offline", "removed"),
                                              ("racing", "renamed")])
def test_folder_renamed_both_sides(dovecot, mailfs_env, mount, run_mailfs, how, server_side):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, how)
    m, c = a.m, a.c
    msg = a.original("Budget", "Work")
    mine = edited(msg)
    name = a.name("Budget")
    work = [a.original(s, "Work") for s, _ in SUBJECTS]

    def server_change():
        if server_side == "renamed":
            assert c.rename("Work", "Done")[0] == "OK"
        else:
            assert c.delete("Work")[0] == "OK"

    def local_change():
        os.rename(os.path.join(m.path, "Work"), os.path.join(m.path, "Projects"))
        write(os.path.join(m.path, "Projects", name), mine)

    a.clash(server_change, local_change)
    time.sleep(1)
    sync(run_mailfs, m)
    sync(run_mailfs, m)

    # the server's name wins
    folders = srvlib.list_folders(c)
    assert "Projects" not in folders, "the local rename reached the server: %r" % folders
    assert "Work" not in folders
    wait_for(m, lambda: not os.path.exists(os.path.join(m.path, "Projects")),
             "Projects/ gone (the server's side stands)")
    if server_side == "renamed":
        assert folder_bodies(c, "Done") == sorted(work), "messages lost on the server"
        done = os.path.join(m.path, "Done")
        wait_for(m, lambda: os.path.isdir(done) and len(os.listdir(done)) == 3,
                 "Done/ with its three messages")
        assert read(os.path.join(done, name)) == msg
    # the change made inside is kept
    wait_copies(m, 1)
    cp = [x for x in copies(m) if x.startswith(name[:-4])]
    assert cp, "the edited message is not in Conflicts/: %r" % copies(m)
    data = read(os.path.join(m.path, "Conflicts", cp[0]))
    assert data == mine, "Conflicts/%s does not hold the user's version" % cp[0]
    assert state(os.path.join(m.path, "Conflicts", cp[0])) == "conflict"
    org = xattr(os.path.join(m.path, "Conflicts", cp[0]), "user.conflict.origin")
    assert org in ("Projects/" + name, "Work/" + name), "origin %r" % org
    assert notices(m), "no notice in Inbox/"
    assert any("you renamed it here" in parse_notice(m, n)[1] for n in notices(m)), \
        "no notice tells of the rename that yielded: %r" % notices(m)
    assert_no_notice_on_server(c)


def test_restore_over_newer_server_flags(dovecot, mailfs_env, mount, run_mailfs):
    """The server's flags change again after the conflict and before the
    restore: the restore still wins (the user chose their version)."""
    a = Account(dovecot, mailfs_env, mount, run_mailfs, "racing")
    m, c = a.m, a.c
    msg = a.original("Lunch", "Work")
    item = a.path("Work", "Lunch")
    name = a.name("Lunch")
    a.clash(lambda: a.store("Work", msg, "+FLAGS", "(\\Flagged)"),
            lambda: os.setxattr(item, "user.mail.flags", b"seen"))
    wait_copies(m, 1)
    wait_for(m, lambda: a.server_flags("Work", msg) == {"flagged"}, "the server's flags stand")
    a.store("Work", msg, "+FLAGS", "(\\Answered)")  # not seen here yet (poll = 3600)
    os.rename(os.path.join(m.path, "Conflicts", name), item)
    wait_for(m, lambda: a.server_flags("Work", msg) == {"seen"},
             "the user's flags restored over the server's newer ones (now %r)"
             % a.server_flags("Work", msg), PUSH)
    sync(run_mailfs, m)
    assert a.server_flags("Work", msg) == {"seen"}
    assert copies(m) == [], "the restore clashed again: Conflicts/ holds %r" % copies(m)


# --- notices: local only ---------------------------------------------------------------------

def test_notice_stays_local(dovecot, mailfs_env, mount, run_mailfs):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, "offline")
    m, c = a.m, a.c
    msg = a.original("Lunch")
    item = a.path("Inbox", "Lunch")
    name = a.name("Lunch")
    a.clash(lambda: a.store("INBOX", msg, "+FLAGS", "(\\Answered)"),
            lambda: os.setxattr(item, "user.mail.flags", b"flagged"))
    n = wait_notice(m, name, "Inbox")
    wait_copies(m, 1)
    npath = os.path.join(m.path, "Inbox", n)
    inbox0 = folder_bodies(c, "INBOX")

    # flags, an edit, a rename: none reaches the server
    os.setxattr(npath, "user.mail.flags", b"seen flagged")
    assert set(xattr(npath, "user.mail.flags").split()) == {"seen", "flagged"}
    text = read(npath) + b"My own note on this.\r\n"
    write(npath, text)
    assert read(npath) == text
    sync(run_mailfs, m)
    time.sleep(1)
    sync(run_mailfs, m)
    assert state(npath) == "local", "the edited notice is %r" % state(npath)
    assert folder_bodies(c, "INBOX") == inbox0, "the notice (or a change to it) reached INBOX"
    assert_no_notice_on_server(c)
    # a remount keeps it as it is
    m.unmount()
    m = mount()
    assert os.path.isfile(npath), "the notice did not survive a remount"
    assert read(npath) == text and state(npath) == "local"
    assert set(xattr(npath, "user.mail.flags").split()) == {"seen", "flagged"}
    check_copy(m, name, "Inbox/" + name, content=msg, flags="flagged")
    sync(run_mailfs, m)
    assert_no_notice_on_server(c)
    # rm: gone here; the server is untouched
    os.unlink(npath)
    assert not os.path.exists(npath)
    sync(run_mailfs, m)
    assert folder_bodies(c, "INBOX") == inbox0
    assert not os.path.exists(npath)


# --- the Conflicts folder: remount, reset, discard, rules -------------------------------------

@pytest.mark.time_limit(180)
def test_copies_survive_remount_and_reset(dovecot, mailfs_env, mount, run_mailfs):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, "offline")
    m, c = a.m, a.c
    msg = a.original("Quarterly report")
    mine = edited(msg)
    item = a.path("Inbox", "Quarterly report")
    name = a.name("Quarterly report")
    a.clash(lambda: a.store("INBOX", msg, "+FLAGS", "(\\Seen)"), lambda: write(item, mine))
    wait_copies(m, 1)
    n = wait_notice(m, name, "Inbox")
    notice_bytes = read(os.path.join(m.path, "Inbox", n))
    check_copy(m, name, "Inbox/" + name, content=mine)

    m.unmount()
    m = mount()
    check_copy(m, name, "Inbox/" + name, content=mine)
    assert n in notices(m), "the notice did not survive a remount"

    m.unmount()
    rc, out, err = run_mailfs("reset", "test", timeout=60)
    assert rc == 0, "mailfs reset failed (%d): %s%s" % (rc, out, err)
    m = mount()
    sync(run_mailfs, m)
    wait_for(m, lambda: os.path.isfile(item), "Inbox/ back after the reset")
    check_copy(m, name, "Inbox/" + name, content=mine)
    # the notice was local only: reset keeps it too (in Inbox/ or in Conflicts/)
    kept = [os.path.join(m.path, "Inbox", x) for x in notices(m)] + \
        [os.path.join(m.path, "Conflicts", x) for x in copies(m)]
    assert any(read(p) == notice_bytes for p in kept), \
        "mailfs reset lost the notice; Conflicts/ holds %r" % copies(m)
    assert_no_notice_on_server(c)

    # a copy kept across the reset still restores
    os.rename(os.path.join(m.path, "Conflicts", name), item)
    wait_server(c, "INBOX", [a.original(s) for s, _ in SUBJECTS if s != "Quarterly report"] +
                [mine], PUSH * SLOW, mount=m,
                what="the copy restored after a reset replaced the server's message")
    assert_no_notice_on_server(c)


def test_copy_names(dovecot, mailfs_env, mount, run_mailfs):
    """The same name clashing again: "NAME (from FOLDER).eml", then " (2)";
    each notice names its own copy, and its mv restores that one."""
    a = Account(dovecot, mailfs_env, mount, run_mailfs, "offline")
    m, c = a.m, a.c
    name = a.name("Quarterly report")
    base = name[:-4]

    def flags_clash(folder, server_folder, flag, mine):
        msg = a.original("Quarterly report", server_folder)
        a.clash(lambda: a.store(server_folder, msg, "+FLAGS", "(%s)" % flag),
                lambda: os.setxattr(a.path(folder, "Quarterly report"), "user.mail.flags",
                                    mine.encode()))

    want = [(name, "Inbox", "INBOX", "\\Flagged", "seen"),
            (base + " (from Work).eml", "Work", "Work", "\\Flagged", "seen"),
            (base + " (from Work) (2).eml", "Work", "Work", "\\Answered", "seen draft")]
    seen = []
    for i, (copy, folder, server_folder, flag, mine) in enumerate(want):
        before = notices(m)
        flags_clash(folder, server_folder, flag, mine)
        wait_copies(m, i + 1)
        assert copy in copies(m), "Conflicts/ holds %r, want %r among them" % (copies(m), copy)
        check_copy(m, copy, "%s/%s" % (folder, name),
                   content=a.original("Quarterly report", server_folder), flags=mine)
        wait_for(m, lambda: len(notices(m)) > len(before), "a new notice")
        new = sorted(set(notices(m)) - set(before))
        assert len(new) == 1, new
        body, mv, rm = check_notice(m, new[0], name, folder, copy=copy)
        seen.append((copy, folder, server_folder, mine, mv))
    # the last one's own command puts its flags back on the message in Work
    copy, folder, server_folder, mine, mv = seen[-1]
    run_in_mount(m, mv)
    assert sorted(copies(m)) == sorted([name, base + " (from Work).eml"]), copies(m)
    msg = a.original("Quarterly report", "Work")
    wait_for(m, lambda: a.server_flags("Work", msg) == set(mine.split()),
             "the restored flags on the server (now %r)" % a.server_flags("Work", msg), PUSH)
    assert a.server_flags("INBOX", a.original("Quarterly report", "INBOX")) == {"flagged"}
    assert_no_notice_on_server(c)


def test_discard_and_rules(dovecot, mailfs_env, mount, run_mailfs):
    a = Account(dovecot, mailfs_env, mount, run_mailfs, "offline")
    m, c = a.m, a.c
    q, lunch = a.original("Quarterly report"), a.original("Lunch")
    qname, lname = a.name("Quarterly report"), a.name("Lunch")
    offline(run_mailfs, m)
    a.store("INBOX", q, "+FLAGS", "(\\Flagged)")
    a.store("INBOX", lunch, "+FLAGS", "(\\Flagged)")
    os.setxattr(a.path("Inbox", "Quarterly report"), "user.mail.flags", b"seen")
    os.setxattr(a.path("Inbox", "Lunch"), "user.mail.flags", b"seen")
    online(run_mailfs, m)
    wait_copies(m, 2)
    before = srvlib.server_dump(c)
    conf = os.path.join(m.path, "Conflicts")

    # mv inside Conflicts/: a local rename, still a copy with its origin
    os.rename(os.path.join(conf, qname), os.path.join(conf, "kept.eml"))
    check_copy(m, "kept.eml", "Inbox/" + qname, content=q, flags="seen")
    # nothing new can be made in Conflicts/
    assert errno_of(write, os.path.join(conf, "new.eml"), q) == errno.EPERM
    # to a folder of another kind there is none in a mail-only account; to the root: refused
    e = errno_of(os.rename, os.path.join(conf, "kept.eml"), os.path.join(m.path, "kept.eml"))
    assert e in (errno.EPERM, errno.EXDEV), "mv of a copy to the root: %r" % e
    # rm discards, here only
    os.unlink(os.path.join(conf, lname))
    os.unlink(os.path.join(conf, "kept.eml"))
    assert copies(m) == []
    sync(run_mailfs, m)
    assert srvlib.server_dump(c) == before, "discarding copies changed the server"
    assert set(xattr(a.path("Inbox", "Lunch"), "user.mail.flags").split()) == {"flagged"}


# --- 100 at once -----------------------------------------------------------------------------

@pytest.mark.time_limit(240)
def test_hundred_flag_conflicts(dovecot, mailfs_env, mount, run_mailfs):
    mailfs_env.configure(dovecot, poll=1)
    c = dovecot.client()
    c.select("INBOX")
    msgs = [srvlib.make_message("Bulk %03d" % i, dt(2026, 3, 1, 10, i % 60),
                                "Message %d.\n" % i) for i in range(100)]
    dovecot.append_many("INBOX", msgs)
    m = mount()
    sync(run_mailfs, m)
    inbox = os.path.join(m.path, "Inbox")
    wait_for(m, lambda: len(os.listdir(inbox)) == 100, "100 messages in Inbox/")
    names = sorted(os.listdir(inbox))

    offline(run_mailfs, m)
    c.select("INBOX")
    assert c.uid("STORE", "1:*", "+FLAGS", "(\\Flagged)")[0] == "OK"
    c.close()
    for n in names:
        os.setxattr(os.path.join(inbox, n), "user.mail.flags", b"seen")
    t0 = time.monotonic()
    online(run_mailfs, m)
    wait_copies(m, 100, timeout=60)
    took = time.monotonic() - t0
    assert took < 60 * SLOW, "100 conflicts took %.1f s" % took
    sync(run_mailfs, m)
    got = copies(m)
    assert sorted(got) == names, "Conflicts/ should hold the 100 messages: %d files, %r..." \
        % (len(got), sorted(set(got) ^ set(names))[:5])
    conf = os.path.join(m.path, "Conflicts")
    for n in names:
        p = os.path.join(conf, n)
        assert state(p) == "conflict" and xattr(p, "user.conflict.origin") == "Inbox/" + n
        assert xattr(p, "user.mail.flags") == "seen", n
        assert set(xattr(os.path.join(inbox, n), "user.mail.flags").split()) == {"flagged"}, n
    # nothing lost: every message on the server with the server's flags
    fl = folder_flags(c, "INBOX")
    assert sorted(fl) == sorted(msgs), "messages lost on the server"
    assert all(v == {"flagged"} for v in fl.values()), \
        "the server's flags did not stand: %r" % [v for v in fl.values() if v != {"flagged"}][:3]
    assert notices(m), "no notice in Inbox/"
    assert_no_notice_on_server(c)
