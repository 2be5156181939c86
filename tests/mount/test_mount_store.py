"""The store and the daemon's footprint: a 10,000-message folder with a
memory bound, where the daemon writes (only its store and the mount), and
that the password goes nowhere."""

import base64
import datetime
import os
import random
import re
import stat
import subprocess
import time

import pytest

from mailfs_testlib import (ASAN, SLOW, dovecot as srvlib, dt, expected_name,
                            message_files, populate_basic, snapshot, vm_hwm_kib, wait_until)

SYNC = 10
BIG = 10000
# Peak RSS of the daemon with a 10,000-message folder: DESIGN section 8 asks
# under 64 MiB. A sanitizer build cannot be held to it: ASan keeps freed
# memory in quarantine (256 MiB by default), adds redzones around every
# allocation and maps large shadow regions, so its peak says nothing about
# the real build; a loose bound there still catches memory that grows with
# the mailbox (10,000 bodies held at once).
RSS_LIMIT_MIB = 400 if ASAN else 64
# scripts/test also builds an optimised binary: the memory bound of DESIGN
# section 8 is checked on it, whatever build the other tests run.
RELEASE_BIN = os.environ.get("MAILFS_RELEASE_BIN")


@pytest.mark.time_limit(300)
def test_ten_thousand_messages(account, mount, tmp_path):
    c = account.client()
    c.select("INBOX")
    t0 = dt(2020, 1, 1, 0, 0)
    msgs = []
    for i in range(BIG):
        date = t0 + datetime.timedelta(minutes=i)
        body = "Message number %d.\n%s\n" % (i, "Lorem ipsum dolor sit amet. " * (i % 20))
        msgs.append((expected_name("Bulk %05d" % i, date),
                     srvlib.make_message("Bulk %05d" % i, date, body)))
    t = time.monotonic()
    uids = account.append_many("INBOX", [m for _, m in msgs])
    assert len(uids) == BIG and srvlib.count(c, "INBOX") == BIG
    load = time.monotonic() - t

    limit = RSS_LIMIT_MIB
    if RELEASE_BIN and os.access(RELEASE_BIN, os.X_OK):
        mount.binary = RELEASE_BIN
        limit = 64
    m = mount()
    wait_until(lambda: len(os.listdir(m / "Inbox")) == BIG, 60 * SLOW, interval=0.5,
               what="%d messages listed" % BIG)
    r = subprocess.run("ls | wc -l", shell=True, cwd=m / "Inbox", capture_output=True,
                       text=True, timeout=60 * SLOW)
    assert r.stdout.strip() == str(BIG), r
    r = subprocess.run(["ls", "-l", m / "Inbox"], capture_output=True, text=True,
                       timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("total") and len(lines) == BIG + 1
    assert all(ln.startswith("-rw-------") for ln in lines[1:])
    assert set(os.listdir(m / "Inbox")) == {n for n, _ in msgs}
    for name, body in random.Random(7).sample(msgs, 50):
        with open(m / "Inbox" / name, "rb") as f:
            assert f.read() == body, name
        assert os.stat(m / "Inbox" / name).st_size == len(body)

    hwm = vm_hwm_kib(m.pid) / 1024
    print("loaded %d messages in %.2f s; mailfs peak RSS %.1f MiB" % (BIG, load, hwm))
    assert hwm < limit, "mailfs peak RSS %.1f MiB >= %d MiB" % (hwm, limit)


def open_files(pid):
    """Paths of the regular files a process has open."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/", "/sys/")):
            out.append(re.sub(r" \(deleted\)$", "", target))
    return out


def test_writes_only_store_and_mount(account, mount, mailfs_env, run_mailfs, tmp_path):
    c = account.client()
    expected = populate_basic(c)
    root = str(tmp_path)
    store = mailfs_env.store()
    skip = [os.path.join(root, "mnt"), os.path.join(root, "dovecot"), store]

    def outside():
        s = snapshot(root, exclude=skip)
        # the fixture's own files: the daemon's stderr, written by the fixture
        return {k: v for k, v in s.items() if not re.match(r"mailfs-\d+\.stderr$", k)}

    before = outside()
    m = mount()
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    for path in open_files(m.pid):
        assert path.startswith(store + "/") or path == m.stderr_path or \
            path.startswith("/usr/") or path.startswith("/etc/"), "mailfs has %s open" % path
    rc, out, err = run_mailfs("sync", m.path)
    assert rc == 0, err
    m.unmount()
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err

    after = outside()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    # $XDG_DATA_HOME/mailfs may be made as the parent of the store
    allowed = {os.path.relpath(os.path.dirname(store), root)}
    assert [k for k in changed if k not in allowed] == [], \
        "written outside the store and the mount"
    assert os.listdir(mailfs_env.cwd) == [] and os.listdir(mailfs_env.tmpdir) == []
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700


PASSWORD = "Pa55-Unique-z7Qx"


def test_password_goes_nowhere(dovecot_factory, mailfs_env, mount, run_mailfs):
    srv = dovecot_factory(users={"alice": PASSWORD})
    mailfs_env.configure(srv)
    c = srv.client()
    expected = populate_basic(c)
    m = mount(env={"MAILFS_LOG": "debug"})
    wait_until(lambda: message_files(m.path) == expected, SYNC * SLOW, what="initial sync")
    with open("/proc/%d/cmdline" % m.pid, "rb") as f:
        cmdline = f.read()
    rc, out, err = run_mailfs("sync", m.path, env={"MAILFS_LOG": "debug"})
    assert rc == 0, err
    m.unmount()
    rc2, out2, err2 = run_mailfs("sync", "test", env={"MAILFS_LOG": "debug"})
    assert rc2 == 0, err2

    secrets = [PASSWORD.encode(),
               base64.b64encode(b"\0alice\0" + PASSWORD.encode()),
               base64.b64encode(b"alice\0alice\0" + PASSWORD.encode())]
    texts = {"cmdline": cmdline, "stderr": m.stderr().encode(),
             "sync output": (out + err + out2 + err2).encode()}
    for dirpath, dirnames, filenames in os.walk(mailfs_env.store()):
        for n in filenames:
            p = os.path.join(dirpath, n)
            if stat.S_ISREG(os.lstat(p).st_mode):
                with open(p, "rb") as f:
                    texts[p] = f.read()
    for where, data in texts.items():
        for s in secrets:
            assert s not in data, "the password is in %s" % where


def _store_db(mailfs_env):
    return os.path.join(mailfs_env.store(), "store.db")


def test_damaged_store_refused_clearly(account, mount, run_mailfs, mailfs_env):
    """A store database overwritten with garbage: a clear message naming the
    file and the way out, a non-zero exit, no crash, nothing mounted."""
    c = account.client()
    populate_basic(c)
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err
    db = _store_db(mailfs_env)
    with open(db, "r+b") as f:
        f.write(bytes(range(256)) * 64)
    for wal in (db + "-wal", db + "-shm"):
        if os.path.exists(wal):
            os.unlink(wal)
    rc, text = mount.expect_failure()
    assert "store.db" in text and "damaged" in text, text
    assert "reindex" in text or "reset" in text, text
    rc, out, err = run_mailfs("sync", "test")
    assert rc != 0 and "damaged" in err, err


def test_newer_store_refused_clearly(account, mount, run_mailfs, mailfs_env):
    """A store written by a newer mailfs (a higher format number) is never
    touched: the message says to upgrade."""
    c = account.client()
    populate_basic(c)
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err
    db = _store_db(mailfs_env)
    subprocess.run(["sqlite3", db, "PRAGMA user_version = 4242"], check=True)
    before = open(db, "rb").read()
    rc, text = mount.expect_failure()
    assert "newer mailfs" in text and "4242" in text, text
    assert open(db, "rb").read() == before


def test_truncated_store_no_crash(account, mount, run_mailfs, mailfs_env):
    """A store database cut short (a disk that filled up, a bad copy): either
    a clear refusal or a mount that still answers; never a crash or a hang."""
    c = account.client()
    expected = populate_basic(c)
    rc, out, err = run_mailfs("sync", "test")
    assert rc == 0, err
    subprocess.run(["sqlite3", _store_db(mailfs_env), "PRAGMA wal_checkpoint(TRUNCATE)"],
                   check=True)
    size = os.path.getsize(_store_db(mailfs_env))
    os.truncate(_store_db(mailfs_env), size // 2)
    rc, out, err = run_mailfs("sync", "test")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    if rc != 0:
        assert "store" in err, err
