"""Crash safety, second way (issue 3): SIGKILL at random moments while
changes flow. A writer copies in, edits, removes, moves, renames and flags
messages that each carry a unique X-Test-Id (and an X-Test-Version that
every edit raises), through cp, rm, mv and setfattr; the daemon is killed
with SIGKILL after a random delay, the dead mount detached, mailfs mounted
again, and the writer goes on. Many rounds, seeded.

After every remount: every change whose call succeeded is there (an
interrupted one may or may not have happened; the tree after the remount is
then the truth), no file is torn, no message is twice in the tree, and the
server -- read with imaplib -- never holds a message version twice. At the
end, after a sync: the server holds exactly one copy of every message the
tree holds, in the same folder with the same flags, and nothing else."""

import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from mailfs_testlib import (SLOW, dovecot as srvlib, dt, fuse_abort, is_mounted,
                            server_flags_to_set, wait_until, xattr)

ROUNDS = 25
SEED = 20261125
FOLDERS = {"Inbox": "INBOX", "Archive": "Archive", "Sent": "Sent"}
FLAG_CHOICES = ["seen", "flagged", "answered", "$A", "$B"]


def content(tid, version):
    """The exact bytes of version `version` of message tid (CRLF)."""
    n = int(tid[1:])
    body = "Message %s, version %d.\n%s\n" % (tid, version, "filler " * (n % 7))
    return srvlib.make_message(
        "Test %s" % tid, dt(2026, 1 + n % 12, 1 + n % 28, n % 24, n % 60), body,
        extra_headers=(("X-Test-Id", tid), ("X-Test-Version", str(version))),
        message_id="<%s@kill.test>" % tid)


def parse(data):
    """(tid, version) of a message's bytes, or None when it has no id."""
    t = re.search(rb"^X-Test-Id: (\S+)\r?$", data, re.M)
    v = re.search(rb"^X-Test-Version: (\d+)\r?$", data, re.M)
    if not t or not v:
        return None
    return t.group(1).decode(), int(v.group(1))


# --- the local tree --------------------------------------------------------------------

class Entry:
    __slots__ = ("folder", "name", "version", "flags")

    def __init__(self, folder, name, version, flags=frozenset()):
        self.folder, self.name, self.version, self.flags = folder, name, version, frozenset(flags)

    def key(self):
        return (self.folder, self.name, self.version, self.flags)

    def copy(self, **kw):
        e = Entry(self.folder, self.name, self.version, self.flags)
        for k, v in kw.items():
            setattr(e, k, v)
        return e


def read_tree(root, problems, where):
    """{tid: Entry} of the mount, and the paths of files without an id
    (left by a copy that was interrupted before its first close)."""
    tree, empty = {}, []
    for folder in FOLDERS:
        d = os.path.join(root, folder)
        for n in os.listdir(d):
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                data = f.read()
            ident = parse(data)
            if ident is None:
                if data:
                    problems.append("%s: %s/%s holds bytes without an id: %r"
                                    % (where, folder, n, data[:80]))
                empty.append(p)
                continue
            tid, version = ident
            if data != content(tid, version):
                problems.append("%s: %s/%s is torn or altered" % (where, folder, n))
            flags = frozenset(xattr(p, "user.mail.flags").split())
            if tid in tree:
                problems.append("%s: %s is in the tree twice (%s/%s and %s/%s)"
                                % (where, tid, folder, n, tree[tid].folder, tree[tid].name))
            tree[tid] = Entry(folder, n, version, flags)
    return tree, empty


# --- the writer ------------------------------------------------------------------------

class Writer(threading.Thread):
    """Random changes through the mount until a call fails or stop is set.
    log: [(tid, before Entry or None, after Entry or None, ok)]."""

    def __init__(self, root, model, rng, next_id, srcdir):
        super().__init__(daemon=True)
        self.root, self.model, self.rng = root, model, rng
        self.next_id = next_id
        self.srcdir = srcdir
        self.stop = threading.Event()
        self.log = []

    def path(self, e):
        return os.path.join(self.root, e.folder, e.name)

    def src(self, tid, version):
        p = os.path.join(self.srcdir, "%s-%d.eml" % (tid, version))
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(content(tid, version))
        return p

    def run(self):
        env = dict(os.environ, LC_ALL="C")
        while not self.stop.is_set():
            ids = sorted(self.model)
            r = self.rng.random()
            if not ids or r < 0.3:
                op = "add"
            else:
                op = self.rng.choice(["rm", "mv", "mv", "edit", "edit", "flags", "flags",
                                      "rename"])
            if op == "add":
                tid = "t%04d" % self.next_id
                self.next_id += 1
                before = None
                after = Entry(self.rng.choice(list(FOLDERS)), tid + ".eml", 0)
                cmd = ["cp", self.src(tid, 0), self.path(after)]
            else:
                tid = self.rng.choice(ids)
                before = self.model[tid]
                if op == "rm":
                    after = None
                    cmd = ["rm", self.path(before)]
                elif op == "mv":
                    folder = self.rng.choice([f for f in FOLDERS if f != before.folder])
                    after = before.copy(folder=folder)
                    cmd = ["mv", self.path(before), os.path.join(self.root, folder) + "/"]
                elif op == "rename":
                    base = before.name.split("~")[0].replace(".eml", "")
                    after = before.copy(name="%s~%d.eml" % (base, self.rng.randrange(1000)))
                    cmd = ["mv", self.path(before), self.path(after)]
                elif op == "edit":
                    after = before.copy(version=before.version + 1)
                    cmd = ["cp", self.src(tid, after.version), self.path(before)]
                else:
                    flags = frozenset(f for f in FLAG_CHOICES if self.rng.random() < 0.4)
                    after = before.copy(flags=flags)
                    cmd = ["setfattr", "-n", "user.mail.flags", "-v",
                           " ".join(sorted(flags)), self.path(before)]
            try:
                ok = subprocess.run(cmd, capture_output=True, env=env,
                                    timeout=60 * SLOW).returncode == 0
            except subprocess.TimeoutExpired:
                ok = False
            self.log.append((tid, before, after, ok, op))
            if not ok:
                return
            if after is None:
                del self.model[tid]
            else:
                self.model[tid] = after
            if self.rng.random() < 0.2:
                time.sleep(self.rng.uniform(0, 0.2))  # let the sync thread catch up


# --- the server ------------------------------------------------------------------------

def server_index(c):
    """[(folder dir, tid, version, flags)] of every message with an id."""
    out = []
    for local, folder in FOLDERS.items():
        typ, data = c.select(srvlib.mailbox_arg(folder), readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            continue
        typ, data = c.uid("FETCH", "1:*",
                          "(UID FLAGS BODY.PEEK[HEADER.FIELDS (X-TEST-ID X-TEST-VERSION)])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            ident = parse(item[1].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
            if ident:
                out.append((local, ident[0], ident[1], frozenset(server_flags_to_set(flags))))
    return out


def duplicates(index):
    seen, dups = set(), []
    for folder, tid, version, _ in index:
        if (tid, version) in seen:
            dups.append((tid, version))
        seen.add((tid, version))
    return dups


# --- the test --------------------------------------------------------------------------

def kill_and_detach(m):
    try:
        os.kill(m.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    m.proc.wait(30)
    if is_mounted(m.path):
        fuse_abort(m.path)
        subprocess.run(["fusermount3", "-uz", m.path], capture_output=True, timeout=30)
    m.unmounted = True


def check_round(log, model_before, tree, where, problems):
    """Every logged call that succeeded is in the tree; an interrupted one
    may or may not be."""
    expected = dict(model_before)
    uncertain = {}
    for tid, before, after, ok, op in log:
        if ok:
            if after is None:
                expected.pop(tid, None)
            else:
                expected[tid] = after
        else:
            uncertain[tid] = (before, after, op)
    for tid in set(expected) | set(tree) | set(uncertain):
        got = tree.get(tid)
        want = expected.get(tid)
        if tid in uncertain:
            before, after, op = uncertain[tid]
            allowed = [x.key() if x else None for x in (before, after)]
            if op == "add":
                allowed.append(None)
            if (got.key() if got else None) not in allowed:
                problems.append("%s: %s after an interrupted %s is %r, neither %r"
                                % (where, tid, op, got and got.key(), allowed))
            continue
        if (got.key() if got else None) != (want.key() if want else None):
            problems.append("%s: %s should be %r after calls that succeeded, is %r"
                            % (where, tid, want and want.key(), got and got.key()))


@pytest.mark.time_limit(600)
def test_sigkill_while_changes_flow(account, mount, run_mailfs, tmp_path):
    c = account.client()
    c.select("INBOX")
    for folder in ("Archive", "Sent"):
        assert c.create(folder)[0] == "OK"
    rng = random.Random(SEED)
    for i in range(6):
        srvlib.append(c, FOLDERS[list(FOLDERS)[i % 3]], content("t%04d" % i, 0))
    srcdir = tmp_path / "src"
    srcdir.mkdir()
    problems = []

    m = mount()
    wait_until(lambda: sum(len(os.listdir(m / f)) for f in FOLDERS) == 6, 10 * SLOW,
               what="initial sync")
    model, empty = read_tree(m.path, problems, "start")
    assert not problems and not empty, problems
    next_id = 6
    kills = ops = in_flight_kills = 0
    history = {}
    t0 = time.monotonic()
    for rnd in range(ROUNDS):
        where = "round %d" % rnd
        w = Writer(m.path, dict(model), rng, next_id, str(srcdir))
        delay = rng.uniform(0.05, 1.5)
        w.start()
        time.sleep(delay)
        kill_and_detach(m)
        kills += 1
        w.stop.set()
        w.join(60 * SLOW)
        assert not w.is_alive(), "%s: the writer hangs on the dead mount" % where
        next_id = w.next_id
        ops += len(w.log)
        for tid, before, after, ok, op in w.log:
            history.setdefault(tid, []).append(
                "r%d %s%s%s" % (rnd, op, "" if ok else " (interrupted)",
                                " -> %s/%s v%d" % (after.folder, after.name, after.version)
                                if after else ""))
        if w.log and not w.log[-1][3]:
            in_flight_kills += 1

        m = mount()
        tree, empty = read_tree(m.path, problems, where)
        check_round(w.log, model, tree, where, problems)
        # an interrupted copy may leave an empty file: the user removes it
        for p in empty:
            os.unlink(p)
        model = tree
        dups = duplicates(server_index(c))
        if dups:
            # another session may glimpse a message in both folders while
            # the server carries out a MOVE: only a copy that stays counts
            run_mailfs("sync", m.path)
            dups = sorted(set(dups) & set(duplicates(server_index(c))))
            if dups:
                problems.append("%s: the server holds these twice: %r" % (where, dups))
        if len(problems) > 60:
            break

    # settle: everything the tree holds is on the server once, and nothing else
    for _ in range(2):
        rc, out, err = run_mailfs("sync", m.path)
        if rc != 0:
            problems.append("end: mailfs sync failed: %s" % err.strip())
    tree, empty = read_tree(m.path, problems, "end")
    assert not empty
    index = server_index(c)
    dups = duplicates(index)
    if dups:
        problems.append("end: the server holds these twice: %r" % dups)
    server = {(tid, version): (folder, flags) for folder, tid, version, flags in index}
    local = {(tid, e.version): (e.folder, e.flags) for tid, e in tree.items()}
    for key in sorted(set(server) | set(local)):
        if server.get(key) != local.get(key):
            problems.append("end: %s v%d: tree %r, server %r" % (key[0], key[1],
                                                                 local.get(key),
                                                                 server.get(key)))
    states = {}
    for tid, e in tree.items():
        s = xattr(m / e.folder / e.name, "user.sync.state")
        states.setdefault(s, []).append(tid)
    if set(states) != {"synced"}:
        problems.append("end: items not synced: %r" % {s: v for s, v in states.items()
                                                       if s != "synced"})
    # and the server's bytes are exactly what was written
    for local_dir, folder in FOLDERS.items():
        for fl, body in srvlib.fetch_all(c, folder).values():
            ident = parse(body)
            if ident is None or body != content(*ident):
                problems.append("end: a message in %s is not one the writer wrote: %r"
                                % (folder, body[:120]))
    print("\nSIGKILL test: %d rounds (seed %d), %d calls, %d kills during a call, "
          "%d messages at the end, %.1f s"
          % (kills, SEED, ops, in_flight_kills, len(tree), time.monotonic() - t0))
    named = sorted(set(re.findall(r"\bt\d{4}\b", "\n".join(problems[:40]))))
    details = ["%s: %s" % (tid, "; ".join(history.get(tid, ["(from the start)"])))
               for tid in named]
    assert problems == [], "\n".join(problems[:40] + ["history:"] + details)
