"""Helpers of the protocol tests, on top of tests/mount/mailfs_testlib.py
(imported from there, never copied): waiting for a mount to show what the
scripted server holds, the safety checks every hostile test ends with, and
FETCH hooks that pick out the body downloads."""

import os
import re
import stat
import subprocess
import time

import pytest

from mailfs_testlib import (SLOW, check_name, message_files, snapshot, wait_until, walk)

# A handful of messages sync in well under a second here, a reconnect adds
# 1 s of backoff: these bounds are generous, yet keep failing tests short.
SYNC = 5 * SLOW       # an initial sync, with a reconnect or two
POLLED = 4 * SLOW     # a change seen by polling (poll = 1 s)
IDLE = 1.0            # the contract: new INBOX mail visible within 1 s
UNMOUNT_LIMIT = 5     # seconds the daemon may take to exit after fusermount3 -u

# What may exist in a store directory (store/store.c, store/content.c,
# fs/main.c, fs/control.c): nothing named after anything a server sent.
STORE_PATH_RE = re.compile(r"^(lock|store\.db(-wal|-shm|-journal)?|mailfs\.log|control\.sock"
                           r"|content|content/[0-9a-f]{2}|content/[0-9a-f]{2}/\d+"
                           r"|drafts|drafts/\d+|tmp|tmp/[^/]+)$")


def is_body_fetch(cmd):
    """A hook filter: a UID FETCH that downloads message bodies."""
    return cmd.name == "UID FETCH" and b"BODY.PEEK[]" in cmd.raw.upper()


def wait_contents(mnt, bodies, timeout=SYNC, what=None):
    """Wait until the set of message contents below mnt is exactly `bodies`
    (each once); return {path: bytes}."""
    want = sorted(bodies)

    def ok():
        files = message_files(mnt)
        return files if sorted(files.values()) == want else None

    return wait_until(ok, timeout, what=what or "the mount shows exactly %d messages" % len(want))


def watch_contents(mnt, bodies, timeout=SYNC):
    """Poll the mount until its message contents are exactly `bodies`;
    returns the paths that showed anything else on the way (half-written
    or wrong content), [] when none did. Raises when it never gets there."""
    whole = set(bodies)
    bad = set()
    deadline = time.monotonic() + timeout
    while True:
        files = message_files(mnt)
        bad.update(p for p, b in files.items() if b not in whole)
        if sorted(files.values()) == sorted(bodies):
            return sorted(bad)
        if time.monotonic() > deadline:
            raise AssertionError("the mount never showed exactly the %d messages (last: %r)"
                                 % (len(bodies), sorted(files)))
        time.sleep(0.02)


def paths_of(files, body):
    return [p for p, b in files.items() if b == body]


def assert_safe_tree(root):
    """Every name below root is safe (mailfs_testlib.check_name) and every
    path resolves inside root."""
    entries = walk(root)
    for rel, st in entries.items():
        check_name(os.path.basename(rel), stat.S_ISDIR(st.st_mode))
        real = os.path.realpath(os.path.join(root, rel))
        assert real.startswith(os.path.realpath(root) + "/"), "%s resolves to %s" % (rel, real)
    return entries


def assert_store_paths(store):
    """Every path in the store is one mailfs makes by itself, below the store."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(store):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, store)
            if not STORE_PATH_RE.match(rel) or not os.path.realpath(p).startswith(store + "/"):
                bad.append(rel)
    assert not bad, "unexpected paths in the store %s: %r" % (store, bad)


class Sandbox:
    """A snapshot of the test's directory (HOME, config, TMPDIR, cwd...)
    without the mount point, the store and the fixtures' own logs: after the
    hostile run it must be the same."""

    OWN = re.compile(r"(^|/)(mailfs-\d+\.stderr|imapserver-\d+\.log)$")

    def __init__(self, root, mnt, store):
        self.root, self.exclude = str(root), [str(mnt), str(store)]
        self.before = self._take()

    def _take(self):
        return {k: v for k, v in snapshot(self.root, exclude=self.exclude).items()
                if not self.OWN.search(k)}

    def assert_unchanged(self):
        after = self._take()
        store = os.path.relpath(self.exclude[1], self.root)
        added = sorted(k for k in set(after) - set(self.before)
                       if not store.startswith(k + "/"))   # the store's parents
        changed = sorted(k for k in self.before if after.get(k) != self.before[k])
        assert not added and not changed, \
            "outside the mount and the store: new %r, changed or gone %r" % (added, changed)


def assert_alive(m):
    assert m.proc.poll() is None, "mailfs exited with %r:\n%s" % (m.proc.returncode,
                                                                 m.stderr()[-5000:])


def sync_state(path):
    return os.getxattr(path, "user.sync.state").decode()


def on_body_fetch(server, fn, times=1, folder=None):
    """Hook fn(cmd) on the UID FETCH commands that download bodies (of
    `folder` only, when given); `times` answers, then the default again."""
    def hook(cmd):
        if not is_body_fetch(cmd):
            return None
        if folder is not None and (cmd.folder is None or cmd.folder.name != folder.encode()):
            return None
        return fn(cmd)
    server.on("UID FETCH", hook, times=times)


def fetch_answer(cmd, fn):
    """The default answer of a body FETCH with each message's response
    replaced by fn(seq, msg, rendered) (bytes; b"" leaves it out)."""
    cmd.default()
    return b"".join(fn(seq, msg, cmd.fetch_response(msg, seq)) for seq, msg in cmd.fetch_msgs) \
        + cmd.tagged()


def unmount_within(m, limit):
    """fusermount3 -u, then the daemon must exit within `limit` seconds (it
    is killed and the test fails otherwise). Returns its exit status."""
    t = time.monotonic()
    r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        rc = m.proc.wait(limit)
    except subprocess.TimeoutExpired:
        rc = None
    if rc is None:
        m.kill()
        pytest.fail("mailfs was still running %.0f s after the unmount (killed); its sync "
                    "thread did not notice it should stop" % (time.monotonic() - t),
                    pytrace=False)
    m.unmounted = True
    return rc
