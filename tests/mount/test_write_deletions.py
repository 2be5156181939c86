"""Deletions come only from the journal (DESIGN section 3, issue 3): a
deleted or truncated store database, lost content files, or a UIDVALIDITY
change with a local rm pending never delete anything on the server. The
server is counted with imaplib before and after; the daemon must not crash
(the mount fixture fails the test on a sanitizer report)."""

import os
import re

import pytest

from mailfs_testlib import (SLOW, dovecot as srvlib, dt, expected_name, folder_bodies,
                            message_files, populate_basic, server_state, wait_until,
                            while_alive, xattr)

SYNC = 10
PUSH = 10
QUARTERLY = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
LUNCH = "Inbox/" + expected_name("Lunch?", dt(2026, 11, 25, 12, 30))
INVOICE1 = "Archive/2025/" + expected_name("Invoice 2025-001", dt(2025, 2, 3, 4, 5))
INVOICE2 = "Archive/2025/" + expected_name("Invoice 2025-002", dt(2025, 3, 3, 4, 5))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def store_db(mailfs_env):
    return os.path.join(mailfs_env.store(), "store.db")


def all_bodies(c):
    return sorted(b for f in srvlib.list_folders(c) for b in folder_bodies(c, f))


def content_files(mailfs_env, body):
    """Files in the store that hold exactly body."""
    out = []
    for dirpath, _, files in os.walk(mailfs_env.store()):
        for n in files:
            p = os.path.join(dirpath, n)
            try:
                with open(p, "rb") as f:
                    if f.read() == body:
                        out.append(p)
            except OSError:
                pass
    return out


def prepare(account, mount):
    """The small account, mounted once, with a message the user copied in
    (so the store maps local names to UIDs); unmounted again. Returns
    (client, {path: bytes} the mount showed)."""
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    mine = srvlib.make_message("Mine", dt(2026, 9, 9, 9, 9), "mine\n")
    (m / "Inbox/mine.eml").write_bytes(mine)
    wait_until(while_alive(m, lambda: xattr(m / "Inbox/mine.eml", "user.sync.state") ==
                           "synced"), PUSH * SLOW, what="mine.eml on the server")
    expected["Inbox/mine.eml"] = mine
    m.unmount()
    return c, expected


def settle(run_mailfs, m, c, state):
    """Sync twice through the mount (and let polls run): the server still
    holds exactly `state`."""
    for _ in range(2):
        rc, out, err = run_mailfs("sync", m.path)
        assert rc == 0, err
    assert server_state(c) == state


@pytest.mark.parametrize("damage", ["delete-db", "truncate-db"])
def test_lost_database_deletes_nothing(damage, account, mount, mailfs_env, run_mailfs):
    c, expected = prepare(account, mount)
    state = server_state(c)
    db = store_db(mailfs_env)
    if damage == "delete-db":
        for p in (db, db + "-wal", db + "-shm"):
            if os.path.exists(p):
                os.unlink(p)
    else:
        os.truncate(db, 0)

    # either a resync from the server, or a clear refusal (one-shot sync and
    # mount alike)
    rc, out, err = run_mailfs("sync", "test")
    if rc != 0:
        assert re.search(r"store", err), "no clear error: %s" % err
        rc, text = mount.expect_failure()
        assert "store" in text, text
        assert server_state(c) == state
        return
    m = mount()
    server = all_bodies(c)
    wait_until(lambda: sorted(message_files(m.path).values()) == server, SYNC * SLOW,
               what="the mount shows the server's messages again")
    settle(run_mailfs, m, c, state)
    m.unmount()
    assert server_state(c) == state


def test_lost_content_deletes_nothing(account, mount, mailfs_env, run_mailfs):
    c, expected = prepare(account, mount)
    # an edit made while the server is down waits in the journal
    account.stop()
    m = mount()
    edited = expected[QUARTERLY].replace(b"Message 0", b"Edited 0")
    (m / QUARTERLY).write_bytes(edited)
    assert xattr(m / QUARTERLY, "user.sync.state") == "pending"
    m.unmount()
    account.start()
    c = account.client()
    state = server_state(c)

    # lose the content of the pending edit, of a synced message and of the
    # user's own message
    for body in (edited, expected[LUNCH], expected["Inbox/mine.eml"]):
        files = content_files(mailfs_env, body)
        assert files, "no content file holds %r" % body[:60]
        for p in files:
            os.unlink(p)

    m = mount()
    for rel in (QUARTERLY, LUNCH, "Inbox/mine.eml"):
        try:
            read(m / rel)  # the content or an error, never a crash
        except OSError:
            pass
    settle(run_mailfs, m, c, state)
    assert folder_bodies(c, "INBOX").count(expected[QUARTERLY]) == 1, \
        "the old version went although the new one was never sent"
    m.unmount()
    assert server_state(c) == state


def uidvalidity(c, folder):
    typ, data = c.status(srvlib.mailbox_arg(folder), "(UIDVALIDITY)")
    return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def test_uidvalidity_change_cancels_pending_delete(account, mount, run_mailfs):
    c, expected = prepare(account, mount)
    # offline: rm one invoice, flag the other
    account.stop()
    m = mount()
    os.unlink(m / INVOICE1)
    os.setxattr(m / INVOICE2, "user.mail.flags", b"flagged")
    m.unmount()

    # another client recreates the folder with the same messages in the
    # other order: the UID of the removed invoice now names the other one
    account.start()
    c = account.client()
    before = uidvalidity(c, "Archive/2025")
    msgs = sorted(srvlib.fetch_all(c, "Archive/2025").items())
    c.select("INBOX")
    assert c.delete(srvlib.mailbox_arg("Archive/2025"))[0] == "OK"
    assert c.create(srvlib.mailbox_arg("Archive/2025"))[0] == "OK"
    for uid, (flags, body) in reversed(msgs):
        srvlib.append(c, "Archive/2025", body,
                      flags=[f for f in flags if f != "\\Recent"])
    assert uidvalidity(c, "Archive/2025") != before
    state = server_state(c)

    m = mount()
    settle(run_mailfs, m, c, state)
    assert sorted(folder_bodies(c, "Archive/2025")) == sorted(
        [expected[INVOICE1], expected[INVOICE2]])
    # the mount shows the server's folder again, each message once
    wait_until(lambda: sorted(b for p, b in message_files(m.path).items()
                              if p.startswith("Archive/2025/")) ==
               sorted([expected[INVOICE1], expected[INVOICE2]]), SYNC * SLOW,
               what="Archive/2025 shows the server's two messages")
    m.unmount()
    m = mount()
    settle(run_mailfs, m, c, state)
