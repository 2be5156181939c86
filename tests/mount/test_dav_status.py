"""`mailfs status` while a daemonised mount writes (DESIGN section 7). It
guards a fixed bug: a sqlite connection opened before fuse_daemonize's fork
was used by the daemon, and the store was damaged. So this mount is the
real, daemonised one (no -f; its log is STORE/mailfs.log), `mailfs status`
runs 20 times while files are written, and after the unmount
`PRAGMA integrity_check` of STORE/store.db must say ok. (A daemon's stderr
is /dev/null: sanitizer reports that do not stop it are not seen here; the
other DAV tests run the daemon with -f and see them.)"""

import os
import subprocess
import threading
import time

import pytest

from dav_env import dav, dav_server, event, read, state, vcard, write  # noqa: F401
from mailfs_testlib import ACCOUNT, SLOW, bad_output, fuse_abort, is_mounted, wait_until


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


class Daemon:
    """`mailfs --config CFG ACCOUNT MNT` without -f: it daemonises. The
    daemon's pid is found by its exact command line (the one started here)."""

    def __init__(self, binary, mfenv, mnt):
        self.binary, self.mfenv, self.mnt = binary, mfenv, str(mnt)
        self.argv = [binary, "--config", mfenv.config_path, ACCOUNT, self.mnt]
        self.pid = None
        self.env = dict(mfenv.env)

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        r = subprocess.run(self.argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, env=self.env, cwd=self.mfenv.cwd,
                           timeout=30 * SLOW)
        assert r.returncode == 0, "mailfs (daemonising) exited %d: %s%s" % (
            r.returncode, r.stdout, r.stderr)
        assert not bad_output(r.stdout + r.stderr), r.stderr
        wait_until(lambda: is_mounted(self.mnt), 10 * SLOW, what="daemon mounted")
        want = [a.encode() for a in self.argv]
        for d in os.listdir("/proc"):
            if d.isdigit() and _cmdline(int(d)) == want:
                self.pid = int(d)
        assert self.pid, "the daemon's process was not found"

    def alive(self):
        return self.pid is not None and _cmdline(self.pid) is not None

    def stop(self):
        """fusermount3 -u and wait for the daemon to go; True when clean."""
        clean = True
        if is_mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, timeout=30)
            if r.returncode != 0:
                clean = False
                fuse_abort(self.mnt)
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True,
                               timeout=30)
        deadline = time.monotonic() + 20 * SLOW
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            clean = False
            os.kill(self.pid, 9)
        return clean


@pytest.fixture
def daemon(mailfs_bin, mailfs_env, tmp_path):
    made = []

    def start():
        d = Daemon(mailfs_bin, mailfs_env, tmp_path / "mnt")
        made.append(d)
        d.start()
        return d

    yield start
    for d in made:
        d.stop()


def test_status_while_writing_keeps_the_store_sound(dav, daemon, mailfs_env):
    dav.put(dav.cal + "a.ics", event("a", "Already there"))
    d = daemon()
    mnt = d.mnt
    cal, book = os.path.join(mnt, "Calendar"), os.path.join(mnt, "Contacts")
    wait_for_files = lambda: "2026-01-05 10.00 Already there.ics" in os.listdir(cal)  # noqa
    wait_until(wait_for_files, 20 * SLOW, what="the initial sync")
    errors = []

    def writer():
        try:
            for i in range(30):
                write(os.path.join(cal, "w%02d.ics" % i),
                      event("w-%02d" % i, "Written %02d" % i, "20260201T%02d0000Z" % (i % 24)))
                write(os.path.join(book, "Person %02d.vcf" % i), vcard("p-%02d" % i,
                                                                       "Person %02d" % i))
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    outs = []
    for i in range(20):
        target = mnt if i % 2 == 0 else ACCOUNT
        r = subprocess.run([d.binary, "--config", mailfs_env.config_path, "status", target],
                           capture_output=True, text=True, env=mailfs_env.env,
                           cwd=mailfs_env.cwd, timeout=30 * SLOW)
        outs.append(r)
        assert r.returncode == 0, "mailfs status %s: %d %s" % (target, r.returncode, r.stderr)
        assert "Calendar" in r.stdout and "Contacts" in r.stdout, r.stdout
        assert not bad_output(r.stdout + r.stderr), r.stderr
    t.join(60 * SLOW)
    assert not errors, errors
    # everything reaches the server
    wait_until(lambda: len(dav.members(dav.cal)) == 31 and len(dav.members(dav.book)) == 30,
               30 * SLOW, interval=0.2, what="60 new items on the server")
    wait_until(lambda: all(state(os.path.join(cal, "w%02d.ics" % i)) == "synced"
                           for i in range(30)), 20 * SLOW, what="all synced")
    assert d.alive(), "the daemon died"
    assert d.stop(), "the daemon did not unmount cleanly"
    store = mailfs_env.store()
    log = os.path.join(store, "mailfs.log")
    text = read(log).decode("utf-8", "replace") if os.path.exists(log) else ""
    assert not bad_output(text), "crash or sanitizer report in %s:\n%s" % (
        log, "\n".join(bad_output(text)[:20]))

    r = subprocess.run(["sqlite3", os.path.join(store, "store.db"), "PRAGMA integrity_check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", \
        "integrity_check: %r %r" % (r.stdout, r.stderr)
