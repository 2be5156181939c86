"""Crash safety in the window no durable step covers (issue 3): "A message
appended just before a crash, whose UID was never recorded, is found again
(APPENDUID, or a tag header the journal chose before the APPEND), never
appended twice." A proxy lets the command through to the server but
swallows every answer after it (mailfs_testlib.HoldingProxy); once the
server has carried it out the daemon is killed with SIGKILL, and a remount
must finish the change exactly once -- also when the user moved the file in
the meantime, and for moves and edits."""

import os
import re

import pytest

from mailfs_testlib import (ALL_EXTENSIONS, SLOW, HoldingProxy, dovecot as srvlib, dt,
                            expected_name, folder_bodies, message_files, populate_basic,
                            wait_until, xattr)

SYNC = 10
PUSH = 10
QUARTERLY = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))


def new_message(message_id=True):
    m = srvlib.make_message("Appended before a crash", dt(2026, 10, 10, 10, 10),
                            "sent, never recorded\n")
    if not message_id:
        m = re.sub(rb"Message-ID: [^\r]*\r\n", b"", m)
    return m


def everywhere(c):
    """[(folder, body)] of every message on the server."""
    return [(f, b) for f in srvlib.list_folders(c) for b in folder_bodies(c, f)]


def held_mount(dovecot, mailfs_env, mount, tmp_path, pattern):
    """Mount through a HoldingProxy (config written beside the normal one);
    wait for the initial sync. Returns (Mount, proxy)."""
    proxy = HoldingProxy(dovecot.host, dovecot.port, pattern)
    cfg = str(tmp_path / "held.conf")
    mailfs_env.write_config({"test": mailfs_env.account_for(dovecot, port=proxy.port)},
                            path=cfg)
    m = mount(config=cfg)
    return m, proxy


def crash_when_done(m, proxy, done):
    """Wait until the proxy held an answer back and `done()` holds on the
    server, then SIGKILL the daemon and detach its mount."""
    wait_until(lambda: proxy.held.is_set() and done(), PUSH * SLOW,
               what="the server carried the command out")
    m.kill()
    proxy.close()


def unreachable_mount(dovecot, mailfs_env, mount, tmp_path):
    """Mount with the account pointed at a port nobody listens on: the user
    works while the server cannot be reached."""
    dead = str(tmp_path / "dead.conf")
    mailfs_env.write_config({"test": mailfs_env.account_for(dovecot,
                                                              port=srvlib.free_port())},
                            path=dead)
    return mount(config=dead)


def settle(run_mailfs, m, upload=False):
    for _ in range(2):
        rc, out, err = run_mailfs("sync", m.path)
        assert rc == 0, "mailfs sync failed after the crash: %s" % err
    if upload:
        # the remounted daemon did have to look for the upload
        assert "uploaded before an interruption" in m.stderr(), \
            "the upload was not found again after the crash:\n" + m.stderr()[-3000:]


SERVERS = [({}, "extensions"), ({"hide_capabilities": ALL_EXTENSIONS}, "bare-imap4rev1")]


@pytest.mark.parametrize("message_id", [True, False], ids=["message-id", "no-message-id"])
@pytest.mark.parametrize("dovecot", [s for s, _ in SERVERS], ids=[i for _, i in SERVERS],
                         indirect=True)
def test_append_answer_lost(dovecot, message_id, mailfs_env, mount, run_mailfs, tmp_path):
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m, proxy = held_mount(dovecot, mailfs_env, mount, tmp_path, rb"^\S+ APPEND ")
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    msg = new_message(message_id)
    (m / "Inbox/new.eml").write_bytes(msg)
    crash_when_done(m, proxy, lambda: msg in folder_bodies(c, "INBOX"))

    m = mount()
    settle(run_mailfs, m, upload=True)
    assert [f for f, b in everywhere(c) if b == msg] == ["INBOX"], \
        "the message is not on the server exactly once"
    files = message_files(m.path)
    assert [p for p, b in files.items() if b == msg] == ["Inbox/new.eml"]
    assert xattr(m / "Inbox/new.eml", "user.sync.state") == "synced"
    assert sorted(files.values()) == sorted(b for _, b in everywhere(c))


@pytest.mark.parametrize("collide", [False, True], ids=["uids-apart", "uids-collide"])
def test_append_answer_lost_then_moved(collide, dovecot, mailfs_env, mount, run_mailfs,
                                       tmp_path):
    """The file is moved to another folder before the remounted daemon
    finds its upload: the message must end in the new folder, once."""
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    if collide:
        # Archive gets the UID the upload to INBOX receives (4)
        for i in range(3):
            body = srvlib.make_message("Filler %d" % i, dt(2024, 1, 1 + i))
            srvlib.append(c, "Archive", body)
            expected["Archive/" + expected_name("Filler %d" % i, dt(2024, 1, 1 + i))] = body
    m, proxy = held_mount(dovecot, mailfs_env, mount, tmp_path, rb"^\S+ APPEND ")
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    msg = new_message()
    (m / "Inbox/new.eml").write_bytes(msg)
    crash_when_done(m, proxy, lambda: msg in folder_bodies(c, "INBOX"))

    # the user moves the file while the server cannot be reached
    m = unreachable_mount(dovecot, mailfs_env, mount, tmp_path)
    os.rename(m / "Inbox/new.eml", m / "Archive/new.eml")
    m.unmount()

    m = mount()
    settle(run_mailfs, m, upload=True)
    assert [f for f, b in everywhere(c) if b == msg] == ["Archive"], \
        "the message should be in Archive, once: %r" % [f for f, b in everywhere(c) if b == msg]
    files = message_files(m.path)
    assert [p for p, b in files.items() if b == msg] == ["Archive/new.eml"]
    assert xattr(m / "Archive/new.eml", "user.sync.state") == "synced"
    assert sorted(files.values()) == sorted(b for _, b in everywhere(c))


@pytest.mark.parametrize("dovecot", [s for s, _ in SERVERS], ids=[i for _, i in SERVERS],
                         indirect=True)
def test_move_answer_lost(dovecot, mailfs_env, mount, run_mailfs, tmp_path):
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m, proxy = held_mount(dovecot, mailfs_env, mount, tmp_path, rb"^\S+ UID (MOVE|COPY) ")
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    body = expected[QUARTERLY]
    os.rename(m / QUARTERLY, m / "Archive" / os.path.basename(QUARTERLY))
    crash_when_done(m, proxy, lambda: body in folder_bodies(c, "Archive"))

    m = mount()
    settle(run_mailfs, m)
    assert [f for f, b in everywhere(c) if b == body] == ["Archive"], \
        "the moved message should be in Archive, once"
    files = message_files(m.path)
    assert [p for p, b in files.items() if b == body] == [
        "Archive/" + os.path.basename(QUARTERLY)]
    assert sorted(files.values()) == sorted(b for _, b in everywhere(c))


@pytest.mark.parametrize("dovecot", [s for s, _ in SERVERS], ids=[i for _, i in SERVERS],
                         indirect=True)
def test_move_answer_lost_then_deleted(dovecot, mailfs_env, mount, run_mailfs, tmp_path):
    """The moved file is deleted before the remounted daemon settles its
    move: no copy may survive in either folder (the random SIGKILL test
    found the moved copy coming back)."""
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m, proxy = held_mount(dovecot, mailfs_env, mount, tmp_path, rb"^\S+ UID (MOVE|COPY) ")
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    body = expected[QUARTERLY]
    moved = "Archive/" + os.path.basename(QUARTERLY)
    os.rename(m / QUARTERLY, m / moved)
    crash_when_done(m, proxy, lambda: body in folder_bodies(c, "Archive"))

    # the user deletes it while the server cannot be reached
    m = unreachable_mount(dovecot, mailfs_env, mount, tmp_path)
    os.unlink(m / moved)
    m.unmount()

    m = mount()
    settle(run_mailfs, m)
    assert [f for f, b in everywhere(c) if b == body] == [], \
        "the deleted message is still on the server: %r" % [f for f, b in everywhere(c)
                                                            if b == body]
    files = message_files(m.path)
    assert body not in files.values()
    del expected[QUARTERLY]
    assert files == expected
    assert sorted(files.values()) == sorted(b for _, b in everywhere(c))


@pytest.mark.parametrize("dovecot", [s for s, _ in SERVERS], ids=[i for _, i in SERVERS],
                         indirect=True)
def test_replace_answer_lost(dovecot, mailfs_env, mount, run_mailfs, tmp_path):
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m, proxy = held_mount(dovecot, mailfs_env, mount, tmp_path, rb"^\S+ APPEND ")
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    old = expected[QUARTERLY]
    new = old.replace(b"Message 0", b"Edited message 0")
    (m / QUARTERLY).write_bytes(new)
    crash_when_done(m, proxy, lambda: new in folder_bodies(c, "INBOX"))

    m = mount()
    settle(run_mailfs, m, upload=True)
    inbox = folder_bodies(c, "INBOX")
    assert inbox.count(new) == 1 and old not in inbox, \
        "INBOX should hold the new version once and not the old one"
    assert message_files(m.path)[QUARTERLY] == new
    assert sorted(message_files(m.path).values()) == sorted(b for _, b in everywhere(c))
