"""mailfs reindex and mailfs reset against a real Dovecot (DESIGN section 7,
issue 8): reindex brings lost content back from the server byte for byte and
refuses to run under a mount; reset keeps every change not yet on the server
in Conflicts/ (what the user wrote, where it came from) and the tree then
equals the server, mounted (no remount needed) or not. Neither ever deletes
anything on the server: it is counted with imaplib before and after."""

import os
import sqlite3

import pytest

from mailfs_testlib import (SLOW, dovecot as srvlib, dt, expected_name, message_files,
                            populate_basic, server_state, wait_until, while_alive, xattr)

SYNC = 15
INBOX_Q = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
INBOX_L = "Inbox/" + expected_name("Lunch?", dt(2026, 11, 25, 12, 30))
INVOICE1 = "Archive/2025/" + expected_name("Invoice 2025-001", dt(2025, 2, 3, 4, 5))
INVOICE2 = "Archive/2025/" + expected_name("Invoice 2025-002", dt(2025, 3, 3, 4, 5))
OLD = "Archive/" + expected_name("Old thread", dt(2019, 5, 6, 7, 8))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def counts(c):
    """{folder: number of messages} on the server."""
    return {f: srvlib.count(c, f) for f in srvlib.list_folders(c)}


def content_files(store, body):
    """Files under the store's content/ that hold exactly body."""
    out = []
    for dirpath, _, files in os.walk(os.path.join(store, "content")):
        for n in files:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                if f.read() == body:
                    out.append(p)
    return out


def db_rows(store, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(store, "store.db"), uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def origin(m, store, name):
    """Where a file of Conflicts/ came from: user.conflict.origin when the
    mount offers it, else the store's origin column."""
    try:
        return xattr(m / "Conflicts" / name, "user.conflict.origin")
    except OSError:
        rows = db_rows(store, "SELECT i.origin FROM items i JOIN folders f ON f.id = i.folder_id "
                              "WHERE f.kind = 6 AND i.name = ?", (name,))
        assert rows, "no %s in Conflicts/ in the store" % name
        return rows[0][0]


def synced(account, mount):
    """The small account, mounted and synced. Returns (client, expected
    {path: bytes}, mount)."""
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="initial sync")
    return c, expected, m


def conflict_files(m):
    d = m / "Conflicts"
    return {n: read(d / n) for n in os.listdir(d)}


# --- reindex ------------------------------------------------------------------------

def test_reindex_brings_lost_content_back(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    m.unmount()
    before = counts(c)
    state = server_state(c)
    store = mailfs_env.store()

    # lose two Inbox messages (full mode) and one of Archive/2025 (headers
    # mode), cut a fourth short
    for rel in (INBOX_Q, INBOX_L, INVOICE1):
        files = content_files(store, expected[rel])
        assert files, rel
        for p in files:
            os.unlink(p)
    cut = content_files(store, expected[OLD])
    assert cut
    os.truncate(cut[0], 10)

    rc, out, err = run_mailfs("reindex", "test")
    assert rc == 0, out + err
    assert out.count("will be fetched again from the server") == 4, out
    assert "the store is consistent" in out, out
    rc, out, err = run_mailfs("reindex", "test")
    assert rc == 0, out + err
    assert "0 problems found" in out, out

    m = mount()
    # Inbox syncs in full mode: its sync alone brings them back into the
    # store, nobody reading them.
    for rel in (INBOX_Q, INBOX_L):
        wait_until(while_alive(m, lambda: content_files(store, expected[rel])), SYNC * SLOW,
                   what="%s fetched again by the sync" % rel)
    # Reading (online) fetches what a sync has not brought yet (headers-mode
    # folders): every file, byte for byte as the server has it.
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="the lost messages are back")
    for rel, body in expected.items():
        assert os.stat(m / rel).st_size == len(body), rel
    m.unmount()
    assert counts(c) == before
    assert server_state(c) == state


def test_reindex_refuses_while_mounted(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    rc, out, err = run_mailfs("reindex", "test")
    assert rc != 0
    assert "is mounted at %s" % m.path in err, err
    assert "unmount it first" in err, err
    # the mount goes on unharmed
    assert message_files(m.path) == expected


def test_reindex_damaged_database(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    m.unmount()
    before = counts(c)
    db = os.path.join(mailfs_env.store(), "store.db")
    with open(db, "r+b") as f:
        f.write(b"this is no database" * 10)
    rc, out, err = run_mailfs("reindex", "test")
    assert rc == 1, out + err
    assert "cannot be read" in err and "mailfs reset" in err, err
    # reset puts it aside whole, and the next mount syncs again
    rc, out, err = run_mailfs("reset", "test")
    assert rc == 0, out + err
    assert "moved to" in out, out
    m = mount()
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="synced again after the damaged store was put aside")
    m.unmount()
    assert counts(c) == before


# --- reset ----------------------------------------------------------------------------

NEW = srvlib.make_message("Written offline", dt(2026, 12, 1, 9, 0), "new, offline\n")
EDIT = srvlib.make_message("Invoice 2025-001", dt(2025, 2, 3, 4, 5), "my corrected invoice\n")
INNER = srvlib.make_message("In a new folder", dt(2026, 12, 2, 9, 0), "inside\n")


def offline_changes(m, run_mailfs):
    """cp, edit, rm, mkdir + cp, flags: every kind of change, offline."""
    rc, out, err = run_mailfs("offline", m.path)
    assert rc == 0, err
    (m / "Inbox" / "new.eml").write_bytes(NEW)
    with open(m / INVOICE1, "wb") as f:
        f.write(EDIT)
    os.unlink(m / INBOX_L)
    os.mkdir(m / "Projects")
    (m / "Projects" / "inner.eml").write_bytes(INNER)
    os.setxattr(m / INVOICE2, "user.mail.flags", b"seen flagged")
    assert xattr(m / "Inbox" / "new.eml", "user.sync.state") in ("pending", "local")
    assert xattr(m / INVOICE1, "user.sync.state") == "pending"


def check_conflicts(m, store, expected):
    files = conflict_files(m)
    name1 = os.path.basename(INVOICE1)
    name2 = os.path.basename(INVOICE2)
    assert files.get("new.eml") == NEW, sorted(files)
    assert files.get(name1) == EDIT, sorted(files)
    assert files.get("inner.eml") == INNER, sorted(files)
    # the flag change kept its message (the content the server has)
    assert files.get(name2) == expected[INVOICE2], sorted(files)
    assert origin(m, store, "new.eml") == "Inbox/new.eml"
    assert origin(m, store, name1) == INVOICE1
    assert origin(m, store, "inner.eml") == "Projects/inner.eml"
    for n in files:
        assert xattr(m / "Conflicts" / n, "user.sync.state") == "conflict"


def test_reset_not_mounted_keeps_offline_changes(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    before = counts(c)
    state = server_state(c)
    offline_changes(m, run_mailfs)
    m.unmount()

    rc, out, err = run_mailfs("reset", "test")
    assert rc == 0, out + err
    assert "Conflicts/new.eml <- Inbox/new.eml" in out, out
    assert "Conflicts/%s <- %s" % (os.path.basename(INVOICE1), INVOICE1) in out, out
    assert "Conflicts/inner.eml <- Projects/inner.eml" in out, out
    assert "not sent: the deletion of message" in out, out
    assert "the next mount of test syncs everything again" in out, out
    store = mailfs_env.store()
    assert db_rows(store, "SELECT count(*) FROM folders") == [(1,)]
    assert db_rows(store, "SELECT count(*) FROM journal") == [(0,)]
    assert db_rows(store, "SELECT value FROM meta WHERE key = 'mode'") == [("offline",)]
    assert db_rows(store, "SELECT count(*) FROM meta WHERE key = 'last_opened'") == [(0,)]
    assert counts(c) == before and server_state(c) == state

    # offline is sticky: online first, then the next mount syncs it all
    rc, out, err = run_mailfs("online", "test")
    assert rc == 0, err
    m = mount()
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="the tree equals the server again")
    check_conflicts(m, store, expected)
    # nothing of it reached the server, nothing was deleted there
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    assert set(os.listdir(m.path)) >= {"Inbox", "Archive", "Conflicts"}
    assert "Projects" not in os.listdir(m.path)
    m.unmount()
    assert counts(c) == before
    assert server_state(c) == state


def test_reset_mounted_offline_then_online(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    before = counts(c)
    state = server_state(c)
    offline_changes(m, run_mailfs)

    rc, out, err = run_mailfs("reset", "test")
    assert rc == 0, out + err
    assert "Conflicts/new.eml <- Inbox/new.eml" in out, out
    assert "the account is offline" in out, out
    # the kernel forgot the old tree at once: only Conflicts/ is left
    assert os.listdir(m.path) == ["Conflicts"]
    check_conflicts(m, mailfs_env.store(), expected)

    rc, out, err = run_mailfs("online", m.path)
    assert rc == 0, err
    wait_until(while_alive(m, lambda: message_files(m.path) == expected), SYNC * SLOW,
               what="the tree equals the server again, without a remount")
    check_conflicts(m, mailfs_env.store(), expected)
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    assert counts(c) == before
    assert server_state(c) == state


def test_reset_mounted_refreshes_tree(account, mount, mailfs_env, run_mailfs):
    c, expected, m = synced(account, mount)
    before = counts(c)
    state = server_state(c)
    old_ino = os.stat(m / INBOX_Q).st_ino
    old_dir = os.stat(m / "Inbox").st_ino
    os.listdir(m / "Archive/2025")  # cached listings, too

    rc, out, err = run_mailfs("reset", "test")
    assert rc == 0, out + err
    assert "synced again from the server" in out, out
    # every file is back, as new entries the kernel looked up afresh
    assert message_files(m.path) == expected
    assert os.stat(m / INBOX_Q).st_ino != old_ino
    assert os.stat(m / "Inbox").st_ino != old_dir
    assert conflict_files(m) == {}
    m.unmount()
    assert counts(c) == before
    assert server_state(c) == state


def test_reset_without_store(mailfs_env, run_mailfs, account):
    rc, out, err = run_mailfs("reset", "test")
    assert rc == 1
    assert "no store" in err, err
    rc, out, err = run_mailfs("reindex", "test")
    assert rc == 1
    assert "no store" in err, err
    rc, out, err = run_mailfs("reindex")
    assert rc == 2
