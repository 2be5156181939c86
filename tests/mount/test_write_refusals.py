"""Changes the server refuses (issue 3, DESIGN section 3): "A change the
server refuses is never silently dropped: the item keeps its local content,
its state says why, and the user can see it" -- user.sync.state reads
"error: " and the server's reason, the reason is logged, and the other
changes keep flowing. Cases: over quota, and a folder deleted on the server
while a copy into it waited."""

import os
import re
import subprocess

import pytest

from mailfs_testlib import (SLOW, crlf, dovecot as srvlib, dt, folder_bodies, message_files,
                            populate_basic, tree_files, wait_server, wait_until, while_alive,
                            xattr)

SYNC = 10
PUSH = 10


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cp(src, dst):
    r = subprocess.run(["cp", str(src), str(dst)], capture_output=True, text=True,
                       timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr


def assert_refused(m, path, content, reason_re):
    """The file keeps its content, its state reads "error: <reason>" and the
    reason is in the daemon's log."""
    assert read(path) == content
    state = xattr(path, "user.sync.state")
    assert state.startswith("error"), state
    assert re.match(r"error: .*%s" % reason_re, state, re.I | re.S), \
        "user.sync.state of a refused change does not say why: %r" % state
    assert re.search(reason_re, m.stderr(), re.I), "the refusal is not logged"


@pytest.mark.parametrize("dovecot", [{"extra_config": srvlib.quota_config("200K")}],
                         ids=["quota-200K"], indirect=True)
def test_over_quota(dovecot, mailfs_env, mount, tmp_path):
    mailfs_env.configure(dovecot)
    c = dovecot.client()
    expected = populate_basic(c)
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    inbox = [b for p, b in expected.items() if p.startswith("Inbox/")]

    big = srvlib.make_message("Too big", dt(2026, 7, 1), ("y" * 70 + "\n") * 4000)
    assert len(big) > 200 * 1024
    (tmp_path / "big.eml").write_bytes(big)
    cp(tmp_path / "big.eml", m / "Inbox/big.eml")
    # the refusal shows, and the content stays
    wait_until(while_alive(m, lambda: xattr(m / "Inbox/big.eml", "user.sync.state")
                           .startswith("error")), PUSH * SLOW, what="the refusal shows")
    # other changes still flow, before and after the refused one
    small = srvlib.make_message("Small one", dt(2026, 7, 2), "fits\n")
    (tmp_path / "small.eml").write_bytes(small)
    cp(tmp_path / "small.eml", m / "Inbox/small.eml")
    os.setxattr(m / list(p for p in expected if p.startswith("Inbox/"))[1],
                "user.mail.flags", b"flagged")
    wait_server(c, "INBOX", inbox + [small], PUSH * SLOW, mount=m)
    wait_until(while_alive(m, lambda: xattr(m / "Inbox/small.eml", "user.sync.state") ==
                           "synced"), PUSH * SLOW, what="the small message synced")
    assert_refused(m, m / "Inbox/big.eml", big, r"quota")

    # and it stays so across a remount; the server never took it
    m.unmount()
    m = mount()
    wait_until(lambda: xattr(m / "Inbox/small.eml", "user.sync.state") == "synced",
               SYNC * SLOW)
    assert read(m / "Inbox/big.eml") == big
    assert xattr(m / "Inbox/big.eml", "user.sync.state").startswith("error")
    assert folder_bodies(c, "INBOX") == sorted(inbox + [small])


def test_folder_deleted_on_server(account, mount, mailfs_env, run_mailfs, tmp_path):
    c = account.client()
    expected = populate_basic(c)
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err

    # the server is down while the user copies into a folder
    account.stop()
    m = mount()
    pending = srvlib.make_message("Into a folder that goes", dt(2026, 8, 1), "keep me\n")
    other = srvlib.make_message("Into the inbox", dt(2026, 8, 2), "me too\n")
    (tmp_path / "p.eml").write_bytes(pending)
    (tmp_path / "o.eml").write_bytes(other)
    cp(tmp_path / "p.eml", m / "Archive/2025/pending.eml")
    cp(tmp_path / "o.eml", m / "Inbox/other.eml")
    assert xattr(m / "Archive/2025/pending.eml", "user.sync.state") == "pending"
    m.unmount()

    # meanwhile another client deletes the folder
    account.start()
    c = account.client()
    typ, data = c.delete(srvlib.mailbox_arg("Archive/2025"))
    assert typ == "OK", data
    c.logout()

    m = mount()
    c = account.client()
    inbox = [b for p, b in expected.items() if p.startswith("Inbox/")]
    wait_server(c, "INBOX", inbox + [other], PUSH * SLOW, mount=m)
    rc, out, err = run_mailfs("sync", m.path)
    # the folder's removal stands, the copy is not lost: it is in Conflicts/
    # (DESIGN section 6), saying where it came from
    files = tree_files(m.path)
    where = [p for p, b in files.items() if b == crlf(pending)]
    assert len(where) == 1, "the refused message's content is %s" % (
        "gone from the tree" if not where else "in the tree %d times" % len(where))
    assert where[0].startswith("Conflicts/"), where
    assert xattr(m / where[0], "user.sync.state") == "conflict"
    assert xattr(m / where[0], "user.conflict.origin") == "Archive/2025/pending.eml"
    # and it did not go anywhere on the server
    everywhere = [b for f in srvlib.list_folders(c) for b in folder_bodies(c, f)]
    assert crlf(pending) not in everywhere
    assert everywhere.count(other) == 1
