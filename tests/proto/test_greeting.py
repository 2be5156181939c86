"""Servers that accept the connection and then do not behave (DESIGN section
5 and README: a first mount needs the server and fails with a message; a
later mount serves the store at once and connects in the background)."""

import os
import time

import pytest

from mailfs_testlib import SLOW, dovecot as srvlib, dt
from protolib import SYNC, UNMOUNT_LIMIT, assert_alive, unmount_within, wait_contents

FIRST_MOUNT_LIMIT = 30  # seconds a first mount may take to give up on a silent server


def mailfs_lines(err):
    return "\n".join(ln for ln in err.splitlines() if ln.startswith("mailfs: "))


def test_silent_server_first_mount_fails_in_bounded_time(server, mount):
    server.greeting = None      # accept, then say nothing at all
    t = time.monotonic()
    rc, err = mount.expect_failure(timeout=FIRST_MOUNT_LIMIT / SLOW)
    took = time.monotonic() - t
    msg = mailfs_lines(err)
    assert took < FIRST_MOUNT_LIMIT
    assert msg, "no 'mailfs: ' message:\n" + err
    assert "127.0.0.1:%d" % server.port in msg, "the message does not name the server:\n" + msg
    assert server.connections >= 1


def _close_at_once(session):
    session.close()


def _bye(session):
    session.send(b"* BYE too busy, come back later\r\n")
    session.close()


@pytest.mark.parametrize("greeting", [_close_at_once, _bye, b"* NO not for you\r\n"],
                         ids=["close", "bye", "no"])
def test_bad_greeting_first_mount_fails(server, mount, greeting):
    server.greeting = greeting
    t = time.monotonic()
    rc, err = mount.expect_failure(timeout=FIRST_MOUNT_LIMIT / SLOW)
    assert time.monotonic() - t < FIRST_MOUNT_LIMIT
    msg = mailfs_lines(err)
    assert "127.0.0.1:%d" % server.port in msg, "the message does not name the server:\n" + err


def test_silent_server_with_store(server, mount):
    """With a store, mount serves it at once although the server never
    greets, says why it is not connected, and unmounts promptly."""
    msg = srvlib.make_message("kept", dt(2025, 9, 1, 8, 0), "kept in the store\n")
    server.append("INBOX", msg)
    m = mount()
    files = wait_contents(m.path, [msg])
    assert unmount_within(m, UNMOUNT_LIMIT) == 0

    server.greeting = None
    t = time.monotonic()
    m2 = mount(timeout=10)
    assert time.monotonic() - t < 10 * SLOW
    for rel, body in files.items():
        with open(os.path.join(m2.path, rel), "rb") as f:
            assert f.read() == body
    server.wait_for(lambda: server.connections >= 3, SYNC, "mailfs tried to connect")
    state = os.getxattr(m2.path, "user.mailfs.connection").decode()
    assert state != "connected", state
    assert_alive(m2)
    assert unmount_within(m2, UNMOUNT_LIMIT) == 0
