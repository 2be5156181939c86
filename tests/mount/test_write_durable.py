"""Writes are durable as they return, not only at close (issue 3 and the
read targets of DESIGN section 8): mailfs declines the kernel's FLUSH, so
that reading a file costs no request at close, and syncs every write into
the file's draft before it returns. A draft is committed when its writer is
done (release of a created file, fsync, the next change, a control command,
unmount, or a second without writes) -- and, after a crash, at the next
start. Checked here with SIGKILL at the moments that matter and with the
server read by imaplib."""

import os
import time

from mailfs_testlib import SLOW, crlf, folder_bodies, wait_server, wait_until, xattr
from test_write_ops import GRUSSE, LUNCH, QUARTERLY, PUSH, start, sync

NEW_Q = b"Subject: Quarterly report, second draft\nMessage-ID: <q2@t>\n\nNumbers went up.\n"
NEW_L = b"Subject: Lunch? Yes\nMessage-ID: <l2@t>\n\nAt noon.\n"
ADDED = b"Subject: Added just before the crash\nMessage-ID: <added@t>\n\nHello.\n"


def inbox_without(c, expected, *paths):
    return [b for p, b in expected.items() if p.startswith("Inbox/") and p not in paths]


def test_writes_kept_through_sigkill_before_any_commit(account, mount, run_mailfs):
    c, expected, m = start(account, mount)
    rc, _, err = run_mailfs("offline", m.path)  # nothing leaves before the crash
    assert rc == 0, err
    # a writer that still holds its file open: each write has returned
    held = open(m / QUARTERLY, "r+b", buffering=0)
    held.write(NEW_Q)
    held.truncate()
    # an overwrite closed a moment ago (well within the idle second)
    with open(m / LUNCH, "wb") as f:
        f.write(NEW_L)
    # a new file
    with open(m / "Inbox/added.eml", "wb") as f:
        f.write(ADDED)
    assert xattr(m / QUARTERLY, "user.sync.state") == "pending"
    assert xattr(m / LUNCH, "user.sync.state") == "pending"
    m.kill()
    try:
        held.close()
    except OSError:
        pass  # the connection is gone

    m = mount()
    rc, _, err = run_mailfs("online", m.path)
    assert rc == 0, err
    # the tree shows what was written (CRLF made at the commit after the restart)
    assert (m / QUARTERLY).read_bytes() == crlf(NEW_Q)
    assert (m / LUNCH).read_bytes() == crlf(NEW_L)
    assert (m / "Inbox/added.eml").read_bytes() == crlf(ADDED)
    sync(run_mailfs, m)
    want = inbox_without(c, expected, QUARTERLY, LUNCH) + [crlf(NEW_Q), crlf(NEW_L),
                                                            crlf(ADDED)]
    wait_server(c, "INBOX", want, PUSH * SLOW, mount=m)
    for p in (QUARTERLY, LUNCH, "Inbox/added.eml"):
        wait_until(lambda: xattr(m / p, "user.sync.state") == "synced", PUSH * SLOW,
                   what="%s synced" % p)
    assert "committed" in m.stderr()
    m.unmount()


def test_open_writer_committed_after_a_quiet_second(account, mount, run_mailfs):
    """A file kept open after writing is sent once nothing was written for a
    second; a later write makes a new version."""
    c, expected, m = start(account, mount)
    with open(m / GRUSSE, "r+b", buffering=0) as f:
        f.write(NEW_Q)
        f.truncate()
        want = inbox_without(c, expected, GRUSSE) + [crlf(NEW_Q)]
        wait_server(c, "INBOX", want, PUSH * SLOW, mount=m)
        f.seek(0)
        f.write(NEW_L)
        f.truncate()
        want = inbox_without(c, expected, GRUSSE) + [crlf(NEW_L)]
        wait_server(c, "INBOX", want, PUSH * SLOW, mount=m)
    assert (m / GRUSSE).read_bytes() == crlf(NEW_L)
    m.unmount()


def test_changes_reach_the_server_in_the_order_made(account, mount, run_mailfs):
    """An overwrite (no close reaches mailfs) followed at once by a move:
    the move carries the new bytes, and `mailfs sync` right after a write
    sends it."""
    c, expected, m = start(account, mount)
    with open(m / LUNCH, "wb") as f:
        f.write(NEW_L)
    os.rename(m / LUNCH, m / "Archive/lunch.eml")
    with open(m / QUARTERLY, "wb") as f:
        f.write(NEW_Q)
    t0 = time.monotonic()
    sync(run_mailfs, m)
    # no waiting for the quiet second: the sync committed it first
    assert sorted(folder_bodies(c, "INBOX")) == sorted(
        inbox_without(c, expected, LUNCH, QUARTERLY) + [crlf(NEW_Q)]), \
        "after sync (%.2f s)" % (time.monotonic() - t0)
    archive = [b for p, b in expected.items() if p.startswith("Archive/") and
               p.count("/") == 1] + [crlf(NEW_L)]
    assert sorted(folder_bodies(c, "Archive")) == sorted(archive)
    m.unmount()


def test_reading_is_not_flushed(account, mount):
    """The first FLUSH is declined with ENOSYS and the kernel sends no more
    (reading a file is then served from the page cache alone): 24 closes,
    at most a FLUSH or two that were already under way."""
    c, expected, m = start(account, mount)
    for _ in range(3):
        for p in expected:
            assert (m / p).read_bytes() == expected[p]
    log = m.stderr()
    assert len(expected) * 3 >= 24
    assert 1 <= log.count("FLUSH declined") <= 2, log[-3000:]
    m.unmount()
