"""Keeping the mount current (DESIGN sections 3 and 5): the initial sync, new
mail by IDLE, other changes by polling, UIDVALIDITY changes, `mailfs sync`
with and without a mount, servers without extensions, a server that goes
away and comes back. The server side is read with imaplib only."""

import os
import re

import pytest

from mailfs_testlib import (ALL_EXTENSIONS, SLOW, TcpRecorder, dovecot as srvlib, dt, expected_name,
                            find_by_content, message_files, populate_basic,
                            server_state, tree_identity, wait_until)

SYNC = 10     # seconds an initial sync of a handful of messages may take
IDLE = 2      # new INBOX mail must show within this (the target is 1 s)
POLLED = 5    # other changes: within a few polls of 1 s


def wait_tree(mnt, expected, timeout=SYNC):
    wait_until(lambda: message_files(mnt) == expected, timeout * SLOW,
               what="the mount shows exactly the server's messages")


def flags_of(path):
    return set(os.getxattr(path, "user.mail.flags").decode().split())


def uid_of(client, folder, body):
    for uid, (_, b) in srvlib.fetch_all(client, folder).items():
        if b == body:
            return uid
    raise AssertionError("message not on the server")


def test_new_inbox_mail_by_idle(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    for i in range(3):
        date = dt(2027, 1, 1, 12, i)
        msg = srvlib.make_message("Pushed %d" % i, date, "idle %d\n" % i)
        srvlib.append(c, "INBOX", msg)
        name = expected_name("Pushed %d" % i, date)
        # listdir, never a stat of the name: a negative lookup may be cached
        wait_until(lambda: name in os.listdir(m / "Inbox"), IDLE,
                   what="new INBOX mail listed within %d s (IDLE)" % IDLE)
        with open(m / "Inbox" / name, "rb") as f:
            assert f.read() == msg


def test_changes_by_poll(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)

    # a new message in another folder
    date = dt(2027, 2, 2, 2, 2)
    msg = srvlib.make_message("Filed later", date)
    srvlib.append(c, "Archive/2025", msg)
    rel = "Archive/2025/" + expected_name("Filed later", date)
    wait_until(lambda: os.path.basename(rel) in os.listdir(m / "Archive/2025"), POLLED * SLOW,
               what="new message in Archive/2025")
    with open(m / rel, "rb") as f:
        assert f.read() == msg
    expected[rel] = msg

    # a flag change
    target = "Inbox/" + expected_name("Lunch?", dt(2026, 11, 25, 12, 30))
    assert flags_of(m / target) == set()
    c.select("INBOX")
    uid = uid_of(c, "INBOX", expected[target])
    c.select("INBOX")
    assert c.uid("STORE", str(uid), "+FLAGS", "(\\Seen \\Flagged $Label1)")[0] == "OK"
    wait_until(lambda: flags_of(m / target) == {"seen", "flagged", "$Label1"}, POLLED * SLOW,
               what="flags +seen +flagged +$Label1")
    assert c.uid("STORE", str(uid), "-FLAGS", "(\\Flagged)")[0] == "OK"
    wait_until(lambda: flags_of(m / target) == {"seen", "$Label1"}, POLLED * SLOW,
               what="flag -flagged")

    # an expunge
    gone = "Archive/" + expected_name("Old thread", dt(2019, 5, 6, 7, 8))
    c.select("Archive")
    uid = uid_of(c, "Archive", expected[gone])
    c.select("Archive")
    c.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
    c.expunge()
    wait_until(lambda: os.path.basename(gone) not in os.listdir(m / "Archive"), POLLED * SLOW,
               what="expunged message gone")
    del expected[gone]

    # a new folder
    assert c.create("Projects")[0] == "OK"
    date = dt(2027, 3, 3, 3, 3)
    msg = srvlib.make_message("Kickoff", date)
    srvlib.append(c, "Projects", msg)
    wait_until(lambda: "Projects" in os.listdir(m.path), POLLED * SLOW, what="new folder")
    rel = "Projects/" + expected_name("Kickoff", date)
    expected[rel] = msg
    wait_tree(m.path, expected, POLLED)


def test_uidvalidity_change(account, mount, run_mailfs):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    ident = tree_identity(m.path)
    before_counts = {f: srvlib.count(c, f) for f in srvlib.list_folders(c)}

    # delete Archive/2025 and make it again with the same messages
    old = srvlib.fetch_all(c, "Archive/2025")
    uidv = lambda: int(re.search(rb"UIDVALIDITY (\d+)",  # noqa: E731
                                 c.status('"Archive/2025"', "(UIDVALIDITY)")[1][0]).group(1))
    v1 = uidv()
    c.select("INBOX")
    assert c.delete('"Archive/2025"')[0] == "OK"
    assert c.create('"Archive/2025"')[0] == "OK"
    for uid in sorted(old):
        flags, body = old[uid]
        srvlib.append(c, "Archive/2025", body, flags=[f for f in flags if f != "\\Recent"])
    assert uidv() != v1, "Dovecot kept the UIDVALIDITY; the test proves nothing"

    # a sync notices; the same messages keep their names, nothing else moves
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    wait_tree(m.path, expected, POLLED)
    after = tree_identity(m.path)
    for rel, (ino, h) in ident.items():
        # the folder itself may come back as a new row (if a poll saw it gone)
        if rel != "Archive/2025" and not rel.startswith("Archive/2025/"):
            assert after.get(rel) == (ino, h), rel
    assert sorted(p for p in after if p.startswith("Archive/2025/")) == \
        sorted(p for p in ident if p.startswith("Archive/2025/"))
    # and mailfs deleted nothing on the server
    assert {f: srvlib.count(c, f) for f in srvlib.list_folders(c)} == before_counts


def test_sync_one_shot_then_mount_offline(account, mount, run_mailfs, mailfs_env):
    c = account.client()
    expected = populate_basic(c)
    state = server_state(c)
    c.logout()
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err
    store = mailfs_env.store()
    assert os.path.isdir(store)
    assert os.stat(store).st_mode & 0o777 == 0o700

    # the server goes away: the mount is served from the store alone
    account.stop()
    m = mount()
    files = message_files(m.path)
    assert files == expected
    for rel, body in expected.items():
        st = os.stat(m / rel)
        assert st.st_size == len(body)
    m.unmount()

    # the store is complete for `mailfs sync FOLDER` too and nothing changed
    account.start()
    c = account.client()
    assert server_state(c) == state
    rc, out, err = run_mailfs("sync", "test", "Archive/2025")
    assert rc == 0, err


def test_sync_through_mount(dovecot, mailfs_env, mount, run_mailfs):
    # a long poll, so only `mailfs sync` can bring the change in
    mailfs_env.configure(dovecot, poll=3600)
    c = dovecot.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    for i, target in enumerate((m.path, "test")):
        date = dt(2027, 4, 4, 4, i)
        msg = srvlib.make_message("Synced %d" % i, date)
        srvlib.append(c, "Archive", msg)
        rc, out, err = run_mailfs("sync", target)
        assert rc == 0, err
        name = expected_name("Synced %d" % i, date)
        assert name in os.listdir(m / "Archive"), "not visible right after `mailfs sync %s`" % target
        with open(m / "Archive" / name, "rb") as f:
            assert f.read() == msg
    # one folder only
    date = dt(2027, 4, 5, 0, 0)
    msg = srvlib.make_message("Folder sync", date)
    srvlib.append(c, "Archive/2025", msg)
    rc, out, err = run_mailfs("sync", m.path, "Archive/2025")
    assert rc == 0, err
    assert expected_name("Folder sync", date) in os.listdir(m / "Archive/2025")


def test_names_and_inodes_stable(account, mount, run_mailfs):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    ident = tree_identity(m.path)
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    assert tree_identity(m.path) == ident, "changed by a sync with nothing new"
    m.unmount()
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err
    m = mount()
    assert tree_identity(m.path) == ident, "changed by a remount"


# What a client sends when it uses an extension (RFC 2177, 7162, 6851, 4315,
# 7888, 5161, 4731), to check that mailfs uses none the server did not offer.
EXTENSION_USE = {
    "IDLE": rb"(?m)^\S+ IDLE\r\n",
    "ENABLE": rb"(?mi)^\S+ ENABLE ",
    "CONDSTORE": rb"(?i)CHANGEDSINCE|\(CONDSTORE\)|ENABLE[^\r\n]*CONDSTORE|\bMODSEQ\b",
    "QRESYNC": rb"(?i)QRESYNC|\bVANISHED\b",
    "MOVE": rb"(?mi)^\S+ (UID )?MOVE ",
    "UIDPLUS": rb"(?mi)^\S+ UID EXPUNGE ",
    "LITERAL+": rb"\{\d+\+\}\r\n",
    "ESEARCH": rb"(?mi)^\S+ (UID )?SEARCH RETURN \(",
}


@pytest.mark.parametrize("dovecot", [
    {"hide_capabilities": ("CONDSTORE", "QRESYNC")},
    {"hide_capabilities": ALL_EXTENSIONS},
], ids=["no-condstore", "bare-imap4rev1"], indirect=True)
def test_without_extensions(dovecot, mailfs_env, mount):
    c = dovecot.client()
    caps = set(c.capability()[1][0].decode().upper().split())
    for cap in dovecot.hide_capabilities:
        assert cap not in caps
    expected = populate_basic(c)
    rec = TcpRecorder(dovecot.host, dovecot.port)  # to see what mailfs sends
    try:
        mailfs_env.configure(dovecot, port=rec.port)
        m = mount()
        wait_tree(m.path, expected)

        date = dt(2027, 5, 5, 5, 5)
        msg = srvlib.make_message("Plain server", date)
        srvlib.append(c, "INBOX", msg)
        name = expected_name("Plain server", date)
        wait_until(lambda: name in os.listdir(m / "Inbox"), POLLED * SLOW, what="new mail")

        target = "Inbox/" + expected_name("Quarterly report", dt(2026, 11, 24, 10, 0))
        c.select("INBOX")
        uid = uid_of(c, "INBOX", expected[target])
        c.select("INBOX")
        c.uid("STORE", str(uid), "+FLAGS", "(\\Answered)")
        wait_until(lambda: flags_of(m / target) == {"seen", "answered"}, POLLED * SLOW,
                   what="flag change")

        gone = "Archive/2025/" + expected_name("Invoice 2025-001", dt(2025, 2, 3, 4, 5))
        c.select('"Archive/2025"')
        uid = uid_of(c, "Archive/2025", expected[gone])
        c.select('"Archive/2025"')
        c.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
        c.expunge()
        wait_until(lambda: os.path.basename(gone) not in os.listdir(m / "Archive/2025"),
                   POLLED * SLOW, what="expunge")
    finally:
        rec.close()
    sent = bytes(rec.sent)
    assert sent, "nothing went through the recorder"
    for cap in dovecot.hide_capabilities:
        hit = re.search(EXTENSION_USE[cap], sent)
        assert not hit, "mailfs used %s, which the server did not offer: %r" % (
            cap, sent[max(0, hit.start() - 80):hit.end() + 80])


def test_uses_extensions_when_offered(dovecot, mailfs_env, mount):
    """DESIGN section 1: IDLE and CONDSTORE/QRESYNC (through ENABLE) are used
    when the server offers them."""
    c = dovecot.client()
    expected = populate_basic(c)
    rec = TcpRecorder(dovecot.host, dovecot.port)
    try:
        mailfs_env.configure(dovecot, port=rec.port)
        m = mount()
        wait_tree(m.path, expected)
        date = dt(2027, 5, 6, 0, 0)
        msg = srvlib.make_message("Offered", date)
        srvlib.append(c, "INBOX", msg)
        name = expected_name("Offered", date)
        wait_until(lambda: name in os.listdir(m / "Inbox"), IDLE, what="new mail by IDLE")
    finally:
        rec.close()
    sent = bytes(rec.sent)
    assert re.search(EXTENSION_USE["IDLE"], sent), "mailfs never sent IDLE"
    assert re.search(rb"(?mi)^\S+ ENABLE [^\r\n]*(QRESYNC|CONDSTORE)", sent), \
        "mailfs never enabled QRESYNC or CONDSTORE"


def test_server_down_at_first_mount(dovecot, mailfs_env, mount):
    port = srvlib.free_port()  # nothing listens there
    mailfs_env.configure(dovecot, port=port)
    rc, err = mount.expect_failure()
    assert re.search(r"(^|\n)mailfs: ", err), err
    assert "127.0.0.1" in err, "the message should name the server: " + err
    # what the failed attempt left behind does not stop a later mount
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)


def test_server_down_later_then_back(account, mount, mailfs_env):
    c = account.client()
    expected = populate_basic(c)
    c.logout()
    m = mount()
    wait_tree(m.path, expected)
    m.unmount()

    account.stop()
    m = mount()
    assert message_files(m.path) == expected  # from the store
    assert os.listdir(m / "Conflicts") == []

    account.start()  # same port
    c = account.client()
    date = dt(2027, 6, 6, 6, 6)
    msg = srvlib.make_message("Back online", date)
    srvlib.append(c, "INBOX", msg)
    name = expected_name("Back online", date)
    # reconnecting waits for a backoff that started while the server was down
    wait_until(lambda: name in os.listdir(m / "Inbox"), 30 * SLOW,
               what="new mail after the server came back")


def test_server_restart_while_mounted(account, mount):
    c = account.client()
    expected = populate_basic(c)
    m = mount()
    wait_tree(m.path, expected)
    account.stop()
    # reads keep working from the store while the server is away
    assert message_files(m.path) == expected
    account.start()
    c = account.client()
    date = dt(2027, 7, 7, 7, 7)
    msg = srvlib.make_message("After restart", date)
    srvlib.append(c, "INBOX", msg)
    name = expected_name("After restart", date)
    wait_until(lambda: name in os.listdir(m / "Inbox"), 30 * SLOW,
               what="new mail after a server restart")
    for body in expected.values():
        assert len(find_by_content(message_files(m.path), body)) == 1
