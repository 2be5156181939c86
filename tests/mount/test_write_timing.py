"""A measurement, not a contract (issue 3's closing note): the time from
`cp` of 1,000 small messages into a folder until all 1,000 are on the
server, polled with imaplib STATUS. The figures are printed (pytest -s, or
the junit output); the test asserts only that every message arrives exactly
once. Under the sanitizer build the times are several times the real ones."""

import os
import subprocess
import time

import pytest

from mailfs_testlib import (ASAN, SLOW, dovecot as srvlib, dt, folder_bodies, wait_until,
                            while_alive, xattr)

COUNT = 1000


@pytest.mark.time_limit(300)
def test_cp_thousand_messages(account, mount, tmp_path):
    c = account.client()
    c.select("INBOX")
    assert c.create("Bulk")[0] == "OK"
    src = tmp_path / "bulk"
    src.mkdir()
    bodies = []
    for i in range(COUNT):
        body = srvlib.make_message("Bulk %04d" % i, dt(2026, 3, 1 + i % 28, i % 24, i % 60),
                                   "Small message number %d.\n" % i)
        (src / ("%04d.eml" % i)).write_bytes(body)
        bodies.append(body)
    m = mount()
    wait_until(lambda: os.path.isdir(m / "Bulk"), 10 * SLOW, what="initial sync")

    t0 = time.monotonic()
    r = subprocess.run(["sh", "-c", 'cp "$1"/*.eml "$2"/', "sh", str(src), str(m / "Bulk")],
                       capture_output=True, text=True, timeout=240 * SLOW)
    t_cp = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    wait_until(while_alive(m, lambda: srvlib.count(c, "Bulk") >= COUNT), 240 * SLOW,
               interval=0.05, what="%d messages on the server" % COUNT)
    t_all = time.monotonic() - t0
    print("\ncp of %d messages into a folder (%s build): cp returned after %.2f s, "
          "all %d on the server after %.2f s"
          % (COUNT, "sanitizer" if ASAN else "optimised", t_cp, COUNT, t_all))
    assert folder_bodies(c, "Bulk") == sorted(bodies)
    names = sorted(os.listdir(m / "Bulk"))
    assert names == sorted("%04d.eml" % i for i in range(COUNT))
    wait_until(lambda: all(xattr(m / "Bulk" / n, "user.sync.state") == "synced"
                           for n in names[-10:]), 30 * SLOW, what="synced")
